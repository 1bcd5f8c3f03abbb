"""strided.face.evaluation: ROC / AUC / EER / TAR@FAR against scikit-learn (and scipy's root
finder for the EER), accuracies and one-shot episodes against plain loops, hand-made cases,
and read_lfw_pairs on a small LFW-layout fixture generated here."""
import numpy as np
import pytest
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from strided.errors import DatasetUnavailable, StridedError
from strided.face.evaluation import (LFWFormatError, OneShotAccuracy, VerificationAUC, evaluate_pairs,
                                     accuracy_at_threshold, best_threshold, pair_distances,
                                     equal_error_rate, euclidean_distances, kfold_accuracy,
                                     n_way_one_shot_accuracy, one_shot_accuracy,
                                     one_shot_episodes, read_lfw_pairs, roc_auc, roc_curve,
                                     tar_at_far, verification_report, write_roc_png)


def verification_data(n=400, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.4
    d = np.where(same, rng.normal(0.8, 0.25, n), rng.normal(1.3, 0.25, n))
    if ties:
        d = np.round(d, 1)                  # many equal distances
    return d, same


# --------------------------------------------------------------------------- ROC against sklearn
@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_matches_sklearn(ties):
    d, same = verification_data(ties=ties)
    roc = roc_curve(d, same)
    fpr, tpr, thr = sk_roc_curve(same, -d, drop_intermediate=False)
    np.testing.assert_allclose(roc.far, fpr, atol=1e-15)
    np.testing.assert_allclose(roc.tar, tpr, atol=1e-15)
    np.testing.assert_allclose(roc.thresholds[1:], -thr[1:])
    assert roc.thresholds[0] == -np.inf and np.all(np.diff(roc.thresholds) > 0)


@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(ties):
    d, same = verification_data(seed=1, ties=ties)
    assert roc_auc(d, same) == pytest.approx(roc_auc_score(same, -d), abs=1e-12)


def test_eer_matches_brentq_on_sklearn_roc():
    for seed in range(5):
        d, same = verification_data(n=300, seed=seed, ties=seed % 2 == 1)
        fpr, tpr, _ = sk_roc_curve(same, -d)
        expected = brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0, xtol=1e-14)
        eer, threshold = equal_error_rate(d, same)
        assert eer == pytest.approx(expected, abs=1e-9)
        if seed % 2 == 1:
            continue          # with many ties the realised rates jump past the interpolated point
        # at the threshold the two error rates are about the EER
        far = np.mean(d[~same] <= threshold)
        frr = np.mean(d[same] > threshold)
        assert abs(far - eer) < 0.02 and abs(frr - eer) < 0.02


def test_eer_hand_made():
    # same at 1, 2, 3, 4; different at 2.5, 5, 6, 7: threshold 3 accepts 3/4 same, 1/4 different
    d = np.array([1, 2, 3, 4, 2.5, 5, 6, 7], float)
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    assert equal_error_rate(d, same) == pytest.approx((0.25, 3.0))
    assert equal_error_rate([0.1, 0.2, 0.9, 1.0], [1, 1, 0, 0])[0] == 0.0     # separable
    assert equal_error_rate([0.1, 0.2, 0.9, 1.0], [0, 0, 1, 1])[0] == 1.0     # inverted
    assert roc_auc([0.1, 0.2, 0.9, 1.0], [1, 1, 0, 0]) == 1.0


@pytest.mark.parametrize("target", [1e-2, 1e-3, 0.1, 0.0])
def test_tar_at_far_matches_sklearn(target):
    d, same = verification_data(n=3000, seed=2)
    fpr, tpr, thr = sk_roc_curve(same, -d, drop_intermediate=False)
    tar, threshold = tar_at_far(d, same, target)
    assert tar == pytest.approx(tpr[fpr <= target].max())
    assert np.mean(d[~same] <= threshold) <= target
    assert np.mean(d[same] <= threshold) == pytest.approx(tar)


def test_tar_at_far_hand_made():
    d = [0.1, 0.2, 0.3, 0.4, 0.25, 0.5]
    same = [1, 1, 1, 1, 0, 0]
    assert tar_at_far(d, same, far=0.0) == (0.5, 0.2)        # stop before the first different pair
    assert tar_at_far(d, same, far=0.5) == (1.0, 0.4)
    with pytest.raises(ValueError, match="far must be in"):
        tar_at_far(d, same, far=2)


