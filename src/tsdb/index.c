/*
 * index.c - the head's symbol table and inverted index.
 *
 * Symbols: every label name and value of the head is interned once, with a
 * reference count (one per label slot and one per index entry); series label
 * sets point at the interned strings, so equal strings are stored once and
 * compare by pointer.
 *
 * Inverted index: label name -> label value -> postings (series refs,
 * sorted ascending).  Both levels are open-addressing tables keyed by symbol
 * pointer, with linear probing and backward-shift deletion (no tombstones).
 *
 * Threading: all of it runs under head.lock (write to change, read to
 * look up); nothing here locks by itself.
 */
#include "tsdb/internal.h"

#include <string.h>

#define TOMB ((struct tsdb__sym *)(uintptr_t)1)

/* ---- symbols -------------------------------------------------------------- */

static size_t sym_slot(const struct tsdb__symtab *t, const char *s, size_t len, uint64_t h)
{
    size_t mask = t->cap - 1, i = h & mask, tomb = SIZE_MAX;
    for (;;) {
        struct tsdb__sym *e = t->slots[i];
        if (e == NULL)
            return tomb != SIZE_MAX ? tomb : i;
        if (e == TOMB) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) {
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int sym_grow(struct tsdb__symtab *t)
{
    size_t cap = t->cap ? t->cap : 256;
    if (t->n * 2 >= cap)
        cap *= 2;
    struct tsdb__sym **slots = hs_calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        struct tsdb__sym *e = t->slots[i];
        if (e == NULL || e == TOMB)
            continue;
        size_t j = e->hash & (cap - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = e;
    }
    hs_free(t->slots);
    t->slots = slots;
    t->cap = cap;
    t->used = t->n;
    return HS_OK;
}

struct tsdb__sym *tsdb__sym_find(const struct tsdb__symtab *t, const char *s, size_t len)
{
    if (t->cap == 0)
        return NULL;
    uint64_t h = hs_hash64(s, len, 0);
    struct tsdb__sym *e = t->slots[sym_slot(t, s, len, h)];
    return e == TOMB ? NULL : e;
}

struct tsdb__sym *tsdb__sym_intern(struct tsdb__symtab *t, const char *s, size_t len)
{
    if ((t->used + 1) * 4 >= t->cap * 3 && sym_grow(t) != HS_OK)
        return NULL;
    uint64_t h = hs_hash64(s, len, 0);
    size_t i = sym_slot(t, s, len, h);
    struct tsdb__sym *e = t->slots[i];
    if (e != NULL && e != TOMB) {
        e->refs++;
        return e;
    }
    struct tsdb__sym *ns = hs_malloc(sizeof(*ns) + len + 1);
    if (ns == NULL)
        return NULL;
    ns->refs = 1;
    ns->len = (uint32_t)len;
    ns->hash = h;
    memcpy(ns->s, s, len);
    ns->s[len] = '\0';
    if (e == NULL)
        t->used++;
    t->slots[i] = ns;
    t->n++;
    return ns;
}

void tsdb__sym_release(struct tsdb__symtab *t, struct tsdb__sym *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    size_t i = sym_slot(t, s->s, s->len, s->hash);
    if (t->slots[i] == s) {
        t->slots[i] = TOMB;
        t->n--;
    }
    hs_free(s);
}

void tsdb__symtab_cleanup(struct tsdb__symtab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i] != NULL && t->slots[i] != TOMB)
            hs_free(t->slots[i]);
    hs_free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* ---- postings --------------------------------------------------------------- */

static size_t post_lower(const struct tsdb__postings *p, uint32_t ref)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->refs[mid] < ref)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int post_add(struct tsdb__postings *p, uint32_t ref)
{
    size_t at = (p->n == 0 || p->refs[p->n - 1] < ref) ? p->n : post_lower(p, ref);
    if (at < p->n && p->refs[at] == ref)
        return HS_OK;
    if (p->n == p->cap) {
        uint32_t cap = p->cap < 4 ? 4 : p->cap + p->cap / 2;
        uint32_t *r = hs_reallocarray(p->refs, cap, sizeof(*r));
        if (r == NULL)
            return HS_ENOMEM;
        p->refs = r;
        p->cap = cap;
    }
    memmove(p->refs + at + 1, p->refs + at, (p->n - at) * sizeof(*p->refs));
    p->refs[at] = ref;
    p->n++;
    return HS_OK;
}

