/*
 * grafana.c - builds the Grafana dashboard JSON of grafana.h from a table
 * of rows and panels, so the panels read like the model view of
 * assets/views.js they mirror: generation quality (TTFT with tokens/s on
 * a right axis, inter-token latency percentiles, end-to-end latency,
 * truncation rate with a 5% threshold line, errors by kind, quality score
 * and drift, quality check failures), resources (GPU utilisation and
 * memory, KV-cache, running / waiting requests and replicas, power and
 * temperature, host CPU) and a fleet table of instant per-model values.
 *
 * Layout: Grafana's 24-column grid; each row header is 1 unit high, panels
 * 8 high and 8 wide (three per line), the fleet table full width.
 */
#include "ui/grafana.h"

#include "http/http.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

#define DS_UID "${datasource}"

/* Template-variable selectors used by the expressions below. */
#define M  "model=~\"$model\""
#define I  "instance=~\"$instance\""
#define G  "gpu=~\"$gpu\""
#define W5 "[5m]"

struct target {
    const char *expr;
    const char *legend;
    bool is_right; /* drawn on the right axis (unit2) */
};

struct panel {
    const char *title;
    const char *unit;  /* Grafana unit id of the left axis */
    const char *unit2; /* right axis, or NULL */
    double threshold;  /* > 0: a red threshold line at this value */
    const char *description;
    struct target t[5];
};

static const struct panel quality_panels[] = {
    {"TTFT (left) and output tokens/s (right)",
     "s",
     "short",
     0,
     "Time to first token, p50 and p95 per model (engine histograms), and generated tokens "
     "per second.",
     {{"max by (model) (model_backend:llm_server_time_to_first_token_seconds:"
       "histogram_quantile_5m{" M ",quantile=\"0.5\"})",
       "TTFT p50 {{model}}", false},
      {"max by (model) (model_backend:llm_server_time_to_first_token_seconds:"
       "histogram_quantile_5m{" M ",quantile=\"0.95\"})",
       "TTFT p95 {{model}}", false},
      {"model:llm_server_generation_tokens:rate5m{" M "}", "tokens/s {{model}}", true}}},
    {"Inter-token latency (TPOT) percentiles",
     "s",
     NULL,
     0,
     "Engine inter-token latency p50/p95/p99 and the gateway's time per output token p95.",
     {{"max by (model) (model_backend:llm_server_inter_token_latency_seconds:"
       "histogram_quantile_5m{" M ",quantile=\"0.5\"})",
       "p50 {{model}}", false},
      {"max by (model) (model_backend:llm_server_inter_token_latency_seconds:"
       "histogram_quantile_5m{" M ",quantile=\"0.95\"})",
       "p95 {{model}}", false},
      {"max by (model) (model_backend:llm_server_inter_token_latency_seconds:"
       "histogram_quantile_5m{" M ",quantile=\"0.99\"})",
       "p99 {{model}}", false},
      {"histogram_quantile(0.95, sum by (le, model) "
       "(rate(gen_ai_server_time_per_output_token_seconds_bucket{" M "}" W5 ")))",
       "gateway TPOT p95 {{model}}", false}}},
    {"End-to-end latency (engine and gateway)",
     "s",
     NULL,
     0,
     "Request duration as the engine reports it and as clients of the gateway see it.",
     {{"histogram_quantile(0.5, sum by (le, model) "
       "(rate(llm_server_request_duration_seconds_bucket{" M "}" W5 ")))",
       "engine p50 {{model}}", false},
      {"histogram_quantile(0.95, sum by (le, model) "
       "(rate(llm_server_request_duration_seconds_bucket{" M "}" W5 ")))",
       "engine p95 {{model}}", false},
      {"histogram_quantile(0.95, sum by (le, model) "
       "(rate(gen_ai_server_request_duration_seconds_bucket{" M "}" W5 ")))",
       "gateway p95 {{model}}", false}}},
    {"Truncation rate (finish_reason=length)",
     "percentunit",
     NULL,
     0.05,
     "Share of finished requests stopped by the token limit; the line marks 5%.",
     {{"model:llm_server_truncation:ratio_rate5m{" M "}", "truncated {{model}}", false}}},
    {"Errors by kind (requests/s)",
     "reqps",
     NULL,
     0,
     "Failed requests per second by error type: engine counters and gateway outcomes.",
     {{"sum by (model, error_type) (rate(llm_server_requests_failed_total{" M "}" W5 "))",
       "engine {{model}} {{error_type}}", false},
      {"sum by (model, error_type) "
       "(rate(gen_ai_server_request_duration_seconds_count{" M ",error_type!=\"\"}" W5 "))",
       "gateway {{model}} {{error_type}}", false},
      {"model:llm_server_errors:ratio_rate5m{" M "}", "error ratio {{model}}", true}}},
    {"Quality score (left) and drift (right)",
     "percentunit",
     "short",
     0,
     "Composite output-quality score of captured requests (median and recent mean), and the "
     "population stability index of the score and of the output length, recent against "
     "reference (> 0.25: shifted).",
     {{"histogram_quantile(0.5, sum by (le, model) "
       "(rate(holoscope_quality_score_bucket{" M "}[15m])))",
       "score p50 {{model}}", false},
      {"avg by (model) (holoscope_quality_score_mean{" M "})", "score mean {{model}}", false},
      {"max by (model) (holoscope_quality_drift_psi{" M ",signal=\"score\"})",
       "PSI score {{model}}", true},
      {"max by (model) (holoscope_quality_drift_psi{" M ",signal=\"output_tokens\"})",
       "PSI length {{model}}", true}}},
    {"Quality check failures (per second)",
     "short",
     NULL,
     0,
     "Captured requests failing each quality check: empty, truncation, repetition, refusal, "
     "language, json, length, encoding.",
     {{"sum by (model, check) "
       "(rate(holoscope_quality_checks_total{" M ",result=\"fail\"}" W5 "))",
       "{{model}} {{check}}", false}}},
};

