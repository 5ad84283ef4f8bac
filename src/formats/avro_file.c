/*
 * avro_file: object container framing (write and read) and plain-JSON printing of avro-c
 * values. See avro_file.h.
 */
#include "formats/avro_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <snappy-c.h>
#include <zlib.h>

static const uint8_t MAGIC[4] = {'O', 'b', 'j', 1};

/* Largest header metadata value (the schema text) a reader accepts. */
#define MAX_HEADER_VALUE (16 * 1024 * 1024)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint8_t *put_long(uint8_t *p, int64_t n)
{
    uint64_t v = ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* ---- sync marker ----------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void avro_file_sync_marker(const char *seed, uint8_t sync[16])
{
    /* FNV-1a of the seed, spread over 16 bytes: only has to be stable and unlikely in data */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)(seed ? seed : ""); *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    for (int i = 0; i < 2; i++) {
        uint64_t v = splitmix64(&h);
        for (int k = 0; k < 8; k++)
            sync[i * 8 + k] = (uint8_t)(v >> (8 * k));
    }
}

/* ---- writing --------------------------------------------------------------------------------- */

struct avro_file_out {
    int fd;
    char *path;
    int snappy;
    int fsync_on_close;
    int failed;
    uint8_t sync[16];
    size_t block_bytes, max_datum;
    uint8_t *blk; /* datums of the open block */
    size_t blk_len, blk_cap;
    int64_t blk_count;
    uint8_t *cbuf; /* compressed block + CRC */
    size_t cbuf_cap;
    uint64_t records, file_bytes;
};

static int write_all(avro_file_out *w, const void *buf, size_t len, char *err, size_t errlen)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            set_err(err, errlen, "writing %s: %s", w->path, strerror(errno));
            w->failed = 1;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        w->file_bytes += (uint64_t)n;
    }
    return 0;
}

static int write_header(avro_file_out *w, const char *schema, size_t schema_len, char *err,
                        size_t errlen)
{
    const char *codec = w->snappy ? "snappy" : "null";
    size_t clen = strlen(codec);
    size_t cap = 4 + 10 + (10 + 10) + (10 + clen) + (10 + 11) + (10 + schema_len) + 1 + 16;
    uint8_t *h = malloc(cap);
    if (!h) {
        set_err(err, errlen, "%s: out of memory for the header", w->path);
        return -1;
    }
    uint8_t *p = h;
    memcpy(p, MAGIC, 4);
    p += 4;
    p = put_long(p, 2); /* metadata map: one block of two entries */
    p = put_long(p, 10);
    memcpy(p, "avro.codec", 10);
    p += 10;
    p = put_long(p, (int64_t)clen);
    memcpy(p, codec, clen);
    p += clen;
    p = put_long(p, 11);
    memcpy(p, "avro.schema", 11);
    p += 11;
    p = put_long(p, (int64_t)schema_len);
    memcpy(p, schema, schema_len);
    p += schema_len;
    *p++ = 0; /* end of the map */
    memcpy(p, w->sync, 16);
    p += 16;
    int rc = write_all(w, h, (size_t)(p - h), err, errlen);
    free(h);
    return rc;
}

