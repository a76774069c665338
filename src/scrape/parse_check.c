/*
 * parse_check.c - `holoscope check metrics` as a library function: parse a
 * whole exposition with every rule of its format, then lint the families
 * the way promtool does (naming conventions, missing HELP).  Lint findings
 * are advice: they go to the report and never make the check fail.
 */
#include "scrape/internal.h"

#include <stdlib.h>
#include <string.h>

struct problem {
    const char *name;
    size_t len;
    const char *text; /* static */
};

struct lint {
    struct problem *v;
    size_t n, cap;
};

static int add_problem(struct lint *l, const struct scrape__rec *r, const char *text)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct problem *v = hs_reallocarray(l->v, cap, sizeof(*v));
        if (v == NULL)
            return HS_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct problem){r->name, r->len, text};
    return HS_OK;
}

static int problem_cmp(const void *a, const void *b)
{
    const struct problem *x = a, *y = b;
    size_t n = HS_MIN(x->len, y->len);
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return strcmp(x->text, y->text);
}

static bool has_suffix(const struct scrape__rec *r, const char *s)
{
    size_t n = strlen(s);
    return r->len >= n && memcmp(r->name + r->len - n, s, n) == 0;
}

static bool part_is(const char *p, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(p, w, n) == 0;
}

/* Unit lint of one '_'-separated part of a name; NULL when fine. */
static const char *unit_problem(const char *p, size_t n)
{
    static const char *const abbrev[] = {"s",  "ms", "us", "ns", "sec", "b", "kb",
                                         "mb", "gb", "tb", "pb", "m",   "h", "d"};
    static const char *const prefixes[] = {"pico", "nano",  "micro", "milli", "centi", "deci",
                                           "deca", "hecto", "kilo",  "kibi",  "mega",  "mebi",
                                           "giga", "gibi",  "tera",  "tebi",  "peta",  "pebi"};
    static const struct {
        const char *base;
        const char *msg;
    } bases[] = {
        {"seconds", "use base unit \"seconds\" instead of a prefixed unit"},
        {"bytes", "use base unit \"bytes\" instead of a prefixed unit"},
        {"meters", "use base unit \"meters\" instead of a prefixed unit"},
        {"grams", "use base unit \"grams\" instead of a prefixed unit"},
        {"amperes", "use base unit \"amperes\" instead of a prefixed unit"},
        {"volts", "use base unit \"volts\" instead of a prefixed unit"},
        {"joules", "use base unit \"joules\" instead of a prefixed unit"},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(abbrev); i++)
        if (part_is(p, n, abbrev[i]))
            return "metric names should not contain abbreviated units";
    if (part_is(p, n, "minutes") || part_is(p, n, "hours") || part_is(p, n, "days") ||
        part_is(p, n, "weeks"))
        return "use base unit \"seconds\" instead of a larger time unit";
    for (size_t i = 0; i < HS_ARRAY_LEN(prefixes); i++) {
        size_t pn = strlen(prefixes[i]);
        if (n <= pn || memcmp(p, prefixes[i], pn) != 0)
            continue;
        for (size_t k = 0; k < HS_ARRAY_LEN(bases); k++)
            if (part_is(p + pn, n - pn, bases[k].base))
                return bases[k].msg;
    }
    return NULL;
}

