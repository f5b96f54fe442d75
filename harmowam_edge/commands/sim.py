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
    rig: Annotated[bool, typer.Option("--rig/--no-rig", help="Also run the rig over its serial link.")] = True,
) -> None:
    """Render time per frame (640x480 and 160x120), physics speed, and the rig's link figures."""
    from harmowam_edge.sim.bench import run_bench

    report = run_bench(quick=quick, rig=rig)
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


def _parse_size(text: str) -> tuple[int, int]:
    from harmowam_edge.errors import ConfigError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 8 or h < 8 or w > 4096 or h > 4096:
        raise ConfigError(f"--size {text!r}: expected 8..4096 pixels each way")
    return w, h


def bundle_cameras_and_arms(bundle: Path) -> tuple[tuple[object, ...], int]:
    """The cameras and arm count a bundle expects (reads manifest.json only: no engines, no runtime)."""
    import json

    from harmowam_edge.bundle.schema import MANIFEST_NAME, Manifest
    from harmowam_edge.errors import BundleError

    path = bundle / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: not found (is {bundle} a deploy bundle?)") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON ({e})") from None
    manifest = Manifest.from_dict(raw, str(path))
    return manifest.cameras, len(manifest.action_space.arms)


@app.command()
def demos(
    task: Annotated[str, typer.Option("--task", help="reach, pick or pick_and_place, optionally _<object>.")],
    episodes: Annotated[int, typer.Option("--episodes", help="How many episodes (seeds seed, seed+1, ...).")],
    out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the episodes.")],
    object_name: Annotated[
        str | None, typer.Option("--object", help="The object (default: from the task name or the seed).")
    ] = None,
    arms: Annotated[int, typer.Option("--arms", help="1 or 2 arms.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first episode.")] = 0,
    cameras: Annotated[
        str, typer.Option("--cameras", help="Comma-separated camera names (front, side, top, wrist).")
    ] = "front",
    size: Annotated[str, typer.Option("--size", help="Camera resolution WIDTHxHEIGHT.")] = "640x480",
    fps: Annotated[int, typer.Option("--fps", help="Camera frame rate.")] = 30,
    depth: Annotated[bool, typer.Option("--depth/--no-depth", help="Record aligned z16 depth too.")] = True,
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="Take cameras and arm count from this deploy bundle.")
    ] = None,
    record_hz: Annotated[float, typer.Option("--record-hz", help="Recorded steps per second.")] = 10.0,
) -> None:
    """Scripted demonstrations (IK reach / pick / pick-and-place) over the simulated rig's serial links."""
    from harmowam_edge.bundle.schema import CameraSpec
    from harmowam_edge.errors import ConfigError
    from harmowam_edge.sim.demos import collect_demos

    if bundle is not None:
        specs, arms = bundle_cameras_and_arms(bundle)
    else:
        w, h = _parse_size(size)
        names = [n.strip() for n in cameras.split(",") if n.strip()]
        if not names:
            raise ConfigError("--cameras: expected at least one camera name")
        streams = ("color", "depth") if depth else ("color",)
        specs = tuple(CameraSpec(n, w, h, fps, streams) for n in names)
    if not record_hz > 0:
        raise ConfigError(f"--record-hz: expected a rate > 0, got {record_hz}")
    meta = collect_demos(
        task,
        episodes,
        out,
        arms=arms,
        cameras=specs,  # type: ignore[arg-type]
        object_name=object_name,
        seed=seed,
        record_hz=record_hz,
        progress=typer.echo,
    )
    done = meta["episodes"]
    ok = sum(1 for e in done if e["success"])
    typer.echo(f"scripted expert: {ok}/{len(done)} episodes succeeded ({meta['success_rate']:.0%}); wrote {out}")
