#include "runtime/flags.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/log.h"

#define FIELD(t, d) ((void *)((char *)(t)->base + (d)->offset))

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- durations ---- */

/* Parses one decimal number (digits with an optional fraction) at *p; advances *p. */
static int parse_decimal(const char **p, double *out)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s) && *s != '.') return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno) return -1;
    /* strtod also takes exponents and hex; durations only use plain decimals */
    for (const char *q = s; q < end; q++)
        if (!isdigit((unsigned char)*q) && *q != '.') return -1;
    *out = v;
    *p = end;
    return 0;
}

int flags_parse_duration(const char *s, int64_t *ms)
{
    if (!s || !*s) return -1;
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (*p != 'P' && *p != 'p') {
        /* plain integer milliseconds; one sign only ("--5" is not 5, and "--9223372036854775808"
         * would negate LLONG_MIN) */
        if (*p == '-' || *p == '+') return -1;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || *end || errno) return -1;
        *ms = neg ? -v : v;
        return 0;
    }
    p++;
    double total = 0;
    int in_time = 0, any = 0;
    /* order of units: days, then T, hours, minutes, seconds; each at most once */
    int last_rank = -1;
    while (*p) {
        if (*p == 'T' || *p == 't') {
            if (in_time) return -1;
            in_time = 1;
            p++;
            if (!*p) return -1;
            continue;
        }
        int vneg = 0;
        if (*p == '-') vneg = 1, p++;
        double v;
        if (parse_decimal(&p, &v)) return -1;
        if (vneg) v = -v;
        int rank;
        double unit;
        switch (toupper((unsigned char)*p)) {
        case 'W': if (in_time) return -1; rank = 0; unit = 7 * 86400e3; break;
        case 'D': if (in_time) return -1; rank = 1; unit = 86400e3; break;
        case 'H': if (!in_time) return -1; rank = 2; unit = 3600e3; break;
        case 'M': if (!in_time) return -1; rank = 3; unit = 60e3; break; /* months rejected */
        case 'S': if (!in_time) return -1; rank = 4; unit = 1e3; break;
        default: return -1;
        }
        if (rank <= last_rank) return -1;
        last_rank = rank;
        total += v * unit;
        any = 1;
        p++;
    }
    if (!any) return -1;
    if (!isfinite(total) || fabs(total) > 9.2e18) return -1;
    int64_t v = (int64_t)llround(total);
    *ms = neg ? -v : v;
    return 0;
}

void flags_format_duration(int64_t ms, char *buf, size_t cap)
{
    const char *sign = "";
    uint64_t u = (uint64_t)ms;
    if (ms < 0) sign = "-", u = (uint64_t)(-(ms + 1)) + 1;
    if (u == 0) {
        snprintf(buf, cap, "PT0S");
        return;
    }
    uint64_t d = u / 86400000, rem = u % 86400000;
    uint64_t h = rem / 3600000, m = rem / 60000 % 60, s = rem / 1000 % 60, f = rem % 1000;
    size_t n = (size_t)snprintf(buf, cap, "%sP", sign);
    if (d && n < cap) n += (size_t)snprintf(buf + n, cap - n, "%" PRIu64 "D", d);
    if (rem && n < cap) {
        n += (size_t)snprintf(buf + n, cap - n, "T");
        if (h && n < cap) n += (size_t)snprintf(buf + n, cap - n, "%" PRIu64 "H", h);
        if (m && n < cap) n += (size_t)snprintf(buf + n, cap - n, "%" PRIu64 "M", m);
        if ((s || f) && n < cap) {
            if (f) {
                char frac[8];
                snprintf(frac, sizeof frac, "%03" PRIu64, f);
                for (int i = 2; i > 0 && frac[i] == '0'; i--) frac[i] = 0;
                snprintf(buf + n, cap - n, "%" PRIu64 ".%sS", s, frac);
            } else {
                snprintf(buf + n, cap - n, "%" PRIu64 "S", s);
            }
        }
    }
}

/* ---- values ---- */

static const char *type_name(flag_type t)
{
    switch (t) {
    case FLAG_BOOL: return "bool";
    case FLAG_INT: return "int";
    case FLAG_DOUBLE: return "number";
    case FLAG_STRING: return "string";
    case FLAG_DURATION: return "duration";
    case FLAG_LIST: return "list";
    case FLAG_MAP: return "map";
    }
    return "?";
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) return *out = true, 0;
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) return *out = false, 0;
    return -1;
}

/* Limits on what a flag value may make us allocate. */
#define FLAGS_MAX_LIST 4096
#define FLAGS_MAX_VALUE (64 * 1024)

