/*
 * test_chunk.c - XOR chunk encoding: exact round trips of every kind of
 * float64 and timestamp step, rejection of non-increasing timestamps,
 * corrupt input, and compression on realistic series (printed, never
 * asserted on time).
 */
#include "hs_test.h"

#include "tsdb/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Encodes n samples, decodes them back and compares bit for bit. */
static void round_trip(const int64_t *ts, const uint64_t *vs, size_t n)
{
    struct tsdb__chunk_enc e;
    memset(&e, 0, sizeof(e));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tsdb__chunk_append(&e, ts[i], vs[i]), HS_OK);
    struct tsdb_chunk_iter it;
    tsdb_chunk_iter_init(&it, e.buf, tsdb__chunk_len(&e));
    assert_int_equal(it.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_true(tsdb_chunk_iter_next(&it));
        assert_int_equal(it.t, ts[i]);
        assert_int_equal(it.v, vs[i]);
    }
    assert_false(tsdb_chunk_iter_next(&it));
    assert_int_equal(it.err, HS_OK);
    tsdb__chunk_enc_cleanup(&e);
}

static void chunk_round_trips_every_special_float_bit_pattern(void **state)
{
    (void)state;
    uint64_t specials[] = {
        tsdb__f2u(NAN),
        tsdb__f2u(-NAN),
        0x7ff8000000000001ULL,
        0x7ff0000000000001ULL, /* signalling NaN payload */
        0xfff0000000deadbeULL,
        TSDB_STALE_NAN_BITS,
        tsdb__f2u(INFINITY),
        tsdb__f2u(-INFINITY),
        tsdb__f2u(0.0),
        tsdb__f2u(-0.0),
        1,
        0x000fffffffffffffULL, /* subnormals */
        tsdb__f2u(1.7976931348623157e308),
        tsdb__f2u(-2.2250738585072014e-308),
        tsdb__f2u(1.0),
        tsdb__f2u(1.0),
        TSDB_STALE_NAN_BITS,
        0,
        UINT64_MAX,
        0x8000000000000000ULL,
    };
    size_t n = HS_ARRAY_LEN(specials);
    int64_t ts[HS_ARRAY_LEN(specials)];
    for (size_t i = 0; i < n; i++)
        ts[i] = 1700000000000LL + (int64_t)i * 15000;
    round_trip(ts, specials, n);
}

static void chunk_round_trips_random_values_and_huge_timestamp_steps(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + rnd() % TSDB_CHUNK_MAX_SAMPLES;
        int64_t ts[TSDB_CHUNK_MAX_SAMPLES];
        uint64_t vs[TSDB_CHUNK_MAX_SAMPLES];
        int64_t t = (int64_t)(rnd() % 4 == 0 ? (uint64_t)INT64_MIN + rnd() % 1000 : rnd() >> 2);
        if (rnd() % 2)
            t = -t;
        for (size_t i = 0; i < n; i++) {
            ts[i] = t;
            switch (rnd() % 4) {
            case 0:
                vs[i] = rnd();
                break;
            case 1:
                vs[i] = i ? vs[i - 1] : 0;
                break;
            case 2:
                vs[i] = tsdb__f2u((double)(rnd() % 1000));
                break;
            default:
                vs[i] = i ? vs[i - 1] ^ (1ULL << (rnd() % 64)) : 42;
            }
            uint64_t step;
            switch (rnd() % 5) {
            case 0:
                step = 15000;
                break;
            case 1:
                step = 15000 + rnd() % 100;
                break;
            case 2:
                step = 1 + rnd() % (1ULL << 40);
                break;
            case 3:
                step = 1;
                break;
            default:
                step = 1 + (rnd() >> 2);
            }
            if ((uint64_t)INT64_MAX - (uint64_t)t < step) {
                n = i + 1;
                break;
            }
            t = (int64_t)((uint64_t)t + step);
        }
        round_trip(ts, vs, n);
    }
    /* The widest possible step: INT64_MIN to INT64_MAX. */
    int64_t ts[3] = {INT64_MIN, INT64_MAX - 1, INT64_MAX};
    uint64_t vs[3] = {1, 2, 3};
    round_trip(ts, vs, 3);
}

static void chunk_round_trips_a_one_sample_chunk(void **state)
{
    (void)state;
    int64_t t = -5;
    uint64_t v = TSDB_STALE_NAN_BITS;
    round_trip(&t, &v, 1);
}

