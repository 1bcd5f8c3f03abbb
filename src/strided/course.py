"""The course's step-by-step convolutional network, as plain loops over pixels.

This module is the *teaching reference* of ``strided``: the functions of the classic
CNN course assignment "Convolutional Model: step by step" (Andrew Ng, deeplearning.ai),
with the course's exact names and signatures and the course's NHWC layout:

* activations ``A`` have shape ``(m, n_H, n_W, n_C)`` (examples, height, width,
  channels);
* conv weights ``W`` have shape ``(f, f, n_C_prev, n_C)`` (HWIO) and biases ``b``
  have shape ``(1, 1, 1, n_C)`` as in the course (``(n_C,)`` is accepted too);
* ``hparameters`` is a dict: ``{"stride": s, "pad": p}`` for convolution,
  ``{"f": f, "stride": s}`` for pooling.

Output size of a convolution or pooling layer (course formula)::

    n_H = floor((n_H_prev + 2 * pad - f) / stride) + 1      (pad = 0 for pooling)

Clarity is preferred over speed: every function loops over examples, output pixels
and channels in Python and only the innermost ``f x f`` window is vectorised with
NumPy (``np.sum(a_slice * W)``).  The fast, vectorised engine
(:mod:`strided.functional`) is tested against these functions, and these functions
are themselves tested against PyTorch and against central finite differences.

Differences from the assignment's reference solution (both deliberate):

* ``conv_backward`` crops the padded gradient with ``pad:pad + n_H_prev`` instead of
  ``pad:-pad``, so it is right for every ``pad`` including ``pad = 0`` (where
  ``x[0:-0]`` would be empty).
* **Tie rule of max pooling.**  The course's ``create_mask_from_window`` returns
  ``x == np.max(x)``, which gives the full upstream gradient to *every* tied maximum
  (so the gradient is counted several times).  Here the mask marks **only the first
  maximum in row-major order** (``np.argmax``), which is what PyTorch's
  ``max_pool2d`` backward does: it routes the gradient to the single index it
  recorded in the forward pass, the first maximum it met scanning rows then columns.
  Without ties both rules agree.

Wrong ranks, mismatched shapes or channels and unknown modes raise ``ValueError``
with a message quoting the value received.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "create_mask_from_window",
    "distribute_value",
    "pool_forward",
    "pool_backward",
    "compute_content_cost",
    "gram_matrix",
    "compute_layer_style_cost",
    "compute_style_cost",
    "total_cost",
    "STYLE_LAYERS",
]

_POOL_MODES = ("max", "average")


# --------------------------------------------------------------------------- checks
def _check_rank(name, x, ndim, layout, func):
    """``x`` as an ndarray of ``ndim`` axes; the course's own wording (its tests quote it)."""
    x = np.asarray(x)
    if x.ndim != ndim:
        raise ValueError(
            f"{func}: {name} must be {ndim}-D {layout}; received {name} with shape "
            f"{x.shape} ({x.ndim}-D)"
        )
    return x


def _unpack_cache(cache, names: str, producer: str, func: str) -> tuple:
    """The tuple ``cache`` that ``producer`` returned, holding ``names`` (e.g. ``"A_prev, hparameters"``)."""
    try:
        values = tuple(cache)
        if len(values) != len(names.split(",")):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(
            f"{func}: cache must be the ({names}) tuple returned by "
            f"{producer}; received {type(cache).__name__}"
        ) from None
    return values


def _check_int(name, value, minimum, func):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"{func}: {name} must be an integer >= {minimum}; received {name}={value!r}"
        )
    return int(value)


def _get_hparam(hparameters, key, func):
    try:
        return hparameters[key]
    except (KeyError, TypeError):
        raise ValueError(
            f"{func}: hparameters must be a dict with key {key!r}; "
            f"received hparameters={hparameters!r}"
        ) from None


def _check_mode(mode, func):
    if mode not in _POOL_MODES:
        raise ValueError(
            f"{func}: mode must be 'max' or 'average'; received mode={mode!r}"
        )
    return mode


def _out_size(n_prev, f, pad, stride, func, what):
    n = (n_prev + 2 * pad - f) // stride + 1
    if n_prev + 2 * pad < f:
        raise ValueError(
            f"{func}: window f={f} does not fit the padded input: {what}={n_prev} "
            f"with pad={pad} gives {n_prev + 2 * pad} < f"
        )
    return n


