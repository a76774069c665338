/*
 * backfill.c - building persisted blocks straight from samples, without a
 * running store: what `holoscope tsdb create-blocks-from` is made of.
 *
 * Samples arrive in any order.  Each one goes to its series (labels
 * interned in a hash table, one hs_labels_dup copy per series).  A sample
 * newer than its series' newest is Gorilla-encoded at once into the
 * series' open chunk, which is cut after TSDB_CHUNK_MAX_SAMPLES samples or
 * when a sample falls into the next block window (chunks never straddle a
 * multiple of block_duration, as in the head: head_cut.c).  So for input
 * grouped by series or by time, which is the normal case, memory holds
 * only compressed chunks.  A sample older than its series' newest goes to
 * a raw per-series buffer; at finish such a series is decoded, merged with
 * its buffer, sorted, deduplicated and encoded again.
 *
 * Finish then walks the block windows holding data, oldest first: for
 * each one the series (sorted by labels) hand the writer (block_write.c)
 * their chunks of that window, and the chunk bytes are freed once the
 * block is on disk.  A block's range is its data's [first, last + 1), like
 * the blocks promtool writes, so a store started on the directory accepts
 * fresh samples right after the backfilled ones.
 */
#include "tsdb/internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct bb_chunk {
    int64_t mint, maxt;
    uint8_t *data; /* owned (hs_malloc) */
    uint32_t len;
    uint16_t n;
};

struct bb_series {
    struct hs_labels *ls; /* hs_labels_dup copy, owned */
    uint64_t hash;
    struct tsdb__chunk_enc enc; /* open chunk */
    int64_t enc_mint;           /* first t of the open chunk */
    int64_t enc_end;            /* the open chunk is cut at this t */
    int64_t last_t;             /* newest in-order sample */
    uint64_t last_v;
    struct bb_chunk *chunks; /* closed chunks, by time */
    uint32_t nchunks, capchunks;
    struct tsdb__sample *ooo; /* samples older than last_t, unsorted */
    size_t nooo, capooo;
    uint32_t cursor, take; /* finish: first chunk not yet written, chunks in the window */
};

struct tsdb_block_builder {
    char *dir;
    int64_t block_ms;
    struct bb_series **slots; /* open addressing by hash; NULL = empty */
    size_t cap, n;
    struct bb_series *last; /* series of the previous add: input is usually grouped */
    uint64_t dups, ooo;
    bool is_finished;
};

/* ---- windows ----------------------------------------------------------------- */

/* Start of the block window holding t (floor to a multiple of d), clamped. */
static int64_t window_start(int64_t t, int64_t d)
{
    int64_t q = t / d;
    if (t % d < 0)
        q--;
    int64_t s;
    if (__builtin_mul_overflow(q, d, &s))
        return INT64_MIN;
    return s;
}

static int64_t window_end(int64_t t, int64_t d)
{
    int64_t s = window_start(t, d), e;
    if (__builtin_add_overflow(s, d, &e))
        return INT64_MAX;
    return e;
}

/* ---- series ------------------------------------------------------------------ */

static void series_free(struct bb_series *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->nchunks; i++)
        hs_free(s->chunks[i].data);
    hs_free(s->chunks);
    hs_free(s->ooo);
    tsdb__chunk_enc_cleanup(&s->enc);
    hs_labels_free(s->ls);
    hs_free(s);
}

/* Moves the open chunk to the closed ones. */
static int series_cut(struct bb_series *s)
{
    if (s->enc.n == 0)
        return HS_OK;
    if (s->nchunks == s->capchunks) {
        uint32_t cap = s->capchunks ? s->capchunks * 2 : 4;
        struct bb_chunk *c = hs_reallocarray(s->chunks, cap, sizeof(*c));
        if (c == NULL)
            return HS_ENOMEM;
        s->chunks = c;
        s->capchunks = cap;
    }
    int64_t maxt = s->enc.t;
    uint16_t n = s->enc.n;
    size_t len;
    uint8_t *data = tsdb__chunk_enc_detach(&s->enc, &len);
    s->chunks[s->nchunks++] = (struct bb_chunk){s->enc_mint, maxt, data, (uint32_t)len, n};
    return HS_OK;
}

