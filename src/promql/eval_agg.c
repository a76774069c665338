/*
 * eval_agg.c - aggregation operators: sum, avg, count, min, max, group,
 * stddev, stdvar, quantile, count_values, topk, bottomk, limitk and
 * limit_ratio, with by/without grouping.
 *
 * Groups are formed once per input series; each step then folds the
 * present series into their group.  Numerics follow Prometheus: sums use
 * Kahan-Neumaier compensation, avg switches to an incremental mean when the
 * sum overflows, stddev/stdvar use Welford's update.  topk/bottomk keep a
 * binary heap exactly like Go's container/heap so that ties come out in the
 * same order as in Prometheus.
 */
#include "promql/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void kahan_inc(double inc, double *sum, double *c)
{
    volatile double t = *sum + inc;
    if (isinf(t))
        *c = 0;
    else if (fabs(*sum) >= fabs(inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

static bool in_names(const char *n, const char **names, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        if (strcmp(n, names[i]) == 0)
            return true;
    }
    return false;
}

/* Grouping labels of ls (by: only those listed; without: all but those and __name__). */
static int group_labels(struct promql__ctx *c, const struct promql_node *n,
                        const struct hs_labels *ls, const char *extra, struct hs_labels *out)
{
    out->v = promql__alloc(c, (ls->n ? ls->n : 1) * sizeof *out->v);
    out->n = 0;
    if (out->v == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < ls->n; i++) {
        const char *nm = ls->v[i].name;
        bool listed = in_names(nm, n->u.agg.grouping, n->u.agg.ngrouping) ||
                      (extra != NULL && strcmp(nm, extra) == 0);
        bool keep = n->u.agg.without ? !listed && strcmp(nm, "__name__") != 0 : listed;
        if (keep)
            out->v[out->n++] = ls->v[i];
    }
    return HS_OK;
}

struct grp {
    double val, mean, kc;
    double count;
    bool seen, incr_mean;
    double *heap; /* quantile values */
    size_t nheap, capheap;
};

static double quantile_of(double q, double *v, size_t n);

static int cmp_nan_first(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x))
        return isnan(y) ? 0 : -1;
    if (isnan(y))
        return 1;
    return x < y ? -1 : x > y;
}

