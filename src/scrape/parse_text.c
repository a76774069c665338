/*
 * parse_text.c - the cross-line rules of the Prometheus text format 0.0.4,
 * as the reference parser (prometheus/common expfmt) applies them, and the
 * name table they use.
 *
 * Families need not be contiguous in this format, so every family is kept
 * by name for the whole input:
 *   - at most one HELP and one TYPE line per family;
 *   - a TYPE line must come before the family's first sample;
 *   - a sample "x_sum"/"x_count" belongs to family x when x was declared a
 *     summary or histogram, "x_bucket" when x is a histogram, unless a
 *     family named exactly like the sample already exists;
 *   - a summary's "quantile" and a histogram bucket's "le" are numbers.
 * A one-entry cache makes runs of samples with the same name (the common
 * case: one metric, many label sets) cost one memcmp each.
 */
#include "scrape/internal.h"

#include <string.h>

/* ---- name table ------------------------------------------------------------- */

void scrape__names_cleanup(struct scrape__names *t)
{
    hs_free(t->recs);
    hs_free(t->slots);
    memset(t, 0, sizeof(*t));
}

static uint64_t name_hash(const char *name, size_t len)
{
    return hs_hash64(name, len, 0x5ca1ab1e);
}

long scrape__names_find(const struct scrape__names *t, const char *name, size_t len)
{
    if (t->nslots == 0)
        return -1;
    uint64_t h = name_hash(name, len);
    size_t mask = t->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t s = t->slots[i];
        if (s == 0)
            return -1;
        const struct scrape__rec *r = &t->recs[s - 1];
        if (r->hash == h && r->len == len && memcmp(r->name, name, len) == 0)
            return (long)(s - 1);
    }
}

static int names_grow(struct scrape__names *t)
{
    size_t nslots = t->nslots ? t->nslots * 2 : 64;
    uint32_t *slots = hs_calloc(nslots, sizeof(*slots));
    if (slots == NULL)
        return HS_ENOMEM;
    for (size_t k = 0; k < t->n; k++) {
        size_t i = (size_t)t->recs[k].hash & (nslots - 1);
        while (slots[i] != 0)
            i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)(k + 1);
    }
    hs_free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return HS_OK;
}

long scrape__names_add(struct scrape__names *t, const char *name, size_t len, bool *is_new)
{
    long found = scrape__names_find(t, name, len);
    *is_new = found < 0;
    if (found >= 0)
        return found;
    if (t->n >= UINT32_MAX - 1)
        return HS_ETOOBIG;
    if ((t->n + 1) * 2 > t->nslots && names_grow(t) < 0)
        return HS_ENOMEM;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        struct scrape__rec *recs = hs_reallocarray(t->recs, cap, sizeof(*recs));
        if (recs == NULL)
            return HS_ENOMEM;
        t->recs = recs;
        t->cap = cap;
    }
    struct scrape__rec *r = &t->recs[t->n];
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->len = len;
    r->hash = name_hash(name, len);
    size_t mask = t->nslots - 1;
    size_t i = (size_t)r->hash & mask;
    while (t->slots[i] != 0)
        i = (i + 1) & mask;
    t->slots[i] = (uint32_t)(t->n + 1);
    return (long)t->n++;
}

/* ---- state ---------------------------------------------------------------------- */

static struct scrape__check *check_get(struct scrape_parser *p, struct hs_err *err)
{
    if (p->chk == NULL) {
        p->chk = hs_calloc(1, sizeof(*p->chk));
        if (p->chk == NULL) {
            scrape__fail(p, err, HS_ENOMEM, NULL, "out of memory");
            return NULL;
        }
        p->chk->last_fam = -1;
    }
    return p->chk;
}

void scrape__check_free(struct scrape_parser *p)
{
    struct scrape__check *c = p->chk;
    if (c == NULL)
        return;
    scrape__names_cleanup(&c->fams);
    hs_free(c->om.seen_groups.v);
    hs_free(c->om.run_series.v);
    hs_free(c->om.seen_names.v);
    hs_free(c);
    p->chk = NULL;
}

struct scrape__check *scrape__check_get(struct scrape_parser *p, struct hs_err *err)
{
    return check_get(p, err);
}

/* ---- text-format rules -------------------------------------------------------------- */

