/*
 * gw_metrics.c - the gateway's histograms and counters (spec/gateway.md
 * §5), kept in memory and cumulative, as a Prometheus client library keeps
 * them: a finished request adds its observations under one short lock;
 * /metrics renders the families, and every store_interval the current
 * values are appended to the store (a self-scrape without the HTTP hop),
 * so PromQL sees gen_ai_* series like any scraped histogram.
 *
 * A series is created on first use and never removed while the gateway
 * lives, so a series pointer stays valid: the store appender reads the
 * immutable label strings without the lock, and only it touches the
 * series refs.  The number of series is capped (max_series); past it an
 * observation is dropped and counted.
 */
#include "gateway/gw_internal.h"

#include "tsdb/tsdb.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 10 /* base labels + extras */

static const double b_ttft[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,
                                0.75,  1.0,   2.0,  2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
static const double b_tpot[] = {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15,
                                0.2,   0.3,    0.4,   0.5,    0.75, 1.0,   2.5,  5.0,   10.0};
static const double b_dur[] = {0.01, 0.02, 0.04,  0.08,  0.16,  0.32,  0.64,   1.28,
                               2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84, 327.68};
static const double b_chunk[] = {0.001, 0.0025, 0.005, 0.01, 0.02,  0.04,  0.08,  0.16, 0.32,
                                 0.64,  1.28,   2.56,  5.12, 10.24, 20.48, 40.96, 81.92};
static const double b_tokens[] = {1,     4,     16,     64,      256,     1024,     4096,
                                  16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
static const double b_over[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                0.001,   0.0025,   0.005,   0.01,   0.025,   0.05};

enum { T_HIST, T_COUNTER, T_GAUGE };

static const struct family {
    const char *name;
    int type;
    const double *bounds;
    size_t nbounds;
    const char *help;
} fams[GW_M_COUNT] = {
    [GW_M_TTFT] = {"gen_ai_server_time_to_first_token_seconds", T_HIST, b_ttft,
                   HS_ARRAY_LEN(b_ttft), "Time from request received to first output token."},
    [GW_M_TPOT] = {"gen_ai_server_time_per_output_token_seconds", T_HIST, b_tpot,
                   HS_ARRAY_LEN(b_tpot), "Time per output token after the first."},
    [GW_M_SERVER_DURATION] = {"gen_ai_server_request_duration_seconds", T_HIST, b_dur,
                              HS_ARRAY_LEN(b_dur), "Request duration as the client saw it."},
    [GW_M_CLIENT_DURATION] = {"gen_ai_client_operation_duration_seconds", T_HIST, b_dur,
                              HS_ARRAY_LEN(b_dur), "Duration of the call to the upstream."},
    [GW_M_TTFC] = {"gen_ai_client_operation_time_to_first_chunk_seconds", T_HIST, b_chunk,
                   HS_ARRAY_LEN(b_chunk), "Time from request sent upstream to its first event."},
    [GW_M_ITL] = {"gen_ai_client_operation_time_per_output_chunk_seconds", T_HIST, b_chunk,
                  HS_ARRAY_LEN(b_chunk), "Time between output events of one choice."},
    [GW_M_TOKEN_USAGE] = {"gen_ai_client_token_usage", T_HIST, b_tokens, HS_ARRAY_LEN(b_tokens),
                          "Tokens per request (authoritative counts only)."},
    [GW_M_OVERHEAD] = {"holoscope_gateway_overhead_seconds", T_HIST, b_over, HS_ARRAY_LEN(b_over),
                       "Time the gateway itself spent on a request."},
    [GW_M_REQUESTS] = {"holoscope_gateway_requests_total", T_COUNTER, NULL, 0,
                       "Finished gateway requests by outcome."},
    [GW_M_FINISH] = {"holoscope_gateway_finish_reason_total", T_COUNTER, NULL, 0,
                     "Finished choices by normalised finish reason."},
    [GW_M_TOKENS] = {"holoscope_gateway_tokens_total", T_COUNTER, NULL, 0,
                     "Authoritative token counts."},
    [GW_M_EST_TOKENS] = {"holoscope_gateway_estimated_tokens_total", T_COUNTER, NULL, 0,
                         "Non-authoritative token counts (estimates)."},
    [GW_M_INFLIGHT] = {"holoscope_gateway_inflight_requests", T_GAUGE, NULL, 0,
                       "Gateway requests in progress."},
};

struct series {
    struct series *hnext; /* hash chain */
    struct series *next;  /* family list, creation order */
    uint64_t hash;
    int fam;
    size_t nl;
    struct hs_label labels[MAX_LABELS]; /* in the order given; strings in 'strs' */
    double value;                       /* counter / gauge */
    double sum;                         /* histogram */
    uint64_t count;
    uint64_t *buckets; /* nbounds + 1 (the last: +Inf only), not cumulative */
    uint64_t *refs;    /* store refs per sample (appender only); 0 = unknown */
    char strs[];
};

struct gw_metrics {
    pthread_mutex_t mu;
    struct series **table;
    size_t table_size; /* power of two */
    size_t nseries, max_series;
    struct series *head[GW_M_COUNT], *tail[GW_M_COUNT];
    atomic_int_fast64_t inflight;
    atomic_uint_fast64_t dropped;
};

static size_t nsamples_of(int fam)
{
    return fams[fam].type == T_HIST ? fams[fam].nbounds + 3 : 1;
}

struct gw_metrics *gw__metrics_new(size_t max_series)
{
    struct gw_metrics *m = hs_calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->table_size = 1024;
    while (m->table_size < max_series && m->table_size < (1u << 17))
        m->table_size <<= 1;
    m->table = hs_calloc(m->table_size, sizeof(*m->table));
    if (m->table == NULL) {
        hs_free(m);
        return NULL;
    }
    m->max_series = max_series;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void gw__metrics_free(struct gw_metrics *m)
{
    if (m == NULL)
        return;
    for (int f = 0; f < GW_M_COUNT; f++)
        for (struct series *s = m->head[f], *nx; s; s = nx) {
            nx = s->next;
            hs_free(s->buckets);
            hs_free(s->refs);
            hs_free(s);
        }
    hs_free(m->table);
    pthread_mutex_destroy(&m->mu);
    hs_free(m);
}

void gw__metrics_lock(struct gw_metrics *m)
{
    pthread_mutex_lock(&m->mu);
}

void gw__metrics_unlock(struct gw_metrics *m)
{
    pthread_mutex_unlock(&m->mu);
}

void gw__metrics_inflight(struct gw_metrics *m, int delta)
{
    atomic_fetch_add(&m->inflight, delta);
}

uint64_t gw__metrics_dropped(struct gw_metrics *m)
{
    return atomic_load(&m->dropped);
}

/* Gathers base + extra labels (empty values left out); *nbase = how many
 * of them are base labels. */
static size_t gather(const struct gw_mlabels *b, const char *const *extra, struct hs_label *out,
                     size_t *nbase)
{
    size_t n = 0;
    const struct hs_label base[] = {{"model", b ? b->model : NULL},
                                    {"route", b ? b->route : NULL},
                                    {"upstream", b ? b->upstream : NULL},
                                    {"operation", b ? b->operation : NULL},
                                    {"tenant", b ? b->tenant : NULL}};
    for (size_t i = 0; i < HS_ARRAY_LEN(base); i++)
        if (base[i].value && base[i].value[0])
            out[n++] = base[i];
    *nbase = n;
    for (size_t i = 0; extra && extra[i] && extra[i + 1] && n < MAX_LABELS; i += 2)
        if (extra[i + 1][0])
            out[n++] = (struct hs_label){extra[i], extra[i + 1]};
    return n;
}

/* The base labels' part of a series hash: one hs_hash64 over
 * "name\0value\0..." of the labels gather() keeps. */
static uint64_t hash_base(const struct gw_mlabels *b)
{
    char buf[1024];
    size_t o = 0;
    const char *const kv[] = {
        "model",    b ? b->model : NULL,    "route",     b ? b->route : NULL,
        "upstream", b ? b->upstream : NULL, "operation", b ? b->operation : NULL,
        "tenant",   b ? b->tenant : NULL};
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < HS_ARRAY_LEN(kv); i += 2) {
        if (kv[i + 1] == NULL || kv[i + 1][0] == '\0')
            continue;
        size_t a = strlen(kv[i]) + 1, v = strlen(kv[i + 1]) + 1;
        if (o + a + v > sizeof(buf)) { /* long values: hash what is buffered, go on */
            h = hs_hash64(buf, o, h);
            o = 0;
        }
        if (a + v > sizeof(buf)) {
            h = hs_hash64(kv[i], a, h);
            h = hs_hash64(kv[i + 1], v, h);
            continue;
        }
        memcpy(buf + o, kv[i], a);
        memcpy(buf + o + a, kv[i + 1], v);
        o += a + v;
    }
    return hs_hash64(buf, o, h);
}

void gw__mlabels_hash(struct gw_mlabels *l)
{
    l->hash = 0;
    l->hash = hash_base(l) | 1; /* never 0 */
}

/* A series' hash: its base labels (cached in b->hash when set), the
 * family, then the extra labels (l[nbase, n)). */
static uint64_t hash_labels(int fam, const struct gw_mlabels *b, const struct hs_label *l,
                            size_t nbase, size_t n)
{
    uint64_t h = b != NULL && b->hash != 0 ? b->hash : hash_base(b) | 1;
    h = hs_hash64(&fam, sizeof(fam), h);
    for (size_t i = nbase; i < n; i++) {
        h = hs_hash64(l[i].name, strlen(l[i].name) + 1, h);
        h = hs_hash64(l[i].value, strlen(l[i].value) + 1, h);
    }
    return h;
}

static bool same(const struct series *s, int fam, const struct hs_label *l, size_t n)
{
    if (s->fam != fam || s->nl != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->labels[i].name, l[i].name) != 0 ||
            strcmp(s->labels[i].value, l[i].value) != 0)
            return false;
    return true;
}

static struct series *create(struct gw_metrics *m, int fam, uint64_t h, const struct hs_label *l,
                             size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
    struct series *s = hs_calloc(1, sizeof(*s) + bytes);
    if (s == NULL)
        return NULL;
    s->refs = hs_calloc(nsamples_of(fam), sizeof(uint64_t));
    if (fams[fam].type == T_HIST)
        s->buckets = hs_calloc(fams[fam].nbounds + 1, sizeof(uint64_t));
    if (s->refs == NULL || (fams[fam].type == T_HIST && s->buckets == NULL)) {
        hs_free(s->refs);
        hs_free(s->buckets);
        hs_free(s);
        return NULL;
    }
    char *p = s->strs;
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
        memcpy(p, l[i].name, a);
        s->labels[i].name = p;
        p += a;
        memcpy(p, l[i].value, b);
        s->labels[i].value = p;
        p += b;
    }
    s->nl = n;
    s->fam = fam;
    s->hash = h;
    s->hnext = m->table[h & (m->table_size - 1)];
    m->table[h & (m->table_size - 1)] = s;
    if (m->tail[fam])
        m->tail[fam]->next = s;
    else
        m->head[fam] = s;
    m->tail[fam] = s;
    m->nseries++;
    return s;
}

