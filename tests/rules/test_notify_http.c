/*
 * test_notify_http.c - the notifier's built-in HTTP sender against an
 * in-process receiver (holoscope's http server on a thread of its own):
 * Alertmanager v2 posts with auth and extra headers, webhook payloads
 * grouped per alertname, send_resolved: false, a receiver that is down
 * (retries, errors, drops counted) while another is served, a held
 * (slow) receiver not delaying the others, the /metrics families; and the
 * `alerting:` configuration section.
 */
#include "hs_test.h"

#include "http/http.h"
#include "rules/rules.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the receiver -------------------------------------------------------------- */

#define MAX_REQS 32

struct req_rec {
    char path[128];
    char auth[128];
    char org[64];
    char body[4096];
};

struct receiver {
    struct event_base *base;
    struct http_server *http;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int port;
    int nreqs;
    struct req_rec reqs[MAX_REQS];
    struct http_request *held; /* a request to /slow/... left unanswered */
};

static void on_any(struct http_request *r, void *arg)
{
    struct receiver *rv = arg;
    size_t len = 0;
    const char *body = http_request_body(r, &len);
    const char *auth = http_request_header(r, "Authorization");
    const char *org = http_request_header(r, "X-Scope-OrgID");
    const char *path = http_request_path(r);
    bool hold = hs_has_prefix(path, "/slow/");
    pthread_mutex_lock(&rv->mu);
    if (rv->nreqs < MAX_REQS) {
        struct req_rec *q = &rv->reqs[rv->nreqs++];
        snprintf(q->path, sizeof q->path, "%s", path);
        snprintf(q->auth, sizeof q->auth, "%s", auth ? auth : "");
        snprintf(q->org, sizeof q->org, "%s", org ? org : "");
        snprintf(q->body, sizeof q->body, "%.*s", (int)len, body);
    }
    if (hold && rv->held == NULL)
        rv->held = r;
    else
        hold = false;
    pthread_cond_broadcast(&rv->cv);
    pthread_mutex_unlock(&rv->mu);
    if (!hold)
        http_respond(r, 200, "application/json", "{}", 2);
}

static void *receiver_main(void *arg)
{
    struct receiver *rv = arg;
    event_base_loop(rv->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void receiver_start_on(struct receiver *rv, const char *listen)
{
    memset(rv, 0, sizeof *rv);
    assert_int_equal(evthread_use_pthreads(), 0);
    pthread_mutex_init(&rv->mu, NULL);
    pthread_cond_init(&rv->cv, NULL);
    rv->base = event_base_new();
    struct http_server_config c;
    http_server_config_defaults(&c);
    c.listen = listen;
    struct hs_err err = {0};
    rv->http = http_server_new(rv->base, &c, &err);
    assert_non_null(rv->http);
    assert_int_equal(http_server_route(rv->http, "POST", "/*", "any", on_any, rv), HS_OK);
    assert_int_equal(http_server_start(rv->http, &err), HS_OK);
    rv->port = http_server_port(rv->http);
    assert_int_equal(pthread_create(&rv->th, NULL, receiver_main, rv), 0);
}

static void receiver_start(struct receiver *rv)
{
    receiver_start_on(rv, "127.0.0.1:0");
}

static void receiver_stop(struct receiver *rv)
{
    event_base_loopbreak(rv->base);
    pthread_join(rv->th, NULL);
    http_server_free(rv->http); /* frees a held request too */
    event_base_free(rv->base);
    pthread_cond_destroy(&rv->cv);
    pthread_mutex_destroy(&rv->mu);
}

/* Waits (at most 20 s, a safety net) until the receiver has 'want' requests. */
static int wait_reqs(struct receiver *rv, int want)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&rv->mu);
    while (rv->nreqs < want && pthread_cond_timedwait(&rv->cv, &rv->mu, &ts) == 0) {
    }
    int n = rv->nreqs;
    pthread_mutex_unlock(&rv->mu);
    return n;
}

