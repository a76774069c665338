/*
 * loadgen.c - the load generator's thread: one event_base, one HTTP
 * client, and a scheduler that issues requests open loop (Poisson
 * arrivals, optionally time-varying through rate_fn) or closed loop (a
 * fixed number in flight).
 *
 * Open loop: arrival times are drawn ahead as t_next += Exp(rate(t)), so a
 * slow loop turn never lowers the offered rate; an arrival that finds the
 * concurrency cap full waits in a backlog (a counter, bounded by
 * LOADGEN_MAX_BACKLOG, beyond which arrivals are dropped and counted) and
 * is sent when a request finishes.  With rate_fn the rate is read at each
 * arrival (piecewise constant between arrivals); a rate <= 0 is looked at
 * again 100 ms later.
 *
 * The run ends when issuing is over (request count reached, duration
 * passed or loadgen_stop) and nothing is in flight.  Requests still in
 * flight when the duration passes are waited for (they carry their own
 * timeout); loadgen_stop cancels them.
 *
 * Locking: 'mu' guards the counters and sample sets that loadgen_report
 * reads from other threads; everything else belongs to the loop thread.
 *
 *   state:  RUNNING --(limits reached / stop)--> DRAINING --(in flight 0)--> DONE
 */
#include "sim/loadgen.h"

#include "http/http.h"
#include "sim/loadgen_internal.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct lg_call {
    struct loadgen *g;
    struct http_client_call *call; /* NULL once finished */
    struct lg_meas *meas;
    int64_t t_send_ns;
    int status;
    struct lg_call *prev, *next; /* in g->calls */
};

struct loadgen {
    /* copied configuration (strings in 'arena') */
    struct loadgen_config cfg;
    struct hs_arena arena;
    const char *url_full;
    bool is_chat;
    double *cum_weights; /* cumulative model weights, n_models entries */
    struct http_client_header *headers;
    size_t nheaders;
    struct lg_prompts prompts;

    /* loop thread only */
    struct event_base *base;
    struct http_client *client;
    struct event *arrival_ev;
    struct event *duration_ev;
    struct event *wake_ev;
    struct lg_rng rng;
    struct lg_call *calls; /* in flight */
    int in_flight;
    double t_next_s; /* next open-loop arrival, seconds after t0 */
    bool is_look;    /* the arrival timer only looks at the rate again (rate was 0) */
    bool is_issuing; /* still allowed to send */
    int64_t t0_ns;
    struct hs_buf body;

    /* shared */
    pthread_t thread;
    bool is_joined;
    bool has_thread;
    atomic_bool stop_requested; /* written by loadgen_stop */
    atomic_bool is_done;        /* written by the loop thread */
    pthread_mutex_t mu;         /* guards what follows */
    int64_t t_end_ns;           /* when the run finished; 0 while running */
    uint64_t sent, finished, backlog, dropped, good;
    uint64_t outcomes[LOADGEN_OUTCOME_COUNT];
    uint64_t input_tokens, output_tokens, output_tokens_estimated;
    struct lg_samples ttft, itl, tpot, e2e;
    char last_error[256];
};

/* ---- configuration --------------------------------------------------------------- */

void loadgen_config_defaults(struct loadgen_config *c)
{
    memset(c, 0, sizeof *c);
    c->api = "chat";
    c->stream = true;
    c->concurrency = 1;
    c->input_len_mean = 128;
    c->output_len_mean = 128;
    c->seed = 1;
    c->timeout_ms = 600000;
    c->connect_timeout_ms = 10000;
    c->max_samples = 1000000;
}

