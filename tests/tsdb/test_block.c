/*
 * test_block.c - block writer and reader: round trips of generated series,
 * every lookup, damaged files of every kind, quarantine, leftovers of
 * interrupted writes, tombstones, allocation failures, concurrent readers.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb/block.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- generated data ------------------------------------------------------ */

struct gseries {
    struct hs_labels ls;
    struct hs_label lv[4];
    char names[4][16], values[4][24];
    struct tsdb__chunk_meta c[5];
    uint8_t data[5][200];
    size_t n;
};

struct gen {
    struct gseries *s;
    size_t n;
    size_t pos;  /* next series the writer gets */
    int fail_at; /* series index at which the source fails; -1 = never */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Compares through the struct's own arrays: qsort moves structs, so ls.v may be stale. */
static int cmp_gseries(const void *a, const void *b)
{
    const struct gseries *x = a, *y = b;
    struct hs_label lx[4], ly[4];
    for (size_t i = 0; i < x->ls.n; i++)
        lx[i] = (struct hs_label){x->names[i], x->values[i]};
    for (size_t i = 0; i < y->ls.n; i++)
        ly[i] = (struct hs_label){y->names[i], y->values[i]};
    struct hs_labels sx = {x->ls.n, lx}, sy = {y->ls.n, ly};
    return hs_labels_cmp(&sx, &sy);
}

static void fix_pointers(struct gseries *s)
{
    s->ls.v = s->lv;
    for (size_t i = 0; i < s->ls.n; i++) {
        s->lv[i].name = s->names[i];
        s->lv[i].value = s->values[i];
    }
    for (size_t i = 0; i < s->n; i++)
        s->c[i].data = s->data[i];
}

/* n series with random labels (unique, sorted) and 1..5 chunks each. */
static struct gen *gen_new(size_t n, int64_t t0)
{
    static const char *metrics[] = {"up", "vllm:num_requests_running", "gpu_util", "http_total"};
    struct gen *g = calloc(1, sizeof(*g));
    g->s = calloc(n, sizeof(*g->s));
    g->fail_at = -1;
    for (size_t i = 0; i < n; i++) {
        struct gseries *s = &g->s[g->n];
        snprintf(s->names[0], 16, "__name__");
        snprintf(s->values[0], 24, "%s", metrics[rnd() % 4]);
        snprintf(s->names[1], 16, "instance");
        snprintf(s->values[1], 24, "host-%u:9100", (unsigned)(rnd() % 50));
        snprintf(s->names[2], 16, "job");
        snprintf(s->values[2], 24, "job%u", (unsigned)(rnd() % 3));
        s->ls.n = 3;
        if (rnd() % 2) {
            snprintf(s->names[3], 16, "zone");
            snprintf(s->values[3], 24, "z%u", (unsigned)(rnd() % 4));
            s->ls.n = 4;
        }
        s->n = 1 + rnd() % 5;
        int64_t t = t0 + (int64_t)(rnd() % 100);
        for (size_t k = 0; k < s->n; k++) {
            s->c[k].mint = t;
            s->c[k].maxt = t + (int64_t)(rnd() % 1000);
            t = s->c[k].maxt + 1 + (int64_t)(rnd() % 10);
            s->c[k].num_samples = 1 + (uint32_t)(rnd() % 120);
            s->c[k].encoding = (uint8_t)(1 + rnd() % 3);
            s->c[k].len = 1 + (uint32_t)(rnd() % 200);
            for (uint32_t b = 0; b < s->c[k].len; b++)
                s->data[k][b] = (uint8_t)rnd();
        }
        fix_pointers(s);
        g->n++;
    }
    qsort(g->s, g->n, sizeof(*g->s), cmp_gseries);
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (k > 0 && cmp_gseries(&g->s[k - 1], &g->s[i]) == 0)
            continue;
        if (k != i)
            g->s[k] = g->s[i];
        fix_pointers(&g->s[k]);
        k++;
    }
    g->n = k;
    return g;
}

static void gen_free(struct gen *g)
{
    free(g->s);
    free(g);
}

static int gen_next(void *ctx, const struct hs_labels **ls, const struct tsdb__chunk_meta **c,
                    size_t *n, struct hs_err *err)
{
    struct gen *g = ctx;
    if (g->fail_at >= 0 && g->pos == (size_t)g->fail_at)
        return hs_err_set(err, HS_EIO, "source failed");
    if (g->pos == g->n)
        return 0;
    struct gseries *s = &g->s[g->pos++];
    *ls = &s->ls;
    *c = s->c;
    *n = s->n;
    return 1;
}

