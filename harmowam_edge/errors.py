"""Typed errors of the runtime. A `HarmowamError` is a user-facing problem: its message says what and how to fix."""

from __future__ import annotations

import sys


class HarmowamError(Exception):
    """Base of every error the CLI reports as one line instead of a traceback."""


class ConfigError(HarmowamError):
    """A rig config, CLI option or file that does not say what is expected; the message names the field."""


class BundleError(HarmowamError):
    """A deploy bundle that is missing, corrupt or inconsistent."""


class EngineError(HarmowamError):
    """An inference engine (ONNX Runtime session, TensorRT plan) that cannot be created or run."""


class CameraError(HarmowamError):
    """A camera or recording that cannot be opened, does not match the bundle's camera spec, or failed."""


class SafetyError(HarmowamError):
    """The arm cannot be driven safely (e.g. it starts outside its limits, or limits contradict each other)."""


class MissingDependencyError(HarmowamError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python module {module!r}, which is not installed: "
            f"pip install 'harmowam-edge[{extra}]'"
        )
        self.module = module
        self.extra = extra


def describe_user_error(e: BaseException) -> str | None:
    """The one-line message for an error a user can fix, or None for a bug (which keeps its traceback).

    The errors of `firmware_bridge`, `export` and `calibration` are recognised without importing those packages
    here: each is checked only if its module is already loaded.
    """
    from harmowam_edge.bundle.schema import BundleSchemaError

    user_errors: list[type[BaseException]] = [HarmowamError, BundleSchemaError]
    for module, name in (
        ("firmware_bridge.errors", "BridgeError"),
        ("export.errors", "ExportError"),
        ("calibration.errors", "CalibrationError"),
    ):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, name):
            user_errors.append(getattr(mod, name))
    if isinstance(e, tuple(user_errors)):
        return str(e)
    return None
