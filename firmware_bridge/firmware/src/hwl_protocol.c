/* harmowam arm link: framing and message codec (PROTOCOL.md §2-§5). Portable C99, no malloc, no OS calls. */
#include "hwl_protocol.h"

#include <string.h>

/* The codec copies floats bit for bit: the wire format is IEEE-754 binary32. */
typedef char hwl_float_is_32_bits[(sizeof(float) == 4) ? 1 : -1];

/* ------------------------------------------------------------------------------------------------ CRC-32 */

/* Nibble table: 64 bytes of flash instead of 1 KiB, two lookups per byte. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
    0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu, 0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};

uint32_t hwl_crc32(const uint8_t *data, size_t len) {
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return crc ^ 0xFFFFFFFFu;
}

/* ------------------------------------------------------------------------------------------------ COBS */

size_t hwl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    size_t code_pos = 0;
    size_t o = 1;
    uint8_t code = 1;
    size_t i;
    if (cap == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (in[i] == 0) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
            if (o > cap) {
                return 0;
            }
        } else {
            if (o >= cap) {
                return 0;
            }
            out[o++] = in[i];
            code++;
            if (code == 0xFF) {
                /* a full 254-byte block: close it; the next block gets its own code byte */
                out[code_pos] = code;
                if (i + 1 == len) {
                    return o; /* nothing follows: no trailing code byte needed */
                }
                code_pos = o++;
                code = 1;
                if (o > cap) {
                    return 0;
                }
            }
        }
    }
    out[code_pos] = code;
    return o;
}

long hwl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
    size_t i = 0;
    size_t o = 0;
    if (len == 0) {
        return -1;
    }
    while (i < len) {
        uint8_t code = in[i];
        size_t j;
        if (code == 0 || i + code > len) {
            return -1;
        }
        for (j = 1; j < code; j++) {
            if (in[i + j] == 0 || o >= cap) {
                return -1;
            }
            out[o++] = in[i + j];
        }
        i += code;
        if (code != 0xFF && i < len) {
            if (o >= cap) {
                return -1;
            }
            out[o++] = 0;
        }
    }
    return (long)o;
}

/* ------------------------------------------------------------------------------------------------ frames */

size_t hwl_frame_encode(const uint8_t *content, size_t len, uint8_t *out, size_t cap) {
    uint8_t raw[HWL_MAX_FRAME];
    size_t n;
    if (len + HWL_CRC_SIZE > HWL_MAX_FRAME || cap < 3) {
        return 0;
    }
    memcpy(raw, content, len);
    hwl_put_u32(raw + len, hwl_crc32(content, len));
    out[0] = 0;
    n = hwl_cobs_encode(raw, len + HWL_CRC_SIZE, out + 1, cap - 2);
    if (n == 0) {
        return 0;
    }
    out[n + 1] = 0;
    return n + 2;
}

void hwl_decoder_init(hwl_decoder_t *d) { memset(d, 0, sizeof(*d)); }

uint32_t hwl_decoder_errors(const hwl_decoder_t *d) {
    return d->crc_errors + d->cobs_errors + d->runts + d->oversize;
}

size_t hwl_decoder_push(hwl_decoder_t *d, uint8_t byte, uint8_t *out) {
    long n;
    if (byte != 0) {
        if (d->skipping) {
            return 0;
        }
        if (d->len >= HWL_MAX_ENCODED) {
            d->oversize++;
            d->len = 0;
            d->skipping = 1; /* drop the rest up to the next delimiter */
            return 0;
        }
        d->buf[d->len++] = byte;
        return 0;
    }
    /* a delimiter ends whatever came before it */
    if (d->skipping) {
        d->skipping = 0;
        d->len = 0;
        return 0;
    }
    if (d->len == 0) {
        return 0; /* empty frame between two delimiters */
    }
    n = hwl_cobs_decode(d->buf, d->len, out, HWL_MAX_FRAME);
    d->len = 0;
    if (n < 0) {
        d->cobs_errors++;
        return 0;
    }
    if (n < HWL_MIN_FRAME) {
        d->runts++;
        return 0;
    }
    if (hwl_crc32(out, (size_t)n - HWL_CRC_SIZE) != hwl_get_u32(out + n - HWL_CRC_SIZE)) {
        d->crc_errors++;
        return 0;
    }
    d->frames++;
    return (size_t)n - HWL_CRC_SIZE;
}

