"""Classification with localisation and landmarks: the target vector, two losses, a head, metrics.

One vector per image, the model's output and the target in the same layout
(``C`` classes, ``K`` landmarks, sizes relative to the image, ``x`` right, ``y`` down)::

    [pc, bx, by, bh, bw, c1 .. cC, x1, y1, .. xK, yK]          length 5 + C + 2K

``pc`` = 1 if there is an object; ``(bx, by)`` its box centre, ``bh, bw`` its height and
width (the course's order); ``c`` one-hot; then the landmark points.  With ``K = 0`` it
is exactly the course's ``y``.  :func:`strided.data.scenes.make_localization` makes such
targets (``LocalizationSet.targets()``).

Losses (each ``loss(outputs, targets) -> scalar Tensor``, the mean over the batch):

* :func:`course_loss` -- the course's squared error on the raw outputs::

      L = mean_n [ pc_n * sum_j (yhat_nj - y_nj)^2 + (1 - pc_n) * (yhat_n0 - y_n0)^2 ]

  all entries count when there is an object, only ``pc`` when there is none.
* :func:`localization_loss` -- what people use: output 0 is a *logit* for ``pc`` and the
  class entries are *logits*::

      L = w_obj * mean_n BCE(yhat_n0, pc_n)
        + [ w_cls * sum_n pc_n CE(yhat_n,c, class_n)
          + w_box * sum_n pc_n sum_{4 box entries} rho(yhat - y)
          + w_lmk * sum_n pc_n sum_{2K landmark entries} rho(yhat - y) ] / max(1, sum_n pc_n)

  with ``rho`` the smooth L1 (Huber) loss ``0.5 d^2 / beta if |d| < beta else |d| - beta/2``
  or the squared error ``d^2`` (``box_loss="mse"``).  Nothing but ``pc`` is learnt from
  images without an object.

:func:`decode` turns outputs into scores, classes, ``xyxy`` pixel boxes and landmark
pixels; :class:`LocalizationMetrics` (``update(outputs, targets)`` / ``compute()``)
reports presence accuracy, class accuracy, the rate of boxes with IoU > 0.5 and the mean
landmark error in pixels.

>>> model = localization_net(num_classes=10, num_landmarks=4, input_size=64)
>>> out = model(x)                                   # (N, 5 + 10 + 8)
>>> loss = localization_loss(out, targets, num_classes=10, num_landmarks=4)
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..errors import StridedError
from ..tensor import Tensor, as_array, where
from .boxes import cxcywh_to_xyxy, paired_iou

__all__ = ["LocalizationError", "target_size", "split_vector", "course_loss", "localization_loss",
           "CourseLoss", "LocalizationLoss", "smooth_l1", "LocalizationHead", "localization_net",
           "decode", "LocalizationMetrics"]


class LocalizationError(StridedError, ValueError):
    """Outputs or targets of the wrong shape, or a bad setting (the message names it)."""


def target_size(num_classes: int, num_landmarks: int = 0) -> int:
    """Length of one vector: ``5 + num_classes + 2 * num_landmarks``."""
    return 5 + num_classes + 2 * num_landmarks


def split_vector(v, num_classes: int, num_landmarks: int = 0) -> dict:
    """Slices of ``(N, 5 + C + 2K)`` vectors (Tensors or arrays): ``pc (N,)``, ``box (N, 4)``
    ``[bx, by, bh, bw]``, ``classes (N, C)``, ``landmarks (N, 2K)``."""
    C = num_classes
    return {"pc": v[:, 0], "box": v[:, 1:5], "classes": v[:, 5:5 + C],
            "landmarks": v[:, 5 + C:5 + C + 2 * num_landmarks]}


def _check_counts(num_classes, num_landmarks) -> None:
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise LocalizationError(f"num_classes must be an int >= 1, received num_classes={num_classes!r}")
    if not isinstance(num_landmarks, (int, np.integer)) or num_landmarks < 0:
        raise LocalizationError(f"num_landmarks must be an int >= 0, received "
                                f"num_landmarks={num_landmarks!r}")


def _check(outputs, targets, num_classes, num_landmarks):
    _check_counts(num_classes, num_landmarks)
    D = target_size(num_classes, num_landmarks)
    if not isinstance(outputs, Tensor):
        outputs = Tensor(outputs)
    targets = np.asarray(as_array(targets))
    if outputs.ndim != 2 or outputs.shape[1] != D:
        raise LocalizationError(f"outputs must be (N, 5 + C + 2K) = (N, {D}) for C={num_classes}, "
                                f"K={num_landmarks}, received shape {tuple(outputs.shape)}")
    if targets.shape != tuple(outputs.shape):
        raise LocalizationError(f"targets must have the outputs' shape {tuple(outputs.shape)}, "
                                f"received shape {targets.shape}")
    pc = targets[:, 0]
    if not np.all((pc == 0) | (pc == 1)):
        bad = pc[(pc != 0) & (pc != 1)][0]
        raise LocalizationError(f"targets[:, 0] (pc) must be 0 or 1, received {bad!r}")
    return outputs, targets.astype(outputs.dtype, copy=False)


# =========================================================================== losses
def course_loss(outputs, targets, num_classes: int, num_landmarks: int = 0) -> Tensor:
    """The course's loss: ``mean_n [pc_n * sum_j (yhat - y)^2 + (1 - pc_n) (yhat_0 - y_0)^2]``.

    ``outputs`` (Tensor) and ``targets`` ``(N, 5 + C + 2K)``; raw outputs, no activation.
    """
    outputs, targets = _check(outputs, targets, num_classes, num_landmarks)
    pc = targets[:, 0]
    diff = outputs - targets
    squared = diff * diff
    per_image = squared.sum(axis=1) * pc + squared[:, 0] * (1 - pc)
    return per_image.mean()


def smooth_l1(diff: Tensor, beta: float) -> Tensor:
    """Elementwise Huber / smooth L1: ``0.5 d^2 / beta`` if ``|d| < beta`` else ``|d| - beta / 2``
    (``beta = 0``: ``|d|``)."""
    magnitude = diff.abs()
    if beta == 0:
        return magnitude
    return where(magnitude.data < beta, diff * diff * (0.5 / beta), magnitude - 0.5 * beta)


def localization_loss(outputs, targets, num_classes: int, num_landmarks: int = 0, *,
                      box_loss: str = "smooth_l1", beta: float = 0.05, w_obj: float = 1.0,
                      w_cls: float = 1.0, w_box: float = 1.0, w_landmarks: float = 1.0,
                      parts: dict | None = None) -> Tensor:
    """BCE on ``pc`` + (cross-entropy on the classes + box and landmark regression) on the
    images with an object; see the module docstring for the formula.

    ``box_loss``: ``"smooth_l1"`` (with ``beta``, in units of the image size) or ``"mse"``;
    it is used for the landmarks too.  ``parts``, if given a dict, receives the four terms
    (floats, before weighting) for logging.
    """
    if box_loss not in ("smooth_l1", "mse"):
        raise LocalizationError(f"box_loss must be 'smooth_l1' or 'mse', received box_loss={box_loss!r}")
    if beta < 0:
        raise LocalizationError(f"beta must be >= 0, received beta={beta!r}")
    outputs, targets = _check(outputs, targets, num_classes, num_landmarks)
    out = split_vector(outputs, num_classes, num_landmarks)
    tgt = split_vector(targets, num_classes, num_landmarks)
    pc = tgt["pc"]
    positives = max(1.0, float(pc.sum()))

    objectness = F.binary_cross_entropy_with_logits(out["pc"], pc)
    log_p = F.log_softmax(out["classes"], axis=1)
    classes = -(log_p * (tgt["classes"] * pc[:, None])).sum() / positives

    def regression(pred, target):
        if pred.shape[1] == 0:
            return None
        d = pred - target
        rho = smooth_l1(d, beta) if box_loss == "smooth_l1" else d * d
        return (rho * pc[:, None]).sum() / positives

    box = regression(out["box"], tgt["box"])
    landmarks = regression(out["landmarks"], tgt["landmarks"])
    total = objectness * w_obj + classes * w_cls + box * w_box
    if landmarks is not None:
        total = total + landmarks * w_landmarks
    if parts is not None:
        parts.update(objectness=float(objectness.data), classes=float(classes.data),
                     box=float(box.data), landmarks=0.0 if landmarks is None else float(landmarks.data))
    return total


class CourseLoss:
    """``loss_fn(outputs, targets)`` for the Trainer: :func:`course_loss` with fixed ``C, K``."""

    def __init__(self, num_classes: int, num_landmarks: int = 0):
        self.num_classes, self.num_landmarks = num_classes, num_landmarks

    def __call__(self, outputs, targets) -> Tensor:
        return course_loss(outputs, targets, self.num_classes, self.num_landmarks)

    def __repr__(self):
        return f"CourseLoss(num_classes={self.num_classes}, num_landmarks={self.num_landmarks})"


class LocalizationLoss:
    """``loss_fn(outputs, targets)`` for the Trainer: :func:`localization_loss` with fixed
    settings; ``self.parts`` holds the last call's four terms."""

    def __init__(self, num_classes: int, num_landmarks: int = 0, **settings):
        self.num_classes, self.num_landmarks, self.settings = num_classes, num_landmarks, settings
        self.parts: dict = {}

    def __call__(self, outputs, targets) -> Tensor:
        return localization_loss(outputs, targets, self.num_classes, self.num_landmarks,
                                 parts=self.parts, **self.settings)

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self.settings.items())
        return f"LocalizationLoss(num_classes={self.num_classes}, num_landmarks={self.num_landmarks}{extra})"


