"""Transfer learning: reuse a pretrained network's base, train a new head, then fine-tune.

The recipe (Keras' "transfer learning & fine-tuning" guide, on this engine)::

    model = strided.models.create("efficientnet_lite0", pretrained=True, num_classes=K)
    split = split_base_head(model)            # base: features + pooling; head: dropout + Linear(1280, K)
    freeze_base(model)                         # base weights frozen, its BatchNorms use running stats
    feats, labels = extract_features(split.base, train_set, input_size=128, cache_path="cache/")
    head, history = train_head(feats, labels, K)   # seconds: a Linear layer on 1280-D vectors (a Trainer run)
    set_head(model, head)                       # the trained Linear goes into the model's classifier
    fine_tune(model, top_n=2, train_loader=..., epochs=2, lr=1e-4)   # optional: top 2 blocks unfrozen

**Base and head** (:func:`split_base_head`).  For EfficientNet / MobileNet v2 /
VGG / LeNet the head is the ``classifier`` attribute, for ResNet and
MobileNet v1 ``fc``, for the small models ``head``; the base is every
top-level child registered before it (so ``features`` + ``avgpool``).  The
base's *blocks* are the children of ``features`` when there is such a
``Sequential`` (EfficientNet-Lite0: ``features.0`` the stem, ``features.1`` ..
``features.7`` the seven MBConv stages, ``features.8`` the 1x1 head conv), else
the base's top-level children.  ``fine_tune(model, N)`` unfreezes the last N
blocks: ``N=1`` the 1x1 conv to 1280 channels, ``N=2`` also the last stage.

**Freezing and BatchNorm** (:func:`freeze_base`).  Frozen parameters get no
gradient (``requires_grad=False``; the optimizer only sees trainable ones).  A
BatchNorm whose ``gamma`` and ``beta`` are frozen normalises with its *running*
statistics even in ``train()`` mode and does not update them
(:class:`strided.nn.BatchNorm2d`), so a frozen base computes exactly what it
computes at inference: training the head never changes it, and a small
fine-tuning batch does not overwrite ImageNet statistics.  :func:`unfreeze_top`
keeps the BatchNorms of the unfrozen blocks frozen too by default
(``keep_bn_frozen=True``, the usual advice for fine-tuning on small data).

**Inputs** (:func:`resize_for`, :class:`InputAdapter`).  The pretrained
EfficientNet-Lite0 wants RGB normalised as :func:`strided.models.pretrained.preprocess`
does: ``(x * 255 - 127) / 128``.  Images are resized (Pillow bilinear, on the
uint8 pixels) to ``input_size`` and grayscale is repeated to 3 channels (the
25x25x1 ``lfw-faces`` crops become 128x128x3).  No centre crop: data-set images
are already framed.  The network is fully convolutional with global pooling,
so it runs at any size; 128 is the default here: the cost of a forward pass
grows with the pixel count ((224/128)^2 = 3.1x more at 224); on 2 shared cores
the frozen base takes ~14 ms per image at 128 (32 images in 0.45 s) and the
pooled 1280-D features at 128 px still transfer well (98 % on lfw-faces, 97 %
on a 3-class photo task: ``benchmarks/TRANSFER.md``).  Resizing (Pillow, one
call per image) costs ~0.3-0.4 ms per image (25x25x1 or 96x96x3 -> 128x128x3),
a few % of the network's time.

**Feature cache** (:func:`extract_features`).  With a frozen base and no
augmentation every epoch would recompute the same features; they are computed
once (eval mode, no graph) and stored as ``.npz`` keyed by a SHA-256 of the
base's weights, the data set's name, its images and labels, their shape and the
input size.  A later call with the same key loads the file without running the
model.

**The head on cached features, inside a run** (:func:`fit_head_on_features`).
The head phase of ``strided train --freeze base --cache-features``: features of
the training and validation sets are computed once (or loaded from the cache),
and the model's own head trains on them with :class:`strided.train.Trainer`,
whose checkpoints hold the *whole* model (``checkpoint_model``), so the run
directory is the same as after ordinary training and ``--resume`` works.
"""
from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import functional as F
from . import nn
from .data.image import to_float, to_uint8
from .fileio import atomic_write
from .tensor import Tensor, no_grad

__all__ = ["Split", "split_base_head", "freeze_base", "unfreeze_top", "resize_for", "normalize_input",
           "InputAdapter", "with_input_adapter", "extract_features", "feature_cache_key", "weights_digest",
           "train_head", "set_head", "fine_tune", "FeatureSet", "fit_head_on_features", "DEFAULT_INPUT_SIZE"]

