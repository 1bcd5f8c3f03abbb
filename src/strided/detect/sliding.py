"""Sliding windows, naively and as one convolution (the course's "convolutional
implementation of sliding windows", OverFeat).

A classifier trained on ``window x window`` crops can look at every window of a big image:

* naively (:func:`naive_sliding_windows`): crop each window (top-left corners
  ``(i * stride, j * stride)``) and run the classifier on each crop;
* convolutionally (:func:`to_fully_convolutional`): the classifier's ``Flatten -> Linear``
  becomes a ``K x K`` convolution (``K`` = the feature map side at the ``Flatten``) and
  every later ``Linear`` a ``1 x 1`` convolution, with the *same* weights reshaped, not
  retrained.  One pass over the big image then computes all windows at once, sharing the
  convolutions of overlapping windows, and gives the ``(OH, OW)`` grid of predictions for
  windows at stride ``P`` = the product of the strides of the layers before the
  ``Flatten`` (2 x 2 = 4 for LeNet-5).

The reshape: a ``Linear`` after ``Flatten`` has weight ``(K*K*C, out)`` whose rows follow
the NHWC flatten order (``h``, then ``w``, then ``c``, channels fastest), so
``weight.reshape(K, K, C, out)`` is exactly the HWIO convolution weight.

Both agree to float rounding when the layers before the ``Flatten`` use no padding (with
padding a crop would see zeros at its border where the big image has pixels);
:func:`to_fully_convolutional` refuses such models, and layers it cannot convert, naming
the layer.

>>> fcn = to_fully_convolutional(model)                 # e.g. models.create("lenet5")
>>> grid = fcn(sd.tensor(image[None]))                  # (1, OH, OW, classes)
>>> boxes = window_boxes(grid.shape[1:3], fcn.window, fcn.stride)   # (OH, OW, 4) xyxy
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .. import nn
from ..errors import StridedError
from ..functional.utils import pair
from ..tensor import Tensor, no_grad

__all__ = ["ConversionError", "FullyConvolutional", "to_fully_convolutional", "naive_sliding_windows",
           "window_grid_shape", "window_boxes", "layers_in_order"]


class ConversionError(StridedError, ValueError):
    """A model that cannot be turned into a fully convolutional one (names the layer)."""


# layers that act on the last axis only or elementwise: valid on (N, C) and on (N, H, W, C)
_POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Swish, nn.Dropout,
              nn.Identity, nn.BatchNorm2d)
_SPATIAL = (nn.Conv2d, nn.DepthwiseConv2d, nn.MaxPool2d, nn.AvgPool2d)


class FullyConvolutional(nn.Sequential):
    """A converted classifier: ``(N, H, W, C) -> (N, OH, OW, classes)``.

    ``window``: the classifier's input size ``(h, w)``; ``stride``: ``(sh, sw)`` pixels
    between neighbouring windows; output ``[n, i, j]`` is the classifier's output on
    ``image[n, i*sh : i*sh + h, j*sw : j*sw + w]``.
    """

    def __init__(self, layers, window, stride):
        super().__init__(*layers)
        self.window, self.stride = tuple(window), tuple(stride)

    def extra_repr(self):
        return f"window={self.window}, stride={self.stride}"


def layers_in_order(model: nn.Module, prefix: str = "") -> list:
    """``[(dotted name, layer), ...]``: the leaf layers of a tree of modules, in the order
    they were registered (for ``Sequential`` that is the order they run)."""
    children = list(model._modules.items())
    if not children:
        return [(prefix or type(model).__name__, model)]
    out = []
    for name, child in children:
        out += layers_in_order(child, f"{prefix}.{name}" if prefix else name)
    return out


def _kernel_stride(layer):
    """``(kernel (h, w), stride (h, w), dilation (h, w))`` of a spatial layer."""
    kernel = pair(layer.kernel_size, "kernel_size")
    stride = layer.stride if layer.stride is not None else kernel
    dilation = getattr(layer, "dilation", 1)
    return kernel, pair(stride, "stride"), pair(dilation, "dilation")


def _has_padding(layer) -> bool:
    p = layer.padding
    if isinstance(p, str):
        kernel, stride, _ = _kernel_stride(layer)
        return not (p == "valid" or (p == "same" and kernel == (1, 1) and stride == (1, 1)))
    flat = np.ravel(np.asarray(p, dtype=object)).tolist()
    return any(int(v) != 0 for v in flat)


def _channels_after(layer, channels):
    if isinstance(layer, (nn.Conv2d, nn.DepthwiseConv2d)) and layer.out_channels is not None:
        return layer.out_channels
    if isinstance(layer, nn.BatchNorm2d) and layer.num_features is not None:
        return layer.num_features
    return channels


def _linear_to_conv(name, layer: nn.Linear, kernel):
    """A ``Linear`` (weight ``(kh*kw*C, out)``) as a ``kh x kw`` valid convolution (HWIO)."""
    if layer.weight is None:
        raise ConversionError(f"layer {name!r} (Linear) has no weights yet (lazy, in_features=None); "
                              "run the model once (model.build(input_shape)) before converting")
    in_features, out_features = layer.weight.shape
    kh, kw = kernel
    if in_features % (kh * kw):
        raise ConversionError(f"layer {name!r} (Linear) has in_features={in_features}, not a multiple "
                              f"of the {kh}x{kw} feature map it should read")
    channels = in_features // (kh * kw)
    conv = nn.Conv2d(channels, out_features, (kh, kw), bias=layer.bias is not None)
    conv.weight.data = layer.weight.data.reshape(kh, kw, channels, out_features).copy()
    if layer.bias is not None:
        conv.bias.data = layer.bias.data.copy()
    return conv


def _feature_shape(spatial_layers, window):
    """Spatial size after the layers before the Flatten for a ``window`` input (valid layers)."""
    h, w = window
    for _, layer in spatial_layers:
        (kh, kw), (sh, sw), (dh, dw) = _kernel_stride(layer)
        h = (h - dh * (kh - 1) - 1) // sh + 1
        w = (w - dw * (kw - 1) - 1) // sw + 1
    return h, w


def _window_for(spatial_layers, feature):
    """Smallest input size giving ``feature`` (h, w) at the Flatten: walk the layers backwards."""
    h, w = feature
    for _, layer in reversed(spatial_layers):
        (kh, kw), (sh, sw), (dh, dw) = _kernel_stride(layer)
        h = (h - 1) * sh + dh * (kh - 1) + 1
        w = (w - 1) * sw + dw * (kw - 1) + 1
    return h, w


def to_fully_convolutional(model: nn.Module, window=None, check: bool = True) -> FullyConvolutional:
    """Turn a classifier ``conv/pool ... -> Flatten -> Linear ...`` into convolutions.

    ``model``: an ``nn.Sequential`` (nested ones too) or a module whose sub-modules run in
    the order they were registered (like ``models.create("lenet5")``: ``features`` then
    ``classifier``).  ``window``: the classifier's input size ``(h, w)`` or an int; by
    default the model's ``default_input_size`` if it has one, else the smallest input
    that gives a square feature map matching the first ``Linear``.

    Supported: ``Conv2d``, ``DepthwiseConv2d``, ``MaxPool2d``, ``AvgPool2d`` (without
    padding), ``BatchNorm``, activations, ``Dropout``, ``Identity``, one ``Flatten``, then
    ``Linear`` layers (first -> ``K x K`` conv, later -> ``1 x 1`` conv) and pointwise
    layers.  The weights are copied.  With ``check=True`` (default) the converted model is
    run on a random window and must equal the original's output (to 1e-4 relative), which
    also catches a module whose ``forward`` is not its layers in order.

    Raises :class:`ConversionError` naming the layer that cannot be converted.
    """
    layers = layers_in_order(model)
    flatten_at = [i for i, (_, layer) in enumerate(layers) if isinstance(layer, nn.Flatten)]
    if len(flatten_at) != 1:
        raise ConversionError(f"expected exactly one Flatten layer between the convolutions and the "
                              f"dense layers, found {len(flatten_at)} in {type(model).__name__}")
    f = flatten_at[0]
    before, after = layers[:f], layers[f + 1:]
    spatial, channels = [], None
    for name, layer in before:
        if isinstance(layer, _SPATIAL):
            if _has_padding(layer):
                raise ConversionError(
                    f"layer {name!r} ({type(layer).__name__}) uses padding={layer.padding!r}: a crop "
                    "would see zeros at its border where one pass over the big image sees pixels, so "
                    "sliding windows as a convolution would not equal cropping; use padding 0")
            spatial.append((name, layer))
        elif not isinstance(layer, _POINTWISE):
            raise ConversionError(f"cannot convert layer {name!r} ({type(layer).__name__}) before the "
                                  f"Flatten: supported are {', '.join(c.__name__ for c in _SPATIAL + _POINTWISE)}")
        channels = _channels_after(layer, channels)
    if not after or not isinstance(after[0][1], nn.Linear):
        first = after[0] if after else ("(nothing)", None)
        raise ConversionError(f"the layer after the Flatten must be a Linear, found {first[0]!r} "
                              f"({type(first[1]).__name__})")

    if window is None:
        window = getattr(model, "default_input_size", None)
        window = tuple(window[:2]) if window is not None else None
    if window is not None:
        window = pair(window, "window")
        feature = _feature_shape(spatial, window)
        if min(feature) < 1:
            raise ConversionError(f"window={window} is too small for the layers before the Flatten")
    else:
        in_features = after[0][1].weight.shape[0] if after[0][1].weight is not None else None
        if channels is None or in_features is None or in_features % channels:
            raise ConversionError("cannot infer the window size: pass window=(h, w) (the classifier's "
                                  "input size)")
        side = math.isqrt(in_features // channels)
        if side * side * channels != in_features:
            raise ConversionError(f"the first Linear reads {in_features} features = {channels} channels "
                                  f"x a non-square map; pass window=(h, w)")
        feature = (side, side)
        window = _window_for(spatial, feature)

    converted = [copy.deepcopy(layer) for _, layer in before]
    first = True
    for name, layer in after:
        if isinstance(layer, nn.Linear):
            converted.append(_linear_to_conv(name, layer, feature if first else (1, 1)))
            first = False
        elif isinstance(layer, _POINTWISE) or (isinstance(layer, nn.Softmax) and layer.axis in (-1,)):
            converted.append(copy.deepcopy(layer))
        else:
            raise ConversionError(f"cannot convert layer {name!r} ({type(layer).__name__}) after the "
                                  f"Flatten: supported are Linear, activations, Dropout, BatchNorm, "
                                  f"Softmax(axis=-1)")
    stride = (int(np.prod([_kernel_stride(l)[1][0] for _, l in spatial])),
              int(np.prod([_kernel_stride(l)[1][1] for _, l in spatial])))
    fcn = FullyConvolutional(converted, window, stride)
    fcn.train(model.training)
    if check:
        _check_equal(model, fcn, window, channels_in=_input_channels(before))
    return fcn


def _input_channels(before):
    for _, layer in before:
        if isinstance(layer, (nn.Conv2d, nn.DepthwiseConv2d)) and layer.in_channels is not None:
            return layer.in_channels
        if isinstance(layer, nn.BatchNorm2d) and layer.num_features is not None:
            return layer.num_features
    return None


def _check_equal(model, fcn, window, channels_in):
    if channels_in is None:
        return
    params = model.parameters()
    dtype = params[0].dtype if params else np.float32
    x = np.random.default_rng(0).random((2, window[0], window[1], channels_in)).astype(dtype)
    modes = model.training
    model.eval(), fcn.eval()
    try:
        with no_grad():
            want = np.asarray(model(Tensor(x)).data, np.float64)
            got = np.asarray(fcn(Tensor(x)).data, np.float64)
    finally:
        model.train(modes), fcn.train(modes)
    same = got.shape == (len(x), 1, 1) + want.shape[1:] and np.allclose(
        got.reshape(want.shape), want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want).max())))
    if not same:
        raise ConversionError(f"the converted model does not reproduce {type(model).__name__} on a "
                              f"{window} window (its forward is probably not its layers in "
                              f"registration order)")


def window_grid_shape(image_shape, window, stride) -> tuple:
    """``(OH, OW)``: windows ``(h, w)`` at ``stride`` that fit in an ``(H, W)`` image:
    ``floor((H - h) / sh) + 1``."""
    (H, W), (h, w), (sh, sw) = image_shape[:2], pair(window, "window"), pair(stride, "stride")
    if H < h or W < w:
        raise ConversionError(f"image of size {(H, W)} is smaller than the window {(h, w)}")
    return (H - h) // sh + 1, (W - w) // sw + 1


def window_boxes(grid_shape, window, stride) -> np.ndarray:
    """``(OH, OW, 4)`` xyxy pixel boxes of the windows of a grid: window ``(i, j)`` is
    ``[j*sw, i*sh, j*sw + w, i*sh + h]``."""
    (OH, OW), (h, w), (sh, sw) = grid_shape, pair(window, "window"), pair(stride, "stride")
    y0 = (np.arange(OH) * sh)[:, None].repeat(OW, 1)
    x0 = (np.arange(OW) * sw)[None, :].repeat(OH, 0)
    return np.stack([x0, y0, x0 + w, y0 + h], axis=-1).astype(np.float32)


def naive_sliding_windows(model: nn.Module, images, window, stride, batch_size: int = 256) -> np.ndarray:
    """Crop every window and classify each crop: ``(N, H, W, C)`` (or ``(H, W, C)``) ->
    ``(N, OH, OW, outputs)`` (or ``(OH, OW, outputs)``), model in eval mode, no graph.

    Window ``(i, j)`` is ``images[:, i*sh : i*sh + h, j*sw : j*sw + w]``.
    """
    images = np.asarray(images.data if isinstance(images, Tensor) else images)
    single = images.ndim == 3
    if single:
        images = images[None]
    if images.ndim != 4:
        raise ConversionError(f"images must be (N, H, W, C) or (H, W, C), received shape {images.shape}")
    (h, w), (sh, sw) = pair(window, "window"), pair(stride, "stride")
    OH, OW = window_grid_shape(images.shape[1:3], (h, w), (sh, sw))
    views = np.lib.stride_tricks.sliding_window_view(images, (h, w), axis=(1, 2))
    crops = views[:, ::sh, ::sw][:, :OH, :OW]                     # (N, OH, OW, C, h, w)
    crops = crops.transpose(0, 1, 2, 4, 5, 3).reshape(-1, h, w, images.shape[3])
    mode = model.training
    model.eval()
    outs = []
    try:
        with no_grad():
            for start in range(0, len(crops), batch_size):
                outs.append(np.asarray(model(Tensor(np.ascontiguousarray(crops[start:start + batch_size]))).data))
    finally:
        model.train(mode)
    out = np.concatenate(outs).reshape(len(images), OH, OW, -1)
    return out[0] if single else out