static struct series *lookup(struct gw_metrics *m, int f, const struct gw_mlabels *base,
                             const char *const *extra)
{
    struct hs_label l[MAX_LABELS];
    size_t nbase;
    size_t n = gather(base, extra, l, &nbase);
    uint64_t h = hash_labels(f, base, l, nbase, n);
    struct series *s = m->table[h & (m->table_size - 1)];
    while (s && !(s->hash == h && same(s, f, l, n)))
        s = s->hnext;
    if (s == NULL && (m->nseries >= m->max_series || (s = create(m, f, h, l, n)) == NULL)) {
        atomic_fetch_add(&m->dropped, 1);
        return NULL;
    }
    return s;
}

static void observe(struct series *s, const struct family *fm, double v)
{
    size_t i = 0;
    while (i < fm->nbounds && v > fm->bounds[i])
        i++;
    s->buckets[i]++;
    s->sum += v;
    s->count++;
}

void gw__metrics_add(struct gw_metrics *m, int f, const struct gw_mlabels *base,
                     const char *const *extra, double v)
{
    struct series *s = lookup(m, f, base, extra);
    if (s == NULL)
        return;
    if (fams[f].type != T_HIST)
        s->value += v;
    else
        observe(s, &fams[f], v);
}

void gw__metrics_observe_ns(struct gw_metrics *m, int f, const struct gw_mlabels *base,
                            const int64_t *ns, size_t n)
{
    if (n == 0 || fams[f].type != T_HIST)
        return;
    struct series *s = lookup(m, f, base, NULL);
    for (size_t i = 0; s != NULL && i < n; i++)
        observe(s, &fams[f], (double)ns[i] / 1e9);
}

