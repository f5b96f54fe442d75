"""`open_sim_rig`: the whole simulated rig, as the runtime sees a real one: serial ports and camera sources.

One shared MuJoCo world stepped in real time; per arm a MuJoCo plant behind its own `FirmwareSimulator` on a
pseudo-terminal (reached through a stable symlink, like /dev/serial/by-id/...), with the reference arm's limits
in the firmware; per camera spec a `SimCamera`. The runtime opens `arm_ports` with `ArmLink` and reads
`cameras` exactly as it would on the robot. Closing stops cameras, firmware and physics, in that order.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from firmware_bridge import ArmClient, FirmwareSimulator, SimArmConfig
from firmware_bridge.servo_bus import BusArmConfig, ServoBusSimulator, ServoJoint, SimServoSpec
from harmowam_edge.bundle.schema import ActionSpace, ArmSpec, CameraSpec, reference_action_space
from harmowam_edge.cameras.frames import CameraSource
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim.camera import SimCamera
from harmowam_edge.sim.plant import MujocoPlant
from harmowam_edge.sim.world import SimWorld

log = logging.getLogger(__name__)

RIG_NAME = "sim"
DEFAULT_CAMERA = CameraSpec("front", 640, 480, 30, ("color", "depth"))


def firmware_config(
    arm: ArmSpec,
    address: int = 0,
    initial: Sequence[float] = arm_desc.HOME,
    *,
    state_rate_hz: int = 200,
    control_rate_hz: int = 500,
) -> SimArmConfig:
    """The firmware of one simulated reference arm: its limits are exactly the action space's."""
    g = arm.gripper
    if g is None:  # the reference arm always has one; a bundle without one does not fit this rig
        raise ConfigError(f"arm {arm.name!r}: the simulated rig's arms have a gripper; the action space has none")
    return SimArmConfig(
        joint_count=len(arm.joints),
        position_min=[j.lower for j in arm.joints],
        position_max=[j.upper for j in arm.joints],
        max_velocity=[j.max_velocity for j in arm.joints],
        max_acceleration=[j.max_acceleration for j in arm.joints],
        has_gripper=True,
        gripper_min=g.lower,
        gripper_max=g.upper,
        gripper_max_velocity=g.max_velocity,
        gripper_max_acceleration=g.max_acceleration,
        initial_positions=list(initial),
        initial_gripper=arm_desc.HOME_GRIPPER,
        firmware_id=f"mujoco-{arm.name}"[:16],
        arm=address,
        state_rate_hz=state_rate_hz,
        control_rate_hz=control_rate_hz,
    )


