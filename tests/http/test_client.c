/*
 * test_client.c - the HTTP client against the module's own server and
 * against raw-socket servers that misbehave on purpose: keep-alive reuse,
 * every body framing, streaming delivery, gzip, ceilings, every timeout,
 * connect and DNS failures, truncated and malformed responses, cancel,
 * pause/resume, HTTP/1.0 peers and the synchronous fetch.
 *
 * The client runs on the test's main thread with its own event_base; each
 * raw server runs one connection handler at a time on its own thread.
 * Every wait is bounded (5 s socket timeouts, alarm(120)).
 */
#include "hs_test.h"

#include "http/http.h"
#include "http_test_client.h"

#include <event2/event.h>
#include <zlib.h>

#include <poll.h>
#include <time.h>

/* ---- raw server --------------------------------------------------------------- */

struct raw;
typedef void raw_fn(struct raw *s, int fd, int idx);

struct raw {
    int lfd, port;
    pthread_t th;
    raw_fn *fn;
    volatile int stop;
    int nconns;
    sem_t step;         /* posted by the client side between two server steps */
    volatile int fails; /* server-side expectations that did not hold */
    volatile int saw_close;
    char last_req[4096];
};

static void *raw_main(void *arg)
{
    struct raw *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        s->fn(s, fd, s->nconns++);
        close(fd);
    }
    return NULL;
}

static void raw_start(struct raw *s, raw_fn *fn)
{
    memset(s, 0, sizeof(*s));
    signal(SIGPIPE, SIG_IGN);
    s->fn = fn;
    sem_init(&s->step, 0, 0);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t sl = sizeof(sa);
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, raw_main, s), 0);
}

static void raw_stop(struct raw *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->lfd);
    sem_destroy(&s->step);
}

/* Reads one request head (and no body) into s->last_req; 0 or -1. */
static int read_req(struct raw *s, int fd)
{
    size_t n = 0;
    while (n < sizeof(s->last_req) - 1) {
        ssize_t r = recv(fd, s->last_req + n, 1, 0);
        if (r <= 0)
            return -1;
        n++;
        s->last_req[n] = '\0';
        if (n >= 4 && memcmp(s->last_req + n - 4, "\r\n\r\n", 4) == 0)
            return 0;
    }
    return -1;
}

static void send_str(int fd, const char *str)
{
    HS_IGNORE_RESULT(send(fd, str, strlen(str), MSG_NOSIGNAL) < 0);
}

/* Waits until the peer closes (or ms pass); sets saw_close. */
static void wait_close(struct raw *s, int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char b[256];
    while (poll(&p, 1, ms) > 0) {
        ssize_t r = recv(fd, b, sizeof(b), 0);
        if (r <= 0) {
            s->saw_close = 1;
            return;
        }
    }
}

/* Waits for the client's step (5 s at most); counts a failure otherwise. */
static void wait_step(struct raw *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    while (sem_timedwait(&s->step, &ts) != 0) {
        if (errno != EINTR) {
            s->fails++;
            return;
        }
    }
}

/* ---- client side --------------------------------------------------------------- */

struct res {
    int ndone;
    struct http_client_result r;
    char body[1 << 16];
    size_t body_len;
    int nchunks;
    int status_seen;
    int nheaders;
    char content_type[64];
    struct raw *srv; /* posts its step on every chunk when set */
    struct http_client_call *call;
    bool cancel_on_chunk, pause_on_chunk, in_request;
    int done_inside_request;
};

static void on_headers(void *arg, int status, const struct http_client_header *h, size_t n)
{
    struct res *r = arg;
    r->status_seen = status;
    r->nheaders = (int)n;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "Content-Type") == 0)
            snprintf(r->content_type, sizeof(r->content_type), "%s", h[i].value);
    }
}

static void on_chunk(void *arg, const char *data, size_t len)
{
    struct res *r = arg;
    r->nchunks++;
    if (r->body_len + len < sizeof(r->body)) {
        memcpy(r->body + r->body_len, data, len);
        r->body_len += len;
        r->body[r->body_len] = '\0';
    }
    if (r->cancel_on_chunk)
        http_client_cancel(r->call);
    if (r->pause_on_chunk && r->nchunks == 1)
        http_client_pause(r->call);
    if (r->srv)
        sem_post(&r->srv->step);
}

