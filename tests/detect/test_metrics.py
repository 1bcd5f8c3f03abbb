"""strided.detect.metrics: evaluate() against pycocotools' COCOeval (stats, precision and recall
arrays, per-class AP) on random and structured cases; voc_ap / evaluate_voc against independent
references written here."""
import contextlib
import io
from fractions import Fraction

import numpy as np
import pytest

from strided.detect.metrics import MetricsInputError, evaluate, evaluate_voc, format_summary, voc_ap

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


# --------------------------------------------------------------------------- pycocotools side
def coco_eval(predictions, ground_truth, image_ids, category_ids, max_dets=None, iou_thrs=None, quiet=True):
    """COCOeval on in-memory lists (copies: loadRes changes the dicts it gets)."""
    anns = []
    for i, g in enumerate(ground_truth):
        a = dict(g, id=i + 1)
        a.setdefault("area", g["bbox"][2] * g["bbox"][3])
        a.setdefault("iscrowd", 0)
        anns.append(a)
    # the files list every image and category; params.imgIds / catIds choose what is evaluated
    all_images = sorted(set(image_ids) | {x["image_id"] for x in predictions + ground_truth})
    all_cats = sorted(set(category_ids) | {x["category_id"] for x in predictions + ground_truth})
    dataset = {"images": [{"id": i} for i in all_images], "categories": [{"id": c} for c in all_cats]}
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
        gt = COCO()
        gt.dataset = dict(dataset, annotations=anns)
        gt.createIndex()
        if predictions:
            dt = gt.loadRes([dict(p) for p in predictions])
        else:                                    # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = dict(dataset, annotations=[])
            dt.createIndex()
        E = COCOeval(gt, dt, "bbox")
        E.params.imgIds, E.params.catIds = list(image_ids), list(category_ids)
        if max_dets is not None:
            E.params.maxDets = list(max_dets)
        if iou_thrs is not None:
            E.params.iouThrs = np.asarray(iou_thrs)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E


