"""Enrolment throughput: photos and faces per minute, strided vs the PyTorch twins of the same pipeline.

    python benchmarks/face_enroll.py --threads 1                    # 60 portraits / photos, 416, batches of 8
    python benchmarks/face_enroll.py --threads 2 --input-size 224 --photos 120 --markdown results/enroll.md

Two sets, decoded once before timing (the times are the pipeline's, from uint8 pixels; the JPEG
decode time of a 1920 px photo is printed apart):

* **portraits**, what people enrol: one picture per face the detector finds in face-api's demo
  photos (``demo/sample1..6.jpg`` next to its ``model/`` folder, group photos of 1920 px), the
  astronaut (skimage) and Grace Hopper (matplotlib), each a square 2.5 times the face's box,
  also mirrored and at x0.75, cycled to ``--photos``;
* **group photos**: those photos themselves, also mirrored and at x0.75 and x0.5.

Two cases, each timed strided vs PyTorch, interleaved in one process
(:func:`common.measure_interleaved`):

* **enrol** -- ``FaceModels.embed_images(portraits, batch_size=B)``: detector on every photo, then
  the landmark and recognition nets on the largest face of each (``strided face enroll``, the
  ``FaceDatabase.enroll_images`` path).  One face enrolled per photo: faces/min = photos/min.
  Portraits with no face at a small ``--input-size`` are left out (and counted).
* **every face** -- ``FaceModels.detect_many(group photos, embeddings=True)``: landmarks and
  descriptor of every face found (indexing group photos); faces/min counts them all.

The PyTorch side is the very same pipeline code (pre/post-processing, batching, NumPy) with the
three networks swapped for the torch twins of ``tests/faceapi_helpers.py``, built by
``face_pipeline.build`` (the twins ``benchmarks/face_pipeline.py`` times).  Before timing, both
sides must enrol the same descriptors (L2 1e-4).

**The bound.** The multiply-adds of the three networks for one photo with one face (detector at
``--input-size``, landmark net 112, recognition net 150) are counted from the layers' shapes, and
a float32 GEMM of the recognition net's typical shape is timed on this machine: MACs / GEMM rate
is the time one face would take if every layer ran at GEMM speed, the best any CPU implementation
of these networks can do on these cores (depthwise and small layers run well below it).  The
load average (1 min) is printed beside every number: the machine is shared.
"""
from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402  (standard library only: NumPy is not loaded yet)


def load() -> str:
    return "load %.2f" % os.getloadavg()[0]


def _variants(np, sources, scales) -> list:
    """Each ``(name, photo)`` as it is and mirrored, at each scale (legacy bilinear, rounded to uint8)."""
    from strided.models.faceapi import resize_bilinear

    out = []
    for scale in scales:
        for mirrored in (False, True):
            for name, image in sources:
                pixels = np.ascontiguousarray(image[:, ::-1]) if mirrored else image
                if scale != 1.0:
                    size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
                    pixels = np.clip(np.rint(resize_bilinear(pixels, size)), 0, 255).astype(np.uint8)
                out.append((f"{name}{' mirrored' if mirrored else ''} x{scale:g}", pixels))
    return out


def photo_set(np, model_dir, count: int) -> tuple:
    """``(names, uint8 photos, decode ms per JPEG)``: face-api's demo photos, the astronaut and
    Grace Hopper, mirrored and rescaled (x0.75, x0.5), cycled to ``count``."""
    from strided.data.image import read_image

    sources, decode_ms = [], []
    for k in range(1, 7):
        path = model_dir.parent / "demo" / f"sample{k}.jpg"
        if path.is_file():
            sources.append((path.stem, read_image(path)))
            start = time.perf_counter()
            read_image(path)                                 # timed the second time (file cached, Pillow loaded)
            decode_ms.append((time.perf_counter() - start) * 1e3)
    from skimage import data as skdata
    sources.append(("astronaut", np.ascontiguousarray(skdata.astronaut()[..., :3])))
    import matplotlib.cbook as cbook
    sources.append(("grace_hopper", read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))))
    variants = _variants(np, sources, (1.0, 0.75, 0.5))
    chosen = [variants[i % len(variants)] for i in range(count)]
    return [n for n, _ in chosen], [p for _, p in chosen], decode_ms, sources


