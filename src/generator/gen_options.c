#include "generator/gen_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(gen_options, f)

/* The table's own defaults are the LogGenerator command's (profile "cli", spec §1.B). */
static const flag_def gen_flags[] = {
    {"users", "u", FLAG_INT, "25", OFF(users), "number of users to generate", 0},
    {"sessionsPerUser", "s", FLAG_INT, "1", OFF(sessions_per_user), "sessions per user", 0},
    {"viewsPerSession", "v", FLAG_INT, "100", OFF(views_per_session), "views per session", 0},
    {"autoViewsPerSession", "a", FLAG_INT, "100", OFF(auto_views_per_session),
     "auto views per session", 0},
    {"delayBetweenViewInSeconds", NULL, FLAG_INT, "1", OFF(delay_between_view_in_seconds),
     "simulated seconds between the views of a session", 0},
    {"delayBetweenAutoViewInSeconds", NULL, FLAG_INT, "1", OFF(delay_between_auto_view_in_seconds),
     "simulated seconds between auto views", 0},
    {"requestsPerViews", "r", FLAG_INT, "1", OFF(requests_per_views), "delivery requests per view",
     0},
    {"responseInsertionsPerRequest", "i", FLAG_INT, "20", OFF(response_insertions_per_request),
     "response insertions per request (at most the matching catalogue entries)", 0},
    {"insertionImpressedRate", NULL, FLAG_DOUBLE, "0.7", OFF(insertion_impressed_rate),
     "fraction of a response's insertions that are impressed (ceil or floor per request)", 0},
    {"impressionNavigateRate", NULL, FLAG_DOUBLE, "0.2", OFF(impression_navigate_rate),
     "navigates per impression", 0},
    {"navigateAddToCartRate", NULL, FLAG_DOUBLE, "0.2", OFF(navigate_add_to_cart_rate),
     "add-to-carts per navigate", 0},
    {"navigateCheckoutRate", NULL, FLAG_DOUBLE, "0.2", OFF(navigate_checkout_rate),
     "checkouts per navigate", 0},
    {"checkoutPurchaseRate", NULL, FLAG_DOUBLE, "0.3", OFF(checkout_purchase_rate),
     "purchases per checkout", 0},
    {"miniSdkRate", NULL, FLAG_DOUBLE, "0.0", OFF(mini_sdk_rate),
     "fraction of DeliveryLogs logged by the SDK (the rest by the Delivery API)", 0},
    {"shadowTrafficRate", NULL, FLAG_DOUBLE, "0.0", OFF(shadow_traffic_rate),
     "fraction of SDK DeliveryLogs that also get a shadow-traffic API DeliveryLog", 0},
    {"useInsertionMatrixFormat", "insertionMatrixFormat", FLAG_BOOL, "true",
     OFF(use_insertion_matrix_format), "write request insertions as insertion_matrix", 0},
    {"insertionFullFormat", NULL, FLAG_STRING, "", OFF(insertion_full_format),
     "write request insertions as Request.insertion: true, false, or empty for the opposite "
     "of --useInsertionMatrixFormat",
     0},
    {"requestContentType0", NULL, FLAG_STRING, "ITEM", OFF(request_content_type0),
     "content type of the first request page: ITEM, STORE or PROMOTION", 0},
    {"requestContentType1", NULL, FLAG_STRING, "", OFF(request_content_type1),
     "content type of the second request page after a navigate (empty: single level)", 0},
    {"requestLogImpressions0", NULL, FLAG_BOOL, "true", OFF(request_log_impressions0),
     "log impressions on the first page", 0},
    {"requestLogNavigates0", NULL, FLAG_BOOL, "true", OFF(request_log_navigates0),
     "log navigates on the first page", 0},
    {"requestLogImpressions1", NULL, FLAG_BOOL, "true", OFF(request_log_impressions1),
     "log impressions on the second page", 0},
    {"requestLogNavigates1", NULL, FLAG_BOOL, "true", OFF(request_log_navigates1),
     "log navigates on the second page", 0},
    {"setupForInferredIds", NULL, FLAG_BOOL, "true", OFF(setup_for_inferred_ids),
     "omit parent ids the pipeline must infer (Request.view_id, Impression.insertion_id, "
     "Action.impression_id)",
     0},
    {"writeUsers", NULL, FLAG_BOOL, "true", OFF(write_users), "write User records", 0},
    {"writeProductViews", NULL, FLAG_BOOL, "false", OFF(write_product_views),
     "write a product page View per navigate (single level only)", 0},
    {"missingViewRate", NULL, FLAG_DOUBLE, "0.0", OFF(missing_view_rate),
     "fraction of Views dropped", 0},
    {"missingAutoViewRate", NULL, FLAG_DOUBLE, "0.0", OFF(missing_auto_view_rate),
     "fraction of AutoViews dropped", 0},
    {"missingDeliveryLogRate", NULL, FLAG_DOUBLE, "0.0", OFF(missing_delivery_log_rate),
     "fraction of DeliveryLogs dropped (their impressions stay)", 0},
    {"missingImpressionRate", NULL, FLAG_DOUBLE, "0.0", OFF(missing_impression_rate),
     "fraction of impression batches dropped (their actions stay)", 0},
    {"redundantImpressionRate", NULL, FLAG_DOUBLE, "0.0", OFF(redundant_impression_rate),
     "fraction of DeliveryLogs whose impressions are logged repeatedly", 0},
    {"maxRedundantImpressionsPerDeliveryLog", NULL, FLAG_INT, "5",
     OFF(max_redundant_impressions_per_delivery_log),
     "copies of the impressions of a DeliveryLog chosen for redundant impressions", 0},
    {"emptyLogUserIdRate", NULL, FLAG_DOUBLE, "0.0", OFF(empty_log_user_id_rate),
     "fraction of users whose log_user_id is empty", 0},
    {"stores", NULL, FLAG_INT, "10", OFF(stores), "catalogue: stores", 0},
    {"itemsPerStore", NULL, FLAG_INT, "10", OFF(items_per_store), "catalogue: items per store", 0},
    {"promotionsPerItem", NULL, FLAG_INT, "2", OFF(promotions_per_item),
     "catalogue: promotions per item", 0},
    {"detail", NULL, FLAG_STRING, "FULL", OFF(detail),
     "FULL adds the marketplace decorators (search views, devices, request properties, "
     "session details); PARTIAL does not",
     0},
    {"ids", NULL, FLAG_STRING, "random", OFF(ids),
     "random: UUIDv4 ids from --seed; incrementing: the test presets' ids (userId1, "
     "22222222-2222-2222-0000-000000000001, ...)",
     0},
    {"seed", NULL, FLAG_INT, "0", OFF(seed), "seed of the random ids and of --uniformRandomDelay",
     0},
    {"startTime", NULL, FLAG_INT, "1601596151000", OFF(start_time),
     "simulated clock start, epoch milliseconds", 0},
    {"startEventApiTimestamp", NULL, FLAG_INT, "0", OFF(start_event_api_timestamp),
     "if non-zero, event_api_timestamp = this + simulated time elapsed since --startTime", 0},
    {"fixedClock", NULL, FLAG_BOOL, "false", OFF(fixed_clock),
     "now() stays at --startTime (the test presets); only the order follows the delays", 0},
    {"delayMultiplier", NULL, FLAG_DOUBLE, "1.0", OFF(delay_multiplier),
     "every delay d becomes (long)(d_ms * multiplier), the product in float32", 0},
    {"uniformRandomDelay", NULL, FLAG_BOOL, "false", OFF(uniform_random_delay),
     "multiply each delay by a uniform [0, 1) draw (seeded by --seed)", 0},
};

