#include "jobs/avro_table.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/avro_file.h"
#include "formats/avro_schema.h"
#include "schemas_embedded.h"

/* Avro writes every absent field, so a datum can be larger than its protobuf bytes. */
#define AVRO_GROWTH 8

struct avro_table {
    avsc_schema *schema; /* proto tables */
    int owns_schema;     /* 0: the schema is the process-wide cached one */
    const char *json;    /* the schema text written into part headers */
    size_t json_len;
    size_t max_datum;
    char err[256];
};

/* Schemas are immutable and cost about 2 ms each to build (event.LogRequest); a task builds a
 * table sink per output, and a process rebuilds its tasks on every rebalance: one schema per
 * message type for the whole process. Cached schemas live until exit. */
#define SCHEMA_CACHE 128
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const ProtobufCMessageDescriptor *desc;
    avsc_schema *schema;
} cache[SCHEMA_CACHE];
static size_t ncache;

/* The schema of desc: the cached one (*owned 0), or a new one the caller frees (*owned 1) when
 * the cache is full. Returns 0 or -1 with err. */
static int schema_for(const ProtobufCMessageDescriptor *desc, avsc_schema **out, int *owned,
                      char *err, size_t errlen)
{
    pthread_mutex_lock(&cache_mu);
    for (size_t i = 0; i < ncache; i++)
        if (cache[i].desc == desc) {
            *out = cache[i].schema;
            *owned = 0;
            pthread_mutex_unlock(&cache_mu);
            return 0;
        }
    int rc = avsc_schema_new(desc, out, err, errlen);
    *owned = 1;
    if (rc == 0 && ncache < SCHEMA_CACHE) {
        cache[ncache].desc = desc;
        cache[ncache].schema = *out;
        ncache++;
        *owned = 0;
    }
    pthread_mutex_unlock(&cache_mu);
    return rc;
}

int avro_table_new(const ProtobufCMessageDescriptor *desc, const char *schema_name,
                   size_t max_record_bytes, avro_table **out, char *err, size_t errlen)
{
    avro_table *t = calloc(1, sizeof *t);
    if (!t) return snprintf(err, errlen, "out of memory"), -1;
    t->max_datum = AVRO_GROWTH * max_record_bytes + (64 << 10);
    if (desc) {
        if (schema_for(desc, &t->schema, &t->owns_schema, err, errlen)) {
            free(t);
            return -1;
        }
        t->json = avsc_schema_json(t->schema, &t->json_len);
    } else {
        t->json = embedded_schema(schema_name);
        if (!t->json) {
            snprintf(err, errlen, "no embedded schema named %s", schema_name);
            free(t);
            return -1;
        }
        t->json_len = strlen(t->json);
    }
    *out = t;
    return 0;
}

static int part_open(void *ctx, const char *path, void **part, char *err, size_t errlen)
{
    avro_table *t = ctx;
    avro_file_opts o = {.codec = "snappy", .max_datum_bytes = t->max_datum, .fsync_on_close = 1};
    return avro_file_out_new(path, t->json, t->json_len, &o, (avro_file_out **)part, err, errlen);
}

static int part_append(void *part, const void *bytes, size_t len, char *err, size_t errlen)
{
    return avro_file_out_append(part, bytes, len, err, errlen);
}

static int part_close(void *part, char *err, size_t errlen)
{
    return avro_file_out_close(part, err, errlen);
}

table_format avro_table_format(avro_table *t)
{
    table_format f = {part_open, part_append, part_close, t, "avro"};
    return f;
}

/* The datum is appended to out (the sink's record buffer, whose limit bounds it). */
int avro_table_encode_message(avro_table *t, const ProtobufCMessage *m, rt_buf *out)
{
    return avenc_message(t->schema, m, out, NULL, t->err, sizeof t->err) ? -1 : 0;
}

int avro_table_encode_log_user_user(avro_table *t, const avenc_log_user_user *r, rt_buf *out)
{
    return avenc_log_user_user_datum(r, out, t->err, sizeof t->err) ? -1 : 0;
}

int avro_table_encode_delivery_log_ids(avro_table *t, const avenc_delivery_log_ids *r, rt_buf *out)
{
    return avenc_delivery_log_ids_datum(r, out, t->err, sizeof t->err) ? -1 : 0;
}

int avro_table_encode_request_insertion_ids(avro_table *t, const avenc_request_insertion_ids *r,
                                            rt_buf *out)
{
    return avenc_request_insertion_ids_datum(r, out, t->err, sizeof t->err) ? -1 : 0;
}

int avro_table_encode_response_insertion_ids(avro_table *t, const avenc_response_insertion_ids *r,
                                             rt_buf *out)
{
    return avenc_response_insertion_ids_datum(r, out, t->err, sizeof t->err) ? -1 : 0;
}

int avro_table_encode_invalid(avro_table *t, const avenc_invalid_record *r, rt_buf *out)
{
    return avenc_invalid_record_datum(r, out, t->err, sizeof t->err) ? -1 : 0;
}

void avro_table_free(avro_table *t)
{
    if (!t) return;
    if (t->owns_schema) avsc_schema_free(t->schema);
    free(t);
}