static void on_done(void *arg, const struct http_client_result *res)
{
    struct res *r = arg;
    r->ndone++;
    if (r->in_request)
        r->done_inside_request++;
    r->r = *res;
    if (res->body != NULL && res->body_len < sizeof(r->body)) {
        memcpy(r->body, res->body, res->body_len);
        r->body_len = res->body_len;
        r->body[r->body_len] = '\0';
    }
}

static struct event_base *g_base;
static struct http_client *g_client;

static void client_up(void)
{
    g_base = event_base_new();
    struct hs_err err;
    g_client = http_client_new(g_base, NULL, &err);
    assert_non_null(g_client);
}

static void client_down(void)
{
    http_client_free(g_client);
    event_base_free(g_base);
}

static void loop_for_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(g_base, &tv);
    event_base_dispatch(g_base);
}

/* Starts 'req' and runs the loop until on_done (10 s at most). */
static void run_req(struct http_client_req *req, struct res *r)
{
    struct http_client_callbacks cb = {on_headers, on_chunk, on_done};
    struct hs_err err;
    r->in_request = true;
    int rc = http_client_request(g_client, req, &cb, r, &r->call, &err);
    r->in_request = false;
    assert_int_equal(rc, HS_OK);
    for (int i = 0; i < 1000 && r->ndone == 0; i++)
        loop_for_ms(10);
    assert_int_equal(r->ndone, 1);
    assert_int_equal(r->done_inside_request, 0);
}

static void get(const char *url, struct res *r)
{
    struct http_client_req req = {.url = url};
    run_req(&req, r);
}

static char *url_of(int port, const char *path)
{
    static char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", port, path);
    return u;
}

/* ---- module server ------------------------------------------------------------- */

static char g_big[8192];

static void h_hello(struct http_request *r, void *arg)
{
    http_respond(r, 200, "text/plain", "hello", 5);
}

static void h_big(struct http_request *r, void *arg)
{
    http_respond(r, 200, "text/plain", g_big, sizeof(g_big));
}

static void setup_routes(struct http_server *s, void *arg)
{
    HS_IGNORE_RESULT(http_server_route(s, "GET", "/hello", "/hello", h_hello, NULL));
    HS_IGNORE_RESULT(http_server_route(s, "GET", "/big", "/big", h_big, NULL));
}

static void client_reuses_one_connection_for_sequential_requests(void **state)
{
    struct hts t;
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    assert_int_equal(hts_start(&t, &cfg, setup_routes, NULL), 0);
    client_up();
    for (int i = 0; i < 5; i++) {
        struct res r = {0};
        get(url_of(t.port, "/hello"), &r);
        assert_int_equal(r.r.code, HS_OK);
        assert_int_equal(r.r.status, 200);
        assert_string_equal(r.body, "hello");
        assert_string_equal(r.content_type, "text/plain");
    }
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.requests, 5);
    assert_int_equal(st.requests_ok, 5);
    assert_int_equal(st.connections_opened, 1);
    assert_int_equal(st.connections_reused, 4);
    assert_int_equal(st.connections_idle, 1);
    assert_int_equal(hts_stats(&t).connections_accepted, 1);
    client_down();
    hts_stop(&t);
}

static void client_inflates_a_gzip_body_from_the_server(void **state)
{
    for (size_t i = 0; i < sizeof(g_big); i++)
        g_big[i] = (char)('a' + i % 26);
    struct hts t;
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    assert_int_equal(hts_start(&t, &cfg, setup_routes, NULL), 0);
    client_up();
    struct res r = {0};
    struct http_client_req req = {.url = url_of(t.port, "/big"), .decompress_gzip = true};
    run_req(&req, &r);
    assert_int_equal(r.r.code, HS_OK);
    assert_int_equal(r.body_len, sizeof(g_big));
    assert_memory_equal(r.body, g_big, sizeof(g_big));
    uint64_t wire = hts_stats(&t).bytes_out;
    assert_true(wire < sizeof(g_big) / 2); /* it really came compressed */
    client_down();
    hts_stop(&t);
}