static void post_remove(struct tsdb__postings *p, uint32_t ref)
{
    size_t at = post_lower(p, ref);
    if (at >= p->n || p->refs[at] != ref)
        return;
    memmove(p->refs + at, p->refs + at + 1, (p->n - at - 1) * sizeof(*p->refs));
    p->n--;
}

/* ---- name and value tables ------------------------------------------------------- */

struct tsdb__lname *tsdb__index_name(const struct tsdb__index *ix, const struct tsdb__sym *name)
{
    if (ix->cap == 0 || name == NULL)
        return NULL;
    size_t mask = ix->cap - 1;
    for (size_t i = name->hash & mask;; i = (i + 1) & mask) {
        struct tsdb__lname *ln = ix->names[i];
        if (ln == NULL)
            return NULL;
        if (ln->name == name)
            return ln;
    }
}

static struct tsdb__lvalue *value_slot(const struct tsdb__lname *ln, const struct tsdb__sym *v)
{
    size_t mask = ln->cap - 1;
    for (size_t i = v->hash & mask;; i = (i + 1) & mask) {
        struct tsdb__lvalue *lv = &ln->vals[i];
        if (lv->value == NULL || lv->value == v)
            return lv;
    }
}

const struct tsdb__postings *tsdb__lname_postings(const struct tsdb__lname *ln,
                                                  const struct tsdb__sym *value)
{
    if (ln == NULL || value == NULL || ln->cap == 0)
        return NULL;
    struct tsdb__lvalue *lv = value_slot(ln, value);
    return lv->value == value ? &lv->p : NULL;
}

