/*
 * server.c - listeners, connections, timeouts and graceful shutdown.
 *
 * Each accepted socket gets a struct http__conn (taken from a free list when
 * one is there) wrapping a libevent bufferevent.  Input is fed to the
 * request parser straight out of the bufferevent's input buffer; once a
 * request is complete it goes to its handler and the connection stops
 * parsing (pipelined bytes wait in the input buffer, bounded by the read
 * high-water mark) until the request is finished, so answers leave in order.
 *
 * Connection states (enum http__conn_state):
 *
 *   accept -> IDLE -> HEAD -> BODY -> HANDLING -> IDLE (keep-alive) ...
 *                  \      \       \          \-> CLOSING -> closed
 *                   \      \-------\--> error answer -> CLOSING -> LINGER -> closed
 *                    \-> closed (idle timeout, shutdown)
 *   HANDLING -> DEAD (socket gone, request still held by its handler) -> freed
 *
 * Output is written to the socket directly as soon as it is queued (once
 * per callback, so pipelined answers share one write); only when the socket
 * is full does libevent's write event take over, until the buffer is empty
 * again.  That keeps one write per answer or stream chunk and no epoll
 * changes on the fast path.
 *
 * One timer per connection carries the read-side deadline of the state:
 * header timeout (from accept, or from the first byte of a keep-alive
 * request), body read timeout (re-armed on every body read), idle timeout,
 * linger time.  The write timeout is libevent's own on the bufferevent.
 * Over max_connections a connection is answered 503 and closed (the answer
 * is written, the write side shut and the input drained for a short while
 * so the client sees the 503 instead of a reset).
 */
#include "http/internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FREE_CONNS 64

static void conn_process(struct http__conn *c);
static void conn_maybe_free(struct http__conn *c);
static void linger_start(struct http__conn *c);

void http_server_config_defaults(struct http_server_config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen = "127.0.0.1:9090";
    c->max_connections = 1024;
    c->max_header_bytes = 16 * 1024;
    c->max_body_bytes = 16 * 1024 * 1024;
    c->header_timeout_ms = 10 * 1000;
    c->read_timeout_ms = 30 * 1000;
    c->idle_timeout_ms = 120 * 1000;
    c->write_timeout_ms = 60 * 1000;
    c->stream_low_water_bytes = 64 * 1024;
}

/* ---- small helpers ------------------------------------------------------- */

static void arm_timer(struct http__conn *c, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

const char *http__server_date(struct http_server *s)
{
    time_t now = time(NULL);
    if (now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = now;
    }
    return s->date;
}

static void format_remote(char *out, size_t n, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, n, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(out, n, "unknown");
    }
}

/* ---- direct writes ------------------------------------------------------- */

/* One sendmsg of the buffer's first segments (MSG_NOSIGNAL: a vanished
 * peer is an error, not a signal). */
static ssize_t send_some(evutil_socket_t fd, struct evbuffer *out)
{
    struct evbuffer_iovec v[16];
    struct iovec iov[16];
    int n = evbuffer_peek(out, -1, NULL, v, 16);
    if (n > 16)
        n = 16;
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
    }
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w > 0) {
        /* bufferevents keep the start of their output frozen outside their
         * own write path: thaw it for the drain */
        evbuffer_unfreeze(out, 1);
        evbuffer_drain(out, (size_t)w);
        evbuffer_freeze(out, 1);
    }
    return w;
}

static void conn_flush_now(struct http__conn *c)
{
    c->flush_pending = false;
    if (c->bev == NULL || c->write_enabled)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    while (evbuffer_get_length(out) > 0) {
        ssize_t w = send_some(fd, out);
        if (w > 0)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            c->write_failed = true;
            event_active(c->resume, EV_TIMEOUT, 0);
            return;
        }
        if (w < 0 && errno == EINTR)
            continue;
        break;
    }
    size_t pending = evbuffer_get_length(out);
    if (pending > 0) {
        c->write_enabled = true;
        bufferevent_enable(c->bev, EV_WRITE);
    }
    if ((pending == 0 && c->state == HTTP__C_CLOSING) ||
        (c->req.drain_armed && pending <= c->srv->cfg.stream_low_water_bytes))
        event_active(c->resume, EV_TIMEOUT, 0); /* close or drain callback, outside callers */
}

