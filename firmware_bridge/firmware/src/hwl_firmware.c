/* harmowam arm link: firmware state machine, watchdog and reference limiter (PROTOCOL.md §7-§9).
 * The Python twin is firmware_bridge/firmware_core.py; keep them in step. */
#include "hwl_firmware.h"

#include <math.h>
#include <string.h>

#define MAX_CATCH_UP_STEPS 50u
#define EPS 1e-6f
#define LIMIT_SLACK 1e-6f /* rad (or m); the same in limiter.py */

static uint64_t now_us(const hwl_fw_t *fw) { return fw->hal.time_us(fw->hal.ctx); }

/* ------------------------------------------------------------------------------------------------ transmit */

static void send(hwl_fw_t *fw, uint8_t type, size_t body_len) {
    hwl_header_t h;
    size_t n;
    fw->tx_seq++;
    h.major = HWL_PROTOCOL_MAJOR;
    h.type = type;
    h.arm = fw->cfg.arm;
    h.flags = 0;
    h.seq = fw->tx_seq;
    hwl_header_encode(&h, fw->tx_content);
    n = hwl_frame_encode(fw->tx_content, HWL_HEADER_SIZE + body_len, fw->tx_wire, sizeof(fw->tx_wire));
    if (n > 0) {
        fw->hal.write_bytes(fw->hal.ctx, fw->tx_wire, n);
        fw->frames_tx++;
    }
}

static uint8_t *tx_body(hwl_fw_t *fw) { return fw->tx_content + HWL_HEADER_SIZE; }

static void send_ack(hwl_fw_t *fw, const hwl_header_t *req) {
    hwl_reply_t r;
    r.request_type = req->type;
    r.reason = 0;
    r.mode = fw->mode;
    r.request_seq = req->seq;
    r.detail = 0;
    send(fw, HWL_ACK, hwl_encode_ack(&r, tx_body(fw)));
}

static void send_nack(hwl_fw_t *fw, const hwl_header_t *req, uint8_t reason, uint32_t detail) {
    hwl_reply_t r;
    r.request_type = req->type;
    r.reason = reason;
    r.mode = fw->mode;
    r.request_seq = req->seq;
    r.detail = detail;
    send(fw, HWL_NACK, hwl_encode_nack(&r, tx_body(fw)));
}

uint32_t hwl_fw_fault_bits(const hwl_fw_t *fw) {
    uint32_t bits = fw->events;
    if (fw->mode == HWL_MODE_HOLD) {
        bits |= HWL_FAULT_WATCHDOG_HOLD;
    }
    if (fw->watchdog_off_latched) {
        bits |= HWL_FAULT_WATCHDOG_TORQUE_OFF;
    }
    if (fw->mode == HWL_MODE_ESTOP) {
        bits |= HWL_FAULT_ESTOP_LATCHED;
    }
    if (fw->hardware_estop) {
        bits |= HWL_FAULT_HARDWARE_ESTOP;
    }
    if (fw->drive_fault) {
        bits |= HWL_FAULT_DRIVE_FAULT;
    }
    if (!fw->session_open) {
        bits |= HWL_FAULT_NO_SESSION;
    }
    return bits;
}

static void send_state(hwl_fw_t *fw, uint64_t now, int reply) {
    hwl_state_t s;
    unsigned n = fw->cfg.joint_count;
    float gripper = 0.0f;
    memset(&s, 0, sizeof(s));
    fw->hal.read_joints(fw->hal.ctx, s.positions, s.velocities, fw->cfg.reports_effort ? s.effort : NULL, &gripper);
    s.firmware_time_us = now - fw->boot_us;
    s.last_command_seq = fw->last_command_seq;
    s.fault_bits = hwl_fw_fault_bits(fw);
    s.mode = fw->mode;
    s.joint_count = (uint8_t)n;
    s.flags = (uint8_t)((reply ? HWL_STATE_IS_REPLY : 0u) | (fw->cfg.reports_effort ? HWL_STATE_HAS_EFFORT : 0u) |
                        (fw->cfg.has_gripper ? HWL_STATE_HAS_GRIPPER : 0u));
    s.gripper = fw->cfg.has_gripper ? gripper : 0.0f;
    s.rx_errors = (uint16_t)(fw->rx_errors_seen & 0xFFFFu);
    fw->events = 0;
    /* a reply postpones the timer by 1.5 periods: a host streaming at the state rate with some jitter gets exactly
     * one STATE per COMMAND, and the timer takes over once it stops */
    fw->next_state_us = now + (reply ? fw->state_period_us + fw->state_period_us / 2u : fw->state_period_us);
    send(fw, HWL_STATE, hwl_encode_state(&s, tx_body(fw)));
}