class SimRig:
    """A running simulated rig. Use as a context manager (or call `close()`)."""

    name = RIG_NAME

    def __init__(
        self,
        world: SimWorld,
        simulators: list[FirmwareSimulator | ServoBusSimulator],
        plants: list[MujocoPlant],
        cameras: list[SimCamera],
        action_space: ActionSpace,
        addresses: list[int],
        link_dir: Path,
        owns_link_dir: bool,
        bus: str | None = None,
    ) -> None:
        self.bus = bus
        self.world = world
        self.simulators = simulators
        self.plants = plants
        self.sim_cameras = cameras
        self.action_space = action_space
        self.arm_addresses = addresses
        self._link_dir = link_dir
        self._owns_link_dir = owns_link_dir
        self._closed = False

    @property
    def arm_ports(self) -> list[str]:
        """Ports to open with `ArmLink`, in action-space arm order (stable symlinks to the pseudo-terminals)."""
        return [s.port for s in self.simulators]

    def arm_handles(self, state_timeout_s: float) -> list[str | ArmClient]:
        """What `Rig(arms=...)` takes: the ports (our firmware: the loop opens them), or open `BusArm`s on a
        servo-bus rig (the loop closes them, torque off, as any link)."""
        if self.bus is None:
            return list(self.arm_ports)
        from firmware_bridge.servo_bus import BusArm

        out: list[str | ArmClient] = []
        try:
            for s, spec in zip(self.simulators, self.action_space.arms, strict=True):
                out.append(BusArm.open(s.port, bus_arm_config(self.bus, spec), state_timeout=state_timeout_s))
        except BaseException:
            for a in out:
                if not isinstance(a, str):
                    a.close()
            raise
        return out

    @property
    def cameras(self) -> list[CameraSource]:
        """One `CameraSource` per requested camera spec, in that order."""
        return list(self.sim_cameras)

    @property
    def arm_names(self) -> list[str]:
        return [a.name for a in self.action_space.arms]

    def describe(self) -> str:
        arms = ", ".join(f"{n} on {p}" for n, p in zip(self.arm_names, self.arm_ports, strict=True))
        cams = ", ".join(f"{c.spec.name} ({c.spec.describe()})" for c in self.sim_cameras) or "no cameras"
        behind = f" behind a {self.bus} servo bus each" if self.bus is not None else ""
        return (
            f"simulated rig (MuJoCo, scene {self.world.scene}, seed {self.world.seed}): arms [{arms}]{behind}; "
            f"cameras [{cams}]"
        )

    def close(self) -> None:
        """Stop cameras, firmware simulators and physics; remove the port symlinks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for cam in self.sim_cameras:
            with contextlib.suppress(Exception):
                cam.stop()
        for sim in self.simulators:
            with contextlib.suppress(Exception):
                sim.stop()
        self.world.stop()
        if self._owns_link_dir:
            shutil.rmtree(self._link_dir, ignore_errors=True)

    def __enter__(self) -> SimRig:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_sim_rig(
    arms: int = 1,
    cameras: Sequence[CameraSpec] | None = None,
    seed: int = 0,
    *,
    action_space: ActionSpace | None = None,
    addresses: Sequence[int] | None = None,
    link_dir: Path | None = None,
    start_cameras: bool = True,
    shadows: bool = False,
    state_rate_hz: int = 200,
    control_rate_hz: int = 500,
    scene: str = "id",
    bus: str | None = None,
) -> SimRig:
    """Start the simulated rig: physics, one firmware simulator per arm, one camera source per spec.

    `action_space` (e.g. a bundle's) must be the reference arm's (joint names and limits); by default it is
    `reference_action_space(arms)`. `addresses`: the firmware address of each arm (default 0 for every arm:
    each has its own port, as with the rig config's default), the `arm=` to pass to `ArmLink.open`.
    `link_dir`: where the port symlinks go (default: a fresh temp folder). `scene`: id, background, position or
    semantics (`scene.SCENES`). `bus` ("feetech" | "dynamixel"): each arm is a bus of servos (IDs 1-7, the last
    the gripper) instead of our firmware, so the loop runs closed over the servo protocol (`arm_handles`).
    """
    if arms not in (1, 2):
        raise ConfigError(f"--arms: expected 1 or 2, got {arms}")
    expected = reference_action_space(arms)
    space = action_space if action_space is not None else expected
    check_action_space(space, expected)
    specs = tuple(cameras) if cameras is not None else (DEFAULT_CAMERA,)
    addr = list(addresses) if addresses is not None else [0] * arms
    if len(addr) != arms:
        raise ConfigError(f"addresses: expected {arms} firmware addresses, got {len(addr)}")
    owns = link_dir is None
    links = Path(tempfile.mkdtemp(prefix="harmowam-sim-")) if link_dir is None else Path(link_dir)
    links.mkdir(parents=True, exist_ok=True)

    world = SimWorld(arms, specs, seed=seed, scene_name=scene)
    simulators: list[FirmwareSimulator | ServoBusSimulator] = []
    plants: list[MujocoPlant] = []
    sim_cameras: list[SimCamera] = []
    rig = SimRig(world, simulators, plants, sim_cameras, space, addr, links, owns, bus=bus)
    try:
        world.start()
        # The firmware enforces the reference arm's limits, whatever the bundle asks for (it was checked above).
        for i, arm_spec in enumerate(expected.arms):
            plant = MujocoPlant(world, i)
            sim: FirmwareSimulator | ServoBusSimulator
            if bus is not None:
                sim = bus_simulator(bus, arm_spec, plant, links / f"{arm_spec.name}.tty")
            else:
                cfg = firmware_config(arm_spec, addr[i], state_rate_hz=state_rate_hz, control_rate_hz=control_rate_hz)
                sim = FirmwareSimulator(cfg, plant, links / f"{arm_spec.name}.tty")
            sim.start()
            plants.append(plant)
            simulators.append(sim)
        for spec in specs:
            cam = SimCamera(world, spec, shadows=shadows)
            sim_cameras.append(cam)
            if start_cameras:
                cam.start()
    except BaseException:
        rig.close()
        raise
    log.info("%s", rig.describe())
    return rig


def _bus_servos(bus: str, arm: ArmSpec) -> list[ServoJoint]:
    model = "sts3215" if bus == "feetech" else "xl430-w250"
    names = [d.name for d in arm.dims]
    return [ServoJoint(n, i + 1, model) for i, n in enumerate(names)]


def bus_simulator(bus: str, arm: ArmSpec, plant: MujocoPlant, link: Path) -> ServoBusSimulator:
    """One simulated arm as a servo bus: a servo per joint (IDs 1..6) and one for the gripper (7) driving the
    MuJoCo arm; mid-range is 0 rad, the gripper servo's range is 0..the gripper's upper opening."""
    specs = [SimServoSpec(s.servo_id, s.model) for s in _bus_servos(bus, arm)]
    assert arm.gripper is not None
    return ServoBusSimulator(bus, specs, link_path=link, plant=plant, gripper_opening_m=arm.gripper.upper)


def bus_arm_config(bus: str, arm: ArmSpec) -> BusArmConfig:
    servos = _bus_servos(bus, arm)
    assert arm.gripper is not None
    return BusArmConfig(
        bus=bus, joints=tuple(servos[:-1]), gripper=servos[-1], gripper_opening_m=arm.gripper.upper,
        source=f"simulated {bus} arm {arm.name}",
    )  # fmt: skip


def check_action_space(space: ActionSpace, expected: ActionSpace) -> None:
    """The simulated rig builds the reference arm: a bundle for another arm cannot run on it."""
    if len(space.arms) != len(expected.arms):
        raise ConfigError(
            f"action space: the bundle has {len(space.arms)} arm(s), the simulated rig was asked for "
            f"{len(expected.arms)} (use --arms {len(space.arms)})"
        )
    for got, want in zip(space.arms, expected.arms, strict=True):
        got_names = [d.name for d in got.dims]
        want_names = [d.name for d in want.dims]
        if got_names != want_names:
            raise ConfigError(
                f"action space: arm {got.name!r} has joints {got_names}; the simulated rig's reference arm has "
                f"{want_names}"
            )
        for g, w in zip(got.dims, want.dims, strict=True):
            if g.lower < w.lower - 1e-9 or g.upper > w.upper + 1e-9:
                raise ConfigError(
                    f"action space: {g.name} limits {g.lower}..{g.upper} exceed the simulated arm's "
                    f"{w.lower}..{w.upper}"
                )
