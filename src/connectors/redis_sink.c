#include "connectors/redis_sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "connectors/resp.h"
#include "runtime/buf.h"
#include "runtime/log.h"

#define LOG_REPLY_ERRORS 5 /* error replies logged in full; later ones only counted */

struct redis_sink {
    redis_sink_config cfg;
    /* server mode */
    int server;
    char host[256];
    char pass[256];
    int port, db;
    redisContext *ctx;
    /* file mode */
    char *path, *tmp;
    FILE *f;
    int published;
    /* the batch: commands not yet acknowledged */
    rt_buf batch;
    size_t batch_n;
    char target[320];
    redis_sink_stats st;
};

/* "Redis URL '<url with the password as ***>': want ...": a bad URL is named without its secret. */
static void bad_url(const char *url, char *err, size_t errlen)
{
    const char *at = strrchr(url, '@');
    const char *start = !strncmp(url, "redis://", 8) ? url + 8 : url;
    if (at && at > start)
        snprintf(err, errlen, "Redis URL '%.*s***@%.200s': want redis://[:password@]host[:port][/db]",
                 (int)(start - url), url, at + 1);
    else
        snprintf(err, errlen, "Redis URL '%.300s': want redis://[:password@]host[:port][/db]", url);
}

/* hiredis's own reply functions, saved by the first redis_reader_cap; the wrapper refuses huge
 * arrays before hiredis allocates them. A NULL object makes the reader fail with "out of memory",
 * which the sink handles as a broken connection. */
static redisReplyObjectFunctions *g_hiredis_fn;
static redisReplyObjectFunctions g_capped_fn;
static pthread_once_t g_cap_once = PTHREAD_ONCE_INIT;
static redisReplyObjectFunctions *g_first_fn;

static void *capped_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > REDIS_MAX_REPLY_ELEMENTS) return NULL;
    return g_hiredis_fn->createArray(task, elements);
}

static void init_capped(void)
{
    g_hiredis_fn = g_first_fn;
    g_capped_fn = *g_first_fn;
    g_capped_fn.createArray = capped_array;
}

void redis_reader_cap(struct redisReader *r)
{
    if (!r || !r->fn) return;
    g_first_fn = r->fn;
    pthread_once(&g_cap_once, init_capped);
    if (r->fn == g_hiredis_fn) r->fn = &g_capped_fn;
}

int redis_sink_parse_url(const char *url, char *host, size_t hostcap, int *port, int *db,
                         char *pass, size_t passcap, char *err, size_t errlen)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8)) {
        bad_url(url, err, errlen);
        return -1;
    }
    p += 8;
    *port = 6379;
    *db = 0;
    pass[0] = 0;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= passcap) goto bad;
        memcpy(pass, pw, n);
        pass[n] = 0;
        p = at + 1;
    }
    size_t hn = strcspn(p, ":/");
    if (hn == 0 || hn >= hostcap) goto bad;
    memcpy(host, p, hn);
    host[hn] = 0;
    p += hn;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v <= 0 || v > 65535) goto bad;
        *port = (int)v;
        p = end;
    }
    if (*p == '/') {
        p++;
        if (*p) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || *end || v < 0 || v > 1000000) goto bad;
            *db = (int)v;
            p = end;
        }
    }
    if (*p) goto bad;
    return 0;
bad:
    bad_url(url, err, errlen);
    return -1;
}

