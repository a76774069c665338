/*
 * test_head.c - the head through the public API: random series appended
 * and read back exactly (also after close/reopen and after a checkpoint),
 * seek, out-of-order and duplicate rules, limits, deletion, retention,
 * status, and the data-directory lock.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb_test_helpers.h"

#include <math.h>
#include <stdio.h>

static uint64_t rs = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

#define NS   40
#define MAXS 700

struct model {
    char labels[NS][64];
    int64_t t[NS][MAXS];
    uint64_t v[NS][MAXS];
    size_t n[NS];
    uint64_t ref[NS];
};

static uint64_t rand_value(void)
{
    static const uint64_t special[] = {0x7ff8000000000001ULL, TSDB_STALE_NAN_BITS,
                                       0x7ff0000000000000ULL, 0xfff0000000000000ULL,
                                       0x8000000000000000ULL, 0xfff8dead00000000ULL};
    switch (rnd() % 6) {
    case 0:
        return special[rnd() % HS_ARRAY_LEN(special)];
    case 1:
        return rnd();
    default: {
        double d = (double)(rnd() % 100000) / 4.0;
        uint64_t u;
        memcpy(&u, &d, 8);
        return u;
    }
    }
}

static void model_fill(struct model *m)
{
    memset(m, 0, sizeof(*m));
    for (int s = 0; s < NS; s++) {
        snprintf(m->labels[s], sizeof(m->labels[s]), "__name__=m%d,job=j%d,i=%d", s % 7, s % 3, s);
        m->n[s] = s == 0 ? 0 : rnd() % MAXS;
        int64_t t = (int64_t)(rnd() % 10000000) - 5000000;
        for (size_t i = 0; i < m->n[s]; i++) {
            m->t[s][i] = t;
            m->v[s][i] = rand_value();
            t += 1 + (int64_t)(rnd() % 4 == 0 ? rnd() % 3000000 : 15000);
        }
    }
}

/* Appends every sample, in random batches interleaving series. */
static void model_append(struct tsdb *db, struct model *m)
{
    size_t pos[NS] = {0};
    size_t left = 0;
    for (int s = 0; s < NS; s++)
        left += m->n[s];
    while (left > 0) {
        struct tsdb_appender *a = tsdb_appender_new(db);
        assert_non_null(a);
        size_t batch = 1 + rnd() % 200;
        for (size_t k = 0; k < batch && left > 0; k++) {
            int s = (int)(rnd() % NS);
            if (pos[s] == m->n[s])
                continue;
            size_t i = pos[s]++;
            double v;
            memcpy(&v, &m->v[s][i], 8);
            struct hs_err err;
            if (m->ref[s] == 0 || rnd() % 5 == 0) {
                struct tlabels tl;
                assert_int_equal(tsdb_appender_add(a, tl_parse(&tl, m->labels[s]), m->t[s][i], v,
                                                   &m->ref[s], &err),
                                 HS_OK);
            } else {
                assert_int_equal(tsdb_appender_add_ref(a, m->ref[s], m->t[s][i], v, &err), HS_OK);
            }
            left--;
        }
        assert_int_equal(tsdb_appender_commit(a, NULL), HS_OK);
    }
}

/* Reads series s over [mint, maxt] and compares with the model. */
static void model_check_series(struct tsdb *db, struct model *m, int s, int64_t mint, int64_t maxt)
{
    struct tlabels tl;
    struct hs_labels *ls = tl_parse(&tl, m->labels[s]);
    struct tsdb_matcher ms[3];
    for (size_t i = 0; i < ls->n; i++)
        assert_int_equal(
            tsdb_matcher_init(&ms[i], TSDB_MATCH_EQ, ls->v[i].name, ls->v[i].value, NULL), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, mint, maxt);
    struct tsdb_series_set *set;
    assert_int_equal(tsdb_querier_select(q, ms, ls->n, 0, &set, NULL), HS_OK);
    size_t expect = 0;
    for (size_t i = 0; i < m->n[s]; i++)
        expect += m->t[s][i] >= mint && m->t[s][i] <= maxt;
    if (expect == 0) {
        assert_int_equal(tsdb_series_set_len(set), 0);
    } else {
        assert_true(tsdb_series_set_next(set));
        assert_int_equal(hs_labels_cmp(tsdb_series_set_labels(set), ls), 0);
        struct tsdb_iter *it = tsdb_series_set_iter(set);
        for (size_t i = 0; i < m->n[s]; i++) {
            if (m->t[s][i] < mint || m->t[s][i] > maxt)
                continue;
            assert_true(tsdb_iter_next(it));
            int64_t t;
            double v;
            tsdb_iter_at(it, &t, &v);
            assert_int_equal(t, m->t[s][i]);
            uint64_t u;
            memcpy(&u, &v, 8);
            assert_int_equal(u, m->v[s][i]);
        }
        assert_false(tsdb_iter_next(it));
        assert_false(tsdb_series_set_next(set));
    }
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    for (size_t i = 0; i < ls->n; i++)
        tsdb_matcher_cleanup(&ms[i]);
}

