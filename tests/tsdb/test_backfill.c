/*
 * test_backfill.c - the block builder behind `holoscope tsdb
 * create-blocks-from`: samples in order and out of order, duplicates,
 * block windows and chunk sizes, special float values, bad label sets,
 * allocation failures; every result is read back through a store opened
 * on the directory, as `holoscope serve --data` would.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb/tsdb.h"
#include "tsdb_test_helpers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define H2 (2LL * 3600 * 1000)
#define T0 (1700000000000LL / H2 * H2) /* a window start */

static uint64_t f2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double u2f(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Reads every sample of the series with label s=<which> back through a store. */
static size_t read_series(const char *dir, const char *which, int64_t *t, uint64_t *v, size_t cap,
                          size_t *nseries)
{
    struct tsdb_options o;
    tl_opts(&o);
    struct hs_err err = {0};
    struct tsdb *db = tsdb_open(dir, &o, &err);
    assert_non_null(db);
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "s", which, &err), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
    struct tsdb_series_set *set = NULL;
    assert_int_equal(tsdb_querier_select(q, &m, 1, 0, &set, &err), HS_OK);
    size_t n = 0;
    *nseries = tsdb_series_set_len(set);
    while (tsdb_series_set_next(set)) {
        struct tsdb_iter *it = tsdb_series_set_iter(set);
        while (tsdb_iter_next(it)) {
            double d;
            assert_true(n < cap);
            tsdb_iter_at(it, &t[n], &d);
            v[n++] = f2u(d);
        }
    }
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
    tsdb_close(db);
    return n;
}

static int add(struct tsdb_block_builder *b, const char *labels, int64_t t, double v)
{
    struct tlabels tl;
    return tsdb_block_builder_add(b, tl_parse(&tl, labels), t, v, NULL);
}

/* Samples of series k at index i: 15 s apart, values that differ per series. */
static double val(int k, int i)
{
    return k * 1000.0 + i * 0.5;
}

static void builder_writes_one_block_per_window_and_reads_back(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("backfill");
    char data[4200];
    snprintf(data, sizeof(data), "%s/new/data", dir); /* created by finish */
    struct hs_err err = {0};
    struct tsdb_block_builder *b = tsdb_block_builder_new(data, H2, &err);
    assert_non_null(b);
    /* 5 h at 15 s: windows T0, T0+2h, T0+4h (the last one 1 h). */
    const int n = 5 * 240;
    for (int k = 0; k < 3; k++) {
        char ls[64];
        snprintf(ls, sizeof(ls), "__name__=m,s=%c,job=j", 'a' + k);
        for (int i = 0; i < n; i++)
            assert_int_equal(add(b, ls, T0 + i * 15000LL, val(k, i)), HS_OK);
    }
    struct tsdb_backfill_stats st;
    assert_int_equal(tsdb_block_builder_finish(b, &st, &err), HS_OK);
    tsdb_block_builder_free(b);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.samples, 3 * n);
    assert_int_equal(st.duplicates_dropped, 0);
    assert_int_equal(st.n_blocks, 3);
    assert_true(st.min_time_ms == T0);
    assert_true(st.max_time_ms == T0 + (n - 1) * 15000LL);
    for (size_t i = 0; i < 3; i++) {
        assert_true(st.blocks[i].min_time_ms == T0 + (int64_t)i * H2);
        assert_true(st.blocks[i].max_time_ms <= T0 + (int64_t)(i + 1) * H2);
        assert_int_equal(st.blocks[i].num_series, 3);
        assert_int_equal(st.blocks[i].num_samples, i < 2 ? 3 * 480 : 3 * 240);
        /* 480 samples per series and window: 4 chunks of 120. */
        assert_int_equal(st.blocks[i].num_chunks, i < 2 ? 3 * 4 : 3 * 2);
        assert_true(st.blocks[i].size_bytes > 0);
    }
    struct tsdb_block_info *list = NULL;
    size_t nlist = 0;
    assert_int_equal(tsdb_blocks_list(data, &list, &nlist, &err), HS_OK);
    assert_int_equal(nlist, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(list[i].ulid, st.blocks[i].ulid);
        assert_int_equal(list[i].num_samples, st.blocks[i].num_samples);
        assert_int_equal(list[i].level, 1);
    }
    hs_free(list);
    tsdb_backfill_stats_cleanup(&st);

    static int64_t t[2000];
    static uint64_t v[2000];
    for (int k = 0; k < 3; k++) {
        char which[2] = {(char)('a' + k), 0};
        size_t ns;
        assert_int_equal(read_series(data, which, t, v, 2000, &ns), n);
        assert_int_equal(ns, 1);
        for (int i = 0; i < n; i++) {
            assert_true(t[i] == T0 + i * 15000LL);
            assert_true(v[i] == f2u(val(k, i)));
        }
    }
    hs_test_rmdir(dir);
    free(dir);
}

