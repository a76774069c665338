/*
 * proxy.c - the request path of the gateway (spec/gateway.md §2, §3.7,
 * §4.6, §7): read the client's JSON body, route it by model, pick an
 * upstream, forward the request with a new traceparent, and relay the
 * answer.  Streamed (text/event-stream) answers are relayed read by read:
 * whatever one upstream read returned (one or several HTTP chunks) is
 * written to the client in one write when that read's callbacks are done,
 * in the same loop round, before the next read (no buffering but the §2.4
 * usage-chunk filter of measure.c);
 * when the client's socket backs up, the upstream read is paused until it
 * drains.  Non-streamed answers are collected (bounded) and answered with
 * x-holoscope-overhead-us.  A client that leaves cancels the upstream call.
 *
 * Every request ends in finish(): one measurement record, turned into
 * metric observations, one access-log event, spans for the exporter and a
 * capture record when the route samples it.
 *
 * Per-request state lives in a struct preq (hs_calloc'd; freed in
 * finish), which holds a reference on the configuration generation so a
 * reload never frees the route or pool it uses.  Loop thread only.
 */
#include "gateway/gw_internal.h"

#include "export/export.h"
#include "gateway/capture.h"
#include "http/http.h"

#include <event2/event.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "gateway/measure.h"

#define PAUSE_PENDING_BYTES (64u << 10) /* pause the upstream read past this */
#define MAX_FINISH          16          /* finish reasons recorded per request */
#define MAX_CAPTURE_BYTES   (1u << 20)  /* upstream bytes kept for a sampled capture */

/* OP_NATIVE: an engine's own endpoint (TGI /generate[_stream], SGLang
 * /generate, llama.cpp /completion): text completion by another wire format. */
enum op { OP_CHAT, OP_COMPLETIONS, OP_EMBEDDINGS, OP_RESPONSES, OP_NATIVE };
static const char *const op_names[] = {"chat", "text_completion", "embeddings", "chat",
                                       "text_completion"};

struct preq {
    struct gw *g;
    struct gw_gen *gen; /* referenced */
    const struct gw_route_config *route;
    struct gw_pool *pool;
    size_t up;   /* upstream index in the pool */
    bool has_up; /* pool acquired */
    struct http_request *r;
    struct http_client_call *call; /* NULL once done or cancelled */
    int op;                        /* enum op */
    enum gw_api api;               /* wire format, for the measurement */
    bool want_stream;              /* "stream": true */
    bool injected;                 /* include_usage added (§2.4) */
    bool is_sse;                   /* the upstream answered text/event-stream 2xx */
    bool started;                  /* http_stream_start done */
    bool paused;                   /* upstream read paused for backpressure */
    bool client_gone;
    bool sampled;        /* capture this request */
    int n;               /* choices requested */
    int status;          /* upstream status; 0 = none */
    int sent_status;     /* status the client got; 0 = none */
    int fail_kind;       /* enum http_client_fail of the upstream call */
    const char *outcome; /* set by the failure paths; NULL = from measurement */
    const char *error_type;
    char content_type[128];
    int64_t t_recv, t_send, t_hdr, t_first_byte, t_upstream_end, t_client_end; /* mono ns */
    int64_t t_recv_wall_ms;
    struct preq *dirty_prev, *dirty_next; /* on g->dirty while bytes wait in 'out' */
    bool is_dirty;
    int64_t t_dirty; /* when the first waiting byte was read */
    int64_t fwd_ns;  /* Σ forward phase */
    uint64_t fwd_n;
    struct hs_buf body;     /* non-streamed answer */
    struct hs_buf out;      /* bytes to write now (scratch) */
    struct hs_buf captured; /* upstream bytes for a sampled capture */
    char *upstream_body;    /* the request body sent upstream (owned) */
    size_t upstream_body_len;
    const char *req_model; /* as the client sent it (model_buf) */
    char model_buf[256];   /* struct gw_request_info's model */
    struct {               /* the access-log line, written once the client is answered */
        bool pending;
        char request_id[72]; /* http_request_id is at most 64 bytes */
        const char *outcome, *finish;
        double ttft_s, e2e_s;
        int64_t in_tokens, out_tokens;
    } log;
    char tenant[24];
    struct gw_trace trace;
    uint8_t server_span[8], client_span[8];
    int64_t t_start_wall_ns;
    struct gw_measure *m; /* NULL until sent upstream (or out of memory) */
};

