/*
 * client.c - the asynchronous HTTP/1.1 client: connection pool, request
 * state machine, timeouts, gzip, streaming with backpressure, statistics.
 *
 * A call goes through these phases (enum call_phase):
 *
 *   START --(pooled connection)--------------------------> WAIT
 *   START --resolve--> CONNECT --TCP (+TLS) connected--> WAIT
 *   WAIT  --response headers--> BODY --last byte--> done (on_done)
 *   any   --error or timeout--> done (on_done)  |  any --cancel--> freed silently
 *
 * The start runs from a zero-delay event so on_done never fires inside
 * http_client_request.  Timeouts: one timer for the phase (connect, first
 * byte, gap between body reads) and one for the whole call.
 *
 * Re-entrancy: user callbacks may cancel or pause the call.  'depth'
 * counts the client frames using the call; a call that was finished or
 * cancelled is freed when the outermost frame leaves.  A connection is
 * closed (bufferevent freed) as soon as it is not wanted; libevent defers
 * the real free when that happens inside one of its callbacks.
 *
 * Pool: idle connections sit in one list, newest first, keyed by origin;
 * at most max_idle_per_host per origin.  An idle connection that becomes
 * readable (data or EOF) or passes idle_timeout_ms is closed.  A GET or
 * HEAD that finds its reused connection closed before any response byte is
 * retried once on a fresh connection.
 */
#include "http/http.h"
#include "http/internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CLIENT_DEFAULT_MAX_BODY (64ull << 20)
#define INFLATE_OUT             16384
#define READ_MORE_AFTER         4096       /* libevent's largest single read */
#define READ_MORE_BYTES         (64 << 10) /* read_more: at most this per read */

enum call_phase { PH_START = 0, PH_CONNECT, PH_WAIT, PH_BODY, PH_DONE };

struct cconn {
    struct http_client *client;
    struct cconn *prev, *next; /* in client->idle while idle */
    char *origin;              /* pool key */
    struct bufferevent *bev;
    struct event *idle_timer;
    struct http_client_call *call; /* NULL while idle */
    bool is_connected;
    bool is_eof;  /* the peer closed; buffered input may remain */
    bool is_idle; /* in the pool */
};

struct http_client_call {
    struct http_client *client;
    struct http_client_call *prev, *next; /* client->calls */
    struct http_client_callbacks cb;
    void *arg;
    struct http__url url;
    struct hs_buf out; /* the request bytes */
    bool is_head, is_idempotent;
    int64_t connect_ms, first_byte_ms, read_ms;
    uint64_t max_body;
    bool is_gzip_ok, is_streaming;
    int phase;
    struct event *kick;  /* deferred start / resume */
    struct event *timer; /* phase deadline */
    struct event *total_timer;
    struct addrinfo *ai, *ai_next; /* resolved addresses, the next to try */
    struct lookup *lookup;         /* name lookup in flight */
    struct event *lookup_ev;       /* its completion */
    struct cconn *conn;
    struct http__rparser parser;
    int depth;
    bool is_paused, is_cancelled, is_finished, is_reused, is_retried;
    bool is_inflating, is_inflate_done;
    z_stream z;
    struct hs_buf body;
    uint64_t delivered;
};

struct http_client {
    struct event_base *base;
    struct http_client_config cfg;
    char *tls_strings[4]; /* owned copies of the tls file names and server name */
    SSL_CTX *ssl_ctx;
    struct cconn *idle;
    struct http_client_call *calls;
    struct http_client_stats stats;
};

static void process_input(struct http_client_call *call);
static void start_connect(struct http_client_call *call);
static void lookup_abandon(struct http_client_call *call);
static void fail(struct http_client_call *call, int kind, int code, const char *fmt, ...)
    HS_PRINTF(4, 5);

void http_client_config_defaults(struct http_client_config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_idle_per_host = 4;
    c->idle_timeout_ms = 90000;
    c->max_header_bytes = 64 * 1024;
}

/* ---- connections ------------------------------------------------------------- */

static void idle_unlink(struct cconn *k)
{
    if (!k->is_idle)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        k->client->idle = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    k->is_idle = false;
    k->client->stats.connections_idle--;
}

static void conn_close(struct cconn *k)
{
    if (k == NULL)
        return;
    idle_unlink(k);
    if (k->idle_timer)
        event_free(k->idle_timer);
    if (k->bev)
        bufferevent_free(k->bev);
    hs_free(k->origin);
    hs_free(k);
}

static void idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_close(arg);
}

