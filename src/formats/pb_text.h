/* Protobuf text format, printed the way Java's TextFormat prints a message (the reference's
 * toString(), and the format of the shared golden files):
 *
 *   platform_id: 1
 *   user_info {
 *     user_id: "userId1"
 *   }
 *
 * Fields in field-number order, nested messages as `name {` blocks indented by 2 spaces, strings
 * and bytes quoted with C escapes (non-printable and non-ASCII bytes as 3-digit octal), enums by
 * name (an unknown value as its number), floats and doubles as Java's Float/Double.toString
 * (shortest round-trip digits, always a fraction: 0.1, 1.0, 0.90000004, 1.0E-4), map entries as
 * `key`/`value` blocks sorted by key, both halves always printed.
 *
 * The assumed private fields (formats/pb_private.h: session_profile, session,
 * execution_insertion, feature_stage) are decoded from the unknown fields and printed by name in
 * their field-number place, so a generated LogRequest prints as the reference's internal schema
 * does. Other unknown fields print after the known ones as `<number>: <value>`. Generic over
 * protobuf-c descriptors; works on any message. */
#ifndef LOGPROC_PB_TEXT_H
#define LOGPROC_PB_TEXT_H

#include <stddef.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

/* Limit on nesting (deeper messages print as "# nesting limit"). */
#define PBTEXT_MAX_DEPTH 100

/* Prints m to out. Returns 0, or -1 on a write error. Cost: linear in the message, plus one
 * unpack of each private unknown field. */
int pbtext_print(FILE *out, const ProtobufCMessage *m);

/* Prints m into a malloc'd NUL-terminated string (*text, length *len). The caller frees it.
 * Returns 0, or -1 when out of memory. */
int pbtext_format(const ProtobufCMessage *m, char **text, size_t *len);


#endif