uint64_t gw__rand64(struct gw *g)
{
    uint64_t x = g->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static int64_t mono(void)
{
    return hs_mono_ns();
}

/* ---- errors of the gateway's own (§3.7.4) ---- */

static void respond_json_error(struct http_request *r, int status, const char *type,
                               const char *code, const char *param, const char *msg)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_puts(&b, "{\"error\":{\"message\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(&b, msg, strlen(msg));
    if (rc == HS_OK)
        rc = hs_buf_printf(&b, ",\"type\":\"%s\",\"param\":", type);
    if (rc == HS_OK)
        rc = param ? hs_buf_printf(&b, "\"%s\"", param) : hs_buf_puts(&b, "null");
    if (rc == HS_OK)
        rc = code ? hs_buf_printf(&b, ",\"code\":\"%s\"}}", code)
                  : hs_buf_puts(&b, ",\"code\":null}}");
    if (rc == HS_OK)
        http_respond(r, status, "application/json", b.p, b.len);
    else
        http_respond_error(r, 500, "out of memory");
    hs_buf_cleanup(&b);
}

/* ---- measurement (measure.h) ---- */

static void meas_new(struct preq *q)
{
    q->m = gw_measure_new(q->api, q->want_stream, q->injected, q->t_send, 64 << 10);
    if (q->m != NULL)
        gw_measure_set_n(q->m, q->n);
}

static void meas_start(struct preq *q)
{
    if (q->m != NULL)
        gw_measure_response_start(q->m, q->status, q->content_type, q->t_hdr);
}

/* Feeds 'data'; appends to 'fwd' (may be NULL) what the client must get now. */
static void meas_feed(struct preq *q, const char *data, size_t len, int64_t now, struct hs_buf *fwd)
{
    if (q->m != NULL) {
        struct hs_err err = {0};
        if (gw_measure_feed(q->m, data, len, now, fwd, &err) != HS_OK)
            hs_log(HS_LOG_WARN, "gateway: cannot relay a chunk", HS_LSTR("err", err.msg));
        return;
    }
    if (fwd != NULL && hs_buf_append(fwd, data, len) != HS_OK)
        hs_log(HS_LOG_WARN, "gateway: out of memory relaying a chunk");
}

static void meas_end(struct preq *q, enum gw_end cause, int64_t now, struct hs_buf *fwd)
{
    if (q->m != NULL)
        gw_measure_end(q->m, cause, now, fwd);
}

static enum gw_end end_cause(int kind)
{
    switch (kind) {
    case HTTP_CLIENT_OK:
        return GW_END_EOF;
    case HTTP_CLIENT_FAIL_CONNECT:
    case HTTP_CLIENT_FAIL_DNS:
    case HTTP_CLIENT_FAIL_TLS:
        return GW_END_UNREACHABLE;
    case HTTP_CLIENT_FAIL_TIMEOUT_CONNECT:
    case HTTP_CLIENT_FAIL_TIMEOUT_FIRST_BYTE:
    case HTTP_CLIENT_FAIL_TIMEOUT_READ:
    case HTTP_CLIENT_FAIL_TIMEOUT_TOTAL:
        return GW_END_TIMEOUT;
    default:
        return GW_END_RESET;
    }
}

/* ---- the record of a finished request ---- */

struct rec {
    const char *outcome;
    const char *error_type;
    char status_class[8];
    double e2e_s, upstream_s, ttft_s, ttfc_s, tpot_s;               /* NAN = absent */
    int64_t in_tokens, out_tokens, cached_tokens, reasoning_tokens; /* -1 = absent */
    bool is_authoritative;                                          /* usage, engine, exact */
    const char *usage_source;
    const char *finish[MAX_FINISH];
    size_t nfinish;
    double over_pre_s, over_fwd_s, over_post_s; /* over_fwd_s NAN when no read */
    const char *response_model;
    char code_buf[12]; /* error_type for an HTTP status */
};

static double secs(int64_t a, int64_t b)
{
    return a > 0 && b >= a ? (double)(b - a) / 1e9 : NAN;
}

static void rec_fill_measure(struct preq *q, struct rec *rc)
{
    if (q->m == NULL)
        return;
    const struct gw_measure_result *m = gw_measure_result(q->m);
    if (q->outcome == NULL) {
        rc->outcome = gw_outcome_name(m->outcome);
        if (m->error_type[0])
            rc->error_type = m->error_type;
    }
    if (m->t_first_output_ns > 0)
        rc->ttft_s = secs(q->t_recv, m->t_first_output_ns);
    if (m->ttfc_ns >= 0 && m->t_first_event_ns > 0)
        rc->ttfc_s = (double)m->ttfc_ns / 1e9;
    if (m->tpot_ns >= 0 && rc->outcome != NULL && strcmp(rc->outcome, "ok") == 0)
        rc->tpot_s = (double)m->tpot_ns / 1e9;
    rc->in_tokens = m->input_tokens;
    rc->out_tokens = m->output_tokens;
    rc->cached_tokens = m->cached_tokens;
    rc->reasoning_tokens = m->reasoning_tokens;
    rc->usage_source = m->usage_source != GW_USAGE_NONE ? m->usage_source_name : NULL;
    rc->is_authoritative = m->usage_source != GW_USAGE_NONE && !m->usage_estimated;
    for (size_t i = 0; i < m->n_choices && rc->nfinish < MAX_FINISH; i++)
        if (m->choices[i].finish != GW_FINISH_NONE)
            rc->finish[rc->nfinish++] = gw_finish_name(m->choices[i].finish);
    if (m->model[0])
        rc->response_model = m->model;
}

static void rec_build(struct preq *q, struct rec *rc)
{
    memset(rc, 0, sizeof(*rc));
    rc->ttft_s = rc->ttfc_s = rc->tpot_s = NAN;
    rc->in_tokens = rc->out_tokens = rc->cached_tokens = rc->reasoning_tokens = -1;
    rc->outcome = q->outcome;
    rc->error_type = q->error_type;
    rec_fill_measure(q, rc);
    if (rc->outcome == NULL) /* without a measurement: from the status */
        rc->outcome = q->status >= 400 ? "http_error" : "ok";
    if (rc->error_type == NULL && strcmp(rc->outcome, "http_error") == 0) {
        snprintf(rc->code_buf, sizeof(rc->code_buf), "%d", q->status);
        rc->error_type = rc->code_buf;
    }
    if (q->sent_status > 0)
        snprintf(rc->status_class, sizeof(rc->status_class), "%dxx", (q->sent_status / 100) % 10);
    else
        memcpy(rc->status_class, "none", 5);
    rc->e2e_s = secs(q->t_recv, q->t_client_end);
    rc->upstream_s = secs(q->t_send, q->t_upstream_end);
    rc->over_pre_s = q->t_send > 0 ? secs(q->t_recv, q->t_send) : secs(q->t_recv, q->t_client_end);
    rc->over_fwd_s = q->fwd_n ? (double)q->fwd_ns / 1e9 / (double)q->fwd_n : NAN;
    rc->over_post_s = q->t_upstream_end > 0 ? secs(q->t_upstream_end, q->t_client_end) : NAN;
}

/* ---- metrics, log, spans, capture ---- */

static void observe(struct preq *q, const struct rec *rc)
{
    struct gw_metrics *m = q->g->metrics;
    const struct gw_route_config *rt = q->route;
    const char *up = q->has_up ? rt->upstreams[q->up].url : NULL;
    struct gw_mlabels l = {rt ? (rt->upstream_model ? rt->upstream_model : rt->model)
                              : "__unrouted__",
                           rt ? rt->name : NULL,
                           up,
                           op_names[q->op],
                           q->tenant[0] ? q->tenant : NULL,
                           0};
    gw__mlabels_hash(&l);
    const char *et = rc->error_type ? rc->error_type : "";
    gw__metrics_lock(m);
    const char *req[] = {"status_class", rc->status_class, "outcome", rc->outcome, NULL};
    gw__metrics_add(m, GW_M_REQUESTS, &l, req, 1);
    const char *sd[] = {"status_class", rc->status_class, "error_type", et, NULL};
    if (!isnan(rc->e2e_s))
        gw__metrics_add(m, GW_M_SERVER_DURATION, &l, sd, rc->e2e_s);
    const char *cd[] = {"error_type", et, NULL};
    if (!isnan(rc->upstream_s))
        gw__metrics_add(m, GW_M_CLIENT_DURATION, &l, cd, rc->upstream_s);
    if (!isnan(rc->ttft_s))
        gw__metrics_add(m, GW_M_TTFT, &l, NULL, rc->ttft_s);
    if (!isnan(rc->ttfc_s))
        gw__metrics_add(m, GW_M_TTFC, &l, NULL, rc->ttfc_s);
    if (!isnan(rc->tpot_s))
        gw__metrics_add(m, GW_M_TPOT, &l, NULL, rc->tpot_s);
    if (q->m != NULL) {
        const struct gw_measure_result *mr = gw_measure_result(q->m);
        gw__metrics_observe_ns(m, GW_M_ITL, &l, mr->itl_ns, mr->n_itl);
    }
    for (size_t i = 0; i < rc->nfinish; i++) {
        const char *fr[] = {"finish_reason", rc->finish[i], NULL};
        gw__metrics_add(m, GW_M_FINISH, &l, fr, 1);
    }
    const struct {
        const char *type;
        int64_t v;
        bool histogram;
    } tok[] = {{"input", rc->in_tokens, true},
               {"output", rc->out_tokens, true},
               {"cached_input", rc->cached_tokens, false},
               {"reasoning", rc->reasoning_tokens, false}};
    for (size_t i = 0; i < HS_ARRAY_LEN(tok); i++) {
        if (tok[i].v < 0)
            continue;
        if (rc->is_authoritative) {
            const char *tt[] = {"token_type", tok[i].type, NULL};
            gw__metrics_add(m, GW_M_TOKENS, &l, tt, (double)tok[i].v);
            if (tok[i].histogram)
                gw__metrics_add(m, GW_M_TOKEN_USAGE, &l, tt, (double)tok[i].v);
        } else if (rc->usage_source != NULL) {
            const char *tt[] = {"token_type", tok[i].type, "source", rc->usage_source, NULL};
            gw__metrics_add(m, GW_M_EST_TOKENS, &l, tt, (double)tok[i].v);
        }
    }
    const char *ph[] = {"phase", "pre", NULL};
    if (!isnan(rc->over_pre_s))
        gw__metrics_add(m, GW_M_OVERHEAD, &l, ph, rc->over_pre_s);
    ph[1] = "forward";
    if (!isnan(rc->over_fwd_s))
        gw__metrics_add(m, GW_M_OVERHEAD, &l, ph, rc->over_fwd_s);
    ph[1] = "post";
    if (!isnan(rc->over_post_s))
        gw__metrics_add(m, GW_M_OVERHEAD, &l, ph, rc->over_post_s);
    gw__metrics_unlock(m);
}

/* Copies the request id into q->log (the request's strings are gone
 * once it is answered). */
static void keep_request_id(struct preq *q)
{
    const char *id = http_request_id(q->r);
    size_t n = strlen(id);
    if (n >= sizeof(q->log.request_id))
        n = sizeof(q->log.request_id) - 1;
    memcpy(q->log.request_id, id, n);
    q->log.request_id[n] = '\0';
}

/* Keeps what the access-log line needs (the request's own strings are
 * gone once it is answered); access_log_write writes it after the answer,
 * off the client's critical path. */
static void access_log(struct preq *q, const struct rec *rc)
{
    if (q->gen->cfg->access_log == false || !hs_log_enabled(HS_LOG_INFO))
        return;
    if (q->r != NULL)
        keep_request_id(q);
    q->log.outcome = rc->outcome; /* static names (measure.h) or the measurement's */
    q->log.finish = rc->nfinish ? rc->finish[0] : "";
    q->log.ttft_s = isnan(rc->ttft_s) ? -1 : rc->ttft_s;
    q->log.e2e_s = isnan(rc->e2e_s) ? -1 : rc->e2e_s;
    q->log.in_tokens = rc->in_tokens;
    q->log.out_tokens = rc->out_tokens;
    q->log.pending = true;
}

/* Writes the line access_log kept; before q->m and q->gen are let go. */
static void access_log_write(struct preq *q)
{
    if (!q->log.pending)
        return;
    q->log.pending = false;
    hs_log(HS_LOG_INFO, "gateway request", HS_LSTR("request_id", q->log.request_id),
           HS_LSTR("model", q->req_model ? q->req_model : ""),
           HS_LSTR("route", q->route ? q->route->name : ""),
           HS_LSTR("upstream", q->has_up ? q->route->upstreams[q->up].url : ""),
           HS_LINT("status", q->sent_status), HS_LSTR("outcome", q->log.outcome),
           HS_LF64("ttft_s", q->log.ttft_s), HS_LF64("e2e_s", q->log.e2e_s),
           HS_LINT("input_tokens", q->log.in_tokens), HS_LINT("output_tokens", q->log.out_tokens),
           HS_LSTR("finish_reason", q->log.finish));
}

/* Request parameters for the upstream span (spec §6.1), from the body
 * (sampled spans only: this costs a parse): OpenAI's top-level names, TGI's
 * "parameters", SGLang's "sampling_params", llama.cpp's own names. */
struct span_params {
    json_t *root;
    int64_t max_tokens, top_k, seed;
    double temperature, top_p, frequency_penalty, presence_penalty;
    bool has_max_tokens, has_top_k, has_seed, has_temperature, has_top_p, has_freq, has_pres;
    char stop[512]; /* EXPORT_ATTR_SEP-separated */
};

/* Appends a non-empty 's' to the EXPORT_ATTR_STRINGS value in buf (cap
 * bytes, *len used); an element that does not fit is left out. */
static void strings_add(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t sl = s != NULL ? strlen(s) : 0;
    if (sl == 0 || *len + sl + 2 > cap)
        return;
    if (*len > 0)
        buf[(*len)++] = EXPORT_ATTR_SEP;
    memcpy(buf + *len, s, sl);
    *len += sl;
    buf[*len] = '\0';
}

static void span_param(json_t *o, struct span_params *p)
{
    static const char *const max_names[] = {"max_tokens", "max_completion_tokens",
                                            "max_output_tokens", "max_new_tokens", "n_predict"};
    for (size_t i = 0; i < HS_ARRAY_LEN(max_names) && !p->has_max_tokens; i++) {
        json_t *v = json_object_get(o, max_names[i]);
        if (json_is_integer(v)) {
            p->max_tokens = (int64_t)json_integer_value(v);
            p->has_max_tokens = true;
        }
    }
#define NUM(key, field, flag)                                                                      \
    do {                                                                                           \
        json_t *v = json_object_get(o, key);                                                       \
        if (!p->flag && json_is_number(v)) {                                                       \
            p->field = json_number_value(v);                                                       \
            p->flag = true;                                                                        \
        }                                                                                          \
    } while (0)
    NUM("temperature", temperature, has_temperature);
    NUM("top_p", top_p, has_top_p);
    NUM("frequency_penalty", frequency_penalty, has_freq);
    NUM("presence_penalty", presence_penalty, has_pres);
#undef NUM
    json_t *v = json_object_get(o, "top_k");
    if (!p->has_top_k && json_is_integer(v)) {
        p->top_k = (int64_t)json_integer_value(v);
        p->has_top_k = true;
    }
    v = json_object_get(o, "seed");
    if (!p->has_seed && json_is_integer(v)) {
        p->seed = (int64_t)json_integer_value(v);
        p->has_seed = true;
    }
    v = json_object_get(o, "stop");
    if (v == NULL)
        v = json_object_get(o, "stop_sequences");
    if (p->stop[0] == '\0' && (json_is_string(v) || json_is_array(v))) {
        size_t o_len = 0, n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++)
            strings_add(p->stop, sizeof(p->stop), &o_len,
                        json_string_value(json_is_array(v) ? json_array_get(v, i) : v));
    }
}

