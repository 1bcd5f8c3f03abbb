"""Forward hooks: the handle a registration returns, stopping a pass early, and recording outputs.

``Module.register_forward_hook`` / ``register_forward_pre_hook`` (in :mod:`strided.nn.module`) return a
:class:`HookHandle`; a hook may raise :class:`StopForward` to end the pass; :func:`capture_outputs`
records what named sub-modules return (feature taps for visualisation and style transfer).
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict

__all__ = ["HookHandle", "StopForward", "capture_outputs", "CapturedOutputs"]


class StopForward(Exception):
    """Raised by a forward hook or pre-hook to end the forward pass early.

    The outermost module call in progress (the ``model(x)`` that started the
    pass) catches it and returns ``value`` instead of the model's output; the
    layers after the hook do not run.
    """

    def __init__(self, value=None):
        super().__init__("forward pass stopped early by a hook")
        self.value = value


class HookHandle:
    """Returned by ``register_forward_hook`` / ``register_forward_pre_hook``.

    ``remove()`` takes the hook off (a second call does nothing); as a context
    manager the hook is removed when the block ends, also after an exception.
    """

    def __init__(self, registry: OrderedDict, key: int):
        self._registry, self.id = registry, key

    def remove(self) -> None:
        self._registry.pop(self.id, None)

    @property
    def active(self) -> bool:
        return self.id in self._registry

    def __enter__(self) -> "HookHandle":
        return self

    def __exit__(self, *exc) -> bool:
        self.remove()
        return False

    def __repr__(self):
        return f"HookHandle(id={self.id}, {'active' if self.active else 'removed'})"


# --------------------------------------------------------------------------- capturing outputs
class CapturedOutputs(dict):
    """``name -> output`` of the sub-modules a :func:`capture_outputs` block watches.

    It holds the latest forward pass of the model (each pass starts empty); a
    module called several times in one pass keeps its first output.
    ``stopped`` is True when the latest pass ended early (``stop=True``).
    """

    stopped: bool = False


@contextlib.contextmanager
def capture_outputs(model, names, stop: bool = False):
    """Record what the sub-modules ``names`` (as in ``model.named_modules()``; ``""`` is the model
    itself) return while ``model`` runs inside the block.

    >>> with capture_outputs(vgg, ["features.3", "features.8"]) as taps:
    ...     vgg(image)
    >>> taps["features.3"]            # the Tensor that layer returned (with its graph, if any)

    ``stop=True`` ends each forward pass as soon as every named module has run
    (:class:`StopForward`): the layers after them are not computed and
    ``model(x)`` returns None.  An unknown name raises ``KeyError`` showing
    valid ones.  The hooks are removed when the block ends, also after an
    exception; other hooks are left alone.
    """
    names = [names] if isinstance(names, str) else list(names)
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        some = [n for n in modules if n][:12]
        raise KeyError(f"capture_outputs: {type(model).__name__} has no sub-module named {unknown[0]!r}; "
                       f"names look like {some}{' ...' if len(modules) > 13 else ''}")
    captured = CapturedOutputs()
    wanted = set(names)

    def start_pass(module, inputs):
        captured.clear()
        captured.stopped = False

    def recorder(name):
        def record(module, inputs, output):
            if name not in captured:
                captured[name] = output
                if stop and wanted.issubset(captured):
                    captured.stopped = True
                    raise StopForward(None)
        return record

    handles = [model.register_forward_pre_hook(start_pass)]
    try:
        for name in dict.fromkeys(names):
            handles.append(modules[name].register_forward_hook(recorder(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
