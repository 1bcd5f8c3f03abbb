"""`import strided as sd`: sd.io, sd.models, sd.data, sd.train are imported on first use (as torch.onnx)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("name, attribute", [("io", "save"), ("models", "create"), ("data", "load"),
                                             ("train", "Trainer")])
def test_submodule_is_imported_only_when_touched(name, attribute):
    out = _run(f"""
import sys
import strided as sd
before = 'strided.{name}' in sys.modules
value = sd.{name}.{attribute}
print(before, 'strided.{name}' in sys.modules, sd.{name} is sys.modules['strided.{name}'], callable(value))
""")
    assert out == "False True True True"


def test_unknown_attribute_is_an_attribute_error():
    import strided
    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        strided.nonsense
    assert {"io", "models", "data", "train"} <= set(dir(strided))
