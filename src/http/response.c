/*
 * response.c - answers: fixed-length (gzip when allowed), streams, errors.
 *
 * Everything is appended to the bufferevent's output buffer and handed to
 * the socket at once (http__conn_flush: directly, or when the handler's
 * callback returns); nothing is held back, so each stream write leaves as
 * its own chunk (SSE needs that).  Every answer carries Date, X-Request-Id and, when the connection
 * is not kept, "Connection: close".  A request is finished (and its memory
 * given back) as soon as its last byte is queued.
 */
#include "http/internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <string.h>
#include <strings.h>
#include <zlib.h>

#define GZIP_MIN_BYTES 1024

const char *http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static bool has_crlf(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\r' || *s == '\n')
            return true;
    }
    return false;
}

int http_response_header(struct http_request *r, const char *name, const char *value)
{
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                           "x-request-id"};
    if (r->phase != HTTP__REQ_HELD || name == NULL || value == NULL || name[0] == '\0' ||
        has_crlf(name) || has_crlf(value) || strchr(name, ':') != NULL)
        return HS_EINVAL;
    for (size_t i = 0; i < HS_ARRAY_LEN(reserved); i++) {
        if (strcasecmp(name, reserved[i]) == 0)
            return HS_EINVAL;
    }
    struct hs_arena *a = &r->conn->arena;
    struct http__resp_hdr *h = hs_arena_alloc(a, sizeof(*h));
    if (h == NULL)
        return HS_ENOMEM;
    h->name = hs_arena_strndup(a, name, strlen(name));
    h->value = hs_arena_strndup(a, value, strlen(value));
    if (h->name == NULL || h->value == NULL)
        return HS_ENOMEM;
    h->next = NULL;
    struct http__resp_hdr **tail = &r->resp_hdrs;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = h;
    if (strcasecmp(name, "content-encoding") == 0)
        r->has_content_encoding = true;
    return HS_OK;
}

/* ---- writing ---------------------------------------------------------------- */

static void put(struct http__conn *c, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (evbuffer_add(bufferevent_get_output(c->bev), p, n) != 0)
        return; /* out of memory: the client sees a short answer */
    c->req.resp_bytes += n;
    c->srv->stats.bytes_out += n;
}

static void puts2(struct http__conn *c, const char *a, const char *b)
{
    put(c, a, strlen(a));
    put(c, b, strlen(b));
    put(c, "\r\n", 2);
}

/* Status line and headers.  clen < 0: no Content-Length. */
static void write_head(struct http__conn *c, int status, const char *ctype, int64_t clen,
                       bool chunked, bool gz, bool vary)
{
    struct http_request *r = &c->req;
    char line[96];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    put(c, line, (size_t)n);
    puts2(c, "Date: ", http__server_date(c->srv));
    if (ctype != NULL)
        puts2(c, "Content-Type: ", ctype);
    if (clen >= 0) {
        n = snprintf(line, sizeof(line), "Content-Length: %lld\r\n", (long long)clen);
        put(c, line, (size_t)n);
    }
    if (chunked)
        put(c, "Transfer-Encoding: chunked\r\n", 28);
    if (gz)
        put(c, "Content-Encoding: gzip\r\n", 24);
    if (vary)
        put(c, "Vary: Accept-Encoding\r\n", 23);
    if (!c->keep_alive)
        put(c, "Connection: close\r\n", 19);
    else if (c->parser.version_minor == 0)
        put(c, "Connection: keep-alive\r\n", 24);
    puts2(c, "X-Request-Id: ", r->id);
    for (const struct http__resp_hdr *h = r->resp_hdrs; h != NULL; h = h->next) {
        put(c, h->name, strlen(h->name));
        put(c, ": ", 2);
        put(c, h->value, strlen(h->value));
        put(c, "\r\n", 2);
    }
    put(c, "\r\n", 2);
    r->status = status;
}

