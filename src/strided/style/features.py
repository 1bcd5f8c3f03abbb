"""Feature extractors for style transfer: VGG-19 / VGG-16 taps by layer name, weights from files.

A :class:`VGGFeatures` is the convolutional part of the zoo's VGG (:mod:`strided.models.vgg`,
torchvision's layout) behind the preprocessing its weights were trained with.  Its input is
always an RGB image in [0, 1], NHWC; :meth:`VGGFeatures.taps` returns the activations at named
layers and stops the forward pass after the last one (``capture_outputs(stop=True)``).

Layer names (block ``b``, convolution ``i`` in the block), as neural-style and the course::

    conv{b}_{i}   the convolution's output, before the ReLU (with batch norm: after the BN)
    relu{b}_{i}   after the ReLU            pool{b}   after the block's pooling
    block{b}_conv{i}  Keras' name: a Keras conv layer includes its ReLU, so it is relu{b}_{i}

The course's ``conv4_2`` / ``STYLE_LAYERS = conv1_1 ... conv5_1`` came from a model whose
"conv" layers include the ReLU: they are ``relu4_2`` / ``relu1_1 ... relu5_1`` here.

Weight files (:func:`load_vgg`), each read without running code from it, each with its preprocessing:

==================  ==============================================  ==========================================
source              file and names                                   preprocessing of RGB x in [0, 1]
==================  ==============================================  ==========================================
``torchvision``     ``vgg19-dcbb9e9d.pth``, ``vgg16-397923af.pth``:   ``(x - mean) / std``, ImageNet mean
                    ``features.N.weight`` OIHW, ``features.N.bias``   (0.485, 0.456, 0.406), std (0.229, 0.224,
                    (``_bn`` files: ``features.N.running_mean``...)   0.225)
``keras``           ``vgg19_weights_tf_dim_ordering_tf_kernels_       Caffe: BGR, 0..255, minus the mean
                    notop.h5``: ``block{b}_conv{i}/kernel:0`` HWIO    (103.939, 116.779, 123.68) (B, G, R)
``matconvnet``      the course's ``imagenet-vgg-verydeep-19.mat``:    RGB, 0..255, minus the file's average
                    ``layers{k}.name = 'conv1_1'``, ``.weights =       image (``meta.normalization.averageImage``;
                    {W (kh, kw, in, out), b (out, 1)}``                the course's MEANS (123.68, 116.779,
                                                                      103.939) when absent)
``craft``           EasyOCR's ``craft_mlt_25k.pth`` (text detector    torchvision's (CRAFT was trained with it)
                    CRAFT): its VGG16-BN backbone,
                    ``module.basenet.slice{1-4}.N.*`` (up to conv5_2)
==================  ==============================================  ==========================================

A file whose tensors do not fit a VGG (missing layers, wrong shapes, another network) raises
:class:`strided.errors.ModelFileError` naming the file and what is wrong.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .. import nn
from ..errors import ModelFileError
from ..models.vgg import CONFIGS, make_features
from ..nn.hooks import capture_outputs
from ..tensor import as_tensor

__all__ = ["VGGFeatures", "PREPROCESSING", "vgg_layer_names", "load_vgg", "read_vgg_weights", "resolve_layer",
           "read_matconvnet"]

# name -> (scale, mean, std, bgr): y = (x * scale - mean) / std, channels reversed first when bgr
PREPROCESSING = {
    "torchvision": (1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False),
    "caffe": (255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0), True),
    "matconvnet": (255.0, (123.68, 116.779, 103.939), (1.0, 1.0, 1.0), False),
}
SOURCE_PREPROCESSING = {"torchvision": "torchvision", "craft": "torchvision", "keras": "caffe",
                        "matconvnet": "matconvnet", "random": "torchvision"}


def vgg_layer_names(depth: int = 19, batch_norm: bool = False, num_convs: int | None = None) -> "OrderedDict":
    """``{"conv1_1": 0, "relu1_1": 1, ..., "pool1": 4, ...}``: layer name -> index in ``features``
    (torchvision's numbering), for the first ``num_convs`` convolutions (all by default)."""
    names, index, block, conv, seen = OrderedDict(), 0, 1, 0, 0
    for v in CONFIGS[depth]:
        if v == "M":
            names[f"pool{block}"] = index
            index, block, conv = index + 1, block + 1, 0
            continue
        if num_convs is not None and seen == num_convs:
            break
        conv, seen = conv + 1, seen + 1
        step = 3 if batch_norm else 2
        names[f"conv{block}_{conv}"] = index + (1 if batch_norm else 0)
        names[f"relu{block}_{conv}"] = index + step - 1
        index += step
    return names


def resolve_layer(name: str) -> str:
    """Keras' ``block4_conv2`` -> ``relu4_2`` (a Keras conv includes its ReLU); other names unchanged."""
    m = re.fullmatch(r"block(\d)_conv(\d)", name)
    return f"relu{m.group(1)}_{m.group(2)}" if m else name


class Preprocess(nn.Module):
    """RGB [0, 1] NHWC -> what the weights expect: ``(x[..., perm] * scale - mean) / std`` (differentiable)."""

    def __init__(self, scale, mean, std, bgr):
        super().__init__()
        self.bgr = bool(bgr)
        std = np.asarray(std, dtype=np.float64)
        self.a = float(scale) / std                           # per channel, in the weights' order
        self.b = -np.asarray(mean, dtype=np.float64) / std

    def forward(self, x):
        if self.bgr:
            x = x[..., ::-1]
        return x * self.a.astype(x.dtype) + self.b.astype(x.dtype)


class VGGFeatures(nn.Module):
    """The convolutional part of VGG-``depth`` (the zoo's layers) with its preprocessing and named taps.

    ``pooling``: "max" (the network as trained) or "avg" (the paper's suggestion for smoother
    pictures).  ``num_convs`` keeps only the first convolutions (a file with fewer layers).
    ``preprocessing``: a key of :data:`PREPROCESSING`.  Input: RGB ``(N, H, W, 3)`` in [0, 1].

    >>> vgg = VGGFeatures(19)                                   # random weights; see load_vgg
    >>> taps = vgg.taps(image, ["relu1_1", "relu4_2"])          # {"relu1_1": Tensor, ...}
    """

    def __init__(self, depth: int = 19, batch_norm: bool = False, pooling: str = "max",
                 preprocessing: str = "torchvision", num_convs: int | None = None):
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"depth must be one of {sorted(CONFIGS)}, received depth={depth!r}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', received pooling={pooling!r}")
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"preprocessing must be one of {sorted(PREPROCESSING)}, "
                             f"received preprocessing={preprocessing!r}")
        self.depth, self.batch_norm, self.pooling, self.preprocessing = depth, batch_norm, pooling, preprocessing
        self.layer_names = vgg_layer_names(depth, batch_norm, num_convs)
        config = CONFIGS[depth]
        if num_convs is not None:
            kept, n = [], 0
            for v in config:
                if v != "M":
                    if n == num_convs:
                        break
                    n += 1
                kept.append(v)
            config = kept
        self.num_convs = sum(1 for v in config if v != "M")
        self.prep = Preprocess(*PREPROCESSING[preprocessing])
        self.features = make_features(config, 3, batch_norm)
        if pooling == "avg":
            for i, layer in enumerate(self.features):
                if isinstance(layer, nn.MaxPool2d):
                    self.features._modules[str(i)] = nn.AvgPool2d(2, stride=2)
        self.eval()
        self.freeze()

    def __repr__(self):
        return (f"VGGFeatures(depth={self.depth}, batch_norm={self.batch_norm}, pooling={self.pooling!r}, "
                f"preprocessing={self.preprocessing!r}, num_convs={self.num_convs})")

    def forward(self, x):
        return self.features(self.prep(as_tensor(x)))

    def check_layers(self, names) -> list:
        """``names`` resolved (Keras names allowed); an unknown one raises ``KeyError`` listing the valid ones."""
        out = []
        for name in names:
            layer = resolve_layer(name)
            if layer not in self.layer_names:
                raise KeyError(f"unknown layer {name!r} for {type(self).__name__}(depth={self.depth}); "
                               f"valid layers: {', '.join(self.layer_names)}")
            out.append(layer)
        return out

    def taps(self, x, names) -> dict:
        """``{name: activation}`` at the layers ``names`` for the image ``x`` (RGB [0, 1], NHWC); the
        layers after the last tap do not run."""
        layers = self.check_layers(names)
        paths = {name: f"features.{self.layer_names[name]}" for name in layers}
        with capture_outputs(self, list(dict.fromkeys(paths.values())), stop=True) as captured:
            self(x)
        return {orig: captured[paths[layer]] for orig, layer in zip(names, layers)}


