/*
 * storage_tsdb.c - the promql storage interface over holoscope's tsdb: a
 * thin adapter that turns the engine's matchers into tsdb matchers and
 * walks a tsdb series set with its iterator.
 *
 * A select opens a querier for [mint, maxt], takes the series set (which
 * outlives the querier) and frees the querier at once.
 */
#include "promql/promql.h"

#include "tsdb/tsdb.h"

#include <string.h>

struct tsdb_view_set {
    struct tsdb_series_set *set;
    struct tsdb_iter *it;
};

static int to_tsdb_matchers(const struct promql_matcher *ms, size_t n, struct tsdb_matcher **out,
                            struct hs_err *err)
{
    struct tsdb_matcher *tm = hs_calloc(n ? n : 1, sizeof *tm);
    int rc = HS_OK;
    size_t i;
    if (tm == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (i = 0; i < n && rc == HS_OK; i++) {
        int type = ms[i].op == PROMQL_M_EQ    ? TSDB_MATCH_EQ
                   : ms[i].op == PROMQL_M_NEQ ? TSDB_MATCH_NEQ
                   : ms[i].op == PROMQL_M_RE  ? TSDB_MATCH_RE
                                              : TSDB_MATCH_NRE;
        rc = tsdb_matcher_init(&tm[i], type, ms[i].name, ms[i].value, err);
    }
    if (rc != HS_OK) {
        for (size_t j = 0; j < i; j++)
            tsdb_matcher_cleanup(&tm[j]);
        hs_free(tm);
        return rc;
    }
    *out = tm;
    return HS_OK;
}

static void free_tsdb_matchers(struct tsdb_matcher *tm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tsdb_matcher_cleanup(&tm[i]);
    hs_free(tm);
}

static int view_select(void *ctx, const struct promql_matcher *ms, size_t nms, int64_t mint,
                       int64_t maxt, void **setp, struct hs_err *err)
{
    struct tsdb *db = ctx;
    struct tsdb_matcher *tm = NULL;
    struct tsdb_querier *q;
    struct tsdb_view_set *vs;
    int rc = to_tsdb_matchers(ms, nms, &tm, err);
    if (rc != HS_OK)
        return rc;
    vs = hs_calloc(1, sizeof *vs);
    q = tsdb_querier_new(db, mint, maxt);
    if (vs == NULL || q == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    rc = tsdb_querier_select(q, tm, nms, 0, &vs->set, err);
out:
    if (q != NULL)
        tsdb_querier_free(q);
    free_tsdb_matchers(tm, nms);
    if (rc != HS_OK) {
        hs_free(vs);
        return rc;
    }
    *setp = vs;
    return HS_OK;
}

static int view_next(void *setp, const struct hs_labels **labels, struct hs_err *err)
{
    struct tsdb_view_set *vs = setp;
    (void)err;
    if (!tsdb_series_set_next(vs->set))
        return 0;
    *labels = tsdb_series_set_labels(vs->set);
    vs->it = tsdb_series_set_iter(vs->set);
    return 1;
}

static int view_seek(void *setp, int64_t t_ms, struct hs_err *err)
{
    struct tsdb_view_set *vs = setp;
    (void)err;
    return vs->it != NULL && tsdb_iter_seek(vs->it, t_ms) ? 1 : 0;
}

static int view_iter_next(void *setp, struct hs_err *err)
{
    struct tsdb_view_set *vs = setp;
    (void)err;
    return vs->it != NULL && tsdb_iter_next(vs->it) ? 1 : 0;
}

static void view_at(void *setp, int64_t *t, double *v)
{
    struct tsdb_view_set *vs = setp;
    tsdb_iter_at(vs->it, t, v);
}

static int view_samples(void *setp, int64_t mint, int64_t maxt, int64_t **tp, double **vp,
                        size_t *n, size_t *cap, struct hs_err *err)
{
    struct tsdb_view_set *vs = setp;
    if (vs->it == NULL || !tsdb_iter_seek(vs->it, mint + 1))
        return HS_OK;
    int64_t *t = *tp;
    double *v = *vp;
    size_t k = *n;
    do {
        if (k == *cap) {
            size_t ncap = *cap ? *cap * 2 : 256;
            int64_t *nt = hs_reallocarray(t, ncap, sizeof *nt);
            if (nt != NULL)
                t = *tp = nt;
            double *nv = nt != NULL ? hs_reallocarray(v, ncap, sizeof *nv) : NULL;
            if (nv != NULL)
                v = *vp = nv;
            if (nt == NULL || nv == NULL) {
                *n = k;
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            }
            *cap = ncap;
        }
        tsdb_iter_at(vs->it, &t[k], &v[k]);
        if (t[k] > maxt)
            break;
        k++;
    } while (tsdb_iter_next(vs->it));
    *n = k;
    return HS_OK;
}

static void view_close(void *setp)
{
    struct tsdb_view_set *vs = setp;
    tsdb_series_set_free(vs->set);
    hs_free(vs);
}

static int copy_strings(struct tsdb_strings *s, struct hs_arena *arena, const char ***out,
                        size_t *n, struct hs_err *err)
{
    const char **v = hs_arena_alloc(arena, (s->n ? s->n : 1) * sizeof *v);
    if (v == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        v[i] = hs_arena_strndup(arena, s->v[i], strlen(s->v[i]));
        if (v[i] == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    *out = v;
    *n = s->n;
    return HS_OK;
}

static int view_labels(struct tsdb *db, const char *name, const struct promql_matcher *ms,
                       size_t nms, int64_t mint, int64_t maxt, struct hs_arena *arena,
                       const char ***out, size_t *n, struct hs_err *err)
{
    struct tsdb_matcher *tm = NULL;
    struct tsdb_strings s = {0, NULL};
    struct tsdb_querier *q;
    int rc = to_tsdb_matchers(ms, nms, &tm, err);
    if (rc != HS_OK)
        return rc;
    q = tsdb_querier_new(db, mint, maxt);
    if (q == NULL) {
        free_tsdb_matchers(tm, nms);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    if (name == NULL)
        rc = tsdb_querier_label_names(q, tm, nms, &s, err);
    else
        rc = tsdb_querier_label_values(q, name, tm, nms, &s, err);
    if (rc == HS_OK)
        rc = copy_strings(&s, arena, out, n, err);
    tsdb_strings_free(&s);
    tsdb_querier_free(q);
    free_tsdb_matchers(tm, nms);
    return rc;
}

static int view_label_names(void *ctx, const struct promql_matcher *ms, size_t nms, int64_t mint,
                            int64_t maxt, struct hs_arena *arena, const char ***out, size_t *n,
                            struct hs_err *err)
{
    return view_labels(ctx, NULL, ms, nms, mint, maxt, arena, out, n, err);
}

static int view_label_values(void *ctx, const char *name, const struct promql_matcher *ms,
                             size_t nms, int64_t mint, int64_t maxt, struct hs_arena *arena,
                             const char ***out, size_t *n, struct hs_err *err)
{
    return view_labels(ctx, name, ms, nms, mint, maxt, arena, out, n, err);
}

static const struct promql_storage_ops tsdb_view_ops = {
    .select = view_select,
    .next = view_next,
    .seek = view_seek,
    .iter_next = view_iter_next,
    .at = view_at,
    .samples = view_samples,
    .close = view_close,
    .label_names = view_label_names,
    .label_values = view_label_values,
};

void promql_tsdb_storage(struct tsdb *db, struct promql_storage *out)
{
    out->ops = &tsdb_view_ops;
    out->ctx = db;
}