/* Returns a finished call's connection to the pool, or closes it. */
static void conn_release(struct http_client_call *call, bool is_reusable)
{
    struct cconn *k = call->conn;
    struct http_client *c = call->client;
    call->conn = NULL;
    if (k == NULL)
        return;
    k->call = NULL;
    size_t same = 0;
    for (struct cconn *i = c->idle; i; i = i->next)
        same += strcmp(i->origin, k->origin) == 0;
    if (!is_reusable || k->is_eof || same >= c->cfg.max_idle_per_host ||
        evbuffer_get_length(bufferevent_get_input(k->bev)) != 0) {
        conn_close(k);
        return;
    }
    if (k->idle_timer == NULL)
        k->idle_timer = evtimer_new(c->base, idle_timeout_cb, k);
    if (k->idle_timer == NULL) {
        conn_close(k);
        return;
    }
    struct timeval tv = {(time_t)(c->cfg.idle_timeout_ms / 1000),
                         (suseconds_t)(c->cfg.idle_timeout_ms % 1000) * 1000};
    evtimer_add(k->idle_timer, &tv);
    bufferevent_enable(k->bev, EV_READ);
    k->next = c->idle;
    k->prev = NULL;
    if (c->idle)
        c->idle->prev = k;
    c->idle = k;
    k->is_idle = true;
    c->stats.connections_idle++;
}

static struct cconn *pool_take(struct http_client *c, const char *origin)
{
    for (struct cconn *k = c->idle; k; k = k->next) {
        if (strcmp(k->origin, origin) == 0) {
            idle_unlink(k);
            evtimer_del(k->idle_timer);
            return k;
        }
    }
    return NULL;
}

/* ---- name lookups ----------------------------------------------------------------
 * getaddrinfo blocks, so names that are not numeric addresses are looked up
 * on a short-lived detached thread.  The thread and the call share a
 * 'struct lookup' (two references); the thread stores its result, writes a
 * byte to its end of a socket pair and drops its reference.  The loop side
 * reads the byte from an event on the other end.  A call cancelled (or a
 * client freed) meanwhile just closes its end and drops its reference; the
 * last one out frees the struct and any result.
 */
struct lookup {
    atomic_int refs;
    int fds[2]; /* [0]: loop side, [1]: thread side */
    char *host;
    char port[8];
    struct addrinfo *ai; /* result, written by the thread */
    int rc;              /* getaddrinfo result */
};

static void lookup_unref(struct lookup *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    if (l->ai)
        freeaddrinfo(l->ai);
    hs_free(l->host);
    hs_free(l);
}

static void *lookup_main(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    l->rc = getaddrinfo(l->host, l->port, &hints, &l->ai);
    HS_IGNORE_RESULT(send(l->fds[1], "x", 1, MSG_NOSIGNAL) < 0);
    close(l->fds[1]);
    lookup_unref(l);
    return NULL;
}

/* The call no longer wants the lookup's answer. */
static void lookup_abandon(struct http_client_call *call)
{
    event_free(call->lookup_ev);
    close(call->lookup->fds[0]);
    lookup_unref(call->lookup);
    call->lookup = NULL;
    call->lookup_ev = NULL;
}

static void lookup_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_client_call *call = arg;
    struct lookup *l = call->lookup;
    char b;
    HS_IGNORE_RESULT(recv(fd, &b, 1, 0) < 0);
    int rc = l->rc;
    call->ai = l->ai;
    l->ai = NULL;
    lookup_abandon(call);
    if (rc != 0 || call->ai == NULL) {
        if (call->ai)
            freeaddrinfo(call->ai);
        call->ai = NULL;
        fail(call, HTTP_CLIENT_FAIL_DNS, HS_ENOTFOUND, "%s: cannot resolve \"%s\": %s",
             call->url.origin, call->url.host, gai_strerror(rc));
        return;
    }
    call->ai_next = call->ai;
    start_connect(call);
}

/* Starts a lookup thread.  HS_OK or an error (nothing to undo). */
static int lookup_start(struct http_client_call *call, const char *port)
{
    struct lookup *l = hs_calloc(1, sizeof(*l));
    if (l == NULL)
        return HS_ENOMEM;
    l->host = hs_strdup(call->url.host);
    snprintf(l->port, sizeof(l->port), "%s", port);
    if (l->host == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l->fds) != 0) {
        hs_free(l->host);
        hs_free(l);
        return HS_ENOMEM;
    }
    call->lookup_ev = event_new(call->client->base, l->fds[0], EV_READ, lookup_done_cb, call);
    pthread_attr_t attr;
    pthread_t th;
    atomic_init(&l->refs, 2);
    bool is_started = false;
    if (call->lookup_ev != NULL && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        is_started = pthread_create(&th, &attr, lookup_main, l) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!is_started) {
        if (call->lookup_ev)
            event_free(call->lookup_ev);
        call->lookup_ev = NULL;
        close(l->fds[0]);
        close(l->fds[1]);
        hs_free(l->host);
        hs_free(l);
        return HS_ENOMEM;
    }
    call->lookup = l;
    event_add(call->lookup_ev, NULL);
    return HS_OK;
}

