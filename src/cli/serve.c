/*
 * serve.c - `holoscope serve`: the long-running process.
 *
 * Start-up order: configuration (file < env < flags) and logging; data
 * directory; event loop and signal events; HTTP server with the management
 * endpoints (so /-/healthy answers at once and /-/ready says 503 while
 * starting); then the store is opened on a helper thread, which replays
 * its WAL, and readiness turns true when that thread reports back.  SIGTERM and SIGINT start a
 * graceful shutdown (stop accepting, finish in-flight requests within shutdown_timeout, flush
 * state); a second signal stops at once.  SIGHUP (and POST /-/reload)
 * re-reads the configuration file and applies what can change live.
 *
 * Threading: everything here runs on the main thread, which runs the loop,
 * except open_store_thread, which only opens the store and activates
 * 'store_opened' (libevent is made thread-aware for that).
 */
#include "cli/internal.h"

#include "api/api.h"
#include "collect/collect.h"
#include "gateway/capture.h"
#include "gateway/gateway.h"
#include "http/http.h"
#include "promql/promql.h"
#include "rules/rules.h"
#include "scrape/scrape_config.h"
#include "scrape/scrape_manager.h"
#include "tsdb/tsdb.h"
#include "ui/grafana.h"
#include "ui/ui.h"

#include "buildinfo.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

const char cli_help_serve[] =
    "NAME\n"
    "       holoscope serve - run the store, the API, the dashboard and the collectors\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope serve [--config FILE] [--listen HOST:PORT] [--data DIR] [OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "       Runs holoscope in the foreground until SIGTERM or SIGINT. It listens on\n"
    "       127.0.0.1:9190 by default and keeps its data in ./data. Endpoints:\n"
    "       /-/healthy, /-/ready, /-/reload (POST) and /metrics (holoscope's own\n"
    "       metrics in the Prometheus text format).\n"
    "\n"
    "       Settings come from, in increasing precedence: built-in defaults, the YAML\n"
    "       file given with --config, HOLOSCOPE_* environment variables, and flags.\n"
    "       SIGHUP re-reads the configuration file; a graceful shutdown lets\n"
    "       in-flight requests finish within shutdown_timeout.\n"
    "\n"
    "OPTIONS\n";

const char cli_help_serve_tail[] =
    "\n"
    "EXIT STATUS\n"
    "       0 after a clean shutdown, 1 on a runtime failure (for example the address\n"
    "       is in use), 2 on a usage or configuration error.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope serve\n"
    "       holoscope serve --listen 127.0.0.1:9300 --data /var/lib/holoscope\n"
    "       HOLOSCOPE_LOG_FORMAT=json holoscope serve --config holoscope.yml\n";

struct server {
    struct cli_config cfg;
    char **argv; /* for reload: the same flags apply again on top of the file */
    int argc;
    char **envp;
    struct event_base *base;
    struct http_server *http;
    struct api_metrics *metrics;
    struct api_admin admin;
    struct ui *ui; /* the dashboard at "/": embedded assets */
    struct event *sig_term, *sig_int, *sig_hup;
    struct event *store_opened; /* activated by the opener thread */
    pthread_t opener;
    bool has_opener;
    struct tsdb *db; /* written by the opener thread before it activates store_opened */
    struct cli_lazy_storage *storage; /* PromQL's view of the store, usable before it opens */
    struct promql_engine_opts engine_opts;
    struct promql_engine *engine;
    struct api_prom *prom;               /* the Prometheus HTTP API */
    struct collect *collect;             /* host and GPU collectors; NULL when both are off */
    struct api_remote_write *rw;         /* POST /api/v1/write, routed once the store is open */
    struct promql_storage query_storage; /* the lazy view, for the API and the rules */
    struct rules_manager *rules;   /* recording and alerting rules; NULL until the store opens */
    struct scrape_fetcher fetcher; /* HTTP fetches of the scrape manager */
    bool has_fetcher;
    struct scrape_manager *scrape;    /* scrape_configs; NULL until the store opens */
    struct gw *gateway;               /* the gateway (own thread); NULL when not configured */
    struct capture_writer *capture;   /* capture log writer (own thread); NULL: capture.dir unset */
    struct api_captures captures_api; /* GET /api/v1/captures reads captures_api.dir */
    struct hs_buf config_yaml;        /* effective settings for /api/v1/status/config */
    struct hs_arena api_strings;      /* strings the API borrows; outlive config reloads */
    struct hs_err store_err;          /* idem, when opening failed */
    double start_time_s;              /* process start, epoch seconds */
    bool is_stopping;
    int exit_code;

    /* alerting: and pricing: */
    struct rules_notifier *notifier; /* receivers (own thread); NULL: none */
    struct event *pricing_timer;     /* writes the pricing series; NULL: not started */
};

