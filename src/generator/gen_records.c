#include "generator/gen_records.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery.pb-c.h"
#include "delivery/execution.pb-c.h"
#include "formats/pb_private.h"
#include "formats/pb_util.h"
#include "generator/java_random.h"
#include "google/protobuf/struct.pb-c.h"
#include "logproc/private.pb-c.h"

#define PLATFORM_ID 1
#define FEATURE_KEY 100 /* the fake numeric feature (spec §4.2) */
#define ARENA_CHUNK (64 * 1024)

/* The FULL decorators' values (spec §4.3). */
#define ANDROID_UA                                                                                 \
    "Mozilla/5.0 (Linux; Android 7.0; SM-G930V Build/NRD90M) AppleWebKit/537.36 (KHTML, like "     \
    "Gecko) Chrome/59.0.3071.125 Mobile Safari/537.36"
#define MAC_UA                                                                                     \
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "      \
    "Chrome/96.0.4664.110 Safari/537.36"
#define SESSION_START_MS 1601581751000ULL
#define SESSION_END_MS 1601524151000ULL /* earlier than the start: the reference's quirk */

/* Sub-messages that never change, built once and pointed to by every record. */
typedef struct constants {
    Common__ClientHintBrand brands[3];
    Common__ClientHintBrand *brand_ptrs[3];
    Common__ClientHints hints;
    Common__Browser android_browser;
    Common__Device view_device;
    Event__WebPageView view_page;
    Event__WebPageView auto_view_page;
    Common__Browser mac_browser;
    Common__Device request_device;
    Google__Protobuf__Value price_filter, size_filter, styles_filter, high_tops;
    Google__Protobuf__Value *styles_values[1];
    Google__Protobuf__ListValue styles_list;
    Google__Protobuf__Struct__FieldsEntry prop_entries[3];
    Google__Protobuf__Struct__FieldsEntry *prop_entry_ptrs[3];
    Google__Protobuf__Struct props_struct;
    Common__Properties request_props;
    Common__ClientInfo production, shadow;
    Event__MobileDiagnostics mobile;
    /* packed FeatureStage{features{numeric{100: 0.1f * v}}} for v = 0..10 */
    uint8_t *feature_stage[11];
    size_t feature_stage_len[11];
} constants;

struct genrec_builder {
    genrec_config cfg;
    const contentdb *db;
    size_t max_record_bytes;
    pb_arena *arena;
    ProtobufCAllocator *alloc;
    constants k;
    uint8_t *out;
    size_t out_cap;
};

/* ---- small helpers -------------------------------------------------------- */

static void *ar(genrec_builder *b, size_t n)
{
    return b->alloc->alloc(b->alloc->allocator_data, n);
}

/* Allocates one message in the arena and copies its INIT value into it. */
#define NEW(var, T, INIT)                                                                          \
    do {                                                                                           \
        static const T init_ = INIT;                                                               \
        if (!((var) = ar(b, sizeof(T)))) goto oom;                                                 \
        *(var) = init_;                                                                            \
    } while (0)

#define NEW_ARRAY(var, n)                                                                          \
    do {                                                                                           \
        if (!((var) = ar(b, ((n) ? (n) : 1) * sizeof *(var)))) goto oom;                           \
    } while (0)

static char *id_str(genrec_builder *b, gen_id id)
{
    char *s = ar(b, IDSUP_UUID_LEN + 1);
    if (s) idsup_format_uuid(id, s);
    return s;
}

static char *cat_str(genrec_builder *b, const char *a, const char *c)
{
    size_t la = strlen(a), lc = strlen(c);
    char *s = ar(b, la + lc + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, c, lc + 1);
    return s;
}

static Common__Timing *new_timing(genrec_builder *b, int64_t ms)
{
    static const Common__Timing init = COMMON__TIMING__INIT;
    Common__Timing *t = ar(b, sizeof *t);
    if (!t) return NULL;
    *t = init;
    /* proto3 would not write a zero */
    t->has_client_log_timestamp = t->has_event_api_timestamp = ms != 0;
    t->client_log_timestamp = t->event_api_timestamp = (uint64_t)ms;
    return t;
}

/* Writes v as a varint; returns its length (at most 10). */
static size_t varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* Packs m into arena bytes as unknown field `number` of *uf. protobuf-c keeps a
 * length-delimited unknown field with its length prefix, so the data starts with it. */
