/*
 * test_collector.c - the collector object end to end: a round appended to
 * a real tsdb in a temp dir and read back through the querier, the thread
 * started and stopped, and argument and allocation failures.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "collect/collect.h"
#include "tsdb/tsdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T_MS 1795400000000LL

struct env {
    char *dir;
    char data[4096];
    struct tsdb *db;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->dir = hs_test_tmpdir("collect-db");
    assert_non_null(e->dir);
    snprintf(e->data, sizeof(e->data), "%s/nvml.txt", e->dir);
    FILE *f = fopen(e->data, "w");
    assert_non_null(f);
    fputs("count 2\ndriver 570.1\n"
          "gpu0.name NVIDIA H100 80GB HBM3\ngpu0.uuid GPU-aaaa\ngpu0.util_gpu 97\n"
          "gpu1.name NVIDIA H100 80GB HBM3\ngpu1.uuid GPU-bbbb\ngpu1.util_gpu 12\n",
          f);
    fclose(f);
    setenv("HS_FAKE_NVML_DATA", e->data, 1);
    char db[4096];
    snprintf(db, sizeof(db), "%s/db", e->dir);
    struct tsdb_options o;
    tsdb_options_defaults(&o);
    o.wal_fsync = TSDB_FSYNC_NONE;
    struct hs_err err;
    e->db = tsdb_open(db, &o, &err);
    if (e->db == NULL)
        print_error("tsdb_open: %s\n", err.msg);
    assert_non_null(e->db);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    tsdb_close(e->db);
    unsetenv("HS_FAKE_NVML_DATA");
    hs_test_rmdir(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

static void config(struct collect_config *cfg)
{
    collect_config_defaults(cfg);
    cfg->proc_root = "testdata/proc";
    cfg->sys_root = "testdata/sys";
    cfg->rootfs = "testdata/mnt";
    const char *lib = getenv("HS_FAKE_NVML");
    assert_non_null(lib);
    cfg->nvml_path = lib;
    cfg->hostname = "node-a";
}

/* The single sample of the series matching name and one label pair. */
static double read_back(struct tsdb *db, const char *name, const char *k, const char *v,
                        int64_t *t_ms)
{
    struct tsdb_matcher m[2];
    struct hs_err err;
    assert_int_equal(tsdb_matcher_init(&m[0], TSDB_MATCH_EQ, "__name__", name, &err), HS_OK);
    assert_int_equal(tsdb_matcher_init(&m[1], TSDB_MATCH_EQ, k, v, &err), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, 0, INT64_MAX);
    assert_non_null(q);
    struct tsdb_series_set *set = NULL;
    assert_int_equal(tsdb_querier_select(q, m, 2, 0, &set, &err), HS_OK);
    assert_int_equal(tsdb_series_set_len(set), 1);
    assert_true(tsdb_series_set_next(set));
    struct tsdb_iter *it = tsdb_series_set_iter(set);
    assert_true(tsdb_iter_next(it));
    double val;
    tsdb_iter_at(it, t_ms, &val);
    assert_false(tsdb_iter_next(it));
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m[0]);
    tsdb_matcher_cleanup(&m[1]);
    return val;
}

static void collector_appends_a_round_to_the_tsdb_in_one_batch(void **state)
{
    struct env *e = *state;
    struct collect_config cfg;
    config(&cfg);
    struct hs_err err;
    struct collect *c = collect_new(&cfg, e->db, &err);
    assert_non_null(c);
    assert_int_equal(collect_run_once(c, T_MS, &err), HS_OK);
    int64_t t;
    assert_true(read_back(e->db, "node_load1", "job", "node", &t) == 4.68);
    assert_int_equal(t, T_MS);
    assert_true(read_back(e->db, "DCGM_FI_DEV_GPU_UTIL", "gpu", "1", &t) == 12);
    assert_true(read_back(e->db, "DCGM_FI_DEV_GPU_UTIL", "UUID", "GPU-aaaa", &t) == 97);
    assert_true(read_back(e->db, "holoscope_collector_up", "collector", "gpu", &t) == 1);
    struct collect_stats st;
    collect_get_stats(c, &st);
    assert_int_equal(st.host.errors_total, 0);
    assert_int_equal(st.gpu.errors_total, 0);
    assert_int_equal(st.gpu_count, 2);
    struct tsdb_stats ts;
    tsdb_get_stats(e->db, &ts);
    assert_int_equal(ts.samples_appended, st.host.samples_last + st.gpu.samples_last + 6);
    collect_free(c);
}

