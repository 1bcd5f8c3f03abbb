"""Helpers shared by the command modules: images for a model, run directories, data, models.

Command modules (:mod:`strided.cli.train`, ``data``, ``viz``, ``edges``) import only this
module, :mod:`strided.cli.errors` and the library (the modules of the ``train`` package also
import each other).  Everything here turns the library's
errors about what the user named (an image, a run directory, a data set) into a
:class:`~strided.cli.errors.CLIError` whose message names the file or value and says what
to do.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..data.image import write_image
from .errors import EXIT_ERROR, CLIError

__all__ = ["SAMPLE_IMAGE", "default_sample_image", "read_rgb", "read_image_for_model", "write_gray_png", "write_image",
           "RunDir", "load_run", "build_model", "is_transfer", "is_detection", "load_data", "model_input_size",
           "detection_net_size"]

SAMPLE_IMAGE = "grace_hopper.jpg"


# --------------------------------------------------------------------------- images
def default_sample_image() -> Path:
    """Path of matplotlib's bundled sample photo ``grace_hopper.jpg``."""
    try:
        from matplotlib import cbook

        path = Path(cbook.get_sample_data(SAMPLE_IMAGE, asfileobj=False))
    except Exception as exc:  # matplotlib missing, or sample data not installed
        raise CLIError(
            f"no IMAGE given and the default sample photo {SAMPLE_IMAGE!r} from "
            f"matplotlib could not be found ({exc}); pass an image path"
        ) from None
    if not path.is_file():
        raise CLIError(
            f"no IMAGE given and the default sample photo {SAMPLE_IMAGE!r} is missing "
            f"(looked at {path}); pass an image path"
        )
    return path


def read_rgb(path, grayscale: bool = False):
    """An image file named on the command line as ``uint8`` ``(H, W, 3)`` (``(H, W, 1)`` gray).

    :func:`strided.data.image.read_image` reads it (bit depth, alpha and size rules there);
    its :class:`~strided.errors.ImageError` becomes a :class:`CLIError`.
    """
    from ..data.image import read_image
    from ..errors import ImageError

    try:
        return read_image(path, grayscale=grayscale)
    except ImageError as exc:
        raise CLIError(str(exc)) from None


def read_image_for_model(path, shape):
    """The image ``path`` as ``float32`` ``shape = (H, W, C)`` in [0, 1], ready for a model.

    Gray (``C = 1``) or RGB; the shorter side is scaled to fit and the centre cut out
    (:func:`strided.data.folder.resize_center_crop`, as folder data sets are read), so an
    image of the right aspect ratio is simply resized.
    """
    from ..data.folder import resize_center_crop
    from ..data.image import to_float

    if not Path(path).exists():
        raise CLIError(f"image {str(path)!r} does not exist")
    H, W, C = (int(s) for s in shape)
    image = resize_center_crop(read_rgb(path, grayscale=C == 1), (H, W))
    return to_float(image).reshape(H, W, C)


def write_gray_png(array, path) -> Path:
    """Write a 2-D ``uint8`` array as a grayscale image (PNG unless the suffix names another
    format Pillow writes), atomically."""
    return write_image(array, path)


def is_transfer(config) -> bool:
    """A pretrained network behind an input adapter (``--pretrained``; older runs also
    recorded ``input_size`` alone)."""
    return bool(config.get("pretrained")) or bool(config.get("input_size"))


def is_detection(config) -> bool:
    """A detection run (``strided train --task detect``): a YOLO model on a scenes data set."""
    return config.get("task") == "detect"


def detection_net_size(config) -> int:
    """The side a detection run's network sees: ``net_size`` (``--net-size``), else the scenes'
    side ``image_size`` (runs made before ``--net-size`` existed)."""
    return int(config.get("net_size") or config["image_size"])


def model_input_size(name: str) -> int:
    """The side of the images model ``name`` takes by default (``default_input_size``)."""
    from .. import models

    try:
        model = models.create(name)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    size = getattr(model, "default_input_size", None)
    if size is None:
        raise CLIError(f"model {name!r} has no default input size; pass --input-size N")
    return int(size[0])


