/* Tests of the engine API in src/promql/promql.h: results, JSON output,
 * error types, limits, timeout, cancellation and allocation failures. */
#include "hs_test.h"

#include "promql/promql.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fixture {
    struct promql_mem *mem;
    struct promql_storage st;
    struct promql_engine *eng;
};

static void add(struct promql_mem *m, const char *name, const char *job, const char *inst,
                int64_t t, double v)
{
    struct hs_label l[3] = {{"__name__", name}, {"instance", inst}, {"job", job}};
    struct hs_labels ls = {3, l};
    assert_int_equal(promql_mem_append(m, &ls, t, v, NULL), HS_OK);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->mem = promql_mem_new();
    promql_mem_storage(f->mem, &f->st);
    f->eng = promql_engine_new(NULL);
    for (int i = 0; i <= 10; i++) {
        add(f->mem, "up", "api", "a", i * 60000, 1);
        add(f->mem, "up", "api", "b", i * 60000, 0);
        add(f->mem, "req_total", "api", "a", i * 60000, i * 60.0);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    promql_engine_free(f->eng);
    promql_mem_free(f->mem);
    free(f);
    return 0;
}

static char *json_of(struct promql_result *r)
{
    struct hs_buf b;
    size_t len;
    hs_buf_init(&b, 0);
    assert_int_equal(promql_result_json(r, &b), HS_OK);
    return hs_buf_detach(&b, &len);
}

static void eval_instant_vector_keeps_storage_order_and_labels(void **state)
{
    struct fixture *f = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    assert_int_equal(promql_query_instant(f->eng, &f->st, "up", 600000, NULL, &r, &err), HS_OK);
    assert_int_equal(r->type, PROMQL_RESULT_VECTOR);
    assert_int_equal(r->nseries, 2);
    assert_string_equal(hs_labels_get(&r->series[0].labels, "instance"), "a");
    assert_true(r->series[0].points[0].v == 1.0);
    assert_true(r->series[1].points[0].v == 0.0);
    char *j = json_of(r);
    assert_string_equal(j, "{\"resultType\":\"vector\",\"result\":["
                           "{\"metric\":{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
                           "\"value\":[600,\"1\"]},"
                           "{\"metric\":{\"__name__\":\"up\",\"instance\":\"b\",\"job\":\"api\"},"
                           "\"value\":[600,\"0\"]}]}");
    hs_free(j);
    promql_result_free(r);
}

static void eval_range_query_gives_a_sorted_matrix_in_json(void **state)
{
    struct fixture *f = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    assert_int_equal(
        promql_query_range(f->eng, &f->st, "sum(up) / 3", 60000, 180500, 60000, NULL, &r, &err),
        HS_OK);
    char *j = json_of(r);
    assert_string_equal(j, "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":"
                           "[[60,\"0.3333333333333333\"],[120,\"0.3333333333333333\"],"
                           "[180,\"0.3333333333333333\"]]}]}");
    hs_free(j);
    promql_result_free(r);
}

static void eval_scalar_and_string_results_serialise_like_prometheus(void **state)
{
    struct fixture *f = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    char *j;
    assert_int_equal(
        promql_query_instant(f->eng, &f->st, "1e21 * 1", 1435781430781, NULL, &r, &err), HS_OK);
    j = json_of(r);
    assert_string_equal(j, "{\"resultType\":\"scalar\",\"result\":[1435781430.781,"
                           "\"1000000000000000000000\"]}");
    hs_free(j);
    promql_result_free(r);
    assert_int_equal(promql_query_instant(f->eng, &f->st, "\"a\\\"b\"", 1500, NULL, &r, &err),
                     HS_OK);
    j = json_of(r);
    assert_string_equal(j, "{\"resultType\":\"string\",\"result\":[1.5,\"a\\\"b\"]}");
    hs_free(j);
    promql_result_free(r);
}

static void format_value_spells_specials_and_avoids_exponents(void **state)
{
    struct hs_buf b;
    (void)state;
    hs_buf_init(&b, 0);
    assert_int_equal(promql_format_value(NAN, &b), HS_OK);
    assert_int_equal(hs_buf_putc(&b, ' '), HS_OK);
    assert_int_equal(promql_format_value(INFINITY, &b), HS_OK);
    assert_int_equal(hs_buf_putc(&b, ' '), HS_OK);
    assert_int_equal(promql_format_value(-INFINITY, &b), HS_OK);
    assert_int_equal(hs_buf_putc(&b, ' '), HS_OK);
    assert_int_equal(promql_format_value(0.1, &b), HS_OK);
    assert_int_equal(hs_buf_putc(&b, ' '), HS_OK);
    assert_int_equal(promql_format_value(1.5e-7, &b), HS_OK);
    assert_int_equal(hs_buf_putc(&b, ' '), HS_OK);
    assert_int_equal(promql_format_value(-42, &b), HS_OK);
    assert_string_equal(b.p, "NaN +Inf -Inf 0.1 0.00000015 -42");
    hs_buf_reset(&b);
    assert_int_equal(promql_format_time(-1500, &b), HS_OK);
    assert_int_equal(hs_buf_putc(&b, ' '), HS_OK);
    assert_int_equal(promql_format_time(1010, &b), HS_OK);
    assert_string_equal(b.p, "-1.5 1.01");
    hs_buf_cleanup(&b);
}

static void eval_parse_error_is_bad_data_with_a_position(void **state)
{
    struct fixture *f = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    int rc = promql_query_instant(f->eng, &f->st, "sum(up", 0, NULL, &r, &err);
    assert_int_equal(rc, HS_EPARSE);
    assert_null(r);
    assert_string_equal(promql_error_type(rc), "bad_data");
    assert_non_null(strstr(err.msg, "1:"));
}

static void eval_range_query_of_a_range_vector_is_rejected(void **state)
{
    struct fixture *f = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    int rc = promql_query_range(f->eng, &f->st, "up[5m]", 0, 60000, 60000, NULL, &r, &err);
    assert_int_equal(rc, HS_EPARSE);
    assert_string_equal(err.msg, "invalid expression type \"range vector\" for range query, "
                                 "must be Scalar or instant Vector");
}

static void eval_many_to_many_matching_is_an_execution_error(void **state)
{
    struct fixture *f = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    int rc = promql_query_instant(f->eng, &f->st, "req_total + on(job) up", 600000, NULL, &r, &err);
    assert_int_equal(rc, HS_EINVAL);
    assert_string_equal(promql_error_type(rc), "execution");
    /* hs_err keeps 255 bytes of the message: the start is what is checked. */
    const char *want = "found duplicate series for the match group {job=\"api\"} on the right "
                       "hand-side of the operation: [{__name__=\"up\", instance=\"a\", "
                       "job=\"api\"}, {__name__=\"up\", instance=\"b\", job=\"api\"}];many-to-many";
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
}

static void eval_sample_limit_stops_a_query(void **state)
{
    struct fixture *f = *state;
    struct promql_engine_opts o;
    struct promql_result *r = NULL;
    struct hs_err err;
    promql_engine_opts_default(&o);
    o.max_samples = 5;
    struct promql_engine *e = promql_engine_new(&o);
    int rc = promql_query_instant(e, &f->st, "count_over_time(up[10m])", 600000, NULL, &r, &err);
    assert_int_equal(rc, HS_ETOOBIG);
    assert_string_equal(err.msg, "query processing would load too many samples into memory in "
                                 "query execution");
    promql_engine_free(e);
}

static void eval_memory_ceiling_stops_a_query_with_too_big(void **state)
{
    struct fixture *f = *state;
    struct promql_engine_opts o;
    struct promql_result *r = NULL;
    struct hs_err err;
    promql_engine_opts_default(&o);
    o.max_query_bytes = 256 * 1024;
    struct promql_engine *e = promql_engine_new(&o);
    int rc = promql_query_range(e, &f->st, "up * 2 + up", 0, 10000 * 1000, 1000, NULL, &r, &err);
    assert_int_equal(rc, HS_ETOOBIG);
    assert_null(r);
    assert_non_null(strstr(err.msg, "bytes of memory"));
    promql_engine_free(e);
}

static void eval_too_many_steps_are_refused(void **state)
{
    struct fixture *f = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    int rc = promql_query_range(f->eng, &f->st, "up", 0, 100000000, 1000, NULL, &r, &err);
    assert_int_equal(rc, HS_EPARSE);
    assert_non_null(strstr(err.msg, "exceeded maximum resolution of 11000 points"));
}

/* A storage whose select takes 30 ms, so a 5 ms timeout must pass. */
static int slow_select(void *ctx, const struct promql_matcher *ms, size_t n, int64_t mint,
                       int64_t maxt, void **set, struct hs_err *err)
{
    const struct promql_storage *inner = ctx;
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return inner->ops->select(inner->ctx, ms, n, mint, maxt, set, err);
}

static void eval_query_times_out_after_its_deadline(void **state)
{
    struct fixture *f = *state;
    struct promql_storage_ops ops = *f->st.ops;
    struct promql_storage slow = {&ops, &f->st};
    struct promql_query_opts qo = {NULL, 5};
    struct promql_result *r = NULL;
    struct hs_err err;
    ops.select = slow_select;
    int rc = promql_query_instant(f->eng, &slow, "up + up", 600000, &qo, &r, &err);
    assert_int_equal(rc, HS_ETIMEDOUT);
    assert_string_equal(promql_error_type(rc), "timeout");
    assert_null(r);
}

static void eval_canceled_query_fails_with_canceled(void **state)
{
    struct fixture *f = *state;
    atomic_bool cancel = true;
    struct promql_query_opts qo = {&cancel, 0};
    struct promql_result *r = NULL;
    struct hs_err err;
    int rc = promql_query_instant(f->eng, &f->st, "up", 600000, &qo, &r, &err);
    assert_int_equal(rc, HS_ECLOSED);
    assert_string_equal(promql_error_type(rc), "canceled");
}

static void eval_rate_on_a_non_counter_name_adds_an_info(void **state)
{
    struct fixture *f = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    assert_int_equal(promql_query_instant(f->eng, &f->st, "rate(up[5m])", 600000, NULL, &r, &err),
                     HS_OK);
    assert_int_equal(r->ninfos, 1);
    assert_string_equal(r->infos[0], "PromQL info: metric might not be a counter, name does not "
                                     "end in _total/_sum/_count/_bucket: \"up\" (1:6)");
    promql_result_free(r);
}

static void eval_experimental_functions_can_be_disabled(void **state)
{
    struct fixture *f = *state;
    struct promql_engine_opts o;
    struct promql_result *r = NULL;
    struct hs_err err;
    promql_engine_opts_default(&o);
    o.enable_experimental = false;
    struct promql_engine *e = promql_engine_new(&o);
    assert_int_equal(promql_query_instant(e, &f->st, "limitk(1, up)", 0, NULL, &r, &err),
                     HS_EPARSE);
    promql_engine_free(e);
}

static void eval_fails_cleanly_whenever_an_allocation_fails(void **state)
{
    struct fixture *f = *state;
    const char *q = "histogram_quantile(0.9, sum by (le) (rate(req_total[5m]))) or "
                    "label_replace(topk(1, up), \"x\", \"$1\", \"job\", \"(.*)\")";
    int ok = 0;
    for (long n = 0; n < 5000 && !ok; n++) {
        struct promql_result *r = NULL;
        struct hs_err err;
        hs_err_clear(&err);
        hs_alloc_fail_after(n);
        int rc = promql_query_range(f->eng, &f->st, q, 0, 600000, 60000, NULL, &r, &err);
        hs_alloc_fail_after(-1);
        if (rc == HS_OK) {
            ok = 1;
            promql_result_free(r);
        } else {
            assert_int_equal(rc, HS_ENOMEM);
            assert_null(r);
        }
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(eval_instant_vector_keeps_storage_order_and_labels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_range_query_gives_a_sorted_matrix_in_json, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_scalar_and_string_results_serialise_like_prometheus,
                                        setup, teardown),
        cmocka_unit_test(format_value_spells_specials_and_avoids_exponents),
        cmocka_unit_test_setup_teardown(eval_parse_error_is_bad_data_with_a_position, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_range_query_of_a_range_vector_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_many_to_many_matching_is_an_execution_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_sample_limit_stops_a_query, setup, teardown),
        cmocka_unit_test_setup_teardown(eval_memory_ceiling_stops_a_query_with_too_big, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_too_many_steps_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(eval_query_times_out_after_its_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(eval_canceled_query_fails_with_canceled, setup, teardown),
        cmocka_unit_test_setup_teardown(eval_rate_on_a_non_counter_name_adds_an_info, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_experimental_functions_can_be_disabled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_fails_cleanly_whenever_an_allocation_fails, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
