/* The fake content catalogue (spec/fake-data.md §2): stores, their items, the items'
 * promotions, numbered with global counters per type ("s-1-3", "i-1-27", "p-1-54").
 *
 * Listings return content sorted by content id as a string (so "i-1-1", "i-1-10", "i-1-100",
 * "i-1-11", ...), exactly as the reference's filtered listing does, and are cached: after the
 * first call a listing costs nothing. */
#ifndef LOGPROC_CONTENT_DB_H
#define LOGPROC_CONTENT_DB_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CONTENT_ITEM = 0,
    CONTENT_STORE = 1,
    CONTENT_PROMOTION = 2,
    CONTENT_TYPES = 3
} content_type;

/* Hard limit on catalogue entries (stores + items + promotions). */
#define CONTENTDB_MAX_ENTRIES 10000000

typedef struct content_entry {
    const char *id; /* "i-1-27"; owned by the db */
    uint32_t id_len;
    uint8_t type;   /* content_type */
    uint32_t store; /* global numbers; 0 where the entry has no such field */
    uint32_t item;
    uint32_t promotion;
    const char *store_id;     /* request-field values, pointing at the owning entries' ids */
    const char *item_id;      /* NULL for a store */
    const char *promotion_id; /* NULL unless a promotion */
    int32_t hash;             /* the generator's H(id) = hashCode(id) * 31 + 17, for cart prices */
    uint32_t number;          /* the integer after the last '-' of the id */
} content_entry;

typedef struct contentdb contentdb;

/* Builds the catalogue of platform 1 depth-first: store k, then its items, each followed by
 * its promotions. Returns 0, or -1 with err naming the count over CONTENTDB_MAX_ENTRIES.
 * Cost: O(entries log entries) for the sorted order. Free with contentdb_free. */
int contentdb_new(int64_t stores, int64_t items_per_store, int64_t promotions_per_item,
                  contentdb **out, char *err, size_t errlen);
/* Frees db and its cached listings. NULL is a no-op. */
void contentdb_free(contentdb *db);

/* Number of entries, and entry `index` (creation order, 0-based; owned by db). */
size_t contentdb_size(const contentdb *db);
const content_entry *contentdb_entry(const contentdb *db, uint32_t index);

/* Name of a type as the reference prints it ("ITEM") and its id field ("itemId"). */
const char *contentdb_type_name(content_type t);
const char *contentdb_id_field(content_type t);
/* Parses "ITEM"/"STORE"/"PROMOTION" (any case); returns the type or -1. */
int contentdb_type_parse(const char *s);

/* Lists entries of type `type`, sorted by id, at most `limit`:
 *  - parent == UINT32_MAX: filter by type only (a top-level view);
 *  - otherwise also require the entry's <parent type's id field> to equal the parent entry's
 *    id (the "Items for X" view). An entry without that field never matches.
 * *out points into the db's cache (valid until contentdb_free); returns the count, or -1 when
 * out of memory. */
int64_t contentdb_list(contentdb *db, content_type type, uint32_t parent, size_t limit,
                       const uint32_t **out);

#endif