static int check_lengths(const struct loadgen_config *c, struct hs_err *err)
{
    if (c->input_len_mean < 1 || c->input_len_mean > LOADGEN_MAX_INPUT_LEN)
        return hs_err_set(err, HS_EINVAL, "input length must be in 1..%d, not %d",
                          LOADGEN_MAX_INPUT_LEN, c->input_len_mean);
    if (c->input_len_spread < 0 || c->input_len_spread >= c->input_len_mean)
        return hs_err_set(err, HS_EINVAL, "input length spread must be in 0..%d, not %d",
                          c->input_len_mean - 1, c->input_len_spread);
    if (c->output_len_mean < 1 || c->output_len_mean > 10000000)
        return hs_err_set(err, HS_EINVAL, "output length must be in 1..10000000, not %d",
                          c->output_len_mean);
    if (c->output_len_spread < 0 || c->output_len_spread >= c->output_len_mean)
        return hs_err_set(err, HS_EINVAL, "output length spread must be in 0..%d, not %d",
                          c->output_len_mean - 1, c->output_len_spread);
    if (c->max_tokens < 0)
        return hs_err_set(err, HS_EINVAL, "max_tokens must be >= 0, not %d", c->max_tokens);
    return HS_OK;
}

static int check_models(const struct loadgen_config *c, struct hs_err *err)
{
    if (c->n_models < 1 || !c->models)
        return hs_err_set(err, HS_EINVAL, "no model given");
    if (c->n_models > LOADGEN_MAX_MODELS)
        return hs_err_set(err, HS_EINVAL, "too many models (%zu, at most %d)", c->n_models,
                          LOADGEN_MAX_MODELS);
    double sum = 0;
    for (size_t i = 0; i < c->n_models; i++) {
        if (!c->models[i] || !c->models[i][0])
            return hs_err_set(err, HS_EINVAL, "model %zu has an empty name", i + 1);
        double w = c->weights ? c->weights[i] : 1;
        if (!(w >= 0) || !isfinite(w))
            return hs_err_set(err, HS_EINVAL, "weight of model \"%s\" must be >= 0", c->models[i]);
        sum += w;
    }
    if (!(sum > 0))
        return hs_err_set(err, HS_EINVAL, "model weights sum to 0");
    return HS_OK;
}

static int check_config(const struct loadgen_config *c, struct hs_err *err)
{
    if (!c->url || !(hs_has_prefix(c->url, "http://") || hs_has_prefix(c->url, "https://")))
        return hs_err_set(err, HS_EINVAL, "URL must start with http:// or https://: \"%s\"",
                          c->url ? c->url : "");
    if (!c->api || !(hs_streq(c->api, "chat") || hs_streq(c->api, "completions")))
        return hs_err_set(err, HS_EINVAL, "api must be \"chat\" or \"completions\", not \"%s\"",
                          c->api ? c->api : "");
    int rc = check_models(c, err);
    if (rc != HS_OK)
        return rc;
    if (c->rate < 0 || !isfinite(c->rate))
        return hs_err_set(err, HS_EINVAL, "rate must be a finite number >= 0");
    if (c->concurrency < 0 || c->concurrency > LOADGEN_MAX_CONCURRENCY)
        return hs_err_set(err, HS_EINVAL, "concurrency must be in 0..%d, not %d",
                          LOADGEN_MAX_CONCURRENCY, c->concurrency);
    if (c->rate == 0 && !c->rate_fn && c->concurrency < 1)
        return hs_err_set(err, HS_EINVAL, "give a rate > 0 or a concurrency >= 1");
    if (c->duration_ms < 0 || c->num_requests < 0)
        return hs_err_set(err, HS_EINVAL, "duration and request count must be >= 0");
    if (c->duration_ms == 0 && c->num_requests == 0)
        return hs_err_set(err, HS_EINVAL, "give a duration or a request count");
    if (c->n_headers > LOADGEN_MAX_HEADERS)
        return hs_err_set(err, HS_EINVAL, "too many headers (%zu, at most %d)", c->n_headers,
                          LOADGEN_MAX_HEADERS);
    if (c->slo_ttft_s < 0 || c->slo_tpot_s < 0 || c->slo_e2e_s < 0)
        return hs_err_set(err, HS_EINVAL, "SLO thresholds must be >= 0");
    if (c->timeout_ms < 0 || c->connect_timeout_ms < 0)
        return hs_err_set(err, HS_EINVAL, "timeouts must be >= 0");
    return check_lengths(c, err);
}

