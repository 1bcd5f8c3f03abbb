"""PyTorch checkpoints (``torch.save`` files) read with NumPy alone, running no code from the file.

``torch.save(obj, f)`` pickles ``obj``; every tensor's bytes are taken out of the
pickle and stored beside it.  Inside the pickle a tensor is a call

    torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks)

where ``storage`` is a *persistent id* -- a tuple ``("storage", torch.FloatStorage,
key, location, numel)`` naming a flat buffer of ``numel`` elements stored under
``key``.  The tensor is the strided view ``storage[offset + sum(i_k * stride_k)]``
(strides and offset in elements, as in ``np.lib.stride_tricks.as_strided``); several
tensors may view one storage.  Two container layouts exist:

**zip** (PyTorch >= 1.6, the default).  A zip archive whose entries all sit in one
top-level folder (``archive/`` or the file's stem; any name is accepted)::

    <folder>/data.pkl          the pickle (protocol 2)
    <folder>/data/<key>        raw bytes of storage <key>, one entry each
    <folder>/byteorder         "little" or "big" (absent in old files: little)
    <folder>/version, .format_version, .storage_alignment, .data/serialization_id

**legacy** (before 1.6, or ``_use_new_zipfile_serialization=False``).  One stream of
five pickles and the raw storages::

    pickle  MAGIC_NUMBER 0x1950a86a20f9469cfc6c
    pickle  PROTOCOL_VERSION 1001
    pickle  sys_info {"protocol_version", "little_endian", "type_sizes"}
    pickle  the object; persistent ids are ("storage", type, key, location, numel, view)
            with view None or (view_key, offset, size) for a slice of storage <key>
    pickle  the storage keys, sorted
    for each key: numel as an 8-byte integer (sys_info byte order),
                  then numel * element_size raw bytes

(The tar layout of PyTorch < 0.4 and TorchScript archives are refused with a message.)

**Safety.**  Unpickling normally imports and calls whatever the pickle names
(``os.system`` included).  Here a :class:`pickle.Unpickler` subclass overrides
``find_class``: only the names in :data:`ALLOWED_GLOBALS` (tensor, parameter and
``OrderedDict`` rebuilding; storage classes; torch dtypes; ``torch.Size``; NumPy
scalars and arrays of plain dtypes) resolve, each to a function of this module that
builds NumPy data; anything else raises :class:`UnsafeModelFile` before it is
imported.  Storage bytes are read with ``np.frombuffer``; every view is checked to
lie inside its storage before ``as_strided``.

**Memory in proportion to the file.**  A tensor may repeat elements of its storage
(stride 0, overlapping strides), so a 1 KB file can claim a 65536 x 65536 tensor.  The
tensors read from one file may hold at most :data:`MAX_EXPANSION` times the file's size
(plus 1 MiB) together; a tensor beyond that raises :class:`ModelFileError` naming it, before
anything is allocated.  Zip records are read only up to the size the pickle declares, and
all the records read (compressed ones can expand) count against the same budget.

>>> state = read_torch("resnet18.pth")          # OrderedDict name -> ndarray
"""
from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
import pickletools
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .errors import ModelFileError, UnsafeModelFile

