"""strided.models: architectures by name.

>>> from strided import models
>>> model = models.create("lenet5", num_classes=10)
>>> models.list_models()
"""
from .registry import create, list_models, register
# importing the modules registers their architectures
from . import alexnet, efficientnet, googlenet, lenet, mobilenet, resnet, small, vgg, yolo  # noqa: F401

__all__ = ["create", "list_models", "register"]
