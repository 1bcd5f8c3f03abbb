"""`strided edges`: the edge map of a real photo (matplotlib's grace_hopper.jpg)."""
import numpy as np
from PIL import Image

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
            assert result.size[0] >= 2 * (original.size[0] - 2)


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["edges", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "Traceback" not in err
