"""Face verification and one-shot metrics, LFW style.

Verification compares pairs of faces: ``distances`` ``(n,)`` (smaller = more alike, e.g.
Euclidean between embeddings) and ``same`` ``(n,)`` booleans (the truth).  A pair is
ACCEPTED as the same person when ``distance <= threshold``.

* TAR (true accept rate)  = accepted same pairs / same pairs
* FAR (false accept rate) = accepted different pairs / different pairs
* FRR = 1 - TAR.  The EER is the rate where FAR = FRR.

>>> roc = roc_curve(distances, same)              # ROC(far, tar, thresholds)
>>> roc_auc(distances, same), equal_error_rate(distances, same)
>>> tar_at_far(distances, same, far=1e-3)         # (tar, threshold)
>>> kfold_accuracy(distances, same, folds)        # LFW protocol: threshold from the other folds
>>> pairs = read_lfw_pairs("pairs.txt", "lfw/")   # paths1, paths2, same, fold
>>> evaluate_pairs(pairs, strided.face.embed, roc_png="roc.png")   # the whole LFW evaluation
>>> write_roc_png("roc.png", {"ours": roc})

One-shot recognition (:func:`one_shot_accuracy`, :func:`n_way_one_shot_accuracy`): one
example per class as the support set, each query gets the class of its nearest support.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DatasetUnavailable, StridedError
from ..fileio import atomic_write
from ..train import Metric

__all__ = ["ROC", "LFWPairs", "LFWFormatError", "roc_curve", "roc_auc", "equal_error_rate",
           "tar_at_far", "accuracy_at_threshold", "best_threshold", "kfold_accuracy",
           "verification_report", "euclidean_distances", "one_shot_accuracy",
           "one_shot_episodes", "n_way_one_shot_accuracy", "pair_distances", "EmbeddingMetric",
           "OneShotAccuracy", "VerificationAUC", "read_lfw_pairs", "evaluate_pairs", "write_roc_png"]


class ROC(NamedTuple):
    """ROC points: ``far[i]``, ``tar[i]`` when accepting ``distance <= thresholds[i]``.

    ``thresholds`` ascend; the first is ``-inf`` (accept nothing: FAR = TAR = 0), the last
    the largest distance (accept everything: FAR = TAR = 1).
    """
    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray


class LFWPairs(NamedTuple):
    """Pairs read from an LFW ``pairs.txt``: image paths, truth and fold of every pair."""
    paths1: list
    paths2: list
    same: np.ndarray          # (n,) bool
    fold: np.ndarray          # (n,) int64, 0-based


class LFWFormatError(StridedError, ValueError):
    """A ``pairs.txt`` that does not follow the LFW layout."""


# --------------------------------------------------------------------------- checks
def _pairs(distances, same) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same)
    if d.ndim != 1 or s.shape != d.shape:
        raise ValueError(f"distances and same must be 1-D of the same length, received shapes "
                         f"{d.shape} and {s.shape}")
    if s.dtype != np.bool_:
        if not np.isin(s, (0, 1)).all():
            raise ValueError(f"same must hold booleans or 0/1, received values {np.unique(s)[:6]}")
        s = s.astype(bool)
    if not np.isfinite(d).all():
        raise ValueError(f"distances must be finite, received {np.count_nonzero(~np.isfinite(d))} "
                         f"NaN or infinite values")
    if s.all() or not s.any():
        raise ValueError(f"verification metrics need both same and different pairs, received "
                         f"{int(s.sum())} same and {int((~s).sum())} different")
    return d, s


# --------------------------------------------------------------------------- ROC
def roc_curve(distances, same) -> ROC:
    """TAR against FAR at every distinct threshold (see :class:`ROC`).

    The same curve as ``sklearn.metrics.roc_curve(same, -distances, drop_intermediate=False)``
    (its scores are similarities, so its thresholds are ours negated).
    """
    d, s = _pairs(distances, same)
    order = np.argsort(d, kind="stable")
    d, s = d[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(d)), len(d) - 1]   # last index of each distinct value
    tp = np.cumsum(s)[last]
    fp = (last + 1) - tp
    far = np.r_[0.0, fp / (~s).sum()]
    tar = np.r_[0.0, tp / s.sum()]
    return ROC(far, tar, np.r_[-np.inf, d[last]])


def roc_auc(distances, same) -> float:
    """Area under the ROC curve (trapezoids): the chance that a random same pair is closer
    than a random different pair (ties count half)."""
    far, tar, _ = roc_curve(distances, same)
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))


def equal_error_rate(distances, same) -> tuple[float, float]:
    """``(eer, threshold)``: where FAR = FRR (= 1 - TAR) on the ROC curve.

    Between two ROC points the curve is a straight line; the EER is where it crosses
    ``FAR + TAR = 1`` (the value FaceNet's and InsightFace's evaluation code compute with
    ``brentq(lambda x: 1 - x - interp(x, far, tar), 0, 1)``).  The threshold is interpolated
    the same way between the two points' thresholds.
    """
    far, tar, thresholds = roc_curve(distances, same)
    g = far + tar - 1.0                                   # -1 at the start, +1 at the end
    i = int(np.argmax(g >= 0))
    t = -g[i - 1] / (g[i] - g[i - 1])
    eer = far[i - 1] + t * (far[i] - far[i - 1])
    lo = thresholds[i - 1] if np.isfinite(thresholds[i - 1]) else thresholds[i]
    return float(eer), float(lo + t * (thresholds[i] - lo))


def tar_at_far(distances, same, far: float = 1e-3) -> tuple[float, float]:
    """``(tar, threshold)``: the highest TAR whose FAR is at most ``far`` (no interpolation;
    with ``n`` different pairs a FAR below ``1/n`` can only be met by accepting none of them).

    The threshold is the largest distance that keeps FAR <= ``far`` (``-inf`` if none)."""
    far_target = float(far)
    if not 0.0 <= far_target <= 1.0:
        raise ValueError(f"far must be in [0, 1], received far={far!r}")
    roc = roc_curve(distances, same)
    ok = np.flatnonzero(roc.far <= far_target + 1e-12)
    best = ok[np.argmax(roc.tar[ok])]
    return float(roc.tar[best]), float(roc.thresholds[best])


# --------------------------------------------------------------------------- accuracy
def accuracy_at_threshold(distances, same, threshold: float) -> float:
    """Fraction of pairs decided right when accepting ``distance <= threshold``."""
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same).astype(bool)
    return float(np.mean((d <= threshold) == s))


def best_threshold(distances, same) -> tuple[float, float]:
    """``(accuracy, threshold)``: the threshold with the best accuracy on these pairs.

    The candidates lie halfway between consecutive distinct distances (and 1 below the
    smallest / 1 above the largest), so a threshold generalises symmetrically to new pairs;
    ties go to the smallest threshold.
    """
    roc = roc_curve(distances, same)
    s = np.asarray(same).astype(bool)
    n_same, n_diff = s.sum(), (~s).sum()
    correct = roc.tar * n_same + (1.0 - roc.far) * n_diff
    i = int(np.argmax(correct))
    u = roc.thresholds[1:]                                 # distinct distances, ascending
    cuts = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2.0, u[-1] + 1.0]
    return float(correct[i] / len(s)), float(cuts[i])


def kfold_accuracy(distances, same, folds=10) -> dict:
    """LFW's protocol: for each fold, the threshold is the best one on the OTHER folds and
    the accuracy is measured on this fold.

    ``folds``: ``(n,)`` fold id of every pair (e.g. :attr:`LFWPairs.fold`) or a number
    ``k`` of contiguous equal blocks (LFW's order).  Returns ``{"accuracy": mean,
    "std": standard deviation (population), "fold_accuracies": [...], "thresholds": [...]}``.
    """
    d, s = _pairs(distances, same)
    if np.ndim(folds) == 0:
        k = int(folds)
        if k < 2 or k > len(d):
            raise ValueError(f"folds must be between 2 and the number of pairs ({len(d)}), "
                             f"received folds={folds!r}")
        fold = np.arange(len(d)) * k // len(d)
    else:
        fold = np.asarray(folds)
        if fold.shape != d.shape:
            raise ValueError(f"folds must be a number or one fold id per pair ({len(d)}), "
                             f"received shape {fold.shape}")
    ids = np.unique(fold)
    if len(ids) < 2:
        raise ValueError(f"k-fold accuracy needs at least 2 folds, received {len(ids)}")
    accuracies, thresholds = [], []
    for f in ids:
        test = fold == f
        _, threshold = best_threshold(d[~test], s[~test])
        thresholds.append(threshold)
        accuracies.append(accuracy_at_threshold(d[test], s[test], threshold))
    return {"accuracy": float(np.mean(accuracies)), "std": float(np.std(accuracies)),
            "fold_accuracies": accuracies, "thresholds": thresholds}


def verification_report(distances, same, folds=None, fars=(1e-2, 1e-3)) -> dict:
    """Every verification number at once (JSON-able): ``auc``, ``eer``,
    ``eer_threshold``, ``best_accuracy``, ``best_threshold``, ``tar_at_far``
    (``{"0.01": {"tar", "threshold"}, ...}``), ``pairs``, ``same_pairs``, and, when
    ``folds`` is given, ``kfold`` (:func:`kfold_accuracy`)."""
    d, s = _pairs(distances, same)
    eer, eer_threshold = equal_error_rate(d, s)
    accuracy, threshold = best_threshold(d, s)
    report = {"pairs": int(len(d)), "same_pairs": int(s.sum()), "auc": roc_auc(d, s),
              "eer": eer, "eer_threshold": eer_threshold,
              "best_accuracy": accuracy, "best_threshold": threshold, "tar_at_far": {}}
    for far in fars:
        tar, thr = tar_at_far(d, s, far)
        report["tar_at_far"][f"{far:g}"] = {"tar": tar, "threshold": thr}
    if folds is not None:
        report["kfold"] = kfold_accuracy(d, s, folds)
    return report


# --------------------------------------------------------------------------- one-shot
def euclidean_distances(a, b) -> np.ndarray:
    """``(len(a), len(b))`` Euclidean distances with one matrix product:
    ``sqrt(max(||a||^2 - 2 a.b + ||b||^2, 0))``."""
    a = np.asarray(a)
    b = np.asarray(b)
    d2 = (a * a).sum(axis=-1)[..., :, None] - 2.0 * (a @ np.swapaxes(b, -1, -2)) \
        + (b * b).sum(axis=-1)[..., None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def one_shot_accuracy(support, support_labels, queries, query_labels) -> float:
    """Nearest-neighbour accuracy: each query ``(D,)`` gets the label of its nearest
    (Euclidean) support embedding.  ``support`` ``(S, D)``, ``queries`` ``(Q, D)``."""
    support, queries = np.asarray(support), np.asarray(queries)
    support_labels, query_labels = np.asarray(support_labels), np.asarray(query_labels)
    if support.ndim != 2 or queries.ndim != 2 or support.shape[1] != queries.shape[1]:
        raise ValueError(f"support (S, D) and queries (Q, D) must be 2-D with the same D, "
                         f"received {support.shape} and {queries.shape}")
    if support_labels.shape != (len(support),) or query_labels.shape != (len(queries),):
        raise ValueError(f"labels must be one per embedding: support {support.shape} with "
                         f"{support_labels.shape} labels, queries {queries.shape} with "
                         f"{query_labels.shape}")
    nearest = euclidean_distances(queries, support).argmin(axis=1)
    return float(np.mean(support_labels[nearest] == query_labels))


def one_shot_episodes(labels, n_way: int = 5, episodes: int = 1000, seed: int = 0):
    """Random N-way 1-shot episodes: ``(support, query)`` index arrays ``(episodes, n_way)``.

    Each episode picks ``n_way`` distinct classes (among those with 2+ items) and, for each,
    two distinct items: ``support[e, j]`` and ``query[e, j]``, of the same class.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    classes = classes[counts >= 2]
    if int(n_way) != n_way or not 2 <= n_way <= len(classes):
        raise ValueError(f"n_way must be an integer between 2 and the number of classes with "
                         f"2+ items ({len(classes)}), received n_way={n_way!r}")
    if int(episodes) != episodes or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, received episodes={episodes!r}")
    members = [np.flatnonzero(labels == c) for c in classes]
    rng = np.random.default_rng(seed)
    support = np.empty((episodes, n_way), np.int64)
    query = np.empty((episodes, n_way), np.int64)
    for e in range(episodes):
        for j, c in enumerate(rng.choice(len(classes), n_way, replace=False)):
            support[e, j], query[e, j] = rng.choice(members[c], 2, replace=False)
    return support, query


