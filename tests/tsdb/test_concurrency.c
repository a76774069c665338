/*
 * test_concurrency.c - appenders in several threads while readers select
 * and iterate, label queries run and housekeeping checkpoints: every
 * sample a reader sees is whole (value matches its timestamp), series stay
 * in order, counts only grow (also while blocks are cut from the head and
 * compacted), and the end state is exact.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb_test_helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define WRITERS           3
#define SERIES_PER_WRITER 20
#define STEPS             2600

struct shared {
    struct tsdb *db;
    pthread_barrier_t lockstep; /* writers stay within minutes of each other, as
                                   scrapers on one clock do: a block is cut only
                                   below every writer */
    atomic_int writers_done;
    atomic_int errors;
    char msg[256];
};

/* The value written at t by writer w: checkable by any reader. */
static double value_of(int64_t t, int w)
{
    return (double)t * 0.25 + w;
}

struct wctx {
    struct shared *sh;
    int w;
};

static void *writer(void *arg)
{
    struct wctx *c = arg;
    uint64_t refs[SERIES_PER_WRITER] = {0};
    for (int64_t step = 0; step < STEPS; step++) {
        if (step % 20 == 0)
            pthread_barrier_wait(&c->sh->lockstep);
        struct tsdb_appender *a = tsdb_appender_new(c->sh->db);
        for (int s = 0; s < SERIES_PER_WRITER; s++) {
            int64_t t = step * 15000; /* 6 h in all: blocks get cut meanwhile */
            int rc;
            if (refs[s] == 0) {
                char buf[64];
                struct tlabels tl;
                snprintf(buf, sizeof(buf), "__name__=cc,w=%d,s=%d", c->w, s);
                rc = tsdb_appender_add(a, tl_parse(&tl, buf), t, value_of(t, c->w), &refs[s], NULL);
            } else {
                rc = tsdb_appender_add_ref(a, refs[s], t, value_of(t, c->w), NULL);
            }
            if (rc != HS_OK)
                atomic_fetch_add(&c->sh->errors, 1);
        }
        if (tsdb_appender_commit(a, NULL) != HS_OK)
            atomic_fetch_add(&c->sh->errors, 1);
    }
    atomic_fetch_add(&c->sh->writers_done, 1);
    return NULL;
}

static void *reader(void *arg)
{
    struct shared *sh = arg;
    struct tsdb_matcher m;
    if (tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", "cc", NULL) != HS_OK)
        return NULL;
    size_t last_total = 0;
    while (atomic_load(&sh->writers_done) < WRITERS) {
        struct tsdb_querier *q = tsdb_querier_new(sh->db, INT64_MIN, INT64_MAX);
        struct tsdb_series_set *set;
        if (tsdb_querier_select(q, &m, 1, 0, &set, NULL) != HS_OK) {
            atomic_fetch_add(&sh->errors, 1);
            tsdb_querier_free(q);
            break;
        }
        size_t total = 0;
        while (tsdb_series_set_next(set)) {
            int w = -1;
            const char *ws = hs_labels_get(tsdb_series_set_labels(set), "w");
            if (ws != NULL)
                w = ws[0] - '0';
            struct tsdb_iter *it = tsdb_series_set_iter(set);
            int64_t expect = 0;
            while (tsdb_iter_next(it)) {
                int64_t t;
                double v;
                tsdb_iter_at(it, &t, &v);
                if (t != expect || v != value_of(t, w)) {
                    snprintf(sh->msg, sizeof(sh->msg), "torn: t=%lld expect %lld v=%g",
                             (long long)t, (long long)expect, v);
                    atomic_fetch_add(&sh->errors, 1);
                    break;
                }
                expect += 15000;
                total++;
            }
        }
        if (total < last_total)
            atomic_fetch_add(&sh->errors, 1);
        last_total = total;
        tsdb_series_set_free(set);
        struct tsdb_strings vals;
        if (tsdb_querier_label_values(q, "s", NULL, 0, &vals, NULL) == HS_OK)
            tsdb_strings_free(&vals);
        tsdb_querier_free(q);
    }
    tsdb_matcher_cleanup(&m);
    return NULL;
}

static void *housekeeper(void *arg)
{
    struct shared *sh = arg;
    while (atomic_load(&sh->writers_done) < WRITERS) {
        if (tsdb_maintain(sh->db, true, NULL) != HS_OK)
            atomic_fetch_add(&sh->errors, 1);
        struct tsdb_status st;
        if (tsdb_status_get(sh->db, 5, &st, NULL) == HS_OK)
            tsdb_status_cleanup(&st);
    }
    return NULL;
}

static void concurrent_appends_and_queries_never_see_torn_samples(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-conc");
    struct tsdb_options o;
    tl_opts(&o);
    o.wal_fsync = TSDB_FSYNC_INTERVAL;
    o.wal_fsync_interval_ms = 5;
    o.wal_segment_bytes = 64 * 1024;
    struct shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.db = tsdb_open(dir, &o, NULL);
    assert_non_null(sh.db);
    pthread_barrier_init(&sh.lockstep, NULL, WRITERS);
    pthread_t tw[WRITERS], tr[2], th;
    struct wctx c[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        c[i] = (struct wctx){&sh, i};
        pthread_create(&tw[i], NULL, writer, &c[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_create(&tr[i], NULL, reader, &sh);
    pthread_create(&th, NULL, housekeeper, &sh);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(tw[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(tr[i], NULL);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&sh.lockstep);
    if (sh.msg[0])
        fail_msg("%s", sh.msg);
    assert_int_equal(atomic_load(&sh.errors), 0);
    size_t ns;
    assert_int_equal(tl_count(sh.db, TSDB_MATCH_EQ, "__name__", "cc", INT64_MIN, INT64_MAX, &ns),
                     WRITERS * SERIES_PER_WRITER);
    assert_int_equal(ns, WRITERS * SERIES_PER_WRITER * STEPS);
    struct tsdb_stats st;
    tsdb_get_stats(sh.db, &st);
    assert_int_equal(st.samples_appended, WRITERS * SERIES_PER_WRITER * STEPS);
    assert_true(st.wal_fsyncs > 0);
    printf("# %llu blocks cut, %llu compactions during the run\n",
           (unsigned long long)st.blocks_cut, (unsigned long long)st.blocks_compacted);
    tsdb_close(sh.db);
    /* And the same after replay of checkpoint + segments. */
    sh.db = tsdb_open(dir, &o, NULL);
    assert_int_equal(tl_count(sh.db, TSDB_MATCH_EQ, "__name__", "cc", INT64_MIN, INT64_MAX, &ns),
                     WRITERS * SERIES_PER_WRITER);
    assert_int_equal(ns, WRITERS * SERIES_PER_WRITER * STEPS);
    tsdb_close(sh.db);
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_appends_and_queries_never_see_torn_samples),
    };
    hs_log_setup(HS_LOG_ERROR, HS_LOG_LOGFMT, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
