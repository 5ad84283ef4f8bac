/* S3 client on libcurl's SigV4 signing: see s3.h for the rules every request follows. */
#include "connectors/s3.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "runtime/log.h"

#define ERR_BODY_LIMIT ((size_t)64 << 10) /* error answers are small XML documents */
#define HASH_CHUNK ((size_t)1 << 20)      /* file bytes read per step while hashing a part */
#define MAX_BACKOFF_MS 30000
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_client {
    CURL *curl;
    char *endpoint, *region, *bucket, *access_key, *secret_key, *session_token;
    char sigv4[160];
    int max_attempts;
    int64_t backoff_ms, part_bytes, timeout_ms;
    rt_buf xml;     /* answers parsed here (listings, upload ids, errors of 2xx answers) */
    uint8_t *chunk; /* HASH_CHUNK bytes for hashing file ranges */
    s3_counters n;
};

/* One request: what to send, and what came back. */
typedef struct s3_req {
    const char *op;     /* S3 operation name, for messages */
    const char *method; /* GET PUT POST DELETE HEAD */
    const char *key;    /* NULL: the bucket itself */
    const char *query;  /* encoded (s3_encode_query), or NULL */
    const void *mem;    /* body from memory ... */
    size_t mem_len;
    int fd; /* ... or from a file range when fd >= 0 */
    int64_t off, len;
    rt_buf *sink; /* 2xx body; NULL: the client's xml buffer */
    /* results */
    long status;
    char code[64];
    char message[256];
    char etag[256];
    int64_t content_length;
    int overflow; /* the 2xx body passed the sink's limit */
} s3_req;

/* Per-attempt transfer state for the curl callbacks. */
typedef struct xfer {
    s3_req *r;
    rt_buf *sink;
    rt_buf errbody;
    long status;
    int64_t pos; /* upload position within the body */
    int read_failed;
} xfer;

static void fmt(char *err, size_t errlen, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *err, size_t errlen, const char *f, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, f);
    vsnprintf(err, errlen, f, ap);
    va_end(ap);
}

/* Defence in depth: no message leaves this module with the secret in it, whatever S3 echoed. */
static void redact(const s3_client *c, char *err)
{
    if (!err || !c->secret_key || strlen(c->secret_key) < 4) return;
    size_t sl = strlen(c->secret_key);
    char *p;
    while ((p = strstr(err, c->secret_key))) {
        memset(p, '*', 3);
        memmove(p + 3, p + sl, strlen(p + sl) + 1);
    }
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- pure helpers ---- */

static int unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static int pct_append(rt_buf *out, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            if (rt_buf_append(out, p, 1)) return -1;
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (rt_buf_append(out, e, 3)) return -1;
        }
    }
    return 0;
}

int s3_encode_key(const char *key, rt_buf *out)
{
    return pct_append(out, key, 1);
}

typedef struct qpair {
    char *name, *value; /* encoded */
} qpair;

static int qpair_cmp(const void *a, const void *b)
{
    const qpair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static char *pct_dup(const char *s)
{
    rt_buf b;
    rt_buf_init(&b, 0);
    if (pct_append(&b, s ? s : "", 0) || rt_buf_append(&b, "", 1)) {
        rt_buf_free(&b);
        return NULL;
    }
    if (!b.data) return strdup("");
    return (char *)b.data;
}

int s3_encode_query(const char *const *kv, size_t n, rt_buf *out)
{
    if (n == 0) return 0;
    qpair *q = calloc(n, sizeof *q);
    if (!q) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        q[i].name = pct_dup(kv[2 * i]);
        q[i].value = pct_dup(kv[2 * i + 1]);
        if (!q[i].name || !q[i].value) rc = -1;
    }
    if (!rc) qsort(q, n, sizeof *q, qpair_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        if ((i && rt_buf_append(out, "&", 1)) || rt_buf_append(out, q[i].name, strlen(q[i].name)) ||
            rt_buf_append(out, "=", 1) || rt_buf_append(out, q[i].value, strlen(q[i].value)))
            rc = -1;
    }
    for (size_t i = 0; i < n; i++) {
        free(q[i].name);
        free(q[i].value);
    }
    free(q);
    return rc;
}

char *s3_xml_unescape(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n;) {
        if (s[i] != '&') {
            *o++ = s[i++];
            continue;
        }
        const char *semi = memchr(s + i, ';', n - i < 12 ? n - i : 12);
        if (!semi) goto bad;
        const char *ent = s + i + 1;
        size_t el = (size_t)(semi - ent);
        if (el == 3 && !memcmp(ent, "amp", 3))
            *o++ = '&';
        else if (el == 2 && !memcmp(ent, "lt", 2))
            *o++ = '<';
        else if (el == 2 && !memcmp(ent, "gt", 2))
            *o++ = '>';
        else if (el == 4 && !memcmp(ent, "quot", 4))
            *o++ = '"';
        else if (el == 4 && !memcmp(ent, "apos", 4))
            *o++ = '\'';
        else if (el >= 2 && ent[0] == '#') {
            int hexa = ent[1] == 'x' || ent[1] == 'X';
            const char *d = ent + 1 + hexa;
            if (d >= semi) goto bad;
            unsigned long cp = 0;
            for (; d < semi; d++) {
                int v;
                if (*d >= '0' && *d <= '9')
                    v = *d - '0';
                else if (hexa && *d >= 'a' && *d <= 'f')
                    v = *d - 'a' + 10;
                else if (hexa && *d >= 'A' && *d <= 'F')
                    v = *d - 'A' + 10;
                else
                    goto bad;
                cp = cp * (hexa ? 16 : 10) + (unsigned long)v;
                if (cp > 0x10FFFF) goto bad;
            }
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
            /* UTF-8 is never longer than the entity it replaces ("&#x10FFFF;" is 10 bytes) */
            if (cp < 0x80)
                *o++ = (char)cp;
            else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
        } else
            goto bad;
        i = (size_t)(semi - s) + 1;
    }
    *o = 0;
    return out;
