/* Checkpoint files: the self-describing, versioned, checksummed envelope around one task's
 * snapshot (rt_task_snapshot), and the names they are stored under.
 *
 * Bytes (little-endian):
 *   "LPCKPT\r\n"                    8-byte magic (the CR LF catches text-mode mangling)
 *   u32 format version              CKPT_FORMAT_VERSION; older versions stay readable
 *   u32 header length, header:      str job, str run_id, str task, i64 id, i64 created_ms,
 *                                   u32 flags (CKPT_FINAL, CKPT_SAVEPOINT, CKPT_DRAINED),
 *                                   i64 watermark
 *   u64 state length, state         the task snapshot
 *   u32 CRC32C of every byte before it
 * where str = varint length + bytes. A file whose magic, version, lengths or checksum do not verify
 * is rejected with an error naming what is wrong, and a restore falls back to the previous
 * checkpoint. Files are written whole through the object store's atomic put, so a half-written
 * checkpoint is never visible; the checksum also catches storage corruption.
 *
 * Names: checkpoints of a task live under <dir>/<task>/ as chk-<id, 12 digits> (lexicographic
 * order = id order); a savepoint directory holds <task>.ckpt per task and a _metadata object,
 * written last, that lists them (a savepoint without _metadata is incomplete). */
#ifndef LOGPROC_CHECKPOINT_H
#define LOGPROC_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

#define CKPT_FORMAT_VERSION 1
#define CKPT_MAX_STATE_BYTES ((uint64_t)16 << 30) /* one task's state */

enum {
    CKPT_FINAL = 1,     /* taken at the end of input: the task is finished */
    CKPT_SAVEPOINT = 2, /* taken on request, kept at a path */
    CKPT_DRAINED = 4,   /* the end of input drained every window */
};

typedef struct ckpt_header {
    char job[64];
    char run_id[16];
    char task[256];
    int64_t id;
    int64_t created_ms;
    uint32_t flags;
    int64_t watermark;
    uint32_t version; /* filled by decode */
} ckpt_header;

/* Appends the envelope of state to out. Returns 0, or -1 with err (out's limit). */
int ckpt_encode(const ckpt_header *h, const uint8_t *state, size_t state_len, rt_buf *out,
                char *err, size_t errlen);

/* The same in place, without a copy of the state: begin appends the magic and header and leaves
 * room for the state length; the caller appends the state to out (rt_task_snapshot); end patches
 * the length and appends the checksum. So a task's checkpoint needs one buffer, not two. */
typedef struct ckpt_open {
    size_t start, len_at, state_at;
} ckpt_open;
int ckpt_encode_begin(const ckpt_header *h, rt_buf *out, ckpt_open *o, char *err, size_t errlen);
int ckpt_encode_end(rt_buf *out, const ckpt_open *o, char *err, size_t errlen);

/* Verifies and opens bytes: *h and the state span (borrowed from bytes). name names the input
 * in errors. Returns 0, or -1 with err (bad magic, unknown version, truncated, checksum). */
int ckpt_decode(const char *name, const uint8_t *bytes, size_t len, ckpt_header *h,
                const uint8_t **state, size_t *state_len, char *err, size_t errlen);

/* "chk-000000000042" for id 42. */
void ckpt_name(int64_t id, char *buf, size_t cap);
/* The id of a checkpoint name (the last path segment), or -1 when it is not one. */
int64_t ckpt_parse_name(const char *key);

#endif