static void send_hello_ack(hwl_fw_t *fw, uint32_t request_seq) {
    hwl_hello_ack_t a;
    const hwl_config_t *c = &fw->cfg;
    unsigned i;
    memset(&a, 0, sizeof(a));
    a.major = HWL_PROTOCOL_MAJOR;
    a.minor = HWL_PROTOCOL_MINOR;
    a.schema_hash = fw->schema_hash;
    a.request_seq = request_seq;
    a.boot_id = c->boot_id;
    memcpy(a.firmware_id, c->firmware_id, HWL_FIRMWARE_ID_SIZE);
    memcpy(a.fw_version, c->firmware_version, 3);
    a.joint_count = c->joint_count;
    a.arms_served = (uint8_t)(1u << c->arm);
    a.capabilities = (uint8_t)(HWL_CAP_VELOCITY_FEEDFORWARD | (c->has_gripper ? HWL_CAP_GRIPPER : 0u) |
                               (c->reports_effort ? HWL_CAP_EFFORT : 0u) |
                               (fw->hal.estop_input != NULL ? HWL_CAP_HARDWARE_ESTOP : 0u));
    a.state_rate_hz = c->state_rate_hz;
    a.watchdog_hold_ms = c->watchdog_hold_ms;
    a.watchdog_off_ms = c->watchdog_off_ms;
    a.mode = fw->mode;
    for (i = 0; i < 4; i++) {
        a.gripper_limits[i] = c->has_gripper ? c->gripper_limits[i] : 0.0f;
    }
    for (i = 0; i < c->joint_count; i++) {
        a.position_min[i] = c->position_min[i];
        a.position_max[i] = c->position_max[i];
        a.max_velocity[i] = c->max_velocity[i];
        a.max_acceleration[i] = c->max_acceleration[i];
    }
    send(fw, HWL_HELLO_ACK, hwl_encode_hello_ack(&a, tx_body(fw)));
}

/* ------------------------------------------------------------------------------------------------ modes */

static void follow_measured(hwl_fw_t *fw) {
    float vel[HWL_MAX_JOINTS];
    float effort[HWL_MAX_JOINTS];
    float gripper = 0.0f;
    unsigned i;
    fw->hal.read_joints(fw->hal.ctx, fw->ref_p, vel, fw->cfg.reports_effort ? effort : NULL, &gripper);
    if (fw->cfg.has_gripper) {
        fw->ref_p[fw->cfg.joint_count] = gripper;
    }
    for (i = 0; i < fw->axes; i++) {
        fw->ref_v[i] = 0.0f;
    }
}

static void set_torque(hwl_fw_t *fw, int on) {
    if ((on != 0) != (fw->torque != 0)) {
        fw->torque = (uint8_t)(on != 0);
        fw->hal.set_torque(fw->hal.ctx, on != 0);
    }
}

static void torque_off(hwl_fw_t *fw, uint8_t mode) {
    set_torque(fw, 0);
    fw->mode = mode;
    follow_measured(fw);
}

static float clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* One limiter step (PROTOCOL.md §11), per axis: speed = min(vmax, discrete stopping speed, |e|/dt), |dv| <= a dt.
 * The stopping speed a dt (sqrt(1/4 + 2|e|/(a dt^2)) - 1/2) brakes onto the target without overshoot. */
