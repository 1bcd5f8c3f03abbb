"""strided.train.Ensemble: averaged probabilities, normalised weights, mismatched members refused."""
import numpy as np
import pytest

import strided as sd
from strided import nn
from strided.errors import StridedError
from strided.train import Ensemble, evaluate, predict


def linear_model(seed=0, H=6, W=6, C=1, K=4):
    sd.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(H * W * C, K))


def images(n=5, seed=0, shape=(6, 6, 1)):
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def test_ensemble_of_identical_members_equals_one_member():
    model = linear_model(1)
    x = images()
    np.testing.assert_allclose(predict(Ensemble([model, model, model]), x), predict(model, x), rtol=1e-5,
                               atol=1e-7)


def test_ensemble_is_the_weighted_mean_of_member_probabilities():
    a, b = linear_model(1), linear_model(2)
    x = images(seed=1)
    pa, pb = predict(a, x), predict(b, x)
    np.testing.assert_allclose(predict(Ensemble([a, b]), x), (pa + pb) / 2, rtol=1e-5, atol=1e-7)
    ensemble = Ensemble([a, b], weights=[1, 3])
    np.testing.assert_allclose(ensemble.weights, [0.25, 0.75])
    np.testing.assert_allclose(predict(ensemble, x), 0.25 * pa + 0.75 * pb, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(predict(Ensemble([a, b], weights=[2, 6]), x), predict(ensemble, x), rtol=1e-6)


def test_ensemble_works_with_evaluate_and_restores_modes():
    a, b = linear_model(1), linear_model(2)
    x, y = images(8, seed=2), np.array([0, 1, 2, 3, 0, 1, 2, 3])
    probs = (predict(a, x) + predict(b, x)) / 2
    ensemble = Ensemble([a, b])
    result = evaluate(ensemble, [(x[:5], y[:5]), (x[5:], y[5:])])
    assert result["accuracy"] == pytest.approx(float((probs.argmax(1) == y).mean()))
    assert result["loss"] == pytest.approx(float(-np.log(probs[np.arange(8), y]).mean()), rel=1e-5)
    assert a.training and b.training            # evaluating() restored each member's mode


def test_mismatched_members_are_refused():
    with pytest.raises(StridedError, match="member 1 .*has 3, the members before it 4"):
        predict(Ensemble([linear_model(1), linear_model(2, K=3)]), images())
    with pytest.raises(StridedError, match="member 1 .*has 3"):
        Ensemble([linear_model(1), linear_model(2, K=3)], input_shape=(6, 6, 1))
    with pytest.raises(StridedError, match=r"member 1 .*does not take input of shape \(6, 6, 1\)"):
        Ensemble([linear_model(1), linear_model(2, H=5)], input_shape=(6, 6, 1))


def test_bad_weights_are_refused():
    a, b = linear_model(1), linear_model(2)
    with pytest.raises(StridedError, match="one weight per member"):
        Ensemble([a, b], weights=[1, 2, 3])
    with pytest.raises(StridedError, match=r"received \[-1.0, 2.0\]"):
        Ensemble([a, b], weights=[-1, 2])
    with pytest.raises(StridedError, match="at least one model"):
        Ensemble([])
