/*
 * measure.c - one request's measurement: clock points, output events,
 * inter-chunk gaps, the usage-chunk stripping filter (spec/gateway.md §2.4)
 * and the settling of outcome, finish reasons and token source at the end
 * (§4.3-§4.8).  The reading of each payload's JSON lives in
 * measure_event.c.
 *
 * Forwarding state machine of a stream (only with usage_injected and a
 * forward buffer; otherwise every byte is forwarded as it is fed):
 *
 *     PASS ──(an event completes the last unfinished choice)──► HOLD
 *
 *   PASS: each feed is forwarded whole, as it arrives (§2.1).
 *   HOLD: bytes after the last complete event are held in m->held; each
 *         completed event's bytes (held part + this feed's part) are
 *         forwarded, unless the event is the usage-only chunk, which is
 *         dropped (comment and blank lines in front of it still go out;
 *         so does the LF of a CRLF split across reads).  Held bytes beyond 2 * GW_MEASURE_MAX_EVENT
 * (an endless comment stream) are flushed and stripping is given up. gw_measure_end flushes
 * whatever is still held.
 *
 * A JSON body (non-stream answer or an error status) is kept up to
 * GW_MEASURE_MAX_BODY and read once at the end.
 */
#include "gateway/measure.h"

#include "gateway/measure_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------------- */

static bool path_tail(const char *path, size_t n, const char *tail)
{
    size_t t = strlen(tail);
    return n >= t && memcmp(path + n - t, tail, t) == 0;
}

enum gw_api gw_api_from_path(const char *path)
{
    if (path == NULL)
        return GW_API_OTHER;
    size_t n = strcspn(path, "?#");
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (path_tail(path, n, "/chat/completions"))
        return GW_API_CHAT;
    if (path_tail(path, n, "/completions"))
        return GW_API_COMPLETIONS;
    if (path_tail(path, n, "/embeddings"))
        return GW_API_EMBEDDINGS;
    if (path_tail(path, n, "/responses"))
        return GW_API_RESPONSES;
    if (path_tail(path, n, "/generate_stream"))
        return GW_API_TGI_GENERATE;
    if (path_tail(path, n, "/generate"))
        return GW_API_SGLANG_GENERATE;
    if (path_tail(path, n, "/completion"))
        return GW_API_LLAMACPP_COMPLETION;
    return GW_API_OTHER;
}

const char *gw_api_operation_name(enum gw_api api)
{
    switch (api) {
    case GW_API_CHAT:
        return "chat";
    case GW_API_COMPLETIONS:
        return "text_completion";
    case GW_API_EMBEDDINGS:
        return "embeddings";
    case GW_API_RESPONSES:
        return "responses";
    case GW_API_TGI_GENERATE:
    case GW_API_LLAMACPP_COMPLETION:
    case GW_API_SGLANG_GENERATE:
        return "generate";
    default:
        return "other";
    }
}

const char *gw_outcome_name(enum gw_outcome o)
{
    static const char *const names[GW_OUTCOME_COUNT] = {
        "ok",      "http_error",           "error_midstream",  "stream_truncated",
        "timeout", "upstream_unreachable", "client_cancelled", "gateway_error"};
    if ((unsigned)o >= GW_OUTCOME_COUNT)
        return "unknown";
    return names[o];
}

const char *gw_finish_name(enum gw_finish f)
{
    static const char *const names[GW_FINISH_COUNT] = {
        "", "stop", "length", "tool_calls", "content_filter", "error", "cancelled", "unknown"};
    if ((unsigned)f >= GW_FINISH_COUNT)
        return "unknown";
    return names[f];
}

const char *gw_usage_source_name(enum gw_usage_source s)
{
    switch (s) {
    case GW_USAGE_USAGE:
        return "usage";
    case GW_USAGE_ENGINE:
        return "engine";
    case GW_USAGE_EXACT_STREAM:
        return "exact_stream";
    case GW_USAGE_CHUNK_COUNT:
        return "chunk_count";
    default:
        return "";
    }
}

static bool raw_is(const char *raw, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(raw, lit, len) == 0;
}

