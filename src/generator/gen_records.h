/* Record builder of the fake log generator: turns one compact record description (what the
 * scheduler keeps for a pending LogRequest) into an event.LogRequest, with the contents of
 * spec/fake-data.md §4 and, at detail FULL, the marketplace decorators of §4.3.
 *
 * The messages are protobuf-c structs in a per-builder arena that is reset on every build, so
 * steady-state generation does not call malloc. Constant sub-messages (devices, browsers,
 * request properties) are built once and shared. The assumed private fields (session,
 * session_profile, execution_insertion, feature_stage; see formats/pb_private.h) are attached
 * as unknown fields with the assumed numbers. Fields that proto3 would not write (zero, "")
 * are left unset so the packed bytes match proto3's. */
#ifndef LOGPROC_GEN_RECORDS_H
#define LOGPROC_GEN_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.pb-c.h"
#include "event/event.pb-c.h"
#include "generator/content_db.h"
#include "generator/id_supplier.h"

/* A user's add-to-cart contents, append-only (a checkout snapshots a prefix). */
typedef struct genrec_cart {
    uint32_t n, cap;
    uint32_t *content; /* catalogue indexes */
} genrec_cart;

#define GENREC_MAX_CART 100000 /* cart entries per log user */

typedef struct genrec_user {
    char user_id[56];
    char log_user_id[40];      /* "" when the user was chosen for an empty log_user_id */
    Common__UserInfo info;     /* {user_id, log_user_id}: wrappers, User, Request */
    Common__UserInfo log_info; /* {log_user_id}: Session */
    int32_t user_hash;         /* Java hashCode(user_id): the cohort arm */
    genrec_cart *cart;         /* shared by users with the same log_user_id ("") */
} genrec_user;

typedef enum {
    GENREC_USER = 1,
    GENREC_COHORT,
    GENREC_SESSION,
    GENREC_VIEW,
    GENREC_AUTO_VIEW,
    GENREC_DELIVERY_LOG,
    GENREC_SHADOW_LOG,
    GENREC_DIAGNOSTICS,
    GENREC_IMPRESSIONS,
    GENREC_ACTIONS,
} genrec_kind;

typedef enum { GENREC_VIEW_ALL = 0, GENREC_VIEW_ITEMS_FOR, GENREC_VIEW_PAGE_FOR } genrec_view_name;

/* One inserted, impressed or acted-on content. */
typedef struct genrec_item {
    uint32_t content;
    uint32_t action_type; /* Event__ActionType, actions only */
    gen_id insertion;
    gen_id impression;
    gen_id action;
} genrec_item;

/* A reference-counted array of items, shared by a DeliveryLog, its shadow and the runnables
 * that follow them. Allocated from the scheduler's size-class pool. */
typedef struct genrec_items {
    struct genrec_items *next_free;
    uint32_t refs, n, cls, pad;
    genrec_item v[];
} genrec_items;

#define GENREC_NO_CONTENT UINT32_MAX

/* A pending LogRequest. Which fields matter depends on kind:
 *  COHORT id=membership; SESSION id=session; VIEW id=view, parent=session (has_parent),
 *  content/view_name/level; AUTO_VIEW id=auto view, parent=session; DELIVERY_LOG id=request,
 *  view=view id, items/n, sdk, level; SHADOW_LOG id=shadow request, parent=original request,
 *  view, items/n; IMPRESSIONS items/n, level; ACTIONS items/n (with action ids and types),
 *  cart_len (checkout/purchase). ea is the event-API time written into the records; now the
 *  clock value a DeliveryLog's Request and insertions carry. */
typedef struct genrec {
    uint8_t kind;
    uint8_t level;
    uint8_t sdk;
    uint8_t view_name;
    uint8_t has_parent;
    uint32_t content;
    uint32_t n;
    uint32_t cart_len;
    genrec_user *user;
    int64_t ea;
    int64_t now;
    gen_id id;
    gen_id parent;
    gen_id view;
    genrec_items *items;
} genrec;

/* What shapes the records, fixed for a run. */
typedef struct genrec_config {
    bool full_detail;   /* §4.3 decorators */
    bool matrix_format; /* Request.insertion_matrix */
    bool full_format;   /* Request.insertion */
    bool inferred;      /* setupForInferredIds: omit the parent ids of §5 */
    int levels;         /* 1 or 2 */
    content_type level_type[2];
    bool log_impressions[2];
} genrec_config;

typedef struct genrec_builder genrec_builder;

/* Creates a builder over db (borrowed; must outlive the builder). max_record_bytes bounds the
 * arena of one record (its structs, strings and packed private fields) and the packed size.
 * Returns 0, or -1 with err set. */
int genrec_builder_new(const genrec_config *cfg, const contentdb *db, size_t max_record_bytes,
                       genrec_builder **out, char *err, size_t errlen);
/* Frees b, its arena and its buffers (the last built message becomes invalid). */
void genrec_builder_free(genrec_builder *b);

/* Builds r into *out. The message and everything it points to stay valid until the next
 * genrec_build or genrec_builder_free; do not free it. Returns 0, or -1 with err set when the
 * record would pass max_record_bytes. Cost: linear in the record's size. */
int genrec_build(genrec_builder *b, const genrec *r, Event__LogRequest **out, char *err,
                 size_t errlen);

/* Serializes lr (from genrec_build) into the builder's buffer; *data is valid until the next
 * genrec_pack. Returns 0, or -1 with err naming the size and the limit. */
int genrec_pack(genrec_builder *b, const Event__LogRequest *lr, const uint8_t **data, size_t *len,
                char *err, size_t errlen);

#endif