static void span_params_read(struct preq *q, struct span_params *p)
{
    memset(p, 0, sizeof(*p));
    size_t len = 0;
    const char *body = http_request_body(q->r, &len);
    p->root = body ? json_loadb(body, len, 0, NULL) : NULL;
    if (!json_is_object(p->root))
        return;
    span_param(p->root, p);
    json_t *nested = json_object_get(p->root, "parameters"); /* TGI */
    if (json_is_object(nested))
        span_param(nested, p);
    nested = json_object_get(p->root, "sampling_params"); /* SGLang */
    if (json_is_object(nested))
        span_param(nested, p);
}

/* server.address and server.port of an upstream base URL. */
static void url_host_port(const char *url, char *host, size_t hn, int64_t *port)
{
    const char *p = strstr(url, "://");
    bool tls = strncmp(url, "https", 5) == 0;
    p = p ? p + 3 : url;
    const char *end = p + strcspn(p, "/?#");
    const char *colon = NULL;
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb != NULL) {
            colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
            p++;
            end = rb;
        }
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
    }
    const char *hend = colon ? colon : end;
    size_t n = HS_MIN((size_t)(hend - p), hn - 1);
    memcpy(host, p, n);
    host[n] = '\0';
    *port = tls ? 443 : 80;
    if (colon != NULL) {
        int64_t v = 0;
        const char *d = colon + 1;
        while (*d >= '0' && *d <= '9' && v < 70000)
            v = v * 10 + (*d++ - '0');
        if (d > colon + 1 && v > 0 && v < 65536)
            *port = v;
    }
}

