"""Optimising the pixels: ``stylize(content, styles, ...)`` (Gatys et al. 2015; the course's "Art Generation").

The generated image ``G`` (RGB in [0, 1], float32) starts from the content image (``init="content"``),
the content plus uniform noise in [-0.25, 0.25] clipped to [0, 1] (``"noise"``, the course), or uniform
noise (``"random"``), and is changed to lower

    J(G) = content_weight * sum_l w_l J_content(l) + style_weight * sum_l lambda_l J_style(l)
           + tv_weight * total_variation(G)

(:mod:`strided.style.costs`: the course's normalisations).  The defaults are ``content_weight=10``
(the course's alpha) and ``style_weight=1e4``: the course's beta=40 works with its Adam run stopped
early, but an optimiser run to convergence then returns little more than the content photo (the
README shows both).  The style
targets (normalised Gram matrices, blended over several style images by their weights) and the content
activations are computed once, without a graph; each step builds the graph of one forward pass, takes
the gradient to the image and frees it (memory stays the same from step to step).

Optimisers: ``"adam"`` (the course: Adam, lr 0.01, clip to [0, 1] after each step) and ``"lbfgs"``
(scipy's L-BFGS-B on float64 copies of the pixels with bounds [0, 1]; the network runs in float32).
``steps`` counts Adam steps or L-BFGS iterations (each iteration evaluates the network once or a few
times; ``result.evaluations`` says how many).

``preserve_color=True`` keeps the content's colours: the result's luminance (YIQ's Y) with the content's
chroma (I, Q), as neural-style's ``-original_colors 1``.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..tensor import no_grad, tensor
from ..data.image import to_float, to_uint8
from .costs import content_cost, gram_style_cost, normalized_gram, total_variation

__all__ = ["stylize", "StyleResult", "resize_longest", "rgb_to_yiq", "yiq_to_rgb", "keep_colors", "save_gif",
           "parse_layers"]

INITS = ("content", "noise", "random")
OPTIMIZERS = ("lbfgs", "adam")

_YIQ = np.array([[0.299, 0.587, 0.114],
                 [0.595716, -0.274453, -0.321263],
                 [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    """RGB float ``(..., 3)`` -> YIQ (Y = ITU-R 601 luma)."""
    return rgb @ _YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return yiq @ np.linalg.inv(_YIQ).T


def keep_colors(generated: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The luminance of ``generated`` with the chroma of ``content`` (both RGB float in [0, 1], same shape),
    clipped to [0, 1]."""
    g, c = rgb_to_yiq(np.asarray(generated, np.float64)), rgb_to_yiq(np.asarray(content, np.float64))
    return np.clip(yiq_to_rgb(np.concatenate([g[..., :1], c[..., 1:]], axis=-1)), 0.0, 1.0)


def resize_longest(image: np.ndarray, size: int) -> np.ndarray:
    """``uint8`` ``(H, W, 3)`` resized (Pillow, Lanczos) so that its longer side is ``size`` pixels."""
    from PIL import Image

    H, W = image.shape[:2]
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be >= 1, received size={size}")
    scale = size / max(H, W)
    new = (max(1, round(W * scale)), max(1, round(H * scale)))
    if new == (W, H):
        return image
    return np.asarray(Image.fromarray(image).resize(new, Image.LANCZOS))


def parse_layers(layers, default) -> list:
    """``[(name, weight), ...]`` from None (``default``), names (equal weights summing to 1) or pairs."""
    if layers is None:
        return list(default)
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("the layer list is empty; name at least one layer")
    if all(isinstance(l, str) for l in layers):
        return [(l, 1.0 / len(layers)) for l in layers]
    return [(str(n), float(w)) for n, w in layers]


@dataclasses.dataclass
class StyleResult:
    """What :func:`stylize` returns.  ``image``: ``uint8`` ``(H, W, 3)``; ``frames``: ``uint8`` images every
    ``frame_every`` steps (the first is the start, the last the result); ``history``: one dict per
    evaluation (``step, content, style, tv, total``, the costs before weighting except ``total``)."""
    image: np.ndarray
    frames: list
    history: list
    seconds: float
    evaluations: int
    settings: dict

    @property
    def final_costs(self) -> dict:
        return self.history[-1] if self.history else {}


