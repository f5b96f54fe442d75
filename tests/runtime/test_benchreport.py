"""The bench report every area's `bench` command builds (harmowam_edge.telemetry.benchreport)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harmowam_edge.telemetry.benchreport import BenchReport, BenchRow, machine_info, parse_cpuinfo, rows_from

ROOT = Path(__file__).resolve().parents[2]
ROW_KEYS = {"metric", "value", "unit", "target", "ok"}


@dataclass(frozen=True)
class _ForeignRow:  # the shape of firmware_bridge.bench.BenchRow: a package that may not import harmowam_edge
    metric: str
    value: float | None
    unit: str
    target: str
    ok: bool | None


def test_bench_report_to_dict_is_the_architecture_document() -> None:
    report = BenchReport("bridge", machine_extra={"threads_used": 2, "cores": 99}, extra={"argv": ["x"], "area": "no"})
    report.add("echo p99", 0.8, "ms", "<= 2 ms", True)
    report.add("missed", 0, "count")
    doc = report.to_dict()
    assert set(doc) == {"area", "created_utc", "machine", "rows", "argv"}  # no empty notes/details
    assert doc["area"] == "bridge"  # `extra` cannot replace a §5 key
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["created_utc"])
    m = doc["machine"]
    assert {"cpu", "cores", "isa", "python", "platform", "load_avg_1m"} <= set(m)
    assert m["threads_used"] == 2
    assert m["cores"] == 99
    assert doc["rows"] == [
        {"metric": "echo p99", "value": 0.8, "unit": "ms", "target": "<= 2 ms", "ok": True},
        {"metric": "missed", "value": 0, "unit": "count", "target": "", "ok": None},
    ]
    report.notes.append("shared machine")
    report.details["samples"] = 3
    doc = report.to_dict()
    assert doc["notes"] == ["shared machine"]
    assert doc["details"] == {"samples": 3}


def test_bench_rows_from_dataclasses_and_dicts() -> None:
    rows = rows_from(
        [
            _ForeignRow("codec STATE", 3.5, "us", "<= 20 us", True),
            _ForeignRow("echo p50", None, "ms", "", None),
            {"metric": "nano params total", "value": 1.2, "unit": "M", "target": None, "ok": None},
            {"metric": "fx error", "value": np.float64(0.1), "unit": "%", "target": "<= 0.5 %", "ok": np.bool_(True)},
            BenchRow("as is", 1.0, "x"),
        ]
    )
    assert [r.metric for r in rows] == ["codec STATE", "echo p50", "nano params total", "fx error", "as is"]
    assert rows[1].value is None
    assert rows[2].target == ""  # export wrote None for "no target"
    assert type(rows[3].value) is float
    assert rows[3].ok is True
    assert type(rows[3].ok) is bool
    with pytest.raises(ValueError, match=r"row 0 .*missing unit"):
        rows_from([{"metric": "m", "value": 1}])
    with pytest.raises(TypeError, match="row 0: expected a dataclass or a dict, got tuple"):
        rows_from([("m", 1, "ms")])


def test_bench_report_write_round_trips_numpy_and_paths(tmp_path: Path) -> None:
    report = BenchReport("sim", digits=2)
    report.add("render p50", np.float32(3.14159), "ms", "<= 33.3 ms", np.float32(3.1) <= 33.3)
    report.details["per_frame_ms"] = np.array([1.5, 2.5])
    report.details["frames"] = np.int64(7)
    report.details["bundle"] = tmp_path / "bundle"
    out = tmp_path / "nested" / "dir" / "sim.json"
    written = report.write(out)
    back = json.loads(out.read_text())
    assert set(back) == set(written) == {"area", "created_utc", "machine", "rows", "details"}
    assert back["area"] == "sim"
    assert back["machine"]["cores"] == written["machine"]["cores"]
    assert back["rows"] == [{"metric": "render p50", "value": 3.14, "unit": "ms", "target": "<= 33.3 ms", "ok": True}]
    assert back["details"] == {"per_frame_ms": [1.5, 2.5], "frames": 7, "bundle": str(tmp_path / "bundle")}


def test_bench_table_prints_rows_targets_and_notes_without_markup_accidents() -> None:
    from rich.console import Console

    report = BenchReport("export", notes=["one run [shared]"])
    report.add("speed-up [ort_fp32]", 3.456789, "x", ">= 3x", True)
    report.add("no figure", None, "ms")
    report.add("missed", 2, "ticks", "0", False)
    buf = io.StringIO()
    report.print_table("bench", console=Console(file=buf, width=200))
    text = buf.getvalue()
    assert "speed-up [ort_fp32]" in text
    assert "3.457" in text
    assert re.search(r"no figure\s*│\s*-\s*│", text)
    assert "NO" in text
    assert "yes" in text
    assert "one run [shared]" in text
    buf = io.StringIO()
    report.print_table("targets", console=Console(file=buf, width=200), targets_only=True)
    assert "no figure" not in buf.getvalue()
    assert "missed" in buf.getvalue()


def test_bench_parse_cpuinfo_x86_and_arm() -> None:
    x86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse avx2 avx512f avx512_vnni amx_int8\n"
    assert parse_cpuinfo(x86) == ("Intel(R) Xeon(R)", ["avx2", "avx512f", "avx512_vnni", "amx_int8"])
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimdhp asimddp lrcpc\nCPU part\t: 0xd42\n"
    assert parse_cpuinfo(arm) == ("", ["asimd", "asimdhp", "asimddp"])


def test_bench_machine_info_reports_loaded_libraries_only(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("mujoco")
    fake.__version__ = "9.9.9"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mujoco", fake)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    info = machine_info({"gl": "egl"})
    assert info["mujoco"] == "9.9.9"
    assert info["gl"] == "egl"
    assert "torch" not in info


def test_bench_machine_info_imports_no_inference_library() -> None:
    """Never imported for the report: a bench that did not use torch or MuJoCo must not pay for loading them."""
    code = (
        "import io, sys\n"
        "from rich.console import Console\n"
        "from harmowam_edge.telemetry.benchreport import BenchReport, machine_info\n"
        "r = BenchReport('x'); r.add('m', 1.0, 'ms')\n"
        "doc = r.to_dict(); r.print_table('t', console=Console(file=io.StringIO()))\n"
        "heavy = ('torch', 'mujoco', 'onnxruntime', 'cv2', 'pyrealsense2', 'tensorrt')\n"
        "print(','.join(m for m in heavy if m in sys.modules or m in doc['machine'] or m in machine_info()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
