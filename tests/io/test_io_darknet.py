"""read_darknet / write_darknet_weights against OpenCV's darknet importer (an independent
implementation), on the cfgs Debian's darknet package ships and on small cfgs written here
that use every layer type; plus the weights format and the errors.

Tolerances: outputs are compared as max|ours - OpenCV| / max(1, max|OpenCV|).  The tiny
nets and the small cfgs agree to 1e-4.  For the deep yolov2 / yolov3 OpenCV's own float32
result is ~1.3e-4 away from a float64 run of the same network (ours: ~2e-5, checked here
too), so those are held to 2.5e-4 against OpenCV and 5e-5 against float64.
"""
import os
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from darknet_helpers import (opencv_forward, opencv_net, random_weights_file, rel_err,  # noqa: E402
                             shared_files, shipped_cfg)

import strided as sd  # noqa: E402
from strided.errors import ModelFileError  # noqa: E402
from strided.io.darknet import (DarknetNet, build_darknet, read_darknet, read_darknet_cfg,  # noqa: E402
                                write_darknet_weights)  # noqa: E402

cv2 = pytest.importorskip("cv2")


def head_inputs_vs_opencv(cfg, weights, x):
    net = read_darknet(cfg, weights)
    ours = net.predict(x)
    names = [f"conv_{h.layer - 1}" for h in net.heads]  # OpenCV's name of the linear conv feeding each head
    theirs = [o.transpose(0, 2, 3, 1) for o in opencv_forward(opencv_net(cfg, weights), x, names)]
    return net, ours, theirs


# --------------------------------------------------------------------------- shipped cfgs
@pytest.mark.parametrize("name,size,tol", [("yolov2-tiny-voc", 320, 1e-4), ("yolov3-tiny", 320, 1e-4),
                                           ("yolov2", 160, 2.5e-4), ("yolov3", 160, 2.5e-4)])
def test_shipped_cfg_matches_opencv(name, size, tol):
    start = time.perf_counter()
    cfg, weights = shared_files(name, size)
    batch = 2 if tol == 1e-4 else 1  # (the deep nets: one image keeps the test short)
    x = np.random.default_rng(4).uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
    net, ours, theirs = head_inputs_vs_opencv(cfg, weights, x)
    heads = {"yolov2-tiny-voc": [(10, 125)], "yolov3-tiny": [(10, 255), (20, 255)],
             "yolov2": [(5, 425)], "yolov3": [(5, 255), (10, 255), (20, 255)]}[name]
    assert [(o.shape[1], o.shape[3]) for o in ours] == heads
    for o, t in zip(ours, theirs):
        assert np.abs(t).max() > 1, "activations vanished: the comparison would be weak"
        assert rel_err(o, t) < tol
    if tol > 1e-4:  # the deep nets: our float32 stays within 5e-5 of float64
        with sd.no_grad():
            exact = [h.data for h in net(sd.tensor(x.astype(np.float64)))]
        for o, e in zip(ours, exact):
            assert rel_err(o, e) < 5e-5
    assert time.perf_counter() - start < 30


def test_shipped_cfg_metadata():
    v2 = build_darknet(read_darknet_cfg(shipped_cfg("yolov2")), init=False)
    assert v2.input_size == (608, 608) and v2.channels == 3
    (head,) = v2.heads
    assert head.type == "region" and head.classes == 80 and head.num == 5 and head.softmax
    np.testing.assert_allclose(head.anchors[0], [0.57273, 0.677385])
    np.testing.assert_allclose(head.anchors[4], [9.77052, 9.16828])
    assert v2.kinds[25:29] == ["route", "convolutional", "reorg", "route"]
    assert [v2.shapes[i] for i in (16, 25, 26, 27, 28)] == [(38, 38, 512), (38, 38, 512), (38, 38, 64), (19, 19, 256),
                                                         (19, 19, 1280)]
    v3 = read_darknet(shipped_cfg("yolov3-tiny"))
    assert [h.mask for h in v3.heads] == [(3, 4, 5), (0, 1, 2)]
    np.testing.assert_array_equal(v3.heads[0].head_anchors, [[81, 82], [135, 169], [344, 319]])
    assert v3.heads[1].layer == 23 and v3.kinds[23] == "yolo"
    # real weight-file sizes of these networks (pjreddie's published files): header + floats
    sizes = {"yolov3": 62001757, "yolov3-tiny": 8858734, "yolov2-tiny-voc": 15867885, "yolov2": 50983561}
    for name, floats in sizes.items():
        net = build_darknet(read_darknet_cfg(shipped_cfg(name)), init=False)
        assert sum(c.weight_count() for c in net.conv_layers()) == floats


