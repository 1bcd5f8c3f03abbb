"""strided.style.features: taps by name, and weights read from files the tests write in each source's
exact layout (torch.save of a torchvision state dict, Keras 2 h5 via h5py, MatConvNet struct via
scipy.io.savemat), each compared with a PyTorch VGG built from the same arrays."""
import numpy as np
import pytest

import strided as sd
from strided.errors import ModelFileError
from strided.models.vgg import CONFIGS
from strided.style.features import VGGFeatures, load_vgg, vgg_layer_names

torch = pytest.importorskip("torch")


def random_convs(depth, seed=0):
    """[(W HWIO float32, b)] for every conv of VGG-depth, He-scaled so activations stay O(1)."""
    rng = np.random.default_rng(seed)
    out, c = [], 3
    for v in CONFIGS[depth]:
        if v == "M":
            continue
        w = rng.standard_normal((3, 3, c, v), dtype=np.float32) * np.float32(np.sqrt(2.0 / (9 * c)))
        out.append((w, (rng.standard_normal(v) * 0.1).astype(np.float32)))
        c = v
    return out


def torch_vgg(depth, convs):
    layers, k, c = [], 0, 3
    for v in CONFIGS[depth]:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
            continue
        conv = torch.nn.Conv2d(c, v, 3, padding=1)
        conv.weight.data = torch.tensor(convs[k][0].transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.tensor(convs[k][1])
        layers += [conv, torch.nn.ReLU()]
        k, c = k + 1, v
    return torch.nn.Sequential(*layers).eval()


def torch_taps(net, x_nchw, indices):
    out = {}
    with torch.no_grad():
        for i, layer in enumerate(net[:max(indices) + 1]):
            x_nchw = layer(x_nchw)
            if i in indices:
                out[i] = x_nchw.numpy().transpose(0, 2, 3, 1)
    return out


IMAGE = np.random.default_rng(5).uniform(0, 1, (1, 32, 34, 3)).astype(np.float32)


def check_against_torch(model, depth, convs, torch_input, names=("relu1_1", "conv3_2", "relu4_2", "relu5_1")):
    net = torch_vgg(depth, convs)
    taps = model.taps(IMAGE, list(names))
    index = vgg_layer_names(depth)
    expected_all = torch_taps(net, torch.tensor(torch_input.transpose(0, 3, 1, 2).copy()), [index[n] for n in names])
    for name in names:
        expected = expected_all[index[name]]
        np.testing.assert_allclose(taps[name].data, expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max(),
                                   err_msg=name)


def test_taps_equal_zoo_intermediate_outputs():
    from strided.models.vgg import make_features      # the zoo's vgg16().features (without its 124M-weight head)

    model = VGGFeatures(16)
    zoo = make_features(CONFIGS[16])
    zoo.load_state_dict(model.features.state_dict())
    x = model.prep(sd.tensor(IMAGE))
    outputs, h = {}, x
    for i, layer in enumerate(zoo):
        h = layer(h)
        outputs[i] = h.data
    taps = model.taps(IMAGE, ["conv1_1", "relu2_2", "pool3", "block4_conv3", "relu5_3"])
    names = vgg_layer_names(16)
    for name, tap in taps.items():
        key = {"block4_conv3": "relu4_3"}.get(name, name)
        np.testing.assert_array_equal(tap.data, outputs[names[key]], err_msg=name)


def test_taps_stop_after_the_last_layer():
    model = VGGFeatures(19)
    ran = []
    for name, module in model.features.named_modules():
        if name:
            module.register_forward_hook(lambda m, i, o, name=name: ran.append(name))
    model.taps(IMAGE, ["relu2_1"])
    assert max(int(n) for n in ran) == vgg_layer_names(19)["relu2_1"]


def test_unknown_layer_lists_valid_ones():
    with pytest.raises(KeyError, match="unknown layer 'relu6_1'.*relu5_4"):
        VGGFeatures(19).taps(IMAGE, ["relu6_1"])


def test_torchvision_pth(tmp_path):
    convs = random_convs(19, seed=1)
    index = [i for n, i in vgg_layer_names(19).items() if n.startswith("conv")]
    state = {}
    for i, (w, b) in zip(index, convs):
        state[f"features.{i}.weight"] = torch.tensor(w.transpose(3, 2, 0, 1).copy())
        state[f"features.{i}.bias"] = torch.tensor(b)
    state["classifier.0.weight"] = torch.zeros(4, 8)          # the full model's head is ignored
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    model = load_vgg(path)
    assert (model.depth, model.source, model.preprocessing) == (19, "torchvision", "torchvision")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    check_against_torch(model, 19, convs, ((IMAGE - mean) / std).astype(np.float32))


def test_keras_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    convs = random_convs(16, seed=2)
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    names = [n for n in vgg_layer_names(16) if n.startswith("conv")]
    with h5py.File(path, "w") as f:
        layer_names = ["input_1"]
        f.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S")
        for name, (w, b) in zip(names, convs):
            layer = f"block{name[4]}_conv{name[6]}"
            g = f.create_group(layer)
            g.attrs["weight_names"] = np.array([f"{layer}/kernel:0".encode(), f"{layer}/bias:0".encode()])
            g.create_dataset(f"{layer}/kernel:0", data=w)
            g.create_dataset(f"{layer}/bias:0", data=b)
            layer_names.append(layer)
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
    model = load_vgg(path)
    assert (model.depth, model.source, model.preprocessing) == (16, "keras", "caffe")
    caffe = IMAGE[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68])
    check_against_torch(model, 16, convs, caffe.astype(np.float32), names=("relu1_1", "relu3_3", "relu5_3"))


