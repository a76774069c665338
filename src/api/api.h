/*
 * api.h - holoscope's HTTP endpoints: the management endpoints (/-/healthy,
 * /-/ready, /-/reload), self-metrics at /metrics, and (growing with later
 * work) the Prometheus HTTP API and the remote-write receiver.
 *
 * Self-metrics: struct api_metrics holds holoscope's own counters that no
 * other module owns (HTTP requests by handler and code, request durations)
 * and renders them, together with process and build information and every
 * registered collector, in the Prometheus text format 0.0.4.
 *
 * Threading: loop thread only (the thread of the http server's event base),
 * except where a function says otherwise.  Collectors are called on the loop
 * thread and must read their module's state safely (atomics or a snapshot).
 */
#ifndef HS_API_H
#define HS_API_H

#include "core/core.h"
#include "http/http.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- exposition writer -----------------------------------------------------
 * Small helpers that write the Prometheus text format.  A family header is
 * written once, then its samples.  Label pairs are given as a NULL-terminated
 * array of alternating names and values ({"handler", "/metrics", NULL}).
 */
HS_MUST_CHECK int api_expo_family(struct hs_buf *out, const char *name, const char *type,
                                  const char *help);
HS_MUST_CHECK int api_expo_sample(struct hs_buf *out, const char *name, const char *const *labels,
                                  double value);

/* A source of metrics: appends complete families to 'out'.  Returns HS_OK or
 * an error (then what it appended is dropped). */
typedef int api_collector_fn(void *arg, struct hs_buf *out);

struct api_metrics;

/* Creates the registry. 'start_time_s' is the process start time (epoch s). */
struct api_metrics *api_metrics_new(double start_time_s);
void api_metrics_free(struct api_metrics *m);

/* Adds a collector; called in registration order on every render.  'arg' is
 * borrowed and must outlive the registry. */
HS_MUST_CHECK int api_metrics_add_collector(struct api_metrics *m, api_collector_fn *fn, void *arg);

/* An http_observer_fn: pass it with the registry to http_server_set_observer. */
void api_metrics_observe_http(void *m, const char *handler, const char *method, int status,
                              double duration_s, uint64_t request_bytes, uint64_t response_bytes);

/* Renders every metric into 'out' (text format 0.0.4). */
HS_MUST_CHECK int api_metrics_render(struct api_metrics *m, struct hs_buf *out);

/* A collector (api_collector_fn) writing the store's counters as
 * holoscope_tsdb_* families; 'arg' is the struct tsdb *. */
int api_tsdb_collector(void *arg, struct hs_buf *out);

/* ---- management endpoints ---------------------------------------------------- */

/* What the endpoints need from the process that serves them. */
struct api_admin {
    struct api_metrics *metrics; /* borrowed */
    bool is_ready;               /* /-/ready answers 200 only when true; set by the owner */
    /* Called by POST /-/reload and on SIGHUP; returns HS_OK or fills err. */
    int (*reload)(void *arg, struct hs_err *err);
    void *reload_arg;
};

/* Routes /-/healthy, /-/ready, /-/reload and /metrics on 'srv'.  'admin' is
 * borrowed and must outlive the server. */
HS_MUST_CHECK int api_admin_register(struct http_server *srv, struct api_admin *admin);

/* Prometheus-style JSON error bodies for every error the server answers:
 * {"status":"error","errorType":"bad_data","error":"..."}.  An
 * http_error_formatter_fn. */
int api_error_formatter(void *arg, int status, const char *msg, struct hs_buf *out,
                        const char **content_type);

/* ---- Prometheus HTTP API ---- */
/*
 * Prometheus' HTTP API under /api/v1 (prom.c: queries, series, labels,
 * metadata, status and admin endpoints), answered with Prometheus' exact
 * parameters, JSON and errors so that Grafana, promtool and other clients
 * work unmodified (parsers in prom_params.c):
 *   {"status":"success","data":...[,"warnings":[...]][,"infos":[...]]}
 *   {"status":"error","errorType":"bad_data","error":"invalid parameter ..."}
 * with 400 for bad_data, 422 execution, 503 timeout/canceled/unavailable,
 * 404 not_found, 500 internal.
 *
 * Queries, series and label look-ups run on a small worker pool (pool.c) so
 * the event loop never waits for storage; a worker hands the finished answer
 * back to the loop with event_active(), which needs evthread_use_pthreads()
 * to have been called before the event_base was created.  The queue is
 * bounded (503 "too many queries" past it); a query is cancelled when its
 * client goes away and fails with errorType timeout past its deadline
 * (counted from the request's arrival, queue time included).
 *
 * Threading: api_prom_* on the loop thread; the parsers (api_prom_parse_*)
 * and api_pool_submit/api_pool_load from any thread.
 */
#include "promql/promql.h"
#include "tsdb/tsdb.h"

