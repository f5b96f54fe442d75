/* Unit tests of the C firmware half: framing, codec, schema, and the firmware state machine on a fake HAL with
 * a fake clock (so watchdog timing is exact and nothing here depends on the machine's speed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hwl_firmware.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                                            \
    do {                                                                                                       \
        checks++;                                                                                              \
        if (!(cond)) {                                                                                         \
            failures++;                                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                           \
        }                                                                                                      \
    } while (0)

#define CHECK_NEAR(a, b, tol) CHECK(fabs((double)(a) - (double)(b)) <= (tol))

/* ------------------------------------------------------------------------------------------------ framing */

static void test_crc32_check_value(void) {
    CHECK(hwl_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u);
    CHECK(hwl_crc32((const uint8_t *)"", 0) == 0x00000000u);
}

static void test_cobs_vectors(void) {
    uint8_t out[600];
    uint8_t back[600];
    static const uint8_t a[] = {0x00};
    static const uint8_t a_enc[] = {0x01, 0x01};
    static const uint8_t b[] = {0x11, 0x22, 0x00, 0x33};
    static const uint8_t b_enc[] = {0x03, 0x11, 0x22, 0x02, 0x33};
    uint8_t run[300];
    size_t n;
    long m;
    size_t i;
    n = hwl_cobs_encode(a, sizeof(a), out, sizeof(out));
    CHECK(n == sizeof(a_enc) && memcmp(out, a_enc, n) == 0);
    n = hwl_cobs_encode(b, sizeof(b), out, sizeof(out));
    CHECK(n == sizeof(b_enc) && memcmp(out, b_enc, n) == 0);
    m = hwl_cobs_decode(b_enc, sizeof(b_enc), back, sizeof(back));
    CHECK(m == (long)sizeof(b) && memcmp(back, b, sizeof(b)) == 0);
    /* 254 non-zero bytes: one full 0xFF block, no trailing code byte (the reference encoder's rule) */
    for (i = 0; i < sizeof(run); i++) {
        run[i] = (uint8_t)(1 + i % 255);
    }
    n = hwl_cobs_encode(run, 254, out, sizeof(out));
    CHECK(n == 255 && out[0] == 0xFF);
    n = hwl_cobs_encode(run, 300, out, sizeof(out));
    CHECK(n == 302 && out[0] == 0xFF && out[255] == 47);
    m = hwl_cobs_decode(out, n, back, sizeof(back));
    CHECK(m == 300 && memcmp(back, run, 300) == 0);
    for (i = 0; i < n; i++) {
        CHECK(out[i] != 0);
    }
    /* malformed: a zero inside, a block past the end */
    out[0] = 0x05;
    out[1] = 0x00;
    CHECK(hwl_cobs_decode(out, 3, back, sizeof(back)) < 0);
    out[0] = 0x09;
    out[1] = 0x01;
    CHECK(hwl_cobs_decode(out, 3, back, sizeof(back)) < 0);
    /* output too small */
    CHECK(hwl_cobs_encode(run, 300, out, 100) == 0);
}

static void test_cobs_roundtrip_pseudorandom(void) {
    uint8_t in[400], enc[410], dec[410];
    unsigned seed = 12345u;
    int iter;
    for (iter = 0; iter < 2000; iter++) {
        size_t len = (size_t)(seed % 385u);
        size_t i;
        size_t n;
        long m;
        for (i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = ((seed >> 16) % 4u == 0) ? 0 : (uint8_t)(seed >> 8);
        }
        seed = seed * 1103515245u + 12345u;
        n = hwl_cobs_encode(in, len, enc, sizeof(enc));
        CHECK(n > 0 && n <= len + (len + 253) / 254 + 1);
        m = hwl_cobs_decode(enc, n, dec, sizeof(dec));
        CHECK(m == (long)len && memcmp(in, dec, len) == 0);
    }
}

