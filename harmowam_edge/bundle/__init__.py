"""Deploy bundles: the manifest schema shared with `export`, and (runtime) the verifying loader.

`export` imports this package for the schema, so the loader is reached lazily (`harmowam_edge.bundle.load_bundle`
imports `harmowam_edge.bundle.loader` on first use).
"""

from typing import Any

from harmowam_edge.bundle.schema import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    ActionSpace,
    ArmSpec,
    BundleSchemaError,
    CameraSpec,
    EnginePlan,
    EngineSet,
    GateParams,
    GraphSpec,
    JointSpec,
    Manifest,
    NetworkSpec,
    PolicyParams,
    Provenance,
    TaskTable,
    TensorSpec,
)

_LOADER_NAMES = ("LoadedBundle", "load_bundle", "read_manifest", "verify_files", "check_wiring", "select_graphs")


def __getattr__(name: str) -> Any:
    if name in _LOADER_NAMES:
        from harmowam_edge.bundle import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'harmowam_edge.bundle' has no attribute {name!r}")


__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "ActionSpace",
    "ArmSpec",
    "BundleSchemaError",
    "CameraSpec",
    "EnginePlan",
    "EngineSet",
    "GateParams",
    "GraphSpec",
    "JointSpec",
    "LoadedBundle",
    "Manifest",
    "NetworkSpec",
    "PolicyParams",
    "Provenance",
    "TaskTable",
    "TensorSpec",
    "check_wiring",
    "load_bundle",
    "read_manifest",
    "select_graphs",
    "verify_files",
]
