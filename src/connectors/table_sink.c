#include "connectors/table_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP 4096
#define MAX_PUBLISHED_KEPT 100000 /* published names kept for reporting; older ones are dropped */

typedef struct open_part {
    int64_t bucket; /* hour (or day) number since the epoch */
    void *writer;
    char *tmp;       /* full in-progress path (in the staging directory with a store) */
    char *final;     /* full final path, or the store key */
    uint64_t last_use;
    uint64_t records;
} open_part;

typedef struct pending_part {
    char *tmp, *final; /* local: in-progress and final paths; staged: tmp NULL, final the key */
    char *handle;      /* the store's staging handle, NULL for a local part */
    uint64_t bytes;    /* staged size (local parts: stat at publish) */
    bool recorded;     /* in a snapshot: a durable checkpoint may still publish it */
} pending_part;

struct table_sink {
    char *dir, *run_id, *task;
    char *local_dir; /* where parts are written: dir, or staging_dir/dir with a store */
    objstore *store; /* NULL: local table */
    bool daily, unpartitioned;
    size_t max_open;
    table_format fmt;
    open_part *open;
    size_t nopen;
    pending_part *pending;
    size_t npending, cap_pending;
    char **published;
    size_t npublished, cap_published;
    uint64_t commit, seq, tick;
    table_sink_stats stats;
};

static int mkdirs(const char *path)
{
    char tmp[PATH_CAP];
    size_t n = strlen(path);
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == 0) {
            char c = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
            tmp[i] = c;
        }
    }
    return 0;
}

