"""conv2d / conv3d: finite differences, PyTorch parity over random configurations,
the loop-based course reference, and the output-shape formula.

PyTorch is always given explicitly padded input (padding=0) with the padding computed
here, independently of strided (TensorFlow's 'same' rule included), so strided's
padding resolution is checked too."""
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
import strided.functional as F  # noqa: E402

torch = pytest.importorskip("torch")
TF = torch.nn.functional


# --------------------------------------------------------------------------- independent references
def tf_same(n, k, s, d=1):
    """TensorFlow 'same': output ceil(n / s); total padding split, extra pixel after."""
    total = max((math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def as_tuple(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def expected_pads(padding, spatial, kernel, stride, dilation):
    """((before, after), ...) per spatial axis, written out from the documented rules."""
    n = len(spatial)
    stride, dilation = as_tuple(stride, n), as_tuple(dilation, n)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        return tuple(tf_same(s, k, st, d) for s, k, st, d in zip(spatial, kernel, stride, dilation))
    if isinstance(padding, int):
        return ((padding, padding),) * n
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def out_len(n, k, s, pb, pa, d):
    return (n + pb + pa - d * (k - 1) - 1) // s + 1


def torch_conv(pads, stride, dilation, groups, nd=2):
    """PyTorch convolution on an explicitly zero-padded input."""
    conv = TF.conv2d if nd == 2 else TF.conv3d

    def fn(x, w, b=None):
        flat = []
        for before, after in reversed(pads):  # F.pad wants the last axis first
            flat += [before, after]
        return conv(TF.pad(x, flat), w, b, stride=stride, padding=0, dilation=dilation, groups=groups)

    return fn


def conv_arrays(N, S, C, K, O, groups, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N,) + tuple(S) + (C,))
    w = rng.standard_normal(tuple(K) + (C // groups, O)) * 0.5
    b = rng.standard_normal(O) if bias else None
    return x, w, b


# --------------------------------------------------------------------------- gradcheck
GRADCHECK_CASES = {
    # id: (N, (H, W), C, (KH, KW), O, dict(stride, padding, dilation, groups))
    "stride1": (2, (5, 5), 3, (3, 3), 2, dict(stride=1)),
    "stride2": (2, (6, 7), 2, (3, 3), 3, dict(stride=2)),
    "stride3": (2, (7, 7), 2, (2, 2), 2, dict(stride=3)),
    "stride-2x1": (1, (6, 5), 2, (3, 2), 2, dict(stride=(2, 1))),
    "pad1": (2, (4, 5), 2, (3, 3), 2, dict(padding=1)),
    "pad(1,2)": (2, (4, 4), 2, (3, 3), 2, dict(padding=(1, 2))),
    "pad((0,1),(2,0))": (2, (4, 5), 2, (3, 2), 3, dict(padding=((0, 1), (2, 0)))),
    "pad1-stride2": (2, (6, 5), 2, (3, 3), 2, dict(stride=2, padding=1)),
    "same-s1-k3": (2, (5, 4), 2, (3, 3), 2, dict(padding="same")),
    "same-s1-k2": (2, (5, 4), 2, (2, 2), 2, dict(padding="same")),
    "same-s2-k3": (2, (6, 5), 2, (3, 3), 2, dict(stride=2, padding="same")),
    "same-s2-k2": (2, (5, 6), 2, (2, 2), 2, dict(stride=2, padding="same")),
    "same-s2-k4x3": (1, (7, 6), 2, (4, 3), 2, dict(stride=2, padding="same")),
    "valid": (2, (5, 6), 2, (3, 2), 2, dict(padding="valid")),
    "dilation2": (2, (6, 6), 2, (3, 3), 2, dict(dilation=2)),
    "dilation2-pad2": (1, (5, 5), 2, (3, 3), 2, dict(dilation=2, padding=2)),
    "dilation2-stride2": (1, (7, 7), 2, (2, 3), 2, dict(dilation=2, stride=2)),
    "dilation2-same-s2": (1, (7, 6), 2, (3, 2), 2, dict(dilation=2, stride=2, padding="same")),
    "dilation(1,2)": (1, (5, 7), 2, (2, 3), 2, dict(dilation=(1, 2), padding=1)),
    "groups2": (2, (5, 5), 4, (3, 3), 4, dict(groups=2)),
    "groups2-stride2-pad1": (2, (5, 5), 4, (3, 3), 2, dict(groups=2, stride=2, padding=1)),
    "groups2-O6": (1, (5, 4), 4, (2, 2), 6, dict(groups=2, padding="same")),
    "depthwise": (2, (5, 5), 3, (3, 3), 3, dict(groups=3)),
    "depthwise-stride2-pad1": (2, (6, 5), 3, (3, 3), 3, dict(groups=3, stride=2, padding=1)),
    "depthwise-same-dil2": (1, (5, 5), 2, (3, 3), 2, dict(groups=2, padding="same", dilation=2)),
    "depthwise-mult2": (2, (5, 5), 2, (3, 3), 4, dict(groups=2)),
    "depthwise-mult2-stride2": (2, (6, 5), 3, (2, 3), 6, dict(groups=3, stride=2, padding=1)),
    "1x1": (2, (4, 4), 3, (1, 1), 4, dict()),
    "1x1-stride2": (2, (5, 5), 3, (1, 1), 2, dict(stride=2)),
    "2x3": (2, (5, 6), 2, (2, 3), 3, dict()),
    "2x3-stride(1,2)-pad(1,0)": (2, (5, 6), 2, (2, 3), 2, dict(stride=(1, 2), padding=(1, 0))),
    "single-channel": (2, (5, 5), 1, (3, 3), 1, dict(padding=1)),
}


def _check_conv2d_gradients(case, bias):
    N, S, C, K, O, kw = GRADCHECK_CASES[case]
    x, w, b = conv_arrays(N, S, C, K, O, kw.get("groups", 1), bias=bias, seed=len(case))
    if bias:
        y = gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), x, w, b)
    else:
        y = gradcheck(lambda x, w: F.conv2d(x, w, **kw), x, w)
    pads = expected_pads(kw.get("padding", 0), S, K, kw.get("stride", 1), kw.get("dilation", 1))
    st, dl = as_tuple(kw.get("stride", 1), 2), as_tuple(kw.get("dilation", 1), 2)
    assert y.shape == (N,) + tuple(out_len(s, k, a, pb, pa, d)
                                   for s, k, a, (pb, pa), d in zip(S, K, st, pads, dl)) + (O,)


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_conv2d_gradcheck(case):
    _check_conv2d_gradients(case, bias=True)


@pytest.mark.parametrize("case", ["stride2", "pad((0,1),(2,0))", "groups2", "depthwise", "depthwise-mult2", "1x1"])
def test_conv2d_gradcheck_no_bias(case):
    _check_conv2d_gradients(case, bias=False)


# --------------------------------------------------------------------------- torch parity (random configs)
def random_conv_configs(n=40, seed=2024):
    rng = np.random.default_rng(seed)
    modes = ["int", "pair", "pairs", "same", "valid"]
    configs = []
    while len(configs) < n:
        kind = ["dense", "grouped", "depthwise"][len(configs) % 3]
        if kind == "dense":
            G, C, O = 1, int(rng.integers(1, 7)), int(rng.integers(1, 7))
        elif kind == "grouped":
            G = int(rng.choice([2, 3]))
            C, O = G * int(rng.integers(1, 6 // G + 1)), G * int(rng.integers(1, 6 // G + 1))
        else:
            C = int(rng.integers(2, 6))
            G, O = C, C * int(rng.choice([1, 2]))
        N = int(rng.integers(1, 4))
        S = (int(rng.integers(5, 13)), int(rng.integers(5, 13)))
        K = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        if rng.random() < 0.5:  # sometimes a plain int
            stride, dilation = stride[0], dilation[0]
        mode = modes[len(configs) % len(modes)]
        padding = {
            "int": int(rng.integers(0, 3)),
            "pair": (int(rng.integers(0, 3)), int(rng.integers(0, 3))),
            "pairs": tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(2)),
            "same": "same",
            "valid": "valid",
        }[mode]
        pads = expected_pads(padding, S, K, stride, dilation)
        dl = as_tuple(dilation, 2)
        if any(s + pb + pa < d * (k - 1) + 1 for s, (pb, pa), k, d in zip(S, pads, K, dl)):
            continue
        cid = (f"{len(configs):02d}-N{N}-{S[0]}x{S[1]}-C{C}-O{O}-k{K[0]}x{K[1]}-s{stride}-d{dilation}"
               f"-g{G}-{mode}").replace(" ", "").replace(",", ".")
        configs.append(pytest.param(dict(N=N, S=S, C=C, O=O, K=K, stride=stride, dilation=dilation,
                                         padding=padding, groups=G, seed=len(configs)), id=cid))
    return configs


CONFIGS = random_conv_configs()


def _parity(cfg, dtype, bias=True):
    x, w, b = conv_arrays(cfg["N"], cfg["S"], cfg["C"], cfg["K"], cfg["O"], cfg["groups"], bias, cfg["seed"])
    pads = expected_pads(cfg["padding"], cfg["S"], cfg["K"], cfg["stride"], cfg["dilation"])
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])
    tfn = torch_conv(pads, cfg["stride"], cfg["dilation"], cfg["groups"])
    if bias:
        return torch_parity(lambda x, w, b: F.conv2d(x, w, b, **kw), tfn, [x, w, b], ["nhwc", "hwio", None],
                            dtype=dtype, seed=cfg["seed"])
    return torch_parity(lambda x, w: F.conv2d(x, w, **kw), tfn, [x, w], ["nhwc", "hwio"], dtype=dtype,
                        seed=cfg["seed"])


@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv2d_torch_parity_float64(cfg):
    _parity(cfg, np.float64)


@pytest.mark.parametrize("cfg", CONFIGS[::5])
def test_conv2d_torch_parity_float32(cfg):
    _parity(cfg, np.float32)


@pytest.mark.parametrize("cfg", CONFIGS[1::7])
def test_conv2d_torch_parity_no_bias(cfg):
    _parity(cfg, np.float64, bias=False)


def test_random_configs_cover_every_mode():
    ids = [c.id for c in CONFIGS]
    for tag in ("-int", "-pair", "-pairs", "-same", "-valid", "-g1-", "-g2-", "-g3-", "s3", "d2"):
        assert any(tag in i for i in ids), tag
    assert any(c.values[0]["groups"] == c.values[0]["C"] and c.values[0]["O"] == 2 * c.values[0]["C"]
               for c in CONFIGS), "no depthwise config with a channel multiplier"


def test_conv2d_larger_layer_float32():
    """A larger float32 layer (3x3, 16->32 channels) still matches PyTorch at 1e-4."""
    cfg = dict(N=2, S=(16, 16), C=16, O=32, K=(3, 3), stride=1, dilation=1, padding="same", groups=1, seed=5)
    _parity(cfg, np.float32)


# --------------------------------------------------------------------------- conv3d
CONV3D_CASES = {
    # id: (N, (D, H, W), C, (KD, KH, KW), O, kwargs)
    "plain": (1, (4, 4, 4), 2, (2, 2, 2), 3, dict()),
    "stride2-pad1": (2, (4, 5, 4), 2, (3, 3, 2), 2, dict(stride=2, padding=1)),
    "same-s2": (1, (5, 4, 4), 2, (3, 2, 3), 2, dict(stride=2, padding="same")),
    "dilation2-groups2": (1, (5, 5, 4), 2, (2, 2, 2), 2, dict(dilation=2, groups=2)),
    "pairs-stride(1,2,1)": (1, (3, 4, 5), 3, (2, 3, 2), 2,
                            dict(stride=(1, 2, 1), padding=((1, 0), (0, 1), (1, 1)))),
}


@pytest.mark.parametrize("case", list(CONV3D_CASES))
def test_conv3d_gradcheck(case):
    N, S, C, K, O, kw = CONV3D_CASES[case]
    x, w, b = conv_arrays(N, S, C, K, O, kw.get("groups", 1), seed=3)
    gradcheck(lambda x, w, b: F.conv3d(x, w, b, **kw), x, w, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(CONV3D_CASES))
def test_conv3d_torch_parity(case, dtype):
    N, S, C, K, O, kw = CONV3D_CASES[case]
    x, w, b = conv_arrays(N, S, C, K, O, kw.get("groups", 1), seed=4)
    pads = expected_pads(kw.get("padding", 0), S, K, kw.get("stride", 1), kw.get("dilation", 1))
    tfn = torch_conv(pads, kw.get("stride", 1), kw.get("dilation", 1), kw.get("groups", 1), nd=3)
    torch_parity(lambda x, w, b: F.conv3d(x, w, b, **kw), tfn, [x, w, b], ["ndhwc", "dhwio", None], dtype=dtype)


def test_conv3d_larger_torch_parity():
    x, w, b = conv_arrays(2, (6, 7, 8), 3, (3, 3, 3), 4, 1, seed=9)
    pads = expected_pads(1, (6, 7, 8), (3, 3, 3), 2, 1)
    torch_parity(lambda x, w, b: F.conv3d(x, w, b, stride=2, padding=1), torch_conv(pads, 2, 1, 1, nd=3),
                 [x, w, b], ["ndhwc", "dhwio", None])


# --------------------------------------------------------------------------- course reference
@pytest.mark.parametrize("pad", [0, 1, 2], ids=lambda p: f"pad{p}")
@pytest.mark.parametrize("stride", [1, 2], ids=lambda s: f"stride{s}")
def test_conv2d_matches_course(stride, pad):
    course = pytest.importorskip("strided.course")
    rng = np.random.default_rng(stride * 10 + pad)
    A = rng.standard_normal((2, 5, 7, 3))
    W = rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal((1, 1, 1, 4))
    Z, cache = course.conv_forward(A, W, b, {"stride": stride, "pad": pad})
    x, w, bt = (sd.tensor(a.copy(), requires_grad=True) for a in (A, W, b.reshape(4)))
    y = F.conv2d(x, w, bt, stride=stride, padding=pad)
    assert_close(y.data, Z, 1e-12, 1e-12, "forward vs course.conv_forward")
    dZ = rng.standard_normal(Z.shape)
    dA, dW, db = course.conv_backward(dZ, cache)
    y.backward(dZ)
    assert db.shape == (1, 1, 1, 4)
    assert_close(x.grad, dA, 1e-12, 1e-12, "dA_prev")
    assert_close(w.grad, dW, 1e-12, 1e-12, "dW")
    assert_close(bt.grad, db.reshape(4), 1e-12, 1e-12, "db")


def test_course_conv_example_shape():
    """The course's worked example: A (10, 5, 7, 4), W (3, 3, 4, 8), stride 2, pad 1 -> (10, 3, 4, 8)."""
    rng = np.random.default_rng(1)
    A, W, b = rng.standard_normal((10, 5, 7, 4)), rng.standard_normal((3, 3, 4, 8)), rng.standard_normal(8)
    y = F.conv2d(A, W, b, stride=2, padding=1)
    assert y.shape == (10, 3, 4, 8)
    # spot-check one output by hand: Z[0, 1, 2, 5] = sum(A_pad[0, 2:5, 4:7, :] * W[..., 5]) + b[5]
    A_pad = np.pad(A, ((0, 0), (1, 1), (1, 1), (0, 0)))
    assert_close(y.data[0, 1, 2, 5], np.sum(A_pad[0, 2:5, 4:7, :] * W[..., 5]) + b[5], 1e-12, 1e-12, "Z")


# --------------------------------------------------------------------------- output shapes
SHAPE_TABLE = [
    # x_shape, w_shape, stride, padding, dilation, expected (worked out by hand)
    ((1, 6, 6, 3), (3, 3, 3, 10), 1, 0, 1, (1, 4, 4, 10)),
    ((10, 5, 7, 4), (3, 3, 4, 8), 2, 1, 1, (10, 3, 4, 8)),
    ((2, 7, 7, 1), (3, 3, 1, 2), 2, 0, 1, (2, 3, 3, 2)),
    ((2, 7, 7, 1), (3, 3, 1, 2), 2, 1, 1, (2, 4, 4, 2)),
    ((1, 5, 8, 2), (2, 3, 2, 4), (1, 2), ((0, 1), (2, 0)), 1, (1, 5, 4, 4)),
    ((1, 7, 7, 2), (3, 3, 2, 5), 2, "same", 1, (1, 4, 4, 5)),
    ((1, 10, 9, 2), (4, 4, 2, 1), 3, "same", 1, (1, 4, 3, 1)),
    ((1, 10, 9, 2), (4, 4, 2, 1), 3, "valid", 1, (1, 3, 2, 1)),
    ((1, 8, 8, 1), (2, 2, 1, 1), 1, "same", 1, (1, 8, 8, 1)),
    ((1, 9, 9, 1), (3, 3, 1, 1), 1, 0, 2, (1, 5, 5, 1)),
    ((1, 9, 9, 1), (3, 3, 1, 1), 1, "same", 2, (1, 9, 9, 1)),
    ((1, 9, 9, 1), (3, 3, 1, 1), 2, "same", 2, (1, 5, 5, 1)),
    ((3, 32, 32, 3), (5, 5, 3, 6), 1, 0, 1, (3, 28, 28, 6)),  # LeNet-5 C1
    ((1, 224, 224, 3), (7, 7, 3, 64), 2, 3, 1, (1, 112, 112, 64)),  # ResNet stem
    ((1, 4, 5, 6, 2), (2, 3, 2, 2, 3), (1, 2, 1), 1, 1, (1, 5, 3, 7, 3)),  # conv3d
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, expected", SHAPE_TABLE,
                         ids=[f"{i:02d}-{row[0]}-{row[3]}".replace(" ", "") for i, row in enumerate(SHAPE_TABLE)])
def test_output_shape_formula(x_shape, w_shape, stride, padding, dilation, expected):
    assert F.conv_output_shape(x_shape, w_shape, stride, padding, dilation) == expected
    # the documented formula with the independently resolved padding agrees
    nsp = len(x_shape) - 2
    pads = expected_pads(padding, x_shape[1:-1], w_shape[:nsp], stride, dilation)
    st, dl = as_tuple(stride, nsp), as_tuple(dilation, nsp)
    formula = (x_shape[0],) + tuple(out_len(s, k, a, pb, pa, d) for s, k, a, (pb, pa), d
                                    in zip(x_shape[1:-1], w_shape[:nsp], st, pads, dl)) + (w_shape[-1],)
    assert formula == expected
    if int(np.prod(x_shape)) * int(np.prod(w_shape)) < 5e7:  # skip running the ResNet stem
        fn = F.conv2d if nsp == 2 else F.conv3d
        y = fn(np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32), stride=stride,
               padding=padding, dilation=dilation)
        assert y.shape == expected


