/*
 * test_sse.c - the text/event-stream parser: every fixture gives the same
 * events whole, split at every byte offset and fed one byte at a time;
 * CRLF and CR line ends parse the same; "data:" without a space, comments,
 * multi-line data, event types and the ceilings on hostile input.
 */
#include "gateway/sse.h"
#include "hs_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fixtures[] = {
    "openai-chat-stream.txt",           "openai-chat-stream-n2.txt",
    "openai-chat-stream-tool-call.txt", "openai-chat-stream-error-midstream.txt",
    "openai-chat-stream-truncated.txt", "openai-completions-stream.txt",
    "openai-responses-stream.txt",      "vllm-chat-stream-continuous-usage.txt",
    "tgi-generate-stream.txt",          "llamacpp-chat-stream-timings.txt",
};

static char *load_fixture(const char *name, size_t *len)
{
    const char *dir = getenv("HS_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/fixtures/sse/%s", dir ? dir : "../../../shared", name);
    struct hs_err err = {0};
    char *p = hs_read_file(path, 0, len, &err);
    if (p == NULL)
        fail_msg("cannot read %s: %s", path, err.msg);
    return p;
}

/* Events serialised as "type\x1f" "data\x1e" so two runs compare as strings. */
struct collect {
    struct hs_buf out;
    size_t n;
    int stop_after; /* return 1 after this many events; 0 = never */
};

static int on_event(void *arg, const struct gw_sse_event *ev)
{
    struct collect *c = arg;
    assert_int_equal(strlen(ev->type), ev->type_len);
    assert_int_equal(strlen(ev->data), ev->data_len);
    assert_int_equal(hs_buf_append(&c->out, ev->type, ev->type_len), HS_OK);
    assert_int_equal(hs_buf_putc(&c->out, 0x1f), HS_OK);
    assert_int_equal(hs_buf_append(&c->out, ev->data, ev->data_len), HS_OK);
    assert_int_equal(hs_buf_putc(&c->out, 0x1e), HS_OK);
    c->n++;
    return c->stop_after && c->n >= (size_t)c->stop_after ? 1 : 0;
}

/* Parses 'data' in pieces of 'step' bytes, or in two at 'split' when step is 0. */
static void parse(const char *data, size_t len, size_t split, size_t step, struct collect *c)
{
    struct gw_sse p;
    struct hs_err err = {0};
    hs_buf_init(&c->out, 0);
    c->n = 0;
    c->stop_after = 0;
    gw_sse_init(&p, 0);
    if (step == 0) {
        assert_int_equal(gw_sse_feed(&p, data, split, on_event, c, &err), HS_OK);
        assert_int_equal(gw_sse_feed(&p, data + split, len - split, on_event, c, &err), HS_OK);
    } else {
        for (size_t i = 0; i < len; i += step) {
            size_t n = HS_MIN(step, len - i);
            assert_int_equal(gw_sse_feed(&p, data + i, n, on_event, c, &err), HS_OK);
        }
    }
    assert_int_equal(gw_sse_finish(&p, on_event, c, &err), HS_OK);
    gw_sse_free(&p);
}

/* LF -> 'eol' ("\r\n" or "\r"). */
static char *convert(const char *s, size_t len, const char *eol, size_t *out_len)
{
    size_t el = strlen(eol);
    char *o = malloc(len * el + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n') {
            memcpy(o + k, eol, el);
            k += el;
        } else {
            o[k++] = s[i];
        }
    }
    *out_len = k;
    return o;
}

static void check_every_split(const char *data, size_t len, const struct collect *whole)
{
    for (size_t split = 0; split <= len; split++) {
        struct collect c;
        parse(data, len, split, 0, &c);
        if (c.n != whole->n || c.out.len != whole->out.len ||
            memcmp(c.out.p, whole->out.p, c.out.len) != 0)
            fail_msg("split at %zu: %zu events, want %zu", split, c.n, whole->n);
        hs_buf_cleanup(&c.out);
    }
    struct collect one;
    parse(data, len, 0, 1, &one);
    assert_int_equal(one.n, whole->n);
    assert_memory_equal(one.out.p, whole->out.p, whole->out.len);
    hs_buf_cleanup(&one.out);
}

static void sse_fixtures_give_the_same_events_at_every_split_and_line_end(void **state)
{
    (void)state;
    for (size_t f = 0; f < HS_ARRAY_LEN(fixtures); f++) {
        size_t len;
        char *data = load_fixture(fixtures[f], &len);
        struct collect whole;
        parse(data, len, len, 0, &whole);
        assert_true(whole.n > 0);
        check_every_split(data, len, &whole);
        static const char *const eols[] = {"\r\n", "\r"};
        for (size_t e = 0; e < 2; e++) {
            size_t clen;
            char *conv = convert(data, len, eols[e], &clen);
            check_every_split(conv, clen, &whole);
            free(conv);
        }
        hs_buf_cleanup(&whole.out);
        hs_free(data);
    }
}

