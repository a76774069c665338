/*
 * test_parser.c - the incremental request parser: every state, every split
 * of the input, chunked bodies, limits and the answers to bad input.
 */
#include "hs_test.h"

#include "http/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pres {
    int rc; /* HTTP__EV_DONE or the error */
    int error_status;
    int minor;
    bool keep_alive;
    bool expect_continue;
    char method[32];
    char target[256];
    char hdrs[2048]; /* "name=value\n" for each header */
    char body[4096];
    size_t body_len;
    size_t consumed; /* bytes consumed when DONE */
};

static void capture_headers(const struct http__parser *p, struct pres *o)
{
    snprintf(o->method, sizeof(o->method), "%s", p->head.p);
    snprintf(o->target, sizeof(o->target), "%s", p->head.p + p->target_off);
    size_t n = 0;
    for (size_t i = 0; i < p->nhdrs; i++)
        n += (size_t)snprintf(o->hdrs + n, sizeof(o->hdrs) - n, "%s=%s\n",
                              http__parser_hdr_name(p, i), http__parser_hdr_value(p, i));
    o->minor = p->version_minor;
    o->keep_alive = p->keep_alive;
    o->expect_continue = p->expect_continue;
}

/* Feeds 'req' cut at the offsets in 'cuts' (ascending). */
static void run_cuts(const char *req, size_t len, const size_t *cuts, size_t ncuts, size_t max_hdr,
                     uint64_t max_body, struct pres *o)
{
    memset(o, 0, sizeof(*o));
    o->rc = HS_EAGAIN;
    struct http__parser p;
    http__parser_init(&p, max_hdr, max_body);
    size_t off = 0;
    for (size_t k = 0; k <= ncuts && o->rc == HS_EAGAIN; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        for (;;) {
            size_t used, blen;
            const char *body;
            struct hs_err err;
            int rc = http__parser_feed(&p, req + off, end - off, &used, &body, &blen, &err);
            off += used;
            if (rc == HTTP__EV_HEADERS) {
                capture_headers(&p, o);
            } else if (rc == HTTP__EV_BODY) {
                assert_true(o->body_len + blen < sizeof(o->body));
                memcpy(o->body + o->body_len, body, blen);
                o->body_len += blen;
            } else if (rc == HTTP__EV_DONE) {
                o->rc = rc;
                o->consumed = off;
                break;
            } else if (rc == HS_EAGAIN) {
                assert_int_equal(off, end);
                break;
            } else {
                o->rc = rc;
                o->error_status = p.error_status;
                break;
            }
        }
    }
    http__parser_cleanup(&p);
}

static void run_whole(const char *req, size_t max_hdr, uint64_t max_body, struct pres *o)
{
    run_cuts(req, strlen(req), NULL, 0, max_hdr, max_body, o);
}

static void assert_same(const struct pres *a, const struct pres *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->error_status, b->error_status);
    assert_string_equal(a->method, b->method);
    assert_string_equal(a->target, b->target);
    assert_string_equal(a->hdrs, b->hdrs);
    assert_int_equal(a->body_len, b->body_len);
    assert_memory_equal(a->body, b->body, a->body_len);
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->keep_alive, b->keep_alive);
}

/* Checks every two-piece split and the one-byte-at-a-time feed give the
 * same result as the whole input. */
static void check_every_split(const char *req, size_t max_hdr, uint64_t max_body,
                              const struct pres *whole)
{
    size_t len = strlen(req);
    struct pres o;
    for (size_t k = 0; k <= len; k++) {
        run_cuts(req, len, &k, 1, max_hdr, max_body, &o);
        assert_same(whole, &o);
    }
    size_t *cuts = malloc(len * sizeof(*cuts));
    for (size_t k = 0; k < len; k++)
        cuts[k] = k + 1;
    run_cuts(req, len, cuts, len, max_hdr, max_body, &o);
    free(cuts);
    assert_same(whole, &o);
}

static void parser_reads_a_get_with_headers_at_every_split(void **state)
{
    const char *req = "GET /api/v1/query?query=up HTTP/1.1\r\nHost: example\r\nX-Empty:\r\n"
                      "X-Spaced:   a  b  \r\nAccept: */*\r\n\r\n";
    struct pres o;
    run_whole(req, 16384, 1 << 20, &o);
    assert_int_equal(o.rc, HTTP__EV_DONE);
    assert_string_equal(o.method, "GET");
    assert_string_equal(o.target, "/api/v1/query?query=up");
    assert_string_equal(o.hdrs, "Host=example\nX-Empty=\nX-Spaced=a  b\nAccept=*/*\n");
    assert_int_equal(o.minor, 1);
    assert_true(o.keep_alive);
    assert_int_equal(o.body_len, 0);
    assert_int_equal(o.consumed, strlen(req));
    check_every_split(req, 16384, 1 << 20, &o);
}

