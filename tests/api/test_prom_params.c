/*
 * test_prom_params.c - the Prometheus API's parameter parsers: times,
 * durations, limits, match[] selectors and U__ name unescaping, with the
 * exact error texts Prometheus gives.
 */
#include "api/api.h"

#include "hs_test.h"

#include <string.h>

static void expect_time(const char *s, int64_t want)
{
    int64_t t = 0;
    struct hs_err err = {0};
    int rc = api_prom_parse_time(s, &t, &err);
    if (rc != HS_OK)
        fail_msg("parse_time(%s): %s", s, err.msg);
    assert_int_equal(t, want);
}

static void expect_time_error(const char *s, const char *msg)
{
    int64_t t = 0;
    struct hs_err err = {0};
    assert_int_equal(api_prom_parse_time(s, &t, &err), HS_EPARSE);
    assert_string_equal(err.msg, msg);
}

static void time_accepts_unix_seconds_with_fractions(void **state)
{
    expect_time("1435781451", 1435781451000LL);
    expect_time("1435781451.781", 1435781451781LL);
    expect_time("1435781451.7815", 1435781451782LL); /* rounded to the ms */
    expect_time("0", 0);
    expect_time("-1.5", -1500);
    expect_time("1e3", 1000000);
    expect_time("+12", 12000);
}

static void time_accepts_rfc3339_with_fractions_and_offsets(void **state)
{
    expect_time("2015-07-01T20:10:51.781Z", 1435781451781LL);
    expect_time("2015-07-01T20:10:51Z", 1435781451000LL);
    expect_time("2015-07-01T22:10:51.781+02:00", 1435781451781LL);
    expect_time("2015-07-01T18:40:51.781-01:30", 1435781451781LL);
    expect_time("2015-07-01T20:10:51.781999999Z", 1435781451781LL); /* truncated */
    expect_time("1970-01-01T00:00:00Z", 0);
    expect_time("1969-12-31T23:59:59.5Z", -500);
    expect_time("2024-02-29T00:00:00Z", 1709164800000LL);
}

static void time_accepts_prometheus_min_and_max_strings(void **state)
{
    expect_time("-292273086-05-16T16:47:06Z", API_PROM_MIN_TIME_MS);
    expect_time("292277026596-12-04T15:30:07.999999999Z", API_PROM_MAX_TIME_MS);
}

static void time_rejects_garbage_with_prometheus_wording(void **state)
{
    expect_time_error("abc", "cannot parse \"abc\" to a valid timestamp");
    expect_time_error("", "cannot parse \"\" to a valid timestamp");
    expect_time_error(" 1", "cannot parse \" 1\" to a valid timestamp");
    expect_time_error("0x10", "cannot parse \"0x10\" to a valid timestamp");
    expect_time_error("NaN", "cannot parse \"NaN\" to a valid timestamp");
    expect_time_error("1e300", "cannot parse \"1e300\" to a valid timestamp");
    expect_time_error("2015-13-01T00:00:00Z", "cannot parse \"2015-13-01T00:00:00Z\" to a valid "
                                              "timestamp");
    expect_time_error("2015-02-29T00:00:00Z", "cannot parse \"2015-02-29T00:00:00Z\" to a valid "
                                              "timestamp");
    expect_time_error("2015-07-01T20:10:51", "cannot parse \"2015-07-01T20:10:51\" to a valid "
                                             "timestamp");
    expect_time_error("2015-07-01T20:10:51.Z", "cannot parse \"2015-07-01T20:10:51.Z\" to a "
                                               "valid timestamp");
    expect_time_error("a\"b\n\xff", "cannot parse \"a\\\"b\\n\\xff\" to a valid timestamp");
}

static void expect_duration(const char *s, int64_t want)
{
    int64_t ms = 0;
    struct hs_err err = {0};
    int rc = api_prom_parse_duration(s, &ms, &err);
    if (rc != HS_OK)
        fail_msg("parse_duration(%s): %s", s, err.msg);
    assert_int_equal(ms, want);
}

static void duration_accepts_float_seconds_and_prometheus_units(void **state)
{
    expect_duration("15", 15000);
    expect_duration("1.5", 1500);
    expect_duration("0.0005", 0);
    expect_duration("-1", -1000);
    expect_duration("0", 0);
    expect_duration("1m30s", 90000);
    expect_duration("250ms", 250);
    expect_duration("1h", 3600000);
    expect_duration("2d", 172800000);
    expect_duration("1w", 604800000);
    expect_duration("1y", 31536000000LL);
    expect_duration("1h30m15s100ms", 5415100);
}

