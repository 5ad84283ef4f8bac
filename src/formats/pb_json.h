/*
 * pb_json: any protobuf-c message printed in the canonical proto3 JSON
 * mapping, driven by the descriptors (no per-type code).
 *
 * Mapping (docs/WIRE.md): keys are lowerCamelCase JSON names, in field-number
 * order; only present fields are printed (pb_field_present: has_ flag set,
 * non-NULL string/message, selected oneof member, non-empty repeated), so an
 * explicit-presence zero prints and an unset field does not; enums print their
 * name, or their number when the value is not named; int64/uint64/fixed64
 * print as decimal strings, 32-bit integers as numbers; bool as true/false;
 * bytes as standard base64 with padding; float/double as shortest-round-trip
 * numbers (9 / 17 significant digits), NaN and infinities as "NaN",
 * "Infinity", "-Infinity"; repeated fields as arrays; maps as objects with the
 * key as a string; google.protobuf.Struct as an object, Value as the JSON
 * value it holds (null for null_value or no kind), ListValue as an array.
 * Strings are UTF-8; a byte that is not valid UTF-8 prints as U+FFFD and
 * control characters as \uXXXX. The output is one line without spaces.
 * Unknown fields are not printed, except the assumed private fields with
 * PB_JSON_PRIVATE.
 */
#ifndef LOGPROC_PB_JSON_H
#define LOGPROC_PB_JSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* Also print the assumed private fields (pb_private.h) found among the
 * unknown fields, under their JSON names (sessionProfile, session,
 * executionInsertion, featureStage), after the known fields. */
#define PB_JSON_PRIVATE 1u

/* Default output limit of pb_json_encode (bytes, without the NUL). */
#define PB_JSON_DEFAULT_MAX ((size_t)256 << 20)

/*
 * Prints msg as JSON. Returns a malloc'd NUL-terminated string (the caller
 * frees it) and its length through len_out (may be NULL), or NULL on OOM, on
 * output beyond PB_JSON_DEFAULT_MAX or nesting beyond PB_MAX_DEPTH.
 * Cost: one pass over the message; the buffer grows by doubling.
 */
char *pb_json_encode(const ProtobufCMessage *msg, size_t *len_out);

/*
 * As pb_json_encode with flags (PB_JSON_*) and an output limit max_bytes
 * (0 = PB_JSON_DEFAULT_MAX). Returns 0 with *out set (caller frees), or -1
 * with err naming the cause ("JSON output exceeds N bytes", "out of memory",
 * "nesting deeper than 100 at <field>").
 */
int pb_json_encode_ex(const ProtobufCMessage *msg, unsigned flags, size_t max_bytes, char **out,
                      size_t *len_out, char *err, size_t errlen);

#endif
