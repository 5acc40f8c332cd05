"""LiteRT's GPU accelerator, through its CompiledModel API: the GPU path inside the ai-edge-litert wheel
(libLiteRtWebGpuAccelerator.so: WebGPU, over Vulkan on Linux) that needs no hand-built delegate.

It refuses variable tensors, so the fused LSTM of a default export cannot run there ("Variable tensors
not yet supported"); a model exported with `edge-ser quantize --layout unrolled` (the LSTM as one step
of plain ops per frame) runs there whole: the same labels as Keras, but slower per window than the CPU
for a network this small (docs/gpu.md "Measured on an H100").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.logs import quiet_native_output

LITERT_GPU = "LiteRT GPU accelerator (CompiledModel)"
# What LiteRT writes to stderr when it refuses (its exceptions carry only a source location), and what
# the user can do about it.
KNOWN_REFUSALS = (
    ("Variable tensors not yet supported",
     "it refuses the fused LSTM's state (variable tensors): export with `edge-ser quantize --layout unrolled`"),
    ("No adapters found", "no GPU adapter found (WebGPU needs a GPU with a Vulkan driver: libvulkan1 and its ICD)"),
)


@dataclass
class CompiledGpuModel:
    """A model loaded whole on LiteRT's GPU accelerator, run one window at a time."""

    compiled: Any
    inputs: Any
    outputs: Any
    n_outputs: int
    output_dtype: Any

    def run(self, window: np.ndarray) -> np.ndarray:
        """The output tensor for one (1, frames, features) window in the input's dtype, as the output's
        dtype holds it (the caller dequantises, as for the Interpreter)."""
        self.inputs[0].write(window)
        self.compiled.run_by_index(0, self.inputs, self.outputs)
        return np.asarray(self.outputs[0].read(self.n_outputs, self.output_dtype))


def open_litert_gpu(path: Path, input_detail: dict[str, Any], output_detail: dict[str, Any]
                    ) -> tuple[CompiledGpuModel | None, str]:
    """The model on LiteRT's GPU accelerator, or None and why not (one line for the user); the details are
    the Interpreter's, for the same tensors."""
    try:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    except ImportError:
        return None, "LiteRT's GPU accelerator needs ai-edge-litert >= 2 (pip install -U ai-edge-litert)"
    gpu = None
    with quiet_native_output() as log:  # LiteRT logs every step of its set-up, some of it on stdout
        try:
            compiled = CompiledModel.from_file(str(path), hardware_accel=HardwareAccelerator.GPU)
            if not compiled.is_fully_accelerated():
                return None, "LiteRT's GPU accelerator takes only part of this model"
            gpu = CompiledGpuModel(compiled, compiled.create_input_buffers(0), compiled.create_output_buffers(0),
                                   int(np.prod(output_detail["shape"])), output_detail["dtype"])
            gpu.run(np.zeros(input_detail["shape"], input_detail["dtype"]))  # a first run sets up the GPU
        except Exception:  # LiteRT raises RuntimeError; whatever it raises, the answer is "not on the GPU"
            gpu = None
    if gpu is None:
        return None, f"LiteRT's GPU accelerator cannot run it: {refusal_reason(log)}"
    return gpu, ""


def refusal_reason(log: list[str]) -> str:
    """The known reason in LiteRT's log, else its first error line."""
    for needle, reason in KNOWN_REFUSALS:
        if any(needle in line for line in log):
            return reason
    errors = [line.strip() for line in log if "ERROR" in line or "Failed" in line]
    return errors[0][:160] if errors else "it gave no reason"
