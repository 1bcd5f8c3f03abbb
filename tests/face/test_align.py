"""strided.face.align: face-api's crop rule, its dlib alignment and its alignedRect, by hand and
against face-api's own numbers (``alignedRect`` of every reference face, computed in node from
the same landmarks; see ``tests/detect/data/faceapi_make_reference.py``)."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import faceapi_helpers as helpers  # noqa: E402

from strided.errors import StridedError  # noqa: E402
from strided.face.align import (align_box, crop_face, crop_rect, extract_faces, landmark_box,  # noqa: E402
                                landmarks_to_image)


def synthetic_landmarks(left_eye=(40.0, 50.0), right_eye=(60.0, 50.0), mouth=(50.0, 80.0)):
    """68 points whose eye and mouth groups are centred where asked (the rest at the origin)."""
    points = np.zeros((68, 2))
    offsets = np.array([[-1.0, 0.5], [1.0, -0.5]])
    for part, centre in ((slice(36, 42), left_eye), (slice(42, 48), right_eye), (slice(48, 68), mouth)):
        n = part.stop - part.start
        points[part] = np.array(centre) + np.tile(offsets, (n // 2, 1))       # pairs cancel: mean = centre
    return points


def test_crop_rect_clips_then_floors_each_number():
    # inside: floor(x), floor(y), floor(w), floor(h) separately (Box.clipAtImageBorders)
    assert crop_rect([10.7, 20.2, 50.5, 60.9], (100, 100, 3)) == (10, 20, 39, 40)
    # left/top outside: x' = 0, w' = x2 - 0; right/bottom outside: up to the border
    assert crop_rect([-5.5, -3.0, 30.2, 200.0], (120, 80)) == (0, 0, 30, 120)
    assert crop_rect([70.5, 10.0, 95.0, 20.0], (50, 80)) == (70, 10, 9, 10)
    assert crop_rect([90.0, 10.0, 95.0, 20.0], (50, 80))[2] <= 0        # misses the image


def test_crop_face_and_extract_faces():
    image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    crop, rect = crop_face(image, [2.5, 1.2, 7.9, 6.0])
    assert rect == (2, 1, 5, 4)
    np.testing.assert_array_equal(crop, image[1:5, 2:7])
    with pytest.raises(StridedError, match="no pixel inside the image of shape \\(10, 12\\)"):
        crop_face(image, [20, 1, 30, 5])
    crops = extract_faces(image, [[0, 0, 3, 3], [50, 50, 60, 60], [-2, -2, 4, 5]])
    assert [c.shape for c in crops] == [(3, 3, 3), (5, 4, 3)]              # the box outside is skipped
    with pytest.raises(StridedError, match="x1 <= x2"):
        crop_rect([5, 0, 1, 3], image.shape)


def test_landmarks_to_image_scales_by_the_crop_and_shifts_by_the_box():
    rel = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.25]])
    np.testing.assert_allclose(landmarks_to_image(rel, (40, 20), (-3.5, 7.25)),
                               [[-3.5, 7.25], [36.5, 27.25], [16.5, 12.25]])


def test_align_box_by_hand():
    points = synthetic_landmarks()
    # eyes to mouth: sqrt(10^2 + 30^2) = 31.62 each, size floor(31.62 / 0.45) = 70;
    # centre of the three centres (50, 60): x = floor(50 - 35) = 15, y = floor(60 - 0.43 * 70) = floor(29.9) = 29
    assert align_box(points) == [15.0, 29.0, 85.0, 99.0]
    # face-api caps the size at the landmark crop's width + x, height + y
    assert align_box(points, crop_size=(10, 100)) == [15.0, 29.0, 40.0, 99.0]
    # near the top-left corner the box starts at 0 (and keeps its size)
    near = synthetic_landmarks((10, 12), (30, 12), (20, 42))
    assert align_box(near)[:2] == [0.0, 0.0] and align_box(near)[2] == 70.0
    with pytest.raises(StridedError, match="68 finite"):
        align_box(points[:5])


def test_landmark_box_by_hand():
    points = np.tile([[10.0, 20.0], [30.0, 60.0]], (34, 1))
    np.testing.assert_allclose(landmark_box(points), [8.0, 16.0, 32.0, 64.0])       # + 20 % of 20 x 40
    np.testing.assert_allclose(landmark_box(points, padding=0.0), [10.0, 20.0, 30.0, 60.0])


FACES = [(name, i) for name, p in helpers.reference()["photos"].items() for i in range(len(p["faces"]))]


@pytest.mark.parametrize("name,index", FACES)
def test_landmark_box_is_face_apis_aligned_rect(name, index):
    face = helpers.reference()["photos"][name]["faces"][index]
    np.testing.assert_allclose(landmark_box(face["landmarks"]), helpers.xywh_to_xyxy(face["aligned_box"]),
                               rtol=0, atol=1e-4)
