/*
 * test_loadgen_run.c - the load generator against an in-process
 * OpenAI-style server (the module's own HTTP server on its own thread)
 * that streams a fixed answer with known delays, fails on purpose, cuts
 * streams off or never answers, chosen by the request's model name.
 *
 * Timing assertions are one-sided: a measured TTFT can never be shorter
 * than the delay the server waits before its first token, and the server
 * counts requests exactly.  Every run is bounded by request counts and a
 * per-request timeout; alarm(100) guards the whole binary.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "http/http.h"
#include "sim/loadgen.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define FIRST_DELAY_MS 40 /* server wait before the first token */
#define TOKEN_GAP_MS   10 /* between tokens */
#define TOKENS         4

/* ---- the server --------------------------------------------------------------------- */

struct srv {
    struct event_base *base;
    struct http_server *http;
    struct event *keep;
    struct event *stop; /* activated from the test thread: breaks the loop */
    pthread_t th;
    int port;
    atomic_int requests;
    atomic_int max_in_flight;
    atomic_int in_flight;
    atomic_int bad_bodies;
};

struct stream {
    struct srv *s;
    struct http_request *r;
    struct event *ev;
    int step;
    bool is_trunc;
    bool is_closed;
};

static void stream_finish(struct stream *st, bool ok)
{
    atomic_fetch_sub(&st->s->in_flight, 1);
    if (ok)
        http_stream_end(st->r);
    else
        http_request_release(st->r);
    event_free(st->ev);
    free(st);
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
    struct stream *st = arg;
    if (st->is_closed) {
        stream_finish(st, false);
        return;
    }
    char ev[512];
    if (st->step == 0) {
        snprintf(ev, sizeof ev,
                 "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                 "\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    } else if (st->step <= TOKENS) {
        if (st->is_trunc && st->step == 3) {
            stream_finish(st, false);
            return;
        }
        snprintf(ev, sizeof ev,
                 "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d \"},"
                 "\"finish_reason\":null}]}\n\n",
                 st->step);
    } else {
        snprintf(ev, sizeof ev,
                 "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                 "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":%d}}"
                 "\n\ndata: [DONE]\n\n",
                 TOKENS);
    }
    HS_IGNORE_RESULT(http_stream_write(st->r, ev, strlen(ev)));
    if (st->step > TOKENS) {
        stream_finish(st, true);
        return;
    }
    st->step++;
    struct timeval tv = {0, (st->step == 1 ? FIRST_DELAY_MS : TOKEN_GAP_MS) * 1000};
    event_add(st->ev, &tv);
}

static void on_client_close(struct http_request *r, void *arg)
{
    struct stream *st = arg;
    st->is_closed = true;
    event_active(st->ev, EV_TIMEOUT, 0); /* on_step finishes the request */
}

static void handle(struct http_request *r, void *arg)
{
    struct srv *s = arg;
    atomic_fetch_add(&s->requests, 1);
    size_t len;
    const char *body = http_request_body(r, &len);
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *model = json_string_value(json_object_get(j, "model"));
    bool stream = json_is_true(json_object_get(j, "stream"));
    if (!model || !json_is_array(json_object_get(j, "messages")))
        atomic_fetch_add(&s->bad_bodies, 1);
    char m[64];
    snprintf(m, sizeof m, "%s", model ? model : "");
    json_decref(j);
    if (strcmp(m, "fail") == 0) {
        const char *e = "{\"error\":{\"message\":\"boom\",\"type\":\"InternalServerError\"}}";
        http_respond(r, 500, "application/json", e, strlen(e));
        return;
    }
    if (!stream) {
        const char *b = "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
                        "{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}],"
                        "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2}}";
        http_respond(r, 200, "application/json", b, strlen(b));
        return;
    }
    int now = atomic_fetch_add(&s->in_flight, 1) + 1;
    int prev = atomic_load(&s->max_in_flight);
    while (now > prev && !atomic_compare_exchange_weak(&s->max_in_flight, &prev, now)) {
    }
    struct stream *st = calloc(1, sizeof *st);
    st->s = s;
    st->r = r;
    st->is_trunc = strcmp(m, "trunc") == 0;
    st->ev = evtimer_new(s->base, on_step, st);
    http_stream_on_close(r, on_client_close, st);
    assert_int_equal(http_stream_start(r, 200, "text/event-stream"), HS_OK);
    if (strcmp(m, "hang") == 0)
        return; /* never answers; finished when the client leaves */
    struct timeval tv = {0, 1000};
    event_add(st->ev, &tv);
}

static void on_keep(evutil_socket_t fd, short what, void *arg)
{
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct srv *s = arg;
    event_base_loopbreak(s->base);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static void srv_start(struct srv *s)
{
    memset(s, 0, sizeof *s);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(evthread_use_pthreads(), 0);
    s->base = event_base_new();
    struct http_server_config c;
    http_server_config_defaults(&c);
    c.listen = "127.0.0.1:0";
    struct hs_err err;
    s->http = http_server_new(s->base, &c, &err);
    assert_non_null(s->http);
    assert_int_equal(http_server_route(s->http, "POST", "/v1/chat/completions", "chat", handle, s),
                     HS_OK);
    assert_int_equal(http_server_start(s->http, &err), HS_OK);
    s->port = http_server_port(s->http);
    s->keep = event_new(s->base, -1, EV_PERSIST, on_keep, NULL);
    struct timeval tv = {3600, 0};
    event_add(s->keep, &tv);
    s->stop = event_new(s->base, -1, 0, on_stop, s);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
    /* An active event survives until the loop runs (a loopbreak issued
     * before the loop started would be lost). */
    event_active(s->stop, EV_READ, 0);
    pthread_join(s->th, NULL);
    http_server_free(s->http);
    event_free(s->keep);
    event_free(s->stop);
    event_base_free(s->base);
}

/* ---- runs ------------------------------------------------------------------------------ */

static void config_for(struct loadgen_config *c, struct srv *s, char *url, size_t url_len,
                       const char **model)
{
    loadgen_config_defaults(c);
    snprintf(url, url_len, "http://127.0.0.1:%d", s->port);
    c->url = url;
    c->models = model;
    c->n_models = 1;
    c->input_len_mean = 20;
    c->output_len_mean = 8;
    c->timeout_ms = 20000;
}

static struct loadgen_report run(const struct loadgen_config *c)
{
    struct hs_err err;
    struct loadgen *g = loadgen_start(c, &err);
    if (!g)
        fail_msg("loadgen_start: %s", err.msg);
    loadgen_wait(g);
    assert_true(loadgen_is_done(g));
    struct loadgen_report r;
    assert_int_equal(loadgen_report(g, &r), HS_OK);
    loadgen_free(g);
    return r;
}

static void closed_loop_sends_the_count_and_measures_every_stream(void **state)
{
    struct srv s;
    srv_start(&s);
    const char *model = "ok";
    char url[64];
    struct loadgen_config c;
    config_for(&c, &s, url, sizeof url, &model);
    c.concurrency = 3;
    c.num_requests = 9;
    c.slo_ttft_s = 60;
    struct loadgen_report r = run(&c);
    assert_int_equal(r.sent, 9);
    assert_int_equal(r.finished, 9);
    assert_int_equal(r.outcomes[LOADGEN_OK], 9);
    assert_int_equal(r.errors, 0);
    assert_int_equal(atomic_load(&s.requests), 9);
    assert_int_equal(atomic_load(&s.bad_bodies), 0);
    assert_true(atomic_load(&s.max_in_flight) <= 3);
    assert_int_equal(r.ttft.count, 9);
    assert_int_equal(r.itl.count, 9 * (TOKENS - 1));
    assert_int_equal(r.tpot.count, 9);
    assert_int_equal(r.e2e.count, 9);
    /* One-sided: the server waited this long before the first token and
     * before the end (single gaps can look shorter client-side: jitter). */
    assert_true(r.ttft.min >= FIRST_DELAY_MS / 1e3);
    assert_true(r.e2e.min >= (FIRST_DELAY_MS + TOKENS * TOKEN_GAP_MS) / 1e3);
    assert_true(r.itl.min > 0 && r.itl.max < r.e2e.max);
    assert_true(r.ttft.p50 <= r.ttft.p90 && r.ttft.p90 <= r.ttft.p99);
    assert_int_equal(r.input_tokens, 9 * 11);
    assert_int_equal(r.output_tokens, 9 * TOKENS);
    assert_int_equal(r.output_tokens_estimated, 0);
    assert_int_equal(r.good, 9);
    assert_true(r.request_throughput > 0);
    srv_stop(&s);
}

static void open_loop_poisson_sends_the_count(void **state)
{
    struct srv s;
    srv_start(&s);
    const char *model = "ok";
    char url[64];
    struct loadgen_config c;
    config_for(&c, &s, url, sizeof url, &model);
    c.rate = 200;
    c.concurrency = 0;
    c.num_requests = 12;
    c.stream = false;
    struct loadgen_report r = run(&c);
    assert_int_equal(r.sent, 12);
    assert_int_equal(r.outcomes[LOADGEN_OK], 12);
    assert_int_equal(atomic_load(&s.requests), 12);
    assert_int_equal(r.ttft.count, 0); /* non-streamed: E2E only */
    assert_int_equal(r.e2e.count, 12);
    assert_int_equal(r.output_tokens, 24);
    srv_stop(&s);
}

static double zero_then_fast(void *arg, double t_s)
{
    return t_s < 0.2 ? 0 : 500;
}

static void a_rate_function_shapes_the_arrivals(void **state)
{
    struct srv s;
    srv_start(&s);
    const char *model = "ok";
    char url[64];
    struct loadgen_config c;
    config_for(&c, &s, url, sizeof url, &model);
    c.rate_fn = zero_then_fast;
    c.concurrency = 0;
    c.num_requests = 5;
    c.stream = false;
    struct loadgen_report r = run(&c);
    assert_int_equal(r.outcomes[LOADGEN_OK], 5);
    assert_true(r.elapsed_s >= 0.2); /* nothing could be sent while the rate was 0 */
    srv_stop(&s);
}

static void errors_are_counted_by_kind(void **state)
{
    struct srv s;
    srv_start(&s);
    const char *models[] = {"fail", "trunc"};
    char url[64];
    struct loadgen_config c;
    config_for(&c, &s, url, sizeof url, models);
    c.n_models = 2;
    c.concurrency = 2;
    c.num_requests = 10;
    struct loadgen_report r = run(&c);
    assert_int_equal(r.finished, 10);
    assert_int_equal(r.outcomes[LOADGEN_HTTP_5XX] + r.outcomes[LOADGEN_STREAM_TRUNCATED], 10);
    assert_true(r.outcomes[LOADGEN_HTTP_5XX] > 0);
    assert_true(r.outcomes[LOADGEN_STREAM_TRUNCATED] > 0);
    assert_int_equal(r.errors, 10);
    assert_int_equal(r.good, 0);
    assert_int_equal(r.tpot.count, 0);
    assert_int_equal(r.ttft.count, r.outcomes[LOADGEN_STREAM_TRUNCATED]);
    assert_true(r.last_error[0] != '\0');
    srv_stop(&s);
}

static void a_closed_port_gives_connect_errors(void **state)
{
    struct srv s;
    srv_start(&s);
    int port = s.port;
    srv_stop(&s);
    const char *model = "ok";
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", port);
    struct loadgen_config c;
    loadgen_config_defaults(&c);
    c.url = url;
    c.models = &model;
    c.n_models = 1;
    c.num_requests = 3;
    struct loadgen_report r = run(&c);
    assert_int_equal(r.outcomes[LOADGEN_CONNECT], 3);
    assert_int_equal(r.e2e.count, 3);
}

static void stop_cancels_requests_in_flight(void **state)
{
    struct srv s;
    srv_start(&s);
    const char *model = "hang";
    char url[64];
    struct loadgen_config c;
    config_for(&c, &s, url, sizeof url, &model);
    c.concurrency = 4;
    c.duration_ms = 60000;
    struct hs_err err;
    struct loadgen *g = loadgen_start(&c, &err);
    assert_non_null(g);
    while (atomic_load(&s.requests) < 4)
        usleep(1000);
    assert_false(loadgen_is_done(g));
    loadgen_stop(g);
    assert_true(loadgen_is_done(g));
    struct loadgen_report r;
    assert_int_equal(loadgen_report(g, &r), HS_OK);
    assert_int_equal(r.sent, 4);
    assert_int_equal(r.outcomes[LOADGEN_CANCELLED], 4);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.e2e.count, 0);
    loadgen_stop(g); /* idempotent */
    loadgen_free(g);
    /* The server notices the clients leaving and frees its streams. */
    while (atomic_load(&s.in_flight) > 0)
        usleep(1000);
    srv_stop(&s);
}

static void duration_ends_the_run(void **state)
{
    struct srv s;
    srv_start(&s);
    const char *model = "ok";
    char url[64];
    struct loadgen_config c;
    config_for(&c, &s, url, sizeof url, &model);
    c.concurrency = 2;
    c.duration_ms = 300;
    struct loadgen_report r = run(&c);
    assert_true(r.sent >= 2);
    assert_int_equal(r.finished, r.sent);
    assert_int_equal(r.outcomes[LOADGEN_OK], r.sent);
    assert_true(r.elapsed_s >= 0.3);
    srv_stop(&s);
}

static void bad_configs_are_refused_with_a_message(void **state)
{
    struct loadgen_config c;
    struct hs_err err;
    const char *model = "m";
    loadgen_config_defaults(&c);
    c.models = &model;
    c.n_models = 1;
    c.num_requests = 1;
    c.url = "ftp://x";
    assert_null(loadgen_start(&c, &err));
    assert_non_null(strstr(err.msg, "http://"));
    c.url = "http://127.0.0.1:1";
    c.api = "embeddings";
    assert_null(loadgen_start(&c, &err));
    assert_non_null(strstr(err.msg, "api"));
    c.api = "chat";
    c.num_requests = 0;
    assert_null(loadgen_start(&c, &err));
    assert_non_null(strstr(err.msg, "duration or a request count"));
    c.num_requests = 1;
    c.concurrency = 0;
    assert_null(loadgen_start(&c, &err));
    assert_non_null(strstr(err.msg, "rate"));
    c.concurrency = 1;
    double w[] = {0};
    c.weights = w;
    assert_null(loadgen_start(&c, &err));
    assert_non_null(strstr(err.msg, "weights"));
    c.weights = NULL;
    c.input_len_spread = c.input_len_mean;
    assert_null(loadgen_start(&c, &err));
    assert_non_null(strstr(err.msg, "spread"));
    c.input_len_spread = 0;
    c.prompts_file = "/nonexistent/prompts.jsonl";
    assert_null(loadgen_start(&c, &err));
}

static void start_survives_every_allocation_failure(void **state)
{
    const char *model = "m";
    struct loadgen_config c;
    loadgen_config_defaults(&c);
    c.url = "http://127.0.0.1:1";
    c.models = &model;
    c.n_models = 1;
    c.num_requests = 1;
    c.concurrency = 1;
    /* Fail each allocation of the setup in turn (the thread is not started
     * while injection is on: stop after the first success). */
    for (long n = 0; n < 200; n++) {
        struct hs_err err;
        hs_alloc_fail_after(n);
        struct loadgen *g = loadgen_start(&c, &err);
        hs_alloc_fail_after(-1);
        if (g) {
            loadgen_wait(g);
            loadgen_free(g);
            return;
        }
        assert_true(err.code < 0);
    }
    fail_msg("loadgen_start never succeeded");
}

int main(void)
{
    alarm(100);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(closed_loop_sends_the_count_and_measures_every_stream),
        cmocka_unit_test(open_loop_poisson_sends_the_count),
        cmocka_unit_test(a_rate_function_shapes_the_arrivals),
        cmocka_unit_test(errors_are_counted_by_kind),
        cmocka_unit_test(a_closed_port_gives_connect_errors),
        cmocka_unit_test(stop_cancels_requests_in_flight),
        cmocka_unit_test(duration_ends_the_run),
        cmocka_unit_test(bad_configs_are_refused_with_a_message),
        cmocka_unit_test(start_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
