#include "runtime/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/crc32c.h"

static const uint8_t MAGIC[8] = {'L', 'P', 'C', 'K', 'P', 'T', '\r', '\n'};

int ckpt_encode_begin(const ckpt_header *h, rt_buf *out, ckpt_open *o, char *err, size_t errlen)
{
    o->start = out->len;
    size_t at;
    int ok = rt_buf_append(out, MAGIC, sizeof MAGIC) >= 0 &&
             rt_buf_put_u32(out, CKPT_FORMAT_VERSION) >= 0;
    at = out->len;
    ok = ok && rt_buf_put_u32(out, 0) >= 0 && rt_buf_put_str(out, h->job) >= 0 &&
         rt_buf_put_str(out, h->run_id) >= 0 && rt_buf_put_str(out, h->task) >= 0 &&
         rt_buf_put_i64(out, h->id) >= 0 && rt_buf_put_i64(out, h->created_ms) >= 0 &&
         rt_buf_put_u32(out, h->flags) >= 0 && rt_buf_put_i64(out, h->watermark) >= 0;
    if (ok) rt_buf_patch_u32(out, at, (uint32_t)(out->len - at - 4));
    o->len_at = out->len;
    ok = ok && rt_buf_put_u64(out, 0) >= 0;
    o->state_at = out->len;
    if (!ok) {
        snprintf(err, errlen, "checkpoint %" PRId64 " of task %s: over the limit of %zu bytes",
                 h->id, h->task, out->limit);
        return -1;
    }
    return 0;
}

int ckpt_encode_end(rt_buf *out, const ckpt_open *o, char *err, size_t errlen)
{
    uint64_t n = out->len - o->state_at;
    for (int i = 0; i < 8; i++) out->data[o->len_at + i] = (uint8_t)(n >> (8 * i));
    uint32_t crc = crc32c_update(0, out->data + o->start, out->len - o->start);
    if (rt_buf_put_u32(out, crc) < 0) {
        snprintf(err, errlen, "checkpoint: over the limit of %zu bytes", out->limit);
        return -1;
    }
    return 0;
}

int ckpt_encode(const ckpt_header *h, const uint8_t *state, size_t state_len, rt_buf *out,
                char *err, size_t errlen)
{
    ckpt_open o;
    if (ckpt_encode_begin(h, out, &o, err, errlen)) return -1;
    if (rt_buf_append(out, state, state_len) < 0) {
        snprintf(err, errlen, "checkpoint %" PRId64 " of task %s: over the limit of %zu bytes",
                 h->id, h->task, out->limit);
        return -1;
    }
    return ckpt_encode_end(out, &o, err, errlen);
}

static int read_str(rt_buf_reader *r, char *dst, size_t cap)
{
    const uint8_t *p;
    size_t n;
    if (rt_buf_read_bytes(r, &p, &n) < 0 || n >= cap) return -1;
    memcpy(dst, p, n);
    dst[n] = 0;
    return 0;
}

int ckpt_decode(const char *name, const uint8_t *bytes, size_t len, ckpt_header *h,
                const uint8_t **state, size_t *state_len, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (len < sizeof MAGIC + 4 + 4 + 8 + 4 || memcmp(bytes, MAGIC, sizeof MAGIC)) {
        snprintf(err, errlen, "checkpoint %s: not a checkpoint file (bad magic or %zu bytes)", name,
                 len);
        return -1;
    }
    uint32_t want = 0;
    for (int i = 0; i < 4; i++) want |= (uint32_t)bytes[len - 4 + i] << (8 * i);
    uint32_t got = crc32c_update(0, bytes, len - 4);
    if (want != got) {
        snprintf(err, errlen, "checkpoint %s: checksum mismatch (stored %08x, computed %08x)", name,
                 want, got);
        return -1;
    }
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes + sizeof MAGIC, len - sizeof MAGIC - 4);
    uint32_t version, hlen;
    if (rt_buf_read_u32(&r, &version) < 0 || rt_buf_read_u32(&r, &hlen) < 0) goto trunc;
    if (version < 1 || version > CKPT_FORMAT_VERSION) {
        snprintf(err, errlen, "checkpoint %s: format version %u, this build reads 1..%d", name,
                 version, CKPT_FORMAT_VERSION);
        return -1;
    }
    const uint8_t *hp;
    if (rt_buf_read_raw(&r, hlen, &hp) < 0) goto trunc;
    rt_buf_reader hr;
    rt_buf_reader_init(&hr, hp, hlen);
    if (read_str(&hr, h->job, sizeof h->job) < 0 || read_str(&hr, h->run_id, sizeof h->run_id) < 0 ||
        read_str(&hr, h->task, sizeof h->task) < 0 || rt_buf_read_i64(&hr, &h->id) < 0 ||
        rt_buf_read_i64(&hr, &h->created_ms) < 0 || rt_buf_read_u32(&hr, &h->flags) < 0 ||
        rt_buf_read_i64(&hr, &h->watermark) < 0)
        goto trunc;
    h->version = version;
    uint64_t slen;
    if (rt_buf_read_u64(&r, &slen) < 0) goto trunc;
    if (slen > CKPT_MAX_STATE_BYTES || slen != rt_buf_reader_left(&r)) {
        snprintf(err, errlen, "checkpoint %s: state length %" PRIu64 " does not match the %zu bytes left",
                 name, slen, rt_buf_reader_left(&r));
        return -1;
    }
    *state = r.p;
    *state_len = (size_t)slen;
    return 0;
trunc:
    snprintf(err, errlen, "checkpoint %s: truncated header", name);
    return -1;
}

void ckpt_name(int64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "chk-%012" PRId64, id);
}

int64_t ckpt_parse_name(const char *key)
{
    const char *slash = strrchr(key, '/');
    const char *n = slash ? slash + 1 : key;
    if (strncmp(n, "chk-", 4) || strlen(n) != 16) return -1;
    int64_t v = 0;
    for (const char *p = n + 4; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}
