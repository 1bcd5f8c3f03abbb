"""``strided face ...``: find, verify, enroll and identify faces, and evaluate verification.

::

    strided face detect IMAGE... [-o OUT] [--json]          boxes, scores, 68 landmarks
    strided face verify IMG_A IMG_B [--threshold 0.6] [--json]
    strided face enroll DB NAME IMAGE...                     one person, one or more photos
    strided face identify DB IMAGE... [--threshold 0.6] [-o OUT] [--json]
    strided face list DB [--json]
    strided face remove DB NAME
    strided face evaluate --pairs pairs.txt --root DIR [-o OUT] [--json]

The networks are face-api's (Tiny Face Detector, 68-point landmarks, dlib's 128-d ResNet
descriptor; :mod:`strided.face.api`), installed once with ``strided models fetch face-api``
(or pass ``--model-dir``).  **Threshold**: two faces are the same person when the Euclidean
distance of their descriptors is below 0.6 (dlib's and face-api's value); ``verify`` accepts
``distance < threshold``, ``identify`` names a face when its nearest enrolled photo is at
``distance <= threshold`` and says ``unknown`` otherwise.

Output: human-readable lines by default, face_recognition style (``file,name,distance`` per
face for ``identify``; ``file,x1,y1,x2,y2,score`` for ``detect``).  With ``--json`` stdout
holds only strict JSON (no NaN): ``detect``/``identify`` print an array with one object per
image, in order, ``{"image", "faces": [{"box": [x1, y1, x2, y2], "score", "landmarks":
[[x, y] x 68], "name"?, "distance"?}]}``; ``verify`` prints ``{"verified", "distance",
"threshold", "faces"}``.  A photo without a face gives an empty ``faces`` list and a note on
stderr (an error for ``verify`` and ``enroll``, which need one).  ``-o OUT`` writes annotated
copies (same file names) into the folder OUT and never replaces a file without
``--overwrite``.

A face database (:class:`strided.face.database.FaceDatabase`) is a folder; it is tied to the
model that made its embeddings, is written atomically, and a damaged one is refused without
being touched.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .common import read_rgb, write_image
from .errors import EXIT_ERROR, EXIT_OK, CLIError

__all__ = ["register", "cmd_detect", "cmd_verify", "cmd_enroll", "cmd_identify", "cmd_list",
           "cmd_remove", "cmd_evaluate", "strict_json"]

DEFAULT_THRESHOLD = 0.6          # = strided.face.DEFAULT_THRESHOLD (not imported: --help must not load the library)


# --------------------------------------------------------------------------- parser
def register(subparsers):
    """Add ``strided face`` and its subcommands to the top-level ``subparsers``."""
    p = subparsers.add_parser(
        "face", help="detect, verify, enroll and identify faces (face-api's models)",
        description="Face detection, verification (1:1) and recognition (1:K) with face-api's "
                    "Tiny Face Detector, 68-point landmarks and dlib's 128-d descriptor. "
                    "Same person when the Euclidean descriptor distance is below 0.6.")
    sub = p.add_subparsers(dest="face_command", metavar="SUBCOMMAND", required=True)

    models = _parent_models()
    detector = _parent_detector()
    output = _parent_output()

    d = sub.add_parser("detect", parents=[models, detector, output],
                       help="faces in photos: boxes, scores, 68 landmarks",
                       description="Find every face in each IMAGE: box [x1, y1, x2, y2], score and the 68 "
                                   "landmarks (image pixels). Prints file,x1,y1,x2,y2,score per face.")
    d.add_argument("images", nargs="+", metavar="IMAGE")
    d.add_argument("--json", action="store_true", help="print only JSON: one object per image")
    d.set_defaults(func=cmd_detect)

    v = sub.add_parser("verify", parents=[models],
                       help="are two photos the same person?",
                       description="Embed the largest face of each photo and compare: the same person when "
                                   "the Euclidean distance is below --threshold.")
    v.add_argument("image_a", metavar="IMG_A")
    v.add_argument("image_b", metavar="IMG_B")
    v.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="same person when distance < threshold (Euclidean; default %(default)s, dlib's and "
                        "face-api's; lower = fewer false accepts)")
    v.add_argument("--json", action="store_true",
                   help='print only JSON: {"verified", "distance", "threshold", "faces"}')
    v.set_defaults(func=cmd_verify)

    e = sub.add_parser("enroll", parents=[models, detector],
                       help="add a person (one or more photos) to a face database",
                       description="Embed the largest face of each IMAGE and store them under NAME in the "
                                   "database folder DB (created when missing). Nothing is stored unless "
                                   "every photo has a face. Photos are embedded --batch-size at a time; for "
                                   "portraits a smaller --input-size (e.g. 224) is faster.")
    e.add_argument("db", metavar="DB", help="face database folder")
    e.add_argument("name", metavar="NAME")
    e.add_argument("images", nargs="+", metavar="IMAGE")
    e.add_argument("--batch-size", type=int, default=8, metavar="B",
                   help="photos whose faces go through the networks together (default %(default)s)")
    e.set_defaults(func=cmd_enroll)

    i = sub.add_parser("identify", parents=[models, detector, output],
                       help="name every face in photos from a face database",
                       description="For every face in each IMAGE: the enrolled person of the nearest "
                                   "enrolled photo, or 'unknown' when it is farther than --threshold. "
                                   "Prints file,name,distance per face.")
    i.add_argument("db", metavar="DB", help="face database folder (made by `strided face enroll`)")
    i.add_argument("images", nargs="+", metavar="IMAGE")
    i.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="a face is the nearest person when distance <= threshold, else 'unknown' "
                        "(Euclidean; default %(default)s)")
    i.add_argument("--json", action="store_true", help="print only JSON: one object per image")
    i.set_defaults(func=cmd_identify)

    ls = sub.add_parser("list", help="the people in a face database",
                        description="Every enrolled person and how many photos they have.")
    ls.add_argument("db", metavar="DB")
    ls.add_argument("--json", action="store_true", help="print only JSON")
    ls.set_defaults(func=cmd_list)

    rm = sub.add_parser("remove", help="remove a person from a face database",
                        description="Forget NAME and all their photos' embeddings.")
    rm.add_argument("db", metavar="DB")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=cmd_remove)

    ev = sub.add_parser("evaluate", parents=[models, output],
                        help="verification accuracy on LFW-style pairs",
                        description="LFW protocol: embed every image of pairs.txt (images at "
                                    "ROOT/name/name_0001.jpg), 10-fold accuracy with the threshold chosen "
                                    "on the other folds, ROC AUC, EER and TAR at FAR 1e-2 / 1e-3. "
                                    "With -o: OUT/roc.png and OUT/report.json.")
    ev.add_argument("--pairs", required=True, metavar="pairs.txt", help="LFW pairs file")
    ev.add_argument("--root", required=True, metavar="DIR", help="folder of the LFW images (one folder per person)")
    ev.add_argument("--json", action="store_true", help="print only JSON (the whole report)")
    ev.set_defaults(func=cmd_evaluate)
    return p


def _parent_models():
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--model-dir", metavar="DIR", default=None,
                   help="face-api's model/ folder (default: where `strided models fetch face-api` put it, "
                        "or $STRIDED_FACEAPI_DIR)")
    return p


def _parent_detector():
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--input-size", type=int, default=416, metavar="N",
                   help="detector input side, a multiple of 32 (larger finds smaller faces; default %(default)s)")
    p.add_argument("--score-threshold", type=float, default=0.5, metavar="S",
                   help="keep faces with detector score > S (default %(default)s)")
    return p


def _parent_output():
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-o", "--out", metavar="OUT", default=None, help="folder for the pictures and files written")
    p.add_argument("--overwrite", action="store_true", help="replace files that already exist in OUT")
    return p


# --------------------------------------------------------------------------- helpers
def strict_json(data) -> str:
    """``data`` as strict JSON text: NaN and infinities become ``null`` (never ``NaN``)."""
    def clean(value):
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if hasattr(value, "tolist"):                  # numpy scalars and arrays
            return clean(value.tolist())
        return value
    return json.dumps(clean(data), allow_nan=False)


def _print_json(data) -> None:
    print(strict_json(data), flush=True)


def _note(message: str) -> None:
    print(f"strided: note: {message}", file=sys.stderr, flush=True)


def _load_models(args):
    from ..face import default_models

    if args.model_dir is not None and not Path(args.model_dir).is_dir():
        raise CLIError(f"--model-dir {args.model_dir!r} is not a folder; give face-api's model/ folder "
                       f"(installed with `strided models fetch face-api`)")
    return default_models(args.model_dir)


def _check_images(paths) -> None:
    for path in paths:
        if not Path(path).is_file():
            raise CLIError(f"image {str(path)!r} does not exist" if not Path(path).exists()
                           else f"image {str(path)!r} is not a file")


def _check_detector(args) -> None:
    if args.input_size < 32 or args.input_size % 32:
        raise CLIError(f"--input-size must be a positive multiple of 32, received {args.input_size}")
    if not 0.0 <= args.score_threshold < 1.0:
        raise CLIError(f"--score-threshold must be in [0, 1), received {args.score_threshold}")


def _check_threshold(threshold: float) -> float:
    if not math.isfinite(threshold) or threshold <= 0:
        raise CLIError(f"--threshold must be a positive Euclidean distance (dlib/face-api use 0.6), "
                       f"received {threshold}")
    return threshold


def _output_paths(args, images) -> dict:
    """``{image: OUT/<file name>}`` for annotated copies, checked before any work: one name per
    image, no input replaced, no existing file replaced without --overwrite."""
    if args.out is None:
        return {}
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"-o {args.out} is a file; give a folder for the annotated pictures")
    targets, inputs = {}, {Path(p).resolve() for p in images}
    for image in images:
        target = out / Path(image).name
        if target in targets.values():
            raise CLIError(f"two images are named {Path(image).name!r}; their annotated copies would both be "
                           f"{str(target)!r}: give them different names or write them in two runs")
        if target.resolve() in inputs:
            raise CLIError(f"-o {args.out} would replace the input photo {str(target)!r}; choose another folder")
        if target.exists() and not args.overwrite:
            raise CLIError(f"{str(target)!r} already exists; pass --overwrite to replace it or choose another -o")
        targets[image] = target
    return targets


def _make_out_dir(args) -> None:
    if args.out is not None:
        try:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"cannot create the folder -o {args.out}: {exc.strerror or exc}") from None


def _face_json(face: dict) -> dict:
    return {"box": [float(v) for v in face["box"]], "score": float(face["score"]),
            "landmarks": [[float(x), float(y)] for x, y in face["landmarks"]]}


def _detect_all(args, models, path):
    """``(pixels, faces)`` of one image named on the command line (faces with embeddings when the
    command identifies them)."""
    image = read_rgb(path)
    faces = models.detect(image, args.input_size, args.score_threshold,
                          embeddings=args.face_command == "identify")
    if not faces:
        _note(f"no face found in {path}")
    return image, faces


# --------------------------------------------------------------------------- database
def _database_exists(path: Path) -> bool:
    from ..face.database import INDEX

    return (path / INDEX).is_file()


def _open_database(path, model_id=None):
    """An EXISTING face database (a :class:`CLIError` naming what is wrong otherwise)."""
    from ..face.database import FaceDatabase, FaceDatabaseError

    path = Path(path)
    if not path.exists():
        raise CLIError(f"no face database at {str(path)!r}; create one with `strided face enroll {path} NAME IMAGE...`")
    if not _database_exists(path):
        raise CLIError(f"{str(path)!r} is not a face database (no index.json); give the folder "
                       f"`strided face enroll` made")
    try:
        return FaceDatabase(path, model_id=model_id)
    except FaceDatabaseError as exc:
        raise CLIError(str(exc)) from None


# --------------------------------------------------------------------------- commands
def cmd_detect(args) -> int:
    """``strided face detect``: every face of every photo."""
    from ..face.draw import draw_faces

    _check_detector(args)
    _check_images(args.images)
    targets = _output_paths(args, args.images)
    models = _load_models(args)
    _make_out_dir(args)
    results = []
    for path in args.images:
        image, faces = _detect_all(args, models, path)
        results.append({"image": str(path), "faces": [_face_json(f) for f in faces]})
        if path in targets:
            write_image(draw_faces(image, faces), targets[path])
        if not args.json:
            for f in faces:
                x1, y1, x2, y2 = f["box"]
                print(f"{path},{x1:.1f},{y1:.1f},{x2:.1f},{y2:.1f},{f['score']:.3f}", flush=True)
    return _finish(args, results, targets)


def _finish(args, results, targets) -> int:
    """Print the JSON array (``--json``) or where the annotated pictures went; exit code 0."""
    if args.json:
        _print_json(results)
    elif targets:
        print(f"annotated pictures in {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_verify(args) -> int:
    """``strided face verify``: the same person or not."""
    _check_threshold(args.threshold)
    _check_images([args.image_a, args.image_b])
    for path in (args.image_a, args.image_b):
        read_rgb(path)                       # an unreadable file is a usage error, named
    models = _load_models(args)
    result = models.verify(str(args.image_a), str(args.image_b), args.threshold)
    faces = []
    for path, face in zip((args.image_a, args.image_b), result["faces"]):
        out = dict(_face_json(face), image=str(path), faces_found=int(face["faces_found"]))
        if "note" in face:
            out["note"] = face["note"]
            _note(face["note"])
        faces.append(out)
    report = {"verified": bool(result["verified"]), "distance": float(result["distance"]),
              "threshold": float(result["threshold"]), "metric": result["metric"], "faces": faces}
    if args.json:
        _print_json(report)
    else:
        verdict = "same person" if report["verified"] else "different people"
        sign = "<" if report["verified"] else ">="
        print(f"{verdict}: distance {report['distance']:.4f} {sign} threshold {report['threshold']:g}")
    return EXIT_OK


def cmd_enroll(args) -> int:
    """``strided face enroll``: add NAME's photos to the database (created when missing)."""
    import numpy as np

    from ..face.database import FaceDatabase, FaceDatabaseError

    from ..face.api import NoFaceError

    _check_detector(args)
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be a positive integer, received {args.batch_size}")
    _check_images(args.images)
    db_path = Path(args.db)
    models = _load_models(args)
    db = _open_database(db_path, models.embedding_id) if _database_exists(db_path) else None
    if db is None and db_path.exists() and (not db_path.is_dir() or any(db_path.iterdir())):
        raise CLIError(f"{str(db_path)!r} is not a face database (no index.json) and not empty; give a new "
                       f"or empty folder for the database")
    vectors = []
    for start in range(0, len(args.images), args.batch_size):     # batch_size photos in memory at a time
        paths = args.images[start:start + args.batch_size]
        pixels = [read_rgb(path) for path in paths]
        faces = models.detect_many(pixels, args.input_size, args.score_threshold, embeddings=True,
                                   batch_size=args.batch_size, largest_only=True)
        for path, image, found in zip(paths, pixels, faces):
            if not found:
                raise NoFaceError(f"no face found in {path} (shape {image.shape[:2]}, detector input "
                                  f"{args.input_size}, score > {args.score_threshold})")
            if found[0]["faces_found"] > 1:
                _note(f"{found[0]['faces_found']} faces in {path}; the largest was enrolled")
            vectors.append(found[0]["embedding"])
    created = not db_path.exists()
    try:
        if db is None:
            db = FaceDatabase(db_path, model_id=models.embedding_id)
        count = db.enroll(args.name, np.stack(vectors), model_id=models.embedding_id)
    except FaceDatabaseError as exc:
        if created:                  # a bad name: leave no empty database behind
            import shutil
            shutil.rmtree(db_path, ignore_errors=True)
        raise CLIError(str(exc)) from None
    print(f"enrolled {args.name!r}: {len(vectors)} photo(s) added, {count} in all; {db_path} holds "
          f"{len(db)} people")
    return EXIT_OK


