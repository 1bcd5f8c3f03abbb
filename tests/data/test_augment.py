"""Augmentations on NHWC float batches."""
import numpy as np
import pytest

from strided.data import augment
from strided.data.augment import (ColorShift, Compose, HorizontalFlip, PCAColor, RandomCrop, Rotate, Shear,
                                  VerticalFlip, affine_warp, standard)


def _batch(n=6, h=7, w=9, c=3, seed=0, low=0.0):
    return (low + (1 - low) * np.random.default_rng(seed).random((n, h, w, c))).astype(np.float32)


def rng(seed=0):
    return np.random.default_rng(seed)


class FixedRng:
    """Stands in for a Generator: ``uniform`` returns the given values (to pick exact angles / shears)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def uniform(self, low, high, size):
        assert np.all((low <= self.values) & (self.values <= high))
        return self.values[:size] if np.ndim(size) == 0 else self.values.reshape(size)


# --------------------------------------------------------------------------- flips
def test_horizontal_flip_p1_reverses_width_exactly():
    x = _batch()
    out = HorizontalFlip(p=1.0)(x, rng())
    np.testing.assert_array_equal(out, x[:, :, ::-1, :])
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not np.shares_memory(out, x)


def test_vertical_flip_p1_reverses_height_exactly():
    x = _batch()
    np.testing.assert_array_equal(VerticalFlip(p=1.0)(x, rng()), x[:, ::-1, :, :])


@pytest.mark.parametrize("cls", [HorizontalFlip, VerticalFlip])
def test_flip_p0_is_identity_and_input_untouched(cls):
    x = _batch()
    keep = x.copy()
    out = cls(p=0.0)(x, rng())
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(x, keep)
    cls(p=1.0)(x, rng())
    np.testing.assert_array_equal(x, keep)          # never modified in place


@pytest.mark.parametrize("cls,axis", [(HorizontalFlip, 2), (VerticalFlip, 1)])
def test_flip_half_flips_each_image_whole_or_not(cls, axis):
    x = _batch(n=400, h=3, w=4, c=1)
    out = cls(p=0.5)(x, rng(3))
    flipped = np.array([np.array_equal(o, np.flip(i, axis - 1)) for o, i in zip(out, x)])
    same = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert np.all(flipped ^ same)
    assert 0.4 < flipped.mean() < 0.6


# --------------------------------------------------------------------------- random crop
def _shift(img, dy, dx):
    """``img`` moved down by dy and right by dx, zeros where nothing moved in."""
    H, W = img.shape[:2]
    out = np.zeros_like(img)
    out[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = img[max(-dy, 0):H - max(dy, 0),
                                                                    max(-dx, 0):W - max(dx, 0)]
    return out


def test_random_crop_padding_zero_is_identity():
    x = _batch()
    out = RandomCrop(padding=0)(x, rng())
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


@pytest.mark.parametrize("p", [1, 3])
def test_random_crop_is_a_shifted_copy(p):
    x = _batch(n=60, h=8, w=6, c=2, low=0.1)   # strictly positive, so the zero padding is visible
    out = RandomCrop(padding=p)(x, rng(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    offsets = []
    for o, i in zip(out, x):
        found = [(dy, dx) for dy in range(-p, p + 1) for dx in range(-p, p + 1)
                 if np.array_equal(o, _shift(i, dy, dx))]
        assert len(found) == 1, "output is not a shifted copy of its input"
        offsets.append(found[0])
    # offsets spread over the whole range, not always the same
    assert len(set(offsets)) > (2 * p + 1) ** 2 // 2
    assert {dy for dy, _ in offsets} == set(range(-p, p + 1))
    assert {dx for _, dx in offsets} == set(range(-p, p + 1))


def test_random_crop_reflect_mode_is_a_shift_without_zero_fill():
    p = 2
    x = _batch(n=40, h=6, w=7, c=1, low=0.1, seed=12)
    out = RandomCrop(padding=p, mode="reflect")(x, rng(2))
    assert out.shape == x.shape and out.min() >= 0.1             # no zero fill
    moved = 0
    for o, i in zip(out, x):
        # the part that came from inside the image is a shifted copy; the rest is not zero
        found = [(dy, dx) for dy in range(-p, p + 1) for dx in range(-p, p + 1)
                 if np.array_equal(o * (_shift(np.ones_like(i), dy, dx) > 0), _shift(i, dy, dx))]
        assert found, "output is not a shifted copy of its input"
        moved += (0, 0) not in found
    assert moved > 20
    with pytest.raises(ValueError, match="mode"):
        RandomCrop(2, mode="wrap")


# --------------------------------------------------------------------------- affine: rotate / shear
def test_rotate_zero_and_shear_zero_are_identity():
    x = _batch(n=4, h=9, w=11)
    np.testing.assert_allclose(Rotate(max_degrees=0)(x, rng()), x, atol=1e-6)
    np.testing.assert_allclose(Shear(max_shear=0)(x, rng()), x, atol=1e-6)
    np.testing.assert_allclose(affine_warp(x, np.tile(np.eye(2), (4, 1, 1))), x, atol=1e-6)


@pytest.mark.parametrize("size", [7, 9])
def test_affine_warp_quarter_turn_is_rot90(size):
    """A = [[0, -1], [1, 0]] on (row, col): output (r, c) reads input A^-1 (r, c) = (c, -r) about the centre,
    which is np.rot90 with k=1 (counter-clockwise on screen)."""
    x = _batch(n=3, h=size, w=size, c=2, seed=5).astype(np.float64)
    A = np.tile(np.array([[0.0, -1.0], [1.0, 0.0]]), (3, 1, 1))
    out = affine_warp(x, A)
    expected = np.rot90(x, k=1, axes=(1, 2))
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-9)
    assert not np.allclose(out, np.rot90(x, k=-1, axes=(1, 2)))
    # four quarter turns come back
    y = x
    for _ in range(4):
        y = affine_warp(y, A)
    np.testing.assert_allclose(y[:, 1:-1, 1:-1], x[:, 1:-1, 1:-1], atol=1e-9)


def test_rotate_by_plus_and_minus_90_degrees():
    x = _batch(n=2, h=9, w=9, c=1, seed=6)
    ccw = Rotate(max_degrees=90)(x, FixedRng([90.0, 90.0]))
    cw = Rotate(max_degrees=90)(x, FixedRng([-90.0, -90.0]))
    np.testing.assert_allclose(ccw[:, 1:-1, 1:-1], np.rot90(x, 1, axes=(1, 2))[:, 1:-1, 1:-1], atol=1e-5)
    np.testing.assert_allclose(cw[:, 1:-1, 1:-1], np.rot90(x, -1, axes=(1, 2))[:, 1:-1, 1:-1], atol=1e-5)


def test_shear_moves_columns_by_s_times_row():
    """Shear s=1: output (r, c) reads input (r, c - r) about the centre; the centre row does not move."""
    H = W = 9
    x = _batch(n=1, h=H, w=W, c=1, seed=7).astype(np.float64)
    out = Shear(max_shear=1.0)(x, FixedRng([1.0]))
    cy = cx = (H - 1) // 2
    for r in range(H):
        for c in range(W):
            src = c - (r - cy)
            expected = x[0, r, src, 0] if 0 <= src < W else 0.0
            assert out[0, r, c, 0] == pytest.approx(expected, abs=1e-9), (r, c)
    np.testing.assert_allclose(out[0, cy], x[0, cy])


def test_affine_warp_fill_outside():
    x = np.ones((1, 5, 5, 1))
    A = np.array([[[0.5, 0.0], [0.0, 0.5]]])          # zoom out by 2: the border reads outside the image
    out = affine_warp(x, A, fill=0.25)
    assert out[0, 0, 0, 0] == pytest.approx(0.25)
    assert out[0, 2, 2, 0] == pytest.approx(1.0)


def test_rotate_small_angles_keep_the_mean():
    H = W = 21
    rr, cc = np.mgrid[:H, :W] - 10.0
    blob = np.exp(-(rr ** 2 + (cc / 1.6) ** 2) / 18.0)             # smooth, zero at the border, not round
    x = np.repeat(blob[None, :, :, None], 16, axis=0).astype(np.float32)
    out = Rotate(max_degrees=12)(x, rng(8))
    assert out.dtype == np.float32
    means = out.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(means, blob.mean(), rtol=0.02)
    # but the images did change, and differently from one another
    assert np.abs(out - x).max() > 0.05
    assert len({round(float(np.abs(o - x[0]).sum()), 4) for o in out}) > 8


# --------------------------------------------------------------------------- colour
def test_color_shift_is_a_per_channel_constant_offset():
    x = (0.2 + 0.6 * _batch(n=20, h=5, w=6, c=3, seed=9)).astype(np.float32)   # in [0.2, 0.8]: no clipping
    out = ColorShift(max_offset=0.1)(x, rng(4))
    assert out.dtype == np.float32 and out.shape == x.shape
    diff = (out - x).astype(np.float64)
    offsets = diff[:, :1, :1, :]
    np.testing.assert_allclose(diff, np.broadcast_to(offsets, diff.shape), atol=1e-6)
    offsets = offsets[:, 0, 0, :]
    assert np.abs(offsets).max() <= 0.1 + 1e-6
    assert np.abs(offsets).max() > 0.05
    assert len(np.unique(np.round(offsets, 5))) == offsets.size   # each image and channel its own offset


def test_color_shift_stays_in_unit_range():
    x = _batch(n=10, seed=10)
    out = ColorShift(max_offset=0.6)(x, rng(5))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert (out == 0.0).any() and (out == 1.0).any()              # it did clip


def _correlated_rgb(n=4000, seed=0):
    g = np.random.default_rng(seed)
    z = g.normal(size=(n, 3))
    mix = np.array([[0.20, 0.05, 0.00], [0.10, 0.15, 0.02], [0.05, 0.10, 0.08]])
    return np.clip(0.5 + z @ mix, 0, 1).reshape(40, n // 40, 1, 3)


def test_pca_color_fit_eigenpairs():
    images = _correlated_rgb()
    pca = PCAColor.fit(images, std=0.2)
    assert pca.std == 0.2
    V, lam = pca.eigenvectors, pca.eigenvalues
    assert V.shape == (3, 3) and lam.shape == (3,)
    np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-10)
    pixels = images.reshape(-1, 3)
    centred = pixels - pixels.mean(0)
    cov = centred.T @ centred / (len(pixels) - 1)
    ref = np.linalg.eigh(cov)[0]
    np.testing.assert_allclose(np.sort(lam), np.sqrt(np.sort(ref)), rtol=1e-8)
    # each (sqrt eigenvalue, eigenvector) pair: cov v = lam^2 v, and together they rebuild cov
    for i in range(3):
        np.testing.assert_allclose(cov @ V[:, i], lam[i] ** 2 * V[:, i], atol=1e-10)
    np.testing.assert_allclose(V @ np.diag(lam ** 2) @ V.T, cov, atol=1e-10)


def test_pca_color_fit_uint8_is_scaled():
    images = np.round(_correlated_rgb(n=800) * 255).astype(np.uint8)
    a = PCAColor.fit(images)
    b = PCAColor.fit(images.astype(np.float64) / 255)
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-10)
    assert a.eigenvalues.max() < 1


def test_pca_color_moves_every_pixel_by_the_same_vector():
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    lam = np.array([0.2, 0.1, 0.05])
    pca = PCAColor(std=0.1, eigenvalues=lam, eigenvectors=q)
    x = np.full((3000, 4, 5, 3), 0.5, dtype=np.float32)               # constant mid-grey
    out = pca(x, rng(6))
    assert out.dtype == np.float32
    shift = (out - x).astype(np.float64)
    per_image = shift[:, :1, :1, :]
    np.testing.assert_allclose(shift, np.broadcast_to(per_image, shift.shape), atol=1e-7)
    per_image = per_image[:, 0, 0, :]
    # the shift is sum_i alpha_i lambda_i v_i with alpha_i ~ N(0, std): recover alpha and look at its spread
    alpha = (per_image @ q) / lam
    np.testing.assert_allclose(alpha.std(axis=0), 0.1, rtol=0.08)
    np.testing.assert_allclose(alpha.mean(axis=0), 0.0, atol=0.01)


def test_pca_color_one_channel_shifts_brightness_and_clips():
    x = np.full((50, 3, 3, 1), 0.5, dtype=np.float32)
    out = PCAColor(std=1.0)(x, rng(7))
    per_image = out[:, 0, 0, 0]
    np.testing.assert_array_equal(out, np.broadcast_to(per_image[:, None, None, None], out.shape))
    assert len(np.unique(per_image)) > 40
    big = PCAColor(std=50.0)(x, rng(7))
    assert big.min() == 0.0 and big.max() == 1.0


# --------------------------------------------------------------------------- compose, seeds, standard
def test_compose_applies_in_order_with_one_generator():
    seen = []

    def double(x, g):
        seen.append(("double", g))
        return x * 2

    def add_one(x, g):
        seen.append(("add", g))
        return x + 1

    x = np.full((1, 1, 1, 1), 3.0)
    g = rng()
    assert Compose([double, add_one])(x, g).item() == 7.0
    assert Compose([add_one, double])(x, g).item() == 8.0
    assert [name for name, _ in seen] == ["double", "add", "add", "double"]
    assert all(gg is g for _, gg in seen)
    assert Compose([])(x, g) is x


@pytest.mark.parametrize("pipeline", [
    Compose([HorizontalFlip(), RandomCrop(padding=2), Rotate(10), Shear(0.2), ColorShift(0.1)]),
    standard("lfw-faces"), standard("digits"), standard("fashion-mnist"), PCAColor(0.3)])
def test_same_seed_same_output_different_seed_different(pipeline):
    x = _batch(n=12, h=10, w=10, c=3, seed=11)
    a = pipeline(x, rng(42))
    b = pipeline(x, rng(42))
    c = pipeline(x, rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == x.shape and a.dtype == np.float32


def _flips(pipeline):
    return [t for t in pipeline.transforms if isinstance(t, (HorizontalFlip, VerticalFlip))]


@pytest.mark.parametrize("name", ["mnist-5k", "digits", "h5:signs.h5"])
def test_standard_never_mirrors_digits(name):
    pipeline = standard(name)
    assert isinstance(pipeline, Compose) and pipeline.transforms
    assert _flips(pipeline) == []
    assert not _flips(standard(name, channels=3))


@pytest.mark.parametrize("name", ["fashion-mnist", "lfw-faces", "folder:/photos"])
def test_standard_mirrors_clothes_faces_and_photos(name):
    pipeline = standard(name)
    flips = _flips(pipeline)
    assert len(flips) == 1 and type(flips[0]) is HorizontalFlip    # left-right only, never upside down


def test_standard_colour_shift_only_for_rgb():
    assert not any(isinstance(t, ColorShift) for t in standard("folder:x", channels=1).transforms)
    assert any(isinstance(t, ColorShift) for t in standard("folder:x", channels=3).transforms)


def test_reprs():
    assert repr(HorizontalFlip(0.3)) == "HorizontalFlip(p=0.3)"
    text = repr(Compose([RandomCrop(2), Rotate(10)]))
    assert text.startswith("Compose([RandomCrop(") and "Rotate(max_degrees=10.0" in text
    assert set(augment.__all__) >= {"HorizontalFlip", "PCAColor", "affine_warp", "standard"}