void gw__format_le(double v, char out[40])
{
    size_t n = hs_format_double(v, out, 40);
    if (strpbrk(out, ".eEnN") == NULL && n + 2 < 40)
        memcpy(out + n, ".0", 3);
}

/* ---- /metrics ---- */

static int put_labels(struct hs_buf *out, const struct series *s, const char *le)
{
    if (s->nl == 0 && le == NULL)
        return HS_OK;
    int rc = hs_buf_putc(out, '{');
    for (size_t i = 0; i < s->nl && rc == HS_OK; i++) {
        rc = hs_buf_printf(out, "%s%s=", i ? "," : "", s->labels[i].name);
        if (rc == HS_OK)
            rc = hs_buf_json_str(out, s->labels[i].value, strlen(s->labels[i].value));
    }
    if (rc == HS_OK && le != NULL)
        rc = hs_buf_printf(out, "%sle=\"%s\"", s->nl ? "," : "", le);
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '}');
    return rc;
}

static int put_value(struct hs_buf *out, double v)
{
    char num[40];
    hs_format_double(v, num, sizeof(num));
    return hs_buf_printf(out, " %s\n", num);
}

static int render_series(struct hs_buf *out, const struct family *fm, const struct series *s)
{
    int rc = HS_OK;
    if (fm->type != T_HIST) {
        rc = hs_buf_puts(out, fm->name);
        if (rc == HS_OK)
            rc = put_labels(out, s, NULL);
        return rc == HS_OK ? put_value(out, s->value) : rc;
    }
    uint64_t cum = 0;
    for (size_t i = 0; i <= fm->nbounds && rc == HS_OK; i++) {
        char le[40];
        if (i < fm->nbounds)
            gw__format_le(fm->bounds[i], le);
        else
            memcpy(le, "+Inf", 5);
        cum += s->buckets[i];
        rc = hs_buf_printf(out, "%s_bucket", fm->name);
        if (rc == HS_OK)
            rc = put_labels(out, s, le);
        if (rc == HS_OK)
            rc = put_value(out, (double)cum);
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "%s_sum", fm->name);
    if (rc == HS_OK)
        rc = put_labels(out, s, NULL);
    if (rc == HS_OK)
        rc = put_value(out, s->sum);
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "%s_count", fm->name);
    if (rc == HS_OK)
        rc = put_labels(out, s, NULL);
    if (rc == HS_OK)
        rc = put_value(out, (double)s->count);
    return rc;
}

