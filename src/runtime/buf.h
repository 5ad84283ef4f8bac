/* Byte buffers with a hard cap, and a bounds-checked reader: what snapshots are written to and
 * read from.
 *
 * rt_buf is a plain caller-owned struct (init/reset/free, curl's dynbuf model): it grows by
 * doubling up to `limit` bytes, and an append that would pass the limit fails with -1 and leaves
 * the contents as they were, so hostile or runaway state turns into an error, never into an
 * unbounded allocation. Integers are little-endian; "varint" is the unsigned LEB128 of protobuf.
 *
 * rt_buf_reader walks a byte range; every read checks the remaining length and returns -1 on
 * truncation without moving, so a decoder can stop at the first short field. */
#ifndef LOGPROC_BUF_H
#define LOGPROC_BUF_H

#include <stddef.h>
#include <stdint.h>

#define RT_BUF_DEFAULT_LIMIT ((size_t)1 << 30) /* 1 GiB: the cap when a caller has no better one   \
                                                */

typedef struct rt_buf {
    uint8_t *data; /* NULL until the first append; owned by the buffer */
    size_t len;
    size_t cap;
    size_t limit; /* hard cap on len */
} rt_buf;

/* ---- writing ---- */

/* Makes b empty with the given cap (0: RT_BUF_DEFAULT_LIMIT). Allocates nothing. */
void rt_buf_init(rt_buf *b, size_t limit);
/* Frees the bytes; b may be initialised again. */
void rt_buf_free(rt_buf *b);
/* Empties b, keeping its allocation. */
void rt_buf_reset(rt_buf *b);
/* Makes room for n more bytes. Returns 0, or -1 if len + n passes the limit or malloc fails. */
int rt_buf_reserve(rt_buf *b, size_t n);
/* Appends n bytes (p may be NULL when n is 0). Returns 0 or -1 (limit, out of memory). */
int rt_buf_append(rt_buf *b, const void *p, size_t n);
int rt_buf_put_u8(rt_buf *b, uint8_t v);
int rt_buf_put_u32(rt_buf *b, uint32_t v);
int rt_buf_put_u64(rt_buf *b, uint64_t v);
int rt_buf_put_i64(rt_buf *b, int64_t v);
int rt_buf_put_varint(rt_buf *b, uint64_t v);
/* A varint length then the bytes. */
int rt_buf_put_bytes(rt_buf *b, const void *p, size_t n);
/* A varint length then the string's bytes (no NUL). */
int rt_buf_put_str(rt_buf *b, const char *s);
/* Overwrites 4 bytes at off (< len - 3) with v: for a length or count written before it is known.
 */
void rt_buf_patch_u32(rt_buf *b, size_t off, uint32_t v);

/* ---- reading ---- */

typedef struct rt_buf_reader {
    const uint8_t *p;
    const uint8_t *end;
} rt_buf_reader;

void rt_buf_reader_init(rt_buf_reader *r, const void *p, size_t n);
size_t rt_buf_reader_left(const rt_buf_reader *r);
/* Each returns 0 and advances, or -1 (truncated, or a varint longer than 10 bytes) and does not. */
int rt_buf_read_u8(rt_buf_reader *r, uint8_t *v);
int rt_buf_read_u32(rt_buf_reader *r, uint32_t *v);
int rt_buf_read_u64(rt_buf_reader *r, uint64_t *v);
int rt_buf_read_i64(rt_buf_reader *r, int64_t *v);
int rt_buf_read_varint(rt_buf_reader *r, uint64_t *v);
/* Borrows n raw bytes: *p points into the reader's range. */
int rt_buf_read_raw(rt_buf_reader *r, size_t n, const uint8_t **p);
/* A varint length then that many bytes, borrowed. */
int rt_buf_read_bytes(rt_buf_reader *r, const uint8_t **p, size_t *n);

#endif
