/*
 * test_client_parse.c - the client's response parser on its own: every
 * framing fed one byte at a time, interim responses, keep-alive decisions,
 * and the errors (with positions) for malformed and oversized heads.
 */
#include "hs_test.h"

#include "http/internal.h"

#include <string.h>

struct parsed {
    int rc; /* last non-BODY result: DONE or an error */
    int status;
    bool keep_alive;
    bool is_gzip;
    char body[1024];
    size_t body_len;
    int nheaders;
    struct hs_err err;
};

/* Feeds 'in' in pieces of 'step' bytes; on EAGAIN at the end, reports EOF. */
static void parse(const char *in, size_t step, bool is_head, struct parsed *out)
{
    memset(out, 0, sizeof(*out));
    struct http__rparser p;
    http__rparser_init(&p, 256);
    http__rparser_reset(&p, is_head);
    size_t len = strlen(in), off = 0;
    int rc = HS_EAGAIN;
    for (;;) {
        size_t end = HS_MIN(off + step, len);
        size_t used, blen;
        const char *body;
        rc = http__rparser_feed(&p, in + off, end - off, &used, &body, &blen, &out->err);
        off += used;
        if (rc == HTTP__EV_HEADERS) {
            out->status = p.status;
            out->keep_alive = p.keep_alive;
            out->is_gzip = p.is_gzip;
            out->nheaders = (int)p.nhdrs;
        } else if (rc == HTTP__EV_BODY) {
            memcpy(out->body + out->body_len, body, blen);
            out->body_len += blen;
        } else if (rc == HS_EAGAIN && off == len) {
            rc = http__rparser_eof(&p, &out->err);
            break;
        } else if (rc != HS_EAGAIN) {
            break;
        }
    }
    out->rc = rc;
    http__rparser_cleanup(&p);
}

static void rparser_reads_every_framing_one_byte_at_a_time(void **state)
{
    struct parsed r;
    parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  padded \r\n\r\nhello", 1, false, &r);
    assert_int_equal(r.rc, HTTP__EV_DONE);
    assert_int_equal(r.status, 200);
    assert_true(r.keep_alive);
    assert_int_equal(r.nheaders, 2);
    assert_memory_equal(r.body, "hello", 5);
    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
          "A ; name=value\r\n0123456789\r\n1\r\nx\r\n0\r\nT: 1\r\n\r\n",
          1, false, &r);
    assert_int_equal(r.rc, HTTP__EV_DONE);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "0123456789x", 11);
    parse("HTTP/1.0 200 OK\nServer: old\n\nrest of it", 3, false, &r);
    assert_int_equal(r.rc, HTTP__EV_DONE);
    assert_false(r.keep_alive);
    assert_int_equal(r.body_len, 10);
}

static void rparser_skips_interim_responses_and_knows_bodiless_ones(void **state)
{
    struct parsed r;
    parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", 2,
          false, &r);
    assert_int_equal(r.rc, HTTP__EV_DONE);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.body_len, 0);
    parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Encoding: gzip\r\n\r\n", 7, true, &r);
    assert_int_equal(r.rc, HTTP__EV_DONE);
    assert_true(r.is_gzip);
    assert_int_equal(r.body_len, 0);
    parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
}

static void rparser_does_not_reuse_after_close_or_both_framings(void **state)
{
    struct parsed r;
    parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 64, false, &r);
    assert_false(r.keep_alive);
    parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 64, false, &r);
    assert_true(r.keep_alive);
    parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 64,
          false, &r);
    assert_int_equal(r.rc, HTTP__EV_DONE);
    assert_false(r.keep_alive);
}

static void rparser_reports_malformed_heads_with_their_position(void **state)
{
    struct parsed r;
    parse("HTTP/2 200 OK\r\n\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
    assert_non_null(strstr(r.err.msg, "status line"));
    parse("HTTP/1.1 2000 OK\r\n\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
    parse("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
    assert_int_equal(r.err.pos, 20); /* the space in "Bad Name" */
    parse("HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
    assert_non_null(strstr(r.err.msg, "folding"));
    parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
    assert_non_null(strstr(r.err.msg, "conflicting"));
    parse("HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
    assert_non_null(strstr(r.err.msg, "chunk size"));
    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
    parse("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 64, false, &r);
    assert_int_equal(r.rc, HS_EPARSE);
}

static void rparser_enforces_the_header_ceiling(void **state)
{
    char big[600];
    snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX: %0400d\r\n\r\n", 0);
    struct parsed r;
    parse(big, 64, false, &r);
    assert_int_equal(r.rc, HS_ETOOBIG);
    assert_non_null(strstr(r.err.msg, "256 bytes"));
}

static void rparser_says_where_a_closed_connection_cut_the_response(void **state)
{
    struct parsed r;
    parse("", 1, false, &r);
    assert_int_equal(r.rc, HS_ECLOSED);
    assert_non_null(strstr(r.err.msg, "before any response byte"));
    parse("HTTP/1.1 200 OK\r\nContent-Le", 5, false, &r);
    assert_int_equal(r.rc, HS_ECLOSED);
    assert_non_null(strstr(r.err.msg, "headers"));
    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 5, false, &r);
    assert_int_equal(r.rc, HS_ECLOSED);
    assert_non_null(strstr(r.err.msg, "chunked body after 2 bytes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rparser_reads_every_framing_one_byte_at_a_time),
        cmocka_unit_test(rparser_skips_interim_responses_and_knows_bodiless_ones),
        cmocka_unit_test(rparser_does_not_reuse_after_close_or_both_framings),
        cmocka_unit_test(rparser_reports_malformed_heads_with_their_position),
        cmocka_unit_test(rparser_enforces_the_header_ceiling),
        cmocka_unit_test(rparser_says_where_a_closed_connection_cut_the_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