def test_280_parameter_layer():
    rng = np.random.default_rng(0)
    w = sd.tensor(rng.standard_normal((3, 3, 3, 10)).astype(np.float32), requires_grad=True)
    b = sd.tensor(np.zeros(10, np.float32), requires_grad=True)
    y = F.conv2d(rng.standard_normal((1, 6, 6, 3)).astype(np.float32), w, b)
    assert y.shape == (1, 4, 4, 10)
    assert y.dtype == np.float32
    assert w.size + b.size == 280


def test_only_weight_and_bias_get_grads_when_input_is_constant():
    x, w, b = conv_arrays(2, (5, 5), 3, (3, 3), 4, 1, seed=1)
    xt = sd.tensor(x)
    wt, bt = sd.tensor(w, requires_grad=True), sd.tensor(b, requires_grad=True)
    y = F.conv2d(xt, wt, bt, stride=2, padding=1)
    gy = np.random.default_rng(2).standard_normal(y.shape)
    y.backward(gy)
    assert xt.grad is None
    # same gradients as when x also requires grad
    x2, w2, b2 = (sd.tensor(a.copy(), requires_grad=True) for a in (x, w, b))
    F.conv2d(x2, w2, b2, stride=2, padding=1).backward(gy)
    assert_close(wt.grad, w2.grad, 1e-14, 1e-14, "w grad")
    assert_close(bt.grad, b2.grad, 1e-14, 1e-14, "b grad")