/* The endpoint: the base URL plus the API path unless the URL names one. */
static const char *full_url(struct hs_arena *a, const char *url, bool is_chat)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    char *base = hs_arena_strndup(a, url, n);
    if (!base)
        return NULL;
    if (hs_has_suffix(base, "/chat/completions") || hs_has_suffix(base, "/completions"))
        return base;
    const char *path = is_chat ? "/chat/completions" : "/completions";
    if (hs_has_suffix(base, "/v1"))
        return hs_arena_printf(a, "%s%s", base, path);
    return hs_arena_printf(a, "%s/v1%s", base, path);
}

static const char *arena_str(struct hs_arena *a, const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = hs_arena_strndup(a, s, strlen(s));
    if (!d)
        *ok = false;
    return d;
}

static int copy_headers(struct loadgen *g, const struct loadgen_config *c, bool *ok)
{
    size_t n = c->n_headers + 2;
    g->headers = hs_arena_calloc(&g->arena, n * sizeof *g->headers);
    if (!g->headers)
        return HS_ENOMEM;
    g->headers[0] = (struct http_client_header){"Content-Type", "application/json"};
    g->headers[1] = (struct http_client_header){
        "Accept", c->stream ? "text/event-stream, application/json" : "application/json"};
    for (size_t i = 0; i < c->n_headers; i++) {
        g->headers[i + 2].name = arena_str(&g->arena, c->headers[i].name, ok);
        g->headers[i + 2].value = arena_str(&g->arena, c->headers[i].value, ok);
        if (!g->headers[i + 2].name || !g->headers[i + 2].value)
            *ok = false;
    }
    g->nheaders = n;
    return *ok ? HS_OK : HS_ENOMEM;
}

static int copy_config(struct loadgen *g, const struct loadgen_config *c, struct hs_err *err)
{
    bool ok = true;
    g->cfg = *c;
    g->is_chat = hs_streq(c->api, "chat");
    g->cfg.url = arena_str(&g->arena, c->url, &ok);
    g->cfg.api = g->is_chat ? "chat" : "completions";
    g->cfg.prompts_file = NULL;
    g->cfg.headers = NULL;
    const char **models = hs_arena_calloc(&g->arena, c->n_models * sizeof *models);
    g->cum_weights = hs_arena_calloc(&g->arena, c->n_models * sizeof *g->cum_weights);
    if (!models || !g->cum_weights)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    double sum = 0;
    for (size_t i = 0; i < c->n_models; i++) {
        models[i] = arena_str(&g->arena, c->models[i], &ok);
        sum += c->weights ? c->weights[i] : 1;
        g->cum_weights[i] = sum;
    }
    g->cfg.models = models;
    g->cfg.weights = NULL;
    if (ok)
        g->url_full = full_url(&g->arena, c->url, g->is_chat);
    if (!ok || !g->url_full || copy_headers(g, c, &ok) != HS_OK)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    return HS_OK;
}

/* ---- recording ----------------------------------------------------------------------- */

static double now_s(const struct loadgen *g)
{
    return (double)(hs_mono_ns() - g->t0_ns) / 1e9;
}

static bool meets_slo(const struct loadgen_config *c, const struct lg_meas_result *r, double e2e_s)
{
    if (r->outcome != LOADGEN_OK)
        return false;
    /* A non-streamed answer shows its first token at the end. */
    double ttft = r->ttft_s >= 0 ? r->ttft_s : e2e_s;
    if (c->slo_ttft_s > 0 && ttft > c->slo_ttft_s)
        return false;
    if (c->slo_tpot_s > 0 && r->tpot_s >= 0 && r->tpot_s > c->slo_tpot_s)
        return false;
    if (c->slo_e2e_s > 0 && e2e_s > c->slo_e2e_s)
        return false;
    return true;
}

static void on_gap(void *arg, double gap_s)
{
    struct loadgen *g = arg;
    lg__samples_add(&g->itl, gap_s); /* called with g->mu held */
}

