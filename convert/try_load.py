"""Run by `compare` in each runtime's own interpreter: can RUNTIME load and run each model file?

usage: python try_load.py {ai-edge-litert|tflite-runtime|tensorflow} MODEL... ; prints one JSON line.
Deliberately standalone (no edge-ser import): the tflite-runtime environment has only numpy<2.
"""
import importlib
import json
import sys

MODULES = {"ai-edge-litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter",
           "tensorflow": "tensorflow"}


def try_model(interpreter_class, path):
    import numpy as np

    try:
        interpreter = interpreter_class(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
        return "ok"
    except Exception as error:  # report any failure as text
        return "fails: " + (str(error).strip().splitlines() or [type(error).__name__])[0][:160]


def main():
    runtime, paths = sys.argv[1], sys.argv[2:]
    try:
        module = importlib.import_module(MODULES[runtime])
    except ImportError as error:
        print(json.dumps({p: f"not installed ({error})" for p in paths}))
        return
    interpreter_class = module.lite.Interpreter if runtime == "tensorflow" else module.Interpreter
    print(json.dumps({p: try_model(interpreter_class, p) for p in paths}))


if __name__ == "__main__":
    main()
