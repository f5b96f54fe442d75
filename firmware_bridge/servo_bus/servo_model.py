"""One simulated bus servo: its control table in memory, profile-following motion, error bits, watchdog. Pure
(the caller passes the time); `simulator.py` puts a bus of them on a pseudo-terminal."""

from __future__ import annotations

import math

from firmware_bridge.servo_bus import dynamixel as dxl
from firmware_bridge.servo_bus.control_tables import ServoModel

# Hardware error bits (Dynamixel Hardware Error Status / Feetech Status): overheating is bit 2 on both.
HW_OVERHEAT = 1 << 2
HW_OVERLOAD_DXL = 1 << 5
HW_OVERLOAD_STS = 1 << 5
_NO_LIMIT_ACC = 1e9


class SimServo:
    """A servo's registers and motion. Positions are ticks; `actual` is the shaft before the homing offset."""

    def __init__(self, model: ServoModel, servo_id: int, actual: float = 2048.0) -> None:
        self.model = model
        self.mem = bytearray(256)
        self.actual = float(actual)
        self.velocity = 0.0  # ticks/s
        self.target = float(actual)
        self.answering = True
        self.external = False  # a plant moves the shaft (the simulator sets `actual` from its measurement)
        self.corrupt_replies = 0
        self.temperature = 35.0
        self.last_rx = 0.0
        self.watchdog_fired = False
        self._eeprom_saved = b""
        self._set("model_number", model.model_number)
        self._set("id", servo_id)
        self._set("return_delay_time", 0)
        self._set("max_position_limit", model.resolution - 1)
        self._set("min_position_limit", 0)
        if model.bus == "dynamixel":
            self._set("firmware_version", model.firmware)
            self._set("baud_rate", 3)  # 1 Mbps
            self._set("operating_mode", 3)  # position control
            self._set("temperature_limit", 72)
            self._set("shutdown", 0x34)  # overload, electrical shock, overheating
            self._set("status_return_level", 2)
            self._set("velocity_limit", 200)
        else:
            self._set("firmware_major", model.firmware)
            self._set("firmware_minor", 10)
            self._set("baud_rate", 0)  # 1 Mbps
            self._set("max_temperature_limit", 70)
            self._set("torque_limit", 1000)
            self._set("lock", 1)
        self._set("goal_position", self.present_position())
        self._eeprom_saved = bytes(self.mem)

    # --- registers ------------------------------------------------------------------------------------------

    def _set(self, name: str, value: int) -> None:
        reg = self.model.register(name)
        self.mem[reg.address : reg.address + reg.size] = reg.encode(value)

    def get(self, name: str) -> int:
        reg = self.model.register(name)
        return reg.decode(bytes(self.mem[reg.address : reg.address + reg.size]))

    @property
    def servo_id(self) -> int:
        return self.get("id")

    @property
    def dynamixel(self) -> bool:
        return self.model.bus == "dynamixel"

    def _offset(self) -> int:
        return self.get("homing_offset")

    def present_position(self) -> int:
        if self.dynamixel:
            return round(self.actual) + self._offset()
        return (round(self.actual) - self._offset()) % self.model.resolution

    def _actual_of(self, present: int) -> float:
        if self.dynamixel:
            return float(present - self._offset())
        # the nearest shaft angle with this present value (the STS wraps at one turn)
        res = self.model.resolution
        base = present + self._offset()
        k = round((self.actual - base) / res)
        return float(base + k * res)

    def _refresh(self) -> None:
        self._set("present_position", self.present_position())
        vel = round(self.velocity * self.model.rad_per_tick / self.model.velocity_unit_rad_s)
        self._set("present_velocity", max(-32767, min(32767, vel)))
        self._set("present_temperature", round(self.temperature))
        self._set("moving", 1 if abs(self.velocity) > 1.0 else 0)
        if self.dynamixel:
            self._set("present_current", max(-32767, min(32767, round(self.velocity * 0.05))))
            self._set("present_input_voltage", 120)
        else:
            self._set("present_load", max(-1023, min(1023, round(self.velocity * 0.05))))
            self._set("present_voltage", 120)

    def read(self, address: int, length: int) -> bytes | None:
        """Register bytes, or None for an access outside the table."""
        if address < 0 or length < 1 or address + length > len(self.mem):
            return None
        self._refresh()
        return bytes(self.mem[address : address + length])

    def write(self, address: int, data: bytes) -> int:
        """Apply a write; returns the status error number (0 ok), as the servo would answer it."""
        if address < 0 or address + len(data) > len(self.mem):
            return dxl.ERRNUM_ACCESS
        names = [
            n for n, r in self.model.table.items() if r.address < address + len(data) and address < r.address + r.size
        ]
        torque = self.torque_on
        for n in names:
            reg = self.model.table[n]
            if n.startswith("present") or n in ("model_number", "firmware_version", "firmware_major", "moving"):
                return dxl.ERRNUM_ACCESS
            if self.dynamixel and reg.eeprom and torque:
                return dxl.ERRNUM_ACCESS  # X series: EEPROM is locked while torque is on
            if self.dynamixel and n == "goal_position" and self.watchdog_fired:
                return dxl.ERRNUM_DATA_RANGE
        old = bytes(self.mem)
        self.mem[address : address + len(data)] = data
        if "goal_position" in names:
            goal = self.get("goal_position")
            lo, hi = self.get("min_position_limit"), self.get("max_position_limit")
            if not lo <= goal <= hi:
                if self.dynamixel:
                    self.mem[:] = old
                    return dxl.ERRNUM_DATA_LIMIT
                goal = max(lo, min(hi, goal))  # the STS clamps to its limits
                self._set("goal_position", goal)
            self.target = self._actual_of(goal)
        if "torque_enable" in names:
            if self.get("torque_enable") and self.hardware_error:
                self._set("torque_enable", 0)  # a servo with a hardware error stays off until rebooted
            elif self.get("torque_enable") and not (old[self.model.register("torque_enable").address]):
                self.target = self._actual_of(self.get("goal_position"))
        if "bus_watchdog" in names and self.get("bus_watchdog") == 0:
            self.watchdog_fired = False
        if not self.dynamixel and self.get("lock") == 0:
            self._eeprom_saved = bytes(self.mem)  # an unlocked STS saves its EEPROM area
        elif self.dynamixel:
            self._eeprom_saved = bytes(self.mem)
        return 0

    @property
    def torque_on(self) -> bool:
        return bool(self.get("torque_enable"))

    @property
    def hardware_error(self) -> int:
        return self.get("hardware_error_status") if self.dynamixel else self.get("status")

    def error_byte(self) -> int:
        """The error byte of this servo's status packets (instruction errors are added by the caller)."""
        hw = self.hardware_error
        if self.dynamixel:
            return dxl.ERROR_ALERT if hw else 0
        return hw

    # --- behaviour ------------------------------------------------------------------------------------------

    def heard(self, now: float) -> None:
        self.last_rx = now

    def overheat(self, on: bool = True) -> None:
        self.temperature = 80.0 if on else 35.0

    def step(self, now: float, dt: float) -> None:
        """Advance the motion by dt seconds; fire the watchdog and the thermal shutdown."""
        limit = self.get("temperature_limit" if self.dynamixel else "max_temperature_limit")
        if self.temperature > limit and not self.hardware_error & HW_OVERHEAT:
            self._set("hardware_error_status" if self.dynamixel else "status", self.hardware_error | HW_OVERHEAT)
            self._set("torque_enable", 0)
        if self.dynamixel:
            wd = self.get("bus_watchdog")
            if 0 < wd < 0xFF and self.torque_on and now - self.last_rx > wd * 0.020:
                self.watchdog_fired = True
                self._set("bus_watchdog", 0xFF)
                self.target = self.actual  # it stops where it is and holds
        if self.external:
            return
        if not self.torque_on:
            self.velocity = 0.0  # a light, geared joint stays where it is (or where a hand moves it)
            return
        vmax, amax = self._profile()
        e = self.target - self.actual
        speed = min(vmax, math.sqrt(2.0 * amax * abs(e)), abs(e) / dt if dt > 0 else vmax)
        dv = math.copysign(speed, e) - self.velocity
        dv = max(-amax * dt, min(amax * dt, dv))
        self.velocity += dv
        self.actual += self.velocity * dt

    def _profile(self) -> tuple[float, float]:
        """Velocity and acceleration bounds in ticks/s and ticks/s² (0 in a profile register: the model's max)."""
        m = self.model
        vmax = m.max_velocity_rad_s / m.rad_per_tick
        if self.dynamixel:
            pv, pa = self.get("profile_velocity"), self.get("profile_acceleration")
        else:
            pv, pa = self.get("goal_velocity"), self.get("acceleration")
        if pv > 0:
            vmax = min(vmax, pv * m.velocity_unit_rad_s / m.rad_per_tick)
        amax = pa * m.acceleration_unit_rad_s2 / m.rad_per_tick if pa > 0 else _NO_LIMIT_ACC
        return vmax, amax

    def reboot(self) -> None:
        """Dynamixel REBOOT / a power cycle: RAM back to defaults, hardware error cleared, torque off."""
        actual, saved, answering, external = self.actual, self._eeprom_saved, self.answering, self.external
        self.__init__(self.model, self.servo_id, actual)  # type: ignore[misc]
        self.answering, self.external = answering, external
        eeprom_end = 64 if self.dynamixel else 40
        self.mem[:eeprom_end] = saved[:eeprom_end]
        self._eeprom_saved = saved
        self._set("goal_position", self.present_position())
        self.target = self.actual
