"""Checkpoints: safetensors files written atomically, read without running code.

A checkpoint holds arrays and one JSON document:

* ``model/<name>``   every parameter and buffer of ``model.state_dict()``
* ``optim/<i.name>`` the optimizer's per-parameter buffers (momentum, Adam moments)
* metadata ``strided`` (JSON): epoch, batch within the epoch, optimizer and
  schedule state, random-generator states, training history, run config.

Writing goes to a temporary file in the same folder, flushed to disk, then
``os.replace``-d over the target: a crash or Ctrl-C mid-write never leaves a
half-written checkpoint.  Reading parses the safetensors header (a JSON table
of dtypes, shapes and byte offsets) and the raw buffers: no pickle, no code.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .fileio import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "save_weights", "load_weights", "CheckpointError", "json_safe"]

META_KEY = "strided"


def json_safe(value):
    """``value`` made strict-JSON-able: NumPy scalars and arrays become Python numbers and lists,
    tuples become lists, and NaN / +-Infinity become ``None`` (JSON ``null``; strict parsers reject
    ``NaN`` and ``Infinity``)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_checkpoint(path, arrays: dict, meta: dict) -> Path:
    """Write ``arrays`` (name -> ndarray) and ``meta`` (strict JSON, see :func:`json_safe`) atomically."""
    from safetensors.numpy import save_file

    path = Path(path)
    tensors = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    metadata = {META_KEY: json.dumps(json_safe(meta), allow_nan=False)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def load_checkpoint(path) -> tuple[dict, dict]:
    """Read a checkpoint: ``(arrays, meta)``.  Raises CheckpointError with the reason."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        arrays = load_file(str(path))
        with open(path, "rb") as f:
            header_size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_size))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a readable safetensors file "
                              f"(corrupt or truncated?): {exc}") from None
    try:
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} has unreadable metadata: {exc}") from None
    return arrays, meta


def save_weights(model, path, meta: dict | None = None) -> Path:
    """Only the model: ``model/<name>`` arrays (and optional metadata)."""
    return save_checkpoint(path, {f"model/{k}": v for k, v in model.state_dict().items()}, meta or {})


def load_weights(model, path, strict: bool = True) -> dict:
    """Load the ``model/`` arrays of a checkpoint into ``model``; returns the metadata."""
    arrays, meta = load_checkpoint(path)
    state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    if not state:
        raise CheckpointError(f"checkpoint {str(path)!r} holds no model weights")
    try:
        model.load_state_dict(state, strict=strict)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit this model: {exc}") from None
    return meta