__all__ = ["read_torch", "ALLOWED_GLOBALS"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# The tensors of a file (and, in a zip, the records read) may hold at most
# MAX_EXPANSION * (file size) + EXPANSION_SLACK bytes.
MAX_EXPANSION = 16
EXPANSION_SLACK = 1 << 20


def memory_budget(path) -> int:
    """Bytes the data read from the file ``path`` may take: ``16 * size + 1 MiB``."""
    return MAX_EXPANSION * Path(path).stat().st_size + EXPANSION_SLACK

# dtype name -> (NumPy dtype as stored, element size).  bfloat16 is read as uint16
# and widened to float32 (its upper 16 bits).
_DTYPES = {
    "float32": ("f4", 4), "float64": ("f8", 8), "float16": ("f2", 2), "bfloat16": ("u2", 2),
    "int64": ("i8", 8), "int32": ("i4", 4), "int16": ("i2", 2), "int8": ("i1", 1),
    "uint8": ("u1", 1), "uint16": ("u2", 2), "uint32": ("u4", 4), "uint64": ("u8", 8),
    "bool": ("?", 1), "complex64": ("c8", 8), "complex128": ("c16", 16),
}
# torch's legacy storage classes (torch.FloatStorage, ...) and the dtype of their elements.
_STORAGE_CLASSES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
    "UntypedStorage": "uint8",  # plain bytes; the tensor's dtype comes with _rebuild_tensor_v3
}
# torch dtypes as they are pickled (``torch.float32`` is the global ``torch float32``).
_TORCH_DTYPE_NAMES = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16",
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "short": "int16",
    "int8": "int8", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "bool": "bool", "complex64": "complex64", "cfloat": "complex64", "complex128": "complex128",
    "cdouble": "complex128",
}
_UNSUPPORTED_DTYPES = ("float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz", "float8_e8m0fnu",
                       "float4_e2m1fn_x2", "complex32", "qint8", "qint32", "quint8", "quint4x2", "quint2x4")


# ----------------------------------------------------------------------------- placeholders
class _DType:
    """A torch dtype named by the pickle (``torch.float16``)."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


class _StorageClass:
    """``torch.FloatStorage`` & co., only ever used inside a persistent id."""
    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    """A flat buffer named by a persistent id: ``numel`` elements of ``dtype`` under ``key``."""
    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel


class _StorageView:
    """Legacy format: elements ``[offset, offset + size)`` of a root storage."""
    __slots__ = ("root", "offset", "size")

    def __init__(self, root, offset, size):
        self.root, self.offset, self.size = root, offset, size


class _TensorRef:
    """A tensor still to be cut out of its storage, once the storages are read."""
    __slots__ = ("storage", "offset", "size", "stride", "dtype", "metadata")

    def __init__(self, storage, offset, size, stride, dtype=None, metadata=None):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.dtype, self.metadata = dtype, metadata


class _TypeMarker:
    """A class named only as the ``type`` argument of ``_rebuild_from_type_v2`` (Parameter, Tensor)."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


class _NumpyDType:
    """``numpy.dtype(...)`` from a pickle, restricted to plain (non-object, non-structured) dtypes."""
    __slots__ = ("spec", "order")

    def __init__(self, spec, align=False, copy=True):
        if not isinstance(spec, str) or np.dtype(spec).hasobject or np.dtype(spec).names:
            raise UnsafeModelFile(f"numpy dtype {spec!r} is not a plain numeric dtype")
        self.spec, self.order = spec, "="

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 3 and state[3] is not None:
            raise UnsafeModelFile("structured numpy dtypes are not allowed")
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.order = state[1]

    def numpy(self) -> np.dtype:
        dtype = np.dtype(self.spec)
        return dtype.newbyteorder(self.order) if self.order in "<>" else dtype


class _NumpyArray:
    """``numpy.core.multiarray._reconstruct`` + ``ndarray.__setstate__``, for plain dtypes only."""
    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], _NumpyDType)
                and isinstance(state[4], (bytes, bytearray))):
            raise UnsafeModelFile("a pickled numpy array that is not a plain numeric array")
        _, shape, dtype, fortran, raw = state
        dtype = dtype.numpy()
        shape = _int_tuple(shape, "numpy array shape")
        if len(raw) != dtype.itemsize * math.prod(shape):
            raise ModelFileError(f"a pickled numpy array of shape {shape} has {len(raw)} bytes")
        self.array = np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C").astype(
            dtype.newbyteorder("="))


# ----------------------------------------------------------------------------- rebuild functions
def _rebuild_tensor(storage, storage_offset, size, stride):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _TensorRef(storage, storage_offset, size, stride, metadata=metadata)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
    if not isinstance(dtype, _DType):
        raise ModelFileError(f"_rebuild_tensor_v3 received dtype {dtype!r}, not a torch dtype")
    return _TensorRef(storage, storage_offset, size, stride, dtype=dtype.name, metadata=metadata)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None):
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return data


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter,
               _rebuild_parameter_with_state)