void table_sink_partition(int64_t ts_ms, bool daily, char *buf, size_t cap)
{
    /* floor division so negative timestamps land in the hour before the epoch */
    int64_t secs = ts_ms >= 0 ? ts_ms / 1000 : -((-ts_ms + 999) / 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    if (daily)
        snprintf(buf, cap, "dt=%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    else
        snprintf(buf, cap, "dt=%04d-%02d-%02d/hour=%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour);
}

static int64_t bucket_of(int64_t ts_ms, bool daily)
{
    int64_t span = daily ? 86400000 : 3600000;
    return ts_ms >= 0 ? ts_ms / span : -((-ts_ms + span - 1) / span);
}

int table_sink_new(const table_sink_config *cfg, table_sink **out, char *err, size_t errlen)
{
    table_sink *s = calloc(1, sizeof *s);
    if (!s) return snprintf(err, errlen, "out of memory"), -1;
    if (cfg->store_url) {
        if (!cfg->staging_dir || !*cfg->staging_dir) {
            free(s);
            return snprintf(err, errlen, "table %s: a store needs a staging directory", cfg->dir), -1;
        }
        /* a key prefix: no leading or trailing '/' */
        const char *d = cfg->dir;
        while (*d == '/') d++;
        size_t n = strlen(d);
        while (n && d[n - 1] == '/') n--;
        s->dir = strndup(d, n);
        if (s->dir && asprintf(&s->local_dir, "%s%s%s", cfg->staging_dir, n ? "/" : "", s->dir) < 0)
            s->local_dir = NULL;
        if (s->dir && s->local_dir &&
            objstore_open(cfg->store_url, cfg->store_cfg, &s->store, err, errlen)) {
            table_sink_free(s);
            return -1;
        }
    } else {
        s->dir = strdup(cfg->dir);
        s->local_dir = s->dir ? strdup(s->dir) : NULL;
    }
    s->run_id = strdup(cfg->run_id);
    s->task = strdup(cfg->task);
    s->daily = cfg->daily;
    s->unpartitioned = cfg->unpartitioned;
    s->max_open = cfg->max_open ? cfg->max_open : 16;
    s->fmt = cfg->format;
    s->open = calloc(s->max_open, sizeof *s->open);
    if (!s->dir || !s->local_dir || !s->run_id || !s->task || !s->open) {
        table_sink_free(s);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    /* directories appear with the first part: a table that gets no record has none (§14.2) */
    *out = s;
    return 0;
}

static int add_pending(table_sink *s, char *tmp, char *final, char *handle, uint64_t bytes,
                       bool recorded)
{
    if (s->npending == s->cap_pending) {
        size_t cap = s->cap_pending ? s->cap_pending * 2 : 16;
        pending_part *p = realloc(s->pending, cap * sizeof *p);
        if (!p) return -1;
        s->pending = p;
        s->cap_pending = cap;
    }
    s->pending[s->npending] = (pending_part){tmp, final, handle, bytes, recorded};
    s->npending++;
    return 0;
}

/* Uploads a closed part to the store, uncompleted, and removes the local file: the pending entry
 * keeps (key, handle). */
static int stage_closed(table_sink *s, open_part *p, char *err, size_t errlen)
{
    struct stat st;
    if (stat(p->tmp, &st)) {
        snprintf(err, errlen, "staging %s: %s", p->tmp, strerror(errno));
        unlink(p->tmp);
        return -1;
    }
    char *handle = NULL;
    int rc = objstore_stage_file(s->store, p->final, p->tmp, &handle, err, errlen);
    unlink(p->tmp);
    free(p->tmp);
    p->tmp = NULL;
    if (rc) return -1;
    if (add_pending(s, NULL, p->final, handle, (uint64_t)st.st_size, false)) {
        objstore_abort(s->store, p->final, handle, err, errlen);
        free(handle);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

/* Closes open part i into the pending list. */
static int close_open(table_sink *s, size_t i, char *err, size_t errlen)
{
    open_part p = s->open[i];
    s->open[i] = s->open[--s->nopen];
    int rc = s->fmt.close_part(p.writer, err, errlen);
    if (!rc && s->store) {
        if (!stage_closed(s, &p, err, errlen)) return 0;
        free(p.final);
        return -1;
    }
    if (rc || add_pending(s, p.tmp, p.final, NULL, 0, false)) {
        unlink(p.tmp);
        free(p.tmp);
        free(p.final);
        if (!rc) snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

typedef struct key_probe {
    const char *key;
    int found;
} key_probe;

static int probe_key(void *arg, const char *key, int64_t size)
{
    (void)size;
    key_probe *p = arg;
    if (!strcmp(key, p->key)) p->found = 1;
    return p->found;
}

/* 1 when the final name (path or key) of a new part is already taken, 0 when free, -1 on a store
 * error. */
static int final_exists(table_sink *s, const char *final, char *err, size_t errlen)
{
    if (!s->store) return access(final, F_OK) == 0;
    key_probe p = {final, 0};
    char why[768];
    if (objstore_list(s->store, final, probe_key, &p, why, sizeof why)) {
        snprintf(err, errlen, "checking that %s/%s is not published yet: %s", objstore_url(s->store),
                 final, why);
        return -1;
    }
    return p.found;
}

static int open_new(table_sink *s, int64_t ts_ms, int64_t bucket, open_part **out, char *err,
                    size_t errlen)
{
    if (s->nopen == s->max_open) {
        size_t lru = 0;
        for (size_t i = 1; i < s->nopen; i++)
            if (s->open[i].last_use < s->open[lru].last_use) lru = i;
        if (close_open(s, lru, err, errlen)) return -1;
    }
    char part[64] = "", dir[PATH_CAP], name[160];
    if (s->unpartitioned) {
        snprintf(dir, sizeof dir, "%s", s->local_dir);
    } else {
        table_sink_partition(ts_ms, s->daily, part, sizeof part);
        snprintf(dir, sizeof dir, "%s/%s", s->local_dir, part);
    }
    if (mkdirs(dir)) {
        snprintf(err, errlen, "partition directory %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(name, sizeof name, "part-%s-%s-%llu-%llu.%s", s->run_id, s->task,
             (unsigned long long)s->commit, (unsigned long long)s->seq++, s->fmt.ext);
    open_part p = {0};
    p.bucket = bucket;
    if (asprintf(&p.tmp, "%s/.%s.inprogress", dir, name) < 0) p.tmp = NULL;
    int n;
    if (!s->store)
        n = asprintf(&p.final, "%s/%s", dir, name);
    else /* the key: dir, partition and name, with no empty segment */
        n = asprintf(&p.final, "%s%s%s%s%s", s->dir, *s->dir ? "/" : "", part, *part ? "/" : "",
                     name);
    if (n < 0) p.final = NULL;
    if (!p.tmp || !p.final) {
        free(p.tmp);
        free(p.final);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    int taken = final_exists(s, p.final, err, errlen);
    if (taken) {
        if (taken > 0)
            snprintf(err, errlen, "part %s%s%s is already published: refusing to overwrite it "
                     "(reused --runId?)", s->store ? objstore_url(s->store) : "",
                     s->store ? "/" : "", p.final);
        free(p.tmp);
        free(p.final);
        return -1;
    }
    if (s->fmt.open_part(s->fmt.ctx, p.tmp, &p.writer, err, errlen)) {
        free(p.tmp);
        free(p.final);
        return -1;
    }
    s->open[s->nopen] = p;
    *out = &s->open[s->nopen++];
    return 0;
}

int table_sink_write(table_sink *s, int64_t ts_ms, const void *bytes, size_t len, char *err,
                     size_t errlen)
{
    int64_t bucket = s->unpartitioned ? 0 : bucket_of(ts_ms, s->daily);
    open_part *p = NULL;
    for (size_t i = 0; i < s->nopen; i++)
        if (s->open[i].bucket == bucket) {
            p = &s->open[i];
            break;
        }
    if (!p && open_new(s, ts_ms, bucket, &p, err, errlen)) return -1;
    p->last_use = ++s->tick;
    if (s->fmt.append(p->writer, bytes, len, err, errlen)) return -1;
    p->records++;
    s->stats.records++;
    return 0;
}

/* replaying: the part comes from a restored checkpoint and may have been published before the
 * crash (then the final name exists, and the hidden one may still be there). */
static int publish(const char *tmp, const char *final, int replaying, char *err, size_t errlen)
{
    /* link + unlink: fails with EEXIST instead of replacing a published part */
    if (link(tmp, final)) {
        int e = errno;
        if (replaying && (e == EEXIST || e == ENOENT) && access(final, F_OK) == 0) {
            unlink(tmp);
            return 0;
        }
        snprintf(err, errlen, "publishing %s: %s", final,
                 e == EEXIST ? "already published (refusing to overwrite)"
                 : e == ENOENT ? "its pending part is gone (deleted outside logproc?)"
                               : strerror(e));
        return -1;
    }
    unlink(tmp);
    return 0;
}

static void remember(table_sink *s, const char *final)
{
    size_t skip = strlen(s->dir);
    if (skip && !strncmp(final, s->dir, skip) && final[skip] == '/') skip++;
    else skip = 0;
    if (s->npublished >= MAX_PUBLISHED_KEPT) return;
    if (s->npublished == s->cap_published) {
        size_t cap = s->cap_published ? s->cap_published * 2 : 16;
        char **p = realloc(s->published, cap * sizeof *p);
        if (!p) return;
        s->published = p;
        s->cap_published = cap;
    }
    char *rel = strdup(final + skip);
    if (rel) s->published[s->npublished++] = rel;
}

static int publish_pending(table_sink *s, int replaying, char *err, size_t errlen)
{
    size_t done = 0;
    int rc = 0;
    for (; done < s->npending; done++) {
        pending_part *p = &s->pending[done];
        if (p->handle) {
            if (!s->store) {
                snprintf(err, errlen, "table %s: a restored part (%s) was staged in an object "
                         "store, but this run's output is local", s->dir, p->final);
                rc = -1;
                break;
            }
            /* the store makes a second publish of the same handle a no-op */
            if (objstore_publish(s->store, p->final, p->handle, err, errlen)) {
                rc = -1;
                break;
            }
            s->stats.bytes_published += p->bytes;
        } else {
            if (publish(p->tmp, p->final, replaying, err, errlen)) {
                rc = -1;
                break;
            }
            struct stat st;
            if (!stat(p->final, &st)) s->stats.bytes_published += (uint64_t)st.st_size;
        }
        s->stats.parts_published++;
        remember(s, p->final);
        free(p->tmp);
        free(p->final);
        free(p->handle);
    }
    if (done && done < s->npending)
        memmove(s->pending, s->pending + done, (s->npending - done) * sizeof *s->pending);
    s->npending -= done;
    return rc;
}

int table_sink_precommit(table_sink *s, char *err, size_t errlen)
{
    while (s->nopen)
        if (close_open(s, s->nopen - 1, err, errlen)) return -1;
    s->commit++;
    s->seq = 0;
    s->stats.commits++;
    return 0;
}

int table_sink_publish(table_sink *s, char *err, size_t errlen)
{
    return publish_pending(s, 0, err, errlen);
}

int table_sink_commit(table_sink *s, char *err, size_t errlen)
{
    if (table_sink_precommit(s, err, errlen)) return -1;
    return publish_pending(s, 0, err, errlen);
}

/* Version 1: commit, then (tmp path, final path) per pending part. Version 2 adds the store
 * handle ("" for a local part; then tmp is "" for a staged one) and the staged size. */
#define SNAP_VERSION 3

/* Version 3 stores a path under the table's directory relative to it (u8 1, then the rest), any
 * other path whole (u8 0, then the path), so a savepoint restores under another output root. */
static int put_path(const table_sink *s, rt_buf *out, const char *path)
{
    size_t n = strlen(s->dir);
    if (n && !strncmp(path, s->dir, n) && path[n] == '/')
        return rt_buf_put_u8(out, 1) < 0 || rt_buf_put_str(out, path + n + 1) < 0 ? -1 : 0;
    return rt_buf_put_u8(out, 0) < 0 || rt_buf_put_str(out, path) < 0 ? -1 : 0;
}

int table_sink_snapshot(table_sink *s, rt_buf *out)
{
    if (rt_buf_put_u32(out, SNAP_VERSION) < 0 || rt_buf_put_u64(out, s->commit) < 0 ||
        rt_buf_put_u32(out, (uint32_t)s->npending) < 0)
        return -1;
    for (size_t i = 0; i < s->npending; i++) {
        const pending_part *p = &s->pending[i];
        if (put_path(s, out, p->tmp ? p->tmp : "") < 0 || put_path(s, out, p->final) < 0 ||
            rt_buf_put_str(out, p->handle ? p->handle : "") < 0 || rt_buf_put_u64(out, p->bytes) < 0)
            return -1;
    }
    for (size_t i = 0; i < s->npending; i++) s->pending[i].recorded = true;
    return 0;
}

#define HANDLE_CAP 65536 /* an S3 handle holds an ETag per part: 10 000 parts fit */

static char *read_str(rt_buf_reader *r, size_t cap)
{
    const uint8_t *p;
    size_t n;
    if (rt_buf_read_bytes(r, &p, &n) < 0 || n >= cap || memchr(p, 0, n)) return NULL;
    return strndup((const char *)p, n);
}

static char *read_path(rt_buf_reader *r)
{
    return read_str(r, PATH_CAP);
}

/* A version-3 path: relative to the table's directory, or whole. */
static char *read_path3(const table_sink *s, rt_buf_reader *r)
{
    uint8_t rel;
    if (rt_buf_read_u8(r, &rel) < 0 || rel > 1) return NULL;
    char *p = read_path(r);
    if (!p || !rel) return p;
    char *full = NULL;
    if (asprintf(&full, "%s/%s", s->dir, p) < 0 || strlen(full) >= PATH_CAP) {
        free(full);
        full = NULL;
    }
    free(p);
    return full;
}

/* A path a snapshot names must lie inside the table (or, for a part's local file, inside its
 * local directory), with no ".." step: a tampered or foreign checkpoint must not make the
 * restore link or delete files elsewhere. "" (absent) passes. */
static int path_inside(const table_sink *s, const char *p)
{
    if (!p || !*p) return 1;
    for (const char *q = p; (q = strstr(q, "..")); q += 2)
        if ((q == p || q[-1] == '/') && (q[2] == 0 || q[2] == '/')) return 0;
    const char *roots[2] = {s->dir, s->local_dir};
    for (int i = 0; i < 2; i++) {
        size_t n = roots[i] ? strlen(roots[i]) : 0;
        if (n && !strncmp(p, roots[i], n) && p[n] == '/') return 1;
        /* a store's table dir may be "" (the bucket's root): then keys are relative */
        if (i == 0 && s->store && !n && p[0] != '/') return 1;
    }
    return 0;
}

/* "" read from a snapshot means absent */
static char *empty_to_null(char *s)
{
    if (s && !*s) {
        free(s);
        return NULL;
    }
    return s;
}

int table_sink_restore(table_sink *s, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t v, n;
    uint64_t commit;
    if (rt_buf_read_u32(&r, &v) < 0 || v < 1 || v > SNAP_VERSION ||
        rt_buf_read_u64(&r, &commit) < 0 || rt_buf_read_u32(&r, &n) < 0) {
        snprintf(err, errlen, "table %s: bad or truncated sink snapshot", s->dir);
        return -1;
    }
    s->commit = commit;
    s->seq = 0;
    for (uint32_t i = 0; i < n; i++) {
        char *tmp = v >= 3 ? read_path3(s, &r) : read_path(&r);
        char *final = v >= 3 ? read_path3(s, &r) : read_path(&r);
        char *handle = NULL;
        uint64_t bytes = 0;
        int ok = tmp && final && *final;
        if (ok && (!path_inside(s, tmp) || !path_inside(s, final))) {
            snprintf(err, errlen,
                     "table %s: sink snapshot names a part outside the table (pending part %u): "
                     "refusing to restore it",
                     s->dir, i);
            free(tmp);
            free(final);
            return -1;
        }
        if (ok && v >= 2) {
            handle = read_str(&r, HANDLE_CAP);
            ok = handle && !rt_buf_read_u64(&r, &bytes);
            handle = empty_to_null(handle);
            tmp = empty_to_null(tmp);
            /* a part is either local (tmp) or staged (handle) */
            ok = ok && (!tmp) != (!handle);
        }
        if (!ok || add_pending(s, tmp, final, handle, bytes, true)) {
            free(tmp);
            free(final);
            free(handle);
            snprintf(err, errlen, "table %s: truncated or bad sink snapshot (pending part %u)",
                     s->dir, i);
            return -1;
        }
    }
    /* the checkpoint is durable: what it left pending is published now (again, if the crash
     * came after some were) */
    return publish_pending(s, 1, err, errlen);
}

void table_sink_each_published(const table_sink *s, void (*fn)(void *arg, const char *relpath),
                               void *arg)
{
    for (size_t i = 0; i < s->npublished; i++) fn(arg, s->published[i]);
}

int table_sink_put_marker(table_sink *s, const char *relpath, char *err, size_t errlen)
{
    char path[PATH_CAP];
    if (s->store) {
        snprintf(path, sizeof path, "%s%s%s", s->dir, *s->dir ? "/" : "", relpath);
        char why[512];
        if (objstore_put(s->store, path, "", 0, why, sizeof why)) {
            snprintf(err, errlen, "%s/%s: %s", objstore_url(s->store), path, why);
            return -1;
        }
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s", s->dir, relpath);
    if (access(path, F_OK) == 0) return 0;
    FILE *f = fopen(path, "wb");
    if (!f || fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

table_sink_stats table_sink_get_stats(const table_sink *s)
{
    return s->stats;
}

int table_sink_store_stats(const table_sink *s, objstore_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s->store) return 0;
    *out = objstore_get_stats(s->store);
    return 1;
}

void table_sink_free(table_sink *s)
{
    if (!s) return;
    char err[256];
    for (size_t i = 0; i < s->nopen; i++) {
        s->fmt.close_part(s->open[i].writer, err, sizeof err);
        unlink(s->open[i].tmp);
        free(s->open[i].tmp);
        free(s->open[i].final);
    }
    for (size_t i = 0; i < s->npending; i++) {
        pending_part *p = &s->pending[i];
        /* a part a snapshot recorded may belong to a durable checkpoint, which a restore will
         * publish: keep it */
        if (p->tmp && !p->recorded) unlink(p->tmp);
        /* best effort: an upload left behind costs storage until the bucket's lifecycle rule */
        if (p->handle && s->store && !p->recorded)
            objstore_abort(s->store, p->final, p->handle, err, sizeof err);
        free(p->tmp);
        free(p->final);
        free(p->handle);
    }
    objstore_free(s->store);
    free(s->local_dir);
    for (size_t i = 0; i < s->npublished; i++) free(s->published[i]);
    free(s->published);
    free(s->pending);
    free(s->open);
    free(s->dir);
    free(s->run_id);
    free(s->task);
    free(s);
}
