"""strided.detect.draw: boxes on a picture (pixels checked by hand), YOLO label lines (numbers by hand)."""
import numpy as np
import pytest

from strided.detect.draw import PALETTE, draw_detections, yolo_label_lines
from strided.errors import ImageError


def test_box_edges_are_drawn_in_the_class_colour_and_the_input_is_kept():
    image = np.zeros((40, 60, 3), np.uint8)
    dets = [{"box": [10.0, 5.0, 30.0, 25.0], "score": 0.9, "class": 3, "name": "cat"}]
    out = draw_detections(image, dets, line_width=1)
    assert out.shape == image.shape and out.dtype == np.uint8 and not image.any()
    colour = PALETTE[3]
    # pixel edges 10..30 x 5..25: the last covered column is 29, the last row 24
    assert tuple(out[24, 20]) == colour and tuple(out[15, 29]) == colour and tuple(out[15, 10]) == colour
    assert not out[22, 20].any() and not out[24, 31].any() and not out[30:, :].any()   # inside (below the label) / outside: untouched


def test_boxes_outside_the_picture_are_clipped_and_labels_fit():
    image = np.full((40, 30, 3), 255, np.uint8)
    dets = [{"box": [-20.0, -5.0, 50.0, 25.0], "score": 0.5, "class": 0, "name": "wide"}]
    out = draw_detections(image, dets, line_width=1, font_size=9)
    assert tuple(out[24, 15]) == PALETTE[0]                   # the bottom edge, clipped to the picture
    assert tuple(out[20, 0]) == PALETTE[0] and tuple(out[20, 29]) == PALETTE[0]     # left and right edges
    assert tuple(out[1, 1]) == PALETTE[0]                     # the label's strip, inside the picture at the top
    assert (out[30:] == 255).all()


def test_bad_image():
    with pytest.raises(ImageError, match=r"uint8 RGB image \(H, W, 3\), received shape \(4, 4\)"):
        draw_detections(np.zeros((4, 4), np.uint8), [])


def test_yolo_label_lines_by_hand():
    dets = [{"box": [10, 5, 30, 25], "score": 0.5, "class": 2},
            {"box": [-10, 0, 10, 40], "score": 0.25, "class": 0}]
    assert yolo_label_lines(dets, 60, 40) == ["2 0.333333 0.375000 0.333333 0.500000 0.500000",
                                              "0 0.083333 0.500000 0.166667 1.000000 0.250000"]
    assert yolo_label_lines(dets[:1], 60, 40, with_score=False) == ["2 0.333333 0.375000 0.333333 0.500000"]
    assert yolo_label_lines([], 10, 10) == []
