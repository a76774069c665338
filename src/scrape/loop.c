/*
 * loop.c - one target's scrape loop: from a fetched response to samples in
 * the store.
 *
 * Per scrape: check the response (status, body size, gzip), parse it, and
 * for each sample look its raw series up in the loop's series cache (key: the
 * sample's name and labels exactly as parsed).  A hit appends by tsdb ref
 * with no label work at all: THE HOT PATH.  A miss builds the labels the
 * Prometheus way (target labels merged, scraped conflicts renamed
 * exported_<name> unless honor_labels; `backend` and `model` added;
 * metric_relabel_configs; label limits), asks the mapping for the unified
 * samples of the series and remembers every resulting ref, plus how a
 * unified value follows the raw one (times a constant, or a constant), so
 * that the next hits append those by ref too.  Samples whose unified output
 * cannot be described that way (parts of combined series, dcgm blank
 * sentinels) are "slow": they call the mapping every scrape and append the
 * results through a second cache keyed by final label set, which also holds
 * the combined series of scrape_mapping_flush.
 *
 * Staleness: every cache entry records the scrape attempt ('gen') that last
 * saw it.  After a successful scrape, entries seen by the previous attempt
 * but not this one get a stale marker (TSDB_STALE_NAN_BITS) on each of their
 * refs.  A failed scrape appends nothing of its own and marks every series
 * of the previous attempt stale; 'prev_seen' lets it undo what its partial
 * processing recorded.  Series with explicit timestamps (honor_timestamps)
 * are never marked, as in Prometheus.
 *
 * Detection: the mapping needs the target's engine before the samples are
 * read, so a scrape uses the previous scrape's detection while it feeds a
 * fresh one.  When the fresh result differs (always on the first scrape of
 * an engine target) the scrape is rolled back and processed again with the
 * new result into a fresh cache; refs of the old cache that the new one no
 * longer holds are marked stale.
 */
#include "scrape/scrape_internal.h"
#include "scrape/scrape_manager.h"

#include "http/http.h"
#include "tsdb/tsdb.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_UNI          SCRAPE_MAP_MAX_OUT
#define ARENA_BLOCK      (256u << 10)
#define BODY_DEFAULT_MAX (256u << 20) /* ceiling when no body_size_limit is configured */
#define DCGM_BLANK       9.2e18

enum { E_DROPPED = 1, E_SLOW = 2, E_NOSTALE = 4, E_NOREF = 8 };
enum { U_MUL = 0, U_CONST = 1, U_NONE = 2 };
enum { R_UP = 0, R_DURATION, R_SCRAPED, R_POST, R_ADDED, R_COUNT };

static const char *const report_names[R_COUNT] = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added"};

/* A raw series as the target writes it. */
struct entry {
    uint64_t hash;
    char *key; /* owned; name, then label name/value pairs, 0xff separated */
    uint32_t keylen;
    uint32_t last_seen, prev_seen; /* scrape attempts ('gen'); 0 = never */
    uint8_t flags;
    uint8_t nuni;
    uint8_t ukind[MAX_UNI];
    uint64_t ref;
    uint64_t uref[MAX_UNI];
    double ua[MAX_UNI];
};

/* A series known by its final labels (combined and slow unified series). */
struct dentry {
    uint64_t hash;
    struct hs_labels *ls; /* owned (hs_labels_dup) */
    uint64_t ref;
    uint32_t last_seen, prev_seen;
};

/* Open-addressing index over a dense vector: slots hold index + 1. */
struct index {
    uint32_t *slot;
    size_t cap; /* power of two */
};

struct cache {
    struct entry *v;
    size_t n, cap;
    struct index ix;
};

struct dcache {
    struct dentry *v;
    size_t n, cap;
    struct index ix;
};

struct scrape_loop {
    const struct scrape_job *job;
    const struct scrape_mapping *map;
    struct tsdb *db;
    struct hs_labels *tlabels;    /* target labels (owned) */
    struct hs_labels *discovered; /* owned */
    char *url;
    char *auth;           /* Authorization header value or NULL */
    const char *tmodel;   /* target's `model` label or NULL (in tlabels) */
    char *info_url;       /* TGI /info or llama.cpp /props of the target; owned */
    char *info_model;     /* the model it named, or NULL; owned */
    bool info_tried;      /* the info request was handed out (once per loop) */
    bool relabel;         /* info_model changed: rebuild the series at the next scrape */
    const char *tbackend; /* target's `backend` label or NULL */
    int pinned;           /* backend pinned by the target labels/job, or NONE */
    int64_t interval_ms, timeout_ms;
    uint64_t key;
    struct hs_labels *report_ls[R_COUNT];
    uint64_t report_ref[R_COUNT];
    bool has_report_ref[R_COUNT];
    bool report_written;

    struct cache cache;
    struct dcache dcache;
    uint32_t gen;
    struct scrape_detect det_cur, det_next;
    bool has_detect;

    struct hs_arena arena; /* per scrape */
    struct scrape_relabel_scratch scratch;
    struct hs_buf body;   /* inflated body */
    struct hs_buf keybuf; /* key of the sample being looked up */

    pthread_mutex_t mu; /* guards health and stats */
    struct scrape_target_health health;
    struct scrape_stats stats;
};

/* The model handed to the mapping: the configured one, else the one the
 * engine's info endpoint named (engines whose series carry no model). */
static const char *loop_model(const struct scrape_loop *l)
{
    return l->tmodel != NULL ? l->tmodel : l->info_model;
}

/* State of one scrape attempt. */
struct run {
    struct tsdb_appender *app;
    int64_t t_ms;
    bool feed_detect;
    struct scrape_map_acc acc;
    struct hs_str last_family;
    uint64_t scraped, post, added;
    struct scrape_stats st; /* deltas for l->stats */
    struct hs_err *err;
};

/* ---- caches ---------------------------------------------------------------- */

static int index_grow(struct index *ix, size_t need, const uint64_t *hashes, size_t n,
                      size_t stride)
{
    if (ix->cap >= need * 2 && ix->cap != 0)
        return HS_OK;
    size_t cap = ix->cap ? ix->cap : 64;
    while (cap < need * 2)
        cap *= 2;
    uint32_t *slot = hs_calloc(cap, sizeof(*slot));
    if (slot == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = *(const uint64_t *)(const void *)((const char *)hashes + i * stride);
        size_t s = (size_t)h & (cap - 1);
        while (slot[s] != 0)
            s = (s + 1) & (cap - 1);
        slot[s] = (uint32_t)(i + 1);
    }
    hs_free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
    return HS_OK;
}

static void index_put(struct index *ix, uint64_t h, size_t i)
{
    size_t s = (size_t)h & (ix->cap - 1);
    while (ix->slot[s] != 0)
        s = (s + 1) & (ix->cap - 1);
    ix->slot[s] = (uint32_t)(i + 1);
}

static long cache_find(const struct cache *c, uint64_t h, const char *key, size_t len)
{
    if (c->ix.cap == 0)
        return -1;
    size_t s = (size_t)h & (c->ix.cap - 1);
    for (;;) {
        uint32_t k = c->ix.slot[s];
        if (k == 0)
            return -1;
        const struct entry *e = &c->v[k - 1];
        if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0)
            return (long)(k - 1);
        s = (s + 1) & (c->ix.cap - 1);
    }
}

