"""`harmowam-edge calibrate ...`: commands of calibration (issue 6). Heavy imports stay inside the command bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


def _echo(line: str) -> None:
    typer.echo(line)


@app.command()
def board(
    spec: Annotated[
        str, typer.Option("--spec", help="e.g. chessboard:9x6:0.025 or charuco:7x5:0.04:0.03:DICT_5X5_100")
    ],
    out: Annotated[Path, typer.Option("--out", help="board.png or board.pdf (vector)")],
    dpi: Annotated[
        float, typer.Option("--dpi", help="PNG resolution (the PNG stores it, so it prints at true size)")
    ] = 300.0,
    paper: Annotated[str, typer.Option("--paper", help="fit (page = board + margin), a4, a3 or letter")] = "fit",
) -> None:
    """Write a printable calibration board at true physical size."""
    from calibration.boards import BoardSpec
    from calibration.printable import write_board

    printed = write_board(BoardSpec.parse(spec), out, dpi=dpi, paper=paper)
    _echo(
        f"wrote {printed.path}: page {printed.page_mm[0]:.1f} x {printed.page_mm[1]:.1f} mm, squares area "
        f"{printed.board_mm[0]:.1f} x {printed.board_mm[1]:.1f} mm, square {printed.square_mm:.2f} mm"
    )
    _echo(
        "print at 100% scale (no fit-to-page), glue it flat on a rigid plate, and measure a square: if it is not "
        f"{printed.square_mm:.2f} mm, give the measured size in the board spec"
    )


@app.command()
def intrinsics(
    board_spec: Annotated[str, typer.Option("--board", help="board spec, e.g. chessboard:9x6:0.025")],
    out: Annotated[Path, typer.Option("--out", help="calibration file to write (.json, or .yaml)")],
    images: Annotated[Path | None, typer.Option("--images", help="directory of board images")] = None,
    recording: Annotated[Path | None, typer.Option("--recording", help="RealSense recording (.db3/.bag)")] = None,
    serial: Annotated[str | None, typer.Option("--serial", help="live RealSense serial: guided capture")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="report PNG (coverage, per-view errors, overlay)")
    ] = None,
    model: Annotated[
        str, typer.Option("--distortion", help="plumb_bob (5 coeffs) or rational_polynomial (8)")
    ] = "plumb_bob",
    max_view_error: Annotated[float, typer.Option("--max-view-error", help="drop views over this RMS (px)")] = 1.0,
    min_views: Annotated[int, typer.Option("--min-views", help="fewest views to calibrate from")] = 5,
    every: Annotated[int, typer.Option("--every", help="recording: look at every Nth frame")] = 3,
    width: Annotated[int, typer.Option("--width", help="live: colour stream width")] = 1280,
    height: Annotated[int, typer.Option("--height", help="live: colour stream height")] = 720,
    save_views: Annotated[
        Path | None, typer.Option("--save-views", help="live: save kept views to this folder")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="camera name to store (as in the bundle's cameras)")] = "",
    camera_serial: Annotated[
        str, typer.Option("--camera-serial", help="images: serial of the camera they came from")
    ] = "",
) -> None:
    """Calibrate a camera's intrinsics from board views; prints RMS, camera matrix and distortion."""
    from calibration.boards import BoardSpec
    from calibration.errors import CalibrationError
    from calibration.file_format import CameraId
    from calibration.pipeline import intrinsics_from_images, intrinsics_from_recording, intrinsics_live

    sources = [s for s in (images, recording, serial) if s]
    if len(sources) != 1:
        raise CalibrationError("give exactly one of --images DIR, --recording FILE or --serial S")
    spec = BoardSpec.parse(board_spec)
    if images is not None:
        run = intrinsics_from_images(
            images,
            spec,
            out,
            report=report,
            model=model,
            max_view_rms_px=max_view_error,
            min_views=min_views,
            camera=CameraId(camera_serial, "color", name, ""),
        )
    elif recording is not None:
        run = intrinsics_from_recording(
            recording,
            spec,
            out,
            report=report,
            model=model,
            every=every,
            max_view_rms_px=max_view_error,
            min_views=min_views,
            progress=_echo,
            name=name,
        )
    else:
        assert serial is not None
        if save_views is not None:
            save_views.mkdir(parents=True, exist_ok=True)
        run = intrinsics_live(
            serial,
            spec,
            out,
            width=width,
            height=height,
            report=report,
            model=model,
            save_dir=save_views,
            progress=_echo,
            name=name,
        )
    r = run.result
    i = r.intrinsics
    _echo(
        f"RMS reprojection error: {r.rms_px:.3f} px over {len(r.used)} views "
        f"({len(r.dropped)} dropped, board not found in {len(r.no_board)})"
    )
    for v in r.dropped:
        _echo(f"  dropped {v.name}: {v.dropped_because}")
    _echo("camera matrix:")
    for row in i.camera_matrix:
        _echo("  [" + "  ".join(f"{x:10.4f}" for x in row) + "]")
    _echo(f"distortion ({i.distortion_model}): " + " ".join(f"{c:+.6f}" for c in i.distortion))
    if i.std:
        _echo("1-sigma: " + ", ".join(f"{k} {v:.3f}" for k, v in list(i.std.items())[:4]) + " px")
    _echo(f"corner coverage: {r.coverage:.0%} of the image")
    if run.factory is not None:
        d = run.factory["difference"]
        _echo(
            f"factory intrinsics ({run.factory['distortion_model']}): mean {d['mean_px']:.2f} px, "
            f"max {d['max_px']:.2f} px from this calibration (dfx {d['dfx_px']:+.2f}, dfy {d['dfy_px']:+.2f}, "
            f"dcx {d['dcx_px']:+.2f}, dcy {d['dcy_px']:+.2f} px)"
        )
    _echo(f"wrote {out}" + (f" and {report}" if report else ""))


