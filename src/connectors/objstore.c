/* Object store: dispatch to the local-directory backend (here) or the S3 client (s3.c).
 *
 * Local layout: the object "a/b/c" is the file <root>/a/b/c. Names starting with '.' are the
 * store's own: `.<name>.tmp-<random>` while a put is in flight, `.<name>.pending` for a staged
 * file. Listings skip them, and keys may not use them, so both backends list the same keys. */
#include "connectors/objstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "connectors/s3.h"

#define KEY_MAX 1024               /* S3's limit on key bytes */
#define LIST_MAX ((size_t)1 << 24) /* keys one local listing collects before sorting */
#define DEPTH_MAX 64               /* directory nesting a local listing follows */
#define COPY_CHUNK ((size_t)1 << 20)
#define DEFAULT_PART ((int64_t)8 << 20)
#define MIN_PART ((int64_t)5 << 20)
#define MAX_PART ((int64_t)5 << 30)

struct objstore {
    char *url;
    int is_s3;
    char *root;   /* local: the directory, no trailing '/' */
    char *prefix; /* s3: "" or "some/prefix/" */
    s3_client *s3;
    objstore_stats st; /* local counters */
};

static void fmt(char *err, size_t errlen, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *err, size_t errlen, const char *f, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
}

/* Keys: relative, '/'-separated, no empty segment, no segment starting with '.' (the store's
 * own names, and "." / ".."), no control bytes, at most KEY_MAX bytes. */
static int check_key(const objstore *s, const char *key, char *err, size_t errlen)
{
    size_t n = key ? strlen(key) : 0;
    const char *why = NULL;
    if (!n)
        why = "empty";
    else if (n > KEY_MAX)
        why = "longer than 1024 bytes";
    else if (key[0] == '/')
        why = "starts with '/'";
    else if (key[n - 1] == '/')
        why = "ends with '/'";
    else {
        for (size_t i = 0; i < n && !why; i++) {
            unsigned char ch = (unsigned char)key[i];
            if (ch < 0x20 || ch == 0x7F)
                why = "contains a control character";
            else if (ch == '/' && key[i + 1] == '/')
                why = "has an empty segment";
            else if ((i == 0 || key[i - 1] == '/') && ch == '.')
                why = "has a segment starting with '.' (reserved for staging)";
        }
    }
    if (why) {
        fmt(err, errlen, "objstore %s: key '%.200s' %s", s->url, key ? key : "", why);
        return -1;
    }
    return 0;
}

static int hidden_path(const char *name)
{
    for (const char *p = name; *p; p++)
        if (*p == '.' && (p == name || p[-1] == '/')) return 1;
    return 0;
}

