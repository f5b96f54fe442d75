"""`harmowam-edge doctor`: is this machine ready to run a bundle? Each problem comes with its fix."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from harmowam_edge.bundle.loader import LoadedBundle
    from harmowam_edge.bundle.schema import Manifest
    from harmowam_edge.policy.policy import Observation

Status = Literal["ok", "info", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    area: str
    status: Status
    detail: str
    fix: str = ""


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_software() -> list[Check]:
    out = [Check("python", "ok", f"{platform.python_version()} on {platform.platform()}")]
    import harmowam_edge

    out.append(Check("harmowam-edge", "ok", harmowam_edge.__version__))
    for dist in ("numpy", "pyserial", "mcap", "PyYAML"):
        v = _version(dist)
        out.append(Check(dist, "ok" if v else "fail", v or "not installed", "" if v else f"pip install {dist.lower()}"))
    try:
        import onnxruntime as ort

        providers = [p for p in ort.get_available_providers() if p != "AzureExecutionProvider"]
        out.append(Check("onnxruntime", "ok", f"{ort.__version__}; providers: {', '.join(providers)}"))
    except ImportError:
        out.append(Check("onnxruntime", "fail", "not installed", "pip install onnxruntime (Jetson: NVIDIA's wheel)"))
    from harmowam_edge.engines.tensorrt_engine import cuda_device, tensorrt_available, tensorrt_version

    ok, why = tensorrt_available()
    if ok:
        dev = cuda_device()
        out.append(
            Check(
                "tensorrt",
                "ok",
                f"TensorRT {tensorrt_version()} on {dev.name} (compute {dev.compute_capability}"
                f"{', integrated: zero-copy buffers' if dev.integrated else ''})",
            )
        )
    else:
        out.append(Check("tensorrt", "info", f"not usable here ({why.split(':')[0]}): ONNX Runtime runs the bundle"))
    rs_version = _version("pyrealsense2")
    try:
        importlib.import_module("pyrealsense2")
        out.append(Check("pyrealsense2", "ok", rs_version or "installed (built from source)"))
    except ImportError:
        out.append(
            Check(
                "pyrealsense2",
                "warn",
                "not installed: no RealSense cameras or recordings",
                "pip install 'harmowam-edge[realsense]' (on a Jetson: build librealsense with its Python bindings)",
            )
        )
    return out


def check_bundle(path: Path) -> list[Check]:
    from harmowam_edge.bundle.loader import (
        check_engine_set,
        check_wiring,
        engine_sets,
        load_bundle,
        read_manifest,
        select_graphs,
        verify_files,
    )
    from harmowam_edge.bundle.schema import PREDICTIVE_EXPERT_STEP
    from harmowam_edge.errors import HarmowamError

    out: list[Check] = []
    try:
        manifest = read_manifest(path)
    except HarmowamError as e:
        return [Check("bundle", "fail", str(e), "re-export it: make export CKPT=... OUT=...")]
    p = manifest.provenance
    out.append(
        Check(
            "bundle",
            "warn" if p.untrained else "ok",
            f"{path}: schema {manifest.schema_version}, {manifest.precision}, preset {p.preset}, "
            f"{len(manifest.action_space.arms)} arm(s), cameras {', '.join(c.describe() for c in manifest.cameras)},"
            f" tasks {', '.join(manifest.tasks.names)}" + ("; UNTRAINED checkpoint" if p.untrained else ""),
        )
    )
    problems = verify_files(path, manifest)
    if problems:
        out.append(Check("bundle files", "fail", "; ".join(problems), "re-export the bundle (or copy it again)"))
    else:
        out.append(Check("bundle files", "ok", f"{len(manifest.files)} files, every sha256 matches"))
    for mode in ("unrolled", "step"):
        try:
            graphs = select_graphs(manifest, flow_mode=mode)  # type: ignore[arg-type]
        except HarmowamError:
            continue
        wiring = check_wiring(manifest, graphs)
        if wiring:
            out.append(Check(f"wiring ({mode})", "fail", "; ".join(wiring), "re-export the bundle"))
    for mode in ("unrolled", "step"):
        if mode == "step" and PREDICTIVE_EXPERT_STEP not in manifest.networks:
            continue
        try:
            with load_bundle(path, backend="onnxruntime", flow_mode=mode, warmup=1) as b:  # type: ignore[arg-type]
                if mode == manifest.policy.flow_mode:
                    out.append(Check("graphs load", "ok", f"every graph loads and runs in {b.backend}"))
                out.append(probe_step(b))
        except HarmowamError as e:
            out.append(Check("graphs load", "fail", str(e), "re-export the bundle"))
    from harmowam_edge.engines.tensorrt_engine import cuda_device, tensorrt_available, tensorrt_version

    sets = engine_sets(path)
    trt_ok, _ = tensorrt_available()
    want = None
    if trt_ok:
        from harmowam_edge.bundle.schema import engine_folder_name

        want = engine_folder_name(tensorrt_version(), cuda_device().name)
    build = f"harmowam-edge export engines {path}"
    if not sets:
        out.append(
            Check(
                "tensorrt engines",
                "warn" if trt_ok else "info",
                "none built",
                f"on the robot: {build}" if trt_ok else "",
            )
        )
    graphs = select_graphs(manifest)
    for folder, es, problem in sets:
        if es is None:
            out.append(Check(f"engines/{folder.name}", "fail", problem, build))
            continue
        here = want == folder.name
        bad = check_engine_set(path, es, graphs)
        status: Status = "fail" if bad and here else ("ok" if here else "info")
        detail = f"TensorRT {es.trt_version} for {es.device} (compute {es.compute_capability}), built {es.built_utc}"
        if bad:
            detail += ": " + "; ".join(bad)
        elif here:
            detail += ": matches this machine, the runtime will use it"
        else:
            detail += ": not for this machine" + ("" if trt_ok else " (no TensorRT here)")
        out.append(Check(f"engines/{folder.name}", status, detail, build if bad else ""))
    if trt_ok and want and not any(f.name == want for f, _, _ in sets):
        out.append(Check("tensorrt engines", "warn", f"no engines/{want} for this TensorRT and GPU", build))
    return out


def probe_observation(manifest: Manifest, frame: int = 0) -> Observation:
    """A plausible observation: a textured frame (and a plane at 0.8 m) per camera, the arm mid-range."""
    import numpy as np

    from harmowam_edge.cameras.frames import Frame
    from harmowam_edge.cameras.synthetic import gradient_color, plane_depth
    from harmowam_edge.policy.policy import Observation

    frames = []
    for c in manifest.cameras:
        depth = plane_depth(c.width, c.height, int(0.8 / c.depth_units_m))(frame) if c.has_depth else None
        frames.append(Frame(c.name, gradient_color(c.width, c.height)(frame), 0.0, frame, depth, c.depth_units_m))
    q = np.array([(d.lower + d.upper) / 2 for d in manifest.action_space.dims], np.float32)
    return Observation(frames, q, t_obs=0.0)


def probe_step(bundle: LoadedBundle) -> Check:
    """One policy step per expert path on `probe_observation`: outputs finite and inside the action space.

    Outside the action space is a failure for a trained bundle and a warning for an UNTRAINED one (its seeded
    random weights mean nothing; the safety filter clamps what it sends). Non-finite output fails either way.
    """
    import numpy as np

    from harmowam_edge.errors import HarmowamError
    from harmowam_edge.policy.policy import Policy

    m = bundle.manifest
    lo = np.array([d.lower for d in m.action_space.dims], np.float32)
    hi = np.array([d.upper for d in m.action_space.dims], np.float32)
    names = [d.name for d in m.action_space.dims]
    area = f"probe step ({bundle.flow_mode})"
    fix = "re-export it from a sound checkpoint"
    policy = Policy(bundle, m.tasks.names[0], seed=0)
    obs = probe_observation(m)
    outside: list[tuple[float, str]] = []  # (how far out, description)
    for mode in ("reactive", "predictive"):
        try:
            chunk = policy.step(obs, force=mode)  # type: ignore[arg-type]
        except HarmowamError as e:
            return Check(area, "fail", f"{mode} path: {e}", fix)
        if not np.isfinite(chunk.gate_weights).all():
            return Check(area, "fail", f"the gate outputs non-finite weights: {chunk.gate_weights.tolist()}", fix)
        bad = ~np.isfinite(chunk.actions)
        if bad.any():
            dims = sorted({names[j] for j in np.nonzero(bad)[1]})
            return Check(area, "fail", f"{mode} path: non-finite actions ({', '.join(dims)})", fix)
        if ((chunk.gate_weights < 0) | (chunk.gate_weights > 1)).any():
            return Check(area, "fail", f"gate weights outside [0, 1]: {chunk.gate_weights.tolist()}", fix)
        beyond = np.maximum(lo - chunk.actions, chunk.actions - hi)  # > 0 outside, per step and dimension
        for j in np.nonzero((beyond > 0).any(axis=0))[0].tolist():
            v = float(chunk.actions[int(np.argmax(beyond[:, j])), j])
            outside.append((float(beyond[:, j].max()), f"{mode} {names[j]} {v:.3g}, limits {lo[j]:.3g}..{hi[j]:.3g}"))
    if outside:
        status: Status = "warn" if m.provenance.untrained else "fail"
        n_out = len({d.split()[1] for _, d in outside})
        worst = max(outside)[1]
        detail = f"actions outside the action space on {n_out} dim(s); worst: {worst}"
        return Check(area, status, detail, "" if m.provenance.untrained else fix)
    return Check(area, "ok", "reactive and predictive paths: finite actions inside the action space")


def check_cameras() -> list[Check]:
    try:
        from harmowam_edge.cameras.realsense import list_devices

        devices = list_devices()
    except Exception as e:  # pyrealsense2 missing or librealsense failing to enumerate
        return [Check("cameras", "warn", f"cannot list RealSense devices: {e}")]
    if not devices:
        return [Check("cameras", "info", "no RealSense device connected (recordings still work)")]
    out = []
    for d in devices:
        usb = d.usb or "?"
        status: Status = "warn" if usb.startswith("2") else "ok"
        fix = "plug it into a USB 3 port with a USB 3 cable" if status == "warn" else ""
        out.append(Check(f"camera {d.serial}", status, f"{d.name}, firmware {d.firmware}, USB {usb}", fix))
    return out


def _serial_ports() -> list[str]:
    found: set[str] = set()
    for pattern in ("/dev/ttyACM*", "/dev/ttyUSB*", "/dev/serial/by-id/*", "/dev/ttyTHS*"):
        folder, _, name = pattern.rpartition("/")
        found.update(str(p) for p in Path(folder).glob(name))
    return sorted(found)


def check_serial() -> list[Check]:
    ports = _serial_ports()
    if not ports:
        return [Check("serial ports", "info", "no USB serial ports (ttyACM*, ttyUSB*) found")]
    out = []
    for port in ports:
        real = os.path.realpath(port)
        try:
            st = Path(real).stat()
        except OSError as e:
            out.append(Check(f"port {port}", "fail", str(e)))
            continue
        if not stat.S_ISCHR(st.st_mode):
            continue
        if os.access(real, os.R_OK | os.W_OK):
            out.append(Check(f"port {port}", "ok", f"{real} readable and writable"))
        else:
            out.append(
                Check(
                    f"port {port}",
                    "fail",
                    f"{real}: no read/write permission",
                    "sudo usermod -aG dialout $USER, then log in again",
                )
            )
        name = Path(real).name
        timer = Path(f"/sys/bus/usb-serial/devices/{name}/latency_timer")
        if timer.is_file():
            try:
                ms = int(timer.read_text().strip())
            except (OSError, ValueError):
                continue
            if ms > 1:
                out.append(
                    Check(
                        f"port {port}",
                        "warn",
                        f"FTDI latency timer {ms} ms: state frames reach the host up to {ms} ms late",
                        f'echo 1 | sudo tee {timer} (or a udev rule: ATTR{{latency_timer}}="1")',
                    )
                )
    return out


def check_platform() -> list[Check]:
    out: list[Check] = []
    if Path("/etc/nv_tegra_release").is_file():
        release = Path("/etc/nv_tegra_release").read_text().splitlines()[0][:80]
        out.append(Check("jetson", "ok", release))
        import shutil
        import subprocess

        if shutil.which("nvpmodel"):
            try:
                q = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=5).stdout.strip()
                mode = " ".join(q.split())
                status: Status = "ok" if "MAXN" in q.upper() else "warn"
                out.append(
                    Check(
                        "jetson power mode",
                        status,
                        mode or "unknown",
                        "" if status == "ok" else "sudo nvpmodel -m 0 && sudo jetson_clocks (full clocks)",
                    )
                )
            except (OSError, subprocess.SubprocessError) as e:
                out.append(Check("jetson power mode", "warn", f"nvpmodel -q failed: {e}"))
    gov = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if gov.is_file():
        g = gov.read_text().strip()
        out.append(
            Check(
                "cpu governor",
                "ok" if g == "performance" else "warn",
                g,
                "" if g == "performance" else "sudo cpupower frequency-set -g performance (steadier control loop)",
            )
        )
    out.append(Check("cpu cores", "ok" if (os.cpu_count() or 1) >= 2 else "warn", str(os.cpu_count())))
    return out


def run_doctor(bundle: Path | None = None) -> list[Check]:
    checks = check_software()
    if bundle is not None:
        checks += check_bundle(bundle)
    checks += check_cameras() + check_serial() + check_platform()
    return checks
