/*
 * gateway.c - the gateway's lifecycle: its own thread, event_base, HTTP
 * server and HTTP client; configuration generations (a reload builds new
 * pools while requests in flight keep the old ones); active health checks;
 * and the flusher thread that appends the metrics to the store every
 * store_interval.
 *
 * Threads:
 *   owner   (serve's main thread) gw_new, gw_start, gw_reload, gw_stop,
 *           gw_free; talks to the loop only through the mailbox (mu +
 *           'wake' event).
 *   loop    everything that touches requests, pools and generations.
 *   flusher gw__metrics_append every store_interval, and once more at stop.
 */
#include "gateway/gw_internal.h"

#include "export/export.h"
#include "http/http.h"
#include "tsdb/tsdb.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <string.h>
#include <time.h>

#define MAX_SERIES 100000

/* One active health check in flight: at most one per upstream. */
struct check {
    struct gw *g;
    struct gw_gen *gen;
    size_t route, up;
    struct http_client_call *call; /* NULL when none in flight */
};

/* The generation with its checks (gen must be the first member). */
struct gen_full {
    struct gw_gen gen;
    struct gw *g;
    struct check *checks; /* sum of upstreams over routes */
    size_t nchecks;
};

static void gen_free(struct gen_full *f)
{
    for (size_t i = 0; i < f->nchecks; i++)
        if (f->checks[i].call != NULL)
            http_client_cancel(f->checks[i].call);
    for (size_t i = 0; f->gen.pools && i < f->gen.cfg->nroutes; i++)
        gw_pool_free(f->gen.pools[i]);
    hs_free(f->gen.pools);
    hs_free(f->checks);
    gw_config_free(f->gen.cfg);
    hs_free(f);
}

void gw__gen_ref(struct gw_gen *gen)
{
    gen->refs++;
}

void gw__gen_unref(struct gw_gen *gen)
{
    if (--gen->refs == 0)
        gen_free((struct gen_full *)gen);
}

/* Takes 'cfg' in every case. */
static struct gen_full *gen_new(struct gw *g, struct gw_config *cfg, const struct gw_gen *prev)
{
    struct gen_full *f = hs_calloc(1, sizeof(*f));
    if (f == NULL) {
        gw_config_free(cfg);
        return NULL;
    }
    f->gen.cfg = cfg;
    f->gen.refs = 1;
    f->g = g;
    f->gen.pools = hs_calloc(cfg->nroutes + 1, sizeof(*f->gen.pools));
    size_t n = 0;
    for (size_t i = 0; i < cfg->nroutes; i++)
        n += cfg->routes[i].nupstreams;
    f->checks = hs_calloc(n + 1, sizeof(*f->checks));
    if (f->gen.pools == NULL || f->checks == NULL) {
        gen_free(f);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        f->gen.pools[i] = gw_pool_new(&cfg->routes[i], &cfg->health);
        if (f->gen.pools[i] == NULL) {
            gen_free(f);
            return NULL;
        }
        for (size_t j = 0; prev && j < prev->cfg->nroutes; j++)
            if (strcmp(prev->cfg->routes[j].model, cfg->routes[i].model) == 0)
                gw_pool_carry_state(f->gen.pools[i], prev->pools[j]);
        for (size_t u = 0; u < cfg->routes[i].nupstreams; u++)
            f->checks[f->nchecks++] = (struct check){g, &f->gen, i, u, NULL};
    }
    return f;
}

/* ---- health checks (loop thread) ---- */

static void on_check_done(void *arg, const struct http_client_result *res)
{
    struct check *c = arg;
    c->call = NULL;
    bool ok = res->code == HS_OK && res->status >= 200 && res->status < 300;
    gw_pool_health_result(c->gen->pools[c->route], c->up, ok, hs_now_ms());
    if (!ok)
        hs_log(HS_LOG_DEBUG, "gateway health check failed",
               HS_LSTR("upstream", c->gen->cfg->routes[c->route].upstreams[c->up].url),
               HS_LINT("status", res->status), HS_LSTR("err", res->msg));
}