static const struct panel resource_panels[] = {
    {"GPU utilisation",
     "percentunit",
     NULL,
     0,
     "Share of time each GPU was busy.",
     {{"instance_gpu:hw_gpu_utilization:ratio{" I "," G "}", "{{instance}} gpu{{gpu}}", false}}},
    {"GPU memory used",
     "percentunit",
     NULL,
     0,
     "Memory used over the limit, per GPU and over each model's GPUs.",
     {{"instance_gpu:hw_gpu_memory_usage:ratio{" I "," G "}", "{{instance}} gpu{{gpu}}", false},
      {"model:hw_gpu_memory_usage:ratio{" M "}", "model {{model}}", false}}},
    {"KV-cache usage",
     "percentunit",
     NULL,
     0,
     "Share of the KV cache in use, per replica.",
     {{"model_instance:llm_server_kv_cache_usage:ratio{" M "," I "}", "{{model}} {{instance}}",
       false}}},
    {"Running / waiting requests and replicas",
     "short",
     "short",
     0,
     "Requests being decoded and queued, and the number of replicas reporting.",
     {{"sum by (model) (model_instance:llm_server_requests_running:sum{" M "," I "})",
       "running {{model}}", false},
      {"sum by (model) (model_instance:llm_server_requests_waiting:sum{" M "," I "})",
       "waiting {{model}}", false},
      {"count by (model) (model_instance:llm_server_requests_running:sum{" M "})",
       "replicas {{model}}", true}}},
    {"GPU power (left) and temperature (right)",
     "watt",
     "celsius",
     0,
     "Board power draw and GPU temperature.",
     {{"max by (instance, gpu) (hw_power_watts{hw_type=\"gpu\"," I "," G "})",
       "power {{instance}} gpu{{gpu}}", false},
      {"max by (instance, gpu) "
       "(hw_temperature_celsius{hw_type=\"gpu\",sensor!=\"memory\"," I "," G "})",
       "temp {{instance}} gpu{{gpu}}", true}}},
    {"Host CPU busy",
     "percentunit",
     NULL,
     0,
     "Share of CPU time not idle, per host.",
     {{"1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"," I "}" W5 "))",
       "{{instance}}", false}}},
};

