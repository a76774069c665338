/*
 * otlp.c - OTLP/HTTP JSON span exporter: a bounded queue filled by any
 * thread, drained in batches by a thread of its own (libevent loop + the
 * http client), with retries and backoff.
 *
 * A submitted span is copied into one allocation (struct qspan: the span,
 * its attributes, then every string).  The queue is a ring of such
 * pointers under 'mu'; a full ring refuses the new span (the gateway must
 * never wait on tracing).  The exporter thread owns at most one batch at a
 * time ('batch'): taken out of the ring, encoded once, POSTed, and either
 * freed (2xx, or given up) or kept for a retry after a backoff.
 *
 * A 2xx answer may carry a partialSuccess with rejectedSpans: those count
 * as failed, the rest as exported.
 *
 * When a batch leaves: the ring holds batch_size spans (submit wakes the
 * thread), or the flush timer fires with a partial batch, or the exporter
 * is shutting down (then everything queued leaves, until the deadline).
 *
 * Wire format (OTLP JSON mapping of ExportTraceServiceRequest):
 *   {"resourceSpans":[{"resource":{"attributes":[service.name]},
 *     "scopeSpans":[{"scope":{"name":"holoscope"},"spans":[
 *       {"traceId":"32 hex","spanId":"16 hex","parentSpanId":"16 hex",
 *        "name":..,"kind":2,"startTimeUnixNano":"1700000000000000000",
 *        "endTimeUnixNano":"..","attributes":[{"key":..,"value":{AnyValue}}],
 *        "droppedAttributesCount":n,"status":{"code":2,"message":".."}}]}]}]}
 * AnyValue: stringValue, intValue (a decimal string, 64-bit integers are
 * strings in the protobuf JSON mapping), doubleValue (a number, or "NaN",
 * "Infinity", "-Infinity"), boolValue.
 */
#include "export/export.h"

#include "http/http.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

/* A queued copy of a span; 'attrs' and every string live in the same block. */
struct qspan {
    struct export_span s;
    struct export_otlp_attr *attrs;
    uint32_t dropped_attrs; /* attributes beyond max_attrs */
};

struct export_otlp {
    /* configuration (copied) */
    char *endpoint;
    char *service_name;
    struct http_client_header *headers; /* Content-Type first, then the user's */
    size_t n_headers;
    size_t queue_size, batch_size, max_attrs, max_value_bytes;
    int64_t flush_interval_ms, timeout_ms, backoff_initial_ms, backoff_max_ms;
    int max_retries;

    /* the queue, shared with submitters */
    pthread_mutex_t mu;
    struct qspan **ring;
    size_t head, len; /* ring[head] is the oldest */
    bool is_closing;  /* no more submits; drain until the deadline */
    bool has_woken;   /* a wake is pending (avoids one event per span) */

    /* exporter thread only */
    struct event_base *base;
    struct http_client *client;
    struct event *wake, *flush_timer, *retry_timer, *deadline_timer;
    pthread_t thread;
    bool has_thread;
    struct qspan **batch; /* batch_size entries */
    size_t nbatch;
    struct hs_buf body; /* encoded batch */
    int attempts;       /* failed attempts of the current batch */
    bool is_in_flight;
    bool is_backing_off;
    bool is_flush_due;
    int64_t retry_after_ms; /* from the last answer's Retry-After, 0 = none */
    int64_t sent_mono_ns;

    /* counters: written by submitters (submitted, dropped, attrs_dropped)
     * and the exporter thread (the rest); read by anyone */
    _Atomic uint64_t submitted, dropped, exported, failed, requests, request_errors, retries,
        attrs_dropped, in_batch;
    _Atomic uint64_t latency_count;
    _Atomic uint64_t latency_sum_us; /* microseconds */
    _Atomic uint64_t last_latency_us;
};

void export_otlp_config_defaults(struct export_otlp_config *c)
{
    memset(c, 0, sizeof *c);
    c->endpoint = "http://127.0.0.1:4318/v1/traces";
    c->service_name = "holoscope";
    c->queue_size = 8192;
    c->batch_size = 512;
    c->flush_interval_ms = 5000;
    c->timeout_ms = 10000;
    c->max_retries = 5;
    c->backoff_initial_ms = 500;
    c->backoff_max_ms = 30000;
    c->max_attrs = 128;
    c->max_value_bytes = 4096;
}

/* ---- encoding ---------------------------------------------------------------- */

