"""One tiny trained run (LeNet-5, 1 epoch on 500 Fashion-MNIST images) shared by the CLI tests."""
import pytest

from strided.data.sources import FASHION_DIR

HAS_FASHION = any((FASHION_DIR / f"train-images-idx3-ubyte{suffix}").exists() for suffix in ("", ".gz"))


@pytest.fixture(scope="session")
def lenet_run(tmp_path_factory):
    if not HAS_FASHION:
        pytest.skip("Fashion-MNIST not installed (strided data fetch fashion-mnist)")
    from strided.cli import main
    run = tmp_path_factory.mktemp("viz") / "run"
    code = main(["train", "--limit", "500", "--epochs", "1", "--no-progress", "--out", str(run)])
    assert code == 0
    return run
