/* The canonical layout text of PROTOCOL.md §6. Its CRC-32 is the schema hash sent in HELLO and HELLO_ACK.
 * It must equal firmware_bridge.protocol.schema_text() byte for byte (tests/bridge check this, and the C tests
 * check that every message this firmware encodes has the size this text implies). Edit it together with the
 * layouts, and bump the protocol version when a layout changes. */
#include "hwl_protocol.h"

#include <string.h>

const char hwl_schema_text[] =
    "header u8 major, u8 type, u8 arm, u8 flags, u32 seq\n"
    "0x01 HELLO u8 major, u8 minor, u16 reserved, u32 schema_hash\n"
    "0x02 COMMAND u64 host_time_us, u8 joint_count, u8 flags, u16 reserved, f32 gripper, f32[joint_count] positions, f32[joint_count] velocities if flags&1\n"
    "0x03 HEARTBEAT u64 host_time_us\n"
    "0x04 ENABLE\n"
    "0x05 DISABLE\n"
    "0x06 ESTOP\n"
    "0x07 RESET_ESTOP\n"
    "0x81 HELLO_ACK u8 major, u8 minor, u16 reserved, u32 schema_hash, u32 request_seq, u32 boot_id, u8[16] firmware_id, u8 fw_major, u8 fw_minor, u8 fw_patch, u8 joint_count, u8 arms_served, u8 capabilities, u16 state_rate_hz, u16 watchdog_hold_ms, u16 watchdog_off_ms, u8 mode, u8 reserved, u16 reserved, f32 gripper_min, f32 gripper_max, f32 gripper_max_velocity, f32 gripper_max_acceleration, f32[joint_count] position_min, f32[joint_count] position_max, f32[joint_count] max_velocity, f32[joint_count] max_acceleration\n"
    "0x82 STATE u64 firmware_time_us, u32 last_command_seq, u32 fault_bits, u8 mode, u8 flags, u8 joint_count, u8 reserved, u16 rx_errors, u16 reserved, f32 gripper, f32[joint_count] positions, f32[joint_count] velocities, f32[joint_count] effort if flags&1\n"
    "0x83 ACK u8 request_type, u8 mode, u16 reserved, u32 request_seq\n"
    "0x84 NACK u8 request_type, u8 reason, u8 mode, u8 reserved, u32 request_seq, u32 detail\n"
    "trailer u32 crc32\n";

uint32_t hwl_schema_hash(void) { return hwl_crc32((const uint8_t *)hwl_schema_text, strlen(hwl_schema_text)); }