static double quantile_of(double q, double *v, size_t n)
{
    if (n == 0 || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(v, n, sizeof *v, cmp_nan_first);
    double dn = (double)n, rank = q * (dn - 1);
    double lo = fmax(0, floor(rank)), hi = fmin(dn - 1, lo + 1);
    double w = rank - floor(rank);
    return v[(size_t)lo] * (1 - w) + v[(size_t)hi] * w;
}

double promql__quantile(double q, double *v, size_t n)
{
    return quantile_of(q, v, n);
}

static int eval_param(struct promql__ctx *c, const struct promql_node *n,
                      const struct promql__grid *g, struct promql__val *pv)
{
    memset(pv, 0, sizeof *pv);
    if (n->u.agg.param == NULL)
        return HS_OK;
    return promql__eval(c, n->u.agg.param, g, pv);
}

/*
 * sum, min, max, count and group, series by series: each (group, step) has
 * its accumulator in a table, so every input series is read front to back
 * once, where the step-by-step loop of simple_agg touches one cache line per
 * series per step.  For a given group and step the inputs are combined in
 * the same series order as there, so the results are identical.
 */
static int agg_by_series(struct promql__ctx *c, int op, const struct promql__grid *g,
                         const struct promql__val *in, const int *gi, int ngroups,
                         struct promql__val *out)
{
    size_t cells = (size_t)ngroups * g->n;
    double *val = promql__alloc(c, (cells ? cells : 1) * sizeof *val);
    double *kc = promql__alloc(c, (cells ? cells : 1) * sizeof *kc);
    unsigned char *seen = promql__alloc(c, cells ? cells : 1);
    int rc = HS_OK;
    if (val == NULL || kc == NULL || seen == NULL)
        return promql__oom(c);
    memset(seen, 0, cells);
    for (size_t k = 0; k < in->ns; k++) {
        const struct promql__series *s = &in->s[k];
        size_t base = (size_t)gi[k] * g->n;
        double *av = val + base, *ak = kc + base;
        unsigned char *as = seen + base;
        bool any = false;
        for (size_t i = 0; i < g->n; i++) {
            if (!s->ok[i])
                continue;
            double f = s->v[i];
            any = true;
            if (!as[i]) {
                as[i] = 1;
                av[i] = op == PROMQL_AGG_GROUP ? 1 : op == PROMQL_AGG_COUNT ? 1 : f;
                ak[i] = 0;
                continue;
            }
            switch (op) {
            case PROMQL_AGG_SUM:
                kahan_inc(f, &av[i], &ak[i]);
                break;
            case PROMQL_AGG_MAX:
                if (av[i] < f || isnan(av[i]))
                    av[i] = f;
                break;
            case PROMQL_AGG_MIN:
                if (av[i] > f || isnan(av[i]))
                    av[i] = f;
                break;
            case PROMQL_AGG_COUNT:
                av[i] += 1;
                break;
            default: /* group */
                break;
            }
        }
        if (any && s->drop_name)
            out->s[gi[k]].drop_name = true;
        if ((k & 63) == 0 && (rc = promql__check(c)) != HS_OK)
            return rc;
    }
    for (int k = 0; k < ngroups; k++) {
        struct promql__series *o = &out->s[k];
        size_t base = (size_t)k * g->n;
        for (size_t i = 0; i < g->n; i++) {
            if (!seen[base + i])
                continue;
            o->v[i] = op == PROMQL_AGG_SUM ? val[base + i] + kc[base + i] : val[base + i];
            o->ok[i] = 1;
        }
    }
    return HS_OK;
}

static int simple_agg(struct promql__ctx *c, const struct promql_node *n,
                      const struct promql__grid *g, struct promql__val *in, const double *param,
                      struct promql__val *out)
{
    int op = n->u.agg.op;
    struct promql__map map;
    struct hs_buf key;
    int *gi = promql__alloc(c, (in->ns ? in->ns : 1) * sizeof *gi);
    int ngroups = 0, rc = HS_OK;
    if (gi == NULL)
        return promql__oom(c);
    memset(&map, 0, sizeof map);
    hs_buf_init(&key, 0);
    out->type = PROMQL_TYPE_VECTOR;
    out->s = promql__alloc(c, (in->ns ? in->ns : 1) * sizeof *out->s);
    if (out->s == NULL)
        return promql__oom(c);
    for (size_t k = 0; k < in->ns && rc == HS_OK; k++) {
        struct hs_labels gl;
        bool added;
        rc = group_labels(c, n, &in->s[k].labels, NULL, &gl);
        if (rc != HS_OK)
            break;
        hs_buf_reset(&key);
        if (promql__labels_key(&gl, &key) != HS_OK) {
            rc = promql__oom(c);
            break;
        }
        rc = promql__map_put(c, &map, key.p ? key.p : "", key.len, ngroups, &gi[k], &added);
        if (rc == HS_OK && added) {
            struct promql__series *s = promql__series_new(c, g->n);
            if (s == NULL) {
                rc = promql__oom(c);
                break;
            }
            s->labels = gl;
            out->s[ngroups++] = *s;
        }
    }
    hs_buf_cleanup(&key);
    if (rc != HS_OK)
        return rc;
    out->ns = (size_t)ngroups;
    if (op == PROMQL_AGG_SUM || op == PROMQL_AGG_MAX || op == PROMQL_AGG_MIN ||
        op == PROMQL_AGG_COUNT || op == PROMQL_AGG_GROUP)
        return agg_by_series(c, op, g, in, gi, ngroups, out);
    struct grp *gr = promql__alloc(c, (size_t)(ngroups ? ngroups : 1) * sizeof *gr);
    if (gr == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < g->n; i++) {
        double q = param != NULL ? param[i] : 0;
        memset(gr, 0, (size_t)ngroups * sizeof *gr);
        for (size_t k = 0; k < in->ns; k++) {
            struct promql__series *s = &in->s[k];
            struct grp *a;
            double f;
            if (!s->ok[i])
                continue;
            f = s->v[i];
            a = &gr[gi[k]];
            if (s->drop_name)
                out->s[gi[k]].drop_name = true;
            if (!a->seen) {
                a->seen = true;
                a->val = f;
                a->mean = f;
                a->count = 1;
                a->kc = 0;
                if (op == PROMQL_AGG_STDDEV || op == PROMQL_AGG_STDVAR)
                    a->val = (isnan(f) || isinf(f)) ? NAN : 0;
                if (op == PROMQL_AGG_GROUP)
                    a->val = 1;
                if (op == PROMQL_AGG_QUANTILE) {
                    a->capheap = 16;
                    a->heap = promql__alloc(c, a->capheap * sizeof(double));
                    if (a->heap == NULL)
                        return promql__oom(c);
                    a->heap[0] = f;
                    a->nheap = 1;
                }
                continue;
            }
            switch (op) {
            case PROMQL_AGG_SUM:
                kahan_inc(f, &a->val, &a->kc);
                break;
            case PROMQL_AGG_AVG:
                a->count++;
                if (!a->incr_mean) {
                    double nv = a->val, nc = a->kc;
                    kahan_inc(f, &nv, &nc);
                    if (!isinf(nv)) {
                        a->val = nv;
                        a->kc = nc;
                        break;
                    }
                    a->incr_mean = true;
                    a->mean = a->val / (a->count - 1);
                    a->kc /= a->count - 1;
                }
                {
                    double qq = (a->count - 1) / a->count;
                    double m = qq * a->mean, cc = qq * a->kc;
                    kahan_inc(f / a->count, &m, &cc);
                    a->mean = m;
                    a->kc = cc;
                }
                break;
            case PROMQL_AGG_MAX:
                if (a->val < f || isnan(a->val))
                    a->val = f;
                break;
            case PROMQL_AGG_MIN:
                if (a->val > f || isnan(a->val))
                    a->val = f;
                break;
            case PROMQL_AGG_COUNT:
                a->count++;
                break;
            case PROMQL_AGG_STDDEV:
            case PROMQL_AGG_STDVAR: {
                a->count++;
                double delta = f - a->mean;
                a->mean += delta / a->count;
                a->val += delta * (f - a->mean);
                break;
            }
            case PROMQL_AGG_QUANTILE:
                if (a->nheap == a->capheap) {
                    double *nh = promql__alloc(c, a->capheap * 2 * sizeof(double));
                    if (nh == NULL)
                        return promql__oom(c);
                    memcpy(nh, a->heap, a->nheap * sizeof(double));
                    a->heap = nh;
                    a->capheap *= 2;
                }
                a->heap[a->nheap++] = f;
                break;
            default:
                break;
            }
        }
        for (int k = 0; k < ngroups; k++) {
            struct grp *a = &gr[k];
            double v = a->val;
            if (!a->seen)
                continue;
            switch (op) {
            case PROMQL_AGG_AVG:
                v = a->incr_mean ? a->mean + a->kc : a->val / a->count + a->kc / a->count;
                break;
            case PROMQL_AGG_COUNT:
                v = a->count;
                break;
            case PROMQL_AGG_STDVAR:
                v = a->val / a->count;
                break;
            case PROMQL_AGG_STDDEV:
                v = sqrt(a->val / a->count);
                break;
            case PROMQL_AGG_QUANTILE:
                v = quantile_of(q, a->heap, a->nheap);
                break;
            case PROMQL_AGG_SUM:
                v = a->val + a->kc;
                break;
            default:
                break;
            }
            out->s[k].v[i] = v;
            out->s[k].ok[i] = 1;
        }
        if ((i & 255) == 0 && (rc = promql__check(c)) != HS_OK)
            return rc;
    }
    return HS_OK;
}

static int count_values(struct promql__ctx *c, const struct promql_node *n,
                        const struct promql__grid *g, struct promql__val *in, const char *label,
                        struct promql__val *out)
{
    struct promql__map map;
    struct hs_buf key;
    size_t cap = 0;
    int rc = HS_OK;
    if (!hs_label_name_valid(label, strlen(label))) {
        struct hs_buf q;
        hs_buf_init(&q, 0);
        if (hs_buf_json_str(&q, label, strlen(label)) != HS_OK) {
            hs_buf_cleanup(&q);
            return promql__oom(c);
        }
        rc = hs_err_set(c->err, HS_EINVAL, "invalid label name %s", q.p);
        hs_buf_cleanup(&q);
        return rc;
    }
    memset(&map, 0, sizeof map);
    hs_buf_init(&key, 0);
    out->type = PROMQL_TYPE_VECTOR;
    out->ns = 0;
    for (size_t i = 0; i < g->n && rc == HS_OK; i++) {
        for (size_t k = 0; k < in->ns && rc == HS_OK; k++) {
            struct promql__series *s = &in->s[k];
            char num[400]; /* 'f' format of any double fits */
            struct hs_labels withv, gl;
            int idx;
            bool added;
            if (!s->ok[i])
                continue;
            promql__fmt_float(s->v[i], num, sizeof num);
            char *nv = hs_arena_strndup(c->arena, num, strlen(num));
            if (nv == NULL)
                return promql__oom(c);
            rc = promql__labels_set(c, &s->labels, label, nv, &withv);
            if (rc == HS_OK)
                rc = group_labels(c, n, &withv, n->u.agg.without ? NULL : label, &gl);
            if (rc != HS_OK)
                break;
            hs_buf_reset(&key);
            if (promql__labels_key(&gl, &key) != HS_OK) {
                rc = promql__oom(c);
                break;
            }
            rc = promql__map_put(c, &map, key.p ? key.p : "", key.len, (int)out->ns, &idx, &added);
            if (rc != HS_OK)
                break;
            if (added) {
                if (out->ns == cap) {
                    size_t ncap = cap ? cap * 2 : 16;
                    struct promql__series *ns = promql__alloc(c, ncap * sizeof *ns);
                    if (ns == NULL)
                        return promql__oom(c);
                    if (out->ns)
                        memcpy(ns, out->s, out->ns * sizeof *ns);
                    out->s = ns;
                    cap = ncap;
                }
                struct promql__series *ns = promql__series_new(c, g->n);
                if (ns == NULL)
                    return promql__oom(c);
                ns->labels = gl;
                out->s[out->ns++] = *ns;
            }
            if (!out->s[idx].ok[i]) {
                out->s[idx].ok[i] = 1;
                out->s[idx].v[i] = 0;
            }
            out->s[idx].v[i] += 1;
        }
    }
    hs_buf_cleanup(&key);
    return rc;
}

/* ---- topk / bottomk / limitk / limit_ratio --------------------------------------- */

struct hent {
    double f;
    size_t idx; /* input series */
};

/* Go's vectorByValueHeap (topk: min-heap, NaN smallest) and its reverse (bottomk). */
static bool hless(const struct hent *h, size_t i, size_t j, bool rev)
{
    double vi = h[i].f, vj = h[j].f;
    if (isnan(vi))
        return true;
    return rev ? vi > vj : vi < vj;
}

static void hswap(struct hent *h, size_t i, size_t j)
{
    struct hent t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void hup(struct hent *h, size_t j, bool rev)
{
    while (j > 0) {
        size_t i = (j - 1) / 2;
        if (!hless(h, j, i, rev))
            break;
        hswap(h, i, j);
        j = i;
    }
}

static bool hdown(struct hent *h, size_t i0, size_t n, bool rev)
{
    size_t i = i0;
    for (;;) {
        size_t j1 = 2 * i + 1;
        if (j1 >= n)
            break;
        size_t j = j1;
        if (j1 + 1 < n && hless(h, j1 + 1, j1, rev))
            j = j1 + 1;
        if (!hless(h, j, i, rev))
            break;
        hswap(h, i, j);
        i = j;
    }
    return i > i0;
}

/* sort.Sort(sort.Reverse(heap)): insertion sort for small n as Go does, else merge. */
static void hsort_rev(struct hent *h, size_t n, bool rev)
{
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && hless(h, j - 1, j, rev); j--)
            hswap(h, j, j - 1);
    }
}

