/*
 * harmowam arm link: wire protocol (PROTOCOL.md). Portable C99: no malloc, no OS calls.
 *
 * Framing: 0x00, COBS(header + body + CRC-32 little-endian), 0x00. All integers little-endian, floats IEEE-754
 * binary32. This header is the C twin of firmware_bridge/protocol.py and framing.py.
 */
#ifndef HWL_PROTOCOL_H
#define HWL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define HWL_PROTOCOL_MAJOR 1
#define HWL_PROTOCOL_MINOR 0

#define HWL_MAX_JOINTS 16
#define HWL_HEADER_SIZE 8
#define HWL_CRC_SIZE 4
#define HWL_MIN_FRAME (HWL_HEADER_SIZE + HWL_CRC_SIZE)
/* Largest decoded frame (header + body + CRC). */
#define HWL_MAX_FRAME 384
/* Largest COBS-encoded frame without delimiters. */
#define HWL_MAX_ENCODED (HWL_MAX_FRAME + (HWL_MAX_FRAME + 253) / 254)
/* Largest frame on the wire: both delimiters included. */
#define HWL_MAX_WIRE (HWL_MAX_ENCODED + 2)
#define HWL_MAX_BODY (HWL_MAX_FRAME - HWL_HEADER_SIZE - HWL_CRC_SIZE)
#define HWL_FIRMWARE_ID_SIZE 16
#define HWL_BROADCAST_ARM 0xFFu
#define HWL_MAX_ARM 7

/* Message types (header byte 1). */
enum {
    HWL_HELLO = 0x01,
    HWL_COMMAND = 0x02,
    HWL_HEARTBEAT = 0x03,
    HWL_ENABLE = 0x04,
    HWL_DISABLE = 0x05,
    HWL_ESTOP = 0x06,
    HWL_RESET_ESTOP = 0x07,
    HWL_HELLO_ACK = 0x81,
    HWL_STATE = 0x82,
    HWL_ACK = 0x83,
    HWL_NACK = 0x84
};

/* Modes (STATE byte 16). */
enum { HWL_MODE_DISABLED = 0, HWL_MODE_ENABLED = 1, HWL_MODE_HOLD = 2, HWL_MODE_ESTOP = 3 };

/* Fault bits (STATE fault_bits). Conditions hold now; events happened since the previous STATE. */
#define HWL_FAULT_WATCHDOG_HOLD (1ul << 0)
#define HWL_FAULT_WATCHDOG_TORQUE_OFF (1ul << 1)
#define HWL_FAULT_ESTOP_LATCHED (1ul << 2)
#define HWL_FAULT_HARDWARE_ESTOP (1ul << 3)
#define HWL_FAULT_DRIVE_FAULT (1ul << 4)
#define HWL_FAULT_POSITION_CLAMPED (1ul << 5)
#define HWL_FAULT_VELOCITY_LIMITED (1ul << 6)
#define HWL_FAULT_ACCELERATION_LIMITED (1ul << 7)
#define HWL_FAULT_COMMAND_REJECTED (1ul << 8)
#define HWL_FAULT_COMMAND_IGNORED (1ul << 9)
#define HWL_FAULT_RX_ERROR (1ul << 10)
#define HWL_FAULT_NO_SESSION (1ul << 11)

/* NACK reasons. */
enum {
    HWL_NACK_UNKNOWN_TYPE = 1,
    HWL_NACK_BAD_LENGTH = 2,
    HWL_NACK_VERSION_MISMATCH = 3,
    HWL_NACK_NO_SESSION = 4,
    HWL_NACK_WRONG_ARM = 5,
    HWL_NACK_ESTOP_LATCHED = 6,
    HWL_NACK_HARDWARE_ESTOP = 7,
    HWL_NACK_DRIVE_FAULT = 8
};

/* HELLO_ACK capabilities. */
#define HWL_CAP_GRIPPER (1u << 0)
#define HWL_CAP_EFFORT (1u << 1)
#define HWL_CAP_VELOCITY_FEEDFORWARD (1u << 2)
#define HWL_CAP_HARDWARE_ESTOP (1u << 3)

/* Message flags. */
#define HWL_COMMAND_HAS_VELOCITIES (1u << 0)
#define HWL_COMMAND_HAS_GRIPPER (1u << 1)
#define HWL_STATE_HAS_EFFORT (1u << 0)
#define HWL_STATE_HAS_GRIPPER (1u << 1)
#define HWL_STATE_IS_REPLY (1u << 2)

/* Fixed body sizes (before per-joint arrays). */
#define HWL_HELLO_SIZE 8
#define HWL_COMMAND_FIXED 16
#define HWL_HEARTBEAT_SIZE 8
#define HWL_HELLO_ACK_FIXED 64
#define HWL_STATE_FIXED 28
#define HWL_ACK_SIZE 8
#define HWL_NACK_SIZE 12

/* Decode results. */
#define HWL_OK 0
#define HWL_ERR_BAD_LENGTH (-1)
#define HWL_ERR_BAD_JOINTS (-2)

typedef struct {
    uint8_t major;
    uint8_t type;
    uint8_t arm;
    uint8_t flags;
    uint32_t seq;
} hwl_header_t;

typedef struct {
    uint8_t major;
    uint8_t minor;
    uint32_t schema_hash;
} hwl_hello_t;

typedef struct {
    uint64_t host_time_us;
    uint8_t joint_count;
    uint8_t flags;
    float gripper;
    float positions[HWL_MAX_JOINTS];
    float velocities[HWL_MAX_JOINTS];
} hwl_command_t;