/* The worked example of PROTOCOL.md §2.4: HEARTBEAT, arm 0, seq 1, host_time_us 123456. */
static void test_worked_example(void) {
    static const uint8_t expected[] = {0x00, 0x03, 0x01, 0x03, 0x01, 0x02, 0x01, 0x01, 0x01, 0x04, 0x40, 0xe2,
                                       0x01, 0x01, 0x01, 0x01, 0x01, 0x05, 0xa4, 0x5a, 0xf5, 0xbe, 0x00};
    static const uint8_t enable[] = {0x00, 0x03, 0x01, 0x04, 0x01, 0x02, 0x02, 0x01,
                                     0x01, 0x05, 0x6f, 0x33, 0xce, 0xf7, 0x00};
    uint8_t content[64];
    uint8_t wire[HWL_MAX_WIRE];
    hwl_header_t h = {HWL_PROTOCOL_MAJOR, HWL_HEARTBEAT, 0, 0, 1};
    size_t n;
    hwl_header_encode(&h, content);
    n = hwl_encode_heartbeat(123456u, content + HWL_HEADER_SIZE);
    CHECK(hwl_crc32(content, HWL_HEADER_SIZE + n) == 0xbef55aa4u);
    n = hwl_frame_encode(content, HWL_HEADER_SIZE + n, wire, sizeof(wire));
    CHECK(n == sizeof(expected) && memcmp(wire, expected, n) == 0);
    h.type = HWL_ENABLE;
    h.seq = 2;
    hwl_header_encode(&h, content);
    n = hwl_frame_encode(content, HWL_HEADER_SIZE, wire, sizeof(wire));
    CHECK(n == sizeof(enable) && memcmp(wire, enable, n) == 0);
}

static void test_decoder_resyncs_after_garbage(void) {
    hwl_decoder_t d;
    uint8_t content[HWL_HEADER_SIZE + 8];
    uint8_t wire[HWL_MAX_WIRE];
    uint8_t out[HWL_MAX_FRAME];
    uint8_t stream[2048];
    size_t len = 0, n, i;
    unsigned frames = 0;
    hwl_header_t h = {HWL_PROTOCOL_MAJOR, HWL_HEARTBEAT, 0, 0, 7};
    hwl_header_encode(&h, content);
    hwl_encode_heartbeat(42u, content + HWL_HEADER_SIZE);
    n = hwl_frame_encode(content, sizeof(content), wire, sizeof(wire));
    /* frame, garbage without delimiter, frame, a corrupted frame, 500 bytes of non-zero junk (oversize), frame */
    memcpy(stream + len, wire, n);
    len += n;
    memcpy(stream + len, "\x13\x37\xff\x42", 4);
    len += 4;
    memcpy(stream + len, wire, n);
    len += n;
    memcpy(stream + len, wire, n);
    stream[len + 12] ^= 0x10;
    len += n;
    for (i = 0; i < 500; i++) {
        stream[len++] = (uint8_t)(1 + i % 200);
    }
    memcpy(stream + len, wire, n);
    len += n;
    hwl_decoder_init(&d);
    for (i = 0; i < len; i++) {
        size_t m = hwl_decoder_push(&d, stream[i], out);
        if (m > 0) {
            frames++;
            CHECK(m == sizeof(content) && memcmp(out, content, m) == 0);
        }
    }
    CHECK(frames == 3);
    CHECK(d.crc_errors + d.cobs_errors == 2); /* the 4 junk bytes + the corrupted frame */
    CHECK(d.oversize == 1);
}

/* ------------------------------------------------------------------------------------------------ codec */

