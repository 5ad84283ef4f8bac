/* Java-compatible randomness, ids and catalogue of the fake log generator: the reference's own
 * test vectors (spec/fake-data.md §6), java.util.Random's documented sequence, the id formats of
 * §1.D, and the catalogue order of §2. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "generator/content_db.h"
#include "generator/id_supplier.h"
#include "generator/java_random.h"

static int roll(float rate, const char *id, const char *salt)
{
    return jrandom_roll(rate, id, strlen(id), salt);
}

static int64_t count(float rate, int64_t n, const char *id, const char *salt)
{
    return jrandom_count(rate, n, id, strlen(id), salt);
}

static void test_reference_vectors(void **s)
{
    (void)s;
    /* LogRequestIteratorTest.matchesRateOption */
    assert_true(roll(0.5f, "a", "matchesRateOption"));
    assert_true(roll(0.5f, "b", "matchesRateOption"));
    assert_false(roll(0.5f, "c", "matchesRateOption"));
    assert_true(roll(0.5f, "d", "matchesRateOption"));
    assert_true(roll(0.5f, "e", "matchesRateOption"));
    assert_true(roll(0.5f, "f", "matchesRateOption"));
    /* LogRequestIteratorTest.fromRateToCount */
    assert_int_equal(count(0.5f, 10, "a", "fromRateToCount"), 5);
    assert_int_equal(count(0.5f, 1, "a", "fromRateToCount"), 1);
    assert_int_equal(count(0.5f, 1, "a", "fromRateToCount3"), 0);
    assert_int_equal(count(0.5f, 1, "b", "fromRateToCount"), 0);
    assert_int_equal(count(0.5f, 1, "c", "fromRateToCount"), 1);
    assert_int_equal(count(0.5f, 1, "d", "fromRateToCount"), 1);
    assert_int_equal(count(0.5f, 1, "e", "fromRateToCount"), 1);
    assert_int_equal(count(0.5f, 1, "f", "fromRateToCount"), 1);
    /* String.hashCode */
    assert_int_equal(jrandom_string_hash("userId1", 7), -147154261);
    assert_int_equal(jrandom_string_hash("", 0), 0);
    assert_int_equal(jrandom_string_hash("hello", 5), 99162322);
    /* UTF-16 code units: U+00E9 is one unit, U+1F600 a surrogate pair (0xD83D, 0xDE00) */
    assert_int_equal(jrandom_string_hash("\xc3\xa9", 2), 0xe9);
    assert_int_equal(jrandom_string_hash("\xf0\x9f\x98\x80", 4), 0xD83D * 31 + 0xDE00);
    /* H(s) = hashCode(s) * 31 + 17, wrapping */
    assert_int_equal(jrandom_salted_hash("userId", 6, "1"),
                     (int32_t)((uint32_t)-147154261 * 31u + 17u));
    /* rates at the ends need no draw */
    assert_false(roll(0.0f, "a", "x"));
    assert_true(roll(1.0f, "a", "x"));
    /* whole products: no rounding choice (0.7 x 10 is exactly 7 in float32) */
    assert_int_equal(count(0.7f, 10, "any", "addImpressionsToHeap2"), 7);
    assert_int_equal(count(0.7f, 20, "any", "addImpressionsToHeap2"), 14);
}

static void test_java_util_random_sequence(void **s)
{
    (void)s;
    /* new Random(42): the values every JDK returns */
    jrandom r;
    jrandom_seed(&r, 42);
    assert_int_equal(jrandom_next_int(&r), -1170105035);
    assert_int_equal(jrandom_next_int(&r), 234785527);
    jrandom_seed(&r, 42);
    assert_true(jrandom_next_long(&r) == -5025562857975149833LL);
    jrandom_seed(&r, 0);
    assert_true(jrandom_next_float(&r) == 0.73096776f);
    /* a negative seed is sign-extended before scrambling */
    jrandom_seed(&r, -1);
    assert_int_equal(jrandom_next_int(&r), 1155099827);
    assert_int_equal(jrandom_mod_abs(-7, 4), 1);
    assert_int_equal(jrandom_mod_abs(7, 4), 3);
    assert_int_equal(jrandom_mod_abs(-8, 4), 0);
}

static void test_incrementing_ids(void **s)
{
    (void)s;
    idsup ids;
    idsup_init(&ids, IDSUP_INCREMENTING, 0);
    char buf[64];
    gen_id id;
    for (int i = 0; i < 10; i++)
        id = idsup_next(&ids, IDSUP_ACTION);
    idsup_format_uuid(id, buf);
    assert_string_equal(buf, "66666666-6666-6666-0000-00000000000a");
    idsup_format_uuid(idsup_next(&ids, IDSUP_MEMBERSHIP), buf);
    assert_string_equal(buf, "cccccccc-cccc-cccc-0000-000000000001");
    idsup_format_uuid(idsup_next(&ids, IDSUP_LOG_USER), buf);
    assert_string_equal(buf, "00000000-0000-0000-0000-000000000001");
    idsup_format_uuid(idsup_next(&ids, IDSUP_AUTO_VIEW), buf);
    assert_string_equal(buf, "77777777-7777-7777-0000-000000000001");
    idsup_format_user(&ids, idsup_next(&ids, IDSUP_USER), buf);
    assert_string_equal(buf, "userId1");
    idsup_format_user(&ids, idsup_next(&ids, IDSUP_USER), buf);
    assert_string_equal(buf, "userId2");
    gen_id back;
    assert_int_equal(idsup_parse_uuid("66666666-6666-6666-0000-00000000000A", &back), 0);
    assert_true(back.hi == 0x6666666666666666ULL && back.lo == 10);
    assert_int_equal(idsup_parse_uuid("66666666-6666-6666-0000-00000000000", &back), -1);
}

