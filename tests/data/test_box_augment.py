"""Box-aware augmentation: flips by hand, a filled rectangle still covers its transformed box,
the dropping rule, colour jitter formulas, seeding."""
import numpy as np
import pytest

from strided.data.box_augment import (BoxAugment, BoxAugmentError, color_jitter, hflip, scale_translate,
                                      transform_boxes)


def rectangle_image(H, W, boxes, background=0.0):
    """An image with each integer-edged box painted as a filled rectangle of value 1."""
    image = np.full((H, W, 3), background, np.float32)
    for x1, y1, x2, y2 in np.asarray(boxes, int):
        image[y1:y2, x1:x2] = 1.0
    return image


def test_hflip_by_hand():
    image = rectangle_image(20, 30, [[2, 5, 10, 9]])
    flipped, boxes = hflip(image, [[2, 5, 10, 9]])
    np.testing.assert_array_equal(boxes, [[20, 5, 28, 9]])          # x1' = 30 - 10, x2' = 30 - 2
    np.testing.assert_array_equal(flipped, rectangle_image(20, 30, [[20, 5, 28, 9]]))


@pytest.mark.parametrize("scale,shift", [(1.0, (5.0, -3.0)), (2.0, (0.0, 0.0)), (0.5, (4.0, 6.0)),
                                         (1.3, (-7.25, 2.5)), (0.8, (3.6, -1.4))])
def test_filled_rectangle_still_covers_the_transformed_box(scale, shift):
    H, W = 48, 64
    box = [20, 14, 40, 30]
    image = rectangle_image(H, W, [box])
    out, boxes, keep = scale_translate(image, [box], scale, shift, fill=0.0)
    assert keep.tolist() == [True]
    x1, y1, x2, y2 = boxes[0]
    # hand-computed box: p' = s (p - centre) + centre + shift
    np.testing.assert_allclose(boxes[0], [scale * (20 - 32) + 32 + shift[0], scale * (14 - 24) + 24 + shift[1],
                                          scale * (40 - 32) + 32 + shift[0], scale * (30 - 24) + 24 + shift[1]])
    cols, rows = np.arange(W) + 0.5, np.arange(H) + 0.5          # pixel centres
    inside = ((rows[:, None] > y1 + 0.5) & (rows[:, None] < y2 - 0.5) &
              (cols[None, :] > x1 + 0.5) & (cols[None, :] < x2 - 0.5))
    outside = ((rows[:, None] < y1 - 0.5) | (rows[:, None] > y2 + 0.5) |
               (cols[None, :] < x1 - 0.5) | (cols[None, :] > x2 + 0.5))
    assert inside.any() and outside.any()
    assert np.all(out[inside] > 0.999), "the rectangle no longer fills its box"
    assert np.all(out[outside] < 1e-6), "the rectangle spills outside its box"
    # the painted mass equals the box area (bilinear sampling preserves it up to edge effects)
    assert out[..., 0].sum() == pytest.approx((x2 - x1) * (y2 - y1), rel=0.1)


def test_identity_transform_keeps_image_and_boxes():
    rng = np.random.default_rng(0)
    image = rng.random((10, 12, 3)).astype(np.float32)
    out, boxes, keep = scale_translate(image, [[1, 2, 5, 6]], 1.0, (0, 0))
    np.testing.assert_allclose(out, image, atol=1e-6)
    np.testing.assert_array_equal(boxes, [[1, 2, 5, 6]])


def test_integer_shift_moves_pixels_exactly():
    rng = np.random.default_rng(1)
    image = rng.random((10, 12, 3)).astype(np.float32)
    out, _, _ = scale_translate(image, np.zeros((0, 4)), 1.0, (3, -2), fill=0.25)
    np.testing.assert_allclose(out[:8, 3:], image[2:, :9], atol=1e-6)
    assert np.all(out[:, :3] == 0.25) and np.all(out[8:] == 0.25)


