/*
 * eval_funcs.c - evaluation of PromQL function calls over float samples:
 * element-wise math, clamp/round, date functions, label_replace/label_join,
 * sort functions, absent, the range-vector functions (rate, increase,
 * delta with Prometheus' extrapolation, irate, idelta, deriv,
 * predict_linear, changes, resets, the *_over_time family) and
 * histogram_quantile over classic `le` buckets.
 *
 * Range functions walk each series' samples with two indices that move
 * forward as the steps advance, so a range query touches every sample a
 * bounded number of times.  Native-histogram functions (histogram_count,
 * histogram_sum, ...) find no native histograms and return nothing.
 */
#include "promql/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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

/* Go's math.Max / math.Min: NaN wins. */
static double go_max(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    return a > b ? a : b;
}

static double go_min(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    return a < b ? a : b;
}

/* ---- scalar arguments ------------------------------------------------------------ */

static int scalar_arg(struct promql__ctx *c, const struct promql_node *a,
                      const struct promql__grid *g, double **out)
{
    struct promql__val v;
    int rc = promql__eval(c, a, g, &v);
    if (rc != HS_OK)
        return rc;
    if (v.type != PROMQL_TYPE_SCALAR)
        return hs_err_set(c->err, HS_EINVAL, "expected a scalar argument");
    *out = v.scalar;
    return HS_OK;
}

static int vector_arg(struct promql__ctx *c, const struct promql_node *a,
                      const struct promql__grid *g, struct promql__val *v)
{
    int rc = promql__eval(c, a, g, v);
    if (rc == HS_OK && v->type != PROMQL_TYPE_VECTOR)
        return hs_err_set(c->err, HS_EINVAL, "expected an instant vector argument");
    return rc;
}

/* ---- element-wise functions --------------------------------------------------------- */

static double sgn(double v)
{
    return v < 0 ? -1 : v > 0 ? 1 : v;
}

/* Days since 1970-01-01 to civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yy + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static double date_part(int id, double f)
{
    int64_t secs, days, rem, y;
    int m, d;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    static const int cum[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    if (isnan(f) || isinf(f) || fabs(f) > 9.2e18)
        return NAN;
    secs = (int64_t)f;
    days = secs / 86400;
    rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    switch (id) {
    case PROMQL__F_MINUTE:
        return (double)((rem / 60) % 60);
    case PROMQL__F_HOUR:
        return (double)(rem / 3600);
    case PROMQL__F_DAY_OF_WEEK: {
        int64_t w = (days + 4) % 7;
        return (double)(w < 0 ? w + 7 : w);
    }
    case PROMQL__F_DAY_OF_MONTH:
        return d;
    case PROMQL__F_DAY_OF_YEAR:
        return cum[m - 1] + d + (m > 2 && is_leap(y) ? 1 : 0);
    case PROMQL__F_DAYS_IN_MONTH:
        return mdays[m - 1] + (m == 2 && is_leap(y) ? 1 : 0);
    case PROMQL__F_MONTH:
        return m;
    case PROMQL__F_YEAR:
        return (double)y;
    default:
        return NAN;
    }
}

static double math_fn(int id, double v, double a1, double a2)
{
    switch (id) {
    case PROMQL__F_ABS:
        return fabs(v);
    case PROMQL__F_CEIL:
        return ceil(v);
    case PROMQL__F_FLOOR:
        return floor(v);
    case PROMQL__F_EXP:
        return exp(v);
    case PROMQL__F_SQRT:
        return sqrt(v);
    case PROMQL__F_LN:
        return log(v);
    case PROMQL__F_LOG2:
        return log2(v);
    case PROMQL__F_LOG10:
        return log10(v);
    case PROMQL__F_SIN:
        return sin(v);
    case PROMQL__F_COS:
        return cos(v);
    case PROMQL__F_TAN:
        return tan(v);
    case PROMQL__F_ASIN:
        return asin(v);
    case PROMQL__F_ACOS:
        return acos(v);
    case PROMQL__F_ATAN:
        return atan(v);
    case PROMQL__F_SINH:
        return sinh(v);
    case PROMQL__F_COSH:
        return cosh(v);
    case PROMQL__F_TANH:
        return tanh(v);
    case PROMQL__F_ASINH:
        return asinh(v);
    case PROMQL__F_ACOSH:
        return acosh(v);
    case PROMQL__F_ATANH:
        return atanh(v);
    case PROMQL__F_DEG:
        return v * 180 / M_PI;
    case PROMQL__F_RAD:
        return v * M_PI / 180;
    case PROMQL__F_SGN:
        return sgn(v);
    case PROMQL__F_CLAMP:
        return go_max(a1, go_min(a2, v));
    case PROMQL__F_CLAMP_MAX:
        return go_min(a1, v);
    case PROMQL__F_CLAMP_MIN:
        return go_max(a1, v);
    case PROMQL__F_ROUND: {
        double inv = 1.0 / a1;
        return floor(v * inv + 0.5) / inv;
    }
    default:
        return date_part(id, v);
    }
}

static int elementwise(struct promql__ctx *c, const struct promql_node *n, int id,
                       const struct promql__grid *g, struct promql__val *out)
{
    double *a1 = NULL, *a2 = NULL;
    int rc;
    size_t na = n->u.call.nargs;
    if (na == 0) {
        /* Date functions without argument: vector(time()). */
        struct promql__series *s = promql__series_new(c, g->n);
        if (s == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < g->n; i++) {
            s->v[i] = date_part(id, (double)(g->t[i] / 1000));
            s->ok[i] = 1;
        }
        out->type = PROMQL_TYPE_VECTOR;
        out->s = s;
        out->ns = 1;
        return HS_OK;
    }
    if (na >= 2 && (rc = scalar_arg(c, n->u.call.args[1], g, &a1)) != HS_OK)
        return rc;
    if (na >= 3 && (rc = scalar_arg(c, n->u.call.args[2], g, &a2)) != HS_OK)
        return rc;
    rc = vector_arg(c, n->u.call.args[0], g, out);
    if (rc != HS_OK)
        return rc;
    for (size_t k = 0; k < out->ns; k++) {
        struct promql__series *s = &out->s[k];
        for (size_t i = 0; i < g->n; i++) {
            double x1 = a1 ? a1[i] : 1, x2 = a2 ? a2[i] : 0;
            if (!s->ok[i])
                continue;
            if (id == PROMQL__F_CLAMP && x2 < x1) {
                s->ok[i] = 0;
                continue;
            }
            s->v[i] = math_fn(id, s->v[i], x1, x2);
        }
        s->drop_name = true;
    }
    return HS_OK;
}

/* ---- label_replace / label_join --------------------------------------------------- */

/* The text of a string argument, through any parentheses. */
static const char *str_arg(const struct promql_node *n)
{
    while (n->kind == PROMQL_NODE_PAREN)
        n = n->u.paren.expr;
    return n->kind == PROMQL_NODE_STRING ? n->u.str.value : "";
}

static int expand_repl(struct promql__ctx *c, pcre2_code *re, pcre2_match_data *md,
                       const char *repl, const char *subject, struct hs_buf *out)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t ngroups = pcre2_get_ovector_count(md);
    int rc = HS_OK;
    (void)c;
    for (const char *p = repl; *p != '\0' && rc == HS_OK;) {
        if (*p != '$') {
            rc = hs_buf_putc(out, *p++);
            continue;
        }
        p++;
        if (*p == '$') {
            rc = hs_buf_putc(out, '$');
            p++;
            continue;
        }
        /* Go's Expand: $name or ${name}; name is [A-Za-z0-9_]+ (longest). */
        char name[128];
        size_t nl = 0;
        bool brace = false;
        if (*p == '{') {
            const char *e = strchr(p + 1, '}');
            if (e == NULL || e == p + 1 || (size_t)(e - p - 1) >= sizeof name) {
                rc = hs_buf_putc(out, '$');
                continue;
            }
            nl = (size_t)(e - p - 1);
            memcpy(name, p + 1, nl);
            brace = true;
            bool okname = true;
            for (size_t i = 0; i < nl; i++) {
                char ch = name[i];
                if (!(ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                      (ch >= 'A' && ch <= 'Z')))
                    okname = false;
            }
            if (!okname) {
                rc = hs_buf_putc(out, '$');
                continue;
            }
            p = e + 1;
        } else {
            while ((*p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= 'A' && *p <= 'Z')) &&
                   nl < sizeof name - 1)
                name[nl++] = *p++;
            if (nl == 0) {
                rc = hs_buf_putc(out, '$');
                continue;
            }
        }
        (void)brace;
        name[nl] = '\0';
        long idx = -1;
        bool numeric = true;
        for (size_t i = 0; i < nl; i++) {
            if (name[i] < '0' || name[i] > '9')
                numeric = false;
        }
        if (numeric) {
            idx = 0;
            for (size_t i = 0; i < nl && idx < 100000; i++)
                idx = idx * 10 + (name[i] - '0');
        } else {
            int gi = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
            idx = gi > 0 ? gi : -1;
        }
        if (idx >= 0 && (uint32_t)idx < ngroups && ov[2 * idx] != PCRE2_UNSET)
            rc = hs_buf_append(out, subject + ov[2 * idx], ov[2 * idx + 1] - ov[2 * idx]);
    }
    return rc;
}

