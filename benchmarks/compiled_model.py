"""Can LiteRT's CompiledModel API (the one with a GPU accelerator in the ai-edge-litert wheel) run the
model?

The shipped .tflite keeps the fused LSTM's state in variable tensors, which CompiledModel refuses
("Variable tensors not yet supported"). This exports the same trained network with the LSTM
unrolled over its 49 steps (plain FULLY_CONNECTED / LOGISTIC / TANH / MUL / ADD ops, no state
tensors), then loads every model with CompiledModel on each accelerator and compares its outputs with Keras
on the same random windows; the fused exports also run through the Interpreter, as the edge runs them
today: the peer for the timings. Results on a lent H100: docs/gpu.md "Measured on an H100".

    .venv/bin/python -m benchmarks.compiled_model export runs/default-model runs/compiled-model-ls
    .venv-edge/bin/python -m benchmarks.compiled_model run runs/compiled-model-ls edge/models/default.tflite
"""
from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
WINDOWS = 8
REPEATS = 50


def export(run_dir: Path, out: Path) -> None:
    """Host side (TensorFlow): fused and unrolled, each in float32 and dynamic-range int8, plus Keras's outputs."""
    from convert.tflite import convert, keras2_twin, load_run, operator_names

    model, bundle = load_run(run_dir)
    params = bundle.params
    out.mkdir(parents=True, exist_ok=True)
    for layout, mode in itertools.product(("fused", "unrolled"), ("float32", "dynamic")):
        data = convert(keras2_twin(model, bundle, layout), mode)
        (out / f"{layout}-{mode}.tflite").write_bytes(data)
        ops = operator_names(data)
        print(f"{layout}-{mode}.tflite: {len(data):,} bytes, {len(ops)} ops: {', '.join(sorted(set(ops)))}")
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
    for path in sorted(out.glob("fused-*.tflite")) + extra:
        interpreter_row(path, windows, reference)
    for path in sorted(out.glob("unrolled-*.tflite")) + sorted(out.glob("fused-*.tflite")) + extra:
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
                  f"{same_labels(probabilities, reference)} | {milliseconds:.3f} |", flush=True)


def interpreter_row(path: Path, windows: np.ndarray, reference: np.ndarray) -> None:
    """The peer: the model as the edge runs it today, through LiteRT's Interpreter on the CPU."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    probabilities = []
    for window in windows:
        interpreter.reset_all_variables()  # the fused LSTM's state lives on between calls, as the edge knows
        interpreter.set_tensor(input_index, window[None])
        interpreter.invoke()
        probabilities.append(interpreter.get_tensor(output_index)[0])
    started = time.perf_counter()
    for _ in range(REPEATS):
        interpreter.reset_all_variables()
        interpreter.invoke()
    milliseconds = (time.perf_counter() - started) / REPEATS * 1000
    probabilities = np.array(probabilities)
    print(f"| {path.name} | Interpreter, CPU, 1 thread | yes | {np.abs(probabilities - reference).max():.2e} | "
          f"{same_labels(probabilities, reference)} | {milliseconds:.3f} |", flush=True)


def same_labels(probabilities: np.ndarray, reference: np.ndarray) -> str:
    return f"{int((probabilities.argmax(1) == reference.argmax(1)).sum())} / {len(reference)}"


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
