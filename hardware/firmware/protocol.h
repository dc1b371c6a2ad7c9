/* Device side of the robot_ac serial link protocol (hardware/PROTOCOL.md): COBS framing, CRC-16,
 * frame encode/decode. No allocation, no libc beyond memcpy: the same code runs on the host build
 * and on the Cortex-M4 target. Keep in step with robot_ac/hardware/protocol.py. */
#ifndef ROBOT_AC_PROTOCOL_H
#define ROBOT_AC_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define RAC_PROTOCOL_VERSION 1u
#define RAC_HEADER_SIZE 6u
#define RAC_CRC_SIZE 2u
#define RAC_MAX_PAYLOAD 1024u
#define RAC_MAX_RAW (RAC_HEADER_SIZE + RAC_MAX_PAYLOAD + RAC_CRC_SIZE)
/* COBS adds one code byte per started 254-byte block; +2 for the 0x00 delimiters on the wire. */
#define RAC_MAX_ENCODED (RAC_MAX_RAW + (RAC_MAX_RAW + 253u) / 254u)
#define RAC_MAX_WIRE (RAC_MAX_ENCODED + 2u)

enum rac_msg_type {
    RAC_MSG_STATE = 0x01,
    RAC_MSG_ACTION = 0x02,
    RAC_MSG_HEARTBEAT = 0x03,
    RAC_MSG_CONFIG = 0x04,
    RAC_MSG_FAULT = 0x05
};

enum rac_fault_code {
    RAC_FAULT_WATCHDOG_TIMEOUT = 1,
    RAC_FAULT_NONFINITE_ACTION = 2,
    RAC_FAULT_NONFINITE_OBS = 3,
    RAC_FAULT_BAD_FRAME = 4,
    RAC_FAULT_NOT_ARMED = 5,
    RAC_FAULT_BAD_LENGTH = 6,
    RAC_FAULT_BAD_VERSION = 7,
    RAC_FAULT_UNKNOWN_TYPE = 8,
    RAC_FAULT_OVERRUN = 9
};

#define RAC_FLAG_ARMED 0x01u

/* Results of rac_decoder_push. */
enum rac_rx {
    RAC_RX_NONE = 0,          /* need more bytes */
    RAC_RX_FRAME = 1,         /* *out holds a frame with a valid CRC and version */
    RAC_RX_CRC_ERROR = -1,
    RAC_RX_FRAMING_ERROR = -2, /* COBS error, overlong, short or length mismatch */
    RAC_RX_BAD_VERSION = -3    /* CRC ok but unknown version; *out has type and seq */
};

typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    const uint8_t *payload; /* points into the decoder; valid until the next push */
} rac_frame;

typedef struct {
    uint8_t buf[RAC_MAX_ENCODED];
    uint8_t raw[RAC_MAX_RAW];
    size_t n;
    int overflow;
    uint32_t frames_ok, crc_errors, framing_errors;
} rac_decoder;

uint16_t rac_crc16(const uint8_t *data, size_t len);
/* Encodes len bytes into out (room for len + len / 254 + 1); returns the encoded length, no delimiter. */
size_t rac_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);
/* Returns 0 and sets *out_len, or -1 on a zero byte, a truncated block or too little room. */
int rac_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);
/* Builds the wire bytes (0x00, COBS frame, 0x00) into out; returns their count, 0 if it does not fit. */
size_t rac_frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len, uint8_t *out,
                        size_t cap);

void rac_decoder_init(rac_decoder *d);
int rac_decoder_push(rac_decoder *d, uint8_t byte, rac_frame *out);

/* Little-endian field helpers, independent of the CPU's byte order. */
void rac_put_u16(uint8_t *p, uint16_t v);
void rac_put_u32(uint8_t *p, uint32_t v);
void rac_put_f32(uint8_t *p, float v);
uint16_t rac_get_u16(const uint8_t *p);
uint32_t rac_get_u32(const uint8_t *p);
float rac_get_f32(const uint8_t *p);

#endif