static char *write_block(const char *dir, struct gen *g, uint64_t seg_max,
                         struct tsdb__block_meta *meta)
{
    struct tsdb__block_write_opts o = {.segment_max_bytes = seg_max};
    struct hs_err err = {0};
    g->pos = 0;
    int rc = tsdb__block_write(dir, &o, gen_next, g, meta, &err);
    if (rc != HS_OK)
        fail_msg("write: %s", err.msg);
    char *p = malloc(strlen(dir) + TSDB__ULID_LEN + 2);
    snprintf(p, strlen(dir) + TSDB__ULID_LEN + 2, "%s/%s", dir, meta->ulid);
    return p;
}

static size_t count_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

/* ---- checks --------------------------------------------------------------- */

static void check_series_equal(struct tsdb__block *b, struct gen *g)
{
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_series_count(b), g->n);
    for (size_t i = 0; i < g->n; i++) {
        struct hs_labels ls;
        struct tsdb__chunk_meta *cm;
        size_t n;
        assert_int_equal(tsdb__block_series(b, i, &a, &ls, &cm, &n, &err), HS_OK);
        assert_int_equal(hs_labels_cmp(&ls, &g->s[i].ls), 0);
        assert_int_equal(n, g->s[i].n);
        for (size_t k = 0; k < n; k++) {
            const struct tsdb__chunk_meta *w = &g->s[i].c[k];
            assert_int_equal(cm[k].mint, w->mint);
            assert_int_equal(cm[k].maxt, w->maxt);
            assert_int_equal(cm[k].num_samples, w->num_samples);
            assert_int_equal(cm[k].encoding, w->encoding);
            assert_null(cm[k].data);
            assert_int_equal(tsdb__block_chunk(b, &cm[k], &err), HS_OK);
            assert_int_equal(cm[k].len, w->len);
            assert_int_equal(cm[k].encoding, w->encoding);
            assert_memory_equal(cm[k].data, w->data, w->len);
        }
        hs_arena_reset(&a);
    }
    assert_int_equal(tsdb__block_series(b, g->n, &a, NULL, NULL, NULL, &err), HS_ENOTFOUND);
    hs_arena_cleanup(&a);
}

