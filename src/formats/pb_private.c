/*
 * pb_private: assumed private fields through protobuf-c's unknown fields.
 * See pb_private.h.
 *
 * protobuf-c stores an unknown length-delimited field with its length prefix
 * included in `data` (and packs `data` back verbatim after the tag), so the
 * payload starts after a varint here and a setter writes one.
 */
#include "formats/pb_private.h"

#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"

_Atomic uint64_t pb_private_bad_fields;

static const pb_private_field private_fields[] = {
    {&event__log_request__descriptor, PB_PRIVATE_LOG_REQUEST_SESSION_PROFILE, "session_profile",
     &logproc__priv__session_profile__descriptor, 1},
    {&event__log_request__descriptor, PB_PRIVATE_LOG_REQUEST_SESSION, "session",
     &logproc__priv__session__descriptor, 1},
    {&delivery__delivery_execution__descriptor, PB_PRIVATE_EXECUTION_INSERTION,
     "execution_insertion", &delivery__insertion__descriptor, 1},
    {&delivery__insertion__descriptor, PB_PRIVATE_INSERTION_FEATURE_STAGE, "feature_stage",
     &logproc__priv__feature_stage__descriptor, 0},
};

const pb_private_field *pb_private_fields(size_t *n)
{
    *n = sizeof private_fields / sizeof private_fields[0];
    return private_fields;
}

static void *sys_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size ? size : 1);
}

static void sys_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static ProtobufCAllocator sys_allocator = {sys_alloc, sys_free, NULL};

static ProtobufCAllocator *alloc_or_sys(ProtobufCAllocator *a)
{
    return a ? a : &sys_allocator;
}

static void count_bad(void)
{
    atomic_fetch_add_explicit(&pb_private_bad_fields, 1, memory_order_relaxed);
}

/* Splits a length-delimited unknown field into its payload; -1 if the stored
 * length prefix does not match the data (cannot happen for protobuf-c's own
 * decode, but a hand-made list may be wrong). */
static int ld_payload(const ProtobufCMessageUnknownField *u, const uint8_t **p, size_t *len)
{
    uint64_t v = 0;
    size_t i = 0;
    for (int shift = 0; shift < 64 && i < u->len; shift += 7) {
        uint8_t b = u->data[i++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (v != u->len - i) return -1;
            *p = u->data + i;
            *len = (size_t)v;
            return 0;
        }
    }
    return -1;
}

/* Unpacks one payload as `type` and validates it; NULL (and counted) if bad. */
static ProtobufCMessage *decode_checked(const ProtobufCMessageDescriptor *type, const uint8_t *p,
                                        size_t len, ProtobufCAllocator *a)
{
    char err[256];
    if (pb_wire_check_depth(type, p, len, PB_MAX_DEPTH, err, sizeof err) < 0) {
        count_bad();
        return NULL;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(type, a, len, p);
    if (!msg) {
        count_bad();
        return NULL;
    }
    if (pb_check_utf8(msg, err, sizeof err) < 0) {
        protobuf_c_message_free_unpacked(msg, a);
        count_bad();
        return NULL;
    }
    return msg;
}

int pb_private_get_list(const ProtobufCMessage *m, uint32_t number,
                        const ProtobufCMessageDescriptor *type, ProtobufCAllocator *alloc,
                        ProtobufCMessage ***out, size_t *n_out)
{
    ProtobufCAllocator *a = alloc_or_sys(alloc);
    size_t cand = 0;
    *out = NULL;
    *n_out = 0;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == number) cand++;
    if (cand == 0) return 0;
    ProtobufCMessage **list = a->alloc(a->allocator_data, cand * sizeof *list);
    if (!list) return -1;
    size_t n = 0;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        if (u->tag != number) continue;
        const uint8_t *p;
        size_t len;
        if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || ld_payload(u, &p, &len) < 0) {
            count_bad();
            continue;
        }
        ProtobufCMessage *msg = decode_checked(type, p, len, a);
        if (msg) list[n++] = msg;
    }
    if (n == 0) {
        a->free(a->allocator_data, list);
        return 0;
    }
    *out = list;
    *n_out = n;
    return 0;
}

int pb_private_get_one(const ProtobufCMessage *m, uint32_t number,
                       const ProtobufCMessageDescriptor *type, ProtobufCAllocator *alloc,
                       ProtobufCMessage **out)
{
    ProtobufCAllocator *a = alloc_or_sys(alloc);
    const uint8_t *single = NULL;
    size_t single_len = 0, total = 0, good = 0;
    *out = NULL;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        const uint8_t *p;
        size_t len;
        if (u->tag != number) continue;
        if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || ld_payload(u, &p, &len) < 0) {
            count_bad();
            continue;
        }
        single = p;
        single_len = len;
        total += len;
        good++;
    }
    if (good == 0) return 0;
    if (good == 1) {
        *out = decode_checked(type, single, single_len, a);
        return 0;
    }
    /* several occurrences of a singular message merge like concatenated bytes */
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf) return -1;
    size_t at = 0;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        const uint8_t *p;
        size_t len;
        if (u->tag != number || u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED ||
            ld_payload(u, &p, &len) < 0)
            continue;
        memcpy(buf + at, p, len);
        at += len;
    }
    *out = decode_checked(type, buf, total, a);
    free(buf);
    return 0;
}