def _rebuild_from_type_v2(func, new_type, args, state):
    """Tensor subclasses (``nn.Parameter``): rebuild the plain tensor, drop the subclass."""
    if func not in _REBUILDERS or not isinstance(new_type, _TypeMarker) or not isinstance(args, tuple):
        raise UnsafeModelFile(f"_rebuild_from_type_v2 with {func!r} / {new_type!r} is not a tensor rebuild")
    return func(*args)


def _rebuild_from_type(func, new_type, args, dict_=None):
    return _rebuild_from_type_v2(func, new_type, args, dict_)


def _torch_size(values=()):
    return _int_tuple(values, "torch.Size")


def _torch_device(kind, index=None):
    return f"{kind}:{index}" if index is not None else str(kind)


def _codecs_encode(text, encoding="utf-8"):
    """Protocol-2 pickles store ``bytes`` as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UnsafeModelFile(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not a bytes literal")
    return text.encode(encoding)


def _numpy_reconstruct(cls, shape, dtype_code):
    if not (isinstance(cls, _TypeMarker) and cls.name == "numpy.ndarray"):
        raise UnsafeModelFile(f"numpy _reconstruct of {cls!r}, only numpy.ndarray is allowed")
    return _NumpyArray()


def _numpy_scalar(dtype, raw=None):
    if not isinstance(dtype, _NumpyDType) or not isinstance(raw, (bytes, bytearray)):
        raise UnsafeModelFile("a pickled numpy scalar that is not a plain number")
    dtype = dtype.numpy()
    if len(raw) != dtype.itemsize:
        raise ModelFileError(f"a pickled numpy scalar of dtype {dtype} has {len(raw)} bytes")
    return np.frombuffer(raw, dtype)[0]


ALLOWED_GLOBALS = {
    "collections.OrderedDict": OrderedDict,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "torch._utils._rebuild_from_type": _rebuild_from_type,
    "torch.nn.parameter.Parameter": _TypeMarker("torch.nn.parameter.Parameter"),
    "torch.Tensor": _TypeMarker("torch.Tensor"),
    "torch._tensor.Tensor": _TypeMarker("torch.Tensor"),
    "torch.Size": _torch_size,
    "torch.device": _torch_device,
    "_codecs.encode": _codecs_encode,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.complex": complex,
    "numpy.ndarray": _TypeMarker("numpy.ndarray"),
    "numpy.dtype": _NumpyDType,
    "numpy.core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy._core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
}
for _name, _dtype in _STORAGE_CLASSES.items():
    for _module in ("torch", "torch.cuda", "torch.storage"):
        ALLOWED_GLOBALS[f"{_module}.{_name}"] = _StorageClass(_name, _dtype)
for _name in list(_TORCH_DTYPE_NAMES) + list(_UNSUPPORTED_DTYPES):
    ALLOWED_GLOBALS[f"torch.{_name}"] = _DType(_TORCH_DTYPE_NAMES.get(_name, _name))
del _name, _dtype, _module


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` resolves only :data:`ALLOWED_GLOBALS`.

    ``storages`` (a dict) collects the storages named by persistent ids, key -> _Storage.
    """

    def __init__(self, file, path, storages=None):
        super().__init__(file, encoding="utf-8")
        self.path, self.storages = path, storages

    def find_class(self, module, name):
        # Python 2 names, as protocol-2 pickles write them (__builtin__.set -> builtins.set)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[module, name]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        qualified = f"{module}.{name}"
        if qualified in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[qualified]
        if module.startswith("torch.nn"):
            why = ("it pickles a whole model object; only state dicts can be read without running code. "
                   "In PyTorch: torch.save(model.state_dict(), path)")
        elif module.startswith("__torch__"):
            why = "it is a TorchScript archive (torch.jit.save); save model.state_dict() with torch.save instead"
        else:
            why = "only the tensor-rebuilding functions listed in strided.io.pytorch.ALLOWED_GLOBALS may be used"
        raise UnsafeModelFile(f"PyTorch file {str(self.path)!r} asks the unpickler for {qualified!r}; refused "
                              f"(nothing was imported or run): {why}")

    def persistent_load(self, pid):
        if self.storages is None:
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: unexpected persistent id in a header pickle")
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: unknown persistent id {str(pid)[:80]!r}")
        storage_class, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_class, _StorageClass):
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: persistent id names {storage_class!r}, "
                                 f"not a storage class")
        if not isinstance(key, str) or not _is_count(numel):
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: bad storage key/size {key!r}/{numel!r}")
        storage = self.storages.setdefault(key, _Storage(key, storage_class.dtype, int(numel)))
        if storage.dtype != storage_class.dtype:
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: storage {key!r} is named both as "
                                 f"{storage.dtype} and {storage_class.dtype}")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return storage
        if not (isinstance(view, tuple) and len(view) == 3 and _is_count(view[1]) and _is_count(view[2])):
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: bad storage view {view!r}")
        return _StorageView(storage, int(view[1]), int(view[2]))


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _int_tuple(values, what) -> tuple:
    if not isinstance(values, (tuple, list)) or not all(_is_count(v) for v in values):
        raise ModelFileError(f"{what} must be a sequence of non-negative ints, received {str(values)[:80]}")
    return tuple(int(v) for v in values)