/* "OUTCOME: MESSAGE" into g->last_error, cut to fit (g->mu held). */
static void set_last_error(struct loadgen *g, const char *outcome, const char *msg)
{
    size_t cap = sizeof g->last_error, n = strlen(outcome), m = strlen(msg);
    if (n > cap - 3)
        n = cap - 3;
    memcpy(g->last_error, outcome, n);
    memcpy(g->last_error + n, ": ", 2);
    n += 2;
    if (m > cap - 1 - n)
        m = cap - 1 - n;
    memcpy(g->last_error + n, msg, m);
    g->last_error[n + m] = '\0';
}

/* Records one finished request (loop thread). */
static void record(struct loadgen *g, struct lg_meas *m, int cause, const char *msg,
                   int64_t t_send_ns)
{
    int64_t t = hs_mono_ns();
    struct lg_meas_result r;
    pthread_mutex_lock(&g->mu);
    lg__meas_end(m, cause, msg, t, &r, on_gap, g);
    double e2e = (double)(t - t_send_ns) / 1e9;
    g->finished++;
    g->outcomes[r.outcome]++;
    if (r.outcome != LOADGEN_CANCELLED) {
        lg__samples_add(&g->e2e, e2e);
        if (r.ttft_s >= 0)
            lg__samples_add(&g->ttft, r.ttft_s);
        if (r.tpot_s >= 0)
            lg__samples_add(&g->tpot, r.tpot_s);
        if (r.input_tokens > 0)
            g->input_tokens += (uint64_t)r.input_tokens;
        if (r.output_tokens > 0) {
            g->output_tokens += (uint64_t)r.output_tokens;
            if (r.is_output_estimated)
                g->output_tokens_estimated += (uint64_t)r.output_tokens;
        }
        if (meets_slo(&g->cfg, &r, e2e))
            g->good++;
        if (r.outcome != LOADGEN_OK && r.error[0])
            set_last_error(g, loadgen_outcome_name(r.outcome), r.error);
    }
    pthread_mutex_unlock(&g->mu);
}

/* ---- requests ------------------------------------------------------------------------- */

static void issue_more(struct loadgen *g);
static void maybe_finish(struct loadgen *g);

static void call_unlink(struct loadgen *g, struct lg_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->in_flight--;
}

static void call_free(struct lg_call *c)
{
    lg__meas_free(c->meas);
    hs_free(c);
}

static void on_headers(void *arg, int status, const struct http_client_header *h, size_t n)
{
    struct lg_call *c = arg;
    const char *ctype = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, "content-type") == 0)
            ctype = h[i].value;
    c->status = status;
    lg__meas_headers(c->meas, status, ctype, hs_mono_ns());
}

static void on_chunk(void *arg, const char *data, size_t len)
{
    struct lg_call *c = arg;
    lg__meas_body(c->meas, data, len, hs_mono_ns());
}

static int end_cause(const struct http_client_result *res)
{
    if (res->code == HS_OK)
        return LG_END_DONE;
    switch (res->kind) {
    case HTTP_CLIENT_FAIL_CONNECT:
    case HTTP_CLIENT_FAIL_DNS:
    case HTTP_CLIENT_FAIL_TLS:
        return LG_END_CONNECT;
    case HTTP_CLIENT_FAIL_TIMEOUT_CONNECT:
    case HTTP_CLIENT_FAIL_TIMEOUT_FIRST_BYTE:
    case HTTP_CLIENT_FAIL_TIMEOUT_READ:
    case HTTP_CLIENT_FAIL_TIMEOUT_TOTAL:
        return LG_END_TIMEOUT;
    case HTTP_CLIENT_FAIL_RESET:
        return LG_END_RESET;
    default:
        return LG_END_MALFORMED;
    }
}

static void on_done(void *arg, const struct http_client_result *res)
{
    struct lg_call *c = arg;
    struct loadgen *g = c->g;
    if (res->body && res->body_len)
        lg__meas_body(c->meas, res->body, res->body_len, hs_mono_ns());
    record(g, c->meas, end_cause(res), res->msg, c->t_send_ns);
    call_unlink(g, c);
    call_free(c);
    issue_more(g);
    maybe_finish(g);
}

