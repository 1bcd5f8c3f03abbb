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