static int write_block(avro_file_out *w, char *err, size_t errlen)
{
    if (!w->blk_count) return 0;
    const uint8_t *data = w->blk;
    size_t len = w->blk_len;
    if (w->snappy) {
        size_t need = snappy_max_compressed_length(w->blk_len) + 4;
        if (need > w->cbuf_cap) {
            uint8_t *c = realloc(w->cbuf, need);
            if (!c) {
                set_err(err, errlen, "%s: out of memory compressing a block of %zu bytes", w->path,
                        w->blk_len);
                w->failed = 1;
                return -1;
            }
            w->cbuf = c;
            w->cbuf_cap = need;
        }
        size_t clen = w->cbuf_cap - 4;
        if (snappy_compress((const char *)w->blk, w->blk_len, (char *)w->cbuf, &clen) !=
            SNAPPY_OK) {
            set_err(err, errlen, "%s: snappy failed on a block of %zu bytes", w->path, w->blk_len);
            w->failed = 1;
            return -1;
        }
        uint32_t crc = (uint32_t)crc32(0L, w->blk, (uInt)w->blk_len);
        w->cbuf[clen] = (uint8_t)(crc >> 24);
        w->cbuf[clen + 1] = (uint8_t)(crc >> 16);
        w->cbuf[clen + 2] = (uint8_t)(crc >> 8);
        w->cbuf[clen + 3] = (uint8_t)crc;
        data = w->cbuf;
        len = clen + 4;
    }
    uint8_t hdr[20];
    uint8_t *p = put_long(hdr, w->blk_count);
    p = put_long(p, (int64_t)len);
    if (write_all(w, hdr, (size_t)(p - hdr), err, errlen) || write_all(w, data, len, err, errlen) ||
        write_all(w, w->sync, 16, err, errlen))
        return -1;
    w->blk_len = 0;
    w->blk_count = 0;
    /* one huge datum must not pin its buffers for the life of the file */
    if (w->blk_cap > 2 * w->block_bytes) {
        uint8_t *b = realloc(w->blk, w->block_bytes);
        if (b) {
            w->blk = b;
            w->blk_cap = w->block_bytes;
        }
        free(w->cbuf);
        w->cbuf = NULL;
        w->cbuf_cap = 0;
    }
    return 0;
}

int avro_file_out_new(const char *path, const char *schema_json, size_t schema_len,
                      const avro_file_opts *opts, avro_file_out **out, char *err, size_t errlen)
{
    *out = NULL;
    avro_file_opts o = {0};
    if (opts) o = *opts;
    if (o.codec && strcmp(o.codec, "snappy") && strcmp(o.codec, "null")) {
        set_err(err, errlen, "%s: unsupported Avro codec \"%s\" (snappy or null)", path, o.codec);
        return -1;
    }
    if (!schema_json || !schema_len) {
        set_err(err, errlen, "%s: empty Avro schema", path);
        return -1;
    }
    avro_file_out *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    w->fd = -1;
    w->snappy = !o.codec || !strcmp(o.codec, "snappy");
    w->fsync_on_close = o.fsync_on_close;
    w->block_bytes = o.block_bytes ? o.block_bytes : AVRO_FILE_DEFAULT_BLOCK_BYTES;
    w->max_datum = o.max_datum_bytes ? o.max_datum_bytes : AVRO_FILE_DEFAULT_MAX_DATUM_BYTES;
    avro_file_sync_marker(o.sync_seed ? o.sync_seed : path, w->sync);
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        set_err(err, errlen, "creating %s: %s", path, strerror(errno));
        avro_file_out_free(w);
        return -1;
    }
    if (write_header(w, schema_json, schema_len, err, errlen)) {
        avro_file_out_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int avro_file_out_append(avro_file_out *w, const void *datum, size_t len, char *err, size_t errlen)
{
    if (w->failed) {
        set_err(err, errlen, "%s: writer failed earlier", w->path);
        return -1;
    }
    if (len > w->max_datum) {
        set_err(err, errlen, "%s: Avro datum of %zu bytes over the limit of %zu bytes", w->path,
                len, w->max_datum);
        return -1;
    }
    if (w->blk_len + len > w->blk_cap) {
        size_t cap = w->blk_cap ? w->blk_cap : 64 * 1024;
        while (cap < w->blk_len + len)
            cap *= 2;
        uint8_t *b = realloc(w->blk, cap);
        if (!b) {
            set_err(err, errlen, "%s: out of memory buffering a block of %zu bytes", w->path, cap);
            return -1;
        }
        w->blk = b;
        w->blk_cap = cap;
    }
    if (len) memcpy(w->blk + w->blk_len, datum, len);
    w->blk_len += len;
    w->blk_count++;
    w->records++;
    if (w->blk_len >= w->block_bytes) return write_block(w, err, errlen);
    return 0;
}

int avro_file_out_append_message(avro_file_out *w, const avsc_schema *s,
                                 const ProtobufCMessage *msg, avenc_stats *stats, char *err,
                                 size_t errlen)
{
    if (w->failed) {
        set_err(err, errlen, "%s: writer failed earlier", w->path);
        return -1;
    }
    /* the block buffer, lent to the encoder; its limit leaves max_datum bytes for this datum */
    avenc_buf view = {w->blk, w->blk_len, w->blk_cap, w->blk_len + w->max_datum};
    char eerr[256];
    int rc = avenc_message(s, msg, &view, stats, eerr, sizeof eerr);
    w->blk = view.data; /* the encoder may have grown it */
    w->blk_cap = view.cap;
    if (rc == AVENC_E_LIMIT) {
        set_err(err, errlen, "%s: Avro datum of %s over the limit of %zu bytes", w->path,
                avsc_schema_root(s)->full_name, w->max_datum);
        return -1;
    }
    if (rc) {
        set_err(err, errlen, "%s: %s", w->path, eerr);
        return -1;
    }
    w->blk_len = view.len;
    w->blk_count++;
    w->records++;
    if (w->blk_len >= w->block_bytes) return write_block(w, err, errlen);
    return 0;
}

int avro_file_out_flush(avro_file_out *w, char *err, size_t errlen)
{
    if (w->failed) {
        set_err(err, errlen, "%s: writer failed earlier", w->path);
        return -1;
    }
    return write_block(w, err, errlen);
}

uint64_t avro_file_out_records(const avro_file_out *w)
{
    return w->records;
}

uint64_t avro_file_out_bytes(const avro_file_out *w)
{
    return w->file_bytes + w->blk_len;
}

void avro_file_out_free(avro_file_out *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    free(w->blk);
    free(w->cbuf);
    free(w->path);
    free(w);
}

int avro_file_out_close(avro_file_out *w, char *err, size_t errlen)
{
    if (!w) return 0;
    int rc = avro_file_out_flush(w, err, errlen);
    if (!rc && w->fsync_on_close && fsync(w->fd)) {
        set_err(err, errlen, "fsync %s: %s", w->path, strerror(errno));
        rc = -1;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) && !rc) {
        set_err(err, errlen, "closing %s: %s", w->path, strerror(errno));
        rc = -1;
    }
    avro_file_out_free(w);
    return rc;
}