static const char *pick_model(struct loadgen *g)
{
    size_t n = g->cfg.n_models;
    double x = lg__rng_unit(&g->rng) * g->cum_weights[n - 1];
    for (size_t i = 0; i < n; i++)
        if (x < g->cum_weights[i])
            return g->cfg.models[i];
    return g->cfg.models[n - 1];
}

static int spread(struct loadgen *g, int mean, int sp)
{
    return (int)lg__rng_range(&g->rng, (int64_t)mean - sp, (int64_t)mean + sp);
}

static int build_body(struct loadgen *g)
{
    const struct loadgen_config *c = &g->cfg;
    struct lg_body_spec s = {.is_chat = g->is_chat,
                             .stream = c->stream,
                             .ignore_eos = c->ignore_eos,
                             .model = pick_model(g)};
    if (g->prompts.n)
        s.prompt = &g->prompts.v[lg__rng_next(&g->rng) % g->prompts.n];
    s.input_words = spread(g, c->input_len_mean, c->input_len_spread);
    s.word_seed = lg__rng_next(&g->rng);
    s.max_tokens = spread(g, c->output_len_mean, c->output_len_spread);
    if (s.prompt && s.prompt->max_tokens > 0)
        s.max_tokens = s.prompt->max_tokens;
    if (c->max_tokens > 0)
        s.max_tokens = c->max_tokens;
    hs_buf_reset(&g->body);
    return lg__body_build(&s, &g->body);
}

/* Sends one request; false when it could not be started (counted as an error). */
static bool send_one(struct loadgen *g)
{
    struct lg_call *c = hs_calloc(1, sizeof *c);
    struct hs_err err;
    hs_err_clear(&err);
    int rc = HS_ENOMEM;
    if (c && build_body(g) == HS_OK) {
        c->g = g;
        c->t_send_ns = hs_mono_ns();
        c->meas = lg__meas_new(g->is_chat, g->cfg.stream, c->t_send_ns);
        struct http_client_req req = {.method = "POST",
                                      .url = g->url_full,
                                      .headers = g->headers,
                                      .nheaders = g->nheaders,
                                      .body = g->body.p,
                                      .body_len = g->body.len,
                                      .connect_timeout_ms = g->cfg.connect_timeout_ms,
                                      .total_timeout_ms = g->cfg.timeout_ms,
                                      .is_streaming = true};
        struct http_client_callbacks cb = {on_headers, on_chunk, on_done};
        rc = c->meas ? http_client_request(g->client, &req, &cb, c, &c->call, &err) : HS_ENOMEM;
    }
    pthread_mutex_lock(&g->mu);
    g->sent++;
    pthread_mutex_unlock(&g->mu);
    if (rc == HS_OK) {
        c->next = g->calls;
        if (g->calls)
            g->calls->prev = c;
        g->calls = c;
        g->in_flight++;
        return true;
    }
    struct lg_meas *m = c && c->meas ? c->meas : lg__meas_new(g->is_chat, g->cfg.stream, 0);
    if (m)
        record(g, m, LG_END_MALFORMED, err.msg[0] ? err.msg : "out of memory", hs_mono_ns());
    if (c && c->meas)
        c->meas = NULL;
    lg__meas_free(m);
    hs_free(c);
    return false;
}

/* ---- scheduling ------------------------------------------------------------------------ */

static bool count_reached(struct loadgen *g)
{
    if (g->cfg.num_requests <= 0)
        return false;
    pthread_mutex_lock(&g->mu);
    bool r = (int64_t)(g->sent + g->backlog) >= g->cfg.num_requests;
    pthread_mutex_unlock(&g->mu);
    return r;
}

static void stop_issuing(struct loadgen *g)
{
    g->is_issuing = false;
    if (g->arrival_ev)
        event_del(g->arrival_ev);
    if (g->duration_ev)
        event_del(g->duration_ev);
    pthread_mutex_lock(&g->mu);
    g->backlog = 0;
    pthread_mutex_unlock(&g->mu);
}

