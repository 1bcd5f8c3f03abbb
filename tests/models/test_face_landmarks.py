"""face-api's 68-point landmark nets in strided: a PyTorch twin, face-api itself, hand-made cases.

References (``tests/detect/data/faceapi_reference.json``: full net; ``tests/face/data/
faceapi_landmarks_reference.json``: full and tiny nets) are face-api 1.7.15's own outputs in
node (TF.js 4 CPU backend), made with the commands in the docstrings of
``tests/detect/data/faceapi_make_reference.py`` and ``tests/face/data/faceapi_make_landmarks_reference.py``.
Here the landmark stage is checked alone: the crop is taken from face-api's own detection box,
so the detector's float rounding plays no part.  Tests that need face-api's weights skip when
they are not installed; the twin, loader and pre/post-processing tests run everywhere.
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
from strided.face.align import crop_face, landmarks_to_image  # noqa: E402
from strided.models.face_landmarks import (FACE_MEAN_RGB, DenseBlock, FaceLandmark68Net,  # noqa: E402
                                           face_net_input, landmarks_tfjs_to_state_dict, load_face_landmark_net,
                                           postprocess, preprocess)
from strided.models.faceapi import resize_bilinear  # noqa: E402

# observed on the 3 + 3 faces: 6e-5 px (float32 rounding of TF.js' convolution order vs ours)
LANDMARK_TOL = 2e-3
LOOSE_LANDMARK_TOL = 0.5          # the tolerance, for a photo decoded to other pixels


def strided_forward(weights, x, tiny):
    net = FaceLandmark68Net(tiny=tiny)
    net.load_state_dict(landmarks_tfjs_to_state_dict(weights, tiny=tiny))
    with sd.no_grad():
        return net.eval()(sd.tensor(x)).data


# ------------------------------------------------------------------------------------ PyTorch twin
@pytest.mark.parametrize("tiny", [False, True])
def test_network_matches_torch_twin_random_weights(tiny):
    weights = helpers.random_weight_map(helpers.landmark_shapes(tiny), seed=3)
    x = np.random.default_rng(1).normal(size=(2, 112, 112, 3)).astype(np.float32)
    ours, theirs = strided_forward(weights, x, tiny), helpers.torch_landmark_twin(weights, tiny)(x)
    assert ours.shape == theirs.shape == (2, 136)
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()
    assert np.abs(ours[0] - ours[1]).max() > 1e-3         # the random net is not degenerate


@pytest.mark.parametrize("tiny", [False, True])
def test_network_matches_torch_twin_real_weights_on_a_face(tiny, model_dir):
    from strided.io.tfjs import read_tfjs
    name = "face_landmark_68_tiny_model" if tiny else "face_landmark_68_model"
    weights = read_tfjs(model_dir / f"{name}-weights_manifest.json")
    x = preprocess(helpers.photo("astronaut")[60:200, 150:290])
    ours, theirs = strided_forward(weights, x, tiny), helpers.torch_landmark_twin(weights, tiny)(x)
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()


def test_dense_block_gradients_match_torch():
    """The blocks are trainable: float64 gradients of a 3-conv dense block against the twin's."""
    torch = pytest.importorskip("torch")
    weights = {k: v.astype(np.float64) for k, v in helpers.random_weight_map(helpers.landmark_shapes(True), 5).items()}
    block = DenseBlock(3, 32, num_convs=3, first=True)
    state = landmarks_tfjs_to_state_dict({k: v.astype(np.float32) for k, v in weights.items()}, tiny=True)
    block.load_state_dict({k[len("dense0."):]: v.astype(np.float64) for k, v in state.items()
                           if k.startswith("dense0.")})
    for p in block.parameters():
        p.data = p.data.astype(np.float64)
    x = np.random.default_rng(2).normal(size=(1, 10, 10, 3))   # even: TF pads (0, 1)
    xs = sd.tensor(x, requires_grad=True)
    (block(xs) ** 2).sum().backward()

    # the same block with torch, straight from the weight map (the twin's first block)
    TF = torch.nn.functional
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    k = torch.tensor(weights["dense0/conv0/filters"].transpose(3, 2, 0, 1))
    out1 = TF.relu(TF.conv2d(TF.pad(xt, (0, 1, 0, 1)), k, torch.tensor(weights["dense0/conv0/bias"]), stride=2))

    def sep(z, prefix):
        dw = torch.tensor(weights[f"{prefix}/depthwise_filter"].transpose(2, 3, 0, 1))
        pw = torch.tensor(weights[f"{prefix}/pointwise_filter"].transpose(3, 2, 0, 1))
        return TF.conv2d(TF.conv2d(TF.pad(z, (1, 1, 1, 1)), dw, groups=32), pw, torch.tensor(weights[f"{prefix}/bias"]))

    out2 = sep(out1, "dense0/conv1")
    out3 = sep(TF.relu(out1 + out2), "dense0/conv2")
    (TF.relu(out1 + out2 + out3) ** 2).sum().backward()
    np.testing.assert_allclose(xs.grad, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------ loading
def test_loader_reads_a_tfjs_manifest(tmp_path):
    weights = helpers.random_weight_map(helpers.landmark_shapes(), seed=4)
    path = helpers.write_manifest(tmp_path, "face_landmark_68_model", weights)
    net = load_face_landmark_net(path)
    assert not net.training and net.num_parameters() == sum(v.size for v in weights.values()) == 356_840
    np.testing.assert_array_equal(net.dense2.conv1.depthwise.weight.data[:, :, 0, :],
                                  weights["dense2/conv1/depthwise_filter"][:, :, :, 0])
    np.testing.assert_array_equal(load_face_landmark_net(tmp_path).fc.weight.data, weights["fc/weights"])
    tiny = helpers.random_weight_map(helpers.landmark_shapes(True), seed=4)
    helpers.write_manifest(tmp_path, "face_landmark_68_tiny_model", tiny)
    assert load_face_landmark_net(tmp_path, tiny=True).num_parameters() == 77_224


def test_shapes_are_face_apis(model_dir):
    assert helpers.manifest_shapes(model_dir, "face_landmark_68_model") == helpers.landmark_shapes()
    assert helpers.manifest_shapes(model_dir, "face_landmark_68_tiny_model") == helpers.landmark_shapes(True)


def test_loader_rejects_other_weights(tmp_path):
    weights = helpers.random_weight_map(helpers.landmark_shapes(), seed=4)
    del weights["dense3/conv3/bias"]
    with pytest.raises(ModelFileError, match="missing \\['dense3/conv3/bias'\\]"):
        load_face_landmark_net(helpers.write_manifest(tmp_path / "a", "x", weights))
    tiny = helpers.random_weight_map(helpers.landmark_shapes(True), seed=4)   # tiny weights for the full net
    with pytest.raises(ModelFileError, match="not face-api's 68-point landmark weights"):
        load_face_landmark_net(helpers.write_manifest(tmp_path / "b", "x", tiny))
    weights = helpers.random_weight_map(helpers.landmark_shapes(), seed=4)
    weights["fc/bias"] = np.zeros(10, np.float32)
    with pytest.raises(ModelFileError, match="fc.bias"):
        load_face_landmark_net(helpers.write_manifest(tmp_path / "c", "x", weights))


# ------------------------------------------------------------------------------------ pre/post-processing
def test_input_is_a_centred_square_resized_and_normalised():
    crop = np.random.default_rng(0).integers(0, 256, size=(40, 25, 3), dtype=np.uint8)
    square = np.zeros((40, 40, 3), np.float32)
    square[:, 7:32] = crop            # diff 15: round(7.5) = 8 after the image, 7 before (face-api's padToSquare)
    expected = (resize_bilinear(square, 112) - np.array(FACE_MEAN_RGB, np.float32)) / np.float32(255)
    np.testing.assert_array_equal(preprocess(crop), expected[None])
    assert preprocess(crop).dtype == np.float32
    # an input already 112 x 112 is not resized
    big = np.full((112, 112, 3), 200, np.uint8)
    np.testing.assert_allclose(face_net_input(big, 112)[0, 5, 5], (200 - np.array(FACE_MEAN_RGB)) / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="received shape \\(0, 5, 3\\)"):
        preprocess(np.zeros((0, 5, 3), np.uint8))


def test_postprocess_undoes_the_centred_padding():
    # crop 100 high x 50 wide: scale 1.12, the image is 56 wide in the 112 square, 28 padded each side
    out = np.zeros(136)
    out[0::2], out[1::2] = 0.25, 0.5         # x = 28 px into the square = the crop's left edge
    rel = postprocess(out, (100, 50, 3))
    np.testing.assert_allclose(rel, np.tile([0.0, 0.5], (68, 1)), atol=1e-12)
    out[0::2] = 0.75                         # 84 px = the right edge
    np.testing.assert_allclose(postprocess(out, (100, 50))[:, 0], 1.0, atol=1e-12)
    # wide crop: the padding is vertical
    out[0::2], out[1::2] = 0.5, 0.25
    np.testing.assert_allclose(postprocess(out, (50, 100)), np.tile([0.5, 0.0], (68, 1)), atol=1e-12)


# ------------------------------------------------------------------------------------ against face-api
CASES = [(name, i, False) for name, p in helpers.reference()["photos"].items() for i in range(len(p["faces"]))]
CASES += [(name, i, True) for name, p in helpers.reference(helpers.LANDMARKS_REFERENCE)["photos"].items()
          for i in range(len(p["faces_tiny"]))]


@pytest.fixture(scope="module")
def nets(model_dir):
    return {False: load_face_landmark_net(model_dir), True: load_face_landmark_net(model_dir, tiny=True)}


@pytest.mark.parametrize("name,index,tiny", CASES)
def test_landmarks_match_face_api_on_its_own_boxes(name, index, tiny, nets, model_dir):
    ref = helpers.reference(helpers.LANDMARKS_REFERENCE if tiny else helpers.DETECT_REFERENCE)["photos"][name]
    image = helpers.photo(name, model_dir)
    if image is None:
        pytest.skip(f"{ref['source']} is not installed next to {model_dir}")
    face = ref["faces_tiny" if tiny else "faces"][index]
    box = helpers.xywh_to_xyxy(face["box"])
    crop, (_, _, w, h) = crop_face(image, box)
    with sd.no_grad():
        raw = nets[tiny](sd.tensor(preprocess(crop))).data[0]
    points = landmarks_to_image(postprocess(raw, crop.shape), (w, h), box[:2])
    same = hashlib.sha256(image.tobytes()).hexdigest() == ref["sha256"]
    err = np.abs(points - np.array(face["landmarks"])).max()
    assert err <= (LANDMARK_TOL if same else LOOSE_LANDMARK_TOL), err
