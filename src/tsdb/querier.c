/*
 * querier.c - reading the head: select, label names and values, status.
 *
 * select() takes a snapshot: under head.lock (read) it resolves the
 * matchers to series refs, then, series by series under the stripe lock,
 * copies into the set's arena the label strings, the bytes of every chunk
 * overlapping the range (the open chunk included) and the out-of-order
 * samples in range.  After that the set shares nothing with the head:
 * appends, deletion and retention go on freely, and iteration decodes in
 * place from the copies without allocating.  A copy made under the stripe
 * lock never holds half of a sample, since appends take the same lock.
 *
 * Persisted blocks are read the same way under db->blocks_lock (read):
 * their chunk bytes are copied from the mapping, so retention may close a
 * block while a set is alive.  Where several sources hold the same series
 * they are merged: chunks are concatenated when the sources' time ranges
 * are disjoint, otherwise every sample is decoded and deduplicated (the
 * head wins a tie).  Block tombstones are applied by decoding the chunks
 * they cut into.
 *
 * The sample iterator merges the series' chunk stream with its sorted
 * out-of-order samples (the two never share a timestamp).
 */
#include "tsdb/internal.h"

#include <stdlib.h>
#include <string.h>

struct qchunk {
    const uint8_t *p;
    uint32_t len;
    int64_t mint, maxt;
};

/* One series of the set.  'chunks' are sorted and never overlap; 'ooo'
 * holds loose samples (the head's out-of-order buffer, or samples decoded
 * where a tombstone or an overlap forbade using chunks as they are),
 * sorted and never at a timestamp the chunks also hold. */
struct qseries {
    struct hs_labels ls;
    struct qchunk *chunks;
    uint32_t nchunks;
    struct tsdb__sample *ooo;
    uint32_t nooo;
    int64_t omint, omaxt; /* time range of what was copied */
    uint32_t origin;      /* 0 = head, 1 + i = block i: the later wins a tie */
};

struct tsdb_iter {
    const struct qseries *s;
    int64_t mint, maxt;
    uint32_t ci;      /* next chunk to open */
    bool in_chunk;    /* cit is live */
    int64_t cur_maxt; /* maxt of the live chunk */
    struct tsdb_chunk_iter cit;
    bool a_primed, a_has; /* chunk stream: a sample read and not yet emitted */
    int64_t a_t;
    uint64_t a_v;
    uint32_t oi; /* next out-of-order sample */
    int64_t t;   /* current sample */
    uint64_t v;
    bool valid, done;
};

struct tsdb_series_set {
    struct hs_arena arena;
    struct qseries *v;
    size_t n, cur;
    int64_t mint, maxt;
    struct tsdb_iter it;
};

struct tsdb_querier {
    struct tsdb *db;
    int64_t mint, maxt;
};

struct tsdb_querier *tsdb_querier_new(struct tsdb *db, int64_t mint_ms, int64_t maxt_ms)
{
    struct tsdb_querier *q = hs_calloc(1, sizeof(*q));
    if (q != NULL) {
        q->db = db;
        q->mint = mint_ms;
        q->maxt = maxt_ms;
    }
    return q;
}

void tsdb_querier_free(struct tsdb_querier *q)
{
    hs_free(q);
}

/* ---- snapshot ------------------------------------------------------------------ */

static bool overlaps(const struct tsdb__series *s, int64_t mint, int64_t maxt)
{
    return s->maxt != INT64_MIN && s->maxt >= mint && s->mint <= maxt;
}

static int copy_series(struct hs_arena *a, const struct tsdb__series *s, int64_t mint, int64_t maxt,
                       struct qseries *out)
{
    out->ls.n = s->ls.n;
    out->ls.v = hs_arena_alloc(a, s->ls.n * sizeof(*out->ls.v));
    if (out->ls.v == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < s->ls.n; i++) {
        const struct tsdb__sym *n = tsdb__sym_of(s->ls.v[i].name);
        const struct tsdb__sym *v = tsdb__sym_of(s->ls.v[i].value);
        out->ls.v[i].name = hs_arena_strndup(a, n->s, n->len);
        out->ls.v[i].value = hs_arena_strndup(a, v->s, v->len);
        if (out->ls.v[i].name == NULL || out->ls.v[i].value == NULL)
            return HS_ENOMEM;
    }
    out->chunks = hs_arena_alloc(a, (s->nchunks + 1) * sizeof(*out->chunks));
    if (out->chunks == NULL)
        return HS_ENOMEM;
    out->nchunks = 0;
    for (uint32_t i = 0; i <= s->nchunks; i++) {
        struct qchunk c;
        const uint8_t *src;
        if (i < s->nchunks) {
            c = (struct qchunk){NULL, s->chunks[i].len, s->chunks[i].mint, s->chunks[i].maxt};
            src = s->chunks[i].data;
        } else {
            if (s->enc.n == 0)
                break;
            c = (struct qchunk){NULL, (uint32_t)tsdb__chunk_len(&s->enc), s->enc_mint, s->enc.t};
            src = s->enc.buf;
        }
        if (c.maxt < mint || c.mint > maxt)
            continue;
        uint8_t *p = hs_arena_alloc(a, c.len);
        if (p == NULL)
            return HS_ENOMEM;
        memcpy(p, src, c.len);
        c.p = p;
        out->chunks[out->nchunks++] = c;
    }
    out->origin = 0;
    out->omint = s->mint;
    out->omaxt = s->maxt;
    out->nooo = 0;
    out->ooo = NULL;
    if (s->nooo > 0) {
        out->ooo = hs_arena_alloc(a, s->nooo * sizeof(*out->ooo));
        if (out->ooo == NULL)
            return HS_ENOMEM;
        for (uint32_t i = 0; i < s->nooo; i++)
            if (s->ooo[i].t >= mint && s->ooo[i].t <= maxt)
                out->ooo[out->nooo++] = s->ooo[i];
    }
    return HS_OK;
}

