"""Shared test oracles for the autograd engine.

* :func:`numerical_grad` -- float64 central differences of ``sum(f(*inputs) * gy)``.
* :func:`gradcheck` -- every input's analytic ``.grad`` against :func:`numerical_grad`.
* :func:`torch_parity` -- forward output and every input gradient against PyTorch,
  converting strided's channels-last layouts (NHWC / NDHWC activations, HWIO / DHWIO
  weights, ``(in, out)`` dense weights) to PyTorch's (NCHW / NCDHW, OIHW / OIDHW,
  ``(out, in)``) and the gradients back.

Nothing here uses the engine to compute an expected value: the numerical gradient
only evaluates the forward pass, and PyTorch is an independent implementation.
"""
from __future__ import annotations

import numpy as np

import strided as sd

# permutation taking a strided-layout array to the PyTorch layout
LAYOUTS = {
    "nwc": (0, 2, 1),
    "nhwc": (0, 3, 1, 2),
    "ndhwc": (0, 4, 1, 2, 3),
    "wio": (2, 1, 0),
    "hwio": (3, 2, 0, 1),
    "dhwio": (4, 3, 0, 1, 2),
    "io": (1, 0),  # dense weight (in, out) -> torch (out, in)
}
_ACTIVATION_LAYOUTS = ("nwc", "nhwc", "ndhwc")


def to_torch_layout(a: np.ndarray, layout: str | None) -> np.ndarray:
    if layout is None:
        return np.array(a, copy=True)  # (np.ascontiguousarray would make 0-d arrays 1-d)
    return np.ascontiguousarray(np.transpose(a, LAYOUTS[layout]))


def from_torch_layout(a: np.ndarray, layout: str | None) -> np.ndarray:
    if layout is None:
        return a
    return np.transpose(a, np.argsort(LAYOUTS[layout]))


def _data(y) -> np.ndarray:
    return y.data if isinstance(y, sd.Tensor) else np.asarray(y)