/* Appends a sample newer than every one of the series. */
static int series_append(struct bb_series *s, int64_t block_ms, int64_t t, uint64_t v)
{
    if (s->enc.n > 0 && (s->enc.n >= TSDB_CHUNK_MAX_SAMPLES || t >= s->enc_end)) {
        int rc = series_cut(s);
        if (rc != HS_OK)
            return rc;
    }
    bool is_first = s->enc.n == 0;
    int rc = tsdb__chunk_append(&s->enc, t, v);
    if (rc != HS_OK)
        return rc;
    if (is_first) {
        s->enc_mint = t;
        s->enc_end = window_end(t, block_ms);
    }
    s->last_t = t;
    s->last_v = v;
    return HS_OK;
}

static int dup_error(struct hs_err *err, const struct hs_labels *ls, int64_t t)
{
    struct hs_buf b;
    hs_buf_init(&b, 4096);
    int rc = hs_labels_format(ls, &b);
    hs_err_set(err, HS_EINVAL, "duplicate sample for timestamp %lld of series %s", (long long)t,
               rc == HS_OK && b.p ? b.p : "(labels too long to print)");
    hs_buf_cleanup(&b);
    return HS_EINVAL;
}

static int cmp_sample(const void *a, const void *b)
{
    int64_t x = ((const struct tsdb__sample *)a)->t, y = ((const struct tsdb__sample *)b)->t;
    return x < y ? -1 : x > y;
}

/*
 * Folds the out-of-order buffer in: decodes every chunk, sorts all samples,
 * drops same-value duplicates and encodes them again.  On error the series
 * is left as it was.
 */
static int series_fold_ooo(struct tsdb_block_builder *b, struct bb_series *s, struct hs_err *err)
{
    if (s->nooo == 0)
        return HS_OK;
    int rc = series_cut(s);
    if (rc != HS_OK)
        return hs_err_set(err, rc, "out of memory");
    size_t total = s->nooo;
    for (uint32_t i = 0; i < s->nchunks; i++)
        total += s->chunks[i].n;
    struct tsdb__sample *v = hs_malloc(total * sizeof(*v));
    if (v == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    size_t n = 0;
    for (uint32_t i = 0; i < s->nchunks; i++) {
        struct tsdb_chunk_iter it;
        tsdb_chunk_iter_init(&it, s->chunks[i].data, s->chunks[i].len);
        while (n < total && tsdb_chunk_iter_next(&it))
            v[n++] = (struct tsdb__sample){it.t, it.v};
        if (it.err != HS_OK) {
            hs_free(v);
            return hs_err_set(err, HS_ECORRUPT, "chunk failed to decode (internal error)");
        }
    }
    memcpy(v + n, s->ooo, s->nooo * sizeof(*v));
    n += s->nooo;
    qsort(v, n, sizeof(*v), cmp_sample);
    size_t w = 0;
    uint64_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && v[w - 1].t == v[i].t) {
            if (v[w - 1].v != v[i].v) {
                int64_t t = v[i].t;
                hs_free(v);
                return dup_error(err, s->ls, t);
            }
            dropped++;
            continue;
        }
        v[w++] = v[i];
    }
    /* Encode into a fresh series shell, then swap it in. */
    struct bb_series tmp;
    memset(&tmp, 0, sizeof(tmp));
    for (size_t i = 0; i < w && rc == HS_OK; i++)
        rc = series_append(&tmp, b->block_ms, v[i].t, v[i].v);
    if (rc == HS_OK)
        rc = series_cut(&tmp);
    hs_free(v);
    if (rc != HS_OK) {
        for (uint32_t i = 0; i < tmp.nchunks; i++)
            hs_free(tmp.chunks[i].data);
        hs_free(tmp.chunks);
        tsdb__chunk_enc_cleanup(&tmp.enc);
        return hs_err_set(err, rc, "out of memory");
    }
    for (uint32_t i = 0; i < s->nchunks; i++)
        hs_free(s->chunks[i].data);
    hs_free(s->chunks);
    hs_free(s->ooo);
    s->ooo = NULL;
    s->nooo = s->capooo = 0;
    s->chunks = tmp.chunks;
    s->nchunks = tmp.nchunks;
    s->capchunks = tmp.capchunks;
    s->last_t = tmp.last_t;
    s->last_v = tmp.last_v;
    b->dups += dropped;
    return HS_OK;
}