static void duration_rejects_bad_order_units_and_overflow(void **state)
{
    const char *bad[] = {"", "x", "1m1h", "1s1s", "5x", "m", "1.5m", "-1m", "1 s"};
    for (size_t i = 0; i < HS_ARRAY_LEN(bad); i++) {
        int64_t ms = 0;
        struct hs_err err = {0};
        assert_int_equal(api_prom_parse_duration(bad[i], &ms, &err), HS_EPARSE);
        char want[128];
        snprintf(want, sizeof(want), "cannot parse \"%s\" to a valid duration", bad[i]);
        assert_string_equal(err.msg, want);
    }
    int64_t ms = 0;
    struct hs_err err = {0};
    assert_int_equal(api_prom_parse_duration("1e10", &ms, &err), HS_EPARSE);
    assert_string_equal(err.msg, "cannot parse \"1e10\" to a valid duration. It overflows int64");
    assert_int_equal(api_prom_parse_duration("9999999999999999999999y", &ms, &err), HS_EPARSE);
}

static void limit_parses_non_negative_integers_only(void **state)
{
    int64_t l = -1;
    struct hs_err err = {0};
    assert_int_equal(api_prom_parse_limit("", &l, &err), HS_OK);
    assert_int_equal(l, 0);
    assert_int_equal(api_prom_parse_limit(NULL, &l, &err), HS_OK);
    assert_int_equal(api_prom_parse_limit("25", &l, &err), HS_OK);
    assert_int_equal(l, 25);
    assert_int_equal(api_prom_parse_limit("-3", &l, &err), HS_EPARSE);
    assert_string_equal(err.msg, "limit must be non-negative");
    assert_int_equal(api_prom_parse_limit("ten", &l, &err), HS_EPARSE);
    assert_string_equal(err.msg, "strconv.Atoi: parsing \"ten\": invalid syntax");
    assert_int_equal(api_prom_parse_limit("99999999999999999999", &l, &err), HS_EPARSE);
    assert_string_equal(err.msg, "strconv.Atoi: parsing \"99999999999999999999\": value out of "
                                 "range");
}

