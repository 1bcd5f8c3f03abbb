"""Augmentations on NHWC float batches: exact geometry (flips, crops, quarter turns,
shears), colour offsets and AlexNet's PCA colour, seeding, pipelines."""
import numpy as np
import pytest

from strided.data import augment
from strided.data.augment import (ColorShift, Compose, HorizontalFlip, PCAColor, RandomCrop,
                                  Rotate, Shear, VerticalFlip, affine_warp, rotate, shear,
                                  standard)


def _batch(n=6, h=7, w=9, c=3, seed=0, low=0.0):
    return (low + (1 - low) * np.random.default_rng(seed).random((n, h, w, c))).astype(np.float32)


def rng(seed=0):
    return np.random.default_rng(seed)


class FixedRng:
    """Stands in for a Generator: ``uniform`` returns the given values (exact angles)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def uniform(self, low, high, size):
        assert np.all((low <= self.values) & (self.values <= high))
        return self.values[:size]


# --------------------------------------------------------------------------- flips
def test_horizontal_flip_reverses_the_width_axis_exactly():
    x = _batch()
    out = HorizontalFlip(p=1.0)(x, rng())
    np.testing.assert_array_equal(out, x[:, :, ::-1, :])
    assert out.dtype == x.dtype and not np.shares_memory(out, x)


def test_vertical_flip_reverses_the_height_axis_exactly():
    x = _batch()
    np.testing.assert_array_equal(VerticalFlip(p=1.0)(x, rng()), x[:, ::-1, :, :])


@pytest.mark.parametrize("cls", [HorizontalFlip, VerticalFlip])
def test_flip_p0_is_identity_and_input_is_never_modified(cls):
    x = _batch()
    keep = x.copy()
    np.testing.assert_array_equal(cls(p=0.0)(x, rng()), x)
    cls(p=1.0)(x, rng())
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("cls,axis", [(HorizontalFlip, 1), (VerticalFlip, 0)])
def test_flip_p_half_flips_whole_images_about_half_the_time(cls, axis):
    x = _batch(n=400, h=3, w=4, c=1)
    out = cls(p=0.5)(x, rng(3))
    flipped = np.array([np.array_equal(o, np.flip(i, axis)) for o, i in zip(out, x)])
    same = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ same)
    assert 0.4 < flipped.mean() < 0.6


def test_flip_rejects_bad_probability():
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], received p=1.5"):
        HorizontalFlip(1.5)


# --------------------------------------------------------------------------- random crop
def _shift(img, dy, dx):
    """``img`` moved down by dy and right by dx, zeros where nothing moved in."""
    H, W = img.shape[:2]
    out = np.zeros_like(img)
    out[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        img[max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)]
    return out


def test_random_crop_padding_zero_is_identity():
    x = _batch()
    np.testing.assert_array_equal(RandomCrop(padding=0)(x, rng()), x)


@pytest.mark.parametrize("p", [1, 3])
def test_random_crop_keeps_the_shape_and_is_a_shifted_copy(p):
    x = _batch(n=60, h=8, w=6, c=2, low=0.1)        # > 0 everywhere, so the zero fill shows
    out = RandomCrop(padding=p)(x, rng(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    offsets = []
    for o, i in zip(out, x):
        found = [(dy, dx) for dy in range(-p, p + 1) for dx in range(-p, p + 1)
                 if np.array_equal(o, _shift(i, dy, dx))]
        assert len(found) == 1, "output is not a shifted copy of its input"
        offsets.append(found[0])
    assert {dy for dy, _ in offsets} == set(range(-p, p + 1))     # every shift happens
    assert {dx for _, dx in offsets} == set(range(-p, p + 1))


def test_random_crop_reflect_fills_with_the_mirrored_image():
    p = 2
    x = _batch(n=40, h=6, w=7, c=1, low=0.1, seed=12)
    out = RandomCrop(padding=p, mode="reflect")(x, rng(2))
    assert out.shape == x.shape and out.min() >= 0.1               # no zero fill
    for o, i in zip(out, x):
        padded = np.pad(i, ((p, p), (p, p), (0, 0)), mode="reflect")
        windows = [padded[t:t + 6, s:s + 7] for t in range(2 * p + 1) for s in range(2 * p + 1)]
        assert any(np.array_equal(o, win) for win in windows)
    with pytest.raises(ValueError, match="mode must be one of"):
        RandomCrop(2, mode="wrap")
    with pytest.raises(ValueError, match="padding < image size"):
        RandomCrop(6, mode="reflect")(x, rng())


# --------------------------------------------------------------------------- affine warps
def test_rotate_zero_and_shear_zero_are_identity():
    x = _batch(n=4, h=9, w=11)
    np.testing.assert_allclose(Rotate(max_degrees=0)(x, rng()), x, atol=1e-6)
    np.testing.assert_allclose(Shear(max_shear=0)(x, rng()), x, atol=1e-6)
    np.testing.assert_allclose(affine_warp(x, np.eye(2)), x, atol=1e-6)


@pytest.mark.parametrize("size", [7, 8])
def test_rotate_90_degrees_is_np_rot90(size):
    x = _batch(n=3, h=size, w=size, c=2, seed=5)
    ccw, cw = rotate(x, 90), rotate(x, -90)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(ccw[inner], np.rot90(x, 1, axes=(1, 2))[inner], atol=1e-5)
    np.testing.assert_allclose(cw[inner], np.rot90(x, -1, axes=(1, 2))[inner], atol=1e-5)
    assert not np.allclose(ccw[inner], cw[inner])
    y = x                                            # four quarter turns come back
    for _ in range(4):
        y = rotate(y, 90)
    np.testing.assert_allclose(y[inner], x[inner], atol=1e-5)


def test_rotate_class_uses_the_drawn_angles():
    x = _batch(n=2, h=9, w=9, c=1, seed=6)
    out = Rotate(max_degrees=90)(x, FixedRng([90.0, -90.0]))
    np.testing.assert_allclose(out[0, 1:-1, 1:-1], np.rot90(x[0], 1)[1:-1, 1:-1], atol=1e-5)
    np.testing.assert_allclose(out[1, 1:-1, 1:-1], np.rot90(x[1], -1)[1:-1, 1:-1], atol=1e-5)


def test_shear_moves_each_row_by_factor_times_its_distance_from_the_centre():
    H = W = 9
    x = _batch(n=1, h=H, w=W, c=1, seed=7).astype(np.float64)
    out = shear(x, 1.0)
    centre = (H - 1) // 2
    for r in range(H):
        for c in range(W):
            src = c - (r - centre)
            expected = x[0, r, src, 0] if 0 <= src < W else 0.0
            assert out[0, r, c, 0] == pytest.approx(expected, abs=1e-9), (r, c)
    np.testing.assert_allclose(Shear(1.0)(x, FixedRng([1.0])), out)


def test_half_pixel_shift_interpolates_bilinearly():
    x = np.zeros((1, 3, 4, 1))
    x[0, 1, :, 0] = [0.0, 1.0, 0.0, 0.0]
    out = shear(x, 0.5, fill=0.0)                    # row 2 (one below centre) moves 0.5 right
    np.testing.assert_allclose(out[0, 1, :, 0], [0, 1, 0, 0])      # centre row unmoved
    x2 = np.ones((1, 3, 4, 1)) * np.arange(4)[None, None, :, None]
    out2 = shear(x2, 0.5)
    np.testing.assert_allclose(out2[0, 2, 1:, 0], [0.5, 1.5, 2.5])  # read half a pixel left
    np.testing.assert_allclose(out2[0, 2, 0, 0], 0.0)               # half of 0 and half fill


def test_affine_warp_fill_outside():
    x = np.ones((1, 5, 5, 1))
    out = affine_warp(x, [[0.5, 0.0], [0.0, 0.5]], fill=0.25)   # shrink: borders read outside
    assert out[0, 0, 0, 0] == pytest.approx(0.25)
    assert out[0, 2, 2, 0] == pytest.approx(1.0)


def test_small_rotations_keep_a_centred_blob_and_differ_per_image():
    rr, cc = np.mgrid[:21, :21] - 10.0
    blob = np.exp(-(rr ** 2 + (cc / 1.6) ** 2) / 18.0)
    x = np.repeat(blob[None, :, :, None], 16, axis=0).astype(np.float32)
    out = Rotate(max_degrees=12)(x, rng(8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), blob.mean(), rtol=0.02)
    assert np.abs(out - x).max() > 0.05
    assert len({round(float(np.abs(o - x[0]).sum()), 4) for o in out}) > 8


# --------------------------------------------------------------------------- colour
def test_color_shift_is_a_per_image_per_channel_offset_within_bounds():
    x = (0.2 + 0.6 * _batch(n=20, h=5, w=6, c=3, seed=9)).astype(np.float32)   # no clipping
    out = ColorShift(max_offset=0.1)(x, rng(4))
    diff = (out - x).astype(np.float64)
    offsets = diff[:, :1, :1, :]
    np.testing.assert_allclose(diff, np.broadcast_to(offsets, diff.shape), atol=1e-6)
    assert 0.05 < np.abs(offsets).max() <= 0.1 + 1e-6
    assert len(np.unique(np.round(offsets, 5))) == offsets.size


def test_color_shift_clips_to_unit_range():
    out = ColorShift(max_offset=0.6)(_batch(n=10, seed=10), rng(5))
    assert out.min() == 0.0 and out.max() == 1.0


def _colours_along(direction, n=4000, seed=0):
    """RGB pixels 0.5 + t * direction (+ a little noise): one dominant principal axis."""
    g = np.random.default_rng(seed)
    t = g.normal(0, 0.15, n)[:, None]
    pixels = 0.5 + t * direction + g.normal(0, 0.005, (n, 3))
    return np.clip(pixels, 0, 1).reshape(40, n // 40, 1, 3)


def test_pca_color_fit_finds_the_eigenpairs():
    g = np.random.default_rng(0)
    mix = np.array([[0.20, 0.05, 0.00], [0.10, 0.15, 0.02], [0.05, 0.10, 0.08]])
    images = np.clip(0.5 + g.normal(size=(4000, 3)) @ mix, 0, 1).reshape(40, 100, 1, 3)
    pca = PCAColor.fit(images, std=0.2)
    V, s = pca.eigvecs, pca.eigvals
    assert pca.std == 0.2 and V.shape == (3, 3) and s.shape == (3,)
    assert np.all(np.diff(s) <= 0)                   # largest spread first
    np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-10)
    cov = np.cov(images.reshape(-1, 3), rowvar=False)
    np.testing.assert_allclose(V @ np.diag(s ** 2) @ V.T, cov, atol=1e-10)


def test_pca_color_fit_scales_uint8():
    images = np.round(_colours_along(np.array([1.0, 1.0, 1.0]) / np.sqrt(3)) * 255).astype(np.uint8)
    a, b = PCAColor.fit(images), PCAColor.fit(images / 255.0)
    np.testing.assert_allclose(a.eigvals, b.eigvals, rtol=1e-10)


def test_pca_color_moves_a_constant_image_along_the_principal_axis():
    d = np.array([1.0, 2.0, -1.0]) / np.sqrt(6.0)
    pca = PCAColor.fit(_colours_along(d), std=0.5)
    assert abs(pca.eigvecs[:, 0] @ d) > 0.999        # the fitted principal axis is d
    x = np.full((200, 4, 5, 3), 0.5, dtype=np.float32)
    out = pca(x, rng(6))
    shift = (out - x).astype(np.float64)
    per_image = shift[:, 0, 0, :]
    np.testing.assert_allclose(shift, np.broadcast_to(per_image[:, None, None, :], shift.shape),
                               atol=1e-7)            # every pixel moves the same
    along = per_image @ d
    across = per_image - along[:, None] * d
    assert np.abs(along).mean() > 0.02               # it moved ...
    # ... along d: across it only by the tiny spread of the other axes (0.005 vs 0.15)
    assert np.linalg.norm(across, axis=1).mean() < 0.1 * np.abs(along).mean()


def test_pca_color_with_given_axes_has_the_right_spread():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    s = np.array([0.2, 0.1, 0.05])
    x = np.full((3000, 2, 2, 3), 0.5, dtype=np.float32)
    out = PCAColor(std=0.1, eigvals=s, eigvecs=q)(x, rng(6))
    alpha = ((out - x)[:, 0, 0, :].astype(np.float64) @ q) / s     # recover alpha ~ N(0, std)
    np.testing.assert_allclose(alpha.std(axis=0), 0.1, rtol=0.08)


def test_pca_color_on_one_channel_is_a_brightness_shift():
    x = np.full((50, 3, 3, 1), 0.5, dtype=np.float32)
    out = PCAColor(std=1.0)(x, rng(7))
    per_image = out[:, 0, 0, 0]
    np.testing.assert_array_equal(out, np.broadcast_to(per_image[:, None, None, None], out.shape))
    assert len(np.unique(per_image)) > 40
    big = PCAColor(std=50.0)(x, rng(7))
    assert big.min() == 0.0 and big.max() == 1.0


def test_pca_color_channel_mismatch():
    with pytest.raises(ValueError, match="3-channel axes, received images with 1 channels"):
        PCAColor(eigvals=[0.1, 0.1, 0.1], eigvecs=np.eye(3))(np.zeros((1, 2, 2, 1)), rng())


# --------------------------------------------------------------------------- seeding, pipelines
@pytest.mark.parametrize("pipeline", [
    Compose([HorizontalFlip(), VerticalFlip(), RandomCrop(padding=2), Rotate(10), Shear(0.2),
             ColorShift(0.1)]),
    standard("lfw-faces", 3), standard("digits"), standard("fashion-mnist"), PCAColor(0.3)])
def test_same_seed_same_output_other_seed_other_output(pipeline):
    x = _batch(n=12, h=10, w=10, c=3, seed=11)
    a, b, c = pipeline(x, rng(42)), pipeline(x, rng(42)), pipeline(x, rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == x.shape and a.dtype == np.float32


def test_compose_applies_in_order_with_one_generator():
    seen = []

    def double(x, g):
        seen.append(g)
        return x * 2

    def add_one(x, g):
        seen.append(g)
        return x + 1

    x, g = np.full((1, 1, 1, 1), 3.0), rng()
    assert Compose([double, add_one])(x, g).item() == 7.0
    assert Compose([add_one, double])(x, g).item() == 8.0
    assert all(s is g for s in seen)
    assert Compose([])(x, g) is x


def _flips(pipeline):
    return [t for t in pipeline.transforms if isinstance(t, (HorizontalFlip, VerticalFlip))]


@pytest.mark.parametrize("name", ["mnist-5k", "digits"])
def test_standard_never_mirrors_digits(name):
    pipeline = standard(name)
    assert pipeline.transforms and not _flips(pipeline)
    assert any(isinstance(t, Rotate) for t in pipeline.transforms)


@pytest.mark.parametrize("name", ["fashion-mnist", "lfw-faces", "folder:/photos", "h5:x.h5"])
def test_standard_mirrors_clothes_faces_and_photos_left_right_only(name):
    flips = _flips(standard(name, channels=3))
    assert len(flips) == 1 and type(flips[0]) is HorizontalFlip


def test_standard_colour_for_photos():
    assert any(isinstance(t, PCAColor) for t in standard("folder:x", channels=3).transforms)
    assert any(isinstance(t, ColorShift) for t in standard("folder:x", channels=4).transforms)


def test_batch_checks():
    with pytest.raises(ValueError, match=r"batch \(N, H, W, C\), received shape \(4, 4, 3\)"):
        HorizontalFlip()(np.zeros((4, 4, 3), np.float32), rng())
    with pytest.raises(ValueError, match="float images.*received dtype uint8"):
        Rotate(5)(np.zeros((1, 4, 4, 3), np.uint8), rng())


def test_reprs():
    assert repr(HorizontalFlip(0.3)) == "HorizontalFlip(p=0.3)"
    assert repr(RandomCrop(2, mode="reflect")) == "RandomCrop(padding=2, mode='reflect')"
    assert repr(Rotate(10)) == "Rotate(max_degrees=10)"
    assert repr(Shear(0.2)) == "Shear(max_shear=0.2)"
    assert repr(ColorShift(0.1)) == "ColorShift(max_offset=0.1)"
    assert repr(PCAColor()) == "PCAColor(std=0.1)"
    assert repr(Compose([RandomCrop(2), Rotate(10)])) == (
        "Compose([\n    RandomCrop(padding=2, mode='constant'),\n    Rotate(max_degrees=10),\n])")
    assert set(augment.__all__) >= {"HorizontalFlip", "PCAColor", "affine_warp", "standard"}