static void on_health_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw *g = arg;
    struct gen_full *f = (struct gen_full *)g->gen;
    const struct gw_health_config *h = &f->gen.cfg->health;
    if (h->path == NULL || h->path[0] == '\0')
        return;
    for (size_t i = 0; i < f->nchecks; i++) {
        struct check *c = &f->checks[i];
        if (c->call != NULL)
            continue;
        char url[2048];
        const struct gw_upstream_config *u = &f->gen.cfg->routes[c->route].upstreams[c->up];
        if ((size_t)snprintf(url, sizeof(url), "%s%s", u->url, h->path) >= sizeof(url))
            continue;
        struct http_client_req req = {0};
        req.url = url;
        req.headers = (const struct http_client_header *)u->headers;
        req.nheaders = u->nheaders;
        req.total_timeout_ms = h->timeout_ms;
        req.connect_timeout_ms = h->timeout_ms;
        req.max_response_bytes = 64 << 10;
        struct http_client_callbacks cb = {NULL, NULL, on_check_done};
        struct hs_err err = {0};
        if (http_client_request(g->client, &req, &cb, c, &c->call, &err) != HS_OK) {
            c->call = NULL;
            gw_pool_health_result(f->gen.pools[c->route], c->up, false, hs_now_ms());
        }
    }
}

static void arm_health(struct gw *g)
{
    const struct gw_health_config *h = &g->gen->cfg->health;
    event_del(g->health_timer);
    if (h->path == NULL || h->path[0] == '\0')
        return;
    struct timeval tv = {h->interval_ms / 1000, (h->interval_ms % 1000) * 1000};
    event_add(g->health_timer, &tv);
    on_health_timer(-1, 0, g); /* check at once, then every interval */
}

/* ---- mailbox (loop thread) ---- */

static void on_shutdown_done(void *arg)
{
    struct gw *g = arg;
    event_base_loopexit(g->base, NULL);
}

static void apply_reload(struct gw *g, struct gw_config *cfg)
{
    if (strcmp(cfg->listen, g->listen) != 0)
        hs_log(HS_LOG_WARN, "gateway listen address changes take effect after a restart",
               HS_LSTR("listen", g->listen));
    struct gen_full *f = gen_new(g, cfg, g->gen);
    if (f == NULL) {
        hs_log(HS_LOG_ERROR, "gateway reload failed: out of memory");
        return;
    }
    struct gen_full *old = (struct gen_full *)g->gen;
    for (size_t i = 0; i < old->nchecks; i++)
        if (old->checks[i].call != NULL) {
            http_client_cancel(old->checks[i].call);
            old->checks[i].call = NULL;
        }
    g->gen = &f->gen;
    gw__gen_unref(&old->gen);
    arm_health(g);
    hs_log(HS_LOG_INFO, "gateway routes reloaded", HS_LINT("routes", (int64_t)cfg->nroutes));
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw *g = arg;
    pthread_mutex_lock(&g->mu);
    struct gw_config *cfg = g->pending;
    g->pending = NULL;
    bool stop = g->stop_requested;
    int64_t timeout_ms = g->stop_timeout_ms;
    pthread_mutex_unlock(&g->mu);
    if (cfg != NULL)
        apply_reload(g, cfg);
    if (stop) {
        event_del(g->health_timer);
        http_server_shutdown(g->http, timeout_ms, on_shutdown_done, g);
    }
}