struct event_base;

/* ---- parameter parsers (prom_params.c) -------------------------------------- */

/* Prometheus' boundaries for a missing start/end in series and label look-ups
 * ("-292273086-05-16T16:47:06Z" and "292277026596-12-04T15:30:07.999999999Z"). */
#define API_PROM_MIN_TIME_MS (-9223309901257974000LL)
#define API_PROM_MAX_TIME_MS 9223309901257974999LL

/*
 * Parses a time parameter: unix seconds as a float ("1435781451.781",
 * rounded to the millisecond) or RFC 3339 ("2015-07-01T20:10:51.781Z",
 * "2015-07-01T22:10:51+02:00", fractions to nanoseconds, truncated to ms),
 * or one of the two boundary strings above.  Fails with HS_EPARSE and
 * "cannot parse \"S\" to a valid timestamp".
 */
HS_MUST_CHECK int api_prom_parse_time(const char *s, int64_t *t_ms, struct hs_err *err);

/*
 * Parses a duration parameter: float seconds ("15", "0.5", "-1") or a
 * Prometheus duration ("1m30s", "250ms").  Result in ms (truncated), may be
 * negative for the float form.  Fails with HS_EPARSE and "cannot parse \"S\"
 * to a valid duration" (". It overflows int64" when it does).
 */
HS_MUST_CHECK int api_prom_parse_duration(const char *s, int64_t *ms, struct hs_err *err);

/* Parses a limit parameter: "" is 0 (no limit); otherwise a non-negative
 * decimal integer, else HS_EPARSE with Prometheus' wording. */
HS_MUST_CHECK int api_prom_parse_limit(const char *s, int64_t *limit, struct hs_err *err);

/*
 * Parses one match[] series selector: a metric name, a brace list, or both:
 *   up   up{job="api"}   {__name__=~"http_.*",code!="200"}   {"my.metric",a!~'x'}
 * with the four matcher operators, PromQL string literals ("...", '...' with
 * escapes, `...` raw) and Prometheus 3 quoted names.  At least one matcher
 * must not match the empty string.  The matchers (strings included) come
 * from 'arena'; regex matchers are compiled and are freed by a cleanup
 * registered on the arena (hs_arena_reset or hs_arena_cleanup).  Fails with
 * HS_EPARSE, err->pos set and a message "1:COL: parse error: ..." (an
 * invalid regex is reported at 1:1), or HS_ENOMEM.
 */
HS_MUST_CHECK int api_prom_parse_selector(const char *s, struct hs_arena *arena,
                                          struct promql_matcher **out, size_t *n,
                                          struct hs_err *err);

/*
 * Undoes Prometheus 3's "U__" name escaping ("U__my_2e_name" -> "my.name",
 * "__" -> "_").  A name without the prefix, or one whose escapes are
 * malformed, is returned as it is (as Prometheus does).  *out is 's' itself
 * or a string from 'arena'; NULL arena memory gives HS_ENOMEM.
 */
HS_MUST_CHECK int api_prom_unescape_name(const char *s, struct hs_arena *arena, const char **out);

/* ---- worker pool (pool.c) ---------------------------------------------------- */

struct api_pool;
struct api_pool_job;
/* Runs on a worker thread. */
typedef void api_pool_work_fn(struct api_pool_job *job);
/* Runs on the loop thread after 'work' finished (status HS_OK), or inside
 * api_pool_free for a job that never ran (status HS_ECLOSED). */
typedef void api_pool_done_fn(struct api_pool_job *job, int status);

/* Embedded by the caller in its own job struct; the pool uses the fields. */
struct api_pool_job {
    struct api_pool_job *next; /* the pool's queue link */
    api_pool_work_fn *work;
    api_pool_done_fn *done;
};

/*
 * Starts 'workers' threads (1..64) whose results come back on 'base'
 * (borrowed; it must outlive the pool and be thread-aware).  'max_queued'
 * jobs may wait beyond the running ones (0: none).  NULL with err set on a
 * bad argument or failure to start.
 */
struct api_pool *api_pool_new(struct event_base *base, int workers, int max_queued,
                              struct hs_err *err);

/*
 * Queues 'job' (borrowed until its done callback).  Returns HS_OK (done will
 * fire exactly once, on the loop thread) or HS_EAGAIN when the queue is
 * full, HS_ECLOSED when the pool is stopping (done never fires).
 * Threading: any thread (the pool locks itself).
 */
HS_MUST_CHECK int api_pool_submit(struct api_pool *p, struct api_pool_job *job,
                                  api_pool_work_fn *work, api_pool_done_fn *done);

/* Jobs waiting plus jobs running (any thread; a snapshot). */
int api_pool_load(struct api_pool *p);

