"""``strided data``: list, fetch and look at the data sets.

Usage::

    strided data list
    strided data fetch NAME              # also: strided data fetch darknet (cfgs, class names, photos)
    strided data show NAME [--split train|test] [--augment] [--n 8] [--rows 3] -o grid.png

``fetch`` installs a missing data set with the system's own package tools (it prints
each command before running it): ``apt-get install -y dataset-fashion-mnist`` (after an
``apt-get update`` if the first try fails) or ``python -m pip install PACKAGE``.
``fetch darknet`` installs Debian's ``darknet`` package the same way: its cfgs
(``yolov2-tiny-voc.cfg`` ...), ``coco.names`` / ``voc.names`` and sample photos, for
``strided detect --darknet`` (the weights are files you bring).
"""
from __future__ import annotations

import importlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import EXIT_OK, CLIError

__all__ = ["register", "cmd_data_list", "cmd_data_fetch", "cmd_data_show"]


def register(subparsers):
    """Register ``strided data {list,fetch,show}`` on the top-level ``subparsers``."""
    p = subparsers.add_parser(
        "data", help="list, fetch and look at the data sets",
        description="Data sets come from installed packages or from your own files; "
                    "nothing is downloaded except by `strided data fetch`, which runs "
                    "apt-get or pip.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="which data sets are here, and how to get the others")
    ls.set_defaults(func=cmd_data_list)

    fetch = sub.add_parser("fetch", help="install a missing data set (apt-get or pip)")
    fetch.add_argument("name", metavar="NAME", help="a name from `strided data list`, or darknet (Debian's "
                                                    "darknet package: YOLO cfgs, class names, photos)")
    fetch.set_defaults(func=cmd_data_fetch)

    show = sub.add_parser(
        "show", help="write a grid of example images (and augmented copies) as a PNG",
        description="A row of example images (one per class in turn) with their class "
                    "names; with --augment, rows of randomly augmented copies of the "
                    "same images (the data set's standard augmentation).")
    show.add_argument("name", metavar="NAME",
                      help="a name from `strided data list`, folder:PATH or "
                           "h5:TRAIN.h5[,TEST.h5]")
    show.add_argument("-o", "--output", required=True, metavar="OUT.png",
                      help="output PNG path")
    show.add_argument("--split", choices=("train", "test"), default="train",
                      help="which split to show (default: train)")
    show.add_argument("--augment", action="store_true",
                      help="add rows of augmented copies")
    show.add_argument("--n", type=int, default=8, help="images per row (default: 8)")
    show.add_argument("--rows", type=int, default=3,
                      help="rows of augmented copies with --augment (default: 3)")
    show.add_argument("--seed", type=int, default=0,
                      help="seed for picking and augmenting images (default: 0)")
    show.add_argument("--data-root", metavar="DIR", default=None,
                      help="folder holding the data set's files instead of the usual place")
    show.add_argument("--image-size", type=int, default=None, metavar="S",
                      help="folder:PATH only: resize images to SxS")
    show.set_defaults(func=cmd_data_show)
    return p


# --------------------------------------------------------------------------- list
def cmd_data_list(args) -> int:
    """``strided data list``: a table of name, present yes/no, location or how to get."""
    from ..data.sources import PATTERNS, info

    rows = [(r.name, "yes" if r.present else "no",
             r.where if r.present else r.how_to_get) for r in info()]
    width = max(len("NAME"), *(len(r[0]) for r in rows))
    print(f"{'NAME':<{width}}  PRESENT  WHERE / HOW TO GET")
    for name, present, where in rows:
        print(f"{name:<{width}}  {present:<7}  {where}")
    print()
    for pattern, text in PATTERNS.items():
        print(f"{pattern}: {text}")
    for name, (what, locate, (kind, package)) in EXTRAS.items():
        where = locate()
        state = f"present at {where}" if where is not None else f"missing: strided data fetch {name}"
        print(f"{name}: {what}; {state}")
    return EXIT_OK


# --------------------------------------------------------------------------- fetch
def _run(command) -> int:
    print("$ " + shlex.join(command), flush=True)
    return subprocess.run(command, check=False).returncode


def _install(kind: str, package: str) -> int:
    """Run the install command(s); return the last exit status."""
    if kind == "pip":
        return _run([sys.executable, "-m", "pip", "install", package])
    if shutil.which("apt-get") is None:
        raise CLIError(f"apt-get not found (not a Debian/Ubuntu system), so "
                       f"{package!r} cannot be installed here")
    install = ["apt-get", "install", "-y", package]
    rc = _run(install)
    if rc != 0:                          # stale package lists: update, then try again
        print(f"apt-get install failed (exit {rc}); updating the package lists first",
              flush=True)
        _run(["apt-get", "update"])
        rc = _run(install)
    return rc


def _locate_darknet(root=None):
    """darknet's shared files (Debian package ``darknet``): the folder, or None when missing."""
    from ..detect.darknet import DARKNET_DATA

    folder = Path(root) if root is not None else DARKNET_DATA
    needed = (folder / "cfg" / "yolov2-tiny-voc.cfg", folder / "data" / "coco.names", folder / "data" / "voc.names")
    return folder if all(p.is_file() for p in needed) else None


# installable files that are not data sets: name -> (what, locate(), (kind, package))
EXTRAS = {"darknet": ("darknet's YOLO cfgs, coco.names / voc.names and sample photos (for strided detect "
                      "--darknet)", _locate_darknet, ("apt", "darknet"))}


def _fetch_extra(name: str) -> int:
    what, locate, (kind, package) = EXTRAS[name]
    where = locate()
    if where is not None:
        print(f"{name}: already present at {where}; nothing to do")
        return EXIT_OK
    rc = _install(kind, package)
    where = locate()
    if where is None:
        raise CLIError(f"{name} is still missing after installing {package!r} (exit {rc}); it holds {what}; "
                       f"install it with `apt-get install {package}` (Debian/Ubuntu)")
    print(f"{name}: ready at {where}")
    return EXIT_OK


def cmd_data_fetch(args) -> int:
    """``strided data fetch NAME``: install what is missing; nothing to do if present."""
    from ..data.sources import DATASETS

    if args.name in EXTRAS:
        return _fetch_extra(args.name)
    source = DATASETS.get(args.name)
    if source is None:
        if args.name.startswith(("folder:", "h5:")):
            raise CLIError(f"{args.name!r} is your own files: there is nothing to fetch")
        raise CLIError(f"unknown data set {args.name!r}; known: {', '.join([*DATASETS, *EXTRAS])}")
    where = source.locate()
    if where is not None:
        print(f"{source.name}: already present at {where}; nothing to do")
        return EXIT_OK
    kind, package = source.install
    rc = _install(kind, package)
    importlib.invalidate_caches()        # let find_spec see a package pip just installed
    where = source.locate()
    if where is None:
        raise CLIError(f"{source.name} is still missing after installing {package!r} "
                       f"(exit {rc}); to get it: {source.how_to_get}")
    print(f"{source.name}: ready at {where}")
    return EXIT_OK


# --------------------------------------------------------------------------- show
def _pick(labels, n: int, rng):
    """``n`` indices, one per class in turn (class 0, 1, ..., then again), at random."""
    import numpy as np

    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    picked, round_ = [], 0
    while len(picked) < min(n, len(labels)):
        for members in by_class:
            if round_ < len(members) and len(picked) < n:
                picked.append(members[round_])
        round_ += 1
    return np.array(picked, dtype=np.int64)


def _draw_grid(rows, row_names, titles, path, suptitle):
    """Save a grid of images: ``rows`` a list of float batches ``(n, H, W, C)``."""
    from matplotlib.figure import Figure

    n = len(rows[0])
    fig = Figure(figsize=(1.3 * n + 0.6, 1.45 * len(rows) + 0.5), layout="constrained")
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, batch in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            image = batch[c]
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.imshow(image.clip(0.0, 1.0))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(row_names[r], fontsize=8)
    fig.suptitle(suptitle, fontsize=8)
    from ..fileio import atomic_write

    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    except ValueError as exc:
        raise CLIError(f"cannot write {str(path)!r}: {exc}") from None


def cmd_data_show(args) -> int:
    """``strided data show NAME``: write a PNG grid of examples (and augmented copies)."""
    import numpy as np

    from ..data import augment
    from ..data.folder import MixedImageSizes
    from ..data.image import to_float
    from ..data.sources import load
    from ..errors import StridedError

    if args.n < 1 or args.rows < 1:
        raise CLIError(f"--n and --rows must be >= 1, received --n {args.n} "
                       f"--rows {args.rows}")
    options = {}
    if args.image_size is not None:
        if not args.name.startswith("folder:"):
            raise CLIError("--image-size applies to folder:PATH data sets only")
        options["image_size"] = args.image_size
    from ..data.scenes import GENERATED_DATASETS
    if args.name in GENERATED_DATASETS:
        # generated on the fly: only the images shown (the same generator and seed as the full set;
        # its images depend on the count, so they are not the first of the full set)
        options.update(train=args.n, test=args.n)
    try:
        train, test = load(args.name, root=args.data_root, **options)
    except MixedImageSizes as exc:
        raise CLIError(f"{exc} (on the command line: --image-size S)") from None
    except (StridedError, FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    dataset = train if args.split == "train" else test
    if len(dataset) == 0:
        raise CLIError(f"{dataset.name} is empty")
    if hasattr(dataset, "boxes"):          # a generated detection / localisation set
        return _show_boxes(args, dataset)
    rng = np.random.default_rng(args.seed)
    indices = _pick(dataset.labels, args.n, rng)
    x, y = dataset.get_batch(indices)
    x = to_float(x)
    rows, row_names = [x], ["original"]
    suptitle = f"{dataset.name} ({len(dataset)} images {'x'.join(map(str, dataset.image_shape))})"
    if args.augment:
        pipeline = augment.standard(args.name.split(":")[0] if ":" in args.name
                                    else args.name, channels=dataset.image_shape[-1])
        for r in range(args.rows):
            rows.append(pipeline(x, rng))
            row_names.append(f"augmented {r + 1}")
        steps = ", ".join(repr(t) for t in pipeline.transforms)
        suptitle += f"\naugment: {steps}"
    titles = [dataset.classes[int(label)] for label in y]
    _draw_grid(rows, row_names, titles, Path(args.output), suptitle)
    print(f"wrote {args.output} ({len(rows)} rows x {len(indices)} images of "
          f"{dataset.name})")
    return EXIT_OK


# --------------------------------------------------------------------------- show: boxes
def _objects(dataset, i):
    """``(boxes (k, 4), labels (k,), landmarks (k, 4, 2) or None)`` of image ``i`` of a
    SceneSet (several objects) or a LocalizationSet (one object or none, with landmarks)."""
    import numpy as np

    if isinstance(dataset.boxes, list):                      # SceneSet
        return dataset.boxes[i], dataset.labels[i], None
    has = dataset.labels[i] >= 0
    k = 1 if has else 0
    return (dataset.boxes[i:i + 1][:k], dataset.labels[i:i + 1][:k],
            dataset.landmarks[i:i + 1][:k] if has else np.zeros((0, 4, 2)))


def _show_boxes(args, dataset) -> int:
    """``strided data show digit-scenes``: images with their boxes and class names (and the 4
    landmarks of a -loc set); with --augment, rows of box-aware augmented copies
    (:class:`strided.data.box_augment.BoxAugment`: the boxes move with the image)."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from ..data.box_augment import BoxAugment
    from ..data.image import to_float
    from ..fileio import atomic_write

    rng = np.random.default_rng(args.seed)
    indices = np.sort(rng.choice(len(dataset), size=min(args.n, len(dataset)), replace=False))
    rows, row_names = [[(to_float(dataset.images[i]), *_objects(dataset, i)) for i in indices]], ["original"]
    if args.augment:
        augment = BoxAugment()
        for r in range(args.rows):
            row = []
            for image, boxes, labels, marks in rows[0]:
                image2, boxes2, labels2 = augment(image, boxes, labels, rng)
                row.append((image2, boxes2, labels2, None))
            rows.append(row)
            row_names.append(f"augmented {r + 1}")
    n = len(indices)
    fig = Figure(figsize=(1.6 * n + 0.6, 1.75 * len(rows) + 0.5), layout="constrained")
    axes = fig.subplots(len(rows), n, squeeze=False)
    colours = [f"C{k}" for k in range(10)]
    for r, row in enumerate(rows):
        for c, (image, boxes, labels, marks) in enumerate(row):
            ax = axes[r][c]
            ax.imshow(image.clip(0.0, 1.0), interpolation="nearest")
            for (x1, y1, x2, y2), k in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(labels).reshape(-1)):
                colour = colours[int(k) % 10]
                ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=1.2, ec=colour))
                ax.text(x1 - 0.5, y1 - 1, dataset.classes[int(k)], color="white", fontsize=6, va="bottom",
                        bbox=dict(fc=colour, ec="none", pad=0.5))
            if marks is not None and len(marks):
                points = np.asarray(marks).reshape(-1, 2) - 0.5      # pixel edges -> imshow's centres
                ax.plot(points[:, 0], points[:, 1], "o", ms=2.5, color="yellow")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(row_names[r], fontsize=8)
    size = "x".join(map(str, dataset.images.shape[1:]))
    fig.suptitle(f"{args.name} {args.split}: {len(dataset)} generated images {size} (boxes"
                 f"{' and 4 landmarks' if not isinstance(dataset.boxes, list) else ''})", fontsize=8)
    path = Path(args.output)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    except ValueError as exc:
        raise CLIError(f"cannot write {str(path)!r}: {exc}") from None
    print(f"wrote {args.output} ({len(rows)} rows x {n} generated images of {args.name}, with boxes)")
    return EXIT_OK
