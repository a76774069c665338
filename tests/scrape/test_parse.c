/*
 * test_parse.c - the exposition-format parser (src/scrape/parse*.c): syntax
 * of both formats, numbers, escapes, error positions, OpenMetrics rules,
 * content negotiation, check/lint, ceilings and allocation failures.
 */
#include "hs_test.h"

#include "scrape/scrape.h"

#include <zlib.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

struct run {
    struct scrape_parser p;
    struct scrape_entry e;
    struct hs_err err;
};

static struct run *run_new(const char *text, int format)
{
    struct run *r = hs_calloc(1, sizeof(*r));
    assert_non_null(r);
    scrape_parser_init(&r->p, text, strlen(text), format);
    return r;
}

static void run_free(struct run *r)
{
    scrape_parser_cleanup(&r->p);
    hs_free(r);
}

/* Next entry of a kind; fails the test on anything else. */
static void expect_next(struct run *r, int kind)
{
    int rc = scrape_parser_next(&r->p, &r->e, &r->err);
    if (rc != 1)
        fail_msg("expected an entry, got %d (%s)", rc, r->err.msg);
    assert_int_equal(r->e.kind, kind);
}

static void expect_end(struct run *r)
{
    int rc = scrape_parser_next(&r->p, &r->e, &r->err);
    if (rc != 0)
        fail_msg("expected the end, got %d (%s)", rc, r->err.msg);
}

/* Parses everything; returns 0 or the error code. */
static int parse_all(const char *text, int format, struct hs_err *err)
{
    struct run *r = run_new(text, format);
    int rc;
    while ((rc = scrape_parser_next(&r->p, &r->e, &r->err)) > 0)
        ;
    if (err != NULL)
        *err = r->err;
    run_free(r);
    return rc;
}

static void expect_str(struct hs_str s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
        fail_msg("expected \"%s\", got \"%.*s\"", want, (int)s.len, s.p);
}

static void expect_label(const struct scrape_entry *e, size_t i, const char *name,
                         const char *value)
{
    assert_true(i < e->nlabels);
    expect_str(e->labels[i].name, name);
    expect_str(e->labels[i].value, value);
}

#define OM (SCRAPE_FORMAT_OPENMETRICS | SCRAPE_PARSE_STRICT)

/* ---- text format ---------------------------------------------------------------- */

static void parser_reads_text_samples_with_labels_and_timestamps(void **state)
{
    (void)state;
    struct run *r = run_new("# HELP http_requests_total Requests.\n"
                            "# TYPE http_requests_total counter\n"
                            "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
                            "\n"
                            "  http_requests_total{ method = \"get\" , } 3\n",
                            SCRAPE_FORMAT_TEXT);
    expect_next(r, SCRAPE_ENTRY_HELP);
    expect_str(r->e.name, "http_requests_total");
    expect_str(r->e.text, "Requests.");
    expect_next(r, SCRAPE_ENTRY_TYPE);
    assert_int_equal(r->e.mtype, SCRAPE_MTYPE_COUNTER);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    expect_str(r->e.name, "http_requests_total");
    expect_str(r->e.family, "http_requests_total");
    assert_int_equal(r->e.mtype, SCRAPE_MTYPE_COUNTER);
    assert_int_equal(r->e.nlabels, 2);
    expect_label(&r->e, 0, "method", "post");
    expect_label(&r->e, 1, "code", "200");
    assert_true(r->e.value == 1027.0);
    assert_true(r->e.has_ts);
    assert_int_equal(r->e.t_ms, 1395066363000LL);
    assert_int_equal(r->e.line, 3);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    assert_int_equal(r->e.line, 5);
    assert_int_equal(r->e.nlabels, 1);
    expect_label(&r->e, 0, "method", "get");
    assert_false(r->e.has_ts);
    expect_end(r);
    run_free(r);
}

static void parser_reports_the_line_of_an_unterminated_label_value(void **state)
{
    (void)state;
    struct hs_err err;
    int rc = parse_all("a 1\nb{x=\"abc} 1\n", SCRAPE_FORMAT_TEXT, &err);
    assert_int_equal(rc, HS_EPARSE);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 5);
    assert_int_equal(err.pos, 8);
    assert_string_equal(err.msg, "line 2: unterminated label value");
    rc = parse_all("a{x=\"abc} 1\n# EOF\n", OM, &err);
    assert_int_equal(rc, HS_EPARSE);
    assert_int_equal(err.line, 1);
    assert_string_equal(err.msg, "line 1: unterminated label value");
}

