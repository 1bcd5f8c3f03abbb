"""strided.optim: optimizers, learning-rate schedules and gradient clipping.

>>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
>>> opt = optim.create("adam", model.parameters(), lr=1e-3)      # by name, as models.create
>>> loss.backward(); opt.step(); opt.zero_grad()
"""
from .adam import Adam, AdamW, RMSprop
from .optimizer import Optimizer, clip_grad_norm, flush_subnormals
from .registry import create, list_optimizers
from .schedule import CosineLR, OneCycleLR, StepLR
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "StepLR", "CosineLR", "OneCycleLR", "clip_grad_norm",
           "flush_subnormals", "create", "list_optimizers"]