def _check_opcodes(file, path) -> None:
    """Parse one pickle's opcodes (pickletools, nothing is built or run) up to its STOP.

    A truncated or scrambled stream is caught here, as a clear error, before the
    unpickler sees it; out-of-band buffers (protocol 5), which no torch file uses,
    are refused, and so are memo indices larger than the pickle (a damaged one makes
    the unpickler allocate a memo table of that size)."""
    try:
        for count, (opcode, argument, position) in enumerate(pickletools.genops(file)):
            if opcode.name in ("NEXT_BUFFER", "READONLY_BUFFER"):
                raise ModelFileError(f"PyTorch file {str(path)!r}: pickle opcode {opcode.name} at byte {position} "
                                     f"(out-of-band buffers) is not supported")
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and not 0 <= int(argument) <= count:
                raise ModelFileError(f"PyTorch file {str(path)!r} is corrupt: pickle memo index {argument} at byte "
                                     f"{position} (only {count} opcodes precede it)")
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"PyTorch file {str(path)!r} is corrupt or truncated: the pickle stream cannot be "
                             f"read ({type(exc).__name__}: {exc})") from None


def _unpickle(file, path, storages=None):
    """One restricted ``load()`` from a seekable ``file``; any failure becomes
    ModelFileError / UnsafeModelFile naming ``path``."""
    start = file.tell()
    _check_opcodes(file, path)
    file.seek(start)
    try:
        return RestrictedUnpickler(file, path, storages).load()
    except ModelFileError:
        raise
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean "corrupt"
        raise ModelFileError(f"PyTorch file {str(path)!r} is corrupt or truncated: the pickle stream cannot be "
                             f"read ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------- containers
def _read_zip(path: Path):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"PyTorch file {str(path)!r} is a damaged zip archive (truncated?): {exc}") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)]
        if len(pickles) != 1:
            raise ModelFileError(f"zip archive {str(path)!r} is not a torch.save file: expected one "
                                 f"'<folder>/data.pkl', found {pickles or 'none'} among {names[:6]}")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names):
            raise ModelFileError(f"{str(path)!r} is a TorchScript archive (torch.jit.save), which holds code; "
                                 f"save model.state_dict() with torch.save to read it here")
        try:
            byteorder = "little"
            if prefix + "byteorder" in names:
                byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise ModelFileError(f"PyTorch file {str(path)!r}: byteorder record says {byteorder!r}")
            storages: dict = {}
            budget = memory_budget(path)
            budget -= _check_record(archive.getinfo(pickles[0]), path, budget)
            obj = _unpickle(io.BytesIO(archive.read(pickles[0])), path, storages)
            data = {}
            for key, storage in storages.items():
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise ModelFileError(f"PyTorch file {str(path)!r} has no record {member!r} for storage {key!r}")
                info = archive.getinfo(member)
                nbytes = storage.numel * _DTYPES[storage.dtype][1]
                budget -= _check_record(info, path, budget, min(nbytes, info.file_size))
                with archive.open(member) as record:  # never more than the pickle declared
                    data[key] = record.read(nbytes)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelFileError(f"PyTorch file {str(path)!r}: a zip entry cannot be read "
                                 f"(corrupt or truncated?): {exc}") from None
    return obj, storages, data, byteorder


