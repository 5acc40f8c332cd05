"""Host-side conversion to TFLite. Heavy imports live in the submodules; the choices `quantize` and `compare`
offer live here, where the CLI reads them without loading TensorFlow."""
from edge.errors import EdgeSerError

MODES = ("float32", "float16", "dynamic", "int8")
DEFAULT_MODE = "dynamic"  # float accuracy and speed at a fraction of the size (docs/performance.md "Choosing a mode")
# How the LSTM is exported: `fused` is one UNIDIRECTIONAL_SEQUENCE_LSTM op (smallest, fastest on a CPU,
# its state in variable tensors); `unrolled` is one step of plain ops per frame and no state tensors,
# which LiteRT's GPU accelerator (CompiledModel) accepts and the fused op it refuses (docs/gpu.md "LiteRT's GPU accelerator").
LAYOUTS = ("fused", "unrolled")
DEFAULT_LAYOUT = "fused"


class ConvertError(EdgeSerError):
    """A run folder, model or option the converter cannot use."""