/*
 * Stops the pool: lets running jobs finish (callers cancel them first),
 * joins the threads, then calls done for every job: HS_OK for finished
 * ones, HS_ECLOSED for those that never ran.  Call on the loop thread or
 * after the loop stopped.  NULL is a no-op.
 */
void api_pool_free(struct api_pool *p);

/* ---- the API ------------------------------------------------------------------ */

/*
 * A data source for an endpoint another module fills (targets, rules,
 * alerts, metadata, ...): appends the JSON value of "data" to 'out'.  'r'
 * gives the request's parameters (http_request_param).  Returns HS_OK;
 * HS_EINVAL or HS_EPARSE (answered 400 bad_data with err->msg) or another
 * error (500 internal).  Called on the loop thread.
 */
typedef int api_prom_data_fn(void *arg, struct http_request *r, struct hs_buf *out,
                             struct hs_err *err);

struct api_prom_config {
    struct promql_engine *engine;                 /* borrowed; thread-safe (promql.h) */
    struct promql_storage storage;                /* borrowed; must allow concurrent readers */
    const struct promql_engine_opts *engine_opts; /* the engine's options (borrowed, may be
                                                     NULL = defaults); used for the
                                                     lookback_delta parameter */
    int workers;                                  /* query threads; 0 = 2 */
    int max_queued;                /* waiting queries beyond the running ones; 0 = 16 */
    int64_t timeout_ms;            /* query timeout when none is given (and ceiling); 0 = the
                                      engine_opts' timeout, else 120000 */
    size_t max_response_bytes;     /* ceiling of one JSON answer; 0 = 256 MiB */
    size_t max_matchers;           /* match[] parameters per request; 0 = 64 */
    bool enable_admin;             /* admin endpoints (--web.enable-admin-api) */
    const char *config_yaml;       /* /status/config text; borrowed; NULL = "" */
    const char *const *flags;      /* /status/flags: NULL-terminated name, value, ... */
    const char *storage_retention; /* runtimeinfo's storageRetention ("15d"); NULL = "" */
    double start_time_s;           /* process start (epoch s) for runtimeinfo; 0 = now */

    /* Optional data sources (NULL: the empty answer Prometheus gives with
     * nothing configured).  Each gets its own arg. */
    api_prom_data_fn *targets; /* {"activeTargets":[],"droppedTargets":[]} */
    void *targets_arg;
    api_prom_data_fn *targets_metadata; /* [] */
    void *targets_metadata_arg;
    api_prom_data_fn *metadata; /* {} */
    void *metadata_arg;
    api_prom_data_fn *rules; /* {"groups":[]} */
    void *rules_arg;
    api_prom_data_fn *alerts; /* {"alerts":[]} */
    void *alerts_arg;
    api_prom_data_fn *alertmanagers; /* {"activeAlertmanagers":[],"droppedAlertmanagers":[]} */
    void *alertmanagers_arg;
    api_prom_data_fn *walreplay; /* {"min":0,"max":0,"current":0} */
    void *walreplay_arg;

    /* /status/tsdb: fills 'out' with the top 'top_n' entries (tsdb_status_get
     * fits); the API calls tsdb_status_release afterwards.  NULL: zeros. */
    int (*tsdb_status)(void *arg, size_t top_n, struct tsdb_status *out, struct hs_err *err);
    void (*tsdb_status_release)(void *arg, struct tsdb_status *st);
    void *tsdb_status_arg;

    /* Admin endpoints (only with enable_admin).  delete_series is called once
     * per match[] selector, on the loop thread; the matchers are compiled. */
    int (*delete_series)(void *arg, const struct promql_matcher *ms, size_t n, int64_t mint_ms,
                         int64_t maxt_ms, struct hs_err *err);
    int (*clean_tombstones)(void *arg, struct hs_err *err);
    void *admin_arg;
};

struct api_prom;

/*
 * Creates the API and its worker pool on 'base' (borrowed, thread-aware).
 * The config is copied; the pointers in it are borrowed and must outlive the
 * API.  NULL with err set on a bad config or failure.
 */
struct api_prom *api_prom_new(struct event_base *base, const struct api_prom_config *c,
                              struct hs_err *err);

/* Routes every /api/v1 endpoint on 'srv' ('p' must outlive the routes'
 * use).  Returns HS_OK or HS_ENOMEM. */
HS_MUST_CHECK int api_prom_register(struct api_prom *p, struct http_server *srv);

/* Queries waiting or running now (for self-metrics). */
int api_prom_queries_in_flight(struct api_prom *p);

/*
 * Cancels running queries, joins the workers and answers every request
 * still held (503 unavailable, or released when its client left).  Call on
 * the loop thread (or after the loop stopped) and before http_server_free.
 * NULL is a no-op.
 */
void api_prom_free(struct api_prom *p);

/* ---- end of Prometheus HTTP API ---- */

