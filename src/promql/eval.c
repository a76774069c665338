/*
 * eval.c - the core of the PromQL evaluator: the query entry points, the
 * evaluation context (arena, limits, deadline, annotations), selectors,
 * subqueries and the final clean-up of a result.
 *
 * Every expression is evaluated once over all the steps of its grid (the
 * steps of a range query, or the aligned steps of a subquery) and yields a
 * dense value (see internal.h).  Each selector therefore reads storage once
 * per query: its samples are loaded into arrays covering every step, and
 * the per-step work walks those arrays with moving indices.
 *
 * Selector semantics (Prometheus 3): an instant selector at t takes the
 * newest sample in (t - lookback, t] unless that sample is a staleness
 * marker; a range selector [r] at t takes the samples in (t - r, t] without
 * staleness markers; offset shifts t back, @ pins it.
 */
#include "promql/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- context helpers ----------------------------------------------------- */

bool promql__is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b == PROMQL__STALE_BITS;
}

double promql__stale_nan(void)
{
    uint64_t b = PROMQL__STALE_BITS;
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

int promql__oom(struct promql__ctx *c)
{
    if (c->over_budget)
        return hs_err_set(c->err, HS_ETOOBIG,
                          "query processing would need more than %zu bytes of memory",
                          c->arena->max_bytes);
    return hs_err_set(c->err, HS_ENOMEM, "out of memory");
}

void *promql__alloc(struct promql__ctx *c, size_t n)
{
    void *p;
    if (n == 0)
        n = 1;
    if (c->arena->max_bytes != 0 &&
        (n > c->arena->max_bytes || c->arena->used_bytes > c->arena->max_bytes - n)) {
        c->over_budget = true;
        return NULL;
    }
    p = hs_arena_alloc(c->arena, n);
    if (p == NULL && c->arena->max_bytes != 0 &&
        c->arena->used_bytes + n + (1u << 20) > c->arena->max_bytes)
        c->over_budget = true;
    return p;
}

int promql__check(struct promql__ctx *c)
{
    if (c->qo != NULL && c->qo->cancel != NULL && atomic_load(c->qo->cancel))
        return hs_err_set(c->err, HS_ECLOSED, "query was canceled in expression evaluation");
    if (c->deadline_ns != 0 && hs_mono_ns() > c->deadline_ns)
        return hs_err_set(c->err, HS_ETIMEDOUT, "query timed out in expression evaluation");
    return HS_OK;
}

static void pos_linecol(const char *q, size_t pos, int *line, int *col)
{
    int l = 1, cl = 1;
    for (size_t i = 0; q != NULL && i < pos && q[i] != '\0'; i++) {
        if (q[i] == '\n') {
            l++;
            cl = 1;
        } else {
            cl++;
        }
    }
    *line = l;
    *col = cl;
}

static void annotate(struct promql__ctx *c, struct hs_buf *b, size_t *count, const char *kind,
                     size_t pos, const char *fmt, va_list ap)
{
    struct hs_buf tmp;
    int line, col;
    hs_buf_init(&tmp, 4096);
    pos_linecol(c->query, pos, &line, &col);
    if (hs_buf_printf(&tmp, "PromQL %s: ", kind) != HS_OK ||
        hs_buf_vprintf(&tmp, fmt, ap) != HS_OK ||
        hs_buf_printf(&tmp, " (%d:%d)", line, col) != HS_OK)
        goto out;
    /* Annotations are a set: the same text is recorded once. */
    for (size_t off = 0; off < b->len; off += strlen(b->p + off) + 1) {
        if (strcmp(b->p + off, tmp.p) == 0)
            goto out;
    }
    if (hs_buf_append(b, tmp.p, tmp.len + 1) == HS_OK)
        (*count)++;
out:
    hs_buf_cleanup(&tmp);
}

void promql__warn(struct promql__ctx *c, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    annotate(c, &c->warn, &c->nwarn, "warning", pos, fmt, ap);
    va_end(ap);
}

void promql__info(struct promql__ctx *c, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    annotate(c, &c->info, &c->ninfo, "info", pos, fmt, ap);
    va_end(ap);
}

int promql__count_overlap(struct promql__ctx *c, const char *metric, size_t pos)
{
    for (size_t i = 0; i < c->noverlaps; i++) {
        if (strcmp(c->overlaps[i].metric, metric) == 0) {
            c->overlaps[i].count++;
            return HS_OK;
        }
    }
    struct promql__overlap *no = promql__alloc(c, (c->noverlaps + 1) * sizeof *no);
    if (no == NULL)
        return promql__oom(c);
    if (c->noverlaps)
        memcpy(no, c->overlaps, c->noverlaps * sizeof *no);
    no[c->noverlaps].metric = metric;
    no[c->noverlaps].pos = pos;
    no[c->noverlaps].count = 1;
    c->overlaps = no;
    c->noverlaps++;
    return HS_OK;
}

/* Turns the counted overlap findings into warnings, as Prometheus merges them. */
static void flush_overlaps(struct promql__ctx *c)
{
    for (size_t i = 0; i < c->noverlaps; i++) {
        const struct promql__overlap *o = &c->overlaps[i];
        if (o->count > 1)
            promql__warn(c, o->pos,
                         "sample has start time that overlaps with previous sample timestamp for "
                         "metric \"%s\" (%lld occurrences)",
                         o->metric, (long long)o->count);
        else
            promql__warn(c, o->pos,
                         "sample has start time that overlaps with previous sample timestamp for "
                         "metric \"%s\"",
                         o->metric);
    }
}

struct promql__series *promql__series_new(struct promql__ctx *c, size_t nsteps)
{
    struct promql__series *s = hs_arena_calloc(c->arena, sizeof *s);
    if (s == NULL)
        return NULL;
    s->v = promql__alloc(c, nsteps * sizeof(double));
    s->ok = hs_arena_calloc(c->arena, nsteps ? nsteps : 1);
    if (s->v == NULL || s->ok == NULL)
        return NULL;
    return s;
}

int promql__labels_copy(struct promql__ctx *c, const struct hs_labels *src, struct hs_labels *dst)
{
    dst->n = src->n;
    dst->v = promql__alloc(c, (src->n ? src->n : 1) * sizeof(struct hs_label));
    if (dst->v == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].name = hs_arena_strndup(c->arena, src->v[i].name, strlen(src->v[i].name));
        dst->v[i].value = hs_arena_strndup(c->arena, src->v[i].value, strlen(src->v[i].value));
        if (dst->v[i].name == NULL || dst->v[i].value == NULL)
            return promql__oom(c);
    }
    return HS_OK;
}