static bool is_open_loop(const struct loadgen *g)
{
    return g->cfg.rate > 0 || g->cfg.rate_fn;
}

/* Sends what the mode allows now: closed loop fills the concurrency, open
 * loop drains the backlog into free slots.  A failed send (counted) is not
 * retried here, so a dead endpoint cannot make this spin. */
static void issue_more(struct loadgen *g)
{
    int cap = g->cfg.concurrency > 0 ? g->cfg.concurrency : LOADGEN_MAX_CONCURRENCY;
    int budget = g->cfg.concurrency > 0 ? g->cfg.concurrency : 1;
    while (g->is_issuing && budget-- > 0) {
        if (g->in_flight >= cap)
            break;
        if (is_open_loop(g)) {
            pthread_mutex_lock(&g->mu);
            bool has = g->backlog > 0;
            if (has)
                g->backlog--;
            pthread_mutex_unlock(&g->mu);
            if (!has)
                break;
        } else if (count_reached(g)) {
            break;
        }
        if (!send_one(g)) {
            /* Synchronous failures (a URL or header the client refuses, out
             * of memory) would fail every request alike: end the run. */
            stop_issuing(g);
            break;
        }
    }
}

static void maybe_finish(struct loadgen *g)
{
    if (g->is_issuing && count_reached(g)) {
        pthread_mutex_lock(&g->mu);
        bool is_backlog_empty = g->backlog == 0;
        pthread_mutex_unlock(&g->mu);
        if (is_backlog_empty)
            stop_issuing(g);
    }
    if (g->is_issuing || g->in_flight > 0)
        return;
    pthread_mutex_lock(&g->mu);
    if (!g->t_end_ns)
        g->t_end_ns = hs_mono_ns();
    pthread_mutex_unlock(&g->mu);
    atomic_store(&g->is_done, true);
    event_base_loopbreak(g->base);
}

static double current_rate(struct loadgen *g, double t)
{
    double r = g->cfg.rate_fn ? g->cfg.rate_fn(g->cfg.rate_arg, t) : g->cfg.rate;
    return isfinite(r) && r > 0 ? r : 0;
}

static void schedule_arrival(struct loadgen *g)
{
    double t = now_s(g);
    if (g->t_next_s < t - 1.0)
        g->t_next_s = t; /* the loop stalled for long: do not burst to catch up */
    double r = current_rate(g, g->t_next_s);
    g->is_look = !(r > 0);
    if (r > 0)
        g->t_next_s += lg__rng_exp(&g->rng, r);
    else
        g->t_next_s = t + 0.1; /* look at the rate again soon */
    double delay = g->t_next_s - t;
    if (delay < 0)
        delay = 0;
    struct timeval tv = {(time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6)};
    event_add(g->arrival_ev, &tv);
}

static void on_arrival(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *g = arg;
    if (!g->is_issuing)
        return;
    if (!g->is_look && !count_reached(g)) {
        pthread_mutex_lock(&g->mu);
        if (g->backlog < LOADGEN_MAX_BACKLOG)
            g->backlog++;
        else
            g->dropped++;
        pthread_mutex_unlock(&g->mu);
        issue_more(g);
    }
    if (count_reached(g)) {
        /* Every request is sent or waits in the backlog for a slot. */
        event_del(g->arrival_ev);
        maybe_finish(g);
        return;
    }
    schedule_arrival(g);
}

static void on_duration(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *g = arg;
    stop_issuing(g);
    maybe_finish(g);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct loadgen *g = arg;
    if (!atomic_load(&g->stop_requested))
        return;
    stop_issuing(g);
    while (g->calls) {
        struct lg_call *c = g->calls;
        http_client_cancel(c->call);
        record(g, c->meas, LG_END_CANCELLED, "stopped", c->t_send_ns);
        call_unlink(g, c);
        call_free(c);
    }
    maybe_finish(g);
}

