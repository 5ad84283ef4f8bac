/* Java string and number semantics of the tiny records (src/jobs/join/tiny.h): String.hashCode
 * over UTF-16 code units (the other_content_ids keys) and Double.toString (numbers as content
 * ids). The expected strings were printed by a JVM (OpenJDK 17) for the listed bit patterns; all
 * are below 1e16, where the Java 19+ algorithm that java_double_string follows and the older one
 * print the same, except the block marked Java 19+. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/java_text.h"

#include "jobs/join/tiny.h"

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static const char *jd(double v, char *buf)
{
    java_double_string(v, buf, JAVA_DOUBLE_CHARS);
    return buf;
}

/* ---- String.hashCode ---- */

static void test_hash_code_of_spec_examples(void **state)
{
    (void)state;
    assert_int_equal(java_string_hash("store", 5), 109770977);
    assert_int_equal(java_string_hash("owner", 5), 106164915);
    assert_int_equal(java_string_hash("storeId", 7), -1884271140); /* wraps past 2^31 */
    assert_int_equal(java_string_hash("", 0), 0);
}

static void test_hash_code_counts_utf16_code_units(void **state)
{
    (void)state;
    /* U+1F600 is two UTF-16 units (D83D DE00): "\uD83D\uDE00".hashCode() == 1772899 */
    assert_int_equal(java_string_hash("\xf0\x9f\x98\x80", 4), 1772899);
    /* U+00E9 is one unit: 233 */
    assert_int_equal(java_string_hash("\xc3\xa9", 2), 233);
    /* U+20AC then 'a': 31 * 0x20AC + 97 */
    assert_int_equal(java_string_hash("\xe2\x82\xac"
                                    "a",
                                    4),
                     31 * 0x20AC + 97);
    /* a malformed byte is U+FFFD, as Java's decoder makes it */
    assert_int_equal(java_string_hash("\xff", 1), 0xFFFD);
}

static void test_content_id_keys_are_hashed_in_flag_order(void **state)
{
    (void)state;
    const char *names[] = {"owner", "store"};
    tiny_keys k;
    char err[128];
    assert_int_equal(tiny_keys_init(&k, names, 2, err, sizeof err), 0);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.hash[0], 106164915);
    assert_int_equal(k.hash[1], 109770977);
    const char *many[TINY_MAX_KEYS + 1];
    for (int i = 0; i <= TINY_MAX_KEYS; i++)
        many[i] = "k";
    assert_int_equal(tiny_keys_init(&k, many, TINY_MAX_KEYS + 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "--contentIdFieldKeys"));
}

/* ---- Double.toString ---- */