static void emit_spans(struct preq *q, const struct rec *rc)
{
    struct export_otlp *x = q->g->otlp;
    if (x == NULL || !(q->trace.flags & 1))
        return;
    char name[300];
    /* the model sent upstream: the route's rewrite, the client's, or (a
     * native request without one) the route's pattern */
    const char *model = q->route && q->route->upstream_model ? q->route->upstream_model
                        : q->req_model                       ? q->req_model
                        : q->route                           ? q->route->model
                                                             : "";
    snprintf(name, sizeof(name), "%s %s", op_names[q->op], model);
    int64_t end = q->t_start_wall_ns + (q->t_client_end - q->t_recv);
    bool ok = strcmp(rc->outcome, "ok") == 0;
    struct export_otlp_attr a[48];
    char finish[MAX_FINISH * 16] = "";
    for (size_t i = 0, o = 0; i < rc->nfinish && o + 16 < sizeof(finish); i++)
        o += (size_t)snprintf(finish + o, sizeof(finish) - o, "%s%s", i ? "," : "", rc->finish[i]);
    size_t n = 0;
#define ATTR_S(k, val)                                                                             \
    a[n++] = (struct export_otlp_attr)                                                             \
    {                                                                                              \
        (k), EXPORT_ATTR_STRING,                                                                   \
        {                                                                                          \
            .s = (val)                                                                             \
        }                                                                                          \
    }
#define ATTR_I(k, val)                                                                             \
    a[n++] = (struct export_otlp_attr)                                                             \
    {                                                                                              \
        (k), EXPORT_ATTR_INT,                                                                      \
        {                                                                                          \
            .i = (val)                                                                             \
        }                                                                                          \
    }
#define ATTR_D(k, val)                                                                             \
    a[n++] = (struct export_otlp_attr)                                                             \
    {                                                                                              \
        (k), EXPORT_ATTR_DOUBLE,                                                                   \
        {                                                                                          \
            .d = (val)                                                                             \
        }                                                                                          \
    }
    ATTR_S("http.request.method", "POST");
    ATTR_S("url.path", http_request_path(q->r));
    ATTR_I("http.response.status_code", q->sent_status);
    struct export_span s = {0};
    memcpy(s.trace_id, q->trace.trace_id, 16);
    memcpy(s.span_id, q->server_span, 8);
    memcpy(s.parent_span_id, q->trace.parent_id, 8);
    s.has_parent = q->trace.has_parent;
    s.name = name;
    s.kind = EXPORT_SPAN_KIND_SERVER;
    s.start_unix_ns = q->t_start_wall_ns;
    s.end_unix_ns = end;
    s.status_code = ok ? EXPORT_SPAN_STATUS_UNSET : EXPORT_SPAN_STATUS_ERROR;
    s.attrs = a;
    s.n_attrs = n;
    HS_IGNORE_RESULT(export_otlp_submit(x, &s));
    if (!q->has_up)
        return;
    n = 0;
    ATTR_S("gen_ai.operation.name", op_names[q->op]);
    ATTR_S("gen_ai.provider.name", q->route->provider);
    ATTR_S("gen_ai.request.model", model);
    ATTR_S("holoscope.upstream", q->route->upstreams[q->up].url);
    ATTR_S("holoscope.outcome", rc->outcome);
    if (q->want_stream)
        a[n++] = (struct export_otlp_attr){"gen_ai.request.stream", EXPORT_ATTR_BOOL, {.b = true}};
    if (q->n > 1)
        ATTR_I("gen_ai.request.choice.count", q->n);
    if (!ok && rc->error_type)
        ATTR_S("error.type", rc->error_type);
    if (!isnan(rc->ttfc_s))
        ATTR_D("gen_ai.response.time_to_first_chunk", rc->ttfc_s);
    if (!isnan(rc->ttft_s))
        ATTR_D("holoscope.ttft_s", rc->ttft_s);
    if (!isnan(rc->tpot_s))
        ATTR_D("holoscope.tpot_s", rc->tpot_s);
    if (rc->is_authoritative && rc->in_tokens >= 0)
        ATTR_I("gen_ai.usage.input_tokens", rc->in_tokens);
    if (rc->is_authoritative && rc->out_tokens >= 0)
        ATTR_I("gen_ai.usage.output_tokens", rc->out_tokens);
    if (rc->usage_source)
        ATTR_S("holoscope.usage_source", rc->usage_source);
    if (rc->is_authoritative && rc->cached_tokens >= 0)
        ATTR_I("gen_ai.usage.cache_read.input_tokens", rc->cached_tokens);
    if (rc->is_authoritative && rc->reasoning_tokens >= 0)
        ATTR_I("gen_ai.usage.reasoning.output_tokens", rc->reasoning_tokens);
    if (rc->response_model != NULL)
        ATTR_S("gen_ai.response.model", rc->response_model);
    if (rc->nfinish)
        ATTR_S("holoscope.finish_reasons", finish); /* normalised, comma-separated */
    ATTR_S("holoscope.request_id", http_request_id(q->r));
    ATTR_D("holoscope.overhead.pre_s", rc->over_pre_s);
    char host[256];
    int64_t port;
    url_host_port(q->route->upstreams[q->up].url, host, sizeof(host), &port);
    ATTR_S("server.address", host);
    ATTR_I("server.port", port);
    struct span_params sp;
    span_params_read(q, &sp);
    if (sp.has_max_tokens)
        ATTR_I("gen_ai.request.max_tokens", sp.max_tokens);
    if (sp.has_temperature)
        ATTR_D("gen_ai.request.temperature", sp.temperature);
    if (sp.has_top_p)
        ATTR_D("gen_ai.request.top_p", sp.top_p);
    if (sp.has_top_k)
        ATTR_I("gen_ai.request.top_k", sp.top_k);
    if (sp.has_freq)
        ATTR_D("gen_ai.request.frequency_penalty", sp.frequency_penalty);
    if (sp.has_pres)
        ATTR_D("gen_ai.request.presence_penalty", sp.presence_penalty);
    if (sp.has_seed)
        ATTR_I("gen_ai.request.seed", sp.seed);
    if (sp.stop[0] != '\0')
        a[n++] = (struct export_otlp_attr){
            "gen_ai.request.stop_sequences", EXPORT_ATTR_STRINGS, {.s = sp.stop}};
    char raw_finish[MAX_FINISH * 24] = "";
    const struct gw_measure_result *mr = q->m ? gw_measure_result(q->m) : NULL;
    if (mr != NULL) {
        if (mr->response_id[0] != '\0')
            ATTR_S("gen_ai.response.id", mr->response_id);
        size_t o = 0;
        for (size_t i = 0; i < mr->n_choices && i < MAX_FINISH; i++)
            strings_add(raw_finish, sizeof(raw_finish), &o, mr->choices[i].finish_raw);
        if (o > 0)
            a[n++] = (struct export_otlp_attr){
                "gen_ai.response.finish_reasons", EXPORT_ATTR_STRINGS, {.s = raw_finish}};
    }
#undef ATTR_S
#undef ATTR_I
#undef ATTR_D
    memcpy(s.span_id, q->client_span, 8);
    memcpy(s.parent_span_id, q->server_span, 8);
    s.has_parent = true;
    s.kind = EXPORT_SPAN_KIND_CLIENT;
    s.start_unix_ns = q->t_start_wall_ns + (q->t_send - q->t_recv);
    s.end_unix_ns = q->t_start_wall_ns +
                    ((q->t_upstream_end ? q->t_upstream_end : q->t_client_end) - q->t_recv);
    if (s.end_unix_ns < s.start_unix_ns)
        s.end_unix_ns = s.start_unix_ns;
    s.attrs = a;
    s.n_attrs = n;
    HS_IGNORE_RESULT(export_otlp_submit(x, &s));
    json_decref(sp.root);
}

