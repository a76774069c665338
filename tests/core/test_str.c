/* Tests of src/core/str.c: number, duration and size parsing and formatting. */
#include "hs_test.h"

#include "core/core.h"

#include <math.h>
#include <string.h>

static void parse_i64_rejects_trailing_garbage_and_overflow(void **state)
{
    (void)state;
    int64_t v = 7;
    assert_int_equal(hs_parse_i64("-42", &v), HS_OK);
    assert_int_equal(v, -42);
    assert_int_equal(hs_parse_i64("42x", &v), HS_EINVAL);
    assert_int_equal(hs_parse_i64("", &v), HS_EINVAL);
    assert_int_equal(hs_parse_i64(" 1", &v), HS_EINVAL);
    assert_int_equal(hs_parse_i64("9223372036854775808", &v), HS_EINVAL);
    assert_int_equal(v, -42);
}

static void parse_double_accepts_prometheus_special_values(void **state)
{
    (void)state;
    double v;
    assert_int_equal(hs_parse_double("+Inf", &v), HS_OK);
    assert_true(isinf(v) && v > 0);
    assert_int_equal(hs_parse_double("-inf", &v), HS_OK);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(hs_parse_double("NaN", &v), HS_OK);
    assert_true(isnan(v));
    assert_int_equal(hs_parse_double("1.5e3", &v), HS_OK);
    assert_true(v == 1500);
    assert_int_equal(hs_parse_double("1.5 ", &v), HS_EINVAL);
    assert_int_equal(hs_parse_double("abc", &v), HS_EINVAL);
}

static void parse_duration_handles_compound_units_in_order(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(hs_parse_duration_ms("1h30m", &ms), HS_OK);
    assert_int_equal(ms, 5400000);
    assert_int_equal(hs_parse_duration_ms("250ms", &ms), HS_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(hs_parse_duration_ms("15d", &ms), HS_OK);
    assert_int_equal(ms, 15 * 86400000LL);
    assert_int_equal(hs_parse_duration_ms("1m30s500ms", &ms), HS_OK);
    assert_int_equal(ms, 90500);
    assert_int_equal(hs_parse_duration_ms("0", &ms), HS_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(hs_parse_duration_ms("1.5", &ms), HS_OK);
    assert_int_equal(ms, 1500);
    assert_int_equal(hs_parse_duration_ms("30m1h", &ms), HS_EINVAL);
    assert_int_equal(hs_parse_duration_ms("1m1m", &ms), HS_EINVAL);
    assert_int_equal(hs_parse_duration_ms("5x", &ms), HS_EINVAL);
    assert_int_equal(hs_parse_duration_ms("-5s", &ms), HS_EINVAL);
    assert_int_equal(hs_parse_duration_ms("", &ms), HS_EINVAL);
}

static void format_duration_prints_largest_units_first(void **state)
{
    (void)state;
    char out[64];
    hs_format_duration(5400000, out, sizeof(out));
    assert_string_equal(out, "1h30m");
    hs_format_duration(0, out, sizeof(out));
    assert_string_equal(out, "0s");
    hs_format_duration(90500, out, sizeof(out));
    assert_string_equal(out, "1m30s500ms");
}

static void parse_bytes_understands_binary_suffixes(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(hs_parse_bytes("512", &v), HS_OK);
    assert_int_equal(v, 512);
    assert_int_equal(hs_parse_bytes("16MB", &v), HS_OK);
    assert_int_equal(v, 16u << 20);
    assert_int_equal(hs_parse_bytes("2GiB", &v), HS_OK);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(hs_parse_bytes("2XB", &v), HS_EINVAL);
    assert_int_equal(hs_parse_bytes("-1", &v), HS_EINVAL);
}

static void format_double_round_trips_and_is_short(void **state)
{
    (void)state;
    char out[32];
    double vals[] = {0.1, 1.0 / 3, 1e300, -2.5e-300, 123456789.0, 5e-324, 1.7976931348623157e308};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        hs_format_double(vals[i], out, sizeof(out));
        double back;
        assert_int_equal(hs_parse_double(out, &back), HS_OK);
        assert_true(back == vals[i]);
    }
    hs_format_double(0.1, out, sizeof(out));
    assert_string_equal(out, "0.1");
    /* As Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus clients use. */
    const struct {
        double v;
        const char *want;
    } go[] = {{10, "10"},          {100000, "100000"}, {1e6, "1e+06"},   {1234567, "1.234567e+06"},
              {0.0001, "0.0001"},  {0.00001, "1e-05"}, {0.005, "0.005"}, {2.5, "2.5"},
              {-123.25, "-123.25"}};
    for (size_t i = 0; i < sizeof(go) / sizeof(go[0]); i++) {
        hs_format_double(go[i].v, out, sizeof(out));
        assert_string_equal(out, go[i].want);
    }
    hs_format_double(NAN, out, sizeof(out));
    assert_string_equal(out, "NaN");
    hs_format_double(-INFINITY, out, sizeof(out));
    assert_string_equal(out, "-Inf");
}

static void utf8_encode_writes_one_to_four_bytes(void **state)
{
    (void)state;
    char b[4];
    assert_int_equal(hs_utf8_encode(0x41, b), 1);
    assert_memory_equal(b, "A", 1);
    assert_int_equal(hs_utf8_encode(0xE9, b), 2);
    assert_memory_equal(b, "\xC3\xA9", 2);
    assert_int_equal(hs_utf8_encode(0x20AC, b), 3);
    assert_memory_equal(b, "\xE2\x82\xAC", 3);
    assert_int_equal(hs_utf8_encode(0x1F44B, b), 4);
    assert_memory_equal(b, "\xF0\x9F\x91\x8B", 4);
}

static void base64_decode_accepts_padding_or_none_and_names_a_bad_character(void **state)
{
    (void)state;
    char out[32];
    size_t n = 0, bad = 0;
    assert_int_equal(hs_base64_decode("aGVsbG8=", 8, out, &n, &bad), HS_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(hs_base64_decode("aGVsbG8", 7, out, &n, &bad), HS_OK);
    assert_int_equal(n, 5);
    assert_int_equal(hs_base64_decode("", 0, out, &n, &bad), HS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(hs_base64_decode("aGV*bG8=", 8, out, &n, &bad), HS_EPARSE);
    assert_int_equal(bad, 3);
    assert_int_equal(hs_base64_decode("aG=sbG8=", 8, out, &n, &bad), HS_EPARSE);
    assert_int_equal(bad, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_i64_rejects_trailing_garbage_and_overflow),
        cmocka_unit_test(parse_double_accepts_prometheus_special_values),
        cmocka_unit_test(parse_duration_handles_compound_units_in_order),
        cmocka_unit_test(format_duration_prints_largest_units_first),
        cmocka_unit_test(parse_bytes_understands_binary_suffixes),
        cmocka_unit_test(utf8_encode_writes_one_to_four_bytes),
        cmocka_unit_test(base64_decode_accepts_padding_or_none_and_names_a_bad_character),
        cmocka_unit_test(format_double_round_trips_and_is_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
