"""IDX files (the MNIST format): reading bytes written by hand, round trips, and clear
errors for files that are not IDX, truncated or corrupt."""
import gzip
import struct

import numpy as np
import pytest

from strided.data.idx import (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IDXError, idx_magic,
                              read_idx, write_idx)


def _idx_bytes(array, code=0x08):
    """An IDX file built here, independently of write_idx."""
    array = np.asarray(array)
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def _write(path, data, gz=False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# --------------------------------------------------------------------------- reading
def test_magic_numbers_of_mnist_files():
    assert IDX_IMAGES_MAGIC == 2051 == 0x00000803
    assert IDX_LABELS_MAGIC == 2049 == 0x00000801
    assert idx_magic(np.float32, 2) == 0x0D02


def test_hand_written_bytes(tmp_path):
    # magic 0x00000801 (uint8, 1-D), size 3, then the three values
    path = _write(tmp_path / "a", b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\xff\x00")
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (3,)
    np.testing.assert_array_equal(out, [7, 255, 0])
    # big-endian int16, 2-D (2, 2)
    path = _write(tmp_path / "b", b"\x00\x00\x0b\x02\x00\x00\x00\x02\x00\x00\x00\x02"
                                  b"\x01\x00\xff\xff\x00\x02\x80\x00")
    out = read_idx(path)
    np.testing.assert_array_equal(out, [[256, -1], [2, -32768]])
    assert out.dtype == np.int16 and out.dtype.isnative


@pytest.mark.parametrize("gz", [False, True])
def test_images_and_labels_files(tmp_path, gz):
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    labels = np.array([9, 0, 4], dtype=np.uint8)
    suffix = ".gz" if gz else ""
    x = read_idx(_write(tmp_path / f"img-idx3-ubyte{suffix}", _idx_bytes(images), gz))
    y = read_idx(_write(tmp_path / f"lab-idx1-ubyte{suffix}", _idx_bytes(labels), gz))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert x.flags.writeable


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    path = _write(tmp_path / "labels-without-gz-suffix", _idx_bytes(labels), gz=True)
    np.testing.assert_array_equal(read_idx(path), labels)


@pytest.mark.parametrize("code,values", [
    (0x09, [-128, 5, 127]), (0x0B, [-300, 2, 30000]), (0x0C, [-5, 100000, 7]),
    (0x0D, [1.5, -2.25, 3e8]), (0x0E, [1e300, -0.5, 0.0])])
def test_every_element_type(tmp_path, code, values):
    a = np.array(values).reshape(3, 1)
    np.testing.assert_array_equal(read_idx(_write(tmp_path / "t", _idx_bytes(a, code))), a)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_write_idx_round_trip(tmp_path, dtype, name):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / name, a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == a.dtype and back.shape == a.shape
    np.testing.assert_array_equal(back, a)
    if not name.endswith(".gz"):                  # the bytes are exactly the format
        assert path.read_bytes() == _idx_bytes(a, {np.uint8: 8, np.int8: 9, np.int16: 11,
                                                   np.int32: 12, np.float32: 13,
                                                   np.float64: 14}[dtype])


def test_write_idx_rejects_int64(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("data", [b"\x08\x03\x00\x00\x00\x00\x00\x00",
                                  b"\x00\x01\x08\x01\x00\x00\x00\x01\x05",
                                  b"PK\x03\x04abcdefgh", b"\x00\x00\x08\x00"])
def test_not_an_idx_file(tmp_path, data):
    with pytest.raises(IDXError, match="not an IDX file: magic number 0x"):
        read_idx(_write(tmp_path / "bad", data))


@pytest.mark.parametrize("data", [b"", b"\x00\x00"])
def test_too_short_to_be_idx(tmp_path, data):
    with pytest.raises(IDXError, match=f"not an IDX file: only {len(data)} bytes"):
        read_idx(_write(tmp_path / "short", data))


def test_unknown_element_type(tmp_path):
    with pytest.raises(IDXError, match="0x00000701"):
        read_idx(_write(tmp_path / "t", b"\x00\x00\x07\x01\x00\x00\x00\x01\x05"))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cut", [1, 10])
def test_truncated_data_says_how_much_is_missing(tmp_path, gz, cut):
    data = _idx_bytes(np.zeros((2, 3, 3), np.uint8))
    path = _write(tmp_path / ("t.gz" if gz else "t"), data[:-cut], gz)
    with pytest.raises(IDXError, match=rf"is truncated: header says 2x3x3 uint8 = 18 bytes "
                                       rf"of data, found {18 - cut}"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = _write(tmp_path / "t", b"\x00\x00\x08\x03\x00\x00\x00\x02\x00")
    with pytest.raises(IDXError, match="truncated: the header needs 16 bytes"):
        read_idx(path)


def test_extra_bytes(tmp_path):
    path = _write(tmp_path / "t", _idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(IDXError, match="longer than its header says"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    compressed = gzip.compress(_idx_bytes(np.arange(200, dtype=np.uint8).reshape(2, 10, 10)))
    path = _write(tmp_path / "t.gz", compressed[:len(compressed) // 2])
    with pytest.raises(IDXError, match="corrupt or truncated gzip file"):
        read_idx(path)


def test_idx_error_is_a_value_error_and_missing_file_is_file_not_found(tmp_path):
    assert issubclass(IDXError, ValueError)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")
