"""The converter on a real tiny training run: op list, embedded bundle, drift gate, bad input."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.cli import app

pytestmark = pytest.mark.host  # needs the host side (train/convert, TensorFlow)

MODES = ("float32", "float16", "dynamic", "int8")


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def compared(tiny_run):
    from convert.compare import compare

    _, runs = tiny_run
    return compare(runs / "tiny"), runs / "tiny"


def test_every_mode_is_one_fused_lstm_without_flex_ops(compared):
    from convert.tflite import operator_names

    _, run = compared
    for mode in MODES:
        ops = operator_names((run / f"model-{mode}.tflite").read_bytes())
        assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1, (mode, ops)
        assert not [op for op in ops if op.startswith("Flex") or op == "WHILE"], (mode, ops)


def test_compare_json_has_the_promised_fields(compared):
    report, run = compared
    saved = json.loads((run / "compare.json").read_text())
    for name in ("float", *MODES):
        for key in ("accuracy", "unweighted_accuracy", "agreement", "size_bytes", "latency_ms"):
            assert key in saved[name], (name, key)
    assert saved["float32"]["agreement"] == 1.0  # cell_clip off: float32 TFLite == Keras
    assert saved["float32"]["max_abs_prob_diff"] < 1e-4
    assert saved["dynamic"]["size_bytes"] < saved["float32"]["size_bytes"]
    assert (run / "compare.md").is_file() and (run / "compare.png").is_file()
    assert saved["evaluated_on"].startswith("12 test utterances (speaker-independent")
    assert all(saved[m]["loadable_by"]["ai-edge-litert"] == "ok" for m in MODES)


def test_tflite_runtime_214_loads_what_the_report_says(compared):
    report, _ = compared
    answers = {m: report.modes[m].loadable_by["tflite-runtime"] for m in MODES}
    if any(a.startswith("not tested") or a.startswith("not installed") for a in answers.values()):
        pytest.skip(f"no tflite-runtime environment: {answers['float32']}")
    assert answers["float32"] == answers["float16"] == answers["int8"] == "ok"
    assert answers["dynamic"].startswith("fails") and "FULLY_CONNECTED" in answers["dynamic"]


def test_info_reads_the_bundle_without_tensorflow(compared):
    _, run = compared
    code = ("import sys\nfor m in ['tensorflow','keras','tf_keras','librosa']: sys.modules[m] = None\n"
            "from typer.testing import CliRunner\nfrom edge.cli import app\n"
            f"r = CliRunner().invoke(app, ['info', '--model', {str(run / 'model-int8.tflite')!r}])\n"
            "print(r.exit_code); print(r.output)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.startswith("0\n"), result.stdout + result.stderr
    assert "labels: neutral, happy, sad, angry" in result.stdout
    assert "n_mfcc=" in result.stdout and "licence CC BY-NC-SA 4.0" in result.stdout


def test_edge_refuses_features_it_cannot_reproduce(compared, tmp_path):
    from convert.tflite import finish_flatbuffer
    from edge.bundle import ModelBundleError
    from edge.runtime import EdgeModel

    _, run = compared
    bundle = json.loads((run / "bundle.json").read_text())
    bundle["feature_params"]["window"] = "hamming"
    odd = tmp_path / "odd.tflite"
    odd.write_bytes(finish_flatbuffer((run / "model-float32.tflite").read_bytes(), bundle))
    with pytest.raises(ModelBundleError, match="cannot reproduce the model's features: .*window 'hamming'"):
        EdgeModel(odd)
    result = run_cli("info", "--model", odd)
    assert result.exit_code == 1 and "cannot reproduce" in result.output


SHIFT = 1e4


def damage(run: Path, target: Path) -> Path:
    """A model whose float output is unchanged but whose int8 activations lose all resolution: channel 0
    of the last convolution is shifted by +1e4 (BN beta) and the LSTM bias subtracts it again, so float
    arithmetic cancels it while int8 (one scale per activation tensor) cannot represent the rest."""
    import keras

    shutil.copytree(run, target)
    model = keras.saving.load_model(target / "model.keras", compile=False)
    bn = [layer for layer in model.layers if layer.name.endswith("_bn")][-1]  # the front-end's last
    gamma, beta, mean, variance = bn.get_weights()
    beta[0] += SHIFT
    bn.set_weights([gamma, beta, mean, variance])
    lstm = model.get_layer("lstm_0")
    kernel, recurrent, bias = lstm.get_weights()
    channel_0 = slice(0, kernel.shape[0], gamma.size)  # the LSTM's inputs are (bands x) channels, channels inner
    lstm.set_weights([kernel, recurrent, bias - SHIFT * kernel[channel_0].sum(axis=0)])
    model.save(target / "model.keras")
    return target


def test_gate_fails_on_a_damaged_model_and_writes_nothing(compared, tmp_path):
    _, run = compared
    damaged = damage(run, tmp_path / "damaged")
    (damaged / "model-int8.tflite").unlink()
    result = run_cli("quantize", damaged, "--mode", "int8", "--max-drift", "0")
    assert result.exit_code == 3, result.output
    assert "gate failed, nothing written" in result.output
    assert not (damaged / "model-int8.tflite").exists()
    assert not list(damaged.glob(".*.tmp"))
    forced = run_cli("quantize", damaged, "--mode", "int8", "--max-drift", "0", "--force")
    assert forced.exit_code == 3 and (damaged / "model-int8.tflite").exists()


def test_gate_passes_and_writes_the_default_mode(compared, tmp_path):
    _, run = compared
    out = tmp_path / "m.tflite"
    result = run_cli("quantize", run, "--output", out, "--max-drift", "100")
    assert result.exit_code == 0, result.output
    assert "dynamic: accuracy" in result.output and out.is_file()


@pytest.mark.parametrize("problem, code, message", [
    ("missing run", 1, "does not exist"),
    ("no bundle", 1, "has no bundle.json"),
    ("corrupt model", 1, "cannot load"),
    ("bad mode", 2, "--mode must be one of float32, float16, dynamic, int8, got 'int4'"),
    ("bad layout", 2, "--layout must be one of fused, unrolled, got 'rolled'"),
])
def test_bad_input_is_one_clear_error_and_nothing_written(compared, tmp_path, problem, code, message):
    _, run = compared
    broken = tmp_path / "run"
    if problem != "missing run":
        shutil.copytree(run, broken)
        for old in broken.glob("model-*.tflite"):
            old.unlink()
    if problem == "no bundle":
        (broken / "bundle.json").unlink()
    if problem == "corrupt model":
        (broken / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    layout = "rolled" if problem == "bad layout" else "fused"
    result = run_cli("quantize", broken, "--mode", "int4" if problem == "bad mode" else "int8", "--layout", layout)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not list(broken.glob("model-*.tflite")) if broken.exists() else True


def test_unrolled_layout_has_no_fused_lstm_and_the_same_outputs(compared):
    """`--layout unrolled` (for LiteRT's GPU accelerator): plain ops, no state tensors, same network."""
    import numpy as np

    from convert.tflite import operator_names
    from edge.runtime import EdgeModel

    _, run = compared
    result = run_cli("quantize", run, "--mode", "float32", "--layout", "unrolled", "--max-drift", "100")
    assert result.exit_code == 0, result.output
    unrolled_path = run / "model-float32-unrolled.tflite"
    assert "float32-unrolled: accuracy" in result.output and unrolled_path.is_file()
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in operator_names(unrolled_path.read_bytes())
    unrolled, fused = EdgeModel(unrolled_path), EdgeModel(run / "model-float32.tflite")
    assert unrolled.bundle.conversion.layout == "unrolled"
    windows = np.random.default_rng(0).normal(size=(4, *unrolled._input["shape"][1:])).astype(np.float32)
    assert np.abs(unrolled.predict_batch(windows) - fused.predict_batch(windows)).max() < 1e-4
    assert "LSTM unrolled" in run_cli("info", "--model", unrolled_path).output
    # what `adapt` exposes for its layer: the front-end's sequence only where one fused LSTM op reads it
    from edge.model_file import adapted_flatbuffer

    for model, further in ((fused, 2), (unrolled, 1)):
        exposed = run / "exposed.tflite"
        exposed.write_bytes(adapted_flatbuffer(model.path.read_bytes(), model.bundle.to_dict()))
        assert len(EdgeModel(exposed).interpreter.get_output_details()) == 1 + further
