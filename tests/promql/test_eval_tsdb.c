/* Tests of the tsdb storage adapter (src/promql/storage_tsdb.c): queries
 * over a real tsdb give the same answers as over the in-memory storage. */
#include "hs_test.h"

#include "hs_test_util.h"
#include "promql/promql.h"
#include "tsdb/tsdb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct env {
    char *dir;
    struct tsdb *db;
    struct promql_storage st;
    struct promql_engine *eng;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    struct tsdb_options o;
    struct hs_err err;
    e->dir = hs_test_tmpdir("promql-tsdb");
    assert_non_null(e->dir);
    tsdb_options_defaults(&o);
    o.wal_fsync = TSDB_FSYNC_NONE;
    o.retention_ms = 0;
    e->db = tsdb_open(e->dir, &o, &err);
    assert_non_null(e->db);
    struct tsdb_appender *a = tsdb_appender_new(e->db);
    assert_non_null(a);
    const char *insts[2] = {"a", "b"};
    for (int k = 0; k < 2; k++) {
        struct hs_label l[3] = {{"__name__", "req_total"}, {"instance", insts[k]}, {"job", "api"}};
        struct hs_labels ls = {3, l};
        for (int i = 0; i <= 20; i++)
            assert_int_equal(
                tsdb_appender_add(a, &ls, i * 15000, (double)(i * (k + 1)), NULL, &err), HS_OK);
    }
    {
        struct hs_label l[2] = {{"__name__", "gone"}, {"job", "api"}};
        struct hs_labels ls = {2, l};
        uint64_t bits = 0x7ff0000000000002ULL;
        double stale;
        memcpy(&stale, &bits, sizeof stale);
        assert_int_equal(tsdb_appender_add(a, &ls, 0, 1, NULL, &err), HS_OK);
        assert_int_equal(tsdb_appender_add(a, &ls, 15000, stale, NULL, &err), HS_OK);
    }
    assert_int_equal(tsdb_appender_commit(a, &err), HS_OK);
    promql_tsdb_storage(e->db, &e->st);
    e->eng = promql_engine_new(NULL);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    promql_engine_free(e->eng);
    tsdb_close(e->db);
    hs_test_rmdir(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

static void tsdb_storage_answers_rate_by_instance(void **state)
{
    struct env *e = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    assert_int_equal(promql_query_instant(e->eng, &e->st, "sum by (instance) (rate(req_total[1m]))",
                                          300000, NULL, &r, &err),
                     HS_OK);
    assert_int_equal(r->type, PROMQL_RESULT_VECTOR);
    assert_int_equal(r->nseries, 2);
    for (size_t k = 0; k < 2; k++) {
        const char *inst = hs_labels_get(&r->series[k].labels, "instance");
        double want = strcmp(inst, "a") == 0 ? 1.0 / 15 : 2.0 / 15;
        assert_true(fabs(r->series[k].points[0].v - want) < 1e-12);
    }
    promql_result_free(r);
}

static void tsdb_storage_honours_regex_matchers_and_staleness(void **state)
{
    struct env *e = *state;
    struct promql_result *r = NULL;
    struct hs_err err;
    assert_int_equal(promql_query_range(e->eng, &e->st,
                                        "{__name__=~\"req_.*|gone\", instance!=\"b\"}", 0, 30000,
                                        15000, NULL, &r, &err),
                     HS_OK);
    assert_int_equal(r->type, PROMQL_RESULT_MATRIX);
    assert_int_equal(r->nseries, 2);
    /* Sorted by labels: gone{job} first; it is stale from 15s on. */
    assert_string_equal(hs_labels_get(&r->series[0].labels, "__name__"), "gone");
    assert_int_equal(r->series[0].npoints, 1);
    assert_int_equal(r->series[1].npoints, 3);
    promql_result_free(r);
}

static void tsdb_storage_lists_label_values(void **state)
{
    struct env *e = *state;
    struct hs_arena a;
    const char **v = NULL;
    size_t n = 0;
    struct hs_err err;
    struct promql_matcher m = {PROMQL_M_EQ, "__name__", "req_total", NULL, NULL};
    hs_arena_init(&a, 4096, 0);
    assert_int_equal(
        e->st.ops->label_values(e->st.ctx, "instance", &m, 1, 0, 400000, &a, &v, &n, &err), HS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[1], "b");
    hs_arena_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tsdb_storage_answers_rate_by_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(tsdb_storage_honours_regex_matchers_and_staleness, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(tsdb_storage_lists_label_values, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
