"""One CLI, one style: every verb takes its model as --model, every bad option value is one `error:` line and
exit 2, --help lists each option's choices and puts the device's verbs apart from the workstation's."""
from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from convert import MODES
from edge.cli import app
from edge.cli.app import choices_metavar
from edge.corpora import CORPUS_CHOICES
from edge.settings import LAYOUTS, RUNTIME_NAMES, TRIM_MODES, VAD_CHOICES
from tests.support.checks import json_lines
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
    (["train", "x", "--epochs", "-1"], "--epochs: input should be greater than or equal to 0"),
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
    assert "Usage:" in result.stdout + result.stderr and "COMMAND" in result.stdout + result.stderr
    assert "error:" not in result.stderr


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


def test_a_delegate_that_falls_back_says_so_in_one_line(tmp_path):
    result = runner.invoke(app, ["classify", "--delegate", str(tmp_path / "libmissing_delegate.so"), str(ANGRY)])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: delegate ") and "could not be loaded" in lines[0]
    assert lines[0].endswith("running on CPU (XNNPACK) (ai-edge-litert)")


def test_no_table_header_when_no_file_could_be_read(tmp_path):
    unreadable = [tmp_path / "notes.wav", tmp_path / "03-01-05-01-01-01-01.wav"]
    for path in unreadable:
        path.write_text("not audio\n")
    result = runner.invoke(app, ["classify", "--vad", "none", *map(str, unreadable)])
    assert result.exit_code == 1
    assert result.stdout == "" and "2 of 2 files could not be classified" in result.stderr
    one = runner.invoke(app, ["classify", "--vad", "none", str(unreadable[0])])
    assert one.stdout == "" and one.stderr.splitlines()[-1] == "1 of 1 file could not be classified"


def test_correct_counts_only_files_whose_label_the_model_can_answer():
    """The open model has no calm and no surprise: the demo's calm and surprised clips are not counted."""
    demo = sorted(str(p) for p in (PROJECT / "assets/demo").glob("*.flac"))
    answers = json_lines(runner.invoke(app, ["classify", "--model", "open", "--vad", "none", "--json", *demo]).stdout)
    scored = [a for a in answers if a["true_label"] not in ("calm", "surprise")]
    assert len(answers) == 8 and len(scored) == 6
    correct = sum(a["label"] == a["true_label"] for a in scored)
    text = runner.invoke(app, ["classify", "--model", "open", "--vad", "none", *demo]).stdout.splitlines()
    assert text[-2] == f"correct: {correct} of 6 files whose names carry a label the model answers"
    assert text[-1] == "not counted: 2 files labelled calm, surprise, which the model does not answer"
    subset = runner.invoke(app, ["classify", "--labels", "angry,sad", "--vad", "none", *demo]).stdout.splitlines()
    assert subset[-2].startswith("correct: ") and subset[-2].split(" of ")[1].startswith("2 files")


def test_counts_take_the_number_of_their_noun(tmp_path):
    import soundfile

    from edge.audio import read_audio
    from edge.plural import counted

    assert [counted(n, "window") for n in (0, 1, 2)] == ["0 windows", "1 window", "2 windows"]
    clip = tmp_path / "short.wav"
    soundfile.write(str(clip), read_audio(ANGRY, 16000)[:int(2.2 * 16000)], 16000)
    result = runner.invoke(app, ["listen", "--source", str(clip), "--vad", "none"])
    assert result.exit_code == 0, result.output
    assert "s of audio, 1 window: " in result.stderr.splitlines()[-1]


def test_rate_with_source_is_a_warning(tmp_path):
    result = runner.invoke(app, ["listen", "--source", str(ANGRY), "--rate", "8000", "--vad", "none", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == ("warning: --rate is for a microphone, ignored with --source (the file is "
                                             "read at its own rate, resampled to the model's)")
    assert "at 16000 Hz" in result.stderr and json_lines(result.stdout)


def test_labels_take_synonyms():
    canonical = runner.invoke(app, ["classify", "--json", "--vad", "none", "--labels", "fear,happy,sad", str(ANGRY)])
    synonyms = runner.invoke(app, ["classify", "--json", "--vad", "none", "--labels", "fearful, Happiness,sad", str(ANGRY)])
    assert canonical.exit_code == synonyms.exit_code == 0, synonyms.output
    assert json_lines(synonyms.stdout) == json_lines(canonical.stdout)
    assert set(json_lines(synonyms.stdout)[0]["probabilities"]) == {"fear", "happy", "sad"}
    unknown = runner.invoke(app, ["classify", "--labels", "fearful,bliss", str(ANGRY)])
    assert unknown.exit_code == 2 and "no label 'bliss'" in unknown.stderr


def test_every_json_output_rounds_confidences_by_one_rule(tmp_path):
    from edge.answers import JSON_DECIMALS

    def numbers(record: dict) -> list[float]:
        return [record["confidence"], *record["probabilities"].values()]

    classified = json_lines(runner.invoke(app, ["classify", "--json", "--windows", str(ANGRY)]).stdout)[0]
    windows = [w for w in classified["windows"] if w["probabilities"]]
    listened = json_lines(runner.invoke(app, ["listen", "--json", "--source", str(ANGRY), "--save-dir",
                                              str(tmp_path / "saved")]).stdout)
    saved = json_lines((tmp_path / "saved" / "predictions.jsonl").read_text())
    records = [classified, *windows, *listened, *saved]
    assert windows and listened and saved
    assert all(x == round(x, JSON_DECIMALS) for record in records for x in numbers(record))
    for record in [classified, *windows]:  # the reported confidence is the top probability, to the digit
        assert record["confidence"] == max(record["probabilities"].values())
