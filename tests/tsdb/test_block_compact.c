/*
 * test_block_compact.c - compaction of blocks (union of series, chunks
 * copied or merged, tombstones applied, level and sources), the planner and
 * retention on crafted metas, and crash-safe deletion.
 *
 * Chunks here use a fake encoding (1): the data is the samples' int64
 * timestamps, so the merge callback can rewrite them without chunk.c.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb/block.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_T 64

/* One series of a test block: labels "a"=name, "b"=value, and timestamps per chunk. */
struct tseries {
    const char *name, *value;
    size_t n_chunks;
    size_t n_t[4];
    int64_t t[4][MAX_T];
};

struct src {
    const struct tseries *s;
    size_t n, pos;
    struct hs_label lv[2];
    struct hs_labels ls;
    struct tsdb__chunk_meta cm[4];
};

static void make_chunk(struct tsdb__chunk_meta *c, const int64_t *t, size_t n)
{
    *c = (struct tsdb__chunk_meta){
        t[0], t[n - 1], (uint32_t)n, 1, (const uint8_t *)t, (uint32_t)(n * sizeof(int64_t)), 0};
}

static int src_next(void *ctx, const struct hs_labels **ls, const struct tsdb__chunk_meta **c,
                    size_t *n, struct hs_err *err)
{
    struct src *s = ctx;
    (void)err;
    if (s->pos == s->n)
        return 0;
    const struct tseries *t = &s->s[s->pos++];
    s->lv[0] = (struct hs_label){"a", t->name};
    s->lv[1] = (struct hs_label){"b", t->value};
    s->ls = (struct hs_labels){2, s->lv};
    for (size_t i = 0; i < t->n_chunks; i++)
        make_chunk(&s->cm[i], t->t[i], t->n_t[i]);
    *ls = &s->ls;
    *c = s->cm;
    *n = t->n_chunks;
    return 1;
}

static struct tsdb__block *make_block(const char *dir, const struct tseries *s, size_t n)
{
    struct src ctx = {.s = s, .n = n};
    struct tsdb__block_meta meta;
    struct hs_err err = {0};
    if (tsdb__block_write(dir, NULL, src_next, &ctx, &meta, &err) != HS_OK)
        fail_msg("write: %s", err.msg);
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, meta.ulid);
    tsdb__block_meta_cleanup(&meta);
    struct tsdb__block *b;
    if (tsdb__block_open(p, &b, &err) != HS_OK)
        fail_msg("open: %s", err.msg);
    return b;
}

/* Fills ts with a..b step 'step'. */
static size_t span(int64_t *ts, int64_t a, int64_t b, int64_t step)
{
    size_t n = 0;
    for (int64_t t = a; t <= b && n < MAX_T; t += step)
        ts[n++] = t;
    return n;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

struct merge_stats {
    int calls;
    int calls_with_deletions;
};

/* Merge for the fake encoding: all timestamps, minus deleted ones, sorted, unique. */
static int fake_merge(void *ctx, const struct tsdb__chunk_meta *in, size_t n_in,
                      const struct tsdb__block_interval *del, size_t n_del, struct hs_arena *a,
                      struct tsdb__chunk_meta **out, size_t *n_out, struct hs_err *err)
{
    struct merge_stats *st = ctx;
    st->calls++;
    st->calls_with_deletions += n_del > 0;
    size_t total = 0;
    for (size_t i = 0; i < n_in; i++)
        total += in[i].len / sizeof(int64_t);
    int64_t *t = hs_arena_alloc(a, (total ? total : 1) * sizeof(*t));
    struct tsdb__chunk_meta *o = hs_arena_alloc(a, sizeof(*o));
    if (t == NULL || o == NULL)
        return hs_err_set(err, HS_ENOMEM, "oom");
    size_t k = 0;
    for (size_t i = 0; i < n_in; i++) {
        for (size_t j = 0; j < in[i].len / sizeof(int64_t); j++) {
            int64_t v;
            memcpy(&v, in[i].data + j * sizeof(int64_t), sizeof(v));
            bool gone = false;
            for (size_t d = 0; d < n_del; d++)
                gone |= del[d].mint <= v && v <= del[d].maxt;
            if (!gone)
                t[k++] = v;
        }
    }
    qsort(t, k, sizeof(*t), cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || t[u - 1] != t[i])
            t[u++] = t[i];
    *n_out = 0;
    if (u > 0) {
        make_chunk(o, t, u);
        *out = o;
        *n_out = 1;
    }
    return HS_OK;
}

/* Every timestamp of series ref in b, in chunk order, into ts (returns count). */
static size_t read_all(struct tsdb__block *b, uint64_t ref, struct hs_labels *ls, int64_t *ts,
                       size_t cap, struct hs_arena *a, size_t *n_chunks)
{
    struct tsdb__chunk_meta *cm;
    size_t n, k = 0;
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_series(b, ref, a, ls, &cm, &n, &err), HS_OK);
    *n_chunks = n;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tsdb__block_chunk(b, &cm[i], &err), HS_OK);
        assert_int_equal(cm[i].encoding, 1);
        size_t m = cm[i].len / sizeof(int64_t);
        assert_int_equal(m, cm[i].num_samples);
        for (size_t j = 0; j < m && k < cap; j++)
            memcpy(&ts[k++], cm[i].data + j * sizeof(int64_t), sizeof(int64_t));
        if (i > 0)
            assert_true(cm[i].mint > cm[i - 1].maxt);
    }
    return k;
}

