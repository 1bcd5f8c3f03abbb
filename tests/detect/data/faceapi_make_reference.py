"""Make ``faceapi_reference.json``: face-api 1.7.15's own outputs (TF.js 4, CPU backend, in node).

The photos are decoded here, with :func:`strided.data.image.read_image` (Pillow), and handed
to node as raw RGB, so the original and strided see exactly the same pixels; the SHA-256 of
each decoded image is stored so the test can tell a different JPEG decoder from a real
disagreement.  Run from the repository root (takes about a minute)::

    npm install --prefix /work/faceapi @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4 @tensorflow/tfjs-backend-wasm@4
    PYTHONPATH=$PWD/src python tests/detect/data/faceapi_make_reference.py \\
        --node-modules /work/faceapi/node_modules --oracle /work/shared/oracles/faceapi_reference.cjs

The oracle script (``faceapi_reference.cjs``) is kept with the other oracles of the project
(``shared/oracles``); it runs ``faceapi.detectAllFaces(tensor, new TinyFaceDetectorOptions(
{inputSize: 416, scoreThreshold: 0.5})).withFaceLandmarks().withFaceDescriptors()``.
Output: for every photo its ``source``, ``shape``, ``sha256`` and ``faces`` (``box`` x, y, w, h
in original pixels as face-api reports it, ``score``, 68 ``landmarks``, ``aligned_box``,
128-d ``descriptor``), plus the whole-image descriptor; numbers rounded to float32 precision.
``other_settings``: the detections alone (box, score) of every photo at other input sizes and
score thresholds (``EXTRA_SETTINGS``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "faceapi_reference.json"
# group photos of face-api's demo folder (3, 5 and 5 faces)
DEMO_SAMPLES = ("sample1.jpg", "sample5.jpg", "sample6.jpg")
# (input size, score threshold) runs besides the default (416, 0.5): odd grids (19, 7, 10) and lower thresholds
EXTRA_SETTINGS = ((608, 0.5), (224, 0.3), (320, 0.2))


def photos(node_modules: Path) -> dict:
    """name -> (source description, uint8 (H, W, 3))."""
    from skimage import data as skdata
    import matplotlib.cbook as cbook
    from strided.data.image import read_image

    out = {"astronaut": ("skimage.data.astronaut()", np.ascontiguousarray(skdata.astronaut()[..., :3]))}
    hopper = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    out["grace_hopper"] = ("matplotlib sample_data/grace_hopper.jpg", read_image(hopper))
    demo = node_modules / "@vladmandic" / "face-api" / "demo"
    for name in DEMO_SAMPLES:
        out[Path(name).stem] = (f"@vladmandic/face-api@1.7.15 demo/{name}", read_image(demo / name))
    return out


def f32(values):
    """Round JavaScript doubles that came from float32 tensors to 9 significant digits."""
    return [float(f"{float(v):.9g}") for v in values]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-modules", type=Path, required=True)
    parser.add_argument("--oracle", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    images = photos(args.node_modules)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        meta = {}
        for name, (_, image) in images.items():
            (tmp / f"{name}.rgb").write_bytes(image.tobytes())
            meta[name] = list(image.shape)
        (tmp / "meta.json").write_text(json.dumps(meta))
        env = dict(os.environ, NODE_PATH=str(args.node_modules))
        runs = {}
        for size, threshold in ((416, 0.5),) + EXTRA_SETTINGS:
            out = tmp / f"out_{size}_{threshold}.json"
            subprocess.run(["node", str(args.oracle), str(tmp), str(out), str(size), str(threshold)],
                           check=True, env=env)
            runs[size, threshold] = json.loads(out.read_text())
        raw = runs[416, 0.5]
    result = {"made_by": "face-api 1.7.15, @tensorflow/tfjs 4 CPU backend, node "
                         + subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
              "input_size": 416, "score_threshold": 0.5, "photos": {}}
    for name, (source, image) in images.items():
        entry = raw[name]
        result["photos"][name] = {
            "source": source, "shape": list(image.shape),
            "sha256": hashlib.sha256(image.tobytes()).hexdigest(),
            "whole_image_descriptor": f32(entry["whole_image_descriptor"]),
            "faces": [{"box": list(map(float, face["box"])), "score": float(face["score"]),
                       "landmarks": [f32(p) for p in face["landmarks"]],
                       "aligned_box": list(map(float, face["aligned_box"])),
                       "descriptor": f32(face["descriptor"])} for face in entry["faces"]],
        }
        print(f"{name}: {len(entry['faces'])} faces", file=sys.stderr)
    result["other_settings"] = [
        {"input_size": size, "score_threshold": threshold,
         "faces": {name: [{"box": list(map(float, face["box"])), "score": float(face["score"])}
                          for face in runs[size, threshold][name]["faces"]] for name in images}}
        for size, threshold in EXTRA_SETTINGS]
    args.out.write_text(json.dumps(result, indent=None, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