static bool has_label(const struct gseries *s, const char *name, const char *value)
{
    const char *v = hs_labels_get(&s->ls, name);
    return v != NULL && (value == NULL || strcmp(v, value) == 0);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_postings_sorted(const struct tsdb__block_postings *p)
{
    for (size_t i = 1; i < p->n; i++)
        assert_true(p->refs[i - 1] < p->refs[i]);
}

static void check_label_lookups(struct tsdb__block *b, struct gen *g)
{
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct hs_err err = {0};
    const char **names;
    size_t nn;
    assert_int_equal(tsdb__block_label_names(b, &a, &names, &nn, &err), HS_OK);
    bool any_zone = false;
    for (size_t i = 0; i < g->n; i++)
        any_zone |= has_label(&g->s[i], "zone", NULL);
    assert_int_equal(nn, any_zone ? 4 : 3);
    assert_string_equal(names[0], "__name__");
    assert_string_equal(names[1], "instance");
    assert_string_equal(names[2], "job");
    for (size_t ni = 0; ni < nn; ni++) {
        const char **vals;
        size_t nvals;
        assert_int_equal(tsdb__block_label_values(b, names[ni], &a, &vals, &nvals, &err), HS_OK);
        /* expected: sorted distinct values of this name */
        const char **exp = calloc(g->n + 1, sizeof(*exp));
        size_t ne = 0;
        for (size_t i = 0; i < g->n; i++) {
            const char *v = hs_labels_get(&g->s[i].ls, names[ni]);
            if (v != NULL)
                exp[ne++] = v;
        }
        qsort(exp, ne, sizeof(*exp), cmp_cstr);
        size_t u = 0;
        for (size_t i = 0; i < ne; i++)
            if (u == 0 || strcmp(exp[u - 1], exp[i]) != 0)
                exp[u++] = exp[i];
        assert_int_equal(nvals, u);
        for (size_t i = 0; i < u; i++) {
            assert_string_equal(vals[i], exp[i]);
            struct tsdb__block_postings p;
            assert_int_equal(tsdb__block_postings_get(b, names[ni], vals[i], &p, &err), HS_OK);
            check_postings_sorted(&p);
            size_t k = 0;
            for (size_t s = 0; s < g->n; s++) {
                if (!has_label(&g->s[s], names[ni], vals[i]))
                    continue;
                assert_true(k < p.n);
                assert_int_equal(p.refs[k], s);
                k++;
            }
            assert_int_equal(k, p.n);
            tsdb__block_postings_cleanup(&p);
        }
        free(exp);
    }
    const char **none;
    size_t nnone = 9;
    assert_int_equal(tsdb__block_label_values(b, "nope", &a, &none, &nnone, &err), HS_OK);
    assert_int_equal(nnone, 0);
    struct tsdb__block_postings p;
    assert_int_equal(tsdb__block_postings_get(b, "job", "nope", &p, &err), HS_OK);
    assert_int_equal(p.n, 0);
    tsdb__block_postings_cleanup(&p);
    hs_arena_cleanup(&a);
}

static bool value_has_1(void *ctx, const char *v)
{
    (void)ctx;
    return strchr(v, '1') != NULL;
}

static void check_matching(struct tsdb__block *b, struct gen *g)
{
    struct hs_err err = {0};
    struct tsdb__block_postings p, all;
    assert_int_equal(tsdb__block_postings_matching(b, "instance", value_has_1, NULL, &p, &err),
                     HS_OK);
    check_postings_sorted(&p);
    size_t k = 0;
    for (size_t s = 0; s < g->n; s++) {
        if (strchr(hs_labels_get(&g->s[s].ls, "instance"), '1') == NULL)
            continue;
        assert_true(k < p.n);
        assert_int_equal(p.refs[k++], s);
    }
    assert_int_equal(k, p.n);
    assert_int_equal(tsdb__block_postings_all(b, &all, &err), HS_OK);
    assert_int_equal(all.n, g->n);
    struct tsdb__block_postings rest, both, u;
    assert_int_equal(tsdb__block_postings_subtract(&all, &p, &rest), HS_OK);
    assert_int_equal(rest.n + p.n, all.n);
    assert_int_equal(tsdb__block_postings_intersect(&rest, &p, &both), HS_OK);
    assert_int_equal(both.n, 0);
    assert_int_equal(tsdb__block_postings_union(&rest, &p, &u), HS_OK);
    assert_int_equal(u.n, all.n);
    assert_memory_equal(u.refs, all.refs, all.n * sizeof(*all.refs));
    tsdb__block_postings_cleanup(&p);
    tsdb__block_postings_cleanup(&all);
    tsdb__block_postings_cleanup(&rest);
    tsdb__block_postings_cleanup(&both);
    tsdb__block_postings_cleanup(&u);
}

/* ---- tests ------------------------------------------------------------------ */

static void block_round_trip_returns_exactly_what_was_written(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(300, 1000);
    struct tsdb__block_meta meta;
    char *bdir = write_block(dir, g, 0, &meta);
    struct tsdb__block *b;
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_OK);
    const struct tsdb__block_meta *m = tsdb__block_meta_of(b);
    uint64_t chunks = 0, samples = 0;
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    for (size_t i = 0; i < g->n; i++) {
        chunks += g->s[i].n;
        for (size_t k = 0; k < g->s[i].n; k++) {
            samples += g->s[i].c[k].num_samples;
            mint = HS_MIN(mint, g->s[i].c[k].mint);
            maxt = HS_MAX(maxt, g->s[i].c[k].maxt);
        }
    }
    assert_string_equal(m->ulid, meta.ulid);
    assert_int_equal(m->num_series, g->n);
    assert_int_equal(m->num_chunks, chunks);
    assert_int_equal(m->num_samples, samples);
    assert_int_equal(m->min_time, mint);
    assert_int_equal(m->max_time, maxt + 1);
    assert_int_equal(m->level, 1);
    assert_int_equal(m->n_sources, 1);
    assert_string_equal(m->sources[0], m->ulid);
    check_series_equal(b, g);
    check_label_lookups(b, g);
    check_matching(b, g);
    tsdb__block_close(b);
    tsdb__block_meta_cleanup(&meta);
    gen_free(g);
    free(bdir);
    hs_test_rmdir(dir);
    free(dir);
}

