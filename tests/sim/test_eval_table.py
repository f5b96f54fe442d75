"""`sim table`: eval reports merged by bundle label, Wilson intervals, seed-by-seed pairing and its sign test."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harmowam_edge.cli import main
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import eval_stats
from harmowam_edge.sim.eval_table import load_cells, paired_against_first

pytestmark = pytest.mark.sim


def _report(path: Path, scene: str, outcomes: dict[str, dict[int, bool]]) -> Path:
    episodes = [
        {"bundle": b, "seed": s, "success": ok, "task": "pick_red_cube"}
        for b, per_seed in outcomes.items()
        for s, ok in per_seed.items()
    ]
    path.write_text(json.dumps({"task": "pick_red_cube", "scene": scene, "episodes": episodes}))
    return path


def test_sign_test_is_the_exact_two_sided_binomial() -> None:
    assert eval_stats.sign_test_p(0, 0) == 1.0
    assert eval_stats.sign_test_p(5, 0) == pytest.approx(2 / 32)
    assert eval_stats.sign_test_p(19, 6) == eval_stats.sign_test_p(6, 19)
    expected = 2 * sum(math.comb(25, i) for i in range(7)) / 2**25
    assert eval_stats.sign_test_p(19, 6) == pytest.approx(expected)
    assert 0.01 < expected < 0.02
    assert eval_stats.sign_test_p(3, 3) == 1.0  # capped: both tails hold the middle term
    with pytest.raises(ValueError):
        eval_stats.sign_test_p(-1, 2)


def test_paired_outcomes_count_only_common_seeds() -> None:
    a = {1: True, 2: True, 3: False, 4: False, 5: True}
    b = {1: True, 2: False, 3: True, 4: False, 9: True}
    assert eval_stats.paired_outcomes(a, b) == {
        "seeds": 4,
        "both": 1,
        "only_reference": 1,
        "only_other": 1,
        "neither": 1,
    }


def test_reports_of_one_evaluation_merge_by_label_and_pair_against_the_first(tmp_path: Path) -> None:
    first = _report(tmp_path / "a.json", "id", {"teacher": {1: True, 2: True}, "student": {1: True, 2: False}})
    second = _report(tmp_path / "b.json", "id", {"teacher": {3: False, 4: True}, "student": {3: True, 4: False}})
    ood = _report(tmp_path / "c.json", "position", {"teacher": {1: False}, "student": {1: False}})
    cells = load_cells([first, second, ood])
    assert [(c.scene, c.bundle, c.successes, c.episodes) for c in cells] == [
        ("id", "teacher", 3, 4),
        ("id", "student", 2, 4),
        ("position", "teacher", 0, 1),
        ("position", "student", 0, 1),
    ]
    summary = cells[0].summary()
    assert summary["wilson95"] == pytest.approx(list(eval_stats.wilson_interval(3, 4)))
    assert summary["seeds"] == [1, 4]
    assert summary["reports"] == [str(first), str(second)]
    pairs = paired_against_first(cells)
    assert [(p["scene"], p["bundle"], p["reference"]) for p in pairs] == [
        ("id", "student", "teacher"),
        ("position", "student", "teacher"),
    ]
    assert pairs[0]["only_reference"] == 2
    assert pairs[0]["only_other"] == 1
    assert pairs[0]["both"] == 1
    assert pairs[0]["difference_points"] == pytest.approx(-25.0)


def test_a_seed_run_twice_and_bad_reports_are_one_line_errors(tmp_path: Path) -> None:
    a = _report(tmp_path / "a.json", "id", {"teacher": {1: True}})
    b = _report(tmp_path / "b.json", "id", {"teacher": {1: False}})
    with pytest.raises(ConfigError, match=r"b\.json: episodes\[0\]: seed 1 of 'teacher'.*a\.json"):
        load_cells([a, b])
    (tmp_path / "bad.json").write_text(json.dumps({"task": "pick_red_cube", "scene": "id", "episodes": [{"seed": 1}]}))
    with pytest.raises(ConfigError, match=r"bad\.json: episodes\[0\]: bundle: expected a str"):
        load_cells([tmp_path / "bad.json"])
    (tmp_path / "nojson.json").write_text("{")
    with pytest.raises(ConfigError, match=r"nojson\.json: not JSON"):
        load_cells([tmp_path / "nojson.json"])
    with pytest.raises(ConfigError, match=r"missing\.json: cannot read"):
        load_cells([tmp_path / "missing.json"])


def test_sim_table_prints_and_writes_a_bench_document(tmp_path: Path, capsys) -> None:
    a = _report(
        tmp_path / "a.json", "id", {"fp32": {1: True, 2: True, 3: False}, "int8": {1: True, 2: False, 3: False}}
    )
    out = tmp_path / "table.json"
    with pytest.raises(SystemExit) as done:
        main(["sim", "table", str(a), "--json", str(out)])
    assert done.value.code in (0, None)
    stdout = capsys.readouterr().out
    assert "int8 vs fp32" in stdout
    assert "2/3" in stdout
    assert "1/3" in stdout
    doc = json.loads(out.read_text())
    assert doc["area"] == "policy-eval"
    assert [c["successes"] for c in doc["details"]["cells"]] == [2, 1]
    assert doc["details"]["paired"][0]["only_reference"] == 1
    rows = {r["metric"].split(":")[0]: r["value"] for r in doc["rows"]}
    assert rows["pick_red_cube id fp32"] == pytest.approx(200 / 3)
    with pytest.raises(SystemExit) as info:
        main(["sim", "table", str(tmp_path / "missing.json")])
    assert info.value.code == 2
    assert "missing.json: cannot read the report" in capsys.readouterr().err


def test_sim_table_grasps_bins_the_closings_of_every_report(tmp_path: Path, capsys) -> None:
    """`--grasps`: the closings of each episode, lifted or not, by horizontal offset; into the JSON as well."""
    hit = {"t_s": 3.0, "target": "red_cube", "offset_m": [0.003, 0.0, 0.0], "nearest": "red_cube"}
    miss = {**hit, "offset_m": [0.0, 0.035, 0.0], "reopened": True}
    episodes = [
        {"bundle": "a", "seed": 1, "success": True, "grasp_attempts": [miss, hit]},
        {"bundle": "a", "seed": 2, "success": False, "grasp_attempts": [miss]},
    ]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"task": "pick_red_cube", "scene": "id", "episodes": episodes}))
    out = tmp_path / "t.json"
    with pytest.raises(SystemExit) as done:
        main(["sim", "table", str(path), "--grasps", "--json", str(out)])
    assert done.value.code in (0, None)
    assert "0-4 mm" in capsys.readouterr().out
    rows = json.loads(out.read_text())["details"]["lift_by_offset"]
    assert (rows[0]["attempts"], rows[0]["lifted"]) == (1, 1)
    assert sum(r["attempts"] for r in rows) == 3
    assert sum(r["lifted"] for r in rows) == 1
    assert rows[-1]["to_m"] is None  # open-ended, JSON has no infinity
    episodes[0]["grasp_attempts"] = [{"t_s": 1.0}]
    path.write_text(json.dumps({"task": "pick_red_cube", "scene": "id", "episodes": episodes}))
    with pytest.raises(SystemExit) as info:
        main(["sim", "table", str(path), "--grasps"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "episodes[0]: grasp_attempts: expected t_s, target, offset_m, nearest" in err
    assert len(err.splitlines()) == 1