def _bias_vector(b, n_C, func):
    """Return b as a flat ``(n_C,)`` vector; accepts (1, 1, 1, n_C) or (n_C,)."""
    b = np.asarray(b)
    if b.shape not in ((1, 1, 1, n_C), (n_C,)):
        raise ValueError(
            f"{func}: b must have shape (1, 1, 1, {n_C}) or ({n_C},) to match "
            f"W's n_C={n_C}; received b with shape {b.shape}"
        )
    return b.reshape(n_C)


# --------------------------------------------------------------------------- padding
def zero_pad(X, pad):
    """Pad the height and width of every image of ``X`` with zeros.

    Shapes: ``X`` is ``(m, n_H, n_W, n_C)``; the result is
    ``(m, n_H + 2*pad, n_W + 2*pad, n_C)`` with ``X`` in the centre::

        X_pad[:, pad:pad + n_H, pad:pad + n_W, :] = X,   zeros elsewhere

    Example::

        >>> zero_pad(np.ones((4, 3, 3, 2)), 3).shape
        (4, 9, 9, 2)
    """
    X = _check_rank("X", X, 4, "(m, n_H, n_W, n_C)", "zero_pad")
    pad = _check_int("pad", pad, 0, "zero_pad")
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)),
                  mode="constant", constant_values=0)


# --------------------------------------------------------------------------- convolution
def conv_single_step(a_slice_prev, W, b):
    """Apply one filter to one window: ``Z = sum(a_slice_prev * W) + b``.

    Shapes: ``a_slice_prev`` and ``W`` are both ``(f, f, n_C_prev)``; ``b`` is a
    scalar or any array of one element (the course passes ``(1, 1, 1)``).
    Returns a Python float.

    Example::

        >>> conv_single_step(np.ones((2, 2, 3)), 2 * np.ones((2, 2, 3)), 1.0)
        25.0
    """
    a_slice_prev = np.asarray(a_slice_prev)
    W = np.asarray(W)
    if a_slice_prev.shape != W.shape:
        raise ValueError(
            "conv_single_step: a_slice_prev and W must have the same shape "
            f"(f, f, n_C_prev); received a_slice_prev.shape={a_slice_prev.shape}, "
            f"W.shape={W.shape}"
        )
    b = np.asarray(b)
    if b.size != 1:
        raise ValueError(
            f"conv_single_step: b must hold a single number; received b with shape {b.shape}"
        )
    s = np.sum(a_slice_prev * W)           # element-wise product, summed over the window
    return float(s) + float(b.reshape(()))