void http__conn_flush(struct http__conn *c)
{
    if (c->in_process)
        c->flush_pending = true;
    else
        conn_flush_now(c);
}

/* Leaves a callback section: flushes what was queued, frees if closed. */
static void conn_leave(struct http__conn *c, bool was)
{
    c->in_process = was;
    if (was)
        return;
    if (c->flush_pending)
        conn_flush_now(c);
    conn_maybe_free(c);
}

/* ---- shutdown completion --------------------------------------------------- */

static void check_shutdown_done(struct http_server *s)
{
    if (!s->is_shutting_down || s->done_fired || s->stats.connections_open > 0 ||
        s->nlinger_rejected > 0)
        return;
    s->done_fired = true;
    evtimer_del(s->shutdown_timer);
    event_active(s->done_ev, EV_TIMEOUT, 0);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;
    if (s->done_cb != NULL)
        s->done_cb(s->done_arg);
}

/* ---- connection objects ------------------------------------------------------ */

static struct http__conn *conn_get(struct http_server *s)
{
    struct http__conn *c = s->free_conns;
    if (c != NULL) {
        s->free_conns = c->next;
        s->nfree--;
    } else {
        c = hs_calloc(1, sizeof(*c));
        if (c == NULL)
            return NULL;
        c->srv = s;
        c->timer = evtimer_new(s->base, NULL, NULL);
        c->resume = evtimer_new(s->base, NULL, NULL);
        if (c->timer == NULL || c->resume == NULL) {
            if (c->timer)
                event_free(c->timer);
            if (c->resume)
                event_free(c->resume);
            hs_free(c);
            return NULL;
        }
        http__parser_init(&c->parser, s->cfg.max_header_bytes, s->cfg.max_body_bytes);
        hs_arena_init(&c->arena, 8192, 0);
        hs_buf_init(&c->body, s->cfg.max_body_bytes + 1);
    }
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    return c;
}

static void conn_destroy(struct http__conn *c)
{
    event_free(c->timer);
    event_free(c->resume);
    http__parser_cleanup(&c->parser);
    hs_arena_cleanup(&c->arena);
    hs_buf_cleanup(&c->body);
    hs_free(c);
}

/* Clears the per-request state, keeping memory for the next request. */
static void request_reset(struct http__conn *c)
{
    http__parser_reset(&c->parser);
    hs_arena_reset(&c->arena);
    if (c->body.cap > 64 * 1024)
        hs_buf_cleanup(&c->body);
    hs_buf_reset(&c->body);
    memset(&c->req, 0, sizeof(c->req));
    c->req.conn = c;
}

/* Unlinks a closed connection and keeps it for reuse. */
static void conn_release(struct http__conn *c)
{
    struct http_server *s = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    request_reset(c);
    c->state = HTTP__C_IDLE;
    c->is_rejected = c->keep_alive = c->needs_linger = false;
    c->nrequests = c->linger_bytes = 0;
    if (s->nfree >= MAX_FREE_CONNS) {
        conn_destroy(c);
        return;
    }
    c->next = s->free_conns;
    s->free_conns = c;
    s->nfree++;
}

static void conn_maybe_free(struct http__conn *c)
{
    if (c->in_process || c->bev != NULL)
        return;
    if (c->req.phase == HTTP__REQ_HELD || c->req.phase == HTTP__REQ_STREAMING)
        return; /* DEAD: the handler still holds the request */
    conn_release(c);
}

void http__request_observe(struct http__conn *c)
{
    struct http_request *r = &c->req;
    struct http_server *s = c->srv;
    if (r->is_observed)
        return;
    r->is_observed = true;
    s->stats.requests_total++;
    if (s->observer != NULL) {
        double dur = (double)(hs_mono_ns() - r->start_ns) / 1e9;
        int status = r->status ? r->status : 499;
        s->observer(s->observer_arg, r->handler_name ? r->handler_name : "other",
                    r->method ? r->method : "", status, dur, r->req_bytes, r->resp_bytes);
    }
}

