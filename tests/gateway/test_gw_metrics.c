/*
 * test_gw_metrics.c - the gateway's in-memory histograms and counters:
 * bucket placement, float-form `le`, /metrics text, the series ceiling,
 * appending to the store; and the W3C traceparent parser.
 */
#include "gateway/gw_internal.h"
#include "hs_test.h"
#include "hs_test_util.h"
#include "tsdb/tsdb.h"

#include <string.h>

static void le_values_are_written_in_float_form(void **state)
{
    (void)state;
    char b[40];
    gw__format_le(2, b);
    assert_string_equal(b, "2.0");
    gw__format_le(0.005, b);
    assert_string_equal(b, "0.005");
    gw__format_le(81.92, b);
    assert_string_equal(b, "81.92");
    gw__format_le(1024, b);
    assert_string_equal(b, "1024.0");
}

static void metrics_render_cumulative_buckets_sum_and_count(void **state)
{
    (void)state;
    struct gw_metrics *m = gw__metrics_new(100);
    assert_non_null(m);
    struct gw_mlabels l = {"llama", "r1", "http://u", "chat", NULL, 0};
    gw__metrics_lock(m);
    gw__metrics_add(m, GW_M_TTFT, &l, NULL, 0.03);  /* le 0.04 */
    gw__metrics_add(m, GW_M_TTFT, &l, NULL, 0.04);  /* le 0.04 (inclusive) */
    gw__metrics_add(m, GW_M_TTFT, &l, NULL, 100.0); /* +Inf only */
    const char *x[] = {"status_class", "2xx", "outcome", "ok", NULL};
    gw__metrics_add(m, GW_M_REQUESTS, &l, x, 1);
    /* the same labels with their hash computed once find the same series */
    struct gw_mlabels hashed = l;
    gw__mlabels_hash(&hashed);
    assert_int_not_equal(hashed.hash, 0);
    gw__metrics_add(m, GW_M_REQUESTS, &hashed, x, 1);
    gw__metrics_unlock(m);
    gw__metrics_inflight(m, 2);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(gw__metrics_render(m, &b), HS_OK);
    const char *want[] = {
        "# TYPE gen_ai_server_time_to_first_token_seconds histogram\n",
        "gen_ai_server_time_to_first_token_seconds_bucket{model=\"llama\",route=\"r1\","
        "upstream=\"http://u\",operation=\"chat\",le=\"0.02\"} 0\n",
        "gen_ai_server_time_to_first_token_seconds_bucket{model=\"llama\",route=\"r1\","
        "upstream=\"http://u\",operation=\"chat\",le=\"0.04\"} 2\n",
        "gen_ai_server_time_to_first_token_seconds_bucket{model=\"llama\",route=\"r1\","
        "upstream=\"http://u\",operation=\"chat\",le=\"80.0\"} 2\n",
        "gen_ai_server_time_to_first_token_seconds_bucket{model=\"llama\",route=\"r1\","
        "upstream=\"http://u\",operation=\"chat\",le=\"+Inf\"} 3\n",
        "gen_ai_server_time_to_first_token_seconds_count{model=\"llama\",route=\"r1\","
        "upstream=\"http://u\",operation=\"chat\"} 3\n",
        "holoscope_gateway_requests_total{model=\"llama\",route=\"r1\",upstream=\"http://u\","
        "operation=\"chat\",status_class=\"2xx\",outcome=\"ok\"} 2\n",
        "holoscope_gateway_inflight_requests 2\n",
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(want); i++)
        if (strstr(b.p, want[i]) == NULL)
            fail_msg("missing %s in:\n%s", want[i], b.p);
    assert_null(strstr(b.p, "gen_ai_server_time_per_output_token_seconds")); /* no series */
    hs_buf_cleanup(&b);
    gw__metrics_free(m);
}

static void metrics_drop_observations_past_the_series_ceiling(void **state)
{
    (void)state;
    struct gw_metrics *m = gw__metrics_new(2);
    struct gw_mlabels l = {"a", NULL, NULL, "chat", NULL, 0};
    gw__metrics_lock(m);
    const char *t[] = {"token_type", "input", NULL};
    gw__metrics_add(m, GW_M_TOKENS, &l, t, 5);
    t[1] = "output";
    gw__metrics_add(m, GW_M_TOKENS, &l, t, 7);
    t[1] = "reasoning";
    gw__metrics_add(m, GW_M_TOKENS, &l, t, 9); /* third series: dropped */
    t[1] = "input";
    gw__metrics_add(m, GW_M_TOKENS, &l, t, 5); /* existing: counted */
    gw__metrics_unlock(m);
    assert_int_equal(gw__metrics_dropped(m), 1);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(gw__metrics_render(m, &b), HS_OK);
    assert_non_null(strstr(b.p, "token_type=\"input\"} 10\n"));
    assert_null(strstr(b.p, "reasoning"));
    hs_buf_cleanup(&b);
    gw__metrics_free(m);
}

static void metrics_append_every_sample_to_the_store(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("gwm");
    struct tsdb_options o;
    tsdb_options_defaults(&o);
    o.wal_fsync = TSDB_FSYNC_NONE;
    struct hs_err err = {0};
    struct tsdb *db = tsdb_open(dir, &o, &err);
    assert_non_null(db);
    struct gw_metrics *m = gw__metrics_new(100);
    struct gw_mlabels l = {"a", "r", "http://u", "chat", "00ff", 0};
    gw__metrics_lock(m);
    gw__metrics_add(m, GW_M_OVERHEAD, &l, (const char *const[]){"phase", "pre", NULL}, 0.00002);
    gw__metrics_add(m, GW_M_FINISH, &l, (const char *const[]){"finish_reason", "stop", NULL}, 1);
    gw__metrics_unlock(m);
    uint64_t n = 0;
    assert_int_equal(gw__metrics_append(m, db, 1000, &n, &err), HS_OK);
    /* overhead: 12 bounds + Inf + sum + count = 15; finish: 1; inflight: 1 */
    assert_int_equal(n, 17);
    assert_int_equal(gw__metrics_append(m, db, 2000, &n, &err), HS_OK); /* by ref now */
    assert_int_equal(n, 34);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.samples_appended, 34);
    gw__metrics_free(m);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

static void traceparent_accepts_valid_values_and_rejects_invalid_ones(void **state)
{
    (void)state;
    struct gw_trace t;
    assert_int_equal(
        gw_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &t), HS_OK);
    assert_int_equal(t.trace_id[0], 0x4b);
    assert_int_equal(t.parent_id[7], 0xb7);
    assert_int_equal(t.flags, 1);
    assert_true(t.has_parent);
    char out[56];
    gw_traceparent_format(t.trace_id, t.parent_id, t.flags, out);
    assert_string_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /* a higher version may carry more fields */
    assert_int_equal(
        gw_traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-xyz", &t),
        HS_OK);
    const char *bad[] = {
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* v00 too long */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   /* short trace */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",  /* separators */
        "",
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(bad); i++)
        if (gw_traceparent_parse(bad[i], &t) != HS_EINVAL)
            fail_msg("accepted %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(le_values_are_written_in_float_form),
        cmocka_unit_test(metrics_render_cumulative_buckets_sum_and_count),
        cmocka_unit_test(metrics_drop_observations_past_the_series_ceiling),
        cmocka_unit_test(metrics_append_every_sample_to_the_store),
        cmocka_unit_test(traceparent_accepts_valid_values_and_rejects_invalid_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
