/*
 * head.c - the in-memory head: series, their chunks, the label hash table
 * and the ref table.
 *
 * A series has a stable ref (uint32, never reused while the process runs,
 * and kept across restarts through the WAL), an interned label set, closed
 * chunks (immutable), one open chunk being appended to, and a small sorted
 * buffer of out-of-order samples that the querier merges in.  Chunks are cut
 * at TSDB_CHUNK_MAX_SAMPLES samples and at every multiple of
 * block_duration_ms, so cutting the head into blocks later never splits a
 * chunk.
 *
 * Locking: head.lock (rwlock) guards the tables (by_ref, by_hash, symbols,
 * index); a stripe mutex (ref % TSDB__STRIPES) guards one series' samples.
 * A series is freed only under head.lock held for writing, and only when no
 * open appender has it pinned ('pending'), so a pointer found under the read
 * lock and pinned stays valid until unpinned.  Readers copy what they need
 * (label strings, chunk bytes) under these locks and never see a half
 * appended sample: an append and a copy of the same series are serialised by
 * the stripe lock.
 */
#include "tsdb/internal.h"

#include <stdlib.h>
#include <string.h>

#define OOO_MAX 1024 /* buffered out-of-order samples before they are folded in */

int tsdb__head_init(struct tsdb__head *h)
{
    memset(h, 0, sizeof(*h));
    if (pthread_rwlock_init(&h->lock, NULL) != 0)
        return HS_ENOMEM;
    for (size_t i = 0; i < TSDB__STRIPES; i++)
        pthread_mutex_init(&h->stripes[i], NULL);
    h->next_ref = 1;
    atomic_store(&h->min_t, INT64_MAX);
    atomic_store(&h->max_t, INT64_MIN);
    return HS_OK;
}

static void series_free(struct tsdb__head *h, struct tsdb__series *s)
{
    tsdb__series_free_data(s);
    for (size_t i = 0; i < s->ls.n; i++) {
        tsdb__sym_release(&h->syms, tsdb__sym_of(s->ls.v[i].name));
        tsdb__sym_release(&h->syms, tsdb__sym_of(s->ls.v[i].value));
    }
    hs_free(s->ls.v);
    hs_free(s);
}

void tsdb__series_free_data(struct tsdb__series *s)
{
    for (uint32_t i = 0; i < s->nchunks; i++)
        hs_free(s->chunks[i].data);
    hs_free(s->chunks);
    s->chunks = NULL;
    s->nchunks = s->capchunks = 0;
    tsdb__chunk_enc_cleanup(&s->enc);
    hs_free(s->ooo);
    s->ooo = NULL;
    s->nooo = s->capooo = 0;
}

void tsdb__head_cleanup(struct tsdb *db)
{
    struct tsdb__head *h = &db->head;
    for (size_t i = 0; i < h->cap_ref; i++)
        if (h->by_ref[i] != NULL)
            series_free(h, h->by_ref[i]);
    hs_free(h->by_ref);
    hs_free(h->by_hash);
    tsdb__index_cleanup(&h->index);
    tsdb__symtab_cleanup(&h->syms);
    for (size_t i = 0; i < TSDB__STRIPES; i++)
        pthread_mutex_destroy(&h->stripes[i]);
    pthread_rwlock_destroy(&h->lock);
}

struct tsdb__series *tsdb__head_by_ref(struct tsdb__head *h, uint64_t ref)
{
    return ref < h->cap_ref ? h->by_ref[ref] : NULL;
}

/* ---- lookup and creation ----------------------------------------------------- */

static struct tsdb__series *find_by_labels(struct tsdb__head *h, const struct hs_labels *ls,
                                           uint64_t hash)
{
    if (h->cap_hash == 0)
        return NULL;
    for (struct tsdb__series *s = h->by_hash[hash & (h->cap_hash - 1)]; s; s = s->next_hash)
        if (s->hash == hash && hs_labels_cmp(&s->ls, ls) == 0)
            return s;
    return NULL;
}

