/*
 * eval.c - the rule manager: evaluation of groups, the alert state machine,
 * ALERTS / ALERTS_FOR_STATE, staleness markers, for-state restore, reload
 * with state carried over, and the evaluation thread.
 *
 * State lives beside the loaded rules: each rules_rule gets a
 * rules_rule_state (active alerts, series written last time, health) and
 * each group a rules_group_state.  Two mutexes, always taken in this order:
 * 'mu' serialises evaluations, reloads and the loop (held through a whole
 * group, queries included); 'smu' guards what the API reads and is held
 * only while a rule's state changes, so /api/v1/rules and /api/v1/alerts
 * never wait for a query.  A reader sees each rule before or after its
 * step, never half of one.
 *
 * Alert transitions follow Prometheus' AlertingRule.Eval: a series returned
 * by the expression makes a new alert pending (activeAt = t); a pending
 * alert fires once t - activeAt >= for; an alert whose series is gone is
 * dropped when pending and resolved (inactive, resolvedAt = t) when firing,
 * unless keep_firing_for holds it firing since the series vanished; a
 * resolved alert is kept RULES_RESOLVED_RETENTION_MS for notifications.
 *
 * Restore after a restart (simplified outage tolerance): on the first
 * evaluation of a group after it was loaded, a pending alert takes its
 * activeAt from the newest ALERTS_FOR_STATE sample of the same labels
 * within outage_tolerance, when that is older; it may then fire at once.
 */
#include "rules/internal.h"

#include "promql/promql.h"
#include "tsdb/tsdb.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STALE_NAN_BITS 0x7ff0000000000002ULL

struct alert {
    uint64_t fp;
    struct hs_labels *labels; /* alert labels incl. alertname; hs_labels_dup */
    char **ann_values;        /* expanded, parallel to the rule's annotations */
    size_t nann;
    int state;
    int64_t active_at_ms, fired_at_ms, resolved_at_ms, keep_firing_since_ms;
    int64_t last_sent_ms;
    double value;
};

struct series_ref {
    uint64_t h;
    struct hs_labels *ls;
};

struct rules_rule_state {
    struct alert *alerts;
    size_t nalerts, cap;
    struct series_ref *prev; /* series written by the last successful evaluation */
    size_t nprev;
    char *last_error; /* NULL when healthy */
    bool evaluated;
    int64_t last_eval_ms;
    double eval_seconds;
    uint64_t failures;
};

struct rules_group_state {
    int64_t last_eval_ms;
    double eval_seconds;
    int64_t next_eval_ms; /* 0: not scheduled yet */
    bool needs_restore;
};

struct rules_manager {
    pthread_mutex_t mu;  /* evaluation and configuration: held through a group's evaluation */
    pthread_mutex_t smu; /* state read by the API: held only while state changes */
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stopping;
    struct rules_manager_opts o;
    struct hs_labels *ext; /* hs_labels_dup of the external labels */
    char *generator_url;   /* copy of o.generator_url or NULL */
    struct rules_set *set;
    uint64_t failures_removed; /* failures of rules dropped by reloads */
};

/* ---- sinks ----------------------------------------------------------------- */

static int tsdb_begin(void *ctx, void **batch, struct hs_err *err)
{
    *batch = tsdb_appender_new(ctx);
    return *batch ? HS_OK : hs_err_set(err, HS_ENOMEM, "out of memory");
}
static int tsdb_add(void *batch, const struct hs_labels *ls, int64_t t_ms, double v,
                    struct hs_err *err)
{
    return tsdb_appender_add(batch, ls, t_ms, v, NULL, err);
}
static int tsdb_commit(void *batch, struct hs_err *err)
{
    return tsdb_appender_commit(batch, err);
}
static const struct rules_sink_ops tsdb_sink_ops = {tsdb_begin, tsdb_add, tsdb_commit};

void rules_tsdb_sink(struct tsdb *db, struct rules_sink *out)
{
    out->ops = &tsdb_sink_ops;
    out->ctx = db;
}

static int mem_begin(void *ctx, void **batch, struct hs_err *err)
{
    (void)err;
    *batch = ctx;
    return HS_OK;
}
static int mem_add(void *batch, const struct hs_labels *ls, int64_t t_ms, double v,
                   struct hs_err *err)
{
    return promql_mem_append(batch, ls, t_ms, v, err);
}
static int mem_commit(void *batch, struct hs_err *err)
{
    (void)batch;
    (void)err;
    return HS_OK;
}
static const struct rules_sink_ops mem_sink_ops = {mem_begin, mem_add, mem_commit};

void rules_mem_sink(struct promql_mem *m, struct rules_sink *out)
{
    out->ops = &mem_sink_ops;
    out->ctx = m;
}

/* ---- state helpers ------------------------------------------------------- */

static void alert_clear(struct alert *a)
{
    hs_labels_free(a->labels);
    for (size_t i = 0; i < a->nann; i++)
        hs_free(a->ann_values[i]);
    hs_free(a->ann_values);
    memset(a, 0, sizeof *a);
}

static void series_free(struct series_ref *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hs_labels_free(v[i].ls);
    hs_free(v);
}

static void rule_state_free(struct rules_rule_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nalerts; i++)
        alert_clear(&st->alerts[i]);
    hs_free(st->alerts);
    series_free(st->prev, st->nprev);
    hs_free(st->last_error);
    hs_free(st);
}

static void set_states_free(struct rules_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ngroups; i++) {
        for (size_t j = 0; j < s->groups[i].nrules; j++) {
            rule_state_free(s->groups[i].rules[j].state);
            s->groups[i].rules[j].state = NULL;
        }
        hs_free(s->groups[i].state);
        s->groups[i].state = NULL;
    }
}

static int64_t group_interval(const struct rules_manager *m, const struct rules_group *g)
{
    return g->interval_ms > 0 ? g->interval_ms : m->o.default_interval_ms;
}

static int64_t group_offset(const struct rules_group *g, int64_t interval)
{
    uint64_t h = hs_hash64(g->file, strlen(g->file) + 1, 0);
    h = hs_hash64(g->name, strlen(g->name), h);
    return (int64_t)(h % (uint64_t)interval);
}

static int64_t eval_time(const struct rules_manager *m, const struct rules_group *g, int64_t now)
{
    int64_t iv = group_interval(m, g);
    int64_t off = group_offset(g, iv);
    int64_t r = (now - off) % iv;
    if (r < 0)
        r += iv;
    return now - r;
}

/* ---- manager lifecycle ------------------------------------------------------- */