static const struct {
    uint64_t bits;
    const char *java;
} vectors[] = {
    {0x3ff0000000000000ull, "1.0"},
    {0x4002666666666666ull, "2.3"},
    {0x416312d000000000ull, "1.0E7"},
    {0x3fb999999999999aull, "0.1"},
    {0x3f50624dd2f1a9fcull, "0.001"},
    {0x3f5061e273273f09ull, "9.999E-4"},
    {0x3ee4f8b588e368f1ull, "1.0E-5"},
    {0x0000000000000001ull, "4.9E-324"},
    {0x0010000000000000ull, "2.2250738585072014E-308"},
    {0x7fefffffffffffffull, "1.7976931348623157E308"},
    {0x40fe240b33333333ull, "123456.7"},
    {0x416312cfe0000000ull, "9999999.0"},
    {0x416312cfffffffffull, "9999999.999999998"},
    {0x41678c29c0000000ull, "1.2345678E7"},
    {0x8000000000000000ull, "-0.0"},
    {0x0000000000000000ull, "0.0"},
    {0x4059000000000000ull, "100.0"},
    {0x4011666666666666ull, "4.35"},
    {0x3fd3333333333333ull, "0.3"},
    {0x3f5205bc01a36e2full, "0.0011"},
    {0x3f0a36e2eb1c432dull, "5.0E-5"},
    {0x3fd5555555555555ull, "0.3333333333333333"},
    {0x3fe5555555555555ull, "0.6666666666666666"},
    {0x400921fb54442d18ull, "3.141592653589793"},
    {0x4005bf0a8b145769ull, "2.718281828459045"},
    {0xbff8000000000000ull, "-1.5"},
    {0x430c6bf526340000ull, "1.0E15"},
    {0x4340000000000000ull, "9.007199254740992E15"},
    {0x4330000000000000ull, "4.503599627370496E15"},
    {0x3f50624dd2f1a9fcull, "0.001"},
    {0x3f50624dd2f1a9fbull, "9.999999999999998E-4"},
    {0x01a56e1fc2f8f359ull, "1.0E-300"},
    {0x000c396c98f8d899ull, "1.7E-308"},
    {0x0000000000000003ull, "1.5E-323"},
    {0x00000000000007e8ull, "1.0E-320"},
    {0x405edd2f1a9fbe77ull, "123.456"},
    {0x0000000000000007ull, "3.5E-323"},
    {0x3fe0000000000000ull, "0.5"},
    {0x3fd0000000000000ull, "0.25"},
    {0x3fc0000000000000ull, "0.125"},
    {0x3f1a36e2eb1c432dull, "1.0E-4"},
    {0x3f53a92a30553261ull, "0.0012"},
    {0x4162e1fc00000000ull, "9900000.0"},
    {0x416312d020000000ull, "1.0000001E7"},
    {0x40f0000000000000ull, "65536.0"},
    {0x4202a05f20000000ull, "1.0E10"},
    {0x3df49da7e361ce4cull, "3.0E-10"},
    {0x4045000000000000ull, "42.0"},
    {0x40c81c8000000000ull, "12345.0"},
    {0x3c07a4da290c1653ull, "1.602176634E-19"},
    {0x4004000000000000ull, "2.5"},
    {0x3ff3c0ca428c59fbull, "1.2345678901234567"},
    {0x3fd3333333333334ull, "0.30000000000000004"},
    {0x4059066666666666ull, "100.1"},
    {0x408f3ffdf3b645a2ull, "999.999"},
    {0x4327af4c4a80aaabull, "3.3333333333333335E15"},
    {0x422fd949c2a00000ull, "6.8394738E10"},
    {0x41f34fd00a400000ull, "5.1839633E9"},
    {0x3f0db87fea423cdfull, "5.668774E-5"},
    {0x41c1a20092000000ull, "5.916593E8"},
    {0x3f4e9e0c4d46d6e8ull, "9.3436814E-4"},
    {0x3e2cf7b823183e70ull, "3.3722787E-9"},
    {0x3ea51e132768a0ecull, "6.2934994E-7"},
    {0x41c17cadd8000000ull, "5.8676728E8"},
    {0x3d6c3b4c4124bb6bull, "8.0239125E-13"},
    {0x420d453366400000ull, "1.5714381E10"},
    {0x3e0cd811ecc78facull, "8.3947157E-10"},
    {0x3f4785c5bc343badull, "7.1785121E-4"},
    {0x4257e12dfbd80000ull, "4.1024854E11"},
    {0x4286f980d3500000ull, "3.157608E12"},
    {0x3ee473f40764934eull, "9.7527229E-6"},
    {0x3cb79be5aa651192ull, "3.2764032E-16"},
    {0x415b796600000000ull, "7202200.0"},
    {0x426c4495a6a40000ull, "9.7127794E11"},
    {0x3d5e4869c5a4779eull, "4.3034538E-13"},
    {0x4299a19b53f60000ull, "7.0454716E12"},
    {0x3ea80b2066978cd5ull, "7.1655104E-7"},
    {0x42691548c8160000ull, "8.6185019E11"},
    {0x4266037cdc380000ull, "7.5638236E11"},
    {0x3ef897ce55ca7521ull, "2.3453705E-5"},
    {0x3d6288451976cf54ull, "5.2671977E-13"},
    {0x3c95c1c8a622aedbull, "7.5484646E-17"},
    {0x3fb05be2d4cbf4b6ull, "0.06390207"},
    {0x3ec3783b9e24f638ull, "2.3209643E-6"},
    {0x3ecb98b907849a75ull, "3.2897679E-6"},
    {0x3e719a63022c4c55ull, "6.5576558E-8"},
    {0x3c9972902a98d1a0ull, "8.8288794E-17"},
    {0x3d148e44307d1f3dull, "1.8257154E-14"},
    {0x40af1250f27bb2ffull, "3977.1581"},
    {0x3ebd2b0b86f009d9ull, "1.7385569E-6"},
    {0x41c6e540b9000000ull, "7.6824613E8"},
    {0x40c137b1930be0dfull, "8815.3873"},
    {0x41f7a414aa800000ull, "6.3460666E9"},
    {0x41c40eafbf000000ull, "6.7301363E8"},
    {0x404f528a71de69adull, "62.64485"},
    {0x3d33bed7cc3925bbull, "7.0150038E-14"},
    {0x42ebb373e5406000ull, "2.4366046E14"},
    {0x3e63ade95337d2e2ull, "3.665563E-8"},
    {0x40c2baa5566cf41full, "9589.2917"},
    {0x41261a886147ae14ull, "724292.19"},
    {0x4226298db7d00000ull, "4.7593217E10"},
    {0x3d3bbba07e4090ceull, "9.8527116E-14"},
    {0x40c1f4d19ce075f7ull, "9193.6376"},
    {0xb9c7a84fc777e0ddull, "-2.3328063869997267E-30"},
    {0x29bdd563390ef5bdull, "1.2703003764926013E-107"},
    {0xb56e599c4b4f62a5ull, "-2.5349537133892532E-51"},
    {0x261b46d55f1460a6ull, "4.029522014457617E-125"},
    {0xac529c08d86e914bull, "-3.484948112081771E-95"},
    {0x0cce35d09c914f8full, "5.400915419841334E-247"},
    {0xb0ccf42412dac512ull, "-1.2802499655234128E-73"},
    {0x3fe2a5fa50f15d1dull, "0.5827609616198149"},
    {0x22229b983a4bc712ull, "2.9803475937814907E-144"},
    {0x34d4e96420367779ull, "3.411377633947454E-54"},
    {0x24b1d4a93db4c41eull, "6.28015671871959E-132"},
    {0x19f883e5f64516d6ull, "1.4423763235186532E-183"},
    {0x8b0d7b1e6f87237aull, "-1.9634277107538377E-255"},
    {0x39b17eaae56c6818ull, "8.625599970969364E-31"},
    {0x41466ceeb0e4a9cdull, "2939357.3819782496"},
    {0x33d30212f2695a52ull, "4.731508268153987E-59"},
    {0x12b5cafe553d9ddbull, "1.5434019542262898E-218"},
    {0xb6b825dc9529ca6eull, "-4.229801385881608E-45"},
    {0x3f1529e28d71505full, "8.073277727877044E-5"},
    {0x0d967c4f45960864ull, "3.2931210518736403E-243"},
    {0x28c4af346f481a0dull, "2.6877843715012303E-112"},
    {0x8fb6d37139bab9a0ull, "-5.7431764370671855E-233"},
    {0x181cd24c2894f4e9ull, "1.5792794362908932E-192"},
    {0x010a92deca009428ull, "1.2109511040135847E-303"},
    {0x02c8f4f3e97f28c8ull, "3.052839522010904E-295"},
    {0x9291c59eaf9430e6ull, "-3.1465766217596007E-219"},
    {0xa0dcdbbeebe6e41dull, "-2.2040130126205467E-150"},
    {0x296ed1d0c8733e15ull, "4.100893285364306E-109"},
    {0x15d552d3f8e598e3ull, "1.7002875951910145E-203"},
    {0x9e2a7f7f8dbd9411ull, "-2.3007324374143758E-163"},
    {0x302b1ccc4f84877aull, "1.1707402773010435E-76"},
    {0x3a7a4977cf2f8e6eull, "5.308614222201555E-27"},
    {0x8d4183f5b13dfa22ull, "-8.016324197459518E-245"},
    {0x1113550062520f5eull, "2.040144315141483E-226"},
    {0x9fdf13d3d9d781a2ull, "-3.6216597053536826E-155"},
    {0xc32a3f4686218cb3ull, "-3.6939607625416575E15"},
    {0x1c0e374b4d3fc9fbull, "1.527106685208447E-173"},
    {0x0ebe97bfa6f6d3bfull, "1.1745248484770552E-237"},
    {0x3add705461d43334ull, "3.8048741147537255E-25"},
    {0xb97f0c46eaec6fb7ull, "-9.567390452026523E-32"},
    {0x4077900000000000ull, "377.0"},
    {0x4152ba2bc0000000ull, "4909231.0"},
    {0x4099700000000000ull, "1628.0"},
    {0x42aa5f98fe5d5800ull, "1.4498945511084E13"},
    {0xc159424c40000000ull, "-6621489.0"},
    {0xc25d485d52434000ull, "-5.03072508173E11"},
    {0x410bca3800000000ull, "227655.0"},
    {0x42afeae2aa31d000ull, "1.7546842806504E13"},
    {0xc014000000000000ull, "-5.0"},
    {0x4101e49000000000ull, "146578.0"},
    {0x4233085199380000ull, "8.1743943992E10"},
    {0x4130fbc500000000ull, "1113029.0"},
    {0xc219965e67d00000ull, "-2.747423794E10"},
    {0x4141e2bd00000000ull, "2344314.0"},
    {0xc204bdb263700000ull, "-1.1135241326E10"},
    {0x42b57a27dfbf0f00ull, "2.3614399168271E13"},
    {0xc03c000000000000ull, "-28.0"},
    {0xc324a694d813330eull, "-2.906328872360327E15"},
    {0x41e43c264a000000ull, "2.715890256E9"},
    {0xc2e5c6aa1f6d7000ull, "-1.91544015154048E14"},
};

