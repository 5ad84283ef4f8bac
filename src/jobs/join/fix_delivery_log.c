#include "jobs/join/fix_delivery_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "jobs/common_ops.h"

#define ARENA_CHUNK (64 << 10)
#define ARENA_CAP ((size_t)256 << 20)

static void *acopy(ProtobufCAllocator *a, const void *src, size_t size)
{
    void *p = a->alloc(a->allocator_data, size);
    if (p) memcpy(p, src, size);
    return p;
}

static int empty(const char *s)
{
    return !s || !*s;
}

static char *synth_id(const Delivery__Request *rq, const Delivery__Insertion *ins,
                      ProtobufCAllocator *a)
{
    const char *req = rq && rq->request_id ? rq->request_id : "";
    const char *cid = ins->content_id ? ins->content_id : "";
    /* Java concatenates the uint64 position as a (signed) long */
    int64_t pos = ins->has_position ? (int64_t)ins->position : 0;
    size_t n = strlen(req) + strlen(cid) + 24;
    char *s = a->alloc(a->allocator_data, n);
    if (s) snprintf(s, n, "%s-%" PRId64 "-%s", req, pos, cid);
    return s;
}

int fix_delivery_log(const Delivery__DeliveryLog *in, ProtobufCAllocator *a,
                     Delivery__DeliveryLog **out)
{
    *out = (Delivery__DeliveryLog *)in;
    const Delivery__Response *resp = in->response;
    size_t n = resp ? resp->n_insertion : 0;
    int missing = 0;
    for (size_t i = 0; i < n; i++)
        missing |= resp->insertion[i] && empty(resp->insertion[i]->insertion_id);
    int v1_sdk = in->execution && in->execution->has_execution_server &&
                 in->execution->execution_server == DELIVERY__EXECUTION_SERVER__SDK &&
                 (!in->request || in->request->n_insertion == 0) && n > 0;
    if (!missing && !v1_sdk) return 0;

    Delivery__DeliveryLog *dl = acopy(a, in, sizeof *dl);
    Delivery__Response *r = acopy(a, resp, sizeof *r);
    Delivery__Insertion **ins = a->alloc(a->allocator_data, n * sizeof *ins);
    if (!dl || !r || !ins) return -1;
    /* step 1: the response insertions with their ids filled (copies where changed) */
    for (size_t i = 0; i < n; i++) {
        ins[i] = resp->insertion[i];
        if (ins[i] && empty(ins[i]->insertion_id)) {
            Delivery__Insertion *c = acopy(a, ins[i], sizeof *c);
            if (!c || !(c->insertion_id = synth_id(in->request, ins[i], a))) return -1;
            ins[i] = c;
        }
    }
    r->insertion = ins;
    dl->response = r;
    if (v1_sdk) {
        /* step 2: the request insertions are the response's without position; the response
         * keeps only the ids and the position */
        Delivery__Insertion **req_ins = a->alloc(a->allocator_data, n * sizeof *req_ins);
        Delivery__Insertion **slim = a->alloc(a->allocator_data, n * sizeof *slim);
        Delivery__Request init = DELIVERY__REQUEST__INIT;
        Delivery__Request *rq = acopy(a, in->request ? in->request : &init, sizeof *rq);
        if (!req_ins || !slim || !rq) return -1;
        Delivery__Insertion empty_ins = DELIVERY__INSERTION__INIT;
        for (size_t i = 0; i < n; i++) {
            const Delivery__Insertion *src = ins[i] ? ins[i] : &empty_ins;
            Delivery__Insertion *q = acopy(a, src, sizeof *q);
            Delivery__Insertion *s = acopy(a, &empty_ins, sizeof *s);
            if (!q || !s) return -1;
            q->has_position = 0;
            q->position = 0;
            req_ins[i] = q;
            s->insertion_id = src->insertion_id;
            s->content_id = src->content_id;
            s->has_position = 1;
            s->position = src->has_position ? src->position : 0;
            slim[i] = s;
        }
        rq->insertion = req_ins;
        rq->n_insertion = n;
        r->insertion = slim;
        dl->request = rq;
    }
    *out = dl;
    return 0;
}

/* ---- operator ---- */

typedef struct fix_op {
    pb_arena *arena;
} fix_op;

static int fix_process(rt_op *op, int input, const rt_record *rec)
{
    fix_op *f = rt_op_self(op);
    if (rec->type != REC_DELIVERY_LOG)
        return rt_op_fail(op, "record type %d is not a delivery log", rec->type);
    Delivery__DeliveryLog *dl;
    int rc;
    if (fix_delivery_log(rec->data, pb_arena_allocator(f->arena), &dl)) {
        rc = rt_op_fail(op, "out of memory fixing a delivery log (arena cap %zu bytes)", ARENA_CAP);
    } else {
        rt_record r = *rec;
        r.data = dl;
        rc = rt_emit(op, 0, &r);
    }
    pb_arena_reset(f->arena, ARENA_CHUNK);
    return rc;
}

static void fix_close(rt_op *op)
{
    fix_op *f = rt_op_self(op);
    pb_arena_free(f->arena);
    free(f);
}

static const rt_op_vtbl fix_vtbl = {.process = fix_process, .close = fix_close};

int fix_delivery_log_op_add(rt_graph *g, const char *uid, rt_op **out)
{
    fix_op *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (!(f->arena = pb_arena_new(ARENA_CHUNK, ARENA_CAP)) ||
        rt_graph_add_op(g, uid, "fix-delivery-log", &fix_vtbl, f, 1, 1, out)) {
        pb_arena_free(f->arena);
        free(f);
        return -1;
    }
    return 0;
}
