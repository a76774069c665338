/*
 * gw_internal.h - shared by the gateway's proxy files (gateway.c, proxy.c,
 * gw_metrics.c): the metric registry, the configuration generation that
 * requests hold, and the gateway object itself.  Nobody outside
 * src/gateway includes it.
 *
 * Threading: the metric registry locks itself (any thread); everything
 * else belongs to the gateway thread unless a field says otherwise.
 */
#ifndef HS_GATEWAY_GW_INTERNAL_H
#define HS_GATEWAY_GW_INTERNAL_H

#include "gateway/gateway.h"

#include <pthread.h>
#include <stdatomic.h>

struct event;
struct event_base;
struct http_client;
struct http_server;
struct tsdb;
struct export_otlp;
struct capture_writer;

/* ---- metric registry (gw_metrics.c) ----------------------------------------- */

/* Families, in /metrics order.  Histograms first. */
enum gw_family {
    GW_M_TTFT = 0,        /* gen_ai_server_time_to_first_token_seconds */
    GW_M_TPOT,            /* gen_ai_server_time_per_output_token_seconds */
    GW_M_SERVER_DURATION, /* gen_ai_server_request_duration_seconds {status_class,error_type} */
    GW_M_CLIENT_DURATION, /* gen_ai_client_operation_duration_seconds {error_type} */
    GW_M_TTFC,            /* gen_ai_client_operation_time_to_first_chunk_seconds */
    GW_M_ITL,             /* gen_ai_client_operation_time_per_output_chunk_seconds */
    GW_M_TOKEN_USAGE,     /* gen_ai_client_token_usage {token_type} */
    GW_M_OVERHEAD,        /* holoscope_gateway_overhead_seconds {phase} */
    GW_M_REQUESTS,        /* holoscope_gateway_requests_total {status_class,outcome} */
    GW_M_FINISH,          /* holoscope_gateway_finish_reason_total {finish_reason} */
    GW_M_TOKENS,          /* holoscope_gateway_tokens_total {token_type} */
    GW_M_EST_TOKENS,      /* holoscope_gateway_estimated_tokens_total {token_type,source} */
    GW_M_INFLIGHT,        /* holoscope_gateway_inflight_requests (no labels) */
    GW_M_COUNT
};

/* The labels every gateway series carries; NULL or "" values are left out. */
struct gw_mlabels {
    const char *model;
    const char *route;
    const char *upstream;
    const char *operation;
    const char *tenant;
    uint64_t hash; /* of the labels above, set by gw__mlabels_hash; 0 = computed per look-up */
};

/* Hashes the labels of 'l' once into l->hash, so that the look-ups of one
 * request's many observations hash only their extra labels. */
void gw__mlabels_hash(struct gw_mlabels *l);

struct gw_metrics;

/* Creates the registry; at most 'max_series' series (beyond: observations
 * are dropped and counted).  NULL on ENOMEM. */
struct gw_metrics *gw__metrics_new(size_t max_series);
void gw__metrics_free(struct gw_metrics *m);
/* Brackets a group of observations (one finished request): one lock. */
void gw__metrics_lock(struct gw_metrics *m);
void gw__metrics_unlock(struct gw_metrics *m);
/* Adds 'v' to a counter or observes it in a histogram of family 'f' for
 * 'base' plus 'extra' (NULL-terminated name, value, ... or NULL); strings
 * are copied when the series is new.  Caller holds the lock. */
void gw__metrics_add(struct gw_metrics *m, int f, const struct gw_mlabels *base,
                     const char *const *extra, double v);
/* Observes n durations given in nanoseconds in histogram 'f' (one series
 * look-up for all of them).  Caller holds the lock. */
void gw__metrics_observe_ns(struct gw_metrics *m, int f, const struct gw_mlabels *base,
                            const int64_t *ns, size_t n);
/* Moves the in-flight gauge by 'delta'.  Any thread, no lock needed. */
void gw__metrics_inflight(struct gw_metrics *m, int delta);
/* Text format 0.0.4 of every family that has a series.  Takes the lock. */
HS_MUST_CHECK int gw__metrics_render(struct gw_metrics *m, struct hs_buf *out);
/* Appends every series' current value at 't_ms' to 'db' in one batch and
 * adds the number of samples to *nsamples.  One caller at a time. */
HS_MUST_CHECK int gw__metrics_append(struct gw_metrics *m, struct tsdb *db, int64_t t_ms,
                                     uint64_t *nsamples, struct hs_err *err);
/* Observations dropped at the series ceiling. */
uint64_t gw__metrics_dropped(struct gw_metrics *m);
/* Writes 'v' as an `le` value in float form ("2.0", "0.005", "+Inf"). */
void gw__format_le(double v, char out[40]);

/* ---- configuration generation ------------------------------------------------ */

/* A configuration with its pools.  Requests hold a reference so a reload
 * never frees what a request in flight uses.  Gateway thread only. */
struct gw_gen {
    struct gw_config *cfg;
    struct gw_pool **pools; /* one per route */
    int refs;
};

void gw__gen_ref(struct gw_gen *gen);
void gw__gen_unref(struct gw_gen *gen);

/* ---- the gateway object (gateway.c) --------------------------------------------- */

struct gw {
    struct gw_gen *gen;        /* current generation (gateway thread) */
    struct gw_config *cfg0;    /* the config given to gw_new until the thread starts */
    char *listen;              /* copy of the listen address */
    _Atomic(struct tsdb *) db; /* set by gw_set_store (owner thread) */
    struct event_base *base;
    struct http_server *http;
    struct http_client *client;
    struct event *wake;         /* activated from the owner thread */
    struct event *health_timer; /* active health checks */
    pthread_t thread;
    bool is_started;
    bool is_stopped;
    pthread_mutex_t mu;        /* guards the mailbox below */
    struct gw_config *pending; /* next configuration (mailbox) */
    bool stop_requested;
    int64_t stop_timeout_ms;
    pthread_t flusher; /* appends the metrics to the store */
    bool has_flusher;
    pthread_cond_t flush_cv;
    bool flusher_stop;
    int64_t store_interval_ms;
    struct gw_metrics *metrics;
    struct event *flush_ev;   /* writes the relayed bytes of this loop round (proxy.c) */
    void *dirty;              /* proxy.c: requests with bytes waiting for flush_ev */
    struct export_otlp *otlp; /* span exporter; NULL without tracing */
    _Atomic(struct capture_writer *) capture; /* set by gw_set_capture; NULL = none */
    uint64_t rng;                             /* xorshift state for ids (gateway thread) */
    int port;
    /* counters, written by the gateway thread (flusher: store_*) */
    atomic_uint_fast64_t requests_total, requests_inflight, streams_total, client_cancelled,
        upstream_errors, store_appends, store_errors;
};

/* proxy.c: registers the OpenAI routes on g->http. */
HS_MUST_CHECK int gw__proxy_register(struct gw *g, struct hs_err *err);
/* trace.c: writes 2n lowercase hex digits and a NUL. */
void gw__hex(const uint8_t *b, size_t n, char *out);
/* proxy.c: 64 random bits (gateway thread). */
uint64_t gw__rand64(struct gw *g);

#endif
