"""`harmowam-edge sim ...`: commands of the simulated rig (issue 5). Heavy imports stay inside the command bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


def _print_bench_table(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="harmowam-edge sim bench")
    for col in ("metric", "value", "unit", "target", "ok"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for row in report.rows:  # type: ignore[attr-defined]
        ok = "" if row.ok is None else ("yes" if row.ok else "NO")
        table.add_row(row.metric, f"{row.value:.4g}", row.unit, row.target, ok)
    console = Console()
    console.print(table)
    for note in report.notes:  # type: ignore[attr-defined]
        console.print(f"[dim]{note}[/dim]")


@app.command()
def bench(
    json_out: Annotated[Path, typer.Option("--json", help="Write the figures here (JSON).")] = Path(
        "bench-results/sim.json"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="Fewer repeats (a smoke run, not figures to report).")] = False,
) -> None:
    """Render time per frame (640x480 and 160x120), physics speed, and the rig's link figures."""
    from harmowam_edge.sim.bench import run_bench

    report = run_bench(quick=quick)
    _print_bench_table(report)
    report.write(json_out)
    typer.echo(f"wrote {json_out}")


@app.command()
def urdf(
    out: Annotated[Path, typer.Option("--out", help="Where to write the URDF.")],
    prefix: Annotated[str, typer.Option("--prefix", help='Name prefix, e.g. "left_" for a dual-arm rig.')] = "",
) -> None:
    """Write the reference arm's URDF (the simulated arm's kinematics, for hand-eye calibration tools)."""
    from harmowam_edge.sim.urdf import write_urdf

    write_urdf(out, prefix)
    typer.echo(f"wrote {out}")


@app.command()
def scene(
    out: Annotated[Path, typer.Option("--out", help="Where to write the MJCF.")],
    arms: Annotated[int, typer.Option("--arms", help="1 or 2 arms.")] = 1,
) -> None:
    """Write the simulated rig's MJCF scene (open it in MuJoCo's viewer to look around)."""
    from harmowam_edge.bundle.schema import CameraSpec
    from harmowam_edge.sim.scene import scene_xml

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(scene_xml(arms, [CameraSpec("front", 640, 480, 30, ("color", "depth"))]))
    typer.echo(f"wrote {out}")