def n_way_one_shot_accuracy(embeddings, labels, n_way: int = 5, episodes: int = 1000,
                            seed: int = 0) -> float:
    """Mean accuracy of N-way 1-shot episodes (:func:`one_shot_episodes`): in each, every
    query is matched to the nearest of the ``n_way`` supports (one per class)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if embeddings.ndim != 2 or labels.shape != (len(embeddings),):
        raise ValueError(f"embeddings (N, D) and labels (N,) expected, received "
                         f"{embeddings.shape} and {labels.shape}")
    support, query = one_shot_episodes(labels, n_way, episodes, seed)
    d = euclidean_distances(embeddings[query], embeddings[support])   # (E, n_way, n_way)
    return float(np.mean(d.argmin(axis=2) == np.arange(n_way)))


def pair_distances(embeddings, labels, max_items: int | None = None, seed: int = 0):
    """``(distances, same)`` over every pair ``i < j`` of ``embeddings`` ``(N, D)`` (Euclidean),
    ``same = labels[i] == labels[j]``; with ``max_items``, of a seeded random subset of that size."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if max_items is not None and len(labels) > max_items:
        keep = np.sort(np.random.default_rng(seed).choice(len(labels), max_items, replace=False))
        embeddings, labels = embeddings[keep], labels[keep]
    i, j = np.triu_indices(len(labels), k=1)
    return euclidean_distances(embeddings, embeddings)[i, j], labels[i] == labels[j]


