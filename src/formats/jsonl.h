/* JSON text pieces for JSON-lines outputs, written the way the reference's Jackson-based JSON
 * format writes them: strings in UTF-8 as they are, with '"', '\\' and the control characters
 * escaped ("\b \t \n \f \r" short, the others as \u00XX with upper-case hex); integers bare; and
 * UTC timestamps in ISO-8601. */
#ifndef LOGPROC_JSONL_H
#define LOGPROC_JSONL_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

/* Appends s (n bytes of UTF-8) as a quoted JSON string. Returns 0 or -1 (out's limit; out is then
 * unchanged). O(n). */
int jsonl_put_string(rt_buf *out, const char *s, size_t n);

/* Appends v in decimal. Returns 0 or -1. */
int jsonl_put_long(rt_buf *out, int64_t v);

/* Appends the raw bytes of a NUL-terminated literal (punctuation, keys known to need no escape).
 * Returns 0 or -1. */
int jsonl_put_raw(rt_buf *out, const char *lit);

/* Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ" in UTC, with ".fff" before the Z when the
 * milliseconds are not zero, into buf (at least 32 bytes). */
void jsonl_format_utc(int64_t ms, char *buf, size_t cap);

/* Formats the UTC date of ms as "YYYY-MM-DD" into buf (at least 16 bytes). */
void jsonl_format_date(int64_t ms, char *buf, size_t cap);

#endif