static void limiter_step(hwl_fw_t *fw, const float *target, float dt) {
    unsigned i;
    for (i = 0; i < fw->axes; i++) {
        float e = target[i] - fw->ref_p[i];
        float ae = fabsf(e);
        float dv_max = fw->amax[i] * dt;
        float v_stop = dv_max * (sqrtf(0.25f + 2.0f * ae / (dv_max * dt)) - 0.5f);
        float v_land = ae / dt;
        float speed = fw->vmax[i];
        float dv;
        if (fw->vmax[i] < (v_stop < v_land ? v_stop : v_land) - EPS) {
            fw->events |= HWL_FAULT_VELOCITY_LIMITED;
        }
        if (v_stop < speed) {
            speed = v_stop;
        }
        if (v_land < speed) {
            speed = v_land;
        }
        dv = (e < 0.0f ? -speed : speed) - fw->ref_v[i];
        if (fabsf(dv) > dv_max + EPS) {
            fw->events |= HWL_FAULT_ACCELERATION_LIMITED;
        }
        dv = clampf(dv, -dv_max, dv_max);
        fw->ref_v[i] += dv;
        fw->ref_p[i] += fw->ref_v[i] * dt;
        /* rounding may land a hair past a limit that is also the target: clip, but stop only on a real overrun */
        if (fw->ref_p[i] < fw->lo[i] - LIMIT_SLACK || fw->ref_p[i] > fw->hi[i] + LIMIT_SLACK) {
            fw->ref_v[i] = 0.0f;
        }
        fw->ref_p[i] = clampf(fw->ref_p[i], fw->lo[i], fw->hi[i]);
    }
}

static void control_step(hwl_fw_t *fw, uint64_t t, uint32_t dt_us) {
    /* dt is the nominal control period except after a stall (one long step) */
    float dt = (float)dt_us * 1e-6f;
    unsigned i;
    if (fw->hal.estop_input != NULL) {
        fw->hardware_estop = (uint8_t)(fw->hal.estop_input(fw->hal.ctx) != 0);
    }
    if (fw->hal.drive_fault != NULL) {
        fw->drive_fault = (uint8_t)(fw->hal.drive_fault(fw->hal.ctx) != 0);
    }
    if (fw->hardware_estop && fw->mode != HWL_MODE_ESTOP) {
        torque_off(fw, HWL_MODE_ESTOP);
    }
    if (fw->mode == HWL_MODE_ENABLED || fw->mode == HWL_MODE_HOLD) {
        uint64_t quiet = t - fw->last_feed_us;
        float target[HWL_MAX_AXES];
        if (fw->drive_fault) {
            torque_off(fw, HWL_MODE_DISABLED);
            return;
        }
        if (quiet > (uint64_t)fw->cfg.watchdog_off_ms * 1000u) {
            fw->watchdog_off_latched = 1;
            torque_off(fw, HWL_MODE_DISABLED);
            return;
        }
        if (fw->mode == HWL_MODE_ENABLED && quiet > (uint64_t)fw->cfg.watchdog_hold_ms * 1000u) {
            /* hold: brake at the acceleration limit and stay where the joint comes to rest */
            fw->mode = HWL_MODE_HOLD;
            for (i = 0; i < fw->axes; i++) {
                float v = fw->ref_v[i];
                float ahead = v * fabsf(v) / (2.0f * fw->amax[i]) + v * (0.5e-6f * (float)fw->ctrl_period_us);
                fw->target[i] = clampf(fw->ref_p[i] + ahead, fw->lo[i], fw->hi[i]);
                fw->vff[i] = 0.0f;
            }
        }
        for (i = 0; i < fw->axes; i++) {
            target[i] = fw->target[i];
        }
        if (fw->mode == HWL_MODE_ENABLED) {
            /* velocity feed-forward moves the target between setpoints, for at most the hold timeout */
            uint64_t ahead_us = t - fw->t_target_us;
            float ahead;
            if (ahead_us > (uint64_t)fw->cfg.watchdog_hold_ms * 1000u) {
                ahead_us = (uint64_t)fw->cfg.watchdog_hold_ms * 1000u;
            }
            ahead = (float)ahead_us * 1e-6f;
            for (i = 0; i < fw->axes; i++) {
                if (fw->vff[i] != 0.0f) {
                    target[i] = clampf(fw->target[i] + fw->vff[i] * ahead, fw->lo[i], fw->hi[i]);
                }
            }
        }
        limiter_step(fw, target, dt);
        fw->hal.write_setpoints(fw->hal.ctx, fw->ref_p, fw->ref_v,
                                fw->cfg.has_gripper ? fw->ref_p[fw->cfg.joint_count] : 0.0f);
    } else {
        follow_measured(fw);
    }
}

