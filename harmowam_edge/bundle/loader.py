"""The verifying bundle loader: manifest, hashes, shapes and wiring, backend choice, engines, warm-up.

    bundle = load_bundle("bundles/demo")            # TensorRT plans if built for this TensorRT + GPU, else ORT
    bundle.engines["world_model"].run(feeds)
    bundle.task_embedding("pick_and_place")         # float32 [1, E]

A bundle that is missing a file, has a file whose sha256 differs from the manifest, a graph whose I/O differs
from its spec, or an expert input that nothing produces is refused with a `BundleError` naming the file and what
was expected. TensorRT plans are used only when `engines/<trt-version>_<device>/engines.json` matches this
TensorRT version and GPU and was built from the bundle's current graphs; otherwise the message says how to
build matching ones (`harmowam-edge export engines BUNDLE`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from harmowam_edge.bundle.schema import (
    ACTIONS,
    ENGINE_SET_NAME,
    ENGINES_DIR,
    FLOW_DT,
    FLOW_NEXT,
    FLOW_STATE,
    FLOW_TIME,
    GATE,
    GATE_WEIGHTS,
    JOINT_POS,
    MANIFEST_NAME,
    NOISE,
    PRECISIONS,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    REACTIVE_EXPERT,
    TASK_EMBEDDING,
    WORLD_MODEL,
    BundleSchemaError,
    EngineSet,
    FlowMode,
    GraphSpec,
    Manifest,
    Precision,
    TensorSpec,
    depth_input,
    engine_folder_name,
    image_input,
    sha256_file,
)
from harmowam_edge.engines.base import Engine, zero_feeds
from harmowam_edge.errors import BundleError, EngineError

log = logging.getLogger("harmowam_edge.bundle")

Backend = Literal["auto", "onnxruntime", "tensorrt"]
BACKENDS: tuple[Backend, ...] = ("auto", "onnxruntime", "tensorrt")
BUILD_ENGINES = "harmowam-edge export engines {bundle}"


# --------------------------------------------------------------------------------------------------------------
# Reading and verifying (no engines)


def read_manifest(path: str | Path) -> Manifest:
    root = Path(path)
    if root.is_file():
        raise BundleError(f"{root}: is a file; a deploy bundle is a directory (the one holding {MANIFEST_NAME})")
    if not root.is_dir():
        raise BundleError(f"{root}: no such bundle directory")
    mpath = root / MANIFEST_NAME
    if not mpath.is_file():
        raise BundleError(f"{root}: not a deploy bundle (no {MANIFEST_NAME}); build one with `make export`")
    try:
        data = json.loads(mpath.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"{mpath}: not valid JSON: {e}") from None
    try:
        return Manifest.from_dict(data, source=str(mpath))
    except BundleSchemaError as e:
        raise BundleError(str(e)) from None


def verify_files(root: Path, manifest: Manifest) -> list[str]:
    """Every listed file present with its sha256, every graph listed, the task table's shape right."""
    problems = []
    for rel, digest in sorted(manifest.files.items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"{p}: missing (listed in {MANIFEST_NAME} files)")
        elif sha256_file(p) != digest:
            problems.append(f"{p}: sha256 differs from {MANIFEST_NAME} (corrupt or modified after export)")
    for net in manifest.networks.values():
        for g in net.graphs.values():
            if manifest.files.get(g.file) not in (None, g.sha256):
                problems.append(f"{root / g.file}: {MANIFEST_NAME} lists two different sha256 for it")
            elif g.file not in manifest.files and (root / g.file).is_file() and sha256_file(root / g.file) != g.sha256:
                problems.append(f"{root / g.file}: sha256 differs from networks.{net.name}")
    tasks = root / manifest.tasks.file
    if tasks.is_file():
        if manifest.files.get(manifest.tasks.file, manifest.tasks.sha256) != manifest.tasks.sha256:
            problems.append(f"{tasks}: {MANIFEST_NAME} lists two different sha256 for it")
        try:
            table = np.load(tasks, allow_pickle=False)
        except (OSError, ValueError) as e:
            problems.append(f"{tasks}: not a readable .npy file: {e}")
        else:
            want = (len(manifest.tasks.names), manifest.tasks.dim)
            if table.dtype != np.float32 or table.shape != want:
                problems.append(f"{tasks}: expected float32 {list(want)}, got {table.dtype} {list(table.shape)}")
    elif manifest.tasks.file not in manifest.files:
        problems.append(f"{tasks}: missing")
    return problems


