"""Shared by the face tests (and benchmarks/face_pipeline.py, benchmarks/tiny_face.py): face-api's
photos, random weights written as TF.js manifests, and PyTorch twins of face-api's Tiny Face
Detector, landmark and recognition nets.

The twins are written from face-api's TypeScript (``runMobilenet``, ``denseBlock.ts``,
``FaceFeatureExtractor.ts``, ``FaceRecognitionNet.ts``, ``residualLayer.ts``, ``convLayer.ts``) with
``torch.nn`` in NCHW, straight from face-api's weight map (names and HWIO layouts as in the ``.bin``), so
they share nothing with strided's modules but the numbers.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
DETECT_REFERENCE = TESTS / "detect" / "data" / "faceapi_reference.json"
LANDMARKS_REFERENCE = TESTS / "face" / "data" / "faceapi_landmarks_reference.json"
SKIP_REASON = "face-api's weights are not installed (strided models fetch face-api, or set STRIDED_FACEAPI_DIR)"


@functools.lru_cache(maxsize=None)
def reference(path=DETECT_REFERENCE) -> dict:
    return json.loads(Path(path).read_text())


def model_dir_or_none():
    from strided.models.faceapi import find_faceapi_models
    return find_faceapi_models(required=False)


@functools.lru_cache(maxsize=None)
def photo(name: str, model_dir=None):
    """uint8 RGB pixels of a reference photo by name, or ``None`` when its file is unavailable
    (face-api's demo photos live next to its ``model/`` folder)."""
    from strided.data.image import read_image
    if name == "astronaut":
        from skimage import data as skdata
        return np.ascontiguousarray(skdata.astronaut()[..., :3])
    if name == "grace_hopper":
        import matplotlib.cbook as cbook
        return read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    if name == "astronaut_flipped_384":
        import sys
        sys.path.insert(0, str(TESTS / "face" / "data"))
        from faceapi_make_landmarks_reference import flipped_astronaut
        return flipped_astronaut(photo("astronaut"))
    if model_dir is None:
        return None
    path = Path(model_dir).parent / "demo" / f"{name}.jpg"
    return read_image(path) if path.is_file() else None


def xywh_to_xyxy(box):
    x, y, w, h = box
    return [x, y, x + w, y + h]


# ------------------------------------------------------------------------------ TF.js weight maps
def random_weight_map(shapes: dict, seed: int = 0) -> dict:
    """Random float32 weights of face-api's names and shapes: kernels ~ N(0, 1/fan_in) (depthwise:
    fan_in 9), biases and scale biases ~ N(0, 0.1), scale weights ~ 1 + N(0, 0.1).  A new dict
    each call (the arrays are shared between calls: replace them, do not write into them)."""
    return dict(_random_weight_map(tuple(shapes.items()), seed))


@functools.lru_cache(maxsize=8)
def _random_weight_map(shapes: tuple, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes:
        if name.endswith("scale/weights"):
            value = 1 + 0.1 * rng.normal(size=shape)
        elif len(shape) == 1:
            value = 0.1 * rng.normal(size=shape)
        else:
            fan_in = 9 if name.endswith("depthwise_filter") else int(np.prod(shape[:-1]))
            value = rng.normal(size=shape) / np.sqrt(fan_in)
        out[name] = value.astype(np.float32)
    return out


def landmark_shapes(tiny: bool = False) -> dict:
    """Names and shapes of face-api's ``face_landmark_68[_tiny]_model`` weights, in file order
    (from ``faceFeatureExtractor/extractParams*.ts``): dense blocks of 32, 64, 128 (, 256) channels."""
    channels = (32, 64, 128) if tiny else (32, 64, 128, 256)
    shapes, c_in = {}, 3
    for i, c in enumerate(channels):
        for k in range(3 if tiny else 4):
            prefix = f"dense{i}/conv{k}"
            if i == 0 and k == 0:
                shapes.update({f"{prefix}/filters": (3, 3, 3, c), f"{prefix}/bias": (c,)})
            else:
                src = c_in if k == 0 else c
                shapes.update({f"{prefix}/depthwise_filter": (3, 3, src, 1),
                               f"{prefix}/pointwise_filter": (1, 1, src, c), f"{prefix}/bias": (c,)})
        c_in = c
    shapes.update({"fc/weights": (channels[-1], 136), "fc/bias": (136,)})
    return shapes


def recognition_shapes() -> dict:
    """Names and shapes of face-api's ``face_recognition_model`` weights, in file order."""
    shapes = {}

    def conv(prefix, k, c_in, c_out):
        shapes.update({f"{prefix}/conv/filters": (k, k, c_in, c_out), f"{prefix}/conv/bias": (c_out,),
                       f"{prefix}/scale/weights": (c_out,), f"{prefix}/scale/biases": (c_out,)})

    conv("conv32_down", 7, 3, 32)
    for name in RESIDUAL_ORDER:
        c_out = int(name[4:].split("_")[0])
        c_in = c_out // 2 if name.endswith("_down") and c_out != 32 and name != "conv256_down_out" else c_out
        conv(f"{name}/conv1", 3, c_in, c_out)
        conv(f"{name}/conv2", 3, c_out, c_out)
    shapes["fc"] = (256, 128)
    return shapes


def manifest_shapes(model_dir, name: str) -> dict:
    """``{weight name: shape}`` of a face-api manifest, in file order."""
    manifest = json.loads((Path(model_dir) / f"{name}-weights_manifest.json").read_text())
    return {w["name"]: tuple(w["shape"]) for group in manifest for w in group["weights"]}


def write_manifest(folder, name: str, weights: dict) -> Path:
    """``<name>-weights_manifest.json`` + ``<name>.bin`` (float32, unquantised) as face-api ships them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specs = [{"name": k, "shape": list(v.shape), "dtype": "float32"} for k, v in weights.items()]
    (folder / f"{name}.bin").write_bytes(b"".join(np.asarray(v, "<f4").tobytes() for v in weights.values()))
    path = folder / f"{name}-weights_manifest.json"
    path.write_text(json.dumps([{"paths": [f"{name}.bin"], "weights": specs}]))
    return path


# ------------------------------------------------------------------------------ PyTorch twins
def _t(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _same_pad(TF, x, kernel: int, stride: int):
    """TF's 'same' padding of NCHW ``x``: the odd pixel goes to the bottom/right."""
    pads = []
    for n in (x.shape[3], x.shape[2]):
        total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    return TF.pad(x, pads)


def torch_tiny_face_twin_nchw(w: dict):
    """face-api's Tiny Face Detector (``runMobilenet``) with ``torch.nn``: NCHW torch tensor
    ``(N, 3, S, S)`` -> ``(N, 25, S/32, S/32)`` tensor (under ``no_grad``), from the weight map ``w``."""
    import torch
    tnn, TF = torch.nn, torch.nn.functional

    def conv(kernel_hwio, bias=None, depthwise=False):
        # HWIO -> OIHW; a depthwise (3, 3, C, 1) -> (C, 1, 3, 3)
        k = _t(torch, kernel_hwio.transpose((2, 3, 0, 1) if depthwise else (3, 2, 0, 1)))
        groups = k.shape[0] if depthwise else 1
        layer = tnn.Conv2d(k.shape[1] * groups, k.shape[0], tuple(k.shape[2:]), padding=1 if depthwise else 0,
                           groups=groups, bias=bias is not None)
        layer.weight.data = k
        if bias is not None:
            layer.bias.data = _t(torch, bias)
        return layer.eval()

    def pool_same(x, stride):
        """tf.maxPool(x, [2, 2], stride, 'same'): the odd pixel padded at the bottom/right with -inf."""
        n = x.shape[-1]
        pad = max((-(-n // stride) - 1) * stride + 2 - n, 0)
        return TF.max_pool2d(TF.pad(x, (0, pad, 0, pad), value=float("-inf")) if pad else x, 2, stride)

    conv0, conv8 = conv(w["conv0/filters"], w["conv0/bias"]), conv(w["conv8/filters"], w["conv8/bias"])
    dws = [conv(w[f"conv{i}/depthwise_filter"], depthwise=True) for i in range(1, 6)]
    pws = [conv(w[f"conv{i}/pointwise_filter"], w[f"conv{i}/bias"]) for i in range(1, 6)]

    def forward(x_nchw):
        with torch.no_grad():
            x = pool_same(TF.leaky_relu(conv0(x_nchw), 0.1), 2)
            for i in range(5):
                x = pool_same(TF.leaky_relu(pws[i](dws[i](x)), 0.1), 2 if i < 4 else 1)
            return conv8(x)
    return forward


def torch_tiny_face_twin(w: dict):
    """:func:`torch_tiny_face_twin_nchw` on NHWC numpy ``(N, S, S, 3)`` -> ``(N, S/32, S/32, 25)``
    numpy (the input is made a C-contiguous NCHW array first, as a torch user would)."""
    import torch
    forward_nchw = torch_tiny_face_twin_nchw(w)

    def forward(x_nhwc):
        x = _t(torch, np.asarray(x_nhwc).transpose(0, 3, 1, 2))
        return forward_nchw(x).permute(0, 2, 3, 1).numpy()
    return forward


def torch_landmark_twin(w: dict, tiny: bool = False):
    """face-api's FaceLandmark68Net (tiny: FaceLandmark68TinyNet) ``runNet`` on normalised NHWC
    input -> ``(N, 136)`` numpy, written with torch from the weight map ``w`` (converted once)."""
    import torch
    TF = torch.nn.functional
    blocks, convs, pool = (3, 3, 14) if tiny else (4, 4, 7)
    t = {}
    for name, value in w.items():                  # HWIO -> OIHW; depthwise (3, 3, C, 1) -> (C, 1, 3, 3)
        value = np.asarray(value)
        if name.endswith("depthwise_filter"):
            value = value.transpose(2, 3, 0, 1)
        elif value.ndim == 4:
            value = value.transpose(3, 2, 0, 1)
        t[name] = _t(torch, value)

    def sep(x, prefix, stride):
        dw = t[f"{prefix}/depthwise_filter"]
        x = TF.conv2d(_same_pad(TF, x, 3, stride), dw, stride=stride, groups=dw.shape[0])
        return TF.conv2d(x, t[f"{prefix}/pointwise_filter"], t[f"{prefix}/bias"])

    def dense(x, i):
        if i == 0:
            out1 = TF.relu(TF.conv2d(_same_pad(TF, x, 3, 2), t["dense0/conv0/filters"], t["dense0/conv0/bias"],
                                     stride=2))
        else:
            out1 = TF.relu(sep(x, f"dense{i}/conv0", 2))
        out2 = sep(out1, f"dense{i}/conv1", 1)
        out3 = sep(TF.relu(out1 + out2), f"dense{i}/conv2", 1)
        if convs == 3:
            return TF.relu(out1 + (out2 + out3))
        out4 = sep(TF.relu(out1 + (out2 + out3)), f"dense{i}/conv3", 1)
        return TF.relu(out1 + (out2 + (out3 + out4)))

    def forward(x_nhwc):
        with torch.no_grad():
            x = _t(torch, x_nhwc).permute(0, 3, 1, 2)
            for i in range(blocks):
                x = dense(x, i)
            x = TF.avg_pool2d(x, pool, 2).flatten(1)
            return (x @ t["fc/weights"] + t["fc/bias"]).numpy()
    return forward


RESIDUAL_ORDER = ("conv32_1", "conv32_2", "conv32_3", "conv64_down", "conv64_1", "conv64_2", "conv64_3",
                  "conv128_down", "conv128_1", "conv128_2", "conv256_down", "conv256_1", "conv256_2",
                  "conv256_down_out")


def torch_recognition_twin(w: dict):
    """face-api's FaceRecognitionNet ``forwardInput`` after normalisation: NHWC ``(N, 150, 150, 3)``
    -> ``(N, 128)`` numpy, written with torch from the weight map ``w`` (converted once)."""
    import torch
    TF = torch.nn.functional
    t = {}
    for name, value in w.items():
        value = np.asarray(value)
        if name.endswith("scale/weights") or name.endswith("scale/biases"):
            value = value[:, None, None]            # per channel of NCHW
        elif value.ndim == 4:
            value = value.transpose(3, 2, 0, 1)
        t[name] = _t(torch, value)

    def conv_layer(x, prefix, stride, relu):
        k = t[f"{prefix}/conv/filters"]
        x = TF.conv2d(x, k, t[f"{prefix}/conv/bias"], stride=stride, padding=0 if stride == 2 else k.shape[-1] // 2)
        x = x * t[f"{prefix}/scale/weights"] + t[f"{prefix}/scale/biases"]
        return TF.relu(x) if relu else x

    def residual(x, name):
        down = "down" in name
        out = conv_layer(conv_layer(x, f"{name}/conv1", 2 if down else 1, True), f"{name}/conv2", 1, False)
        if not down:
            return TF.relu(out + x)
        pooled = TF.avg_pool2d(x, 2, 2)
        if pooled.shape[-1] != out.shape[-1]:
            out = TF.pad(out, (0, 1, 0, 1))
        if pooled.shape[1] != out.shape[1]:
            pooled = torch.cat([pooled, torch.zeros_like(pooled)], 1)
        return TF.relu(pooled + out)

    def forward(x_nhwc):
        with torch.no_grad():
            x = _t(torch, x_nhwc).permute(0, 3, 1, 2)
            x = TF.max_pool2d(conv_layer(x, "conv32_down", 2, True), 3, 2)
            for name in RESIDUAL_ORDER:
                x = residual(x, name)
            return (x.mean((2, 3)) @ t["fc"]).numpy()
    return forward