void http__conn_close(struct http__conn *c)
{
    struct http_server *s = c->srv;
    if (c->bev == NULL)
        return;
    bufferevent_free(c->bev);
    c->bev = NULL;
    evtimer_del(c->timer);
    evtimer_del(c->resume);
    if (c->is_rejected)
        s->nlinger_rejected--;
    else
        s->stats.connections_open--;
    struct http_request *r = &c->req;
    if (r->phase == HTTP__REQ_HELD || r->phase == HTTP__REQ_STREAMING) {
        c->state = HTTP__C_DEAD;
        http__request_observe(c);
        if (!r->close_fired) {
            r->close_fired = true;
            if (r->on_close != NULL) {
                bool was = c->in_process;
                c->in_process = true; /* the callback may finish the request */
                r->on_close(r, r->on_close_arg);
                c->in_process = was;
            }
        }
    }
    check_shutdown_done(s);
    conn_maybe_free(c);
}

/* ---- request completion ------------------------------------------------------- */

void http__conn_request_finished(struct http__conn *c)
{
    struct http_server *s = c->srv;
    http__request_observe(c);
    if (s->stats.requests_in_flight > 0)
        s->stats.requests_in_flight--;
    c->req.phase = HTTP__REQ_FINISHED;
    if (c->bev == NULL) {
        conn_maybe_free(c);
        return;
    }
    if (!c->keep_alive || s->is_shutting_down) {
        c->state = HTTP__C_CLOSING;
        c->needs_linger = false;
        bufferevent_disable(c->bev, EV_READ);
        arm_timer(c, s->cfg.write_timeout_ms);
        http__conn_flush(c); /* the close follows from the resume event */
        return;
    }
    http__conn_flush(c);
    request_reset(c);
    c->state = HTTP__C_IDLE;
    arm_timer(c, s->cfg.idle_timeout_ms);
    if (!c->in_process && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        event_active(c->resume, EV_TIMEOUT, 0);
}

/* ---- parsing and dispatch ------------------------------------------------------- */

static void on_headers(struct http__conn *c)
{
    struct http__parser *p = &c->parser;
    c->keep_alive = p->keep_alive;
    bool has_body = p->is_chunked || p->content_length > 0;
    if (!has_body)
        return;
    c->state = HTTP__C_BODY;
    arm_timer(c, c->srv->cfg.read_timeout_ms);
    if (p->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        evbuffer_add(bufferevent_get_output(c->bev), cont, sizeof(cont) - 1);
        c->srv->stats.bytes_out += sizeof(cont) - 1;
        http__conn_flush(c);
    }
}

static void dispatch(struct http__conn *c)
{
    struct http_server *s = c->srv;
    struct http_request *r = &c->req;
    struct hs_err err;
    evtimer_del(c->timer);
    c->state = HTTP__C_HANDLING;
    r->req_bytes = c->parser.wire_bytes;
    /* hs_buf keeps the body NUL-terminated; an empty body is "" */
    if (http__request_prepare(c, &err) != HS_OK) {
        http__respond_protocol_error(c, err.code == HS_ENOMEM ? 500 : 400, err.msg);
        return;
    }
    s->stats.requests_in_flight++;
    r->phase = HTTP__REQ_HELD;
    if (r->route != NULL) {
        r->route->fn(r, r->route->arg);
        return;
    }
    /* No route: 404, or 405 with Allow when the path is known. */
    struct hs_buf allow;
    hs_buf_init(&allow, 1024);
    if (http__request_allow(c, &allow) != HS_OK)
        hs_buf_reset(&allow);
    if (allow.len > 0) {
        if (http_response_header(r, "Allow", allow.p) != HS_OK) {
            /* the 405 goes out without Allow */
        }
        http_respond_error(r, 405, "method not allowed");
    } else {
        http_respond_error(r, 404, "not found");
    }
    hs_buf_cleanup(&allow);
}

/* Returns false when the loop must stop. */
static bool feed_once(struct http__conn *c)
{
    struct http_server *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_contiguous_space(in);
    const char *data = n > 0 ? (const char *)evbuffer_pullup(in, (ev_ssize_t)n) : "";
    if (c->state == HTTP__C_IDLE) {
        if (n == 0)
            return false;
        c->state = HTTP__C_HEAD;
        c->req.start_ns = hs_mono_ns();
        if (c->nrequests++ > 0)
            arm_timer(c, s->cfg.header_timeout_ms);
    }
    size_t used, blen;
    const char *body;
    struct hs_err err;
    int rc = http__parser_feed(&c->parser, data, n, &used, &body, &blen, &err);
    if (rc == HTTP__EV_BODY) {
        /* body points into the input buffer: copy before draining */
        if (hs_buf_append(&c->body, body, blen) != HS_OK) {
            http__respond_protocol_error(c, 500, "out of memory reading the body");
            return false;
        }
        arm_timer(c, s->cfg.read_timeout_ms);
    }
    if (used > 0) {
        evbuffer_drain(in, used);
        s->stats.bytes_in += used;
    }
    switch (rc) {
    case HS_EAGAIN:
        return evbuffer_get_length(in) > 0;
    case HTTP__EV_HEADERS:
        on_headers(c);
        return true;
    case HTTP__EV_BODY:
        return true;
    case HTTP__EV_DONE:
        dispatch(c);
        return true;
    default:
        http__respond_protocol_error(c, c->parser.error_status ? c->parser.error_status : 400,
                                     err.msg);
        return false;
    }
}

static void conn_process(struct http__conn *c)
{
    if (c->in_process)
        return;
    c->in_process = true;
    while (c->bev != NULL &&
           (c->state == HTTP__C_IDLE || c->state == HTTP__C_HEAD || c->state == HTTP__C_BODY)) {
        if (c->state == HTTP__C_IDLE &&
            evbuffer_get_length(bufferevent_get_output(c->bev)) > HTTP__OUT_HIGH)
            break; /* the write callback resumes once the client reads */
        if (!feed_once(c))
            break;
    }
    conn_leave(c, false);
}

/* ---- libevent callbacks ---------------------------------------------------------- */

static void linger_start(struct http__conn *c)
{
    c->state = HTTP__C_LINGER;
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    bufferevent_enable(c->bev, EV_READ);
    arm_timer(c, HTTP__LINGER_MS);
}

void http__conn_closing(struct http__conn *c)
{
    c->state = HTTP__C_CLOSING;
    arm_timer(c, c->srv->cfg.write_timeout_ms);
    http__conn_flush(c); /* lingering starts once the answer is out */
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct http__conn *c = arg;
    if (c->state == HTTP__C_LINGER || c->state == HTTP__C_CLOSING) {
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t n = evbuffer_get_length(in);
        c->linger_bytes += n;
        c->srv->stats.bytes_in += n;
        evbuffer_drain(in, n);
        if (c->linger_bytes > HTTP__LINGER_MAX)
            http__conn_close(c);
        return;
    }
    conn_process(c);
}

/* Fires the drain callback when armed and pending output is low; true when
 * it ran (the connection may be gone then). */
static bool maybe_drain(struct http__conn *c, size_t pending)
{
    struct http_request *r = &c->req;
    if (r->phase != HTTP__REQ_STREAMING || !r->drain_armed ||
        pending > c->srv->cfg.stream_low_water_bytes)
        return false;
    r->drain_armed = false;
    if (r->on_drain == NULL)
        return false;
    c->in_process = true;
    r->on_drain(r, r->on_drain_arg);
    conn_leave(c, false);
    return true;
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct http__conn *c = arg;
    struct evbuffer *out = bufferevent_get_output(bev);
    size_t pending = evbuffer_get_length(out);
    if (pending == 0 && c->write_enabled) {
        c->write_enabled = false; /* back to direct writes */
        bufferevent_disable(bev, EV_WRITE);
    }
    if (c->state == HTTP__C_CLOSING) {
        if (pending > 0)
            return;
        if (c->needs_linger)
            linger_start(c);
        else
            http__conn_close(c);
        return;
    }
    if (maybe_drain(c, pending))
        return;
    if (c->state == HTTP__C_IDLE && pending <= HTTP__OUT_HIGH &&
        evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        conn_process(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct http__conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        hs_log(HS_LOG_INFO, "http write timeout, closing connection", HS_LSTR("remote", c->remote));
        http__conn_close(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        bool held = c->req.phase == HTTP__REQ_HELD || c->req.phase == HTTP__REQ_STREAMING;
        size_t pending = evbuffer_get_length(bufferevent_get_output(bev));
        if ((what & BEV_EVENT_EOF) && !held && pending > 0 && c->state != HTTP__C_LINGER) {
            /* half-closed: deliver what is queued, then close */
            c->state = HTTP__C_CLOSING;
            c->needs_linger = false;
            bufferevent_disable(bev, EV_READ);
            return;
        }
        http__conn_close(c);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http__conn *c = arg;
    switch (c->state) {
    case HTTP__C_IDLE:
        if (c->nrequests == 0) {
            http__respond_protocol_error(c, 408, "timed out waiting for the request headers");
            return;
        }
        http__conn_close(c); /* idle keep-alive: silently */
        return;
    case HTTP__C_HEAD:
        http__respond_protocol_error(c, 408, "timed out reading the request headers");
        return;
    case HTTP__C_BODY:
        http__respond_protocol_error(c, 408, "timed out reading the request body");
        return;
    case HTTP__C_LINGER:
    case HTTP__C_CLOSING:
        http__conn_close(c);
        return;
    default:
        return;
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct http__conn *c = arg;
    if (c->bev == NULL)
        return;
    if (c->write_failed) {
        http__conn_close(c);
        return;
    }
    if (c->state == HTTP__C_CLOSING) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            return; /* libevent is writing; on_write finishes */
        if (c->needs_linger)
            linger_start(c);
        else
            http__conn_close(c);
        return;
    }
    if (maybe_drain(c, evbuffer_get_length(bufferevent_get_output(c->bev))))
        return;
    conn_process(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct http_server *s = arg;
    s->stats.connections_accepted++;
    bool over = s->stats.connections_open >= (uint64_t)s->cfg.max_connections;
    if (s->is_shutting_down || (over && s->nlinger_rejected >= HTTP__MAX_REJECTING)) {
        if (over)
            s->stats.connections_rejected++;
        evutil_closesocket(fd);
        return;
    }
    struct http__conn *c = conn_get(s);
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        conn_release(c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    format_remote(c->remote, sizeof(c->remote), sa);
    event_assign(c->timer, s->base, -1, 0, on_timer, c);
    event_assign(c->resume, s->base, -1, 0, on_resume, c);
    request_reset(c);
    c->state = HTTP__C_IDLE;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, s->cfg.max_header_bytes + 65536);
    bufferevent_setwatermark(c->bev, EV_WRITE, s->cfg.stream_low_water_bytes, 0);
    struct timeval wtv = {.tv_sec = (time_t)(s->cfg.write_timeout_ms / 1000),
                          .tv_usec = (suseconds_t)(s->cfg.write_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, NULL, &wtv);
    c->write_enabled = c->flush_pending = c->write_failed = false;
    bufferevent_enable(c->bev, EV_READ);
    bufferevent_disable(c->bev, EV_WRITE);
    if (over) {
        c->is_rejected = true;
        s->nlinger_rejected++;
        s->stats.connections_rejected++;
        hs_log(HS_LOG_WARN, "http connection limit reached, answering 503",
               HS_LSTR("remote", c->remote), HS_LINT("max_connections", s->cfg.max_connections));
        http__respond_protocol_error(c, 503, "too many connections");
        return;
    }
    s->stats.connections_open++;
    arm_timer(c, s->cfg.header_timeout_ms);
}

/* ---- server --------------------------------------------------------------------- */

struct http_server *http_server_new(struct event_base *base, const struct http_server_config *c,
                                    struct hs_err *err)
{
    if (base == NULL || c == NULL || c->listen == NULL) {
        hs_err_set(err, HS_EINVAL, "http server: missing event base, config or listen address");
        return NULL;
    }
    if (c->max_connections < 1 || c->max_header_bytes < 64 || c->max_header_bytes > (1u << 30) ||
        c->header_timeout_ms <= 0 || c->read_timeout_ms <= 0 || c->idle_timeout_ms <= 0 ||
        c->write_timeout_ms <= 0 || c->max_body_bytes > ((size_t)1 << 40)) {
        hs_err_set(err, HS_EINVAL,
                   "http server: limits out of range (connections >= 1, 64 B <= headers <= 1 "
                   "GiB, body <= 1 TiB, timeouts > 0)");
        return NULL;
    }
    struct http_server *s = hs_calloc(1, sizeof(*s));
    if (s == NULL)
        goto nomem;
    s->base = base;
    s->cfg = *c;
    s->listen = hs_strdup(c->listen);
    s->shutdown_timer = evtimer_new(base, NULL, NULL);
    s->done_ev = evtimer_new(base, on_done, s);
    if (s->listen == NULL || s->shutdown_timer == NULL || s->done_ev == NULL)
        goto nomem;
    s->cfg.listen = s->listen;
    int64_t now = hs_mono_ns();
    pid_t pid = getpid();
    s->id_seed = hs_hash64(&now, sizeof(now), (uint64_t)pid ^ (uint64_t)hs_now_ms());
    return s;
nomem:
    http_server_free(s);
    hs_err_set(err, HS_ENOMEM, "http server: out of memory");
    return NULL;
}

/* Splits "HOST:PORT" / "[V6]:PORT" into host and port strings. */
static int split_listen(const char *addr, char *host, size_t hn, char *port, size_t pn,
                        struct hs_err *err)
{
    const char *colon;
    const char *h = addr;
    size_t hl;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':')
            return hs_err_set(err, HS_EINVAL, "listen address \"%s\": expected [IPv6]:PORT", addr);
        h = addr + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return hs_err_set(err, HS_EINVAL, "listen address \"%s\": expected HOST:PORT", addr);
        hl = (size_t)(colon - addr);
    }
    int64_t pv;
    if (hl >= hn || strlen(colon + 1) >= pn || hs_parse_i64(colon + 1, &pv) != HS_OK || pv < 0 ||
        pv > 65535)
        return hs_err_set(err, HS_EINVAL, "listen address \"%s\": bad host or port", addr);
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pn, "%d", (int)pv);
    return HS_OK;
}

static int bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int http_server_start(struct http_server *s, struct hs_err *err)
{
    char host[256], port[8];
    int rc = split_listen(s->listen, host, sizeof(host), port, sizeof(port), err);
    if (rc != HS_OK)
        return rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0)
        return hs_err_set(err, HS_EINVAL, "listen address \"%s\": %s", s->listen,
                          gai_strerror(gai));
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    s->listeners = hs_calloc(n, sizeof(*s->listeners));
    if (s->listeners == NULL) {
        freeaddrinfo(res);
        return hs_err_set(err, HS_ENOMEM, "http server: out of memory");
    }
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (s->nlisteners > 0 && strcmp(port, "0") == 0) {
            /* port 0 on several addresses: use the port the first one got */
            int p0 = s->listeners[0].port;
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)p0);
            else if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)p0);
        }
        struct evconnlistener *l = evconnlistener_new_bind(
            s->base, on_accept, s,
            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511, ai->ai_addr,
            (int)ai->ai_addrlen);
        if (l == NULL) {
            last_errno = errno;
            continue;
        }
        s->listeners[s->nlisteners].l = l;
        s->listeners[s->nlisteners].port = bound_port(evconnlistener_get_fd(l));
        s->nlisteners++;
    }
    freeaddrinfo(res);
    if (s->nlisteners == 0)
        return hs_err_set(err, HS_EIO, "listen on \"%s\": %s", s->listen,
                          last_errno ? strerror(last_errno) : "no address");
    hs_log(HS_LOG_INFO, "http listening", HS_LSTR("addr", s->listen),
           HS_LINT("port", s->listeners[0].port));
    return HS_OK;
}