#define N_FLAGS (sizeof gen_flags / sizeof gen_flags[0])
_Static_assert(N_FLAGS <= GEN_OPTIONS_MAX_FLAGS, "raise GEN_OPTIONS_MAX_FLAGS");

typedef struct setting {
    const char *flag;
    const char *value;
} setting;

typedef struct profile {
    const char *name;
    const char *parent; /* applied first; NULL = the table's defaults */
    const setting *settings;
    size_t n;
} profile;

/* LogRequestIteratorOptions.builder() (§1.A). What the reference requires is left at -1. */
static const setting library_settings[] = {
    {"users", "-1"},
    {"sessionsPerUser", "-1"},
    {"viewsPerSession", "-1"},
    {"autoViewsPerSession", "-1"},
    {"delayBetweenViewInSeconds", "-1"},
    {"delayBetweenAutoViewInSeconds", "-1"},
    {"requestsPerViews", "-1"},
    {"responseInsertionsPerRequest", "-1"},
    {"insertionImpressedRate", "-1"},
    {"impressionNavigateRate", "-1"},
    {"navigateAddToCartRate", "-1"},
    {"navigateCheckoutRate", "-1"},
    {"checkoutPurchaseRate", "-1"},
    {"miniSdkRate", "0.5"},
    {"shadowTrafficRate", "0.5"},
    {"useInsertionMatrixFormat", "false"},
    {"insertionFullFormat", "true"},
    {"setupForInferredIds", "false"},
    {"detail", "PARTIAL"},
};

