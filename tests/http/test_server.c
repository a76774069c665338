/*
 * test_server.c - the server over real sockets on 127.0.0.1: routing,
 * keep-alive, pipelining, bodies, gzip, limits and their answers, request
 * ids and the observer.  The server runs on its own loop thread
 * (http_test_client.h); the test drives a blocking client.
 */
#include "hs_test.h"

#include "http/http.h"
#include "http_test_client.h"

#include <event2/event.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- handlers and the observer (loop thread) ------------------------------- */

struct obs {
    char handler[64];
    char method[16];
    int status;
    uint64_t req_bytes, resp_bytes;
};

static struct obs g_obs[64];
static int g_nobs;
static struct hts g_t;
static int g_loop_fail; /* checks failed on the loop thread (cmocka asserts belong to main) */
#define LOOP_CHECK(c) ((c) ? (void)0 : (void)(g_loop_fail++, fprintf(stderr, "failed: %s\n", #c)))

static void observe(void *arg, const char *handler, const char *method, int status,
                    double duration_s, uint64_t request_bytes, uint64_t response_bytes)
{
    if (g_nobs < 64) {
        struct obs *o = &g_obs[g_nobs++];
        snprintf(o->handler, sizeof(o->handler), "%s", handler);
        snprintf(o->method, sizeof(o->method), "%s", method);
        o->status = status;
        o->req_bytes = request_bytes;
        o->resp_bytes = response_bytes;
    }
    LOOP_CHECK(duration_s >= 0);
}

static void h_hello(struct http_request *r, void *arg)
{
    LOOP_CHECK(strncmp(http_request_remote_addr(r), "127.0.0.1:", 10) == 0);
    LOOP_CHECK(strcmp(http_request_handler_name(r), "/hello") == 0);
    LOOP_CHECK(!http_request_is_closed(r));
    http_respond(r, 200, "text/plain", "hello", 5);
}

static void h_path(struct http_request *r, void *arg)
{
    const char *p = http_request_path(r);
    http_respond(r, 200, "text/plain", p, strlen(p));
}

static void h_id(struct http_request *r, void *arg)
{
    const char *id = http_request_id(r);
    http_respond(r, 200, "text/plain", id, strlen(id));
}

static void h_echo(struct http_request *r, void *arg)
{
    const char *all[8];
    size_t na = http_request_param_all(r, "a", all, 8);
    const char *q = http_request_param(r, "q");
    const char *b = http_request_param(r, "b");
    size_t nh = http_request_header_count(r);
    for (size_t i = 0; i < nh; i++) {
        const char *hn, *hv;
        http_request_header_at(r, i, &hn, &hv);
        LOOP_CHECK(hn != NULL && hv != NULL && http_request_header(r, hn) != NULL);
    }
    const char *pn, *pv;
    size_t np = http_request_param_count(r);
    LOOP_CHECK(np == 0 || http_request_param_at(r, np - 1, &pn, &pv) == HS_OK);
    LOOP_CHECK(http_request_param_at(r, np, &pn, &pv) != HS_OK); /* ENOTFOUND, or ENOMEM */
    size_t blen;
    const char *body = http_request_body(r, &blen);
    char *out = hs_arena_printf(http_request_arena(r), "q=%s;a=%s,%s;b=%s;n=%zu;len=%zu",
                                q ? q : "-", na > 0 ? all[0] : "-", na > 1 ? all[1] : "-",
                                b ? b : "-", http_request_param_count(r), blen);
    LOOP_CHECK(strlen(body) == blen);
    http_respond(r, 200, "text/plain", out, strlen(out));
}

static char g_big[4000];

