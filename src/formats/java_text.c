#include "formats/java_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one code point of UTF-8 at s (n > 0 bytes left) into *cp; returns the bytes used.
 * A malformed sequence uses one byte and gives U+FFFD. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    if (len > n) {
        *cp = 0xfffd;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        *cp = 0xfffd;
        return 1;
    }
    *cp = v;
    return len;
}

int32_t java_string_hash(const char *s, size_t len)
{
    /* unsigned arithmetic wraps like Java's int */
    uint32_t h = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (len) {
        uint32_t cp;
        size_t k = utf8_next(p, len, &cp);
        p += k, len -= k;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xd800 + (cp >> 10));
            h = 31 * h + (0xdc00 + (cp & 0x3ff));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)h;
}

/* Shortest decimal digits that read back to v (as float when is_float): the digits without a
 * point into digits[], the decimal exponent of the first digit into *exp10. */
static void shortest_digits(double v, int is_float, char *digits, int *exp10)
{
    char tmp[48];
    int maxp = is_float ? 9 : 17;
    int p;
    for (p = 1; p <= maxp; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v) break;
    }
    if (p == 1) {
        /* Java (JDK 19+ specification): when one digit is enough, two-digit candidates
         * compete too and the closest to v wins: Float.MIN_VALUE is 1.4E-45, not 1.0E-45 */
        char two[48];
        snprintf(two, sizeof two, "%.1e", v);
        int ok2 = is_float ? strtof(two, NULL) == (float)v : strtod(two, NULL) == v;
        /* distances of the decimals themselves: long double holds them apart */
        long double x = v, d1 = strtold(tmp, NULL), d2 = strtold(two, NULL);
        if (ok2 && fabsl(d2 - x) < fabsl(d1 - x)) memcpy(tmp, two, sizeof two);
    }
    /* tmp is "[-]d[.ddd]e[+-]xx" */
    const char *c = tmp;
    if (*c == '-') c++;
    int n = 0;
    for (; *c && *c != 'e'; c++)
        if (*c != '.') digits[n++] = *c;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = 0;
    *exp10 = atoi(c + 1);
}

static void java_fp(double v, int is_float, char *buf, size_t cap)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (v == 0) {
        snprintf(buf, cap, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char digits[32];
    int e;
    shortest_digits(v, is_float, digits, &e);
    const char *sign = v < 0 ? "-" : "";
    int nd = (int)strlen(digits);
    char out[96];
    size_t o = 0;
    if (e >= -3 && e < 7) {
        if (e >= 0) {
            /* integer part: digits[0..e], zero-padded */
            for (int i = 0; i <= e; i++)
                out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > e + 1)
                for (int i = e + 1; i < nd; i++)
                    out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -e - 1; i++)
                out[o++] = '0';
            for (int i = 0; i < nd; i++)
                out[o++] = digits[i];
        }
        out[o] = 0;
        snprintf(buf, cap, "%s%s", sign, out);
    } else {
        out[o++] = digits[0];
        out[o++] = '.';
        if (nd > 1)
            for (int i = 1; i < nd; i++)
                out[o++] = digits[i];
        else
            out[o++] = '0';
        out[o] = 0;
        snprintf(buf, cap, "%s%sE%d", sign, out, e);
    }
}

size_t java_float_string(float f, char *buf, size_t cap)
{
    java_fp((double)f, 1, buf, cap);
    return strlen(buf);
}

size_t java_double_string(double d, char *buf, size_t cap)
{
    java_fp(d, 0, buf, cap);
    return strlen(buf);
}
