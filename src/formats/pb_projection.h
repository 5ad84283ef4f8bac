/* Projections: protobuf-c message descriptors cut down to the fields a job reads.
 *
 * A job that reads a few fields of a large message (content-metrics reads a content id and a
 * few timestamps of each 1 KB joined event) spends most of its time unpacking fields it never
 * looks at. A projection is a copy of a message descriptor, and of the descriptors under it,
 * keeping only the named fields: protobuf_c_message_unpack with it fills the same C struct
 * (the same size and offsets) and keeps the other fields' bytes as unknown fields (a copy, no
 * parse), leaving the fields themselves as an absent field is left (NULL, 0). Reading a field that is not in the
 * projection gives its default: list every field the job reads.
 *
 * The wire check (nesting, UTF-8 of every string) still runs with the full descriptor
 * (pb_unpack_checked_as, pb_util.h), so which records are invalid does not change. */
#ifndef LOGPROC_PB_PROJECTION_H
#define LOGPROC_PB_PROJECTION_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct pb_projection pb_projection;

/* Builds the projection of root keeping the fields named by paths (a NULL-terminated array of
 * dotted field names relative to root, e.g. "ids", "request.timing": a path ending at a message
 * field keeps that message whole; a longer path keeps only the named fields of the messages it
 * goes through). Returns 0, or -1 with err naming the path and the part that does not exist or
 * is not a message. Costs a few allocations per message on a path; build it once per operator. */
int pb_projection_new(const ProtobufCMessageDescriptor *root, const char *const *paths,
                      pb_projection **out, char *err, size_t errlen);

/* The projected root descriptor: valid until pb_projection_free. */
const ProtobufCMessageDescriptor *pb_projection_descriptor(const pb_projection *p);

/* After an unpack with the projected descriptor: puts the original descriptors back on the
 * message and its projected sub-messages, so it reads, prints and packs (dropped fields as
 * unknown bytes) like any message of the full type. Dropped fields read as absent ones do
 * (NULL strings and messages, zeros). O(projected messages present). */
void pb_projection_finish(const pb_projection *p, ProtobufCMessage *m);

void pb_projection_free(pb_projection *p);

#endif
