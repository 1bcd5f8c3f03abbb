"""Losses (each returns the batch mean, a scalar tensor).

cross_entropy(logits (N, K), labels (N,) ints):
    L = -mean(log_softmax(logits)[n, labels[n]])
    gx = (softmax(logits) - onehot(labels)) / N
binary_cross_entropy_with_logits(x, t):
    L = mean(max(x, 0) - x*t + log(1 + exp(-|x|)))     (finite for |x| = 1e4)
    gx = (sigmoid(x) - t) / size
mse_loss(y, t):
    L = mean((y - t)^2),  gy = 2 (y - t) / size
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor, as_array, as_tensor
from .activation import stable_sigmoid
from .utils import check_rank, float_tensor

__all__ = ["cross_entropy", "binary_cross_entropy_with_logits", "mse_loss"]


class CrossEntropy(Function):
    def __init__(self, labels):
        self.labels = labels

    def forward(self, logits):
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_p = shifted - log_z
        self.log_p = log_p
        N = logits.shape[0]
        return np.asarray(-log_p[np.arange(N), self.labels].mean(), dtype=logits.dtype)

    def backward(self, gy):
        N = self.log_p.shape[0]
        g = np.exp(self.log_p)
        g[np.arange(N), self.labels] -= 1
        return g * (gy / N)


def cross_entropy(logits, labels) -> Tensor:
    """Mean cross-entropy of ``logits`` ``(N, K)`` against integer ``labels`` ``(N,)`` in ``[0, K)``."""
    logits = float_tensor(logits, "logits")
    labels = np.asarray(as_array(labels))
    check_rank(logits, 2, "(N, classes)", "logits")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, received dtype={labels.dtype}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must have shape ({logits.shape[0]},) to match logits {tuple(logits.shape)}, "
                         f"received shape {labels.shape}")
    K = logits.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= K):
        bad = labels[(labels < 0) | (labels >= K)][0]
        raise ValueError(f"labels must be in [0, {K}) for {K} classes, received label {int(bad)}")
    return CrossEntropy(labels.astype(np.intp))(logits)


class BCEWithLogits(Function):
    def forward(self, x, t):
        self.x, self.t = x, t
        loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        return np.asarray(loss.mean(), dtype=x.dtype)

    def backward(self, gy):
        scale = gy / self.x.size
        gx = (stable_sigmoid(self.x) - self.t) * scale if self.needs_grad[0] else None
        gt = -self.x * scale if self.needs_grad[1] else None
        return gx, gt


def binary_cross_entropy_with_logits(logits, targets) -> Tensor:
    """Mean of ``-t log sigmoid(x) - (1-t) log(1 - sigmoid(x))``, computed stably."""
    logits = float_tensor(logits, "logits")
    targets = as_tensor(targets, logits)
    if targets.shape != logits.shape:
        raise ValueError(f"targets shape {tuple(targets.shape)} must equal logits shape {tuple(logits.shape)}")
    return BCEWithLogits()(logits, targets.astype(logits.dtype) if targets.dtype != logits.dtype else targets)


def mse_loss(prediction, target) -> Tensor:
    """Mean squared error ``mean((prediction - target)^2)``."""
    prediction = float_tensor(prediction, "prediction")
    target = as_tensor(target, prediction)
    if target.shape != prediction.shape:
        raise ValueError(f"target shape {tuple(target.shape)} must equal prediction shape {tuple(prediction.shape)}")
    diff = prediction - target
    return (diff * diff).mean()
