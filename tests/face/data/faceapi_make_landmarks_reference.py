"""Make ``faceapi_landmarks_reference.json``: face-api 1.7.15's faces with the full and the TINY
68-point landmark nets (and the descriptors of each alignment), TF.js 4 CPU backend in node.

Photos (decoded here, handed to node as raw RGB, SHA-256 stored as in
``tests/detect/data/faceapi_make_reference.py``, whose ``photos()`` this reuses): the astronaut,
Grace Hopper, face-api's demo ``sample1.jpg``, and ``astronaut_flipped_384``: the astronaut
mirrored left-right and resized to 384 x 384 (:func:`flipped_astronaut`), the "same person"
case of verification.  Run from the repository root (about a minute)::

    npm install --prefix /work/faceapi @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4 @tensorflow/tfjs-backend-wasm@4
    PYTHONPATH=$PWD/src python tests/face/data/faceapi_make_landmarks_reference.py \\
        --node-modules /work/faceapi/node_modules

The node script is ``faceapi_landmarks_reference.cjs`` next to this file; it runs
``detectAllFaces(t, new TinyFaceDetectorOptions({inputSize: 416, scoreThreshold: 0.5}))
.withFaceLandmarks(useTiny).withFaceDescriptors()`` for ``useTiny`` false (``faces``) and true
(``faces_tiny``).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
OUT = HERE / "faceapi_landmarks_reference.json"
SCRIPT = HERE / "faceapi_landmarks_reference.cjs"
KEEP = ("astronaut", "grace_hopper", "sample1")
FLIPPED_SIZE = 384


def flipped_astronaut(astronaut) -> np.ndarray:
    """The astronaut mirrored left-right, resized to 384 x 384 (tf.image.resizeBilinear's legacy
    mapping, :func:`strided.models.faceapi.resize_bilinear`), rounded to uint8."""
    from strided.models.faceapi import resize_bilinear
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    return np.clip(np.rint(resize_bilinear(mirrored, FLIPPED_SIZE, compute_dtype=np.float64)), 0, 255).astype(np.uint8)


def detection_photos(node_modules: Path) -> dict:
    spec = importlib.util.spec_from_file_location("faceapi_make_reference",
                                                  ROOT / "tests" / "detect" / "data" / "faceapi_make_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.photos(node_modules)


def f32(values):
    return [float(f"{float(v):.9g}") for v in values]


def faces_json(faces):
    return [{"box": list(map(float, face["box"])), "score": float(face["score"]),
             "landmarks": [f32(p) for p in face["landmarks"]], "aligned_box": list(map(float, face["aligned_box"])),
             "descriptor": f32(face["descriptor"])} for face in faces]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-modules", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    all_photos = detection_photos(args.node_modules)
    images = {name: all_photos[name] for name in KEEP}
    images["astronaut_flipped_384"] = ("skimage.data.astronaut() mirrored, resized to 384x384 (legacy bilinear)",
                                       flipped_astronaut(all_photos["astronaut"][1]))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, (_, image) in images.items():
            (tmp / f"{name}.rgb").write_bytes(image.tobytes())
        (tmp / "meta.json").write_text(json.dumps({name: list(image.shape) for name, (_, image) in images.items()}))
        env = dict(os.environ, NODE_PATH=str(args.node_modules))
        subprocess.run(["node", str(SCRIPT), str(tmp), str(tmp / "out.json")], check=True, env=env)
        raw = json.loads((tmp / "out.json").read_text())
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    result = {"made_by": f"face-api 1.7.15, @tensorflow/tfjs 4 CPU backend, node {node}",
              "input_size": 416, "score_threshold": 0.5, "photos": {}}
    for name, (source, image) in images.items():
        result["photos"][name] = {"source": source, "shape": list(image.shape),
                                  "sha256": hashlib.sha256(image.tobytes()).hexdigest(),
                                  "faces": faces_json(raw[name]["faces"]),
                                  "faces_tiny": faces_json(raw[name]["faces_tiny"])}
    args.out.write_text(json.dumps(result, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
