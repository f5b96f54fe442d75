"""`harmowam-edge export ...`: commands of export (issue 3). Heavy imports stay inside the command bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True)


def wide_console() -> Any:
    import shutil

    from rich.console import Console

    # Piped output (make, CI logs) would otherwise be cut at 80 columns and the table's names truncated.
    return Console(highlight=False, width=max(shutil.get_terminal_size((120, 24)).columns, 120))


@app.command("init")
def init(
    out: Annotated[Path, typer.Option("--out", help="Checkpoint directory to write.")],
    config: Annotated[str, typer.Option("--config", help="Preset: nano, small, base or reference.")] = "nano",
    arms: Annotated[int, typer.Option("--arms", help="1 (reference arm) or 2 (left_*, right_*).")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights and task embeddings.")] = 0,
    camera: Annotated[
        str, typer.Option("--camera", help="Camera resolution and rate, WIDTHxHEIGHT[@FPS] (D435 color).")
    ] = "640x480@30",
    cameras: Annotated[int, typer.Option("--cameras", help="Number of cameras (cam0, cam1, ...).")] = 1,
    depth: Annotated[bool, typer.Option("--depth", help="Add an aligned depth stream to every camera.")] = False,
    tasks: Annotated[str, typer.Option("--tasks", help="Comma-separated task names.")] = "reach,pick_and_place,push",
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty output directory.")] = False,
    like: Annotated[
        Path | None,
        typer.Option(
            "--like",
            help="Shape it like this checkpoint (architecture, cameras, tasks, action space; the other shape "
            "options are then ignored): a seeded network of a trained one's size, for timing.",
        ),
    ] = None,
    flow_steps: Annotated[
        int | None, typer.Option("--flow-steps", help="Flow steps of the predictive expert (default: the preset's).")
    ] = None,
) -> None:
    """Write a seeded, UNTRAINED checkpoint (safetensors + config.json) for tests and demos."""
    from dataclasses import replace

    from export.checkpoint import describe_checkpoint, init_checkpoint, load_checkpoint
    from export.config import parse_camera
    from harmowam_edge.commands import option_checks as checks

    checks.int_range("--arms", arms, 1, 2)
    checks.seed("--seed", seed)
    checks.int_range("--cameras", cameras, 1)
    checks.int_range("--flow-steps", flow_steps, 1)
    shape = load_checkpoint(like).config if like is not None else None
    base = parse_camera(camera, depth=depth)
    specs = [replace(base, name=f"cam{i}") for i in range(cameras)]
    task_list = [t.strip() for t in tasks.split(",") if t.strip()]
    path = init_checkpoint(
        out,
        preset=config,
        arms=arms,
        seed=seed,
        camera=specs,
        tasks=task_list,
        force=force,
        like=shape,
        flow_steps=flow_steps,
    )
    console = wide_console()
    console.print(describe_checkpoint(load_checkpoint(path)), markup=False)
    console.print(
        "[bold yellow]This checkpoint is UNTRAINED[/]: seeded random weights, for tests and demos. "
        "Its actions mean nothing; do not drive a real arm with it."
    )


def _fmt_err(v: float | None) -> str:
    return "-" if v is None else f"{v:.2e}"


def _fmt_size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _print_quant_report(console: Any, report: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(
        title=f"{report.get('precision', '').upper()} accuracy on {report.get('holdout', '?')} held-out observations"
    )
    for col in ("path", "error p50", "error p99", "max", "% range p99", "% range max"):
        t.add_column(col, justify="right" if col != "path" else "left")
    for path, e in report.get("end_to_end", {}).items():
        t.add_row(
            path,
            f"{e['abs_p50']:.2e}",
            f"{e['abs_p99']:.2e}",
            f"{e['abs_max']:.2e}",
            f"{e['pct_range_p99']:.3f} %",
            f"{e['pct_range_max']:.3f} %",
        )
    console.print(t)
    gate = report.get("gate", {})
    if gate:
        console.print(
            f"gate decision agreement {100 * gate['decision_agreement']:.1f} % "
            f"(max |Δw| {gate['max_weight_error']:.2e}); budget: {report.get('budget', {})}"
        )
    for network, decision in report.get("decisions", {}).items():
        console.print(f"{network}: {decision}")
    console.print(f"verdict: {report.get('verdict', '')}")


@app.command("bundle")
def bundle(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint directory (config.json + weights.safetensors).")],
    out: Annotated[Path, typer.Option("--out", help="Bundle directory to write (refused if it exists).")],
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or int8.")] = "fp32",
    calib: Annotated[
        str | None,
        typer.Option(
            "--calib",
            help="Calibration observations: a directory of .npz files, a RealSense recording (.bag/.db3), "
            "or 'synthetic' (untrained demo checkpoints only). Required for int8.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bundle; write over budget.")] = False,
    budget: Annotated[
        float, typer.Option("--budget", help="INT8/FP16 error budget: p99 action error, % of each joint's range.")
    ] = 1.0,
    min_gate_agreement: Annotated[
        float, typer.Option("--min-gate-agreement", help="Minimum gate decision agreement with FP32 (0..1).")
    ] = 0.99,
    flow_mode: Annotated[
        str,
        typer.Option(
            "--flow-mode",
            help="The flow graph the runtime runs: unrolled (default; one call per chunk), step (the one-step "
            "graph looped), or auto (time both here, take the faster: the bundle then depends on this machine's load).",
        ),
    ] = "unrolled",
    time_flow: Annotated[
        bool,
        typer.Option("--time-flow", help="Time both flow graphs into reports/flow_mode.json (does not choose)."),
    ] = False,
    int8_activations: Annotated[
        str,
        typer.Option(
            "--int8-activations",
            help="s8: symmetric int8 (TensorRT, ARM; default). u8: uint8, ONNX Runtime's fast path on x86 only.",
        ),
    ] = "s8",
    int8_force: Annotated[
        str | None,
        typer.Option(
            "--int8-force",
            help="Comma-separated networks to put in INT8 even where they measure over budget (world_model, "
            "reactive_expert, gate, predictive_expert); the others go INT8 only where they measure safe.",
        ),
    ] = None,
) -> None:
    """Checkpoint -> verified ONNX -> FP16/INT8 -> deploy bundle; ends with a table per network."""
    from rich.table import Table

    from export.bundle import build_bundle
    from export.errors import QuantizationBudgetError
    from harmowam_edge.commands import option_checks as checks

    checks.positive("--budget", budget, "percent")
    checks.fraction("--min-gate-agreement", min_gate_agreement)
    console = wide_console()
    calib_source: Any = None
    if calib is not None:
        calib_source = _calibration_source(calib, checkpoint)
    with console.status("exporting") as status:

        def progress(msg: str) -> None:
            status.update(msg)
            console.print(f"[dim]·[/] {msg}")

        try:
            report = build_bundle(
                checkpoint,
                out,
                precision=precision,
                calib=calib_source,
                force=force,
                budget_pct=budget,
                min_gate_agreement=min_gate_agreement,
                flow_mode=flow_mode,
                progress=progress,
                int8_activations=int8_activations,
                time_flow=time_flow,
                int8_force=[n.strip() for n in int8_force.split(",") if n.strip()] if int8_force else (),
            )
        except QuantizationBudgetError as e:
            _print_quant_report(console, e.report)
            raise
    table = Table(title=f"bundle {report.bundle} ({report.precision}, flow mode {report.flow_mode})")
    for col in ("network", "precision", "size", "params", "MFLOPs", "parity err", "quant err"):
        table.add_column(col, justify="left" if col in ("network", "precision") else "right")
    for r in report.rows:
        table.add_row(
            r.network,
            r.precision,
            _fmt_size(r.size_bytes),
            f"{r.params / 1e6:.2f} M",
            f"{r.flops / 1e6:.1f}",
            _fmt_err(r.parity_error),
            _fmt_err(r.quant_error),
        )
    if report.quantization is not None:
        _print_quant_report(console, report.quantization)
    console.print(table)
    ft = report.flow_timing
    timed = (
        f" (timed here: unrolled {ft['unrolled_ms_p50']:.2f} ms vs step x{ft['flow_steps']} "
        f"{ft['step_looped_ms_p50']:.2f} ms)"
        if ft is not None
        else ""
    )
    console.print(
        f"ONNX vs PyTorch max action error {report.parity['max_action_error']:.2e} "
        f"(tolerance {report.parity['tolerance_actions']:.0e}); flow mode {report.flow_mode}{timed}"
    )
    for w in report.warnings:
        console.print(f"[bold yellow]warning:[/] {w}")
    console.print(f"wrote {report.bundle} in {report.seconds:.1f} s")


def _calibration_source(calib: str, checkpoint: Path) -> Any:
    """A .npz directory or 'synthetic' goes to export as is; RealSense recordings are played back here.

    Several cameras: one recording per camera, comma-separated in the checkpoint's camera order.
    """
    if calib == "synthetic" or Path(calib).is_dir():
        return calib
    from export.errors import CalibrationDataError

    paths = [Path(p) for p in calib.split(",") if p]
    for path in paths:
        if not path.exists():
            raise CalibrationDataError(
                f"{path}: calibration data not found (a .npz directory or a .bag/.db3 recording)"
            )
        if path.suffix not in (".bag", ".db3"):
            raise CalibrationDataError(f"{path}: expected a directory of .npz observations or a .bag/.db3 recording")
    return _recording_observations(paths, checkpoint)


def _recording_observations(paths: list[Path], checkpoint: Path) -> list[dict[str, Any]]:
    """Frames of RealSense recordings (the runtime's playback source, every frame in order) as observations.

    Recordings carry frames only: export pairs each with a joint state drawn from the checkpoint's proprio
    statistics and cycles the tasks (docs/export.md). Frames from several recordings are paired by index.
    """
    from dataclasses import replace

    import numpy as np

    from export.calibration import MAX_OBSERVATIONS
    from export.checkpoint import load_config
    from export.errors import CalibrationDataError
    from harmowam_edge.bundle.schema import depth_input, image_input
    from harmowam_edge.cameras import RealSenseSource, probe_recording, recording_mismatch

    cfg = load_config(checkpoint)
    if len(paths) != len(cfg.cameras):
        raise CalibrationDataError(
            f"--calib: {len(paths)} recording(s) for {len(cfg.cameras)} camera(s) "
            f"({', '.join(c.name for c in cfg.cameras)}); give one per camera, comma-separated, in that order"
        )
    for spec, path in zip(cfg.cameras, paths, strict=True):
        _, profiles = probe_recording(path)
        why = recording_mismatch(spec, profiles)
        if why:
            raise CalibrationDataError(f"{path}: {why}")
    sources = [
        RealSenseSource.playback(replace(spec, name=spec.name), path, realtime=False)
        for spec, path in zip(cfg.cameras, paths, strict=True)
    ]
    kept: list[dict[str, Any]] = []
    stride = 1
    for index, frames in enumerate(zip(*(s.frames() for s in sources), strict=False)):
        if index % stride == 0:
            obs: dict[str, Any] = {}
            for i, (spec, frame) in enumerate(zip(cfg.cameras, frames, strict=True)):
                obs[image_input(i)] = frame.color
                if spec.has_depth:
                    if frame.depth is None:
                        raise CalibrationDataError(f"{paths[i]}: frame {frame.frame_number} has no depth")
                    depth = frame.depth
                    if abs(frame.depth_units_m - spec.depth_units_m) > 1e-9:
                        scaled = depth.astype(np.float64) * (frame.depth_units_m / spec.depth_units_m)
                        depth = np.clip(np.rint(scaled), 0, 65535).astype(np.uint16)
                    obs[depth_input(i)] = depth
            kept.append(obs)
            if len(kept) >= MAX_OBSERVATIONS:
                # Keep the whole recording covered: drop every other kept frame, take half as many from now on.
                kept = kept[::2]
                stride *= 2
    if not kept:
        raise CalibrationDataError(f"{', '.join(map(str, paths))}: the recording(s) delivered no frames")
    return kept


@app.command("engines")
def engines(
    bundle_dir: Annotated[Path, typer.Argument(help="An exported bundle directory.")],
    networks: Annotated[
        str | None, typer.Option("--networks", help="Comma-separated networks (default: all in the bundle).")
    ] = None,
    workspace_mb: Annotated[int, typer.Option("--workspace-mb", help="TensorRT workspace memory limit.")] = 1024,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild engines that exist for this TensorRT/device.")
    ] = False,
) -> None:
    """Build TensorRT engines for a bundle on this machine (the Jetson): engines/<trt-version>_<device>/."""
    from rich.table import Table

    from export.tensorrt import build_engines
    from harmowam_edge.commands import option_checks as checks

    checks.int_range("--workspace-mb", workspace_mb, 1)
    console = wide_console()
    names = [n.strip() for n in networks.split(",") if n.strip()] if networks else None
    with console.status("building engines") as status:

        def progress(msg: str) -> None:
            status.update(msg)
            console.print(f"[dim]·[/] {msg}")

        report = build_engines(bundle_dir, names, workspace_mb=workspace_mb, force=force, progress=progress)
    t = Table(title=f"TensorRT {report.trt_version} on {report.device.name} (sm {report.device.compute_capability})")
    for col in ("network", "precision", "plan", "build s"):
        t.add_column(col, justify="left" if col in ("network", "precision") else "right")
    for p in report.plans:
        t.add_row(p.network, p.precision, _fmt_size(p.size_bytes), f"{p.seconds:.1f}")
    console.print(t)
    console.print(f"wrote {report.folder}")


@app.command("bench")
def bench(
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    presets: Annotated[
        str, typer.Option("--presets", help="Comma-separated presets (default: all four).")
    ] = "nano,small,base,reference",
) -> None:
    """PyTorch eager vs ONNX Runtime FP32 vs INT8 per network and policy step, 2 threads, every preset."""
    import os

    # torch's OpenMP workers would otherwise spin after each eager call and steal the cores ONNX Runtime is
    # timed on; must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from rich.table import Table

    from export.bench import ENGINES, PRESETS, run_bench
    from export.errors import ConfigError
    from harmowam_edge.telemetry.benchreport import BenchReport, rows_from

    chosen = [p.strip() for p in presets.split(",") if p.strip()]
    for p in chosen:
        if p not in PRESETS:
            raise ConfigError(f"--presets: {p!r} is not a preset ({', '.join(PRESETS)})")
    console = wide_console()
    with console.status("benchmarking") as status:

        def say(msg: str) -> None:
            status.update(msg)
            console.print(f"[dim]·[/] {msg}")

        run = run_bench(chosen, say)
    report = BenchReport("export", rows_from(run.rows), notes=run.notes, machine_extra=run.machine)
    for r in run.results:
        t = Table(
            title=f"{r.preset}: {r.params['total'] / 1e6:.1f} M parameters, ms p50 / p99 "
            f"({run.machine['threads_used']} threads)"
        )
        for col in ("network / path", "params", "GFLOPs", *ENGINES, "fp32 vs torch", "int8 s8 / u8 vs fp32"):
            t.add_column(col, justify="left" if col == "network / path" else "right")
        for n, timings in [*r.networks.items(), *((f"{k} path", v) for k, v in r.steps.items())]:
            params = f"{r.params[n] / 1e6:.2f} M" if n in r.params else ""
            flops = f"{r.flops[n] / 1e9:.3f}" if n in r.flops else ""
            cells = [f"{timings[e].p50:.2f} / {timings[e].p99:.2f}" for e in ENGINES]
            t.add_row(
                n,
                params,
                flops,
                *cells,
                f"{timings['torch'].p50 / timings['ort_fp32'].p50:.1f}x",
                f"{timings['ort_fp32'].p50 / timings['ort_int8'].p50:.2f}x / "
                f"{timings['ort_fp32'].p50 / timings['ort_int8_u8'].p50:.2f}x",
            )
        console.print(t)
    m = report.machine()
    report.print_table(
        f"targets (design §6); shared machine: load average {m['load_avg_1m_at_start']} at the start, "
        f"{m['load_avg_1m']} at the end ({m['cores']} cores)",
        console=console,
        targets_only=True,
    )
    if json_out is not None:
        report.write(json_out)
        console.print(f"wrote {json_out}")