/* ---- open ---- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int open_s3(objstore *s, const char *rest, const objstore_config *cfg, char *err,
                   size_t errlen)
{
    const char *slash = strchr(rest, '/');
    size_t bl = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!bl) {
        fmt(err, errlen, "objstore %s: no bucket (want s3://bucket[/prefix])", s->url);
        return -1;
    }
    char *bucket = strndup(rest, bl);
    const char *pre = slash ? slash + 1 : "";
    while (*pre == '/')
        pre++;
    size_t pl = strlen(pre);
    while (pl && pre[pl - 1] == '/')
        pl--;
    s->prefix = malloc(pl + 2);
    if (!bucket || !s->prefix) {
        free(bucket);
        fmt(err, errlen, "objstore: out of memory");
        return -1;
    }
    memcpy(s->prefix, pre, pl);
    if (pl) s->prefix[pl++] = '/';
    s->prefix[pl] = 0;

    objstore_config z = {0};
    if (!cfg) cfg = &z;
    s3_config c = {0};
    c.bucket = bucket;
    c.region = cfg->region ? cfg->region : env("AWS_REGION") ? env("AWS_REGION") : "us-east-1";
    c.access_key = cfg->access_key ? cfg->access_key : env("AWS_ACCESS_KEY_ID");
    c.secret_key = cfg->secret_key ? cfg->secret_key : env("AWS_SECRET_ACCESS_KEY");
    c.session_token = cfg->access_key ? NULL : env("AWS_SESSION_TOKEN");
    char defep[256];
    snprintf(defep, sizeof defep, "https://s3.%s.amazonaws.com", c.region);
    c.endpoint = cfg->endpoint             ? cfg->endpoint
                 : env("AWS_ENDPOINT_URL") ? env("AWS_ENDPOINT_URL")
                                           : defep;
    c.max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
    c.backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : 100;
    c.part_bytes = cfg->part_bytes > 0 ? cfg->part_bytes : DEFAULT_PART;
    c.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    int rc = -1;
    if (!c.access_key || !c.secret_key)
        fmt(err, errlen,
            "objstore %s: no S3 credentials (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY)",
            s->url);
    else if (strncmp(c.endpoint, "http://", 7) && strncmp(c.endpoint, "https://", 8))
        fmt(err, errlen, "objstore %s: S3 endpoint '%.200s' is not an http:// or https:// URL",
            s->url, c.endpoint);
    else if (c.part_bytes < MIN_PART || c.part_bytes > MAX_PART)
        fmt(err, errlen,
            "objstore %s: part size %" PRId64 " bytes is outside S3's range "
            "[%" PRId64 ", %" PRId64 "]",
            s->url, c.part_bytes, MIN_PART, MAX_PART);
    else
        rc = s3_client_new(&c, &s->s3, err, errlen);
    free(bucket);
    return rc;
}

int objstore_open(const char *url, const objstore_config *cfg, objstore **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (!url || !*url) {
        fmt(err, errlen, "objstore: empty URL");
        return -1;
    }
    objstore *s = calloc(1, sizeof *s);
    if (!s || !(s->url = strdup(url))) {
        free(s);
        fmt(err, errlen, "objstore: out of memory");
        return -1;
    }
    if (!strncmp(url, "s3://", 5)) {
        s->is_s3 = 1;
        if (open_s3(s, url + 5, cfg, err, errlen)) {
            objstore_free(s);
            return -1;
        }
    } else {
        const char *path = !strncmp(url, "file://", 7) ? url + 7 : url;
        if (strstr(path, "://")) {
            fmt(err, errlen,
                "objstore %s: unknown scheme (want s3://bucket[/prefix] or a "
                "directory)",
                url);
            objstore_free(s);
            return -1;
        }
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
            n--;
        if (!n || !(s->root = strndup(path, n))) {
            fmt(err, errlen, "objstore %s: empty directory path", url);
            objstore_free(s);
            return -1;
        }
    }
    *out = s;
    return 0;
}

int objstore_is_s3(const objstore *s)
{
    return s->is_s3;
}

const char *objstore_url(const objstore *s)
{
    return s->url;
}

void objstore_free(objstore *s)
{
    if (!s) return;
    s3_client_free(s->s3);
    free(s->url);
    free(s->root);
    free(s->prefix);
    free(s);
}

objstore_stats objstore_get_stats(const objstore *s)
{
    if (!s->is_s3) return s->st;
    s3_counters c = s3_client_counters(s->s3);
    objstore_stats st = {c.requests, c.retries, c.failures, c.bytes_up, c.bytes_down};
    return st;
}

/* ---- local backend: paths and durability ---- */