static void h_big(struct http_request *r, void *arg)
{
    int rc = http_response_header(r, "X-Custom", "yes");
    LOOP_CHECK(rc == HS_OK || rc == HS_ENOMEM); /* ENOMEM under fault injection */
    LOOP_CHECK(http_response_header(r, "Content-Length", "1") == HS_EINVAL);
    LOOP_CHECK(http_response_header(r, "X-Bad", "a\r\nb") == HS_EINVAL);
    http_respond(r, 200, "text/plain", g_big, sizeof(g_big));
}

static void slow_fire(evutil_socket_t fd, short what, void *arg)
{
    struct http_request *r = arg;
    http_respond(r, 200, "text/plain", "slow", 4);
}

static void h_slow(struct http_request *r, void *arg)
{
    struct timeval tv = {0, 20000};
    /* the handler returns now and answers from a timer */
    event_base_once(g_t.base, -1, EV_TIMEOUT, slow_fire, r, &tv);
}

static int json_errors(void *arg, int status, const char *msg, struct hs_buf *out,
                       const char **ctype)
{
    *ctype = "application/json";
    if (hs_buf_puts(out, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":") != HS_OK ||
        hs_buf_json_str(out, msg, strlen(msg)) != HS_OK || hs_buf_putc(out, '}') != HS_OK)
        return HS_ENOMEM;
    return HS_OK;
}

static void setup_routes(struct http_server *s, void *arg)
{
    assert_int_equal(http_server_route(s, "GET", "/hello", "/hello", h_hello, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/ui/*", "/ui", h_path, NULL), HS_OK);
    assert_int_equal(http_server_route(s, NULL, "/id", "/id", h_id, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "POST", "/echo", "/echo", h_echo, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/echo", "/echo", h_echo, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/big", "/big", h_big, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/slow", "/slow", h_slow, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "", "x", h_slow, NULL), HS_EINVAL);
    http_server_set_observer(s, observe, NULL);
    if (arg != NULL)
        http_server_set_error_formatter(s, json_errors, NULL);
}

static struct http_server_config g_cfg;

static int start(struct http_server_config *cfg, bool json)
{
    g_nobs = 0;
    for (size_t i = 0; i < sizeof(g_big); i++)
        g_big[i] = "abcdefgh"[i % 8];
    struct http_server_config c;
    if (cfg == NULL) {
        http_server_config_defaults(&c);
        cfg = &c;
    }
    g_cfg = *cfg;
    assert_int_equal(hts_start(&g_t, cfg, setup_routes, json ? &g_t : NULL), 0);
    return g_t.port;
}

static void stop(void)
{
    hts_stop(&g_t);
    assert_int_equal(g_loop_fail, 0);
}

static void noop(void *arg)
{
}

static void sync_loop(void)
{
    hts_call(&g_t, noop, NULL);
}

/* ---- tests --------------------------------------------------------------------- */

static void server_routes_exact_and_prefix_paths_and_answers_404(void **state)
{
    int port = start(NULL, false);
    struct htc_resp r;
    assert_int_equal(htc_exchange(port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    assert_string_equal(r.body, "hello");
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "GET /ui HTTP/1.1\r\n\r\n", &r), 200);
    assert_string_equal(r.body, "/ui");
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "GET /ui/app.js?x=1 HTTP/1.1\r\n\r\n", &r), 200);
    assert_string_equal(r.body, "/ui/app.js");
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "GET http://host:1/ui/abs HTTP/1.1\r\n\r\n", &r), 200);
    assert_string_equal(r.body, "/ui/abs");
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "GET /uix HTTP/1.1\r\n\r\n", &r), 404);
    assert_string_equal(r.body, "not found\n");
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "DELETE /id HTTP/1.1\r\n\r\n", &r), 200);
    htc_resp_free(&r);
    stop();
}

static void server_answers_405_with_allow_for_a_known_path(void **state)
{
    int port = start(NULL, false);
    struct htc_resp r;
    char v[128];
    assert_int_equal(htc_exchange(port, "POST /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r),
                     405);
    assert_non_null(htc_header(&r, "Allow", v, sizeof(v)));
    assert_string_equal(v, "GET, HEAD");
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "PUT /echo HTTP/1.1\r\n\r\n", &r), 405);
    assert_non_null(htc_header(&r, "Allow", v, sizeof(v)));
    assert_string_equal(v, "POST, GET, HEAD");
    htc_resp_free(&r);
    stop();
}

