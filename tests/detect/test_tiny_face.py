"""face-api's Tiny Face Detector in strided: against face-api itself, a PyTorch twin and hand-made heads.

Reference outputs (``tests/detect/data/faceapi_reference.json``) were made by face-api 1.7.15
running in node (TF.js 4, CPU backend) on the same decoded pixels, with::

    npm install --prefix /work/faceapi @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4 @tensorflow/tfjs-backend-wasm@4
    PYTHONPATH=$PWD/src python tests/detect/data/faceapi_make_reference.py \\
        --node-modules /work/faceapi/node_modules --oracle /work/shared/oracles/faceapi_reference.cjs

The tests that need face-api's weights skip when they are not installed
(``strided models fetch face-api``, or ``STRIDED_FACEAPI_DIR``); the architecture, decoding,
NMS and error tests run everywhere, with random weights written as a TF.js manifest here.
"""
import hashlib
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import faceapi_helpers as helpers  # noqa: E402

import strided as sd  # noqa: E402
from strided.detect.tiny_face import TinyFaceDetector, TinyFaceError, check_options, decode, preprocess  # noqa: E402
from strided.errors import ImageError, ModelFileError, StridedError  # noqa: E402
from strided.models.tiny_face_detector import (TinyFaceDetectorNet, load_tiny_face_detector,  # noqa: E402
                                               tfjs_to_state_dict)

REFERENCE = helpers.reference()
# observed: 4e-5 px and 3e-7 (float32 rounding of two convolution orders); a photo decoded to
# other pixels than the reference's (another JPEG decoder) gets the looser issue tolerance
BOX_TOL, SCORE_TOL = 0.01, 1e-5
LOOSE_BOX_TOL, LOOSE_SCORE_TOL = 0.5, 1e-3

# face-api's tiny_face_detector_model manifest: names and shapes, in file order
SHAPES = {"conv0/filters": (3, 3, 3, 16), "conv0/bias": (16,)}
for _i, (_cin, _cout) in enumerate([(16, 32), (32, 64), (64, 128), (128, 256), (256, 512)], start=1):
    SHAPES.update({f"conv{_i}/depthwise_filter": (3, 3, _cin, 1), f"conv{_i}/pointwise_filter": (1, 1, _cin, _cout),
                   f"conv{_i}/bias": (_cout,)})
SHAPES.update({"conv8/filters": (1, 1, 512, 25), "conv8/bias": (25,)})


