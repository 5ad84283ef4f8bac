/* The inferred-reference join (spec/flat-output.md §7, §8; spec/README.md "The join's quirks,
 * decided"): one generic keyed two-input operator, configured by callbacks, behind the three
 * joins of flat-output (join_instances.h).
 *
 * Input 0 takes the LHS parents, input 1 the RHS children, both decoded protobuf messages
 * (rt_record.data) of the configured descriptors. State is per user key (8-byte little-endian
 * platform_id + log_user_id, computed by the key callback). A child joins its parent by explicit
 * foreign key (no time bound: the parent only has to be still buffered), waits for a named
 * parent that has not arrived yet (ooIdJoin), or, without a foreign key, waits maxOOO ms and then
 * takes the parent nearest in log time within its scopes (same request, view, content id...),
 * with the reference's tie rules (§7.7) and its literal equal-time ordering (§7.3).
 *
 * Ports (port 0 the main output; the names of the others come from the config):
 *   INFERRED_JOIN_PORT_OUT                 merge outputs (out_type): explicit joins (ts = the
 *                                          child's), joins released by the parent's arrival
 *                                          (ts = the parent's), inferred and right-outer outputs
 *                                          (ts = the timer's), skip-join outputs (ts = child's)
 *   INFERRED_JOIN_PORT_LATE                a late parent itself, or merge(none, late child)
 *   INFERRED_JOIN_PORT_DROPPED             a child that found no parent (raw child, rhs_type)
 *   INFERRED_JOIN_PORT_MISMATCH            REC_MISMATCH_ERROR rows from the merges (§7.9)
 *   INFERRED_JOIN_PORT_DUPLICATE_LHS       a parent whose key is already buffered (§7.3 step 4;
 *                                          the reference never writes it to a table)
 *   INFERRED_JOIN_PORT_RHS_WITHOUT_KEY     a child with neither foreign nor primary key, or with
 *                                          a user key over INFERRED_JOIN_KEY_MAX (raw child)
 *   INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING  a keyless child whose primary key is already
 *                                          waiting for inference (raw child)
 *   INFERRED_JOIN_PORT_LHS_ZERO_LT         a parent with log_timestamp 0 (the reference fails
 *                                          the job there)
 *   INFERRED_JOIN_PORT_RHS_ZERO_LT         a child with log_timestamp 0 (raw child)
 *
 * State and costs (docs/JOIN.md "Inferred-reference join"): each parent is kept once as packed
 * bytes plus a compact index: a 40-byte entry on the (user, key) hash chain, one 4-byte slot in
 * each of its scopes' ordered sequences (a counted B+-tree per scope; a 16-byte record for a
 * scope of one member), ids stored only as offsets into some member's packed bytes, and a
 * per-user heap by log time for cleanup: about 106 bytes per buffered impression of the
 * generator's CLI profile. A duplicate parent or a duplicate pending child costs one hash lookup;
 * inserting into a scope of n parents costs O(log n); a cleanup removes each expired parent from
 * all its scopes by prefix trims, linear in what it removes; a timer never scans the key's state.
 * Everything is charged to the operator (rt_op_mem_charge) and written by the operator's snapshot
 * callback. Choosing among the parents of a scope is O(log n), except when the content filter
 * must drop some of them: then O(scope).
 *
 * Deliberate differences from the reference (docs/JOIN.md lists them): side outputs replace the
 * silent drops and the log_timestamp-0 exception; a parent stays until lt + maxTime * mult +
 * maxOOO (the reference: lt + maxTime * mult, which with maxOOO > 0 takes parents away from the
 * children still waiting maxOOO to choose, so that a larger join maximum lost joins a smaller
 * one found: docs/JOIN.md "Join maxima above zero"); a parent whose cleanup horizon lies after
 * its own timer (ts + maxTime) gets an extra timer there, and a waiting child likewise
 * (lt + maxOOO * mult), so no state outlives its horizon (the reference leaks it when mult > 1);
 * outputs of one timer firing are emitted in (timer, arrival) order of the children. */
#ifndef LOGPROC_INFERRED_JOIN_H
#define LOGPROC_INFERRED_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "jobs/join/join_records.h"
#include "runtime/graph.h"

/* Inputs. */
enum { INFERRED_JOIN_IN_LHS = 0, INFERRED_JOIN_IN_RHS = 1 };