static int pack_unknown(genrec_builder *b, const ProtobufCMessage *m, uint32_t number,
                        ProtobufCMessageUnknownField *uf)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t pre[10];
    size_t np = varint(pre, n);
    uint8_t *buf = ar(b, np + n);
    if (!buf) return -1;
    memcpy(buf, pre, np);
    protobuf_c_message_pack(m, buf + np);
    uf->tag = number;
    uf->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    uf->len = np + n;
    uf->data = buf;
    return 0;
}

static const content_entry *entry(const genrec_builder *b, uint32_t i)
{
    return contentdb_entry(b->db, i);
}

/* ---- constants ------------------------------------------------------------ */

static void set_string_value(Google__Protobuf__Value *v, char *s)
{
    static const Google__Protobuf__Value init = GOOGLE__PROTOBUF__VALUE__INIT;
    *v = init;
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = s;
}

static void set_number_value(Google__Protobuf__Value *v, double d)
{
    static const Google__Protobuf__Value init = GOOGLE__PROTOBUF__VALUE__INIT;
    *v = init;
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    v->number_value = d;
}

static int build_constants(constants *k)
{
    static const char *brand_names[3] = {"Chromium", "Google Chrome", ";Not A Brand"};
    static const char *brand_versions[3] = {"88", "88", "99"};
    for (int i = 0; i < 3; i++) {
        common__client_hint_brand__init(&k->brands[i]);
        k->brands[i].brand = (char *)brand_names[i];
        k->brands[i].version = (char *)brand_versions[i];
        k->brand_ptrs[i] = &k->brands[i];
    }
    common__client_hints__init(&k->hints);
    k->hints.n_brand = 3;
    k->hints.brand = k->brand_ptrs; /* is_mobile false: proto3 does not write it */

    common__browser__init(&k->android_browser);
    k->android_browser.user_agent = ANDROID_UA;
    k->android_browser.client_hints = &k->hints;

    common__device__init(&k->view_device);
    k->view_device.has_device_type = 1;
    k->view_device.device_type = COMMON__DEVICE_TYPE__MOBILE;
    k->view_device.brand = "Pixel";
    k->view_device.identifier = "long_model_name";

    event__web_page_view__init(&k->view_page);
    k->view_page.url = "https://www.mymarket.com/search?q=shoes";
    k->view_page.referrer = "https://www.google.com/search?q=shoes";
    k->view_page.browser = &k->android_browser;
    k->auto_view_page = k->view_page;
    k->auto_view_page.url = "https://www.mymarket.com/search?shoes";

    common__browser__init(&k->mac_browser);
    k->mac_browser.user_agent = MAC_UA;
    common__device__init(&k->request_device);
    k->request_device.browser = &k->mac_browser;

    set_number_value(&k->price_filter, 100);
    set_number_value(&k->size_filter, 8);
    set_string_value(&k->high_tops, "High tops");
    k->styles_values[0] = &k->high_tops;
    google__protobuf__list_value__init(&k->styles_list);
    k->styles_list.n_values = 1;
    k->styles_list.values = k->styles_values;
    google__protobuf__value__init(&k->styles_filter);
    k->styles_filter.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    k->styles_filter.list_value = &k->styles_list;
    static const char *prop_keys[3] = {"maxPriceFilter", "maxSizeFilter", "stylesFilter"};
    Google__Protobuf__Value *prop_values[3] = {&k->price_filter, &k->size_filter,
                                               &k->styles_filter};
    for (int i = 0; i < 3; i++) {
        google__protobuf__struct__fields_entry__init(&k->prop_entries[i]);
        k->prop_entries[i].key = (char *)prop_keys[i];
        k->prop_entries[i].value = prop_values[i];
        k->prop_entry_ptrs[i] = &k->prop_entries[i];
    }
    google__protobuf__struct__init(&k->props_struct);
    k->props_struct.n_fields = 3;
    k->props_struct.fields = k->prop_entry_ptrs;
    common__properties__init(&k->request_props);
    k->request_props.struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT;
    k->request_props.struct_ = &k->props_struct;

    common__client_info__init(&k->production);
    k->production.has_client_type = k->production.has_traffic_type = 1;
    k->production.client_type = COMMON__CLIENT_INFO__CLIENT_TYPE__PLATFORM_SERVER;
    k->production.traffic_type = COMMON__CLIENT_INFO__TRAFFIC_TYPE__PRODUCTION;
    k->shadow = k->production;
    k->shadow.traffic_type = COMMON__CLIENT_INFO__TRAFFIC_TYPE__SHADOW;

    event__mobile_diagnostics__init(&k->mobile);
    k->mobile.device_identifier = "abcd-efgh";

    for (int v = 0; v <= 10; v++) {
        Logproc__Priv__Features__NumericEntry e;
        logproc__priv__features__numeric_entry__init(&e);
        /* Java writes both halves of a map entry, even a zero value */
        e.has_key = e.has_value = 1;
        e.key = FEATURE_KEY;
        volatile float f = 0.1f * (float)v; /* float32 product, as 0.1f * (long) in Java */
        e.value = f;
        Logproc__Priv__Features__NumericEntry *ep = &e;
        Logproc__Priv__Features features;
        logproc__priv__features__init(&features);
        features.n_numeric = 1;
        features.numeric = &ep;
        Logproc__Priv__FeatureStage fs;
        logproc__priv__feature_stage__init(&fs);
        fs.features = &features;
        size_t n = logproc__priv__feature_stage__get_packed_size(&fs);
        uint8_t pre[10];
        size_t np = varint(pre, n); /* the unknown field's data holds its length prefix */
        if (!(k->feature_stage[v] = malloc(np + n))) return -1;
        memcpy(k->feature_stage[v], pre, np);
        logproc__priv__feature_stage__pack(&fs, k->feature_stage[v] + np);
        k->feature_stage_len[v] = np + n;
    }
    return 0;
}

