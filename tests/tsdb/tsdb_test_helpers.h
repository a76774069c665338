/*
 * tsdb_test_helpers.h - small helpers for the tsdb tests: label sets from
 * "name=value,name=value" text, matchers, options for fast tests, and
 * reading a whole selection back.  Include after hs_test.h, once per test.
 */
#ifndef TSDB_TEST_HELPERS_H
#define TSDB_TEST_HELPERS_H

#include "tsdb/tsdb.h"

#include <stdlib.h>
#include <string.h>

/* Parses "a=1,b=2" into ls (sorted); storage in 'buf' (kept by caller). */
struct tlabels {
    char buf[512];
    struct hs_label v[32];
    struct hs_labels ls;
};

static inline struct hs_labels *tl_parse(struct tlabels *t, const char *text)
{
    size_t n = strlen(text);
    if (n >= sizeof(t->buf))
        n = sizeof(t->buf) - 1;
    memcpy(t->buf, text, n);
    t->buf[n] = '\0';
    t->ls.n = 0;
    t->ls.v = t->v;
    char *p = t->buf;
    while (*p && t->ls.n < 32) {
        char *eq = strchr(p, '=');
        if (eq == NULL)
            break;
        *eq = '\0';
        char *comma = strchr(eq + 1, ',');
        if (comma)
            *comma = '\0';
        t->v[t->ls.n].name = p;
        t->v[t->ls.n].value = eq + 1;
        t->ls.n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    hs_labels_sort(&t->ls);
    return &t->ls;
}

static inline void tl_opts(struct tsdb_options *o)
{
    tsdb_options_defaults(o);
    o->wal_fsync = TSDB_FSYNC_NONE;
    o->retention_ms = 0;
    o->maintain_interval_ms = 0;
}

/* Appends one sample in its own batch; returns the add's code. */
static inline int tl_add1(struct tsdb *db, const char *labels, int64_t t, double v)
{
    struct tlabels tl;
    struct tsdb_appender *a = tsdb_appender_new(db);
    int rc = tsdb_appender_add(a, tl_parse(&tl, labels), t, v, NULL, NULL);
    int crc = tsdb_appender_commit(a, NULL);
    return rc != HS_OK ? rc : crc;
}

/* Counts series and samples selected by one matcher over a range. */
static inline size_t tl_count(struct tsdb *db, int type, const char *name, const char *value,
                              int64_t mint, int64_t maxt, size_t *samples)
{
    struct tsdb_matcher m;
    struct hs_err err;
    if (tsdb_matcher_init(&m, type, name, value, &err) != HS_OK) {
        tsdb_matcher_cleanup(&m);
        return (size_t)-1;
    }
    struct tsdb_querier *q = tsdb_querier_new(db, mint, maxt);
    struct tsdb_series_set *set = NULL;
    size_t n = (size_t)-1, ns = 0;
    if (tsdb_querier_select(q, &m, 1, 0, &set, &err) == HS_OK) {
        n = 0;
        while (tsdb_series_set_next(set)) {
            n++;
            struct tsdb_iter *it = tsdb_series_set_iter(set);
            while (tsdb_iter_next(it))
                ns++;
        }
    }
    if (samples)
        *samples = ns;
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
    return n;
}

#endif
