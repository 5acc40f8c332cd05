"""Host-side conversion to TFLite. Heavy imports live in the submodules; the choices `quantize` and `compare`
offer are read from here, where the CLI reads them without loading TensorFlow (the LSTM layouts live in
edge/settings.py, beside the bundle's record of the layout a model was converted with)."""
from edge.errors import EdgeSerError

MODES = ("float32", "float16", "dynamic", "int8")
DEFAULT_MODE = "dynamic"  # float accuracy and speed at a fraction of the size (docs/performance.md "Choosing a mode")
# The drift gate: quantize fails (exit 3) when a mode's test accuracy falls more than this many points below float;
# the shipped models stay within it.
DEFAULT_MAX_DRIFT_PP = 1.0


class ConvertError(EdgeSerError):
    """A run folder, model or option the converter cannot use."""
