/* user_id stripping before every main output (spec/flat-output.md §12.4): ids.user_id and
 * user_info.user_id of user, session_profile, session, view, auto_view, request, impression and
 * action (a FlatResponseInsertion: also every entry of impression[] and action[]); the same for
 * the joined_event of a DroppedMergeDetailsEvent. A user_info that held only the user_id stays
 * present (empty), as in the reference.
 *
 * The input is never written: the result shares everything unchanged with it and copies only
 * the messages on the path to a cleared field (shallow copies in alloc, an arena). When there is
 * no user_id anywhere the input itself is returned. */
#ifndef LOGPROC_STRIP_USER_ID_H
#define LOGPROC_STRIP_USER_ID_H

#include <protobuf-c/protobuf-c.h>

#include "logproc/join.pb-c.h"
#include "runtime/graph.h"

/* Each sets *out (possibly == in) and returns 0, or -1 when alloc fails. Cost: a few pointer
 * tests, plus one small copy per message that held a user_id. */
int strip_user_id_joined_event(const Event__JoinedEvent *in, ProtobufCAllocator *alloc,
                               const Event__JoinedEvent **out);
int strip_user_id_flat_response_insertion(const Event__FlatResponseInsertion *in,
                                          ProtobufCAllocator *alloc,
                                          const Event__FlatResponseInsertion **out);
int strip_user_id_dropped_merge_details(const Event__DroppedMergeDetailsEvent *in,
                                        ProtobufCAllocator *alloc,
                                        const Event__DroppedMergeDetailsEvent **out);

/* A map operator (1 input, port 0) applying the above to REC_JOINED_EVENT,
 * REC_FLAT_RESPONSE_INSERTION and REC_DROPPED_MERGE_DETAILS records (same ts and key); any other
 * record passes unchanged. Stateless. Returns 0 with *out, or -1. */
int strip_user_id_op_add(rt_graph *g, const char *uid, rt_op **out);

#endif