/* <root>/<key> (or <root> when key is ""), malloc'd. */
static char *local_path(const objstore *s, const char *key)
{
    char *p = NULL;
    if (asprintf(&p, "%s%s%s", s->root, *key ? "/" : "", key) < 0) return NULL;
    return p;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The directory part of path ("." when none), written into buf. */
static void dir_of(const char *path, char *buf, size_t cap)
{
    const char *sl = strrchr(path, '/');
    if (!sl)
        snprintf(buf, cap, ".");
    else if (sl == path)
        snprintf(buf, cap, "/");
    else
        snprintf(buf, cap, "%.*s", (int)(sl - path), path);
}

/* mkdir -p for the directory holding path; each new directory's parent is fsynced so the new
 * name is durable too. */
static int mkdirs_for(const char *path, char *err, size_t errlen)
{
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    struct stat st;
    if (!stat(dir, &st) && S_ISDIR(st.st_mode)) return 0;
    size_t n = strlen(dir);
    for (size_t i = 1; i <= n; i++) {
        if (dir[i] != '/' && dir[i] != 0) continue;
        char save = dir[i];
        dir[i] = 0;
        if (mkdir(dir, 0755) == 0) {
            char parent[4096];
            dir_of(dir, parent, sizeof parent);
            fsync_dir(parent);
        } else if (errno != EEXIST) {
            fmt(err, errlen, "objstore: cannot create directory %s: %s", dir, strerror(errno));
            return -1;
        }
        dir[i] = save;
    }
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies src's bytes to dst (both open); copy_file_range first, read/write when the kernel or
 * file system declines. */
static int copy_fd(int src, int dst)
{
    for (;;) {
        ssize_t n = copy_file_range(src, NULL, dst, NULL, COPY_CHUNK * 64, 0);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) break;
            return -1;
        }
    }
    char *buf = malloc(COPY_CHUNK);
    if (!buf) return -1;
    int rc = 0;
    for (;;) {
        ssize_t n = read(src, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        if (write_all(dst, buf, (size_t)n)) {
            rc = -1;
            break;
        }
    }
    free(buf);
    return rc;
}

/* Writes (data,len) or the file src_fd into a hidden temp file beside final, fsyncs it and
 * renames it to final, then fsyncs the directory: final appears whole or not at all. */
static int local_write_atomic(const char *final, const void *data, size_t len, int src_fd,
                              char *err, size_t errlen)
{
    if (mkdirs_for(final, err, errlen)) return -1;
    char dir[4096];
    dir_of(final, dir, sizeof dir);
    const char *base = strrchr(final, '/');
    base = base ? base + 1 : final;
    uint64_t rnd;
    if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
        rnd = (uint64_t)getpid() ^ (uint64_t)time(NULL);
    char *tmp = NULL;
    if (asprintf(&tmp, "%s/.%s.tmp-%016" PRIx64, dir, base, rnd) < 0) {
        fmt(err, errlen, "objstore: out of memory");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        fmt(err, errlen, "objstore: cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int wrc = src_fd >= 0 ? copy_fd(src_fd, fd) : write_all(fd, data, len);
    const char *what = wrc ? "write" : fsync(fd) ? "fsync" : NULL;
    int e = errno;
    if (close(fd) && !what) {
        what = "close";
        e = errno;
    }
    if (!what && rename(tmp, final)) {
        what = "rename";
        e = errno;
    }
    if (what) {
        fmt(err, errlen, "objstore: %s %s: %s", what, what[0] == 'r' ? final : tmp, strerror(e));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    if (fsync_dir(dir)) {
        fmt(err, errlen, "objstore: fsync directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- put, get, delete ---- */

int objstore_put(objstore *s, const char *key, const void *data, size_t len, char *err,
                 size_t errlen)
{
    if (check_key(s, key, err, errlen)) return -1;
    if (s->is_s3) {
        char *full = NULL;
        if (asprintf(&full, "%s%s", s->prefix, key) < 0) return -1;
        int rc = s3_put(s->s3, full, data, len, err, errlen);
        free(full);
        return rc;
    }
    char *path = local_path(s, key);
    if (!path) return -1;
    s->st.requests++;
    int rc = local_write_atomic(path, data ? data : "", len, -1, err, errlen);
    if (rc)
        s->st.failures++;
    else
        s->st.bytes_up += len;
    free(path);
    return rc;
}

int objstore_put_file(objstore *s, const char *key, const char *path, char *err, size_t errlen)
{
    if (check_key(s, key, err, errlen)) return -1;
    if (s->is_s3) {
        char *full = NULL;
        if (asprintf(&full, "%s%s", s->prefix, key) < 0) return -1;
        int rc = s3_put_file(s->s3, full, path, err, errlen);
        free(full);
        return rc;
    }
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        fmt(err, errlen, "objstore %s: cannot read %s: %s", s->url, path, strerror(errno));
        return -1;
    }
    struct stat st;
    int64_t size = fstat(src, &st) ? 0 : st.st_size;
    char *dst = local_path(s, key);
    int rc = dst ? local_write_atomic(dst, NULL, 0, src, err, errlen) : -1;
    close(src);
    free(dst);
    s->st.requests++;
    if (rc)
        s->st.failures++;
    else
        s->st.bytes_up += (uint64_t)size;
    return rc;
}

int objstore_get(objstore *s, const char *key, rt_buf *out, char *err, size_t errlen)
{
    rt_buf_reset(out);
    if (check_key(s, key, err, errlen)) return -1;
    if (s->is_s3) {
        char *full = NULL;
        if (asprintf(&full, "%s%s", s->prefix, key) < 0) return -1;
        int rc = s3_get(s->s3, full, out, err, errlen);
        free(full);
        return rc;
    }
    char *path = local_path(s, key);
    if (!path) return -1;
    s->st.requests++;
    int rc = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = 1;
        else
            fmt(err, errlen, "objstore get %s: %s", path, strerror(errno));
    } else if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        fmt(err, errlen, "objstore get %s: not a regular file", path);
    } else if ((uint64_t)st.st_size > out->limit) {
        fmt(err, errlen,
            "objstore get %s: object is %" PRId64 " bytes, over the limit of %zu bytes", path,
            (int64_t)st.st_size, out->limit);
    } else if (rt_buf_reserve(out, (size_t)st.st_size)) {
        fmt(err, errlen, "objstore get %s: out of memory for %" PRId64 " bytes", path,
            (int64_t)st.st_size);
    } else {
        rc = 0;
        for (;;) {
            if (out->len == out->cap && rt_buf_reserve(out, 1 << 16)) {
                fmt(err, errlen, "objstore get %s: grew past the limit of %zu bytes", path,
                    out->limit);
                rc = -1;
                break;
            }
            ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                fmt(err, errlen, "objstore get %s: %s", path, strerror(errno));
                rc = -1;
                break;
            }
            if (n == 0) break;
            out->len += (size_t)n;
        }
        if (!rc) s->st.bytes_down += out->len;
    }
    if (fd >= 0) close(fd);
    if (rc < 0) {
        s->st.failures++;
        rt_buf_reset(out);
    }
    free(path);
    return rc;
}

int objstore_delete(objstore *s, const char *key, char *err, size_t errlen)
{
    if (check_key(s, key, err, errlen)) return -1;
    if (s->is_s3) {
        char *full = NULL;
        if (asprintf(&full, "%s%s", s->prefix, key) < 0) return -1;
        int rc = s3_delete(s->s3, full, err, errlen);
        free(full);
        return rc;
    }
    char *path = local_path(s, key);
    if (!path) return -1;
    s->st.requests++;
    int rc = 0;
    if (unlink(path) && errno != ENOENT && errno != ENOTDIR) {
        fmt(err, errlen, "objstore delete %s: %s", path, strerror(errno));
        s->st.failures++;
        rc = -1;
    } else {
        char dir[4096];
        dir_of(path, dir, sizeof dir);
        fsync_dir(dir);
    }
    free(path);
    return rc;
}

/* ---- list ---- */

typedef struct entry {
    char *key;
    int64_t size;
} entry;

typedef struct walk {
    entry *v;
    size_t n, cap;
    const char *prefix;
    char *err;
    size_t errlen;
} walk;

static int walk_add(walk *w, const char *key, int64_t size)
{
    if (w->n == LIST_MAX) {
        fmt(w->err, w->errlen, "objstore list: more than %zu keys under prefix '%s'", LIST_MAX,
            w->prefix);
        return -1;
    }
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        entry *nv = realloc(w->v, nc * sizeof *nv);
        if (!nv) return -1;
        w->v = nv;
        w->cap = nc;
    }
    if (!(w->v[w->n].key = strdup(key))) return -1;
    w->v[w->n++].size = size;
    return 0;
}

/* Recurses into dir (absolute) whose keys start with rel ("" or "a/b/"). */
static int walk_dir(walk *w, const char *dir, const char *rel, int depth)
{
    if (depth > DEPTH_MAX) {
        fmt(w->err, w->errlen, "objstore list: directories nested deeper than %d at %s", DEPTH_MAX,
            dir);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    int rc = 0;
    struct dirent *de;
    size_t pl = strlen(w->prefix);
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue; /* ".", "..", temp and staged files */
        char *key = NULL, *path = NULL;
        if (asprintf(&key, "%s%s", rel, de->d_name) < 0) {
            rc = -1;
            break;
        }
        size_t kl = strlen(key);
        struct stat st;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
            free(key);
            rc = -1;
            break;
        }
        if (lstat(path, &st) == 0) {
            /* only descend where keys below can still match the prefix */
            size_t cmp = kl < pl ? kl : pl;
            if (S_ISDIR(st.st_mode)) {
                if (!strncmp(key, w->prefix, cmp)) {
                    char *sub = NULL;
                    if (asprintf(&sub, "%s/", key) < 0)
                        rc = -1;
                    else
                        rc = walk_dir(w, path, sub, depth + 1);
                    free(sub);
                }
            } else if (S_ISREG(st.st_mode) && kl >= pl && !strncmp(key, w->prefix, pl)) {
                rc = walk_add(w, key, st.st_size);
            }
        }
        free(key);
        free(path);
    }
    closedir(d);
    return rc;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->key, ((const entry *)b)->key);
}