/* Output ports (see above). */
enum {
    INFERRED_JOIN_PORT_OUT = 0,
    INFERRED_JOIN_PORT_LATE,
    INFERRED_JOIN_PORT_DROPPED,
    INFERRED_JOIN_PORT_MISMATCH,
    INFERRED_JOIN_PORT_DUPLICATE_LHS,
    INFERRED_JOIN_PORT_RHS_WITHOUT_KEY,
    INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING,
    INFERRED_JOIN_PORT_LHS_ZERO_LT,
    INFERRED_JOIN_PORT_RHS_ZERO_LT,
    INFERRED_JOIN_NPORTS
};

/* Scope ids per record (left or right): J3's five fixed ones, up to 64 --contentIdFieldKeys and
 * the key's log_user_id fit. More fails the task with a message. */
#define INFERRED_JOIN_MAX_SCOPES 80
/* Longest user key (the runtime's timer and state key limit). */
#define INFERRED_JOIN_KEY_MAX 65535u

/* An id: bytes borrowed from a record (not necessarily NUL-terminated). */
typedef struct inferred_join_id {
    const char *p;
    size_t n;
} inferred_join_id;

/* The scope ids of one record, in order. Strings are borrowed from the record. */
typedef struct inferred_join_scopes {
    inferred_join_id id[INFERRED_JOIN_MAX_SCOPES];
    size_t n;
    bool overflow; /* set by inferred_join_scopes_add when full */
} inferred_join_scopes;

/* Appends s (NULL or "" is appended as empty: the operator skips empty or blank ids itself). */
void inferred_join_scopes_add(inferred_join_scopes *sc, const char *s);

/* Visitor of content ids: returns 1 to stop the walk, 0 to go on. */
typedef int (*inferred_join_visit_fn)(void *arg, const char *s, size_t n);

/* What a merge callback writes to (see inferred_join_merge_emit). */
typedef struct inferred_join_merge inferred_join_merge;

typedef struct inferred_join_config {
    /* rt_record types and descriptors of the inputs, and the type of the merge outputs. */
    int lhs_type, rhs_type, out_type;
    const ProtobufCMessageDescriptor *lhs_desc, *rhs_desc;

    /* §7.1. max_time_ms and max_ooo_ms are >= 0; mult >= 1 multiplies the cleanup horizons. */
    int64_t max_time_ms, max_ooo_ms, mult;
    bool right_outer, skip_join, include_key_as_scope, check_lateness;
    bool content_filter; /* §7.6: needs lhs_content_ids_packed and rhs_content_ids */

    /* Names of the side ports 1..INFERRED_JOIN_NPORTS-1 (copied); NULL leaves a port unnamed. */
    const char *port_names[INFERRED_JOIN_NPORTS];

    /* Passed to every callback; freed by ctx_free (may be NULL) when the operator closes, or
     * when inferred_join_op_add fails. */
    void *ctx;
    void (*ctx_free)(void *ctx);

    /* The user key of a message on input `input`: writes at most cap bytes, returns the length
     * or -1 if it does not fit. Required. */
    int (*key)(void *ctx, int input, const void *msg, uint8_t *buf, size_t cap);
    /* log_timestamp of a message on input `input`. Required. */
    int64_t (*lt)(void *ctx, int input, const void *msg);
    /* PK(lhs), FK(rhs): NULL or a NUL-terminated string borrowed from the message. Required. */
    const char *(*lhs_pk)(void *ctx, const void *lhs);
    const char *(*rhs_fk)(void *ctx, const void *rhs);
    /* PK(rhs): may be built in a (an arena reset after the record). Required. */
    const char *(*rhs_pk)(void *ctx, const void *rhs, ProtobufCAllocator *a);
    /* Left and right scope ids in order (the key's log_user_id is appended by the operator when
     * include_key_as_scope). Required. */
    void (*lhs_scopes)(void *ctx, const void *lhs, inferred_join_scopes *out);
    void (*rhs_scopes)(void *ctx, const void *rhs, inferred_join_scopes *out);
    /* Content ids (§7.6) of a stored parent, from its packed bytes, and of a child. Each calls
     * visit for content_id when non-empty and for every other-content-id value; returns 1 if
     * visit stopped it, 0 at the end, -1 on malformed bytes. Required with content_filter. */
    int (*lhs_content_ids_packed)(void *ctx, const uint8_t *p, size_t n,
                                  inferred_join_visit_fn visit, void *arg);
    int (*rhs_content_ids)(void *ctx, const void *rhs, inferred_join_visit_fn visit, void *arg);
    /* merge(lhs or NULL, rhs): emits zero or more outputs with inferred_join_merge_emit and
     * mismatch rows with inferred_join_merge_mismatch. Returns 0 or -1 (a failure it recorded,
     * or the emit's status). Required. */
    int (*merge)(void *ctx, inferred_join_merge *m, const void *lhs, const void *rhs);
} inferred_join_config;