static struct tsdb__block *open_meta(const char *dir, const struct tsdb__block_meta *m)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, m->ulid);
    struct tsdb__block *b;
    struct hs_err err = {0};
    if (tsdb__block_open(p, &b, &err) != HS_OK)
        fail_msg("open: %s", err.msg);
    return b;
}

static void compacting_three_blocks_gives_the_union_of_their_series(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("compact");
    static struct tseries s1[2], s2[3], s3[1];
    /* block 1: [0,100), block 2: [100,200), block 3: [200,300) */
    s1[0] = (struct tseries){"m", "x", 2, {0}, {{0}}};
    s1[0].n_t[0] = span(s1[0].t[0], 0, 40, 10);
    s1[0].n_t[1] = span(s1[0].t[1], 50, 99, 7);
    s1[1] = (struct tseries){"m", "y", 1, {0}, {{0}}};
    s1[1].n_t[0] = span(s1[1].t[0], 5, 95, 15);
    s2[0] = (struct tseries){"a", "q", 1, {0}, {{0}}};
    s2[0].n_t[0] = span(s2[0].t[0], 100, 190, 30);
    s2[1] = (struct tseries){"m", "x", 1, {0}, {{0}}};
    s2[1].n_t[0] = span(s2[1].t[0], 100, 199, 9);
    s2[2] = (struct tseries){"z", "z", 1, {0}, {{0}}};
    s2[2].n_t[0] = span(s2[2].t[0], 150, 160, 1);
    s3[0] = (struct tseries){"m", "x", 1, {0}, {{0}}};
    s3[0].n_t[0] = span(s3[0].t[0], 200, 299, 11);
    struct tsdb__block *b[3] = {make_block(dir, s1, 2), make_block(dir, s2, 3),
                                make_block(dir, s3, 1)};
    struct tsdb__block_meta m;
    struct hs_err err = {0};
    struct merge_stats st = {0};
    assert_int_equal(tsdb__block_compact(dir, b, 3, fake_merge, &st, NULL, &m, &err), HS_OK);
    assert_int_equal(st.calls, 0); /* nothing overlaps: chunks are copied */
    assert_int_equal(m.level, 2);
    assert_int_equal(m.n_sources, 3);
    for (size_t i = 0; i < 3; i++) {
        bool found = false;
        for (size_t j = 0; j < 3; j++)
            found |= strcmp(m.sources[j], tsdb__block_meta_of(b[i])->ulid) == 0;
        assert_true(found);
    }
    assert_true(strcmp(m.sources[0], m.sources[1]) < 0 && strcmp(m.sources[1], m.sources[2]) < 0);
    assert_int_equal(m.min_time, 0);
    assert_int_equal(m.max_time, 300);
    assert_int_equal(m.num_series, 4);
    struct tsdb__block *c = open_meta(dir, &m);
    assert_int_equal(tsdb__block_series_count(c), 4);
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    /* Expected in label order: a=a,b=q | a=m,b=x | a=m,b=y | a=z,b=z */
    static const char *want[4][2] = {{"a", "q"}, {"m", "x"}, {"m", "y"}, {"z", "z"}};
    static const size_t want_chunks[4] = {1, 4, 1, 1};
    uint64_t samples = 0;
    for (size_t r = 0; r < 4; r++) {
        struct hs_labels ls;
        int64_t ts[4 * MAX_T];
        size_t nc;
        size_t n = read_all(c, r, &ls, ts, 4 * MAX_T, &a, &nc);
        samples += n;
        assert_string_equal(hs_labels_get(&ls, "a"), want[r][0]);
        assert_string_equal(hs_labels_get(&ls, "b"), want[r][1]);
        assert_int_equal(nc, want_chunks[r]);
        for (size_t i = 1; i < n; i++)
            assert_true(ts[i] > ts[i - 1]);
        hs_arena_reset(&a);
    }
    assert_int_equal(samples, m.num_samples);
    /* The merged x series holds every sample of the three blocks, in order. */
    struct hs_labels ls;
    int64_t ts[4 * MAX_T];
    size_t nc;
    size_t n = read_all(c, 1, &ls, ts, 4 * MAX_T, &a, &nc);
    assert_int_equal(n, s1[0].n_t[0] + s1[0].n_t[1] + s2[1].n_t[0] + s3[0].n_t[0]);
    assert_int_equal(ts[0], 0);
    assert_int_equal(ts[n - 1], s3[0].t[0][s3[0].n_t[0] - 1]);
    hs_arena_cleanup(&a);
    tsdb__block_close(c);
    for (int i = 0; i < 3; i++)
        tsdb__block_close(b[i]);
    tsdb__block_meta_cleanup(&m);
    hs_test_rmdir(dir);
    free(dir);
}

