"""Keras HDF5 weight files (``model.save("m.h5")`` / ``model.save_weights("w.h5")``, Keras 2 / tf.keras).

HDF5 holds groups (folders), datasets (arrays) and attributes (small values on
either).  Keras 2 writes::

    /                                   full model file: attrs model_config, keras_version, ...
    /model_weights                      attrs layer_names = [b"conv2d", b"batch_normalization", ...]
    /model_weights/conv2d               attrs weight_names = [b"conv2d/kernel:0", b"conv2d/bias:0"]
    /model_weights/conv2d/conv2d/kernel:0      dataset (KH, KW, C_in, C_out)
    /model_weights/conv2d/conv2d/bias:0        dataset (C_out,)
    /model_weights/batch_normalization/batch_normalization/gamma:0, beta:0,
                                              moving_mean:0, moving_variance:0
    /model_weights/depthwise_conv2d/depthwise_conv2d/depthwise_kernel:0   (KH, KW, C, multiplier)
    /model_weights/dense/dense/kernel:0        dataset (in, out)

A weights-only file has the same layer groups and ``layer_names`` at the root.
Layers without weights (ReLU, Flatten) have an empty ``weight_names``.  Long
attribute lists are split by Keras into ``layer_names0``, ``layer_names1``, ...

The order of the result is the model's: layers in ``layer_names`` order, each
layer's weights in ``weight_names`` order.  Keras conv kernels are already HWIO
and dense kernels ``(in, out)``, as in strided, so no transposition is needed.
(A depthwise kernel ``(KH, KW, C, m)`` reshapes to strided's ``(KH, KW, 1, C*m)``.)
Reading HDF5 runs no code from the file.  Keras 3's ``.weights.h5`` layout
(``layers/<name>/vars/<i>``, no names or order) is recognised and refused.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from .errors import ModelFileError

__all__ = ["read_keras_h5"]


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _list_attribute(group, name):
    """A list attribute, joined from Keras' chunks ``name0``, ``name1``, ... if it was split."""
    if name in group.attrs:
        return [_text(v) for v in np.atleast_1d(group.attrs[name])]
    if f"{name}0" in group.attrs:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(_text(v) for v in np.atleast_1d(group.attrs[f"{name}{i}"]))
            i += 1
        return values
    return None


def read_keras_h5(path) -> "OrderedDict[str, np.ndarray]":
    """Every weight of a Keras ``.h5`` file, ``OrderedDict`` ``"conv2d/kernel:0"`` -> ndarray, in layer order.

    Names are the file's ``weight_names`` (prefixed with the layer name when they
    are not already).  Raises :class:`ModelFileError` naming the file and the
    missing or damaged group / dataset.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Keras file {str(path)!r} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(f"Keras file {str(path)!r} is not a readable HDF5 file "
                             f"(corrupt, truncated or another format?): {exc}") from None
    try:
        with f:
            return _read_layers(f, path, h5py)
    except ModelFileError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, UnicodeError) as exc:
        # HDF5 reports a damaged file from deep inside (heaps, B-trees, headers) with these
        raise ModelFileError(f"Keras file {str(path)!r} is damaged (corrupt or truncated HDF5): "
                             f"{type(exc).__name__}: {exc}") from None


def _read_layers(f, path, h5py) -> "OrderedDict[str, np.ndarray]":
    """The weights of an open Keras HDF5 file, in layer order."""
    root = f["model_weights"] if "model_weights" in f else f
    layer_names = _list_attribute(root, "layer_names")
    if layer_names is None:
        if "layers" in f and "model_weights" not in f:
            raise ModelFileError(f"Keras file {str(path)!r} has the Keras 3 '.weights.h5' layout "
                                 f"(layers/<name>/vars/<i>), which stores no weight names or layer order; "
                                 f"save it with Keras 2 / tf.keras (model.save_weights('w.h5')) to read it")
        raise ModelFileError(f"Keras file {str(path)!r} has no 'layer_names' attribute "
                             f"(at {root.name!r}): not a Keras HDF5 weights file; top-level keys: {list(f)[:10]}")
    out = OrderedDict()
    for layer in layer_names:
        if layer not in root:
            raise ModelFileError(f"Keras file {str(path)!r}: layer {layer!r} is listed in layer_names "
                                 f"but has no group {root.name.rstrip('/')}/{layer}")
        group = root[layer]
        weight_names = _list_attribute(group, "weight_names")
        if weight_names is None:  # very old files: every dataset of the group, in file order
            found = []
            group.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
            weight_names = found
        for weight in weight_names:
            if weight not in group or not isinstance(group[weight], h5py.Dataset):
                raise ModelFileError(f"Keras file {str(path)!r}: weight {weight!r} of layer {layer!r} "
                                     f"is missing (no dataset {group.name}/{weight})")
            dataset = group[weight]
            if dataset.dtype.kind not in "fiub":
                raise ModelFileError(f"Keras file {str(path)!r}: weight {dataset.name} has dtype "
                                     f"{dataset.dtype}, not a numeric array")
            try:
                array = np.asarray(dataset[()])
            except (OSError, ValueError) as exc:
                raise ModelFileError(f"Keras file {str(path)!r}: weight {dataset.name} cannot be read "
                                     f"(corrupt or truncated?): {exc}") from None
            key = weight if weight.startswith(layer + "/") else f"{layer}/{weight}"
            if key in out:
                raise ModelFileError(f"Keras file {str(path)!r}: weight name {key!r} appears twice")
            out[key] = array
    return out
