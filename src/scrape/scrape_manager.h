/*
 * scrape_manager.h - the engine that runs the scrape pieces: a scrape loop
 * per target (fetch, parse, label, relabel, map, append, staleness, report
 * series) and a manager that builds targets from a scrape configuration,
 * schedules the loops on its own event loop thread and answers target health
 * for the API.
 *
 * The loop does not know how bytes are fetched: the manager is given a fetch
 * function (struct scrape_fetcher) that delivers status, body, content type
 * and error text for a URL.  The HTTP client plugs in behind it; tests use a
 * fake.
 *
 * Memory: a loop copies its target's labels and URL; it borrows its job (and
 * so the job's metric_relabel_configs), the mapping table and the store, which
 * must outlive it.  The manager owns every configuration it is given.
 *
 * Threading: a scrape loop is driven by one thread at a time (the manager's
 * loop thread); scrape_loop_health and scrape_loop_get_stats may be called
 * from any thread (they copy under the loop's lock).  The manager's public
 * functions are thread-safe unless their contract says otherwise.
 */
#ifndef HS_SCRAPE_MANAGER_H
#define HS_SCRAPE_MANAGER_H

#include "core/core.h"
#include "scrape/scrape.h"
#include "scrape/scrape_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tsdb;
struct event_base;
struct http_request;

/* ---- fetch interface ------------------------------------------------------ */

/* One scrape request.  Every pointer is borrowed for the duration of the
 * fetch function call only (the fetcher copies what it keeps). */
struct scrape_fetch_request {
    const char *url;           /* "http://host:port/metrics?x=y" */
    const char *accept;        /* Accept header value */
    const char *authorization; /* full Authorization header value, or NULL */
    int64_t timeout_ms;        /* whole request deadline */
    uint64_t max_body_bytes;   /* 0 = no limit; beyond it the fetch fails with HS_ETOOBIG */
    bool accept_gzip;          /* send Accept-Encoding: gzip */
    const struct scrape_tls_config *tls; /* the job's tls_config, or NULL: the fetcher's */
};

/* What a fetch delivered.  Borrowed by the completion callback only. */
struct scrape_fetch_result {
    int code;                     /* HS_OK when a response arrived, else a negative hs_code */
    const char *error;            /* text for a failed fetch ("connection refused"), or NULL */
    int status;                   /* HTTP status when code is HS_OK */
    const char *content_type;     /* may be NULL */
    const char *content_encoding; /* "gzip" when the body is still compressed, else NULL */
    const char *body;
    size_t body_len;
};

typedef void scrape_fetch_done_fn(void *done_arg, const struct scrape_fetch_result *res);

/*
 * Start fetching 'req' on 'base' (the manager's loop).  Returns HS_OK and
 * later calls done(done_arg, result) exactly once on the loop thread, or
 * returns an error and never calls it.  A fetcher may complete synchronously
 * (call done before returning HS_OK).
 */
typedef int scrape_fetch_fn(void *fetch_arg, struct event_base *base,
                            const struct scrape_fetch_request *req, scrape_fetch_done_fn *done,
                            void *done_arg);

/*
 * Called once on the manager's loop thread when the manager stops, before
 * its event_base is freed: the fetcher cancels what is in flight (no done
 * callback may fire afterwards) and releases what it built on that base.
 */
typedef void scrape_fetch_shutdown_fn(void *fetch_arg);

struct scrape_fetcher {
    scrape_fetch_fn *fetch;
    scrape_fetch_shutdown_fn *shutdown; /* may be NULL */
    void *arg;
};

/*
 * The fetcher that scrapes over HTTP with the http module's client.  The
 * client is created on the manager's event_base at the first fetch and
 * freed by the fetcher's shutdown (cancelling calls in flight).  'cfg' is
 * copied, its strings borrowed until the fetcher is freed (NULL =
 * http_client_config_defaults); its TLS settings apply to every https
 * target of a job without tls_config.  A request with a job's tls_config
 * goes through a client of its own for each distinct set of TLS settings
 * (created on first use, its files loaded then: a bad file fails the
 * scrapes of that job with the reason).  Requests carry Accept, Accept-Encoding: gzip (the
 * body arrives inflated), Authorization when the job has credentials,
 * User-Agent and X-Prometheus-Scrape-Timeout-Seconds; the total timeout is
 * the target's scrape_timeout and the body ceiling its body_size_limit.
 * Free with scrape_fetcher_http_free after the manager is freed.
 */
struct http_client_config;
HS_MUST_CHECK int scrape_fetcher_http_new(const struct http_client_config *cfg,
                                          struct scrape_fetcher *out, struct hs_err *err);