def assert_same_as_coco(predictions, ground_truth, image_ids=None, category_ids=None, max_dets=None, **kw):
    ours = evaluate(predictions, ground_truth, image_ids=image_ids, category_ids=category_ids,
                    max_detections=max_dets if max_dets is not None else 100, **kw)
    images = image_ids if image_ids is not None else sorted({x["image_id"] for x in predictions + ground_truth})
    cats = category_ids if category_ids is not None else ours["category_ids"]
    E = coco_eval(predictions, ground_truth, images, cats, max_dets=max_dets, iou_thrs=kw.get("iou_thresholds"))
    expected_stats = np.array(E.stats)
    if max_dets is not None and max_dets[2] != 100:
        # COCOeval.summarize computes stats[0] at maxDets=100 whatever params.maxDets says, so it
        # is -1 here; strided gives AP@[.5:.95] at maxDets[2], computed from COCOeval's own array
        assert E.stats[0] == -1
        p = E.eval["precision"][:, :, :, 0, 2]
        expected_stats[0] = np.mean(p[p > -1])
    np.testing.assert_allclose(ours["stats"], expected_stats, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["precision"], E.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["recall"], E.eval["recall"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["scores"], E.eval["scores"], rtol=0, atol=1e-12)
    for k, cat in enumerate(cats):
        p = E.eval["precision"][:, :, k, 0, -1]
        expected = np.mean(p[p > -1]) if (p > -1).any() else -1
        assert ours["per_class"][cat]["ap50_95"] == pytest.approx(expected, abs=1e-9)
        p50 = p[int(np.flatnonzero(E.params.iouThrs == 0.5)[0])]
        assert ours["per_class"][cat]["ap50"] == pytest.approx(np.mean(p50[p50 > -1]) if (p50 > -1).any() else -1,
                                                               abs=1e-9)
    assert (ours["map50_95"], ours["map50"], ours["map75"]) == tuple(ours["stats"][:3])
    return ours, E


# --------------------------------------------------------------------------- data
def xywh(rng, size_lo, size_hi, image=640):
    w, h = rng.uniform(size_lo, size_hi, 2)
    x, y = rng.uniform(0, image - w), rng.uniform(0, image - h)
    return [float(x), float(y), float(w), float(h)]


def scene(rng, images=12, categories=(1, 2, 3), per_image=(0, 8), crowd_rate=0.0, fp_rate=0.5,
          dup_rate=0.1, score_decimals=None, miss_rate=0.2):
    """Random ground truth (sizes spanning small/medium/large) and jittered predictions."""
    gts, preds = [], []
    for img in range(1, images + 1):
        for _ in range(rng.integers(*per_image)):
            cat = int(rng.choice(categories))
            box = xywh(rng, 8, 260)
            gts.append({"image_id": img, "category_id": cat, "bbox": box,
                        "iscrowd": int(rng.random() < crowd_rate)})
            if rng.random() < miss_rate:
                continue
            copies = 1 + int(rng.random() < dup_rate) * int(rng.integers(1, 4))
            for _ in range(copies):
                jitter = rng.normal(0, 0.12, 4) * [box[2], box[3], box[2], box[3]]
                b = [box[0] + jitter[0], box[1] + jitter[1], max(box[2] + jitter[2], 1.0),
                     max(box[3] + jitter[3], 1.0)]
                pred_cat = cat if rng.random() < 0.9 else int(rng.choice(categories))
                preds.append({"image_id": img, "category_id": pred_cat, "bbox": [float(v) for v in b],
                              "score": float(rng.random())})
        for _ in range(rng.poisson(fp_rate * 4)):
            preds.append({"image_id": img, "category_id": int(rng.choice(categories)),
                          "bbox": xywh(rng, 5, 300), "score": float(rng.random() * 0.7)})
    if score_decimals is not None:
        for p in preds:
            p["score"] = round(p["score"], score_decimals)
    return preds, gts


# --------------------------------------------------------------------------- COCO cases
@pytest.mark.parametrize("seed", range(4))
def test_random_scenes_equal_pycocotools(seed):
    rng = np.random.default_rng(seed)
    preds, gts = scene(rng, crowd_rate=0.08 if seed % 2 else 0.0, score_decimals=1 if seed == 2 else None)
    ours, _ = assert_same_as_coco(preds, gts)
    assert 0 < ours["map50"] < 1 and 0 < ours["map50_95"] < ours["map50"]


def test_score_ties_and_duplicates():
    rng = np.random.default_rng(10)
    preds, gts = scene(rng, images=6, dup_rate=0.8, score_decimals=0)      # scores 0 or 1: many ties
    assert_same_as_coco(preds, gts)


def test_exact_iou_ties_pick_the_later_ground_truth_like_cocoeval():
    # identical ground-truth boxes (one of them small enough to be ignored in "medium"),
    # identical detections with equal scores: every choice is decided by COCOeval's tie rules
    box = [10.0, 10.0, 40.0, 40.0]
    gts = [{"image_id": 1, "category_id": 1, "bbox": box},
           {"image_id": 1, "category_id": 1, "bbox": box, "area": 500.0},
           {"image_id": 1, "category_id": 1, "bbox": box},
           {"image_id": 1, "category_id": 1, "bbox": [12.0, 10.0, 40.0, 40.0]}]
    preds = [{"image_id": 1, "category_id": 1, "bbox": box, "score": 0.5} for _ in range(3)]
    preds += [{"image_id": 1, "category_id": 1, "bbox": [11.0, 10.0, 40.0, 40.0], "score": 0.5}]
    assert_same_as_coco(preds, gts)


def test_crowded_scene_past_max_detections():
    rng = np.random.default_rng(11)
    preds, gts = scene(rng, images=3, categories=(1,), per_image=(120, 150), fp_rate=10, miss_rate=0.05)
    assert max(sum(p["image_id"] == i for p in preds) for i in (1, 2, 3)) > 100
    assert_same_as_coco(preds, gts)
    assert_same_as_coco(preds, gts, max_dets=(1, 10, 20))


def test_crowd_regions_absorb_detections():
    gts = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 200, 200], "iscrowd": 1},
           {"image_id": 1, "category_id": 1, "bbox": [300, 300, 50, 50]},
           {"image_id": 2, "category_id": 1, "bbox": [10, 10, 40, 40], "iscrowd": 1}]
    preds = [{"image_id": 1, "category_id": 1, "bbox": [10 + 20 * i, 10, 30, 30], "score": 0.9 - 0.01 * i}
             for i in range(6)]
    preds += [{"image_id": 1, "category_id": 1, "bbox": [302, 301, 50, 48], "score": 0.5},
              {"image_id": 2, "category_id": 1, "bbox": [12, 12, 30, 30], "score": 0.95}]
    ours, _ = assert_same_as_coco(preds, gts)
    assert ours["map50"] == pytest.approx(1.0)         # crowd matches are neither TP nor FP


def test_empty_predictions():
    rng = np.random.default_rng(12)
    _, gts = scene(rng, images=4)
    ours, _ = assert_same_as_coco([], gts)
    assert ours["map50"] == 0 and ours["map50_95"] == 0


