/*
 * rec_sink.h - a recording collect_sink for the collect tests: keeps every
 * sample (labels copied) and finds them again by name and label subset.
 * Header-only; include it from one test file per executable.
 */
#ifndef HS_TEST_COLLECT_REC_SINK_H
#define HS_TEST_COLLECT_REC_SINK_H

#include "hs_test.h"

#include "collect/collect.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* |a - b| <= eps, printing both values on failure (this cmocka has no
 * assert_double_equal). */
#define assert_near(a, b, eps) rec_assert_near((a), (b), (eps), #a, __FILE__, __LINE__)
static void rec_assert_near(double a, double b, double eps, const char *what, const char *file,
                            int line)
{
    if (!(a == b || (a - b <= eps && b - a <= eps))) {
        print_error("%s:%d: %s = %.17g, expected %.17g (+-%g)\n", file, line, what, a, b, eps);
        fail();
    }
}

struct rec_sample {
    struct hs_labels *ls; /* hs_labels_dup */
    int64_t t_ms;
    double v;
};

struct rec {
    struct rec_sample *v;
    size_t n, cap;
    int fail_every; /* > 0: every fail_every-th add fails */
    size_t calls;
};

static int rec_add(void *ctx, const struct hs_labels *ls, int64_t t_ms, double v,
                   struct hs_err *err)
{
    struct rec *r = ctx;
    r->calls++;
    if (r->fail_every > 0 && r->calls % (size_t)r->fail_every == 0)
        return hs_err_set(err, HS_EINVAL, "recording sink refuses this one");
    assert_true(hs_labels_valid(ls));
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->v = hs_reallocarray(r->v, r->cap, sizeof(*r->v));
        assert_non_null(r->v);
    }
    r->v[r->n].ls = hs_labels_dup(ls);
    assert_non_null(r->v[r->n].ls);
    r->v[r->n].t_ms = t_ms;
    r->v[r->n].v = v;
    r->n++;
    return HS_OK;
}

static struct collect_sink rec_sink(struct rec *r)
{
    return (struct collect_sink){rec_add, r};
}

static void rec_clear(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        hs_labels_free(r->v[i].ls);
    hs_free(r->v);
    memset(r, 0, sizeof(*r));
}

/* Samples named 'name' whose labels include each (k, v) pair given as a
 * NULL-terminated list; *count receives how many matched, the first match
 * is returned (NULL when none). */
static const struct rec_sample *rec_vfind(const struct rec *r, size_t *count, const char *name,
                                          va_list ap)
{
    const char *kv[32];
    size_t n = 0;
    const char *k;
    while (n < 30 && (k = va_arg(ap, const char *)) != NULL) {
        kv[n++] = k;
        kv[n++] = va_arg(ap, const char *);
    }
    const struct rec_sample *first = NULL;
    *count = 0;
    for (size_t i = 0; i < r->n; i++) {
        const char *nm = hs_labels_get(r->v[i].ls, "__name__");
        if (nm == NULL || strcmp(nm, name) != 0)
            continue;
        bool ok = true;
        for (size_t j = 0; j < n && ok; j += 2) {
            const char *have = hs_labels_get(r->v[i].ls, kv[j]);
            ok = have != NULL && strcmp(have, kv[j + 1]) == 0;
        }
        if (ok) {
            if (first == NULL)
                first = &r->v[i];
            (*count)++;
        }
    }
    return first;
}

/* The value of the one sample matching; fails the test unless exactly one
 * matches. */
static double rec_value(const struct rec *r, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    size_t count;
    const struct rec_sample *s = rec_vfind(r, &count, name, ap);
    va_end(ap);
    if (count != 1) {
        print_error("%s: %zu samples match, expected 1\n", name, count);
        fail();
    }
    return s->v;
}

/* How many samples match. */
static size_t rec_count(const struct rec *r, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    size_t count;
    rec_vfind(r, &count, name, ap);
    va_end(ap);
    return count;
}

/* The first matching sample's labels (fails when none). */
static const struct hs_labels *rec_labels(const struct rec *r, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    size_t count;
    const struct rec_sample *s = rec_vfind(r, &count, name, ap);
    va_end(ap);
    assert_non_null(s);
    return s->ls;
}

#endif
