"""strided.models.faceapi: finding and installing face-api's weights, and face-api's input
pipeline (pad to square, ``tf.image.resizeBilinear``), against hand-computed values and PyTorch."""
import stat
import sys

import numpy as np
import pytest

from strided.errors import DatasetUnavailable, StridedError
from strided.models.faceapi import (FACEAPI_ENV, MARKER, PACKAGE_MODEL_DIR, faceapi_model_file, find_faceapi_models,
                                    install_faceapi, js_round, pad_to_square, reshaped_dimensions, resize_bilinear,
                                    to_net_input)


# ------------------------------------------------------------------------------------------ locating
@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No face-api anywhere: empty HOME, empty working folder, no npm on the PATH, no env var."""
    home, work, bin_dir = tmp_path / "home", tmp_path / "work", tmp_path / "bin"
    for d in (home, work, bin_dir):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv(FACEAPI_ENV, raising=False)
    monkeypatch.chdir(work)
    return tmp_path


def _model_dir(root):
    folder = root / PACKAGE_MODEL_DIR
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("[]")
    return folder


def test_missing_weights_error_names_the_install_command(nowhere):
    assert find_faceapi_models(required=False) is None
    with pytest.raises(DatasetUnavailable) as info:
        find_faceapi_models()
    message = str(info.value)
    assert "strided models fetch face-api" in message
    assert "npm install --prefix" in message and "@vladmandic/face-api@1.7.15" in message
    assert FACEAPI_ENV in message and str(nowhere / "home") in message  # lists where it looked
    assert isinstance(info.value, FileNotFoundError)


def test_env_var_model_folder_or_prefix(nowhere, monkeypatch):
    prefix = nowhere / "prefix"
    folder = _model_dir(prefix)
    monkeypatch.setenv(FACEAPI_ENV, str(prefix))          # an npm prefix
    assert find_faceapi_models() == folder
    monkeypatch.setenv(FACEAPI_ENV, str(folder))          # the model folder itself
    assert find_faceapi_models() == folder


def test_search_order_default_prefix_before_working_folder(nowhere):
    local = _model_dir(nowhere / "work")
    assert find_faceapi_models() == local
    home = _model_dir(nowhere / "home" / ".local" / "share" / "strided" / "face-api")
    assert find_faceapi_models() == home


def test_global_npm_root_is_searched_last(nowhere):
    root = nowhere / "global"
    folder = _model_dir(root)           # root/node_modules/@vladmandic/face-api/model
    _fake_npm(nowhere / "bin", f"print({str(root / 'node_modules')!r})\n")   # `npm root -g`
    assert find_faceapi_models() == folder


def test_model_file_lists_available_models(nowhere, monkeypatch):
    folder = _model_dir(nowhere / "p")
    (folder / "face_recognition_model-weights_manifest.json").write_text("[]")
    assert faceapi_model_file("face_recognition_model", folder) == folder / "face_recognition_model-weights_manifest.json"
    with pytest.raises(DatasetUnavailable, match="face_recognition_model"):
        faceapi_model_file("no_such_model", folder)


# ------------------------------------------------------------------------------------------ installing
def _fake_npm(bin_dir, body):
    """An executable ``npm`` on the (otherwise empty) PATH: a Python script running ``body``."""
    npm = bin_dir / "npm"
    npm.write_text(f"#!{sys.executable}\nimport pathlib, sys\n" + body)
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    return npm


def test_install_runs_npm_for_face_api_only(nowhere):
    log = nowhere / "args.txt"
    # the fake npm records its arguments and lays out the package as npm would
    _fake_npm(nowhere / "bin", f"pathlib.Path({str(log)!r}).write_text(' '.join(sys.argv[1:]))\n"
                               f"folder = pathlib.Path(sys.argv[3], {str(PACKAGE_MODEL_DIR)!r})\n"
                               f"folder.mkdir(parents=True)\n(folder / {MARKER!r}).write_text('[]')\n")
    dest = nowhere / "dest"
    folder = install_faceapi(dest)
    assert folder == dest / PACKAGE_MODEL_DIR
    assert log.read_text().split() == ["install", "--prefix", str(dest), "@vladmandic/face-api@1.7.15"]
    # the default destination is the one find_faceapi_models searches
    assert install_faceapi() == find_faceapi_models()


def test_install_errors(nowhere):
    with pytest.raises(StridedError, match="npm is needed.*npm='npm'"):
        install_faceapi(nowhere / "d")
    _fake_npm(nowhere / "bin", "print('npm ERR! code E404', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(StridedError, match="E404") as info:
        install_faceapi(nowhere / "d")
    assert "exit code 1" in str(info.value)
    _fake_npm(nowhere / "bin", "sys.exit(0)\n")
    with pytest.raises(StridedError, match="does not exist"):
        install_faceapi(nowhere / "d")


# ------------------------------------------------------------------------------------------ rounding, padding
def test_js_round_halves_up():
    assert [js_round(v) for v in (2.5, 3.5, -2.5, 0.49, 354.986)] == [3, 4, -2, 0, 355]
    assert round(2.5) == 2                                   # Python's would differ
    # 512 x 600 (W x H) at 416: 512 * 416 / 600 = 354.99 -> 355
    assert reshaped_dimensions(600, 512, 416) == (355, 416)
    # 1920 x 1280 at 416: 1280 * 416 / 1920 = 277.33 -> 277
    assert reshaped_dimensions(1280, 1920, 416) == (416, 277)
    # an exact half: 5 x 2 image to 5: 2 * 5 / 5 = 2; 3 x 1 to 5 -> 1.666 -> 2; 4 x 1 to 2 -> 0.5 -> 1
    assert reshaped_dimensions(4, 1, 2) == (1, 2)


def test_pad_to_square_bottom_right_with_zeros():
    wide = np.arange(1, 7, dtype=np.uint8).reshape(2, 3, 1)
    out = pad_to_square(wide)
    assert out.dtype == np.float32 and out.shape == (3, 3, 1)
    np.testing.assert_array_equal(out[..., 0], [[1, 2, 3], [4, 5, 6], [0, 0, 0]])
    tall = wide.reshape(3, 2, 1)
    np.testing.assert_array_equal(pad_to_square(tall)[..., 0], [[1, 2, 0], [3, 4, 0], [5, 6, 0]])
    square = np.ones((2, 2, 3), np.uint8)
    np.testing.assert_array_equal(pad_to_square(square), square)


def test_pad_to_square_centered_puts_the_rounded_half_after():
    # difference 3: Math.round(1.5) = 2 rows after, 1 before
    img = np.full((1, 4, 1), 7, np.uint8)
    np.testing.assert_array_equal(pad_to_square(img, center=True)[:, 0, 0], [0, 7, 0, 0])
    with pytest.raises(ValueError, match="shape"):
        pad_to_square(np.zeros((2, 2)))


# ------------------------------------------------------------------------------------------ bilinear resize
def test_resize_legacy_hand_computed_downscale():
    row = np.array([0.0, 10.0, 20.0, 30.0]).reshape(1, 4, 1)
    # scale 4/3, src = 0, 4/3, 8/3 -> 0, 13.333, 26.667 (x = 10 * src here)
    np.testing.assert_allclose(resize_bilinear(row, (1, 3))[0, :, 0], [0, 40 / 3, 80 / 3], rtol=1e-6)
    # 4 -> 2: src = 0, 2 -> exactly input pixels 0 and 2 (no averaging: the asymmetric mapping)
    np.testing.assert_array_equal(resize_bilinear(row, (1, 2))[0, :, 0], [0, 20])


def test_resize_legacy_hand_computed_upscale_repeats_the_last_pixel():
    row = np.array([0.0, 8.0]).reshape(1, 2, 1)
    # scale 1/2, src = 0, .5, 1, 1.5; ceil(1.5) = 2 is clamped to 1 -> last pixel repeated
    np.testing.assert_array_equal(resize_bilinear(row, (1, 4))[0, :, 0], [0, 4, 8, 8])


def test_resize_legacy_hand_computed_2d():
    img = np.array([[0.0, 4.0], [8.0, 12.0]]).reshape(2, 2, 1)
    # 2 -> 3: src = 0, 2/3, 4/3 (clamped ceil 1): value = 8 * sy + 4 * sx with s clipped at 1
    expected = np.array([[8 * sy + 4 * sx for sx in (0, 2 / 3, 1)] for sy in (0, 2 / 3, 1)])
    np.testing.assert_allclose(resize_bilinear(img, 3)[..., 0], expected, rtol=1e-6)


def test_resize_half_pixel_hand_computed():
    row = np.array([0.0, 10.0, 20.0, 30.0]).reshape(1, 4, 1)
    # src = (c + .5) * 4/3 - .5 = 1/6, 3/2, 17/6
    np.testing.assert_allclose(resize_bilinear(row, (1, 3), half_pixel_centers=True)[0, :, 0],
                               [10 / 6, 15, 170 / 6], rtol=1e-6)


def test_resize_float64_compute_rounds_once_as_tfjs():
    img = np.array([[16777216.0, 16777218.0]], np.float32).reshape(1, 2, 1)   # 2**24, 2**24 + 2
    # TF.js blends in doubles: the midpoint 2**24 + 1 is exact there, then rounded once to float32
    out = resize_bilinear(img, (1, 4), compute_dtype=np.float64)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, :, 0], np.array([2**24, 2**24 + 1, 2**24 + 2, 2**24 + 2], np.float32))


@pytest.mark.parametrize("shape, size", [((37, 53, 3), (416, 416)), ((200, 120, 3), (112, 112)),
                                         ((2, 9, 7, 3), (5, 11))])
def test_resize_float32_compute_is_float64_up_to_float32_rounding(shape, size):
    x = np.random.default_rng(5).integers(0, 256, size=shape).astype(np.uint8)
    fast = resize_bilinear(x, size)
    exact = resize_bilinear(x, size, compute_dtype=np.float64)
    assert fast.dtype == exact.dtype == np.float32
    # three float32 roundings of values <= 255: a few ulps of 255 at most
    np.testing.assert_allclose(fast, exact, rtol=0, atol=255 * 4 * np.finfo(np.float32).eps)
    assert np.any(fast != exact) or x.shape[-3:-1] == size   # really a different arithmetic
    with pytest.raises(ValueError, match="compute_dtype"):
        resize_bilinear(x, size, compute_dtype=np.float16)


@pytest.mark.parametrize("shape, center", [((20, 33, 3), False), ((20, 33, 3), True), ((45, 18, 3), False),
                                           ((45, 18, 3), True), ((31, 31, 3), True), ((7, 200, 3), True)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_to_net_input_without_the_padded_copy_equals_pad_then_resize(shape, center, dtype):
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, size=shape).astype(dtype) + (rng.uniform(size=shape) if dtype == np.float64 else 0)
    for size in (16, 112, max(shape[:2])):
        expected = resize_bilinear(pad_to_square(img, center), size) if size != max(shape[:2]) \
            else pad_to_square(img, center)
        np.testing.assert_array_equal(to_net_input(img, size, center)[0], expected)


def _torch_resize(x, size, align_corners):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    t = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2)
    return TF.interpolate(t, size=size, mode="bilinear", align_corners=align_corners).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("shape, size", [((2, 7, 5, 3), (4, 9)), ((1, 16, 16, 2), (5, 5)), ((1, 3, 4, 1), (8, 2))])
def test_resize_matches_torch_where_the_definitions_agree(shape, size):
    x = np.random.default_rng(0).normal(size=shape) * 50
    # half_pixel_centers=True is torch's align_corners=False; align_corners=True is the same in both
    np.testing.assert_allclose(resize_bilinear(x, size, half_pixel_centers=True), _torch_resize(x, size, False),
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(resize_bilinear(x, size, align_corners=True), _torch_resize(x, size, True),
                               rtol=1e-5, atol=1e-4)


def test_resize_legacy_differs_from_torch_except_first_pixel_and_same_size():
    x = np.random.default_rng(1).uniform(0, 255, size=(1, 12, 12, 3))
    legacy, ours_torch = resize_bilinear(x, (5, 5)), _torch_resize(x, (5, 5), False)
    assert np.abs(legacy - ours_torch).max() > 1.0                 # a real difference, not rounding
    np.testing.assert_allclose(legacy[0, 0, 0], x[0, 0, 0], rtol=1e-6)  # legacy: output 0 = input 0
    np.testing.assert_allclose(resize_bilinear(x, (12, 12)), _torch_resize(x, (12, 12), False), rtol=1e-6)


def test_to_net_input_pads_then_resizes():
    img = np.random.default_rng(2).integers(0, 256, size=(20, 32, 3), dtype=np.uint8)
    out = to_net_input(img, 16)
    assert out.shape == (1, 16, 16, 3) and out.dtype == np.float32
    padded = np.zeros((32, 32, 3)); padded[:20] = img
    np.testing.assert_array_equal(out[0], padded[::2, ::2])   # 32 -> 16 legacy: every other pixel exactly
    np.testing.assert_array_equal(to_net_input(img[:16, :16], 16)[0], img[:16, :16])  # no resize at size
    square = np.ones((16, 16, 3), np.float32)
    out = to_net_input(square, 16)
    out -= 1                                                  # callers normalise in place
    assert not np.shares_memory(out, square) and square.min() == 1


def test_pad_keeps_dtype_on_request_and_float_input_is_rounded_to_float32_first():
    img = np.full((2, 4, 3), 200, np.uint8)
    kept = pad_to_square(img, dtype=None)
    assert kept.dtype == np.uint8 and kept.shape == (4, 4, 3) and kept[2:].max() == 0
    # TF.js holds the image as float32 before resizing: a float64 input is rounded first
    x = np.random.default_rng(4).uniform(0, 255, size=(24, 24, 3))
    out = to_net_input(x, 32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0], resize_bilinear(x.astype(np.float32), 32))
    exact = to_net_input(x, 32, compute_dtype=np.float64)    # TF.js' double arithmetic after the rounding
    np.testing.assert_array_equal(exact[0], resize_bilinear(x.astype(np.float32), 32, compute_dtype=np.float64))
    assert np.any(exact[0] != resize_bilinear(x, 32, compute_dtype=np.float64))  # rounding first changes some
