/* FixDeliveryLog (spec/flat-output.md §2.6): missing response insertion ids, and the "v1
 * optimized SDK" form whose request insertions only exist in the response. */
#ifndef LOGPROC_JOIN_FIX_DELIVERY_LOG_H
#define LOGPROC_JOIN_FIX_DELIVERY_LOG_H

#include <protobuf-c/protobuf-c.h>

#include "delivery/execution.pb-c.h"
#include "runtime/graph.h"

/* Returns through *out the fixed DeliveryLog:
 *  1. every response insertion with an empty insertion_id gets
 *     "<request.request_id>-<position>-<content_id>" (position 0 when unset; printed as Java
 *     prints the long, so signed);
 *  2. when execution.execution_server is SDK, request.insertion is empty and
 *     response.insertion is not: request.insertion becomes a copy of every response insertion
 *     (ids as filled by 1) without position, and response.insertion is rebuilt with only
 *     {insertion_id, content_id, position}, position always present (0 when it was unset).
 * in is not modified: *out is in itself when nothing changes, else a shallow copy whose changed
 * structs, arrays and strings come from alloc. Returns 0, or -1 when alloc fails.
 * Cost: O(response insertions). */
int fix_delivery_log(const Delivery__DeliveryLog *in, ProtobufCAllocator *alloc,
                     Delivery__DeliveryLog **out);

/* Adds the operator: REC_DELIVERY_LOG in, the fixed REC_DELIVERY_LOG on port 0 (same ts and
 * key; valid during the push). Returns 0 or -1 (out of memory). */
int fix_delivery_log_op_add(rt_graph *g, const char *uid, rt_op **out);

#endif
