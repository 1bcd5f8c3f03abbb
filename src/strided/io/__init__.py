"""strided.io: weight files in and out, never running code from a file.

* :func:`save` / :func:`load` -- strided's own files: safetensors (native, atomic)
  or ``.npz``.
* :func:`read_torch` -- ``torch.save`` checkpoints (zip and legacy layouts) with
  NumPy alone, through a restricted unpickler (:class:`UnsafeModelFile` for
  anything but tensors); :func:`convert_torch_state` maps them onto a strided
  model (OIHW -> HWIO, ``(out, in)`` -> ``(in, out)``, BatchNorm names).
* :func:`read_keras_h5` -- Keras 2 ``.h5`` weights (already strided's layouts).
* :func:`read_tfjs` -- TensorFlow.js ``model.json`` + shards, dequantized.
* :func:`export_onnx` / :func:`import_onnx` -- ONNX interchange (needs the ``onnx``
  package, imported on first use): a strided model traced to an NHWC-input ONNX
  graph, and an ONNX CNN read into a runnable, trainable strided module.

Readers return ``OrderedDict`` name -> ndarray and raise :class:`ModelFileError`
(a ``ValueError``) naming the file and what is wrong with it.

>>> import strided.io as sio
>>> sio.save(model, "lenet5.safetensors")
>>> model = sio.load("lenet5.safetensors", model)
>>> model.load_state_dict(sio.convert_torch_state(sio.read_torch("lenet5.pt"), model))
"""
from .convert import convert_torch_state
from .errors import ModelFileError, UnsafeModelFile
from .keras import read_keras_h5
from .native import load, save
from .pytorch import read_torch
from .tfjs import read_tfjs

# ONNX: loaded on first use, so ``import strided.io`` does not need the onnx package
_LAZY = {"export_onnx": "onnx_export", "import_onnx": "onnx_import", "OnnxModel": "onnx_import",
         "UnsupportedOnnxError": "onnx_import"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["save", "load", "read_torch", "read_keras_h5", "read_tfjs", "convert_torch_state",
           "UnsafeModelFile", "ModelFileError", "export_onnx", "import_onnx", "OnnxModel", "UnsupportedOnnxError"]
