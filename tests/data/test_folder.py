"""Image-folder data sets: classes from sub-folders, unreadable files skipped and counted,
sizes, grayscale, given train/test split."""
import warnings

import numpy as np
import pytest
from PIL import Image

from strided.data import DatasetUnavailable, UnreadableImagesWarning, load, load_image_folder

COLORS = {"cat": (200, 30, 10), "dog": (10, 220, 40)}


def _png(path, color, size=(10, 8)):                  # size is PIL's (W, H)
    Image.new("RGB", size, color).save(path)


def _tree(root, per_class=5, corrupt=True, size=(10, 8)):
    for name, color in COLORS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            _png(root / name / f"{i}.png", color, size)
    (root / "dog" / "notes.txt").write_text("not an image, ignored")
    if corrupt:
        (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        (root / "dog" / "empty.PNG").write_bytes(b"")
    return root


def test_folder_reads_classes_and_skips_unreadable_images(tmp_path):
    root = _tree(tmp_path / "pets")
    with pytest.warns(UnreadableImagesWarning,
                      match=r"skipped 2 unreadable image\(s\).*broken\.jpg.*empty\.PNG"):
        train, test = load(f"folder:{root}")
    assert train.classes == test.classes == ["cat", "dog"]
    assert len(train) + len(test) == 10             # the 2 broken files and the .txt are out
    assert len(test) == 2 and sorted(test.labels.tolist()) == [0, 1]
    assert train.image_shape == (8, 10, 3) and train.images.dtype == np.uint8
    assert train.name == f"folder:{root}"
    for ds in (train, test):
        for image, label in zip(ds.images, ds.labels):
            np.testing.assert_array_equal(image, np.broadcast_to(COLORS[ds.classes[label]], (8, 10, 3)))


def test_many_unreadable_files_show_the_first_three(tmp_path):
    root = _tree(tmp_path / "pets", corrupt=False)
    for i in range(5):
        (root / "cat" / f"bad{i}.bmp").write_bytes(b"BM nope")
    with pytest.warns(UnreadableImagesWarning, match=r"skipped 5 .*bad2\.bmp' and 2 more"):
        load_image_folder(root)


def test_no_warning_when_everything_reads(tmp_path):
    root = _tree(tmp_path / "pets", corrupt=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, test = load_image_folder(root, test_fraction=0.4, seed=3)
    assert (len(train), len(test)) == (6, 4)
    np.testing.assert_array_equal(test.class_counts(), [2, 2])


def test_image_size_resizes_and_grayscale_reads_luma(tmp_path):
    root = _tree(tmp_path / "pets", corrupt=False, size=(12, 9))
    _png(root / "cat" / "big.png", COLORS["cat"], size=(30, 17))
    train, test = load_image_folder(root, image_size=(6, 11), test_fraction=0.0)
    assert len(test) == 0 and len(train) == 11
    assert train.image_shape == (6, 11, 3)            # (H, W)
    np.testing.assert_array_equal(train.images[train.labels == 0],
                                  np.broadcast_to(COLORS["cat"], (6, 6, 11, 3)))
    gray, _ = load_image_folder(root, image_size=5, grayscale=True, test_fraction=0.0)
    assert gray.image_shape == (5, 5, 1)
    r, g, b = COLORS["dog"]
    assert abs(gray.images[gray.labels == 1].mean() - (299 * r + 587 * g + 114 * b) / 1000) <= 1


def test_different_sizes_without_image_size_are_an_error(tmp_path):
    root = _tree(tmp_path / "pets", corrupt=False, size=(12, 9))
    _png(root / "dog" / "z.png", COLORS["dog"], size=(30, 17))
    with pytest.raises(ValueError, match=r"z\.png' is 17x30 \(HxW\) but .*0\.png' is 9x12; "
                                         r"pass image_size"):
        load_image_folder(root)


def test_given_train_and_test_subfolders(tmp_path):
    root = tmp_path / "split"
    _tree(root / "train", per_class=3, corrupt=False)
    _tree(root / "test", per_class=2, corrupt=True)
    with pytest.warns(UnreadableImagesWarning, match="skipped 2"):
        train, test = load(f"folder:{root}")
    assert (len(train), len(test)) == (6, 4)
    assert train.classes == test.classes == ["cat", "dog"]
    np.testing.assert_array_equal(test.class_counts(), [2, 2])
    np.testing.assert_array_equal(test.images[test.labels == 1],
                                  np.broadcast_to(COLORS["dog"], (2, 8, 10, 3)))


def test_test_folder_with_an_unknown_class(tmp_path):
    root = tmp_path / "split"
    _tree(root / "train", per_class=1, corrupt=False)
    (root / "test" / "bird").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"has classes that .* lacks: \['bird'\]"):
        load_image_folder(root)


def test_folder_errors_say_what_layout_is_expected(tmp_path):
    with pytest.raises(DatasetUnavailable, match=r"does not exist; expected ROOT/<class>/\*\.jpg"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetUnavailable, match="no class sub-folders"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "junk" / "a").mkdir(parents=True)
    (tmp_path / "junk" / "a" / "x.png").write_bytes(b"garbage")
    with pytest.warns(UnreadableImagesWarning, match="skipped 1"), \
            pytest.raises(DatasetUnavailable, match=r"no readable images .*\(1 unreadable\)"):
        load_image_folder(tmp_path / "junk")
    assert issubclass(DatasetUnavailable, FileNotFoundError)


def test_image_size_scales_the_shorter_side_and_cuts_out_the_centre(tmp_path):
    """A 60x20 (WxH) photo to 10x10: scaled by 1/2 to 30x10, then the centre 10 columns (source columns
    20..39); its green sides (columns 0..14 and 45..59) are cut away, nothing is stretched."""
    from strided.data.folder import resize_center_crop
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, :15] = pixels[:, 45:] = (0, 255, 0)
    pixels[:, 15:45] = (255, 0, 0)
    for name in ("a", "b"):
        (tmp_path / "pics" / name).mkdir(parents=True)
        Image.fromarray(pixels).save(tmp_path / "pics" / name / "wide.png")
    train, _ = load_image_folder(tmp_path / "pics", image_size=10, test_fraction=0.0)
    assert train.image_shape == (10, 10, 3)
    np.testing.assert_array_equal(train.images[0], np.broadcast_to((255, 0, 0), (10, 10, 3)))
    # a tall one keeps its vertical centre; the same aspect ratio is a plain resize; the target size is a no-op
    tall = np.zeros((40, 10, 1), np.uint8)
    tall[8:32] = 200
    np.testing.assert_array_equal(resize_center_crop(tall, (5, 5)), np.full((5, 5, 1), 200, np.uint8))
    assert resize_center_crop(pixels, (10, 30)).shape == (10, 30, 3)
    assert resize_center_crop(pixels, (20, 60)) is pixels


