/*
 * test_notify.c - alert notifications through a fake sender: Alertmanager
 * v2 and webhook v4 bodies, firing alerts re-sent per resend delay and once
 * more on resolve, retries with backoff, drops counted on a full queue and
 * after the last retry, and bearer tokens handed to the sender only.
 */
#include "hs_test.h"

#include "promql/promql.h"
#include "rules/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0  1700000000000LL
#define MIN 60000LL

struct fake {
    int calls;
    int fail_next; /* fail this many calls */
    char url[256];
    char token[64];
    char body[8192];
};

static int fake_send(void *arg, const char *url, const char *bearer, const char *body, size_t len,
                     struct hs_err *err)
{
    struct fake *f = arg;
    f->calls++;
    snprintf(f->url, sizeof f->url, "%s", url);
    snprintf(f->token, sizeof f->token, "%s", bearer ? bearer : "");
    snprintf(f->body, sizeof f->body, "%.*s", (int)len, body);
    if (f->fail_next > 0) {
        f->fail_next--;
        return hs_err_set(err, HS_EIO, "HTTP 503");
    }
    return HS_OK;
}

static struct rules_notifier *notifier(struct fake *f, int format, size_t cap)
{
    struct rules_notify_target t = {
        .url = "http://127.0.0.1:9093", .format = format, .bearer_token = "s3cret"};
    if (format == RULES_NOTIFY_WEBHOOK_V4)
        t.url = "http://user:pw@127.0.0.1:9093/hook?token=abc";
    struct rules_notifier_opts o = {0};
    o.targets = &t;
    o.ntargets = 1;
    o.queue_capacity = cap;
    o.max_retries = 2;
    o.backoff_initial_ms = 1000;
    o.external_url = "http://holoscope:9090";
    o.send = fake_send;
    o.send_arg = f;
    struct hs_err err;
    struct rules_notifier *n = rules_notifier_new(&o, &err);
    assert_non_null(n);
    return n;
}

static struct hs_label al[] = {{"alertname", "GPUHot"}, {"gpu", "0"}};
static struct hs_labels alabels = {2, al};
static struct hs_label aa[] = {{"summary", "GPU 0 is hot"}};
static struct hs_labels aann = {1, aa};

static void am_v2_body_and_url(void **state)
{
    (void)state;
    struct fake f = {0};
    struct rules_notifier *n = notifier(&f, RULES_NOTIFY_AM_V2, 10);
    struct rules_notify_alert a = {&alabels, &aann, T0, T0 + 4 * MIN, "http://h/graph"};
    struct hs_err err;
    assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    assert_int_equal(rules_notifier_run(n, T0), 1);
    assert_string_equal(f.url, "http://127.0.0.1:9093/api/v2/alerts");
    assert_string_equal(f.token, "s3cret");
    assert_string_equal(f.body, "[{\"labels\":{\"alertname\":\"GPUHot\",\"gpu\":\"0\"},"
                                "\"annotations\":{\"summary\":\"GPU 0 is hot\"},"
                                "\"startsAt\":\"2023-11-14T22:13:20Z\","
                                "\"endsAt\":\"2023-11-14T22:17:20Z\","
                                "\"generatorURL\":\"http://h/graph\"}]");
    struct rules_notifier_stats st;
    rules_notifier_get_stats(n, &st);
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.queued, 0);
    assert_int_equal(rules_notifier_run(n, T0), 0); /* nothing left */
    rules_notifier_free(n);
}

static void webhook_v4_body_has_alertmanager_shape(void **state)
{
    (void)state;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct rules_notify_alert a[2] = {{&alabels, &aann, T0, 0, NULL},
                                      {&alabels, NULL, T0, T0 + 1000, NULL}};
    assert_int_equal(rules_notify_webhook_v4_json(a, 2, "http://x", &b), HS_OK);
    assert_non_null(strstr(b.p, "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"GPUHot\\\"}\","
                                "\"truncatedAlerts\":0,\"status\":\"firing\",\"receiver\":"
                                "\"holoscope\",\"groupLabels\":{\"alertname\":\"GPUHot\"},"
                                "\"commonLabels\":{\"alertname\":\"GPUHot\",\"gpu\":\"0\"},"
                                "\"commonAnnotations\":{},\"externalURL\":\"http://x\","
                                "\"alerts\":[{\"status\":\"firing\""));
    assert_non_null(strstr(b.p, "{\"status\":\"resolved\""));
    assert_non_null(strstr(b.p, "\"fingerprint\":\""));
    hs_buf_cleanup(&b);
}

static void failed_sends_are_retried_with_backoff_then_dropped(void **state)
{
    (void)state;
    struct fake f = {0};
    struct rules_notifier *n = notifier(&f, RULES_NOTIFY_WEBHOOK_V4, 10);
    struct rules_notify_alert a = {&alabels, &aann, T0, 0, NULL};
    struct hs_err err;
    assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    f.fail_next = 1;
    assert_int_equal(rules_notifier_run(n, T0), 1);
    assert_int_equal(rules_notifier_run(n, T0 + 999), 0); /* backing off */
    assert_int_equal(rules_notifier_run(n, T0 + 1000), 1);
    assert_string_equal(f.url, "http://user:pw@127.0.0.1:9093/hook?token=abc");
    struct rules_notifier_stats st;
    rules_notifier_get_stats(n, &st);
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.errors, 1);
    /* always failing: first try + 2 retries, backoff 1s then 2s, then dropped */
    assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    f.fail_next = 100;
    assert_int_equal(rules_notifier_run(n, T0 + 10000), 1);
    assert_int_equal(rules_notifier_run(n, T0 + 11000), 1);
    assert_int_equal(rules_notifier_run(n, T0 + 12999), 0);
    char logbuf[4096] = "";
    FILE *log = fmemopen(logbuf, sizeof logbuf - 1, "w");
    hs_log_setup(HS_LOG_INFO, HS_LOG_LOGFMT, log);
    assert_int_equal(rules_notifier_run(n, T0 + 13000), 1);
    hs_log_setup(HS_LOG_INFO, HS_LOG_LOGFMT, NULL);
    fclose(log);
    assert_non_null(strstr(logbuf, "dropped after retries"));
    assert_non_null(strstr(logbuf, "http://127.0.0.1:9093/hook"));
    assert_null(strstr(logbuf, "pw"));
    assert_null(strstr(logbuf, "abc"));
    assert_null(strstr(logbuf, "s3cret"));
    rules_notifier_get_stats(n, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.errors, 4);
    rules_notifier_free(n);
}