/* The fleet table: one instant query per column, merged on 'model'. */
static const struct {
    const char *expr;
    const char *column;
    const char *unit;
} fleet_columns[] = {
    {"model:llm_server_requests:rate5m", "requests/s", "reqps"},
    {"model:llm_server_generation_tokens:rate5m", "tokens/s", "short"},
    {"max by (model) (model_backend:llm_server_time_to_first_token_seconds:"
     "histogram_quantile_5m{quantile=\"0.95\"})",
     "TTFT p95", "s"},
    {"model:llm_server_errors:ratio_rate5m", "error ratio", "percentunit"},
    {"model:llm_server_truncation:ratio_rate5m", "truncation", "percentunit"},
    {"avg by (model) (holoscope_quality_score_mean)", "quality", "percentunit"},
    {"model:hw_gpu_utilization:avg", "GPU util", "percentunit"},
    {"model:llm_cost_per_million_output_tokens:dollars", "$ / 1M tokens", "currencyUSD"},
};

/* ---- JSON building: every json_* result is checked once, at the end ------- */

static json_t *datasource(void)
{
    return json_pack("{s:s, s:s}", "type", "prometheus", "uid", DS_UID);
}

static json_t *grid(int x, int y, int w, int h)
{
    return json_pack("{s:i, s:i, s:i, s:i}", "h", h, "w", w, "x", x, "y", y);
}

static json_t *row(int id, const char *title, int y)
{
    return json_pack("{s:s, s:i, s:s, s:b, s:o, s:[]}", "type", "row", "id", id, "title", title,
                     "collapsed", 0, "gridPos", grid(0, y, 24, 1), "panels");
}

