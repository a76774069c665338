/*
 * gateway.h - the OpenAI-compatible streaming gateway: a reverse proxy on
 * its own listen address that routes each request by its "model" field to
 * a pool of upstream replicas (least outstanding requests, health checks,
 * ejection), relays streamed (SSE) answers as they arrive, measures every
 * request as the client sees it (spec/gateway.md §4) and records the
 * results as gen_ai_* / holoscope_gateway_* histograms and counters, kept
 * in memory, appended to the store every few seconds and shown on
 * holoscope's /metrics.
 *
 * Parts: config.c (the `gateway:` section), route.c (model -> route),
 * pool.c (balancing, ejection, health state), gw_metrics.c (the metric
 * registry), proxy.c (the request path), gateway.c (thread and lifecycle).
 * The SSE parser and per-request measurement live in sse.h / measure.h,
 * the capture log in capture.h.
 *
 * Threading: a struct gw runs its own thread with its own event_base,
 * HTTP server and HTTP client; the proxy path never shares a loop with the
 * API.  gw_new, gw_start, gw_reload, gw_stop and gw_free are called from
 * one owning thread; gw_metrics_collect and gw_get_stats from any thread.
 * The config, route and pool functions are plain data functions: a
 * struct gw_pool belongs to one thread.
 */
#ifndef HS_GATEWAY_H
#define HS_GATEWAY_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tsdb;

/* ---- configuration ---------------------------------------------------------- */

/* A header injected into upstream requests ("x-api-key: ..."). */
struct gw_header {
    const char *name;
    const char *value;
};

/* Timeouts of one upstream call; 0 = none. */
struct gw_timeouts {
    int64_t connect_ms;    /* TCP connect (and TLS) */
    int64_t first_byte_ms; /* request sent to response headers read */
    int64_t idle_ms;       /* longest gap between two body reads (SSE chunks) */
    int64_t total_ms;      /* the whole upstream call */
};

/* One replica of an inference component. */
struct gw_upstream_config {
    const char *url;                 /* base URL "http://10.0.0.5:8000" (no trailing slash) */
    const struct gw_header *headers; /* injected into every request to it */
    size_t nheaders;
};

/* A route: requests whose model matches go to the pool of upstreams. */
struct gw_route_config {
    const char *name;           /* the `route` label; default: the model pattern */
    const char *model;          /* exact name, or a glob with * ? [ */
    bool is_glob;               /* model holds a glob character */
    const char *upstream_model; /* model name sent upstream and used as the `model`
                                   label; NULL = the client's (label: the pattern
                                   for globs, the name for exact routes) */
    const char *provider;       /* gen_ai.provider.name; default "openai" */
    struct gw_upstream_config *upstreams;
    size_t nupstreams;
    const struct gw_header *headers; /* injected into every upstream request of the route */
    size_t nheaders;
    struct gw_timeouts timeouts;
    uint64_t max_body_bytes;     /* request body ceiling; beyond: 413 */
    uint64_t max_response_bytes; /* upstream body ceiling (non-streaming and streaming) */
    bool inject_usage;           /* §2.4: add stream_options.include_usage when absent */
    double capture_percentage;   /* 0..100; < 0 = the capture section's default */
    const char *const *paths;    /* request paths bound to this route (§2.2): a request
                                    there without a `model` uses it; GW_PATHS only */
    size_t npaths;
    int line; /* position in the config file, for messages */
};

/* The POST paths the gateway serves: OpenAI's, then the engine-native ones
 * (TGI /generate and /generate_stream, SGLang /generate, llama.cpp
 * /completion) whose bodies often carry no `model`. */
#define GW_PATHS                                                                                   \
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/generate",     \
        "/generate_stream", "/completion"

/* Active health checks and passive ejection of upstreams. */
struct gw_health_config {
    const char *path;         /* GET <url><path>; NULL or "" = no active checks */
    int64_t interval_ms;      /* between checks of one upstream */
    int64_t timeout_ms;       /* per check */
    int unhealthy_threshold;  /* failed checks in a row that eject */
    int healthy_threshold;    /* good checks in a row that re-admit */
    int eject_after_failures; /* failed requests in a row that eject (passive) */
    int64_t eject_ms;         /* passive ejection lasts this long, then probation */
};

