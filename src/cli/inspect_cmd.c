/* logproc inspect PATH: prints a record file, an Avro object container file or one raw protobuf
 * message as JSON lines.
 *
 * Record file: one line per frame,
 *   {"offset":N,"timestamp":MS,"key":{"platformId":"..","logUserId":".."},"value":{..}}
 * with the value in the canonical proto3 JSON mapping (pb_json) of --type, and the key as a
 * base64 string when it is not the Event API's shape (8-byte little-endian platform id, then a
 * UTF-8 log user id). A bad frame prints {"offset":N,"length":L,"error":".."} (plus its
 * "timestamp" when its header verified) and inspect goes on. A frame whose value is not a valid
 * --type message (what a job would send to invalid_record) prints its key, an "error" and the
 * value as base64 under "raw". Exit status 0 when every frame and value was good, 1 otherwise,
 * 2 for a usage error.
 *
 * Avro (magic "Obj\x01"): one plain JSON object per record (avro_file_print_json). An Avro
 * file that fails part way prints the records before the problem, then the error on stderr,
 * and exits 1.
 *
 * --raw: PATH holds one serialized message (a wire vector .pb); it prints as one JSON line.
 *
 * kafka://TOPIC with --bootstrapServers ADDR: every record of every partition, from the earliest
 * offset to the high watermark seen at the start, then exits; lines as for a record file plus
 * "partition" (partition by partition, in offset order). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "cli/cli.h"
#include "common/common.pb-c.h"
#include "delivery/delivery.pb-c.h"
#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "logproc/join.pb-c.h"
#include "formats/avro_file.h"
#include "formats/pb_json.h"
#include "formats/pb_util.h"
#include "formats/record_file.h"
#include "connectors/kafka.h"
#include "google/protobuf/struct.pb-c.h"
#include "logproc/private.pb-c.h"
#include "runtime/flags.h"

#define USAGE                                                                                      \
    "logproc inspect PATH...|kafka://TOPIC [--type=event.LogRequest] [--maxRecordBytes=N] [--raw] "   \
    "[--bootstrapServers=ADDR]"
#define MAX_TYPES 512 /* message types reachable from the roots; far above the schema's ~60 */

typedef struct inspect_opts {
    char *type;
    int64_t maxRecordBytes;
    bool raw;
    char *bootstrap;
} inspect_opts;

static inspect_opts opts;

static const flag_def inspect_flags[] = {
    {"type", NULL, FLAG_STRING, "event.LogRequest", offsetof(inspect_opts, type),
     "protobuf message type of record values and of a --raw file, by full proto name "
     "(--type=list prints the known names)",
     0},
    {"maxRecordBytes", NULL, FLAG_INT, "1048576", offsetof(inspect_opts, maxRecordBytes),
     "largest key+value of one record (and largest --raw file); larger frames are reported as bad",
     0},
    {"raw", NULL, FLAG_BOOL, NULL, offsetof(inspect_opts, raw),
     "PATH is one serialized message (a .pb file), not a record file", 0},
    {"bootstrapServers", "bootstrap.servers,b", FLAG_STRING, "", offsetof(inspect_opts, bootstrap),
     "Kafka bootstrap servers, for a kafka://TOPIC input", 0},
};

/* ---- message types ---- */

/* protobuf-c has no registry of generated types, so the known types are everything reachable
 * through message fields from these roots: the wire schema's entry point and the records that
 * nothing in it references. */
static const ProtobufCMessageDescriptor *const type_roots[] = {
    &event__log_request__descriptor,
    &logproc__priv__session__descriptor,
    &logproc__priv__session_profile__descriptor,
    &logproc__priv__feature_stage__descriptor,
    &logproc__priv__features__descriptor,
    &google__protobuf__struct__descriptor,
    /* logproc's own records: joined events and the join's tiny records */
    &event__joined_event__descriptor,
    &event__flat_response_insertion__descriptor,
    &event__dropped_merge_details_event__descriptor,
    &event__tiny_delivery_log__descriptor,
    &event__combined_delivery_log__descriptor,
    &event__insertion_bundle__descriptor,
};

typedef struct type_set {
    const ProtobufCMessageDescriptor *d[MAX_TYPES];
    size_t n;
} type_set;

static int type_set_add(type_set *s, const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->d[i] == d) return 0;
    if (s->n == MAX_TYPES) return -1;
    s->d[s->n++] = d;
    return 0;
}

