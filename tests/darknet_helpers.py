"""Shared by tests/io/test_io_darknet.py, tests/detect/test_decode.py and test_darknet.py: the
cfgs Debian's ``darknet`` package ships, random weights files whose activations stay of order
one, and two independent references: OpenCV's darknet importer and darknet itself (Debian's
libdarknet.so through its C API).  Tests skip, saying so, when the package is missing."""
from __future__ import annotations

import atexit
import ctypes
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import strided as sd
import strided.functional as F
from strided.io.darknet import build_darknet, read_darknet_cfg, write_darknet_weights

DARKNET_SHARE = Path("/usr/share/darknet")
CFG_DIR = DARKNET_SHARE / "cfg"
DATA_DIR = DARKNET_SHARE / "data"


def shipped_cfg(name: str) -> Path:
    """Path of a cfg from Debian's darknet package, or skip the test saying how to get it."""
    path = CFG_DIR / f"{name}.cfg"
    if not path.is_file():
        pytest.skip(f"{path} missing: the Debian package 'darknet' is not installed (apt-get install darknet)")
    return path


def resized_cfg(name: str, size: int, folder: Path) -> Path:
    """A copy of a shipped cfg with ``[net]`` width and height set to ``size`` (faster tests)."""
    text = shipped_cfg(name).read_text()
    text = re.sub(r"(?m)^\s*width\s*=.*$", f"width={size}", text)
    text = re.sub(r"(?m)^\s*height\s*=.*$", f"height={size}", text)
    path = folder / f"{name}-{size}.cfg"
    path.write_text(text)
    return path


def calibrate(net, x) -> None:
    """Random kernels, then batch-norm statistics set to each conv's real output statistics on
    ``x`` (as training would leave them), so deep nets (YOLOv3's 23 shortcuts) stay of order one."""
    outputs = {}
    with sd.no_grad():
        for i, (layer, kind) in enumerate(zip(net.layers, net.kinds)):
            if kind == "route":
                y = layer(outputs)
            elif kind == "shortcut":
                y = layer(x, outputs[layer.source])
            else:
                if kind == "convolutional" and layer.batch_normalize:
                    z = F.conv2d(x, layer.weight, None, stride=layer.stride, padding=layer.padding,
                                 groups=layer.groups).data.astype(np.float64)
                    layer.rolling_mean = z.mean(axis=(0, 1, 2)).astype(np.float32)
                    layer.rolling_variance = z.var(axis=(0, 1, 2)).astype(np.float32)
                y = layer(x)
            outputs[i] = x = y


def random_weights_file(cfg: Path, path: Path, seed: int = 0, version=(0, 2, 0), boost: float = 0.0) -> Path:
    """Write a darknet weights file of random numbers for ``cfg`` (calibrated, see above).

    ``boost`` is added to the objectness bias and twice to the class-0 bias of the conv
    feeding each head, so that some scores are high (for decoding tests)."""
    net = build_darknet(read_darknet_cfg(cfg), init=False)
    rng = np.random.default_rng(seed)
    for layer in net.conv_layers():
        fan_in = layer.size * layer.size * layer.in_channels // layer.groups
        std = np.float32(np.sqrt(2.0 / fan_in))
        layer.weight.data = rng.standard_normal(layer.weight.shape, dtype=np.float32) * std
        layer.biases.data = rng.uniform(-0.3, 0.3, layer.filters).astype(np.float32)
        if layer.batch_normalize:
            layer.scales.data = rng.uniform(0.5, 1.5, layer.filters).astype(np.float32)
    W, H = net.input_size
    calibrate(net, rng.uniform(0, 1, (1, H, W, net.channels)).astype(np.float32))
    for head in net.heads:
        biases = net.layers[head.layer - 1].biases.data.reshape(head.num, -1)
        biases[:, 4] += boost
        biases[:, 5] += 2 * boost
    return write_darknet_weights(net, path, version=version)


_SHARED = {}


def shared_files(name: str, size: int) -> tuple:
    """``(cfg, weights)`` for a shipped cfg at ``size`` with random weights (seed 11, boost 1),
    made once per test session and shared by the tests that only read them."""
    key = (name, size)
    if key not in _SHARED:
        folder = Path(tempfile.mkdtemp(prefix=f"strided-darknet-{name}-"))
        atexit.register(shutil.rmtree, folder, True)
        cfg = resized_cfg(name, size, folder)
        _SHARED[key] = cfg, random_weights_file(cfg, folder / f"{name}-{size}.weights", seed=11, boost=1.0)
    return _SHARED[key]


def opencv_net(cfg: Path, weights: Path):
    cv2 = pytest.importorskip("cv2")
    return cv2.dnn.readNetFromDarknet(str(cfg), str(weights))


def opencv_forward(cv_net, x_nhwc: np.ndarray, names=None):
    """OpenCV's outputs for an NHWC batch (fed as the NCHW blob darknet reads), NHWC back."""
    cv_net.setInput(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2), dtype=np.float32))
    if names is None:
        return cv_net.forward()
    return [o for o in cv_net.forward(list(names))]


