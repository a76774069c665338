/*
 * eval_binop.c - binary operators: scalar/scalar, vector/scalar and
 * vector/vector with one-to-one, many-to-one and one-to-many matching and
 * the set operators and, or, unless; plus the small string map shared by
 * the evaluator.
 *
 * Matching signatures are computed once per series; each step then pairs
 * the series present at that step.  Output series are found through a map
 * of their label sets, so a pairing that recurs over many steps writes into
 * one output series.
 */
#include "promql/internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- string map ---------------------------------------------------------------- */

static int map_grow(struct promql__ctx *c, struct promql__map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    uint64_t *h = promql__alloc(c, ncap * sizeof *h);
    const char **k = hs_arena_calloc(c->arena, ncap * sizeof *k);
    size_t *kl = promql__alloc(c, ncap * sizeof *kl);
    int *v = promql__alloc(c, ncap * sizeof *v);
    if (h == NULL || k == NULL || kl == NULL || v == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->key[i] == NULL)
            continue;
        size_t j = m->hash[i] & (ncap - 1);
        while (k[j] != NULL)
            j = (j + 1) & (ncap - 1);
        h[j] = m->hash[i];
        k[j] = m->key[i];
        kl[j] = m->klen[i];
        v[j] = m->val[i];
    }
    m->hash = h;
    m->key = k;
    m->klen = kl;
    m->val = v;
    m->cap = ncap;
    return HS_OK;
}

int *promql__map_ref(struct promql__ctx *c, struct promql__map *m, const char *key, size_t len,
                     int val)
{
    int out;
    bool added;
    if (promql__map_put(c, m, key, len, val, &out, &added) != HS_OK)
        return NULL;
    uint64_t h = hs_hash64(key, len, 0x9e3779b97f4a7c15ULL);
    size_t j = h & (m->cap - 1);
    while (!(m->hash[j] == h && m->klen[j] == len && memcmp(m->key[j], key, len) == 0))
        j = (j + 1) & (m->cap - 1);
    return &m->val[j];
}

int promql__map_put(struct promql__ctx *c, struct promql__map *m, const char *key, size_t len,
                    int val, int *out, bool *added)
{
    uint64_t h = hs_hash64(key, len, 0x9e3779b97f4a7c15ULL);
    size_t j;
    if (added != NULL)
        *added = false;
    if ((m->n + 1) * 2 > m->cap && map_grow(c, m) != HS_OK)
        return HS_ENOMEM;
    j = h & (m->cap - 1);
    while (m->key[j] != NULL) {
        if (m->hash[j] == h && m->klen[j] == len && memcmp(m->key[j], key, len) == 0) {
            *out = m->val[j];
            return HS_OK;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->key[j] = hs_arena_strndup(c->arena, key, len);
    if (m->key[j] == NULL)
        return promql__oom(c);
    m->hash[j] = h;
    m->klen[j] = len;
    m->val[j] = val;
    m->n++;
    *out = val;
    if (added != NULL)
        *added = true;
    return HS_OK;
}

static bool in_list(const char *name, const char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0)
            return true;
    }
    return false;
}

int promql__signature(const struct hs_labels *ls, bool on, const char **names, size_t nnames,
                      struct hs_buf *b)
{
    int rc = HS_OK;
    for (size_t i = 0; i < ls->n && rc == HS_OK; i++) {
        const char *nm = ls->v[i].name;
        bool listed = in_list(nm, names, nnames);
        if (on ? !listed : (listed || strcmp(nm, "__name__") == 0))
            continue;
        rc = hs_buf_append(b, nm, strlen(nm) + 1);
        if (rc == HS_OK)
            rc = hs_buf_append(b, ls->v[i].value, strlen(ls->v[i].value) + 1);
    }
    return rc;
}

int promql__labels_key(const struct hs_labels *ls, struct hs_buf *b)
{
    int rc = HS_OK;
    for (size_t i = 0; i < ls->n && rc == HS_OK; i++) {
        rc = hs_buf_append(b, ls->v[i].name, strlen(ls->v[i].name) + 1);
        if (rc == HS_OK)
            rc = hs_buf_append(b, ls->v[i].value, strlen(ls->v[i].value) + 1);
    }
    return rc;
}

