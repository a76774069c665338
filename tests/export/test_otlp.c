/*
 * test_otlp.c - the OTLP/HTTP JSON span exporter against an in-process
 * receiver (holoscope's own http server on a thread of its own): the JSON
 * shape, extra headers, batching by size and by interval, retries on 503
 * with backoff, a non-retryable 400, partial success, a full queue dropping
 * new spans, invalid spans refused, attribute ceilings, the flush on free,
 * and allocation failures while encoding.
 */
#include "hs_test.h"

#include "export/export.h"
#include "http/http.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the receiver -------------------------------------------------------------- */

#define MAX_HELD 8

struct receiver {
    struct event_base *base;
    struct http_server *http;
    struct event *release; /* answers the held requests (activated from the test) */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int port;
    int requests;        /* requests received */
    int spans;           /* spans received in 2xx-answered requests */
    int fail_next;       /* answer this many requests with fail_status */
    int fail_status;     /* e.g. 503 or 400 */
    bool is_holding;     /* keep requests unanswered until released */
    const char *ok_body; /* body of 200 answers; NULL: {} */
    struct http_request *held[MAX_HELD];
    int nheld;
    char content_type[64];
    char api_key[64];
    char last_body[16384];
};

static int count_spans(const char *body)
{
    int n = 0;
    for (const char *p = body; (p = strstr(p, "\"spanId\"")) != NULL; p++)
        n++;
    return n;
}

static void on_traces(struct http_request *r, void *arg)
{
    struct receiver *rv = arg;
    size_t len = 0;
    const char *body = http_request_body(r, &len);
    const char *ct = http_request_header(r, "Content-Type");
    const char *key = http_request_header(r, "X-Api-Key");
    pthread_mutex_lock(&rv->mu);
    rv->requests++;
    snprintf(rv->last_body, sizeof rv->last_body, "%.*s", (int)len, body);
    snprintf(rv->content_type, sizeof rv->content_type, "%s", ct ? ct : "");
    snprintf(rv->api_key, sizeof rv->api_key, "%s", key ? key : "");
    int status = 200;
    if (rv->fail_next > 0) {
        rv->fail_next--;
        status = rv->fail_status;
    } else {
        rv->spans += count_spans(rv->last_body);
    }
    bool hold = rv->is_holding && rv->nheld < MAX_HELD;
    if (hold)
        rv->held[rv->nheld++] = r;
    pthread_cond_broadcast(&rv->cv);
    pthread_mutex_unlock(&rv->mu);
    const char *ok_body = rv->ok_body && status == 200 ? rv->ok_body : "{}";
    if (!hold)
        http_respond(r, status, "application/json", ok_body, strlen(ok_body));
}

static void on_release(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct receiver *rv = arg;
    pthread_mutex_lock(&rv->mu);
    int n = rv->nheld;
    struct http_request *held[MAX_HELD];
    memcpy(held, rv->held, sizeof held);
    rv->nheld = 0;
    rv->is_holding = false;
    pthread_mutex_unlock(&rv->mu);
    for (int i = 0; i < n; i++)
        http_respond(held[i], 200, "application/json", "{}", 2);
}

static void *receiver_main(void *arg)
{
    struct receiver *rv = arg;
    event_base_loop(rv->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void receiver_start(struct receiver *rv)
{
    memset(rv, 0, sizeof *rv);
    assert_int_equal(evthread_use_pthreads(), 0);
    pthread_mutex_init(&rv->mu, NULL);
    pthread_cond_init(&rv->cv, NULL);
    rv->base = event_base_new();
    assert_non_null(rv->base);
    struct http_server_config c;
    http_server_config_defaults(&c);
    c.listen = "127.0.0.1:0";
    struct hs_err err = {0};
    rv->http = http_server_new(rv->base, &c, &err);
    assert_non_null(rv->http);
    assert_int_equal(http_server_route(rv->http, "POST", "/v1/traces", "traces", on_traces, rv),
                     HS_OK);
    assert_int_equal(http_server_start(rv->http, &err), HS_OK);
    rv->port = http_server_port(rv->http);
    rv->release = event_new(rv->base, -1, 0, on_release, rv);
    assert_non_null(rv->release);
    assert_int_equal(pthread_create(&rv->th, NULL, receiver_main, rv), 0);
}

static void receiver_stop(struct receiver *rv)
{
    event_base_loopbreak(rv->base);
    pthread_join(rv->th, NULL);
    http_server_free(rv->http);
    event_free(rv->release);
    event_base_free(rv->base);
    pthread_cond_destroy(&rv->cv);
    pthread_mutex_destroy(&rv->mu);
}

/* Waits (at most 20 s, a safety net, not a timing check) until *field >= want. */
static int wait_for(struct receiver *rv, const int *field, int want)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&rv->mu);
    while (*field < want && pthread_cond_timedwait(&rv->cv, &rv->mu, &ts) == 0) {
    }
    int v = *field;
    pthread_mutex_unlock(&rv->mu);
    return v;
}