struct gw_config {
    const char *listen;             /* "127.0.0.1:9191" */
    struct gw_route_config *routes; /* in match order of the file */
    size_t nroutes;
    struct gw_health_config health;
    int64_t max_connections;        /* client connections */
    const char *tenant_header;      /* request header whose hash labels `tenant`; NULL = none */
    int64_t store_interval_ms;      /* metrics appended to the store this often */
    const char *tracing_endpoint;   /* OTLP/HTTP traces URL; NULL = no spans */
    double tracing_sample_ratio;    /* 0..1 for new traces */
    bool access_log;                /* one log event per request */
    const struct hs_ynode *capture; /* the top-level `capture:` node, borrowed from the doc */
    const struct hs_ydoc *doc;      /* the document it came from (borrowed) */
    struct hs_arena arena;          /* owns everything above */
};

/*
 * Parses the `gateway:` map 'node' of 'doc' (borrowed; only the capture
 * node pointer is kept, so the doc must outlive the config when capture is
 * used).  'capture' is the top-level `capture:` node or NULL.  Errors name
 * "FILE:LINE:COL: gateway.routes[1].upstreams[0]: ..." and return
 * HS_EINVAL; *out is set only on HS_OK.  Caller frees with gw_config_free.
 * Defaults: listen 127.0.0.1:9191, connect 5 s, first byte 60 s, idle
 * 60 s, total 10 min, body 16 MiB, response 64 MiB, inject_usage on,
 * health path none, eject after 5 failures for 30 s, store every 5 s.
 */
HS_MUST_CHECK int gw_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *node,
                                  const struct hs_ynode *capture, struct gw_config **out,
                                  struct hs_err *err);
/* NULL is a no-op. */
void gw_config_free(struct gw_config *c);

/* ---- routing ---------------------------------------------------------------- */

/*
 * The route for 'model': the route whose exact name equals it, else the
 * first glob route (in file order) matching it (fnmatch).  Globs are tried
 * in file order, so the default route "*" belongs last.  NULL when nothing
 * matches (or 'model' is NULL).  Returns a pointer into 'c'.
 */
const struct gw_route_config *gw_route_match(const struct gw_config *c, const char *model);

/* The route bound to request path 'path' (its `paths` list), or NULL. */
const struct gw_route_config *gw_route_for_path(const struct gw_config *c, const char *path);

/* The index of 'r' in c->routes. */
size_t gw_route_index(const struct gw_config *c, const struct gw_route_config *r);

/* Appends the OpenAI list of models ({"object":"list","data":[...]}), one
 * entry per route (the model pattern as id, owned_by "holoscope"). */
HS_MUST_CHECK int gw_routes_models_json(const struct gw_config *c, struct hs_buf *out);

/* Appends the route patterns as "a, b, c" (for the 404 message). */
HS_MUST_CHECK int gw_routes_list(const struct gw_config *c, struct hs_buf *out);

/* ---- upstream pools ----------------------------------------------------------
 * A pool is the upstreams of one route with their live state.  Picking
 * takes the admitted upstream with the fewest outstanding requests (ties:
 * round robin).  Passive ejection: eject_after_failures failed requests in
 * a row eject it for eject_ms; after that it is on probation (admitted;
 * one more failure ejects it again, one success clears it).  Active
 * checks: unhealthy_threshold failed checks in a row eject it until
 * healthy_threshold good checks in a row re-admit it.  When every
 * upstream is ejected the one whose ejection ends first is picked anyway
 * (better an attempt than a certain error).
 */
struct gw_pool;

/* 'route' and 'h' are borrowed and must outlive the pool.  NULL on ENOMEM. */
struct gw_pool *gw_pool_new(const struct gw_route_config *route, const struct gw_health_config *h);
void gw_pool_free(struct gw_pool *p);
size_t gw_pool_size(const struct gw_pool *p);
/* Picks an upstream at 'now_ms' and counts one more outstanding request on
 * it.  Returns its index.  The pool must not be empty. */
size_t gw_pool_acquire(struct gw_pool *p, int64_t now_ms);
/* Ends a request on upstream 'i': 'is_failure' means the upstream failed it
 * (refused, timed out, reset, answered 5xx). */