int http_server_port(const struct http_server *s)
{
    return s->nlisteners > 0 ? s->listeners[0].port : 0;
}

int http_server_route(struct http_server *s, const char *method, const char *path,
                      const char *handler_name, http_handler_fn *fn, void *arg)
{
    if (path == NULL || path[0] != '/' || handler_name == NULL || handler_name[0] == '\0' ||
        fn == NULL)
        return HS_EINVAL;
    struct http__route *nr = hs_reallocarray(s->routes, s->nroutes + 1, sizeof(*nr));
    if (nr == NULL)
        return HS_ENOMEM;
    s->routes = nr;
    struct http__route *r = &nr[s->nroutes];
    memset(r, 0, sizeof(*r));
    size_t pl = strlen(path);
    r->is_prefix = pl >= 2 && path[pl - 2] == '/' && path[pl - 1] == '*';
    r->path_len = r->is_prefix ? pl - 2 : pl;
    r->path = hs_strndup(path, r->path_len);
    r->name = hs_strdup(handler_name);
    r->method = method ? hs_strdup(method) : NULL;
    if (r->path == NULL || r->name == NULL || (method != NULL && r->method == NULL)) {
        hs_free(r->path);
        hs_free(r->name);
        hs_free(r->method);
        return HS_ENOMEM;
    }
    r->fn = fn;
    r->arg = arg;
    s->nroutes++;
    return HS_OK;
}

