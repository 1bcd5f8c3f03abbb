"""Pictures of a run, drawn with matplotlib (Agg, files only).

* ``plot_curves(history, path)``: loss and accuracy per epoch, train and validation
* ``plot_confusion(cm, classes, path)``: the confusion matrix, counts in each cell
* ``plot_predictions(images, labels, probabilities, classes, path)``: a grid of
  images titled with the predicted class, its probability and the true class
  (wrong predictions in red)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .fileio import atomic_write

__all__ = ["plot_curves", "plot_confusion", "plot_predictions", "pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no window)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` atomically (:func:`strided.fileio.atomic_write`) and close it.

    The format comes from the suffix (``.png``, ``.pdf``, ``.svg``, ...); PNG when there is none.
    """
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt))
    finally:
        pyplot().close(fig)
    return path


def plot_curves(history: list, path) -> Path:
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, [h[key] for h in history], "o-", label="train")
        if any(f"val_{key}" in h for h in history):
            ax.plot(epochs, [h.get(f"val_{key}", np.nan) for h in history], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_confusion(cm: np.ndarray, classes: list, path) -> Path:
    plt = pyplot()
    k = len(cm)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > threshold else "black")
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"confusion matrix (accuracy {accuracy:.2%})")
    fig.tight_layout()
    return save_figure(fig, path)


def image_grid(n: int, columns: int, tile=(1.6, 1.9)):
    """``(fig, axes)``: a figure of ``ceil(n / columns)`` rows of ``columns`` tiles (inches
    ``tile = (width, height)`` each), every axis off; ``axes`` is 2-D."""
    plt = pyplot()
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(tile[0] * columns, tile[1] * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes


def plot_predictions(images: np.ndarray, labels, probabilities: np.ndarray, classes: list, path,
                     columns: int = 8) -> Path:
    n = len(images)
    fig, axes = image_grid(n, columns)
    for i, ax in enumerate(axes.ravel()[:n]):
        image = images[i]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
        guess = int(np.argmax(probabilities[i]))
        ok = labels is None or guess == int(labels[i])
        title = f"{classes[guess]} {probabilities[i][guess]:.0%}"
        if labels is not None and not ok:
            title += f"\n(true: {classes[int(labels[i])]})"
        ax.set_title(title, fontsize=7, color="black" if ok else "red")
    fig.tight_layout()
    return save_figure(fig, path)
