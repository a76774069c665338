/*
 * storage_mem.c - an in-memory implementation of the promql storage
 * interface, for the promqltest runner, unit tests and small uses.
 *
 * Series are kept in an array sorted by labels (binary search on insert);
 * each holds its samples in time order.  A select copies the matching
 * series pointers into a set and walks them; no locking: one writer and no
 * concurrent readers.
 */
#include "promql/promql.h"

#include <stdlib.h>
#include <string.h>

struct mem_series {
    struct hs_labels *labels; /* hs_labels_dup: one allocation */
    int64_t *t;
    double *v;
    int64_t *st; /* start timestamps, NULL until one is non-zero */
    size_t n, cap;
};

struct promql_mem {
    struct mem_series **s;
    size_t n, cap;
};

struct mem_set {
    struct mem_series **s;
    size_t n;
    size_t cur; /* index of the current series + 1; 0 before the first */
    size_t pos; /* iterator position in the current series */
    int64_t mint, maxt;
};

struct promql_mem *promql_mem_new(void)
{
    return hs_calloc(1, sizeof(struct promql_mem));
}

void promql_mem_clear(struct promql_mem *m)
{
    for (size_t i = 0; i < m->n; i++) {
        hs_labels_free(m->s[i]->labels);
        hs_free(m->s[i]->t);
        hs_free(m->s[i]->v);
        hs_free(m->s[i]->st);
        hs_free(m->s[i]);
    }
    m->n = 0;
}

void promql_mem_free(struct promql_mem *m)
{
    if (m == NULL)
        return;
    promql_mem_clear(m);
    hs_free(m->s);
    hs_free(m);
}