/* Polls the exporter's counters until pred holds (at most 20 s). */
static void wait_stats(struct export_otlp *x, bool (*pred)(const struct export_otlp_stats *),
                       struct export_otlp_stats *st)
{
    for (int i = 0; i < 4000; i++) {
        export_otlp_get_stats(x, st);
        if (pred(st))
            return;
        struct timespec d = {0, 5 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
}

static void config(struct export_otlp_config *c, const struct receiver *rv, char *url, size_t n)
{
    export_otlp_config_defaults(c);
    snprintf(url, n, "http://127.0.0.1:%d/v1/traces", rv->port);
    c->endpoint = url;
    c->service_name = "gw-test";
    c->flush_interval_ms = 60000; /* only size and shutdown flush, unless a test says so */
    c->backoff_initial_ms = 10;
    c->backoff_max_ms = 40;
}

static struct export_span span(uint8_t id)
{
    static const struct export_otlp_attr attrs[] = {
        {"gen_ai.operation.name", EXPORT_ATTR_STRING, {.s = "chat"}},
        {"gen_ai.usage.output_tokens", EXPORT_ATTR_INT, {.i = 42}},
    };
    struct export_span s;
    memset(&s, 0, sizeof s);
    memset(s.trace_id, 0xab, 16);
    s.span_id[7] = id;
    s.name = "chat llama";
    s.kind = EXPORT_SPAN_KIND_CLIENT;
    s.start_unix_ns = 1700000000000000000LL;
    s.end_unix_ns = 1700000000250000000LL;
    s.attrs = attrs;
    s.n_attrs = 2;
    return s;
}

/* ---- tests ----------------------------------------------------------------------- */

static void otlp_json_has_resource_scope_hex_ids_string_times_and_any_values(void **state)
{
    (void)state;
    struct export_otlp_attr attrs[] = {
        {"s", EXPORT_ATTR_STRING, {.s = "a\"b"}},
        {"i", EXPORT_ATTR_INT, {.i = -7}},
        {"d", EXPORT_ATTR_DOUBLE, {.d = 0.25}},
        {"b", EXPORT_ATTR_BOOL, {.b = true}},
        {"n", EXPORT_ATTR_DOUBLE, {.d = 1.0 / 0.0}},
        {"a", EXPORT_ATTR_STRINGS, {.s = "stop\x1flength"}},
        {"e", EXPORT_ATTR_STRINGS, {.s = ""}},
    };
    struct export_span s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 16; i++)
        s.trace_id[i] = (uint8_t)i;
    memset(s.span_id, 0xff, 8);
    s.parent_span_id[0] = 0x0a;
    s.has_parent = true;
    s.name = "chat m";
    s.kind = EXPORT_SPAN_KIND_SERVER;
    s.start_unix_ns = 1;
    s.end_unix_ns = 1700000000123456789LL;
    s.status_code = EXPORT_SPAN_STATUS_ERROR;
    s.status_message = "upstream 503";
    s.attrs = attrs;
    s.n_attrs = 7;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(export_otlp_encode_json("svc", &s, 1, &b), HS_OK);
    assert_string_equal(
        b.p, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
             "\"value\":{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
             "\"holoscope\"},\"spans\":[{\"traceId\":\"000102030405060708090a0b0c0d0e0f\","
             "\"spanId\":\"ffffffffffffffff\",\"parentSpanId\":\"0a00000000000000\","
             "\"name\":\"chat m\",\"kind\":2,\"startTimeUnixNano\":\"1\","
             "\"endTimeUnixNano\":\"1700000000123456789\",\"attributes\":["
             "{\"key\":\"s\",\"value\":{\"stringValue\":\"a\\\"b\"}},"
             "{\"key\":\"i\",\"value\":{\"intValue\":\"-7\"}},"
             "{\"key\":\"d\",\"value\":{\"doubleValue\":0.25}},"
             "{\"key\":\"b\",\"value\":{\"boolValue\":true}},"
             "{\"key\":\"n\",\"value\":{\"doubleValue\":\"Infinity\"}},"
             "{\"key\":\"a\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":"
             "\"stop\"},{\"stringValue\":\"length\"}]}}},"
             "{\"key\":\"e\",\"value\":{\"arrayValue\":{\"values\":[]}}}],"
             "\"status\":{\"code\":2,\"message\":\"upstream 503\"}}]}]}]}");
    hs_buf_cleanup(&b);
}

static bool exported_4(const struct export_otlp_stats *st)
{
    return st->spans_exported >= 4;
}

static void spans_leave_in_batches_of_batch_size_as_json(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    struct export_otlp_config c;
    char url[128];
    config(&c, &rv, url, sizeof url);
    c.batch_size = 2;
    struct export_otlp_header h = {"X-Api-Key", "k1"};
    c.headers = &h;
    c.n_headers = 1;
    struct hs_err err = {0};
    struct export_otlp *x = export_otlp_new(&c, &err);
    assert_non_null(x);
    for (uint8_t i = 1; i <= 4; i++) {
        struct export_span s = span(i);
        assert_true(export_otlp_submit(x, &s));
    }
    assert_int_equal(wait_for(&rv, &rv.spans, 4), 4);
    struct export_otlp_stats st;
    wait_stats(x, exported_4, &st);
    assert_int_equal(st.spans_exported, 4);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.queue_length, 0);
    pthread_mutex_lock(&rv.mu);
    assert_int_equal(rv.requests, 2);
    assert_string_equal(rv.content_type, "application/json");
    assert_string_equal(rv.api_key, "k1");
    assert_int_equal(count_spans(rv.last_body), 2);
    assert_non_null(strstr(rv.last_body, "\"stringValue\":\"gw-test\""));
    assert_non_null(strstr(rv.last_body, "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":"
                                         "{\"intValue\":\"42\"}}"));
    pthread_mutex_unlock(&rv.mu);
    struct hs_buf m;
    hs_buf_init(&m, 0);
    assert_int_equal(export_otlp_metrics(x, &m), HS_OK);
    assert_non_null(strstr(m.p, "holoscope_otlp_spans_exported_total 4\n"));
    assert_non_null(strstr(m.p, "# TYPE holoscope_otlp_queue_length gauge\n"));
    hs_buf_cleanup(&m);
    export_otlp_free(x);
    receiver_stop(&rv);
}