static int cmp_qseries(const void *a, const void *b)
{
    const struct qseries *x = a, *y = b;
    int c = hs_labels_cmp(&x->ls, &y->ls);
    if (c == 0)
        c = x->omint < y->omint ? -1 : x->omint > y->omint;
    return c;
}

/* ---- blocks ------------------------------------------------------------------------ */

static bool pred_matcher(void *ctx, const char *value)
{
    return tsdb_matcher_matches(ctx, value);
}

/* Series refs of block b matching every matcher that needs its label. */
static int block_postings(const struct tsdb__block *b, const struct tsdb_matcher *ms, size_t n,
                          struct tsdb__block_postings *acc, struct hs_err *err)
{
    bool have = false;
    acc->refs = NULL;
    acc->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (ms[i].matches_empty)
            continue;
        struct tsdb__block_postings p, x;
        int rc = ms[i].type == TSDB_MATCH_EQ
                     ? tsdb__block_postings_get(b, ms[i].name, ms[i].value, &p, err)
                     : tsdb__block_postings_matching(b, ms[i].name, pred_matcher, (void *)&ms[i],
                                                     &p, err);
        if (rc != HS_OK) {
            tsdb__block_postings_cleanup(acc);
            return rc;
        }
        if (!have) {
            *acc = p;
            have = true;
            continue;
        }
        rc = tsdb__block_postings_intersect(acc, &p, &x);
        tsdb__block_postings_cleanup(&p);
        tsdb__block_postings_cleanup(acc);
        if (rc != HS_OK)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        *acc = x;
        if (acc->n == 0)
            break;
    }
    return HS_OK;
}

int tsdb__block_match(const struct tsdb__block *b, const struct tsdb_matcher *ms, size_t n,
                      struct tsdb__block_postings *out, struct hs_err *err)
{
    int rc = block_postings(b, ms, n, out, err);
    if (rc != HS_OK)
        return rc;
    struct hs_arena a;
    hs_arena_init(&a, 16 * 1024, 0);
    size_t k = 0;
    for (size_t i = 0; rc == HS_OK && i < out->n; i++) {
        struct hs_labels ls;
        hs_arena_reset(&a);
        rc = tsdb__block_series(b, out->refs[i], &a, &ls, NULL, NULL, err);
        bool ok = rc == HS_OK;
        for (size_t j = 0; ok && j < n; j++)
            ok = tsdb_matcher_matches(&ms[j], hs_labels_get(&ls, ms[j].name));
        if (ok)
            out->refs[k++] = out->refs[i];
    }
    hs_arena_cleanup(&a);
    out->n = k;
    if (rc != HS_OK)
        tsdb__block_postings_cleanup(out);
    return rc;
}

static bool in_tombstone(const struct tsdb__block_tombstone *t, size_t nt, int64_t ts)
{
    for (size_t i = 0; i < nt; i++)
        if (ts >= t[i].mint && ts <= t[i].maxt)
            return true;
    return false;
}

static int grow_set(struct tsdb_series_set *set, size_t *cap)
{
    if (set->n < *cap)
        return HS_OK;
    size_t nc = *cap ? *cap * 2 : 64;
    struct qseries *v = hs_reallocarray(set->v, nc, sizeof(*v));
    if (v == NULL)
        return HS_ENOMEM;
    set->v = v;
    *cap = nc;
    return HS_OK;
}

/* Copies series 'ref' of block b (labels, chunks in range, tombstones
 * applied) into *out; *keep = false when nothing is in range. */
