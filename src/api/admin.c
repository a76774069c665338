/*
 * admin.c - management endpoints and the JSON error formatter.
 *
 *   GET  /-/healthy   200 while the process runs (GET routes answer HEAD too)
 *   GET  /-/ready     200 once start-up (WAL replay, ...) is done, 503 before
 *   POST /-/reload    re-reads configuration and rules, as SIGHUP does
 *   GET  /metrics     self-metrics, Prometheus text format 0.0.4
 */
#include "api/api.h"

#include <string.h>

static void healthy(struct http_request *r, void *arg)
{
    (void)arg;
    static const char body[] = "holoscope is Healthy.\n";
    http_respond(r, 200, "text/plain; charset=utf-8", body, sizeof(body) - 1);
}

static void ready(struct http_request *r, void *arg)
{
    struct api_admin *a = arg;
    if (a->is_ready) {
        static const char body[] = "holoscope is Ready.\n";
        http_respond(r, 200, "text/plain; charset=utf-8", body, sizeof(body) - 1);
    } else {
        static const char body[] = "Service Unavailable: holoscope is starting.\n";
        http_respond(r, 503, "text/plain; charset=utf-8", body, sizeof(body) - 1);
    }
}

static void reload(struct http_request *r, void *arg)
{
    struct api_admin *a = arg;
    struct hs_err err = {0};
    if (a->reload == NULL) {
        http_respond_error(r, 500, "reload is not available");
        return;
    }
    if (a->reload(a->reload_arg, &err) != HS_OK) {
        hs_log(HS_LOG_ERROR, "reload failed", HS_LSTR("err", err.msg),
               HS_LSTR("request_id", http_request_id(r)));
        http_respond_error(r, 500, err.msg);
        return;
    }
    http_respond(r, 200, "text/plain; charset=utf-8", "", 0);
}

static void metrics(struct http_request *r, void *arg)
{
    struct api_admin *a = arg;
    struct hs_buf out;
    hs_buf_init(&out, 0);
    int rc = api_metrics_render(a->metrics, &out);
    if (rc != HS_OK) {
        hs_buf_cleanup(&out);
        http_respond_error(r, 500, hs_strerror(rc));
        return;
    }
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.p, out.len);
    hs_buf_cleanup(&out);
}

int api_admin_register(struct http_server *srv, struct api_admin *admin)
{
    int rc = http_server_route(srv, "GET", "/-/healthy", "/-/healthy", healthy, admin);
    if (rc == HS_OK)
        rc = http_server_route(srv, "GET", "/-/ready", "/-/ready", ready, admin);
    if (rc == HS_OK)
        rc = http_server_route(srv, "POST", "/-/reload", "/-/reload", reload, admin);
    if (rc == HS_OK)
        rc = http_server_route(srv, "PUT", "/-/reload", "/-/reload", reload, admin);
    if (rc == HS_OK)
        rc = http_server_route(srv, "GET", "/metrics", "/metrics", metrics, admin);
    return rc;
}

static const char *error_type(int status)
{
    switch (status) {
    case 404:
        return "not_found";
    case 408:
        return "timeout";
    case 422:
        return "execution";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal" : "bad_data";
    }
}

int api_error_formatter(void *arg, int status, const char *msg, struct hs_buf *out,
                        const char **content_type)
{
    (void)arg;
    int rc = hs_buf_printf(
        out, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", error_type(status));
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, msg, strlen(msg));
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "}\n");
    *content_type = "application/json";
    return rc;
}