static int label_replace(struct promql__ctx *c, const struct promql_node *n,
                         const struct promql__grid *g, struct promql__val *out)
{
    const char *dst = str_arg(n->u.call.args[1]);
    const char *repl = str_arg(n->u.call.args[2]);
    const char *src = str_arg(n->u.call.args[3]);
    const char *rx = str_arg(n->u.call.args[4]);
    struct hs_buf pat, res;
    pcre2_code *re;
    pcre2_match_data *md;
    int errcode, rc = HS_OK;
    PCRE2_SIZE erroff;
    hs_buf_init(&pat, 0);
    if (hs_buf_printf(&pat, "^(?s:%s)$", rx) != HS_OK)
        return promql__oom(c);
    re = pcre2_compile((PCRE2_SPTR)pat.p, pat.len, PCRE2_UTF, &errcode, &erroff, NULL);
    hs_buf_cleanup(&pat);
    if (re == NULL)
        return hs_err_set(c->err, HS_EINVAL, "invalid regular expression in label_replace(): %s",
                          rx);
    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL) {
        pcre2_code_free(re);
        return promql__oom(c);
    }
    if (!hs_label_name_valid(dst, strlen(dst))) {
        rc = hs_err_set(c->err, HS_EINVAL, "invalid destination label name in label_replace(): %s",
                        dst);
        goto out;
    }
    rc = vector_arg(c, n->u.call.args[0], g, out);
    if (rc != HS_OK)
        goto out;
    hs_buf_init(&res, 0);
    for (size_t k = 0; k < out->ns && rc == HS_OK; k++) {
        struct promql__series *s = &out->s[k];
        const char *sv = hs_labels_get(&s->labels, src);
        if (sv == NULL)
            sv = "";
        int m = pcre2_match(re, (PCRE2_SPTR)sv, strlen(sv), 0, 0, md, NULL);
        if (m < 0)
            continue;
        hs_buf_reset(&res);
        if (hs_buf_putc(&res, '\0') != HS_OK) {
            rc = promql__oom(c);
            break;
        }
        hs_buf_reset(&res);
        if (expand_repl(c, re, md, repl, sv, &res) != HS_OK) {
            rc = promql__oom(c);
            break;
        }
        char *nv = hs_arena_strndup(c->arena, res.p ? res.p : "", res.len);
        if (nv == NULL) {
            rc = promql__oom(c);
            break;
        }
        rc = promql__labels_set(c, &s->labels, dst, nv, &s->labels);
        if (strcmp(dst, "__name__") == 0)
            s->drop_name = false;
    }
    hs_buf_cleanup(&res);
    if (rc == HS_OK)
        rc = promql__merge_same(c, out, g->n);
out:
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc;
}

static int label_join(struct promql__ctx *c, const struct promql_node *n,
                      const struct promql__grid *g, struct promql__val *out)
{
    const char *dst = str_arg(n->u.call.args[1]);
    const char *sep = str_arg(n->u.call.args[2]);
    struct hs_buf b;
    int rc;
    for (size_t i = 3; i < n->u.call.nargs; i++) {
        const char *src = str_arg(n->u.call.args[i]);
        if (!hs_label_name_valid(src, strlen(src)))
            return hs_err_set(c->err, HS_EINVAL, "invalid source label name in label_join(): %s",
                              src);
    }
    if (!hs_label_name_valid(dst, strlen(dst)))
        return hs_err_set(c->err, HS_EINVAL, "invalid destination label name in label_join(): %s",
                          dst);
    rc = vector_arg(c, n->u.call.args[0], g, out);
    if (rc != HS_OK)
        return rc;
    hs_buf_init(&b, 0);
    for (size_t k = 0; k < out->ns && rc == HS_OK; k++) {
        struct promql__series *s = &out->s[k];
        hs_buf_reset(&b);
        for (size_t i = 3; i < n->u.call.nargs && rc == HS_OK; i++) {
            const char *v = hs_labels_get(&s->labels, str_arg(n->u.call.args[i]));
            if (i > 3)
                rc = hs_buf_puts(&b, sep);
            if (rc == HS_OK && v != NULL)
                rc = hs_buf_puts(&b, v);
        }
        char *nv = rc == HS_OK ? hs_arena_strndup(c->arena, b.p ? b.p : "", b.len) : NULL;
        if (nv == NULL) {
            rc = promql__oom(c);
            break;
        }
        rc = promql__labels_set(c, &s->labels, dst, nv, &s->labels);
        if (strcmp(dst, "__name__") == 0)
            s->drop_name = false;
    }
    hs_buf_cleanup(&b);
    if (rc == HS_OK)
        rc = promql__merge_same(c, out, g->n);
    return rc;
}

/* ---- sort functions ------------------------------------------------------------------ */

/* Natural ordering of Prometheus' natsort: digit runs compare as numbers. */
static bool natless(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        bool da = *a >= '0' && *a <= '9', db = *b >= '0' && *b <= '9';
        if (da && db) {
            const char *sa = a, *sb = b;
            while (*sa == '0')
                sa++;
            while (*sb == '0')
                sb++;
            const char *ea = sa, *eb = sb;
            while (*ea >= '0' && *ea <= '9')
                ea++;
            while (*eb >= '0' && *eb <= '9')
                eb++;
            if (ea - sa != eb - sb)
                return ea - sa < eb - sb;
            int cmp = strncmp(sa, sb, (size_t)(ea - sa));
            if (cmp != 0)
                return cmp < 0;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b;
        a++;
        b++;
    }
    return *a == '\0' && *b != '\0';
}

struct sortctx {
    const struct promql_node *n;
    int id;
};

static int sort_cmp(const struct promql__series *x, const struct promql__series *y,
                    const struct sortctx *sc)
{
    if (sc->id == PROMQL__F_SORT || sc->id == PROMQL__F_SORT_DESC) {
        double a = x->v[0], b = y->v[0];
        bool desc = sc->id == PROMQL__F_SORT_DESC;
        /* NaN sorts last in both directions. */
        if (isnan(a) || isnan(b))
            return isnan(a) ? (isnan(b) ? 0 : 1) : -1;
        if (a == b)
            return 0;
        return (a < b) == !desc ? -1 : 1;
    }
    bool desc = sc->id == PROMQL__F_SORT_BY_LABEL_DESC;
    for (size_t i = 1; i < sc->n->u.call.nargs; i++) {
        const char *l = str_arg(sc->n->u.call.args[i]);
        const char *a = hs_labels_get(&x->labels, l), *b = hs_labels_get(&y->labels, l);
        a = a ? a : "";
        b = b ? b : "";
        if (strcmp(a, b) == 0)
            continue;
        bool lt = natless(a, b);
        return (lt != desc) ? -1 : 1;
    }
    int r = hs_labels_cmp(&x->labels, &y->labels);
    return desc ? -r : r;
}