/* ---- building ---- */

/* Adds the operator (2 inputs, INFERRED_JOIN_NPORTS ports) under uid. The config is copied; on
 * success the operator owns cfg->ctx. Returns 0 with *out, or -1 (a required callback missing,
 * a negative duration, mult < 1, out of memory). The output watermark is held back by
 * max_ooo_ms. */
int inferred_join_op_add(rt_graph *g, const char *uid, const inferred_join_config *cfg,
                         rt_op **out);

/* ---- inside a merge callback ---- */

/* The per-record arena for outputs (valid until the merge's outputs are emitted). */
ProtobufCAllocator *inferred_join_merge_allocator(inferred_join_merge *m);
/* Pushes msg (an out_type message, borrowed for the call) on the merge's port with the merge's
 * timestamp and key. Returns 0 or the downstream status. */
int inferred_join_merge_emit(inferred_join_merge *m, const void *msg);
/* Pushes a REC_MISMATCH_ERROR row on INFERRED_JOIN_PORT_MISMATCH. Returns 0 or the status. */
int inferred_join_merge_mismatch(inferred_join_merge *m, const join_mismatch_error *e);

/* ---- inspection (tests, benchmarks, status) ---- */

typedef struct inferred_join_stats {
    uint64_t users;            /* user keys with state */
    uint64_t lhs_buffered;     /* parents held */
    uint64_t rhs_buffered;     /* children waiting: named parent or inference */
    uint64_t scopes;           /* scope sequences */
    int64_t index_bytes;       /* everything but the packed records: entries, hash buckets, scope
                                * trees, heaps, user keys */
    int64_t lhs_payload_bytes; /* packed parents (plus the allocator's 16 bytes each) */
    int64_t rhs_payload_bytes; /* packed waiting children */
    /* Work counters since the operator was created (not snapshotted): */
    uint64_t index_ops; /* the cost model of the complexity tests: scope-tree nodes visited
                         * (a node's scan of its at most 16 children counts once), time
                         * comparisons in leaves and heaps, slots moved, hash chain entries
                         * compared */
    uint64_t pk_probes; /* hash chain entries compared while looking up a parent's key */
    uint64_t lhs_duplicates, rhs_duplicate_pending;
} inferred_join_stats;

/* Fills *st. O(1). */
void inferred_join_stats_get(rt_op *op, inferred_join_stats *st);
/* Index bytes only (see inferred_join_stats.index_bytes). O(1). */
int64_t inferred_join_index_bytes(rt_op *op);
/* Packed record bytes of parents and waiting children. O(1). */
int64_t inferred_join_payload_bytes(rt_op *op);
/* Parents held, children waiting. O(1). */
uint64_t inferred_join_lhs_count(rt_op *op);
uint64_t inferred_join_rhs_count(rt_op *op);

/* Calls fn for each member of the scope `scope` of user `key`, in the scope's order (§7.3), with
 * the parent's primary key (borrowed) and log time. Returns the member count, or 0 when the
 * scope does not exist. For tests and debugging: O(scope). */
size_t inferred_join_scope_walk(rt_op *op, const uint8_t *key, size_t key_len, const char *scope,
                                void (*fn)(void *arg, const char *pk, size_t pk_len, int64_t lt),
                                void *arg);

/* ---- helpers shared with the instances ---- */

/* Java String.isBlank on UTF-8: NULL, empty, or only Character.isWhitespace code points. */
bool inferred_join_blank(const char *s);

/* §7.3's binary search, literally (Java Collections.binarySearch comparing log times), on a
 * sequence of n elements sorted by time whose elements below the key occupy [0, a) and whose
 * elements equal to it occupy [a, b): the index it returns on a hit, or -(a + 1) on a miss.
 * Inserting at the hit index (or at a on a miss) gives the reference's order: a, b, c, d with
 * equal times end up as [c, d, b, a]. O(log n), no element access. */
int64_t inferred_join_java_search(uint32_t n, uint32_t a, uint32_t b);

#endif
