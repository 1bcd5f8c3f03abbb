"""End to end: a small conv net overfits a fixed random batch with Adam (seeded)."""
import numpy as np

import strided as sd
import strided.functional as F
from strided import nn, optim


def train(seed=0, steps=30):
    sd.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = sd.tensor(rng.standard_normal((16, 8, 8, 3)).astype(np.float32))
    labels = rng.integers(0, 4, 16)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding="same"), nn.BatchNorm2d(), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(None, 4))
    model.build(x.shape)
    opt = optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


def test_adam_drives_the_loss_down():
    losses, model = train()
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses
    assert model[1].running_mean.any()  # batch norm trained in training mode


def test_training_is_reproducible_with_the_same_seed():
    a, _ = train(seed=3, steps=5)
    b, _ = train(seed=3, steps=5)
    assert a == b
