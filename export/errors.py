"""Typed errors of export. The CLI prints any `ExportError` as one line (`harmowam-edge: error: ...`)."""

from __future__ import annotations


class ExportError(Exception):
    """Base of every user-facing export error: the message names the file or field and what was expected."""


class CheckpointError(ExportError):
    """A checkpoint that is missing, truncated, inconsistent with its config, or holds non-finite weights."""


class ConfigError(ExportError):
    """A checkpoint config or export option that does not say what is expected; names the key."""


class CalibrationDataError(ExportError):
    """Calibration observations of the wrong shape or dtype, or too few of them."""


class OutputExistsError(ExportError):
    """The output directory exists and --force was not given."""


class OnnxExportError(ExportError):
    """torch -> ONNX failed (an op the exporter cannot handle) or the graph failed onnx.checker."""


class ParityError(ExportError):
    """An exported graph disagrees with PyTorch beyond the tolerance."""


class QuantizationBudgetError(ExportError):
    """A quantized bundle is over its error budget; carries the report so the CLI can print it."""

    def __init__(self, message: str, report: dict[str, object]) -> None:
        super().__init__(message)
        self.report = report


class BundleReadError(ExportError):
    """An existing bundle (for `export engines`) that is missing or does not verify."""


class TensorRTError(ExportError):
    """TensorRT is not available or an engine failed to build."""


class DatasetError(ExportError):
    """A demonstration dataset (ours or LeRobot's) that is missing, malformed or cannot be trained on."""
