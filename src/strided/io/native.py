"""strided's own weight files: ``save(model, path)`` and ``load(path, model=None)``.

Two formats, chosen by the file suffix when saving and by the file's first bytes
when loading.  Neither can hold code, and neither reader runs any.

**safetensors** (``.safetensors``, the native format).  The file is

* 8 bytes: the header length ``n`` (unsigned 64-bit little-endian);
* ``n`` bytes of JSON: for each tensor ``{"dtype": "F32", "shape": [...],
  "data_offsets": [begin, end]}``, plus ``"__metadata__"`` (string -> string);
* the raw little-endian tensor bytes, back to back.

It is written by :func:`strided.checkpoint.save_checkpoint` (atomic: a temporary
file in the same folder, fsync, ``os.replace``), so a weight file is a checkpoint
without optimizer state: tensors are named ``model/<state_dict name>`` and the
metadata ``strided`` JSON records ``{"format": "strided.io", "order": [...]}`` so
that :func:`load` gives the entries back in ``state_dict`` order.  Training
checkpoints (``runs/.../checkpoints/best.safetensors``) load the same way: their
``optim/`` tensors are ignored.  A safetensors file written elsewhere (no
``model/`` prefix) loads with its own tensor names.

**npz** (``.npz``, for NumPy users).  A zip archive with one ``<name>.npy`` member
per entry (NumPy's ``.npy`` format: magic ``\\x93NUMPY``, version, a header dict
with ``descr``, ``fortran_order``, ``shape``, then the raw data), exactly what
``np.savez`` writes; the zip's member order is the ``state_dict`` order.  Read
with ``np.load(..., allow_pickle=False)``: an object array (a pickle) is refused.
"""
from __future__ import annotations

import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..fileio import atomic_write
from .errors import ModelFileError

__all__ = ["save", "load"]

FORMATS = {".safetensors": "safetensors", ".npz": "npz"}
_PREFIX = "model/"


def _state_of(model) -> "OrderedDict[str, np.ndarray]":
    if hasattr(model, "state_dict"):
        return OrderedDict(model.state_dict())
    if isinstance(model, dict):
        return OrderedDict((str(k), np.asarray(v)) for k, v in model.items())
    raise TypeError(f"save() takes a strided Module or a dict of arrays, received {type(model).__name__}")


def save(model, path, format: str | None = None) -> Path:
    """Write ``model.state_dict()`` (or a dict name -> array) to ``path``; returns the path.

    ``format`` is ``"safetensors"`` or ``"npz"``; by default it follows the suffix
    (``.safetensors`` / ``.npz``).  The write is atomic: an interrupted save leaves
    any previous file untouched.

    >>> strided.io.save(model, "lenet5.safetensors")
    """
    path = Path(path)
    if format is None:
        format = FORMATS.get(path.suffix.lower())
        if format is None:
            raise ValueError(f"cannot tell the format of {str(path)!r} from its suffix {path.suffix!r}: "
                             f"use one of {sorted(FORMATS)} or pass format='safetensors' / 'npz'")
    if format not in FORMATS.values():
        raise ValueError(f"format must be 'safetensors' or 'npz', received format={format!r}")
    state = _state_of(model)
    for name, value in state.items():
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise TypeError(f"entry {name!r} is not a numeric array (received {type(value).__name__}"
                            f"{', dtype ' + str(value.dtype) if isinstance(value, np.ndarray) else ''})")
    if format == "safetensors":
        meta = {"format": "strided.io", "version": 1, "order": list(state)}
        return save_checkpoint(path, {_PREFIX + k: v for k, v in state.items()}, meta)
    atomic_write(path, lambda tmp: _write_npz(tmp, state))
    return path


def _write_npz(filename, state) -> None:
    # What np.savez does, without its keyword-argument API (an entry named "file" would clash)
    # and refusing object arrays (allow_pickle=False).
    with zipfile.ZipFile(filename, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in state.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def _read_npz(path: Path) -> "OrderedDict[str, np.ndarray]":
    try:
        with np.load(path, allow_pickle=False) as archive:
            return OrderedDict((name, archive[name]) for name in archive.files)
    except ValueError as exc:  # object arrays: "Object arrays cannot be loaded when allow_pickle=False"
        raise ModelFileError(f"npz file {str(path)!r} holds an entry that is not a plain numeric array "
                             f"(refused, it would need pickle): {exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(f"npz file {str(path)!r} is not a readable npz archive "
                             f"(corrupt or truncated?): {exc}") from None


def _read_safetensors(path: Path) -> "OrderedDict[str, np.ndarray]":
    try:
        arrays, meta = load_checkpoint(path)
    except CheckpointError as exc:
        raise ModelFileError(str(exc)) from None
    if any(k.startswith(_PREFIX) for k in arrays):
        arrays = {k[len(_PREFIX):]: v for k, v in arrays.items() if k.startswith(_PREFIX)}
    order = meta.get("order") if isinstance(meta, dict) else None
    if isinstance(order, list) and sorted(order) == sorted(arrays):
        return OrderedDict((k, arrays[k]) for k in order)
    return OrderedDict(sorted(arrays.items()))


def _strip_prefix(state: dict) -> "OrderedDict[str, np.ndarray]":
    if any(k.startswith(_PREFIX) for k in state):
        return OrderedDict((k[len(_PREFIX):], v) for k, v in state.items() if k.startswith(_PREFIX))
    return OrderedDict(state)


def read_weights(path) -> "OrderedDict[str, np.ndarray]":
    """The arrays of a strided weight file (safetensors or npz), in saved order."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"weight file {str(path)!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":  # a zip archive: npz
        return _strip_prefix(_read_npz(path))
    if path.suffix.lower() == ".npz":
        raise ModelFileError(f"npz file {str(path)!r} is not a zip archive (first bytes {head!r}); corrupt?")
    return _read_safetensors(path)


def load(path, model=None, strict: bool = True):
    """Read a weight file written by :func:`save` (safetensors or npz).

    Without ``model``: returns the ``OrderedDict`` name -> ndarray.  With a
    strided ``model``: copies the arrays into it and returns the model.  With
    ``strict`` (the default) the names must match both ways; a shape mismatch is
    always an error.  Nothing is copied unless everything fits, and the error
    names the file, the entry and both shapes.

    >>> model = strided.io.load("lenet5.safetensors", LeNet5())
    """
    state = read_weights(path)
    if model is None:
        return state
    own = model.state_dict()
    for name, target in own.items():
        if name in state and tuple(state[name].shape) != tuple(target.shape):
            raise ModelFileError(f"weights in {str(path)!r} do not fit this model: entry {name!r} has shape "
                                 f"{tuple(state[name].shape)} in the file, the model expects {tuple(target.shape)}")
    try:
        model.load_state_dict(state, strict=strict)  # builds lazy layers, checks names before copying
    except KeyError:
        own = model.state_dict()
        missing = [f"{k} {tuple(v.shape)}" for k, v in own.items() if k not in state]
        unexpected = [f"{k} {tuple(v.shape)}" for k, v in state.items() if k not in own]
        raise ModelFileError(
            f"weights in {str(path)!r} do not fit this model: "
            f"{len(missing)} entries of the model are not in the file {_first(missing)}, "
            f"{len(unexpected)} entries of the file are not in the model {_first(unexpected)}") from None
    except ValueError as exc:
        raise ModelFileError(f"weights in {str(path)!r} do not fit this model: {exc}") from None
    return model


def _first(items, n=5):
    return "[" + ", ".join(items[:n]) + (", ..." if len(items) > n else "") + "]"

