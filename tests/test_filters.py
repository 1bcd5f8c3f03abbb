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


COURSE_6x6 = np.array([[3, 0, 1, 2, 7, 4],
                       [1, 5, 8, 9, 3, 1],
                       [2, 7, 2, 5, 1, 3],
                       [0, 1, 3, 1, 7, 8],
                       [4, 2, 1, 6, 2, 8],
                       [2, 4, 5, 2, 3, 9]], dtype=np.float64)
COURSE_VERTICAL = np.array([[-5, -4, 0, 8],
                            [-10, -2, 2, 3],
                            [0, -2, -4, -7],
                            [-3, -2, -3, -16]], dtype=np.float64)


def plain_cross_correlation(image, kernel):
    """Two loops over output pixels: the definition, with no kernel flip."""
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = np.sum(image[y:y + kh, x:x + kw] * kernel)
    return out


def test_horizontal_kernels_are_exact_transposes():
    np.testing.assert_array_equal(filters.horizontal, [[1, 1, 1], [0, 0, 0], [-1, -1, -1]])
    np.testing.assert_array_equal(filters.sobel_horizontal, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
    np.testing.assert_array_equal(filters.scharr_horizontal, [[3, 10, 3], [0, 0, 0], [-3, -10, -3]])
    for v, h in [(filters.vertical, filters.horizontal), (filters.sobel, filters.sobel_horizontal),
                 (filters.scharr, filters.scharr_horizontal)]:
        np.testing.assert_array_equal(h, v.T)
        assert h.dtype == np.float32


def test_filters_dict_and_get():
    assert set(filters.FILTERS) == {"vertical", "horizontal", "sobel", "sobel_horizontal",
                                    "scharr", "scharr_horizontal"}
    for name, kernel in filters.FILTERS.items():
        assert filters.get(name) is kernel
        assert getattr(filters, name) is kernel
    with pytest.raises(ValueError) as info:
        filters.get("nope")
    message = str(info.value)
    assert "'nope'" in message
    assert all(name in message for name in filters.FILTERS)


def test_kernels_are_read_only():
    with pytest.raises(ValueError):
        filters.sobel[0, 0] = 5.0
    assert filters.sobel[0, 0] == 1.0


def test_as_conv_weight_replicates_and_is_a_float32_copy():
    w = filters.as_conv_weight(filters.vertical)
    assert w.shape == (3, 3, 1, 1) and w.dtype == np.float32
    w[0, 0, 0, 0] = 9.0                                   # a copy: the kernel is untouched
    assert filters.vertical[0, 0] == 1.0
    np.testing.assert_array_equal(filters.as_conv_weight("scharr", channels=2)[:, :, 1, 0], filters.scharr)
    with pytest.raises(ValueError, match="received channels=0"):
        filters.as_conv_weight(filters.sobel, channels=0)
    with pytest.raises(ValueError, match=r"received shape \(9,\)"):
        filters.as_conv_weight(np.zeros(9))


def test_course_example_by_cross_correlation_edge_map_and_plain_loops():
    np.testing.assert_array_equal(filters.cross_correlate(COURSE_6x6, filters.vertical), COURSE_VERTICAL)
    np.testing.assert_array_equal(plain_cross_correlation(COURSE_6x6, filters.vertical.astype(float)),
                                  COURSE_VERTICAL)
    np.testing.assert_array_equal(filters.edge_map(COURSE_6x6, "vertical"), np.abs(COURSE_VERTICAL))
    edge = np.tile(np.array([10, 10, 10, 0, 0, 0], np.float64), (6, 1))
    np.testing.assert_array_equal(filters.cross_correlate(edge, filters.vertical), [[0, 30, 30, 0]] * 4)


@pytest.mark.parametrize("name", ["vertical", "horizontal", "sobel", "scharr", "sobel_horizontal"])
def test_edge_map_matches_the_plain_definition(name):
    image = np.random.default_rng(3).random((9, 11))
    k = filters.get(name).astype(np.float64)
    gx = plain_cross_correlation(image, k)
    expected = np.hypot(gx, plain_cross_correlation(image, k.T)) if name in ("sobel", "scharr") else np.abs(gx)
    result = filters.edge_map(image, name)
    assert result.shape == (7, 9) and result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)


def test_edge_map_of_a_horizontal_step_and_scharr_strength():
    image = np.zeros((10, 8))
    image[:5] = 1.0                                      # bright top, dark bottom
    assert not filters.edge_map(image, "vertical").any()
    h = filters.edge_map(image, "horizontal")
    assert list(np.flatnonzero(h.max(axis=1))) == [3, 4] and np.all(h[[3, 4]] == 3.0)
    s = filters.edge_map(image, "scharr")
    assert np.allclose(s[[3, 4]], 16.0) and not np.delete(s, [3, 4], axis=0).any()


def test_colour_images_use_itu_601_luma():
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[:, :3, 0] = 255                                  # red left half, black right half
    v = filters.edge_map(rgb, "vertical")
    assert v.dtype == np.float32
    np.testing.assert_allclose(v[:, [1, 2]], 3 * 0.299, rtol=1e-6)
    assert not v[:, [0, 3]].any()
    np.testing.assert_allclose(filters.to_grayscale(np.array([[[0.0, 1.0, 0.0]]])), [[0.587]])
    np.testing.assert_allclose(filters.to_grayscale(np.array([[[0.0, 0.0, 1.0]]])), [[0.114]])
    # uint8 is scaled to [0, 1]: the same picture as floats gives the same map
    np.testing.assert_allclose(filters.edge_map(rgb, "sobel"),
                               filters.edge_map(rgb.astype(np.float64) / 255, "sobel"), rtol=1e-5, atol=1e-6)
    # an alpha channel is ignored, a single channel is squeezed
    rgba = np.concatenate([rgb, np.full((6, 6, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(filters.edge_map(rgba, "sobel"), filters.edge_map(rgb, "sobel"))
    gray = np.random.default_rng(0).random((5, 5))
    np.testing.assert_array_equal(filters.edge_map(gray[:, :, None], "sobel"), filters.edge_map(gray, "sobel"))


@pytest.mark.parametrize("image, message", [
    (np.zeros((4, 4, 5)), r"received shape \(4, 4, 5\)"),
    (np.zeros((2, 4, 4, 3)), r"received shape \(2, 4, 4, 3\)"),
    (np.zeros((2, 9)), r"received shape \(2, 9\)"),
    (np.zeros((4, 4), np.int64), "received dtype int64"),
])
def test_edge_map_bad_images_name_the_value(image, message):
    with pytest.raises(ValueError, match=message):
        filters.edge_map(image, "sobel")


def test_edge_map_unknown_filter():
    with pytest.raises(ValueError, match="'prewitt'"):
        filters.edge_map(np.zeros((5, 5)), "prewitt")