static void stable_sort(struct promql__series *v, struct promql__series *tmp, size_t n,
                        const struct sortctx *sc)
{
    if (n < 2)
        return;
    size_t h = n / 2, i = 0, j = h, k = 0;
    stable_sort(v, tmp, h, sc);
    stable_sort(v + h, tmp, n - h, sc);
    while (i < h && j < n)
        tmp[k++] = sort_cmp(&v[j], &v[i], sc) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int sort_fn(struct promql__ctx *c, const struct promql_node *n, int id,
                   const struct promql__grid *g, struct promql__val *out)
{
    int rc = vector_arg(c, n->u.call.args[0], g, out);
    struct sortctx sc = {n, id};
    if (rc != HS_OK)
        return rc;
    if (c->range_query || g->n != 1) {
        if (c->range_query)
            promql__warn(c, n->pos,
                         "sort is ineffective for range queries since results are always ordered "
                         "by labels");
        return HS_OK;
    }
    /* Keep only the series present at the single step, then sort them. */
    size_t w = 0;
    for (size_t k = 0; k < out->ns; k++) {
        if (out->s[k].ok[0])
            out->s[w++] = out->s[k];
    }
    out->ns = w;
    struct promql__series *tmp = promql__alloc(c, (w ? w : 1) * sizeof *tmp);
    if (tmp == NULL)
        return promql__oom(c);
    stable_sort(out->s, tmp, w, &sc);
    return HS_OK;
}

/* ---- histogram_quantile over classic buckets ---------------------------------------- */

struct bucket {
    double ub, count;
};

static int cmp_bucket_member(const void *a, const void *b, const double *ubs)
{
    double x = ubs[*(const size_t *)a], y = ubs[*(const size_t *)b];
    return x < y ? -1 : x > y;
}

static void sort_members(size_t *m, size_t n, const double *ubs)
{
    /* insertion sort: groups are small (tens of buckets) */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && cmp_bucket_member(&m[j - 1], &m[j], ubs) > 0; j--) {
            size_t t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    }
}

static bool almost_equal(double a, double b, double eps)
{
    const double min_normal = 2.2250738585072014e-308;
    if (isnan(a) && isnan(b))
        return true;
    if (a == b)
        return true;
    double sum = fabs(a) + fabs(b), diff = fabs(a - b);
    if (a == 0 || b == 0 || sum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(sum, 1.7976931348623157e308) < eps;
}

/* Prometheus' BucketQuantile on buckets sorted by upper bound. */
static double bucket_quantile(double q, struct bucket *b, size_t n, bool *forced)
{
    *forced = false;
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (n == 0 || !(isinf(b[n - 1].ub) && b[n - 1].ub > 0))
        return NAN;
    /* coalesce equal bounds */
    size_t w = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].ub == b[w].ub)
            b[w].count += b[i].count;
        else
            b[++w] = b[i];
    }
    n = w + 1;
    /* monotonicity */
    double prev = b[0].count;
    for (size_t i = 1; i < n; i++) {
        double cur = b[i].count;
        if (cur == prev)
            continue;
        if (almost_equal(prev, cur, 1e-12)) {
            b[i].count = prev;
            continue;
        }
        if (cur < prev) {
            b[i].count = prev;
            *forced = true;
            continue;
        }
        prev = cur;
    }
    if (n < 2)
        return NAN;
    double obs = b[n - 1].count;
    if (obs == 0)
        return NAN;
    double rank = q * obs;
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b[mid].count >= rank)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t k = lo;
    if (k == n - 1)
        return b[n - 2].ub;
    if (k == 0 && b[0].ub <= 0)
        return b[0].ub;
    double start = 0, end = b[k].ub, count = b[k].count;
    if (k > 0) {
        start = b[k - 1].ub;
        count -= b[k - 1].count;
        rank -= b[k - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* Prometheus' BucketFraction on buckets sorted by upper bound. */
static double bucket_fraction(double lower, double upper, struct bucket *b, size_t n)
{
    if (n == 0 || !(isinf(b[n - 1].ub) && b[n - 1].ub > 0))
        return NAN;
    size_t w = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].ub == b[w].ub)
            b[w].count += b[i].count;
        else
            b[++w] = b[i];
    }
    n = w + 1;
    double count = b[n - 1].count;
    if (count == 0 || isnan(lower) || isnan(upper))
        return NAN;
    if (lower >= upper)
        return 0;
    double rank = 0, lrank = 0, urank = 0;
    bool lset = false, uset = false;
    double lb = b[0].ub <= 0 ? -INFINITY : 0.0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            lb = b[i - 1].ub;
        double ub = b[i].ub;
        if (!lset && lb >= lower) {
            lrank = rank;
            lset = true;
        }
        if (!uset && lb >= upper) {
            urank = rank;
            uset = true;
        }
        if (lset && uset)
            break;
        if (!lset && lb < lower && ub > lower) {
            lrank = isinf(lb) && lb < 0 ? b[i].count
                                        : rank + (b[i].count - rank) * (lower - lb) / (ub - lb);
            lset = true;
        }
        if (!uset && lb < upper && ub > upper) {
            urank = isinf(lb) && lb < 0 ? b[i].count
                                        : rank + (b[i].count - rank) * (upper - lb) / (ub - lb);
            uset = true;
        }
        if (lset && uset)
            break;
        rank = b[i].count;
    }
    if (!lset || lrank > count)
        lrank = count;
    if (!uset || urank > count)
        urank = count;
    return (urank - lrank) / count;
}

static void warn_quantile(struct promql__ctx *c, size_t pos, double q)
{
    char num[64];
    if (!(isnan(q) || q < 0 || q > 1))
        return;
    promql__fmt_float_g(q, num, sizeof num);
    promql__warn(c, pos, "quantile value should be between 0 and 1, got %s", num);
}

/* OpenMetrics spelling of a quantile label value: "0.0", "0.25", "1.0", "NaN". */
static void om_float(double v, char *out, size_t len)
{
    promql__fmt_float_g(v, out, len);
    if (isnan(v) || isinf(v))
        return;
    if (strchr(out, '.') == NULL && strchr(out, 'e') == NULL && strlen(out) + 3 < len) {
        size_t l = strlen(out);
        memcpy(out + l, ".0", 3);
    }
}

static void warn_bad_le(struct promql__ctx *c, size_t npos, const struct promql__series *s,
                        const char *le, size_t nsteps)
{
    const char *name = hs_labels_get(&s->labels, "__name__");
    bool present = false;
    struct hs_buf lq, nq;
    for (size_t i = 0; i < nsteps && !present; i++)
        present = s->ok[i];
    if (!present)
        return;
    hs_buf_init(&lq, 0);
    hs_buf_init(&nq, 0);
    if (hs_buf_json_str(&lq, le ? le : "", le ? strlen(le) : 0) == HS_OK &&
        (name == NULL || hs_buf_json_str(&nq, name, strlen(name)) == HS_OK)) {
        if (name != NULL && name[0] != '\0')
            promql__warn(c, npos,
                         "bucket label \"le\" is missing or has a malformed value of %s for "
                         "metric name %s",
                         lq.p, nq.p);
        else
            promql__warn(c, npos, "bucket label \"le\" is missing or has a malformed value of %s",
                         lq.p);
    }
    hs_buf_cleanup(&lq);
    hs_buf_cleanup(&nq);
}

static void info_monotonic(struct promql__ctx *c, size_t npos, const struct hs_labels *ls)
{
    const char *name = hs_labels_get(ls, "__name__");
    const char *base = "input to histogram_quantile needed to be fixed for monotonicity (see "
                       "https://prometheus.io/docs/prometheus/latest/querying/functions/"
                       "#histogram_quantile)";
    if (name != NULL && name[0] != '\0')
        promql__info(c, npos, "%s for metric name \"%s\"", base, name);
    else
        promql__info(c, npos, "%s", base);
}

/*
 * histogram_quantile(q, v), histogram_quantiles(v, label, q...) and
 * histogram_fraction(lower, upper, v) over classic `le` buckets.  Buckets
 * are grouped by their labels without `le` (the metric name included, as
 * the name is dropped only at the end); each group's members are sorted by
 * upper bound once, so a step only gathers the present counts.
 */
