"""Name -> constructor registry behind ``strided.models.create``."""
from __future__ import annotations

_MODELS: dict = {}


def register(name: str):
    """Decorator: make ``create(name, **kw)`` call the decorated constructor."""
    def wrap(fn):
        _MODELS[name] = fn
        return fn
    return wrap


def list_models() -> list:
    return sorted(_MODELS)


def create(name: str, **kwargs):
    """Build the model ``name`` (see :func:`list_models`) with constructor keywords."""
    try:
        constructor = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    return constructor(**kwargs)