def rel_err(actual, expected) -> float:
    """max |actual - expected| / max(1, max |expected|)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    return float(np.max(np.abs(actual - expected)) / max(1.0, np.max(np.abs(expected))))


# --------------------------------------------------------------------------- the real darknet (libdarknet.so)
LIBDARKNET = Path("/usr/lib/darknet/libdarknet.so")


class _Box(ctypes.Structure):
    _fields_ = [("x", ctypes.c_float), ("y", ctypes.c_float), ("w", ctypes.c_float), ("h", ctypes.c_float)]


class _Detection(ctypes.Structure):  # darknet.h: struct detection
    _fields_ = [("bbox", _Box), ("classes", ctypes.c_int), ("prob", ctypes.POINTER(ctypes.c_float)),
                ("mask", ctypes.POINTER(ctypes.c_float)), ("objectness", ctypes.c_float),
                ("sort_class", ctypes.c_int)]


class _Image(ctypes.Structure):  # darknet.h: image (CHW float data)
    _fields_ = [("w", ctypes.c_int), ("h", ctypes.c_int), ("c", ctypes.c_int), ("data", ctypes.POINTER(ctypes.c_float))]


class Darknet:
    """Debian's libdarknet.so (pjreddie's darknet, git 2018-09-14) through its C API, as the
    reference implementation: load a network, predict, get its decoded boxes, NMS, letterbox."""

    def __init__(self):
        if not LIBDARKNET.is_file():
            pytest.skip(f"{LIBDARKNET} missing: the Debian package 'darknet' is not installed (apt-get install darknet)")
        lib = ctypes.CDLL(str(LIBDARKNET))
        f = ctypes.POINTER(ctypes.c_float)
        lib.load_network.argtypes, lib.load_network.restype = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int], \
            ctypes.c_void_p
        lib.network_predict.argtypes, lib.network_predict.restype = [ctypes.c_void_p, f], f
        lib.get_network_boxes.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_float, ctypes.c_float,
                                          ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.get_network_boxes.restype = ctypes.POINTER(_Detection)
        lib.do_nms_sort.argtypes = [ctypes.POINTER(_Detection), ctypes.c_int, ctypes.c_int, ctypes.c_float]
        lib.free_detections.argtypes = [ctypes.POINTER(_Detection), ctypes.c_int]
        lib.load_image_color.argtypes, lib.load_image_color.restype = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int], \
            _Image
        lib.letterbox_image.argtypes, lib.letterbox_image.restype = [_Image, ctypes.c_int, ctypes.c_int], _Image
        lib.resize_image.argtypes, lib.resize_image.restype = [_Image, ctypes.c_int, ctypes.c_int], _Image
        lib.free_image.argtypes = [_Image]
        self.lib = lib

    def load(self, cfg, weights):
        return self.lib.load_network(str(cfg).encode(), str(weights).encode(), 0)

    def predict(self, net, hwc: np.ndarray) -> None:
        chw = np.ascontiguousarray(hwc.transpose(2, 0, 1), dtype=np.float32)
        self.lib.network_predict(net, chw.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))

    def boxes(self, net, image_wh, thresh, relative, classes, nms=None):
        """get_network_boxes (+ do_nms_sort): list of ((x, y, w, h), objectness, probs).
        (darknet fills ``detection.classes`` only for yolo layers, hence ``classes``.)"""
        n = ctypes.c_int(0)
        dets = self.lib.get_network_boxes(net, int(image_wh[0]), int(image_wh[1]), thresh, 0.5, None, relative,
                                          ctypes.byref(n))
        if nms is not None:
            self.lib.do_nms_sort(dets, n.value, classes, nms)
        out = []
        for i in range(n.value):
            d = dets[i]
            out.append(((d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h), d.objectness,
                        np.ctypeslib.as_array(d.prob, (classes,)).copy()))
        self.lib.free_detections(dets, n.value)
        return out

    def _to_numpy(self, im) -> np.ndarray:
        chw = np.ctypeslib.as_array(im.data, (im.c, im.h, im.w)).copy()
        self.lib.free_image(im)
        return chw.transpose(1, 2, 0)

    def load_image(self, path) -> np.ndarray:
        """darknet's load_image_color: (H, W, 3) float32 in [0, 1]."""
        return self._to_numpy(self.lib.load_image_color(str(path).encode(), 0, 0))

    def _image(self, hwc):
        chw = np.ascontiguousarray(hwc.transpose(2, 0, 1), dtype=np.float32)
        im = _Image(hwc.shape[1], hwc.shape[0], hwc.shape[2], chw.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        return im, chw  # keep chw alive while im is used

    def letterbox(self, hwc, w, h) -> np.ndarray:
        im, keep = self._image(hwc)
        return self._to_numpy(self.lib.letterbox_image(im, w, h))

    def resize(self, hwc, w, h) -> np.ndarray:
        im, keep = self._image(hwc)
        return self._to_numpy(self.lib.resize_image(im, w, h))
