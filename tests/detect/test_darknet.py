"""strided.detect.darknet: darknet's resize and letterbox against loop ports of image.c,
class names from the Debian package, and the whole detector on a real photo against an
independent pipeline (OpenCV's yolo layers + darknet's box correction + a plain greedy NMS
written here), with random weights."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from darknet_helpers import DATA_DIR, Darknet, opencv_forward, opencv_net, shared_files  # noqa: E402

from strided.data.image import read_image  # noqa: E402
from strided.detect.darknet import darknet_detector, darknet_resize, letterbox, read_names  # noqa: E402
from strided.errors import ImageError, ModelFileError  # noqa: E402

f32 = np.float32


def resize_loop(im, w, h):
    """Loop port of darknet's resize_image (image.c), float32 like the C code."""
    H, W, C = im.shape
    part = np.zeros((H, w, C), f32)
    resized = np.zeros((h, w, C), f32)
    w_scale = f32(W - 1) / f32(w - 1) if w > 1 else f32(0)
    h_scale = f32(H - 1) / f32(h - 1) if h > 1 else f32(0)
    for k in range(C):
        for r in range(H):
            for c in range(w):
                if c == w - 1 or W == 1:
                    val = im[r, W - 1, k]
                else:
                    sx = f32(c) * w_scale
                    ix = int(sx)
                    dx = f32(sx - f32(ix))
                    val = f32(f32(1) - dx) * im[r, ix, k] + dx * im[r, ix + 1, k]
                part[r, c, k] = val
    for k in range(C):
        for r in range(h):
            sy = f32(r) * h_scale
            iy = int(sy)
            dy = f32(sy - f32(iy))
            for c in range(w):
                resized[r, c, k] = f32(f32(1) - dy) * part[iy, c, k]
            if r == h - 1 or H == 1:
                continue
            for c in range(w):
                resized[r, c, k] += dy * part[iy + 1, c, k]
    return resized


@pytest.mark.parametrize("src,dst", [((5, 7), (11, 4)), ((9, 13), (6, 4)), ((1, 6), (3, 3)), ((6, 1), (2, 5)),
                                     ((8, 8), (8, 8))])
def test_darknet_resize_matches_loop(src, dst):
    im = np.random.default_rng(sum(src)).uniform(0, 1, src + (3,)).astype(f32)
    ours = darknet_resize(im, *dst)
    assert ours.shape == (dst[1], dst[0], 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, resize_loop(im, *dst), rtol=0, atol=1e-6)


def test_resize_letterbox_and_jpeg_match_darknet_itself():
    """Debian's libdarknet.so: load_image_color, resize_image, letterbox_image on a real photo."""
    darknet = Darknet()
    photo = DATA_DIR / "dog.jpg"
    im = darknet.load_image(photo)
    np.testing.assert_allclose(im, read_image(photo) / np.float32(255), atol=1e-6)  # same decoded pixels
    for w, h in ((320, 240), (101, 77), (800, 13)):
        np.testing.assert_array_equal(darknet_resize(im, w, h), darknet.resize(im, w, h))
    for w, h in ((320, 320), (416, 256), (256, 416)):
        np.testing.assert_array_equal(letterbox(im, w, h)[0], darknet.letterbox(im, w, h))


def test_letterbox_embeds_in_grey():
    im = np.random.default_rng(0).uniform(0, 1, (10, 20, 3)).astype(f32)  # w=20, h=10
    boxed, (new_w, new_h) = letterbox(im, 16, 16)
    assert (new_w, new_h) == (16, 8) and boxed.shape == (16, 16, 3)
    np.testing.assert_array_equal(boxed[:4], 0.5)
    np.testing.assert_array_equal(boxed[12:], 0.5)
    np.testing.assert_allclose(boxed[4:12], resize_loop(im, 16, 8), atol=1e-6)


def test_read_names_from_debian_package(tmp_path):
    coco = DATA_DIR / "coco.names"
    if not coco.is_file():
        pytest.skip(f"{coco} missing: the Debian package 'darknet' is not installed (apt-get install darknet)")
    names = read_names(coco)
    assert len(names) == 80 and names[0] == "person" and names[16] == "dog"
    voc = read_names(DATA_DIR / "voc.names")
    assert len(voc) == 20 and voc[0] == "aeroplane"
    (tmp_path / "n.names").write_text("a\n\n b \n")
    assert read_names(tmp_path / "n.names") == ["a", "b"]
    with pytest.raises(ModelFileError, match="nope.names: no such class names file"):
        read_names(tmp_path / "nope.names")


# --------------------------------------------------------------------------- the whole detector
def reference_detections(rows, image_wh, net_wh, conf, iou, max_det):
    """From OpenCV's yolo rows (cx, cy, w, h relative to the network input, obj, scores):
    darknet's correct_yolo_boxes for a letterboxed image, then a plain greedy NMS per class
    (one candidate at a time against the kept ones)."""
    W, H = image_wh
    nw, nh = net_wh
    if nw / W < nh / H:
        new_w, new_h = nw, (H * nw) // W
    else:
        new_w, new_h = (W * nh) // H, nh
    r, k = np.nonzero(rows[:, 5:] > conf)
    s = rows[r, 5 + k]
    x = (rows[r, 0] - (nw - new_w) / 2 / nw) / (new_w / nw) * W
    y = (rows[r, 1] - (nh - new_h) / 2 / nh) / (new_h / nh) * H
    w, h = rows[r, 2] * nw / new_w * W, rows[r, 3] * nh / new_h * H
    boxes = np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1)
    kept = []
    for i in sorted(range(len(s)), key=lambda i: -s[i]):
        suppressed = False
        for j in kept:
            if k[j] != k[i]:
                continue
            iw = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            ih = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = iw * ih
            union = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1]) + \
                (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1]) - inter
            if union > 0 and inter / union > iou:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
            if len(kept) == max_det:
                break
    clip = np.array([W, H, W, H], dtype=np.float64)
    return [(float(s[i]), int(k[i]), np.clip(boxes[i], 0, clip)) for i in kept]