def assert_close(actual, expected, atol: float, rtol: float, what: str = "value") -> None:
    """``|actual - expected| <= atol * max(1, max|expected|) + rtol * |expected|``.

    ``atol`` is scaled by the magnitude of ``expected`` so one tolerance fits
    outputs of any size; shapes must match exactly and nothing may be NaN.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values in {actual}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                               rtol=rtol, atol=atol * scale, err_msg=what)


def numerical_grad(f, inputs, i: int, gy, eps: float = 1e-6) -> np.ndarray:
    """d/d inputs[i] of ``sum(f(*inputs) * gy)`` by float64 central differences.

    ``f`` receives strided tensors (made with ``sd.tensor``, no gradient) built on
    float64 copies of ``inputs`` and returns a tensor (or an array).
    """
    arrays = [np.array(a, dtype=np.float64, copy=True) for a in inputs]
    gy = np.asarray(gy, dtype=np.float64)
    tensors = [sd.tensor(a) for a in arrays]  # share memory with ``arrays``

    def objective() -> float:
        with sd.no_grad():
            out = _data(f(*tensors))
        return float(np.sum(out.astype(np.float64) * gy))

    flat = arrays[i].reshape(-1)  # a view: arrays[i] is a fresh contiguous copy
    grad = np.zeros(flat.size, dtype=np.float64)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        plus = objective()
        flat[k] = old - eps
        minus = objective()
        flat[k] = old
        grad[k] = (plus - minus) / (2 * eps)
    return grad.reshape(arrays[i].shape)


def gradcheck(f, *arrays, atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0, eps: float = 1e-6):
    """Check ``f``'s analytic gradient for EVERY input against central differences.

    Each array becomes ``sd.tensor(a, requires_grad=True)`` (float64); ``f(*tensors)``
    is back-propagated with a random upstream gradient ``gy``; each input's
    ``.grad`` must equal the numerical gradient of ``sum(f * gy)``.
    Returns the forward output.
    """
    rng = np.random.default_rng(seed)
    arrays = [np.array(a, dtype=np.float64, copy=True) for a in arrays]
    tensors = [sd.tensor(a.copy(), requires_grad=True) for a in arrays]
    y = f(*tensors)
    assert isinstance(y, sd.Tensor), f"f returned {type(y).__name__}, expected a Tensor"
    assert y.requires_grad, "output does not require grad although every input does"
    assert y.dtype == np.float64, f"float64 inputs gave a {y.dtype} output"
    gy = np.asarray(rng.standard_normal(y.shape), dtype=np.float64)
    y.backward(gy)
    for i, t in enumerate(tensors):
        assert t.grad is not None, f"input {i} got no gradient"
        num = numerical_grad(f, arrays, i, gy, eps)
        assert_close(t.grad, num, atol, rtol, f"gradient of input {i} (shape {arrays[i].shape})")
    return y


def torch_parity(sd_fn, torch_fn, arrays, layouts=None, atol=None, rtol=None, *, dtype=np.float64,
                 out_layout="auto", requires_grad=None, seed: int = 0):
    """Compare ``sd_fn`` with ``torch_fn``: forward output and every input's gradient.

    ``arrays`` are given in strided's layout; ``layouts[i]`` (a key of ``LAYOUTS`` or
    None) says how to permute array ``i`` for PyTorch.  ``out_layout`` is the output's
    layout ("auto": the first input's layout if it is an activation layout, else None).
    Both run in ``dtype`` (float64: tolerance 1e-10; float32: atol 1e-5, rtol 1e-4 by
    default) and are back-propagated with the same random upstream gradient.
    Returns ``(strided_output, torch_output_in_strided_layout)`` as arrays.
    """
    import torch

    dtype = np.dtype(dtype)
    n = len(arrays)
    layouts = list(layouts) if layouts is not None else [None] * n
    requires_grad = list(requires_grad) if requires_grad is not None else [True] * n
    assert len(layouts) == n and len(requires_grad) == n
    if out_layout == "auto":
        out_layout = layouts[0] if layouts and layouts[0] in _ACTIVATION_LAYOUTS else None
    if atol is None:
        atol = 1e-10 if dtype == np.float64 else 1e-5
    if rtol is None:
        rtol = 1e-10 if dtype == np.float64 else 1e-4

    arrays = [np.asarray(a).astype(dtype) for a in arrays]
    s_in = [sd.tensor(a.copy(), requires_grad=r) for a, r in zip(arrays, requires_grad)]
    t_in = [torch.tensor(to_torch_layout(a, l), requires_grad=r)
            for a, l, r in zip(arrays, layouts, requires_grad)]

    ys = sd_fn(*s_in)
    yt = torch_fn(*t_in)
    yt_np = from_torch_layout(yt.detach().numpy(), out_layout)
    assert ys.dtype == dtype, f"strided output dtype {ys.dtype}, expected {dtype}"
    assert_close(ys.data, yt_np, atol, rtol, "forward output")

    if not any(requires_grad):
        return ys.data, yt_np
    rng = np.random.default_rng(seed)
    gy = np.asarray(rng.standard_normal(ys.shape)).astype(dtype)
    ys.backward(gy)
    yt.backward(torch.tensor(to_torch_layout(gy, out_layout)))
    for i, (s, t, l, r) in enumerate(zip(s_in, t_in, layouts, requires_grad)):
        if not r:
            assert s.grad is None
            continue
        assert s.grad is not None, f"input {i} got no gradient"
        assert s.grad.dtype == dtype, f"gradient of input {i} has dtype {s.grad.dtype}"
        assert_close(s.grad, from_torch_layout(t.grad.numpy(), l), atol, rtol, f"gradient of input {i}")
    return ys.data, yt_np


def distinct(shape, seed: int = 0, spacing: float = 0.1) -> np.ndarray:
    """Tie-free float64 values: a random permutation of ``spacing * (0, 1, 2, ...)``, centred."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * spacing).reshape(shape).astype(np.float64)


def away_from(values: np.ndarray, points=(0.0,), margin: float = 0.05) -> np.ndarray:
    """Push entries closer than ``margin`` to any of ``points`` away from them (kinks)."""
    values = np.array(values, dtype=np.float64, copy=True)
    for p in points:
        near = np.abs(values - p) < margin
        values[near] = p + np.where(values[near] >= p, margin, -margin) * 2
    return values