def observation_inputs(manifest: Manifest) -> dict[str, TensorSpec]:
    """The tensors the runtime feeds from the observation: frames, joint state, task embedding."""
    out: dict[str, TensorSpec] = {}
    for i, cam in enumerate(manifest.cameras):
        out[image_input(i)] = TensorSpec(image_input(i), (1, cam.height, cam.width, 3), "uint8")
        if cam.has_depth:
            out[depth_input(i)] = TensorSpec(depth_input(i), (1, cam.height, cam.width), "uint16")
    out[JOINT_POS] = TensorSpec(JOINT_POS, (1, manifest.policy.action_dim), "float32")
    out[TASK_EMBEDDING] = TensorSpec(TASK_EMBEDDING, (1, manifest.tasks.dim), "float32")
    return out


def select_graphs(
    manifest: Manifest, precision: Precision | None = None, flow_mode: FlowMode | None = None
) -> dict[str, GraphSpec]:
    """The graph of each network the policy runs: `precision` where the network ships it, else its default.

    A precision that no network ships is refused, naming the ones the bundle has (an INT8 bundle may keep some
    networks in FP16 by design; a bundle with no INT8 graph at all must not quietly run FP32 for `int8`).
    """
    mode = flow_mode or manifest.policy.flow_mode
    names = [WORLD_MODEL, GATE, REACTIVE_EXPERT, PREDICTIVE_EXPERT if mode == "unrolled" else PREDICTIVE_EXPERT_STEP]
    out = {}
    for n in names:
        if n not in manifest.networks:
            raise BundleError(f"{MANIFEST_NAME}: networks.{n}: missing (needed for flow_mode {mode!r})")
    if precision is not None and not any(precision in manifest.networks[n].graphs for n in names):
        raise BundleError(
            f"precision {precision!r}: the bundle has no {precision} graphs; it has "
            f"{', '.join(bundle_precisions(manifest, names))}"
        )
    for n in names:
        net = manifest.networks[n]
        out[n] = net.graphs.get(precision, net.default) if precision else net.default
    return out


def bundle_precisions(manifest: Manifest, names: Iterable[str] | None = None) -> list[str]:
    """The precisions the bundle ships graphs in (of `names`, default every network), in PRECISIONS order."""
    nets = [manifest.networks[n] for n in names] if names is not None else list(manifest.networks.values())
    have = {p for net in nets for p in net.graphs}
    return [p for p in PRECISIONS if p in have]


def check_wiring(manifest: Manifest, graphs: Mapping[str, GraphSpec]) -> list[str]:
    """Every network input is an observation input or a world-model output of the same shape and dtype."""
    k, a = manifest.policy.chunk_size, manifest.policy.action_dim
    obs = observation_inputs(manifest)
    problems: list[str] = []

    def need(net: str, available: Mapping[str, TensorSpec]) -> None:
        g = graphs[net]
        for t in g.inputs:
            src = available.get(t.name)
            if src is None:
                problems.append(
                    f"{g.file}: input {t.name!r} is neither an observation input nor a world-model output "
                    f"(available: {', '.join(sorted(available))})"
                )
            elif (src.shape, src.dtype) != (t.shape, t.dtype):
                problems.append(
                    f"{g.file}: input {t.name!r} is {t.dtype} {list(t.shape)}, "
                    f"its source gives {src.dtype} {list(src.shape)}"
                )

    def give(net: str, name: str, shape: tuple[int, ...]) -> None:
        g = graphs[net]
        try:
            t = g.output(name)
        except KeyError:
            problems.append(f"{g.file}: no output {name!r}")
            return
        if (t.shape, t.dtype) != (shape, "float32"):
            problems.append(f"{g.file}: output {name!r} is {t.dtype} {list(t.shape)}, expected float32 {list(shape)}")

    need(WORLD_MODEL, obs)
    for cam_i, cam in enumerate(manifest.cameras):
        if image_input(cam_i) not in {t.name for t in graphs[WORLD_MODEL].inputs}:
            problems.append(f"{graphs[WORLD_MODEL].file}: camera {cam.name!r} ({image_input(cam_i)}) is not an input")
    wm_out = {t.name: t for t in graphs[WORLD_MODEL].outputs}
    produced = {**obs, **wm_out}
    need(GATE, produced)
    give(GATE, GATE_WEIGHTS, (1, k))
    need(REACTIVE_EXPERT, produced)
    give(REACTIVE_EXPERT, ACTIONS, (1, k, a))
    flow = TensorSpec(NOISE, (1, k, a), "float32")
    if PREDICTIVE_EXPERT in graphs:
        need(PREDICTIVE_EXPERT, {**produced, NOISE: flow})
        give(PREDICTIVE_EXPERT, ACTIONS, (1, k, a))
    if PREDICTIVE_EXPERT_STEP in graphs:
        step_in = {
            FLOW_STATE: TensorSpec(FLOW_STATE, (1, k, a), "float32"),
            FLOW_TIME: TensorSpec(FLOW_TIME, (1,), "float32"),
            FLOW_DT: TensorSpec(FLOW_DT, (1,), "float32"),
        }
        need(PREDICTIVE_EXPERT_STEP, {**produced, **step_in})
        give(PREDICTIVE_EXPERT_STEP, FLOW_NEXT, (1, k, a))
        give(PREDICTIVE_EXPERT_STEP, ACTIONS, (1, k, a))
    return problems


