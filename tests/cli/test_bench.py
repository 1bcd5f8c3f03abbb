"""`strided bench`: the machine, the BLAS and a side-by-side table, on tiny shapes."""
import json

import pytest

from strided.cli import main
from strided.cli.bench import CASES, machine_info


def test_bench_tiny_json_compares_with_torch(capsys):
    pytest.importorskip("torch")
    assert main(["bench", "--tiny", "--repeats", "1", "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["machine"]["logical_cores"] >= 1 and report["machine"]["cpu"]
    assert report["machine"]["torch"] and report["machine"]["threads"] == 1
    rows = {r["case"]: r for r in report["rows"]}
    assert list(rows) == list(CASES)
    for name, row in rows.items():
        assert row["strided_ms"] > 0
        if name.startswith("mobilenet"):
            assert row["torch_ms"] is None            # strided alone: no twin in the command
        else:                                          # both sides computed the same thing
            assert row["torch_ms"] > 0 and row["ratio"] == pytest.approx(row["strided_ms"] / row["torch_ms"])
            assert row["max_rel_err"] < 1e-4, name


def test_bench_text_without_torch(capsys):
    assert main(["bench", "--tiny", "--repeats", "1", "--no-torch", "--only", "maxpool"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "BLAS:" in out and "torch not installed" in out and "load average" in out
    assert "maxpool2x2" in out and "conv3x3" not in out


def test_blas_is_reported():
    blas = machine_info()["blas"]
    assert blas and all(b["internal_api"] for b in blas)   # NumPy's BLAS, seen by threadpoolctl


def test_bench_bad_arguments(capsys):
    assert main(["bench", "--only", "nothing-like-this"]) == 2          # a usage error
    assert "nothing-like-this" in capsys.readouterr().err
    assert main(["bench", "--repeats", "0"]) == 2