int promql__labels_without(struct promql__ctx *c, const struct hs_labels *src, const char *name,
                           struct hs_labels *dst)
{
    struct hs_label *v = promql__alloc(c, (src->n ? src->n : 1) * sizeof *v);
    size_t n = 0;
    if (v == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < src->n; i++) {
        if (strcmp(src->v[i].name, name) != 0)
            v[n++] = src->v[i];
    }
    dst->v = v;
    dst->n = n;
    return HS_OK;
}

int promql__labels_set(struct promql__ctx *c, const struct hs_labels *src, const char *name,
                       const char *value, struct hs_labels *dst)
{
    struct hs_label *v = promql__alloc(c, (src->n + 1) * sizeof *v);
    size_t n = 0;
    bool done = false;
    if (v == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < src->n; i++) {
        int cmp = strcmp(src->v[i].name, name);
        if (cmp == 0) {
            if (value[0] != '\0')
                v[n++] = (struct hs_label){src->v[i].name, value};
            done = true;
            continue;
        }
        if (cmp > 0 && !done) {
            if (value[0] != '\0')
                v[n++] = (struct hs_label){name, value};
            done = true;
        }
        v[n++] = src->v[i];
    }
    if (!done && value[0] != '\0')
        v[n++] = (struct hs_label){name, value};
    dst->v = v;
    dst->n = n;
    return HS_OK;
}

/* Formats {a="b", c="d"} the way Prometheus prints a label set (name inside braces). */
void promql__format_labels(const struct hs_labels *ls, struct hs_buf *b)
{
    int rc = hs_buf_putc(b, '{');
    for (size_t i = 0; i < ls->n && rc == HS_OK; i++) {
        if (i > 0)
            rc = hs_buf_puts(b, ", ");
        if (rc == HS_OK)
            rc = hs_buf_printf(b, "%s=", ls->v[i].name);
        if (rc == HS_OK)
            rc = hs_buf_json_str(b, ls->v[i].value, strlen(ls->v[i].value));
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(b, '}');
    (void)rc;
}

/* ---- selectors ------------------------------------------------------------ */

/*
 * The value of a duration: 'ms' unless 'expr' (a scalar expression in
 * seconds using step()/range(), see ast.h) is set; then it is evaluated once
 * at the query start.
 */
static int dur_ms(struct promql__ctx *c, const struct promql_node *expr, int64_t ms, int64_t *out)
{
    struct promql__grid g1;
    struct promql__val v;
    int64_t t = c->start_ms;
    int rc;
    if (expr == NULL) {
        *out = ms;
        return HS_OK;
    }
    g1.t = &t;
    g1.n = 1;
    rc = promql__eval(c, expr, &g1, &v);
    if (rc != HS_OK)
        return rc;
    if (v.type != PROMQL_TYPE_SCALAR || isnan(v.scalar[0]) || fabs(v.scalar[0]) > 9.2e15)
        return hs_err_set(c->err, HS_EINVAL, "duration expression does not give a valid duration");
    *out = (int64_t)(v.scalar[0] * 1000.0);
    return HS_OK;
}

static int64_t at_time(struct promql__ctx *c, int at, int64_t at_ms, int64_t t)
{
    switch (at) {
    case PROMQL_AT_TIME:
        return at_ms;
    case PROMQL_AT_START:
        return c->start_ms;
    case PROMQL_AT_END:
        return c->end_ms;
    default:
        return t;
    }
}

static void free_matchers(struct promql_matcher *ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        promql_matcher_cleanup(&ms[i]);
}

/* Loaded samples of one selector. */
struct loaded {
    struct promql__mseries *m;
    size_t n;
};

/* The series of selector 'sel' with their samples in (mint, maxt]; with
 * 'no_stale' without staleness markers (range selectors never see them). */
static int load_series(struct promql__ctx *c, const struct promql_node *sel, int64_t mint,
                       int64_t maxt, bool no_stale, struct loaded *out)
{
    size_t nms = sel->u.sel.nmatchers;
    struct promql_matcher *ms = hs_calloc(nms ? nms : 1, sizeof *ms);
    void *set = NULL;
    size_t cap = 0, scap = 0;
    int64_t *sc_t = NULL, *sc_st = NULL; /* scratch for one series' samples */
    double *sc_v = NULL;
    int rc = HS_OK;
    if (ms == NULL)
        return promql__oom(c);
    out->m = NULL;
    out->n = 0;
    for (size_t i = 0; i < nms; i++) {
        const struct promql_label_matcher *lm = &sel->u.sel.matchers[i];
        ms[i].op = lm->op;
        ms[i].name = lm->name;
        ms[i].value = lm->value;
        if (lm->op == PROMQL_MATCH_RE || lm->op == PROMQL_MATCH_NRE) {
            rc = promql_matcher_compile(&ms[i], c->err);
            if (rc != HS_OK)
                goto out;
        }
    }
    rc = c->st->ops->select(c->st->ctx, ms, nms, mint, maxt, &set, c->err);
    if (rc != HS_OK)
        goto out;
    for (;;) {
        const struct hs_labels *ls = NULL;
        struct promql__mseries *s;
        int r = c->st->ops->next(set, &ls, c->err);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (r == 0)
            break;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct promql__mseries *nm = promql__alloc(c, ncap * sizeof *nm);
            if (nm == NULL) {
                rc = promql__oom(c);
                goto out;
            }
            if (out->n)
                memcpy(nm, out->m, out->n * sizeof *nm);
            out->m = nm;
            cap = ncap;
        }
        s = &out->m[out->n];
        memset(s, 0, sizeof *s);
        rc = promql__labels_copy(c, ls, &s->labels);
        if (rc != HS_OK)
            goto out;
        /* Samples go to scratch arrays reused for every series, then into the
         * arena at their exact size.  A storage with a samples op fills sc_t
         * and sc_v alone (it has no start times); the others go sample by
         * sample and grow all three scratch arrays together. */
        size_t n = 0;
        bool any_st = false;
        if (c->st->ops->samples != NULL) {
            rc = c->st->ops->samples(set, mint, maxt, &sc_t, &sc_v, &n, &scap, c->err);
            if (rc != HS_OK)
                goto out;
            c->samples += n;
            if (c->samples > c->max_samples) {
                rc = hs_err_set(c->err, HS_ETOOBIG,
                                "query processing would load too many samples into memory in "
                                "query execution");
                goto out;
            }
            r = 0;
        } else {
            r = c->st->ops->seek(set, mint + 1, c->err);
        }
        while (r == 1) {
            int64_t t;
            double v;
            c->st->ops->at(set, &t, &v);
            if (t > maxt)
                break;
            if (n == scap) {
                size_t ncap = scap ? scap * 2 : 256;
                int64_t *nt = hs_reallocarray(sc_t, ncap, sizeof *nt);
                if (nt != NULL)
                    sc_t = nt;
                double *nv = nt != NULL ? hs_reallocarray(sc_v, ncap, sizeof *nv) : NULL;
                if (nv != NULL)
                    sc_v = nv;
                int64_t *nst = nv != NULL ? hs_reallocarray(sc_st, ncap, sizeof *nst) : NULL;
                if (nst != NULL)
                    sc_st = nst;
                if (nt == NULL || nv == NULL || nst == NULL) {
                    rc = promql__oom(c);
                    goto out;
                }
                scap = ncap;
            }
            sc_t[n] = t;
            sc_v[n] = v;
            sc_st[n] = c->st->ops->at_st != NULL ? c->st->ops->at_st(set) : 0;
            any_st = any_st || sc_st[n] != 0;
            n++;
            if (++c->samples > c->max_samples) {
                rc = hs_err_set(c->err, HS_ETOOBIG,
                                "query processing would load too many samples into memory in "
                                "query execution");
                goto out;
            }
            r = c->st->ops->iter_next(set, c->err);
        }
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (no_stale) {
            size_t w = 0;
            for (size_t i = 0; i < n; i++) {
                if (promql__is_stale(sc_v[i]))
                    continue;
                sc_t[w] = sc_t[i];
                sc_v[w] = sc_v[i];
                if (any_st)
                    sc_st[w] = sc_st[i];
                w++;
            }
            n = w;
        }
        s->n = n;
        s->t = promql__alloc(c, (n ? n : 1) * sizeof *s->t);
        s->v = promql__alloc(c, (n ? n : 1) * sizeof *s->v);
        if (s->t == NULL || s->v == NULL) {
            rc = promql__oom(c);
            goto out;
        }
        if (n) {
            memcpy(s->t, sc_t, n * sizeof *s->t);
            memcpy(s->v, sc_v, n * sizeof *s->v);
        }
        if (any_st) {
            s->st = promql__alloc(c, n * sizeof *s->st);
            if (s->st == NULL) {
                rc = promql__oom(c);
                goto out;
            }
            memcpy(s->st, sc_st, n * sizeof *s->st);
        }
        out->n++;
        rc = promql__check(c);
        if (rc != HS_OK)
            goto out;
    }
out:
    hs_free(sc_t);
    hs_free(sc_v);
    hs_free(sc_st);
    if (set != NULL)
        c->st->ops->close(set);
    free_matchers(ms, nms);
    hs_free(ms);
    return rc;
}

