"""Generated localisation / scene data sets: exact labels, seeds, sane distributions.

The expected values here never come from the generator's own label code: boxes are
checked against the rendered masks and the pixels that changed, landmarks against the
geometry of a solid square glyph (shoelace area, centroid, point-in-polygon).
"""
import numpy as np
import pytest

from strided.data import scenes
from strided.data.image import to_float
from strided.data.loader import DataLoader
from strided.data.scenes import (SCENE_DATASETS, FreshScenes, LocalizationSet, SceneError, SceneSet,
                                 course_targets, make_localization, make_scenes)
from strided.detect.training import collate_detection


def _square_glyphs(n_classes=3):
    """Solid rectangles (columns 6..20, rows 4..24) as glyphs: their frame is the rectangle."""
    images = np.zeros((n_classes, 28, 28), np.uint8)
    images[:, 4:24, 6:20] = 255
    return images, np.arange(n_classes), [f"c{i}" for i in range(n_classes)]


def _shoelace(points):
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _inside_convex(points, quad, margin):
    """Points (P, 2) inside the convex quad (4, 2) grown by ``margin`` (signed distances)."""
    signs = []
    for k in range(4):
        a, b = quad[k], quad[(k + 1) % 4]
        edge = b - a
        normal = np.array([-edge[1], edge[0]]) / np.hypot(*edge)
        signs.append((points - a) @ normal)
    signs = np.stack(signs, 1)
    orient = np.sign(np.median(signs))           # all positive or all negative inside
    return (signs * orient >= -margin).all(axis=1)


@pytest.fixture(scope="module")
def loc():
    return make_localization("digits", 48, size=48, seed=3, empty_fraction=0.25,
                             return_layers=True)


@pytest.fixture(scope="module")
def scenes_set():
    return make_scenes("fashion", 24, size=64, max_objects=4, seed=5, return_layers=True)


# ---------------------------------------------------------------- localisation labels
def test_localization_shapes_and_types(loc):
    assert isinstance(loc, LocalizationSet)
    assert loc.images.shape == (48, 48, 48, 3) and loc.images.dtype == np.uint8
    assert loc.labels.dtype == np.int64 and loc.boxes.shape == (48, 4)
    assert loc.landmarks.shape == (48, 4, 2)
    assert loc.targets().shape == (48, 5 + 10 + 8)
    assert loc.classes == [str(d) for d in range(10)]


def test_empty_images_have_pc_zero_and_are_the_photo(loc):
    empty = loc.labels < 0
    assert 0 < empty.sum() < len(loc)
    y = loc.targets()
    assert np.all(y[empty] == 0)                          # pc = 0 and nothing else
    assert np.all(y[~empty, 0] == 1)
    np.testing.assert_array_equal(loc.images[empty], loc.backgrounds[empty])
    assert np.all(loc.masks[empty] == 0)


def test_pixels_change_only_inside_the_box(loc):
    for i in np.flatnonzero(loc.labels >= 0):
        changed = np.any(loc.images[i] != loc.backgrounds[i], axis=-1)
        mask = loc.masks[i] > 0
        assert not np.any(changed & ~mask), "a pixel outside the object changed"
        x1, y1, x2, y2 = loc.boxes[i].astype(int)
        rows, cols = np.nonzero(mask)
        assert rows.min() == y1 and rows.max() + 1 == y2      # tight box of the mask
        assert cols.min() == x1 and cols.max() + 1 == x2
        inner = np.zeros_like(mask)
        inner[y1:y2, x1:x2] = True
        assert not np.any(changed & ~inner)
        assert changed[loc.masks[i] > 0.5].mean() > 0.9       # the object is drawn


def test_object_is_visible_against_the_photo(loc):
    """Mean colour difference between object and photo where the glyph is solid."""
    diffs = []
    for i in np.flatnonzero(loc.labels >= 0):
        solid = loc.masks[i] > 0.8
        d = np.abs(loc.images[i].astype(float) - loc.backgrounds[i].astype(float))[solid]
        diffs.append(d.max(axis=-1).mean())
    assert np.median(diffs) > 60