/* Appends a zeroed entry owning a copy of 'key'; returns its index or -1. */
static long cache_add(struct cache *c, uint64_t h, const char *key, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct entry *v = hs_reallocarray(c->v, cap, sizeof(*v));
        if (v == NULL)
            return -1;
        c->v = v;
        c->cap = cap;
    }
    if (index_grow(&c->ix, c->n + 1, &c->v[0].hash, c->n, sizeof(struct entry)) != HS_OK)
        return -1;
    char *k = hs_malloc(len + 1);
    if (k == NULL)
        return -1;
    memcpy(k, key, len);
    k[len] = '\0';
    struct entry *e = &c->v[c->n];
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->key = k;
    e->keylen = (uint32_t)len;
    index_put(&c->ix, h, c->n);
    return (long)c->n++;
}

static void cache_cleanup(struct cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        hs_free(c->v[i].key);
    hs_free(c->v);
    hs_free(c->ix.slot);
    memset(c, 0, sizeof(*c));
}

/* Drops entries not seen by attempt 'gen'; keeps memory on failure. */
static void cache_compact(struct cache *c, uint32_t gen)
{
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].last_seen != gen) {
            hs_free(c->v[i].key);
            continue;
        }
        c->v[w++] = c->v[i];
    }
    c->n = w;
    memset(c->ix.slot, 0, c->ix.cap * sizeof(uint32_t));
    for (size_t i = 0; i < c->n; i++)
        index_put(&c->ix, c->v[i].hash, i);
}

static long dcache_find(const struct dcache *c, uint64_t h, const struct hs_labels *ls)
{
    if (c->ix.cap == 0)
        return -1;
    size_t s = (size_t)h & (c->ix.cap - 1);
    for (;;) {
        uint32_t k = c->ix.slot[s];
        if (k == 0)
            return -1;
        const struct dentry *e = &c->v[k - 1];
        if (e->hash == h && hs_labels_cmp(e->ls, ls) == 0)
            return (long)(k - 1);
        s = (s + 1) & (c->ix.cap - 1);
    }
}

static long dcache_add(struct dcache *c, uint64_t h, const struct hs_labels *ls)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct dentry *v = hs_reallocarray(c->v, cap, sizeof(*v));
        if (v == NULL)
            return -1;
        c->v = v;
        c->cap = cap;
    }
    if (index_grow(&c->ix, c->n + 1, &c->v[0].hash, c->n, sizeof(struct dentry)) != HS_OK)
        return -1;
    struct hs_labels *copy = hs_labels_dup(ls);
    if (copy == NULL)
        return -1;
    struct dentry *e = &c->v[c->n];
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->ls = copy;
    index_put(&c->ix, h, c->n);
    return (long)c->n++;
}

static void dcache_cleanup(struct dcache *c)
{
    for (size_t i = 0; i < c->n; i++)
        hs_labels_free(c->v[i].ls);
    hs_free(c->v);
    hs_free(c->ix.slot);
    memset(c, 0, sizeof(*c));
}

static void dcache_compact(struct dcache *c, uint32_t gen)
{
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].last_seen != gen) {
            hs_labels_free(c->v[i].ls);
            continue;
        }
        c->v[w++] = c->v[i];
    }
    c->n = w;
    if (c->ix.cap)
        memset(c->ix.slot, 0, c->ix.cap * sizeof(uint32_t));
    for (size_t i = 0; i < c->n; i++)
        index_put(&c->ix, c->v[i].hash, i);
}

/* Whether a series last seen by attempt 'last' was seen by the attempt
 * before 'gen' (0 is "never": attempts count from 1). */
static bool seen_before(uint32_t last, uint32_t gen)
{
    return last != 0 && last + 1 == gen;
}

/* ---- appending ------------------------------------------------------------- */

static double stale_nan(void)
{
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static void count_add(struct run *r, int rc)
{
    if (rc == HS_OK)
        r->st.samples_appended++;
    else
        r->st.samples_rejected++;
}

static void stale_ref(struct run *r, uint64_t ref)
{
    int rc = tsdb_appender_add_ref(r->app, ref, r->t_ms, stale_nan(), NULL);
    if (rc == HS_OK)
        r->st.stale_markers++;
}

/* Stale markers for every ref of entry 'e'. */
static void stale_entry(struct run *r, const struct entry *e)
{
    if (e->flags & E_NOSTALE)
        return;
    if (!(e->flags & (E_DROPPED | E_NOREF)))
        stale_ref(r, e->ref);
    for (unsigned k = 0; k < e->nuni; k++)
        if (e->ukind[k] != U_NONE)
            stale_ref(r, e->uref[k]);
}

/* ---- labels ---------------------------------------------------------------- */

/* A small unsorted builder in the per-scrape arena. */
struct lbuild {
    struct hs_label *v;
    size_t n, cap;
};

static long lb_find(const struct lbuild *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->v[i].name, name) == 0)
            return (long)i;
    return -1;
}

/*
 * Put a target-side label (target label, backend, model) into a sample's
 * labels: a scraped label of the same name with a value wins with
 * honor_labels (or when 'keep_scraped'), else it is renamed
 * exported_<name> (exported_exported_<name> ... while taken).
 */
static int lb_merge(struct hs_arena *a, struct lbuild *b, const char *name, const char *value,
                    bool honor, bool keep_scraped)
{
    long i = lb_find(b, name);
    if (i >= 0 && b->v[i].value[0] != '\0') {
        if (strcmp(b->v[i].value, value) == 0 || honor || keep_scraped)
            return HS_OK;
        const char *nn = name;
        do {
            nn = hs_arena_printf(a, "exported_%s", nn);
            if (nn == NULL)
                return HS_ENOMEM;
        } while (lb_find(b, nn) >= 0);
        b->v[i].name = nn;
        i = -1;
    }
    if (i >= 0) {
        b->v[i].value = value;
        return HS_OK;
    }
    if (b->n == b->cap)
        return HS_ETOOBIG;
    b->v[b->n].name = name;
    b->v[b->n].value = value;
    b->n++;
    return HS_OK;
}

/*
 * Final labels of a sample: __name__ 'name', its labels 'in' (sorted,
 * without __name__), the target's labels merged, for raw samples `backend`
 * and `model` added, then metric_relabel_configs.  Returns 1 kept (in *out,
 * arena memory), 0 dropped, or a negative code.
 */