# --------------------------------------------------------------------------- accuracy
def loop_best_threshold(d, same):
    u = np.unique(d)
    candidates = [u[0] - 1.0] + [(a + b) / 2 for a, b in zip(u[:-1], u[1:])] + [u[-1] + 1.0]
    best = (-1.0, None)
    for t in candidates:
        acc = np.mean((d <= t) == same)
        if acc > best[0]:
            best = (acc, t)
    return best


@pytest.mark.parametrize("ties", [False, True])
def test_best_threshold_matches_loop(ties):
    d, same = verification_data(n=200, seed=3, ties=ties)
    acc, threshold = best_threshold(d, same)
    expected_acc, expected_threshold = loop_best_threshold(d, same)
    assert acc == pytest.approx(expected_acc)
    assert threshold == pytest.approx(expected_threshold)
    assert accuracy_at_threshold(d, same, threshold) == pytest.approx(acc)


def test_best_threshold_hand_made():
    assert best_threshold([0.2, 0.4, 0.8, 1.0], [1, 1, 0, 0]) == (1.0, pytest.approx(0.6))
    assert best_threshold([0.2, 0.4, 0.8, 1.0], [0, 0, 1, 1]) == (0.5, pytest.approx(-0.8))


def test_kfold_matches_loop():
    d, same = verification_data(n=600, seed=4)
    folds = np.repeat(np.arange(10), 60)
    result = kfold_accuracy(d, same, folds)
    accs = []
    for f in range(10):
        train = folds != f
        _, t = loop_best_threshold(d[train], same[train])
        accs.append(np.mean((d[~train] <= t) == same[~train]))
    np.testing.assert_allclose(result["fold_accuracies"], accs)
    assert result["accuracy"] == pytest.approx(np.mean(accs))
    assert result["std"] == pytest.approx(np.std(accs))
    assert kfold_accuracy(d, same, 10) == result            # contiguous blocks = LFW order


def test_kfold_hand_made_threshold_comes_from_the_other_folds():
    # fold 0 alone would pick a threshold near 0.5, the others pick 1.525: fold 0 is judged
    # with 1.525, so its different pair at 1.0 is accepted (wrong) -> 3/4 on fold 0
    d = np.array([0.4, 0.45, 0.3, 1.0, 1.2, 1.3, 1.4, 1.6, 1.1, 1.25, 1.45, 1.7])
    same = np.array([1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0], bool)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    result = kfold_accuracy(d, same, folds)
    assert result["fold_accuracies"][0] == 0.75
    assert result["thresholds"][0] == pytest.approx((1.45 + 1.6) / 2)   # between their same and different


def test_verification_report_is_consistent():
    d, same = verification_data(n=500, seed=5)
    report = verification_report(d, same, folds=5)
    assert report["auc"] == pytest.approx(roc_auc_score(same, -d))
    assert report["eer"] == pytest.approx(equal_error_rate(d, same)[0])
    assert report["tar_at_far"]["0.001"]["tar"] == tar_at_far(d, same, 1e-3)[0]
    assert report["kfold"]["accuracy"] <= report["best_accuracy"] + 1e-12
    import json
    json.dumps(report)


def test_verification_errors():
    with pytest.raises(ValueError, match="both same and different"):
        roc_curve([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="same length"):
        roc_curve([0.1, 0.2], [1, 0, 1])
    with pytest.raises(ValueError, match="finite"):
        roc_curve([0.1, np.nan], [1, 0])
    with pytest.raises(ValueError, match="booleans or 0/1"):
        roc_curve([0.1, 0.2], [2, 0])
    with pytest.raises(ValueError, match="folds"):
        kfold_accuracy([0.1, 0.2, 0.3], [1, 0, 1], folds=1)


# --------------------------------------------------------------------------- one-shot
def test_euclidean_distances():
    from scipy.spatial.distance import cdist
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((7, 3))
    np.testing.assert_allclose(euclidean_distances(a, b), cdist(a, b), atol=1e-12)


def test_one_shot_accuracy_matches_loop():
    rng = np.random.default_rng(1)
    support, queries = rng.standard_normal((6, 4)), rng.standard_normal((30, 4))
    support_labels, query_labels = np.arange(6), rng.integers(0, 6, 30)
    correct = 0
    for q, y in zip(queries, query_labels):
        dists = [np.linalg.norm(q - s) for s in support]
        correct += support_labels[int(np.argmin(dists))] == y
    assert one_shot_accuracy(support, support_labels, queries, query_labels) == correct / 30
    with pytest.raises(ValueError, match="same D"):
        one_shot_accuracy(support, support_labels, queries[:, :3], query_labels)


def test_episodes_and_n_way_accuracy_match_loop():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(8), 6)
    labels = np.r_[labels, 9]                                 # a class with one item: never used
    emb = rng.standard_normal((len(labels), 5)) + labels[:, None] * 0.3
    support, query = one_shot_episodes(labels, n_way=5, episodes=200, seed=3)
    assert support.shape == query.shape == (200, 5)
    assert np.all(labels[support] == labels[query]) and np.all(support != query)
    assert all(len(set(labels[s])) == 5 for s in support) and 9 not in labels[support]
    correct = 0
    for s, q in zip(support, query):
        for j in range(5):
            correct += int(np.argmin([np.linalg.norm(emb[q[j]] - emb[k]) for k in s]) == j)
    assert n_way_one_shot_accuracy(emb, labels, 5, 200, seed=3) == pytest.approx(correct / 1000)
    # separable classes: perfect; chance level for noise
    clean = np.eye(8)[labels[:-1]] * 10 + rng.standard_normal((48, 8)) * 0.01
    assert n_way_one_shot_accuracy(clean, labels[:-1], 5, 100) == 1.0
    noise = rng.standard_normal((48, 8))
    assert 0.1 < n_way_one_shot_accuracy(noise, labels[:-1], 5, 400) < 0.3
    with pytest.raises(ValueError, match="n_way"):
        one_shot_episodes(labels, n_way=9)