static int hash_grow(struct tsdb__head *h)
{
    size_t cap = h->cap_hash ? h->cap_hash * 2 : 1024;
    struct tsdb__series **t = hs_calloc(cap, sizeof(*t));
    if (t == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < h->cap_hash; i++) {
        struct tsdb__series *s = h->by_hash[i], *next;
        for (; s != NULL; s = next) {
            next = s->next_hash;
            size_t b = s->hash & (cap - 1);
            s->next_hash = t[b];
            t[b] = s;
        }
    }
    hs_free(h->by_hash);
    h->by_hash = t;
    h->cap_hash = cap;
    return HS_OK;
}

static void hash_unlink(struct tsdb__head *h, struct tsdb__series *s)
{
    struct tsdb__series **pp = &h->by_hash[s->hash & (h->cap_hash - 1)];
    while (*pp != NULL && *pp != s)
        pp = &(*pp)->next_hash;
    if (*pp == s)
        *pp = s->next_hash;
}

static int ref_reserve(struct tsdb__head *h, uint32_t ref)
{
    if (ref < h->cap_ref)
        return HS_OK;
    size_t cap = h->cap_ref ? h->cap_ref : 1024;
    while (cap <= ref)
        cap *= 2;
    struct tsdb__series **t = hs_reallocarray(h->by_ref, cap, sizeof(*t));
    if (t == NULL)
        return HS_ENOMEM;
    memset(t + h->cap_ref, 0, (cap - h->cap_ref) * sizeof(*t));
    h->by_ref = t;
    h->cap_ref = cap;
    return HS_OK;
}

/* Builds the series (labels interned) without linking it anywhere. */
static struct tsdb__series *series_new(struct tsdb__head *h, const struct hs_labels *ls,
                                       uint64_t hash)
{
    struct tsdb__series *s = hs_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->ls.v = hs_calloc(ls->n, sizeof(*s->ls.v));
    if (s->ls.v == NULL) {
        hs_free(s);
        return NULL;
    }
    for (size_t i = 0; i < ls->n; i++) {
        struct tsdb__sym *n = tsdb__sym_intern(&h->syms, ls->v[i].name, strlen(ls->v[i].name));
        struct tsdb__sym *v =
            n ? tsdb__sym_intern(&h->syms, ls->v[i].value, strlen(ls->v[i].value)) : NULL;
        if (v == NULL) {
            tsdb__sym_release(&h->syms, n);
            series_free(h, s);
            return NULL;
        }
        s->ls.v[i].name = n->s;
        s->ls.v[i].value = v->s;
        s->ls.n = i + 1;
    }
    s->hash = hash;
    s->mint = INT64_MAX;
    s->maxt = INT64_MIN;
    return s;
}

static int check_limits(struct tsdb *db, const struct hs_labels *ls, struct hs_err *err)
{
    const struct tsdb_options *o = &db->opt;
    if (ls->n == 0)
        return hs_err_set(err, HS_EINVAL, "empty label set");
    if (o->max_labels && ls->n > o->max_labels)
        return hs_err_set(err, HS_ETOOBIG, "series has %zu labels, limit is %zu", ls->n,
                          o->max_labels);
    for (size_t i = 0; i < ls->n; i++) {
        size_t nl = strlen(ls->v[i].name), vl = strlen(ls->v[i].value);
        if (o->max_label_name_len && nl > o->max_label_name_len)
            return hs_err_set(err, HS_ETOOBIG, "label name of %zu bytes, limit is %zu", nl,
                              o->max_label_name_len);
        if (o->max_label_value_len && vl > o->max_label_value_len)
            return hs_err_set(err, HS_ETOOBIG, "label %s value of %zu bytes, limit is %zu",
                              ls->v[i].name, vl, o->max_label_value_len);
        if (nl > UINT32_MAX / 2 || vl > UINT32_MAX / 2)
            return hs_err_set(err, HS_ETOOBIG, "label too long");
    }
    return HS_OK;
}