static void test_double_to_string_matches_java_on_vectors(void **state)
{
    (void)state;
    char buf[JAVA_DOUBLE_CHARS];
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        double d = from_bits(vectors[i].bits);
        size_t n = java_double_string(d, buf, sizeof buf);
        if (strcmp(buf, vectors[i].java))
            fail_msg("bits %016llx: got %s, Java prints %s", (unsigned long long)vectors[i].bits,
                     buf, vectors[i].java);
        assert_int_equal(n, strlen(vectors[i].java));
    }
}

static void test_double_to_string_spec_examples(void **state)
{
    (void)state;
    char b[JAVA_DOUBLE_CHARS];
    assert_string_equal(jd(1, b), "1.0");
    assert_string_equal(jd(2.3, b), "2.3");
    assert_string_equal(jd(1e7, b), "1.0E7");
    assert_string_equal(jd(9999999, b), "9999999.0");
    assert_string_equal(jd(0.001, b), "0.001");
    assert_string_equal(jd(0.0001, b), "1.0E-4");
    assert_string_equal(jd(-0.0, b), "-0.0");
    assert_string_equal(jd(0.0, b), "0.0");
    assert_string_equal(jd(NAN, b), "NaN");
    assert_string_equal(jd(INFINITY, b), "Infinity");
    assert_string_equal(jd(-INFINITY, b), "-Infinity");
}

