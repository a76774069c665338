/*
 * manager.c - the scrape manager: targets from a configuration, one scrape
 * loop per active target, scheduled on the manager's own thread and
 * event_base.
 *
 * Everything that changes the target set runs on the loop thread: applying
 * a configuration (handed over from the caller's thread through a wake-up
 * event and a condition variable) and file_sd refreshes (a timer per job
 * polling mtimes).  The target list is changed only under 'mu', so readers
 * on other threads (the /api/v1/targets writer, stats) take 'mu' and see a
 * consistent list; a loop's health has its own lock inside the loop.
 *
 * Reload semantics: a target whose job settings (the job's YAML rendering),
 * labels and URL are unchanged keeps its loop, timer phase and series cache;
 * the configuration it was built from stays alive (reference counted) until
 * no loop uses it.  Removed targets get staleness markers for their series.
 *
 * Schedule: a target scrapes at offset + k * interval (offset from
 * scrape_loop_offset_ms), the Prometheus way, so targets spread over the
 * interval and keep their phase across restarts.  A tick that comes while
 * the previous fetch is still running is skipped.
 */
#include "scrape/scrape_manager.h"

#include "http/http.h"
#include "tsdb/tsdb.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A configuration shared by the loops built from it. */
struct cfgref {
    struct scrape_config *cfg;
    size_t refs; /* targets using it, + 1 while it is the current one */
    struct cfgref *next;
};

struct mjob;

struct mtarget {
    struct scrape_manager *m;
    struct scrape_loop *loop;
    struct cfgref *cfg;
    struct mjob *job; /* NULL once removed */
    uint64_t fp;      /* job fingerprint */
    struct event *timer;
    int64_t next_ms; /* wall time of the next tick */
    int64_t start_ms;
    int64_t start_ns;
    bool is_in_flight;
    bool is_removed;
    struct mtarget *znext; /* in the zombie list while removed with a fetch in flight */
};

/* A dropped target, for the API. */
struct mdropped {
    struct hs_labels *discovered;
};

/* One http_sd_configs endpoint of a job: polled every refresh_ms, its
 * last good target groups kept (a failed poll keeps them, as Prometheus). */
struct msdhttp {
    struct scrape_manager *m;
    struct mjob *job; /* NULL once the job is gone: the pending fetch frees it */
    char *url;        /* owned */
    int64_t refresh_ms;
    struct event *timer;
    bool is_in_flight;
    struct hs_arena arena; /* groups below */
    struct scrape_target_group *groups;
    size_t ngroups;
    char last_err[600];    /* last failure logged; "" after a success */
    struct msdhttp *onext; /* in m->sd_orphans while orphaned in flight */
};

struct mjob {
    struct scrape_manager *m;
    struct msdhttp **http; /* one per http_sd_configs entry */
    size_t nhttp;
    char *name;
    const struct scrape_job *job; /* of the current configuration */
    uint64_t fp;
    struct scrape_sd_file sd;
    struct event *refresh;
    struct mdropped *dropped;
    size_t ndropped;
    bool is_seen; /* in the configuration being applied */
};

struct scrape_manager {
    struct scrape_manager_options o;
    struct event_base *base;
    pthread_t thread;
    bool has_thread;
    struct event *wake;
    struct scrape_mapping *map;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    struct cfgref *cfgs; /* newest first */
    struct cfgref *cur;
    struct mtarget **targets;
    size_t ntargets, cap;
    struct mtarget *zombies;    /* removed, waiting for their fetch to complete */
    struct msdhttp *sd_orphans; /* http SD endpoints of gone jobs with a fetch in flight */
    uint64_t sd_http_refreshes, sd_http_failures;
    struct mjob **jobs;
    size_t njobs;
    struct scrape_config *pending;
    bool has_pending, is_applied, is_stopping, is_stopped;
    int apply_rc;
    struct hs_err apply_err;
    struct scrape_stats gone; /* counters of loops already freed */
};

/* ---- helpers ------------------------------------------------------------------ */

