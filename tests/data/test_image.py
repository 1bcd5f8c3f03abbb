"""strided.data.image: read_image maps every kind of file to the pixels it means, and refuses
clearly what it cannot map.

Each reading test fails on the naive reader ``np.asarray(Image.open(p).convert("RGB"))``
(16-bit images become a clipped silhouette, float images black, alpha hides colours,
giant images and bad files raise Pillow's own errors): ``test_the_naive_reader_fails_them``
runs them against it.
"""
import numpy as np
import pytest
from PIL import Image

from strided.data.image import read_image, to_float, to_uint8
from strided.errors import ImageError, StridedError


def naive_read_image(path, **_):
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def read():
    """The reader under test (``test_the_naive_reader_fails_them`` swaps in the naive one)."""
    return read_image


def gradient16(tmp_path):
    """A 16-bit PNG, 64 x 64: values 0, 16, 32, ... 65520 (4096 levels)."""
    values = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    path = tmp_path / "gradient16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")          # really stored with 16 bits
    return path, values


def test_16_bit_png_keeps_its_gradations(tmp_path, read):
    path, values = gradient16(tmp_path)
    pixels = read(path)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    expected = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(pixels[..., 0], expected)
    assert len(np.unique(pixels)) == 256                   # every 8-bit level, not a silhouette
    assert np.all(np.diff(pixels[..., 0].reshape(-1).astype(int)) >= 0)


def test_dark_16_bit_png_stays_dark(tmp_path, read):
    path = tmp_path / "dark16.png"
    Image.fromarray(np.full((4, 4), 200, np.uint16)).save(path)   # 200 / 65535: almost black
    assert read(path).max() <= 1


def float_tiff(tmp_path, values, name="float.tif"):
    path = tmp_path / name
    Image.fromarray(values.astype(np.float32)).save(path)
    assert Image.open(path).mode == "F"
    return path


def test_float_tiff_in_unit_range_maps_to_0_255(tmp_path, read):
    values = np.linspace(0.0, 1.0, 64).reshape(8, 8)
    pixels = read(float_tiff(tmp_path, values))
    np.testing.assert_array_equal(pixels[..., 1], np.rint(values.astype(np.float32) * 255.0).astype(np.uint8))
    assert pixels.max() == 255 and len(np.unique(pixels)) == 64


@pytest.mark.parametrize("high", [3.0, 255.0])
def test_float_tiff_outside_the_unit_range_is_refused_naming_file_and_range(tmp_path, read, high):
    path = float_tiff(tmp_path, np.linspace(0.0, high, 16).reshape(4, 4), "hdr.tif")
    with pytest.raises(ImageError, match=rf"hdr\.tif.*0\.\.{high:g}.*\[0, 1\]"):
        read(path)


def test_float_tiff_with_nan_is_refused(tmp_path, read):
    values = np.zeros((4, 4))
    values[1, 2] = np.nan
    with pytest.raises(ImageError, match="nan.tif"):
        read(float_tiff(tmp_path, values, "nan.tif"))


def rgba_file(tmp_path, hidden, name):
    """Left half opaque red, right half fully transparent with colour ``hidden``; one half-transparent
    blue pixel at (0, 0)."""
    a = np.zeros((4, 6, 4), np.uint8)
    a[:, :3] = (255, 0, 0, 255)
    a[:, 3:] = hidden + (0,)
    a[0, 0] = (0, 0, 255, 128)
    path = tmp_path / name
    Image.fromarray(a, "RGBA").save(path)
    return path


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 128, 255)])
def test_rgba_composites_on_the_stated_background(tmp_path, read, background):
    first = read(rgba_file(tmp_path, (0, 0, 0), "black_hidden.png"), background=background)
    second = read(rgba_file(tmp_path, (12, 250, 77), "green_hidden.png"), background=background)
    np.testing.assert_array_equal(first, second)                 # hidden colours do not matter
    assert (first[:, 3:] == background).all()                    # transparent: the background
    assert (first[1:, :3] == (255, 0, 0)).all()                  # opaque: the colour itself
    a = 128 / 255
    expected = np.rint(np.array([0, 0, 255]) * a + np.array(background) * (1 - a)).astype(np.uint8)
    np.testing.assert_array_equal(first[0, 0], expected)


def test_grey_alpha_and_palette_transparency_are_composited(tmp_path, read):
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 0] = 77                      # hidden grey under alpha 0
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    assert (read(path, background=(10, 10, 10)) == 10).all()
    palette = Image.new("P", (2, 2), 1)
    palette.putpalette([0, 0, 0, 200, 30, 40] + [0] * 762)
    palette.info["transparency"] = 1
    path = tmp_path / "palette.png"
    palette.save(path, transparency=1)
    assert (read(path, background=(1, 2, 3)) == (1, 2, 3)).all()