int genrec_builder_new(const genrec_config *cfg, const contentdb *db, size_t max_record_bytes,
                       genrec_builder **out, char *err, size_t errlen)
{
    *out = NULL;
    genrec_builder *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->cfg = *cfg;
    b->db = db;
    b->max_record_bytes = max_record_bytes;
    /* structs take several times the packed size; the cap only stops runaway records */
    size_t cap = max_record_bytes * 8 + 4 * ARENA_CHUNK;
    if (!(b->arena = pb_arena_new(ARENA_CHUNK, cap))) goto oom;
    b->alloc = pb_arena_allocator(b->arena);
    if (build_constants(&b->k)) goto oom;
    *out = b;
    return 0;
oom:
    genrec_builder_free(b);
    snprintf(err, errlen, "generator: out of memory creating the record builder");
    return -1;
}

void genrec_builder_free(genrec_builder *b)
{
    if (!b) return;
    for (int v = 0; v <= 10; v++)
        free(b->k.feature_stage[v]);
    pb_arena_free(b->arena);
    free(b->out);
    free(b);
}

/* ---- records ---------------------------------------------------------------- */

static Event__LogRequest *wrapper(genrec_builder *b, const genrec *r)
{
    Event__LogRequest *lr;
    NEW(lr, Event__LogRequest, EVENT__LOG_REQUEST__INIT);
    lr->has_platform_id = 1;
    lr->platform_id = PLATFORM_ID;
    lr->user_info = &r->user->info;
    if (!(lr->timing = new_timing(b, r->ea))) goto oom;
    return lr;
oom:
    return NULL;
}

static int build_user(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    Event__User *u;
    NEW(u, Event__User, EVENT__USER__INIT);
    u->user_info = &r->user->info;
    u->timing = lr->timing;
    NEW_ARRAY(lr->user, 1);
    lr->user[0] = u;
    lr->n_user = 1;
    return 0;
oom:
    return -1;
}

static int build_cohort(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    Event__CohortMembership *c;
    NEW(c, Event__CohortMembership, EVENT__COHORT_MEMBERSHIP__INIT);
    c->timing = lr->timing;
    if (!(c->membership_id = id_str(b, r->id))) goto oom;
    c->cohort_id = "PERSONALIZE_V1";
    c->has_arm = 1;
    /* Java: userId.hashCode() % 2 == 0, with the sign kept by % */
    c->arm =
        r->user->user_hash % 2 == 0 ? EVENT__COHORT_ARM__TREATMENT : EVENT__COHORT_ARM__CONTROL;
    NEW_ARRAY(lr->cohort_membership, 1);
    lr->cohort_membership[0] = c;
    lr->n_cohort_membership = 1;
    return 0;
oom:
    return -1;
}

/* Java Math.round(1000 x) / 1000: the closest long, ties toward positive infinity. */
static double round_thousandths(double x)
{
    double y = 1000.0 * x, f = floor(y);
    if (y - f >= 0.5) f += 1.0;
    return f / 1000.0;
}

