"""The bus timing budget: what one control tick costs on a half-duplex servo bus. Pure.

One tick = a sync write of the goal positions (no reply) + a sync read of the present values: the instruction,
then each servo's status packet in turn, each after that servo's return delay. A UART byte is 10 bits (8N1).
The host also waits once per read for the USB adapter to hand the replies over (FTDI latency timer, 1 ms when set
as the README says; a CDC adapter is faster).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from firmware_bridge.servo_bus.dynamixel import DynamixelCodec
from firmware_bridge.servo_bus.feetech import FeetechCodec
from firmware_bridge.servo_bus.packets import PacketCodec

BITS_PER_BYTE = 10

# What the arm client moves per tick, per bus: (goal bytes per servo, present bytes per servo).
TICK_LAYOUT = {
    "dynamixel": (4, 10),  # goal_position (4) | present_current (2) + present_velocity (4) + present_position (4)
    "feetech": (2, 6),  # goal_position (2) | present_position (2) + present_velocity (2) + present_load (2)
}


def codec_for(bus: str) -> PacketCodec:
    if bus == "dynamixel":
        return DynamixelCodec()
    if bus == "feetech":
        return FeetechCodec()
    raise ValueError(f"bus: expected 'dynamixel' or 'feetech', got {bus!r}")


@dataclass(frozen=True)
class TickBudget:
    bus: str
    servos: int
    baudrate: int
    write_bytes: int
    read_request_bytes: int
    read_reply_bytes: int
    return_delay_s: float  # all servos together
    latency_s: float  # host-side wait per read transaction
    tick_s: float  # the whole transaction

    @property
    def wire_bytes(self) -> int:
        return self.write_bytes + self.read_request_bytes + self.read_reply_bytes

    @property
    def wire_s(self) -> float:
        return self.wire_bytes * BITS_PER_BYTE / self.baudrate

    @property
    def max_rate_hz(self) -> float:
        return 1.0 / self.tick_s


def tick_budget(
    bus: str,
    servos: int,
    baudrate: int,
    *,
    return_delay_us: float = 0.0,
    latency_s: float = 0.0,
    batched_reads: bool = False,
) -> TickBudget:
    """Bytes and seconds for one sync write + one sync read of `servos` servos at `baudrate`; with
    `batched_reads` (servos without sync read), one READ per servo, each waiting its own latency."""
    if servos < 1:
        raise ValueError(f"servos: expected at least 1, got {servos}")
    if baudrate <= 0:
        raise ValueError(f"baudrate: expected a positive rate, got {baudrate}")
    codec = codec_for(bus)
    goal, present = TICK_LAYOUT[bus]
    header = len(codec.sync_read_params(0, 0, []))  # address + length fields
    write = codec.instruction_size(header + servos * (1 + goal))
    if batched_reads:
        request = servos * codec.instruction_size(len(codec.read_params(0, present)))
        latency_s *= servos
    else:
        request = codec.instruction_size(header + servos)
    replies = servos * codec.status_size(present)
    delay = servos * return_delay_us * 1e-6
    wire = (write + request + replies) * BITS_PER_BYTE / baudrate
    return TickBudget(bus, servos, baudrate, write, request, replies, delay, latency_s, wire + delay + latency_s)


def max_servos(bus: str, baudrate: int, rate_hz: float, *, return_delay_us: float = 0.0, latency_s: float = 0.0) -> int:
    """The most servos whose tick fits one period at `rate_hz` (0 if not even one does)."""
    n = 0
    while (
        n < 253
        and tick_budget(bus, n + 1, baudrate, return_delay_us=return_delay_us, latency_s=latency_s).tick_s
        <= 1.0 / rate_hz
    ):
        n += 1
    return n


def check_rate(
    bus: str,
    servos: int,
    baudrate: int,
    rate_hz: float,
    *,
    return_delay_us: float = 0.0,
    latency_s: float = 0.0,
    utilisation: float = 0.8,
    batched_reads: bool = False,
) -> TickBudget:
    """The budget, or ValueError (the caller names its file and field) when a tick does not fit `utilisation`
    of the control period: the rest is kept for retries, torque writes and the occasional slow reply."""
    b = tick_budget(
        bus, servos, baudrate, return_delay_us=return_delay_us, latency_s=latency_s, batched_reads=batched_reads
    )
    period = 1.0 / rate_hz
    if b.tick_s > utilisation * period:
        best = math.floor(utilisation / b.tick_s)
        raise ValueError(
            f"{servos} {bus} servos at {baudrate} baud need {b.tick_s * 1e3:.2f} ms per tick "
            f"({b.wire_bytes} bytes on the wire {b.wire_s * 1e3:.2f} ms + return delays {b.return_delay_s * 1e3:.2f} "
            f"ms + latency {b.latency_s * 1e3:.2f} ms), more than {utilisation:.0%} of the {period * 1e3:.2f} ms "
            f"period at {rate_hz:g} Hz: lower the rate to {best} Hz or less, raise the baud rate, or split the bus"
        )
    return b