static void parser_reads_a_content_length_body_and_stops_before_the_next_request(void **state)
{
    const char *req = "POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.1\r\n";
    struct pres o;
    run_whole(req, 16384, 1 << 20, &o);
    assert_int_equal(o.rc, HTTP__EV_DONE);
    assert_int_equal(o.body_len, 11);
    assert_memory_equal(o.body, "hello world", 11);
    assert_int_equal(o.consumed, strlen(req) - strlen("GET / HTTP/1.1\r\n"));
    check_every_split(req, 16384, 1 << 20, &o);
}

static void parser_decodes_chunked_bodies_with_extensions_and_trailers(void **state)
{
    const char *req = "POST /w HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5;name=value\r\nhello\r\n6\r\n world\r\nA \r\n0123456789\r\n"
                      "0\r\nX-Trailer: 1\r\n\r\n";
    struct pres o;
    run_whole(req, 16384, 1 << 20, &o);
    assert_int_equal(o.rc, HTTP__EV_DONE);
    assert_int_equal(o.body_len, 21);
    assert_memory_equal(o.body, "hello world0123456789", 21);
    assert_int_equal(o.consumed, strlen(req));
    check_every_split(req, 16384, 1 << 20, &o);
}

static void parser_accepts_bare_lf_and_leading_empty_lines(void **state)
{
    const char *req = "\r\n\r\nGET / HTTP/1.0\nA: b\nConnection: keep-alive\n\n";
    struct pres o;
    run_whole(req, 16384, 1 << 20, &o);
    assert_int_equal(o.rc, HTTP__EV_DONE);
    assert_string_equal(o.method, "GET");
    assert_string_equal(o.hdrs, "A=b\nConnection=keep-alive\n");
    assert_int_equal(o.minor, 0);
    assert_true(o.keep_alive);
    check_every_split(req, 16384, 1 << 20, &o);
}

static void parser_derives_keep_alive_from_version_and_connection(void **state)
{
    struct pres o;
    run_whole("GET / HTTP/1.0\r\n\r\n", 1024, 0, &o);
    assert_false(o.keep_alive);
    run_whole("GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n", 1024, 0, &o);
    assert_false(o.keep_alive);
    run_whole("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", 1024, 0, &o);
    assert_true(o.keep_alive);
    run_whole("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", 1024, 10,
              &o);
    assert_int_equal(o.rc, HTTP__EV_DONE);
    assert_true(o.expect_continue);
}

struct bad_case {
    const char *req;
    int status;
};

static void parser_answers_malformed_input_with_the_right_status_at_every_split(void **state)
{
    static const struct bad_case cases[] = {
        {"GET /\r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\n\r\n", 400},
        {"G(T / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1 \r\n\r\n", 400},
        {"GET / HTTX/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.10\r\n\r\n", 400},
        {"GET /\x01 HTTP/1.1\r\n\r\n", 400},
        {"GET nopath HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\n\r\n", 505},
        {"GET / HTTP/1.1\rX\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n: b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nA: b\r\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n;\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\rX", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\rX", 400},
        {"POST / HTTP/1.1\r\nExpect: something\r\n\r\n", 417},
        {"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", 400},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++) {
        struct pres o;
        run_whole(cases[i].req, 16384, 1 << 20, &o);
        if (o.error_status != cases[i].status)
            fprintf(stderr, "case %zu: %s\n", i, cases[i].req);
        assert_true(o.rc < 0 && o.rc != HS_EAGAIN);
        assert_int_equal(o.error_status, cases[i].status);
        check_every_split(cases[i].req, 16384, 1 << 20, &o);
    }
}

static void parser_answers_431_when_headers_pass_the_limit(void **state)
{
    char req[512];
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Long: %0200d\r\n\r\n", 7);
    struct pres o;
    run_whole(req, 128, 1 << 20, &o);
    assert_int_equal(o.rc, HS_ETOOBIG);
    assert_int_equal(o.error_status, 431);
    check_every_split(req, 128, 1 << 20, &o);
    /* exactly at the limit is fine */
    run_whole(req, strlen(req), 1 << 20, &o);
    assert_int_equal(o.rc, HTTP__EV_DONE);
    run_whole(req, strlen(req) - 1, 1 << 20, &o);
    assert_int_equal(o.error_status, 431);
}

static void parser_answers_431_to_too_many_header_lines(void **state)
{
    char req[8192];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP__MAX_HEADERS; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "H%d: v\r\n", i);
    snprintf(req + n, sizeof(req) - n, "\r\n");
    struct pres o;
    run_whole(req, sizeof(req), 1 << 20, &o);
    assert_int_equal(o.error_status, 431);
}

