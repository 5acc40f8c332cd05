"""Host-side conversion to TFLite. Heavy imports live in the submodules; the choices `quantize` and `compare`
offer are read from here, where the CLI reads them without loading TensorFlow (the LSTM layouts live in
edge/settings.py, beside the bundle's record of the layout a model was converted with)."""
from edge.errors import EdgeSerError
from edge.settings import DEFAULT_LAYOUT as DEFAULT_LAYOUT  # offered with the modes; its one home is edge.settings
from edge.settings import LAYOUTS as LAYOUTS

MODES = ("float32", "float16", "dynamic", "int8")
DEFAULT_MODE = "dynamic"  # float accuracy and speed at a fraction of the size (docs/performance.md "Choosing a mode")


class ConvertError(EdgeSerError):
    """A run folder, model or option the converter cannot use."""
