"""`harmowam-edge train` in process: `--check` says what training would see; bad data is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harmowam_edge.cli import main
from tests.export.training_data import write_demos


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_prints_the_data_and_trains_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demos = write_demos(tmp_path / "demos", episodes=3)
    out = tmp_path / "ckpt"
    code, text, err = run(["train", "--data", str(demos), "--out", str(out), "--check", "--image", "128x96"], capsys)
    assert code == 0, err
    assert "episodes: 3 (1 held out, 0 failed ones skipped)" in text
    assert "frames: 90" in text
    assert "cameras: cam0 color 64x48 @ 10 fps" in text
    assert "tasks: reach_red_cube x3" in text
    assert "input 128x96" in text
    assert "chunk [1, 12, 7]" in text
    assert not out.exists()


def test_bad_data_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demos = write_demos(tmp_path / "demos", episodes=1)
    meta = json.loads((demos / "dataset.json").read_text())
    meta["action_names"] = ["a", "b"]
    (demos / "dataset.json").write_text(json.dumps(meta))
    code, _, err = run(["train", "--data", str(demos), "--out", str(tmp_path / "c"), "--steps", "2"], capsys)
    assert code == 2
    assert err.startswith("harmowam-edge: error: ")
    assert "episode_000000: joint_pos: expected finite float [30, 2]" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(["train", "--data", str(demos), "--out", str(tmp_path / "c"), "--preset", "huge"], capsys)
    assert code == 2
    assert "preset: expected one of nano, small, base, reference" in err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--actions", "sideways", "--actions: expected relative or absolute, got 'sideways'"),
        ("--gate-labels", "votes", "--gate-labels: expected phases or accuracy, got 'votes'"),
        ("--state-noise", "2", "--state-noise: expected a share of the state's std in 0..1, got 2.0"),
    ],
)
def test_bad_training_options_are_one_line(
    option: str, value: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demos = write_demos(tmp_path / "demos", episodes=1)
    code, _, err = run(["train", "--data", str(demos), "--out", str(tmp_path / "c"), option, value], capsys)
    assert code == 2
    assert says in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()