/* Parses 's' and prints the matchers as "name op value;" into out. */
static int selector_dump(const char *s, char *out, size_t cap, struct hs_err *err)
{
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    struct hs_arena a;
    hs_arena_init(&a, 1024, 0);
    struct promql_matcher *ms = NULL;
    size_t n = 0;
    int rc = api_prom_parse_selector(s, &a, &ms, &n, err);
    out[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; rc == HS_OK && i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s%s;", ms[i].name, ops[ms[i].op], ms[i].value);
    hs_arena_cleanup(&a);
    return rc;
}

static void expect_selector(const char *s, const char *want)
{
    char got[512];
    struct hs_err err = {0};
    int rc = selector_dump(s, got, sizeof(got), &err);
    if (rc != HS_OK)
        fail_msg("parse_selector(%s): %s", s, err.msg);
    assert_string_equal(got, want);
}

static void expect_selector_error(const char *s, const char *msg)
{
    char got[512];
    struct hs_err err = {0};
    assert_int_equal(selector_dump(s, got, sizeof(got), &err), HS_EPARSE);
    assert_string_equal(err.msg, msg);
}

static void selector_parses_names_braces_and_all_four_operators(void **state)
{
    expect_selector("up", "__name__=up;");
    expect_selector("job:up:rate5m", "__name__=job:up:rate5m;");
    expect_selector("up{job=\"api\"}", "job=api;__name__=up;");
    expect_selector(" up { job = \"api\" , code != \"200\" , } ", "job=api;code!=200;__name__=up;");
    expect_selector("{__name__=~\"http_.*\",code!~\"5..\"}", "__name__=~http_.*;code!~5..;");
    expect_selector("{a=\"b\"}", "a=b;");
}

static void selector_decodes_promql_string_escapes(void **state)
{
    expect_selector("{a=\"x\\\"y\\\\z\"}", "a=x\"y\\z;");
    expect_selector("{a='it\\'s'}", "a=it's;");
    expect_selector("{a=`raw\\d+`}", "a=raw\\d+;");
    expect_selector("{a=\"\\u00e9\\x41\\101\\t\"}", "a=\xc3\xa9"
                                                    "AA\t;");
    expect_selector("{a=\"\\U0001F600\"}", "a=\xf0\x9f\x98\x80;");
}

static void selector_accepts_prometheus_3_quoted_names(void **state)
{
    expect_selector("{\"my.metric\"}", "__name__=my.metric;");
    expect_selector("{\"my.metric\", \"label.x\"=\"v\"}", "label.x=v;__name__=my.metric;");
}

static void selector_reports_errors_with_line_and_column(void **state)
{
    expect_selector_error("up{", "1:4: parse error: unexpected end of input inside braces");
    expect_selector_error("up{job}", "1:7: parse error: unexpected character in label matching, "
                                     "expected label matching operator");
    expect_selector_error("up{job=api}", "1:8: parse error: unexpected character, expected "
                                         "string");
    expect_selector_error("up{job=\"api}", "1:8: parse error: unterminated quoted string");
    expect_selector_error("up x", "1:4: parse error: unexpected character after selector: 'x'");
    expect_selector_error("{a=~\".*\"}", "1:1: parse error: vector selector must contain at "
                                         "least one non-empty matcher");
    expect_selector_error("{a=\"\"}", "1:1: parse error: vector selector must contain at "
                                      "least one non-empty matcher");
    expect_selector_error("", "1:1: parse error: unexpected end of input");
    expect_selector_error("5", "1:1: parse error: unexpected character: '5'");
    expect_selector_error("up{a=\"b\"\nc=\"d\"}",
                          "2:1: parse error: unexpected character inside braces: 'c'");
    expect_selector_error("up{__name__=\"x\"}",
                          "1:1: parse error: metric name must not be set twice: up");
    expect_selector_error("{a=\"\\q\"}", "1:5: parse error: unknown escape sequence");
}

static void selector_reports_an_invalid_regex(void **state)
{
    char got[512];
    struct hs_err err = {0};
    assert_int_equal(selector_dump("{a=~\"(\"}", got, sizeof(got), &err), HS_EPARSE);
    assert_true(strncmp(err.msg, "1:1: parse error: ", 18) == 0);
    assert_true(strlen(err.msg) > 18);
}

static void expect_unescape(const char *s, const char *want)
{
    struct hs_arena a;
    hs_arena_init(&a, 256, 0);
    const char *out = NULL;
    assert_int_equal(api_prom_unescape_name(s, &a, &out), HS_OK);
    assert_string_equal(out, want);
    hs_arena_cleanup(&a);
}

static void unescape_name_undoes_u_underscore_escaping(void **state)
{
    expect_unescape("U__my_2e_metric", "my.metric");
    expect_unescape("U__a__b", "a_b");
    expect_unescape("U___1f600_", "\xf0\x9f\x98\x80");
    expect_unescape("plain_name", "plain_name");
    expect_unescape("U__bad_zz_", "U__bad_zz_");
    expect_unescape("U__open_2e", "U__open_2e");
    expect_unescape("U__surrogate_d800_", "U__surrogate_d800_");
    expect_unescape("U__trailing_", "U__trailing_");
}

static void selector_parse_fails_cleanly_at_every_allocation(void **state)
{
    const char *s = "http_requests_total{code=~\"5..\",job!=\"x\",\"a.b\"='c'}";
    int oks = 0;
    for (long n = 0; n < 200; n++) {
        struct hs_arena a;
        hs_arena_init(&a, 64, 0);
        struct promql_matcher *ms = NULL;
        size_t k = 0;
        struct hs_err err = {0};
        hs_alloc_fail_after(n);
        int rc = api_prom_parse_selector(s, &a, &ms, &k, &err);
        hs_alloc_fail_after(-1);
        if (rc == HS_OK) {
            assert_int_equal(k, 4);
            oks++;
        } else {
            assert_int_equal(rc, HS_ENOMEM);
        }
        hs_arena_cleanup(&a);
    }
    assert_true(oks > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(time_accepts_unix_seconds_with_fractions),
        cmocka_unit_test(time_accepts_rfc3339_with_fractions_and_offsets),
        cmocka_unit_test(time_accepts_prometheus_min_and_max_strings),
        cmocka_unit_test(time_rejects_garbage_with_prometheus_wording),
        cmocka_unit_test(duration_accepts_float_seconds_and_prometheus_units),
        cmocka_unit_test(duration_rejects_bad_order_units_and_overflow),
        cmocka_unit_test(limit_parses_non_negative_integers_only),
        cmocka_unit_test(selector_parses_names_braces_and_all_four_operators),
        cmocka_unit_test(selector_decodes_promql_string_escapes),
        cmocka_unit_test(selector_accepts_prometheus_3_quoted_names),
        cmocka_unit_test(selector_reports_errors_with_line_and_column),
        cmocka_unit_test(selector_reports_an_invalid_regex),
        cmocka_unit_test(unescape_name_undoes_u_underscore_escaping),
        cmocka_unit_test(selector_parse_fails_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
