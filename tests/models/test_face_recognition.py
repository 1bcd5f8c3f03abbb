"""face-api's face recognition net (dlib ResNet, 128-d) in strided: a PyTorch twin, face-api itself.

The reference descriptors are face-api 1.7.15's ``computeFaceDescriptor(image)`` on whole photos
(``whole_image_descriptor`` in ``tests/detect/data/faceapi_reference.json``, made with the command
in ``tests/detect/data/faceapi_make_reference.py``): the photo is the "crop", so this checks the
network and its input pipeline (centred padding, legacy bilinear resize to 150, mean, / 255)
without the detector or the alignment.  Tests needing face-api's weights skip when they are absent.
"""
import hashlib
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import faceapi_helpers as helpers  # noqa: E402

import strided as sd  # noqa: E402
from strided.errors import ModelFileError  # noqa: E402
from strided.models.face_recognition import (ConvScale, FaceRecognitionNet, ResidualBlock,  # noqa: E402
                                             fuse_recognition_net, load_face_recognition_net, preprocess,
                                             recognition_tfjs_to_state_dict)

# observed: 8e-7 (descriptor norms ~1.3), float32 rounding of two convolution orders
DESCRIPTOR_TOL = 1e-5
LOOSE_DESCRIPTOR_TOL = 1e-3        # the tolerance, for a photo decoded to other pixels


def strided_forward(weights, x):
    net = FaceRecognitionNet()
    net.load_state_dict(recognition_tfjs_to_state_dict(weights))
    with sd.no_grad():
        return net.eval()(sd.tensor(x)).data


def test_network_matches_torch_twin_random_weights():
    weights = helpers.random_weight_map(helpers.recognition_shapes(), seed=7)
    x = np.random.default_rng(1).normal(size=(2, 150, 150, 3)).astype(np.float32)
    ours, theirs = strided_forward(weights, x), helpers.torch_recognition_twin(weights)(x)
    assert ours.shape == theirs.shape == (2, 128)
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()
    assert np.abs(ours[0] - ours[1]).max() > 1e-3 * np.abs(theirs).max()


def test_network_matches_torch_twin_real_weights_on_a_face(model_dir):
    from strided.io.tfjs import read_tfjs
    weights = read_tfjs(model_dir / "face_recognition_model-weights_manifest.json")
    x = preprocess(helpers.photo("astronaut")[70:190, 160:280])
    ours, theirs = strided_forward(weights, x), helpers.torch_recognition_twin(weights)(x)
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_fused_net_equals_the_plain_net_and_leaves_it_untouched():
    weights = helpers.random_weight_map(helpers.recognition_shapes(), seed=8)
    net = FaceRecognitionNet()
    net.load_state_dict(recognition_tfjs_to_state_dict(weights))
    before = {k: v.copy() for k, v in net.state_dict().items()}
    fused = fuse_recognition_net(net)
    x = np.random.default_rng(2).normal(size=(3, 150, 150, 3)).astype(np.float32)
    with sd.no_grad():
        plain, fast = net.eval()(sd.tensor(x)).data, fused(sd.tensor(x)).data
    assert np.abs(fast - plain).max() <= 1e-5 * np.abs(plain).max()
    assert all(np.array_equal(v, net.state_dict()[k]) for k, v in before.items())    # the original is intact
    convs = [m for m in fused.modules() if isinstance(m, ConvScale)]
    assert len(convs) == 29 and all(isinstance(m.scale, sd.nn.Identity) for m in convs)
    assert sum(m.conv.activation == "relu" for m in convs) == 15          # conv32_down and each conv1
    assert fuse_recognition_net(fused) is not fused                        # fusing twice changes nothing
    with sd.no_grad():
        np.testing.assert_array_equal(fuse_recognition_net(fused)(sd.tensor(x)).data, fast)