# --------------------------------------------------------------------------- small cfgs, every layer type
V2_LIKE = """[net]
width=24
height=24
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

# darknet's stride-1 maxpools: size 2 looks right/down, size 3 both ways
[maxpool]
size=2
stride=1

[maxpool]
size=3
stride=1

[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=12
size=1
stride=1
pad=1
activation=logistic

[route]
layers=-3

[reorg]
stride=2

[route]
layers=-1,-3

[convolutional]
size=1
stride=1
pad=1
filters=14
activation=linear

[region]
anchors = 1.0,1.5,  2.5, 2.0
classes=2
coords=4
num=2
softmax=1
"""

V3_LIKE = """[net]
width=28
height=28
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[shortcut]
from=-3
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
groups=2
pad=1
activation=relu

[convolutional]
size=1
stride=1
pad=1
filters=7
activation=linear

[yolo]
mask = 1
anchors = 4,5, 10,12
classes=2
num=2

[route]
layers = -3

[upsample]
stride=2

[route]
layers = -1, 3

[convolutional]
size=1
stride=1
pad=1
filters=14
activation=linear

[yolo]
mask = 0,1
anchors = 4,5, 10,12
classes=2
num=2
"""


@pytest.mark.parametrize("text,expected", [(V2_LIKE, [(6, 6, 14)]), (V3_LIKE, [(7, 7, 7), (14, 14, 14)])],
                         ids=["v2-like", "v3-like"])
def test_small_cfgs_match_opencv(tmp_path, text, expected):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(text)
    weights = random_weights_file(cfg, tmp_path / "small.weights", seed=5)
    net = read_darknet(cfg, weights)
    size = net.input_size[1]
    x = np.random.default_rng(6).uniform(0, 1, (3, size, size, 3)).astype(np.float32)
    _, ours, theirs = head_inputs_vs_opencv(cfg, weights, x)
    assert [o.shape[1:] for o in ours] == expected
    for o, t in zip(ours, theirs):
        assert np.abs(t).max() > 0.5
        assert rel_err(o, t) < 1e-4