bad:
    free(out);
    return NULL;
}

/* Finds <name>...</name> in [p, end): the content's range. Returns 0 or -1 when absent. */
static int find_elem(const char *p, const char *end, const char *name, const char **vs,
                     const char **ve)
{
    char open[72], close[72];
    int ol = snprintf(open, sizeof open, "<%s>", name);
    int cl = snprintf(close, sizeof close, "</%s>", name);
    const char *a = memmem(p, (size_t)(end - p), open, (size_t)ol);
    if (!a) return -1;
    a += ol;
    const char *b = memmem(a, (size_t)(end - a), close, (size_t)cl);
    if (!b) return -1;
    *vs = a;
    *ve = b;
    return 0;
}

/* The unescaped content of the first <name> in [p, end), malloc'd; NULL when absent or bad. */
static char *elem_text(const char *p, const char *end, const char *name)
{
    const char *vs, *ve;
    if (find_elem(p, end, name, &vs, &ve)) return NULL;
    return s3_xml_unescape(vs, (size_t)(ve - vs));
}

int s3_parse_list(const char *xml, size_t len, int (*fn)(void *arg, const char *key, int64_t size),
                  void *arg, s3_list_page *page, char *err, size_t errlen)
{
    const char *p = xml, *end = xml + len;
    page->truncated = 0;
    page->next_token = NULL;
    if (!memmem(xml, len, "<ListBucketResult", 17)) {
        fmt(err, errlen, "ListObjectsV2 answer: no <ListBucketResult> in %zu bytes", len);
        return -1;
    }
    const char *vs, *ve;
    if (!find_elem(p, end, "IsTruncated", &vs, &ve))
        page->truncated = (ve - vs == 4 && !memcmp(vs, "true", 4));
    for (;;) {
        const char *cs = memmem(p, (size_t)(end - p), "<Contents>", 10);
        if (!cs) break;
        const char *ce = memmem(cs, (size_t)(end - cs), "</Contents>", 11);
        if (!ce) {
            fmt(err, errlen, "ListObjectsV2 answer: unterminated <Contents> at byte %zu",
                (size_t)(cs - xml));
            return -1;
        }
        const char *ks, *ke, *ss, *se;
        if (find_elem(cs, ce, "Key", &ks, &ke) || find_elem(cs, ce, "Size", &ss, &se)) {
            fmt(err, errlen, "ListObjectsV2 answer: <Contents> at byte %zu lacks Key or Size",
                (size_t)(cs - xml));
            return -1;
        }
        int64_t size = 0;
        if (ss == se) goto badsize;
        for (const char *d = ss; d < se; d++) {
            if (*d < '0' || *d > '9' || size > (INT64_MAX - 9) / 10) goto badsize;
            size = size * 10 + (*d - '0');
        }
        char *key = s3_xml_unescape(ks, (size_t)(ke - ks));
        if (!key || !*key) {
            free(key);
            fmt(err, errlen, "ListObjectsV2 answer: bad <Key> at byte %zu", (size_t)(ks - xml));
            return -1;
        }
        int stop = fn(arg, key, size);
        free(key);
        if (stop) return stop;
        p = ce + 11;
        continue;
    badsize:
        fmt(err, errlen, "ListObjectsV2 answer: bad <Size> '%.*s'",
            (int)(se - ss < 32 ? se - ss : 32), ss);
        return -1;
    }
    if (page->truncated) {
        page->next_token = elem_text(xml, end, "NextContinuationToken");
        if (!page->next_token || !*page->next_token) {
            free(page->next_token);
            page->next_token = NULL;
            fmt(err, errlen, "ListObjectsV2 answer: truncated without a NextContinuationToken");
            return -1;
        }
    }
    return 0;
}

char *s3_handle_format(const char *upload_id, int64_t size, char *const *etags, size_t nparts)
{
    rt_buf b;
    rt_buf_init(&b, 0);
    char sz[32];
    int sl = snprintf(sz, sizeof sz, ":%" PRId64 ":", size);
    int rc = rt_buf_append(&b, "s3mpu1:", 7) || pct_append(&b, upload_id, 0) ||
             rt_buf_append(&b, sz, (size_t)sl);
    for (size_t i = 0; i < nparts && !rc; i++)
        rc = (i && rt_buf_append(&b, ",", 1)) || pct_append(&b, etags[i], 0);
    if (rc || rt_buf_append(&b, "", 1)) {
        rt_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* Decodes %XX in s[0..n) into a malloc'd string; NULL on a bad escape or an empty result. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            if (!unreserved((unsigned char)s[i])) goto bad;
            *o++ = s[i];
            continue;
        }
        if (i + 2 >= n) goto bad;
        if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2])) goto bad;
        char h[3] = {s[i + 1], s[i + 2], 0};
        unsigned v = (unsigned)strtoul(h, NULL, 16);
        if (v == 0) goto bad;
        *o++ = (char)v;
        i += 2;
    }
    *o = 0;
    if (o == out) goto bad;
    return out;
