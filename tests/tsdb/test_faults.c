/*
 * test_faults.c - allocation failures: every allocation of open, append,
 * commit, select, label listing, checkpoint and deletion is made to fail in
 * turn; each must end in a clean error (or success), never a crash or a
 * leak, and the store must still reopen with what was acknowledged.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb_test_helpers.h"

#include <stdio.h>

/* One pass of work; returns false when an allocation failure stopped it. */
static bool work(const char *dir, int64_t base, size_t *acked)
{
    struct tsdb_options o;
    tl_opts(&o);
    o.ooo_window_ms = 10000;
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    if (db == NULL)
        return false;
    bool ok = true;
    for (int i = 0; i < 5 && ok; i++) {
        struct tsdb_appender *a = tsdb_appender_new(db);
        if (a == NULL) {
            ok = false;
            break;
        }
        struct tlabels tl;
        char buf[64];
        snprintf(buf, sizeof(buf), "__name__=f,i=%d", i % 3);
        int rc = tsdb_appender_add(a, tl_parse(&tl, buf), base + i, i, NULL, NULL);
        if (rc != HS_OK) {
            tsdb_appender_rollback(a);
            ok = false;
            break;
        }
        if (tsdb_appender_commit(a, NULL) != HS_OK) {
            ok = false;
            break;
        }
        (*acked)++;
    }
    struct tsdb_matcher m;
    memset(&m, 0, sizeof(m));
    if (ok && tsdb_matcher_init(&m, TSDB_MATCH_RE, "__name__", "f|g", NULL) == HS_OK) {
        struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
        struct tsdb_series_set *set = NULL;
        if (q == NULL || tsdb_querier_select(q, &m, 1, 0, &set, NULL) != HS_OK)
            ok = false;
        while (set != NULL && tsdb_series_set_next(set)) {
            struct tsdb_iter *it = tsdb_series_set_iter(set);
            while (tsdb_iter_next(it))
                ;
        }
        tsdb_series_set_free(set);
        struct tsdb_strings s;
        if (q != NULL && tsdb_querier_label_values(q, "i", &m, 1, &s, NULL) == HS_OK)
            tsdb_strings_free(&s);
        struct tsdb_status st;
        if (tsdb_status_get(db, 3, &st, NULL) == HS_OK)
            tsdb_status_cleanup(&st);
        tsdb_querier_free(q);
        if (tsdb_maintain(db, true, NULL) != HS_OK)
            ok = false;
        tsdb_matcher_cleanup(&m);
    } else {
        tsdb_matcher_cleanup(&m);
        ok = false;
    }
    tsdb_close(db);
    return ok;
}

static void every_allocation_failure_is_a_clean_error(void **state)
{
    (void)state;
    int completed = 0;
    long n = 0;
    for (; n < 20000 && completed < 3; n++) {
        char *dir = hs_test_tmpdir("tsdb-faults");
        size_t acked = 0;
        /* A first pass without faults leaves a WAL and a checkpoint to replay. */
        assert_true(work(dir, 0, &acked));
        size_t before = acked;
        unsigned long calls = hs_alloc_calls();
        hs_alloc_fail_after(n);
        bool ok = work(dir, 1000, &acked);
        hs_alloc_fail_after(-1);
        bool fired = hs_alloc_calls() - calls > (unsigned long)n;
        if (!fired)
            assert_true(ok);
        completed += !fired; /* past the last allocation of a pass: done */
        /* Whatever happened, the store reopens with everything acknowledged. */
        size_t ns = 0;
        struct tsdb_options o;
        tl_opts(&o);
        struct tsdb *db = tsdb_open(dir, &o, NULL);
        assert_non_null(db);
        assert_int_equal(tl_count(db, TSDB_MATCH_EQ, "__name__", "f", INT64_MIN, INT64_MAX, &ns),
                         3);
        if (ns < acked)
            fail_msg("fail at %ld: %zu samples, %zu acknowledged (%zu before)", n, ns, acked,
                     before);
        tsdb_close(db);
        hs_test_rmdir(dir);
        free(dir);
    }
    printf("# %ld allocation points failed in turn\n", n - completed);
    assert_true(completed >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_failure_is_a_clean_error),
    };
    hs_log_setup(HS_LOG_ERROR + 1, HS_LOG_LOGFMT, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
