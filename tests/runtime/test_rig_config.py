"""Rig config file: validation names the file and the field; limits only ever tighten."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmowam_edge.bundle.schema import reference_action_space
from harmowam_edge.control.rig import RigConfig
from harmowam_edge.control.safety import JointLimits
from harmowam_edge.errors import ConfigError

GOOD = """
arms:
  - name: arm
    port: /dev/ttyACM0
    baudrate: 1000000
    velocity_scale: 0.5
    limits:
      joint_1: {lower: -1.0, upper: 4.0, max_velocity: 1.0}
cameras:
  - name: cam0
    serial: 123456789012
  - name: cam1
    recording: runs/cam1.db3
control_rate_hz: 250
safety: {ramp_in_s: 2.0, state_timeout_s: 0.2}
"""


def test_a_good_file_loads(tmp_path: Path) -> None:
    p = tmp_path / "rig.yaml"
    p.write_text(GOOD)
    rig = RigConfig.load(p)
    assert rig.arms[0].port == "/dev/ttyACM0"
    assert rig.cameras[0].serial == "123456789012"  # an unquoted serial is read as text
    assert rig.cameras[1].recording == str(tmp_path / "runs" / "cam1.db3")  # relative to the rig file
    sc = rig.safety_config()
    assert sc.control_period_s == pytest.approx(1 / 250)
    assert sc.ramp_in_s == 2.0
    base = JointLimits.from_action_space(reference_action_space())
    lim = rig.limits_for(0, base)
    assert lim.lower[0] == -1.0  # tightened
    assert lim.upper[0] == pytest.approx(2.9)  # 4.0 would loosen: the bundle's 2.9 stays
    assert lim.max_velocity[0] == pytest.approx(0.5)  # min(2.0, 1.0) * 0.5
    assert lim.max_velocity[1] == pytest.approx(1.0)  # 2.0 * 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arms: []", "rig.yaml: arms: expected a non-empty list, got []"),
        ("arms: [{name: arm}]", "rig.yaml: arms[0].port: missing"),
        ("arms: [{name: arm, port: 3}]", "rig.yaml: arms[0].port: expected a non-empty string, got 3"),
        ("arms: [{name: arm, port: p, velocity_scale: 2}]", "arms[0].velocity_scale: expected a number in (0, 1]"),
        ("arms: [{name: arm, port: p, speed: 2}]", "rig.yaml: arms[0].speed: unknown field"),
        ("arms: [{name: arm, port: p, limits: {joint_1: {lower: 1, upper: 0}}}]", "arms[0].limits.joint_1.upper"),
        ("arms: [{name: arm, port: p}]\ncontrol_rate_hz: fast", "rig.yaml: control_rate_hz: expected a finite number"),
        ("arms: [{name: arm, port: p}]\nsafety: {ramp: 1}", "rig.yaml: safety.ramp: unknown field"),
        ("arms: [{name: arm, port: p}]\nsafety: {state_timeout_s: -1}", "safety.state_timeout_s: expected > 0"),
        ("arms: [{name: arm, port: p}]\ncameras: [{name: c, serial: '1', recording: r.db3}]", "not both"),
        ("arms: [{name: a, port: p}, {name: a, port: q}]", "rig.yaml: arms: expected unique arm names"),
        ("arms: [oops", "rig.yaml:1:12: not valid YAML: expected ',' or ']', but got '<stream end>'"),
        ("arms:\n  - name: a\n\tport: p\n", "rig.yaml:3:1: not valid YAML: found character '\\t' that cannot"),
    ],
)
def test_errors_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "rig.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        RigConfig.load(p)
    assert message in str(e.value)
    assert "\n" not in str(e.value)  # one line, whatever the problem


def test_rig_must_match_the_bundle(tmp_path: Path) -> None:
    class _M:  # only the fields check_against reads
        action_space = reference_action_space(2)
        cameras = ()

    rig = RigConfig.from_dict({"arms": [{"name": "arm", "port": "p"}]}, source="rig.yaml")
    with pytest.raises(ConfigError, match=r"the bundle's arms are \['left', 'right'\]"):
        rig.check_against(_M())  # type: ignore[arg-type]
    rig2 = RigConfig.from_dict(
        {"arms": [{"name": "left", "port": "p", "limits": {"joint_1": {"upper": 1}}}, {"name": "right", "port": "q"}]},
        source="rig.yaml",
    )
    with pytest.raises(ConfigError, match=r"arms\[0\]\.limits\.joint_1: no such joint"):
        rig2.check_against(_M())  # type: ignore[arg-type]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rig config not found"):
        RigConfig.load(tmp_path / "nope.yaml")