def test_maxpool_shapes_follow_darknet(tmp_path):
    cfg = tmp_path / "pools.cfg"
    cfg.write_text("[net]\nwidth=13\nheight=13\nchannels=1\n"
                   "[maxpool]\nsize=2\nstride=1\n[maxpool]\nsize=2\nstride=2\n[maxpool]\nsize=3\nstride=2\n"
                   "[maxpool]\nsize=3\nstride=1\npadding=4\n")
    net = read_darknet(cfg)
    # (13+1-2)/1+1, (13+1-2)/2+1, (7+2-3)/2+1, (4+4-3)/1+1
    assert net.shapes == [(13, 13, 1), (7, 7, 1), (4, 4, 1), (6, 6, 1)]
    x = np.random.default_rng(0).permutation(169).reshape(1, 13, 13, 1).astype(np.float32)
    outs = net.forward_all(x)
    # loop port of darknet's forward_maxpool_layer (window starts padding // 2 before the image)
    cases = ((outs[0], 2, 1, 1, x), (outs[1], 2, 2, 1, outs[0].data), (outs[2], 3, 2, 2, outs[1].data),
             (outs[3], 3, 1, 4, outs[2].data))
    for out, size, stride, padding, source in cases:
        src = source[0, :, :, 0]
        n = src.shape[0]
        o = (n + padding - size) // stride + 1
        ref = np.full((o, o), -np.inf)
        off = -(padding // 2)
        for i in range(o):
            for j in range(o):
                for a in range(size):
                    for b in range(size):
                        r, c = off + i * stride + a, off + j * stride + b
                        if 0 <= r < n and 0 <= c < n:
                            ref[i, j] = max(ref[i, j], src[r, c])
        np.testing.assert_array_equal(out.data[0, :, :, 0], ref)


def test_gradients_flow_to_every_weight(tmp_path):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(V3_LIKE)
    net = read_darknet(cfg)
    x = np.random.default_rng(0).uniform(0, 1, (1, 28, 28, 3)).astype(np.float32)
    loss = sum((h * h).sum() for h in net(x))
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and np.abs(p.grad).max() > 0, name
    # float64 in, float64 out
    assert all(h.dtype == np.float64 for h in net.predict(x.astype(np.float64)))


# --------------------------------------------------------------------------- weights format
@pytest.mark.parametrize("version", [(0, 1, 0), (0, 2, 0), (1, 0, 0)])
def test_header_versions(tmp_path, version):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(V2_LIKE)
    path = random_weights_file(cfg, tmp_path / "w.weights", seed=1, version=version)
    seen_bytes = 8 if version[0] * 10 + version[1] >= 2 else 4
    floats = sum(c.weight_count() for c in read_darknet(cfg).conv_layers())
    assert path.stat().st_size == 12 + seen_bytes + 4 * floats
    net = read_darknet(cfg, path)
    assert net.weights_version == version
    x = np.random.default_rng(2).uniform(0, 1, (1, 24, 24, 3)).astype(np.float32)
    theirs = opencv_forward(opencv_net(cfg, path), x, ["conv_9"])[0].transpose(0, 2, 3, 1)
    assert rel_err(net.predict(x)[0], theirs) < 1e-4


def test_file_layout_by_hand(tmp_path):
    """One conv with BN: header, then biases, scales, means, variances, OIHW kernel."""
    cfg = tmp_path / "one.cfg"
    cfg.write_text("[net]\nwidth=4\nheight=4\nchannels=2\n[convolutional]\nbatch_normalize=1\nfilters=3\n"
                   "size=1\nstride=1\npad=0\nactivation=linear\n")
    numbers = np.arange(3 * 4 + 3 * 2, dtype=np.float32) + 1
    path = tmp_path / "one.weights"
    path.write_bytes(np.array([0, 2, 5], "<i4").tobytes() + np.array([123], "<i8").tobytes() + numbers.tobytes())
    conv = read_darknet(cfg, path).conv_layers()[0]
    np.testing.assert_array_equal(conv.biases.data, [1, 2, 3])
    np.testing.assert_array_equal(conv.scales.data, [4, 5, 6])
    np.testing.assert_array_equal(conv.rolling_mean, [7, 8, 9])
    np.testing.assert_array_equal(conv.rolling_variance, [10, 11, 12])
    oihw = numbers[12:].reshape(3, 2, 1, 1)
    np.testing.assert_array_equal(conv.weight.data[0, 0], oihw[:, :, 0, 0].T)  # (I, O)
    # the writer gives back the same bytes (seen as given)
    write_darknet_weights(read_darknet(cfg, path), tmp_path / "again.weights", version=(0, 2, 5), seen=123)
    assert (tmp_path / "again.weights").read_bytes() == path.read_bytes()
    # and the layer computes scales * (z - mean) / (sqrt(var) + 1e-6) + biases
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2)).astype(np.float32)
    z = x @ oihw[:, :, 0, 0].T
    expected = np.array([4, 5, 6]) * (z - [7, 8, 9]) / (np.sqrt([10, 11, 12]) + 1e-6) + [1, 2, 3]
    np.testing.assert_allclose(read_darknet(cfg, path).forward_all(x)[0].data, expected, rtol=1e-5)


# --------------------------------------------------------------------------- errors
def _small(tmp_path, text=V2_LIKE):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(text)
    return cfg