static int final_labels(struct scrape_loop *l, const char *name, const struct hs_labels *in,
                        bool is_unified, struct hs_labels *out, struct hs_err *err)
{
    struct hs_arena *a = &l->arena;
    struct lbuild b;
    b.cap = in->n + l->tlabels->n * 2 + 4;
    b.n = 0;
    b.v = hs_arena_alloc(a, b.cap * sizeof(b.v[0]));
    if (b.v == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory building labels");
    b.v[b.n].name = "__name__";
    b.v[b.n++].value = name;
    for (size_t i = 0; i < in->n; i++) {
        if (strcmp(in->v[i].name, "__name__") == 0)
            continue;
        b.v[b.n++] = in->v[i];
    }
    bool honor = l->job->honor_labels;
    bool is_dcgm = false;
    if (is_unified) {
        const char *be = hs_labels_get(in, "backend");
        is_dcgm = be != NULL && strcmp(be, "dcgm") == 0;
    }
    int rc = HS_OK;
    for (size_t i = 0; rc == HS_OK && i < l->tlabels->n; i++) {
        const char *n = l->tlabels->v[i].name;
        bool keep = is_dcgm && (strcmp(n, "pod") == 0 || strcmp(n, "namespace") == 0 ||
                                strcmp(n, "container") == 0);
        rc = lb_merge(a, &b, n, l->tlabels->v[i].value, honor, keep);
    }
    if (rc == HS_OK && !is_unified) {
        if (l->tbackend == NULL && l->det_cur.primary != SCRAPE_BACKEND_NONE &&
            l->det_cur.detected != 0)
            rc = lb_merge(a, &b, "backend", scrape_backend_name(l->det_cur.primary), honor, false);
        const char *model = l->tmodel == NULL ? scrape_model_of(in, NULL) : NULL;
        if (model == NULL && l->tmodel == NULL)
            model = l->info_model; /* metrics-mapping 4.2: /info, /props last */
        if (rc == HS_OK && model != NULL)
            rc = lb_merge(a, &b, "model", model, honor, false);
    }
    if (rc != HS_OK)
        return hs_err_set(err, rc, "building labels of %s: %s", name, hs_strerror(rc));
    struct hs_labels ls = {b.n, b.v};
    hs_labels_sort(&ls);
    if (l->job->metric_relabel_configs.n == 0) {
        *out = ls;
        return 1;
    }
    rc = scrape_relabel_apply(&l->job->metric_relabel_configs, &ls, a, &l->scratch, out, err);
    if (rc == 1 && hs_labels_get(out, "__name__") == NULL)
        return 0;
    return rc;
}

/* Prometheus' label limits on a raw sample's final labels. */
static int check_limits(struct scrape_loop *l, struct run *r, const struct hs_labels *ls)
{
    const struct scrape_job *j = l->job;
    const char *metric = hs_labels_get(ls, "__name__");
    if (j->label_limit && ls->n > j->label_limit) {
        r->st.exceeded_label_limits++;
        return hs_err_set(r->err, HS_ETOOBIG,
                          "label_limit exceeded (metric: %s, number of labels: %zu, limit: %llu)",
                          metric, ls->n, (unsigned long long)j->label_limit);
    }
    for (size_t i = 0; i < ls->n; i++) {
        size_t nl = strlen(ls->v[i].name), vl = strlen(ls->v[i].value);
        if (j->label_name_length_limit && nl > j->label_name_length_limit) {
            r->st.exceeded_label_limits++;
            return hs_err_set(r->err, HS_ETOOBIG,
                              "label_name_length_limit exceeded (metric: %s, label name: %s, "
                              "length: %zu, limit: %llu)",
                              metric, ls->v[i].name, nl,
                              (unsigned long long)j->label_name_length_limit);
        }
        if (j->label_value_length_limit && vl > j->label_value_length_limit) {
            r->st.exceeded_label_limits++;
            return hs_err_set(r->err, HS_ETOOBIG,
                              "label_value_length_limit exceeded (metric: %s, label name: %s, "
                              "value: %.64s, length: %zu, limit: %llu)",
                              metric, ls->v[i].name, ls->v[i].value, vl,
                              (unsigned long long)j->label_value_length_limit);
        }
    }
    return HS_OK;
}

/* Append a series known only by labels through the label-keyed cache. */
static int add_derived(struct scrape_loop *l, struct run *r, const struct hs_labels *ls, double v)
{
    uint64_t h = hs_labels_hash(ls);
    long i = dcache_find(&l->dcache, h, ls);
    if (i >= 0 && l->dcache.v[i].last_seen == l->gen) {
        r->st.samples_duplicate++;
        return HS_OK;
    }
    if (i >= 0) {
        struct dentry *d = &l->dcache.v[i];
        int rc = tsdb_appender_add_ref(r->app, d->ref, r->t_ms, v, NULL);
        if (rc != HS_ENOTFOUND) {
            d->prev_seen = d->last_seen;
            d->last_seen = l->gen;
            count_add(r, rc);
            return HS_OK;
        }
    }
    uint64_t ref = 0;
    struct hs_err e2;
    int rc = tsdb_appender_add(r->app, ls, r->t_ms, v, &ref, &e2);
    count_add(r, rc);
    if (rc != HS_OK)
        return HS_OK;
    if (i < 0 && (i = dcache_add(&l->dcache, h, ls)) < 0)
        return hs_err_set(r->err, HS_ENOMEM, "out of memory in the series cache");
    l->dcache.v[i].ref = ref;
    l->dcache.v[i].prev_seen = l->dcache.v[i].last_seen;
    l->dcache.v[i].last_seen = l->gen;
    return HS_OK;
}

/* Unified output 'u' to final labels and the store by labels. */
static int add_unified_slow(struct scrape_loop *l, struct run *r,
                            const struct scrape_unified_sample *u)
{
    struct hs_labels fl;
    int rc = final_labels(l, u->name, &u->labels, true, &fl, r->err);
    if (rc <= 0)
        return rc;
    return add_derived(l, r, &fl, u->value);
}

static bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0 || (isnan(a) && isnan(b));
}

/* ---- one sample ------------------------------------------------------------- */