/* XXH64 (seed 0), the hash Prometheus' labels.Hash() uses. */
#define XXP1 11400714785074694791ULL
#define XXP2 14029467366897019727ULL
#define XXP3 1609587929392839161ULL
#define XXP4 9650029242287828579ULL
#define XXP5 2870177450012600261ULL

static uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t rd32(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

static uint64_t xx_round(uint64_t acc, uint64_t in)
{
    acc += in * XXP2;
    acc = rotl64(acc, 31);
    return acc * XXP1;
}

static uint64_t xx_merge(uint64_t acc, uint64_t v)
{
    acc ^= xx_round(0, v);
    return acc * XXP1 + XXP4;
}

uint64_t promql__xxh64(const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = XXP1 + XXP2, v2 = XXP2, v3 = 0, v4 = 0 - XXP1;
        while (end - p >= 32) {
            v1 = xx_round(v1, rd64(p));
            v2 = xx_round(v2, rd64(p + 8));
            v3 = xx_round(v3, rd64(p + 16));
            v4 = xx_round(v4, rd64(p + 24));
            p += 32;
        }
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xx_merge(h, v1);
        h = xx_merge(h, v2);
        h = xx_merge(h, v3);
        h = xx_merge(h, v4);
    } else {
        h = XXP5;
    }
    h += (uint64_t)len;
    while (end - p >= 8) {
        h ^= xx_round(0, rd64(p));
        h = rotl64(h, 27) * XXP1 + XXP4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= rd32(p) * XXP1;
        h = rotl64(h, 23) * XXP2 + XXP3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * XXP5;
        h = rotl64(h, 11) * XXP1;
        p++;
    }
    h ^= h >> 33;
    h *= XXP2;
    h ^= h >> 29;
    h *= XXP3;
    h ^= h >> 32;
    return h;
}