def test_pair_distances_and_embedding_metrics():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(6), 10)
    emb = rng.standard_normal((60, 4)) + labels[:, None] * 0.5
    d, same = pair_distances(emb, labels)
    assert len(d) == 60 * 59 // 2 and same.sum() == 6 * 45
    i, j = 3, 17                                        # pair (3, 17) sits at this flat position
    k = i * 60 - i * (i + 1) // 2 + (j - i - 1)
    assert d[k] == pytest.approx(np.linalg.norm(emb[i] - emb[j])) and same[k] == (labels[i] == labels[j])
    assert len(pair_distances(emb, labels, max_items=20)[0]) == 190

    auc, one_shot = VerificationAUC(max_items=1000), OneShotAccuracy(n_way=10, episodes=300, seed=1)
    for metric in (auc, one_shot):
        with pytest.raises(ValueError, match="before any update"):
            metric.compute()
        for b in range(0, 60, 16):                      # batches, as a Trainer would feed them
            metric.update(emb[b:b + 16].astype(np.float32), labels[b:b + 16])
    assert auc.compute() == pytest.approx(roc_auc_score(same, -d))
    assert one_shot.compute() == n_way_one_shot_accuracy(emb, labels, 6, 300, seed=1)  # capped at 6
    auc.reset()
    with pytest.raises(ValueError, match="before any update"):
        auc.compute()
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        auc.update(emb[0], labels[:1])


# --------------------------------------------------------------------------- LFW layout
def make_lfw(tmp_path, folds=2, n=3, missing=None):
    """pairs.txt with ``folds`` x (n matched + n mismatched) pairs and the jpg files."""
    from PIL import Image
    rng = np.random.default_rng(0)
    people = ["Aaron_Eckhart", "Jean-Claude_Van_Damme", "Zoe_Ball", "Li_Peng"]
    lines = [f"{folds}\t{n}"]
    expected = []
    for f in range(folds):
        for i in range(n):
            name = people[(f + i) % 4]
            lines.append(f"{name}\t{1 + i}\t{2 + i}")
            expected.append((f"{name}/{name}_{1 + i:04d}.jpg", f"{name}/{name}_{2 + i:04d}.jpg", True, f))
        for i in range(n):
            a, b = people[i % 4], people[(i + 1 + f) % 4]
            lines.append(f"{a}\t{i + 1}\t{b}\t{i + 11}")
            expected.append((f"{a}/{a}_{i + 1:04d}.jpg", f"{b}/{b}_{i + 11:04d}.jpg", False, f))
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    root = tmp_path / "lfw"
    for p1, p2, _, _ in expected:
        for p in (p1, p2):
            if p == missing:
                continue
            (root / p).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / p)
    return tmp_path / "pairs.txt", root, expected


def test_read_lfw_pairs(tmp_path):
    pairs_txt, root, expected = make_lfw(tmp_path)
    pairs = read_lfw_pairs(pairs_txt, root)
    assert pairs.paths1 == [str(root / e[0]) for e in expected]
    assert pairs.paths2 == [str(root / e[1]) for e in expected]
    assert pairs.same.tolist() == [e[2] for e in expected]
    assert pairs.fold.tolist() == [e[3] for e in expected]
    assert pairs.same.dtype == bool and len(pairs.paths1) == 12