/* ---- finishing a call ----------------------------------------------------------- */

static void call_free(struct http_client_call *call)
{
    struct http_client *c = call->client;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    conn_close(call->conn);
    if (call->kick)
        event_free(call->kick);
    if (call->timer)
        event_free(call->timer);
    if (call->total_timer)
        event_free(call->total_timer);
    if (call->ai)
        freeaddrinfo(call->ai);
    if (call->lookup)
        lookup_abandon(call);
    if (call->is_inflating)
        inflateEnd(&call->z);
    http__rparser_cleanup(&call->parser);
    http__url_cleanup(&call->url);
    hs_buf_cleanup(&call->out);
    hs_buf_cleanup(&call->body);
    hs_free(call);
}

static void enter(struct http_client_call *call)
{
    call->depth++;
}

/* Leaves a frame; false when the call is gone or done (stop using it). */
static bool leave(struct http_client_call *call)
{
    bool is_over = call->is_cancelled || call->is_finished;
    if (--call->depth == 0 && is_over)
        call_free(call);
    return !is_over;
}

static void stop_timers(struct http_client_call *call)
{
    event_del(call->timer);
    event_del(call->total_timer);
    event_del(call->kick);
}

/* Ends the call and fires on_done once.  'res' is filled but for counters. */
static void finish(struct http_client_call *call, struct http_client_result *res, bool is_reusable)
{
    if (call->is_finished || call->is_cancelled)
        return;
    stop_timers(call);
    conn_release(call, is_reusable && res->code == HS_OK);
    call->is_finished = true;
    call->phase = PH_DONE;
    if (res->code == HS_OK)
        call->client->stats.requests_ok++;
    else
        call->client->stats.errors[res->kind]++;
    enter(call);
    call->cb.on_done(call->arg, res);
    leave(call);
}

static void fail(struct http_client_call *call, int kind, int code, const char *fmt, ...)
    HS_PRINTF(4, 5);
static void fail(struct http_client_call *call, int kind, int code, const char *fmt, ...)
{
    struct http_client_result res;
    memset(&res, 0, sizeof(res));
    res.code = code;
    res.kind = kind;
    res.status = call->parser.status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res.msg, sizeof(res.msg), fmt, ap);
    va_end(ap);
    hs_log(HS_LOG_DEBUG, "http client request failed", HS_LSTR("origin", call->url.origin),
           HS_LSTR("error", res.msg));
    finish(call, &res, false);
}

static void succeed(struct http_client_call *call)
{
    if (call->is_inflating && !call->is_inflate_done) {
        fail(call, HTTP_CLIENT_FAIL_MALFORMED, HS_EPARSE, "%s: gzip body is truncated",
             call->url.origin);
        return;
    }
    struct http_client_result res;
    memset(&res, 0, sizeof(res));
    res.status = call->parser.status;
    if (!call->is_streaming) {
        res.body = call->body.p ? call->body.p : "";
        res.body_len = call->body.len;
    }
    finish(call, &res, call->parser.keep_alive);
}

/* ---- timers --------------------------------------------------------------------- */

static void arm(struct event *ev, int64_t ms)
{
    if (ms <= 0) {
        event_del(ev);
        return;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(ev, &tv);
}

static void phase_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_client_call *call = arg;
    const char *o = call->url.origin;
    if (call->phase == PH_CONNECT)
        fail(call, HTTP_CLIENT_FAIL_TIMEOUT_CONNECT, HS_ETIMEDOUT,
             "%s: connect timeout after %lld ms", o, (long long)call->connect_ms);
    else if (call->phase == PH_WAIT)
        fail(call, HTTP_CLIENT_FAIL_TIMEOUT_FIRST_BYTE, HS_ETIMEDOUT,
             "%s: no response headers within %lld ms", o, (long long)call->first_byte_ms);
    else
        fail(call, HTTP_CLIENT_FAIL_TIMEOUT_READ, HS_ETIMEDOUT,
             "%s: no body bytes for %lld ms (read timeout)", o, (long long)call->read_ms);
}

static void total_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_client_call *call = arg;
    fail(call, HTTP_CLIENT_FAIL_TIMEOUT_TOTAL, HS_ETIMEDOUT, "%s: request timed out (total)",
         call->url.origin);
}

/* ---- body delivery -------------------------------------------------------------- */

