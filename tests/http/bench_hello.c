/*
 * bench_hello.c - a trivial-handler server for measuring the http module's
 * request rate with wrk.  Not a test (CMake does not build it); build it
 * against a release build of the module and run it by hand:
 *
 *   cmake -S . -B build/http-rel -DCMAKE_BUILD_TYPE=Release
 *   cmake --build build/http-rel -j2 --target hs_http
 *   cc -O2 -Isrc tests/http/bench_hello.c build/http-rel/libhs_http.a \
 *      build/http-rel/libhs_core.a $(pkg-config --libs libevent_core zlib yaml-0.1 jansson) \
 *      -lm -o /tmp/bench_hello
 *   /tmp/bench_hello 18080 &
 *   wrk -t1 -c50 -d10s http://127.0.0.1:18080/hello
 *
 * /hello answers 5 bytes; /stream answers 8 SSE events of 32 bytes.
 */
#include "http/http.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hello(struct http_request *r, void *arg)
{
    http_respond(r, 200, "text/plain", "hello", 5);
}

static void stream(struct http_request *r, void *arg)
{
    static const char ev[] = "data: {\"token\":\"abcdefghij\"}\n\n";
    if (http_stream_start(r, 200, "text/event-stream") != HS_OK) {
        http_request_release(r);
        return;
    }
    for (int i = 0; i < 8; i++) {
        if (http_stream_write(r, ev, sizeof(ev) - 1) != HS_OK)
            break;
    }
    http_stream_end(r);
}

int main(int argc, char **argv)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", argc > 1 ? argv[1] : "18080");
    hs_log_setup(HS_LOG_WARN, HS_LOG_LOGFMT, NULL);
    struct event_base *base = event_base_new();
    struct http_server_config cfg;
    http_server_config_defaults(&cfg);
    cfg.listen = listen;
    struct hs_err err;
    struct http_server *s = http_server_new(base, &cfg, &err);
    if (s == NULL || http_server_route(s, "GET", "/hello", "/hello", hello, NULL) != HS_OK ||
        http_server_route(s, "GET", "/stream", "/stream", stream, NULL) != HS_OK ||
        http_server_start(s, &err) != HS_OK) {
        fprintf(stderr, "bench_hello: %s\n", err.msg);
        return 1;
    }
    event_base_dispatch(base);
    http_server_free(s);
    event_base_free(base);
    return 0;
}