/* ---- element operations ---------------------------------------------------------- */

static bool is_cmp(int op)
{
    return op >= PROMQL_OP_EQL && op <= PROMQL_OP_LTE;
}

static bool changes_schema(int op)
{
    return op >= PROMQL_OP_ADD && op <= PROMQL_OP_ATAN2;
}

/* Result of lhs op rhs; *keep false when a comparison filters it out. */
static double elem(int op, double l, double r, bool *keep)
{
    *keep = true;
    switch (op) {
    case PROMQL_OP_ADD:
        return l + r;
    case PROMQL_OP_SUB:
        return l - r;
    case PROMQL_OP_MUL:
        return l * r;
    case PROMQL_OP_DIV:
        return l / r;
    case PROMQL_OP_POW:
        return pow(l, r);
    case PROMQL_OP_MOD:
        return fmod(l, r);
    case PROMQL_OP_ATAN2:
        return atan2(l, r);
    case PROMQL_OP_EQL:
        *keep = l == r;
        return l;
    case PROMQL_OP_NEQ:
        *keep = l != r;
        return l;
    case PROMQL_OP_GTR:
        *keep = l > r;
        return l;
    case PROMQL_OP_LSS:
        *keep = l < r;
        return l;
    case PROMQL_OP_GTE:
        *keep = l >= r;
        return l;
    case PROMQL_OP_LTE:
        *keep = l <= r;
        return l;
    default:
        *keep = false;
        return 0;
    }
}

/* ---- vector / scalar ------------------------------------------------------------------ */

static int vec_scalar(struct promql__ctx *c, const struct promql_node *n, size_t nsteps,
                      struct promql__val *vec, const double *sc, bool swap, struct promql__val *out)
{
    int op = n->u.bin.op;
    bool rb = n->u.bin.return_bool;
    *out = *vec;
    for (size_t k = 0; k < vec->ns; k++) {
        struct promql__series *s = &vec->s[k];
        for (size_t i = 0; i < nsteps; i++) {
            bool keep;
            double l = s->v[i], r = sc[i], v;
            if (!s->ok[i])
                continue;
            v = swap ? elem(op, r, l, &keep) : elem(op, l, r, &keep);
            if (is_cmp(op) && swap)
                v = l;
            if (rb) {
                v = keep ? 1.0 : 0.0;
                keep = true;
            }
            s->ok[i] = keep;
            s->v[i] = v;
        }
        if (changes_schema(op) || rb)
            s->drop_name = true;
    }
    return HS_OK;
}

/* ---- vector / vector ---------------------------------------------------------------- */

struct sigs {
    int *ord; /* signature ordinal per series */
    int nsig;
};

static int compute_sigs(struct promql__ctx *c, const struct promql_node *n,
                        const struct promql__val *l, const struct promql__val *r, struct sigs *ls,
                        struct sigs *rs, struct promql__map *map)
{
    struct hs_buf b;
    int rc = HS_OK;
    hs_buf_init(&b, 0);
    memset(map, 0, sizeof *map);
    ls->ord = promql__alloc(c, (l->ns ? l->ns : 1) * sizeof(int));
    rs->ord = promql__alloc(c, (r->ns ? r->ns : 1) * sizeof(int));
    if (ls->ord == NULL || rs->ord == NULL)
        return promql__oom(c);
    int next = 0;
    for (int side = 0; side < 2 && rc == HS_OK; side++) {
        const struct promql__val *v = side ? r : l;
        int *ord = side ? rs->ord : ls->ord;
        for (size_t k = 0; k < v->ns && rc == HS_OK; k++) {
            bool added;
            hs_buf_reset(&b);
            rc = promql__signature(&v->s[k].labels, n->u.bin.on, n->u.bin.match_labels,
                                   n->u.bin.nmatch_labels, &b);
            if (rc == HS_OK)
                rc = promql__map_put(c, map, b.p ? b.p : "", b.len, next, &ord[k], &added);
            if (rc == HS_OK && added)
                next++;
        }
    }
    hs_buf_cleanup(&b);
    ls->nsig = rs->nsig = next;
    return rc == HS_OK ? HS_OK : promql__oom(c);
}

