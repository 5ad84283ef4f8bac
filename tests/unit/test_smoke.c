#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <protobuf-c/protobuf-c.h>

static void test_protobuf_c_links(void **state)
{
    (void)state;
    assert_non_null(protobuf_c_version());
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_protobuf_c_links)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