void scrape_fetcher_http_free(struct scrape_fetcher *f);

/* ---- scrape loop -------------------------------------------------------------- */

enum scrape_health {
    SCRAPE_HEALTH_UNKNOWN = 0,
    SCRAPE_HEALTH_UP = 1,
    SCRAPE_HEALTH_DOWN = 2,
};

/* Counters of one loop, or summed over a manager's loops. */
struct scrape_stats {
    uint64_t scrapes_total;         /* attempts ingested */
    uint64_t scrapes_failed;        /* of which up = 0 */
    uint64_t samples_scraped;       /* raw samples read from targets (as scrape_samples_scraped) */
    uint64_t samples_appended;      /* raw + unified + report samples accepted by the store */
    uint64_t samples_rejected;      /* refused by the store (out of order, limits, ...) */
    uint64_t samples_duplicate;     /* same series twice in one scrape (later ones skipped) */
    uint64_t stale_markers;         /* staleness markers written */
    uint64_t cache_hits;            /* samples appended by ref from the series cache */
    uint64_t cache_misses;          /* samples that went through label building */
    uint64_t exceeded_sample_limit; /* scrapes failed on sample_limit */
    uint64_t exceeded_label_limits; /* scrapes failed on a label limit */
    uint64_t exceeded_body_size;    /* scrapes failed on body_size_limit */
    uint64_t targets_up, targets_down, targets_unknown; /* manager only */
    uint64_t sd_http_refreshes, sd_http_failures;       /* manager only: http_sd polls */
};

/* Health of one target, as /api/v1/targets shows it. */
struct scrape_target_health {
    int health;             /* enum scrape_health */
    int64_t last_scrape_ms; /* start of the last scrape, 0 = never */
    double last_duration_s; /* fetch + ingest of the last scrape */
    char last_error[512];   /* "" when the last scrape succeeded */
    uint64_t last_samples;  /* samples scraped in the last scrape */
    uint64_t last_series;   /* series in the cache after it */
    int backend;            /* enum scrape_backend detected (or pinned), NONE until known */
};

struct scrape_loop;

/*
 * Create the loop for active target 't' of 'job'.  'job', 'mapping' and 'db'
 * are borrowed and must outlive the loop; the target's labels, discovered
 * labels and URL parts are copied.  Returns HS_OK or HS_ENOMEM (err set).
 */
HS_MUST_CHECK int scrape_loop_new(const struct scrape_job *job, const struct scrape_target *t,
                                  const struct scrape_mapping *mapping, struct tsdb *db,
                                  struct scrape_loop **out, struct hs_err *err);
/* Frees the loop (no staleness: see scrape_loop_stale_all).  NULL is a no-op. */
void scrape_loop_free(struct scrape_loop *l);

/*
 * Ingest one fetch result taken at 'start_ms' (the scrape timestamp) that
 * took 'fetch_s' seconds: check status and limits, decompress, parse, label
 * and relabel, append raw and unified samples, write staleness markers for
 * series that disappeared, and the report series (up, scrape_duration_seconds,
 * scrape_samples_scraped, scrape_samples_post_metric_relabeling,
 * scrape_series_added).  A bad response (fetch error, non-200, body over
 * the limit, a parse error, sample/label limit exceeded) makes the whole
 * scrape fail: nothing of it is stored, every series of the previous scrape
 * gets a staleness marker, `up` is 0, and the error text is the target's
 * last error.  Returns HS_OK when up = 1, else the failure's code with the
 * same text in 'err'.  Store-level rejections of single samples are counted,
 * not failures.  Threading: the loop's thread.
 */
HS_MUST_CHECK int scrape_loop_ingest(struct scrape_loop *l, int64_t start_ms, double fetch_s,
                                     const struct scrape_fetch_result *res, struct hs_err *err);

/*
 * The target goes away: staleness markers at 't_ms' for every series of the
 * last successful scrape and for the report series.  Threading: the loop's
 * thread.
 */
HS_MUST_CHECK int scrape_loop_stale_all(struct scrape_loop *l, int64_t t_ms, struct hs_err *err);

/* Offset of this target inside its interval: hash(labels, url) mod interval,
 * so that targets spread over the interval and keep their phase. */
int64_t scrape_loop_offset_ms(const struct scrape_loop *l);
int64_t scrape_loop_interval_ms(const struct scrape_loop *l);
int64_t scrape_loop_timeout_ms(const struct scrape_loop *l);
/* The scrape URL (borrowed, valid for the loop's life). */
const char *scrape_loop_url(const struct scrape_loop *l);
/* Identity of the target: hash of job name, labels and URL. */
uint64_t scrape_loop_key(const struct scrape_loop *l);
/* Fill the request the loop sends ('out' borrows the loop's strings). */
void scrape_loop_request(const struct scrape_loop *l, struct scrape_fetch_request *out);

