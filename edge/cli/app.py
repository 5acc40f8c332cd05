"""The `edge-ser` app: the typer application, the one place errors become exit codes, and the checks
every option shares. The verbs live beside it, by side:

- `classify.py`, `listen.py`, `device.py` (info, devices, bench): the device's verbs, no TensorFlow;
- `host.py` (train, crosscorpus, calibrate, explore, download, quantize, compare): the workstation's, the
  only module under `edge/` that imports `train` or `convert` (lazily, inside each verb).

Exit codes (docs/design.md contract 6, edge.errors): 0 ok, 1 failure, 2 usage error, 3 drift gate failed.
"""
from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import typer

from edge.errors import EXIT_FAILURE, EdgeSerError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Speech emotion recognition on edge devices.")

HELP_WIDTH_PIPED = 200  # piped --help: wide enough that no option's help is cut with "…" (main)
HOST_EXTRA_HINT = ("install the host extras: pip install '.[train,cpu]' ('.[train,gpu]' with an NVIDIA GPU), "
                   "or run `make train`, which does it")
HOST_MODULES = ("tensorflow", "keras", "tf_keras", "librosa", "sklearn", "matplotlib", "scipy", "python_speech_features")


def in_range(low: float | None = None, high: float | None = None, *, above: bool = False,
             below: bool = False) -> Callable[[Optional[float]], Optional[float]]:
    """A typer callback: the value is a finite number in [low, high] (`above`/`below`: the bound itself is
    excluded). Every numeric option uses one, so nan, inf and out-of-range values are usage errors (exit 2)."""
    def check(value: Optional[float]) -> Optional[float]:
        if value is None:
            return value
        if not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number, got {value}")
        if low is not None and (value < low or (above and value == low)):
            raise typer.BadParameter(f"must be {'above' if above else 'at least'} {low:g}, got {value:g}")
        if high is not None and (value > high or (below and value == high)):
            raise typer.BadParameter(f"must be {'below' if below else 'at most'} {high:g}, got {value:g}")
        return value
    return check


POSITIVE = in_range(0, above=True)
FRACTION = in_range(0, 1)


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one clear line and a non-zero exit, not a traceback."""
    try:
        yield
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in HOST_MODULES:
            fail(f"this command needs {error.name}, which is not installed; {HOST_EXTRA_HINT}")
        raise
    except EdgeSerError as error:
        fail(str(error), error.exit_code)
    except FileNotFoundError as error:
        fail(str(error))


@app.callback()
def _root() -> None:
    """Speech emotion recognition on edge devices."""


def str_list(text: Optional[str]) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else ()


def int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise UsageError(f"{option} needs positive integers, got {text!r}")
    return values


def main() -> None:
    """Console-script entry point (typer's usage errors already exit with 2)."""
    import os

    if not sys.stdout.isatty():  # piped help: rich would cut it at 80 columns, mid-word
        os.environ.setdefault("TERMINAL_WIDTH", str(HELP_WIDTH_PIPED))
    app()
