"""`harmowam-edge calibrate ...` end to end on rendered images, pose files and real RealSense recordings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.boards import BoardSpec
from calibration.detection import BoardDetector
from calibration.file_format import load_calibration, save_calibration
from calibration.geometry import invert, quat_from_matrix, transform_distance
from calibration.printable import png_dpi
from calibration.synthetic import render_view

from .conftest import CAMERA, CHESSBOARD, render_set
from .handeye_data import make_samples, truth


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harmowam_edge.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("views")
    images, _ = render_set(CHESSBOARD, 7, seed=21)
    for i, img in enumerate(images):
        cv2.imwrite(str(d / f"view_{i:02d}.png"), img)
    return d


@pytest.fixture(scope="module")
def calibrated(image_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("calib") / "cam.json"
    report = out.with_suffix(".png")
    r = run(
        "calibrate",
        "intrinsics",
        "--images",
        str(image_dir),
        "--board",
        CHESSBOARD,
        "--out",
        str(out),
        "--report",
        str(report),
        "--name",
        "wrist",
        "--camera-serial",
        "123456789012",
    )
    return out, r


def test_intrinsics_cli_on_an_image_directory(calibrated) -> None:
    out, r = calibrated
    assert r.returncode == 0, r.stderr
    assert "RMS reprojection error" in r.stdout
    assert "camera matrix" in r.stdout
    assert "distortion (plumb_bob)" in r.stdout
    fx = float(re.search(r"\[\s*([\d.]+)", r.stdout.split("camera matrix:")[1]).group(1))
    assert abs(fx - CAMERA.fx) / CAMERA.fx < 0.005
    c = load_calibration(out)
    assert c.camera.serial == "123456789012"
    assert c.camera.name == "wrist"
    assert c.intrinsics.size == CAMERA.size
    assert len(c.residuals["views"]) == 7
    report = cv2.imread(str(out.with_suffix(".png")))
    assert report is not None
    assert report.shape[0] > 500
    assert report.shape[1] > 1000
    shown = run("calibrate", "show", str(out))
    assert shown.returncode == 0
    assert "serial 123456789012" in shown.stdout
    assert "extrinsics: none" in shown.stdout


def _fails(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("harmowam-edge: error: ")
    for w in words:
        assert w in line, line


def test_intrinsics_bad_inputs_give_one_clear_line(image_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "c.json")
    _fails(
        run("calibrate", "intrinsics", "--images", str(tmp_path / "nope"), "--board", CHESSBOARD, "--out", out),
        "no such image directory",
    )
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(3):
        cv2.imwrite(str(blank / f"{i}.png"), np.full((120, 160), 128, np.uint8))
    _fails(
        run("calibrate", "intrinsics", "--images", str(blank), "--board", CHESSBOARD, "--out", out),
        "was not found in any of the 3 views",
    )
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted(image_dir.glob("*.png"))[:3]:
        (few / p.name).write_bytes(p.read_bytes())
    _fails(
        run("calibrate", "intrinsics", "--images", str(few), "--board", CHESSBOARD, "--out", out),
        "only 3 view(s) show the board",
    )
    (few / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    _fails(
        run("calibrate", "intrinsics", "--images", str(few), "--board", CHESSBOARD, "--out", out),
        "zz_broken.png",
        "not a readable image",
    )
    _fails(
        run("calibrate", "intrinsics", "--images", str(image_dir), "--board", "chessboard:9x6:25", "--out", out),
        "did you mean 0.025",
    )
    _fails(run("calibrate", "intrinsics", "--board", CHESSBOARD, "--out", out), "exactly one of --images")
    assert not Path(out).exists()


def test_board_png_and_vector_pdf_at_true_size(tmp_path: Path) -> None:
    png, pdf = tmp_path / "b.png", tmp_path / "b.pdf"
    r = run("calibrate", "board", "--spec", CHESSBOARD, "--out", str(png), "--dpi", "200")
    assert r.returncode == 0, r.stderr
    assert "square 25.00 mm" in r.stdout
    assert png_dpi(png.read_bytes()) == pytest.approx(200, abs=0.1)
    img = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    spec = BoardSpec.parse(CHESSBOARD)
    det = BoardDetector(spec).detect(img)
    assert det is not None
    # Neighbouring corners one square apart: 25 mm at 200 dpi.
    assert np.linalg.norm(det.image_points[1] - det.image_points[0]) == pytest.approx(0.025 / 0.0254 * 200, abs=0.5)
    r = run("calibrate", "board", "--spec", "charuco:7x5:0.04:0.03:DICT_5X5_100", "--out", str(pdf), "--paper", "a3")
    assert r.returncode == 0, r.stderr
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-1.4")
    # The xref offsets point at the objects, so viewers open it.
    xref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    offsets = [int(line[:10]) for line in data[xref:].split(b"\n")[3:8]]
    for n, off in enumerate(offsets, start=1):
        assert data[off:].startswith(f"{n} 0 obj".encode())
    w_pt, h_pt = map(float, re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data).groups())
    assert (w_pt, h_pt) == (pytest.approx(420 / 25.4 * 72, abs=0.1), pytest.approx(297 / 25.4 * 72, abs=0.1))
    # Rasterise the PDF's own rectangles and find the board in them with all its ids.
    stream = data.split(b"stream\n", 1)[1].split(b"\nendstream", 1)[0]
    assert zlib.crc32(stream)  # non-empty
    scale = 4.0  # px per pt
    canvas = np.full((int(h_pt * scale), int(w_pt * scale)), 255, np.uint8)
    for x, y, w, h in re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re", stream):
        x0, y1 = float(x) * scale, (h_pt - float(y)) * scale
        x1, y0 = x0 + float(w) * scale, y1 - float(h) * scale
        canvas[round(y0) : round(y1), round(x0) : round(x1)] = 0
    charuco = BoardSpec.parse("charuco:7x5:0.04:0.03:DICT_5X5_100")
    det = BoardDetector(charuco).detect(canvas)
    assert det is not None
    assert det.count == charuco.corner_count
    _fails(run("calibrate", "board", "--spec", CHESSBOARD, "--out", str(tmp_path / "b.svg")), "expected a .png or .pdf")


def _handeye_images(tmp_path: Path, mode: str, motion: str = "diverse") -> tuple[Path, list]:
    samples = make_samples(mode, 10, seed=31, motion=motion, noise_px=0.0, noise_mm=0.2, noise_deg=0.03)
    spec = BoardSpec.parse(CHESSBOARD)
    rng = np.random.default_rng(0)
    entries = []
    for i, s in enumerate(samples):
        img = render_view(spec, CAMERA, s.T_cam_board, rng=rng, noise_sigma=1.0)
        name = f"pose_{i:02d}.png"
        cv2.imwrite(str(tmp_path / name), img)
        T = s.T_base_gripper
        if i % 2:
            entries.append({"image": name, "T_base_gripper": T.tolist()})
        else:
            entries.append(
                {
                    "image": name,
                    "translation": T[:3, 3].tolist(),
                    "quaternion_xyzw": quat_from_matrix(T[:3, :3]).tolist(),
                }
            )
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps({"format": "harmowam-edge/handeye-poses", "version": 1, "poses": entries}))
    return poses, samples


@pytest.mark.parametrize("mode", ["eye-in-hand", "eye-to-hand"])
def test_handeye_cli_from_a_pose_file(calibrated, tmp_path: Path, mode: str) -> None:
    calib, _ = calibrated
    poses, _ = _handeye_images(tmp_path, mode)
    out = tmp_path / "with_extrinsics.json"
    r = run("calibrate", "handeye", "--calib", str(calib), "--mode", mode, "--poses", str(poses), "--out", str(out))
    assert r.returncode == 0, r.stderr
    for method in ("tsai", "park", "horaud", "andreff", "daniilidis"):
        assert method in r.stdout
    assert "methods agree within" in r.stdout
    c = load_calibration(out)
    assert c.extrinsics is not None
    assert c.extrinsics.mode == mode
    dr, dt = transform_distance(c.extrinsics.T_parent_camera, truth(mode))
    assert np.degrees(dr) < 0.5
    assert dt < 0.005
    assert set(c.extrinsics.methods) == {"tsai", "park", "horaud", "andreff", "daniilidis"}
    assert "extrinsics (" + mode in run("calibrate", "show", str(out)).stdout
    # Drift check: the same poses' images agree with the stored extrinsics.
    if mode == "eye-in-hand":
        from calibration.check import CheckFrame, check_frames

        samples = make_samples(mode, 3, seed=77)
        spec = BoardSpec.parse(CHESSBOARD)
        rng = np.random.default_rng(1)
        frames = [
            CheckFrame(render_view(spec, CAMERA, s.T_cam_board, rng=rng), None, 0.001, s.T_base_gripper)
            for s in samples
        ]
        ok = check_frames(c, frames)
        assert ok.ok, ok.verdict()
        assert ok.drift_mm is not None
        assert ok.drift_mm < 3
        moved = load_calibration(out)
        assert moved.extrinsics is not None
        moved.extrinsics.T_parent_camera[:3, 3] += [0.01, 0.0, 0.0]  # the camera slipped 1 cm on its mount
        bad = check_frames(moved, frames)
        assert not bad.ok
        assert "extrinsics" in bad.verdict()
        assert bad.drift_mm is not None
        assert bad.drift_mm > 7


def test_handeye_refuses_degenerate_motion_and_other_cameras(calibrated, tmp_path: Path) -> None:
    calib, _ = calibrated
    poses, _ = _handeye_images(tmp_path, "eye-in-hand", motion="translation")
    _fails(
        run(
            "calibrate",
            "handeye",
            "--calib",
            str(calib),
            "--mode",
            "eye-in-hand",
            "--poses",
            str(poses),
            "--out",
            str(tmp_path / "x.json"),
        ),
        "degenerate motion",
        "translation only",
    )
    other = load_calibration(calib)
    small = tmp_path / "small"
    small.mkdir()
    for p in sorted(tmp_path.glob("pose_*.png"))[:4]:
        cv2.imwrite(str(small / p.name), cv2.resize(cv2.imread(str(p)), (320, 240)))
    (small / "poses.json").write_text(poses.read_text())
    _fails(
        run(
            "calibrate", "handeye", "--calib", str(calib), "--mode", "eye-in-hand", "--poses", str(small / "poses.json")
        ),
        "480x360 images but the images are 320x240",
    )
    assert other.extrinsics is None
    _fails(
        run("calibrate", "handeye", "--calib", str(calib), "--mode", "sideways", "--poses", str(poses)),
        "--mode 'sideways'",
    )


def test_check_cli_says_whether_to_recalibrate(calibrated, image_dir: Path, tmp_path: Path) -> None:
    calib, _ = calibrated
    r = run(
        "calibrate",
        "check",
        "--calib",
        str(calib),
        "--images",
        str(image_dir),
        "--frames",
        "3",
        "--json",
        str(tmp_path / "check.json"),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK: the calibration still holds" in r.stdout
    assert json.loads((tmp_path / "check.json").read_text())["ok"] is True
    # A calibration that no longer fits this lens (its distortion is gone, as for a swapped or refocused lens).
    # A focal-length change alone is largely absorbed by the board's pose fit in one view; depth reveals it.
    c = load_calibration(calib)
    from dataclasses import replace

    i = c.intrinsics
    stale = replace(c, intrinsics=replace(i, distortion=(0.0, 0.0, 0.0, 0.0, 0.0)))
    save_calibration(stale, tmp_path / "stale.json")
    r = run("calibrate", "check", "--calib", str(tmp_path / "stale.json"), "--images", str(image_dir))
    assert r.returncode == 1
    assert "RECALIBRATE: intrinsics" in r.stdout
    # A calibration made for another resolution is refused, naming both sizes.
    other = replace(c, intrinsics=replace(c.intrinsics, width=640, height=480))
    save_calibration(other, tmp_path / "other.json")
    _fails(
        run("calibrate", "check", "--calib", str(tmp_path / "other.json"), "--images", str(image_dir)),
        "640x480 images but the images are 480x360",
    )


# -- RealSense recordings (real pyrealsense2 playback of rs.software_device recordings) ---------------------------

rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 (the realsense extra) is not installed")


def _board_depth(
    T_cam_board: np.ndarray,  # noqa: N803
    bias_m: float,
    noise_m: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """z16 depth (mm) of the board plane seen through CAMERA, plus a bias and noise; background 2 m."""
    from calibration.camera_model import PinholeModel

    m = PinholeModel(CAMERA.width, CAMERA.height, CAMERA.fx, CAMERA.fy, CAMERA.cx, CAMERA.cy, "plumb_bob", CAMERA.dist)
    vv, uu = np.mgrid[0 : CAMERA.height, 0 : CAMERA.width]
    rays = m.rays(np.column_stack([uu.ravel(), vv.ravel()]).astype(np.float64))
    n = T_cam_board[:3, 2]
    z = (n @ T_cam_board[:3, 3]) / (np.column_stack([rays, np.ones(len(rays))]) @ n)
    z = np.where((z > 0) & (z < 2.0), z, 2.0).reshape(CAMERA.height, CAMERA.width)
    z = z + bias_m + rng.normal(0, noise_m, z.shape)
    return np.clip(z * 1000, 0, 65535).astype(np.uint16)


def test_recording_intrinsics_compared_with_factory_and_depth_check(tmp_path: Path) -> None:
    from harmowam_edge.cameras import StreamIntrinsics
    from tests.recordings import make_recording

    images, poses = render_set(CHESSBOARD, 10, seed=41)
    rng = np.random.default_rng(2)
    # The factory model of this (simulated) unit is a little off: 3 px in cx, 1% in focal length.
    factory = StreamIntrinsics(
        "color",
        CAMERA.width,
        CAMERA.height,
        CAMERA.fx * 1.01,
        CAMERA.fy * 1.01,
        CAMERA.cx + 3.0,
        CAMERA.cy,
        "inverse_brown_conrady",
        (0.0, 0.0, 0.0, 0.0, 0.0),
        "000123456789",
    )
    rec = make_recording(
        tmp_path / "board.db3",
        width=CAMERA.width,
        height=CAMERA.height,
        fps=30,
        frames=len(images),
        depth=True,
        color=lambda i: np.repeat(images[i][..., None], 3, axis=2),
        depth_fn=lambda i: _board_depth(poses[i], 0.004, 0.001, rng),
        intrinsics=factory,
        serial="000123456789",
        pace=False,
    )
    out = tmp_path / "rs.json"
    r = run(
        "calibrate",
        "intrinsics",
        "--recording",
        str(rec.path),
        "--board",
        CHESSBOARD,
        "--out",
        str(out),
        "--every",
        "1",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "factory intrinsics (inverse_brown_conrady)" in r.stdout
    c = load_calibration(out)
    assert c.camera.serial == "000123456789"
    assert c.factory is not None
    d = c.factory["difference"]
    assert d["dcx_px"] == pytest.approx(3.0, abs=1.0)
    assert d["dfx_px"] == pytest.approx(0.01 * CAMERA.fx, abs=1.5)
    assert d["mean_px"] > 2.0
    # Depth sanity on the same recording: 4 mm bias and 1 mm noise at the board's distance.
    r = run("calibrate", "check", "--calib", str(out), "--recording", str(rec.path), "--frames", "3")
    assert "depth at" in r.stdout, r.stdout + r.stderr
    bias = float(re.search(r"bias ([+-][\d.]+) mm", r.stdout).group(1))
    noise = float(re.search(r"noise ([\d.]+) mm", r.stdout).group(1))
    assert bias == pytest.approx(4.0, abs=1.0)
    assert noise == pytest.approx(1.0, abs=0.6)
    assert r.returncode == 0 or "depth" in r.stdout
    # The calibration refuses another camera's recording.
    other = tmp_path / "other.db3"
    make_recording(
        other,
        width=CAMERA.width,
        height=CAMERA.height,
        frames=3,
        serial="999",
        pace=False,
        color=lambda i: np.repeat(images[i][..., None], 3, axis=2),
    )
    _fails(
        run("calibrate", "check", "--calib", str(out), "--recording", str(other)),
        "serial 000123456789 but the camera in use is serial 999",
    )
    assert invert(np.eye(4)).shape == (4, 4)
