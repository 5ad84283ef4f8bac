/* RestructureDeliveryLog: turns a request's insertion matrix (headers + rows of values) into
 * request insertions (spec/other-jobs.md §A.3, spec/flat-output.md §2.3). */
#ifndef LOGPROC_RESTRUCTURE_H
#define LOGPROC_RESTRUCTURE_H

#include <protobuf-c/protobuf-c.h>

#include "delivery/execution.pb-c.h"

#define RESTRUCTURE_ERR_NOMEM (-1)
#define RESTRUCTURE_ERR_DOTS (-2) /* a header made only of dots: no path to store the value at */

/* When request.insertion_matrix_headers and insertion_matrix.values are both non-empty, replaces
 * request.insertion with one Insertion per matrix row (contentId, retrievalRank and
 * retrievalScore headers fill those fields; any other header is a dot path into
 * properties.struct) and clears the headers and the matrix. Otherwise leaves dl unchanged.
 * Everything new comes from alloc (the record's arena). Returns 0, RESTRUCTURE_ERR_DOTS (dl is
 * then unchanged; the caller decides where it goes) or RESTRUCTURE_ERR_NOMEM.
 * Cost: O(rows × headers × path depth). */
int restructure_delivery_log(Delivery__DeliveryLog *dl, ProtobufCAllocator *alloc);

#endif