static int put_hex(struct hs_buf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[40];
    for (size_t i = 0; i < n; i++) {
        tmp[2 * i] = digits[p[i] >> 4];
        tmp[2 * i + 1] = digits[p[i] & 15];
    }
    int rc = hs_buf_putc(b, '"');
    if (rc == HS_OK)
        rc = hs_buf_append(b, tmp, 2 * n);
    return rc == HS_OK ? hs_buf_putc(b, '"') : rc;
}

static int put_str(struct hs_buf *b, const char *s)
{
    if (!s)
        s = "";
    return hs_buf_json_str(b, s, strlen(s));
}

static int put_value(struct hs_buf *b, const struct export_otlp_attr *a)
{
    switch (a->type) {
    case EXPORT_ATTR_INT:
        return hs_buf_printf(b, "{\"intValue\":\"%lld\"}", (long long)a->v.i);
    case EXPORT_ATTR_DOUBLE:
        if (isnan(a->v.d))
            return hs_buf_puts(b, "{\"doubleValue\":\"NaN\"}");
        if (isinf(a->v.d))
            return hs_buf_puts(b, a->v.d > 0 ? "{\"doubleValue\":\"Infinity\"}"
                                             : "{\"doubleValue\":\"-Infinity\"}");
        char num[32];
        hs_format_double(a->v.d, num, sizeof num);
        return hs_buf_printf(b, "{\"doubleValue\":%s}", num);
    case EXPORT_ATTR_BOOL:
        return hs_buf_puts(b, a->v.b ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
    case EXPORT_ATTR_STRINGS: {
        int rc = hs_buf_puts(b, "{\"arrayValue\":{\"values\":[");
        const char *p = a->v.s ? a->v.s : "";
        for (bool first = true; rc == HS_OK && *p != '\0'; first = false) {
            const char *sep = strchr(p, EXPORT_ATTR_SEP);
            size_t n = sep ? (size_t)(sep - p) : strlen(p);
            rc = hs_buf_puts(b, first ? "{\"stringValue\":" : ",{\"stringValue\":");
            if (rc == HS_OK)
                rc = hs_buf_json_str(b, p, n);
            if (rc == HS_OK)
                rc = hs_buf_putc(b, '}');
            p += n + (sep != NULL);
        }
        return rc == HS_OK ? hs_buf_puts(b, "]}}") : rc;
    }
    case EXPORT_ATTR_STRING:
    default: {
        int rc = hs_buf_puts(b, "{\"stringValue\":");
        if (rc == HS_OK)
            rc = put_str(b, a->type == EXPORT_ATTR_STRING ? a->v.s : "");
        return rc == HS_OK ? hs_buf_putc(b, '}') : rc;
    }
    }
}

static int put_span(struct hs_buf *b, const struct export_span *s, uint32_t dropped_attrs)
{
    int rc = hs_buf_puts(b, "{\"traceId\":");
    if (rc == HS_OK)
        rc = put_hex(b, s->trace_id, 16);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"spanId\":");
    if (rc == HS_OK)
        rc = put_hex(b, s->span_id, 8);
    if (rc == HS_OK && s->has_parent) {
        rc = hs_buf_puts(b, ",\"parentSpanId\":");
        if (rc == HS_OK)
            rc = put_hex(b, s->parent_span_id, 8);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"name\":");
    if (rc == HS_OK)
        rc = put_str(b, s->name);
    if (rc == HS_OK)
        rc = hs_buf_printf(b,
                           ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\","
                           "\"endTimeUnixNano\":\"%lld\",\"attributes\":[",
                           s->kind, (long long)s->start_unix_ns, (long long)s->end_unix_ns);
    for (size_t i = 0; rc == HS_OK && i < s->n_attrs; i++) {
        rc = hs_buf_puts(b, i ? ",{\"key\":" : "{\"key\":");
        if (rc == HS_OK)
            rc = put_str(b, s->attrs[i].key);
        if (rc == HS_OK)
            rc = hs_buf_puts(b, ",\"value\":");
        if (rc == HS_OK)
            rc = put_value(b, &s->attrs[i]);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, '}');
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(b, ']');
    if (rc == HS_OK && dropped_attrs)
        rc = hs_buf_printf(b, ",\"droppedAttributesCount\":%u", dropped_attrs);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"status\":{\"code\":%d", s->status_code);
    if (rc == HS_OK && s->status_message && *s->status_message) {
        rc = hs_buf_puts(b, ",\"message\":");
        if (rc == HS_OK)
            rc = put_str(b, s->status_message);
    }
    return rc == HS_OK ? hs_buf_puts(b, "}}") : rc;
}

