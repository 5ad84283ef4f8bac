/* RestructureDeliveryLog: the spec's examples (other-jobs.md §A.3, flat-output.md §2.3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "formats/pb_util.h"
#include "google/protobuf/struct.pb-c.h"
#include "jobs/restructure.h"

static pb_arena *arena;
static ProtobufCAllocator *A;

static int setup(void **s)
{
    arena = pb_arena_new(4096, 1 << 20);
    A = pb_arena_allocator(arena);
    return 0;
}

static int teardown(void **s)
{
    pb_arena_free(arena);
    return 0;
}

static Google__Protobuf__Value *str(const char *v)
{
    Google__Protobuf__Value init = GOOGLE__PROTOBUF__VALUE__INIT, *x = A->alloc(A->allocator_data, sizeof *x);
    *x = init;
    x->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    x->string_value = (char *)v;
    return x;
}

static Google__Protobuf__Value *num(double v)
{
    Google__Protobuf__Value init = GOOGLE__PROTOBUF__VALUE__INIT, *x = A->alloc(A->allocator_data, sizeof *x);
    *x = init;
    x->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    x->number_value = v;
    return x;
}

/* A DeliveryLog whose request has the given headers and one row of values. */
static Delivery__DeliveryLog *make_dl(char **headers, size_t nh, Google__Protobuf__Value **row, size_t nr)
{
    Delivery__DeliveryLog dinit = DELIVERY__DELIVERY_LOG__INIT, *dl = A->alloc(A->allocator_data, sizeof *dl);
    Delivery__Request rinit = DELIVERY__REQUEST__INIT, *rq = A->alloc(A->allocator_data, sizeof *rq);
    Google__Protobuf__ListValue linit = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
    Google__Protobuf__ListValue *rowlist = A->alloc(A->allocator_data, sizeof *rowlist);
    Google__Protobuf__ListValue *matrix = A->alloc(A->allocator_data, sizeof *matrix);
    Google__Protobuf__Value *rowval = str("");
    Google__Protobuf__Value **vals = A->alloc(A->allocator_data, sizeof *vals);
    *dl = dinit;
    *rq = rinit;
    *rowlist = linit;
    *matrix = linit;
    rowlist->n_values = nr;
    rowlist->values = row;
    rowval->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    rowval->list_value = rowlist;
    vals[0] = rowval;
    matrix->n_values = 1;
    matrix->values = vals;
    rq->insertion_matrix = matrix;
    rq->insertion_matrix_headers = headers;
    rq->n_insertion_matrix_headers = nh;
    dl->request = rq;
    return dl;
}

static const Google__Protobuf__Value *field(const Google__Protobuf__Struct *s, const char *k)
{
    for (size_t i = 0; i < s->n_fields; i++)
        if (!strcmp(s->fields[i]->key, k)) return s->fields[i]->value;
    return NULL;
}

static void test_legacy_headers_and_dot_paths(void **s)
{
    char *h[] = {"contentId", "a.b", "retrievalRank"};
    Google__Protobuf__Value *row[] = {str("c1"), num(3.0), num(7)};
    Delivery__DeliveryLog *dl = make_dl(h, 3, row, 3);
    assert_int_equal(restructure_delivery_log(dl, A), 0);
    Delivery__Request *rq = dl->request;
    assert_int_equal(rq->n_insertion, 1);
    assert_int_equal(rq->n_insertion_matrix_headers, 0);
    assert_null(rq->insertion_matrix);
    Delivery__Insertion *ins = rq->insertion[0];
    assert_string_equal(ins->content_id, "c1");
    assert_true(ins->has_retrieval_rank);
    assert_int_equal(ins->retrieval_rank, 7);
    const Google__Protobuf__Value *a = field(ins->properties->struct_, "a");
    assert_non_null(a);
    assert_int_equal(a->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
    const Google__Protobuf__Value *b = field(a->struct_value, "b");
    assert_non_null(b);
    assert_true(b->number_value == 3.0);
    pb_arena_reset(arena, 0);
}

static void test_nested_paths_share_and_replace_structs(void **s)
{
    /* [1, 2.3, 2.4] row [a, b, 4.0] -> {1:"a", 2:{3:"b", 4:4.0}} */
    char *h[] = {"1", "2.3", "2.4"};
    Google__Protobuf__Value *row[] = {str("a"), str("b"), num(4.0)};
    Delivery__DeliveryLog *dl = make_dl(h, 3, row, 3);
    assert_int_equal(restructure_delivery_log(dl, A), 0);
    const Google__Protobuf__Struct *st = dl->request->insertion[0]->properties->struct_;
    assert_int_equal(st->n_fields, 2);
    assert_string_equal(field(st, "1")->string_value, "a");
    const Google__Protobuf__Struct *two = field(st, "2")->struct_value;
    assert_string_equal(field(two, "3")->string_value, "b");
    assert_true(field(two, "4")->number_value == 4.0);

    /* [1, 1, 1.3] row [a, b, c] -> {1:{3:"c"}}: a leaf is replaced by a struct on the way */
    char *h2[] = {"1", "1", "1.3"};
    Google__Protobuf__Value *row2[] = {str("a"), str("b"), str("c")};
    dl = make_dl(h2, 3, row2, 3);
    assert_int_equal(restructure_delivery_log(dl, A), 0);
    st = dl->request->insertion[0]->properties->struct_;
    assert_int_equal(st->n_fields, 1);
    const Google__Protobuf__Struct *one = field(st, "1")->struct_value;
    assert_non_null(one);
    assert_string_equal(field(one, "3")->string_value, "c");
    pb_arena_reset(arena, 0);
}

static void test_header_of_only_dots_is_an_error_and_leaves_record(void **s)
{
    char *h[] = {"contentId", ".."};
    Google__Protobuf__Value *row[] = {str("c1"), num(1)};
    Delivery__DeliveryLog *dl = make_dl(h, 2, row, 2);
    assert_int_equal(restructure_delivery_log(dl, A), RESTRUCTURE_ERR_DOTS);
    assert_int_equal(dl->request->n_insertion_matrix_headers, 2);
    assert_non_null(dl->request->insertion_matrix);
    pb_arena_reset(arena, 0);
}

static void test_short_rows_and_trailing_dots(void **s)
{
    /* "a." is the key a (trailing empty segments dropped); ".b" keeps an empty first key */
    char *h[] = {"a.", ".b", "unused"};
    Google__Protobuf__Value *row[] = {num(1), num(2)};
    Delivery__DeliveryLog *dl = make_dl(h, 3, row, 2);
    assert_int_equal(restructure_delivery_log(dl, A), 0);
    const Google__Protobuf__Struct *st = dl->request->insertion[0]->properties->struct_;
    assert_int_equal(st->n_fields, 2);
    assert_true(field(st, "a")->number_value == 1);
    assert_true(field(field(st, "")->struct_value, "b")->number_value == 2);
    pb_arena_reset(arena, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_headers_and_dot_paths),
        cmocka_unit_test(test_nested_paths_share_and_replace_structs),
        cmocka_unit_test(test_header_of_only_dots_is_an_error_and_leaves_record),
        cmocka_unit_test(test_short_rows_and_trailing_dots),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
