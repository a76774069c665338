/*
 * test_querier.c - the querier over persisted blocks and the head
 * together: a block written with head-encoded chunks is found at open,
 * its series merge with the head's (concatenated when disjoint in time,
 * deduplicated with the head winning when they overlap), block tombstones
 * hide samples, label listings span both, and retention deletes the block.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb_test_helpers.h"

#include "tsdb/internal.h"

#include <stdio.h>

struct gen {
    struct tlabels tl[3];
    struct tsdb__chunk_enc enc[3];
    struct tsdb__chunk_meta cm[3];
    int n, i;
};

static int gen_next(void *ctx, const struct hs_labels **ls, const struct tsdb__chunk_meta **c,
                    size_t *nc, struct hs_err *err)
{
    struct gen *g = ctx;
    (void)err;
    if (g->i == g->n)
        return 0;
    *ls = &g->tl[g->i].ls;
    *c = &g->cm[g->i];
    *nc = 1;
    g->i++;
    return 1;
}

/* A block over [0, 2 h) with the series 'names' (n of them), each holding
 * samples t = t0, t0 + step, ... (count of them), v = t / 1000 * sign.
 * 'tomb' hides 10..19 s of the first series. */
static void write_block(const char *dir, const char **names, int n, int64_t t0, int64_t step,
                        int count, double sign, bool tomb)
{
    struct gen g;
    memset(&g, 0, sizeof(g));
    g.n = n;
    for (int s = 0; s < n; s++) {
        tl_parse(&g.tl[s], names[s]);
        for (int i = 0; i < count; i++) {
            int64_t t = t0 + i * step;
            assert_int_equal(tsdb__chunk_append(&g.enc[s], t, tsdb__f2u(sign * (double)(t / 1000))),
                             HS_OK);
        }
        g.cm[s] = (struct tsdb__chunk_meta){t0,
                                            t0 + (count - 1) * step,
                                            (uint32_t)count,
                                            TSDB_CHUNK_ENC_XOR,
                                            g.enc[s].buf,
                                            (uint32_t)tsdb__chunk_len(&g.enc[s]),
                                            0};
    }
    struct tsdb__block_write_opts o;
    memset(&o, 0, sizeof(o));
    o.has_range = true;
    o.min_time = 0;
    o.max_time = 7200000;
    struct hs_err err;
    struct tsdb__block_meta meta;
    if (tsdb__block_write(dir, &o, gen_next, &g, &meta, &err) != HS_OK)
        fail_msg("block write: %s", err.msg);
    if (tomb) {
        /* Series ref 0: refs follow label order. */
        char bdir[1024];
        snprintf(bdir, sizeof(bdir), "%s/%s", dir, meta.ulid);
        struct tsdb__block_tombstone t = {0, 10000, 19999};
        assert_int_equal(tsdb__block_tombstones_write(bdir, &t, 1, NULL), HS_OK);
    }
    tsdb__block_meta_cleanup(&meta);
    for (int s = 0; s < n; s++)
        tsdb__chunk_enc_cleanup(&g.enc[s]);
}

static void read_series(struct tsdb *db, const char *k, int64_t *ts, double *vs, size_t *n)
{
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "k", k, NULL), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
    struct tsdb_series_set *set;
    struct hs_err err;
    if (tsdb_querier_select(q, &m, 1, 0, &set, &err) != HS_OK)
        fail_msg("select: %s", err.msg);
    *n = 0;
    assert_int_equal(tsdb_series_set_len(set), 1);
    assert_true(tsdb_series_set_next(set));
    struct tsdb_iter *it = tsdb_series_set_iter(set);
    while (tsdb_iter_next(it)) {
        tsdb_iter_at(it, &ts[*n], &vs[*n]);
        (*n)++;
    }
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
}