/* ---- the builder ------------------------------------------------------------- */

struct tsdb_block_builder *tsdb_block_builder_new(const char *data_dir, int64_t block_duration_ms,
                                                  struct hs_err *err)
{
    if (data_dir == NULL || data_dir[0] == '\0') {
        hs_err_set(err, HS_EINVAL, "no data directory given");
        return NULL;
    }
    if (block_duration_ms <= 0) {
        hs_err_set(err, HS_EINVAL, "block duration must be positive");
        return NULL;
    }
    struct tsdb_block_builder *b = hs_calloc(1, sizeof(*b));
    if (b == NULL || (b->dir = hs_strdup(data_dir)) == NULL ||
        (b->slots = hs_calloc(1024, sizeof(*b->slots))) == NULL) {
        if (b != NULL)
            hs_free(b->dir);
        hs_free(b);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    b->cap = 1024;
    b->block_ms = block_duration_ms;
    return b;
}

void tsdb_block_builder_free(struct tsdb_block_builder *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->cap; i++)
        series_free(b->slots[i]);
    hs_free(b->slots);
    hs_free(b->dir);
    hs_free(b);
}

static int grow_table(struct tsdb_block_builder *b)
{
    size_t cap = b->cap * 2;
    struct bb_series **t = hs_calloc(cap, sizeof(*t));
    if (t == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < b->cap; i++) {
        struct bb_series *s = b->slots[i];
        if (s == NULL)
            continue;
        size_t j = s->hash & (cap - 1);
        while (t[j] != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = s;
    }
    hs_free(b->slots);
    b->slots = t;
    b->cap = cap;
    return HS_OK;
}

/* The series of 'ls' (sorted, no empty values), created when new. */
static int get_series(struct tsdb_block_builder *b, const struct hs_labels *ls,
                      struct bb_series **out, struct hs_err *err)
{
    if (b->last != NULL && hs_labels_cmp(b->last->ls, ls) == 0) {
        *out = b->last;
        return HS_OK;
    }
    uint64_t h = hs_labels_hash(ls);
    size_t j = h & (b->cap - 1);
    for (struct bb_series *s; (s = b->slots[j]) != NULL; j = (j + 1) & (b->cap - 1)) {
        if (s->hash == h && hs_labels_cmp(s->ls, ls) == 0) {
            *out = b->last = s;
            return HS_OK;
        }
    }
    if ((b->n + 1) * 2 > b->cap) {
        if (grow_table(b) != HS_OK)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        j = h & (b->cap - 1);
        while (b->slots[j] != NULL)
            j = (j + 1) & (b->cap - 1);
    }
    for (size_t i = 0; i < ls->n; i++)
        if (!hs_label_name_valid(ls->v[i].name, strlen(ls->v[i].name)))
            return hs_err_set(err, HS_EINVAL, "invalid label name \"%.100s\"", ls->v[i].name);
    struct bb_series *s = hs_calloc(1, sizeof(*s));
    if (s == NULL || (s->ls = hs_labels_dup(ls)) == NULL) {
        hs_free(s);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    s->hash = h;
    s->last_t = INT64_MIN;
    b->slots[j] = s;
    b->n++;
    *out = b->last = s;
    return HS_OK;
}

int tsdb_block_builder_add(struct tsdb_block_builder *b, const struct hs_labels *ls, int64_t t_ms,
                           double v, struct hs_err *err)
{
    if (b->is_finished)
        return hs_err_set(err, HS_EINVAL, "block builder already finished");
    if (ls == NULL || ls->n == 0)
        return hs_err_set(err, HS_EINVAL, "empty label set");
    if (ls->n > TSDB__BLOCK_MAX_LABELS)
        return hs_err_set(err, HS_ETOOBIG, "series has %zu labels, more than %d", ls->n,
                          TSDB__BLOCK_MAX_LABELS);
    /* Drop empty values; a copy only when there is one. */
    struct hs_label small[32];
    struct hs_label *tmp = NULL;
    struct hs_labels clean = *ls;
    size_t nonempty = 0;
    for (size_t i = 0; i < ls->n; i++)
        nonempty += ls->v[i].value != NULL && ls->v[i].value[0] != '\0';
    if (nonempty != ls->n) {
        if (nonempty == 0)
            return hs_err_set(err, HS_EINVAL, "label set has only empty values");
        tmp = nonempty <= HS_ARRAY_LEN(small) ? small : hs_malloc(nonempty * sizeof(*tmp));
        if (tmp == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < ls->n; i++)
            if (ls->v[i].value != NULL && ls->v[i].value[0] != '\0')
                tmp[k++] = ls->v[i];
        clean.v = tmp;
        clean.n = k;
    }
    int rc;
    if (!hs_labels_valid(&clean)) {
        rc = hs_err_set(err, HS_EINVAL,
                        "invalid label set (names must be valid, sorted and unique)");
        goto out;
    }
    struct bb_series *s = NULL;
    rc = get_series(b, &clean, &s, err);
    if (rc != HS_OK)
        goto out;
    uint64_t bits = tsdb__f2u(v);
    if (t_ms > s->last_t || (s->enc.n == 0 && s->nchunks == 0)) {
        rc = series_append(s, b->block_ms, t_ms, bits);
        if (rc != HS_OK)
            rc = hs_err_set(err, rc, "out of memory");
    } else if (t_ms == s->last_t) {
        if (bits == s->last_v)
            b->dups++;
        else
            rc = dup_error(err, s->ls, t_ms);
    } else {
        if (s->nooo == s->capooo) {
            size_t cap = s->capooo ? s->capooo * 2 : 16;
            struct tsdb__sample *o = hs_reallocarray(s->ooo, cap, sizeof(*o));
            if (o == NULL) {
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
                goto out;
            }
            s->ooo = o;
            s->capooo = cap;
        }
        s->ooo[s->nooo++] = (struct tsdb__sample){t_ms, bits};
        b->ooo++;
    }
out:
    if (tmp != small)
        hs_free(tmp);
    return rc;
}

void tsdb_backfill_stats_cleanup(struct tsdb_backfill_stats *st)
{
    if (st == NULL)
        return;
    hs_free(st->blocks);
    memset(st, 0, sizeof(*st));
    st->min_time_ms = INT64_MAX;
    st->max_time_ms = INT64_MIN;
}

/* ---- finish: one block per window ----------------------------------------------- */

struct win_ctx {
    struct bb_series **v; /* sorted by labels */
    size_t n, i;
    int64_t wstart; /* window being written */
    int64_t block_ms;
    struct tsdb__chunk_meta *cm;
    size_t capcm;
};

static int win_next(void *ctx, const struct hs_labels **ls, const struct tsdb__chunk_meta **c,
                    size_t *nc, struct hs_err *err)
{
    struct win_ctx *x = ctx;
    while (x->i < x->n) {
        struct bb_series *s = x->v[x->i++];
        uint32_t k = s->cursor;
        while (k < s->nchunks && window_start(s->chunks[k].mint, x->block_ms) == x->wstart)
            k++;
        s->take = k - s->cursor;
        if (s->take == 0)
            continue;
        if (s->take > x->capcm) {
            struct tsdb__chunk_meta *m = hs_reallocarray(x->cm, s->take, sizeof(*m));
            if (m == NULL)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            x->cm = m;
            x->capcm = s->take;
        }
        for (uint32_t j = 0; j < s->take; j++) {
            const struct bb_chunk *ch = &s->chunks[s->cursor + j];
            x->cm[j] = (struct tsdb__chunk_meta){ch->mint, ch->maxt, ch->n, TSDB_CHUNK_ENC_XOR,
                                                 ch->data, ch->len,  0};
        }
        *ls = s->ls;
        *c = x->cm;
        *nc = s->take;
        return 1;
    }
    return 0;
}

static int cmp_series(const void *a, const void *b)
{
    return hs_labels_cmp((*(struct bb_series *const *)a)->ls, (*(struct bb_series *const *)b)->ls);
}

static int add_info(struct tsdb_backfill_stats *st, const char *dir,
                    const struct tsdb__block_meta *m)
{
    struct tsdb_block_info *bi = hs_reallocarray(st->blocks, st->n_blocks + 1, sizeof(*bi));
    if (bi == NULL)
        return HS_ENOMEM;
    st->blocks = bi;
    bi = &st->blocks[st->n_blocks++];
    memset(bi, 0, sizeof(*bi));
    memcpy(bi->ulid, m->ulid, sizeof(bi->ulid));
    bi->min_time_ms = m->min_time;
    bi->max_time_ms = m->max_time;
    bi->num_series = m->num_series;
    bi->num_samples = m->num_samples;
    bi->num_chunks = m->num_chunks;
    bi->level = m->level;
    size_t len = strlen(dir) + TSDB__ULID_LEN + 2;
    char *path = hs_malloc(len);
    if (path != NULL) {
        snprintf(path, len, "%s/%s", dir, m->ulid);
        bi->size_bytes = tsdb__block_dir_size(path);
        hs_free(path);
    }
    return HS_OK;
}

int tsdb_block_builder_finish(struct tsdb_block_builder *b, struct tsdb_backfill_stats *st,
                              struct hs_err *err)
{
    struct tsdb_backfill_stats local;
    memset(&local, 0, sizeof(local));
    local.min_time_ms = INT64_MAX;
    local.max_time_ms = INT64_MIN;
    if (st != NULL) {
        memset(st, 0, sizeof(*st));
        st->min_time_ms = INT64_MAX;
        st->max_time_ms = INT64_MIN;
    }
    if (b->is_finished)
        return hs_err_set(err, HS_EINVAL, "block builder already finished");
    b->is_finished = true;
    struct win_ctx x;
    memset(&x, 0, sizeof(x));
    x.block_ms = b->block_ms;
    int rc = HS_OK;

    /* 1. Close every series and fold its out-of-order samples in. */
    x.v = hs_malloc((b->n ? b->n : 1) * sizeof(*x.v));
    if (x.v == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b->cap; i++) {
        struct bb_series *s = b->slots[i];
        if (s == NULL)
            continue;
        rc = series_fold_ooo(b, s, err);
        if (rc == HS_OK && series_cut(s) != HS_OK)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        if (rc != HS_OK)
            goto out;
        if (s->nchunks == 0)
            continue;
        x.v[x.n++] = s;
        local.series++;
        for (uint32_t j = 0; j < s->nchunks; j++)
            local.samples += s->chunks[j].n;
        if (s->chunks[0].mint < local.min_time_ms)
            local.min_time_ms = s->chunks[0].mint;
        if (s->chunks[s->nchunks - 1].maxt > local.max_time_ms)
            local.max_time_ms = s->chunks[s->nchunks - 1].maxt;
    }
    local.duplicates_dropped = b->dups;
    local.out_of_order = b->ooo;
    if (x.n == 0)
        goto out;
    qsort(x.v, x.n, sizeof(*x.v), cmp_series);
    rc = hs_mkdir_p(b->dir, err);
    if (rc != HS_OK)
        goto out;

    /* 2. One block per window holding data, oldest first. */
    for (;;) {
        bool any = false;
        int64_t w = INT64_MAX;
        for (size_t i = 0; i < x.n; i++) {
            struct bb_series *s = x.v[i];
            if (s->cursor < s->nchunks) {
                int64_t ws = window_start(s->chunks[s->cursor].mint, b->block_ms);
                if (!any || ws < w)
                    w = ws;
                any = true;
            }
        }
        if (!any)
            break;
        x.wstart = w;
        x.i = 0;
        for (size_t i = 0; i < x.n; i++)
            x.v[i]->take = 0;
        struct tsdb__block_write_opts o;
        memset(&o, 0, sizeof(o));
        o.level = 1;
        struct tsdb__block_meta meta;
        rc = tsdb__block_write(b->dir, &o, win_next, &x, &meta, err);
        if (rc != HS_OK)
            goto out;
        rc = add_info(&local, b->dir, &meta);
        tsdb__block_meta_cleanup(&meta);
        if (rc != HS_OK) {
            rc = hs_err_set(err, rc, "out of memory");
            goto out;
        }
        /* The window is on disk: release its chunks. */
        for (size_t i = 0; i < x.n; i++) {
            struct bb_series *s = x.v[i];
            for (uint32_t j = 0; j < s->take; j++) {
                hs_free(s->chunks[s->cursor + j].data);
                s->chunks[s->cursor + j].data = NULL;
            }
            s->cursor += s->take;
            s->take = 0;
        }
    }
out:
    hs_free(x.v);
    hs_free(x.cm);
    if (rc == HS_OK && st != NULL)
        *st = local;
    else
        hs_free(local.blocks);
    return rc;
}

/* ---- listing ------------------------------------------------------------------- */

static int cmp_info(const void *a, const void *b)
{
    const struct tsdb_block_info *x = a, *y = b;
    if (x->min_time_ms != y->min_time_ms)
        return x->min_time_ms < y->min_time_ms ? -1 : 1;
    return strcmp(x->ulid, y->ulid);
}

int tsdb_blocks_list(const char *data_dir, struct tsdb_block_info **out, size_t *n,
                     struct hs_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(data_dir);
    if (d == NULL)
        return hs_err_set(err, HS_ENOTFOUND, "%s: cannot open directory", data_dir);
    struct tsdb_backfill_stats acc;
    memset(&acc, 0, sizeof(acc));
    int rc = HS_OK;
    size_t plen = strlen(data_dir) + TSDB__ULID_LEN + 2;
    char *path = hs_malloc(plen);
    if (path == NULL) {
        closedir(d);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (!tsdb__block_ulid_valid(de->d_name))
            continue;
        snprintf(path, plen, "%s/%s", data_dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        struct tsdb__block_meta m;
        struct hs_err e2 = {0};
        int mrc = tsdb__block_meta_read(path, &m, &e2);
        if (mrc == HS_ENOMEM) {
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
            break;
        }
        if (mrc != HS_OK)
            continue;
        if (add_info(&acc, data_dir, &m) != HS_OK)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        tsdb__block_meta_cleanup(&m);
        if (rc != HS_OK)
            break;
    }
    closedir(d);
    hs_free(path);
    if (rc != HS_OK) {
        hs_free(acc.blocks);
        return rc;
    }
    if (acc.n_blocks > 1)
        qsort(acc.blocks, acc.n_blocks, sizeof(*acc.blocks), cmp_info);
    *out = acc.blocks;
    *n = acc.n_blocks;
    return HS_OK;
}