/* Does Accept-Encoding allow gzip ("gzip", "x-gzip" or "*", q not 0)? */
static bool accepts_gzip(const struct http_request *r)
{
    const char *ae = http_request_header(r, "accept-encoding");
    if (ae == NULL)
        return false;
    const char *s = ae;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        const char *b = s;
        while (*s != '\0' && *s != ',' && *s != ';' && *s != ' ' && *s != '\t')
            s++;
        size_t n = (size_t)(s - b);
        bool is_gz = (n == 4 && strncasecmp(b, "gzip", 4) == 0) ||
                     (n == 6 && strncasecmp(b, "x-gzip", 6) == 0) || (n == 1 && *b == '*');
        bool q_zero = false;
        while (*s != '\0' && *s != ',') {
            if ((s[0] == 'q' || s[0] == 'Q') && s[1] == '=') {
                const char *v = s + 2;
                q_zero = v[0] == '0';
                for (v++; q_zero && *v != '\0' && *v != ',' && *v != ' ' && *v != ';'; v++)
                    q_zero = *v == '.' || *v == '0';
            }
            s++;
        }
        if (is_gz && !q_zero)
            return true;
    }
    return false;
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    return hs_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    hs_free(p);
}

/* Gzips body into the request arena; NULL when it fails or does not shrink. */
static char *gzip_body(struct hs_arena *a, const void *body, size_t len, size_t *out_len)
{
    if (len > UINT32_MAX / 2)
        return NULL;
    z_stream z;
    memset(&z, 0, sizeof(z));
    z.zalloc = z_alloc;
    z.zfree = z_free;
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)len) + 32;
    char *out = hs_arena_alloc(a, cap);
    char *res = NULL;
    if (out != NULL) {
        z.next_in = (Bytef *)(uintptr_t)body;
        z.avail_in = (uInt)len;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out < len) {
            *out_len = z.total_out;
            res = out;
        }
    }
    deflateEnd(&z);
    return res;
}

/* Decides whether the connection stays open after this answer. */
static void settle_keep_alive(struct http__conn *c)
{
    if (c->srv->is_shutting_down)
        c->keep_alive = false;
}

void http_respond(struct http_request *r, int status, const char *content_type, const void *body,
                  size_t len)
{
    if (r->phase != HTTP__REQ_HELD) {
        hs_log(HS_LOG_ERROR, "http_respond on a request that is not awaiting an answer",
               HS_LINT("status", status));
        return;
    }
    struct http__conn *c = r->conn;
    r->status = status;
    if (c->bev == NULL) {
        http__conn_request_finished(c);
        return;
    }
    settle_keep_alive(c);
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    bool vary = !no_body && len > GZIP_MIN_BYTES && !r->has_content_encoding;
    bool gz = false;
    if (vary && !r->is_head && accepts_gzip(r)) {
        size_t zlen;
        char *z = gzip_body(&c->arena, body, len, &zlen);
        if (z != NULL) {
            body = z;
            len = zlen;
            gz = true;
        }
    }
    write_head(c, status, content_type, no_body ? -1 : (int64_t)len, false, gz, vary);
    if (!r->is_head && !no_body)
        put(c, body, len);
    http__conn_request_finished(c);
}

/* Formats an error body with the server's formatter, or as plain text. */
static const char *format_error(struct http_server *s, int status, const char *msg,
                                struct hs_buf *b)
{
    const char *ctype = NULL;
    if (s->err_fmt != NULL && s->err_fmt(s->err_fmt_arg, status, msg, b, &ctype) == HS_OK &&
        ctype != NULL)
        return ctype;
    hs_buf_reset(b);
    if (hs_buf_puts(b, msg) != HS_OK || hs_buf_putc(b, '\n') != HS_OK)
        hs_buf_reset(b);
    return "text/plain; charset=utf-8";
}

void http_respond_error(struct http_request *r, int status, const char *msg)
{
    struct hs_buf b;
    hs_buf_init(&b, 64 * 1024);
    const char *ctype = format_error(r->conn->srv, status, msg, &b);
    http_respond(r, status, ctype, b.p, b.len);
    hs_buf_cleanup(&b);
}

void http__respond_protocol_error(struct http__conn *c, int status, const char *msg)
{
    struct http_server *s = c->srv;
    struct http_request *r = &c->req;
    hs_log(HS_LOG_INFO, "http request refused", HS_LINT("status", status), HS_LSTR("error", msg),
           HS_LSTR("remote", c->remote));
    if (status != 503)
        s->stats.protocol_errors++;
    if (r->id == NULL) {
        snprintf(r->id_buf, sizeof(r->id_buf), "%016llx",
                 (unsigned long long)hs_hash64(&s->id_seq, sizeof(s->id_seq), s->id_seed));
        s->id_seq++;
        r->id = r->id_buf;
    }
    r->req_bytes = c->parser.wire_bytes;
    if (r->start_ns == 0)
        r->start_ns = hs_mono_ns();
    c->keep_alive = false;
    c->needs_linger = true;
    struct hs_buf b;
    hs_buf_init(&b, 64 * 1024);
    const char *ctype = format_error(s, status, msg, &b);
    r->resp_hdrs = NULL;
    write_head(c, status, ctype, (int64_t)b.len, false, false, false);
    put(c, b.p, b.len);
    hs_buf_cleanup(&b);
    if (!c->is_rejected)
        http__request_observe(c);
    http__conn_closing(c);
}

