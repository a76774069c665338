/*
 * appender.c - batched appends: validate at add, apply and log at commit.
 *
 * tsdb_appender_add / _add_ref resolve the series, pin it (so retention or
 * deletion cannot free it while the batch is open) and check the sample
 * against the series' committed state, so most rejections are reported to
 * the caller sample by sample.  Commit takes the commit lock (wal.mu),
 * applies each sample under its series' stripe lock (re-checking: another
 * batch may have committed newer samples meanwhile; those now out of order
 * are dropped and counted), encodes the series records of series not yet in
 * the WAL plus one samples record, writes them, releases the lock, and under
 * TSDB_FSYNC_BATCH fsyncs before returning.  Because apply and write happen
 * under one lock, WAL order equals head order, and replay rebuilds exactly
 * the head that was acknowledged.
 */
#include "tsdb/internal.h"

#include <string.h>

struct pending {
    struct tsdb__series *s; /* pinned */
    int64_t t;
    uint64_t v;
};

struct tsdb_appender {
    struct tsdb *db;
    struct pending *v;
    size_t n, cap;
};

struct tsdb_appender *tsdb_appender_new(struct tsdb *db)
{
    struct tsdb_appender *a = hs_calloc(1, sizeof(*a));
    if (a != NULL)
        a->db = db;
    return a;
}

static void unpin_all(struct tsdb_appender *a)
{
    for (size_t i = 0; i < a->n; i++)
        atomic_fetch_sub_explicit(&a->v[i].s->pending, 1, memory_order_release);
}

static void appender_free(struct tsdb_appender *a)
{
    hs_free(a->v);
    hs_free(a);
}

void tsdb_appender_rollback(struct tsdb_appender *a)
{
    if (a == NULL)
        return;
    unpin_all(a);
    appender_free(a);
}

/* Checks and queues a sample for a pinned series; unpins on rejection. */
static int queue(struct tsdb_appender *a, struct tsdb__series *s, int64_t t, double v,
                 struct hs_err *err)
{
    struct tsdb *db = a->db;
    uint64_t bits = tsdb__f2u(v);
    pthread_mutex_t *mu = tsdb__stripe(&db->head, s->ref);
    pthread_mutex_lock(mu);
    int rc = tsdb__series_check(db, s, t, bits, true, err);
    pthread_mutex_unlock(mu);
    if (rc == HS_OK || rc == 2) {
        if (a->n == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 64;
            struct pending *p = hs_reallocarray(a->v, cap, sizeof(*p));
            if (p == NULL) {
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
                goto unpin;
            }
            a->v = p;
            a->cap = cap;
        }
        a->v[a->n++] = (struct pending){s, t, bits};
        return HS_OK;
    }
    if (rc == 1)
        rc = HS_OK; /* ignored duplicate */
unpin:
    atomic_fetch_sub_explicit(&s->pending, 1, memory_order_release);
    return rc;
}

int tsdb_appender_add(struct tsdb_appender *a, const struct hs_labels *ls, int64_t t_ms, double v,
                      uint64_t *ref_out, struct hs_err *err)
{
    struct tsdb__series *s;
    bool created;
    int rc = tsdb__head_get_or_create(a->db, ls, 0, true, &s, &created, err);
    if (rc != HS_OK)
        return rc;
    if (ref_out != NULL)
        *ref_out = s->ref;
    return queue(a, s, t_ms, v, err);
}

int tsdb_appender_add_ref(struct tsdb_appender *a, uint64_t ref, int64_t t_ms, double v,
                          struct hs_err *err)
{
    struct tsdb__head *h = &a->db->head;
    pthread_rwlock_rdlock(&h->lock);
    struct tsdb__series *s = tsdb__head_by_ref(h, ref);
    if (s != NULL)
        atomic_fetch_add_explicit(&s->pending, 1, memory_order_acquire);
    pthread_rwlock_unlock(&h->lock);
    if (s == NULL)
        return hs_err_set(err, HS_ENOTFOUND, "unknown series ref %llu", (unsigned long long)ref);
    return queue(a, s, t_ms, v, err);
}