/* ---- reading --------------------------------------------------------------------------------- */

struct avro_file_in {
    FILE *fp;
    char *path;
    size_t max_block;
    char *schema_json;
    size_t schema_len;
    char codec[16];
    int snappy;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    int have_value;
    avro_reader_t mem;
    uint8_t sync[16];
    uint8_t *raw, *data;
    size_t raw_cap, data_cap;
    int64_t left;        /* records left in the current block */
    uint64_t offset;     /* file offset of the next unread byte */
    uint64_t blk_offset; /* file offset of the current block */
    uint64_t records;
};

/* 0 ok, 1 clean EOF before the first byte, -1 error (err set) */
static int read_long(avro_file_in *r, int64_t *out, const char *what, char *err, size_t errlen)
{
    uint64_t v = 0;
    for (int shift = 0, i = 0;; shift += 7, i++) {
        int c = getc(r->fp);
        if (c == EOF) {
            if (i == 0 && !ferror(r->fp)) return 1;
            set_err(err, errlen, "%s: truncated %s at byte %llu", r->path, what,
                    (unsigned long long)r->offset);
            return -1;
        }
        r->offset++;
        if (i == 10) {
            set_err(err, errlen, "%s: %s at byte %llu is not a valid varint", r->path, what,
                    (unsigned long long)r->offset);
            return -1;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
    }
    *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    return 0;
}

/* read_long where the end of the file is not allowed: a clean EOF (read_long's 1, which sets no
 * error) becomes a truncation error too. 0 or -1 with err. */
static int read_long_needed(avro_file_in *r, int64_t *out, const char *what, char *err,
                            size_t errlen)
{
    int rc = read_long(r, out, what, err, errlen);
    if (rc > 0)
        set_err(err, errlen, "%s: truncated %s at byte %llu", r->path, what,
                (unsigned long long)r->offset);
    return rc ? -1 : 0;
}

static int read_exact(avro_file_in *r, void *buf, size_t len, const char *what, char *err,
                      size_t errlen)
{
    if (len && fread(buf, 1, len, r->fp) != len) {
        set_err(err, errlen, "%s: truncated %s at byte %llu (%zu bytes expected)", r->path, what,
                (unsigned long long)r->offset, len);
        return -1;
    }
    r->offset += len;
    return 0;
}

static int read_blob(avro_file_in *r, char **out, size_t *len, size_t limit, const char *what,
                     char *err, size_t errlen)
{
    int64_t n;
    if (read_long_needed(r, &n, what, err, errlen)) return -1;
    if (n < 0 || (uint64_t)n > limit) {
        set_err(err, errlen, "%s: %s length %lld at byte %llu outside 0..%zu", r->path, what,
                (long long)n, (unsigned long long)r->offset, limit);
        return -1;
    }
    char *b = malloc((size_t)n + 1);
    if (!b) {
        set_err(err, errlen, "%s: out of memory reading %s", r->path, what);
        return -1;
    }
    if (read_exact(r, b, (size_t)n, what, err, errlen)) {
        free(b);
        return -1;
    }
    b[n] = 0;
    *out = b;
    *len = (size_t)n;
    return 0;
}

/* What avro-c accepts in a schema but cannot build values for (it crashes): a fixed type whose
 * size is not positive. Checked on the header's schema before avro-c sees it; a fixed type of
 * more than 1 MiB is refused too (no datum of ours needs one). Returns 0 or -1. */
#define MAX_FIXED_SIZE (1 << 20)

static int schema_sane(const json_t *j, int depth)
{
    if (depth > 4096) return -1;
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if (schema_sane(json_array_get(j, i), depth + 1)) return -1;
        return 0;
    }
    if (!json_is_object(j)) return 0;
    const json_t *type = json_object_get(j, "type");
    if (json_is_string(type) && !strcmp(json_string_value(type), "fixed")) {
        const json_t *size = json_object_get(j, "size");
        if (!json_is_integer(size) || json_integer_value(size) <= 0 ||
            json_integer_value(size) > MAX_FIXED_SIZE)
            return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) if (schema_sane(v, depth + 1)) return -1;
    return 0;
}

