/* Flags: each command declares its flags once, in a static table (name, aliases, type, default,
 * offset into its options struct, help). One routine parses argv against the tables, fills the
 * structs, checks values, and prints --help from the same tables.
 *
 * Syntax (the reference pipeline's): `--name=value` or `--name value`; single-letter aliases as
 * `-o value`; booleans as `--x`, `--x=true|false` and `--no-x`; list flags repeat
 * (`--disableS3Sink=a --disableS3Sink=b`); map flags take `key=value` items; durations are
 * ISO-8601 (`PT5M`, `P1D`, `PT0.5S`) or plain milliseconds. Errors name the flag and the value. */
#ifndef LOGPROC_FLAGS_H
#define LOGPROC_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    FLAG_BOOL,     /* bool */
    FLAG_INT,      /* int64_t */
    FLAG_DOUBLE,   /* double */
    FLAG_STRING,   /* char * (owned by the struct; flags_free releases it) */
    FLAG_DURATION, /* int64_t milliseconds */
    FLAG_LIST,     /* flag_list: every occurrence appended */
    FLAG_MAP,      /* flag_list of "key=value" items, each checked to contain '=' */
} flag_type;

/* flag_def.flags bits */
#define FLAG_REQUIRED 0x1 /* must be given (the reference's required flags) */
#define FLAG_IGNORED 0x2  /* accepted for compatibility; has no effect here (help says so) */
#define FLAG_PENDING 0x4  /* accepted; its feature has not landed: one warning names what is used */

typedef struct flag_list {
    char **items;
    size_t n;
} flag_list;

typedef struct flag_def {
    const char *name;    /* long name without dashes: "checkpointInterval" */
    const char *aliases; /* comma-separated other names ("s3OutputDirectory,o"); NULL for none.
                            A one-letter alias is written -x. */
    flag_type type;
    const char *def;     /* default as text, parsed like a value; NULL: 0/false/NULL/empty */
    size_t offset;       /* offsetof(options struct, field) */
    const char *help;
    unsigned flags;
} flag_def;

/* One table of definitions bound to the struct it fills. */
typedef struct flag_table {
    const char *title; /* section heading in --help, e.g. "common", "raw-output" */
    const flag_def *defs;
    size_t n;
    void *base;
} flag_table;

#define FLAG_TABLE(title, defs, base) {(title), (defs), sizeof(defs) / sizeof((defs)[0]), (base)}

/* Sets every field of every table to its default. Returns 0, or -1 with err set if a default does
 * not parse (a bug in a table). */
int flags_defaults(const flag_table *tables, size_t ntables, char *err, size_t errlen);

/* Parses argv[0..argc) (no program name) into the tables, after applying defaults.
 * Positional arguments are collected, in order, into pos[0..*npos) (pointers into argv), at most
 * maxpos. Sets *help when -h/--help was given (then nothing else is checked).
 * Returns 0, or -1 with err naming the flag and the bad value: unknown flag, missing value,
 * bad number, bad duration, missing required flag, too many positionals. */
int flags_parse(const flag_table *tables, size_t ntables, int argc, char **argv, char **pos,
                size_t maxpos, size_t *npos, bool *help, char *err, size_t errlen);

/* Prints every flag of every table with its aliases, type, default and help. */
void flags_help(FILE *out, const char *usage, const flag_table *tables, size_t ntables);

/* Frees strings and lists the tables own. The structs themselves belong to the caller. */
void flags_free(const flag_table *tables, size_t ntables);

/* ISO-8601 duration ("PT1M", "P1D", "PT0.25S", "-PT1S", "P1DT2H") or an integer of milliseconds
 * into *ms. Years and months are rejected (their length varies). Returns 0 or -1. */
int flags_parse_duration(const char *s, int64_t *ms);

/* Formats ms as ISO-8601 ("PT5M", "P1D", "PT0.2S", "PT0S") into buf. */
void flags_format_duration(int64_t ms, char *buf, size_t cap);

#endif