static void *loop_main(void *arg)
{
    struct gw *g = arg;
    event_base_loop(g->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- flusher thread ---- */

static void flush_once(struct gw *g)
{
    struct tsdb *db = atomic_load(&g->db);
    if (db == NULL)
        return;
    uint64_t n = 0;
    struct hs_err err = {0};
    if (gw__metrics_append(g->metrics, db, hs_now_ms(), &n, &err) != HS_OK) {
        atomic_fetch_add(&g->store_errors, 1);
        hs_log(HS_LOG_WARN, "gateway metrics not stored", HS_LSTR("err", err.msg));
    }
    atomic_fetch_add(&g->store_appends, n);
}

static void *flusher_main(void *arg)
{
    struct gw *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->flusher_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (g->store_interval_ms % 1000) * 1000000;
        ts.tv_sec += g->store_interval_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&g->flush_cv, &g->mu, &ts);
        if (g->flusher_stop)
            break;
        pthread_mutex_unlock(&g->mu);
        flush_once(g);
        pthread_mutex_lock(&g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    flush_once(g); /* the last values */
    return NULL;
}

/* ---- error bodies ---- */

static int error_formatter(void *arg, int status, const char *msg, struct hs_buf *out,
                           const char **content_type)
{
    (void)arg;
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    int rc = hs_buf_puts(out, "{\"error\":{\"message\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, msg, strlen(msg));
    if (rc == HS_OK)
        rc = hs_buf_printf(out, ",\"type\":\"%s\",\"param\":null,\"code\":null}}", type);
    *content_type = "application/json";
    return rc;
}

/* ---- public ---- */

struct gw *gw_new(struct gw_config *cfg, struct tsdb *db, struct hs_err *err)
{
    struct gw *g = hs_calloc(1, sizeof(*g));
    if (g == NULL) {
        gw_config_free(cfg);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    g->cfg0 = cfg;
    g->listen = hs_strdup(cfg->listen);
    g->metrics = gw__metrics_new(MAX_SERIES);
    g->store_interval_ms = cfg->store_interval_ms;
    atomic_store(&g->db, db);
    g->rng = (uint64_t)hs_mono_ns() ^ ((uint64_t)hs_now_ms() << 20) ^ (uintptr_t)g;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->flush_cv, NULL);
    if (g->listen == NULL || g->metrics == NULL) {
        gw_free(g);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    return g;
}

static int start_tracing(struct gw *g, struct hs_err *err)
{
    const struct gw_config *c = g->gen->cfg;
    if (c->tracing_endpoint == NULL)
        return HS_OK;
    struct export_otlp_config oc;
    export_otlp_config_defaults(&oc);
    oc.endpoint = c->tracing_endpoint;
    oc.service_name = "holoscope-gateway";
    g->otlp = export_otlp_new(&oc, err);
    return g->otlp ? HS_OK : (err ? err->code : HS_EINVAL);
}

static int start_http(struct gw *g, struct hs_err *err)
{
    const struct gw_config *c = g->gen->cfg;
    struct http_server_config hc;
    http_server_config_defaults(&hc);
    hc.listen = g->listen;
    hc.max_connections = (int)c->max_connections;
    uint64_t max_body = 16 << 20;
    for (size_t i = 0; i < c->nroutes; i++)
        max_body = HS_MAX(max_body, c->routes[i].max_body_bytes);
    hc.max_body_bytes = (size_t)max_body;
    hc.write_timeout_ms = 120000;
    g->http = http_server_new(g->base, &hc, err);
    if (g->http == NULL)
        return err ? err->code : HS_ENOMEM;
    http_server_set_error_formatter(g->http, error_formatter, g);
    int rc = gw__proxy_register(g, err);
    if (rc == HS_OK)
        rc = http_server_start(g->http, err);
    if (rc == HS_OK)
        g->port = http_server_port(g->http);
    return rc;
}

int gw_start(struct gw *g, struct hs_err *err)
{
    if (g->is_started)
        return hs_err_set(err, HS_EINVAL, "gateway already started");
    if (evthread_use_pthreads() != 0)
        return hs_err_set(err, HS_EIO, "cannot make the event loop thread-aware");
    g->base = event_base_new();
    if (g->base == NULL)
        return hs_err_set(err, HS_ENOMEM, "cannot create the gateway event loop");
    struct gen_full *f = gen_new(g, g->cfg0, NULL);
    g->cfg0 = NULL;
    if (f == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    g->gen = &f->gen;
    struct http_client_config cc;
    http_client_config_defaults(&cc);
    cc.max_idle_per_host = 1024;
    g->client = http_client_new(g->base, &cc, err);
    if (g->client == NULL)
        return err ? err->code : HS_ENOMEM;
    g->wake = event_new(g->base, -1, 0, on_wake, g);
    g->health_timer = event_new(g->base, -1, EV_PERSIST, on_health_timer, g);
    if (g->wake == NULL || g->health_timer == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    int rc = start_http(g, err);
    if (rc == HS_OK)
        rc = start_tracing(g, err);
    if (rc != HS_OK)
        return rc;
    arm_health(g);
    if (pthread_create(&g->flusher, NULL, flusher_main, g) != 0)
        return hs_err_set(err, HS_EIO, "cannot start the gateway metrics thread");
    g->has_flusher = true;
    if (pthread_create(&g->thread, NULL, loop_main, g) != 0)
        return hs_err_set(err, HS_EIO, "cannot start the gateway thread");
    g->is_started = true;
    hs_log(HS_LOG_INFO, "gateway listening", HS_LSTR("listen", g->listen), HS_LINT("port", g->port),
           HS_LINT("routes", (int64_t)g->gen->cfg->nroutes));
    return HS_OK;
}

int gw_port(const struct gw *g)
{
    return g->port;
}

int gw_reload(struct gw *g, struct gw_config *cfg, struct hs_err *err)
{
    (void)err;
    if (!g->is_started || g->is_stopped) {
        gw_config_free(cfg);
        return HS_OK;
    }
    pthread_mutex_lock(&g->mu);
    gw_config_free(g->pending);
    g->pending = cfg;
    pthread_mutex_unlock(&g->mu);
    event_active(g->wake, EV_READ, 0);
    return HS_OK;
}

void gw_set_store(struct gw *g, struct tsdb *db)
{
    atomic_store(&g->db, db);
}

void gw_set_capture(struct gw *g, struct capture_writer *w)
{
    atomic_store(&g->capture, w);
}

void gw_stop(struct gw *g, int64_t timeout_ms)
{
    if (g->is_started && !g->is_stopped) {
        pthread_mutex_lock(&g->mu);
        g->stop_requested = true;
        g->stop_timeout_ms = timeout_ms;
        pthread_mutex_unlock(&g->mu);
        event_active(g->wake, EV_READ, 0);
        pthread_join(g->thread, NULL);
    }
    g->is_stopped = true;
    if (g->has_flusher) {
        pthread_mutex_lock(&g->mu);
        g->flusher_stop = true;
        pthread_cond_signal(&g->flush_cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->flusher, NULL);
        g->has_flusher = false;
    }
}

void gw_free(struct gw *g)
{
    if (g == NULL)
        return;
    gw_stop(g, 0);
    http_server_free(g->http); /* no request is held after the shutdown */
    if (g->gen != NULL)
        gw__gen_unref(g->gen);
    http_client_free(g->client);
    export_otlp_free(g->otlp);
    if (g->wake)
        event_free(g->wake);
    if (g->health_timer)
        event_free(g->health_timer);
    if (g->flush_ev)
        event_free(g->flush_ev);
    if (g->base)
        event_base_free(g->base);
    gw_config_free(g->cfg0);
    gw_config_free(g->pending);
    gw__metrics_free(g->metrics);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->flush_cv);
    hs_free(g->listen);
    hs_free(g);
}

void gw_get_stats(const struct gw *g, struct gw_stats *out)
{
    struct gw *m = (struct gw *)g;
    out->requests_total = atomic_load(&m->requests_total);
    out->requests_inflight = atomic_load(&m->requests_inflight);
    out->streams_total = atomic_load(&m->streams_total);
    out->client_cancelled = atomic_load(&m->client_cancelled);
    out->upstream_errors = atomic_load(&m->upstream_errors);
    out->store_appends = atomic_load(&m->store_appends);
    out->store_errors = atomic_load(&m->store_errors);
}

int gw_metrics_collect(void *arg, struct hs_buf *out)
{
    struct gw *g = arg;
    return gw__metrics_render(g->metrics, out);
}
