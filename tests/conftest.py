"""Fixtures shared by tests in several folders."""
import pytest

import faceapi_helpers


@pytest.fixture(scope="session")
def model_dir():
    """The folder of face-api's weights (``.../@vladmandic/face-api/model``); the test is skipped
    when they are not installed (``strided models fetch face-api``, or ``STRIDED_FACEAPI_DIR``)."""
    folder = faceapi_helpers.model_dir_or_none()
    if folder is None:
        pytest.skip(faceapi_helpers.SKIP_REASON)
    return folder