static int set_op(struct promql__ctx *c, const struct promql_node *n, size_t nsteps,
                  struct promql__val *l, struct promql__val *r, struct promql__val *out)
{
    struct sigs ls, rs;
    struct promql__map map;
    int op = n->u.bin.op;
    int rc = compute_sigs(c, n, l, r, &ls, &rs, &map);
    size_t *stamp;
    if (rc != HS_OK)
        return rc;
    stamp = hs_arena_calloc(c->arena, (size_t)(ls.nsig ? ls.nsig : 1) * sizeof *stamp);
    if (stamp == NULL)
        return promql__oom(c);
    out->type = PROMQL_TYPE_VECTOR;
    for (size_t i = 0; i < nsteps; i++) {
        /* Mark the signatures present on the "other" side at this step. */
        struct promql__val *mark = op == PROMQL_OP_OR ? l : r;
        struct sigs *ms = op == PROMQL_OP_OR ? &ls : &rs;
        for (size_t k = 0; k < mark->ns; k++) {
            if (mark->s[k].ok[i])
                stamp[ms->ord[k]] = i + 1;
        }
        if (op == PROMQL_OP_OR) {
            for (size_t k = 0; k < r->ns; k++) {
                if (r->s[k].ok[i] && stamp[rs.ord[k]] == i + 1)
                    r->s[k].ok[i] = 0;
            }
        } else {
            for (size_t k = 0; k < l->ns; k++) {
                bool present = stamp[ls.ord[k]] == i + 1;
                if (l->s[k].ok[i] && (op == PROMQL_OP_AND ? !present : present))
                    l->s[k].ok[i] = 0;
            }
        }
    }
    if (op != PROMQL_OP_OR) {
        *out = *l;
        return HS_OK;
    }
    out->s = promql__alloc(c, (l->ns + r->ns + 1) * sizeof *out->s);
    if (out->s == NULL)
        return promql__oom(c);
    out->ns = 0;
    for (size_t k = 0; k < l->ns; k++)
        out->s[out->ns++] = l->s[k];
    for (size_t k = 0; k < r->ns; k++)
        out->s[out->ns++] = r->s[k];
    return HS_OK;
}

/* The label set Prometheus' MatchLabels gives: on -> only those; else without them and __name__. */
static int match_labels(struct promql__ctx *c, const struct hs_labels *ls,
                        const struct promql_node *n, struct hs_labels *out)
{
    out->v = promql__alloc(c, (ls->n ? ls->n : 1) * sizeof *out->v);
    out->n = 0;
    if (out->v == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < ls->n; i++) {
        bool listed = in_list(ls->v[i].name, n->u.bin.match_labels, n->u.bin.nmatch_labels);
        if (n->u.bin.on ? listed : (!listed && strcmp(ls->v[i].name, "__name__") != 0))
            out->v[out->n++] = ls->v[i];
    }
    return HS_OK;
}

static int dup_error(struct promql__ctx *c, const struct promql_node *n, const struct hs_labels *a,
                     const struct hs_labels *b)
{
    struct hs_buf s1, s2, s3;
    struct hs_labels ml;
    int rc = match_labels(c, a, n, &ml);
    if (rc != HS_OK)
        return rc;
    hs_buf_init(&s1, 0);
    hs_buf_init(&s2, 0);
    hs_buf_init(&s3, 0);
    promql__format_labels(a, &s1);
    promql__format_labels(b, &s2);
    promql__format_labels(&ml, &s3);
    const char *d1 = s1.p ? s1.p : "", *d2 = s2.p ? s2.p : "";
    if (strcmp(d1, d2) > 0) {
        const char *t = d1;
        d1 = d2;
        d2 = t;
    }
    rc = hs_err_set(c->err, HS_EINVAL,
                    "found duplicate series for the match group %s on the %s hand-side of the "
                    "operation: [%s, %s];many-to-many matching not allowed: matching labels must "
                    "be unique on one side",
                    s3.p ? s3.p : "{}", n->u.bin.card == PROMQL_CARD_ONE_TO_MANY ? "left" : "right",
                    d1, d2);
    hs_buf_cleanup(&s1);
    hs_buf_cleanup(&s2);
    hs_buf_cleanup(&s3);
    return rc;
}