static void client_fetch_sync_returns_status_and_body(void **state)
{
    struct hts t;
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    assert_int_equal(hts_start(&t, &cfg, setup_routes, NULL), 0);
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    struct hs_err err;
    assert_int_equal(
        http_client_fetch_sync(url_of(t.port, "/hello"), 5000, 0, &status, &body, &len, &err),
        HS_OK);
    assert_int_equal(status, 200);
    assert_int_equal(len, 5);
    assert_string_equal(body, "hello");
    hs_free(body);
    assert_int_equal(
        http_client_fetch_sync(url_of(t.port, "/nope"), 5000, 0, &status, &body, &len, &err),
        HS_OK);
    assert_int_equal(status, 404);
    hs_free(body);
    assert_int_equal(http_client_fetch_sync("ftp://x/", 5000, 0, &status, &body, &len, &err),
                     HS_EINVAL);
    hts_stop(&t);
}

/* ---- framing --------------------------------------------------------------------- */

static void srv_framings(struct raw *s, int fd, int idx)
{
    while (read_req(s, fd) == 0) {
        if (strstr(s->last_req, "GET /cl ") != NULL) {
            send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfixed");
        } else if (strstr(s->last_req, "GET /chunked ") != NULL) {
            send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3;ext=1\r\nabc\r\n0004\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n");
        } else if (strstr(s->last_req, "GET /interim ") != NULL) {
            send_str(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
                         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        } else if (strstr(s->last_req, "GET /nocontent ") != NULL) {
            send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n");
        } else if (strstr(s->last_req, "HEAD /") != NULL) {
            send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        } else {
            send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
            return;
        }
    }
}

static void client_reads_every_body_framing(void **state)
{
    struct raw s;
    raw_start(&s, srv_framings);
    client_up();
    struct res r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0}, r5 = {0}, r6 = {0};
    get(url_of(s.port, "/cl"), &r1);
    assert_int_equal(r1.r.code, HS_OK);
    assert_string_equal(r1.body, "fixed");
    get(url_of(s.port, "/chunked"), &r2);
    assert_int_equal(r2.r.code, HS_OK);
    assert_string_equal(r2.body, "abcdefg");
    get(url_of(s.port, "/interim"), &r3);
    assert_int_equal(r3.r.code, HS_OK);
    assert_int_equal(r3.r.status, 200);
    assert_int_equal(r3.status_seen, 200);
    assert_string_equal(r3.body, "ok");
    get(url_of(s.port, "/nocontent"), &r4);
    assert_int_equal(r4.r.code, HS_OK);
    assert_int_equal(r4.r.status, 204);
    assert_int_equal(r4.body_len, 0);
    struct http_client_req head = {.method = "HEAD", .url = url_of(s.port, "/x")};
    run_req(&head, &r5);
    assert_int_equal(r5.r.code, HS_OK);
    assert_int_equal(r5.body_len, 0);
    get(url_of(s.port, "/eof"), &r6);
    assert_int_equal(r6.r.code, HS_OK);
    assert_string_equal(r6.body, "until close");
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.connections_opened, 1); /* all but the last kept the connection */
    assert_int_equal(st.connections_reused, 5);
    assert_int_equal(st.connections_idle, 0);
    assert_non_null(strstr(s.last_req, "Host: 127.0.0.1:"));
    client_down();
    raw_stop(&s);
}

static void client_closes_pooled_connections_after_the_idle_timeout(void **state)
{
    struct raw s;
    raw_start(&s, srv_framings);
    g_base = event_base_new();
    struct http_client_config cfg;
    http_client_config_defaults(&cfg);
    cfg.idle_timeout_ms = 50;
    g_client = http_client_new(g_base, &cfg, NULL);
    assert_non_null(g_client);
    struct res r1 = {0}, r2 = {0};
    get(url_of(s.port, "/cl"), &r1);
    assert_int_equal(r1.r.code, HS_OK);
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.connections_idle, 1);
    for (int i = 0; i < 300 && st.connections_idle != 0; i++) {
        loop_for_ms(10);
        http_client_get_stats(g_client, &st);
    }
    assert_int_equal(st.connections_idle, 0);
    get(url_of(s.port, "/cl"), &r2);
    assert_int_equal(r2.r.code, HS_OK);
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.connections_opened, 2);
    assert_int_equal(st.connections_reused, 0);
    client_down();
    raw_stop(&s);
}