static void block_spreads_chunks_over_several_segments(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(200, 0);
    struct tsdb__block_meta meta;
    char *bdir = write_block(dir, g, 4096, &meta);
    char seg[4200];
    snprintf(seg, sizeof(seg), "%s/chunks/000005", bdir);
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    assert_true(st.st_size <= 4096 + 300);
    struct tsdb__block *b;
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_OK);
    check_series_equal(b, g);
    tsdb__block_close(b);
    tsdb__block_meta_cleanup(&meta);
    gen_free(g);
    free(bdir);
    hs_test_rmdir(dir);
    free(dir);
}

static void chunk_times_at_the_ends_of_int64_round_trip(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(3, 0);
    struct gseries *s = &g->s[1];
    s->n = 3;
    s->c[0].mint = INT64_MIN;
    s->c[0].maxt = INT64_MIN + 5;
    s->c[1].mint = -1;
    s->c[1].maxt = 1;
    s->c[2].mint = INT64_MIN + 7;
    s->c[2].maxt = INT64_MAX - 1;
    g->s[0].c[0].mint = INT64_MAX - 3; /* base time of the section */
    g->s[0].c[0].maxt = INT64_MAX - 2;
    g->s[0].n = 1;
    struct tsdb__block_meta meta;
    char *bdir = write_block(dir, g, 0, &meta);
    assert_int_equal(meta.min_time, INT64_MIN);
    assert_int_equal(meta.max_time, INT64_MAX);
    struct tsdb__block *b;
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_OK);
    check_series_equal(b, g);
    tsdb__block_close(b);
    tsdb__block_meta_cleanup(&meta);
    gen_free(g);
    free(bdir);
    hs_test_rmdir(dir);
    free(dir);
}