/* Times, offsets and ranges are kept within +-2^61 ms (73 million years) so
 * that sums and differences of a few of them cannot overflow. */
#define TIME_LIMIT ((int64_t)1 << 61)

static int64_t clamp_time(int64_t t)
{
    return t > TIME_LIMIT ? TIME_LIMIT : t < -TIME_LIMIT ? -TIME_LIMIT : t;
}

/* Effective times of a selector/subquery over grid g; also min and max. */
static int64_t *eff_times(struct promql__ctx *c, const struct promql__grid *g, int at,
                          int64_t at_ms, int64_t offset_ms, int64_t *mn, int64_t *mx)
{
    int64_t *e = promql__alloc(c, (g->n ? g->n : 1) * sizeof *e);
    if (e == NULL)
        return NULL;
    *mn = INT64_MAX;
    *mx = INT64_MIN;
    for (size_t i = 0; i < g->n; i++) {
        e[i] = clamp_time(clamp_time(at_time(c, at, at_ms, g->t[i])) - clamp_time(offset_ms));
        if (e[i] < *mn)
            *mn = e[i];
        if (e[i] > *mx)
            *mx = e[i];
    }
    if (g->n == 0)
        *mn = *mx = 0;
    return e;
}

/* Linear interpolation of Prometheus' interpolate() (a counter restarts from 0). */
double promql__interpolate(int64_t t1, double y1, int64_t t2, double y2, int64_t t, bool counter)
{
    if (counter && y2 < y1)
        y1 = 0;
    return y1 + (y2 - y1) * (double)(t - t1) / (double)(t2 - t1);
}

/*
 * A smoothed instant selector: the value at each step is interpolated
 * between the samples around it (within one lookback delta either side),
 * or the previous sample carried forward when there is no later one.
 */
static int eval_smoothed_sel(struct promql__ctx *c, const struct promql_node *n,
                             const struct promql__grid *g, const int64_t *eff, int64_t mn,
                             int64_t mx, struct promql__val *out)
{
    int64_t lb = clamp_time(c->opts->lookback_ms);
    struct loaded ld;
    int rc = load_series(c, n, mn - lb, mx + lb, true, &ld);
    if (rc != HS_OK)
        return rc;
    out->type = PROMQL_TYPE_VECTOR;
    out->s = promql__alloc(c, (ld.n ? ld.n : 1) * sizeof *out->s);
    out->ns = 0;
    if (out->s == NULL)
        return promql__oom(c);
    for (size_t k = 0; k < ld.n; k++) {
        struct promql__mseries *m = &ld.m[k];
        struct promql__series *s = promql__series_new(c, g->n);
        bool any = false;
        if (s == NULL)
            return promql__oom(c);
        s->labels = m->labels;
        for (size_t i = 0; i < g->n; i++) {
            int64_t d = eff[i];
            size_t a = 0, b = m->n, lo, hi = 0;
            /* window (d - lb, d + lb] */
            while (a < m->n && m->t[a] <= d - lb)
                a++;
            while (hi < m->n && m->t[hi] <= d + lb)
                hi++;
            b = hi;
            if (a >= b)
                continue;
            lo = a;
            while (lo < b && m->t[lo] < d)
                lo++;
            if (lo < b && m->t[lo] == d)
                s->v[i] = m->v[lo];
            else if (lo > a && lo < b)
                s->v[i] =
                    promql__interpolate(m->t[lo - 1], m->v[lo - 1], m->t[lo], m->v[lo], d, false);
            else if (lo > a)
                s->v[i] = m->v[lo - 1];
            else
                continue;
            s->ok[i] = 1;
            any = true;
        }
        if (any)
            out->s[out->ns++] = *s;
    }
    return HS_OK;
}

