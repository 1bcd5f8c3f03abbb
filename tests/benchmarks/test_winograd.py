"""benchmarks/winograd.py runs end to end on one small shape (a subprocess: it sets thread counts)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "benchmarks", "winograd.py")


def test_one_shape_prints_the_three_sides_and_the_rule():
    out = subprocess.run([sys.executable, SCRIPT, "--only", "2,8,128,128", "--threads", "1", "--repeats", "1",
                          "--warmup", "0", "--settle", "0", "--no-gate"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    row = [line for line in out.stdout.splitlines() if line.startswith("| N2 8x8 128->128")]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert cells[1] == "im2col"                      # 2 * 4 * 4 = 32 tiles: below MIN_TILES
    assert all(float(c) > 0 for c in cells[2:])


def test_a_bad_shape_is_refused():
    out = subprocess.run([sys.executable, SCRIPT, "--only", "2,8,128"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--only takes four numbers N,H,C,O, received '2,8,128'" in out.stderr