static void test_random_ids(void **s)
{
    (void)s;
    idsup a, b, c;
    idsup_init(&a, IDSUP_RANDOM, 7);
    idsup_init(&b, IDSUP_RANDOM, 7);
    idsup_init(&c, IDSUP_RANDOM, 8);
    char x[64], y[64], z[64];
    for (int i = 0; i < 100; i++) {
        idsup_format_uuid(idsup_next(&a, IDSUP_VIEW), x);
        idsup_format_uuid(idsup_next(&b, IDSUP_VIEW), y);
        idsup_format_uuid(idsup_next(&c, IDSUP_VIEW), z);
        assert_string_equal(x, y);
        assert_string_not_equal(x, z);
        assert_int_equal(x[14], '4');           /* version 4 */
        assert_non_null(strchr("89ab", x[19])); /* RFC 4122 variant */
    }
    /* kinds are separate streams: drawing another kind does not shift this one */
    idsup_init(&a, IDSUP_RANDOM, 7);
    idsup_init(&b, IDSUP_RANDOM, 7);
    idsup_next(&b, IDSUP_REQUEST);
    idsup_format_uuid(idsup_next(&a, IDSUP_VIEW), x);
    idsup_format_uuid(idsup_next(&b, IDSUP_VIEW), y);
    assert_string_equal(x, y);
    idsup_format_user(&a, idsup_next(&a, IDSUP_USER), x);
    assert_int_equal(strncmp(x, "userId-", 7), 0);
    assert_int_equal(strlen(x), 7 + 36);
}

static void test_catalogue(void **s)
{
    (void)s;
    char err[256];
    contentdb *db;
    assert_int_equal(contentdb_new(10, 10, 2, &db, err, sizeof err), 0);
    assert_int_equal(contentdb_size(db), 310);
    /* depth first with global counters: store 2's first item is i-1-11, its promotions p-1-21.. */
    const content_entry *e = contentdb_entry(db, 0);
    assert_string_equal(e->id, "s-1-1");
    assert_string_equal(contentdb_entry(db, 1)->id, "i-1-1");
    assert_string_equal(contentdb_entry(db, 2)->id, "p-1-1");
    assert_string_equal(contentdb_entry(db, 31)->id, "s-1-2");
    assert_string_equal(contentdb_entry(db, 32)->id, "i-1-11");
    assert_string_equal(contentdb_entry(db, 33)->id, "p-1-21");
    assert_string_equal(contentdb_entry(db, 33)->store_id, "s-1-2");
    assert_string_equal(contentdb_entry(db, 33)->item_id, "i-1-11");

    /* listings are sorted by id as a string */
    const uint32_t *v;
    int64_t n = contentdb_list(db, CONTENT_ITEM, UINT32_MAX, 10, &v);
    assert_int_equal(n, 10);
    static const char *want[] = {"i-1-1",  "i-1-10", "i-1-100", "i-1-11", "i-1-12",
                                 "i-1-13", "i-1-14", "i-1-15",  "i-1-16", "i-1-17"};
    for (int i = 0; i < 10; i++)
        assert_string_equal(contentdb_entry(db, v[i])->id, want[i]);
    assert_int_equal(contentdb_list(db, CONTENT_STORE, UINT32_MAX, 1000, &v), 10);
    assert_int_equal(contentdb_list(db, CONTENT_PROMOTION, UINT32_MAX, 1000, &v), 200);

    /* children of a store: its items, sorted; of an item: its promotions */
    n = contentdb_list(db, CONTENT_ITEM, 31 /* s-1-2 */, 100, &v);
    assert_int_equal(n, 10);
    assert_string_equal(contentdb_entry(db, v[0])->id, "i-1-11");
    assert_string_equal(contentdb_entry(db, v[9])->id, "i-1-20");
    n = contentdb_list(db, CONTENT_ITEM, 0 /* s-1-1 */, 3, &v);
    assert_int_equal(n, 3);
    assert_string_equal(contentdb_entry(db, v[0])->id, "i-1-1");
    assert_string_equal(contentdb_entry(db, v[1])->id, "i-1-10");
    assert_string_equal(contentdb_entry(db, v[2])->id, "i-1-2");
    n = contentdb_list(db, CONTENT_PROMOTION, 32 /* i-1-11 */, 100, &v);
    assert_int_equal(n, 2);
    assert_string_equal(contentdb_entry(db, v[0])->id, "p-1-21");
    /* a store has no itemId: nothing matches */
    assert_int_equal(contentdb_list(db, CONTENT_STORE, 1 /* i-1-1 */, 100, &v), 0);

    /* the cart price rule: i-1-1 gives quantity 1 and $5 */
    const content_entry *i11 = contentdb_entry(db, 1);
    assert_int_equal(1 + jrandom_mod_abs(i11->hash, 4), 1);
    assert_int_equal(1 + jrandom_mod_abs(i11->hash, 5), 5);
    assert_int_equal(i11->number, 1);
    contentdb_free(db);

    assert_int_equal(contentdb_new(100000, 100, 2, &db, err, sizeof err), -1);
    assert_non_null(strstr(err, "over the limit"));
    assert_int_equal(contentdb_type_parse("store"), CONTENT_STORE);
    assert_int_equal(contentdb_type_parse("shoe"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors), cmocka_unit_test(test_java_util_random_sequence),
        cmocka_unit_test(test_incrementing_ids),  cmocka_unit_test(test_random_ids),
        cmocka_unit_test(test_catalogue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