def cmd_identify(args) -> int:
    """``strided face identify``: who is every face?"""
    import numpy as np

    from ..face.draw import KNOWN_COLOUR, UNKNOWN_COLOUR, draw_faces

    _check_detector(args)
    _check_threshold(args.threshold)
    _check_images(args.images)
    targets = _output_paths(args, args.images)
    models = _load_models(args)
    db = _open_database(args.db, models.embedding_id)
    if len(db) == 0:
        _note(f"nobody is enrolled in {args.db}: every face is unknown")
    _make_out_dir(args)
    results = []
    for path in args.images:
        image, faces = _detect_all(args, models, path)
        matches = db.identify(np.stack([f["embedding"] for f in faces]), args.threshold) if faces else []
        entries = []
        for f, m in zip(faces, matches):
            entries.append(dict(_face_json(f), name=m.name, distance=m.distance))
            if not args.json:
                shown = "" if m.distance is None else f"{m.distance:.4f}"
                print(f"{path},{m.name},{shown}", flush=True)
        results.append({"image": str(path), "faces": entries})
        if path in targets:
            labels = [m.name if m.distance is None else f"{m.name} {m.distance:.2f}" for m in matches]
            colours = [KNOWN_COLOUR if m.known else UNKNOWN_COLOUR for m in matches]
            write_image(draw_faces(image, faces, labels, colours), targets[path])
    return _finish(args, results, targets)