bad:
    free(out);
    return NULL;
}

void s3_handle_release(char *upload_id, char **etags, size_t nparts)
{
    free(upload_id);
    if (etags)
        for (size_t i = 0; i < nparts; i++)
            free(etags[i]);
    free(etags);
}

int s3_handle_parse(const char *handle, char **upload_id, int64_t *size, char ***etags,
                    size_t *nparts, char *err, size_t errlen)
{
    *upload_id = NULL;
    *etags = NULL;
    *nparts = 0;
    *size = 0;
    if (!handle || strncmp(handle, "s3mpu1:", 7)) {
        fmt(err, errlen, "stage handle: not an S3 upload handle (want prefix 's3mpu1:')");
        return -1;
    }
    const char *id = handle + 7, *colon = strchr(id, ':');
    const char *c2 = colon ? strchr(colon + 1, ':') : NULL;
    if (!colon || !c2) {
        fmt(err, errlen, "stage handle: want s3mpu1:<uploadId>:<size>:<etags>");
        return -1;
    }
    int64_t sz = 0;
    for (const char *d = colon + 1; d < c2; d++) {
        if (*d < '0' || *d > '9' || sz > (INT64_MAX - 9) / 10) {
            fmt(err, errlen, "stage handle: bad size field");
            return -1;
        }
        sz = sz * 10 + (*d - '0');
    }
    if (c2 == colon + 1) {
        fmt(err, errlen, "stage handle: empty size field");
        return -1;
    }
    *size = sz;
    size_t n = 1;
    const char *tagstart = c2 + 1;
    for (const char *p = tagstart; *p; p++)
        n += *p == ',';
    if (n > S3_MAX_PARTS) {
        fmt(err, errlen, "stage handle: %zu parts, over S3's limit of %d", n, S3_MAX_PARTS);
        return -1;
    }
    char *uid = pct_decode(id, (size_t)(colon - id));
    char **tags = calloc(n, sizeof *tags);
    if (!uid || !tags) goto bad;
    const char *p = tagstart;
    for (size_t i = 0; i < n; i++) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        tags[i] = pct_decode(p, (size_t)(e - p));
        if (!tags[i]) goto bad;
        p = *e ? e + 1 : e;
    }
    *upload_id = uid;
    *etags = tags;
    *nparts = n;
    return 0;
bad:
    s3_handle_release(uid, tags, n);
    fmt(err, errlen, "stage handle: bad upload id or ETag field (empty or bad %%-escape)");
    return -1;
}

/* ---- client ---- */

int s3_client_new(const s3_config *cfg, s3_client **out, char *err, size_t errlen)
{
    *out = NULL;
    static int global_done;
    if (!global_done) {
        /* curl_global_init is not thread-safe before 7.84; the first store opens on the main
         * thread. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
            fmt(err, errlen, "s3: curl_global_init failed");
            return -1;
        }
        global_done = 1;
    }
    s3_client *c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->curl = curl_easy_init();
    c->chunk = malloc(HASH_CHUNK);
    c->endpoint = xstrdup(cfg->endpoint);
    c->region = xstrdup(cfg->region);
    c->bucket = xstrdup(cfg->bucket);
    c->access_key = xstrdup(cfg->access_key);
    c->secret_key = xstrdup(cfg->secret_key);
    c->session_token = xstrdup(cfg->session_token);
    if (!c->curl || !c->chunk || !c->endpoint || !c->region || !c->bucket || !c->access_key ||
        !c->secret_key || (cfg->session_token && !c->session_token))
        goto oom;
    size_t el = strlen(c->endpoint);
    while (el && c->endpoint[el - 1] == '/')
        c->endpoint[--el] = 0;
    snprintf(c->sigv4, sizeof c->sigv4, "aws:amz:%s:s3", c->region);
    c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 1;
    c->backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : 0;
    c->part_bytes = cfg->part_bytes;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    rt_buf_init(&c->xml, S3_XML_LIMIT);
    *out = c;
    return 0;
oom:
    fmt(err, errlen, "s3: out of memory or curl_easy_init failed");
    s3_client_free(c);
    return -1;
}

void s3_client_free(s3_client *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    free(c->chunk);
    free(c->endpoint);
    free(c->region);
    free(c->bucket);
    free(c->access_key);
    if (c->secret_key) memset(c->secret_key, 0, strlen(c->secret_key));
    free(c->secret_key);
    free(c->session_token);
    rt_buf_free(&c->xml);
    free(c);
}

s3_counters s3_client_counters(const s3_client *c)
{
    return c->n;
}

/* ---- curl callbacks ---- */

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    if (len > 5 && !memcmp(p, "HTTP/", 5)) {
        /* every status line (a 100 Continue comes first) starts the headers afresh */
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->r->etag[0] = 0;
        x->r->content_length = -1;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon) return len;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1, *e = p + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
        e--;
    size_t vl = (size_t)(e - v);
    if (nl == 4 && !strncasecmp(p, "etag", 4) && vl < sizeof x->r->etag) {
        memcpy(x->r->etag, v, vl);
        x->r->etag[vl] = 0;
    } else if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
        x->r->content_length = strtoll(v, NULL, 10);
    }
    return len;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    if (x->status >= 200 && x->status < 300) {
        if (rt_buf_append(x->sink, p, len)) {
            x->r->overflow = 1;
            return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        }
    } else if (x->errbody.len + len <= x->errbody.limit) {
        rt_buf_append(&x->errbody, p, len);
    }
    return len;
}

