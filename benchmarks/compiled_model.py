"""Can LiteRT's CompiledModel API (the one with a GPU accelerator in the ai-edge-litert wheel) run the
model? (issue 12, item 4)

The shipped .tflite keeps the fused LSTM's state in variable tensors, which CompiledModel refuses
("Variable tensors not yet supported"). This exports the same trained network with the LSTM
unrolled over its 49 steps (plain FULLY_CONNECTED / LOGISTIC / TANH / MUL / ADD ops, no state
tensors), then loads every model given with CompiledModel on each accelerator and compares its
outputs with Keras on the same random windows.

    .venv/bin/python -m benchmarks.compiled_model export runs/default-model runs/compiled-model
    .venv-edge/bin/python -m benchmarks.compiled_model run runs/compiled-model edge/models/default.tflite
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
WINDOWS = 8
REPEATS = 50


def export(run_dir: Path, out: Path) -> None:
    """Host side (TensorFlow): the unrolled twin in float32 and dynamic-range int8, plus reference outputs."""
    import tf_keras

    from convert.tflite import convert, load_run, operator_names
    from train.config import ModelConfig
    from train.model import build_model

    model, bundle = load_run(run_dir)
    params = bundle.params
    fused_lstm = tf_keras.layers.LSTM

    class UnrolledLSTM(fused_lstm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, unroll=True, **kwargs)

    tf_keras.layers.LSTM = UnrolledLSTM
    try:
        twin = build_model(tf_keras, ModelConfig.from_dict(bundle.model_config), params.frames_per_window,
                           params.n_features, len(bundle.labels), batch_size=1)
    finally:
        tf_keras.layers.LSTM = fused_lstm
    twin.set_weights(model.get_weights())
    out.mkdir(parents=True, exist_ok=True)
    for mode in ("float32", "dynamic"):
        data = convert(twin, mode)
        (out / f"unrolled-{mode}.tflite").write_bytes(data)
        ops = operator_names(data)
        print(f"unrolled-{mode}.tflite: {len(data):,} bytes, {len(ops)} ops: {', '.join(sorted(set(ops)))}")
    windows = np.random.default_rng(0).normal(size=(WINDOWS, params.frames_per_window, params.n_features))
    np.save(out / "windows.npy", windows.astype(np.float32))
    np.save(out / "keras.npy", model.predict(windows.astype(np.float32), verbose=0))


def run(out: Path, extra: list[Path]) -> None:
    """Device side (ai-edge-litert, no TensorFlow): every model on CPU and on GPU through CompiledModel."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator

    windows, reference = np.load(out / "windows.npy"), np.load(out / "keras.npy")
    print("| model | accelerator | loads | max abs diff vs Keras | same labels | ms / window |")
    print("|---|---|---|---|---|---|")
    for path in sorted(out.glob("*.tflite")) + extra:
        for name, accelerator in (("CPU", HardwareAccelerator.CPU), ("GPU", HardwareAccelerator.GPU)):
            try:
                model = CompiledModel.from_file(str(path), hardware_accel=accelerator)
            except Exception as error:  # LiteRT raises RuntimeError with its log line
                print(f"| {path.name} | {name} | no: {str(error).splitlines()[0][:80]} | | | |", flush=True)
                continue
            inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
            probabilities = []
            for window in windows:
                inputs[0].write(window[None])
                model.run_by_index(0, inputs, outputs)
                probabilities.append(outputs[0].read(reference.shape[1], np.float32))
            started = time.perf_counter()
            for _ in range(REPEATS):
                model.run_by_index(0, inputs, outputs)
            milliseconds = (time.perf_counter() - started) / REPEATS * 1000
            probabilities = np.array(probabilities)
            print(f"| {path.name} | {name} | yes (fully accelerated: {model.is_fully_accelerated()}) | "
                  f"{np.abs(probabilities - reference).max():.2e} | "
                  f"{bool((probabilities.argmax(1) == reference.argmax(1)).all())} | {milliseconds:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    export_step = sub.add_parser("export")
    export_step.add_argument("run_dir", type=Path)
    export_step.add_argument("out", type=Path)
    run_step = sub.add_parser("run")
    run_step.add_argument("out", type=Path)
    run_step.add_argument("models", type=Path, nargs="*", help="More .tflite files to try (e.g. the shipped one).")
    args = parser.parse_args()
    export(args.run_dir, args.out) if args.step == "export" else run(args.out, args.models)


if __name__ == "__main__":
    main()
