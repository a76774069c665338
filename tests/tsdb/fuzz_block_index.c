/*
 * fuzz_block_index.c - random bytes as a block's index file: open and every
 * lookup must return an error or a consistent answer, never crash.
 *
 * The harness writes one small real block once (fixed series and chunk
 * bytes, so chunk references in the seeds land in its segment) and, per
 * input, replaces its index with the input.  When byte 5 (a zero pad byte
 * in real files) is zero, the magic and every CRC the input's table of
 * contents points at are repaired first, so mutations reach the parsers behind the checksums; the
 * series count of meta.json is also matched to the index when that is the only complaint. Setting
 * HS_BLOCK_FUZZ_SEED=<path> copies the real index there (to refresh the seed corpus).
 */
#include "tsdb/block.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char block_dir[4096];

static int src_next(void *ctx, const struct hs_labels **ls, const struct tsdb__chunk_meta **c,
                    size_t *n, struct hs_err *err)
{
    static struct hs_label l[3][2] = {{{"__name__", "up"}, {"job", "a"}},
                                      {{"__name__", "up"}, {"job", "b"}},
                                      {{"__name__", "x"}, {"zone", "z"}}};
    static struct hs_labels sets[3] = {{2, l[0]}, {2, l[1]}, {2, l[2]}};
    static const uint8_t bytes[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    static struct tsdb__chunk_meta cm[2] = {{0, 99, 10, 1, bytes, 20, 0},
                                            {100, 250, 12, 2, bytes + 5, 30, 0}};
    int *pos = ctx;
    (void)err;
    if (*pos == 3)
        return 0;
    *ls = &sets[*pos];
    *c = cm;
    *n = 2;
    (*pos)++;
    return 1;
}

static char tmp_root[64];

static void teardown(void)
{
    HS_IGNORE_RESULT(tsdb__block_remove_all(tmp_root, NULL));
}

static int setup(void)
{
    char tmpl[] = "/tmp/hs-fuzz-block-XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        return -1;
    snprintf(tmp_root, sizeof(tmp_root), "%s", tmpl);
    atexit(teardown);
    struct tsdb__block_meta meta;
    int pos = 0;
    struct tsdb__block_write_opts o = {.now_ms = 1};
    if (tsdb__block_write(tmpl, &o, src_next, &pos, &meta, NULL) != HS_OK)
        return -1;
    snprintf(block_dir, sizeof(block_dir), "%s/%s", tmpl, meta.ulid);
    tsdb__block_meta_cleanup(&meta);
    const char *seed = getenv("HS_BLOCK_FUZZ_SEED");
    if (seed != NULL) {
        char p[4200];
        size_t len;
        snprintf(p, sizeof(p), "%s/index", block_dir);
        char *idx = hs_read_file(p, 0, &len, NULL);
        if (idx == NULL || hs_write_file_atomic(seed, idx, len, NULL) != HS_OK)
            return -1;
        hs_free(idx);
    }
    return 0;
}

static void repair(uint8_t *p, size_t n)
{
    if (n < 76)
        return;
    tsdb__block_put_be32(p, 0x48534958u);
    p[4] = TSDB__BLOCK_VERSION;
    size_t toc = n - 68;
    for (int s = 0; s < 4; s++) {
        uint64_t off = tsdb__block_get_be64(p + toc + 16 * s);
        uint64_t len = tsdb__block_get_be64(p + toc + 16 * s + 8);
        if (off <= toc && len <= toc && off + len + 4 <= toc)
            tsdb__block_put_be32(p + off + len, hs_crc32c(0, p + off, (size_t)len));
    }
    tsdb__block_put_be32(p + toc + 64, hs_crc32c(0, p + toc, 64));
}

/* Returns true when meta.json was rewritten (worth opening again). */
static bool fix_series_count(const char *msg)
{
    const char *s = strstr(msg, "index holds ");
    if (s == NULL)
        return false;
    unsigned long long n = strtoull(s + 12, NULL, 10);
    struct tsdb__block_meta m;
    if (tsdb__block_meta_read(block_dir, &m, NULL) != HS_OK)
        return false;
    m.num_series = n;
    if (tsdb__block_meta_write(block_dir, &m, NULL) != HS_OK)
        abort();
    tsdb__block_meta_cleanup(&m);
    return true;
}

static bool accept_all(void *ctx, const char *v)
{
    (void)v;
    return ctx == NULL;
}

static void exercise(struct tsdb__block *b)
{
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    const char **names, **vals;
    size_t nn, nv;
    if (tsdb__block_label_names(b, &a, &names, &nn, NULL) == HS_OK) {
        for (size_t i = 0; i < nn; i++) {
            struct tsdb__block_postings p;
            if (tsdb__block_postings_matching(b, names[i], accept_all, NULL, &p, NULL) == HS_OK)
                tsdb__block_postings_cleanup(&p);
            if (tsdb__block_label_values(b, names[i], &a, &vals, &nv, NULL) != HS_OK)
                continue;
            for (size_t j = 0; j < nv; j++)
                if (tsdb__block_postings_get(b, names[i], vals[j], &p, NULL) == HS_OK)
                    tsdb__block_postings_cleanup(&p);
        }
    }
    for (size_t r = 0; r < tsdb__block_series_count(b); r++) {
        struct hs_labels ls;
        struct tsdb__chunk_meta *cm;
        size_t n;
        if (tsdb__block_series(b, r, &a, &ls, &cm, &n, NULL) != HS_OK)
            continue;
        for (size_t k = 0; k < n; k++)
            HS_IGNORE_RESULT(tsdb__block_chunk(b, &cm[k], NULL));
    }
    hs_arena_cleanup(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready = 0;
    if (ready == 0)
        ready = setup() == 0 ? 1 : -1;
    if (ready < 0)
        abort();
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (size > 5 && data[5] == 0)
        repair(copy, size);
    char p[4200];
    snprintf(p, sizeof(p), "%s/index", block_dir);
    if (hs_write_file_atomic(p, copy, size, NULL) != HS_OK)
        abort();
    free(copy);
    for (int attempt = 0; attempt < 2; attempt++) {
        struct tsdb__block *b = NULL;
        struct hs_err err = {0};
        int rc = tsdb__block_open(block_dir, &b, &err);
        if (getenv("HS_BLOCK_FUZZ_VERBOSE") != NULL)
            fprintf(stderr, "open: %s\n", rc == HS_OK ? "ok" : err.msg);
        if (rc == HS_OK) {
            exercise(b);
            tsdb__block_close(b);
            break;
        }
        if (rc != HS_ECORRUPT)
            abort();
        if (!fix_series_count(err.msg))
            break;
    }
    return 0;
}