class EmbeddingMetric(Metric):
    """A validation metric on embeddings (a :class:`strided.train.Metric` with ``on_training =
    False``: the Trainer measures it on validation batches only, logged as ``val_<name>``).

    ``update`` keeps the batch's embeddings ``(B, D)`` and integer labels; ``compute`` scores the
    whole epoch at once.  The kept embeddings are not part of ``state_dict`` (an interrupted
    validation pass starts again).
    """

    on_training = False

    def reset(self) -> None:
        self._embeddings, self._labels = [], []

    def update(self, outputs, targets) -> None:
        outputs = np.asarray(outputs)
        targets = np.asarray(targets)
        if outputs.ndim != 2 or targets.shape != (len(outputs),):
            raise ValueError(f"{type(self).__name__} expects embeddings (B, D) and labels (B,), "
                             f"received {outputs.shape} and {targets.shape}")
        self._embeddings.append(outputs.astype(np.float64))
        self._labels.append(targets)

    def collected(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._labels:
            raise ValueError(f"{type(self).__name__}.compute() before any update()")
        return np.concatenate(self._embeddings), np.concatenate(self._labels)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        self.reset()


class OneShotAccuracy(EmbeddingMetric):
    """N-way 1-shot accuracy of the epoch's embeddings (:func:`n_way_one_shot_accuracy`;
    ``n_way`` is capped at the number of classes seen)."""

    def __init__(self, n_way: int = 5, episodes: int = 500, seed: int = 0):
        self.n_way, self.episodes, self.seed = int(n_way), int(episodes), int(seed)
        super().__init__()

    def compute(self) -> float:
        emb, labels = self.collected()
        classes = int(np.sum(np.unique(labels, return_counts=True)[1] >= 2))
        return n_way_one_shot_accuracy(emb, labels, min(self.n_way, classes), self.episodes, self.seed)


class VerificationAUC(EmbeddingMetric):
    """ROC AUC of "same class?" over every pair of the epoch's embeddings (Euclidean distance;
    a seeded subset of ``max_items`` embeddings when there are more)."""

    def __init__(self, max_items: int = 2000, seed: int = 0):
        self.max_items, self.seed = int(max_items), int(seed)
        super().__init__()

    def compute(self) -> float:
        emb, labels = self.collected()
        return roc_auc(*pair_distances(emb, labels, self.max_items, self.seed))


# --------------------------------------------------------------------------- LFW files
_HEADER = re.compile(r"^\s*(\d+)(?:\s+(\d+))?\s*$")


def read_lfw_pairs(pairs_txt, root, check_files: bool = True) -> LFWPairs:
    """Read an LFW ``pairs.txt`` (or ``pairsDevTest.txt``) with images under ``root``.

    Layout: a first line ``"<folds> <n>"`` (``"10 300"``; a single number ``n`` means one
    fold), then per fold ``n`` matched lines ``name i j`` followed by ``n`` mismatched lines
    ``name1 i name2 j``.  Image ``i`` of ``name`` is ``root/name/name_%04d.jpg``.
    ``check_files``: raise :class:`~strided.errors.DatasetUnavailable` naming the first
    missing images.  Bad lines raise :class:`LFWFormatError` with their line number.
    """
    pairs_txt, root = Path(pairs_txt), Path(root)
    if not pairs_txt.is_file():
        raise DatasetUnavailable(f"LFW pairs file {str(pairs_txt)!r} does not exist")
    lines = pairs_txt.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    header = _HEADER.match(lines[0]) if lines else None
    if header is None:
        raise LFWFormatError(f"{str(pairs_txt)!r} line 1 should be '<folds> <pairs per fold>' "
                             f"(e.g. '10 300'), received {lines[0][:80] if lines else ''!r}")
    folds, n = (int(header[1]), int(header[2])) if header[2] else (1, int(header[1]))
    expected = 1 + folds * 2 * n
    if len(lines) != expected:
        raise LFWFormatError(f"{str(pairs_txt)!r}: the header says {folds} folds x ({n} matched + "
                             f"{n} mismatched) pairs = {expected - 1} lines after it, found "
                             f"{len(lines) - 1}")

    def image(name: str, number: str, line_no: int) -> Path:
        if not number.isdigit():
            raise LFWFormatError(f"{str(pairs_txt)!r} line {line_no}: image number must be an "
                                 f"integer, received {number!r}")
        return root / name / f"{name}_{int(number):04d}.jpg"

    paths1, paths2, same, fold = [], [], [], []
    for line_no, line in enumerate(lines[1:], start=2):
        k = line_no - 2
        f, matched = k // (2 * n), (k % (2 * n)) < n
        parts = line.split()
        if matched and len(parts) == 3:
            a, b = image(parts[0], parts[1], line_no), image(parts[0], parts[2], line_no)
        elif not matched and len(parts) == 4:
            a, b = image(parts[0], parts[1], line_no), image(parts[2], parts[3], line_no)
        else:
            kind = "matched 'name i j'" if matched else "mismatched 'name1 i name2 j'"
            raise LFWFormatError(f"{str(pairs_txt)!r} line {line_no} should be a {kind} pair "
                                 f"(fold {f + 1}), received {line.strip()[:80]!r}")
        paths1.append(str(a))
        paths2.append(str(b))
        same.append(matched)
        fold.append(f)
    if check_files:
        missing = sorted({p for p in paths1 + paths2 if not Path(p).is_file()})
        if missing:
            raise DatasetUnavailable(f"{len(missing)} images named in {str(pairs_txt)!r} are not "
                                     f"under {str(root)!r}, e.g. {missing[:3]}")
    return LFWPairs(paths1, paths2, np.array(same, dtype=bool), np.array(fold, dtype=np.int64))


def evaluate_pairs(pairs: LFWPairs, embed, roc_png=None, on_error: str = "raise") -> dict:
    """Embed every image of ``pairs`` once (``embed(path) -> (D,)``, e.g.
    ``strided.face.embed``), take the Euclidean distance of each pair and return
    :func:`verification_report` with ``folds=pairs.fold`` (LFW's 10-fold accuracy).

    ``on_error="skip"``: an image ``embed`` fails on (a :class:`~strided.errors.StridedError`,
    e.g. no face found) drops its pairs, counted in ``report["skipped_pairs"]`` with the
    images in ``report["failed_images"]``; ``"raise"`` (default) lets the error through.
    ``roc_png``: also draw the ROC there (:func:`write_roc_png`).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', received on_error={on_error!r}")
    vectors, failed = {}, {}
    for path in dict.fromkeys(pairs.paths1 + pairs.paths2):
        try:
            vectors[path] = np.asarray(embed(path), dtype=np.float64).reshape(-1)
        except StridedError as exc:
            if on_error == "raise":
                raise
            failed[path] = str(exc)
    keep = np.array([a in vectors and b in vectors for a, b in zip(pairs.paths1, pairs.paths2)], bool)
    a = np.stack([vectors[p] for p, k in zip(pairs.paths1, keep) if k])
    b = np.stack([vectors[p] for p, k in zip(pairs.paths2, keep) if k])
    d = np.linalg.norm(a - b, axis=1)
    report = verification_report(d, pairs.same[keep], folds=pairs.fold[keep])
    report["skipped_pairs"] = int((~keep).sum())
    report["failed_images"] = failed
    if roc_png is not None:
        report["roc_png"] = str(write_roc_png(roc_png, {"pairs": roc_curve(d, pairs.same[keep])}))
    return report


# --------------------------------------------------------------------------- picture
def write_roc_png(path, curves, title: str = "Verification ROC", log_far: bool = False,
                  mark_fars=(1e-2, 1e-3)) -> Path:
    """Draw ROC curves (TAR against FAR) to a PNG, written atomically.

    ``curves``: ``{label: ROC}`` (or ``{label: (far, tar)}``); the legend shows each AUC.
    ``log_far``: FAR on a log axis (FAR = 0 drawn at half the smallest positive FAR).
    ``mark_fars``: vertical dotted lines at these FARs.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(curves, ROC):
        curves = {"ROC": curves}
    if not curves:
        raise ValueError("write_roc_png needs at least one curve, received none")
    fig = Figure(figsize=(5.5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, curve in curves.items():
        far, tar = (np.asarray(curve[0], np.float64), np.asarray(curve[1], np.float64))
        auc = float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))
        if log_far:
            positive = far[far > 0]
            far = np.where(far > 0, far, positive.min() / 2 if positive.size else 1e-6)
        ax.plot(far, tar, lw=1.6, label=f"{label} (AUC {auc:.4f})")
    if log_far:
        ax.set_xscale("log")
    else:
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    for far in mark_fars:
        ax.axvline(far, ls=":", lw=0.8, color="grey")
    ax.set_xlabel("FAR (false accept rate)")
    ax.set_ylabel("TAR (true accept rate)")
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
