"""export_onnx: strided models traced to ONNX, checked by onnx.checker and run by onnxruntime.

Every exported graph takes the model's NHWC input; outputs must match strided's
within ``max|strided - onnxruntime| / max|strided| <= 1e-4`` (float32, eval mode,
batch-norm statistics set to non-trivial values).  Inputs are small to keep the
run light.
"""
import numpy as np
import pytest

import strided as sd
import strided.functional as F
from strided import models, nn
from strided.tensor import Function

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from strided.io import ModelFileError, export_onnx  # noqa: E402
from strided.io.onnx_export import ExportError, build_onnx  # noqa: E402

RTOL = 1e-4


def randomize_bn(model, seed=0):
    """Non-trivial batch-norm parameters and running statistics (eval mode must really use them)."""
    rng = np.random.default_rng(seed)
    for _, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d) and m.gamma is not None:
            C = m.num_features
            m.gamma.data[...] = rng.uniform(0.5, 1.5, C)
            m.beta.data[...] = rng.uniform(-0.2, 0.2, C)
            m.running_mean[...] = rng.uniform(-0.2, 0.2, C)
            m.running_var[...] = rng.uniform(0.5, 1.5, C)
    return model


def run_ort(proto, x):
    data = proto if isinstance(proto, (bytes, str)) else proto.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def strided_forward(model, x):
    model.eval()
    with sd.no_grad():
        return model(sd.tensor(x)).data


def assert_parity(model, shape, seed=1, batch=None):
    proto = build_onnx(model, shape)
    onnx.checker.check_model(proto, full_check=True)
    run_shape = shape if batch is None else (batch,) + tuple(shape[1:])
    x = np.random.default_rng(seed).standard_normal(run_shape).astype(np.float32)
    expected = strided_forward(model, x)
    got = run_ort(proto, x)
    assert got.shape == expected.shape
    err = np.abs(got - expected).max() / np.abs(expected).max()
    assert err <= RTOL, f"relative error {err:.2e}"
    return proto


def op_counts(proto):
    counts = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


# ------------------------------------------------------------------------------------------ registry models
MODELS = [
    ("lenet5", (1, 32, 32, 1), {}),
    ("vgg_small", (2, 28, 28, 1), {}),
    ("resnet_small", (2, 28, 28, 1), {}),
    ("resnet20", (1, 32, 32, 3), {}),            # option A shortcut: slicing and channel padding
    ("resnet18", (1, 32, 32, 3), {"num_classes": 10}),
    ("mobilenet_v1", (1, 32, 32, 3), {"alpha": 0.25, "num_classes": 10}),   # Keras (0, 1) padding
    ("mobilenet_v2", (1, 32, 32, 3), {"width_mult": 0.5, "num_classes": 10}),
    ("efficientnet_b0", (1, 32, 32, 3), {"num_classes": 10}),   # swish, squeeze-excite
    ("efficientnet_lite0", (1, 32, 32, 3), {"num_classes": 10}),  # TF "same" padding, ReLU6
    ("googlenet", (1, 32, 32, 3), {"num_classes": 10}),          # inception concat, ceil-mode pools
]


@pytest.mark.parametrize("name, shape, kw", MODELS, ids=[m[0] for m in MODELS])
def test_registry_model_matches_onnxruntime(name, shape, kw):
    model = randomize_bn(models.create(name, **kw))
    model.build(shape)
    randomize_bn(model)
    proto = assert_parity(model, shape)
    assert proto.graph.input[0].type.tensor_type.shape.dim[3].dim_value == shape[3]   # NHWC in


def test_lenet_graph_layout_and_names(tmp_path):
    model = models.create("lenet5")
    path = export_onnx(model, tmp_path / "lenet5.onnx", (1, 32, 32, 1))
    assert str(path).endswith("lenet5.onnx") and not [p for p in tmp_path.iterdir() if p.name != "lenet5.onnx"]
    proto = onnx.load(str(path))
    counts = op_counts(proto)
    # one transpose NHWC -> NCHW at the input, one back to NHWC before the flatten
    assert counts == {"Transpose": 2, "Conv": 2, "Relu": 4, "MaxPool": 2, "Flatten": 1, "Gemm": 3}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    w = model.state_dict()["features.0.weight"]                   # HWIO (5, 5, 1, 6)
    np.testing.assert_array_equal(inits["features.0.weight"], w.transpose(3, 2, 0, 1))   # OIHW
    np.testing.assert_array_equal(inits["classifier.1.weight"], model.state_dict()["classifier.1.weight"])
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 32, 32, 1]
    assert {p.key: p.value for p in proto.metadata_props}["strided.input_layout"] == "NHWC"
    x = np.random.default_rng(0).standard_normal((3, 32, 32, 1)).astype(np.float32)   # another batch size
    y = run_ort(str(path), x)
    np.testing.assert_allclose(y, strided_forward(model, x), rtol=1e-4, atol=1e-5)