/*
 * Instant vector selector.  With 'want_ts' the values are the sample
 * timestamps in seconds (for timestamp()).
 */
static int eval_vector_sel(struct promql__ctx *c, const struct promql_node *n,
                           const struct promql__grid *g, int want, struct promql__val *out)
{
    int64_t mn = 0, mx = 0, lb = c->opts->lookback_ms, offset = 0;
    int64_t *eff;
    struct loaded ld;
    int rc = dur_ms(c, n->u.sel.offset_expr, n->u.sel.offset_ms, &offset);
    if (rc != HS_OK)
        return rc;
    /* timestamp()/start_timestamp() of a selector with @ look up at the @ time
     * itself: Prometheus replaces the offset there. */
    if ((want == 1 || want == 2) && n->u.sel.at != PROMQL_AT_NONE)
        offset = 0;
    eff = eff_times(c, g, n->u.sel.at, n->u.sel.at_ms, offset, &mn, &mx);
    if (eff == NULL)
        return promql__oom(c);
    if (n->u.sel.smoothed && want == 0)
        return eval_smoothed_sel(c, n, g, eff, mn, mx, out);
    rc = load_series(c, n, mn - clamp_time(lb), mx, false, &ld);
    if (rc != HS_OK)
        return rc;
    out->type = PROMQL_TYPE_VECTOR;
    out->s = promql__alloc(c, (ld.n ? ld.n : 1) * sizeof *out->s);
    out->ns = 0;
    if (out->s == NULL)
        return promql__oom(c);
    for (size_t k = 0; k < ld.n; k++) {
        struct promql__mseries *m = &ld.m[k];
        struct promql__series *s = promql__series_new(c, g->n);
        bool any = false;
        if (s == NULL)
            return promql__oom(c);
        s->labels = m->labels;
        size_t p = 0; /* count of samples with t <= eff[i]; moves forward with the steps */
        for (size_t i = 0; i < g->n; i++) {
            if (i > 0 && eff[i] < eff[i - 1])
                p = 0;
            while (p < m->n && m->t[p] <= eff[i])
                p++;
            if (p == 0)
                continue;
            size_t lo = p - 1;
            if (m->t[lo] <= eff[i] - lb || promql__is_stale(m->v[lo]))
                continue;
            if (want == 1 || want == 3)
                s->v[i] = (double)m->t[lo] / 1000.0;
            else if (want == 2)
                s->v[i] = m->st != NULL ? (double)m->st[lo] / 1000.0 : 0;
            else
                s->v[i] = m->v[lo];
            s->ok[i] = 1;
            any = true;
        }
        if (any)
            out->s[out->ns++] = *s;
    }
    return HS_OK;
}

static int eval_matrix_sel(struct promql__ctx *c, const struct promql_node *n,
                           const struct promql__grid *g, struct promql__val *out)
{
    const struct promql_node *sel = n->u.matrix.vector;
    int64_t mn = 0, mx = 0, range = 0, offset = 0;
    int64_t *eff;
    struct loaded ld;
    int rc = dur_ms(c, n->u.matrix.range_expr, n->u.matrix.range_ms, &range);
    if (rc == HS_OK)
        rc = dur_ms(c, sel->u.sel.offset_expr, sel->u.sel.offset_ms, &offset);
    if (rc != HS_OK)
        return rc;
    if (range <= 0)
        return hs_err_set(c->err, HS_EINVAL, "range selector needs a positive range");
    range = clamp_time(range);
    eff = eff_times(c, g, sel->u.sel.at, sel->u.sel.at_ms, offset, &mn, &mx);
    if (eff == NULL)
        return promql__oom(c);
    int ext = sel->u.sel.anchored   ? PROMQL__EXT_ANCHORED
              : sel->u.sel.smoothed ? PROMQL__EXT_SMOOTHED
                                    : 0;
    int64_t lb = ext != 0 ? clamp_time(c->opts->lookback_ms) : 0;
    rc = load_series(c, sel, mn - range - lb, mx + (ext == PROMQL__EXT_SMOOTHED ? lb : 0), true,
                     &ld);
    if (rc != HS_OK)
        return rc;
    out->type = PROMQL_TYPE_MATRIX;
    out->m = ld.m;
    out->nm = ld.n;
    out->range_ms = range;
    out->wend = eff;
    out->ext = ext;
    return HS_OK;
}