static int build_session(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    char *sid = id_str(b, r->id);
    if (!sid) goto oom;
    Logproc__Priv__SessionProfile sp;
    logproc__priv__session_profile__init(&sp);
    sp.session_id = sid;
    sp.timing = lr->timing;
    Common__Location loc;
    common__location__init(&loc);
    Logproc__Priv__Session s;
    logproc__priv__session__init(&s);
    s.session_id = sid;
    s.user_info = &r->user->log_info;
    s.timing = lr->timing;
    if (b->cfg.full_detail) {
        int32_t h = jrandom_string_hash(sid, IDSUP_UUID_LEN);
        /* Java: 5 * hash is an int product (wraps), then divided as double */
        double q5 = (double)(int32_t)(5u * (uint32_t)h) / 2147483647.0;
        double q7 = (double)(int32_t)(7u * (uint32_t)h) / 2147483647.0;
        loc.latitude = round_thousandths(-90 + 180 * q5);
        loc.longitude = round_thousandths(-180 + 360 * q7);
        loc.has_latitude = loc.latitude != 0;
        loc.has_longitude = loc.longitude != 0;
        sp.location = &loc;
        s.has_start_epoch_millis = s.has_exclusive_end_epoch_millis = 1;
        s.start_epoch_millis = SESSION_START_MS;
        s.exclusive_end_epoch_millis = SESSION_END_MS;
    }
    ProtobufCMessageUnknownField *uf;
    NEW_ARRAY(uf, 2);
    if (pack_unknown(b, &sp.base, PB_PRIVATE_LOG_REQUEST_SESSION_PROFILE, &uf[0]) ||
        pack_unknown(b, &s.base, PB_PRIVATE_LOG_REQUEST_SESSION, &uf[1]))
        goto oom;
    lr->base.n_unknown_fields = 2;
    lr->base.unknown_fields = uf;
    return 0;
oom:
    return -1;
}

static int build_view(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    Event__View *v;
    NEW(v, Event__View, EVENT__VIEW__INIT);
    v->timing = lr->timing;
    if (!(v->view_id = id_str(b, r->id))) goto oom;
    if (r->has_parent && !(v->session_id = id_str(b, r->parent))) goto oom;
    if (r->content != GENREC_NO_CONTENT) v->content_id = (char *)entry(b, r->content)->id;
    if (b->cfg.full_detail) {
        v->name = "Search";
        v->has_use_case = 1;
        v->use_case = DELIVERY__USE_CASE__SEARCH;
        v->search_query = "shoes";
        v->has_view_type = 1;
        v->view_type = EVENT__VIEW__VIEW_TYPE__WEB_PAGE;
        v->device = &b->k.view_device;
        v->ui_type_case = EVENT__VIEW__UI_TYPE_WEB_PAGE_VIEW;
        v->web_page_view = &b->k.view_page;
    } else if (r->view_name == GENREC_VIEW_ALL) {
        v->name = cat_str(b, "All ", contentdb_type_name(b->cfg.level_type[0]));
    } else {
        v->name = cat_str(b, r->view_name == GENREC_VIEW_ITEMS_FOR ? "Items for " : "Page for ",
                          entry(b, r->content)->id);
    }
    if (!v->name) goto oom;
    NEW_ARRAY(lr->view, 1);
    lr->view[0] = v;
    lr->n_view = 1;
    return 0;
oom:
    return -1;
}

static int build_auto_view(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    Event__AutoView *v;
    NEW(v, Event__AutoView, EVENT__AUTO_VIEW__INIT);
    v->timing = lr->timing;
    if (!(v->auto_view_id = id_str(b, r->id))) goto oom;
    if (r->has_parent && !(v->session_id = id_str(b, r->parent))) goto oom;
    if (b->cfg.full_detail) {
        v->name = "Search";
        v->has_use_case = 1;
        v->use_case = DELIVERY__USE_CASE__SEARCH;
        v->ui_type_case = EVENT__AUTO_VIEW__UI_TYPE_WEB_PAGE_VIEW;
        v->web_page_view = &b->k.auto_view_page;
    }
    NEW_ARRAY(lr->auto_view, 1);
    lr->auto_view[0] = v;
    lr->n_auto_view = 1;
    return 0;
oom:
    return -1;
}