/* Prometheus' sampling offset of a series for limit_ratio: Hash(labels) / MaxUint64. */
static double ratio_offset(const struct hs_labels *ls)
{
    struct hs_buf b;
    uint64_t h;
    int rc = HS_OK;
    hs_buf_init(&b, 0);
    for (size_t i = 0; i < ls->n && rc == HS_OK; i++) {
        rc = hs_buf_puts(&b, ls->v[i].name);
        if (rc == HS_OK)
            rc = hs_buf_putc(&b, (char)0xff);
        if (rc == HS_OK)
            rc = hs_buf_puts(&b, ls->v[i].value);
        if (rc == HS_OK)
            rc = hs_buf_putc(&b, (char)0xff);
    }
    h = promql__xxh64(b.p != NULL ? b.p : "", b.len);
    hs_buf_cleanup(&b);
    return (double)h / 18446744073709551615.0;
}

static bool ratio_take(double r, double off)
{
    return (r >= 0 && off < r) || (r < 0 && off >= 1.0 + r);
}

static int k_agg(struct promql__ctx *c, const struct promql_node *n, const struct promql__grid *g,
                 struct promql__val *in, const double *param, struct promql__val *out)
{
    int op = n->u.agg.op;
    struct promql__map map;
    struct hs_buf key;
    int *gi = promql__alloc(c, (in->ns ? in->ns : 1) * sizeof *gi);
    int ngroups = 0, rc = HS_OK;
    double pmax = -INFINITY, pmin = INFINITY;
    bool anynan = false;
    char num[64];
    if (gi == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < g->n; i++) {
        if (isnan(param[i]))
            anynan = true;
        else {
            pmax = fmax(pmax, param[i]);
            pmin = fmin(pmin, param[i]);
        }
    }
    out->type = PROMQL_TYPE_VECTOR;
    out->ns = 0;
    if (op != PROMQL_AGG_LIMIT_RATIO) {
        if (!anynan && pmax < 1)
            return HS_OK;
        if (anynan)
            return hs_err_set(c->err, HS_EINVAL, "Parameter value is NaN");
        if (pmin <= -9223372036854775808.0)
            return hs_err_set(c->err, HS_EINVAL, "Scalar value %s underflows int64",
                              (promql__fmt_float_g(pmin, num, sizeof num), num));
        if (pmax >= 9223372036854775807.0)
            return hs_err_set(c->err, HS_EINVAL, "Scalar value %s overflows int64",
                              (promql__fmt_float_g(pmax, num, sizeof num), num));
    } else {
        if (!anynan && pmax == 0 && pmin == 0)
            return HS_OK;
        if (anynan)
            return hs_err_set(c->err, HS_EINVAL, "Ratio value is NaN");
        if (pmax > 1.0) {
            promql__fmt_float_g(pmax, num, sizeof num);
            promql__warn(c, n->u.agg.param->pos,
                         "ratio value should be between -1 and 1, got %s, capping to 1", num);
        }
        if (pmin < -1.0) {
            promql__fmt_float_g(pmin, num, sizeof num);
            promql__warn(c, n->u.agg.param->pos,
                         "ratio value should be between -1 and 1, got %s, capping to -1", num);
        }
    }
    memset(&map, 0, sizeof map);
    hs_buf_init(&key, 0);
    for (size_t k = 0; k < in->ns && rc == HS_OK; k++) {
        struct hs_labels gl;
        bool added;
        rc = group_labels(c, n, &in->s[k].labels, NULL, &gl);
        if (rc != HS_OK)
            break;
        hs_buf_reset(&key);
        if (promql__labels_key(&gl, &key) != HS_OK)
            rc = promql__oom(c);
        else
            rc = promql__map_put(c, &map, key.p ? key.p : "", key.len, ngroups, &gi[k], &added);
        if (rc == HS_OK && added)
            ngroups++;
    }
    hs_buf_cleanup(&key);
    if (rc != HS_OK)
        return rc;
    /* Output: a copy of every input series, filled where selected. */
    struct promql__series *os = promql__alloc(c, (in->ns ? in->ns : 1) * sizeof *os);
    size_t *order = promql__alloc(c, (in->ns ? in->ns : 1) * sizeof *order);
    struct hent **heaps =
        hs_arena_calloc(c->arena, (size_t)(ngroups ? ngroups : 1) * sizeof *heaps);
    size_t *hn = promql__alloc(c, (size_t)(ngroups ? ngroups : 1) * sizeof *hn);
    bool *seen = promql__alloc(c, (size_t)(ngroups ? ngroups : 1) * sizeof *seen);
    double *offs = NULL;
    size_t norder = 0;
    if (os == NULL || order == NULL || heaps == NULL || hn == NULL || seen == NULL)
        return promql__oom(c);
    if (op == PROMQL_AGG_LIMIT_RATIO) {
        offs = promql__alloc(c, (in->ns ? in->ns : 1) * sizeof *offs);
        if (offs == NULL)
            return promql__oom(c);
        for (size_t k = 0; k < in->ns; k++)
            offs[k] = ratio_offset(&in->s[k].labels);
    }
    for (size_t k = 0; k < in->ns; k++) {
        struct promql__series *s = promql__series_new(c, g->n);
        if (s == NULL)
            return promql__oom(c);
        s->labels = in->s[k].labels;
        s->drop_name = in->s[k].drop_name;
        os[k] = *s;
    }
    for (int gix = 0; gix < ngroups; gix++) {
        heaps[gix] = promql__alloc(c, (in->ns ? in->ns : 1) * sizeof **heaps);
        if (heaps[gix] == NULL)
            return promql__oom(c);
    }
    for (size_t i = 0; i < g->n; i++) {
        double fp = param[i];
        int64_t kk = 0;
        double r = 0;
        if (op == PROMQL_AGG_LIMIT_RATIO) {
            if (fp == 0)
                continue;
            r = fp < -1.0 ? -1.0 : fp > 1.0 ? 1.0 : fp;
        } else {
            kk = (int64_t)fp;
            if (kk > (int64_t)in->ns)
                kk = (int64_t)in->ns;
            if (kk < 1)
                continue;
        }
        memset(hn, 0, (size_t)ngroups * sizeof *hn);
        memset(seen, 0, (size_t)ngroups * sizeof *seen);
        norder = 0;
        for (size_t k = 0; k < in->ns; k++) {
            struct promql__series *s = &in->s[k];
            if (!s->ok[i])
                continue;
            int gx = gi[k];
            struct hent *h = heaps[gx];
            struct hent e = {s->v[i], k};
            bool rev = op == PROMQL_AGG_BOTTOMK;
            if (!seen[gx]) {
                seen[gx] = true;
                if (op == PROMQL_AGG_LIMIT_RATIO) {
                    if (ratio_take(r, offs[k]))
                        h[hn[gx]++] = e;
                } else {
                    h[hn[gx]++] = e;
                }
                continue;
            }
            switch (op) {
            case PROMQL_AGG_TOPK:
            case PROMQL_AGG_BOTTOMK:
                if ((int64_t)hn[gx] < kk) {
                    h[hn[gx]++] = e;
                    hup(h, hn[gx] - 1, rev);
                } else if ((rev ? h[0].f > e.f : h[0].f < e.f) || (isnan(h[0].f) && !isnan(e.f))) {
                    h[0] = e;
                    if (kk > 1 && !hdown(h, 0, hn[gx], rev))
                        hup(h, 0, rev);
                }
                break;
            case PROMQL_AGG_LIMITK:
                if ((int64_t)hn[gx] < kk)
                    h[hn[gx]++] = e;
                break;
            default:
                if (ratio_take(r, offs[k]))
                    h[hn[gx]++] = e;
                break;
            }
        }
        for (int gx = 0; gx < ngroups; gx++) {
            if (!seen[gx])
                continue;
            if (op == PROMQL_AGG_TOPK || op == PROMQL_AGG_BOTTOMK)
                hsort_rev(heaps[gx], hn[gx], op == PROMQL_AGG_BOTTOMK);
            for (size_t j = 0; j < hn[gx]; j++) {
                size_t k = heaps[gx][j].idx;
                os[k].ok[i] = 1;
                os[k].v[i] = heaps[gx][j].f;
                order[norder++] = k;
            }
        }
    }
    out->s = promql__alloc(c, (in->ns ? in->ns : 1) * sizeof *out->s);
    if (out->s == NULL)
        return promql__oom(c);
    if (g->n == 1) {
        for (size_t j = 0; j < norder; j++)
            out->s[out->ns++] = os[order[j]];
    } else {
        for (size_t k = 0; k < in->ns; k++)
            out->s[out->ns++] = os[k];
    }
    return HS_OK;
}