/*
 * Engines whose series carry no model (TGI, llama.cpp) name it on an info
 * endpoint (metrics-mapping.md 4.2).  Once the loop has detected such an
 * engine and no model is configured, this fills 'out' with that request
 * (TGI GET /info, llama.cpp GET /props, on the scrape URL's scheme, host
 * and port, with the scrape's credentials) and returns true; once per loop,
 * so a target re-created by discovery asks again.  'out' borrows the
 * loop's strings.  Loop thread.
 */
bool scrape_loop_info_request(struct scrape_loop *l, struct scrape_fetch_request *out);
/*
 * The answer to that request: TGI's model_id, llama.cpp's model_alias or
 * else model_path (verbatim) becomes the `model` of the target's series and
 * unified series from the next scrape on; the series without it get stale
 * markers then.  A failure is logged and leaves the series without a model.
 */
void scrape_loop_info_result(struct scrape_loop *l, const struct scrape_fetch_result *res);

/* Copy health / counters.  Threading: any thread. */
void scrape_loop_health(struct scrape_loop *l, struct scrape_target_health *out);
void scrape_loop_get_stats(struct scrape_loop *l, struct scrape_stats *out);

/* Build the scrape URL of a target ("scheme://address/path?params"), from
 * 'arena'.  NULL on out of memory. */
char *scrape_target_url(const struct scrape_target *t, struct hs_arena *arena);

/* Module-internal (manager.c): the loop's target labels, discovered labels
 * and job; borrowed for the loop's life. */
const struct hs_labels *scrape__loop_labels(const struct scrape_loop *l);
const struct hs_labels *scrape__loop_discovered(const struct scrape_loop *l);
const struct scrape_job *scrape__loop_job(const struct scrape_loop *l);

/* ---- manager ---------------------------------------------------------------- */

struct scrape_manager;

struct scrape_manager_options {
    struct scrape_fetcher fetcher; /* required */
    struct tsdb *db;               /* borrowed; required */
    bool disable_jitter;           /* scrape every target at offset 0 (tests) */
};

/*
 * A manager with no targets.  Its thread and event_base start here and run
 * until scrape_manager_free.  HS_ENOMEM or HS_EIO (thread/event_base), err set.
 */
HS_MUST_CHECK int scrape_manager_new(const struct scrape_manager_options *o,
                                     struct scrape_manager **out, struct hs_err *err);

/*
 * Apply a configuration; takes ownership of 'cfg' (also on error).  Targets
 * are rebuilt per job (static + file_sd); loops of unchanged targets (same
 * job settings, labels and URL) keep running, loops of removed targets stop
 * after writing staleness markers, new ones start.  Blocks until the
 * manager's thread has applied it.  HS_ENOMEM / HS_ETOOBIG with err set:
 * jobs are applied one by one, so those before the failing one run with
 * their new settings and the others keep their previous targets.
 */
HS_MUST_CHECK int scrape_manager_apply(struct scrape_manager *m, struct scrape_config *cfg,
                                       struct hs_err *err);

/* Stop every loop (staleness markers for all their series), stop the
 * thread, free everything.  NULL is a no-op. */
void scrape_manager_free(struct scrape_manager *m);

/* Sum of the loops' counters plus targets up/down/unknown. */
void scrape_manager_get_stats(struct scrape_manager *m, struct scrape_stats *out);

/* Number of active targets now. */
size_t scrape_manager_ntargets(struct scrape_manager *m);

/* Health of the active target with label instance=='instance' in 'job'.
 * HS_ENOTFOUND when there is none. */
HS_MUST_CHECK int scrape_manager_target_health(struct scrape_manager *m, const char *job,
                                               const char *instance,
                                               struct scrape_target_health *out);

/*
 * Append the `data` object of Prometheus' /api/v1/targets:
 * {"activeTargets":[...],"droppedTargets":[...]} ('state' = "active",
 * "dropped", "any" or NULL/"" for any; anything else is HS_EINVAL).
 * A consistent snapshot taken under the manager's lock.
 */
HS_MUST_CHECK int scrape_manager_targets_json(struct scrape_manager *m, const char *state,
                                              struct hs_buf *out, struct hs_err *err);

/* An api_prom_data_fn for api.h: 'arg' is the manager; reads the request's
 * `state` parameter (400 bad_data for an unknown one). */
int scrape_manager_targets_api(void *arg, struct http_request *r, struct hs_buf *out,
                               struct hs_err *err);

#endif