static int build_diagnostics(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    (void)r;
    Event__Diagnostics *d;
    NEW(d, Event__Diagnostics, EVENT__DIAGNOSTICS__INIT);
    d->timing = lr->timing;
    d->diagnostics_message_case = EVENT__DIAGNOSTICS__DIAGNOSTICS_MESSAGE_MOBILE_DIAGNOSTICS;
    d->mobile_diagnostics = &b->k.mobile;
    NEW_ARRAY(lr->diagnostics, 1);
    lr->diagnostics[0] = d;
    lr->n_diagnostics = 1;
    return 0;
oom:
    return -1;
}

/* Names of the request fields plus "contentId", in sorted order: a matrix header's index. */
enum { KEY_CONTENT_ID, KEY_ITEM_ID, KEY_PROMOTION_ID, KEY_STORE_ID, KEY_TYPE, N_KEYS };
static const char *const key_names[N_KEYS] = {"contentId", "itemId", "promotionId", "storeId",
                                              "type"};

/* Request fields of a content by key index (NULL where the content has no such field);
 * "contentId" only when with_content_id. */
static void request_fields(const content_entry *e, bool with_content_id, const char *values[N_KEYS])
{
    values[KEY_CONTENT_ID] = with_content_id ? e->id : NULL;
    values[KEY_ITEM_ID] = e->item_id;
    values[KEY_PROMOTION_ID] = e->promotion_id;
    values[KEY_STORE_ID] = e->store_id;
    values[KEY_TYPE] = contentdb_type_name((content_type)e->type);
}

/* Request.insertion[k] = {content_id, properties.struct{request fields}} (full format). */
static Delivery__Insertion *request_insertion(genrec_builder *b, const content_entry *e)
{
    const char *values[N_KEYS];
    request_fields(e, false, values);
    int n = 0;
    for (int h = 0; h < N_KEYS; h++)
        n += values[h] != NULL;
    Delivery__Insertion *ins;
    Common__Properties *props;
    Google__Protobuf__Struct *st;
    Google__Protobuf__Struct__FieldsEntry *ents, **eptrs;
    Google__Protobuf__Value *vals;
    NEW(ins, Delivery__Insertion, DELIVERY__INSERTION__INIT);
    NEW(props, Common__Properties, COMMON__PROPERTIES__INIT);
    NEW(st, Google__Protobuf__Struct, GOOGLE__PROTOBUF__STRUCT__INIT);
    NEW_ARRAY(ents, n);
    NEW_ARRAY(eptrs, n);
    NEW_ARRAY(vals, n);
    /* keys in sorted order, as the reference sorts them before building the Struct */
    int i = 0;
    for (int h = 0; h < N_KEYS; h++) {
        if (!values[h]) continue;
        google__protobuf__struct__fields_entry__init(&ents[i]);
        ents[i].key = (char *)key_names[h];
        set_string_value(&vals[i], (char *)values[h]);
        ents[i].value = &vals[i];
        eptrs[i] = &ents[i];
        i++;
    }
    st->n_fields = (size_t)n;
    st->fields = eptrs;
    props->struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT;
    props->struct_ = st;
    ins->content_id = (char *)e->id;
    ins->properties = props;
    return ins;
oom:
    return NULL;
}

/* insertion_matrix_headers (sorted union of the rows' keys) and insertion_matrix (one
 * ListValue row per content, an empty Value where a row lacks a header). */
