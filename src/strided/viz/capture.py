"""Finding a layer by name and capturing what it outputs.

A layer is named as in ``model.named_modules()`` (``"features.3"``,
``"layer2.0.conv1"``).  Its output is captured with a forward hook
(:func:`strided.nn.capture_outputs`), removed afterwards, also when the
forward pass raises.  The pass stops right after the captured layer
(``stop=True``, the hooks' documented way to end a pass), so nothing after it
is computed; the model runs in ``model.evaluating()``, which gives every
sub-module its own train/eval flag back.

>>> maps = feature_maps(model, image, "features.0")      # (H, W, C) ndarray
"""
from __future__ import annotations

import numpy as np

from ..data.image import to_float
from ..nn.layers import Conv2d, DepthwiseConv2d
from ..nn.hooks import capture_outputs
from ..tensor import Tensor, no_grad
from ..errors import StridedError

__all__ = ["VizError", "is_conv2d", "conv_layers", "get_layer", "feature_maps", "layer_output", "as_model_input"]




class VizError(StridedError, ValueError):
    """A bad layer name, unit or input for a visualisation; the message says what is valid."""


# --------------------------------------------------------------------------- layers by name
def is_conv2d(module) -> bool:
    """True for a 2-D convolution layer (``Conv2d``, ``DepthwiseConv2d``)."""
    return isinstance(module, (Conv2d, DepthwiseConv2d))


def conv_layers(model) -> list:
    """Names of the 2-D convolutions (``Conv2d``, ``DepthwiseConv2d``) of ``model``, in order."""
    return [name for name, m in model.named_modules() if name and is_conv2d(m)]


def get_layer(model, name: str):
    """The sub-module called ``name``; an unknown name raises :class:`VizError` listing the conv layers."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or not name or name not in modules:
        convs = conv_layers(model)
        raise VizError(f"unknown layer {name!r}; the conv layers of {type(model).__name__} are: "
                       f"{', '.join(convs) if convs else '(none)'} (`strided viz layers` lists every layer)")
    return modules[name]


# --------------------------------------------------------------------------- inputs
def as_model_input(images) -> np.ndarray:
    """Images as the float32 ``(N, H, W, C)`` batch a model takes: uint8 is scaled to [0, 1]
    (as :class:`strided.data.DataLoader` does); one image ``(H, W, C)`` or ``(H, W)`` gets a batch axis."""
    x = images.data if isinstance(images, Tensor) else np.asarray(images)
    if x.ndim == 2:
        x = x[None, :, :, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise VizError(f"expected an image (H, W, C) / (H, W) or a batch (N, H, W, C), received shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise VizError(f"images must hold numbers, received dtype {x.dtype}")
    return np.ascontiguousarray(to_float(x))


# --------------------------------------------------------------------------- capturing
def layer_output(model, layer: str, images) -> np.ndarray:
    """Run ``model`` (eval mode, no graph) on a batch and return ``layer``'s output as an ndarray.

    ``images`` is ``(N, H, W, C)`` (or one image, see :func:`as_model_input`).
    The pass stops after the layer.  A module called several times in one
    forward (a shared ``ReLU``) is captured at its first call.
    """
    module = get_layer(model, layer)
    x = Tensor(as_model_input(images))
    with capture_outputs(model, [layer], stop=True) as captured, model.evaluating(), no_grad():
        model(x)
    store = list(captured.values())
    if not store:
        raise VizError(f"layer {layer!r} ({type(module).__name__}) is not used by {type(model).__name__}.forward")
    out = store[0]
    if isinstance(out, (tuple, list)):
        raise VizError(f"layer {layer!r} returns a {type(out).__name__}, not one tensor")
    return out.data if isinstance(out, Tensor) else np.asarray(out)


def feature_maps(model, image, layer: str) -> np.ndarray:
    """The output of ``layer`` for one image: ``(H, W, C)`` for a spatial layer.

    ``image`` is ``(H, W, C)`` or ``(H, W)``, uint8 (scaled to [0, 1]) or float
    (used as is).  The model runs in eval mode without a graph; its modes and
    ``forward`` methods are left as they were.  A layer with a non-spatial
    output (``Linear``) gives its ``(features,)`` vector.

    >>> maps = feature_maps(lenet, image, "features.1")   # after the first ReLU: (28, 28, 6)
    """
    image = image.data if isinstance(image, Tensor) else np.asarray(image)
    if image.ndim not in (2, 3):
        raise VizError(f"feature_maps takes one image (H, W, C) or (H, W), received shape {image.shape}")
    return layer_output(model, layer, image)[0]