static void client_keeps_no_idle_connection_when_the_pool_size_is_zero(void **state)
{
    struct raw s;
    raw_start(&s, srv_framings);
    g_base = event_base_new();
    struct http_client_config cfg;
    http_client_config_defaults(&cfg);
    cfg.max_idle_per_host = 0;
    g_client = http_client_new(g_base, &cfg, NULL);
    assert_non_null(g_client);
    struct res r1 = {0}, r2 = {0};
    get(url_of(s.port, "/cl"), &r1);
    get(url_of(s.port, "/cl"), &r2);
    assert_int_equal(r2.r.code, HS_OK);
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.connections_opened, 2);
    assert_int_equal(st.connections_idle, 0);
    client_down();
    raw_stop(&s);
}

static void srv_http10(struct raw *s, int fd, int idx)
{
    if (read_req(s, fd) == 0)
        send_str(fd, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nolder");
}

static void client_talks_to_an_http10_server_without_reusing_it(void **state)
{
    struct raw s;
    raw_start(&s, srv_http10);
    client_up();
    for (int i = 0; i < 2; i++) {
        struct res r = {0};
        get(url_of(s.port, "/"), &r);
        assert_int_equal(r.r.code, HS_OK);
        assert_string_equal(r.body, "older");
    }
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.connections_opened, 2);
    assert_int_equal(st.connections_reused, 0);
    client_down();
    raw_stop(&s);
}

/* ---- streaming, cancel, pause ------------------------------------------------------ */

static void srv_stream(struct raw *s, int fd, int idx)
{
    if (read_req(s, fd) != 0)
        return;
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n");
    wait_step(s); /* the client has the first event before the second is sent */
    send_str(fd, "9\r\ndata: 2\n\n\r\n");
    wait_step(s);
    send_str(fd, "0\r\n\r\n");
    wait_close(s, fd, 200);
}

static void client_streams_each_chunk_before_the_server_sends_the_next(void **state)
{
    struct raw s;
    raw_start(&s, srv_stream);
    client_up();
    struct res r = {.srv = &s};
    struct http_client_req req = {.url = url_of(s.port, "/sse"), .is_streaming = true};
    run_req(&req, &r);
    assert_int_equal(r.r.code, HS_OK);
    assert_int_equal(r.nchunks, 2);
    assert_string_equal(r.body, "data: 1\n\ndata: 2\n\n");
    assert_null(r.r.body);
    client_down();
    raw_stop(&s);
    assert_int_equal(s.fails, 0);
}

static void srv_stream_then_wait(struct raw *s, int fd, int idx)
{
    if (read_req(s, fd) != 0)
        return;
    send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
    wait_step(s);
    send_str(fd, "6\r\nsecond\r\n0\r\n\r\n");
    wait_close(s, fd, 3000);
}

static void client_cancel_mid_stream_closes_the_connection_and_stays_silent(void **state)
{
    struct raw s;
    raw_start(&s, srv_stream_then_wait);
    client_up();
    struct res r = {.srv = &s, .cancel_on_chunk = true};
    struct http_client_req req = {.url = url_of(s.port, "/"), .is_streaming = true};
    struct http_client_callbacks cb = {on_headers, on_chunk, on_done};
    struct hs_err err;
    assert_int_equal(http_client_request(g_client, &req, &cb, &r, &r.call, &err), HS_OK);
    for (int i = 0; i < 300 && !s.saw_close; i++)
        loop_for_ms(10);
    loop_for_ms(50);
    assert_int_equal(s.saw_close, 1);
    assert_int_equal(r.nchunks, 1);
    assert_int_equal(r.ndone, 0);
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.requests_cancelled, 1);
    assert_int_equal(st.connections_idle, 0);
    client_down();
    raw_stop(&s);
}

static void client_pause_holds_back_chunks_until_resume(void **state)
{
    struct raw s;
    raw_start(&s, srv_stream_then_wait);
    client_up();
    struct res r = {.srv = &s, .pause_on_chunk = true};
    struct http_client_req req = {
        .url = url_of(s.port, "/"), .is_streaming = true, .read_timeout_ms = 100};
    struct http_client_callbacks cb = {on_headers, on_chunk, on_done};
    struct hs_err err;
    assert_int_equal(http_client_request(g_client, &req, &cb, &r, &r.call, &err), HS_OK);
    for (int i = 0; i < 500 && r.nchunks == 0; i++)
        loop_for_ms(10);
    assert_int_equal(r.nchunks, 1);
    loop_for_ms(300); /* the rest arrives meanwhile; paused: nothing delivered, no timeout */
    assert_int_equal(r.nchunks, 1);
    assert_int_equal(r.ndone, 0);
    http_client_resume(r.call);
    assert_int_equal(r.nchunks, 1); /* delivered from the loop, not from inside resume */
    for (int i = 0; i < 500 && r.ndone == 0; i++)
        loop_for_ms(10);
    assert_int_equal(r.ndone, 1);
    assert_int_equal(r.r.code, HS_OK);
    assert_string_equal(r.body, "firstsecond");
    client_down();
    raw_stop(&s);
}