static void cfg_unref(struct scrape_manager *m, struct cfgref *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    for (struct cfgref **pp = &m->cfgs; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    scrape_config_free(c->cfg);
    hs_free(c);
}

static uint64_t job_fingerprint(const struct scrape_config *cfg, const struct scrape_job *job)
{
    /* the job's settings without its target lists (shallow copies, only
     * read by the formatter): a target list change alone keeps loops */
    struct scrape_job jc = *job;
    jc.static_configs = NULL;
    jc.nstatic = 0;
    jc.file_sd_configs = NULL;
    jc.nfile_sd = 0;
    jc.http_sd_configs = NULL;
    jc.nhttp_sd = 0;
    jc.line = jc.col = 0;
    struct scrape_config one = *cfg;
    one.jobs = &jc;
    one.njobs = 1;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    uint64_t h;
    if (scrape_config_format(&one, &b) == HS_OK)
        h = hs_hash64(b.p, b.len, 7);
    else
        h = (uint64_t)(uintptr_t)job; /* unknown: never equal to another job */
    hs_buf_cleanup(&b);
    return h;
}

static void stats_add(struct scrape_stats *a, const struct scrape_stats *b)
{
    a->scrapes_total += b->scrapes_total;
    a->scrapes_failed += b->scrapes_failed;
    a->samples_scraped += b->samples_scraped;
    a->samples_appended += b->samples_appended;
    a->samples_rejected += b->samples_rejected;
    a->samples_duplicate += b->samples_duplicate;
    a->stale_markers += b->stale_markers;
    a->cache_hits += b->cache_hits;
    a->cache_misses += b->cache_misses;
    a->exceeded_sample_limit += b->exceeded_sample_limit;
    a->exceeded_label_limits += b->exceeded_label_limits;
    a->exceeded_body_size += b->exceeded_body_size;
}

/* Stale markers, counters kept, loop freed.  Caller holds mu (or is the
 * only thread left). */
static void target_free(struct scrape_manager *m, struct mtarget *t, bool write_stale)
{
    if (t->timer != NULL)
        event_free(t->timer);
    if (t->loop != NULL) {
        struct hs_err err;
        if (write_stale && scrape_loop_stale_all(t->loop, hs_now_ms(), &err) != HS_OK)
            hs_log(HS_LOG_WARN, "scrape: staleness markers for a removed target failed",
                   HS_LSTR("url", scrape_loop_url(t->loop)), HS_LSTR("err", err.msg));
        struct scrape_stats st;
        scrape_loop_get_stats(t->loop, &st);
        stats_add(&m->gone, &st);
        scrape_loop_free(t->loop);
    }
    cfg_unref(m, t->cfg);
    hs_free(t);
}

/* ---- scheduling ---------------------------------------------------------------- */

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void schedule(struct mtarget *t, int64_t now_ms)
{
    int64_t iv = scrape_loop_interval_ms(t->loop);
    if (iv <= 0)
        iv = 60000;
    if (t->next_ms == 0) {
        int64_t off = t->m->o.disable_jitter ? 0 : scrape_loop_offset_ms(t->loop);
        int64_t base = now_ms - now_ms % iv;
        t->next_ms = base + off;
        if (t->next_ms < now_ms)
            t->next_ms += iv;
    } else {
        t->next_ms += iv;
        if (t->next_ms < now_ms) /* fell behind: next future tick */
            t->next_ms += ((now_ms - t->next_ms) / iv + 1) * iv;
    }
    int64_t d = t->next_ms - now_ms;
    if (d < 0)
        d = 0;
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
    event_add(t->timer, &tv);
}

/* A fetch of 't' completed: true when the target was removed meanwhile
 * (it is freed now and the result is dropped). */
static bool target_settle(struct mtarget *t)
{
    struct scrape_manager *m = t->m;
    t->is_in_flight = false;
    if (!t->is_removed)
        return false;
    pthread_mutex_lock(&m->mu);
    for (struct mtarget **pp = &m->zombies; *pp; pp = &(*pp)->znext) {
        if (*pp == t) {
            *pp = t->znext;
            break;
        }
    }
    target_free(m, t, true);
    pthread_mutex_unlock(&m->mu);
    return true;
}

static void info_done(void *arg, const struct scrape_fetch_result *res);

static void fetch_done(void *arg, const struct scrape_fetch_result *res)
{
    struct mtarget *t = arg;
    struct scrape_manager *m = t->m;
    if (target_settle(t))
        return;
    double fetch_s = (double)(hs_mono_ns() - t->start_ns) / 1e9;
    struct scrape_target_health before;
    scrape_loop_health(t->loop, &before);
    struct hs_err err;
    int rc = scrape_loop_ingest(t->loop, t->start_ms, fetch_s, res, &err);
    if (rc != HS_OK &&
        (before.health != SCRAPE_HEALTH_DOWN || strcmp(before.last_error, err.msg) != 0))
        hs_log(HS_LOG_WARN, "scrape failed", HS_LSTR("url", scrape_loop_url(t->loop)),
               HS_LSTR("err", err.msg));
    /* an engine without model labels: ask it for its model, as the target's
     * in-flight request (a tick that comes meanwhile is skipped) */
    struct scrape_fetch_request rq;
    if (rc == HS_OK && scrape_loop_info_request(t->loop, &rq)) {
        t->is_in_flight = true;
        if (m->o.fetcher.fetch(m->o.fetcher.arg, m->base, &rq, info_done, t) != HS_OK) {
            t->is_in_flight = false;
            struct scrape_fetch_result fail = {0};
            fail.code = HS_EIO;
            fail.error = "the request could not be started";
            scrape_loop_info_result(t->loop, &fail);
        }
    }
}

static void info_done(void *arg, const struct scrape_fetch_result *res)
{
    struct mtarget *t = arg;
    if (target_settle(t))
        return;
    scrape_loop_info_result(t->loop, res);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mtarget *t = arg;
    int64_t now = hs_now_ms();
    schedule(t, now);
    if (t->is_in_flight)
        return;
    struct scrape_fetch_request rq;
    scrape_loop_request(t->loop, &rq);
    t->start_ms = now;
    t->start_ns = hs_mono_ns();
    t->is_in_flight = true;
    int rc = t->m->o.fetcher.fetch(t->m->o.fetcher.arg, t->m->base, &rq, fetch_done, t);
    if (rc != HS_OK) {
        t->is_in_flight = false;
        struct scrape_fetch_result res = {0};
        res.code = rc;
        res.error = "the request could not be started";
        fetch_done(t, &res);
    }
}

/* ---- applying a configuration ---------------------------------------------------- */

static struct mjob *job_find(struct scrape_manager *m, const char *name)
{
    for (size_t i = 0; i < m->njobs; i++)
        if (strcmp(m->jobs[i]->name, name) == 0)
            return m->jobs[i];
    return NULL;
}

static void dropped_clear(struct mjob *j)
{
    for (size_t i = 0; i < j->ndropped; i++)
        hs_labels_free(j->dropped[i].discovered);
    hs_free(j->dropped);
    j->dropped = NULL;
    j->ndropped = 0;
}

static int targets_push(struct scrape_manager *m, struct mtarget *t)
{
    if (m->ntargets == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct mtarget **v = hs_reallocarray(m->targets, cap, sizeof(*v));
        if (v == NULL)
            return HS_ENOMEM;
        m->targets = v;
        m->cap = cap;
    }
    m->targets[m->ntargets++] = t;
    return HS_OK;
}

/* Remove target i from the list (order not kept) and retire it. */
static void target_remove(struct scrape_manager *m, size_t i)
{
    struct mtarget *t = m->targets[i];
    m->targets[i] = m->targets[--m->ntargets];
    t->job = NULL;
    if (t->timer != NULL)
        event_del(t->timer);
    if (t->is_in_flight) {
        t->is_removed = true; /* freed when its fetch completes */
        t->znext = m->zombies;
        m->zombies = t;
    } else
        target_free(m, t, true);
}

/*
 * Bring the targets of job 'j' in line with its configuration and
 * discovered groups.  Caller holds mu, on the loop thread.
 */
static int job_sync(struct scrape_manager *m, struct mjob *j, struct hs_err *err)
{
    struct scrape_target_list tl;
    scrape_target_list_init(&tl);
    /* file_sd groups, then each http_sd endpoint's */
    const struct scrape_target_group *groups = j->sd.groups;
    size_t ngroups = j->sd.ngroups;
    struct scrape_target_group *all = NULL;
    if (j->nhttp > 0) {
        for (size_t i = 0; i < j->nhttp; i++)
            ngroups += j->http[i]->ngroups;
        all = hs_calloc(ngroups + 1, sizeof(*all));
        if (all == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        size_t o = 0;
        for (size_t i = 0; i < j->sd.ngroups; i++)
            all[o++] = j->sd.groups[i];
        for (size_t i = 0; i < j->nhttp; i++)
            for (size_t k = 0; k < j->http[i]->ngroups; k++)
                all[o++] = j->http[i]->groups[k];
        groups = all;
    }
    int rc = scrape_targets_build(j->job, groups, ngroups, &tl, err);
    hs_free(all);
    if (rc != HS_OK) {
        scrape_target_list_cleanup(&tl);
        return rc;
    }
    size_t nnew = 0;
    struct mtarget **keep = hs_calloc(tl.nactive + 1, sizeof(*keep));
    struct scrape_loop **fresh = hs_calloc(tl.nactive + 1, sizeof(*fresh));
    if (keep == NULL || fresh == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    /* build loops first so that a failure changes nothing */
    for (size_t i = 0; i < tl.nactive; i++) {
        if ((rc = scrape_loop_new(j->job, &tl.v[i], m->map, m->o.db, &fresh[i], err)) != HS_OK)
            goto out;
        uint64_t key = scrape_loop_key(fresh[i]);
        for (size_t k = 0; k < m->ntargets; k++) {
            struct mtarget *t = m->targets[k];
            if (t->job == j && t->fp == j->fp && scrape_loop_key(t->loop) == key &&
                strcmp(scrape_loop_url(t->loop), scrape_loop_url(fresh[i])) == 0 &&
                hs_labels_cmp(scrape__loop_labels(t->loop), scrape__loop_labels(fresh[i])) == 0) {
                keep[i] = t;
                break;
            }
        }
    }
    /* dropped targets for the API */
    struct mdropped *dv = hs_calloc(tl.n - tl.nactive + 1, sizeof(*dv));
    if (dv == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    size_t nd = 0;
    for (size_t i = tl.nactive; i < tl.n; i++) {
        if ((dv[nd].discovered = hs_labels_dup(&tl.v[i].discovered)) == NULL)
            break;
        nd++;
    }
    if (nd != tl.n - tl.nactive) {
        for (size_t i = 0; i < nd; i++)
            hs_labels_free(dv[i].discovered);
        hs_free(dv);
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    dropped_clear(j);
    j->dropped = dv;
    j->ndropped = nd;
    /* retire targets of this job that are not kept */
    for (size_t k = m->ntargets; k-- > 0;) {
        struct mtarget *t = m->targets[k];
        if (t->job != j)
            continue;
        bool kept = false;
        for (size_t i = 0; i < tl.nactive && !kept; i++)
            kept = keep[i] == t;
        if (!kept)
            target_remove(m, k);
    }
    /* start the new ones */
    int64_t now = hs_now_ms();
    for (size_t i = 0; i < tl.nactive; i++) {
        if (keep[i] != NULL)
            continue;
        struct mtarget *t = hs_calloc(1, sizeof(*t));
        if (t == NULL || targets_push(m, t) != HS_OK) {
            hs_free(t);
            hs_log(HS_LOG_ERROR, "scrape: out of memory starting a target",
                   HS_LSTR("url", scrape_loop_url(fresh[i])));
            continue;
        }
        t->m = m;
        t->loop = fresh[i];
        fresh[i] = NULL;
        t->job = j;
        t->fp = j->fp;
        t->cfg = m->cur;
        m->cur->refs++;
        t->timer = event_new(m->base, -1, 0, timer_cb, t);
        if (t->timer != NULL)
            schedule(t, now);
        nnew++;
    }
    rc = HS_OK;
out:
    for (size_t i = 0; fresh != NULL && i < tl.nactive; i++)
        scrape_loop_free(fresh[i]);
    hs_free(fresh);
    hs_free(keep);
    scrape_target_list_cleanup(&tl);
    (void)nnew;
    return rc;
}

static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mjob *j = arg;
    struct scrape_manager *m = j->m;
    bool changed = false;
    struct hs_err err;
    pthread_mutex_lock(&m->mu);
    int rc =
        scrape_sd_file_refresh(&j->sd, j->job->file_sd_configs, j->job->nfile_sd, &changed, &err);
    if (rc == HS_OK && changed)
        rc = job_sync(m, j, &err);
    pthread_mutex_unlock(&m->mu);
    if (rc != HS_OK)
        hs_log(HS_LOG_WARN, "scrape: file_sd refresh failed", HS_LSTR("job", j->name),
               HS_LSTR("err", err.msg));
}

/* ---- http_sd_configs ------------------------------------------------------------- */

static void sdhttp_free(struct msdhttp *h)
{
    if (h->timer != NULL)
        event_free(h->timer);
    hs_arena_cleanup(&h->arena);
    hs_free(h->url);
    hs_free(h);
}

/* Leaves 'h' to its pending fetch, or frees it now.  Caller holds mu. */
static void sdhttp_retire(struct scrape_manager *m, struct msdhttp *h)
{
    h->job = NULL;
    if (h->timer != NULL) {
        event_free(h->timer);
        h->timer = NULL;
    }
    if (!h->is_in_flight) {
        sdhttp_free(h);
        return;
    }
    h->onext = m->sd_orphans;
    m->sd_orphans = h;
}

static void sdhttp_fail(struct msdhttp *h, const char *why)
{
    h->m->sd_http_failures++;
    if (strcmp(h->last_err, why) != 0) {
        snprintf(h->last_err, sizeof(h->last_err), "%s", why);
        hs_log(HS_LOG_WARN, "scrape: http_sd refresh failed; keeping the last targets",
               HS_LSTR("job", h->job->name), HS_LSTR("url", h->url), HS_LSTR("err", why));
    }
}

static void sdhttp_done(void *arg, const struct scrape_fetch_result *res)
{
    struct msdhttp *h = arg;
    struct scrape_manager *m = h->m;
    pthread_mutex_lock(&m->mu);
    h->is_in_flight = false;
    if (h->job == NULL) { /* the job went away meanwhile */
        for (struct msdhttp **pp = &m->sd_orphans; *pp; pp = &(*pp)->onext)
            if (*pp == h) {
                *pp = h->onext;
                break;
            }
        sdhttp_free(h);
        pthread_mutex_unlock(&m->mu);
        return;
    }
    m->sd_http_refreshes++;
    char why[600];
    const char *ct = res->content_type != NULL ? res->content_type : "";
    if (res->code != HS_OK) {
        snprintf(why, sizeof(why), "%s",
                 res->error != NULL && res->error[0] ? res->error : hs_strerror(res->code));
    } else if (res->status != 200) {
        snprintf(why, sizeof(why), "server returned HTTP status %d %s", res->status,
                 http_status_text(res->status));
    } else if (strncasecmp(ct, "application/json", 16) != 0) {
        snprintf(why, sizeof(why), "unsupported content type \"%s\" (want application/json)", ct);
    } else {
        struct hs_arena a;
        hs_arena_init(&a, 16384, 0);
        struct scrape_target_group *g = NULL;
        size_t n = 0;
        struct hs_err perr;
        hs_err_clear(&perr);
        int rc = scrape_sd_http_parse(h->url, res->body ? res->body : "", res->body_len, &a, &g, &n,
                                      &perr);
        if (rc == HS_OK) {
            hs_arena_cleanup(&h->arena);
            h->arena = a;
            h->groups = g;
            h->ngroups = n;
            if (h->last_err[0] != '\0')
                hs_log(HS_LOG_INFO, "scrape: http_sd refresh works again",
                       HS_LSTR("job", h->job->name), HS_LSTR("url", h->url));
            h->last_err[0] = '\0';
            struct hs_err err;
            if (job_sync(m, h->job, &err) != HS_OK)
                hs_log(HS_LOG_WARN, "scrape: applying http_sd targets failed",
                       HS_LSTR("job", h->job->name), HS_LSTR("err", err.msg));
            pthread_mutex_unlock(&m->mu);
            return;
        }
        hs_arena_cleanup(&a);
        snprintf(why, sizeof(why), "%s", perr.msg);
    }
    sdhttp_fail(h, why);
    pthread_mutex_unlock(&m->mu);
}

static void sdhttp_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct msdhttp *h = arg;
    struct scrape_manager *m = h->m;
    pthread_mutex_lock(&m->mu);
    if (h->is_in_flight || h->job == NULL) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    struct scrape_fetch_request rq;
    memset(&rq, 0, sizeof(rq));
    rq.url = h->url;
    rq.accept = "application/json";
    rq.timeout_ms = h->refresh_ms < 30000 ? h->refresh_ms : 30000;
    rq.max_body_bytes = SCRAPE_SD_FILE_MAX_BYTES;
    rq.accept_gzip = true;
    h->is_in_flight = true;
    pthread_mutex_unlock(&m->mu);
    int rc = m->o.fetcher.fetch(m->o.fetcher.arg, m->base, &rq, sdhttp_done, h);
    if (rc != HS_OK) {
        struct scrape_fetch_result res = {0};
        res.code = rc;
        res.error = "the request could not be started";
        sdhttp_done(h, &res);
    }
}

/* Brings a job's http SD endpoints in line with its configuration: an
 * endpoint whose URL stays keeps its targets, new ones are polled at once.
 * Caller holds mu, on the loop thread. */
static int job_sdhttp(struct scrape_manager *m, struct mjob *j, struct hs_err *err)
{
    const struct scrape_job *job = j->job;
    struct msdhttp **v = hs_calloc(job->nhttp_sd + 1, sizeof(*v));
    if (v == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < job->nhttp_sd; i++) {
        const struct scrape_http_sd_config *c = &job->http_sd_configs[i];
        for (size_t k = 0; k < j->nhttp && v[i] == NULL; k++)
            if (j->http[k] != NULL && strcmp(j->http[k]->url, c->url) == 0) {
                v[i] = j->http[k];
                j->http[k] = NULL;
            }
        bool fresh = v[i] == NULL;
        if (fresh) {
            struct msdhttp *h = hs_calloc(1, sizeof(*h));
            if (h == NULL || (h->url = hs_strdup(c->url)) == NULL ||
                (h->timer = event_new(m->base, -1, EV_PERSIST, sdhttp_timer_cb, h)) == NULL) {
                if (h != NULL)
                    hs_free(h->url);
                hs_free(h);
                for (size_t k = 0; k < i; k++) /* put back what was taken */
                    sdhttp_retire(m, v[k]);
                hs_free(v);
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            }
            h->m = m;
            hs_arena_init(&h->arena, 16384, 0);
            v[i] = h;
        }
        v[i]->job = j;
        v[i]->refresh_ms = c->refresh_interval_ms > 0 ? c->refresh_interval_ms : 60000;
        struct timeval tv = {(time_t)(v[i]->refresh_ms / 1000),
                             (suseconds_t)((v[i]->refresh_ms % 1000) * 1000)};
        event_add(v[i]->timer, &tv);
        if (fresh)
            event_active(v[i]->timer, EV_TIMEOUT, 0);
    }
    for (size_t k = 0; k < j->nhttp; k++)
        if (j->http[k] != NULL)
            sdhttp_retire(m, j->http[k]);
    hs_free(j->http);
    j->http = v;
    j->nhttp = job->nhttp_sd;
    return HS_OK;
}

static void job_free(struct mjob *j)
{
    for (size_t i = 0; i < j->nhttp; i++)
        sdhttp_retire(j->m, j->http[i]);
    hs_free(j->http);
    if (j->refresh != NULL)
        event_free(j->refresh);
    scrape_sd_file_cleanup(&j->sd);
    dropped_clear(j);
    hs_free(j->name);
    hs_free(j);
}

static int64_t sd_refresh_ms(const struct scrape_job *job)
{
    int64_t ms = 0;
    for (size_t i = 0; i < job->nfile_sd; i++)
        if (ms == 0 || job->file_sd_configs[i].refresh_interval_ms < ms)
            ms = job->file_sd_configs[i].refresh_interval_ms;
    return ms > 0 ? ms : 300000;
}

/* On the loop thread, with mu held. */
static int apply(struct scrape_manager *m, struct scrape_config *cfg, struct hs_err *err)
{
    struct cfgref *c = hs_calloc(1, sizeof(*c));
    if (c == NULL) {
        scrape_config_free(cfg);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    c->cfg = cfg;
    c->refs = 1;
    c->next = m->cfgs;
    m->cfgs = c;
    struct cfgref *old = m->cur;
    m->cur = c;
    int rc = HS_OK;
    for (size_t i = 0; i < m->njobs; i++)
        m->jobs[i]->is_seen = false;
    for (size_t i = 0; i < cfg->njobs && rc == HS_OK; i++) {
        const struct scrape_job *job = &cfg->jobs[i];
        struct mjob *j = job_find(m, job->job_name);
        if (j == NULL) {
            struct mjob **v = hs_reallocarray(m->jobs, m->njobs + 1, sizeof(*v));
            j = hs_calloc(1, sizeof(*j));
            if (v != NULL)
                m->jobs = v;
            if (v == NULL || j == NULL || (j->name = hs_strdup(job->job_name)) == NULL) {
                hs_free(j);
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
                break;
            }
            j->m = m;
            scrape_sd_file_init(&j->sd);
            m->jobs[m->njobs++] = j;
        }
        j->job = job;
        j->fp = job_fingerprint(cfg, job);
        j->is_seen = true;
        if (job->nfile_sd > 0) {
            bool changed;
            struct hs_err e2;
            if (scrape_sd_file_refresh(&j->sd, job->file_sd_configs, job->nfile_sd, &changed,
                                       &e2) != HS_OK)
                hs_log(HS_LOG_WARN, "scrape: file_sd refresh failed", HS_LSTR("job", j->name),
                       HS_LSTR("err", e2.msg));
            if (j->refresh == NULL)
                j->refresh = event_new(m->base, -1, EV_PERSIST, refresh_cb, j);
            if (j->refresh != NULL) {
                int64_t ms = sd_refresh_ms(job);
                struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
                event_add(j->refresh, &tv);
            }
        } else if (j->refresh != NULL) {
            event_free(j->refresh);
            j->refresh = NULL;
        }
        rc = job_sdhttp(m, j, err);
        if (rc == HS_OK)
            rc = job_sync(m, j, err);
    }
    if (rc != HS_OK) {
        /* keep what runs; the new configuration serves only the jobs synced */
        hs_log(HS_LOG_ERROR, "scrape: applying the configuration failed",
               HS_LSTR("err", err != NULL ? err->msg : ""));
    }
    /* jobs gone from the configuration */
    for (size_t i = m->njobs; rc == HS_OK && i-- > 0;) {
        struct mjob *j = m->jobs[i];
        if (j->is_seen)
            continue;
        for (size_t k = m->ntargets; k-- > 0;)
            if (m->targets[k]->job == j)
                target_remove(m, k);
        job_free(j);
        m->jobs[i] = m->jobs[--m->njobs];
    }
    /* after a failure, jobs not synced may still point into the old
     * configuration: it stays alive until the manager is freed */
    if (rc == HS_OK)
        cfg_unref(m, old);
    return rc;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct scrape_manager *m = arg;
    pthread_mutex_lock(&m->mu);
    if (m->has_pending) {
        struct scrape_config *cfg = m->pending;
        m->pending = NULL;
        m->has_pending = false;
        hs_err_clear(&m->apply_err);
        m->apply_rc = apply(m, cfg, &m->apply_err);
        m->is_applied = true;
        pthread_cond_broadcast(&m->cond);
    }
    if (m->is_stopping && !m->is_stopped) {
        for (size_t k = m->ntargets; k-- > 0;)
            target_remove(m, k);
        if (m->o.fetcher.shutdown != NULL)
            m->o.fetcher.shutdown(m->o.fetcher.arg);
        /* fetches the fetcher cancelled never complete: their targets stay in
         * the zombie list and are freed by scrape_manager_free */
        m->is_stopped = true;
        event_base_loopbreak(m->base);
    }
    pthread_mutex_unlock(&m->mu);
}

static void *thread_main(void *arg)
{
    struct scrape_manager *m = arg;
    event_base_loop(m->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------ */

int scrape_manager_new(const struct scrape_manager_options *o, struct scrape_manager **out,
                       struct hs_err *err)
{
    *out = NULL;
    if (o == NULL || o->fetcher.fetch == NULL || o->db == NULL)
        return hs_err_set(err, HS_EINVAL, "scrape manager: a fetcher and a store are required");
    if (evthread_use_pthreads() != 0)
        return hs_err_set(err, HS_EIO, "scrape manager: libevent has no thread support");
    struct scrape_manager *m = hs_calloc(1, sizeof(*m));
    if (m == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    m->o = *o;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cond, NULL);
    int rc = scrape_mapping_new(&m->map, err);
    if (rc != HS_OK)
        goto fail;
    m->base = event_base_new();
    if (m->base == NULL || (m->wake = event_new(m->base, -1, 0, wake_cb, m)) == NULL) {
        rc = hs_err_set(err, HS_EIO, "scrape manager: cannot create its event loop");
        goto fail;
    }
    if (pthread_create(&m->thread, NULL, thread_main, m) != 0) {
        rc = hs_err_set(err, HS_EIO, "scrape manager: cannot start its thread");
        goto fail;
    }
    m->has_thread = true;
    *out = m;
    return HS_OK;
fail:
    scrape_manager_free(m);
    return rc;
}

int scrape_manager_apply(struct scrape_manager *m, struct scrape_config *cfg, struct hs_err *err)
{
    pthread_mutex_lock(&m->mu);
    if (m->is_stopping) {
        pthread_mutex_unlock(&m->mu);
        scrape_config_free(cfg);
        return hs_err_set(err, HS_ECLOSED, "scrape manager is stopping");
    }
    while (m->has_pending) /* another caller's configuration goes first */
        pthread_cond_wait(&m->cond, &m->mu);
    m->pending = cfg;
    m->has_pending = true;
    m->is_applied = false;
    event_active(m->wake, EV_READ, 0);
    while (!m->is_applied)
        pthread_cond_wait(&m->cond, &m->mu);
    int rc = m->apply_rc;
    if (rc != HS_OK && err != NULL)
        *err = m->apply_err;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void scrape_manager_free(struct scrape_manager *m)
{
    if (m == NULL)
        return;
    if (m->has_thread) {
        pthread_mutex_lock(&m->mu);
        m->is_stopping = true;
        event_active(m->wake, EV_READ, 0);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    /* targets whose fetch was cancelled by the fetcher's shutdown */
    for (size_t k = 0; k < m->ntargets; k++)
        target_free(m, m->targets[k], false);
    hs_free(m->targets);
    while (m->zombies != NULL) {
        struct mtarget *t = m->zombies;
        m->zombies = t->znext;
        target_free(m, t, true);
    }
    for (size_t i = 0; i < m->njobs; i++)
        job_free(m->jobs[i]);
    hs_free(m->jobs);
    while (m->sd_orphans != NULL) { /* their fetches were cancelled by the fetcher's shutdown */
        struct msdhttp *h = m->sd_orphans;
        m->sd_orphans = h->onext;
        sdhttp_free(h);
    }
    if (m->cur != NULL)
        cfg_unref(m, m->cur);
    while (m->cfgs != NULL) { /* only targets freed on a cancelled fetch hold these */
        struct cfgref *c = m->cfgs;
        m->cfgs = c->next;
        scrape_config_free(c->cfg);
        hs_free(c);
    }
    if (m->wake != NULL)
        event_free(m->wake);
    if (m->base != NULL)
        event_base_free(m->base);
    scrape_mapping_free(m->map);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mu);
    hs_free(m);
}

void scrape_manager_get_stats(struct scrape_manager *m, struct scrape_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&m->mu);
    *out = m->gone;
    out->targets_up = out->targets_down = out->targets_unknown = 0;
    out->sd_http_refreshes = m->sd_http_refreshes;
    out->sd_http_failures = m->sd_http_failures;
    for (size_t i = 0; i < m->ntargets; i++) {
        struct scrape_stats st;
        struct scrape_target_health h;
        scrape_loop_get_stats(m->targets[i]->loop, &st);
        scrape_loop_health(m->targets[i]->loop, &h);
        stats_add(out, &st);
        if (h.health == SCRAPE_HEALTH_UP)
            out->targets_up++;
        else if (h.health == SCRAPE_HEALTH_DOWN)
            out->targets_down++;
        else
            out->targets_unknown++;
    }
    pthread_mutex_unlock(&m->mu);
}

size_t scrape_manager_ntargets(struct scrape_manager *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->ntargets;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int scrape_manager_target_health(struct scrape_manager *m, const char *job, const char *instance,
                                 struct scrape_target_health *out)
{
    int rc = HS_ENOTFOUND;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->ntargets && rc != HS_OK; i++) {
        struct mtarget *t = m->targets[i];
        const char *in = hs_labels_get(scrape__loop_labels(t->loop), "instance");
        if (strcmp(t->job->name, job) == 0 && in != NULL && strcmp(in, instance) == 0) {
            scrape_loop_health(t->loop, out);
            rc = HS_OK;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- /api/v1/targets ----------------------------------------------------------------- */

static int json_labels(struct hs_buf *b, const struct hs_labels *ls)
{
    int rc = hs_buf_putc(b, '{');
    for (size_t i = 0; rc == HS_OK && i < ls->n; i++) {
        if (i > 0)
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

static void rfc3339(int64_t ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "0001-01-01T00:00:00Z");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char d[32];
    strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03dZ", d, (int)(ms % 1000));
}

static const char *health_name(int h)
{
    return h == SCRAPE_HEALTH_UP ? "up" : h == SCRAPE_HEALTH_DOWN ? "down" : "unknown";
}

static int json_active(struct hs_buf *b, struct mtarget *t)
{
    struct scrape_target_health h;
    scrape_loop_health(t->loop, &h);
    char ts[64], iv[32], to[32], dur[32];
    rfc3339(h.last_scrape_ms, ts, sizeof(ts));
    hs_format_duration(scrape_loop_interval_ms(t->loop), iv, sizeof(iv));
    hs_format_duration(scrape_loop_timeout_ms(t->loop), to, sizeof(to));
    hs_format_double(h.last_duration_s, dur, sizeof(dur));
    const char *url = scrape_loop_url(t->loop);
    int rc = hs_buf_puts(b, "{\"discoveredLabels\":");
    if (rc == HS_OK)
        rc = json_labels(b, scrape__loop_discovered(t->loop));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"labels\":");
    if (rc == HS_OK)
        rc = json_labels(b, scrape__loop_labels(t->loop));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"scrapePool\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, t->job->name, strlen(t->job->name));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"scrapeUrl\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, url, strlen(url));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"globalUrl\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, url, strlen(url));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"lastError\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, h.last_error, strlen(h.last_error));
    if (rc == HS_OK)
        rc = hs_buf_printf(b,
                           ",\"lastScrape\":\"%s\",\"lastScrapeDuration\":%s,\"health\":\"%s\","
                           "\"scrapeInterval\":\"%s\",\"scrapeTimeout\":\"%s\"}",
                           ts, dur, health_name(h.health), iv, to);
    return rc;
}

int scrape_manager_targets_json(struct scrape_manager *m, const char *state, struct hs_buf *out,
                                struct hs_err *err)
{
    bool active = true, dropped = true;
    if (state != NULL && state[0] != '\0' && strcmp(state, "any") != 0) {
        if (strcmp(state, "active") == 0)
            dropped = false;
        else if (strcmp(state, "dropped") == 0)
            active = false;
        else
            return hs_err_set(err, HS_EINVAL, "invalid state %s: must be active, dropped or any",
                              state);
    }
    size_t mark = out->len;
    pthread_mutex_lock(&m->mu);
    int rc = hs_buf_puts(out, "{\"activeTargets\":[");
    bool first = true;
    for (size_t j = 0; active && rc == HS_OK && j < m->njobs; j++) {
        for (size_t i = 0; rc == HS_OK && i < m->ntargets; i++) {
            if (m->targets[i]->job != m->jobs[j])
                continue;
            if (!first)
                rc = hs_buf_putc(out, ',');
            first = false;
            if (rc == HS_OK)
                rc = json_active(out, m->targets[i]);
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "],\"droppedTargets\":[");
    first = true;
    for (size_t j = 0; dropped && rc == HS_OK && j < m->njobs; j++) {
        struct mjob *jb = m->jobs[j];
        for (size_t i = 0; rc == HS_OK && i < jb->ndropped; i++) {
            if (!first)
                rc = hs_buf_putc(out, ',');
            first = false;
            if (rc == HS_OK)
                rc = hs_buf_puts(out, "{\"discoveredLabels\":");
            if (rc == HS_OK)
                rc = json_labels(out, jb->dropped[i].discovered);
            if (rc == HS_OK)
                rc = hs_buf_puts(out, ",\"scrapePool\":");
            if (rc == HS_OK)
                rc = hs_buf_json_str(out, jb->name, strlen(jb->name));
            if (rc == HS_OK)
                rc = hs_buf_putc(out, '}');
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "]}");
    pthread_mutex_unlock(&m->mu);
    if (rc != HS_OK) {
        out->len = mark;
        if (out->p != NULL)
            out->p[mark] = '\0';
        return hs_err_set(err, rc, "targets: %s", hs_strerror(rc));
    }
    return HS_OK;
}

int scrape_manager_targets_api(void *arg, struct http_request *r, struct hs_buf *out,
                               struct hs_err *err)
{
    return scrape_manager_targets_json(arg, http_request_param(r, "state"), out, err);
}
