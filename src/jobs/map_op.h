/* A stateless operator around one function: maps, filters, flat-maps and splits records.
 * fn receives each record and emits zero or more records on the operator's ports. Whatever fn
 * allocates from map_op_allocator lives until the record's push returns (a per-record arena), so
 * records fn emits may point into it. */
#ifndef LOGPROC_MAP_OP_H
#define LOGPROC_MAP_OP_H

#include <protobuf-c/protobuf-c.h>

#include "runtime/graph.h"

typedef int (*map_fn)(rt_op *op, const rt_record *rec, void *ctx);

/* Adds the operator with one input and nout ports. ctx is borrowed. Returns 0 or -1. */
int map_op_add(rt_graph *g, const char *uid, int nout, map_fn fn, void *ctx, rt_op **out);

/* The per-record arena (created on first use; capped at 64 MiB: an allocation past that fails). */
ProtobufCAllocator *map_op_allocator(rt_op *op);

/* Adds n to the counter `name` of this operator (registered on first use). */
void map_op_count(rt_op *op, const char *name, uint64_t n);

#endif
