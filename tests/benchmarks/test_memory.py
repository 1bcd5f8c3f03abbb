"""benchmarks/memory.py: the peak-growth measurement and the two-process comparison, on tiny work."""
import mmap
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks")
sys.path.insert(0, BENCHMARKS)
import memory  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
MIB = 1 << 20


def test_peak_growth_sees_memory_touched_during_the_step_and_released_before_its_end():
    """64 MiB mapped, written and unmapped inside the step: the peak rises by about 64 MiB
    although the RSS is back down when the step returns (anonymous mmap: no allocator cache)."""
    def step():
        block = mmap.mmap(-1, 64 * MIB)
        for offset in range(0, 64 * MIB, 4096):   # touch every page
            block[offset] = 1
        block.close()

    result = memory.peak_growth(step, steps=2)
    assert result["peak_reset"]
    assert 60 <= result["growth_mib"][0] <= 72, result
    assert result["growth_mib"][1] >= result["growth_mib"][0] - 1e-9   # a peak over more steps never drops


def test_peak_growth_of_a_step_that_allocates_nothing_is_small():
    result = memory.peak_growth(lambda: None)
    assert result["growth_mib"][0] < 4, result


def test_peak_growth_rejects_zero_steps():
    with pytest.raises(ValueError, match="steps=0"):
        memory.peak_growth(lambda: None, steps=0)


def test_main_compares_both_sides_in_their_own_processes(tmp_path, capsys):
    """The whole script on a tiny case (mobilenet_v2, 2 images of 32x32): both children run, the
    table and the markdown file carry the two numbers, their ratio and the target."""
    pytest.importorskip("torch")
    out = tmp_path / "memory.md"
    assert memory.main(["--model", "mobilenet_v2", "--batch", "2", "--size", "32", "--num-classes", "10",
                        "--markdown", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[strided run 1]" in printed and "[torch run 1]" in printed
    row = next(line for line in out.read_text().splitlines() if line.startswith("| mobilenet_v2 training step"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    strided_mib, torch_mib, ratio = float(cells[1]), float(cells[2]), float(cells[3])
    assert strided_mib > 0 and torch_mib > 0
    assert ratio == pytest.approx(strided_mib / torch_mib, abs=0.02)
    assert "<= 1.3" in cells[4]