@pytest.fixture(scope="module")
def tiny_v3():
    return shared_files("yolov3-tiny", 320)


def test_detector_on_a_real_photo_matches_reference(tiny_v3):
    cfg, weights = tiny_v3
    photo = DATA_DIR / "dog.jpg"
    image = read_image(photo)
    H, W = image.shape[:2]
    det = darknet_detector(cfg, weights, names=DATA_DIR / "coco.names")
    dets = det.detect(image, conf=0.9, iou=0.45, max_det=100)
    # reference: the same network input through OpenCV, decoded by OpenCV's yolo layers
    x = det.preprocess(image)
    cv = opencv_net(cfg, weights)
    rows = np.concatenate([o.reshape(-1, o.shape[-1]) for o in
                           opencv_forward(cv, x, cv.getUnconnectedOutLayersNames())]).astype(np.float64)
    ref = reference_detections(rows, (W, H), (320, 320), 0.9, 0.45, 100)
    assert len(dets) == len(ref) == 100
    names = read_names(DATA_DIR / "coco.names")
    for d, (s, k, b) in zip(dets, ref):
        assert (d["class"], d["name"]) == (k, names[k])
        assert abs(d["score"] - s) < 1e-4
        np.testing.assert_allclose(d["box"], b, atol=0.05)
    # boxes are in the photo's pixels
    boxes = np.array([d["box"] for d in dets])
    assert boxes[:, 0].min() >= 0 and boxes[:, 2].max() <= W and boxes[:, 3].max() <= H
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])


def test_detector_options(tiny_v3):
    cfg, weights = tiny_v3
    image = (np.random.default_rng(0).uniform(0, 255, (100, 150, 3))).astype(np.uint8)
    det = darknet_detector(cfg, weights)
    assert "yolov3-tiny" in repr(det)
    few = det.detect(image, conf=0.9)
    many = det.detect(image, conf=0.5, max_det=500)
    assert len(many) > len(few) > 0 and all(d["score"] > 0.9 for d in few)
    assert all(d["name"] == str(d["class"]) for d in many)
    assert len(det.detect(image, conf=0.3, max_det=5)) == 5
    stretched = det.detect(image, conf=0.3, letterbox=False, size=(256, 192))
    assert stretched and det.preprocess(image, (256, 192), False).shape == (1, 192, 256, 3)
    with pytest.raises(ValueError, match=r"size must be a positive multiple of 32 .* received size=300"):
        det.detect(image, size=300)
    with pytest.raises(ImageError, match=r"expected an RGB image \(H, W, 3\), received shape \(100, 150\)"):
        det.detect(image[..., 0])
    with pytest.raises(ValueError, match="conf must be in"):
        det.detect(image, conf=2)
    with pytest.raises(ModelFileError, match="20 class names for a network of 80 classes"):
        darknet_detector(cfg, weights, names=read_names(DATA_DIR / "voc.names"))


@pytest.mark.parametrize("name,photo,conf", [("yolov3-tiny", "dog.jpg", 0.9), ("yolov3-tiny", "person.jpg", 0.9),
                                             ("yolov2-tiny-voc", "horses.jpg", 0.6)])
def test_detector_matches_darknet_itself(name, photo, conf):
    """The whole pipeline against Debian's libdarknet.so doing what ``darknet detector test``
    does: load_image_color, letterbox_image, network_predict, get_network_boxes (pixels),
    do_nms_sort at 0.45, keep probabilities > conf."""
    darknet = Darknet()
    cfg, weights = shared_files(name, 320)
    det = darknet_detector(cfg, weights)
    image = read_image(DATA_DIR / photo)
    H, W = image.shape[:2]
    handle = darknet.load(cfg, weights)
    darknet.predict(handle, darknet.letterbox(darknet.load_image(DATA_DIR / photo), 320, 320))
    ref = []
    for (x, y, w, h), _, probs in darknet.boxes(handle, (W, H), conf, 0, det.num_classes, nms=0.45):
        for k in np.flatnonzero(probs > conf):
            box = np.clip([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 0, [W, H, W, H])
            ref.append((float(probs[k]), int(k), box))
    ours = det.detect(image, conf=conf, iou=0.45, max_det=None)
    assert 10 < len(ours) == len(ref)
    assert [d["score"] for d in ours] == sorted((d["score"] for d in ours), reverse=True)
    # the same (class, score, box) triples; matched one to one (scores a few 1e-8 apart may swap places)
    ref_cls = np.array([k for _, k, _ in ref])
    ref_score = np.array([s for s, _, _ in ref])
    ref_box = np.array([b for _, _, b in ref])
    free = np.ones(len(ref), bool)
    for d in ours:
        match = np.flatnonzero(free & (ref_cls == d["class"]) & (np.abs(ref_score - d["score"]) < 1e-4)
                               & np.all(np.abs(ref_box - d["box"]) < 0.05, axis=1))
        assert match.size, f"no darknet detection like {d}"
        free[match[0]] = False