struct rules_manager *rules_manager_new(const struct rules_manager_opts *o, struct hs_err *err)
{
    if (!o || !o->engine || !o->storage || !o->sink.ops) {
        hs_err_set(err, HS_EINVAL, "rules manager: engine, storage and sink are required");
        return NULL;
    }
    struct rules_manager *m = hs_calloc(1, sizeof *m);
    if (!m) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    m->o = *o;
    if (m->o.default_interval_ms <= 0)
        m->o.default_interval_ms = 60000;
    if (m->o.outage_tolerance_ms <= 0)
        m->o.outage_tolerance_ms = 3600000;
    if (m->o.resend_delay_ms <= 0)
        m->o.resend_delay_ms = 60000;
    m->ext = hs_labels_dup(&o->external_labels);
    m->set = rules_set_new();
    m->generator_url = o->generator_url ? hs_strdup(o->generator_url) : NULL;
    m->o.generator_url = NULL;
    if (!m->ext || !m->set || (o->generator_url && !m->generator_url)) {
        hs_free(m->generator_url);
        hs_labels_free(m->ext);
        rules_set_free(m->set);
        hs_free(m);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    m->o.external_labels = *m->ext;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->smu, NULL);
    pthread_cond_init(&m->cv, NULL);
    return m;
}

void rules_manager_free(struct rules_manager *m)
{
    if (!m)
        return;
    rules_manager_stop(m);
    set_states_free(m->set);
    rules_set_free(m->set);
    hs_labels_free(m->ext);
    hs_free(m->generator_url);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->smu);
    hs_free(m);
}

size_t rules_manager_group_count(struct rules_manager *m)
{
    pthread_mutex_lock(&m->smu);
    size_t n = m->set->ngroups;
    pthread_mutex_unlock(&m->smu);
    return n;
}

static bool kv_equal(const struct rules_kv *a, size_t na, const struct rules_kv *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) != 0 || strcmp(a[i].value, b[i].value) != 0)
            return false;
    return true;
}

static bool rule_same(const struct rules_rule *a, const struct rules_rule *b)
{
    return a->kind == b->kind && strcmp(a->name, b->name) == 0 && strcmp(a->expr, b->expr) == 0 &&
           a->for_ms == b->for_ms && a->keep_firing_for_ms == b->keep_firing_for_ms &&
           kv_equal(a->labels, a->nlabels, b->labels, b->nlabels);
}

int rules_manager_update(struct rules_manager *m, struct rules_set *s, struct hs_err *err)
{
    int rc = HS_OK;
    /* allocate every state first so that failure leaves the manager unchanged */
    for (size_t i = 0; i < s->ngroups && rc == HS_OK; i++) {
        struct rules_group *g = &s->groups[i];
        for (size_t j = 0; j < g->nrules; j++)
            if (!g->rules[j].expr || !g->rules[j].name)
                rc = hs_err_set(err, HS_EINVAL, "rule set holds an invalid rule");
        g->state = hs_calloc(1, sizeof *g->state);
        if (!g->state)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        for (size_t j = 0; j < g->nrules && rc == HS_OK; j++) {
            g->rules[j].state = hs_calloc(1, sizeof *g->rules[j].state);
            if (!g->rules[j].state)
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        }
    }
    if (rc != HS_OK) {
        set_states_free(s);
        rules_set_free(s);
        return rc;
    }
    pthread_mutex_lock(&m->mu);
    pthread_mutex_lock(&m->smu);
    struct rules_set *old = m->set;
    for (size_t i = 0; i < s->ngroups; i++) {
        struct rules_group *g = &s->groups[i];
        struct rules_group *og = NULL;
        for (size_t k = 0; k < old->ngroups && !og; k++)
            if (strcmp(old->groups[k].name, g->name) == 0 &&
                strcmp(old->groups[k].file, g->file) == 0 && old->groups[k].state)
                og = &old->groups[k];
        if (!og) {
            g->state->needs_restore = true;
            continue;
        }
        *g->state = *og->state;
        if (group_interval(m, g) != group_interval(m, og))
            g->state->next_eval_ms = 0;
        for (size_t j = 0; j < g->nrules; j++) {
            for (size_t k = 0; k < og->nrules; k++) {
                struct rules_rule *orl = &og->rules[k];
                if (orl->state && rule_same(orl, &g->rules[j])) {
                    rule_state_free(g->rules[j].state);
                    g->rules[j].state = orl->state;
                    orl->state = NULL;
                    /* expanded annotations may no longer match the rule's list */
                    struct rules_rule_state *st = g->rules[j].state;
                    if (!kv_equal(orl->annotations, orl->nannotations, g->rules[j].annotations,
                                  g->rules[j].nannotations)) {
                        for (size_t a = 0; a < st->nalerts; a++) {
                            for (size_t q = 0; q < st->alerts[a].nann; q++)
                                hs_free(st->alerts[a].ann_values[q]);
                            hs_free(st->alerts[a].ann_values);
                            st->alerts[a].ann_values = NULL;
                            st->alerts[a].nann = 0;
                        }
                    }
                    break;
                }
            }
        }
    }
    for (size_t i = 0; i < old->ngroups; i++)
        for (size_t j = 0; j < old->groups[i].nrules; j++)
            if (old->groups[i].rules[j].state)
                m->failures_removed += old->groups[i].rules[j].state->failures;
    m->set = s;
    pthread_mutex_unlock(&m->smu);
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    set_states_free(old);
    rules_set_free(old);
    return HS_OK;
}

int64_t rules_manager_group_eval_time(struct rules_manager *m, size_t gi, int64_t now_ms)
{
    pthread_mutex_lock(&m->mu);
    int64_t t = gi < m->set->ngroups ? eval_time(m, &m->set->groups[gi], now_ms) : now_ms;
    pthread_mutex_unlock(&m->mu);
    return t;
}

/* ---- evaluation ----------------------------------------------------------------- */

/* Samples produced by one rule: label sets (dup'd) and values. */
struct out_vec {
    struct series_ref *v;
    double *vals;
    size_t n, cap;
};

static void out_free(struct out_vec *o)
{
    series_free(o->v, o->n);
    hs_free(o->vals);
    memset(o, 0, sizeof *o);
}

/* Adds a sample; HS_EINVAL when the label set is already there. */
static int out_add(struct out_vec *o, const struct hs_labels *ls, double v, struct hs_err *err)
{
    uint64_t h = hs_labels_hash(ls);
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].h == h && hs_labels_cmp(o->v[i].ls, ls) == 0)
            return hs_err_set(err, HS_EINVAL,
                              "vector contains metrics with the same labelset after applying "
                              "rule labels");
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        struct series_ref *nv = hs_reallocarray(o->v, nc, sizeof *nv);
        if (!nv)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        o->v = nv;
        double *nd = hs_reallocarray(o->vals, nc, sizeof *nd);
        if (!nd)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        o->vals = nd;
        o->cap = nc;
    }
    struct hs_labels *d = hs_labels_dup(ls);
    if (!d)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    o->v[o->n].h = h;
    o->v[o->n].ls = d;
    o->vals[o->n] = v;
    o->n++;
    return HS_OK;
}