@pytest.mark.parametrize("groups", [1, 3], ids=["dense", "depthwise"])
def test_only_input_gets_grad_when_weights_are_constant(groups):
    x, w, b = conv_arrays(2, (5, 5), 3, (3, 3), 3, groups, seed=1)
    xt = sd.tensor(x, requires_grad=True)
    wt, bt = sd.tensor(w), sd.tensor(b)
    y = F.conv2d(xt, wt, bt, padding=1, groups=groups)
    gy = np.random.default_rng(2).standard_normal(y.shape)
    y.backward(gy)
    assert wt.grad is None and bt.grad is None
    x2 = sd.tensor(x.copy(), requires_grad=True)
    F.conv2d(x2, sd.tensor(w.copy(), requires_grad=True), b, padding=1, groups=groups).backward(gy)
    assert_close(xt.grad, x2.grad, 1e-14, 1e-14, "x grad")


def test_conv2d_no_grad_records_nothing():
    x, w, b = conv_arrays(1, (5, 5), 2, (3, 3), 2, 1)
    xt = sd.tensor(x, requires_grad=True)
    with sd.no_grad():
        y = F.conv2d(xt, w, b)
    assert not y.requires_grad and y._ctx is None


def test_conv2d_accepts_ndarrays():
    x, w, b = conv_arrays(1, (5, 5), 2, (3, 3), 2, 1)
    y = F.conv2d(x, w, b, padding="same")
    ref = torch_conv(expected_pads("same", (5, 5), (3, 3), 1, 1), 1, 1, 1)(
        torch.tensor(x.transpose(0, 3, 1, 2)), torch.tensor(w.transpose(3, 2, 0, 1)), torch.tensor(b))
    assert isinstance(y, sd.Tensor)
    assert_close(y.data, ref.numpy().transpose(0, 2, 3, 1), 1e-12, 1e-12, "forward")


