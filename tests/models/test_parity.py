"""Classic architectures against hand-built PyTorch twins (NCHW) holding the same weights.

Each twin below is written from the papers / torchvision's layouts with plain
``torch.nn`` modules, independently of ``strided``.  Weights are copied layer by
layer, in registration order, converting the layouts:

* conv HWIO ``(kh, kw, C_in/g, C_out)`` -> OIHW ``(C_out, C_in/g, kh, kw)``
  (a depthwise ``(kh, kw, 1, C)`` becomes ``(C, 1, kh, kw)`` by the same permutation);
* dense ``(in, out)`` -> ``(out, in)``; where strided flattens NHWC features
  with H, W > 1 (AlexNet), the dense rows are permuted from ``(h, w, c)`` to
  torch's ``(c, h, w)`` order;
* batch norm gamma/beta and running statistics, set to random non-trivial
  values first so that eval mode really uses them.

Outputs are compared in eval mode, float32, at small inputs, with
``max|strided - torch| / max|torch| <= 1e-4``.
"""
import numpy as np
import pytest

import strided as sd
from strided import models
from strided import nn as snn

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

RTOL = 1e-4


# ------------------------------------------------------------------------------------------ weight copying
def _strided_layers(model):
    kinds = (snn.Conv2d, snn.DepthwiseConv2d, snn.BatchNorm2d, snn.Linear)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


def _torch_layers(model):
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (tnn.Conv2d, tnn.BatchNorm2d, tnn.Linear))]


def copy_weights(smodel, tmodel, seed=0, flatten_hwc=None):
    """Randomise strided's BN statistics, then copy every layer into the twin.

    ``flatten_hwc``: ``{strided layer name: (H, W, C)}`` for dense layers fed by an NHWC flatten.
    """
    rng = np.random.default_rng(seed)
    ours, theirs = _strided_layers(smodel), _torch_layers(tmodel)
    assert len(ours) == len(theirs), f"{len(ours)} strided layers, {len(theirs)} torch layers"
    with torch.no_grad():
        for (sname, s), (tname, t) in zip(ours, theirs):
            where = f"{sname} -> {tname}"
            if isinstance(s, snn.BatchNorm2d):
                assert isinstance(t, tnn.BatchNorm2d), where
                C = s.num_features
                s.gamma.data[...] = rng.uniform(0.5, 1.5, C)
                s.beta.data[...] = rng.normal(0, 0.2, C)
                s.running_mean[...] = rng.normal(0, 0.2, C)
                s.running_var[...] = rng.uniform(0.5, 2.0, C)
                assert t.eps == s.eps, where
                t.weight.copy_(torch.from_numpy(s.gamma.data))
                t.bias.copy_(torch.from_numpy(s.beta.data))
                t.running_mean.copy_(torch.from_numpy(s.running_mean))
                t.running_var.copy_(torch.from_numpy(s.running_var))
                continue
            if isinstance(s, snn.Linear):
                assert isinstance(t, tnn.Linear), where
                w = s.weight.data                                     # (in, out)
                if flatten_hwc and sname in flatten_hwc:
                    H, W, C = flatten_hwc[sname]
                    w = w.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(H * W * C, -1)   # rows (c, h, w)
                src = np.ascontiguousarray(w.T)
            else:
                assert isinstance(t, tnn.Conv2d), where
                src = np.ascontiguousarray(s.weight.data.transpose(3, 2, 0, 1))   # HWIO -> OIHW
            assert tuple(t.weight.shape) == src.shape, f"{where}: {tuple(t.weight.shape)} vs {src.shape}"
            t.weight.copy_(torch.from_numpy(src))
            assert (t.bias is None) == (s.bias is None), where
            if s.bias is not None:
                t.bias.copy_(torch.from_numpy(s.bias.data))


def assert_same_outputs(smodel, tmodel, x_nhwc, flatten_hwc=None):
    copy_weights(smodel, tmodel, flatten_hwc=flatten_hwc)
    smodel.eval()
    tmodel.eval()
    with sd.no_grad():
        ours = smodel(sd.tensor(x_nhwc)).data
    with torch.no_grad():
        theirs = tmodel(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()
    assert ours.shape == theirs.shape
    rel = np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs))
    print(f"{type(smodel).__name__}: max relative error {rel:.2e}")
    assert rel <= RTOL, f"relative error {rel:.3e}"
    return rel


