"""strided.style.costs: the course's formulas on hand-made arrays, the course's loop functions
(strided.course), PyTorch twins (value and gradient to the image)."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from oracle import assert_close, gradcheck, torch_parity  # noqa: E402

import strided as sd  # noqa: E402
from strided import course  # noqa: E402
from strided.style import costs  # noqa: E402

torch = pytest.importorskip("torch")


def test_content_cost_hand_made():
    a_C = np.zeros((1, 2, 2, 3))
    a_G = np.zeros((1, 2, 2, 3))
    a_G[0, 0, 0, 0], a_G[0, 1, 1, 2] = 2.0, -1.0        # sum of squares 5; 4 * 2 * 2 * 3 = 48
    assert costs.content_cost(a_C, sd.tensor(a_G)).item() == pytest.approx(5 / 48, rel=1e-6)
    assert course.compute_content_cost(a_C, a_G) == pytest.approx(5 / 48, rel=1e-12)
    assert course.compute_content_cost([a_C], [a_G]) == pytest.approx(5 / 48, rel=1e-12)  # TF2 lists


def test_gram_hand_made():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])              # course layout (n_C=2, n_H*n_W=2)
    np.testing.assert_array_equal(course.gram_matrix(A), [[5.0, 11.0], [11.0, 25.0]])
    a = A.T.reshape(1, 1, 2, 2)                          # the same activations in NHWC
    np.testing.assert_allclose(costs.gram_matrix(a).data[0], [[5.0, 11.0], [11.0, 25.0]])


def test_layer_style_cost_hand_made():
    a_S = np.ones((1, 1, 2, 1))                          # G_S = 2
    a_G = np.zeros((1, 1, 2, 1))                         # G_G = 0 -> (2)^2 / (4 * 1 * 2^2) = 0.25
    assert costs.layer_style_cost(a_S, sd.tensor(a_G)).item() == pytest.approx(0.25)
    assert course.compute_layer_style_cost(a_S, a_G) == pytest.approx(0.25)


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (1, 6, 5, 8)], ids=str)
def test_costs_equal_course_loops(shape):
    rng = np.random.default_rng(sum(shape))
    a_C, a_G, a_S = (rng.standard_normal(shape) for _ in range(3))
    assert_close(costs.content_cost(a_C, sd.tensor(a_G)).data, course.compute_content_cost(a_C, a_G),
                 1e-12, 1e-12, "content")
    assert_close(costs.layer_style_cost(a_S, sd.tensor(a_G)).data, course.compute_layer_style_cost(a_S, a_G),
                 1e-12, 1e-12, "layer style")
    # style_cost over named layers = the course's compute_style_cost over output lists
    layers = [("a", 0.3), ("b", 0.7)]
    b_S, b_G = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((1, 2, 3, 4))
    ours = costs.style_cost({"a": a_S, "b": b_S}, {"a": sd.tensor(a_G), "b": sd.tensor(b_G)}, layers)
    theirs = course.compute_style_cost([a_S, b_S, None], [a_G, b_G, None], layers)
    assert_close(ours.data, theirs, 1e-12, 1e-12, "style cost")
    assert costs.total_cost(2.0, 3.0) == course.total_cost(2.0, 3.0) == 10 * 2 + 40 * 3


def test_gradients_finite_differences():
    rng = np.random.default_rng(0)
    a_C, a_S = rng.standard_normal((1, 3, 3, 2)), rng.standard_normal((1, 4, 2, 2))
    gradcheck(lambda g: costs.content_cost(a_C, g), rng.standard_normal((1, 3, 3, 2)))
    gradcheck(lambda g: costs.layer_style_cost(a_S, g), rng.standard_normal((1, 3, 3, 2)))   # other size
    gradcheck(lambda g: costs.total_cost(costs.content_cost(a_C, g), costs.layer_style_cost(a_S, g), 3, 5)
              + costs.total_variation(g) * 0.5, rng.standard_normal((1, 3, 3, 2)))


def torch_layer_style(a_S, a_G):              # NCHW twins of the course's formula
    _, C, H, W = a_G.shape
    fs, fg = a_S.reshape(C, -1), a_G.reshape(C, -1)
    return ((fs @ fs.T - fg @ fg.T) ** 2).sum() / (4 * C ** 2 * (H * W) ** 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_torch_parity(dtype):
    rng = np.random.default_rng(1)
    a_C, a_S, a_G = (rng.standard_normal((1, 5, 4, 6)) for _ in range(3))
    tC, tS = (torch.tensor(a.transpose(0, 3, 1, 2).astype(dtype)) for a in (a_C, a_S))
    torch_parity(lambda g: costs.content_cost(a_C.astype(dtype), g),
                 lambda g: ((tC - g) ** 2).sum() / (4 * 5 * 4 * 6), [a_G], layouts=["nhwc"], out_layout=None,
                 dtype=dtype)
    torch_parity(lambda g: costs.layer_style_cost(a_S.astype(dtype), g), lambda g: torch_layer_style(tS, g),
                 [a_G], layouts=["nhwc"], out_layout=None, dtype=dtype)


def test_neural_style_normalisation_as_documented():
    """The docstring's conversion: J_layer = neural-style's style MSE (Gram / CHW, mean over C^2) * C^2 / 4."""
    rng = np.random.default_rng(2)
    a_S, a_G = rng.standard_normal((1, 4, 5, 3)), rng.standard_normal((1, 4, 5, 3))
    tS, tG = (torch.tensor(a.transpose(0, 3, 1, 2)) for a in (a_S, a_G))
    C, H, W = 3, 4, 5
    gram = lambda t: (t.reshape(C, -1) @ t.reshape(C, -1).T) / (C * H * W)   # noqa: E731
    mse = torch.nn.functional.mse_loss(gram(tG), gram(tS)).item()
    assert costs.layer_style_cost(a_S, sd.tensor(a_G)).item() == pytest.approx(mse * C ** 2 / 4, rel=1e-10)
    content_mse = torch.nn.functional.mse_loss(tG, tS).item()
    assert costs.content_cost(a_S, sd.tensor(a_G)).item() == pytest.approx(content_mse / 4, rel=1e-10)


def test_errors_name_the_values():
    with pytest.raises(ValueError, match=r"a_C \(1, 2, 2, 3\) and a_G \(1, 2, 2, 4\)"):
        costs.content_cost(np.zeros((1, 2, 2, 3)), sd.tensor(np.zeros((1, 2, 2, 4))))
    with pytest.raises(ValueError, match="channels"):
        costs.layer_style_cost(np.zeros((1, 2, 2, 3)), sd.tensor(np.zeros((1, 2, 2, 4))))
    with pytest.raises(KeyError, match="relu9_9"):
        costs.style_cost({}, {}, [("relu9_9", 1.0)])
