/*
 * loadgen_measure.c - client-side measurement of one response for the
 * load generator: a thin layer over the gateway's own measurement
 * (gateway/measure.h, with its SSE parser), fed with every response chunk
 * and its arrival time, so that `holoscope bench` and the gateway define
 * TTFT, ITL, TPOT, token counts and outcomes identically (spec/gateway.md
 * §4).  This file only maps the HTTP client's view (how the response
 * ended) to the gateway's, and the gateway's outcomes to the load
 * generator's (enum loadgen_outcome):
 *
 *   transport failure (connect, DNS, TLS)     -> connect
 *   any timeout                               -> timeout
 *   broken HTTP, a ceiling passed             -> malformed
 *   gateway http_error                        -> http_4xx / http_5xx by status
 *   gateway error_midstream, stream_truncated -> same names
 *   a 2xx JSON body that is not JSON          -> malformed
 *
 * TTFT here is the gateway's upstream view, t_first_output - t_send, with
 * t_send the moment the request is handed to the HTTP client.  ITL gaps
 * are the gateway's kept gaps: the first GW_MEASURE_MAX_GAPS of each
 * request (a longer stream's later gaps are not sampled).
 */
#include "sim/loadgen.h"

#include "gateway/measure.h"
#include "sim/loadgen_internal.h"

#include <stdio.h>
#include <string.h>

struct lg_meas {
    struct gw_measure *gm;
    bool is_stream_requested;
};

struct lg_meas *lg__meas_new(bool is_chat, bool stream, int64_t t_send_ns)
{
    struct lg_meas *m = hs_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->is_stream_requested = stream;
    m->gm = gw_measure_new(is_chat ? GW_API_CHAT : GW_API_COMPLETIONS, stream, false, t_send_ns, 0);
    if (!m->gm) {
        hs_free(m);
        return NULL;
    }
    return m;
}

void lg__meas_free(struct lg_meas *m)
{
    if (!m)
        return;
    gw_measure_free(m->gm);
    hs_free(m);
}

void lg__meas_headers(struct lg_meas *m, int status, const char *content_type, int64_t now_ns)
{
    gw_measure_response_start(m->gm, status, content_type, now_ns);
}

void lg__meas_body(struct lg_meas *m, const char *data, size_t len, int64_t now_ns)
{
    /* With forward == NULL nothing can fail: the measure is always updated. */
    HS_IGNORE_RESULT(gw_measure_feed(m->gm, data, len, now_ns, NULL, NULL));
}

static enum gw_end gw_cause(int cause)
{
    switch (cause) {
    case LG_END_DONE:
        return GW_END_EOF;
    case LG_END_TIMEOUT:
        return GW_END_TIMEOUT;
    case LG_END_CONNECT:
        return GW_END_UNREACHABLE;
    case LG_END_CANCELLED:
        return GW_END_CLIENT_CANCEL;
    default:
        return GW_END_RESET;
    }
}

/* Appends 's' to the NUL-terminated 'dst' of 'cap' bytes, cutting it to fit. */
static void put_trunc(char *dst, size_t cap, const char *s)
{
    size_t used = strlen(dst);
    size_t n = strlen(s);
    if (used + 1 >= cap)
        return;
    if (n > cap - 1 - used)
        n = cap - 1 - used;
    memcpy(dst + used, s, n);
    dst[used + n] = '\0';
}

static void set_error(struct lg_meas_result *out, const struct gw_measure_result *g,
                      const char *msg)
{
    const char *type = g->error_type, *text = g->error_message;
    bool is_transport = out->outcome == LOADGEN_CONNECT || out->outcome == LOADGEN_TIMEOUT ||
                        out->outcome == LOADGEN_MALFORMED;
    out->error[0] = '\0';
    if (is_transport && msg && msg[0]) {
        put_trunc(out->error, sizeof out->error, msg); /* the HTTP client's words */
        return;
    }
    if (g->outcome == GW_ERROR_UPSTREAM) {
        char status[32];
        snprintf(status, sizeof status, "HTTP %d", g->status);
        put_trunc(out->error, sizeof out->error, status);
        if (type[0] || text[0])
            put_trunc(out->error, sizeof out->error, ": ");
    }
    put_trunc(out->error, sizeof out->error, type);
    if (type[0] && text[0])
        put_trunc(out->error, sizeof out->error, ": ");
    put_trunc(out->error, sizeof out->error, text);
    if (!out->error[0] && msg)
        put_trunc(out->error, sizeof out->error, msg);
}

static int classify(int cause, const struct gw_measure_result *g)
{
    if (cause == LG_END_CANCELLED)
        return LOADGEN_CANCELLED;
    if (cause == LG_END_CONNECT || (g->status == 0 && cause == LG_END_RESET))
        return LOADGEN_CONNECT;
    if (cause == LG_END_TIMEOUT)
        return LOADGEN_TIMEOUT;
    if (g->outcome == GW_ERROR_UPSTREAM)
        return g->status >= 400 && g->status < 500 ? LOADGEN_HTTP_4XX : LOADGEN_HTTP_5XX;
    if (cause == LG_END_MALFORMED || g->status == 0)
        return LOADGEN_MALFORMED;
    switch (g->outcome) {
    case GW_OK:
        if (!g->is_stream && (g->bad_events > 0 || g->body_too_large))
            return LOADGEN_MALFORMED;
        return LOADGEN_OK;
    case GW_ERROR_MIDSTREAM:
        return LOADGEN_ERROR_MIDSTREAM;
    case GW_STREAM_TRUNCATED:
        return LOADGEN_STREAM_TRUNCATED;
    case GW_TIMEOUT:
        return LOADGEN_TIMEOUT;
    case GW_UPSTREAM_UNREACHABLE:
        return LOADGEN_CONNECT;
    default:
        return LOADGEN_MALFORMED;
    }
}

void lg__meas_end(struct lg_meas *m, int cause, const char *msg, int64_t now_ns,
                  struct lg_meas_result *out, lg_gap_fn *gap, void *arg)
{
    memset(out, 0, sizeof *out);
    out->ttft_s = out->tpot_s = -1;
    out->input_tokens = out->output_tokens = -1;
    gw_measure_end(m->gm, gw_cause(cause), now_ns, NULL);
    const struct gw_measure_result *g = gw_measure_result(m->gm);
    out->outcome = classify(cause, g);
    if (out->outcome == LOADGEN_CANCELLED)
        return;
    if (out->outcome != LOADGEN_OK) {
        set_error(out, g, msg);
        if (!out->error[0] && out->outcome == LOADGEN_MALFORMED)
            put_trunc(out->error, sizeof out->error,
                      g->body_too_large ? "response body too large" : "response is not the API's");
    }
    if (g->is_stream && g->ttft_upstream_ns >= 0 && g->t_first_output_ns)
        out->ttft_s = (double)g->ttft_upstream_ns / 1e9;
    if (g->tpot_ns >= 0 && out->outcome == LOADGEN_OK)
        out->tpot_s = (double)g->tpot_ns / 1e9;
    for (size_t i = 0; gap && i < g->n_itl; i++)
        gap(arg, (double)g->itl_ns[i] / 1e9);
    out->input_tokens = g->input_tokens;
    out->output_tokens = g->output_tokens;
    out->is_output_estimated = g->usage_estimated;
}