static void ulids_are_26_crockford_characters_that_carry_the_time(void **state)
{
    (void)state;
    char a[27], b[27];
    assert_int_equal(tsdb__block_ulid_new(1700000000123, a, NULL), HS_OK);
    assert_int_equal(tsdb__block_ulid_new(1700000000123, b, NULL), HS_OK);
    assert_int_equal(strlen(a), 26);
    assert_true(tsdb__block_ulid_valid(a));
    assert_string_not_equal(a, b);
    assert_memory_equal(a, b, 10);
    assert_int_equal(tsdb__block_ulid_time(a), 1700000000123);
    assert_false(tsdb__block_ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAU")); /* U is not Crockford */
    assert_false(tsdb__block_ulid_valid("81ARZ3NDEKTSV4RRFFQ69G5FAV")); /* over 128 bits */
    assert_false(tsdb__block_ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FA"));
    assert_true(tsdb__block_ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    char c[27];
    assert_int_equal(tsdb__block_ulid_new(1700000000124, c, NULL), HS_OK);
    assert_true(strcmp(a, c) < 0);
}

static void writer_rejects_series_out_of_label_order_and_leaves_nothing(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(20, 0);
    struct gseries tmp = g->s[3];
    g->s[3] = g->s[4];
    g->s[4] = tmp;
    fix_pointers(&g->s[3]);
    fix_pointers(&g->s[4]);
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_write(dir, NULL, gen_next, g, NULL, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "order"));
    assert_int_equal(count_entries(dir), 0);
    tmp = g->s[3];
    g->s[3] = g->s[4];
    g->s[4] = tmp;
    fix_pointers(&g->s[3]);
    fix_pointers(&g->s[4]);
    g->pos = 0;
    g->fail_at = 7;
    assert_int_equal(tsdb__block_write(dir, NULL, gen_next, g, NULL, &err), HS_EIO);
    assert_string_equal(err.msg, "source failed");
    assert_int_equal(count_entries(dir), 0);
    g->pos = 0;
    g->fail_at = -1;
    struct tsdb__block_write_opts o = {.has_range = true, .min_time = 0, .max_time = 500};
    assert_int_equal(tsdb__block_write(dir, &o, gen_next, g, NULL, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "outside the block range"));
    assert_int_equal(count_entries(dir), 0);
    g->pos = 0;
    g->n = 0;
    assert_int_equal(tsdb__block_write(dir, NULL, gen_next, g, NULL, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(count_entries(dir), 0);
    gen_free(g);
    hs_test_rmdir(dir);
    free(dir);
}

/* ---- damage ---------------------------------------------------------------- */

static void flip_byte(const char *path, size_t off)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    int c = fgetc(f);
    assert_true(c != EOF);
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void expect_corrupt(const char *bdir, const char *file_part)
{
    struct tsdb__block *b = NULL;
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_ECORRUPT);
    assert_null(b);
    if (strstr(err.msg, file_part) == NULL)
        fail_msg("message \"%s\" does not name %s", err.msg, file_part);
}

struct saved {
    char *data;
    size_t len;
};

static struct saved save(const char *path)
{
    struct saved s;
    s.data = hs_read_file(path, 0, &s.len, NULL);
    assert_non_null(s.data);
    return s;
}

static void restore(const char *path, struct saved *s)
{
    assert_int_equal(hs_write_file_atomic(path, s->data, s->len, NULL), HS_OK);
}

static void opening_a_damaged_index_fails_naming_the_file_and_offset(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(50, 0);
    struct tsdb__block_meta meta;
    char *bdir = write_block(dir, g, 0, &meta);
    char index[4200];
    snprintf(index, sizeof(index), "%s/index", bdir);
    struct saved orig = save(index);
    const uint8_t *p = (const uint8_t *)orig.data;
    size_t toc = orig.len - 68;
    /* One flipped byte in the middle of each section, then in the TOC and header. */
    for (int s = 0; s < 4; s++) {
        uint64_t off = tsdb__block_get_be64(p + toc + 16 * (size_t)s);
        uint64_t len = tsdb__block_get_be64(p + toc + 16 * (size_t)s + 8);
        assert_true(len > 0);
        flip_byte(index, (size_t)(off + len / 2));
        expect_corrupt(bdir, "/index");
        restore(index, &orig);
        flip_byte(index, (size_t)(off + len + 1)); /* the section's CRC */
        expect_corrupt(bdir, "/index");
        restore(index, &orig);
    }
    flip_byte(index, toc + 3);
    expect_corrupt(bdir, "/index");
    restore(index, &orig);
    flip_byte(index, 1);
    struct hs_err err = {0};
    struct tsdb__block *b;
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_ECORRUPT);
    assert_non_null(strstr(err.msg, "at offset 0"));
    restore(index, &orig);
    /* truncated, then empty */
    assert_int_equal(truncate(index, (off_t)(orig.len - 10)), 0);
    expect_corrupt(bdir, "/index");
    assert_int_equal(truncate(index, 0), 0);
    expect_corrupt(bdir, "/index");
    restore(index, &orig);
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_OK);
    tsdb__block_close(b);
    hs_free(orig.data);
    tsdb__block_meta_cleanup(&meta);
    gen_free(g);
    free(bdir);
    hs_test_rmdir(dir);
    free(dir);
}

static void damaged_chunks_meta_and_tombstones_are_reported_as_corrupt(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(50, 0);
    struct tsdb__block_meta meta;
    char *bdir = write_block(dir, g, 0, &meta);
    char seg[4200], mpath[4200], tpath[4200];
    snprintf(seg, sizeof(seg), "%s/chunks/000001", bdir);
    snprintf(mpath, sizeof(mpath), "%s/meta.json", bdir);
    snprintf(tpath, sizeof(tpath), "%s/tombstones", bdir);
    struct saved sg = save(seg), sm = save(mpath);
    struct hs_err err = {0};
    /* A flipped data byte of the first chunk: open succeeds, reading it fails. */
    flip_byte(seg, 8 + 2 + 3);
    struct tsdb__block *b;
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_OK);
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct tsdb__chunk_meta *cm;
    size_t n;
    assert_int_equal(tsdb__block_series(b, 0, &a, NULL, &cm, &n, &err), HS_OK);
    assert_int_equal(tsdb__block_chunk(b, &cm[0], &err), HS_ECORRUPT);
    assert_non_null(strstr(err.msg, "chunks/000001"));
    assert_non_null(strstr(err.msg, "at offset 8"));
    assert_int_equal(err.pos, 8);
    tsdb__block_close(b);
    hs_arena_cleanup(&a);
    restore(seg, &sg);
    /* Truncated segment: chunk records no longer fit. */
    assert_int_equal(truncate(seg, (off_t)(sg.len - 3)), 0);
    expect_corrupt(bdir, "chunks/000001");
    assert_int_equal(truncate(seg, 4), 0);
    expect_corrupt(bdir, "chunks/000001");
    restore(seg, &sg);
    /* Missing segment. */
    assert_int_equal(unlink(seg), 0);
    expect_corrupt(bdir, "/index");
    restore(seg, &sg);
    /* meta.json damage. */
    assert_int_equal(hs_write_file_atomic(mpath, "{\"ulid\": 3", 10, NULL), HS_OK);
    expect_corrupt(bdir, "meta.json");
    assert_int_equal(hs_write_file_atomic(mpath, "", 0, NULL), HS_OK);
    expect_corrupt(bdir, "meta.json");
    assert_int_equal(unlink(mpath), 0);
    expect_corrupt(bdir, "meta.json");
    restore(mpath, &sm);
    /* Tombstones: written, read back, then damaged. */
    struct tsdb__block_tombstone t[2] = {{3, 10, 20}, {1, -5, 100}};
    assert_int_equal(tsdb__block_tombstones_write(bdir, t, 2, &err), HS_OK);
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_OK);
    size_t nt;
    const struct tsdb__block_tombstone *rt = tsdb__block_tombstones(b, &nt);
    assert_int_equal(nt, 2);
    assert_int_equal(rt[0].series_ref, 1);
    assert_int_equal(rt[0].mint, -5);
    assert_int_equal(rt[1].series_ref, 3);
    assert_int_equal(rt[1].maxt, 20);
    assert_int_equal(tsdb__block_meta_of(b)->num_tombstones, 2);
    tsdb__block_close(b);
    flip_byte(tpath, 10);
    expect_corrupt(bdir, "tombstones");
    struct tsdb__block_tombstone bad = {g->n, 0, 1};
    assert_int_equal(tsdb__block_tombstones_write(bdir, &bad, 1, &err), HS_EINVAL);
    assert_int_equal(tsdb__block_tombstones_write(bdir, NULL, 0, &err), HS_OK);
    assert_int_equal(access(tpath, F_OK), -1);
    assert_int_equal(tsdb__block_open(bdir, &b, &err), HS_OK);
    tsdb__block_close(b);
    hs_free(sg.data);
    hs_free(sm.data);
    tsdb__block_meta_cleanup(&meta);
    gen_free(g);
    free(bdir);
    hs_test_rmdir(dir);
    free(dir);
}