def conv_forward(A_prev, W, b, hparameters):
    """Forward pass of a convolution layer (cross-correlation, no kernel flip).

    Shapes:
        A_prev: ``(m, n_H_prev, n_W_prev, n_C_prev)``
        W:      ``(f, f, n_C_prev, n_C)`` (HWIO; a rectangular ``(f_h, f_w, ...)``
                window works too)
        b:      ``(1, 1, 1, n_C)`` as in the course, or ``(n_C,)``
        hparameters: ``{"stride": s, "pad": p}``
    Returns ``(Z, cache)`` with ``Z`` of shape ``(m, n_H, n_W, n_C)``::

        n_H = floor((n_H_prev + 2p - f) / s) + 1,   n_W likewise
        Z[i, h, w, c] = sum(A_pad[i, h*s : h*s + f, w*s : w*s + f, :] * W[..., c]) + b[c]

    where ``A_pad = zero_pad(A_prev, p)``; ``cache = (A_prev, W, b, hparameters)``.

    Example::

        >>> A = np.random.randn(2, 5, 7, 4); W = np.random.randn(3, 3, 4, 8)
        >>> Z, cache = conv_forward(A, W, np.zeros((1, 1, 1, 8)), {"stride": 2, "pad": 1})
        >>> Z.shape
        (2, 3, 4, 8)
    """
    func = "conv_forward"
    A_prev = _check_rank("A_prev", A_prev, 4, "(m, n_H_prev, n_W_prev, n_C_prev)", func)
    W = _check_rank("W", W, 4, "(f, f, n_C_prev, n_C)", func)
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f_h, f_w, n_C_prev_W, n_C) = W.shape
    if n_C_prev_W != n_C_prev:
        raise ValueError(
            f"{func}: W expects n_C_prev={n_C_prev_W} input channels but A_prev has "
            f"{n_C_prev}; received W.shape={W.shape}, A_prev.shape={A_prev.shape}"
        )
    b_vec = _bias_vector(b, n_C, func)
    stride = _check_int("stride", _get_hparam(hparameters, "stride", func), 1, func)
    pad = _check_int("pad", _get_hparam(hparameters, "pad", func), 0, func)

    n_H = _out_size(n_H_prev, f_h, pad, stride, func, "n_H_prev")
    n_W = _out_size(n_W_prev, f_w, pad, stride, func, "n_W_prev")

    dtype = np.result_type(A_prev.dtype, W.dtype, np.float32)
    Z = np.zeros((m, n_H, n_W, n_C), dtype=dtype)
    A_prev_pad = zero_pad(A_prev, pad)

    for i in range(m):                               # loop over the batch of examples
        a_prev_pad = A_prev_pad[i]
        for h in range(n_H):                         # loop over output rows
            vert_start = h * stride
            vert_end = vert_start + f_h
            for w in range(n_W):                     # loop over output columns
                horiz_start = w * stride
                horiz_end = horiz_start + f_w
                a_slice_prev = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(n_C):                 # loop over filters (output channels)
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c], b_vec[c])

    cache = (A_prev, W, b, hparameters)
    return Z, cache


def conv_backward(dZ, cache):
    """Backward pass of :func:`conv_forward`.

    Shapes: ``dZ`` is ``(m, n_H, n_W, n_C)`` (gradient of the cost w.r.t. ``Z``);
    ``cache`` is the ``(A_prev, W, b, hparameters)`` returned by :func:`conv_forward`.
    Returns ``(dA_prev, dW, db)`` with the shapes of ``A_prev``, ``W`` and ``b``::

        dA_pad[i, h*s : h*s+f, w*s : w*s+f, :] += W[..., c] * dZ[i, h, w, c]
        dW[..., c]                             += a_slice   * dZ[i, h, w, c]
        db[c]                                  += dZ[i, h, w, c]

    summed over every ``i, h, w, c``; ``dA_prev`` is ``dA_pad`` without its border
    (``dA_pad[:, p:p + n_H_prev, p:p + n_W_prev, :]``, right for ``p = 0`` too).
    """
    func = "conv_backward"
    (A_prev, W, b, hparameters) = _unpack_cache(cache, "A_prev, W, b, hparameters", "conv_forward", func)
    A_prev = _check_rank("A_prev", A_prev, 4, "(m, n_H_prev, n_W_prev, n_C_prev)", func)
    W = _check_rank("W", W, 4, "(f, f, n_C_prev, n_C)", func)
    dZ = _check_rank("dZ", dZ, 4, "(m, n_H, n_W, n_C)", func)
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f_h, f_w, _, n_C) = W.shape
    b_shape = np.shape(b)
    _bias_vector(b, n_C, func)
    stride = _check_int("stride", _get_hparam(hparameters, "stride", func), 1, func)
    pad = _check_int("pad", _get_hparam(hparameters, "pad", func), 0, func)
    n_H = _out_size(n_H_prev, f_h, pad, stride, func, "n_H_prev")
    n_W = _out_size(n_W_prev, f_w, pad, stride, func, "n_W_prev")
    if dZ.shape != (m, n_H, n_W, n_C):
        raise ValueError(
            f"{func}: dZ must have the shape of Z, {(m, n_H, n_W, n_C)}; "
            f"received dZ with shape {dZ.shape}"
        )

    dtype = np.result_type(A_prev.dtype, W.dtype, dZ.dtype, np.float32)
    dA_prev = np.zeros(A_prev.shape, dtype=dtype)
    dW = np.zeros(W.shape, dtype=dtype)
    db = np.zeros((n_C,), dtype=dtype)

    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = zero_pad(dA_prev, pad)

    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        da_prev_pad = dA_prev_pad[i]                 # a view: updates land in dA_prev_pad
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f_h
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f_w
                a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(n_C):
                    g = dZ[i, h, w, c]
                    da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W[:, :, :, c] * g
                    dW[:, :, :, c] += a_slice * g
                    db[c] += g
        # Crop the zero border.  The course writes da_prev_pad[pad:-pad, pad:-pad, :],
        # which is empty for pad = 0; an explicit end index works for every pad.
        dA_prev[i, :, :, :] = da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]

    return dA_prev, dW, db.reshape(b_shape)