DEFAULT_INPUT_SIZE = 128
HEAD_NAMES = ("classifier", "fc", "head")


# --------------------------------------------------------------------------- base / head
@dataclass
class Split:
    """``base``: a module computing the features (shares the model's layers); ``head``: the model's head module;
    ``head_name``: its dotted name in the model; ``blocks``: ``[(dotted name, module), ...]`` of the base, in order."""
    base: nn.Module
    head: nn.Module
    head_name: str
    blocks: list

    @property
    def base_names(self) -> list:
        return [name for name, _ in self.blocks]


class _Pooled(nn.Module):
    """The base's children in order, then global average pooling if the output is still an image."""

    def __init__(self, children: "OrderedDict"):
        super().__init__()
        self.layers = nn.Sequential(children)

    def forward(self, x):
        y = self.layers(x)
        return F.global_avg_pool2d(y) if y.ndim == 4 else y


def split_base_head(model) -> Split:
    """Split ``model`` into a feature base and its head (see the module's docstring).

    Works for a model with a ``classifier`` / ``fc`` / ``head`` attribute (the base is
    every child registered before it, in order) and for an ``nn.Sequential`` (the head is
    its last child).  A model wrapped by :func:`with_input_adapter` is split inside
    (names keep their ``net.`` prefix); the adapter is not part of the base.
    """
    prefix = ""
    if {"net", "adapt"} <= {name for name, _ in model.named_children()}:
        model, prefix = model.net, "net."
    children = model.named_children()
    by_name = dict(children)
    if not children:
        raise ValueError(f"{type(model).__name__} has no sub-modules to split into base and head")
    head_name = next((n for n in HEAD_NAMES if n in by_name), None)
    if head_name is None:
        if not isinstance(model, nn.Sequential):
            raise ValueError(f"cannot find the head of {type(model).__name__}: expected an attribute named one of "
                             f"{HEAD_NAMES} or an nn.Sequential; its children are {[n for n, _ in children]}")
        head_name = children[-1][0]
    names = [n for n, _ in children]
    base_children = OrderedDict(children[:names.index(head_name)])
    if not base_children:
        raise ValueError(f"the head {head_name!r} of {type(model).__name__} is its first child: nothing to use as base")
    blocks = []
    for name, module in base_children.items():
        if name == "features" and isinstance(module, nn.Sequential):
            blocks += [(f"{prefix}features.{i}", m) for i, m in module.named_children()]
        else:
            blocks.append((f"{prefix}{name}", module))
    return Split(_Pooled(base_children), by_name[head_name], prefix + head_name, blocks)


def _param_prefixes(model, names):
    have = {n for n, _ in model.named_parameters()}
    return [name for name in names if any(h == name or h.startswith(name + ".") for h in have)]


def freeze_base(model) -> list:
    """Freeze every parameter of the base (the head stays trainable); returns the frozen names.

    The base's BatchNorms then use their running statistics in training too and leave them unchanged.
    """
    split = split_base_head(model)
    frozen = []
    for name in _param_prefixes(model, split.base_names):
        frozen += model.freeze(name)
    model.unfreeze(split.head_name)
    return frozen


def unfreeze_top(model, top_n: int, keep_bn_frozen: bool = True) -> list:
    """Make the last ``top_n`` blocks of the base trainable (by index among ``split.blocks`` that hold
    parameters); returns the names unfrozen.  ``keep_bn_frozen``: their BatchNorm ``gamma``/``beta`` stay
    frozen, so those layers keep normalising with the ImageNet running statistics."""
    split = split_base_head(model)
    blocks = [(n, m) for n, m in split.blocks if m.parameters()]
    if not 0 <= top_n <= len(blocks):
        raise ValueError(f"top_n must be in 0..{len(blocks)} (blocks with weights: "
                         f"{[n for n, _ in blocks]}), received {top_n}")
    names = []
    for name, module in blocks[len(blocks) - top_n:]:
        bn = {f"{name}.{sub}.{p}" if sub else f"{name}.{p}"
              for sub, m in module.named_modules() if isinstance(m, nn.BatchNorm2d) for p in ("gamma", "beta")}
        for pname in model.unfreeze(name):
            if keep_bn_frozen and pname in bn:
                model.freeze(pname)
            else:
                names.append(pname)
    return names