static void overlapping_blocks_go_through_the_merge_callback(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("compact");
    static struct tseries s1[1], s2[1];
    s1[0] = (struct tseries){"m", "x", 1, {0}, {{0}}};
    s1[0].n_t[0] = span(s1[0].t[0], 0, 100, 10);
    s2[0] = (struct tseries){"m", "x", 1, {0}, {{0}}};
    s2[0].n_t[0] = span(s2[0].t[0], 50, 150, 5); /* overlaps and shares 50, 60, ... 100 */
    struct tsdb__block *b[2] = {make_block(dir, s1, 1), make_block(dir, s2, 1)};
    struct hs_err err = {0};
    struct tsdb__block_meta m;
    assert_int_equal(tsdb__block_compact(dir, b, 2, NULL, NULL, NULL, &m, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "merge callback"));
    assert_non_null(strstr(err.msg, "a=\"m\""));
    struct tsdb__block_meta *metas;
    size_t nm, nq;
    assert_int_equal(tsdb__block_scan_dir(dir, &metas, &nm, &nq, &err), HS_OK);
    assert_int_equal(nm, 2); /* nothing left behind by the failed compaction */
    tsdb__block_metas_free(metas, nm);
    struct merge_stats st = {0};
    assert_int_equal(tsdb__block_compact(dir, b, 2, fake_merge, &st, NULL, &m, &err), HS_OK);
    assert_int_equal(st.calls, 1);
    struct tsdb__block *c = open_meta(dir, &m);
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct hs_labels ls;
    int64_t ts[2 * MAX_T];
    size_t nc;
    size_t n = read_all(c, 0, &ls, ts, 2 * MAX_T, &a, &nc);
    assert_int_equal(nc, 1);
    assert_int_equal(n, 5 /* 0..40 */ + 21 /* 50..150 step 5 */);
    for (size_t i = 1; i < n; i++)
        assert_true(ts[i] > ts[i - 1]);
    hs_arena_cleanup(&a);
    tsdb__block_close(c);
    tsdb__block_close(b[0]);
    tsdb__block_close(b[1]);
    tsdb__block_meta_cleanup(&m);
    hs_test_rmdir(dir);
    free(dir);
}