# --------------------------------------------------------------------------- pooling
def _pool_geometry(A_prev, hparameters, func):
    """``(f, stride, n_H, n_W)`` of a pooling layer, checked; ``n_H = floor((n_H_prev - f) / s) + 1``."""
    f = _check_int("f", _get_hparam(hparameters, "f", func), 1, func)
    stride = _check_int("stride", _get_hparam(hparameters, "stride", func), 1, func)
    n_H = _out_size(A_prev.shape[1], f, 0, stride, func, "n_H_prev")
    n_W = _out_size(A_prev.shape[2], f, 0, stride, func, "n_W_prev")
    return f, stride, n_H, n_W


def pool_forward(A_prev, hparameters, mode="max"):
    """Forward pass of a pooling layer (no padding, as in the course).

    Shapes: ``A_prev`` is ``(m, n_H_prev, n_W_prev, n_C)``; ``hparameters`` is
    ``{"f": f, "stride": s}``; ``mode`` is ``"max"`` or ``"average"``.
    Returns ``(A, cache)`` with ``A`` of shape ``(m, n_H, n_W, n_C)``::

        n_H = floor((n_H_prev - f) / s) + 1,   n_W likewise
        A[i, h, w, c] = max  (A_prev[i, h*s : h*s+f, w*s : w*s+f, c])   (mode="max")
                      = mean (A_prev[i, h*s : h*s+f, w*s : w*s+f, c])   (mode="average")

    and ``cache = (A_prev, hparameters)``.
    """
    func = "pool_forward"
    _check_mode(mode, func)
    A_prev = _check_rank("A_prev", A_prev, 4, "(m, n_H_prev, n_W_prev, n_C)", func)
    (m, n_H_prev, n_W_prev, n_C) = A_prev.shape
    f, stride, n_H, n_W = _pool_geometry(A_prev, hparameters, func)

    dtype = np.result_type(A_prev.dtype, np.float32)
    A = np.zeros((m, n_H, n_W, n_C), dtype=dtype)
    for i in range(m):
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                for c in range(n_C):
                    a_prev_slice = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, c]
                    if mode == "max":
                        A[i, h, w, c] = np.max(a_prev_slice)
                    else:
                        A[i, h, w, c] = np.mean(a_prev_slice)

    cache = (A_prev, hparameters)
    return A, cache


def create_mask_from_window(x):
    """Boolean mask of the maximum of the window ``x`` (used by max-pool backward).

    Shape: ``x`` is ``(f, f)`` (any shape works); the mask has the same shape.

    **Tie rule:** only the *first* maximum in row-major (C) order is marked::

        mask = zeros_like(x, bool);  mask.flat[argmax(x)] = True

    The course's ``x == np.max(x)`` marks every tied maximum, so each of them would
    receive the full upstream gradient.  Marking the first one matches PyTorch's
    ``max_pool2d`` backward, which sends the gradient to the one index it recorded
    (the first maximum met scanning rows, then columns).  A NaN counts as the maximum
    (``np.argmax`` picks the first NaN), as NaN propagates through PyTorch's max pool.

    Example::

        >>> create_mask_from_window(np.array([[1, 3], [3, 2]]))
        array([[False,  True],
               [False, False]])
    """
    x = np.asarray(x)
    if x.size == 0:
        raise ValueError(
            f"create_mask_from_window: x must not be empty; received x with shape {x.shape}"
        )
    mask = np.zeros(x.shape, dtype=bool)
    mask.flat[np.argmax(x)] = True
    return mask


