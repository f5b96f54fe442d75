"""The dependency rules of design §2, checked on the source: who may import whom, and where heavy imports go."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("firmware_bridge", "harmowam_edge", "export", "calibration")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at_module_level) for every import in a file, nested ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(n) for n in tree.body}
    # `if TYPE_CHECKING:` blocks import nothing at run time.
    type_checking: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking.update(id(n) for n in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            out.extend((a.name, id(node) in top_level) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.extend((f"{node.module}.{a.name}", id(node) in top_level) for a in node.names)
    return out


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _allowed(package: str, rel: str, module: str, top_level: bool) -> str | None:
    """None if allowed, else why not."""
    head = module.split(".")[0]
    if head not in PACKAGES or head == package:
        if head == "torch" and package != "export":
            return "torch is only allowed in export/"
        if head == "cv2" and package != "calibration":
            return "OpenCV is only allowed in calibration/"
        return None
    composition_root = rel == "harmowam_edge/cli.py" or rel.startswith("harmowam_edge/commands/")
    if package == "firmware_bridge":
        return "firmware_bridge imports nothing of the other three packages"
    if package == "harmowam_edge":
        if head == "firmware_bridge":
            return None
        if composition_root and not top_level:
            return None
        return "only the CLI may reach export/calibration, and only lazily (inside a function)"
    if package == "export":
        if module.startswith(("harmowam_edge.bundle.schema", "harmowam_edge.bundle.")) or module in (
            "harmowam_edge.bundle",
        ):
            return None
        return "export may import the bundle package (harmowam_edge.bundle: schema, fields, composition, device) only"
    if package == "calibration":
        if head == "firmware_bridge" or module.startswith(
            (
                "harmowam_edge.cameras",
                "harmowam_edge.bundle.schema",
                "harmowam_edge.bundle.fields",
                "harmowam_edge.errors",
            ),
        ):
            return None
        return "calibration may import harmowam_edge camera sources and the firmware_bridge client only"
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_follow_the_dependency_rules(package: str) -> None:
    problems = []
    for f in _files(package):
        rel = f.relative_to(ROOT).as_posix()
        for module, top_level in _imports(f):
            why = _allowed(package, rel, module, top_level)
            if why:
                problems.append(f"{rel}: import {module}: {why}")
    assert not problems, "\n".join(problems)


def test_rule_checker_catches_violations() -> None:
    assert _allowed("firmware_bridge", "firmware_bridge/x.py", "harmowam_edge.policy", True)
    assert _allowed("harmowam_edge", "harmowam_edge/policy.py", "export.networks", False)
    assert _allowed("harmowam_edge", "harmowam_edge/cli.py", "export.bundle", True)
    assert _allowed("harmowam_edge", "harmowam_edge/commands/export.py", "export.bundle", False) is None
    assert _allowed("export", "export/x.py", "harmowam_edge.policy", True)
    assert _allowed("harmowam_edge", "harmowam_edge/x.py", "torch", False)
    assert _allowed("calibration", "calibration/x.py", "cv2", True) is None


def test_runtime_cli_imports_no_heavy_module() -> None:
    """On the robot `harmowam-edge` must start without torch, OpenCV, TensorRT, MuJoCo or pyrealsense2."""
    code = (
        "import sys, harmowam_edge.cli, harmowam_edge.bundle.schema\n"
        "heavy = [m for m in ('torch', 'cv2', 'tensorrt', 'mujoco', 'pyrealsense2', 'onnx') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
