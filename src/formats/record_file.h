/* Record files: the file source and sink until Kafka arrives. A record is what a Kafka record is
 * to logproc: a millisecond timestamp, a key and a value (here a serialized protobuf).
 *
 * Each record is one frame that a reader can resynchronise on after garbage (every byte is in
 * docs/FORMATS.md), all integers little-endian:
 *
 *   0   4  sync marker F7 4C 52 FE
 *   4   4  key_length    (u32)
 *   8   4  value_length  (u32)
 *   12  8  timestamp     (i64, ms since the epoch)
 *   20  4  header_crc    CRC32C of bytes 0..20
 *   24  k  key
 *   ..  v  value
 *   ..  4  frame_crc     CRC32C of every byte before it (header, header_crc, key, value)
 *
 * The header has its own CRC so a reader never trusts a length it has not verified: a torn
 * header or a false marker inside garbage costs 24 bytes of checking, never a jump over valid
 * frames or a read of megabytes. A bad span (truncated frame, garbage, CRC mismatch, length over
 * the limit) is reported with its byte offset and the reader scans forward to the next marker
 * whose header verifies, so no valid record after garbage is lost. */
#ifndef LOGPROC_RECORD_FILE_H
#define LOGPROC_RECORD_FILE_H

#include <stddef.h>
#include <stdint.h>

#define RECFILE_DEFAULT_MAX_RECORD_BYTES (1024 * 1024) /* --maxRecordBytes: Kafka's default */

/* The first four bytes of every frame, so of every non-empty record file. 0xF7 and 0xFE never
 * occur in UTF-8, and 0xF7 cannot start a protobuf tag (wire type 7 does not exist). */
#define RECFILE_SYNC "\xF7\x4C\x52\xFE" /* \xF7 L R \xFE */
#define RECFILE_SYNC_BYTES 4
#define RECFILE_HEADER_BYTES 24   /* sync .. header_crc */
#define RECFILE_FRAME_OVERHEAD 28 /* header + frame_crc */

/* ---- writing ---- */
typedef struct recfile_writer recfile_writer;

/* Creates (truncates) path and a 1 MiB write buffer. Returns 0, or -1 with err naming the path
 * and the errno text. */
int recfile_writer_open(const char *path, recfile_writer **out, char *err, size_t errlen);
/* Appends one frame. Buffered: a frame that fits the buffer is copied into it and checksummed
 * there (one pass over bytes already in cache); a larger one is written straight through.
 * key/value may be NULL when their length is 0. Returns 0, or -1 on an I/O error or a length
 * over 2^32-1; the error is kept (recfile_writer_error) and every later call fails too. */
int recfile_write(recfile_writer *w, int64_t ts_ms, const void *key, size_t key_len,
                  const void *value, size_t value_len);
/* Hands the buffered frames to the OS (write(2), no fsync), so a reader of the path sees every
 * frame written so far. Returns 0, or -1 with err. */
int recfile_writer_flush(recfile_writer *w, char *err, size_t errlen);
/* Encodes one whole frame into dst, which must hold RECFILE_FRAME_OVERHEAD + key_len + value_len
 * bytes; returns that size. value may already sit at its place in dst (dst + RECFILE_HEADER_BYTES +
 * key_len: packed there by the caller), which saves a copy. For sinks that encode a record before
 * choosing its file. */
size_t recfile_frame_encode(uint8_t *dst, int64_t ts_ms, const void *key, uint32_t key_len,
                           const void *value, uint32_t value_len);
/* Appends frames made by recfile_frame_encode, as they are. Returns 0 or -1 (I/O error). */
int recfile_write_frames(recfile_writer *w, const void *frames, size_t len);
/* Bytes written so far, including buffered ones: the offset of the next frame. */
uint64_t recfile_writer_offset(const recfile_writer *w);
/* The first error that made the writer fail ("out.rec: write: No space left on device"), or
 * NULL. Owned by the writer. */
const char *recfile_writer_error(const recfile_writer *w);
/* Flushes, closes and frees w (also on error; NULL is a no-op). Returns 0, or -1 with err (the
 * first error of the writer's life, so a failed recfile_write is reported here too). */
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
 * also valid until close; error is a reader-owned string, valid until the next recfile_next,
 * that names the problem, the field and the limit
 * ("value_length 2000000 over --maxRecordBytes 1048576"). */
typedef struct recfile_bad {
    uint64_t offset;
    int64_t ts_ms; /* -1 when unknown (the header did not verify) */
    const char *error;
    const uint8_t *raw;
    size_t raw_len;
    size_t full_len; /* the bad span's length before the cut to max_record_bytes */
} recfile_bad;

/* Opens path read-only (memory-mapped, read sequentially). max_record_bytes bounds key+value of
 * one frame (0: RECFILE_DEFAULT_MAX_RECORD_BYTES). The mapping is the only memory that grows
 * with the file, and the kernel pages it. Returns 0, or -1 with err naming the path (missing,
 * not a regular file, mmap failure). */
int recfile_reader_open(const char *path, size_t max_record_bytes, recfile_reader **out, char *err,
                        size_t errlen);
/* The same over len bytes at buf, which the caller keeps alive and unchanged until close (a file
 * already in memory, a fuzzer's input). Never fails except for memory; returns 0 or -1. */
int recfile_reader_open_mem(const void *buf, size_t len, size_t max_record_bytes,
                            recfile_reader **out);
/* Reads the next frame: returns 1 with *rec filled, 0 at end of file, or 2 with *bad filled for
 * a bad span (then the next call continues after it). Never fails otherwise.
 * A bad span runs from the first byte that is not a valid frame to the next marker whose header
 * CRC verifies (or end of file), so consecutive bad spans are separate problems; a frame that
 * verifies but is over max_record_bytes is one bad span of exactly that frame.
 * Cost: two CRC32C passes over each frame, plus a memchr scan over garbage. */
int recfile_next(recfile_reader *r, recfile_record *rec, recfile_bad *bad);
/* File size in bytes and the offset the next call reads from (for progress and checkpoints). */
uint64_t recfile_reader_size(const recfile_reader *r);
uint64_t recfile_reader_position(const recfile_reader *r);
/* Continues reading at a frame offset (from a checkpoint). An offset that is not a frame start
 * gives a bad span there, then the next frame. Returns 0, or -1 if offset > size. */
int recfile_reader_seek(recfile_reader *r, uint64_t offset);
/* Unmaps and frees r (NULL is a no-op). Records and bad spans returned so far become invalid. */
void recfile_reader_close(recfile_reader *r);

/* Kafka record key of the Event API: 8 bytes little-endian platform_id then log_user_id bytes
 * (NULL counts as ""). Writes at most cap bytes into buf and returns the full length. */
size_t recfile_make_key(uint64_t platform_id, const char *log_user_id, uint8_t *buf, size_t cap);

#endif