/* the local deployment's Job arguments (§1.C) on top of the command's defaults */
static const setting local_settings[] = {
    {"users", "10"},
    {"viewsPerSession", "10"},
    {"responseInsertionsPerRequest", "10"},
    {"setupForInferredIds", "true"},
    {"miniSdkRate", "0.2"},
    {"shadowTrafficRate", "1.0"},
};

/* LogRequestFactory.createLogRequestOptionsBuilder(1601596151000, PARTIAL, 1) (§1.D):
 * n = 1, so navigate rate max(1/n^5, 0.1) = 1.0 */
static const setting factory_settings[] = {
    {"users", "1"},
    {"sessionsPerUser", "1"},
    {"viewsPerSession", "1"},
    {"autoViewsPerSession", "1"},
    {"delayBetweenViewInSeconds", "1"},
    {"delayBetweenAutoViewInSeconds", "1"},
    {"requestsPerViews", "1"},
    {"responseInsertionsPerRequest", "1"},
    {"insertionImpressedRate", "1.0"},
    {"impressionNavigateRate", "1.0"},
    {"navigateCheckoutRate", "0.0"},
    {"navigateAddToCartRate", "0.0"},
    {"checkoutPurchaseRate", "0.0"},
    {"setupForInferredIds", "false"},
    {"shadowTrafficRate", "0.0"},
    {"ids", "incrementing"},
    {"fixedClock", "true"},
    {"startTime", "1601596151000"},
    {"stores", "20"},
    {"itemsPerStore", "20"},
    {"promotionsPerItem", "4"},
};

static const setting store_to_item_settings[] = {
    {"setupForInferredIds", "true"},    {"miniSdkRate", "0.0"},
    {"shadowTrafficRate", "0.0"},       {"impressionNavigateRate", "1.0"},
    {"navigateCheckoutRate", "1.0"},    {"navigateAddToCartRate", "1.0"},
    {"checkoutPurchaseRate", "1.0"},    {"requestContentType0", "STORE"},
    {"requestLogImpressions0", "true"}, {"requestLogNavigates0", "true"},
    {"requestContentType1", "ITEM"},    {"requestLogImpressions1", "false"},
    {"requestLogNavigates1", "false"},
};

#define CART_COMMON                                                                                \
    {"setupForInferredIds", "false"}, {"users", "1"}, {"sessionsPerUser", "1"},                    \
        {"viewsPerSession", "1"}, {"autoViewsPerSession", "1"}, {"requestsPerViews", "1"},         \
        {"responseInsertionsPerRequest", "4"}, {"miniSdkRate", "0.0"},                             \
        {"shadowTrafficRate", "0.0"}, {"impressionNavigateRate", "1.0"},                           \
        {"navigateCheckoutRate", "0.25"}, {"navigateAddToCartRate", "0.25"},                       \
        {"checkoutPurchaseRate", "1.0"}, {"requestContentType0", "STORE"},                         \
    {                                                                                              \
        "requestContentType1", "ITEM"                                                              \
    }