static void advance(hwl_fw_t *fw, uint64_t now) {
    unsigned steps = 0;
    while (fw->t_ctrl_us + fw->ctrl_period_us <= now) {
        if (steps == MAX_CATCH_UP_STEPS) {
            /* stalled: one long step (still within the limits) rather than hundreds of short ones */
            control_step(fw, now, (uint32_t)(now - fw->t_ctrl_us));
            fw->t_ctrl_us = now;
            return;
        }
        fw->t_ctrl_us += fw->ctrl_period_us;
        control_step(fw, fw->t_ctrl_us, fw->ctrl_period_us);
        steps++;
    }
}

/* ------------------------------------------------------------------------------------------------ receive */

/* Requests are answered (ACK/NACK); COMMAND and HEARTBEAT are a stream and never are. */
static int is_request(uint8_t type) {
    return type == HWL_HELLO || type == HWL_ENABLE || type == HWL_DISABLE || type == HWL_ESTOP ||
           type == HWL_RESET_ESTOP;
}

static void handle_command(hwl_fw_t *fw, const hwl_header_t *h, const uint8_t *body, size_t len, uint64_t now) {
    hwl_command_t c;
    unsigned n = fw->cfg.joint_count;
    unsigned i;
    int r = hwl_decode_command(body, len, &c);
    int finite = 1;
    if (r != HWL_OK) {
        fw->bad_frames++;
        return;
    }
    if (!fw->session_open) {
        fw->events |= HWL_FAULT_COMMAND_IGNORED;
        fw->commands_ignored++;
        return;
    }
    if (c.joint_count == n) {
        for (i = 0; i < n; i++) {
            finite = finite && isfinite(c.positions[i]);
            if (c.flags & HWL_COMMAND_HAS_VELOCITIES) {
                finite = finite && isfinite(c.velocities[i]);
            }
        }
        if (c.flags & HWL_COMMAND_HAS_GRIPPER) {
            finite = finite && isfinite(c.gripper);
        }
    }
    if (c.joint_count != n || !finite) {
        fw->events |= HWL_FAULT_COMMAND_REJECTED;
        fw->commands_rejected++;
        return;
    }
    fw->commands++;
    fw->last_command_seq = h->seq;
    fw->last_feed_us = now;
    if (fw->mode == HWL_MODE_ENABLED || fw->mode == HWL_MODE_HOLD) {
        int clamped = 0;
        for (i = 0; i < n; i++) {
            float x = clampf(c.positions[i], fw->lo[i], fw->hi[i]);
            clamped |= (x != c.positions[i]);
            fw->target[i] = x;
            fw->vff[i] = (c.flags & HWL_COMMAND_HAS_VELOCITIES) ? clampf(c.velocities[i], -fw->vmax[i], fw->vmax[i])
                                                                : 0.0f;
        }
        if (fw->cfg.has_gripper) {
            if (c.flags & HWL_COMMAND_HAS_GRIPPER) {
                float g = clampf(c.gripper, fw->lo[n], fw->hi[n]);
                clamped |= (g != c.gripper);
                fw->target[n] = g;
            }
            fw->vff[n] = 0.0f;
        }
        if (clamped) {
            fw->events |= HWL_FAULT_POSITION_CLAMPED;
        }
        fw->t_target_us = now;
        fw->mode = HWL_MODE_ENABLED;
    } else {
        fw->events |= HWL_FAULT_COMMAND_IGNORED;
        fw->commands_ignored++;
    }
    send_state(fw, now, 1);
}