static size_t on_read(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    s3_req *r = x->r;
    int64_t total = r->fd >= 0 ? r->len : (int64_t)r->mem_len;
    size_t want = sz * n;
    if ((int64_t)want > total - x->pos) want = (size_t)(total - x->pos);
    if (!want) return 0;
    if (r->fd < 0) {
        memcpy(p, (const uint8_t *)r->mem + x->pos, want);
    } else {
        ssize_t got = pread(r->fd, p, want, (off_t)(r->off + x->pos));
        if (got <= 0) {
            x->read_failed = 1;
            return CURL_READFUNC_ABORT;
        }
        want = (size_t)got;
    }
    x->pos += (int64_t)want;
    return want;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
    xfer *x = ud;
    if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
    x->pos = offset;
    return CURL_SEEKFUNC_OK;
}

/* ---- requests ---- */

static void hex32(const unsigned char *md, char *hex)
{
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
}

/* The hex SHA-256 of the request body: memory, or a file range read in chunks. */
static int body_sha256(s3_client *c, const s3_req *r, char hex[65], char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) goto fail;
    if (r->fd < 0) {
        if (r->mem_len && !EVP_DigestUpdate(ctx, r->mem, r->mem_len)) goto fail;
    } else {
        for (int64_t done = 0; done < r->len;) {
            size_t want =
                r->len - done < (int64_t)HASH_CHUNK ? (size_t)(r->len - done) : HASH_CHUNK;
            ssize_t got = pread(r->fd, c->chunk, want, (off_t)(r->off + done));
            if (got <= 0) {
                fmt(err, errlen, "s3 %s %s/%s: reading the file at offset %" PRId64 ": %s", r->op,
                    c->bucket, r->key ? r->key : "", r->off + done,
                    got < 0 ? strerror(errno) : "unexpected end of file");
                EVP_MD_CTX_free(ctx);
                return -1;
            }
            if (!EVP_DigestUpdate(ctx, c->chunk, (size_t)got)) goto fail;
            done += got;
        }
    }
    if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) goto fail;
    EVP_MD_CTX_free(ctx);
    hex32(md, hex);
    return 0;
fail:
    EVP_MD_CTX_free(ctx);
    fmt(err, errlen, "s3 %s: SHA-256 failed", r->op);
    return -1;
}

static int retriable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
        return 1;
    default:
        return 0;
    }
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* Takes <Code> and <Message> out of an S3 error document. */
static void parse_error_doc(s3_req *r, const char *body, size_t len)
{
    char *code = elem_text(body, body + len, "Code");
    char *msg = elem_text(body, body + len, "Message");
    if (code) snprintf(r->code, sizeof r->code, "%s", code);
    if (msg) snprintf(r->message, sizeof r->message, "%s", msg);
    free(code);
    free(msg);
}

static int url_build(s3_client *c, const s3_req *r, rt_buf *url)
{
    return rt_buf_append(url, c->endpoint, strlen(c->endpoint)) || rt_buf_append(url, "/", 1) ||
           pct_append(url, c->bucket, 0) ||
           (r->key && (rt_buf_append(url, "/", 1) || s3_encode_key(r->key, url))) ||
           (r->query &&
            (rt_buf_append(url, "?", 1) || rt_buf_append(url, r->query, strlen(r->query)))) ||
           rt_buf_append(url, "", 1);
}

/* Runs one request with retries. Returns 0 on a 2xx answer; -1 with err (and r->status,
 * r->code set when S3 answered). */