/* ---- failures ---------------------------------------------------------------------- */

static void srv_truncated(struct raw *s, int fd, int idx)
{
    if (read_req(s, fd) == 0)
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
}

static void client_reports_a_server_closing_mid_body(void **state)
{
    struct raw s;
    raw_start(&s, srv_truncated);
    client_up();
    struct res r = {0};
    get(url_of(s.port, "/"), &r);
    assert_int_equal(r.r.code, HS_ECLOSED);
    assert_int_equal(r.r.kind, HTTP_CLIENT_FAIL_RESET);
    assert_int_equal(r.r.status, 200);
    assert_non_null(strstr(r.r.msg, "after 10 of 100 body bytes"));
    client_down();
    raw_stop(&s);
}

static void srv_malformed(struct raw *s, int fd, int idx)
{
    if (read_req(s, fd) == 0)
        send_str(fd, "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n");
}

static void client_rejects_a_malformed_status_line(void **state)
{
    struct raw s;
    raw_start(&s, srv_malformed);
    client_up();
    struct res r = {0};
    get(url_of(s.port, "/"), &r);
    assert_int_equal(r.r.code, HS_EPARSE);
    assert_int_equal(r.r.kind, HTTP_CLIENT_FAIL_MALFORMED);
    assert_non_null(strstr(r.r.msg, "bad status code"));
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.errors[HTTP_CLIENT_FAIL_MALFORMED], 1);
    client_down();
    raw_stop(&s);
}

static void srv_big(struct raw *s, int fd, int idx)
{
    if (read_req(s, fd) != 0)
        return;
    if (strstr(s->last_req, "/cl") != NULL) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
    } else if (strstr(s->last_req, "/gzip") != NULL) {
        static unsigned char zeros[1 << 20], gz[1 << 16];
        z_stream z;
        memset(&z, 0, sizeof(z));
        deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
        z.next_in = zeros;
        z.avail_in = sizeof(zeros);
        z.next_out = gz;
        z.avail_out = sizeof(gz);
        deflate(&z, Z_FINISH);
        char head[128];
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %lu\r\n\r\n",
                 (unsigned long)z.total_out);
        send_str(fd, head);
        HS_IGNORE_RESULT(send(fd, gz, z.total_out, MSG_NOSIGNAL) < 0);
        deflateEnd(&z);
    } else {
        send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        char chunk[1100];
        memset(chunk, 'x', sizeof(chunk));
        memcpy(chunk, "400\r\n", 5);
        memcpy(chunk + 5 + 1024, "\r\n", 2);
        for (int i = 0; i < 8; i++)
            HS_IGNORE_RESULT(send(fd, chunk, 5 + 1024 + 2, MSG_NOSIGNAL) < 0);
    }
    wait_close(s, fd, 2000);
}

static void client_fails_responses_past_the_size_ceiling(void **state)
{
    struct raw s;
    raw_start(&s, srv_big);
    client_up();
    const char *paths[] = {"/cl", "/chunked", "/gzip"};
    for (int i = 0; i < 3; i++) {
        struct res r = {0};
        struct http_client_req req = {
            .url = url_of(s.port, paths[i]), .max_response_bytes = 4096, .decompress_gzip = true};
        run_req(&req, &r);
        assert_int_equal(r.r.code, HS_ETOOBIG);
        assert_int_equal(r.r.kind, HTTP_CLIENT_FAIL_TOO_BIG);
        assert_non_null(strstr(r.r.msg, "4096"));
    }
    client_down();
    raw_stop(&s);
}

static void client_reports_connection_refused(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd); /* nothing listens there now */
    client_up();
    struct res r = {0};
    get(url_of(ntohs(sa.sin_port), "/"), &r);
    assert_int_equal(r.r.code, HS_EIO);
    assert_int_equal(r.r.kind, HTTP_CLIENT_FAIL_CONNECT);
    assert_non_null(strstr(r.r.msg, "refused"));
    client_down();
}