def portrait_set(np, models, sources, count: int) -> tuple:
    """``(names, portraits)``: one photo per face, as people enrol (an ID-like picture): every face
    the detector finds in ``sources`` cropped as a square 2.5 times its box (clipped at the photo's
    edges), as it is and mirrored, at x1 and x0.75, cycled to ``count``."""
    crops = []
    for name, image in sources:
        for k, face in enumerate(models.detect(image, landmarks=False)):
            x1, y1, x2, y2 = face["box"]
            side = 2.5 * max(x2 - x1, y2 - y1)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            top, left = max(0, round(cy - side / 2)), max(0, round(cx - side / 2))
            crop = image[top:round(cy + side / 2), left:round(cx + side / 2)]
            if min(crop.shape[:2]) >= 96:
                crops.append((f"{name}#{k}", np.ascontiguousarray(crop)))
    variants = _variants(np, crops, (1.0, 0.75))
    chosen = [variants[i % len(variants)] for i in range(count)]
    return [n for n, _ in chosen], [p for _, p in chosen]


def count_macs(sd, np, net, input_shape) -> int:
    """Multiply-adds of one forward pass of ``net`` on an input of ``input_shape`` (convolutions,
    depthwise convolutions and dense layers: output elements x weights feeding one output)."""
    from strided.nn import Linear
    from strided.nn.layers import ConvNd

    total = [0]

    def hook(module, inputs, output):
        weight = module.weight.data
        total[0] += output.data.size * (weight.size // weight.shape[-1])   # HWIO / (in, out)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (ConvNd, Linear))]
    try:
        with sd.no_grad():
            net(sd.tensor(np.zeros(input_shape, np.float32)))
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def gemm_rate(np, m: int = 1225, k: int = 288, n: int = 32, seconds: float = 0.5) -> float:
    """Multiply-adds per second of a float32 ``(m, k) @ (k, n)`` GEMM (default: the recognition net's
    first 3x3 layers, 35 x 35 x (3*3*32) -> 32, at batch 1), best of repeated runs."""
    a = np.random.default_rng(0).standard_normal((m, k)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((k, n)).astype(np.float32)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        best = min(best, (time.perf_counter() - start) / 10)
    return m * k * n / best


def main(argv=None) -> int:
    parser = common.make_parser(__doc__)
    parser.set_defaults(repeats=3, warmup=1, settle=0.0)     # runs of seconds: no settling needed
    parser.add_argument("--photos", type=int, default=60, help="photos per enrolment run (default 60)")
    parser.add_argument("--batch-size", type=int, default=8, help="photos per batch (default 8)")
    parser.add_argument("--input-size", type=int, default=416,
                        help="detector input, a multiple of 32 (face-api's inputSize; default 416)")
    parser.add_argument("--no-torch", action="store_true", help="time strided alone")
    args = parser.parse_args(argv)
    if args.photos < 1 or args.batch_size < 1 or args.input_size < 32 or args.input_size % 32:
        parser.error(f"--photos and --batch-size must be positive and --input-size a multiple of 32, received "
                     f"{args.photos}, {args.batch_size}, {args.input_size}")
    print(f"start: {load()}", flush=True)
    sd, np, torch = common.start(args.threads)
    from strided.errors import DatasetUnavailable
    from strided.models.faceapi import find_faceapi_models

    try:
        model_dir = find_faceapi_models()
    except DatasetUnavailable as exc:
        print(f"face_enroll needs face-api's weights: {exc}", file=sys.stderr)
        return 2
    import face_pipeline

    names, photos, decode_ms, sources = photo_set(np, model_dir, args.photos)
    ours, twin = face_pipeline.build(model_dir, tiny=False)
    portrait_names, portraits = portrait_set(np, ours, sources, args.photos)
    found = ours.detect_many(portraits, args.input_size, landmarks=False)
    dropped = sum(not faces for faces in found)
    if dropped:                       # a small detector input misses some faces: enrol the others
        print(f"{dropped} of {len(portraits)} portraits have no face at detector input {args.input_size}: left out")
        portrait_names = [n for n, faces in zip(portrait_names, found) if faces]
        portraits = [p for p, faces in zip(portraits, found) if faces]
    sides = {"strided": ours} if args.no_torch else {"strided": ours, "torch": twin}
    megapixels = sum(p.shape[0] * p.shape[1] for p in photos) / len(photos) / 1e6
    mean_side = np.mean([max(p.shape[:2]) for p in portraits])
    decode = np.mean(decode_ms) if decode_ms else float("nan")
    print(f"{len(photos)} photos ({len(set(n.split()[0] for n in names))} sources, mean {megapixels:.2f} MP) and "
          f"{len(portraits)} portraits ({len(set(n.split()[0] for n in portrait_names))} faces, mean side "
          f"{mean_side:.0f} px); JPEG decode {decode:.0f} ms per 1920 px demo photo (not timed below); detector "
          f"input {args.input_size}, batches of {args.batch_size}; {load()}", flush=True)

    def enrol(models):
        return models.embed_images(portraits, args.input_size, batch_size=args.batch_size)

    def every_face(models):
        return models.detect_many(photos, args.input_size, embeddings=True, batch_size=args.batch_size)

    faces_found = sum(len(f) for f in every_face(ours))
    check = None
    if "torch" in sides:
        a, b = enrol(ours), enrol(twin)
        check = float(np.linalg.norm(a - b, axis=1).max())
        print(f"same enrolment on both sides: max descriptor L2 {check:.1e} (tolerance 1e-4)", flush=True)
        if check > 1e-4:
            raise AssertionError("strided and the torch twins enrol different descriptors")
    gate = common.quiet_gate(args, np, torch)
    print(common.settings_line(args, gate), flush=True)

    header = ["case", "side", "s per run", "photos/min", "faces/min", "load (1 min)"]
    rows = []
    for case, run, count, faces in (("enrol portraits (largest face of each)", enrol, len(portraits), len(portraits)),
                                    ("every face of the group photos", every_face, len(photos), faces_found)):
        steps = {side: common.timed(lambda m=models: run(m)) for side, models in sides.items()}
        samples = common.measure_interleaved(steps, repeats=args.repeats, warmup=args.warmup, settle=args.settle,
                                               gate=gate)
        for side, s in samples.items():
            seconds = s.median_ms() / 1e3
            rows.append([case, side, f"{seconds:.2f}", f"{count / seconds * 60:.0f}",
                         f"{faces / seconds * 60:.0f}", load()])
            print(f"[{case}] {side}: {seconds:.2f} s for {count} photos, {faces} faces -> "
                  f"{count / seconds * 60:.0f} photos/min, {faces / seconds * 60:.0f} faces/min "
                  f"(min {s.min_ms() / 1e3:.2f} s) | {load()}", flush=True)
        if "torch" in samples:
            ratio = samples["strided"].median_ms() / samples["torch"].median_ms()
            rows.append([case, "ratio strided / torch", f"{ratio:.2f}", "", "", load()])

    # the bound: multiply-adds per face / GEMM rate
    from strided.models.face_landmarks import LANDMARK_INPUT_SIZE
    from strided.models.face_recognition import RECOGNITION_INPUT_SIZE
    macs = {"detector": count_macs(sd, np, ours.detector.net, (1, args.input_size, args.input_size, 3)),
            "landmarks": count_macs(sd, np, ours.landmark_net, (1, LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE, 3)),
            "recognition": count_macs(sd, np, ours.recognition_net,
                                      (1, RECOGNITION_INPUT_SIZE, RECOGNITION_INPUT_SIZE, 3))}
    rate = gemm_rate(np)
    total = sum(macs.values())
    bound_ms = total / rate * 1e3
    print(f"\nmultiply-adds per photo with one face: " + ", ".join(f"{k} {v / 1e6:.0f} M" for k, v in macs.items())
          + f"; total {total / 1e6:.0f} M", flush=True)
    print(f"float32 GEMM (1225 x 288 x 32) on {args.threads} thread(s): {rate / 1e9:.1f} G multiply-adds/s | {load()}")
    print(f"bound: {bound_ms:.1f} ms per enrolled face at GEMM speed -> at most {60e3 / bound_ms:.0f} faces/min "
          f"on {args.threads} thread(s) for these networks", flush=True)
    rows.append(["bound: all MACs at GEMM speed", f"{args.threads} thread(s)", f"{bound_ms / 1e3 * len(portraits):.2f}",
                 f"{60e3 / bound_ms:.0f}", f"{60e3 / bound_ms:.0f}", load()])
    notes = [f"enrol: {len(portraits)} portraits (one per face found in face-api's demo photos, the astronaut and "
             f"Grace Hopper: a square 2.5x the face box; mirrored, x0.75), mean side {mean_side:.0f} px. every face: "
             f"{len(photos)} photos (the demo group photos, astronaut, Grace Hopper; mirrored, x0.75, x0.5), "
             f"{faces_found} faces in all. Detector input {args.input_size}; batches of {args.batch_size}; "
             f"{args.threads} thread(s) for strided, torch and OpenBLAS; median of {args.repeats} interleaved runs; "
             "times from decoded uint8 pixels.",
             "enrol = FaceModels.embed_images (largest face per photo), every face = FaceModels.detect_many("
             "embeddings=True). torch = the same pipeline code with the torch twins of the three networks "
             f"(tests/faceapi_helpers.py){'' if check is None else f'; descriptors agree to {check:.1e}'}.",
             f"bound = multiply-adds of one photo with one face ({total / 1e6:.0f} M) / float32 GEMM rate "
             f"({rate / 1e9:.1f} G/s measured in the same run).",
             "load (1 min) is the machine's load average when the row was measured (2 cores, shared)."]
    common.finish(args, "Face enrolment throughput, strided vs PyTorch twins", header, rows, notes, gate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