static void server_uses_the_installed_error_formatter(void **state)
{
    int port = start(NULL, true);
    struct htc_resp r;
    char v[128];
    assert_int_equal(htc_exchange(port, "GET /nope HTTP/1.1\r\n\r\n", &r), 404);
    assert_string_equal(htc_header(&r, "Content-Type", v, sizeof(v)), "application/json");
    assert_string_equal(r.body, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":"
                                "\"not found\"}");
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "BAD\r\n\r\n", &r), 400);
    assert_string_equal(htc_header(&r, "Content-Type", v, sizeof(v)), "application/json");
    htc_resp_free(&r);
    stop();
}

static void server_keeps_a_connection_alive_for_two_requests(void **state)
{
    int port = start(NULL, false);
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(htc_send_str(&c, "GET /hello HTTP/1.1\r\n\r\n"), 0);
        assert_int_equal(htc_read(&c, &r, false), 0);
        assert_int_equal(r.status, 200);
        char v[64];
        assert_null(htc_header(&r, "Connection", v, sizeof(v)));
        htc_resp_free(&r);
    }
    struct http_server_stats st = hts_stats(&g_t);
    assert_int_equal(st.connections_accepted, 1);
    assert_int_equal(st.connections_open, 1);
    assert_int_equal(st.requests_total, 2);
    assert_int_equal(st.requests_in_flight, 0);
    htc_close(&c);
    stop();
}

static void server_answers_pipelined_requests_in_order(void **state)
{
    int port = start(NULL, false);
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /slow HTTP/1.1\r\n\r\nGET /ui/one HTTP/1.1\r\n\r\n"
                                      "POST /echo?q=2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                                      "GET /ui/two HTTP/1.1\r\nConnection: close\r\n\r\n"),
                     0);
    const char *want[] = {"slow", "/ui/one", "q=2;a=-,-;b=-;n=1;len=3", "/ui/two"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(htc_read(&c, &r, false), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, want[i]);
        htc_resp_free(&r);
    }
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    stop();
}

static void server_reads_a_chunked_body_and_merges_form_params(void **state)
{
    int port = start(NULL, false);
    struct htc_resp r;
    assert_int_equal(htc_exchange(port,
                                  "POST /echo?q=1&a=x HTTP/1.1\r\n"
                                  "Content-Type: application/x-www-form-urlencoded\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"
                                  "4\r\na=y&\r\n8\r\nb=%20z+w\r\n0\r\n\r\n",
                                  &r),
                     200);
    assert_string_equal(r.body, "q=1;a=x,y;b= z w;n=4;len=12");
    htc_resp_free(&r);
    /* a non-form body is not parsed into params */
    assert_int_equal(htc_exchange(port,
                                  "POST /echo?q=%41%zz HTTP/1.1\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 3\r\n\r\nb=1",
                                  &r),
                     200);
    assert_string_equal(r.body, "q=A%zz;a=-,-;b=-;n=1;len=3");
    htc_resp_free(&r);
    stop();
}

static void server_sends_100_continue_before_reading_the_body(void **state)
{
    int port = start(NULL, false);
    struct htc c;
    struct htc_resp r;
    char line[256];
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                                      "Content-Length: 5\r\n\r\n"),
                     0);
    assert_int_equal(htc_line(&c, line, sizeof(line)), 0);
    assert_string_equal(line, "HTTP/1.1 100 Continue");
    assert_int_equal(htc_line(&c, line, sizeof(line)), 0);
    assert_string_equal(line, "");
    assert_int_equal(htc_send_str(&c, "hello"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "q=-;a=-,-;b=-;n=0;len=5");
    htc_resp_free(&r);
    htc_close(&c);
    stop();
}

