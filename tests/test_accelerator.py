"""LiteRT's GPU accelerator path: its log read for the reason it refused, native output kept quiet."""
from __future__ import annotations

import ctypes
import os

from edge.accelerator import refusal_reason
from edge.logs import quiet_native_output, quiet_stderr


def test_refusal_reason_names_the_known_causes_and_falls_back_to_the_first_error_line():
    assert "--layout unrolled" in refusal_reason(["INFO: x", "ERROR: [model_load.cc:316] Variable tensors not yet supported."])
    assert "no GPU adapter found" in refusal_reason(["ERROR: [delegate_webgpu.cc:359] ... INTERNAL: No adapters found"])
    assert refusal_reason(["INFO: fine", "ERROR: [x.cc:1] something new"]) == "ERROR: [x.cc:1] something new"
    assert refusal_reason(["INFO: nothing"]) == "it gave no reason"


def test_native_output_on_both_streams_is_captured_and_handed_back(capfd):
    libc = ctypes.CDLL(None)
    with quiet_native_output() as lines:
        os.write(1, b"INFO: Loaded OpenCL library with dlopen.\n")
        libc.dprintf(2, b"INFO: [accelerator_registry.cc:54] RegisterAccelerator\n")
    with quiet_stderr() as errors:
        os.write(2, b"only stderr\n")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert sorted(lines) == ["INFO: Loaded OpenCL library with dlopen.", "INFO: [accelerator_registry.cc:54] RegisterAccelerator"]
    assert errors == ["only stderr"]
