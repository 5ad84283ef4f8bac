/* Shared parts of stored records: content-addressed, reference-counted byte strings in an rt_kv
 * table, so the records an operator keeps per user share their common sub-messages instead of
 * holding a copy each (the view and the request of a joined impression are the same for every
 * impression of one request: two thirds of its bytes in the generator's CLI profile).
 *
 * A record is kept in "split form": the listed sub-message fields that are present are packed
 * on their own and put into the store under (scope, ref), and the record keeps
 *
 *   u8 n, then n x (u8 field number, u64 LE ref), then the record packed without those fields.
 *
 * Joining appends each part back as a length-delimited field, which protobuf decoding reads as
 * the same message (fields may come in any order, and a part of 0 bytes keeps its field
 * present). The store's entries are keyed by scope (the caller's key prefix, e.g. the user key)
 * ++ le64 ref, ref = the hash of the bytes (the next values on a collision, compared byte for
 * byte); the value is a u32 reference count and the bytes. Everything lives in the rt_kv, so it
 * is accounted and snapshotted with the operator. */
#ifndef LOGPROC_PART_STORE_H
#define LOGPROC_PART_STORE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/state.h"

#define PART_STORE_MAX_FIELDS 8
#define PART_STORE_SCOPE_MAX 65000 /* scope bytes: the key is scope ++ 8 */

/* Packs msg into out (reset first) in split form, putting the present message fields among
 * fields[0..nf) (non-repeated message fields of msg's type, at most PART_STORE_MAX_FIELDS) into
 * the store under scope: each gains a reference. A part that cannot be shared (four hash
 * collisions in a row, or a scope over PART_STORE_SCOPE_MAX) stays inline. Returns 0, or -1 when
 * the store's table refuses memory (recorded on its operator) or out's limit is reached; parts
 * referenced before a failure are released again. Cost: one pack of msg and one lookup per
 * part. */
int part_store_split(rt_kv *kv, const uint8_t *scope, size_t scope_len,
                     const ProtobufCMessage *msg, const uint32_t *fields, size_t nf, rt_buf *out);

/* Appends the plain packed record of split-form bytes p[0..n) to out. Returns 0, or -1 when the
 * bytes are malformed, a part is missing or out's limit is reached. */
int part_store_join(rt_kv *kv, const uint8_t *scope, size_t scope_len, const uint8_t *p, size_t n,
                    rt_buf *out);

/* Drops the references held by split-form bytes p[0..n) (a part reaching 0 is deleted).
 * Malformed bytes release what can be read. */
void part_store_release(rt_kv *kv, const uint8_t *scope, size_t scope_len, const uint8_t *p,
                        size_t n);

/* The length of the split-form header of p[0..n) (where the packed rest starts), or -1 when
 * malformed. */
long part_store_header_len(const uint8_t *p, size_t n);

#endif