def test_a_class_with_no_predictions_and_a_class_with_no_ground_truth():
    rng = np.random.default_rng(13)
    preds, gts = scene(rng, images=8, categories=(1, 2))
    gts += [{"image_id": 3, "category_id": 7, "bbox": [5, 5, 50, 60]}]             # class 7: never predicted
    preds += [{"image_id": 4, "category_id": 9, "bbox": [5, 5, 50, 60], "score": 0.8}]   # class 9: no GT
    ours, _ = assert_same_as_coco(preds, gts)
    assert ours["per_class"][7]["ap50"] == 0.0
    assert ours["per_class"][9]["ap50"] == -1.0 and ours["per_class"][9]["num_predictions"] == 1
    valid = [ours["per_class"][c]["ap50_95"] for c in (1, 2, 7)]
    assert ours["map50_95"] == pytest.approx(np.mean(valid), abs=1e-12)      # -1 left out of the mean


def test_images_with_predictions_only_and_explicit_ids():
    rng = np.random.default_rng(14)
    preds, gts = scene(rng, images=5)
    preds += [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.99}]   # no GT on image 99
    assert_same_as_coco(preds, gts)
    # explicit lists, as COCOeval takes them from the GT file: image 99 and class 3 left out
    assert_same_as_coco(preds, gts, image_ids=[1, 2, 3, 4, 5, 6], category_ids=[1, 2])


def test_ground_truth_area_field_drives_the_area_ranges():
    rng = np.random.default_rng(15)
    preds, gts = scene(rng, images=6)
    for g in gts[::2]:
        g["area"] = g["bbox"][2] * g["bbox"][3] * 0.3           # e.g. a segmentation area
    assert_same_as_coco(preds, gts)


def test_custom_iou_thresholds_and_no_ground_truth_at_all():
    rng = np.random.default_rng(16)
    preds, gts = scene(rng, images=5)
    assert_same_as_coco(preds, gts, iou_thresholds=[0.3, 0.5, 0.75, 0.9, 1.0])
    ours = evaluate(preds, [])
    assert ours["map50"] == -1 and ours["stats"] == [-1.0] * 12
    assert evaluate([], [])["map50_95"] == -1


def test_perfect_predictions_and_summary_text():
    rng = np.random.default_rng(17)
    _, gts = scene(rng, images=5, categories=(1, 2))
    preds = [dict(g, score=0.9) for g in gts]
    ours = evaluate(preds, gts)
    assert ours["map50"] == pytest.approx(1.0) and ours["map50_95"] == pytest.approx(1.0)
    text = format_summary(ours, class_names=["cat", "dog"])
    assert "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 1.000" in text
    assert "dog" in text


