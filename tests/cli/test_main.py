"""`strided.cli.main`: one place for errors, and the documented exit codes (0 ok, 1 error, 2 usage, 130
interrupted), in-process and as a real process (Ctrl-C)."""
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from strided.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main
from strided import filters
from strided.errors import StridedError

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path)
    return path


def test_exit_code_values_are_the_documented_ones():
    assert (EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED) == (0, 1, 2, 130)


def test_help_documents_the_exit_codes(capsys):
    assert main(["--help"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "exit codes: 0 ok, 1 error" in out and "2 usage" in out and "130 interrupted" in out


def test_usage_error_is_2(capsys):
    assert main(["edges", "--no-such-option", "-o", "x.png"]) == EXIT_USAGE
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_a_library_error_is_one_line_and_exit_1(monkeypatch, image, tmp_path, capsys):
    def broken(*args, **kwargs):
        raise StridedError("the edge map could not be made: received something odd")
    monkeypatch.setattr(filters, "edge_map", broken)
    assert main(["edges", str(image), "-o", str(tmp_path / "e.png")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "strided: error: the edge map could not be made: received something odd\n"


def test_an_os_error_names_the_file_and_is_exit_1(image, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    target = blocker / "e.png"                     # its parent is a file: cannot be created
    assert main(["edges", str(image), "-o", str(target)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("strided: error: ") and "afile" in err and "Traceback" not in err


def test_disk_full_while_writing_names_the_file(monkeypatch, image, tmp_path, capsys):
    from PIL import Image as PILImage

    def full(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(PILImage.Image, "save", full)
    out = tmp_path / "edges.png"
    assert main(["edges", str(image), "-o", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("strided: error: No space left on device") and str(out) in err
    assert "disk is full" in err and not out.exists()
    assert not list(tmp_path.glob(".edges.png*"))      # the temporary file is gone too


def test_ctrl_c_in_a_command_is_130_without_a_traceback(monkeypatch, image, tmp_path, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(filters, "edge_map", interrupted)
    assert main(["edges", str(image), "-o", str(tmp_path / "e.png")]) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert captured.err == "strided: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN     # called from Python: nothing changed


CHILD = textwrap.dedent("""
    import atexit, sys, time
    sys.argv = ["strided", "edges", "-o", {out!r}]
    import strided.cli.edges as edges

    def slow(args):
        try:
            print("running", flush=True)
            time.sleep(60)                 # the first Ctrl-C lands here
        finally:
            print("cleaning up", flush=True)
            time.sleep(1.0)                # ... a second one while cleaning up

    edges.cmd_edges = slow

    def shutting_down():
        print("shutting down", flush=True)
        time.sleep(1.5)                    # ... and a third one while Python exits

    atexit.register(shutting_down)
    from strided.cli.main import main
    print("ready", flush=True)
    sys.exit(main())
""")


def _wait_for(proc, text, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"child never printed {text!r}; stderr: {proc.stderr.read()}")


def test_repeated_ctrl_c_gives_one_line_and_no_noise(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(out=str(tmp_path / "x.png"))], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(proc, "ready")
        _wait_for(proc, "running")             # the command has started (a fixed sleep raced the parser)
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _wait_for(proc, "cleaning up")
        proc.send_signal(signal.SIGINT)        # during the cleanup: still one clean exit
        _wait_for(proc, "shutting down")
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)        # during interpreter shutdown: ignored, no noise
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip() == "strided: interrupted"


def test_module_entry_point_and_console_script_target():
    proc = subprocess.run([sys.executable, "-m", "strided.cli", "--help"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert proc.returncode == 0 and "exit codes" in proc.stdout
    import tomllib
    pyproject = tomllib.loads((Path(SRC).parent / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["strided"] == "strided.cli.main:main"


def test_no_cli_code_outside_the_cli_package():
    root = Path(SRC) / "strided"
    assert not (root / "cli.py").exists() and not (root / "cli_train.py").exists()
    assert not (root / "data" / "cli.py").exists() and not (root / "viz" / "cli.py").exists()
    for module in (root / "cli").glob("*.py"):
        if module.name in ("main.py", "common.py", "errors.py", "__init__.py", "__main__.py"):
            continue
        text = module.read_text()
        imports = [line.split()[1] for line in text.splitlines()
                   if line.strip().startswith("from .") and not line.strip().startswith("from ..")]
        assert set(imports) <= {".common", ".errors"}, (module.name, imports)
    # a command group split into a package (cli/train/): its modules import each other (from .x), and
    # from the rest of the cli only common and errors (from ..common, from ..errors)
    packages = [p for p in (root / "cli").iterdir() if (p / "__init__.py").is_file()]
    assert packages, "expected the train command group as a package, cli/train/"
    for module in (m for package in packages for m in package.rglob("*.py")):
        lines = [line.strip() for line in module.read_text().splitlines()]
        imports = [line.split()[1] for line in lines
                   if line.startswith("from ..") and not line.startswith("from ...")]
        assert set(imports) <= {"..common", "..errors"}, (str(module.relative_to(root)), imports)