void gw_pool_release(struct gw_pool *p, size_t i, bool is_failure, int64_t now_ms);
/* Result of one active health check of upstream 'i'. */
void gw_pool_health_result(struct gw_pool *p, size_t i, bool is_ok, int64_t now_ms);
/* State of upstream 'i'. */
size_t gw_pool_outstanding(const struct gw_pool *p, size_t i);
bool gw_pool_is_admitted(const struct gw_pool *p, size_t i, int64_t now_ms);
/* Copies the ejection and health state of 'from' into 'to' for upstreams
 * with the same URL (a reload keeps ejections; outstanding counts stay with
 * the pool the in-flight requests were acquired from). */
void gw_pool_carry_state(struct gw_pool *to, const struct gw_pool *from);

/* ---- the gateway -------------------------------------------------------------- */

struct gw;

struct gw_stats {
    uint64_t requests_total;    /* finished requests */
    uint64_t requests_inflight; /* started, not finished */
    uint64_t streams_total;     /* finished SSE relays */
    uint64_t client_cancelled;  /* clients that left first */
    uint64_t upstream_errors;   /* refused, timed out, reset, mid-stream errors */
    uint64_t store_appends;     /* samples appended to the store */
    uint64_t store_errors;      /* failed appends or commits */
};

/*
 * Creates the gateway for 'cfg' (takes ownership: freed by gw_free or
 * replaced by gw_reload).  'db' (borrowed, may be NULL: metrics then stay
 * in memory and on /metrics only) receives the metrics every
 * store_interval_ms.  Nothing listens yet.  NULL with err set on error.
 */
struct gw *gw_new(struct gw_config *cfg, struct tsdb *db, struct hs_err *err);

/* Binds the listen address and starts the gateway thread.  HS_EIO when the
 * address cannot be bound (err says why). */
HS_MUST_CHECK int gw_start(struct gw *g, struct hs_err *err);

/* The bound port (after gw_start), 0 before. */
int gw_port(const struct gw *g);

/* Hands a new configuration to the running gateway (takes ownership of
 * 'cfg' in every case).  Routes, pools, timeouts and headers change for
 * requests that start afterwards; a changed listen address needs a
 * restart (logged).  Returns HS_OK. */
HS_MUST_CHECK int gw_reload(struct gw *g, struct gw_config *cfg, struct hs_err *err);

struct capture_writer;
/* Sets the capture writer (borrowed; NULL turns capture off; it must
 * outlive the gateway or be unset first).  Sampled requests are handed to
 * capture_writer_submit once finished. */
void gw_set_capture(struct gw *g, struct capture_writer *w);

/* Sets the store once it is open (borrowed; must outlive the gateway). */
void gw_set_store(struct gw *g, struct tsdb *db);

/* Stops accepting, lets in-flight requests run for at most 'timeout_ms',
 * cancels the rest, appends the metrics one last time and joins the
 * thread.  Safe to call twice. */
void gw_stop(struct gw *g, int64_t timeout_ms);

/* Stops (if needed) and frees everything.  NULL is a no-op. */
void gw_free(struct gw *g);

void gw_get_stats(const struct gw *g, struct gw_stats *out);

/* An api_collector_fn: appends the gen_ai_* and holoscope_gateway_*
 * families (text format 0.0.4, `le` in float form) for the struct gw *
 * 'arg'.  Threading: any thread. */
int gw_metrics_collect(void *arg, struct hs_buf *out);

/* ---- W3C trace context (§7) --------------------------------------------------- */

struct gw_trace {
    uint8_t trace_id[16];
    uint8_t parent_id[8]; /* the caller's span, when has_parent */
    uint8_t flags;        /* bit 0: sampled */
    bool has_parent;
};

/* Parses a traceparent header value.  HS_OK or HS_EINVAL (uppercase hex,
 * zero ids, version ff, wrong length or separators). */
HS_MUST_CHECK int gw_traceparent_parse(const char *s, struct gw_trace *out);
/* Writes "00-<trace>-<span>-<flags>" (56 bytes with the NUL) into out. */
void gw_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char out[56]);

#endif