static void test_state_roundtrip(void) {
    hwl_state_t s, r;
    uint8_t body[HWL_MAX_BODY];
    size_t n;
    unsigned i;
    memset(&s, 0, sizeof(s));
    s.firmware_time_us = 0x0123456789ABCDEFull;
    s.last_command_seq = 0xDEADBEEFu;
    s.fault_bits = HWL_FAULT_WATCHDOG_HOLD | HWL_FAULT_RX_ERROR;
    s.mode = HWL_MODE_HOLD;
    s.flags = HWL_STATE_HAS_EFFORT | HWL_STATE_HAS_GRIPPER;
    s.joint_count = 16;
    s.rx_errors = 513;
    s.gripper = 0.042f;
    for (i = 0; i < 16; i++) {
        s.positions[i] = -1.5f + 0.1f * (float)i;
        s.velocities[i] = 0.25f * (float)i;
        s.effort[i] = -3.0f * (float)i;
    }
    n = hwl_encode_state(&s, body);
    CHECK(n == HWL_STATE_FIXED + 12u * 16u);
    CHECK(HWL_HEADER_SIZE + n + HWL_CRC_SIZE <= HWL_MAX_FRAME);
    CHECK(hwl_decode_state(body, n, &r) == HWL_OK);
    CHECK(r.firmware_time_us == s.firmware_time_us && r.last_command_seq == s.last_command_seq);
    CHECK(r.fault_bits == s.fault_bits && r.mode == s.mode && r.rx_errors == 513 && r.gripper == s.gripper);
    CHECK(memcmp(r.positions, s.positions, sizeof(float) * 16) == 0);
    CHECK(memcmp(r.effort, s.effort, sizeof(float) * 16) == 0);
    CHECK(hwl_decode_state(body, n - 1, &r) == HWL_ERR_BAD_LENGTH);
    body[18] = 0;
    CHECK(hwl_decode_state(body, n, &r) == HWL_ERR_BAD_JOINTS);
}

static void test_hello_ack_fits_max_frame(void) {
    hwl_hello_ack_t a, r;
    uint8_t body[HWL_MAX_BODY];
    size_t n;
    memset(&a, 0, sizeof(a));
    a.joint_count = HWL_MAX_JOINTS;
    a.major = 1;
    memcpy(a.firmware_id, "abcdefghijklmnop", 16);
    a.position_max[15] = 3.25f;
    n = hwl_encode_hello_ack(&a, body);
    CHECK(n == HWL_HELLO_ACK_FIXED + 16u * HWL_MAX_JOINTS);
    CHECK(HWL_HEADER_SIZE + n + HWL_CRC_SIZE <= HWL_MAX_FRAME);
    CHECK(hwl_decode_hello_ack(body, n, &r) == HWL_OK);
    CHECK(memcmp(r.firmware_id, "abcdefghijklmnop", 16) == 0 && r.position_max[15] == 3.25f);
}

/* Sizes implied by the schema text (fixed fields + f32[joint_count] arrays) for a message line. */
static unsigned schema_sizes(const char *type_name, unsigned *arrays) {
    const char *line = strstr(hwl_schema_text, type_name);
    unsigned size = 0;
    *arrays = 0;
    if (line == NULL) {
        return 0;
    }
    while (*line != '\n' && *line != '\0') {
        if (strncmp(line, "f32[joint_count]", 16) == 0) {
            (*arrays)++;
            line += 16;
        } else if (strncmp(line, "u8[16]", 6) == 0) {
            size += 16;
            line += 6;
        } else if (strncmp(line, "u64 ", 4) == 0 || strncmp(line, "u32 ", 4) == 0 || strncmp(line, "u16 ", 4) == 0 ||
                   strncmp(line, "f32 ", 4) == 0) {
            size += (line[1] == '6') ? 8u : (line[1] == '3' ? 4u : 2u);
            line += 4;
        } else if (strncmp(line, "u8 ", 3) == 0) {
            size += 1;
            line += 3;
        } else {
            line++;
        }
    }
    return size;
}

