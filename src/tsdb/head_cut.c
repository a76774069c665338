/*
 * head_cut.c - cutting the oldest part of the head into a persisted block.
 *
 * When the head spans more than 1.5 block durations, the block-aligned
 * window [bmin, bmin + block_duration) holding its oldest data is written
 * as a level-1 block (block_write.c) and dropped from the head:
 *
 *   1. under head.lock (read) and each stripe lock: fold the out-of-order
 *      buffer into chunks, close an open chunk whose window ends by bmax,
 *      and copy the labels and the closed chunks ending before bmax into an
 *      arena (chunks never straddle a window: the head cuts them there);
 *   2. write the block from the copies, sorted by labels, and open it;
 *   3. raise the head floor to bmax (appends below it are now "too old"),
 *      publish the block to queries, and drop from the head exactly the
 *      chunks that were copied (matched by their data pointer: a chunk
 *      rebuilt meanwhile stays, and queries deduplicate it);
 *   4. checkpoint the WAL, so that replay no longer brings that data back.
 *
 * A crash between 2 and 4 replays data the block also holds: tsdb_open
 * truncates the head below the newest block's end, so nothing is doubled.
 * Appends and queries go on throughout; a query running across step 3 may
 * see the window from both sources and merges them.
 */
#include "tsdb/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cut_series {
    struct hs_labels ls; /* copied into the arena */
    uint32_t ref;
    struct tsdb__chunk_meta *cm; /* copied chunk bytes */
    const uint8_t **orig;        /* the head's chunk data pointers */
    size_t ncm;
};

struct cut_ctx {
    struct cut_series *v;
    size_t n, i;
};

static int cut_next(void *ctx, const struct hs_labels **ls, const struct tsdb__chunk_meta **c,
                    size_t *nc, struct hs_err *err)
{
    struct cut_ctx *x = ctx;
    (void)err;
    while (x->i < x->n && x->v[x->i].ncm == 0)
        x->i++;
    if (x->i == x->n)
        return 0;
    struct cut_series *s = &x->v[x->i++];
    *ls = &s->ls;
    *c = s->cm;
    *nc = s->ncm;
    return 1;
}

static int cmp_cut(const void *a, const void *b)
{
    return hs_labels_cmp(&((const struct cut_series *)a)->ls, &((const struct cut_series *)b)->ls);
}

/* Step 1 for one series (stripe lock held). */
static int collect_series(struct tsdb *db, struct tsdb__series *s, int64_t bmax, struct hs_arena *a,
                          struct cut_series *out)
{
    memset(out, 0, sizeof(*out));
    out->ref = s->ref;
    if (s->nooo > 0 && s->ooo[0].t < bmax && tsdb__series_fold_ooo(db, s) != HS_OK)
        return HS_ENOMEM;
    if (s->enc.n > 0 && s->enc_end <= bmax && tsdb__series_close_open_chunk(s) != HS_OK)
        return HS_ENOMEM;
    size_t k = 0;
    while (k < s->nchunks && s->chunks[k].maxt < bmax)
        k++;
    if (k == 0)
        return HS_OK;
    out->cm = hs_arena_alloc(a, k * sizeof(*out->cm));
    out->orig = hs_arena_alloc(a, k * sizeof(*out->orig));
    out->ls.v = hs_arena_alloc(a, s->ls.n * sizeof(*out->ls.v));
    if (out->cm == NULL || out->orig == NULL || out->ls.v == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < s->ls.n; i++) {
        out->ls.v[i].name = hs_arena_strndup(a, s->ls.v[i].name, strlen(s->ls.v[i].name));
        out->ls.v[i].value = hs_arena_strndup(a, s->ls.v[i].value, strlen(s->ls.v[i].value));
        if (out->ls.v[i].name == NULL || out->ls.v[i].value == NULL)
            return HS_ENOMEM;
    }
    out->ls.n = s->ls.n;
    for (size_t i = 0; i < k; i++) {
        const struct tsdb__chunk *c = &s->chunks[i];
        uint8_t *p = hs_arena_alloc(a, c->len);
        if (p == NULL)
            return HS_ENOMEM;
        memcpy(p, c->data, c->len);
        out->cm[i] =
            (struct tsdb__chunk_meta){c->mint, c->maxt, c->n, TSDB_CHUNK_ENC_XOR, p, c->len, 0};
        out->orig[i] = c->data;
    }
    out->ncm = k;
    return HS_OK;
}

/* Step 3: drops the copied chunks from the head. */
static void drop_copied(struct tsdb *db, const struct cut_series *v, size_t n)
{
    struct tsdb__head *h = &db->head;
    pthread_rwlock_rdlock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        if (v[i].ncm == 0)
            continue;
        struct tsdb__series *s = tsdb__head_by_ref(h, v[i].ref);
        if (s == NULL)
            continue;
        pthread_mutex_t *mu = tsdb__stripe(h, s->ref);
        pthread_mutex_lock(mu);
        uint32_t w = 0, dropped = 0;
        for (uint32_t c = 0; c < s->nchunks; c++) {
            /* Same memory and same shape: a chunk freed and reallocated at
             * the same address meanwhile would differ in range or size. */
            const struct tsdb__chunk *hc = &s->chunks[c];
            bool copied = false;
            for (size_t j = 0; j < v[i].ncm && !copied; j++)
                copied = hc->data == v[i].orig[j] && hc->mint == v[i].cm[j].mint &&
                         hc->maxt == v[i].cm[j].maxt && hc->len == v[i].cm[j].len &&
                         hc->n == v[i].cm[j].num_samples;
            if (copied) {
                hs_free(s->chunks[c].data);
                dropped++;
            } else {
                s->chunks[w++] = s->chunks[c];
            }
        }
        s->nchunks = w;
        atomic_fetch_sub(&db->st.chunks, dropped);
        /* Recompute the bounds from what is left. */
        tsdb__series_truncate(db, s, INT64_MIN);
        pthread_mutex_unlock(mu);
    }
    pthread_rwlock_unlock(&h->lock);
}