# ----------------------------------------------------------------------------- weight files
_TORCH_KEY = re.compile(r"^(?:module\.)?(?:features|basenet\.slice[1-4])\.(\d+)\.(weight|bias|running_mean|running_var)$")


def _conv_indices(depth, batch_norm):
    names = vgg_layer_names(depth, batch_norm)
    return [names[n] - (1 if batch_norm else 0) for n in names if n.startswith("conv")]


def _from_torch(path: Path):
    from ..io import read_torch

    state = read_torch(path)
    picked = {}
    for key, value in state.items():
        m = _TORCH_KEY.match(key)
        if m:
            picked[(int(m.group(1)), m.group(2))] = np.asarray(value)
    if not picked:
        raise ModelFileError(f"weights in {str(path)!r} do not fit a VGG: no 'features.N.weight' (torchvision) or "
                             f"'basenet.sliceK.N.weight' (CRAFT) tensors; its names look like {list(state)[:5]}")
    batch_norm = any(kind == "running_mean" for _, kind in picked)
    convs = sorted(i for (i, kind), v in picked.items() if kind == "weight" and v.ndim == 4)
    for depth in (19, 16):
        expected = _conv_indices(depth, batch_norm)
        if convs == expected[:len(convs)] and (len(convs) == len(expected) or "basenet" in " ".join(state)):
            break
    else:
        raise ModelFileError(f"weights in {str(path)!r} do not fit VGG-16 or VGG-19: convolutions at features "
                             f"indices {convs[:20]}")
    source = "craft" if any("basenet" in k for k in state) else "torchvision"
    out = {}
    for (i, kind), v in picked.items():
        if kind == "weight" and v.ndim == 4:
            out[f"{i}.weight"] = np.ascontiguousarray(v.transpose(2, 3, 1, 0))      # OIHW -> HWIO
        elif i in convs:                                                            # conv bias
            out[f"{i}.{kind}"] = v
        else:                                                                       # batch norm
            out[f"{i}.{dict(weight='gamma', bias='beta').get(kind, kind)}"] = v
    return out, depth, batch_norm, len(convs), source