/* Labels of the result of pairing ls (many side) with rs (one side). */
static int result_labels(struct promql__ctx *c, const struct promql_node *n,
                         const struct hs_labels *ls, const struct hs_labels *rs,
                         struct hs_labels *out)
{
    struct hs_label *v = promql__alloc(c, (ls->n + n->u.bin.ninclude + 1) * sizeof *v);
    size_t m = 0;
    bool drop = changes_schema(n->u.bin.op);
    if (v == NULL)
        return promql__oom(c);
    for (size_t i = 0; i < ls->n; i++) {
        const char *nm = ls->v[i].name;
        if (drop && (strcmp(nm, "__name__") == 0 || strcmp(nm, "__type__") == 0 ||
                     strcmp(nm, "__unit__") == 0))
            continue;
        if (n->u.bin.card == PROMQL_CARD_ONE_TO_ONE) {
            bool listed = in_list(nm, n->u.bin.match_labels, n->u.bin.nmatch_labels);
            if (n->u.bin.on ? !listed : listed)
                continue;
        }
        if (in_list(nm, n->u.bin.include, n->u.bin.ninclude))
            continue;
        v[m++] = ls->v[i];
    }
    out->v = v;
    out->n = m;
    for (size_t j = 0; j < n->u.bin.ninclude; j++) {
        const char *val = hs_labels_get(rs, n->u.bin.include[j]);
        if (val != NULL && val[0] != '\0') {
            out->v[out->n++] = (struct hs_label){n->u.bin.include[j], val};
        }
    }
    hs_labels_sort(out);
    return HS_OK;
}

struct vv {
    struct promql__ctx *c;
    const struct promql_node *n;
    size_t nsteps;
    struct promql__val *out;
    size_t cap;
    struct promql__map outmap;  /* result label key -> output index */
    struct promql__map pairmap; /* "l,r" -> output index */
    struct hs_buf key;
    size_t *last_r; /* per lhs series: the partner of its last pairing (SIZE_MAX: none) */
    int *last_idx;  /* per lhs series: the output index of that pairing */
};

static int out_index(struct vv *x, size_t li, size_t ri, const struct hs_labels *ll,
                     const struct hs_labels *rl, int *idx)
{
    struct promql__ctx *c = x->c;
    char pk[48];
    int n = snprintf(pk, sizeof pk, "%zu,%zu", li, ri);
    bool added;
    int *slot = promql__map_ref(c, &x->pairmap, pk, (size_t)n, -1);
    struct hs_labels lab;
    int rc;
    if (slot == NULL)
        return promql__oom(c);
    if (*slot >= 0) {
        *idx = *slot;
        return HS_OK;
    }
    rc = result_labels(c, x->n, ll, rl, &lab);
    if (rc != HS_OK)
        return rc;
    hs_buf_reset(&x->key);
    if (promql__labels_key(&lab, &x->key) != HS_OK)
        return promql__oom(c);
    rc = promql__map_put(c, &x->outmap, x->key.p ? x->key.p : "", x->key.len, (int)x->out->ns, idx,
                         &added);
    if (rc != HS_OK)
        return rc;
    /* Look the slot up again: the insertion above may not move pairmap, but be safe. */
    slot = promql__map_ref(c, &x->pairmap, pk, (size_t)n, -1);
    if (slot == NULL)
        return promql__oom(c);
    *slot = *idx;
    if (added) {
        if (x->out->ns == x->cap) {
            size_t ncap = x->cap ? x->cap * 2 : 16;
            struct promql__series *ns = promql__alloc(c, ncap * sizeof *ns);
            if (ns == NULL)
                return promql__oom(c);
            if (x->out->ns)
                memcpy(ns, x->out->s, x->out->ns * sizeof *ns);
            x->out->s = ns;
            x->cap = ncap;
        }
        struct promql__series *s = promql__series_new(c, x->nsteps);
        if (s == NULL)
            return promql__oom(c);
        s->labels = lab;
        s->drop_name = x->n->u.bin.return_bool;
        x->out->s[x->out->ns++] = *s;
    }
    return HS_OK;
}