/*
 * Builds a label set: 'base' without __name__, then 'extra' (sorted names)
 * overriding, then (name, value) pairs 'set1'/'set2' if not NULL.
 */
struct lbuilder {
    struct hs_label v[256];
    size_t n;
};

static void lb_put(struct lbuilder *b, const char *name, const char *value)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->v[i].name, name) == 0) {
            b->v[i].value = value;
            return;
        }
    }
    if (b->n < HS_ARRAY_LEN(b->v)) {
        b->v[b->n].name = name;
        b->v[b->n].value = value;
        b->n++;
    }
}

static int lb_from(struct lbuilder *b, const struct hs_labels *base, struct hs_err *err)
{
    b->n = 0;
    if (base->n > HS_ARRAY_LEN(b->v) - 8)
        return hs_err_set(err, HS_ETOOBIG, "series has more than %zu labels",
                          HS_ARRAY_LEN(b->v) - 8);
    for (size_t i = 0; i < base->n; i++)
        if (strcmp(base->v[i].name, "__name__") != 0)
            b->v[b->n++] = base->v[i];
    return HS_OK;
}

static struct hs_labels lb_labels(struct lbuilder *b)
{
    /* drop empty values, as Prometheus does */
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i].value[0] != '\0')
            b->v[k++] = b->v[i];
    b->n = k;
    struct hs_labels ls = {b->n, b->v};
    hs_labels_sort(&ls);
    return ls;
}

static void set_error(struct rules_rule_state *st, const char *msg)
{
    hs_free(st->last_error);
    st->last_error = hs_strdup(msg);
    st->failures++;
}

static int query_vector(struct rules_manager *m, const char *expr, int64_t t,
                        struct promql_result **out, struct hs_err *err)
{
    int rc = promql_query_instant(m->o.engine, m->o.storage, expr, t, NULL, out, err);
    if (rc != HS_OK)
        return rc;
    if ((*out)->type != PROMQL_RESULT_VECTOR && (*out)->type != PROMQL_RESULT_SCALAR) {
        promql_result_free(*out);
        *out = NULL;
        return hs_err_set(err, HS_EINVAL, "rule result is not a vector or scalar");
    }
    return HS_OK;
}

static int eval_record(struct rules_manager *m, const struct rules_group *g, struct rules_rule *r,
                       int64_t t, struct out_vec *o, struct hs_err *err)
{
    struct promql_result *res = NULL;
    int rc = query_vector(m, r->expr, t, &res, err);
    if (rc != HS_OK)
        return rc;
    struct lbuilder b;
    static const struct hs_labels none = {0, NULL};
    if (res->type == PROMQL_RESULT_SCALAR) {
        b.n = 0;
        lb_put(&b, "__name__", r->name);
        for (size_t k = 0; k < r->nlabels; k++)
            lb_put(&b, r->labels[k].name, r->labels[k].value);
        struct hs_labels ls = lb_labels(&b);
        rc = out_add(o, &ls, res->scalar, err);
    }
    for (size_t i = 0; rc == HS_OK && res->type == PROMQL_RESULT_VECTOR && i < res->nseries; i++) {
        struct promql_rseries *s = &res->series[i];
        rc = lb_from(&b, s->npoints ? &s->labels : &none, err);
        if (rc != HS_OK)
            break;
        lb_put(&b, "__name__", r->name);
        for (size_t k = 0; k < r->nlabels; k++)
            lb_put(&b, r->labels[k].name, r->labels[k].value);
        struct hs_labels ls = lb_labels(&b);
        rc = out_add(o, &ls, s->npoints ? s->points[0].v : NAN, err);
    }
    if (rc == HS_OK && g->limit > 0 && (int64_t)o->n > g->limit)
        rc = hs_err_set(err, HS_EINVAL, "exceeded limit of %lld with %zu series",
                        (long long)g->limit, o->n);
    promql_result_free(res);
    return rc;
}

static struct alert *find_alert(struct rules_rule_state *st, uint64_t fp,
                                const struct hs_labels *ls)
{
    for (size_t i = 0; i < st->nalerts; i++)
        if (st->alerts[i].fp == fp && hs_labels_cmp(st->alerts[i].labels, ls) == 0)
            return &st->alerts[i];
    return NULL;
}

/* One alert candidate of this evaluation. */
struct cand {
    struct hs_labels *labels;
    char **ann;
    size_t nann;
    double value;
    uint64_t fp;
};

static void cands_free(struct cand *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hs_labels_free(c[i].labels);
        for (size_t k = 0; k < c[i].nann; k++)
            hs_free(c[i].ann[k]);
        hs_free(c[i].ann);
    }
    hs_free(c);
}

static int expand(struct rules_manager *m, const char *tpl, const struct hs_labels *data, double v,
                  char **out, struct hs_err *err)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err e;
    hs_err_clear(&e);
    int rc = rules_template_expand(tpl, data, m->ext, v, &b, &e);
    if (rc == HS_ENOMEM || rc == HS_ETOOBIG) {
        hs_buf_cleanup(&b);
        return hs_err_set(err, rc, "%s", e.msg);
    }
    if (rc != HS_OK) {
        /* as Prometheus: the error text becomes the value */
        hs_buf_reset(&b);
        rc = hs_buf_printf(&b, "<error expanding template: %s>", e.msg);
        if (rc != HS_OK) {
            hs_buf_cleanup(&b);
            return hs_err_set(err, rc, "out of memory");
        }
    }
    *out = b.p ? hs_buf_detach(&b, NULL) : hs_strdup("");
    hs_buf_cleanup(&b);
    return *out ? HS_OK : hs_err_set(err, HS_ENOMEM, "out of memory");
}