def test_course_vector_matches_the_box(loc):
    y = loc.y
    has = loc.labels >= 0
    S = loc.image_size
    b = loc.boxes[has].astype(np.float64)
    np.testing.assert_allclose(y[has, 1], (b[:, 0] + b[:, 2]) / 2 / S, atol=1e-6)   # bx
    np.testing.assert_allclose(y[has, 2], (b[:, 1] + b[:, 3]) / 2 / S, atol=1e-6)   # by
    np.testing.assert_allclose(y[has, 3], (b[:, 3] - b[:, 1]) / S, atol=1e-6)       # bh
    np.testing.assert_allclose(y[has, 4], (b[:, 2] - b[:, 0]) / S, atol=1e-6)       # bw
    assert np.all(y[has, 5:].argmax(1) == loc.labels[has])
    assert np.all(y[has, 5:].sum(1) == 1)
    marks = loc.targets()[:, 15:].reshape(-1, 4, 2)
    np.testing.assert_allclose(marks[has] * S, loc.landmarks[has], atol=1e-4)


def test_course_targets_by_hand():
    y = course_targets(np.array([2, -1]), np.array([[8, 16, 24, 48], [0, 0, 0, 0]]), 64, 3)
    np.testing.assert_allclose(y, [[1, 0.25, 0.5, 0.5, 0.25, 0, 0, 1], [0] * 8])


def test_landmarks_are_the_transformed_corners_of_a_square_glyph():
    """A solid rectangle glyph is drawn as the parallelogram of its 4 landmarks: its
    alpha integrates to the shoelace area, its centroid is the corners' mean, every
    fully opaque pixel lies inside and every touched pixel near it."""
    data = make_localization(n=40, size=64, seed=11, empty_fraction=0.0,
                             glyphs=_square_glyphs(), return_layers=True, scale=(0.4, 0.8),
                             max_rotation=40, max_shear=0.4)
    rows, cols = np.mgrid[0:64, 0:64]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], 1)
    for i in range(len(data)):
        quad = data.landmarks[i].astype(np.float64)
        mask = data.masks[i].ravel().astype(np.float64)
        area = _shoelace(quad)
        assert abs(mask.sum() - area) / area < 0.03
        centroid = (centres * mask[:, None]).sum(0) / mask.sum()
        np.testing.assert_allclose(centroid, quad.mean(0), atol=0.25)
        assert _inside_convex(centres[mask >= 0.999], quad, 1e-6).all()
        # the bilinear edge ramp is one glyph pixel wide: at most ~ half the scale outside
        scale = np.hypot(*(quad[1] - quad[0])) / 14.0
        assert _inside_convex(centres[mask > 0], quad, 0.5 * scale * 1.5 + 0.01).all()
        # corner order: top-left, top-right, bottom-right, bottom-left of the glyph
        width = np.hypot(*(quad[1] - quad[0]))
        height = np.hypot(*(quad[3] - quad[0]))
        assert height > width          # the rectangle is 20 tall, 14 wide (shear aside)


def test_landmarks_are_not_the_box(loc):
    has = loc.labels >= 0
    b = loc.boxes[has]
    box_corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], 1)
    assert np.abs(loc.landmarks[has] - box_corners).max(axis=(1, 2)).mean() > 2.0
    assert np.all((loc.landmarks[has] >= 0) & (loc.landmarks[has] <= loc.image_size))


# ---------------------------------------------------------------- determinism
def test_same_seed_same_data_other_seed_other_data():
    a = make_localization("digits", 20, size=32, seed=7)
    b = make_localization("digits", 20, size=32, seed=7)
    c = make_localization("digits", 20, size=32, seed=8)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.targets(), b.targets())
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    assert not np.array_equal(a.images, c.images)


def test_chunk_size_does_not_change_the_result(monkeypatch):
    a = make_scenes("digits", 12, size=48, seed=2)
    monkeypatch.setattr(scenes, "_CHUNK", 5)
    b = make_scenes("digits", 12, size=48, seed=2)
    np.testing.assert_array_equal(a.images, b.images)
    for x, y in zip(a.boxes + a.labels, b.boxes + b.labels):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- distributions
def test_empty_fraction_and_classes_are_sane():
    data = make_localization("digits", 1000, size=24, seed=0, empty_fraction=0.2,
                             scale=(0.5, 0.9))
    empty = (data.labels < 0).mean()
    assert 0.16 < empty < 0.24
    counts = np.bincount(data.labels[data.labels >= 0], minlength=10)
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()
    centres = (data.boxes[:, :2] + data.boxes[:, 2:]) / 2
    has = data.labels >= 0
    assert centres[has].std(axis=0).min() > 1.5            # positions spread
    side = np.maximum(data.boxes[has, 2] - data.boxes[has, 0], data.boxes[has, 3] - data.boxes[has, 1])
    assert side.min() >= 0.3 * 24 and side.max() <= 24