/* Sample labels of a parsed entry, NUL-terminated and sorted, from the arena. */
static int sample_labels(struct scrape_loop *l, const struct scrape_entry *e, char **name,
                         struct hs_labels *sl, struct hs_err *err)
{
    struct hs_arena *a = &l->arena;
    *name = hs_arena_strndup(a, e->name.p, e->name.len);
    sl->n = 0;
    sl->v = hs_arena_alloc(a, (e->nlabels + 1) * sizeof(sl->v[0]));
    if (*name == NULL || sl->v == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->nlabels; i++) {
        const struct scrape_label *pl = &e->labels[i];
        char *n = hs_arena_strndup(a, pl->name.p, pl->name.len);
        char *v = hs_arena_strndup(a, pl->value.p, pl->value.len);
        if (n == NULL || v == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        sl->v[sl->n].name = n;
        sl->v[sl->n++].value = v;
    }
    hs_labels_sort(sl);
    return HS_OK;
}

/* Slow unified path: the mapping with the real accumulator, results by labels. */
static int unified_slow(struct scrape_loop *l, struct run *r, const char *name,
                        const struct hs_labels *sl, double v)
{
    struct scrape_unified_sample out[MAX_UNI];
    size_t n = 0;
    int rc = scrape_mapping_apply(l->map, &l->det_cur, name, strlen(name), sl, v, loop_model(l),
                                  &l->arena, &r->acc, out, &n, r->err);
    for (size_t k = 0; rc == HS_OK && k < n; k++)
        rc = add_unified_slow(l, r, &out[k]);
    return rc < 0 ? rc : HS_OK;
}

/*
 * A cache miss (or a hit that needs rebuilding, 'idx' >= 0): build labels,
 * append by labels, work out the unified outputs and fill the entry.
 */
static int sample_miss(struct scrape_loop *l, struct run *r, const struct scrape_entry *e, long idx,
                       uint64_t h, int64_t t, bool has_ts)
{
    char *name;
    struct hs_labels sl, fl;
    int rc = sample_labels(l, e, &name, &sl, r->err);
    if (rc != HS_OK)
        return rc;
    int kept = final_labels(l, name, &sl, false, &fl, r->err);
    if (kept < 0)
        return kept;
    if (kept) {
        if (l->job->sample_limit && r->post + 1 > l->job->sample_limit) {
            r->st.exceeded_sample_limit++;
            return hs_err_set(r->err, HS_ETOOBIG, "sample limit exceeded (limit: %llu)",
                              (unsigned long long)l->job->sample_limit);
        }
        if ((rc = check_limits(l, r, &fl)) != HS_OK)
            return rc;
    }
    bool is_new = idx < 0;
    if (is_new) {
        idx = cache_add(&l->cache, h, l->keybuf.p, l->keybuf.len);
        if (idx < 0)
            return hs_err_set(r->err, HS_ENOMEM, "out of memory in the series cache");
    }
    struct entry *en = &l->cache.v[idx];
    en->prev_seen = en->last_seen;
    en->last_seen = l->gen;
    en->flags = has_ts ? E_NOSTALE : 0;
    en->nuni = 0;
    r->st.cache_misses++;
    if (!kept) {
        en->flags |= E_DROPPED;
    } else {
        r->post++;
        uint64_t ref = 0;
        struct hs_err e2;
        rc = tsdb_appender_add(r->app, &fl, t, e->value, &ref, &e2);
        count_add(r, rc);
        if (rc == HS_OK) {
            en->ref = ref;
            if (is_new)
                r->added++;
        } else {
            en->flags |= E_NOREF;
        }
    }
    if (l->det_cur.detected == 0)
        return HS_OK;

    /* unified outputs: probe whether they follow the raw value linearly */
    struct scrape_map_acc probe;
    scrape_mapping_acc_init(&probe, &l->arena);
    struct scrape_unified_sample out[MAX_UNI], o0[MAX_UNI], o1[MAX_UNI];
    size_t n = 0, n0 = 0, n1 = 0;
    size_t nlen = strlen(name);
    rc = scrape_mapping_apply(l->map, &l->det_cur, name, nlen, &sl, e->value, loop_model(l),
                              &l->arena, &probe, out, &n, r->err);
    if (rc != HS_OK)
        return rc;
    bool slow = probe.n > 0 || e->value >= DCGM_BLANK;
    if (!slow && n > 0) {
        if ((rc = scrape_mapping_apply(l->map, &l->det_cur, name, nlen, &sl, 0.0, loop_model(l),
                                       &l->arena, NULL, o0, &n0, r->err)) != HS_OK ||
            (rc = scrape_mapping_apply(l->map, &l->det_cur, name, nlen, &sl, 1.0, loop_model(l),
                                       &l->arena, NULL, o1, &n1, r->err)) != HS_OK)
            return rc;
        slow = n0 != n || n1 != n;
        for (size_t k = 0; !slow && k < n; k++) {
            if (strcmp(o0[k].name, out[k].name) != 0 || strcmp(o1[k].name, out[k].name) != 0 ||
                hs_labels_cmp(&o0[k].labels, &out[k].labels) != 0 ||
                hs_labels_cmp(&o1[k].labels, &out[k].labels) != 0) {
                slow = true;
                break;
            }
            double a = o1[k].value;
            if (o0[k].value == 0 && !signbit(o0[k].value) &&
                same_bits(e->value * a, out[k].value)) {
                en->ukind[k] = U_MUL;
                en->ua[k] = a;
            } else if (same_bits(o0[k].value, o1[k].value) &&
                       same_bits(o0[k].value, out[k].value)) {
                en->ukind[k] = U_CONST;
                en->ua[k] = o0[k].value;
            } else {
                slow = true;
            }
        }
    }
    if (slow) {
        en->flags |= E_SLOW;
        return unified_slow(l, r, name, &sl, e->value);
    }
    for (size_t k = 0; k < n; k++) {
        int kk = final_labels(l, out[k].name, &out[k].labels, true, &fl, r->err);
        if (kk < 0)
            return kk;
        if (kk == 0) {
            en->ukind[k] = U_NONE;
            continue;
        }
        uint64_t ref = 0;
        struct hs_err e2;
        rc = tsdb_appender_add(r->app, &fl, t, out[k].value, &ref, &e2);
        count_add(r, rc);
        if (rc != HS_OK) {
            en->ukind[k] = U_NONE;
            continue;
        }
        en->uref[k] = ref;
    }
    en->nuni = (uint8_t)n;
    return HS_OK;
}

/* Key bytes of a parsed sample into l->keybuf; returns its hash. */
static int sample_key(struct scrape_loop *l, const struct scrape_entry *e, uint64_t *h)
{
    struct hs_buf *k = &l->keybuf;
    size_t need = e->name.len + 1;
    for (size_t i = 0; i < e->nlabels; i++)
        need += e->labels[i].name.len + e->labels[i].value.len + 2;
    hs_buf_reset(k);
    if (hs_buf_reserve(k, need) != HS_OK)
        return HS_ENOMEM;
    char *p = k->p;
    memcpy(p, e->name.p, e->name.len);
    p += e->name.len;
    for (size_t i = 0; i < e->nlabels; i++) {
        const struct scrape_label *pl = &e->labels[i];
        *p++ = '\xff';
        memcpy(p, pl->name.p, pl->name.len);
        p += pl->name.len;
        *p++ = '\xfe';
        memcpy(p, pl->value.p, pl->value.len);
        p += pl->value.len;
    }
    k->len = (size_t)(p - k->p);
    *h = hs_hash64(k->p, k->len, 0x5c4a9e);
    return HS_OK;
}

static int sample(struct scrape_loop *l, struct run *r, const struct scrape_entry *e)
{
    r->scraped++;
    if (r->feed_detect &&
        (e->family.p != r->last_family.p || e->family.len != r->last_family.len)) {
        r->last_family = e->family;
        int rc = scrape_detect_add(&l->det_next, e->family.p, e->family.len, false);
        if (rc != HS_OK)
            return hs_err_set(r->err, rc, "engine detection: %s", hs_strerror(rc));
    }
    uint64_t h;
    if (sample_key(l, e, &h) != HS_OK)
        return hs_err_set(r->err, HS_ENOMEM, "out of memory");
    bool has_ts = l->job->honor_timestamps && e->has_ts;
    int64_t t = has_ts ? e->t_ms : r->t_ms;
    long idx = cache_find(&l->cache, h, l->keybuf.p, l->keybuf.len);
    if (idx < 0)
        return sample_miss(l, r, e, -1, h, t, has_ts);
    struct entry *en = &l->cache.v[idx];
    if (en->last_seen == l->gen) {
        r->st.samples_duplicate++;
        return HS_OK;
    }
    if ((en->flags & E_NOREF) || (en->nuni > 0 && e->value >= DCGM_BLANK))
        return sample_miss(l, r, e, idx, h, t, has_ts);
    if (!(en->flags & E_DROPPED)) {
        if (l->job->sample_limit && r->post + 1 > l->job->sample_limit) {
            r->st.exceeded_sample_limit++;
            return hs_err_set(r->err, HS_ETOOBIG, "sample limit exceeded (limit: %llu)",
                              (unsigned long long)l->job->sample_limit);
        }
        int rc = tsdb_appender_add_ref(r->app, en->ref, t, e->value, NULL);
        if (rc == HS_ENOTFOUND)
            return sample_miss(l, r, e, idx, h, t, has_ts);
        r->post++;
        count_add(r, rc);
    }
    en->prev_seen = en->last_seen;
    en->last_seen = l->gen;
    r->st.cache_hits++;
    if (en->flags & E_SLOW) {
        char *name;
        struct hs_labels sl;
        int rc = sample_labels(l, e, &name, &sl, r->err);
        return rc != HS_OK ? rc : unified_slow(l, r, name, &sl, e->value);
    }
    for (unsigned k = 0; k < en->nuni; k++) {
        if (en->ukind[k] == U_NONE)
            continue;
        double v = en->ukind[k] == U_MUL ? e->value * en->ua[k] : en->ua[k];
        int rc = tsdb_appender_add_ref(r->app, en->uref[k], t, v, NULL);
        if (rc == HS_ENOTFOUND) {
            en->last_seen = en->prev_seen;
            return sample_miss(l, r, e, idx, h, t, has_ts);
        }
        count_add(r, rc);
    }
    return HS_OK;
}

/* Parse and append one body. */
static int process(struct scrape_loop *l, struct run *r, const char *body, size_t len, int format)
{
    struct scrape_parser p;
    struct scrape_entry e;
    scrape_parser_init(&p, body, len, format);
    int rc;
    while ((rc = scrape_parser_next(&p, &e, r->err)) > 0) {
        if (e.kind == SCRAPE_ENTRY_SAMPLE) {
            if ((rc = sample(l, r, &e)) < 0)
                break;
        } else if (e.kind == SCRAPE_ENTRY_TYPE && r->feed_detect) {
            if ((rc = scrape_detect_add(&l->det_next, e.name.p, e.name.len, false)) != HS_OK) {
                hs_err_set(r->err, rc, "engine detection: %s", hs_strerror(rc));
                break;
            }
        }
    }
    scrape_parser_cleanup(&p);
    if (rc < 0)
        return rc;
    /* combined series of the mapping */
    if (r->acc.n > 0) {
        struct scrape_unified_sample *out =
            hs_arena_alloc(&l->arena, SCRAPE_MAP_MAX_PENDING * sizeof(*out));
        size_t n = 0;
        if (out == NULL)
            return hs_err_set(r->err, HS_ENOMEM, "out of memory");
        rc = scrape_mapping_flush(l->map, &r->acc, out, SCRAPE_MAP_MAX_PENDING, &n, r->err);
        for (size_t k = 0; rc == HS_OK && k < n; k++)
            rc = add_unified_slow(l, r, &out[k]);
        if (rc < 0)
            return rc;
    }
    return HS_OK;
}

/* ---- report series ------------------------------------------------------------ */

static void report(struct scrape_loop *l, struct run *r, const double v[R_COUNT])
{
    for (int i = 0; i < R_COUNT; i++) {
        int rc = HS_ENOTFOUND;
        if (l->has_report_ref[i])
            rc = tsdb_appender_add_ref(r->app, l->report_ref[i], r->t_ms, v[i], NULL);
        if (rc == HS_ENOTFOUND) {
            uint64_t ref = 0;
            rc = tsdb_appender_add(r->app, l->report_ls[i], r->t_ms, v[i], &ref, NULL);
            if (rc == HS_OK) {
                l->report_ref[i] = ref;
                l->has_report_ref[i] = true;
            }
        }
        count_add(r, rc);
    }
    l->report_written = true;
}

/* ---- scrape ------------------------------------------------------------------- */

static void health_update(struct scrape_loop *l, struct run *r, int64_t start_ms, double dur,
                          int rc, const char *msg)
{
    pthread_mutex_lock(&l->mu);
    l->health.health = rc == HS_OK ? SCRAPE_HEALTH_UP : SCRAPE_HEALTH_DOWN;
    l->health.last_scrape_ms = start_ms;
    l->health.last_duration_s = dur;
    snprintf(l->health.last_error, sizeof(l->health.last_error), "%s", rc == HS_OK ? "" : msg);
    l->health.last_samples = r->scraped;
    l->health.last_series = l->cache.n;
    l->health.backend = l->pinned != SCRAPE_BACKEND_NONE ? l->pinned : l->det_cur.primary;
    struct scrape_stats *s = &l->stats, *d = &r->st;
    s->scrapes_total++;
    if (rc != HS_OK)
        s->scrapes_failed++;
    s->samples_scraped += r->scraped;
    s->samples_appended += d->samples_appended;
    s->samples_rejected += d->samples_rejected;
    s->samples_duplicate += d->samples_duplicate;
    s->stale_markers += d->stale_markers;
    s->cache_hits += d->cache_hits;
    s->cache_misses += d->cache_misses;
    s->exceeded_sample_limit += d->exceeded_sample_limit;
    s->exceeded_label_limits += d->exceeded_label_limits;
    s->exceeded_body_size += d->exceeded_body_size;
    pthread_mutex_unlock(&l->mu);
}

/* Undo what a rolled-back pass recorded in the caches. */
static void undo_seen(struct scrape_loop *l)
{
    for (size_t i = 0; i < l->cache.n; i++)
        if (l->cache.v[i].last_seen == l->gen)
            l->cache.v[i].last_seen = l->cache.v[i].prev_seen;
    for (size_t i = 0; i < l->dcache.n; i++)
        if (l->dcache.v[i].last_seen == l->gen)
            l->dcache.v[i].last_seen = l->dcache.v[i].prev_seen;
}

static void run_reset(struct scrape_loop *l, struct run *r)
{
    r->scraped = r->post = r->added = 0;
    memset(&r->st, 0, sizeof(r->st));
    r->last_family.p = NULL;
    r->last_family.len = 0;
    scrape_mapping_acc_init(&r->acc, &l->arena);
}

static int ref_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool ref_in(const uint64_t *v, size_t n, uint64_t ref)
{
    return bsearch(&ref, v, n, sizeof(ref), ref_cmp) != NULL;
}

/*
 * Detection changed: process the body again into a fresh cache; refs the
 * old cache saw last time and the new one lacks get stale markers.
 */
static int redo(struct scrape_loop *l, struct run *r, const char *body, size_t len, int format)
{
    tsdb_appender_rollback(r->app);
    r->app = tsdb_appender_new(l->db);
    if (r->app == NULL)
        return hs_err_set(r->err, HS_ENOMEM, "out of memory");
    undo_seen(l);
    struct cache old = l->cache;
    memset(&l->cache, 0, sizeof(l->cache));
    run_reset(l, r);
    r->feed_detect = false;
    int rc = process(l, r, body, len, format);
    if (rc == HS_OK) {
        size_t n = 0;
        uint64_t *refs = hs_malloc((l->cache.n * (MAX_UNI + 1) + 1) * sizeof(*refs));
        if (refs == NULL)
            rc = hs_err_set(r->err, HS_ENOMEM, "out of memory");
        for (size_t i = 0; refs != NULL && i < l->cache.n; i++) {
            const struct entry *e = &l->cache.v[i];
            if (!(e->flags & (E_DROPPED | E_NOREF)))
                refs[n++] = e->ref;
            for (unsigned k = 0; k < e->nuni; k++)
                if (e->ukind[k] != U_NONE)
                    refs[n++] = e->uref[k];
        }
        if (refs != NULL) {
            qsort(refs, n, sizeof(*refs), ref_cmp);
            for (size_t i = 0; i < old.n; i++) {
                const struct entry *e = &old.v[i];
                if (!seen_before(e->last_seen, l->gen) || (e->flags & E_NOSTALE))
                    continue;
                if (!(e->flags & (E_DROPPED | E_NOREF)) && !ref_in(refs, n, e->ref))
                    stale_ref(r, e->ref);
                for (unsigned k = 0; k < e->nuni; k++)
                    if (e->ukind[k] != U_NONE && !ref_in(refs, n, e->uref[k]))
                        stale_ref(r, e->uref[k]);
            }
            hs_free(refs);
        }
    }
    cache_cleanup(&old);
    return rc;
}

/* Body to parse: decompressed into l->body when gzip, checked against the limit. */
static int get_body(struct scrape_loop *l, struct run *r, const struct scrape_fetch_result *res,
                    const char **body, size_t *len)
{
    uint64_t lim = l->job->body_size_limit;
    if (res->content_encoding != NULL && strcmp(res->content_encoding, "gzip") == 0) {
        hs_buf_reset(&l->body);
        int rc = scrape_body_gunzip(res->body, res->body_len, lim ? lim : BODY_DEFAULT_MAX,
                                    &l->body, r->err);
        if (rc == HS_ETOOBIG) {
            r->st.exceeded_body_size++;
            return hs_err_set(r->err, rc, "body size limit exceeded (limit: %llu bytes)",
                              (unsigned long long)(lim ? lim : BODY_DEFAULT_MAX));
        }
        if (rc != HS_OK)
            return rc;
        *body = l->body.p;
        *len = l->body.len;
        return HS_OK;
    }
    if (lim && res->body_len > lim) {
        r->st.exceeded_body_size++;
        return hs_err_set(r->err, HS_ETOOBIG, "body size limit exceeded (limit: %llu bytes)",
                          (unsigned long long)lim);
    }
    *body = res->body != NULL ? res->body : "";
    *len = res->body_len;
    return HS_OK;
}

static bool detect_changed(const struct scrape_detect *a, const struct scrape_detect *b)
{
    return a->detected != b->detected || a->primary != b->primary || a->hints != b->hints ||
           a->fam_sig != b->fam_sig;
}

int scrape_loop_ingest(struct scrape_loop *l, int64_t start_ms, double fetch_s,
                       const struct scrape_fetch_result *res, struct hs_err *err)
{
    int64_t t0 = hs_mono_ns();
    struct hs_err lerr;
    hs_err_clear(&lerr);
    struct run r;
    memset(&r, 0, sizeof(r));
    r.err = &lerr;
    r.t_ms = start_ms;
    l->gen++;
    hs_arena_reset(&l->arena);
    run_reset(l, &r);
    r.feed_detect = l->pinned == SCRAPE_BACKEND_NONE;
    if (r.feed_detect)
        scrape_detect_reset(&l->det_next);
    const char *body = NULL;
    size_t len = 0;
    int rc;
    if (res->code != HS_OK) {
        rc = hs_err_set(&lerr, res->code, "%s",
                        res->error != NULL && res->error[0] ? res->error : hs_strerror(res->code));
    } else if (res->status != 200) {
        rc = hs_err_set(&lerr, HS_EIO, "server returned HTTP status %d %s", res->status,
                        http_status_text(res->status));
    } else {
        rc = get_body(l, &r, res, &body, &len);
    }
    int format = scrape_format_from_content_type(res->content_type);
    if (rc == HS_OK) {
        r.app = tsdb_appender_new(l->db);
        if (r.app == NULL)
            rc = hs_err_set(&lerr, HS_ENOMEM, "out of memory");
    }
    if (rc == HS_OK)
        rc = process(l, &r, body, len, format);
    if (rc == HS_OK && r.feed_detect) {
        scrape_detect_finish(&l->det_next);
        bool changed = !l->has_detect || detect_changed(&l->det_cur, &l->det_next);
        bool matters = l->det_cur.detected != 0 || l->det_next.detected != 0;
        struct scrape_detect tmp = l->det_cur;
        l->det_cur = l->det_next;
        l->det_next = tmp;
        l->has_detect = true;
        if (changed && matters) {
            rc = redo(l, &r, body, len, format);
            l->relabel = false;
        }
    }
    if (rc == HS_OK && l->relabel) {
        /* the info endpoint named the model: the series get it from now on */
        l->relabel = false;
        rc = redo(l, &r, body, len, format);
    }
    if (rc == HS_OK) {
        /* series of the previous attempt that did not come back */
        for (size_t i = 0; i < l->cache.n; i++)
            if (seen_before(l->cache.v[i].last_seen, l->gen))
                stale_entry(&r, &l->cache.v[i]);
        for (size_t i = 0; i < l->dcache.n; i++)
            if (seen_before(l->dcache.v[i].last_seen, l->gen))
                stale_ref(&r, l->dcache.v[i].ref);
    }
    double dur = fetch_s + (double)(hs_mono_ns() - t0) / 1e9;
    if (rc != HS_OK) {
        if (r.app != NULL)
            tsdb_appender_rollback(r.app);
        undo_seen(l);
        struct scrape_stats keep = r.st;
        run_reset(l, &r);
        r.st.exceeded_sample_limit = keep.exceeded_sample_limit;
        r.st.exceeded_label_limits = keep.exceeded_label_limits;
        r.st.exceeded_body_size = keep.exceeded_body_size;
        r.app = tsdb_appender_new(l->db);
        if (r.app != NULL) {
            for (size_t i = 0; i < l->cache.n; i++)
                if (seen_before(l->cache.v[i].last_seen, l->gen))
                    stale_entry(&r, &l->cache.v[i]);
            for (size_t i = 0; i < l->dcache.n; i++)
                if (seen_before(l->dcache.v[i].last_seen, l->gen))
                    stale_ref(&r, l->dcache.v[i].ref);
        }
    }
    if (r.app != NULL) {
        double v[R_COUNT] = {rc == HS_OK ? 1 : 0, dur, (double)r.scraped, (double)r.post,
                             (double)r.added};
        report(l, &r, v);
        struct hs_err cerr;
        int crc = tsdb_appender_commit(r.app, &cerr);
        if (crc != HS_OK && rc == HS_OK) {
            rc = crc;
            hs_err_set(&lerr, crc, "storing the scrape: %s", cerr.msg);
        }
    }
    if (rc == HS_OK) {
        /* forget series gone for good once they are many */
        size_t dead = 0;
        for (size_t i = 0; i < l->cache.n; i++)
            dead += l->cache.v[i].last_seen != l->gen;
        if (dead > 64 && dead * 2 > l->cache.n)
            cache_compact(&l->cache, l->gen);
        dead = 0;
        for (size_t i = 0; i < l->dcache.n; i++)
            dead += l->dcache.v[i].last_seen != l->gen;
        if (dead > 64 && dead * 2 > l->dcache.n)
            dcache_compact(&l->dcache, l->gen);
    }
    health_update(l, &r, start_ms, dur, rc, lerr.msg);
    if (rc != HS_OK && err != NULL)
        *err = lerr;
    return rc;
}

int scrape_loop_stale_all(struct scrape_loop *l, int64_t t_ms, struct hs_err *err)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    r.t_ms = t_ms;
    r.err = err;
    r.app = tsdb_appender_new(l->db);
    if (r.app == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->cache.n; i++)
        if (l->cache.v[i].last_seen == l->gen)
            stale_entry(&r, &l->cache.v[i]);
    for (size_t i = 0; i < l->dcache.n; i++)
        if (l->dcache.v[i].last_seen == l->gen)
            stale_ref(&r, l->dcache.v[i].ref);
    for (int i = 0; i < R_COUNT; i++)
        if (l->has_report_ref[i])
            stale_ref(&r, l->report_ref[i]);
    l->gen++; /* nothing is "seen last time" any more */
    int rc = tsdb_appender_commit(r.app, err);
    pthread_mutex_lock(&l->mu);
    l->stats.stale_markers += r.st.stale_markers;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- construction ------------------------------------------------------------- */

/* Reads a secret: inline value, or the file's content without trailing newlines. */
static char *secret_read(const struct scrape_secret *s, struct hs_err *err)
{
    if (s->value != NULL)
        return hs_strdup(s->value);
    if (s->file == NULL)
        return hs_strdup("");
    size_t n = 0;
    char *p = hs_read_file(s->file, 64u << 10, &n, err);
    if (p == NULL)
        return NULL;
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        p[--n] = '\0';
    return p;
}

/* "Basic base64(user:pass)" (RFC 7617). */
static int basic_auth(const char *user, const char *pass, struct hs_buf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    struct hs_buf raw;
    hs_buf_init(&raw, 1u << 16);
    int rc = hs_buf_printf(&raw, "%s:%s", user, pass);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "Basic ");
    const unsigned char *p = (const unsigned char *)raw.p;
    for (size_t i = 0; rc == HS_OK && i < raw.len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t left = raw.len - i;
        if (left > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (left > 2)
            v |= p[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], left > 1 ? tab[(v >> 6) & 63] : '=',
                     left > 2 ? tab[v & 63] : '='};
        rc = hs_buf_append(out, q, 4);
    }
    hs_buf_cleanup(&raw);
    return rc;
}

