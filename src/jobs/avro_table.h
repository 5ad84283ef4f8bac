/* An Avro table: the schema and container-file format of one table sink, for a protobuf message
 * type (schema derived from its descriptor) or a hand-written schema (schemas/<name>.avsc). */
#ifndef LOGPROC_AVRO_TABLE_H
#define LOGPROC_AVRO_TABLE_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "connectors/table_sink.h"
#include "formats/avro_encode.h"
#include "runtime/buf.h"

typedef struct avro_table avro_table;

/* For a proto table pass desc (schema_name NULL); for a derived table pass the embedded schema's
 * name (desc NULL). Part files are snappy container files whose largest datum is
 * max_record_bytes times the Avro growth allowance. Returns 0 or -1 with err. */
int avro_table_new(const ProtobufCMessageDescriptor *desc, const char *schema_name,
                   size_t max_record_bytes, avro_table **out, char *err, size_t errlen);

/* The container-file format of the table's parts (ctx is t; valid while t lives). */
table_format avro_table_format(avro_table *t);

/* Appends the datum of message m (of the table's type) to out. Returns 0 or -1. */
int avro_table_encode_message(avro_table *t, const ProtobufCMessage *m, rt_buf *out);

/* The derived rows, appended to out. Return 0 or -1. */
int avro_table_encode_log_user_user(avro_table *t, const avenc_log_user_user *r, rt_buf *out);
int avro_table_encode_delivery_log_ids(avro_table *t, const avenc_delivery_log_ids *r, rt_buf *out);
int avro_table_encode_request_insertion_ids(avro_table *t, const avenc_request_insertion_ids *r,
                                            rt_buf *out);
int avro_table_encode_response_insertion_ids(avro_table *t, const avenc_response_insertion_ids *r,
                                             rt_buf *out);
int avro_table_encode_invalid(avro_table *t, const avenc_invalid_record *r, rt_buf *out);

void avro_table_free(avro_table *t);

#endif
