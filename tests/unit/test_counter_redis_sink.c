/* The Redis sink's pieces that need no server: RESP command bytes, redis:// URLs, the command
 * file (hidden while written, published whole, removed when never closed), and the buffer limit.
 * The server side (pipelining, retries, a server stopped mid-run) is
 * tests/integration/test_counter_redis.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>

#include "connectors/redis_sink.h"
#include "connectors/resp.h"

static void test_resp_bytes(void **s)
{
    rt_buf b;
    rt_buf_init(&b, 1024);
    const char *argv[] = {"HSET", "20\x1f\x1du\x1f", "1237060", "12"};
    size_t len[] = {4, 6, 7, 2};
    assert_int_equal(resp_append_command(&b, 4, argv, len), 0);
    static const char want[] =
        "*4\r\n$4\r\nHSET\r\n$6\r\n20\x1f\x1du\x1f\r\n$7\r\n1237060\r\n$2\r\n12\r\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    assert_int_equal(resp_command_size(4, len), sizeof want - 1);
    /* binary-safe: NUL and CRLF inside an argument */
    rt_buf_reset(&b);
    const char *bin[] = {"SET", "a\0\r\nb"};
    size_t blen[] = {3, 5};
    assert_int_equal(resp_append_command(&b, 2, bin, blen), 0);
    assert_memory_equal(b.data, "*2\r\n$3\r\nSET\r\n$5\r\na\0\r\nb\r\n", b.len);
    /* over the buffer's limit: refused, the buffer unchanged */
    rt_buf small;
    rt_buf_init(&small, 10);
    assert_int_equal(resp_append_command(&small, 4, argv, len), -1);
    assert_int_equal(small.len, 0);
    rt_buf_free(&small);
    rt_buf_free(&b);
}

static void test_urls(void **s)
{
    char host[64], pass[64], err[256];
    int port, db;
    assert_int_equal(redis_sink_parse_url("redis://redis-master:6379/10", host, sizeof host, &port,
                                          &db, pass, sizeof pass, err, sizeof err),
                     0);
    assert_string_equal(host, "redis-master");
    assert_int_equal(port, 6379);
    assert_int_equal(db, 10);
    assert_string_equal(pass, "");
    assert_int_equal(redis_sink_parse_url("redis://127.0.0.1", host, sizeof host, &port, &db, pass,
                                          sizeof pass, err, sizeof err),
                     0);
    assert_int_equal(port, 6379);
    assert_int_equal(db, 0);
    assert_int_equal(redis_sink_parse_url("redis://:s3cret@h:7000/", host, sizeof host, &port, &db,
                                          pass, sizeof pass, err, sizeof err),
                     0);
    assert_string_equal(pass, "s3cret");
    assert_string_equal(host, "h");
    assert_int_equal(port, 7000);
    const char *bad[] = {"http://h:1/0",    "redis://",       "redis://h:0",
                         "redis://h:99999", "redis://h:12/x", "redis://h:12/1/2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(redis_sink_parse_url(bad[i], host, sizeof host, &port, &db, pass,
                                              sizeof pass, err, sizeof err),
                         -1);
        assert_non_null(strstr(err, bad[i]));
    }
    /* a bad URL with a password is named without it */
    assert_int_equal(redis_sink_parse_url("redis://:s3cret@h:0", host, sizeof host, &port, &db, pass,
                                          sizeof pass, err, sizeof err),
                     -1);
    assert_null(strstr(err, "s3cret"));
    assert_non_null(strstr(err, "redis://***@h:0"));
}

static char dir[64];

static void test_file_mode(void **s)
{
    snprintf(dir, sizeof dir, "/tmp/counter-sink-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[128], tmp[128], sub[128];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    snprintf(path, sizeof path, "%s/a/b/cmds.resp", dir);
    snprintf(tmp, sizeof tmp, "%s/a/b/.cmds.resp.inprogress", dir);
    redis_sink_config cfg = {.path = path, .batch_commands = 2};
    redis_sink *rs;
    char err[256];
    assert_int_equal(redis_sink_new(&cfg, &rs, err, sizeof err), 0);
    const char *ping = "PING";
    size_t pl = 4;
    for (int i = 0; i < 5; i++)
        assert_int_equal(redis_sink_command(rs, 1, &ping, &pl, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);   /* written while hidden */
    assert_int_equal(stat(path, &st), -1); /* not published yet */
    assert_int_equal(redis_sink_close(rs, err, sizeof err), 0);
    redis_sink_stats stats;
    redis_sink_get_stats(rs, &stats);
    assert_int_equal(stats.commands, 5);
    assert_int_equal(stats.batches, 3); /* 2 + 2 + the last one at close */
    redis_sink_free(rs);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 5 * 14);
    assert_int_equal(stat(tmp, &st), -1);
    unlink(path);

    /* never closed: the hidden file goes away, nothing is published */
    assert_int_equal(redis_sink_new(&cfg, &rs, err, sizeof err), 0);
    assert_int_equal(redis_sink_command(rs, 1, &ping, &pl, err, sizeof err), 0);
    redis_sink_free(rs);
    assert_int_equal(stat(tmp, &st), -1);
    assert_int_equal(stat(path, &st), -1);

    /* a command over the buffer limit is an error naming the flag */
    redis_sink_config small = {.path = path, .max_buffer_bytes = 64};
    assert_int_equal(redis_sink_new(&small, &rs, err, sizeof err), 0);
    char big[100];
    memset(big, 'x', sizeof big);
    const char *argv[] = {"SET", big};
    size_t len[] = {3, sizeof big};
    assert_int_equal(redis_sink_command(rs, 2, argv, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "--redisBufferBytes"));
    redis_sink_free(rs);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/a", dir);
    rmdir(sub);
    assert_int_equal(rmdir(dir), 0);
}

static void test_unreachable_server_gives_up(void **s)
{
    /* nothing listens on port 1: with a short retry limit the sink fails, naming the limit */
    redis_sink_config cfg = {.url = "redis://127.0.0.1:1/0",
                             .timeout_ms = 200,
                             .backoff_max_ms = 20,
                             .retry_limit_ms = 150};
    redis_sink *rs = NULL;
    char err[512];
    assert_int_equal(redis_sink_new(&cfg, &rs, err, sizeof err), -1);
    assert_null(rs);
    assert_non_null(strstr(err, "redis://127.0.0.1:1/0"));
    assert_non_null(strstr(err, "--redisRetryTimeout"));
}

/* A reply claiming a billion elements is an error, not an 8 GB allocation; small arrays pass. */
static void test_reader_caps_array_replies(void **unused)
{
    (void)unused;
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    redis_reader_cap(r);
    void *reply = NULL;
    assert_int_equal(redisReaderFeed(r, "*2\r\n:1\r\n$1\r\nx\r\n", 15), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_non_null(reply);
    assert_int_equal(((redisReply *)reply)->elements, 2);
    freeReplyObject(reply);
    reply = NULL;
    assert_int_equal(redisReaderFeed(r, "*1000000000\r\n", 13), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    redisReaderFree(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_bytes),
        cmocka_unit_test(test_reader_caps_array_replies),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_file_mode),
        cmocka_unit_test(test_unreachable_server_gives_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
