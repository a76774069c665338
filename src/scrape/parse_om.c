/*
 * parse_om.c - the cross-line rules of OpenMetrics 1.0, applied strictly
 * (the behaviour of the reference OpenMetrics parser, which the
 * conformance suite encodes).
 *
 * A family opens with its first metadata line or with a sample whose name
 * is not one the open family may use; it closes when another one opens or
 * at "# EOF".  Names a family may use, by type:
 *   counter        x_total x_created
 *   summary        x x_count x_sum x_created
 *   histogram      x_bucket x_count x_sum x_created
 *   gaugehistogram x_bucket x_gcount x_gsum
 *   info           x_info
 *   others         x
 * On close the family claims all those names plus x; a name claimed twice
 * in one exposition is a clash, which also catches a family split in two.
 * Within a family:
 *   - metadata comes before samples, each kind at most once;
 *   - a label group (labels without le / quantile / the stateset label) is
 *     contiguous; within a group timestamps are all present or all absent
 *     and never decrease (info excepted);
 *   - value rules: counter-like samples are neither NaN nor negative
 *     (_gsum may be negative), bucket and count values are integers, info
 *     is 1, stateset 0 or 1, quantiles in [0, 1] with values >= 0;
 *   - exemplars only on counter _total and histogram _bucket samples;
 *   - histograms, per (group, timestamp) run: buckets in increasing le
 *     ending at +Inf with non-decreasing counts, _count equal to the +Inf
 *     bucket, _count and _sum (_gcount and _gsum) together, no _sum when a
 *     bucket is negative, no negative _gsum without a negative bucket;
 *   - a unit is the suffix of the family name and is not set on info or
 *     stateset.
 * Repeats of a series with the previous sample's timestamp inside one group
 * run are accepted and left out of the histogram checks.
 */
#include "scrape/internal.h"

#include <math.h>
#include <string.h>

/* ---- u64 set ------------------------------------------------------------------ */

static uint64_t key_of(uint64_t k)
{
    return k ? k : 1;
}

static bool set_has(const struct scrape__u64set *s, uint64_t k)
{
    if (s->cap == 0)
        return false;
    k = key_of(k);
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)(k ^ (k >> 29)) & mask;; i = (i + 1) & mask) {
        if (s->v[i] == k)
            return true;
        if (s->v[i] == 0)
            return false;
    }
}

static void set_put_raw(uint64_t *v, size_t cap, uint64_t k)
{
    size_t mask = cap - 1;
    size_t i = (size_t)(k ^ (k >> 29)) & mask;
    while (v[i] != 0 && v[i] != k)
        i = (i + 1) & mask;
    v[i] = k;
}

static int set_add(struct scrape__u64set *s, uint64_t k)
{
    k = key_of(k);
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        uint64_t *v = hs_calloc(cap, sizeof(*v));
        if (v == NULL)
            return HS_ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i] != 0)
                set_put_raw(v, cap, s->v[i]);
        hs_free(s->v);
        s->v = v;
        s->cap = cap;
    }
    if (!set_has(s, k)) {
        set_put_raw(s->v, s->cap, k);
        s->n++;
    }
    return HS_OK;
}