static int insertion_matrix(genrec_builder *b, const genrec *r, Delivery__Request *req)
{
    const char *values[N_KEYS];
    unsigned present = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        request_fields(entry(b, r->items->v[i].content), true, values);
        for (int h = 0; h < N_KEYS; h++)
            if (values[h]) present |= 1u << h;
    }
    int headers[N_KEYS];
    size_t nh = 0;
    for (int h = 0; h < N_KEYS; h++)
        if (present & (1u << h)) headers[nh++] = h;
    NEW_ARRAY(req->insertion_matrix_headers, nh);
    for (size_t h = 0; h < nh; h++)
        req->insertion_matrix_headers[h] = (char *)key_names[headers[h]];
    req->n_insertion_matrix_headers = nh;

    /* Java calls getInsertionMatrixBuilder() even with no rows, so the field is always set */
    Google__Protobuf__ListValue *matrix;
    NEW(matrix, Google__Protobuf__ListValue, GOOGLE__PROTOBUF__LIST_VALUE__INIT);
    Google__Protobuf__Value *rows, **row_ptrs, *cells, **cell_ptrs;
    Google__Protobuf__ListValue *row_lists;
    NEW_ARRAY(rows, r->n);
    NEW_ARRAY(row_ptrs, r->n);
    NEW_ARRAY(row_lists, r->n);
    size_t ncells = (size_t)r->n * nh;
    NEW_ARRAY(cells, ncells);
    NEW_ARRAY(cell_ptrs, ncells);
    for (uint32_t i = 0; i < r->n; i++) {
        request_fields(entry(b, r->items->v[i].content), true, values);
        Google__Protobuf__Value *c = cells + (size_t)i * nh, **cp = cell_ptrs + (size_t)i * nh;
        for (size_t h = 0; h < nh; h++) {
            if (values[headers[h]])
                set_string_value(&c[h], (char *)values[headers[h]]);
            else
                google__protobuf__value__init(&c[h]);
            cp[h] = &c[h];
        }
        google__protobuf__list_value__init(&row_lists[i]);
        row_lists[i].n_values = nh;
        row_lists[i].values = cp;
        google__protobuf__value__init(&rows[i]);
        rows[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        rows[i].list_value = &row_lists[i];
        row_ptrs[i] = &rows[i];
    }
    matrix->n_values = r->n;
    matrix->values = row_ptrs;
    req->insertion_matrix = matrix;
    return 0;
oom:
    return -1;
}

/* Adds the execution insertions of an API DeliveryLog as unknown fields: each is `base[k]`
 * (the insertion of r's k-th content) with the fake feature of that content attached as
 * feature_stage: numeric[100] = 0.1f * (N mod 11), N the number at the end of the id. */
static int execution_insertions(genrec_builder *b, const genrec *r, Delivery__DeliveryExecution *ex,
                                Delivery__Insertion **base, size_t n)
{
    if (!n) return 0;
    ProtobufCMessageUnknownField *uf, *fs;
    NEW_ARRAY(uf, n);
    NEW_ARRAY(fs, n);
    for (size_t k = 0; k < n; k++) {
        Delivery__Insertion copy = *base[k];
        unsigned v = entry(b, r->items->v[k].content)->number % 11;
        fs[k].tag = PB_PRIVATE_INSERTION_FEATURE_STAGE;
        fs[k].wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        fs[k].len = b->k.feature_stage_len[v];
        fs[k].data = b->k.feature_stage[v];
        copy.base.n_unknown_fields = 1;
        copy.base.unknown_fields = &fs[k];
        if (pack_unknown(b, &copy.base, PB_PRIVATE_EXECUTION_INSERTION, &uf[k])) goto oom;
    }
    ex->base.n_unknown_fields = n;
    ex->base.unknown_fields = uf;
    return 0;
oom:
    return -1;
}