enum gw_finish gw_finish_normalize(enum gw_api api, const char *raw, size_t len)
{
    if (raw == NULL || len == 0)
        return GW_FINISH_NONE;
    if (raw_is(raw, len, "stop"))
        return GW_FINISH_STOP;
    if (raw_is(raw, len, "length"))
        return GW_FINISH_LENGTH;
    if (raw_is(raw, len, "tool_calls") || raw_is(raw, len, "function_call"))
        return GW_FINISH_TOOL_CALLS;
    if (raw_is(raw, len, "content_filter"))
        return GW_FINISH_CONTENT_FILTER;
    switch (api) {
    case GW_API_TGI_GENERATE:
    case GW_API_SGLANG_GENERATE: /* "/generate" may be either engine */
        if (raw_is(raw, len, "eos_token") || raw_is(raw, len, "stop_sequence"))
            return GW_FINISH_STOP;
        if (raw_is(raw, len, "abort"))
            return GW_FINISH_ERROR;
        break;
    case GW_API_LLAMACPP_COMPLETION:
        if (raw_is(raw, len, "eos") || raw_is(raw, len, "word"))
            return GW_FINISH_STOP;
        if (raw_is(raw, len, "limit"))
            return GW_FINISH_LENGTH;
        break;
    case GW_API_RESPONSES:
        if (raw_is(raw, len, "max_output_tokens"))
            return GW_FINISH_LENGTH;
        break;
    default:
        break;
    }
    return GW_FINISH_UNKNOWN;
}

/* ---- lifecycle ------------------------------------------------------------------- */

struct gw_measure *gw_measure_new(enum gw_api api, bool stream_requested, bool usage_injected,
                                  int64_t t_send_ns, size_t max_text_bytes)
{
    struct gw_measure *m = hs_calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->r.api = api;
    m->r.stream_requested = stream_requested;
    m->r.usage_injected = usage_injected;
    m->r.t_send_ns = t_send_ns;
    m->r.outcome = GW_OK;
    m->r.ttft_upstream_ns = m->r.ttfc_ns = m->r.ttfb_ns = m->r.upstream_ns = m->r.tpot_ns = -1;
    m->r.input_tokens = m->r.output_tokens = m->r.cached_tokens = m->r.reasoning_tokens = -1;
    m->r.usage_source_name = "";
    m->r.visible_output_empty = true;
    m->max_text_bytes = max_text_bytes;
    m->n_requested = 1;
    m->eng_in = m->eng_out = -1;
    gw_sse_init(&m->sse, GW_MEASURE_MAX_EVENT);
    hs_buf_init(&m->held, 0);
    hs_buf_init(&m->body, 0);
    hs_buf_init(&m->scratch, 0);
    return m;
}

void gw_measure_set_n(struct gw_measure *m, int n)
{
    m->n_requested = n < 1 ? 1 : n;
}

void gw_measure_free(struct gw_measure *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->r.n_choices; i++) {
        struct gw__choice *p = &m->priv[i];
        hs_buf_cleanup(&p->text);
        hs_buf_cleanup(&p->reasoning);
        for (size_t j = 0; j < p->ncalls; j++)
            hs_buf_cleanup(&p->tools[j].args);
        hs_free(p->calls);
        hs_free(p->tools);
    }
    hs_free(m->pub);
    hs_free(m->priv);
    hs_free(m->gaps);
    gw_sse_free(&m->sse);
    hs_buf_cleanup(&m->held);
    hs_buf_cleanup(&m->body);
    hs_buf_cleanup(&m->scratch);
    hs_free(m);
}

const struct gw_measure_result *gw_measure_result(const struct gw_measure *m)
{
    return &m->r;
}