def distribute_value(dz, shape):
    """Spread ``dz`` evenly over a window of ``shape = (n_H, n_W)`` (average-pool backward).

    Returns an array of that shape filled with ``dz / (n_H * n_W)``.

    Example::

        >>> distribute_value(2.0, (2, 2))
        array([[0.5, 0.5],
               [0.5, 0.5]])
    """
    try:
        (n_H, n_W) = shape
    except (TypeError, ValueError):
        raise ValueError(
            f"distribute_value: shape must be a pair (n_H, n_W); received shape={shape!r}"
        ) from None
    n_H = _check_int("n_H", n_H, 1, "distribute_value")
    n_W = _check_int("n_W", n_W, 1, "distribute_value")
    average = dz / (n_H * n_W)
    return np.ones((n_H, n_W)) * average


def pool_backward(dA, cache, mode="max"):
    """Backward pass of :func:`pool_forward`.

    Shapes: ``dA`` is ``(m, n_H, n_W, n_C)``; ``cache`` is the ``(A_prev, hparameters)``
    returned by :func:`pool_forward`. Returns ``dA_prev`` with the shape of ``A_prev``::

        max:      dA_prev[i, window, c] += mask(window) * dA[i, h, w, c]
        average:  dA_prev[i, window, c] += dA[i, h, w, c] / (f * f)

    with ``window = h*s : h*s+f, w*s : w*s+f`` and ``mask`` from
    :func:`create_mask_from_window` (first maximum only on ties).  Overlapping windows
    (``stride < f``) add up.
    """
    func = "pool_backward"
    _check_mode(mode, func)
    (A_prev, hparameters) = _unpack_cache(cache, "A_prev, hparameters", "pool_forward", func)
    A_prev = _check_rank("A_prev", A_prev, 4, "(m, n_H_prev, n_W_prev, n_C)", func)
    dA = _check_rank("dA", dA, 4, "(m, n_H, n_W, n_C)", func)
    (m, n_H_prev, n_W_prev, n_C) = A_prev.shape
    f, stride, n_H, n_W = _pool_geometry(A_prev, hparameters, func)
    if dA.shape != (m, n_H, n_W, n_C):
        raise ValueError(
            f"{func}: dA must have the shape of A, {(m, n_H, n_W, n_C)}; "
            f"received dA with shape {dA.shape}"
        )

    dtype = np.result_type(A_prev.dtype, dA.dtype, np.float32)
    dA_prev = np.zeros(A_prev.shape, dtype=dtype)
    for i in range(m):
        a_prev = A_prev[i]
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                for c in range(n_C):
                    if mode == "max":
                        a_prev_slice = a_prev[vert_start:vert_end, horiz_start:horiz_end, c]
                        mask = create_mask_from_window(a_prev_slice)
                        dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += (
                            mask * dA[i, h, w, c]
                        )
                    else:
                        da = dA[i, h, w, c]
                        dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += (
                            distribute_value(da, (f, f))
                        )
    return dA_prev


# =========================================================================== YOLO (week 3)
# The course's "Car detection with YOLO" functions, in NumPy instead of TensorFlow, with
# the course's names, argument order and defaults.  They are the readable reference for
# strided.detect (boxes.iou, nms.nms) and are tested against it.
__all__ += [
    "iou",
    "yolo_filter_boxes",
    "yolo_non_max_suppression",
    "yolo_boxes_to_corners",
    "scale_boxes",
    "yolo_eval",
]


