"""TensorFlow.js weights: ``model.json`` + binary shards (layers and graph models).

``model.json`` is JSON::

    {"format": "layers-model" | "graph-model", "modelTopology": {...},
     "weightsManifest": [
        {"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
         "weights": [{"name": "conv2d/kernel", "shape": [3, 3, 3, 16], "dtype": "float32"},
                     {"name": "conv2d/bias", "shape": [16], "dtype": "float32",
                      "quantization": {"dtype": "uint8", "scale": 0.0039, "min": -0.5}}, ...]},
        ...]}

Each manifest entry is a *group*: its shard files, concatenated in the order of
``paths`` (paths relative to the JSON file), are one byte buffer holding its
weights back to back, in the order of ``weights``, little-endian, no padding:

* ``float32`` / ``int32``: 4 bytes a value; ``bool``: 1 byte; ``complex64``:
  8 bytes (real, imaginary float32); ``string``: per value a 4-byte length + bytes.
* ``quantization`` ``{"dtype": "uint8" | "uint16", "scale": s, "min": m}``: 1 or 2
  bytes a value ``q``, and the weight is ``q * s + m`` (float32; int32 weights are
  rounded like JavaScript's ``Math.round``).
* ``quantization`` ``{"dtype": "float16"}``: 2-byte IEEE half floats, read as float32.

face-api.js ships the same thing without the model: ``*-weights_manifest.json``
holds just the ``weightsManifest`` list; it is accepted too.

The result keeps TF.js' names and layouts (Keras layouts: conv kernels HWIO,
dense ``(in, out)``).  Nothing in these files is code; shard paths must stay
inside the JSON file's folder.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .errors import ModelFileError

__all__ = ["read_tfjs"]

_PLAIN = {"float32": ("<f4", 4), "int32": ("<i4", 4), "bool": ("u1", 1), "complex64": ("<c8", 8)}
_QUANTIZED = {"uint8": ("u1", 1), "uint16": ("<u2", 2), "float16": ("<f2", 2)}


def _manifest(path: Path) -> list:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"TF.js model {str(path)!r} is not readable JSON: {exc}") from None
    manifest = doc if isinstance(doc, list) else doc.get("weightsManifest") if isinstance(doc, dict) else None
    if not isinstance(manifest, list):
        raise ModelFileError(f"TF.js model {str(path)!r} has no 'weightsManifest' list "
                             f"(top-level keys: {list(doc)[:10] if isinstance(doc, dict) else type(doc).__name__})")
    for i, group in enumerate(manifest):
        if not (isinstance(group, dict) and isinstance(group.get("paths"), list)
                and isinstance(group.get("weights"), list)):
            raise ModelFileError(f"TF.js model {str(path)!r}: weightsManifest[{i}] needs lists 'paths' and 'weights'")
    return manifest


def _shard_bytes(path: Path, group_index: int, paths: list) -> bytes:
    folder = path.parent.resolve()
    chunks = []
    for shard in paths:
        if not isinstance(shard, str):
            raise ModelFileError(f"TF.js model {str(path)!r}: group {group_index} lists shard {shard!r}, not a path")
        file = (folder / shard).resolve()
        if Path(shard).is_absolute() or folder not in file.parents:
            raise ModelFileError(f"TF.js model {str(path)!r}: shard path {shard!r} leaves the model's folder")
        if not file.is_file():
            raise ModelFileError(f"TF.js model {str(path)!r}: shard {shard!r} of group {group_index} "
                                 f"does not exist (looked for {str(file)!r})")
        chunks.append(file.read_bytes())
    return b"".join(chunks)


def _decode(path, spec, buffer, offset, group_index):
    """(array, bytes used) for one weight spec starting at ``offset`` of its group's buffer."""
    name = spec.get("name")
    shape, dtype, quantization = spec.get("shape"), spec.get("dtype", "float32"), spec.get("quantization")
    where = f"TF.js model {str(path)!r}: weight {name!r} (group {group_index})"
    if not isinstance(name, str) or not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ModelFileError(f"{where} needs a 'name' and a 'shape' list of non-negative ints, has {spec!r:.120}")
    if not isinstance(dtype, str):
        raise ModelFileError(f"{where} has dtype {dtype!r}, not a string")
    count = math.prod(shape)

    def take(nbytes):
        if offset + nbytes > len(buffer):
            raise ModelFileError(f"{where} needs bytes {offset}..{offset + nbytes} but the group's shards hold "
                                 f"{len(buffer)} bytes (missing or truncated shard?)")
        return buffer[offset: offset + nbytes]

    if quantization is not None:
        qdtype = quantization.get("dtype") if isinstance(quantization, dict) else None
        if not isinstance(qdtype, str) or qdtype not in _QUANTIZED:
            raise ModelFileError(f"{where} has quantization dtype {qdtype!r}; supported: {list(_QUANTIZED)}")
        code, size = _QUANTIZED[qdtype]
        q = np.frombuffer(take(count * size), code)
        if qdtype == "float16":
            if dtype != "float32":
                raise ModelFileError(f"{where}: float16 quantization applies to float32 weights, not {dtype!r}")
            values = q.astype(np.float32)
        else:
            scale, low = quantization.get("scale"), quantization.get("min")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (scale, low)):
                raise ModelFileError(f"{where}: {qdtype} quantization needs numbers 'scale' and 'min', "
                                     f"has {quantization!r}")
            real = q.astype(np.float64) * scale + low  # in doubles, as JavaScript computes it
            if dtype == "float32":
                values = real.astype(np.float32)
            elif dtype == "int32":
                values = np.floor(real + 0.5).astype(np.int32)  # Math.round: halves go up
            else:
                raise ModelFileError(f"{where}: {qdtype} quantization applies to float32/int32, not {dtype!r}")
        return values.reshape(shape), count * size
    if dtype == "string":
        values, used = [], 0
        for _ in range(count):
            head = buffer[offset + used: offset + used + 4]
            if len(head) < 4:
                raise ModelFileError(f"{where}: string data runs past the end of the shards")
            length = int.from_bytes(head, "little")
            used += 4
            if offset + used + length > len(buffer):
                raise ModelFileError(f"{where}: string data runs past the end of the shards")
            values.append(bytes(buffer[offset + used: offset + used + length]))
            used += length
        array = np.empty(count, dtype=object)
        array[:] = values
        return array.reshape(shape), used
    if dtype not in _PLAIN:
        raise ModelFileError(f"{where} has dtype {dtype!r}; supported: {list(_PLAIN) + ['string']}")
    code, size = _PLAIN[dtype]
    values = np.frombuffer(take(count * size), code)
    values = values.astype(bool) if dtype == "bool" else values.astype(np.dtype(code).newbyteorder("="))
    return values.reshape(shape), count * size


