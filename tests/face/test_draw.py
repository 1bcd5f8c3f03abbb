"""strided.face.draw: boxes, labels and landmarks drawn where the face is; files written by suffix."""
import numpy as np
import pytest

from strided.data.image import write_image as save_image
from strided.face.draw import KNOWN_COLOUR, LANDMARK_COLOUR, UNKNOWN_COLOUR, draw_faces


def test_draw_faces_draws_box_landmarks_and_label_at_the_face_only():
    image = np.full((300, 400, 3), 40, np.uint8)
    face = {"box": [100.0, 120.0, 200.0, 240.0], "score": 0.9,
            "landmarks": [[150.0 + 30.0 * np.cos(t), 180.0 + 40.0 * np.sin(t)]
                          for t in np.linspace(0, 2 * np.pi, 68, endpoint=False)]}
    drawn = draw_faces(image, [face])
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert np.all(image == 40)                                    # the input is not modified
    assert tuple(drawn[180, 100]) == KNOWN_COLOUR                 # left edge of the box
    assert tuple(drawn[180, 180]) == LANDMARK_COLOUR              # a landmark dot (t = 0)
    assert tuple(drawn[180, 150]) == (40, 40, 40)                 # inside the box, no landmark
    changed = np.any(drawn != 40, axis=-1)
    rows, cols = np.nonzero(changed)
    assert rows.min() >= 120 - 40 and rows.max() <= 242 and cols.min() >= 98 and cols.max() <= 202
    assert changed[:120, 100:200].any()                            # the score label above the box


def test_draw_faces_labels_colours_and_errors():
    image = np.zeros((100, 100, 3), np.uint8)
    face = {"box": [10, 30, 60, 90]}
    drawn = draw_faces(image, [face], labels=["unknown"], colours=[UNKNOWN_COLOUR])
    assert tuple(drawn[60, 10]) == UNKNOWN_COLOUR
    assert np.array_equal(draw_faces(image, []), image)
    with pytest.raises(ValueError, match="1 faces, received 2 labels"):
        draw_faces(image, [face], labels=["a", "b"])
    with pytest.raises(ValueError, match="uint8 \\(H, W, 3\\)"):
        draw_faces(image[..., 0], [face])


def test_save_image_writes_the_format_of_the_suffix(tmp_path):
    from PIL import Image
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    save_image(pixels, tmp_path / "a.png")
    save_image(pixels, tmp_path / "a.jpg")
    with Image.open(tmp_path / "a.png") as png, Image.open(tmp_path / "a.jpg") as jpg:
        assert png.format == "PNG" and jpg.format == "JPEG"
        assert np.array_equal(np.asarray(png), pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png"]     # no temporary left
