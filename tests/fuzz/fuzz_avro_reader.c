/* libFuzzer target: the Avro container reader of `logproc inspect` (formats/avro_file.h). The
 * input is the file. The reader only opens paths, so the bytes go into a memfd, opened through
 * /proc/self/fd: nothing touches a disk.
 *
 * Per input: avro_file_in_open (magic, metadata, codec, the schema through avro-c), then every
 * record (framing, sync markers, Snappy and its CRC, sizes against a limit, avro-c's datum
 * decode) printed as JSON like inspect does, and the JSON must parse back. A failure must come
 * with an error text naming the file. A small block limit (1 MiB instead of 64) keeps a lying
 * block size from costing the fuzzer memory; the check is the same.
 *
 *   fuzz_avro_reader -max_len=65536 CORPUS_DIR */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "formats/avro_file.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

#define MAX_RECORDS 10000 /* a block may claim 2^63 records of an empty record type */

static int fd = -1;
static char path[64];

static void cleanup(void)
{
    if (fd >= 0) close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("fuzz-avro", MFD_CLOEXEC);
        CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        atexit(cleanup);
    }
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

    char err[1024];
    err[0] = 0;
    avro_file_in *r;
    if (avro_file_in_open(path, 1 << 20, &r, err, sizeof err)) {
        if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "open: %s\n", err);
        CHECK(strstr(err, path) != NULL);
        return 0;
    }
    size_t slen;
    const char *schema = avro_file_in_schema_json(r, &slen);
    CHECK(schema != NULL && strlen(schema) <= slen);
    const char *codec = avro_file_in_codec(r);
    CHECK(!strcmp(codec, "null") || !strcmp(codec, "snappy"));
    avro_value_t *v;
    int rc;
    uint64_t n = 0;
    while (n < MAX_RECORDS && (rc = avro_file_in_next(r, &v, err, sizeof err)) == 1) {
        n++;
        json_t *j = avro_file_value_json(v);
        /* avro-c may hand back a datum whose string it could not allocate (the allocation cap,
         * avro_file.c): the JSON is then NULL and inspect reports "record N cannot be printed
         * as JSON" and stops, as here */
        if (!j) {
            n = MAX_RECORDS;
            break;
        }
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        CHECK(text != NULL);
        json_t *back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        CHECK(back != NULL);
        json_decref(back);
        free(text);
        json_decref(j);
    }
    if (n < MAX_RECORDS && rc < 0) CHECK(err[0] != '\0');
    if (n < MAX_RECORDS) CHECK(avro_file_in_records(r) == n);
    avro_file_in_close(r);
    return 0;
}