static void submit_capture(struct preq *q, const struct rec *rc)
{
    struct capture_writer *w = atomic_load(&q->g->capture);
    if (w == NULL || !q->sampled || q->route == NULL)
        return;
    char trace[33];
    gw__hex(q->trace.trace_id, 16, trace);
    struct capture_record cr;
    capture_record_init(&cr);
    cr.inference_id = http_request_id(q->r);
    cr.request_id = cr.inference_id;
    cr.t_recv_ms = q->t_recv_wall_ms;
    cr.trace_id = trace;
    cr.model = q->route->upstream_model ? q->route->upstream_model : q->route->model;
    cr.route = q->route->name;
    cr.upstream = q->has_up ? q->route->upstreams[q->up].url : NULL;
    cr.operation = q->op == OP_RESPONSES ? "responses"
                   : q->op == OP_NATIVE  ? gw_api_operation_name(q->api)
                                         : op_names[q->op];
    size_t blen = 0;
    const char *body = http_request_body(q->r, &blen);
    cr.has_input = true;
    cr.input_content_type = "application/json";
    cr.input = body;
    cr.input_len = blen;
    const struct hs_buf *ob = q->is_sse ? &q->captured : &q->body;
    cr.has_output = ob->len > 0;
    cr.output_content_type = q->content_type[0] ? q->content_type : "application/json";
    cr.output = ob->p;
    cr.output_len = ob->len;
    cr.stream = q->is_sse;
    cr.stream_output = q->is_sse ? CAPTURE_STREAM_RAW : CAPTURE_STREAM_ASSEMBLED;
    if (q->is_sse)
        cr.output_encoding = "BASE64";
    cr.n = q->n;
    cr.http_status = q->sent_status;
    cr.outcome = rc->outcome;
    cr.error_type = rc->error_type;
    cr.ttft_s = rc->ttft_s;
    cr.tpot_s = rc->tpot_s;
    cr.e2e_s = rc->e2e_s;
    cr.input_tokens = rc->in_tokens;
    cr.output_tokens = rc->out_tokens;
    cr.usage_source = rc->usage_source;
    cr.finish_reasons = rc->finish;
    cr.nfinish_reasons = rc->nfinish;
    cr.sampling_percentage = q->route->capture_percentage >= 0
                                 ? q->route->capture_percentage
                                 : capture_writer_sampling_percentage(w);
    HS_IGNORE_RESULT(capture_writer_submit(w, &cr));
}

/* ---- finishing ---- */

static bool is_upstream_failure(const struct preq *q, const struct rec *rc)
{
    if (q->client_gone && q->outcome && strcmp(q->outcome, "client_cancelled") == 0)
        return false;
    return strcmp(rc->outcome, "upstream_unreachable") == 0 ||
           strcmp(rc->outcome, "timeout") == 0 || strcmp(rc->outcome, "stream_truncated") == 0 ||
           q->status >= 500;
}

/* Records the request (the caller frees 'q').  The client is answered by
 * the caller *after* this, as the spans and the capture read the request;
 * with neither, on_done answers first and clears q->r (the access log then
 * uses the id kept in q->log). */
static void record(struct preq *q)
{
    if (q->t_client_end == 0)
        q->t_client_end = mono();
    struct rec rc;
    rec_build(q, &rc);
    observe(q, &rc);
    access_log(q, &rc);
    emit_spans(q, &rc);
    submit_capture(q, &rc);
    struct gw *g = q->g;
    atomic_fetch_add(&g->requests_total, 1);
    atomic_fetch_sub(&g->requests_inflight, 1);
    gw__metrics_inflight(g->metrics, -1);
    if (strcmp(rc.outcome, "client_cancelled") == 0)
        atomic_fetch_add(&g->client_cancelled, 1);
    else if (strcmp(rc.outcome, "ok") != 0 && strcmp(rc.outcome, "http_error") != 0)
        atomic_fetch_add(&g->upstream_errors, 1);
    if (q->is_sse)
        atomic_fetch_add(&g->streams_total, 1);
    if (q->has_up)
        gw_pool_release(q->pool, q->up, is_upstream_failure(q, &rc), hs_now_ms());
}

static void undirty(struct preq *q);
static void mark_dirty(struct preq *q);

static void preq_free(struct preq *q)
{
    access_log_write(q);
    undirty(q);
    if (q->call != NULL)
        http_client_cancel(q->call);
    gw_measure_free(q->m);
    hs_buf_cleanup(&q->body);
    hs_buf_cleanup(&q->out);
    hs_buf_cleanup(&q->captured);
    hs_free(q->upstream_body);
    if (q->gen)
        gw__gen_unref(q->gen);
    hs_free(q);
}

/* A gateway error before anything was forwarded: answer, record, free. */
static void fail_early(struct preq *q, int status, const char *type, const char *code,
                       const char *param, const char *msg)
{
    q->outcome = "gateway_error";
    q->error_type = code;
    q->sent_status = status;
    q->t_client_end = mono();
    record(q);
    respond_json_error(q->r, status, type, code, param, msg);
    preq_free(q);
}

/* ---- upstream callbacks ---- */

static void on_drain(struct http_request *r, void *arg)
{
    (void)r;
    struct preq *q = arg;
    if (q->paused && q->call != NULL) {
        q->paused = false;
        http_client_resume(q->call);
    }
}

/* Hands q->out to the client's connection: sent now, or, when '!now',
 * queued to leave with the final chunk (http_stream_end: one send). */
static void forward_out(struct preq *q, bool now)
{
    if (q->out.len == 0 || q->client_gone)
        return;
    int rc = now ? http_stream_write(q->r, q->out.p, q->out.len)
                 : http_stream_queue(q->r, q->out.p, q->out.len);
    if (rc != HS_OK)
        return; /* the close callback follows */
    if (http_stream_pending(q->r) > PAUSE_PENDING_BYTES && q->call != NULL && !q->paused) {
        q->paused = true;
        http_client_pause(q->call);
        http_stream_on_drain(q->r, on_drain, q);
    }
}

static int add_overhead_header(struct preq *q, int64_t us)
{
    char v[32];
    snprintf(v, sizeof(v), "%lld", (long long)(us > 0 ? us : 0));
    return http_response_header(q->r, "x-holoscope-overhead-us", v);
}