static size_t find_series(const struct promql_mem *m, const struct hs_labels *ls, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = hs_labels_cmp(m->s[mid]->labels, ls);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int promql_mem_append(struct promql_mem *m, const struct hs_labels *labels, int64_t t_ms, double v,
                      struct hs_err *err)
{
    return promql_mem_append_st(m, labels, t_ms, v, 0, err);
}

int promql_mem_append_st(struct promql_mem *m, const struct hs_labels *labels, int64_t t_ms,
                         double v, int64_t st_ms, struct hs_err *err)
{
    bool found;
    size_t at;
    struct mem_series *s;
    if (!hs_labels_valid(labels))
        return hs_err_set(err, HS_EINVAL, "invalid label set");
    at = find_series(m, labels, &found);
    if (!found) {
        if (m->n == m->cap) {
            size_t ncap = m->cap ? m->cap * 2 : 64;
            struct mem_series **ns = hs_reallocarray(m->s, ncap, sizeof *ns);
            if (ns == NULL)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            m->s = ns;
            m->cap = ncap;
        }
        s = hs_calloc(1, sizeof *s);
        if (s == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        s->labels = hs_labels_dup(labels);
        if (s->labels == NULL) {
            hs_free(s);
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        }
        memmove(&m->s[at + 1], &m->s[at], (m->n - at) * sizeof *m->s);
        m->s[at] = s;
        m->n++;
    }
    s = m->s[at];
    /* Position: usually the end. */
    size_t p = s->n;
    while (p > 0 && s->t[p - 1] > t_ms)
        p--;
    if (st_ms != 0 && s->st == NULL) {
        s->st = hs_calloc(s->cap ? s->cap : 1, sizeof *s->st);
        if (s->st == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    if (p > 0 && s->t[p - 1] == t_ms) {
        s->v[p - 1] = v;
        if (s->st != NULL)
            s->st[p - 1] = st_ms;
        return HS_OK;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        int64_t *nt = hs_reallocarray(s->t, ncap, sizeof *nt);
        if (nt == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        s->t = nt;
        double *nv = hs_reallocarray(s->v, ncap, sizeof *nv);
        if (nv == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        s->v = nv;
        if (s->st != NULL) {
            int64_t *ns = hs_reallocarray(s->st, ncap, sizeof *ns);
            if (ns == NULL)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            memset(ns + s->cap, 0, (ncap - s->cap) * sizeof *ns);
            s->st = ns;
        }
        s->cap = ncap;
    }
    memmove(&s->t[p + 1], &s->t[p], (s->n - p) * sizeof *s->t);
    memmove(&s->v[p + 1], &s->v[p], (s->n - p) * sizeof *s->v);
    if (s->st != NULL) {
        memmove(&s->st[p + 1], &s->st[p], (s->n - p) * sizeof *s->st);
        s->st[p] = st_ms;
    }
    s->t[p] = t_ms;
    s->v[p] = v;
    s->n++;
    return HS_OK;
}

static bool series_matches(const struct mem_series *s, const struct promql_matcher *ms, size_t nms)
{
    for (size_t i = 0; i < nms; i++) {
        if (!promql_matcher_matches(&ms[i], hs_labels_get(s->labels, ms[i].name)))
            return false;
    }
    return true;
}

static bool has_samples_in(const struct mem_series *s, int64_t mint, int64_t maxt)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->t[mid] < mint)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->t[lo] <= maxt;
}

static int mem_select(void *ctx, const struct promql_matcher *ms, size_t nms, int64_t mint,
                      int64_t maxt, void **setp, struct hs_err *err)
{
    struct promql_mem *m = ctx;
    struct mem_set *set = hs_calloc(1, sizeof *set);
    if (set == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    set->s = hs_calloc(m->n ? m->n : 1, sizeof *set->s);
    if (set->s == NULL) {
        hs_free(set);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n; i++) {
        if (series_matches(m->s[i], ms, nms) && has_samples_in(m->s[i], mint, maxt))
            set->s[set->n++] = m->s[i];
    }
    set->mint = mint;
    set->maxt = maxt;
    *setp = set;
    return HS_OK;
}

static int mem_next(void *setp, const struct hs_labels **labels, struct hs_err *err)
{
    struct mem_set *set = setp;
    (void)err;
    if (set->cur >= set->n)
        return 0;
    set->cur++;
    set->pos = 0;
    *labels = set->s[set->cur - 1]->labels;
    return 1;
}

static int mem_seek(void *setp, int64_t t_ms, struct hs_err *err)
{
    struct mem_set *set = setp;
    const struct mem_series *s = set->s[set->cur - 1];
    size_t lo = 0, hi = s->n;
    (void)err;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->t[mid] < t_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    set->pos = lo;
    return lo < s->n ? 1 : 0;
}

static int mem_iter_next(void *setp, struct hs_err *err)
{
    struct mem_set *set = setp;
    const struct mem_series *s = set->s[set->cur - 1];
    (void)err;
    if (set->pos < s->n)
        set->pos++;
    return set->pos < s->n ? 1 : 0;
}

static void mem_at(void *setp, int64_t *t, double *v)
{
    struct mem_set *set = setp;
    const struct mem_series *s = set->s[set->cur - 1];
    *t = s->t[set->pos];
    *v = s->v[set->pos];
}

static int64_t mem_at_st(void *setp)
{
    struct mem_set *set = setp;
    const struct mem_series *s = set->s[set->cur - 1];
    return s->st != NULL ? s->st[set->pos] : 0;
}

static void mem_close(void *setp)
{
    struct mem_set *set = setp;
    hs_free(set->s);
    hs_free(set);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Collects names (name == NULL) or values of 'name' into a sorted unique array. */
static int collect(struct promql_mem *m, const char *name, const struct promql_matcher *ms,
                   size_t nms, int64_t mint, int64_t maxt, struct hs_arena *arena,
                   const char ***out, size_t *nout, struct hs_err *err)
{
    size_t cap = 64, n = 0;
    const char **v = hs_malloc(cap * sizeof *v);
    if (v == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n; i++) {
        const struct mem_series *s = m->s[i];
        if (!series_matches(s, ms, nms) || !has_samples_in(s, mint, maxt))
            continue;
        for (size_t j = 0; j < s->labels->n; j++) {
            const char *x = name == NULL ? s->labels->v[j].name : NULL;
            if (name != NULL && strcmp(s->labels->v[j].name, name) == 0)
                x = s->labels->v[j].value;
            if (x == NULL)
                continue;
            if (n == cap) {
                const char **nv = hs_reallocarray(v, cap * 2, sizeof *v);
                if (nv == NULL) {
                    hs_free(v);
                    return hs_err_set(err, HS_ENOMEM, "out of memory");
                }
                v = nv;
                cap *= 2;
            }
            v[n++] = x;
        }
    }
    qsort(v, n, sizeof *v, cmp_str);
    const char **res = hs_arena_alloc(arena, (n ? n : 1) * sizeof *res);
    size_t w = 0;
    if (res == NULL) {
        hs_free(v);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && strcmp(res[w - 1], v[i]) == 0)
            continue;
        res[w] = hs_arena_strndup(arena, v[i], strlen(v[i]));
        if (res[w] == NULL) {
            hs_free(v);
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        }
        w++;
    }
    hs_free(v);
    *out = res;
    *nout = w;
    return HS_OK;
}

static int mem_label_names(void *ctx, const struct promql_matcher *ms, size_t nms, int64_t mint,
                           int64_t maxt, struct hs_arena *arena, const char ***out, size_t *n,
                           struct hs_err *err)
{
    return collect(ctx, NULL, ms, nms, mint, maxt, arena, out, n, err);
}

static int mem_label_values(void *ctx, const char *name, const struct promql_matcher *ms,
                            size_t nms, int64_t mint, int64_t maxt, struct hs_arena *arena,
                            const char ***out, size_t *n, struct hs_err *err)
{
    return collect(ctx, name, ms, nms, mint, maxt, arena, out, n, err);
}

static const struct promql_storage_ops mem_ops = {
    .select = mem_select,
    .next = mem_next,
    .seek = mem_seek,
    .iter_next = mem_iter_next,
    .at = mem_at,
    .at_st = mem_at_st,
    .close = mem_close,
    .label_names = mem_label_names,
    .label_values = mem_label_values,
};

void promql_mem_storage(struct promql_mem *m, struct promql_storage *out)
{
    out->ops = &mem_ops;
    out->ctx = m;
}