static int s3_do(s3_client *c, s3_req *r, char *err, size_t errlen)
{
    char sha[65];
    const char *kname = r->key ? r->key : "";
    const char *ksep = r->key ? "/" : "";
    r->status = 0;
    r->code[0] = r->message[0] = r->etag[0] = 0;
    r->content_length = -1;
    r->overflow = 0;
    int has_body = r->fd >= 0 || r->mem || !strcmp(r->method, "PUT") || !strcmp(r->method, "POST");
    int64_t body_len = r->fd >= 0 ? r->len : (int64_t)r->mem_len;
    if (has_body && body_len > 0) {
        if (body_sha256(c, r, sha, err, errlen)) return -1;
    } else {
        memcpy(sha, EMPTY_SHA256, 65);
    }

    rt_buf url;
    rt_buf_init(&url, 64 << 10);
    if (url_build(c, r, &url)) {
        rt_buf_free(&url);
        fmt(err, errlen, "s3 %s %s%s%s: URL longer than 64 KiB", r->op, c->bucket, ksep, kname);
        return -1;
    }
    char hsha[100], htok[8192];
    snprintf(hsha, sizeof hsha, "x-amz-content-sha256: %s", sha);
    struct curl_slist *hdrs = curl_slist_append(NULL, hsha);
    if (hdrs && c->session_token) {
        if (strlen(c->session_token) + 24 > sizeof htok) {
            curl_slist_free_all(hdrs);
            rt_buf_free(&url);
            fmt(err, errlen, "s3: AWS_SESSION_TOKEN longer than %zu bytes", sizeof htok - 24);
            return -1;
        }
        snprintf(htok, sizeof htok, "x-amz-security-token: %s", c->session_token);
        struct curl_slist *h2 = curl_slist_append(hdrs, htok);
        if (!h2) {
            curl_slist_free_all(hdrs);
            hdrs = NULL;
        } else
            hdrs = h2;
        memset(htok, 0, sizeof htok);
    }
    if (!hdrs) {
        rt_buf_free(&url);
        fmt(err, errlen, "s3 %s: out of memory", r->op);
        return -1;
    }

    rt_buf *sink = r->sink ? r->sink : &c->xml;
    int rc = -1;
    char reason[160] = "";
    int attempt;
    for (attempt = 1;; attempt++) {
        xfer x = {.r = r, .sink = sink};
        rt_buf_init(&x.errbody, ERR_BODY_LIMIT);
        rt_buf_reset(sink);
        r->overflow = 0;
        r->code[0] = r->message[0] = 0;
        CURL *h = c->curl;
        curl_easy_reset(h); /* options only: the connection cache stays */
        curl_easy_setopt(h, CURLOPT_URL, (char *)url.data);
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(c->timeout_ms < 10000 ? c->timeout_ms : 10000));
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        /* curl waits this long for "100 Continue" before sending a large body anyway */
        curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 200L);
        if (!strcmp(r->method, "PUT")) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, &x);
            curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
        } else if (!strcmp(r->method, "POST")) {
            /* small in-memory bodies only (Create/CompleteMultipartUpload) */
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->mem ? (const char *)r->mem : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->mem_len);
        } else if (!strcmp(r->method, "HEAD")) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (strcmp(r->method, "GET")) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        }
        c->n.requests++;
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        r->status = status;
        int retry = 0;
        if (cc != CURLE_OK) {
            if (r->overflow) {
                if (r->content_length >= 0)
                    fmt(err, errlen,
                        "s3 %s %s%s%s: object is %" PRId64 " bytes, over the limit of %zu bytes",
                        r->op, c->bucket, ksep, kname, r->content_length, sink->limit);
                else
                    fmt(err, errlen, "s3 %s %s%s%s: object is larger than the limit of %zu bytes",
                        r->op, c->bucket, ksep, kname, sink->limit);
                rt_buf_free(&x.errbody);
                break;
            }
            if (x.read_failed) {
                fmt(err, errlen, "s3 %s %s%s%s: reading the upload body failed", r->op, c->bucket,
                    ksep, kname);
                rt_buf_free(&x.errbody);
                break;
            }
            snprintf(reason, sizeof reason, "%s", curl_easy_strerror(cc));
            retry = retriable_curl(cc);
        } else if (status >= 200 && status < 300) {
            rt_buf_free(&x.errbody);
            rc = 0;
            c->n.bytes_up += (uint64_t)(has_body ? body_len : 0);
            c->n.bytes_down += sink->len;
            break;
        } else {
            parse_error_doc(r, x.errbody.data ? (const char *)x.errbody.data : "", x.errbody.len);
            snprintf(reason, sizeof reason, "HTTP %ld%s%s", status, r->code[0] ? " " : "", r->code);
            retry = status >= 500 || status == 429;
        }
        rt_buf_free(&x.errbody);
        if (!retry || attempt >= c->max_attempts) {
            char after[48] = "";
            if (attempt > 1) snprintf(after, sizeof after, " (after %d attempts)", attempt);
            if (cc != CURLE_OK)
                fmt(err, errlen, "s3 %s %s%s%s: %s%s", r->op, c->bucket, ksep, kname, reason,
                    after);
            else
                fmt(err, errlen, "s3 %s %s%s%s: HTTP %ld%s%s%s%s%s", r->op, c->bucket, ksep, kname,
                    status, r->code[0] ? " " : "", r->code, r->message[0] ? ": " : "", r->message,
                    after);
            break;
        }
        int64_t delay = c->backoff_ms;
        for (int i = 1; i < attempt && delay < MAX_BACKOFF_MS; i++)
            delay *= 2;
        if (delay > MAX_BACKOFF_MS) delay = MAX_BACKOFF_MS;
        c->n.retries++;
        log_warn("s3", "retry op=%s key=%s%s%s attempt=%d/%d reason=\"%s\" delay_ms=%" PRId64,
                 r->op, c->bucket, ksep, kname, attempt + 1, c->max_attempts, reason, delay);
        sleep_ms(delay);
    }
    if (rc) {
        c->n.failures++;
        redact(c, err);
    }
    curl_slist_free_all(hdrs);
    rt_buf_free(&url);
    return rc;
}

static s3_req req_init(const char *op, const char *method, const char *key)
{
    s3_req r;
    memset(&r, 0, sizeof r);
    r.op = op;
    r.method = method;
    r.key = key;
    r.fd = -1;
    return r;
}

