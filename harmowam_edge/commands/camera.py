"""`harmowam-edge camera ...`: RealSense camera commands (issue 4). Heavy imports stay inside the command bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_cameras(
    profiles: Annotated[bool, typer.Option("--profiles", help="Also list every color/depth stream profile.")] = False,
) -> None:
    """The RealSense devices connected now: name, serial, firmware, USB, stream profiles."""
    from rich.console import Console
    from rich.table import Table

    from harmowam_edge.cameras.realsense import list_devices

    devices = list_devices()
    if not devices:
        typer.echo("no RealSense device found (check the USB cable and `lsusb | grep 8086`)")
        return
    table = Table(title="RealSense devices")
    for col in ("name", "serial", "firmware", "usb", "color", "depth"):
        table.add_column(col)
    for d in devices:

        def summary(stream: str, d: object = d) -> str:
            ps = [p for p in d.profiles if p.stream == stream]  # type: ignore[attr-defined]
            if not ps:
                return "-"
            if profiles:
                return "\n".join(p.describe().split(" ", 1)[1] for p in ps)
            sizes = sorted({(p.width, p.height) for p in ps}, key=lambda s: s[0] * s[1])
            fps = sorted({p.fps for p in ps})
            return f"{sizes[0][0]}x{sizes[0][1]}..{sizes[-1][0]}x{sizes[-1][1]} @ {fps[0]}..{fps[-1]} fps"

        table.add_row(d.name, d.serial, d.firmware, d.usb, summary("color"), summary("depth"))
    Console().print(table)


@app.command()
def record(
    out: Annotated[Path, typer.Option("--out", help="The recording to write (.db3).")],
    duration: Annotated[float, typer.Option("--duration", help="Seconds to record.")],
    serial: Annotated[str | None, typer.Option("--serial", help="Device serial (default: the only one).")] = None,
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="Record what this bundle's camera expects (size, fps, depth).")
    ] = None,
    camera_name: Annotated[str | None, typer.Option("--camera", help="Which of the bundle's cameras.")] = None,
    width: Annotated[int, typer.Option("--width")] = 640,
    height: Annotated[int, typer.Option("--height")] = 480,
    fps: Annotated[int, typer.Option("--fps")] = 30,
    depth: Annotated[bool, typer.Option("--depth/--no-depth", help="Record the depth stream too.")] = False,
) -> None:
    """Record a RealSense device to a file (for replay, INT8 calibration and the calibration CLI)."""
    from harmowam_edge.cameras.realsense import record_live
    from harmowam_edge.commands import option_checks as checks
    from harmowam_edge.errors import ConfigError

    checks.positive("--duration", duration)
    for option, value in (("--width", width), ("--height", height), ("--fps", fps)):
        checks.int_range(option, value, 1)
    if bundle is not None:
        from harmowam_edge.bundle.loader import read_manifest

        cams = read_manifest(bundle).cameras
        spec = next((c for c in cams if c.name == camera_name), None) if camera_name else cams[0]
        if spec is None:
            raise ConfigError(f"--camera {camera_name!r}: the bundle's cameras are {', '.join(c.name for c in cams)}")
        width, height, fps, depth = spec.width, spec.height, spec.fps, spec.has_depth
    n = record_live(out, serial=serial, duration_s=duration, width=width, height=height, fps=fps, depth=depth)
    typer.echo(f"recorded {n} framesets ({width}x{height} @ {fps} fps{', depth' if depth else ''}) to {out}")
