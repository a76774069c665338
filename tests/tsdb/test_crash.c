/*
 * test_crash.c - crash safety: a child process ingests at full speed with
 * fsync=batch and reports each acknowledged commit through a pipe; the
 * parent kills it with SIGKILL at a random moment, reopens the store and
 * checks that every acknowledged sample is there, once, in order.
 * Bounded: a handful of rounds of at most ~150 ms each.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb_test_helpers.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SERIES 4
#define ROUNDS 6

static void child_ingest(const char *dir, int round, int wfd)
{
    struct tsdb_options o;
    tl_opts(&o);
    o.wal_fsync = TSDB_FSYNC_BATCH;
    o.wal_segment_bytes = 32 * 1024; /* segment cuts happen during the run too */
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    if (db == NULL)
        _exit(3);
    uint64_t refs[SERIES] = {0};
    for (int64_t seq = 0;; seq++) {
        struct tsdb_appender *a = tsdb_appender_new(db);
        for (int s = 0; s < SERIES; s++) {
            int rc;
            if (refs[s] == 0) {
                char buf[64];
                struct tlabels tl;
                snprintf(buf, sizeof(buf), "__name__=c,round=%d,s=%d", round, s);
                rc = tsdb_appender_add(a, tl_parse(&tl, buf), seq * 1000, (double)seq, &refs[s],
                                       NULL);
            } else {
                rc = tsdb_appender_add_ref(a, refs[s], seq * 1000, (double)seq, NULL);
            }
            if (rc != HS_OK)
                _exit(4);
        }
        if (tsdb_appender_commit(a, NULL) != HS_OK)
            _exit(5);
        if (write(wfd, &seq, sizeof(seq)) != (ssize_t)sizeof(seq))
            _exit(6);
    }
}

static void check_round(struct tsdb *db, int round, int64_t acked)
{
    for (int s = 0; s < SERIES; s++) {
        char val[16], sv[16];
        snprintf(val, sizeof(val), "%d", round);
        snprintf(sv, sizeof(sv), "%d", s);
        struct tsdb_matcher m[2];
        assert_int_equal(tsdb_matcher_init(&m[0], TSDB_MATCH_EQ, "round", val, NULL), HS_OK);
        assert_int_equal(tsdb_matcher_init(&m[1], TSDB_MATCH_EQ, "s", sv, NULL), HS_OK);
        struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
        struct tsdb_series_set *set;
        assert_int_equal(tsdb_querier_select(q, m, 2, 0, &set, NULL), HS_OK);
        int64_t n = 0;
        if (tsdb_series_set_next(set)) {
            struct tsdb_iter *it = tsdb_series_set_iter(set);
            while (tsdb_iter_next(it)) {
                int64_t t;
                double v;
                tsdb_iter_at(it, &t, &v);
                assert_int_equal(t, n * 1000);
                assert_true(v == (double)n);
                n++;
            }
        }
        if (n < acked + 1)
            fail_msg("round %d series %d: %lld samples, %lld acknowledged", round, s, (long long)n,
                     (long long)acked + 1);
        tsdb_series_set_free(set);
        tsdb_querier_free(q);
        tsdb_matcher_cleanup(&m[0]);
        tsdb_matcher_cleanup(&m[1]);
    }
}

static void crash_keeps_every_acknowledged_sample_after_sigkill(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("tsdb-crash");
    srand((unsigned)time(NULL));
    int64_t acked[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child_ingest(dir, round, p[1]);
        }
        close(p[1]);
        struct timespec ts = {0, (20 + rand() % 130) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status)); /* it was still ingesting, no early exit */
        acked[round] = -1;
        int64_t seq;
        while (read(p[0], &seq, sizeof(seq)) == (ssize_t)sizeof(seq))
            acked[round] = seq;
        close(p[0]);
        struct tsdb_options o;
        tl_opts(&o);
        struct hs_err err;
        struct tsdb *db = tsdb_open(dir, &o, &err);
        if (db == NULL)
            fail_msg("reopen after kill: %s", err.msg);
        for (int r = 0; r <= round; r++)
            check_round(db, r, acked[r]);
        tsdb_close(db);
        printf("# round %d: %lld commits acknowledged before SIGKILL\n", round,
               (long long)acked[round] + 1);
    }
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crash_keeps_every_acknowledged_sample_after_sigkill),
    };
    hs_log_setup(HS_LOG_ERROR, HS_LOG_LOGFMT, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
