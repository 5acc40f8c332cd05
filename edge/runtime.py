"""Running a self-describing `.tflite` model: runtime discovery, delegates, one window at a time."""
from __future__ import annotations

import ctypes
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge.accelerator import LITERT_GPU, CompiledGpuModel, open_litert_gpu
from edge.adaptation import summary_size, window_summary
from edge.bundle import Bundle, ModelBundleError
from edge.bundle_json import read_bundle
from edge.errors import EdgeSerError
from edge.logs import quiet_stderr
from edge.settings import RUNTIMES, RuntimeSettings

# The models shipped in the package (trained and converted by this project: docs/models.md "Shipped models"):
# `default` (three corpora, non-commercial) and `open` (CREMA-D alone, commercial use allowed), each
# dynamic-range (fastest here) plus the same network in int8 for tflite-runtime, which cannot load
# dynamic-range models made by TF 2.21 (FULLY_CONNECTED v12). `--model open` picks one by name.
MODELS_DIR = Path(__file__).parent / "models"
SHIPPED_MODELS = ("default", "open")
TFLITE_RUNTIME_TWIN = "-int8"
DEFAULT_MODEL = MODELS_DIR / "default.tflite"
# Library names the TFLite GPU delegate is usually built as (OpenCL/OpenGL on Linux / Android).
GPU_DELEGATE_NAMES = ("libtensorflowlite_gpu_delegate.so", "libtensorflowlite_gpu_gl.so", "libtensorflowlite_gpu.so")
CPU = "CPU (XNNPACK)"  # what runs a model that no delegate or accelerator takes (XNNPACK is on by default)


class RuntimeMissingError(EdgeSerError):
    pass


def model_or_default(path: Path | None, runtime_name: str | None = None) -> Path:
    """The user's model, or the shipped default for the runtime that will run it; a clear error when missing."""
    shipped = path is None or (str(path) in SHIPPED_MODELS and not Path(path).exists())
    if path is not None and not shipped:
        chosen = Path(path)
    else:  # a shipped model by name
        twin = TFLITE_RUNTIME_TWIN if find_runtime(runtime_name).name == "tflite-runtime" else ""
        chosen = MODELS_DIR / f"{path or 'default'}{twin}.tflite"
    if not chosen.is_file():
        where = " (a shipped model is missing from this install; pass --model FILE)" if shipped else ""
        raise ModelBundleError(f"model not found: {chosen}{where}")
    return chosen


class DelegateError(EdgeSerError):
    pass


@dataclass(frozen=True)
class Runtime:
    name: str
    interpreter_class: Any
    load_delegate: Callable[..., Any]
    op_resolver_type: Any = None  # the runtime's OpResolverType enum (None when it has none)


def find_runtime(preferred: str | None = None) -> Runtime:
    """The first TFLite runtime that imports (or exactly `preferred`)."""
    candidates = [r for r in RUNTIMES if preferred in (None, r[0])]
    if not candidates:
        raise RuntimeMissingError(f"unknown runtime {preferred!r}; choose one of {', '.join(r[0] for r in RUNTIMES)}")
    for name, module_name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if name == "tensorflow":
            return Runtime(name, module.lite.Interpreter, module.lite.experimental.load_delegate,
                           getattr(module.lite.experimental, "OpResolverType", None))
        return Runtime(name, module.Interpreter, module.load_delegate, getattr(module, "OpResolverType", None))
    if preferred is not None:
        others = [name for name, module_name in RUNTIMES
                  if name != preferred and importlib.util.find_spec(module_name.split(".")[0])]
        installed = f" (installed: {', '.join(others)})" if others else ""
        raise RuntimeMissingError(f"--runtime {preferred} is not installed{installed}: pip install {preferred} "
                                  "or leave --runtime out")
    raise RuntimeMissingError("no TFLite runtime is installed: pip install ai-edge-litert (or tflite-runtime)")


