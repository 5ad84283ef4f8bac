/*
 * avro_decode: Avro binary datums back into protobuf-c messages, and the block framing of
 * Avro object container files, for replaying the archive tables (backfill).
 *
 * Datums: avdec_message is the inverse of avenc_message (avro_encode.h) over the same
 * avsc_schema layout. It walks the layout, reads the datum bytes directly (no avro-c generic
 * values: this is the replay's hot path) and builds the protobuf-c structs with the caller's
 * allocator (an arena, pb_util.h). The Avro row cannot say whether a scalar was absent or set
 * to its zero value, so the decoder gives the form proto3 bytes have:
 *
 *  - a zero number, false, "" or empty bytes leaves an optional field unset (has_ flag 0 or
 *    NULL); an enum written with its zero-numbered symbol leaves the field unset; except
 *    delivery.Insertion.position, whose 0 is read as set (explicit presence, and delivery sets
 *    it on every response insertion: an unset position therefore comes back as a set 0);
 *  - a oneof member is selected when its value is not zero/empty (a message member: not null);
 *    when the encoder wrote a selected member holding a zero value, the case is lost, and a
 *    google.protobuf.Value whose kind reads empty becomes null_value (a Value of number 0 too);
 *    two members of one oneof set is an error (the encoder never writes that);
 *  - an enum written as UNRECOGNIZED (a number the .proto does not name) cannot give its
 *    number back: a singular field stays unset and a repeated element is dropped (counted);
 *  - repeated elements are kept as they are, zero values included;
 *  - fields the schema leaves out are absent: data cut below the unrolled depth
 *    (AVSC_MAX_LEVEL) and the assumed private fields that protobuf-c keeps as unknown fields
 *    (LogRequest.session_profile, session, DeliveryExecution.execution_insertion,
 *    Insertion.feature_stage: pb_private.h), which the tables never hold.
 * A message that went through avenc_message in that canonical form (what proto3 bytes decode
 * to) comes back byte-identical when packed.
 *
 * Container files: avdec_file reads the header (magic, avro.schema, avro.codec, sync marker)
 * and then one block at a time from a caller-held span of bytes (a mapped file), inflating the
 * codecs the archive uses (null, deflate, snappy with its CRC). A bad block (truncated, wrong
 * sync marker, over the limit, a codec failure) is reported as a bad span with its byte offset
 * and the reader resynchronises on the next sync marker, like the record file reader.
 */
#ifndef LOGPROC_AVRO_DECODE_H
#define LOGPROC_AVRO_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "formats/avro_schema.h"

/* ---- datums -----------------------------------------------------------------------------------
 */

/* Returned (instead of -1) when the allocator failed (an arena's cap, out of memory). */
#define AVDEC_E_NOMEM (-2)

/* Counters a decode call adds to (optional). */
typedef struct avdec_stats {
    uint64_t enum_unrecognized; /* UNRECOGNIZED symbols read (their numbers are lost) */
} avdec_stats;

/*
 * Decodes one datum of the schema's root type from the `len` bytes at `data` (a datum is not
 * self-delimiting: it ends where its last field ends). Returns 0 with *out a new message of
 * avsc_schema_root(s)->pb allocated with alloc (NULL: malloc; free it with
 * protobuf_c_message_free_unpacked(*out, alloc), or reset the arena) and *used the datum's
 * length; -1 with err naming the record, the field and the byte offset in the datum for bytes
 * that do not decode (truncated, a varint over 10 bytes, a negative length, a union branch or
 * enum index out of range, a boolean byte other than 0/1, an int out of range, a string with a
 * NUL byte); or AVDEC_E_NOMEM with err when alloc fails. Nothing is left allocated on failure
 * with a malloc allocator; with an arena, reset it. Cost: linear in the datum, one allocation
 * per message, string, bytes value and array. Thread-safe (the schema is read only).
 */
int avdec_message(const avsc_schema *s, const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                  ProtobufCMessage **out, size_t *used, avdec_stats *stats, char *err,
                  size_t errlen);

/* Reads one zigzag varint long (an Avro int, long, length or index) at *p < end; advances *p.
 * Returns 0 or -1 (truncated, over 10 bytes). For the small hand-written schemas. */
int avdec_long(const uint8_t **p, const uint8_t *end, int64_t *out);

/* Reads an Avro string or bytes value at *p (borrowed: points into the datum). Returns 0 or -1. */
int avdec_blob(const uint8_t **p, const uint8_t *end, const uint8_t **data, size_t *len);

/*
 * 1 if the writer schema text of a file equals the schema s writes (the same JSON document:
 * whitespace and member order do not matter), 0 if not or if the text is not JSON. Cost: one
 * JSON parse of each text unless the texts are byte-identical (the usual case).
 */
int avdec_schema_matches(const char *json, size_t len, const char *ours, size_t ours_len);

/* ---- container files --------------------------------------------------------------------------
 */

/* Largest block (compressed or inflated) accepted by default. */
#define AVDEC_DEFAULT_MAX_BLOCK_BYTES (64u * 1024 * 1024)

typedef struct avdec_file avdec_file;

/* One block: `count` datums in `len` bytes (inflated; owned by the reader until its next
 * call). offset is the byte offset of the block in the file, end the offset after its sync
 * marker. */
typedef struct avdec_block {
    uint64_t offset, end;
    int64_t count;
    const uint8_t *data;
    size_t len;
} avdec_block;

/* A stretch of the file that is not a valid block: from offset, raw_len bytes (at most
 * max_raw; full_len before that cut) borrowed from the span; error is reader-owned until the
 * next call. */
typedef struct avdec_bad {
    uint64_t offset;
    const char *error;
    const uint8_t *raw;
    size_t raw_len, full_len;
} avdec_bad;

/*
 * Reads the header of the container file held in the `len` bytes at `buf` (borrowed: kept
 * alive and unchanged until avdec_file_free). name is used in errors (copied). max_block_bytes
 * 0 means AVDEC_DEFAULT_MAX_BLOCK_BYTES; max_raw bounds a bad span's raw bytes. Returns 0 with
 * *out, or -1 with err naming the file and what is wrong (not an Avro file, a header map over
 * its limits, no avro.schema, a codec other than null/deflate/snappy).
 */
int avdec_file_open(const uint8_t *buf, size_t len, const char *name, size_t max_block_bytes,
                    size_t max_raw, avdec_file **out, char *err, size_t errlen);

/* The header's schema text (not NUL-terminated: *len bytes) and codec name ("null", "deflate"
 * or "snappy"). Owned by f. */
const char *avdec_file_schema(const avdec_file *f, size_t *len);
const char *avdec_file_codec(const avdec_file *f);

/* Offset of the first block (just after the header). */
uint64_t avdec_file_data_offset(const avdec_file *f);

/*
 * The next block: 1 with *b filled, 0 at the end of the file, 2 with *bad filled for a bad
 * span (the next call goes on at the next sync marker after it). Cost: one pass over the block
 * (inflating it; checking snappy's CRC), plus a scan for the marker after a bad span. The
 * inflate buffer grows to the largest block seen, at most max_block_bytes.
 */
int avdec_file_next_block(avdec_file *f, avdec_block *b, avdec_bad *bad);

/* Offset the next call reads from. */
uint64_t avdec_file_position(const avdec_file *f);

/* Frees f (NULL is a no-op); blocks and bad spans returned become invalid. */
void avdec_file_free(avdec_file *f);

#endif
