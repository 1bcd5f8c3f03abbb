"""The costs of neural style transfer, exactly as the course defines them.

Activations are NHWC, ``(1, n_H, n_W, n_C)`` as in the course (a batch of ``m`` images works:
the sums run over it).  ``a_C`` / ``a_S`` are the content / style image's activations
(constants: ndarrays or tensors), ``a_G`` the generated image's (a tensor with a graph).

content_cost(a_C, a_G)      J_content = 1 / (4 n_H n_W n_C) * sum (a_C - a_G)^2
gram_matrix(A)              G = F^T F, F = A as (n_H n_W, n_C)   (the course: A A^T with A (n_C, n_H n_W))
layer_style_cost(a_S, a_G)  J_layer = 1 / (4 n_C^2 (n_H n_W)^2) * sum (G_S - G_G)^2
style_cost(a_S, a_G, layers) J_style = sum_l lambda_l J_layer(l)   (the course's STYLE_LAYERS: 0.2 each)
total_cost(Jc, Js, alpha=10, beta=40)  J = alpha J_content + beta J_style
total_variation(x)          sum of squared differences of neighbouring pixels

How the weights carry over to other programs (per layer with ``n_C`` channels, ``n_H n_W`` positions):

* **neural-style** (jcjohnson, Lua) and **neural-style-pt**: content loss = ``content_weight *
  mean((a_C - a_G)^2)`` (MSE over C H W), Gram divided by ``C H W``, style loss = ``style_weight *
  mean((G_S - G_G)^2)`` (MSE over C^2).  So ``J_content`` here = MSE / 4 (a course ``alpha`` is a
  neural-style ``content_weight`` of ``alpha / 4``), and ``J_layer`` here = neural-style's style MSE *
  ``n_C^2 / 4``: a neural-style ``style_weight`` ``w`` on a layer is ``beta * lambda_l = 4 w / n_C^2``
  here (layer dependent: 64 channels give 1/1024, 512 give 1/65536).  neural-style's TV term is
  ``tv_weight / 2 * total_variation`` on 0..255 pixels (ours: 0..1, so multiply by ``255^2``).
* **PyTorch's tutorial** ("Neural Transfer Using PyTorch"): the same normalisations as neural-style
  (``gram / (a b c d)``, ``F.mse_loss``), with ``content_weight=1, style_weight=1e6``.

The :mod:`strided.course` functions compute the same numbers with loops (they are tested together).
A style image may be of another size than the generated image (``style_scale``):
``layer_style_cost`` compares Grams normalised by their own ``n_H n_W``, which is the course's
formula exactly when the sizes agree.
"""
from __future__ import annotations

import numpy as np

from ..functional import gram_matrix, total_variation
from ..functional.utils import check_rank
from ..tensor import Tensor, as_array, as_tensor

__all__ = ["content_cost", "gram_matrix", "normalized_gram", "layer_style_cost", "gram_style_cost",
           "style_cost", "total_cost", "total_variation", "STYLE_LAYERS"]

# the course's STYLE_LAYERS (conv1_1 ... conv5_1, 0.2 each): the course's "conv" layers include the ReLU,
# so here they are the ReLU taps (see strided.style.features)
STYLE_LAYERS = [("relu1_1", 0.2), ("relu2_1", 0.2), ("relu3_1", 0.2), ("relu4_1", 0.2), ("relu5_1", 0.2)]


def _activation(a, name) -> Tensor:
    a = as_tensor(a)
    check_rank(a, 4, "(m, n_H, n_W, n_C)", name)
    return a


def content_cost(a_C, a_G) -> Tensor:
    """``1 / (4 n_H n_W n_C) * sum (a_C - a_G)^2`` (a scalar tensor); ``a_C``, ``a_G`` ``(m, n_H, n_W, n_C)``."""
    a_G = _activation(a_G, "a_G")
    a_C = as_array(a_C)
    if a_C.shape != a_G.shape:
        raise ValueError(f"a_C and a_G must have the same shape, received a_C {a_C.shape} and a_G {a_G.shape}")
    _, n_H, n_W, n_C = a_G.shape
    diff = a_G - as_tensor(a_C.astype(a_G.dtype, copy=False))
    return (diff * diff).sum() * (1.0 / (4 * n_H * n_W * n_C))


def normalized_gram(a) -> np.ndarray | Tensor:
    """``gram_matrix(a) / (n_H n_W)``, ``(m, n_C, n_C)``: the style target a style image gives (the same
    for any image size, so style images of another size can be compared)."""
    a = _activation(a, "a")
    _, n_H, n_W, _ = a.shape
    return gram_matrix(a) * (1.0 / (n_H * n_W))


def gram_style_cost(target_gram, a_G) -> Tensor:
    """``1 / (4 n_C^2) * sum (target - G_G / (n_H n_W))^2``, ``target_gram`` ``(m or 1, n_C, n_C)`` a
    normalised Gram (:func:`normalized_gram`, or a blend of several).  Equal to
    :func:`layer_style_cost` when ``target_gram = normalized_gram(a_S)``."""
    a_G = _activation(a_G, "a_G")
    n_C = a_G.shape[3]
    target = as_array(target_gram)
    if target.shape[-2:] != (n_C, n_C):
        raise ValueError(f"target_gram must be (..., {n_C}, {n_C}) for a_G with {n_C} channels, "
                         f"received shape {target.shape}")
    diff = normalized_gram(a_G) - as_tensor(target.astype(a_G.dtype, copy=False))
    return (diff * diff).sum() * (1.0 / (4 * n_C * n_C))


def layer_style_cost(a_S, a_G) -> Tensor:
    """``1 / (4 n_C^2 (n_H n_W)^2) * sum (G_S - G_G)^2`` for one layer, ``a_S``, ``a_G`` ``(m, n_H, n_W, n_C)``.

    When ``a_S`` has another ``n_H n_W`` than ``a_G`` (a style image of another size), each Gram is
    divided by its own ``n_H n_W`` (the same formula when they agree)."""
    a_S = _activation(a_S, "a_S")
    a_G = _activation(a_G, "a_G")
    if a_S.shape[3] != a_G.shape[3]:
        raise ValueError(f"a_S and a_G must have the same number of channels, received a_S {a_S.shape} "
                         f"and a_G {a_G.shape}")
    return gram_style_cost(as_array(normalized_gram(a_S)), a_G)


def style_cost(a_S: dict, a_G: dict, layers=STYLE_LAYERS) -> Tensor:
    """``sum_l lambda_l * layer_style_cost(a_S[l], a_G[l])`` over ``layers`` = ``[(name, lambda), ...]``;
    ``a_S`` and ``a_G`` map layer names to activations."""
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one (layer, weight) pair, received []")
    total = None
    for name, weight in layers:
        for what, d in (("a_S", a_S), ("a_G", a_G)):
            if name not in d:
                raise KeyError(f"{what} has no activation for layer {name!r}; it has {sorted(d)}")
        term = layer_style_cost(a_S[name], a_G[name]) * float(weight)
        total = term if total is None else total + term
    return total


def total_cost(J_content, J_style, alpha: float = 10, beta: float = 40):
    """``alpha * J_content + beta * J_style`` (the course's defaults, alpha=10, beta=40)."""
    return J_content * alpha + J_style * beta
