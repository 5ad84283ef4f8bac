/* libFuzzer target: the backfill's Avro reader (formats/avro_decode.h), the code that reads
 * archive tables for `--source DIR|s3://` (connectors/avro_source.c).
 *
 * The first input byte picks what the rest is:
 *   - bit 0 clear: one datum, decoded with avdec_message against the LogRequest schema (bit 1
 *     clear) or the JoinedEvent schema (bit 1 set);
 *   - bit 0 set: a container file, read with avdec_file_open / avdec_file_next_block, and every
 *     block's data decoded datum after datum against the schema bit 1 picks.
 *
 * Checks: a decoded datum says how many bytes it used, within what it was given; the message
 * packs to protobuf bytes that protobuf-c unpacks again; a failure has an error text; blocks lie
 * inside the file and bad spans carry an error; a block claiming more datums than its bytes can
 * hold ends at its bytes. ASan/UBSan/LSan catch the rest (a datum that fails must leave nothing
 * allocated).
 *
 *   fuzz_avro_decode -max_len=65536 CORPUS_DIR */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.pb-c.h"
#include "formats/avro_decode.h"
#include "formats/avro_schema.h"
#include "logproc/join.pb-c.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

#define MAX_DATUMS 10000

static avsc_schema *schemas[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char err[512];
    CHECK(avsc_schema_new(&event__log_request__descriptor, &schemas[0], err, sizeof err) == 0);
    CHECK(avsc_schema_new(&event__joined_event__descriptor, &schemas[1], err, sizeof err) == 0);
    return 0;
}

/* Decodes one datum at data; returns the bytes it used, or 0 when it failed. */
static size_t one_datum(const avsc_schema *s, const uint8_t *data, size_t len)
{
    char err[512] = "";
    ProtobufCMessage *m = NULL;
    size_t used = 0;
    int rc = avdec_message(s, data, len, NULL, &m, &used, NULL, err, sizeof err);
    if (rc != 0) {
        CHECK(rc == -1 || rc == AVDEC_E_NOMEM);
        CHECK(err[0] != '\0');
        CHECK(m == NULL);
        return 0;
    }
    CHECK(m != NULL);
    CHECK(used <= len);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    CHECK(buf != NULL);
    CHECK(protobuf_c_message_pack(m, buf) == n);
    ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    CHECK(again != NULL);
    protobuf_c_message_free_unpacked(again, NULL);
    free(buf);
    protobuf_c_message_free_unpacked(m, NULL);
    return used ? used : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const avsc_schema *s = schemas[(mode >> 1) & 1];
    data++, size--;
    if (!(mode & 1)) {
        one_datum(s, data, size);
        return 0;
    }
    char err[512] = "";
    avdec_file *f;
    if (avdec_file_open(data, size, "fuzz.avro", 1 << 20, 4096, &f, err, sizeof err)) {
        CHECK(err[0] != '\0');
        return 0;
    }
    size_t slen;
    CHECK(avdec_file_schema(f, &slen) != NULL);
    CHECK(avdec_file_codec(f) != NULL);
    CHECK(avdec_file_data_offset(f) <= size);
    int datums = 0;
    for (int blocks = 0; blocks < 1000; blocks++) {
        avdec_block b;
        avdec_bad bad;
        int r = avdec_file_next_block(f, &b, &bad);
        if (r == 0) break;
        if (r == 2) {
            CHECK(bad.error && bad.error[0]);
            CHECK(bad.offset <= size);
            CHECK(bad.raw_len <= 4096 && bad.raw_len <= bad.full_len);
            continue;
        }
        CHECK(r == 1);
        CHECK(b.offset < b.end && b.end <= size);
        size_t pos = 0;
        for (int64_t i = 0; i < b.count && pos < b.len && datums < MAX_DATUMS; i++, datums++) {
            size_t used = one_datum(s, b.data + pos, b.len - pos);
            if (!used) break;
            pos += used;
        }
    }
    avdec_file_free(f);
    return 0;
}