static void querier_merges_blocks_with_the_head(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-qblocks");
    const char *ab[2] = {"__name__=m,k=1", "__name__=m,k=2"};
    write_block(dir, ab, 2, 0, 1000, 100, 1, true);
    /* A second block overlapping the first for k=2, every 500 ms. */
    write_block(dir, ab + 1, 1, 500, 1000, 10, -1, false);
    struct tsdb_options o;
    tl_opts(&o);
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    assert_non_null(db);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks_loaded, 2);
    /* k=1: the head continues after the blocks; below their end is too old. */
    for (int i = 0; i < 50; i++)
        assert_int_equal(tl_add1(db, "__name__=m,k=1", 7200000 + i * 1000, 7200 + i), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=m,k=1", 7199999, 1), HS_EINVAL);
    assert_int_equal(tl_add1(db, "__name__=m,k=3", 7200000, 1), HS_OK);

    int64_t ts[400];
    double vs[400];
    size_t n;
    read_series(db, "1", ts, vs, &n);
    assert_int_equal(n, 140); /* 100 - 10 tombstoned + 50 */
    for (size_t i = 0; i < n; i++) {
        int64_t want = i < 10   ? (int64_t)i * 1000
                       : i < 90 ? (int64_t)(i + 10) * 1000
                                : 7200000 + (int64_t)(i - 90) * 1000;
        assert_int_equal(ts[i], want);
        assert_true(vs[i] == (double)(want / 1000));
    }
    read_series(db, "2", ts, vs, &n);
    assert_int_equal(n, 110); /* overlapping blocks: decoded and merged */
    for (size_t i = 1; i < n; i++)
        assert_true(ts[i] > ts[i - 1]);
    assert_int_equal(ts[1], 500);
    assert_true(vs[1] == -0.0);

    assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "__name__", "m", INT64_MIN, INT64_MAX, NULL), 3);
    assert_int_equal(tl_count(db, TSDB_MATCH_RE, "k", "1|2", 7200000, 7300000, NULL), 1);

    struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
    struct tsdb_strings s;
    assert_int_equal(tsdb_querier_label_values(q, "k", NULL, 0, &s, NULL), HS_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.v[0], "1");
    assert_string_equal(s.v[2], "3");
    tsdb_strings_free(&s);
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_RE, "k", "1|2", NULL), HS_OK);
    assert_int_equal(tsdb_querier_label_values(q, "k", &m, 1, &s, NULL), HS_OK);
    assert_int_equal(s.n, 2);
    tsdb_strings_free(&s);
    assert_int_equal(tsdb_querier_label_names(q, NULL, 0, &s, NULL), HS_OK);
    assert_int_equal(s.n, 2);
    tsdb_strings_free(&s);
    tsdb_matcher_cleanup(&m);
    tsdb_querier_free(q);
    tsdb_close(db);

    /* Retention by time drops the blocks once the head is far ahead. */
    o.retention_ms = 3600 * 1000;
    db = tsdb_open(dir, &o, NULL);
    assert_int_equal(tl_add1(db, "__name__=m,k=1", 7200000 + 3600 * 1000 + 1, 1), HS_OK);
    assert_int_equal(tsdb_maintain(db, false, NULL), HS_OK);
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks_loaded, 0);
    /* The two overlapping blocks were first compacted into one. */
    assert_int_equal(st.blocks_compacted, 1);
    assert_int_equal(st.blocks_deleted, 1);
    read_series(db, "1", ts, vs, &n);
    assert_int_equal(n, 51);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

/* The head cuts its oldest two hours into a block, drops them from head
 * and WAL, and reads them back from the block, also after a restart. */
static void head_cuts_old_data_into_a_block_and_reads_it_back(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-cut");
    struct tsdb_options o;
    tl_opts(&o);
    o.ooo_window_ms = 3 * 3600 * 1000;
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    const int steps = 4 * 240; /* 4 h at 15 s */
    for (int i = 0; i < steps; i++) {
        assert_int_equal(tl_add1(db, "__name__=c,k=a", (int64_t)i * 15000, i), HS_OK);
        if (i % 3 == 0)
            assert_int_equal(tl_add1(db, "__name__=c,k=b", (int64_t)i * 15000, -i), HS_OK);
    }
    /* An out-of-order sample inside the window that will be cut. */
    assert_int_equal(tl_add1(db, "__name__=c,k=b", 7192500, -1), HS_OK);
    assert_int_equal(tsdb_maintain(db, false, NULL), HS_OK);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks_cut, 1);
    assert_int_equal(st.blocks_loaded, 1);
    assert_true(st.head_min_t_ms >= 7200000);
    assert_int_equal(tl_add1(db, "__name__=c,k=a", 7199999, 1), HS_EINVAL); /* in the block */
    for (int round = 0; round < 2; round++) {
        size_t ns;
        assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "k", "a", INT64_MIN, INT64_MAX, &ns), 1);
        assert_int_equal(ns, steps);
        assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "k", "b", INT64_MIN, INT64_MAX, &ns), 1);
        assert_int_equal(ns, steps / 3 + 1);
        assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "k", "a", 0, 7199999, &ns), 1);
        assert_int_equal(ns, 480);
        tsdb_close(db);
        db = tsdb_open(dir, &o, NULL);
        assert_non_null(db);
        tsdb_get_stats(db, &st);
        assert_int_equal(st.blocks_loaded, 1);
    }
    /* Deleting across the block and the head: durable in both. */
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "k", "a", NULL), HS_OK);
    size_t deleted;
    assert_int_equal(tsdb_delete_series(db, &m, 1, 3600000, 10800000 - 1, &deleted, NULL), HS_OK);
    assert_int_equal(deleted, 2); /* once in the head, once in the block */
    for (int round = 0; round < 2; round++) {
        size_t ns;
        assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "k", "a", INT64_MIN, INT64_MAX, &ns), 1);
        assert_int_equal(ns, steps - 480);
        tsdb_close(db);
        db = tsdb_open(dir, &o, NULL);
        assert_non_null(db);
    }
    tsdb_matcher_cleanup(&m);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