/* ------------------------------------------------------------------------------------------------ LE access */

void hwl_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void hwl_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

void hwl_put_u64(uint8_t *p, uint64_t v) {
    hwl_put_u32(p, (uint32_t)(v & 0xFFFFFFFFu));
    hwl_put_u32(p + 4, (uint32_t)(v >> 32));
}

void hwl_put_f32(uint8_t *p, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    hwl_put_u32(p, u);
}

uint16_t hwl_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (uint16_t)(p[1] << 8)); }

uint32_t hwl_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint64_t hwl_get_u64(const uint8_t *p) { return (uint64_t)hwl_get_u32(p) | ((uint64_t)hwl_get_u32(p + 4) << 32); }

float hwl_get_f32(const uint8_t *p) {
    uint32_t u = hwl_get_u32(p);
    float v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static void put_floats(uint8_t *p, const float *v, unsigned n) {
    unsigned i;
    for (i = 0; i < n; i++) {
        hwl_put_f32(p + 4u * i, v[i]);
    }
}

static void get_floats(const uint8_t *p, float *v, unsigned n) {
    unsigned i;
    for (i = 0; i < n; i++) {
        v[i] = hwl_get_f32(p + 4u * i);
    }
}

static int joints_ok(unsigned n) { return n >= 1 && n <= HWL_MAX_JOINTS; }

/* ------------------------------------------------------------------------------------------------ header */

void hwl_header_encode(const hwl_header_t *h, uint8_t *out) {
    out[0] = h->major;
    out[1] = h->type;
    out[2] = h->arm;
    out[3] = h->flags;
    hwl_put_u32(out + 4, h->seq);
}

void hwl_header_decode(const uint8_t *in, hwl_header_t *h) {
    h->major = in[0];
    h->type = in[1];
    h->arm = in[2];
    h->flags = in[3];
    h->seq = hwl_get_u32(in + 4);
}

/* ------------------------------------------------------------------------------------------------ messages */

size_t hwl_encode_hello(const hwl_hello_t *m, uint8_t *b) {
    b[0] = m->major;
    b[1] = m->minor;
    hwl_put_u16(b + 2, 0);
    hwl_put_u32(b + 4, m->schema_hash);
    return HWL_HELLO_SIZE;
}

int hwl_decode_hello(const uint8_t *b, size_t len, hwl_hello_t *m) {
    if (len < HWL_HELLO_SIZE) {
        return HWL_ERR_BAD_LENGTH;
    }
    m->major = b[0];
    m->minor = b[1];
    m->schema_hash = hwl_get_u32(b + 4);
    return HWL_OK;
}

size_t hwl_encode_command(const hwl_command_t *m, uint8_t *b) {
    unsigned n = m->joint_count;
    size_t len = HWL_COMMAND_FIXED + 4u * n;
    hwl_put_u64(b, m->host_time_us);
    b[8] = m->joint_count;
    b[9] = m->flags;
    hwl_put_u16(b + 10, 0);
    hwl_put_f32(b + 12, m->gripper);
    put_floats(b + HWL_COMMAND_FIXED, m->positions, n);
    if (m->flags & HWL_COMMAND_HAS_VELOCITIES) {
        put_floats(b + len, m->velocities, n);
        len += 4u * n;
    }
    return len;
}

int hwl_decode_command(const uint8_t *b, size_t len, hwl_command_t *m) {
    unsigned n;
    size_t need;
    if (len < HWL_COMMAND_FIXED) {
        return HWL_ERR_BAD_LENGTH;
    }
    n = b[8];
    if (!joints_ok(n)) {
        return HWL_ERR_BAD_JOINTS;
    }
    m->host_time_us = hwl_get_u64(b);
    m->joint_count = (uint8_t)n;
    m->flags = b[9];
    m->gripper = hwl_get_f32(b + 12);
    need = HWL_COMMAND_FIXED + 4u * n * ((m->flags & HWL_COMMAND_HAS_VELOCITIES) ? 2u : 1u);
    if (len < need) {
        return HWL_ERR_BAD_LENGTH;
    }
    get_floats(b + HWL_COMMAND_FIXED, m->positions, n);
    if (m->flags & HWL_COMMAND_HAS_VELOCITIES) {
        get_floats(b + HWL_COMMAND_FIXED + 4u * n, m->velocities, n);
    }
    return HWL_OK;
}

size_t hwl_encode_heartbeat(uint64_t host_time_us, uint8_t *b) {
    hwl_put_u64(b, host_time_us);
    return HWL_HEARTBEAT_SIZE;
}

int hwl_decode_heartbeat(const uint8_t *b, size_t len, uint64_t *host_time_us) {
    if (len < HWL_HEARTBEAT_SIZE) {
        return HWL_ERR_BAD_LENGTH;
    }
    *host_time_us = hwl_get_u64(b);
    return HWL_OK;
}

size_t hwl_encode_state(const hwl_state_t *m, uint8_t *b) {
    unsigned n = m->joint_count;
    size_t len = HWL_STATE_FIXED;
    hwl_put_u64(b, m->firmware_time_us);
    hwl_put_u32(b + 8, m->last_command_seq);
    hwl_put_u32(b + 12, m->fault_bits);
    b[16] = m->mode;
    b[17] = m->flags;
    b[18] = m->joint_count;
    b[19] = 0;
    hwl_put_u16(b + 20, m->rx_errors);
    hwl_put_u16(b + 22, 0);
    hwl_put_f32(b + 24, m->gripper);
    put_floats(b + len, m->positions, n);
    len += 4u * n;
    put_floats(b + len, m->velocities, n);
    len += 4u * n;
    if (m->flags & HWL_STATE_HAS_EFFORT) {
        put_floats(b + len, m->effort, n);
        len += 4u * n;
    }
    return len;
}

int hwl_decode_state(const uint8_t *b, size_t len, hwl_state_t *m) {
    unsigned n;
    size_t need;
    if (len < HWL_STATE_FIXED) {
        return HWL_ERR_BAD_LENGTH;
    }
    n = b[18];
    if (!joints_ok(n)) {
        return HWL_ERR_BAD_JOINTS;
    }
    m->firmware_time_us = hwl_get_u64(b);
    m->last_command_seq = hwl_get_u32(b + 8);
    m->fault_bits = hwl_get_u32(b + 12);
    m->mode = b[16];
    m->flags = b[17];
    m->joint_count = (uint8_t)n;
    m->rx_errors = hwl_get_u16(b + 20);
    m->gripper = hwl_get_f32(b + 24);
    need = HWL_STATE_FIXED + 4u * n * ((m->flags & HWL_STATE_HAS_EFFORT) ? 3u : 2u);
    if (len < need) {
        return HWL_ERR_BAD_LENGTH;
    }
    get_floats(b + HWL_STATE_FIXED, m->positions, n);
    get_floats(b + HWL_STATE_FIXED + 4u * n, m->velocities, n);
    if (m->flags & HWL_STATE_HAS_EFFORT) {
        get_floats(b + HWL_STATE_FIXED + 8u * n, m->effort, n);
    }
    return HWL_OK;
}

size_t hwl_encode_hello_ack(const hwl_hello_ack_t *m, uint8_t *b) {
    unsigned n = m->joint_count;
    size_t len = HWL_HELLO_ACK_FIXED;
    size_t i;
    b[0] = m->major;
    b[1] = m->minor;
    hwl_put_u16(b + 2, 0);
    hwl_put_u32(b + 4, m->schema_hash);
    hwl_put_u32(b + 8, m->request_seq);
    hwl_put_u32(b + 12, m->boot_id);
    for (i = 0; i < HWL_FIRMWARE_ID_SIZE; i++) {
        b[16 + i] = (uint8_t)m->firmware_id[i];
    }
    b[32] = m->fw_version[0];
    b[33] = m->fw_version[1];
    b[34] = m->fw_version[2];
    b[35] = m->joint_count;
    b[36] = m->arms_served;
    b[37] = m->capabilities;
    hwl_put_u16(b + 38, m->state_rate_hz);
    hwl_put_u16(b + 40, m->watchdog_hold_ms);
    hwl_put_u16(b + 42, m->watchdog_off_ms);
    b[44] = m->mode;
    b[45] = 0;
    hwl_put_u16(b + 46, 0);
    put_floats(b + 48, m->gripper_limits, 4);
    put_floats(b + len, m->position_min, n);
    len += 4u * n;
    put_floats(b + len, m->position_max, n);
    len += 4u * n;
    put_floats(b + len, m->max_velocity, n);
    len += 4u * n;
    put_floats(b + len, m->max_acceleration, n);
    len += 4u * n;
    return len;
}

int hwl_decode_hello_ack(const uint8_t *b, size_t len, hwl_hello_ack_t *m) {
    unsigned n;
    size_t i;
    if (len < HWL_HELLO_ACK_FIXED) {
        return HWL_ERR_BAD_LENGTH;
    }
    n = b[35];
    if (!joints_ok(n)) {
        return HWL_ERR_BAD_JOINTS;
    }
    if (len < HWL_HELLO_ACK_FIXED + 16u * n) {
        return HWL_ERR_BAD_LENGTH;
    }
    m->major = b[0];
    m->minor = b[1];
    m->schema_hash = hwl_get_u32(b + 4);
    m->request_seq = hwl_get_u32(b + 8);
    m->boot_id = hwl_get_u32(b + 12);
    for (i = 0; i < HWL_FIRMWARE_ID_SIZE; i++) {
        m->firmware_id[i] = (char)b[16 + i];
    }
    m->fw_version[0] = b[32];
    m->fw_version[1] = b[33];
    m->fw_version[2] = b[34];
    m->joint_count = (uint8_t)n;
    m->arms_served = b[36];
    m->capabilities = b[37];
    m->state_rate_hz = hwl_get_u16(b + 38);
    m->watchdog_hold_ms = hwl_get_u16(b + 40);
    m->watchdog_off_ms = hwl_get_u16(b + 42);
    m->mode = b[44];
    get_floats(b + 48, m->gripper_limits, 4);
    get_floats(b + HWL_HELLO_ACK_FIXED, m->position_min, n);
    get_floats(b + HWL_HELLO_ACK_FIXED + 4u * n, m->position_max, n);
    get_floats(b + HWL_HELLO_ACK_FIXED + 8u * n, m->max_velocity, n);
    get_floats(b + HWL_HELLO_ACK_FIXED + 12u * n, m->max_acceleration, n);
    return HWL_OK;
}

size_t hwl_encode_ack(const hwl_reply_t *m, uint8_t *b) {
    b[0] = m->request_type;
    b[1] = m->mode;
    hwl_put_u16(b + 2, 0);
    hwl_put_u32(b + 4, m->request_seq);
    return HWL_ACK_SIZE;
}

int hwl_decode_ack(const uint8_t *b, size_t len, hwl_reply_t *m) {
    if (len < HWL_ACK_SIZE) {
        return HWL_ERR_BAD_LENGTH;
    }
    m->request_type = b[0];
    m->mode = b[1];
    m->reason = 0;
    m->request_seq = hwl_get_u32(b + 4);
    m->detail = 0;
    return HWL_OK;
}

size_t hwl_encode_nack(const hwl_reply_t *m, uint8_t *b) {
    b[0] = m->request_type;
    b[1] = m->reason;
    b[2] = m->mode;
    b[3] = 0;
    hwl_put_u32(b + 4, m->request_seq);
    hwl_put_u32(b + 8, m->detail);
    return HWL_NACK_SIZE;
}

int hwl_decode_nack(const uint8_t *b, size_t len, hwl_reply_t *m) {
    if (len < HWL_NACK_SIZE) {
        return HWL_ERR_BAD_LENGTH;
    }
    m->request_type = b[0];
    m->reason = b[1];
    m->mode = b[2];
    m->request_seq = hwl_get_u32(b + 4);
    m->detail = hwl_get_u32(b + 8);
    return HWL_OK;
}
