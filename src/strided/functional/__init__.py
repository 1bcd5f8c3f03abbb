"""strided.functional: every op as a function (forward and backward side by side).

>>> import strided as sd, strided.functional as F
>>> y = F.relu(F.conv2d(x, w, b, stride=1, padding="same"))
"""
from ..tensor import concat, stack, where
from ..tensor import pad as _pad
from .activation import leaky_relu, log_softmax, relu, relu6, sigmoid, softmax, swish, tanh
from .conv import conv, conv2d, conv3d, conv_output_shape
from .linear import dropout, linear
from .loss import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from .norm import batch_norm
from .parallel import get_num_threads, set_num_threads
from .pool import avg_pool2d, global_avg_pool2d, max_pool2d
from .utils import get_conv_outsize, pair, resolve_padding


def pad(x, pad_width, value: float = 0.0):
    """Constant padding.  ``pad_width``: one ``(before, after)`` pair per axis (as ``np.pad``),
    or, for a 4-D NHWC input, anything conv2d accepts as ``padding`` (applied to H and W)."""
    from ..tensor import as_tensor
    x = as_tensor(x)
    try:
        pairs = tuple(tuple(p) for p in pad_width)
        if len(pairs) == x.ndim and all(len(p) == 2 for p in pairs):
            return _pad(x, pairs, value)
    except TypeError:
        pass
    if x.ndim != 4:
        raise ValueError(f"pad_width must give one (before, after) pair per axis ({x.ndim}), "
                         f"received pad_width={pad_width!r}")
    pads = resolve_padding(pad_width, x.shape[1:3], (1, 1), (1, 1), (1, 1))
    return _pad(x, ((0, 0),) + pads + ((0, 0),), value)


__all__ = ["conv", "conv2d", "conv3d", "conv_output_shape", "max_pool2d", "avg_pool2d",
           "global_avg_pool2d", "batch_norm", "linear", "relu", "relu6", "leaky_relu", "sigmoid",
           "tanh", "swish", "softmax", "log_softmax", "dropout", "pad", "concat", "stack", "where",
           "cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "get_conv_outsize",
           "pair", "resolve_padding", "get_num_threads", "set_num_threads"]
