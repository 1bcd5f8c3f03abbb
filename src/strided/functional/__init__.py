"""strided.functional: every op as a function (forward and backward side by side).

>>> import strided as sd, strided.functional as F
>>> y = F.relu(F.conv2d(x, w, b, stride=1, padding="same"))

This file only re-exports; each family lives in its own module (conv, pool, norm,
activation, linear, loss, padding, style).
"""
from ..tensor import concat, stack, where
from .activation import add_relu, clip, leaky_relu, log_softmax, relu, relu6, sigmoid, softmax, swish, tanh
from .conv import conv, conv2d, conv3d, conv_output_shape
from .linear import dropout, linear
from .loss import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from .norm import batch_norm
from .padding import pad
from .parallel import get_num_threads, set_num_threads
from .pool import adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, max_pool2d
from .style import gram_matrix, total_variation
from .utils import get_conv_outsize, pair, resolve_padding

__all__ = ["conv", "conv2d", "conv3d", "conv_output_shape", "max_pool2d", "avg_pool2d",
           "global_avg_pool2d", "adaptive_avg_pool2d", "batch_norm", "linear", "relu", "add_relu", "relu6",
           "leaky_relu", "sigmoid", "tanh", "swish", "softmax", "log_softmax", "clip", "dropout", "pad",
           "concat", "stack", "where", "cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
           "get_conv_outsize", "pair", "resolve_padding", "get_num_threads", "set_num_threads",
           "gram_matrix", "total_variation"]
