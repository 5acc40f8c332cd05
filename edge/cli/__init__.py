"""`edge-ser`, the command line: `app.py` holds the app and the error-to-exit-code mapping; each side's
verbs register themselves on import (see app.py's docstring for the layout)."""
from edge.cli import adapt, classify, device, host, listen  # noqa: F401  (each module registers its verbs)
from edge.cli.app import app, main

__all__ = ["app", "main"]