/*
 * Applies the operator to one pairing at step i.  li/ri identify the pair
 * (SIZE_MAX for a filled operand); ll/rl are the label sets of the "many"
 * and "one" sides; fl/fr the values in written order.
 */
static int do_pair(struct vv *x, size_t i, size_t li, size_t ri, const struct hs_labels *ll,
                   const struct hs_labels *rl, double fl, double fr)
{
    struct promql__ctx *c = x->c;
    const struct promql_node *n = x->n;
    bool keep, rb = n->u.bin.return_bool;
    int idx, rc;
    double v = elem(n->u.bin.op, fl, fr, &keep);
    if (rb)
        v = keep ? 1.0 : 0.0;
    /* A series usually pairs with the same partner at every step: remember it. */
    if (li != SIZE_MAX && x->last_r != NULL && x->last_r[li] == ri) {
        idx = x->last_idx[li];
    } else {
        rc = out_index(x, li, ri, ll, rl, &idx);
        if (rc != HS_OK)
            return rc;
        if (li != SIZE_MAX && x->last_r != NULL) {
            x->last_r[li] = ri;
            x->last_idx[li] = idx;
        }
    }
    struct promql__series *os = &x->out->s[idx];
    if (os->ok[i])
        return hs_err_set(c->err, HS_EINVAL,
                          n->u.bin.card == PROMQL_CARD_ONE_TO_ONE
                              ? "vector cannot contain metrics with the same labelset"
                              : "multiple matches for labels: grouping labels must ensure unique "
                                "matches");
    if (!keep && !rb)
        return HS_OK;
    os->ok[i] = 1;
    os->v[i] = v;
    return HS_OK;
}

static int vec_vec(struct promql__ctx *c, const struct promql_node *n, size_t nsteps,
                   struct promql__val *l, struct promql__val *r, struct promql__val *out)
{
    struct sigs ls, rs;
    struct promql__map map;
    bool swap = n->u.bin.card == PROMQL_CARD_ONE_TO_MANY;
    int rc = compute_sigs(c, n, l, r, &ls, &rs, &map);
    struct vv x;
    if (rc != HS_OK)
        return rc;
    /* Fill values for a missing "one" side (r) and "many" side (l).  As in
     * Prometheus they are not swapped with group_right: there fill_right
     * fills a missing left operand. */
    bool fill_r = n->u.bin.fill_right_set;
    double fill_rv = n->u.bin.fill_right;
    bool fill_l = n->u.bin.fill_left_set;
    double fill_lv = n->u.bin.fill_left;
    if (swap) {
        struct promql__val *t = l;
        struct sigs ts = ls;
        l = r;
        r = t;
        ls = rs;
        rs = ts;
    }
    size_t nsig = (size_t)(ls.nsig ? ls.nsig : 1);
    size_t *rstamp = hs_arena_calloc(c->arena, nsig * sizeof *rstamp);
    int *rwho = promql__alloc(c, nsig * sizeof *rwho);
    size_t *mstamp = hs_arena_calloc(c->arena, nsig * sizeof *mstamp);
    if (rstamp == NULL || rwho == NULL || mstamp == NULL)
        return promql__oom(c);
    memset(&x, 0, sizeof x);
    x.c = c;
    x.n = n;
    x.nsteps = nsteps;
    x.out = out;
    x.last_r = promql__alloc(c, (l->ns ? l->ns : 1) * sizeof *x.last_r);
    x.last_idx = promql__alloc(c, (l->ns ? l->ns : 1) * sizeof *x.last_idx);
    if (x.last_r == NULL || x.last_idx == NULL)
        return promql__oom(c);
    for (size_t k = 0; k < l->ns; k++)
        x.last_r[k] = SIZE_MAX - 1;
    out->type = PROMQL_TYPE_VECTOR;
    hs_buf_init(&x.key, 0);
    for (size_t i = 0; i < nsteps && rc == HS_OK; i++) {
        for (size_t k = 0; k < r->ns; k++) {
            if (!r->s[k].ok[i])
                continue;
            int o = rs.ord[k];
            if (rstamp[o] == i + 1) {
                rc = dup_error(c, n, &r->s[k].labels, &r->s[rwho[o]].labels);
                goto out;
            }
            rstamp[o] = i + 1;
            rwho[o] = (int)k;
        }
        for (size_t k = 0; k < l->ns; k++) {
            if (!l->s[k].ok[i])
                continue;
            int o = ls.ord[k];
            double lv = l->s[k].v[i];
            if (rstamp[o] != i + 1) {
                if (!fill_r)
                    continue;
                struct hs_labels ml;
                rc = match_labels(c, &l->s[k].labels, n, &ml);
                if (rc == HS_OK)
                    rc = do_pair(&x, i, k, SIZE_MAX, &l->s[k].labels, &ml, swap ? fill_rv : lv,
                                 swap ? lv : fill_rv);
                if (rc != HS_OK)
                    goto out;
                continue;
            }
            size_t rk = (size_t)rwho[o];
            double rv = r->s[rk].v[i];
            if (n->u.bin.card == PROMQL_CARD_ONE_TO_ONE && mstamp[o] == i + 1) {
                rc = hs_err_set(c->err, HS_EINVAL,
                                "multiple matches for labels: many-to-one matching must be "
                                "explicit (group_left/group_right)");
                goto out;
            }
            mstamp[o] = i + 1;
            rc = do_pair(&x, i, k, rk, &l->s[k].labels, &r->s[rk].labels, swap ? rv : lv,
                         swap ? lv : rv);
            if (rc != HS_OK)
                goto out;
        }
        for (size_t k = 0; fill_l && k < r->ns; k++) {
            int o = rs.ord[k];
            struct hs_labels ml;
            if (!r->s[k].ok[i] || mstamp[o] == i + 1)
                continue;
            double rv = r->s[k].v[i];
            rc = match_labels(c, &r->s[k].labels, n, &ml);
            if (rc == HS_OK)
                rc = do_pair(&x, i, SIZE_MAX, k, &ml, &r->s[k].labels, swap ? rv : fill_lv,
                             swap ? fill_lv : rv);
            if (rc != HS_OK)
                goto out;
        }
        rc = (i & 255) == 0 ? promql__check(c) : HS_OK;
    }
out:
    hs_buf_cleanup(&x.key);
    return rc;
}

