#include "jobs/join/error_rows.h"

#include <stdio.h>
#include <string.h>

/* Symbol counts of the schemas' enums: an index past them would make an unreadable datum. */
#define N_RECORD_TYPES 9
#define N_ERROR_TYPES 3
#define N_FIELDS 13
#define N_LOG_FUNCTIONS 12

static int put_long(rt_buf *b, int64_t v)
{
    return rt_buf_put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static int put_string(rt_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return put_long(b, (int64_t)n) || rt_buf_append(b, s, n) ? -1 : 0;
}

static int check_enum(const char *row, const char *name, int v, int n, char *err, size_t errlen)
{
    if (v >= 0 && v < n) return 0;
    snprintf(err, errlen, "%s: %s %d is not one of the schema's %d symbols", row, name, v, n);
    return -1;
}

static int fail_limit(rt_buf *out, size_t len0, const char *row, char *err, size_t errlen)
{
    out->len = len0;
    snprintf(err, errlen, "%s: the datum does not fit the buffer's limit of %zu bytes", row,
             out->limit);
    return -1;
}

int error_rows_validation_datum(const join_validation_error *e, rt_buf *out, char *err,
                                size_t errlen)
{
    static const char row[] = "ValidationError";
    if (check_enum(row, "recordType", (int)e->record_type, N_RECORD_TYPES, err, errlen) ||
        check_enum(row, "errorType", (int)e->error_type, N_ERROR_TYPES, err, errlen) ||
        check_enum(row, "field", (int)e->field, N_FIELDS, err, errlen))
        return -1;
    size_t len0 = out->len;
    if (put_long(out, e->record_type) || put_long(out, e->error_type) ||
        put_long(out, e->platform_id) || put_string(out, e->log_user_id) ||
        put_string(out, e->view_id) || put_string(out, e->request_id) ||
        put_string(out, e->response_insertion_id) || put_string(out, e->impression_id) ||
        put_string(out, e->action_id) || put_long(out, e->client_log_timestamp) ||
        put_long(out, e->event_api_timestamp) || put_long(out, e->log_timestamp) ||
        put_long(out, e->field))
        return fail_limit(out, len0, row, err, errlen);
    return 0;
}

int error_rows_mismatch_datum(const join_mismatch_error *e, rt_buf *out, char *err, size_t errlen)
{
    static const char row[] = "MismatchError";
    if (check_enum(row, "recordType", (int)e->record_type, N_RECORD_TYPES, err, errlen) ||
        check_enum(row, "field", (int)e->field, N_FIELDS, err, errlen) ||
        check_enum(row, "logFunctionName", (int)e->log_function_name, N_LOG_FUNCTIONS, err, errlen))
        return -1;
    size_t len0 = out->len;
    if (put_long(out, e->record_type) || put_long(out, e->field) ||
        put_long(out, e->lhs_platform_id) || put_string(out, e->lhs_log_user_id) ||
        put_string(out, e->lhs_session_id) || put_string(out, e->lhs_view_id) ||
        put_string(out, e->lhs_auto_view_id) || put_string(out, e->lhs_request_id) ||
        put_string(out, e->lhs_insertion_id) || put_string(out, e->lhs_impression_id) ||
        put_string(out, e->rhs_record_id) || put_string(out, e->lhs_string) ||
        put_string(out, e->rhs_string) || put_long(out, e->lhs_long) ||
        put_long(out, e->rhs_long) || put_long(out, e->log_timestamp) ||
        put_long(out, e->log_function_name))
        return fail_limit(out, len0, row, err, errlen);
    return 0;
}

int error_rows_encode_validation(void *ctx, const rt_record *rec, rt_buf *out,
                                 int64_t *partition_ts)
{
    char err[160];
    if (rec->type != REC_VALIDATION_ERROR) return -1;
    const join_validation_error *e = rec->data;
    *partition_ts = e->event_api_timestamp;
    return error_rows_validation_datum(e, out, err, sizeof err);
}

int error_rows_encode_mismatch(void *ctx, const rt_record *rec, rt_buf *out, int64_t *partition_ts)
{
    char err[160];
    if (rec->type != REC_MISMATCH_ERROR) return -1;
    const join_mismatch_error *e = rec->data;
    *partition_ts = e->log_timestamp;
    return error_rows_mismatch_datum(e, out, err, sizeof err);
}