def iou(box1, box2):
    """Intersection over union of two boxes given as ``(x1, y1, x2, y2)`` corners.

    The course's step-by-step version::

        xi1 = max(box1_x1, box2_x1); yi1 = max(box1_y1, box2_y1)
        xi2 = min(box1_x2, box2_x2); yi2 = min(box1_y2, box2_y2)
        inter_area = max(xi2 - xi1, 0) * max(yi2 - yi1, 0)
        union_area = box1_area + box2_area - inter_area
        iou = inter_area / union_area

    >>> iou((2, 1, 4, 3), (1, 2, 3, 4))        # the course's example: 1/7
    0.14285714285714285

    Touching boxes (a shared edge or vertex) give 0.  One deliberate difference: where
    the union is 0 (both boxes degenerate) the course divides by zero; here the result
    is 0.0.  Box areas are ``max(x2 - x1, 0) * max(y2 - y1, 0)``, as in
    :func:`strided.detect.boxes.box_area`.
    """
    func = "iou"
    for name, box in (("box1", box1), ("box2", box2)):
        if np.shape(box) != (4,):
            raise ValueError(f"{func}: {name} must be 4 numbers (x1, y1, x2, y2); "
                             f"received shape {np.shape(box)}")
    (box1_x1, box1_y1, box1_x2, box1_y2) = (float(v) for v in box1)
    (box2_x1, box2_y1, box2_x2, box2_y2) = (float(v) for v in box2)

    xi1 = max(box1_x1, box2_x1)
    yi1 = max(box1_y1, box2_y1)
    xi2 = min(box1_x2, box2_x2)
    yi2 = min(box1_y2, box2_y2)
    inter_width = max(xi2 - xi1, 0.0)
    inter_height = max(yi2 - yi1, 0.0)
    inter_area = inter_width * inter_height

    box1_area = max(box1_x2 - box1_x1, 0.0) * max(box1_y2 - box1_y1, 0.0)
    box2_area = max(box2_x2 - box2_x1, 0.0) * max(box2_y2 - box2_y1, 0.0)
    union_area = box1_area + box2_area - inter_area
    if union_area <= 0:
        return 0.0
    return inter_area / union_area


def yolo_filter_boxes(boxes, box_confidence, box_class_probs, threshold=.6):
    """Keep the boxes whose best class score is at least ``threshold``.

    Course shapes (19x19 grid, 5 anchors, 80 classes); any leading shape works::

        boxes            (19, 19, 5, 4)
        box_confidence   (19, 19, 5, 1)    p_c, the objectness
        box_class_probs  (19, 19, 5, 80)   c_1 .. c_80

    Steps, as in the course: ``box_scores = box_confidence * box_class_probs``;
    ``box_classes = argmax(box_scores, -1)``; ``box_class_scores = max(box_scores, -1)``;
    ``filtering_mask = box_class_scores >= threshold`` (kept when *equal* to the
    threshold, like the course); the mask is applied to the three arrays.

    Returns ``scores (K,)``, ``boxes (K, 4)``, ``classes (K,)`` (int64), in the row-major
    order of the grid (what ``tf.boolean_mask`` gives).
    """
    func = "yolo_filter_boxes"
    boxes = np.asarray(boxes)
    box_confidence = np.asarray(box_confidence)
    box_class_probs = np.asarray(box_class_probs)
    lead = box_class_probs.shape[:-1]
    if boxes.shape != lead + (4,) or box_confidence.shape != lead + (1,):
        raise ValueError(
            f"{func}: expected boxes {lead + (4,)} and box_confidence {lead + (1,)} to match "
            f"box_class_probs {box_class_probs.shape}; received boxes {boxes.shape} and "
            f"box_confidence {box_confidence.shape}")

    # Step 1: compute box scores
    box_scores = box_confidence * box_class_probs
    # Step 2: the best class of each box and its score
    box_classes = np.argmax(box_scores, axis=-1)
    box_class_scores = np.max(box_scores, axis=-1)
    # Step 3: the filtering mask
    filtering_mask = box_class_scores >= threshold
    # Step 4: apply the mask
    scores = box_class_scores[filtering_mask]
    boxes = boxes[filtering_mask]
    classes = box_classes[filtering_mask].astype(np.int64)
    return scores, boxes, classes