static void sse_a_leading_byte_order_mark_is_skipped_wherever_reads_split(void **state)
{
    (void)state;
    size_t len;
    char *data = load_fixture("tgi-generate-stream.txt", &len);
    struct collect whole;
    parse(data, len, len, 0, &whole);
    char *bom = malloc(len + 3);
    memcpy(bom, "\xEF\xBB\xBF", 3);
    memcpy(bom + 3, data, len);
    check_every_split(bom, len + 3, &whole);
    free(bom);
    hs_buf_cleanup(&whole.out);
    hs_free(data);
    /* a partial BOM is not one: its bytes start the first line */
    const char *s = "\xEF\xBB"
                    "data: x\n\n";
    struct collect c;
    parse(s, strlen(s), 1, 0, &c);
    assert_int_equal(c.n, 0); /* the line's field is "\xEF\xBBdata", unknown */
    hs_buf_cleanup(&c.out);
}

static size_t count_events(const char *name)
{
    size_t len;
    char *data = load_fixture(name, &len);
    struct collect c;
    parse(data, len, len, 0, &c);
    hs_buf_cleanup(&c.out);
    hs_free(data);
    return c.n;
}

static void sse_fixture_event_counts_match_the_readme(void **state)
{
    (void)state;
    assert_int_equal(count_events("openai-chat-stream.txt"), 13);
    assert_int_equal(count_events("openai-responses-stream.txt"), 12);
    assert_int_equal(count_events("tgi-generate-stream.txt"), 8); /* the ":" comment is no event */
    assert_int_equal(count_events("openai-chat-stream-truncated.txt"), 5);
}

static void sse_data_without_a_space_and_event_types_parse(void **state)
{
    (void)state;
    const char *s = "data:{\"a\":1}\n\nevent: response.created\ndata: {\"b\":2}\n\n";
    struct collect c;
    parse(s, strlen(s), 3, 0, &c);
    assert_int_equal(c.n, 2);
    const char want[] = "\x1f{\"a\":1}\x1eresponse.created\x1f{\"b\":2}\x1e";
    assert_int_equal(c.out.len, sizeof(want) - 1);
    assert_memory_equal(c.out.p, want, sizeof(want) - 1);
    hs_buf_cleanup(&c.out);
}

static void sse_joins_several_data_lines_with_newlines_and_skips_comments(void **state)
{
    (void)state;
    const char *s = ": keep-alive\ndata: one\n: mid comment\ndata:two\ndata\nid: 7\nretry: 10\n"
                    "\n:\n\n";
    struct collect c;
    parse(s, strlen(s), 0, 1, &c);
    assert_int_equal(c.n, 1);
    const char want[] = "\x1fone\ntwo\n\x1e";
    assert_int_equal(c.out.len, sizeof(want) - 1);
    assert_memory_equal(c.out.p, want, sizeof(want) - 1);
    hs_buf_cleanup(&c.out);
}

static void sse_empty_data_dispatches_but_an_event_without_data_does_not(void **state)
{
    (void)state;
    const char *s = "event: ping\n\ndata:\n\n";
    struct collect c;
    parse(s, strlen(s), 0, 2, &c);
    assert_int_equal(c.n, 1);
    const char want[] = "\x1f\x1e"; /* the type does not leak into the next event */
    assert_int_equal(c.out.len, sizeof(want) - 1);
    assert_memory_equal(c.out.p, want, sizeof(want) - 1);
    hs_buf_cleanup(&c.out);
}

static void sse_finish_discards_an_event_without_its_blank_line(void **state)
{
    (void)state;
    const char *s = "data: a\n\ndata: [DONE]\n";
    struct collect c;
    parse(s, strlen(s), 5, 0, &c);
    assert_int_equal(c.n, 1);
    hs_buf_cleanup(&c.out);
}

/* Records end_offset of each event. */
static int on_end(void *arg, const struct gw_sse_event *ev)
{
    struct hs_buf *b = arg;
    return hs_buf_append(b, &ev->end_offset, sizeof(ev->end_offset)) == HS_OK ? 0 : 1;
}

static void sse_end_offsets_cover_the_whole_blank_line(void **state)
{
    (void)state;
    struct gw_sse p;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    gw_sse_init(&p, 0);
    const char *s = "data: a\r\n\r\ndata: b\n\n";
    assert_int_equal(gw_sse_feed(&p, s, strlen(s), on_end, &b, NULL), HS_OK);
    assert_int_equal(b.len, 2 * sizeof(size_t));
    size_t e[2];
    memcpy(e, b.p, sizeof(e));
    assert_int_equal(e[0], 11);
    assert_int_equal(e[1], strlen(s));
    gw_sse_free(&p);
    hs_buf_cleanup(&b);
}