/* ---- streams ---------------------------------------------------------------- */

static int stream_start(struct http_request *r, int status, const char *content_type, bool now)
{
    if (r->phase != HTTP__REQ_HELD)
        return HS_EINVAL;
    struct http__conn *c = r->conn;
    if (c->bev == NULL)
        return HS_ECLOSED;
    settle_keep_alive(c);
    bool chunked = c->parser.version_minor >= 1;
    if (!chunked)
        c->keep_alive = false; /* HTTP/1.0: the body ends when the connection does */
    write_head(c, status, content_type, -1, chunked && !r->is_head, false, false);
    r->phase = HTTP__REQ_STREAMING;
    if (now)
        http__conn_flush(c);
    return HS_OK;
}

int http_stream_start(struct http_request *r, int status, const char *content_type)
{
    return stream_start(r, status, content_type, true);
}

int http_stream_start_lazy(struct http_request *r, int status, const char *content_type)
{
    return stream_start(r, status, content_type, false);
}

/* Queues one chunk; hands the output to the socket when 'now'. */
static int stream_put(struct http_request *r, const void *data, size_t len, bool now)
{
    if (r->phase != HTTP__REQ_STREAMING)
        return HS_EINVAL;
    struct http__conn *c = r->conn;
    if (c->bev == NULL)
        return HS_ECLOSED;
    if (len == 0 || r->is_head)
        return HS_OK;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->parser.version_minor >= 1) {
        char line[24];
        int n = snprintf(line, sizeof(line), "%zx\r\n", len);
        if (evbuffer_expand(out, (size_t)n + len + 2) != 0)
            return HS_ENOMEM;
        put(c, line, (size_t)n);
        put(c, data, len);
        put(c, "\r\n", 2);
    } else {
        if (evbuffer_add(out, data, len) != 0)
            return HS_ENOMEM;
        r->resp_bytes += len;
        c->srv->stats.bytes_out += len;
    }
    if (now)
        http__conn_flush(c);
    if (evbuffer_get_length(out) > c->srv->cfg.stream_low_water_bytes)
        r->drain_armed = true;
    return HS_OK;
}

int http_stream_write(struct http_request *r, const void *data, size_t len)
{
    return stream_put(r, data, len, true);
}

int http_stream_queue(struct http_request *r, const void *data, size_t len)
{
    return stream_put(r, data, len, false);
}

void http_stream_flush(struct http_request *r)
{
    if (r->phase == HTTP__REQ_STREAMING && r->conn->bev != NULL)
        http__conn_flush(r->conn);
}

size_t http_stream_pending(const struct http_request *r)
{
    const struct http__conn *c = r->conn;
    return c->bev != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

void http_stream_on_drain(struct http_request *r, http_request_cb *fn, void *arg)
{
    r->on_drain = fn;
    r->on_drain_arg = arg;
}

void http_stream_on_close(struct http_request *r, http_request_cb *fn, void *arg)
{
    r->on_close = fn;
    r->on_close_arg = arg;
}

void http_stream_end(struct http_request *r)
{
    if (r->phase != HTTP__REQ_STREAMING) {
        if (r->phase == HTTP__REQ_HELD)
            http_request_release(r);
        return;
    }
    struct http__conn *c = r->conn;
    if (c->bev != NULL && c->parser.version_minor >= 1 && !r->is_head)
        put(c, "0\r\n\r\n", 5);
    http__conn_request_finished(c);
}

void http_request_release(struct http_request *r)
{
    struct http__conn *c = r->conn;
    if (r->phase == HTTP__REQ_HELD) {
        if (c->bev == NULL)
            http__conn_request_finished(c);
        else
            http_respond_error(r, 500, "request released without an answer");
        return;
    }
    if (r->phase != HTTP__REQ_STREAMING)
        return;
    if (c->bev == NULL) {
        http__conn_request_finished(c);
        return;
    }
    /* A stream cut short: the client must not take it for a whole body. */
    r->close_fired = true;
    c->keep_alive = false;
    http__conn_close(c);
    http__conn_request_finished(c);
}
