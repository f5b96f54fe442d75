"""The calibration file: round trips, strict reading with named fields, camera mismatch, no OpenCV needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calibration.errors import CalibrationFileError, CameraMismatchError
from calibration.file_format import (
    CameraCalibration,
    CameraId,
    Extrinsics,
    Intrinsics,
    load_calibration,
    save_calibration,
)
from calibration.geometry import exp_so3, make_transform


def _calib(with_extrinsics: bool = True) -> CameraCalibration:
    intr = Intrinsics(640, 480, 610.5, 611.0, 321.2, 239.9, "plumb_bob", (-0.1, 0.05, 0.001, -0.002, 0.01), {"fx": 0.3})
    ext = None
    if with_extrinsics:
        T = make_transform(exp_so3(np.array([0.1, -0.2, 1.5])), np.array([0.03, -0.01, 0.08]))
        ext = Extrinsics(
            "eye-in-hand",
            T,
            "park",
            parent_link="link_6",
            methods={"tsai": {"rotation_deg": 0.1}},
            residuals={"translation_mm": 0.8},
            board_pose=np.eye(4),
            poses=12,
            created_utc="x",
        )
    return CameraCalibration(
        CameraId("123456789012", "color", "wrist", "D435"),
        intr,
        method={"board": "chessboard:9x6:0.025", "views_used": 14},
        residuals={"rms_px": 0.21},
        extrinsics=ext,
        tool="test",
    )


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    c = _calib()
    path = save_calibration(c, tmp_path / f"cam{suffix}")
    back = load_calibration(path)
    assert back.camera == c.camera
    assert back.intrinsics == c.intrinsics
    assert back.extrinsics is not None
    assert c.extrinsics is not None
    np.testing.assert_allclose(back.extrinsics.T_parent_camera, c.extrinsics.T_parent_camera, atol=1e-12)
    assert back.extrinsics.parent_frame == "gripper"
    assert back.extrinsics.board_frame == "base"
    assert back.board == "chessboard:9x6:0.025"
    assert back.to_dict() == c.to_dict()


def test_file_is_plain_json_with_the_documented_fields(tmp_path: Path) -> None:
    d = json.loads(save_calibration(_calib(), tmp_path / "c.json").read_text())
    assert d["schema_version"] == 1
    assert d["camera"]["serial"] == "123456789012"
    assert d["camera"]["stream"] == "color"
    assert d["image_size"] == {"width": 640, "height": 480}
    assert d["intrinsics"]["camera_matrix"][0][0] == 610.5
    assert d["intrinsics"]["distortion_model"] == "plumb_bob"
    assert len(d["intrinsics"]["distortion"]) == 5
    assert d["extrinsics"]["parent_frame"] == "gripper"
    q = np.array(d["extrinsics"]["quaternion_xyzw"])
    assert np.linalg.norm(q) == pytest.approx(1.0)
    assert d["created_utc"]


def test_reader_does_not_import_opencv(tmp_path: Path) -> None:
    path = save_calibration(_calib(), tmp_path / "c.json")
    code = (
        "import sys\n"
        "from calibration.file_format import load_calibration\n"
        f"c = load_calibration({str(path)!r})\n"
        "assert c.intrinsics.fx == 610.5\n"
        "print(','.join(m for m in ('cv2', 'torch', 'pyrealsense2', 'pinocchio') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d.pop("image_size"), "image_size: missing"),
        (lambda d: d["intrinsics"].update(fx=-3), "intrinsics.fx: expected a number > 0"),
        (lambda d: d["intrinsics"].update(distortion=[0.1, 0.2]), "intrinsics.distortion: expected a list of 5"),
        (lambda d: d["intrinsics"].update(distortion_model="fisheye9"), "intrinsics.distortion_model"),
        (lambda d: d.update(schema_version=99), "schema_version 99 is not supported"),
        (lambda d: d.update(schema="something/else"), "not a harmowam-edge camera calibration"),
        (lambda d: d["extrinsics"].update(mode="eye-on-base"), "extrinsics.mode"),
        (
            lambda d: d["extrinsics"].update(T_parent_camera=[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
            "extrinsics.T_parent_camera: expected a rigid transform",
        ),
    ],
)
def test_bad_files_name_the_field(tmp_path: Path, mutate, words: str) -> None:
    d = _calib().to_dict()
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(CalibrationFileError, match=words) as e:
        load_calibration(path)
    assert str(path) in str(e.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CalibrationFileError, match="no such calibration file"):
        load_calibration(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(CalibrationFileError, match="not valid JSON"):
        load_calibration(tmp_path / "broken.json")


def test_calibration_for_another_camera_is_refused_naming_both() -> None:
    c = _calib()
    c.check_camera("123456789012", "color", (640, 480))  # the same camera: fine
    with pytest.raises(CameraMismatchError, match="serial 123456789012 but the camera in use is serial 999"):
        c.check_camera("999", "color", (640, 480))
    with pytest.raises(CameraMismatchError, match="color stream but the stream in use is depth"):
        c.check_camera("123456789012", "depth", None)
    with pytest.raises(CameraMismatchError, match="640x480 images but the images are 1280x720"):
        c.check_camera(None, None, (1280, 720))
