"""One CLI, one style: every verb takes its model as --model, every bad option value is one `error:` line and
exit 2, --help lists each option's choices and puts the device's verbs apart from the workstation's."""
from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from convert import LAYOUTS, MODES
from edge.cli import app
from edge.cli.app import choices_metavar
from edge.corpora import CORPUS_CHOICES
from edge.settings import RUNTIME_NAMES, TRIM_MODES, VAD_CHOICES
from tests.support.data import ANGRY, PROJECT
from train.config import SPLITS

runner = CliRunner()
DEVICE_INSTALL = PROJECT / ".venv-edge/bin/edge-ser"
EDGE_SER = [str(DEVICE_INSTALL)] if DEVICE_INSTALL.exists() else [sys.executable, "-c", "from edge.cli import main; main()"]


def run_edge_ser(*args: str) -> subprocess.CompletedProcess:
    """The console script as a user runs it (the device install where there is one), output piped."""
    return subprocess.run(EDGE_SER + list(args), capture_output=True, text=True, cwd=PROJECT, timeout=120)


def test_info_and_bench_take_the_model_as_model_like_every_verb():
    info = runner.invoke(app, ["info", "--model", "open"])
    assert info.exit_code == 0, info.output
    assert info.stdout.startswith("model: ") and "open.tflite" in info.stdout.splitlines()[0]
    bench = runner.invoke(app, ["bench", "--model", "open", "--model", "default", "--repeats", "5", "--json"])
    assert bench.exit_code == 0, bench.output
    assert "open.tflite" in bench.stdout and "default.tflite" in bench.stdout


@pytest.mark.parametrize("verb", ["info", "bench", "classify", "listen"])
def test_a_model_given_without_model_is_a_one_line_usage_error(verb: str):
    args = [verb, str(ANGRY), "edge/models/open.tflite"] if verb == "classify" else [verb, "edge/models/open.tflite"]
    if verb == "classify":  # classify takes files: a model among them is a file it cannot read, not a usage error
        return
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: got unexpected extra argument")
    assert "every verb takes its model as --model PATH" in result.stderr


# (arguments, what the one line names): one bad value of every kind, for every verb that has options.
BAD_VALUES = [
    (["classify", "--threads", "0", str(ANGRY)], "--threads: input should be greater than or equal to 1"),
    (["classify", "--threads", "two", str(ANGRY)], "--threads: input should be a valid integer"),
    (["classify", "--runtime", "onnx", str(ANGRY)], "--runtime must be one of ai-edge-litert, tflite-runtime, tensorflow"),
    (["classify", "--vad", "webrtc", str(ANGRY)], f"--vad must be one of {', '.join(VAD_CHOICES)}, got 'webrtc'"),
    (["classify", "--trim", "both", str(ANGRY)], "--trim must be one of clip, window, none, got 'both'"),
    (["classify", "--hop", "0", str(ANGRY)], "--hop must be at least 0.01, got 0"),
    (["classify", "--no-such-option", str(ANGRY)], "no such option: --no-such-option"),
    (["classify"], "missing argument"),
    (["listen", "--hop", "0"], "--hop must be at least 0.01, got 0"),
    (["listen", "--runtime", "onnx"], "--runtime must be one of"),
    (["listen", "--rate", "10"], "--rate: input should be greater than or equal to 4000"),
    (["bench", "--runtime", "onnx"], "--runtime must be one of"),
    (["bench", "--repeats", "1"], "--repeats: input should be greater than or equal to 5"),
    (["info", "--model"], "option '--model' requires an argument"),
    (["devices", "--verbose"], "no such option: --verbose"),
    (["adapt", "x", "--out", "y.tflite", "--vad", "webrtc"], "--vad must be one of"),
    (["train", "x", "--corpus", "timit"], "--corpus must be one of auto, ravdess, tess, cremad, savee, emodb, folder, csv"),
    (["train", "x", "--split", "half"], "--split must be one of speaker, random, none, got 'half'"),
    (["train", "x", "--epochs", "0"], "--epochs: input should be greater than or equal to 1"),
    (["explore", "x", "--corpus", "timit"], "--corpus must be one of"),
    (["download", "timit", "x"], "no download for 'timit': choose one of cremad, ravdess, tess"),
    (["calibrate"], "missing argument"),
    (["crosscorpus", "x"], "missing option '--data'"),
    (["quantize", "--mode", "int4"], "--mode must be one of float32, float16, dynamic, int8, got 'int4'"),
    (["quantize", "--layout", "rolled"], "--layout must be one of fused, unrolled, got 'rolled'"),
    (["compare", "--modes", "int8,int4"], "--modes must be comma-separated, each one of float32, float16, dynamic, int8"),
    (["no-such-verb"], "no such command 'no-such-verb'"),
]


@pytest.mark.parametrize("args, named", BAD_VALUES, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_every_bad_option_value_is_one_error_line_and_exit_2(args: list[str], named: str):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert named in result.stderr, result.stderr
    assert "Usage:" not in result.output and "╭" not in result.output and "Traceback" not in result.output


def test_the_installed_console_script_prints_the_same_one_line():
    """Through the real entry point (the device install where there is one): no boxed panel, exit 2."""
    for args, named in [(["classify", "--threads", "0", str(ANGRY)], "--threads"), (["listen", "--hop", "0"], "--hop"),
                        (["classify", "--runtime", "onnx", str(ANGRY)], "--runtime must be one of")]:
        result = run_edge_ser(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and named in result.stderr
        assert result.stdout == ""


def test_no_arguments_still_prints_the_help():
    result = run_edge_ser()
    assert "Usage: edge-ser" in result.stdout + result.stderr and "error:" not in result.stderr


CHOICES = [("classify", TRIM_MODES), ("classify", VAD_CHOICES), ("classify", RUNTIME_NAMES), ("listen", VAD_CHOICES),
           ("listen", RUNTIME_NAMES), ("bench", RUNTIME_NAMES), ("adapt", VAD_CHOICES), ("train", CORPUS_CHOICES),
           ("train", SPLITS), ("explore", CORPUS_CHOICES), ("quantize", MODES), ("quantize", LAYOUTS)]


@pytest.mark.parametrize("verb, choices", CHOICES, ids=lambda x: x if isinstance(x, str) else "|".join(x))
def test_help_lists_every_choice_from_its_one_home(verb: str, choices: tuple[str, ...]):
    result = run_edge_ser(verb, "--help")
    assert result.returncode == 0, result.stderr
    assert choices_metavar(choices) in result.stdout


def test_compare_help_lists_the_modes():
    assert "float32, float16, dynamic, int8" in run_edge_ser("compare", "--help").stdout


DEVICE_VERBS = ("classify", "listen", "info", "devices", "bench", "adapt")
WORKSTATION_VERBS = ("train", "crosscorpus", "calibrate", "explore", "download", "quantize", "compare")


def test_help_puts_the_device_verbs_and_the_workstation_verbs_in_separate_panels():
    text = run_edge_ser("--help").stdout
    device_at, workstation_at = text.index("On the device"), text.index("On the workstation")
    device, workstation = (text[device_at:workstation_at], text[workstation_at:]) if device_at < workstation_at else \
        (text[device_at:], text[workstation_at:device_at])

    def verbs(panel: str) -> set[str]:
        return {line.strip("│ ").split()[0] for line in panel.splitlines()[1:] if line.startswith("│ ") and line[2:3] != " "}
    assert verbs(device) == set(DEVICE_VERBS)
    assert verbs(workstation) == set(WORKSTATION_VERBS)