/* Over 12 hours the head is cut into 2 h blocks and complete 6 h windows
 * of them are compacted into one; every sample reads back throughout. */
static void blocks_are_compacted_and_still_read_back(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-compact");
    struct tsdb_options o;
    tl_opts(&o);
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    const int steps = 12 * 240; /* 12 h at 15 s */
    for (int i = 0; i < steps; i++) {
        assert_int_equal(tl_add1(db, "__name__=z,k=a", (int64_t)i * 15000, i), HS_OK);
        assert_int_equal(tl_add1(db, "__name__=z,k=b", (int64_t)i * 15000 + 7, -i), HS_OK);
        if (i % 120 == 119)
            assert_int_equal(tsdb_maintain(db, false, NULL), HS_OK);
    }
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_true(st.blocks_cut >= 4);
    assert_true(st.blocks_compacted >= 1);
    assert_true(st.blocks_loaded < st.blocks_cut);
    /* the work is timed and nothing failed */
    assert_true(st.head_cut_ns > 0);
    assert_true(st.compaction_ns > 0);
    assert_int_equal(st.head_cuts_failed, 0);
    assert_int_equal(st.compactions_failed, 0);
    for (int round = 0; round < 2; round++) {
        size_t ns;
        assert_int_equal(tl_count(db, TSDB_MATCH_RE, "k", "a|b", INT64_MIN, INT64_MAX, &ns), 2);
        assert_int_equal(ns, 2 * steps);
        /* Exact values across the block boundaries. */
        struct tsdb_matcher m;
        assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "k", "b", NULL), HS_OK);
        struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
        struct tsdb_series_set *set;
        assert_int_equal(tsdb_querier_select(q, &m, 1, 0, &set, NULL), HS_OK);
        assert_true(tsdb_series_set_next(set));
        struct tsdb_iter *it = tsdb_series_set_iter(set);
        for (int i = 0; i < steps; i++) {
            assert_true(tsdb_iter_next(it));
            int64_t t;
            double v;
            tsdb_iter_at(it, &t, &v);
            assert_int_equal(t, (int64_t)i * 15000 + 7);
            assert_true(v == -(double)i);
        }
        assert_false(tsdb_iter_next(it));
        tsdb_series_set_free(set);
        tsdb_querier_free(q);
        tsdb_matcher_cleanup(&m);
        tsdb_close(db);
        db = tsdb_open(dir, &o, NULL);
        assert_non_null(db);
    }
    tsdb_close(db);
    /* Retention by size: with a 1-byte budget every block goes, the head stays. */
    o.retention_bytes = 1;
    db = tsdb_open(dir, &o, NULL);
    assert_int_equal(tsdb_maintain(db, false, NULL), HS_OK);
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks_loaded, 0);
    assert_true(st.blocks_deleted >= 1);
    size_t ns = 0;
    assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "k", "a", INT64_MIN, INT64_MAX, &ns), 1);
    assert_true(ns > 0 && ns < (size_t)steps);
    assert_true(st.head_min_t_ms >= 8 * 3600 * 1000);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(querier_merges_blocks_with_the_head),
        cmocka_unit_test(head_cuts_old_data_into_a_block_and_reads_it_back),
        cmocka_unit_test(blocks_are_compacted_and_still_read_back),
    };
    hs_log_setup(HS_LOG_ERROR, HS_LOG_LOGFMT, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
