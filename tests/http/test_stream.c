/*
 * test_stream.c - streamed answers: chunk-by-chunk delivery, HTTP/1.0
 * close-delimited streams, backpressure and the drain callback, a client
 * that leaves mid-stream, and graceful shutdown around an in-flight stream.
 */
#include "hs_test.h"

#include "http/http.h"
#include "http_test_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct hts g_t;
static int g_loop_fail;
#define LOOP_CHECK(c) ((c) ? (void)0 : (void)(g_loop_fail++, fprintf(stderr, "failed: %s\n", #c)))

/* Loop-thread state of the stream under test. */
static struct http_request *g_req;
static int g_close_fired;
static int g_write_after_close; /* return of a write made in the close callback */
static int g_drained;
static int g_done;
static int g_statuses[16];
static int g_nstatus;

static void observe(void *arg, const char *handler, const char *method, int status,
                    double duration_s, uint64_t request_bytes, uint64_t response_bytes)
{
    if (g_nstatus < 16)
        g_statuses[g_nstatus++] = status;
}

static void on_close(struct http_request *r, void *arg)
{
    g_close_fired++;
    g_write_after_close = http_stream_write(r, "x", 1);
    LOOP_CHECK(http_request_is_closed(r));
    http_stream_end(r); /* finishing from inside the close callback is allowed */
    g_req = NULL;
}

static void h_stream(struct http_request *r, void *arg)
{
    LOOP_CHECK(http_stream_start(r, 200, "text/event-stream") == HS_OK);
    LOOP_CHECK(http_stream_start(r, 200, "text/event-stream") == HS_EINVAL);
    LOOP_CHECK(http_stream_write(r, "data: 1\n\n", 9) == HS_OK);
    http_stream_on_close(r, on_close, NULL);
    g_req = r;
}

static void write_second_and_end(void *arg)
{
    if (g_req == NULL) {
        g_loop_fail++;
        return;
    }
    LOOP_CHECK(http_stream_write(g_req, "data: 2\n\n", 9) == HS_OK);
    http_stream_end(g_req);
    g_req = NULL;
}

static void on_drain(struct http_request *r, void *arg)
{
    g_drained++;
    http_stream_end(r);
}

#define FLOOD_BYTES (8u << 20)

static void on_flood_close(struct http_request *r, void *arg)
{
    g_close_fired++;
    http_request_release(r);
}

static void h_flood(struct http_request *r, void *arg)
{
    LOOP_CHECK(http_stream_start(r, 200, "application/octet-stream") == HS_OK);
    char *block = calloc(1, 65536);
    for (unsigned i = 0; i < FLOOD_BYTES / 65536; i++)
        LOOP_CHECK(http_stream_write(r, block, 65536) == HS_OK);
    free(block);
    LOOP_CHECK(http_stream_pending(r) > 64 * 1024);
    http_stream_on_drain(r, on_drain, NULL);
    http_stream_on_close(r, on_flood_close, NULL);
}

static void h_held(struct http_request *r, void *arg)
{
    g_req = r; /* answered later by answer_held */
}

static void answer_held(void *arg)
{
    if (g_req == NULL) {
        g_loop_fail++;
        return;
    }
    http_respond(g_req, 200, "text/plain", "late", 4);
    g_req = NULL;
}

/* A lazy head and queued chunks wait until flush_and_end runs. */
static void h_lazy(struct http_request *r, void *arg)
{
    LOOP_CHECK(http_stream_start_lazy(r, 200, "text/event-stream") == HS_OK);
    LOOP_CHECK(http_stream_queue(r, "data: 1\n\n", 9) == HS_OK);
    LOOP_CHECK(http_stream_queue(r, "data: 2\n\n", 9) == HS_OK);
    g_req = r;
}

static void flush_and_end(void *arg)
{
    if (g_req == NULL) {
        g_loop_fail++;
        return;
    }
    http_stream_flush(g_req);
    LOOP_CHECK(http_stream_queue(g_req, "data: 3\n\n", 9) == HS_OK);
    http_stream_end(g_req); /* the queued last chunk and the terminator together */
    g_req = NULL;
}

/* A lazy head with no body at all: end sends head and terminator. */
static void h_lazy_empty(struct http_request *r, void *arg)
{
    LOOP_CHECK(http_stream_start_lazy(r, 200, "text/plain") == HS_OK);
    http_stream_end(r);
}

static void h_hello(struct http_request *r, void *arg)
{
    http_respond(r, 200, "text/plain", "hello", 5);
}