static void parser_names_what_it_expected_and_what_it_got(void **state)
{
    (void)state;
    struct hs_err err;
    assert_int_equal(parse_all("ok 1\nm{a=1} 2\n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    assert_string_equal(err.msg, "line 2: expected label value, got \"1} 2\"");
    assert_int_equal(err.col, 5);
    assert_int_equal(parse_all("m 1 2 3\n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    assert_string_equal(err.msg, "line 1: expected end of line after timestamp, got \"3\"");
    assert_int_equal(parse_all("m{a=\"b\"} \n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    assert_string_equal(err.msg, "line 1: expected value, got end of line");
}

static void text_parser_rejects_a_last_line_without_newline(void **state)
{
    (void)state;
    struct hs_err err;
    assert_int_equal(parse_all("bla 3.14", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    assert_int_equal(err.line, 1);
    /* a trailing comment without newline is fine */
    assert_int_equal(parse_all("bla 3.14\n# the end", SCRAPE_FORMAT_TEXT, NULL), 0);
}

static void text_parser_allows_blank_lines_comments_and_trailing_blanks(void **state)
{
    (void)state;
    assert_int_equal(parse_all("\n\n# just a comment\n#\n# HELP\n# HELP lonely\n"
                               "a 1   \n\t b\t2\t\n",
                               SCRAPE_FORMAT_TEXT, NULL),
                     0);
}

static void text_parser_rejects_repeated_or_late_metadata(void **state)
{
    (void)state;
    struct hs_err err;
    assert_int_equal(parse_all("# HELP m one\n# HELP m two\n", SCRAPE_FORMAT_TEXT, &err),
                     HS_EPARSE);
    assert_string_equal(err.msg, "line 2: second HELP line for metric name \"m\"");
    assert_int_equal(parse_all("m 1\n# TYPE m counter\n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    assert_int_equal(err.line, 2);
    assert_int_equal(parse_all("# TYPE m bla\n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    /* HELP after samples is allowed in the text format */
    assert_int_equal(parse_all("m 1\n# HELP m late\n", SCRAPE_FORMAT_TEXT, NULL), 0);
}

static void text_parser_attributes_sum_and_count_to_a_declared_summary(void **state)
{
    (void)state;
    struct run *r = run_new("# TYPE s summary\n"
                            "s{quantile=\"0.5\"} 1\n"
                            "s_sum 10\n"
                            "s_count 4\n"
                            "other_sum 3\n",
                            SCRAPE_FORMAT_TEXT);
    expect_next(r, SCRAPE_ENTRY_TYPE);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    expect_str(r->e.family, "s");
    assert_int_equal(r->e.role, SCRAPE_ROLE_VALUE);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    expect_str(r->e.family, "s");
    assert_int_equal(r->e.role, SCRAPE_ROLE_SUM);
    assert_int_equal(r->e.mtype, SCRAPE_MTYPE_SUMMARY);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    assert_int_equal(r->e.role, SCRAPE_ROLE_COUNT);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    expect_str(r->e.family, "other_sum");
    assert_int_equal(r->e.mtype, SCRAPE_MTYPE_UNKNOWN);
    expect_end(r);
    run_free(r);
}

static void text_parser_reads_quoted_utf8_metric_and_label_names(void **state)
{
    (void)state;
    struct run *r = run_new("# TYPE \"my.metric\" gauge\n"
                            "{\"my.metric\", \"label.x\"=\"y\", z=\"w\"} 1\n",
                            SCRAPE_FORMAT_TEXT);
    expect_next(r, SCRAPE_ENTRY_TYPE);
    expect_str(r->e.name, "my.metric");
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    expect_str(r->e.name, "my.metric");
    assert_int_equal(r->e.mtype, SCRAPE_MTYPE_GAUGE);
    assert_int_equal(r->e.nlabels, 2);
    expect_label(&r->e, 0, "label.x", "y");
    expect_label(&r->e, 1, "z", "w");
    expect_end(r);
    run_free(r);
}

static void text_parser_rejects_invalid_escapes_and_reserved_names(void **state)
{
    (void)state;
    struct hs_err err;
    assert_int_equal(parse_all("m{l=\"\\t\"} 1\n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    assert_string_equal(err.msg, "line 1: invalid escape sequence '\\t' in label value");
    assert_int_equal(parse_all("m{__name__=\"x\"} 1\n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    assert_int_equal(parse_all("m{a=\"1\",a=\"2\"} 1\n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
    assert_string_equal(err.msg, "line 1: duplicate label name \"a\"");
    assert_int_equal(parse_all("m{a=\"\xff\"} 1\n", SCRAPE_FORMAT_TEXT, &err), HS_EPARSE);
}

/* ---- numbers ------------------------------------------------------------------------ */

static double value_of(const char *num, int format)
{
    char text[256];
    snprintf(text, sizeof(text), "m %s\n%s", num,
             (format & 0xff) == SCRAPE_FORMAT_OPENMETRICS ? "# EOF\n" : "");
    struct run *r = run_new(text, format);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    double v = r->e.value;
    run_free(r);
    return v;
}

static void parser_accepts_special_float_values(void **state)
{
    (void)state;
    int formats[] = {SCRAPE_FORMAT_TEXT, OM};
    for (size_t i = 0; i < 2; i++) {
        int f = formats[i];
        assert_true(isnan(value_of("NaN", f)));
        assert_true(isnan(value_of("nan", f)));
        assert_true(value_of("+Inf", f) == INFINITY);
        assert_true(value_of("-Inf", f) == -INFINITY);
        assert_true(value_of("inf", f) == INFINITY);
        assert_true(value_of("-Infinity", f) == -INFINITY);
        double z = value_of("-0", f);
        assert_true(z == 0 && signbit(z));
        assert_true(value_of(".5", f) == 0.5);
        assert_true(value_of("5.", f) == 5.0);
        assert_true(value_of("1e3", f) == 1000.0);
        assert_true(value_of("1.7560473e+06", f) == 1.7560473e+06);
        assert_true(value_of("9223372036854775808", f) == 9223372036854775808.0);
    }
    struct hs_err err;
    const char *bad[] = {"0x1p-3", "1_000", "0b1", "Infx", "1e", "+", ".", "--1", "1.2.3"};
    for (size_t i = 0; i < HS_ARRAY_LEN(bad); i++) {
        char text[64];
        snprintf(text, sizeof(text), "m %s\n", bad[i]);
        if (parse_all(text, SCRAPE_FORMAT_TEXT, &err) != HS_EPARSE)
            fail_msg("\"%s\" was accepted", bad[i]);
    }
}

static void parser_parses_numbers_exactly_like_strtod(void **state)
{
    (void)state;
    const char *nums[] = {"0.1",
                          "0.3",
                          "1.005",
                          "123456.789",
                          "2.2250738585072014e-308",
                          "1.7976931348623157e308",
                          "4.9e-324",
                          "123456789012345678901234567890",
                          "0.000000000000000000000000000001",
                          "3.14159265358979323846264338327",
                          "1e22",
                          "1e23",
                          "9007199254740993",
                          "0000000000000000000001.2e-1",
                          "1e400",
                          "-1e-400"};
    for (size_t i = 0; i < HS_ARRAY_LEN(nums); i++) {
        double want = strtod(nums[i], NULL);
        double got = value_of(nums[i], SCRAPE_FORMAT_TEXT);
        if (memcmp(&want, &got, sizeof(got)) != 0)
            fail_msg("%s: got %.17g, want %.17g", nums[i], got, want);
    }
    /* a pseudo-random sweep of short decimals */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char num[64];
        snprintf(num, sizeof(num), "%llu.%llue%d", (unsigned long long)(x % 100000000),
                 (unsigned long long)((x >> 27) % 1000000), (int)((x >> 50) % 40) - 20);
        double want = strtod(num, NULL);
        double got = value_of(num, SCRAPE_FORMAT_TEXT);
        if (memcmp(&want, &got, sizeof(got)) != 0)
            fail_msg("%s: got %.17g, want %.17g", num, got, want);
    }
}

/* ---- OpenMetrics ------------------------------------------------------------------------ */

static void parser_returns_openmetrics_metadata_and_eof(void **state)
{
    (void)state;
    struct run *r = run_new("# TYPE req_seconds histogram\n"
                            "# UNIT req_seconds seconds\n"
                            "# HELP req_seconds Latency \\\"of\\\" requests\\n.\n"
                            "req_seconds_bucket{le=\"0.5\"} 1\n"
                            "req_seconds_bucket{le=\"+Inf\"} 2\n"
                            "req_seconds_count 2\n"
                            "req_seconds_sum 0.7\n"
                            "req_seconds_created 1520430000.123\n"
                            "# EOF\n",
                            OM);
    expect_next(r, SCRAPE_ENTRY_TYPE);
    assert_int_equal(r->e.mtype, SCRAPE_MTYPE_HISTOGRAM);
    expect_next(r, SCRAPE_ENTRY_UNIT);
    expect_str(r->e.text, "seconds");
    expect_next(r, SCRAPE_ENTRY_HELP);
    expect_str(r->e.text, "Latency \"of\" requests\n.");
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    assert_int_equal(r->e.role, SCRAPE_ROLE_BUCKET);
    expect_str(r->e.family, "req_seconds");
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    expect_label(&r->e, 0, "le", "+Inf");
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    assert_int_equal(r->e.role, SCRAPE_ROLE_COUNT);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    assert_int_equal(r->e.role, SCRAPE_ROLE_SUM);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    assert_int_equal(r->e.role, SCRAPE_ROLE_CREATED);
    assert_true(r->e.value == 1520430000.123);
    expect_next(r, SCRAPE_ENTRY_EOF);
    expect_end(r);
    run_free(r);
}

static void parser_reads_openmetrics_exemplars_with_timestamps(void **state)
{
    (void)state;
    struct run *r = run_new("# TYPE foo counter\n"
                            "foo_total{a=\"b # c\"} 17 1520879607.789 # "
                            "{trace_id=\"KOO5S4vxi0o\",x=\"\\\"\"} 0.67 1520879606.5\n"
                            "foo_total{a=\"d\"} 18 # {} 1\n"
                            "# EOF\n",
                            OM);
    expect_next(r, SCRAPE_ENTRY_TYPE);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    expect_label(&r->e, 0, "a", "b # c");
    assert_true(r->e.value == 17);
    assert_true(r->e.has_ts);
    assert_int_equal(r->e.t_ms, 1520879607789LL);
    assert_int_equal(r->e.role, SCRAPE_ROLE_TOTAL);
    assert_true(r->e.has_exemplar);
    assert_int_equal(r->e.exemplar.nlabels, 2);
    expect_str(r->e.exemplar.labels[0].name, "trace_id");
    expect_str(r->e.exemplar.labels[0].value, "KOO5S4vxi0o");
    expect_str(r->e.exemplar.labels[1].value, "\"");
    assert_true(r->e.exemplar.value == 0.67);
    assert_true(r->e.exemplar.has_ts);
    assert_int_equal(r->e.exemplar.t_ms, 1520879606500LL);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    assert_false(r->e.has_ts);
    assert_true(r->e.has_exemplar);
    assert_int_equal(r->e.exemplar.nlabels, 0);
    assert_false(r->e.exemplar.has_ts);
    expect_next(r, SCRAPE_ENTRY_EOF);
    run_free(r);
}

static void parser_rejects_exemplars_over_128_code_points(void **state)
{
    (void)state;
    char text[1024];
    char val[300];
    /* 1 (name) + 127 two-byte code points: 128 code points, 255 bytes: allowed */
    size_t n = 0;
    for (int i = 0; i < 127; i++)
        val[n++] = (char)0xc3, val[n++] = (char)0xa9;
    val[n] = '\0';
    snprintf(text, sizeof(text), "# TYPE a counter\na_total 1 # {a=\"%s\"} 1\n# EOF\n", val);
    assert_int_equal(parse_all(text, OM, NULL), 0);
    snprintf(text, sizeof(text), "# TYPE a counter\na_total 1 # {a=\"%sx\"} 1\n# EOF\n", val);
    struct hs_err err;
    assert_int_equal(parse_all(text, OM, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "129 code points"));
}

static void parser_converts_openmetrics_timestamps_from_seconds_to_ms(void **state)
{
    (void)state;
    struct run *r = run_new("a{i=\"1\"} 1 1.005\na{i=\"2\"} 1 1.5e3\na{i=\"3\"} 1 -1.1\n"
                            "a{i=\"4\"} 1 000\na{i=\"5\"} 1 12345678901234567890.1\n# EOF\n",
                            OM);
    int64_t want[] = {1005, 1500000, -1100, 0, INT64_MAX};
    for (size_t i = 0; i < HS_ARRAY_LEN(want); i++) {
        expect_next(r, SCRAPE_ENTRY_SAMPLE);
        assert_true(r->e.has_ts);
        assert_int_equal(r->e.t_ms, want[i]);
    }
    run_free(r);
}

static void parser_unescapes_label_values_only_when_escaped(void **state)
{
    (void)state;
    const char *text = "a{x=\"plain\",y=\"q\\\"\\\\\\n\\z\"} 1\n# EOF\n";
    struct run *r = run_new(text, OM);
    expect_next(r, SCRAPE_ENTRY_SAMPLE);
    /* zero-copy: the plain value points into the input */
    assert_ptr_equal(r->e.labels[0].value.p, text + 5);
    /* OpenMetrics keeps unknown escapes as written */
    expect_label(&r->e, 1, "y", "q\"\\\n\\z");
    assert_true(r->e.labels[1].value.p < text || r->e.labels[1].value.p > text + strlen(text));
    run_free(r);
}

static void openmetrics_parser_requires_eof_last_and_no_blank_lines(void **state)
{
    (void)state;
    struct hs_err err;
    assert_int_equal(parse_all("a 1\n", OM, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "# EOF"));
    assert_int_equal(parse_all("a 1\n# EOF\nb 1\n", OM, &err), HS_EPARSE);
    assert_string_equal(err.msg, "line 3: text after \"# EOF\"");
    assert_int_equal(parse_all("a 1\n# EOF\n\n", OM, &err), HS_EPARSE);
    assert_int_equal(parse_all("a 1\n\n# EOF\n", OM, &err), HS_EPARSE);
    assert_string_equal(err.msg, "line 2: blank line");
    assert_int_equal(parse_all("a 1\n# EOF", OM, NULL), 0);
    assert_int_equal(parse_all("# EOF\n", OM, NULL), 0);
}

static void openmetrics_parser_rejects_interleaved_families_and_groups(void **state)
{
    (void)state;
    struct hs_err err;
    assert_int_equal(parse_all("a 1\nb 1\na 2\n# EOF\n", OM, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "clashing name \"a\""));
    assert_int_equal(
        parse_all("# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 1\n# EOF\n", OM, &err),
        HS_EPARSE);
    assert_int_equal(err.line, 4);
    assert_int_equal(parse_all("# TYPE a gauge\na 1 2\na 1 1\n# EOF\n", OM, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "backwards"));
}

static void openmetrics_parser_checks_histogram_consistency(void **state)
{
    (void)state;
    struct hs_err err;
    const char *head = "# TYPE h histogram\n";
    char text[512];
    snprintf(text, sizeof(text), "%sh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n# EOF\n", head);
    assert_int_equal(parse_all(text, OM, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "+Inf bucket is missing"));
    snprintf(text, sizeof(text), "%sh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 1\n# EOF\n", head);
    assert_int_equal(parse_all(text, OM, &err), HS_EPARSE);
    snprintf(text, sizeof(text),
             "%sh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
             "h_bucket{le=\"+Inf\"} 1\n# EOF\n",
             head);
    assert_int_equal(parse_all(text, OM, &err), HS_EPARSE);
    snprintf(text, sizeof(text),
             "%sh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
             "h_count 2\nh_sum 3\n# EOF\n",
             head);
    assert_int_equal(parse_all(text, OM, NULL), 0);
}

static void openmetrics_parser_checks_counter_info_and_stateset_values(void **state)
{
    (void)state;
    assert_int_equal(parse_all("# TYPE c counter\nc_total -1\n# EOF\n", OM, NULL), HS_EPARSE);
    assert_int_equal(parse_all("# TYPE c counter\nc_total NaN\n# EOF\n", OM, NULL), HS_EPARSE);
    assert_int_equal(parse_all("# TYPE c counter\nc 1\n# EOF\n", OM, NULL), HS_EPARSE);
    assert_int_equal(parse_all("# TYPE i info\ni_info{v=\"1\"} 2\n# EOF\n", OM, NULL), HS_EPARSE);
    assert_int_equal(parse_all("# TYPE s stateset\ns{s=\"a\"} 0.5\n# EOF\n", OM, NULL), HS_EPARSE);
    assert_int_equal(parse_all("# TYPE g gauge\ng 1 # {a=\"b\"} 1\n# EOF\n", OM, NULL), HS_EPARSE);
    assert_int_equal(parse_all("# TYPE a_s gauge\n# UNIT a_s seconds\n# EOF\n", OM, NULL),
                     HS_EPARSE);
}

static void lenient_openmetrics_accepts_what_prometheus_ingests(void **state)
{
    (void)state;
    const char *text = "# TYPE h histogram\n"
                       "h_bucket{le=\"-1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum -3\nh_count 2\n"
                       "# TYPE s summary\ns{quantile=\"0.5\"} -2\ns_sum -2\ns_count 1\n# EOF\n";
    assert_int_equal(parse_all(text, SCRAPE_FORMAT_OPENMETRICS, NULL), 0);
    assert_int_equal(parse_all(text, OM, NULL), HS_EPARSE);
    /* the syntax stays strict */
    assert_int_equal(parse_all("a  1\n# EOF\n", SCRAPE_FORMAT_OPENMETRICS, NULL), HS_EPARSE);
    assert_int_equal(parse_all("a 1\n", SCRAPE_FORMAT_OPENMETRICS, NULL), HS_EPARSE);
}

/* ---- API edges ------------------------------------------------------------------------------ */

static void parser_keeps_failing_after_an_error(void **state)
{
    (void)state;
    struct run *r = run_new("a{ 1\nb 2\n", SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_parser_next(&r->p, &r->e, &r->err), HS_EPARSE);
    assert_int_equal(scrape_parser_next(&r->p, &r->e, &r->err), HS_EPARSE);
    assert_int_equal(scrape_parser_next(&r->p, &r->e, NULL), HS_EPARSE);
    run_free(r);
}

static void parser_enforces_the_label_ceiling(void **state)
{
    (void)state;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(hs_buf_puts(&b, "m{"), 0);
    for (int i = 0; i < SCRAPE_MAX_LABELS + 5; i++)
        assert_int_equal(hs_buf_printf(&b, "l%d=\"v\",", i), 0);
    assert_int_equal(hs_buf_puts(&b, "} 1\n"), 0);
    struct hs_err err;
    assert_int_equal(parse_all(b.p, SCRAPE_FORMAT_TEXT, &err), HS_ETOOBIG);
    hs_buf_cleanup(&b);
}

static void parser_survives_allocation_failures(void **state)
{
    (void)state;
    const char *om = "# TYPE a counter\n# HELP a h\\\\elp\n"
                     "a_total{x=\"1\\n\"} 1 # {t=\"\\\"\"} 1\na_total{x=\"2\"} 2\n"
                     "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
                     "h_count 1\nh_sum 1\n# EOF\n";
    const char *text = "# HELP a h\\\\elp\n# TYPE a counter\na{x=\"1\\n\"} 1\n"
                       "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\nb 2\n";
    const struct {
        const char *text;
        int format;
    } cases[] = {{om, OM}, {om, SCRAPE_FORMAT_OPENMETRICS}, {text, SCRAPE_FORMAT_TEXT}};
    for (size_t f = 0; f < HS_ARRAY_LEN(cases); f++) {
        bool done = false;
        for (long n = 0; n < 200 && !done; n++) {
            struct scrape_parser *p = hs_malloc(sizeof(*p));
            assert_non_null(p);
            scrape_parser_init(p, cases[f].text, strlen(cases[f].text), cases[f].format);
            struct scrape_entry e;
            struct hs_err err;
            int rc;
            hs_alloc_fail_after(n);
            while ((rc = scrape_parser_next(p, &e, &err)) > 0)
                ;
            hs_alloc_fail_after(-1);
            if (rc == 0)
                done = true;
            else
                assert_int_equal(rc, HS_ENOMEM);
            scrape_parser_cleanup(p);
            hs_free(p);
        }
        assert_true(done);
        /* scrape_check_metrics cleans up on every failure too */
        done = false;
        for (long n = 0; n < 200 && !done; n++) {
            struct hs_buf report;
            struct hs_err err;
            hs_buf_init(&report, 0);
            hs_alloc_fail_after(n);
            int rc = scrape_check_metrics(cases[f].text, strlen(cases[f].text),
                                          cases[f].format & 0xff, &report, &err);
            hs_alloc_fail_after(-1);
            if (rc == 0)
                done = true;
            else
                assert_int_equal(rc, HS_ENOMEM);
            hs_buf_cleanup(&report);
        }
        assert_true(done);
    }
}

static void content_type_selects_the_format(void **state)
{
    (void)state;
    assert_int_equal(scrape_format_from_content_type(
                         "application/openmetrics-text; version=1.0.0; charset=utf-8"),
                     SCRAPE_FORMAT_OPENMETRICS);
    assert_int_equal(scrape_format_from_content_type("application/openmetrics-text"),
                     SCRAPE_FORMAT_OPENMETRICS);
    assert_int_equal(scrape_format_from_content_type("Application/OpenMetrics-Text;version=0.0.1"),
                     SCRAPE_FORMAT_OPENMETRICS);
    assert_int_equal(scrape_format_from_content_type("text/plain; version=0.0.4; charset=utf-8"),
                     SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_format_from_content_type(NULL), SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_format_from_content_type(""), SCRAPE_FORMAT_TEXT);
    assert_int_equal(scrape_format_from_content_type("application/openmetrics-textual"),
                     SCRAPE_FORMAT_TEXT);
    assert_non_null(strstr(scrape_accept_header(), "application/openmetrics-text"));
}

/* ---- gzip bodies ------------------------------------------------------------------------------
 */

static size_t gzip_of(const char *in, size_t len, char *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t n = zs.total_out;
    deflateEnd(&zs);
    return n;
}

static void gunzip_inflates_a_body_within_its_ceiling(void **state)
{
    (void)state;
    size_t n = 300000;
    char *plain = hs_malloc(n);
    char *z = hs_malloc(n);
    assert_non_null(plain);
    assert_non_null(z);
    for (size_t i = 0; i < n; i++)
        plain[i] = (char)('a' + (i * 7 + i / 13) % 26);
    size_t zn = gzip_of(plain, n, z, n);
    struct hs_buf out;
    struct hs_err err;
    hs_buf_init(&out, 0);
    assert_int_equal(scrape_body_gunzip(z, zn, n, &out, &err), HS_OK);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.p, plain, n);
    hs_buf_reset(&out);
    assert_int_equal(scrape_body_gunzip(z, zn, n - 1, &out, &err), HS_ETOOBIG);
    assert_int_equal(out.len, 0);
    assert_int_equal(scrape_body_gunzip(z, zn - 5, 0, &out, &err), HS_EPARSE);
    assert_int_equal(out.len, 0);
    memcpy(z + zn, "xx", 2);
    assert_int_equal(scrape_body_gunzip(z, zn + 2, 0, &out, &err), HS_EPARSE);
    assert_int_equal(scrape_body_gunzip("not gzip at all", 15, 0, &out, &err), HS_EPARSE);
    hs_buf_cleanup(&out);
    hs_free(plain);
    hs_free(z);
}

/* ---- check metrics --------------------------------------------------------------------------- */

static void check_metrics_reports_lint_findings_without_failing(void **state)
{
    (void)state;
    const char *text = "# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n"
                       "# TYPE vllm:latency_milliseconds gauge\nvllm:latency_milliseconds 2\n";
    struct hs_buf report;
    hs_buf_init(&report, 0);
    struct hs_err err;
    assert_int_equal(scrape_check_metrics(text, strlen(text), SCRAPE_FORMAT_TEXT, &report, &err),
                     HS_OK);
    assert_non_null(report.p);
    assert_non_null(strstr(report.p, "requests counter metrics should have \"_total\" suffix\n"));
    assert_non_null(strstr(report.p, "vllm:latency_milliseconds no help text\n"));
    assert_non_null(strstr(report.p, "vllm:latency_milliseconds metric names should not contain "
                                     "':'\n"));
    assert_non_null(strstr(report.p, "use base unit \"seconds\""));
    assert_null(strstr(report.p, "requests no help text"));
    hs_buf_cleanup(&report);
}

static void check_metrics_returns_the_first_error_with_its_line(void **state)
{
    (void)state;
    const char *text = "a 1\nb 2\nc{x=\"1\",x=\"2\"} 3\nd{ 4\n";
    struct hs_err err;
    assert_int_equal(scrape_check_metrics(text, strlen(text), SCRAPE_FORMAT_TEXT, NULL, &err),
                     HS_EPARSE);
    assert_int_equal(err.line, 3);
    /* OpenMetrics is checked strictly */
    const char *om = "# TYPE c counter\nc_total -1\n# EOF\n";
    assert_int_equal(scrape_check_metrics(om, strlen(om), SCRAPE_FORMAT_OPENMETRICS, NULL, &err),
                     HS_EPARSE);
    assert_int_equal(err.line, 2);
}

static void parser_reads_every_exposition_fixture(void **state)
{
    (void)state;
    const char *shared = getenv("HS_SHARED_DIR");
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s/fixtures/exposition",
             shared && *shared ? shared : "../../../shared");
    const char *files[] = {"dcgm.prom",           "llamacpp.prom", "node.prom",   "sglang.prom",
                           "sglang-current.prom", "tgi.prom",      "triton.prom", "vllm.prom"};
    for (size_t i = 0; i < HS_ARRAY_LEN(files); i++) {
        char path[2300];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        struct hs_err err = {0};
        size_t len;
        char *buf = hs_read_file(path, 0, &len, &err);
        if (buf == NULL)
            fail_msg("%s: %s", path, err.msg);
        struct scrape_parser *p = hs_malloc(sizeof(*p));
        assert_non_null(p);
        scrape_parser_init(p, buf, len, SCRAPE_FORMAT_TEXT);
        struct scrape_entry e;
        int rc;
        size_t samples = 0;
        while ((rc = scrape_parser_next(p, &e, &err)) > 0)
            samples += e.kind == SCRAPE_ENTRY_SAMPLE;
        if (rc != 0)
            fail_msg("%s: %s", files[i], err.msg);
        assert_true(samples > 10);
        scrape_parser_cleanup(p);
        hs_free(p);
        struct hs_buf report;
        hs_buf_init(&report, 0);
        assert_int_equal(scrape_check_metrics(buf, len, SCRAPE_FORMAT_TEXT, &report, &err), 0);
        hs_buf_cleanup(&report);
        hs_free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parser_reads_text_samples_with_labels_and_timestamps),
        cmocka_unit_test(parser_reports_the_line_of_an_unterminated_label_value),
        cmocka_unit_test(parser_names_what_it_expected_and_what_it_got),
        cmocka_unit_test(text_parser_rejects_a_last_line_without_newline),
        cmocka_unit_test(text_parser_allows_blank_lines_comments_and_trailing_blanks),
        cmocka_unit_test(text_parser_rejects_repeated_or_late_metadata),
        cmocka_unit_test(text_parser_attributes_sum_and_count_to_a_declared_summary),
        cmocka_unit_test(text_parser_reads_quoted_utf8_metric_and_label_names),
        cmocka_unit_test(text_parser_rejects_invalid_escapes_and_reserved_names),
        cmocka_unit_test(parser_accepts_special_float_values),
        cmocka_unit_test(parser_parses_numbers_exactly_like_strtod),
        cmocka_unit_test(parser_returns_openmetrics_metadata_and_eof),
        cmocka_unit_test(parser_reads_openmetrics_exemplars_with_timestamps),
        cmocka_unit_test(parser_rejects_exemplars_over_128_code_points),
        cmocka_unit_test(parser_converts_openmetrics_timestamps_from_seconds_to_ms),
        cmocka_unit_test(parser_unescapes_label_values_only_when_escaped),
        cmocka_unit_test(openmetrics_parser_requires_eof_last_and_no_blank_lines),
        cmocka_unit_test(openmetrics_parser_rejects_interleaved_families_and_groups),
        cmocka_unit_test(openmetrics_parser_checks_histogram_consistency),
        cmocka_unit_test(openmetrics_parser_checks_counter_info_and_stateset_values),
        cmocka_unit_test(lenient_openmetrics_accepts_what_prometheus_ingests),
        cmocka_unit_test(parser_keeps_failing_after_an_error),
        cmocka_unit_test(parser_enforces_the_label_ceiling),
        cmocka_unit_test(parser_survives_allocation_failures),
        cmocka_unit_test(content_type_selects_the_format),
        cmocka_unit_test(gunzip_inflates_a_body_within_its_ceiling),
        cmocka_unit_test(check_metrics_reports_lint_findings_without_failing),
        cmocka_unit_test(check_metrics_returns_the_first_error_with_its_line),
        cmocka_unit_test(parser_reads_every_exposition_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