static void test_encoders_match_schema_text(void) {
    unsigned arrays;
    uint8_t body[HWL_MAX_BODY];
    hwl_command_t c;
    hwl_state_t s;
    hwl_hello_ack_t a;
    hwl_hello_t h = {1, 0, 0};
    hwl_reply_t r = {0, 0, 0, 0, 0};
    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    memset(&a, 0, sizeof(a));
    c.joint_count = s.joint_count = a.joint_count = 5;
    c.flags = HWL_COMMAND_HAS_VELOCITIES;
    s.flags = HWL_STATE_HAS_EFFORT;
    CHECK(hwl_encode_hello(&h, body) == schema_sizes(" HELLO ", &arrays) && arrays == 0);
    CHECK(hwl_encode_heartbeat(1, body) == schema_sizes(" HEARTBEAT ", &arrays) && arrays == 0);
    CHECK(hwl_encode_command(&c, body) == schema_sizes(" COMMAND ", &arrays) + 5u * 4u * arrays && arrays == 2);
    CHECK(hwl_encode_state(&s, body) == schema_sizes(" STATE ", &arrays) + 5u * 4u * arrays && arrays == 3);
    CHECK(hwl_encode_hello_ack(&a, body) == schema_sizes(" HELLO_ACK ", &arrays) + 5u * 4u * arrays && arrays == 4);
    CHECK(hwl_encode_ack(&r, body) == schema_sizes(" ACK ", &arrays) && arrays == 0);
    CHECK(hwl_encode_nack(&r, body) == schema_sizes(" NACK ", &arrays) && arrays == 0);
    CHECK(schema_sizes("header ", &arrays) == HWL_HEADER_SIZE);
    CHECK(hwl_schema_hash() == hwl_crc32((const uint8_t *)hwl_schema_text, strlen(hwl_schema_text)));
}

/* ------------------------------------------------------------------------------------------------ firmware */

typedef struct {
    uint64_t now;
    float pos[HWL_MAX_JOINTS], vel[HWL_MAX_JOINTS], gripper;
    int torque;
    int estop;
    uint8_t tx[8192];
    size_t tx_len;
} fake_t;

static fake_t fake;

static uint64_t f_time(void *ctx) { return ((fake_t *)ctx)->now; }
static void f_read(void *ctx, float *p, float *v, float *e, float *g) {
    fake_t *f = (fake_t *)ctx;
    unsigned i;
    for (i = 0; i < HWL_MAX_JOINTS; i++) {
        p[i] = f->pos[i];
        v[i] = f->vel[i];
        if (e != NULL) {
            e[i] = 0.0f;
        }
    }
    *g = f->gripper;
}
static void f_write(void *ctx, const float *p, const float *v, float g) {
    fake_t *f = (fake_t *)ctx;
    unsigned i;
    if (!f->torque) {
        return;
    }
    for (i = 0; i < 3; i++) {
        f->pos[i] = p[i];
        f->vel[i] = v[i];
    }
    f->gripper = g;
}
static void f_torque(void *ctx, int on) { ((fake_t *)ctx)->torque = on; }
static void f_bytes(void *ctx, const uint8_t *d, size_t n) {
    fake_t *f = (fake_t *)ctx;
    if (f->tx_len + n <= sizeof(f->tx)) {
        memcpy(f->tx + f->tx_len, d, n);
        f->tx_len += n;
    }
}
static int f_estop(void *ctx) { return ((fake_t *)ctx)->estop; }

static hwl_fw_t fw;
static uint32_t host_seq = 0;

static void setup(void) {
    hwl_config_t cfg;
    hwl_hal_t hal = {&fake, f_time, f_read, f_write, f_torque, f_bytes, f_estop, NULL};
    unsigned i;
    memset(&fake, 0, sizeof(fake));
    fake.now = 1000000u;
    memset(&cfg, 0, sizeof(cfg));
    cfg.joint_count = 3;
    cfg.arm = 1;
    cfg.has_gripper = 1;
    for (i = 0; i < 3; i++) {
        cfg.position_min[i] = -2.0f;
        cfg.position_max[i] = 2.0f;
        cfg.max_velocity[i] = 1.0f;
        cfg.max_acceleration[i] = 4.0f;
    }
    cfg.gripper_limits[0] = 0.0f;
    cfg.gripper_limits[1] = 0.08f;
    cfg.gripper_limits[2] = 0.1f;
    cfg.gripper_limits[3] = 0.5f;
    memcpy(cfg.firmware_id, "test", 4);
    cfg.state_rate_hz = 100;
    cfg.control_rate_hz = 1000;
    cfg.watchdog_hold_ms = 100;
    cfg.watchdog_off_ms = 1000;
    CHECK(hwl_fw_init(&fw, &cfg, &hal) == 0);
    host_seq = 0;
}