static void set_clear(struct scrape__u64set *s)
{
    if (s->n != 0)
        memset(s->v, 0, s->cap * sizeof(*s->v));
    s->n = 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

static bool str_eq(struct hs_str a, struct hs_str b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static const struct scrape_label *label_get(const struct scrape_entry *e, const char *name,
                                            size_t n)
{
    for (size_t i = 0; i < e->nlabels; i++)
        if (e->labels[i].name.len == n && memcmp(e->labels[i].name.p, name, n) == 0)
            return &e->labels[i];
    return NULL;
}

static uint64_t pair_hash(const struct scrape_label *l)
{
    uint64_t h = hs_hash64(l->name.p, l->name.len, 0x6a09e667f3bcc908ULL);
    return hs_hash64(l->value.p, l->value.len, h) * 0x9e3779b97f4a7c15ULL + h;
}

static bool is_hist(int t)
{
    return t == SCRAPE_MTYPE_HISTOGRAM || t == SCRAPE_MTYPE_GAUGEHISTOGRAM;
}

#define FAMFMT     "\"%.*s\""
#define FAMARG(om) (int)HS_MIN((om)->name.len, 100), (om)->name.p

/* ---- histogram runs ------------------------------------------------------------------- */

static int hist_close(struct scrape_parser *p, struct scrape__om *om, struct hs_err *err)
{
    if (!om->hist_open)
        return HS_OK;
    om->hist_open = false;
    const char *why = NULL;
    if (!om->has_bucket || om->bucket != INFINITY)
        why = "the +Inf bucket is missing";
    else if (om->has_count && om->bvalue != om->count)
        why = "_count differs from the +Inf bucket";
    else if (om->has_sum && !om->has_count)
        why = "_sum without _count";
    else if (om->has_gsum && !om->has_count)
        why = "_gsum without _gcount";
    else if (!(om->has_sum || om->has_gsum) && om->has_count)
        why = "_count without _sum";
    else if (om->neg_buckets && om->has_sum)
        why = "_sum with negative buckets";
    else if (!om->neg_buckets && om->neg_gsum)
        why = "negative _gsum without negative buckets";
    if (why == NULL)
        return HS_OK;
    return scrape__fail(p, err, HS_EPARSE, NULL, "histogram " FAMFMT ": %s", FAMARG(om), why);
}

static int hist_step(struct scrape_parser *p, struct scrape__om *om, const struct scrape_entry *e,
                     uint64_t g, double le, struct hs_err *err)
{
    int rc;
    bool same_ts = om->hist_has_ts == e->has_ts && (!e->has_ts || om->hist_ts == p->ts_secs);
    if (!om->hist_open || om->hist_group != g || !same_ts) {
        if ((rc = hist_close(p, om, err)) < 0)
            return rc;
        om->hist_open = true;
        om->has_bucket = om->has_count = om->neg_buckets = false;
        om->has_sum = om->has_gsum = om->neg_gsum = false;
        om->bvalue = 0;
    }
    om->hist_group = g;
    om->hist_has_ts = e->has_ts;
    om->hist_ts = p->ts_secs;
    switch (e->role) {
    case SCRAPE_ROLE_BUCKET:
        if (le < 0)
            om->neg_buckets = true;
        if (om->has_bucket && le <= om->bucket)
            return scrape__fail(p, err, HS_EPARSE, NULL,
                                "histogram " FAMFMT ": buckets out of order", FAMARG(om));
        if (e->value < om->bvalue)
            return scrape__fail(p, err, HS_EPARSE, NULL,
                                "histogram " FAMFMT ": bucket counts decrease", FAMARG(om));
        om->has_bucket = true;
        om->bucket = le;
        om->bvalue = e->value;
        break;
    case SCRAPE_ROLE_COUNT:
    case SCRAPE_ROLE_GCOUNT:
        om->has_count = true;
        om->count = e->value;
        break;
    case SCRAPE_ROLE_SUM:
        om->has_sum = true;
        break;
    case SCRAPE_ROLE_GSUM:
        om->has_gsum = true;
        if (e->value < 0)
            om->neg_gsum = true;
        break;
    default:
        break;
    }
    return HS_OK;
}

/* ---- families ------------------------------------------------------------------------- */

struct suffix {
    const char *s;
    size_t n;
    int role;
};

static const struct suffix *suffixes(int mtype, bool has_type, size_t *n)
{
    static const struct suffix plain[] = {{"", 0, SCRAPE_ROLE_VALUE}};
    static const struct suffix counter[] = {{"_total", 6, SCRAPE_ROLE_TOTAL},
                                            {"_created", 8, SCRAPE_ROLE_CREATED}};
    static const struct suffix summary[] = {{"", 0, SCRAPE_ROLE_VALUE},
                                            {"_count", 6, SCRAPE_ROLE_COUNT},
                                            {"_sum", 4, SCRAPE_ROLE_SUM},
                                            {"_created", 8, SCRAPE_ROLE_CREATED}};
    static const struct suffix histogram[] = {{"_bucket", 7, SCRAPE_ROLE_BUCKET},
                                              {"_count", 6, SCRAPE_ROLE_COUNT},
                                              {"_sum", 4, SCRAPE_ROLE_SUM},
                                              {"_created", 8, SCRAPE_ROLE_CREATED}};
    static const struct suffix gaugehistogram[] = {{"_bucket", 7, SCRAPE_ROLE_BUCKET},
                                                   {"_gcount", 7, SCRAPE_ROLE_GCOUNT},
                                                   {"_gsum", 5, SCRAPE_ROLE_GSUM}};
    static const struct suffix info[] = {{"_info", 5, SCRAPE_ROLE_INFO}};
    if (has_type) {
        switch (mtype) {
        case SCRAPE_MTYPE_COUNTER:
            *n = HS_ARRAY_LEN(counter);
            return counter;
        case SCRAPE_MTYPE_SUMMARY:
            *n = HS_ARRAY_LEN(summary);
            return summary;
        case SCRAPE_MTYPE_HISTOGRAM:
            *n = HS_ARRAY_LEN(histogram);
            return histogram;
        case SCRAPE_MTYPE_GAUGEHISTOGRAM:
            *n = HS_ARRAY_LEN(gaugehistogram);
            return gaugehistogram;
        case SCRAPE_MTYPE_INFO:
            *n = HS_ARRAY_LEN(info);
            return info;
        default:
            break;
        }
    }
    *n = 1;
    return plain;
}

static int claim_name(struct scrape_parser *p, struct scrape__om *om, const char *sfx, size_t n,
                      struct hs_err *err)
{
    char tmp[512];
    size_t len = om->name.len + n;
    char *buf = tmp;
    if (len > sizeof(tmp)) {
        buf = hs_arena_alloc(&p->arena, len);
        if (buf == NULL)
            return scrape__fail(p, err, HS_ENOMEM, NULL, "out of memory");
    }
    memcpy(buf, om->name.p, om->name.len);
    memcpy(buf + om->name.len, sfx, n);
    uint64_t h = hs_hash64(buf, len, 0x3c6ef372fe94f82bULL);
    if (set_has(&om->seen_names, h))
        return scrape__fail(p, err, HS_EPARSE, NULL,
                            "clashing name \"%.*s\": two metric families use it, or one family "
                            "is split in two",
                            (int)HS_MIN(len, 100), buf);
    if (set_add(&om->seen_names, h) < 0)
        return scrape__fail(p, err, HS_ENOMEM, NULL, "out of memory");
    return HS_OK;
}

static int unit_check(struct scrape_parser *p, const struct scrape__om *om, struct hs_err *err);

static int family_close(struct scrape_parser *p, struct scrape__om *om, struct hs_err *err)
{
    int rc;
    if (!om->has_fam)
        return HS_OK;
    om->has_fam = false;
    if (!p->is_strict)
        return unit_check(p, om, err);
    size_t n;
    const struct suffix *sx = suffixes(om->mtype, om->has_type, &n);
    bool has_plain = false;
    for (size_t i = 0; i < n; i++) {
        has_plain |= sx[i].n == 0;
        if ((rc = claim_name(p, om, sx[i].s, sx[i].n, err)) < 0)
            return rc;
    }
    if (!has_plain && (rc = claim_name(p, om, "", 0, err)) < 0)
        return rc;
    if ((rc = unit_check(p, om, err)) < 0)
        return rc;
    return hist_close(p, om, err);
}

static int unit_check(struct scrape_parser *p, const struct scrape__om *om, struct hs_err *err)
{
    if (om->has_unit && om->unit.len > 0) {
        const struct hs_str *u = &om->unit;
        bool ok = om->name.len >= u->len + 1 && om->name.p[om->name.len - u->len - 1] == '_' &&
                  memcmp(om->name.p + om->name.len - u->len, u->p, u->len) == 0;
        if (!ok)
            return scrape__fail(p, err, HS_EPARSE, NULL,
                                "unit \"%.*s\" is not the suffix of metric name " FAMFMT,
                                (int)HS_MIN(u->len, 60), u->p, FAMARG(om));
        if (om->mtype == SCRAPE_MTYPE_INFO || om->mtype == SCRAPE_MTYPE_STATESET)
            return scrape__fail(p, err, HS_EPARSE, NULL, "%s " FAMFMT " may not have a unit",
                                scrape_mtype_name(om->mtype), FAMARG(om));
    }
    return HS_OK;
}

static void family_open(struct scrape__om *om, struct hs_str name)
{
    om->has_fam = true;
    om->name = name;
    om->mtype = SCRAPE_MTYPE_UNKNOWN;
    om->has_type = om->has_help = om->has_unit = false;
    om->unit.p = NULL;
    om->unit.len = 0;
    om->nsamples = 0;
    om->has_group = false;
    om->hist_open = false;
    set_clear(&om->seen_groups);
    set_clear(&om->run_series);
}

int scrape__om_meta(struct scrape_parser *p, struct scrape_entry *e, struct hs_err *err)
{
    struct scrape__check *c = scrape__check_get(p, err);
    if (c == NULL)
        return HS_ENOMEM;
    struct scrape__om *om = &c->om;
    int rc;
    const char *what = e->kind == SCRAPE_ENTRY_HELP   ? "HELP"
                       : e->kind == SCRAPE_ENTRY_TYPE ? "TYPE"
                                                      : "UNIT";
    if (om->has_fam && str_eq(om->name, e->name)) {
        if (om->nsamples > 0)
            return scrape__fail(p, err, HS_EPARSE, NULL, "%s for " FAMFMT " after its samples",
                                what, FAMARG(om));
    } else {
        if ((rc = family_close(p, om, err)) < 0)
            return rc;
        family_open(om, e->name);
    }
    bool *seen = e->kind == SCRAPE_ENTRY_HELP   ? &om->has_help
                 : e->kind == SCRAPE_ENTRY_TYPE ? &om->has_type
                                                : &om->has_unit;
    if (*seen)
        return scrape__fail(p, err, HS_EPARSE, NULL, "second %s line for " FAMFMT, what,
                            FAMARG(om));
    *seen = true;
    if (e->kind == SCRAPE_ENTRY_TYPE)
        om->mtype = e->mtype;
    else if (e->kind == SCRAPE_ENTRY_UNIT)
        om->unit = e->text;
    return HS_OK;
}

int scrape__om_eof(struct scrape_parser *p, struct hs_err *err)
{
    struct scrape__check *c = scrape__check_get(p, err);
    if (c == NULL)
        return HS_ENOMEM;
    return family_close(p, &c->om, err);
}

/* Role of 'name' in the open family, or -1 when it may not use it. */
static int role_in_family(const struct scrape__om *om, struct hs_str name)
{
    if (!om->has_fam || name.len < om->name.len || memcmp(name.p, om->name.p, om->name.len) != 0)
        return -1;
    size_t n;
    const struct suffix *sx = suffixes(om->mtype, om->has_type, &n);
    const char *rest = name.p + om->name.len;
    size_t rn = name.len - om->name.len;
    for (size_t i = 0; i < n; i++)
        if (sx[i].n == rn && memcmp(sx[i].s, rest, rn) == 0)
            return sx[i].role;
    return -1;
}

static bool is_integral(double v)
{
    return isfinite(v) && floor(v) == v;
}

/* le / quantile: a number, "+Inf" spelled canonically, never NaN. */
static int bound_label(struct scrape_parser *p, const struct scrape_entry *e, const char *lname,
                       double *out, struct hs_err *err)
{
    const struct scrape_label *l = label_get(e, lname, strlen(lname));
    if (l == NULL)
        return scrape__fail(p, err, HS_EPARSE, NULL, "sample \"%.*s\" lacks the %s label",
                            (int)HS_MIN(e->name.len, 100), e->name.p, lname);
    double v;
    bool ok = scrape__parse_number(l->value.p, l->value.len, &v) == 0 && !isnan(v);
    if (ok && isinf(v) && v > 0)
        ok = l->value.len == 4 && memcmp(l->value.p, "+Inf", 4) == 0;
    if (!ok) {
        char got[48];
        scrape__got(l->value.p, l->value.p + l->value.len, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, NULL, "invalid %s label value %s", lname, got);
    }
    *out = v;
    return HS_OK;
}

/* Without SCRAPE_PARSE_STRICT: le / quantile, when present, are numbers. */
static int lenient_bounds(struct scrape_parser *p, const struct scrape_entry *e, int t, int role,
                          struct hs_err *err)
{
    const struct scrape_label *l = NULL;
    if (role == SCRAPE_ROLE_BUCKET)
        l = label_get(e, "le", 2);
    else if (t == SCRAPE_MTYPE_SUMMARY && role == SCRAPE_ROLE_VALUE)
        l = label_get(e, "quantile", 8);
    double v;
    if (l == NULL || scrape__parse_number(l->value.p, l->value.len, &v) == 0)
        return HS_OK;
    char got[48];
    scrape__got(l->value.p, l->value.p + l->value.len, got, sizeof(got));
    return scrape__fail(p, err, HS_EPARSE, NULL, "invalid %.*s label value %s", (int)l->name.len,
                        l->name.p, got);
}

static int value_rules(struct scrape_parser *p, struct scrape__om *om, struct scrape_entry *e,
                       struct hs_err *err)
{
    double v = e->value;
    int r = e->role, t = om->mtype;
    const char *why = NULL;
    if ((r == SCRAPE_ROLE_BUCKET || r == SCRAPE_ROLE_COUNT || r == SCRAPE_ROLE_GCOUNT) &&
        !is_integral(v) && !isnan(v))
        why = "bucket and count values must be integers";
    else if (t == SCRAPE_MTYPE_STATESET && !(v == 0 || v == 1))
        why = "stateset values must be 0 or 1";
    else if (t == SCRAPE_MTYPE_INFO && v != 1)
        why = "info values must be 1";
    else if (t == SCRAPE_MTYPE_SUMMARY && r == SCRAPE_ROLE_VALUE && v < 0)
        why = "quantile values may not be negative";
    else if ((r == SCRAPE_ROLE_TOTAL || r == SCRAPE_ROLE_SUM || r == SCRAPE_ROLE_COUNT ||
              r == SCRAPE_ROLE_BUCKET || r == SCRAPE_ROLE_GCOUNT || r == SCRAPE_ROLE_GSUM) &&
             isnan(v))
        why = "counter-like values may not be NaN";
    else if ((r == SCRAPE_ROLE_TOTAL || r == SCRAPE_ROLE_SUM || r == SCRAPE_ROLE_COUNT ||
              r == SCRAPE_ROLE_BUCKET || r == SCRAPE_ROLE_GCOUNT) &&
             v < 0)
        why = "counter-like values may not be negative";
    else if (e->has_exemplar && !(is_hist(t) && r == SCRAPE_ROLE_BUCKET) &&
             !(t == SCRAPE_MTYPE_COUNTER && r == SCRAPE_ROLE_TOTAL))
        why = "only counter _total and histogram _bucket samples may carry exemplars";
    if (why == NULL)
        return HS_OK;
    return scrape__fail(p, err, HS_EPARSE, NULL, "sample \"%.*s\": %s",
                        (int)HS_MIN(e->name.len, 100), e->name.p, why);
}

int scrape__om_sample(struct scrape_parser *p, struct scrape_entry *e, struct hs_err *err)
{
    struct scrape__check *c = scrape__check_get(p, err);
    if (c == NULL)
        return HS_ENOMEM;
    struct scrape__om *om = &c->om;
    int rc;
    int role = role_in_family(om, e->name);
    if (role < 0) {
        if ((rc = family_close(p, om, err)) < 0)
            return rc;
        family_open(om, e->name);
        om->has_type = true; /* a family opened by a sample is "unknown" */
        role = SCRAPE_ROLE_VALUE;
    }
    int t = om->mtype;
    e->family = om->name;
    e->mtype = t;
    e->role = role;

    /* The label left out of the group, and the bound it carries. */
    const char *skip = NULL;
    size_t skip_len = 0;
    double bound = 0;
    if (!p->is_strict)
        return lenient_bounds(p, e, t, role, err);
    if (t == SCRAPE_MTYPE_STATESET) {
        if (label_get(e, om->name.p, om->name.len) == NULL)
            return scrape__fail(p, err, HS_EPARSE, NULL, "stateset sample lacks the label " FAMFMT,
                                FAMARG(om));
        skip = om->name.p, skip_len = om->name.len;
    } else if (role == SCRAPE_ROLE_BUCKET) {
        if ((rc = bound_label(p, e, "le", &bound, err)) < 0)
            return rc;
        skip = "le", skip_len = 2;
    } else if (t == SCRAPE_MTYPE_SUMMARY && role == SCRAPE_ROLE_VALUE) {
        if ((rc = bound_label(p, e, "quantile", &bound, err)) < 0)
            return rc;
        if (!(bound >= 0 && bound <= 1))
            return scrape__fail(p, err, HS_EPARSE, NULL, "quantile %g is outside [0, 1]", bound);
        skip = "quantile", skip_len = 8;
    }
    if ((rc = value_rules(p, om, e, err)) < 0)
        return rc;

    uint64_t g = 0, all = 0;
    for (size_t i = 0; i < e->nlabels; i++) {
        uint64_t h = pair_hash(&e->labels[i]);
        all += h;
        if (skip == NULL || e->labels[i].name.len != skip_len ||
            memcmp(e->labels[i].name.p, skip, skip_len) != 0)
            g += h;
    }
    if (t == SCRAPE_MTYPE_INFO)
        g = 0;
    uint64_t series = all + hs_hash64(e->name.p, e->name.len, 0xbb67ae8584caa73bULL);
    double ts = e->has_ts ? p->ts_secs : 0;
    bool same_ts_as_prev =
        om->has_group && om->group_has_ts == e->has_ts && (!e->has_ts || om->group_ts == ts);
    if (om->has_group && g != om->group && set_has(&om->seen_groups, g))
        return scrape__fail(p, err, HS_EPARSE, NULL,
                            "samples of one label set of " FAMFMT " are not contiguous",
                            FAMARG(om));
    if (om->has_group && g == om->group) {
        if (om->group_has_ts != e->has_ts)
            return scrape__fail(p, err, HS_EPARSE, NULL,
                                "samples of one label set mix lines with and without timestamp");
        if (e->has_ts && om->group_ts > ts && t != SCRAPE_MTYPE_INFO)
            return scrape__fail(p, err, HS_EPARSE, NULL,
                                "timestamps go backwards within one label set");
    } else {
        set_clear(&om->run_series);
    }
    bool is_repeat = same_ts_as_prev && set_has(&om->run_series, series);
    if (set_add(&om->run_series, series) < 0 || set_add(&om->seen_groups, g) < 0)
        return scrape__fail(p, err, HS_ENOMEM, NULL, "out of memory");
    om->has_group = true;
    om->group = g;
    om->group_has_ts = e->has_ts;
    om->group_ts = ts;
    om->nsamples++;
    if (is_hist(t) && !is_repeat && (rc = hist_step(p, om, e, g, bound, err)) < 0)
        return rc;
    return HS_OK;
}