int promql__eval_aggregate(struct promql__ctx *c, const struct promql_node *n,
                           const struct promql__grid *g, struct promql__val *out)
{
    struct promql__val in, pv;
    int op = n->u.agg.op;
    int rc = eval_param(c, n, g, &pv);
    if (rc == HS_OK)
        rc = promql__eval(c, n->u.agg.expr, g, &in);
    if (rc != HS_OK)
        return rc;
    memset(out, 0, sizeof *out);
    if (in.type != PROMQL_TYPE_VECTOR)
        return hs_err_set(c->err, HS_EINVAL, "aggregation over a non-vector");
    switch (op) {
    case PROMQL_AGG_COUNT_VALUES:
        return count_values(c, n, g, &in, pv.str != NULL ? pv.str : "", out);
    case PROMQL_AGG_TOPK:
    case PROMQL_AGG_BOTTOMK:
    case PROMQL_AGG_LIMITK:
    case PROMQL_AGG_LIMIT_RATIO:
        if (pv.scalar == NULL)
            return hs_err_set(c->err, HS_EINVAL, "missing parameter");
        return k_agg(c, n, g, &in, pv.scalar, out);
    case PROMQL_AGG_QUANTILE: {
        double mx = -INFINITY, mn = INFINITY;
        bool nan = false;
        char num[64];
        for (size_t i = 0; i < g->n && pv.scalar != NULL; i++) {
            if (isnan(pv.scalar[i]))
                nan = true;
            mx = fmax(mx, pv.scalar[i]);
            mn = fmin(mn, pv.scalar[i]);
        }
        if (nan)
            promql__warn(c, n->u.agg.param->pos,
                         "quantile value should be between 0 and 1, got NaN");
        if (mx > 1) {
            promql__fmt_float_g(mx, num, sizeof num);
            promql__warn(c, n->u.agg.param->pos, "quantile value should be between 0 and 1, got %s",
                         num);
        }
        if (mn < 0) {
            promql__fmt_float_g(mn, num, sizeof num);
            promql__warn(c, n->u.agg.param->pos, "quantile value should be between 0 and 1, got %s",
                         num);
        }
        return simple_agg(c, n, g, &in, pv.scalar, out);
    }
    default:
        return simple_agg(c, n, g, &in, NULL, out);
    }
}