static int classic_histogram(struct promql__ctx *c, const struct promql_node *n, int id,
                             const struct promql__grid *g, struct promql__val *out)
{
    double *qs[16], *upper = NULL;
    const char *qlabel = NULL;
    size_t nq = 1, vi;
    struct promql__val in;
    struct promql__map map;
    struct hs_buf key;
    int rc = HS_OK;
    if (id == PROMQL__F_HISTOGRAM_QUANTILES) {
        vi = 0;
        qlabel = str_arg(n->u.call.args[1]);
        nq = n->u.call.nargs - 2;
        if (nq > HS_ARRAY_LEN(qs))
            return hs_err_set(c->err, HS_EINVAL, "too many quantiles");
        for (size_t k = 0; k < nq && rc == HS_OK; k++)
            rc = scalar_arg(c, n->u.call.args[k + 2], g, &qs[k]);
    } else if (id == PROMQL__F_HISTOGRAM_FRACTION) {
        vi = 2;
        rc = scalar_arg(c, n->u.call.args[0], g, &qs[0]);
        if (rc == HS_OK)
            rc = scalar_arg(c, n->u.call.args[1], g, &upper);
    } else {
        vi = 1;
        rc = scalar_arg(c, n->u.call.args[0], g, &qs[0]);
    }
    size_t npos = n->u.call.args[vi]->pos;
    if (rc == HS_OK)
        rc = vector_arg(c, n->u.call.args[vi], g, &in);
    if (rc != HS_OK)
        return rc;
    if (id != PROMQL__F_HISTOGRAM_FRACTION) {
        for (size_t k = 0; k < nq; k++) {
            size_t qpos = n->u.call.args[id == PROMQL__F_HISTOGRAM_QUANTILES ? k + 2 : 0]->pos;
            for (size_t i = 0; i < g->n; i++)
                warn_quantile(c, qpos, qs[k][i]);
        }
    }
    double *ubs = promql__alloc(c, (in.ns ? in.ns : 1) * sizeof *ubs);
    int *gi = promql__alloc(c, (in.ns ? in.ns : 1) * sizeof *gi);
    struct hs_labels *glabels = promql__alloc(c, (in.ns ? in.ns : 1) * sizeof *glabels);
    size_t ng = 0;
    if (ubs == NULL || gi == NULL || glabels == NULL)
        return promql__oom(c);
    memset(&map, 0, sizeof map);
    hs_buf_init(&key, 0);
    for (size_t k = 0; k < in.ns && rc == HS_OK; k++) {
        struct promql__series *s = &in.s[k];
        const char *le = hs_labels_get(&s->labels, "le");
        struct hs_labels gl;
        bool added;
        if (le == NULL || hs_parse_double(le, &ubs[k]) != HS_OK) {
            warn_bad_le(c, npos, s, le, g->n);
            gi[k] = -1;
            continue;
        }
        rc = promql__labels_without(c, &s->labels, "le", &gl);
        if (rc != HS_OK)
            break;
        hs_buf_reset(&key);
        if (promql__labels_key(&gl, &key) != HS_OK) {
            rc = promql__oom(c);
            break;
        }
        rc = promql__map_put(c, &map, key.p ? key.p : "", key.len, (int)ng, &gi[k], &added);
        if (rc == HS_OK && added)
            glabels[ng++] = gl;
    }
    hs_buf_cleanup(&key);
    if (rc != HS_OK)
        return rc;
    /* Output series: one per group and quantile. */
    out->type = PROMQL_TYPE_VECTOR;
    out->ns = ng * nq;
    out->s = promql__alloc(c, (out->ns ? out->ns : 1) * sizeof *out->s);
    if (out->s == NULL)
        return promql__oom(c);
    for (size_t q = 0; q < nq; q++) {
        char qv[64];
        const char *qstr = NULL;
        if (qlabel != NULL) {
            om_float(qs[q][0], qv, sizeof qv);
            qstr = hs_arena_strndup(c->arena, qv, strlen(qv));
            if (qstr == NULL)
                return promql__oom(c);
        }
        for (size_t j = 0; j < ng; j++) {
            struct promql__series *os = promql__series_new(c, g->n);
            if (os == NULL)
                return promql__oom(c);
            os->labels = glabels[j];
            if (qlabel != NULL &&
                promql__labels_set(c, &glabels[j], qlabel, qstr, &os->labels) != HS_OK)
                return promql__oom(c);
            os->drop_name = true;
            out->s[q * ng + j] = *os;
        }
    }
    /* Members of each group, sorted by upper bound once. */
    size_t *cnt = hs_arena_calloc(c->arena, (ng ? ng : 1) * sizeof *cnt);
    size_t *off = promql__alloc(c, (ng + 1) * sizeof *off);
    size_t *mem = promql__alloc(c, (in.ns ? in.ns : 1) * sizeof *mem);
    size_t *fill = hs_arena_calloc(c->arena, (ng ? ng : 1) * sizeof *fill);
    struct bucket *bk = promql__alloc(c, (in.ns ? in.ns : 1) * sizeof *bk);
    if (cnt == NULL || off == NULL || mem == NULL || fill == NULL || bk == NULL)
        return promql__oom(c);
    for (size_t k = 0; k < in.ns; k++) {
        if (gi[k] >= 0)
            cnt[gi[k]]++;
    }
    off[0] = 0;
    for (size_t j = 0; j < ng; j++)
        off[j + 1] = off[j] + cnt[j];
    for (size_t k = 0; k < in.ns; k++) {
        if (gi[k] >= 0)
            mem[off[gi[k]] + fill[gi[k]]++] = k;
    }
    for (size_t j = 0; j < ng; j++)
        sort_members(mem + off[j], cnt[j], ubs);
    bool forced_any = false;
    for (size_t i = 0; i < g->n; i++) {
        for (size_t j = 0; j < ng; j++) {
            for (size_t q = 0; q < nq; q++) {
                size_t nb = 0;
                bool forced = false;
                for (size_t m = off[j]; m < off[j + 1]; m++) {
                    size_t k = mem[m];
                    if (!in.s[k].ok[i])
                        continue;
                    bk[nb].ub = ubs[k];
                    bk[nb].count = in.s[k].v[i];
                    nb++;
                }
                if (nb == 0)
                    break;
                struct promql__series *os = &out->s[q * ng + j];
                if (id == PROMQL__F_HISTOGRAM_FRACTION)
                    os->v[i] = bucket_fraction(qs[0][i], upper[i], bk, nb);
                else
                    os->v[i] = bucket_quantile(qs[q][i], bk, nb, &forced);
                os->ok[i] = 1;
                if (forced && !forced_any) {
                    forced_any = true;
                    info_monotonic(c, npos, &glabels[j]);
                }
            }
        }
        if ((i & 255) == 0 && (rc = promql__check(c)) != HS_OK)
            return rc;
    }
    return HS_OK;
}

/* ---- range-vector functions ------------------------------------------------------------ */

/* The extrapolation of rate/increase/delta depends on the window's shape
 * only (offsets of its first and last samples, their count, the range):
 * with regular scrapes every step of a range query has the same shape, so
 * its divisions are done once per shape. */
struct rate_memo {
    bool valid, counter, rate;
    size_t n;
    int64_t d_start, d_end, d_sampled, range_ms;
    double to_start, to_end, sampled, factor; /* factor with to_start not lowered by to_zero */
};

struct win {
    struct rate_memo *memo; /* NULL: no memo */
    const int64_t *t;
    const double *v;
    const int64_t *st; /* start timestamps aligned with t, or NULL */
    /* drops[i] = how many samples up to i are below their predecessor (a
     * prefix count over the whole series, aligned with t), or NULL */
    const uint32_t *drops;
    size_t n;
    int64_t start; /* exclusive */
    int64_t end;   /* inclusive */
    int64_t range_ms;
};

/* Prometheus' isStartTimestampReset: does cur's start time say the counter restarted? */
static bool st_reset(int64_t prev_st, int64_t prev_t, int64_t cur_st, int64_t cur_t)
{
    if (cur_st == 0 || cur_st >= cur_t)
        return false;
    if (cur_st < prev_t)
        return false;
    if (cur_st > prev_t)
        return true;
    if (prev_st > prev_t)
        return false;
    return prev_st != 0 && prev_st != prev_t;
}

/* Prometheus' checkStartTimeOverlap. */
static bool st_overlap(int64_t prev_st, int64_t prev_t, int64_t cur_st)
{
    return cur_st != 0 && cur_st < prev_t && cur_st != prev_st;
}

/*
 * rate/increase/delta with Prometheus' extrapolation.  With start timestamps
 * a restart inside the window counts as a reset, and a start time inside
 * the window stands for a zero sample there (no extrapolation to the left;
 * a single sample then suffices).  *overlap is set when a start time
 * overlaps the previous sample.
 */
