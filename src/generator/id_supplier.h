/* Id suppliers for the fake log generator: one independent stream per id kind.
 *
 * Two modes (spec/README.md "Resolutions", spec/fake-data.md §1.D):
 *  - random: UUIDv4 values from a generator seeded by --seed; each kind has its own stream,
 *    so the same seed gives the same ids and a different seed gives different ones.
 *  - incrementing: the reference test presets' ids, base UUID + n (n = 1, 2, ... per kind),
 *    e.g. "22222222-2222-2222-0000-000000000001"; user ids are "userId<n>".
 * Ids are kept as 128-bit values and only formatted when a record is written, so a pending
 * record costs 16 bytes per id. */
#ifndef LOGPROC_ID_SUPPLIER_H
#define LOGPROC_ID_SUPPLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    IDSUP_USER,
    IDSUP_LOG_USER,
    IDSUP_MEMBERSHIP,
    IDSUP_SESSION,
    IDSUP_VIEW,
    IDSUP_AUTO_VIEW,
    IDSUP_REQUEST,
    IDSUP_INSERTION,
    IDSUP_IMPRESSION,
    IDSUP_ACTION,
    IDSUP_KINDS
} idsup_kind;

typedef enum { IDSUP_RANDOM, IDSUP_INCREMENTING } idsup_mode;

/* A UUID as two big-endian halves: hi holds bytes 0..7, lo bytes 8..15. */
typedef struct gen_id {
    uint64_t hi, lo;
} gen_id;

#define IDSUP_UUID_LEN 36 /* formatted length, without the NUL */

/* A caller-owned value struct; no allocation. */
typedef struct idsup {
    idsup_mode mode;
    uint64_t state[IDSUP_KINDS]; /* random: per-kind generator state */
    uint64_t count[IDSUP_KINDS]; /* ids drawn so far per kind */
} idsup;

/* Sets up the streams. seed only matters in random mode. */
void idsup_init(idsup *s, idsup_mode mode, uint64_t seed);

/* Draws the next id of a kind. For IDSUP_USER in incrementing mode the value is n in lo
 * (formatted as "userId<n>"). Cost: a few multiplications. */
gen_id idsup_next(idsup *s, idsup_kind kind);

/* Formats id as a lowercase UUID into out (at least IDSUP_UUID_LEN + 1 bytes); returns 36. */
size_t idsup_format_uuid(gen_id id, char *out);

/* Formats a user id: "userId<n>" (incrementing) or "userId-<uuid>" (random) into out
 * (at least 48 bytes); returns its length. */
size_t idsup_format_user(const idsup *s, gen_id id, char *out);

/* Parses a UUID string (hex digits with the four dashes, any case). Returns 0 or -1. */
int idsup_parse_uuid(const char *text, gen_id *out);

#endif