def read_tfjs(model_json_path) -> "OrderedDict[str, np.ndarray]":
    """Every weight of a TF.js model, ``OrderedDict`` name -> ndarray (dequantized), in manifest order.

    ``model_json_path`` is a ``model.json`` (layers or graph model) or a bare
    ``*-weights_manifest.json``.  Raises :class:`ModelFileError` naming the file
    and the weight or shard at fault: missing shard, too few bytes, bytes left
    over (the manifest does not describe the shards), unknown dtype.
    """
    path = Path(model_json_path)
    if not path.is_file():
        raise ModelFileError(f"TF.js model {str(path)!r} does not exist")
    out = OrderedDict()
    for group_index, group in enumerate(_manifest(path)):
        buffer = memoryview(_shard_bytes(path, group_index, group["paths"]))
        offset = 0
        for spec in group["weights"]:
            if not isinstance(spec, dict):
                raise ModelFileError(f"TF.js model {str(path)!r}: group {group_index} has a weight entry "
                                     f"{spec!r:.80}, not an object")
            if isinstance(spec.get("name"), str) and spec["name"] in out:
                raise ModelFileError(f"TF.js model {str(path)!r}: weight name {spec['name']!r} appears twice")
            array, used = _decode(path, spec, buffer, offset, group_index)
            out[spec["name"]] = array
            offset += used
        if offset != len(buffer):
            raise ModelFileError(f"TF.js model {str(path)!r}: the shards of group {group_index} "
                                 f"({group['paths']}) hold {len(buffer)} bytes, its weights use {offset}; "
                                 f"the manifest does not match the shard files")
    return out
