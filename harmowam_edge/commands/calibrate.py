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
    from harmowam_edge.commands import option_checks as checks

    checks.positive("--max-view-error", max_view_error, "pixels")
    checks.int_range("--min-views", min_views, 1)
    checks.int_range("--every", every, 1)
    checks.int_range("--width", width, 1)
    checks.int_range("--height", height, 1)
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


@app.command()
def handeye(
    calib: Annotated[Path, typer.Option("--calib", help="calibration file with intrinsics (extrinsics are added)")],
    mode: Annotated[str, typer.Option("--mode", help="eye-in-hand (camera on the gripper) or eye-to-hand")],
    poses: Annotated[Path | None, typer.Option("--poses", help="pose file (see docs/calibration.md)")] = None,
    port: Annotated[str | None, typer.Option("--port", help="arm serial port: read joint states live")] = None,
    urdf: Annotated[Path | None, typer.Option("--urdf", help="URDF of the arm (forward kinematics)")] = None,
    serial: Annotated[str | None, typer.Option("--serial", help="live: RealSense serial (default: the file's)")] = None,
    tip_link: Annotated[str | None, typer.Option("--tip-link", help="URDF link the camera/board is fixed to")] = None,
    board_spec: Annotated[str | None, typer.Option("--board", help="board spec (default: the one in --calib)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write here instead of updating --calib")] = None,
    save_poses: Annotated[
        Path | None, typer.Option("--save-poses", help="live: write the captured poses + images here")
    ] = None,
) -> None:
    """Hand-eye calibration with all five solvers; writes the extrinsics into the calibration file."""
    import numpy as np

    from calibration.errors import CalibrationError
    from calibration.file_format import load_calibration
    from calibration.geometry import rodrigues
    from calibration.handeye import MODES
    from calibration.handeye_pipeline import board_of, calibrate_and_store, handeye_with_arm, samples_from_pose_file

    if mode not in MODES:
        raise CalibrationError(f"--mode {mode!r}: expected eye-in-hand or eye-to-hand")
    if (poses is None) == (port is None):
        raise CalibrationError("give either --poses FILE or --port PORT --urdf FILE")
    if poses is not None:
        c = load_calibration(calib)
        spec = board_of(c, board_spec)
        sset, link = samples_from_pose_file(poses, c, spec, urdf, tip_link)
        for name, why in sset.skipped.items():
            _echo(f"skipped {name}: {why}")
        result = calibrate_and_store(calib, c, sset.samples, mode, link, out)
    else:
        if urdf is None:
            raise CalibrationError("--port needs --urdf FILE (forward kinematics of the arm)")
        assert port is not None
        result, _ = handeye_with_arm(
            calib,
            mode,
            port,
            urdf,
            serial,
            board=board_spec,
            tip_link=tip_link,
            out=out,
            save_poses=save_poses,
            ask=lambda q: typer.prompt(q, default="", show_default=False),
            progress=_echo,
        )
    parent = "gripper" if mode == "eye-in-hand" else "base"
    _echo(
        f"{result.poses} poses; motion: largest rotation {result.diversity.max_rotation_deg:.0f} deg, axis spread "
        f"{result.diversity.axis_spread:.2f} ({result.diversity.advice})"
    )
    _echo(
        f"{'method':<11} {'t x/y/z (mm)':>26} {'rot vec (deg)':>24} {'spread mm':>9} {'deg':>6} {'px':>6} "
        f"{'vs best':>14}"
    )
    for name, m in result.methods.items():
        t = m.T[:3, 3] * 1000
        r = np.degrees(rodrigues(m.T[:3, :3]))
        px = f"{m.reprojection_px:.2f}" if m.reprojection_px is not None else "-"
        star = "*" if name == result.best.name else " "
        _echo(
            f"{star}{name:<10} {t[0]:8.1f} {t[1]:8.1f} {t[2]:8.1f} {r[0]:7.2f} {r[1]:7.2f} {r[2]:7.2f} "
            f"{m.translation_spread_mm:9.2f} {m.rotation_spread_deg:6.3f} {px:>6} "
            f"{m.translation_vs_best_mm:6.2f}mm {m.rotation_vs_best_deg:5.2f}d"
        )
    for name, why in result.failed.items():
        _echo(f" {name:<10} failed: {why}")
    rot, tr = result.agreement()
    _echo(f"methods agree within {tr:.2f} mm and {rot:.3f} deg; kept {result.best.name} (smallest residual)")
    _echo(f"camera in {parent} frame written to {out or calib}")


@app.command()
def check(
    calib: Annotated[Path, typer.Option("--calib", help="calibration file to verify")],
    camera: Annotated[
        str | None, typer.Option("--camera", help="RealSense serial to check live (default: the file's serial)")
    ] = None,
    recording: Annotated[Path | None, typer.Option("--recording", help="check against a recording instead")] = None,
    images: Annotated[Path | None, typer.Option("--images", help="check against images instead")] = None,
    port: Annotated[str | None, typer.Option("--port", help="arm port: also check extrinsic drift")] = None,
    urdf: Annotated[Path | None, typer.Option("--urdf", help="URDF for the drift check")] = None,
    tip_link: Annotated[str | None, typer.Option("--tip-link", help="URDF link of the extrinsics")] = None,
    frames: Annotated[int, typer.Option("--frames", help="frames to use")] = 5,
    max_error: Annotated[float, typer.Option("--max-error", help="reprojection limit (px)")] = 1.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the result as JSON")] = None,
) -> None:
    """With the board in view: does the stored calibration still hold? Exit 0 = yes, 1 = recalibrate."""
    import json

    from calibration.check import CheckLimits
    from calibration.check_sources import run_check
    from harmowam_edge.commands import option_checks as checks

    checks.int_range("--frames", frames, 1)
    checks.positive("--max-error", max_error, "pixels")
    result = run_check(
        calib,
        camera=camera,
        recording=recording,
        images=images,
        port=port,
        urdf=urdf,
        tip_link=tip_link,
        frames=frames,
        limits=CheckLimits(reprojection_px=max_error),
    )
    _echo(f"reprojection with the stored intrinsics: {result.reprojection_px:.3f} px RMS over {result.frames} frames")
    if result.drift_mm is not None:
        _echo(f"extrinsic drift: {result.drift_mm:.1f} mm, {result.drift_deg:.2f} deg ({result.drift_px:.1f} px)")
    if result.depth is not None:
        d = result.depth
        _echo(
            f"depth at {d.distance_mm:.0f} mm: bias {d.bias_mm:+.1f} mm, noise {d.noise_mm:.1f} mm RMS "
            f"({d.points} px on the board)"
        )
    _echo(result.verdict())
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def bench(
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results as JSON here")] = None,
) -> None:
    """Accuracy on synthetic data with known truth: intrinsics (both boards) and hand-eye (every solver)."""
    from calibration.bench import run_bench
    from harmowam_edge.telemetry.benchreport import BenchReport, rows_from

    report = BenchReport("calibration", rows_from(run_bench()))  # machine facts name OpenCV (loaded by the bench)
    report.print_table("calibration bench (synthetic ground truth)")
    if json_out is not None:
        report.write(json_out)
        _echo(f"wrote {json_out}")
