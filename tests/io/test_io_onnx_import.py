"""import_onnx: ONNX graphs read into strided modules that take NHWC input.

* round trips strided -> ONNX -> strided give the same outputs and the same state_dict;
* NCHW graphs built by hand with ``onnx.helper`` (conv nets with Pad, Concat,
  Transpose/Reshape, Gemm, pooling variants, PyTorch-style shape arithmetic, ...)
  agree with onnxruntime run on the NCHW input;
* a small PyTorch CNN exported by ``torch.onnx`` agrees with PyTorch;
* missing, empty, corrupt and truncated files raise ModelFileError naming the file,
  unsupported operators an error that lists them.
"""
import numpy as np
import pytest

import strided as sd
from strided import models, nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from strided.io import ModelFileError, OnnxModel, UnsupportedOnnxError, export_onnx, import_onnx  # noqa: E402

RTOL = 1e-4
rng = np.random.default_rng(0)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def ints(name, values):
    return init(name, np.asarray(values, dtype=np.int64))


def make_model(nodes, inputs, outputs, initializers, opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def run_ort(model, *xs):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})


def nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def forward(model, *xs):
    with sd.no_grad():
        y = model(*[sd.tensor(x) for x in xs])
    return tuple(t.data for t in y) if isinstance(y, tuple) else y.data


def randomize_bn(model, seed=0):
    r = np.random.default_rng(seed)
    for _, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d) and m.gamma is not None:
            C = m.num_features
            m.gamma.data[...] = r.uniform(0.5, 1.5, C)
            m.beta.data[...] = r.uniform(-0.2, 0.2, C)
            m.running_mean[...] = r.uniform(-0.2, 0.2, C)
            m.running_var[...] = r.uniform(0.5, 1.5, C)
    return model


# ------------------------------------------------------------------------------------------ round trips
ROUND_TRIPS = [
    ("lenet5", (2, 32, 32, 1), {}),
    ("vgg_small", (2, 28, 28, 1), {}),
    ("resnet_small", (1, 28, 28, 1), {}),
    ("resnet20", (1, 32, 32, 3), {}),
    ("mobilenet_v2", (1, 32, 32, 3), {"width_mult": 0.5, "num_classes": 10}),
    ("efficientnet_b0", (1, 32, 32, 3), {"num_classes": 10}),
    ("googlenet", (1, 32, 32, 3), {"num_classes": 10}),
]


