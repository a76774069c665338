/*
 * grafana.h - holoscope's model view as a Grafana dashboard: the same rows
 * and panels (generation quality on top, resources below, a fleet table),
 * over a Prometheus data source chosen by the ${datasource} variable, with
 * model / instance / gpu template variables.  Served at
 * GET /api/v1/grafana-dashboard and printed by `holoscope
 * grafana-dashboard`, so Grafana users import what the dashboard shows.
 *
 * Queries read the recording rules of rules/default.yml (model:*,
 * model_backend:*, model_instance:*, instance_gpu:*), the gateway's
 * gen_ai_* histograms and the holoscope_quality_* series; template
 * variables appear as "$model", "$instance" and "$gpu" inside =~ matchers,
 * and every variable's "All" value is ".+".
 *
 * Threading: pure functions; ui_grafana_register's handler runs on the
 * server's loop thread.
 */
#ifndef HS_UI_GRAFANA_H
#define HS_UI_GRAFANA_H

#include "core/core.h"

struct http_server;

/* Dashboard schema version written (Grafana 10/11). */
#define UI_GRAFANA_SCHEMA_VERSION 39

/*
 * Appends the dashboard JSON (one object, pretty-printed, ending with a
 * newline) to 'out'.  HS_ENOMEM, or HS_ETOOBIG past out's ceiling; on
 * error 'out' may hold part of the text.
 */
HS_MUST_CHECK int ui_grafana_dashboard(struct hs_buf *out, struct hs_err *err);

/* Adds GET /api/v1/grafana-dashboard (application/json) to 's'.
 * HS_OK or the error of http_server_route. */
HS_MUST_CHECK int ui_grafana_register(struct http_server *s, struct hs_err *err);

#endif