static int names_grow(struct tsdb__index *ix)
{
    size_t cap = ix->cap ? ix->cap * 2 : 64;
    struct tsdb__lname **t = hs_calloc(cap, sizeof(*t));
    if (t == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < ix->cap; i++) {
        struct tsdb__lname *ln = ix->names[i];
        if (ln == NULL)
            continue;
        size_t j = ln->name->hash & (cap - 1);
        while (t[j] != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = ln;
    }
    hs_free(ix->names);
    ix->names = t;
    ix->cap = cap;
    return HS_OK;
}

static int values_grow(struct tsdb__lname *ln)
{
    size_t cap = ln->cap ? ln->cap * 2 : 4;
    struct tsdb__lvalue *t = hs_calloc(cap, sizeof(*t));
    if (t == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < ln->cap; i++) {
        struct tsdb__lvalue *lv = &ln->vals[i];
        if (lv->value == NULL)
            continue;
        size_t j = lv->value->hash & (cap - 1);
        while (t[j].value != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = *lv;
    }
    hs_free(ln->vals);
    ln->vals = t;
    ln->cap = cap;
    return HS_OK;
}

/* Finds or creates the name entry; the entry itself holds no symbol
 * reference: the series it indexes keep its symbols alive, and the entry
 * goes away with the last of them. */
static struct tsdb__lname *name_get(struct tsdb__index *ix, struct tsdb__sym *name)
{
    struct tsdb__lname *ln = tsdb__index_name(ix, name);
    if (ln != NULL)
        return ln;
    if ((ix->n + 1) * 2 > ix->cap && names_grow(ix) != HS_OK)
        return NULL;
    ln = hs_calloc(1, sizeof(*ln));
    if (ln == NULL)
        return NULL;
    ln->name = name;
    size_t j = name->hash & (ix->cap - 1);
    while (ix->names[j] != NULL)
        j = (j + 1) & (ix->cap - 1);
    ix->names[j] = ln;
    ix->n++;
    return ln;
}

static void name_delete(struct tsdb__index *ix, struct tsdb__lname *ln)
{
    size_t mask = ix->cap - 1, i = ln->name->hash & mask;
    while (ix->names[i] != ln)
        i = (i + 1) & mask;
    /* Backward-shift deletion keeps every probe chain unbroken. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        struct tsdb__lname *e = ix->names[j];
        if (e == NULL)
            break;
        size_t home = e->name->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            ix->names[i] = e;
            i = j;
        }
    }
    ix->names[i] = NULL;
    ix->n--;
    hs_free(ln->vals);
    hs_free(ln);
}

static void value_delete(struct tsdb__lname *ln, struct tsdb__lvalue *lv)
{
    size_t mask = ln->cap - 1, i = (size_t)(lv - ln->vals);
    hs_free(lv->p.refs);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        struct tsdb__lvalue *e = &ln->vals[j];
        if (e->value == NULL)
            break;
        size_t home = e->value->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            ln->vals[i] = *e;
            i = j;
        }
    }
    memset(&ln->vals[i], 0, sizeof(ln->vals[i]));
    ln->n--;
}

int tsdb__index_add(struct tsdb__index *ix, const struct tsdb__series *s)
{
    for (size_t k = 0; k < s->ls.n; k++) {
        struct tsdb__sym *name = tsdb__sym_of(s->ls.v[k].name);
        struct tsdb__sym *val = tsdb__sym_of(s->ls.v[k].value);
        struct tsdb__lname *ln = name_get(ix, name);
        if (ln == NULL)
            goto fail;
        if ((ln->n + 1) * 4 > ln->cap * 3 && values_grow(ln) != HS_OK)
            goto fail;
        struct tsdb__lvalue *lv = value_slot(ln, val);
        bool fresh = lv->value == NULL;
        if (post_add(&lv->p, s->ref) != HS_OK) {
            if (fresh && ln->n == 0)
                name_delete(ix, ln);
            goto fail;
        }
        if (fresh) {
            lv->value = val;
            ln->n++;
            ln->value_bytes += val->len;
        }
        ln->nseries++;
        continue;
    fail:
        /* Undo the labels already indexed so the index stays consistent. */
        {
            struct tsdb__series tmp = *s;
            tmp.ls.n = k;
            tsdb__index_remove(ix, &tmp);
        }
        return HS_ENOMEM;
    }
    return HS_OK;
}

void tsdb__index_remove(struct tsdb__index *ix, const struct tsdb__series *s)
{
    for (size_t k = 0; k < s->ls.n; k++) {
        const struct tsdb__sym *name = tsdb__sym_of(s->ls.v[k].name);
        const struct tsdb__sym *val = tsdb__sym_of(s->ls.v[k].value);
        struct tsdb__lname *ln = tsdb__index_name(ix, name);
        if (ln == NULL || ln->cap == 0)
            continue;
        struct tsdb__lvalue *lv = value_slot(ln, val);
        if (lv->value != val)
            continue;
        size_t before = lv->p.n;
        post_remove(&lv->p, s->ref);
        if (lv->p.n == before)
            continue;
        ln->nseries--;
        if (lv->p.n == 0) {
            ln->value_bytes -= val->len;
            value_delete(ln, lv);
        }
        if (ln->n == 0)
            name_delete(ix, ln);
    }
}

void tsdb__index_cleanup(struct tsdb__index *ix)
{
    for (size_t i = 0; i < ix->cap; i++) {
        struct tsdb__lname *ln = ix->names[i];
        if (ln == NULL)
            continue;
        for (size_t j = 0; j < ln->cap; j++)
            hs_free(ln->vals[j].p.refs);
        hs_free(ln->vals);
        hs_free(ln);
    }
    hs_free(ix->names);
    memset(ix, 0, sizeof(*ix));
}
