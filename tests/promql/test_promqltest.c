/* Tests of the promqltest runner (src/promql/promqltest.c): counting,
 * value-sequence expansion, failures, skips and file errors. */
#include "hs_test.h"

#include "hs_test_util.h"
#include "promql/promql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tmpfile {
    char *dir;
    char path[4096];
};

static void write_script(struct tmpfile *t, const char *text)
{
    t->dir = hs_test_tmpdir("promqltest");
    assert_non_null(t->dir);
    snprintf(t->path, sizeof t->path, "%s/case.test", t->dir);
    FILE *f = fopen(t->path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_script(struct tmpfile *t)
{
    hs_test_rmdir(t->dir);
    free(t->dir);
}

/* Runs 'text' as a script; returns the totals and the printed output. */
static int run_script(const char *text, struct promql_test_totals *tot, char *out, size_t outlen)
{
    struct tmpfile t;
    char *paths[1];
    write_script(&t, text);
    paths[0] = t.path;
    FILE *mem = fmemopen(out, outlen, "w");
    assert_non_null(mem);
    int status = promql_test_run_files(paths, 1, mem, tot);
    fclose(mem);
    remove_script(&t);
    return status;
}

static void runner_expands_value_sequences_as_promqltest_does(void **state)
{
    struct promql_test_totals tot;
    char out[8192] = {0};
    (void)state;
    int status = run_script("load 1m\n"
                            "  a 0+10x2 _ 7 stale 5\n"
                            "  b 1x2 10-2x1 _x2 0x3\n"
                            "\n"
                            "eval range from 0 to 6m step 1m a\n"
                            "  a 0 10 20 20 7 _ 5\n"
                            "\n"
                            "eval range from 0 to 8m step 1m b\n"
                            "  b 1 1 1 10 8 8 8 0 0\n",
                            &tot, out, sizeof out);
    assert_int_equal(status, 0);
    assert_int_equal(tot.passed, 2);
    assert_int_equal(tot.failed, 0);
    assert_non_null(strstr(out, "2 passed, 0 failed\n"));
}

static void runner_reports_a_wrong_expectation_with_file_and_line(void **state)
{
    struct promql_test_totals tot;
    char out[8192] = {0};
    (void)state;
    int status = run_script("load 1m\n"
                            "  m{a=\"x\"} 1 2 3\n"
                            "\n"
                            "eval instant at 2m m\n"
                            "  m{a=\"x\"} 4\n"
                            "\n"
                            "eval instant at 2m m * 2\n"
                            "  {a=\"x\"} 6\n",
                            &tot, out, sizeof out);
    assert_int_equal(status, 1);
    assert_int_equal(tot.passed, 1);
    assert_int_equal(tot.failed, 1);
    assert_non_null(strstr(out, "case.test:4: FAIL"));
    assert_non_null(strstr(out, "expected 4, got 3"));
    assert_non_null(strstr(out, "1 passed, 1 failed\n"));
}

static void runner_checks_failures_and_annotations(void **state)
{
    struct promql_test_totals tot;
    char out[8192] = {0};
    (void)state;
    int status = run_script("load 1m\n"
                            "  m{a=\"x\"} 1 2 3\n"
                            "  m{a=\"y\"} 1 2 3\n"
                            "\n"
                            "eval instant at 2m m + on() m\n"
                            "  expect fail regex: many-to-many matching not allowed\n"
                            "\n"
                            "eval_fail instant at 2m m + on() m\n"
                            "  expected_fail_regexp found duplicate series\n"
                            "\n"
                            "eval instant at 2m rate(m[5m])\n"
                            "  expect info msg: PromQL info: metric might not be a counter, name "
                            "does not end in _total/_sum/_count/_bucket: \"m\" (1:6)\n"
                            "  {a=\"x\"} 0.008333333333333333\n"
                            "  {a=\"y\"} 0.008333333333333333\n"
                            "\n"
                            "eval instant at 2m m\n"
                            "  expect fail\n",
                            &tot, out, sizeof out);
    assert_int_equal(status, 1);
    assert_int_equal(tot.passed, 3);
    assert_int_equal(tot.failed, 1);
    assert_non_null(strstr(out, "case.test:16: FAIL"));
}

static void runner_skips_cases_that_touch_native_histograms(void **state)
{
    struct promql_test_totals tot;
    char out[8192] = {0};
    (void)state;
    int status = run_script("load 1m\n"
                            "  h {{schema:0 sum:1 count:1}}x2\n"
                            "  f 1 2 3\n"
                            "\n"
                            "eval instant at 2m h\n"
                            "  h {{schema:0 sum:1 count:1}}\n"
                            "\n"
                            "eval instant at 2m sum({__name__=~\"h|f\"})\n"
                            "  {} 3\n"
                            "\n"
                            "eval instant at 2m f\n"
                            "  f 3\n",
                            &tot, out, sizeof out);
    assert_int_equal(status, 0);
    assert_int_equal(tot.passed, 1);
    assert_int_equal(tot.skipped, 2);
    assert_non_null(strstr(out, "1 passed, 0 failed, 2 skipped\n"));
}

static void runner_checks_order_scalars_and_strings(void **state)
{
    struct promql_test_totals tot;
    char out[8192] = {0};
    (void)state;
    int status = run_script("load 1m\n"
                            "  m{a=\"1\"} 3\n"
                            "  m{a=\"2\"} 1\n"
                            "  m{a=\"3\"} 2\n"
                            "\n"
                            "eval instant at 0 sort(m)\n"
                            "  expect ordered\n"
                            "  m{a=\"2\"} 1\n"
                            "  m{a=\"3\"} 2\n"
                            "  m{a=\"1\"} 3\n"
                            "\n"
                            "eval instant at 0 scalar(m{a=\"2\"}) + 0.5\n"
                            "  1.5\n"
                            "\n"
                            "eval instant at 0 \"text\"\n"
                            "  expect string \"text\"\n",
                            &tot, out, sizeof out);
    assert_int_equal(status, 0);
    assert_int_equal(tot.passed, 3);
}

static void runner_stops_a_file_with_a_syntax_error(void **state)
{
    struct promql_test_totals tot;
    char out[8192] = {0};
    (void)state;
    int status = run_script("load 1m\n  m 1 2 3\n\nfrobnicate\n", &tot, out, sizeof out);
    assert_int_equal(status, 2);
    assert_non_null(strstr(out, "case.test:4: unknown command"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runner_expands_value_sequences_as_promqltest_does),
        cmocka_unit_test(runner_reports_a_wrong_expectation_with_file_and_line),
        cmocka_unit_test(runner_checks_failures_and_annotations),
        cmocka_unit_test(runner_skips_cases_that_touch_native_histograms),
        cmocka_unit_test(runner_checks_order_scalars_and_strings),
        cmocka_unit_test(runner_stops_a_file_with_a_syntax_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