static bool is_event_stream(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    static const char want[] = "text/event-stream";
    for (size_t i = 0; i < sizeof(want) - 1; i++) {
        char c = ct[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return false;
    }
    char next = ct[sizeof(want) - 1];
    return next == '\0' || next == ';' || next == ' ';
}

void gw_measure_response_start(struct gw_measure *m, int status, const char *content_type,
                               int64_t now_ns)
{
    m->r.status = status;
    m->r.t_resp_hdr_ns = now_ns;
    m->r.is_stream = is_event_stream(content_type) && status >= 200 && status < 300;
    m->body_wanted = !m->r.is_stream;
}

void gw_measure_header_tokens(struct gw_measure *m, int64_t prompt_tokens, int64_t generated_tokens)
{
    if (prompt_tokens >= 0)
        m->eng_in = prompt_tokens;
    if (generated_tokens >= 0)
        m->eng_out = generated_tokens;
}

/* ---- choices and output ---------------------------------------------------------- */

struct gw_choice *gw__measure_choice(struct gw_measure *m, int64_t index, struct gw__choice **priv)
{
    if (index < 0 || index >= GW_MEASURE_MAX_CHOICES) {
        m->r.dropped_choices++;
        return NULL;
    }
    size_t i = 0;
    while (i < m->r.n_choices && m->pub[i].index < index)
        i++;
    if (i < m->r.n_choices && m->pub[i].index == index) {
        *priv = &m->priv[i];
        return &m->pub[i];
    }
    if (m->r.n_choices == m->cap_choices) {
        size_t cap = m->cap_choices ? m->cap_choices * 2 : 2;
        struct gw_choice *pub = hs_reallocarray(m->pub, cap, sizeof(*pub));
        if (pub == NULL)
            goto oom;
        m->pub = pub;
        m->r.choices = pub;
        struct gw__choice *pv = hs_reallocarray(m->priv, cap, sizeof(*pv));
        if (pv == NULL)
            goto oom;
        m->priv = pv;
        m->cap_choices = cap;
        /* the public pointers into the private buffers survive: they point
         * at heap buffers, not into the arrays */
    }
    size_t tail = m->r.n_choices - i;
    memmove(&m->pub[i + 1], &m->pub[i], tail * sizeof(*m->pub));
    memmove(&m->priv[i + 1], &m->priv[i], tail * sizeof(*m->priv));
    memset(&m->pub[i], 0, sizeof(*m->pub));
    memset(&m->priv[i], 0, sizeof(*m->priv));
    m->pub[i].index = (int)index;
    m->pub[i].text = m->max_text_bytes ? "" : NULL;
    hs_buf_init(&m->priv[i].text, 0);
    hs_buf_init(&m->priv[i].reasoning, 0);
    m->r.n_choices++;
    m->r.choices = m->pub;
    *priv = &m->priv[i];
    return &m->pub[i];
oom:
    m->r.bad_events++;
    return NULL;
}

static void push_gap(struct gw_measure *m, int64_t gap)
{
    m->r.itl_count++;
    m->r.itl_sum_ns += gap;
    if (gap > m->r.itl_max_ns)
        m->r.itl_max_ns = gap;
    if (m->r.n_itl >= GW_MEASURE_MAX_GAPS)
        return;
    if (m->r.n_itl == m->cap_gaps) {
        size_t cap = m->cap_gaps ? m->cap_gaps * 2 : 64;
        if (cap > GW_MEASURE_MAX_GAPS)
            cap = GW_MEASURE_MAX_GAPS;
        int64_t *g = hs_reallocarray(m->gaps, cap, sizeof(*g));
        if (g == NULL)
            return;
        m->gaps = g;
        m->cap_gaps = cap;
        m->r.itl_ns = g;
    }
    m->gaps[m->r.n_itl++] = gap;
}

void gw__measure_output(struct gw_measure *m, struct gw_choice *c, bool visible)
{
    int64_t now = m->now_ns;
    if (c != NULL) {
        if (c->t_first_output_ns == 0)
            c->t_first_output_ns = now;
        else
            push_gap(m, now - c->t_last_output_ns);
        c->t_last_output_ns = now;
        c->output_events++;
        if (visible && c->t_first_visible_ns == 0)
            c->t_first_visible_ns = now;
    }
    if (m->r.t_first_output_ns == 0) {
        m->r.t_first_output_ns = now;
        m->r.first_output_event = m->r.events;
    }
    if (visible && m->r.t_first_visible_ns == 0)
        m->r.t_first_visible_ns = now;
    m->r.t_last_output_ns = now;
}

void gw__measure_text(struct gw_measure *m, struct hs_buf *buf, const struct gw__jval *v, bool *cut)
{
    if (m->max_text_bytes == 0)
        return;
    size_t room = buf->len < m->max_text_bytes ? m->max_text_bytes - buf->len : 0;
    /* the request as a whole keeps at most GW_MEASURE_TEXT_BUFFERS buffers'
     * worth, however many choices and tool calls the upstream invents */
    size_t budget = GW_MEASURE_TEXT_BUFFERS * m->max_text_bytes;
    size_t left = m->text_bytes < budget ? budget - m->text_bytes : 0;
    if (room > left)
        room = left;
    size_t before = buf->len;
    if (gw__jval_unescape(v, buf, room, cut) != HS_OK)
        m->r.bad_events++;
    m->text_bytes += buf->len - before;
}

/* ---- feeding ------------------------------------------------------------------------ */

static void fwd(struct gw_measure *m, const char *p, size_t n)
{
    if (m->forward == NULL || n == 0 || m->fwd_rc != HS_OK)
        return;
    m->fwd_rc = hs_buf_append(m->forward, p, n);
    if (m->fwd_rc == HS_OK)
        m->r.bytes_forwarded += n;
}

static bool all_finished(const struct gw_measure *m)
{
    size_t need = HS_MAX((size_t)m->n_requested, m->r.n_choices);
    return m->finished >= need && m->r.n_choices > 0;
}

static bool stripping(const struct gw_measure *m)
{
    return m->r.usage_injected && m->forward != NULL && !m->strip_off;
}

/* Length of the comment and blank lines that start p[0, n). */
static size_t comment_prefix(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ':' || p[i] == '\n' || p[i] == '\r')) {
        if (p[i] == ':') {
            while (i < n && p[i] != '\n' && p[i] != '\r')
                i++;
        }
        if (i < n && p[i] == '\r')
            i++;
        if (i < n && p[i] == '\n')
            i++;
    }
    return i;
}