typedef struct s3_list_ctx {
    size_t skip; /* the store prefix's length */
    int (*fn)(void *, const char *, int64_t);
    void *arg;
} s3_list_ctx;

static int s3_list_cb(void *arg, const char *key, int64_t size)
{
    s3_list_ctx *c = arg;
    const char *rel = key + c->skip;
    if (strlen(key) <= c->skip || hidden_path(rel)) return 0;
    return c->fn(c->arg, rel, size);
}

int objstore_list(objstore *s, const char *prefix,
                  int (*fn)(void *arg, const char *key, int64_t size), void *arg, char *err,
                  size_t errlen)
{
    if (!prefix) prefix = "";
    if (prefix[0] == '/' || strlen(prefix) > KEY_MAX) {
        fmt(err, errlen, "objstore %s: list prefix '%.200s' starts with '/' or is too long", s->url,
            prefix);
        return -1;
    }
    if (s->is_s3) {
        char *full = NULL;
        if (asprintf(&full, "%s%s", s->prefix, prefix) < 0) return -1;
        s3_list_ctx c = {strlen(s->prefix), fn, arg};
        int rc = s3_list(s->s3, full, s3_list_cb, &c, err, errlen);
        free(full);
        return rc < 0 ? -1 : 0;
    }
    s->st.requests++;
    walk w = {.prefix = prefix, .err = err, .errlen = errlen};
    if (err && errlen) err[0] = 0;
    /* start at the deepest directory the prefix names whole */
    const char *sl = strrchr(prefix, '/');
    char *rel = strndup(prefix, sl ? (size_t)(sl - prefix + 1) : 0);
    char *dir = NULL;
    int rc = -1;
    if (rel && asprintf(&dir, "%s%s%.*s", s->root, sl ? "/" : "", sl ? (int)(sl - prefix) : 0,
                        prefix) >= 0)
        rc = walk_dir(&w, dir, rel, 0);
    if (rc) {
        if (err && errlen && !err[0])
            fmt(err, errlen, "objstore list %s prefix '%s': %s", s->url, prefix, strerror(errno));
        s->st.failures++;
    } else {
        if (w.n) qsort(w.v, w.n, sizeof *w.v, entry_cmp);
        for (size_t i = 0; i < w.n; i++)
            if (fn(arg, w.v[i].key, w.v[i].size)) break;
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.v[i].key);
    free(w.v);
    free(rel);
    free(dir);
    return rc ? -1 : 0;
}