static int build_delivery_log(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    bool shadow = r->kind == GENREC_SHADOW_LOG;
    Delivery__DeliveryLog *dl;
    Delivery__Request *req;
    Delivery__Response *resp;
    Delivery__DeliveryExecution *ex;
    NEW(dl, Delivery__DeliveryLog, DELIVERY__DELIVERY_LOG__INIT);
    NEW(req, Delivery__Request, DELIVERY__REQUEST__INIT);
    NEW(resp, Delivery__Response, DELIVERY__RESPONSE__INIT);
    NEW(ex, Delivery__DeliveryExecution, DELIVERY__DELIVERY_EXECUTION__INIT);

    /* the Request and its insertions carry the clock's now, not the event-API time */
    Common__Timing *now_timing = new_timing(b, r->now);
    if (!now_timing) goto oom;
    char *request_id = id_str(b, r->id);
    /* a shadow copy keeps the original request's client_request_id and insertions */
    char *orig_request_id = shadow ? id_str(b, r->parent) : request_id;
    if (!request_id || !orig_request_id) goto oom;

    req->user_info = &r->user->info;
    req->timing = now_timing;
    req->client_info = shadow ? &b->k.shadow : &b->k.production;
    req->request_id = request_id;
    if (!b->cfg.inferred && !(req->view_id = id_str(b, r->view))) goto oom;
    if (!(req->client_request_id = cat_str(b, "client-", orig_request_id))) goto oom;
    if (b->cfg.matrix_format && insertion_matrix(b, r, req)) goto oom;
    if (b->cfg.full_format) {
        NEW_ARRAY(req->insertion, r->n);
        for (uint32_t k = 0; k < r->n; k++)
            if (!(req->insertion[k] = request_insertion(b, entry(b, r->items->v[k].content))))
                goto oom;
        req->n_insertion = r->n;
    }
    if (b->cfg.full_detail) {
        req->has_use_case = 1;
        req->use_case = DELIVERY__USE_CASE__SEARCH;
        req->search_query = "prom dresses";
        req->device = &b->k.request_device;
        req->properties = &b->k.request_props;
    }

    Delivery__Insertion *ins_structs;
    NEW_ARRAY(resp->insertion, r->n);
    NEW_ARRAY(ins_structs, r->n);
    for (uint32_t k = 0; k < r->n; k++) {
        Delivery__Insertion *ins = &ins_structs[k];
        delivery__insertion__init(ins);
        ins->has_platform_id = 1;
        ins->platform_id = PLATFORM_ID;
        ins->timing = now_timing;
        if (!(ins->insertion_id = id_str(b, r->items->v[k].insertion))) goto oom;
        ins->request_id = orig_request_id;
        ins->content_id = (char *)entry(b, r->items->v[k].content)->id;
        ins->has_position = 1; /* explicit presence: position 0 is written */
        ins->position = k;
        resp->insertion[k] = ins;
    }
    resp->n_insertion = r->n;

    ex->has_execution_server = 1;
    if (shadow) {
        ex->execution_server = DELIVERY__EXECUTION_SERVER__API;
        /* shadow traffic logs the request insertions (none in matrix-only format) */
        if (execution_insertions(b, r, ex, req->insertion, req->n_insertion)) goto oom;
    } else if (r->sdk) {
        ex->execution_server = DELIVERY__EXECUTION_SERVER__SDK;
    } else {
        ex->execution_server = DELIVERY__EXECUTION_SERVER__API;
        if (execution_insertions(b, r, ex, resp->insertion, resp->n_insertion)) goto oom;
    }
    dl->request = req;
    dl->response = resp;
    dl->execution = ex;
    NEW_ARRAY(lr->delivery_log, 1);
    lr->delivery_log[0] = dl;
    lr->n_delivery_log = 1;
    return 0;
oom:
    return -1;
}

static int build_impressions(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    /* a surface that does not log impressions still sends the (empty) LogRequest */
    if (!b->cfg.log_impressions[r->level] || !r->n) return 0;
    Event__Impression *imps, **ptrs;
    NEW_ARRAY(imps, r->n);
    NEW_ARRAY(ptrs, r->n);
    for (uint32_t k = 0; k < r->n; k++) {
        const genrec_item *it = &r->items->v[k];
        Event__Impression *im = &imps[k];
        event__impression__init(im);
        im->timing = lr->timing;
        if (!(im->impression_id = id_str(b, it->impression))) goto oom;
        if (!b->cfg.inferred && !(im->insertion_id = id_str(b, it->insertion))) goto oom;
        im->content_id = (char *)entry(b, it->content)->id;
        ptrs[k] = im;
    }
    lr->impression = ptrs;
    lr->n_impression = r->n;
    return 0;
oom:
    return -1;
}

/* The user's cart as it was when the checkout or purchase was made: the first cart_len
 * add-to-carts. */
static Event__Cart *cart_snapshot(genrec_builder *b, const genrec *r)
{
    const genrec_cart *c = r->user->cart;
    Event__Cart *cart;
    Event__CartContent *cc, **ptrs;
    Common__Money *money;
    NEW(cart, Event__Cart, EVENT__CART__INIT);
    NEW_ARRAY(cc, r->cart_len);
    NEW_ARRAY(ptrs, r->cart_len);
    NEW_ARRAY(money, r->cart_len);
    for (uint32_t i = 0; i < r->cart_len; i++) {
        const content_entry *e = entry(b, c->content[i]);
        event__cart_content__init(&cc[i]);
        cc[i].content_id = (char *)e->id;
        cc[i].has_quantity = 1;
        cc[i].quantity = 1 + jrandom_mod_abs(e->hash, 4);
        common__money__init(&money[i]);
        money[i].has_currency_code = 1;
        money[i].currency_code = COMMON__CURRENCY_CODE__USD;
        money[i].has_amount_micros = 1;
        money[i].amount_micros = 1000000LL * (1 + jrandom_mod_abs(e->hash, 5));
        cc[i].price_per_unit = &money[i];
        ptrs[i] = &cc[i];
    }
    cart->n_contents = r->cart_len;
    cart->contents = ptrs;
    return cart;
oom:
    return NULL;
}