static const struct req_rec *find_req(struct receiver *rv, const char *path, int nth)
{
    for (int i = 0; i < rv->nreqs; i++)
        if (strcmp(rv->reqs[i].path, path) == 0 && nth-- == 0)
            return &rv->reqs[i];
    return NULL;
}

static bool target_stats_until(struct rules_notifier *n, size_t i,
                               bool (*pred)(const struct rules_notifier_target_stats *),
                               struct rules_notifier_target_stats *st)
{
    for (int k = 0; k < 4000; k++) {
        rules_notifier_get_target_stats(n, i, st);
        if (pred(st))
            return true;
        struct timespec d = {0, 5 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    return false;
}

static struct hs_label l_a[] = {{"alertname", "GPUHot"}, {"gpu", "0"}};
static struct hs_label l_a1[] = {{"alertname", "GPUHot"}, {"gpu", "1"}};
static struct hs_label l_b[] = {{"alertname", "TTFTHigh"}, {"model", "m"}};
static struct hs_labels la = {2, l_a}, la1 = {2, l_a1}, lb = {2, l_b};
static struct hs_label ann_v[] = {{"summary", "hot"}};
static struct hs_labels ann = {1, ann_v};

static struct rules_notifier *http_notifier(const struct rules_notify_target *t, size_t n,
                                            int max_retries)
{
    struct rules_notifier_opts o = {0};
    o.targets = t;
    o.ntargets = n;
    o.max_retries = max_retries;
    o.backoff_initial_ms = 10;
    o.backoff_max_ms = 20;
    o.external_url = "http://holoscope:9190";
    struct hs_err err = {0};
    struct rules_notifier *nt = rules_notifier_new(&o, &err);
    if (!nt)
        fail_msg("rules_notifier_new: %s", err.msg);
    return nt;
}

static bool sent_1(const struct rules_notifier_target_stats *st)
{
    return st->sent >= 1;
}

/* ---- tests ----------------------------------------------------------------------- */

static void am_v2_alerts_are_posted_with_bearer_token_and_extra_headers(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/am", rv.port);
    struct rules_notify_header h[] = {{"X-Scope-OrgID", "team-a"}};
    struct rules_notify_target t = {.url = url,
                                    .format = RULES_NOTIFY_AM_V2,
                                    .bearer_token = "tok3n",
                                    .name = "am-1",
                                    .headers = h,
                                    .nheaders = 1};
    struct rules_notifier *n = http_notifier(&t, 1, 3);
    int64_t now = hs_now_ms();
    struct rules_notify_alert a = {&la, &ann, now - 60000, now + 240000, "http://g"};
    struct hs_err err = {0};
    assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    assert_int_equal(rules_notifier_run(n, now), 0); /* the thread sends, not the caller */
    assert_int_equal(wait_reqs(&rv, 1), 1);
    pthread_mutex_lock(&rv.mu);
    const struct req_rec *q = find_req(&rv, "/am/api/v2/alerts", 0);
    assert_non_null(q);
    assert_string_equal(q->auth, "Bearer tok3n");
    assert_string_equal(q->org, "team-a");
    assert_non_null(strstr(q->body, "[{\"labels\":{\"alertname\":\"GPUHot\",\"gpu\":\"0\"},"
                                    "\"annotations\":{\"summary\":\"hot\"}"));
    pthread_mutex_unlock(&rv.mu);
    struct rules_notifier_target_stats st;
    assert_true(target_stats_until(n, 0, sent_1, &st));
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.queued, 0);
    assert_string_equal(st.name, "am-1");
    struct hs_buf m;
    hs_buf_init(&m, 0);
    assert_int_equal(rules_notifier_metrics(n, &m), HS_OK);
    assert_non_null(strstr(
        m.p, "holoscope_notifications_sent_total{receiver=\"am-1\",type=\"alertmanager\"} 1\n"));
    assert_non_null(strstr(m.p, "holoscope_notifications_latency_seconds_count{receiver=\"am-1\","
                                "type=\"alertmanager\"} 1\n"));
    assert_non_null(strstr(m.p, "holoscope_notifications_queue_capacity 10000\n"));
    assert_non_null(strstr(m.p, "holoscope_notifications_alertmanagers_discovered 1\n"));
    assert_null(strstr(m.p, "tok3n"));
    hs_buf_cleanup(&m);
    rules_notifier_free(n);
    receiver_stop(&rv);
}

static bool sent_3(const struct rules_notifier_target_stats *st)
{
    return st->sent >= 3;
}

static void webhook_payloads_hold_one_alertname_each_with_basic_auth(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", rv.port);
    struct rules_notify_target t = {.url = url,
                                    .format = RULES_NOTIFY_WEBHOOK_V4,
                                    .name = "chat-bridge",
                                    .basic_auth_user = "u",
                                    .basic_auth_password = "p"};
    struct rules_notifier *n = http_notifier(&t, 1, 3);
    int64_t now = hs_now_ms();
    struct rules_notify_alert a[3] = {{&la, &ann, now, now + 240000, NULL},
                                      {&la1, &ann, now, now + 240000, NULL},
                                      {&lb, NULL, now - 5000, now - 1000, NULL}};
    struct hs_err err = {0};
    assert_int_equal(rules_notifier_enqueue(n, a, 3, &err), HS_OK);
    struct rules_notifier_target_stats st;
    assert_true(target_stats_until(n, 0, sent_3, &st));
    assert_int_equal(wait_reqs(&rv, 2), 2);
    pthread_mutex_lock(&rv.mu);
    const struct req_rec *q0 = find_req(&rv, "/hook", 0), *q1 = find_req(&rv, "/hook", 1);
    assert_non_null(q0);
    assert_non_null(q1);
    assert_string_equal(q0->auth, "Basic dTpw");
    assert_non_null(strstr(q0->body, "\"groupKey\":\"{}:{alertname=\\\"GPUHot\\\"}\""));
    assert_non_null(strstr(q0->body, "\"status\":\"firing\",\"receiver\":\"chat-bridge\""));
    assert_non_null(strstr(q0->body, "\"commonLabels\":{\"alertname\":\"GPUHot\"}"));
    assert_non_null(strstr(q0->body, "\"endsAt\":\"0001-01-01T00:00:00Z\""));
    assert_non_null(strstr(q0->body, "\"gpu\":\"1\""));
    assert_null(strstr(q0->body, "TTFTHigh"));
    assert_non_null(strstr(q1->body, "\"status\":\"resolved\",\"receiver\":\"chat-bridge\""));
    assert_non_null(strstr(q1->body, "TTFTHigh"));
    pthread_mutex_unlock(&rv.mu);
    rules_notifier_free(n);
    receiver_stop(&rv);
}

static bool sent_1_any(const struct rules_notifier_target_stats *st)
{
    return st->sent >= 1;
}

static void send_resolved_false_skips_resolved_alerts(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", rv.port);
    struct rules_notify_target t = {
        .url = url, .format = RULES_NOTIFY_WEBHOOK_V4, .skip_resolved = true};
    struct rules_notifier *n = http_notifier(&t, 1, 3);
    int64_t now = hs_now_ms();
    struct rules_notify_alert resolved = {&lb, NULL, now - 5000, now - 1000, NULL};
    struct rules_notify_alert firing = {&la, NULL, now, now + 240000, NULL};
    struct hs_err err = {0};
    assert_int_equal(rules_notifier_enqueue(n, &resolved, 1, &err), HS_OK);
    assert_int_equal(rules_notifier_enqueue(n, &firing, 1, &err), HS_OK);
    struct rules_notifier_target_stats st;
    assert_true(target_stats_until(n, 0, sent_1_any, &st));
    assert_int_equal(wait_reqs(&rv, 1), 1);
    rules_notifier_free(n);
    pthread_mutex_lock(&rv.mu);
    assert_int_equal(rv.nreqs, 1);
    assert_null(strstr(rv.reqs[0].body, "TTFTHigh"));
    assert_non_null(strstr(rv.reqs[0].body, "GPUHot"));
    pthread_mutex_unlock(&rv.mu);
    receiver_stop(&rv);
}

static bool dropped_1(const struct rules_notifier_target_stats *st)
{
    return st->dropped >= 1;
}

static void
a_down_receiver_is_retried_and_counted_while_a_slow_one_does_not_block_others(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    char slow[128], hook[128];
    snprintf(slow, sizeof slow, "http://127.0.0.1:%d/slow", rv.port);
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/hook", rv.port);
    struct rules_notify_target t[3] = {
        {.url = "http://127.0.0.1:1", .format = RULES_NOTIFY_AM_V2, .name = "down"},
        {.url = slow, .format = RULES_NOTIFY_AM_V2, .name = "slow", .timeout_ms = 60000},
        {.url = hook, .format = RULES_NOTIFY_WEBHOOK_V4, .name = "hook"},
    };
    struct rules_notifier *n = http_notifier(t, 3, 2);
    int64_t now = hs_now_ms();
    struct rules_notify_alert a = {&la, &ann, now, now + 240000, NULL};
    struct hs_err err = {0};
    assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    struct rules_notifier_target_stats st;
    /* the webhook is served although 'slow' holds its request and 'down' refuses */
    assert_true(target_stats_until(n, 2, sent_1, &st));
    assert_true(target_stats_until(n, 0, dropped_1, &st));
    assert_int_equal(st.errors, 3); /* first try + 2 retries */
    assert_int_equal(st.sent, 0);
    assert_int_equal(st.queued, 0);
    rules_notifier_get_target_stats(n, 1, &st);
    assert_int_equal(st.sent, 0);
    assert_int_equal(st.queued, 1); /* in flight, still queued */
    struct rules_notifier_stats all;
    rules_notifier_get_stats(n, &all);
    assert_int_equal(all.errors, 3);
    assert_int_equal(all.failed, 1);
    struct hs_buf m;
    hs_buf_init(&m, 0);
    assert_int_equal(rules_notifier_metrics(n, &m), HS_OK);
    assert_non_null(strstr(
        m.p, "holoscope_notifications_errors_total{receiver=\"down\",type=\"alertmanager\"} 3\n"));
    assert_non_null(strstr(
        m.p, "holoscope_notifications_dropped_total{receiver=\"down\",type=\"alertmanager\"} 1\n"));
    assert_non_null(strstr(
        m.p, "holoscope_notifications_queue_length{receiver=\"slow\",type=\"alertmanager\"} 1\n"));
    hs_buf_cleanup(&m);
    rules_notifier_free(n); /* cancels the held request */
    receiver_stop(&rv);
}

static void an_update_replaces_receivers_and_moves_queued_alerts_to_the_same_url(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    char slow[128], hook[128];
    snprintf(slow, sizeof slow, "http://127.0.0.1:%d/slow", rv.port);
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/hook", rv.port);
    struct rules_notify_target t = {
        .url = slow, .format = RULES_NOTIFY_AM_V2, .name = "a", .timeout_ms = 60000};
    struct rules_notifier *n = http_notifier(&t, 1, 3);
    int64_t now = hs_now_ms();
    struct rules_notify_alert a = {&la, &ann, now, now + 240000, NULL};
    struct hs_err err = {0};
    assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    assert_int_equal(wait_reqs(&rv, 1), 1); /* held by the receiver */

    struct rules_notify_target nt[2] = {
        {.url = slow, .format = RULES_NOTIFY_AM_V2, .name = "renamed"},
        {.url = hook, .format = RULES_NOTIFY_WEBHOOK_V4, .name = "new"},
    };
    struct rules_notifier_opts o = {0};
    o.targets = nt;
    o.ntargets = 2;
    assert_int_equal(rules_notifier_update(n, &o, &err), HS_OK);
    assert_int_equal(rules_notifier_target_count(n), 2);
    struct rules_notifier_target_stats st;
    assert_true(target_stats_until(n, 0, sent_1, &st)); /* the moved alert, sent again */
    assert_string_equal(st.name, "renamed");
    assert_int_equal(st.queued, 0);
    rules_notifier_get_target_stats(n, 1, &st);
    assert_int_equal(st.sent + st.queued, 0);
    pthread_mutex_lock(&rv.mu);
    assert_non_null(find_req(&rv, "/slow/api/v2/alerts", 1));
    assert_null(find_req(&rv, "/hook", 0));
    pthread_mutex_unlock(&rv.mu);

    /* a bad TLS file: refused, the receivers stay */
    struct rules_notify_target bad = {.url = "https://127.0.0.1:1", .format = RULES_NOTIFY_AM_V2};
    bad.tls.ca_file = "/nonexistent/ca.pem";
    o.targets = &bad;
    o.ntargets = 1;
    assert_int_equal(rules_notifier_update(n, &o, &err), HS_EINVAL);
    assert_int_equal(rules_notifier_target_count(n), 2);

    o.ntargets = 0;
    assert_int_equal(rules_notifier_update(n, &o, &err), HS_OK);
    assert_int_equal(rules_notifier_target_count(n), 0);
    assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    rules_notifier_free(n);
    receiver_stop(&rv);
}

/* ---- configuration ---------------------------------------------------------------- */

static int parse(const char *yaml, struct rules_alerting_config **out, struct hs_err *err)
{
    struct hs_ydoc *d = hs_ydoc_parse(yaml, strlen(yaml), "h.yml", err);
    assert_non_null(d);
    int rc = rules_alerting_config_parse(d, hs_ynode_get(d->root, "alerting"), out, err);
    hs_ydoc_free(d); /* the result must not point into the document */
    return rc;
}

static void alerting_section_parses_alertmanagers_static_configs_and_webhooks(void **state)
{
    (void)state;
    const char *y = "alerting:\n"
                    "  resend_delay: 30s\n"
                    "  external_url: http://holoscope.example:9190\n"
                    "  external_labels: {cluster: eu-1, env: prod}\n"
                    "  queue_capacity: 500\n"
                    "  alertmanagers:\n"
                    "    - url: http://127.0.0.1:9093\n"
                    "      timeout: 5s\n"
                    "      bearer_token: secret\n"
                    "    - static_configs: [{targets: ['am1:9093', 'am2:9093']}]\n"
                    "      scheme: https\n"
                    "      path_prefix: /alertmanager/\n"
                    "      basic_auth: {username: u, password: p}\n"
                    "      tls_config: {insecure_skip_verify: true}\n"
                    "  webhooks:\n"
                    "    - url: https://hooks.example/x\n"
                    "      name: slack\n"
                    "      send_resolved: false\n"
                    "      headers: {X-Token: abc}\n";
    struct rules_alerting_config *c = NULL;
    struct hs_err err = {0};
    assert_int_equal(parse(y, &c, &err), HS_OK);
    assert_int_equal(c->resend_delay_ms, 30000);
    assert_string_equal(c->external_url, "http://holoscope.example:9190");
    assert_int_equal(c->external_labels.n, 2);
    assert_string_equal(hs_labels_get(&c->external_labels, "env"), "prod");
    assert_int_equal(c->queue_capacity, 500);
    assert_int_equal(c->ntargets, 4);
    assert_string_equal(c->targets[0].url, "http://127.0.0.1:9093");
    assert_int_equal(c->targets[0].timeout_ms, 5000);
    assert_string_equal(c->targets[0].bearer_token, "secret");
    assert_string_equal(c->targets[1].url, "https://am1:9093/alertmanager");
    assert_string_equal(c->targets[2].url, "https://am2:9093/alertmanager");
    assert_string_equal(c->targets[2].basic_auth_user, "u");
    assert_null(c->targets[2].name);
    assert_true(c->targets[2].tls.insecure_skip_verify);
    assert_int_equal(c->targets[3].format, RULES_NOTIFY_WEBHOOK_V4);
    assert_true(c->targets[3].skip_resolved);
    assert_string_equal(c->targets[3].name, "slack");
    assert_int_equal(c->targets[3].nheaders, 1);
    assert_string_equal(c->targets[3].headers[0].value, "abc");
    struct rules_notifier_opts o;
    rules_alerting_notifier_opts(c, &o);
    assert_int_equal(o.ntargets, 4);
    assert_null(o.send);
    rules_alerting_config_free(c);
}

static void alerting_section_errors_name_the_line_and_column(void **state)
{
    (void)state;
    const struct {
        const char *yaml, *want;
    } cases[] = {
        {"alerting:\n  webhooks:\n    - url: http://x\n      bearer_tokn: y\n",
         "h.yml:4:7: webhooks: unknown key \"bearer_tokn\""},
        {"alerting:\n  alertmanagers:\n    - url: ftp://x\n", "url must start with http://"},
        {"alerting:\n  alertmanagers:\n    - timeout: 1s\n", "give either url or static_configs"},
        {"alerting:\n  webhooks:\n    - url: http://x\n      headers: {Authorization: x}\n",
         "is set by holoscope"},
        {"alerting:\n  webhooks:\n    - url: http://x\n      bearer_token: a\n"
         "      basic_auth: {username: u}\n",
         "mutually exclusive"},
        {"alerting:\n  resend_delay: soon\n", "h.yml:2:17"},
        {"alerting:\n  external_labels: {__x: y}\n", "invalid label name"},
        {"alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['a/b']}]\n",
         "is not host:port"},
        {"alerting:\n  webhooks: {url: http://x}\n", "webhooks: expected a list"},
        {"alerting:\n  webhooks:\n    - {url: http://x, name: a}\n    - {url: http://y, name: a}\n",
         "h.yml:4:7: alerting: receiver \"a\" is configured twice"},
        {"alerting:\n  webhooks:\n    - {url: http://x}\n    - {url: http://x}\n",
         "configured twice"},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++) {
        struct rules_alerting_config *c = NULL;
        struct hs_err err = {0};
        int rc = parse(cases[i].yaml, &c, &err);
        if (rc == HS_OK || c != NULL || !strstr(err.msg, cases[i].want))
            fail_msg("case %zu: rc %d, message \"%s\", want \"%s\"", i, rc, err.msg, cases[i].want);
        assert_null(strstr(err.msg, "secret"));
    }
}

static void a_named_static_config_names_each_alertmanager_by_its_address(void **state)
{
    (void)state;
    struct rules_alerting_config *c = NULL;
    struct hs_err err = {0};
    assert_int_equal(parse("alerting:\n  alertmanagers:\n    - name: ha\n"
                           "      static_configs: [{targets: ['a:9093', 'b:9093']}]\n",
                           &c, &err),
                     HS_OK);
    assert_int_equal(c->ntargets, 2);
    assert_string_equal(c->targets[0].name, "ha/a:9093");
    assert_string_equal(c->targets[1].name, "ha/b:9093");
    assert_string_equal(c->targets[1].url, "http://b:9093");
    rules_alerting_config_free(c);
}

static void no_alerting_section_means_no_receivers(void **state)
{
    (void)state;
    struct rules_alerting_config *c = NULL;
    struct hs_err err = {0};
    assert_int_equal(parse("listen: x\n", &c, &err), HS_OK);
    assert_non_null(c);
    assert_int_equal(c->ntargets, 0);
    assert_int_equal(c->resend_delay_ms, 60000);
    rules_alerting_config_free(c);
}

static void alerting_parse_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    const char *y = "alerting:\n  external_labels: {a: b}\n  alertmanagers:\n"
                    "    - static_configs: [{targets: ['x:1', 'y:2']}]\n"
                    "      headers: {H: v}\n  webhooks:\n    - url: http://h/\n";
    struct hs_err err = {0};
    struct hs_ydoc *d = hs_ydoc_parse(y, strlen(y), "h.yml", &err);
    assert_non_null(d);
    int rc = HS_ENOMEM;
    for (long i = 0; rc == HS_ENOMEM && i < 1000; i++) {
        struct rules_alerting_config *c = NULL;
        hs_alloc_fail_after(i);
        rc = rules_alerting_config_parse(d, hs_ynode_get(d->root, "alerting"), &c, &err);
        hs_alloc_fail_after(-1);
        if (rc == HS_ENOMEM)
            assert_null(c);
        else
            assert_int_equal(c->ntargets, 3);
        rules_alerting_config_free(c);
    }
    assert_int_equal(rc, HS_OK);
    hs_ydoc_free(d);
}

