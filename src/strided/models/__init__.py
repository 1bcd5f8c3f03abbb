"""strided.models: architectures by name.

>>> from strided import models
>>> model = models.create("lenet5", num_classes=10)
>>> models.list_models()
"""
from .registry import create, list_models, register
from . import lenet, small  # noqa: F401  (register the architectures)

__all__ = ["create", "list_models", "register"]
