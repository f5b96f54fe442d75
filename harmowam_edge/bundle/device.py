"""The GPU the TensorRT plans are for, named the same way on both sides of a bundle.

`export engines` writes plans to `engines/<trt-version>_<device>/` and the runtime looks for the folder of the
machine it runs on, so both must name a device identically: the CUDA driver's device name, replaced on a Jetson
by the board model from the device tree ("NVIDIA Jetson AGX Orin Developer Kit" rather than "Orin"). Read
through the CUDA driver API with ctypes: no CUDA Python package needed, nothing imported at module import.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

# CUdevice_attribute values (cuda.h)
_ATTR_INTEGRATED = 18
_ATTR_CC_MAJOR = 75
_ATTR_CC_MINOR = 76


class NoCudaDeviceError(RuntimeError):
    """No CUDA driver, or no device at that index."""


@dataclass(frozen=True)
class CudaDevice:
    name: str
    compute_capability: str
    integrated: bool = False  # CPU and GPU share memory (Jetson): zero-copy buffers


def cuda_device(index: int = 0) -> CudaDevice:
    for lib in ("libcuda.so.1", "libcuda.so"):
        try:
            cuda = ctypes.CDLL(lib)
            break
        except OSError:
            continue
    else:
        raise NoCudaDeviceError("no CUDA driver (libcuda.so.1) on this machine")
    dev = ctypes.c_int()
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGet(ctypes.byref(dev), index) != 0:
        raise NoCudaDeviceError(f"CUDA driver found but device {index} is not available")
    buf = ctypes.create_string_buffer(256)
    cuda.cuDeviceGetName(buf, 256, dev)
    major, minor, integrated = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    cuda.cuDeviceGetAttribute(ctypes.byref(major), _ATTR_CC_MAJOR, dev)
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), _ATTR_CC_MINOR, dev)
    cuda.cuDeviceGetAttribute(ctypes.byref(integrated), _ATTR_INTEGRATED, dev)
    name = buf.value.decode(errors="replace").strip() or "unknown"
    model = Path("/proc/device-tree/model")
    if model.is_file():  # a Jetson's driver says "Orin"; the board model is clearer
        board = model.read_bytes().rstrip(b"\x00").decode(errors="replace").strip()
        if board:
            name = board
    return CudaDevice(name, f"{major.value}.{minor.value}", bool(integrated.value))
