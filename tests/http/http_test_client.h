/*
 * http_test_client.h - test-only helpers for the http tests: a blocking
 * socket client that talks raw bytes to 127.0.0.1:PORT and reads replies,
 * and a harness that runs a server's event loop on its own thread.
 *
 * Include from one test file per executable (definitions are static).
 * Every socket read has a 5 s timeout, so a broken server fails a test
 * instead of hanging it; test binaries also set alarm() as a last guard.
 *
 * Threading: the client side runs on the test's main thread; everything
 * touching the server goes through hts_call, which runs a function on the
 * loop thread and waits for it.
 */
#ifndef HS_HTTP_TEST_CLIENT_H
#define HS_HTTP_TEST_CLIENT_H

#include "http/http.h"

#include <event2/event.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- client ----------------------------------------------------------------- */

struct htc {
    int fd;
    char *buf; /* received, not yet consumed */
    size_t len;
    size_t cap;
    bool eof;
};

struct htc_resp {
    int status;
    char head[16384]; /* status line and headers, NUL-terminated */
    char *body;       /* malloc'ed, NUL-terminated (de-chunked) */
    size_t body_len;
};

static __attribute__((unused)) int htc_open(struct htc *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static __attribute__((unused)) void htc_close(struct htc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

static __attribute__((unused)) int htc_send(struct htc *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static __attribute__((unused)) int htc_send_str(struct htc *c, const char *s)
{
    return htc_send(c, s, strlen(s));
}

/* Reads more bytes into the buffer; 0 on data, -1 on EOF/timeout/error. */
static __attribute__((unused)) int htc_fill(struct htc *c)
{
    if (c->eof)
        return -1;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap ? c->cap * 2 : 131072;
        c->buf = realloc(c->buf, c->cap + 1);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n <= 0) {
        c->eof = true;
        return -1;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return 0;
}

static __attribute__((unused)) void htc_consume(struct htc *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = '\0';
}

/* Reads one line (CRLF stripped) into out; -1 when the peer closed first. */
static __attribute__((unused)) int htc_line(struct htc *c, char *out, size_t cap)
{
    for (;;) {
        char *nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL;
        if (nl != NULL) {
            size_t n = (size_t)(nl - c->buf);
            size_t k = n > 0 && c->buf[n - 1] == '\r' ? n - 1 : n;
            if (k >= cap)
                k = cap - 1;
            memcpy(out, c->buf, k);
            out[k] = '\0';
            htc_consume(c, n + 1);
            return 0;
        }
        if (htc_fill(c) != 0)
            return -1;
    }
}

static __attribute__((unused)) int htc_bytes(struct htc *c, char *out, size_t n)
{
    while (c->len < n) {
        if (htc_fill(c) != 0)
            return -1;
    }
    memcpy(out, c->buf, n);
    htc_consume(c, n);
    return 0;
}

/* Value of header 'name' in r->head (copied to out); NULL when absent. */
static const char *htc_header(const struct htc_resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strchr(r->head, '\n');
    while (p != NULL && p[1] != '\0') {
        p++;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            if (k >= cap)
                k = cap - 1;
            memcpy(out, v, k);
            out[k] = '\0';
            return out;
        }
        p = strchr(p, '\n');
    }
    return NULL;
}

static __attribute__((unused)) void htc_resp_free(struct htc_resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* Reads the size line of one chunk; returns the size or -1. */
static __attribute__((unused)) long htc_chunk_size(struct htc *c)
{
    char line[256];
    if (htc_line(c, line, sizeof(line)) != 0)
        return -1;
    return strtol(line, NULL, 16);
}

/* Reads one chunk's payload (after htc_chunk_size) and its CRLF. */
static __attribute__((unused)) int htc_chunk_data(struct htc *c, char *out, size_t n)
{
    char crlf[2];
    if (htc_bytes(c, out, n) != 0 || htc_bytes(c, crlf, 2) != 0)
        return -1;
    return 0;
}

/*
 * Reads one response: status line, headers (skipping any 100 Continue) and
 * the body framed by Content-Length, chunked encoding or the connection's
 * end.  'no_body': the request was HEAD.  Returns 0 or -1.
 */
static __attribute__((unused)) int htc_read(struct htc *c, struct htc_resp *r, bool no_body)
{
    memset(r, 0, sizeof(*r));
    char line[8192];
    for (;;) {
        size_t hl = 0;
        if (htc_line(c, line, sizeof(line)) != 0)
            return -1;
        if (sscanf(line, "HTTP/1.%*d %d", &r->status) != 1)
            return -1;
        hl = (size_t)snprintf(r->head, sizeof(r->head), "%s\r\n", line);
        for (;;) {
            if (htc_line(c, line, sizeof(line)) != 0)
                return -1;
            if (line[0] == '\0')
                break;
            hl += (size_t)snprintf(r->head + hl, sizeof(r->head) - hl, "%s\r\n", line);
            if (hl >= sizeof(r->head))
                return -1;
        }
        if (r->status != 100)
            break;
    }
    char v[64];
    r->body = calloc(1, 1);
    if (no_body || r->status == 204 || r->status == 304)
        return 0;
    if (htc_header(r, "Content-Length", v, sizeof(v)) != NULL) {
        size_t n = strtoul(v, NULL, 10);
        r->body = realloc(r->body, n + 1);
        if (htc_bytes(c, r->body, n) != 0)
            return -1;
        r->body[n] = '\0';
        r->body_len = n;
        return 0;
    }
    if (htc_header(r, "Transfer-Encoding", v, sizeof(v)) != NULL) {
        for (;;) {
            long n = htc_chunk_size(c);
            if (n < 0)
                return -1;
            if (n == 0)
                return htc_line(c, line, sizeof(line)); /* final CRLF */
            r->body = realloc(r->body, r->body_len + (size_t)n + 1);
            if (htc_chunk_data(c, r->body + r->body_len, (size_t)n) != 0)
                return -1;
            r->body_len += (size_t)n;
            r->body[r->body_len] = '\0';
        }
    }
    while (htc_fill(c) == 0) {
    }
    r->body = realloc(r->body, c->len + 1);
    memcpy(r->body, c->buf, c->len);
    r->body_len = c->len;
    r->body[r->body_len] = '\0';
    htc_consume(c, c->len);
    return 0;
}

/* True when the server closed the connection (EOF within the timeout). */
static __attribute__((unused)) bool htc_sees_eof(struct htc *c)
{
    while (htc_fill(c) == 0) {
    }
    return c->eof && c->len == 0;
}

/* One request on a fresh connection; returns the status or -1. */
static __attribute__((unused)) int htc_exchange(int port, const char *req, struct htc_resp *r)
{
    struct htc c;
    if (htc_open(&c, port) != 0)
        return -1;
    int rc = htc_send_str(&c, req) == 0 ? htc_read(&c, r, false) : -1;
    htc_close(&c);
    return rc == 0 ? r->status : -1;
}

/* ---- server on a loop thread --------------------------------------------------- */

struct hts_cmd {
    void (*fn)(void *);
    void *arg;
    sem_t *done;
};

struct hts {
    struct event_base *base;
    struct http_server *srv;
    pthread_t thread;
    int cmd[2];
    struct event *cmd_ev;
    int port;
};

static __attribute__((unused)) void hts_on_cmd(evutil_socket_t fd, short what, void *arg)
{
    struct hts_cmd cmd;
    while (read(fd, &cmd, sizeof(cmd)) == (ssize_t)sizeof(cmd)) {
        cmd.fn(cmd.arg);
        sem_post(cmd.done);
    }
}

static void *hts_main(void *arg)
{
    struct hts *t = arg;
    event_base_dispatch(t->base);
    return NULL;
}

/* Runs fn(arg) on the loop thread and waits until it has run. */
static __attribute__((unused)) void hts_call(struct hts *t, void (*fn)(void *), void *arg)
{
    sem_t done;
    sem_init(&done, 0, 0);
    struct hts_cmd cmd = {fn, arg, &done};
    if (write(t->cmd[1], &cmd, sizeof(cmd)) != (ssize_t)sizeof(cmd))
        return;
    while (sem_wait(&done) != 0 && errno == EINTR) {
    }
    sem_destroy(&done);
}

/* Builds a server with 'cfg' (listen forced to 127.0.0.1:0), lets 'setup'
 * add routes, starts it and its loop thread.  Returns 0 or -1. */
static __attribute__((unused)) int hts_start(struct hts *t, struct http_server_config *cfg,
                                             void (*setup)(struct http_server *, void *), void *arg)
{
    memset(t, 0, sizeof(*t));
    signal(SIGPIPE, SIG_IGN); /* as holoscope's main does: a vanished peer is an error */
    cfg->listen = "127.0.0.1:0";
    t->base = event_base_new();
    struct hs_err err;
    t->srv = http_server_new(t->base, cfg, &err);
    if (t->srv == NULL)
        return -1;
    if (setup != NULL)
        setup(t->srv, arg);
    if (http_server_start(t->srv, &err) != HS_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    t->port = http_server_port(t->srv);
    if (pipe(t->cmd) != 0)
        return -1;
    fcntl(t->cmd[0], F_SETFL, O_NONBLOCK);
    t->cmd_ev = event_new(t->base, t->cmd[0], EV_READ | EV_PERSIST, hts_on_cmd, t);
    event_add(t->cmd_ev, NULL);
    return pthread_create(&t->thread, NULL, hts_main, t) == 0 ? 0 : -1;
}

static __attribute__((unused)) void hts_break(void *arg)
{
    struct hts *t = arg;
    event_base_loopbreak(t->base);
}

static __attribute__((unused)) void hts_stats_cb(void *arg)
{
    struct {
        struct hts *t;
        struct http_server_stats st;
    } *a = arg;
    http_server_get_stats(a->t->srv, &a->st);
}

static __attribute__((unused)) struct http_server_stats hts_stats(struct hts *t)
{
    struct {
        struct hts *t;
        struct http_server_stats st;
    } a = {t, {0}};
    hts_call(t, hts_stats_cb, &a);
    return a.st;
}

static __attribute__((unused)) void hts_stop(struct hts *t)
{
    hts_call(t, hts_break, t);
    pthread_join(t->thread, NULL);
    http_server_free(t->srv);
    event_free(t->cmd_ev);
    close(t->cmd[0]);
    close(t->cmd[1]);
    event_base_free(t->base);
}

#endif