def _from_keras(path: Path):
    from ..io import read_keras_h5

    state = read_keras_h5(path)
    found = {}
    for key, value in state.items():
        m = re.match(r"^block(\d)_conv(\d)/(?:block\d_conv\d/)?(kernel|bias)", key)
        if m:
            found[(int(m.group(1)), int(m.group(2)), m.group(3))] = np.asarray(value)
    return _by_conv_names(path, found, "keras", "block{b}_conv{i}")


def _struct_field(value, name):
    """Field ``name`` of a struct as ``scipy.io.loadmat`` returns it (a 1x1 record array, maybe in a
    cell), or None."""
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.ndarray) and value.dtype.names and name in value.dtype.names and value.size:
        return value.reshape(-1)[0][name]
    return None


def _average_rgb(mat):
    """The mean RGB of a MatConvNet file's ``meta.normalization.averageImage`` (newer files) or
    ``normalization.averageImage`` (the 2014 beta files), or None."""
    for norm in (_struct_field(mat.get("meta"), "normalization"), mat.get("normalization")):
        average = _struct_field(norm, "averageImage") if norm is not None else None
        while isinstance(average, np.ndarray) and average.dtype == object and average.size == 1:
            average = average.reshape(-1)[0]
        if average is None:
            continue
        average = np.asarray(average, dtype=np.float64)
        if average.size and average.size % 3 == 0:
            return average.reshape(-1, 3).mean(axis=0)          # (H, W, 3) image or a 3-vector
    return None