static double extrapolated_rate(const struct win *w, bool counter, bool rate, bool *ok,
                                bool *overlap)
{
    size_t n = w->n;
    const int64_t *st = counter ? w->st : NULL;
    *ok = false;
    *overlap = false;
    if (n == 0)
        return 0;
    double result = w->v[n - 1] - w->v[0];
    /* Without start times a window holding no drop needs no reset scan. */
    if (counter && (st != NULL || w->drops == NULL || w->drops[n - 1] != w->drops[0])) {
        for (size_t i = 1; i < n; i++) {
            if (st != NULL && !*overlap && st_overlap(st[i - 1], w->t[i - 1], st[i]))
                *overlap = true;
            if (w->v[i] < w->v[i - 1] ||
                (st != NULL && st_reset(st[i - 1], w->t[i - 1], st[i], w->t[i])))
                result += w->v[i - 1];
        }
    }
    if (st == NULL && n > 1 && w->memo != NULL) {
        /* The same arithmetic as below, its shape-only part memoised. */
        struct rate_memo *m = w->memo;
        int64_t ds = w->t[0] - w->start, de = w->end - w->t[n - 1], dm = w->t[n - 1] - w->t[0];
        if (!m->valid || m->n != n || m->d_start != ds || m->d_end != de || m->d_sampled != dm ||
            m->range_ms != w->range_ms || m->counter != counter || m->rate != rate) {
            double ts = (double)ds / 1000, te = (double)de / 1000, sm = (double)dm / 1000;
            double avg = sm / (double)(n - 1), thr = avg * 1.1;
            if (ts >= thr)
                ts = avg / 2;
            if (te >= thr)
                te = avg / 2;
            double f = 1.0;
            if (sm != 0)
                f = (sm + ts + te) / sm;
            if (rate)
                f /= (double)w->range_ms / 1000;
            *m = (struct rate_memo){true, counter, rate, n, ds, de, dm, w->range_ms, ts, te, sm, f};
        }
        double factor = m->factor;
        if (counter && result > 0 && w->v[0] >= 0) {
            double to_zero = m->sampled * (w->v[0] / result);
            if (to_zero < m->to_start) {
                factor = 1.0;
                if (m->sampled != 0)
                    factor = (m->sampled + to_zero + m->to_end) / m->sampled;
                if (rate)
                    factor /= (double)w->range_ms / 1000;
            }
        }
        *ok = true;
        return result * factor;
    }
    double to_start = (double)(w->t[0] - w->start) / 1000;
    double to_end = (double)(w->end - w->t[n - 1]) / 1000;
    double sampled = (double)(w->t[n - 1] - w->t[0]) / 1000;
    double avg = n > 1 ? sampled / (double)(n - 1) : 0;
    double thr = avg * 1.1;
    if (st != NULL && st[0] != 0 && st[0] > w->start && st[0] < w->t[0]) {
        to_start = 0;
        sampled = (double)(w->t[n - 1] - st[0]) / 1000;
        result += w->v[0];
    } else if (n == 1) {
        return 0;
    } else {
        if (to_start >= thr)
            to_start = avg / 2;
        if (counter) {
            double to_zero = to_start;
            if (result > 0 && w->v[0] >= 0)
                to_zero = sampled * (w->v[0] / result);
            if (to_zero < to_start)
                to_start = to_zero;
        }
    }
    if (to_end >= thr)
        to_end = avg / 2;
    double factor = 1.0;
    if (sampled != 0)
        factor = (sampled + to_start + to_end) / sampled;
    if (rate)
        factor /= (double)w->range_ms / 1000;
    *ok = true;
    return result * factor;
}