static void model_check(struct tsdb *db, struct model *m)
{
    for (int s = 0; s < NS; s++) {
        model_check_series(db, m, s, INT64_MIN, INT64_MAX);
        if (m->n[s] > 2) {
            int64_t a = m->t[s][rnd() % m->n[s]], b = m->t[s][rnd() % m->n[s]];
            model_check_series(db, m, s, HS_MIN(a, b), HS_MAX(a, b));
        }
    }
}

static void head_returns_exactly_what_was_appended_across_reopen_and_checkpoint(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-head");
    struct model *m = malloc(sizeof(*m));
    model_fill(m);
    struct tsdb_options o;
    tl_opts(&o);
    o.wal_segment_bytes = 64 * 1024; /* many segments */
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    assert_non_null(db);
    model_append(db, m);
    model_check(db, m);
    tsdb_close(db);

    db = tsdb_open(dir, &o, NULL);
    assert_non_null(db);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_true(st.wal_replay_samples > 0);
    assert_int_equal(st.wal_corruptions, 0);
    model_check(db, m);
    /* Refs survive the restart. */
    for (int s = 1; s < NS; s++) {
        if (m->n[s] == 0)
            continue;
        struct tsdb_appender *a = tsdb_appender_new(db);
        int64_t t = m->t[s][m->n[s] - 1] + 1;
        double v;
        memcpy(&v, &m->v[s][0], 8);
        assert_int_equal(tsdb_appender_add_ref(a, m->ref[s], t, v, NULL), HS_OK);
        assert_int_equal(tsdb_appender_commit(a, NULL), HS_OK);
        m->t[s][m->n[s]] = t;
        m->v[s][m->n[s]] = m->v[s][0];
        m->n[s]++;
    }
    assert_int_equal(tsdb_maintain(db, true, NULL), HS_OK);
    tsdb_get_stats(db, &st);
    assert_true(st.wal_checkpoints >= 1); /* one more when a block was cut */
    /* More samples after the checkpoint. */
    for (int s = 1; s < NS; s++) {
        if (m->n[s] == 0 || m->n[s] == MAXS)
            continue;
        struct tsdb_appender *a = tsdb_appender_new(db);
        int64_t t = m->t[s][m->n[s] - 1] + 7;
        assert_int_equal(tsdb_appender_add_ref(a, m->ref[s], t, 2.5, NULL), HS_OK);
        assert_int_equal(tsdb_appender_commit(a, NULL), HS_OK);
        m->t[s][m->n[s]] = t;
        double d = 2.5;
        memcpy(&m->v[s][m->n[s]], &d, 8);
        m->n[s]++;
    }
    model_check(db, m);
    tsdb_close(db);

    db = tsdb_open(dir, &o, NULL);
    assert_non_null(db);
    model_check(db, m);
    tsdb_close(db);
    free(m);
    hs_test_rmdir(dir);
    free(dir);
}