/* Decode every frame the firmware sent since the last call; returns how many of `type` it sent; the last one's
 * content goes to `last` (may be NULL). */
static unsigned take(uint8_t type, uint8_t *last, size_t *last_len) {
    hwl_decoder_t d;
    uint8_t out[HWL_MAX_FRAME];
    unsigned count = 0;
    size_t i;
    hwl_decoder_init(&d);
    for (i = 0; i < fake.tx_len; i++) {
        size_t n = hwl_decoder_push(&d, fake.tx[i], out);
        if (n > 0 && out[1] == type) {
            count++;
            if (last != NULL) {
                memcpy(last, out, n);
                *last_len = n;
            }
        }
    }
    fake.tx_len = 0;
    return count;
}

static void send_frame(uint8_t major, uint8_t type, uint8_t arm, const uint8_t *body, size_t len) {
    uint8_t content[HWL_MAX_FRAME];
    uint8_t wire[HWL_MAX_WIRE];
    hwl_header_t h;
    size_t n;
    h.major = major;
    h.type = type;
    h.arm = arm;
    h.flags = 0;
    h.seq = ++host_seq;
    hwl_header_encode(&h, content);
    if (len > 0) {
        memcpy(content + HWL_HEADER_SIZE, body, len);
    }
    n = hwl_frame_encode(content, HWL_HEADER_SIZE + len, wire, sizeof(wire));
    hwl_fw_rx(&fw, wire, n);
}

static void send_hello(uint8_t major, uint32_t hash) {
    uint8_t body[HWL_HELLO_SIZE];
    hwl_hello_t h;
    h.major = major;
    h.minor = HWL_PROTOCOL_MINOR;
    h.schema_hash = hash;
    hwl_encode_hello(&h, body);
    send_frame(major, HWL_HELLO, 1, body, sizeof(body));
}

static void send_command(float q0, float q1, float q2) {
    hwl_command_t c;
    uint8_t body[HWL_MAX_BODY];
    memset(&c, 0, sizeof(c));
    c.joint_count = 3;
    c.positions[0] = q0;
    c.positions[1] = q1;
    c.positions[2] = q2;
    send_frame(HWL_PROTOCOL_MAJOR, HWL_COMMAND, 1, body, hwl_encode_command(&c, body));
}

/* Sends a request; returns the reply's type (HWL_ACK / HWL_NACK, 0 for none) and NACK reason. */
static void request(uint8_t type, uint8_t *reply_type, uint8_t *reason) {
    hwl_decoder_t d;
    uint8_t out[HWL_MAX_FRAME];
    hwl_reply_t r;
    size_t i;
    send_frame(HWL_PROTOCOL_MAJOR, type, 1, NULL, 0);
    *reply_type = 0;
    *reason = 0;
    hwl_decoder_init(&d);
    for (i = 0; i < fake.tx_len; i++) {
        size_t n = hwl_decoder_push(&d, fake.tx[i], out);
        if (n > 0 && out[1] == HWL_ACK && hwl_decode_ack(out + HWL_HEADER_SIZE, n - HWL_HEADER_SIZE, &r) == 0 &&
            r.request_seq == host_seq) {
            *reply_type = HWL_ACK;
        }
        if (n > 0 && out[1] == HWL_NACK && hwl_decode_nack(out + HWL_HEADER_SIZE, n - HWL_HEADER_SIZE, &r) == 0 &&
            r.request_seq == host_seq) {
            *reply_type = HWL_NACK;
            *reason = r.reason;
        }
    }
    fake.tx_len = 0;
}

