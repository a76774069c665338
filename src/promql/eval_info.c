/*
 * eval_info.c - the experimental info(v [, selector]) function: enriches
 * each series of v with the data labels of the info metrics (target_info by
 * default) that share its identifying labels (instance, job).
 *
 * As in Prometheus: series of v that are info metrics themselves pass
 * through; the info series are selected with the name matchers of the
 * selector (target_info when there are none, or a name matcher that cannot
 * select by itself is narrowed to .+_info) and its other matchers; at every
 * step the newest info sample per (name, instance, job) wins; labels the
 * base series already has are kept; two info series giving one label
 * different values is "conflicting label"; a base series that finds no info
 * series is dropped when a data matcher does not accept the empty string.
 */
#include "promql/internal.h"

#include <string.h>

static const char *id_labels[2] = {"instance", "job"};

struct minfo {
    const struct promql_label_matcher *data; /* data matchers without __name__ */
    size_t ndata;
    struct promql_label_matcher *name; /* effective name matchers */
    size_t nname;
};

static bool match_one(const struct promql_label_matcher *lm, const char *v)
{
    struct promql_matcher m = {lm->op, lm->name, lm->value, NULL, NULL};
    bool r;
    if (promql_matcher_compile(&m, NULL) != HS_OK)
        return false;
    r = promql_matcher_matches(&m, v != NULL ? v : "");
    promql_matcher_cleanup(&m);
    return r;
}

static bool name_matches(const struct minfo *mi, const struct hs_labels *ls)
{
    const char *name = hs_labels_get(ls, "__name__");
    for (size_t i = 0; i < mi->nname; i++) {
        if (!match_one(&mi->name[i], name))
            return false;
    }
    return true;
}

/* The first vector selector of e and the @/offset that apply to it. */
static const struct promql_node *first_selector(const struct promql_node *e, int64_t *offset,
                                                int *at, int64_t *at_ms)
{
    switch (e->kind) {
    case PROMQL_NODE_VECTOR:
        *offset += e->u.sel.offset_ms;
        if (*at == PROMQL_AT_NONE) {
            *at = e->u.sel.at;
            *at_ms = e->u.sel.at_ms;
        }
        return e;
    case PROMQL_NODE_MATRIX:
        return first_selector(e->u.matrix.vector, offset, at, at_ms);
    case PROMQL_NODE_SUBQUERY: {
        const struct promql_node *s = first_selector(e->u.subquery.expr, offset, at, at_ms);
        if (s != NULL && *at == PROMQL_AT_NONE) {
            *offset += e->u.subquery.offset_ms;
            *at = e->u.subquery.at;
            *at_ms = e->u.subquery.at_ms;
        }
        return s;
    }
    case PROMQL_NODE_CALL:
        for (size_t i = 0; i < e->u.call.nargs; i++) {
            const struct promql_node *s = first_selector(e->u.call.args[i], offset, at, at_ms);
            if (s != NULL)
                return s;
        }
        return NULL;
    case PROMQL_NODE_AGGREGATE:
        if (e->u.agg.param != NULL) {
            const struct promql_node *s = first_selector(e->u.agg.param, offset, at, at_ms);
            if (s != NULL)
                return s;
        }
        return first_selector(e->u.agg.expr, offset, at, at_ms);
    case PROMQL_NODE_BINARY: {
        const struct promql_node *s = first_selector(e->u.bin.lhs, offset, at, at_ms);
        return s != NULL ? s : first_selector(e->u.bin.rhs, offset, at, at_ms);
    }
    case PROMQL_NODE_UNARY:
        return first_selector(e->u.unary.expr, offset, at, at_ms);
    case PROMQL_NODE_PAREN:
        return first_selector(e->u.paren.expr, offset, at, at_ms);
    default:
        return NULL;
    }
}

