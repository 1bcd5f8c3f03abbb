"""darknet ``.cfg`` + ``.weights`` files (YOLOv2, YOLOv3, their tiny versions) as a strided module.

:func:`read_darknet` parses a darknet network description and (optionally) its weights
file and returns a :class:`DarknetNet`: its ``forward`` takes NHWC float images in
``[0, 1]`` (RGB, ``(N, H, W, 3)``, H and W usually the ``[net]`` size) and returns the
**raw** output of the layer feeding each ``[region]`` / ``[yolo]`` head, as a list of NHWC
tensors ``(N, S_h, S_w, anchors * (5 + classes))``; channel ``a * (5 + classes) + e`` holds
entry ``e`` (``tx, ty, tw, th, objectness, class scores...``) of anchor ``a``, as in
darknet.  ``net.heads`` describes each head (:class:`DarknetHead`); decoding into boxes is
:mod:`strided.detect.decode`.

The cfg format (darknet ``parser.c``): ``[section]`` lines open a layer, ``key=value``
lines set its options (darknet removes every blank, so ``anchors = 1, 2`` is fine),
lines starting with ``#`` or ``;`` are comments.  The first section is ``[net]`` (input
``width``, ``height``, ``channels``); each later section is one layer, numbered from 0, and
``route``/``shortcut`` refer to layers by that number (negative: relative to the layer itself).

Layers (as darknet computes them):

* ``[convolutional]`` ``filters, size, stride, pad`` (``pad=1``: ``size // 2`` on every
  side, else ``padding``), ``groups``, ``batch_normalize``, ``activation``.  With batch
  normalisation darknet computes ``scales * (z - rolling_mean) / (sqrt(rolling_var) + 1e-6)
  + biases`` (note the ``+ 1e-6`` outside the square root), else ``z + biases``.
* ``[maxpool]`` ``size, stride`` and ``padding`` (default ``size - 1``): the output is
  ``(H + padding - size) // stride + 1``, the window starts ``padding // 2`` pixels before
  the image, and pixels outside the image never win.  ``size=2, stride=1`` (YOLOv3-tiny)
  keeps the size and looks one pixel to the right/below; ``size=2, stride=2`` on an odd
  size rounds up (13 -> 7).
* ``[route] layers=a, b, ...``: the outputs of those layers joined along channels.
* ``[reorg] stride``: darknet's own reorg (:func:`strided.functional.resample.reorg`).
* ``[upsample] stride, scale``: nearest upsampling.
* ``[shortcut] from, activation``: ``activation(x + output of layer from)`` (same shapes).
* ``[region]`` / ``[yolo]``: heads; the network returns their *input* unchanged.

Activations: ``linear``, ``leaky`` (slope 0.1), ``logistic``, ``relu``, ``tanh``.

Weights file (little-endian): ``int32 major, minor, revision``; then the number of images
seen as ``int64`` when ``major * 10 + minor >= 2 and major < 1000 and minor < 1000``, else
``int32``; then, for every convolutional layer in order, ``float32`` biases ``(filters,)``,
if batch-normalised scales, rolling means and rolling variances ``(filters,)`` each, then
the kernel ``(filters, in_channels // groups, size, size)`` (OIHW; strided keeps HWIO).
:func:`write_darknet_weights` writes the same format.

>>> net = read_darknet("/usr/share/darknet/cfg/yolov3-tiny.cfg", "yolov3-tiny.weights")
>>> raw = net(images)               # list of (N, 13, 13, 255) and (N, 26, 26, 255)
>>> net.heads[0].anchors, net.heads[0].mask, net.input_size
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import functional as F
from ..fileio import atomic_write
from ..functional.resample import reorg, upsample
from ..nn.module import Module, Parameter
from ..tensor import Tensor, no_grad
from .errors import ModelFileError

__all__ = ["read_darknet", "read_darknet_cfg", "build_darknet", "load_darknet_weights", "write_darknet_weights",
           "DarknetNet", "DarknetHead",
           "CfgSection", "SUPPORTED_LAYERS"]

#: section names darknet accepts for each layer type strided implements
SUPPORTED_LAYERS = {"convolutional": "convolutional", "conv": "convolutional", "maxpool": "maxpool",
                    "max": "maxpool", "route": "route", "reorg": "reorg", "upsample": "upsample",
                    "shortcut": "shortcut", "region": "region", "yolo": "yolo"}
_ACTIVATIONS = ("linear", "leaky", "logistic", "relu", "tanh")
_BN_EPS = 1e-6  # darknet: (x - mean) / (sqrt(var) + .000001f)


# --------------------------------------------------------------------------- cfg text
@dataclass
class CfgSection:
    """One ``[section]`` of a cfg file: its type, options (strings) and line number."""
    type: str
    line: int
    options: dict = field(default_factory=dict)
    path: str = ""

    def _where(self):
        return f"{self.path}, line {self.line} ([{self.type}])"

    def get(self, key, default, kind=int):
        if key not in self.options:
            return default
        text = self.options[key]
        try:
            return kind(text) if kind is not int else int(float(text)) if "." in text else int(text)
        except ValueError:
            raise ModelFileError(f"{self._where()}: option {key}={text!r} is not a valid "
                                 f"{'integer' if kind is int else 'number'}") from None

    def get_list(self, key, kind=float):
        text = self.options.get(key, "")
        try:
            return [kind(v) for v in text.split(",") if v != ""]
        except ValueError:
            raise ModelFileError(f"{self._where()}: option {key}={text!r} is not a comma-separated "
                                 f"list of numbers") from None


def read_darknet_cfg(path) -> list:
    """Parse a darknet cfg file into a list of :class:`CfgSection` (the ``[net]`` one first)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such darknet cfg file")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the cfg file ({e})") from None
    sections = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = "".join(raw.split())  # darknet strips every blank, inside the line too
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]"):
                raise ModelFileError(f"{path}, line {number}: section header {raw.strip()!r} has no closing ']'")
            sections.append(CfgSection(line[1:-1].lower(), number, {}, str(path)))
            continue
        if not sections:
            raise ModelFileError(f"{path}, line {number}: option {raw.strip()!r} before the first [section]")
        if "=" not in line:
            raise ModelFileError(f"{path}, line {number}: expected key=value, received {raw.strip()!r}")
        key, value = line.split("=", 1)
        sections[-1].options[key] = value
    if not sections or sections[0].type not in ("net", "network"):
        raise ModelFileError(f"{path}: a darknet cfg starts with a [net] section, "
                             f"found {('[' + sections[0].type + ']') if sections else 'no section'}")
    return sections


