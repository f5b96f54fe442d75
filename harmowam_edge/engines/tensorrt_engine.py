"""TensorRT engine (TensorRT 10.x API, as on JetPack 6): plans built on the target by `export engines`.

Per graph: deserialize the plan, `set_input_shape` for the static batch-1 shapes, one buffer per I/O tensor bound
with `set_tensor_address`, `execute_async_v3` on a stream of our own. The input copy in, the execution and the
output copy out are captured once into a CUDA graph (shapes are fixed), so a call is one `cudaGraphLaunch`.
On Jetson (integrated GPU: CPU and GPU share DRAM) buffers are mapped pinned host memory used zero-copy; on a
discrete GPU they are pinned host buffers plus device buffers.

Imported only where used: `tensorrt` comes with JetPack (or NVIDIA's wheels), CUDA calls go through
`cuda-python` (`cuda.bindings.runtime`, or `cuda.cudart` in older releases). This module cannot run on a machine
without an NVIDIA GPU; its tests skip there and say so.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harmowam_edge.bundle.device import CudaDevice, NoCudaDeviceError
from harmowam_edge.bundle.device import cuda_device as _cuda_device
from harmowam_edge.bundle.schema import GraphSpec, TensorSpec
from harmowam_edge.errors import EngineError

log = logging.getLogger("harmowam_edge.engines")


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as e:
        raise EngineError(
            "TensorRT engines need the `tensorrt` Python module: on a Jetson it comes with JetPack "
            "(sudo apt install python3-libnvinfer), elsewhere pip install tensorrt on a machine with an NVIDIA "
            "driver; or run with --backend onnxruntime"
        ) from e
    return trt


def import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as e:
            raise EngineError(
                "TensorRT engines need cuda-python for CUDA streams and buffers: pip install cuda-python "
                "(matching your CUDA major version)"
            ) from e
    return cudart


def tensorrt_available() -> tuple[bool, str]:
    """(True, "") where TensorRT and a CUDA device are usable here, else (False, why)."""
    try:
        import_tensorrt()
        cudart = import_cudart()
    except EngineError as e:
        return False, str(e)
    try:
        _cuda_device()
    except NoCudaDeviceError as e:
        return False, str(e)
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != 0 or count < 1:
        return False, "no CUDA device found"
    return True, ""


def _check(result: Any, what: str) -> Any:
    """cuda-python returns (error, value...) tuples; raise on error, return the value(s)."""
    cudart = import_cudart()
    err, *rest = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        _, name = cudart.cudaGetErrorName(err)
        raise EngineError(f"CUDA error in {what}: {name.decode() if isinstance(name, bytes) else name}")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else tuple(rest)


def cuda_device(index: int = 0) -> CudaDevice:
    """This machine's GPU, named as `export engines` names it (see harmowam_edge.bundle.device)."""
    try:
        return _cuda_device(index)
    except NoCudaDeviceError as e:
        raise EngineError(f"TensorRT engines need an NVIDIA GPU: {e}") from None


def tensorrt_version() -> str:
    return str(import_tensorrt().__version__)


class _Buffer:
    """One I/O tensor: a host array view (pinned) and the device address TensorRT reads/writes."""

    def __init__(self, spec: TensorSpec, zero_copy: bool) -> None:
        cudart = import_cudart()
        self.spec = spec
        dtype = np.dtype(spec.dtype)
        self.nbytes = max(1, int(np.prod(spec.shape)) * dtype.itemsize)
        self.zero_copy = zero_copy
        if zero_copy:
            self.host_ptr = _check(
                cudart.cudaHostAlloc(self.nbytes, cudart.cudaHostAllocMapped), f"cudaHostAlloc({spec.name})"
            )
            self.device_ptr = _check(cudart.cudaHostGetDevicePointer(self.host_ptr, 0), "cudaHostGetDevicePointer")
        else:
            self.host_ptr = _check(cudart.cudaMallocHost(self.nbytes), f"cudaMallocHost({spec.name})")
            self.device_ptr = _check(cudart.cudaMalloc(self.nbytes), f"cudaMalloc({spec.name})")
        raw = (ctypes.c_uint8 * self.nbytes).from_address(int(self.host_ptr))
        self.host = np.frombuffer(memoryview(raw), dtype=np.uint8)[: int(np.prod(spec.shape)) * dtype.itemsize]
        self.host = self.host.view(dtype).reshape(spec.shape)

    def free(self) -> None:
        cudart = import_cudart()
        if self.zero_copy:
            cudart.cudaFreeHost(self.host_ptr)
        else:
            cudart.cudaFreeHost(self.host_ptr)
            cudart.cudaFree(self.device_ptr)