def test_boxes_leaving_the_image_are_clipped_or_dropped():
    size = (100, 100)
    boxes = [[10, 10, 30, 30],    # moves to x in [-10, 10]: half visible -> kept, clipped
             [5, 50, 15, 60],     # moves to x in [-15, -5]: gone -> dropped
             [15, 70, 35, 90],    # moves to x in [-5, 15]: 3/4 visible -> kept
             [12, 0, 22, 10]]     # moves to x in [-8, 2]: 1/5 visible (< 0.25) -> dropped
    out, keep = transform_boxes(boxes, size, 1.0, (-20, 0), min_visibility=0.25)
    assert keep.tolist() == [True, False, True, False]
    np.testing.assert_array_equal(out, [[0, 10, 10, 30], [0, 70, 15, 90]])
    _, keep = transform_boxes(boxes, size, 1.0, (-20, 0), min_visibility=0.6)
    assert keep.tolist() == [False, False, True, False]


def test_color_jitter_formulas():
    rng = np.random.default_rng(2)
    image = rng.uniform(0.2, 0.6, (4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(color_jitter(image, brightness=1.5), image * 1.5, rtol=1e-6)
    grey = image @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(color_jitter(image, contrast=0.5), grey.mean() + 0.5 * (image - grey.mean()), rtol=1e-5)
    np.testing.assert_allclose(color_jitter(image, saturation=0.0), np.repeat(grey[..., None], 3, -1), rtol=1e-5)
    assert color_jitter(image, brightness=3.0).max() == 1.0


def test_box_augment_is_seeded_and_boxes_follow_the_image():
    H, W = 64, 64
    boxes = np.array([[8, 8, 24, 28], [36, 30, 56, 50]], float)
    image = rectangle_image(H, W, boxes)
    aug = BoxAugment(flip=0.5, scale=(0.7, 1.3), translate=0.15, brightness=0, contrast=0, saturation=0, fill=0.0)
    flipped_seen = False
    for seed in range(12):
        out1, b1, l1 = aug(image, boxes, np.array([3, 4]), np.random.default_rng(seed))
        out2, b2, l2 = aug(image, boxes, np.array([3, 4]), np.random.default_rng(seed))
        np.testing.assert_array_equal(out1, out2)
        np.testing.assert_array_equal(b1, b2)
        # every kept box is still painted, and nothing is painted outside the boxes
        painted = out1[..., 0] > 0.5
        covered = np.zeros((H, W), bool)
        for x1, y1, x2, y2 in b1:
            xs = slice(int(np.ceil(x1 + 0.5)), int(np.floor(x2 - 0.5)))
            ys = slice(int(np.ceil(y1 + 0.5)), int(np.floor(y2 - 0.5)))
            assert painted[ys, xs].all()
            covered[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = True
        assert not (painted & ~covered).any()
        flipped_seen |= bool(l1[0] == 3 and b1[0, 0] > 32) if len(l1) else False
    assert flipped_seen


def test_box_augment_batch_keeps_normalised_targets():
    images = np.stack([rectangle_image(32, 32, [[4, 4, 12, 12]]), rectangle_image(32, 32, [])])
    targets = [(np.array([[4, 4, 12, 12]], np.float32) / 32, np.array([1])), (np.zeros((0, 4), np.float32), np.zeros(0, int))]
    aug = BoxAugment(flip=1.0, scale=(1, 1), translate=0.0, brightness=0, contrast=0, saturation=0)
    out, t = aug.batch(images, targets, np.random.default_rng(0))
    np.testing.assert_allclose(t[0][0], [[20 / 32, 4 / 32, 28 / 32, 12 / 32]])
    assert t[0][1].tolist() == [1] and t[1][0].shape == (0, 4)
    np.testing.assert_array_equal(out[0], images[0][:, ::-1])


def test_errors_name_the_value():
    with pytest.raises(BoxAugmentError, match=r"scale must be a pair \(low, high\).*received scale=\(2.0, 1.0\)"):
        BoxAugment(scale=(2, 1))
    with pytest.raises(ValueError, match=r"flip must be a probability in \[0, 1\], received flip=1.5"):
        BoxAugment(flip=1.5)
    with pytest.raises(BoxAugmentError, match=r"boxes must be \(K, 4\)"):
        hflip(np.zeros((4, 4, 3)), [[1, 2, 3]])
