"""Module and Parameter: layers that own their weights.

A :class:`Module` registers every :class:`Parameter`, sub-module and buffer
(an ndarray such as batch norm's running mean) assigned to it as an
attribute, in order.  From that registry come ``parameters()``,
``state_dict()`` / ``load_state_dict()``, ``train()`` / ``eval()``, freezing
by name prefix, ``num_parameters()`` and ``summary()``.

Layers whose input size is not given (``in_channels=None``) create their
weights lazily, on the first call, from the input's shape (Keras' ``build``).

**Hooks** (as in PyTorch).  ``module(*inputs)`` runs, in order:

1. every forward *pre-hook* ``fn(module, inputs) -> None | new inputs``
   (``inputs`` is the tuple of positional arguments; a non-tuple return value
   becomes the one argument),
2. ``module.forward(*inputs, **kwargs)``,
3. every forward *hook* ``fn(module, inputs, output) -> None | new output``.

Hooks of one kind run in the order they were registered, each seeing what the
previous one returned.  ``register_forward_hook`` / ``register_forward_pre_hook``
return a :class:`HookHandle`: ``handle.remove()`` (or ``with
model.register_forward_hook(fn): ...``) takes the hook off again.  Hooks stay
registered when a forward pass raises.

**Stopping a forward pass early.**  A hook that has what it needs may raise
:class:`StopForward` (``raise StopForward(value)``): nothing after it runs, and
the *outermost* module call in progress on this thread (the ``model(x)`` that
started the pass) catches it and returns ``value`` (default ``None``) instead
of the model's output.  It is the one supported way to skip the rest of a
network (:func:`capture_outputs` with ``stop=True`` uses it).

``with model.evaluating(): ...`` runs a block in eval mode and gives every
sub-module its own train/eval flag back afterwards (also after an exception).

:func:`capture_outputs` records what named sub-modules return (feature maps
for visualisation, style-transfer taps).
"""
from __future__ import annotations

import contextlib
import itertools
import sys
from collections import OrderedDict

import numpy as np

from ..tensor import Tensor, no_grad
from .hooks import HookHandle, StopForward

__all__ = ["Parameter", "Module"]

_hook_ids = itertools.count()


def _inside_another_module_call() -> bool:
    """True when the ``Module.__call__`` that asks runs inside another one (frames of this thread; only
    looked at when a hook stops a pass, so an ordinary call pays nothing for it)."""
    frame = sys._getframe(2)            # 0: this function, 1: the asking __call__, 2: its caller
    while frame is not None:
        if frame.f_code is Module.__call__.__code__:
            return True
        frame = frame.f_back
    return False