static void collector_thread_runs_a_round_at_start_and_stops_promptly(void **state)
{
    struct env *e = *state;
    struct collect_config cfg;
    config(&cfg);
    cfg.interval_ms = 3600 * 1000; /* stop must not wait for the next round */
    struct hs_err err;
    struct collect *c = collect_new(&cfg, e->db, &err);
    assert_non_null(c);
    assert_int_equal(collect_start(c, &err), HS_OK);
    assert_int_equal(collect_start(c, &err), HS_EINVAL);
    struct collect_stats st;
    for (;;) { /* bounded by the test's CTest timeout */
        collect_get_stats(c, &st);
        if (st.gpu.rounds_total >= 1)
            break;
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    collect_stop(c);
    collect_get_stats(c, &st);
    assert_int_equal(st.host.rounds_total, 1);
    assert_int_equal(st.gpu.rounds_total, 1);
    assert_true(st.host.is_up);
    assert_true(st.host.last_t_ms > 0);
    int64_t t;
    assert_true(read_back(e->db, "node_load1", "instance", "node-a", &t) == 4.68);
    assert_int_equal(t, st.host.last_t_ms);
    collect_stop(c); /* a second stop is a no-op */
    /* It can be started again. */
    assert_int_equal(collect_start(c, &err), HS_OK);
    collect_free(c); /* stops it */
}

static void collector_rejects_start_and_run_without_a_tsdb(void **state)
{
    struct collect_config cfg;
    config(&cfg);
    struct hs_err err;
    struct collect *c = collect_new(&cfg, NULL, &err);
    assert_non_null(c);
    assert_int_equal(collect_start(c, &err), HS_EINVAL);
    assert_int_equal(collect_run_once(c, T_MS, &err), HS_EINVAL);
    assert_int_equal(collect_collect(c, T_MS, NULL, &err), HS_EINVAL);
    assert_null(collect_new(NULL, NULL, &err));
    assert_int_equal(err.code, HS_EINVAL);
    collect_free(c);
    collect_free(NULL);
}

static void collector_new_fails_cleanly_at_every_allocation(void **state)
{
    struct env *e = *state;
    struct collect_config cfg;
    config(&cfg);
    for (long n = 0;; n++) {
        struct hs_err err;
        hs_err_clear(&err);
        hs_alloc_fail_after(n);
        struct collect *c = collect_new(&cfg, e->db, &err);
        hs_alloc_fail_after(-1);
        if (c != NULL) {
            assert_true(n > 3);
            collect_free(c);
            break;
        }
        assert_int_equal(err.code, HS_ENOMEM);
    }
}

static void collector_defaults_match_the_documented_ones(void **state)
{
    struct collect_config cfg;
    collect_config_defaults(&cfg);
    assert_true(cfg.host_enabled);
    assert_true(cfg.gpu_enabled);
    assert_int_equal(cfg.interval_ms, 15000);
    assert_string_equal(cfg.proc_root, "/proc");
    assert_string_equal(cfg.nvml_path, "libnvidia-ml.so.1");
    assert_null(cfg.hostname);
}

int main(void)
{
    hs_log_setup(HS_LOG_ERROR, HS_LOG_LOGFMT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(collector_appends_a_round_to_the_tsdb_in_one_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(collector_thread_runs_a_round_at_start_and_stops_promptly,
                                        setup, teardown),
        cmocka_unit_test(collector_rejects_start_and_run_without_a_tsdb),
        cmocka_unit_test_setup_teardown(collector_new_fails_cleanly_at_every_allocation, setup,
                                        teardown),
        cmocka_unit_test(collector_defaults_match_the_documented_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