# --------------------------------------------------------------------------- layers
def _activate(x, name):
    if name == "linear":
        return x
    if name == "leaky":
        return F.leaky_relu(x, 0.1)
    if name == "logistic":
        return F.sigmoid(x)
    if name == "relu":
        return F.relu(x)
    return F.tanh(x)


class DarknetConv(Module):
    """darknet ``[convolutional]``: conv (HWIO ``weight``), optional frozen batch norm, activation.

    Batch norm uses the stored statistics (inference): ``y = scales * (z - rolling_mean) /
    (sqrt(rolling_variance) + 1e-6) + biases``, folded into the kernel and bias at run time
    (gradients still reach ``weight``, ``biases`` and ``scales``).
    """

    def __init__(self, in_channels, filters, size, stride, padding, groups, batch_normalize, activation,
                 init: bool = True):
        super().__init__()
        self.in_channels, self.filters, self.size = in_channels, filters, size
        self.stride, self.padding, self.groups = stride, padding, groups
        self.batch_normalize, self.activation = bool(batch_normalize), activation
        shape = (size, size, in_channels // groups, filters)
        if init:  # He-normal from a fixed seed, so a cfg alone gives a reproducible network
            fan_in = size * size * in_channels // groups
            std = np.float32(np.sqrt(2.0 / fan_in))
            weight = np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * std
        else:     # a weights file fills it next
            weight = np.zeros(shape, np.float32)
        self.weight = Parameter(weight)
        self.biases = Parameter(np.zeros(filters, np.float32))
        if self.batch_normalize:
            self.scales = Parameter(np.ones(filters, np.float32))
            self.register_buffer("rolling_mean", np.zeros(filters, np.float32))
            self.register_buffer("rolling_variance", np.ones(filters, np.float32))

    def weight_count(self) -> int:
        """Numbers this layer reads from a weights file."""
        return self.filters * (4 if self.batch_normalize else 1) + self.weight.data.size

    def bn_scale_shift(self, dtype):
        """Batch norm as ``z * k + shift``: ``k = scales / (sqrt(rolling_var) + 1e-6)``,
        ``shift = biases - rolling_mean * k`` (tensors, so gradients reach scales and biases)."""
        inv = (1.0 / (np.sqrt(self.rolling_variance.astype(np.float64)) + _BN_EPS)).astype(dtype)
        scales, biases = self.scales.astype(dtype), self.biases.astype(dtype)
        k = scales * inv
        return k, biases - k * self.rolling_mean.astype(dtype)

    def folded(self, dtype=np.float32):
        """The kernel and bias with batch norm folded in: ``(weight * k, shift)``."""
        weight = self.weight.astype(dtype) if self.weight.dtype != dtype else self.weight
        if not self.batch_normalize:
            return weight, self.biases.astype(dtype) if self.biases.dtype != dtype else self.biases
        k, shift = self.bn_scale_shift(dtype)
        return weight * k, shift

    def forward(self, x):
        w, b = self.folded(x.dtype)
        y = F.conv2d(x, w, b, stride=self.stride, padding=self.padding, groups=self.groups)
        return _activate(y, self.activation)

    def extra_repr(self):
        parts = [f"{self.in_channels}, {self.filters}, size={self.size}"]
        if self.stride != 1:
            parts.append(f"stride={self.stride}")
        if self.padding:
            parts.append(f"padding={self.padding}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if self.batch_normalize:
            parts.append("batch_normalize")
        return ", ".join(parts + [self.activation])


class DarknetMaxPool(Module):
    """darknet ``[maxpool]``: window ``size``, ``stride``, ``padding`` pixels in total (see module doc)."""

    def __init__(self, size, stride, padding):
        super().__init__()
        self.size, self.stride, self.padding = size, stride, padding

    def output_size(self, n: int) -> int:
        return (n + self.padding - self.size) // self.stride + 1

    def pads(self, in_hw) -> tuple:
        """``((top, bottom), (left, right))``: ``padding // 2`` before, what the last window needs after."""
        before = self.padding // 2
        return tuple((before, max(0, (self.output_size(n) - 1) * self.stride + self.size - n - before))
                     for n in in_hw)

    def forward(self, x):
        pads = self.pads(x.shape[1:3])
        (pt, pb), (pl, pr) = pads
        if max(pt, pb, pl, pr) > self.size // 2:  # more than pooling allows: pad with -inf by hand
            x = F.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), value=-np.inf)
            return F.max_pool2d(x, self.size, self.stride)
        return F.max_pool2d(x, self.size, self.stride, padding=pads)

    def extra_repr(self):
        return f"size={self.size}, stride={self.stride}, padding={self.padding}"