static void run_for_ms(unsigned ms) {
    unsigned i;
    for (i = 0; i < ms; i++) {
        fake.now += 1000u;
        hwl_fw_poll(&fw);
    }
}

static hwl_state_t last_state(void) {
    uint8_t out[HWL_MAX_FRAME];
    size_t n = 0;
    hwl_state_t s;
    memset(&s, 0, sizeof(s));
    if (take(HWL_STATE, out, &n) > 0) {
        hwl_decode_state(out + HWL_HEADER_SIZE, n - HWL_HEADER_SIZE, &s);
    }
    return s;
}

static void test_state_stream_and_session(void) {
    uint8_t rt, reason;
    hwl_state_t s;
    setup();
    run_for_ms(1000);
    CHECK(take(HWL_STATE, NULL, NULL) >= 99); /* 100 Hz from boot, before any session */
    request(HWL_ENABLE, &rt, &reason);
    CHECK(rt == HWL_NACK && reason == HWL_NACK_NO_SESSION);
    send_command(0.5f, 0.0f, 0.0f);
    run_for_ms(20);
    s = last_state();
    CHECK(s.fault_bits & HWL_FAULT_NO_SESSION);
    CHECK(fw.commands_ignored == 1 && fake.torque == 0);
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    CHECK(take(HWL_HELLO_ACK, NULL, NULL) == 1);
    CHECK(fw.session_open == 1);
}

static void test_schema_mismatch_refuses_session(void) {
    uint8_t rt, reason;
    setup();
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash() ^ 1u);
    CHECK(take(HWL_HELLO_ACK, NULL, NULL) == 1); /* answered, so the host can name both versions */
    CHECK(fw.session_open == 0);
    send_hello(HWL_PROTOCOL_MAJOR + 1, hwl_schema_hash());
    CHECK(take(HWL_HELLO_ACK, NULL, NULL) == 1);
    CHECK(fw.session_open == 0);
    request(HWL_ENABLE, &rt, &reason);
    CHECK(rt == HWL_NACK && reason == HWL_NACK_NO_SESSION);
}

static void test_tracking_within_limits(void) {
    uint8_t rt, reason;
    unsigned i;
    float prev_v = 0.0f;
    float max_v = 0.0f, max_a = 0.0f;
    setup();
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    request(HWL_ENABLE, &rt, &reason);
    CHECK(rt == HWL_ACK && fake.torque == 1 && fw.mode == HWL_MODE_ENABLED);
    /* stream a far target for 3 s at 200 Hz; the reference must respect 1 rad/s and 4 rad/s^2 */
    for (i = 0; i < 3000; i++) {
        if (i % 5 == 0) {
            send_command(1.5f, -3.0f, 0.0f); /* joint 1 beyond its -2 limit: clamped */
            CHECK(take(HWL_STATE, NULL, NULL) == 1); /* a STATE in reply to every COMMAND */
        }
        fake.now += 1000u;
        hwl_fw_poll(&fw);
        if (fabsf(fake.vel[0]) > max_v) {
            max_v = fabsf(fake.vel[0]);
        }
        if (fabsf(fake.vel[0] - prev_v) / 0.001f > max_a) {
            max_a = fabsf(fake.vel[0] - prev_v) / 0.001f;
        }
        prev_v = fake.vel[0];
    }
    CHECK_NEAR(fake.pos[0], 1.5, 1e-4);
    CHECK_NEAR(fake.pos[1], -2.0, 1e-4);
    CHECK(max_v <= 1.0f + 1e-4f);
    CHECK(max_a <= 4.0f + 1e-2f);
    CHECK(fw.mode == HWL_MODE_ENABLED);
    CHECK(fw.last_command_seq == host_seq);
}

