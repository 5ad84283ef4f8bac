/* Object store: the S3 client's pure parts (key and query encoding, ListObjectsV2 parsing, the
 * stage handle) and the local-directory backend end to end in a temp dir. The S3 wire side is
 * covered by tests/integration/test_s3_store.py against a signature-checking server. */
#include <dirent.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "connectors/objstore.h"
#include "connectors/s3.h"

/* ---- helpers ---- */

static char *enc_key(const char *k)
{
    rt_buf b;
    rt_buf_init(&b, 0);
    assert_int_equal(s3_encode_key(k, &b), 0);
    assert_int_equal(rt_buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

static char *enc_query(const char *const *kv, size_t n)
{
    rt_buf b;
    rt_buf_init(&b, 0);
    assert_int_equal(s3_encode_query(kv, n, &b), 0);
    assert_int_equal(rt_buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

typedef struct listed {
    char keys[16][128];
    int64_t sizes[16];
    int n;
    int stop_after; /* 0: never */
} listed;

static int collect(void *arg, const char *key, int64_t size)
{
    listed *l = arg;
    assert_true(l->n < 16);
    snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
    l->sizes[l->n++] = size;
    return l->stop_after && l->n >= l->stop_after ? 7 : 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static char *make_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    char *d = NULL;
    assert_true(asprintf(&d, "%s/test_objstore.XXXXXX", t && *t ? t : "/tmp") > 0);
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_tree(char *d)
{
    nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(d);
}

/* Counts the files whose name starts with '.' anywhere under dir. */
static int count_hidden(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st)) continue;
        if (de->d_name[0] == '.') n++;
        if (S_ISDIR(st.st_mode)) n += count_hidden(p);
    }
    closedir(d);
    return n;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* ---- encoding ---- */

static void test_key_encoding(void **st)
{
    (void)st;
    char *e = enc_key("dt=2024-01-01/hour=03/part a+b.avro");
    assert_string_equal(e, "dt%3D2024-01-01/hour%3D03/part%20a%2Bb.avro");
    free(e);
    e = enc_key("AZaz09-._~/x");
    assert_string_equal(e, "AZaz09-._~/x");
    free(e);
    /* UTF-8 bytes one by one, uppercase hex; reserved characters all escaped */
    e = enc_key("\xc3\xa9t\xc3\xa9/?#&%!'()*,;:@$");
    assert_string_equal(e, "%C3%A9t%C3%A9/%3F%23%26%25%21%27%28%29%2A%2C%3B%3A%40%24");
    free(e);
}

static void test_query_encoding(void **st)
{
    (void)st;
    /* valueless keys get '=' (curl 7.88 does not add it) */
    const char *uploads[] = {"uploads", NULL};
    char *q = enc_query(uploads, 1);
    assert_string_equal(q, "uploads=");
    free(q);
    /* sorted by name whatever the order given; '/' and '=' in values encoded */
    const char *part[] = {"uploadId", "a/b=c+d", "partNumber", "12"};
    q = enc_query(part, 2);
    assert_string_equal(q, "partNumber=12&uploadId=a%2Fb%3Dc%2Bd");
    free(q);
    const char *list[] = {"prefix", "dt=2024-01-01/h",    "list-type",
                          "2",      "continuation-token", "tok/+="};
    q = enc_query(list, 3);
    assert_string_equal(q,
                        "continuation-token=tok%2F%2B%3D&list-type=2&prefix=dt%3D2024-01-01%2Fh");
    free(q);
    /* an empty value stays as "name=" */
    const char *empty[] = {"prefix", "", "list-type", "2"};
    q = enc_query(empty, 2);
    assert_string_equal(q, "list-type=2&prefix=");
    free(q);
}

/* ---- ListObjectsV2 ---- */

static const char page1[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>test</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>p/a&amp;b &lt;c&gt; &quot;q&quot; &apos;s&apos;.txt</Key>"
    "<LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>&quot;abc&quot;</ETag>"
    "<Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>p/dt=2024-01-01/caf&#233; &#x1F600;</Key><Size>0</Size></Contents>"
    "<NextContinuationToken>tok&amp;1==</NextContinuationToken>"
    "</ListBucketResult>";

static void test_list_parse_truncated(void **st)
{
    (void)st;
    listed l = {0};
    s3_list_page pg;
    char err[256];
    assert_int_equal(s3_parse_list(page1, strlen(page1), collect, &l, &pg, err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.keys[0], "p/a&b <c> \"q\" 's'.txt");
    assert_int_equal(l.sizes[0], 12);
    assert_string_equal(l.keys[1], "p/dt=2024-01-01/caf\xc3\xa9 \xf0\x9f\x98\x80");
    assert_int_equal(l.sizes[1], 0);
    assert_int_equal(pg.truncated, 1);
    assert_string_equal(pg.next_token, "tok&1==");
    free(pg.next_token);
}

static void test_list_parse_last_and_errors(void **st)
{
    (void)st;
    char err[256];
    s3_list_page pg;
    listed l = {0};
    const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                       "<Contents><Key>k</Key><Size>9007199254740993</Size></Contents>"
                       "</ListBucketResult>";
    assert_int_equal(s3_parse_list(last, strlen(last), collect, &l, &pg, err, sizeof err), 0);
    assert_int_equal(pg.truncated, 0);
    assert_null(pg.next_token);
    assert_int_equal(l.n, 1);
    assert_true(l.sizes[0] == INT64_C(9007199254740993));

    /* an empty bucket */
    const char *empty = "<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
                        "</ListBucketResult>";
    memset(&l, 0, sizeof l);
    assert_int_equal(s3_parse_list(empty, strlen(empty), collect, &l, &pg, err, sizeof err), 0);
    assert_int_equal(l.n, 0);

    /* the callback stops the walk: its value comes back */
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    assert_int_equal(s3_parse_list(page1, strlen(page1), collect, &l, &pg, err, sizeof err), 7);
    assert_int_equal(l.n, 1);

    static const char *bad[] = {
        "<Error><Code>AccessDenied</Code></Error>",
        "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>1</Size>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&l, 0, sizeof l);
        err[0] = 0;
        assert_int_equal(s3_parse_list(bad[i], strlen(bad[i]), collect, &l, &pg, err, sizeof err),
                         -1);
        assert_true(strstr(err, "ListObjectsV2") != NULL);
        assert_null(pg.next_token);
    }
}

static void test_xml_unescape(void **st)
{
    (void)st;
    char *s = s3_xml_unescape("&#65;&#x42;&amp;&lt;", 20);
    assert_string_equal(s, "AB&<");
    free(s);
    assert_null(s3_xml_unescape("&#0;", 4));
    assert_null(s3_xml_unescape("&#xD800;", 8));
    assert_null(s3_xml_unescape("a & b", 5));
}

/* ---- stage handle ---- */

static void test_handle_round_trip(void **st)
{
    (void)st;
    char *tags[] = {"\"9b2cf535f27731c974343645a3985328\"", "\"x,y:z%\"", "\"e\""};
    const char *uid = "2~iCw:abc,def%/+=";
    char *h = s3_handle_format(uid, INT64_C(12000000), tags, 3);
    assert_non_null(h);
    assert_int_equal(strncmp(h, "s3mpu1:", 7), 0);
    /* the separators never appear inside the fields */
    int colons = 0, commas = 0;
    for (const char *p = h; *p; p++) {
        colons += *p == ':';
        commas += *p == ',';
    }
    assert_int_equal(colons, 3);
    assert_int_equal(commas, 2);
    char *id, **et, err[200];
    size_t n;
    int64_t size;
    assert_int_equal(s3_handle_parse(h, &id, &size, &et, &n, err, sizeof err), 0);
    assert_string_equal(id, uid);
    assert_true(size == INT64_C(12000000));
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(et[i], tags[i]);
    s3_handle_release(id, et, n);
    free(h);

    static const char *bad[] = {"dir/.x.pending",  "s3mpu1:",         "s3mpu1:abc",
                                "s3mpu1:id:e",     "s3mpu1::5:e",     "s3mpu1:id::e",
                                "s3mpu1:id:-1:e",  "s3mpu1:id:5:",    "s3mpu1:id:5:a,,b",
                                "s3mpu1:id:5:%zz", "s3mpu1:id:5:a b", "s3mpu1:id:5:%2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(s3_handle_parse(bad[i], &id, &size, &et, &n, err, sizeof err), -1);
        assert_null(id);
        assert_true(strstr(err, "handle") != NULL);
    }
}

/* ---- local backend ---- */

static int list_all(objstore *s, const char *prefix, listed *l)
{
    char err[512];
    memset(l, 0, sizeof *l);
    int rc = objstore_list(s, prefix, collect, l, err, sizeof err);
    if (rc) fprintf(stderr, "list: %s\n", err);
    return rc;
}

static void test_local_put_get_list(void **st)
{
    (void)st;
    char *dir = make_tmpdir();
    char root[512], err[512];
    snprintf(root, sizeof root, "%s/store/", dir); /* not created yet; trailing '/' allowed */
    objstore *s;
    assert_int_equal(objstore_open(root, NULL, &s, err, sizeof err), 0);
    assert_int_equal(objstore_is_s3(s), 0);

    const char *keys[] = {"b/x", "a-c", "a/b/c", "dt=2024-01-01/hour=03/part 1 \xc3\xa9.avro",
                          "a/b0"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(objstore_put(s, keys[i], keys[i], strlen(keys[i]), err, sizeof err), 0);
    /* replacing is atomic too */
    assert_int_equal(objstore_put(s, "b/x", "new", 3, err, sizeof err), 0);
    assert_int_equal(count_hidden(dir), 0);

    rt_buf b;
    rt_buf_init(&b, 1 << 20);
    assert_int_equal(objstore_get(s, "b/x", &b, err, sizeof err), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "new", 3);
    assert_int_equal(objstore_get(s, "b/missing", &b, err, sizeof err), 1);
    assert_int_equal(objstore_get(s, "a-c/under-a-file", &b, err, sizeof err), 1);
    rt_buf_free(&b);
    rt_buf_init(&b, 2);
    assert_int_equal(objstore_get(s, "b/x", &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "3 bytes"));
    assert_non_null(strstr(err, "limit of 2 bytes"));
    assert_non_null(strstr(err, "b/x"));
    rt_buf_free(&b);

    /* byte order across directories: "a-c" < "a/b/c" < "a/b0" < "b/x" < "dt=..." */
    listed l;
    assert_int_equal(list_all(s, "", &l), 0);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.keys[0], "a-c");
    assert_string_equal(l.keys[1], "a/b/c");
    assert_string_equal(l.keys[2], "a/b0");
    assert_string_equal(l.keys[3], "b/x");
    assert_string_equal(l.keys[4], keys[3]);
    assert_int_equal(l.sizes[3], 3);
    /* prefixes that end mid-name and mid-directory */
    assert_int_equal(list_all(s, "a/b", &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.keys[0], "a/b/c");
    assert_string_equal(l.keys[1], "a/b0");
    assert_int_equal(list_all(s, "dt=2024-01-01/", &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(list_all(s, "zzz/", &l), 0);
    assert_int_equal(l.n, 0);
    /* a stray temp file from a crashed writer is not an object */
    char stray[600];
    snprintf(stray, sizeof stray, "%s/store/b/.x.tmp-0000000000000001", dir);
    write_file(stray, "junk", 4);
    assert_int_equal(list_all(s, "b/", &l), 0);
    assert_int_equal(l.n, 1);

    /* put_file copies */
    char src[600];
    snprintf(src, sizeof src, "%s/src.bin", dir);
    write_file(src, "0123456789", 10);
    assert_int_equal(objstore_put_file(s, "files/f", src, err, sizeof err), 0);
    rt_buf_init(&b, 100);
    assert_int_equal(objstore_get(s, "files/f", &b, err, sizeof err), 0);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "0123456789", 10);
    rt_buf_free(&b);

    assert_int_equal(objstore_delete(s, "files/f", err, sizeof err), 0);
    assert_int_equal(objstore_delete(s, "files/f", err, sizeof err), 0);
    rt_buf_init(&b, 100);
    assert_int_equal(objstore_get(s, "files/f", &b, err, sizeof err), 1);
    rt_buf_free(&b);

    objstore_stats sts = objstore_get_stats(s);
    assert_true(sts.requests > 10);
    assert_true(sts.bytes_up >= 13);
    objstore_free(s);
    rm_tree(dir);
}

static void test_local_bad_keys(void **st)
{
    (void)st;
    char *dir = make_tmpdir();
    char err[512];
    objstore *s;
    assert_int_equal(objstore_open(dir, NULL, &s, err, sizeof err), 0);
    static const char *bad[] = {"", "/abs", "a//b", "a/../b", "..", "a/.hidden", "x/", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(objstore_put(s, bad[i], "x", 1, err, sizeof err), -1);
        assert_non_null(strstr(err, "key"));
    }
    objstore_free(s);
    assert_int_equal(objstore_open("ftp://x/y", NULL, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "scheme"));
    rm_tree(dir);
}

static void test_local_stage_publish_abort(void **st)
{
    (void)st;
    char *dir = make_tmpdir();
    char root[512], err[512], src[600];
    snprintf(root, sizeof root, "%s/out", dir);
    snprintf(src, sizeof src, "%s/part.tmp", dir);
    write_file(src, "staged bytes", 12);
    objstore *s;
    assert_int_equal(objstore_open(root, NULL, &s, err, sizeof err), 0);
    const char *key = "raw/t/dt=2024-01-01/hour=03/part-1.avro";

    char *h = NULL;
    assert_int_equal(objstore_stage_file(s, key, src, &h, err, sizeof err), 0);
    assert_string_equal(h, "raw/t/dt=2024-01-01/hour=03/.part-1.avro.pending");
    /* durable but invisible */
    listed l;
    assert_int_equal(list_all(s, "", &l), 0);
    assert_int_equal(l.n, 0);
    rt_buf b;
    rt_buf_init(&b, 100);
    assert_int_equal(objstore_get(s, key, &b, err, sizeof err), 1);
    /* the source file may go away once staged */
    assert_int_equal(unlink(src), 0);

    /* a handle of another key is refused */
    assert_int_equal(objstore_publish(s, "raw/t/other.avro", h, err, sizeof err), -1);
    assert_non_null(strstr(err, "handle"));

    assert_int_equal(objstore_publish(s, key, h, err, sizeof err), 0);
    assert_int_equal(objstore_get(s, key, &b, err, sizeof err), 0);
    assert_int_equal(b.len, 12);
    assert_memory_equal(b.data, "staged bytes", 12);
    assert_int_equal(list_all(s, "", &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], key);
    /* a replayed publish (restore after a crash) is not an error */
    assert_int_equal(objstore_publish(s, key, h, err, sizeof err), 0);
    assert_int_equal(count_hidden(dir), 0);
    free(h);

    /* stage then abort: nothing stays, and publishing the aborted handle fails */
    write_file(src, "gone", 4);
    const char *k2 = "raw/t/dt=2024-01-01/hour=03/part-2.avro";
    assert_int_equal(objstore_stage_file(s, k2, src, &h, err, sizeof err), 0);
    assert_int_equal(objstore_abort(s, k2, h, err, sizeof err), 0);
    assert_int_equal(objstore_abort(s, k2, h, err, sizeof err), 0);
    assert_int_equal(count_hidden(dir), 0);
    assert_int_equal(objstore_publish(s, k2, h, err, sizeof err), -1);
    assert_non_null(strstr(err, "neither staged nor published"));
    assert_int_equal(objstore_get(s, k2, &b, err, sizeof err), 1);
    free(h);

    /* an empty file stages and publishes as an empty object */
    write_file(src, "", 0);
    assert_int_equal(objstore_stage_file(s, "e/empty", src, &h, err, sizeof err), 0);
    assert_int_equal(objstore_publish(s, "e/empty", h, err, sizeof err), 0);
    assert_int_equal(objstore_get(s, "e/empty", &b, err, sizeof err), 0);
    assert_int_equal(b.len, 0);
    free(h);

    rt_buf_free(&b);
    objstore_free(s);
    rm_tree(dir);
}

/* ---- S3 configuration and failures without a server ---- */

static void test_s3_open_errors(void **st)
{
    (void)st;
    char err[512];
    objstore *s;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(objstore_open("s3://bucket/p", NULL, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
    objstore_config cfg = {.access_key = "AK", .secret_key = "sk", .part_bytes = 1 << 20};
    assert_int_equal(objstore_open("s3://bucket/p", &cfg, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "part size"));
    assert_int_equal(objstore_open("s3:///p", &cfg, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "bucket"));
}

/* Nothing listens on port 1: every attempt fails to connect, is retried, and the final error
 * says how many attempts were made, names the key, and never shows the secret. */
static void test_s3_retries_then_fails_without_secret(void **st)
{
    (void)st;
    const char *secret = "TopSecretValue-123456";
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    objstore_config cfg = {.endpoint = "http://127.0.0.1:1", .max_attempts = 3, .backoff_ms = 1};
    objstore *s;
    char err[1024];
    assert_int_equal(objstore_open("s3://bkt/pre", &cfg, &s, err, sizeof err), 0);
    assert_int_equal(objstore_is_s3(s), 1);
    assert_int_equal(objstore_put(s, "dt=1/k", "x", 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "PutObject"));
    assert_non_null(strstr(err, "bkt/pre/dt=1/k"));
    assert_non_null(strstr(err, "after 3 attempts"));
    assert_null(strstr(err, secret));
    objstore_stats sts = objstore_get_stats(s);
    assert_int_equal(sts.requests, 3);
    assert_int_equal(sts.retries, 2);
    assert_int_equal(sts.failures, 1);
    objstore_free(s);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_encoding),
        cmocka_unit_test(test_query_encoding),
        cmocka_unit_test(test_list_parse_truncated),
        cmocka_unit_test(test_list_parse_last_and_errors),
        cmocka_unit_test(test_xml_unescape),
        cmocka_unit_test(test_handle_round_trip),
        cmocka_unit_test(test_local_put_get_list),
        cmocka_unit_test(test_local_bad_keys),
        cmocka_unit_test(test_local_stage_publish_abort),
        cmocka_unit_test(test_s3_open_errors),
        cmocka_unit_test(test_s3_retries_then_fails_without_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