static void alerting_configs_compare_equal_only_when_nothing_changed(void **state)
{
    (void)state;
    const char *y = "alerting:\n  webhooks:\n    - url: http://h/\n      headers: {X-T: a}\n";
    const char *z = "alerting:\n  webhooks:\n    - url: http://h/\n      headers: {X-T: b}\n";
    struct rules_alerting_config *a = NULL, *b = NULL, *c = NULL, *empty = NULL;
    struct hs_err err = {0};
    assert_int_equal(parse(y, &a, &err), HS_OK);
    assert_int_equal(parse(y, &b, &err), HS_OK);
    assert_int_equal(parse(z, &c, &err), HS_OK);
    assert_int_equal(parse("alerting: {}\n", &empty, &err), HS_OK);
    assert_true(rules_alerting_config_equal(a, b));
    assert_false(rules_alerting_config_equal(a, c));
    assert_false(rules_alerting_config_equal(a, NULL));
    assert_true(rules_alerting_config_equal(empty, NULL));
    assert_true(rules_alerting_config_equal(NULL, NULL));
    rules_alerting_config_free(a);
    rules_alerting_config_free(b);
    rules_alerting_config_free(c);
    rules_alerting_config_free(empty);
}

static bool errors_2(const struct rules_notifier_target_stats *st)
{
    return st->errors >= 2;
}

