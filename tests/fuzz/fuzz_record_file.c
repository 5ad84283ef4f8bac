/* libFuzzer target for the record-file reader. The input is a control byte, then the file.
 * The control byte's low 7 bits pick the --maxRecordBytes limit (0: the default 1 MiB, else
 * n * 16 + 1), so the over-limit path is reachable with small inputs. Its high bit asks to
 * "repair" the file first: every sync marker gets a correct header_crc and, when its frame fits,
 * a correct frame_crc. Without that a fuzzer almost never guesses a CRC, and would only ever
 * see bad spans. Checks the same invariants as tests/unit/test_record_file_mutate.c and aborts
 * on a violation.
 *
 *   fuzz_record_file -max_total_time=60 -max_len=4096 CORPUS_DIR */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/crc32c.h"
#include "formats/record_file.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void repair(uint8_t *p, size_t n)
{
    for (size_t i = 0; i + RECFILE_HEADER_BYTES <= n; i++) {
        if (memcmp(p + i, RECFILE_SYNC, RECFILE_SYNC_BYTES) != 0) continue;
        put_le32(p + i + 20, crc32c_update_sw(0, p + i, 20));
        uint64_t body = (uint64_t)RECFILE_HEADER_BYTES + le32(p + i + 4) + le32(p + i + 8);
        if (body + 4 <= n - i) put_le32(p + i + body, crc32c_update_sw(0, p + i, (size_t)body));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    unsigned ctl = data[0];
    size_t max = (ctl & 0x7F) ? (size_t)(ctl & 0x7F) * 16 + 1 : RECFILE_DEFAULT_MAX_RECORD_BYTES;
    data++;
    size--;
    /* A private copy, so reading one byte past the end is an ASan report. */
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    if (ctl & 0x80) repair(copy, size);

    recfile_reader *r;
    CHECK(recfile_reader_open_mem(copy, size, max, &r) == 0);
    uint64_t at = 0;
    recfile_record rec;
    recfile_bad bad;
    int rc;
    while ((rc = recfile_next(r, &rec, &bad)) != 0) {
        if (rc == 1) {
            size_t body = RECFILE_HEADER_BYTES + rec.key_len + rec.value_len;
            CHECK(rec.offset == at);
            CHECK(rec.offset + body + 4 <= size);
            CHECK(rec.key_len + rec.value_len <= max);
            const uint8_t *f = copy + rec.offset;
            CHECK(!memcmp(f, RECFILE_SYNC, RECFILE_SYNC_BYTES));
            CHECK(crc32c_update_sw(0, f, 20) == le32(f + 20));
            CHECK(crc32c_update_sw(0, f, body) == le32(f + body));
            at = rec.offset + body + 4;
        } else {
            CHECK(rc == 2);
            CHECK(bad.offset == at);
            CHECK(bad.full_len > 0 && bad.offset + bad.full_len <= size);
            CHECK(bad.raw_len <= bad.full_len && bad.raw_len <= max);
            CHECK(bad.error != NULL && bad.error[0] != '\0');
            at = bad.offset + bad.full_len;
        }
        CHECK(recfile_reader_position(r) == at);
    }
    CHECK(at == size);
    recfile_reader_close(r);
    free(copy);
    return 0;
}