static void tombstones_are_applied_during_compaction(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("compact");
    static struct tseries s[3];
    s[0] = (struct tseries){"m", "gone", 1, {0}, {{0}}};
    s[0].n_t[0] = span(s[0].t[0], 0, 50, 10);
    s[1] = (struct tseries){"m", "kept", 3, {0}, {{0}}};
    s[1].n_t[0] = span(s[1].t[0], 0, 30, 10);
    s[1].n_t[1] = span(s[1].t[1], 40, 60, 10);  /* wholly deleted */
    s[1].n_t[2] = span(s[1].t[2], 70, 100, 10); /* cut: 70 and 80 deleted */
    s[2] = (struct tseries){"m", "untouched", 1, {0}, {{0}}};
    s[2].n_t[0] = span(s[2].t[0], 0, 50, 25);
    struct tsdb__block *b = make_block(dir, s, 3);
    char bdir[4200];
    snprintf(bdir, sizeof(bdir), "%s", tsdb__block_dir(b));
    struct tsdb__block_tombstone t[3] = {{0, INT64_MIN, INT64_MAX}, {1, 35, 65}, {1, 66, 80}};
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_tombstones_write(bdir, t, 3, &err), HS_OK);
    tsdb__block_close(b);
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_OK);
    struct merge_stats st = {0};
    struct tsdb__block_meta m;
    assert_int_equal(tsdb__block_compact(dir, &b, 1, fake_merge, &st, NULL, &m, &err), HS_OK);
    assert_int_equal(st.calls, 1);
    assert_int_equal(st.calls_with_deletions, 1);
    assert_int_equal(m.num_series, 2);
    assert_int_equal(m.num_tombstones, 0);
    struct tsdb__block *c = open_meta(dir, &m);
    size_t nt;
    tsdb__block_tombstones(c, &nt);
    assert_int_equal(nt, 0);
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct hs_labels ls;
    int64_t ts[3 * MAX_T];
    size_t nc;
    size_t n = read_all(c, 0, &ls, ts, 3 * MAX_T, &a, &nc);
    assert_string_equal(hs_labels_get(&ls, "b"), "kept");
    assert_int_equal(nc, 2);
    static const int64_t want[] = {0, 10, 20, 30, 90, 100};
    assert_int_equal(n, 6);
    assert_memory_equal(ts, want, sizeof(want));
    n = read_all(c, 1, &ls, ts, 3 * MAX_T, &a, &nc);
    assert_string_equal(hs_labels_get(&ls, "b"), "untouched");
    assert_int_equal(n, 3);
    hs_arena_cleanup(&a);
    tsdb__block_close(c);
    tsdb__block_close(b);
    tsdb__block_meta_cleanup(&m);
    hs_test_rmdir(dir);
    free(dir);
}

static size_t count_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void compaction_fails_cleanly_when_any_allocation_fails(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("compact");
    static struct tseries s1[2], s2[2];
    s1[0] = (struct tseries){"m", "x", 1, {0}, {{0}}};
    s1[0].n_t[0] = span(s1[0].t[0], 0, 100, 10);
    s1[1] = (struct tseries){"m", "y", 1, {0}, {{0}}};
    s1[1].n_t[0] = span(s1[1].t[0], 0, 100, 50);
    s2[0] = (struct tseries){"m", "x", 1, {0}, {{0}}};
    s2[0].n_t[0] = span(s2[0].t[0], 50, 150, 5);
    s2[1] = (struct tseries){"m", "z", 1, {0}, {{0}}};
    s2[1].n_t[0] = span(s2[1].t[0], 100, 150, 25);
    struct tsdb__block *b[2] = {make_block(dir, s1, 2), make_block(dir, s2, 2)};
    struct merge_stats st = {0};
    bool done = false;
    for (long i = 0; !done && i < 100000; i++) {
        struct tsdb__block_meta m = {0};
        struct hs_err err = {0};
        hs_alloc_fail_after(i);
        int rc = tsdb__block_compact(dir, b, 2, fake_merge, &st, NULL, &m, &err);
        hs_alloc_fail_after(-1);
        if (rc != HS_OK) {
            assert_int_equal(rc, HS_ENOMEM);
            assert_int_equal(count_entries(dir), 2);
            continue;
        }
        assert_int_equal(m.num_series, 3);
        assert_int_equal(count_entries(dir), 3);
        tsdb__block_meta_cleanup(&m);
        done = true;
    }
    assert_true(done);
    tsdb__block_close(b[0]);
    tsdb__block_close(b[1]);
    hs_test_rmdir(dir);
    free(dir);
}

