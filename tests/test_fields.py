"""The shared field reader: every error names the file and the field path, in the caller's error type."""

from __future__ import annotations

import pytest

from harmowam_edge.bundle.fields import FieldReader, join


class RigError(Exception):
    pass


def test_errors_name_source_and_path_in_the_callers_type() -> None:
    r = FieldReader("rig.yaml", RigError)
    doc = {"arms": [{"name": "", "rate": float("nan"), "speed": 2}], "rate": 200}
    arm = r.obj(r.list_(doc, "arms", "")[0], join("arms", 0))
    with pytest.raises(RigError, match=r"^rig\.yaml: arms\[0\]\.name: expected a non-empty string, got ''$"):
        r.str_(arm, "name", "arms[0]")
    with pytest.raises(RigError, match=r"arms\[0\]\.rate: expected a finite number, got nan"):
        r.float_(arm, "rate", "arms[0]")
    with pytest.raises(RigError, match=r"arms\[0\]\.speed: unknown field \(expected one of: name, rate\)"):
        r.only(arm, "arms[0]", ("name", "rate"))
    with pytest.raises(RigError, match=r"rig\.yaml: cameras: missing"):
        r.list_(doc, "cameras", "")
    with pytest.raises(RigError, match=r"rate: expected an integer >= 300"):
        r.int_(doc, "rate", "", minimum=300)
    assert r.int_(doc, "rate", "") == 200


def test_long_values_are_shortened_in_messages() -> None:
    r = FieldReader("f.json")
    with pytest.raises(ValueError, match=r"got 'xxxx.*\.\.\.$"):
        r.choice({"k": "x" * 200}, "k", "", ("a", "b"))