def test_read_lfw_pairs_single_number_header(tmp_path):
    (tmp_path / "pairsDevTest.txt").write_text("1\nA_B\t1\t2\nA_B\t1\tC_D\t3\n")
    pairs = read_lfw_pairs(tmp_path / "pairsDevTest.txt", tmp_path, check_files=False)
    assert pairs.same.tolist() == [True, False] and pairs.fold.tolist() == [0, 0]
    assert pairs.paths2[1].endswith("C_D/C_D_0003.jpg")


def test_read_lfw_pairs_errors(tmp_path):
    pairs_txt, root, _ = make_lfw(tmp_path, missing="Zoe_Ball/Zoe_Ball_0002.jpg")
    with pytest.raises(DatasetUnavailable, match="Zoe_Ball_0002.jpg"):
        read_lfw_pairs(pairs_txt, root)
    text = pairs_txt.read_text().splitlines()
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(text[:2] + ["Aaron_Eckhart\t1"] + text[3:]))
    with pytest.raises(LFWFormatError, match="line 3 should be a matched"):
        read_lfw_pairs(bad, root, check_files=False)
    bad.write_text("\n".join(text[:-1]))
    with pytest.raises(LFWFormatError, match="found 11"):
        read_lfw_pairs(bad, root, check_files=False)
    bad.write_text("ten 300\n")
    with pytest.raises(StridedError, match="line 1"):
        read_lfw_pairs(bad, root)
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        read_lfw_pairs(tmp_path / "nope.txt", root)


def test_lfw_fixture_end_to_end(tmp_path):
    """pairs -> distances of the images' pixels -> report with 2-fold accuracy and a ROC PNG."""
    from strided.data.image import read_image, to_float
    pairs_txt, root, _ = make_lfw(tmp_path, folds=2, n=3)
    pairs = read_lfw_pairs(pairs_txt, root)
    a = np.stack([to_float(read_image(p)).ravel() for p in pairs.paths1])
    b = np.stack([to_float(read_image(p)).ravel() for p in pairs.paths2])
    d = np.linalg.norm(a - b, axis=1)
    report = verification_report(d, pairs.same, folds=pairs.fold)
    assert len(report["kfold"]["fold_accuracies"]) == 2
    out = write_roc_png(tmp_path / "out" / "roc.png", {"pixels": roc_curve(d, pairs.same)})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_pairs_embeds_each_image_once_and_can_skip(tmp_path):
    from strided.data.image import read_image, to_float
    pairs_txt, root, _ = make_lfw(tmp_path, folds=2, n=3)
    pairs = read_lfw_pairs(pairs_txt, root)
    calls = []

    def embed(path):
        calls.append(path)
        return to_float(read_image(path)).mean(axis=(0, 1))

    report = evaluate_pairs(pairs, embed, roc_png=tmp_path / "roc.png")
    assert sorted(calls) == sorted(set(pairs.paths1 + pairs.paths2))        # once per image
    d = np.array([np.linalg.norm(embed(a).astype(np.float64) - embed(b))
                  for a, b in zip(pairs.paths1, pairs.paths2)])
    expected = verification_report(d, pairs.same, folds=pairs.fold)
    assert {k: report[k] for k in expected} == expected
    assert report["skipped_pairs"] == 0 and (tmp_path / "roc.png").is_file()

    bad = pairs.paths2[-1]                   # used by one mismatched pair only

    def picky(path):
        if path == bad:
            raise StridedError(f"no face in {path}")
        return embed(path)

    with pytest.raises(StridedError, match="no face"):
        evaluate_pairs(pairs, picky)
    skipped = evaluate_pairs(pairs, picky, on_error="skip")
    assert skipped["skipped_pairs"] == 1 and list(skipped["failed_images"]) == [bad]
    assert skipped["pairs"] == len(pairs.same) - 1


def test_write_roc_png(tmp_path):
    from PIL import Image
    d, same = verification_data()
    roc = roc_curve(d, same)
    path = write_roc_png(tmp_path / "roc.png", {"a": roc, "b": (roc.far, roc.tar ** 2)}, log_far=True)
    with Image.open(path) as im:
        assert im.size == (550, 500)
    assert not [p for p in tmp_path.iterdir() if "strided-tmp" in p.name]
    with pytest.raises(ValueError, match="at least one curve"):
        write_roc_png(tmp_path / "x.png", {})
