"""strided.style: neural style transfer (Gatys et al. 2015, as the course teaches it).

* :mod:`~strided.style.costs` -- ``content_cost``, ``gram_matrix``, ``layer_style_cost``, ``style_cost``,
  ``total_cost``, ``total_variation`` with the course's normalisations.
* :mod:`~strided.style.features` -- VGG-19 / VGG-16 feature taps by layer name (``relu4_2``), weights
  from torchvision ``.pth``, Keras ``.h5`` or the course's MatConvNet ``.mat`` files.
* :mod:`~strided.style.backbones` -- the offline default network (no file needed).
* :mod:`~strided.style.optimize` -- ``stylize(content, styles, ...)``: Adam or L-BFGS on the pixels.

>>> from strided.style import stylize
>>> result = stylize(content_rgb, [style_rgb], size=256, steps=100)    # result.image: uint8 (H, W, 3)
"""
from .costs import (STYLE_LAYERS, content_cost, gram_matrix, gram_style_cost, layer_style_cost, normalized_gram,
                    style_cost, total_cost, total_variation)
from .backbones import get_backbone
from .features import VGGFeatures, load_vgg, vgg_layer_names
from .optimize import StyleResult, stylize

__all__ = ["content_cost", "gram_matrix", "normalized_gram", "layer_style_cost", "gram_style_cost", "style_cost",
           "total_cost", "total_variation", "STYLE_LAYERS", "VGGFeatures", "load_vgg", "vgg_layer_names",
           "get_backbone", "stylize", "StyleResult"]