class _Objective:
    """The total cost and its gradient to the pixels, one forward + backward pass per call."""

    def __init__(self, backbone, content_targets, style_targets, content_layers, style_layers,
                 content_weight, style_weight, tv_weight):
        self.backbone = backbone
        self.content_targets, self.style_targets = content_targets, style_targets
        self.content_layers, self.style_layers = content_layers, style_layers
        self.weights = (float(content_weight), float(style_weight), float(tv_weight))
        self.names = list(dict.fromkeys([n for n, _ in content_layers] + [n for n, _ in style_layers]))
        self.history = []

    def __call__(self, pixels: np.ndarray):
        """``pixels`` float32 ``(1, H, W, 3)`` -> (total cost, gradient float32 of the same shape)."""
        x = tensor(pixels, requires_grad=True)
        taps = self.backbone.taps(x, self.names)
        alpha, beta, gamma = self.weights
        Jc = None
        for name, w in self.content_layers:
            term = content_cost(self.content_targets[name], taps[name]) * w
            Jc = term if Jc is None else Jc + term
        Js = None
        for name, w in self.style_layers:
            term = gram_style_cost(self.style_targets[name], taps[name]) * w
            Js = term if Js is None else Js + term
        total = Jc * alpha + Js * beta
        Jtv = None
        if gamma:
            Jtv = total_variation(x)
            total = total + Jtv * gamma
        del taps
        total.backward()
        record = {"step": len(self.history), "content": float(Jc.data), "style": float(Js.data),
                  "tv": float(Jtv.data) if Jtv is not None else 0.0, "total": float(total.data)}
        self.history.append(record)
        return record["total"], x.grad


def _as_uint8_rgb(image, what) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"{what} must be an (H, W, 3) image, received shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    image = image[..., :3]
    if image.dtype != np.uint8:
        image = to_uint8(image)
    return image


