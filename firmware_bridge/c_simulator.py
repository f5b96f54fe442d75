"""The C firmware built for the host (firmware/host/hwl_host_sim.c): build it on demand, run it on a PTY.

Same shape as `FirmwareSimulator` (start → port, stop, context manager), so tests and benchmarks run the Python
client against both implementations. Fault injection lives in the Python simulator only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import shutil
import subprocess

from firmware_bridge.errors import CompilerNotFoundError, SimulatorError
from firmware_bridge.sim_config import SimArmConfig
from firmware_bridge.sim_process import SimulatorProcess

FIRMWARE_DIR = pathlib.Path(__file__).resolve().parent / "firmware"
CORE_SOURCES = ("src/hwl_protocol.c", "src/hwl_firmware.c", "src/hwl_schema.c")
HOST_SOURCES = ("host/hwl_host_sim.c",)
CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2")
BINARY_NAME = "hwl_host_sim"


def find_compiler() -> str:
    """$CC, else cc, gcc or clang on PATH."""
    candidates = [os.environ["CC"]] if os.environ.get("CC") else []
    candidates += ["cc", "gcc", "clang"]
    for c in candidates:
        path = shutil.which(c)
        if path:
            return path
    raise CompilerNotFoundError(
        "the C firmware simulator must be compiled, but no C compiler was found (looked for $CC, cc, gcc, clang): "
        "install one (Debian/Ubuntu: sudo apt-get install gcc) or use the Python simulator (--impl python)"
    )


def default_build_dir() -> pathlib.Path:
    """firmware/build next to the sources (gitignored) if writable, else a per-user cache directory."""
    local = FIRMWARE_DIR / "build"
    try:
        local.mkdir(exist_ok=True)
        if os.access(local, os.W_OK):
            return local
    except OSError:
        pass
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    return cache / "harmowam-edge" / "firmware"


def _fingerprint(cc: str) -> str:
    h = hashlib.sha256(cc.encode() + " ".join(CFLAGS).encode())
    for rel in sorted({*CORE_SOURCES, *HOST_SOURCES}) + sorted(
        str(q.relative_to(FIRMWARE_DIR)) for q in FIRMWARE_DIR.glob("src/*.h")
    ):
        h.update(rel.encode())
        h.update((FIRMWARE_DIR / rel).read_bytes())
    return h.hexdigest()


def build_host_simulator(build_dir: pathlib.Path | None = None, *, force: bool = False) -> pathlib.Path:
    """Compile the host simulator if its sources changed; return the executable's path."""
    cc = find_compiler()
    out_dir = build_dir or default_build_dir()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SimulatorError(f"cannot create the build directory {out_dir}: {e.strerror}") from None
    exe = out_dir / BINARY_NAME
    stamp = out_dir / f"{BINARY_NAME}.stamp"
    fp = _fingerprint(cc)
    if not force and exe.exists() and stamp.exists() and stamp.read_text() == fp:
        return exe
    tmp = out_dir / f"{BINARY_NAME}.{os.getpid()}.tmp"
    cmd = [
        cc,
        *CFLAGS,
        "-D_DEFAULT_SOURCE",
        "-D_XOPEN_SOURCE=600",
        f"-I{FIRMWARE_DIR / 'src'}",
        *(str(FIRMWARE_DIR / s) for s in (*CORE_SOURCES, *HOST_SOURCES)),
        "-o",
        str(tmp),
        "-lm",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise SimulatorError(f"building the C firmware simulator failed ({cc}):\n{proc.stderr.strip()}")
    tmp.replace(exe)
    stamp.write_text(fp)
    return exe


def _csv(values: tuple[float, ...]) -> str:
    return ",".join(repr(float(v)) for v in values)


def host_sim_args(config: SimArmConfig, link_path: pathlib.Path | None = None) -> list[str]:
    """Command-line arguments that make the C host simulator the arm `config` describes."""
    c = config
    args = [
        "--joints",
        str(c.joint_count),
        "--arm",
        str(c.arm),
        "--state-rate",
        str(c.state_rate_hz),
        "--pos-min",
        _csv(c.lower),
        "--pos-max",
        _csv(c.upper),
        "--max-vel",
        _csv(c.velocity_limits),
        "--max-acc",
        _csv(c.acceleration_limits),
        "--initial",
        _csv(c.initial),
        "--firmware-id",
        c.firmware_id if c.firmware_id != SimArmConfig.firmware_id else "harmowam-sim-c",
        "--baud",
        str(c.baudrate),
    ]
    if c.has_gripper:
        args += [
            "--gripper",
            _csv((c.gripper_min, c.gripper_max, c.gripper_max_velocity, c.gripper_max_acceleration)),
            "--initial-gripper",
            repr(float(c.initial_gripper or 0.0)),
        ]
    else:
        args += ["--no-gripper"]
    if link_path is not None:
        args += ["--link", str(link_path)]
    return args


class CFirmwareSimulator(SimulatorProcess):
    """The C firmware on a PTY, in a child process (built on demand). `start()` returns the port to open."""

    def __init__(
        self,
        config: SimArmConfig | None = None,
        link_path: pathlib.Path | None = None,
        *,
        binary: pathlib.Path | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        super().__init__("the C firmware simulator", start_timeout=start_timeout)
        self.config = config or SimArmConfig()
        self.link_path = link_path
        self._binary = binary

    def command(self) -> list[str]:
        exe = self._binary or build_host_simulator()
        return [str(exe), *host_sim_args(self.config, self.link_path)]