/* Creates the directories of path's parent, like mkdir -p. 0 or -1 (errno set). */
static int make_parents(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static void drop_connection(redis_sink *s)
{
    if (s->ctx) redisFree(s->ctx);
    s->ctx = NULL;
}

/* One synchronous command on a fresh connection (AUTH, SELECT). 0, or -1 with why. */
static int setup_command(redis_sink *s, char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->ctx, fmt, ap);
    va_end(ap);
    if (!r) {
        snprintf(why, whylen, "%s", s->ctx->errstr);
        return -1;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%s", r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

static int try_connect(redis_sink *s, char *why, size_t whylen)
{
    struct timeval tv = {(time_t)(s->cfg.timeout_ms / 1000),
                         (suseconds_t)(s->cfg.timeout_ms % 1000) * 1000};
    s->ctx = redisConnectWithTimeout(s->host, s->port, tv);
    if (!s->ctx) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (s->ctx->err) {
        snprintf(why, whylen, "connect: %s", s->ctx->errstr);
        drop_connection(s);
        return -1;
    }
    redis_reader_cap(s->ctx->reader);
    if (redisSetTimeout(s->ctx, tv) != REDIS_OK ||
        (s->pass[0] && setup_command(s, why, whylen, "AUTH %s", s->pass)) ||
        (s->db && setup_command(s, why, whylen, "SELECT %d", s->db))) {
        if (!why[0]) snprintf(why, whylen, "setting up the connection failed");
        drop_connection(s);
        return -1;
    }
    s->st.connects++;
    return 0;
}

/* Sends the batch and reads one reply per command. 0, or -1 with why (the connection is gone). */
static int try_send(redis_sink *s, char *why, size_t whylen)
{
    if (redisAppendFormattedCommand(s->ctx, (const char *)s->batch.data, s->batch.len) !=
        REDIS_OK) {
        snprintf(why, whylen, "%s", s->ctx->errstr[0] ? s->ctx->errstr : "out of memory");
        return -1;
    }
    for (size_t i = 0; i < s->batch_n; i++) {
        void *rv = NULL;
        if (redisGetReply(s->ctx, &rv) != REDIS_OK) {
            snprintf(why, whylen, "%s", s->ctx->errstr[0] ? s->ctx->errstr : "connection lost");
            return -1;
        }
        redisReply *r = rv;
        if (r->type == REDIS_REPLY_ERROR) {
            if (s->st.reply_errors < LOG_REPLY_ERRORS)
                log_error("redis-sink", "error reply target=%s error=%s", s->target, r->str);
            s->st.reply_errors++;
        }
        freeReplyObject(r);
    }
    return 0;
}

static int flush_server(redis_sink *s, char *err, size_t errlen)
{
    int64_t backoff = s->cfg.backoff_max_ms < 100 ? s->cfg.backoff_max_ms : 100, first_failure = -1;
    for (unsigned attempt = 1;; attempt++) {
        char why[256] = "";
        if ((s->ctx || try_connect(s, why, sizeof why) == 0) && try_send(s, why, sizeof why) == 0)
            return 0;
        drop_connection(s);
        int64_t now = now_ms();
        if (first_failure < 0) first_failure = now;
        if (s->cfg.retry_limit_ms > 0 && now - first_failure >= s->cfg.retry_limit_ms) {
            snprintf(err, errlen,
                     "Redis at %s unreachable for %" PRId64 " ms (limit %" PRId64
                     " ms, --redisRetryTimeout): %s; %zu commands not written",
                     s->target, now - first_failure, s->cfg.retry_limit_ms, why, s->batch_n);
            return -1;
        }
        s->st.retries++;
        log_warn("redis-sink",
                 "retry attempt=%u target=%s error=\"%s\" commands=%zu wait_ms=%" PRId64, attempt,
                 s->target, why, s->batch_n, backoff);
        sleep_ms(backoff);
        backoff = backoff * 2 > s->cfg.backoff_max_ms ? s->cfg.backoff_max_ms : backoff * 2;
    }
}

int redis_sink_flush(redis_sink *s, char *err, size_t errlen)
{
    if (!s->batch_n) return 0;
    if (s->server) {
        if (flush_server(s, err, errlen)) return -1;
    } else if (fwrite(s->batch.data, 1, s->batch.len, s->f) != s->batch.len) {
        snprintf(err, errlen, "writing %s: %s", s->tmp, strerror(errno));
        return -1;
    }
    s->st.batches++;
    s->st.bytes += s->batch.len;
    rt_buf_reset(&s->batch);
    s->batch_n = 0;
    return 0;
}

int redis_sink_command(redis_sink *s, int argc, const char *const *argv, const size_t *argvlen,
                       char *err, size_t errlen)
{
    size_t need = resp_command_size(argc, argvlen);
    if (need > s->cfg.max_buffer_bytes) {
        snprintf(err, errlen,
                 "a Redis command of %zu bytes is over the sink's buffer limit of %zu "
                 "bytes (--redisBufferBytes)",
                 need, s->cfg.max_buffer_bytes);
        return -1;
    }
    if (s->batch.len + need > s->cfg.max_buffer_bytes && redis_sink_flush(s, err, errlen))
        return -1;
    if (resp_append_command(&s->batch, argc, argv, argvlen)) {
        snprintf(err, errlen, "out of memory buffering a Redis command");
        return -1;
    }
    s->batch_n++;
    s->st.commands++;
    if (s->batch_n >= s->cfg.batch_commands) return redis_sink_flush(s, err, errlen);
    return 0;
}

int redis_sink_new(const redis_sink_config *cfg, redis_sink **out, char *err, size_t errlen)
{
    redis_sink *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    if (!s->cfg.batch_commands) s->cfg.batch_commands = 1000;
    if (!s->cfg.max_buffer_bytes) s->cfg.max_buffer_bytes = (size_t)64 << 20;
    if (s->cfg.timeout_ms <= 0) s->cfg.timeout_ms = 10000;
    if (s->cfg.backoff_max_ms <= 0) s->cfg.backoff_max_ms = 5000;
    rt_buf_init(&s->batch, s->cfg.max_buffer_bytes);
    if (cfg->url && cfg->url[0]) {
        s->server = 1;
        if (redis_sink_parse_url(cfg->url, s->host, sizeof s->host, &s->port, &s->db, s->pass,
                                 sizeof s->pass, err, errlen))
            goto fail;
        snprintf(s->target, sizeof s->target, "redis://%s:%d/%d", s->host, s->port, s->db);
        s->cfg.url = NULL;
        /* connect now, waiting for a server that is still starting; an empty batch flushes
         * nothing, so run the connect through the same retry loop with a PING */
        const char *ping = "PING";
        size_t pl = 4;
        if (resp_append_command(&s->batch, 1, &ping, &pl)) goto oom;
        s->batch_n = 1;
        if (flush_server(s, err, errlen)) goto fail;
        rt_buf_reset(&s->batch);
        s->batch_n = 0;
    } else {
        if (!cfg->path) {
            snprintf(err, errlen, "Redis sink: neither a URL nor a file path");
            goto fail;
        }
        const char *slash = strrchr(cfg->path, '/');
        size_t dirlen = slash ? (size_t)(slash - cfg->path + 1) : 0;
        const char *base = cfg->path + dirlen;
        s->path = strdup(cfg->path);
        s->tmp = malloc(strlen(cfg->path) + 16);
        if (!s->path || !s->tmp) goto oom;
        sprintf(s->tmp, "%.*s.%s.inprogress", (int)dirlen, cfg->path, base);
        s->cfg.path = s->path;
        if (make_parents(s->path) || !(s->f = fopen(s->tmp, "wb"))) {
            snprintf(err, errlen, "creating %s: %s", s->tmp, strerror(errno));
            goto fail;
        }
        snprintf(s->target, sizeof s->target, "%s", s->path);
    }
    *out = s;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    redis_sink_free(s);
    return -1;
}

int redis_sink_close(redis_sink *s, char *err, size_t errlen)
{
    if (redis_sink_flush(s, err, errlen)) return -1;
    if (s->server) {
        drop_connection(s);
        return 0;
    }
    if (s->published) return 0;
    if (fflush(s->f) || fsync(fileno(s->f))) {
        snprintf(err, errlen, "writing %s: %s", s->tmp, strerror(errno));
        return -1;
    }
    fclose(s->f);
    s->f = NULL;
    if (rename(s->tmp, s->path)) {
        snprintf(err, errlen, "publishing %s: %s", s->path, strerror(errno));
        return -1;
    }
    s->published = 1;
    return 0;
}

void redis_sink_free(redis_sink *s)
{
    if (!s) return;
    drop_connection(s);
    if (s->f) {
        fclose(s->f);
        if (!s->published) unlink(s->tmp);
    }
    rt_buf_free(&s->batch);
    free(s->path);
    free(s->tmp);
    free(s);
}

void redis_sink_get_stats(const redis_sink *s, redis_sink_stats *out)
{
    *out = s->st;
}

size_t redis_sink_buffer_bytes(const redis_sink *s)
{
    return s->batch.cap;
}

const char *redis_sink_target(const redis_sink *s)
{
    return s->target;
}