def stylize(content, styles, style_blend=None, *, backbone=None, size: int | None = 400, steps: int = 300,
            optimizer: str = "lbfgs", lr: float | None = None, content_weight: float = 10.0,
            style_weight: float = 1e4, tv_weight: float = 0.0, init: str = "noise",
            content_layers=None, style_layers=None, preserve_color: bool = False, style_scale: float = 1.0,
            seed: int | None = 0, progress: bool = False, frame_every: int = 0, callback=None) -> StyleResult:
    """Paint ``content`` in the style of ``styles``; returns a :class:`StyleResult`.

    ``content``: RGB ``uint8`` ``(H, W, 3)`` (or float in [0, 1]); ``styles``: one such image or a list;
    ``style_blend``: their weights (default equal; normalised to sum 1): the style target of a layer is
    the blend of the styles' normalised Gram matrices.  ``backbone``: an object with ``taps(x, names)``,
    ``check_layers(names)``, ``default_content_layers`` and ``default_style_layers`` (a
    :class:`~strided.style.features.VGGFeatures` from :func:`~strided.style.features.load_vgg`, or
    :func:`strided.style.backbones.get_backbone`'s; None: the offline default).  ``size``: the longer
    side of the result in pixels (None: the content's size); ``style_scale``: style images are resized
    to a longer side of ``size * style_scale``.  ``content_layers`` / ``style_layers``: names (equal
    weights) or ``(name, weight)`` pairs.  ``lr``: Adam's step (default 0.01, the course's); ignored by
    L-BFGS.  ``frame_every``: keep a frame every that many steps (0: none).  ``callback(step, record,
    pixels)`` is called after each step.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, received optimizer={optimizer!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, received init={init!r}")
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, received steps={steps}")
    if style_scale <= 0:
        raise ValueError(f"style_scale must be > 0, received style_scale={style_scale}")
    if backbone is None:
        from .backbones import get_backbone
        backbone = get_backbone()
    styles = [styles] if isinstance(styles, np.ndarray) else list(styles)
    if not styles:
        raise ValueError("styles must hold at least one style image, received none")
    blend = np.ones(len(styles)) if style_blend is None else np.asarray(style_blend, dtype=np.float64)
    if blend.shape != (len(styles),) or np.any(blend < 0) or blend.sum() <= 0:
        raise ValueError(f"style_blend must be {len(styles)} non-negative weights with a positive sum, "
                         f"received {style_blend!r}")
    blend = blend / blend.sum()
    content_layers = parse_layers(content_layers, backbone.default_content_layers)
    style_layers = parse_layers(style_layers, backbone.default_style_layers)
    content_layers = list(zip(backbone.check_layers([n for n, _ in content_layers]), [w for _, w in content_layers]))
    style_layers = list(zip(backbone.check_layers([n for n, _ in style_layers]), [w for _, w in style_layers]))

    content = _as_uint8_rgb(content, "content")
    if size is not None:
        content = resize_longest(content, size)
    H, W = content.shape[:2]
    style_side = max(16, round(max(H, W) * style_scale))
    styles = [resize_longest(_as_uint8_rgb(s, f"style image {i}"), style_side) for i, s in enumerate(styles)]
    content_f = to_float(content)[None]                       # (1, H, W, 3) float32 in [0, 1]

    start = time.perf_counter()
    with no_grad():
        c_taps = backbone.taps(content_f, [n for n, _ in content_layers])
        content_targets = {n: np.array(c_taps[n].data) for n, _ in content_layers}
        style_targets = {}
        for s, w in zip(styles, blend):
            s_taps = backbone.taps(to_float(s)[None], [n for n, _ in style_layers])
            for n, _ in style_layers:
                g = np.asarray(normalized_gram(s_taps[n]).data) * w
                style_targets[n] = g if n not in style_targets else style_targets[n] + g
        del c_taps

    rng = np.random.default_rng(seed)
    if init == "content":
        pixels = content_f.copy()
    elif init == "noise":
        pixels = np.clip(content_f + rng.uniform(-0.25, 0.25, content_f.shape), 0, 1).astype(np.float32)
    else:
        pixels = rng.uniform(0, 1, content_f.shape).astype(np.float32)

    objective = _Objective(backbone, content_targets, style_targets, content_layers, style_layers,
                           content_weight, style_weight, tv_weight)
    frames = [to_uint8(pixels[0])] if frame_every else []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc=f"stylize {W}x{H} {optimizer}", unit="step", leave=False)

    def after_step(step, x):
        record = objective.history[-1]
        if bar is not None:
            bar.update(1)
            bar.set_postfix(content=f"{record['content']:.4g}", style=f"{record['style']:.4g}",
                            tv=f"{record['tv']:.4g}", refresh=False)
        if frame_every and step % frame_every == 0 and step != steps:
            frames.append(to_uint8(x.reshape(content_f.shape)[0]))
        if callback is not None:
            callback(step, record, x)

    try:
        if steps == 0:
            pass
        elif optimizer == "adam":
            pixels = _run_adam(objective, pixels, steps, 0.01 if lr is None else float(lr), after_step)
        else:
            pixels = _run_lbfgs(objective, pixels, steps, after_step)
    finally:
        if bar is not None:
            bar.close()
    if not objective.history:                  # steps=0: record the costs of the start
        objective(pixels)
    result = np.clip(pixels[0], 0.0, 1.0)
    if preserve_color:
        result = keep_colors(result, content_f[0])
    image = to_uint8(result)
    if frame_every:
        frames.append(image)
    settings = dict(size=[W, H], steps=steps, optimizer=optimizer, lr=lr, content_weight=content_weight,
                    style_weight=style_weight, tv_weight=tv_weight, init=init, seed=seed,
                    content_layers=content_layers, style_layers=style_layers, style_blend=blend.tolist(),
                    preserve_color=preserve_color, style_scale=style_scale,
                    backbone=getattr(backbone, "description", repr(backbone)))
    return StyleResult(image, frames, objective.history, time.perf_counter() - start, len(objective.history),
                       settings)


def _run_adam(objective, pixels, steps, lr, after_step, betas=(0.9, 0.999), eps=1e-8):
    """Adam on the pixels (the course: tf.optimizers.Adam(lr=0.01), then clip to [0, 1])."""
    x = pixels.astype(np.float32)
    m, v = np.zeros_like(x), np.zeros_like(x)
    b1, b2 = betas
    for t in range(1, steps + 1):
        _, g = objective(x)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g * g)
        step = lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        x = np.clip(x - step.astype(np.float32), 0.0, 1.0)
        after_step(t, x)
    return x


def _run_lbfgs(objective, pixels, steps, after_step):
    """scipy's L-BFGS-B with bounds [0, 1] on float64 pixels; the network runs in float32."""
    from scipy.optimize import Bounds, minimize

    shape = pixels.shape
    count = [0]

    def fun(flat):
        total, grad = objective(flat.reshape(shape).astype(np.float32))
        return total, grad.astype(np.float64).reshape(-1)

    def iteration(xk):
        count[0] += 1
        after_step(count[0], xk.reshape(shape).astype(np.float32))

    n = pixels.size
    res = minimize(fun, pixels.astype(np.float64).reshape(-1), jac=True, method="L-BFGS-B",
                   bounds=Bounds(np.zeros(n), np.ones(n)), callback=iteration,
                   options=dict(maxiter=steps, maxfun=2 * steps + 20, maxcor=20, ftol=0.0, gtol=0.0))
    return res.x.reshape(shape).astype(np.float32)


def save_gif(frames, path, duration_ms: int = 120) -> None:
    """Write ``frames`` (``uint8`` ``(H, W, 3)``) as an animated GIF (Pillow), atomically; the last frame
    is held three times as long."""
    from PIL import Image

    from ..fileio import atomic_write

    if not frames:
        raise ValueError("save_gif needs at least one frame, received none")
    images = [Image.fromarray(f) for f in frames]
    durations = [duration_ms] * (len(images) - 1) + [duration_ms * 3]

    def write(f):
        images[0].save(f, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)

    atomic_write(path, write)
