"""The link to the arm firmware: wire protocol, serial transport, `ArmLink` client, firmware simulators; and
serial-bus servo arms (Dynamixel, Feetech) behind the same `ArmClient` interface (`servo_bus`).

Imports nothing of harmowam_edge, export or calibration (design §2). The wire format is PROTOCOL.md.

    from firmware_bridge import ArmLink
    with ArmLink.open("/dev/ttyACM0", arm=0) as link:
        link.enable()
        seq = link.send_setpoint(link.state().positions)
"""

from firmware_bridge.arm_interface import (
    ArmClient,
    ArmState,
    FirmwareInfo,
    GripperLimits,
    LinkEvent,
    LinkEventKind,
    LinkStats,
)
from firmware_bridge.c_simulator import CFirmwareSimulator, build_host_simulator
from firmware_bridge.client import ArmLink, open_arm
from firmware_bridge.errors import BridgeError
from firmware_bridge.firmware_core import FirmwareStatus
from firmware_bridge.plant import IdealPlant, Plant, PlantState
from firmware_bridge.protocol import (
    DEFAULT_BAUDRATE,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    SCHEMA_HASH,
    ArmMode,
    FaultBits,
    NackReason,
)
from firmware_bridge.servo_bus import BusArm, BusArmConfig, ServoBusSimulator
from firmware_bridge.sim_config import SimArmConfig
from firmware_bridge.simulator import FirmwareSimulator

__all__ = [
    "DEFAULT_BAUDRATE",
    "PROTOCOL_MAJOR",
    "PROTOCOL_MINOR",
    "SCHEMA_HASH",
    "ArmClient",
    "ArmLink",
    "ArmMode",
    "ArmState",
    "BridgeError",
    "BusArm",
    "BusArmConfig",
    "CFirmwareSimulator",
    "FaultBits",
    "FirmwareInfo",
    "FirmwareSimulator",
    "FirmwareStatus",
    "GripperLimits",
    "IdealPlant",
    "LinkEvent",
    "LinkEventKind",
    "LinkStats",
    "NackReason",
    "Plant",
    "PlantState",
    "ServoBusSimulator",
    "SimArmConfig",
    "build_host_simulator",
    "open_arm",
]