static int eval_subquery(struct promql__ctx *c, const struct promql_node *n,
                         const struct promql__grid *g, struct promql__val *out)
{
    int64_t mn = 0, mx = 0, range = 0, step = 0, offset = 0;
    int64_t *eff;
    struct promql__grid ig;
    struct promql__val iv;
    int64_t start, cnt;
    int rc = dur_ms(c, n->u.subquery.range_expr, n->u.subquery.range_ms, &range);
    if (rc == HS_OK)
        rc = dur_ms(c, n->u.subquery.step_expr, n->u.subquery.step_ms, &step);
    if (rc == HS_OK)
        rc = dur_ms(c, n->u.subquery.offset_expr, n->u.subquery.offset_ms, &offset);
    if (rc != HS_OK)
        return rc;
    if (step <= 0)
        step = c->opts->default_subquery_step_ms;
    range = clamp_time(range < 0 ? 0 : range);
    step = clamp_time(step);
    eff = eff_times(c, g, n->u.subquery.at, n->u.subquery.at_ms, offset, &mn, &mx);
    if (eff == NULL)
        return promql__oom(c);
    if (step <= 0)
        return hs_err_set(c->err, HS_EINVAL, "subquery step must be positive");
    /* Inner steps are absolute multiples of the step (Go's truncating division). */
    start = step * ((mn - range) / step);
    if (start <= mn - range)
        start += step;
    cnt = start > mx ? 0 : (mx - start) / step + 1;
    if (cnt > 50000000 || cnt * (int64_t)1 > c->max_samples)
        return hs_err_set(c->err, HS_ETOOBIG,
                          "query processing would load too many samples into memory in query "
                          "execution");
    ig.n = (size_t)cnt;
    ig.t = promql__alloc(c, (ig.n ? ig.n : 1) * sizeof *ig.t);
    if (ig.t == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < ig.n; i++)
        ig.t[i] = start + (int64_t)i * step;
    memset(&iv, 0, sizeof iv);
    rc = promql__eval(c, n->u.subquery.expr, &ig, &iv);
    if (rc != HS_OK)
        return rc;
    out->type = PROMQL_TYPE_MATRIX;
    out->range_ms = range;
    out->wend = eff;
    if (iv.type == PROMQL_TYPE_SCALAR) {
        iv.ns = 1;
        iv.s = promql__series_new(c, ig.n);
        if (iv.s == NULL)
            return promql__oom(c);
        iv.s->labels.n = 0;
        for (size_t i = 0; i < ig.n; i++) {
            iv.s->v[i] = iv.scalar[i];
            iv.s->ok[i] = 1;
        }
    }
    out->m = promql__alloc(c, (iv.ns ? iv.ns : 1) * sizeof *out->m);
    if (out->m == NULL)
        return promql__oom(c);
    out->nm = 0;
    for (size_t k = 0; k < iv.ns; k++) {
        struct promql__series *s = &iv.s[k];
        struct promql__mseries *m = &out->m[out->nm];
        size_t cntp = 0;
        for (size_t i = 0; i < ig.n; i++)
            cntp += s->ok[i];
        if (cntp == 0)
            continue;
        c->samples += (int64_t)cntp;
        if (c->samples > c->max_samples)
            return hs_err_set(c->err, HS_ETOOBIG,
                              "query processing would load too many samples into memory in "
                              "query execution");
        memset(m, 0, sizeof *m);
        m->labels = s->labels;
        m->drop_name = s->drop_name;
        m->t = promql__alloc(c, cntp * sizeof *m->t);
        m->v = promql__alloc(c, cntp * sizeof *m->v);
        if (m->t == NULL || m->v == NULL)
            return promql__oom(c);
        m->n = 0;
        for (size_t i = 0; i < ig.n; i++) {
            if (!s->ok[i])
                continue;
            m->t[m->n] = ig.t[i];
            m->v[m->n] = s->v[i];
            m->n++;
        }
        out->nm++;
    }
    return HS_OK;
}

/* ---- merging series with equal label sets ---------------------------------- */

static int cmp_series_idx(const void *a, const void *b, void *arg)
{
    const struct promql__series *s = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int r = hs_labels_cmp(&s[ia].labels, &s[ib].labels);
    if (r != 0)
        return r;
    return ia < ib ? -1 : ia > ib;
}

/* qsort_r is not portable; a small merge sort over indices. */
static void sort_idx(size_t *idx, size_t *tmp, size_t n, const struct promql__series *s)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_idx(idx, tmp, h, s);
    sort_idx(idx + h, tmp, n - h, s);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (cmp_series_idx(&idx[i], &idx[j], (void *)s) <= 0)
            tmp[k++] = idx[i++];
        else
            tmp[k++] = idx[j++];
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/*
 * Merges series of v with equal label sets into the first of them; two with
 * a value at the same step are an error ("vector cannot contain metrics with
 * the same labelset").  Series without any value are dropped.  Keeps order.
 */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int promql__merge_same(struct promql__ctx *c, struct promql__val *v, size_t nsteps)
{
    size_t n = v->ns, w = 0;
    size_t *idx, *tmp;
    uint8_t *gone;
    if (n < 2)
        goto drop_empty;
    {
        /* Most vectors hold distinct label sets (selectors, functions that
         * keep labels, aggregations): distinct hashes prove it without
         * sorting the series by their labels. */
        uint64_t *h = promql__alloc(c, n * sizeof *h);
        if (h == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < n; i++)
            h[i] = hs_labels_hash(&v->s[i].labels);
        qsort(h, n, sizeof *h, cmp_u64);
        bool dup = false;
        for (size_t i = 0; i + 1 < n && !dup; i++)
            dup = h[i] == h[i + 1];
        if (!dup)
            goto drop_empty;
    }
    idx = promql__alloc(c, n * sizeof *idx);
    tmp = promql__alloc(c, n * sizeof *tmp);
    gone = hs_arena_calloc(c->arena, n);
    if (idx == NULL || tmp == NULL || gone == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    sort_idx(idx, tmp, n, v->s);
    for (size_t i = 0; i + 1 < n; i++) {
        struct promql__series *a = &v->s[idx[i]];
        size_t j = i + 1;
        while (j < n && hs_labels_cmp(&a->labels, &v->s[idx[j]].labels) == 0) {
            struct promql__series *b = &v->s[idx[j]];
            for (size_t k = 0; k < nsteps; k++) {
                if (!b->ok[k])
                    continue;
                if (a->ok[k])
                    return hs_err_set(c->err, HS_EINVAL,
                                      "vector cannot contain metrics with the same labelset");
                a->ok[k] = 1;
                a->v[k] = b->v[k];
            }
            a->drop_name = a->drop_name || b->drop_name;
            gone[idx[j]] = 1;
            j++;
        }
        i = j - 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!gone[i])
            v->s[w++] = v->s[i];
    }
    v->ns = w;
drop_empty:
    w = 0;
    for (size_t i = 0; i < v->ns; i++) {
        bool any = false;
        for (size_t k = 0; k < nsteps && !any; k++)
            any = v->s[i].ok[k];
        if (any)
            v->s[w++] = v->s[i];
    }
    v->ns = w;
    return HS_OK;
}

/* ---- the dispatcher -------------------------------------------------------- */

