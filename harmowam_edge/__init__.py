"""harmowam-edge runtime: deploy-bundle reader, engines, policy, scheduling, safety, cameras, control loop.

Importing this package is cheap (no onnxruntime, TensorRT, pyrealsense2 or MuJoCo at import time): `export`
imports `harmowam_edge.bundle.schema` and the CLI starts fast.
"""

from harmowam_edge.errors import BundleError, ConfigError, HarmowamError, MissingDependencyError

__version__ = "0.1.0"

__all__ = ["BundleError", "ConfigError", "HarmowamError", "MissingDependencyError", "__version__"]