static void iterator_seek_finds_the_first_sample_at_or_after_t(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-seek");
    struct tsdb_options o;
    tl_opts(&o);
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tl_add1(db, "__name__=s", i * 10, i), HS_OK);
    struct tsdb_matcher mt;
    assert_int_equal(tsdb_matcher_init(&mt, TSDB_MATCH_EQ, "__name__", "s", NULL), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, 100, 8000);
    struct tsdb_series_set *set;
    assert_int_equal(tsdb_querier_select(q, &mt, 1, 0, &set, NULL), HS_OK);
    assert_true(tsdb_series_set_next(set));
    struct tsdb_iter *it = tsdb_series_set_iter(set);
    int64_t t;
    double v;
    assert_true(tsdb_iter_seek(it, 0)); /* clamps to mint */
    tsdb_iter_at(it, &t, &v);
    assert_int_equal(t, 100);
    assert_true(tsdb_iter_seek(it, 5005));
    tsdb_iter_at(it, &t, &v);
    assert_int_equal(t, 5010);
    assert_true(v == 501.0);
    assert_true(tsdb_iter_seek(it, 10)); /* never goes back */
    tsdb_iter_at(it, &t, NULL);
    assert_int_equal(t, 5010);
    assert_true(tsdb_iter_next(it));
    tsdb_iter_at(it, &t, NULL);
    assert_int_equal(t, 5020);
    assert_true(tsdb_iter_seek(it, 8000));
    assert_false(tsdb_iter_seek(it, 8001)); /* past maxt */
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&mt);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

static void head_rejects_and_counts_out_of_order_and_duplicate_samples(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-ooo");
    struct tsdb_options o;
    tl_opts(&o);
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    struct hs_err err;
    struct tlabels tl;
    assert_int_equal(tl_add1(db, "__name__=x", 1000, 1.0), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=x", 1000, 1.0), HS_OK); /* ignored duplicate */
    struct tsdb_appender *a = tsdb_appender_new(db);
    assert_int_equal(tsdb_appender_add(a, tl_parse(&tl, "__name__=x"), 1000, 2.0, NULL, &err),
                     HS_EINVAL);
    assert_string_equal(err.msg, "duplicate sample for timestamp");
    assert_int_equal(tsdb_appender_add(a, tl_parse(&tl, "__name__=x"), 999, 2.0, NULL, &err),
                     HS_EINVAL);
    assert_string_equal(err.msg, "out of order sample");
    /* Inside one batch, the later of two disordered samples is dropped at commit. */
    assert_int_equal(tsdb_appender_add(a, tl_parse(&tl, "__name__=x"), 3000, 3.0, NULL, &err),
                     HS_OK);
    assert_int_equal(tsdb_appender_add(a, tl_parse(&tl, "__name__=x"), 2000, 3.0, NULL, &err),
                     HS_OK);
    assert_int_equal(tsdb_appender_commit(a, &err), HS_OK);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.rejected_duplicate, 1);
    assert_int_equal(st.rejected_out_of_order, 2);
    assert_int_equal(st.duplicates_ignored, 1);
    assert_int_equal(st.samples_appended, 2);
    size_t ns;
    assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "__name__", "x", INT64_MIN, INT64_MAX, &ns), 1);
    assert_int_equal(ns, 2);
    /* Stale markers and NaN are values like any other: same bits = duplicate. */
    double stale;
    uint64_t sb = TSDB_STALE_NAN_BITS;
    memcpy(&stale, &sb, 8);
    assert_int_equal(tl_add1(db, "__name__=x", 4000, stale), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=x", 4000, stale), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=x", 4000, NAN), HS_EINVAL);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

static void head_accepts_samples_inside_the_out_of_order_window(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-window");
    struct tsdb_options o;
    tl_opts(&o);
    o.ooo_window_ms = 100000;
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    for (int i = 0; i < 300; i++)
        assert_int_equal(tl_add1(db, "__name__=w", 1000000 + i * 1000, i), HS_OK);
    /* Fill the holes, backwards, within the window. */
    for (int i = 299; i >= 250; i--)
        assert_int_equal(tl_add1(db, "__name__=w", 1000000 + i * 1000 + 500, -i), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=w", 1000000 + 299 * 1000 - 100001, 0),
                     HS_EINVAL);                                                   /* outside */
    assert_int_equal(tl_add1(db, "__name__=w", 1000000 + 260 * 1000, 260), HS_OK); /* dup */
    assert_int_equal(tl_add1(db, "__name__=w", 1000000 + 260 * 1000, 1), HS_EINVAL);
    assert_int_equal(tl_add1(db, "__name__=w", 1000000 + 260 * 1000 + 500, -260), HS_OK);
    size_t ns;
    assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "__name__", "w", INT64_MIN, INT64_MAX, &ns), 1);
    assert_int_equal(ns, 350);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.ooo_samples_appended, 49); /* 299.5 s was in order */
    tsdb_close(db);
    /* In order after replay too. */
    db = tsdb_open(dir, &o, NULL);
    struct tsdb_matcher mt;
    assert_int_equal(tsdb_matcher_init(&mt, TSDB_MATCH_EQ, "__name__", "w", NULL), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
    struct tsdb_series_set *set;
    assert_int_equal(tsdb_querier_select(q, &mt, 1, 0, &set, NULL), HS_OK);
    assert_true(tsdb_series_set_next(set));
    struct tsdb_iter *it = tsdb_series_set_iter(set);
    int64_t last = INT64_MIN, t;
    double v;
    size_t n = 0;
    while (tsdb_iter_next(it)) {
        tsdb_iter_at(it, &t, &v);
        assert_true(t > last);
        if ((t - 1000000) % 1000 == 500)
            assert_true(v == -(double)((t - 1000000) / 1000));
        last = t;
        n++;
    }
    assert_int_equal(n, 350);
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&mt);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