def _check_record(info: zipfile.ZipInfo, path: Path, budget: int, nbytes: int | None = None) -> int:
    """The bytes reading ``nbytes`` (default: all) of zip record ``info`` takes; more than ``budget``
    (compressed records can expand far beyond the file) is refused."""
    nbytes = info.file_size if nbytes is None else nbytes
    if nbytes > budget:
        raise ModelFileError(f"PyTorch file {str(path)!r}: record {info.filename!r} expands to {nbytes} bytes "
                             f"({info.compress_size} stored), more than the {budget} bytes left of what a file of "
                             f"{Path(path).stat().st_size} bytes may take ({MAX_EXPANSION} x its size + "
                             f"{EXPANSION_SLACK}): refused as out of proportion (damaged or hostile file)")
    return nbytes


def _read_legacy(path: Path):
    raw = path.read_bytes()  # in memory: the unpickler never reads past the end of a BytesIO
    size, view = len(raw), memoryview(raw)
    with io.BytesIO(raw) as f:
        try:
            magic = _unpickle(f, path)
        except UnsafeModelFile:
            raise
        except ModelFileError:
            magic = None
        if magic != MAGIC_NUMBER:
            if raw[257:262] == b"ustar":  # an (uncompressed) tar archive, as torch.save wrote before 0.4
                raise ModelFileError(f"{str(path)!r} is a tar archive: the checkpoint layout of PyTorch < 0.4, "
                                     f"not supported; re-save it with a recent PyTorch")
            raise ModelFileError(f"{str(path)!r} is not a PyTorch checkpoint: neither a zip archive with "
                                 f"data.pkl nor the legacy format (magic number {MAGIC_NUMBER:#x}); "
                                 f"corrupt, truncated or another kind of file")
        protocol = _unpickle(f, path)
        if protocol != PROTOCOL_VERSION:
            raise ModelFileError(f"PyTorch file {str(path)!r}: legacy protocol {protocol!r}, "
                                 f"expected {PROTOCOL_VERSION}")
        sys_info = _unpickle(f, path)
        if not isinstance(sys_info, dict):
            raise ModelFileError(f"PyTorch file {str(path)!r}: sys_info is {type(sys_info).__name__}, not a dict")
        byteorder = "little" if sys_info.get("little_endian", True) else "big"
        storages: dict = {}
        obj = _unpickle(f, path, storages)
        keys = _unpickle(f, path)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ModelFileError(f"PyTorch file {str(path)!r}: the storage key list is damaged")
        data = {}
        for key in keys:
            storage = storages.get(key)
            if storage is None:
                raise ModelFileError(f"PyTorch file {str(path)!r} stores storage {key!r} that no tensor uses")
            header = f.read(8)
            if len(header) < 8:
                raise ModelFileError(f"PyTorch file {str(path)!r} is truncated: storage {key!r} is missing")
            numel = int.from_bytes(header, byteorder)
            itemsize = _DTYPES[storage.dtype][1]
            if numel != storage.numel:
                raise ModelFileError(f"PyTorch file {str(path)!r}: storage {key!r} records {numel} elements, "
                                     f"the pickle says {storage.numel}")
            nbytes = numel * itemsize
            if nbytes > size - f.tell():
                raise ModelFileError(f"PyTorch file {str(path)!r} is truncated: storage {key!r} needs {nbytes} "
                                     f"bytes, {max(size - f.tell(), 0)} are left")
            data[key] = view[f.tell(): f.tell() + nbytes]  # no copy
            f.seek(nbytes, io.SEEK_CUR)
        missing = [k for k in storages if k not in data]
        if missing:
            raise ModelFileError(f"PyTorch file {str(path)!r}: storages {missing[:5]} are used but not stored")
    return obj, storages, data, byteorder