static void a_partial_batch_leaves_after_the_flush_interval(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    struct export_otlp_config c;
    char url[128];
    config(&c, &rv, url, sizeof url);
    c.flush_interval_ms = 20;
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    struct export_span s = span(1);
    assert_true(export_otlp_submit(x, &s));
    assert_int_equal(wait_for(&rv, &rv.spans, 1), 1);
    export_otlp_free(x);
    receiver_stop(&rv);
}

static bool exported_1(const struct export_otlp_stats *st)
{
    return st->spans_exported >= 1;
}

static void a_503_is_retried_with_backoff_until_it_succeeds(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    rv.fail_next = 2;
    rv.fail_status = 503;
    struct export_otlp_config c;
    char url[128];
    config(&c, &rv, url, sizeof url);
    c.batch_size = 1;
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    struct export_span s = span(1);
    assert_true(export_otlp_submit(x, &s));
    assert_int_equal(wait_for(&rv, &rv.spans, 1), 1);
    struct export_otlp_stats st;
    wait_stats(x, exported_1, &st);
    assert_int_equal(st.spans_exported, 1);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.request_errors, 2);
    assert_int_equal(st.spans_failed, 0);
    export_otlp_free(x);
    receiver_stop(&rv);
}

static bool failed_1(const struct export_otlp_stats *st)
{
    return st->spans_failed >= 1;
}

static void a_400_drops_the_batch_without_retrying(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    rv.fail_next = 1;
    rv.fail_status = 400;
    struct export_otlp_config c;
    char url[128];
    config(&c, &rv, url, sizeof url);
    c.batch_size = 1;
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    struct export_span s = span(1);
    assert_true(export_otlp_submit(x, &s));
    struct export_otlp_stats st;
    wait_stats(x, failed_1, &st);
    assert_int_equal(st.spans_failed, 1);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.retries, 0);
    export_otlp_free(x);
    receiver_stop(&rv);
}