int promql__eval(struct promql__ctx *c, const struct promql_node *n, const struct promql__grid *g,
                 struct promql__val *out)
{
    int rc = promql__check(c);
    if (rc != HS_OK)
        return rc;
    memset(out, 0, sizeof *out);
    switch (n->kind) {
    case PROMQL_NODE_NUMBER:
        out->type = PROMQL_TYPE_SCALAR;
        out->scalar = promql__alloc(c, (g->n ? g->n : 1) * sizeof(double));
        if (out->scalar == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < g->n; i++)
            out->scalar[i] = n->u.num.value;
        return HS_OK;
    case PROMQL_NODE_STRING:
        out->type = PROMQL_TYPE_STRING;
        out->str = n->u.str.value;
        return HS_OK;
    case PROMQL_NODE_PAREN:
        return promql__eval(c, n->u.paren.expr, g, out);
    case PROMQL_NODE_VECTOR:
        return eval_vector_sel(c, n, g, 0, out);
    case PROMQL_NODE_MATRIX:
        return eval_matrix_sel(c, n, g, out);
    case PROMQL_NODE_SUBQUERY:
        return eval_subquery(c, n, g, out);
    case PROMQL_NODE_UNARY:
        rc = promql__eval(c, n->u.unary.expr, g, out);
        if (rc != HS_OK || n->u.unary.op != PROMQL_OP_SUB)
            return rc;
        if (out->type == PROMQL_TYPE_SCALAR) {
            for (size_t i = 0; i < g->n; i++)
                out->scalar[i] = -out->scalar[i];
        } else if (out->type == PROMQL_TYPE_VECTOR) {
            for (size_t k = 0; k < out->ns; k++) {
                for (size_t i = 0; i < g->n; i++)
                    out->s[k].v[i] = -out->s[k].v[i];
                out->s[k].drop_name = true;
            }
        }
        return HS_OK;
    case PROMQL_NODE_CALL:
        rc = promql__eval_call(c, n, g, out);
        break;
    case PROMQL_NODE_AGGREGATE:
        rc = promql__eval_aggregate(c, n, g, out);
        break;
    case PROMQL_NODE_BINARY:
        rc = promql__eval_binary(c, n, g, out);
        break;
    default:
        return hs_err_set(c->err, HS_EINVAL, "unknown expression node %d", n->kind);
    }
    if (rc == HS_OK && out->type == PROMQL_TYPE_VECTOR && g->n > 1)
        rc = promql__merge_same(c, out, g->n);
    return rc;
}

int promql__eval_timestamp_sel(struct promql__ctx *c, const struct promql_node *n,
                               const struct promql__grid *g, int want, struct promql__val *out)
{
    memset(out, 0, sizeof *out);
    return eval_vector_sel(c, n, g, want, out);
}

/* ---- engine and queries ------------------------------------------------------ */

struct promql_engine {
    struct promql_engine_opts opts;
};

void promql_engine_opts_default(struct promql_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lookback_ms = 300000;
    o->max_samples = 50000000;
    o->timeout_ms = 120000;
    o->default_subquery_step_ms = 60000;
    o->max_query_len = 65536;
    o->max_points_per_series = 11000;
    o->enable_experimental = true;
    o->max_query_bytes = (size_t)1 << 30;
}

struct promql_engine *promql_engine_new(const struct promql_engine_opts *opts)
{
    struct promql_engine *e = hs_calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    if (opts != NULL)
        e->opts = *opts;
    else
        promql_engine_opts_default(&e->opts);
    return e;
}

void promql_engine_free(struct promql_engine *e)
{
    hs_free(e);
}

void promql_result_free(struct promql_result *r)
{
    if (r == NULL)
        return;
    hs_arena_cleanup(&r->arena);
    hs_free(r);
}

const char *promql_error_type(int code)
{
    switch (code) {
    case HS_EPARSE:
        return "bad_data";
    case HS_ETIMEDOUT:
        return "timeout";
    case HS_ECLOSED:
        return "canceled";
    case HS_ENOMEM:
        return "internal";
    default:
        return "execution";
    }
}

static bool uses_experimental(const struct promql_node *n);
static bool any_experimental(struct promql_node **a, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        if (a[i] != NULL && uses_experimental(a[i]))
            return true;
    }
    return false;
}

static bool uses_experimental(const struct promql_node *n)
{
    struct promql_node *kids[2];
    switch (n->kind) {
    case PROMQL_NODE_CALL:
        if (n->u.call.func != NULL && n->u.call.func->experimental)
            return true;
        return any_experimental(n->u.call.args, n->u.call.nargs);
    case PROMQL_NODE_AGGREGATE:
        if (n->u.agg.op == PROMQL_AGG_LIMITK || n->u.agg.op == PROMQL_AGG_LIMIT_RATIO)
            return true;
        kids[0] = n->u.agg.expr;
        kids[1] = n->u.agg.param;
        return any_experimental(kids, 2);
    case PROMQL_NODE_BINARY:
        kids[0] = n->u.bin.lhs;
        kids[1] = n->u.bin.rhs;
        return any_experimental(kids, 2);
    case PROMQL_NODE_UNARY:
        return uses_experimental(n->u.unary.expr);
    case PROMQL_NODE_PAREN:
        return uses_experimental(n->u.paren.expr);
    case PROMQL_NODE_SUBQUERY:
        return uses_experimental(n->u.subquery.expr);
    default:
        return false;
    }
}

/* Drops __name__ (and __type__/__unit__) where marked, then merges. */
static int finish_names(struct promql__ctx *c, struct promql__val *v, size_t nsteps, bool instant)
{
    for (size_t k = 0; k < v->ns; k++) {
        struct promql__series *s = &v->s[k];
        if (!s->drop_name)
            continue;
        size_t w = 0;
        for (size_t i = 0; i < s->labels.n; i++) {
            const char *nm = s->labels.v[i].name;
            if (strcmp(nm, "__name__") == 0 || strcmp(nm, "__type__") == 0 ||
                strcmp(nm, "__unit__") == 0)
                continue;
            s->labels.v[w++] = s->labels.v[i];
        }
        s->labels.n = w;
        s->drop_name = false;
    }
    if (instant) {
        /* Order matters for instant vectors: only check for duplicates. */
        struct promql__val tmp = *v;
        size_t cnt = 0;
        for (size_t k = 0; k < v->ns; k++)
            cnt += v->s[k].ok[0];
        tmp.s = promql__alloc(c, (cnt ? cnt : 1) * sizeof *tmp.s);
        if (tmp.s == NULL)
            return promql__oom(c);
        tmp.ns = 0;
        for (size_t k = 0; k < v->ns; k++) {
            if (v->s[k].ok[0])
                tmp.s[tmp.ns++] = v->s[k];
        }
        *v = tmp;
        struct promql__val chk = *v;
        chk.s = promql__alloc(c, (v->ns ? v->ns : 1) * sizeof *chk.s);
        if (chk.s == NULL)
            return promql__oom(c);
        for (size_t k = 0; k < v->ns; k++) {
            chk.s[k] = v->s[k];
            chk.s[k].ok = hs_arena_calloc(c->arena, 1);
            chk.s[k].v = promql__alloc(c, sizeof(double));
            if (chk.s[k].ok == NULL || chk.s[k].v == NULL)
                return promql__oom(c);
            chk.s[k].ok[0] = 1;
        }
        return promql__merge_same(c, &chk, 1);
    }
    return promql__merge_same(c, v, nsteps);
}