static int build_cands(struct rules_manager *m, struct rules_rule *r,
                       const struct promql_result *res, struct cand **out, size_t *nout,
                       struct hs_err *err)
{
    size_t n = res->type == PROMQL_RESULT_SCALAR ? 1 : res->nseries;
    struct cand *c = hs_calloc(n + 1, sizeof *c);
    if (!c)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    int rc = HS_OK;
    static const struct hs_labels none = {0, NULL};
    size_t k = 0;
    for (; k < n && rc == HS_OK; k++) {
        const struct hs_labels *sl = &none;
        double v = res->scalar;
        if (res->type == PROMQL_RESULT_VECTOR) {
            sl = &res->series[k].labels;
            v = res->series[k].npoints ? res->series[k].points[0].v : NAN;
        }
        struct lbuilder b;
        rc = lb_from(&b, sl, err);
        if (rc != HS_OK)
            break;
        char **lv = hs_calloc(r->nlabels + 1, sizeof *lv);
        if (!lv) {
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < r->nlabels && rc == HS_OK; i++)
            rc = expand(m, r->labels[i].value, sl, v, &lv[i], err);
        for (size_t i = 0; i < r->nlabels && rc == HS_OK; i++)
            lb_put(&b, r->labels[i].name, lv[i]);
        if (rc == HS_OK) {
            lb_put(&b, "alertname", r->name);
            struct hs_labels ls = lb_labels(&b);
            c[k].labels = hs_labels_dup(&ls);
            if (!c[k].labels)
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
            else
                c[k].fp = hs_labels_hash(c[k].labels);
        }
        for (size_t i = 0; i < r->nlabels; i++)
            hs_free(lv[i]);
        hs_free(lv);
        c[k].value = v;
        if (rc == HS_OK && r->nannotations) {
            c[k].ann = hs_calloc(r->nannotations, sizeof *c[k].ann);
            if (!c[k].ann)
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
            else
                c[k].nann = r->nannotations;
            for (size_t i = 0; i < r->nannotations && rc == HS_OK; i++)
                rc = expand(m, r->annotations[i].value, sl, v, &c[k].ann[i], err);
        }
        for (size_t j = 0; rc == HS_OK && j < k; j++)
            if (c[j].fp == c[k].fp && hs_labels_cmp(c[j].labels, c[k].labels) == 0)
                rc = hs_err_set(err, HS_EINVAL,
                                "vector contains metrics with the same labelset after applying "
                                "alert labels");
    }
    if (rc != HS_OK) {
        cands_free(c, n);
        return rc;
    }
    *out = c;
    *nout = n;
    return HS_OK;
}

/* Restores activeAt of pending alerts from ALERTS_FOR_STATE (see the file comment). */
static void restore_for_state(struct rules_manager *m, struct rules_rule *r, int64_t t)
{
    struct rules_rule_state *st = r->state;
    if (r->for_ms <= 0 || st->nalerts == 0)
        return;
    char tol[32];
    hs_format_duration(m->o.outage_tolerance_ms, tol, sizeof tol);
    struct hs_buf q;
    hs_buf_init(&q, 0);
    int rc = hs_buf_puts(&q, "last_over_time(ALERTS_FOR_STATE{alertname=");
    if (rc == HS_OK)
        rc = hs_buf_json_str(&q, r->name, strlen(r->name));
    if (rc == HS_OK)
        rc = hs_buf_printf(&q, "}[%s])", tol);
    struct promql_result *res = NULL;
    struct hs_err e;
    hs_err_clear(&e);
    if (rc == HS_OK)
        rc = promql_query_instant(m->o.engine, m->o.storage, q.p, t - 1, NULL, &res, &e);
    hs_buf_cleanup(&q);
    if (rc != HS_OK) {
        hs_log(HS_LOG_WARN, "rules: restoring alert state failed", HS_LSTR("alert", r->name),
               HS_LSTR("err", e.msg));
        return;
    }
    for (size_t i = 0; res->type == PROMQL_RESULT_VECTOR && i < res->nseries; i++) {
        struct promql_rseries *s = &res->series[i];
        if (!s->npoints || !isfinite(s->points[0].v))
            continue;
        struct lbuilder b;
        if (lb_from(&b, &s->labels, NULL) != HS_OK)
            continue;
        struct hs_labels ls = lb_labels(&b);
        struct alert *a = find_alert(st, hs_labels_hash(&ls), &ls);
        if (!a || a->state != RULES_PENDING)
            continue;
        int64_t restored = (int64_t)(s->points[0].v * 1000.0);
        if (restored < a->active_at_ms && restored > t - m->o.outage_tolerance_ms) {
            a->active_at_ms = restored;
            if (t - a->active_at_ms >= r->for_ms) {
                a->state = RULES_FIRING;
                a->fired_at_ms = t;
            }
        }
    }
    promql_result_free(res);
}

