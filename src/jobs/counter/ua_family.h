/* OS and user-agent families of a user agent string, as the device count tables key them
 * (spec/other-jobs.md §B.3: uap-java's Parser.parseOS(ua).family and parseUserAgent(ua).family).
 *
 * uap parsers try an ordered list of regexes; the first that matches names the family (its
 * replacement, or its first capture group); no match, or an empty user agent, is "Other". This
 * module applies the same rule to a built-in list written for logproc that covers the families
 * the spec's vectors and the generator use (okhttp, CFNetwork apps on iOS, Chrome and Chrome
 * Mobile, Safari, Firefox, Edge on Android, iOS, Mac OS X, Windows, Linux, Chrome OS); it is a
 * subset of uap-core's regexes.yaml, so a user agent outside it is "Other" where uap would name
 * it (docs/COUNTER.md). Patterns are PCRE2 (UTF); each parser has its own match data, so one
 * parser per thread. */
#ifndef LOGPROC_UA_FAMILY_H
#define LOGPROC_UA_FAMILY_H

#include <stddef.h>

/* Longest family returned; a longer capture (an app name) is cut at a UTF-8 boundary. */
#define UA_FAMILY_MAX 255

typedef struct ua_family ua_family;

typedef struct ua_family_result {
    const char *os; /* NUL-terminated; valid until the parser's next call */
    size_t os_len;
    const char *ua;
    size_t ua_len;
} ua_family_result;

/* Compiles the rules. Returns 0 with *out, or -1 with err (a rule PCRE2 rejects; out of memory). */
int ua_family_new(ua_family **out, char *err, size_t errlen);
void ua_family_free(ua_family *p);

/* The families of ua (len bytes of UTF-8). A small cache of recent user agents makes a repeated
 * one cost a hash and a compare; otherwise one PCRE2 search per rule until the first match.
 * Returns 0 (never fails: a search error counts as no match). */
int ua_family_parse(ua_family *p, const char *ua, size_t len, ua_family_result *r);

#endif
