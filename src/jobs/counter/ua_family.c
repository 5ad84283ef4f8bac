#include "jobs/counter/ua_family.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef struct rule {
    const char *re;
    const char *family; /* NULL: the first capture group */
} rule;

/* First match wins, so specific rules come before general ones (Chrome Mobile before Chrome,
 * Edge and Chrome before Safari, whose token every Chromium user agent carries). */
static const rule ua_rules[] = {
    {"(okhttp)/\\d+", NULL},
    {"Edg(?:e|A|iOS)?/\\d+", "Edge"},
    {"CriOS/\\d+", "Chrome Mobile iOS"},
    {"FxiOS/\\d+", "Firefox iOS"},
    {"; wv\\).+Chrome/\\d+", "Chrome Mobile WebView"},
    {"Chrome/\\d+(?:\\.\\d+)*\\s+Mobile", "Chrome Mobile"},
    {"(?:Chrome|Chromium)/\\d+", "Chrome"},
    {"(?:Mobile|Tablet);.+Firefox/\\d+", "Firefox Mobile"},
    {"Firefox/\\d+", "Firefox"},
    {"(?:iPhone|iPad|iPod).*Version/\\d+.*Mobile.*Safari", "Mobile Safari"},
    {"Version/\\d+.*Safari/", "Safari"},
    /* an app on Apple's network stack: "promoted/980 CFNetwork/1240.0.4 Darwin/20.6.0" */
    {"^([^/]+)/[\\d.]* CFNetwork", NULL},
    {"(curl)/\\d+", NULL},
    {"python-requests/\\d+", "Python Requests"},
    {"(Googlebot)/\\d+", NULL},
};

static const rule os_rules[] = {
    {"Windows NT", "Windows"},
    {"CFNetwork/.+ Darwin/\\d+.*\\((?:x86_64|arm64)\\)", "Mac OS X"},
    {"CFNetwork/.+ Darwin/\\d+", "iOS"},
    {"(?:iPhone|iPad|iPod).* OS \\d+", "iOS"},
    {"Android", "Android"},
    {"CrOS", "Chrome OS"},
    {"Mac OS X", "Mac OS X"},
    {"Ubuntu", "Ubuntu"},
    {"Linux", "Linux"},
};

#define NUA (sizeof ua_rules / sizeof ua_rules[0])
#define NOS (sizeof os_rules / sizeof os_rules[0])
#define CACHE_SLOTS 16
#define CACHE_MAX_UA 512

typedef struct cache_slot {
    size_t len; /* 0: empty */
    char ua[CACHE_MAX_UA];
    char os_family[UA_FAMILY_MAX + 1];
    char ua_family[UA_FAMILY_MAX + 1];
} cache_slot;

struct ua_family {
    pcre2_code *ua_code[NUA];
    pcre2_code *os_code[NOS];
    pcre2_match_data *md;
    char os[UA_FAMILY_MAX + 1];
    char ua[UA_FAMILY_MAX + 1];
    cache_slot cache[CACHE_SLOTS];
};

static int compile(const rule *r, pcre2_code **out, char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    *out = pcre2_compile((PCRE2_SPTR)r->re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    if (*out) return 0;
    char msg[128];
    pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
    snprintf(err, errlen, "user agent rule /%s/ at offset %zu: %s", r->re, (size_t)off, msg);
    return -1;
}

int ua_family_new(ua_family **out, char *err, size_t errlen)
{
    ua_family *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    for (size_t i = 0; i < NUA; i++)
        if (compile(&ua_rules[i], &p->ua_code[i], err, errlen)) goto fail;
    for (size_t i = 0; i < NOS; i++)
        if (compile(&os_rules[i], &p->os_code[i], err, errlen)) goto fail;
    if (!(p->md = pcre2_match_data_create(4, NULL))) goto oom;
    *out = p;
    return 0;
oom:
    snprintf(err, errlen, "user agent parser: out of memory");
fail:
    ua_family_free(p);
    return -1;
}

void ua_family_free(ua_family *p)
{
    if (!p) return;
    for (size_t i = 0; i < NUA; i++)
        pcre2_code_free(p->ua_code[i]);
    for (size_t i = 0; i < NOS; i++)
        pcre2_code_free(p->os_code[i]);
    pcre2_match_data_free(p->md);
    free(p);
}

/* Copies at most UA_FAMILY_MAX bytes, not splitting a UTF-8 sequence. */
static void copy_family(char *dst, const char *src, size_t n)
{
    if (n > UA_FAMILY_MAX) {
        n = UA_FAMILY_MAX;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void first_match(ua_family *p, pcre2_code *const *codes, const rule *rules, size_t n,
                        const char *s, size_t len, char *dst)
{
    for (size_t i = 0; i < n; i++) {
        if (pcre2_match(codes[i], (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK, p->md, NULL) <= 0)
            continue;
        if (rules[i].family) {
            copy_family(dst, rules[i].family, strlen(rules[i].family));
        } else {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);
            copy_family(dst, s + ov[2], ov[3] - ov[2]);
        }
        if (*dst) return;
    }
    strcpy(dst, "Other");
}

static uint32_t fnv(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int ua_family_parse(ua_family *p, const char *ua, size_t len, ua_family_result *r)
{
    cache_slot *slot = NULL;
    if (len > 0 && len <= CACHE_MAX_UA) {
        slot = &p->cache[fnv(ua, len) % CACHE_SLOTS];
        if (slot->len == len && !memcmp(slot->ua, ua, len)) {
            r->os = slot->os_family;
            r->ua = slot->ua_family;
            goto done;
        }
    }
    if (len == 0) {
        strcpy(p->os, "Other");
        strcpy(p->ua, "Other");
    } else {
        first_match(p, p->os_code, os_rules, NOS, ua, len, p->os);
        first_match(p, p->ua_code, ua_rules, NUA, ua, len, p->ua);
    }
    if (slot) {
        slot->len = len;
        memcpy(slot->ua, ua, len);
        strcpy(slot->os_family, p->os);
        strcpy(slot->ua_family, p->ua);
        r->os = slot->os_family;
        r->ua = slot->ua_family;
    } else {
        r->os = p->os;
        r->ua = p->ua;
    }
done:
    r->os_len = strlen(r->os);
    r->ua_len = strlen(r->ua);
    return 0;
}
