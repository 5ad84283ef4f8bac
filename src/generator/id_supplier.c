#include "generator/id_supplier.h"

#include <stdio.h>
#include <string.h>

/* Base UUIDs of the reference test factory (spec/fake-data.md §1.D), high halves only: every
 * low half is 0000-000000000000, so the n-th id of a kind is base + n in the low half. */
static const uint64_t incrementing_hi[IDSUP_KINDS] = {
    [IDSUP_USER] = 0,
    [IDSUP_LOG_USER] = 0x0000000000000000ULL,
    [IDSUP_MEMBERSHIP] = 0xccccccccccccccccULL,
    [IDSUP_SESSION] = 0x1111111111111111ULL,
    [IDSUP_VIEW] = 0x2222222222222222ULL,
    [IDSUP_AUTO_VIEW] = 0x7777777777777777ULL,
    [IDSUP_REQUEST] = 0x3333333333333333ULL,
    [IDSUP_INSERTION] = 0x4444444444444444ULL,
    [IDSUP_IMPRESSION] = 0x5555555555555555ULL,
    [IDSUP_ACTION] = 0x6666666666666666ULL,
};

/* SplitMix64 finaliser: a strong 64-bit mixer; stepping its input by the golden gamma gives a
 * fast generator with full period, good enough for ids that only need to look random. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define GAMMA 0x9e3779b97f4a7c15ULL

void idsup_init(idsup *s, idsup_mode mode, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    /* each kind starts from its own point of the seed's sequence, far apart */
    for (int k = 0; k < IDSUP_KINDS; k++)
        s->state[k] = mix64(seed ^ mix64((uint64_t)(k + 1) * GAMMA));
}

gen_id idsup_next(idsup *s, idsup_kind kind)
{
    gen_id id;
    uint64_t n = ++s->count[kind];
    if (s->mode == IDSUP_INCREMENTING) {
        id.hi = incrementing_hi[kind];
        id.lo = n; /* base low half is zero; Java adds n to it as a long */
        return id;
    }
    s->state[kind] += GAMMA;
    id.hi = mix64(s->state[kind]);
    s->state[kind] += GAMMA;
    id.lo = mix64(s->state[kind]);
    /* RFC 4122 version 4 (random) and variant 10xx */
    id.hi = (id.hi & ~0xF000ULL) | 0x4000ULL;
    id.lo = (id.lo & ~(0xC000ULL << 48)) | (0x8000ULL << 48);
    return id;
}

static const char hexdig[] = "0123456789abcdef";

static inline char *put_hex(char *p, uint64_t v, int nibbles_from, int nibbles_to)
{
    /* nibble 0 is the most significant of the 16 */
    for (int i = nibbles_from; i < nibbles_to; i++)
        *p++ = hexdig[(v >> (60 - 4 * i)) & 0xF];
    return p;
}

size_t idsup_format_uuid(gen_id id, char *out)
{
    char *p = out;
    p = put_hex(p, id.hi, 0, 8);
    *p++ = '-';
    p = put_hex(p, id.hi, 8, 12);
    *p++ = '-';
    p = put_hex(p, id.hi, 12, 16);
    *p++ = '-';
    p = put_hex(p, id.lo, 0, 4);
    *p++ = '-';
    p = put_hex(p, id.lo, 4, 16);
    *p = 0;
    return IDSUP_UUID_LEN;
}

size_t idsup_format_user(const idsup *s, gen_id id, char *out)
{
    if (s->mode == IDSUP_INCREMENTING)
        return (size_t)snprintf(out, 48, "userId%llu", (unsigned long long)id.lo);
    memcpy(out, "userId-", 7);
    return 7 + idsup_format_uuid(id, out + 7);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int idsup_parse_uuid(const char *text, gen_id *out)
{
    if (strlen(text) != IDSUP_UUID_LEN) return -1;
    uint64_t half[2] = {0, 0};
    int nib = 0;
    for (int i = 0; i < IDSUP_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') return -1;
            continue;
        }
        int v = hexval(text[i]);
        if (v < 0) return -1;
        half[nib / 16] = half[nib / 16] << 4 | (uint64_t)v;
        nib++;
    }
    out->hi = half[0];
    out->lo = half[1];
    return 0;
}