# --------------------------------------------------------------------------- inputs
def resize_for(model_input, images) -> np.ndarray:
    """Resize ``images`` ``(N, H, W, C)`` (uint8, or float in [0, 1]) to the model's input.

    ``model_input``: a side ``S`` (RGB ``S x S x 3``) or a shape ``(H, W, C)`` with ``C`` 1 or 3.
    Pillow bilinear on uint8 pixels; grayscale is repeated to 3 channels, RGB averaged to 1.
    Returns float32 in [0, 1], ``(N, H', W', C')``.
    """
    from PIL import Image

    shape = (int(model_input), int(model_input), 3) if np.isscalar(model_input) else tuple(model_input)
    H, W, C = shape
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"resize_for expects images (N, H, W, 1|3), received shape {images.shape}")
    images = to_uint8(images)
    out = np.empty((len(images), H, W, images.shape[-1]), np.uint8)
    for i, image in enumerate(images):
        if image.shape[:2] == (H, W):
            out[i] = image
            continue
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        resized = np.asarray(pil.resize((W, H), Image.BILINEAR))
        out[i] = resized.reshape(H, W, -1)
    if out.shape[-1] == 1 and C == 3:
        out = np.repeat(out, 3, axis=-1)
    elif out.shape[-1] == 3 and C == 1:
        out = np.rint(out.mean(axis=-1, keepdims=True)).astype(np.uint8)
    return to_float(out)


def normalize_input(x: np.ndarray) -> np.ndarray:
    """[0, 1] RGB -> EfficientNet-Lite's input ``(x * 255 - 127) / 128`` (as ``pretrained.preprocess``)."""
    from .models.pretrained import MEAN_RGB, STDDEV_RGB
    return ((np.asarray(x, np.float32) * 255.0 - np.float32(MEAN_RGB[0])) / np.float32(STDDEV_RGB[0])).astype(
        np.float32, copy=False)


class InputAdapter(nn.Module):
    """A layer without weights: float images in [0, 1] of any size and 1 or 3 channels ->
    ``(N, size, size, 3)`` normalised for the pretrained network (:func:`resize_for` + :func:`normalize_input`).
    Not differentiable with respect to its input (nothing before it learns)."""

    def __init__(self, size: int = DEFAULT_INPUT_SIZE):
        super().__init__()
        self.size = int(size)

    def forward(self, x):
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        return Tensor(normalize_input(resize_for(self.size, data)))

    def extra_repr(self):
        return f"size={self.size}"


def with_input_adapter(model, size: int = DEFAULT_INPUT_SIZE) -> nn.Sequential:
    """``Sequential(adapt=InputAdapter(size), net=model)``: the model then takes the data set's own images
    (so ``Trainer``, ``evaluate`` and ``predict`` work unchanged); parameter names get a ``net.`` prefix."""
    return nn.Sequential(OrderedDict(adapt=InputAdapter(size), net=model))


# --------------------------------------------------------------------------- features
def weights_digest(module) -> str:
    """SHA-256 of a module's parameters and buffers (names, shapes, dtypes and bytes)."""
    digest = hashlib.sha256()
    for name, value in module.state_dict().items():
        value = np.ascontiguousarray(value)
        digest.update(f"{name}{value.shape}{value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def feature_cache_key(weights_id: str, dataset, input_size) -> str:
    """The cache key: weights, data set name, its images and labels (content hash), and the input size."""
    digest = hashlib.sha256()
    digest.update(f"{weights_id}|{getattr(dataset, 'name', '')}|{np.shape(dataset.images)}|{input_size}".encode())
    digest.update(np.ascontiguousarray(dataset.images).tobytes())
    digest.update(np.ascontiguousarray(dataset.labels).tobytes())
    return digest.hexdigest()


def _cache_file(cache_path, key, dataset) -> Path | None:
    if cache_path is None:
        return None
    path = Path(cache_path)
    if path.suffix == ".npz":
        return path
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(getattr(dataset, "name", "data")))[:40]
    return path / f"{safe}-{key[:16]}.npz"