static json_t *ts_targets(const struct panel *p)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < HS_ARRAY_LEN(p->t) && p->t[i].expr != NULL; i++) {
        char ref[2] = {(char)('A' + i), '\0'};
        json_t *t = json_pack("{s:o, s:s, s:s, s:s, s:b}", "datasource", datasource(), "refId", ref,
                              "expr", p->t[i].expr, "legendFormat", p->t[i].legend, "range", 1);
        if (t == NULL || json_array_append_new(a, t) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Series of the right axis: an override per target marked is_right. */
static json_t *ts_overrides(const struct panel *p)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < HS_ARRAY_LEN(p->t) && p->t[i].expr != NULL; i++) {
        if (!p->t[i].is_right)
            continue;
        char ref[2] = {(char)('A' + i), '\0'};
        json_t *o = json_pack(
            "{s:{s:s, s:s}, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:{s:[i, i], s:s}}]}", "matcher", "id",
            "byFrameRefID", "options", ref, "properties", "id", "custom.axisPlacement", "value",
            "right", "id", "unit", "value", p->unit2 ? p->unit2 : "short", "id", "custom.lineStyle",
            "value", "dash", 10, 10, "fill", "dash");
        if (o == NULL || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *timeseries(int id, const struct panel *p, int x, int y)
{
    json_t *steps = p->threshold > 0 ? json_pack("[{s:s, s:n}, {s:s, s:f}]", "color", "green",
                                                 "value", "color", "red", "value", p->threshold)
                                     : json_pack("[{s:s, s:n}]", "color", "green", "value");
    json_t *custom =
        json_pack("{s:s, s:i, s:b, s:{s:s}}", "drawStyle", "line", "lineWidth", 1, "spanNulls", 0,
                  "thresholdsStyle", "mode", p->threshold > 0 ? "line" : "off");
    json_t *defaults = json_pack("{s:s, s:o, s:{s:s, s:o}}", "unit", p->unit, "custom", custom,
                                 "thresholds", "mode", "absolute", "steps", steps);
    return json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:{s:o, s:o}, s:{s:{s:s, s:s}, "
                     "s:{s:s}}}",
                     "type", "timeseries", "id", id, "title", p->title, "description",
                     p->description, "datasource", datasource(), "gridPos", grid(x, y, 8, 8),
                     "targets", ts_targets(p), "fieldConfig", "defaults", defaults, "overrides",
                     ts_overrides(p), "options", "legend", "displayMode", "list", "placement",
                     "bottom", "tooltip", "mode", "multi");
}

static json_t *fleet_table(int id, int y)
{
    json_t *targets = json_array(), *rename = json_object(), *exclude = json_object();
    json_t *overrides = json_array();
    for (size_t i = 0; targets && rename && exclude && overrides && i < HS_ARRAY_LEN(fleet_columns);
         i++) {
        char ref[2] = {(char)('A' + i), '\0'};
        char value[16];
        snprintf(value, sizeof(value), "Value #%s", ref);
        json_array_append_new(
            targets, json_pack("{s:o, s:s, s:s, s:s, s:b, s:b, s:s}", "datasource", datasource(),
                               "refId", ref, "expr", fleet_columns[i].expr, "format", "table",
                               "instant", 1, "range", 0, "legendFormat", fleet_columns[i].column));
        json_object_set_new(rename, value, json_string(fleet_columns[i].column));
        json_array_append_new(overrides,
                              json_pack("{s:{s:s, s:s}, s:[{s:s, s:s}]}", "matcher", "id", "byName",
                                        "options", fleet_columns[i].column, "properties", "id",
                                        "unit", "value", fleet_columns[i].unit));
    }
    json_object_set_new(exclude, "Time", json_true());
    return json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:[{s:s, s:{s:s}}, {s:s, s:{s:o, "
                     "s:o}}], s:{s:{}, s:o}, s:{s:b}}",
                     "type", "table", "id", id, "title", "Fleet: one row per model", "description",
                     "Instant per-model values from the default recording rules and the "
                     "quality series.",
                     "datasource", datasource(), "gridPos", grid(0, y, 24, 9), "targets", targets,
                     "transformations", "id", "merge", "options", "reducer", "model", "id",
                     "organize", "options", "excludeByName", exclude, "renameByName", rename,
                     "fieldConfig", "defaults", "overrides", overrides, "options", "showHeader", 1);
}

static json_t *variable(const char *name, const char *label, const char *query)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s}, s:s, s:b, s:b, s:s, s:i, s:i, "
                     "s:{s:b, s:[s], s:[s]}}",
                     "name", name, "label", label, "type", "query", "datasource", datasource(),
                     "query", "query", query, "refId", "StandardVariableQuery", "definition", query,
                     "includeAll", 1, "multi", 1, "allValue", ".+", "refresh", 2, "sort", 1,
                     "current", "selected", 1, "text", "All", "value", "$__all");
}

static json_t *templating(void)
{
    json_t *ds = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:b}", "name", "datasource",
                           "label", "Data source", "type", "datasource", "query", "prometheus",
                           "regex", "", "refresh", 1, "includeAll", 0, "multi", 0);
    return json_pack(
        "{s:[o, o, o, o]}", "list", ds,
        variable("model", "Model", "label_values(llm_server_generation_tokens_total, model)"),
        variable("instance", "Instance",
                 "label_values(llm_server_requests_running{model=~\"$model\"}, instance)"),
        variable("gpu", "GPU",
                 "label_values(hw_gpu_utilization_ratio{instance=~\"$instance\"}, gpu)"));
}

static json_t *panels(void)
{
    json_t *a = json_array();
    int id = 1, y = 0;
    json_array_append_new(a, row(id++, "Generation quality: $model", y++));
    for (size_t i = 0; i < HS_ARRAY_LEN(quality_panels); i++) {
        int x = (int)(i % 3) * 8;
        json_array_append_new(a, timeseries(id++, &quality_panels[i], x, y));
        if (x == 16 || i + 1 == HS_ARRAY_LEN(quality_panels))
            y += 8;
    }
    json_array_append_new(a, row(id++, "Resources: $instance", y++));
    for (size_t i = 0; i < HS_ARRAY_LEN(resource_panels); i++) {
        int x = (int)(i % 3) * 8;
        json_array_append_new(a, timeseries(id++, &resource_panels[i], x, y));
        if (x == 16 || i + 1 == HS_ARRAY_LEN(resource_panels))
            y += 8;
    }
    json_array_append_new(a, row(id++, "Fleet", y++));
    json_array_append_new(a, fleet_table(id++, y));
    return a;
}

