"""feature_maps / layer_output: the captured output is the model prefix's output; forward and modes are restored."""
import numpy as np
import pytest

import strided as sd
from strided import models, nn
from strided.viz import VizError, conv_layers, feature_maps, get_layer, layer_output


@pytest.fixture
def lenet():
    sd.manual_seed(0)
    return models.create("lenet5", input_size=28)


def _image(seed=0, shape=(28, 28, 1)):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_feature_maps_equal_the_model_prefix(lenet):
    image = _image()
    with sd.no_grad():
        expected = lenet.features[:2](sd.tensor(image[None])).data[0]
    maps = feature_maps(lenet, image, "features.1")
    assert maps.shape == (28, 28, 6)
    np.testing.assert_array_equal(maps, expected)
    with sd.no_grad():
        expected = lenet.features[:4](sd.tensor(image[None])).data[0]
    np.testing.assert_array_equal(feature_maps(lenet, image, "features.3"), expected)


def test_uint8_images_are_scaled_like_the_data_loader(lenet):
    image = (np.random.default_rng(1).random((28, 28)) * 255).astype(np.uint8)
    with sd.no_grad():
        expected = lenet.features[:1](sd.tensor(image[None, :, :, None].astype(np.float32) / 255)).data[0]
    np.testing.assert_allclose(feature_maps(lenet, image, "features.0"), expected, rtol=1e-6, atol=1e-6)


def test_nested_names_and_eval_mode():
    sd.manual_seed(0)
    model = models.create("vgg_small")
    image = _image(2)
    model.train()
    with sd.no_grad():
        model.eval()
        expected = model.features[0](sd.tensor(image[None])).data[0]   # conv-BN(running stats)-ReLU
        model.train()
    np.testing.assert_allclose(feature_maps(model, image, "features.0"), expected, rtol=1e-6, atol=1e-6)
    assert all(m.training for m in model.modules()), "train mode must be restored"
    np.testing.assert_array_equal(model.features[0][1].running_mean, 0)   # eval: running stats untouched


def test_mixed_modes_are_restored_module_by_module(lenet):
    lenet.train()
    lenet.features.eval()
    feature_maps(lenet, _image(), "features.0")
    assert lenet.training and lenet.classifier.training
    assert not lenet.features.training and not lenet.features[0].training


def test_forward_is_restored_after_success_and_after_an_exception(lenet):
    module = get_layer(lenet, "features.3")
    feature_maps(lenet, _image(), "features.3")
    assert "forward" not in module.__dict__
    with pytest.raises(ValueError, match="expects"):          # LeNet5(28) refuses a 32x32 image
        feature_maps(lenet, _image(shape=(32, 32, 1)), "features.3")
    assert all("forward" not in m.__dict__ for m in lenet.modules())
    # an instance-level forward that was there before is put back as it was
    custom = module.forward
    object.__setattr__(module, "forward", custom)
    with pytest.raises(ValueError):
        feature_maps(lenet, _image(shape=(32, 32, 1)), "features.3")
    assert module.__dict__["forward"] is custom
    feature_maps(lenet, _image(), "features.3")
    assert module.__dict__["forward"] is custom


def test_forward_is_restored_when_the_layer_itself_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = nn.Sequential(nn.Conv2d(1, 2, 3), Boom())
    with pytest.raises(RuntimeError, match="boom"):
        layer_output(model, "1", _image(shape=(8, 8, 1)))
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_the_pass_stops_after_the_layer(lenet):
    calls = []
    head = lenet.classifier
    object.__setattr__(head, "forward", lambda x: calls.append(1) or x)
    feature_maps(lenet, _image(), "features.0")
    assert calls == []


def test_unknown_layer_lists_the_conv_layers(lenet):
    assert conv_layers(lenet) == ["features.0", "features.3"]
    with pytest.raises(VizError, match=r"unknown layer 'features\.9'.*features\.0, features\.3"):
        feature_maps(lenet, _image(), "features.9")
    with pytest.raises(VizError, match="unknown layer ''"):
        feature_maps(lenet, _image(), "")


def test_a_layer_the_forward_does_not_use():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Conv2d(1, 2, 3)
            self.unused = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(VizError, match="not used"):
        feature_maps(Model(), _image(shape=(8, 8, 1)), "unused")


def test_non_spatial_layers_give_vectors(lenet):
    assert feature_maps(lenet, _image(), "classifier.1").shape == (120,)
    with pytest.raises(VizError, match="one image"):
        feature_maps(lenet, _image(shape=(2, 28, 28, 1)), "features.0")


def test_capture_uses_hooks_and_leaves_the_users_own_hooks(lenet):
    seen = []
    handle = lenet.features[0].register_forward_hook(lambda m, i, out: seen.append(out.shape))
    maps = feature_maps(lenet, _image(), "features.0")
    assert seen == [(1, 28, 28, 6)] and maps.shape == (28, 28, 6)
    assert handle.active
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in lenet.modules()) == 1
    handle.remove()
    # a user's hook that replaces the output is seen by the capture, as by any later layer
    with lenet.features[0].register_forward_hook(lambda m, i, out: out * 0):
        assert not feature_maps(lenet, _image(), "features.0").any()