class DarknetRoute(Module):
    """darknet ``[route]``: the outputs of ``layers`` (absolute indices) joined along channels."""

    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, outputs):
        parts = [outputs[i] for i in self.layers]
        return parts[0] if len(parts) == 1 else F.concat(parts, axis=-1)

    def extra_repr(self):
        return f"layers={self.layers}"


class DarknetReorg(Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return reorg(x, self.stride)

    def extra_repr(self):
        return f"stride={self.stride}"


class DarknetUpsample(Module):
    def __init__(self, stride, scale):
        super().__init__()
        self.stride, self.scale = stride, scale

    def forward(self, x):
        return upsample(x, self.stride, self.scale)

    def extra_repr(self):
        return f"stride={self.stride}" + (f", scale={self.scale}" if self.scale != 1 else "")


class DarknetShortcut(Module):
    """darknet ``[shortcut]``: ``activation(alpha * x + beta * outputs[from])``."""

    def __init__(self, source, activation, alpha=1.0, beta=1.0):
        super().__init__()
        self.source, self.activation, self.alpha, self.beta = source, activation, alpha, beta

    def forward(self, x, other):
        a = x if self.alpha == 1 else x * self.alpha
        b = other if self.beta == 1 else other * self.beta
        return _activate(a + b, self.activation)

    def extra_repr(self):
        return f"from={self.source}, {self.activation}"


@dataclass
class DarknetHead:
    """A ``[region]`` (YOLOv2) or ``[yolo]`` (YOLOv3) head.

    ``anchors`` ``(total, 2)`` (w, h): in grid cells for region heads, in input pixels for
    yolo heads; a yolo head uses the rows ``mask`` of them (``num`` = len(mask) boxes per
    cell), a region head all ``num``.  ``layer``: the head's index in the cfg; its input (the
    raw tensor the network returns) is the output of layer ``layer - 1``.
    """
    type: str
    layer: int
    anchors: np.ndarray
    classes: int
    num: int
    mask: tuple = ()
    coords: int = 4
    softmax: bool = False
    background: bool = False
    input_size: tuple = (416, 416)   # (width, height) of the [net]

    @property
    def head_anchors(self) -> np.ndarray:
        """The ``(num, 2)`` anchors this head's boxes use (``anchors[mask]`` for yolo heads)."""
        return self.anchors[list(self.mask)] if self.type == "yolo" else self.anchors[:self.num]


class DarknetHeadLayer(Module):
    """``[region]`` / ``[yolo]``: passes its input through (decoding is strided.detect.decode).

    (darknet's own head output is the activated one; a ``route`` reading a head layer would
    get the raw values here.  No shipped cfg routes from a head.)
    """

    def __init__(self, head: DarknetHead):
        super().__init__()
        self.head = head

    def forward(self, x):
        return x

    def extra_repr(self):
        h = self.head
        return f"{h.type}, classes={h.classes}, num={h.num}" + (f", mask={list(h.mask)}" if h.mask else "")


class DarknetNet(Module):
    """A darknet network: ``forward(x)`` -> the raw input of each head (list of NHWC tensors).

    ``layers`` (``layer_0``, ``layer_1``, ... as attributes) follow the cfg; ``heads`` the
    ``[region]``/``[yolo]`` sections; ``input_size`` ``(width, height)`` and ``channels``
    come from ``[net]``; ``shapes[i]`` is layer ``i``'s output ``(H, W, C)`` at that size.
    """

    def __init__(self, layers, kinds, heads, input_size, channels, shapes, cfg_path=""):
        super().__init__()
        self.kinds, self.heads, self.input_size, self.channels = list(kinds), list(heads), input_size, channels
        self.shapes, self.cfg_path = list(shapes), str(cfg_path)
        self.layer_names = []
        for i, layer in enumerate(layers):
            setattr(self, f"layer_{i}", layer)
            self.layer_names.append(f"layer_{i}")
        # outputs later layers read (route / shortcut), so others can be dropped early
        needed = {}
        for i, layer in enumerate(layers):
            for j in (layer.layers if isinstance(layer, DarknetRoute) else
                      [layer.source] if isinstance(layer, DarknetShortcut) else []):
                needed[j] = max(needed.get(j, -1), i)
        self._last_use = needed

    @property
    def layers(self) -> list:
        return [getattr(self, n) for n in self.layer_names]

    def conv_layers(self) -> list:
        """The :class:`DarknetConv` layers in file order (the order of the weights file)."""
        return [m for m in self.layers if isinstance(m, DarknetConv)]

    def _run(self, x, keep_all: bool):
        x = x if isinstance(x, Tensor) else Tensor(x)  # float32 / float64 kept, other numbers -> float32
        if x.ndim != 4 or x.shape[-1] != self.channels:
            raise ValueError(f"darknet network input must be NHWC with {self.channels} channels, "
                             f"received shape {tuple(x.shape)}")
        outputs, heads = {}, []
        for i, layer in enumerate(self.layers):
            kind = self.kinds[i]
            if kind == "route":
                x = layer(outputs)
            elif kind == "shortcut":
                x = layer(x, outputs[layer.source])
            else:
                if kind in ("region", "yolo"):
                    heads.append(x)
                x = layer(x)
            outputs[i] = x
            if not keep_all:  # forget outputs nobody reads any more
                for j in [j for j in outputs if j != i and self._last_use.get(j, -1) <= i]:
                    del outputs[j]
        return heads, outputs

    def forward(self, x):
        """x ``(N, H, W, C)`` in [0, 1] -> list of raw head inputs ``(N, S_h, S_w, A*(5+classes))``."""
        return self._run(x, keep_all=False)[0]

    def forward_all(self, x) -> list:
        """Every layer's output, in cfg order (``[i]`` is darknet's layer ``i``)."""
        outputs = self._run(x, keep_all=True)[1]
        return [outputs[i] for i in range(len(self.layer_names))]

    def predict(self, x) -> list:
        """:meth:`forward` without a graph, as NumPy arrays."""
        with no_grad():
            return [h.data for h in self.forward(x)]

    def extra_repr(self):
        return f"input_size={self.input_size}, heads={len(self.heads)}"


# --------------------------------------------------------------------------- building
def _bad(section, message):
    return ModelFileError(f"{section._where()}: {message}")


def _layer_index(section, text, i, n_done):
    try:
        k = int(text)
    except ValueError:
        raise _bad(section, f"layer reference {text!r} is not an integer") from None
    j = i + k if k < 0 else k
    if not 0 <= j < n_done:
        raise _bad(section, f"layer reference {text} (layer {j}) must name an earlier layer (0..{n_done - 1})")
    return j


def build_darknet(sections, init: bool = True) -> DarknetNet:
    """A :class:`DarknetNet` from parsed cfg sections (random He-normal kernels if ``init``, else zeros)."""
    net = sections[0]
    W, H, C = net.get("width", 416), net.get("height", 416), net.get("channels", 3)
    if min(W, H, C) < 1:
        raise _bad(net, f"width, height and channels must be positive, received {W}, {H}, {C}")
    layers, kinds, heads, shapes = [], [], [], []
    h, w, c = H, W, C
    for i, sec in enumerate(sections[1:]):
        kind = SUPPORTED_LAYERS.get(sec.type)
        if kind is None:
            raise _bad(sec, f"layer type [{sec.type}] (layer {i}) is not supported; strided reads "
                            f"{', '.join('[' + k + ']' for k in sorted(set(SUPPORTED_LAYERS.values())))}")
        if kind == "convolutional":
            filters, size = sec.get("filters", 1), sec.get("size", 1)
            stride, groups = sec.get("stride", 1), sec.get("groups", 1)
            padding = size // 2 if sec.get("pad", 0) else sec.get("padding", 0)
            act = sec.options.get("activation", "logistic")
            if act not in _ACTIVATIONS:
                raise _bad(sec, f"activation={act} is not supported; expected one of {', '.join(_ACTIVATIONS)}")
            if filters < 1 or size < 1 or stride < 1 or groups < 1 or c % groups or filters % groups:
                raise _bad(sec, f"filters={filters}, size={size}, stride={stride}, groups={groups} do not "
                                f"fit an input of {c} channels")
            layer = DarknetConv(c, filters, size, stride, padding, groups, sec.get("batch_normalize", 0), act, init)
            h, w, c = (h + 2 * padding - size) // stride + 1, (w + 2 * padding - size) // stride + 1, filters
        elif kind == "maxpool":
            stride = sec.get("stride", 1)
            size = sec.get("size", stride)
            padding = sec.get("padding", size - 1)
            if stride < 1 or size < 1 or padding < 0:
                raise _bad(sec, f"size={size}, stride={stride}, padding={padding} must be positive")
            layer = DarknetMaxPool(size, stride, padding)
            h, w = layer.output_size(h), layer.output_size(w)
        elif kind == "route":
            refs = [v for v in sec.options.get("layers", "").split(",") if v]
            if not refs:
                raise _bad(sec, "route needs layers=...")
            idx = [_layer_index(sec, r, i, i) for r in refs]
            hw = {shapes[j][:2] for j in idx}
            if len(hw) != 1:
                raise _bad(sec, f"route joins layers {idx} of different sizes {[shapes[j] for j in idx]}")
            layer = DarknetRoute(idx)
            h, w = shapes[idx[0]][:2]
            c = sum(shapes[j][2] for j in idx)
        elif kind == "reorg":
            s = sec.get("stride", 1)
            if any(sec.get(k, 0) for k in ("reverse", "flatten", "extra")):
                raise _bad(sec, "reorg with reverse, flatten or extra is not supported")
            if s < 1 or c % (s * s) or h % s or w % s:
                raise _bad(sec, f"reorg stride={s} does not divide its input {h}x{w}x{c}")
            layer = DarknetReorg(s)
            h, w, c = h // s, w // s, c * s * s
        elif kind == "upsample":
            s = sec.get("stride", 2)
            if s < 1:
                raise _bad(sec, f"upsample stride={s} is not supported (only positive strides)")
            layer = DarknetUpsample(s, sec.get("scale", 1.0, float))
            h, w = h * s, w * s
        elif kind == "shortcut":
            if "from" not in sec.options:
                raise _bad(sec, "shortcut needs from=...")
            j = _layer_index(sec, sec.options["from"], i, i)
            if shapes[j] != (h, w, c):
                raise _bad(sec, f"shortcut from layer {j} of shape {shapes[j]} onto {(h, w, c)}: only equal "
                                f"shapes are supported")
            act = sec.options.get("activation", "linear")
            if act not in _ACTIVATIONS:
                raise _bad(sec, f"activation={act} is not supported; expected one of {', '.join(_ACTIVATIONS)}")
            layer = DarknetShortcut(j, act, sec.get("alpha", 1.0, float), sec.get("beta", 1.0, float))
        else:  # region / yolo
            classes, total = sec.get("classes", 20), sec.get("num", 1)
            anchors = np.asarray(sec.get_list("anchors"), dtype=np.float64)
            if kind == "yolo":
                mask = tuple(int(m) for m in sec.get_list("mask", int)) or tuple(range(total))
                coords, num = 4, len(mask)
            else:
                mask, coords, num = (), sec.get("coords", 4), total
            if anchors.size < 2 * total:
                anchors = np.concatenate([anchors, np.full(2 * total - anchors.size, 0.5)])  # darknet's default .5
            anchors = anchors[:2 * total].reshape(total, 2)
            if any(m < 0 or m >= total for m in mask):
                raise _bad(sec, f"mask={list(mask)} must pick anchors among num={total}")
            if kind == "region" and coords != 4:
                raise _bad(sec, f"coords={coords} is not supported (only 4)")
            if sec.get("background", 0):
                raise _bad(sec, "region heads with background=1 are not supported")
            if sec.get("tree", None, str) is not None:
                raise _bad(sec, "region heads with a softmax tree (YOLO9000) are not supported")
            if c != num * (coords + 1 + classes):
                raise _bad(sec, f"{kind} head with num={num}, classes={classes} needs "
                                f"{num * (coords + 1 + classes)} input channels, the layer before gives {c}")
            head = DarknetHead(kind, i, anchors, classes, num, mask, coords, bool(sec.get("softmax", 0)),
                               bool(sec.get("background", 0)), (W, H))
            heads.append(head)
            layer = DarknetHeadLayer(head)
        if h < 1 or w < 1:
            raise _bad(sec, f"layer {i} leaves no pixels (output {h}x{w}x{c}) for a {W}x{H} input")
        layers.append(layer)
        kinds.append(kind)
        shapes.append((h, w, c))
    return DarknetNet(layers, kinds, heads, (W, H), C, shapes, sections[0].path)


# --------------------------------------------------------------------------- weights
def _header_seen_bytes(major, minor):
    return 8 if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000 else 4


def load_darknet_weights(net: DarknetNet, path) -> DarknetNet:
    """Fill ``net``'s convolutional layers from a darknet ``.weights`` file (in place)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such darknet weights file")
    data = path.read_bytes()
    if len(data) < 12:
        raise ModelFileError(f"{path}: {len(data)} bytes is too short for a darknet weights header (12+ bytes)")
    major, minor, revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    offset = 12 + _header_seen_bytes(major, minor)
    if len(data) < offset:
        raise ModelFileError(f"{path}: truncated header (version {major}.{minor}.{revision} needs {offset} bytes)")
    body = len(data) - offset
    if body % 4:
        raise ModelFileError(f"{path}: {body} bytes of weights after the header is not a whole number of float32")
    values = np.frombuffer(data, "<f4", body // 4, offset)
    convs = net.conv_layers()
    expected = sum(layer.weight_count() for layer in convs)
    pos = 0
    for layer in convs:
        index = net.layers.index(layer)
        need = layer.weight_count()
        if pos + need > values.size:
            raise ModelFileError(
                f"{path}: too short for {net.cfg_path or 'the cfg'}: convolutional layer {index} needs "
                f"{need} floats from offset {pos}, only {values.size - pos} left (the cfg needs {expected} floats "
                f"in all, the file holds {values.size}); the weights are for another network")
        n = layer.filters

        def take(count):
            nonlocal pos
            chunk = values[pos:pos + count]
            pos += count
            return np.array(chunk, dtype=np.float32)

        layer.biases.data = take(n)
        if layer.batch_normalize:
            layer.scales.data = take(n)
            layer.rolling_mean = take(n)
            layer.rolling_variance = take(n)
        shape = layer.weight.shape  # HWIO
        oihw = take(layer.weight.data.size).reshape(shape[3], shape[2], shape[0], shape[1])
        layer.weight.data = np.ascontiguousarray(oihw.transpose(2, 3, 1, 0))
    if pos != values.size:
        raise ModelFileError(
            f"{path}: too long for {net.cfg_path or 'the cfg'}: its {len(convs)} convolutional layers take "
            f"{expected} floats, the file holds {values.size} ({values.size - expected} extra); "
            f"the weights are for another network")
    net.weights_version = (major, minor, revision)
    return net


def read_darknet(cfg_path, weights_path=None) -> DarknetNet:
    """A :class:`DarknetNet` from a darknet cfg, with the weights file's numbers if given.

    Without ``weights_path`` the layers keep a deterministic He-style initialisation
    (useful for tests and for training).  Raises :class:`ModelFileError` for a missing or
    malformed file, a layer type strided does not implement (naming it and its line), or
    weights that do not fit the cfg (naming the layer and the counts).
    """
    net = build_darknet(read_darknet_cfg(cfg_path), init=weights_path is None)
    if weights_path is not None:
        load_darknet_weights(net, weights_path)
    return net


def _conv_arrays(layer):
    if isinstance(layer, DarknetConv):
        out = {"biases": layer.biases.data, "weight": layer.weight.data}
        if layer.batch_normalize:
            out.update(scales=layer.scales.data, rolling_mean=layer.rolling_mean,
                       rolling_variance=layer.rolling_variance)
        return out
    return layer


def write_darknet_weights(source, path, version=(0, 2, 0), seen=0):
    """Write a darknet ``.weights`` file (atomically).

    ``source``: a :class:`DarknetNet` or a list, in cfg order, of one dict per
    convolutional layer with ``biases`` ``(O,)``, ``weight`` HWIO ``(K, K, I/groups, O)``
    and, for batch-normalised layers, ``scales``, ``rolling_mean``, ``rolling_variance``.
    ``version`` ``(major, minor, revision)`` decides whether ``seen`` is int64 or int32.
    """
    convs = source.conv_layers() if isinstance(source, DarknetNet) else list(source)
    major, minor, revision = (int(v) for v in version)
    layers = []
    for k, layer in enumerate(convs):
        arrays = _conv_arrays(layer)
        weight = np.asarray(arrays["weight"])
        if weight.ndim != 4:
            raise ValueError(f"convolutional layer {k}: weight must be HWIO (4-D), received shape {weight.shape}")
        layers.append((arrays, weight))

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(np.asarray([major, minor, revision], "<i4").tobytes())
            f.write(np.asarray([seen], "<i8" if _header_seen_bytes(major, minor) == 8 else "<i4").tobytes())
            for arrays, weight in layers:
                for key in ("biases", "scales", "rolling_mean", "rolling_variance"):
                    if key in arrays:
                        f.write(np.asarray(arrays[key], "<f4").reshape(-1).tobytes())
                f.write(np.ascontiguousarray(weight.transpose(3, 2, 0, 1), "<f4").tobytes())

    return atomic_write(path, write)
