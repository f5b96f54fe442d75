"""The servos' control tables as data: register addresses, sizes, signedness, units, model numbers. Pure.

Dynamixel X series (XL330-M288, XL430-W250, XM430-W350) share one layout (ROBOTIS e-manual, Protocol 2.0 tables);
Feetech STS3215 follows the STS/SMS memory table. A name missing from a table is a register that model lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Register:
    address: int
    size: int  # bytes
    sign_bit: int | None = None  # sign-magnitude encoding with this sign bit (Feetech); None: see `signed`
    signed: bool = False  # two's complement (Dynamixel)
    eeprom: bool = False  # writable only with torque off (Dynamixel) / saved only while unlocked (Feetech)

    def decode(self, raw: bytes) -> int:
        v = int.from_bytes(raw[: self.size], "little")
        if self.sign_bit is not None:
            mag = v & ((1 << self.sign_bit) - 1)
            return -mag if v & (1 << self.sign_bit) else mag
        if self.signed and v & (1 << (8 * self.size - 1)):
            v -= 1 << (8 * self.size)
        return v

    def encode(self, value: int) -> bytes:
        if self.sign_bit is not None:
            mag = abs(value)
            if mag >= 1 << self.sign_bit:
                raise ValueError(f"{value} does not fit a sign-magnitude field with sign bit {self.sign_bit}")
            v = mag | (1 << self.sign_bit) if value < 0 else mag
        else:
            lo = -(1 << (8 * self.size - 1)) if self.signed else 0
            hi = (1 << (8 * self.size - 1)) - 1 if self.signed else (1 << (8 * self.size)) - 1
            if not lo <= value <= hi:
                raise ValueError(f"{value} does not fit {self.size} byte(s)")
            v = value & ((1 << (8 * self.size)) - 1)
        return v.to_bytes(self.size, "little")


R = Register

DYNAMIXEL_X: dict[str, Register] = {
    "model_number": R(0, 2, eeprom=True),
    "firmware_version": R(6, 1, eeprom=True),
    "id": R(7, 1, eeprom=True),
    "baud_rate": R(8, 1, eeprom=True),
    "return_delay_time": R(9, 1, eeprom=True),  # 2 µs units
    "drive_mode": R(10, 1, eeprom=True),
    "operating_mode": R(11, 1, eeprom=True),
    "homing_offset": R(20, 4, signed=True, eeprom=True),  # present = actual + offset
    "temperature_limit": R(31, 1, eeprom=True),
    "velocity_limit": R(44, 4, eeprom=True),
    "max_position_limit": R(48, 4, eeprom=True),
    "min_position_limit": R(52, 4, eeprom=True),
    "shutdown": R(63, 1, eeprom=True),  # which hardware errors turn torque off
    "torque_enable": R(64, 1),
    "led": R(65, 1),
    "status_return_level": R(68, 1),
    "hardware_error_status": R(70, 1),
    "bus_watchdog": R(98, 1),  # 20 ms units, 0 off; 0xFF after it fired (goals refused until written 0)
    "goal_velocity": R(104, 4, signed=True),
    "profile_acceleration": R(108, 4),
    "profile_velocity": R(112, 4),
    "goal_position": R(116, 4, signed=True),
    "moving": R(122, 1),
    "present_current": R(126, 2, signed=True),  # XL430: present load (0.1 %)
    "present_velocity": R(128, 4, signed=True),
    "present_position": R(132, 4, signed=True),
    "present_input_voltage": R(144, 2),
    "present_temperature": R(146, 1),
}

STS: dict[str, Register] = {
    "firmware_major": R(0, 1, eeprom=True),
    "firmware_minor": R(1, 1, eeprom=True),
    "model_number": R(3, 2, eeprom=True),
    "id": R(5, 1, eeprom=True),
    "baud_rate": R(6, 1, eeprom=True),
    "return_delay_time": R(7, 1, eeprom=True),  # 2 µs units
    "min_position_limit": R(9, 2, eeprom=True),
    "max_position_limit": R(11, 2, eeprom=True),
    "max_temperature_limit": R(13, 1, eeprom=True),
    "homing_offset": R(31, 2, sign_bit=11, eeprom=True),  # present = actual - offset
    "operating_mode": R(33, 1, eeprom=True),
    "torque_enable": R(40, 1),
    "acceleration": R(41, 1),  # 100 step/s² units, 0 = no ramp
    "goal_position": R(42, 2, sign_bit=15),
    "goal_time": R(44, 2),
    "goal_velocity": R(46, 2, sign_bit=15),  # step/s, 0 = maximum
    "torque_limit": R(48, 2),
    "lock": R(55, 1),  # 1: EEPROM writes are not saved
    "present_position": R(56, 2, sign_bit=15),
    "present_velocity": R(58, 2, sign_bit=15),  # step/s
    "present_load": R(60, 2, sign_bit=10),  # 0.1 %
    "present_voltage": R(62, 1),
    "present_temperature": R(63, 1),
    "status": R(65, 1),  # hardware error bits, as in the status packet's error byte
    "moving": R(66, 1),
    "present_current": R(69, 2, sign_bit=15),
}


@dataclass(frozen=True)
class ServoModel:
    """One servo model: its control table and the unit conversions the arm client needs."""

    name: str
    bus: str  # "dynamixel" | "feetech"
    model_number: int
    table: dict[str, Register]
    resolution: int  # position ticks per turn
    velocity_unit_rad_s: float  # one present_velocity unit, rad/s
    max_velocity_rad_s: float  # no-load speed at nominal voltage
    position_modes: tuple[int, ...]  # operating_mode values that track goal_position
    acceleration_unit_rad_s2: float = 0.0  # one profile_acceleration / acceleration unit, rad/s²
    firmware: int = 0  # the simulator's firmware version byte
    current_unit: str = ""

    @property
    def rad_per_tick(self) -> float:
        return 2.0 * math.pi / self.resolution

    def register(self, name: str) -> Register:
        reg = self.table.get(name)
        if reg is None:
            raise KeyError(f"{self.name} has no register {name!r}")
        return reg


_RPM_0229 = 0.229 * 2.0 * math.pi / 60.0
_DXL_ACC = 214.577 * 2.0 * math.pi / 3600.0  # rev/min² → rad/s²
_STS_STEP = 2.0 * math.pi / 4096.0

MODELS: dict[str, ServoModel] = {
    m.name: m
    for m in (
        ServoModel("xl330-m288", "dynamixel", 1200, DYNAMIXEL_X, 4096, _RPM_0229, 10.8, (3, 4, 5), _DXL_ACC, 52, "mA"),
        ServoModel("xl430-w250", "dynamixel", 1060, DYNAMIXEL_X, 4096, _RPM_0229, 6.0, (3, 4), _DXL_ACC, 52, "0.1%"),
        ServoModel(
            "xm430-w350", "dynamixel", 1020, DYNAMIXEL_X, 4096, _RPM_0229, 4.8, (3, 4, 5), _DXL_ACC, 52, "2.69mA"
        ),
        ServoModel("sts3215", "feetech", 777, STS, 4096, _STS_STEP, 4.7, (0,), 100 * _STS_STEP, 3, "6.5mA"),
    )
}


def model(name: str, bus: str | None = None) -> ServoModel:
    """The model by name (case-insensitive); a clear error lists the known ones."""
    m = MODELS.get(name.lower())
    if m is None or (bus is not None and m.bus != bus):
        known = sorted(k for k, v in MODELS.items() if bus is None or v.bus == bus)
        raise KeyError(f"unknown {bus + ' ' if bus else ''}servo model {name!r}; known: {', '.join(known)}")
    return m


def model_by_number(bus: str, number: int) -> ServoModel | None:
    for m in MODELS.values():
        if m.bus == bus and m.model_number == number:
            return m
    return None
