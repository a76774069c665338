/*
 * test_alert_state.c - the alert state machine and the series it writes,
 * on synthetic series in the in-memory store: for, keep_firing_for,
 * flapping, NaN values, missing series, staleness of ALERTS, restore of
 * activeAt after a restart, reload keeping state, and the API JSON.
 */
#include "hs_test.h"

#include "promql/promql.h"
#include "rules/rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T0  1700000000000LL
#define MIN 60000LL

static const char rules_text[] =
    "groups:\n"
    "  - name: g\n"
    "    interval: 1m\n"
    "    rules:\n"
    "      - alert: High\n"
    "        expr: metric > 10\n"
    "        for: 3m\n"
    "        labels:\n"
    "          severity: page\n"
    "        annotations:\n"
    "          summary: '{{ $labels.instance }} at {{ $value | humanize }}'\n"
    "      - alert: Keep\n"
    "        expr: metric > 10\n"
    "        keep_firing_for: 2m\n"
    "      - alert: Raw\n"
    "        expr: nanmetric\n"
    "        annotations:\n"
    "          v: '{{ $value }}'\n"
    "      - alert: Absent\n"
    "        expr: nosuchmetric > 0\n"
    "      - record: job:metric:sum\n"
    "        expr: sum by (job) (metric)\n";

struct fx {
    struct promql_mem *mem;
    struct promql_storage st;
    struct promql_engine *engine;
    struct rules_manager *m;
};

static struct rules_set *load(const char *text)
{
    struct rules_set *s = rules_set_new();
    assert_non_null(s);
    struct hs_err err;
    hs_err_clear(&err);
    int rc = rules_set_add_text(s, "test.yml", text, strlen(text), NULL, NULL, &err);
    if (rc != HS_OK)
        fail_msg("load: %s", err.msg);
    return s;
}

static struct rules_manager *manager(struct fx *f, const char *text)
{
    struct rules_manager_opts o = {0};
    o.engine = f->engine;
    o.storage = &f->st;
    rules_mem_sink(f->mem, &o.sink);
    struct hs_err err;
    struct rules_manager *m = rules_manager_new(&o, &err);
    assert_non_null(m);
    assert_int_equal(rules_manager_update(m, load(text), &err), HS_OK);
    return m;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->mem = promql_mem_new();
    promql_mem_storage(f->mem, &f->st);
    f->engine = promql_engine_new(NULL);
    f->m = manager(f, rules_text);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rules_manager_free(f->m);
    promql_engine_free(f->engine);
    promql_mem_free(f->mem);
    free(f);
    return 0;
}

static void put(struct fx *f, const char *name, const char *instance, int64_t t, double v)
{
    struct hs_label l[] = {{"__name__", name}, {"instance", instance}, {"job", "j"}};
    struct hs_labels ls = {3, l};
    struct hs_err err;
    assert_int_equal(promql_mem_append(f->mem, &ls, t, v, &err), HS_OK);
}

static void eval(struct fx *f, int64_t t)
{
    struct hs_err err;
    hs_err_clear(&err);
    if (rules_manager_eval_group(f->m, 0, t, &err) != HS_OK)
        fail_msg("eval: %s", err.msg);
}

static int alert_state(struct fx *f, const char *name, const char *instance, int64_t *active_at)
{
    struct hs_label l[] = {
        {"alertname", name}, {"instance", instance}, {"job", "j"}, {"severity", "page"}};
    struct hs_labels ls = {strcmp(name, "High") == 0 ? 4u : 3u, l};
    struct rules_alert_info ai;
    struct hs_err err;
    if (rules_manager_alert_get(f->m, name, &ls, &ai, &err) != HS_OK)
        return -1;
    if (active_at)
        *active_at = ai.active_at_ms;
    return ai.state;
}

/* Number of series the query returns at t. */
static size_t count(struct fx *f, const char *q, int64_t t, double *first)
{
    struct promql_result *r = NULL;
    struct hs_err err;
    if (promql_query_instant(f->engine, &f->st, q, t, NULL, &r, &err) != HS_OK)
        fail_msg("%s: %s", q, err.msg);
    size_t n = r->nseries;
    if (first && n)
        *first = r->series[0].points[0].v;
    promql_result_free(r);
    return n;
}

