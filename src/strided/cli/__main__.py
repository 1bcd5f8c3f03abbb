"""``python -m strided.cli ...``: the same as the ``strided`` command."""
import sys

from .main import main

sys.exit(main())
