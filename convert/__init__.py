"""Host-side conversion to TFLite. Heavy imports live in the submodules."""


class ConvertError(Exception):
    """A run folder, model or option the converter cannot use."""