static bool is_hop_by_hop(const char *name)
{
    static const char *const hop[] = {
        "connection", "keep-alive",     "transfer-encoding", "te",           "trailer",
        "upgrade",    "content-length", "x-request-id",      "content-type", "content-encoding",
        "date",       "server"};
    for (size_t i = 0; i < HS_ARRAY_LEN(hop); i++)
        if (strcasecmp(name, hop[i]) == 0)
            return true;
    return strncasecmp(name, "proxy-", 6) == 0;
}

static void on_headers(void *arg, int status, const struct http_client_header *h, size_t n)
{
    struct preq *q = arg;
    q->t_hdr = mono();
    q->status = status;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "content-type") == 0)
            snprintf(q->content_type, sizeof(q->content_type), "%s", h[i].value);
        else if (!is_hop_by_hop(h[i].name))
            HS_IGNORE_RESULT(http_response_header(q->r, h[i].name, h[i].value));
    }
    q->is_sse =
        status >= 200 && status < 300 && strncasecmp(q->content_type, "text/event-stream", 17) == 0;
    meas_start(q);
    if (!q->is_sse || q->client_gone)
        return;
    HS_IGNORE_RESULT(http_response_header(q->r, "Cache-Control", "no-cache"));
    HS_IGNORE_RESULT(http_response_header(q->r, "X-Accel-Buffering", "no"));
    HS_IGNORE_RESULT(add_overhead_header(q, (q->t_send - q->t_recv) / 1000));
    /* the head leaves with the bytes of this read (flush_one or on_done) */
    if (http_stream_start_lazy(q->r, status, q->content_type) == HS_OK) {
        q->started = true;
        q->sent_status = status;
        mark_dirty(q);
    }
}

static void undirty(struct preq *q)
{
    if (!q->is_dirty)
        return;
    if (q->dirty_prev)
        q->dirty_prev->dirty_next = q->dirty_next;
    else
        q->g->dirty = q->dirty_next;
    if (q->dirty_next)
        q->dirty_next->dirty_prev = q->dirty_prev;
    q->dirty_prev = q->dirty_next = NULL;
    q->is_dirty = false;
}

/* Writes what waits in q->out (the forward phase, §4.6, ends here), or
 * only the lazy head when no body bytes came with it. */
static void flush_one(struct preq *q)
{
    if (!q->is_dirty)
        return;
    undirty(q);
    if (q->out.len == 0) {
        if (!q->client_gone)
            http_stream_flush(q->r);
        return;
    }
    forward_out(q, true);
    hs_buf_reset(&q->out);
    q->fwd_ns += mono() - q->t_dirty;
    q->fwd_n++;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw *g = arg;
    while (g->dirty != NULL)
        flush_one(g->dirty);
}

static void mark_dirty(struct preq *q)
{
    if (q->is_dirty)
        return;
    q->is_dirty = true;
    q->dirty_prev = NULL;
    q->dirty_next = q->g->dirty;
    if (q->dirty_next)
        q->dirty_next->dirty_prev = q;
    q->g->dirty = q;
    event_active(q->g->flush_ev, EV_TIMEOUT, 0);
}

static void on_chunk(void *arg, const char *data, size_t len)
{
    struct preq *q = arg;
    int64_t t0 = mono();
    if (q->t_first_byte == 0)
        q->t_first_byte = t0;
    if (q->sampled && q->captured.len + len <= MAX_CAPTURE_BYTES)
        HS_IGNORE_RESULT(hs_buf_append(&q->captured, data, len));
    if (!q->is_sse) {
        meas_feed(q, data, len, t0, NULL);
        if (hs_buf_append(&q->body, data, len) != HS_OK && q->call != NULL) {
            q->outcome = "gateway_error";
            q->error_type = "response_too_large";
        }
        return;
    }
    size_t before = q->out.len;
    meas_feed(q, data, len, t0, &q->out);
    if (q->out.len > before) {
        if (before == 0)
            q->t_dirty = t0; /* the first byte waiting since the last write */
        mark_dirty(q);       /* written once this read's chunks are all in */
    }
}

static const char *fail_outcome(int kind)
{
    switch (kind) {
    case HTTP_CLIENT_FAIL_CONNECT:
    case HTTP_CLIENT_FAIL_DNS:
    case HTTP_CLIENT_FAIL_TLS:
        return "upstream_unreachable";
    case HTTP_CLIENT_FAIL_TIMEOUT_CONNECT:
    case HTTP_CLIENT_FAIL_TIMEOUT_FIRST_BYTE:
    case HTTP_CLIENT_FAIL_TIMEOUT_READ:
    case HTTP_CLIENT_FAIL_TIMEOUT_TOTAL:
        return "timeout";
    default:
        return "stream_truncated";
    }
}