def extract_features(base, dataset, batch_size: int = 32, cache_path=None, input_size: int | None = None,
                     weights_id: str | None = None, progress: bool = False) -> tuple:
    """Pooled features of the frozen ``base`` for every image of ``dataset``: ``(features (N, D) float32, labels)``.

    The base runs once, in eval mode and without a graph.  ``input_size``: resize and normalise the images
    for the pretrained network first (:func:`resize_for`, :func:`normalize_input`); ``None`` feeds them as the
    ``DataLoader`` gives them (float in [0, 1]).  ``cache_path``: a folder (the file is named from the key) or
    an ``.npz`` file; the key (:func:`feature_cache_key`: ``weights_id``, by default the SHA-256 of the base's
    weights, + the data set + ``input_size``) is stored in the file, and a file with the same key is loaded
    instead of running the model.
    """
    from .data import DataLoader

    key = None
    if cache_path is not None:
        key = feature_cache_key(weights_id or weights_digest(base), dataset, input_size)
        path = _cache_file(cache_path, key, dataset)
        if path.is_file():
            with np.load(path) as cached:
                if str(cached["key"]) == key:
                    return cached["features"], cached["labels"]
    out, start = [], time.perf_counter()
    with base.evaluating(), no_grad():
        for i, (x, _) in enumerate(DataLoader(dataset, batch_size=batch_size, prefetch=0)):
            if input_size is not None:
                x = normalize_input(resize_for(input_size, x))
            y = base(Tensor(x)).data
            if y.ndim == 4:
                y = y.mean(axis=(1, 2))
            out.append(y.reshape(len(y), -1).astype(np.float32, copy=False))
            if progress:
                done = min((i + 1) * batch_size, len(dataset))
                print(f"\rfeatures: {done}/{len(dataset)} images "
                      f"({done / max(time.perf_counter() - start, 1e-9):.0f} img/s)", end="", flush=True)
    if progress:
        print()
    features = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    labels = np.asarray(dataset.labels, np.int64)
    if key is not None:
        def write(tmp):
            with open(tmp, "wb") as f:      # a file object: np.savez would add ".npz" to a name
                np.savez(f, features=features, labels=labels, key=np.array(key),
                         input_size=np.array(input_size or 0), dataset=np.array(str(getattr(dataset, "name", ""))))
        atomic_write(path, write)
    return features, labels


# --------------------------------------------------------------------------- head
class FeatureSet:
    """Feature vectors and their labels as a data set for :class:`strided.data.DataLoader`:
    batches ``(features (B, D) float32, labels (B,) int64)``."""

    def __init__(self, features, labels, classes=None, name: str = "features"):
        self.features = np.asarray(features, np.float32)
        self.labels = np.asarray(labels, np.int64)
        if self.features.ndim != 2 or len(self.features) != len(self.labels):
            raise ValueError(f"{name}: expected features (N, D) and labels (N,), received {self.features.shape} "
                             f"and {self.labels.shape}")
        self.classes = list(classes) if classes is not None else [str(i) for i in range(int(self.labels.max(
            initial=-1)) + 1)]
        self.name = name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.features[index], int(self.labels[index])

    def get_batch(self, indices):
        indices = np.asarray(indices, dtype=np.intp)
        return self.features[indices], self.labels[indices]


def train_head(features, labels, num_classes: int, epochs: int = 30, lr: float = 3e-3, batch_size: int = 64,
               weight_decay: float = 1e-4, val=None, seed: int = 0, head=None) -> tuple:
    """Train a new ``nn.Linear(D, num_classes)`` (or ``head``, any module on ``(N, D)``) on cached features
    with Adam and cross-entropy; returns ``(head, history)`` with one ``{epoch, loss, accuracy[, val_...]}``
    per epoch.  ``val``: ``(features, labels)`` scored after every epoch.  Fast: no image is touched.

    A :class:`strided.train.Trainer` run (no run directory) over a :class:`FeatureSet`, shuffled per epoch
    from ``seed``; the new Linear's weights are drawn from ``seed`` too (independent of the global generator).
    """
    from . import optim
    from .data import DataLoader
    from .train import Trainer

    train_set = FeatureSet(features, labels, name="train_head")
    rng = np.random.default_rng(seed)
    if head is None:
        head = nn.Linear(train_set.features.shape[1], num_classes)
        head.weight.data[...] = rng.normal(0, 0.01, head.weight.shape).astype(np.float32)
        head.bias.data[...] = 0
    opt = optim.Adam(head.parameters(trainable_only=True), lr, weight_decay=weight_decay)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed, prefetch=0)
    val_loader = None
    if val is not None:
        val_loader = DataLoader(FeatureSet(val[0], val[1], name="train_head:val"), batch_size=1024, prefetch=0)
    trainer = Trainer(head, opt, progress=False, verbose=False)
    history = trainer.fit(loader, epochs, val_loader)
    head.eval()
    return head, history