/* Writes the same 3 series x 700 samples in the order given by 'perm'. */
static void write_permuted(const char *data, const int *perm, size_t nperm, uint64_t *ooo)
{
    struct hs_err err = {0};
    struct tsdb_block_builder *b = tsdb_block_builder_new(data, H2, &err);
    assert_non_null(b);
    for (size_t j = 0; j < nperm; j++) {
        int k = perm[j] / 700, i = perm[j] % 700;
        char ls[64];
        snprintf(ls, sizeof(ls), "s=%c,__name__=m", 'a' + k);
        /* irregular spacing, to exercise timestamps beyond a fixed step */
        int64_t ts = T0 + i * 20000LL + (i % 7) * 13;
        assert_int_equal(add(b, ls, ts, val(k, i)), HS_OK);
    }
    struct tsdb_backfill_stats st;
    assert_int_equal(tsdb_block_builder_finish(b, &st, &err), HS_OK);
    *ooo = st.out_of_order;
    assert_int_equal(st.samples, nperm);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.n_blocks, 2); /* 700 x 20 s = 3.9 h */
    tsdb_backfill_stats_cleanup(&st);
    tsdb_block_builder_free(b);
}

static void builder_sorts_out_of_order_input_into_the_same_blocks(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("backfill");
    static int perm[2100];
    for (int i = 0; i < 2100; i++)
        perm[i] = i;
    char inorder[4200], reversed[4200], shuffled[4200];
    snprintf(inorder, sizeof(inorder), "%s/in", dir);
    snprintf(reversed, sizeof(reversed), "%s/rev", dir);
    snprintf(shuffled, sizeof(shuffled), "%s/shuf", dir);
    uint64_t ooo;
    write_permuted(inorder, perm, 2100, &ooo);
    assert_int_equal(ooo, 0);
    for (int i = 0; i < 1050; i++) {
        int x = perm[i];
        perm[i] = perm[2099 - i];
        perm[2099 - i] = x;
    }
    write_permuted(reversed, perm, 2100, &ooo);
    assert_int_equal(ooo, 2100 - 3);
    uint64_t r = 12345;
    for (int i = 2099; i > 0; i--) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((r >> 33) % (uint64_t)(i + 1));
        int x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    write_permuted(shuffled, perm, 2100, &ooo);
    assert_true(ooo > 0);

    static int64_t t1[800], t2[800];
    static uint64_t v1[800], v2[800];
    for (int k = 0; k < 3; k++) {
        char which[2] = {(char)('a' + k), 0};
        size_t ns;
        size_t n1 = read_series(inorder, which, t1, v1, 800, &ns);
        assert_int_equal(n1, 700);
        const char *others[] = {reversed, shuffled};
        for (int o = 0; o < 2; o++) {
            size_t n2 = read_series(others[o], which, t2, v2, 800, &ns);
            assert_int_equal(n2, 700);
            assert_memory_equal(t1, t2, sizeof(t1[0]) * 700);
            assert_memory_equal(v1, v2, sizeof(v1[0]) * 700);
        }
    }
    hs_test_rmdir(dir);
    free(dir);
}

