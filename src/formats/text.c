#include "formats/text.h"

#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

/* Decodes one code point at s (n bytes left). Returns its byte length, or -1 for invalid UTF-8. */
static int decode_cp(const unsigned char *s, size_t n, int32_t *cp)
{
    utf8proc_ssize_t k = utf8proc_iterate(s, (utf8proc_ssize_t)n, cp);
    return k > 0 ? (int)k : -1;
}

static bool is_upper_cp(int32_t cp)
{
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z';
    /* Java: Lu or Other_Uppercase (the circled and squared Latin capitals) */
    if (utf8proc_category(cp) == UTF8PROC_CATEGORY_LU) return true;
    return (cp >= 0x2160 && cp <= 0x216F) || (cp >= 0x24B6 && cp <= 0x24CF) ||
           (cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
           (cp >= 0x1F170 && cp <= 0x1F189);
}

bool text_has_upper(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x80) {
            if (p[i] >= 'A' && p[i] <= 'Z') return true;
            i++;
            continue;
        }
        int32_t cp;
        int k = decode_cp(p + i, len - i, &cp);
        if (k < 0) {
            i++;
            continue;
        }
        if (is_upper_cp(cp)) return true;
        i += (size_t)k;
    }
    return false;
}

/* Cased and case-ignorable, as Unicode's Final_Sigma condition uses them (approximation with
 * general categories: cased = Lu/Ll/Lt; ignorable = Mn/Me/Cf/Lm/Sk plus a few punctuation). */
static bool is_cased(int32_t cp)
{
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

static bool is_case_ignorable(int32_t cp)
{
    if (cp == '\'' || cp == '.' || cp == ':' || cp == 0x00B7 || cp == 0x2019) return true;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF ||
           c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_SK;
}

/* Final_Sigma: preceded by a cased letter and not followed by one (skipping case-ignorables). */
static bool final_sigma(const unsigned char *s, size_t len, size_t at, size_t after)
{
    bool before = false;
    /* scan backwards code point by code point */
    size_t i = at;
    while (i > 0) {
        size_t j = i - 1;
        while (j > 0 && (s[j] & 0xC0) == 0x80) j--;
        int32_t cp;
        if (decode_cp(s + j, i - j, &cp) < 0) break;
        if (!is_case_ignorable(cp)) {
            before = is_cased(cp);
            break;
        }
        i = j;
    }
    if (!before) return false;
    for (size_t k = after; k < len;) {
        int32_t cp;
        int n = decode_cp(s + k, len - k, &cp);
        if (n < 0) break;
        if (!is_case_ignorable(cp)) return !is_cased(cp);
        k += (size_t)n;
    }
    return true;
}

void text_lower(const char *src, size_t len, char *out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) {
            unsigned char c = s[i++];
            out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            continue;
        }
        int32_t cp;
        int k = decode_cp(s + i, len - i, &cp);
        if (k < 0) {
            out[o++] = (char)s[i++];
            continue;
        }
        int32_t lo;
        if (cp == 0x0130) {
            /* Java (Locale.ROOT): LATIN CAPITAL I WITH DOT ABOVE -> "i" + COMBINING DOT ABOVE */
            out[o++] = 'i';
            o += (size_t)utf8proc_encode_char(0x0307, (utf8proc_uint8_t *)out + o);
            i += (size_t)k;
            continue;
        }
        if (cp == 0x03A3)
            lo = final_sigma(s, len, i, i + (size_t)k) ? 0x03C2 : 0x03C3;
        else
            lo = utf8proc_tolower(cp);
        o += (size_t)utf8proc_encode_char(lo, (utf8proc_uint8_t *)out + o);
        i += (size_t)k;
    }
    out[o] = 0;
    *out_len = o;
}

size_t text_u64_dec(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

size_t text_i64_dec(char *out, int64_t v)
{
    if (v >= 0) return text_u64_dec(out, (uint64_t)v);
    out[0] = '-';
    /* the magnitude of INT64_MIN does not fit in int64_t: negate in unsigned arithmetic */
    return 1 + text_u64_dec(out + 1, (uint64_t)0 - (uint64_t)v);
}

size_t text_u64_hex(char *out, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = hex[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}