/*
 * Drops the usage-only event whose bytes are m->held + feed[seg_start,
 * end).  Comment (keep-alive) and blank lines in front of it belong to no
 * event and still go to the client, so exactly the event is removed.
 */
static void drop_event(struct gw_measure *m, size_t end)
{
    const char *part = m->feed_data + m->seg_start;
    size_t n = end - m->seg_start;
    if (m->held.len == 0) {
        fwd(m, part, comment_prefix(part, n));
        return;
    }
    size_t k = comment_prefix(m->held.p, m->held.len);
    fwd(m, m->held.p, k);
    if (k == m->held.len)
        fwd(m, part, comment_prefix(part, n));
}

static int on_event(void *arg, const struct gw_sse_event *ev)
{
    struct gw_measure *m = arg;
    m->r.events++;
    if (m->r.t_first_event_ns == 0)
        m->r.t_first_event_ns = m->now_ns;
    m->event_usage_only = false;
    gw__measure_payload(m, ev->type, ev->type_len, ev->data, ev->data_len, false);
    if (!stripping(m))
        return 0;
    if (!m->holding) {
        if (all_finished(m)) {
            /* everything up to here goes out now; later bytes wait for
             * their event to complete */
            fwd(m, m->feed_data, ev->end_offset);
            m->seg_start = ev->end_offset;
            m->holding = true;
        }
        return 0;
    }
    /* HOLD: this event's bytes are m->held + feed[seg_start, end_offset) */
    m->last_dropped = m->event_usage_only;
    if (m->event_usage_only) {
        m->r.stripped_events++;
        drop_event(m, ev->end_offset);
    } else {
        fwd(m, m->held.p, m->held.len);
        fwd(m, m->feed_data + m->seg_start, ev->end_offset - m->seg_start);
    }
    hs_buf_reset(&m->held);
    m->seg_start = ev->end_offset;
    return 0;
}

static void give_up_stripping(struct gw_measure *m)
{
    fwd(m, m->held.p, m->held.len);
    hs_buf_reset(&m->held);
    m->holding = false;
    m->strip_off = true;
}

static void keep_body(struct gw_measure *m, const char *data, size_t len)
{
    if (m->r.body_too_large)
        return;
    if (m->body.len + len > GW_MEASURE_MAX_BODY || hs_buf_append(&m->body, data, len) != HS_OK) {
        m->r.body_too_large = true;
        hs_buf_cleanup(&m->body);
    }
}