/* The state machine step of eval_alert; called with m->smu held; frees c. */
static int apply_alert(struct rules_manager *m, const struct rules_group *g, struct rules_rule *r,
                       int64_t t, bool restore, struct cand *c, size_t nc, struct out_vec *o,
                       struct hs_err *err)
{
    struct rules_rule_state *st = r->state;
    int rc = HS_OK;
    /* make room for every candidate up front: nothing below can fail */
    if (st->nalerts + nc > st->cap) {
        size_t cap = st->nalerts + nc + 4;
        struct alert *na = hs_reallocarray(st->alerts, cap, sizeof *na);
        if (!na) {
            cands_free(c, nc);
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        }
        st->alerts = na;
        st->cap = cap;
    }
    bool *seen = hs_calloc(st->nalerts + nc + 1, sizeof *seen);
    if (!seen) {
        cands_free(c, nc);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nc; i++) {
        struct alert *a = find_alert(st, c[i].fp, c[i].labels);
        if (a && a->state != RULES_INACTIVE) {
            a->value = c[i].value;
            for (size_t k = 0; k < a->nann; k++)
                hs_free(a->ann_values[k]);
            hs_free(a->ann_values);
            a->ann_values = c[i].ann;
            a->nann = c[i].nann;
            c[i].ann = NULL;
            c[i].nann = 0;
            seen[a - st->alerts] = true;
            continue;
        }
        if (a) /* a resolved alert comes back: replace it */
            alert_clear(a);
        else
            a = &st->alerts[st->nalerts++];
        memset(a, 0, sizeof *a);
        a->fp = c[i].fp;
        a->labels = c[i].labels;
        a->ann_values = c[i].ann;
        a->nann = c[i].nann;
        a->value = c[i].value;
        a->state = RULES_PENDING;
        a->active_at_ms = t;
        c[i].labels = NULL;
        c[i].ann = NULL;
        c[i].nann = 0;
        seen[a - st->alerts] = true;
    }
    cands_free(c, nc);
    size_t active = 0;
    for (size_t i = 0; i < st->nalerts; i++) {
        struct alert *a = &st->alerts[i];
        bool drop = false;
        if (!seen[i]) {
            bool keep = false;
            if (a->state == RULES_FIRING && r->keep_firing_for_ms > 0) {
                if (a->keep_firing_since_ms == 0)
                    a->keep_firing_since_ms = t;
                keep = t - a->keep_firing_since_ms < r->keep_firing_for_ms;
            }
            if (a->state == RULES_PENDING ||
                (a->resolved_at_ms != 0 && t - a->resolved_at_ms > RULES_RESOLVED_RETENTION_MS))
                drop = true;
            if (a->state != RULES_INACTIVE && !keep) {
                a->state = RULES_INACTIVE;
                a->resolved_at_ms = t;
            }
            if (drop) {
                alert_clear(a);
                a->state = -1; /* compacted below */
                continue;
            }
            if (!keep)
                continue;
        } else {
            a->keep_firing_since_ms = 0;
        }
        active++;
        if (a->state == RULES_PENDING && t - a->active_at_ms >= r->for_ms) {
            a->state = RULES_FIRING;
            a->fired_at_ms = t;
        }
    }
    hs_free(seen);
    size_t k = 0;
    for (size_t i = 0; i < st->nalerts; i++)
        if (st->alerts[i].state != -1)
            st->alerts[k++] = st->alerts[i];
    st->nalerts = k;
    if (restore)
        restore_for_state(m, r, t);
    if (g->limit > 0 && (int64_t)active > g->limit) {
        for (size_t i = 0; i < st->nalerts; i++)
            alert_clear(&st->alerts[i]);
        st->nalerts = 0;
        return hs_err_set(err, HS_EINVAL, "exceeded limit of %lld with %zu alerts",
                          (long long)g->limit, active);
    }
    /* ALERTS and ALERTS_FOR_STATE of every pending or firing alert */
    for (size_t i = 0; i < st->nalerts && rc == HS_OK; i++) {
        struct alert *a = &st->alerts[i];
        if (a->state == RULES_INACTIVE)
            continue;
        struct lbuilder b;
        rc = lb_from(&b, a->labels, err);
        if (rc != HS_OK)
            break;
        lb_put(&b, "__name__", "ALERTS_FOR_STATE");
        struct hs_labels ls = lb_labels(&b);
        rc = out_add(o, &ls, (double)a->active_at_ms / 1000.0, err);
        if (rc != HS_OK)
            break;
        rc = lb_from(&b, a->labels, err);
        lb_put(&b, "__name__", "ALERTS");
        lb_put(&b, "alertstate", a->state == RULES_FIRING ? "firing" : "pending");
        ls = lb_labels(&b);
        if (rc == HS_OK)
            rc = out_add(o, &ls, 1, err);
    }
    return rc;
}

static int eval_alert(struct rules_manager *m, const struct rules_group *g, struct rules_rule *r,
                      int64_t t, bool restore, struct out_vec *o, struct hs_err *err)
{
    struct promql_result *res = NULL;
    int rc = query_vector(m, r->expr, t, &res, err);
    if (rc != HS_OK)
        return rc;
    struct cand *c = NULL;
    size_t nc = 0;
    rc = build_cands(m, r, res, &c, &nc, err);
    promql_result_free(res);
    if (rc != HS_OK)
        return rc;
    pthread_mutex_lock(&m->smu);
    rc = apply_alert(m, g, r, t, restore, c, nc, o, err);
    pthread_mutex_unlock(&m->smu);
    return rc;
}

static void stale_nan(double *v)
{
    uint64_t bits = STALE_NAN_BITS;
    memcpy(v, &bits, sizeof *v);
}

/* Writes 'o' and staleness markers for what the last evaluation wrote and
 * this one did not; then 'o' becomes the rule's previous series. */
static int write_out(struct rules_manager *m, void *batch, struct rules_rule_state *st,
                     struct out_vec *o, int64_t t, struct hs_err *err)
{
    const struct rules_sink_ops *ops = m->o.sink.ops;
    for (size_t i = 0; i < o->n; i++) {
        struct hs_err e;
        hs_err_clear(&e);
        int rc = ops->add(batch, o->v[i].ls, t, o->vals[i], &e);
        if (rc == HS_ENOMEM || rc == HS_EIO)
            return hs_err_set(err, rc, "%s", e.msg);
        if (rc != HS_OK)
            hs_log(HS_LOG_DEBUG, "rules: sample not appended", HS_LSTR("err", e.msg));
    }
    double stale;
    stale_nan(&stale);
    for (size_t i = 0; i < st->nprev; i++) {
        bool present = false;
        for (size_t k = 0; k < o->n && !present; k++)
            present = o->v[k].h == st->prev[i].h && hs_labels_cmp(o->v[k].ls, st->prev[i].ls) == 0;
        if (present)
            continue;
        struct hs_err e;
        hs_err_clear(&e);
        int rc = ops->add(batch, st->prev[i].ls, t, stale, &e);
        if (rc == HS_ENOMEM || rc == HS_EIO)
            return hs_err_set(err, rc, "%s", e.msg);
    }
    series_free(st->prev, st->nprev);
    st->prev = o->v;
    st->nprev = o->n;
    hs_free(o->vals);
    memset(o, 0, sizeof *o);
    return HS_OK;
}