struct qrun {
    struct promql_engine *e;
    const struct promql_storage *st;
    const char *query;
    int64_t start, end, step;
    bool range;
    const struct promql_query_opts *qo;
};

static const char *arena_strdup(struct hs_arena *a, const char *s)
{
    return hs_arena_strndup(a, s, strlen(s));
}

static int copy_annotations(struct promql_result *r, const struct hs_buf *b, size_t n,
                            const char ***out, size_t *nout)
{
    const char **v = hs_arena_alloc(&r->arena, (n ? n : 1) * sizeof *v);
    size_t k = 0;
    if (v == NULL)
        return HS_ENOMEM;
    for (size_t off = 0; off < b->len && k < n; off += strlen(b->p + off) + 1) {
        v[k] = arena_strdup(&r->arena, b->p + off);
        if (v[k] == NULL)
            return HS_ENOMEM;
        k++;
    }
    *out = v;
    *nout = k;
    return HS_OK;
}

static int labels_to(struct hs_arena *a, const struct hs_labels *src, struct hs_labels *dst)
{
    dst->n = src->n;
    dst->v = hs_arena_alloc(a, (src->n ? src->n : 1) * sizeof(struct hs_label));
    if (dst->v == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].name = arena_strdup(a, src->v[i].name);
        dst->v[i].value = arena_strdup(a, src->v[i].value);
        if (dst->v[i].name == NULL || dst->v[i].value == NULL)
            return HS_ENOMEM;
    }
    return HS_OK;
}

/*
 * Prometheus' extendFloats: an anchored or smoothed range vector shown as
 * such gets a point at each window edge (the sample at or before the start,
 * interpolated when smoothed) around the samples strictly inside.
 */
static void extend_points(const struct promql__mseries *m, int64_t mint, int64_t maxt,
                          bool smoothed, struct promql_rseries *rs)
{
    size_t last, first = 0;
    if (m->n == 0)
        return;
    last = m->n - 1;
    while (first < last && m->t[first] <= mint)
        first++;
    first = first > 0 ? first - 1 : 0;
    if (smoothed) {
        size_t k = 0;
        while (k < last && m->t[k] < maxt)
            k++;
        last = k;
    }
    if (m->t[last] <= mint)
        return;
    double left = m->v[first], right = m->v[last];
    if (smoothed && m->t[first] < mint)
        left = promql__interpolate(m->t[first], m->v[first], m->t[first + 1], m->v[first + 1], mint,
                                   false);
    if (smoothed && last > 0 && m->t[last] > maxt)
        right = promql__interpolate(m->t[last - 1], m->v[last - 1], m->t[last], m->v[last], maxt,
                                    false);
    size_t f = first, l = last;
    if (m->t[f] <= mint)
        f++;
    if (m->t[l] >= maxt) {
        if (l == 0)
            f = 1; /* nothing inside */
        else
            l--;
    }
    rs->points[rs->npoints++] = (struct promql_point){mint, left};
    for (size_t i = f; i <= l && i < m->n && f <= l; i++)
        rs->points[rs->npoints++] = (struct promql_point){m->t[i], m->v[i]};
    rs->points[rs->npoints++] = (struct promql_point){maxt, right};
}

static int cmp_rseries(const void *a, const void *b)
{
    const struct promql_rseries *x = a, *y = b;
    return hs_labels_cmp(&x->labels, &y->labels);
}

static int build_result(struct promql__ctx *c, const struct qrun *q, const struct promql__grid *g,
                        const struct promql__val *v, struct promql_result *r)
{
    struct hs_arena *a = &r->arena;
    r->t_ms = q->start;
    if (v->type == PROMQL_TYPE_SCALAR && !q->range) {
        r->type = PROMQL_RESULT_SCALAR;
        r->scalar = v->scalar[0];
        return HS_OK;
    }
    if (v->type == PROMQL_TYPE_STRING) {
        r->type = PROMQL_RESULT_STRING;
        r->str = arena_strdup(a, v->str);
        return r->str ? HS_OK : promql__oom(c);
    }
    if (v->type == PROMQL_TYPE_MATRIX) {
        r->type = PROMQL_RESULT_MATRIX;
        r->series = hs_arena_calloc(a, (v->nm ? v->nm : 1) * sizeof *r->series);
        if (r->series == NULL)
            return promql__oom(c);
        for (size_t k = 0; k < v->nm; k++) {
            const struct promql__mseries *m = &v->m[k];
            struct promql_rseries *rs = &r->series[r->nseries];
            int64_t hi = v->wend[0], lo = hi - v->range_ms;
            struct hs_labels ls = m->labels;
            rs->points = hs_arena_alloc(a, (m->n + 2) * sizeof *rs->points);
            if (rs->points == NULL)
                return promql__oom(c);
            if (v->ext != 0)
                extend_points(m, lo, hi, v->ext == PROMQL__EXT_SMOOTHED, rs);
            else {
                for (size_t i = 0; i < m->n; i++) {
                    if (m->t[i] > lo && m->t[i] <= hi)
                        rs->points[rs->npoints++] = (struct promql_point){m->t[i], m->v[i]};
                }
            }
            if (rs->npoints == 0)
                continue;
            if (m->drop_name && promql__labels_without(c, &m->labels, "__name__", &ls) != HS_OK)
                return promql__oom(c);
            if (labels_to(a, &ls, &rs->labels) != HS_OK)
                return promql__oom(c);
            r->nseries++;
        }
        qsort(r->series, r->nseries, sizeof *r->series, cmp_rseries);
        return HS_OK;
    }
    /* Vector, or a scalar of a range query (one series without labels). */
    size_t ns = v->type == PROMQL_TYPE_SCALAR ? 1 : v->ns;
    r->type = q->range ? PROMQL_RESULT_MATRIX : PROMQL_RESULT_VECTOR;
    r->series = hs_arena_calloc(a, (ns ? ns : 1) * sizeof *r->series);
    if (r->series == NULL)
        return promql__oom(c);
    for (size_t k = 0; k < ns; k++) {
        struct promql_rseries *rs = &r->series[r->nseries];
        rs->points = hs_arena_alloc(a, (g->n ? g->n : 1) * sizeof *rs->points);
        if (rs->points == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < g->n; i++) {
            if (v->type == PROMQL_TYPE_SCALAR)
                rs->points[rs->npoints++] = (struct promql_point){g->t[i], v->scalar[i]};
            else if (v->s[k].ok[i])
                rs->points[rs->npoints++] = (struct promql_point){g->t[i], v->s[k].v[i]};
        }
        if (rs->npoints == 0)
            continue;
        if (v->type == PROMQL_TYPE_VECTOR && labels_to(a, &v->s[k].labels, &rs->labels) != HS_OK)
            return promql__oom(c);
        r->nseries++;
    }
    if (q->range)
        qsort(r->series, r->nseries, sizeof *r->series, cmp_rseries);
    return HS_OK;
}