static void parser_answers_413_from_content_length_before_any_body_byte(void **state)
{
    const char *req = "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n";
    struct pres o;
    run_whole(req, 16384, 100, &o);
    assert_int_equal(o.rc, HS_ETOOBIG);
    assert_int_equal(o.error_status, 413);
    run_whole("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 16384, 100, &o);
    assert_int_equal(o.error_status, 400);
}

static void parser_answers_413_when_chunks_pass_the_body_limit(void **state)
{
    const char *req = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "8\r\n12345678\r\n3\r\nabc\r\n0\r\n\r\n";
    struct pres o;
    run_whole(req, 16384, 10, &o);
    assert_int_equal(o.error_status, 413);
    check_every_split(req, 16384, 10, &o);
    run_whole(req, 16384, 11, &o);
    assert_int_equal(o.rc, HTTP__EV_DONE);
}

static void parser_answers_431_to_oversized_trailers(void **state)
{
    char req[1024];
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: %0100d\r\n\r\n", 1);
    struct pres o;
    run_whole(req, 80, 100, &o);
    assert_int_equal(o.error_status, 431);
}

static void parser_reset_allows_the_next_request_and_reuses_memory(void **state)
{
    struct http__parser p;
    http__parser_init(&p, 1024, 1024);
    const char *reqs[] = {"GET /a HTTP/1.1\r\nA: 1\r\n\r\n", "GET /b HTTP/1.1\r\nB: 2\r\n\r\n"};
    for (int i = 0; i < 2; i++) {
        size_t used, blen;
        const char *body;
        struct hs_err err;
        int rc = http__parser_feed(&p, reqs[i], strlen(reqs[i]), &used, &body, &blen, &err);
        assert_int_equal(rc, HTTP__EV_HEADERS);
        assert_string_equal(http__parser_header(&p, i == 0 ? "a" : "B"), i == 0 ? "1" : "2");
        assert_null(http__parser_header(&p, i == 0 ? "b" : "a"));
        rc = http__parser_feed(&p, "", 0, &used, &body, &blen, &err);
        assert_int_equal(rc, HTTP__EV_DONE);
        http__parser_reset(&p);
    }
    http__parser_cleanup(&p);
}

static void parser_reports_the_byte_offset_of_an_error(void **state)
{
    struct http__parser p;
    http__parser_init(&p, 1024, 1024);
    size_t used, blen;
    const char *body;
    struct hs_err err;
    const char *req = "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n";
    int rc = http__parser_feed(&p, req, strlen(req), &used, &body, &blen, &err);
    assert_int_equal(rc, HS_EPARSE);
    assert_int_equal(err.pos, 19);
    assert_non_null(strstr(err.msg, "header name"));
    http__parser_cleanup(&p);
}

static void parser_fails_cleanly_when_any_allocation_fails(void **state)
{
    char req[4096];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "H%d: v\r\n", i);
    snprintf(req + n, sizeof(req) - n, "\r\n");
    for (long k = 0;; k++) {
        struct pres o;
        hs_alloc_fail_after(k);
        run_whole(req, sizeof(req), 1 << 20, &o);
        hs_alloc_fail_after(-1);
        if (o.rc == HTTP__EV_DONE)
            break;
        assert_int_equal(o.rc, HS_ENOMEM);
        assert_true(k < 100);
    }
}

static void token_lists_match_whole_tokens_case_insensitively(void **state)
{
    assert_true(http__token_list_has("keep-alive, Upgrade", "upgrade"));
    assert_true(http__token_list_has(" close ", "close"));
    assert_false(http__token_list_has("closed", "close"));
    assert_false(http__token_list_has("", "close"));
}

int main(void)
{
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parser_reads_a_get_with_headers_at_every_split),
        cmocka_unit_test(parser_reads_a_content_length_body_and_stops_before_the_next_request),
        cmocka_unit_test(parser_decodes_chunked_bodies_with_extensions_and_trailers),
        cmocka_unit_test(parser_accepts_bare_lf_and_leading_empty_lines),
        cmocka_unit_test(parser_derives_keep_alive_from_version_and_connection),
        cmocka_unit_test(parser_answers_malformed_input_with_the_right_status_at_every_split),
        cmocka_unit_test(parser_answers_431_when_headers_pass_the_limit),
        cmocka_unit_test(parser_answers_431_to_too_many_header_lines),
        cmocka_unit_test(parser_answers_413_from_content_length_before_any_body_byte),
        cmocka_unit_test(parser_answers_413_when_chunks_pass_the_body_limit),
        cmocka_unit_test(parser_answers_431_to_oversized_trailers),
        cmocka_unit_test(parser_reset_allows_the_next_request_and_reuses_memory),
        cmocka_unit_test(parser_reports_the_byte_offset_of_an_error),
        cmocka_unit_test(parser_fails_cleanly_when_any_allocation_fails),
        cmocka_unit_test(token_lists_match_whole_tokens_case_insensitively),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