/* generatorURL: <base>/graph?g0.expr=<expr, percent-encoded>&g0.tab=1 */
static char *generator_url(const struct rules_manager *m, const char *expr)
{
    if (!m->generator_url)
        return NULL;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_printf(&b, "%s/graph?g0.expr=", m->generator_url);
    for (const unsigned char *p = (const unsigned char *)expr; rc == HS_OK && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            rc = hs_buf_putc(&b, (char)*p);
        else
            rc = hs_buf_printf(&b, "%%%02X", *p);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(&b, "&g0.tab=1");
    char *r = rc == HS_OK ? hs_buf_detach(&b, NULL) : NULL;
    hs_buf_cleanup(&b);
    return r;
}

/* Hands the alerts of 'r' that need sending to the notifier (Prometheus'
 * needsSending: not pending; resolved since the last send, or not sent
 * for resend_delay). */
static void notify_rule(struct rules_manager *m, const struct rules_group *g, struct rules_rule *r,
                        int64_t t)
{
    struct rules_rule_state *st = r->state;
    if (!m->o.notifier || st->nalerts == 0)
        return;
    struct rules_notify_alert *out = hs_calloc(st->nalerts, sizeof *out);
    struct hs_labels **lsets = hs_calloc(st->nalerts, sizeof *lsets);
    struct hs_label *ann = hs_calloc(r->nannotations + 1, sizeof *ann);
    size_t *idx = hs_calloc(st->nalerts, sizeof *idx);
    struct hs_label *lab = NULL;
    char *gen = generator_url(m, r->expr);
    size_t n = 0;
    if (!out || !lsets || !ann || !idx)
        goto done;
    int64_t iv = group_interval(m, g);
    int64_t valid = 4 * HS_MAX(m->o.resend_delay_ms, iv);
    for (size_t i = 0; i < st->nalerts; i++) {
        struct alert *a = &st->alerts[i];
        if (a->state == RULES_PENDING)
            continue;
        bool due = (a->resolved_at_ms != 0 && a->resolved_at_ms > a->last_sent_ms) ||
                   a->last_sent_ms == 0 || a->last_sent_ms + m->o.resend_delay_ms < t;
        if (!due)
            continue;
        /* alert labels plus external labels (alert labels win) */
        hs_free(lab);
        lab = hs_calloc(a->labels->n + m->ext->n + 1, sizeof *lab);
        if (!lab)
            goto done;
        size_t k = 0;
        for (size_t q = 0; q < a->labels->n; q++)
            lab[k++] = a->labels->v[q];
        for (size_t q = 0; q < m->ext->n; q++)
            if (!hs_labels_get(a->labels, m->ext->v[q].name))
                lab[k++] = m->ext->v[q];
        struct hs_labels tmp = {k, lab};
        hs_labels_sort(&tmp);
        lsets[n] = hs_labels_dup(&tmp);
        if (!lsets[n])
            goto done;
        a->last_sent_ms = t;
        out[n].labels = lsets[n];
        out[n].starts_at_ms = a->fired_at_ms ? a->fired_at_ms : a->active_at_ms;
        out[n].ends_at_ms = a->resolved_at_ms ? a->resolved_at_ms : t + valid;
        out[n].generator_url = gen;
        idx[n] = i;
        n++;
    }
    /* annotations: the rule's names with each alert's expanded values */
    for (size_t j = 0; j < n; j++) {
        const struct alert *a = &st->alerts[idx[j]];
        struct hs_labels al = {0, ann};
        for (size_t q = 0; q < r->nannotations && a->nann == r->nannotations; q++) {
            ann[al.n].name = r->annotations[q].name;
            ann[al.n].value = a->ann_values[q];
            al.n++;
        }
        out[j].annotations = &al;
        struct hs_err e;
        hs_err_clear(&e);
        if (rules_notifier_enqueue(m->o.notifier, &out[j], 1, &e) != HS_OK)
            hs_log(HS_LOG_WARN, "rules: alert not queued for notification",
                   HS_LSTR("alert", r->name), HS_LSTR("err", e.msg));
        out[j].annotations = NULL;
    }
done:
    for (size_t i = 0; lsets && i < n; i++)
        hs_labels_free(lsets[i]);
    hs_free(lsets);
    hs_free(out);
    hs_free(idx);
    hs_free(ann);
    hs_free(lab);
    hs_free(gen);
}

static int eval_group_locked(struct rules_manager *m, struct rules_group *g, int64_t t,
                             struct hs_err *err)
{
    int64_t g0 = hs_mono_ns();
    void *batch = NULL;
    int rc = m->o.sink.ops->begin(m->o.sink.ctx, &batch, err);
    if (rc != HS_OK)
        return rc;
    bool restore = g->state->needs_restore;
    int64_t qt = t - g->query_offset_ms; /* query and sample time */
    for (size_t i = 0; i < g->nrules && rc == HS_OK; i++) {
        struct rules_rule *r = &g->rules[i];
        struct rules_rule_state *st = r->state;
        int64_t r0 = hs_mono_ns();
        struct out_vec o = {0};
        struct hs_err e;
        hs_err_clear(&e);
        int erc = r->kind == RULES_KIND_RECORD ? eval_record(m, g, r, qt, &o, &e)
                                               : eval_alert(m, g, r, qt, restore, &o, &e);
        pthread_mutex_lock(&m->smu);
        if (erc == HS_OK) {
            rc = write_out(m, batch, st, &o, qt, err);
            hs_free(st->last_error);
            st->last_error = NULL;
            if (r->kind == RULES_KIND_ALERT)
                notify_rule(m, g, r, qt);
        } else {
            set_error(st, e.msg);
            hs_log(HS_LOG_WARN, "rules: evaluation failed", HS_LSTR("group", g->name),
                   HS_LSTR("rule", r->name), HS_LSTR("err", e.msg));
        }
        out_free(&o);
        st->evaluated = true;
        st->last_eval_ms = t;
        st->eval_seconds = (double)(hs_mono_ns() - r0) / 1e9;
        pthread_mutex_unlock(&m->smu);
    }
    struct hs_err ce;
    hs_err_clear(&ce);
    int crc = m->o.sink.ops->commit(batch, &ce);
    if (rc == HS_OK && crc != HS_OK) {
        if (err)
            *err = ce;
        rc = crc;
    }
    pthread_mutex_lock(&m->smu);
    g->state->needs_restore = false;
    g->state->last_eval_ms = t;
    g->state->eval_seconds = (double)(hs_mono_ns() - g0) / 1e9;
    pthread_mutex_unlock(&m->smu);
    return rc;
}

int rules_manager_eval_group(struct rules_manager *m, size_t gi, int64_t t_ms, struct hs_err *err)
{
    pthread_mutex_lock(&m->mu);
    int rc;
    if (gi >= m->set->ngroups)
        rc = hs_err_set(err, HS_EINVAL, "no rule group %zu", gi);
    else
        rc = eval_group_locked(m, &m->set->groups[gi], t_ms, err);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int rules_manager_eval_all(struct rules_manager *m, int64_t now_ms, struct hs_err *err)
{
    pthread_mutex_lock(&m->mu);
    int rc = HS_OK;
    for (size_t i = 0; i < m->set->ngroups && rc == HS_OK; i++)
        rc =
            eval_group_locked(m, &m->set->groups[i], eval_time(m, &m->set->groups[i], now_ms), err);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- the evaluation thread ---------------------------------------------------- */

static void *loop(void *arg)
{
    struct rules_manager *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        int64_t now = hs_now_ms();
        int64_t next = now + 60000;
        for (size_t i = 0; i < m->set->ngroups; i++) {
            struct rules_group *g = &m->set->groups[i];
            int64_t iv = group_interval(m, g);
            if (g->state->next_eval_ms == 0)
                g->state->next_eval_ms = eval_time(m, g, now) + iv;
            if (g->state->next_eval_ms <= now) {
                int64_t t = eval_time(m, g, now);
                struct hs_err e;
                hs_err_clear(&e);
                if (eval_group_locked(m, g, t, &e) != HS_OK)
                    hs_log(HS_LOG_WARN, "rules: group evaluation failed", HS_LSTR("group", g->name),
                           HS_LSTR("err", e.msg));
                g->state->next_eval_ms = t + iv;
                now = hs_now_ms();
            }
            if (g->state->next_eval_ms < next)
                next = g->state->next_eval_ms;
        }
        if (m->stopping)
            break;
        if (m->o.notifier) {
            struct rules_notifier *nt = m->o.notifier;
            pthread_mutex_unlock(&m->mu);
            rules_notifier_run(nt, hs_now_ms());
            pthread_mutex_lock(&m->mu);
            if (next > hs_now_ms() + 1000)
                next = hs_now_ms() + 1000; /* retries with backoff need a steady beat */
            if (m->stopping)
                break;
        }
        int64_t wait = next - hs_now_ms();
        if (wait <= 0)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (wait % 1000) * 1000000;
        ts.tv_sec += (time_t)(wait / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int rules_manager_start(struct rules_manager *m, struct hs_err *err)
{
    pthread_mutex_lock(&m->mu);
    if (m->running) {
        pthread_mutex_unlock(&m->mu);
        return hs_err_set(err, HS_EINVAL, "rule evaluation already running");
    }
    m->stopping = false;
    int prc = pthread_create(&m->thread, NULL, loop, m);
    if (prc == 0)
        m->running = true;
    pthread_mutex_unlock(&m->mu);
    return prc == 0 ? HS_OK : hs_err_set(err, HS_EIO, "cannot start the rule thread");
}

void rules_manager_stop(struct rules_manager *m)
{
    pthread_mutex_lock(&m->mu);
    if (!m->running) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    m->stopping = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    pthread_mutex_lock(&m->mu);
    m->running = false;
    pthread_mutex_unlock(&m->mu);
}

/* ---- inspection ------------------------------------------------------------------ */

static struct rules_rule *find_rule(struct rules_manager *m, const char *alertname)
{
    for (size_t i = 0; i < m->set->ngroups; i++)
        for (size_t j = 0; j < m->set->groups[i].nrules; j++) {
            struct rules_rule *r = &m->set->groups[i].rules[j];
            if (r->kind == RULES_KIND_ALERT && strcmp(r->name, alertname) == 0)
                return r;
        }
    return NULL;
}

int rules_manager_alert_get(struct rules_manager *m, const char *alertname,
                            const struct hs_labels *labels, struct rules_alert_info *out,
                            struct hs_err *err)
{
    pthread_mutex_lock(&m->smu);
    int rc = hs_err_set(err, HS_ENOTFOUND, "no such alert");
    struct rules_rule *r = find_rule(m, alertname);
    struct alert *a = r ? find_alert(r->state, hs_labels_hash(labels), labels) : NULL;
    if (a) {
        out->state = a->state;
        out->active_at_ms = a->active_at_ms;
        out->fired_at_ms = a->fired_at_ms;
        out->resolved_at_ms = a->resolved_at_ms;
        out->value = a->value;
        hs_err_clear(err);
        rc = HS_OK;
    }
    pthread_mutex_unlock(&m->smu);
    return rc;
}

size_t rules_manager_alert_count(struct rules_manager *m, const char *alertname, int state)
{
    pthread_mutex_lock(&m->smu);
    size_t n = 0;
    struct rules_rule *r = find_rule(m, alertname);
    for (size_t i = 0; r && i < r->state->nalerts; i++)
        if (r->state->alerts[i].state == state)
            n++;
    pthread_mutex_unlock(&m->smu);
    return n;
}

uint64_t rules_manager_failures(struct rules_manager *m)
{
    pthread_mutex_lock(&m->smu);
    uint64_t n = m->failures_removed;
    for (size_t i = 0; i < m->set->ngroups; i++)
        for (size_t j = 0; j < m->set->groups[i].nrules; j++)
            n += m->set->groups[i].rules[j].state->failures;
    pthread_mutex_unlock(&m->smu);
    return n;
}

/* ---- JSON ---------------------------------------------------------------------------- */

int rules__json_time(struct hs_buf *b, int64_t t_ms, bool valid)
{
    if (!valid)
        return hs_buf_puts(b, "\"0001-01-01T00:00:00Z\"");
    time_t s = (time_t)(t_ms >= 0 ? t_ms / 1000 : (t_ms - 999) / 1000);
    int ms = (int)(t_ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char d[64];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms == 0)
        return hs_buf_printf(b, "\"%sZ\"", d);
    /* Milliseconds without trailing zeros, as Go's RFC3339Nano prints them. */
    int digits = 3;
    while (digits > 1 && ms % 10 == 0) {
        ms /= 10;
        digits--;
    }
    return hs_buf_printf(b, "\"%s.%0*dZ\"", d, digits, ms);
}

/* Go's strconv.FormatFloat(v, 'e', -1, 64): the shortest exact 'e' form. */
static int json_value_e(struct hs_buf *b, double v)
{
    if (isnan(v))
        return hs_buf_puts(b, "\"NaN\"");
    if (isinf(v))
        return hs_buf_puts(b, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
    char t[64];
    for (int p = 0; p < 17; p++) {
        snprintf(t, sizeof t, "%.*e", p, v);
        if (strtod(t, NULL) == v)
            break;
    }
    return hs_buf_printf(b, "\"%s\"", t);
}

int rules__json_labels(struct hs_buf *b, const struct hs_labels *ls)
{
    int rc = hs_buf_putc(b, '{');
    for (size_t i = 0; rc == HS_OK && ls && i < ls->n; i++) {
        if (i)
            rc = hs_buf_putc(b, ',');
        if (rc == HS_OK)
            rc = hs_buf_json_str(b, ls->v[i].name, strlen(ls->v[i].name));
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ':');
        if (rc == HS_OK)
            rc = hs_buf_json_str(b, ls->v[i].value, strlen(ls->v[i].value));
    }
    return rc == HS_OK ? hs_buf_putc(b, '}') : rc;
}

static int json_kv(struct hs_buf *b, const struct rules_kv *kv, char *const *values, size_t n)
{
    int rc = hs_buf_putc(b, '{');
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        const char *v = values ? values[i] : kv[i].value;
        if (i)
            rc = hs_buf_putc(b, ',');
        if (rc == HS_OK)
            rc = hs_buf_json_str(b, kv[i].name, strlen(kv[i].name));
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ':');
        if (rc == HS_OK)
            rc = hs_buf_json_str(b, v, strlen(v));
    }
    return rc == HS_OK ? hs_buf_putc(b, '}') : rc;
}

static const char *state_name(int s)
{
    return s == RULES_FIRING ? "firing" : s == RULES_PENDING ? "pending" : "inactive";
}

static int json_alert(struct hs_buf *b, const struct rules_rule *r, const struct alert *a)
{
    int rc = hs_buf_puts(b, "{\"labels\":");
    if (rc == HS_OK)
        rc = rules__json_labels(b, a->labels);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"annotations\":");
    if (rc == HS_OK)
        rc = json_kv(b, r->annotations, a->nann == r->nannotations ? a->ann_values : NULL,
                     a->nann == r->nannotations ? a->nann : 0);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"state\":\"%s\",\"activeAt\":", state_name(a->state));
    if (rc == HS_OK)
        rc = rules__json_time(b, a->active_at_ms, true);
    if (rc == HS_OK && a->keep_firing_since_ms) {
        rc = hs_buf_puts(b, ",\"keepFiringSince\":");
        if (rc == HS_OK)
            rc = rules__json_time(b, a->keep_firing_since_ms, true);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"value\":");
    if (rc == HS_OK)
        rc = json_value_e(b, a->value);
    return rc == HS_OK ? hs_buf_putc(b, '}') : rc;
}

static int json_rule(struct hs_buf *b, const struct rules_rule *r, bool exclude_alerts)
{
    const struct rules_rule_state *st = r->state;
    int rc = HS_OK;
    bool alert = r->kind == RULES_KIND_ALERT;
    if (alert) {
        int s = RULES_INACTIVE;
        for (size_t i = 0; i < st->nalerts; i++)
            if (st->alerts[i].state > s)
                s = st->alerts[i].state;
        rc = hs_buf_printf(b, "{\"state\":\"%s\",", state_name(s));
    } else {
        rc = hs_buf_putc(b, '{');
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(b, "\"name\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, r->name, strlen(r->name));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"query\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, r->expr, strlen(r->expr));
    if (rc == HS_OK && alert)
        rc =
            hs_buf_printf(b, ",\"duration\":%lld,\"keepFiringFor\":%lld",
                          (long long)(r->for_ms / 1000), (long long)(r->keep_firing_for_ms / 1000));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"labels\":");
    if (rc == HS_OK)
        rc = json_kv(b, r->labels, NULL, r->nlabels);
    if (rc == HS_OK && alert) {
        rc = hs_buf_puts(b, ",\"annotations\":");
        if (rc == HS_OK)
            rc = json_kv(b, r->annotations, NULL, r->nannotations);
        if (rc == HS_OK && !exclude_alerts) {
            rc = hs_buf_puts(b, ",\"alerts\":[");
            bool first = true;
            for (size_t i = 0; rc == HS_OK && i < st->nalerts; i++) {
                if (st->alerts[i].state == RULES_INACTIVE)
                    continue;
                if (!first)
                    rc = hs_buf_putc(b, ',');
                first = false;
                if (rc == HS_OK)
                    rc = json_alert(b, r, &st->alerts[i]);
            }
            if (rc == HS_OK)
                rc = hs_buf_putc(b, ']');
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"health\":\"%s\",\"lastError\":",
                           !st->evaluated   ? "unknown"
                           : st->last_error ? "err"
                                            : "ok");
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, st->last_error ? st->last_error : "",
                             st->last_error ? strlen(st->last_error) : 0);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"evaluationTime\":%.9f,\"lastEvaluation\":", st->eval_seconds);
    if (rc == HS_OK)
        rc = rules__json_time(b, st->last_eval_ms, st->evaluated);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"type\":\"%s\"}", alert ? "alerting" : "recording");
    return rc;
}