def yolo_non_max_suppression(scores, boxes, classes, max_boxes=10, iou_threshold=0.5):
    """Greedy non-max suppression over **all** boxes, ignoring classes, as the course does.

    The course calls ``tf.image.non_max_suppression(boxes, scores, max_boxes, iou_threshold)``
    on every box at once, so a box can be suppressed by a box of another class (per-class
    NMS is :func:`strided.detect.suppression.batched_nms`).  TensorFlow's rule is kept: the
    highest-scoring box left is selected, and every box whose IoU with a selected box is
    **greater than** ``iou_threshold`` is discarded, until ``max_boxes`` are selected.
    Equal scores keep their input order (TensorFlow leaves their order unspecified).

    The loop below is that definition written out with :func:`iou`.  ``boxes`` are corner
    boxes; IoU is the same for ``(x1, y1, x2, y2)`` and for the ``(y1, x1, y2, x2)`` order
    of :func:`yolo_boxes_to_corners`.  Returns ``scores, boxes, classes`` of the kept boxes,
    highest score first.
    """
    func = "yolo_non_max_suppression"
    scores = np.asarray(scores)
    boxes = np.asarray(boxes)
    classes = np.asarray(classes)
    if scores.ndim != 1 or boxes.shape != (scores.shape[0], 4) or classes.shape != scores.shape:
        raise ValueError(f"{func}: expected scores (K,), boxes (K, 4) and classes (K,); received "
                         f"scores {scores.shape}, boxes {boxes.shape}, classes {classes.shape}")
    _check_int("max_boxes", max_boxes, 0, func)

    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))   # stable: ties keep order
    nms_indices = []
    for i in order:
        if len(nms_indices) == max_boxes:
            break
        if all(iou(boxes[i], boxes[k]) <= iou_threshold for k in nms_indices):
            nms_indices.append(i)
    nms_indices = np.asarray(nms_indices, dtype=np.int64)

    scores = scores[nms_indices]
    boxes = boxes[nms_indices]
    classes = classes[nms_indices]
    return scores, boxes, classes


def yolo_boxes_to_corners(box_xy, box_wh):
    """Centre and size -> corners, in the course's **(y_min, x_min, y_max, x_max)** order.

    ``box_xy`` and ``box_wh`` are ``(..., 2)`` arrays ``(x, y)`` and ``(w, h)``; the result
    is ``(..., 4)``: ``box_mins = box_xy - box_wh / 2``, ``box_maxes = box_xy + box_wh / 2``,
    concatenated as ``[y_min, x_min, y_max, x_max]`` (the layout TensorFlow's
    ``non_max_suppression`` expects).
    """
    box_xy = np.asarray(box_xy)
    box_wh = np.asarray(box_wh)
    if box_xy.shape != box_wh.shape or box_xy.shape[-1:] != (2,):
        raise ValueError(f"yolo_boxes_to_corners: box_xy and box_wh must both be (..., 2); "
                         f"received {box_xy.shape} and {box_wh.shape}")
    box_mins = box_xy - (box_wh / 2.)
    box_maxes = box_xy + (box_wh / 2.)
    return np.concatenate([
        box_mins[..., 1:2],    # y_min
        box_mins[..., 0:1],    # x_min
        box_maxes[..., 1:2],   # y_max
        box_maxes[..., 0:1],   # x_max
    ], axis=-1)


def scale_boxes(boxes, image_shape):
    """Scale ``(y_min, x_min, y_max, x_max)`` boxes in ``[0, 1]`` to image pixels.

    ``image_shape = (height, width)``; each box is multiplied by
    ``[height, width, height, width]`` (the course's helper from ``yad2k``).
    """
    height = float(image_shape[0])
    width = float(image_shape[1])
    image_dims = np.array([height, width, height, width]).reshape(1, 4)
    return np.asarray(boxes) * image_dims


def yolo_eval(yolo_outputs, image_shape=(720., 1280.), max_boxes=10, score_threshold=.6, iou_threshold=.5):
    """The course's whole YOLO post-processing, from the head's outputs to the final boxes.

    ``yolo_outputs = (box_xy, box_wh, box_confidence, box_class_probs)`` with shapes
    ``(19, 19, 5, 2)``, ``(19, 19, 5, 2)``, ``(19, 19, 5, 1)``, ``(19, 19, 5, 80)`` (box
    centre and size relative to the image, in [0, 1]).  Steps, as in the course:

    1. ``boxes = yolo_boxes_to_corners(box_xy, box_wh)``   (y_min, x_min, y_max, x_max)
    2. ``scores, boxes, classes = yolo_filter_boxes(boxes, box_confidence, box_class_probs, score_threshold)``
    3. ``boxes = scale_boxes(boxes, image_shape)``           to pixels of a (height, width) image
    4. ``scores, boxes, classes = yolo_non_max_suppression(scores, boxes, classes, max_boxes, iou_threshold)``

    Returns ``scores (K,)``, ``boxes (K, 4)`` in pixels as ``(y_min, x_min, y_max, x_max)``,
    ``classes (K,)``, with ``K <= max_boxes``.
    """
    box_xy, box_wh, box_confidence, box_class_probs = yolo_outputs
    boxes = yolo_boxes_to_corners(box_xy, box_wh)
    scores, boxes, classes = yolo_filter_boxes(boxes, box_confidence, box_class_probs, score_threshold)
    boxes = scale_boxes(boxes, image_shape)
    scores, boxes, classes = yolo_non_max_suppression(scores, boxes, classes, max_boxes, iou_threshold)
    return scores, boxes, classes


