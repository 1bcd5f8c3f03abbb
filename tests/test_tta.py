"""strided.tta: the views are the hand-written crops; probabilities (not logits) are averaged."""
import numpy as np
import pytest

import strided as sd
from strided import nn
from strided.errors import StridedError
from strided.train import predict
from strided.tta import (TTAModel, canvas_padding, flip_views, pad_canvas, predict_tta, resize_shorter_side,
                         ten_crops, tta_views)


def arange_images():
    # one 4 x 5 single-channel image: value = 10 * row + column
    return (10 * np.arange(4)[:, None] + np.arange(5)[None, :]).astype(np.float32)[None, :, :, None]


def test_ten_crops_are_the_corners_centre_and_mirrors_by_hand():
    crops = ten_crops(arange_images(), 3)[:, 0, :, :, 0]
    assert crops.shape == (10, 3, 3)
    top_left = [[0, 1, 2], [10, 11, 12], [20, 21, 22]]
    top_right = [[2, 3, 4], [12, 13, 14], [22, 23, 24]]
    bottom_left = [[10, 11, 12], [20, 21, 22], [30, 31, 32]]
    bottom_right = [[12, 13, 14], [22, 23, 24], [32, 33, 34]]
    centre = [[1, 2, 3], [11, 12, 13], [21, 22, 23]]      # offset ((4-3)//2, (5-3)//2) = (0, 1)
    expected = [top_left, top_right, bottom_left, bottom_right, centre]
    expected += [[row[::-1] for row in crop] for crop in expected]
    np.testing.assert_array_equal(crops, np.array(expected, np.float32))


def test_flip_views_mirror_the_width_axis():
    views = flip_views(arange_images())
    np.testing.assert_array_equal(views[0, 0, 0, :, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(views[1, 0, 0, :, 0], [4, 3, 2, 1, 0])
    np.testing.assert_array_equal(views[1, 0, 3, :, 0], [34, 33, 32, 31, 30])


def test_canvas_rule_pads_28_by_2_with_zeros_and_centre_is_the_image():
    assert canvas_padding(28) == 2 and canvas_padding(224) == 16
    images = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32) + 1
    views = tta_views(images, 28, "10crop")
    assert views.shape == (10, 2, 28, 28, 1)
    np.testing.assert_array_equal(views[4], images)                 # centre of the 32 x 32 canvas
    np.testing.assert_array_equal(views[0][:, :2], 0)               # top-left crop starts in the zero border
    np.testing.assert_array_equal(views[0][:, 2:, 2:], images[:, :26, :26])
    np.testing.assert_array_equal(tta_views(images, 28, "none")[0], images)
    reflect = pad_canvas(images, 2, "reflect")
    np.testing.assert_array_equal(reflect[:, 0, 2:-2], images[:, 2])


def test_larger_images_are_the_canvas():
    images = np.random.default_rng(1).random((1, 8, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(tta_views(images, 6, "none")[0], images[:, 1:7, 1:7])


def test_resize_shorter_side():
    photo = np.zeros((40, 60, 3), np.uint8)
    assert resize_shorter_side(photo, 20).shape == (20, 30, 3)
    assert resize_shorter_side(np.zeros((60, 40, 1), np.uint8), 20).shape == (30, 20, 1)


def linear_model(seed=0, symmetric=False, H=6, W=6, C=1, K=4):
    sd.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(H * W * C, K))
    if symmetric:   # weights mirror-symmetric in W: the model cannot tell an image from its mirror
        w = model[1].weight.data.reshape(H, W, C, K)
        model[1].weight.data[...] = ((w + w[:, ::-1]) / 2).reshape(H * W * C, K)
    return model


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_flip_tta_of_a_flip_invariant_model_equals_no_tta():
    model = linear_model(symmetric=True)
    x = np.random.default_rng(2).random((5, 6, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(predict_tta(model, x, "flip"), predict(model, x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(predict_tta(model, x, "none"), predict(model, x), rtol=1e-5, atol=1e-7)


def test_tta_averages_probabilities_not_logits():
    model = linear_model(seed=3)
    x = np.random.default_rng(3).random((4, 6, 6, 1)).astype(np.float32)
    w, b = model[1].weight.data, model[1].bias.data
    logits = [v.reshape(4, -1) @ w + b for v in (x, x[:, :, ::-1])]
    expected = (softmax(logits[0]) + softmax(logits[1])) / 2
    got = predict_tta(model, x, "flip", batch_size=3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(got, softmax((logits[0] + logits[1]) / 2), atol=1e-4)


def test_ten_crop_tta_is_the_mean_over_hand_built_crops():
    model = linear_model(seed=5, H=8, W=8)
    x = np.random.default_rng(5).random((4, 8, 8, 1)).astype(np.float32)
    w, b = model[1].weight.data, model[1].bias.data
    # the zero-padded 10 x 10 canvas: pad round((8 / 0.875 - 8) / 2) = 1
    canvas = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    crops = [canvas[:, r:r + 8, c:c + 8] for r, c in ((0, 0), (0, 2), (2, 0), (2, 2), (1, 1))]
    crops += [c[:, :, ::-1] for c in crops]
    expected = np.mean([softmax(c.reshape(4, -1) @ w + b) for c in crops], axis=0)
    np.testing.assert_allclose(predict_tta(model, x, "10crop"), expected, rtol=1e-5, atol=1e-7)


def test_tta_model_works_with_evaluate():
    from strided.train import evaluate
    model = linear_model(seed=4)
    x = np.random.default_rng(4).random((6, 6, 6, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1])
    result = evaluate(TTAModel(model, "flip"), [(x, y)])
    probs = predict_tta(model, x, "flip")
    assert result["accuracy"] == pytest.approx(float((probs.argmax(1) == y).mean()))
    assert result["loss"] == pytest.approx(float(-np.log(probs[np.arange(6), y]).mean()), rel=1e-5)


def test_bad_arguments_are_refused():
    with pytest.raises(StridedError, match="mode"):
        predict_tta(linear_model(), np.zeros((1, 6, 6, 1)), "5crop")
    with pytest.raises(StridedError, match="larger than the images"):
        ten_crops(np.zeros((1, 4, 4, 1)), 5)
    with pytest.raises(StridedError, match="shape"):
        flip_views(np.zeros((4, 4, 1)))