static int build_auth(struct scrape_loop *l, struct hs_err *err)
{
    const struct scrape_job *j = l->job;
    struct hs_buf b;
    hs_buf_init(&b, 1u << 16);
    int rc = HS_OK;
    if (j->has_basic_auth) {
        char *pw = secret_read(&j->basic_auth_password, err);
        if (pw == NULL)
            return err != NULL ? err->code : HS_EIO;
        rc = basic_auth(j->basic_auth_username ? j->basic_auth_username : "", pw, &b);
        hs_free(pw);
    } else if (j->has_authorization) {
        char *cred = secret_read(&j->authorization_credentials, err);
        if (cred == NULL)
            return err != NULL ? err->code : HS_EIO;
        rc = hs_buf_printf(&b, "%s %s", j->authorization_type ? j->authorization_type : "Bearer",
                           cred);
        hs_free(cred);
    } else {
        return HS_OK;
    }
    if (rc != HS_OK) {
        hs_buf_cleanup(&b);
        return hs_err_set(err, rc, "building the Authorization header: %s", hs_strerror(rc));
    }
    l->auth = hs_buf_detach(&b, NULL);
    return HS_OK;
}

char *scrape_target_url(const struct scrape_target *t, struct hs_arena *arena)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_printf(&b, "%s://%s%s%s", t->scheme ? t->scheme : "http", t->address,
                           (t->metrics_path && t->metrics_path[0] == '/') ? "" : "/",
                           t->metrics_path ? t->metrics_path : "metrics");
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; rc == HS_OK && i < t->params.n; i++) {
        rc = hs_buf_putc(&b, i == 0 && !strchr(t->metrics_path ? t->metrics_path : "", '?') ? '?'
                                                                                            : '&');
        for (int part = 0; rc == HS_OK && part < 2; part++) {
            const char *s = part == 0 ? t->params.v[i].name : t->params.v[i].value;
            if (part == 1)
                rc = hs_buf_putc(&b, '=');
            for (; rc == HS_OK && *s; s++) {
                unsigned char c = (unsigned char)*s;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~')
                    rc = hs_buf_putc(&b, (char)c);
                else {
                    char e[3] = {'%', hex[c >> 4], hex[c & 15]};
                    rc = hs_buf_append(&b, e, 3);
                }
            }
        }
    }
    char *out = rc == HS_OK ? hs_arena_strndup(arena, b.p, b.len) : NULL;
    hs_buf_cleanup(&b);
    return out;
}

