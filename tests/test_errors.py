"""The house rules: one error family (every error the project raises for a user's mistake is
an EdgeSerError carrying its exit code: library users catch one type, the CLI maps one) and short functions."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import convert
import edge
import train
from edge.errors import EXIT_FAILURE, EXIT_USAGE, EdgeSerError, UsageError


def project_exceptions() -> list[type]:
    found = []
    for package in (edge, train, convert):
        names = [package.__name__] + [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
        for name in names:
            module = importlib.import_module(name)
            found += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                      if issubclass(obj, Exception) and obj.__module__ == name]
    return found


def test_every_project_error_is_an_edge_ser_error():
    errors = project_exceptions()
    assert len(errors) >= 10  # audio, VAD, runtime (2), sources, bundle, features, datasets, download, convert
    assert [e.__name__ for e in errors if not issubclass(e, EdgeSerError)] == []


def test_an_error_carries_its_exit_code():
    from edge.audio import AudioReadError
    from edge.features import FeatureParamsError

    assert AudioReadError("x").exit_code == EXIT_FAILURE and UsageError("x").exit_code == EXIT_USAGE
    assert EdgeSerError("gate", exit_code=3).exit_code == 3
    with pytest.raises(ValueError):  # still a ValueError for callers that caught one before
        raise FeatureParamsError("bad")


def test_no_function_is_over_60_lines():
    """A function reads at a glance: none in the project is longer than 60 lines."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    long = []
    for folder in ("edge", "train", "convert", "benchmarks", "tests"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                    long.append(f"{path.relative_to(root)}:{node.lineno} {node.name}")
    assert long == []
