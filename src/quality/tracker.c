/*
 * tracker.c - per-model quality state: check counters, the composite-score
 * histogram, the running median of output lengths, and drift of the score
 * and of the output length.
 *
 * Drift: the first reference_size observations of a model are frozen as
 * its baseline; a ring keeps the last recent_size observations.  Once the
 * baseline is full and min_recent observations came after it, drift is the
 * PSI over fixed bins (score: ten bins of 0.1; output tokens: one bin per
 * octave, 0, 1, 2-3, 4-7, ...) and the two-sample KS statistic between the
 * baseline and the observations of the ring made after the baseline.
 * PSI = sum((r - b) * ln(r / b)) over bins, proportions floored at 1e-4.
 * Results are cached per model and recomputed only after new observations.
 *
 * Memory is fixed at the first observation of a model: every window is
 * allocated then, and at most max_models models (plus "other", which takes
 * every later model) are kept.
 *
 * Invariant: every field of the tracker is read and written under 'lock'.
 */
#include "quality/quality.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SCORE_BINS     10
#define TOKEN_BINS     24
#define MAX_BINS       24
#define MODEL_NAME_MAX 200
#define PSI_FLOOR      1e-4

/* Score histogram boundaries (le), written in float form. */
static const double score_le[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
static const char *const score_le_text[] = {"0.1", "0.2", "0.3", "0.4", "0.5",
                                            "0.6", "0.7", "0.8", "0.9", "1.0"};
#define NLE HS_ARRAY_LEN(score_le)

struct ring {
    double *v;   /* cap slots */
    size_t cap;  /* slots */
    size_t n;    /* filled, <= cap */
    size_t next; /* slot the next value goes to */
};

struct signal_state {
    double *ref;             /* reference_size values, the frozen baseline */
    size_t nref;             /* filled */
    struct ring recent;      /* last recent_size values */
    uint64_t after_ref;      /* observations since the baseline filled */
    struct qual_drift drift; /* cached */
    uint64_t drift_at;       /* model->count when 'drift' was computed; UINT64_MAX = never */
};

struct model {
    char *name;
    uint64_t count;            /* scored records */
    double score_sum;          /* sum of composite scores */
    uint64_t buckets[NLE + 1]; /* non-cumulative; last = above 1.0 (never) */
    uint64_t pass[QUAL_CHECK_COUNT];
    uint64_t fail[QUAL_CHECK_COUNT];
    struct ring lengths; /* output tokens for the running median */
    struct signal_state sig[QUAL_SIGNAL_COUNT];
};

struct qual_tracker {
    pthread_mutex_t lock;
    struct qual_config cfg;
    struct model **models; /* nmodels, in order of first observation */
    size_t nmodels;
    double *scratch; /* 2 * max window, for medians and sorting */
    double *scratch2;
};

const char *qual_signal_name(int signal)
{
    return signal == QUAL_SIGNAL_SCORE ? "score" : "output_tokens";
}

/* ---- rings and order statistics --------------------------------------------- */

static void ring_push(struct ring *r, double v)
{
    r->v[r->next] = v;
    r->next = (r->next + 1) % r->cap;
    if (r->n < r->cap)
        r->n++;
}

/* Copies the last k values of the ring into out; returns the count. */
static size_t ring_last(const struct ring *r, size_t k, double *out)
{
    if (k > r->n)
        k = r->n;
    for (size_t i = 0; i < k; i++)
        out[i] = r->v[(r->next + r->cap - k + i) % r->cap];
    return k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Rearranges v[0..n) so that v[k] holds the k-th smallest value, nothing
 * larger before it and nothing smaller after it (quickselect, O(n) on
 * average: the median runs on every observation). */
static double select_kth(double *v, size_t n, size_t k)
{
    /* Wirth's selection; signed indexes because j may step below 0. */
    long l = 0, r = (long)n - 1, kk = (long)k;
    while (l < r) {
        double x = v[kk];
        long i = l, j = r;
        do {
            while (v[i] < x)
                i++;
            while (x < v[j])
                j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            l = i;
        if (kk < i)
            r = j;
    }
    return v[k];
}

/* q-quantile of v[0..n), interpolated linearly between the two nearest
 * ranks, without sorting; v is reordered.  NAN when n == 0. */
static double quantile_select(double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    double a = select_kth(v, n, lo);
    double f = pos - (double)lo;
    if (f == 0 || lo + 1 >= n)
        return a;
    double b = v[lo + 1];
    for (size_t i = lo + 2; i < n; i++)
        if (v[i] < b)
            b = v[i];
    return a * (1 - f) + b * f;
}

static double ring_median(const struct ring *r, double *scratch)
{
    size_t n = ring_last(r, r->n, scratch);
    return quantile_select(scratch, n, 0.5);
}

/* ---- drift ------------------------------------------------------------------ */

static size_t bin_of(int signal, double x)
{
    if (signal == QUAL_SIGNAL_SCORE) {
        long b = (long)floor(x * SCORE_BINS);
        return b < 0 ? 0 : b >= SCORE_BINS ? SCORE_BINS - 1 : (size_t)b;
    }
    if (!(x >= 1.0))
        return 0;
    size_t b = 1 + (size_t)floor(log2(x));
    return b >= TOKEN_BINS ? TOKEN_BINS - 1 : b;
}

static double psi(int signal, const double *a, size_t na, const double *b, size_t nb)
{
    double ca[MAX_BINS] = {0}, cb[MAX_BINS] = {0};
    size_t nbins = signal == QUAL_SIGNAL_SCORE ? SCORE_BINS : TOKEN_BINS;
    for (size_t i = 0; i < na; i++)
        ca[bin_of(signal, a[i])] += 1;
    for (size_t i = 0; i < nb; i++)
        cb[bin_of(signal, b[i])] += 1;
    double sum = 0;
    for (size_t k = 0; k < nbins; k++) {
        if (ca[k] == 0 && cb[k] == 0)
            continue;
        double pa = HS_MAX(ca[k] / (double)na, PSI_FLOOR);
        double pb = HS_MAX(cb[k] / (double)nb, PSI_FLOOR);
        sum += (pb - pa) * log(pb / pa);
    }
    return sum;
}

/* Two-sample KS statistic of sorted a[0..na) and b[0..nb). */
static double ks(const double *a, size_t na, const double *b, size_t nb)
{
    size_t i = 0, j = 0;
    double d = 0;
    while (i < na && j < nb) {
        double x = a[i] < b[j] ? a[i] : b[j];
        while (i < na && a[i] <= x)
            i++;
        while (j < nb && b[j] <= x)
            j++;
        double diff = fabs((double)i / (double)na - (double)j / (double)nb);
        if (diff > d)
            d = diff;
    }
    return d;
}

static void compute_drift(struct qual_tracker *t, struct model *m, int signal)
{
    struct signal_state *s = &m->sig[signal];
    if (s->drift_at == m->count)
        return;
    s->drift_at = m->count;
    s->drift.n_reference = s->nref;
    size_t nrec = (size_t)HS_MIN(s->after_ref, (uint64_t)s->recent.n);
    s->drift.n_recent = nrec;
    s->drift.psi = NAN;
    s->drift.ks = NAN;
    if (s->nref < t->cfg.reference_size || nrec < t->cfg.min_recent)
        return;
    double *a = t->scratch, *b = t->scratch2;
    memcpy(a, s->ref, s->nref * sizeof(double));
    nrec = ring_last(&s->recent, nrec, b);
    qsort(a, s->nref, sizeof(double), cmp_double);
    qsort(b, nrec, sizeof(double), cmp_double);
    s->drift.psi = psi(signal, a, s->nref, b, nrec);
    s->drift.ks = ks(a, s->nref, b, nrec);
}

/* ---- models ------------------------------------------------------------------- */

static void model_free(struct model *m)
{
    if (m == NULL)
        return;
    hs_free(m->name);
    hs_free(m->lengths.v);
    for (int s = 0; s < QUAL_SIGNAL_COUNT; s++) {
        hs_free(m->sig[s].ref);
        hs_free(m->sig[s].recent.v);
    }
    hs_free(m);
}

static struct model *model_new(const struct qual_config *c, const char *name)
{
    struct model *m = hs_calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->name = hs_strndup(name, strnlen(name, MODEL_NAME_MAX));
    m->lengths.cap = c->median_window;
    m->lengths.v = hs_calloc(c->median_window, sizeof(double));
    bool ok = m->name != NULL && m->lengths.v != NULL;
    for (int s = 0; s < QUAL_SIGNAL_COUNT; s++) {
        m->sig[s].ref = hs_calloc(c->reference_size, sizeof(double));
        m->sig[s].recent.cap = c->recent_size;
        m->sig[s].recent.v = hs_calloc(c->recent_size, sizeof(double));
        m->sig[s].drift_at = UINT64_MAX;
        ok = ok && m->sig[s].ref != NULL && m->sig[s].recent.v != NULL;
    }
    if (!ok) {
        model_free(m);
        return NULL;
    }
    return m;
}

static struct model *find_model(struct qual_tracker *t, const char *name)
{
    size_t n = strnlen(name, MODEL_NAME_MAX);
    for (size_t i = 0; i < t->nmodels; i++)
        if (strlen(t->models[i]->name) == n && memcmp(t->models[i]->name, name, n) == 0)
            return t->models[i];
    return NULL;
}

/* The model's state, created if new; models past max_models share "other". */
static struct model *get_model(struct qual_tracker *t, const char *name)
{
    struct model *m = find_model(t, name);
    if (m != NULL)
        return m;
    if (t->nmodels >= t->cfg.max_models) {
        name = "other";
        m = find_model(t, name);
        if (m != NULL)
            return m;
    }
    m = model_new(&t->cfg, name);
    if (m == NULL)
        return NULL;
    t->models[t->nmodels++] = m;
    return m;
}

/* ---- tracker -------------------------------------------------------------------- */

struct qual_tracker *qual_tracker_new(const struct qual_config *c, struct hs_err *err)
{
    struct qual_config def;
    if (c == NULL) {
        qual_config_defaults(&def);
        c = &def;
    }
    if (c->max_models == 0 || c->reference_size == 0 || c->recent_size == 0 ||
        c->median_window == 0 || c->min_recent > c->recent_size) {
        hs_err_set(err, HS_EINVAL,
                   "quality: max_models, reference, recent and length windows must be > 0 and "
                   "min_recent <= recent");
        return NULL;
    }
    struct qual_tracker *t = hs_calloc(1, sizeof(*t));
    if (t == NULL)
        goto oom;
    t->cfg = *c;
    size_t w = HS_MAX(HS_MAX(c->reference_size, c->recent_size), c->median_window);
    t->models = hs_calloc(c->max_models + 1, sizeof(*t->models));
    t->scratch = hs_calloc(w, sizeof(double));
    t->scratch2 = hs_calloc(w, sizeof(double));
    if (t->models == NULL || t->scratch == NULL || t->scratch2 == NULL)
        goto oom;
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        goto oom;
    return t;
oom:
    if (t != NULL) {
        hs_free(t->models);
        hs_free(t->scratch);
        hs_free(t->scratch2);
        hs_free(t);
    }
    hs_err_set(err, HS_ENOMEM, "quality: out of memory creating the tracker");
    return NULL;
}

void qual_tracker_free(struct qual_tracker *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nmodels; i++)
        model_free(t->models[i]);
    hs_free(t->models);
    hs_free(t->scratch);
    hs_free(t->scratch2);
    pthread_mutex_destroy(&t->lock);
    hs_free(t);
}

static void record_signal(struct qual_tracker *t, struct signal_state *s, double v)
{
    if (s->nref < t->cfg.reference_size) {
        s->ref[s->nref++] = v;
        return;
    }
    ring_push(&s->recent, v);
    s->after_ref++;
}

static void record(struct qual_tracker *t, struct model *m, const struct qual_scores *sc)
{
    m->count++;
    m->score_sum += sc->composite;
    size_t b = 0;
    while (b < NLE && sc->composite > score_le[b])
        b++;
    m->buckets[b]++;
    for (int k = 0; k < QUAL_CHECK_COUNT; k++) {
        if (sc->checks[k].result == QUAL_PASS)
            m->pass[k]++;
        else if (sc->checks[k].result == QUAL_FAIL)
            m->fail[k]++;
    }
    if (sc->output_tokens > 0)
        ring_push(&m->lengths, (double)sc->output_tokens);
    record_signal(t, &m->sig[QUAL_SIGNAL_SCORE], sc->composite);
    record_signal(t, &m->sig[QUAL_SIGNAL_OUTPUT_TOKENS], (double)sc->output_tokens);
}

int qual_tracker_observe(struct qual_tracker *t, const struct qual_input *in,
                         struct qual_scores *out, struct hs_err *err)
{
    struct qual_scores local;
    struct qual_scores *sc = out ? out : &local;
    const char *name = (in->model != NULL && in->model[0] != '\0') ? in->model : "unknown";
    if (!in->is_scorable) {
        qual_score_all(&t->cfg, in, 0, sc);
        return HS_OK;
    }
    /* The median is read under the lock, the text scored outside it. */
    double median = 0;
    pthread_mutex_lock(&t->lock);
    struct model *m = find_model(t, name);
    if (m != NULL && m->lengths.n >= t->cfg.min_median)
        median = ring_median(&m->lengths, t->scratch);
    pthread_mutex_unlock(&t->lock);

    qual_score_all(&t->cfg, in, median, sc);

    pthread_mutex_lock(&t->lock);
    m = get_model(t, name);
    if (m != NULL)
        record(t, m, sc);
    pthread_mutex_unlock(&t->lock);
    if (m == NULL)
        return hs_err_set(err, HS_ENOMEM, "quality: out of memory adding model \"%.64s\"", name);
    return HS_OK;
}

int qual_tracker_drift(struct qual_tracker *t, const char *model, int signal,
                       struct qual_drift *out)
{
    if (model == NULL || signal < 0 || signal >= QUAL_SIGNAL_COUNT)
        return HS_EINVAL;
    int rc = HS_ENOTFOUND;
    pthread_mutex_lock(&t->lock);
    struct model *m = find_model(t, model);
    if (m != NULL) {
        compute_drift(t, m, signal);
        *out = m->sig[signal].drift;
        rc = HS_OK;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int qual_tracker_rebase(struct qual_tracker *t, const char *model)
{
    if (model == NULL)
        return HS_EINVAL;
    int rc = HS_ENOTFOUND;
    pthread_mutex_lock(&t->lock);
    struct model *m = find_model(t, model);
    if (m != NULL) {
        for (int s = 0; s < QUAL_SIGNAL_COUNT; s++) {
            m->sig[s].nref = 0;
            m->sig[s].recent.n = 0;
            m->sig[s].recent.next = 0;
            m->sig[s].after_ref = 0;
            m->sig[s].drift_at = UINT64_MAX;
        }
        rc = HS_OK;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

size_t qual_tracker_models(struct qual_tracker *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->nmodels;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Mean and (p10 not NULL) 10th percentile of the recent scores (all
 * scores while the baseline fills: the ring only starts after it). */
static void recent_stats(struct qual_tracker *t, struct model *m, double *mean, double *p10)
{
    struct signal_state *s = &m->sig[QUAL_SIGNAL_SCORE];
    size_t n;
    if (s->recent.n > 0) {
        n = ring_last(&s->recent, s->recent.n, t->scratch);
    } else {
        n = s->nref;
        memcpy(t->scratch, s->ref, n * sizeof(double));
    }
    if (n == 0) {
        *mean = NAN;
        if (p10 != NULL)
            *p10 = NAN;
        return;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += t->scratch[i];
    *mean = sum / (double)n;
    if (p10 != NULL)
        *p10 = quantile_select(t->scratch, n, 0.1);
}

int qual_tracker_summary(struct qual_tracker *t, size_t i, struct qual_model_summary *out)
{
    int rc = HS_ENOTFOUND;
    pthread_mutex_lock(&t->lock);
    if (i < t->nmodels) {
        struct model *m = t->models[i];
        memset(out, 0, sizeof(*out));
        out->model = m->name;
        out->count = m->count;
        out->score_mean = m->count ? m->score_sum / (double)m->count : NAN;
        double mean;
        recent_stats(t, m, &mean, &out->score_p10);
        out->median_tokens = m->lengths.n ? ring_median(&m->lengths, t->scratch) : NAN;
        memcpy(out->fails, m->fail, sizeof(out->fails));
        memcpy(out->passes, m->pass, sizeof(out->passes));
        for (int s = 0; s < QUAL_SIGNAL_COUNT; s++) {
            compute_drift(t, m, s);
            out->drift[s] = m->sig[s].drift;
        }
        rc = HS_OK;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* ---- metrics ------------------------------------------------------------------- */

enum family { FAM_SCORE = 0, FAM_SCORE_MEAN, FAM_CHECKS, FAM_MEDIAN, FAM_PSI, FAM_KS, FAM_COUNT };

static const struct {
    const char *name;
    const char *type;
    const char *help;
} families[FAM_COUNT] = {
    {"holoscope_quality_score", "histogram", "Composite output-quality score of scored records."},
    {"holoscope_quality_score_mean", "gauge", "Mean composite quality score of the recent window."},
    {"holoscope_quality_checks_total", "counter", "Quality check results by check and result."},
    {"holoscope_quality_output_tokens_median", "gauge",
     "Running median of output tokens per scored record."},
    {"holoscope_quality_drift_psi", "gauge",
     "Population stability index of a quality signal, recent window against the reference."},
    {"holoscope_quality_drift_ks", "gauge",
     "Two-sample Kolmogorov-Smirnov statistic of a quality signal, recent against reference."},
};

/* Sorted label names: __name__ < check < le < model < result < signal. */
struct sample_ctx {
    qual_sample_fn *fn;
    void *arg;
};

static int emit(struct sample_ctx *c, const char *name, const char *check, const char *le,
                const char *model, const char *result, const char *signal, double v)
{
    struct hs_label l[6];
    size_t n = 0;
    l[n++] = (struct hs_label){"__name__", name};
    if (check)
        l[n++] = (struct hs_label){"check", check};
    if (le)
        l[n++] = (struct hs_label){"le", le};
    l[n++] = (struct hs_label){"model", model};
    if (result)
        l[n++] = (struct hs_label){"result", result};
    if (signal)
        l[n++] = (struct hs_label){"signal", signal};
    struct hs_labels ls = {n, l};
    return c->fn(c->arg, name, &ls, v);
}

static int emit_family(struct qual_tracker *t, struct sample_ctx *c, int fam, struct model *m)
{
    int rc = HS_OK;
    switch (fam) {
    case FAM_SCORE: {
        uint64_t cum = 0;
        for (size_t b = 0; rc == HS_OK && b < NLE; b++) {
            cum += m->buckets[b];
            rc = emit(c, "holoscope_quality_score_bucket", NULL, score_le_text[b], m->name, NULL,
                      NULL, (double)cum);
        }
        if (rc == HS_OK)
            rc = emit(c, "holoscope_quality_score_bucket", NULL, "+Inf", m->name, NULL, NULL,
                      (double)m->count);
        if (rc == HS_OK)
            rc = emit(c, "holoscope_quality_score_sum", NULL, NULL, m->name, NULL, NULL,
                      m->score_sum);
        if (rc == HS_OK)
            rc = emit(c, "holoscope_quality_score_count", NULL, NULL, m->name, NULL, NULL,
                      (double)m->count);
        break;
    }
    case FAM_SCORE_MEAN: {
        double mean;
        recent_stats(t, m, &mean, NULL);
        if (!isnan(mean))
            rc = emit(c, families[fam].name, NULL, NULL, m->name, NULL, NULL, mean);
        break;
    }
    case FAM_CHECKS:
        for (int k = 0; rc == HS_OK && k < QUAL_CHECK_COUNT; k++) {
            rc = emit(c, families[fam].name, qual_check_name(k), NULL, m->name, "pass", NULL,
                      (double)m->pass[k]);
            if (rc == HS_OK)
                rc = emit(c, families[fam].name, qual_check_name(k), NULL, m->name, "fail", NULL,
                          (double)m->fail[k]);
        }
        break;
    case FAM_MEDIAN:
        if (m->lengths.n > 0)
            rc = emit(c, families[fam].name, NULL, NULL, m->name, NULL, NULL,
                      ring_median(&m->lengths, t->scratch));
        break;
    default:
        for (int s = 0; rc == HS_OK && s < QUAL_SIGNAL_COUNT; s++) {
            compute_drift(t, m, s);
            double v = fam == FAM_PSI ? m->sig[s].drift.psi : m->sig[s].drift.ks;
            if (!isnan(v))
                rc = emit(c, families[fam].name, NULL, NULL, m->name, NULL, qual_signal_name(s), v);
        }
        break;
    }
    return rc;
}

/* Walks family by family (so the exposition can group them); 'on_family'
 * (may be NULL) runs before each family's samples. */
static int walk(struct qual_tracker *t, struct sample_ctx *c, int (*on_family)(void *, int),
                void *farg)
{
    int rc = HS_OK;
    pthread_mutex_lock(&t->lock);
    for (int f = 0; rc == HS_OK && f < FAM_COUNT; f++) {
        if (t->nmodels == 0)
            break;
        if (on_family != NULL)
            rc = on_family(farg, f);
        for (size_t i = 0; rc == HS_OK && i < t->nmodels; i++)
            rc = emit_family(t, c, f, t->models[i]);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int qual_tracker_collect(struct qual_tracker *t, qual_sample_fn *fn, void *arg)
{
    struct sample_ctx c = {fn, arg};
    return walk(t, &c, NULL, NULL);
}

static int expo_family(void *arg, int f)
{
    return hs_buf_printf(arg, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
                         families[f].name, families[f].type);
}

static int expo_label_value(struct hs_buf *out, const char *v)
{
    int rc = HS_OK;
    for (; rc == HS_OK && *v; v++) {
        if (*v == '\\')
            rc = hs_buf_puts(out, "\\\\");
        else if (*v == '"')
            rc = hs_buf_puts(out, "\\\"");
        else if (*v == '\n')
            rc = hs_buf_puts(out, "\\n");
        else
            rc = hs_buf_putc(out, *v);
    }
    return rc;
}

static int expo_sample(void *arg, const char *name, const struct hs_labels *ls, double v)
{
    struct hs_buf *out = arg;
    int rc = hs_buf_puts(out, name);
    const char *sep = "{";
    for (size_t i = 0; rc == HS_OK && i < ls->n; i++) {
        if (strcmp(ls->v[i].name, "__name__") == 0)
            continue;
        rc = hs_buf_printf(out, "%s%s=\"", sep, ls->v[i].name);
        if (rc == HS_OK)
            rc = expo_label_value(out, ls->v[i].value);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '"');
        sep = ",";
    }
    char num[32];
    hs_format_double(v, num, sizeof(num));
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "%s %s\n", ls->n > 1 ? "}" : "", num);
    return rc;
}

int qual_tracker_metrics(void *tracker, struct hs_buf *out)
{
    struct sample_ctx c = {expo_sample, out};
    return walk(tracker, &c, expo_family, out);
}
