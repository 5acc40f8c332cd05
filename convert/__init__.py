"""Host-side conversion to TFLite. Heavy imports live in the submodules."""
from edge.errors import EdgeSerError


class ConvertError(EdgeSerError):
    """A run folder, model or option the converter cannot use."""