/* S3 may answer 200 with an <Error> document (CompleteMultipartUpload): turns it into a failure. */
static int check_200_error(s3_client *c, s3_req *r, char *err, size_t errlen)
{
    const char *b = c->xml.data ? (const char *)c->xml.data : "";
    if (!c->xml.len || !memmem(b, c->xml.len, "<Error>", 7)) return 0;
    parse_error_doc(r, b, c->xml.len);
    fmt(err, errlen, "s3 %s %s/%s: HTTP %ld with error %s: %s", r->op, c->bucket, r->key, r->status,
        r->code, r->message);
    c->n.failures++;
    redact(c, err);
    return -1;
}

/* ---- objects ---- */

int s3_put(s3_client *c, const char *key, const void *data, size_t len, char *err, size_t errlen)
{
    s3_req r = req_init("PutObject", "PUT", key);
    r.mem = data ? data : "";
    r.mem_len = len;
    return s3_do(c, &r, err, errlen);
}

int s3_get(s3_client *c, const char *key, rt_buf *out, char *err, size_t errlen)
{
    s3_req r = req_init("GetObject", "GET", key);
    r.sink = out;
    rt_buf_reset(out);
    int rc = s3_do(c, &r, err, errlen);
    if (rc && r.status == 404 && (!r.code[0] || !strcmp(r.code, "NoSuchKey"))) {
        rt_buf_reset(out);
        return 1;
    }
    return rc;
}

int s3_head(s3_client *c, const char *key, int64_t *size, char *err, size_t errlen)
{
    s3_req r = req_init("HeadObject", "HEAD", key);
    int rc = s3_do(c, &r, err, errlen);
    if (rc && r.status == 404) return 1;
    if (!rc && size) *size = r.content_length;
    return rc;
}

int s3_delete(s3_client *c, const char *key, char *err, size_t errlen)
{
    s3_req r = req_init("DeleteObject", "DELETE", key);
    int rc = s3_do(c, &r, err, errlen);
    if (rc && r.status == 404) return 0;
    return rc;
}

int s3_list(s3_client *c, const char *prefix, int (*fn)(void *arg, const char *key, int64_t size),
            void *arg, char *err, size_t errlen)
{
    char *token = NULL;
    rt_buf q;
    rt_buf_init(&q, 64 << 10);
    int rc = 0;
    for (;;) {
        const char *kv[] = {"list-type",          "2",  "prefix", prefix ? prefix : "",
                            "continuation-token", token};
        rt_buf_reset(&q);
        if (s3_encode_query(kv, token ? 3 : 2, &q) || rt_buf_append(&q, "", 1)) {
            fmt(err, errlen, "s3 ListObjectsV2 %s/%s: query longer than 64 KiB", c->bucket,
                prefix ? prefix : "");
            rc = -1;
            break;
        }
        s3_req r = req_init("ListObjectsV2", "GET", NULL);
        r.query = (const char *)q.data;
        if (s3_do(c, &r, err, errlen)) {
            rc = -1;
            break;
        }
        s3_list_page page;
        char perr[200];
        int prc = s3_parse_list(c->xml.data ? (const char *)c->xml.data : "", c->xml.len, fn, arg,
                                &page, perr, sizeof perr);
        if (prc < 0) {
            fmt(err, errlen, "s3 ListObjectsV2 %s/%s: %s", c->bucket, prefix ? prefix : "", perr);
            rc = -1;
            break;
        }
        if (prc > 0 || !page.truncated) {
            free(page.next_token);
            break;
        }
        if (token && !strcmp(token, page.next_token)) {
            free(page.next_token);
            fmt(err, errlen, "s3 ListObjectsV2 %s/%s: the server repeated a continuation token",
                c->bucket, prefix ? prefix : "");
            rc = -1;
            break;
        }
        free(token);
        token = page.next_token;
    }
    free(token);
    rt_buf_free(&q);
    return rc;
}

/* ---- multipart ---- */

static int mpu_create(s3_client *c, const char *key, char **upload_id, char *err, size_t errlen)
{
    const char *kv[] = {"uploads", NULL};
    rt_buf q;
    rt_buf_init(&q, 0);
    if (s3_encode_query(kv, 1, &q) || rt_buf_append(&q, "", 1)) {
        rt_buf_free(&q);
        fmt(err, errlen, "s3: out of memory");
        return -1;
    }
    s3_req r = req_init("CreateMultipartUpload", "POST", key);
    r.query = (const char *)q.data;
    int rc = s3_do(c, &r, err, errlen);
    rt_buf_free(&q);
    if (rc) return -1;
    const char *b = c->xml.data ? (const char *)c->xml.data : "";
    *upload_id = elem_text(b, b + c->xml.len, "UploadId");
    if (!*upload_id || !**upload_id) {
        free(*upload_id);
        *upload_id = NULL;
        fmt(err, errlen, "s3 CreateMultipartUpload %s/%s: no <UploadId> in the answer", c->bucket,
            key);
        return -1;
    }
    return 0;
}

static int mpu_query(const char *upload_id, int part, rt_buf *q)
{
    char pn[16];
    snprintf(pn, sizeof pn, "%d", part);
    const char *kv[] = {"partNumber", pn, "uploadId", upload_id};
    rt_buf_reset(q);
    return s3_encode_query(part > 0 ? kv : kv + 2, part > 0 ? 2 : 1, q) || rt_buf_append(q, "", 1);
}