# --------------------------------------------------------------------------------------------------------------
# TensorRT engine sets


@dataclass(frozen=True)
class EngineChoice:
    kind: Literal["onnxruntime", "tensorrt"]
    folder: Path | None = None
    engine_set: EngineSet | None = None
    note: str = ""  # why this backend (shown by `run` and `doctor`)


def engine_sets(root: Path) -> list[tuple[Path, EngineSet | None, str]]:
    """(folder, engine set or None, problem) for each folder under engines/."""
    out: list[tuple[Path, EngineSet | None, str]] = []
    base = root / ENGINES_DIR
    if not base.is_dir():
        return out
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        f = folder / ENGINE_SET_NAME
        if not f.is_file():
            out.append((folder, None, f"{f}: missing"))
            continue
        try:
            es = EngineSet.from_dict(json.loads(f.read_text()), source=str(f))
        except (OSError, json.JSONDecodeError, BundleSchemaError) as e:
            out.append((folder, None, str(e)))
            continue
        out.append((folder, es, ""))
    return out


def check_engine_set(root: Path, es: EngineSet, graphs: Mapping[str, GraphSpec], hashes: bool = True) -> list[str]:
    """Plans for every selected network, built from exactly these graphs, files intact."""
    problems = []
    folder = root / ENGINES_DIR / es.folder
    for net, g in graphs.items():
        plan = es.plans.get(net)
        if plan is None:
            problems.append(f"{folder}: no plan for {net}")
            continue
        if plan.onnx_file != g.file or plan.onnx_sha256 != g.sha256:
            problems.append(f"{root / plan.file}: built from another {net} graph than the bundle's {g.file}")
            continue
        p = root / plan.file
        if not p.is_file():
            problems.append(f"{p}: missing")
        elif hashes and sha256_file(p) != plan.sha256:
            problems.append(f"{p}: sha256 differs from {ENGINE_SET_NAME}")
    return problems


def choose_backend(root: Path, graphs: Mapping[str, GraphSpec], backend: Backend = "auto") -> EngineChoice:
    from harmowam_edge.engines.tensorrt_engine import cuda_device, tensorrt_available, tensorrt_version

    if backend not in BACKENDS:
        raise BundleError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    build = BUILD_ENGINES.format(bundle=root)
    if backend == "onnxruntime":
        return EngineChoice("onnxruntime", note="ONNX Runtime requested")
    ok, why = tensorrt_available()
    sets = engine_sets(root)
    if not ok:
        if backend == "tensorrt":
            raise BundleError(f"TensorRT requested but not usable here: {why}")
        note = "TensorRT is not available here"
        if sets:
            note += f" (the plans under {root / ENGINES_DIR} are not used)"
        return EngineChoice("onnxruntime", note=note)
    version, device = tensorrt_version(), cuda_device()
    want = engine_folder_name(version, device.name)
    found = []
    for folder, es, problem in sets:
        if es is None:
            found.append(f"{folder.name} ({problem})")
            continue
        if folder.name != want or es.trt_version != version or es.device != device.name:
            found.append(f"{folder.name} (TensorRT {es.trt_version}, {es.device})")
            continue
        problems = check_engine_set(root, es, graphs)
        if problems:
            msg = f"the TensorRT plans in {folder} do not match this bundle: {'; '.join(problems)}; rebuild: {build}"
            if backend == "tensorrt":
                raise BundleError(msg)
            return EngineChoice("onnxruntime", note=msg)
        return EngineChoice("tensorrt", folder, es, f"TensorRT {version} plans for {device.name}")
    have = f"found: {', '.join(found)}" if found else "none built yet"
    msg = (
        f"no TensorRT plans for TensorRT {version} on {device.name} ({root / ENGINES_DIR / want}; {have}): "
        f"build them on this machine with `{build}`"
    )
    if backend == "tensorrt":
        raise BundleError(msg)
    return EngineChoice("onnxruntime", note=msg + "; using ONNX Runtime meanwhile")


