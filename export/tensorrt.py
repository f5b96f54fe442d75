"""TensorRT engines for an existing bundle, built on the target (`harmowam-edge export engines BUNDLE`).

Written against the TensorRT 10.3 Python API of JetPack 6: `OnnxParser.parse_from_file`, a workspace memory
pool limit, a timing cache kept beside the plans, an optimization profile pinned to the static shapes, and a
strongly typed network (precision carried by the ONNX: FP16 graphs build FP16, Q/DQ graphs build INT8) where
the TensorRT version has one, the FP16 (+INT8) builder flags otherwise. Each plan gets the engine inspector's
layer report. Nothing here needs torch: only the bundle, TensorRT and the CUDA driver.

Plans land in `engines/<trt-version>_<device>/` with `engines.json` (schema.EngineSet), written to a temporary
folder and renamed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from export.errors import TensorRTError
from export.manifest_io import verify_bundle
from harmowam_edge.bundle.device import CudaDevice, NoCudaDeviceError
from harmowam_edge.bundle.device import cuda_device as _cuda_device
from harmowam_edge.bundle.schema import (
    ENGINE_SET_NAME,
    ENGINES_DIR,
    EnginePlan,
    EngineSet,
    Manifest,
    Precision,
    engine_folder_name,
    sha256_file,
)

TIMING_CACHE = "timing.cache"
DEFAULT_WORKSPACE_MB = 1024


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as e:
        raise TensorRTError(
            "building engines needs TensorRT's Python bindings (module 'tensorrt'), which did not import "
            f"({e}); run this on the Jetson (JetPack 6 ships TensorRT 10.3) or an NVIDIA GPU machine"
        ) from None
    return trt


def cuda_device(index: int = 0) -> CudaDevice:
    """The GPU's name and compute capability, named exactly as the runtime names it when it looks for plans."""
    try:
        return _cuda_device(index)
    except NoCudaDeviceError as e:
        raise TensorRTError(f"{e}: TensorRT engines need an NVIDIA GPU (a Jetson)") from None


def read_manifest(bundle: Path) -> Manifest:
    """The bundle's manifest, with every graph checked against its sha256 before TensorRT sees it."""
    return verify_bundle(bundle)


def check_tensorrt_compatible(bundle: Path, manifest: Manifest, networks: Sequence[str]) -> None:
    """Refuse what TensorRT cannot build, before spending minutes on it."""
    quant = manifest.provenance.reports.get("quantization")
    if quant and (bundle / quant).is_file():
        report = json.loads((bundle / quant).read_text())
        if report.get("int8_activations") == "u8":
            raise TensorRTError(
                f"{bundle}: its INT8 graphs use asymmetric uint8 activations (--int8-activations u8, an x86 "
                "ONNX Runtime option); TensorRT needs symmetric int8: re-export with --int8-activations s8"
            )
    for n in networks:
        for t in manifest.network(n).default.inputs:
            if t.dtype == "uint16":
                raise TensorRTError(
                    f"{n}: input {t.name} is uint16 (z16 depth), a type TensorRT cannot take as a network input; "
                    "bundles with depth cameras run on ONNX Runtime"
                )


@dataclass
class BuiltPlan:
    network: str
    precision: Precision
    file: Path
    seconds: float
    size_bytes: int


def build_engine(
    trt: Any,
    onnx_path: Path,
    plan_path: Path,
    precision: Precision,
    workspace_mb: int,
    timing_cache: bytes,
    logger: Any,
) -> tuple[bytes, str]:
    """Build one serialized plan; returns (updated timing cache, inspector layer report as JSON text)."""
    builder = trt.Builder(logger)
    strongly_typed = hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"{onnx_path.name}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    cache = config.create_timing_cache(timing_cache)
    config.set_timing_cache(cache, ignore_mismatch=False)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    # Static shapes: one profile with min = opt = max, so the plan is specialised for exactly these.
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        profile.set_shape(tensor.name, shape, shape, shape)
    config.add_optimization_profile(profile)
    if not strongly_typed:
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)  # scales come from the graph's Q/DQ nodes
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"{onnx_path.name}: TensorRT failed to build an engine (see the log above)")
    plan_path.write_bytes(bytes(serialized))
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(bytes(serialized))
    if engine is None:
        raise TensorRTError(f"{plan_path.name}: the freshly built plan does not deserialize")
    inspector = engine.create_engine_inspector()
    layers = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    return bytes(config.get_timing_cache().serialize()), str(layers)


@dataclass
class EngineBuildReport:
    folder: Path
    engine_set: EngineSet
    plans: list[BuiltPlan]
    trt_version: str
    device: CudaDevice


def build_engines(
    bundle: str | Path,
    networks: Sequence[str] | None = None,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> EngineBuildReport:
    """Build a TensorRT plan for each network's default graph; write engines/<trt-version>_<device>/."""
    say = progress or (lambda _m: None)
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    names = list(networks) if networks else list(manifest.networks)
    for n in names:
        manifest.network(n)  # names the bad one
    check_tensorrt_compatible(bundle, manifest, names)
    if workspace_mb < 16:
        raise TensorRTError(f"--workspace-mb: expected at least 16, got {workspace_mb}")
    trt = import_tensorrt()
    device = cuda_device()
    version = str(trt.__version__)
    folder_name = engine_folder_name(version, device.name)
    engines_root = bundle / ENGINES_DIR
    final = engines_root / folder_name
    if final.exists() and not force:
        raise TensorRTError(f"{final}: engines for this TensorRT version and device exist; pass --force to rebuild")
    engines_root.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder_name}.partial-", dir=engines_root))
    logger = trt.Logger(trt.Logger.WARNING)
    cache_file = final / TIMING_CACHE
    timing_cache = cache_file.read_bytes() if cache_file.is_file() else b""
    built: list[BuiltPlan] = []
    plans: dict[str, EnginePlan] = {}
    try:
        for n in names:
            graph = manifest.network(n).default
            onnx_path = bundle / graph.file
            plan_path = tmp / f"{n}.plan"
            say(f"building {n} ({graph.precision}) with TensorRT {version} on {device.name}")
            t0 = time.perf_counter()
            timing_cache, layers = build_engine(
                trt, onnx_path, plan_path, graph.precision, workspace_mb, timing_cache, logger
            )
            (tmp / f"{n}.layers.json").write_text(layers)
            rel = f"{ENGINES_DIR}/{folder_name}/{plan_path.name}"
            plans[n] = EnginePlan(
                file=rel,
                sha256=sha256_file(plan_path),
                onnx_file=graph.file,
                onnx_sha256=graph.sha256,
                precision=graph.precision,
            )
            built.append(BuiltPlan(n, graph.precision, plan_path, time.perf_counter() - t0, plan_path.stat().st_size))
        (tmp / TIMING_CACHE).write_bytes(timing_cache)
        engine_set = EngineSet(
            trt_version=version,
            device=device.name,
            compute_capability=device.compute_capability,
            built_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            plans=plans,
        )
        data = engine_set.to_dict()
        EngineSet.from_dict(json.loads(json.dumps(data)), source=f"{ENGINE_SET_NAME} (as written)")
        (tmp / ENGINE_SET_NAME).write_text(json.dumps(data, indent=1) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        old = None
        if final.exists():
            old = final.with_name(f".{folder_name}.old-{os.getpid()}")
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for b in built:
        b.file = final / b.file.name
    return EngineBuildReport(folder=final, engine_set=engine_set, plans=built, trt_version=version, device=device)
