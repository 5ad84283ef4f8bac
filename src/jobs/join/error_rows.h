/* The error rows of flat-output as Avro datums: ValidationError and MismatchError
 * (spec/flat-output.md §13), namespace ai.promoted.metrics.error, with the schemas of
 * schemas/validation_error.avsc and schemas/mismatch_error.avsc (embedded in the binary:
 * embedded_schema("validation_error"), embedded_schema("mismatch_error")).
 *
 * The encoders write the Avro binary encoding field by field in the schema's order: zigzag
 * varints for long and enum indexes, length-prefixed UTF-8 for strings (a NULL string is ""),
 * the nested Timing / JoinedIdentifiers records inline. The enums of join_records.h are the
 * symbol indexes. */
#ifndef LOGPROC_JOIN_ERROR_ROWS_H
#define LOGPROC_JOIN_ERROR_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "jobs/join/join_records.h"
#include "runtime/buf.h"
#include "runtime/record.h"

/* Names of the embedded schemas (schemas/<name>.avsc). */
#define ERROR_ROWS_VALIDATION_SCHEMA "validation_error"
#define ERROR_ROWS_MISMATCH_SCHEMA "mismatch_error"

/* Appends the ValidationError datum of e to out. Returns 0, or -1 with err naming the row type
 * and out's limit (out->len is then as before the call), or an enum value outside its symbols.
 * Cost: linear in the strings; no allocation unless out grows. */
int error_rows_validation_datum(const join_validation_error *e, rt_buf *out, char *err,
                                size_t errlen);

/* Appends the MismatchError datum of e to out. Same contract as error_rows_validation_datum. */
int error_rows_mismatch_datum(const join_mismatch_error *e, rt_buf *out, char *err, size_t errlen);

/* Table-sink adapters (common_ops.h sink_op_config.encode; ctx is unused): encode a
 * REC_VALIDATION_ERROR (partition time = timing.eventApiTimestamp, §14.2) or a
 * REC_MISMATCH_ERROR (partition time = logTimestamp). Return 0, or -1 on a wrong record type or
 * out's limit. */
int error_rows_encode_validation(void *ctx, const rt_record *rec, rt_buf *out,
                                 int64_t *partition_ts);
int error_rows_encode_mismatch(void *ctx, const rt_record *rec, rt_buf *out, int64_t *partition_ts);

#endif
