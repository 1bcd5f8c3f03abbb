"""Map a PyTorch state dict onto a strided model: names, layouts and order.

PyTorch and strided store the same numbers in different layouts:

=====================  =========================  ============================
layer                  PyTorch                    strided
=====================  =========================  ============================
Conv2d weight          ``(O, I/groups, KH, KW)``  ``(KH, KW, I/groups, O)`` HWIO
depthwise Conv2d       ``(C*m, 1, KH, KW)``       ``(KH, KW, 1, C*m)``
Conv3d weight          ``(O, I, KD, KH, KW)``     ``(KD, KH, KW, I, O)``
Linear weight          ``(out, in)``              ``(in, out)``
BatchNorm              ``weight, bias``           ``gamma, beta``
                       ``running_mean/var``       ``running_mean/var``
                       ``num_batches_tracked``    (not kept)
biases                 ``(O,)``                   ``(O,)``
=====================  =========================  ============================

so a conv weight is transposed by ``(2, 3, 1, 0)`` (any rank: spatial axes first,
then in, then out) and a dense weight by ``.T``.  Activations differ too (NCHW vs
NHWC), which matters in one place: a Linear layer after ``Flatten`` sees the
feature map flattened in ``C, H, W`` order in PyTorch and ``H, W, C`` in strided;
``flatten_chw={"<strided linear weight>": (C, H, W)}`` reorders its input rows.

Entries are paired by **order** (the default): the model's entries are listed
layer by layer -- each layer's parameters then its buffers, which is PyTorch's
own ``state_dict`` order -- and zipped with the PyTorch entries minus
``num_batches_tracked``.  Or by an explicit ``name_map`` ``{strided name: torch name}``.
Every pair is checked (shape after the transposition, and that a weight is not
paired with a running statistic); the first mismatch is reported.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

__all__ = ["convert_torch_state", "torch_to_strided_layout"]

_SKIPPED = ("num_batches_tracked",)
# what an entry is, from the last part of its name, on either side
_ROLES = {"weight": "weight", "gamma": "weight", "kernel": "weight", "bias": "bias", "beta": "bias",
          "running_mean": "running_mean", "running_var": "running_var"}


def torch_to_strided_layout(array: np.ndarray) -> np.ndarray:
    """PyTorch weight layout -> strided: 2-D ``(out, in) -> (in, out)``; 3-5-D
    ``(O, I, *spatial) -> (*spatial, I, O)``; 0-D and 1-D unchanged."""
    if array.ndim == 2:
        return array.T
    if array.ndim >= 3:
        return np.transpose(array, tuple(range(2, array.ndim)) + (1, 0))
    return array


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, without importing torch
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _model_entries(model) -> list:
    """(name, array) of every parameter and buffer, layer by layer (parameters, then buffers)."""
    owned = {}     # module name -> its own (name, array): parameters first, then buffers
    for name, p in model.named_parameters():
        owned.setdefault(name.rpartition(".")[0], []).append((name, p.data))
    for name, b in model.named_buffers():
        owned.setdefault(name.rpartition(".")[0], []).append((name, b))
    entries = []
    for module_name, module in model.named_modules():
        for attr in ("weight", "gamma"):
            if attr in module.__dict__ and module.__dict__[attr] is None and hasattr(module, "_build_from_state"):
                raise ValueError(f"layer {module_name or type(model).__name__!r} ({type(module).__name__}) has no "
                                 f"weights yet (its input size was not given); build the model first, e.g. "
                                 f"model.build((1, H, W, C))")
        entries += owned.get(module_name, [])
    return entries


def _role(name: str):
    return _ROLES.get(name.rsplit(".", 1)[-1])


def _convert_one(index, torch_name, value, name, target, flatten_chw):
    """The strided array for one pair, or a ValueError saying why it does not fit."""
    where = (f"entry #{index}: torch {torch_name!r} {tuple(value.shape)} -> strided {name!r} "
             f"{tuple(target.shape)}")
    if _role(torch_name) and _role(name) and _role(torch_name) != _role(name):
        raise ValueError(f"{where}: a {_role(torch_name)} cannot become a {_role(name)}")
    if name in flatten_chw:
        C, H, W = flatten_chw[name]
        if value.ndim != 2 or value.shape[1] != C * H * W:
            raise ValueError(f"{where}: flatten_chw gives (C, H, W) = {(C, H, W)}, but the torch weight has "
                             f"{value.shape[1] if value.ndim == 2 else '?'} inputs, not {C * H * W}")
        value = value.reshape(value.shape[0], C, H, W).transpose(0, 2, 3, 1).reshape(value.shape[0], -1)
    converted = torch_to_strided_layout(value)
    if converted.shape != target.shape:
        raise ValueError(f"{where}: after the layout change it has shape {tuple(converted.shape)}")
    return np.ascontiguousarray(converted, dtype=target.dtype)


def convert_torch_state(state, model, name_map: dict | None = None,
                        flatten_chw: dict | None = None) -> "OrderedDict[str, np.ndarray]":
    """Return ``model``'s state dict filled from the PyTorch ``state`` (name -> array or tensor).

    ``state`` is e.g. :func:`strided.io.read_torch`'s result or ``torch_model.state_dict()``.
    Pairs are made by order, or by ``name_map`` ``{strided name: torch name}``
    covering every entry of the model.  ``flatten_chw`` ``{strided Linear weight
    name: (C, H, W)}`` fixes the first Linear after a Flatten (see module docs).
    Raises ``ValueError`` at the first entry that does not fit.  The model is not
    modified: ``model.load_state_dict(result)`` loads it.

    >>> sd_state = convert_torch_state(read_torch("lenet.pt"), model, flatten_chw={"6.weight": (16, 5, 5)})
    >>> model.load_state_dict(sd_state)
    """
    flatten_chw = dict(flatten_chw or {})
    entries = _model_entries(model)
    names = [n for n, _ in entries]
    unknown = [n for n in flatten_chw if n not in names]
    if unknown:
        raise ValueError(f"flatten_chw names {unknown}, which are not entries of the model")
    source = OrderedDict((str(k), _to_numpy(v)) for k, v in state.items())
    result = {}
    if name_map is not None:
        missing = [n for n in names if n not in name_map]
        if missing:
            raise ValueError(f"name_map does not cover {len(missing)} entries of the model: {missing[:8]}")
        for index, (name, target) in enumerate(entries):
            torch_name = name_map[name]
            if torch_name not in source:
                raise ValueError(f"name_map maps {name!r} to {torch_name!r}, which is not in the torch state "
                                 f"(its first entries: {list(source)[:8]})")
            result[name] = _convert_one(index, torch_name, source[torch_name], name, target, flatten_chw)
    else:
        pairs = [(k, v) for k, v in source.items() if k.rsplit(".", 1)[-1] not in _SKIPPED]
        for index, ((name, target), (torch_name, value)) in enumerate(zip(entries, pairs)):
            try:
                result[name] = _convert_one(index, torch_name, value, name, target, flatten_chw)
            except ValueError as exc:
                raise ValueError(f"the torch state does not fit the model by order, first mismatch at {exc} "
                                 f"(pass name_map={{strided name: torch name}} to pair by name)") from None
        if len(pairs) != len(entries):
            extra = (f"first torch entry left over: {pairs[len(entries)][0]!r}" if len(pairs) > len(entries)
                     else f"first model entry left over: {entries[len(pairs)][0]!r}")
            raise ValueError(f"the torch state has {len(pairs)} tensors (num_batches_tracked not counted), the "
                             f"model has {len(entries)}; the first {min(len(pairs), len(entries))} fit; {extra}")
    return OrderedDict((name, result[name]) for name in model.state_dict())