/* ---- planning ----------------------------------------------------------------- */

#define H (3600 * 1000LL)

static struct tsdb__block_meta meta_at(int64_t mint, int64_t maxt)
{
    struct tsdb__block_meta m = {0};
    m.min_time = mint;
    m.max_time = maxt;
    m.level = 1;
    m.num_series = 100;
    return m;
}

static void ranges_grow_by_three_up_to_a_tenth_of_retention(void **state)
{
    (void)state;
    int64_t r[10];
    size_t n = tsdb__block_ranges(2 * H, 15 * 24 * H, r, 10);
    assert_int_equal(n, 3); /* 2h, 6h, 18h; 54h > 36h */
    assert_int_equal(r[0], 2 * H);
    assert_int_equal(r[1], 6 * H);
    assert_int_equal(r[2], 18 * H);
    assert_int_equal(tsdb__block_ranges(2 * H, 0, r, 10), 10);
    assert_int_equal(r[9], 2 * H * 19683);
    assert_int_equal(tsdb__block_ranges(2 * H, 1 * H, r, 10), 1);
    assert_int_equal(tsdb__block_ranges(0, 1 * H, r, 10), 0);
}

static void plan_merges_three_2h_blocks_into_a_6h_window(void **state)
{
    (void)state;
    int64_t r[3] = {2 * H, 6 * H, 18 * H};
    size_t out[8];
    /* Given out of order: 0-2, 4-6, 2-4, 6-8 (newest, left out). */
    struct tsdb__block_meta m[4] = {meta_at(0, 2 * H), meta_at(4 * H, 6 * H), meta_at(2 * H, 4 * H),
                                    meta_at(6 * H, 8 * H)};
    size_t n = tsdb__block_plan(m, 4, r, 3, out);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 2);
    assert_int_equal(out[2], 1);
    /* Only 0-2 and 2-4 with the newest 4-6: the 6h window is incomplete and nothing newer. */
    struct tsdb__block_meta m2[3] = {meta_at(0, 2 * H), meta_at(2 * H, 4 * H),
                                     meta_at(4 * H, 6 * H)};
    assert_int_equal(tsdb__block_plan(m2, 3, r, 3, out), 0);
    /* With a block beyond the window, the incomplete window is compacted. */
    struct tsdb__block_meta m3[3] = {meta_at(0, 2 * H), meta_at(2 * H, 4 * H),
                                     meta_at(8 * H, 10 * H)};
    n = tsdb__block_plan(m3, 3, r, 3, out);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    /* A lone block per window: nothing. */
    struct tsdb__block_meta m4[2] = {meta_at(0, 2 * H), meta_at(6 * H, 8 * H)};
    assert_int_equal(tsdb__block_plan(m4, 2, r, 3, out), 0);
    assert_int_equal(tsdb__block_plan(m4, 0, r, 3, out), 0);
}

static void plan_prefers_overlapping_blocks(void **state)
{
    (void)state;
    int64_t r[3] = {2 * H, 6 * H, 18 * H};
    size_t out[8];
    struct tsdb__block_meta m[5] = {meta_at(0, 2 * H), meta_at(2 * H, 4 * H), meta_at(4 * H, 6 * H),
                                    meta_at(5 * H, 7 * H), meta_at(10 * H, 12 * H)};
    size_t n = tsdb__block_plan(m, 5, r, 3, out);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 2);
    assert_int_equal(out[1], 3);
}