static void chunk_rejects_equal_or_decreasing_timestamps(void **state)
{
    (void)state;
    struct tsdb__chunk_enc e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(tsdb__chunk_append(&e, 1000, 1), HS_OK);
    assert_int_equal(tsdb__chunk_append(&e, 1000, 2), HS_EINVAL);
    assert_int_equal(tsdb__chunk_append(&e, 999, 2), HS_EINVAL);
    assert_int_equal(e.n, 1);
    assert_int_equal(tsdb__chunk_append(&e, 1001, 2), HS_OK);
    tsdb__chunk_enc_cleanup(&e);
}

static void chunk_iterator_stops_with_an_error_on_truncated_or_garbled_bytes(void **state)
{
    (void)state;
    struct tsdb__chunk_enc e;
    memset(&e, 0, sizeof(e));
    for (int i = 0; i < 100; i++)
        assert_int_equal(tsdb__chunk_append(&e, 1000 + i * 1000 + (i % 3), rnd()), HS_OK);
    size_t len = tsdb__chunk_len(&e);
    struct tsdb_chunk_iter it;
    for (size_t cut = 0; cut < len; cut++) {
        tsdb_chunk_iter_init(&it, e.buf, cut);
        int k = 0;
        while (tsdb_chunk_iter_next(&it))
            k++;
        assert_true(k < 100);
        if (cut >= 2)
            assert_int_equal(it.err, HS_ECORRUPT);
    }
    uint8_t *copy = malloc(len);
    for (int round = 0; round < 500; round++) {
        memcpy(copy, e.buf, len);
        copy[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
        tsdb_chunk_iter_init(&it, copy, len);
        int64_t last = INT64_MIN;
        while (tsdb_chunk_iter_next(&it)) {
            assert_true(it.i == 1 || it.t > last);
            last = it.t;
        }
    }
    free(copy);
    tsdb__chunk_enc_cleanup(&e);
}

/* A day of realistic series at a 15 s scrape interval, cut into chunks of
 * 120 samples: bytes per sample, printed. */
static void chunk_compresses_realistic_series_to_about_a_byte_per_sample(void **state)
{
    (void)state;
    size_t total_bytes = 0, total_samples = 0;
    const int nseries = 300, nsamples = 5760;
    for (int s = 0; s < nseries; s++) {
        int kind = s % 3; /* counter, noisy gauge, histogram bucket */
        double v = (double)(rnd() % 1000), rate = (double)(rnd() % 50);
        int64_t t = 1700000000000LL;
        struct tsdb__chunk_enc e;
        memset(&e, 0, sizeof(e));
        for (int i = 0; i < nsamples; i++) {
            if (e.n == TSDB_CHUNK_MAX_SAMPLES) {
                total_bytes += tsdb__chunk_len(&e);
                tsdb__chunk_enc_cleanup(&e);
            }
            if (kind == 0)
                v += (double)(rnd() % (uint64_t)(rate + 1));
            else if (kind == 1)
                v = round((50.0 + (double)(rnd() % 1000) / 100.0) * 100) / 100;
            else if (rnd() % 4 == 0)
                v += 1;
            /* Scrape timestamps: mostly exact, sometimes a few ms late. */
            int64_t jitter = rnd() % 10 == 0 ? (int64_t)(rnd() % 5) : 0;
            assert_int_equal(tsdb__chunk_append(&e, t + jitter, tsdb__f2u(v)), HS_OK);
            t += 15000;
            total_samples++;
        }
        total_bytes += tsdb__chunk_len(&e);
        tsdb__chunk_enc_cleanup(&e);
    }
    double bps = (double)total_bytes / (double)total_samples;
    printf("# chunk: %zu samples in %zu bytes: %.3f bytes/sample\n", total_samples, total_bytes,
           bps);
    assert_true(bps < 16.0); /* sanity only: the figure is reported, not judged */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chunk_round_trips_every_special_float_bit_pattern),
        cmocka_unit_test(chunk_round_trips_random_values_and_huge_timestamp_steps),
        cmocka_unit_test(chunk_round_trips_a_one_sample_chunk),
        cmocka_unit_test(chunk_rejects_equal_or_decreasing_timestamps),
        cmocka_unit_test(chunk_iterator_stops_with_an_error_on_truncated_or_garbled_bytes),
        cmocka_unit_test(chunk_compresses_realistic_series_to_about_a_byte_per_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
