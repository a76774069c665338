/*
 * collect.c - the collector object: configuration, the round that runs
 * every enabled back-end (host.c, gpu.c) into one sink, the tsdb sink that
 * makes a round one appender batch, the thread that runs a round every
 * interval, and the self-metrics of each collector.
 *
 * Rounds are serialised by run_mu, so the thread and a caller of
 * collect_run_once never interleave (the back-ends keep per-round state:
 * XID counters, the process table).  The thread waits on a condition
 * variable against CLOCK_MONOTONIC, so collect_stop wakes it at once.
 */
#include "collect/collect.h"
#include "collect/internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct collect {
    struct collect_config cfg; /* strings point into the owned copies below */
    char *proc_root, *sys_root, *rootfs, *nvml_path, *hostname; /* owned */
    struct tsdb *db;                                            /* borrowed */
    struct collect__host *host;                                 /* NULL when disabled */
    struct collect__gpu *gpu;                                   /* NULL when disabled */
    struct collect__gpumap gpumap; /* listener pids of local engine targets (run_mu) */

    pthread_mutex_t run_mu; /* one round at a time */
    pthread_mutex_t mu;     /* guards stats, is_stopping */
    pthread_cond_t cond;    /* signalled by collect_stop */
    struct collect_stats stats;
    bool is_started;  /* thread exists; owner thread only */
    bool is_stopping; /* under mu */
    pthread_t thread;
};

void collect_config_defaults(struct collect_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host_enabled = true;
    cfg->gpu_enabled = true;
    cfg->interval_ms = COLLECT_DEFAULT_INTERVAL_MS;
    cfg->proc_root = "/proc";
    cfg->sys_root = "/sys";
    cfg->rootfs = "";
    cfg->nvml_path = "libnvidia-ml.so.1";
    cfg->hostname = NULL;
}

static char *dup_or(const char *s, const char *dflt)
{
    return hs_strdup(s != NULL ? s : dflt);
}

static int copy_config(struct collect *c, const struct collect_config *cfg, struct hs_err *err)
{
    c->cfg = *cfg;
    if (c->cfg.interval_ms <= 0)
        c->cfg.interval_ms = COLLECT_DEFAULT_INTERVAL_MS;
    char host[256] = "";
    if (cfg->hostname == NULL || cfg->hostname[0] == '\0') {
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
            memcpy(host, "localhost", sizeof("localhost"));
        host[sizeof(host) - 1] = '\0';
    }
    c->proc_root = dup_or(cfg->proc_root, "/proc");
    c->sys_root = dup_or(cfg->sys_root, "/sys");
    c->rootfs = dup_or(cfg->rootfs, "");
    c->nvml_path = dup_or(cfg->nvml_path, "libnvidia-ml.so.1");
    c->hostname = hs_strdup(host[0] != '\0' ? host : cfg->hostname);
    if (!c->proc_root || !c->sys_root || !c->rootfs || !c->nvml_path || !c->hostname)
        return hs_err_set(err, HS_ENOMEM, "out of memory copying the collector configuration");
    c->cfg.proc_root = c->proc_root;
    c->cfg.sys_root = c->sys_root;
    c->cfg.rootfs = c->rootfs;
    c->cfg.nvml_path = c->nvml_path;
    c->cfg.hostname = c->hostname;
    return HS_OK;
}

struct collect *collect_new(const struct collect_config *cfg, struct tsdb *db, struct hs_err *err)
{
    if (cfg == NULL) {
        hs_err_set(err, HS_EINVAL, "collect: no configuration");
        return NULL;
    }
    struct collect *c = hs_calloc(1, sizeof(*c));
    if (c == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory creating the collectors");
        return NULL;
    }
    pthread_mutex_init(&c->run_mu, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->db = db;
    if (copy_config(c, cfg, err) != HS_OK)
        goto fail;
    if (c->cfg.host_enabled && (c->host = collect__host_new(&c->cfg, err)) == NULL)
        goto fail;
    if (c->cfg.gpu_enabled && (c->gpu = collect__gpu_new(&c->cfg, err)) == NULL)
        goto fail;
    c->stats.host.is_enabled = c->cfg.host_enabled;
    c->stats.gpu.is_enabled = c->cfg.gpu_enabled;
    c->stats.gpu.is_up = collect__gpu_is_up(c->gpu);
    c->stats.gpu_count = collect__gpu_count(c->gpu);
    return c;
fail:
    collect_free(c);
    return NULL;
}

void collect_free(struct collect *c)
{
    if (c == NULL)
        return;
    collect_stop(c);
    collect__host_free(c->host);
    collect__gpu_free(c->gpu);
    hs_free(c->proc_root);
    hs_free(c->sys_root);
    hs_free(c->rootfs);
    hs_free(c->nvml_path);
    hs_free(c->hostname);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->run_mu);
    hs_free(c);
}

/* ---- a round ------------------------------------------------------------------------ */

static void record(struct collect *c, struct collect_collector_stats *s, bool is_up,
                   const struct collect__emit *e, int64_t t_ms, int64_t ns)
{
    pthread_mutex_lock(&c->mu);
    s->is_up = is_up;
    s->rounds_total++;
    s->errors_total += e->errors;
    s->samples_last = e->samples;
    s->duration_seconds = (double)ns / 1e9;
    s->last_t_ms = t_ms;
    pthread_mutex_unlock(&c->mu);
}

/* Writes holoscope_collector_* for one collector from its stats ('live'
 * points into c->stats). */