def test_export_keeps_training_mode_and_uses_eval():
    model = randomize_bn(models.create("vgg_small"))
    model.build((2, 28, 28, 1))
    randomize_bn(model)
    model.train()
    proto = build_onnx(model, (2, 28, 28, 1))       # batch norm exported with running statistics
    assert model.training and all(m.training for m in model.modules())
    assert "Dropout" not in op_counts(proto)
    x = np.random.default_rng(3).standard_normal((2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(run_ort(proto, x), strided_forward(model, x), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------ individual ops
class Mixed(nn.Module):
    """Many ops in one forward: grouped/dilated/'same' convs, every activation, pooling with padding,
    concat, residual add, squeeze-excite mul, slicing, F.pad, reductions, transpose + reshape,
    dense on a 3-D input, softmax."""

    def __init__(self):
        super().__init__()
        self.conv_same = nn.Conv2d(3, 8, 3, stride=2, padding="same")                 # (0, 1) pads
        self.conv_group = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2)
        self.depthwise = nn.DepthwiseConv2d(8, 3, padding=1, depth_multiplier=2)
        self.bn = nn.BatchNorm2d(16)
        self.point = nn.Conv2d(16, 8, 1, bias=False)
        self.leaky = nn.LeakyReLU(0.2)
        self.max_pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.avg_pool = nn.AvgPool2d(3, stride=1, padding=1)       # padding left out of the count
        self.se_fc = nn.Conv2d(8, 8, 1)
        self.dense = nn.Linear(8, 6)
        self.head = nn.Linear(6 * 4, 5)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        y = self.leaky(self.conv_same(x))                          # (N, 4, 4, 8)
        y = F.tanh(self.conv_group(y)) + y                         # residual add
        z = F.relu6(self.bn(self.depthwise(y)))                    # (N, 4, 4, 16)
        z = self.point(z)
        z = self.max_pool(z) - self.avg_pool(z) * 0.5
        s = F.sigmoid(self.se_fc(F.global_avg_pool2d(z, keepdims=True)))
        z = F.swish(z * s)
        z = sd.concat([z[:, :, :, :4], z[:, ::-1, :, 4:]], axis=-1)
        z = F.pad(z, ((0, 0), (1, 0), (0, 1), (0, 0)))             # (N, 5, 5, 8)
        z = z[:, 1:, :-1, :] / 2.0 + z.mean(axis=(1, 2), keepdims=True)
        z = z.transpose(0, 3, 1, 2).reshape(z.shape[0], 8, 16)    # channels first, then rows of 16
        z = z.transpose(0, 2, 1)                                   # (N, 16, 8)
        z = self.drop(self.dense(z))                               # MatMul + Add on 3-D
        z = z.reshape(z.shape[0], 4, 4, 6).sum(axis=1)             # (N, 4, 6)
        z = (nn.Flatten()(z) * 0.1) ** 2
        return F.softmax(self.head((-z).exp() + (z - 0.5).abs()))


def test_mixed_ops_match_onnxruntime():
    model = randomize_bn(Mixed())
    model.build((2, 8, 8, 3))
    randomize_bn(model)
    proto = assert_parity(model, (2, 8, 8, 3))
    counts = op_counts(proto)
    for op in ("Conv", "LeakyRelu", "Tanh", "Clip", "BatchNormalization", "MaxPool", "AveragePool",
               "GlobalAveragePool", "Sigmoid", "Mul", "Concat", "Slice", "Pad", "ReduceSum", "MatMul",
               "Softmax", "Sub", "Div", "Pow", "Exp", "Abs", "Neg", "Reshape"):
        assert op in counts, op
    conv = next(n for n in proto.graph.node if n.name == "conv_same")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["pads"] == [0, 0, 1, 1] and attrs["strides"] == [2, 2]      # "same" as explicit pads
    grouped = next(n for n in proto.graph.node if n.name == "conv_group")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in grouped.attribute}
    assert attrs["group"] == 2 and attrs["dilations"] == [2, 2]


def test_dynamic_batch():
    model = randomize_bn(Mixed())
    model.build((1, 8, 8, 3))
    randomize_bn(model)
    assert_parity(model, (1, 8, 8, 3), batch=3)


class Stacked(nn.Module):
    def forward(self, x):
        return sd.stack([x[:, 0], x.max(axis=1)], axis=1)


def test_stack_max_and_integer_index():
    assert_parity(Stacked(), (2, 3, 4, 5))


def test_leaky_relu_sigmoid_chain_and_output_is_input_transform():
    model = nn.Sequential(nn.LeakyReLU(), nn.Sigmoid(), nn.Tanh(), nn.Softmax(axis=1))
    assert_parity(model, (2, 3, 4, 5))


def test_model_not_built_from_engine_ops_is_refused():
    # a model that returns its input unchanged does not depend on it through any op
    with pytest.raises(ExportError, match="does not depend on its input"):
        build_onnx(nn.Identity(), (1, 2, 2, 1))


class Custom(Function):
    def forward(self, x):
        return x * 3

    def backward(self, gy):
        return gy * 3


class UsesCustom(nn.Module):
    def forward(self, x):
        return Custom()(F.relu(x))


def test_unsupported_op_is_named():
    with pytest.raises(ExportError, match="Custom") as info:
        build_onnx(UsesCustom(), (1, 4, 4, 2))
    assert "supported:" in str(info.value) and "Conv" in str(info.value)


@pytest.mark.parametrize("shape", [(1, 0, 4, 3), "abc", (1.5, 4, 4, 3), ()])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        build_onnx(models.create("lenet5"), shape)


def test_export_error_is_not_a_file_error():
    assert issubclass(ExportError, ValueError) and not issubclass(ExportError, ModelFileError)