/* Hands decoded bytes to the caller.  False when the call ended. */
static bool emit(struct http_client_call *call, const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (call->delivered + n > call->max_body) {
        fail(call, HTTP_CLIENT_FAIL_TOO_BIG, HS_ETOOBIG, "%s: response body exceeds %llu bytes",
             call->url.origin, (unsigned long long)call->max_body);
        return false;
    }
    call->delivered += n;
    if (!call->is_streaming) {
        if (hs_buf_append(&call->body, p, n) != HS_OK) {
            fail(call, HTTP_CLIENT_FAIL_NOMEM, HS_ENOMEM, "out of memory");
            return false;
        }
        return true;
    }
    enter(call);
    call->cb.on_body_chunk(call->arg, p, n);
    return leave(call);
}

static bool inflate_body(struct http_client_call *call, const char *p, size_t n)
{
    unsigned char out[INFLATE_OUT];
    call->z.next_in = (unsigned char *)(uintptr_t)p;
    call->z.avail_in = (uInt)n;
    while (!call->is_inflate_done) {
        call->z.next_out = out;
        call->z.avail_out = sizeof(out);
        int zr = inflate(&call->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            call->is_inflate_done = true;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            fail(call, HTTP_CLIENT_FAIL_MALFORMED, HS_EPARSE, "%s: bad gzip body: %s",
                 call->url.origin, call->z.msg ? call->z.msg : "inflate failed");
            return false;
        }
        size_t got = sizeof(out) - call->z.avail_out;
        if (!emit(call, (const char *)out, got))
            return false;
        if (call->z.avail_in == 0 && call->z.avail_out != 0)
            break;
        if (zr == Z_BUF_ERROR && got == 0)
            break;
    }
    return true;
}

static bool on_headers(struct http_client_call *call)
{
    struct http__rparser *p = &call->parser;
    call->phase = PH_BODY;
    arm(call->timer, call->is_paused ? 0 : call->read_ms);
    if (p->is_chunked == false && !p->is_close_delimited && !p->is_gzip &&
        p->content_length > call->max_body) {
        fail(call, HTTP_CLIENT_FAIL_TOO_BIG, HS_ETOOBIG,
             "%s: response Content-Length %llu exceeds %llu bytes", call->url.origin,
             (unsigned long long)p->content_length, (unsigned long long)call->max_body);
        return false;
    }
    if (p->is_gzip && call->is_gzip_ok && !call->is_head) {
        memset(&call->z, 0, sizeof(call->z));
        if (inflateInit2(&call->z, 15 + 32) != Z_OK) {
            fail(call, HTTP_CLIENT_FAIL_NOMEM, HS_ENOMEM, "cannot start gzip decoding");
            return false;
        }
        call->is_inflating = true;
    }
    if (call->cb.on_headers == NULL)
        return true;
    struct http_client_header h[HTTP__RESP_MAX_HEADERS];
    for (size_t i = 0; i < p->nhdrs; i++) {
        h[i].name = http__rparser_hdr_name(p, i);
        h[i].value = http__rparser_hdr_value(p, i);
    }
    enter(call);
    call->cb.on_headers(call->arg, p->status, h, p->nhdrs);
    return leave(call);
}

/* ---- reading -------------------------------------------------------------------- */

static void parse_failed(struct http_client_call *call, int rc, const struct hs_err *e)
{
    int kind = rc == HS_ETOOBIG  ? HTTP_CLIENT_FAIL_TOO_BIG
               : rc == HS_ENOMEM ? HTTP_CLIENT_FAIL_NOMEM
                                 : HTTP_CLIENT_FAIL_MALFORMED;
    const char *what = kind == HTTP_CLIENT_FAIL_MALFORMED ? "malformed response"
                       : kind == HTTP_CLIENT_FAIL_TOO_BIG ? "response too big"
                                                          : "cannot read the response";
    fail(call, kind, rc, "%s: %s: %s", call->url.origin, what, e->msg);
}

/* The peer closed (or reset) the connection with the call still reading. */
static void conn_ended(struct http_client_call *call, int sock_err)
{
    struct hs_err e;
    hs_err_clear(&e);
    if (call->is_reused && call->parser.wire_bytes == 0 && call->is_idempotent &&
        !call->is_retried) {
        /* The pooled connection was closed by the server while idle. */
        call->is_retried = true;
        conn_close(call->conn);
        call->conn = NULL;
        call->is_reused = false;
        http__rparser_reset(&call->parser, call->is_head);
        start_connect(call);
        return;
    }
    int rc = sock_err == 0 ? http__rparser_eof(&call->parser, &e) : HS_ECLOSED;
    if (rc == HTTP__EV_DONE) {
        succeed(call);
    } else if (sock_err != 0) {
        fail(call, HTTP_CLIENT_FAIL_RESET, HS_ECLOSED, "%s: connection reset: %s", call->url.origin,
             evutil_socket_error_to_string(sock_err));
    } else {
        fail(call, HTTP_CLIENT_FAIL_RESET, HS_ECLOSED, "%s: %s", call->url.origin, e.msg);
    }
}