static void retries_stop_after_max_retries_when_the_receiver_is_down(void **state)
{
    (void)state;
    struct export_otlp_config c;
    export_otlp_config_defaults(&c);
    c.endpoint = "http://127.0.0.1:1/v1/traces"; /* nothing listens on port 1 */
    c.batch_size = 1;
    c.max_retries = 2;
    c.backoff_initial_ms = 5;
    c.backoff_max_ms = 10;
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    struct export_span s = span(1);
    assert_true(export_otlp_submit(x, &s));
    struct export_otlp_stats st;
    wait_stats(x, failed_1, &st);
    assert_int_equal(st.spans_failed, 1);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.request_errors, 3);
    assert_int_equal(st.retries, 2);
    export_otlp_free(x);
}

static bool exported_4_queue_0(const struct export_otlp_stats *st)
{
    return st->spans_exported >= 4 && st->queue_length == 0;
}

static void a_full_queue_refuses_new_spans_and_counts_them(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    rv.is_holding = true;
    struct export_otlp_config c;
    char url[128];
    config(&c, &rv, url, sizeof url);
    c.queue_size = 2;
    c.batch_size = 2;
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    struct export_span s = span(1);
    assert_true(export_otlp_submit(x, &s));
    assert_true(export_otlp_submit(x, &s));
    assert_int_equal(wait_for(&rv, &rv.requests, 1), 1); /* first batch held by the receiver */
    assert_true(export_otlp_submit(x, &s));
    assert_true(export_otlp_submit(x, &s));
    assert_false(export_otlp_submit(x, &s)); /* queue full */
    struct export_otlp_stats st;
    export_otlp_get_stats(x, &st);
    assert_int_equal(st.spans_dropped, 1);
    assert_int_equal(st.spans_submitted, 4);
    assert_int_equal(st.queue_length, 4);
    event_active(rv.release, EV_READ, 0);
    wait_stats(x, exported_4_queue_0, &st);
    assert_int_equal(st.spans_exported, 4);
    assert_int_equal(st.queue_length, 0);
    export_otlp_free(x);
    receiver_stop(&rv);
}

static bool settled_3(const struct export_otlp_stats *st)
{
    return st->spans_exported + st->spans_failed >= 3;
}

static void spans_a_receiver_rejects_in_a_partial_success_count_as_failed(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    rv.ok_body = "{\"partialSuccess\":{\"rejectedSpans\":\"2\",\"errorMessage\":\"too old\"}}";
    struct export_otlp_config c;
    char url[128];
    config(&c, &rv, url, sizeof url);
    c.batch_size = 3;
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    for (uint8_t i = 1; i <= 3; i++) {
        struct export_span s = span(i);
        assert_true(export_otlp_submit(x, &s));
    }
    struct export_otlp_stats st;
    wait_stats(x, settled_3, &st);
    assert_int_equal(st.spans_exported, 1);
    assert_int_equal(st.spans_failed, 2);
    export_otlp_free(x);
    receiver_stop(&rv);
}

static void invalid_spans_are_refused(void **state)
{
    (void)state;
    struct export_otlp_config c;
    export_otlp_config_defaults(&c);
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    struct export_span s = span(1);
    memset(s.trace_id, 0, 16);
    assert_false(export_otlp_submit(x, &s));
    s = span(0); /* all-zero span id */
    assert_false(export_otlp_submit(x, &s));
    s = span(1);
    s.name = NULL;
    assert_false(export_otlp_submit(x, &s));
    assert_false(export_otlp_submit(x, NULL));
    struct export_otlp_stats st;
    export_otlp_get_stats(x, &st);
    assert_int_equal(st.spans_dropped, 4);
    assert_int_equal(st.spans_submitted, 0);
    export_otlp_free(x);
}

