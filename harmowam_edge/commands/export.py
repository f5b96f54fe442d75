"""`harmowam-edge export ...`: commands of export (issue 3). Heavy imports stay inside the command bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True)


def _console() -> Any:
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
) -> None:
    """Write a seeded, UNTRAINED checkpoint (safetensors + config.json) for tests and demos."""
    from dataclasses import replace

    from export.checkpoint import describe_checkpoint, init_checkpoint, load_checkpoint
    from export.config import parse_camera
    from export.errors import ConfigError

    if cameras < 1:
        raise ConfigError(f"--cameras: expected >= 1, got {cameras}")
    base = parse_camera(camera, depth=depth)
    specs = [replace(base, name=f"cam{i}") for i in range(cameras)]
    task_list = [t.strip() for t in tasks.split(",") if t.strip()]
    path = init_checkpoint(out, preset=config, arms=arms, seed=seed, camera=specs, tasks=task_list, force=force)
    console = _console()
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
        str, typer.Option("--flow-mode", help="auto (measure, pick the faster), unrolled or step.")
    ] = "auto",
) -> None:
    """Checkpoint -> verified ONNX -> FP16/INT8 -> deploy bundle; ends with a table per network."""
    from rich.table import Table

    from export.bundle import build_bundle
    from export.errors import QuantizationBudgetError

    console = _console()
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
    console.print(
        f"ONNX vs PyTorch max action error {report.parity['max_action_error']:.2e} "
        f"(tolerance {report.parity['tolerance_actions']:.0e}); flow: unrolled "
        f"{report.flow_timing['unrolled_ms_p50']:.2f} ms vs step x{report.flow_timing['flow_steps']} "
        f"{report.flow_timing['step_looped_ms_p50']:.2f} ms -> {report.flow_mode}"
    )
    for w in report.warnings:
        console.print(f"[bold yellow]warning:[/] {w}")
    console.print(f"wrote {report.bundle} in {report.seconds:.1f} s")


def _calibration_source(calib: str, checkpoint: Path) -> Any:
    """A .npz directory or 'synthetic' goes to export as is; a RealSense recording is played back here."""
    if calib == "synthetic" or Path(calib).is_dir():
        return calib
    from export.errors import CalibrationDataError

    path = Path(calib)
    if not path.exists():
        raise CalibrationDataError(f"{path}: calibration data not found (a .npz directory or a .bag/.db3 recording)")
    if path.suffix not in (".bag", ".db3"):
        raise CalibrationDataError(f"{path}: expected a directory of .npz observations or a .bag/.db3 recording")
    return _recording_observations(path, checkpoint)


def _recording_observations(path: Path, checkpoint: Path) -> Any:
    from export.errors import CalibrationDataError

    raise CalibrationDataError(
        f"{path}: reading RealSense recordings needs the runtime's playback source, which is not available "
        "in this build; export frames to a directory of .npz observations (docs/export.md)"
    )
