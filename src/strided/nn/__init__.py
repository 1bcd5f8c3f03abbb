"""strided.nn: modules that own parameters, built on strided.functional.

>>> from strided import nn
>>> model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(None, 10))
>>> model.summary((1, 32, 32, 1))
"""
from . import init
from .container import Sequential
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Conv3d, ConvNd,
                     DepthwiseConv2d, Dropout, Flatten, GlobalAvgPool2d, Identity, LeakyReLU, Linear, MaxPool2d,
                     ReLU, ReLU6, Sigmoid, Softmax, Swish, Tanh)
from .fuse import fold_affine, fold_batch_norm, fuse
from .hooks import CapturedOutputs, HookHandle, StopForward, capture_outputs
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "Sequential", "ConvNd", "Conv1d", "Conv2d", "Conv3d", "DepthwiseConv2d", "Linear",
           "BatchNorm2d", "BatchNorm1d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "AdaptiveAvgPool2d", "Dropout",
           "Flatten", "Identity", "ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "Swish", "Softmax", "init"]
__all__ += ["fuse", "fold_batch_norm", "fold_affine", "HookHandle", "StopForward", "capture_outputs", "CapturedOutputs"]
