"""Every fault the simulator can inject, against the client: it neither crashes nor loses valid data, and it
reports what happened (counters, events, typed errors). The unplug test stands in for a USB unplug: a PTY closes
and a stable symlink (like /dev/serial/by-id/...) is re-pointed at a fresh one, as udev does on replug."""

from __future__ import annotations

import time

import numpy as np
import pytest

from firmware_bridge import ArmLink, ArmMode, FaultBits, FirmwareSimulator, LinkEventKind, NackReason
from firmware_bridge import protocol as p
from firmware_bridge.errors import (
    LinkDownError,
    ProtocolVersionError,
    RequestRejectedError,
    RequestTimeoutError,
    SchemaMismatchError,
)
from firmware_bridge.firmware_core import FirmwareCore

from .conftest import wait_for


def _events(link: ArmLink) -> list[LinkEventKind]:
    return [e.kind for e in link.poll_events()]


def test_dropped_frames_are_counted_as_sequence_gaps(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port)
    n0 = link.stats.states_rx
    sim.drop(5)
    assert wait_for(lambda: link.stats.states_rx >= n0 + 20)
    assert link.stats.seq_gaps == 5
    assert not link.link_lost.is_set()


def test_corrupted_frames_are_counted_and_skipped(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port)
    sim.corrupt(3)
    n0 = link.stats.states_rx
    assert wait_for(lambda: link.stats.states_rx >= n0 + 20)
    stats = link.stats
    assert stats.crc_errors == 3
    assert stats.seq_gaps == 3  # the three corrupted frames are missing from the sequence, nothing else
    assert stats.resyncs >= 3


def test_garbage_on_the_line_loses_no_valid_frame(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port)
    rng = np.random.default_rng(1)
    for _ in range(20):
        sim.inject(rng.integers(0, 256, int(rng.integers(1, 600)), dtype=np.uint8).tobytes())
        time.sleep(0.01)
    n0 = link.stats.states_rx
    assert wait_for(lambda: link.stats.states_rx >= n0 + 10)
    stats = link.stats
    assert stats.seq_gaps == 0  # garbage between frames costs no frame (every frame starts with 0x00)
    assert stats.seq_out_of_order == 0
    assert stats.resyncs > 0
    assert stats.discarded_bytes > 0


def test_delayed_frames_set_link_lost_then_arrive_complete(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port, state_timeout=0.1)
    sim.delay(0.4)
    assert link.link_lost.wait(2.0)
    sim.delay(0.0)
    assert wait_for(lambda: not link.link_lost.is_set())
    kinds = _events(link)
    assert kinds.index(LinkEventKind.LINK_LOST) < kinds.index(LinkEventKind.LINK_RESTORED)
    assert link.stats.seq_gaps == 0  # late, not lost
    assert link.stats.link_lost == 1


def test_a_firmware_that_stops_answering(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port, request_timeout=0.05, request_retries=2)
    link.enable()
    link.send_setpoint(link.state().positions)
    sim.stop_answering()
    assert link.link_lost.wait(2.0)
    with pytest.raises(RequestTimeoutError, match="no ACK for DISABLE after 2 tries"):
        link.disable()
    # meanwhile the firmware's watchdog held the arm (and, on a slow machine, may already have turned torque off)
    assert wait_for(lambda: sim.status().mode in (ArmMode.HOLD, ArmMode.DISABLED))
    assert sim.status().fault_bits & (FaultBits.WATCHDOG_HOLD | FaultBits.WATCHDOG_TORQUE_OFF)
    sim.resume()
    assert wait_for(lambda: not link.link_lost.is_set())
    assert LinkEventKind.LINK_RESTORED in _events(link)
    assert link.state().mode in (ArmMode.HOLD, ArmMode.DISABLED)
    assert link.disable() is ArmMode.DISABLED


def test_a_dropped_request_is_retried(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port, request_timeout=0.1)
    sim.drop(1, direction="rx")
    assert link.enable() is ArmMode.ENABLED
    assert link.stats.request_retries == 1


def test_corrupted_commands_are_reported_by_the_firmware(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port)
    sim.corrupt(2, direction="rx")
    for _ in range(4):
        link.heartbeat()
    assert wait_for(lambda: link.stats.firmware_rx_errors == 2)
    assert sim.status().rx_errors == 2


def test_reboot_is_detected_and_the_arm_comes_back_disabled(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port)
    link.enable()
    boot_before = link.info.boot_id
    sim.reboot()
    assert wait_for(lambda: LinkEventKind.FIRMWARE_REBOOTED in [e.kind for e in link.poll_events()])
    assert wait_for(lambda: link.info.boot_id != boot_before)  # re-handshaked with the new boot
    assert link.info.boot_id == sim.status().boot_id
    assert link.state().mode is ArmMode.DISABLED
    assert link.stats.reboots == 1
    assert wait_for(lambda: sim.status().session_open)
    assert link.enable() is ArmMode.ENABLED


def test_reboot_is_detected_even_when_the_new_clock_is_ahead(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port)
    link.enable()
    sim.reboot(uptime=100.0)  # time does not go backwards: sequence numbers and the lost session tell
    assert wait_for(lambda: LinkEventKind.FIRMWARE_REBOOTED in [e.kind for e in link.poll_events()])
    assert wait_for(lambda: link.info.boot_id == sim.status().boot_id)
    assert link.stats.reboots == 1
    assert link.state().mode is ArmMode.DISABLED
    assert link.enable() is ArmMode.ENABLED
    time.sleep(0.1)
    assert link.stats.reboots == 1  # one reboot, one event