static void alert_goes_pending_then_fires_after_for_then_resolves(void **state)
{
    struct fx *f = *state;
    int64_t at = 0;
    for (int i = 0; i <= 3; i++) {
        put(f, "metric", "a", T0 + i * MIN, 20);
        eval(f, T0 + i * MIN);
        int want = i < 3 ? RULES_PENDING : RULES_FIRING;
        assert_int_equal(alert_state(f, "High", "a", &at), want);
        assert_int_equal(at, T0);
    }
    double v = 0;
    assert_int_equal(
        count(f, "ALERTS{alertname=\"High\",alertstate=\"firing\"}", T0 + 3 * MIN, NULL), 1);
    assert_int_equal(
        count(f, "ALERTS{alertname=\"High\",alertstate=\"pending\"}", T0 + 3 * MIN, NULL), 0);
    assert_int_equal(count(f, "ALERTS_FOR_STATE{alertname=\"High\"}", T0 + 3 * MIN, &v), 1);
    assert_true(v == (double)T0 / 1000);
    /* the value drops: resolved, kept for notification, ALERTS goes stale at once */
    put(f, "metric", "a", T0 + 4 * MIN, 5);
    eval(f, T0 + 4 * MIN);
    assert_int_equal(alert_state(f, "High", "a", NULL), RULES_INACTIVE);
    assert_int_equal(count(f, "ALERTS{alertname=\"High\"}", T0 + 4 * MIN, NULL), 0);
    /* dropped after the resolved retention */
    for (int i = 5; i <= 21; i++) {
        put(f, "metric", "a", T0 + i * MIN, 5);
        eval(f, T0 + i * MIN);
    }
    assert_int_equal(alert_state(f, "High", "a", NULL), -1);
    /* the recording rule kept writing */
    assert_int_equal(count(f, "job:metric:sum{job=\"j\"}", T0 + 21 * MIN, &v), 1);
    assert_true(v == 5);
}

static void flapping_pending_alert_restarts_its_for_clock(void **state)
{
    struct fx *f = *state;
    double vals[] = {20, 20, 5, 20, 20, 20, 20};
    int64_t at = 0;
    for (int i = 0; i < 7; i++) {
        put(f, "metric", "a", T0 + i * MIN, vals[i]);
        eval(f, T0 + i * MIN);
    }
    /* pending at 0, dropped at 2, pending again from 3, fires at 3+3 = 6 */
    assert_int_equal(alert_state(f, "High", "a", &at), RULES_FIRING);
    assert_int_equal(at, T0 + 3 * MIN);
}

static void keep_firing_for_holds_the_alert_after_the_series_clears(void **state)
{
    struct fx *f = *state;
    put(f, "metric", "a", T0, 20);
    eval(f, T0);
    assert_int_equal(alert_state(f, "Keep", "a", NULL), RULES_FIRING); /* no 'for' */
    for (int i = 1; i <= 2; i++) {
        put(f, "metric", "a", T0 + i * MIN, 5);
        eval(f, T0 + i * MIN);
        assert_int_equal(alert_state(f, "Keep", "a", NULL), RULES_FIRING);
        assert_int_equal(
            count(f, "ALERTS{alertname=\"Keep\",alertstate=\"firing\"}", T0 + i * MIN, NULL), 1);
    }
    put(f, "metric", "a", T0 + 3 * MIN, 5);
    eval(f, T0 + 3 * MIN); /* 2m since the series cleared at 1m */
    assert_int_equal(alert_state(f, "Keep", "a", NULL), RULES_INACTIVE);
    /* it comes back: the keep clock restarts */
    put(f, "metric", "a", T0 + 4 * MIN, 20);
    eval(f, T0 + 4 * MIN);
    assert_int_equal(alert_state(f, "Keep", "a", NULL), RULES_FIRING);
}