int promql__eval_binary(struct promql__ctx *c, const struct promql_node *n,
                        const struct promql__grid *g, struct promql__val *out)
{
    struct promql__val l, r;
    int op = n->u.bin.op;
    int rc = promql__eval(c, n->u.bin.lhs, g, &l);
    if (rc == HS_OK)
        rc = promql__eval(c, n->u.bin.rhs, g, &r);
    if (rc != HS_OK)
        return rc;
    memset(out, 0, sizeof *out);
    if (l.type == PROMQL_TYPE_SCALAR && r.type == PROMQL_TYPE_SCALAR) {
        out->type = PROMQL_TYPE_SCALAR;
        out->scalar = l.scalar;
        for (size_t i = 0; i < g->n; i++) {
            bool keep;
            double v = elem(op, l.scalar[i], r.scalar[i], &keep);
            if (is_cmp(op))
                v = keep ? 1.0 : 0.0;
            out->scalar[i] = v;
        }
        return HS_OK;
    }
    if (l.type == PROMQL_TYPE_VECTOR && r.type == PROMQL_TYPE_SCALAR)
        return vec_scalar(c, n, g->n, &l, r.scalar, false, out);
    if (l.type == PROMQL_TYPE_SCALAR && r.type == PROMQL_TYPE_VECTOR)
        return vec_scalar(c, n, g->n, &r, l.scalar, true, out);
    if (l.type != PROMQL_TYPE_VECTOR || r.type != PROMQL_TYPE_VECTOR)
        return hs_err_set(c->err, HS_EINVAL, "binary operator %s on unsupported operand types",
                          promql__binop_name(op));
    if (op == PROMQL_OP_AND || op == PROMQL_OP_OR || op == PROMQL_OP_UNLESS)
        return set_op(c, n, g->n, &l, &r, out);
    return vec_vec(c, n, g->n, &l, &r, out);
}
