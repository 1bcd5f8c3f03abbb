"""benchmarks/run_all.py: the summary it builds from the scripts' JSON tables, the prose it keeps, the
commands it runs (no benchmark is run here)."""
import argparse
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks")
sys.path.insert(0, BENCHMARKS)
import run_all  # noqa: E402


def test_summary_takes_each_scripts_own_columns_and_skips_rows_without_a_target():
    models = {"header": ["case", "strided ms", "fused ms", "torch ms", "ratio", "fused ratio", "target (fused)"],
              "rows": [["resnet50 N1", "700", "650", "500", "1.40", "1.30", "<= 1.2 (MISSED)"]]}
    assert run_all.summary_rows("models", models) == [["resnet50 N1", "650 ms", "500 ms", "1.30", "<= 1.2 (MISSED)"]]
    face = {"header": ["case", "strided ms", "torch ms", "ratio", "target", "check"],
            "rows": [["landmark net", "9", "8", "1.12", "", "1e-6"], ["recognition net", "40", "50", "0.80",
                                                                       "<= 1.2 (met)", "1e-6"]]}
    assert run_all.summary_rows("face_pipeline", face) == [["recognition net", "40 ms", "50 ms", "0.80", "<= 1.2 (met)"]]
    memory = {"header": ["case", "strided MiB", "torch MiB", "ratio", "target"],
              "rows": [["resnet50 step", "1998.0", "1670.0", "1.20", "<= 1.3 (met)"]]}
    assert run_all.summary_rows("memory", memory)[0][1:3] == ["1998.0 MiB", "1670.0 MiB"]


def test_the_prose_above_the_marker_is_kept_and_everything_below_dropped(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Title\n\nhand-written analysis\n\n" + run_all.MARKER + "\n\n## old table\n| a |\n")
    kept = run_all.prose_above_marker(str(path))
    assert "hand-written analysis" in kept and "old table" not in kept and run_all.MARKER not in kept
    assert run_all.prose_above_marker(str(tmp_path / "missing.md")).startswith("# Benchmarks")


def test_commands_pass_threads_json_and_quick_settings_but_memory_keeps_its_own():
    args = argparse.Namespace(threads=1, quick=True, repeats=None, no_gate=True)
    ops = run_all.script_command("ops", args, "/tmp/ops.json")
    assert ops[ops.index("--threads") + 1] == "1" and ops[ops.index("--json") + 1] == "/tmp/ops.json"
    assert ops[ops.index("--repeats") + 1] == "2" and "--no-gate" in ops
    style = run_all.script_command("style_step", args, "/tmp/s.json")
    assert style[style.index("--lbfgs-steps") + 1] == "0"
    memory = run_all.script_command("memory", args, "/tmp/m.json")
    assert memory[memory.index("--repeats") + 1] == "1" and "--no-gate" not in memory   # 3 without --quick


def test_only_rejects_unknown_names():
    with pytest.raises(SystemExit):
        run_all.main(["--only", "ops,nonsense"])