/* True when every panel and target came out whole (json_pack gives NULL on
 * allocation failure, which a parent's "o" then turns into a NULL parent). */
static bool complete(const json_t *dash)
{
    const json_t *ps = json_object_get(dash, "panels");
    if (!json_is_array(ps) ||
        json_array_size(ps) != 3 + HS_ARRAY_LEN(quality_panels) + HS_ARRAY_LEN(resource_panels) + 1)
        return false;
    size_t i;
    const json_t *p;
    json_array_foreach(ps, i, p)
    {
        if (!json_is_object(p))
            return false;
    }
    const json_t *table = json_array_get(ps, json_array_size(ps) - 1);
    return json_array_size(json_object_get(table, "targets")) == HS_ARRAY_LEN(fleet_columns);
}

/* Grafana's built-in "Annotations & Alerts" entry. */
static json_t *annotation(void)
{
    return json_pack("{s:i, s:{s:s, s:s}, s:b, s:b, s:s, s:s, s:s}", "builtIn", 1, "datasource",
                     "type", "grafana", "uid", "-- Grafana --", "enable", 1, "hide", 1, "iconColor",
                     "rgba(0, 211, 255, 1)", "name", "Annotations & Alerts", "type", "dashboard");
}

int ui_grafana_dashboard(struct hs_buf *out, struct hs_err *err)
{
    json_t *dash = json_pack(
        "{s:n, s:s, s:s, s:s, s:[s, s], s:s, s:i, s:b, s:i, s:s, s:{s:s, s:s}, s:{}, s:o, s:o, "
        "s:{s:[o]}, s:i, s:s}",
        "id", "uid", "holoscope-model", "title", "holoscope: model view", "description",
        "Generation quality next to GPU and host resources, per model, as holoscope's own "
        "dashboard shows them.  Generated by `holoscope grafana-dashboard`.",
        "tags", "holoscope", "llm", "timezone", "browser", "schemaVersion",
        UI_GRAFANA_SCHEMA_VERSION, "editable", 1, "graphTooltip", 1, "refresh", "30s", "time",
        "from", "now-1h", "to", "now", "timepicker", "templating", templating(), "panels", panels(),
        "annotations", "list", annotation(), "version", 1, "weekStart", "");
    if (dash == NULL || !complete(dash)) {
        json_decref(dash);
        return hs_err_set(err, HS_ENOMEM, "grafana dashboard: out of memory");
    }
    char *text = json_dumps(dash, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(dash);
    if (text == NULL)
        return hs_err_set(err, HS_ENOMEM, "grafana dashboard: out of memory");
    int rc = hs_buf_puts(out, text);
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '\n');
    free(text);
    if (rc != HS_OK)
        return hs_err_set(err, rc, "grafana dashboard: %s", hs_strerror(rc));
    return HS_OK;
}

static void handle(struct http_request *r, void *arg)
{
    (void)arg;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err err;
    hs_err_clear(&err);
    if (ui_grafana_dashboard(&b, &err) != HS_OK)
        http_respond_error(r, 500, err.msg);
    else
        http_respond(r, 200, "application/json", b.p, b.len);
    hs_buf_cleanup(&b);
}

int ui_grafana_register(struct http_server *s, struct hs_err *err)
{
    int rc = http_server_route(s, "GET", "/api/v1/grafana-dashboard", "/api/v1/grafana-dashboard",
                               handle, NULL);
    if (rc != HS_OK)
        return hs_err_set(err, rc, "grafana dashboard route: %s", hs_strerror(rc));
    return HS_OK;
}