static int build_actions(genrec_builder *b, const genrec *r, Event__LogRequest *lr)
{
    if (!r->n) return 0;
    Event__Action *acts, **ptrs;
    Event__Cart *cart = NULL;
    NEW_ARRAY(acts, r->n);
    NEW_ARRAY(ptrs, r->n);
    for (uint32_t k = 0; k < r->n; k++) {
        const genrec_item *it = &r->items->v[k];
        Event__Action *a = &acts[k];
        event__action__init(a);
        a->timing = lr->timing;
        if (!(a->action_id = id_str(b, it->action))) goto oom;
        a->has_action_type = 1;
        a->action_type = (Event__ActionType)it->action_type;
        a->content_id = (char *)entry(b, it->content)->id;
        /* ADD_TO_CART never names its impression (always inferred) */
        if (!b->cfg.inferred && it->action_type != EVENT__ACTION_TYPE__ADD_TO_CART &&
            !(a->impression_id = id_str(b, it->impression)))
            goto oom;
        if ((it->action_type == EVENT__ACTION_TYPE__CHECKOUT ||
             it->action_type == EVENT__ACTION_TYPE__PURCHASE) &&
            r->cart_len) {
            if (!cart && !(cart = cart_snapshot(b, r))) goto oom;
            a->cart = cart;
        }
        ptrs[k] = a;
    }
    lr->action = ptrs;
    lr->n_action = r->n;
    return 0;
oom:
    return -1;
}

int genrec_build(genrec_builder *b, const genrec *r, Event__LogRequest **out, char *err,
                 size_t errlen)
{
    pb_arena_reset(b->arena, 4 * ARENA_CHUNK);
    Event__LogRequest *lr = wrapper(b, r);
    if (!lr) goto oom;
    int rc;
    switch ((genrec_kind)r->kind) {
    case GENREC_USER:
        rc = build_user(b, r, lr);
        break;
    case GENREC_COHORT:
        rc = build_cohort(b, r, lr);
        break;
    case GENREC_SESSION:
        rc = build_session(b, r, lr);
        break;
    case GENREC_VIEW:
        rc = build_view(b, r, lr);
        break;
    case GENREC_AUTO_VIEW:
        rc = build_auto_view(b, r, lr);
        break;
    case GENREC_DELIVERY_LOG:
    case GENREC_SHADOW_LOG:
        rc = build_delivery_log(b, r, lr);
        break;
    case GENREC_DIAGNOSTICS:
        rc = build_diagnostics(b, r, lr);
        break;
    case GENREC_IMPRESSIONS:
        rc = build_impressions(b, r, lr);
        break;
    case GENREC_ACTIONS:
        rc = build_actions(b, r, lr);
        break;
    default:
        snprintf(err, errlen, "generator: unknown record kind %d", r->kind);
        return -1;
    }
    if (rc) goto oom;
    *out = lr;
    return 0;
oom:
    snprintf(err, errlen,
             "generator: a LogRequest of log user '%s' needs more than %zu bytes of memory "
             "(the arena limit derived from the record limit %zu)",
             r->user->log_user_id, pb_arena_held(b->arena), b->max_record_bytes);
    return -1;
}

int genrec_pack(genrec_builder *b, const Event__LogRequest *lr, const uint8_t **data, size_t *len,
                char *err, size_t errlen)
{
    size_t n = event__log_request__get_packed_size(lr);
    if (n > b->max_record_bytes) {
        snprintf(err, errlen,
                 "generator: a LogRequest of log user '%s' packs to %zu bytes, over the record "
                 "limit of %zu",
                 lr->user_info && lr->user_info->log_user_id ? lr->user_info->log_user_id : "", n,
                 b->max_record_bytes);
        return -1;
    }
    if (n > b->out_cap) {
        size_t cap = b->out_cap ? b->out_cap : 4096;
        while (cap < n)
            cap *= 2;
        uint8_t *p = realloc(b->out, cap);
        if (!p) {
            snprintf(err, errlen, "generator: out of memory for a %zu-byte record", n);
            return -1;
        }
        b->out = p;
        b->out_cap = cap;
    }
    event__log_request__pack(lr, b->out);
    *data = b->out;
    *len = n;
    return 0;
}