/* Breadth-first over message fields; the set itself is the queue. */
static void types_collect(type_set *s)
{
    s->n = 0;
    for (size_t i = 0; i < sizeof type_roots / sizeof type_roots[0]; i++)
        type_set_add(s, type_roots[i]);
    for (size_t i = 0; i < s->n; i++)
        for (unsigned f = 0; f < s->d[i]->n_fields; f++) {
            const ProtobufCFieldDescriptor *fd = &s->d[i]->fields[f];
            if (fd->type == PROTOBUF_C_TYPE_MESSAGE && type_set_add(s, fd->descriptor) < 0) return;
        }
}

static int cmp_name(const void *a, const void *b)
{
    const ProtobufCMessageDescriptor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static const ProtobufCMessageDescriptor *type_find(const type_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->d[i]->name, name)) return s->d[i];
    return NULL;
}

/* ---- JSON pieces ---- */

static void put_json_string(FILE *out, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    fputc('"', out);
    size_t run = 0; /* bytes that need no escape, written in one call */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        fwrite(s + run, 1, i - run, out);
        run = i + 1;
        switch (c) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            fputs("\\u00", out);
            fputc(hex[c >> 4], out);
            fputc(hex[c & 15], out);
        }
    }
    fwrite(s + run, 1, n - run, out);
    fputc('"', out);
}