def test_unplug_replug_reconnects_and_comes_back_disabled(start_sim, open_link, tmp_path) -> None:
    # stands in for a USB unplug: the PTY vanishes, the by-id style symlink is re-pointed on replug
    sim = start_sim(link_path=tmp_path / "usb-harmowam-arm0")
    link = open_link(sim.port, reconnect_interval=0.05)
    link.enable()
    assert wait_for(lambda: link.state().mode is ArmMode.ENABLED)
    sim.unplug()
    assert wait_for(lambda: not link.connected)
    with pytest.raises(LinkDownError, match="unplugged"):
        link.send_setpoint(np.zeros(6))
    assert link.link_lost.is_set()
    sim.replug()  # well within the firmware's 1 s watchdog: only the new session disables the arm
    assert wait_for(lambda: link.connected and not link.link_lost.is_set())
    kinds = _events(link)
    assert kinds.index(LinkEventKind.DISCONNECTED) < kinds.index(LinkEventKind.RECONNECTED)
    assert link.state().mode is ArmMode.DISABLED
    assert link.stats.reconnects == 1
    assert link.stats.disconnects == 1
    assert link.enable() is ArmMode.ENABLED
    link.send_setpoint(link.state().positions)


def test_unplug_without_a_stable_path_stays_down(start_sim, open_link) -> None:
    sim = start_sim()  # a bare PTY: it cannot come back, like /dev/ttyACM0 returning as ttyACM1
    link = open_link(sim.port, reconnect=False)
    sim.unplug()
    assert wait_for(lambda: not link.connected)
    sim.replug()
    time.sleep(0.2)
    with pytest.raises(LinkDownError, match="reconnect is off"):
        link.heartbeat()


def test_hardware_estop_button(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port)
    link.enable()
    sim.press_estop()
    assert wait_for(lambda: link.state().mode is ArmMode.ESTOP)
    assert FaultBits.HARDWARE_ESTOP & link.state().fault_bits
    with pytest.raises(RequestRejectedError, match="button is pressed") as err:
        link.reset_estop()
    assert err.value.reason == NackReason.HARDWARE_ESTOP
    sim.release_estop()
    assert link.reset_estop() is ArmMode.DISABLED
    assert any(e.kind is LinkEventKind.MODE_CHANGED and e.mode is ArmMode.ESTOP for e in link.poll_events())


def test_drive_fault_refuses_enable(start_sim, open_link) -> None:
    sim = start_sim()
    link = open_link(sim.port)
    sim.set_drive_fault(True)
    with pytest.raises(RequestRejectedError, match="driver reports a fault"):
        link.enable()
    sim.set_drive_fault(False)
    assert link.enable() is ArmMode.ENABLED


class _ForeignCore(FirmwareCore):
    """A firmware of another protocol major (2.3)."""

    def _frame(self, msg: p.Message) -> bytes:
        self._tx_seq += 1
        return p.encode(msg, seq=self._tx_seq, arm=self.config.arm, major=2)

    def hello_ack(self, request_seq: int) -> p.HelloAck:
        ack = super().hello_ack(request_seq)
        return p.HelloAck(**{**{f: getattr(ack, f) for f in ack.__slots__}, "major": 2, "minor": 3})


class _EditedCore(FirmwareCore):
    """Same protocol version, but built from edited layouts (a different schema hash)."""

    def hello_ack(self, request_seq: int) -> p.HelloAck:
        ack = super().hello_ack(request_seq)
        return p.HelloAck(**{**{f: getattr(ack, f) for f in ack.__slots__}, "schema_hash": 0x12345678})


class _NewerMinorCore(FirmwareCore):
    def hello_ack(self, request_seq: int) -> p.HelloAck:
        ack = super().hello_ack(request_seq)
        return p.HelloAck(**{**{f: getattr(ack, f) for f in ack.__slots__}, "minor": 7, "schema_hash": 0x1})


def _sim_with(core: type[FirmwareCore]) -> FirmwareSimulator:
    sim = FirmwareSimulator()
    sim.core_class = core  # type: ignore[misc]
    sim.start()
    return sim


def test_another_major_version_is_refused_naming_both() -> None:
    sim = _sim_with(_ForeignCore)
    try:
        with pytest.raises(ProtocolVersionError, match=r"firmware speaks arm protocol 2\.3, this host speaks 1\.0"):
            ArmLink.open(sim.port, handshake_timeout=0.2)
    finally:
        sim.stop()


def test_a_schema_mismatch_is_refused_naming_both() -> None:
    sim = _sim_with(_EditedCore)
    try:
        with pytest.raises(SchemaMismatchError, match=r"both claim arm protocol 1\.0.*0x12345678.*0x73573f94"):
            ArmLink.open(sim.port, handshake_timeout=0.2)
    finally:
        sim.stop()


def test_a_newer_minor_version_is_compatible() -> None:
    sim = _sim_with(_NewerMinorCore)
    try:
        with ArmLink.open(sim.port) as link:
            assert link.info.protocol == (1, 7)
    finally:
        sim.stop()


def test_several_simulators_in_one_process(start_sim, open_link) -> None:
    sims = [start_sim("python", p_cfg) for p_cfg in (None, None, None)]
    links = [open_link(s.port) for s in sims]
    for link in links:
        link.enable()
    for _ in range(80):  # 0.4 s at 200 Hz to all three
        for link in links:
            link.send_setpoint(np.full(6, 0.05))
        time.sleep(0.005)
    assert wait_for(lambda: all(abs(link.state().positions[0] - 0.05) < 1e-6 for link in links))
    assert len({s.pty_path for s in sims}) == 3