@dataclass
class DelegateReport:
    requested: str
    loaded: str | None = None  # library path that loaded
    problem: str = ""  # why the delegate is not in use ("" when it is, or none was asked for)
    delegated_nodes: int = 0
    accelerator: str = ""  # LiteRT's GPU accelerator when it runs the model instead of the Interpreter

    @property
    def message(self) -> str:
        """The one line a user sees when a requested delegate falls back."""
        return f"{self.problem}; running on {CPU}" if self.problem else ""

    @property
    def offloaded_to(self) -> str | None:
        """What runs the model instead of the CPU: LiteRT's GPU accelerator or a delegate; None: the CPU."""
        if self.accelerator:
            return self.accelerator
        return f"delegate {self.loaded}" if self.loaded and self.delegated_nodes else None

    @property
    def in_use(self) -> str:
        return self.offloaded_to or CPU


def load_delegates(runtime: Runtime, delegate: str) -> tuple[list[Any], DelegateReport]:
    """`none`, `gpu` (the usual GPU delegate names) or a library path; failures become a report."""
    report = DelegateReport(delegate)
    if delegate == "none":
        return [], report
    names = GPU_DELEGATE_NAMES if delegate == "gpu" else (delegate,)
    errors = []
    for name in names:
        try:
            _check_delegate_library(name)
            loaded = runtime.load_delegate(name)
        except (OSError, ValueError, RuntimeError, AttributeError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            errors.append(reason if reason.startswith(name) else f"{name}: {reason}")
            continue
        report.loaded = name
        return [loaded], report
    report.problem = f"delegate {delegate!r} could not be loaded ({'; '.join(errors)})"
    return [], report


DELEGATE_ENTRY_POINT = "tflite_plugin_create_delegate"  # what TFLite's Python load_delegate calls in the library


def _check_delegate_library(name: str) -> None:
    """Open the library and look for the external-delegate entry point before TFLite does: a failed
    load_delegate leaves a half-made Delegate whose __del__ prints a traceback."""
    library = ctypes.CDLL(name)
    if not hasattr(library, DELEGATE_ENTRY_POINT):
        raise OSError(f"{name} is not a TFLite external delegate (no {DELEGATE_ENTRY_POINT})")


@dataclass
class EdgeModel:
    """A loaded `.tflite` model and its bundle; `predict` takes one normalised feature window."""

    path: Path
    threads: int = RuntimeSettings.threads
    delegate: str = RuntimeSettings.delegate
    require_delegate: bool = RuntimeSettings.require_delegate
    runtime_name: str | None = RuntimeSettings.runtime_name
    bundle: Bundle = field(init=False)
    runtime: Runtime = field(init=False)
    delegate_report: DelegateReport = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.bundle = read_bundle(self.path)
        self.runtime = find_runtime(self.runtime_name)
        delegates, self.delegate_report = load_delegates(self.runtime, self.delegate)
        self.interpreter = self._interpreter(delegates)
        self._check_delegation()
        self._input = self.interpreter.get_input_details()[0]
        self._output, self._summary = self._outputs()
        self.gpu = self._litert_gpu()
        if self.require_delegate and self.delegate_report.offloaded_to is None:
            raise DelegateError(f"{self.delegate_report.problem or f'delegate {self.delegate!r} runs no part of the model'}"
                                "; --require-delegate forbids falling back to the CPU")
        expected = (1, self.bundle.params.frames_per_window, self.bundle.params.n_features)
        if tuple(self._input["shape"]) != expected:
            raise ModelBundleError(f"{self.path}: input shape {tuple(self._input['shape'])} does not match its "
                                   f"feature params {expected}")
        if tuple(self._output["shape"]) != (1, len(self.bundle.labels)):
            raise ModelBundleError(f"{self.path}: the network gives {tuple(self._output['shape'])[-1]} outputs but its "
                                   f"bundle names {len(self.bundle.labels)} labels")

    def _outputs(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The probabilities, and what an adapted model exposes for its layer as further outputs
        (edge/model_file.py summary_tensors)."""
        details = self.interpreter.get_output_details()
        adaptation = self.bundle.adaptation
        if adaptation is not None:
            head = adaptation.head
            size = summary_size([tuple(d["shape"])[1:] for d in details[1:]])
            if size != head.pooled_mean.size:
                raise ModelBundleError(f"{self.path}: its bundle holds an adapted layer but the network does not give "
                                       f"the {head.pooled_mean.size} values it reads")
            if max(head.columns) >= len(self.bundle.labels):
                raise ModelBundleError(f"{self.path}: its adapted layer names outputs the network does not have")
        return details[0], details[1:]

    def _interpreter(self, delegates: list[Any]) -> Any:
        try:
            with quiet_stderr():
                interpreter = self.runtime.interpreter_class(model_path=str(self.path), num_threads=self.threads,
                                                             experimental_delegates=delegates or None)
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelBundleError(f"{self.runtime.name} cannot load {self.path}: {str(error).strip().splitlines()[0]}") from None
        return interpreter

    def _litert_gpu(self) -> CompiledGpuModel | None:
        """`--delegate gpu` with no classic GPU delegate at work: LiteRT's own GPU accelerator, if it takes
        the whole model (the Interpreter stays, for the tensors' details and as the CPU fallback)."""
        report = self.delegate_report
        if self.delegate != "gpu" or report.offloaded_to is not None:
            return None
        if self._summary:
            report.problem += "; LiteRT's GPU accelerator runs models with one output, and an adapted model has more"
            return None
        if self.runtime.name != "ai-edge-litert":
            report.problem += f"; LiteRT's GPU accelerator needs --runtime ai-edge-litert, not {self.runtime.name}"
            return None
        gpu, problem = open_litert_gpu(self.path, self._input, self._output)
        if gpu is None:
            report.problem += f"; {problem}"
            return None
        report.accelerator, report.problem = LITERT_GPU, ""
        return gpu

    def _check_delegation(self) -> None:
        report = self.delegate_report
        if not report.loaded:
            return
        report.delegated_nodes = self._delegated_nodes(report.loaded)
        if not report.delegated_nodes:
            report.problem = (f"delegate {report.loaded} loaded but runs none of this model's ops "
                              "(the fused LSTM is CPU-only in the classic GPU delegate)")

    def _delegated_nodes(self, library: str) -> int:
        """DELEGATE nodes of a probe interpreter without the default XNNPACK delegate, i.e. the nodes
        `library` claimed (the live interpreter's DELEGATE nodes include XNNPACK's)."""
        if self.runtime.op_resolver_type is None:
            return 1  # this runtime cannot tell: trust the delegate
        try:
            with quiet_stderr():
                probe = self.runtime.interpreter_class(
                    model_path=str(self.path), experimental_delegates=[self.runtime.load_delegate(library)],
                    experimental_op_resolver_type=self.runtime.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
                probe.allocate_tensors()
            return sum(op.get("op_name") == "DELEGATE" for op in probe._get_ops_details())
        except (ValueError, RuntimeError, AttributeError, TypeError):
            return 1

    @property
    def labels(self) -> tuple[str, ...]:
        """The network's outputs, in order (what `predict` gives a probability for)."""
        return self.bundle.labels

    def predict(self, window: np.ndarray) -> np.ndarray:
        """The model's probabilities for one (frames, features) window: the network's, through the adapted
        layer when the bundle has one. edge/answers.py turns what is reported into honest confidences."""
        probabilities, summary = self.network_outputs(window)
        if self.bundle.adaptation is None or summary is None:
            return probabilities
        return self.bundle.adaptation.head.apply(summary, probabilities)

    def network_outputs(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The network's own probabilities for one window, and the vector an adapted layer reads when the file
        exposes it (edge.adaptation.window_summary); LSTM state reset first (windows are independent)."""
        if self.gpu is not None:
            return self._dequantize(self.gpu.run(self._quantize(window[None])), self._output), None
        self.interpreter.reset_all_variables()
        self.interpreter.set_tensor(self._input["index"], self._quantize(window[None]))
        self.interpreter.invoke()
        probabilities = self._dequantize(self.interpreter.get_tensor(self._output["index"])[0], self._output)
        if not self._summary:
            return probabilities, None
        return probabilities, window_summary([self._dequantize(self.interpreter.get_tensor(d["index"])[0], d)
                                              for d in self._summary])

    def predict_batch(self, windows: np.ndarray) -> np.ndarray:
        return np.stack([self.predict(w) for w in windows]) if len(windows) else np.zeros((0, len(self.labels)), np.float32)

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        if self._input["dtype"] == np.float32:
            return x.astype(np.float32)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(self._input["dtype"])
        return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(self._input["dtype"])

    def _dequantize(self, y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
        if detail["dtype"] == np.float32:
            return y.astype(np.float32)
        scale, zero_point = detail["quantization"]
        return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)
