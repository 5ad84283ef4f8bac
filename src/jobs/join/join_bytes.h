/* Byte helpers the join operators use to lay out their state values and keys: little-endian
 * fixed-width integers, host-order u32 lengths and protobuf-style varints. */
#ifndef LOGPROC_JOIN_BYTES_H
#define LOGPROC_JOIN_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void jb_put_i64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

static inline int64_t jb_get_i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

/* Writes v as a varint (at most 10 bytes) at p; returns the bytes written. */
static inline size_t jb_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        p[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

/* Reads a varint from at most avail bytes at p; returns the bytes read, 0 if truncated. */
static inline size_t jb_get_varint(const uint8_t *p, size_t avail, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < avail && i < 10; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

static inline uint32_t jb_get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void jb_put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

#endif