# ----------------------------------------------------------------------------- tensors
class _Materializer:
    """Turns every _TensorRef of the unpickled object into an ndarray (a copy, native byte order)."""

    def __init__(self, path, storages, data, byteorder):
        self.path, self.storages, self.data = path, storages, data
        self.order = "<" if byteorder == "little" else ">"
        self.flat = {}
        self.budget = memory_budget(path)   # bytes, all tensors together
        self.used = 0

    def charge(self, where, size, stride, dtype, stored: int) -> None:
        """Count a tensor's bytes against the file's budget; refuse one that would exceed it."""
        count = 1
        for n in size:
            count *= n
        nbytes = count * (4 if dtype == "bfloat16" else _DTYPES[dtype][1])     # bfloat16 is widened
        if self.used + nbytes > self.budget:
            raise ModelFileError(
                f"PyTorch file {str(self.path)!r}: tensor {where} (size {size}, stride {stride}) claims {count} "
                f"elements ({nbytes} bytes) from a storage of {stored} elements; the tensors of this "
                f"{Path(self.path).stat().st_size}-byte file may hold {self.budget} bytes in all "
                f"({MAX_EXPANSION} x its size + {EXPANSION_SLACK}): refused as out of proportion "
                f"(damaged or hostile file; save tensors with .clone() / .contiguous() to store each element)")
        self.used += nbytes

    def elements(self, storage: _Storage, dtype: str) -> np.ndarray:
        """The storage's bytes as a 1-D array of ``dtype`` (as stored, file byte order)."""
        if (storage.key, dtype) not in self.flat:
            raw = self.data[storage.key]
            nbytes = storage.numel * _DTYPES[storage.dtype][1]
            if len(raw) < nbytes:
                raise ModelFileError(f"PyTorch file {str(self.path)!r}: storage {storage.key!r} holds {len(raw)} "
                                     f"bytes, {storage.numel} {storage.dtype} elements need {nbytes} (truncated?)")
            code, itemsize = _DTYPES[dtype]
            self.flat[storage.key, dtype] = np.frombuffer(raw, np.dtype(code).newbyteorder(self.order),
                                                          count=nbytes // itemsize)
        return self.flat[storage.key, dtype]

    def tensor(self, ref: _TensorRef, where: str) -> np.ndarray:
        storage, base, limit = ref.storage, 0, None
        if isinstance(storage, _StorageView):
            storage, base, limit = storage.root, storage.offset, storage.size
        if not isinstance(storage, _Storage):
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: tensor {where} has no storage ({storage!r})")
        dtype = ref.dtype or storage.dtype
        if dtype not in _DTYPES:
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: tensor {where} has dtype {dtype}, which "
                                 f"strided cannot read (supported: {', '.join(_DTYPES)})")
        size = _int_tuple(ref.size, f"the size of tensor {where}")
        stride = _int_tuple(ref.stride, f"the stride of tensor {where}")
        if not _is_count(ref.offset) or len(stride) != len(size):
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: tensor {where} has offset {ref.offset!r}, "
                                 f"size {size}, stride {stride}")
        if len(size) > 32:
            raise ModelFileError(f"PyTorch file {str(self.path)!r}: tensor {where} has {len(size)} dimensions "
                                 f"(size {size[:8]}...); at most 32 are supported")
        flat = self.elements(storage, dtype)
        if limit is not None:
            flat = flat[base: base + limit]
        self.charge(where, size, stride, dtype, len(flat))
        if 0 in size:
            view = np.zeros(size, flat.dtype)
        else:
            last = ref.offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= len(flat):
                raise ModelFileError(f"PyTorch file {str(self.path)!r}: tensor {where} (size {size}, stride "
                                     f"{stride}, offset {ref.offset}) reaches element {last} of storage "
                                     f"{storage.key!r}, which has {len(flat)}")
            view = np.lib.stride_tricks.as_strided(flat[ref.offset:], shape=size,
                                                   strides=[s * flat.itemsize for s in stride], writeable=False)
        array = np.array(view, dtype=view.dtype.newbyteorder("="))
        if dtype == "bfloat16":  # the upper half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        if isinstance(ref.metadata, dict):
            if ref.metadata.get("neg"):
                array = -array
            if ref.metadata.get("conj"):
                array = np.conj(array)
        return array

    def walk(self, obj, where="obj"):
        if isinstance(obj, _TensorRef):
            return self.tensor(obj, where)
        if isinstance(obj, _NumpyArray):
            return obj.array
        if isinstance(obj, dict):
            return type(obj)((k, self.walk(v, f"{where}[{k!r}]")) for k, v in obj.items())
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.walk(v, f"{where}[{i}]") for i, v in enumerate(obj))
        return obj


