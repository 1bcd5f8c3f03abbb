"""strided.face.embedding: the embedding network, the P x K loader and the loss choice."""
import numpy as np
import pytest

from strided import nn
from strided.data.dataset import ArrayDataset
from strided.data.sampler import PKSampler
from strided.face import losses
from strided.face.embedding import EmbeddingNet, PKBatches, embed_images, embedding_loss
from strided.tensor import Tensor


def tiny_net(dim=4):
    return nn.Sequential(nn.Flatten(), nn.Linear(12, dim))


def test_embedding_net_normalises_and_keeps_the_head_in_its_state():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2, 2, 3)).astype(np.float32)
    net = EmbeddingNet(tiny_net(), normalize=True, head=losses.SiameseHead(4))
    e = net(Tensor(x)).data
    raw = net.backbone(Tensor(x)).data
    np.testing.assert_allclose(e, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5)
    assert any(k.startswith("head.") for k in net.state_dict())
    np.testing.assert_allclose(embed_images(EmbeddingNet(net.backbone, normalize=False), x), raw, rtol=1e-6)


def test_embedding_loss_is_the_named_loss():
    rng = np.random.default_rng(1)
    e = Tensor(rng.normal(size=(8, 4)))
    y = np.repeat(np.arange(4), 2)
    net = EmbeddingNet(tiny_net(), head=losses.SiameseHead(4))
    cases = [(("triplet", "semi-hard", None), losses.semi_hard_triplet_loss(e, y, 0.2)),
             (("triplet", "batch-hard", 0.5), losses.batch_hard_triplet_loss(e, y, 0.5)),
             (("triplet", "batch-all", None), losses.batch_all_triplet_loss(e, y, 0.2)),
             (("contrastive", "semi-hard", None), losses.batch_contrastive_loss(e, y, 1.0)),
             (("siamese", "semi-hard", None), net.head.batch_loss(e, y))]
    for (loss, mining, margin), expected in cases:
        assert float(embedding_loss(loss, net, mining, margin)(e, y).item()) == pytest.approx(float(expected.item()))
    with pytest.raises(ValueError, match="needs EmbeddingNet"):
        embedding_loss("siamese", EmbeddingNet(tiny_net()))
    with pytest.raises(ValueError, match="loss must be one of"):
        embedding_loss("arcface", net)


def test_pk_batches_give_p_classes_of_k_float_images_and_follow_the_epoch():
    labels = np.repeat(np.arange(5), 6)
    images = np.arange(30 * 12, dtype=np.uint8).reshape(30, 2, 2, 3)
    data = ArrayDataset(images, labels, [str(c) for c in range(5)])
    loader = PKBatches(data, PKSampler(labels, p=3, k=2, seed=7))
    batches = list(loader)
    assert len(batches) == len(loader) == 30 // 6
    x, y = batches[0]
    assert x.dtype == np.float32 and x.shape == (6, 2, 2, 3) and x.max() <= 1.0
    assert len(set(y.tolist())) == 3 and all(np.sum(y == c) == 2 for c in set(y.tolist()))
    loader.set_epoch(1)
    again = list(loader)
    loader.set_epoch(0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(batches, list(loader)))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(batches, again))
