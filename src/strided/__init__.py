"""strided: convolutional neural networks from scratch, made real.

>>> import strided as sd
>>> import strided.functional as F
>>> x = sd.tensor(images, requires_grad=True)      # NHWC
>>> y = F.conv2d(x, w, b, stride=1, padding="same")
>>> y.sum().backward()
"""
from . import _runtime  # noqa: F401  (must run before NumPy is imported)
from .tensor import (Function, Tensor, as_tensor, concat, enable_grad, is_grad_enabled,
                     no_grad, pad, stack, tensor, where)
from . import functional  # noqa: E402
from . import nn, optim  # noqa: E402
from .random import manual_seed  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Tensor", "Function", "tensor", "as_tensor", "no_grad", "enable_grad",
           "is_grad_enabled", "concat", "stack", "pad", "where", "functional", "nn", "optim", "manual_seed"]
