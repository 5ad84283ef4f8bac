#include "generator/java_random.h"

#include <math.h>
#include <string.h>

#define LCG_MULT 0x5DEECE66DULL
#define LCG_ADD 0xBULL
#define LCG_MASK ((1ULL << 48) - 1)

void jrandom_seed(jrandom *r, int64_t seed)
{
    r->seed = ((uint64_t)seed ^ LCG_MULT) & LCG_MASK;
}

int32_t jrandom_next(jrandom *r, int bits)
{
    r->seed = (r->seed * LCG_MULT + LCG_ADD) & LCG_MASK;
    /* Java: (int)(seed >>> (48 - bits)); the cast keeps the low 32 bits, signed */
    return (int32_t)(uint32_t)(r->seed >> (48 - bits));
}

float jrandom_next_float(jrandom *r)
{
    return (float)jrandom_next(r, 24) / (float)(1 << 24);
}

int32_t jrandom_next_int(jrandom *r)
{
    return jrandom_next(r, 32);
}

int64_t jrandom_next_long(jrandom *r)
{
    /* ((long)next(32) << 32) + next(32), the second term sign-extended */
    uint64_t hi = (uint64_t)(int64_t)jrandom_next(r, 32) << 32;
    int64_t lo = jrandom_next(r, 32);
    return (int64_t)(hi + (uint64_t)lo);
}

static inline uint32_t hash_unit(uint32_t h, uint32_t unit)
{
    return h * 31u + unit;
}

/* Decodes one UTF-8 sequence at s[0..len); returns its code point and sets *used. Bad bytes
 * give U+FFFD one byte at a time (the ids hashed here are ASCII; this only keeps odd input
 * deterministic). */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *used)
{
    unsigned char c = s[0];
    uint32_t cp;
    size_t n;
    if (c < 0x80) return *used = 1, c;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return *used = 1, 0xFFFD;
    if (n > len) return *used = 1, 0xFFFD;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return *used = 1, 0xFFFD;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    /* overlong forms, surrogates and values past U+10FFFF are malformed */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return *used = 1, 0xFFFD;
    *used = n;
    return cp;
}

int32_t jrandom_string_hash_more(int32_t h0, const char *s, size_t len)
{
    uint32_t h = (uint32_t)h0;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            h = hash_unit(h, p[i++]);
            continue;
        }
        size_t used;
        uint32_t cp = utf8_next(p + i, len - i, &used);
        i += used;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = hash_unit(h, 0xD800 + (cp >> 10));
            h = hash_unit(h, 0xDC00 + (cp & 0x3FF));
        } else {
            h = hash_unit(h, cp);
        }
    }
    return (int32_t)h;
}

int32_t jrandom_string_hash(const char *s, size_t len)
{
    return jrandom_string_hash_more(0, s, len);
}

int32_t jrandom_salted_hash(const char *id, size_t id_len, const char *salt)
{
    int32_t h = jrandom_string_hash(id, id_len);
    h = jrandom_string_hash_more(h, salt, strlen(salt));
    return (int32_t)((uint32_t)h * 31u + 17u);
}

bool jrandom_roll(float rate, const char *id, size_t id_len, const char *salt)
{
    /* nextFloat() lies in [0, 1), so these outcomes need no draw */
    if (!(rate > 0.0f)) return false;
    if (rate >= 1.0f) return true;
    jrandom r;
    jrandom_seed(&r, (int64_t)jrandom_salted_hash(id, id_len, salt)); /* int -> long sign-extends */
    return jrandom_next_float(&r) < rate;
}

int64_t jrandom_count(float rate, int64_t n, const char *id, size_t id_len, const char *salt)
{
    /* Java: rate * size is float * int, computed in float32 */
    volatile float x = rate * (float)n; /* volatile: no excess precision on any target */
    double lo = floor((double)x), hi = ceil((double)x);
    if (lo == hi) return (int64_t)lo;
    return jrandom_roll(rate, id, id_len, salt) ? (int64_t)hi : (int64_t)lo;
}

int32_t jrandom_mod_abs(int32_t x, int32_t m)
{
    int32_t v = x % m;
    return v < 0 ? v + m : v;
}
