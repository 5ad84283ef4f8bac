#include "runtime/buf.h"

#include <stdlib.h>
#include <string.h>

void rt_buf_init(rt_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit ? limit : RT_BUF_DEFAULT_LIMIT;
}

void rt_buf_free(rt_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void rt_buf_reset(rt_buf *b)
{
    b->len = 0;
}

int rt_buf_reserve(rt_buf *b, size_t n)
{
    if (n > b->limit || b->len > b->limit - n) return -1;
    size_t need = b->len + n;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->limit) cap = b->limit;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int rt_buf_append(rt_buf *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    if (rt_buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int rt_buf_put_u8(rt_buf *b, uint8_t v)
{
    return rt_buf_append(b, &v, 1);
}

int rt_buf_put_u32(rt_buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return rt_buf_append(b, x, 4);
}

int rt_buf_put_u64(rt_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return rt_buf_append(b, x, 8);
}

int rt_buf_put_i64(rt_buf *b, int64_t v)
{
    return rt_buf_put_u64(b, (uint64_t)v);
}

int rt_buf_put_varint(rt_buf *b, uint64_t v)
{
    uint8_t x[10];
    size_t n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        x[n++] = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
    return rt_buf_append(b, x, n);
}

int rt_buf_put_bytes(rt_buf *b, const void *p, size_t n)
{
    if (rt_buf_put_varint(b, n) < 0) return -1;
    return rt_buf_append(b, p, n);
}

int rt_buf_put_str(rt_buf *b, const char *s)
{
    return rt_buf_put_bytes(b, s, strlen(s));
}

void rt_buf_patch_u32(rt_buf *b, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->data[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

void rt_buf_reader_init(rt_buf_reader *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + (p ? n : 0);
}

size_t rt_buf_reader_left(const rt_buf_reader *r)
{
    return (size_t)(r->end - r->p);
}

int rt_buf_read_raw(rt_buf_reader *r, size_t n, const uint8_t **p)
{
    if (rt_buf_reader_left(r) < n) return -1;
    *p = r->p;
    r->p += n;
    return 0;
}

int rt_buf_read_u8(rt_buf_reader *r, uint8_t *v)
{
    if (rt_buf_reader_left(r) < 1) return -1;
    *v = *r->p++;
    return 0;
}

int rt_buf_read_u32(rt_buf_reader *r, uint32_t *v)
{
    const uint8_t *p;
    if (rt_buf_read_raw(r, 4, &p) < 0) return -1;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return 0;
}

int rt_buf_read_u64(rt_buf_reader *r, uint64_t *v)
{
    const uint8_t *p;
    if (rt_buf_read_raw(r, 8, &p) < 0) return -1;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    *v = x;
    return 0;
}

int rt_buf_read_i64(rt_buf_reader *r, int64_t *v)
{
    uint64_t u;
    if (rt_buf_read_u64(r, &u) < 0) return -1;
    *v = (int64_t)u;
    return 0;
}

int rt_buf_read_varint(rt_buf_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    const uint8_t *p = r->p;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p == r->end) return -1;
        uint8_t c = *p++;
        if (shift == 63 && c > 1) return -1; /* would overflow 64 bits */
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            r->p = p;
            *v = x;
            return 0;
        }
    }
    return -1;
}

int rt_buf_read_bytes(rt_buf_reader *r, const uint8_t **p, size_t *n)
{
    rt_buf_reader save = *r;
    uint64_t len;
    if (rt_buf_read_varint(r, &len) < 0) return -1;
    if (len > rt_buf_reader_left(r)) {
        *r = save;
        return -1;
    }
    *n = (size_t)len;
    return rt_buf_read_raw(r, (size_t)len, p);
}
