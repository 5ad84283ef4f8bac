/* Keyed state: per-operator hash maps from key bytes to value bytes.
 *
 *   rt_kv *seen;
 *   rt_kv_new(op, "seen", &seen);                       // in the operator's open
 *   if (!rt_kv_get(seen, key, klen, NULL)) {             // first of its key: pass it on
 *       if (rt_kv_put(seen, key, klen, NULL, 0) < 0) return -1;
 *       ...
 *
 * A table belongs to its operator (created in open, freed with the graph) and is snapshotted with
 * it by name. Each entry is one allocation holding key and value (htab.h), charged to the
 * operator and the process budget: entry header (8 bytes) + key rounded up to 8 + value + the
 * allocator's overhead (16), plus a 16-byte slot at a load between 3/8 and 3/4 (about 28 bytes
 * per entry). Growth moves slots incrementally, so no put pays for a whole resize.
 *
 * A value pointer returned by get/upsert stays valid, and may be written through, until that
 * key is put, upserted to another size, or deleted, or the table is cleared; other keys'
 * operations never move it. Values are plain bytes: a snapshot copies them as they are, so keep
 * pointers out of them (or snapshot such state in the operator's own callback).
 *
 * Iteration order is unspecified but repeatable: the hash seed is fixed, so the same operations
 * give the same order. An operator whose output depends on the order should sort. */
#ifndef LOGPROC_STATE_H
#define LOGPROC_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/htab.h"
#include "runtime/operator.h"

typedef struct rt_kv rt_kv;

/* ---- create (in the operator's open) ---- */

/* Creates an empty table named name (unique within the operator; [a-z0-9._-], it keys the table
 * in snapshots) owned by op. Returns 0 with *out, or -1 with the failure recorded on op
 * (duplicate or bad name, out of memory). */
int rt_kv_new(rt_op *op, const char *name, rt_kv **out);

/* ---- access (O(1) expected) ---- */

/* The value for key, or NULL if absent; *vlen (if given) receives its length. */
void *rt_kv_get(rt_kv *kv, const void *key, size_t klen, size_t *vlen);
/* Sets key to a copy of val (vlen bytes; val may be NULL when vlen is 0). Returns 0, or -1 with
 * the failure recorded on the operator: over the memory limit (the table is unchanged), key over
 * 65535 bytes, value over 1 GiB. */
int rt_kv_put(rt_kv *kv, const void *key, size_t klen, const void *val, size_t vlen);
/* Makes key's value vlen bytes long and returns it through *val for writing in place: a new
 * key's value is zeroed (*created = 1); an existing one keeps its first min(old, new) bytes
 * (*created = 0). created may be NULL. Returns 0 or -1 as rt_kv_put. */
int rt_kv_upsert(rt_kv *kv, const void *key, size_t klen, size_t vlen, void **val, int *created);
/* Removes key. Returns 1 if it was present, 0 if not. */
int rt_kv_delete(rt_kv *kv, const void *key, size_t klen);
/* Removes every key. */
void rt_kv_clear(rt_kv *kv);

size_t rt_kv_count(const rt_kv *kv);
/* Bytes charged for the table (entries and slot arrays). */
int64_t rt_kv_bytes(const rt_kv *kv);
const char *rt_kv_name(const rt_kv *kv);

/* ---- iteration ---- */

typedef struct rt_kv_iter {
    rt_htab_iter hi;
} rt_kv_iter;

/* Visits every key once. Deleting the key just returned is allowed; a put meanwhile may or may
 * not be visited. The table does not rehash until rt_kv_iter_end. */
void rt_kv_iter_begin(rt_kv *kv, rt_kv_iter *it);
/* Returns 1 with the next entry (key and value borrowed, valid as for rt_kv_get), or 0 at the
 * end. Any out-parameter may be NULL. */
int rt_kv_iter_next(rt_kv_iter *it, const uint8_t **key, size_t *klen, void **val, size_t *vlen);
void rt_kv_iter_end(rt_kv_iter *it);

/* ---- snapshot ---- */

/* Appends a versioned image of every entry to out. Returns 0 or -1 (out's limit). O(entries). */
int rt_kv_snapshot(rt_kv *kv, rt_buf *out);
/* Clears the table and loads an image written by rt_kv_snapshot. Returns 0, or -1 with err
 * naming the table and the problem (version, truncation, memory limit). */
int rt_kv_restore(rt_kv *kv, const uint8_t *bytes, size_t len, char *err, size_t errlen);

#endif