def test_photos_of_mixed_sizes_and_kinds(tmp_path):
    """Real-world folders: JPEGs and PNGs of different sizes and modes (RGB, L, RGBA, palette, 16-bit)."""
    from strided.data.folder import MixedImageSizes
    rng = np.random.default_rng(1)
    specs = [((64, 48), "RGB", "x.jpg"), ((40, 90), "L", "y.jpeg"), ((33, 33), "RGBA", "z.png"),
             ((50, 70), "P", "w.png"), ((31, 17), "I;16", "v.png")]
    for name in ("cat", "dog"):
        (tmp_path / "mixed" / name).mkdir(parents=True)
        for (W, H), mode, file in specs:
            image = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
            if mode == "I;16":
                image = Image.fromarray((rng.integers(0, 65536, (H, W))).astype(np.uint16))
            elif mode == "RGBA":
                image.putalpha(255)
            elif mode != "RGB":
                image = image.convert(mode)
            image.save(tmp_path / "mixed" / name / file)
    with pytest.raises(MixedImageSizes, match="pass image_size"):
        load_image_folder(tmp_path / "mixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # every file reads
        train, test = load_image_folder(tmp_path / "mixed", image_size=(24, 32), test_fraction=0.2)
    assert len(train) + len(test) == 10 and train.image_shape == (24, 32, 3)
    gray, _ = load_image_folder(tmp_path / "mixed", image_size=16, grayscale=True, test_fraction=0.0)
    assert gray.image_shape == (16, 16, 1) and gray.images.std() > 20