static struct hs_labels *report_labels(const struct hs_labels *tl, const char *name)
{
    struct hs_label v[256];
    struct hs_labels ls = {0, v};
    if (tl->n + 1 > HS_ARRAY_LEN(v))
        return NULL;
    v[ls.n].name = "__name__";
    v[ls.n++].value = name;
    for (size_t i = 0; i < tl->n; i++)
        if (strcmp(tl->v[i].name, "__name__") != 0)
            v[ls.n++] = tl->v[i];
    hs_labels_sort(&ls);
    return hs_labels_dup(&ls);
}

int scrape_loop_new(const struct scrape_job *job, const struct scrape_target *t,
                    const struct scrape_mapping *mapping, struct tsdb *db, struct scrape_loop **out,
                    struct hs_err *err)
{
    *out = NULL;
    struct scrape_loop *l = hs_calloc(1, sizeof(*l));
    if (l == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    l->job = job;
    l->map = mapping;
    l->db = db;
    pthread_mutex_init(&l->mu, NULL);
    hs_arena_init(&l->arena, ARENA_BLOCK, 0);
    hs_buf_init(&l->body, 0);
    hs_buf_init(&l->keybuf, 0);
    scrape_detect_init(&l->det_cur);
    scrape_detect_init(&l->det_next);
    int rc = HS_ENOMEM;
    struct hs_arena tmp;
    hs_arena_init(&tmp, 4096, 0);
    l->tlabels = hs_labels_dup(&t->labels);
    l->discovered = hs_labels_dup(&t->discovered);
    const char *url = scrape_target_url(t, &tmp);
    l->url = url ? hs_strdup(url) : NULL;
    hs_arena_cleanup(&tmp);
    if (l->tlabels == NULL || l->discovered == NULL || l->url == NULL)
        goto fail;
    for (int i = 0; i < R_COUNT; i++)
        if ((l->report_ls[i] = report_labels(l->tlabels, report_names[i])) == NULL)
            goto fail;
    if ((rc = scrape_relabel_scratch_init(&l->scratch, err)) != HS_OK)
        goto fail;
    if ((rc = build_auth(l, err)) != HS_OK)
        goto fail;
    l->tmodel = hs_labels_get(l->tlabels, "model");
    if (l->tmodel != NULL && l->tmodel[0] == '\0')
        l->tmodel = NULL;
    l->tbackend = hs_labels_get(l->tlabels, "backend");
    if (l->tbackend != NULL && l->tbackend[0] == '\0')
        l->tbackend = NULL;
    const char *pin = l->tbackend != NULL ? l->tbackend : job->backend;
    l->pinned = pin != NULL ? scrape_backend_parse(pin) : SCRAPE_BACKEND_NONE;
    if (l->pinned != SCRAPE_BACKEND_NONE) {
        scrape_detect_pin(&l->det_cur, l->pinned);
        l->has_detect = true;
    }
    l->interval_ms = t->interval_ms > 0 ? t->interval_ms : job->scrape_interval_ms;
    l->timeout_ms = t->timeout_ms > 0 ? t->timeout_ms : job->scrape_timeout_ms;
    if (l->timeout_ms <= 0 || l->timeout_ms > l->interval_ms)
        l->timeout_ms = l->interval_ms;
    uint64_t h = hs_hash64(job->job_name, strlen(job->job_name), 1);
    h = hs_hash64(l->url, strlen(l->url), h);
    h ^= hs_labels_hash(l->tlabels);
    l->key = h;
    *out = l;
    return HS_OK;
fail:
    if (rc == HS_ENOMEM)
        hs_err_set(err, HS_ENOMEM, "out of memory creating a scrape loop");
    scrape_loop_free(l);
    return rc;
}

void scrape_loop_free(struct scrape_loop *l)
{
    if (l == NULL)
        return;
    cache_cleanup(&l->cache);
    dcache_cleanup(&l->dcache);
    scrape_detect_cleanup(&l->det_cur);
    scrape_detect_cleanup(&l->det_next);
    hs_free(l->info_url);
    hs_free(l->info_model);
    scrape_relabel_scratch_cleanup(&l->scratch);
    hs_arena_cleanup(&l->arena);
    hs_buf_cleanup(&l->body);
    hs_buf_cleanup(&l->keybuf);
    for (int i = 0; i < R_COUNT; i++)
        hs_labels_free(l->report_ls[i]);
    hs_labels_free(l->tlabels);
    hs_labels_free(l->discovered);
    hs_free(l->url);
    hs_free(l->auth);
    pthread_mutex_destroy(&l->mu);
    hs_free(l);
}

/* ---- accessors ------------------------------------------------------------------ */

int64_t scrape_loop_offset_ms(const struct scrape_loop *l)
{
    return l->interval_ms > 0 ? (int64_t)(l->key % (uint64_t)l->interval_ms) : 0;
}

int64_t scrape_loop_interval_ms(const struct scrape_loop *l)
{
    return l->interval_ms;
}

int64_t scrape_loop_timeout_ms(const struct scrape_loop *l)
{
    return l->timeout_ms;
}

const char *scrape_loop_url(const struct scrape_loop *l)
{
    return l->url;
}

uint64_t scrape_loop_key(const struct scrape_loop *l)
{
    return l->key;
}

void scrape_loop_request(const struct scrape_loop *l, struct scrape_fetch_request *out)
{
    memset(out, 0, sizeof(*out));
    out->url = l->url;
    out->accept = scrape_accept_header();
    out->authorization = l->auth;
    out->timeout_ms = l->timeout_ms;
    out->max_body_bytes = l->job->body_size_limit;
    out->accept_gzip = true;
    out->tls = l->job->has_tls ? &l->job->tls : NULL;
}

bool scrape_loop_info_request(struct scrape_loop *l, struct scrape_fetch_request *out)
{
    int be = l->det_cur.primary;
    if (l->info_tried || l->tmodel != NULL || l->det_cur.detected == 0 ||
        (be != SCRAPE_BACKEND_TGI && be != SCRAPE_BACKEND_LLAMACPP))
        return false;
    l->info_tried = true;
    const char *path = be == SCRAPE_BACKEND_TGI ? "/info" : "/props";
    const char *host = strstr(l->url, "://");
    host = host != NULL ? host + 3 : l->url;
    size_t base = (size_t)(host - l->url) + strcspn(host, "/?#");
    size_t n = base + strlen(path);
    hs_free(l->info_url);
    l->info_url = hs_malloc(n + 1);
    if (l->info_url == NULL)
        return false;
    memcpy(l->info_url, l->url, base);
    memcpy(l->info_url + base, path, strlen(path) + 1);
    memset(out, 0, sizeof(*out));
    out->url = l->info_url;
    out->accept = "application/json";
    out->authorization = l->auth;
    out->timeout_ms = l->timeout_ms;
    out->max_body_bytes = 1u << 20;
    out->tls = l->job->has_tls ? &l->job->tls : NULL;
    return true;
}

/* The model an info body names, or NULL with *why set. */
static char *info_model_of(int backend, const char *body, size_t len, const char **why)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    char *out = NULL;
    *why = "the answer is not a JSON object";
    if (json_is_object(root)) {
        static const char *const tgi[] = {"model_id", NULL};
        static const char *const llama[] = {"model_alias", "model_path", NULL};
        const char *const *keys = backend == SCRAPE_BACKEND_TGI ? tgi : llama;
        *why = backend == SCRAPE_BACKEND_TGI ? "no model_id in it"
                                             : "no model_alias or model_path in it";
        for (size_t i = 0; keys[i] != NULL && out == NULL; i++) {
            const char *v = json_string_value(json_object_get(root, keys[i]));
            size_t vl = v != NULL ? strlen(v) : 0;
            if (vl == 0)
                continue;
            if (vl > 1024 || !scrape__utf8_valid(v, vl)) {
                *why = "the model name is not valid UTF-8 or longer than 1 KiB";
                continue;
            }
            out = hs_strndup(v, vl);
        }
    }
    json_decref(root);
    return out;
}