static void a_damaged_block_is_quarantined_and_later_scans_skip_it(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(30, 0);
    struct tsdb__block_meta m1, m2;
    char *b1 = write_block(dir, g, 0, &m1);
    g->pos = 0;
    for (size_t i = 0; i < g->n; i++)
        for (size_t k = 0; k < g->s[i].n; k++) {
            g->s[i].c[k].mint += 100000;
            g->s[i].c[k].maxt += 100000;
        }
    char *b2 = write_block(dir, g, 0, &m2);
    char index[4200];
    snprintf(index, sizeof(index), "%s/index", b2);
    flip_byte(index, 20);
    struct tsdb__block *b;
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_open_or_quarantine(dir, m2.ulid, &b, &err), HS_ECORRUPT);
    assert_null(b);
    assert_non_null(strstr(err.msg, "/index"));
    assert_int_equal(tsdb__block_open_or_quarantine(dir, m1.ulid, &b, &err), HS_OK);
    tsdb__block_close(b);
    char q[4200];
    snprintf(q, sizeof(q), "%s.corrupt", b2);
    struct stat st;
    assert_int_equal(stat(q, &st), 0);
    assert_int_equal(stat(b2, &st), -1);
    struct tsdb__block_meta *metas;
    size_t n, nq;
    assert_int_equal(tsdb__block_scan_dir(dir, &metas, &n, &nq, &err), HS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(nq, 0);
    assert_string_equal(metas[0].ulid, m1.ulid);
    assert_true(metas[0].size_bytes > 0);
    tsdb__block_metas_free(metas, n);
    assert_int_equal(tsdb__block_quarantine(dir, m2.ulid, &err), HS_ENOTFOUND);
    tsdb__block_meta_cleanup(&m1);
    tsdb__block_meta_cleanup(&m2);
    gen_free(g);
    free(b1);
    free(b2);
    hs_test_rmdir(dir);
    free(dir);
}

