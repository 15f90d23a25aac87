"""The errors of twin: one root, a few kinds. Foreign errors are wrapped at the boundary with ``raise ... from e``."""


class TwinError(Exception):
    """Root of every error twin raises on purpose."""


class ScenarioError(TwinError):
    """A scenario file is invalid; the message lists every problem with its path in the file."""


class FmuError(TwinError):
    """An FMU could not be built, loaded or stepped; the message names FMU, function, status and time."""


class BuildError(FmuError):
    """Compiling a model into an FMU failed; the message carries the compiler's output."""


class TraceError(TwinError):
    """A trace file is malformed; the message names the file, the row and the column."""


class CalibrationError(TwinError):
    """A calibration could not be set up or did not converge."""


class NvmlError(TwinError):
    """NVML (the NVIDIA management library) is missing or refused a call."""
