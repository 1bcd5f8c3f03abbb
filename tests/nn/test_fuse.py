"""nn.fuse(model): eval-mode batch norm folded into the convolution before it (and ReLU / ReLU6
into the convolution's pass).  The oracle is the same model unfused, run in eval mode."""
import numpy as np
import pytest

import strided as sd
from strided import models, nn
import strided.functional as F


def randomise_bn(model, seed=0):
    """Non-trivial gamma, beta and running statistics, so the eval-mode affine map matters."""
    rng = np.random.default_rng(seed)
    count = 0
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            C = m.num_features
            m.gamma.data[...] = rng.uniform(0.5, 1.5, C)
            m.beta.data[...] = rng.normal(0.0, 0.2, C)
            m.running_mean[...] = rng.normal(0.0, 0.2, C)
            m.running_var[...] = rng.uniform(0.5, 2.0, C)
            count += 1
    return count


def run(model, x):
    with sd.no_grad():
        return model(sd.tensor(x)).data


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "efficientnet_lite0"])
def test_fused_zoo_model_equals_unfused(name):
    model = models.create(name, num_classes=10)
    n_bn = randomise_bn(model)
    model.eval()
    x = np.random.default_rng(1).standard_normal((2, 64, 64, 3)).astype(np.float32)
    expected = run(model, x)
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    fused = nn.fuse(model)
    got = run(fused, x)
    # float32 rounding: relative to the largest logit
    assert np.max(np.abs(got - expected)) <= 2e-5 * np.max(np.abs(expected))
    # every batch norm of these models follows a convolution: all are gone from the copy
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules()) == 0 < n_bn
    # the original is untouched (a copy was fused)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == n_bn
    assert not fused.training


def test_fused_mobilenet_float64_is_exact_to_rounding():
    model = models.create("mobilenet_v2", num_classes=10)
    randomise_bn(model)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean, m.running_var = m.running_mean.astype(np.float64), m.running_var.astype(np.float64)
    model.eval()
    x = np.random.default_rng(2).standard_normal((1, 48, 48, 3))
    expected = run(model, x)
    got = run(nn.fuse(model, input_shape=(1, 48, 48, 3)), x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12 * np.max(np.abs(expected)))
    # ReLU6 went into the convolutions: expansion and depthwise of every block, stem and head
    fused = nn.fuse(model, input_shape=(1, 48, 48, 3))
    acts = [m.activation for m in fused.modules() if isinstance(m, nn.ConvNd) and m.activation]
    assert acts and set(acts) == {"relu6"} and len(acts) == 35


def test_fold_batch_norm_formula_against_the_ops():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 6, 4))
    w, b = rng.standard_normal((3, 3, 4, 5)), rng.standard_normal(5)
    bn = nn.BatchNorm2d(5, eps=1e-3)
    randomise_bn(bn)
    bn.gamma.data = bn.gamma.data.astype(np.float64)
    bn.beta.data = bn.beta.data.astype(np.float64)
    bn.running_mean, bn.running_var = bn.running_mean.astype(np.float64), bn.running_var.astype(np.float64)
    expected = F.batch_norm(F.conv2d(x, w, b, padding=1), bn.running_mean, bn.running_var, bn.gamma, bn.beta,
                            training=False, eps=1e-3).data
    w2, b2 = nn.fold_batch_norm(w, b, bn)
    np.testing.assert_allclose(F.conv2d(x, w2, b2, padding=1).data, expected, rtol=1e-12, atol=1e-12)
    w3, b3 = nn.fold_batch_norm(w, None, bn)   # no bias: as if it were zero
    expected0 = F.batch_norm(F.conv2d(x, w, None, padding=1), bn.running_mean, bn.running_var, bn.gamma, bn.beta,
                             training=False, eps=1e-3).data
    np.testing.assert_allclose(F.conv2d(x, w3, b3, padding=1).data, expected0, rtol=1e-12, atol=1e-12)


def test_fold_affine_formula_against_the_ops():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 3))
    w, b = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
    scale, shift = rng.uniform(-2, 2, 4), rng.standard_normal(4)
    w2, b2 = nn.fold_affine(w, b, scale, shift)
    expected = F.conv2d(x, w, b, padding=1).data * scale + shift
    np.testing.assert_allclose(F.conv2d(x, w2, b2, padding=1).data, expected, rtol=1e-12, atol=1e-12)
    w3, b3 = nn.fold_affine(w.astype(np.float32), None, scale, shift)       # dtype kept, no bias = zero
    assert w3.dtype == b3.dtype == np.float32
    expected = F.conv2d(x, w, None, padding=1).data * scale + shift
    np.testing.assert_allclose(F.conv2d(x.astype(np.float32), w3, b3, padding=1).data, expected, rtol=1e-5, atol=1e-5)


class Tapped(nn.Module):
    """conv1 -> bn1 -> relu, but conv1's output is also added back: bn1 must not be folded."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.act = nn.ReLU()

    def forward(self, x):
        z = self.conv1(x)
        y = self.bn1(z) + z
        return self.act(self.bn2(self.conv2(y)))


def test_only_exclusive_pairs_are_folded():
    model = Tapped()
    randomise_bn(model)
    model.eval()
    x = np.random.default_rng(4).standard_normal((2, 8, 8, 3)).astype(np.float32)
    fused = nn.fuse(model, input_shape=(1, 8, 8, 3))
    assert isinstance(fused.bn1, nn.BatchNorm2d)                    # conv1's output has two readers
    assert isinstance(fused.bn2, nn.Identity) and isinstance(fused.act, nn.Identity)
    assert fused.conv2.activation == "relu" and fused.conv1.activation is None
    np.testing.assert_allclose(run(fused, x), run(model, x), rtol=1e-5, atol=1e-5)


def test_hooked_and_shared_modules_are_left_alone():
    model = Tapped()
    randomise_bn(model)
    seen = []
    model.bn2.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    fused = nn.fuse(model, input_shape=(1, 8, 8, 3))
    assert isinstance(fused.bn2, nn.BatchNorm2d)          # a hook observes it: keep it
    shared = nn.ReLU()
    seq = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), shared, nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), shared)
    randomise_bn(seq)
    seq.eval()
    x = np.random.default_rng(5).standard_normal((1, 5, 5, 3)).astype(np.float32)
    f = nn.fuse(seq, input_shape=(1, 5, 5, 3))
    assert [type(m).__name__ for m in f] == ["Conv2d", "Identity", "ReLU", "Conv2d", "Identity", "ReLU"]
    assert f[0].activation is None                        # the ReLU is called twice: not folded
    np.testing.assert_allclose(run(f, x), run(seq, x), rtol=1e-5, atol=1e-6)


def test_inplace_and_errors():
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU6())
    randomise_bn(seq)
    out = nn.fuse(seq, input_shape=(1, 6, 6, 3), inplace=True)
    assert out is seq and isinstance(seq[1], nn.Identity) and seq[0].activation == "relu6"
    assert "activation='relu6'" in repr(seq)
    with pytest.raises(ValueError, match="input_shape"):
        nn.fuse(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