static void client_reports_a_dns_failure_for_an_invalid_name(void **state)
{
    client_up();
    struct res r = {0};
    get("http://no-such-host.invalid:8080/metrics", &r);
    assert_int_equal(r.r.code, HS_ENOTFOUND);
    assert_int_equal(r.r.kind, HTTP_CLIENT_FAIL_DNS);
    assert_non_null(strstr(r.r.msg, "no-such-host.invalid"));
    client_down();
}

static void srv_silent(struct raw *s, int fd, int idx)
{
    if (read_req(s, fd) != 0)
        return;
    if (strstr(s->last_req, "/partial") != NULL)
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
    if (strstr(s->last_req, "/trickle") != NULL) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        for (int i = 0; i < 100 && !s->saw_close; i++) {
            send_str(fd, "x");
            wait_close(s, fd, 20);
        }
    }
    wait_close(s, fd, 3000);
}

static void client_times_out_waiting_for_headers_body_and_total(void **state)
{
    struct raw s;
    raw_start(&s, srv_silent);
    client_up();
    struct res r1 = {0}, r2 = {0}, r3 = {0};
    struct http_client_req q1 = {.url = url_of(s.port, "/none"), .first_byte_timeout_ms = 100};
    run_req(&q1, &r1);
    assert_int_equal(r1.r.code, HS_ETIMEDOUT);
    assert_int_equal(r1.r.kind, HTTP_CLIENT_FAIL_TIMEOUT_FIRST_BYTE);
    struct http_client_req q2 = {.url = url_of(s.port, "/partial"), .read_timeout_ms = 100};
    run_req(&q2, &r2);
    assert_int_equal(r2.r.code, HS_ETIMEDOUT);
    assert_int_equal(r2.r.kind, HTTP_CLIENT_FAIL_TIMEOUT_READ);
    assert_int_equal(r2.r.status, 200);
    struct http_client_req q3 = {
        .url = url_of(s.port, "/trickle"), .read_timeout_ms = 1000, .total_timeout_ms = 150};
    run_req(&q3, &r3);
    assert_int_equal(r3.r.code, HS_ETIMEDOUT);
    assert_int_equal(r3.r.kind, HTTP_CLIENT_FAIL_TIMEOUT_TOTAL);
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.connections_idle, 0); /* timed-out connections are not reused */
    client_down();
    raw_stop(&s);
}

static void client_times_out_a_connect_that_never_completes(void **state)
{
    /* A listener with a full accept queue drops further SYNs: the connect hangs. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t sl = sizeof(sa);
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    int fillers[8], nfill = 0;
    for (; nfill < 8; nfill++) {
        fillers[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        HS_IGNORE_RESULT(connect(fillers[nfill], (struct sockaddr *)&sa, sizeof(sa)) != 0);
    }
    usleep(50000);
    client_up();
    struct res r = {0};
    struct http_client_req req = {.url = url_of(ntohs(sa.sin_port), "/"),
                                  .connect_timeout_ms = 200};
    run_req(&req, &r);
    assert_int_equal(r.r.code, HS_ETIMEDOUT);
    assert_int_equal(r.r.kind, HTTP_CLIENT_FAIL_TIMEOUT_CONNECT);
    client_down();
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    close(lfd);
}

/* ---- API checks -------------------------------------------------------------------- */

static void client_resolves_a_host_name_off_the_loop(void **state)
{
    struct raw s;
    raw_start(&s, srv_framings);
    client_up();
    char url[64];
    snprintf(url, sizeof(url), "http://localhost:%d/cl", s.port);
    struct res r = {0};
    get(url, &r);
    assert_int_equal(r.r.code, HS_OK);
    assert_string_equal(r.body, "fixed");
    assert_non_null(strstr(s.last_req, "Host: localhost:"));
    /* cancelled while the lookup may still run: nothing fires, nothing leaks */
    struct res r2 = {0};
    struct http_client_req req = {.url = url};
    struct http_client_callbacks cb = {on_headers, on_chunk, on_done};
    struct http_client_call *call;
    assert_int_equal(http_client_request(g_client, &req, &cb, &r2, &call, NULL), HS_OK);
    event_base_loop(g_base, EVLOOP_NONBLOCK);
    int ndone = r2.ndone; /* the whole request may already be over: then no cancel */
    if (ndone == 0)
        http_client_cancel(call);
    loop_for_ms(50);
    assert_int_equal(r2.ndone, ndone);
    /* freed with a lookup in flight */
    struct res r3 = {0};
    assert_int_equal(http_client_request(g_client, &req, &cb, &r3, NULL, NULL), HS_OK);
    event_base_loop(g_base, EVLOOP_NONBLOCK);
    ndone = r3.ndone;
    client_down();
    assert_int_equal(r3.ndone, ndone);
    usleep(100000); /* let a detached lookup thread finish before the leak check */
    raw_stop(&s);
}

static void client_connects_to_an_ipv6_literal(void **state)
{
    int lfd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (lfd >= 0)
            close(lfd);
        skip(); /* no IPv6 loopback on this machine */
    }
    socklen_t sl = sizeof(sa);
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    assert_int_equal(listen(lfd, 4), 0);
    client_up();
    char url[64];
    snprintf(url, sizeof(url), "http://[::1]:%d/v6", ntohs(sa.sin6_port));
    struct http_client_req req = {.url = url};
    struct http_client_callbacks cb = {on_headers, on_chunk, on_done};
    struct res r = {0};
    assert_int_equal(http_client_request(g_client, &req, &cb, &r, NULL, NULL), HS_OK);
    int fd = -1;
    for (int i = 0; i < 500 && fd < 0; i++) {
        loop_for_ms(10);
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            fd = accept(lfd, NULL, NULL);
    }
    assert_true(fd >= 0);
    struct raw s = {0};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < 100 && read_req(&s, fd) != 0; i++)
        loop_for_ms(10);
    assert_non_null(strstr(s.last_req, "GET /v6 HTTP/1.1\r\nHost: [::1]:"));
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6");
    for (int i = 0; i < 500 && r.ndone == 0; i++)
        loop_for_ms(10);
    assert_int_equal(r.r.code, HS_OK);
    assert_string_equal(r.body, "v6");
    close(fd);
    close(lfd);
    client_down();
}