/* ---- two-phase publishing ---- */

/* The staged key for key: "<dir>/.<base>.pending", malloc'd. */
static char *pending_key(const char *key)
{
    const char *sl = strrchr(key, '/');
    char *p = NULL;
    if (asprintf(&p, "%.*s.%s.pending", sl ? (int)(sl - key + 1) : 0, key, sl ? sl + 1 : key) < 0)
        return NULL;
    return p;
}

int objstore_stage_file(objstore *s, const char *key, const char *path, char **handle, char *err,
                        size_t errlen)
{
    *handle = NULL;
    if (check_key(s, key, err, errlen)) return -1;
    if (s->is_s3) {
        char *full = NULL;
        if (asprintf(&full, "%s%s", s->prefix, key) < 0) return -1;
        int rc = s3_stage_file(s->s3, full, path, handle, err, errlen);
        free(full);
        return rc;
    }
    char *hk = pending_key(key);
    char *hp = hk ? local_path(s, hk) : NULL;
    int rc = -1;
    s->st.requests++;
    if (!hp) {
        fmt(err, errlen, "objstore: out of memory");
        goto out;
    }
    if (mkdirs_for(hp, err, errlen)) goto out;
    if (unlink(hp) && errno != ENOENT) {
        fmt(err, errlen, "objstore stage %s: cannot replace %s: %s", s->url, hp, strerror(errno));
        goto out;
    }
    /* A hard link costs no copy; the caller must then replace or unlink its file, never
     * rewrite it in place. Elsewhere (another file system) the bytes are copied. */
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        fmt(err, errlen, "objstore stage %s: cannot read %s: %s", s->url, path, strerror(errno));
        goto out;
    }
    struct stat st;
    int64_t size = fstat(src, &st) ? 0 : st.st_size;
    if (link(path, hp) == 0) {
        if (fsync(src)) {
            fmt(err, errlen, "objstore stage %s: fsync %s: %s", s->url, path, strerror(errno));
            close(src);
            unlink(hp);
            goto out;
        }
        char dir[4096];
        dir_of(hp, dir, sizeof dir);
        rc = fsync_dir(dir);
        if (rc) fmt(err, errlen, "objstore stage: fsync directory %s: %s", dir, strerror(errno));
    } else {
        rc = local_write_atomic(hp, NULL, 0, src, err, errlen);
    }
    close(src);
    if (!rc) {
        s->st.bytes_up += (uint64_t)size;
        *handle = hk;
        hk = NULL;
    }