@pytest.mark.parametrize("name, shape, kw", ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_round_trip(tmp_path, name, shape, kw):
    model = randomize_bn(models.create(name, **kw))
    model.build(shape)
    randomize_bn(model).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", shape)
    back = import_onnx(path)
    assert isinstance(back, OnnxModel) and not back.training and back.onnx_input_layout == "NHWC"
    x = randn(*shape)
    np.testing.assert_allclose(forward(back, x), forward(model, x), rtol=1e-5, atol=1e-6)
    # the same names and values: the weights load back into the original architecture
    original, imported = model.state_dict(), back.state_dict()
    assert list(imported) == [k for k in original if k in imported] and set(imported) == set(original)
    for key, value in original.items():
        np.testing.assert_array_equal(imported[key], value, err_msg=key)
    fresh = models.create(name, **kw)
    fresh.load_state_dict(imported)
    np.testing.assert_allclose(forward(fresh.eval(), x), forward(model, x), rtol=1e-5, atol=1e-6)


def test_round_trip_of_other_batch_size_and_gradients(tmp_path):
    model = randomize_bn(models.create("resnet_small", widths=(8, 16, 16)))
    model.build((1, 16, 16, 1))
    back = import_onnx(export_onnx(model, tmp_path / "r.onnx", (1, 16, 16, 1)))
    x = randn(3, 16, 16, 1)
    np.testing.assert_allclose(forward(back, x), forward(model.eval(), x), rtol=1e-5, atol=1e-6)
    # the imported model trains: gradients reach its (HWIO) convolution weights
    back.train()
    loss = sd.functional.cross_entropy(back(sd.tensor(x)), np.array([0, 1, 2]))
    loss.backward()
    assert all(p.grad is not None for p in back.parameters())
    assert getattr(back, "stem.0").weight.grad.shape == (3, 3, 1, 8)     # named after "stem.0.weight"
    text = back.summary((1, 16, 16, 1), print_fn=None)
    assert "Conv2d" in text and "Linear" in text


# ------------------------------------------------------------------------------------------ hand-built NCHW graphs
def conv_net_graph():
    """Pad -> Conv/2 -> BN -> Relu -> [1x1 conv | maxpool -> depthwise conv] -> Concat(axis 1)
    -> Transpose to NHWC -> Reshape(0, -1) -> Gemm(transB) -> Softmax."""
    nodes = [
        helper.make_node("Pad", ["x", "pads", "pad_value"], ["p"], mode="constant"),
        helper.make_node("Conv", ["p", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["a"], kernel_shape=[1, 1]),
        helper.make_node("MaxPool", ["r"], ["mp"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["mp", "wd", "bd"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
        helper.make_node("Transpose", ["cat"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    inits = [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), init("pad_value", np.array(0.25, np.float32)),
             init("w1", randn(8, 3, 3, 3, scale=0.3)), init("b1", randn(8)),
             init("gamma", rng.uniform(0.5, 1.5, 8).astype(np.float32)), init("beta", randn(8, scale=0.1)),
             init("mean", randn(8, scale=0.1)), init("var", rng.uniform(0.5, 1.5, 8).astype(np.float32)),
             init("w2", randn(4, 8, 1, 1, scale=0.3)), init("wd", randn(8, 1, 3, 3, scale=0.3)), init("bd", randn(8)),
             ints("shape", [0, -1]), init("wf", randn(10, 4 * 4 * 12, scale=0.1)), init("bf", randn(10))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])
    return make_model(nodes, [x], [y], inits)


def test_hand_built_conv_net_matches_onnxruntime():
    proto = conv_net_graph()
    model = import_onnx(proto)
    assert model.onnx_input_layout == "NCHW"
    x = randn(2, 3, 8, 8)
    (expected,) = run_ort(proto, x)
    got = forward(model, nhwc(x))
    assert got.shape == (2, 10) and rel_err(got, expected) <= RTOL
    kinds = sorted(type(m).__name__ for _, m in model.named_modules() if m is not model)
    assert kinds == ["BatchNorm2d", "Conv2d", "Conv2d", "Conv2d", "Linear"]
    assert "Linear(192, 10)" in repr(model) and "groups=8" in repr(model)


def pytorch_style_graph():
    """SAME_UPPER conv, bias Add with a (C, 1, 1) constant, Clip (ReLU6), AveragePool counting its
    padding, squeeze-excite (GlobalAveragePool, Sigmoid, Mul), LeakyRelu, ceil-mode MaxPool,
    ``x.view(x.size(0), -1)`` as Shape -> Gather -> Unsqueeze -> Concat -> Reshape, MatMul + Add,
    HardSwish, Dropout, Identity; a second output stays 4-D."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Add", ["c1", "bias"], ["c1b"]),
        helper.make_node("Clip", ["c1b", "zero", "six"], ["r6"]),
        helper.make_node("AveragePool", ["r6"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["ap"], ["gap"]),
        helper.make_node("Conv", ["gap", "wse", "bse"], ["se"], kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["se"], ["gate"]),
        helper.make_node("Mul", ["ap", "gate"], ["scaled"]),
        helper.make_node("LeakyRelu", ["scaled"], ["feat"], alpha=0.1),
        helper.make_node("MaxPool", ["feat"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("Shape", ["mp"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero_i"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["mp", "newshape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "wm"], ["mm"]),
        helper.make_node("Add", ["mm", "bm"], ["dense"]),
        helper.make_node("HardSwish", ["dense"], ["hs"]),
        helper.make_node("Dropout", ["hs"], ["dr"]),
        helper.make_node("Identity", ["dr"], ["y"]),
    ]
    inits = [init("w1", randn(6, 4, 3, 3, scale=0.3)), init("bias", randn(6, 1, 1)),
             init("zero", np.array(0, np.float32)), init("six", np.array(6, np.float32)),
             init("wse", randn(6, 6, 1, 1, scale=0.5)), init("bse", randn(6)),
             ints("zero_i", 0), ints("axes0", [0]), ints("minus1", [-1]),
             init("wm", randn(24, 7, scale=0.3)), init("bm", randn(7))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 7, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 7])
    feat = helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["N", 6, 4, 4])
    return make_model(nodes, [x], [y, feat], inits)


def test_pytorch_style_graph_matches_onnxruntime():
    proto = pytorch_style_graph()
    model = import_onnx(proto)
    x = randn(3, 4, 7, 7)
    expected_y, expected_feat = run_ort(proto, x)
    y, feat = forward(model, nhwc(x))
    assert rel_err(y, expected_y) <= RTOL
    assert feat.shape == (3, 4, 4, 6)                         # 4-D outputs come back channels-last
    assert rel_err(feat, nhwc(expected_feat)) <= RTOL


def misc_graph(opset):
    """SAME_LOWER conv, Slice (negative step), ReduceMean, Sub/Div/Pow/Sqrt/Exp/Tanh with constants,
    Squeeze/Unsqueeze, Constant and Cast nodes, Flatten of an NCHW tensor (NCHW order), Softmax."""
    axes_input = opset >= 13
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER"),
        helper.make_node("Slice", ["c", "starts", "ends", "axes", "steps"], ["s"]),
        helper.make_node("ReduceMean", ["s"], ["m"], axes=[2, 3], keepdims=1),
        helper.make_node("Sub", ["s", "m"], ["centred"]),
        helper.make_node("Constant", [], ["two"], value=helper.make_tensor("v", TensorProto.FLOAT, [], [2.0])),
        helper.make_node("Pow", ["centred", "two"], ["sq"]),
        helper.make_node("Sqrt", ["sq"], ["absd"]),
        helper.make_node("Div", ["absd", "divisor"], ["d"]),
        helper.make_node("Tanh", ["d"], ["th"]),
        helper.make_node("Exp", ["th"], ["e"]),
        helper.make_node("Cast", ["e"], ["ec"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["ec"], ["f"], axis=1),
        helper.make_node("Unsqueeze", ["f", "ax1"] if axes_input else ["f"], ["u"],
                         **({} if axes_input else {"axes": [1]})),
        helper.make_node("Squeeze", ["u", "ax1"] if axes_input else ["u"], ["sq2"],
                         **({} if axes_input else {"axes": [1]})),
        helper.make_node("Softmax", ["sq2"], ["y"], axis=1),
    ]
    inits = [init("w", randn(5, 3, 2, 2, scale=0.5)),
             ints("starts", [-1, 1]), ints("ends", [-1000, 4]), ints("axes", [1, 3]), ints("steps", [-2, 1]),
             init("divisor", rng.uniform(1, 2, (3, 1, 1)).astype(np.float32))]
    if axes_input:
        inits.append(ints("ax1", [1]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 18])
    return make_model(nodes, [x], [y], inits, opset=opset)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_misc_ops_match_onnxruntime(opset):
    proto = misc_graph(opset)
    model = import_onnx(proto)
    x = randn(2, 3, 5, 5)
    (expected,) = run_ort(proto, x)
    assert rel_err(forward(model, nhwc(x)), expected) <= RTOL


def test_opset11_softmax_over_flattened_axes_and_clip():
    nodes = [
        helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
        helper.make_node("Softmax", ["c"], ["y"], axis=1),          # opset < 13: over C, H, W together
    ]
    inits = [init("lo", np.array(-0.5, np.float32)), init("hi", np.array(0.7, np.float32))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 2, 2])
    proto = make_model(nodes, [x], [y], inits, opset=11)
    data = randn(2, 3, 2, 2)
    (expected,) = run_ort(proto, data)
    got = forward(import_onnx(proto), nhwc(data))
    assert rel_err(got, nhwc(expected)) <= RTOL


def test_input_layout_override_and_shape_check():
    proto = conv_net_graph()
    x = randn(1, 3, 8, 8)
    model = import_onnx(proto)
    with pytest.raises(ValueError, match=r"expects input 'x' of shape \(N, 8, 8, 3\)"):
        model(sd.tensor(x))                      # NCHW given to a channels-last module
    with pytest.raises(ValueError, match="input_layout"):
        import_onnx(proto, input_layout="CHWN")
    as_nhwc = import_onnx(proto, input_layout="NHWC")   # the graph taken as is: ONNX's own order
    with pytest.raises(ValueError, match="expects input"):
        as_nhwc(sd.tensor(nhwc(x)))
    (expected,) = run_ort(proto, x)
    assert rel_err(forward(as_nhwc, x), expected) <= RTOL


# ------------------------------------------------------------------------------------------ PyTorch's exporter
def test_torch_exported_cnn():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    torch.manual_seed(0)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 8, 3, padding=1), tnn.BatchNorm2d(8), tnn.ReLU6(), tnn.MaxPool2d(3, 2, ceil_mode=True),
                tnn.Conv2d(8, 8, 3, groups=8, padding=1), tnn.Hardswish(), tnn.AvgPool2d(3, 1, padding=1))
            self.fc = tnn.Linear(8 * 4 * 4, 5)

        def forward(self, x):
            x = self.features(x)
            return self.fc(x.view(x.size(0), -1))

    net = Net().eval()
    with torch.no_grad():
        net.features[1].running_mean.uniform_(-0.2, 0.2)
        net.features[1].running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 8, 8)
    import io
    import warnings
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), buffer, dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "N"}})
    except Exception as error:  # pragma: no cover - depends on the torch build
        pytest.skip(f"torch.onnx.export unavailable: {error}")
    model = import_onnx(buffer.getvalue())
    with torch.no_grad():
        expected = net(x).numpy()
    assert rel_err(forward(model, nhwc(x.numpy())), expected) <= RTOL
    assert model.fc.weight.shape == (128, 5)           # torch (out, in) -> strided (in, out)


# ------------------------------------------------------------------------------------------ unsupported, corrupt
def test_unsupported_ops_are_listed():
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
             helper.make_node("Erf", ["r"], ["e"]),
             helper.make_node("Relu", ["e"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])
    proto = make_model(nodes, [x], [y], [init("scales", np.array([1, 1, 2, 2], np.float32))])
    with pytest.raises(UnsupportedOnnxError, match="Erf, Resize") as info:
        import_onnx(proto)
    assert isinstance(info.value, ModelFileError) and isinstance(info.value, NotImplementedError)
    assert "Supported:" in str(info.value) and "Conv" in str(info.value)


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "lenet5.onnx"
    export_onnx(models.create("lenet5"), path, (1, 32, 32, 1))
    return path


def test_missing_empty_folder_and_garbage(tmp_path, good_file):
    with pytest.raises(ModelFileError, match="nothere.onnx: no such file"):
        import_onnx(tmp_path / "nothere.onnx")
    with pytest.raises(ModelFileError, match="is a folder"):
        import_onnx(tmp_path)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty.onnx: empty file"):
        import_onnx(empty)
    for i, junk in enumerate([b"\x00" * 64, b"hello, this is text\n" * 10, bytes(range(256)) * 4,
                              np.random.default_rng(1).bytes(4096), b"\x08\x07\x12\x05strid"]):
        bad = tmp_path / f"junk{i}.onnx"
        bad.write_bytes(junk)
        with pytest.raises(ModelFileError, match=f"junk{i}.onnx"):
            import_onnx(bad)


def test_truncated_files(tmp_path, good_file):
    data = good_file.read_bytes()
    cuts = sorted(set(list(range(1, 200, 7)) + list(np.linspace(200, len(data) - 1, 40).astype(int))))
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.onnx"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match=f"cut{cut}.onnx"):
            import_onnx(bad)


def test_corrupted_bytes(tmp_path, good_file):
    data = bytearray(good_file.read_bytes())
    r = np.random.default_rng(2)
    for k in range(25):
        damaged = bytearray(data)
        for pos in r.integers(0, len(data), 8):
            damaged[pos] ^= 0xFF
        path = tmp_path / f"flip{k}.onnx"
        path.write_bytes(bytes(damaged))
        try:
            model = import_onnx(path)
        except ModelFileError as error:
            assert f"flip{k}.onnx" in str(error)
            continue
        # flipped bits inside weights still make a valid file: it must run
        model(sd.tensor(np.zeros((1, 32, 32, 1), np.float32)))


def test_external_data(tmp_path):
    model = models.create("lenet5")
    proto = onnx.load(str(export_onnx(model, tmp_path / "a.onnx", (1, 32, 32, 1))))
    folder = tmp_path / "ext"
    folder.mkdir()
    onnx.save_model(proto, str(folder / "m.onnx"), save_as_external_data=True, location="m.data",
                    size_threshold=0)
    back = import_onnx(folder / "m.onnx")
    x = randn(1, 32, 32, 1)
    np.testing.assert_allclose(forward(back, x), forward(model.eval(), x), rtol=1e-5, atol=1e-6)
    (folder / "m.data").unlink()
    with pytest.raises(ModelFileError, match="m.onnx: .*missing"):
        import_onnx(folder / "m.onnx")
    # a location outside the model's folder is refused before anything is read
    tampered = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    for t in tampered.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../a.onnx"
    (folder / "evil.onnx").write_bytes(tampered.SerializeToString())
    with pytest.raises(ModelFileError, match="evil.onnx: .*outside the model's folder"):
        import_onnx(folder / "evil.onnx")


def test_more_ops_match_onnxruntime():
    """SAME_UPPER max pool, GlobalMaxPool, ReduceSum/ReduceMax without keepdims, Gather on a computed
    tensor, MatMul of two computed tensors, ConstantOfShape, Concat of 2-D tensors."""
    nodes = [
        helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("GlobalMaxPool", ["mp"], ["gmp"]),
        helper.make_node("Flatten", ["gmp"], ["gflat"]),
        helper.make_node("ReduceSum", ["x", "axis2"], ["rs"], keepdims=0),
        helper.make_node("ReduceMax", ["rs"], ["rm"], axes=[2], keepdims=0),
        helper.make_node("Gather", ["rm", "picks"], ["g"], axis=1),
        helper.make_node("Unsqueeze", ["g", "axis2"], ["col"]),
        helper.make_node("Unsqueeze", ["g", "axis1"], ["row"]),
        helper.make_node("MatMul", ["col", "row"], ["outer"]),
        helper.make_node("Flatten", ["outer"], ["oflat"]),
        helper.make_node("Concat", ["gflat", "oflat"], ["cat"], axis=1),
        helper.make_node("ConstantOfShape", ["len"], ["halves"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Mul", ["cat", "halves"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["y"]),
    ]
    inits = [ints("axis2", [2]), ints("axis1", [1]), ints("picks", [3, 0, 1]), ints("len", [13])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 5, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 13])
    proto = make_model(nodes, [x], [y], inits, opset=13)
    data = randn(2, 4, 5, 5)
    (expected,) = run_ort(proto, data)
    assert rel_err(forward(import_onnx(proto), nhwc(data)), expected) <= RTOL


def test_conv1d_graph():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3], pads=[1, 0], strides=[2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["y"])]
    inits = [init("w", randn(4, 2, 3)), init("b", randn(4))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 9])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    proto = make_model(nodes, [x], [y], inits)
    data = randn(2, 2, 9)
    (expected,) = run_ort(proto, data)
    got = forward(import_onnx(proto), np.ascontiguousarray(data.transpose(0, 2, 1)))   # (N, L, C)
    assert rel_err(got, expected) <= RTOL


def test_invalid_attribute_is_a_file_error():
    nodes = [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 0, 1, 2])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 3])
    graph = helper.make_graph(nodes, "g", [x], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelFileError, match="not a permutation"):
        import_onnx(proto)
