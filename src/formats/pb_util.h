/*
 * pb_util: generic helpers over protobuf-c messages and descriptors.
 *
 *  - an arena ProtobufCAllocator for the decode hot path (bump allocation in
 *    chunks, a hard byte cap, reset per message, free is a no-op);
 *  - field presence and access that understand protobuf-c's three layouts
 *    (proto2 `optional` with has_ flags or NULL pointers, proto3 implicit
 *    presence, oneof case fields);
 *  - a recursive UTF-8 check of every string field (the Java pipeline's
 *    parser rejects invalid UTF-8; protobuf-c does not check it).
 *
 * See docs/WIRE.md.
 */
#ifndef LOGPROC_PB_UTIL_H
#define LOGPROC_PB_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* ---- arena allocator ---------------------------------------------------- */

typedef struct pb_arena pb_arena;

/*
 * Creates an arena that hands out memory in chunks of `chunk_bytes` (an
 * allocation larger than that gets a chunk of its own) and never holds more
 * than `cap_bytes` in total: an allocation that would pass the cap fails, so
 * protobuf-c's unpack returns NULL for a message that needs more. Use a cap of
 * a few times the largest accepted record. Returns NULL on OOM or when
 * chunk_bytes is 0 or larger than cap_bytes. Free with pb_arena_free().
 */
pb_arena *pb_arena_new(size_t chunk_bytes, size_t cap_bytes);

/* Frees every chunk and the arena. NULL is a no-op. */
void pb_arena_free(pb_arena *a);

/*
 * The ProtobufCAllocator view of the arena, to pass to `*__unpack()` and
 * `*__free_unpacked()` (whose frees do nothing). The pointer lives as long as
 * the arena. Every allocation is aligned to max_align_t. Cost: O(1) per
 * allocation, plus a malloc when a new chunk is needed.
 */
ProtobufCAllocator *pb_arena_allocator(pb_arena *a);

/*
 * Forgets every allocation made since the last reset; all memory handed out
 * becomes invalid. Chunks are kept for reuse, except that chunks beyond the
 * first `chunk_bytes`-sized one are released when more than `keep_bytes` are
 * held, so one huge record does not pin its memory forever. Also clears the
 * cap-hit flag. O(number of chunks).
 */
void pb_arena_reset(pb_arena *a, size_t keep_bytes);

/* Bytes handed out since the last reset (including alignment padding). */
size_t pb_arena_used(const pb_arena *a);

/* Bytes of chunk memory currently held (counts against the cap). */
size_t pb_arena_held(const pb_arena *a);

/* 1 if an allocation failed because of the cap since the last reset. */
int pb_arena_cap_hit(const pb_arena *a);

/* ---- field access -------------------------------------------------------- */

/*
 * 1 if the field is present in the message: a repeated field with at least one
 * element, the selected member of a oneof, a proto2 optional field with its
 * has_ flag set or a non-NULL pointer, a proto3 implicit-presence field that is
 * not zero/empty, or a required field. Present fields are exactly the fields
 * protobuf-c writes when packing.
 */
int pb_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* Bytes of one value of type t in a protobuf-c struct (an element of a repeated field's array). */
size_t pb_type_size(ProtobufCType t);

/* Number of elements of a repeated field; 1 or 0 (pb_field_present) otherwise. */
size_t pb_field_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/*
 * Address of element `i` of the field's value: for a repeated field, of the
 * i-th element of its array; otherwise (i must be 0) of the value member in
 * the struct. For strings and messages the address holds a pointer
 * (char ** / ProtobufCMessage **). Does not check presence.
 */
const void *pb_field_value(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, size_t i);

/*
 * Field by its proto name ("log_user_id"), or NULL. Binary search over the
 * descriptor's name index.
 */
const ProtobufCFieldDescriptor *pb_field_by_name(const ProtobufCMessageDescriptor *d,
                                                 const char *name);

/*
 * 1 if the message type is the synthetic entry message of a `map<>` field of
 * `parent` (nested in the parent, named after the field in CamelCase plus
 * "Entry", with key = 1 and value = 2). protobuf-c 1.4.1 does not keep the
 * map_entry option, so this is derived from the naming rule protoc enforces.
 */
int pb_field_is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f);

/*
 * Writes the field's JSON name (lowerCamelCase: each '_' removed and the next
 * letter upper-cased, as protoc computes json_name) into buf. Returns 0, or -1
 * if it does not fit (buf is then truncated and NUL-terminated).
 */
int pb_json_name(const char *proto_name, char *buf, size_t buflen);

/* ---- wire pre-check ------------------------------------------------------ */

/* Nesting limit used by pb_check_utf8 and recommended for pb_wire_check_depth
 * (the Java parser's default recursion limit). */
#define PB_MAX_DEPTH 100

/*
 * Walks the encoded message of type `d` without allocating, descending into
 * every length-delimited field that the descriptor declares as a message, and
 * fails if messages nest deeper than `max_depth` (the root is depth 1) or the
 * framing is broken (truncated varint or length, bad wire type, group tags).
 * protobuf-c's unpack recurses without a limit, so a 1 MiB record of nested
 * Struct/Value can exhaust the stack: call this before unpacking untrusted
 * bytes. Returns 0, or -1 with err naming the field number path and the
 * limit. Cost: one pass over the bytes, recursion bounded by max_depth.
 */
int pb_wire_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                        int max_depth, char *err, size_t errlen);

/* ---- UTF-8 -------------------------------------------------------------- */

/*
 * 1 if the `len` bytes are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), as Java's decoder requires; else 0.
 */
int pb_utf8_valid(const char *s, size_t len);

/*
 * Checks every present string field of the message and of all nested
 * messages (repeated, oneof and map entries included; unknown fields are not
 * looked at). Returns 0 if all are valid UTF-8, or -1 with err set to
 * "invalid UTF-8 in string field <path>" where path names the field from the
 * root, e.g. "delivery_log[0].request.insertion[2].user_info.log_user_id".
 * Nesting deeper than 100 levels also fails (protobuf-c decodes such input).
 * Cost: one pass over all strings; no allocation.
 */
int pb_check_utf8(const ProtobufCMessage *m, char *err, size_t errlen);

/* ---- checked decode ------------------------------------------------------ */

/*
 * The decode every job uses for untrusted bytes: pb_wire_check_depth with
 * PB_MAX_DEPTH, protobuf-c's unpack with `alloc` (NULL = malloc), then
 * pb_check_utf8. Returns 0 with *out set (free with
 * protobuf_c_message_free_unpacked(*out, alloc), or reset the arena), or -1
 * with *out NULL and err naming the message type and the cause (nesting,
 * "protobuf-c could not decode N bytes" for bad framing, wrong wire types or
 * allocation failure/arena cap, or the path of the invalid UTF-8 string).
 * Such a record goes to invalid_record. Cost: two passes over the bytes plus
 * one over the strings.
 */
int pb_unpack_checked(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                      ProtobufCAllocator *alloc, ProtobufCMessage **out, char *err, size_t errlen);

/* pb_unpack_checked that checks the bytes against d (nesting, UTF-8) and unpacks them with
 * unpack_as, a projection of d (pb_projection.h) filling the same C struct. */
int pb_unpack_checked_as(const ProtobufCMessageDescriptor *d,
                         const ProtobufCMessageDescriptor *unpack_as, const uint8_t *data,
                         size_t len, ProtobufCAllocator *alloc, ProtobufCMessage **out, char *err,
                         size_t errlen);

#endif