out:
    if (rc) s->st.failures++;
    free(hk);
    free(hp);
    return rc;
}

/* The local handle must be the staged key of this key: a handle from another key would
 * publish the wrong bytes. */
static char *local_handle_path(objstore *s, const char *key, const char *handle, const char *op,
                               char *err, size_t errlen)
{
    char *hk = pending_key(key);
    if (!hk) return NULL;
    if (!handle || strcmp(hk, handle)) {
        fmt(err, errlen, "objstore %s %s: handle '%.200s' is not the staged name of key '%s'", op,
            s->url, handle ? handle : "", key);
        free(hk);
        return NULL;
    }
    char *hp = local_path(s, hk);
    free(hk);
    return hp;
}

int objstore_publish(objstore *s, const char *key, const char *handle, char *err, size_t errlen)
{
    if (check_key(s, key, err, errlen)) return -1;
    if (s->is_s3) {
        char *full = NULL;
        if (asprintf(&full, "%s%s", s->prefix, key) < 0) return -1;
        int rc = s3_publish(s->s3, full, handle, err, errlen);
        free(full);
        return rc;
    }
    s->st.requests++;
    char *hp = local_handle_path(s, key, handle, "publish", err, errlen);
    char *kp = local_path(s, key);
    int rc = -1;
    if (!hp || !kp) goto out;
    if (rename(hp, kp) == 0) {
        char dir[4096];
        dir_of(kp, dir, sizeof dir);
        rc = fsync_dir(dir);
        if (rc) fmt(err, errlen, "objstore publish: fsync directory %s: %s", dir, strerror(errno));
    } else if (errno == ENOENT) {
        struct stat st;
        if (stat(kp, &st) == 0 && S_ISREG(st.st_mode))
            rc = 0; /* published before */
        else
            fmt(err, errlen,
                "objstore publish %s: key '%s' is neither staged nor published "
                "(aborted, or staged elsewhere)",
                s->url, key);
    } else {
        fmt(err, errlen, "objstore publish %s: rename to %s: %s", s->url, kp, strerror(errno));
    }
out:
    if (rc) s->st.failures++;
    free(hp);
    free(kp);
    return rc;
}

int objstore_abort(objstore *s, const char *key, const char *handle, char *err, size_t errlen)
{
    if (check_key(s, key, err, errlen)) return -1;
    if (s->is_s3) {
        char *full = NULL;
        if (asprintf(&full, "%s%s", s->prefix, key) < 0) return -1;
        int rc = s3_abort(s->s3, full, handle, err, errlen);
        free(full);
        return rc;
    }
    s->st.requests++;
    char *hp = local_handle_path(s, key, handle, "abort", err, errlen);
    if (!hp) {
        s->st.failures++;
        return -1;
    }
    int rc = 0;
    if (unlink(hp) && errno != ENOENT) {
        fmt(err, errlen, "objstore abort %s: unlink %s: %s", s->url, hp, strerror(errno));
        s->st.failures++;
        rc = -1;
    }
    free(hp);
    return rc;
}