def write_matconvnet(path, convs, depth, average=(120.0, 110.0, 100.0), layout="meta"):
    import scipy.io

    layers = []
    for name, i in vgg_layer_names(depth).items():
        if name.startswith("conv"):
            w, b = convs[len([l for l in layers if l["type"] == "conv"])]
            weights = np.empty((1, 2), dtype=object)
            weights[0, 0], weights[0, 1] = w, b.reshape(-1, 1)
            layers.append({"name": name, "type": "conv", "weights": weights, "stride": np.array([[1, 1]]),
                           "pad": np.array([[1, 1, 1, 1]])})
        elif name.startswith("relu"):
            layers.append({"name": name, "type": "relu"})
        else:
            layers.append({"name": name, "type": "pool", "method": "max", "pool": np.array([[2, 2]])})
    cells = np.empty((1, len(layers)), dtype=object)
    for k, layer in enumerate(layers):
        cells[0, k] = layer
    image = np.ones((224, 224, 3)) * np.asarray(average)
    normalization = {"averageImage": image, "imageSize": np.array([[224, 224, 3]])}
    if layout == "meta":              # MatConvNet >= 1.0-beta18: meta.normalization
        scipy.io.savemat(str(path), {"layers": cells, "meta": {"normalization": normalization}})
    elif layout == "beta":            # the 2014 files (the course's): normalization at the top level
        scipy.io.savemat(str(path), {"layers": cells, "normalization": normalization})
    else:
        scipy.io.savemat(str(path), {"layers": cells})


def test_matconvnet_mat(tmp_path):
    convs = random_convs(19, seed=3)
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    write_matconvnet(path, convs, 19)
    model = load_vgg(path)
    assert (model.depth, model.source) == (19, "matconvnet")
    x = IMAGE * 255.0 - np.array([120.0, 110.0, 100.0])           # the file's average image, RGB
    check_against_torch(model, 19, convs, x.astype(np.float32), names=("relu1_1", "relu4_2", "relu5_1"))


@pytest.mark.parametrize("layout, mean", [("beta", (90.0, 80.0, 70.0)), ("none", (123.68, 116.779, 103.939))])
def test_matconvnet_average_image(tmp_path, layout, mean):
    """The average image of the older layout, and the course's MEANS when a file has none."""
    path = tmp_path / "imagenet-vgg-verydeep-16.mat"
    write_matconvnet(path, random_convs(16, seed=4), 16, average=(90.0, 80.0, 70.0), layout=layout)
    model = load_vgg(path)
    assert model.depth == 16
    np.testing.assert_allclose(-model.prep.b, mean)           # y = 255 x - mean


def test_files_that_do_not_fit(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelFileError, match="do not fit a VGG"):
        load_vgg(path)
    convs = random_convs(16)
    state = {f"features.{i}.weight": torch.tensor(w.transpose(3, 2, 0, 1).copy())
             for i, (w, _) in zip([0, 2, 5], convs)}
    state = {**state, **{f"features.{i}.bias": torch.zeros(w.shape[3]) for i, (w, _) in zip([0, 2, 5], convs)}}
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(ModelFileError, match="do not fit VGG-16 or VGG-19"):
        load_vgg(tmp_path / "short.pth")
    bad = random_convs(19)
    bad[3] = (bad[3][0][:, :, :, :7], bad[3][1][:7])             # conv2_2 with 7 filters
    write_matconvnet(tmp_path / "bad.mat", bad, 19)
    with pytest.raises(ModelFileError, match="do not fit VGG-19.*shape"):
        load_vgg(tmp_path / "bad.mat")
    (tmp_path / "x.mat").write_bytes(b"not a mat file")
    with pytest.raises(ModelFileError, match="not a readable MATLAB"):
        load_vgg(tmp_path / "x.mat")
    with pytest.raises(ModelFileError, match="unknown kind"):
        load_vgg((tmp_path / "x.mat").rename(tmp_path / "x.txt"))