# --------------------------------------------------------------------------- neural style transfer
# "Art Generation with Neural Style Transfer" (week 4): the costs as the assignment writes them, with
# plain NumPy loops.  strided.style computes the same numbers on tensors (tested together).
STYLE_LAYERS = [("block1_conv1", 0.2), ("block2_conv1", 0.2), ("block3_conv1", 0.2), ("block4_conv1", 0.2),
                ("block5_conv1", 0.2)]


def compute_content_cost(a_C, a_G):
    """J_content = 1 / (4 n_H n_W n_C) * sum (a_C - a_G)^2, ``a_C``, ``a_G`` ``(1, n_H, n_W, n_C)``.

    As in the TF2 assignment, ``a_C`` / ``a_G`` may also be the lists of layer outputs
    (``content_output``, ``generated_output``) whose last entry is the content layer.
    """
    if isinstance(a_C, (list, tuple)):
        a_C, a_G = a_C[-1], a_G[-1]
    a_C = _check_rank("a_C", a_C, 4, "(m, n_H, n_W, n_C)", "compute_content_cost").astype(np.float64)
    a_G = _check_rank("a_G", a_G, 4, "(m, n_H, n_W, n_C)", "compute_content_cost").astype(np.float64)
    m, n_H, n_W, n_C = a_G.shape
    total = 0.0
    for h in range(n_H):
        for w in range(n_W):
            diff = a_C[:, h, w, :] - a_G[:, h, w, :]
            total += float(np.sum(diff * diff))
    return total / (4 * n_H * n_W * n_C)


def gram_matrix(A):
    """GA = A A^T for ``A`` ``(n_C, n_H * n_W)`` (the course's unrolled activations): ``(n_C, n_C)``."""
    A = _check_rank("A", A, 2, "(n_C, n_H*n_W)", "gram_matrix").astype(np.float64)
    n_C = A.shape[0]
    GA = np.zeros((n_C, n_C))
    for i in range(n_C):
        for j in range(n_C):
            GA[i, j] = float(np.sum(A[i] * A[j]))
    return GA


def compute_layer_style_cost(a_S, a_G):
    """J_style_layer = 1 / (4 n_C^2 (n_H n_W)^2) * sum (G_S - G_G)^2, ``a_S``, ``a_G`` ``(1, n_H, n_W, n_C)``."""
    a_S = _check_rank("a_S", a_S, 4, "(1, n_H, n_W, n_C)", "compute_layer_style_cost")
    a_G = _check_rank("a_G", a_G, 4, "(1, n_H, n_W, n_C)", "compute_layer_style_cost")
    m, n_H, n_W, n_C = a_G.shape
    a_S = a_S.reshape(-1, n_C).T          # (n_C, n_H * n_W), as the assignment unrolls it
    a_G = a_G.reshape(-1, n_C).T
    GS, GG = gram_matrix(a_S), gram_matrix(a_G)
    return float(np.sum((GS - GG) ** 2)) / (4 * n_C ** 2 * (n_H * n_W) ** 2)


def compute_style_cost(style_image_output, generated_image_output, STYLE_LAYERS=STYLE_LAYERS):
    """J_style = sum_l lambda_l J_style_layer(l); the outputs are lists of layer activations, one per
    entry of ``STYLE_LAYERS`` followed by the content layer's (dropped, as in the assignment)."""
    J_style = 0.0
    a_S = style_image_output[:-1]
    a_G = generated_image_output[:-1]
    for i, weight in zip(range(len(a_S)), STYLE_LAYERS):
        J_style += weight[1] * compute_layer_style_cost(a_S[i], a_G[i])
    return J_style


def total_cost(J_content, J_style, alpha=10, beta=40):
    """J = alpha * J_content + beta * J_style."""
    return alpha * J_content + beta * J_style