@app.command()
def show(file: Annotated[Path, typer.Argument(help="calibration file")]) -> None:
    """Print a calibration file in words."""
    from calibration.file_format import load_calibration
    from calibration.geometry import rodrigues

    c = load_calibration(file)
    i = c.intrinsics
    _echo(f"{file}: schema {c.schema_version}, created {c.created_utc} by {c.tool or 'unknown'}")
    _echo(f"camera: {c.camera.describe()}" + (f", name {c.camera.name}" if c.camera.name else ""))
    _echo(f"image: {i.width}x{i.height}; board {c.board or '?'}; source {c.method.get('source', '?')}")
    _echo(f"fx {i.fx:.4f}  fy {i.fy:.4f}  cx {i.cx:.4f}  cy {i.cy:.4f}")
    _echo(f"distortion ({i.distortion_model}): " + " ".join(f"{x:+.6f}" for x in i.distortion))
    res = c.residuals
    if res:
        used = [v for v in res.get("views", []) if v.get("used")]
        dropped = [v for v in res.get("views", []) if not v.get("used")]
        _echo(
            f"RMS {res.get('rms_px', float('nan')):.3f} px over {len(used)} views"
            + (f"; dropped: {', '.join(v['name'] for v in dropped)}" if dropped else "")
        )
    if c.factory:
        d = c.factory.get("difference", {})
        _echo(
            f"factory intrinsics: mean {d.get('mean_px', float('nan')):.2f} px, "
            f"max {d.get('max_px', float('nan')):.2f} px from this calibration"
        )
    e = c.extrinsics
    if e is None:
        _echo("extrinsics: none (run `harmowam-edge calibrate handeye`)")
    else:
        import numpy as np

        t = e.T_parent_camera[:3, 3] * 1000
        r = np.degrees(rodrigues(e.T_parent_camera[:3, :3]))
        _echo(
            f"extrinsics ({e.mode}, method {e.method}, {e.poses} poses): camera in {e.parent_frame}"
            + (f" ({e.parent_link})" if e.parent_link else "")
            + f": t = [{t[0]:.1f}, {t[1]:.1f}, {t[2]:.1f}] mm, rotation vector = [{r[0]:.2f}, {r[1]:.2f}, "
            f"{r[2]:.2f}] deg"
        )
        if e.residuals:
            _echo(
                "  residuals: "
                + ", ".join(f"{k} {v:.3g}" for k, v in e.residuals.items() if isinstance(v, (int, float)))
            )
