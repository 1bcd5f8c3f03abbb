"""``strided detect``: boxes, class names and scores on your photos.

    strided detect astronaut.png --model tiny-face -o faces/          # face-api's Tiny Face Detector
    strided detect photo.jpg --darknet yolov2-tiny-voc.cfg yolov2-tiny-voc.weights --conf 0.3 -o out/
    strided detect scene.png --model runs/digits --json                # a run of `strided train --task detect`

Three kinds of detector: ``--model tiny-face`` (:class:`strided.detect.tiny_face.TinyFaceDetector`,
weights from ``strided models fetch face-api``), ``--darknet CFG WEIGHTS`` (a real pretrained
YOLO, :func:`strided.detect.darknet.darknet_detector`; class names from ``--names`` or, by the
cfg's class count, darknet's ``coco.names`` (80) / ``voc.names`` (20)), and ``--model RUN_DIR``
(a detection run: its config and best checkpoint, :func:`strided.detect.training.predict_boxes`
on the photo resized to the run's input size, boxes mapped back to the photo's pixels).

Thresholds: a (box, class) pair is kept when its score is **strictly greater** than ``--conf``;
non-maximum suppression (per class) drops a box whose IoU with a kept, higher-scoring box of
its class is **strictly greater** than ``--iou``; at most ``--max-det`` boxes per image.

Output: one line per image and one per detection on stdout; ``--json`` prints only the JSON
array (below) there, everything else goes to stderr.  ``-o OUT`` writes, into the folder OUT,
each photo with its boxes (same file name as the input) and ``detections.json``::

    [{"image": PATH, "width": W, "height": H,
      "detections": [{"box": [x1, y1, x2, y2], "score": s, "class": k, "name": "..."}]}, ...]

(one object per image, in the order given; boxes in the photo's pixels).  ``--save-txt`` adds
``OUT/labels/<stem>.txt``: YOLO-format lines ``class cx cy w h score`` (centre and size divided
by the photo's width and height; the score is a sixth column).  Existing files in OUT are not
replaced unless ``--overwrite``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import RunDir, detection_net_size, is_detection, read_rgb, write_image
from .errors import EXIT_OK, CLIError

__all__ = ["register", "cmd_detect", "default_names", "DEFAULTS"]

DEFAULTS = {"conf": 0.5, "iou": 0.45, "tiny_face_iou": 0.4, "max_det": 100}


def register(subparsers):
    """Add ``strided detect`` to the top-level ``subparsers``."""
    p = subparsers.add_parser(
        "detect", help="find objects (boxes, classes, scores) in images",
        usage="strided detect IMAGE... (--model tiny-face | --model RUN_DIR | --darknet CFG WEIGHTS "
              "[--names FILE])\n"
              "                      [--conf C] [--iou T] [--max-det N] [--size S] [-o OUT] [--json] [--save-txt] "
              "[--overwrite]",
        description="Detect objects in images with face-api's Tiny Face Detector (--model tiny-face), a darknet "
                    "YOLO (--darknet CFG WEIGHTS) or a detector trained here (--model RUN_DIR). Boxes are "
                    "[x1, y1, x2, y2] in the image's pixels.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format Pillow reads)")
    p.add_argument("--model", default=None, metavar="tiny-face|RUN_DIR",
                   help="tiny-face: face-api's Tiny Face Detector (install: strided models fetch face-api); "
                        "or a run directory of `strided train --task detect`")
    p.add_argument("--darknet", nargs=2, metavar=("CFG", "WEIGHTS"), default=None,
                   help="a darknet YOLO: its .cfg and .weights files (e.g. yolov2-tiny-voc.cfg from "
                        "`strided data fetch darknet`, with weights you downloaded)")
    p.add_argument("--names", default=None, metavar="FILE",
                   help="with --darknet: class names, one a line (default: darknet's coco.names for 80 classes, "
                        "voc.names for 20, else the class numbers)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="with RUN_DIR (default best)")
    p.add_argument("--conf", type=float, default=DEFAULTS["conf"],
                   help="keep boxes whose score (objectness x class probability; the face score for tiny-face) "
                        "is strictly greater than this (default %(default)s)")
    p.add_argument("--iou", type=float, default=None,
                   help="non-maximum suppression: drop a box whose IoU with a kept, higher-scoring box of the same "
                        f"class is strictly greater than this (default {DEFAULTS['iou']}; "
                        f"{DEFAULTS['tiny_face_iou']} for tiny-face, as face-api)")
    p.add_argument("--max-det", type=int, default=DEFAULTS["max_det"],
                   help="at most this many boxes per image, best scores first (default %(default)s)")
    p.add_argument("--size", type=int, default=None,
                   help="the network's input side in pixels (default: 416 for tiny-face, the cfg's width for "
                        "--darknet (multiples of 32), the run's input size for RUN_DIR (multiples of 16))")
    p.add_argument("-o", "--out", default=None, metavar="OUT",
                   help="folder for the annotated images and detections.json (created if needed)")
    p.add_argument("--json", action="store_true",
                   help="print the detections as one JSON array on stdout (nothing else there)")
    p.add_argument("--save-txt", action="store_true",
                   help="with -o: also write OUT/labels/<image stem>.txt, YOLO format: class cx cy w h score "
                        "(normalised by the image size; the score is a sixth column)")
    p.add_argument("--overwrite", action="store_true", help="replace files already in OUT")
    p.set_defaults(func=cmd_detect)
    return p


# --------------------------------------------------------------------------- options
def _check_options(args) -> None:
    if (args.model is None) == (args.darknet is None):
        raise CLIError("choose one detector: --model tiny-face, --model RUN_DIR or --darknet CFG WEIGHTS"
                       if args.model is None else "--model and --darknet do not go together: choose one detector")
    if args.names is not None and args.darknet is None:
        raise CLIError("--names goes with --darknet (tiny-face finds faces; a run has its own class names)")
    if not 0.0 <= args.conf < 1.0:
        raise CLIError(f"--conf must be in [0, 1), received {args.conf}")
    if args.iou is not None and not 0.0 <= args.iou <= 1.0:
        raise CLIError(f"--iou must be in [0, 1], received {args.iou}")
    if args.max_det < 1:
        raise CLIError(f"--max-det must be >= 1, received {args.max_det}")
    if args.save_txt and args.out is None:
        raise CLIError("--save-txt writes OUT/labels/: give -o OUT")
    if args.size is not None and args.size < 16:
        raise CLIError(f"--size must be >= 16, received {args.size}")


def default_names(num_classes: int, names_dir=None):
    """darknet's class names for a network of ``num_classes``: ``coco.names`` (80), ``voc.names``
    (20) from Debian's darknet package (``names_dir``, default /usr/share/darknet/data), else None
    (detections are named by class number)."""
    from ..detect.darknet import DARKNET_DATA, read_names

    file = {80: "coco.names", 20: "voc.names"}.get(int(num_classes))
    folder = Path(names_dir) if names_dir is not None else DARKNET_DATA / "data"
    if file is None or not (folder / file).is_file():
        return None
    names = read_names(folder / file)
    return names if len(names) == num_classes else None


# --------------------------------------------------------------------------- the three detectors
class _Detector:
    """``describe`` (one line for the log) and ``detect(image uint8) -> list of detections``."""
    describe = ""

    def detect(self, image):  # pragma: no cover - interface
        raise NotImplementedError


class _TinyFace(_Detector):
    def __init__(self, args):
        from ..detect.tiny_face import TinyFaceDetector
        from ..errors import DatasetUnavailable, ModelFileError

        size = 416 if args.size is None else args.size
        if size % 32:
            raise CLIError(f"--size must be a multiple of 32 for tiny-face (e.g. 160, 224, 320, 416, 512, 608), "
                           f"received {size}")
        self.iou = DEFAULTS["tiny_face_iou"] if args.iou is None else args.iou
        # face-api's score threshold is in (0, 1); --conf 0 means "every face": the smallest positive float
        score = args.conf if args.conf > 0 else float.fromhex("0x1p-1074")
        try:
            self.detector = TinyFaceDetector(input_size=size, score_threshold=score, iou_threshold=self.iou)
        except DatasetUnavailable as exc:
            raise CLIError(str(exc)) from None
        except ModelFileError as exc:
            raise CLIError(f"face-api's Tiny Face Detector weights: {exc}") from None
        self.max_det = args.max_det
        self.describe = f"face-api Tiny Face Detector, input {size}x{size}"

    def detect(self, image):
        return self.detector.detect(image)[:self.max_det]


class _Darknet(_Detector):
    def __init__(self, args):
        from ..detect.darknet import darknet_detector
        from ..errors import ImageError, ModelFileError

        cfg, weights = (Path(p) for p in args.darknet)
        for what, path in (("cfg", cfg), ("weights", weights)):
            if not path.is_file():
                raise CLIError(f"--darknet: {what} file {str(path)!r} does not exist")
        if args.size is not None and args.size % 32:
            raise CLIError(f"--size must be a multiple of 32 for a darknet network, received {args.size}")
        try:
            detector = darknet_detector(cfg, weights, args.names)
        except (ModelFileError, ImageError, ValueError) as exc:
            raise CLIError(f"--darknet {cfg} {weights}: {exc}") from None
        if args.names is None:
            names = default_names(detector.num_classes)
            if names is not None:
                detector.names = names
        self.detector = detector
        self.size = args.size
        self.conf, self.iou, self.max_det = args.conf, DEFAULTS["iou"] if args.iou is None else args.iou, args.max_det
        w, h = detector.net.input_size if args.size is None else (args.size, args.size)
        named = "class numbers" if detector.names is None else f"{len(detector.names)} names"
        self.describe = f"darknet {cfg.name} + {weights.name}, input {w}x{h}, {detector.num_classes} classes ({named})"

    def detect(self, image):
        return self.detector.detect(image, conf=self.conf, iou=self.iou, max_det=self.max_det, size=self.size)


class _Run(_Detector):
    def __init__(self, args):
        run = RunDir(args.model)
        if not run.path.is_dir():
            raise CLIError(f"--model {args.model!r}: not 'tiny-face' and not a run directory (no such folder)")
        config = run.read_config()
        if not is_detection(config):
            raise CLIError(f"--model {args.model}: the run in {run.path} is a {config.get('task', 'classify')} run "
                           f"of {config['model']} on {config['data']}, not a detection run (train one with "
                           f"`strided train --task detect`); for its classes use `strided predict {run.path} IMAGE`")
        self.model = run.load_model(config, args.checkpoint)
        size = detection_net_size(config) if args.size is None else args.size
        if size % 16:
            raise CLIError(f"--size must be a multiple of 16 for {config['model']}, received {size}")
        self.size, self.names = size, list(config["classes"])
        self.conf, self.iou, self.max_det = args.conf, DEFAULTS["iou"] if args.iou is None else args.iou, args.max_det
        self.describe = (f"{config['model']} trained on {config['data']} ({run.path}, {args.checkpoint} checkpoint), "
                         f"input {size}x{size}, {len(self.names)} classes")

    def detect(self, image):
        from ..detect.training import predict_boxes

        # a plain resize to the network's side (as the scenes); boxes come back in the image's pixels
        return predict_boxes(self.model, image[None], self.conf, self.iou, self.max_det, self.names,
                             sizes=self.size)[0]


def make_detector(args) -> _Detector:
    if args.darknet is not None:
        return _Darknet(args)
    if args.model == "tiny-face":
        return _TinyFace(args)
    return _Run(args)


# --------------------------------------------------------------------------- output files
def _output_names(paths) -> list:
    """One output file name per input: its own name, ``stem_2.ext`` ... when two inputs share one."""
    names, seen = [], set()
    for path in paths:
        name, k = Path(path).name, 1
        while name.lower() in seen:
            k += 1
            name = f"{Path(path).stem}_{k}{Path(path).suffix}"
        seen.add(name.lower())
        names.append(name)
    return names


def _plan_outputs(args, paths) -> dict:
    """``{"images": [...], "labels": [...] or None, "json": path}`` in OUT, refusing existing files
    unless --overwrite (checked before any work)."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"-o {out}: is a file, not a folder; give a folder for the annotated images")
    names = _output_names(paths)
    plan = {"images": [out / n for n in names], "json": out / "detections.json",
            "labels": [out / "labels" / f"{Path(n).stem}.txt" for n in names] if args.save_txt else None}
    if not args.overwrite:
        existing = [p for p in [*plan["images"], plan["json"], *(plan["labels"] or [])] if p.exists()]
        if existing:
            shown = ", ".join(str(p) for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
            raise CLIError(f"-o {out} already holds {shown}; pass --overwrite to replace, or choose another folder")
    return plan


# --------------------------------------------------------------------------- the command
def _say(args, text: str) -> None:
    """Information: stdout normally, stderr with --json (stdout holds only the JSON)."""
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def cmd_detect(args) -> int:
    """``strided detect IMAGE... --model ... | --darknet CFG WEIGHTS``."""
    from ..checkpoint import json_safe

    _check_options(args)
    for path in args.images:
        if not Path(path).is_file():
            raise CLIError(f"image {path!r} does not exist" if not Path(path).exists()
                           else f"image {path!r} is not a file")
    images = [read_rgb(p) for p in args.images]              # every image is read before any work
    plan = _plan_outputs(args, args.images) if args.out else None
    detector = make_detector(args)
    _say(args, f"detecting with {detector.describe}")
    results = []
    for path, image in zip(args.images, images):
        dets = detector.detect(image)
        H, W = image.shape[:2]
        results.append({"image": str(path), "width": int(W), "height": int(H),
                        "detections": [{"box": [float(v) for v in d["box"]], "score": float(d["score"]),
                                        "class": int(d["class"]),
                                        "name": str(d["name"] if d.get("name") is not None else d["class"])}
                                       for d in dets]})
        if not args.json:
            print(f"{path}: {len(dets)} detection{'s' if len(dets) != 1 else ''} ({W}x{H})")
            for d in results[-1]["detections"]:
                box = ", ".join(f"{v:.1f}" for v in d["box"])
                print(f"  {d['name']} {d['score']:.3f} [{box}]")
    results = json_safe(results)
    if plan is not None:
        _write_outputs(args, plan, images, results)
    if args.json:
        print(json.dumps(results, allow_nan=False), flush=True)
    return EXIT_OK


def _write_outputs(args, plan, images, results) -> None:
    from ..detect.draw import draw_detections, yolo_label_lines
    from ..fileio import atomic_write_json, atomic_write_text

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if plan["labels"] is not None:
            (out / "labels").mkdir(exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create {str(out)!r}: {exc.strerror or exc}", exit_code=1) from None
    for k, (image, result) in enumerate(zip(images, results)):
        write_image(draw_detections(image, result["detections"]), plan["images"][k])
        if plan["labels"] is not None:
            lines = yolo_label_lines(result["detections"], result["width"], result["height"])
            atomic_write_text(plan["labels"][k], "".join(line + "\n" for line in lines))
    atomic_write_json(plan["json"], results)
    _say(args, f"wrote {len(images)} annotated image{'s' if len(images) != 1 else ''}"
               f"{', ' + str(len(images)) + ' label files' if plan['labels'] is not None else ''} and "
               f"{plan['json']}")