def test_bad_input_is_named():
    with pytest.raises(MetricsInputError, match=r"predictions\[0\] lacks \['score'\]"):
        evaluate([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], [])
    with pytest.raises(MetricsInputError, match=r"ground_truth\[0\]\['bbox'\] must be \[x, y, w, h\]"):
        evaluate([], [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}])
    with pytest.raises(MetricsInputError, match="w, h >= 0"):
        evaluate([], [{"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1]}])
    with pytest.raises(ValueError, match="iou_thresholds"):
        evaluate([], [], iou_thresholds=[1.5])
    with pytest.raises(ValueError, match="max_detections"):
        evaluate([], [], max_detections=0)


# --------------------------------------------------------------------------- Pascal VOC
def reference_voc_ap(rec, prec, use_11_point):
    """Independent: exact fractions; all-point = sum over recall steps of the best precision
    at that recall or beyond; 11-point = mean of that envelope at k/10."""
    points = list(zip(rec, prec))

    def envelope(r):
        candidates = [p for rr, p in points if rr >= r]
        return max(candidates) if candidates else Fraction(0)
    if use_11_point:
        return sum(envelope(Fraction(k, 10)) for k in range(11)) / 11
    total, previous = Fraction(0), Fraction(0)
    for r in sorted({rr for rr, _ in points}):
        total += (r - previous) * envelope(r)
        previous = r
    return total


def test_voc_ap_by_hand():
    # 4 objects; detections TP, FP, TP, TP, FP: recall .25 .25 .5 .75 .75, precision 1 .5 .667 .75 .6
    rec = np.array([1, 1, 2, 3, 3]) / 4
    prec = np.array([1 / 1, 1 / 2, 2 / 3, 3 / 4, 3 / 5])
    # all-point: .25 * 1 + .25 * .75 + .25 * .75 = .625
    assert voc_ap(rec, prec) == pytest.approx(0.625, abs=1e-15)
    # 11-point: r = 0, .1, .2 -> 1;  .3 .. .7 -> .75;  .8 .. 1 -> 0   => (3 + 5 * .75) / 11
    assert voc_ap(rec, prec, use_11_point=True) == pytest.approx((3 + 5 * 0.75) / 11, abs=1e-15)


@pytest.mark.parametrize("use_11_point", [False, True])
def test_voc_ap_against_exact_fractions(use_11_point):
    rng = np.random.default_rng(20 + use_11_point)
    for npos in (1, 3, 10, 17):
        hits = rng.random(25) < 0.5
        tp = np.cumsum(hits)[:]
        tp = np.minimum(tp, npos)
        fp = np.arange(1, 26) - tp
        rec = [Fraction(int(t), npos) for t in tp]
        prec = [Fraction(int(t), int(t + f)) for t, f in zip(tp, fp)]
        expected = reference_voc_ap(rec, prec, use_11_point)
        ours = voc_ap(np.array([float(r) for r in rec]), np.array([float(p) for p in prec]), use_11_point)
        assert ours == pytest.approx(float(expected), abs=1e-12)


def reference_voc_eval(predictions, ground_truth, category, threshold, use_11_point):
    """The VOC devkit's voc_eval, written out with Python lists and floats."""
    def overlap(a, b):
        ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
        iw, ih = min(ax2, bx2) - max(a[0], b[0]), min(ay2, by2) - max(a[1], b[1])
        if iw <= 0 or ih <= 0:
            return 0.0
        inter = iw * ih
        union = a[2] * a[3] + b[2] * b[3] - inter
        return inter / union if union > 0 else 0.0
    records = {}
    for g in ground_truth:
        if g["category_id"] == category:
            records.setdefault(g["image_id"], []).append([g["bbox"], bool(g.get("difficult", 0)), False])
    npos = sum(not r[1] for recs in records.values() for r in recs)
    dets = sorted((p for p in predictions if p["category_id"] == category), key=lambda p: -p["score"])
    tp, fp = [], []
    for p in dets:
        recs = records.get(p["image_id"], [])
        best, best_j = -1.0, -1
        for j, r in enumerate(recs):
            o = overlap(p["bbox"], r[0])
            if o > best:
                best, best_j = o, j
        if best > threshold:
            if not recs[best_j][1]:
                if not recs[best_j][2]:
                    tp.append(1), fp.append(0)
                    recs[best_j][2] = True
                else:
                    tp.append(0), fp.append(1)
            else:
                tp.append(0), fp.append(0)
        else:
            tp.append(0), fp.append(1)
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    rec = [Fraction(int(t), npos) for t in ctp]
    prec = [Fraction(int(t), max(int(t + f), 1)) for t, f in zip(ctp, cfp)]
    return float(reference_voc_ap(rec, prec, use_11_point)), npos


@pytest.mark.parametrize("use_11_point", [False, True])
@pytest.mark.parametrize("threshold", [0.5, 0.7])
def test_evaluate_voc_against_the_devkit_loop(use_11_point, threshold):
    rng = np.random.default_rng(30 + int(10 * threshold) + use_11_point)
    preds, gts = scene(rng, images=10, categories=(1, 2, 3), dup_rate=0.3, score_decimals=None)
    for g in gts:
        g["difficult"] = int(rng.random() < 0.1)
    ours = evaluate_voc(preds, gts, iou_threshold=threshold, use_11_point=use_11_point)
    aps = []
    for cat in (1, 2, 3):
        expected, npos = reference_voc_eval(preds, gts, cat, threshold, use_11_point)
        assert npos > 0
        assert ours["per_class"][cat] == pytest.approx(expected, abs=1e-12)
        aps.append(expected)
    assert ours["map"] == pytest.approx(np.mean(aps), abs=1e-12)


def test_evaluate_voc_class_without_ground_truth_is_left_out():
    gts = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]}]
    preds = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
             {"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.9}]
    out = evaluate_voc(preds, gts)
    assert out["per_class"] == {1: 1.0, 2: -1.0} and out["map"] == 1.0
    # a duplicate is a false positive in VOC, and IoU must be strictly above the threshold
    dup = evaluate_voc(preds[:1] * 2, gts)
    assert dup["recall"][1].tolist() == [1.0, 1.0] and dup["precision"][1].tolist() == [1.0, 0.5]
    half = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 10], "score": 0.9}]   # IoU exactly 0.5
    assert evaluate_voc(half, gts)["per_class"][1] == 0.0
    assert evaluate(half, gts)["per_class"][1]["ap50"] == pytest.approx(1.0)       # COCO: IoU >= 0.5