/* ---- remote-write receiver ---- */
/*
 * POST /api/v1/write (remote_write.c): the Prometheus remote-write 1.0
 * receiver.  The body (snappy block of a protobuf WriteRequest) is decoded
 * and validated by export_rw_decode, then every sample goes through one
 * tsdb appender, committed once per request.  Answers, as the spec asks:
 *   204  everything stored;
 *   400  corrupt snappy, malformed protobuf, invalid labels (nothing stored),
 *        or samples the store rejected (out of order, duplicate timestamp
 *        with another value, too old, over a series limit): the accepted
 *        samples of the request are still stored (partial ingestion, which
 *        the spec allows) and the body says how many were rejected and why;
 *   413  body or decoded request past a ceiling;
 *   415  Content-Encoding other than snappy, Content-Type other than
 *        application/x-protobuf (remote-write 2.0 included), or an
 *        X-Prometheus-Remote-Write-Version whose major is not 0 or 1;
 *   500  out of memory or a storage (WAL) error: the sender retries.
 * Missing Content-Type, Content-Encoding or version headers are accepted as
 * 1.0 (as Prometheus does).  Error bodies are one line of plain text.
 * Every answer carries X-Prometheus-Remote-Write-Version: 0.1.0.
 *
 * Decoding and appending run on the loop thread (the appender is
 * thread-safe and fast; with wal_fsync = batch the commit's fsync blocks the
 * loop).  Counters are atomics: api_remote_write_get_stats and the collector
 * may run on any thread.
 */
#include "export/export.h"

struct api_remote_write_config {
    size_t max_body_bytes;          /* compressed body; beyond: 413; 0 = 16 MiB (the server's
                                       own max_body_bytes applies first) */
    struct export_rw_limits limits; /* decode ceilings (export.h) */
};

/* Fills the defaults: 16 MiB bodies and export_rw_limits_defaults. */
void api_remote_write_config_defaults(struct api_remote_write_config *c);

/* Totals since registration. */
struct api_remote_write_stats {
    uint64_t requests;              /* requests answered */
    uint64_t requests_by_code[6];   /* 204, 400, 413, 415, 500, other */
    uint64_t bytes_received;        /* compressed body bytes */
    uint64_t bytes_decompressed;    /* protobuf bytes of decoded requests */
    uint64_t samples_received;      /* samples of decoded requests */
    uint64_t samples_appended;      /* accepted by the store and committed */
    uint64_t rejected_out_of_order; /* store said "out of order sample" */
    uint64_t rejected_duplicate;    /* same timestamp, another value */
    uint64_t rejected_too_old;      /* before the head or the retention horizon */
    uint64_t rejected_limit;        /* a series or label limit of the store */
    uint64_t rejected_other;        /* any other refusal of the store */
    uint64_t exemplars_dropped;     /* received and not stored */
    uint64_t histograms_dropped;    /* native histogram samples, not stored */
    uint64_t metadata_dropped;      /* MetricMetadata entries, not stored */
};

struct api_remote_write;

/*
 * Routes POST /api/v1/write on 'srv' (handler name "/api/v1/write"),
 * writing into 'db' (borrowed; must outlive the server's use of the route).
 * 'cfg' is copied; NULL means defaults.  Returns the receiver, which the
 * caller frees with api_remote_write_free after http_server_free, or NULL
 * with err set (out of memory, route refused).
 */
struct api_remote_write *api_remote_write_register(struct http_server *srv, struct tsdb *db,
                                                   const struct api_remote_write_config *cfg,
                                                   struct hs_err *err);

/* Frees the receiver.  NULL is a no-op. */
void api_remote_write_free(struct api_remote_write *rw);

/* Copies the counters.  Threading: any thread. */
void api_remote_write_get_stats(const struct api_remote_write *rw,
                                struct api_remote_write_stats *out);

/* A collector (api_collector_fn) writing the counters as
 * holoscope_remote_write_* families; 'arg' is the struct api_remote_write *. */
int api_remote_write_collector(void *arg, struct hs_buf *out);

/* ---- end of remote-write receiver ---- */

/* ---- capture browser (captures.c) ---- */

/* The capture directory the endpoint reads; embedded by the caller. */
struct api_captures {
    const char *dir; /* capture root (borrowed; must outlive the server) */
};

/*
 * Routes GET /api/v1/captures?model=&start=&end=&limit= on 'srv': the
 * captured records (newest first, with their measurements) as
 * {"status":"success","data":[...]} (see capture_query in
 * gateway/capture.h).  start/end take the Prometheus time forms; limit
 * defaults to 100 and may not exceed 1000.  Bad parameters: 400 bad_data.
 * The files are read on the loop thread, bounded by limit and 64 MiB.
 * 'c' is borrowed and must outlive the server.
 */
HS_MUST_CHECK int api_captures_register(struct http_server *srv, struct api_captures *c);

#endif
