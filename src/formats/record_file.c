/* Record files: a buffered frame writer and a memory-mapped, resynchronising reader. */
#include "formats/record_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/crc32c.h"

#define WRITE_BUFFER_BYTES (1u << 20)
#define ERR_BYTES 256

/* Header field offsets (docs/FORMATS.md). */
#define OFF_KEY_LEN 4
#define OFF_VALUE_LEN 8
#define OFF_TS 12
#define OFF_HEADER_CRC 20

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Fills the 24 header bytes, header_crc included, and returns header_crc. */
static uint32_t header_fill(uint8_t *h, int64_t ts_ms, uint32_t key_len, uint32_t value_len)
{
    memcpy(h, RECFILE_SYNC, RECFILE_SYNC_BYTES);
    put_le32(h + OFF_KEY_LEN, key_len);
    put_le32(h + OFF_VALUE_LEN, value_len);
    put_le64(h + OFF_TS, (uint64_t)ts_ms);
    uint32_t hc = crc32c_update(0, h, OFF_HEADER_CRC);
    put_le32(h + OFF_HEADER_CRC, hc);
    return hc;
}

/* ---- writer ---- */

struct recfile_writer {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t offset; /* bytes accepted, buffered or not */
    int failed;
    char *path;
    char err[ERR_BYTES];
};

static void writer_fail(recfile_writer *w, const char *what, int errnum)
{
    if (w->failed) return; /* keep the first cause */
    w->failed = 1;
    snprintf(w->err, sizeof w->err, "%s: %s: %s", w->path, what, strerror(errnum));
}

