"""Torch side: edge networks, checkpoints, ONNX export with parity checks, quantization, TensorRT, bundle writer.

May import `harmowam_edge.bundle.schema` and nothing else of the runtime (design §2).
"""
