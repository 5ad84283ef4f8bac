/* logproc-bench-decode: the decode-only baseline of `make bench`.
 *
 * Reads a record file of serialized event.LogRequest values and decodes every value the way the
 * jobs' decode operator does (one arena, reset after each record), without running any operator
 * after it. Three modes, so the cost of each layer can be told apart:
 *
 *   read     record-file framing only: the two CRC32C passes per frame, no protobuf work
 *   bare     framing + protobuf-c's unpack into the arena (what protobuf-c alone costs)
 *   checked  framing + pb_unpack_checked into the arena: the depth pre-check, the unpack and the
 *            UTF-8 walk, i.e. exactly what `logproc run` pays per record before the split
 *
 * Prints one JSON object on stdout: mode, records, invalid, bad_spans, value_bytes, file_bytes,
 * child counts of the decoded LogRequests (so a run shows what it decoded) and seconds (the
 * monotonic time of the read/decode loop, file open included). Exits 0, or 1 with a message on
 * stderr if the file cannot be opened or the arena cannot be created. Invalid records are
 * counted, not fatal: the baseline decodes what the job would decode.
 *
 * Usage: logproc-bench-decode [--mode=read|bare|checked] [--maxRecordBytes=N] FILE.rec */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event/event.pb-c.h"
#include "formats/pb_util.h"
#include "formats/record_file.h"

enum bench_mode { MODE_READ, MODE_BARE, MODE_CHECKED };

/* The job's decode operator sizes and resets its arena this way (src/jobs/common_ops.c); the
 * baseline copies the policy so both pay the same allocation cost. */
#define ARENA_CHUNK (64u << 10)
#define ARENA_KEEP (4u << 20)

typedef struct children {
    uint64_t user, cohort_membership, view, auto_view, request, insertion, delivery_log,
        response_insertion, impression, action, diagnostics;
} children;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Touches the decoded message so the unpack cannot be judged dead, and tells the reader of the
 * output what was decoded. */
static void count_children(const Event__LogRequest *lr, children *c)
{
    c->user += lr->n_user;
    c->cohort_membership += lr->n_cohort_membership;
    c->view += lr->n_view;
    c->auto_view += lr->n_auto_view;
    c->request += lr->n_request;
    c->insertion += lr->n_insertion;
    c->delivery_log += lr->n_delivery_log;
    for (size_t i = 0; i < lr->n_delivery_log; i++)
        c->response_insertion += lr->delivery_log[i]->response
                                     ? lr->delivery_log[i]->response->n_insertion
                                     : 0;
    c->impression += lr->n_impression;
    c->action += lr->n_action;
    c->diagnostics += lr->n_diagnostics;
}

static int parse_mode(const char *s, enum bench_mode *m)
{
    if (!strcmp(s, "read")) *m = MODE_READ;
    else if (!strcmp(s, "bare")) *m = MODE_BARE;
    else if (!strcmp(s, "checked")) *m = MODE_CHECKED;
    else return -1;
    return 0;
}

static const char *mode_name(enum bench_mode m)
{
    return m == MODE_READ ? "read" : m == MODE_BARE ? "bare" : "checked";
}

static void usage(FILE *f)
{
    fprintf(f, "usage: logproc-bench-decode [--mode=read|bare|checked] [--maxRecordBytes=N] "
               "FILE.rec\n"
               "Decodes every value of the record file as event.LogRequest and prints JSON\n"
               "(records, value_bytes, file_bytes, seconds). Default mode: checked.\n");
}

int main(int argc, char **argv)
{
    enum bench_mode mode = MODE_CHECKED;
    size_t max_record_bytes = RECFILE_DEFAULT_MAX_RECORD_BYTES;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--mode=", 7)) {
            if (parse_mode(a + 7, &mode)) {
                fprintf(stderr, "logproc-bench-decode: --mode: unknown mode '%s' "
                                "(read, bare or checked)\n", a + 7);
                return 1;
            }
        } else if (!strncmp(a, "--maxRecordBytes=", 17)) {
            char *end;
            unsigned long long v = strtoull(a + 17, &end, 10);
            if (*end || v == 0 || v > (1ull << 30)) {
                fprintf(stderr, "logproc-bench-decode: --maxRecordBytes: '%s' is not a number "
                                "in 1..%llu\n", a + 17, 1ull << 30);
                return 1;
            }
            max_record_bytes = (size_t)v;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' || path) {
            usage(stderr);
            return 1;
        } else {
            path = a;
        }
    }
    if (!path) {
        usage(stderr);
        return 1;
    }

    char err[512];
    double t0 = now_seconds();
    recfile_reader *r;
    if (recfile_reader_open(path, max_record_bytes, &r, err, sizeof err)) {
        fprintf(stderr, "logproc-bench-decode: %s\n", err);
        return 1;
    }
    pb_arena *arena = pb_arena_new(ARENA_CHUNK, 8 * max_record_bytes + (1u << 20));
    if (!arena) {
        fprintf(stderr, "logproc-bench-decode: out of memory creating the decode arena\n");
        recfile_reader_close(r);
        return 1;
    }
    ProtobufCAllocator *alloc = pb_arena_allocator(arena);
    const ProtobufCMessageDescriptor *desc = &event__log_request__descriptor;

    uint64_t records = 0, invalid = 0, bad_spans = 0, value_bytes = 0;
    children kids = {0};
    recfile_record rec;
    recfile_bad bad;
    int rc;
    while ((rc = recfile_next(r, &rec, &bad)) != 0) {
        if (rc == 2) {
            bad_spans++;
            continue;
        }
        records++;
        value_bytes += rec.value_len;
        if (mode == MODE_READ) continue;
        ProtobufCMessage *m = NULL;
        if (mode == MODE_BARE) {
            m = protobuf_c_message_unpack(desc, alloc, rec.value_len, rec.value);
        } else if (pb_unpack_checked(desc, rec.value, rec.value_len, alloc, &m, err,
                                     sizeof err)) {
            m = NULL;
        }
        if (m) count_children((const Event__LogRequest *)m, &kids);
        else invalid++;
        pb_arena_reset(arena, ARENA_KEEP);
    }
    uint64_t file_bytes = recfile_reader_size(r);
    double seconds = now_seconds() - t0;
    pb_arena_free(arena);
    recfile_reader_close(r);

    printf("{\"mode\": \"%s\", \"records\": %" PRIu64 ", \"invalid\": %" PRIu64
           ", \"bad_spans\": %" PRIu64 ", \"value_bytes\": %" PRIu64 ", \"file_bytes\": %" PRIu64
           ", \"seconds\": %.6f, \"children\": {\"user\": %" PRIu64
           ", \"cohort_membership\": %" PRIu64 ", \"view\": %" PRIu64 ", \"auto_view\": %" PRIu64
           ", \"request\": %" PRIu64 ", \"insertion\": %" PRIu64 ", \"delivery_log\": %" PRIu64
           ", \"response_insertion\": %" PRIu64 ", \"impression\": %" PRIu64
           ", \"action\": %" PRIu64 ", \"diagnostics\": %" PRIu64 "}}\n",
           mode_name(mode), records, invalid, bad_spans, value_bytes, file_bytes, seconds,
           kids.user, kids.cohort_membership, kids.view, kids.auto_view, kids.request,
           kids.insertion, kids.delivery_log, kids.response_insertion, kids.impression,
           kids.action, kids.diagnostics);
    return 0;
}
