"""`edge-ser`, the command line: `app.py` holds the app and the error-to-exit-code mapping; each side's
verbs register themselves on import (see app.py's docstring for the layout)."""
import os

# numpy's OpenBLAS threads spin while they wait for work: on the small matrices of a hop's features they
# cost more CPU than they save (docs/performance.md "What a user pays"). Set before numpy loads; a
# user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from edge.cli import adapt, classify, device, host, listen  # noqa: E402,F401  (each module registers its verbs)
from edge.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
