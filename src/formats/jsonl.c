#include "formats/jsonl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int jsonl_put_string(rt_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t start = out->len, run = 0;
    if (rt_buf_put_u8(out, '"')) return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (rt_buf_append(out, s + run, i - run)) goto limit;
        run = i + 1;
        char esc[7] = {'\\', 0};
        size_t k = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\t': esc[1] = 't'; break;
        case '\n': esc[1] = 'n'; break;
        case '\f': esc[1] = 'f'; break;
        case '\r': esc[1] = 'r'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        }
        if (rt_buf_append(out, esc, k)) goto limit;
    }
    if (rt_buf_append(out, s + run, n - run) || rt_buf_put_u8(out, '"')) goto limit;
    return 0;
limit:
    out->len = start;
    return -1;
}

int jsonl_put_long(rt_buf *out, int64_t v)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    return rt_buf_append(out, tmp, (size_t)k);
}

int jsonl_put_raw(rt_buf *out, const char *lit)
{
    return rt_buf_append(out, lit, strlen(lit));
}

/* Splits ms into whole seconds and milliseconds, flooring (times before 1970 stay correct). */
static void split_ms(int64_t ms, time_t *sec, int *milli)
{
    int64_t s = ms / 1000, r = ms % 1000;
    if (r < 0) r += 1000, s--;
    *sec = (time_t)s;
    *milli = (int)r;
}

void jsonl_format_utc(int64_t ms, char *buf, size_t cap)
{
    time_t sec;
    int milli;
    split_ms(ms, &sec, &milli);
    struct tm tm;
    gmtime_r(&sec, &tm);
    if (milli)
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
    else
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void jsonl_format_date(int64_t ms, char *buf, size_t cap)
{
    time_t sec;
    int milli;
    split_ms(ms, &sec, &milli);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, cap, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