static void full_queue_drops_oldest_and_counts(void **state)
{
    (void)state;
    struct fake f = {0};
    struct rules_notifier *n = notifier(&f, RULES_NOTIFY_AM_V2, 3);
    struct hs_err err;
    for (int i = 0; i < 5; i++) {
        struct rules_notify_alert a = {&alabels, NULL, T0 + i, 0, NULL};
        assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    }
    struct rules_notifier_stats st;
    rules_notifier_get_stats(n, &st);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(st.queued, 3);
    assert_int_equal(rules_notifier_run(n, T0), 1);
    assert_non_null(strstr(f.body, "22:13:20.002Z")); /* the oldest kept is the third */
    assert_null(strstr(f.body, "22:13:20.001Z"));
    rules_notifier_free(n);
}

static void bad_targets_are_rejected_without_echoing_secrets(void **state)
{
    (void)state;
    struct rules_notify_target t = {
        .url = "ftp://am", .format = RULES_NOTIFY_AM_V2, .bearer_token = "topsecret"};
    struct rules_notifier_opts o = {0};
    o.targets = &t;
    o.ntargets = 1;
    o.send = fake_send;
    struct hs_err err;
    hs_err_clear(&err);
    assert_null(rules_notifier_new(&o, &err));
    assert_non_null(strstr(err.msg, "http://"));
    assert_null(strstr(err.msg, "topsecret"));
}

static void manager_sends_firing_alerts_per_resend_delay_and_on_resolve(void **state)
{
    (void)state;
    struct fake f = {0};
    struct rules_notifier *n = notifier(&f, RULES_NOTIFY_AM_V2, 100);
    struct promql_mem *mem = promql_mem_new();
    struct promql_storage st;
    promql_mem_storage(mem, &st);
    struct promql_engine *e = promql_engine_new(NULL);
    struct hs_label ext[] = {{"cluster", "eu"}};
    struct rules_manager_opts o = {0};
    o.engine = e;
    o.storage = &st;
    rules_mem_sink(mem, &o.sink);
    o.notifier = n;
    o.resend_delay_ms = 2 * MIN;
    o.external_labels = (struct hs_labels){1, ext};
    o.generator_url = "http://holoscope:9090";
    struct hs_err err;
    struct rules_manager *m = rules_manager_new(&o, &err);
    const char *text = "groups:\n  - name: g\n    interval: 1m\n    rules:\n"
                       "      - alert: Hot\n        expr: temp > 80\n        for: 1m\n"
                       "        annotations: {summary: 'at {{ $value }}'}\n";
    struct rules_set *s = rules_set_new();
    assert_int_equal(rules_set_add_text(s, "n.yml", text, strlen(text), NULL, NULL, &err), HS_OK);
    assert_int_equal(rules_manager_update(m, s, &err), HS_OK);
    struct hs_label tl[] = {{"__name__", "temp"}, {"gpu", "0"}};
    struct hs_labels tls = {2, tl};
    int sends[8] = {0};
    double temps[8] = {90, 90, 90, 90, 90, 50, 50, 50};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(promql_mem_append(mem, &tls, T0 + i * MIN, temps[i], &err), HS_OK);
        assert_int_equal(rules_manager_eval_group(m, 0, T0 + i * MIN, &err), HS_OK);
        int before = f.calls;
        rules_notifier_run(n, T0 + i * MIN);
        sends[i] = f.calls - before;
        if (i == 1) {
            assert_non_null(strstr(f.body, "\"cluster\":\"eu\""));
            assert_non_null(strstr(f.body, "\"summary\":\"at 90\""));
            assert_non_null(strstr(f.body, "http://holoscope:9090/graph?g0.expr=temp%20%3E%2080"));
        }
        if (i == 5)
            assert_non_null(strstr(f.body, "\"endsAt\":\"2023-11-14T22:18:20Z\""));
    }
    /* pending at 0; fires at 1 (sent); re-sent at 4 (> 2m later); resolved at 5 (sent);
     * resolved re-sent at 8 would be next */
    int want[8] = {0, 1, 0, 0, 1, 1, 0, 0};
    for (int i = 0; i < 8; i++)
        if (sends[i] != want[i])
            fail_msg("eval %d: %d sends, want %d", i, sends[i], want[i]);
    rules_manager_free(m);
    promql_engine_free(e);
    promql_mem_free(mem);
    rules_notifier_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(am_v2_body_and_url),
        cmocka_unit_test(webhook_v4_body_has_alertmanager_shape),
        cmocka_unit_test(failed_sends_are_retried_with_backoff_then_dropped),
        cmocka_unit_test(full_queue_drops_oldest_and_counts),
        cmocka_unit_test(bad_targets_are_rejected_without_echoing_secrets),
        cmocka_unit_test(manager_sends_firing_alerts_per_resend_delay_and_on_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