static int write_all(recfile_writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            writer_fail(w, "write", errno);
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int writer_drain(recfile_writer *w)
{
    if (w->failed) return -1;
    if (w->len == 0) return 0;
    int rc = write_all(w, w->buf, w->len);
    w->len = 0;
    return rc;
}

int recfile_writer_open(const char *path, recfile_writer **out, char *err, size_t errlen)
{
    *out = NULL;
    recfile_writer *w = calloc(1, sizeof *w);
    uint8_t *buf = malloc(WRITE_BUFFER_BYTES);
    if (w == NULL || buf == NULL) {
        free(w);
        free(buf);
        set_err(err, errlen, "%s: out of memory for the write buffer", path);
        return -1;
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        set_err(err, errlen, "%s: open: %s", path, strerror(errno));
        free(buf);
        free(w);
        return -1;
    }
    w->buf = buf;
    w->path = strdup(path);
    if (w->path == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        close(w->fd);
        free(buf);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

size_t recfile_frame_encode(uint8_t *f, int64_t ts_ms, const void *key, uint32_t key_len,
                           const void *value, uint32_t value_len)
{
    uint8_t *p = f + RECFILE_HEADER_BYTES;
    header_fill(f, ts_ms, key_len, value_len);
    if (key_len) memcpy(p, key, key_len);
    if (value_len && p + key_len != (const uint8_t *)value) memcpy(p + key_len, value, value_len);
    /* Chained from header_crc: one pass over bytes 20.. gives the CRC of the whole frame. */
    uint32_t hc = get_le32(f + OFF_HEADER_CRC);
    uint32_t fc = crc32c_update(hc, f + OFF_HEADER_CRC, 4 + (size_t)key_len + value_len);
    put_le32(p + key_len + value_len, fc);
    return RECFILE_FRAME_OVERHEAD + (size_t)key_len + value_len;
}

int recfile_write_frames(recfile_writer *w, const void *frames, size_t len)
{
    if (w->failed) return -1;
    if (len > WRITE_BUFFER_BYTES - w->len && writer_drain(w) < 0) return -1;
    if (len <= WRITE_BUFFER_BYTES) {
        memcpy(w->buf + w->len, frames, len);
        w->len += len;
    } else if (write_all(w, frames, len) < 0) {
        return -1;
    }
    w->offset += len;
    return 0;
}

int recfile_write(recfile_writer *w, int64_t ts_ms, const void *key, size_t key_len,
                  const void *value, size_t value_len)
{
    if (w->failed) return -1;
    if (key_len > UINT32_MAX || value_len > UINT32_MAX) {
        w->failed = 1;
        snprintf(w->err, sizeof w->err, "%s: %s %zu over the format's limit %u", w->path,
                 key_len > UINT32_MAX ? "key_length" : "value_length",
                 key_len > UINT32_MAX ? key_len : value_len, UINT32_MAX);
        return -1;
    }
    size_t frame = RECFILE_FRAME_OVERHEAD + key_len + value_len;
    if (frame > WRITE_BUFFER_BYTES - w->len && writer_drain(w) < 0) return -1;

    if (frame <= WRITE_BUFFER_BYTES) {
        w->len += recfile_frame_encode(w->buf + w->len, ts_ms, key, (uint32_t)key_len, value,
                                       (uint32_t)value_len);
    } else {
        /* Larger than the buffer: straight through, in four writes, without a copy. */
        uint8_t h[RECFILE_HEADER_BYTES], t[4];
        uint32_t hc = header_fill(h, ts_ms, (uint32_t)key_len, (uint32_t)value_len);
        uint32_t fc = crc32c_update(hc, h + OFF_HEADER_CRC, 4);
        fc = crc32c_update(fc, key, key_len);
        fc = crc32c_update(fc, value, value_len);
        put_le32(t, fc);
        if (write_all(w, h, sizeof h) < 0 || write_all(w, key, key_len) < 0 ||
            write_all(w, value, value_len) < 0 || write_all(w, t, sizeof t) < 0)
            return -1;
    }
    w->offset += frame;
    return 0;
}

int recfile_writer_flush(recfile_writer *w, char *err, size_t errlen)
{
    if (writer_drain(w) < 0) {
        set_err(err, errlen, "%s", w->err);
        return -1;
    }
    return 0;
}

uint64_t recfile_writer_offset(const recfile_writer *w)
{
    return w->offset;
}

const char *recfile_writer_error(const recfile_writer *w)
{
    return w->failed ? w->err : NULL;
}

int recfile_writer_close(recfile_writer *w, char *err, size_t errlen)
{
    if (w == NULL) return 0;
    writer_drain(w);
    if (close(w->fd) < 0) writer_fail(w, "close", errno);
    int rc = 0;
    if (w->failed) {
        set_err(err, errlen, "%s", w->err);
        rc = -1;
    }
    free(w->buf);
    free(w->path);
    free(w);
    return rc;
}

/* ---- reader ---- */

struct recfile_reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
    size_t max_record;
    int mapped; /* data is our mmap (else the caller's memory) */
    char err[ERR_BYTES];
};

/* What a frame start at some offset turned out to be. */
typedef enum {
    PROBE_OK,
    PROBE_NO_MARKER,    /* bytes that are not a sync marker */
    PROBE_SHORT_HEADER, /* a marker (or its prefix) with fewer than 24 bytes left */
    PROBE_HEADER_CRC,   /* a marker whose header_crc does not verify */
    PROBE_TRUNCATED,    /* header verified, frame runs past the end of the file */
    PROBE_FRAME_CRC,    /* header verified, frame_crc does not */
} probe_kind;

typedef struct probe {
    probe_kind kind;
    int oversize; /* header verified and key+value over max_record (any kind but the first 3) */
    uint32_t key_len, value_len;
    int64_t ts_ms;
    uint64_t frame_len;
    uint32_t stored, computed; /* the CRC pair of a mismatch */
} probe;

static int header_verifies(const uint8_t *h)
{
    return crc32c_update(0, h, OFF_HEADER_CRC) == get_le32(h + OFF_HEADER_CRC);
}

static void probe_at(const recfile_reader *r, size_t pos, probe *p)
{
    memset(p, 0, sizeof *p);
    const uint8_t *h = r->data + pos;
    size_t left = r->size - pos;
    size_t cmp = left < RECFILE_SYNC_BYTES ? left : RECFILE_SYNC_BYTES;
    if (memcmp(h, RECFILE_SYNC, cmp) != 0) {
        p->kind = PROBE_NO_MARKER;
        return;
    }
    if (left < RECFILE_HEADER_BYTES) {
        p->kind = PROBE_SHORT_HEADER;
        return;
    }
    uint32_t hc = crc32c_update(0, h, OFF_HEADER_CRC);
    if (hc != get_le32(h + OFF_HEADER_CRC)) {
        p->kind = PROBE_HEADER_CRC;
        p->stored = get_le32(h + OFF_HEADER_CRC);
        p->computed = hc;
        return;
    }
    p->key_len = get_le32(h + OFF_KEY_LEN);
    p->value_len = get_le32(h + OFF_VALUE_LEN);
    p->ts_ms = (int64_t)get_le64(h + OFF_TS);
    p->frame_len = (uint64_t)RECFILE_FRAME_OVERHEAD + p->key_len + p->value_len;
    p->oversize = (uint64_t)p->key_len + p->value_len > r->max_record;
    if (p->frame_len > left) {
        p->kind = PROBE_TRUNCATED;
        return;
    }
    size_t body = RECFILE_FRAME_OVERHEAD - 4 + (size_t)p->key_len + p->value_len;
    uint32_t fc = crc32c_update(hc, h + OFF_HEADER_CRC, body - OFF_HEADER_CRC);
    p->stored = get_le32(h + body);
    p->computed = fc;
    p->kind = fc == p->stored ? PROBE_OK : PROBE_FRAME_CRC;
}

/* The first offset >= from where a marker starts a header that verifies, or size. A false marker
 * costs one 20-byte CRC; memchr does the skipping. */
static size_t resync(const recfile_reader *r, size_t from)
{
    const uint8_t first = (uint8_t)RECFILE_SYNC[0];
    size_t pos = from;
    while (pos + RECFILE_HEADER_BYTES <= r->size) {
        const uint8_t *hit = memchr(r->data + pos, first, r->size - RECFILE_HEADER_BYTES + 1 - pos);
        if (hit == NULL) break;
        pos = (size_t)(hit - r->data);
        if (memcmp(hit, RECFILE_SYNC, RECFILE_SYNC_BYTES) == 0 && header_verifies(hit)) return pos;
        pos++;
    }
    return r->size;
}

/* "value_length 2000000 over --maxRecordBytes 1048576", naming the field that alone passes the
 * limit, else both. */
static int limit_text(const recfile_reader *r, const probe *p, char *buf, size_t cap)
{
    if (p->value_len > r->max_record)
        return snprintf(buf, cap, "value_length %u over --maxRecordBytes %zu", p->value_len,
                        r->max_record);
    if (p->key_len > r->max_record)
        return snprintf(buf, cap, "key_length %u over --maxRecordBytes %zu", p->key_len,
                        r->max_record);
    return snprintf(buf, cap, "key_length %u + value_length %u = %llu over --maxRecordBytes %zu",
                    p->key_len, p->value_len, (unsigned long long)p->key_len + p->value_len,
                    r->max_record);
}

static void describe(recfile_reader *r, const probe *p, size_t span, int at_eof)
{
    char *e = r->err;
    size_t cap = sizeof r->err;
    int n = 0;
    if (p->oversize) {
        n = limit_text(r, p, e, cap);
        if (n < 0 || (size_t)n >= cap) return;
        e += n;
        cap -= (size_t)n;
        if (p->kind == PROBE_OK) return;
        n = snprintf(e, cap, "; ");
        if (n < 0 || (size_t)n >= cap) return;
        e += n;
        cap -= (size_t)n;
    }
    switch (p->kind) {
    case PROBE_OK:
        break;
    case PROBE_NO_MARKER:
        snprintf(e, cap, "no sync marker: %zu bytes of garbage before %s", span,
                 at_eof ? "end of file" : "the next frame");
        break;
    case PROBE_SHORT_HEADER:
        snprintf(e, cap, "truncated frame header: %zu of %d bytes before end of file",
                 (size_t)(r->size - r->pos), RECFILE_HEADER_BYTES);
        break;
    case PROBE_HEADER_CRC:
        snprintf(e, cap, "header_crc mismatch: stored 0x%08x, computed 0x%08x", p->stored,
                 p->computed);
        break;
    case PROBE_TRUNCATED:
        snprintf(e, cap,
                 "truncated frame: key_length %u + value_length %u need %llu bytes, %zu before "
                 "end of file",
                 p->key_len, p->value_len, (unsigned long long)p->frame_len,
                 (size_t)(r->size - r->pos));
        break;
    case PROBE_FRAME_CRC:
        snprintf(e, cap,
                 "frame_crc mismatch: stored 0x%08x, computed 0x%08x (key_length %u, "
                 "value_length %u)",
                 p->stored, p->computed, p->key_len, p->value_len);
        break;
    }
}

int recfile_next(recfile_reader *r, recfile_record *rec, recfile_bad *bad)
{
    if (r->pos >= r->size) return 0;
    probe p;
    probe_at(r, r->pos, &p);
    if (p.kind == PROBE_OK && !p.oversize) {
        const uint8_t *f = r->data + r->pos;
        rec->offset = r->pos;
        rec->ts_ms = p.ts_ms;
        rec->key = f + RECFILE_HEADER_BYTES;
        rec->key_len = p.key_len;
        rec->value = rec->key + p.key_len;
        rec->value_len = p.value_len;
        r->pos += (size_t)p.frame_len;
        return 1;
    }
    /* A frame that verifies as a whole is skipped whole (nothing inside it is a frame of this
     * file); anything else is bad up to the next header that verifies, which may start inside
     * the claimed frame (a torn write followed by good frames). */
    size_t end = p.kind == PROBE_OK ? r->pos + (size_t)p.frame_len : resync(r, r->pos + 1);
    size_t span = end - r->pos;
    describe(r, &p, span, end == r->size);
    int header_ok =
        p.kind != PROBE_NO_MARKER && p.kind != PROBE_SHORT_HEADER && p.kind != PROBE_HEADER_CRC;
    bad->offset = r->pos;
    bad->ts_ms = header_ok ? p.ts_ms : -1;
    bad->error = r->err;
    bad->raw = r->data + r->pos;
    bad->full_len = span;
    bad->raw_len = span < r->max_record ? span : r->max_record;
    r->pos = end;
    return 2;
}

static recfile_reader *reader_new(size_t max_record_bytes)
{
    recfile_reader *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->max_record = max_record_bytes ? max_record_bytes : RECFILE_DEFAULT_MAX_RECORD_BYTES;
    return r;
}

int recfile_reader_open(const char *path, size_t max_record_bytes, recfile_reader **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "%s: open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        set_err(err, errlen, "%s: stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: not a regular file (record files are memory-mapped)", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        set_err(err, errlen, "%s: size %lld over the address space", path, (long long)st.st_size);
        close(fd);
        return -1;
    }
    recfile_reader *r = reader_new(max_record_bytes);
    if (r == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        close(fd);
        return -1;
    }
    r->size = (size_t)st.st_size;
    if (r->size > 0) { /* mmap of length 0 fails; an empty file is a file of no frames */
        void *m = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            set_err(err, errlen, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            free(r);
            return -1;
        }
        madvise(m, r->size, MADV_SEQUENTIAL);
        r->data = m;
        r->mapped = 1;
    }
    close(fd); /* the mapping keeps the file */
    *out = r;
    return 0;
}

int recfile_reader_open_mem(const void *buf, size_t len, size_t max_record_bytes,
                            recfile_reader **out)
{
    *out = reader_new(max_record_bytes);
    if (*out == NULL) return -1;
    (*out)->data = buf;
    (*out)->size = buf ? len : 0;
    return 0;
}

uint64_t recfile_reader_size(const recfile_reader *r)
{
    return r->size;
}

uint64_t recfile_reader_position(const recfile_reader *r)
{
    return r->pos;
}

int recfile_reader_seek(recfile_reader *r, uint64_t offset)
{
    if (offset > r->size) return -1;
    r->pos = (size_t)offset;
    return 0;
}

void recfile_reader_close(recfile_reader *r)
{
    if (r == NULL) return;
    if (r->mapped) munmap((void *)r->data, r->size);
    free(r);
}

size_t recfile_make_key(uint64_t platform_id, const char *log_user_id, uint8_t *buf, size_t cap)
{
    size_t id_len = log_user_id ? strlen(log_user_id) : 0;
    uint8_t le[8];
    put_le64(le, platform_id);
    size_t n = cap < 8 ? cap : 8;
    if (n) memcpy(buf, le, n);
    if (cap > 8 && id_len) memcpy(buf + 8, log_user_id, cap - 8 < id_len ? cap - 8 : id_len);
    return 8 + id_len;
}
