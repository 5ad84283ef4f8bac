/* Flag tables: parsing, defaults, durations, errors that name the flag, --help. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/flags.h"

typedef struct opts {
    char *jobLabel;
    int64_t parallelism;
    int64_t checkpointInterval;
    bool logAvro;
    bool writeHudi;
    double rate;
    flag_list disable;
    flag_list multiplier;
    char *out;
} opts;

static const flag_def defs[] = {
    {"jobLabel", NULL, FLAG_STRING, "live", offsetof(opts, jobLabel), "label", 0},
    {"parallelism", "rawJobParallelism", FLAG_INT, "1", offsetof(opts, parallelism), "tasks", 0},
    {"checkpointInterval", NULL, FLAG_DURATION, "PT5M", offsetof(opts, checkpointInterval), "cp", 0},
    {"logAvro", NULL, FLAG_BOOL, "true", offsetof(opts, logAvro), "avro", 0},
    {"writeHudiTables", NULL, FLAG_BOOL, NULL, offsetof(opts, writeHudi), "hudi", 0},
    {"rate", NULL, FLAG_DOUBLE, "0.5", offsetof(opts, rate), "rate", 0},
    {"disableS3Sink", NULL, FLAG_LIST, NULL, offsetof(opts, disable), "uids", 0},
    {"operatorParallelismMultiplier", NULL, FLAG_MAP, NULL, offsetof(opts, multiplier), "m", 0},
    {"s3OutputDirectory", "s3Directory,o", FLAG_STRING, NULL, offsetof(opts, out), "root", 0},
};

static int parse(opts *o, char *err, size_t errlen, int argc, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) argv[i] = va_arg(ap, char *);
    va_end(ap);
    flag_table t[] = {FLAG_TABLE("test", defs, o)};
    char *pos[4];
    size_t npos;
    bool help;
    return flags_parse(t, 1, argc, argv, pos, 4, &npos, &help, err, errlen);
}

static void release(opts *o)
{
    flag_table t[] = {FLAG_TABLE("test", defs, o)};
    flags_free(t, 1);
}

static void test_defaults_apply_when_no_flag_given(void **s)
{
    opts o = {0};
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, 0), 0);
    assert_string_equal(o.jobLabel, "live");
    assert_int_equal(o.parallelism, 1);
    assert_int_equal(o.checkpointInterval, 5 * 60 * 1000);
    assert_true(o.logAvro);
    assert_false(o.writeHudi);
    assert_int_equal(o.disable.n, 0);
    assert_null(o.out);
    release(&o);
}

static void test_reference_syntax_forms(void **s)
{
    opts o = {0};
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, 9, "--jobLabel=blue", "--rawJobParallelism", "4",
                           "--no-logAvro", "--writeHudiTables", "--disableS3Sink=a",
                           "--disableS3Sink=b", "-o", "/tmp/x"),
                     0);
    assert_string_equal(o.jobLabel, "blue");
    assert_int_equal(o.parallelism, 4);
    assert_false(o.logAvro);
    assert_true(o.writeHudi);
    assert_int_equal(o.disable.n, 2);
    assert_string_equal(o.disable.items[1], "b");
    assert_string_equal(o.out, "/tmp/x");
    release(&o);
}

static void test_errors_name_flag_and_value(void **s)
{
    opts o = {0};
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, 1, "--checkpointInterval=5minutes"), -1);
    assert_non_null(strstr(err, "--checkpointInterval"));
    assert_non_null(strstr(err, "5minutes"));
    release(&o);
    assert_int_equal(parse(&o, err, sizeof err, 1, "--parallelism=two"), -1);
    assert_non_null(strstr(err, "--parallelism"));
    assert_non_null(strstr(err, "two"));
    release(&o);
    assert_int_equal(parse(&o, err, sizeof err, 1, "--nosuchFlag=1"), -1);
    assert_non_null(strstr(err, "nosuchFlag"));
    release(&o);
    assert_int_equal(parse(&o, err, sizeof err, 1, "--operatorParallelismMultiplier=x"), -1);
    assert_non_null(strstr(err, "key=value"));
    release(&o);
    assert_int_equal(parse(&o, err, sizeof err, 1, "--jobLabel"), -1);
    assert_non_null(strstr(err, "needs"));
    release(&o);
    assert_int_equal(parse(&o, err, sizeof err, 1, "--logAvro=maybe"), -1);
    assert_non_null(strstr(err, "maybe"));
    release(&o);
}

static void test_iso8601_durations(void **s)
{
    int64_t ms;
    assert_int_equal(flags_parse_duration("PT5M", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(flags_parse_duration("P1D", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(flags_parse_duration("PT0.5S", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(flags_parse_duration("P1DT2H3M4.005S", &ms), 0);
    assert_int_equal(ms, 86400000 + 2 * 3600000 + 3 * 60000 + 4005);
    assert_int_equal(flags_parse_duration("-PT1S", &ms), 0);
    assert_int_equal(ms, -1000);
    assert_int_equal(flags_parse_duration("1500", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(flags_parse_duration("PT20S", &ms), 0);
    assert_int_equal(ms, 20000);
    /* months and years have no fixed length; garbage and empty parts are errors */
    assert_int_equal(flags_parse_duration("P1M", &ms), -1);
    assert_int_equal(flags_parse_duration("P1Y", &ms), -1);
    assert_int_equal(flags_parse_duration("PT", &ms), -1);
    assert_int_equal(flags_parse_duration("P", &ms), -1);
    assert_int_equal(flags_parse_duration("PT1M1H", &ms), -1);
    assert_int_equal(flags_parse_duration("PT1X", &ms), -1);
    assert_int_equal(flags_parse_duration("", &ms), -1);
}

static void test_duration_format_round_trips(void **s)
{
    const int64_t cases[] = {0, 1, 200, 1000, 60000, 300000, 3600000, 86400000, 90061001, -1000};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        int64_t back;
        flags_format_duration(cases[i], buf, sizeof buf);
        assert_int_equal(flags_parse_duration(buf, &back), 0);
        assert_int_equal(back, cases[i]);
    }
    char buf[64];
    flags_format_duration(300000, buf, sizeof buf);
    assert_string_equal(buf, "PT5M");
}

static void test_help_lists_every_flag_with_default(void **s)
{
    opts o = {0};
    flag_table t[] = {FLAG_TABLE("test", defs, &o)};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    flags_help(f, "logproc test", t, 1);
    fclose(f);
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) assert_non_null(strstr(text, defs[i].name));
    assert_non_null(strstr(text, "default PT5M"));
    assert_non_null(strstr(text, "-o"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_apply_when_no_flag_given),
        cmocka_unit_test(test_reference_syntax_forms),
        cmocka_unit_test(test_errors_name_flag_and_value),
        cmocka_unit_test(test_iso8601_durations),
        cmocka_unit_test(test_duration_format_round_trips),
        cmocka_unit_test(test_help_lists_every_flag_with_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
