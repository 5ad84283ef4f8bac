/* libFuzzer target: Redis replies and the RESP the counter's Redis sink writes.
 *
 * The sink (connectors/redis_sink.c) reads replies with hiredis' redisGetReply, whose parser is
 * hiredis' reader; it looks at each reply's type and, for an error, its text. The control
 * byte picks what the rest of the input is:
 *   0: a stream of replies, fed to a hiredis reader in two pieces (split where the second byte
 *      says, as a socket would deliver them) and read reply by reply the way the sink does:
 *      an error reply has its text, nested replies are walked and freed;
 *   1: arguments (split at NUL) that resp_append_command encodes as one command: the bytes must
 *      parse back through the reader as an array of bulk strings equal to the arguments, and be
 *      exactly resp_command_size long;
 *   2: a Redis URL for redis_sink_parse_url (host, port, db, password within their limits).
 *
 *   fuzz_redis_reply -max_len=4096 CORPUS_DIR */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include "connectors/redis_sink.h"
#include "connectors/resp.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

#define MAX_ARGS 64

static size_t walk(const redisReply *r, int depth)
{
    CHECK(depth < 10000);
    size_t n = 1;
    switch (r->type) {
    case REDIS_REPLY_ERROR:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING:
        CHECK(r->str != NULL && strlen(r->str) <= r->len);
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; i++) n += walk(r->element[i], depth + 1);
        break;
    default:
        break;
    }
    return n;
}

static void replies(const uint8_t *data, size_t size)
{
    redisReader *rd = redisReaderCreate();
    CHECK(rd != NULL);
    redis_reader_cap(rd); /* as the sink reads replies */
    size_t cut = size ? data[0] % (size + 1) : 0;
    if (size) data++, size--;
    if (cut > size) cut = size;
    int ok = redisReaderFeed(rd, (const char *)data, cut) == REDIS_OK;
    void *rv;
    for (int pass = 0; ok && pass < 2; pass++) {
        while ((ok = redisReaderGetReply(rd, &rv) == REDIS_OK) && rv) {
            walk(rv, 0);
            freeReplyObject(rv);
        }
        if (ok && pass == 0) ok = redisReaderFeed(rd, (const char *)data + cut, size - cut) == REDIS_OK;
    }
    if (!ok) CHECK(rd->err != 0 && rd->errstr[0] != '\0');
    redisReaderFree(rd);
}

static void command(const uint8_t *data, size_t size)
{
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS];
    int argc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
        if (i == size || data[i] == 0) {
            argv[argc] = (const char *)data + start;
            argvlen[argc++] = i - start;
            start = i + 1;
        }
    }
    rt_buf out;
    rt_buf_init(&out, 1 << 20);
    CHECK(resp_append_command(&out, argc, argv, argvlen) == 0);
    CHECK(out.len == resp_command_size(argc, argvlen));
    redisReader *rd = redisReaderCreate();
    CHECK(rd != NULL);
    CHECK(redisReaderFeed(rd, (const char *)out.data, out.len) == REDIS_OK);
    void *rv = NULL;
    CHECK(redisReaderGetReply(rd, &rv) == REDIS_OK && rv != NULL);
    redisReply *r = rv;
    CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)argc);
    for (int i = 0; i < argc; i++) {
        CHECK(r->element[i]->type == REDIS_REPLY_STRING);
        CHECK(r->element[i]->len == argvlen[i]);
        CHECK(!memcmp(r->element[i]->str, argv[i], argvlen[i]));
    }
    freeReplyObject(r);
    /* nothing after the one command */
    CHECK(redisReaderGetReply(rd, &rv) == REDIS_OK && rv == NULL);
    redisReaderFree(rd);
    rt_buf_free(&out);
}

static void url(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = 0;
    char host[256], pass[256], err[512];
    int port = -1, db = -1;
    err[0] = 0;
    if (redis_sink_parse_url(s, host, sizeof host, &port, &db, pass, sizeof pass, err,
                             sizeof err) == 0) {
        CHECK(host[0] != '\0' && strlen(host) < sizeof host && strlen(pass) < sizeof pass);
        CHECK(port >= 1 && port <= 65535 && db >= 0);
    } else {
        CHECK(err[0] != '\0');
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    switch (data[0] % 3) {
    case 0: replies(data + 1, size - 1); break;
    case 1: command(data + 1, size - 1); break;
    default: url(data + 1, size - 1); break;
    }
    return 0;
}