static void sse_a_callback_that_returns_non_zero_stops_the_feed(void **state)
{
    (void)state;
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    struct gw_sse p;
    struct collect c = {.stop_after = 2};
    hs_buf_init(&c.out, 0);
    gw_sse_init(&p, 0);
    assert_int_equal(gw_sse_feed(&p, s, strlen(s), on_event, &c, NULL), 1);
    assert_int_equal(c.n, 2);
    gw_sse_free(&p);
    hs_buf_cleanup(&c.out);
}

static void sse_an_endless_line_fails_with_etoobig_in_bounded_memory(void **state)
{
    (void)state;
    struct gw_sse p;
    struct hs_err err = {0};
    gw_sse_init(&p, 4096);
    char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    memcpy(chunk, "data: ", 6);
    int rc = HS_OK;
    for (int i = 0; i < 100 && rc == HS_OK; i++)
        rc = gw_sse_feed(&p, chunk, sizeof(chunk), NULL, NULL, &err);
    assert_int_equal(rc, HS_ETOOBIG);
    assert_non_null(strstr(err.msg, "4096"));
    assert_true(p.line.cap <= 2 * 4096 + 64);
    /* stays failed */
    assert_int_equal(gw_sse_feed(&p, "\n\n", 2, NULL, NULL, &err), HS_ETOOBIG);
    gw_sse_free(&p);
}

static void sse_endless_data_lines_fail_with_etoobig_in_bounded_memory(void **state)
{
    (void)state;
    struct gw_sse p;
    struct hs_err err = {0};
    gw_sse_init(&p, 4096);
    const char *line = "data: 0123456789012345678901234567890123456789\n";
    int rc = HS_OK;
    for (int i = 0; i < 1000 && rc == HS_OK; i++)
        rc = gw_sse_feed(&p, line, strlen(line), NULL, NULL, &err);
    assert_int_equal(rc, HS_ETOOBIG);
    assert_true(p.data.cap <= 2 * 4096 + 64);
    gw_sse_free(&p);
}

static void sse_many_small_events_never_trip_the_ceiling(void **state)
{
    (void)state;
    struct gw_sse p;
    struct collect c = {0};
    hs_buf_init(&c.out, 0);
    gw_sse_init(&p, 64);
    const char *ev = "data: 0123456789\n\n";
    for (int i = 0; i < 1000; i++)
        assert_int_equal(gw_sse_feed(&p, ev, strlen(ev), on_event, &c, NULL), HS_OK);
    assert_int_equal(c.n, 1000);
    gw_sse_free(&p);
    hs_buf_cleanup(&c.out);
}

static void sse_allocation_failures_are_reported_not_crashed(void **state)
{
    (void)state;
    const char *s = "data: a\ndata: b\n\ndata: partial";
    for (long n = 0; n < 8; n++) {
        struct gw_sse p;
        gw_sse_init(&p, 0);
        hs_alloc_fail_after(n);
        int rc1 = gw_sse_feed(&p, s, 10, NULL, NULL, NULL);
        int rc2 = gw_sse_feed(&p, s + 10, strlen(s) - 10, NULL, NULL, NULL);
        hs_alloc_fail_after(-1);
        assert_true(rc1 == HS_OK || rc1 == HS_ENOMEM);
        assert_true(rc2 == HS_OK || rc2 == HS_ENOMEM);
        gw_sse_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sse_fixtures_give_the_same_events_at_every_split_and_line_end),
        cmocka_unit_test(sse_a_leading_byte_order_mark_is_skipped_wherever_reads_split),
        cmocka_unit_test(sse_fixture_event_counts_match_the_readme),
        cmocka_unit_test(sse_data_without_a_space_and_event_types_parse),
        cmocka_unit_test(sse_joins_several_data_lines_with_newlines_and_skips_comments),
        cmocka_unit_test(sse_empty_data_dispatches_but_an_event_without_data_does_not),
        cmocka_unit_test(sse_finish_discards_an_event_without_its_blank_line),
        cmocka_unit_test(sse_end_offsets_cover_the_whole_blank_line),
        cmocka_unit_test(sse_a_callback_that_returns_non_zero_stops_the_feed),
        cmocka_unit_test(sse_an_endless_line_fails_with_etoobig_in_bounded_memory),
        cmocka_unit_test(sse_endless_data_lines_fail_with_etoobig_in_bounded_memory),
        cmocka_unit_test(sse_many_small_events_never_trip_the_ceiling),
        cmocka_unit_test(sse_allocation_failures_are_reported_not_crashed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