static const setting item_cart_settings[] = {
    CART_COMMON,
    {"requestLogImpressions0", "false"},
    {"requestLogNavigates0", "false"},
    {"requestLogImpressions1", "true"},
    {"requestLogNavigates1", "true"},
};

static const setting store_insertion_cart_settings[] = {
    CART_COMMON,
    {"requestLogImpressions0", "true"},
    {"requestLogNavigates0", "true"},
    {"requestLogImpressions1", "false"},
    {"requestLogNavigates1", "false"},
};

#define PROFILE(name, parent, s)                                                                   \
    {                                                                                              \
        name, parent, s, sizeof s / sizeof s[0]                                                    \
    }
static const profile profiles[] = {
    {"cli", NULL, NULL, 0},
    PROFILE("library", NULL, library_settings),
    PROFILE("local", NULL, local_settings),
    PROFILE("factory", "library", factory_settings),
    PROFILE("createStoreToItemBuilder", "factory", store_to_item_settings),
    PROFILE("createItemShoppingCartBuilder", "factory", item_cart_settings),
    PROFILE("createStoreInsertionItemShoppingCartBuilder", "factory",
            store_insertion_cart_settings),
};
#define N_PROFILES (sizeof profiles / sizeof profiles[0])

static const profile *find_profile(const char *name)
{
    for (size_t i = 0; i < N_PROFILES; i++)
        if (name && !strcmp(profiles[i].name, name)) return &profiles[i];
    return NULL;
}

int gen_options_profile_known(const char *name)
{
    return find_profile(name) != NULL;
}

const char *gen_options_profile_names(void)
{
    return "cli, local, library, factory, createStoreToItemBuilder, "
           "createItemShoppingCartBuilder, createStoreInsertionItemShoppingCartBuilder";
}

/* Applies p's chain (parents first) to the copied definitions. */
static int apply_profile(const profile *p, flag_def *defs, int depth)
{
    if (depth > 8) return -1; /* a cycle in the table above */
    if (p->parent && apply_profile(find_profile(p->parent), defs, depth + 1)) return -1;
    for (size_t i = 0; i < p->n; i++) {
        size_t j = 0;
        while (j < N_FLAGS && strcmp(defs[j].name, p->settings[i].flag))
            j++;
        if (j == N_FLAGS) return -1; /* a typo in a profile: caught by the tests */
        defs[j].def = p->settings[i].value;
    }
    return 0;
}

int gen_options_table_for(const char *name, gen_options *o, gen_options_table *st, char *err,
                          size_t errlen)
{
    const profile *p = find_profile(name);
    if (!p) {
        snprintf(err, errlen, "unknown generator profile '%s' (known: %s)", name ? name : "",
                 gen_options_profile_names());
        return -1;
    }
    memcpy(st->defs, gen_flags, sizeof gen_flags);
    if (apply_profile(p, st->defs, 0)) {
        snprintf(err, errlen, "generator profile '%s' names an unknown flag", name);
        return -1;
    }
    st->table.title = "generate logs";
    st->table.defs = st->defs;
    st->table.n = N_FLAGS;
    st->table.base = o;
    return 0;
}

int gen_options_init(gen_options *o, const char *profile, const char *const *overrides, char *err,
                     size_t errlen)
{
    gen_options_table st;
    if (gen_options_table_for(profile, o, &st, err, errlen)) return -1;
    int argc = 0;
    while (overrides && overrides[argc])
        argc++;
    char *pos[1];
    size_t npos = 0;
    bool help = false;
    /* flags_parse only reads argv; its prototype is the main() shape */
    if (flags_parse(&st.table, 1, argc, (char **)overrides, pos, 0, &npos, &help, err, errlen))
        return -1;
    return 0;
}

void gen_options_free(gen_options *o)
{
    gen_options_table st;
    char err[8];
    if (gen_options_table_for("cli", o, &st, err, sizeof err) == 0) flags_free(&st.table, 1);
}
