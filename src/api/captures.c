/*
 * captures.c - GET /api/v1/captures: the capture browser's data source.
 *
 * A thin HTTP face over capture_query (gateway/capture.h): parameters are
 * checked here with the Prometheus API's own parsers, so times and limits
 * read the same everywhere, and the records come back newest first.
 */
#include "api/api.h"
#include "gateway/capture.h"

#include <string.h>

static int parse_params(struct http_request *r, struct capture_query *q, struct hs_err *err)
{
    const char *model = http_request_param(r, "model");
    const char *start = http_request_param(r, "start");
    const char *end = http_request_param(r, "end");
    const char *limit = http_request_param(r, "limit");
    q->model = model != NULL && model[0] != '\0' ? model : NULL;
    q->start_ms = INT64_MIN;
    q->end_ms = INT64_MAX;
    if (start != NULL && start[0] != '\0' && api_prom_parse_time(start, &q->start_ms, err) != HS_OK)
        return HS_EPARSE;
    if (end != NULL && end[0] != '\0' && api_prom_parse_time(end, &q->end_ms, err) != HS_OK)
        return HS_EPARSE;
    if (q->end_ms < q->start_ms)
        return hs_err_set(err, HS_EINVAL, "end timestamp must not be before start time");
    int64_t n = 0;
    if (limit != NULL && api_prom_parse_limit(limit, &n, err) != HS_OK)
        return HS_EPARSE;
    if (n > CAPTURE_QUERY_MAX_LIMIT)
        return hs_err_set(err, HS_EINVAL, "limit must not exceed %d", CAPTURE_QUERY_MAX_LIMIT);
    q->limit = (size_t)n;
    return HS_OK;
}

static void captures(struct http_request *r, void *arg)
{
    struct api_captures *c = arg;
    struct capture_query q = {0};
    struct hs_err err = {0};
    if (parse_params(r, &q, &err) != HS_OK) {
        http_respond_error(r, 400, err.msg);
        return;
    }
    struct hs_buf out;
    hs_buf_init(&out, 0);
    int rc = hs_buf_puts(&out, "{\"status\":\"success\",\"data\":");
    if (rc == HS_OK)
        rc = capture_query(c->dir, &q, &out, &err);
    if (rc == HS_OK)
        rc = hs_buf_puts(&out, "}\n");
    if (rc != HS_OK) {
        hs_buf_cleanup(&out);
        http_respond_error(r, rc == HS_ETOOBIG ? 422 : 500,
                           err.msg[0] != '\0' ? err.msg : hs_strerror(rc));
        return;
    }
    http_respond(r, 200, "application/json", out.p, out.len);
    hs_buf_cleanup(&out);
}

int api_captures_register(struct http_server *srv, struct api_captures *c)
{
    return http_server_route(srv, "GET", "/api/v1/captures", "/api/v1/captures", captures, c);
}