static void list_clear(flag_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int list_add(flag_list *l, const char *v)
{
    if (l->n >= FLAGS_MAX_LIST) return -1;
    char **items = realloc(l->items, (l->n + 1) * sizeof *items);
    if (!items) return -1;
    l->items = items;
    if (!(l->items[l->n] = strdup(v))) return -1;
    l->n++;
    return 0;
}

/* Stores text value v into the field of d. from_default: the value comes from the table. */
static int set_value(const flag_table *t, const flag_def *d, const char *v, int from_default,
                     char *err, size_t errlen)
{
    void *f = FIELD(t, d);
    const char *what = from_default ? "default of" : "value for";
    if (strlen(v) > FLAGS_MAX_VALUE) {
        seterr(err, errlen, "flag --%s: value is %zu bytes, over the limit of %d", d->name,
               strlen(v), FLAGS_MAX_VALUE);
        return -1;
    }
    switch (d->type) {
    case FLAG_BOOL:
        if (parse_bool(v, (bool *)f)) {
            seterr(err, errlen, "flag --%s: bad %s boolean '%s' (want true or false)", d->name,
                   what, v);
            return -1;
        }
        return 0;
    case FLAG_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno) {
            seterr(err, errlen, "flag --%s: bad %s integer '%s'", d->name, what, v);
            return -1;
        }
        *(int64_t *)f = x;
        return 0;
    }
    case FLAG_DOUBLE: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) {
            seterr(err, errlen, "flag --%s: bad %s number '%s'", d->name, what, v);
            return -1;
        }
        *(double *)f = x;
        return 0;
    }
    case FLAG_STRING: {
        char *copy = strdup(v);
        if (!copy) return seterr(err, errlen, "out of memory"), -1;
        free(*(char **)f);
        *(char **)f = copy;
        return 0;
    }
    case FLAG_DURATION:
        if (flags_parse_duration(v, (int64_t *)f)) {
            seterr(err, errlen,
                   "flag --%s: bad %s duration '%s' (want ISO-8601 like PT5M, P1D, PT0.5S, "
                   "or milliseconds)",
                   d->name, what, v);
            return -1;
        }
        return 0;
    case FLAG_MAP:
        if (!strchr(v, '=') || *v == '=') {
            seterr(err, errlen, "flag --%s: bad %s map item '%s' (want key=value)", d->name, what,
                   v);
            return -1;
        }
        /* fallthrough */
    case FLAG_LIST:
        if (list_add((flag_list *)f, v)) {
            seterr(err, errlen, "flag --%s: more than %d values, or out of memory", d->name,
                   FLAGS_MAX_LIST);
            return -1;
        }
        return 0;
    }
    return -1;
}

static void clear_field(const flag_table *t, const flag_def *d)
{
    void *f = FIELD(t, d);
    switch (d->type) {
    case FLAG_BOOL: *(bool *)f = false; break;
    case FLAG_INT:
    case FLAG_DURATION: *(int64_t *)f = 0; break;
    case FLAG_DOUBLE: *(double *)f = 0; break;
    case FLAG_STRING:
        free(*(char **)f);
        *(char **)f = NULL;
        break;
    case FLAG_LIST:
    case FLAG_MAP: list_clear((flag_list *)f); break;
    }
}

int flags_defaults(const flag_table *tables, size_t ntables, char *err, size_t errlen)
{
    for (size_t i = 0; i < ntables; i++)
        for (size_t j = 0; j < tables[i].n; j++) {
            const flag_def *d = &tables[i].defs[j];
            clear_field(&tables[i], d);
            if (!d->def) continue;
            if (d->type == FLAG_LIST || d->type == FLAG_MAP) {
                /* a list default is comma-separated */
                char *copy = strdup(d->def), *save = NULL;
                if (!copy) return seterr(err, errlen, "out of memory"), -1;
                for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                    if (set_value(&tables[i], d, tok, 1, err, errlen)) {
                        free(copy);
                        return -1;
                    }
                free(copy);
            } else if (set_value(&tables[i], d, d->def, 1, err, errlen)) {
                return -1;
            }
        }
    return 0;
}

/* Does name match d's name or one of its aliases? */
static int name_matches(const flag_def *d, const char *name, size_t len)
{
    if (strlen(d->name) == len && !strncmp(d->name, name, len)) return 1;
    if (!d->aliases) return 0;
    const char *a = d->aliases;
    while (*a) {
        const char *c = strchr(a, ',');
        size_t alen = c ? (size_t)(c - a) : strlen(a);
        if (alen == len && !strncmp(a, name, len)) return 1;
        if (!c) break;
        a = c + 1;
    }
    return 0;
}

static const flag_def *lookup(const flag_table *tables, size_t ntables, const char *name,
                              size_t len, const flag_table **tab)
{
    for (size_t i = 0; i < ntables; i++)
        for (size_t j = 0; j < tables[i].n; j++)
            if (name_matches(&tables[i].defs[j], name, len)) {
                *tab = &tables[i];
                return &tables[i].defs[j];
            }
    return NULL;
}