static void *thread_main(void *arg)
{
    struct loadgen *g = arg;
    g->t0_ns = hs_mono_ns();
    g->is_issuing = true;
    if (g->cfg.duration_ms > 0) {
        struct timeval tv = {(time_t)(g->cfg.duration_ms / 1000),
                             (suseconds_t)(g->cfg.duration_ms % 1000) * 1000};
        event_add(g->duration_ev, &tv);
    }
    if (is_open_loop(g)) {
        g->t_next_s = 0;
        schedule_arrival(g);
    } else {
        issue_more(g);
    }
    maybe_finish(g);
    if (!atomic_load(&g->is_done))
        event_base_dispatch(g->base);
    if (!atomic_load(&g->is_done)) {
        /* The loop ran out of events without finishing (should not happen). */
        pthread_mutex_lock(&g->mu);
        g->t_end_ns = hs_mono_ns();
        pthread_mutex_unlock(&g->mu);
        atomic_store(&g->is_done, true);
    }
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static int open_loop_objects(struct loadgen *g, struct hs_err *err)
{
    if (evthread_use_pthreads() != 0)
        return hs_err_set(err, HS_EIO, "loadgen: libevent has no thread support");
    g->base = event_base_new();
    if (!g->base)
        return hs_err_set(err, HS_EIO, "loadgen: cannot create an event loop");
    if (evthread_make_base_notifiable(g->base) != 0)
        return hs_err_set(err, HS_EIO, "loadgen: cannot make the event loop notifiable");
    struct http_client_config cc;
    http_client_config_defaults(&cc);
    cc.max_idle_per_host = (size_t)(g->cfg.concurrency > 64 ? g->cfg.concurrency : 64);
    g->client = http_client_new(g->base, &cc, err);
    if (!g->client)
        return err ? err->code : HS_EIO;
    g->arrival_ev = evtimer_new(g->base, on_arrival, g);
    g->duration_ev = evtimer_new(g->base, on_duration, g);
    g->wake_ev = event_new(g->base, -1, 0, on_wake, g);
    if (!g->arrival_ev || !g->duration_ev || !g->wake_ev)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    return HS_OK;
}

static void init_samples(struct loadgen *g)
{
    size_t cap = g->cfg.max_samples ? g->cfg.max_samples : 1;
    uint64_t s = g->cfg.seed;
    lg__samples_init(&g->ttft, cap, s ^ 0x1111);
    lg__samples_init(&g->itl, cap, s ^ 0x2222);
    lg__samples_init(&g->tpot, cap, s ^ 0x3333);
    lg__samples_init(&g->e2e, cap, s ^ 0x4444);
}

struct loadgen *loadgen_start(const struct loadgen_config *c, struct hs_err *err)
{
    if (!c) {
        hs_err_set(err, HS_EINVAL, "no configuration");
        return NULL;
    }
    if (check_config(c, err) != HS_OK)
        return NULL;
    struct loadgen *g = hs_calloc(1, sizeof *g);
    if (!g) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    hs_arena_init(&g->arena, 4096, 0);
    hs_buf_init(&g->body, 0);
    pthread_mutex_init(&g->mu, NULL);
    atomic_init(&g->stop_requested, false);
    atomic_init(&g->is_done, false);
    if (copy_config(g, c, err) != HS_OK)
        goto fail;
    init_samples(g);
    lg__rng_seed(&g->rng, c->seed);
    if (c->prompts_file && lg__prompts_load(c->prompts_file, &g->prompts, err) != HS_OK)
        goto fail;
    if (open_loop_objects(g, err) != HS_OK)
        goto fail;
    if (pthread_create(&g->thread, NULL, thread_main, g) != 0) {
        hs_err_set(err, HS_EIO, "loadgen: cannot start a thread");
        goto fail;
    }
    g->has_thread = true;
    return g;
fail:
    loadgen_free(g);
    return NULL;
}

static void join(struct loadgen *g)
{
    if (g->has_thread && !g->is_joined) {
        pthread_join(g->thread, NULL);
        g->is_joined = true;
    }
}

void loadgen_stop(struct loadgen *g)
{
    if (!g || !g->has_thread)
        return;
    if (!g->is_joined && !atomic_load(&g->is_done)) {
        atomic_store(&g->stop_requested, true);
        event_active(g->wake_ev, EV_READ, 0);
    }
    join(g);
}

bool loadgen_is_done(const struct loadgen *g)
{
    return atomic_load(&g->is_done);
}

void loadgen_wait(struct loadgen *g)
{
    if (g)
        join(g);
}

int loadgen_report(const struct loadgen *g, struct loadgen_report *out)
{
    struct loadgen *mg = (struct loadgen *)g; /* the lock is not part of the value */
    memset(out, 0, sizeof *out);
    out->is_stream = g->cfg.stream;
    out->rate = g->cfg.rate;
    out->is_open_loop = is_open_loop(g);
    out->concurrency = g->cfg.concurrency;
    out->slo_ttft_s = g->cfg.slo_ttft_s;
    out->slo_tpot_s = g->cfg.slo_tpot_s;
    out->slo_e2e_s = g->cfg.slo_e2e_s;
    int rc = HS_OK;
    pthread_mutex_lock(&mg->mu);
    out->is_done = atomic_load(&g->is_done);
    int64_t t_end = g->t_end_ns ? g->t_end_ns : hs_mono_ns();
    out->elapsed_s = g->t0_ns ? (double)(t_end - g->t0_ns) / 1e9 : 0;
    out->sent = g->sent;
    out->finished = g->finished;
    out->in_flight = g->sent - g->finished;
    out->backlog = g->backlog;
    out->dropped = g->dropped;
    memcpy(out->outcomes, g->outcomes, sizeof out->outcomes);
    out->errors = g->finished - g->outcomes[LOADGEN_OK] - g->outcomes[LOADGEN_CANCELLED];
    out->good = g->good;
    out->input_tokens = g->input_tokens;
    out->output_tokens = g->output_tokens;
    out->output_tokens_estimated = g->output_tokens_estimated;
    memcpy(out->last_error, g->last_error, sizeof out->last_error);
    if (lg__samples_dist(&g->ttft, &out->ttft) != HS_OK ||
        lg__samples_dist(&g->itl, &out->itl) != HS_OK ||
        lg__samples_dist(&g->tpot, &out->tpot) != HS_OK ||
        lg__samples_dist(&g->e2e, &out->e2e) != HS_OK)
        rc = HS_ENOMEM;
    pthread_mutex_unlock(&mg->mu);
    if (out->elapsed_s > 0) {
        out->request_throughput = (double)out->outcomes[LOADGEN_OK] / out->elapsed_s;
        out->output_token_throughput = (double)out->output_tokens / out->elapsed_s;
        out->total_token_throughput =
            (double)(out->input_tokens + out->output_tokens) / out->elapsed_s;
        out->goodput = (double)out->good / out->elapsed_s;
    }
    return rc;
}

void loadgen_free(struct loadgen *g)
{
    if (!g)
        return;
    loadgen_stop(g);
    /* The thread is gone: the loop objects have no other user now. */
    while (g->calls) {
        struct lg_call *c = g->calls;
        call_unlink(g, c);
        call_free(c);
    }
    http_client_free(g->client);
    if (g->arrival_ev)
        event_free(g->arrival_ev);
    if (g->duration_ev)
        event_free(g->duration_ev);
    if (g->wake_ev)
        event_free(g->wake_ev);
    if (g->base)
        event_base_free(g->base);
    lg__samples_cleanup(&g->ttft);
    lg__samples_cleanup(&g->itl);
    lg__samples_cleanup(&g->tpot);
    lg__samples_cleanup(&g->e2e);
    lg__prompts_free(&g->prompts);
    hs_buf_cleanup(&g->body);
    hs_arena_cleanup(&g->arena);
    pthread_mutex_destroy(&g->mu);
    hs_free(g);
}