static void handle_frame(hwl_fw_t *fw, const uint8_t *frame, size_t len, uint64_t now) {
    hwl_header_t h;
    const uint8_t *body = frame + HWL_HEADER_SIZE;
    size_t blen;
    unsigned i;
    if (len < HWL_HEADER_SIZE) {
        fw->bad_frames++;
        return;
    }
    hwl_header_decode(frame, &h);
    blen = len - HWL_HEADER_SIZE;
    if (h.arm != fw->cfg.arm && !(h.arm == HWL_BROADCAST_ARM && h.type == HWL_ESTOP)) {
        /* not ours: a controller serving several arms on one link routes by this byte before us */
        if (is_request(h.type)) {
            send_nack(fw, &h, HWL_NACK_WRONG_ARM, 1u << fw->cfg.arm);
        }
        return;
    }
    if (h.type == HWL_ESTOP) {
        /* honoured in every state, without a session, from any protocol version */
        fw->frames_rx++;
        torque_off(fw, HWL_MODE_ESTOP);
        send_ack(fw, &h);
        return;
    }
    if (h.type == HWL_HELLO) {
        hwl_hello_t hello;
        if (hwl_decode_hello(body, blen, &hello) != HWL_OK) {
            fw->bad_frames++;
            send_nack(fw, &h, HWL_NACK_BAD_LENGTH, (uint32_t)blen);
            return;
        }
        fw->frames_rx++;
        fw->session_open = (uint8_t)(hello.major == HWL_PROTOCOL_MAJOR &&
                                     (hello.minor != HWL_PROTOCOL_MINOR || hello.schema_hash == fw->schema_hash));
        if (fw->mode == HWL_MODE_ENABLED || fw->mode == HWL_MODE_HOLD) {
            torque_off(fw, HWL_MODE_DISABLED); /* a new session starts disabled */
        }
        send_hello_ack(fw, h.seq);
        return;
    }
    if (h.major != HWL_PROTOCOL_MAJOR) {
        fw->bad_frames++;
        if (is_request(h.type)) {
            send_nack(fw, &h, HWL_NACK_VERSION_MISMATCH, ((uint32_t)HWL_PROTOCOL_MAJOR << 8) | HWL_PROTOCOL_MINOR);
        }
        return;
    }
    switch (h.type) {
    case HWL_COMMAND:
        fw->frames_rx++;
        handle_command(fw, &h, body, blen, now);
        return;
    case HWL_HEARTBEAT: {
        uint64_t host_us;
        if (hwl_decode_heartbeat(body, blen, &host_us) != HWL_OK) {
            fw->bad_frames++;
            return;
        }
        fw->frames_rx++;
        if (fw->session_open) {
            fw->last_feed_us = now;
        }
        return;
    }
    case HWL_DISABLE:
        fw->frames_rx++;
        if (fw->mode != HWL_MODE_ESTOP) {
            torque_off(fw, HWL_MODE_DISABLED);
        }
        send_ack(fw, &h);
        return;
    case HWL_ENABLE:
    case HWL_RESET_ESTOP:
        fw->frames_rx++;
        if (!fw->session_open) {
            send_nack(fw, &h, HWL_NACK_NO_SESSION, 0);
            return;
        }
        if (h.type == HWL_RESET_ESTOP) {
            if (fw->hardware_estop) {
                send_nack(fw, &h, HWL_NACK_HARDWARE_ESTOP, 0);
                return;
            }
            if (fw->mode == HWL_MODE_ESTOP) {
                fw->mode = HWL_MODE_DISABLED;
            }
            send_ack(fw, &h);
            return;
        }
        if (fw->mode == HWL_MODE_ESTOP) {
            send_nack(fw, &h, HWL_NACK_ESTOP_LATCHED, 0);
            return;
        }
        if (fw->hardware_estop) {
            send_nack(fw, &h, HWL_NACK_HARDWARE_ESTOP, 0);
            return;
        }
        if (fw->drive_fault) {
            send_nack(fw, &h, HWL_NACK_DRIVE_FAULT, 0);
            return;
        }
        if (fw->mode == HWL_MODE_DISABLED) {
            follow_measured(fw);
            for (i = 0; i < fw->axes; i++) {
                fw->target[i] = fw->ref_p[i];
                fw->vff[i] = 0.0f;
            }
            set_torque(fw, 1);
        }
        fw->mode = HWL_MODE_ENABLED;
        fw->watchdog_off_latched = 0;
        fw->last_feed_us = now;
        fw->t_target_us = now;
        send_ack(fw, &h);
        return;
    default:
        if (h.type < 0x80) {
            /* a newer host may send types we lack: say so (not a link error) */
            send_nack(fw, &h, HWL_NACK_UNKNOWN_TYPE, h.type);
        }
        return;
    }
}