@pytest.mark.parametrize("size,channels", [(8, (128, 256)), (7, (32, 64)), (4, (256, 256))])
def test_residual_down_shapes_and_gradients_match_torch(size, channels):
    """Down blocks: 8 -> pooled 4 vs conv 3 (zero row/column appended), 7 -> 3 and 3, and
    channels doubled or not; float64 forward and input gradient against torch."""
    torch = pytest.importorskip("torch")
    c_in, c_out = channels
    rng = np.random.default_rng(size)
    w = {}
    for conv, ci in (("conv1", c_in), ("conv2", c_out)):
        w[f"b/{conv}/conv/filters"] = rng.normal(size=(3, 3, ci, c_out)) / np.sqrt(9 * ci)
        for part in ("conv/bias", "scale/biases"):
            w[f"b/{conv}/{part}"] = 0.1 * rng.normal(size=c_out)
        w[f"b/{conv}/scale/weights"] = 1 + 0.1 * rng.normal(size=c_out)
    block = ResidualBlock(c_in, c_out, down=True)
    for conv in ("conv1", "conv2"):
        layer = getattr(block, conv)
        layer.conv.weight.data, layer.conv.bias.data = w[f"b/{conv}/conv/filters"], w[f"b/{conv}/conv/bias"]
        layer.scale.weight.data, layer.scale.bias.data = w[f"b/{conv}/scale/weights"], w[f"b/{conv}/scale/biases"]
    x = rng.normal(size=(2, size, size, c_in))
    xs = sd.tensor(x, requires_grad=True)
    y = block(xs)
    assert y.shape == (2, size // 2, size // 2, c_out)
    (y * y).sum().backward()

    TF = torch.nn.functional
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)

    def conv_layer(z, conv, stride, relu):
        z = TF.conv2d(z, torch.tensor(w[f"b/{conv}/conv/filters"].transpose(3, 2, 0, 1)),
                      torch.tensor(w[f"b/{conv}/conv/bias"]), stride=stride, padding=1 if stride == 1 else 0)
        scale, shift = torch.tensor(w[f"b/{conv}/scale/weights"]), torch.tensor(w[f"b/{conv}/scale/biases"])
        z = z * scale[:, None, None] + shift[:, None, None]
        return TF.relu(z) if relu else z

    out = conv_layer(conv_layer(xt, "conv1", 2, True), "conv2", 1, False)
    pooled = TF.avg_pool2d(xt, 2, 2)
    out = TF.pad(out, (0, pooled.shape[-1] - out.shape[-1], 0, pooled.shape[-2] - out.shape[-2]))
    pooled = TF.pad(pooled, (0, 0, 0, 0, 0, c_out - c_in))
    yt = TF.relu(pooled + out)
    (yt * yt).sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(xs.grad, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-9)


def test_loader_reads_a_tfjs_manifest(tmp_path):
    weights = helpers.random_weight_map(helpers.recognition_shapes(), seed=8)
    path = helpers.write_manifest(tmp_path, "face_recognition_model", weights)
    net = load_face_recognition_net(path)
    assert not net.training and net.num_parameters() == sum(v.size for v in weights.values()) == 5_614_592
    np.testing.assert_array_equal(net.conv128_down.conv2.scale.bias.data, weights["conv128_down/conv2/scale/biases"])
    np.testing.assert_array_equal(load_face_recognition_net(tmp_path).fc.weight.data, weights["fc"])


def test_shapes_are_face_apis(model_dir):
    assert helpers.manifest_shapes(model_dir, "face_recognition_model") == helpers.recognition_shapes()


def test_loader_rejects_other_weights(tmp_path):
    weights = helpers.random_weight_map(helpers.recognition_shapes(), seed=8)
    del weights["fc"]
    with pytest.raises(ModelFileError, match="missing \\['fc'\\]"):
        load_face_recognition_net(helpers.write_manifest(tmp_path / "a", "x", weights))
    landmarks = helpers.random_weight_map(helpers.landmark_shapes(True))
    with pytest.raises(ModelFileError, match="not face-api's face recognition weights"):
        load_face_recognition_net(helpers.write_manifest(tmp_path / "b", "x", landmarks))
    weights = helpers.random_weight_map(helpers.recognition_shapes(), seed=8)
    weights["conv32_down/conv/filters"] = np.zeros((3, 3, 3, 32), np.float32)
    with pytest.raises(ModelFileError, match="conv32_down.conv.weight"):
        load_face_recognition_net(helpers.write_manifest(tmp_path / "c", "x", weights))


@pytest.fixture(scope="module")
def net(model_dir):
    return load_face_recognition_net(model_dir)


@pytest.mark.parametrize("name", sorted(helpers.reference()["photos"]))
def test_whole_image_descriptor_matches_face_api(name, net, model_dir):
    ref = helpers.reference()["photos"][name]
    image = helpers.photo(name, model_dir)
    if image is None:
        pytest.skip(f"{ref['source']} is not installed next to {model_dir}")
    with sd.no_grad():
        descriptor = net(sd.tensor(preprocess(image))).data[0]
    same = hashlib.sha256(image.tobytes()).hexdigest() == ref["sha256"]
    err = np.linalg.norm(descriptor - np.array(ref["whole_image_descriptor"]))
    assert err <= (DESCRIPTOR_TOL if same else LOOSE_DESCRIPTOR_TOL), err