# ----------------------------------------------------------------------------- state dict
# Keys under which training scripts usually keep the weights, tried in this order.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network", "module",
                   "params", "weights", "ema")


def _has_arrays(obj) -> bool:
    if isinstance(obj, np.ndarray):
        return True
    if isinstance(obj, dict):
        return any(_has_arrays(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_arrays(v) for v in obj)
    return False


def _flatten(obj, prefix, out):
    if isinstance(obj, np.ndarray):
        out[prefix or "tensor"] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}.{i}" if prefix else str(i), out)
    return out


def _select(obj, key, path):
    if key is not None:
        for part in key.split("/"):
            if not isinstance(obj, dict) or part not in obj:
                keys = list(obj)[:20] if isinstance(obj, dict) else type(obj).__name__
                raise KeyError(f"PyTorch file {str(path)!r} has no entry {key!r} (at {part!r}; keys there: {keys})")
            obj = obj[part]
    else:
        while isinstance(obj, dict) and not any(isinstance(v, np.ndarray) for v in obj.values()):
            inner = next((obj[k] for k in STATE_DICT_KEYS if k in obj and _has_arrays(obj[k])), None)
            if inner is None:
                break
            obj = inner
    state = _flatten(obj, "", OrderedDict())
    if not state:
        raise ModelFileError(f"PyTorch file {str(path)!r} holds no tensors"
                             + (f" under {key!r}" if key else ""))
    return state


def read_torch(path, key: str | None = None) -> "OrderedDict[str, np.ndarray]":
    """The tensors of a ``torch.save`` file as ``OrderedDict`` name -> ndarray, without torch.

    Reads both the zip and the legacy layout (see the module docstring), never
    running code from the file: a pickle that names anything but tensor rebuilding
    raises :class:`UnsafeModelFile`.  A damaged file raises :class:`ModelFileError`.

    The state dict is found in the usual wrappers: ``{"state_dict": ...}``,
    ``{"model": ...}`` (see ``STATE_DICT_KEYS``), or give ``key`` (``"a/b"`` for
    nested dicts).  Nested dicts and lists are flattened with dotted names;
    values that are not tensors (epoch counters, ...) are left out.  dtypes are
    kept (float16 stays float16) except bfloat16, which becomes float32.
    Layouts are PyTorch's (conv weights OIHW, Linear ``(out, in)``): see
    :func:`strided.io.convert_torch_state`.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"PyTorch file {str(path)!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise ModelFileError(f"PyTorch file {str(path)!r} is empty")
    try:
        is_zip = zipfile.is_zipfile(path)
    except zipfile.BadZipFile:  # e.g. "zipfiles that span multiple disks are not supported"
        is_zip = False
    if is_zip:
        try:
            obj, storages, data, byteorder = _read_zip(path)
        except ModelFileError:
            raise
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError,
                NotImplementedError) as exc:  # damaged directory or entry (bad names, CRC, compression)
            raise ModelFileError(f"PyTorch file {str(path)!r} is a damaged zip archive (corrupt or truncated?): "
                                 f"{type(exc).__name__}: {exc}") from None
    elif head.startswith(b"PK"):
        raise ModelFileError(f"PyTorch file {str(path)!r} starts like a zip archive but its central directory "
                             f"is missing or damaged (truncated download?)")
    else:
        obj, storages, data, byteorder = _read_legacy(path)
    try:
        tree = _Materializer(path, storages, data, byteorder).walk(obj)
    except RecursionError:
        raise ModelFileError(f"PyTorch file {str(path)!r} nests containers too deeply") from None
    return _select(tree, key, path)
