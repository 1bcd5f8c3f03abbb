"""Sliding windows: cropping every window vs one pass of the converted (fully
convolutional) classifier agree to float rounding; conversion errors name the layer."""
import numpy as np
import pytest

import strided as sd
from strided import models, nn
from strided.detect.sliding import (ConversionError, FullyConvolutional, naive_sliding_windows,
                                    to_fully_convolutional, window_boxes, window_grid_shape)


def _small_model(channels=3, classes=5, dtype=np.float32):
    """14x14 windows: conv3 -> 12, pool2 -> 6, conv3 -> 4, pool2 -> 2 (K=2, stride 4)."""
    sd.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(channels, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6), nn.LeakyReLU(0.1), nn.AvgPool2d(2)),
        nn.Flatten(), nn.Linear(2 * 2 * 6, 8), nn.Dropout(0.3), nn.Tanh(), nn.Linear(8, classes))
    rng = np.random.default_rng(2)
    bn = model[3][1]
    bn.running_mean[...] = rng.normal(0, 0.3, 6)
    bn.running_var[...] = rng.uniform(0.5, 2, 6)
    bn.gamma.data[...] = rng.uniform(0.5, 1.5, 6)
    if dtype == np.float64:
        for p in model.parameters():
            p.data = p.data.astype(np.float64)
    return model


def _conv_grid(fcn, images):
    fcn.eval()
    with sd.no_grad():
        return fcn(sd.tensor(images)).data


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-11)])
def test_small_model_naive_equals_convolutional(dtype, rtol):
    model = _small_model(dtype=dtype)
    images = np.random.default_rng(3).random((2, 30, 38, 3)).astype(dtype)
    fcn = to_fully_convolutional(model, window=14)
    assert isinstance(fcn, FullyConvolutional)
    assert fcn.window == (14, 14) and fcn.stride == (4, 4)
    naive = naive_sliding_windows(model, images, 14, 4)
    grid = _conv_grid(fcn, images)
    assert naive.shape == grid.shape == (2, 5, 7, 5) == (2,) + window_grid_shape((30, 38), 14, 4) + (5,)
    scale = np.abs(naive).max()
    np.testing.assert_allclose(grid, naive, rtol=rtol, atol=rtol * scale)
    assert grid.dtype == dtype


def test_window_is_inferred_from_the_first_linear():
    fcn = to_fully_convolutional(_small_model())
    assert fcn.window == (14, 14) and fcn.stride == (4, 4)
    assert isinstance(fcn[-1], nn.Conv2d) and fcn[-1].kernel_size == (1, 1)
    first_dense = [l for l in fcn if isinstance(l, nn.Conv2d)][2]
    assert first_dense.kernel_size == (2, 2) and first_dense.weight.shape == (2, 2, 6, 8)


def test_lenet5_on_a_photo_crop_matches_cropping():
    sd.manual_seed(4)
    model = models.create("lenet5", num_classes=10, in_channels=3, input_size=32)
    from strided.data.scenes import load_photos
    photo = load_photos(["astronaut"])[0][100:160:1, 200:276].astype(np.float32) / 255.0   # 60 x 76
    fcn = to_fully_convolutional(model)
    assert fcn.window == (32, 32) and fcn.stride == (4, 4)
    naive = naive_sliding_windows(model, photo, 32, 4)
    grid = _conv_grid(fcn, photo[None])[0]
    assert grid.shape == naive.shape == (8, 12, 10)
    np.testing.assert_allclose(grid, naive, rtol=1e-4, atol=1e-5 * np.abs(naive).max())


def test_a_stride_that_is_a_multiple_of_the_pooling_stride():
    model = _small_model()
    images = np.random.default_rng(5).random((1, 34, 34, 3)).astype(np.float32)
    fcn = to_fully_convolutional(model, window=14)
    naive = naive_sliding_windows(model, images, 14, 8)
    grid = _conv_grid(fcn, images)[:, ::2, ::2]
    np.testing.assert_allclose(grid, naive, rtol=2e-5, atol=2e-5 * np.abs(naive).max())


def test_the_weights_are_reshaped_in_nhwc_flatten_order():
    """A Linear that picks one input feature: its conv must read the same (h, w, c)."""
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Flatten(), nn.Linear(2 * 2 * 3, 1, bias=False))
    model[0].weight.data[...] = np.eye(2, 3)[None, None]       # channel c -> c (third = 0)
    model[0].bias.data[...] = 0
    model[2].weight.data[...] = 0
    h, w, c = 1, 0, 1
    model[2].weight.data[(h * 2 + w) * 3 + c, 0] = 1.0          # NHWC flatten index
    fcn = to_fully_convolutional(model, window=2)
    x = np.random.default_rng(6).random((1, 2, 2, 2)).astype(np.float32)
    assert _conv_grid(fcn, x)[0, 0, 0, 0] == pytest.approx(x[0, h, w, c])


def test_converted_weights_are_copies():
    model = _small_model()
    fcn = to_fully_convolutional(model)
    fcn[-1].weight.data[...] = 0
    assert np.abs(model[-1].weight.data).sum() > 0


def test_window_boxes_by_hand():
    boxes = window_boxes((2, 3), 14, (4, 5))
    assert boxes.shape == (2, 3, 4)
    np.testing.assert_array_equal(boxes[1, 2], [10, 4, 24, 18])
    np.testing.assert_array_equal(boxes[0, 0], [0, 0, 14, 14])


# ------------------------------------------------------------------ errors
def test_padding_is_refused_naming_the_layer():
    model = models.create("lenet5", input_size=28)             # first conv pads by 2
    with pytest.raises(ConversionError) as info:
        to_fully_convolutional(model)
    assert "features.0" in str(info.value) and "padding=2" in str(info.value)


@pytest.mark.parametrize("layers, words", [
    ([nn.Conv2d(3, 4, 3), nn.GlobalAvgPool2d(), nn.Linear(4, 2)], "exactly one Flatten"),
    ([nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Softmax(axis=0)], "must be a Linear"),
    ([nn.Conv2d(3, 4, 3), nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(4, 2)], "'1' (GlobalAvgPool2d)"),
    ([nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(36, 2), nn.Softmax(axis=0)], "'3' (Softmax)"),
])
def test_unconvertible_models_name_the_layer(layers, words):
    with pytest.raises(ConversionError) as info:
        to_fully_convolutional(nn.Sequential(*layers), window=5)
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_forward_not_in_registration_order_is_caught():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 2, 3))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 2, 3))

        def forward(self, x):                  # not just the layers in order
            return self.head(self.body(x) * 2.0)

    with pytest.raises(ConversionError, match="does not reproduce Odd"):
        to_fully_convolutional(Odd(), window=6)


def test_small_image_is_refused():
    with pytest.raises(ConversionError, match="smaller than the window"):
        naive_sliding_windows(_small_model(), np.zeros((10, 10, 3), np.float32), 14, 4)
