"""Inference engines behind one small interface: ONNX Runtime (everywhere) and TensorRT (on the Jetson).

ONNX Runtime and TensorRT are imported when an engine is created, never at package import.
"""

from harmowam_edge.engines.base import Engine, zero_feeds
from harmowam_edge.engines.onnxruntime_engine import OnnxRuntimeEngine, best_providers, default_threads
from harmowam_edge.engines.tensorrt_engine import TensorRTEngine, cuda_device, tensorrt_available, tensorrt_version

__all__ = [
    "Engine",
    "OnnxRuntimeEngine",
    "TensorRTEngine",
    "best_providers",
    "cuda_device",
    "default_threads",
    "tensorrt_available",
    "tensorrt_version",
    "zero_feeds",
]
