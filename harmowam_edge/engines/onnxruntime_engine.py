"""ONNX Runtime engine: one session per graph, full graph optimisation, the best provider available."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harmowam_edge.bundle.schema import GraphSpec, TensorSpec
from harmowam_edge.errors import EngineError

# ONNX Runtime's providers we use, best first. TensorRT runs natively (engines/tensorrt_engine.py), not via ORT.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def import_onnxruntime() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a core dependency
        raise EngineError(
            "ONNX Runtime is not installed: pip install onnxruntime (onnxruntime-gpu on a CUDA workstation; on a "
            "Jetson, the wheel NVIDIA publishes for your JetPack)"
        ) from e
    return ort


def best_providers(requested: Sequence[str] | None = None) -> list[str]:
    """`requested` filtered to what this ONNX Runtime build has, else the best available; CPU always last."""
    ort = import_onnxruntime()
    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise EngineError(
                f"ONNX Runtime provider(s) {', '.join(missing)} not available here (have: {', '.join(available)})"
            )
        return list(requested)
    return [p for p in PREFERRED_PROVIDERS if p in available] or ["CPUExecutionProvider"]


def default_threads() -> int:
    """Leave a core to the control and camera threads (on the 2-core CI machine: one inference thread)."""
    return max(1, (os.cpu_count() or 2) - 1)


def session_settings(threads: int, spinning: bool, provider: str = "CPUExecutionProvider") -> str:
    """The session options every engine here uses, in words (export's bench sessions use the same)."""
    return (
        f"{provider}, {threads} intra-op thread(s), 1 inter-op, spinning {'on' if spinning else 'off'}, "
        "ORT_ENABLE_ALL, sequential"
    )


class OnnxRuntimeEngine:
    """`Engine` over an `onnxruntime.InferenceSession`; checks the graph's I/O against the manifest on load."""

    def __init__(
        self,
        path: Path,
        spec: GraphSpec,
        name: str,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        spinning: bool = False,
    ) -> None:
        ort = import_onnxruntime()
        self.name = name
        self.path = path
        self.inputs: tuple[TensorSpec, ...] = spec.inputs
        self.outputs: tuple[TensorSpec, ...] = spec.outputs
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = threads if threads is not None else default_threads()
        so.inter_op_num_threads = 1
        # Spinning worker threads burn the cores the 200 Hz control thread needs between inference calls.
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        so.log_severity_level = 3
        chosen = best_providers(providers)
        try:
            self._session = ort.InferenceSession(str(path), sess_options=so, providers=chosen)
        except Exception as e:  # onnxruntime raises its own exception types
            raise EngineError(f"{path}: ONNX Runtime cannot load the graph: {e}") from None
        self.provider = self._session.get_providers()[0]
        self.backend = f"onnxruntime/{self.provider}"
        self.threads = so.intra_op_num_threads
        # What the benches print, so that `bench` and `export bench` can be seen to time like with like.
        self.settings = session_settings(self.threads, spinning, self.provider)
        self._check_io()
        self._input_names = tuple(t.name for t in self.inputs)
        self._output_names = [t.name for t in self.outputs]
        # The C-level session behind InferenceSession.run: the Python wrapper re-validates the feed names on every
        # call (~10 µs, a few % of a small graph); the manifest check above already guarantees them.
        sess = getattr(self._session, "_sess", None)
        self._run = (lambda names, feeds: sess.run(names, feeds, None)) if sess is not None else self._session.run

    def _check_io(self) -> None:
        def actual(args: Any) -> dict[str, tuple[tuple[Any, ...], str]]:
            return {a.name: (tuple(a.shape), _ORT_TYPES.get(a.type, a.type)) for a in args}

        for kind, want, have in (
            ("input", self.inputs, actual(self._session.get_inputs())),
            ("output", self.outputs, actual(self._session.get_outputs())),
        ):
            names = {t.name for t in want}
            if set(have) != names:
                raise EngineError(
                    f"{self.path}: the graph's {kind}s are {sorted(have)}, the manifest says {sorted(names)}"
                )
            for t in want:
                shape, dtype = have[t.name]
                fixed = all(isinstance(d, int) for d in shape)
                if dtype != t.dtype or (fixed and shape != t.shape) or len(shape) != len(t.shape):
                    raise EngineError(
                        f"{self.path}: {kind} {t.name!r} is {dtype} {list(shape)} in the graph, "
                        f"the manifest says {t.dtype} {list(t.shape)}"
                    )

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self._run(self._output_names, {n: feeds[n] for n in self._input_names})
        return dict(zip(self._output_names, outs, strict=True))

    def bare(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """`InferenceSession.run` itself on these feeds (the benchmark's reference for the runtime's overhead)."""
        return self._session.run(self._output_names, {n: feeds[n] for n in self._input_names})

    def close(self) -> None:
        self._session = None