static int copy_block_series(struct tsdb_series_set *set, const struct tsdb__block *b, uint64_t ref,
                             const struct tsdb_matcher *ms, size_t n, struct qseries *out,
                             bool *keep, struct hs_err *err)
{
    struct hs_arena *a = &set->arena;
    struct hs_labels ls;
    struct tsdb__chunk_meta *cm;
    size_t ncm;
    *keep = false;
    int rc = tsdb__block_series(b, ref, a, &ls, &cm, &ncm, err);
    if (rc != HS_OK)
        return rc;
    for (size_t j = 0; j < n; j++)
        if (ms[j].matches_empty && !tsdb_matcher_matches(&ms[j], hs_labels_get(&ls, ms[j].name)))
            return HS_OK;
    size_t nt_all, nt = 0;
    const struct tsdb__block_tombstone *t = tsdb__block_tombstones(b, &nt_all);
    while (nt_all > 0 && t->series_ref < ref) {
        t++;
        nt_all--;
    }
    while (nt < nt_all && t[nt].series_ref == ref)
        nt++;
    memset(out, 0, sizeof(*out));
    out->chunks = hs_arena_alloc(a, (ncm ? ncm : 1) * sizeof(*out->chunks));
    size_t loose = 0;
    for (size_t i = 0; i < ncm; i++)
        loose += cm[i].num_samples;
    out->ooo = nt ? hs_arena_alloc(a, (loose ? loose : 1) * sizeof(*out->ooo)) : NULL;
    if (out->chunks == NULL || (nt && out->ooo == NULL))
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    out->omint = INT64_MAX;
    out->omaxt = INT64_MIN;
    for (size_t i = 0; i < ncm; i++) {
        struct tsdb__chunk_meta *m = &cm[i];
        if (m->maxt < set->mint || m->mint > set->maxt)
            continue;
        rc = tsdb__block_chunk(b, m, err);
        if (rc != HS_OK)
            return rc;
        if (m->encoding != TSDB_CHUNK_ENC_XOR)
            return hs_err_set(err, HS_ECORRUPT, "%s: chunk of unknown encoding %u",
                              tsdb__block_dir(b), m->encoding);
        bool cut = false;
        for (size_t k = 0; k < nt; k++)
            cut |= t[k].mint <= m->maxt && t[k].maxt >= m->mint;
        if (cut) {
            struct tsdb_chunk_iter it;
            tsdb_chunk_iter_init(&it, m->data, m->len);
            while (out->nooo < loose && tsdb_chunk_iter_next(&it))
                if (!in_tombstone(t, nt, it.t))
                    out->ooo[out->nooo++] = (struct tsdb__sample){it.t, it.v};
            if (it.err != HS_OK)
                return hs_err_set(err, HS_ECORRUPT, "%s: corrupt chunk", tsdb__block_dir(b));
        } else {
            uint8_t *p = hs_arena_alloc(a, m->len);
            if (p == NULL)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            memcpy(p, m->data, m->len);
            out->chunks[out->nchunks++] = (struct qchunk){p, m->len, m->mint, m->maxt};
        }
        out->omint = HS_MIN(out->omint, m->mint);
        out->omaxt = HS_MAX(out->omaxt, m->maxt);
    }
    if (out->nchunks == 0 && out->nooo == 0)
        return HS_OK;
    out->ls.n = ls.n;
    out->ls.v = hs_arena_alloc(a, (ls.n ? ls.n : 1) * sizeof(*out->ls.v));
    if (out->ls.v == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < ls.n; i++) {
        out->ls.v[i].name = hs_arena_strndup(a, ls.v[i].name, strlen(ls.v[i].name));
        out->ls.v[i].value = hs_arena_strndup(a, ls.v[i].value, strlen(ls.v[i].value));
        if (out->ls.v[i].name == NULL || out->ls.v[i].value == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    *keep = true;
    return HS_OK;
}

static int select_blocks(struct tsdb_querier *q, const struct tsdb_matcher *ms, size_t n,
                         size_t max_series, struct tsdb_series_set *set, struct hs_err *err)
{
    struct tsdb *db = q->db;
    int rc = HS_OK;
    size_t cap = set->n;
    pthread_rwlock_rdlock(&db->blocks_lock);
    for (size_t bi = 0; rc == HS_OK && bi < db->nblocks; bi++) {
        const struct tsdb__block *b = db->blocks[bi];
        const struct tsdb__block_meta *meta = tsdb__block_meta_of(b);
        if (meta->max_time <= q->mint || meta->min_time > q->maxt)
            continue;
        struct tsdb__block_postings p;
        rc = block_postings(b, ms, n, &p, err);
        for (size_t i = 0; rc == HS_OK && i < p.n; i++) {
            if (grow_set(set, &cap) != HS_OK) {
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
                break;
            }
            bool keep;
            rc = copy_block_series(set, b, p.refs[i], ms, n, &set->v[set->n], &keep, err);
            if (rc == HS_OK && keep) {
                set->v[set->n].origin = (uint32_t)(bi + 1);
                set->n++;
                /* Several blocks may hold one series: allow for merging. */
                if (max_series && set->n > max_series * (db->nblocks + 1))
                    rc = hs_err_set(err, HS_ETOOBIG, "more than %zu series selected", max_series);
            }
        }
        tsdb__block_postings_cleanup(&p);
    }
    pthread_rwlock_unlock(&db->blocks_lock);
    return rc;
}

struct ordered_sample {
    struct tsdb__sample s;
    size_t order; /* decoding order: earlier sources win ties */
};

static int cmp_ordered(const void *a, const void *b)
{
    const struct ordered_sample *x = a, *y = b;
    if (x->s.t != y->s.t)
        return x->s.t < y->s.t ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Decodes every sample of the run v[0..k) into one sorted, deduplicated
 * array; on equal timestamps the source with the lowest origin (the head)
 * wins: the run is processed head first and ties sort by decoding order. */
static int flatten(struct hs_arena *a, struct qseries *v, size_t k, struct qseries *out,
                   struct hs_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < k; i++) {
        total += v[i].nooo;
        for (uint32_t c = 0; c < v[i].nchunks; c++)
            total += tsdb_chunk_num_samples(v[i].chunks[c].p, v[i].chunks[c].len);
    }
    struct ordered_sample *all = hs_malloc((total ? total : 1) * sizeof(*all));
    struct tsdb__sample *res = hs_arena_alloc(a, (total ? total : 1) * sizeof(*res));
    if (all == NULL || res == NULL) {
        hs_free(all);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        for (uint32_t c = 0; c < v[i].nchunks; c++) {
            struct tsdb_chunk_iter it;
            tsdb_chunk_iter_init(&it, v[i].chunks[c].p, v[i].chunks[c].len);
            while (m < total && tsdb_chunk_iter_next(&it)) {
                all[m].s = (struct tsdb__sample){it.t, it.v};
                all[m].order = m;
                m++;
            }
        }
        for (uint32_t j = 0; j < v[i].nooo && m < total; j++) {
            all[m].s = v[i].ooo[j];
            all[m].order = m;
            m++;
        }
    }
    if (m > 1)
        qsort(all, m, sizeof(*all), cmp_ordered);
    size_t r = 0;
    for (size_t i = 0; i < m; i++) {
        if (r > 0 && res[r - 1].t == all[i].s.t)
            continue;
        res[r++] = all[i].s;
    }
    hs_free(all);
    *out = v[0];
    out->chunks = NULL;
    out->nchunks = 0;
    out->ooo = res;
    out->nooo = (uint32_t)r;
    return HS_OK;
}

/* Merges runs of equal label sets (sorted by labels, then omint). */
static int merge_duplicates(struct tsdb_series_set *set, struct hs_err *err)
{
    size_t w = 0;
    for (size_t i = 0; i < set->n;) {
        size_t k = 1;
        while (i + k < set->n && hs_labels_cmp(&set->v[i].ls, &set->v[i + k].ls) == 0)
            k++;
        struct qseries *run = &set->v[i];
        if (k == 1) {
            set->v[w++] = *run;
            i++;
            continue;
        }
        bool disjoint = true;
        size_t nch = 0, nooo = 0;
        for (size_t j = 0; j < k; j++) {
            nch += run[j].nchunks;
            nooo += run[j].nooo;
            if (j > 0 && run[j].omint <= run[j - 1].omaxt)
                disjoint = false;
        }
        struct qseries m = run[0];
        if (disjoint) {
            m.chunks = hs_arena_alloc(&set->arena, (nch ? nch : 1) * sizeof(*m.chunks));
            m.ooo = hs_arena_alloc(&set->arena, (nooo ? nooo : 1) * sizeof(*m.ooo));
            if (m.chunks == NULL || m.ooo == NULL)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            m.nchunks = 0;
            m.nooo = 0;
            for (size_t j = 0; j < k; j++) {
                if (run[j].nchunks > 0)
                    memcpy(m.chunks + m.nchunks, run[j].chunks, run[j].nchunks * sizeof(*m.chunks));
                m.nchunks += run[j].nchunks;
                if (run[j].nooo > 0)
                    memcpy(m.ooo + m.nooo, run[j].ooo, run[j].nooo * sizeof(*m.ooo));
                m.nooo += run[j].nooo;
            }
            m.omaxt = run[k - 1].omaxt;
        } else {
            /* Head first so that it wins ties. */
            for (size_t j = 1; j < k; j++) {
                if (run[j].origin < run[0].origin) {
                    struct qseries tmp = run[0];
                    run[0] = run[j];
                    run[j] = tmp;
                }
            }
            int rc = flatten(&set->arena, run, k, &m, err);
            if (rc != HS_OK)
                return rc;
        }
        set->v[w++] = m;
        i += k;
    }
    set->n = w;
    return HS_OK;
}

int tsdb_querier_select(struct tsdb_querier *q, const struct tsdb_matcher *ms, size_t n,
                        size_t max_series, struct tsdb_series_set **out, struct hs_err *err)
{
    *out = NULL;
    if (n == 0)
        return hs_err_set(err, HS_EINVAL, "select needs at least one matcher");
    int rc = tsdb__matchers_check(ms, n, err);
    if (rc != HS_OK)
        return rc;
    struct tsdb_series_set *set = hs_calloc(1, sizeof(*set));
    if (set == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    hs_arena_init(&set->arena, 64 * 1024, 0);
    set->cur = SIZE_MAX;
    set->mint = q->mint;
    set->maxt = q->maxt;
    struct tsdb__head *h = &q->db->head;
    uint32_t *refs = NULL;
    size_t nrefs = 0;
    pthread_rwlock_rdlock(&h->lock);
    rc = tsdb__head_select_refs(h, ms, n, &refs, &nrefs, err);
    if (rc == HS_OK && nrefs > 0) {
        set->v = hs_calloc(nrefs, sizeof(*set->v));
        if (set->v == NULL)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == HS_OK && i < nrefs; i++) {
        struct tsdb__series *s = tsdb__head_by_ref(h, refs[i]);
        pthread_mutex_t *mu = tsdb__stripe(h, s->ref);
        pthread_mutex_lock(mu);
        if (overlaps(s, q->mint, q->maxt)) {
            if (max_series && set->n >= max_series)
                rc = hs_err_set(err, HS_ETOOBIG, "more than %zu series selected", max_series);
            else if (copy_series(&set->arena, s, q->mint, q->maxt, &set->v[set->n]) != HS_OK)
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
            else
                set->n++;
        }
        pthread_mutex_unlock(mu);
    }
    pthread_rwlock_unlock(&h->lock);
    hs_free(refs);
    if (rc == HS_OK)
        rc = select_blocks(q, ms, n, max_series, set, err);
    if (rc == HS_OK && set->n > 1) {
        qsort(set->v, set->n, sizeof(*set->v), cmp_qseries);
        rc = merge_duplicates(set, err);
    }
    if (rc == HS_OK && max_series && set->n > max_series)
        rc = hs_err_set(err, HS_ETOOBIG, "more than %zu series selected", max_series);
    if (rc != HS_OK) {
        tsdb_series_set_free(set);
        return rc;
    }
    *out = set;
    return HS_OK;
}

bool tsdb_series_set_next(struct tsdb_series_set *s)
{
    if (s->cur == SIZE_MAX)
        s->cur = 0;
    else if (s->cur < s->n)
        s->cur++;
    return s->cur < s->n;
}

size_t tsdb_series_set_len(const struct tsdb_series_set *s)
{
    return s->n;
}

const struct hs_labels *tsdb_series_set_labels(const struct tsdb_series_set *s)
{
    return s->cur < s->n ? &s->v[s->cur].ls : NULL;
}

struct tsdb_iter *tsdb_series_set_iter(struct tsdb_series_set *s)
{
    struct tsdb_iter *it = &s->it;
    memset(it, 0, sizeof(*it));
    it->mint = s->mint;
    it->maxt = s->maxt;
    if (s->cur < s->n)
        it->s = &s->v[s->cur];
    else
        it->done = true;
    return it;
}

void tsdb_series_set_free(struct tsdb_series_set *s)
{
    if (s == NULL)
        return;
    hs_arena_cleanup(&s->arena);
    hs_free(s->v);
    hs_free(s);
}

/* ---- iteration ------------------------------------------------------------------- */

/* Reads the next sample of the chunk stream into a_t/a_v (a_has). */
static void advance_a(struct tsdb_iter *it)
{
    it->a_has = false;
    for (;;) {
        if (it->in_chunk && tsdb_chunk_iter_next(&it->cit)) {
            it->a_t = it->cit.t;
            it->a_v = it->cit.v;
            it->a_has = true;
            return;
        }
        it->in_chunk = false;
        if (it->ci >= it->s->nchunks)
            return;
        const struct qchunk *c = &it->s->chunks[it->ci++];
        tsdb_chunk_iter_init(&it->cit, c->p, c->len);
        it->cur_maxt = c->maxt;
        it->in_chunk = true;
    }
}

bool tsdb_iter_next(struct tsdb_iter *it)
{
    if (it->done)
        return false;
    const struct qseries *s = it->s;
    for (;;) {
        if (!it->a_primed) {
            advance_a(it);
            it->a_primed = true;
        }
        bool have_o = it->oi < s->nooo;
        if (it->a_has && (!have_o || it->a_t < s->ooo[it->oi].t)) {
            it->t = it->a_t;
            it->v = it->a_v;
            it->a_primed = false;
        } else if (have_o) {
            it->t = s->ooo[it->oi].t;
            it->v = s->ooo[it->oi].v;
            it->oi++;
        } else {
            break;
        }
        if (it->t < it->mint)
            continue;
        if (it->t > it->maxt)
            break;
        it->valid = true;
        return true;
    }
    it->valid = false;
    it->done = true;
    return false;
}

bool tsdb_iter_seek(struct tsdb_iter *it, int64_t t)
{
    if (it->done)
        return false;
    if (it->valid && it->t >= t)
        return true;
    const struct qseries *s = it->s;
    /* Skip whole chunks that end before t without decoding them. */
    if (it->a_primed && it->a_has && it->cur_maxt < t) {
        it->in_chunk = false;
        it->a_primed = false;
    }
    if (!it->a_primed || !it->a_has) {
        if (it->in_chunk && it->cur_maxt < t)
            it->in_chunk = false;
        if (!it->in_chunk) {
            while (it->ci < s->nchunks && s->chunks[it->ci].maxt < t)
                it->ci++;
            it->a_primed = false;
        }
    }
    while (it->oi < s->nooo && s->ooo[it->oi].t < t)
        it->oi++;
    while (tsdb_iter_next(it))
        if (it->t >= t)
            return true;
    return false;
}

void tsdb_iter_at(const struct tsdb_iter *it, int64_t *t_ms, double *v)
{
    if (t_ms != NULL)
        *t_ms = it->t;
    if (v != NULL)
        *v = tsdb__u2f(it->v);
}

/* ---- label names and values ---------------------------------------------------- */

void tsdb_strings_free(struct tsdb_strings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        hs_free(s->v[i]);
    hs_free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Turns symbol strings (possibly repeated) into a sorted unique owned list. */
static int syms_to_strings(const char **syms, size_t n, struct tsdb_strings *out)
{
    if (n > 1)
        qsort(syms, n, sizeof(*syms), cmp_ptr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || syms[k - 1] != syms[i])
            syms[k++] = syms[i];
    out->v = hs_calloc(k ? k : 1, sizeof(*out->v));
    if (out->v == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < k; i++) {
        out->v[i] = hs_strdup(syms[i]);
        if (out->v[i] == NULL) {
            tsdb_strings_free(out);
            return HS_ENOMEM;
        }
        out->n = i + 1;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_str);
    return HS_OK;
}

/* Adds copies of 'extra' to 'out' and keeps it sorted and unique. */
static int strings_merge(struct tsdb_strings *out, const char *const *extra, size_t n)
{
    if (n == 0)
        return HS_OK;
    char **v = hs_reallocarray(out->v, out->n + n, sizeof(*v));
    if (v == NULL)
        return HS_ENOMEM;
    out->v = v;
    for (size_t i = 0; i < n; i++) {
        v[out->n] = hs_strdup(extra[i]);
        if (v[out->n] == NULL)
            return HS_ENOMEM;
        out->n++;
    }
    qsort(v, out->n, sizeof(*v), cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (k > 0 && strcmp(v[k - 1], v[i]) == 0)
            hs_free(v[i]);
        else
            v[k++] = v[i];
    }
    out->n = k;
    return HS_OK;
}

/* Names (name == NULL) or values of 'name' from the blocks overlapping
 * the range, over the series matching 'ms' (all when n = 0). */
static int collect_blocks(struct tsdb_querier *q, const char *name, const struct tsdb_matcher *ms,
                          size_t n, struct tsdb_strings *out, struct hs_err *err)
{
    struct tsdb *db = q->db;
    int rc = HS_OK;
    struct hs_arena a;
    hs_arena_init(&a, 64 * 1024, 0);
    pthread_rwlock_rdlock(&db->blocks_lock);
    for (size_t bi = 0; rc == HS_OK && bi < db->nblocks; bi++) {
        const struct tsdb__block *b = db->blocks[bi];
        const struct tsdb__block_meta *meta = tsdb__block_meta_of(b);
        if (meta->max_time <= q->mint || meta->min_time > q->maxt)
            continue;
        const char **v = NULL;
        size_t nv = 0;
        hs_arena_reset(&a);
        if (n == 0) {
            rc = name == NULL ? tsdb__block_label_names(b, &a, &v, &nv, err)
                              : tsdb__block_label_values(b, name, &a, &v, &nv, err);
        } else {
            struct tsdb__block_postings p;
            rc = block_postings(b, ms, n, &p, err);
            size_t cap = 0;
            for (size_t i = 0; rc == HS_OK && i < p.n; i++) {
                struct hs_labels ls;
                struct tsdb__chunk_meta *cm;
                size_t ncm;
                rc = tsdb__block_series(b, p.refs[i], &a, &ls, &cm, &ncm, err);
                bool ok = rc == HS_OK;
                for (size_t j = 0; ok && j < n; j++)
                    ok = tsdb_matcher_matches(&ms[j], hs_labels_get(&ls, ms[j].name));
                bool in_range = false;
                for (size_t c = 0; ok && c < ncm; c++)
                    in_range |= cm[c].maxt >= q->mint && cm[c].mint <= q->maxt;
                if (!ok || !in_range)
                    continue;
                if (nv + ls.n > cap) {
                    size_t nc = (cap + ls.n) * 2;
                    const char **t = hs_arena_alloc(&a, nc * sizeof(*t));
                    if (t == NULL) {
                        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
                        break;
                    }
                    if (nv > 0)
                        memcpy(t, v, nv * sizeof(*t));
                    v = t;
                    cap = nc;
                }
                for (size_t k = 0; k < ls.n; k++) {
                    if (name == NULL)
                        v[nv++] = ls.v[k].name;
                    else if (strcmp(ls.v[k].name, name) == 0)
                        v[nv++] = ls.v[k].value;
                }
            }
            tsdb__block_postings_cleanup(&p);
        }
        if (rc == HS_OK && strings_merge(out, v, nv) != HS_OK)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    pthread_rwlock_unlock(&db->blocks_lock);
    hs_arena_cleanup(&a);
    return rc;
}

static int collect(struct tsdb_querier *q, const char *name, const struct tsdb_matcher *ms,
                   size_t n, struct tsdb_strings *out, struct hs_err *err)
{
    memset(out, 0, sizeof(*out));
    if (n > 0) {
        int rc = tsdb__matchers_check(ms, n, err);
        if (rc != HS_OK)
            return rc;
    }
    struct tsdb__head *h = &q->db->head;
    uint32_t *refs = NULL;
    size_t nrefs = 0;
    const char **syms = NULL;
    size_t nsyms = 0, cap = 0;
    int rc = HS_OK;
    pthread_rwlock_rdlock(&h->lock);
    if (n > 0)
        rc = tsdb__head_select_refs(h, ms, n, &refs, &nrefs, err);
    size_t total = n > 0 ? nrefs : h->cap_ref;
    for (size_t i = 0; rc == HS_OK && i < total; i++) {
        struct tsdb__series *s = tsdb__head_by_ref(h, n > 0 ? refs[i] : i);
        if (s == NULL)
            continue;
        pthread_mutex_t *mu = tsdb__stripe(h, s->ref);
        pthread_mutex_lock(mu);
        bool ok = overlaps(s, q->mint, q->maxt);
        pthread_mutex_unlock(mu);
        if (!ok)
            continue;
        if (nsyms + s->ls.n > cap) {
            cap = (cap + s->ls.n) * 2;
            const char **t = hs_reallocarray(syms, cap, sizeof(*t));
            if (t == NULL) {
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
                break;
            }
            syms = t;
        }
        if (name == NULL) {
            for (size_t k = 0; k < s->ls.n; k++)
                syms[nsyms++] = s->ls.v[k].name;
        } else {
            const char *v = hs_labels_get(&s->ls, name);
            if (v != NULL)
                syms[nsyms++] = v;
        }
    }
    /* Strings are copied before the lock goes: symbols may die after. */
    if (rc == HS_OK && syms_to_strings(syms, nsyms, out) != HS_OK)
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    pthread_rwlock_unlock(&h->lock);
    hs_free(refs);
    hs_free(syms);
    if (rc == HS_OK)
        rc = collect_blocks(q, name, ms, n, out, err);
    if (rc != HS_OK)
        tsdb_strings_free(out);
    return rc;
}

int tsdb_querier_label_names(struct tsdb_querier *q, const struct tsdb_matcher *ms, size_t n,
                             struct tsdb_strings *out, struct hs_err *err)
{
    return collect(q, NULL, ms, n, out, err);
}

int tsdb_querier_label_values(struct tsdb_querier *q, const char *name,
                              const struct tsdb_matcher *ms, size_t n, struct tsdb_strings *out,
                              struct hs_err *err)
{
    if (name == NULL)
        return hs_err_set(err, HS_EINVAL, "label name missing");
    return collect(q, name, ms, n, out, err);
}

/* ---- status ----------------------------------------------------------------------- */

struct top {
    struct tsdb_stat_entry *v; /* names filled at the end */
    const char **a, **b;       /* borrowed symbol strings */
    size_t n, cap;
};

static int top_init(struct top *t, size_t cap)
{
    t->v = hs_calloc(cap ? cap : 1, sizeof(*t->v));
    t->a = hs_calloc(cap ? cap : 1, sizeof(*t->a));
    t->b = hs_calloc(cap ? cap : 1, sizeof(*t->b));
    t->n = 0;
    t->cap = cap;
    return t->v && t->a && t->b ? HS_OK : HS_ENOMEM;
}

/* Keeps the 'cap' largest values (ties: the smaller name). */
static void top_add(struct top *t, const char *a, const char *b, uint64_t value)
{
    if (t->cap == 0)
        return;
    size_t at = t->n;
    while (at > 0) {
        struct tsdb_stat_entry *e = &t->v[at - 1];
        int c = e->value != value ? (e->value > value ? -1 : 1) : strcmp(t->a[at - 1], a);
        if (c == 0 && b != NULL)
            c = strcmp(t->b[at - 1], b);
        if (c < 0)
            break;
        at--;
    }
    if (at >= t->cap)
        return;
    size_t move = (t->n < t->cap ? t->n : t->cap - 1) - at;
    memmove(t->v + at + 1, t->v + at, move * sizeof(*t->v));
    memmove(t->a + at + 1, t->a + at, move * sizeof(*t->a));
    memmove(t->b + at + 1, t->b + at, move * sizeof(*t->b));
    t->v[at].value = value;
    t->a[at] = a;
    t->b[at] = b;
    if (t->n < t->cap)
        t->n++;
}

static int top_finish(struct top *t, struct tsdb_stat_entry **out, size_t *n)
{
    int rc = HS_OK;
    for (size_t i = 0; i < t->n; i++) {
        if (t->b[i] == NULL) {
            t->v[i].name = hs_strdup(t->a[i]);
        } else {
            size_t len = strlen(t->a[i]) + strlen(t->b[i]) + 2;
            t->v[i].name = hs_malloc(len);
            if (t->v[i].name != NULL)
                snprintf(t->v[i].name, len, "%s=%s", t->a[i], t->b[i]);
        }
        if (t->v[i].name == NULL)
            rc = HS_ENOMEM;
    }
    *out = t->v;
    *n = t->n;
    hs_free(t->a);
    hs_free(t->b);
    return rc;
}

int tsdb_status_get(struct tsdb *db, size_t top_n, struct tsdb_status *out, struct hs_err *err)
{
    memset(out, 0, sizeof(*out));
    struct top tm, tn, tb, tp;
    memset(&tm, 0, sizeof(tm));
    memset(&tn, 0, sizeof(tn));
    memset(&tb, 0, sizeof(tb));
    memset(&tp, 0, sizeof(tp));
    int rc = top_init(&tm, top_n);
    rc = rc ? rc : top_init(&tn, top_n);
    rc = rc ? rc : top_init(&tb, top_n);
    rc = rc ? rc : top_init(&tp, top_n);
    struct tsdb__head *h = &db->head;
    pthread_rwlock_rdlock(&h->lock);
    out->num_series = h->nseries;
    for (size_t i = 0; rc == HS_OK && i < h->index.cap; i++) {
        const struct tsdb__lname *ln = h->index.names[i];
        if (ln == NULL)
            continue;
        out->num_label_pairs += ln->n;
        top_add(&tn, ln->name->s, NULL, ln->n);
        top_add(&tb, ln->name->s, NULL, ln->value_bytes);
        bool is_name = strcmp(ln->name->s, "__name__") == 0;
        for (size_t j = 0; j < ln->cap; j++) {
            const struct tsdb__lvalue *lv = &ln->vals[j];
            if (lv->value == NULL)
                continue;
            if (is_name)
                top_add(&tm, lv->value->s, NULL, lv->p.n);
            top_add(&tp, ln->name->s, lv->value->s, lv->p.n);
        }
    }
    /* Copy the names while the symbols are alive. */
    int r1 = top_finish(&tm, &out->series_count_by_metric_name, &out->n_by_metric);
    int r2 = top_finish(&tn, &out->label_value_count_by_name, &out->n_by_label_name);
    int r3 = top_finish(&tb, &out->memory_in_bytes_by_label_name, &out->n_by_memory);
    int r4 = top_finish(&tp, &out->series_count_by_label_pair, &out->n_by_pair);
    pthread_rwlock_unlock(&h->lock);
    if (rc == HS_OK && (r1 || r2 || r3 || r4))
        rc = HS_ENOMEM;
    out->chunk_count = atomic_load(&db->st.chunks);
    out->min_time_ms = atomic_load(&h->min_t);
    out->max_time_ms = atomic_load(&h->max_t);
    out->wal_bytes = tsdb__wal_size(db, NULL);
    if (rc != HS_OK) {
        tsdb_status_cleanup(out);
        return hs_err_set(err, rc, "out of memory");
    }
    return HS_OK;
}

static void entries_free(struct tsdb_stat_entry *e, size_t n)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        hs_free(e[i].name);
    hs_free(e);
}

void tsdb_status_cleanup(struct tsdb_status *st)
{
    entries_free(st->series_count_by_metric_name, st->n_by_metric);
    entries_free(st->label_value_count_by_name, st->n_by_label_name);
    entries_free(st->memory_in_bytes_by_label_name, st->n_by_memory);
    entries_free(st->series_count_by_label_pair, st->n_by_pair);
    memset(st, 0, sizeof(*st));
}
