"""One-shot learning on classes never seen in training: triplet loss vs a softmax baseline.

Both networks are the zoo's ``vgg_small`` (3 x [conv3x3-BN-ReLU x2, max pool], global
average pooling, dropout, dense) trained for the same number of steps on the SEEN classes:

* metric learning: the dense layer outputs a 64-d embedding, L2-normalised, trained with the
  batch-hard (or semi-hard) triplet loss on P x K batches (``strided.data.sampler.PKSampler``);
* baseline: the same network with a softmax over the seen classes (cross-entropy, shuffled
  batches of the same size); its embedding is the penultimate layer (global average pool),
  raw and L2-normalised.

On the UNSEEN classes (test split) it reports N-way 1-shot accuracy (one support image per
class, nearest neighbour; N = number of unseen classes), and verification over every pair
of ``--per-class`` images per class: ROC AUC, EER, TAR at FAR = 1e-2 / 1e-3 (Euclidean
distance), plus raw pixels as a floor.

    PYTHONPATH=src python benchmarks/one_shot.py                       # Fashion-MNIST
    PYTHONPATH=src python benchmarks/one_shot.py --dataset mnist-5k --seen 0 1 2 3 4

The training loop is written out here (a dozen lines) rather than run through a Trainer.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import import_strided  # noqa: E402

sd = import_strided()
import numpy as np  # noqa: E402

import strided.functional as F  # noqa: E402
from strided import data, models, optim  # noqa: E402
from strided.data.sampler import PKSampler  # noqa: E402
from strided.face.evaluation import (euclidean_distances, n_way_one_shot_accuracy,  # noqa: E402
                                     verification_report)
from strided.face.losses import (batch_hard_triplet_loss, l2_normalize,  # noqa: E402
                                 semi_hard_triplet_loss)
from strided.random import manual_seed  # noqa: E402

LOSSES = {"batch-hard": batch_hard_triplet_loss, "semi-hard": semi_hard_triplet_loss}


def relabel(ds, classes):
    """The items of ``classes`` with labels 0..len(classes)-1."""
    keep = np.isin(ds.labels, classes)
    images, labels = ds.get_batch(np.flatnonzero(keep))
    mapping = {c: i for i, c in enumerate(classes)}
    return images, np.array([mapping[int(c)] for c in labels], np.int64)


def penultimate(model, x):
    """Global-average-pooled features of vgg_small (the input of its dropout + dense head)."""
    return model.head[0](model.features(x))


def embed(fn, images, batch=500):
    out = []
    with sd.no_grad():
        for i in range(0, len(images), batch):
            out.append(fn(sd.tensor(data.loader.to_float_batch(images[i:i + batch]))).data)
    return np.concatenate(out).astype(np.float64)


def train(model, loss_of_batch, batches, lr):
    opt = optim.Adam(model.parameters(), lr)
    model.train()
    start, losses = time.perf_counter(), []
    for step, (x, y) in enumerate(batches):
        opt.zero_grad()
        loss = loss_of_batch(model, sd.tensor(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            print(f"  step {step + 1}: loss {np.mean(losses[-100:]):.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    model.eval()
    return time.perf_counter() - start


def metrics(name, emb, labels, n_way, episodes, seed):
    one_shot = n_way_one_shot_accuracy(emb, labels, n_way=n_way, episodes=episodes, seed=seed)
    d = euclidean_distances(emb, emb)
    i, j = np.triu_indices(len(emb), k=1)
    report = verification_report(d[i, j], labels[i] == labels[j])
    row = {"embedding": name, "one_shot": one_shot, "auc": report["auc"], "eer": report["eer"],
           "tar@1e-2": report["tar_at_far"]["0.01"]["tar"],
           "tar@1e-3": report["tar_at_far"]["0.001"]["tar"], "pairs": report["pairs"]}
    print(f"  {name}: {n_way}-way 1-shot {one_shot:.4f}  AUC {row['auc']:.4f}  EER {row['eer']:.4f}  "
          f"TAR@1e-2 {row['tar@1e-2']:.4f}  TAR@1e-3 {row['tar@1e-3']:.4f}", flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--seen", type=int, nargs="+", default=[0, 1, 2, 5, 8],
                        help="classes used for training (the others are held out)")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--p", type=int, default=5, help="classes per triplet batch")
    parser.add_argument("--k", type=int, default=12, help="images per class in a triplet batch")
    parser.add_argument("--loss", choices=sorted(LOSSES), nargs="+", default=["batch-hard"],
                        help="one triplet network per loss")
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--per-class", type=int, default=200,
                        help="unseen-class test images per class for the metrics")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    F.set_num_threads(args.threads)

    train_set, test_set = data.load(args.dataset)
    classes = list(range(train_set.num_classes))
    seen = sorted(args.seen)
    unseen = [c for c in classes if c not in seen]
    names = train_set.classes
    print(f"{args.dataset}: seen {[names[c] for c in seen]}, unseen {[names[c] for c in unseen]}")
    x_seen, y_seen = relabel(train_set, seen)
    x_unseen, y_unseen = relabel(test_set, unseen)
    rng = np.random.default_rng(args.seed)
    pick = np.concatenate([rng.choice(np.flatnonzero(y_unseen == c), args.per_class, replace=False)
                           for c in range(len(unseen))])
    x_eval, y_eval = x_unseen[pick], y_unseen[pick]
    batch = args.p * args.k

    # ---------------------------------------------------------------- triplet
    sampler = PKSampler(y_seen, p=args.p, k=args.k, seed=args.seed)

    def pk_batches():
        epoch = 0
        while True:
            for idx in sampler.batches(epoch):
                yield data.loader.to_float_batch(x_seen[idx]), y_seen[idx]
            epoch += 1

    triplet_nets, times = {}, {}
    for loss_name in args.loss:
        mine = LOSSES[loss_name]

        def triplet_step(model, x, y, mine=mine):
            return mine(l2_normalize(model(x)), y, margin=args.margin)

        manual_seed(args.seed)
        net = models.create("vgg_small", num_classes=args.dim, in_channels=x_seen.shape[-1])
        print(f"triplet ({loss_name}, margin {args.margin}, {args.p}x{args.k} batches, {args.steps} steps)")
        gen = pk_batches()
        times[loss_name] = train(net, triplet_step, (next(gen) for _ in range(args.steps)), args.lr)
        triplet_nets[loss_name] = net

    # ---------------------------------------------------------------- softmax baseline
    manual_seed(args.seed)
    clf = models.create("vgg_small", num_classes=len(seen), in_channels=x_seen.shape[-1])

    def shuffled_batches():
        epoch = 0
        while True:
            order = np.random.default_rng([args.seed, epoch]).permutation(len(y_seen))
            for b in range(len(order) // batch):
                idx = order[b * batch:(b + 1) * batch]
                yield data.loader.to_float_batch(x_seen[idx]), y_seen[idx]
            epoch += 1

    def softmax_step(model, x, y):
        return F.cross_entropy(model(x), y)

    print(f"softmax baseline (cross-entropy over {len(seen)} seen classes, batches of {batch}, "
          f"{args.steps} steps)")
    gen = shuffled_batches()
    t_softmax = train(clf, softmax_step, (next(gen) for _ in range(args.steps)), args.lr)

    # ---------------------------------------------------------------- evaluation
    print(f"unseen classes: {len(unseen)}-way 1-shot over {args.episodes} episodes, "
          f"verification over all pairs of {len(y_eval)} images")
    n_way, ep, seed = len(unseen), args.episodes, args.seed
    rows = []
    for loss_name, net in triplet_nets.items():
        rows.append(metrics(f"triplet {loss_name}: embedding ({args.dim}-d, L2-normalised)",
                            embed(lambda x: l2_normalize(net(x)), x_eval), y_eval, n_way, ep, seed))
        rows.append(metrics(f"triplet {loss_name}: its penultimate layer (raw)",
                            embed(lambda x: penultimate(net, x), x_eval), y_eval, n_way, ep, seed))
    rows += [
        metrics("softmax: penultimate layer (raw)", embed(lambda x: penultimate(clf, x), x_eval), y_eval,
                n_way, ep, seed),
        metrics("softmax: penultimate layer (L2-normalised)",
                embed(lambda x: l2_normalize(penultimate(clf, x)), x_eval), y_eval, n_way, ep, seed),
        metrics("raw pixels", data.loader.to_float_batch(x_eval).reshape(len(x_eval), -1)
                .astype(np.float64), y_eval, n_way, ep, seed),
    ]
    print()
    print(f"| embedding | {len(unseen)}-way 1-shot | ROC AUC | EER | TAR@FAR=1e-2 | TAR@FAR=1e-3 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['embedding']} | {r['one_shot']:.3f} | {r['auc']:.3f} | {r['eer']:.3f} | "
              f"{r['tar@1e-2']:.3f} | {r['tar@1e-3']:.3f} |")
    spent = ", ".join(f"triplet {k} {v:.0f} s" for k, v in times.items())
    print(f"\ntraining time: {spent}, softmax {t_softmax:.0f} s "
          f"({args.threads} threads); {rows[0]['pairs']} pairs")


if __name__ == "__main__":
    main()