static int read_header(avro_file_in *r, char *err, size_t errlen)
{
    uint8_t magic[4];
    if (read_exact(r, magic, 4, "header", err, errlen)) return -1;
    if (memcmp(magic, MAGIC, 4)) {
        set_err(err, errlen, "%s: not an Avro container file (bad magic)", r->path);
        return -1;
    }
    strcpy(r->codec, "null");
    for (;;) {
        int64_t count;
        if (read_long_needed(r, &count, "header map", err, errlen)) return -1;
        if (count == 0) break;
        if (count < 0) { /* a negative count is followed by the block's byte size */
            int64_t ignored;
            if (read_long_needed(r, &ignored, "header map", err, errlen)) return -1;
            count = count == INT64_MIN ? INT64_MAX : -count; /* over the limit below either way */
        }
        if (count > 1024) {
            set_err(err, errlen, "%s: header map of %lld entries", r->path, (long long)count);
            return -1;
        }
        for (int64_t i = 0; i < count; i++) {
            char *key = NULL, *val = NULL;
            size_t klen, vlen;
            if (read_blob(r, &key, &klen, 4096, "header key", err, errlen)) return -1;
            if (read_blob(r, &val, &vlen, MAX_HEADER_VALUE, "header value", err, errlen)) {
                free(key);
                return -1;
            }
            if (!strcmp(key, "avro.schema")) {
                free(r->schema_json);
                r->schema_json = val;
                r->schema_len = vlen;
                val = NULL;
            } else if (!strcmp(key, "avro.codec")) {
                snprintf(r->codec, sizeof r->codec, "%s", val);
            }
            free(key);
            free(val);
        }
    }
    if (read_exact(r, r->sync, 16, "sync marker", err, errlen)) return -1;
    if (!strcmp(r->codec, "snappy")) {
        r->snappy = 1;
    } else if (strcmp(r->codec, "null")) {
        set_err(err, errlen, "%s: codec \"%s\" not supported (null, snappy)", r->path, r->codec);
        return -1;
    }
    if (!r->schema_json) {
        set_err(err, errlen, "%s: header has no avro.schema", r->path);
        return -1;
    }
    json_error_t je;
    json_t *sj = json_loadb(r->schema_json, r->schema_len, 0, &je);
    int sane = sj && !schema_sane(sj, 0);
    json_decref(sj);
    if (!sane) {
        set_err(err, errlen, "%s: header schema is not valid JSON, nests over 4096 deep, or has a "
                "fixed type whose size is not 1 to %d bytes", r->path, MAX_FIXED_SIZE);
        return -1;
    }
    if (avro_schema_from_json_length(r->schema_json, r->schema_len, &r->schema)) {
        r->schema = NULL;
        set_err(err, errlen, "%s: header schema rejected by avro-c: %s", r->path, avro_strerror());
        return -1;
    }
    r->iface = avro_generic_class_from_schema(r->schema);
    if (!r->iface || avro_generic_value_new(r->iface, &r->value)) {
        set_err(err, errlen, "%s: avro-c cannot build a value for the schema: %s", r->path,
                avro_strerror());
        return -1;
    }
    r->have_value = 1;
    r->mem = avro_reader_memory(NULL, 0);
    if (!r->mem) {
        set_err(err, errlen, "%s: out of memory", r->path);
        return -1;
    }
    return 0;
}

