"""Name -> constructor registry behind ``strided.models.create``."""
from __future__ import annotations

import os

_MODELS: dict = {}


def register(name: str):
    """Decorator: make ``create(name, **kw)`` call the decorated constructor."""
    def wrap(fn):
        _MODELS[name] = fn
        return fn
    return wrap


def list_models() -> list:
    return sorted(_MODELS)


def create(name: str, pretrained=False, **kwargs):
    """Build the model ``name`` (see :func:`list_models`) with constructor keywords.

    ``pretrained=True`` loads its ImageNet weights from the installed package
    that ships them (see :mod:`strided.models.pretrained`; nothing is
    downloaded); ``pretrained="path/to/weights.pth"`` loads a file instead (a
    PyTorch checkpoint of the same network, or a strided ``.safetensors`` /
    ``.npz``).  With another ``num_classes`` than the weights', every layer but
    the classifier is loaded (transfer learning).

    >>> model = create("efficientnet_lite0", pretrained=True)
    """
    try:
        constructor = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    if pretrained is False or pretrained is None:
        return constructor(**kwargs)
    from .pretrained import has_pretrained, load_pretrained, pretrained_models
    if not has_pretrained(name):
        raise ValueError(f"no pretrained weights are known for model {name!r}; models with pretrained weights: "
                         f"{', '.join(pretrained_models())}")
    if pretrained is True:
        path = None
    elif isinstance(pretrained, (str, os.PathLike)):
        path = pretrained
    else:
        raise TypeError(f"pretrained must be True, False or a path to a weight file, received {pretrained!r}")
    return load_pretrained(constructor(**kwargs), name, path)