static void scan_removes_unfinished_and_half_deleted_blocks(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(10, 0);
    struct tsdb__block_meta m1;
    char *b1 = write_block(dir, g, 0, &m1);
    char p[4200];
    /* An interrupted write: a whole block left under <ULID>.tmp. */
    char ulid[27];
    assert_int_equal(tsdb__block_ulid_new(5, ulid, NULL), HS_OK);
    snprintf(p, sizeof(p), "cp -r %s %s/%s.tmp", b1, dir, ulid);
    assert_int_equal(system(p), 0);
    assert_int_equal(tsdb__block_ulid_new(6, ulid, NULL), HS_OK);
    snprintf(p, sizeof(p), "cp -r %s %s/%s.deleted", b1, dir, ulid);
    assert_int_equal(system(p), 0);
    /* A block whose meta.json is damaged, and one whose meta names another block. */
    assert_int_equal(tsdb__block_ulid_new(7, ulid, NULL), HS_OK);
    snprintf(p, sizeof(p), "cp -r %s %s/%s", b1, dir, ulid);
    assert_int_equal(system(p), 0);
    snprintf(p, sizeof(p), "%s/%s/meta.json", dir, ulid);
    assert_int_equal(hs_write_file_atomic(p, "[]", 2, NULL), HS_OK);
    assert_int_equal(tsdb__block_ulid_new(8, ulid, NULL), HS_OK);
    snprintf(p, sizeof(p), "cp -r %s %s/%s", b1, dir, ulid);
    assert_int_equal(system(p), 0);
    /* Unrelated files are left alone. */
    snprintf(p, sizeof(p), "%s/wal", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(count_entries(dir), 6);
    struct tsdb__block_meta *metas;
    size_t n, nq;
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_scan_dir(dir, &metas, &n, &nq, &err), HS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(nq, 2);
    assert_string_equal(metas[0].ulid, m1.ulid);
    tsdb__block_metas_free(metas, n);
    assert_int_equal(count_entries(dir), 4); /* block, wal, two .corrupt */
    assert_int_equal(tsdb__block_delete(dir, m1.ulid, &err), HS_OK);
    assert_int_equal(count_entries(dir), 3);
    assert_int_equal(tsdb__block_scan_dir(dir, &metas, &n, &nq, &err), HS_OK);
    assert_int_equal(n, 0);
    tsdb__block_metas_free(metas, n);
    tsdb__block_meta_cleanup(&m1);
    gen_free(g);
    free(b1);
    hs_test_rmdir(dir);
    free(dir);
}

static int dying_next(void *ctx, const struct hs_labels **ls, const struct tsdb__chunk_meta **c,
                      size_t *n, struct hs_err *err)
{
    struct gen *g = ctx;
    if (g->pos == 10)
        _exit(0); /* the process dies in the middle of writing the block */
    return gen_next(ctx, ls, c, n, err);
}

static void a_write_killed_midway_leaves_a_tmp_dir_that_the_next_scan_removes(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(30, 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        HS_IGNORE_RESULT(tsdb__block_write(dir, NULL, dying_next, g, NULL, NULL));
        _exit(1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    DIR *d = opendir(dir);
    struct dirent *e;
    int tmp = 0;
    while ((e = readdir(d)) != NULL)
        tmp += hs_has_suffix(e->d_name, ".tmp");
    closedir(d);
    assert_int_equal(tmp, 1);
    assert_int_equal(count_entries(dir), 1);
    struct tsdb__block_meta *metas;
    size_t n, nq;
    struct hs_err err = {0};
    assert_int_equal(tsdb__block_scan_dir(dir, &metas, &n, &nq, &err), HS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(nq, 0);
    tsdb__block_metas_free(metas, n);
    assert_int_equal(count_entries(dir), 0);
    gen_free(g);
    hs_test_rmdir(dir);
    free(dir);
}

static void write_and_open_fail_cleanly_when_any_allocation_fails(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(20, 0);
    bool done = false;
    for (long i = 0; !done && i < 100000; i++) {
        struct hs_err err = {0};
        struct tsdb__block_meta meta = {0};
        g->pos = 0;
        hs_alloc_fail_after(i);
        int rc = tsdb__block_write(dir, NULL, gen_next, g, &meta, &err);
        hs_alloc_fail_after(-1);
        if (rc != HS_OK) {
            assert_int_equal(rc, HS_ENOMEM);
            assert_int_equal(count_entries(dir), 0);
            continue;
        }
        char bdir[4200];
        snprintf(bdir, sizeof(bdir), "%s/%s", dir, meta.ulid);
        for (long j = 0;; j++) {
            struct tsdb__block *b = NULL;
            hs_alloc_fail_after(j);
            rc = tsdb__block_open(bdir, &b, &err);
            hs_alloc_fail_after(-1);
            if (rc == HS_OK) {
                check_series_equal(b, g);
                tsdb__block_close(b);
                break;
            }
            assert_int_equal(rc, HS_ENOMEM);
            assert_null(b);
        }
        assert_int_equal(tsdb__block_delete(dir, meta.ulid, &err), HS_OK);
        tsdb__block_meta_cleanup(&meta);
        done = true;
    }
    assert_true(done);
    gen_free(g);
    hs_test_rmdir(dir);
    free(dir);
}

struct reader_arg {
    struct tsdb__block *b;
    struct gen *g;
    int bad;
};

static void *reader_main(void *p)
{
    struct reader_arg *r = p;
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < r->g->n; i++) {
            struct hs_labels ls;
            struct tsdb__chunk_meta *cm;
            size_t n;
            if (tsdb__block_series(r->b, i, &a, &ls, &cm, &n, NULL) != HS_OK ||
                hs_labels_cmp(&ls, &r->g->s[i].ls) != 0 || n != r->g->s[i].n) {
                r->bad++;
                continue;
            }
            for (size_t k = 0; k < n; k++)
                if (tsdb__block_chunk(r->b, &cm[k], NULL) != HS_OK ||
                    memcmp(cm[k].data, r->g->s[i].data[k], cm[k].len) != 0)
                    r->bad++;
            struct tsdb__block_postings pp;
            if (tsdb__block_postings_get(r->b, "job", hs_labels_get(&ls, "job"), &pp, NULL) !=
                HS_OK)
                r->bad++;
            else
                tsdb__block_postings_cleanup(&pp);
            hs_arena_reset(&a);
        }
    }
    hs_arena_cleanup(&a);
    return NULL;
}

static void concurrent_readers_see_the_same_block(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(100, 0);
    struct tsdb__block_meta meta;
    char *bdir = write_block(dir, g, 0, &meta);
    struct tsdb__block *b;
    assert_int_equal(tsdb__block_open(bdir, &b, NULL), HS_OK);
    pthread_t th[4];
    struct reader_arg ra[4];
    for (int i = 0; i < 4; i++) {
        ra[i] = (struct reader_arg){b, g, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ra[i].bad, 0);
    }
    tsdb__block_close(b);
    tsdb__block_meta_cleanup(&meta);
    gen_free(g);
    free(bdir);
    hs_test_rmdir(dir);
    free(dir);
}

static void index_overhead_per_series_is_printed(void **state)
{
    (void)state;
    /* Not a pass/fail on size beyond a loose ceiling: prints the figure. */
    char *dir = hs_test_tmpdir("block");
    struct gen *g = gen_new(2000, 0);
    struct tsdb__block_meta meta;
    char *bdir = write_block(dir, g, 0, &meta);
    char index[4200];
    snprintf(index, sizeof(index), "%s/index", bdir);
    struct stat st;
    assert_int_equal(stat(index, &st), 0);
    size_t chunks = 0;
    for (size_t i = 0; i < g->n; i++)
        chunks += g->s[i].n;
    printf("index: %lld bytes for %zu series, %zu chunks: %.1f bytes/series\n",
           (long long)st.st_size, g->n, chunks, (double)st.st_size / (double)g->n);
    assert_true((size_t)st.st_size < g->n * 100);
    tsdb__block_meta_cleanup(&meta);
    gen_free(g);
    free(bdir);
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(block_round_trip_returns_exactly_what_was_written),
        cmocka_unit_test(block_spreads_chunks_over_several_segments),
        cmocka_unit_test(chunk_times_at_the_ends_of_int64_round_trip),
        cmocka_unit_test(ulids_are_26_crockford_characters_that_carry_the_time),
        cmocka_unit_test(writer_rejects_series_out_of_label_order_and_leaves_nothing),
        cmocka_unit_test(opening_a_damaged_index_fails_naming_the_file_and_offset),
        cmocka_unit_test(damaged_chunks_meta_and_tombstones_are_reported_as_corrupt),
        cmocka_unit_test(a_damaged_block_is_quarantined_and_later_scans_skip_it),
        cmocka_unit_test(scan_removes_unfinished_and_half_deleted_blocks),
        cmocka_unit_test(a_write_killed_midway_leaves_a_tmp_dir_that_the_next_scan_removes),
        cmocka_unit_test(write_and_open_fail_cleanly_when_any_allocation_fails),
        cmocka_unit_test(concurrent_readers_see_the_same_block),
        cmocka_unit_test(index_overhead_per_series_is_printed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