def build_model(config, image_shape, num_classes, load_pretrained=False):
    """The network a run's ``config`` describes, for images ``image_shape`` ``(H, W, C)``.

    Transfer runs get the pretrained architecture behind an input adapter (resize to
    ``input_size``, RGB, normalise), so it takes the data set's own images; the weights come
    from the package only when ``load_pretrained`` (training starts); evaluate and predict
    load the run's checkpoint.
    """
    from .. import models
    from ..errors import ModelFileError

    if is_detection(config):
        try:
            return models.create(config["model"], num_classes=num_classes, anchors=config["anchors"],
                                 input_size=detection_net_size(config))
        except (ValueError, TypeError) as exc:
            raise CLIError(f"--model {config['model']}: {exc} (detection takes a YOLO model such as yolo_tiny)") \
                from None
    if is_transfer(config):
        from ..transfer import with_input_adapter

        pretrained = config.get("pretrained") if load_pretrained else False
        try:
            net = models.create(config["model"], pretrained=pretrained or False, num_classes=num_classes)
        except ImportError as exc:
            raise CLIError(str(exc)) from None
        except (ModelFileError, ValueError, TypeError, OSError) as exc:
            raise CLIError(f"--pretrained: {exc}") from None
        return with_input_adapter(net, config["input_size"])
    kwargs = {"num_classes": num_classes, "in_channels": image_shape[-1]}
    if config["model"] == "lenet5":
        if image_shape[0] not in (28, 32) or image_shape[0] != image_shape[1]:
            raise CLIError(f"lenet5 takes 28x28 or 32x32 images, the data set has {image_shape[0]}x{image_shape[1]}; "
                           f"choose another --model (or, for folder: data, --input-size 32)")
        kwargs["input_size"] = image_shape[0]
    try:
        return models.create(config["model"], **kwargs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


# --------------------------------------------------------------------------- data
def load_data(config, raise_mixed: bool = False):
    """``(train, test)`` of ``config["data"]`` (``data_root``, ``limit``, ``image_size``).

    ``image_size`` (folder data only) brings every image to that size (shorter side, then the
    centre).  Loading errors become a :class:`CLIError` naming the data set and the file; with
    ``raise_mixed`` a folder of differently sized images raises
    :class:`~strided.data.folder.MixedImageSizes` instead (the caller picks a size).
    """
    import numpy as np

    from ..data import load
    from ..data.folder import MixedImageSizes
    from ..errors import StridedError

    name, options = config["data"], {}
    if is_detection(config):
        # generated scenes: --limit / --test-limit are how many are made, image_size their side
        options = {"size": int(config["image_size"])}
        if config.get("limit"):
            options["train"] = int(config["limit"])
        if config.get("test_limit"):
            options["test"] = int(config["test_limit"])
        if config.get("fresh_scenes"):
            options["fresh"] = True
    elif config.get("image_size"):
        if not name.startswith("folder:"):
            raise CLIError(f"--input-size without --pretrained resizes the photos of folder:PATH data sets; "
                           f"{name!r} has images of one fixed size: drop --input-size")
        options["image_size"] = int(config["image_size"])
    try:
        train, test = load(name, root=config.get("data_root"), **options)
    except MixedImageSizes as exc:
        if raise_mixed:
            raise
        raise CLIError(f"cannot load data set {name!r}: {exc}") from None
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    except (StridedError, ValueError, OSError) as exc:
        raise CLIError(f"cannot load data set {name!r}: {exc}") from None
    if config.get("limit") and not is_detection(config):
        train = train.subset(np.arange(min(config["limit"], len(train))))
    return train, test


# --------------------------------------------------------------------------- run directories
class RunDir:
    """A run directory written by ``strided train``::

        config.json                       everything needed to rebuild the run
        checkpoints/best.safetensors      the best epoch (by the monitored metric)
        checkpoints/last.safetensors      the latest state (for --resume)
        metrics.json                      history and, once finished, test results
        curves.png confusion.png predictions.png   (detection runs: also pr_curve.png)
    """

    CONFIG, METRICS = "config.json", "metrics.json"
    PICTURES = ("curves.png", "confusion.png", "predictions.png", "pr_curve.png")

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    def checkpoint(self, which: str) -> Path:
        """``checkpoints/{which}.safetensors`` (``which`` is ``best`` or ``last``)."""
        return self.path / "checkpoints" / f"{which}.safetensors"

    def is_run(self) -> bool:
        """Does it hold a run worth keeping: checkpoints or metrics?  (A ``config.json`` alone is
        what a run that stopped before its first epoch leaves: nothing to lose.)"""
        return self.metrics_path.exists() or (self.path / "checkpoints").exists()

    # ----- a new run
    def check_new(self, overwrite: bool = False) -> None:
        """Refuse a file, and an existing run unless ``overwrite`` (a :class:`CLIError` that
        suggests --resume or a new directory)."""
        if self.path.exists() and not self.path.is_dir():
            raise CLIError(f"--out {self.path} is a file, not a directory; give a new directory for the run")
        if self.is_run() and not overwrite:
            raise CLIError(f"--out {self.path} already holds a run (checkpoints, metrics); continue it with "
                           f"`strided train --resume {self.path}`, choose a new directory, or pass --overwrite "
                           f"to replace it")

    def create(self, overwrite: bool = False) -> None:
        """Make the directory of a new run (after :meth:`check_new`); with ``overwrite`` the old
        run's config, checkpoints, metrics and pictures are removed first."""
        self.check_new(overwrite)
        if overwrite:
            for name in (self.CONFIG, self.METRICS, *self.PICTURES):
                (self.path / name).unlink(missing_ok=True)
            shutil.rmtree(self.path / "checkpoints", ignore_errors=True)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"cannot create the run directory {str(self.path)!r}: {exc.strerror or exc}") from None

    # ----- files
    def _read_json(self, path: Path, what: str) -> dict:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CLIError(f"{str(path)!r} is not valid JSON ({exc}); the run's {what} is damaged: restore the "
                           f"file, or train a new run with --out NEW_DIR") from None
        except OSError as exc:
            raise CLIError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
        if not isinstance(data, dict):
            raise CLIError(f"{str(path)!r} should hold a JSON object, found {type(data).__name__}; the run's "
                           f"{what} is damaged")
        return data

    def read_config(self) -> dict:
        """``config.json`` as a dict; a missing or damaged file is a :class:`CLIError`."""
        if not self.config_path.is_file():
            raise CLIError(f"{self.path} is not a run directory (no config.json); train one with "
                           f"`strided train --out DIR`")
        config = self._read_json(self.config_path, "configuration")
        missing = [k for k in ("model", "data", "classes", "image_shape") if k not in config]
        if missing:
            raise CLIError(f"{str(self.config_path)!r} lacks {', '.join(missing)}; the run's configuration is "
                           f"damaged or not from `strided train`")
        return config

    def write_config(self, config: dict) -> None:
        from ..fileio import atomic_write_json

        atomic_write_json(self.config_path, config)

    def read_metrics(self) -> dict:
        """``metrics.json`` (``{}`` when there is none yet)."""
        return self._read_json(self.metrics_path, "metrics") if self.metrics_path.is_file() else {}

    def write_metrics(self, metrics: dict) -> None:
        from ..fileio import atomic_write_json

        atomic_write_json(self.metrics_path, metrics)

    def load_model(self, config: dict, which: str = "best"):
        """The run's model with the weights of checkpoint ``which``."""
        from ..checkpoint import load_weights
        from ..errors import CheckpointError

        model = build_model(config, tuple(config["image_shape"]), len(config["classes"]))
        try:
            load_weights(model, self.checkpoint(which))
        except CheckpointError as exc:
            raise CLIError(str(exc)) from None
        return model


def load_run(run_dir, which: str = "best"):
    """``(RunDir, config, model)`` of a run directory, with checkpoint ``which`` loaded."""
    run = RunDir(run_dir)
    config = run.read_config()
    return run, config, run.load_model(config, which)