static void setup(struct http_server *s, void *arg)
{
    if (http_server_route(s, "GET", "/stream", "/stream", h_stream, NULL) != HS_OK ||
        http_server_route(s, "GET", "/flood", "/flood", h_flood, NULL) != HS_OK ||
        http_server_route(s, "GET", "/hello", "/hello", h_hello, NULL) != HS_OK ||
        http_server_route(s, "GET", "/held", "/held", h_held, NULL) != HS_OK ||
        http_server_route(s, "GET", "/lazy", "/lazy", h_lazy, NULL) != HS_OK ||
        http_server_route(s, "GET", "/lazy-empty", "/lazy-empty", h_lazy_empty, NULL) != HS_OK)
        g_loop_fail++;
    http_server_set_observer(s, observe, NULL);
}

static int start_with(struct http_server_config *cfg)
{
    g_req = NULL;
    g_close_fired = g_drained = g_done = g_nstatus = 0;
    g_write_after_close = 0;
    assert_int_equal(hts_start(&g_t, cfg, setup, NULL), 0);
    return g_t.port;
}

static int start(void)
{
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    return start_with(&cfg);
}

static void stop(void)
{
    hts_stop(&g_t);
    assert_int_equal(g_loop_fail, 0);
}

struct peek {
    int *var;
    int value;
};

static void peek_cb(void *arg)
{
    struct peek *p = arg;
    p->value = *p->var;
}

/* Reads a loop-thread int. */
static int peek(int *var)
{
    struct peek p = {var, 0};
    hts_call(&g_t, peek_cb, &p);
    return p.value;
}

/* Waits (bounded) until *var reaches 'want' on the loop thread. */
static int wait_for(int *var, int want)
{
    int v = 0;
    for (int i = 0; i < 500; i++) {
        v = peek(var);
        if (v >= want)
            break;
        usleep(10000);
    }
    return v;
}

static int g_has_req;

static void peek_req_cb(void *arg)
{
    g_has_req = g_req != NULL;
}

