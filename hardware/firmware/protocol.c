/* COBS + CRC-16/CCITT-FALSE framing; see hardware/PROTOCOL.md for the byte layout. */
#include "protocol.h"

#include <string.h>

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final XOR; "123456789" -> 0x29B1.
 * Bitwise rather than table-driven: frames are short and it saves 512 bytes of flash. */
uint16_t rac_crc16(const uint8_t *data, size_t len)
{
    uint16_t crc = 0xFFFFu;
    size_t i;
    int bit;
    for (i = 0; i < len; ++i) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* COBS (Cheshire & Baker 1999): each block starts with a code byte = 1 + count of following non-zero
 * bytes; code < 0xFF implies a zero after the block. A final full block gets no extra code byte. */
size_t rac_cobs_encode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t code_at = 0, o = 1, i;
    uint8_t code = 1;
    for (i = 0; i < len; ++i) {
        if (in[i] != 0) {
            out[o++] = in[i];
            ++code;
        }
        if (in[i] == 0 || (code == 0xFFu && i + 1 < len)) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        }
    }
    out[code_at] = code;
    return o;
}

int rac_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t i = 0, o = 0, end, k;
    while (i < len) {
        uint8_t code = in[i];
        if (code == 0)
            return -1;
        end = i + code;
        if (end > len || o + code - 1u > cap)
            return -1;
        for (k = i + 1; k < end; ++k) {
            if (in[k] == 0)
                return -1;
            out[o++] = in[k];
        }
        i = end;
        if (code < 0xFFu && i < len) {
            if (o >= cap)
                return -1;
            out[o++] = 0;
        }
    }
    *out_len = o;
    return 0;
}

size_t rac_frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, uint16_t len, uint8_t *out,
                        size_t cap)
{
    uint8_t raw[RAC_MAX_RAW];
    size_t raw_len = RAC_HEADER_SIZE + (size_t)len + RAC_CRC_SIZE, n;
    if (len > RAC_MAX_PAYLOAD || cap < raw_len + raw_len / 254u + 3u)
        return 0;
    raw[0] = (uint8_t)RAC_PROTOCOL_VERSION;
    raw[1] = type;
    rac_put_u16(raw + 2, seq);
    rac_put_u16(raw + 4, len);
    if (len)
        memcpy(raw + RAC_HEADER_SIZE, payload, len);
    rac_put_u16(raw + RAC_HEADER_SIZE + len, rac_crc16(raw, RAC_HEADER_SIZE + (size_t)len));
    out[0] = 0; /* leading delimiter: line noise before the frame cannot merge into it */
    n = 1 + rac_cobs_encode(raw, raw_len, out + 1);
    out[n++] = 0;
    return n;
}

void rac_decoder_init(rac_decoder *d)
{
    memset(d, 0, sizeof *d);
}

static int finish_frame(rac_decoder *d, rac_frame *out)
{
    size_t raw_len;
    if (rac_cobs_decode(d->buf, d->n, d->raw, sizeof d->raw, &raw_len) != 0 ||
        raw_len < RAC_HEADER_SIZE + RAC_CRC_SIZE)
        return RAC_RX_FRAMING_ERROR;
    if (rac_crc16(d->raw, raw_len - RAC_CRC_SIZE) != rac_get_u16(d->raw + raw_len - RAC_CRC_SIZE))
        return RAC_RX_CRC_ERROR;
    out->version = d->raw[0];
    out->type = d->raw[1];
    out->seq = rac_get_u16(d->raw + 2);
    out->len = rac_get_u16(d->raw + 4);
    out->payload = d->raw + RAC_HEADER_SIZE;
    if (out->version != RAC_PROTOCOL_VERSION)
        return RAC_RX_BAD_VERSION;
    if ((size_t)out->len != raw_len - RAC_HEADER_SIZE - RAC_CRC_SIZE)
        return RAC_RX_FRAMING_ERROR;
    return RAC_RX_FRAME;
}

/* Bytes accumulate until 0x00; an overlong run is dropped whole and the next delimiter resyncs. */
int rac_decoder_push(rac_decoder *d, uint8_t byte, rac_frame *out)
{
    int r;
    if (byte != 0) {
        if (d->n < sizeof d->buf)
            d->buf[d->n++] = byte;
        else
            d->overflow = 1;
        return RAC_RX_NONE;
    }
    if (d->overflow)
        r = RAC_RX_FRAMING_ERROR;
    else if (d->n == 0)
        r = RAC_RX_NONE; /* back-to-back delimiters: a resync marker */
    else
        r = finish_frame(d, out);
    d->n = 0;
    d->overflow = 0;
    if (r == RAC_RX_FRAME)
        d->frames_ok++;
    else if (r == RAC_RX_CRC_ERROR)
        d->crc_errors++;
    else if (r != RAC_RX_NONE)
        d->framing_errors++;
    return r;
}

void rac_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

void rac_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

void rac_put_f32(uint8_t *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    rac_put_u32(p, bits);
}

uint16_t rac_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)(p[1] << 8));
}

uint32_t rac_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

float rac_get_f32(const uint8_t *p)
{
    uint32_t bits = rac_get_u32(p);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}