static int setup_matchers(struct promql__ctx *c, const struct promql_node *n, struct minfo *mi)
{
    const struct promql_node *sel = n->u.call.nargs > 1 ? n->u.call.args[1] : NULL;
    size_t nm = sel != NULL ? sel->u.sel.nmatchers : 0;
    struct promql_label_matcher *data = promql__alloc(c, (nm ? nm : 1) * sizeof *data);
    struct promql_label_matcher *name = promql__alloc(c, (nm + 1) * sizeof *name);
    bool selects = false;
    mi->ndata = mi->nname = 0;
    if (data == NULL || name == NULL)
        return promql__oom(c);
    while (sel != NULL && sel->kind == PROMQL_NODE_PAREN)
        sel = sel->u.paren.expr;
    if (sel != NULL && sel->kind != PROMQL_NODE_VECTOR)
        return hs_err_set(c->err, HS_EINVAL, "info(): the second argument must be a selector");
    for (size_t i = 0; i < nm; i++) {
        const struct promql_label_matcher *m = &sel->u.sel.matchers[i];
        if (strcmp(m->name, "__name__") == 0) {
            name[mi->nname++] = *m;
            selects = selects || m->op == PROMQL_MATCH_EQ || m->op == PROMQL_MATCH_RE;
        } else {
            data[mi->ndata++] = *m;
        }
    }
    if (mi->nname == 0) {
        name[0] = (struct promql_label_matcher){PROMQL_MATCH_EQ, "__name__", "target_info"};
        mi->nname = 1;
    } else if (!selects) {
        memmove(&name[1], &name[0], mi->nname * sizeof *name);
        name[0] = (struct promql_label_matcher){PROMQL_MATCH_RE, "__name__", ".+_info"};
        mi->nname++;
    }
    mi->data = data;
    mi->name = name;
    return HS_OK;
}

/* Info series: evaluated like a selector whose values are sample times. */
static int fetch_info(struct promql__ctx *c, const struct promql_node *n, const struct minfo *mi,
                      const struct promql__grid *g, struct promql__val *out)
{
    struct promql_node sel;
    int64_t offset = 0, at_ms = 0;
    int at = PROMQL_AT_NONE;
    size_t nm = mi->nname + mi->ndata;
    struct promql_label_matcher *ms = promql__alloc(c, (nm ? nm : 1) * sizeof *ms);
    if (ms == NULL)
        return promql__oom(c);
    memcpy(ms, mi->name, mi->nname * sizeof *ms);
    memcpy(ms + mi->nname, mi->data, mi->ndata * sizeof *ms);
    first_selector(n->u.call.args[0], &offset, &at, &at_ms);
    memset(&sel, 0, sizeof sel);
    sel.kind = PROMQL_NODE_VECTOR;
    sel.type = PROMQL_TYPE_VECTOR;
    sel.u.sel.matchers = ms;
    sel.u.sel.nmatchers = nm;
    sel.u.sel.offset_ms = offset;
    sel.u.sel.at = at;
    sel.u.sel.at_ms = at_ms;
    return promql__eval_timestamp_sel(c, &sel, g, 3, out);
}

/* Signature of 'ls' for info metric 'name': name plus the identifying labels. */
static int info_sig(const char *name, const struct hs_labels *ls, struct hs_buf *b)
{
    int rc = hs_buf_append(b, name, strlen(name) + 1);
    for (size_t i = 0; i < 2 && rc == HS_OK; i++) {
        const char *v = hs_labels_get(ls, id_labels[i]);
        rc = hs_buf_append(b, v ? v : "", (v ? strlen(v) : 0) + 1);
    }
    return rc;
}

static bool has_id_value(const struct promql__val *base, const bool *ignored,
                         const struct hs_labels *ls)
{
    /* The info series must carry, for each identifying label some base series
     * has, one of the values the base series have. */
    for (size_t l = 0; l < 2; l++) {
        bool any = false, found = false;
        const char *iv = hs_labels_get(ls, id_labels[l]);
        for (size_t k = 0; k < base->ns; k++) {
            const char *bv;
            if (ignored[k])
                continue;
            bv = hs_labels_get(&base->s[k].labels, id_labels[l]);
            if (bv == NULL || bv[0] == '\0')
                continue;
            any = true;
            if (iv != NULL && strcmp(iv, bv) == 0)
                found = true;
        }
        if (any && !found)
            return false;
    }
    return true;
}

struct outset {
    struct promql__val *out;
    size_t cap;
    struct promql__map map;
    size_t nsteps;
};