static void test_watchdog_hold_then_torque_off(void) {
    uint8_t rt, reason;
    hwl_state_t s;
    setup();
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    request(HWL_ENABLE, &rt, &reason);
    send_command(1.0f, 0.0f, 0.0f);
    run_for_ms(99);
    CHECK(fw.mode == HWL_MODE_ENABLED);
    run_for_ms(2);
    CHECK(fw.mode == HWL_MODE_HOLD); /* 100 ms without COMMAND/HEARTBEAT */
    s = last_state();
    run_for_ms(20);
    s = last_state();
    CHECK(s.mode == HWL_MODE_HOLD && (s.fault_bits & HWL_FAULT_WATCHDOG_HOLD));
    {
        /* holding: the joint brakes and stays put */
        float p = fake.pos[0];
        run_for_ms(300);
        CHECK(fabsf(fake.pos[0] - p) < 0.05f);
        CHECK(fabsf(fake.vel[0]) < 1e-6f);
    }
    run_for_ms(1000 - 100 - 20 - 2 - 300 - 1);
    CHECK(fw.mode == HWL_MODE_HOLD && fake.torque == 1);
    run_for_ms(3);
    CHECK(fw.mode == HWL_MODE_DISABLED && fake.torque == 0); /* 1 s: torque off */
    s = last_state();
    run_for_ms(20);
    s = last_state();
    CHECK(s.fault_bits & HWL_FAULT_WATCHDOG_TORQUE_OFF);
    request(HWL_ENABLE, &rt, &reason);
    CHECK(rt == HWL_ACK);
    CHECK(!(hwl_fw_fault_bits(&fw) & HWL_FAULT_WATCHDOG_TORQUE_OFF));
}

static void test_heartbeat_feeds_watchdog(void) {
    uint8_t rt, reason, body[8];
    unsigned i;
    setup();
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    request(HWL_ENABLE, &rt, &reason);
    for (i = 0; i < 50; i++) {
        hwl_encode_heartbeat(0, body);
        send_frame(HWL_PROTOCOL_MAJOR, HWL_HEARTBEAT, 1, body, 8);
        run_for_ms(50);
    }
    CHECK(fw.mode == HWL_MODE_ENABLED);
}

static void test_estop_latched(void) {
    uint8_t rt, reason;
    setup();
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    request(HWL_ENABLE, &rt, &reason);
    send_frame(HWL_PROTOCOL_MAJOR, HWL_ESTOP, HWL_BROADCAST_ARM, NULL, 0); /* broadcast reaches every arm */
    CHECK(take(HWL_ACK, NULL, NULL) == 1);
    CHECK(fw.mode == HWL_MODE_ESTOP && fake.torque == 0);
    send_command(0.3f, 0.0f, 0.0f);
    run_for_ms(10);
    CHECK(fw.mode == HWL_MODE_ESTOP && fake.torque == 0);
    request(HWL_ENABLE, &rt, &reason);
    CHECK(rt == HWL_NACK && reason == HWL_NACK_ESTOP_LATCHED);
    request(HWL_DISABLE, &rt, &reason);
    CHECK(rt == HWL_ACK && fw.mode == HWL_MODE_ESTOP); /* DISABLE does not clear it */
    fake.estop = 1;
    run_for_ms(2);
    request(HWL_RESET_ESTOP, &rt, &reason);
    CHECK(rt == HWL_NACK && reason == HWL_NACK_HARDWARE_ESTOP);
    fake.estop = 0;
    run_for_ms(2);
    request(HWL_RESET_ESTOP, &rt, &reason);
    CHECK(rt == HWL_ACK && fw.mode == HWL_MODE_DISABLED);
    request(HWL_ENABLE, &rt, &reason);
    CHECK(rt == HWL_ACK && fw.mode == HWL_MODE_ENABLED);
}