static void nan_values_alert_and_missing_series_do_not(void **state)
{
    struct fx *f = *state;
    put(f, "nanmetric", "a", T0, NAN);
    eval(f, T0);
    struct hs_label l[] = {{"alertname", "Raw"}, {"instance", "a"}, {"job", "j"}};
    struct hs_labels ls = {3, l};
    struct rules_alert_info ai;
    struct hs_err err;
    assert_int_equal(rules_manager_alert_get(f->m, "Raw", &ls, &ai, &err), HS_OK);
    assert_int_equal(ai.state, RULES_FIRING);
    assert_true(isnan(ai.value));
    assert_int_equal(rules_manager_alert_count(f->m, "Absent", RULES_PENDING), 0);
    assert_int_equal(rules_manager_alert_count(f->m, "Absent", RULES_FIRING), 0);
    assert_int_equal(rules_manager_failures(f->m), 0);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(rules_manager_alerts_json(f->m, &b), HS_OK);
    assert_non_null(strstr(b.p, "\"v\":\"NaN\""));
    assert_non_null(strstr(b.p, "\"value\":\"NaN\""));
    hs_buf_cleanup(&b);
    /* the series vanishes past the lookback: the alert resolves */
    eval(f, T0 + 6 * MIN);
    assert_int_equal(rules_manager_alert_get(f->m, "Raw", &ls, &ai, &err), HS_OK);
    assert_int_equal(ai.state, RULES_INACTIVE);
}

static void state_is_restored_from_alerts_for_state_after_a_restart(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i <= 2; i++) {
        put(f, "metric", "a", T0 + i * MIN, 20);
        eval(f, T0 + i * MIN);
    }
    assert_int_equal(alert_state(f, "High", "a", NULL), RULES_PENDING);
    /* "restart": a new manager over the same store */
    rules_manager_free(f->m);
    f->m = manager(f, rules_text);
    put(f, "metric", "a", T0 + 3 * MIN, 20);
    eval(f, T0 + 3 * MIN);
    int64_t at = 0;
    assert_int_equal(alert_state(f, "High", "a", &at), RULES_FIRING);
    assert_int_equal(at, T0);
}

static void reload_keeps_state_of_unchanged_rules_only(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i <= 1; i++) {
        put(f, "metric", "a", T0 + i * MIN, 20);
        eval(f, T0 + i * MIN);
    }
    struct hs_err err;
    assert_int_equal(rules_manager_update(f->m, load(rules_text), &err), HS_OK);
    int64_t at = 0;
    assert_int_equal(alert_state(f, "High", "a", &at), RULES_PENDING);
    assert_int_equal(at, T0);
    /* change High's expression: its state starts over, Keep's stays */
    char *changed = strdup(rules_text);
    char *p = strstr(changed, "metric > 10\n        for: 3m");
    memcpy(p, "metric > 11", 11);
    assert_int_equal(rules_manager_update(f->m, load(changed), &err), HS_OK);
    free(changed);
    assert_int_equal(alert_state(f, "High", "a", NULL), -1);
    assert_int_equal(alert_state(f, "Keep", "a", NULL), RULES_FIRING);
}

static void eval_failures_are_counted_and_shown(void **state)
{
    struct fx *f = *state;
    struct hs_err err;
    const char *bad = "groups:\n"
                      "  - name: bad\n"
                      "    rules:\n"
                      "      - record: dup\n"
                      "        expr: metric\n"
                      "        labels: {instance: same}\n";
    assert_int_equal(rules_manager_update(f->m, load(bad), &err), HS_OK);
    put(f, "metric", "a", T0, 1);
    put(f, "metric", "b", T0, 2);
    eval(f, T0);
    assert_int_equal(rules_manager_failures(f->m), 1);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(rules_manager_rules_json(f->m, NULL, &b), HS_OK);
    assert_non_null(strstr(b.p, "\"health\":\"err\""));
    assert_non_null(strstr(b.p, "same labelset"));
    hs_buf_cleanup(&b);
}