static int emit(struct promql__ctx *c, struct outset *o, const struct hs_labels *ls, bool drop,
                size_t step, double v)
{
    struct hs_buf key;
    int idx;
    bool added;
    int rc;
    hs_buf_init(&key, 0);
    if (promql__labels_key(ls, &key) != HS_OK) {
        hs_buf_cleanup(&key);
        return promql__oom(c);
    }
    rc = promql__map_put(c, &o->map, key.p ? key.p : "", key.len, (int)o->out->ns, &idx, &added);
    hs_buf_cleanup(&key);
    if (rc != HS_OK)
        return rc;
    if (added) {
        if (o->out->ns == o->cap) {
            size_t ncap = o->cap ? o->cap * 2 : 16;
            struct promql__series *ns = promql__alloc(c, ncap * sizeof *ns);
            if (ns == NULL)
                return promql__oom(c);
            if (o->out->ns)
                memcpy(ns, o->out->s, o->out->ns * sizeof *ns);
            o->out->s = ns;
            o->cap = ncap;
        }
        struct promql__series *s = promql__series_new(c, o->nsteps);
        if (s == NULL)
            return promql__oom(c);
        rc = promql__labels_copy(c, ls, &s->labels);
        if (rc != HS_OK)
            return rc;
        s->drop_name = drop;
        o->out->s[o->out->ns++] = *s;
    }
    if (o->out->s[idx].ok[step])
        return hs_err_set(c->err, HS_EINVAL,
                          "vector cannot contain metrics with the same labelset");
    o->out->s[idx].ok[step] = 1;
    o->out->s[idx].v[step] = v;
    return HS_OK;
}

static bool data_allows_empty(const struct minfo *mi)
{
    for (size_t i = 0; i < mi->ndata; i++) {
        if (!match_one(&mi->data[i], ""))
            return false;
    }
    return true;
}

static bool wanted_label(const struct minfo *mi, const char *name)
{
    if (mi->ndata == 0)
        return true;
    for (size_t i = 0; i < mi->ndata; i++) {
        if (strcmp(mi->data[i].name, name) == 0)
            return true;
    }
    return false;
}

/* Joins base series k at step i with the chosen info series; NULL when dropped. */
static int join_one(struct promql__ctx *c, const struct minfo *mi, const struct hs_labels *base,
                    const struct promql__val *info, const int *chosen, struct promql__map *sigs,
                    const char **names, size_t nnames, struct hs_labels *out, bool *keep)
{
    struct hs_labels add = {0, NULL};
    struct hs_buf sig;
    size_t seen = 0;
    int rc = HS_OK;
    add.v = promql__alloc(c, 64 * sizeof *add.v);
    if (add.v == NULL)
        return promql__oom(c);
    hs_buf_init(&sig, 0);
    for (size_t nm = 0; nm < nnames && rc == HS_OK; nm++) {
        int si, slot;
        bool added;
        hs_buf_reset(&sig);
        if (info_sig(names[nm], base, &sig) != HS_OK) {
            rc = promql__oom(c);
            break;
        }
        rc = promql__map_put(c, sigs, sig.p, sig.len, -1, &si, &added);
        if (rc != HS_OK || si < 0 || (slot = chosen[si]) < 0)
            continue;
        seen++;
        const struct hs_labels *il = &info->s[slot].labels;
        for (size_t l = 0; l < il->n; l++) {
            const char *ln = il->v[l].name, *lv = il->v[l].value;
            if (strcmp(ln, "__name__") == 0 || !wanted_label(mi, ln))
                continue;
            const char *have = hs_labels_get(&add, ln);
            if (have != NULL && have[0] != '\0' && strcmp(have, lv) != 0) {
                rc = hs_err_set(c->err, HS_EINVAL, "conflicting label: %s", ln);
                break;
            }
            if (hs_labels_get(base, ln) != NULL || have != NULL || add.n >= 64)
                continue;
            add.v[add.n++] = (struct hs_label){ln, lv};
            hs_labels_sort(&add);
        }
    }
    hs_buf_cleanup(&sig);
    if (rc != HS_OK)
        return rc;
    *keep = seen > 0 || data_allows_empty(mi);
    if (!*keep)
        return HS_OK;
    *out = *base;
    for (size_t l = 0; l < add.n && rc == HS_OK; l++)
        rc = promql__labels_set(c, out, add.v[l].name, add.v[l].value, out);
    return rc;
}