# --------------------------------------------------------------------------- memory layouts
@pytest.mark.parametrize("groups, O", [(1, 4), (2, 4), (4, 4), (4, 8)], ids=["dense", "grouped", "depthwise", "mult2"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_non_contiguous_inputs(groups, O, stride):
    """A transposed NCHW array, a flipped view and a transposed weight give the same
    result and gradients as their contiguous copies."""
    rng = np.random.default_rng(groups * 10 + stride)
    x_nchw = rng.standard_normal((2, 4, 7, 6))
    x_view = x_nchw.transpose(0, 2, 3, 1)[:, ::-1]  # NHWC view, negative H stride
    w_oihw = rng.standard_normal((O, 4 // groups, 3, 3))
    w_view = w_oihw.transpose(2, 3, 1, 0)  # HWIO view
    assert not x_view.flags.c_contiguous and not w_view.flags.c_contiguous
    gy = None
    grads = []
    for x, w in ((x_view, w_view), (np.ascontiguousarray(x_view), np.ascontiguousarray(w_view))):
        xt, wt = sd.tensor(x, requires_grad=True), sd.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=stride, padding=1, groups=groups)
        gy = rng.standard_normal(y.shape) if gy is None else gy
        y.backward(gy)
        grads.append((y.data, xt.grad, wt.grad))
    for a, b, what in zip(grads[0], grads[1], ("forward", "x grad", "w grad")):
        assert_close(a, b, 1e-13, 1e-13, what)


@pytest.mark.parametrize("case", ["stride1", "stride2", "1x1", "groups2", "depthwise", "depthwise-mult2",
                                  "same-s2-k2", "dilation2"])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_conv2d_backward_from_reduction(case, reduce):
    """Upstream gradients from .sum()/.mean() are read-only broadcast views."""
    N, S, C, K, O, kw = GRADCHECK_CASES[case]
    x, w, b = conv_arrays(N, S, C, K, O, kw.get("groups", 1), seed=11)
    ts = [sd.tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
    getattr(F.conv2d(*ts, **kw), reduce)().backward()
    ref = [sd.tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ref, **kw)
    y.backward(np.full(y.shape, 1.0 if reduce == "sum" else 1.0 / y.data.size))
    for t, r, what in zip(ts, ref, "xwb"):
        assert_close(t.grad, r.grad, 1e-14, 1e-13, what)


# --------------------------------------------------------------------------- activation in the conv's pass
ACT_CASES = [  # (x shape, w shape, stride, padding, groups)
    ((2, 7, 6, 3), (3, 3, 3, 4), 1, 1, 1),
    ((2, 7, 6, 4), (3, 3, 1, 4), 2, 1, 4),       # depthwise
    ((2, 5, 5, 4), (1, 1, 2, 6), 1, 0, 2),       # grouped
]


@pytest.mark.parametrize("act", ["relu", "relu6"])
@pytest.mark.parametrize("case", ACT_CASES)
def test_conv_activation_equals_conv_then_activation(case, act):
    """The plain path (conv, then F.relu / F.relu6) is the oracle: forward and every gradient."""
    xs, ws, stride, padding, groups = case
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(xs) * 3, rng.standard_normal(ws), rng.standard_normal(ws[-1]) * 3
    plain = {"relu": F.relu, "relu6": F.relu6}[act]
    kw = dict(stride=stride, padding=padding, groups=groups)
    ta = [sd.tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
    tb = [sd.tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
    ya = F.conv2d(*ta, **kw, activation=act)
    yb = plain(F.conv2d(*tb, **kw))
    assert (ya.data > 0).any() and (ya.data == 0).any() and (act == "relu" or (ya.data == 6).any())
    np.testing.assert_array_equal(ya.data, yb.data)
    gy = rng.standard_normal(ya.shape)
    ya.backward(gy)
    yb.backward(gy)
    for a, b_ in zip(ta, tb):
        np.testing.assert_allclose(a.grad, b_.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_conv_activation_gradcheck_and_torch(act):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((1, 5, 5, 2)), rng.standard_normal((3, 3, 2, 3)), rng.standard_normal(3)
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1, activation=act), x, w, b)
    tact = {"relu": TF.relu, "relu6": TF.relu6}[act]
    torch_parity(lambda x, w, b: F.conv2d(x, w, b, padding=1, activation=act),
                 lambda x, w, b: tact(TF.conv2d(x, w, b, padding=1)), [x * 4, w, b], ["nhwc", "hwio", None])


def test_conv_activation_rejects_unknown():
    with pytest.raises(ValueError, match="received activation='gelu'"):
        F.conv2d(np.zeros((1, 3, 3, 1), np.float32), np.zeros((1, 1, 1, 1), np.float32), activation="gelu")


@pytest.mark.parametrize("stride, mult", [(1, 1), (2, 1), (1, 2)], ids=["s1", "s2", "mult2"])
def test_depthwise_row_blocks_match_torch(monkeypatch, stride, mult):
    """Tiny blocks force several row blocks per image (and a ragged last one) in forward,
    weight gradient and input gradient; the result must not depend on the blocking."""
    import importlib
    conv_module = importlib.import_module("strided.functional.conv")
    monkeypatch.setattr(conv_module, "DEPTHWISE_BLOCK_BYTES", 2 * 9 * 4 * 8)
    assert conv_module.depthwise_blocks(2, (9, 9), 4 * 8)[:5] == [(0, 1, 0, 2), (0, 1, 2, 4), (0, 1, 4, 6), (0, 1, 6, 8), (0, 1, 8, 9)]
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 9, 9, 4)), rng.standard_normal((3, 3, 1, 4 * mult))
    torch_parity(lambda x, w: F.conv2d(x, w, stride=stride, padding=1, groups=4),
                 lambda x, w: TF.conv2d(x, w, stride=stride, padding=1, groups=4), [x, w], ["nhwc", "hwio"])


@pytest.mark.parametrize("M, C", [(50176, 6), (12800, 16), (1000, 3), (999, 6), (64, 512), (7, 1)])
def test_sum_channels_equals_a_float64_column_sum(M, C):
    """The bias gradient's column sum (rows of r*C numbers when there are few channels)."""
    from strided.functional.conv import sum_channels
    g = np.random.default_rng(M + C).standard_normal((M, C)).astype(np.float32)
    expected = g.astype(np.float64).sum(axis=0)
    got = sum_channels(g)
    assert got.shape == (C,) and got.dtype == np.float32
    assert_close(got, expected, 1e-6 * np.sqrt(M) * 10, 1e-5, "column sums")
    assert_close(sum_channels(g[:, ::-1]), expected[::-1], 1e-6 * np.sqrt(M) * 10, 1e-5, "non-contiguous input")
