#include "jobs/join/joined_filters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pb_private.h"
#include "formats/pb_util.h"
#include "jobs/join/join_records.h"

/* ---- accessors ---- */

/* Decodes one UTF-8 sequence at s (validated input; a bad byte decodes as itself). */
static const char *utf8_next(const char *s, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    if (p[0] < 0x80) {
        *cp = p[0];
        return s + 1;
    }
    int n = p[0] >= 0xf0 ? 3 : p[0] >= 0xe0 ? 2 : p[0] >= 0xc0 ? 1 : 0;
    uint32_t c = n == 3 ? p[0] & 0x07 : n == 2 ? p[0] & 0x0f : p[0] & 0x1f;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *cp = p[0];
            return s + 1;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }
    *cp = n ? c : p[0];
    return s + n + 1;
}

static bool java_whitespace(uint32_t c)
{
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return true;
    if (c < 0x1680) return false;
    return c == 0x1680 || (c >= 0x2000 && c <= 0x200a && c != 0x2007) || c == 0x2028 ||
           c == 0x2029 || c == 0x205f || c == 0x3000;
}

bool joined_is_blank(const char *s)
{
    if (!s) return true;
    while (*s) {
        uint32_t c;
        s = utf8_next(s, &c);
        if (!java_whitespace(c)) return false;
    }
    return true;
}

static const char *ui_luid(const Common__UserInfo *ui)
{
    return ui ? ui->log_user_id : NULL;
}

uint64_t joined_event_platform_id(const Event__JoinedEvent *e)
{
    if (e->ids && e->ids->platform_id) return e->ids->platform_id;
    if (e->user && e->user->platform_id) return e->user->platform_id;
    if (e->view && e->view->platform_id) return e->view->platform_id;
    if (e->request && e->request->platform_id) return e->request->platform_id;
    if (e->response_insertion && e->response_insertion->platform_id)
        return e->response_insertion->platform_id;
    if (e->impression && e->impression->platform_id) return e->impression->platform_id;
    if (e->action && e->action->platform_id) return e->action->platform_id;
    return 0;
}

const char *joined_event_log_user_id(const Event__JoinedEvent *e)
{
    const char *c[7] = {
        e->ids ? e->ids->log_user_id : NULL,
        e->user ? ui_luid(e->user->user_info) : NULL,
        e->view ? ui_luid(e->view->user_info) : NULL,
        e->request ? ui_luid(e->request->user_info) : NULL,
        e->response_insertion ? ui_luid(e->response_insertion->user_info) : NULL,
        e->impression ? ui_luid(e->impression->user_info) : NULL,
        e->action ? ui_luid(e->action->user_info) : NULL,
    };
    for (int i = 0; i < 7; i++)
        if (!joined_is_blank(c[i])) return c[i];
    return "";
}

const char *joined_event_insertion_id(const Event__JoinedEvent *e)
{
    const char *c[4] = {
        e->ids ? e->ids->insertion_id : NULL,
        e->response_insertion ? e->response_insertion->insertion_id : NULL,
        e->impression ? e->impression->insertion_id : NULL,
        e->action ? e->action->insertion_id : NULL,
    };
    for (int i = 0; i < 4; i++)
        if (!joined_is_blank(c[i])) return c[i];
    return "";
}

static bool ignore(const Common__UserInfo *ui)
{
    return ui && ui->ignore_usage;
}

bool joined_event_ignore_usage(const Event__JoinedEvent *e)
{
    return (e->action && ignore(e->action->user_info)) ||
           (e->impression && ignore(e->impression->user_info)) ||
           (e->request && ignore(e->request->user_info)) ||
           (e->view && ignore(e->view->user_info)) ||
           (e->session && ignore(e->session->user_info)) || (e->user && ignore(e->user->user_info));
}

bool joined_fri_ignore_usage(const Event__FlatResponseInsertion *f)
{
    for (size_t i = 0; i < f->n_action; i++)
        if (f->action[i] && ignore(f->action[i]->user_info)) return true;
    for (size_t i = 0; i < f->n_impression; i++)
        if (f->impression[i] && ignore(f->impression[i]->user_info)) return true;
    return (f->request && ignore(f->request->user_info)) ||
           (f->view && ignore(f->view->user_info)) ||
           (f->session && ignore(f->session->user_info)) || (f->user && ignore(f->user->user_info));
}