int gw_measure_feed(struct gw_measure *m, const char *data, size_t len, int64_t now_ns,
                    struct hs_buf *forward, struct hs_err *err)
{
    if (m->r.ended || len == 0)
        return HS_OK;
    if (m->r.t_first_byte_ns == 0)
        m->r.t_first_byte_ns = now_ns;
    m->r.bytes_in += len;
    m->now_ns = now_ns;
    m->forward = forward;
    m->fwd_rc = HS_OK;
    m->feed_data = data;
    m->seg_start = 0;
    bool was_holding = m->holding;
    if (!m->r.is_stream) {
        if (m->body_wanted)
            keep_body(m, data, len);
        fwd(m, data, len);
    } else if (m->r.sse_failed) {
        fwd(m, data, len);
    } else {
        if (m->holding && m->held.len == 0 && m->sse.skip_lf && data[0] == '\n') {
            /* the LF of a CRLF that ended the last complete event belongs
             * to that event: it goes out now, or is dropped with it */
            if (!m->last_dropped)
                fwd(m, data, 1);
            m->seg_start = 1;
        }
        int rc = gw_sse_feed(&m->sse, data, len, on_event, m, NULL);
        if (rc != HS_OK) {
            /* the parser gave up (an event past the ceiling): pass the rest */
            m->r.sse_failed = true;
            if (m->holding) {
                give_up_stripping(m);
                fwd(m, data + m->seg_start, len - m->seg_start);
            } else if (!was_holding) {
                fwd(m, data, len);
            }
        } else if (m->holding) {
            size_t rest = len - m->seg_start;
            if (m->held.len + rest > 2 * (size_t)GW_MEASURE_MAX_EVENT ||
                hs_buf_append(&m->held, data + m->seg_start, rest) != HS_OK) {
                give_up_stripping(m);
                fwd(m, data + m->seg_start, rest);
            }
        } else {
            fwd(m, data + m->seg_start, len - m->seg_start);
        }
    }
    m->feed_data = NULL;
    m->forward = NULL;
    if (m->fwd_rc != HS_OK)
        return hs_err_set(err, m->fwd_rc, "gateway: cannot buffer %zu bytes for the client", len);
    return HS_OK;
}

/* ---- settling --------------------------------------------------------------------- */

static void set_error_type(struct gw_measure *m, const char *s)
{
    if (m->r.error_type[0] == '\0')
        snprintf(m->r.error_type, sizeof(m->r.error_type), "%s", s);
}

static enum gw_outcome settle_outcome(struct gw_measure *m, enum gw_end cause)
{
    if (cause == GW_END_GATEWAY_ERROR)
        return GW_GATEWAY_ERROR;
    if (m->r.status == 0) {
        if (cause == GW_END_TIMEOUT)
            return GW_TIMEOUT;
        if (cause == GW_END_CLIENT_CANCEL)
            return GW_CLIENT_CANCELLED;
        return GW_UPSTREAM_UNREACHABLE;
    }
    if (m->r.status < 200 || m->r.status >= 300)
        return GW_ERROR_UPSTREAM;
    if (m->saw_error)
        return GW_ERROR_MIDSTREAM;
    if (m->r.is_stream ? m->r.saw_terminal : cause == GW_END_EOF)
        return GW_OK;
    switch (cause) {
    case GW_END_TIMEOUT:
        return GW_TIMEOUT;
    case GW_END_CLIENT_CANCEL:
        return GW_CLIENT_CANCELLED;
    case GW_END_UNREACHABLE:
        return GW_UPSTREAM_UNREACHABLE;
    default:
        return GW_STREAM_TRUNCATED;
    }
}

static void settle_error_type(struct gw_measure *m)
{
    char tmp[16];
    switch (m->r.outcome) {
    case GW_ERROR_UPSTREAM:
        if (m->r.error_type[0] == '\0') {
            snprintf(tmp, sizeof(tmp), "%d", m->r.status);
            set_error_type(m, tmp);
        }
        break;
    case GW_ERROR_MIDSTREAM:
        if (m->r.error_type[0] == '\0')
            set_error_type(m, m->r.error_code[0] ? m->r.error_code : "error_midstream");
        break;
    case GW_STREAM_TRUNCATED:
        set_error_type(m, "stream_truncated");
        break;
    case GW_TIMEOUT:
        set_error_type(m, "timeout");
        break;
    case GW_UPSTREAM_UNREACHABLE:
        set_error_type(m, "upstream_unreachable");
        break;
    case GW_CLIENT_CANCELLED:
        set_error_type(m, "client_cancelled");
        break;
    default:
        break;
    }
}

