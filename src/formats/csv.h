/* CSV fields as the reference's metric files write them: Jackson's CSV writer with its defaults
 * (spec/other-jobs.md §C.5). Separator ',', line end '\n', numbers bare, null as nothing, and a
 * string (a header name too) quoted when it is longer than 24 characters or holds a character
 * below '-' (code 45: space, '!', '"', '#', ..., ',', control characters), with an inner '"'
 * doubled. "Characters" are Java's UTF-16 units, so a string's length counts a character outside
 * the Basic Multilingual Plane twice; every byte of a multi-byte UTF-8 sequence is >= 0x80, so
 * the "below 45" test reads bytes. */
#ifndef LOGPROC_CSV_H
#define LOGPROC_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

/* Java's String.length() of the UTF-8 string s (n bytes): UTF-16 units. O(n). */
size_t csv_utf16_length(const char *s, size_t n);

/* 1 when Jackson's default writer quotes the string s (n bytes), else 0. O(n). */
int csv_needs_quotes(const char *s, size_t n);

/* Appends s (n bytes) as one field, quoted when csv_needs_quotes says so. Returns 0, or -1 when
 * out's limit is reached (out is then unchanged). */
int csv_put_string(rt_buf *out, const char *s, size_t n);

/* Appends v in decimal. Returns 0 or -1 (out's limit). */
int csv_put_long(rt_buf *out, int64_t v);

/* Appends the names as a header line: each a field as csv_put_string writes it, ',' between
 * them, '\n' at the end. Returns 0 or -1 (out's limit). */
int csv_put_header(rt_buf *out, const char *const *names, size_t n);

#endif
