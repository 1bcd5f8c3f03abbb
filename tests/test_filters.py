"""strided.filters: the course's edge kernels and edge maps."""
import numpy as np
import pytest

from strided import filters


def test_kernels():
    np.testing.assert_array_equal(filters.vertical, [[1, 0, -1]] * 3)
    np.testing.assert_array_equal(filters.horizontal, np.array([[1, 0, -1]] * 3).T)
    np.testing.assert_array_equal(filters.sobel, [[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    np.testing.assert_array_equal(filters.scharr, [[3, 0, -3], [10, 0, -10], [3, 0, -3]])
    for name in ("vertical", "horizontal", "sobel", "scharr"):
        k = filters.get(name)
        assert k.shape == (3, 3) and k.dtype == np.float32 and k.sum() == 0


def test_unknown_filter_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"'laplace'.*sobel"):
        filters.get("laplace")


def test_as_conv_weight_is_hwio():
    w = filters.as_conv_weight(filters.sobel, channels=3)
    assert w.shape == (3, 3, 3, 1)
    for c in range(3):
        np.testing.assert_array_equal(w[:, :, c, 0], filters.sobel)


def test_edge_map_finds_a_vertical_step_only_with_vertical_kernels():
    image = np.zeros((10, 12))
    image[:, 6:] = 1.0
    v = filters.edge_map(image, "vertical")
    h = filters.edge_map(image, "horizontal")
    s = filters.edge_map(image, "sobel")
    assert v.shape == (8, 10)
    assert not h.any()
    columns = np.flatnonzero(v.max(axis=0))
    assert list(columns) == [4, 5]                  # the two windows that straddle the step
    assert np.allclose(s[:, [4, 5]], 4.0) and not np.delete(s, [4, 5], axis=1).any()
