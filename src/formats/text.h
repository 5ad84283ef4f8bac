/* Text helpers that must match the reference pipeline's Java string semantics. */
#ifndef LOGPROC_TEXT_H
#define LOGPROC_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s contains a character that Java's Character.isUpperCase accepts (general category
 * Lu, or Other_Uppercase). Title-case letters (Lt, like U+01C5) are not upper case. Invalid
 * UTF-8 bytes count as not upper case. O(len). */
bool text_has_upper(const char *s, size_t len);

/* Lower-cases s like Java's String.toLowerCase(Locale.ROOT): full Unicode simple case mapping
 * plus Java's special cases (U+0130 becomes "i" + U+0307; a capital sigma at the end of a word
 * becomes the final sigma U+03C2). out must hold text_lower_cap(len) bytes; the result is
 * NUL-terminated and its length stored in *out_len. Invalid UTF-8 bytes are copied as they are
 * (callers validate UTF-8 first). O(len), no allocation. */
void text_lower(const char *s, size_t len, char *out, size_t *out_len);

/* Upper bound of text_lower's output size for an input of len bytes, NUL included. */
static inline size_t text_lower_cap(size_t len)
{
    return len + len / 2 + 4;
}

/* Decimal digits of v into out (at least 21 bytes), NUL-terminated; returns their count. The
 * same text as printf's "%" PRIu64 / PRId64 without the printf machinery (the counter writes
 * several numbers per Redis command). */
size_t text_u64_dec(char *out, uint64_t v);
size_t text_i64_dec(char *out, int64_t v);

/* Lower-case hex digits of v without leading zeros into out (at least 17 bytes),
 * NUL-terminated; returns their count: printf's "%" PRIx64. */
size_t text_u64_hex(char *out, uint64_t v);

#endif