# --------------------------------------------------------------------------------------------------------------
# Loading


@dataclass
class LoadedBundle:
    root: Path
    manifest: Manifest
    graphs: dict[str, GraphSpec]
    engines: dict[str, Engine]
    tasks: np.ndarray  # float32 [T, E]
    choice: EngineChoice
    flow_mode: FlowMode
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: verify, engines, warmup

    @property
    def backend(self) -> str:
        return next(iter(self.engines.values())).backend if self.engines else self.choice.kind

    def task_embedding(self, name: str) -> np.ndarray:
        try:
            row = self.manifest.tasks.row(name)
        except KeyError:
            raise BundleError(
                f"{self.root}: no task {name!r}; the bundle's tasks: {', '.join(self.manifest.tasks.names)}"
            ) from None
        return np.ascontiguousarray(self.tasks[row : row + 1], dtype=np.float32)

    def close(self) -> None:
        for e in self.engines.values():
            e.close()
        self.engines.clear()

    def __enter__(self) -> LoadedBundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_engines(
    root: Path,
    graphs: Mapping[str, GraphSpec],
    choice: EngineChoice,
    *,
    threads: int | None = None,
    providers: Iterable[str] | None = None,
) -> dict[str, Engine]:
    from harmowam_edge.engines.onnxruntime_engine import OnnxRuntimeEngine

    engines: dict[str, Engine] = {}
    try:
        for net, g in graphs.items():
            if choice.kind == "tensorrt":
                from harmowam_edge.engines.tensorrt_engine import TensorRTEngine

                assert choice.engine_set is not None
                engines[net] = TensorRTEngine(root / choice.engine_set.plans[net].file, g, net)
            else:
                engines[net] = OnnxRuntimeEngine(
                    root / g.file, g, net, threads=threads, providers=list(providers) if providers else None
                )
    except EngineError as e:
        for eng in engines.values():
            eng.close()
        raise BundleError(str(e)) from None
    return engines


def load_bundle(
    path: str | Path,
    *,
    backend: Backend = "auto",
    precision: Precision | None = None,
    flow_mode: FlowMode | None = None,
    threads: int | None = None,
    providers: Iterable[str] | None = None,
    verify: bool = True,
    warmup: int = 2,
) -> LoadedBundle:
    """Verify and open a bundle; `warmup` runs each engine that many times on zeros before returning."""
    t0 = time.perf_counter()
    root = Path(path)
    manifest = read_manifest(root)
    graphs = select_graphs(manifest, precision, flow_mode)
    problems = check_wiring(manifest, graphs)
    if verify:
        problems = verify_files(root, manifest) + problems
    if problems:
        raise BundleError(f"{root}: the bundle does not verify: " + "; ".join(problems))
    tasks = np.load(root / manifest.tasks.file, allow_pickle=False)
    t1 = time.perf_counter()
    choice = choose_backend(root, graphs, backend)
    warnings = []
    if choice.kind == "onnxruntime" and "export engines" in choice.note:
        warnings.append(choice.note)
        log.warning("%s", choice.note)
    if precision is not None:
        other = [f"{n} ({g.precision})" for n, g in graphs.items() if g.precision != precision]
        if other:
            warnings.append(f"precision {precision}: the bundle ships no {precision} graph of {', '.join(other)}")
    if manifest.provenance.untrained:
        warnings.append(f"{root}: the bundle comes from an UNTRAINED checkpoint (tests and demos only)")
    engines = open_engines(root, graphs, choice, threads=threads, providers=providers)
    t2 = time.perf_counter()
    for net, eng in engines.items():
        feeds = zero_feeds(eng.inputs)
        outputs: Mapping[str, np.ndarray] = {}
        for _ in range(warmup):
            outputs = eng.run(feeds)
        bad = [k for k, v in outputs.items() if np.asarray(v).dtype.kind == "f" and not np.isfinite(v).all()]
        if bad:
            for e in engines.values():
                e.close()
            raise BundleError(
                f"{root / graphs[net].file}: outputs non-finite values ({', '.join(bad)}) on zero inputs: the "
                "graph is broken; re-export the bundle"
            )
    t3 = time.perf_counter()
    return LoadedBundle(
        root=root,
        manifest=manifest,
        graphs=dict(graphs),
        engines=engines,
        tasks=tasks,
        choice=choice,
        flow_mode=flow_mode or manifest.policy.flow_mode,
        warnings=warnings,
        timings={"verify": t1 - t0, "engines": t2 - t1, "warmup": t3 - t2},
    )