static int mpu_abort(s3_client *c, const char *key, const char *upload_id, char *err, size_t errlen)
{
    rt_buf q;
    rt_buf_init(&q, 64 << 10);
    if (mpu_query(upload_id, 0, &q)) {
        rt_buf_free(&q);
        fmt(err, errlen, "s3 AbortMultipartUpload %s/%s: upload id too long", c->bucket, key);
        return -1;
    }
    s3_req r = req_init("AbortMultipartUpload", "DELETE", key);
    r.query = (const char *)q.data;
    int rc = s3_do(c, &r, err, errlen);
    rt_buf_free(&q);
    if (rc && r.status == 404) return 0; /* already completed or aborted */
    if (rc && (r.status == 405 || r.status == 501)) {
        log_warn("s3",
                 "AbortMultipartUpload not supported by the server status=%ld key=%s/%s: "
                 "the parts stay until a lifecycle rule removes them",
                 r.status, c->bucket, key);
        return 0;
    }
    return rc;
}

/* Creates an upload and sends the file's parts; on failure aborts it. *etags has *nparts. */
static int mpu_upload_file(s3_client *c, const char *key, int fd, int64_t size, char **upload_id,
                           char ***etags, size_t *nparts, char *err, size_t errlen)
{
    int64_t part = c->part_bytes;
    if (size > part * S3_MAX_PARTS) part = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
    size_t n = size == 0 ? 1 : (size_t)((size + part - 1) / part);
    *upload_id = NULL;
    *etags = NULL;
    *nparts = 0;
    char **tags = calloc(n, sizeof *tags);
    if (!tags) {
        fmt(err, errlen, "s3: out of memory");
        return -1;
    }
    if (mpu_create(c, key, upload_id, err, errlen)) {
        free(tags);
        return -1;
    }
    rt_buf q;
    rt_buf_init(&q, 64 << 10);
    size_t i;
    for (i = 0; i < n; i++) {
        if (mpu_query(*upload_id, (int)i + 1, &q)) {
            fmt(err, errlen, "s3 UploadPart %s/%s: upload id too long", c->bucket, key);
            break;
        }
        s3_req r = req_init("UploadPart", "PUT", key);
        r.query = (const char *)q.data;
        r.fd = fd;
        r.off = (int64_t)i * part;
        r.len = size - r.off < part ? size - r.off : part;
        if (s3_do(c, &r, err, errlen)) break;
        if (!r.etag[0]) {
            fmt(err, errlen, "s3 UploadPart %s/%s part %zu: no ETag in the answer", c->bucket, key,
                i + 1);
            break;
        }
        if (!(tags[i] = strdup(r.etag))) {
            fmt(err, errlen, "s3: out of memory");
            break;
        }
    }
    rt_buf_free(&q);
    if (i < n) {
        char aerr[256];
        if (mpu_abort(c, key, *upload_id, aerr, sizeof aerr))
            log_warn("s3", "abort after a failed upload failed: %s", aerr);
        s3_handle_release(*upload_id, tags, n);
        *upload_id = NULL;
        return -1;
    }
    *etags = tags;
    *nparts = n;
    return 0;
}

static int xml_escape_append(rt_buf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (e ? rt_buf_append(b, e, strlen(e)) : rt_buf_append(b, s, 1)) return -1;
    }
    return 0;
}