static void plan_merges_6h_blocks_into_18h_and_rewrites_heavily_deleted_blocks(void **state)
{
    (void)state;
    int64_t r[3] = {2 * H, 6 * H, 18 * H};
    size_t out[8];
    struct tsdb__block_meta m[4] = {meta_at(0, 6 * H), meta_at(6 * H, 12 * H),
                                    meta_at(12 * H, 18 * H), meta_at(18 * H, 20 * H)};
    size_t n = tsdb__block_plan(m, 4, r, 3, out);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[2], 2);
    struct tsdb__block_meta m2[2] = {meta_at(0, 18 * H), meta_at(18 * H, 20 * H)};
    assert_int_equal(tsdb__block_plan(m2, 2, r, 3, out), 0);
    m2[0].num_tombstones = 6; /* 6 of 100 series */
    n = tsdb__block_plan(m2, 2, r, 3, out);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0);
    m2[0].num_tombstones = 5;
    assert_int_equal(tsdb__block_plan(m2, 2, r, 3, out), 0);
}

static void retention_by_time_deletes_blocks_older_than_the_newest_minus_retention(void **state)
{
    (void)state;
    struct tsdb__block_meta m[4] = {meta_at(0, 2 * H), meta_at(2 * H, 4 * H), meta_at(4 * H, 6 * H),
                                    meta_at(6 * H, 8 * H)};
    bool del[4];
    assert_int_equal(tsdb__block_retention(m, 4, 4 * H, 0, 0, del), 2);
    assert_true(del[0] && del[1] && !del[2] && !del[3]);
    assert_int_equal(tsdb__block_retention(m, 4, 100 * H, 0, 0, del), 0);
    assert_int_equal(tsdb__block_retention(m, 4, 0, 0, 0, del), 0);
}

static void retention_by_size_deletes_the_oldest_blocks_past_the_limit(void **state)
{
    (void)state;
    struct tsdb__block_meta m[4] = {meta_at(4 * H, 6 * H), meta_at(0, 2 * H), meta_at(6 * H, 8 * H),
                                    meta_at(2 * H, 4 * H)};
    for (int i = 0; i < 4; i++)
        m[i].size_bytes = 100;
    bool del[4];
    /* 50 bytes of head + WAL, limit 260: newest two fit (250), the third makes 350. */
    assert_int_equal(tsdb__block_retention(m, 4, 0, 260, 50, del), 2);
    assert_true(!del[0] && del[1] && !del[2] && del[3]);
    assert_int_equal(tsdb__block_retention(m, 4, 0, 1000, 50, del), 0);
    /* Head alone over the limit: every block goes. */
    assert_int_equal(tsdb__block_retention(m, 4, 0, 10, 50, del), 4);
    /* Time and size together. */
    assert_int_equal(tsdb__block_retention(m, 4, 5 * H, 250, 0, del), 2);
    assert_true(!del[0] && del[1] && !del[2] && del[3]);
}

static void deleted_blocks_leave_nothing_behind(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("compact");
    static struct tseries s[1];
    s[0] = (struct tseries){"m", "x", 1, {0}, {{0}}};
    s[0].n_t[0] = span(s[0].t[0], 0, 50, 10);
    struct tsdb__block *b = make_block(dir, s, 1);
    char ulid[27];
    memcpy(ulid, tsdb__block_meta_of(b)->ulid, sizeof(ulid));
    tsdb__block_close(b);
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_delete(dir, ulid, &err), HS_OK);
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 0);
    assert_int_equal(tsdb__block_delete(dir, ulid, &err), HS_ENOTFOUND);
    assert_int_equal(tsdb__block_delete(dir, "../etc", &err), HS_EINVAL);
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compacting_three_blocks_gives_the_union_of_their_series),
        cmocka_unit_test(overlapping_blocks_go_through_the_merge_callback),
        cmocka_unit_test(tombstones_are_applied_during_compaction),
        cmocka_unit_test(compaction_fails_cleanly_when_any_allocation_fails),
        cmocka_unit_test(ranges_grow_by_three_up_to_a_tenth_of_retention),
        cmocka_unit_test(plan_merges_three_2h_blocks_into_a_6h_window),
        cmocka_unit_test(plan_prefers_overlapping_blocks),
        cmocka_unit_test(plan_merges_6h_blocks_into_18h_and_rewrites_heavily_deleted_blocks),
        cmocka_unit_test(retention_by_time_deletes_blocks_older_than_the_newest_minus_retention),
        cmocka_unit_test(retention_by_size_deletes_the_oldest_blocks_past_the_limit),
        cmocka_unit_test(deleted_blocks_leave_nothing_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