int gw__metrics_render(struct gw_metrics *m, struct hs_buf *out)
{
    int rc = HS_OK;
    pthread_mutex_lock(&m->mu);
    for (int f = 0; f < GW_M_COUNT && rc == HS_OK; f++) {
        const struct family *fm = &fams[f];
        if (m->head[f] == NULL && f != GW_M_INFLIGHT)
            continue;
        static const char *const tn[] = {"histogram", "counter", "gauge"};
        rc = hs_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fm->name, fm->help, fm->name,
                           tn[fm->type]);
        if (f == GW_M_INFLIGHT) {
            if (rc == HS_OK)
                rc = hs_buf_puts(out, fm->name);
            if (rc == HS_OK)
                rc = put_value(out, (double)atomic_load(&m->inflight));
            continue;
        }
        for (const struct series *s = m->head[f]; s && rc == HS_OK; s = s->next)
            rc = render_series(out, fm, s);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- the store ---- */

/* One series' values copied under the lock. */
struct snap {
    struct series *s;
    size_t off; /* first value in the values array */
};

static int add_one(struct tsdb_appender *a, struct series *s, size_t k, const char *name,
                   const char *le, int64_t t_ms, double v, struct hs_err *err)
{
    if (s->refs[k] != 0) {
        int rc = tsdb_appender_add_ref(a, s->refs[k], t_ms, v, err);
        if (rc != HS_ENOTFOUND)
            return rc;
    }
    struct hs_label l[MAX_LABELS + 2];
    size_t n = 0;
    l[n++] = (struct hs_label){"__name__", name};
    for (size_t i = 0; i < s->nl; i++)
        l[n++] = s->labels[i];
    if (le != NULL)
        l[n++] = (struct hs_label){"le", le};
    struct hs_labels ls = {n, l};
    hs_labels_sort(&ls);
    return tsdb_appender_add(a, &ls, t_ms, v, &s->refs[k], err);
}

static int append_series(struct tsdb_appender *a, struct series *s, const double *v, int64_t t_ms,
                         uint64_t *nsamples, struct hs_err *err)
{
    const struct family *fm = &fams[s->fam];
    char name[128];
    int rc = HS_OK;
    if (fm->type != T_HIST) {
        rc = add_one(a, s, 0, fm->name, NULL, t_ms, v[0], err);
        *nsamples += rc == HS_OK;
        return rc;
    }
    for (size_t i = 0; i <= fm->nbounds && rc == HS_OK; i++) {
        char le[40];
        if (i < fm->nbounds)
            gw__format_le(fm->bounds[i], le);
        else
            memcpy(le, "+Inf", 5);
        snprintf(name, sizeof(name), "%s_bucket", fm->name);
        rc = add_one(a, s, i, name, le, t_ms, v[i], err);
    }
    if (rc == HS_OK) {
        snprintf(name, sizeof(name), "%s_sum", fm->name);
        rc = add_one(a, s, fm->nbounds + 1, name, NULL, t_ms, v[fm->nbounds + 1], err);
    }
    if (rc == HS_OK) {
        snprintf(name, sizeof(name), "%s_count", fm->name);
        rc = add_one(a, s, fm->nbounds + 2, name, NULL, t_ms, v[fm->nbounds + 2], err);
    }
    if (rc == HS_OK)
        *nsamples += nsamples_of(s->fam);
    return rc;
}

/* Copies every series' values (cumulative buckets, sum, count) under the lock. */
static int snapshot(struct gw_metrics *m, struct snap **out, size_t *nout, double **vals)
{
    pthread_mutex_lock(&m->mu);
    size_t n = 0, nv = 0;
    for (int f = 0; f < GW_M_INFLIGHT; f++)
        for (struct series *s = m->head[f]; s; s = s->next) {
            n++;
            nv += nsamples_of(f);
        }
    struct snap *sn = hs_calloc(n + 1, sizeof(*sn));
    double *v = hs_calloc(nv + 1, sizeof(double));
    if (sn == NULL || v == NULL) {
        pthread_mutex_unlock(&m->mu);
        hs_free(sn);
        hs_free(v);
        return HS_ENOMEM;
    }
    size_t k = 0, o = 0;
    for (int f = 0; f < GW_M_INFLIGHT; f++)
        for (struct series *s = m->head[f]; s; s = s->next) {
            sn[k++] = (struct snap){s, o};
            if (fams[f].type != T_HIST) {
                v[o++] = s->value;
                continue;
            }
            uint64_t cum = 0;
            for (size_t i = 0; i <= fams[f].nbounds; i++) {
                cum += s->buckets[i];
                v[o++] = (double)cum;
            }
            v[o++] = s->sum;
            v[o++] = (double)s->count;
        }
    pthread_mutex_unlock(&m->mu);
    *out = sn;
    *nout = n;
    *vals = v;
    return HS_OK;
}

int gw__metrics_append(struct gw_metrics *m, struct tsdb *db, int64_t t_ms, uint64_t *nsamples,
                       struct hs_err *err)
{
    struct snap *sn = NULL;
    double *v = NULL;
    size_t n = 0;
    if (snapshot(m, &sn, &n, &v) != HS_OK)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    struct tsdb_appender *a = tsdb_appender_new(db);
    int rc = a ? HS_OK : hs_err_set(err, HS_ENOMEM, "out of memory");
    uint64_t added = 0;
    for (size_t i = 0; i < n && rc == HS_OK; i++)
        rc = append_series(a, sn[i].s, v + sn[i].off, t_ms, &added, err);
    if (rc == HS_OK) {
        struct hs_label l[] = {{"__name__", fams[GW_M_INFLIGHT].name}};
        struct hs_labels ls = {1, l};
        rc = tsdb_appender_add(a, &ls, t_ms, (double)atomic_load(&m->inflight), NULL, err);
        added += rc == HS_OK;
    }
    if (a != NULL) {
        if (rc == HS_OK)
            rc = tsdb_appender_commit(a, err);
        else
            tsdb_appender_rollback(a);
    }
    if (rc == HS_OK)
        *nsamples += added;
    hs_free(sn);
    hs_free(v);
    return rc;
}
