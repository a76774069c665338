/*
 * Tests of the API's number formatting (promql_format_value, value.c): the
 * text of every finite double parses back to exactly that double, and no
 * shorter decimal would, over random bit patterns and the edges the fast
 * paths treat specially (integers, powers of two, the 15/16/17-digit
 * boundaries, subnormals).
 */
#include "hs_test.h"

#include "promql/promql.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Significant decimal digits of a plain (exponent-free) decimal text. */
static int sig_digits(const char *s)
{
    int n = 0, leading = 1, trailing_zeros = 0;
    bool seen_point = false;
    for (const char *p = s; *p; p++) {
        if (*p == '-')
            continue;
        if (*p == '.') {
            seen_point = true;
            continue;
        }
        if (*p == 'e' || *p == 'E')
            break;
        if (leading && *p == '0')
            continue;
        leading = 0;
        n++;
        trailing_zeros = *p == '0' ? trailing_zeros + 1 : 0;
    }
    (void)seen_point;
    return n - trailing_zeros; /* integers like 1000 have 1 significant digit */
}

static void check(double v)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(promql_format_value(v, &b), HS_OK);
    double back = strtod(b.p, NULL);
    if (memcmp(&back, &v, sizeof(v)) != 0 && !(v == 0 && back == 0))
        fail_msg("%.17g formatted as \"%s\" reads back as %.17g", v, b.p, back);
    /* Shortest: one significant digit fewer never reads back to v. */
    int digits = sig_digits(b.p);
    if (digits > 1) {
        char shorter[64];
        snprintf(shorter, sizeof(shorter), "%.*e", digits - 2, v);
        if (strtod(shorter, NULL) == v)
            fail_msg("%.17g formatted as \"%s\" but \"%s\" is shorter", v, b.p, shorter);
    }
    hs_buf_cleanup(&b);
}

static void formatted_values_read_back_exactly_and_are_shortest(void **state)
{
    (void)state;
    srand(12345);
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v))
            continue;
        check(v);
    }
    for (int i = 0; i < 100000; i++) {
        check((double)rand() / RAND_MAX * 1e6);
        check((double)rand() / 7.0);
        check((double)(rand() % 100000) / 1000.0);
    }
}

static void edge_values_read_back_exactly_and_are_shortest(void **state)
{
    (void)state;
    for (int e = -1074; e <= 1023; e++) {
        double p = ldexp(1.0, e);
        check(p);
        check(nextafter(p, 0));
        check(nextafter(p, INFINITY));
    }
    const double fixed[] = {0.1,
                            0.2,
                            0.3,
                            1.0 / 3,
                            2.0 / 3,
                            123456789012345.0,
                            1234567890123456.0,
                            12345678901234567.0,
                            9007199254740993.0,
                            1e15,
                            1e15 - 0.5,
                            1e-7,
                            1e-7 * 1.5,
                            5e-324,
                            2.2250738585072014e-308,
                            1.7976931348623157e308,
                            0.1 + 0.2,
                            100,
                            1e21,
                            1e22,
                            4.35,
                            0.000123};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        check(fixed[i]);
        check(-fixed[i]);
    }
}

static void special_values_use_prometheus_spellings(void **state)
{
    (void)state;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(promql_format_value(NAN, &b), HS_OK);
    assert_int_equal(promql_format_value(INFINITY, &b), HS_OK);
    assert_int_equal(promql_format_value(-INFINITY, &b), HS_OK);
    assert_int_equal(promql_format_value(1e21, &b), HS_OK);
    assert_string_equal(b.p, "NaN+Inf-Inf1000000000000000000000");
    hs_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formatted_values_read_back_exactly_and_are_shortest),
        cmocka_unit_test(edge_values_read_back_exactly_and_are_shortest),
        cmocka_unit_test(special_values_use_prometheus_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