int scrape__text_meta(struct scrape_parser *p, struct scrape_entry *e, struct hs_err *err)
{
    struct scrape__check *c = check_get(p, err);
    if (c == NULL)
        return HS_ENOMEM;
    bool is_new;
    long i = scrape__names_add(&c->fams, e->name.p, e->name.len, &is_new);
    if (i < 0)
        return scrape__fail(p, err, (int)i, NULL, "out of memory for metric families");
    struct scrape__rec *r = &c->fams.recs[i];
    int n = (int)HS_MIN(e->name.len, 100);
    if (e->kind == SCRAPE_ENTRY_HELP) {
        if (r->has_help)
            return scrape__fail(p, err, HS_EPARSE, e->name.p,
                                "second HELP line for metric name \"%.*s\"", n, e->name.p);
        r->has_help = true;
        return HS_OK;
    }
    if (r->has_type)
        return scrape__fail(p, err, HS_EPARSE, e->name.p,
                            "second TYPE line for metric name \"%.*s\"", n, e->name.p);
    if (r->has_samples)
        return scrape__fail(p, err, HS_EPARSE, e->name.p,
                            "TYPE line for metric name \"%.*s\" after its samples", n, e->name.p);
    r->has_type = true;
    r->mtype = e->mtype;
    return HS_OK;
}

static bool ends_with(const struct hs_str *s, const char *suffix, size_t n)
{
    return s->len > n && memcmp(s->p + s->len - n, suffix, n) == 0;
}

/* Family and role of a sample name not seen just before. */
static long text_resolve(struct scrape__check *c, const struct hs_str *name, int *role)
{
    long i = scrape__names_find(&c->fams, name->p, name->len);
    *role = SCRAPE_ROLE_VALUE;
    if (i >= 0)
        return i;
    static const struct {
        const char *s;
        size_t n;
        int role;
    } sfx[] = {{"_sum", 4, SCRAPE_ROLE_SUM},
               {"_count", 6, SCRAPE_ROLE_COUNT},
               {"_bucket", 7, SCRAPE_ROLE_BUCKET}};
    for (size_t k = 0; k < HS_ARRAY_LEN(sfx); k++) {
        if (!ends_with(name, sfx[k].s, sfx[k].n))
            continue;
        long b = scrape__names_find(&c->fams, name->p, name->len - sfx[k].n);
        if (b < 0)
            return -1;
        int t = c->fams.recs[b].mtype;
        if (t == SCRAPE_MTYPE_HISTOGRAM ||
            (t == SCRAPE_MTYPE_SUMMARY && sfx[k].role != SCRAPE_ROLE_BUCKET)) {
            *role = sfx[k].role;
            return b;
        }
        return -1;
    }
    return -1;
}

static const struct scrape_label *label_get(const struct scrape_entry *e, const char *name,
                                            size_t n)
{
    for (size_t i = 0; i < e->nlabels; i++)
        if (e->labels[i].name.len == n && memcmp(e->labels[i].name.p, name, n) == 0)
            return &e->labels[i];
    return NULL;
}

int scrape__text_sample(struct scrape_parser *p, struct scrape_entry *e, struct hs_err *err)
{
    struct scrape__check *c = check_get(p, err);
    if (c == NULL)
        return HS_ENOMEM;
    long i;
    int role;
    if (c->last_fam >= 0 && c->last_len == e->name.len &&
        memcmp(c->last_name, e->name.p, e->name.len) == 0) {
        i = c->last_fam;
        role = c->last_role;
    } else {
        i = text_resolve(c, &e->name, &role);
        if (i < 0) {
            bool is_new;
            i = scrape__names_add(&c->fams, e->name.p, e->name.len, &is_new);
            if (i < 0)
                return scrape__fail(p, err, (int)i, NULL, "out of memory for metric families");
        }
        c->last_fam = i;
        c->last_role = role;
        c->last_name = e->name.p;
        c->last_len = e->name.len;
    }
    struct scrape__rec *r = &c->fams.recs[i];
    r->has_samples = true;
    e->family.p = r->name;
    e->family.len = r->len;
    e->mtype = r->mtype;
    e->role = role;
    const struct scrape_label *l = NULL;
    double v;
    if (r->mtype == SCRAPE_MTYPE_SUMMARY && role == SCRAPE_ROLE_VALUE)
        l = label_get(e, "quantile", 8);
    else if (r->mtype == SCRAPE_MTYPE_HISTOGRAM && role == SCRAPE_ROLE_BUCKET)
        l = label_get(e, "le", 2);
    if (l != NULL && scrape__parse_number(l->value.p, l->value.len, &v) < 0) {
        char got[48];
        scrape__got(l->value.p, l->value.p + l->value.len, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, NULL, "expected a number in label %.*s, got %s",
                            (int)l->name.len, l->name.p, got);
    }
    return HS_OK;
}