# =========================================================================== model
class LocalizationHead(nn.Module):
    """One dense layer ``(N, in_features) -> (N, 5 + C + 2K)`` in the vector layout above:
    ``pc`` (a logit), box ``[bx, by, bh, bw]``, class logits, ``K`` landmark ``(x, y)``.

    The box and landmark biases start at the image centre / half size (0.5) and the
    weights at a tenth of their usual (Glorot) size, so the first predictions are
    sensible and the first regression gradients do not swamp the features (without it,
    training on the digit localisation set collapsed to constant outputs).
    """

    def __init__(self, in_features, num_classes: int, num_landmarks: int = 4):
        super().__init__()
        _check_counts(num_classes, num_landmarks)
        self.num_classes, self.num_landmarks = int(num_classes), int(num_landmarks)
        self.linear = nn.Linear(in_features, target_size(num_classes, num_landmarks))
        if self.linear.weight is not None:
            self._init_bias()

    def _init_bias(self):
        self.linear.weight.data *= 0.1
        if self.linear.bias is None:
            return
        bias = self.linear.bias.data
        bias[1:5] = 0.5
        bias[5 + self.num_classes:] = 0.5

    def forward(self, x):
        fresh = self.linear.weight is None
        y = self.linear(x)
        if fresh:
            self._init_bias()
            y = self.linear(x)
        return y

    def extra_repr(self):
        return f"num_classes={self.num_classes}, num_landmarks={self.num_landmarks}"