static int create_locked(struct tsdb *db, const struct hs_labels *ls, uint64_t hash,
                         uint32_t ref_hint, struct tsdb__series **out, struct hs_err *err)
{
    struct tsdb__head *h = &db->head;
    if (db->opt.max_series && h->nseries >= db->opt.max_series && !db->replaying) {
        atomic_fetch_add(&db->st.limit, 1);
        return hs_err_set(err, HS_ETOOBIG, "series limit of %zu reached", db->opt.max_series);
    }
    uint32_t ref = ref_hint ? ref_hint : h->next_ref;
    if (ref == UINT32_MAX)
        return hs_err_set(err, HS_ETOOBIG, "series refs exhausted");
    /* Refs are dense: one far beyond the highest seen is a corrupt record
     * that would make the ref table huge. */
    if (ref_hint && ref_hint - (uint64_t)h->next_ref > (1u << 26) && ref_hint > h->next_ref)
        return hs_err_set(err, HS_ECORRUPT, "series ref %u far beyond %u", ref_hint, h->next_ref);
    if (ref_hint && tsdb__head_by_ref(h, ref_hint) != NULL)
        return hs_err_set(err, HS_ECORRUPT, "series ref %u reused for different labels", ref);
    if (ref_reserve(h, ref) != HS_OK || ((h->nseries + 1) > h->cap_hash && hash_grow(h) != HS_OK))
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    struct tsdb__series *s = series_new(h, ls, hash);
    if (s == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    s->ref = ref;
    if (tsdb__index_add(&h->index, s) != HS_OK) {
        series_free(h, s);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    h->by_ref[ref] = s;
    size_t b = hash & (h->cap_hash - 1);
    s->next_hash = h->by_hash[b];
    h->by_hash[b] = s;
    h->nseries++;
    if (ref >= h->next_ref)
        h->next_ref = ref + 1;
    atomic_fetch_add(&db->st.series_created, 1);
    *out = s;
    return HS_OK;
}

int tsdb__head_get_or_create(struct tsdb *db, const struct hs_labels *ls, uint32_t ref_hint,
                             bool pin, struct tsdb__series **out, bool *created, struct hs_err *err)
{
    struct tsdb__head *h = &db->head;
    *created = false;
    if (ls == NULL || (ls->n > 0 && ls->v == NULL))
        return hs_err_set(err, HS_EINVAL, "no label set");
    if (!hs_labels_valid(ls))
        return hs_err_set(err, HS_EINVAL,
                          "invalid label set (names must be valid, unique "
                          "and sorted)");
    /* Drop empty values: {a=""} is the same series as {}. */
    struct hs_label stack[64], *v = stack;
    size_t n = 0;
    if (ls->n > HS_ARRAY_LEN(stack)) {
        v = hs_calloc(ls->n, sizeof(*v));
        if (v == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ls->n; i++)
        if (ls->v[i].value != NULL && ls->v[i].value[0] != '\0')
            v[n++] = ls->v[i];
    struct hs_labels fl = {n, v};
    int rc = check_limits(db, &fl, err);
    if (rc != HS_OK) {
        if (rc == HS_ETOOBIG)
            atomic_fetch_add(&db->st.limit, 1);
        goto out;
    }
    uint64_t hash = hs_labels_hash(&fl);
    pthread_rwlock_rdlock(&h->lock);
    struct tsdb__series *s = find_by_labels(h, &fl, hash);
    if (s != NULL && pin)
        atomic_fetch_add(&s->pending, 1);
    pthread_rwlock_unlock(&h->lock);
    if (s == NULL) {
        pthread_rwlock_wrlock(&h->lock);
        s = find_by_labels(h, &fl, hash);
        if (s == NULL) {
            rc = create_locked(db, &fl, hash, ref_hint, &s, err);
            *created = rc == HS_OK;
        }
        if (rc == HS_OK && pin)
            atomic_fetch_add(&s->pending, 1);
        pthread_rwlock_unlock(&h->lock);
    }
    if (rc == HS_OK)
        *out = s;
out:
    if (v != stack)
        hs_free(v);
    return rc;
}

/* ---- samples ------------------------------------------------------------------ */

/* Finds the value at exactly t in the closed and open chunks. */
static bool chunk_value_at(const struct tsdb__series *s, int64_t t, uint64_t *v)
{
    struct tsdb_chunk_iter it;
    for (uint32_t i = 0; i <= s->nchunks; i++) {
        const uint8_t *p;
        size_t len;
        if (i < s->nchunks) {
            if (t < s->chunks[i].mint || t > s->chunks[i].maxt)
                continue;
            p = s->chunks[i].data;
            len = s->chunks[i].len;
        } else {
            if (s->enc.n == 0 || t < s->enc_mint)
                continue;
            p = s->enc.buf;
            len = tsdb__chunk_len(&s->enc);
        }
        tsdb_chunk_iter_init(&it, p, len);
        while (tsdb_chunk_iter_next(&it)) {
            if (it.t == t) {
                *v = it.v;
                return true;
            }
            if (it.t > t)
                break;
        }
    }
    return false;
}

static size_t ooo_lower(const struct tsdb__series *s, int64_t t)
{
    size_t lo = 0, hi = s->nooo;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->ooo[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int tsdb__series_check(struct tsdb *db, const struct tsdb__series *s, int64_t t, uint64_t v,
                       bool count, struct hs_err *err)
{
    int64_t window = db->opt.ooo_window_ms;
    /* Below the floor the data lives in blocks: the head takes no more. */
    if (!db->replaying && t < atomic_load_explicit(&db->head_floor, memory_order_relaxed)) {
        if (count)
            atomic_fetch_add(&db->st.too_old, 1);
        return hs_err_set(err, HS_EINVAL, "too old sample (already cut into a block)");
    }
    if (!db->replaying && db->opt.retention_ms > 0) {
        int64_t max = atomic_load_explicit(&db->head.max_t, memory_order_relaxed);
        if (max != INT64_MIN && t < max - db->opt.retention_ms) {
            if (count)
                atomic_fetch_add(&db->st.too_old, 1);
            return hs_err_set(err, HS_EINVAL, "too old sample");
        }
    }
    if (s->maxt == INT64_MIN || t > s->maxt)
        return HS_OK;
    uint64_t old;
    bool exists;
    if (t == s->maxt) {
        exists = true;
        old = s->last_v;
    } else {
        /* Replay re-applies what was accepted, whatever the window was then. */
        if (!db->replaying && (window <= 0 || (uint64_t)s->maxt - (uint64_t)t > (uint64_t)window)) {
            if (count)
                atomic_fetch_add(&db->st.ooo, 1);
            return hs_err_set(err, HS_EINVAL, "out of order sample");
        }
        size_t i = ooo_lower(s, t);
        exists = i < s->nooo && s->ooo[i].t == t;
        if (exists)
            old = s->ooo[i].v;
        else
            exists = chunk_value_at(s, t, &old);
    }
    if (!exists)
        return 2;
    if (old == v) {
        if (count)
            atomic_fetch_add(&db->st.dup_ignored, 1);
        return 1;
    }
    if (count)
        atomic_fetch_add(&db->st.dup, 1);
    return hs_err_set(err, HS_EINVAL, "duplicate sample for timestamp");
}

static int64_t chunk_end(int64_t t, int64_t block_ms)
{
    if (block_ms <= 0)
        return INT64_MAX;
    int64_t q = t / block_ms;
    if (t % block_ms < 0)
        q--;
    if (q >= INT64_MAX / block_ms - 1)
        return INT64_MAX;
    return (q + 1) * block_ms;
}

/* Moves the open chunk into the closed list. */
static int cut(struct tsdb__series *s)
{
    if (s->nchunks == s->capchunks) {
        uint32_t cap = s->capchunks ? s->capchunks * 2 : 2;
        struct tsdb__chunk *c = hs_reallocarray(s->chunks, cap, sizeof(*c));
        if (c == NULL)
            return HS_ENOMEM;
        s->chunks = c;
        s->capchunks = cap;
    }
    struct tsdb__chunk *c = &s->chunks[s->nchunks];
    c->mint = s->enc_mint;
    c->maxt = s->enc.t;
    c->n = s->enc.n;
    size_t len;
    c->data = tsdb__chunk_enc_detach(&s->enc, &len);
    c->len = (uint32_t)len;
    s->nchunks++;
    return HS_OK;
}

/* Appends in order to the open chunk, cutting as needed. */
static int push(struct tsdb *db, struct tsdb__series *s, int64_t t, uint64_t v)
{
    if (s->enc.n > 0 && (s->enc.n >= TSDB_CHUNK_MAX_SAMPLES || t >= s->enc_end)) {
        int rc = cut(s);
        if (rc != HS_OK)
            return rc;
    }
    bool fresh = s->enc.n == 0;
    int rc = tsdb__chunk_append(&s->enc, t, v);
    if (rc != HS_OK)
        return rc;
    if (fresh) {
        s->enc_mint = t;
        s->enc_end = chunk_end(t, db->opt.block_duration_ms);
        atomic_fetch_add_explicit(&db->st.chunks, 1, memory_order_relaxed);
    }
    return HS_OK;
}

static void bounds_update(struct tsdb__head *h, int64_t t)
{
    int64_t cur = atomic_load_explicit(&h->max_t, memory_order_relaxed);
    while (t > cur && !atomic_compare_exchange_weak(&h->max_t, &cur, t))
        ;
    cur = atomic_load_explicit(&h->min_t, memory_order_relaxed);
    while (t < cur && !atomic_compare_exchange_weak(&h->min_t, &cur, t))
        ;
}

static int cmp_sample(const void *a, const void *b)
{
    int64_t x = ((const struct tsdb__sample *)a)->t, y = ((const struct tsdb__sample *)b)->t;
    return x < y ? -1 : x > y;
}

static uint32_t chunk_count(const struct tsdb__series *s)
{
    return s->nchunks + (s->enc.n > 0);
}

/*
 * Re-encodes the series from all its samples (chunks + out-of-order
 * buffer), leaving out [dmin, dmax].  On ENOMEM the series is unchanged.
 */
static int rebuild(struct tsdb *db, struct tsdb__series *s, int64_t dmin, int64_t dmax)
{
    size_t total = s->nooo + s->enc.n;
    for (uint32_t i = 0; i < s->nchunks; i++)
        total += s->chunks[i].n;
    struct tsdb__sample *all = hs_calloc(total ? total : 1, sizeof(*all));
    if (all == NULL)
        return HS_ENOMEM;
    size_t n = 0;
    struct tsdb_chunk_iter it;
    for (uint32_t i = 0; i <= s->nchunks; i++) {
        if (i < s->nchunks)
            tsdb_chunk_iter_init(&it, s->chunks[i].data, s->chunks[i].len);
        else
            tsdb_chunk_iter_init(&it, s->enc.buf, tsdb__chunk_len(&s->enc));
        while (n < total && tsdb_chunk_iter_next(&it))
            if (it.t < dmin || it.t > dmax)
                all[n++] = (struct tsdb__sample){it.t, it.v};
    }
    for (uint32_t i = 0; i < s->nooo && n < total; i++)
        if (s->ooo[i].t < dmin || s->ooo[i].t > dmax)
            all[n++] = s->ooo[i];
    if (n > 1)
        qsort(all, n, sizeof(*all), cmp_sample);
    struct tsdb__series tmp;
    memset(&tmp, 0, sizeof(tmp));
    uint64_t before = atomic_load(&db->st.chunks);
    int rc = HS_OK;
    for (size_t i = 0; i < n && rc == HS_OK; i++)
        if (i == 0 || all[i].t > all[i - 1].t)
            rc = push(db, &tmp, all[i].t, all[i].v);
    if (rc != HS_OK) {
        atomic_fetch_sub(&db->st.chunks, chunk_count(&tmp));
        tsdb__series_free_data(&tmp);
        hs_free(all);
        return rc;
    }
    (void)before;
    atomic_fetch_sub(&db->st.chunks, chunk_count(s));
    tsdb__series_free_data(s);
    s->chunks = tmp.chunks;
    s->nchunks = tmp.nchunks;
    s->capchunks = tmp.capchunks;
    s->enc = tmp.enc;
    s->enc_mint = tmp.enc_mint;
    s->enc_end = tmp.enc_end;
    if (n > 0) {
        s->mint = all[0].t;
        s->maxt = all[n - 1].t;
        s->last_v = all[n - 1].v;
    } else {
        s->mint = INT64_MAX;
        s->maxt = INT64_MIN;
    }
    hs_free(all);
    return HS_OK;
}

static int ooo_insert(struct tsdb *db, struct tsdb__series *s, int64_t t, uint64_t v)
{
    if (s->nooo >= OOO_MAX) {
        int rc = rebuild(db, s, INT64_MAX, INT64_MIN);
        if (rc != HS_OK)
            return rc;
    }
    if (s->nooo == s->capooo) {
        uint32_t cap = s->capooo ? s->capooo * 2 : 4;
        struct tsdb__sample *o = hs_reallocarray(s->ooo, cap, sizeof(*o));
        if (o == NULL)
            return HS_ENOMEM;
        s->ooo = o;
        s->capooo = cap;
    }
    size_t i = ooo_lower(s, t);
    memmove(s->ooo + i + 1, s->ooo + i, (s->nooo - i) * sizeof(*s->ooo));
    s->ooo[i] = (struct tsdb__sample){t, v};
    s->nooo++;
    if (t < s->mint)
        s->mint = t;
    return HS_OK;
}

int tsdb__series_append(struct tsdb *db, struct tsdb__series *s, int64_t t, uint64_t v,
                        struct hs_err *err)
{
    int rc = tsdb__series_check(db, s, t, v, !db->replaying, err);
    if (rc < 0 || rc == 1)
        return rc;
    if (rc == 2) {
        rc = ooo_insert(db, s, t, v);
        if (rc != HS_OK)
            return hs_err_set(err, rc, "out of memory");
        if (!db->replaying)
            atomic_fetch_add_explicit(&db->st.ooo_appended, 1, memory_order_relaxed);
    } else {
        rc = push(db, s, t, v);
        if (rc != HS_OK)
            return hs_err_set(err, rc, "out of memory");
        if (s->maxt == INT64_MIN)
            s->mint = t;
        s->maxt = t;
        s->last_v = v;
    }
    bounds_update(&db->head, t);
    return HS_OK;
}

int tsdb__series_add_chunk(struct tsdb *db, struct tsdb__series *s, uint8_t *data, size_t len)
{
    struct tsdb_chunk_iter it;
    tsdb_chunk_iter_init(&it, data, len);
    int64_t mint = 0, maxt = 0;
    uint64_t last = 0;
    unsigned n = 0;
    while (tsdb_chunk_iter_next(&it)) {
        if (n == 0)
            mint = it.t;
        maxt = it.t;
        last = it.v;
        n++;
    }
    if (it.err != HS_OK || n == 0 || (s->maxt != INT64_MIN && mint <= s->maxt) ||
        len > UINT32_MAX) {
        hs_free(data);
        return HS_ECORRUPT;
    }
    /* Close the open chunk first so chunks stay in time order. */
    if (s->enc.n > 0 && cut(s) != HS_OK) {
        hs_free(data);
        return HS_ENOMEM;
    }
    if (s->nchunks == s->capchunks) {
        uint32_t cap = s->capchunks ? s->capchunks * 2 : 2;
        struct tsdb__chunk *c = hs_reallocarray(s->chunks, cap, sizeof(*c));
        if (c == NULL) {
            hs_free(data);
            return HS_ENOMEM;
        }
        s->chunks = c;
        s->capchunks = cap;
    }
    s->chunks[s->nchunks++] = (struct tsdb__chunk){mint, maxt, data, (uint32_t)len, (uint16_t)n};
    if (s->maxt == INT64_MIN)
        s->mint = mint;
    s->maxt = maxt;
    s->last_v = last;
    atomic_fetch_add(&db->st.chunks, 1);
    bounds_update(&db->head, mint);
    bounds_update(&db->head, maxt);
    return HS_OK;
}

int tsdb__series_delete_range(struct tsdb *db, struct tsdb__series *s, int64_t mint, int64_t maxt)
{
    if (s->maxt == INT64_MIN || maxt < s->mint || mint > s->maxt)
        return HS_OK;
    /* Whole closed chunks before the cut are dropped without decoding. */
    if (mint <= s->mint && s->nooo == 0) {
        uint32_t k = 0;
        while (k < s->nchunks && s->chunks[k].maxt <= maxt)
            k++;
        if (k > 0 && (k < s->nchunks || s->enc.n > 0)) {
            for (uint32_t i = 0; i < k; i++)
                hs_free(s->chunks[i].data);
            memmove(s->chunks, s->chunks + k, (s->nchunks - k) * sizeof(*s->chunks));
            s->nchunks -= k;
            atomic_fetch_sub(&db->st.chunks, k);
            s->mint = s->nchunks ? s->chunks[0].mint : s->enc_mint;
            if (maxt < s->mint)
                return HS_OK;
        }
    }
    return rebuild(db, s, mint, maxt);
}

/* Drops samples older than 'horizon' (retention): whole chunks only, plus
 * the out-of-order buffer.  Stripe lock held. */
void tsdb__series_truncate(struct tsdb *db, struct tsdb__series *s, int64_t horizon)
{
    uint32_t k = 0;
    while (k < s->nchunks && s->chunks[k].maxt < horizon)
        k++;
    if (k > 0) {
        for (uint32_t i = 0; i < k; i++)
            hs_free(s->chunks[i].data);
        memmove(s->chunks, s->chunks + k, (s->nchunks - k) * sizeof(*s->chunks));
        s->nchunks -= k;
        atomic_fetch_sub(&db->st.chunks, k);
    }
    if (s->nchunks == 0 && s->enc.n > 0 && s->enc.t < horizon) {
        tsdb__chunk_enc_cleanup(&s->enc);
        atomic_fetch_sub(&db->st.chunks, 1);
    }
    size_t j = ooo_lower(s, horizon);
    if (j > 0) {
        memmove(s->ooo, s->ooo + j, (s->nooo - j) * sizeof(*s->ooo));
        s->nooo -= (uint32_t)j;
    }
    int64_t mint = s->nchunks ? s->chunks[0].mint : s->enc.n ? s->enc_mint : INT64_MAX;
    if (s->nooo > 0 && s->ooo[0].t < mint)
        mint = s->ooo[0].t;
    if (mint == INT64_MAX) {
        s->mint = INT64_MAX;
        s->maxt = INT64_MIN;
    } else {
        s->mint = mint;
    }
}

void tsdb__head_gc(struct tsdb *db, const uint32_t *only, size_t n_only)
{
    struct tsdb__head *h = &db->head;
    pthread_rwlock_wrlock(&h->lock);
    size_t n = only ? n_only : h->cap_ref;
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        size_t ref = only ? only[i] : i;
        struct tsdb__series *s = tsdb__head_by_ref(h, ref);
        if (s == NULL)
            continue;
        pthread_mutex_t *mu = tsdb__stripe(h, s->ref);
        pthread_mutex_lock(mu);
        bool empty = s->maxt == INT64_MIN && atomic_load(&s->pending) == 0;
        if (!empty && !only) {
            mint = HS_MIN(mint, s->mint);
            maxt = HS_MAX(maxt, s->maxt);
        }
        pthread_mutex_unlock(mu);
        if (!empty)
            continue;
        tsdb__index_remove(&h->index, s);
        hash_unlink(h, s);
        h->by_ref[s->ref] = NULL;
        h->nseries--;
        atomic_fetch_add(&db->st.series_removed, 1);
        series_free(h, s);
    }
    if (!only) {
        atomic_store(&h->min_t, mint);
        atomic_store(&h->max_t, maxt);
    }
    pthread_rwlock_unlock(&h->lock);
}

/* ---- selection ------------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Refs of series whose label 'm->name' has a (non-empty) value matching m. */
static int postings_for(struct tsdb__head *h, const struct tsdb_matcher *m, uint32_t **out,
                        size_t *nout)
{
    *out = NULL;
    *nout = 0;
    struct tsdb__sym *name = tsdb__sym_find(&h->syms, m->name, strlen(m->name));
    struct tsdb__lname *ln = tsdb__index_name(&h->index, name);
    if (ln == NULL)
        return HS_OK;
    if (m->type == TSDB_MATCH_EQ) {
        struct tsdb__sym *val = tsdb__sym_find(&h->syms, m->value, strlen(m->value));
        const struct tsdb__postings *p = tsdb__lname_postings(ln, val);
        if (p == NULL || p->n == 0)
            return HS_OK;
        *out = hs_malloc(p->n * sizeof(**out));
        if (*out == NULL)
            return HS_ENOMEM;
        memcpy(*out, p->refs, p->n * sizeof(**out));
        *nout = p->n;
        return HS_OK;
    }
    size_t total = 0;
    for (size_t i = 0; i < ln->cap; i++)
        if (ln->vals[i].value != NULL && tsdb_matcher_matches(m, ln->vals[i].value->s))
            total += ln->vals[i].p.n;
    if (total == 0)
        return HS_OK;
    uint32_t *r = hs_malloc(total * sizeof(*r));
    if (r == NULL)
        return HS_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < ln->cap; i++) {
        const struct tsdb__lvalue *lv = &ln->vals[i];
        if (lv->value != NULL && tsdb_matcher_matches(m, lv->value->s)) {
            memcpy(r + n, lv->p.refs, lv->p.n * sizeof(*r));
            n += lv->p.n;
        }
    }
    if (n > 1)
        qsort(r, n, sizeof(*r), cmp_u32); /* values hold disjoint series: no duplicates */
    *out = r;
    *nout = n;
    return HS_OK;
}

static size_t intersect(uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j])
            i++;
        else if (a[i] > b[j])
            j++;
        else {
            a[k++] = a[i];
            i++;
            j++;
        }
    }
    return k;
}