static void server_gzips_large_bodies_only_when_accepted(void **state)
{
    int port = start(NULL, false);
    struct htc_resp r;
    char v[128];
    assert_int_equal(
        htc_exchange(port, "GET /big HTTP/1.1\r\nAccept-Encoding: deflate, gzip\r\n\r\n", &r), 200);
    assert_string_equal(htc_header(&r, "Content-Encoding", v, sizeof(v)), "gzip");
    assert_string_equal(htc_header(&r, "Vary", v, sizeof(v)), "Accept-Encoding");
    assert_string_equal(htc_header(&r, "X-Custom", v, sizeof(v)), "yes");
    assert_true(r.body_len < sizeof(g_big));
    char plain[8192];
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)r.body;
    z.avail_in = (uInt)r.body_len;
    z.next_out = (Bytef *)plain;
    z.avail_out = sizeof(plain);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, sizeof(g_big));
    assert_memory_equal(plain, g_big, sizeof(g_big));
    inflateEnd(&z);
    htc_resp_free(&r);

    const char *no_gzip[] = {"GET /big HTTP/1.1\r\n\r\n",
                             "GET /big HTTP/1.1\r\nAccept-Encoding: gzip;q=0, br\r\n\r\n",
                             "GET /big HTTP/1.1\r\nAccept-Encoding: gzipx\r\n\r\n"};
    for (size_t i = 0; i < HS_ARRAY_LEN(no_gzip); i++) {
        assert_int_equal(htc_exchange(port, no_gzip[i], &r), 200);
        assert_null(htc_header(&r, "Content-Encoding", v, sizeof(v)));
        assert_string_equal(htc_header(&r, "Vary", v, sizeof(v)), "Accept-Encoding");
        assert_int_equal(r.body_len, sizeof(g_big));
        htc_resp_free(&r);
    }
    /* small bodies are never compressed */
    assert_int_equal(htc_exchange(port, "GET /hello HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n", &r),
                     200);
    assert_null(htc_header(&r, "Content-Encoding", v, sizeof(v)));
    assert_string_equal(r.body, "hello");
    htc_resp_free(&r);
    stop();
}

static void server_answers_head_without_a_body(void **state)
{
    int port = start(NULL, false);
    struct htc c;
    struct htc_resp r;
    char v[64];
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "HEAD /big HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(htc_read(&c, &r, true), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(htc_header(&r, "Content-Length", v, sizeof(v)), "4000");
    htc_resp_free(&r);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_string_equal(r.body, "hello");
    htc_resp_free(&r);
    htc_close(&c);
    stop();
}

static void server_answers_431_to_oversized_headers_and_serves_the_next_connection(void **state)
{
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    cfg.max_header_bytes = 1024;
    int port = start(&cfg, false);
    char req[4096];
    snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nX-Long: %02000d\r\n\r\n", 1);
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, req), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 431);
    char v[64];
    assert_string_equal(htc_header(&r, "Connection", v, sizeof(v)), "close");
    assert_non_null(htc_header(&r, "X-Request-Id", v, sizeof(v)));
    htc_resp_free(&r);
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    assert_int_equal(htc_exchange(port, "GET /hello HTTP/1.1\r\n\r\n", &r), 200);
    htc_resp_free(&r);
    struct http_server_stats st = hts_stats(&g_t);
    assert_int_equal(st.protocol_errors, 1);
    stop();
}

static void server_answers_400_to_a_malformed_request_line_and_closes(void **state)
{
    int port = start(NULL, false);
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /hello HTTP/1.1 extra\r\n\r\n"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "HTTP version"));
    htc_resp_free(&r);
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    assert_int_equal(htc_exchange(port, "GET / HTTP/3.0\r\n\r\n", &r), 505);
    htc_resp_free(&r);
    stop();
}