# ---------------------------------------------------------------- scenes
def test_scenes_labels_are_exact(scenes_set):
    assert isinstance(scenes_set, SceneSet) and len(scenes_set) == 24
    counts = [len(b) for b in scenes_set.boxes]
    assert min(counts) >= 1 and max(counts) <= 4 and len(set(counts)) > 1
    for i in range(len(scenes_set)):
        image, target = scenes_set[i]
        assert target["boxes"].shape == (counts[i], 4) and target["labels"].dtype == np.int64
        masks = scenes_set.masks[i]
        union = (masks > 0).any(axis=0)
        changed = np.any(image != scenes_set.backgrounds[i], axis=-1)
        assert not np.any(changed & ~union)
        for mask, box in zip(masks, target["boxes"]):
            rows, cols = np.nonzero(mask > 0)
            assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == tuple(box.astype(int))


def test_scenes_overlap_is_bounded(scenes_set):
    for marks in scenes_set.landmarks:
        boxes = np.concatenate([marks.min(axis=1), marks.max(axis=1)], axis=1).astype(np.float64)
        for a in range(len(boxes)):
            for b in range(a):
                w = max(0.0, min(boxes[a, 2], boxes[b, 2]) - max(boxes[a, 0], boxes[b, 0]))
                h = max(0.0, min(boxes[a, 3], boxes[b, 3]) - max(boxes[a, 1], boxes[b, 1]))
                areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
                assert w * h / (areas[a] + areas[b] - w * h) <= 0.3 + 1e-9


def test_scenes_coco_ground_truth(scenes_set):
    rows = scenes_set.coco_ground_truth()
    assert len(rows) == sum(len(b) for b in scenes_set.boxes)
    first = rows[0]
    x1, y1, x2, y2 = scenes_set.boxes[0][0].tolist()
    assert first["image_id"] == 0 and first["bbox"] == [x1, y1, x2 - x1, y2 - y1]
    assert first["category_id"] == int(scenes_set.labels[0][0])


def test_scenes_seeded():
    a = make_scenes("digits", 6, size=40, seed=1)
    b = make_scenes("digits", 6, size=40, seed=1)
    np.testing.assert_array_equal(a.images, b.images)


def test_fresh_scenes_are_new_every_epoch_and_the_same_for_the_same_epoch():
    options = dict(source="digits", size=40, max_objects=3, split="train")
    fresh = FreshScenes(6, seed=4, **options)
    assert len(fresh) == 6 and fresh.epoch == 0 and fresh.num_classes == 10
    # epoch e's scenes are make_scenes with that epoch's seed, and only those
    expected = make_scenes(n=6, seed=fresh.epoch_seed(0), **options)
    np.testing.assert_array_equal(fresh.images, expected.images)
    image, target = fresh[2]
    np.testing.assert_array_equal(image, expected.images[2])
    np.testing.assert_array_equal(target["boxes"], expected.boxes[2])
    assert fresh.coco_ground_truth() == expected.coco_ground_truth()
    epoch0 = fresh.images.copy()
    fresh.set_epoch(1)
    assert not np.array_equal(fresh.images, epoch0)
    fresh.set_epoch(0)
    np.testing.assert_array_equal(fresh.images, epoch0)
    assert len({fresh.epoch_seed(e) for e in range(50)} | {FreshScenes(1, seed=5, **options).epoch_seed(0)}) == 51
    held_out = fresh.held_out(4)                       # same kind of scenes, from no epoch's seed
    assert len(held_out) == 4 and held_out.images.shape == (4, 40, 40, 3)
    assert fresh.epoch_seed(fresh.HELD_OUT_EPOCH) not in {fresh.epoch_seed(e) for e in range(1000)}
    assert "not rendered yet" in repr(FreshScenes(3, seed=1, **options))
    with pytest.raises(SceneError, match="epoch=-1"):
        fresh.set_epoch(-1)
    with pytest.raises(SceneError, match="seed=-2"):
        FreshScenes(6, seed=-2, **options)


def test_the_loader_draws_fresh_scenes_each_epoch():
    fresh = FreshScenes(8, seed=0, source="fashion", size=32, max_objects=2, split="train")
    loader = DataLoader(fresh, 4, shuffle=True, seed=1, collate_fn=collate_detection, prefetch=0)

    def images(epoch):
        loader.set_epoch(epoch)
        return np.concatenate([batch[0] for batch in loader])

    first, second = images(0), images(1)
    assert not np.array_equal(first, second)
    # an image of epoch 1 is one of epoch 1's scenes (shuffled), not of epoch 0's
    rendered = make_scenes(n=8, seed=fresh.epoch_seed(1), source="fashion", size=32, max_objects=2,
                           split="train").images
    assert any(np.array_equal(second[0], to_float(r)) for r in rendered)
    np.testing.assert_array_equal(images(0), first)          # a resumed epoch repeats exactly