/* Waits (bounded) until a handler holds g_req; 1 when it does. */
static int wait_for_req(void)
{
    for (int i = 0; i < 500; i++) {
        hts_call(&g_t, peek_req_cb, NULL);
        if (g_has_req)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* Opens /stream and reads its headers and first chunk. */
static void open_stream(struct htc *c, int port, const char *version)
{
    char req[128], v[64];
    struct htc_resp r;
    snprintf(req, sizeof(req), "GET /stream %s\r\n\r\n", version);
    assert_int_equal(htc_open(c, port), 0);
    assert_int_equal(htc_send_str(c, req), 0);
    /* read only the head: the body is still being produced */
    memset(&r, 0, sizeof(r));
    char line[512];
    assert_int_equal(htc_line(c, line, sizeof(line)), 0);
    assert_non_null(strstr(line, " 200 "));
    size_t hl = (size_t)snprintf(r.head, sizeof(r.head), "%s\r\n", line);
    while (htc_line(c, line, sizeof(line)) == 0 && line[0] != '\0')
        hl += (size_t)snprintf(r.head + hl, sizeof(r.head) - hl, "%s\r\n", line);
    assert_string_equal(htc_header(&r, "Content-Type", v, sizeof(v)), "text/event-stream");
    if (strcmp(version, "HTTP/1.1") == 0) {
        assert_string_equal(htc_header(&r, "Transfer-Encoding", v, sizeof(v)), "chunked");
        char data[16];
        assert_int_equal(htc_chunk_size(c), 9);
        assert_int_equal(htc_chunk_data(c, data, 9), 0);
        assert_memory_equal(data, "data: 1\n\n", 9);
    } else {
        assert_null(htc_header(&r, "Transfer-Encoding", v, sizeof(v)));
        assert_string_equal(htc_header(&r, "Connection", v, sizeof(v)), "close");
        char data[16];
        assert_int_equal(htc_bytes(c, data, 9), 0);
        assert_memory_equal(data, "data: 1\n\n", 9);
    }
}

static void stream_delivers_each_chunk_before_the_next_is_written(void **state)
{
    int port = start();
    struct htc c;
    open_stream(&c, port, "HTTP/1.1");
    /* the first chunk arrived while the handler still holds the stream */
    struct http_server_stats st = hts_stats(&g_t);
    assert_int_equal(st.requests_in_flight, 1);
    hts_call(&g_t, write_second_and_end, NULL);
    char data[16];
    assert_int_equal(htc_chunk_size(&c), 9);
    assert_int_equal(htc_chunk_data(&c, data, 9), 0);
    assert_memory_equal(data, "data: 2\n\n", 9);
    assert_int_equal(htc_chunk_size(&c), 0);
    char line[16];
    assert_int_equal(htc_line(&c, line, sizeof(line)), 0);
    assert_string_equal(line, "");
    /* the connection is kept for the next request */
    struct htc_resp r;
    assert_int_equal(htc_send_str(&c, "GET /hello HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_string_equal(r.body, "hello");
    htc_resp_free(&r);
    st = hts_stats(&g_t);
    assert_int_equal(st.requests_in_flight, 0);
    assert_int_equal(peek(&g_close_fired), 0);
    htc_close(&c);
    stop();
}

static void stream_over_http10_ends_with_the_connection(void **state)
{
    int port = start();
    struct htc c;
    open_stream(&c, port, "HTTP/1.0");
    hts_call(&g_t, write_second_and_end, NULL);
    char data[16];
    assert_int_equal(htc_bytes(&c, data, 9), 0);
    assert_memory_equal(data, "data: 2\n\n", 9);
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    stop();
}

static void stream_client_disconnect_fires_the_close_callback_once(void **state)
{
    int port = start();
    struct htc c;
    open_stream(&c, port, "HTTP/1.1");
    htc_close(&c);
    assert_int_equal(wait_for(&g_close_fired, 1), 1);
    assert_int_equal(peek(&g_write_after_close), HS_ECLOSED);
    assert_int_equal(peek(&g_nstatus), 1);
    assert_int_equal(g_statuses[0], 200);
    struct http_server_stats st = hts_stats(&g_t);
    assert_int_equal(st.requests_in_flight, 0);
    assert_int_equal(st.connections_open, 0);
    assert_int_equal(peek(&g_close_fired), 1);
    stop();
}

static void stream_drain_fires_when_a_slow_client_catches_up(void **state)
{
    int port = start();
    struct htc c;
    struct htc_resp r;
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /flood HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, FLOOD_BYTES);
    htc_resp_free(&r);
    assert_int_equal(peek(&g_drained), 1);
    htc_close(&c);
    stop();
}

static void on_done(void *arg)
{
    g_done++;
}

static void shutdown_cb(void *arg)
{
    http_server_shutdown(g_t.srv, *(int64_t *)arg, on_done, NULL);
}

static void shutdown_waits_for_an_in_flight_stream_then_calls_done_once(void **state)
{
    int port = start();
    struct htc idle, c;
    struct htc_resp r;
    assert_int_equal(htc_open(&idle, port), 0);
    assert_int_equal(htc_send_str(&idle, "GET /hello HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(htc_read(&idle, &r, false), 0);
    htc_resp_free(&r);
    open_stream(&c, port, "HTTP/1.1");
    int64_t timeout_ms = 10000;
    hts_call(&g_t, shutdown_cb, &timeout_ms);
    assert_int_equal(peek(&g_done), 0);
    /* idle keep-alive connections are closed at once, new ones refused */
    assert_true(htc_sees_eof(&idle));
    htc_close(&idle);
    struct htc refused;
    assert_int_equal(htc_open(&refused, port), -1);
    assert_int_equal(peek(&g_done), 0);
    /* the stream goes on and ends normally; then the connection closes */
    hts_call(&g_t, write_second_and_end, NULL);
    char data[16];
    assert_int_equal(htc_chunk_size(&c), 9);
    assert_int_equal(htc_chunk_data(&c, data, 9), 0);
    assert_int_equal(htc_chunk_size(&c), 0);
    char line[16];
    assert_int_equal(htc_line(&c, line, sizeof(line)), 0);
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    assert_int_equal(wait_for(&g_done, 1), 1);
    assert_int_equal(peek(&g_close_fired), 0);
    assert_int_equal(peek(&g_done), 1);
    stop();
}

static void shutdown_deadline_closes_a_stream_and_calls_done_once(void **state)
{
    int port = start();
    struct htc c;
    open_stream(&c, port, "HTTP/1.1");
    int64_t timeout_ms = 50;
    hts_call(&g_t, shutdown_cb, &timeout_ms);
    assert_int_equal(wait_for(&g_done, 1), 1);
    assert_int_equal(peek(&g_close_fired), 1);
    assert_true(htc_sees_eof(&c)); /* truncated: no final chunk */
    htc_close(&c);
    hts_call(&g_t, shutdown_cb, &timeout_ms); /* a second call changes nothing */
    usleep(100000);
    assert_int_equal(peek(&g_done), 1);
    stop();
}

static void shutdown_answers_a_held_request_with_connection_close(void **state)
{
    int port = start();
    struct htc c;
    struct htc_resp r;
    char v[32];
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /held HTTP/1.1\r\n\r\n"), 0);
    struct http_server_stats st;
    for (int i = 0; i < 500; i++) {
        st = hts_stats(&g_t);
        if (st.requests_in_flight == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(st.requests_in_flight, 1);
    int64_t timeout_ms = 10000;
    hts_call(&g_t, shutdown_cb, &timeout_ms);
    assert_int_equal(peek(&g_done), 0);
    hts_call(&g_t, answer_held, NULL);
    assert_int_equal(htc_read(&c, &r, false), 0);
    assert_string_equal(r.body, "late");
    assert_string_equal(htc_header(&r, "Connection", v, sizeof(v)), "close");
    htc_resp_free(&r);
    assert_true(htc_sees_eof(&c));
    htc_close(&c);
    assert_int_equal(wait_for(&g_done, 1), 1);
    stop();
}

static void stream_write_timeout_closes_a_client_that_stops_reading(void **state)
{
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    cfg.write_timeout_ms = 100;
    int port = start_with(&cfg);
    struct htc c;
    assert_int_equal(htc_open(&c, port), 0);
    int small = 4096;
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(htc_send_str(&c, "GET /flood HTTP/1.1\r\n\r\n"), 0);
    /* never read: the server's writes stall and the timeout closes it */
    assert_int_equal(wait_for(&g_close_fired, 1), 1);
    assert_int_equal(peek(&g_drained), 0);
    struct http_server_stats st = hts_stats(&g_t);
    assert_int_equal(st.connections_open, 0);
    assert_int_equal(st.requests_in_flight, 0);
    htc_close(&c);
    stop();
}

static void lazy_head_and_queued_chunks_leave_in_order_on_flush_and_end(void **state)
{
    int port = start();
    struct htc c;
    assert_int_equal(htc_open(&c, port), 0);
    assert_int_equal(htc_send_str(&c, "GET /lazy HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(wait_for_req(), 1);
    hts_call(&g_t, flush_and_end, NULL);
    char line[512], v[64];
    struct htc_resp r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(htc_line(&c, line, sizeof(line)), 0);
    assert_non_null(strstr(line, " 200 "));
    size_t hl = (size_t)snprintf(r.head, sizeof(r.head), "%s\r\n", line);
    while (htc_line(&c, line, sizeof(line)) == 0 && line[0] != '\0')
        hl += (size_t)snprintf(r.head + hl, sizeof(r.head) - hl, "%s\r\n", line);
    assert_string_equal(htc_header(&r, "Transfer-Encoding", v, sizeof(v)), "chunked");
    char data[16];
    for (int i = 1; i <= 3; i++) {
        char want[16];
        snprintf(want, sizeof(want), "data: %d\n\n", i);
        assert_int_equal(htc_chunk_size(&c), 9);
        assert_int_equal(htc_chunk_data(&c, data, 9), 0);
        assert_memory_equal(data, want, 9);
    }
    assert_int_equal(htc_chunk_size(&c), 0);
    assert_int_equal(htc_line(&c, line, sizeof(line)), 0);
    assert_string_equal(line, "");
    /* the connection is kept for the next request */
    assert_int_equal(htc_send_str(&c, "GET /lazy-empty HTTP/1.1\r\n\r\n"), 0);
    struct htc_resp r2;
    assert_int_equal(htc_read(&c, &r2, false), 0);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.body, "");
    htc_resp_free(&r2);
    htc_close(&c);
    stop();
}

int main(void)
{
    alarm(120);
    hs_log_setup(HS_LOG_WARN, HS_LOG_LOGFMT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_delivers_each_chunk_before_the_next_is_written),
        cmocka_unit_test(lazy_head_and_queued_chunks_leave_in_order_on_flush_and_end),
        cmocka_unit_test(stream_over_http10_ends_with_the_connection),
        cmocka_unit_test(stream_client_disconnect_fires_the_close_callback_once),
        cmocka_unit_test(stream_drain_fires_when_a_slow_client_catches_up),
        cmocka_unit_test(shutdown_waits_for_an_in_flight_stream_then_calls_done_once),
        cmocka_unit_test(shutdown_deadline_closes_a_stream_and_calls_done_once),
        cmocka_unit_test(shutdown_answers_a_held_request_with_connection_close),
        cmocka_unit_test(stream_write_timeout_closes_a_client_that_stops_reading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
