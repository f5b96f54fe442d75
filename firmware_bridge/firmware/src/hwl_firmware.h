/*
 * harmowam arm link: the firmware half (PROTOCOL.md §7-§9). Portable C99: no malloc, no OS calls.
 *
 * Port it by implementing the HAL below for your MCU, filling an hwl_config_t, then:
 *   hwl_fw_init(&fw, &cfg, &hal);
 *   on received bytes (main loop, not an ISR):  hwl_fw_rx(&fw, bytes, n);
 *   as often as possible (at least at the control rate):  hwl_fw_poll(&fw);
 * The firmware runs the reference limiter at the control rate, feeds it to the drives through
 * write_setpoints, streams STATE at the state rate and in reply to every COMMAND, and enforces the watchdog.
 */
#ifndef HWL_FIRMWARE_H
#define HWL_FIRMWARE_H

#include "hwl_protocol.h"

typedef struct {
    void *ctx; /* passed back to every call */
    /* Monotonic microseconds since boot. */
    uint64_t (*time_us)(void *ctx);
    /* Measured joints (rad, rad/s), effort (N·m; NULL when the config says no effort) and gripper (m). */
    void (*read_joints)(void *ctx, float *positions, float *velocities, float *effort, float *gripper);
    /* The limited reference for the drives: positions (rad), velocities (rad/s), gripper opening (m). */
    void (*write_setpoints)(void *ctx, const float *positions, const float *velocities, float gripper);
    /* Torque on (1) / off (0). Off must also engage brakes where the arm has them. */
    void (*set_torque)(void *ctx, int on);
    /* Queue bytes for the host; never block (drop when the buffer is full: the host detects the gap). */
    void (*write_bytes)(void *ctx, const uint8_t *data, size_t len);
    /* Optional (may be NULL): the hardware e-stop input (nonzero = pressed), a drive fault (nonzero = fault). */
    int (*estop_input)(void *ctx);
    int (*drive_fault)(void *ctx);
} hwl_hal_t;

typedef struct {
    uint8_t joint_count;
    uint8_t arm; /* this controller's address, 0..7 */
    uint8_t has_gripper;
    uint8_t reports_effort;
    float position_min[HWL_MAX_JOINTS];
    float position_max[HWL_MAX_JOINTS];
    float max_velocity[HWL_MAX_JOINTS];
    float max_acceleration[HWL_MAX_JOINTS];
    float gripper_limits[4]; /* min, max (m), max velocity (m/s), max acceleration (m/s^2) */
    char firmware_id[HWL_FIRMWARE_ID_SIZE];
    uint8_t firmware_version[3];
    uint16_t state_rate_hz;
    uint16_t control_rate_hz;
    uint16_t watchdog_hold_ms;
    uint16_t watchdog_off_ms;
    uint32_t boot_id; /* different on every boot: a counter in flash or a random number */
} hwl_config_t;

/* Axes = joints + gripper. */
#define HWL_MAX_AXES (HWL_MAX_JOINTS + 1)

typedef struct {
    hwl_config_t cfg;
    hwl_hal_t hal;
    hwl_decoder_t decoder;
    uint8_t rx_frame[HWL_MAX_FRAME];
    uint8_t tx_content[HWL_MAX_FRAME];
    uint8_t tx_wire[HWL_MAX_WIRE];
    uint32_t schema_hash;
    uint8_t mode;
    uint8_t session_open;
    uint8_t torque;
    uint8_t watchdog_off_latched;
    uint8_t hardware_estop;
    uint8_t drive_fault;
    unsigned axes;
    uint64_t boot_us;
    uint64_t last_feed_us;
    uint64_t t_ctrl_us;
    uint64_t next_state_us;
    uint64_t t_target_us;
    uint32_t ctrl_period_us;
    uint32_t state_period_us;
    uint32_t tx_seq;
    uint32_t last_command_seq;
    uint32_t events;
    uint32_t bad_frames;
    uint32_t rx_errors_seen;
    float lo[HWL_MAX_AXES], hi[HWL_MAX_AXES], vmax[HWL_MAX_AXES], amax[HWL_MAX_AXES];
    float ref_p[HWL_MAX_AXES], ref_v[HWL_MAX_AXES];
    float target[HWL_MAX_AXES], vff[HWL_MAX_AXES];
    /* counters for diagnostics */
    uint32_t frames_rx, frames_tx, commands, commands_ignored, commands_rejected;
} hwl_fw_t;

/* Returns 0, or -1 when the config is invalid (joint count, limits, rates, watchdog). */
int hwl_fw_init(hwl_fw_t *fw, const hwl_config_t *cfg, const hwl_hal_t *hal);
/* Feed received bytes: frames are handled as they complete; replies go out through hal.write_bytes. */
void hwl_fw_rx(hwl_fw_t *fw, const uint8_t *data, size_t len);
/* Run the control steps that are due (limiter, watchdog, drives) and send the periodic STATE if due. */
void hwl_fw_poll(hwl_fw_t *fw);
/* Firmware time (us) at which hwl_fw_poll next has work. */
uint64_t hwl_fw_next_deadline_us(const hwl_fw_t *fw);
/* Fault bits as the next STATE would report them. */
uint32_t hwl_fw_fault_bits(const hwl_fw_t *fw);

#endif /* HWL_FIRMWARE_H */