/* The stream cannot change its status any more: an error event (§3.7.4). */
static void append_stream_error(struct preq *q, const char *msg)
{
    if (q->op != OP_CHAT && q->op != OP_COMPLETIONS)
        return;
    hs_buf_reset(&q->out);
    int rc = hs_buf_puts(&q->out, "data: {\"error\":{\"message\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(&q->out, msg, strlen(msg));
    if (rc == HS_OK)
        rc = hs_buf_puts(&q->out, ",\"type\":\"upstream_error\",\"param\":null,"
                                  "\"code\":\"upstream_stream_error\"}}\n\ndata: [DONE]\n\n");
    if (rc == HS_OK)
        forward_out(q, false);
}

static void done_failed_before_answer(struct preq *q, const struct http_client_result *res)
{
    bool is_timeout = strcmp(q->outcome, "timeout") == 0;
    bool is_unreachable = strcmp(q->outcome, "upstream_unreachable") == 0;
    int status = is_timeout ? 504 : 502;
    const char *code = is_timeout                              ? "upstream_timeout"
                       : is_unreachable                        ? "upstream_unreachable"
                       : res->kind == HTTP_CLIENT_FAIL_TOO_BIG ? "upstream_response_too_large"
                                                               : "upstream_error";
    if (q->error_type == NULL)
        q->error_type = is_timeout ? "timeout" : is_unreachable ? "upstream_unreachable" : code;
    char msg[400];
    snprintf(msg, sizeof(msg), "upstream %s: %s", q->route->upstreams[q->up].url, res->msg);
    q->sent_status = status;
    q->t_client_end = mono();
    record(q);
    respond_json_error(q->r, status, "upstream_error", code, NULL, msg);
}

static void on_done(void *arg, const struct http_client_result *res)
{
    struct preq *q = arg;
    q->call = NULL;
    q->t_upstream_end = mono();
    if (res->code != HS_OK) {
        q->fail_kind = res->kind;
        if (q->outcome == NULL)
            q->outcome = fail_outcome(res->kind);
        q->error_type = q->outcome;
    }
    if (!q->started) {
        hs_buf_reset(&q->out);
        meas_end(q, end_cause(res->code == HS_OK ? HTTP_CLIENT_OK : res->kind), q->t_upstream_end,
                 NULL);
        if (res->code != HS_OK || q->status == 0 || (q->is_sse && !q->started)) {
            if (q->outcome == NULL)
                q->outcome = "gateway_error";
            done_failed_before_answer(q, res);
        } else {
            int64_t t = mono();
            HS_IGNORE_RESULT(
                add_overhead_header(q, ((q->t_send - q->t_recv) + (t - q->t_upstream_end)) / 1000));
            q->sent_status = q->status;
            q->t_client_end = t;
            record(q);
            http_respond(q->r, q->status, q->content_type[0] ? q->content_type : NULL, q->body.p,
                         q->body.len);
        }
        preq_free(q);
        return;
    }
    /* the bytes of the last read, the measurement's tail and an error
     * event are queued and leave with the final chunk in one send */
    if (q->is_dirty) {
        undirty(q);
        forward_out(q, false);
        if (q->out.len > 0) {
            q->fwd_ns += mono() - q->t_dirty;
            q->fwd_n++;
        }
    }
    hs_buf_reset(&q->out);
    meas_end(q, end_cause(res->code == HS_OK ? HTTP_CLIENT_OK : res->kind), q->t_upstream_end,
             &q->out);
    forward_out(q, false);
    if (res->code != HS_OK)
        append_stream_error(q, res->msg);
    q->t_client_end = mono();
    if (q->sampled || (q->g->otlp != NULL && (q->trace.flags & 1))) {
        record(q); /* the capture and the spans read the request */
        http_stream_end(q->r);
    } else {
        /* nothing recorded reads the request: the client's last bytes go first */
        keep_request_id(q);
        http_stream_end(q->r);
        q->r = NULL;
        record(q);
    }
    preq_free(q);
}

static void on_client_close(struct http_request *r, void *arg)
{
    (void)r;
    struct preq *q = arg;
    q->client_gone = true;
    if (q->call == NULL)
        return; /* finishing already */
    http_client_cancel(q->call);
    q->call = NULL;
    undirty(q); /* nobody to write to */
    q->t_upstream_end = mono();
    q->outcome = "client_cancelled";
    q->error_type = "client_cancelled";
    meas_end(q, GW_END_CLIENT_CANCEL, q->t_upstream_end, NULL);
    record(q);
    http_stream_end(q->r);
    preq_free(q);
}

/* ---- the request ---- */

static int op_of_path(const char *path)
{
    if (strcmp(path, "/v1/completions") == 0)
        return OP_COMPLETIONS;
    if (strcmp(path, "/v1/embeddings") == 0)
        return OP_EMBEDDINGS;
    if (strcmp(path, "/v1/responses") == 0)
        return OP_RESPONSES;
    if (strncmp(path, "/v1/", 4) != 0)
        return OP_NATIVE;
    return OP_CHAT;
}

/* Replaces the top-level "model" of 'body' (upstream_model); jansson
 * re-serialises the object, so this costs a parse: used only when asked. */
static char *rewrite_model(const char *body, size_t len, const char *model, size_t *out_len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    char *copy = NULL;
    if (json_is_object(root) && json_object_set_new(root, "model", json_string(model)) == 0) {
        char *s = json_dumps(root, JSON_COMPACT);
        if (s != NULL) {
            *out_len = strlen(s);
            copy = hs_strndup(s, *out_len);
            free(s); /* jansson allocates with malloc */
        }
    }
    json_decref(root);
    return copy;
}

static void route_not_found(struct preq *q)
{
    struct hs_buf b;
    hs_buf_init(&b, 64 << 10);
    int rc = hs_buf_printf(
        &b, "The model `%.200s` does not exist. Routed models: ", q->req_model ? q->req_model : "");
    if (rc == HS_OK)
        rc = gw_routes_list(q->gen->cfg, &b);
    fail_early(q, 404, "invalid_request_error", "model_not_found", "model",
               rc == HS_OK ? b.p : "The model does not exist.");
    hs_buf_cleanup(&b);
}

/* Parses the body (model, stream, n), routes it, injects include_usage
 * (§2.4) and rewrites the model when asked.  Answers the client and
 * returns false on a bad body or an unknown model. */
static bool prepare_body(struct preq *q, const char *body, size_t len)
{
    struct gw_request_info info;
    struct hs_err err = {0};
    if (gw_request_parse(body, len, &info, &err) != HS_OK) {
        fail_early(q, 400, "invalid_request_error", "invalid_json", NULL, err.msg);
        return false;
    }
    const char *path = http_request_path(q->r);
    q->want_stream = info.stream || strcmp(path, "/generate_stream") == 0;
    q->n = info.n;
    if (!info.has_model || info.model[0] == '\0') {
        /* §2.2: engine-native bodies carry no model; the route bound to the path serves them */
        q->route = gw_route_for_path(q->gen->cfg, path);
        if (q->route == NULL) {
            fail_early(q, 400, "invalid_request_error", "missing_model", "model",
                       "you must provide a model parameter (a string), or bind this path to "
                       "a route with `paths:`");
            return false;
        }
    } else {
        _Static_assert(sizeof(q->model_buf) == sizeof(info.model), "model sizes differ");
        memcpy(q->model_buf, info.model, sizeof(q->model_buf));
        q->req_model = q->model_buf;
        q->route = gw_route_match(q->gen->cfg, info.model);
        if (q->route == NULL) {
            route_not_found(q);
            return false;
        }
    }
    /* "/generate" is TGI's or SGLang's: the route's provider says which */
    if (q->api == GW_API_SGLANG_GENERATE && q->route->provider != NULL &&
        strcmp(q->route->provider, "tgi") == 0)
        q->api = GW_API_TGI_GENERATE;
    if (len > q->route->max_body_bytes) {
        fail_early(q, 413, "invalid_request_error", "request_too_large", NULL,
                   "the request body is larger than the route's max_body_size");
        return false;
    }
    const char *src = body;
    size_t src_len = len;
    if (q->route->upstream_model != NULL) {
        q->upstream_body =
            rewrite_model(body, len, q->route->upstream_model, &q->upstream_body_len);
        if (q->upstream_body == NULL) {
            fail_early(q, 500, "server_error", "out_of_memory", NULL, "cannot rewrite the model");
            return false;
        }
        src = q->upstream_body;
        src_len = q->upstream_body_len;
    }
    if (q->want_stream && q->route->inject_usage && !info.include_usage &&
        (q->op == OP_CHAT || q->op == OP_COMPLETIONS)) {
        struct hs_buf b;
        hs_buf_init(&b, 0);
        if (gw_request_inject_usage(src, src_len, &b, &err) != HS_OK) {
            hs_buf_cleanup(&b);
            fail_early(q, 400, "invalid_request_error", "invalid_json", NULL, err.msg);
            return false;
        }
        hs_free(q->upstream_body);
        q->upstream_body = hs_buf_detach(&b, &q->upstream_body_len);
        q->injected = true;
    }
    return true;
}

static void set_trace(struct preq *q)
{
    const char *tp = http_request_header(q->r, "traceparent");
    if (tp == NULL || gw_traceparent_parse(tp, &q->trace) != HS_OK) {
        memset(&q->trace, 0, sizeof(q->trace));
        uint64_t a = gw__rand64(q->g), b = gw__rand64(q->g);
        memcpy(q->trace.trace_id, &a, 8);
        memcpy(q->trace.trace_id + 8, &b, 8);
        double ratio = q->gen->cfg->tracing_sample_ratio;
        q->trace.flags = (double)(gw__rand64(q->g) >> 11) / 9007199254740992.0 < ratio ? 1 : 0;
    }
    uint64_t s1 = gw__rand64(q->g) | 1, s2 = gw__rand64(q->g) | 1;
    memcpy(q->server_span, &s1, 8);
    memcpy(q->client_span, &s2, 8);
}

static bool skip_client_header(const struct preq *q, const char *name)
{
    if (is_hop_by_hop(name) || strcasecmp(name, "host") == 0 ||
        strcasecmp(name, "accept-encoding") == 0 || strcasecmp(name, "traceparent") == 0 ||
        strcasecmp(name, "expect") == 0)
        return true;
    if (strcasecmp(name, "tracestate") == 0)
        return !q->trace.has_parent;
    for (size_t i = 0; i < q->route->nheaders; i++)
        if (strcasecmp(name, q->route->headers[i].name) == 0)
            return true;
    const struct gw_upstream_config *u = &q->route->upstreams[q->up];
    for (size_t i = 0; i < u->nheaders; i++)
        if (strcasecmp(name, u->headers[i].name) == 0)
            return true;
    return false;
}

static bool start_upstream(struct preq *q, const char *body, size_t len)
{
    struct http_request *r = q->r;
    struct hs_arena *a = http_request_arena(r);
    const struct gw_upstream_config *u = &q->route->upstreams[q->up];
    const char *query = http_request_query(r);
    char *url =
        hs_arena_printf(a, "%s%s%s%s", u->url, http_request_path(r), *query ? "?" : "", query);
    size_t nh = http_request_header_count(r);
    size_t cap = nh + q->route->nheaders + u->nheaders + 4;
    struct http_client_header *hs = hs_arena_alloc(a, cap * sizeof(*hs));
    char *tp = hs_arena_alloc(a, 56);
    if (url == NULL || hs == NULL || tp == NULL) {
        fail_early(q, 500, "server_error", "out_of_memory", NULL, "out of memory");
        return false;
    }
    size_t k = 0;
    for (size_t i = 0; i < nh; i++) {
        const char *name, *value;
        http_request_header_at(r, i, &name, &value);
        if (!skip_client_header(q, name))
            hs[k++] = (struct http_client_header){name, value};
    }
    for (size_t i = 0; i < q->route->nheaders; i++)
        hs[k++] =
            (struct http_client_header){q->route->headers[i].name, q->route->headers[i].value};
    for (size_t i = 0; i < u->nheaders; i++)
        hs[k++] = (struct http_client_header){u->headers[i].name, u->headers[i].value};
    gw_traceparent_format(q->trace.trace_id, q->client_span, q->trace.flags, tp);
    hs[k++] = (struct http_client_header){"traceparent", tp};
    hs[k++] = (struct http_client_header){"X-Request-Id", http_request_id(r)};
    struct http_client_req req = {0};
    req.method = "POST";
    req.url = url;
    req.headers = hs;
    req.nheaders = k;
    req.body = q->upstream_body ? q->upstream_body : body;
    req.body_len = q->upstream_body ? q->upstream_body_len : len;
    req.connect_timeout_ms = q->route->timeouts.connect_ms;
    req.first_byte_timeout_ms = q->route->timeouts.first_byte_ms;
    req.read_timeout_ms = q->route->timeouts.idle_ms;
    req.total_timeout_ms = q->route->timeouts.total_ms;
    req.max_response_bytes = q->route->max_response_bytes;
    req.is_streaming = true;
    struct http_client_callbacks cb = {on_headers, on_chunk, on_done};
    struct hs_err err = {0};
    q->t_send = mono();
    meas_new(q);
    if (http_client_request(q->g->client, &req, &cb, q, &q->call, &err) != HS_OK) {
        q->call = NULL;
        q->t_upstream_end = mono();
        q->outcome = "upstream_unreachable";
        q->error_type = "upstream_unreachable";
        q->sent_status = 502;
        q->t_client_end = mono();
        record(q);
        respond_json_error(r, 502, "upstream_error", "upstream_unreachable", NULL, err.msg);
        preq_free(q);
        return false;
    }
    http_stream_on_close(r, on_client_close, q);
    return true;
}

static void set_tenant(struct preq *q)
{
    const char *h = q->gen->cfg->tenant_header;
    const char *v = h ? http_request_header(q->r, h) : NULL;
    if (v == NULL)
        return;
    uint64_t x = hs_hash64(v, strlen(v), 0x686f6c6f); /* never the key itself */
    snprintf(q->tenant, sizeof(q->tenant), "%016llx", (unsigned long long)x);
}

static void handle_proxy(struct http_request *r, void *arg)
{
    struct gw *g = arg;
    struct preq *q = hs_calloc(1, sizeof(*q));
    if (q == NULL) {
        http_respond_error(r, 503, "gateway overloaded: out of memory");
        return;
    }
    q->t_recv = mono();
    q->t_recv_wall_ms = hs_now_ms();
    q->t_start_wall_ns = q->t_recv_wall_ms * 1000000;
    q->g = g;
    q->r = r;
    q->gen = g->gen;
    gw__gen_ref(q->gen);
    hs_buf_init(&q->body, 0);
    hs_buf_init(&q->out, 0);
    hs_buf_init(&q->captured, MAX_CAPTURE_BYTES);
    q->op = op_of_path(http_request_path(r));
    q->api = gw_api_from_path(http_request_path(r));
    atomic_fetch_add(&g->requests_inflight, 1);
    gw__metrics_inflight(g->metrics, 1);
    set_tenant(q);
    size_t len = 0;
    const char *body = http_request_body(r, &len);
    if (!prepare_body(q, body, len))
        return;
    set_trace(q);
    q->pool = q->gen->pools[gw_route_index(q->gen->cfg, q->route)];
    q->up = gw_pool_acquire(q->pool, hs_now_ms());
    q->has_up = true;
    struct capture_writer *w = atomic_load(&g->capture);
    if (w != NULL) {
        double pct = q->route->capture_percentage >= 0 ? q->route->capture_percentage
                                                       : capture_writer_sampling_percentage(w);
        q->sampled = capture_should_sample(http_request_id(r), pct);
    }
    start_upstream(q, body, len);
}

static void handle_models(struct http_request *r, void *arg)
{
    struct gw *g = arg;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    if (gw_routes_models_json(g->gen->cfg, &b) == HS_OK)
        http_respond(r, 200, "application/json", b.p, b.len);
    else
        http_respond_error(r, 500, "out of memory");
    hs_buf_cleanup(&b);
}

int gw__proxy_register(struct gw *g, struct hs_err *err)
{
    g->flush_ev = event_new(g->base, -1, 0, on_flush, g);
    if (g->flush_ev == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    static const char *const paths[] = {GW_PATHS};
    int rc = http_server_route(g->http, "GET", "/v1/models", "/v1/models", handle_models, g);
    for (size_t i = 0; i < HS_ARRAY_LEN(paths) && rc == HS_OK; i++)
        rc = http_server_route(g->http, "POST", paths[i], paths[i], handle_proxy, g);
    if (rc != HS_OK)
        return hs_err_set(err, rc, "cannot register the gateway routes");
    return HS_OK;
}