/* Choices that never finished get error / cancelled (§4.7). */
static void settle_finish(struct gw_measure *m)
{
    enum gw_outcome o = m->r.outcome;
    bool has_choices = m->r.api != GW_API_EMBEDDINGS;
    if (has_choices && o != GW_OK && o != GW_ERROR_UPSTREAM && o != GW_GATEWAY_ERROR &&
        o != GW_UPSTREAM_UNREACHABLE && m->r.status != 0) {
        for (int i = 0; i < m->n_requested; i++) {
            struct gw__choice *pv;
            (void)gw__measure_choice(m, i, &pv);
        }
    }
    for (size_t i = 0; i < m->r.n_choices; i++) {
        struct gw_choice *c = &m->pub[i];
        if (c->finish == GW_FINISH_NONE) {
            if (o == GW_OK)
                c->finish = GW_FINISH_UNKNOWN;
            else if (o == GW_CLIENT_CANCELLED)
                c->finish = GW_FINISH_CANCELLED;
            else if (o != GW_ERROR_UPSTREAM)
                c->finish = GW_FINISH_ERROR;
        }
        if (c->finish == GW_FINISH_LENGTH)
            m->r.truncated = true;
        m->r.tool_calls += c->n_tool_calls;
        if (c->visible_chars > 0)
            m->r.visible_output_empty = false;
    }
}

static void settle_usage(struct gw_measure *m)
{
    struct gw_measure_result *r = &m->r;
    if (m->saw_usage && (r->output_tokens >= 0 || r->input_tokens >= 0)) {
        r->usage_source = GW_USAGE_USAGE;
    } else if (m->eng_out >= 0 || m->eng_in >= 0) {
        r->usage_source = GW_USAGE_ENGINE;
        r->input_tokens = m->eng_in;
        r->output_tokens = m->eng_out;
    } else if (r->engine_timings.present && r->engine_timings.predicted_n > 0) {
        /* llama.cpp: prompt_n excludes the tokens reused from the cache */
        r->usage_source = GW_USAGE_ENGINE;
        r->output_tokens = (int64_t)r->engine_timings.predicted_n;
        r->input_tokens = (int64_t)(r->engine_timings.prompt_n + r->engine_timings.cache_n);
    } else if (m->token_events > 0) {
        r->usage_source = GW_USAGE_EXACT_STREAM;
        r->output_tokens = (int64_t)m->token_events;
    } else if (r->output_events > 0) {
        r->usage_source = GW_USAGE_CHUNK_COUNT;
        r->output_tokens = (int64_t)r->output_events;
        r->input_tokens = -1;
        r->usage_estimated = true;
    }
    r->usage_source_name = gw_usage_source_name(r->usage_source);
}

static void settle_durations(struct gw_measure *m)
{
    struct gw_measure_result *r = &m->r;
    int64_t t0 = r->t_send_ns;
    if (r->t_first_byte_ns)
        r->ttfb_ns = r->t_first_byte_ns - t0;
    if (r->is_stream && r->t_first_event_ns)
        r->ttfc_ns = r->t_first_event_ns - t0;
    if (r->is_stream && r->t_first_output_ns)
        r->ttft_upstream_ns = r->t_first_output_ns - t0;
    r->upstream_ns = r->t_upstream_end_ns - t0;
    int64_t n = (int64_t)HS_MAX((size_t)m->n_requested, r->n_choices);
    bool exact = r->usage_source == GW_USAGE_USAGE || r->usage_source == GW_USAGE_ENGINE ||
                 r->usage_source == GW_USAGE_EXACT_STREAM;
    if (r->is_stream && r->outcome == GW_OK && exact && r->t_first_output_ns &&
        r->output_tokens - n >= 1)
        r->tpot_ns = (r->t_last_output_ns - r->t_first_output_ns) / (r->output_tokens - n);
}

void gw_measure_end(struct gw_measure *m, enum gw_end cause, int64_t now_ns, struct hs_buf *forward)
{
    if (m->r.ended)
        return;
    m->forward = forward;
    m->fwd_rc = HS_OK;
    m->now_ns = now_ns;
    if (m->holding || m->held.len > 0)
        give_up_stripping(m);
    m->forward = NULL;
    HS_IGNORE_RESULT(gw_sse_finish(&m->sse, NULL, NULL, NULL));
    if (!m->r.is_stream && m->body.len > 0 && !m->r.body_too_large) {
        if (m->r.status >= 200 && m->r.status < 300)
            gw__measure_payload(m, "", 0, m->body.p, m->body.len, true);
        else
            gw__measure_error_body(m, m->body.p, m->body.len);
    }
    if (m->r.t_upstream_end_ns == 0)
        m->r.t_upstream_end_ns = now_ns;
    m->r.outcome = settle_outcome(m, cause);
    settle_error_type(m);
    settle_finish(m);
    settle_usage(m);
    settle_durations(m);
    m->r.ended = true;
}
