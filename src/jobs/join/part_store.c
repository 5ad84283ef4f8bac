#include "jobs/join/part_store.h"
#include "jobs/join/join_bytes.h"

#include <stdlib.h>
#include <string.h>

#define PROBES 4
#define REF_BYTES 9 /* u8 field, u64 ref */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* scope ++ le64 ref into key (scope_len + 8 bytes). */
static size_t part_key(uint8_t *key, const uint8_t *scope, size_t scope_len, uint64_t ref)
{
    memcpy(key, scope, scope_len);
    put_u64(key + scope_len, ref);
    return scope_len + 8;
}

/* Takes a reference to bytes[0..n) under scope. Returns 0 with *ref, 1 when not shareable, -1
 * when the table refuses memory. */
static int put_part(rt_kv *kv, const uint8_t *scope, size_t scope_len, const uint8_t *bytes,
                    size_t n, uint8_t *key, uint64_t *ref)
{
    uint64_t h = rt_hash_bytes(bytes, n);
    for (int i = 0; i < PROBES; i++) {
        uint64_t r = h + (uint64_t)i;
        size_t klen = part_key(key, scope, scope_len, r);
        size_t vlen;
        uint8_t *v = rt_kv_get(kv, key, klen, &vlen);
        if (!v) {
            void *nv;
            if (n > UINT32_MAX - 4 || rt_kv_upsert(kv, key, klen, 4 + n, &nv, NULL)) return -1;
            uint32_t one = 1;
            memcpy(nv, &one, 4);
            if (n) memcpy((uint8_t *)nv + 4, bytes, n);
            *ref = r;
            return 0;
        }
        uint32_t rc;
        memcpy(&rc, v, 4);
        if (vlen == 4 + n && rc < UINT32_MAX && !memcmp(v + 4, bytes, n)) {
            rc++;
            memcpy(v, &rc, 4);
            *ref = r;
            return 0;
        }
    }
    return 1;
}

static void release_one(rt_kv *kv, const uint8_t *scope, size_t scope_len, uint64_t ref,
                        uint8_t *key)
{
    size_t klen = part_key(key, scope, scope_len, ref);
    uint8_t *v = rt_kv_get(kv, key, klen, NULL);
    if (!v) return;
    uint32_t rc;
    memcpy(&rc, v, 4);
    if (rc <= 1) {
        rt_kv_delete(kv, key, klen);
    } else {
        rc--;
        memcpy(v, &rc, 4);
    }
}

long part_store_header_len(const uint8_t *p, size_t n)
{
    if (!n) return -1;
    size_t h = 1 + (size_t)p[0] * REF_BYTES;
    return h <= n ? (long)h : -1;
}

int part_store_split(rt_kv *kv, const uint8_t *scope, size_t scope_len,
                     const ProtobufCMessage *msg, const uint32_t *fields, size_t nf, rt_buf *out)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    rt_buf_reset(out);
    if (nf > PART_STORE_MAX_FIELDS) nf = PART_STORE_MAX_FIELDS;
    uint8_t stack[1024];
    void *copy = d->sizeof_message <= sizeof stack ? stack : malloc(d->sizeof_message);
    uint8_t *key = scope_len <= PART_STORE_SCOPE_MAX ? malloc(scope_len + 8) : NULL;
    rt_buf part;
    rt_buf_init(&part, 0);
    uint8_t hdr[1 + PART_STORE_MAX_FIELDS * REF_BYTES];
    size_t nref = 0;
    int rc = -1;
    if (!copy) goto done;
    memcpy(copy, msg, d->sizeof_message);
    for (size_t i = 0; i < nf && key; i++) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, fields[i]);
        if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED ||
            fields[i] > 255)
            continue;
        ProtobufCMessage **slot = (ProtobufCMessage **)((uint8_t *)copy + f->offset);
        if (!*slot) continue;
        size_t n = protobuf_c_message_get_packed_size(*slot);
        rt_buf_reset(&part);
        if (rt_buf_reserve(&part, n ? n : 1)) goto done;
        protobuf_c_message_pack(*slot, part.data);
        uint64_t ref;
        int pr = put_part(kv, scope, scope_len, part.data, n, key, &ref);
        if (pr < 0) goto done;
        if (pr > 0) continue; /* stays inline */
        uint8_t *e = hdr + 1 + nref * REF_BYTES;
        e[0] = (uint8_t)fields[i];
        put_u64(e + 1, ref);
        nref++;
        *slot = NULL;
    }
    hdr[0] = (uint8_t)nref;
    size_t n = protobuf_c_message_get_packed_size(copy);
    size_t h = 1 + nref * REF_BYTES;
    if (rt_buf_reserve(out, h + n)) goto done;
    memcpy(out->data, hdr, h);
    protobuf_c_message_pack(copy, out->data + h);
    out->len = h + n;
    rc = 0;
done:
    if (rc && nref) {
        hdr[0] = (uint8_t)nref;
        part_store_release(kv, scope, scope_len, hdr, 1 + nref * REF_BYTES);
    }
    rt_buf_free(&part);
    free(key);
    if (copy != stack) free(copy);
    return rc;
}

int part_store_join(rt_kv *kv, const uint8_t *scope, size_t scope_len, const uint8_t *p, size_t n,
                    rt_buf *out)
{
    long h = part_store_header_len(p, n);
    if (h < 0 || scope_len > PART_STORE_SCOPE_MAX) return -1;
    if (rt_buf_append(out, p + h, n - (size_t)h)) return -1;
    uint8_t *key = malloc(scope_len + 8);
    if (!key) return -1;
    int rc = 0;
    for (size_t i = 0; i < p[0] && !rc; i++) {
        const uint8_t *e = p + 1 + i * REF_BYTES;
        size_t klen = part_key(key, scope, scope_len, get_u64(e + 1));
        size_t vlen;
        const uint8_t *v = rt_kv_get(kv, key, klen, &vlen);
        if (!v || vlen < 4) {
            rc = -1;
            break;
        }
        uint8_t tag[20];
        size_t t = jb_put_varint(tag, ((uint64_t)e[0] << 3) | 2);
        t += jb_put_varint(tag + t, vlen - 4);
        if (rt_buf_append(out, tag, t) || rt_buf_append(out, v + 4, vlen - 4)) rc = -1;
    }
    free(key);
    return rc;
}

void part_store_release(rt_kv *kv, const uint8_t *scope, size_t scope_len, const uint8_t *p,
                        size_t n)
{
    long h = part_store_header_len(p, n);
    if (h < 0 || scope_len > PART_STORE_SCOPE_MAX || !p[0]) return;
    uint8_t *key = malloc(scope_len + 8);
    if (!key) return;
    for (size_t i = 0; i < p[0]; i++)
        release_one(kv, scope, scope_len, get_u64(p + 1 + i * REF_BYTES + 1), key);
    free(key);
}