static void put_base64(FILE *out, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char quad[4];
    fputc('"', out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        quad[0] = tab[v >> 18];
        quad[1] = tab[(v >> 12) & 63];
        quad[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        quad[3] = i + 2 < n ? tab[v & 63] : '=';
        fwrite(quad, 1, 4, out);
    }
    fputc('"', out);
}

/* The Event API key as an object, or base64 when it is not that shape. */
static void put_key(FILE *out, const uint8_t *k, size_t n)
{
    if (n < 8 || !pb_utf8_valid((const char *)k + 8, n - 8)) {
        put_base64(out, k, n);
        return;
    }
    uint64_t platform = 0;
    for (int i = 7; i >= 0; i--)
        platform = platform << 8 | k[i];
    fprintf(out, "{\"platformId\":\"%llu\",\"logUserId\":", (unsigned long long)platform);
    put_json_string(out, k + 8, n - 8);
    fputc('}', out);
}

/* ---- protobuf values ---- */

/* Decodes bytes as message type d and returns its JSON (malloc'd), or NULL with err saying what
 * a job would reject it for: broken framing or nesting, undecodable, invalid UTF-8. */
static char *value_json(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                        size_t *len, char *err, size_t errlen)
{
    char why[256];
    if (pb_wire_check_depth(d, p, n, PB_MAX_DEPTH, why, sizeof why) < 0) {
        snprintf(err, errlen, "value is not a valid %s: %s", d->name, why);
        return NULL;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
    if (m == NULL) {
        snprintf(err, errlen, "value is not a valid %s: protobuf-c could not decode it", d->name);
        return NULL;
    }
    char *json = NULL;
    if (pb_check_utf8(m, why, sizeof why) < 0)
        snprintf(err, errlen, "value is not a valid %s: %s", d->name, why);
    else if (pb_json_encode_ex(m, PB_JSON_PRIVATE, 0, &json, len, why, sizeof why) < 0)
        snprintf(err, errlen, "value of type %s does not print as JSON: %s", d->name, why);
    protobuf_c_message_free_unpacked(m, NULL);
    return json;
}

/* ---- the inputs ---- */

/* The rest of a good record's line, after its opening and position fields: timestamp, key and
 * value (or the value's error and raw bytes). Returns 1 when the value is bad, else 0. */
static int print_good(FILE *out, const ProtobufCMessageDescriptor *d, int64_t ts,
                      const uint8_t *key, size_t key_len, const uint8_t *value, size_t value_len)
{
    char err[512];
    int bad = 0;
    fprintf(out, "\"timestamp\":%lld,\"key\":", (long long)ts);
    put_key(out, key, key_len);
    size_t jlen = 0;
    char *json = value_json(d, value, value_len, &jlen, err, sizeof err);
    if (json != NULL) {
        fputs(",\"value\":", out);
        fwrite(json, 1, jlen, out);
        free(json);
    } else {
        bad = 1;
        fputs(",\"error\":", out);
        put_json_string(out, (const uint8_t *)err, strlen(err));
        fputs(",\"raw\":", out);
        put_base64(out, value, value_len);
    }
    fputs("}\n", out);
    return bad;
}

static int inspect_records(const char *path, const ProtobufCMessageDescriptor *d, size_t max,
                           FILE *out)
{
    char err[512];
    recfile_reader *r;
    if (recfile_reader_open(path, max, &r, err, sizeof err) < 0) {
        fprintf(stderr, "logproc inspect: %s\n", err);
        return 1;
    }
    int any_bad = 0;
    recfile_record rec;
    recfile_bad bad;
    int rc;
    while ((rc = recfile_next(r, &rec, &bad)) != 0) {
        if (rc == 2) {
            any_bad = 1;
            fprintf(out, "{\"offset\":%llu,\"length\":%zu,", (unsigned long long)bad.offset,
                    bad.full_len);
            if (bad.ts_ms != -1) fprintf(out, "\"timestamp\":%lld,", (long long)bad.ts_ms);
            fputs("\"error\":", out);
            put_json_string(out, (const uint8_t *)bad.error, strlen(bad.error));
            fputs("}\n", out);
            continue;
        }
        fprintf(out, "{\"offset\":%llu,", (unsigned long long)rec.offset);
        any_bad |= print_good(out, d, rec.ts_ms, rec.key, rec.key_len, rec.value, rec.value_len);
    }
    recfile_reader_close(r);
    return any_bad;
}

/* A Kafka topic from its earliest offsets to the high watermarks seen at the start. */
static int inspect_kafka(const char *topic, const ProtobufCMessageDescriptor *d, size_t max,
                         FILE *out)
{
    char err[1024];
    if (!*opts.bootstrap) {
        fprintf(stderr, "logproc inspect: kafka://%s needs --bootstrapServers\n", topic);
        return 2;
    }
    kafka_consumer_config cfg = {
        .client = {.bootstrap = opts.bootstrap},
        .group_id = "logproc-inspect",
        .topics = &topic,
        .ntopics = 1,
        .start = KAFKA_START_EARLIEST,
        .stop_at_end = 1,
        .max_record_bytes = max,
    };
    kafka_consumer *c = NULL;
    int32_t nparts = 0;
    if (kafka_topic_partitions(&cfg.client, topic, &nparts, err, sizeof err) ||
        kafka_consumer_new(&cfg, NULL, &c, err, sizeof err)) {
        fprintf(stderr, "logproc inspect: %s\n", err);
        return 1;
    }
    int any_bad = 0;
    for (int32_t p = 0; p < nparts; p++) {
        rt_source *src = NULL;
        if (kafka_source_new(c, topic, p, &src, err, sizeof err)) {
            fprintf(stderr, "logproc inspect: %s\n", err);
            any_bad = 1;
            break;
        }
        rt_source_record r;
        int rc;
        while ((rc = src->next(src, &r, err, sizeof err)) != RT_SOURCE_END) {
            if (rc == RT_SOURCE_IDLE) {
                if (kafka_consumer_poll(c, 10, err, sizeof err) == 0) continue;
                rc = -1;
            }
            if (rc < 0) {
                fprintf(stderr, "logproc inspect: %s\n", err);
                any_bad = 1;
                break;
            }
            fprintf(out, "{\"partition\":%d,\"offset\":%lld,", (int)p, (long long)r.offset);
            if (rc == RT_SOURCE_BAD) {
                any_bad = 1;
                fprintf(out, "\"length\":%zu,\"timestamp\":%lld,\"error\":", r.raw_length,
                        (long long)r.ts);
                put_json_string(out, (const uint8_t *)r.error, strlen(r.error));
                fputs("}\n", out);
                continue;
            }
            any_bad |= print_good(out, d, r.ts, r.key, r.key_len, r.value, r.value_len);
        }
        kafka_source_free(src);
        if (rc != RT_SOURCE_END) break;
    }
    kafka_consumer_free(c);
    return any_bad;
}

static int inspect_avro(const char *path, FILE *out)
{
    char err[512];
    if (avro_file_print_json(path, out, err, sizeof err) < 0) {
        fprintf(stderr, "logproc inspect: %s\n", err);
        return 1;
    }
    return 0;
}

static int inspect_raw(const char *path, const ProtobufCMessageDescriptor *d, size_t max, FILE *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "logproc inspect: %s: %m\n", path);
        return 1;
    }
    /* Grows by doubling up to one byte more than the limit, which tells "exactly the limit"
     * from "over it" for a pipe as well as a file. */
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    const char *failed = NULL;
    while (!failed && n <= max) {
        if (n == cap) {
            size_t want = cap ? cap * 2 : 64 * 1024;
            if (want > max + 1) want = max + 1;
            uint8_t *nb = realloc(buf, want);
            if (nb == NULL) {
                failed = "out of memory";
                break;
            }
            buf = nb;
            cap = want;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    if (!failed && ferror(f)) failed = "read error";
    fclose(f);
    if (failed) {
        fprintf(stderr, "logproc inspect: %s: %s\n", path, failed);
        free(buf);
        return 1;
    }
    if (n > max) {
        fprintf(stderr, "logproc inspect: %s: message over --maxRecordBytes %zu\n", path, max);
        free(buf);
        return 1;
    }
    char err[512];
    size_t jlen = 0;
    char *json = value_json(d, buf, n, &jlen, err, sizeof err);
    free(buf);
    if (json == NULL) {
        fprintf(stderr, "logproc inspect: %s: %s\n", path, err);
        return 1;
    }
    fwrite(json, 1, jlen, out);
    fputc('\n', out);
    free(json);
    return 0;
}

/* "avro", "record" (also for an empty file, and for one that does not start with a frame: the
 * reader reports what is wrong and finds the frames after it), or NULL with a message. */
static const char *detect(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "logproc inspect: %s: %m\n", path);
        return NULL;
    }
    uint8_t head[4];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    if (n == 4 && !memcmp(head, "Obj\x01", 4)) return "avro";
    if (n > 0 && memcmp(head, RECFILE_SYNC, n) != 0)
        fprintf(stderr,
                "logproc inspect: %s starts with neither an Avro header nor a record frame; "
                "reading it as a record file (--raw reads one protobuf message)\n",
                path);
    return "record";
}