static int lint_family(struct lint *l, const struct scrape__rec *r, int format)
{
    int rc = HS_OK;
    bool hs = r->mtype == SCRAPE_MTYPE_HISTOGRAM || r->mtype == SCRAPE_MTYPE_SUMMARY ||
              r->mtype == SCRAPE_MTYPE_GAUGEHISTOGRAM;
    if (!r->has_help)
        rc |= add_problem(l, r, "no help text");
    if (format == SCRAPE_FORMAT_TEXT && r->mtype == SCRAPE_MTYPE_COUNTER &&
        !has_suffix(r, "_total"))
        rc |= add_problem(l, r, "counter metrics should have \"_total\" suffix");
    if (r->mtype != SCRAPE_MTYPE_COUNTER && has_suffix(r, "_total"))
        rc |= add_problem(l, r, "non-counter metrics should not have \"_total\" suffix");
    if (!hs && has_suffix(r, "_count"))
        rc |= add_problem(l, r,
                          "non-histogram and non-summary metrics should not have "
                          "\"_count\" suffix");
    if (!hs && has_suffix(r, "_sum"))
        rc |= add_problem(l, r,
                          "non-histogram and non-summary metrics should not have "
                          "\"_sum\" suffix");
    if (!hs && has_suffix(r, "_bucket"))
        rc |= add_problem(l, r,
                          "non-histogram and non-summary metrics should not have "
                          "\"_bucket\" suffix");
    if (memchr(r->name, ':', r->len) != NULL)
        rc |= add_problem(l, r, "metric names should not contain ':'");
    for (size_t i = 0; i + 1 < r->len; i++) {
        if (r->name[i] >= 'a' && r->name[i] <= 'z' && r->name[i + 1] >= 'A' &&
            r->name[i + 1] <= 'Z') {
            rc |= add_problem(l, r,
                              "metric names should be written in 'snake_case' not "
                              "'camelCase'");
            break;
        }
    }
    const char *seen = NULL;
    for (size_t i = 0; i < r->len;) {
        size_t j = i;
        while (j < r->len && r->name[j] != '_' && r->name[j] != ':')
            j++;
        const char *msg = unit_problem(r->name + i, j - i);
        if (msg != NULL && msg != seen) {
            rc |= add_problem(l, r, msg);
            seen = msg;
        }
        i = j + 1;
    }
    return rc < 0 ? HS_ENOMEM : HS_OK;
}

static int note_family(struct scrape__names *fams, struct hs_str name, long *idx)
{
    bool is_new;
    long i = scrape__names_add(fams, name.p, name.len, &is_new);
    if (i < 0)
        return (int)i;
    if (is_new)
        fams->recs[i].mtype = SCRAPE_MTYPE_UNKNOWN;
    *idx = i;
    return HS_OK;
}

int scrape_check_metrics(const char *buf, size_t len, int format, struct hs_buf *report,
                         struct hs_err *err)
{
    struct scrape_parser *p = hs_malloc(sizeof(*p));
    if (p == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    struct scrape__names fams = {0};
    struct lint lint = {0};
    struct scrape_entry e;
    int rc;
    long i = -1;
    scrape_parser_init(p, buf, len, format | SCRAPE_PARSE_STRICT);
    while ((rc = scrape_parser_next(p, &e, err)) > 0) {
        if (e.kind == SCRAPE_ENTRY_EOF)
            continue;
        struct hs_str name = e.kind == SCRAPE_ENTRY_SAMPLE ? e.family : e.name;
        if ((i < 0 || fams.recs[i].len != name.len ||
             memcmp(fams.recs[i].name, name.p, name.len) != 0) &&
            (rc = note_family(&fams, name, &i)) < 0) {
            rc = hs_err_set(err, rc, "out of memory");
            goto out;
        }
        if (e.kind == SCRAPE_ENTRY_HELP)
            fams.recs[i].has_help = true;
        else if (e.kind == SCRAPE_ENTRY_TYPE)
            fams.recs[i].mtype = e.mtype;
    }
    if (rc < 0)
        goto out;
    for (size_t k = 0; k < fams.n; k++) {
        if ((rc = lint_family(&lint, &fams.recs[k], format)) < 0) {
            rc = hs_err_set(err, rc, "out of memory");
            goto out;
        }
    }
    if (lint.n > 1)
        qsort(lint.v, lint.n, sizeof(*lint.v), problem_cmp);
    for (size_t k = 0; report != NULL && k < lint.n; k++) {
        rc = hs_buf_printf(report, "%.*s %s\n", (int)lint.v[k].len, lint.v[k].name, lint.v[k].text);
        if (rc < 0) {
            rc = hs_err_set(err, rc, "report buffer full");
            goto out;
        }
    }
    rc = HS_OK;
out:
    hs_free(lint.v);
    scrape__names_cleanup(&fams);
    scrape_parser_cleanup(p);
    hs_free(p);
    return rc;
}
