/*
 * db_compact.c - compaction of the store's blocks: which blocks to merge
 * (tsdb__block_plan: overlapping ones first, then complete windows of
 * 3x, 9x ... the block duration), the merge (tsdb__block_compact in
 * block_compact.c) and the switch-over.
 *
 * The chunk merge callback lives here because only this module knows the
 * chunk encoding: it decodes the chunks of one series, drops samples under
 * tombstones, keeps one sample per timestamp (the first input wins) and
 * re-encodes chunks of at most TSDB_CHUNK_MAX_SAMPLES that never straddle
 * a block_duration boundary.
 *
 * Locking: runs under maint_mu (tsdb_maintain), which deletion also takes,
 * so no block is replaced behind its back; it reads the input blocks under
 * blocks_lock (read), so queries go on, and takes it for writing only to
 * swap the new block in and the old ones out.
 */
#include "tsdb/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct msample {
    int64_t t;
    uint64_t v;
    size_t order; /* input order: the first input wins a tie */
};

static int cmp_msample(const void *a, const void *b)
{
    const struct msample *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool deleted(const struct tsdb__block_interval *del, size_t n, int64_t t)
{
    for (size_t i = 0; i < n; i++)
        if (t >= del[i].mint && t <= del[i].maxt)
            return true;
    return false;
}

/* Closes the chunk being built and appends it to out (bytes in the arena). */
static int emit(struct tsdb__chunk_enc *e, int64_t mint, struct hs_arena *a,
                struct tsdb__chunk_meta *out, size_t *n_out)
{
    size_t len;
    uint16_t n = e->n;
    int64_t maxt = e->t;
    uint8_t *p = tsdb__chunk_enc_detach(e, &len);
    uint8_t *q = hs_arena_alloc(a, len ? len : 1);
    if (q == NULL) {
        hs_free(p);
        return HS_ENOMEM;
    }
    memcpy(q, p, len);
    hs_free(p);
    out[(*n_out)++] =
        (struct tsdb__chunk_meta){mint, maxt, n, TSDB_CHUNK_ENC_XOR, q, (uint32_t)len, 0};
    return HS_OK;
}

static int merge_chunks(void *ctx, const struct tsdb__chunk_meta *in, size_t n_in,
                        const struct tsdb__block_interval *del, size_t n_del, struct hs_arena *a,
                        struct tsdb__chunk_meta **out, size_t *n_out, struct hs_err *err)
{
    const struct tsdb *db = ctx;
    size_t total = 0;
    for (size_t i = 0; i < n_in; i++)
        total += tsdb_chunk_num_samples(in[i].data, in[i].len);
    struct msample *v = hs_malloc((total ? total : 1) * sizeof(*v));
    if (v == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < n_in; i++) {
        if (in[i].encoding != TSDB_CHUNK_ENC_XOR) {
            hs_free(v);
            return hs_err_set(err, HS_ECORRUPT, "chunk of unknown encoding %u", in[i].encoding);
        }
        struct tsdb_chunk_iter it;
        tsdb_chunk_iter_init(&it, in[i].data, in[i].len);
        while (n < total && tsdb_chunk_iter_next(&it)) {
            if (deleted(del, n_del, it.t))
                continue;
            v[n] = (struct msample){it.t, it.v, n};
            n++;
        }
        if (it.err != HS_OK) {
            hs_free(v);
            return hs_err_set(err, HS_ECORRUPT, "corrupt chunk in compaction input");
        }
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_msample);
    *out = hs_arena_alloc(a, (n ? n : 1) * sizeof(**out));
    *n_out = 0;
    if (*out == NULL) {
        hs_free(v);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    struct tsdb__chunk_enc e;
    memset(&e, 0, sizeof(e));
    int64_t mint = 0, end = INT64_MAX, block = db->opt.block_duration_ms;
    int rc = HS_OK;
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        if (i > 0 && v[i].t == v[i - 1].t)
            continue;
        if (e.n > 0 && (e.n >= TSDB_CHUNK_MAX_SAMPLES || v[i].t >= end))
            rc = emit(&e, mint, a, *out, n_out);
        if (rc == HS_OK && e.n == 0) {
            mint = v[i].t;
            int64_t q = v[i].t / block - (v[i].t % block < 0);
            end = q >= INT64_MAX / block - 1 ? INT64_MAX : (q + 1) * block;
        }
        if (rc == HS_OK)
            rc = tsdb__chunk_append(&e, v[i].t, v[i].v);
    }
    if (rc == HS_OK && e.n > 0)
        rc = emit(&e, mint, a, *out, n_out);
    tsdb__chunk_enc_cleanup(&e);
    hs_free(v);
    return rc == HS_OK ? HS_OK : hs_err_set(err, rc, "out of memory");
}

/* Swaps the merged block in for its inputs (blocks_lock held for writing). */
static void swap_in(struct tsdb *db, struct tsdb__block *nb, struct tsdb__block **old, size_t k)
{
    size_t w = 0;
    for (size_t i = 0; i < db->nblocks; i++) {
        bool gone = false;
        for (size_t j = 0; j < k && !gone; j++)
            gone = db->blocks[i] == old[j];
        if (!gone)
            db->blocks[w++] = db->blocks[i];
    }
    db->blocks[w++] = nb; /* room: k >= 2 entries were removed */
    db->nblocks = w;
    /* Keep the list by min_time. */
    for (size_t i = w - 1; i > 0; i--) {
        if (tsdb__block_meta_of(db->blocks[i - 1])->min_time <=
            tsdb__block_meta_of(db->blocks[i])->min_time)
            break;
        struct tsdb__block *t = db->blocks[i - 1];
        db->blocks[i - 1] = db->blocks[i];
        db->blocks[i] = t;
    }
}

int tsdb__blocks_compact(struct tsdb *db, struct hs_err *err)
{
    int64_t t0 = hs_mono_ns();
    int64_t ranges[16];
    size_t nr = tsdb__block_ranges(db->opt.block_duration_ms, db->opt.retention_ms, ranges, 16);
    pthread_rwlock_rdlock(&db->blocks_lock);
    size_t n = db->nblocks;
    if (n < 2) {
        pthread_rwlock_unlock(&db->blocks_lock);
        return HS_OK;
    }
    struct tsdb__block_meta *metas = hs_calloc(n, sizeof(*metas));
    size_t *idx = hs_calloc(n, sizeof(*idx));
    struct tsdb__block **sel = hs_calloc(n, sizeof(*sel));
    int rc = HS_OK;
    size_t k = 0;
    struct tsdb__block_meta meta;
    memset(&meta, 0, sizeof(meta));
    if (metas == NULL || idx == NULL || sel == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++)
            metas[i] = *tsdb__block_meta_of(db->blocks[i]); /* shallow, read only */
        k = tsdb__block_plan(metas, n, ranges, nr, idx);
        for (size_t i = 0; i < k; i++)
            sel[i] = db->blocks[idx[i]];
        if (k >= 2)
            rc = tsdb__block_compact(db->dir, sel, k, merge_chunks, db, NULL, &meta, err);
    }
    pthread_rwlock_unlock(&db->blocks_lock);
    if (rc == HS_OK && k >= 2) {
        size_t len = strlen(db->dir) + TSDB__ULID_LEN + 2;
        char *path = hs_malloc(len);
        struct tsdb__block *nb = NULL;
        if (path == NULL) {
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        } else {
            snprintf(path, len, "%s/%s", db->dir, meta.ulid);
            rc = tsdb__block_open(path, &nb, err);
            hs_free(path);
        }
        if (rc == HS_OK) {
            char(*ulids)[TSDB__ULID_LEN + 1] = hs_calloc(k, sizeof(*ulids));
            pthread_rwlock_wrlock(&db->blocks_lock);
            swap_in(db, nb, sel, k);
            pthread_rwlock_unlock(&db->blocks_lock);
            for (size_t i = 0; i < k; i++) {
                if (ulids != NULL)
                    memcpy(ulids[i], tsdb__block_meta_of(sel[i])->ulid, TSDB__ULID_LEN + 1);
                tsdb__block_close(sel[i]);
            }
            for (size_t i = 0; ulids != NULL && i < k; i++) {
                struct hs_err e2;
                if (tsdb__block_delete(db->dir, ulids[i], &e2) != HS_OK)
                    hs_log(HS_LOG_ERROR, "compacted block not deleted", HS_LSTR("block", ulids[i]),
                           HS_LSTR("error", e2.msg));
            }
            hs_free(ulids);
            atomic_fetch_add(&db->st.blocks_compacted, 1);
            hs_log(HS_LOG_INFO, "blocks compacted", HS_LSTR("block", meta.ulid),
                   HS_LINT("inputs", (int64_t)k), HS_LINT("level", meta.level));
        }
    }
    if (k >= 2) {
        atomic_fetch_add(&db->st.compaction_ns, (uint64_t)(hs_mono_ns() - t0));
        if (rc != HS_OK)
            atomic_fetch_add(&db->st.compactions_failed, 1);
    }
    tsdb__block_meta_cleanup(&meta);
    hs_free(metas);
    hs_free(idx);
    hs_free(sel);
    return rc;
}
