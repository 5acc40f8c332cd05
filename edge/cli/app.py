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
from typing import Any, Callable, Iterator, Optional, Sequence

import typer
from typer.core import TyperGroup

from edge.errors import EXIT_FAILURE, EdgeSerError, UsageError

# typer's usage errors (a bad value, a missing argument, an unknown option or command) derive from click's
# ClickException, which newer typer releases vendor under a private module: found through the one it exports.
CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
DEVICE_PANEL, WORKSTATION_PANEL = "On the device", "On the workstation (needs the host extras)"


def usage_line(error: Any) -> str:
    """typer's usage error as the project's one line: `--hop must be at least 0.01, got 0 (see ...)`."""
    message = " ".join(str(error.format_message()).split()).rstrip(".")
    param, ctx = getattr(error, "param", None), getattr(error, "ctx", None)
    detail = " ".join(str(getattr(error, "message", "")).split()).rstrip(".")
    if param is not None and detail:  # a bad value: named as the project's own checks name it
        name = next((o for o in getattr(param, "opts", ()) if o.startswith("-")), str(param.name).upper())
        message = f"{name} {detail}" if detail.startswith("must ") else f"{name}: {detail[:1].lower()}{detail[1:]}"
    message = message[:1].lower() + message[1:]
    if ctx is None:
        return message
    if "unexpected extra argument" in message and any("--model" in p.opts for p in ctx.command.params):
        message += "; every verb takes its model as --model PATH"
    return f"{message} (see {ctx.command_path} --help)"


@contextmanager
def one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except CLICK_ERROR as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # `edge-ser` alone: typer prints the help
            raise
        typer.echo(f"error: {usage_line(error)}", err=True)
        raise typer.Exit(int(getattr(error, "exit_code", 2))) from None


class OneLineErrors(TyperGroup):
    """The app's command group: typer's own usage errors print as one `error:` line (exit 2), like every
    other error, instead of a usage block and a boxed panel."""

    def make_context(self, info_name: Optional[str], args: list[str], parent: Any = None, **extra: Any) -> Any:
        with one_line_usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with one_line_usage_errors():
            return super().invoke(ctx)


app = typer.Typer(cls=OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
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


def one_of(choices: Sequence[str]) -> Callable[[Optional[str]], Optional[str]]:
    """A typer callback: the value is one of `choices` (a usage error otherwise)."""
    def check(value: Optional[str]) -> Optional[str]:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"must be one of {', '.join(choices)}, got {value!r}")
        return value
    return check


def each_of(choices: Sequence[str]) -> Callable[[Optional[str]], Optional[str]]:
    """A typer callback: the value is a comma-separated list of `choices` (a usage error otherwise)."""
    def check(value: Optional[str]) -> Optional[str]:
        unknown = [part for part in str_list(value) if part not in choices]
        if value is not None and (unknown or not str_list(value)):
            raise typer.BadParameter(f"must be comma-separated, each one of {', '.join(choices)}, got {value!r}")
        return value
    return check


def choices_metavar(choices: Sequence[str]) -> str:
    """How --help shows an option's choices: `[clip|window|none]`."""
    return "[" + "|".join(choices) + "]"


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