static void an_alertmanager_that_is_down_gets_the_alert_once_it_comes_back(void **state)
{
    (void)state;
    /* a port that was just free: nothing listens on it while the notifier retries */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
    int port = ntohs(sa.sin_port);
    close(fd);
    struct receiver rv;
    char url[128], listen[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    struct rules_notify_target t[1] = {
        {.url = url, .format = RULES_NOTIFY_AM_V2, .name = "am"},
    };
    struct rules_notifier *n = http_notifier(t, 1, 1000); /* 10-20 ms apart: 10 s and more */
    int64_t now = hs_now_ms();
    struct rules_notify_alert a = {&la, &ann, now, now + 240000, NULL};
    struct hs_err err = {0};
    assert_int_equal(rules_notifier_enqueue(n, &a, 1, &err), HS_OK);
    struct rules_notifier_target_stats st;
    assert_true(target_stats_until(n, 0, errors_2, &st));
    assert_int_equal(st.sent, 0);
    /* the Alertmanager comes back on the same address */
    receiver_start_on(&rv, listen);
    assert_true(target_stats_until(n, 0, sent_1, &st));
    assert_int_equal(st.dropped, 0);
    assert_true(wait_reqs(&rv, 1) >= 1);
    const struct req_rec *q = find_req(&rv, "/api/v2/alerts", 0);
    assert_non_null(q);
    assert_non_null(strstr(q->body, "\"alertname\":\"GPUHot\""));
    rules_notifier_free(n);
    receiver_stop(&rv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(am_v2_alerts_are_posted_with_bearer_token_and_extra_headers),
        cmocka_unit_test(webhook_payloads_hold_one_alertname_each_with_basic_auth),
        cmocka_unit_test(send_resolved_false_skips_resolved_alerts),
        cmocka_unit_test(
            a_down_receiver_is_retried_and_counted_while_a_slow_one_does_not_block_others),
        cmocka_unit_test(an_alertmanager_that_is_down_gets_the_alert_once_it_comes_back),
        cmocka_unit_test(an_update_replaces_receivers_and_moves_queued_alerts_to_the_same_url),
        cmocka_unit_test(alerting_section_parses_alertmanagers_static_configs_and_webhooks),
        cmocka_unit_test(alerting_section_errors_name_the_line_and_column),
        cmocka_unit_test(a_named_static_config_names_each_alertmanager_by_its_address),
        cmocka_unit_test(no_alerting_section_means_no_receivers),
        cmocka_unit_test(alerting_parse_fails_cleanly_at_every_allocation),
        cmocka_unit_test(alerting_configs_compare_equal_only_when_nothing_changed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