def test_weights_too_short_names_file_layer_and_counts(tmp_path):
    cfg = _small(tmp_path)
    good = random_weights_file(cfg, tmp_path / "good.weights")
    short = tmp_path / "short.weights"
    short.write_bytes(good.read_bytes()[:-40])
    # the last conv (layer 9): 14 biases + 14 x 44 kernel (44 = reorg's 4 * 8 channels + layer 5's 12)
    with pytest.raises(ModelFileError, match=r"short\.weights: too short .*: convolutional layer 9 needs 630 "
                                             r"floats from offset 976, only 620 left"):
        read_darknet(cfg, short)


def test_weights_too_long_names_counts(tmp_path):
    cfg = _small(tmp_path)
    good = random_weights_file(cfg, tmp_path / "good.weights")
    long = tmp_path / "long.weights"
    long.write_bytes(good.read_bytes() + b"\0" * 12)
    floats = sum(c.weight_count() for c in read_darknet(cfg).conv_layers())
    with pytest.raises(ModelFileError, match=rf"long\.weights: too long .* take {floats} floats, the file "
                                             rf"holds {floats + 3} \(3 extra\)"):
        read_darknet(cfg, long)


def test_weights_of_another_network(tmp_path):
    cfg = _small(tmp_path)
    other = tmp_path / "v3-like.cfg"
    other.write_text(V3_LIKE)
    weights = random_weights_file(other, tmp_path / "v3.weights")
    with pytest.raises(ModelFileError, match="another network"):
        read_darknet(cfg, weights)


def test_unsupported_layer_names_type_and_line(tmp_path):
    cfg = _small(tmp_path, V2_LIKE.replace("[reorg]\nstride=2", "[lstm]\noutput=4"))
    line = V2_LIKE.replace("[reorg]\nstride=2", "[lstm]").splitlines().index("[lstm]") + 1
    with pytest.raises(ModelFileError, match=rf"small\.cfg, line {line} \(\[lstm\]\): layer type \[lstm\] "
                                             rf"\(layer 7\) is not supported"):
        read_darknet(cfg)


def test_missing_files(tmp_path):
    with pytest.raises(ModelFileError, match="nope.cfg: no such darknet cfg file"):
        read_darknet(tmp_path / "nope.cfg")
    with pytest.raises(ModelFileError, match="nope.weights: no such darknet weights file"):
        read_darknet(_small(tmp_path), tmp_path / "nope.weights")
    assert issubclass(ModelFileError, ValueError)


@pytest.mark.parametrize("edit,message", [
    (("layers=-1,-3", "layers=-1,-30"),
     r"line 48 \(\[route\]\): layer reference -30 \(layer -22\) must name an earlier layer \(0..7\)"),
    (("layers=-1,-3", "layers=-1,-6"), r"route joins layers \[7, 2\] of different sizes"),
    (("filters=14", "filters=13"), r"region head with num=2, classes=2 needs 14 input channels, the layer "
                                   r"before gives 13"),
    (("activation=logistic", "activation=mish"), r"activation=mish is not supported"),
    (("width=24", "width=2x4"), r"option width='2x4' is not a valid integer"),
    (("[net]", "[nett]"), r"starts with a \[net\] section, found \[nett\]"),
    (("softmax=1", "softmax=1\nbackground=1"), r"line \d+ \(\[region\]\): region heads with background=1 are not"),
])
def test_bad_cfgs(tmp_path, edit, message):
    cfg = _small(tmp_path, V2_LIKE.replace(*edit))
    with pytest.raises(ModelFileError, match=message):
        read_darknet(cfg)


def test_parser_strips_blanks_and_comments(tmp_path):
    cfg = _small(tmp_path, "# a comment\n[net]\n width = 8 \n;other\nheight=8\n[convolutional]\nfilters = 4\n"
                           "size=3\npad=1\nactivation = leaky\n")
    sections = read_darknet_cfg(cfg)
    assert sections[0].options == {"width": "8", "height": "8"} and sections[1].line == 6
    net = read_darknet(cfg)
    assert isinstance(net, DarknetNet) and net.shapes == [(8, 8, 4)] and net.heads == []
    with pytest.raises(ValueError, match="3 channels, received shape"):
        net(np.zeros((1, 8, 8, 1), np.float32))