static int add_block(struct tsdb *db, const char *ulid, struct hs_err *err)
{
    size_t len = strlen(db->dir) + TSDB__ULID_LEN + 2;
    char *path = hs_malloc(len);
    if (path == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    snprintf(path, len, "%s/%s", db->dir, ulid);
    struct tsdb__block *b;
    int rc = tsdb__block_open(path, &b, err);
    hs_free(path);
    if (rc != HS_OK)
        return rc;
    pthread_rwlock_wrlock(&db->blocks_lock);
    struct tsdb__block **t = hs_reallocarray(db->blocks, db->nblocks + 1, sizeof(*t));
    if (t == NULL) {
        pthread_rwlock_unlock(&db->blocks_lock);
        tsdb__block_close(b);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    db->blocks = t;
    db->blocks[db->nblocks++] = b;
    pthread_rwlock_unlock(&db->blocks_lock);
    return HS_OK;
}

int tsdb__head_cut(struct tsdb *db, struct hs_err *err)
{
    int64_t block = db->opt.block_duration_ms;
    int64_t hmin = atomic_load(&db->head.min_t), hmax = atomic_load(&db->head.max_t);
    if (hmax == INT64_MIN || hmin == INT64_MAX || hmin > hmax)
        return HS_OK;
    if ((uint64_t)hmax - (uint64_t)hmin < (uint64_t)block + (uint64_t)block / 2)
        return HS_OK;
    int64_t t0 = hs_mono_ns();
    int64_t bmin = hmin / block * block;
    if (hmin % block < 0)
        bmin -= block;
    int64_t bmax = bmin + block;

    struct hs_arena a;
    hs_arena_init(&a, 1 << 20, 0);
    struct cut_ctx x = {NULL, 0, 0};
    int rc = HS_OK;
    struct tsdb__head *h = &db->head;
    pthread_rwlock_rdlock(&h->lock);
    x.v = hs_calloc(h->nseries ? h->nseries : 1, sizeof(*x.v));
    if (x.v == NULL)
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t r = 0; rc == HS_OK && r < h->cap_ref && x.n < h->nseries; r++) {
        struct tsdb__series *s = h->by_ref[r];
        if (s == NULL)
            continue;
        pthread_mutex_t *mu = tsdb__stripe(h, s->ref);
        pthread_mutex_lock(mu);
        if (collect_series(db, s, bmax, &a, &x.v[x.n]) != HS_OK)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        pthread_mutex_unlock(mu);
        x.n++;
    }
    pthread_rwlock_unlock(&h->lock);
    size_t with_data = 0;
    for (size_t i = 0; i < x.n; i++)
        with_data += x.v[i].ncm > 0;
    if (rc == HS_OK && with_data > 0) {
        /* Sort only the series with data; label arrays of the others are unset. */
        size_t k = 0;
        for (size_t i = 0; i < x.n; i++)
            if (x.v[i].ncm > 0)
                x.v[k++] = x.v[i];
        x.n = k;
        qsort(x.v, x.n, sizeof(*x.v), cmp_cut);
        struct tsdb__block_write_opts o;
        memset(&o, 0, sizeof(o));
        o.has_range = true;
        o.min_time = bmin;
        o.max_time = bmax;
        o.level = 1;
        struct tsdb__block_meta meta;
        rc = tsdb__block_write(db->dir, &o, cut_next, &x, &meta, err);
        if (rc == HS_OK) {
            rc = add_block(db, meta.ulid, err);
            if (rc == HS_OK) {
                hs_log(HS_LOG_INFO, "head cut into a block", HS_LSTR("block", meta.ulid),
                       HS_LINT("min_time", bmin), HS_LINT("max_time", bmax),
                       HS_LINT("series", (int64_t)meta.num_series),
                       HS_LINT("samples", (int64_t)meta.num_samples));
                atomic_fetch_add(&db->st.blocks_cut, 1);
            }
            tsdb__block_meta_cleanup(&meta);
        }
    }
    if (rc == HS_OK) {
        int64_t cur = atomic_load(&db->head_floor);
        if (bmax > cur)
            atomic_store(&db->head_floor, bmax);
        drop_copied(db, x.v, x.n);
        tsdb__head_gc(db, NULL, 0);
        rc = tsdb__wal_checkpoint(db, true, err);
    }
    hs_free(x.v);
    hs_arena_cleanup(&a);
    atomic_fetch_add(&db->st.cut_ns, (uint64_t)(hs_mono_ns() - t0));
    if (rc != HS_OK)
        atomic_fetch_add(&db->st.cuts_failed, 1);
    return rc;
}