static void client_request_rejects_bad_urls_without_calling_back(void **state)
{
    client_up();
    const char *bad[] = {
        "ftp://x/",        "http://",          "http://host:0/",       "http://host:70000/",
        "http://a b/",     "http://[::1/",     "http://user:pw@host/", "http://ho$t/",
        "http://[zz::1]/", "http://host:12ab/"};
    struct http_client_callbacks cb = {NULL, NULL, on_done};
    struct res r = {0};
    for (size_t i = 0; i < HS_ARRAY_LEN(bad); i++) {
        struct http_client_req req = {.url = bad[i]};
        struct hs_err err;
        hs_err_clear(&err);
        assert_int_equal(http_client_request(g_client, &req, &cb, &r, NULL, &err), HS_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    struct http_client_header h = {"X-Bad", "a\r\nInjected: 1"};
    struct http_client_req req = {.url = "http://[::1]:9/x", .headers = &h, .nheaders = 1};
    assert_int_equal(http_client_request(g_client, &req, &cb, &r, NULL, NULL), HS_EINVAL);
    struct http_client_req stream = {.url = "http://127.0.0.1:9/", .is_streaming = true};
    assert_int_equal(http_client_request(g_client, &stream, &cb, &r, NULL, NULL), HS_EINVAL);
    loop_for_ms(20);
    assert_int_equal(r.ndone, 0);
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.requests, 0);
    client_down();
}

static void client_basic_auth_header_is_base64_of_user_colon_password(void **state)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(http_client_basic_auth_header("Aladdin", "open sesame", &b), HS_OK);
    assert_string_equal(b.p, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    hs_buf_reset(&b);
    assert_int_equal(http_client_basic_auth_header("user", "pass", &b), HS_OK);
    assert_string_equal(b.p, "Basic dXNlcjpwYXNz");
    hs_buf_reset(&b);
    assert_int_equal(http_client_basic_auth_header("", "", &b), HS_OK);
    assert_string_equal(b.p, "Basic Og==");
    hs_buf_cleanup(&b);
}

static void srv_echo_request(struct raw *s, int fd, int idx)
{
    if (read_req(s, fd) != 0)
        return;
    char body[16] = {0};
    if (strstr(s->last_req, "Content-Length: 4") != NULL)
        HS_IGNORE_RESULT(recv(fd, body, 4, MSG_WAITALL) < 0);
    if (strcmp(body, "ping") != 0)
        s->fails++;
    send_str(fd, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
}

static void client_sends_method_headers_and_body(void **state)
{
    struct raw s;
    raw_start(&s, srv_echo_request);
    client_up();
    struct res r = {0};
    char body[] = "ping";
    struct http_client_header h[] = {{"Authorization", "Bearer t0k"}, {"X-Scrape", "1"}};
    struct http_client_req req = {.method = "POST",
                                  .url = url_of(s.port, "/write?x=1#frag"),
                                  .headers = h,
                                  .nheaders = 2,
                                  .body = body,
                                  .body_len = 4};
    run_req(&req, &r);
    assert_int_equal(r.r.code, HS_OK);
    assert_int_equal(r.r.status, 201);
    assert_non_null(strstr(s.last_req, "POST /write?x=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(s.last_req, "\r\nAuthorization: Bearer t0k\r\n"));
    assert_non_null(strstr(s.last_req, "\r\nX-Scrape: 1\r\n"));
    client_down();
    raw_stop(&s);
    assert_int_equal(s.fails, 0);
}

static void client_survives_every_allocation_failure_of_a_request(void **state)
{
    struct raw s;
    raw_start(&s, srv_framings);
    int nok = 0, nnomem = 0;
    for (long n = 0; n < 60; n++) {
        client_up();
        struct res r = {0};
        struct http_client_req req = {.url = url_of(s.port, "/chunked")};
        struct http_client_callbacks cb = {on_headers, on_chunk, on_done};
        hs_alloc_fail_after(n);
        int rc = http_client_request(g_client, &req, &cb, &r, NULL, NULL);
        for (int i = 0; rc == HS_OK && i < 500 && r.ndone == 0; i++)
            loop_for_ms(10);
        hs_alloc_fail_after(-1);
        if (getenv("HS_TEST_VERBOSE"))
            fprintf(stderr, "n=%ld rc=%d done=%d code=%d %s\n", n, rc, r.ndone, r.r.code, r.r.msg);
        if (rc == HS_OK) {
            assert_int_equal(r.ndone, 1); /* an error result, never silence */
            if (r.r.code == HS_OK) {
                assert_string_equal(r.body, "abcdefg");
                nok++;
            }
        } else {
            assert_int_equal(rc, HS_ENOMEM);
            nnomem++;
        }
        client_down();
    }
    assert_true(nnomem > 0);
    assert_true(nok > 0);
    raw_stop(&s);
}

int main(void)
{
    alarm(120);
    hs_log_setup(HS_LOG_WARN, HS_LOG_LOGFMT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(client_reuses_one_connection_for_sequential_requests),
        cmocka_unit_test(client_inflates_a_gzip_body_from_the_server),
        cmocka_unit_test(client_fetch_sync_returns_status_and_body),
        cmocka_unit_test(client_reads_every_body_framing),
        cmocka_unit_test(client_talks_to_an_http10_server_without_reusing_it),
        cmocka_unit_test(client_closes_pooled_connections_after_the_idle_timeout),
        cmocka_unit_test(client_keeps_no_idle_connection_when_the_pool_size_is_zero),
        cmocka_unit_test(client_streams_each_chunk_before_the_server_sends_the_next),
        cmocka_unit_test(client_cancel_mid_stream_closes_the_connection_and_stays_silent),
        cmocka_unit_test(client_pause_holds_back_chunks_until_resume),
        cmocka_unit_test(client_reports_a_server_closing_mid_body),
        cmocka_unit_test(client_rejects_a_malformed_status_line),
        cmocka_unit_test(client_fails_responses_past_the_size_ceiling),
        cmocka_unit_test(client_reports_connection_refused),
        cmocka_unit_test(client_reports_a_dns_failure_for_an_invalid_name),
        cmocka_unit_test(client_times_out_waiting_for_headers_body_and_total),
        cmocka_unit_test(client_times_out_a_connect_that_never_completes),
        cmocka_unit_test(client_resolves_a_host_name_off_the_loop),
        cmocka_unit_test(client_connects_to_an_ipv6_literal),
        cmocka_unit_test(client_request_rejects_bad_urls_without_calling_back),
        cmocka_unit_test(client_basic_auth_header_is_base64_of_user_colon_password),
        cmocka_unit_test(client_sends_method_headers_and_body),
        cmocka_unit_test(client_survives_every_allocation_failure_of_a_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