static int run_query(const struct qrun *q, struct promql_result **out, struct hs_err *err)
{
    struct promql_engine *e = q->e;
    struct hs_arena arena;
    struct promql__ctx c;
    struct promql__grid g;
    struct promql__val v;
    struct promql_node *root;
    struct promql_result *r = NULL;
    size_t qlen = strlen(q->query);
    int64_t timeout =
        q->qo != NULL && q->qo->timeout_ms > 0 ? q->qo->timeout_ms : e->opts.timeout_ms;
    int rc;

    *out = NULL;
    if (qlen > e->opts.max_query_len)
        return hs_err_set(err, HS_ETOOBIG, "query is %zu bytes, more than the limit of %zu", qlen,
                          e->opts.max_query_len);
    if (q->start < -TIME_LIMIT || q->start > TIME_LIMIT || q->end < -TIME_LIMIT ||
        q->end > TIME_LIMIT)
        return hs_err_set(err, HS_EPARSE, "query time is out of range");
    if (q->range) {
        if (q->step <= 0)
            return hs_err_set(err, HS_EPARSE,
                              "zero or negative query resolution step widths are not accepted. "
                              "Try a positive integer");
        if (q->end < q->start)
            return hs_err_set(err, HS_EPARSE, "end timestamp must not be before start time");
        if ((q->end - q->start) / q->step + 1 > e->opts.max_points_per_series)
            return hs_err_set(err, HS_EPARSE,
                              "exceeded maximum resolution of %lld points per timeseries. Try "
                              "decreasing the query resolution (?step=XX)",
                              (long long)e->opts.max_points_per_series);
    }
    hs_arena_init(&arena, 64 * 1024, e->opts.max_query_bytes);
    memset(&c, 0, sizeof c);
    c.arena = &arena;
    c.st = q->st;
    c.opts = &e->opts;
    c.qo = q->qo;
    c.query = q->query;
    c.start_ms = q->start;
    c.end_ms = q->end;
    c.step_ms = q->range ? q->step : 0;
    c.deadline_ns = timeout > 0 ? hs_mono_ns() + timeout * 1000000 : 0;
    c.max_samples = e->opts.max_samples;
    c.range_query = q->range;
    c.err = err;
    hs_buf_init(&c.warn, 1 << 20);
    hs_buf_init(&c.info, 1 << 20);

    root = promql__parse(q->query, qlen, &arena, err);
    if (root == NULL) {
        rc = err != NULL && err->code != 0 ? err->code : HS_EPARSE;
        if (rc != HS_ENOMEM)
            rc = HS_EPARSE;
        if (err != NULL)
            err->code = rc;
        goto out;
    }
    if (!e->opts.enable_experimental && uses_experimental(root)) {
        rc = hs_err_set(err, HS_EPARSE, "experimental functions and aggregations are disabled");
        goto out;
    }
    if (q->range && root->type != PROMQL_TYPE_SCALAR && root->type != PROMQL_TYPE_VECTOR) {
        rc = hs_err_set(err, HS_EPARSE,
                        "invalid expression type \"%s\" for range query, must be Scalar or "
                        "instant Vector",
                        root->type == PROMQL_TYPE_MATRIX ? "range vector" : "string");
        goto out;
    }
    g.n = q->range ? (size_t)((q->end - q->start) / q->step + 1) : 1;
    g.t = promql__alloc(&c, g.n * sizeof *g.t);
    if (g.t == NULL) {
        rc = promql__oom(&c);
        goto out;
    }
    for (size_t i = 0; i < g.n; i++)
        g.t[i] = q->start + (int64_t)i * (q->range ? q->step : 0);
    rc = promql__eval(&c, root, &g, &v);
    if (rc != HS_OK)
        goto out;
    flush_overlaps(&c);
    if (v.type == PROMQL_TYPE_VECTOR) {
        rc = finish_names(&c, &v, g.n, !q->range);
        if (rc != HS_OK)
            goto out;
    }
    r = hs_calloc(1, sizeof *r);
    if (r == NULL) {
        rc = promql__oom(&c);
        goto out;
    }
    hs_arena_init(&r->arena, 16 * 1024, 0);
    rc = build_result(&c, q, &g, &v, r);
    if (rc == HS_OK)
        rc = copy_annotations(r, &c.warn, c.nwarn, &r->warnings, &r->nwarnings);
    if (rc == HS_OK)
        rc = copy_annotations(r, &c.info, c.ninfo, &r->infos, &r->ninfos);
    if (rc != HS_OK) {
        if (rc == HS_ENOMEM)
            hs_err_set(err, HS_ENOMEM, "out of memory");
        promql_result_free(r);
        r = NULL;
        goto out;
    }
    r->samples_total = c.samples;
    *out = r;
out:
    hs_buf_cleanup(&c.warn);
    hs_buf_cleanup(&c.info);
    hs_arena_cleanup(&arena);
    return rc;
}

int promql_query_instant(struct promql_engine *e, const struct promql_storage *st,
                         const char *query, int64_t t_ms, const struct promql_query_opts *qo,
                         struct promql_result **out, struct hs_err *err)
{
    struct qrun q = {e, st, query, t_ms, t_ms, 0, false, qo};
    return run_query(&q, out, err);
}

int promql_query_range(struct promql_engine *e, const struct promql_storage *st, const char *query,
                       int64_t start_ms, int64_t end_ms, int64_t step_ms,
                       const struct promql_query_opts *qo, struct promql_result **out,
                       struct hs_err *err)
{
    struct qrun q = {e, st, query, start_ms, end_ms, step_ms, true, qo};
    return run_query(&q, out, err);
}
