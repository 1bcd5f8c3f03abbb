"""Name -> optimizer class registry behind ``strided.optim.create`` (as ``models.create``)."""
from __future__ import annotations

import inspect

from .adam import Adam, AdamW, RMSprop
from .sgd import SGD

__all__ = ["create", "list_optimizers", "OPTIMIZERS"]

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def list_optimizers() -> list:
    """The names :func:`create` knows, sorted."""
    return sorted(OPTIMIZERS)


def create(name: str, params, **kwargs):
    """Build the optimizer ``name`` (case-insensitive) over ``params`` with its keywords.

    >>> opt = create("sgd", model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    >>> opt = create("adamw", model.parameters(), lr=1e-3, weight_decay=0.01)

    An unknown name, or a keyword the optimizer does not take, raises ``ValueError`` /
    ``TypeError`` naming what is known.
    """
    try:
        cls = OPTIMIZERS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(list_optimizers())}") from None
    try:
        return cls(params, **kwargs)
    except TypeError as exc:
        if "unexpected keyword" not in str(exc):
            raise

        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "params")]
        raise TypeError(f"{cls.__name__} does not take {sorted(set(kwargs) - set(accepted))}; "
                        f"its keywords: {', '.join(accepted)}") from None
