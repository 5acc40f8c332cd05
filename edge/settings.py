"""What a user sets: `classify`, `listen` and how a model is run (one dataclass each), `bench`'s repeats,
the runtimes, VADs and LSTM layouts to choose from; each default and each list of choices defined here once.

The CLI's options (the host verbs' too) read their defaults and choices from here; this module imports
nothing heavy, so `edge-ser --help` stays fast.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOP_SECONDS = 0.5  # a new decision twice a second; the model's window is 2 s
CLIP_HOP_SECONDS = 0.5  # a recorded clip's windows overlap by all but half a second (a bundle records its own)
DEFAULT_SILENCE_DB = -50.0  # window RMS in dBFS; a quiet room is about -60, speech at arm's length -35 to -20
DEFAULT_SMOOTHING = 3  # windows averaged: the last 1.5 s of decisions at the default hop
DEFAULT_THRESHOLD = 0.35  # below this smoothed probability: "uncertain" (chance is 1/8 = 0.125)
DEFAULT_STALL_SECONDS = 5.0  # a live microphone delivers a chunk every 64 ms; 5 s of nothing means it is gone
TRIM_MODES = ("clip", "window", "none")
# The TFLite runtimes, in preference order (the maintained one, its predecessor, full TensorFlow), with
# the module each imports: --runtime's choices (edge.runtime loads them).
RUNTIMES = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow"),  # tf.lite.Interpreter (deprecated, still works)
)
RUNTIME_NAMES = tuple(name for name, _ in RUNTIMES)


@dataclass(frozen=True, kw_only=True)
class ListenSettings:
    hop_seconds: float = DEFAULT_HOP_SECONDS
    silence_db: float = DEFAULT_SILENCE_DB
    smoothing: int = DEFAULT_SMOOTHING
    threshold: float = DEFAULT_THRESHOLD
    trim_windows: bool = True  # cut each window to its loud span, like the trimmed clips training saw


@dataclass(frozen=True, kw_only=True)
class ClassifySettings:
    trim: str = "clip"  # "clip": cut the clip's silent ends first, as training did; "window": each window's, as listen does
    hop_seconds: float | None = None  # None: the model's own (bundle.clip_hop_seconds)
    keep_windows: bool = False  # also return every window's result (memory grows with the file's length)

    def __post_init__(self) -> None:
        if self.trim not in TRIM_MODES:
            raise ValueError(f"trim must be one of {', '.join(TRIM_MODES)}, got {self.trim!r}")


@dataclass(frozen=True, kw_only=True)
class RuntimeSettings:
    """How a model is run (edge.runtime.EdgeModel takes its defaults from here)."""

    threads: int = 1  # one thread already runs a window in a small share of its hop (docs/performance.md); a Pi keeps 3 cores
    delegate: str = "none"  # "gpu" or a delegate library's path; none = the CPU (XNNPACK)
    require_delegate: bool = False  # fail instead of falling back to the CPU
    runtime_name: str | None = None  # None: the first installed of ai-edge-litert, tflite-runtime, tensorflow


DEFAULT_BENCH_REPEATS = 200  # timed repetitions per `bench` figure

# How the LSTM is exported (`quantize --layout`, a bundle's conversion record): `fused` is one
# UNIDIRECTIONAL_SEQUENCE_LSTM op (smallest, fastest on a CPU, its state in variable tensors); `unrolled`
# is one step of plain ops per frame and no state tensors, which LiteRT's GPU accelerator (CompiledModel)
# accepts and the fused op it refuses (docs/gpu.md "LiteRT's GPU accelerator").
LAYOUTS = ("fused", "unrolled")
DEFAULT_LAYOUT = "fused"

DEFAULT_VAD = "silero"  # Silero VAD on the TFLite runtime (edge/vad.py)
VAD_CHOICES = ("silero", "none")  # --vad's choices: none classifies every window