int flags_parse(const flag_table *tables, size_t ntables, int argc, char **argv, char **pos,
                size_t maxpos, size_t *npos, bool *help, char *err, size_t errlen)
{
    *npos = 0;
    *help = false;
    if (flags_defaults(tables, ntables, err, errlen)) return -1;

    /* which flags were given: for FLAG_REQUIRED, and so a repeated list flag replaces its
     * default instead of appending to it */
    size_t total = 0;
    for (size_t i = 0; i < ntables; i++) total += tables[i].n;
    unsigned char *given = calloc(total ? total : 1, 1);
    if (!given) return seterr(err, errlen, "out of memory"), -1;
    int rc = -1;

    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            *help = true;
            rc = 0;
            goto out;
        }
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) {
                if (*npos >= maxpos) goto toomany;
                pos[(*npos)++] = argv[i];
            }
            break;
        }
        if (a[0] != '-' || a[1] == 0) {
            if (*npos >= maxpos) goto toomany;
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const flag_table *tab = NULL;
        const flag_def *d = lookup(tables, ntables, name, len, &tab);
        int negated = 0;
        if (!d && len > 3 && !strncmp(name, "no-", 3)) {
            d = lookup(tables, ntables, name + 3, len - 3, &tab);
            if (d && d->type != FLAG_BOOL) d = NULL;
            negated = d != NULL;
        }
        if (!d) {
            seterr(err, errlen, "unknown flag '%.*s' (see --help)", (int)(len + (name - a)), a);
            goto out;
        }
        size_t idx = 0;
        for (size_t k = 0; k < ntables; k++) {
            if (&tables[k] == tab) break;
            idx += tables[k].n;
        }
        idx += (size_t)(d - tab->defs);

        const char *val;
        if (d->type == FLAG_BOOL) {
            if (negated && eq) {
                seterr(err, errlen, "flag --no-%s takes no value (got '%s')", d->name, eq + 1);
                goto out;
            }
            val = negated ? "false" : eq ? eq + 1 : "true";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            seterr(err, errlen, "flag --%s needs a %s value", d->name, type_name(d->type));
            goto out;
        }
        if ((d->type == FLAG_LIST || d->type == FLAG_MAP) && !given[idx])
            clear_field(tab, d); /* the first explicit value replaces the default list */
        if (set_value(tab, d, val, 0, err, errlen)) goto out;
        given[idx] = 1;
        if (d->flags & FLAG_PENDING)
            log_warn("flags", "flag --%s is accepted but its feature has not landed yet: %s",
                     d->name, d->help);
    }

    size_t idx = 0;
    for (size_t i = 0; i < ntables; i++)
        for (size_t j = 0; j < tables[i].n; j++, idx++)
            if ((tables[i].defs[j].flags & FLAG_REQUIRED) && !given[idx]) {
                seterr(err, errlen, "flag --%s is required", tables[i].defs[j].name);
                goto out;
            }
    rc = 0;
    goto out;
toomany:
    seterr(err, errlen, "unexpected argument '%s' (at most %zu positional arguments)",
           argv[argc - 1 < 0 ? 0 : argc - 1], maxpos);
out:
    free(given);
    return rc;
}

void flags_help(FILE *out, const char *usage, const flag_table *tables, size_t ntables)
{
    if (usage) fprintf(out, "usage: %s\n", usage);
    for (size_t i = 0; i < ntables; i++) {
        fprintf(out, "\n%s flags:\n", tables[i].title);
        for (size_t j = 0; j < tables[i].n; j++) {
            const flag_def *d = &tables[i].defs[j];
            char names[256];
            size_t n = (size_t)snprintf(names, sizeof names, "--%s%s", d->type == FLAG_BOOL ? "[no-]" : "",
                                        d->name);
            if (d->aliases) {
                const char *a = d->aliases;
                while (*a && n < sizeof names) {
                    const char *c = strchr(a, ',');
                    size_t alen = c ? (size_t)(c - a) : strlen(a);
                    n += (size_t)snprintf(names + n, sizeof names - n, ", %s%.*s",
                                          alen == 1 ? "-" : "--", (int)alen, a);
                    if (!c) break;
                    a = c + 1;
                }
            }
            fprintf(out, "  %s (%s", names, type_name(d->type));
            if (d->flags & FLAG_REQUIRED) fprintf(out, ", required");
            else fprintf(out, ", default %s", d->def ? (*d->def ? d->def : "\"\"") : (d->type == FLAG_BOOL ? "false" : "none"));
            fprintf(out, ")\n      %s%s%s\n", d->help ? d->help : "",
                    (d->flags & FLAG_IGNORED) ? " [accepted, no effect here]" : "",
                    (d->flags & FLAG_PENDING) ? " [accepted, feature not landed yet]" : "");
        }
    }
}

void flags_free(const flag_table *tables, size_t ntables)
{
    for (size_t i = 0; i < ntables; i++)
        for (size_t j = 0; j < tables[i].n; j++) {
            const flag_def *d = &tables[i].defs[j];
            if (d->type == FLAG_STRING || d->type == FLAG_LIST || d->type == FLAG_MAP)
                clear_field(&tables[i], d);
        }
}