class Parameter(Tensor):
    """A tensor that is a learnable weight of a module (``requires_grad=True``)."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype}" + ("" if self.requires_grad else ", frozen") + ")"


class Module:
    """Base class of layers and models: subclasses define ``forward(x)``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # ----- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        if isinstance(value, Module) and name in self._modules:
            self._modules[name] = value  # a replaced sub-module keeps its place (Sequential's order)
            object.__setattr__(self, name, value)
            return
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif isinstance(value, np.ndarray) and name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep ``value`` (an ndarray, e.g. running statistics) in ``state_dict`` but not in ``parameters``."""
        names = self.__dict__.setdefault("_buffer_names", set())
        names.add(name)
        setattr(self, name, value)

    def register_parameter(self, name: str, value: Parameter | None) -> None:
        setattr(self, name, value)

    # ----- calling
    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        """Pre-hooks, ``forward``, hooks (see the module docstring)."""
        try:
            if self._forward_pre_hooks:
                for hook in list(self._forward_pre_hooks.values()):   # a copy: a hook may remove itself
                    changed = hook(self, args)
                    if changed is not None:
                        args = changed if isinstance(changed, tuple) else (changed,)
            output = self.forward(*args, **kwargs)
            if self._forward_hooks:
                for hook in list(self._forward_hooks.values()):
                    changed = hook(self, args, output)
                    if changed is not None:
                        output = changed
            return output
        except StopForward as stop:
            if _inside_another_module_call():      # the outermost call ends the pass
                raise
            return stop.value

    # ----- hooks
    def register_forward_pre_hook(self, fn) -> HookHandle:
        """Call ``fn(module, inputs)`` before every ``forward``; ``inputs`` is the tuple of positional
        arguments.  A return value other than None replaces them (a non-tuple becomes the one argument)."""
        if not callable(fn):
            raise TypeError(f"a forward pre-hook must be callable as fn(module, inputs), received {fn!r}")
        key = next(_hook_ids)
        self._forward_pre_hooks[key] = fn
        return HookHandle(self._forward_pre_hooks, key)

    def register_forward_hook(self, fn) -> HookHandle:
        """Call ``fn(module, inputs, output)`` after every ``forward``; a return value other than None
        replaces the output (later hooks and the caller see the replacement)."""
        if not callable(fn):
            raise TypeError(f"a forward hook must be callable as fn(module, inputs, output), received {fn!r}")
        key = next(_hook_ids)
        self._forward_hooks[key] = fn
        return HookHandle(self._forward_hooks, key)

    # ----- traversal
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def children(self):
        return list(self._modules.values())

    def named_children(self):
        """``(name, module)`` of the direct sub-modules, in registration order."""
        return list(self._modules.items())

    def own_parameters(self) -> list:
        """The parameters registered on this module itself (not its children's)."""
        return [p for p in self._parameters.values() if p is not None]

    def named_parameters(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is not None:
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self, trainable_only: bool = False) -> list:
        return [p for _, p in self.named_parameters() if p.requires_grad or not trainable_only]

    def named_buffers(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), b

    # ----- modes
    def train(self, mode: bool = True) -> "Module":
        """Training mode (batch statistics, dropout on) for this module and its children."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        """Inference mode (running statistics, dropout off)."""
        return self.train(False)

    @contextlib.contextmanager
    def evaluating(self):
        """``with model.evaluating(): ...``: eval mode inside the block; afterwards (also after an
        exception) every sub-module gets its own train/eval flag back, so a model whose frozen part was in
        eval mode and the rest in training mode comes back exactly so."""
        modes = [(m, m.training) for m in self.modules()]
        self.eval()
        try:
            yield self
        finally:
            for module, mode in modes:
                object.__setattr__(module, "training", mode)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ----- freezing
    def freeze(self, prefix: str | None = None) -> list:
        """Stop training the parameters whose name starts with ``prefix`` (all if None).
        Returns the names frozen; raises if the prefix matches nothing."""
        return self._set_trainable(prefix, False)

    def unfreeze(self, prefix: str | None = None) -> list:
        return self._set_trainable(prefix, True)

    def _set_trainable(self, prefix, flag):
        names = []
        for name, p in self.named_parameters():
            if prefix is None or name == prefix or name.startswith(prefix.rstrip(".") + "."):
                p.requires_grad = flag
                names.append(name)
        if prefix is not None and not names:
            available = sorted({n.split(".")[0] for n, _ in self.named_parameters()})
            raise ValueError(f"no parameter name starts with {prefix!r}; top-level names are {available}")
        return names

    def num_parameters(self, trainable_only: bool = True) -> int:
        """Number of weights (only those with ``requires_grad`` by default)."""
        return int(sum(p.data.size for p in self.parameters(trainable_only=trainable_only)))

    # ----- state
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Every parameter and buffer by dotted name, as ndarrays (not copies)."""
        state = OrderedDict((name, p.data) for name, p in self.named_parameters())
        state.update(self.named_buffers())
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers of the same names.

        Lazy layers not built yet take their shapes from ``state``.  With
        ``strict`` every name must match both ways; a shape mismatch is always
        an error naming the entry.
        """
        for _, module in self.named_modules():
            if hasattr(module, "_build_from_state"):
                module._build_from_state(state, self._prefix_of(module))
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict does not match the model: missing {missing[:10]}"
                           f"{' ...' if len(missing) > 10 else ''}, unexpected {unexpected[:10]}"
                           f"{' ...' if len(unexpected) > 10 else ''}")
        for name, target in own.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ValueError(f"state_dict entry {name!r} has shape {value.shape}, the model expects {target.shape}")
            target[...] = value

    def _prefix_of(self, module) -> str:
        for name, m in self.named_modules():
            if m is module:
                return name
        return ""

    # ----- building and summary
    def build(self, input_shape: tuple, dtype=np.float32) -> "Tensor":
        """Create lazy weights by running a batch of zeros of ``input_shape`` (no graph,
        eval mode so running statistics stay untouched); returns the output."""
        with self.evaluating(), no_grad():
            return self(Tensor(np.zeros(input_shape, dtype=dtype)))

    def summary(self, input_shape: tuple | None = None, print_fn=print) -> str:
        """Table of every layer's output shape and parameter count, with totals.

        ``input_shape`` includes the batch, e.g. ``(1, 32, 32, 1)``; it is needed
        to show output shapes and to build lazy layers.
        """
        from .summary import summarize
        text = summarize(self, input_shape)
        if print_fn is not None:
            print_fn(text)
        return text

    # ----- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            lines[0] = lines[0].rstrip("(") + "(" if not self.extra_repr() else lines[0]
            for name, m in self._modules.items():
                child = repr(m).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"
