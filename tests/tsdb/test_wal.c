/*
 * test_wal.c - WAL damage and recovery: a torn final record, a flipped bit
 * mid-segment, an empty segment, garbage files, replay after a checkpoint,
 * and a WAL that keeps working after the repair.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb_test_helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes n samples, one batch each, to series w (t = 1000 * i). */
static void write_n(const char *dir, int n, uint64_t seg_bytes)
{
    struct tsdb_options o;
    tl_opts(&o);
    if (seg_bytes)
        o.wal_segment_bytes = seg_bytes;
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    assert_non_null(db);
    for (int i = 0; i < n; i++)
        assert_int_equal(tl_add1(db, "__name__=w", 1000LL * i, i), HS_OK);
    tsdb_close(db);
}

/* Opens, counts samples of w, checks they are 0..k-1 in order, closes. */
static size_t reopen_count(const char *dir, uint64_t *corruptions)
{
    struct tsdb_options o;
    tl_opts(&o);
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    assert_non_null(db);
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", "w", NULL), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
    struct tsdb_series_set *set;
    assert_int_equal(tsdb_querier_select(q, &m, 1, 0, &set, NULL), HS_OK);
    size_t n = 0;
    if (tsdb_series_set_next(set)) {
        struct tsdb_iter *it = tsdb_series_set_iter(set);
        while (tsdb_iter_next(it)) {
            int64_t t;
            double v;
            tsdb_iter_at(it, &t, &v);
            assert_int_equal(t, 1000LL * (int64_t)n);
            assert_true(v == (double)n);
            n++;
        }
    }
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    if (corruptions)
        *corruptions = st.wal_corruptions;
    tsdb_close(db);
    return n;
}

static char *seg_file(const char *dir, unsigned n)
{
    size_t len = strlen(dir) + 32;
    char *p = malloc(len);
    snprintf(p, len, "%s/wal/%08u", dir, n);
    return p;
}

static off_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

static void wal_replay_truncates_a_torn_final_record(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("wal-torn");
    write_n(dir, 100, 0);
    char *seg = seg_file(dir, 1);
    off_t size = file_size(seg);
    assert_true(size > 100);
    assert_int_equal(truncate(seg, size - 5), 0); /* the last record loses its tail */
    uint64_t corrupt;
    assert_int_equal(reopen_count(dir, &corrupt), 99);
    assert_int_equal(corrupt, 1);
    /* The repaired WAL is clean and keeps taking writes. */
    assert_int_equal(reopen_count(dir, &corrupt), 99);
    assert_int_equal(corrupt, 0);
    free(seg);
    hs_test_rmdir(dir);
    free(dir);
}

static void wal_bit_flip_cuts_the_segment_and_drops_later_segments(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("wal-flip");
    write_n(dir, 3000, 16 * 1024); /* several segments */
    char *seg = seg_file(dir, 2);
    off_t size = file_size(seg);
    assert_true(size > 1000);
    int fd = open(seg, O_RDWR);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, size / 2), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, size / 2), 1);
    close(fd);
    uint64_t corrupt;
    size_t n = reopen_count(dir, &corrupt);
    assert_int_equal(corrupt, 1);
    assert_true(n > 0 && n < 3000);
    /* Segment 1 was whole: everything in it survives. */
    assert_true(n * 30 > 16 * 1024 / 2);
    char *seg3 = seg_file(dir, 3), *seg4 = seg_file(dir, 4);
    assert_int_equal(file_size(seg3), 0); /* removed, then begun afresh by the open */
    assert_int_equal(file_size(seg4), -1);
    free(seg4);
    assert_int_equal(reopen_count(dir, &corrupt), n);
    assert_int_equal(corrupt, 0);
    free(seg3);
    free(seg);
    hs_test_rmdir(dir);
    free(dir);
}

static void wal_replay_accepts_zero_length_segments_and_ignores_stray_files(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("wal-empty");
    write_n(dir, 10, 0);
    write_n(dir, 0, 0); /* segment 2 stays empty */
    char *seg = seg_file(dir, 2);
    assert_int_equal(file_size(seg), 0);
    char stray[512];
    snprintf(stray, sizeof(stray), "%s/wal/notes.txt", dir);
    FILE *f = fopen(stray, "w");
    fputs("hello", f);
    fclose(f);
    uint64_t corrupt;
    assert_int_equal(reopen_count(dir, &corrupt), 10);
    assert_int_equal(corrupt, 0);
    free(seg);
    hs_test_rmdir(dir);
    free(dir);
}

static void wal_garbage_segment_is_cut_to_nothing_without_a_crash(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("wal-garbage");
    write_n(dir, 10, 0);
    char *seg = seg_file(dir, 5);
    FILE *f = fopen(seg, "wb");
    for (int i = 0; i < 1000; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    uint64_t corrupt;
    assert_int_equal(reopen_count(dir, &corrupt), 10);
    assert_int_equal(corrupt, 1);
    assert_int_equal(file_size(seg), 0);
    free(seg);
    hs_test_rmdir(dir);
    free(dir);
}

static void wal_replays_a_checkpoint_then_the_segments_after_it(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("wal-ckpt");
    struct tsdb_options o;
    tl_opts(&o);
    o.wal_segment_bytes = 8 * 1024;
    o.checkpoint_segments = 2;
    struct tsdb *db = tsdb_open(dir, &o, NULL);
    int i = 0;
    for (; i < 2000; i++) {
        assert_int_equal(tl_add1(db, "__name__=w", 1000LL * i, i), HS_OK);
        if (i % 500 == 499)
            assert_int_equal(tsdb_maintain(db, false, NULL), HS_OK);
    }
    struct tsdb_stats st;
    tsdb_get_stats(db, &st);
    assert_true(st.wal_checkpoints >= 1);
    uint64_t bytes_before = st.wal_bytes;
    tsdb_close(db);
    /* Only one checkpoint and no segment it covers is left. */
    char wal[512];
    snprintf(wal, sizeof(wal), "%s/wal", dir);
    DIR *d = opendir(wal);
    struct dirent *de;
    int ckpts = 0;
    while ((de = readdir(d)) != NULL)
        ckpts += strncmp(de->d_name, "checkpoint.", 11) == 0;
    closedir(d);
    assert_int_equal(ckpts, 1);
    uint64_t corrupt;
    assert_int_equal(reopen_count(dir, &corrupt), 2000);
    assert_int_equal(corrupt, 0);
    (void)bytes_before;
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wal_replay_truncates_a_torn_final_record),
        cmocka_unit_test(wal_bit_flip_cuts_the_segment_and_drops_later_segments),
        cmocka_unit_test(wal_replay_accepts_zero_length_segments_and_ignores_stray_files),
        cmocka_unit_test(wal_garbage_segment_is_cut_to_nothing_without_a_crash),
        cmocka_unit_test(wal_replays_a_checkpoint_then_the_segments_after_it),
    };
    hs_log_setup(HS_LOG_ERROR, HS_LOG_LOGFMT, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