static void rules_json_has_prometheus_shape(void **state)
{
    struct fx *f = *state;
    put(f, "metric", "a", T0, 20);
    eval(f, T0);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(rules_manager_rules_json(f->m, NULL, &b), HS_OK);
    assert_non_null(strstr(b.p, "{\"groups\":[{\"name\":\"g\",\"file\":\"test.yml\",\"rules\":[{"
                                "\"state\":\"pending\",\"name\":\"High\",\"query\":\"metric > "
                                "10\",\"duration\":180,\"keepFiringFor\":0,"));
    assert_non_null(strstr(b.p, "\"summary\":\"a at 20\""));
    assert_non_null(strstr(b.p, "\"activeAt\":\"2023-11-14T22:13:20Z\",\"value\":\"2e+01\""));
    assert_non_null(strstr(b.p, "\"type\":\"recording\""));
    assert_non_null(strstr(b.p, "\"interval\":60,\"limit\":0,"));
    hs_buf_reset(&b);
    struct rules_api_filter flt = {"record", false};
    assert_int_equal(rules_manager_rules_json(f->m, &flt, &b), HS_OK);
    assert_null(strstr(b.p, "alerting"));
    hs_buf_cleanup(&b);
}

static void group_eval_times_are_aligned_to_the_interval(void **state)
{
    struct fx *f = *state;
    int64_t a = rules_manager_group_eval_time(f->m, 0, T0 + 12345);
    int64_t b = rules_manager_group_eval_time(f->m, 0, T0 + 12345 + MIN);
    assert_int_equal(b - a, MIN);
    assert_true(a <= T0 + 12345 && a > T0 + 12345 - MIN);
    assert_int_equal(rules_manager_group_eval_time(f->m, 0, a), a);
}

static void query_offset_shifts_query_and_sample_time(void **state)
{
    struct fx *f = *state;
    struct hs_err err;
    const char *text = "groups:\n"
                       "  - name: off\n"
                       "    query_offset: 1m\n"
                       "    rules:\n"
                       "      - record: shifted\n"
                       "        expr: metric\n";
    assert_int_equal(rules_manager_update(f->m, load(text), &err), HS_OK);
    put(f, "metric", "a", T0, 1);
    put(f, "metric", "a", T0 + MIN, 2);
    eval(f, T0 + MIN);
    double v = 0;
    /* the value of T0, written at T0: nothing of it is visible before T0 */
    assert_int_equal(count(f, "shifted", T0, &v), 1);
    assert_true(v == 1);
    assert_int_equal(count(f, "shifted", T0 - 1, NULL), 0);
}

static void evaluation_survives_allocation_failures(void **state)
{
    struct fx *f = *state;
    for (long n = 0; n < 600; n += 3) {
        int64_t t = T0 + n * MIN;
        put(f, "metric", "a", t, n % 2 ? 20 : 5);
        put(f, "nanmetric", "b", t, 1);
        struct hs_err err;
        hs_alloc_fail_after(n / 3);
        int rc = rules_manager_eval_group(f->m, 0, t, &err);
        hs_alloc_fail_after(-1);
        assert_true(rc == HS_OK || rc == HS_ENOMEM);
        struct hs_buf b;
        hs_buf_init(&b, 0);
        assert_int_equal(rules_manager_rules_json(f->m, NULL, &b), HS_OK);
        hs_buf_cleanup(&b);
    }
    /* and it still works afterwards */
    put(f, "metric", "a", T0 + 700 * MIN, 20);
    eval(f, T0 + 700 * MIN);
    assert_int_equal(alert_state(f, "Keep", "a", NULL), RULES_FIRING);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(alert_goes_pending_then_fires_after_for_then_resolves),
        T(flapping_pending_alert_restarts_its_for_clock),
        T(keep_firing_for_holds_the_alert_after_the_series_clears),
        T(nan_values_alert_and_missing_series_do_not),
        T(state_is_restored_from_alerts_for_state_after_a_restart),
        T(reload_keeps_state_of_unchanged_rules_only),
        T(eval_failures_are_counted_and_shown),
        T(rules_json_has_prometheus_shape),
        T(group_eval_times_are_aligned_to_the_interval),
        T(query_offset_shifts_query_and_sample_time),
        T(evaluation_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