static double lin_reg(const struct win *w, int64_t icpt_t, double *intercept)
{
    double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double init = w->v[0];
    bool cst = true;
    for (size_t i = 0; i < w->n; i++) {
        double y = w->v[i];
        if (cst && i > 0 && y != init)
            cst = false;
        n += 1.0;
        double x = (double)(w->t[i] - icpt_t) / 1e3;
        kahan_inc(x, &sx, &cx);
        kahan_inc(y, &sy, &cy);
        kahan_inc(x * y, &sxy, &cxy);
        kahan_inc(x * x, &sx2, &cx2);
    }
    if (cst) {
        if (isinf(init)) {
            *intercept = NAN;
            return NAN;
        }
        *intercept = init;
        return 0;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / n;
    double var = sx2 - sx * sx / n;
    double slope = cov / var;
    *intercept = sy / n - slope * sx / n;
    return slope;
}

/* Computes one range function over window w; false when there is no output. */
static bool range_fn(struct promql__ctx *c, int id, const struct win *w, double a0, double a1,
                     int64_t step_t, double *out, bool *overlap)
{
    size_t n = w->n;
    bool ok = true;
    (void)c;
    *overlap = false;
    if (n == 0)
        return false;
    switch (id) {
    case PROMQL__F_RATE:
        *out = extrapolated_rate(w, true, true, &ok, overlap);
        return ok;
    case PROMQL__F_INCREASE:
        *out = extrapolated_rate(w, true, false, &ok, overlap);
        return ok;
    case PROMQL__F_DELTA:
        *out = extrapolated_rate(w, false, false, &ok, overlap);
        return ok;
    case PROMQL__F_IRATE:
    case PROMQL__F_IDELTA: {
        if (n < 2)
            return false;
        int64_t dt = w->t[n - 1] - w->t[n - 2];
        if (dt == 0)
            return false;
        double v = w->v[n - 1];
        bool reset =
            w->v[n - 1] < w->v[n - 2] ||
            (w->st != NULL && st_reset(w->st[n - 2], w->t[n - 2], w->st[n - 1], w->t[n - 1]));
        if (id == PROMQL__F_IDELTA || !reset)
            v = w->v[n - 1] - w->v[n - 2];
        if (id == PROMQL__F_IRATE)
            v /= (double)dt / 1000;
        *out = v;
        return true;
    }
    case PROMQL__F_DERIV: {
        double icpt;
        if (n < 2)
            return false;
        *out = lin_reg(w, w->t[0], &icpt);
        return true;
    }
    case PROMQL__F_PREDICT_LINEAR: {
        double icpt, slope;
        if (n < 2)
            return false;
        slope = lin_reg(w, step_t, &icpt);
        *out = slope * a0 + icpt;
        return true;
    }
    case PROMQL__F_CHANGES:
    case PROMQL__F_RESETS: {
        double k = 0;
        for (size_t i = 1; i < n; i++) {
            double p = w->v[i - 1], cur = w->v[i];
            if (id == PROMQL__F_CHANGES) {
                if (cur != p && !(isnan(cur) && isnan(p)))
                    k++;
            } else if (cur < p ||
                       (w->st != NULL && st_reset(w->st[i - 1], w->t[i - 1], w->st[i], w->t[i]))) {
                k++;
            }
        }
        *out = k;
        return true;
    }
    case PROMQL__F_AVG_OVER_TIME: {
        double sum = w->v[0], count = 1, mean = 0, kc = 0;
        bool incr = false;
        for (size_t i = 1; i < n; i++) {
            double f = w->v[i];
            count = (double)(i + 1);
            if (!incr) {
                double ns = sum, nc = kc;
                kahan_inc(f, &ns, &nc);
                if (!isinf(ns)) {
                    sum = ns;
                    kc = nc;
                    continue;
                }
                incr = true;
                mean = sum / (count - 1);
                kc /= count - 1;
            }
            double q = (count - 1) / count;
            double m = q * mean, cc = q * kc;
            kahan_inc(f / count, &m, &cc);
            mean = m;
            kc = cc;
        }
        *out = incr ? mean + kc : sum / count + kc / count;
        return true;
    }
    case PROMQL__F_SUM_OVER_TIME: {
        double sum = 0, kc = 0;
        for (size_t i = 0; i < n; i++)
            kahan_inc(w->v[i], &sum, &kc);
        *out = isinf(sum) ? sum : sum + kc;
        return true;
    }
    case PROMQL__F_COUNT_OVER_TIME:
        *out = (double)n;
        return true;
    case PROMQL__F_PRESENT_OVER_TIME:
        *out = 1;
        return true;
    case PROMQL__F_LAST_OVER_TIME:
        *out = w->v[n - 1];
        return true;
    case PROMQL__F_FIRST_OVER_TIME:
        *out = w->v[0];
        return true;
    case PROMQL__F_TS_OF_LAST_OVER_TIME:
        *out = (double)w->t[n - 1] / 1000;
        return true;
    case PROMQL__F_TS_OF_FIRST_OVER_TIME:
        *out = (double)w->t[0] / 1000;
        return true;
    case PROMQL__F_MAX_OVER_TIME:
    case PROMQL__F_MIN_OVER_TIME:
    case PROMQL__F_TS_OF_MAX_OVER_TIME:
    case PROMQL__F_TS_OF_MIN_OVER_TIME: {
        double best = w->v[0];
        int64_t bt = w->t[0];
        if (id == PROMQL__F_MAX_OVER_TIME || id == PROMQL__F_MIN_OVER_TIME) {
            /* The value alone: one tight loop per direction (NaN loses to any number). */
            bool mx = id == PROMQL__F_MAX_OVER_TIME;
            for (size_t i = 1; i < n; i++) {
                double f = w->v[i];
                if ((mx ? f > best : f < best) || isnan(best))
                    best = f;
            }
            *out = best;
            return true;
        }
        for (size_t i = 0; i < n; i++) {
            double f = w->v[i];
            bool take;
            switch (id) {
            case PROMQL__F_MAX_OVER_TIME:
                take = f > best || isnan(best);
                break;
            case PROMQL__F_MIN_OVER_TIME:
                take = f < best || isnan(best);
                break;
            case PROMQL__F_TS_OF_MAX_OVER_TIME:
                take = f >= best || isnan(best);
                break;
            default:
                take = f <= best || isnan(best);
                break;
            }
            if (take) {
                best = f;
                bt = w->t[i];
            }
        }
        *out = (id == PROMQL__F_MAX_OVER_TIME || id == PROMQL__F_MIN_OVER_TIME) ? best
                                                                                : (double)bt / 1000;
        return true;
    }
    case PROMQL__F_STDDEV_OVER_TIME:
    case PROMQL__F_STDVAR_OVER_TIME: {
        double count = 0, mean = 0, cm = 0, aux = 0, ca = 0;
        for (size_t i = 0; i < n; i++) {
            double f = w->v[i];
            count++;
            double delta = f - (mean + cm);
            kahan_inc(delta / count, &mean, &cm);
            kahan_inc(delta * (f - (mean + cm)), &aux, &ca);
        }
        double var = (aux + ca) / count;
        *out = id == PROMQL__F_STDDEV_OVER_TIME ? sqrt(var) : var;
        return true;
    }
    case PROMQL__F_DOUBLE_EXPONENTIAL_SMOOTHING: {
        if (n < 2)
            return false;
        double s0 = 0, s1 = w->v[0], b = w->v[1] - w->v[0];
        for (size_t i = 1; i < n; i++) {
            double x = a0 * w->v[i];
            if (i - 1 != 0)
                b = a1 * (s1 - s0) + (1 - a1) * b;
            double y = (1 - a0) * (s1 + b);
            s0 = s1;
            s1 = x + y;
        }
        *out = s1;
        return true;
    }
    default:
        return false;
    }
}

/*
 * rate/increase/delta over an anchored or smoothed window (Prometheus'
 * extendedRate): the value at the window start is the sample at or before
 * it (interpolated when smoothed), the value at the end the last sample
 * (interpolated past the end when smoothed); no extrapolation.
 */
static bool extended_rate(const struct win *w, bool smoothed, bool counter, bool rate, double *out)
{
    const int64_t *t = w->t;
    const double *v = w->v;
    size_t last = w->n - 1, first = 0;
    while (first < last && t[first] <= w->start)
        first++;
    first = first > 0 ? first - 1 : 0;
    if (smoothed) {
        size_t k = 0;
        while (k < last && t[k] < w->end)
            k++;
        last = k;
    }
    if (t[last] <= w->start)
        return false;
    if (smoothed && t[first] > w->end)
        return false;
    double left = v[first], right = v[last];
    if (smoothed && t[first] < w->start)
        left =
            promql__interpolate(t[first], v[first], t[first + 1], v[first + 1], w->start, counter);
    if (smoothed && last > 0 && t[last] > w->end)
        right = promql__interpolate(t[last - 1], v[last - 1], t[last], v[last], w->end, counter);
    double result = right - left;
    if (counter) {
        size_t f = first, l = last;
        double prev = left, corr = 0;
        bool empty = false;
        if (t[f] <= w->start)
            f++;
        if (t[l] >= w->end) {
            if (l == 0)
                empty = true;
            else
                l--;
        }
        for (size_t i = f; !empty && i <= l && f <= l; i++) {
            if (v[i] < prev)
                corr += prev;
            prev = v[i];
        }
        if (right < prev)
            corr += prev;
        result += corr;
    }
    if (rate)
        result /= (double)w->range_ms / 1000;
    *out = result;
    return true;
}

/* The functions allowed on anchored/smoothed windows. */
static bool extended_fn(int id, const struct win *w, bool smoothed, double *out)
{
    if (w->n == 0)
        return false;
    switch (id) {
    case PROMQL__F_RATE:
        return extended_rate(w, smoothed, true, true, out);
    case PROMQL__F_INCREASE:
        return extended_rate(w, smoothed, true, false, out);
    case PROMQL__F_DELTA:
        return extended_rate(w, smoothed, false, false, out);
    default: {
        /* changes/resets (anchored): start at the last sample at or before the
         * window start; nothing when no sample lies after it. */
        size_t first = 0;
        while (first < w->n && w->t[first] <= w->start)
            first++;
        if (first >= w->n)
            return false;
        first = first > 0 ? first - 1 : 0;
        struct win sub = *w;
        sub.t += first;
        sub.v += first;
        sub.st = NULL;
        sub.drops = NULL;
        sub.n -= first;
        double k = 0;
        for (size_t i = 1; i < sub.n; i++) {
            double p = sub.v[i - 1], cur = sub.v[i];
            if (id == PROMQL__F_CHANGES ? (cur != p && !(isnan(cur) && isnan(p))) : cur < p)
                k++;
        }
        *out = k;
        return true;
    }
    }
}

/* quantile_over_time and mad_over_time need a scratch copy of the window. */
static bool range_sorting_fn(int id, const struct win *w, double q, double *scratch, double *out)
{
    size_t n = w->n;
    if (n == 0)
        return false;
    if (id == PROMQL__F_MAD_OVER_TIME) {
        for (size_t i = 0; i < n; i++) {
            if (isnan(w->v[i])) {
                *out = NAN;
                return true;
            }
        }
    }
    memcpy(scratch, w->v, n * sizeof *scratch);
    if (id == PROMQL__F_QUANTILE_OVER_TIME) {
        *out = promql__quantile(q, scratch, n);
        return true;
    }
    double med = promql__quantile(0.5, scratch, n);
    for (size_t i = 0; i < n; i++)
        scratch[i] = fabs(scratch[i] - med);
    *out = promql__quantile(0.5, scratch, n);
    return true;
}

static bool counter_like(const char *name)
{
    return hs_has_suffix(name, "_total") || hs_has_suffix(name, "_sum") ||
           hs_has_suffix(name, "_count") || hs_has_suffix(name, "_bucket");
}

static int range_call(struct promql__ctx *c, const struct promql_node *n, int id,
                      const struct promql__grid *g, struct promql__val *out)
{
    size_t mi = id == PROMQL__F_QUANTILE_OVER_TIME ? 1 : 0;
    double *sa[2] = {NULL, NULL};
    size_t ns = 0;
    struct promql__val m;
    int rc;
    for (size_t a = 0; a < n->u.call.nargs; a++) {
        if (a == mi)
            continue;
        rc = scalar_arg(c, n->u.call.args[a], g, &sa[ns < 2 ? ns : 1]);
        if (rc != HS_OK)
            return rc;
        ns++;
    }
    rc = promql__eval(c, n->u.call.args[mi], g, &m);
    if (rc != HS_OK)
        return rc;
    if (m.type != PROMQL_TYPE_MATRIX)
        return hs_err_set(c->err, HS_EINVAL, "expected a range vector argument");
    if (m.ext == PROMQL__EXT_ANCHORED &&
        !(id == PROMQL__F_RESETS || id == PROMQL__F_CHANGES || id == PROMQL__F_RATE ||
          id == PROMQL__F_INCREASE || id == PROMQL__F_DELTA))
        return hs_err_set(c->err, HS_EINVAL,
                          "anchored modifier can only be used with: changes, delta, increase, "
                          "rate, resets - not with %s",
                          n->u.call.func->name);
    if (m.ext == PROMQL__EXT_SMOOTHED &&
        !(id == PROMQL__F_RATE || id == PROMQL__F_INCREASE || id == PROMQL__F_DELTA))
        return hs_err_set(c->err, HS_EINVAL,
                          "smoothed modifier can only be used with: delta, increase, rate - not "
                          "with %s",
                          n->u.call.func->name);
    int64_t xlb = m.ext != 0 ? c->opts->lookback_ms : 0;
    if (id == PROMQL__F_DOUBLE_EXPONENTIAL_SMOOTHING) {
        for (size_t i = 0; i < g->n; i++) {
            if (sa[0][i] <= 0 || sa[0][i] >= 1)
                return hs_err_set(c->err, HS_EINVAL,
                                  "invalid smoothing factor. Expected: 0 < sf < 1, got: %f",
                                  sa[0][i]);
            if (sa[1][i] <= 0 || sa[1][i] >= 1)
                return hs_err_set(c->err, HS_EINVAL,
                                  "invalid trend factor. Expected: 0 < tf < 1, got: %f", sa[1][i]);
        }
    }
    out->type = PROMQL_TYPE_VECTOR;
    if (id == PROMQL__F_ABSENT_OVER_TIME) {
        struct promql__series *s = promql__series_new(c, g->n);
        if (s == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < g->n; i++) {
            bool any = false;
            for (size_t k = 0; k < m.nm && !any; k++) {
                const struct promql__mseries *ms = &m.m[k];
                int64_t end = m.wend[i], start = end - m.range_ms;
                size_t lo = 0, hi = ms->n;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (ms->t[mid] <= start)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                any = lo < ms->n && ms->t[lo] <= end;
            }
            s->ok[i] = !any;
            s->v[i] = 1;
        }
        /* Labels from the selector's equality matchers. */
        const struct promql_node *a = n->u.call.args[0];
        if (a->kind == PROMQL_NODE_MATRIX)
            rc = promql__absent_labels(c, a->u.matrix.vector, &s->labels);
        if (rc != HS_OK)
            return rc;
        out->s = s;
        out->ns = 1;
        return HS_OK;
    }
    out->s = promql__alloc(c, (m.nm ? m.nm : 1) * sizeof *out->s);
    if (out->s == NULL)
        return promql__oom(c);
    out->ns = 0;
    size_t maxn = 0;
    for (size_t k = 0; k < m.nm; k++)
        maxn = m.m[k].n > maxn ? m.m[k].n : maxn;
    double *scratch = promql__alloc(c, (maxn ? maxn : 1) * sizeof *scratch);
    if (scratch == NULL)
        return promql__oom(c);
    /* rate/increase: prefix counts of drops per series, so that windows with no
     * counter reset skip the per-sample scan (exact: the scan runs unchanged
     * wherever a drop lies inside the window). */
    uint32_t *drops = NULL;
    if ((id == PROMQL__F_RATE || id == PROMQL__F_INCREASE) && m.ext == 0) {
        drops = promql__alloc(c, (maxn ? maxn : 1) * sizeof *drops);
        if (drops == NULL)
            return promql__oom(c);
    }
    /* max/min_over_time: a monotonic queue of sample indexes per series gives each
     * window's result without re-reading it (the earliest of equal extremes, NaN
     * only when the window holds nothing else, as the per-window scan does). */
    size_t *dq = NULL;
    bool dq_max = id == PROMQL__F_MAX_OVER_TIME;
    if ((id == PROMQL__F_MAX_OVER_TIME || id == PROMQL__F_MIN_OVER_TIME) && m.ext == 0) {
        dq = promql__alloc(c, (maxn ? maxn : 1) * sizeof *dq);
        if (dq == NULL)
            return promql__oom(c);
    }
    bool keep_name = id == PROMQL__F_LAST_OVER_TIME || id == PROMQL__F_FIRST_OVER_TIME;
    struct rate_memo memo = {0};
    for (size_t k = 0; k < m.nm; k++) {
        const struct promql__mseries *ms = &m.m[k];
        struct promql__series *s = promql__series_new(c, g->n);
        size_t lo = 0, hi = 0;
        bool any = false;
        if (s == NULL)
            return promql__oom(c);
        if (ms->n == 0)
            continue;
        s->labels = ms->labels;
        s->drop_name = !keep_name || ms->drop_name;
        const uint32_t *ms_drops = NULL;
        if (drops != NULL && ms->st == NULL) {
            drops[0] = 0;
            for (size_t j = 1; j < ms->n; j++)
                drops[j] = drops[j - 1] + (ms->v[j] < ms->v[j - 1]);
            ms_drops = drops;
        }
        size_t dq_head = 0, dq_tail = 0, dq_next = 0;
        for (size_t i = 0; i < g->n; i++) {
            struct win w;
            w.memo = &memo;
            int64_t end = m.wend[i], start = end - m.range_ms;
            int64_t lo_t = start - xlb, hi_t = end + (m.ext == PROMQL__EXT_SMOOTHED ? xlb : 0);
            if (i > 0 && m.wend[i] < m.wend[i - 1])
                lo = hi = dq_head = dq_tail = dq_next = 0;
            while (lo < ms->n && ms->t[lo] <= lo_t)
                lo++;
            if (hi < lo)
                hi = lo;
            while (hi < ms->n && ms->t[hi] <= hi_t)
                hi++;
            w.t = ms->t + lo;
            w.v = ms->v + lo;
            w.st = ms->st != NULL ? ms->st + lo : NULL;
            w.drops = ms_drops != NULL ? ms_drops + lo : NULL;
            w.n = hi - lo;
            w.start = start;
            w.end = end;
            w.range_ms = m.range_ms;
            if (w.n == 0)
                continue;
            if (dq != NULL) {
                if (dq_next < lo)
                    dq_next = lo;
                for (; dq_next < hi; dq_next++) {
                    double f = ms->v[dq_next];
                    if (isnan(f))
                        continue;
                    while (dq_tail > dq_head &&
                           (dq_max ? ms->v[dq[dq_tail - 1]] < f : ms->v[dq[dq_tail - 1]] > f))
                        dq_tail--;
                    dq[dq_tail++] = dq_next;
                }
                while (dq_head < dq_tail && dq[dq_head] < lo)
                    dq_head++;
                s->v[i] = dq_head < dq_tail ? ms->v[dq[dq_head]] : NAN;
                s->ok[i] = true;
                any = true;
                continue;
            }
            double a0 = sa[0] ? sa[0][i] : 0, a1 = sa[1] ? sa[1][i] : 0;
            bool ok;
            if (m.ext != 0) {
                ok = extended_fn(id, &w, m.ext == PROMQL__EXT_SMOOTHED, &s->v[i]);
            } else if (id == PROMQL__F_QUANTILE_OVER_TIME || id == PROMQL__F_MAD_OVER_TIME) {
                if (id == PROMQL__F_QUANTILE_OVER_TIME)
                    warn_quantile(c, n->u.call.args[0]->pos, a0);
                ok = range_sorting_fn(id, &w, a0, scratch, &s->v[i]);
            } else {
                bool overlap;
                ok = range_fn(c, id, &w, a0, a1, g->t[i], &s->v[i], &overlap);
                if (overlap) {
                    const char *mn = hs_labels_get(&ms->labels, "__name__");
                    rc = promql__count_overlap(c, mn != NULL ? mn : "", n->u.call.args[0]->pos);
                    if (rc != HS_OK)
                        return rc;
                }
            }
            s->ok[i] = ok;
            any = any || ok;
        }
        if (!any)
            continue;
        if (id == PROMQL__F_RATE || id == PROMQL__F_INCREASE) {
            const char *name = hs_labels_get(&ms->labels, "__name__");
            if (name != NULL && name[0] != '\0' && !counter_like(name))
                promql__info(c, n->u.call.args[0]->pos,
                             "metric might not be a counter, name does not end in "
                             "_total/_sum/_count/_bucket: \"%s\"",
                             name);
        }
        out->s[out->ns++] = *s;
        if ((k & 63) == 0 && (rc = promql__check(c)) != HS_OK)
            return rc;
    }
    return HS_OK;
}

/* ---- dispatcher ------------------------------------------------------------------------- */

int promql__absent_labels(struct promql__ctx *c, const struct promql_node *sel,
                          struct hs_labels *out)
{
    size_t nm = sel->u.sel.nmatchers;
    struct hs_label *v = promql__alloc(c, (nm ? nm : 1) * sizeof *v);
    const char **has = promql__alloc(c, (nm ? nm : 1) * sizeof *has);
    size_t n = 0, nhas = 0;
    if (v == NULL || has == NULL)
        return promql__oom(c);
    /* As Prometheus: the first equality matcher of a name sets it; any other
     * matcher of that name (or of a name already set) deletes it. */
    for (size_t i = 0; i < nm; i++) {
        const struct promql_label_matcher *m = &sel->u.sel.matchers[i];
        bool seen = false;
        if (strcmp(m->name, "__name__") == 0)
            continue;
        for (size_t j = 0; j < nhas; j++)
            seen = seen || strcmp(has[j], m->name) == 0;
        if (m->op == PROMQL_MATCH_EQ && !seen) {
            v[n++] = (struct hs_label){m->name, m->value};
            has[nhas++] = m->name;
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(v[j].name, m->name) == 0) {
                memmove(&v[j], &v[j + 1], (n - j - 1) * sizeof *v);
                n--;
                break;
            }
        }
    }
    out->v = v;
    out->n = n;
    hs_labels_sort(out);
    return HS_OK;
}

