/* Options of the fake LogRequest generator (spec/fake-data.md §1), declared once in a flag
 * table that drives parsing, defaults and --help, and a set of named profiles.
 *
 * A profile is a set of defaults; explicit flags override it:
 *   library                       LogRequestIteratorOptions.builder() defaults (§1.A); the
 *                                 options the reference requires are left unset (-1) and
 *                                 gen_logs_new names the first one missing
 *   cli                           the LogGenerator command's defaults (§1.B), the default profile
 *   local                         the local deployment's Job (§1.C): 700 impressions
 *   createStoreToItemBuilder, createItemShoppingCartBuilder,
 *   createStoreInsertionItemShoppingCartBuilder
 *                                 the deterministic test presets (§1.D): incrementing ids,
 *                                 a fixed clock, PARTIAL detail
 * Field names are the flags' names in snake_case. Rates are doubles here and become float32
 * inside the generator, as the reference holds them. */
#ifndef LOGPROC_GEN_OPTIONS_H
#define LOGPROC_GEN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/flags.h"

typedef struct gen_options {
    /* shape */
    int64_t users;
    int64_t sessions_per_user;
    int64_t views_per_session;
    int64_t auto_views_per_session;
    int64_t delay_between_view_in_seconds;
    int64_t delay_between_auto_view_in_seconds;
    int64_t requests_per_views;
    int64_t response_insertions_per_request;
    /* funnel rates */
    double insertion_impressed_rate;
    double impression_navigate_rate;
    double navigate_add_to_cart_rate;
    double navigate_checkout_rate;
    double checkout_purchase_rate;
    /* delivery */
    double mini_sdk_rate;
    double shadow_traffic_rate;
    bool use_insertion_matrix_format;
    char *insertion_full_format; /* "true", "false", or "" = the opposite of the matrix flag */
    /* surfaces: content type names; request_content_type1 "" = single level */
    char *request_content_type0;
    char *request_content_type1;
    bool request_log_impressions0, request_log_navigates0;
    bool request_log_impressions1, request_log_navigates1;
    /* references and optional records */
    bool setup_for_inferred_ids;
    bool write_users;
    bool write_product_views;
    /* loss and duplication */
    double missing_view_rate;
    double missing_auto_view_rate;
    double missing_delivery_log_rate;
    double missing_impression_rate;
    double redundant_impression_rate;
    int64_t max_redundant_impressions_per_delivery_log;
    double empty_log_user_id_rate;
    /* catalogue */
    int64_t stores;
    int64_t items_per_store;
    int64_t promotions_per_item;
    /* detail, ids and time */
    char *detail; /* "FULL" (marketplace decorators, §4.3) or "PARTIAL" */
    char *ids;    /* "random" (seeded UUIDv4) or "incrementing" (the presets') */
    int64_t seed;
    int64_t start_time;                /* ms: the simulated clock's start */
    int64_t start_event_api_timestamp; /* ms; 0 = event_api_timestamp follows the clock */
    bool fixed_clock;                  /* now() stays at start_time (the presets) */
    double delay_multiplier;
    bool uniform_random_delay;
} gen_options;

/* Storage for one profile's copy of the flag table (its defaults rewritten). */
#define GEN_OPTIONS_MAX_FLAGS 64
typedef struct gen_options_table {
    flag_def defs[GEN_OPTIONS_MAX_FLAGS];
    flag_table table;
} gen_options_table;

/* 1 if name is a known profile or preset. */
int gen_options_profile_known(const char *name);
/* Comma-separated list of the profile names, for help and errors (static storage). */
const char *gen_options_profile_names(void);

/* Binds a flag table for profile `name` to o, in st (which must outlive the table's use):
 * the generator's flags with that profile's defaults. o must be zeroed or hold values from a
 * previous gen_options_init (strings are freed as they are replaced). Use it to parse the
 * command line together with other tables. Returns 0, or -1 with err naming the profile. */
int gen_options_table_for(const char *profile, gen_options *o, gen_options_table *st, char *err,
                          size_t errlen);

/* Fills o with profile `name`'s defaults, then applies overrides, a NULL-terminated list of
 * "--flag=value" strings (NULL for none). o must be zeroed on the first call. Returns 0, or -1
 * with err naming the profile or the flag. Free with gen_options_free. */
int gen_options_init(gen_options *o, const char *profile, const char *const *overrides, char *err,
                     size_t errlen);

/* Frees the strings o owns (not o itself). */
void gen_options_free(gen_options *o);

#endif