def test_image_over_the_pixel_limit_is_refused_clearly_and_loads_when_allowed(tmp_path, monkeypatch, read):
    path = tmp_path / "giant.png"
    Image.fromarray(np.full((64, 64, 3), 9, np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)         # 4096 pixels: over twice the limit
    with pytest.raises(ImageError, match=r"giant\.png.*too large.*allow_large=True"):
        read(path)
    assert Image.MAX_IMAGE_PIXELS == 1000
    pixels = read(path, allow_large=True)
    assert pixels.shape == (64, 64, 3) and (pixels == 9).all()
    assert Image.MAX_IMAGE_PIXELS == 1000                         # the limit is back for everyone else


def test_missing_file_is_an_image_error_naming_it(tmp_path, read):
    with pytest.raises(ImageError, match=r"not_there\.png"):
        read(tmp_path / "not_there.png")


def test_a_file_that_is_not_an_image_is_an_image_error_naming_it(tmp_path, read):
    path = tmp_path / "notes.png"
    path.write_text("these are words, not pixels\n")
    with pytest.raises(ImageError, match=r"notes\.png") as info:
        read(path)
    assert isinstance(info.value, StridedError)


def test_a_folder_is_an_image_error_naming_it(tmp_path, read):
    (tmp_path / "photos").mkdir()
    with pytest.raises(ImageError, match="photos"):
        read(tmp_path / "photos")


def test_grayscale_and_8_bit_rgb(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    np.testing.assert_array_equal(read_image(path), rgb)
    grey = read_image(path, grayscale=True)
    assert grey.shape == (5, 7, 1)
    np.testing.assert_allclose(grey[..., 0], np.asarray(Image.open(path).convert("L")), atol=1)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_8_bit_files_are_read_as_decoded_every_value_kept(tmp_path, suffix):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = np.stack([values, values[::-1], values.T], axis=-1)
    Image.fromarray(rgb).save(tmp_path / f"rgb{suffix}")
    Image.fromarray(values).save(tmp_path / f"grey{suffix}")
    decoded_rgb = np.asarray(Image.open(tmp_path / f"rgb{suffix}").convert("RGB"))
    decoded_grey = np.asarray(Image.open(tmp_path / f"grey{suffix}"))
    out = read_image(tmp_path / f"rgb{suffix}")
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, decoded_rgb)
    np.testing.assert_array_equal(read_image(tmp_path / f"grey{suffix}", grayscale=True)[..., 0], decoded_grey)
    np.testing.assert_array_equal(read_image(tmp_path / f"grey{suffix}"), np.repeat(decoded_grey[..., None], 3, -1))
    if suffix == ".png":                                  # lossless: the very values written
        np.testing.assert_array_equal(out, rgb)


def test_background_is_checked():
    with pytest.raises(ValueError, match=r"background=\(1, 2\)"):
        read_image("unused.png", background=(1, 2))


def test_to_float_is_the_one_conversion():
    u8 = np.array([0, 51, 255], np.uint8)
    np.testing.assert_array_equal(to_float(u8), np.array([0, 51, 255], np.float32) * np.float32(1 / 255))
    assert to_float(u8).dtype == np.float32 and to_float(u8, np.float64).dtype == np.float64
    np.testing.assert_allclose(to_float(np.array([0, 65535], np.uint16)), [0.0, 1.0])
    f64 = np.array([0.25, 2.0])
    assert to_float(f64, np.float64) is f64                       # floats are kept as they are
    np.testing.assert_array_equal(to_uint8(to_float(np.arange(256, dtype=np.uint8))), np.arange(256))
    np.testing.assert_array_equal(to_uint8(np.array([-0.5, 0.5, 1.5])), [0, 128, 255])


READING_TESTS = [test_16_bit_png_keeps_its_gradations, test_dark_16_bit_png_stays_dark,
                 test_float_tiff_in_unit_range_maps_to_0_255,
                 test_float_tiff_outside_the_unit_range_is_refused_naming_file_and_range,
                 test_float_tiff_with_nan_is_refused, test_rgba_composites_on_the_stated_background,
                 test_grey_alpha_and_palette_transparency_are_composited,
                 test_image_over_the_pixel_limit_is_refused_clearly_and_loads_when_allowed,
                 test_missing_file_is_an_image_error_naming_it,
                 test_a_file_that_is_not_an_image_is_an_image_error_naming_it,
                 test_a_folder_is_an_image_error_naming_it]


@pytest.mark.parametrize("test", READING_TESTS, ids=lambda t: t.__name__)
def test_the_naive_reader_fails_them(test, tmp_path, monkeypatch):
    """The tests above are not vacuous: each fails when given the naive Pillow reader."""
    kwargs = {"tmp_path": tmp_path, "read": naive_read_image}
    if "monkeypatch" in test.__code__.co_varnames:
        kwargs["monkeypatch"] = monkeypatch
    if "high" in test.__code__.co_varnames[:test.__code__.co_argcount]:
        kwargs["high"] = 3.0
    if "background" in test.__code__.co_varnames[:test.__code__.co_argcount]:
        kwargs["background"] = (0, 128, 255)
    with pytest.raises((Exception, pytest.fail.Exception)):     # an assertion, pytest's "DID NOT RAISE", or Pillow's error
        test(**kwargs)