void hwl_fw_rx(hwl_fw_t *fw, const uint8_t *data, size_t len) {
    size_t i;
    uint64_t now = now_us(fw);
    uint32_t errors;
    advance(fw, now);
    for (i = 0; i < len; i++) {
        size_t n = hwl_decoder_push(&fw->decoder, data[i], fw->rx_frame);
        if (n > 0) {
            handle_frame(fw, fw->rx_frame, n, now);
        }
    }
    errors = hwl_decoder_errors(&fw->decoder) + fw->bad_frames;
    if (errors != fw->rx_errors_seen) {
        fw->events |= HWL_FAULT_RX_ERROR;
        fw->rx_errors_seen = errors;
    }
}

void hwl_fw_poll(hwl_fw_t *fw) {
    uint64_t now = now_us(fw);
    advance(fw, now);
    if (now >= fw->next_state_us) {
        send_state(fw, now, 0);
    }
}

uint64_t hwl_fw_next_deadline_us(const hwl_fw_t *fw) {
    uint64_t ctrl = fw->t_ctrl_us + fw->ctrl_period_us;
    return ctrl < fw->next_state_us ? ctrl : fw->next_state_us;
}

/* ------------------------------------------------------------------------------------------------ init */

int hwl_fw_init(hwl_fw_t *fw, const hwl_config_t *cfg, const hwl_hal_t *hal) {
    unsigned i;
    unsigned n = cfg->joint_count;
    uint64_t now;
    if (n < 1 || n > HWL_MAX_JOINTS || cfg->arm > HWL_MAX_ARM || cfg->state_rate_hz == 0 ||
        cfg->control_rate_hz == 0 || cfg->watchdog_hold_ms == 0 || cfg->watchdog_hold_ms >= cfg->watchdog_off_ms ||
        hal->time_us == NULL || hal->read_joints == NULL || hal->write_setpoints == NULL || hal->set_torque == NULL ||
        hal->write_bytes == NULL) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!(cfg->position_min[i] < cfg->position_max[i]) || !(cfg->max_velocity[i] > 0.0f) ||
            !(cfg->max_acceleration[i] > 0.0f)) {
            return -1;
        }
    }
    if (cfg->has_gripper && (!(cfg->gripper_limits[0] < cfg->gripper_limits[1]) || !(cfg->gripper_limits[2] > 0.0f) ||
                             !(cfg->gripper_limits[3] > 0.0f))) {
        return -1;
    }
    memset(fw, 0, sizeof(*fw));
    fw->cfg = *cfg;
    fw->hal = *hal;
    hwl_decoder_init(&fw->decoder);
    fw->schema_hash = hwl_schema_hash();
    fw->axes = n + (cfg->has_gripper ? 1u : 0u);
    for (i = 0; i < n; i++) {
        fw->lo[i] = cfg->position_min[i];
        fw->hi[i] = cfg->position_max[i];
        fw->vmax[i] = cfg->max_velocity[i];
        fw->amax[i] = cfg->max_acceleration[i];
    }
    if (cfg->has_gripper) {
        fw->lo[n] = cfg->gripper_limits[0];
        fw->hi[n] = cfg->gripper_limits[1];
        fw->vmax[n] = cfg->gripper_limits[2];
        fw->amax[n] = cfg->gripper_limits[3];
    }
    fw->ctrl_period_us = 1000000u / cfg->control_rate_hz;
    fw->state_period_us = 1000000u / cfg->state_rate_hz;
    fw->mode = HWL_MODE_DISABLED;
    fw->hal.set_torque(fw->hal.ctx, 0);
    now = now_us(fw);
    fw->boot_us = now;
    fw->last_feed_us = now;
    fw->t_ctrl_us = now;
    fw->next_state_us = now;
    fw->t_target_us = now;
    follow_measured(fw);
    for (i = 0; i < fw->axes; i++) {
        fw->target[i] = fw->ref_p[i];
    }
    return 0;
}