def cmd_list(args) -> int:
    """``strided face list``: enrolled people (no model needed)."""
    db = _open_database(args.db)
    counts = db.counts()
    if args.json:
        _print_json({"database": str(args.db), "model_id": db.model_id,
                     "people": [{"name": n, "photos": c} for n, c in counts.items()]})
        return EXIT_OK
    for name, count in counts.items():
        print(f"{name}\t{count} photo{'s' if count != 1 else ''}")
    print(f"{len(counts)} people, {db.num_embeddings} embeddings, model {db.model_id}", file=sys.stderr)
    return EXIT_OK


def cmd_remove(args) -> int:
    """``strided face remove``: forget one person."""
    from ..face.database import FaceDatabaseError

    db = _open_database(args.db)
    try:
        db.remove(args.name)
    except FaceDatabaseError as exc:
        raise CLIError(str(exc)) from None
    print(f"removed {args.name!r}; {args.db} holds {len(db)} people")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    """``strided face evaluate``: LFW-style verification numbers."""
    from ..errors import DatasetUnavailable
    from ..face.evaluation import LFWFormatError, evaluate_pairs, read_lfw_pairs
    from ..fileio import atomic_write_text

    if not Path(args.root).is_dir():
        raise CLIError(f"--root {args.root!r} is not a folder of LFW images (ROOT/name/name_0001.jpg)")
    try:
        pairs = read_lfw_pairs(args.pairs, args.root)
    except (LFWFormatError, DatasetUnavailable) as exc:
        raise CLIError(str(exc)) from None
    files = ["roc.png", "report.json"]
    out = None if args.out is None else Path(args.out)
    if out is not None:
        if out.exists() and not out.is_dir():
            raise CLIError(f"-o {args.out} is a file; give a folder for roc.png and report.json")
        for name in files:
            if (out / name).exists() and not args.overwrite:
                raise CLIError(f"{str(out / name)!r} already exists; pass --overwrite to replace it or choose "
                               f"another -o")
    models = _load_models(args)
    _make_out_dir(args)
    try:
        report = evaluate_pairs(pairs, models.embed, roc_png=None if out is None else out / "roc.png",
                                on_error="skip")
    except ValueError as exc:     # too few pairs left (every image of one kind failed)
        raise CLIError(f"cannot evaluate {args.pairs}: {exc}", exit_code=EXIT_ERROR) from None
    for image, message in report["failed_images"].items():
        _note(f"skipped {image}: {message}")
    if out is not None:
        atomic_write_text(out / "report.json", strict_json(report) + "\n")
    if args.json:
        _print_json(report)
        return EXIT_OK
    k = report["kfold"]
    folds = len(k["fold_accuracies"])
    print(f"pairs: {report['pairs']} ({report['same_pairs']} same, {report['pairs'] - report['same_pairs']} "
          f"different), {report['skipped_pairs']} skipped")
    print(f"{folds}-fold accuracy: {k['accuracy']:.4f} +- {k['std']:.4f} (threshold chosen on the other folds, "
          f"mean {sum(k['thresholds']) / folds:.3f})")
    print(f"ROC AUC: {report['auc']:.4f}")
    print(f"EER: {report['eer']:.4f} at distance {report['eer_threshold']:.3f}")
    for far, entry in report["tar_at_far"].items():
        print(f"TAR@FAR={far}: {entry['tar']:.4f} (distance <= {entry['threshold']:.3f})")
    if out is not None:
        print(f"ROC: {out / 'roc.png'}; report: {out / 'report.json'}")
    return EXIT_OK
