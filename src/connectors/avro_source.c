/*
 * avro_source: archive tables -> an event-time ordered rt_source (backfill). The contract is in
 * avro_source.h; here: listing and partition times, the part readers, the merge heap, and the
 * lazy advance that keeps a returned record's bytes valid until the next call.
 */
#include "connectors/avro_source.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "event/event.pb-c.h"
#include "formats/avro_decode.h"
#include "formats/avro_schema.h"
#include "formats/pb_util.h"
#include "formats/record_file.h"
#include "logproc/join.pb-c.h"
#include "runtime/htab.h"
#include "runtime/log.h"
#include "schemas_embedded.h"

/* Arena for one decoded message: reset after each record. */
#define ARENA_CHUNK (256u * 1024)
#define ARENA_KEEP (4u * 1024 * 1024)

struct rentry;
typedef struct rentry rentry;

typedef struct part {
    char *key;      /* relative to the store root */
    int64_t pstart; /* partition start (ms), INT64_MIN outside a partition */
    uint64_t size;  /* listed size */
    /* from a part name part-<run>-<task>-<commit>-<seq>.avro (named = 1): commits follow
     * processing time, so parts of one commit hold records of about the same time */
    int named;
    uint64_t commit, seq;
    size_t run_off, run_len, task_off, task_len; /* into key */
    /* open state */
    int open, done;
    uint8_t *bytes; /* the file: mapped (local) or held (S3) */
    size_t len;
    int mapped;
    avdec_file *f;
    const uint8_t *dp, *dend; /* datums left in the current block */
    const uint8_t *bstart;    /* the block's (inflated) bytes */
    int64_t left, count;      /* datums left / in the block */
    uint64_t blk_offset;
    uint64_t consumed; /* bytes of blocks read (the position figure) */
    /* the current item */
    int bad;
    int64_t ts;
    rt_buf value, keybuf;
    char err[1024];
    const uint8_t *raw;
    size_t raw_len, full_len;
} part;