class LocalizationNet(nn.Module):
    """A small CNN (``features``) + :class:`LocalizationHead`: NHWC images -> vectors."""

    def __init__(self, features: nn.Module, head: LocalizationHead, input_size: int):
        super().__init__()
        self.features, self.head = features, head
        self.input_size = input_size
        self.num_classes, self.num_landmarks = head.num_classes, head.num_landmarks

    def forward(self, x):
        return self.head(self.features(x))


def localization_net(num_classes: int = 10, num_landmarks: int = 4, input_size: int = 64,
                     in_channels: int = 3, width: int = 16, hidden: int = 128) -> LocalizationNet:
    """Four blocks ``conv 3x3 -> batch norm -> ReLU -> max pool 2`` (``width``, ``2 width``,
    ``4 width``, ``4 width`` channels), flatten, dense ``hidden`` + ReLU, then the head.

    ``input_size`` must be a multiple of 16 (the feature map is ``input_size / 16``).
    """
    if not isinstance(input_size, (int, np.integer)) or input_size < 16 or input_size % 16:
        raise LocalizationError(f"input_size must be a multiple of 16, received input_size={input_size!r}")
    channels = [in_channels, width, 2 * width, 4 * width, 4 * width]
    layers = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(), nn.MaxPool2d(2)]
    side = input_size // 16
    layers += [nn.Flatten(), nn.Linear(side * side * channels[-1], hidden), nn.ReLU()]
    return LocalizationNet(nn.Sequential(*layers), LocalizationHead(hidden, num_classes, num_landmarks),
                           input_size)