int tsdb__head_select_refs(struct tsdb__head *h, const struct tsdb_matcher *ms, size_t n,
                           uint32_t **out, size_t *nout, struct hs_err *err)
{
    uint32_t *acc = NULL, *tmp = NULL;
    size_t nacc = 0, ntmp;
    bool have = false;
    /* Postings for matchers that need the label present (EQ first: cheap). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            const struct tsdb_matcher *m = &ms[i];
            if (m->matches_empty || (pass == 0) != (m->type == TSDB_MATCH_EQ))
                continue;
            if (have && nacc == 0)
                break;
            if (postings_for(h, m, &tmp, &ntmp) != HS_OK) {
                hs_free(acc);
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            }
            if (!have) {
                acc = tmp;
                nacc = ntmp;
                have = true;
            } else {
                nacc = intersect(acc, nacc, tmp, ntmp);
                hs_free(tmp);
            }
            tmp = NULL;
        }
    }
    if (!have) {
        /* Every matcher matches "": start from all series. */
        acc = hs_malloc((h->nseries ? h->nseries : 1) * sizeof(*acc));
        if (acc == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        for (size_t r = 0; r < h->cap_ref && nacc < h->nseries; r++)
            if (h->by_ref[r] != NULL)
                acc[nacc++] = (uint32_t)r;
    }
    /* Matchers that also accept an absent label are checked on the labels. */
    size_t k = 0;
    for (size_t i = 0; i < nacc; i++) {
        struct tsdb__series *s = tsdb__head_by_ref(h, acc[i]);
        bool ok = s != NULL;
        for (size_t j = 0; ok && j < n; j++)
            if (ms[j].matches_empty)
                ok = tsdb_matcher_matches(&ms[j], hs_labels_get(&s->ls, ms[j].name));
        if (ok)
            acc[k++] = acc[i];
    }
    *out = acc;
    *nout = k;
    return HS_OK;
}

int tsdb__series_fold_ooo(struct tsdb *db, struct tsdb__series *s)
{
    return s->nooo == 0 ? HS_OK : rebuild(db, s, INT64_MAX, INT64_MIN);
}

int tsdb__series_close_open_chunk(struct tsdb__series *s)
{
    return s->enc.n == 0 ? HS_OK : cut(s);
}
