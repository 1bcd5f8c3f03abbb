"""read_keras_h5: Keras 2 HDF5 layouts written here with h5py (full-model file with a
model_weights group, weights-only file, chunked layer_names), order, values, errors."""
import h5py
import numpy as np
import pytest

import strided as sd
from strided import nn
from strided.io import ModelFileError, read_keras_h5

rng = np.random.default_rng(0)
LAYERS = {  # layer -> [(weight name, array)], in model order
    "conv2d": [("conv2d/kernel:0", rng.standard_normal((3, 3, 3, 4)).astype(np.float32)),
               ("conv2d/bias:0", rng.standard_normal(4).astype(np.float32))],
    "batch_normalization": [("batch_normalization/gamma:0", rng.uniform(0.5, 2, 4).astype(np.float32)),
                            ("batch_normalization/beta:0", rng.standard_normal(4).astype(np.float32)),
                            ("batch_normalization/moving_mean:0", rng.standard_normal(4).astype(np.float32)),
                            ("batch_normalization/moving_variance:0", rng.uniform(0.5, 2, 4).astype(np.float32))],
    "re_lu": [],
    "depthwise_conv2d": [("depthwise_conv2d/depthwise_kernel:0",
                          rng.standard_normal((3, 3, 4, 1)).astype(np.float32))],
    "flatten": [],
    "dense": [("dense/kernel:0", rng.standard_normal((16, 2)).astype(np.float32)),
              ("dense/bias:0", rng.standard_normal(2).astype(np.float32))],
}


def write_keras(path, full_model=True, chunked=False, layers=LAYERS):
    with h5py.File(path, "w") as f:
        if full_model:
            f.attrs["keras_version"] = b"2.15.0"
            f.attrs["backend"] = b"tensorflow"
            f.attrs["model_config"] = b'{"class_name": "Sequential"}'
            root = f.create_group("model_weights")
        else:
            root = f
        names = [n.encode() for n in layers]
        if chunked:  # how Keras stores attributes too large for one HDF5 header
            root.attrs["layer_names0"] = names[:3]
            root.attrs["layer_names1"] = names[3:]
        else:
            root.attrs["layer_names"] = names
        for layer, weights in layers.items():
            group = root.create_group(layer)
            group.attrs["weight_names"] = np.array([w.encode() for w, _ in weights], dtype="S")
            for name, value in weights:
                group.create_dataset(name, data=value)
    return path


def expected():
    return [(name, value) for weights in LAYERS.values() for name, value in weights]


@pytest.mark.parametrize("layout", ["full model", "weights only", "chunked layer_names"])
def test_names_order_and_values(tmp_path, layout):
    path = write_keras(tmp_path / "m.h5", full_model=layout != "weights only", chunked=layout.startswith("chunked"))
    state = read_keras_h5(path)
    assert [n for n, _ in expected()] == list(state)
    for name, value in expected():
        assert state[name].dtype == np.float32
        np.testing.assert_array_equal(state[name], value)


def test_keras_layouts_fit_strided_without_transposition(tmp_path):
    """Keras kernels are HWIO / (in, out) like strided: loaded as they are, the conv computes
    what a plain NumPy correlation with the Keras kernel gives."""
    state = read_keras_h5(write_keras(tmp_path / "m.h5"))
    conv = nn.Conv2d(3, 4, 3)
    conv.load_state_dict({"weight": state["conv2d/kernel:0"], "bias": state["conv2d/bias:0"]})
    x = np.random.default_rng(1).standard_normal((1, 5, 5, 3)).astype(np.float32)
    with sd.no_grad():
        y = conv(sd.tensor(x)).data
    k, b = LAYERS["conv2d"][0][1], LAYERS["conv2d"][1][1]
    ref = np.array([[[np.sum(x[0, i:i + 3, j:j + 3, :, None] * k, axis=(0, 1, 2)) + b
                      for j in range(3)] for i in range(3)]])
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_weight_names_without_the_layer_prefix(tmp_path):
    layers = {"block": [("kernel:0", np.ones((2, 2), np.float32))]}
    state = read_keras_h5(write_keras(tmp_path / "m.h5", layers=layers))
    assert list(state) == ["block/kernel:0"]


def test_missing_layer_group_and_missing_dataset(tmp_path):
    path = write_keras(tmp_path / "m.h5")
    with h5py.File(path, "a") as f:
        del f["model_weights/dense/dense/bias:0"]
    with pytest.raises(ModelFileError, match=r"weight 'dense/bias:0' of layer 'dense' is missing"):
        read_keras_h5(path)
    with h5py.File(path, "a") as f:
        del f["model_weights/dense"]
    with pytest.raises(ModelFileError, match=r"layer 'dense' is listed in layer_names but has no group"):
        read_keras_h5(path)


def test_not_keras_and_not_hdf5(tmp_path):
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ModelFileError, match="no 'layer_names' attribute"):
        read_keras_h5(tmp_path / "data.h5")
    with h5py.File(tmp_path / "k3.weights.h5", "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.zeros((2, 2)))
    with pytest.raises(ModelFileError, match="Keras 3"):
        read_keras_h5(tmp_path / "k3.weights.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(ModelFileError, match="junk.h5.*not a readable HDF5 file"):
        read_keras_h5(tmp_path / "junk.h5")
    data = write_keras(tmp_path / "m.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.h5"):
        read_keras_h5(tmp_path / "cut.h5")
    with pytest.raises(ModelFileError, match="does not exist"):
        read_keras_h5(tmp_path / "nope.h5")