def read_matconvnet(path):
    """``({(block, conv, "kernel"|"bias"): array}, average_rgb)`` from a MatConvNet ``.mat`` file."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except Exception as exc:  # scipy raises several types for a file that is not MATLAB v5
        raise ModelFileError(f"{str(path)!r} is not a readable MATLAB .mat file: {type(exc).__name__}: {exc}") from None
    if "layers" not in mat:
        raise ModelFileError(f"{str(path)!r} has no 'layers' variable (not a MatConvNet model); "
                             f"variables: {[k for k in mat if not k.startswith('__')]}")
    found = {}
    for cell in np.asarray(mat["layers"]).reshape(-1):
        layer = cell
        while isinstance(layer, np.ndarray) and layer.dtype == object and layer.size == 1:
            layer = layer.reshape(-1)[0]
        if not isinstance(layer, np.ndarray) or layer.dtype.names is None or "name" not in layer.dtype.names:
            continue
        layer = layer.reshape(-1)[0]
        name = str(np.asarray(layer["name"]).reshape(-1)[0])
        m = re.fullmatch(r"conv(\d)_(\d)", name)
        if not m:
            continue
        if "weights" in layer.dtype.names:
            weights = np.asarray(layer["weights"], dtype=object).reshape(-1)
        else:                                             # the older beta format: filters, biases
            weights = [layer["filters"], layer["biases"]]
        if len(weights) != 2:
            raise ModelFileError(f"{str(path)!r}: layer {name!r} has {len(weights)} weight arrays, expected 2 (W, b)")
        b, i = int(m.group(1)), int(m.group(2))
        found[(b, i, "kernel")] = np.asarray(weights[0], dtype=np.float32)
        found[(b, i, "bias")] = np.asarray(weights[1], dtype=np.float32).reshape(-1)
    return found, _average_rgb(mat)


def _from_matconvnet(path: Path):
    found, mean = read_matconvnet(path)
    return _by_conv_names(path, found, "matconvnet", "conv{b}_{i}") + (mean,)


def _by_conv_names(path, found, source, pattern):
    for depth in (19, 16):
        names = [n for n in vgg_layer_names(depth) if n.startswith("conv")]
        wanted = [(int(n[4]), int(n[6])) for n in names]
        if all((b, i, "kernel") in found for b, i in wanted):
            break
    else:
        have = sorted({pattern.format(b=b, i=i) for b, i, _ in found})
        raise ModelFileError(f"weights in {str(path)!r} do not fit VGG-16 or VGG-19: its convolution layers are "
                             f"{have[:20] or 'none'} (expected {pattern.format(b=1, i=1)} ... "
                             f"{pattern.format(b=5, i=3)} or {pattern.format(b=5, i=4)})")
    index = vgg_layer_names(depth)
    out = {}
    for b, i in wanted:
        k = index[f"conv{b}_{i}"]
        if (b, i, "bias") not in found:
            raise ModelFileError(f"weights in {str(path)!r}: layer {pattern.format(b=b, i=i)} has no bias")
        out[f"{k}.weight"], out[f"{k}.bias"] = found[(b, i, "kernel")], found[(b, i, "bias")].reshape(-1)
    return out, depth, False, len(wanted), source


def read_vgg_weights(path):
    """``(state, depth, batch_norm, num_convs, source, mean)`` from a VGG weight file (by its suffix:
    ``.pth``/``.pt``/``.bin`` torch, ``.h5``/``.hdf5`` Keras, ``.mat`` MatConvNet); ``state`` is keyed
    like ``VGGFeatures.features.state_dict()`` in strided's layouts; ``mean`` is a MatConvNet file's
    average RGB (else None)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"weight file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".pth", ".pt", ".bin", ".ckpt"):
        return _from_torch(path) + (None,)
    if suffix in (".h5", ".hdf5", ".keras"):
        return _from_keras(path) + (None,)
    if suffix == ".mat":
        return _from_matconvnet(path)
    raise ModelFileError(f"weight file {str(path)!r}: unknown kind {suffix!r}; expected a torchvision .pth, "
                         f"a Keras .h5 or a MatConvNet .mat")


def load_vgg(path, pooling: str = "max") -> VGGFeatures:
    """A :class:`VGGFeatures` with the weights of ``path`` and the preprocessing of their source (see
    the module docstring).  Shapes are checked; a file that does not fit raises ``ModelFileError``."""
    state, depth, batch_norm, num_convs, source, mean = read_vgg_weights(path)
    model = VGGFeatures(depth, batch_norm, pooling, SOURCE_PREPROCESSING[source], num_convs=num_convs)
    if mean is not None:
        model.prep = Preprocess(255.0, mean, (1.0, 1.0, 1.0), False)
    try:
        model.features.load_state_dict({k: v.astype(np.float32) for k, v in state.items()})
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"weights in {str(path)!r} do not fit VGG-{depth}"
                             f"{'-BN' if batch_norm else ''}: {exc}") from None
    model.source = source
    model.path = str(path)
    return model
