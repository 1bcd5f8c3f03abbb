"""gram_matrix and total_variation: float64 finite differences, PyTorch parity, plain-NumPy loops."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
import strided.functional as F  # noqa: E402

torch = pytest.importorskip("torch")


def torch_gram(x):                     # x NCHW -> (N, C, C)
    N, C = x.shape[:2]
    f = x.reshape(N, C, -1)
    return f @ f.transpose(1, 2)


def torch_tv(x, squared=True):         # x NCHW
    dh = x[:, :, 1:] - x[:, :, :-1]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    return (dh.pow(2).sum() + dw.pow(2).sum()) if squared else (dh.abs().sum() + dw.abs().sum())


@pytest.mark.parametrize("shape", [(1, 3, 4, 2), (2, 2, 3, 5), (1, 1, 1, 3)], ids=str)
def test_gram_gradcheck_and_loop(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    y = gradcheck(F.gram_matrix, x)
    N, H, W, C = shape
    expected = np.zeros((N, C, C))
    for n in range(N):
        for c in range(C):
            for d in range(C):
                expected[n, c, d] = sum(x[n, h, w, c] * x[n, h, w, d] for h in range(H) for w in range(W))
    assert_close(y.data, expected, 1e-13, 1e-12, "gram forward")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_gram_torch_parity(dtype):
    x = np.random.default_rng(1).standard_normal((2, 5, 6, 7))
    torch_parity(F.gram_matrix, torch_gram, [x], layouts=["nhwc"], out_layout=None, dtype=dtype)


@pytest.mark.parametrize("squared", [True, False], ids=["squared", "abs"])
def test_total_variation_gradcheck(squared):
    x = np.random.default_rng(2).standard_normal((2, 4, 5, 3))
    y = gradcheck(lambda t: F.total_variation(t, squared=squared), x)
    loop = 0.0
    for n in range(2):
        for i in range(4):
            for j in range(5):
                for c in range(3):
                    for di, dj in ((1, 0), (0, 1)):
                        if i + di < 4 and j + dj < 5:
                            d = x[n, i + di, j + dj, c] - x[n, i, j, c]
                            loop += d * d if squared else abs(d)
    assert_close(y.data, loop, 1e-13, 1e-12, "tv forward")


@pytest.mark.parametrize("squared", [True, False], ids=["squared", "abs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_total_variation_torch_parity(dtype, squared):
    x = np.random.default_rng(3).standard_normal((1, 6, 7, 3))
    torch_parity(lambda t: F.total_variation(t, squared=squared), lambda t: torch_tv(t, squared),
                 [x], layouts=["nhwc"], out_layout=None, dtype=dtype)


def test_rank_errors():
    with pytest.raises(ValueError, match=r"\(N, H, W, C\).*received shape \(3, 4\)"):
        F.gram_matrix(np.ones((3, 4)))
    with pytest.raises(ValueError, match="received shape"):
        F.total_variation(np.ones((3, 4, 2)))
