"""top_patches: the k best (image, position) pairs by brute force, and the patches are their receptive fields."""
import numpy as np
import pytest

import strided as sd
from strided import nn
from strided.data import ArrayDataset
from strided.viz import VizError, cut_patch, layer_output, receptive_field, top_patches, top_patches_for_units


@pytest.fixture(scope="module")
def tiny():
    """A valid-padding chain (every field lies inside the image) and 37 random 12x12 images."""
    sd.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 3, 3))
    model.default_input_size = (12, 12, 1)
    images = np.random.default_rng(3).random((37, 12, 12, 1)).astype(np.float32)
    labels = np.arange(37) % 5
    return model, ArrayDataset(images, labels, [f"c{i}" for i in range(5)])


def _all_activations(model, images):
    return layer_output(model, "3", images)            # (N, 3, 3, 3), one batch


def test_the_top_patches_are_the_argmax_positions(tiny):
    model, data = tiny
    acts = _all_activations(model, data.images)
    N, OH, OW, C = acts.shape
    for unit in range(C):
        # one patch per image: each image's best position, images ranked by it
        best_pos = acts[..., unit].reshape(N, -1).argmax(axis=1)
        best_val = acts[..., unit].reshape(N, -1).max(axis=1)
        order = sorted(range(N), key=lambda n: (-best_val[n], n))[:5]
        patches = top_patches(model, data, "3", unit, k=5, batch_size=8)
        assert [p.image_index for p in patches] == order
        assert [p.position for p in patches] == [divmod(int(best_pos[n]), OW) for n in order]
        np.testing.assert_allclose([p.value for p in patches], best_val[order], rtol=1e-6)
        # several patches may come from one image: the plain top k over all (image, position) pairs
        flat = [(-acts[n, i, j, unit], n, i * OW + j) for n in range(N) for i in range(OH) for j in range(OW)]
        expected = sorted(flat)[:9]
        patches = top_patches(model, data, "3", unit, k=9, batch_size=8, distinct_images=False)
        assert [(p.image_index, p.position[0] * OW + p.position[1]) for p in patches] == [(n, q) for _, n, q in expected]
        np.testing.assert_allclose([p.value for p in patches], [-v for v, _, _ in expected], rtol=1e-6)


def test_each_patch_is_the_receptive_field_and_reproduces_the_activation(tiny):
    model, data = tiny
    rf = receptive_field(model, "3")
    assert rf.size == (8, 8) and rf.jump == (2, 2) and rf.start == (0, 0)
    for p in top_patches(model, data, "3", 1, k=6, batch_size=16, distinct_images=False):
        top, left, bottom, right = p.box
        np.testing.assert_array_equal(p.patch, data.images[p.image_index, top:bottom, left:right])
        assert p.inside.all() and p.label == p.image_index % 5 and p.layer == "3" and p.unit == 1
        # the unit sees exactly this patch: the layer on the patch alone gives a 1x1 map with the same value
        alone = layer_output(model, "3", p.patch)
        assert alone.shape == (1, 1, 1, 3)
        np.testing.assert_allclose(alone[0, 0, 0, 1], p.value, rtol=1e-5, atol=1e-6)


def test_batches_do_not_change_the_result(tiny):
    model, data = tiny
    a = top_patches_for_units(model, data, "3", [0, 2], k=4, batch_size=1)
    b = top_patches_for_units(model, data, "3", [0, 2], k=4, batch_size=64)
    for unit in (0, 2):
        assert [(p.image_index, p.position) for p in a[unit]] == [(p.image_index, p.position) for p in b[unit]]


def test_uint8_data_and_max_images(tiny):
    model, _ = tiny
    images = (np.random.default_rng(4).random((20, 12, 12, 1)) * 255).astype(np.uint8)
    patches = top_patches(model, images, "3", 0, k=30, max_images=7)
    assert len(patches) == 7 and all(p.image_index < 7 for p in patches) and patches[0].label is None
    assert patches[0].patch.dtype == np.float32 and patches[0].patch.max() <= 1.0
    acts = layer_output(model, "3", images[:7])[..., 0].reshape(7, -1).max(axis=1)
    np.testing.assert_allclose(sorted((p.value for p in patches), reverse=True), np.sort(acts)[::-1], rtol=1e-6)


def test_ties_keep_the_lower_image_then_the_earlier_position():
    model = nn.Sequential(nn.MaxPool2d(2))
    model.default_input_size = (4, 4, 1)
    images = np.ones((3, 4, 4, 1), dtype=np.float32)
    patches = top_patches(model, images, "0", 0, k=5, distinct_images=False)
    assert [(p.image_index, p.position) for p in patches] == [(0, (0, 0)), (0, (0, 1)), (0, (1, 0)), (0, (1, 1)),
                                                             (1, (0, 0))]


def test_patches_past_the_border_are_filled_and_masked():
    image = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    patch, inside = cut_patch(image, (-1, 2, 2, 6))
    assert patch.shape == (3, 4, 1)
    np.testing.assert_array_equal(inside, [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]])
    np.testing.assert_array_equal(patch[1:, :2, 0], [[2, 3], [6, 7]])
    assert patch[0].sum() == 0 and patch[:, 2:].sum() == 0


def test_errors_name_the_valid_range(tiny):
    model, data = tiny
    with pytest.raises(VizError, match=r"unit 3 is out of range: layer '3' has 3 channels \(units 0\.\.2\)"):
        top_patches(model, data, "3", 3)
    with pytest.raises(VizError, match=r"unknown layer 'conv9'.*: 0, 3"):
        top_patches(model, data, "conv9", 0)
    with pytest.raises(VizError, match="k must be >= 1"):
        top_patches(model, data, "3", 0, k=0)
    flat = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(200, 4))
    flat.default_input_size = (12, 12, 1)
    with pytest.raises(VizError, match="not feature maps"):
        top_patches(flat, data, "2", 0)
