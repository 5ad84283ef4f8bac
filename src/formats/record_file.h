/* Record files: the file source and sink until Kafka arrives. A record is what a Kafka record is
 * to logproc: a millisecond timestamp, a key and a value (here a serialized protobuf).
 *
 * Each record is one frame that a reader can resynchronise on after garbage (bytes in
 * docs/FORMATS.md):
 *   sync marker (4 bytes) | header (key length, value length, timestamp) | key | value | CRC32C
 * A bad frame (truncated, garbage, CRC mismatch, length over the limit) is reported with its
 * byte offset and the reader scans forward to the next marker whose frame verifies. */
#ifndef LOGPROC_RECORD_FILE_H
#define LOGPROC_RECORD_FILE_H

#include <stddef.h>
#include <stdint.h>

#define RECFILE_DEFAULT_MAX_RECORD_BYTES (1024 * 1024) /* --maxRecordBytes: Kafka's default */

/* ---- writing ---- */
typedef struct recfile_writer recfile_writer;

/* Creates (truncates) path. Returns 0, or -1 with err naming the path and the errno text. */
int recfile_writer_open(const char *path, recfile_writer **out, char *err, size_t errlen);
/* Appends one frame. Buffered; the bytes are only copied. Returns 0 or -1 (I/O error, in err). */
int recfile_write(recfile_writer *w, int64_t ts_ms, const void *key, size_t key_len,
                  const void *value, size_t value_len);
/* Bytes written so far, including buffered ones. */
uint64_t recfile_writer_offset(const recfile_writer *w);
/* Flushes, closes and frees w (also on error). Returns 0 or -1 with err. */
int recfile_writer_close(recfile_writer *w, char *err, size_t errlen);

/* ---- reading ---- */
typedef struct recfile_reader recfile_reader;

typedef struct recfile_record {
    uint64_t offset; /* byte offset of the frame in the file */
    int64_t ts_ms;
    const uint8_t *key; /* point into the reader's mapping: valid until recfile_reader_close */
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
} recfile_record;

/* A frame that could not be read. raw/raw_len span the bad bytes (at most max_record_bytes),
 * also valid until close; error is a static or reader-owned string that names the problem,
 * the field and the limit ("value length 2000000 over --maxRecordBytes 1048576"). */
typedef struct recfile_bad {
    uint64_t offset;
    int64_t ts_ms; /* -1 when unknown */
    const char *error;
    const uint8_t *raw;
    size_t raw_len;
    size_t full_len; /* the bad span's length before the cut to max_record_bytes */
} recfile_bad;

/* Opens path read-only (memory-mapped). max_record_bytes bounds key+value of one frame.
 * Returns 0, or -1 with err naming the path. */
int recfile_reader_open(const char *path, size_t max_record_bytes, recfile_reader **out,
                        char *err, size_t errlen);
/* Reads the next frame: returns 1 with *rec filled, 0 at end of file, or 2 with *bad filled for
 * a bad span (then the next call continues after it). Never fails otherwise. */
int recfile_next(recfile_reader *r, recfile_record *rec, recfile_bad *bad);
/* File size in bytes and the offset the next call reads from (for progress and checkpoints). */
uint64_t recfile_reader_size(const recfile_reader *r);
uint64_t recfile_reader_position(const recfile_reader *r);
/* Continues reading at a frame offset (from a checkpoint). Returns 0, or -1 if out of range. */
int recfile_reader_seek(recfile_reader *r, uint64_t offset);
void recfile_reader_close(recfile_reader *r);

/* Kafka record key of the Event API: 8 bytes little-endian platform_id then log_user_id bytes.
 * Writes at most cap bytes into buf and returns the full length. */
size_t recfile_make_key(uint64_t platform_id, const char *log_user_id, uint8_t *buf, size_t cap);

#endif