void http_server_set_observer(struct http_server *s, http_observer_fn *fn, void *arg)
{
    s->observer = fn;
    s->observer_arg = arg;
}

void http_server_set_error_formatter(struct http_server *s, http_error_formatter_fn *fn, void *arg)
{
    s->err_fmt = fn;
    s->err_fmt_arg = arg;
}

static void free_listeners(struct http_server *s)
{
    for (size_t i = 0; i < s->nlisteners; i++)
        evconnlistener_free(s->listeners[i].l);
    hs_free(s->listeners);
    s->listeners = NULL;
    s->nlisteners = 0;
}

static void on_shutdown_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;
    for (;;) {
        struct http__conn *c = s->conns;
        while (c != NULL && c->bev == NULL)
            c = c->next;
        if (c == NULL)
            break;
        hs_log(HS_LOG_INFO, "http shutdown deadline, closing connection",
               HS_LSTR("remote", c->remote));
        http__conn_close(c);
    }
    check_shutdown_done(s);
}

void http_server_shutdown(struct http_server *s, int64_t timeout_ms, http_done_fn *done, void *arg)
{
    if (s->is_shutting_down)
        return;
    s->is_shutting_down = true;
    s->done_cb = done;
    s->done_arg = arg;
    int port = http_server_port(s);
    free_listeners(s);
    s->listeners = NULL;
    hs_log(HS_LOG_INFO, "http shutting down", HS_LINT("port", port),
           HS_LINT("in_flight", s->stats.requests_in_flight));
    for (;;) {
        struct http__conn *c = s->conns;
        while (c != NULL &&
               !(c->bev != NULL && (c->state == HTTP__C_IDLE || c->state == HTTP__C_LINGER)))
            c = c->next;
        if (c == NULL)
            break;
        http__conn_close(c);
    }
    event_assign(s->shutdown_timer, s->base, -1, 0, on_shutdown_deadline, s);
    struct timeval tv = {.tv_sec = (time_t)(timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
    evtimer_add(s->shutdown_timer, &tv);
    check_shutdown_done(s);
}

void http_server_free(struct http_server *s)
{
    if (s == NULL)
        return;
    free_listeners(s);
    while (s->conns != NULL) {
        struct http__conn *c = s->conns;
        s->conns = c->next;
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        conn_destroy(c);
    }
    while (s->free_conns != NULL) {
        struct http__conn *c = s->free_conns;
        s->free_conns = c->next;
        conn_destroy(c);
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        hs_free(s->routes[i].path);
        hs_free(s->routes[i].name);
        hs_free(s->routes[i].method);
    }
    hs_free(s->routes);
    if (s->shutdown_timer)
        event_free(s->shutdown_timer);
    if (s->done_ev)
        event_free(s->done_ev);
    hs_free(s->listen);
    hs_free(s);
}

void http_server_get_stats(const struct http_server *s, struct http_server_stats *out)
{
    *out = s->stats;
}