def random_weights(seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in SHAPES.items():
        fan_in = int(np.prod(shape[:-1])) if name.endswith("filters") or name.endswith("filter") else 1
        if name.endswith("depthwise_filter"):
            fan_in = 9
        scale = 0.1 if name.endswith("bias") else 1.2 / np.sqrt(fan_in)
        out[name] = (rng.normal(size=shape) * scale).astype(np.float32)
    return out


def write_manifest(folder, weights):
    """``tiny_face_detector_model-weights_manifest.json`` + ``.bin`` (float32) as face-api ships them."""
    return helpers.write_manifest(folder, "tiny_face_detector_model", weights)


@pytest.fixture(scope="module")
def random_manifest(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("tfd"), random_weights())


@pytest.fixture(scope="module")
def detector(model_dir):
    return TinyFaceDetector(model_dir)


# ------------------------------------------------------------------------------------------ PyTorch twin
def compare_with_twin(weights, x):
    net = TinyFaceDetectorNet()
    net.load_state_dict(tfjs_to_state_dict(weights))
    with sd.no_grad():
        ours = net(sd.tensor(x)).data
    pytest.importorskip("torch")
    theirs = helpers.torch_tiny_face_twin(weights)(x)
    assert ours.shape == theirs.shape == (x.shape[0], x.shape[1] // 32, x.shape[2] // 32, 25)
    err = np.abs(ours - theirs).max() / np.abs(theirs).max()
    assert err <= 1e-4, err
    return ours


@pytest.mark.parametrize("size", [224, 160])   # grids 7 and 5: odd sizes pad the pools
def test_network_matches_torch_twin_random_weights(size):
    x = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype(np.float32)
    out = compare_with_twin(random_weights(), x)
    assert np.abs(out).max() > 0.1           # the random net is not degenerate


@pytest.mark.parametrize("size", [96, 160])
def test_pooling_before_the_activation_is_the_reference_order_bit_for_bit(size):
    net = TinyFaceDetectorNet()
    net.load_state_dict(tfjs_to_state_dict(random_weights()))
    x = np.random.default_rng(2).normal(size=(2, size, size, 3)).astype(np.float32)
    with sd.no_grad():
        fast, plain = net(sd.tensor(x)).data, net.forward_reference(sd.tensor(x)).data
    np.testing.assert_array_equal(fast, plain)
    # gradients too (max pooling picks the same element, leaky's slope there is the same)
    xs = [sd.tensor(x[:1, :64, :64].copy(), requires_grad=True) for _ in range(2)]
    for t, run in zip(xs, (net.forward, net.forward_reference)):
        run(t).sum().backward()
    assert np.abs(xs[0].grad).max() > 0
    np.testing.assert_array_equal(xs[0].grad, xs[1].grad)


def test_network_matches_torch_twin_real_weights_on_a_photo(model_dir):
    from strided.io.tfjs import read_tfjs
    from skimage import data as skdata
    weights = read_tfjs(model_dir / "tiny_face_detector_model-weights_manifest.json")
    compare_with_twin(weights, preprocess(skdata.astronaut()))


def test_loader_reads_a_tfjs_manifest(random_manifest):
    net = load_tiny_face_detector(random_manifest)
    assert not net.training and net.num_parameters() == 193_321   # = bytes of face-api's uint8 .bin
    np.testing.assert_array_equal(net.conv3.depthwise.weight.data[:, :, 0, :],
                                  random_weights()["conv3/depthwise_filter"][:, :, :, 0])
    np.testing.assert_array_equal(load_tiny_face_detector(random_manifest.parent).conv8.bias.data,
                                  random_weights()["conv8/bias"])


def test_loader_rejects_other_weights(tmp_path):
    weights = random_weights()
    del weights["conv8/bias"]
    with pytest.raises(ModelFileError, match="missing \\['conv8/bias'\\]"):
        load_tiny_face_detector(write_manifest(tmp_path / "a", weights))
    weights = random_weights()
    weights["conv1/bias"] = np.zeros(31, np.float32)
    with pytest.raises(ModelFileError, match="conv1.pointwise.bias"):
        load_tiny_face_detector(write_manifest(tmp_path / "b", weights))


# ------------------------------------------------------------------------------------------ against face-api
def load_photo(name, model_dir):
    image = helpers.photo(name, model_dir)
    if image is None:
        source = REFERENCE["photos"][name]["source"]
        pytest.skip(f"{source} is not at {model_dir.parent / 'demo' / f'{name}.jpg'}")
    return image


@pytest.mark.parametrize("name", sorted(REFERENCE["photos"]))
def test_same_faces_as_face_api(name, detector, model_dir):
    ref = REFERENCE["photos"][name]
    image = load_photo(name, model_dir)
    same_pixels = hashlib.sha256(image.tobytes()).hexdigest() == ref["sha256"]
    box_tol, score_tol = (BOX_TOL, SCORE_TOL) if same_pixels else (LOOSE_BOX_TOL, LOOSE_SCORE_TOL)
    faces = detector.detect(image)
    assert len(faces) == len(ref["faces"]) > 0
    for ours, theirs in zip(faces, ref["faces"]):            # both highest score first
        x, y, w, h = theirs["box"]
        np.testing.assert_allclose(ours["box"], [x, y, x + w, y + h], rtol=0, atol=box_tol)
        assert abs(ours["score"] - theirs["score"]) <= score_tol
        assert ours["class"] == 0 and ours["name"] == "face"


OTHER = [(o["input_size"], o["score_threshold"], name) for o in REFERENCE["other_settings"] for name in o["faces"]]


@pytest.mark.parametrize("size, threshold, name", OTHER)
def test_same_faces_as_face_api_other_sizes_and_thresholds(size, threshold, name, detector, model_dir):
    setting = next(o for o in REFERENCE["other_settings"]
                   if (o["input_size"], o["score_threshold"]) == (size, threshold))
    image = load_photo(name, model_dir)
    same_pixels = hashlib.sha256(image.tobytes()).hexdigest() == REFERENCE["photos"][name]["sha256"]
    box_tol, score_tol = (BOX_TOL, SCORE_TOL) if same_pixels else (LOOSE_BOX_TOL, LOOSE_SCORE_TOL)
    faces = detector.detect(image, input_size=size, score_threshold=threshold)
    assert len(faces) == len(setting["faces"][name])
    for ours, theirs in zip(faces, setting["faces"][name]):
        x, y, w, h = theirs["box"]
        np.testing.assert_allclose(ours["box"], [x, y, x + w, y + h], rtol=0, atol=box_tol)
        assert abs(ours["score"] - theirs["score"]) <= score_tol


def test_lower_threshold_finds_more_and_keeps_the_reference_faces(detector, model_dir):
    image = load_photo("sample6", model_dir)
    strict = detector.detect(image)
    loose = detector.detect(image, score_threshold=0.3)
    assert len(loose) >= len(strict)
    kept = np.array([f["box"] for f in loose])
    for face in strict:
        assert np.abs(kept - face["box"]).max(axis=1).min() < 1e-9


# ------------------------------------------------------------------------------------------ hand-made heads
SIG = lambda v: 1 / (1 + np.exp(-v))   # noqa: E731
ANCHORS = [(1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061), (4.266906, 5.178857),
           (9.041765, 10.66308)]        # face-api's src/tinyFaceDetector/const.ts


def head(entries, cells=13):
    """Raw head with every score logit at -10, and ``{(row, col, anchor): (tx, ty, tw, th, to)}``."""
    raw = np.zeros((1, cells, cells, 5, 5), np.float32)
    raw[..., 4] = -10
    for (r, c, a), values in entries.items():
        raw[0, r, c, a] = values
    return raw.reshape(1, cells, cells, 25)


def test_decode_hand_computed_square_image():
    raw = head({(6, 6, 1): (0.0, 0.0, 0.0, 0.0, 3.0), (2, 9, 4): (1.0, -1.0, 0.5, -0.5, 2.0),
                (0, 0, 0): (0.0, 0.0, 0.0, 0.0, 0.0)})     # score 0.5 exactly: not > 0.5, dropped
    boxes, scores = decode(raw, (832, 832, 3), 416, 0.5)
    # cell (6, 6), anchor 1: centre (6.5 / 13) * 832 = 416, size anchor / 13 * 832 = anchor * 64
    w, h = ANCHORS[1][0] * 64, ANCHORS[1][1] * 64
    expected0 = [416 - w / 2, 416 - h / 2, 416 + w / 2, 416 + h / 2]
    cx, cy = (9 + SIG(1.0)) * 64, (2 + SIG(-1.0)) * 64
    w, h = ANCHORS[4][0] * np.exp(0.5) * 64, ANCHORS[4][1] * np.exp(-0.5) * 64
    expected1 = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    # grid order: row 2 comes before row 6
    np.testing.assert_allclose(boxes, [expected1, expected0], rtol=1e-12)
    np.testing.assert_allclose(scores, [SIG(2.0), SIG(3.0)], rtol=1e-6)


def test_decode_non_square_image_maps_the_padded_square_back():
    # 208 x 416 photo: padded at the bottom to 416 x 416, input 416 -> 1 input pixel = 1 photo pixel
    raw = head({(3, 5, 2): (0.25, -0.25, 0.125, 0.375, 4.0)})     # exact in float32
    boxes, _ = decode(raw, (208, 416, 3), 416, 0.5)
    cx, cy = (5 + SIG(0.25)) * 32, (3 + SIG(-0.25)) * 32
    w, h = ANCHORS[2][0] * np.exp(0.125) * 32, ANCHORS[2][1] * np.exp(0.375) * 32
    np.testing.assert_allclose(boxes, [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]], rtol=1e-12)


@pytest.fixture
def stub_detector(random_manifest):
    """A detector whose network is replaced by a given raw head."""
    det = TinyFaceDetector(random_manifest)

    def use(raw):
        det.forward = lambda image, input_size=None: raw
        return det
    return use


def test_detect_nms_is_iou_above_0_4_and_sorted_by_score(stub_detector):
    # boxes of one cell share their centre, so their IoU is the ratio of the anchor areas:
    # anchors 3 and 1: 0.52 (> 0.4: the weaker goes); anchors 0 and 2: 0.33 (<= 0.4: both stay)
    iou13 = (ANCHORS[3][0] * ANCHORS[3][1]) / (ANCHORS[1][0] * ANCHORS[1][1])
    iou02 = (ANCHORS[0][0] * ANCHORS[0][1]) / (ANCHORS[2][0] * ANCHORS[2][1])
    assert iou13 > 0.4 > iou02 > 0.3
    raw = head({(6, 6, 1): (0, 0, 0, 0, 1.0), (6, 6, 3): (0, 0, 0, 0, 2.0),
                (10, 3, 2): (0, 0, 0, 0, 2.5), (10, 3, 0): (0, 0, 0, 0, 0.5), (0, 0, 4): (0, 0, 0, 0, 3.0)})
    image = np.zeros((416, 416, 3), np.uint8)
    faces = stub_detector(raw).detect(image)
    expected = [(0, 0, 4), (10, 3, 2), (6, 6, 3), (10, 3, 0)]   # (6, 6, 1) suppressed by (6, 6, 3)
    assert [f["score"] for f in faces] == pytest.approx([SIG(3.0), SIG(2.5), SIG(2.0), SIG(0.5)])
    for face, (r, c, a) in zip(faces, expected):
        w, h = ANCHORS[a][0] * 32, ANCHORS[a][1] * 32
        cx, cy = (c + 0.5) * 32, (r + 0.5) * 32
        assert face["box"] == pytest.approx([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        assert face["class"] == 0 and face["name"] == "face" and isinstance(face["box"][0], float)
    # the box at the corner is not clipped to the image (face-api does not clip)
    assert faces[0]["box"][0] < 0
    # a stricter NMS (IoU > 0.3) also drops (10, 3, 0)
    assert len(stub_detector(raw).detect(image, iou_threshold=0.3)) == 3


# ------------------------------------------------------------------------------------------ errors
def test_option_and_input_errors(random_manifest):
    with pytest.raises(TinyFaceError, match="multiple of 32.*input_size=100") as info:
        check_options(100, 0.5)
    assert isinstance(info.value, StridedError) and isinstance(info.value, ValueError)
    with pytest.raises(StridedError, match="score_threshold=1.0"):
        check_options(416, 1.0)
    with pytest.raises(StridedError, match="iou_threshold=1.5"):
        check_options(416, 0.5, 1.5)
    det = TinyFaceDetector(random_manifest)
    with pytest.raises(ImageError, match="uint8.*float32"):
        det.detect(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ImageError, match=r"\(32, 32\)"):
        det.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(StridedError, match="input_size=33"):
        det.detect(np.zeros((32, 32, 3), np.uint8), input_size=33)
    assert repr(det) == "TinyFaceDetector(input_size=416, score_threshold=0.5, iou_threshold=0.4)"
    with pytest.raises(TinyFaceError, match=r"\(S, S, 25\).*\(13, 13, 24\)"):
        decode(np.zeros((13, 13, 24)), (416, 416, 3))


def test_preprocess_is_pad_resize_mean_scale():
    img = np.random.default_rng(3).integers(0, 256, size=(32, 64, 3), dtype=np.uint8)
    x = preprocess(img, 32)
    padded = np.zeros((64, 64, 3), np.float32)
    padded[:32] = img
    expected = (padded[::2, ::2] - np.array([117.001, 114.697, 97.404], np.float32)) / np.float32(255)
    np.testing.assert_array_equal(x[0], expected)
    assert x.dtype == np.float32 and x.shape == (1, 32, 32, 3)
