"""Serial-bus servo arms (Dynamixel Protocol 2.0, Feetech STS) behind `ArmClient`, and their simulators.

from firmware_bridge.servo_bus import BusArm, preset, load_calibration
cfg = preset("so101", calibration=load_calibration("follower.json"), calibration_source="follower.json")
with BusArm.open("/dev/ttyACM0", cfg) as arm:
    arm.enable()
    arm.send_setpoint(arm.state().positions, gripper=0.02)
"""

from firmware_bridge.servo_bus.arm import BusArm, describe_hardware_error
from firmware_bridge.servo_bus.bus import ServoBus, ServoInfo
from firmware_bridge.servo_bus.calibration import (
    JointMap,
    MotorCalibration,
    calibration_from_dict,
    half_turn_homing,
    load_calibration,
    save_calibration,
)
from firmware_bridge.servo_bus.config import BUSES, BusArmConfig, ServoJoint, default_preset, preset
from firmware_bridge.servo_bus.control_tables import MODELS, ServoModel
from firmware_bridge.servo_bus.dynamixel import DynamixelCodec
from firmware_bridge.servo_bus.errors import (
    BusConfigError,
    CalibrationFileError,
    ServoBusError,
    ServoMismatchError,
    ServoNotAnsweringError,
)
from firmware_bridge.servo_bus.feetech import FeetechCodec
from firmware_bridge.servo_bus.simulator import ServoBusSimulator, SimServoSpec, default_servos
from firmware_bridge.servo_bus.timing import TickBudget, check_rate, max_servos, tick_budget

__all__ = [
    "BUSES",
    "MODELS",
    "BusArm",
    "BusArmConfig",
    "BusConfigError",
    "CalibrationFileError",
    "DynamixelCodec",
    "FeetechCodec",
    "JointMap",
    "MotorCalibration",
    "ServoBus",
    "ServoBusError",
    "ServoBusSimulator",
    "ServoInfo",
    "ServoJoint",
    "ServoMismatchError",
    "ServoModel",
    "ServoNotAnsweringError",
    "SimServoSpec",
    "TickBudget",
    "calibration_from_dict",
    "check_rate",
    "default_preset",
    "default_servos",
    "describe_hardware_error",
    "half_turn_homing",
    "load_calibration",
    "max_servos",
    "preset",
    "save_calibration",
    "tick_budget",
]
