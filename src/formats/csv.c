#include "formats/csv.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Jackson's CsvEncoder: strings longer than this are quoted without looking at them. */
#define CSV_MAX_QUOTE_CHECK 24

size_t csv_utf16_length(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte */
        units += c >= 0xF0 ? 2 : 1;       /* a 4-byte sequence is a surrogate pair in Java */
    }
    return units;
}

int csv_needs_quotes(const char *s, size_t n)
{
    if (csv_utf16_length(s, n) > CSV_MAX_QUOTE_CHECK) return 1;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] < 45) return 1;
    return 0;
}

int csv_put_string(rt_buf *out, const char *s, size_t n)
{
    if (!csv_needs_quotes(s, n)) return rt_buf_append(out, s, n);
    size_t start = out->len;
    if (rt_buf_put_u8(out, '"')) return -1;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"') continue;
        /* the quote itself goes out with the run, then one more doubles it */
        if (rt_buf_append(out, s + run, i + 1 - run) || rt_buf_put_u8(out, '"')) goto limit;
        run = i + 1;
    }
    if (rt_buf_append(out, s + run, n - run) || rt_buf_put_u8(out, '"')) goto limit;
    return 0;
limit:
    out->len = start;
    return -1;
}

int csv_put_long(rt_buf *out, int64_t v)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    return rt_buf_append(out, tmp, (size_t)k);
}

int csv_put_header(rt_buf *out, const char *const *names, size_t n)
{
    size_t start = out->len;
    for (size_t i = 0; i < n; i++)
        if ((i && rt_buf_put_u8(out, ',')) || csv_put_string(out, names[i], strlen(names[i])))
            goto limit;
    if (rt_buf_put_u8(out, '\n')) goto limit;
    return 0;
limit:
    out->len = start;
    return -1;
}