/* CompleteMultipartUpload. Returns 0, or -1 with err and *code set to S3's error code. */
static int mpu_complete(s3_client *c, const char *key, const char *upload_id, char *const *etags,
                        size_t n, char *code, size_t codelen, long *status, char *err,
                        size_t errlen)
{
    rt_buf body, q;
    rt_buf_init(&body, S3_XML_LIMIT);
    rt_buf_init(&q, 64 << 10);
    code[0] = 0;
    int bad = mpu_query(upload_id, 0, &q) || rt_buf_append(&body, "<CompleteMultipartUpload>", 25);
    for (size_t i = 0; i < n && !bad; i++) {
        char pn[64];
        int l = snprintf(pn, sizeof pn, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
        bad = rt_buf_append(&body, pn, (size_t)l) || xml_escape_append(&body, etags[i]) ||
              rt_buf_append(&body, "</ETag></Part>", 14);
    }
    bad = bad || rt_buf_append(&body, "</CompleteMultipartUpload>", 26);
    if (bad) {
        rt_buf_free(&body);
        rt_buf_free(&q);
        fmt(err, errlen, "s3 CompleteMultipartUpload %s/%s: request too large", c->bucket, key);
        return -1;
    }
    s3_req r = req_init("CompleteMultipartUpload", "POST", key);
    r.query = (const char *)q.data;
    r.mem = body.data;
    r.mem_len = body.len;
    int rc = s3_do(c, &r, err, errlen);
    if (!rc) rc = check_200_error(c, &r, err, errlen);
    if (rc) snprintf(code, codelen, "%s", r.code);
    *status = r.status;
    rt_buf_free(&body);
    rt_buf_free(&q);
    return rc;
}

static int completed_already(s3_client *c, const char *key, int64_t size, const char *code,
                             long status, char *err, size_t errlen);

static int open_file(s3_client *c, const char *op, const char *key, const char *path, int *fd,
                     int64_t *size, char *err, size_t errlen)
{
    struct stat st;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    int bad = *fd < 0 || fstat(*fd, &st);
    if (bad || !S_ISREG(st.st_mode)) {
        fmt(err, errlen, "s3 %s %s/%s: cannot read %s: %s", op, c->bucket, key, path,
            bad ? strerror(errno) : "not a regular file");
        if (*fd >= 0) close(*fd);
        *fd = -1;
        return -1;
    }
    *size = st.st_size;
    return 0;
}

int s3_put_file(s3_client *c, const char *key, const char *path, char *err, size_t errlen)
{
    int fd;
    int64_t size;
    if (open_file(c, "PutObject", key, path, &fd, &size, err, errlen)) return -1;
    int rc;
    if (size <= c->part_bytes) {
        s3_req r = req_init("PutObject", "PUT", key);
        r.fd = fd;
        r.off = 0;
        r.len = size;
        rc = s3_do(c, &r, err, errlen);
    } else {
        char *id, **tags, code[64];
        size_t n;
        long st;
        rc = mpu_upload_file(c, key, fd, size, &id, &tags, &n, err, errlen);
        if (!rc) {
            rc = mpu_complete(c, key, id, tags, n, code, sizeof code, &st, err, errlen);
            if (rc) rc = completed_already(c, key, size, code, st, err, errlen);
            if (rc) {
                char aerr[256];
                if (mpu_abort(c, key, id, aerr, sizeof aerr))
                    log_warn("s3", "abort after a failed completion failed: %s", aerr);
            }
            s3_handle_release(id, tags, n);
        }
    }
    close(fd);
    return rc;
}

int s3_stage_file(s3_client *c, const char *key, const char *path, char **handle, char *err,
                  size_t errlen)
{
    *handle = NULL;
    int fd;
    int64_t size;
    if (open_file(c, "UploadPart", key, path, &fd, &size, err, errlen)) return -1;
    char *id, **tags;
    size_t n;
    int rc = mpu_upload_file(c, key, fd, size, &id, &tags, &n, err, errlen);
    close(fd);
    if (rc) return -1;
    *handle = s3_handle_format(id, size, tags, n);
    if (!*handle) {
        char aerr[256];
        mpu_abort(c, key, id, aerr, sizeof aerr);
        fmt(err, errlen, "s3: out of memory");
        rc = -1;
    }
    s3_handle_release(id, tags, n);
    return rc;
}

/* After a failed CompleteMultipartUpload: was it completed already (a restore replaying its
 * checkpoint, or a retried request whose first try completed)? AWS says NoSuchUpload, s3rver
 * answers 500. The key holding an object of the staged size is what "already completed" looks
 * like. Returns 0 when so; else -1, with err replaced when the check says more than it did. */
static int completed_already(s3_client *c, const char *key, int64_t size, const char *code,
                             long status, char *err, size_t errlen)
{
    int gone = !strcmp(code, "NoSuchUpload");
    if (!gone && status < 500) return -1;
    char herr[256];
    int64_t have = -1;
    int h = s3_head(c, key, &have, herr, sizeof herr);
    if (h == 0 && have == size) {
        if (!gone)
            log_warn("s3",
                     "CompleteMultipartUpload failed status=%ld but key=%s/%s holds the "
                     "staged %" PRId64 " bytes: taken as already completed",
                     status, c->bucket, key, size);
        return 0;
    }
    if (h == 0)
        fmt(err, errlen,
            "s3 CompleteMultipartUpload %s/%s: the upload is gone (%s) and the key "
            "holds %" PRId64 " bytes, not the staged %" PRId64,
            c->bucket, key, gone ? "NoSuchUpload" : "HTTP 5xx", have, size);
    else if (h == 1 && gone)
        fmt(err, errlen,
            "s3 CompleteMultipartUpload %s/%s: the upload no longer exists "
            "(NoSuchUpload: aborted or expired) and the key is absent",
            c->bucket, key);
    else if (h < 0)
        fmt(err, errlen, "%s", herr);
    return -1;
}

int s3_publish(s3_client *c, const char *key, const char *handle, char *err, size_t errlen)
{
    char *id, **tags, code[64];
    size_t n;
    int64_t size;
    long status = 0;
    char perr[200];
    if (s3_handle_parse(handle, &id, &size, &tags, &n, perr, sizeof perr)) {
        fmt(err, errlen, "s3 CompleteMultipartUpload %s/%s: %s", c->bucket, key, perr);
        return -1;
    }
    int rc = mpu_complete(c, key, id, tags, n, code, sizeof code, &status, err, errlen);
    if (rc) rc = completed_already(c, key, size, code, status, err, errlen);
    s3_handle_release(id, tags, n);
    return rc;
}

int s3_abort(s3_client *c, const char *key, const char *handle, char *err, size_t errlen)
{
    char *id, **tags;
    size_t n;
    int64_t size;
    char perr[200];
    if (s3_handle_parse(handle, &id, &size, &tags, &n, perr, sizeof perr)) {
        fmt(err, errlen, "s3 AbortMultipartUpload %s/%s: %s", c->bucket, key, perr);
        return -1;
    }
    int rc = mpu_abort(c, key, id, err, errlen);
    s3_handle_release(id, tags, n);
    return rc;
}
