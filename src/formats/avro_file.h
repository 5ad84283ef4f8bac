/*
 * avro_file: Avro object container files (Avro 1.11 spec, "Object Container Files").
 *
 * Writing: a header (magic "Obj\1", metadata avro.codec and avro.schema, a 16-byte sync
 * marker), then blocks of pre-encoded datums (avro_encode.h), each block = record count,
 * byte size, the block bytes compressed with the codec, the sync marker. With the snappy
 * codec a block is raw Snappy followed by the big-endian CRC32 of the uncompressed bytes.
 *
 * The framing is written here rather than by avro-c's avro_file_writer because that writer
 * (1.11.1) draws the sync marker from srand(time(NULL)) (so two runs never give the same
 * bytes, and it reseeds the process's rand()), keeps the schema text in a fixed 64 KiB buffer
 * (a cap on schema size we do not want), and cannot report which file failed.
 * Here the sync marker is a hash of a seed (by default the path), so the same datums written
 * to the same path give byte-identical files: a replayed part is rewritten identically.
 * avro-c still parses every schema (avro_schema.h) and decodes every datum when reading.
 *
 * Reading (tests, `logproc inspect`): the framing is checked here (magic, sync markers, CRC,
 * sizes against a limit) and each datum is decoded by avro-c against the writer schema.
 */
#ifndef LOGPROC_AVRO_FILE_H
#define LOGPROC_AVRO_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <avro.h>
#include <jansson.h>

#include "formats/avro_encode.h"

/* A block is written once this many datum bytes are buffered (so a block holds at most this
 * minus one plus one datum). */
#define AVRO_FILE_DEFAULT_BLOCK_BYTES (1024 * 1024)
/* Largest datum accepted: 16 x --maxRecordBytes (1 MiB). Avro writes every absent field, so a
 * protobuf record grows: at most about 12x, for a record made of empty sub-messages (an empty
 * Action is 2 bytes of protobuf and 23 of Avro; docs/AVRO.md). A block always holds at least
 * the one datum, so this also bounds the block buffer. */
#define AVRO_FILE_DEFAULT_MAX_DATUM_BYTES (16 * 1024 * 1024)
/* Largest block (compressed or not) a reader accepts. */
#define AVRO_FILE_DEFAULT_MAX_BLOCK_BYTES (64 * 1024 * 1024)

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct avro_file_opts {
    const char *codec;      /* "snappy" (also when NULL) or "null" */
    size_t block_bytes;     /* 0: AVRO_FILE_DEFAULT_BLOCK_BYTES */
    size_t max_datum_bytes; /* 0: AVRO_FILE_DEFAULT_MAX_DATUM_BYTES */
    const char *sync_seed;  /* the sync marker is derived from this; NULL: from the path */
    int fsync_on_close;     /* fsync(2) the file before closing it */
} avro_file_opts;

typedef struct avro_file_out avro_file_out;

/*
 * Creates (or truncates) `path` and writes the header with `schema_json`, which must be a valid
 * Avro schema (avsc_schema_json() or a checked-in .avsc; it is copied into the header as is).
 * opts may be NULL for the defaults. Returns 0 with *out set, or -1 with err naming the path
 * and the problem. Memory: up to about twice max(block_bytes, the largest datum) of buffers.
 */
int avro_file_out_new(const char *path, const char *schema_json, size_t schema_len,
                      const avro_file_opts *opts, avro_file_out **out, char *err, size_t errlen);

/*
 * Appends one datum (its Avro binary encoding for the file's schema; not checked). Copies the
 * bytes; writes a block to the file when block_bytes are buffered. Returns 0, or -1 with err
 * naming the path when the datum is over max_datum_bytes (the file stays usable) or the write
 * fails (the writer is then failed: later calls fail too; avro_file_out_close still frees).
 */
int avro_file_out_append(avro_file_out *w, const void *datum, size_t len, char *err, size_t errlen);

/*
 * Encodes `msg` (avenc_message, with the schema s) straight into the open block, saving the copy
 * avro_file_out_append makes; the file's header schema must be avsc_schema_json(s). Same
 * results and limits as encoding into a buffer of max_datum_bytes and appending it: -1 with err
 * when the datum is over the limit (nothing is added; the file stays usable) or the write fails.
 * stats as for avenc_message.
 */
int avro_file_out_append_message(avro_file_out *w, const avsc_schema *s,
                                 const ProtobufCMessage *msg, avenc_stats *stats, char *err,
                                 size_t errlen);

/* Writes the buffered datums as a block (no fsync). A reader then sees every datum appended
 * so far. Returns 0 or -1 with err. */
int avro_file_out_flush(avro_file_out *w, char *err, size_t errlen);

/* Datums appended so far, and bytes in the file including the buffered block's datums
 * (uncompressed, so an upper bound of what the block will take). */
uint64_t avro_file_out_records(const avro_file_out *w);
uint64_t avro_file_out_bytes(const avro_file_out *w);

/* Flushes, optionally fsyncs, closes and frees w (also when it fails). Returns 0 or -1 with
 * err naming the path; the file is then incomplete. NULL is a no-op returning 0. */
int avro_file_out_close(avro_file_out *w, char *err, size_t errlen);

/* Frees w without writing the buffered datums (abandoning a part). NULL is a no-op. */
void avro_file_out_free(avro_file_out *w);

/* The 16-byte sync marker a writer derives from `seed` (exposed for tests). */
void avro_file_sync_marker(const char *seed, uint8_t sync[16]);

/* ---- reading --------------------------------------------------------------------------------- */

typedef struct avro_file_in avro_file_in;

/*
 * Opens a container file and reads its header. max_block_bytes 0 means the default. Returns 0
 * with *out set, or -1 with err naming the path and what is wrong (no such file, bad magic, a
 * codec other than null/snappy, a schema avro-c rejects).
 */
int avro_file_in_open(const char *path, size_t max_block_bytes, avro_file_in **out, char *err,
                      size_t errlen);

/* The writer schema: as text from the header, and parsed by avro-c. Both owned by r. */
const char *avro_file_in_schema_json(const avro_file_in *r, size_t *len);
avro_schema_t avro_file_in_schema(const avro_file_in *r);

/* The codec named in the header ("null" or "snappy"). */
const char *avro_file_in_codec(const avro_file_in *r);

/*
 * Reads the next record. Returns 1 with *value pointing at a reader-owned avro-c value (valid
 * until the next call or close), 0 at the clean end of the file, -1 with err naming the path,
 * the byte offset of the block and the problem (truncated block, wrong sync marker, CRC
 * mismatch, block over the limit, datum that does not decode).
 */
int avro_file_in_next(avro_file_in *r, avro_value_t **value, char *err, size_t errlen);

/* Records returned so far. */
uint64_t avro_file_in_records(const avro_file_in *r);

/* Closes and frees r. NULL is a no-op. */
void avro_file_in_close(avro_file_in *r);

/*
 * The value as plain JSON: a record is an object with its fields in order, a union is its
 * branch's value (null for null), an enum its symbol, bytes and fixed are base64 strings, a
 * long is a JSON integer, a non-finite float or double the string "NaN", "Infinity" or
 * "-Infinity". Returns a new reference, or NULL when out of memory.
 */
json_t *avro_file_value_json(avro_value_t *value);

/*
 * Prints every record of the file as one compact JSON object per line (avro_file_value_json),
 * for `logproc inspect`. Returns 0, or -1 with err naming the path and the problem (records
 * before the problem have been printed).
 */
int avro_file_print_json(const char *path, FILE *out, char *err, size_t errlen);

#endif