void pb_private_free_list(ProtobufCMessage **list, size_t n, ProtobufCAllocator *alloc)
{
    ProtobufCAllocator *a = alloc_or_sys(alloc);
    if (!list) return;
    for (size_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(list[i], a);
    a->free(a->allocator_data, list);
}

static size_t varint_put(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

int pb_private_add(ProtobufCMessage *m, uint32_t number, const ProtobufCMessage *value,
                   ProtobufCAllocator *alloc)
{
    ProtobufCAllocator *a = alloc_or_sys(alloc);
    size_t plen = protobuf_c_message_get_packed_size(value);
    uint8_t pre[10];
    size_t prelen = varint_put(pre, plen);
    uint8_t *data = a->alloc(a->allocator_data, prelen + plen);
    if (!data) return -1;
    memcpy(data, pre, prelen);
    protobuf_c_message_pack(value, data + prelen);

    size_t n = m->n_unknown_fields;
    ProtobufCMessageUnknownField *arr = a->alloc(a->allocator_data, (n + 1) * sizeof *arr);
    if (!arr) {
        a->free(a->allocator_data, data);
        return -1;
    }
    if (n) memcpy(arr, m->unknown_fields, n * sizeof *arr);
    arr[n].tag = number;
    arr[n].wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    arr[n].len = prelen + plen;
    arr[n].data = data;
    if (m->unknown_fields) a->free(a->allocator_data, m->unknown_fields);
    m->unknown_fields = arr;
    m->n_unknown_fields = (unsigned)(n + 1);
    return 0;
}

void pb_private_remove(ProtobufCMessage *m, uint32_t number, ProtobufCAllocator *alloc)
{
    ProtobufCAllocator *a = alloc_or_sys(alloc);
    unsigned w = 0;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        if (u->tag == number) {
            a->free(a->allocator_data, u->data);
            continue;
        }
        m->unknown_fields[w++] = *u;
    }
    m->n_unknown_fields = w;
    if (w == 0 && m->unknown_fields) {
        a->free(a->allocator_data, m->unknown_fields);
        m->unknown_fields = NULL;
    }
}

void pb_private_clear(ProtobufCMessage *m, ProtobufCAllocator *alloc)
{
    ProtobufCAllocator *a = alloc_or_sys(alloc);
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        a->free(a->allocator_data, m->unknown_fields[i].data);
    if (m->unknown_fields) a->free(a->allocator_data, m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
}

/* ---- typed wrappers ------------------------------------------------------ */

int pb_private_get_session_profiles(const Event__LogRequest *lr, ProtobufCAllocator *alloc,
                                    Logproc__Priv__SessionProfile ***out, size_t *n_out)
{
    return pb_private_get_list(&lr->base, PB_PRIVATE_LOG_REQUEST_SESSION_PROFILE,
                               &logproc__priv__session_profile__descriptor, alloc,
                               (ProtobufCMessage ***)out, n_out);
}

int pb_private_get_sessions(const Event__LogRequest *lr, ProtobufCAllocator *alloc,
                            Logproc__Priv__Session ***out, size_t *n_out)
{
    return pb_private_get_list(&lr->base, PB_PRIVATE_LOG_REQUEST_SESSION,
                               &logproc__priv__session__descriptor, alloc,
                               (ProtobufCMessage ***)out, n_out);
}

int pb_private_get_execution_insertions(const Delivery__DeliveryExecution *ex,
                                        ProtobufCAllocator *alloc, Delivery__Insertion ***out,
                                        size_t *n_out)
{
    return pb_private_get_list(&ex->base, PB_PRIVATE_EXECUTION_INSERTION,
                               &delivery__insertion__descriptor, alloc, (ProtobufCMessage ***)out,
                               n_out);
}

int pb_private_get_feature_stage(const Delivery__Insertion *ins, ProtobufCAllocator *alloc,
                                 Logproc__Priv__FeatureStage **out)
{
    return pb_private_get_one(&ins->base, PB_PRIVATE_INSERTION_FEATURE_STAGE,
                              &logproc__priv__feature_stage__descriptor, alloc,
                              (ProtobufCMessage **)out);
}

int pb_private_add_session_profile(Event__LogRequest *lr, const Logproc__Priv__SessionProfile *sp,
                                   ProtobufCAllocator *alloc)
{
    return pb_private_add(&lr->base, PB_PRIVATE_LOG_REQUEST_SESSION_PROFILE, &sp->base, alloc);
}

int pb_private_add_session(Event__LogRequest *lr, const Logproc__Priv__Session *s,
                           ProtobufCAllocator *alloc)
{
    return pb_private_add(&lr->base, PB_PRIVATE_LOG_REQUEST_SESSION, &s->base, alloc);
}

int pb_private_add_execution_insertion(Delivery__DeliveryExecution *ex,
                                       const Delivery__Insertion *ins, ProtobufCAllocator *alloc)
{
    return pb_private_add(&ex->base, PB_PRIVATE_EXECUTION_INSERTION, &ins->base, alloc);
}

int pb_private_set_feature_stage(Delivery__Insertion *ins, const Logproc__Priv__FeatureStage *fs,
                                 ProtobufCAllocator *alloc)
{
    pb_private_remove(&ins->base, PB_PRIVATE_INSERTION_FEATURE_STAGE, alloc);
    return pb_private_add(&ins->base, PB_PRIVATE_INSERTION_FEATURE_STAGE, &fs->base, alloc);
}