def fit_head_on_features(model, fit_set, epochs: int, val_set=None, *, input_size=None, cache_path=None,
                         batch_size: int = 64, seed: int = 0, optimizer=None, run_dir=None, config=None,
                         callbacks=(), monitor=None, progress: bool = False, verbose: bool | None = None,
                         feature_batch_size: int = 32, resume_from=None):
    """Train ``model``'s head on the pooled features of its frozen base; returns the
    :class:`strided.train.Trainer` that ran (``history``, ``epoch``, ``best_score``, ``stop``, ``stop_reason``).

    ``fit_set`` / ``val_set``: data sets of images (``images``, ``labels``, ``name``; ``val_set`` may be None or
    empty).  Their features come from :func:`extract_features` with ``input_size`` and ``cache_path`` (computed
    once, then loaded; keyed by the base's weights).  The head (``split_base_head(model).head``) then trains for
    ``epochs`` epochs on ``DataLoader(features, batch_size, shuffle=True, seed=seed)``.
    ``optimizer``: None (Adam, lr 1e-3, on the head's trainable weights) or ``optimizer(head,
    batches_per_epoch)`` returning an optimizer or ``(optimizer, schedule, schedule_per)``.
    ``run_dir``, ``config``, ``callbacks``, ``monitor``, ``progress``, ``verbose``: as for the Trainer, whose
    checkpoints hold the whole ``model`` (the head shares its parameters), so they load like any run's.
    ``resume_from``: a checkpoint of an interrupted head phase to continue.
    """
    from . import optim
    from .data import DataLoader
    from .train import Trainer

    split = split_base_head(model)
    weights_id = weights_digest(split.base)

    def features(dataset, tag):
        feats, labels = extract_features(split.base, dataset, batch_size=feature_batch_size, cache_path=cache_path,
                                         input_size=input_size, weights_id=weights_id, progress=progress)
        return FeatureSet(feats, labels, getattr(dataset, "classes", None),
                          f"{getattr(dataset, 'name', 'data')}:{tag}-features")

    loader = DataLoader(features(fit_set, "fit"), batch_size=batch_size, shuffle=True, seed=seed, prefetch=0)
    val_loader = None
    if val_set is not None and len(val_set):
        val_loader = DataLoader(features(val_set, "val"), batch_size=256, prefetch=0)
    head = split.head
    schedule, schedule_per = None, "epoch"
    if optimizer is None:
        opt = optim.Adam(head.parameters(trainable_only=True), 1e-3)
    else:
        made = optimizer(head, len(loader))
        opt, schedule, schedule_per = made if isinstance(made, tuple) else (made, None, "epoch")
    trainer = Trainer(head, opt, run_dir=run_dir, schedule=schedule, schedule_per=schedule_per,
                      callbacks=list(callbacks), config=config, progress=progress, verbose=verbose,
                      monitor=monitor, checkpoint_model=model)
    if resume_from is not None:
        trainer.resume(resume_from)
    trainer.fit(loader, epochs, val_loader)
    return trainer


def _last_linear(module):
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(module).__name__} holds no nn.Linear")
    return linears[-1]


def set_head(model, head) -> None:
    """Copy a Linear trained by :func:`train_head` into the last Linear of ``model``'s head."""
    target, source = _last_linear(split_base_head(model).head), _last_linear(head)
    if target.weight.shape != source.weight.shape:
        raise ValueError(f"the head's Linear has weight {source.weight.shape}, the model's {target.weight.shape}")
    target.weight.data[...] = source.weight.data
    if target.bias is not None and source.bias is not None:
        target.bias.data[...] = source.bias.data


# --------------------------------------------------------------------------- fine-tuning
def fine_tune(model, top_n: int, train_loader, epochs: int = 2, lr: float = 1e-4, val_loader=None,
              keep_bn_frozen: bool = True, run_dir=None, progress: bool = False) -> list:
    """Unfreeze the top ``top_n`` blocks of the base (:func:`unfreeze_top`) and train them with the head for
    ``epochs`` epochs with Adam at a small ``lr``; returns the history (:class:`strided.train.Trainer`).
    The model must take the loader's images (wrap it with :func:`with_input_adapter` for a pretrained one)."""
    from . import optim
    from .train import Trainer

    unfreeze_top(model, top_n, keep_bn_frozen=keep_bn_frozen)
    opt = optim.Adam(model.parameters(trainable_only=True), lr)
    trainer = Trainer(model, opt, run_dir=run_dir, progress=progress,
                      monitor="val_accuracy" if val_loader is not None else "accuracy")
    return trainer.fit(train_loader, epochs, val_loader)