static void attributes_past_the_ceiling_are_counted_and_long_values_cut_on_utf8(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    struct export_otlp_config c;
    char url[128];
    config(&c, &rv, url, sizeof url);
    c.max_attrs = 1;
    c.max_value_bytes = 5;
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    struct export_otlp_attr attrs[] = {
        {"k", EXPORT_ATTR_STRING, {.s = "abcd\xc3\xa9xyz"}}, /* é straddles byte 5 */
        {"dropped", EXPORT_ATTR_INT, {.i = 1}},
    };
    struct export_span s = span(1);
    s.attrs = attrs;
    s.n_attrs = 2;
    assert_true(export_otlp_submit(x, &s));
    export_otlp_free(x); /* flushes */
    pthread_mutex_lock(&rv.mu);
    assert_int_equal(rv.spans, 1);
    assert_non_null(strstr(rv.last_body, "{\"key\":\"k\",\"value\":{\"stringValue\":\"abcd\"}}],"
                                         "\"droppedAttributesCount\":1"));
    assert_null(strstr(rv.last_body, "\"dropped\""));
    pthread_mutex_unlock(&rv.mu);
    receiver_stop(&rv);
}

static void free_sends_what_is_queued_before_returning(void **state)
{
    (void)state;
    struct receiver rv;
    receiver_start(&rv);
    struct export_otlp_config c;
    char url[128];
    config(&c, &rv, url, sizeof url);
    c.batch_size = 100;
    struct export_otlp *x = export_otlp_new(&c, NULL);
    assert_non_null(x);
    for (uint8_t i = 1; i <= 3; i++) {
        struct export_span s = span(i);
        assert_true(export_otlp_submit(x, &s));
    }
    export_otlp_free(x);
    pthread_mutex_lock(&rv.mu);
    assert_int_equal(rv.spans, 3);
    assert_int_equal(rv.requests, 1);
    pthread_mutex_unlock(&rv.mu);
    receiver_stop(&rv);
}

static void a_bad_endpoint_or_zero_size_is_refused_at_creation(void **state)
{
    (void)state;
    struct export_otlp_config c;
    export_otlp_config_defaults(&c);
    c.endpoint = "ftp://collector/v1/traces";
    struct hs_err err = {0};
    assert_null(export_otlp_new(&c, &err));
    assert_int_equal(err.code, HS_EINVAL);
    assert_non_null(strstr(err.msg, "ftp://collector/v1/traces"));
    export_otlp_config_defaults(&c);
    c.endpoint = "http://";
    assert_null(export_otlp_new(&c, &err));
    export_otlp_config_defaults(&c);
    c.queue_size = 0;
    assert_null(export_otlp_new(&c, &err));
    assert_int_equal(err.code, HS_EINVAL);
    struct export_otlp_header h = {"X-Key", "a\r\nInjected: 1"};
    export_otlp_config_defaults(&c);
    c.headers = &h;
    c.n_headers = 1;
    assert_null(export_otlp_new(&c, &err));
    assert_non_null(strstr(err.msg, "header 0"));
}

static void encoding_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    struct export_span s = span(1);
    int rc = HS_ENOMEM;
    for (long i = 0; rc == HS_ENOMEM && i < 1000; i++) {
        struct hs_buf b;
        hs_buf_init(&b, 0);
        hs_alloc_fail_after(i);
        rc = export_otlp_encode_json("svc", &s, 1, &b);
        hs_alloc_fail_after(-1);
        if (rc == HS_ENOMEM)
            assert_true(b.len == 0);
        else
            assert_non_null(strstr(b.p, "\"spanId\":\"0000000000000001\""));
        hs_buf_cleanup(&b);
    }
    assert_int_equal(rc, HS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(otlp_json_has_resource_scope_hex_ids_string_times_and_any_values),
        cmocka_unit_test(spans_leave_in_batches_of_batch_size_as_json),
        cmocka_unit_test(a_partial_batch_leaves_after_the_flush_interval),
        cmocka_unit_test(a_503_is_retried_with_backoff_until_it_succeeds),
        cmocka_unit_test(a_400_drops_the_batch_without_retrying),
        cmocka_unit_test(retries_stop_after_max_retries_when_the_receiver_is_down),
        cmocka_unit_test(a_full_queue_refuses_new_spans_and_counts_them),
        cmocka_unit_test(spans_a_receiver_rejects_in_a_partial_success_count_as_failed),
        cmocka_unit_test(invalid_spans_are_refused),
        cmocka_unit_test(attributes_past_the_ceiling_are_counted_and_long_values_cut_on_utf8),
        cmocka_unit_test(free_sends_what_is_queued_before_returning),
        cmocka_unit_test(a_bad_endpoint_or_zero_size_is_refused_at_creation),
        cmocka_unit_test(encoding_fails_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
