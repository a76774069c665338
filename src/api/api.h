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

/* ---- end of Prometheus HTTP API ---- */

#endif
