"""`strided edges`: the edge map of a real photo (matplotlib's grace_hopper.jpg)."""
import subprocess
import sys

import numpy as np
from PIL import Image

from strided import filters
from strided.cli import default_sample_image, main


def test_edges_of_the_bundled_photo(tmp_path, capsys):
    out = tmp_path / "e.png"
    assert main(["edges", "--filter", "sobel", "-o", str(out)]) == 0
    with Image.open(default_sample_image()) as original:
        width, height = original.size
    with Image.open(out) as result:
        assert result.size == (width - 2, height - 2)
        pixels = np.asarray(result)
    assert pixels.std() > 5                      # a real edge map, not a constant image
    assert str(out) in capsys.readouterr().out


def test_side_by_side_is_twice_as_wide(tmp_path):
    out = tmp_path / "s.png"
    assert main(["edges", "--filter", "scharr", "--side-by-side", "-o", str(out)]) == 0
    with Image.open(out) as result:
        with Image.open(default_sample_image()) as original:
            assert result.size == (2 * (original.size[0] - 2), original.size[1] - 2)


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["edges", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "Traceback" not in err


def expected_edges(rgb, name):
    """What the PNG should hold: the edge map stretched linearly to 0..255."""
    e = filters.edge_map(rgb, name).astype(np.float64)
    return np.rint((e - e.min()) / (e.max() - e.min()) * 255)


def read_rgb(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_edges_png_holds_the_normalised_edge_map(tmp_path, capsys):
    out = tmp_path / "v.png"
    assert main(["edges", "--filter", "vertical", "-o", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "vertical" in printed[0] and str(out) in printed[0]
    with Image.open(out) as result:
        assert result.format == "PNG" and result.mode == "L"
        pixels = np.asarray(result).astype(np.float64)
    expected = expected_edges(read_rgb(default_sample_image()), "vertical")
    assert pixels.min() == 0 and pixels.max() == 255
    assert np.abs(pixels - expected).max() <= 1          # float32 vs float64 rounding only
    # the printed size is width x height of what was written
    assert f"{pixels.shape[1]}x{pixels.shape[0]}" in printed[0]


def test_side_by_side_is_the_cropped_grayscale_then_the_edges(tmp_path):
    single, both = tmp_path / "e.png", tmp_path / "s.png"
    assert main(["edges", "--filter", "scharr", "-o", str(single)]) == 0
    assert main(["edges", "--filter", "scharr", "--side-by-side", "-o", str(both)]) == 0
    rgb = read_rgb(default_sample_image())
    H, W = rgb.shape[0] - 2, rgb.shape[1] - 2
    with Image.open(both) as img:
        assert img.size == (2 * W, H) and img.mode == "L"
        pixels = np.asarray(img).astype(np.int64)
    with Image.open(single) as img:
        np.testing.assert_array_equal(pixels[:, W:], np.asarray(img))
    gray = np.rint(filters.to_grayscale(rgb)[1:-1, 1:-1].astype(np.float64) * 255)
    assert np.abs(pixels[:, :W] - gray).max() <= 1


def test_explicit_image_with_a_vertical_step(tmp_path, capsys):
    source = tmp_path / "step.png"
    step = np.zeros((12, 10), np.uint8)
    step[:, :5] = 200
    Image.fromarray(step).save(source)
    out = tmp_path / "out.png"
    assert main(["edges", str(source), "--filter", "horizontal", "-o", str(out)]) == 0
    with Image.open(out) as img:
        assert img.size == (8, 10)
        assert not np.asarray(img).any()                 # no horizontal edge: all zeros
    assert main(["edges", str(source), "--filter", "vertical", "-o", str(out)]) == 0
    with Image.open(out) as img:
        pixels = np.asarray(img)
    assert list(np.flatnonzero(pixels.max(axis=0))) == [3, 4] and pixels[:, [3, 4]].min() == 255
    assert str(source) in capsys.readouterr().out


def test_unreadable_image_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image")
    out = tmp_path / "x.png"
    assert main(["edges", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and "cannot read image" in err and "Traceback" not in err
    assert not out.exists()


def test_unknown_filter_exits_2_naming_it(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["edges", "--filter", "laplace", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'laplace'" in err and "sobel" in err
    assert not out.exists()


def test_missing_output_option_exits_2(capsys):
    assert main(["edges"]) == 2
    assert "-o" in capsys.readouterr().err


def test_missing_file_writes_nothing(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["edges", str(tmp_path / "absent.png"), "-o", str(out)]) == 2
    assert "image file not found" in capsys.readouterr().err
    assert not out.exists()


def test_module_entry_point_returns_the_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "strided.cli", "edges", str(tmp_path / "none.jpg"),
                           "-o", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "none.jpg" in proc.stderr and "Traceback" not in proc.stderr


def test_output_is_stretched_from_min_to_max(tmp_path):
    """A ramp (weak edges everywhere) with one step: the weakest response maps to 0, the step to 255."""
    source = tmp_path / "ramp.png"
    ramp = np.tile(np.arange(0, 20, 2, dtype=np.uint8), (6, 1))   # 10 columns, +2 per column
    ramp[:, 5:] += 100                                             # one strong vertical edge
    Image.fromarray(ramp).save(source)
    out = tmp_path / "out.png"
    assert main(["edges", str(source), "--filter", "vertical", "-o", str(out)]) == 0
    with Image.open(out) as img:
        pixels = np.asarray(img)
    assert pixels.shape == (4, 8)
    np.testing.assert_array_equal(pixels[0], [0, 0, 0, 255, 255, 0, 0, 0])


def test_constant_image_gives_a_black_map(tmp_path):
    source = tmp_path / "flat.png"
    Image.fromarray(np.full((5, 7, 3), 90, np.uint8)).save(source)
    out = tmp_path / "out.png"
    assert main(["edges", str(source), "-o", str(out)]) == 0
    with Image.open(out) as img:
        assert img.size == (5, 3) and not np.asarray(img).any()


def test_cli_offers_the_edge_map_filters():
    """The choices of --filter are strided.filters.EDGE_MAP_FILTERS itself (no hand-synced copy)."""
    from strided.cli import build_parser
    parser = build_parser()
    edges = parser._subparsers._group_actions[0].choices["edges"]
    action = next(a for a in edges._actions if a.dest == "filter")
    assert tuple(action.choices) == filters.EDGE_MAP_FILTERS