static void store_options(const struct cli_config *c, struct tsdb_options *o)
{
    tsdb_options_defaults(o);
    o->retention_ms = c->retention_ms;
    o->retention_bytes = c->retention_bytes;
    o->wal_fsync = c->wal_fsync == CLI_WAL_FSYNC_BATCH ? TSDB_FSYNC_BATCH : TSDB_FSYNC_INTERVAL;
    o->wal_fsync_interval_ms = c->wal_fsync_interval_ms;
    o->ooo_window_ms = c->ooo_window_ms;
    o->block_duration_ms = c->block_duration_ms;
}

static void *open_store_thread(void *arg)
{
    struct server *s = arg;
    struct tsdb_options o;
    store_options(&s->cfg, &o);
    s->db = tsdb_open(s->cfg.data_dir, &o, &s->store_err);
    event_active(s->store_opened, EV_READ, 0);
    return NULL;
}

static void log_rule_problem(void *arg, const char *msg)
{
    (void)arg;
    hs_log(HS_LOG_ERROR, "rule file problem", HS_LSTR("err", msg));
}

/* The rules a configuration asks for: the default pack and rule_files globs. */
static int load_rule_set(const struct cli_config *c, struct rules_set **out, struct hs_err *err)
{
    struct rules_set *set = rules_set_new();
    if (set == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    int rc = HS_OK;
    if (c->rules_default_pack)
        rc = rules_set_add_default(set, err);
    for (size_t i = 0; i < c->nrule_files && rc == HS_OK; i++)
        rc = rules_set_add_glob(set, c->rule_files[i], log_rule_problem, NULL, err);
    if (rc != HS_OK) {
        rules_set_free(set);
        return rc;
    }
    *out = set;
    return HS_OK;
}

/* Hands 'cfg' (may be NULL: no scrape_configs) to the manager, which takes it. */
static int apply_scrape_config(struct scrape_manager *m, struct scrape_config *cfg,
                               struct hs_err *err)
{
    if (cfg == NULL) {
        struct hs_ydoc *empty = hs_ydoc_parse("{}", 2, "<none>", err);
        if (empty == NULL)
            return err ? err->code : HS_ENOMEM;
        int rc = scrape_config_parse(empty, empty->root, &cfg, err);
        hs_ydoc_free(empty);
        if (rc != HS_OK)
            return rc;
    }
    return scrape_manager_apply(m, cfg, err);
}

static int targets_data(void *arg, struct http_request *r, struct hs_buf *out, struct hs_err *err)
{
    struct server *s = arg;
    if (s->scrape == NULL)
        return hs_buf_puts(out, "{\"activeTargets\":[],\"droppedTargets\":[]}");
    return scrape_manager_targets_api(s->scrape, r, out, err);
}

static int scrape_metrics(void *arg, struct hs_buf *out)
{
    struct scrape_stats st;
    scrape_manager_get_stats(arg, &st);
    const struct {
        const char *name, *type, *help;
        double v;
    } fams[] = {
        {"holoscope_scrapes_total", "counter", "Scrapes of all targets.", (double)st.scrapes_total},
        {"holoscope_scrapes_failed_total", "counter", "Scrapes that ended with up 0.",
         (double)st.scrapes_failed},
        {"holoscope_scrape_samples_scraped_total", "counter",
         "Raw samples read from targets, before relabelling and the unified mapping.",
         (double)st.samples_scraped},
        {"holoscope_scrape_samples_appended_total", "counter",
         "Scraped samples (raw, unified and report) accepted by the store.",
         (double)st.samples_appended},
        {"holoscope_scrape_samples_rejected_total", "counter", "Scraped samples the store refused.",
         (double)st.samples_rejected},
        {"holoscope_scrape_stale_markers_total", "counter", "Staleness markers written.",
         (double)st.stale_markers},
        {"holoscope_scrape_cache_hits_total", "counter",
         "Samples appended by series reference from a target's cache.", (double)st.cache_hits},
        {"holoscope_scrape_cache_misses_total", "counter", "Samples that needed label building.",
         (double)st.cache_misses},
        {"holoscope_scrape_targets_up", "gauge", "Targets whose last scrape succeeded.",
         (double)st.targets_up},
        {"holoscope_scrape_targets_down", "gauge", "Targets whose last scrape failed.",
         (double)st.targets_down},
        {"holoscope_sd_http_refreshes_total", "counter", "Polls of http_sd_configs endpoints.",
         (double)st.sd_http_refreshes},
        {"holoscope_sd_http_failures_total", "counter",
         "http_sd_configs polls that failed (the last good targets are kept).",
         (double)st.sd_http_failures},
    };
    int rc = HS_OK;
    for (size_t i = 0; i < HS_ARRAY_LEN(fams) && rc == HS_OK; i++) {
        rc = api_expo_family(out, fams[i].name, fams[i].type, fams[i].help);
        if (rc == HS_OK)
            rc = api_expo_sample(out, fams[i].name, NULL, fams[i].v);
    }
    return rc;
}

static int start_scrape(struct server *s)
{
    struct hs_err err = {0};
    struct http_client_config hc;
    http_client_config_defaults(&hc);
    if (scrape_fetcher_http_new(&hc, &s->fetcher, &err) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the scraper", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    s->has_fetcher = true;
    struct scrape_manager_options o = {0};
    o.fetcher = s->fetcher;
    o.db = s->db;
    if (scrape_manager_new(&o, &s->scrape, &err) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the scraper", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    struct scrape_config *cfg = s->cfg.scrape;
    s->cfg.scrape = NULL; /* the manager takes it */
    if (apply_scrape_config(s->scrape, cfg, &err) != HS_OK ||
        api_metrics_add_collector(s->metrics, scrape_metrics, s->scrape) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot apply the scrape configuration", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    hs_log(HS_LOG_INFO, "scraping",
           HS_LINT("targets", (int64_t)scrape_manager_ntargets(s->scrape)));
    return HS_OK;
}

static int rules_data(void *arg, struct http_request *r, struct hs_buf *out, struct hs_err *err)
{
    struct server *s = arg;
    if (s->rules == NULL)
        return hs_buf_puts(out, "{\"groups\":[]}");
    const char *type = http_request_param(r, "type");
    struct rules_api_filter f = {type && *type ? type : NULL,
                                 hs_streq(http_request_param(r, "exclude_alerts"), "true")};
    int rc = rules_manager_rules_json(s->rules, &f, out);
    return rc == HS_OK ? rc : hs_err_set(err, rc, "%s", hs_strerror(rc));
}

static int alerts_data(void *arg, struct http_request *r, struct hs_buf *out, struct hs_err *err)
{
    (void)r;
    struct server *s = arg;
    if (s->rules == NULL)
        return hs_buf_puts(out, "{\"alerts\":[]}");
    int rc = rules_manager_alerts_json(s->rules, out);
    return rc == HS_OK ? rc : hs_err_set(err, rc, "%s", hs_strerror(rc));
}

static int rules_metrics(void *arg, struct hs_buf *out)
{
    struct rules_manager *m = arg;
    int rc = api_expo_family(out, "holoscope_rule_evaluation_failures_total", "counter",
                             "Rule evaluations that failed.");
    if (rc == HS_OK)
        rc = api_expo_sample(out, "holoscope_rule_evaluation_failures_total", NULL,
                             (double)rules_manager_failures(m));
    if (rc == HS_OK)
        rc = api_expo_family(out, "holoscope_rule_groups", "gauge", "Rule groups loaded.");
    if (rc == HS_OK)
        rc = api_expo_sample(out, "holoscope_rule_groups", NULL,
                             (double)rules_manager_group_count(m));
    return rc;
}

/* The alerting: receivers, on the notifier's own thread; fills the manager's
 * notification options (unchanged when no receiver is configured). */
static int start_notifier(struct server *s, struct rules_manager_opts *o)
{
    const struct rules_alerting_config *al = s->cfg.alerting;
    if (al == NULL)
        return HS_OK;
    o->resend_delay_ms = al->resend_delay_ms;
    o->external_labels = al->external_labels; /* copied by the manager */
    if (al->external_url != NULL)
        o->generator_url = al->external_url;
    if (al->ntargets == 0)
        return HS_OK;
    struct rules_notifier_opts no;
    rules_alerting_notifier_opts(al, &no);
    if (no.external_url == NULL)
        no.external_url = o->generator_url;
    struct hs_err err = {0};
    s->notifier = rules_notifier_new(&no, &err);
    if (s->notifier == NULL ||
        api_metrics_add_collector(s->metrics, rules_notifier_metrics, s->notifier) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the notifier", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    o->notifier = s->notifier;
    hs_log(HS_LOG_INFO, "notifying", HS_LINT("receivers", (int64_t)al->ntargets));
    return HS_OK;
}

static int start_rules(struct server *s)
{
    struct hs_err err = {0};
    struct rules_set *set = NULL;
    if (load_rule_set(&s->cfg, &set, &err) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot load the rules", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    size_t nrec = 0, nalert = 0;
    rules_set_count(set, &nrec, &nalert);
    char url[300];
    snprintf(url, sizeof(url), "http://%s", s->cfg.listen);
    struct rules_manager_opts o = {0};
    o.engine = s->engine;
    o.storage = &s->query_storage;
    rules_tsdb_sink(s->db, &o.sink);
    o.default_interval_ms = s->cfg.rules_interval_ms;
    o.generator_url = url;
    if (start_notifier(s, &o) != HS_OK) {
        rules_set_free(set);
        return HS_EINVAL;
    }
    s->rules = rules_manager_new(&o, &err);
    if (s->rules == NULL) {
        rules_set_free(set);
        hs_log(HS_LOG_ERROR, "cannot start the rules", HS_LSTR("err", err.msg));
        return HS_ENOMEM;
    }
    if (rules_manager_update(s->rules, set, &err) != HS_OK ||
        rules_manager_start(s->rules, &err) != HS_OK ||
        api_metrics_add_collector(s->metrics, rules_metrics, s->rules) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the rules", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    hs_log(HS_LOG_INFO, "rules loaded", HS_LINT("recording", (int64_t)nrec),
           HS_LINT("alerting", (int64_t)nalert),
           HS_LINT("groups", (int64_t)rules_manager_group_count(s->rules)));
    return HS_OK;
}

/* /metrics families of the collectors (their own samples go to the store). */
static int collect_metrics(void *arg, struct hs_buf *out)
{
    struct collect_stats st;
    collect_get_stats(arg, &st);
    const struct {
        const char *name;
        const struct collect_collector_stats *c;
    } all[] = {{"host", &st.host}, {"gpu", &st.gpu}};
    int rc = api_expo_family(out, "holoscope_collector_up", "gauge",
                             "Whether the last round of a collector succeeded.");
    for (size_t i = 0; i < HS_ARRAY_LEN(all) && rc == HS_OK; i++) {
        const char *ls[] = {"collector", all[i].name, NULL};
        if (all[i].c->is_enabled)
            rc = api_expo_sample(out, "holoscope_collector_up", ls, all[i].c->is_up ? 1 : 0);
    }
    if (rc == HS_OK)
        rc = api_expo_family(out, "holoscope_collector_errors_total", "counter",
                             "Failed reads and rejected samples of a collector.");
    for (size_t i = 0; i < HS_ARRAY_LEN(all) && rc == HS_OK; i++) {
        const char *ls[] = {"collector", all[i].name, NULL};
        if (all[i].c->is_enabled)
            rc = api_expo_sample(out, "holoscope_collector_errors_total", ls,
                                 (double)all[i].c->errors_total);
    }
    if (rc == HS_OK)
        rc = api_expo_family(out, "holoscope_collector_duration_seconds", "gauge",
                             "Duration of a collector's last round.");
    for (size_t i = 0; i < HS_ARRAY_LEN(all) && rc == HS_OK; i++) {
        const char *ls[] = {"collector", all[i].name, NULL};
        if (all[i].c->is_enabled)
            rc = api_expo_sample(out, "holoscope_collector_duration_seconds", ls,
                                 all[i].c->duration_seconds);
    }
    return rc;
}

static int start_collectors(struct server *s)
{
    if (!s->cfg.collect_host && !s->cfg.collect_gpu)
        return HS_OK;
    struct collect_config cc;
    collect_config_defaults(&cc);
    cc.host_enabled = s->cfg.collect_host;
    cc.gpu_enabled = s->cfg.collect_gpu;
    cc.interval_ms = s->cfg.collect_interval_ms;
    cc.nvml_path = s->cfg.nvml_library;
    struct hs_err err = {0};
    s->collect = collect_new(&cc, s->db, &err);
    if (s->collect == NULL || collect_start(s->collect, &err) != HS_OK ||
        api_metrics_add_collector(s->metrics, collect_metrics, s->collect) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the collectors", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    return HS_OK;
}

/* The capture writer and GET /api/v1/captures, when capture.dir is set;
 * before the gateway, which submits to it.  Main loop thread. */
static int start_capture(struct server *s)
{
    const struct capture_config *cc = s->cfg.capture;
    if (cc == NULL || cc->dir == NULL)
        return HS_OK;
    struct hs_err err = {0};
    s->capture = capture_writer_new(cc, s->db, &err);
    if (s->capture == NULL) {
        hs_log(HS_LOG_ERROR, "cannot start the capture writer", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    s->captures_api.dir = hs_arena_strndup(&s->api_strings, cc->dir, strlen(cc->dir));
    if (s->captures_api.dir == NULL || api_captures_register(s->http, &s->captures_api) != HS_OK ||
        api_metrics_add_collector(s->metrics, capture_writer_metrics, s->capture) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the capture API");
        return HS_ENOMEM;
    }
    hs_log(HS_LOG_INFO, "capture log", HS_LSTR("dir", cc->dir),
           HS_LF64("sampling_percentage", cc->sampling_percentage));
    return HS_OK;
}

/* The gateway, on its own thread and loop, once the store is open. */
static int start_gateway(struct server *s)
{
    if (s->cfg.gateway == NULL)
        return HS_OK;
    struct hs_err err = {0};
    s->gateway = gw_new(s->cfg.gateway, s->db, &err);
    s->cfg.gateway = NULL; /* the gateway takes it */
    if (s->gateway != NULL && s->capture != NULL)
        gw_set_capture(s->gateway, s->capture);
    if (s->gateway == NULL || gw_start(s->gateway, &err) != HS_OK ||
        api_metrics_add_collector(s->metrics, gw_metrics_collect, s->gateway) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the gateway", HS_LSTR("err", err.msg));
        return HS_EINVAL;
    }
    return HS_OK;
}

/* Writes the pricing: series (the configuration of the moment, so a reload
 * applies at the next tick).  Main loop thread. */
static void on_pricing_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    struct hs_err err = {0};
    if (cli_pricing_write(s->cfg.pricing, s->db, hs_now_ms(), &err) != HS_OK)
        hs_log(HS_LOG_WARN, "cannot write the pricing series", HS_LSTR("err", err.msg));
}

/* The pricing: series, written now and every rules.evaluation_interval. */
static int start_pricing(struct server *s)
{
    int64_t iv = s->cfg.rules_interval_ms > 0 ? s->cfg.rules_interval_ms : 60000;
    struct timeval tv = {(time_t)(iv / 1000), (suseconds_t)((iv % 1000) * 1000)};
    s->pricing_timer = event_new(s->base, -1, EV_PERSIST, on_pricing_timer, s);
    if (s->pricing_timer == NULL || event_add(s->pricing_timer, &tv) != 0) {
        hs_log(HS_LOG_ERROR, "cannot start the pricing series");
        return HS_ENOMEM;
    }
    on_pricing_timer(-1, 0, s);
    return HS_OK;
}

static void on_store_opened(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    pthread_join(s->opener, NULL);
    s->has_opener = false;
    if (s->db == NULL) {
        hs_log(HS_LOG_ERROR, "cannot open the store", HS_LSTR("data_dir", s->cfg.data_dir),
               HS_LSTR("err", s->store_err.msg));
        s->exit_code = CLI_EXIT_FAILURE;
        event_base_loopbreak(s->base);
        return;
    }
    struct tsdb_stats st;
    tsdb_get_stats(s->db, &st);
    if (api_metrics_add_collector(s->metrics, api_tsdb_collector, s->db) != HS_OK) {
        hs_log(HS_LOG_ERROR, "out of memory");
        s->exit_code = CLI_EXIT_FAILURE;
        event_base_loopbreak(s->base);
        return;
    }
    cli_lazy_storage_open(s->storage, s->db);
    struct hs_err err = {0};
    s->rw = api_remote_write_register(s->http, s->db, NULL, &err);
    if (s->rw == NULL ||
        api_metrics_add_collector(s->metrics, api_remote_write_collector, s->rw) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the remote-write receiver", HS_LSTR("err", err.msg));
        s->exit_code = CLI_EXIT_FAILURE;
        event_base_loopbreak(s->base);
        return;
    }
    if (start_collectors(s) != HS_OK || start_scrape(s) != HS_OK || start_rules(s) != HS_OK ||
        start_capture(s) != HS_OK || start_gateway(s) != HS_OK || start_pricing(s) != HS_OK) {
        s->exit_code = CLI_EXIT_FAILURE;
        event_base_loopbreak(s->base);
        return;
    }
    hs_log(HS_LOG_INFO, "store ready", HS_LINT("series", (int64_t)st.head_series),
           HS_LINT("replayed_samples", (int64_t)st.wal_replay_samples),
           HS_LF64("replay_seconds", (double)st.wal_replay_ns / 1e9));
    if (!s->is_stopping)
        s->admin.is_ready = true;
}

static int start_store(struct server *s)
{
    s->store_opened = event_new(s->base, -1, 0, on_store_opened, s);
    if (s->store_opened == NULL)
        return HS_ENOMEM;
    if (pthread_create(&s->opener, NULL, open_store_thread, s) != 0)
        return HS_ENOMEM;
    s->has_opener = true;
    return HS_OK;
}

static int apply_logging(const struct cli_config *c)
{
    hs_log_setup(c->log_level, c->log_format, NULL);
    return HS_OK;
}

/* Applies a changed alerting: section: receivers live, the rest (held by the
 * rule manager) after a restart. */
static void reload_alerting(struct server *s, const struct cli_config *fresh)
{
    const struct rules_alerting_config *al = fresh->alerting;
    if (!rules_alerting_settings_equal(al, s->cfg.alerting))
        hs_log(HS_LOG_WARN, "alerting settings other than the receivers take effect after a "
                            "restart");
    if (rules_alerting_receivers_equal(al, s->cfg.alerting))
        return;
    if (s->notifier == NULL) {
        hs_log(HS_LOG_WARN, "alerting receivers take effect after a restart (none were "
                            "configured at start)");
        return;
    }
    struct rules_notifier_opts o;
    memset(&o, 0, sizeof(o));
    if (al != NULL)
        rules_alerting_notifier_opts(al, &o);
    struct hs_err err = {0};
    if (rules_notifier_update(s->notifier, &o, &err) != HS_OK)
        hs_log(HS_LOG_ERROR, "cannot apply the alerting receivers; keeping the running ones",
               HS_LSTR("err", err.msg));
    else
        hs_log(HS_LOG_INFO, "alerting receivers updated",
               HS_LINT("receivers", (int64_t)o.ntargets));
}

/* Re-reads the configuration; applies what can change without a restart. */
static int reload(void *arg, struct hs_err *err)
{
    struct server *s = arg;
    struct cli_config fresh;
    cli_config_init(&fresh);
    int *rest = hs_calloc((size_t)s->argc + 1, sizeof(int));
    int nrest = 0, rc = rest ? HS_OK : HS_ENOMEM;
    if (rc == HS_OK)
        rc = cli_config_load(&fresh, s->argc, s->argv, s->envp, rest, &nrest, err);
    if (rc == HS_OK)
        rc = cli_config_validate(&fresh, err);
    hs_free(rest);
    struct rules_set *set = NULL;
    if (rc == HS_OK && s->rules != NULL)
        rc = load_rule_set(&fresh, &set, err);
    if (rc == HS_OK && set != NULL)
        rc = rules_manager_update(s->rules, set, err); /* takes the set, also on error */
    if (rc == HS_OK && s->scrape != NULL) {
        rc = apply_scrape_config(s->scrape, fresh.scrape, err);
        fresh.scrape = NULL; /* the manager took it */
    }
    if (rc == HS_OK && s->gateway != NULL && fresh.gateway != NULL) {
        rc = gw_reload(s->gateway, fresh.gateway, err); /* takes it */
        fresh.gateway = NULL;
    } else if (rc == HS_OK && (s->gateway == NULL) != (fresh.gateway == NULL)) {
        hs_log(HS_LOG_WARN, "adding or removing the gateway section takes effect after a restart");
    }
    if (rc != HS_OK) {
        cli_config_cleanup(&fresh);
        return rc;
    }
    if (strcmp(fresh.listen, s->cfg.listen) != 0 || strcmp(fresh.data_dir, s->cfg.data_dir) != 0)
        hs_log(HS_LOG_WARN, "listen and data_dir changes take effect after a restart");
    reload_alerting(s, &fresh);
    apply_logging(&fresh);
    /* Swap: the old strings (and file tree) go, the new ones stay. */
    struct cli_config old = s->cfg;
    s->cfg = fresh;
    cli_config_cleanup(&old);
    hs_log(HS_LOG_INFO, "configuration reloaded",
           HS_LSTR("file", s->cfg.config_file ? s->cfg.config_file : "(none)"));
    return HS_OK;
}

static void on_shutdown_done(void *arg)
{
    struct server *s = arg;
    hs_log(HS_LOG_INFO, "http server stopped");
    event_base_loopexit(s->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *s = arg;
    if (sig == SIGHUP) {
        struct hs_err err = {0};
        if (reload(s, &err) != HS_OK)
            hs_log(HS_LOG_ERROR, "reload failed; keeping the running configuration",
                   HS_LSTR("err", err.msg));
        return;
    }
    if (s->is_stopping) {
        hs_log(HS_LOG_WARN, "second signal: stopping now");
        event_base_loopbreak(s->base);
        return;
    }
    s->is_stopping = true;
    s->admin.is_ready = false;
    hs_log(HS_LOG_INFO, "shutting down", HS_LSTR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
           HS_LINT("timeout_ms", s->cfg.shutdown_timeout_ms));
    if (s->gateway != NULL) /* first: no new gateway traffic, streams get the budget */
        gw_stop(s->gateway, s->cfg.shutdown_timeout_ms);
    http_server_shutdown(s->http, s->cfg.shutdown_timeout_ms, on_shutdown_done, s);
}

/* The PromQL engine and the Prometheus HTTP API over the (lazily opened) store. */
static int start_query_api(struct server *s, struct hs_err *err)
{
    promql_engine_opts_default(&s->engine_opts);
    s->engine_opts.lookback_ms = s->cfg.query_lookback_ms;
    s->engine_opts.timeout_ms = s->cfg.query_timeout_ms;
    s->engine_opts.max_samples = s->cfg.query_max_samples;
    s->engine = promql_engine_new(&s->engine_opts);
    s->storage = cli_lazy_storage_new();
    hs_buf_init(&s->config_yaml, 0);
    hs_arena_init(&s->api_strings, 4096, 0);
    const char **flags = cli_config_flag_pairs(&s->cfg, &s->api_strings);
    if (s->engine == NULL || s->storage == NULL || flags == NULL ||
        cli_config_render_yaml(&s->cfg, &s->config_yaml) != HS_OK)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    char retention[32];
    hs_format_duration(s->cfg.retention_ms, retention, sizeof(retention));
    char *retention_copy = hs_arena_strndup(&s->api_strings, retention, strlen(retention));
    if (retention_copy == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    struct api_prom_config pc = {0};
    pc.engine = s->engine;
    cli_lazy_storage_view(s->storage, &s->query_storage);
    pc.storage = s->query_storage;
    pc.engine_opts = &s->engine_opts;
    pc.workers = (int)s->cfg.query_workers;
    pc.max_queued = (int)s->cfg.query_max_queued;
    pc.timeout_ms = s->cfg.query_timeout_ms;
    pc.enable_admin = s->cfg.enable_admin_api;
    pc.config_yaml = s->config_yaml.p;
    pc.flags = flags;
    pc.storage_retention = retention_copy;
    pc.start_time_s = s->start_time_s;
    pc.tsdb_status = cli_tsdb_status;
    pc.tsdb_status_release = cli_tsdb_status_release;
    pc.tsdb_status_arg = &s->db;
    pc.delete_series = cli_tsdb_delete;
    pc.clean_tombstones = cli_tsdb_clean_tombstones;
    pc.admin_arg = &s->db;
    pc.targets = targets_data;
    pc.targets_arg = s;
    pc.rules = rules_data;
    pc.rules_arg = s;
    pc.alerts = alerts_data;
    pc.alerts_arg = s;
    s->prom = api_prom_new(s->base, &pc, err);
    if (s->prom == NULL)
        return err ? err->code : HS_ENOMEM;
    return api_prom_register(s->prom, s->http);
}

/* The dashboard: exact routes "/" and "/index.html" plus "/assets/", so the
 * API, /metrics and /-/ routes are never shadowed. */
static int start_ui(struct server *s, struct hs_err *err)
{
    s->ui = ui_new(err);
    if (s->ui == NULL)
        return err ? err->code : HS_ENOMEM;
    return ui_register(s->http, s->ui, err);
}

static int start_http(struct server *s, struct hs_err *err)
{
    struct http_server_config hc;
    http_server_config_defaults(&hc);
    hc.listen = s->cfg.listen;
    hc.max_connections = (int)HS_MIN(s->cfg.http_max_connections, 1000000);
    hc.max_header_bytes = (size_t)s->cfg.http_max_header_bytes;
    hc.max_body_bytes = (size_t)s->cfg.http_max_body_bytes;
    hc.header_timeout_ms = s->cfg.http_header_timeout_ms;
    hc.read_timeout_ms = s->cfg.http_read_timeout_ms;
    hc.write_timeout_ms = s->cfg.http_write_timeout_ms;
    hc.idle_timeout_ms = s->cfg.http_idle_timeout_ms;
    s->http = http_server_new(s->base, &hc, err);
    if (s->http == NULL)
        return err ? err->code : HS_ENOMEM;
    s->metrics = api_metrics_new(s->start_time_s);
    if (s->metrics == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    s->admin.metrics = s->metrics;
    s->admin.reload = reload;
    s->admin.reload_arg = s;
    http_server_set_observer(s->http, api_metrics_observe_http, s->metrics);
    http_server_set_error_formatter(s->http, api_error_formatter, NULL);
    int rc = api_admin_register(s->http, &s->admin);
    if (rc == HS_OK)
        rc = start_query_api(s, err);
    if (rc == HS_OK)
        rc = start_ui(s, err);
    if (rc == HS_OK)
        rc = ui_grafana_register(s->http, err); /* GET /api/v1/grafana-dashboard */
    if (rc != HS_OK)
        return err && err->code ? err->code : hs_err_set(err, rc, "%s", hs_strerror(rc));
    return http_server_start(s->http, err);
}

static int add_signal(struct server *s, int sig, struct event **ev)
{
    *ev = evsignal_new(s->base, sig, on_signal, s);
    if (*ev == NULL || evsignal_add(*ev, NULL) != 0)
        return HS_ENOMEM;
    return HS_OK;
}

static void server_cleanup(struct server *s)
{
    if (s->has_opener)
        pthread_join(s->opener, NULL);
    if (s->store_opened)
        event_free(s->store_opened);
    if (s->sig_term)
        event_free(s->sig_term);
    if (s->sig_int)
        event_free(s->sig_int);
    if (s->sig_hup)
        event_free(s->sig_hup);
    /* The loop has stopped, so no callback runs from here on.  First the
     * threads that query and append (they use the engine and the store),
     * then the API (joins its query workers) and the server, then what
     * they used, and the store last. */
    gw_free(s->gateway);             /* first: its thread appends to the store */
    capture_writer_free(s->capture); /* after the gateway, which submits to it */
    rules_manager_free(s->rules);
    rules_notifier_free(s->notifier); /* after the rules: they enqueue into it */
    if (s->pricing_timer)
        event_free(s->pricing_timer);
    scrape_manager_free(s->scrape); /* stops every loop (staleness markers) and its thread */
    if (s->has_fetcher)
        scrape_fetcher_http_free(&s->fetcher);
    collect_free(s->collect);
    api_prom_free(s->prom); /* before the server: it finishes held requests */
    http_server_free(s->http);
    ui_free(s->ui);               /* after the server: it routes to the table */
    api_remote_write_free(s->rw); /* after the server: no request can reach it now */
    api_metrics_free(s->metrics);
    promql_engine_free(s->engine);
    cli_lazy_storage_free(s->storage);
    hs_buf_cleanup(&s->config_yaml);
    hs_arena_cleanup(&s->api_strings);
    if (s->db != NULL) {
        tsdb_close(s->db); /* flushes and fsyncs the WAL */
        hs_log(HS_LOG_INFO, "store closed");
    }
    if (s->base)
        event_base_free(s->base);
    cli_config_cleanup(&s->cfg);
}

static int run(struct server *s)
{
    struct hs_err err = {0};
    int rc = hs_mkdir_p(s->cfg.data_dir, &err);
    if (rc != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot use the data directory", HS_LSTR("err", err.msg));
        return CLI_EXIT_FAILURE;
    }
    if (evthread_use_pthreads() != 0) {
        hs_log(HS_LOG_ERROR, "cannot make the event loop thread-aware");
        return CLI_EXIT_FAILURE;
    }
    s->base = event_base_new();
    if (s->base == NULL) {
        hs_log(HS_LOG_ERROR, "cannot create the event loop");
        return CLI_EXIT_FAILURE;
    }
    if (add_signal(s, SIGTERM, &s->sig_term) != HS_OK ||
        add_signal(s, SIGINT, &s->sig_int) != HS_OK ||
        add_signal(s, SIGHUP, &s->sig_hup) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot install signal handlers");
        return CLI_EXIT_FAILURE;
    }
    if (start_http(s, &err) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the HTTP server", HS_LSTR("listen", s->cfg.listen),
               HS_LSTR("err", err.msg));
        return CLI_EXIT_FAILURE;
    }
    hs_log(HS_LOG_INFO, "holoscope started", HS_LSTR("version", HS_VERSION),
           HS_LSTR("revision", HS_COMMIT), HS_LSTR("data_dir", s->cfg.data_dir));
    hs_log(HS_LOG_INFO, "listening", HS_LSTR("listen", s->cfg.listen),
           HS_LINT("port", http_server_port(s->http)));
    if (start_store(s) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the store opener thread");
        return CLI_EXIT_FAILURE;
    }
    event_base_dispatch(s->base);
    return s->exit_code;
}

/*
 * Keeps freed memory in the process for the next query instead of giving it
 * back to the kernel and faulting it in again: a dashboard histogram query
 * over an hour of 2,000 series allocates ~20 MiB of short-lived arrays, and
 * with glibc's defaults each run paid ~4,900 page faults (about a tenth of
 * its time).  Up to 64 MiB of free heap is kept; blocks of 16 MiB and more
 * still come from and return to mmap.
 */
static void keep_freed_memory(void)
{
    HS_IGNORE_RESULT(mallopt(M_MMAP_THRESHOLD, 16 << 20));
    HS_IGNORE_RESULT(mallopt(M_TRIM_THRESHOLD, 64 << 20));
}

int cli_cmd_serve(int argc, char **argv, char **envp)
{
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_serve, stdout);
        cli_config_print_help(stdout);
        fputs(cli_help_serve_tail, stdout);
        return CLI_EXIT_OK;
    }
    keep_freed_memory();
    struct server s;
    memset(&s, 0, sizeof(s));
    s.argc = argc - 1;
    s.argv = argv + 1;
    s.envp = envp;
    s.start_time_s = hs_now_seconds();
    cli_config_init(&s.cfg);
    struct hs_err err = {0};
    int *rest = hs_calloc((size_t)argc + 1, sizeof(int));
    int nrest = 0;
    if (rest == NULL) {
        fprintf(stderr, "holoscope serve: out of memory\n");
        cli_config_cleanup(&s.cfg);
        return CLI_EXIT_FAILURE;
    }
    int rc = cli_config_load(&s.cfg, s.argc, s.argv, envp, rest, &nrest, &err);
    if (rc == HS_OK && nrest > 0)
        rc = hs_err_set(&err, HS_EINVAL,
                        "unknown option or argument \"%s\" (see holoscope serve "
                        "--help)",
                        s.argv[rest[0]]);
    hs_free(rest);
    if (rc == HS_OK)
        rc = cli_config_validate(&s.cfg, &err);
    if (rc != HS_OK) {
        fprintf(stderr, "holoscope serve: %s\n", err.msg);
        cli_config_cleanup(&s.cfg);
        return CLI_EXIT_USAGE;
    }
    apply_logging(&s.cfg);
    signal(SIGPIPE, SIG_IGN);
    int code = run(&s);
    server_cleanup(&s);
    hs_log(code == CLI_EXIT_OK ? HS_LOG_INFO : HS_LOG_ERROR, "holoscope stopped",
           HS_LINT("exit_code", code));
    return code;
}