int joined_non_buyer(const Delivery__Insertion *ins, const int64_t *hashes, size_t n,
                     ProtobufCAllocator *alloc, bool *out)
{
    *out = false;
    if (!ins || !n) return 0;
    Logproc__Priv__FeatureStage *fs = NULL;
    if (pb_private_get_feature_stage(ins, alloc, &fs)) return -1;
    if (!fs || !fs->features) return 0;
    const Logproc__Priv__Features *f = fs->features;
    for (size_t h = 0; h < n && !*out; h++) {
        /* a map keeps the last value of a repeated key */
        for (size_t i = f->n_sparse_id; i-- > 0;) {
            const Logproc__Priv__Features__SparseIdEntry *e = f->sparse_id[i];
            if (e->key == (uint64_t)hashes[h]) {
                *out = e->value == 1;
                break;
            }
        }
    }
    return 0;
}

/* ---- the operator ---- */

#define JF_ARENA_CAP ((size_t)16 << 20)

typedef struct jf_op {
    joined_filter_kind kind;
    int64_t *hashes;
    size_t n_hashes;
    pb_arena *arena;
} jf_op;

static int jf_process(rt_op *op, int input, const rt_record *rec)
{
    jf_op *j = rt_op_self(op);
    bool fri = j->kind == JOINED_FILTER_FLAT_RESPONSE_INSERTION;
    int want = fri ? REC_FLAT_RESPONSE_INSERTION : REC_JOINED_EVENT;
    if (rec->type != want)
        return rt_op_fail(op, "input %d: unexpected record type %d (want %d)", input, rec->type,
                          want);
    const Delivery__Insertion *exec;
    bool ignored;
    if (fri) {
        const Event__FlatResponseInsertion *f = rec->data;
        ignored = joined_fri_ignore_usage(f);
        exec = f->api_execution_insertion;
    } else {
        const Event__JoinedEvent *e = rec->data;
        ignored = joined_event_ignore_usage(e);
        exec = e->api_execution_insertion;
    }
    if (ignored) return rt_emit(op, 1, rec);
    bool non_buyer = false;
    if (j->n_hashes) {
        int rc = joined_non_buyer(exec, j->hashes, j->n_hashes, pb_arena_allocator(j->arena),
                                  &non_buyer);
        pb_arena_reset(j->arena, 1 << 20);
        if (rc) return rt_op_fail(op, "out of memory decoding feature_stage");
    }
    return rt_emit(op, non_buyer ? 2 : 0, rec);
}

static void jf_close(rt_op *op)
{
    jf_op *j = rt_op_self(op);
    pb_arena_free(j->arena);
    free(j->hashes);
    free(j);
}

static const rt_op_vtbl jf_vtbl = {.process = jf_process, .close = jf_close};

int joined_filter_op_add(rt_graph *g, const char *uid, const joined_filter_config *cfg, rt_op **out)
{
    static const char *const names[3] = {"joined_impression", "joined_action",
                                         "flat_response_insertion"};
    if (!cfg || cfg->kind < JOINED_FILTER_IMPRESSION ||
        cfg->kind > JOINED_FILTER_FLAT_RESPONSE_INSERTION)
        return -1;
    jf_op *j = calloc(1, sizeof *j);
    if (!j) return -1;
    j->kind = cfg->kind;
    if (cfg->n_non_buyer_hashes) {
        j->hashes = malloc(cfg->n_non_buyer_hashes * sizeof *j->hashes);
        if (!j->hashes) {
            free(j);
            return -1;
        }
        memcpy(j->hashes, cfg->non_buyer_hashes, cfg->n_non_buyer_hashes * sizeof *j->hashes);
        j->n_hashes = cfg->n_non_buyer_hashes;
    }
    j->arena = pb_arena_new(16 << 10, JF_ARENA_CAP);
    if (!j->arena || rt_graph_add_op(g, uid, "filter-joined", &jf_vtbl, j, 1, 3, out)) {
        pb_arena_free(j->arena);
        free(j->hashes);
        free(j);
        return -1;
    }
    char name[64];
    snprintf(name, sizeof name, "dropped_ignore_usage_%s", names[cfg->kind]);
    if (rt_op_set_port_name(*out, 1, name)) return -1;
    snprintf(name, sizeof name, "dropped_non_buyer_%s", names[cfg->kind]);
    return rt_op_set_port_name(*out, 2, name);
}