int rules_manager_rules_json(struct rules_manager *m, const struct rules_api_filter *f,
                             struct hs_buf *out)
{
    const char *type = f ? f->type : NULL;
    bool want_alert = !type || strcmp(type, "alert") == 0;
    bool want_record = !type || strcmp(type, "record") == 0;
    pthread_mutex_lock(&m->smu);
    int rc = hs_buf_puts(out, "{\"groups\":[");
    bool gfirst = true;
    for (size_t i = 0; rc == HS_OK && i < m->set->ngroups; i++) {
        const struct rules_group *g = &m->set->groups[i];
        if (!gfirst)
            rc = hs_buf_putc(out, ',');
        gfirst = false;
        if (rc == HS_OK)
            rc = hs_buf_puts(out, "{\"name\":");
        if (rc == HS_OK)
            rc = hs_buf_json_str(out, g->name, strlen(g->name));
        if (rc == HS_OK)
            rc = hs_buf_puts(out, ",\"file\":");
        if (rc == HS_OK)
            rc = hs_buf_json_str(out, g->file, strlen(g->file));
        if (rc == HS_OK)
            rc = hs_buf_puts(out, ",\"rules\":[");
        bool first = true;
        for (size_t j = 0; rc == HS_OK && j < g->nrules; j++) {
            const struct rules_rule *r = &g->rules[j];
            if ((r->kind == RULES_KIND_ALERT && !want_alert) ||
                (r->kind == RULES_KIND_RECORD && !want_record))
                continue;
            if (!first)
                rc = hs_buf_putc(out, ',');
            first = false;
            if (rc == HS_OK)
                rc = json_rule(out, r, f && f->exclude_alerts);
        }
        if (rc == HS_OK)
            rc = hs_buf_printf(out,
                               "],\"interval\":%g,\"limit\":%lld,\"evaluationTime\":%.9f,"
                               "\"lastEvaluation\":",
                               (double)group_interval(m, g) / 1000.0, (long long)g->limit,
                               g->state->eval_seconds);
        if (rc == HS_OK)
            rc = rules__json_time(out, g->state->last_eval_ms, g->state->last_eval_ms != 0);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '}');
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "]}");
    pthread_mutex_unlock(&m->smu);
    return rc;
}

int rules_manager_alerts_json(struct rules_manager *m, struct hs_buf *out)
{
    pthread_mutex_lock(&m->smu);
    int rc = hs_buf_puts(out, "{\"alerts\":[");
    bool first = true;
    for (size_t i = 0; rc == HS_OK && i < m->set->ngroups; i++) {
        const struct rules_group *g = &m->set->groups[i];
        for (size_t j = 0; rc == HS_OK && j < g->nrules; j++) {
            const struct rules_rule *r = &g->rules[j];
            if (r->kind != RULES_KIND_ALERT)
                continue;
            for (size_t k = 0; rc == HS_OK && k < r->state->nalerts; k++) {
                if (r->state->alerts[k].state == RULES_INACTIVE)
                    continue;
                if (!first)
                    rc = hs_buf_putc(out, ',');
                first = false;
                if (rc == HS_OK)
                    rc = json_alert(out, r, &r->state->alerts[k]);
            }
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "]}");
    pthread_mutex_unlock(&m->smu);
    return rc;
}
