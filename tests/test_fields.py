"""The shared field reader: every error names the file and the field path, in the caller's error type."""

from __future__ import annotations

import pytest

from harmowam_edge.bundle.fields import FieldReader, join, parse_yaml


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


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", "cfg.yaml:3:2:", "expected ',' or ']', but got ':'"),
        ("a: 1\n\tb: 2\n", "cfg.yaml:2:1:", "found character '\\t' that cannot start any token"),
        ('a: "open\n', "cfg.yaml:2:1:", "found unexpected end of stream"),
    ],
)
def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(text: str, where: str, what: str) -> None:
    class CfgError(Exception):
        pass

    with pytest.raises(CfgError) as e:
        parse_yaml(text, "cfg.yaml", CfgError)
    msg = str(e.value)
    assert msg.startswith(f"{where} not valid YAML: ")
    assert what in msg
    assert "\n" not in msg


def test_parse_yaml_reads_valid_yaml() -> None:
    assert parse_yaml("a: [1, 2]\nb: {c: x}\n", "cfg.yaml") == {"a": [1, 2], "b": {"c": "x"}}