static void head_counts_limit_rejections_without_failing(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-limits");
    struct tsdb_options o;
    tl_opts(&o);
    o.max_series = 3;
    o.max_labels = 3;
    o.max_label_name_len = 8;
    o.max_label_value_len = 5;
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    assert_int_equal(tl_add1(db, "__name__=a,b=1,c=2,d=3", 1, 1), HS_ETOOBIG);
    assert_int_equal(tl_add1(db, "__name__=toolongvalue", 1, 1), HS_ETOOBIG);
    assert_int_equal(tl_add1(db, "__name__=a,verylongname=1", 1, 1), HS_ETOOBIG);
    assert_int_equal(tl_add1(db, "__name__=a", 1, 1), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=b", 1, 1), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=c", 1, 1), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=d", 1, 1), HS_ETOOBIG);
    assert_int_equal(tl_add1(db, "__name__=a", 2, 1), HS_OK); /* existing series still fine */
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.rejected_limit, 4);
    assert_int_equal(st.head_series, 3);
    /* Invalid label sets are errors, not crashes. */
    struct hs_label bad[2] = {{"b", "1"}, {"a", "2"}};
    struct hs_labels bls = {2, bad};
    struct tsdb_appender *a = tsdb_appender_new(db);
    assert_int_equal(tsdb_appender_add(a, &bls, 1, 1, NULL, NULL), HS_EINVAL);
    struct hs_labels empty = {0, NULL};
    assert_int_equal(tsdb_appender_add(a, &empty, 1, 1, NULL, NULL), HS_EINVAL);
    assert_int_equal(tsdb_appender_add_ref(a, 99999, 1, 1, NULL), HS_ENOTFOUND);
    tsdb_appender_rollback(a);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

static void deletion_is_durable_through_the_wal(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-delete");
    struct tsdb_options o;
    tl_opts(&o);
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    for (int i = 0; i < 500; i++) {
        assert_int_equal(tl_add1(db, "__name__=d,k=1", i * 1000, i), HS_OK);
        assert_int_equal(tl_add1(db, "__name__=d,k=2", i * 1000, i), HS_OK);
    }
    struct tsdb_matcher m[2];
    assert_int_equal(tsdb_matcher_init(&m[0], TSDB_MATCH_EQ, "__name__", "d", NULL), HS_OK);
    assert_int_equal(tsdb_matcher_init(&m[1], TSDB_MATCH_EQ, "k", "1", NULL), HS_OK);
    size_t deleted;
    assert_int_equal(tsdb_delete_series(db, m, 2, 100000, 199999, &deleted, NULL), HS_OK);
    assert_int_equal(deleted, 1);
    size_t ns;
    assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "k", "1", INT64_MIN, INT64_MAX, &ns), 1);
    assert_int_equal(ns, 400);
    tsdb_close(db);
    db = tsdb_open(dir, &o, NULL);
    assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "k", "1", INT64_MIN, INT64_MAX, &ns), 1);
    assert_int_equal(ns, 400);
    /* Deleting everything removes the series. */
    struct tsdb_matcher k2;
    assert_int_equal(tsdb_matcher_init(&k2, TSDB_MATCH_EQ, "k", "2", NULL), HS_OK);
    assert_int_equal(tsdb_delete_series(db, &k2, 1, INT64_MIN, INT64_MAX, &deleted, NULL), HS_OK);
    assert_int_equal(deleted, 1);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_series, 1);
    tsdb_close(db);
    db = tsdb_open(dir, &o, NULL);
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_series, 1);
    assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "k", "2", INT64_MIN, INT64_MAX, &ns), 0);
    tsdb_close(db);
    tsdb_matcher_cleanup(&k2);
    tsdb_matcher_cleanup(&m[0]);
    tsdb_matcher_cleanup(&m[1]);
    hs_test_rmdir(dir);
    free(dir);
}