#define INSPECT_MAX_PATHS 4096

int cli_inspect(int argc, char **argv)
{
    flag_table tables[] = {FLAG_TABLE("inspect", inspect_flags, &opts)};
    char err[512];
    char *pos[INSPECT_MAX_PATHS];
    size_t npos = 0;
    bool help = false;
    int status = 2;
    if (flags_parse(tables, 1, argc - 1, argv + 1, pos, INSPECT_MAX_PATHS, &npos, &help, err,
                    sizeof err) < 0) {
        fprintf(stderr, "logproc inspect: %s\n", err);
        goto out;
    }
    if (help) {
        flags_help(stdout, USAGE, tables, 1);
        status = 0;
        goto out;
    }
    static type_set types; /* about 4 KiB: off the stack */
    types_collect(&types);
    if (!strcmp(opts.type, "list")) {
        qsort(types.d, types.n, sizeof types.d[0], cmp_name);
        for (size_t i = 0; i < types.n; i++)
            printf("%s\n", types.d[i]->name);
        status = 0;
        goto out;
    }
    const ProtobufCMessageDescriptor *d = type_find(&types, opts.type);
    if (d == NULL) {
        fprintf(stderr,
                "logproc inspect: --type=%s: unknown message type (--type=list prints "
                "the known ones)\n",
                opts.type);
        goto out;
    }
    if (opts.maxRecordBytes <= 0 || (uint64_t)opts.maxRecordBytes > UINT32_MAX) {
        fprintf(stderr, "logproc inspect: --maxRecordBytes=%lld: must be 1..%u\n",
                (long long)opts.maxRecordBytes, UINT32_MAX);
        goto out;
    }
    if (npos < 1) {
        fprintf(stderr, "logproc inspect: PATH is missing\nusage: %s\n", USAGE);
        goto out;
    }
    /* several paths print one after the other (the worst status wins) */
    status = 0;
    for (size_t i = 0; i < npos; i++) {
        const char *path = pos[i];
        size_t max = (size_t)opts.maxRecordBytes;
        int st;
        if (!strncmp(path, "kafka://", 8)) {
            st = inspect_kafka(path + 8, d, max, stdout);
        } else if (opts.raw) {
            st = inspect_raw(path, d, max, stdout);
        } else {
            const char *kind = detect(path);
            if (kind == NULL)
                st = 1;
            else if (!strcmp(kind, "avro"))
                st = inspect_avro(path, stdout);
            else
                st = inspect_records(path, d, max, stdout);
        }
        if (st > status) status = st;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "logproc inspect: writing stdout: %m\n");
        status = 1;
    }
out:
    flags_free(tables, 1);
    return status;
}
