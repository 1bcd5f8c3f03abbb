"""strided: convolutional neural networks from scratch, made real.

>>> import strided as sd
>>> import strided.functional as F
>>> x = sd.tensor(images, requires_grad=True)      # NHWC
>>> y = F.conv2d(x, w, b, stride=1, padding="same")
>>> y.sum().backward()

``sd.io``, ``sd.models``, ``sd.data``, ``sd.train`` (and the other submodules in
``LAZY_SUBMODULES``) are imported the first time they are touched, as ``torch.onnx`` is:
``import strided`` stays quick, and ``sd.models.create("lenet5")`` works without an import.
"""
from . import _runtime  # noqa: F401  (must run before NumPy is imported)
from .tensor import (Function, Tensor, as_tensor, concat, enable_grad, is_grad_enabled,
                     no_grad, pad, stack, tensor, where)
from . import functional  # noqa: E402
from . import nn, optim  # noqa: E402
from .random import manual_seed  # noqa: E402

import importlib as _importlib  # noqa: E402

__version__ = "0.1.0"
LAZY_SUBMODULES = ("io", "models", "data", "train", "transfer", "viz", "checkpoint", "course", "filters",
                   "report", "errors", "fileio", "cli")


def __getattr__(name):
    """``sd.io`` etc.: import the submodule on first use (PEP 562)."""
    if name in LAZY_SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(LAZY_SUBMODULES))

__all__ = ["Tensor", "Function", "tensor", "as_tensor", "no_grad", "enable_grad",
           "is_grad_enabled", "concat", "stack", "pad", "where", "functional", "nn", "optim", "manual_seed"]