typedef struct {
    uint64_t firmware_time_us;
    uint32_t last_command_seq;
    uint32_t fault_bits;
    uint8_t mode;
    uint8_t flags;
    uint8_t joint_count;
    uint16_t rx_errors;
    float gripper;
    float positions[HWL_MAX_JOINTS];
    float velocities[HWL_MAX_JOINTS];
    float effort[HWL_MAX_JOINTS];
} hwl_state_t;

typedef struct {
    uint8_t major;
    uint8_t minor;
    uint32_t schema_hash;
    uint32_t request_seq;
    uint32_t boot_id;
    char firmware_id[HWL_FIRMWARE_ID_SIZE];
    uint8_t fw_version[3];
    uint8_t joint_count;
    uint8_t arms_served;
    uint8_t capabilities;
    uint16_t state_rate_hz;
    uint16_t watchdog_hold_ms;
    uint16_t watchdog_off_ms;
    uint8_t mode;
    float gripper_limits[4];
    float position_min[HWL_MAX_JOINTS];
    float position_max[HWL_MAX_JOINTS];
    float max_velocity[HWL_MAX_JOINTS];
    float max_acceleration[HWL_MAX_JOINTS];
} hwl_hello_ack_t;

typedef struct {
    uint8_t request_type;
    uint8_t reason; /* NACK only */
    uint8_t mode;
    uint32_t request_seq;
    uint32_t detail; /* NACK only */
} hwl_reply_t;

/* --- CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected = 0xEDB88320, init and xorout 0xFFFFFFFF) --- */
uint32_t hwl_crc32(const uint8_t *data, size_t len);

/* --- COBS --- */
/* Encode len bytes into out (capacity cap). Returns the encoded length, or 0 if it does not fit. */
size_t hwl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
/* Decode; returns the decoded length, or -1 on a zero byte / a block running past the end / overflow. */
long hwl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* --- frames --- */
/* content (header + body) → 0x00 COBS(content + CRC) 0x00 into out (cap >= HWL_MAX_WIRE). Returns bytes, 0 if too big. */
size_t hwl_frame_encode(const uint8_t *content, size_t len, uint8_t *out, size_t cap);

/* Incremental decoder: push bytes one at a time; resynchronises at every 0x00. */
typedef struct {
    uint8_t buf[HWL_MAX_ENCODED];
    size_t len;
    int skipping;
    uint32_t frames;
    uint32_t crc_errors;
    uint32_t cobs_errors;
    uint32_t runts;
    uint32_t oversize;
} hwl_decoder_t;

void hwl_decoder_init(hwl_decoder_t *d);
/* Push one byte. When it completes a valid frame, writes the content (header + body, CRC stripped) to out
 * (capacity HWL_MAX_FRAME) and returns its length; otherwise returns 0. */
size_t hwl_decoder_push(hwl_decoder_t *d, uint8_t byte, uint8_t *out);
uint32_t hwl_decoder_errors(const hwl_decoder_t *d);

/* --- little-endian access --- */
void hwl_put_u16(uint8_t *p, uint16_t v);
void hwl_put_u32(uint8_t *p, uint32_t v);
void hwl_put_u64(uint8_t *p, uint64_t v);
void hwl_put_f32(uint8_t *p, float v);
uint16_t hwl_get_u16(const uint8_t *p);
uint32_t hwl_get_u32(const uint8_t *p);
uint64_t hwl_get_u64(const uint8_t *p);
float hwl_get_f32(const uint8_t *p);

/* --- header and messages: encoders return the body length written to `body` (capacity HWL_MAX_BODY) --- */
void hwl_header_encode(const hwl_header_t *h, uint8_t *out);
void hwl_header_decode(const uint8_t *in, hwl_header_t *h);

size_t hwl_encode_hello(const hwl_hello_t *m, uint8_t *body);
size_t hwl_encode_command(const hwl_command_t *m, uint8_t *body);
size_t hwl_encode_heartbeat(uint64_t host_time_us, uint8_t *body);
size_t hwl_encode_state(const hwl_state_t *m, uint8_t *body);
size_t hwl_encode_hello_ack(const hwl_hello_ack_t *m, uint8_t *body);
size_t hwl_encode_ack(const hwl_reply_t *m, uint8_t *body);
size_t hwl_encode_nack(const hwl_reply_t *m, uint8_t *body);

/* Decoders return HWL_OK, HWL_ERR_BAD_LENGTH (body shorter than its layout; longer is fine) or HWL_ERR_BAD_JOINTS. */
int hwl_decode_hello(const uint8_t *body, size_t len, hwl_hello_t *m);
int hwl_decode_command(const uint8_t *body, size_t len, hwl_command_t *m);
int hwl_decode_heartbeat(const uint8_t *body, size_t len, uint64_t *host_time_us);
int hwl_decode_state(const uint8_t *body, size_t len, hwl_state_t *m);
int hwl_decode_hello_ack(const uint8_t *body, size_t len, hwl_hello_ack_t *m);
int hwl_decode_ack(const uint8_t *body, size_t len, hwl_reply_t *m);
int hwl_decode_nack(const uint8_t *body, size_t len, hwl_reply_t *m);

/* --- schema (hwl_schema.c): the canonical layout text of PROTOCOL.md §6 and its CRC-32 --- */
extern const char hwl_schema_text[];
uint32_t hwl_schema_hash(void);

#endif /* HWL_PROTOCOL_H */