static void retention_drops_old_chunks_and_empty_series(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-retention");
    struct tsdb_options o;
    tl_opts(&o);
    o.retention_ms = 3600 * 1000;
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    int64_t step = 15000;
    assert_int_equal(tl_add1(db, "__name__=old", 0, 1), HS_OK);
    for (int i = 0; i < 4 * 240; i++)
        assert_int_equal(tl_add1(db, "__name__=r", i * step, i), HS_OK);
    assert_int_equal(tl_add1(db, "__name__=r", 0, 1), HS_EINVAL); /* too old */
    assert_int_equal(tsdb_maintain(db, false, NULL), HS_OK);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_series, 1);
    assert_int_equal(st.rejected_too_old, 1);
    assert_true(st.head_min_t_ms >= (4 * 240 - 1) * step - 3600 * 1000 - 120 * step);
    size_t ns = 0;
    assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "__name__", "r", INT64_MIN, INT64_MAX, &ns), 1);
    assert_true(ns >= 240 && ns < 240 + 2 * 120);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

static void status_reports_cardinality_tops(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-status");
    struct tsdb_options o;
    tl_opts(&o);
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    char buf[64];
    for (int i = 0; i < 10; i++) {
        snprintf(buf, sizeof(buf), "__name__=big,pod=p%d", i);
        assert_int_equal(tl_add1(db, buf, 1, 1), HS_OK);
    }
    assert_int_equal(tl_add1(db, "__name__=small,pod=p1", 5, 1), HS_OK);
    struct tsdb_status s;
    assert_int_equal(tsdb_status_get(db, 2, &s, NULL), HS_OK);
    assert_int_equal(s.num_series, 11);
    assert_int_equal(s.num_label_pairs, 12);
    assert_int_equal(s.min_time_ms, 1);
    assert_int_equal(s.max_time_ms, 5);
    assert_int_equal(s.chunk_count, 11);
    assert_int_equal(s.n_by_metric, 2);
    assert_string_equal(s.series_count_by_metric_name[0].name, "big");
    assert_int_equal(s.series_count_by_metric_name[0].value, 10);
    assert_string_equal(s.label_value_count_by_name[0].name, "pod");
    assert_int_equal(s.label_value_count_by_name[0].value, 10);
    assert_string_equal(s.series_count_by_label_pair[0].name, "__name__=big");
    assert_string_equal(s.series_count_by_label_pair[1].name, "pod=p1");
    tsdb_status_cleanup(&s);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

static void a_second_open_of_a_data_dir_is_refused(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-lock");
    struct tsdb *db = tsdb_open(dir, NULL, NULL);
    assert_non_null(db);
    struct hs_err err;
    assert_null(tsdb_open(dir, NULL, &err));
    assert_int_equal(err.code, HS_EAGAIN);
    assert_non_null(strstr(err.msg, "is locked"));
    tsdb_close(db);
    db = tsdb_open(dir, NULL, &err);
    assert_non_null(db);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_returns_exactly_what_was_appended_across_reopen_and_checkpoint),
        cmocka_unit_test(iterator_seek_finds_the_first_sample_at_or_after_t),
        cmocka_unit_test(head_rejects_and_counts_out_of_order_and_duplicate_samples),
        cmocka_unit_test(head_accepts_samples_inside_the_out_of_order_window),
        cmocka_unit_test(head_counts_limit_rejections_without_failing),
        cmocka_unit_test(deletion_is_durable_through_the_wal),
        cmocka_unit_test(retention_drops_old_chunks_and_empty_series),
        cmocka_unit_test(status_reports_cardinality_tops),
        cmocka_unit_test(a_second_open_of_a_data_dir_is_refused),
    };
    hs_log_setup(HS_LOG_WARN, HS_LOG_LOGFMT, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