# =========================================================================== decoding and metrics
def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def decode(outputs, num_classes: int, num_landmarks: int = 0, image_size: float = 1.0,
           logits: bool = True) -> dict:
    """Outputs ``(N, 5 + C + 2K)`` -> ``score (N,)``, ``label (N,)``, ``boxes (N, 4)`` xyxy
    and ``landmarks (N, K, 2)``, both in pixels of an ``image_size`` image.

    ``logits=True`` (a model trained with :func:`localization_loss`): score =
    ``sigmoid(output 0)``; ``False`` (trained with :func:`course_loss`): score = output 0.
    The label is the arg-max of the class entries either way.
    """
    v = np.asarray(as_array(outputs), dtype=np.float64)
    parts = split_vector(v, num_classes, num_landmarks)
    score = _sigmoid(parts["pc"]) if logits else parts["pc"]
    bx, by, bh, bw = parts["box"].T
    boxes = cxcywh_to_xyxy(np.stack([bx, by, bw, bh], axis=1)) * image_size
    return {"score": score, "label": parts["classes"].argmax(axis=1),
            "boxes": boxes, "landmarks": parts["landmarks"].reshape(len(v), -1, 2) * image_size}


class LocalizationMetrics:
    """Accumulates, over ``update(outputs, targets)`` calls (vectors as above):

    * ``presence_accuracy``: (score > ``threshold``) == pc, over all images;
    * ``class_accuracy``: arg-max class == true class, over images with an object;
    * ``iou50_rate``: IoU(predicted box, true box) > 0.5, over images with an object;
      ``mean_iou`` too;
    * ``landmark_error_px``: mean Euclidean distance between predicted and true landmarks
      in pixels of an ``image_size`` image, over images with an object (and landmarks).

    ``compute()`` returns these as floats (NaN where there was nothing to count);
    ``reset()`` starts over.
    """

    def __init__(self, num_classes: int, num_landmarks: int = 0, image_size: float = 64.0,
                 logits: bool = True, threshold: float = 0.5):
        self.num_classes, self.num_landmarks = num_classes, num_landmarks
        self.image_size, self.logits, self.threshold = image_size, logits, threshold
        self.reset()

    def reset(self) -> None:
        self.images = self.positives = 0
        self.presence_correct = self.class_correct = self.iou50 = 0
        self.iou_sum = self.landmark_error_sum = 0.0
        self.landmark_count = 0

    def update(self, outputs, targets) -> None:
        outputs = np.asarray(as_array(outputs), dtype=np.float64)
        targets = np.asarray(as_array(targets), dtype=np.float64)
        D = target_size(self.num_classes, self.num_landmarks)
        if outputs.ndim != 2 or outputs.shape[1] != D or targets.shape != outputs.shape:
            raise LocalizationError(f"outputs and targets must both be (N, {D}), received "
                                    f"{outputs.shape} and {targets.shape}")
        pred = decode(outputs, self.num_classes, self.num_landmarks, self.image_size, self.logits)
        true = decode(targets, self.num_classes, self.num_landmarks, self.image_size, logits=False)
        has = targets[:, 0] == 1
        self.images += len(targets)
        self.presence_correct += int(((pred["score"] > self.threshold) == has).sum())
        self.positives += int(has.sum())
        self.class_correct += int((pred["label"][has] == true["label"][has]).sum())
        ious = paired_iou(pred["boxes"][has], true["boxes"][has])
        self.iou50 += int((ious > 0.5).sum())
        self.iou_sum += float(ious.sum())
        if self.num_landmarks:
            err = np.linalg.norm(pred["landmarks"][has] - true["landmarks"][has], axis=-1)
            self.landmark_error_sum += float(err.sum())
            self.landmark_count += int(err.size)

    def compute(self) -> dict:
        def ratio(a, b):
            return float(a / b) if b else float("nan")
        return {"presence_accuracy": ratio(self.presence_correct, self.images),
                "class_accuracy": ratio(self.class_correct, self.positives),
                "iou50_rate": ratio(self.iou50, self.positives),
                "mean_iou": ratio(self.iou_sum, self.positives),
                "landmark_error_px": ratio(self.landmark_error_sum, self.landmark_count)}