static void test_nacks(void) {
    uint8_t out[HWL_MAX_FRAME];
    size_t n = 0;
    hwl_reply_t r;
    setup();
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    fake.tx_len = 0;
    send_frame(HWL_PROTOCOL_MAJOR, HWL_ENABLE, 2, NULL, 0); /* we are arm 1 */
    CHECK(take(HWL_NACK, out, &n) == 1);
    CHECK(hwl_decode_nack(out + HWL_HEADER_SIZE, n - HWL_HEADER_SIZE, &r) == 0);
    CHECK(r.reason == HWL_NACK_WRONG_ARM && r.detail == (1u << 1) && r.request_type == HWL_ENABLE);
    send_frame(HWL_PROTOCOL_MAJOR, 0x42, 1, NULL, 0);
    CHECK(take(HWL_NACK, out, &n) == 1);
    hwl_decode_nack(out + HWL_HEADER_SIZE, n - HWL_HEADER_SIZE, &r);
    CHECK(r.reason == HWL_NACK_UNKNOWN_TYPE && r.detail == 0x42);
    send_frame(HWL_PROTOCOL_MAJOR + 1, HWL_ENABLE, 1, NULL, 0);
    CHECK(take(HWL_NACK, out, &n) == 1);
    hwl_decode_nack(out + HWL_HEADER_SIZE, n - HWL_HEADER_SIZE, &r);
    CHECK(r.reason == HWL_NACK_VERSION_MISMATCH && r.detail == ((HWL_PROTOCOL_MAJOR << 8) | HWL_PROTOCOL_MINOR));
    CHECK(fw.mode == HWL_MODE_DISABLED);
}

static void test_rejects_non_finite_and_wrong_joint_count(void) {
    uint8_t rt, reason, body[HWL_MAX_BODY];
    hwl_command_t c;
    setup();
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    request(HWL_ENABLE, &rt, &reason);
    send_command(0.0f, (float)NAN, 0.0f);
    CHECK(fw.commands_rejected == 1);
    memset(&c, 0, sizeof(c));
    c.joint_count = 2;
    send_frame(HWL_PROTOCOL_MAJOR, HWL_COMMAND, 1, body, hwl_encode_command(&c, body));
    CHECK(fw.commands_rejected == 2);
    CHECK(hwl_fw_fault_bits(&fw) & HWL_FAULT_COMMAND_REJECTED);
    CHECK(fake.pos[1] == 0.0f);
}

static void test_new_session_starts_disabled(void) {
    uint8_t rt, reason;
    setup();
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    request(HWL_ENABLE, &rt, &reason);
    CHECK(fw.mode == HWL_MODE_ENABLED);
    send_hello(HWL_PROTOCOL_MAJOR, hwl_schema_hash());
    CHECK(fw.mode == HWL_MODE_DISABLED && fake.torque == 0);
}

static void test_rx_errors_reported(void) {
    static const uint8_t junk[] = {0x00, 0x05, 0x11, 0x22, 0x33, 0x44, 0x00};
    hwl_state_t s;
    setup();
    hwl_fw_rx(&fw, junk, sizeof(junk));
    run_for_ms(20);
    s = last_state();
    CHECK(s.rx_errors == 1);
    run_for_ms(20);
    s = last_state();
    CHECK(!(s.fault_bits & HWL_FAULT_RX_ERROR)); /* an event: reported once */
}

int main(void) {
    test_crc32_check_value();
    test_cobs_vectors();
    test_cobs_roundtrip_pseudorandom();
    test_worked_example();
    test_decoder_resyncs_after_garbage();
    test_state_roundtrip();
    test_hello_ack_fits_max_frame();
    test_encoders_match_schema_text();
    test_state_stream_and_session();
    test_schema_mismatch_refuses_session();
    test_tracking_within_limits();
    test_watchdog_hold_then_torque_off();
    test_heartbeat_feeds_watchdog();
    test_estop_latched();
    test_nacks();
    test_rejects_non_finite_and_wrong_joint_count();
    test_new_session_starts_disabled();
    test_rx_errors_reported();
    if (failures) {
        fprintf(stderr, "firmware tests: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("firmware tests: %d checks passed\n", checks);
    return 0;
}