struct avsrc {
    rt_source src;
    char *spec, *flag;
    avsrc_kind kind;
    size_t max_record, max_open, max_object, max_held;
    int64_t lookahead;
    uint32_t shard, nshards;
    objstore *os;
    int s3;
    char *local_root;    /* local spec as given (no trailing '/') */
    char *where;         /* what the listing took, for messages */
    avsc_schema *schema; /* proto kinds */
    const char *schema_json;
    size_t schema_len;
    pb_arena *arena;
    part *parts;
    size_t nparts, cap_parts;
    size_t next_part; /* parts[next_part..] are not opened yet (sorted) */
    size_t *heap, nheap;
    size_t nopen, held;
    part *last; /* returned last: advanced at the next call */
    uint64_t consumed_closed;
    uint64_t items;
    uint64_t total;
    int warned_order, warned_reorder;
    int64_t emitted_max; /* the newest record time returned */
    /* the reorder stage */
    rentry **rheap;
    size_t nr, cap_r;
    size_t rbytes, max_reorder_bytes;
    int64_t reorder, rmax;
    uint64_t seq;
    int merge_done;
    struct rentry *out; /* returned last: freed at the next call */
    avsrc_stats st;
    char errbuf[1024];
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int avsrc_spec_is_tables(const char *spec)
{
    if (!spec) return 0;
    if (!strncmp(spec, "s3://", 5)) return 1;
    struct stat st;
    return stat(spec, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- kinds --------------------------------------------------------------------------------- */

static const char *const *tables_of(avsrc_kind k)
{
    static const char *const lr[] = {"raw/log-request", NULL};
    static const char *const je[] = {"etl/joined_impression", "etl/joined_action", NULL};
    static const char *const luu[] = {"raw/log-user-user", NULL};
    return k == AVSRC_LOG_REQUEST ? lr : k == AVSRC_JOINED_EVENT ? je : luu;
}

static const char *type_of(avsrc_kind k)
{
    return k == AVSRC_LOG_REQUEST    ? "event.LogRequest"
           : k == AVSRC_JOINED_EVENT ? "event.JoinedEvent"
                                     : "LogUserUser";
}

static int64_t first_nonzero(const Common__Timing *const *t, size_t n, int log)
{
    for (size_t i = 0; i < n; i++)
        if (t[i]) {
            uint64_t v = log ? t[i]->log_timestamp : t[i]->event_api_timestamp;
            if (v) return (int64_t)v;
        }
    return 0;
}

/* Record time and key of a decoded message; see avro_source.h. */
static int time_and_key(avsrc_kind k, const ProtobufCMessage *m, int64_t *ts, rt_buf *key)
{
    uint64_t platform = 0;
    const char *luid = NULL;
    if (k == AVSRC_LOG_REQUEST) {
        const Event__LogRequest *lr = (const Event__LogRequest *)m;
        *ts = lr->timing ? (int64_t)lr->timing->event_api_timestamp : 0;
        platform = lr->platform_id;
        luid = lr->user_info ? lr->user_info->log_user_id : NULL;
    } else {
        const Event__JoinedEvent *e = (const Event__JoinedEvent *)m;
        const Common__Timing *t[] = {e->timing, e->action ? e->action->timing : NULL,
                                     e->impression ? e->impression->timing : NULL};
        *ts = first_nonzero(t, 3, 1);
        if (e->ids) {
            platform = e->ids->platform_id;
            luid = e->ids->log_user_id;
        }
    }
    rt_buf_reset(key);
    size_t need = recfile_make_key(platform, luid ? luid : "", NULL, 0);
    if (rt_buf_reserve(key, need)) return -1;
    key->len = recfile_make_key(platform, luid ? luid : "", key->data, need);
    return 0;
}

/* ---- listing ------------------------------------------------------------------------------- */

/* Partition start of a key: its dt=YYYY-MM-DD segment and an hour=HH segment after it. */
static int64_t partition_start(const char *key)
{
    for (const char *p = key; (p = strstr(p, "dt=")) != NULL; p += 3) {
        if (p != key && p[-1] != '/') continue;
        int y, mo, d, n = 0;
        if (sscanf(p + 3, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) continue;
        if (p[13] != '/' && p[13] != 0) continue;
        int h = 0;
        if (!strncmp(p + 13, "/hour=", 6)) {
            int hn = 0;
            if (sscanf(p + 19, "%2d%n", &h, &hn) != 1 || hn != 2 || h < 0 || h > 23) h = 0;
        }
        if (mo < 1 || mo > 12 || d < 1 || d > 31) continue;
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        return (int64_t)timegm(&tm) * 1000;
    }
    return INT64_MIN;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

typedef struct list_ctx {
    avsrc *a;
    int failed;
    int any; /* set by the probe */
} list_ctx;

static int probe_cb(void *arg, const char *key, int64_t size)
{
    (void)key, (void)size;
    ((list_ctx *)arg)->any = 1;
    return 1; /* one is enough */
}

static void parse_part_name(part *p);

static int add_cb(void *arg, const char *key, int64_t size)
{
    list_ctx *c = arg;
    avsrc *a = c->a;
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    if (base[0] == '.' || !ends_with(key, ".avro")) return 0;
    if (a->nparts == AVSRC_MAX_PARTS) {
        c->failed = 2;
        return 1;
    }
    if (a->nparts == a->cap_parts) {
        size_t n = a->cap_parts ? a->cap_parts * 2 : 256;
        part *p = realloc(a->parts, n * sizeof *p);
        if (!p) {
            c->failed = 1;
            return 1;
        }
        a->parts = p;
        a->cap_parts = n;
    }
    part *p = &a->parts[a->nparts];
    memset(p, 0, sizeof *p);
    if (!(p->key = strdup(key))) {
        c->failed = 1;
        return 1;
    }
    p->pstart = partition_start(key);
    parse_part_name(p);
    p->size = size > 0 ? (uint64_t)size : 0;
    rt_buf_init(&p->value, a->max_record);
    rt_buf_init(&p->keybuf, a->max_record + 8);
    a->nparts++;
    a->total += p->size;
    return 0;
}

/* Parses part-<run>-<task>-<commit>-<seq>.<ext> (the task label may hold '-'). */
static void parse_part_name(part *p)
{
    const char *base = strrchr(p->key, '/');
    base = base ? base + 1 : p->key;
    if (strncmp(base, "part-", 5)) return;
    const char *dot = strrchr(base, '.');
    if (!dot) return;
    const char *d2 = dot, *d1, *d0;
    for (d1 = d2 - 1; d1 > base && *d1 != '-'; d1--)
        ;
    for (d0 = d1 - 1; d0 > base && *d0 != '-'; d0--)
        ;
    const char *run = base + 5, *rend = strchr(run, '-');
    if (d1 <= base || d0 <= base || !rend || rend >= d0) return;
    char *e;
    unsigned long long commit = strtoull(d0 + 1, &e, 10);
    if (e != d1) return;
    unsigned long long seq = strtoull(d1 + 1, &e, 10);
    if (e != d2) return;
    p->named = 1;
    p->commit = commit;
    p->seq = seq;
    p->run_off = (size_t)(run - p->key);
    p->run_len = (size_t)(rend - run);
    p->task_off = (size_t)(rend + 1 - p->key);
    p->task_len = (size_t)(d0 - rend - 1);
}

static int span_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : al < bl ? -1 : al > bl;
}

/* Partition, then (for named parts) commit and sequence before run and task: the parts every
 * task wrote at one commit come together, so parts are opened about in the time order of their
 * records even when a partition has more parts than may be open at once. */
static int part_cmp(const void *x, const void *y)
{
    const part *a = x, *b = y;
    if (a->pstart != b->pstart) return a->pstart < b->pstart ? -1 : 1;
    if (a->named && b->named) {
        if (a->commit != b->commit) return a->commit < b->commit ? -1 : 1;
        if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
        int c = span_cmp(a->key + a->run_off, a->run_len, b->key + b->run_off, b->run_len);
        if (c) return c;
        c = span_cmp(a->key + a->task_off, a->task_len, b->key + b->task_off, b->task_len);
        if (c) return c;
    }
    return strcmp(a->key, b->key);
}

static int list_parts(avsrc *a, char *err, size_t errlen)
{
    const char *const *tables = tables_of(a->kind);
    char why[1024];
    list_ctx c = {.a = a};
    size_t found = 0;
    /* an output root holds the kind's tables */
    for (size_t i = 0; tables[i]; i++) {
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s/", tables[i]);
        c.any = 0;
        if (objstore_list(a->os, prefix, probe_cb, &c, why, sizeof why)) goto list_failed;
        if (!c.any) continue;
        found++;
        if (objstore_list(a->os, prefix, add_cb, &c, why, sizeof why)) goto list_failed;
        if (c.failed) goto add_failed;
    }
    char tl[256] = "";
    for (size_t i = 0; tables[i]; i++) {
        size_t o = strlen(tl);
        snprintf(tl + o, sizeof tl - o, "%s%s/%s/", i ? " and " : "", a->spec, tables[i]);
    }
    if (found) {
        a->where = strdup(tl);
    } else {
        /* a table directory or a partition: every part under it */
        if (objstore_list(a->os, "", add_cb, &c, why, sizeof why)) goto list_failed;
        if (c.failed) goto add_failed;
        if (asprintf(&a->where, "%s/ (no %s under it)", a->spec, tl) < 0) a->where = NULL;
    }
    if (!a->where) {
        set_err(err, errlen, "--%s %s: out of memory", a->flag, a->spec);
        return -1;
    }
    if (!a->nparts) {
        set_err(err, errlen,
                "--%s %s: no Avro parts (*.avro, hidden names skipped) of %s: looked for %s, "
                "then for parts anywhere under %s",
                a->flag, a->spec, type_of(a->kind), tl, a->spec);
        return -1;
    }
    qsort(a->parts, a->nparts, sizeof *a->parts, part_cmp);
    return 0;
list_failed:
    set_err(err, errlen, "--%s %s: listing the tables: %s", a->flag, a->spec, why);
    return -1;
add_failed:
    if (c.failed == 2)
        set_err(err, errlen, "--%s %s: over %d parts: name a table or a partition instead", a->flag,
                a->spec, AVSRC_MAX_PARTS);
    else
        set_err(err, errlen, "--%s %s: out of memory listing the parts", a->flag, a->spec);
    return -1;
}

/* ---- part readers -------------------------------------------------------------------------- */

static void part_release(avsrc *a, part *p)
{
    avdec_file_free(p->f);
    p->f = NULL;
    if (p->bytes) {
        if (p->mapped)
            munmap(p->bytes, p->len);
        else
            free(p->bytes);
        if (!p->mapped && a->held >= p->len) a->held -= p->len;
    }
    p->bytes = NULL;
    p->len = 0;
}

static char *part_path(const avsrc *a, const part *p)
{
    char *path = NULL;
    if (a->s3) {
        if (asprintf(&path, "%s/%s", a->spec, p->key) < 0) return NULL;
    } else if (asprintf(&path, "%s/%s", a->local_root, p->key) < 0) {
        return NULL;
    }
    return path;
}

/* Reads the part's bytes: maps a local file, downloads an S3 object. 0, or -1 with err. */
static int part_load(avsrc *a, part *p, char *err, size_t errlen)
{
    if (a->s3) {
        rt_buf b;
        rt_buf_init(&b, a->max_object);
        char why[1024];
        int rc = objstore_get(a->os, p->key, &b, why, sizeof why);
        a->st.downloads++;
        if (rc) {
            rt_buf_free(&b);
            set_err(err, errlen, "--%s %s: reading part %s: %s", a->flag, a->spec, p->key,
                    rc == 1 ? "gone since it was listed" : why);
            return -1;
        }
        p->bytes = b.data; /* taken over from the buffer */
        p->len = b.len;
        p->mapped = 0;
        a->held += p->len;
        return 0;
    }
    char *path = part_path(a, p);
    if (!path) {
        set_err(err, errlen, "--%s %s: out of memory", a->flag, a->spec);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        set_err(err, errlen, "--%s %s: opening part %s: %s", a->flag, a->spec, path,
                strerror(errno));
        if (fd >= 0) close(fd);
        free(path);
        return -1;
    }
    free(path);
    p->len = (size_t)st.st_size;
    p->mapped = 1;
    if (p->len) {
        void *m = mmap(NULL, p->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            set_err(err, errlen, "--%s %s: mapping part %s: %s", a->flag, a->spec, p->key,
                    strerror(errno));
            close(fd);
            p->len = 0;
            return -1;
        }
        madvise(m, p->len, MADV_SEQUENTIAL);
        p->bytes = m;
    }
    close(fd);
    return 0;
}

/* Opens the container header and checks its schema. 0; 1 when the part is unreadable (a bad
 * span is set as its item); -1 with err for a foreign schema. */
static int part_header(avsrc *a, part *p, char *err, size_t errlen)
{
    char *path = part_path(a, p);
    char why[1024];
    if (!path) {
        set_err(err, errlen, "--%s %s: out of memory", a->flag, a->spec);
        return -1;
    }
    int rc = 0;
    if (avdec_file_open(p->bytes, p->len, path, 0, a->max_record, &p->f, why, sizeof why)) {
        p->bad = 1;
        p->ts = INT64_MIN;
        snprintf(p->err, sizeof p->err, "%s", why);
        p->raw = p->bytes;
        p->full_len = p->len;
        p->raw_len = p->len < a->max_record ? p->len : a->max_record;
        rc = 1;
    } else {
        size_t sl;
        const char *sj = avdec_file_schema(p->f, &sl);
        if (!avdec_schema_matches(sj, sl, a->schema_json, a->schema_len)) {
            set_err(err, errlen,
                    "--%s %s: %s holds records of another schema than logproc's %s table "
                    "(read from %s)",
                    a->flag, a->spec, path, type_of(a->kind), a->where);
            rc = -1;
        }
    }
    free(path);
    return rc;
}

static void part_bad(avsrc *a, part *p, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void part_bad(avsrc *a, part *p, const char *fmt, ...)
{
    (void)a;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->bad = 1;
    p->ts = INT64_MIN; /* a bad span goes first, as the task does */
}

/* The LogUserUser datum: platform_id, event_api_timestamp, log_user_id, user_id. */
static int luu_datum(part *p, size_t *used)
{
    const uint8_t *q = p->dp;
    int64_t platform, eat;
    const uint8_t *luid, *uid;
    size_t ll, ul;
    if (avdec_long(&q, p->dend, &platform) || avdec_long(&q, p->dend, &eat) ||
        avdec_blob(&q, p->dend, &luid, &ll) || avdec_blob(&q, p->dend, &uid, &ul))
        return -1;
    *used = (size_t)(q - p->dp);
    p->ts = eat;
    rt_buf_reset(&p->keybuf);
    if (rt_buf_reserve(&p->keybuf, 8 + ll)) return -2;
    for (int i = 0; i < 8; i++)
        p->keybuf.data[i] = (uint8_t)((uint64_t)platform >> (8 * i));
    if (ll) memcpy(p->keybuf.data + 8, luid, ll);
    p->keybuf.len = 8 + ll;
    return 0;
}

/*
 * Moves the part to its next item: 1 when it has one (a record or a bad span), 0 at its end,
 * -1 with err for a fatal error. Records of other shards are skipped here.
 */
static int part_advance(avsrc *a, part *p, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    for (;;) {
        p->bad = 0;
        if (p->left == 0) {
            if (p->dp && p->dp != p->dend) {
                size_t extra = (size_t)(p->dend - p->dp);
                p->raw = p->dp;
                p->full_len = extra;
                p->raw_len = extra < a->max_record ? extra : a->max_record;
                p->dp = p->dend;
                part_bad(a, p,
                         "%s: block at byte %" PRIu64 ": %zu bytes after its %" PRId64 " datums",
                         p->key, p->blk_offset, extra, p->count);
                return 1;
            }
            avdec_block b;
            avdec_bad bad;
            int r = avdec_file_next_block(p->f, &b, &bad);
            p->consumed = avdec_file_position(p->f);
            if (r == 0) return 0;
            if (r == 2) {
                p->dp = p->dend = NULL;
                p->raw = bad.raw;
                p->raw_len = bad.raw_len;
                p->full_len = bad.full_len;
                part_bad(a, p, "%s", bad.error);
                return 1;
            }
            p->dp = p->bstart = b.data;
            p->dend = b.data + b.len;
            p->left = p->count = b.count;
            p->blk_offset = b.offset;
            continue;
        }
        const uint8_t *start = p->dp;
        int64_t idx = p->count - p->left;
        size_t used = 0;
        char why[768];
        int rc;
        if (a->kind == AVSRC_LOG_USER_USER) {
            rc = luu_datum(p, &used);
            if (rc == 0) {
                rt_buf_reset(&p->value);
                if (used > a->max_record || rt_buf_reserve(&p->value, used ? used : 1)) {
                    rc = -3;
                } else {
                    memcpy(p->value.data, start, used);
                    p->value.len = used;
                }
            }
            snprintf(why, sizeof why, "%s",
                     rc == -3   ? "datum over --maxRecordBytes"
                     : rc == -2 ? "Kafka key over --maxRecordBytes"
                                : "not a LogUserUser datum");
        } else {
            ProtobufCMessage *m;
            avdec_stats ds = {0};
            rc = avdec_message(a->schema, start, (size_t)(p->dend - start),
                               pb_arena_allocator(a->arena), &m, &used, &ds, why, sizeof why);
            a->st.enum_unrecognized += ds.enum_unrecognized;
            if (rc == 0) {
                if (time_and_key(a->kind, m, &p->ts, &p->keybuf)) {
                    rc = -2;
                    snprintf(why, sizeof why, "Kafka key over --maxRecordBytes");
                } else {
                    size_t n = protobuf_c_message_get_packed_size(m);
                    rt_buf_reset(&p->value);
                    if (n > a->max_record || rt_buf_reserve(&p->value, n ? n : 1)) {
                        rc = -2;
                        snprintf(why, sizeof why,
                                 "packed %s of %zu bytes over --maxRecordBytes %zu",
                                 type_of(a->kind), n, a->max_record);
                    } else {
                        p->value.len = protobuf_c_message_pack(m, p->value.data);
                    }
                }
            }
            pb_arena_reset(a->arena, ARENA_KEEP);
        }
        if (rc) {
            /* the datum's end is unknown: the rest of the block goes with it (the whole
             * block when nothing is left: a count that promised more datums) */
            p->raw = start < p->dend ? start : p->bstart;
            p->full_len = (size_t)(p->dend - p->raw);
            p->raw_len = p->full_len < a->max_record ? p->full_len : a->max_record;
            p->dp = p->dend;
            p->left = 0;
            part_bad(a, p, "%s: block at byte %" PRIu64 ", datum %" PRId64 " of %" PRId64 ": %s",
                     p->key, p->blk_offset, idx, p->count, why);
            return 1;
        }
        p->dp += used;
        p->left--;
        if (a->nshards > 1 &&
            rt_hash_bytes(p->keybuf.data, p->keybuf.len) % a->nshards != a->shard) {
            a->st.skipped_shard++;
            continue;
        }
        return 1;
    }
}

/* ---- the heap ------------------------------------------------------------------------------ */

static int before(const avsrc *a, size_t x, size_t y)
{
    const part *p = &a->parts[x], *q = &a->parts[y];
    if (p->ts != q->ts) return p->ts < q->ts;
    return x < y;
}

static void heap_push(avsrc *a, size_t i)
{
    size_t k = a->nheap++;
    a->heap[k] = i;
    while (k) {
        size_t up = (k - 1) / 2;
        if (!before(a, a->heap[k], a->heap[up])) break;
        size_t t = a->heap[k];
        a->heap[k] = a->heap[up];
        a->heap[up] = t;
        k = up;
    }
}

static size_t heap_pop(avsrc *a)
{
    size_t top = a->heap[0];
    a->heap[0] = a->heap[--a->nheap];
    size_t k = 0;
    for (;;) {
        size_t l = 2 * k + 1, r = l + 1, m = k;
        if (l < a->nheap && before(a, a->heap[l], a->heap[m])) m = l;
        if (r < a->nheap && before(a, a->heap[r], a->heap[m])) m = r;
        if (m == k) break;
        size_t t = a->heap[k];
        a->heap[k] = a->heap[m];
        a->heap[m] = t;
        k = m;
    }
    return top;
}

static void part_close(avsrc *a, part *p)
{
    a->consumed_closed += p->len ? p->len : p->size;
    p->consumed = 0;
    part_release(a, p);
    rt_buf_free(&p->value);
    rt_buf_free(&p->keybuf);
    p->open = 0;
    p->done = 1;
    a->nopen--;
}

/* Takes the part's next item into the heap, or closes it at its end. */
static int part_next_into_heap(avsrc *a, size_t i, char *err, size_t errlen)
{
    part *p = &a->parts[i];
    int r = part_advance(a, p, err, errlen);
    if (r < 0) return -1;
    if (r == 0) {
        part_close(a, p);
        return 0;
    }
    heap_push(a, i);
    return 0;
}

static int open_part(avsrc *a, size_t i, char *err, size_t errlen)
{
    part *p = &a->parts[i];
    if (part_load(a, p, err, errlen)) return -1;
    p->open = 1;
    a->nopen++;
    int h = part_header(a, p, err, errlen);
    if (h < 0) return -1;
    if (h == 1) { /* unreadable header: one bad span for the part, then it ends */
        avdec_file_free(p->f);
        p->f = NULL;
        if (a->shard == 0 || a->nshards <= 1) {
            heap_push(a, i);
            return 0;
        }
        part_close(a, p);
        return 0;
    }
    return part_next_into_heap(a, i, err, errlen);
}

/* Opens the parts whose partition may hold records due before the heap's next one. */
static int fill(avsrc *a, char *err, size_t errlen)
{
    while (a->next_part < a->nparts) {
        part *p = &a->parts[a->next_part];
        int due;
        if (!a->nheap) {
            due = 1;
        } else {
            int64_t t = a->parts[a->heap[0]].ts;
            due = p->pstart == INT64_MIN ||
                  (t != INT64_MIN &&
                   p->pstart <= (t > INT64_MAX - a->lookahead ? INT64_MAX : t + a->lookahead));
        }
        if (!due) break;
        /* at a limit the next part waits for an open one to end (see late_parts) */
        if (a->nheap && (a->nopen >= a->max_open || (a->s3 && a->held + p->size > a->max_held)))
            break;
        size_t i = a->next_part++;
        if (open_part(a, i, err, errlen)) return -1;
        if (p->open && !p->bad && p->ts < a->emitted_max) {
            /* its first record is older than one already returned: out of order */
            a->st.late_parts++;
            if (!a->warned_order) {
                a->warned_order = 1;
                log_warn("backfill",
                         "source=%s: part %s starts at %" PRId64 ", before the event time already "
                         "replayed (%" PRId64 "): %zu parts open (limit %zu, %zu bytes held of "
                         "%zu), so some records arrive out of event-time order",
                         a->spec, p->key, p->ts, a->emitted_max, a->nopen, a->max_open, a->held,
                         a->max_held);
            }
        }
    }
    return 0;
}

/* Advances the part taken last, opens what is due; the heap's top is then the merge's next
 * item. Returns 1 with an item at the top, 0 at the end, -1 on error. */
static int merge_prepare(avsrc *a, char *err, size_t errlen)
{
    if (a->last) {
        part *p = a->last;
        a->last = NULL;
        if (!p->f) { /* the unreadable-header span was its only item */
            part_close(a, p);
        } else if (part_next_into_heap(a, (size_t)(p - a->parts), err, errlen)) {
            return -1;
        }
    }
    if (fill(a, err, errlen)) return -1;
    return a->nheap ? 1 : 0;
}

/* ---- the reorder stage ----------------------------------------------------------------------
 * Parts hold records in the order they were written (Kafka append order), which is not quite
 * the record time's order; the merge's output goes through a heap that holds records until one
 * `reorder` window of record time has passed them (or the byte limit is reached), so the job
 * sees them sorted. Entries are copies: a part's bytes change when it moves on. */

typedef struct rentry {
    int64_t ts;
    uint64_t seq; /* merge order, for ties */
    int bad;
    size_t klen, vlen, raw_length;
    char *error;     /* bad spans */
    char *name;      /* bad spans: the part file */
    uint8_t bytes[]; /* key, then value */
} rentry;

static int rbefore(const rentry *x, const rentry *y)
{
    if (x->ts != y->ts) return x->ts < y->ts;
    return x->seq < y->seq;
}

static void rheap_push(avsrc *a, rentry *e)
{
    size_t k = a->nr++;
    a->rheap[k] = e;
    while (k) {
        size_t up = (k - 1) / 2;
        if (!rbefore(a->rheap[k], a->rheap[up])) break;
        rentry *t = a->rheap[k];
        a->rheap[k] = a->rheap[up];
        a->rheap[up] = t;
        k = up;
    }
}

static rentry *rheap_pop(avsrc *a)
{
    rentry *top = a->rheap[0];
    a->rheap[0] = a->rheap[--a->nr];
    size_t k = 0;
    for (;;) {
        size_t l = 2 * k + 1, r = l + 1, m = k;
        if (l < a->nr && rbefore(a->rheap[l], a->rheap[m])) m = l;
        if (r < a->nr && rbefore(a->rheap[r], a->rheap[m])) m = r;
        if (m == k) break;
        rentry *t = a->rheap[k];
        a->rheap[k] = a->rheap[m];
        a->rheap[m] = t;
        k = m;
    }
    return top;
}

static void rentry_free(avsrc *a, rentry *e)
{
    if (!e) return;
    a->rbytes -= sizeof *e + e->klen + e->vlen;
    free(e->error);
    free(e->name);
    free(e);
}

/* Moves the merge's next item into the reorder heap. Returns 0 or -1 with err. */
static int merge_take(avsrc *a, char *err, size_t errlen)
{
    if (a->nr == a->cap_r) {
        size_t n = a->cap_r ? a->cap_r * 2 : 1024;
        rentry **h = realloc(a->rheap, n * sizeof *h);
        if (!h) goto oom;
        a->rheap = h;
        a->cap_r = n;
    }
    size_t i = heap_pop(a);
    part *p = &a->parts[i];
    a->last = p;
    size_t klen = p->bad ? 0 : p->keybuf.len;
    size_t vlen = p->bad ? p->raw_len : p->value.len;
    rentry *e = malloc(sizeof *e + klen + vlen);
    if (!e) goto oom;
    e->ts = p->ts;
    e->seq = a->seq++;
    e->bad = p->bad;
    e->klen = klen;
    e->vlen = vlen;
    e->raw_length = p->bad ? p->full_len : p->value.len;
    e->error = e->name = NULL;
    if (klen) memcpy(e->bytes, p->keybuf.data, klen);
    if (vlen) memcpy(e->bytes + klen, p->bad ? p->raw : p->value.data, vlen);
    if (p->bad && (!(e->error = strdup(p->err)) || !(e->name = part_path(a, p)))) {
        free(e->error);
        free(e);
        goto oom;
    }
    a->rbytes += sizeof *e + klen + vlen;
    if (!e->bad && e->ts > a->rmax) a->rmax = e->ts;
    rheap_push(a, e);
    return 0;
oom:
    set_err(err, errlen, "--%s %s: out of memory reordering records", a->flag, a->spec);
    return -1;
}

/* Fills the reorder heap until its smallest record may go: a record `reorder` ms newer than it
 * has been read, or the input is read, or the byte limit is reached. 1 with an item ready, 0 at
 * the end, -1 on error. */
static int prepare(avsrc *a, char *err, size_t errlen)
{
    for (;;) {
        if (a->nr) {
            const rentry *top = a->rheap[0];
            /* rmax >= top->ts here, so the unsigned difference is exact */
            if (top->bad || a->merge_done ||
                (uint64_t)a->rmax - (uint64_t)top->ts >= (uint64_t)a->reorder)
                return 1;
            if (a->rbytes >= a->max_reorder_bytes) {
                a->st.reorder_full++;
                if (!a->warned_reorder) {
                    a->warned_reorder = 1;
                    log_warn("backfill",
                             "source=%s: the reorder window holds %zu bytes (limit %zu): records "
                             "go on before the window has passed them",
                             a->spec, a->rbytes, a->max_reorder_bytes);
                }
                return 1;
            }
        }
        if (a->merge_done) return 0;
        int r = merge_prepare(a, err, errlen);
        if (r < 0) return -1;
        if (r == 0) {
            a->merge_done = 1;
            continue;
        }
        if (merge_take(a, err, errlen)) return -1;
    }
}

/* The position figure: see avro_source.h. */
static int64_t figure(const avsrc *a)
{
    uint64_t c = a->consumed_closed;
    for (size_t k = 0; k < a->nheap; k++)
        c += a->parts[a->heap[k]].consumed;
    if (a->last && a->last->open) c += a->last->consumed;
    return (int64_t)(c + a->items);
}

static int src_next(rt_source *src, rt_source_record *out, char *err, size_t errlen)
{
    avsrc *a = src->self;
    a->src.name = a->spec;
    rentry_free(a, a->out);
    a->out = NULL;
    int r = prepare(a, err, errlen);
    if (r < 0) return -1;
    if (r == 0) return RT_SOURCE_END;
    int64_t off = figure(a);
    rentry *e = a->out = rheap_pop(a);
    a->items++;
    memset(out, 0, sizeof *out);
    out->offset = off;
    out->raw_length = e->raw_length;
    if (e->bad) {
        a->st.bad++;
        /* the task names a record's source by rt_source.name, read when it pushes the span
         * (before the next call): the part file tells where the bad bytes are */
        a->src.name = e->name;
        out->ts = -1;
        out->value = e->bytes;
        out->value_len = e->vlen;
        out->error = e->error;
        return RT_SOURCE_BAD;
    }
    a->st.records++;
    if (e->ts > a->emitted_max) a->emitted_max = e->ts;
    out->ts = e->ts;
    out->key = e->bytes;
    out->key_len = e->klen;
    out->value = e->bytes + e->klen;
    out->value_len = e->vlen;
    return RT_SOURCE_RECORD;
}

static int64_t src_position(const rt_source *src)
{
    return figure(src->self);
}

int avsrc_seek(avsrc *a, int64_t position, char *err, size_t errlen)
{
    for (;;) {
        int r = prepare(a, err, errlen);
        if (r < 0) return -1;
        if (figure(a) >= position) return 0;
        if (r == 0) {
            set_err(err, errlen, "--%s %s: position %" PRId64 " is past the end (%" PRId64 ")",
                    a->flag, a->spec, position, figure(a));
            return -1;
        }
        rentry_free(a, rheap_pop(a));
        a->items++;
    }
}

/* ---- open / free --------------------------------------------------------------------------- */

int avsrc_open(const avsrc_config *cfg, avsrc **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *flag = cfg->flag ? cfg->flag : "source";
    avsrc *a = calloc(1, sizeof *a);
    if (!a || !(a->spec = strdup(cfg->spec)) || !(a->flag = strdup(flag))) {
        if (a) free(a->spec);
        free(a);
        set_err(err, errlen, "--%s %s: out of memory", flag, cfg->spec);
        return -1;
    }
    size_t sl = strlen(a->spec);
    while (sl > 1 && a->spec[sl - 1] == '/')
        a->spec[--sl] = 0;
    a->kind = cfg->kind;
    a->max_record = cfg->max_record_bytes ? cfg->max_record_bytes : AVSRC_DEFAULT_MAX_RECORD_BYTES;
    a->max_open = cfg->max_open ? cfg->max_open : AVSRC_DEFAULT_MAX_OPEN;
    a->max_object = cfg->max_object_bytes ? cfg->max_object_bytes : AVSRC_DEFAULT_MAX_OBJECT_BYTES;
    a->max_held = cfg->max_held_bytes ? cfg->max_held_bytes : AVSRC_DEFAULT_MAX_HELD_BYTES;
    a->lookahead = cfg->lookahead_ms > 0 ? cfg->lookahead_ms
                   : cfg->lookahead_ms < 0 || a->kind != AVSRC_JOINED_EVENT
                       ? 0
                       : AVSRC_DEFAULT_LOOKAHEAD_JOINED_MS;
    a->reorder = cfg->reorder_ms > 0   ? cfg->reorder_ms
                 : cfg->reorder_ms < 0 ? 0
                                       : AVSRC_DEFAULT_REORDER_MS;
    a->max_reorder_bytes =
        cfg->max_reorder_bytes ? cfg->max_reorder_bytes : AVSRC_DEFAULT_MAX_REORDER_BYTES;
    a->rmax = INT64_MIN;
    a->emitted_max = INT64_MIN;
    a->shard = cfg->shard;
    a->nshards = cfg->nshards > 1 ? cfg->nshards : 1;
    a->s3 = !strncmp(a->spec, "s3://", 5);
    a->src.name = a->spec;
    a->src.partition = -1;
    a->src.finite = 1;
    a->src.self = a;
    a->src.next = src_next;
    a->src.position = src_position;
    char why[1024];
    if (a->kind == AVSRC_LOG_USER_USER) {
        a->schema_json = embedded_schema("log_user_user");
        if (!a->schema_json) {
            set_err(err, errlen, "--%s %s: no embedded LogUserUser schema", a->flag, a->spec);
            goto fail;
        }
        a->schema_len = strlen(a->schema_json);
    } else {
        const ProtobufCMessageDescriptor *d = a->kind == AVSRC_LOG_REQUEST
                                                  ? &event__log_request__descriptor
                                                  : &event__joined_event__descriptor;
        if (avsc_schema_new(d, &a->schema, why, sizeof why)) {
            set_err(err, errlen, "--%s %s: %s", a->flag, a->spec, why);
            goto fail;
        }
        a->schema_json = avsc_schema_json(a->schema, &a->schema_len);
        if (!(a->arena = pb_arena_new(ARENA_CHUNK, 16 * a->max_record + ARENA_CHUNK))) {
            set_err(err, errlen, "--%s %s: out of memory", a->flag, a->spec);
            goto fail;
        }
    }
    if (!a->s3 && !(a->local_root = strdup(a->spec))) {
        set_err(err, errlen, "--%s %s: out of memory", a->flag, a->spec);
        goto fail;
    }
    if (objstore_open(a->spec, cfg->s3, &a->os, why, sizeof why)) {
        set_err(err, errlen, "--%s %s: %s", a->flag, a->spec, why);
        goto fail;
    }
    if (list_parts(a, err, errlen)) goto fail;
    if (!(a->heap = calloc(a->nparts, sizeof *a->heap))) {
        set_err(err, errlen, "--%s %s: out of memory", a->flag, a->spec);
        goto fail;
    }
    if (!a->s3) {
        /* local headers are cheap to read: a wrong directory fails here, not hours later */
        for (size_t i = 0; i < a->nparts; i++) {
            part *p = &a->parts[i];
            int rc = part_load(a, p, err, errlen);
            if (!rc && part_header(a, p, err, errlen) < 0) rc = -1;
            avdec_file_free(p->f);
            p->f = NULL;
            p->bad = 0;
            part_release(a, p);
            if (rc) goto fail;
        }
    }
    *out = a;
    return 0;
fail:
    avsrc_free(a);
    return -1;
}

rt_source *avsrc_source(avsrc *a)
{
    return &a->src;
}

uint64_t avsrc_total_bytes(const avsrc *a)
{
    return a->total;
}

size_t avsrc_parts(const avsrc *a)
{
    return a->nparts;
}

void avsrc_get_stats(const avsrc *a, avsrc_stats *out)
{
    *out = a->st;
}

void avsrc_free(avsrc *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->nparts; i++) {
        part *p = &a->parts[i];
        part_release(a, p);
        rt_buf_free(&p->value);
        rt_buf_free(&p->keybuf);
        free(p->key);
    }
    free(a->parts);
    free(a->heap);
    objstore_free(a->os);
    avsc_schema_free(a->schema);
    pb_arena_free(a->arena);
    free(a->local_root);
    free(a->where);
    rentry_free(a, a->out);
    while (a->nr)
        rentry_free(a, rheap_pop(a));
    free(a->rheap);
    free(a->spec);
    free(a->flag);
    free(a);
}
