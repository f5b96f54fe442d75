"""One bench report for every area: the rows, the machine they ran on, a rich table and the JSON of
docs/architecture.md §5 (`{"area", "created_utc", "machine", "rows", ...}`).

Light on purpose: the benches of `firmware_bridge`, `export` and `calibration` may not import `harmowam_edge`
(layering), so they return plain rows (dataclasses or dicts) and their command modules build the report here with
`rows_from`. `machine_info` never imports an inference library: it reports the versions of those already loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmowam_edge.telemetry.stats import json_default

# x86 (/proc/cpuinfo "flags") and ARM ("Features": a Jetson's Cortex-A78AE) extensions that decide how fast
# ONNX Runtime / PyTorch run int8 and fp16/bf16 kernels on the CPU.
ISA_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
)
# module -> key in `machine`: reported only where a bench already imported it.
VERSIONED_MODULES = {
    "onnxruntime": "onnxruntime",
    "torch": "torch",
    "mujoco": "mujoco",
    "pyrealsense2": "pyrealsense2",
    "cv2": "opencv",
}
ROW_FIELDS = ("metric", "value", "unit", "target", "ok")


@dataclass
class BenchRow:
    """One figure: `value` in `unit`; `target` in words ("<= 2 ms") and whether it was met (None: no target)."""

    metric: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None

    def __post_init__(self) -> None:
        # numpy scalars (np.float64, np.bool_) from the measurements become plain numbers for JSON and rich.
        if self.value is not None and type(self.value) not in (int, float):
            self.value = float(self.value)
        if self.ok is not None:
            self.ok = bool(self.ok)
        self.target = self.target or ""

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "unit": self.unit, "target": self.target, "ok": self.ok}


@dataclass
class BenchReport:
    """An area's bench: rows, notes for people, details for the JSON, area-specific machine facts.

    `extra` holds further top-level JSON keys an area already wrote before this class existed (bridge: `detail`,
    `argv`); `digits` rounds every added value to that many decimals (None: as measured).
    """

    area: str
    rows: list[BenchRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    machine_extra: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    digits: int | None = None

    def add(self, metric: str, value: float | None, unit: str, target: str = "", ok: bool | None = None) -> BenchRow:
        if value is not None and self.digits is not None:
            value = round(float(value), self.digits)
        row = BenchRow(metric, value, unit, target, ok)
        self.rows.append(row)
        return row

    def machine(self) -> dict[str, Any]:
        return machine_info(self.machine_extra)

    def to_dict(self) -> dict[str, Any]:
        """The §5 document. The machine is read now, at the end of a run, so that it names the libraries the
        bench loaded and the load average it ran under."""
        doc: dict[str, Any] = {
            "area": self.area,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": self.machine(),
            "rows": [r.to_dict() for r in self.rows],
        }
        if self.notes:
            doc["notes"] = list(self.notes)
        if self.details:
            doc["details"] = self.details
        for key, value in self.extra.items():
            doc.setdefault(key, value)
        return doc

    def write(self, path: Path) -> dict[str, Any]:
        """Write the JSON document (parent folders made); numpy values, non-finite floats and paths are handled."""
        doc = self.to_dict()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, default=json_default) + "\n")
        return doc

    def print_table(self, title: str, *, console: Any = None, targets_only: bool = False) -> None:
        """metric / value / unit / target / ok, then the notes dimmed. `targets_only`: the rows with a target."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=escape(title))
        for col in ROW_FIELDS:
            table.add_column(col, justify="right" if col == "value" else "left")
        for row in self.rows:
            if targets_only and not row.target:
                continue
            ok = "" if row.ok is None else ("[green]yes[/]" if row.ok else "[bold red]NO[/]")
            value = "-" if row.value is None else f"{row.value:.4g}"
            table.add_row(escape(row.metric), value, escape(row.unit), escape(row.target), ok)
        out = console if console is not None else Console()
        out.print(table)
        for note in self.notes:
            out.print(f"[dim]{escape(note)}[/dim]")


def rows_from(items: Iterable[Any]) -> list[BenchRow]:
    """Rows of other packages (dataclasses or dicts with metric/value/unit[/target/ok]) as `BenchRow`s."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, BenchRow):
            out.append(item)
            continue
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            data: Mapping[str, Any] = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
        elif isinstance(item, Mapping):
            data = item
        else:
            raise TypeError(f"bench row {i}: expected a dataclass or a dict, got {type(item).__name__}")
        missing = [k for k in ("metric", "value", "unit") if k not in data]
        if missing:
            raise ValueError(f"bench row {i} ({data.get('metric', '?')!r}): missing {', '.join(missing)}")
        out.append(BenchRow(data["metric"], data["value"], data["unit"], data.get("target") or "", data.get("ok")))
    return out


def parse_cpuinfo(text: str) -> tuple[str, list[str]]:
    """(CPU model, inference-relevant ISA extensions) from /proc/cpuinfo text, x86 or ARM."""
    model = ""
    have: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not have:
            have = set(value.split())
    return model, [f for f in ISA_FLAGS if f in have]


def load_average_1m() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def _cpu() -> tuple[str, list[str]]:
    try:
        model, isa = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        model, isa = "", []
    if not model:  # ARM boards name the board, not the CPU, in the device tree ("NVIDIA Jetson AGX Orin ...")
        try:
            model = Path("/proc/device-tree/model").read_text().strip("\x00\n ")
        except OSError:
            model = platform.processor() or platform.machine()
    return model, isa


def _version(module: str) -> str:
    version = getattr(sys.modules[module], "__version__", None)
    return str(version) if version is not None else "unknown"


def machine_info(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """CPU, cores, ISA, Python, platform, 1-minute load average and the versions of the inference libraries
    already loaded (never imported here), merged with an area's own facts (`extra` wins)."""
    cpu, isa = _cpu()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": isa,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m": load_average_1m(),
    }
    for module, key in VERSIONED_MODULES.items():
        if module in sys.modules:
            info[key] = _version(module)
    info.update(extra or {})
    return info