static int absent_fn(struct promql__ctx *c, const struct promql_node *n,
                     const struct promql__grid *g, struct promql__val *out)
{
    struct promql__val in;
    int rc = vector_arg(c, n->u.call.args[0], g, &in);
    struct promql__series *s;
    if (rc != HS_OK)
        return rc;
    s = promql__series_new(c, g->n);
    if (s == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < g->n; i++) {
        bool any = false;
        for (size_t k = 0; k < in.ns && !any; k++)
            any = in.s[k].ok[i];
        s->ok[i] = !any;
        s->v[i] = 1;
    }
    if (n->u.call.args[0]->kind == PROMQL_NODE_VECTOR) {
        rc = promql__absent_labels(c, n->u.call.args[0], &s->labels);
        if (rc != HS_OK)
            return rc;
    }
    out->type = PROMQL_TYPE_VECTOR;
    out->s = s;
    out->ns = 1;
    return HS_OK;
}

int promql__eval_call(struct promql__ctx *c, const struct promql_node *n,
                      const struct promql__grid *g, struct promql__val *out)
{
    int id = promql__func_id(n->u.call.func);
    int rc;
    memset(out, 0, sizeof *out);
    switch (id) {
    case PROMQL__F_TIME:
    case PROMQL__F_PI:
        out->type = PROMQL_TYPE_SCALAR;
        out->scalar = promql__alloc(c, (g->n ? g->n : 1) * sizeof(double));
        if (out->scalar == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < g->n; i++)
            out->scalar[i] = id == PROMQL__F_PI ? M_PI : (double)g->t[i] / 1000;
        return HS_OK;
    case PROMQL__F_START:
    case PROMQL__F_END:
    case PROMQL__F_STEP:
    case PROMQL__F_RANGE:
        out->type = PROMQL_TYPE_SCALAR;
        out->scalar = promql__alloc(c, (g->n ? g->n : 1) * sizeof(double));
        if (out->scalar == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < g->n; i++) {
            int64_t ms = id == PROMQL__F_START  ? c->start_ms
                         : id == PROMQL__F_END  ? c->end_ms
                         : id == PROMQL__F_STEP ? c->step_ms
                                                : c->end_ms - c->start_ms;
            out->scalar[i] = (double)ms / 1000;
        }
        return HS_OK;
    case PROMQL__F_MIN_OF:
    case PROMQL__F_MAX_OF: {
        double *a = NULL, *b = NULL;
        rc = scalar_arg(c, n->u.call.args[0], g, &a);
        if (rc == HS_OK)
            rc = scalar_arg(c, n->u.call.args[1], g, &b);
        if (rc != HS_OK)
            return rc;
        out->type = PROMQL_TYPE_SCALAR;
        out->scalar = a;
        for (size_t i = 0; i < g->n; i++)
            a[i] = id == PROMQL__F_MIN_OF ? go_min(a[i], b[i]) : go_max(a[i], b[i]);
        return HS_OK;
    }
    case PROMQL__F_VECTOR: {
        double *v = NULL;
        struct promql__series *s;
        rc = scalar_arg(c, n->u.call.args[0], g, &v);
        if (rc != HS_OK)
            return rc;
        s = promql__series_new(c, g->n);
        if (s == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < g->n; i++) {
            s->v[i] = v[i];
            s->ok[i] = 1;
        }
        out->type = PROMQL_TYPE_VECTOR;
        out->s = s;
        out->ns = 1;
        return HS_OK;
    }
    case PROMQL__F_SCALAR: {
        struct promql__val in;
        rc = vector_arg(c, n->u.call.args[0], g, &in);
        if (rc != HS_OK)
            return rc;
        out->type = PROMQL_TYPE_SCALAR;
        out->scalar = promql__alloc(c, (g->n ? g->n : 1) * sizeof(double));
        if (out->scalar == NULL)
            return promql__oom(c);
        for (size_t i = 0; i < g->n; i++) {
            int cnt = 0;
            double v = NAN;
            for (size_t k = 0; k < in.ns && cnt < 2; k++) {
                if (in.s[k].ok[i]) {
                    cnt++;
                    v = in.s[k].v[i];
                }
            }
            out->scalar[i] = cnt == 1 ? v : NAN;
        }
        return HS_OK;
    }
    case PROMQL__F_START_TIMESTAMP:
        /* Only a selector argument carries start timestamps. */
        if (n->u.call.args[0]->kind == PROMQL_NODE_VECTOR)
            rc = promql__eval_timestamp_sel(c, n->u.call.args[0], g, 2, out);
        else {
            struct promql__val tmp;
            rc = vector_arg(c, n->u.call.args[0], g, &tmp);
            out->type = PROMQL_TYPE_VECTOR;
            out->ns = 0;
        }
        for (size_t k = 0; rc == HS_OK && k < out->ns; k++)
            out->s[k].drop_name = true;
        return rc;
    case PROMQL__F_TIMESTAMP:
        if (n->u.call.args[0]->kind == PROMQL_NODE_VECTOR)
            rc = promql__eval_timestamp_sel(c, n->u.call.args[0], g, 1, out);
        else {
            rc = vector_arg(c, n->u.call.args[0], g, out);
            for (size_t k = 0; rc == HS_OK && k < out->ns; k++) {
                for (size_t i = 0; i < g->n; i++)
                    out->s[k].v[i] = (double)g->t[i] / 1000;
            }
        }
        for (size_t k = 0; rc == HS_OK && k < out->ns; k++)
            out->s[k].drop_name = true;
        return rc;
    case PROMQL__F_LABEL_REPLACE:
        return label_replace(c, n, g, out);
    case PROMQL__F_LABEL_JOIN:
        return label_join(c, n, g, out);
    case PROMQL__F_SORT:
    case PROMQL__F_SORT_DESC:
    case PROMQL__F_SORT_BY_LABEL:
    case PROMQL__F_SORT_BY_LABEL_DESC:
        return sort_fn(c, n, id, g, out);
    case PROMQL__F_ABSENT:
        return absent_fn(c, n, g, out);
    case PROMQL__F_HISTOGRAM_QUANTILE:
    case PROMQL__F_HISTOGRAM_FRACTION:
    case PROMQL__F_HISTOGRAM_QUANTILES:
        return classic_histogram(c, n, id, g, out);
    case PROMQL__F_INFO:
        return promql__eval_info(c, n, g, out);
    case PROMQL__F_HISTOGRAM_AVG:
    case PROMQL__F_HISTOGRAM_COUNT:
    case PROMQL__F_HISTOGRAM_SUM:
    case PROMQL__F_HISTOGRAM_STDDEV:
    case PROMQL__F_HISTOGRAM_STDVAR:
        /* Native-histogram functions: float samples give no output. */
        for (size_t a = 0; a < n->u.call.nargs; a++) {
            struct promql__val tmp;
            if (n->u.call.args[a]->type == PROMQL_TYPE_STRING)
                continue;
            rc = promql__eval(c, n->u.call.args[a], g, &tmp);
            if (rc != HS_OK)
                return rc;
        }
        out->type = PROMQL_TYPE_VECTOR;
        out->ns = 0;
        return HS_OK;
    default:
        break;
    }
    const struct promql_func *f = n->u.call.func;
    bool has_matrix = false;
    for (int a = 0; a < f->nargs; a++)
        has_matrix = has_matrix || f->arg_types[a] == PROMQL_TYPE_MATRIX;
    if (has_matrix)
        return range_call(c, n, id, g, out);
    if (id < 0)
        return hs_err_set(c->err, HS_EINVAL, "unknown function");
    return elementwise(c, n, id, g, out);
}