/* Where Java 8-18 printed a needlessly long string (JDK-4511638), the Java 19+ specification
 * gives the shortest: these are its documented results. */
static void test_double_to_string_is_shortest_where_old_java_was_not(void **state)
{
    (void)state;
    char b[JAVA_DOUBLE_CHARS];
    assert_string_equal(jd(2e23, b), "2.0E23");
    assert_string_equal(jd(1e23, b), "1.0E23");
    assert_string_equal(jd(8.41e21, b), "8.41E21");
    /* one digit suffices but two are closer: Java keeps two */
    assert_string_equal(jd(from_bits(1), b), "4.9E-324");
}

/* Every output reads back as the same double, has Java's shape, and no decimal with one digit
 * fewer reads back as it (the shortest property), over random bit patterns. */
static void test_double_to_string_round_trips_and_is_shortest(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    char b[JAVA_DOUBLE_CHARS];
    for (int i = 0; i < 20000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double d = from_bits(s);
        if (isnan(d) || isinf(d)) continue;
        size_t n = java_double_string(d, b, sizeof b);
        assert_true(n < JAVA_DOUBLE_CHARS);
        char *end;
        double back = strtod(b, &end);
        assert_int_equal(*end, 0);
        if (back != d) fail_msg("%s does not read back as %.17g", b, d);
        const char *dot = strchr(b, '.');
        assert_non_null(dot);
        assert_true(dot[1] >= '0' && dot[1] <= '9');
        double a = fabs(d);
        int sci = strchr(b, 'E') != NULL;
        if (a != 0) assert_int_equal(a < 1e-3 || a >= 1e7, sci);
        /* count significant digits; with two or more, one fewer must not round-trip */
        int digits = 0, lead = 1;
        for (const char *p = b; *p && *p != 'E'; p++) {
            if (*p < '0' || *p > '9') continue;
            if (*p == '0' && lead) continue;
            lead = 0;
            digits++;
        }
        char *e = strchr(b, 'E');
        if (!e) { /* trailing zeros of the fraction are not significant (1.0, 100.0) */
            for (const char *p = b + strlen(b) - 1; *p == '0' && p > dot + 1; p--)
                digits--;
            if (!strcmp(dot, ".0"))
                for (const char *p = dot - 1; p >= b && *p == '0'; p--)
                    digits--;
        } else if (e[-1] == '0' && e[-2] == '.') {
            digits--;
        }
        if (digits >= 3) {
            char shorter[48];
            snprintf(shorter, sizeof shorter, "%.*e", digits - 2, a);
            if (strtod(shorter, NULL) == a) fail_msg("%s: %s is shorter", b, shorter);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_code_of_spec_examples),
        cmocka_unit_test(test_hash_code_counts_utf16_code_units),
        cmocka_unit_test(test_content_id_keys_are_hashed_in_flag_order),
        cmocka_unit_test(test_double_to_string_matches_java_on_vectors),
        cmocka_unit_test(test_double_to_string_spec_examples),
        cmocka_unit_test(test_double_to_string_is_shortest_where_old_java_was_not),
        cmocka_unit_test(test_double_to_string_round_trips_and_is_shortest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