static void server_answers_413_before_reading_a_huge_body(void **state)
{
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    cfg.max_body_bytes = 1000;
    int port = start(&cfg, false);
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    /* only the headers are sent: the answer must not wait for the body */
    assert_int_equal(htc_send_str(&c, "POST /echo HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n"),
                     0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 413);
    htc_resp_free(&r);
    htc_close(&c);
    /* a chunked body passing the limit midway */
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3e8\r\n");
    memset(req + n, 'x', 1000);
    snprintf(req + n + 1000, sizeof(req) - (size_t)n - 1000, "\r\n1\r\nx\r\n0\r\n\r\n");
    assert_int_equal(htc_exchange(port, req, &r), 413);
    htc_resp_free(&r);
    stop();
}

static void server_answers_408_when_headers_arrive_too_slowly(void **state)
{
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    cfg.header_timeout_ms = 150;
    int port = start(&cfg, false);
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /hello HTTP/1.1\r\nHo"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 408);
    htc_resp_free(&r);
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    /* a connection that sends nothing at all gets the same answer */
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 408);
    htc_resp_free(&r);
    htc_close(&c);
    sync_loop();
    assert_int_equal(g_nobs, 2);
    assert_string_equal(g_obs[0].handler, "other");
    assert_int_equal(g_obs[0].status, 408);
    stop();
}

static void server_answers_408_when_the_body_stalls(void **state)
{
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    cfg.read_timeout_ms = 150;
    int port = start(&cfg, false);
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 408);
    assert_non_null(strstr(r.body, "body"));
    htc_resp_free(&r);
    htc_close(&c);
    stop();
}

static void server_closes_an_idle_keep_alive_connection_silently(void **state)
{
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    cfg.idle_timeout_ms = 100;
    int port = start(&cfg, false);
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /hello HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    htc_resp_free(&r);
    assert_true(htc_sees_eof(&c)); /* no bytes, just the close */
    htc_close(&c);
    stop();
}

static void server_answers_503_beyond_max_connections(void **state)
{
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    cfg.max_connections = 2;
    int port = start(&cfg, false);
    struct htc a, b, c;
    struct htc_resp r;
    assert_int_equal(htc_open(&a, port), 0);
    assert_int_equal(htc_open(&b, port), 0);
    for (struct htc *x = &a; x != NULL; x = x == &a ? &b : NULL) {
        assert_int_equal(htc_send_str(x, "GET /hello HTTP/1.1\r\n\r\n"), 0);
        assert_int_equal(htc_read(x, &r, false), 0);
        assert_int_equal(r.status, 200);
        htc_resp_free(&r);
    }
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /hello HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 503);
    htc_resp_free(&r);
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    htc_close(&a);
    /* once a slot frees, connections are served again */
    struct http_server_stats st;
    for (int i = 0; i < 500; i++) {
        st = hts_stats(&g_t);
        if (st.connections_open == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(st.connections_open, 1);
    assert_int_equal(st.connections_rejected, 1);
    assert_int_equal(htc_exchange(port, "GET /hello HTTP/1.1\r\n\r\n", &r), 200);
    htc_resp_free(&r);
    htc_close(&b);
    stop();
}

static void server_reports_each_request_to_the_observer(void **state)
{
    int port = start(NULL, false);
    struct htc_resp r;
    assert_int_equal(htc_exchange(port, "GET /hello HTTP/1.1\r\n\r\n", &r), 200);
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "GET /nope HTTP/1.1\r\n\r\n", &r), 404);
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "POST /hello HTTP/1.1\r\n\r\n", &r), 405);
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "GET /ui/x HTTP/1.1\r\nBad header\r\n\r\n", &r), 400);
    htc_resp_free(&r);
    sync_loop();
    assert_int_equal(g_nobs, 4);
    const struct obs want[] = {{"/hello", "GET", 200, 0, 0},
                               {"other", "GET", 404, 0, 0},
                               {"other", "POST", 405, 0, 0},
                               {"other", "", 400, 0, 0}};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(g_obs[i].handler, want[i].handler);
        assert_string_equal(g_obs[i].method, want[i].method);
        assert_int_equal(g_obs[i].status, want[i].status);
        assert_true(g_obs[i].resp_bytes > 0);
    }
    assert_int_equal(g_obs[0].req_bytes, strlen("GET /hello HTTP/1.1\r\n\r\n"));
    stop();
}