/* avro-c allocates whatever length a datum claims (a string of 6 GB, a negative length read
 * as 2^64 - 48). No datum can be larger than the block that holds it, so every avro-c allocation
 * over AVRO_ALLOC_CAP is refused (NULL: avro-c reports an error for the datum). Process-wide:
 * avro-c has one allocator; logproc's own Avro writer does not use it. */
#define AVRO_ALLOC_CAP ((size_t)256 << 20)

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud, (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (nsize > AVRO_ALLOC_CAP) return NULL;
    return realloc(ptr, nsize);
}

static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void install_capped_alloc(void)
{
    avro_set_allocator(capped_alloc, NULL);
}

int avro_file_in_open(const char *path, size_t max_block_bytes, avro_file_in **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    pthread_once(&alloc_once, install_capped_alloc);
    avro_file_in *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    r->max_block = max_block_bytes ? max_block_bytes : AVRO_FILE_DEFAULT_MAX_BLOCK_BYTES;
    r->fp = fopen(path, "rb");
    if (!r->fp) {
        set_err(err, errlen, "opening %s: %s", path, strerror(errno));
        avro_file_in_close(r);
        return -1;
    }
    if (read_header(r, err, errlen)) {
        avro_file_in_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

const char *avro_file_in_schema_json(const avro_file_in *r, size_t *len)
{
    if (len) *len = r->schema_len;
    return r->schema_json;
}

avro_schema_t avro_file_in_schema(const avro_file_in *r)
{
    return r->schema;
}

const char *avro_file_in_codec(const avro_file_in *r)
{
    return r->codec;
}

uint64_t avro_file_in_records(const avro_file_in *r)
{
    return r->records;
}

static int grow_buf(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    uint8_t *b = realloc(*buf, need);
    if (!b) return -1;
    *buf = b;
    *cap = need;
    return 0;
}

/* 1 a block is loaded, 0 clean end of file, -1 error */
static int next_block(avro_file_in *r, char *err, size_t errlen)
{
    int64_t count, size;
    r->blk_offset = r->offset;
    int rc = read_long(r, &count, "block count", err, errlen);
    if (rc) return rc > 0 ? 0 : -1;
    rc = read_long(r, &size, "block size", err, errlen);
    if (rc > 0)
        set_err(err, errlen, "%s: truncated block size at byte %llu", r->path,
                (unsigned long long)r->offset);
    if (rc) return -1;
    if (count < 0 || size < 0 || (uint64_t)size > r->max_block) {
        set_err(err, errlen, "%s: block at byte %llu: count %lld, size %lld (the limit %zu bytes)",
                r->path, (unsigned long long)r->blk_offset, (long long)count, (long long)size,
                r->max_block);
        return -1;
    }
    if (grow_buf(&r->raw, &r->raw_cap, (size_t)size + 1)) {
        set_err(err, errlen, "%s: out of memory for a block of %lld bytes", r->path,
                (long long)size);
        return -1;
    }
    if (read_exact(r, r->raw, (size_t)size, "block", err, errlen)) return -1;
    uint8_t sync[16];
    if (read_exact(r, sync, 16, "block sync marker", err, errlen)) return -1;
    if (memcmp(sync, r->sync, 16)) {
        set_err(err, errlen, "%s: block at byte %llu is not followed by the file's sync marker",
                r->path, (unsigned long long)r->blk_offset);
        return -1;
    }
    const uint8_t *data = r->raw;
    size_t len = (size_t)size;
    if (r->snappy) {
        size_t ulen;
        if (size < 4 ||
            snappy_uncompressed_length((const char *)r->raw, len - 4, &ulen) != SNAPPY_OK ||
            ulen > r->max_block) {
            set_err(err, errlen,
                    "%s: block at byte %llu: bad snappy data, or over the limit %zu bytes "
                    "uncompressed",
                    r->path, (unsigned long long)r->blk_offset, r->max_block);
            return -1;
        }
        if (grow_buf(&r->data, &r->data_cap, ulen + 1)) {
            set_err(err, errlen, "%s: out of memory for a block of %zu bytes", r->path, ulen);
            return -1;
        }
        if (snappy_uncompress((const char *)r->raw, len - 4, (char *)r->data, &ulen) != SNAPPY_OK) {
            set_err(err, errlen, "%s: block at byte %llu: snappy data does not decompress", r->path,
                    (unsigned long long)r->blk_offset);
            return -1;
        }
        const uint8_t *c = r->raw + len - 4;
        uint32_t want = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
        if ((uint32_t)crc32(0L, r->data, (uInt)ulen) != want) {
            set_err(err, errlen, "%s: block at byte %llu: CRC32 mismatch", r->path,
                    (unsigned long long)r->blk_offset);
            return -1;
        }
        data = r->data;
        len = ulen;
    }
    avro_reader_memory_set_source(r->mem, (const char *)data, (int64_t)len);
    r->left = count;
    return 1;
}

int avro_file_in_next(avro_file_in *r, avro_value_t **value, char *err, size_t errlen)
{
    while (r->left == 0) {
        int rc = next_block(r, err, errlen);
        if (rc <= 0) return rc;
    }
    if (avro_value_read(r->mem, &r->value)) {
        set_err(err, errlen, "%s: block at byte %llu: record %llu does not decode: %s", r->path,
                (unsigned long long)r->blk_offset, (unsigned long long)r->records, avro_strerror());
        return -1;
    }
    r->left--;
    r->records++;
    *value = &r->value;
    return 1;
}

void avro_file_in_close(avro_file_in *r)
{
    if (!r) return;
    if (r->fp) fclose(r->fp);
    if (r->have_value) avro_value_decref(&r->value);
    if (r->iface) avro_value_iface_decref(r->iface);
    if (r->schema) avro_schema_decref(r->schema);
    if (r->mem) avro_reader_free(r->mem);
    free(r->schema_json);
    free(r->raw);
    free(r->data);
    free(r->path);
    free(r);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static json_t *base64_json(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen = (n + 2) / 3 * 4;
    char *o = malloc(olen + 1);
    if (!o) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        o[j++] = tab[v >> 18 & 63];
        o[j++] = tab[v >> 12 & 63];
        o[j++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        o[j++] = i + 2 < n ? tab[v & 63] : '=';
    }
    json_t *s = json_stringn(o, j);
    free(o);
    return s;
}

static json_t *real_json(double d)
{
    if (isnan(d)) return json_string("NaN");
    if (isinf(d)) return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

/* Strings are UTF-8 checked on input (spec README), so this only guards against foreign files:
 * bytes jansson refuses are shown as '?'. */
static json_t *string_json(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j) return j;
    char *c = malloc(n + 1);
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_stringn(c, n);
    free(c);
    return j;
}

json_t *avro_file_value_json(avro_value_t *v)
{
    switch (avro_value_get_type(v)) {
    case AVRO_STRING: {
        const char *s;
        size_t n;
        if (avro_value_get_string(v, &s, &n)) return NULL;
        return string_json(s, n ? n - 1 : 0); /* n counts the NUL */
    }
    case AVRO_BYTES: {
        const void *b;
        size_t n;
        if (avro_value_get_bytes(v, &b, &n)) return NULL;
        return base64_json(b, n);
    }
    case AVRO_FIXED: {
        const void *b;
        size_t n;
        if (avro_value_get_fixed(v, &b, &n)) return NULL;
        return base64_json(b, n);
    }
    case AVRO_INT32: {
        int32_t i;
        return avro_value_get_int(v, &i) ? NULL : json_integer(i);
    }
    case AVRO_INT64: {
        int64_t i;
        return avro_value_get_long(v, &i) ? NULL : json_integer(i);
    }
    case AVRO_FLOAT: {
        float f;
        return avro_value_get_float(v, &f) ? NULL : real_json(f);
    }
    case AVRO_DOUBLE: {
        double d;
        return avro_value_get_double(v, &d) ? NULL : real_json(d);
    }
    case AVRO_BOOLEAN: {
        int b;
        return avro_value_get_boolean(v, &b) ? NULL : json_boolean(b);
    }
    case AVRO_NULL:
        return json_null();
    case AVRO_ENUM: {
        int i;
        if (avro_value_get_enum(v, &i)) return NULL;
        /* avro-c reads an enum index without checking it against the symbols, and
         * avro_schema_enum_get returns an uninitialised pointer for one out of range */
        avro_schema_t es = avro_value_get_schema(v);
        const char *sym =
            i >= 0 && i < avro_schema_enum_number_of_symbols(es) ? avro_schema_enum_get(es, i) : NULL;
        return sym ? json_string(sym) : json_integer(i);
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if (avro_value_get_current_branch(v, &branch)) return NULL;
        return avro_file_value_json(&branch);
    }
    case AVRO_RECORD:
    case AVRO_MAP: {
        size_t n;
        if (avro_value_get_size(v, &n)) return NULL;
        json_t *o = json_object();
        for (size_t i = 0; o && i < n; i++) {
            avro_value_t child;
            const char *name;
            json_t *c;
            if (avro_value_get_by_index(v, i, &child, &name) ||
                !(c = avro_file_value_json(&child)) || json_object_set_new(o, name, c)) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case AVRO_ARRAY: {
        size_t n;
        if (avro_value_get_size(v, &n)) return NULL;
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++) {
            avro_value_t child;
            json_t *c;
            if (avro_value_get_by_index(v, i, &child, NULL) ||
                !(c = avro_file_value_json(&child)) || json_array_append_new(a, c)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case AVRO_LINK:
        break;
    }
    return NULL;
}

int avro_file_print_json(const char *path, FILE *out, char *err, size_t errlen)
{
    avro_file_in *r;
    if (avro_file_in_open(path, 0, &r, err, errlen)) return -1;
    int rc;
    avro_value_t *v;
    while ((rc = avro_file_in_next(r, &v, err, errlen)) == 1) {
        json_t *j = avro_file_value_json(v);
        if (!j) {
            set_err(err, errlen, "%s: record %llu cannot be printed as JSON", path,
                    (unsigned long long)(avro_file_in_records(r) - 1));
            rc = -1;
            break;
        }
        int bad = json_dumpf(j, out, JSON_COMPACT) || fputc('\n', out) == EOF;
        json_decref(j);
        if (bad) {
            set_err(err, errlen, "%s: writing JSON output: %s", path, strerror(errno));
            rc = -1;
            break;
        }
    }
    avro_file_in_close(r);
    return rc < 0 ? -1 : 0;
}