static void builder_drops_same_value_duplicates_and_rejects_conflicting_ones(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("backfill");
    struct hs_err err = {0};
    struct tsdb_block_builder *b = tsdb_block_builder_new(dir, H2, &err);
    assert_non_null(b);
    assert_int_equal(add(b, "s=a", T0 + 1000, 1), HS_OK);
    assert_int_equal(add(b, "s=a", T0 + 2000, 2), HS_OK);
    assert_int_equal(add(b, "s=a", T0 + 2000, 2), HS_OK); /* in order, same value */
    struct tlabels tl;
    assert_int_equal(tsdb_block_builder_add(b, tl_parse(&tl, "s=a"), T0 + 2000, 3, &err),
                     HS_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate sample for timestamp"));
    assert_non_null(strstr(err.msg, "s=\"a\""));
    assert_int_equal(add(b, "s=a", T0 + 1000, 1), HS_OK);  /* out of order, same value */
    assert_int_equal(add(b, "s=a", T0 + 500, 0.5), HS_OK); /* out of order, new */
    assert_int_equal(add(b, "s=a", T0 + 500, 0.5), HS_OK); /* twice */
    struct tsdb_backfill_stats st;
    assert_int_equal(tsdb_block_builder_finish(b, &st, &err), HS_OK);
    assert_int_equal(st.samples, 3);
    assert_int_equal(st.duplicates_dropped, 3);
    assert_int_equal(st.n_blocks, 1);
    tsdb_backfill_stats_cleanup(&st);
    tsdb_block_builder_free(b);
    int64_t t[8];
    uint64_t v[8];
    size_t ns;
    assert_int_equal(read_series(dir, "a", t, v, 8, &ns), 3);
    assert_true(t[0] == T0 + 500 && t[1] == T0 + 1000 && t[2] == T0 + 2000);
    assert_true(v[0] == f2u(0.5) && v[2] == f2u(2));

    /* A conflicting value that comes out of order is found at finish. */
    char other[4200];
    snprintf(other, sizeof(other), "%s/other", dir);
    b = tsdb_block_builder_new(other, H2, &err);
    assert_non_null(b);
    assert_int_equal(add(b, "s=b", T0 + 1000, 1), HS_OK);
    assert_int_equal(add(b, "s=b", T0 + 2000, 2), HS_OK);
    assert_int_equal(add(b, "s=b", T0 + 1000, 7), HS_OK);
    assert_int_equal(tsdb_block_builder_finish(b, &st, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate sample for timestamp"));
    assert_int_equal(st.n_blocks, 0);
    assert_null(st.blocks);
    /* finishing twice is refused */
    assert_int_equal(tsdb_block_builder_finish(b, NULL, &err), HS_EINVAL);
    tsdb_block_builder_free(b);
    struct stat sb;
    assert_int_not_equal(stat(other, &sb), 0); /* nothing was written */
    hs_test_rmdir(dir);
    free(dir);
}

static void builder_cuts_blocks_and_chunks_exactly_at_window_boundaries(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("backfill");
    struct hs_err err = {0};
    const int64_t d = 1000; /* 1 s windows */
    struct tsdb_block_builder *b = tsdb_block_builder_new(dir, d, &err);
    assert_non_null(b);
    /* 999 and 1000 fall in different windows; negative times floor down. */
    int64_t ts[] = {-1001, -1000, -1, 0, 999, 1000, 1001, 2999};
    for (size_t i = 0; i < HS_ARRAY_LEN(ts); i++)
        assert_int_equal(add(b, "s=a", ts[i], (double)i), HS_OK);
    /* 250 samples inside one window: chunks of 120, 120, 10. */
    for (int i = 0; i < 250; i++)
        assert_int_equal(add(b, "s=b", 5000 + i, i), HS_OK);
    struct tsdb_backfill_stats st;
    assert_int_equal(tsdb_block_builder_finish(b, &st, &err), HS_OK);
    /* windows: [-2000,-1000) [-1000,0) [0,1000) [1000,2000) [2000,3000) [5000,6000) */
    assert_int_equal(st.n_blocks, 6);
    int64_t mins[] = {-1001, -1000, 0, 1000, 2999, 5000};
    int64_t maxs[] = {-1000, 0, 1000, 1002, 3000, 5250};
    uint64_t samples[] = {1, 2, 2, 2, 1, 250};
    for (size_t i = 0; i < 6; i++) {
        assert_true(st.blocks[i].min_time_ms == mins[i]);
        assert_true(st.blocks[i].max_time_ms == maxs[i]);
        assert_int_equal(st.blocks[i].num_samples, samples[i]);
    }
    assert_int_equal(st.blocks[5].num_chunks, 3);
    tsdb_backfill_stats_cleanup(&st);
    tsdb_block_builder_free(b);
    int64_t t[300];
    uint64_t v[300];
    size_t ns;
    assert_int_equal(read_series(dir, "a", t, v, 300, &ns), HS_ARRAY_LEN(ts));
    for (size_t i = 0; i < HS_ARRAY_LEN(ts); i++)
        assert_true(t[i] == ts[i] && v[i] == f2u((double)i));
    assert_int_equal(read_series(dir, "b", t, v, 300, &ns), 250);
    hs_test_rmdir(dir);
    free(dir);
}

static void builder_keeps_every_float_bit_pattern(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("backfill");
    struct hs_err err = {0};
    struct tsdb_block_builder *b = tsdb_block_builder_new(dir, H2, &err);
    assert_non_null(b);
    uint64_t bits[] = {TSDB_STALE_NAN_BITS,
                       f2u(NAN),
                       0x7ff8dead0000beefULL,
                       f2u(INFINITY),
                       f2u(-INFINITY),
                       f2u(-0.0),
                       f2u(0.0),
                       1 /* denormal */,
                       f2u(1.7976931348623157e308),
                       f2u(-1.5)};
    size_t n = HS_ARRAY_LEN(bits);
    /* out of order on purpose, so the values also go through the re-encoding */
    for (size_t i = n; i-- > 0;)
        assert_int_equal(add(b, "s=f", T0 + (int64_t)i * 1000, u2f(bits[i])), HS_OK);
    struct tsdb_backfill_stats st;
    assert_int_equal(tsdb_block_builder_finish(b, &st, &err), HS_OK);
    assert_int_equal(st.samples, n);
    tsdb_backfill_stats_cleanup(&st);
    tsdb_block_builder_free(b);
    int64_t t[16];
    uint64_t v[16];
    size_t ns;
    assert_int_equal(read_series(dir, "f", t, v, 16, &ns), n);
    assert_memory_equal(v, bits, n * sizeof(bits[0]));
    hs_test_rmdir(dir);
    free(dir);
}

static void builder_rejects_bad_label_sets_and_drops_empty_values(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("backfill");
    struct hs_err err = {0};
    assert_null(tsdb_block_builder_new(dir, 0, &err));
    assert_int_equal(err.code, HS_EINVAL);
    assert_null(tsdb_block_builder_new("", H2, &err));
    struct tsdb_block_builder *b = tsdb_block_builder_new(dir, H2, &err);
    assert_non_null(b);
    struct hs_label bad[] = {{"z", "1"}, {"a", "2"}}; /* unsorted */
    struct hs_labels ls = {2, bad};
    assert_int_equal(tsdb_block_builder_add(b, &ls, T0, 1, &err), HS_EINVAL);
    struct hs_label badname[] = {{"1x", "1"}};
    ls = (struct hs_labels){1, badname};
    assert_int_equal(tsdb_block_builder_add(b, &ls, T0, 1, &err), HS_EINVAL);
    ls = (struct hs_labels){0, NULL};
    assert_int_equal(tsdb_block_builder_add(b, &ls, T0, 1, &err), HS_EINVAL);
    /* s=e with an empty label is the series s=e */
    struct hs_label empty[] = {{"empty", ""}, {"s", "e"}};
    ls = (struct hs_labels){2, empty};
    assert_int_equal(tsdb_block_builder_add(b, &ls, T0, 1, &err), HS_OK);
    assert_int_equal(add(b, "s=e", T0 + 1, 2), HS_OK);
    struct tsdb_backfill_stats st;
    assert_int_equal(tsdb_block_builder_finish(b, &st, &err), HS_OK);
    assert_int_equal(st.series, 1);
    assert_int_equal(st.samples, 2);
    tsdb_backfill_stats_cleanup(&st);
    tsdb_block_builder_free(b);
    /* An empty builder writes nothing and succeeds. */
    char none[4200];
    snprintf(none, sizeof(none), "%s/none", dir);
    b = tsdb_block_builder_new(none, H2, &err);
    assert_int_equal(tsdb_block_builder_finish(b, &st, &err), HS_OK);
    assert_int_equal(st.n_blocks, 0);
    assert_int_equal(st.samples, 0);
    tsdb_backfill_stats_cleanup(&st);
    tsdb_block_builder_free(b);
    struct tsdb_block_info *list;
    size_t nlist;
    assert_int_equal(tsdb_blocks_list(none, &list, &nlist, &err), HS_ENOTFOUND);
    hs_test_rmdir(dir);
    free(dir);
}

/* One full run under an allocation budget; returns the first error. */
static int run_budgeted(const char *data, long budget)
{
    struct hs_err err = {0};
    hs_alloc_fail_after(budget);
    int rc = HS_OK;
    struct tsdb_block_builder *b = tsdb_block_builder_new(data, H2, &err);
    if (b == NULL)
        rc = HS_ENOMEM;
    for (int i = 0; rc == HS_OK && i < 300; i++) {
        char ls[32];
        snprintf(ls, sizeof(ls), "s=%c", 'a' + i % 5);
        int64_t t = T0 + (i % 5 == 4 ? 300 - i : i) * 60000LL; /* series e comes backwards */
        struct tlabels tl;
        rc = tsdb_block_builder_add(b, tl_parse(&tl, ls), t, i, &err);
    }
    struct tsdb_backfill_stats st;
    memset(&st, 0, sizeof(st));
    if (rc == HS_OK)
        rc = tsdb_block_builder_finish(b, &st, &err);
    hs_alloc_fail_after(-1);
    if (rc == HS_OK) {
        assert_int_equal(st.samples, 300);
        assert_int_equal(st.n_blocks, 3);
    }
    tsdb_backfill_stats_cleanup(&st);
    tsdb_block_builder_free(b);
    return rc;
}

static void builder_survives_every_allocation_failure(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("backfill");
    bool done = false;
    for (long i = 0; !done && i < 20000; i++) {
        char data[4200];
        snprintf(data, sizeof(data), "%s/d%ld", dir, i);
        int rc = run_budgeted(data, i);
        if (rc == HS_OK) {
            done = true;
            int64_t t[100];
            uint64_t v[100];
            size_t ns;
            assert_int_equal(read_series(data, "e", t, v, 100, &ns), 60);
            for (int k = 1; k < 60; k++)
                assert_true(t[k] > t[k - 1]);
        } else {
            assert_int_equal(rc, HS_ENOMEM);
        }
    }
    assert_true(done);
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builder_writes_one_block_per_window_and_reads_back),
        cmocka_unit_test(builder_sorts_out_of_order_input_into_the_same_blocks),
        cmocka_unit_test(builder_drops_same_value_duplicates_and_rejects_conflicting_ones),
        cmocka_unit_test(builder_cuts_blocks_and_chunks_exactly_at_window_boundaries),
        cmocka_unit_test(builder_keeps_every_float_bit_pattern),
        cmocka_unit_test(builder_rejects_bad_label_sets_and_drops_empty_values),
        cmocka_unit_test(builder_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