static void server_echoes_a_sane_request_id_and_generates_one_otherwise(void **state)
{
    int port = start(NULL, false);
    struct htc_resp r;
    char v[128], first[128];
    assert_int_equal(htc_exchange(port, "GET /id HTTP/1.1\r\nX-Request-Id: abc-123\r\n\r\n", &r),
                     200);
    assert_string_equal(htc_header(&r, "X-Request-Id", v, sizeof(v)), "abc-123");
    assert_string_equal(r.body, "abc-123");
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "GET /id HTTP/1.1\r\nX-Request-Id: bad id!\r\n\r\n", &r),
                     200);
    assert_string_equal(htc_header(&r, "X-Request-Id", first, sizeof(first)), r.body);
    assert_int_equal(strlen(first), 16);
    htc_resp_free(&r);
    assert_int_equal(htc_exchange(port, "GET /nope HTTP/1.1\r\n\r\n", &r), 404);
    assert_non_null(htc_header(&r, "X-Request-Id", v, sizeof(v)));
    assert_int_equal(strlen(v), 16);
    assert_string_not_equal(v, first);
    htc_resp_free(&r);
    stop();
}

static void server_closes_http10_unless_keep_alive_is_asked(void **state)
{
    int port = start(NULL, false);
    struct htc c;
    struct htc_resp r;
    char v[64];
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /hello HTTP/1.0\r\n\r\n"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_string_equal(htc_header(&r, "Connection", v, sizeof(v)), "close");
    htc_resp_free(&r);
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    assert_int_equal(htc_open(&c, port), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(htc_send_str(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
                         0);
        assert_int_equal(htc_read(&c, &r, false), 0);
        assert_string_equal(htc_header(&r, "Connection", v, sizeof(v)), "keep-alive");
        assert_string_equal(r.body, "hello");
        htc_resp_free(&r);
    }
    htc_close(&c);
    stop();
}

static void server_refuses_bad_listen_addresses(void **state)
{
    struct event_base *base = event_base_new();
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    const char *bad[] = {"nocolon", "127.0.0.1:99999", "[::1:80", "127.0.0.1:x"};
    for (size_t i = 0; i < HS_ARRAY_LEN(bad); i++) {
        cfg.listen = bad[i];
        struct hs_err err;
        struct http_server *s = http_server_new(base, &cfg, &err);
        assert_non_null(s);
        assert_int_equal(http_server_start(s, &err), HS_EINVAL);
        assert_non_null(strstr(err.msg, bad[i]));
        http_server_free(s);
    }
    cfg.listen = "localhost:0";
    struct hs_err err;
    struct http_server *s = http_server_new(base, &cfg, &err);
    assert_int_equal(http_server_start(s, &err), HS_OK);
    assert_true(http_server_port(s) > 0);
    http_server_free(s);
    cfg.listen = "[::1]:0";
    s = http_server_new(base, &cfg, &err);
    if (http_server_start(s, &err) == HS_OK) /* hosts without IPv6 cannot bind it */
        assert_true(http_server_port(s) > 0);
    http_server_free(s);
    cfg.max_connections = 0;
    assert_null(http_server_new(base, &cfg, &err));
    assert_int_equal(err.code, HS_EINVAL);
    event_base_free(base);
}

static void set_fail(void *arg)
{
    hs_alloc_fail_after(*(long *)arg);
}

static void server_survives_an_allocation_failure_at_every_step(void **state)
{
    const char *reqs = "POST /echo?q=1 HTTP/1.1\r\n"
                       "Content-Type: application/x-www-form-urlencoded\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n4\r\na=y&\r\n0\r\n\r\n"
                       "GET /big HTTP/1.1\r\nAccept-Encoding: gzip\r\nX-A: 1\r\nX-B: 2\r\n"
                       "X-C: 3\r\nX-D: 4\r\nX-E: 5\r\nX-F: 6\r\nX-G: 7\r\nX-H: 8\r\n"
                       "X-I: 9\r\nX-J: 10\r\nX-K: 11\r\nX-L: 12\r\nX-M: 13\r\nX-N: 14\r\n"
                       "X-O: 15\r\nX-P: 16\r\nX-Q: 17\r\n\r\n";
    bool clean = false;
    long k = 0;
    for (; k < 400 && !clean; k++) {
        int port = start(NULL, false);
        hts_call(&g_t, set_fail, &k);
        struct htc c;
        int ok = 0;
        if (htc_open(&c, port) == 0) {
            if (htc_send_str(&c, reqs) == 0) {
                for (int i = 0; i < 2; i++) {
                    struct htc_resp r;
                    if (htc_read(&c, &r, false) != 0) {
                        htc_resp_free(&r);
                        break;
                    }
                    /* every answer is a whole response: success or a 500 */
                    assert_true(r.status == 200 || r.status == 500);
                    char v[32];
                    ok += r.status == 200 &&
                          (i == 0 ? strcmp(r.body, "q=1;a=y,-;b=-;n=2;len=4") == 0
                                  : htc_header(&r, "Content-Encoding", v, sizeof(v)) != NULL);
                    htc_resp_free(&r);
                }
            }
            htc_close(&c);
        }
        long off = -1;
        hts_call(&g_t, set_fail, &off);
        clean = ok == 2 && hs_alloc_calls() > 0;
        stop();
    }
    print_message("fault loop: clean after %ld steps\n", k);
    assert_true(clean);
}

int main(void)
{
    alarm(120);
    hs_log_setup(HS_LOG_WARN, HS_LOG_LOGFMT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_routes_exact_and_prefix_paths_and_answers_404),
        cmocka_unit_test(server_answers_405_with_allow_for_a_known_path),
        cmocka_unit_test(server_uses_the_installed_error_formatter),
        cmocka_unit_test(server_keeps_a_connection_alive_for_two_requests),
        cmocka_unit_test(server_answers_pipelined_requests_in_order),
        cmocka_unit_test(server_reads_a_chunked_body_and_merges_form_params),
        cmocka_unit_test(server_sends_100_continue_before_reading_the_body),
        cmocka_unit_test(server_gzips_large_bodies_only_when_accepted),
        cmocka_unit_test(server_answers_head_without_a_body),
        cmocka_unit_test(server_answers_431_to_oversized_headers_and_serves_the_next_connection),
        cmocka_unit_test(server_answers_400_to_a_malformed_request_line_and_closes),
        cmocka_unit_test(server_answers_413_before_reading_a_huge_body),
        cmocka_unit_test(server_answers_408_when_headers_arrive_too_slowly),
        cmocka_unit_test(server_answers_408_when_the_body_stalls),
        cmocka_unit_test(server_closes_an_idle_keep_alive_connection_silently),
        cmocka_unit_test(server_answers_503_beyond_max_connections),
        cmocka_unit_test(server_reports_each_request_to_the_observer),
        cmocka_unit_test(server_echoes_a_sane_request_id_and_generates_one_otherwise),
        cmocka_unit_test(server_closes_http10_unless_keep_alive_is_asked),
        cmocka_unit_test(server_refuses_bad_listen_addresses),
        cmocka_unit_test(server_survives_an_allocation_failure_at_every_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