static void put_self_metrics(struct collect *c, const struct hs_label *common, size_t n_common,
                             const struct collect_sink *sink, int64_t t_ms, const char *name,
                             struct collect_collector_stats *live)
{
    pthread_mutex_lock(&c->mu);
    struct collect_collector_stats s = *live;
    pthread_mutex_unlock(&c->mu);
    struct collect__emit e = {sink, t_ms, common, n_common, 0, 0};
    collect__put1(&e, "holoscope_collector_up", s.is_up ? 1 : 0, "collector", name);
    collect__put1(&e, "holoscope_collector_duration_seconds", s.duration_seconds, "collector",
                  name);
    collect__put1(&e, "holoscope_collector_errors_total", (double)s.errors_total, "collector",
                  name);
    if (e.errors > 0) {
        pthread_mutex_lock(&c->mu);
        live->errors_total += e.errors;
        pthread_mutex_unlock(&c->mu);
    }
}

int collect_collect(struct collect *c, int64_t t_ms, const struct collect_sink *sink,
                    struct hs_err *err)
{
    if (c == NULL || sink == NULL || sink->add == NULL)
        return hs_err_set(err, HS_EINVAL, "collect: no collector or sink");
    pthread_mutex_lock(&c->run_mu);
    if (c->host != NULL) {
        const struct hs_label common[] = {
            {"job", "node"}, {"instance", c->hostname}, {"backend", "node"}};
        struct collect__emit e = {sink, t_ms, common, HS_ARRAY_LEN(common), 0, 0};
        int64_t t0 = hs_mono_ns();
        bool ok = collect__host_collect(c->host, &e);
        record(c, &c->stats.host, ok, &e, t_ms, hs_mono_ns() - t0);
    }
    if (c->gpu != NULL) {
        const struct hs_label common[] = {
            {"job", "dcgm"}, {"instance", c->hostname}, {"backend", "nvml"}};
        struct collect__emit e = {sink, t_ms, common, HS_ARRAY_LEN(common), 0, 0};
        int64_t t0 = hs_mono_ns();
        bool ok = collect__gpu_collect(c->gpu, &e);
        record(c, &c->stats.gpu, ok, &e, t_ms, hs_mono_ns() - t0);
        /* which local GPUs serve which model (metrics-mapping 4.3) */
        const struct hs_label mcommon[] = {{"job", "holoscope"}};
        struct collect__emit me = {sink, t_ms, mcommon, HS_ARRAY_LEN(mcommon), 0, 0};
        collect__gpu_models(&c->gpumap, c->gpu, c->db, c->cfg.proc_root, c->hostname, &me);
    }
    const struct hs_label self[] = {{"job", "holoscope"}, {"instance", c->hostname}};
    if (c->host != NULL)
        put_self_metrics(c, self, HS_ARRAY_LEN(self), sink, t_ms, "host", &c->stats.host);
    if (c->gpu != NULL)
        put_self_metrics(c, self, HS_ARRAY_LEN(self), sink, t_ms, "gpu", &c->stats.gpu);
    pthread_mutex_unlock(&c->run_mu);
    return HS_OK;
}

static int tsdb_sink_add(void *ctx, const struct hs_labels *ls, int64_t t_ms, double v,
                         struct hs_err *err)
{
    return tsdb_appender_add(ctx, ls, t_ms, v, NULL, err);
}

int collect_run_once(struct collect *c, int64_t t_ms, struct hs_err *err)
{
    if (c == NULL || c->db == NULL)
        return hs_err_set(err, HS_EINVAL, "collect: no tsdb to append to");
    struct tsdb_appender *a = tsdb_appender_new(c->db);
    if (a == NULL)
        return hs_err_set(err, HS_ENOMEM, "collect: out of memory creating an appender");
    struct collect_sink sink = {tsdb_sink_add, a};
    int rc = collect_collect(c, t_ms, &sink, err);
    if (rc != HS_OK) {
        tsdb_appender_rollback(a);
        return rc;
    }
    return tsdb_appender_commit(a, err);
}

void collect_get_stats(struct collect *c, struct collect_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}

size_t collect_gpu_processes(struct collect *c, struct collect_gpu_process *out, size_t max)
{
    return c != NULL ? collect__gpu_processes(c->gpu, out, max) : 0;
}

/* ---- the thread ---------------------------------------------------------------------- */

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *thread_main(void *arg)
{
    struct collect *c = arg;
    for (;;) {
        struct timespec next;
        deadline_after(&next, c->cfg.interval_ms);
        struct hs_err err;
        hs_err_clear(&err);
        if (collect_run_once(c, hs_now_ms(), &err) != HS_OK)
            hs_log(HS_LOG_WARN, "collect: round failed", HS_LSTR("error", err.msg));
        pthread_mutex_lock(&c->mu);
        while (!c->is_stopping) {
            int rc = pthread_cond_timedwait(&c->cond, &c->mu, &next);
            if (rc == ETIMEDOUT)
                break;
        }
        bool stop = c->is_stopping;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            return NULL;
    }
}

int collect_start(struct collect *c, struct hs_err *err)
{
    if (c == NULL || c->db == NULL)
        return hs_err_set(err, HS_EINVAL, "collect: no tsdb to append to");
    if (c->is_started)
        return hs_err_set(err, HS_EINVAL, "collect: already started");
    c->is_stopping = false;
    int rc = pthread_create(&c->thread, NULL, thread_main, c);
    if (rc != 0)
        return hs_err_set(err, HS_EIO, "collect: cannot start thread: %s", strerror(rc));
    c->is_started = true;
    return HS_OK;
}

void collect_stop(struct collect *c)
{
    if (c == NULL || !c->is_started)
        return;
    pthread_mutex_lock(&c->mu);
    c->is_stopping = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    c->is_started = false;
}