/* Feeds buffered input to the parser until it runs out, the call pauses or
 * ends. */
static void process_input(struct http_client_call *call)
{
    enter(call);
    while (!call->is_paused && !call->is_finished && !call->is_cancelled && call->conn) {
        struct evbuffer *in = bufferevent_get_input(call->conn->bev);
        struct evbuffer_iovec v = {.iov_base = (void *)"", .iov_len = 0};
        bool is_empty = evbuffer_get_length(in) == 0;
        if (!is_empty && evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = 0, blen = 0;
        const char *body = NULL;
        struct hs_err e;
        hs_err_clear(&e);
        int rc = http__rparser_feed(&call->parser, v.iov_base, v.iov_len, &used, &body, &blen, &e);
        if (rc != HTTP__EV_BODY)
            evbuffer_drain(in, used);
        if (rc == HS_EAGAIN && is_empty) { /* a feed of nothing: the response is not complete */
            if (call->conn->is_eof)
                conn_ended(call, 0);
            break;
        }
        if (rc == HS_EAGAIN)
            continue;
        if (rc < 0) {
            parse_failed(call, rc, &e);
        } else if (rc == HTTP__EV_HEADERS) {
            if (!on_headers(call))
                break;
        } else if (rc == HTTP__EV_BODY) {
            bool ok = call->is_inflating ? inflate_body(call, body, blen) : emit(call, body, blen);
            if (!ok)
                break;
            evbuffer_drain(in, used);
        } else if (rc == HTTP__EV_DONE) {
            succeed(call);
        }
    }
    leave(call);
}

/* libevent reads at most 4 KiB per readiness event, so a large answer
 * costs a loop round (and an ioctl, a readv, a relay write) per 4 KiB.
 * After a read that may have left more behind, this takes what else the
 * socket holds in one readv (plain TCP only; TLS reads through OpenSSL).
 * End of file is left for the bufferevent to see on its next read; an
 * error is handed to event_cb as the bufferevent would, once the data
 * before it has been delivered. */
static void read_more(struct cconn *k, struct http_client_call *call)
{
    struct evbuffer *in = bufferevent_get_input(k->bev);
    if (call->url.is_tls || call->is_paused || evbuffer_get_length(in) < READ_MORE_AFTER)
        return;
    struct evbuffer_iovec v[2];
    evbuffer_unfreeze(in, 0); /* bufferevents freeze their input's end */
    int n = evbuffer_reserve_space(in, READ_MORE_BYTES, v, 2);
    if (n > 0) {
        struct iovec iov[2];
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        ssize_t got = readv(bufferevent_getfd(k->bev), iov, n);
        int serr = errno;
        size_t left = got > 0 ? (size_t)got : 0;
        int used = 0;
        for (; used < n && left > 0; used++) {
            if (v[used].iov_len > left)
                v[used].iov_len = left;
            left -= v[used].iov_len;
        }
        evbuffer_commit_space(in, v, used);
        if (got < 0 && serr != EAGAIN && serr != EWOULDBLOCK && serr != EINTR) {
            bufferevent_disable(k->bev, EV_READ);
            errno = serr;
            bufferevent_trigger_event(k->bev, BEV_EVENT_READING | BEV_EVENT_ERROR,
                                      BEV_TRIG_DEFER_CALLBACKS);
        }
    }
    evbuffer_freeze(in, 0);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct cconn *k = arg;
    struct http_client_call *call = k->call;
    if (call == NULL) { /* an idle connection must stay silent */
        conn_close(k);
        return;
    }
    if (call->phase == PH_BODY && !call->is_paused)
        arm(call->timer, call->read_ms);
    read_more(k, call);
    process_input(call);
}

/* Writes the request straight to a connected plain socket; returns the
 * bytes the kernel took (0 when it took none or the bufferevent must
 * write, which then also reports any error). */
static size_t send_direct(struct cconn *k, const struct http_client_call *call)
{
    if (call->url.is_tls || !k->is_connected ||
        evbuffer_get_length(bufferevent_get_output(k->bev)) != 0)
        return 0;
    ssize_t w = send(bufferevent_getfd(k->bev), call->out.p, call->out.len, MSG_NOSIGNAL);
    return w > 0 ? (size_t)w : 0;
}

static void send_request(struct http_client_call *call)
{
    struct cconn *k = call->conn;
    call->phase = PH_WAIT;
    arm(call->timer, call->first_byte_ms);
    http__rparser_reset(&call->parser, call->is_head);
    size_t sent = send_direct(k, call);
    if (sent == call->out.len) {
        if (!call->is_paused)
            bufferevent_enable(k->bev, EV_READ);
        return;
    }
    if (bufferevent_write(k->bev, call->out.p + sent, call->out.len - sent) != 0) {
        fail(call, HTTP_CLIENT_FAIL_NOMEM, HS_ENOMEM, "cannot queue the request");
        return;
    }
    bufferevent_enable(k->bev, call->is_paused ? EV_WRITE : EV_READ | EV_WRITE);
}

static void connect_failed(struct http_client_call *call, struct cconn *k, short what, int serr)
{
    bool is_tls_failure = false;
    char msg[200] = "";
    /* Any failure before the connection is up moves on to the next resolved
     * address while there is one: "localhost" resolves to ::1 before
     * 127.0.0.1 on a stock Debian, and over TLS a refused connection is
     * reported by the TLS layer, not as a socket error.  A real TLS
     * failure then repeats on the last address and is reported there. */
    if (call->ai_next != NULL) {
        conn_close(call->conn);
        call->conn = NULL;
        start_connect(call);
        return;
    }
    if (call->url.is_tls) {
        unsigned long oe = bufferevent_get_openssl_error(k->bev);
        SSL *ssl = bufferevent_openssl_get_ssl(k->bev);
        if (oe != 0 || (ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK) ||
            (serr == 0 && (what & BEV_EVENT_EOF))) {
            is_tls_failure = true;
            http__tls_describe_failure(ssl, oe, msg, sizeof(msg));
        }
    }
    if (is_tls_failure) {
        fail(call, HTTP_CLIENT_FAIL_TLS, HS_EIO, "%s: %s", call->url.origin, msg);
        return;
    }
    conn_close(call->conn);
    call->conn = NULL;
    fail(call, HTTP_CLIENT_FAIL_CONNECT, HS_EIO, "%s: connect failed: %s", call->url.origin,
         serr ? evutil_socket_error_to_string(serr) : "connection closed");
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct cconn *k = arg;
    struct http_client_call *call = k->call;
    int serr = EVUTIL_SOCKET_ERROR();
    if (call == NULL) { /* idle: the peer closed or something broke */
        conn_close(k);
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        k->is_connected = true;
        send_request(call);
        return;
    }
    if (!k->is_connected) {
        connect_failed(call, k, what, (what & BEV_EVENT_ERROR) ? serr : 0);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        k->is_eof = true;
        process_input(call); /* delivers what is left, then ends the call */
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long oe = call->url.is_tls ? bufferevent_get_openssl_error(bev) : 0;
        if (oe != 0) {
            char msg[200];
            http__tls_describe_failure(NULL, oe, msg, sizeof(msg));
            fail(call, HTTP_CLIENT_FAIL_RESET, HS_ECLOSED, "%s: %s", call->url.origin, msg);
            return;
        }
        conn_ended(call, serr ? serr : ECONNRESET);
    }
}

/* ---- starting ------------------------------------------------------------------- */

/* Resolves the host: numeric addresses at once (HS_OK), names on a lookup
 * thread (HS_EAGAIN: start_connect runs again with the answer).  On failure
 * the call has been failed. */
static int resolve(struct http_client_call *call)
{
    const char *host = call->url.host;
    if (hs_has_suffix(host, ".invalid") || strcmp(host, "invalid") == 0) {
        fail(call, HTTP_CLIENT_FAIL_DNS, HS_ENOTFOUND,
             "%s: cannot resolve \"%s\": the .invalid domain never resolves", call->url.origin,
             host);
        return HS_ENOTFOUND;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%d", call->url.port);
    if (getaddrinfo(host, port, &hints, &call->ai) == 0 && call->ai != NULL) {
        call->ai_next = call->ai;
        return HS_OK;
    }
    call->ai = NULL;
    call->phase = PH_CONNECT;
    arm(call->timer, call->connect_ms); /* the lookup counts against the connect timeout */
    if (lookup_start(call, port) != HS_OK) {
        fail(call, HTTP_CLIENT_FAIL_NOMEM, HS_ENOMEM, "%s: cannot start a name lookup",
             call->url.origin);
        return HS_ENOMEM;
    }
    return HS_EAGAIN;
}

static struct bufferevent *new_bev(struct http_client_call *call)
{
    struct http_client *c = call->client;
    if (!call->url.is_tls)
        return bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct hs_err e;
    const char *name = c->cfg.tls.server_name ? c->cfg.tls.server_name : call->url.host;
    SSL *ssl = http__tls_ssl_new(c->ssl_ctx, name, c->cfg.tls.insecure_skip_verify, &e);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    /* Peers that close without close_notify end close-delimited bodies. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* Opens a connection to the next resolved address. */
static void start_connect(struct http_client_call *call)
{
    struct http_client *c = call->client;
    if (call->ai == NULL && resolve(call) != HS_OK)
        return;
    struct addrinfo *ai = call->ai_next;
    if (ai == NULL) {
        fail(call, HTTP_CLIENT_FAIL_CONNECT, HS_EIO, "%s: no address to connect to",
             call->url.origin);
        return;
    }
    call->ai_next = ai->ai_next;
    struct cconn *k = hs_calloc(1, sizeof(*k));
    if (k == NULL || (k->origin = hs_strdup(call->url.origin)) == NULL) {
        hs_free(k);
        fail(call, HTTP_CLIENT_FAIL_NOMEM, HS_ENOMEM, "out of memory");
        return;
    }
    k->client = c;
    k->call = call;
    call->conn = k;
    call->phase = PH_CONNECT;
    k->bev = new_bev(call);
    if (k->bev == NULL) {
        fail(call, HTTP_CLIENT_FAIL_TLS, HS_EIO, "%s: cannot set up the connection",
             call->url.origin);
        return;
    }
    c->stats.connections_opened++;
    bufferevent_setcb(k->bev, read_cb, NULL, event_cb, k);
    arm(call->timer, call->connect_ms);
    if (bufferevent_socket_connect(k->bev, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
        int serr = EVUTIL_SOCKET_ERROR();
        conn_close(k);
        call->conn = NULL;
        if (call->ai_next != NULL) {
            start_connect(call);
            return;
        }
        fail(call, HTTP_CLIENT_FAIL_CONNECT, HS_EIO, "%s: connect failed: %s", call->url.origin,
             evutil_socket_error_to_string(serr));
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_client_call *call = arg;
    if (call->phase != PH_START) {
        process_input(call);
        return;
    }
    struct cconn *k = pool_take(call->client, call->url.origin);
    if (k == NULL) {
        start_connect(call);
        return;
    }
    call->client->stats.connections_reused++;
    call->is_reused = true;
    k->call = call;
    call->conn = k;
    send_request(call);
}

/* ---- public --------------------------------------------------------------------- */

struct http_client *http_client_new(struct event_base *base, const struct http_client_config *cfg,
                                    struct hs_err *err)
{
    struct http_client *c = hs_calloc(1, sizeof(*c));
    if (c == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    c->base = base;
    if (cfg)
        c->cfg = *cfg;
    else
        http_client_config_defaults(&c->cfg);
    const char **s[4] = {&c->cfg.tls.ca_file, &c->cfg.tls.cert_file, &c->cfg.tls.key_file,
                         &c->cfg.tls.server_name};
    for (int i = 0; i < 4; i++) {
        if (*s[i] == NULL)
            continue;
        c->tls_strings[i] = hs_strdup(*s[i]);
        if (c->tls_strings[i] == NULL) {
            hs_err_set(err, HS_ENOMEM, "out of memory");
            http_client_free(c);
            return NULL;
        }
        *s[i] = c->tls_strings[i];
    }
    c->ssl_ctx = http__tls_ctx_new(&c->cfg.tls, err);
    if (c->ssl_ctx == NULL) {
        http_client_free(c);
        return NULL;
    }
    return c;
}

void http_client_free(struct http_client *c)
{
    if (c == NULL)
        return;
    while (c->calls) {
        struct http_client_call *call = c->calls;
        call->is_cancelled = true;
        call_free(call);
    }
    while (c->idle)
        conn_close(c->idle);
    http__tls_ctx_free(c->ssl_ctx);
    for (int i = 0; i < 4; i++)
        hs_free(c->tls_strings[i]);
    hs_free(c);
}

static int call_setup(struct http_client_call *call, const struct http_client_req *req,
                      struct hs_err *err)
{
    int rc = http__url_parse(req->url, &call->url, err);
    if (rc != HS_OK)
        return rc;
    rc = http__request_serialize(req, &call->url, &call->out, err);
    if (rc != HS_OK)
        return rc;
    const char *m = req->method ? req->method : "GET";
    call->is_head = strcmp(m, "HEAD") == 0;
    call->is_idempotent = call->is_head || strcmp(m, "GET") == 0;
    call->connect_ms = req->connect_timeout_ms;
    call->first_byte_ms = req->first_byte_timeout_ms;
    call->read_ms = req->read_timeout_ms;
    call->max_body = req->max_response_bytes ? req->max_response_bytes : CLIENT_DEFAULT_MAX_BODY;
    call->is_gzip_ok = req->decompress_gzip;
    call->is_streaming = req->is_streaming;
    struct event_base *b = call->client->base;
    call->kick = event_new(b, -1, 0, kick_cb, call);
    call->timer = evtimer_new(b, phase_timeout_cb, call);
    call->total_timer = evtimer_new(b, total_timeout_cb, call);
    if (call->kick == NULL || call->timer == NULL || call->total_timer == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    return HS_OK;
}

int http_client_request(struct http_client *c, const struct http_client_req *req,
                        const struct http_client_callbacks *cb, void *arg,
                        struct http_client_call **out, struct hs_err *err)
{
    if (out)
        *out = NULL;
    if (c == NULL || req == NULL || cb == NULL || cb->on_done == NULL)
        return hs_err_set(err, HS_EINVAL, "request needs a client, a request and on_done");
    if (req->is_streaming && cb->on_body_chunk == NULL)
        return hs_err_set(err, HS_EINVAL, "a streaming request needs on_body_chunk");
    struct http_client_call *call = hs_calloc(1, sizeof(*call));
    if (call == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    call->client = c;
    call->cb = *cb;
    call->arg = arg;
    hs_buf_init(&call->out, 0);
    hs_buf_init(&call->body, 0);
    http__rparser_init(&call->parser, c->cfg.max_header_bytes);
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    int rc = call_setup(call, req, err);
    if (rc != HS_OK) {
        call->is_cancelled = true;
        call_free(call);
        return rc;
    }
    arm(call->total_timer, req->total_timeout_ms);
    event_active(call->kick, EV_TIMEOUT, 0);
    c->stats.requests++;
    if (out)
        *out = call;
    return HS_OK;
}

void http_client_cancel(struct http_client_call *call)
{
    if (call == NULL || call->is_cancelled || call->is_finished)
        return;
    call->is_cancelled = true;
    call->client->stats.requests_cancelled++;
    stop_timers(call);
    conn_close(call->conn);
    call->conn = NULL;
    if (call->depth == 0)
        call_free(call);
}

void http_client_pause(struct http_client_call *call)
{
    if (call == NULL || call->is_paused || call->is_cancelled || call->is_finished)
        return;
    call->is_paused = true;
    if (call->conn && call->conn->is_connected)
        bufferevent_disable(call->conn->bev, EV_READ);
    if (call->phase == PH_BODY)
        event_del(call->timer);
}

void http_client_resume(struct http_client_call *call)
{
    if (call == NULL || !call->is_paused || call->is_cancelled || call->is_finished)
        return;
    call->is_paused = false;
    if (call->conn && call->conn->is_connected) {
        bufferevent_enable(call->conn->bev, EV_READ);
        if (call->phase == PH_BODY)
            arm(call->timer, call->read_ms);
        event_active(call->kick, EV_TIMEOUT, 0);
    }
}

void http_client_get_stats(const struct http_client *c, struct http_client_stats *out)
{
    *out = c->stats;
}

/* ---- synchronous fetch ------------------------------------------------------------ */

struct sync_state {
    struct event_base *base;
    int code;
    int status;
    char msg[256];
    char *body;
    size_t len;
    bool is_done;
};

static void sync_done(void *arg, const struct http_client_result *res)
{
    struct sync_state *s = arg;
    s->is_done = true;
    s->code = res->code;
    s->status = res->status;
    snprintf(s->msg, sizeof(s->msg), "%s", res->msg);
    if (res->code == HS_OK) {
        s->body = hs_malloc(res->body_len + 1);
        if (s->body == NULL) {
            s->code = HS_ENOMEM;
            snprintf(s->msg, sizeof(s->msg), "out of memory");
        } else {
            memcpy(s->body, res->body, res->body_len);
            s->body[res->body_len] = '\0';
            s->len = res->body_len;
        }
    }
    event_base_loopbreak(s->base);
}

int http_client_fetch_sync(const char *url, int64_t timeout_ms, size_t max_bytes, int *status,
                           char **body, size_t *len, struct hs_err *err)
{
    struct sync_state s;
    memset(&s, 0, sizeof(s));
    s.base = event_base_new();
    if (s.base == NULL)
        return hs_err_set(err, HS_ENOMEM, "cannot create an event base");
    struct http_client *c = http_client_new(s.base, NULL, err);
    int rc = c ? HS_OK : (err ? err->code : HS_EINVAL);
    if (c != NULL) {
        struct http_client_req req = {.url = url,
                                      .total_timeout_ms = timeout_ms,
                                      .max_response_bytes = max_bytes,
                                      .decompress_gzip = true};
        struct http_client_callbacks cb = {.on_done = sync_done};
        rc = http_client_request(c, &req, &cb, &s, NULL, err);
        while (rc == HS_OK && !s.is_done) {
            if (event_base_dispatch(s.base) != 0) /* nothing left to wait for */
                rc = hs_err_set(err, HS_EIO, "request ended without an answer");
        }
        if (rc == HS_OK && s.code != HS_OK)
            rc = hs_err_set(err, s.code, "%s", s.msg);
    }
    http_client_free(c);
    event_base_free(s.base);
    if (rc != HS_OK) {
        hs_free(s.body);
        return rc;
    }
    *status = s.status;
    *body = s.body;
    *len = s.len;
    return HS_OK;
}
