/* Private to src/runtime: the joints between the graph (which owns operators) and the modules
 * that hang state on them. Not for jobs. */
#ifndef LOGPROC_GRAPH_PRIVATE_H
#define LOGPROC_GRAPH_PRIVATE_H

#include <stdint.h>

#include "runtime/operator.h"
#include "runtime/state.h"

/* rt_htab_charge_fn bound to an operator (ctx is the rt_op): charges or releases without
 * recording a failure, so a refused optional allocation (a bucket array) stays silent. */
int rt_op_charge_cb_(void *op, int64_t delta);
/* Records "operator <uid>: <what>: memory limit ... reached ..." on op; returns -1. */
int rt_op_fail_mem_(rt_op *op, const char *what, int64_t want);
/* Hands a new table to op (it frees it with rt_kv_free_). Fails (-1, recorded) if op already has
 * a table of that name. */
int rt_op_attach_kv_(rt_op *op, rt_kv *kv);
void rt_kv_free_(rt_kv *kv);

#endif
