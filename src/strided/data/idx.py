"""IDX files: the simple binary format of MNIST and Fashion-MNIST.

Layout (all integers big-endian)::

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions D
    then        D uint32 sizes, then prod(sizes) elements in C order

So the 4-byte "magic number" of an images file (uint8, 3-D) is ``0x00000803 = 2051``
and that of a labels file (uint8, 1-D) is ``0x00000801 = 2049``.

>>> images = read_idx("train-images-idx3-ubyte.gz")     # (60000, 28, 28) uint8
>>> write_idx("tiny-idx1-ubyte", np.array([3, 1], np.uint8))
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import StridedError

__all__ = ["IDXError", "read_idx", "write_idx", "idx_magic", "IDX_IMAGES_MAGIC",
           "IDX_LABELS_MAGIC"]

# element-type code -> big-endian NumPy dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


def idx_magic(dtype, ndim: int) -> int:
    """The 4-byte magic number of an IDX file holding ``ndim``-D ``dtype`` data."""
    return (_CODES[np.dtype(dtype).newbyteorder("=")] << 8) | ndim


IDX_IMAGES_MAGIC = idx_magic(np.uint8, 3)   # 2051
IDX_LABELS_MAGIC = idx_magic(np.uint8, 1)   # 2049


class IDXError(StridedError, ValueError):
    """An IDX file is corrupt, truncated or not an IDX file at all."""


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (any suffix)."""
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise IDXError(f"{str(path)!r} is a corrupt or truncated gzip file ({exc}); "
                       "download or reinstall it") from None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a native-byte-order array.

    Returns an array whose shape is the sizes in the header, e.g. ``(N, 28, 28)``
    ``uint8`` for an images file and ``(N,)`` ``uint8`` for a labels file.

    Raises :class:`IDXError` when the magic number is not an IDX one or when the data
    are shorter or longer than the header says (a truncated download), and
    ``FileNotFoundError`` when ``path`` does not exist.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXError(f"{str(path)!r} is not an IDX file: only {len(data)} bytes")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    magic = struct.unpack(">I", data[:4])[0]
    if zero != 0 or code not in IDX_DTYPES or ndim == 0:
        raise IDXError(f"{str(path)!r} is not an IDX file: magic number "
                       f"0x{magic:08X} (expected 0x0000TTDD: type 08/09/0B/0C/0D/0E, "
                       "D dimensions >= 1)")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXError(f"{str(path)!r} is truncated: the header needs {header_size} "
                       f"bytes for {ndim} dimensions, the file has {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header_size
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        size = "x".join(map(str, shape))
        raise IDXError(f"{str(path)!r} is {what}: header says {size} "
                       f"{dtype.newbyteorder('=').name} = {expected} bytes of data, "
                       f"found {found}")
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))   # native order, writable copy


def write_idx(path, array) -> Path:
    """Write ``array`` as an IDX file; gzip it when ``path`` ends in ``.gz``."""
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of "
                         + ", ".join(dt.name for dt in _CODES))
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, received ndim={array.ndim}")
    code = _CODES[native]
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    body = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    payload = header + body
    if path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path