int promql__eval_info(struct promql__ctx *c, const struct promql_node *n,
                      const struct promql__grid *g, struct promql__val *out)
{
    struct minfo mi = {0};
    struct promql__val base, info;
    struct outset o;
    struct promql__map sigs;
    struct hs_buf sig;
    int rc = promql__eval(c, n->u.call.args[0], g, &base);
    if (rc == HS_OK)
        rc = setup_matchers(c, n, &mi);
    if (rc != HS_OK)
        return rc;
    bool *ignored = hs_arena_calloc(c->arena, (base.ns ? base.ns : 1) * sizeof *ignored);
    bool any_id = false;
    if (ignored == NULL)
        return promql__oom(c);
    for (size_t k = 0; k < base.ns; k++) {
        ignored[k] = name_matches(&mi, &base.s[k].labels);
        for (size_t l = 0; l < 2 && !ignored[k]; l++) {
            const char *v = hs_labels_get(&base.s[k].labels, id_labels[l]);
            any_id = any_id || (v != NULL && v[0] != '\0');
        }
    }
    memset(&info, 0, sizeof info);
    if (any_id) {
        rc = fetch_info(c, n, &mi, g, &info);
        if (rc != HS_OK)
            return rc;
        size_t w = 0;
        for (size_t k = 0; k < info.ns; k++) {
            if (has_id_value(&base, ignored, &info.s[k].labels))
                info.s[w++] = info.s[k];
        }
        info.ns = w;
    }
    /* Distinct info metric names and the signature ordinal of each info series. */
    const char **names = promql__alloc(c, (info.ns ? info.ns : 1) * sizeof *names);
    int *isig = promql__alloc(c, (info.ns ? info.ns : 1) * sizeof *isig);
    size_t nnames = 0;
    int nsig = 0;
    if (names == NULL || isig == NULL)
        return promql__oom(c);
    memset(&sigs, 0, sizeof sigs);
    hs_buf_init(&sig, 0);
    for (size_t k = 0; k < info.ns && rc == HS_OK; k++) {
        const char *nm = hs_labels_get(&info.s[k].labels, "__name__");
        bool known = false, added;
        nm = nm ? nm : "";
        for (size_t j = 0; j < nnames && !known; j++)
            known = strcmp(names[j], nm) == 0;
        if (!known)
            names[nnames++] = nm;
        hs_buf_reset(&sig);
        if (info_sig(nm, &info.s[k].labels, &sig) != HS_OK)
            rc = promql__oom(c);
        else
            rc = promql__map_put(c, &sigs, sig.p, sig.len, nsig, &isig[k], &added);
        if (rc == HS_OK && added)
            nsig++;
    }
    hs_buf_cleanup(&sig);
    if (rc != HS_OK)
        return rc;
    int *chosen = promql__alloc(c, (size_t)(nsig ? nsig : 1) * sizeof *chosen);
    if (chosen == NULL)
        return promql__oom(c);
    memset(&o, 0, sizeof o);
    o.out = out;
    o.nsteps = g->n;
    out->type = PROMQL_TYPE_VECTOR;
    out->ns = 0;
    for (size_t i = 0; i < g->n && rc == HS_OK; i++) {
        for (int s = 0; s < nsig; s++)
            chosen[s] = -1;
        for (size_t k = 0; k < info.ns && rc == HS_OK; k++) {
            int *ch = &chosen[isig[k]];
            if (!info.s[k].ok[i])
                continue;
            if (*ch < 0 || info.s[*ch].v[i] < info.s[k].v[i]) {
                *ch = (int)k;
            } else if (info.s[*ch].v[i] == info.s[k].v[i]) {
                struct hs_buf a, b;
                hs_buf_init(&a, 0);
                hs_buf_init(&b, 0);
                promql__format_labels(&info.s[*ch].labels, &a);
                promql__format_labels(&info.s[k].labels, &b);
                rc = hs_err_set(c->err, HS_EINVAL,
                                "found duplicate series for info metric: existing %s @ %lld, new "
                                "%s @ %lld",
                                a.p ? a.p : "{}", (long long)(info.s[*ch].v[i] * 1000),
                                b.p ? b.p : "{}", (long long)(info.s[k].v[i] * 1000));
                hs_buf_cleanup(&a);
                hs_buf_cleanup(&b);
            }
        }
        for (size_t k = 0; k < base.ns && rc == HS_OK; k++) {
            struct promql__series *bs = &base.s[k];
            struct hs_labels ls;
            bool keep = true;
            if (!bs->ok[i])
                continue;
            if (ignored[k]) {
                rc = emit(c, &o, &bs->labels, bs->drop_name, i, bs->v[i]);
                continue;
            }
            rc = join_one(c, &mi, &bs->labels, &info, chosen, &sigs, names, nnames, &ls, &keep);
            if (rc == HS_OK && keep)
                rc = emit(c, &o, &ls, bs->drop_name, i, bs->v[i]);
        }
    }
    return rc;
}
