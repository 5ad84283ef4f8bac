/* The raw job's derived records (spec/other-jobs.md §A.4): which LogUserUser rows a LogRequest
 * yields, and the DeliveryLogIds of a delivery log. The row structs and their Avro encoders are
 * formats/avro_encode.h's (the schemas/ files); the rows borrow the strings of their message. */
#ifndef LOGPROC_RAW_DERIVED_H
#define LOGPROC_RAW_DERIVED_H

#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "formats/avro_encode.h"

/* Calls emit(ctx, &row) for each LogUserUser candidate of the raw (not pushed-down) LogRequest
 * that has both ids, in the spec's order (top-level user_info, users, cohort memberships, views,
 * auto views, delivery logs, impressions, actions, diagnostics). A candidate's own platform_id
 * and event_api_timestamp win when non-zero; the LogRequest's are the defaults. Stops at and
 * returns the first non-zero status of emit. */
int raw_log_user_users(const Event__LogRequest *lr,
                       int (*emit)(void *ctx, const avenc_log_user_user *row), void *ctx);

/* DeliveryLogIds of a (pushed-down, restructured) DeliveryLog. */
void raw_delivery_log_ids_of(const Delivery__DeliveryLog *dl, avenc_delivery_log_ids *out);

#endif
