"""Weight initialisers (fan-in / fan-out follow the HWIO and (in, out) layouts).

For a conv weight ``(KH, KW, C_in/groups, C_out)``: ``fan_in = KH*KW*C_in/groups``,
``fan_out = KH*KW*C_out/groups``; for a dense weight ``(in, out)``: ``in`` and ``out``.

* He (Kaiming) normal:   N(0, 2 / fan_in)                  (ReLU networks)
* He uniform:            U(-sqrt(6 / fan_in), +sqrt(6 / fan_in))
* Glorot (Xavier) uniform: U(-sqrt(6 / (fan_in + fan_out)), ...)
* Glorot normal:         N(0, 2 / (fan_in + fan_out))
"""
from __future__ import annotations

import numpy as np

from ..random import get_rng

__all__ = ["fans", "he_normal", "he_uniform", "glorot_uniform", "glorot_normal", "zeros", "ones", "get"]


def fans(shape: tuple, groups: int = 1) -> tuple:
    """(fan_in, fan_out) of a weight of this shape."""
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return receptive * shape[-2], receptive * shape[-1] // max(groups, 1)


def he_normal(shape, dtype=np.float32, groups=1):
    fan_in, _ = fans(shape, groups)
    return (get_rng().standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def he_uniform(shape, dtype=np.float32, groups=1):
    fan_in, _ = fans(shape, groups)
    limit = np.sqrt(6.0 / fan_in)
    return get_rng().uniform(-limit, limit, shape).astype(dtype)


def glorot_uniform(shape, dtype=np.float32, groups=1):
    fan_in, fan_out = fans(shape, groups)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return get_rng().uniform(-limit, limit, shape).astype(dtype)


def glorot_normal(shape, dtype=np.float32, groups=1):
    fan_in, fan_out = fans(shape, groups)
    return (get_rng().standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def zeros(shape, dtype=np.float32, groups=1):
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype=np.float32, groups=1):
    return np.ones(shape, dtype=dtype)


_BY_NAME = {"he": he_normal, "he_normal": he_normal, "kaiming": he_normal, "he_uniform": he_uniform,
            "glorot": glorot_uniform, "xavier": glorot_uniform, "glorot_uniform": glorot_uniform,
            "glorot_normal": glorot_normal, "zeros": zeros, "ones": ones}


def get(init):
    """An initialiser by name (``'he'``, ``'glorot'``, ...) or a callable ``f(shape, dtype, groups)``."""
    if callable(init):
        return init
    try:
        return _BY_NAME[init]
    except KeyError:
        raise ValueError(f"unknown initialiser {init!r}; expected one of {sorted(_BY_NAME)} or a callable") from None