class TensorRTEngine:
    """`Engine` over a deserialized TensorRT plan (static shapes, batch 1)."""

    def __init__(
        self,
        plan: Path,
        spec: GraphSpec,
        name: str,
        *,
        cuda_graph: bool = True,
        zero_copy: bool | None = None,
    ) -> None:
        trt = import_tensorrt()
        cudart = import_cudart()
        self.name = name
        self.inputs: tuple[TensorSpec, ...] = spec.inputs
        self.outputs: tuple[TensorSpec, ...] = spec.outputs
        device = cuda_device()
        self.zero_copy = device.integrated if zero_copy is None else zero_copy
        self.backend = f"tensorrt {trt.__version__}/{device.name}"
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
        if engine is None:
            raise EngineError(
                f"{plan}: TensorRT {trt.__version__} could not deserialize this plan (built by another TensorRT "
                f"version or for another GPU?): rebuild with `harmowam-edge export engines BUNDLE` on this machine"
            )
        self._engine = engine
        self._context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        want = {t.name: t for t in (*self.inputs, *self.outputs)}
        if sorted(names) != sorted(want):
            raise EngineError(f"{plan}: the plan's tensors are {sorted(names)}, the manifest says {sorted(want)}")
        self._stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._buffers: dict[str, _Buffer] = {}
        for n in names:
            t = want[n]
            is_input = engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
            if is_input != any(i.name == n for i in self.inputs):
                raise EngineError(f"{plan}: tensor {n!r} is an {'input' if is_input else 'output'} in the plan")
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(n)))
            if dtype != np.dtype(t.dtype):
                raise EngineError(f"{plan}: tensor {n!r} is {dtype} in the plan, the manifest says {t.dtype}")
            if is_input:
                self._context.set_input_shape(n, t.shape)
            buf = _Buffer(t, self.zero_copy)
            self._context.set_tensor_address(n, int(buf.device_ptr))
            self._buffers[n] = buf
        # One plain execution finalises the context (TensorRT wants that before a graph capture).
        self._execute_plain()
        _check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        self._graph_exec: Any = None
        if cuda_graph:
            try:
                self._capture()
            except EngineError as e:
                log.warning("%s: CUDA graph capture failed (%s); running without a graph", name, e)
                self._graph_exec = None

    def _copies(self, inputs: bool) -> None:
        if self.zero_copy:
            return
        cudart = import_cudart()
        for t in self.inputs if inputs else self.outputs:
            b = self._buffers[t.name]
            if inputs:
                kind, dst, src = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, b.device_ptr, b.host_ptr
            else:
                kind, dst, src = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, b.host_ptr, b.device_ptr
            _check(cudart.cudaMemcpyAsync(dst, src, b.nbytes, kind, self._stream), "cudaMemcpyAsync")

    def _execute_plain(self) -> None:
        self._copies(inputs=True)
        if not self._context.execute_async_v3(int(self._stream)):
            raise EngineError(f"{self.name}: TensorRT execute_async_v3 failed")
        self._copies(inputs=False)

    def _capture(self) -> None:
        cudart = import_cudart()
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _check(cudart.cudaStreamBeginCapture(self._stream, mode), "cudaStreamBeginCapture")
        try:
            self._execute_plain()
        finally:
            graph = _check(cudart.cudaStreamEndCapture(self._stream), "cudaStreamEndCapture")
        self._graph = graph
        self._graph_exec = _check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = import_cudart()
        for t in self.inputs:
            np.copyto(self._buffers[t.name].host, feeds[t.name])
        if self._graph_exec is not None:
            _check(cudart.cudaGraphLaunch(self._graph_exec, self._stream), "cudaGraphLaunch")
        else:
            self._execute_plain()
        _check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        # Copies: the next call overwrites the buffers, and a chunk outlives the call.
        return {t.name: self._buffers[t.name].host.copy() for t in self.outputs}

    def close(self) -> None:
        cudart = import_cudart()
        if self._graph_exec is not None:
            cudart.cudaGraphExecDestroy(self._graph_exec)
            cudart.cudaGraphDestroy(self._graph)
            self._graph_exec = None
        for b in self._buffers.values():
            b.free()
        self._buffers.clear()
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None
        self._context = None
        self._engine = None