/* Encodes spans given either as an array ('arr') or as queued copies ('q'). */
static int encode(const char *service, const struct export_span *arr, struct qspan *const *q,
                  size_t n, struct hs_buf *out)
{
    size_t mark = out->len;
    int rc = hs_buf_puts(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                              "\"service.name\",\"value\":{\"stringValue\":");
    if (rc == HS_OK)
        rc = put_str(out, service ? service : "holoscope");
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"holoscope\"},"
                              "\"spans\":[");
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        if (i)
            rc = hs_buf_putc(out, ',');
        if (rc == HS_OK)
            rc = arr ? put_span(out, &arr[i], 0) : put_span(out, &q[i]->s, q[i]->dropped_attrs);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "]}]}]}");
    if (rc != HS_OK) {
        out->len = mark;
        if (out->p)
            out->p[mark] = '\0';
    }
    return rc;
}

int export_otlp_encode_json(const char *service_name, const struct export_span *spans, size_t n,
                            struct hs_buf *out)
{
    return encode(service_name, spans, NULL, n, out);
}

/* ---- copying a span ------------------------------------------------------------ */

/* Length of 's' cut to at most 'max' bytes without splitting a UTF-8 sequence. */
static size_t cut_len(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static char *put_copy(char **cursor, const char *s, size_t n)
{
    char *d = *cursor;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    *cursor += n + 1;
    return d;
}

static struct qspan *span_copy(const struct export_otlp *x, const struct export_span *s)
{
    size_t na = HS_MIN(s->n_attrs, x->max_attrs);
    size_t mv = x->max_value_bytes;
    size_t bytes = sizeof(struct qspan) + na * sizeof(struct export_otlp_attr);
    bytes += cut_len(s->name, mv) + 1 + cut_len(s->status_message, mv) + 1;
    for (size_t i = 0; i < na; i++) {
        bytes += cut_len(s->attrs[i].key, mv) + 1;
        if (s->attrs[i].type == EXPORT_ATTR_STRING || s->attrs[i].type == EXPORT_ATTR_STRINGS)
            bytes += cut_len(s->attrs[i].v.s, mv) + 1;
    }
    struct qspan *q = hs_malloc(bytes);
    if (!q)
        return NULL;
    q->s = *s;
    q->attrs = (struct export_otlp_attr *)(q + 1);
    char *cur = (char *)(q->attrs + na);
    q->s.name = put_copy(&cur, s->name, cut_len(s->name, mv));
    q->s.status_message = s->status_message
                              ? put_copy(&cur, s->status_message, cut_len(s->status_message, mv))
                              : put_copy(&cur, "", 0);
    for (size_t i = 0; i < na; i++) {
        q->attrs[i] = s->attrs[i];
        q->attrs[i].key = put_copy(&cur, s->attrs[i].key, cut_len(s->attrs[i].key, mv));
        if (s->attrs[i].type == EXPORT_ATTR_STRING || s->attrs[i].type == EXPORT_ATTR_STRINGS)
            q->attrs[i].v.s = put_copy(&cur, s->attrs[i].v.s, cut_len(s->attrs[i].v.s, mv));
    }
    q->s.attrs = q->attrs;
    q->s.n_attrs = na;
    q->dropped_attrs = (uint32_t)HS_MIN(s->n_attrs - na, UINT32_MAX);
    return q;
}

/* ---- the exporter thread --------------------------------------------------------- */

static void step(struct export_otlp *x);

static void batch_free(struct export_otlp *x)
{
    for (size_t i = 0; i < x->nbatch; i++)
        hs_free(x->batch[i]);
    x->nbatch = 0;
    atomic_store(&x->in_batch, 0);
    x->attempts = 0;
    hs_buf_reset(&x->body);
}

static void on_headers(void *arg, int status, const struct http_client_header *h, size_t n)
{
    struct export_otlp *x = arg;
    x->retry_after_ms = 0;
    if (status != 429 && status != 503)
        return;
    for (size_t i = 0; i < n; i++) {
        int64_t secs;
        if (strcasecmp(h[i].name, "Retry-After") == 0 && hs_parse_i64(h[i].value, &secs) == HS_OK &&
            secs >= 0)
            x->retry_after_ms = HS_MIN(secs, 3600) * 1000;
    }
}

static bool is_retryable(const struct http_client_result *res)
{
    if (res->code != HS_OK)
        return res->kind != HTTP_CLIENT_FAIL_TOO_BIG && res->kind != HTTP_CLIENT_FAIL_NOMEM;
    return res->status == 429 || res->status == 502 || res->status == 503 || res->status == 504;
}

/* Spans a 2xx answer reports as rejected (OTLP partial success:
 * {"partialSuccess":{"rejectedSpans":"3","errorMessage":..}}); 0 when none. */
static uint64_t rejected_spans(const char *body, size_t len)
{
    const char *k = body && len ? strstr(body, "\"rejectedSpans\"") : NULL;
    if (!k)
        return 0;
    k += strlen("\"rejectedSpans\"");
    while (*k == ' ' || *k == ':' || *k == '"')
        k++;
    uint64_t n = 0;
    for (int digits = 0; *k >= '0' && *k <= '9' && digits < 19; k++, digits++)
        n = n * 10 + (uint64_t)(*k - '0');
    return n;
}

static void on_done(void *arg, const struct http_client_result *res)
{
    struct export_otlp *x = arg;
    x->is_in_flight = false;
    uint64_t us = (uint64_t)((hs_mono_ns() - x->sent_mono_ns) / 1000);
    atomic_fetch_add(&x->latency_count, 1);
    atomic_fetch_add(&x->latency_sum_us, us);
    atomic_store(&x->last_latency_us, us);
    if (res->code == HS_OK && res->status >= 200 && res->status < 300) {
        uint64_t rejected = HS_MIN(rejected_spans(res->body, res->body_len), x->nbatch);
        if (rejected) {
            hs_log(HS_LOG_WARN, "otlp: receiver rejected spans", HS_LINT("spans", rejected));
            atomic_fetch_add(&x->failed, rejected);
        }
        atomic_fetch_add(&x->exported, x->nbatch - rejected);
        batch_free(x);
        step(x);
        return;
    }
    atomic_fetch_add(&x->request_errors, 1);
    if (is_retryable(res) && x->attempts < x->max_retries) {
        int64_t d = x->backoff_initial_ms;
        for (int k = 0; k < x->attempts && d < x->backoff_max_ms; k++)
            d *= 2;
        d = HS_MIN(d, x->backoff_max_ms);
        if (x->retry_after_ms > d)
            d = HS_MIN(x->retry_after_ms, x->backoff_max_ms);
        x->attempts++;
        x->is_backing_off = true;
        struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
        event_add(x->retry_timer, &tv);
        return;
    }
    hs_log(HS_LOG_WARN, "otlp: spans dropped", HS_LINT("spans", (int64_t)x->nbatch),
           HS_LINT("status", res->status), HS_LSTR("err", res->code ? res->msg : "HTTP error"));
    atomic_fetch_add(&x->failed, x->nbatch);
    batch_free(x);
    step(x);
}

static void send_batch(struct export_otlp *x)
{
    struct http_client_req req = {0};
    req.method = "POST";
    req.url = x->endpoint;
    req.headers = x->headers;
    req.nheaders = x->n_headers;
    req.body = x->body.p;
    req.body_len = x->body.len;
    req.connect_timeout_ms = x->timeout_ms;
    req.total_timeout_ms = x->timeout_ms;
    req.max_response_bytes = 1u << 20;
    struct http_client_callbacks cb = {on_headers, NULL, on_done};
    struct hs_err err = {0};
    if (x->attempts > 0)
        atomic_fetch_add(&x->retries, 1);
    atomic_fetch_add(&x->requests, 1);
    x->sent_mono_ns = hs_mono_ns();
    x->retry_after_ms = 0;
    if (http_client_request(x->client, &req, &cb, x, NULL, &err) != HS_OK) {
        /* a bad endpoint or no memory: no callback fires, the batch is lost */
        hs_log(HS_LOG_WARN, "otlp: cannot send", HS_LSTR("err", err.msg));
        atomic_fetch_add(&x->request_errors, 1);
        atomic_fetch_add(&x->failed, x->nbatch);
        batch_free(x);
        return;
    }
    x->is_in_flight = true;
}

/* Starts the next request if one is due; exporter thread only. */
static void pump(struct export_otlp *x)
{
    while (!x->is_in_flight && !x->is_backing_off) {
        if (x->nbatch == 0) {
            pthread_mutex_lock(&x->mu);
            bool go = x->len >= x->batch_size || (x->len > 0 && (x->is_flush_due || x->is_closing));
            if (go) {
                size_t n = HS_MIN(x->len, x->batch_size);
                for (size_t i = 0; i < n; i++)
                    x->batch[i] = x->ring[(x->head + i) % x->queue_size];
                x->head = (x->head + n) % x->queue_size;
                x->len -= n;
                x->nbatch = n;
                atomic_store(&x->in_batch, n);
            }
            if (x->len == 0)
                x->is_flush_due = false;
            pthread_mutex_unlock(&x->mu);
            if (!go)
                return;
            if (encode(x->service_name, NULL, x->batch, x->nbatch, &x->body) != HS_OK) {
                atomic_fetch_add(&x->failed, x->nbatch);
                batch_free(x);
                continue;
            }
        }
        send_batch(x);
    }
}

/* Sends what is due; when closing and nothing is left, stops the loop. */
static void step(struct export_otlp *x)
{
    pump(x);
    pthread_mutex_lock(&x->mu);
    bool done = x->is_closing && x->len == 0;
    pthread_mutex_unlock(&x->mu);
    if (done && !x->is_in_flight && x->nbatch == 0)
        event_base_loopbreak(x->base);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct export_otlp *x = arg;
    pthread_mutex_lock(&x->mu);
    x->has_woken = false;
    bool closing = x->is_closing;
    pthread_mutex_unlock(&x->mu);
    if (closing && !event_pending(x->deadline_timer, EV_TIMEOUT, NULL)) {
        struct timeval tv = {(time_t)(x->timeout_ms / 1000),
                             (suseconds_t)((x->timeout_ms % 1000) * 1000)};
        event_add(x->deadline_timer, &tv);
    }
    step(x);
}

static void on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
    struct export_otlp *x = arg;
    x->is_flush_due = true;
    on_wake(fd, what, arg);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    struct export_otlp *x = arg;
    x->is_backing_off = false;
    on_wake(fd, what, arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct export_otlp *x = arg;
    event_base_loopbreak(x->base);
}

static void *thread_main(void *arg)
{
    struct export_otlp *x = arg;
    event_base_loop(x->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------ */

static int copy_config(struct export_otlp *x, const struct export_otlp_config *c,
                       struct hs_err *err)
{
    const char *ep = c->endpoint;
    const char *host = NULL;
    if (ep && hs_has_prefix(ep, "http://"))
        host = ep + 7;
    else if (ep && hs_has_prefix(ep, "https://"))
        host = ep + 8;
    if (!host || *host == '\0' || *host == '/' || *host == ':')
        return hs_err_set(err, HS_EINVAL,
                          "otlp: endpoint \"%s\" must be an http:// or https:// URL with a host",
                          ep ? ep : "");
    if (!c->queue_size || !c->batch_size || c->flush_interval_ms <= 0 || c->timeout_ms <= 0)
        return hs_err_set(err, HS_EINVAL,
                          "otlp: queue_size, batch_size, flush_interval and timeout must be > 0");
    x->queue_size = c->queue_size;
    x->batch_size = HS_MIN(c->batch_size, c->queue_size);
    x->flush_interval_ms = c->flush_interval_ms;
    x->timeout_ms = c->timeout_ms;
    x->max_retries = HS_MAX(c->max_retries, 0);
    x->backoff_initial_ms = c->backoff_initial_ms > 0 ? c->backoff_initial_ms : 500;
    x->backoff_max_ms = HS_MAX(c->backoff_max_ms, x->backoff_initial_ms);
    x->max_attrs = c->max_attrs ? c->max_attrs : 128;
    x->max_value_bytes = c->max_value_bytes ? c->max_value_bytes : 4096;
    x->endpoint = hs_strdup(ep);
    x->service_name = hs_strdup(c->service_name ? c->service_name : "holoscope");
    x->headers = hs_calloc(c->n_headers + 1, sizeof *x->headers);
    x->ring = hs_calloc(x->queue_size, sizeof *x->ring);
    x->batch = hs_calloc(x->batch_size, sizeof *x->batch);
    if (!x->endpoint || !x->service_name || !x->headers || !x->ring || !x->batch)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    x->headers[0].name = "Content-Type";
    x->headers[0].value = "application/json";
    x->n_headers = 1;
    for (size_t i = 0; i < c->n_headers; i++) {
        const char *hn = c->headers[i].name, *hv = c->headers[i].value;
        if (!hn || !*hn || strpbrk(hn, "\r\n: ") || (hv && strpbrk(hv, "\r\n")))
            return hs_err_set(err, HS_EINVAL, "otlp: header %zu: invalid name or value", i);
    }
    for (size_t i = 0; i < c->n_headers; i++) {
        char *nm = hs_strdup(c->headers[i].name ? c->headers[i].name : "");
        char *v = hs_strdup(c->headers[i].value ? c->headers[i].value : "");
        x->headers[x->n_headers].name = nm;
        x->headers[x->n_headers].value = v;
        x->n_headers++;
        if (!nm || !v)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    return HS_OK;
}

struct export_otlp *export_otlp_new(const struct export_otlp_config *c, struct hs_err *err)
{
    if (!c) {
        hs_err_set(err, HS_EINVAL, "otlp: no configuration");
        return NULL;
    }
    if (evthread_use_pthreads() != 0) {
        hs_err_set(err, HS_EIO, "otlp: libevent has no thread support");
        return NULL;
    }
    struct export_otlp *x = hs_calloc(1, sizeof *x);
    if (!x) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&x->mu, NULL);
    hs_buf_init(&x->body, 0);
    if (copy_config(x, c, err) != HS_OK)
        goto fail;
    x->base = event_base_new();
    if (!x->base) {
        hs_err_set(err, HS_EIO, "otlp: cannot create an event loop");
        goto fail;
    }
    struct http_client_config hc;
    http_client_config_defaults(&hc);
    hc.tls = c->tls;
    x->client = http_client_new(x->base, &hc, err);
    if (!x->client)
        goto fail;
    x->wake = event_new(x->base, -1, 0, on_wake, x);
    x->flush_timer = event_new(x->base, -1, EV_PERSIST, on_flush_timer, x);
    x->retry_timer = evtimer_new(x->base, on_retry_timer, x);
    x->deadline_timer = evtimer_new(x->base, on_deadline, x);
    struct timeval tv = {(time_t)(x->flush_interval_ms / 1000),
                         (suseconds_t)((x->flush_interval_ms % 1000) * 1000)};
    if (!x->wake || !x->flush_timer || !x->retry_timer || !x->deadline_timer ||
        event_add(x->flush_timer, &tv) != 0) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        goto fail;
    }
    if (pthread_create(&x->thread, NULL, thread_main, x) != 0) {
        hs_err_set(err, HS_EIO, "otlp: cannot start the exporter thread");
        goto fail;
    }
    x->has_thread = true;
    return x;
fail:
    export_otlp_free(x);
    return NULL;
}

bool export_otlp_submit(struct export_otlp *x, const struct export_span *s)
{
    if (!x)
        return false;
    if (!s || !s->name || all_zero(s->trace_id, 16) || all_zero(s->span_id, 8) ||
        (s->n_attrs && !s->attrs)) {
        atomic_fetch_add(&x->dropped, 1);
        return false;
    }
    struct qspan *q = span_copy(x, s);
    if (!q) {
        atomic_fetch_add(&x->dropped, 1);
        return false;
    }
    bool ok = false, wake = false;
    pthread_mutex_lock(&x->mu);
    if (!x->is_closing && x->len < x->queue_size) {
        x->ring[(x->head + x->len) % x->queue_size] = q;
        x->len++;
        ok = true;
        if (x->len >= x->batch_size && !x->has_woken) {
            x->has_woken = true;
            wake = true;
        }
    }
    if (wake)
        event_active(x->wake, EV_READ, 0);
    pthread_mutex_unlock(&x->mu);
    if (!ok) {
        hs_free(q);
        atomic_fetch_add(&x->dropped, 1);
        return false;
    }
    atomic_fetch_add(&x->submitted, 1);
    if (q->dropped_attrs)
        atomic_fetch_add(&x->attrs_dropped, q->dropped_attrs);
    return true;
}

void export_otlp_get_stats(const struct export_otlp *x, struct export_otlp_stats *out)
{
    struct export_otlp *m = (struct export_otlp *)x; /* the lock, not the data, changes */
    memset(out, 0, sizeof *out);
    out->spans_submitted = atomic_load(&m->submitted);
    out->spans_dropped = atomic_load(&m->dropped);
    out->spans_exported = atomic_load(&m->exported);
    out->spans_failed = atomic_load(&m->failed);
    out->requests = atomic_load(&m->requests);
    out->request_errors = atomic_load(&m->request_errors);
    out->retries = atomic_load(&m->retries);
    out->attrs_dropped = atomic_load(&m->attrs_dropped);
    pthread_mutex_lock(&m->mu);
    out->queue_length = m->len;
    pthread_mutex_unlock(&m->mu);
    out->queue_length += atomic_load(&m->in_batch);
    out->last_latency_s = (double)atomic_load(&m->last_latency_us) / 1e6;
}

int export_otlp_metrics(void *arg, struct hs_buf *out)
{
    struct export_otlp *x = arg;
    struct export_otlp_stats st;
    export_otlp_get_stats(x, &st);
    const struct {
        const char *name, *type, *help;
        double v;
    } fams[] = {
        {"holoscope_otlp_spans_submitted_total", "counter", "Spans accepted into the OTLP queue.",
         (double)st.spans_submitted},
        {"holoscope_otlp_spans_dropped_total", "counter",
         "Spans refused: queue full, invalid or shutting down.", (double)st.spans_dropped},
        {"holoscope_otlp_spans_exported_total", "counter", "Spans acknowledged by the receiver.",
         (double)st.spans_exported},
        {"holoscope_otlp_spans_failed_total", "counter",
         "Spans given up after retries or a non-retryable answer.", (double)st.spans_failed},
        {"holoscope_otlp_requests_total", "counter", "Export requests attempted, retries included.",
         (double)st.requests},
        {"holoscope_otlp_request_errors_total", "counter", "Export requests that failed.",
         (double)st.request_errors},
        {"holoscope_otlp_retries_total", "counter", "Export requests that were retries.",
         (double)st.retries},
        {"holoscope_otlp_queue_length", "gauge", "Spans waiting to be exported.",
         (double)st.queue_length},
        {"holoscope_otlp_queue_capacity", "gauge", "Spans the queue holds at most.",
         (double)x->queue_size},
    };
    int rc = HS_OK;
    for (size_t i = 0; i < HS_ARRAY_LEN(fams) && rc == HS_OK; i++) {
        char num[32];
        hs_format_double(fams[i].v, num, sizeof num);
        rc = hs_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", fams[i].name, fams[i].help,
                           fams[i].name, fams[i].type, fams[i].name, num);
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(out,
                           "# HELP holoscope_otlp_request_duration_seconds Duration of export "
                           "requests.\n# TYPE holoscope_otlp_request_duration_seconds summary\n"
                           "holoscope_otlp_request_duration_seconds_sum %.6f\n"
                           "holoscope_otlp_request_duration_seconds_count %llu\n",
                           (double)atomic_load(&x->latency_sum_us) / 1e6,
                           (unsigned long long)atomic_load(&x->latency_count));
    return rc;
}

void export_otlp_free(struct export_otlp *x)
{
    if (!x)
        return;
    if (x->has_thread) {
        pthread_mutex_lock(&x->mu);
        x->is_closing = true;
        event_active(x->wake, EV_READ, 0);
        pthread_mutex_unlock(&x->mu);
        pthread_join(x->thread, NULL);
    }
    http_client_free(x->client); /* cancels a request still in flight: no callback */
    uint64_t left = x->nbatch + x->len;
    if (left && x->has_thread) {
        atomic_fetch_add(&x->failed, left);
        hs_log(HS_LOG_WARN, "otlp: spans not exported at shutdown", HS_LINT("spans", left));
    }
    batch_free(x);
    for (size_t i = 0; x->ring && i < x->len; i++)
        hs_free(x->ring[(x->head + i) % x->queue_size]);
    if (x->wake)
        event_free(x->wake);
    if (x->flush_timer)
        event_free(x->flush_timer);
    if (x->retry_timer)
        event_free(x->retry_timer);
    if (x->deadline_timer)
        event_free(x->deadline_timer);
    if (x->base)
        event_base_free(x->base);
    for (size_t i = 1; x->headers && i < x->n_headers; i++) {
        hs_free((char *)x->headers[i].name);
        hs_free((char *)x->headers[i].value);
    }
    hs_free(x->headers);
    hs_free(x->ring);
    hs_free(x->batch);
    hs_free(x->endpoint);
    hs_free(x->service_name);
    hs_buf_cleanup(&x->body);
    pthread_mutex_destroy(&x->mu);
    hs_free(x);
}