def _input(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------------------------------ twins
def conv_bn(cin, cout, k, stride=1, groups=1, eps=1e-5, act=None, padding=None):
    layers = [tnn.Conv2d(cin, cout, k, stride, (k - 1) // 2 if padding is None else padding, groups=groups,
                         bias=False), tnn.BatchNorm2d(cout, eps=eps)]
    if act is not None:
        layers.append(act())
    return tnn.Sequential(*layers)


class TorchBasicBlock(tnn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes))

    def forward(self, x):
        y = TF.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return TF.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet18(tnn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        blocks, cin = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [TorchBasicBlock(cin, planes, stride), TorchBasicBlock(planes, planes, 1)]
            cin = planes
        self.blocks = tnn.Sequential(*blocks)
        self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(TF.relu(self.bn1(self.conv1(x))))
        return self.fc(self.blocks(x).mean(dim=(2, 3)))


class TorchInvertedResidual(tnn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [conv_bn(cin, hidden, 1, act=tnn.ReLU6)] if t != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=tnn.ReLU6), conv_bn(hidden, cout, 1)]
        self.conv = tnn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class TorchMobileNetV2(tnn.Module):
    def __init__(self, num_classes):
        super().__init__()
        layers, cin = [conv_bn(3, 32, 3, 2, act=tnn.ReLU6)], 32
        for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)):
            for i in range(n):
                layers.append(TorchInvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(conv_bn(cin, 1280, 1, act=tnn.ReLU6))
        self.features = tnn.Sequential(*layers)
        self.classifier = tnn.Linear(1280, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class TorchSqueezeExcite(tnn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1 = tnn.Conv2d(channels, squeeze, 1)
        self.fc2 = tnn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = self.fc2(TF.silu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(s)


class TFSamePad(tnn.Module):
    """TensorFlow "same" padding for a k x k, stride s window (extra pixel bottom/right)."""

    def __init__(self, k, s):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x):
        pads = []
        for n in (x.shape[3], x.shape[2]):                 # W then H, as F.pad wants
            total = max((-(-n // self.s) - 1) * self.s + self.k - n, 0)
            pads += [total // 2, total - total // 2]
        return TF.pad(x, pads)


def conv_bn_tf_same(cin, cout, k, stride=1, groups=1, eps=1e-3, act=None):
    layers = [TFSamePad(k, stride), tnn.Conv2d(cin, cout, k, stride, 0, groups=groups, bias=False),
              tnn.BatchNorm2d(cout, eps=eps)]
    if act is not None:
        layers.append(act())
    return tnn.Sequential(*layers)


class TorchMBConv(tnn.Module):
    def __init__(self, cin, cout, k, stride, t, lite=False):
        super().__init__()
        hidden = cin * t
        act = tnn.ReLU6 if lite else tnn.SiLU
        block = conv_bn_tf_same if lite else conv_bn
        extra = dict(eps=1e-3) if lite else {}
        layers = [block(cin, hidden, 1, act=act, **extra)] if t != 1 else []
        layers.append(block(hidden, hidden, k, stride, groups=hidden, act=act, **extra))
        if not lite:
            layers.append(TorchSqueezeExcite(hidden, max(1, cin // 4)))
        layers.append(block(hidden, cout, 1, **extra))
        self.block = tnn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class TorchEfficientNetB0(tnn.Module):
    """B0 (torchvision layout, symmetric padding) or, with ``lite=True``, Lite0 (no SE, ReLU6, TF padding)."""

    def __init__(self, num_classes, lite=False):
        super().__init__()
        act = tnn.ReLU6 if lite else tnn.SiLU
        block = conv_bn_tf_same if lite else conv_bn
        extra = dict(eps=1e-3) if lite else {}
        layers, cin = [block(3, 32, 3, 2, act=act, **extra)], 32
        for t, k, s, c, n in ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)):
            for i in range(n):
                layers.append(TorchMBConv(cin, c, k, s if i == 0 else 1, t, lite))
                cin = c
        layers.append(block(320, 1280, 1, act=act, **extra))
        self.features = tnn.Sequential(*layers)
        self.classifier = tnn.Linear(1280, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class TorchInception(tnn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.b1 = conv_bn(cin, c1, 1, eps=1e-3, act=tnn.ReLU)
        self.b2 = tnn.Sequential(conv_bn(cin, c3r, 1, eps=1e-3, act=tnn.ReLU),
                                 conv_bn(c3r, c3, 3, eps=1e-3, act=tnn.ReLU))
        self.b3 = tnn.Sequential(conv_bn(cin, c5r, 1, eps=1e-3, act=tnn.ReLU),
                                 conv_bn(c5r, c5, 3, eps=1e-3, act=tnn.ReLU))
        self.b4 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1, ceil_mode=True), conv_bn(cin, pp, 1, eps=1e-3, act=tnn.ReLU))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class TorchGoogLeNet(tnn.Module):
    def __init__(self, num_classes):
        super().__init__()
        pool = lambda k=3: tnn.MaxPool2d(k, 2, ceil_mode=True)
        self.net = tnn.Sequential(
            conv_bn(3, 64, 7, 2, eps=1e-3, act=tnn.ReLU), pool(), conv_bn(64, 64, 1, eps=1e-3, act=tnn.ReLU),
            conv_bn(64, 192, 3, eps=1e-3, act=tnn.ReLU), pool(),
            TorchInception(192, 64, 96, 128, 16, 32, 32), TorchInception(256, 128, 128, 192, 32, 96, 64), pool(),
            TorchInception(480, 192, 96, 208, 16, 48, 64), TorchInception(512, 160, 112, 224, 24, 64, 64),
            TorchInception(512, 128, 128, 256, 24, 64, 64), TorchInception(512, 112, 144, 288, 32, 64, 64),
            TorchInception(528, 256, 160, 320, 32, 128, 128), pool(2),
            TorchInception(832, 256, 160, 320, 32, 128, 128), TorchInception(832, 384, 192, 384, 48, 128, 128))
        self.fc = tnn.Linear(1024, num_classes)

    def forward(self, x):
        return self.fc(self.net(x).mean(dim=(2, 3)))


class TorchAlexNet(tnn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
            tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
            tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2), tnn.AdaptiveAvgPool2d(6))
        self.classifier = tnn.Sequential(tnn.Linear(9216, 4096), tnn.ReLU(), tnn.Linear(4096, 4096), tnn.ReLU(),
                                         tnn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# ------------------------------------------------------------------------------------------ tests
def test_resnet18_matches_torch():
    assert_same_outputs(models.create("resnet18", num_classes=10), TorchResNet18(10), _input((2, 64, 64, 3)))


def test_mobilenet_v2_matches_torch():
    assert_same_outputs(models.create("mobilenet_v2", num_classes=10), TorchMobileNetV2(10), _input((1, 64, 64, 3)))


def test_efficientnet_b0_matches_torch():
    assert_same_outputs(models.create("efficientnet_b0", num_classes=10), TorchEfficientNetB0(10),
                        _input((1, 64, 64, 3)))


def test_efficientnet_lite0_matches_torch_with_tf_same_padding():
    # 66 is not a multiple of 32: the stride-2 layers meet odd and even sizes (TF padding differs by a pixel)
    assert_same_outputs(models.create("efficientnet_lite0", num_classes=10), TorchEfficientNetB0(10, lite=True),
                        _input((1, 66, 66, 3)))


def test_googlenet_matches_torch_ceil_mode_pooling():
    # 72 -> 36 -> 18 (ceil; floor would give 17) -> 9 (floor 8) -> 4 -> 2
    assert_same_outputs(models.create("googlenet", num_classes=10), TorchGoogLeNet(10), _input((1, 72, 72, 3)))


def test_alexnet_matches_torch_with_flatten_permutation():
    # 70x70 input: features end at 1x1, the adaptive pool repeats it to 6x6, then the NHWC flatten
    assert_same_outputs(models.create("alexnet", num_classes=10), TorchAlexNet(10), _input((1, 70, 70, 3)),
                        flatten_hwc={"classifier.1": (6, 6, 256)})


def test_cifar_resnet20_option_b_matches_torch():
    class TorchCifar(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            blocks, cin = [], 16
            for planes, stride in ((16, 1), (32, 2), (64, 2)):
                blocks.append(TorchBasicBlock(cin, planes, stride))
                blocks += [TorchBasicBlock(planes, planes, 1) for _ in range(2)]
                cin = planes
            self.blocks = tnn.Sequential(*blocks)
            self.fc = tnn.Linear(64, 10)

        def forward(self, x):
            return self.fc(self.blocks(TF.relu(self.bn1(self.conv1(x)))).mean(dim=(2, 3)))

    assert_same_outputs(models.create("resnet20", shortcut="B"), TorchCifar(), _input((2, 32, 32, 3)))


@pytest.mark.parametrize("in_size,out_size", [((6, 6), 6), ((12, 18), 6), ((13, 10), 6), ((1, 1), 7), ((3, 5), 7)])
def test_adaptive_avg_pool_matches_torch(in_size, out_size):
    x = _input((2,) + in_size + (3,))
    ours = sd.nn.AdaptiveAvgPool2d(out_size)(sd.tensor(x)).data
    theirs = TF.adaptive_avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), out_size).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_adaptive_avg_pool_gradient_flows():
    x = sd.tensor(_input((1, 5, 4, 2)).astype(np.float64), requires_grad=True)
    sd.nn.AdaptiveAvgPool2d(3)(x).sum().backward()
    xt = torch.from_numpy(x.data.transpose(0, 3, 1, 2).copy()).requires_grad_()
    TF.adaptive_avg_pool2d(xt, 3).sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10)


@pytest.mark.parametrize("size,k,s,p", [(112, 3, 2, 0), (55, 3, 2, 0), (14, 2, 2, 0), (7, 2, 2, 0), (9, 3, 2, 1),
                                        (10, 3, 3, 1), (8, 3, 1, 1)])
def test_ceil_max_pool_matches_torch(size, k, s, p):
    x = _input((1, size, size + 1, 2))
    ours = sd.nn.MaxPool2d(k, s, p, ceil_mode=True)(sd.tensor(x)).data
    theirs = TF.max_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), k, s, p, ceil_mode=True).numpy()
    np.testing.assert_array_equal(ours, theirs.transpose(0, 2, 3, 1))
