"""One seeded random generator for weight initialisation and dropout.

>>> import strided as sd
>>> sd.manual_seed(0)      # same weights every run
"""
from __future__ import annotations

import numpy as np

_state = {"rng": np.random.default_rng()}


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed strided's generator (weights, dropout masks); returns it."""
    _state["rng"] = np.random.default_rng(seed)
    return _state["rng"]


def get_rng() -> np.random.Generator:
    return _state["rng"]