# ---------------------------------------------------------------- errors and registry
@pytest.mark.parametrize("kwargs, words", [
    (dict(source="letters"), "source must be one of"),
    (dict(scale=(0.5, 0.2)), "scale=(0.5, 0.2)"),
    (dict(size=8), "size=8"),
    (dict(seed=-1), "seed=-1"),
    (dict(empty_fraction=1.5), "empty_fraction=1.5"),
    (dict(photos=["nowhere"]), "nowhere"),
])
def test_bad_arguments_are_named(kwargs, words):
    args = dict(source="digits", n=2, size=32)
    args.update(kwargs)
    with pytest.raises(SceneError, match=None) as info:
        make_localization(**args)
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)


def test_scene_datasets_registry():
    assert set(SCENE_DATASETS) == {"digit-loc", "fashion-loc", "digit-scenes", "fashion-scenes"}
    for name, (builder, description) in SCENE_DATASETS.items():
        assert callable(builder) and isinstance(description, str) and description


def test_backgrounds_are_crops_of_the_named_photos():
    """camera.png is gray: every crop of it has R == G == B; astronaut's crops are colour."""
    gray = make_localization("digits", 6, size=32, seed=0, empty_fraction=1.0, photos=["camera"])
    assert np.all(gray.images[..., 0] == gray.images[..., 1])
    assert np.all(gray.images[..., 1] == gray.images[..., 2])
    colour = make_localization("digits", 6, size=32, seed=0, empty_fraction=1.0, photos=["astronaut"])
    assert np.abs(colour.images[..., 0].astype(int) - colour.images[..., 2]).mean() > 5


def test_items_and_batches_match_the_full_targets(loc):
    full = loc.targets()
    image, target = loc[5]
    np.testing.assert_array_equal(image, loc.images[5])
    np.testing.assert_array_equal(target, full[5])
    images, targets = loc.get_batch([3, 0, 7])
    np.testing.assert_array_equal(targets, full[[3, 0, 7]])
    assert images.shape == (3, 48, 48, 3)


def test_named_builders_split_glyphs_and_photos():
    builder, _ = SCENE_DATASETS["digit-scenes"]
    train, test = builder(train=4, test=3, size=48)
    assert len(train) == 4 and len(test) == 3 and train.images.shape[1:] == (48, 48, 3)
    assert train.name == "digits-scenes" and train.classes == [str(d) for d in range(10)]
    train, test = SCENE_DATASETS["fashion-loc"][0](train=3, test=2, size=32)
    assert len(train) == 3 and len(test) == 2 and train.classes[0] == "T-shirt/top"


def test_the_named_sets_keep_their_twelve_training_photos_and_the_extra_ones_load():
    """EXTRA_TRAIN_PHOTOS adds backgrounds for trainers that want them; the named sets (and so every
    number measured on them) keep the 12 photos, and no photo is both a training and a test photo."""
    assert scenes.TRAIN_PHOTOS == ("astronaut", "coffee", "rocket", "camera", "brick", "grass", "motorcycle",
                                   "hubble", "retina", "coins", "moon", "ihc")
    extra = scenes.EXTRA_TRAIN_PHOTOS
    assert extra[:12] == scenes.TRAIN_PHOTOS and len(extra) == 27 and len(set(extra)) == 27
    assert not set(extra) & set(scenes.TEST_PHOTOS)
    for name in extra:
        try:
            photo = scenes.load_photos([name])[0]
        except scenes.DatasetUnavailable as error:
            assert scenes.PHOTOS[name][1] == "darknet" and "strided data fetch darknet" in str(error)
            continue
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3 and min(photo.shape[:2]) >= 96


def test_a_missing_photo_says_where_it_comes_from(monkeypatch, tmp_path):
    monkeypatch.setattr(scenes, "DARKNET_DATA", tmp_path)
    with pytest.raises(scenes.DatasetUnavailable, match=r"'dog' \(dog.jpg\) not found: it ships with 'darknet' "
                                                        r"\(strided data fetch darknet\)"):
        scenes.photo_path("dog")