void scrape_loop_info_result(struct scrape_loop *l, const struct scrape_fetch_result *res)
{
    const char *why = NULL;
    char *model = NULL;
    char status[48];
    if (res->code != HS_OK) {
        why = res->error != NULL && res->error[0] ? res->error : hs_strerror(res->code);
    } else if (res->status != 200) {
        snprintf(status, sizeof(status), "HTTP status %d", res->status);
        why = status;
    } else {
        model = info_model_of(l->det_cur.primary, res->body ? res->body : "", res->body_len, &why);
    }
    if (model == NULL) {
        hs_log(HS_LOG_WARN,
               "scrape: the engine's model could not be read; its series have no model",
               HS_LSTR("url", l->info_url ? l->info_url : l->url), HS_LSTR("reason", why));
        return;
    }
    hs_log(HS_LOG_INFO, "scrape: model read from the engine", HS_LSTR("url", l->info_url),
           HS_LSTR("model", model));
    hs_free(l->info_model);
    l->info_model = model;
    l->relabel = true;
}

void scrape_loop_health(struct scrape_loop *l, struct scrape_target_health *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->health;
    pthread_mutex_unlock(&l->mu);
}

void scrape_loop_get_stats(struct scrape_loop *l, struct scrape_stats *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->stats;
    pthread_mutex_unlock(&l->mu);
}

const struct hs_labels *scrape__loop_labels(const struct scrape_loop *l)
{
    return l->tlabels;
}

const struct hs_labels *scrape__loop_discovered(const struct scrape_loop *l)
{
    return l->discovered;
}

const struct scrape_job *scrape__loop_job(const struct scrape_loop *l)
{
    return l->job;
}