/* Encodes the samples record for the accepted samples (v[i].s != NULL). */
static int encode_samples(struct tsdb_appender *a, struct hs_buf *b, size_t accepted)
{
    if (accepted == 0)
        return HS_OK;
    size_t start = b->len;
    if (hs_buf_reserve(b, TSDB__REC_HEADER + 10 + accepted * 28) != HS_OK)
        return HS_ENOMEM;
    uint8_t *p = (uint8_t *)b->p + start + TSDB__REC_HEADER, *q = p;
    q += tsdb__put_uvarint(q, accepted);
    int64_t pref = 0, pt = 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct pending *x = &a->v[i];
        if (x->s == NULL)
            continue;
        q += tsdb__put_uvarint(q, tsdb__zigzag((int64_t)x->s->ref - pref));
        q += tsdb__put_uvarint(q, tsdb__zigzag((int64_t)((uint64_t)x->t - (uint64_t)pt)));
        for (int k = 0; k < 8; k++)
            *q++ = (uint8_t)(x->v >> (8 * k));
        pref = x->s->ref;
        pt = x->t;
    }
    size_t plen = (size_t)(q - p);
    uint8_t *h = (uint8_t *)b->p + start;
    uint32_t crc = hs_crc32c(0, p, plen);
    h[0] = TSDB__REC_SAMPLES;
    for (int k = 0; k < 4; k++) {
        h[1 + k] = (uint8_t)(plen >> (8 * k));
        h[5 + k] = (uint8_t)(crc >> (8 * k));
    }
    b->len = start + TSDB__REC_HEADER + plen;
    b->p[b->len] = '\0';
    return HS_OK;
}

int tsdb_appender_commit(struct tsdb_appender *a, struct hs_err *err)
{
    struct tsdb *db = a->db;
    struct tsdb__wal *w = &db->wal;
    int rc = HS_OK;
    uint64_t mark = 0;
    size_t accepted = 0;
    int fail = HS_OK; /* first failure applying a sample */
    if (a->n == 0)
        goto out;
    pthread_mutex_lock(&w->mu);
    hs_buf_reset(&w->rec);
    /* unpin[i]: the series of sample i; bit 0 set when this commit logged
     * its series record (undone if the write fails). */
    uintptr_t *unpin = hs_malloc(a->n * sizeof(*unpin));
    if (unpin == NULL) {
        pthread_mutex_unlock(&w->mu);
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < a->n; i++) {
        struct pending *x = &a->v[i];
        struct tsdb__series *s = x->s;
        if (i + 8 < a->n) { /* hide the cache misses of series ahead */
            __builtin_prefetch(a->v[i + 8].s, 1);
            __builtin_prefetch((const char *)a->v[i + 8].s + 64, 1);
        }
        unpin[i] = (uintptr_t)s;
        if (fail != HS_OK) {
            x->s = NULL;
            continue;
        }
        if (!s->is_logged) {
            if (tsdb__wal_enc_series(&w->rec, s->ref, &s->ls) != HS_OK) {
                fail = HS_ENOMEM;
                x->s = NULL;
                continue;
            }
            s->is_logged = true;
            unpin[i] |= 1;
        }
        pthread_mutex_t *mu = tsdb__stripe(&db->head, s->ref);
        pthread_mutex_lock(mu);
        int arc = tsdb__series_append(db, s, x->t, x->v, NULL);
        pthread_mutex_unlock(mu);
        if (arc == HS_OK) {
            accepted++;
        } else {
            x->s = NULL; /* dropped: rejected (counted) or ignored duplicate */
            if (arc == HS_ENOMEM)
                fail = arc;
        }
    }
    /* What was applied is logged even when the batch stopped half way, so
     * that the WAL keeps matching the head. */
    if (encode_samples(a, &w->rec, accepted) != HS_OK)
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    if (rc == HS_OK && w->rec.len > 0)
        rc = tsdb__wal_write(db, w->rec.p, w->rec.len, &mark, err);
    for (size_t i = 0; rc != HS_OK && i < a->n; i++)
        if (unpin[i] & 1) /* not in the WAL after all: log it next time */
            ((struct tsdb__series *)(unpin[i] & ~(uintptr_t)1))->is_logged = false;
    if (rc == HS_OK && fail != HS_OK)
        rc = hs_err_set(err, fail, "out of memory: batch applied in part, not acknowledged");
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < a->n; i++) {
        struct tsdb__series *s = (struct tsdb__series *)(unpin[i] & ~(uintptr_t)1);
        atomic_fetch_sub_explicit(&s->pending, 1, memory_order_release);
    }
    hs_free(unpin);
    a->n = 0;
    if (db->opt.wal_fsync == TSDB_FSYNC_BATCH && mark > 0) {
        int src = tsdb__wal_sync(db, mark, rc == HS_OK ? err : NULL);
        if (rc == HS_OK)
            rc = src;
    }
    if (rc == HS_OK)
        atomic_fetch_add_explicit(&db->st.samples_appended, accepted, memory_order_relaxed);
out:
    unpin_all(a);
    appender_free(a);
    return rc;
}
