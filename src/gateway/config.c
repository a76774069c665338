/*
 * config.c - the `gateway:` section of the configuration file.
 *
 *   gateway:
 *     listen: 127.0.0.1:9191
 *     timeouts: {connect: 5s, first_byte: 60s, idle: 60s, total: 10m}
 *     max_body_size: 16MiB            # request body ceiling
 *     max_response_size: 64MiB        # upstream body ceiling
 *     inject_usage: true              # §2.4
 *     tenant_header: x-tenant         # hashed into the `tenant` label
 *     store_interval: 5s              # metrics appended to the store
 *     access_log: true
 *     health_check: {path: /health, interval: 10s, timeout: 2s,
 *                    unhealthy_threshold: 3, healthy_threshold: 2}
 *     ejection: {consecutive_failures: 5, duration: 30s}
 *     tracing: {endpoint: http://127.0.0.1:4318/v1/traces, sample_ratio: 1}
 *     routes:
 *       - model: llama-3-8b           # exact name or glob (* ? [)
 *         name: llama                 # `route` label (default: model)
 *         upstream_model: meta-llama/Llama-3-8B   # rewrite; also the `model` label
 *         provider: vllm              # gen_ai.provider.name
 *         upstreams: [http://127.0.0.1:8001,
 *                     {url: http://127.0.0.1:8002, headers: {x-key: abc}}]
 *         headers: {x-route: a}       # injected into every upstream request
 *         timeouts: {...}  max_body_size: ...  inject_usage: false
 *         capture: {sampling_percentage: 10}
 *
 * Every value the file gives is checked here, with the file position of
 * the offending node in the message; unknown keys are errors (a typo must
 * not silently turn a setting off).  Everything the config holds lives in
 * its arena.
 */
#include "gateway/gateway.h"

#include <string.h>

#define MAX_ROUTES    4096
#define MAX_UPSTREAMS 256
#define MAX_HEADERS   64

static char *dup_str(struct gw_config *c, const char *s)
{
    return hs_arena_strndup(&c->arena, s, strlen(s));
}

static int nomem(struct hs_err *err)
{
    return hs_err_set(err, HS_ENOMEM, "out of memory");
}

/* Fails on any key of 'map' not in 'known' (NULL-terminated). */
static int check_keys(const struct hs_ydoc *d, const struct hs_ynode *map, const char *what,
                      const char *const *known, struct hs_err *err)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct hs_ynode *k = map->items[2 * i];
        bool found = false;
        for (size_t j = 0; known[j] && !found; j++)
            found = k->type == HS_Y_SCALAR && strcmp(k->scalar, known[j]) == 0;
        if (!found)
            return hs_ynode_error(d, k, HS_EINVAL, err, "%s: unknown key \"%s\"", what,
                                  k->type == HS_Y_SCALAR ? k->scalar : "?");
    }
    return HS_OK;
}

static int expect_map(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                      struct hs_err *err)
{
    if (n->type != HS_Y_MAP)
        return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected a map", what);
    return HS_OK;
}

static int get_str(struct gw_config *c, const struct hs_ynode *map, const char *key,
                   const char *what, const char **out, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(map, key);
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    const char *s = NULL;
    int rc = hs_ynode_str(c->doc, n, what, &s, err);
    if (rc != HS_OK)
        return rc;
    *out = dup_str(c, s);
    return *out ? HS_OK : nomem(err);
}

static int get_duration(struct gw_config *c, const struct hs_ynode *map, const char *key,
                        const char *what, int64_t *out, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(map, key);
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    return hs_ynode_duration(c->doc, n, what, out, err);
}

static int get_bool(struct gw_config *c, const struct hs_ynode *map, const char *key,
                    const char *what, bool *out, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(map, key);
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    return hs_ynode_bool(c->doc, n, what, out, err);
}

static int get_bytes(struct gw_config *c, const struct hs_ynode *map, const char *key,
                     const char *what, uint64_t *out, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(map, key);
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    int rc = hs_ynode_bytes(c->doc, n, what, out, err);
    if (rc == HS_OK && *out == 0)
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s: must be more than 0", what);
    return rc;
}

static int get_int(struct gw_config *c, const struct hs_ynode *map, const char *key,
                   const char *what, int64_t lo, int64_t hi, int64_t *out, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(map, key);
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    int rc = hs_ynode_i64(c->doc, n, what, out, err);
    if (rc == HS_OK && (*out < lo || *out > hi))
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s: must be between %lld and %lld", what,
                              (long long)lo, (long long)hi);
    return rc;
}

static int parse_timeouts(struct gw_config *c, const struct hs_ynode *map, const char *what,
                          struct gw_timeouts *t, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(map, "timeouts");
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    char w[160];
    snprintf(w, sizeof(w), "%s.timeouts", what);
    static const char *const keys[] = {"connect", "first_byte", "idle", "total", NULL};
    int rc = expect_map(c->doc, n, w, err);
    if (rc == HS_OK)
        rc = check_keys(c->doc, n, w, keys, err);
    if (rc == HS_OK)
        rc = get_duration(c, n, "connect", w, &t->connect_ms, err);
    if (rc == HS_OK)
        rc = get_duration(c, n, "first_byte", w, &t->first_byte_ms, err);
    if (rc == HS_OK)
        rc = get_duration(c, n, "idle", w, &t->idle_ms, err);
    if (rc == HS_OK)
        rc = get_duration(c, n, "total", w, &t->total_ms, err);
    return rc;
}

static bool header_name_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s == ':' || *s == 0x7f)
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

/* A map of header name -> value. */
static int parse_headers(struct gw_config *c, const struct hs_ynode *n, const char *what,
                         const struct gw_header **out, size_t *nout, struct hs_err *err)
{
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    int rc = expect_map(c->doc, n, what, err);
    if (rc != HS_OK)
        return rc;
    if (n->n > MAX_HEADERS)
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s: more than %d headers", what,
                              MAX_HEADERS);
    struct gw_header *h = hs_arena_calloc(&c->arena, (n->n + 1) * sizeof(*h));
    if (h == NULL)
        return nomem(err);
    for (size_t i = 0; i < n->n; i++) {
        const struct hs_ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        const char *name = NULL, *value = NULL;
        rc = hs_ynode_str(c->doc, k, what, &name, err);
        if (rc == HS_OK)
            rc = hs_ynode_str(c->doc, v, what, &value, err);
        if (rc != HS_OK)
            return rc;
        if (!header_name_ok(name))
            return hs_ynode_error(c->doc, k, HS_EINVAL, err, "%s: invalid header name \"%s\"", what,
                                  name);
        if (!header_value_ok(value))
            return hs_ynode_error(c->doc, v, HS_EINVAL, err, "%s: header value holds a line break",
                                  what);
        h[i].name = dup_str(c, name);
        h[i].value = dup_str(c, value);
        if (h[i].name == NULL || h[i].value == NULL)
            return nomem(err);
    }
    *out = h;
    *nout = n->n;
    return HS_OK;
}

static int check_url(struct gw_config *c, const struct hs_ynode *n, const char *what,
                     const char *url, struct hs_err *err)
{
    const char *rest = NULL;
    if (hs_has_prefix(url, "http://"))
        rest = url + 7;
    else if (hs_has_prefix(url, "https://"))
        rest = url + 8;
    if (rest == NULL || *rest == '\0' || *rest == '/' || *rest == ':')
        return hs_ynode_error(c->doc, n, HS_EINVAL, err,
                              "%s: \"%s\" is not an http:// or https:// URL with a host", what,
                              url);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#')
            return hs_ynode_error(c->doc, n, HS_EINVAL, err,
                                  "%s: \"%s\": unexpected character in a base URL", what, url);
    return HS_OK;
}

static int parse_upstream(struct gw_config *c, const struct hs_ynode *n, const char *what,
                          struct gw_upstream_config *u, struct hs_err *err)
{
    const char *url = NULL;
    const struct hs_ynode *at = n;
    int rc = HS_OK;
    if (n->type == HS_Y_MAP) {
        static const char *const keys[] = {"url", "headers", NULL};
        rc = check_keys(c->doc, n, what, keys, err);
        at = hs_ynode_get(n, "url");
        if (rc == HS_OK && at == NULL)
            return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s: url is missing", what);
        if (rc == HS_OK) {
            char w[200];
            snprintf(w, sizeof(w), "%.180s.headers", what);
            rc = parse_headers(c, hs_ynode_get(n, "headers"), w, &u->headers, &u->nheaders, err);
        }
    }
    if (rc == HS_OK)
        rc = hs_ynode_str(c->doc, at, what, &url, err);
    if (rc == HS_OK)
        rc = check_url(c, at, what, url, err);
    if (rc != HS_OK)
        return rc;
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    u->url = hs_arena_strndup(&c->arena, url, len);
    return u->url ? HS_OK : nomem(err);
}

static int parse_upstreams(struct gw_config *c, const struct hs_ynode *route, const char *what,
                           struct gw_route_config *r, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(route, "upstreams");
    if (n == NULL)
        n = hs_ynode_get(route, "upstream");
    if (n == NULL || hs_ynode_is_null(n))
        return hs_ynode_error(c->doc, route, HS_EINVAL, err, "%s: upstreams is missing", what);
    size_t count = n->type == HS_Y_SEQ ? n->n : 1;
    if (count == 0)
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s.upstreams: empty list", what);
    if (count > MAX_UPSTREAMS)
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s.upstreams: more than %d", what,
                              MAX_UPSTREAMS);
    r->upstreams = hs_arena_calloc(&c->arena, count * sizeof(*r->upstreams));
    if (r->upstreams == NULL)
        return nomem(err);
    r->nupstreams = count;
    for (size_t i = 0; i < count; i++) {
        char w[200];
        snprintf(w, sizeof(w), "%s.upstreams[%zu]", what, i);
        int rc = parse_upstream(c, n->type == HS_Y_SEQ ? n->items[i] : n, w, &r->upstreams[i], err);
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

static int parse_route_capture(struct gw_config *c, const struct hs_ynode *route, const char *what,
                               struct gw_route_config *r, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(route, "capture");
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    char w[200];
    snprintf(w, sizeof(w), "%s.capture", what);
    static const char *const keys[] = {"sampling_percentage", NULL};
    int rc = expect_map(c->doc, n, w, err);
    if (rc == HS_OK)
        rc = check_keys(c->doc, n, w, keys, err);
    const struct hs_ynode *p = hs_ynode_get(n, "sampling_percentage");
    if (rc == HS_OK && p != NULL) {
        rc = hs_ynode_f64(c->doc, p, w, &r->capture_percentage, err);
        if (rc == HS_OK && !(r->capture_percentage >= 0 && r->capture_percentage <= 100))
            return hs_ynode_error(c->doc, p, HS_EINVAL, err,
                                  "%s.sampling_percentage: must be between 0 and 100", w);
    }
    return rc;
}

/* `paths: [/generate, ...]`: served paths a request without a model may
 * take to this route (§2.2). */
static int parse_route_paths(struct gw_config *c, const struct hs_ynode *route, const char *what,
                             struct gw_route_config *r, struct hs_err *err)
{
    static const char *const served[] = {GW_PATHS};
    const struct hs_ynode *n = hs_ynode_get(route, "paths");
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    if (n->type != HS_Y_SEQ)
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s.paths: expected a list of paths",
                              what);
    const char **paths = hs_arena_calloc(&c->arena, (n->n + 1) * sizeof(*paths));
    if (paths == NULL)
        return nomem(err);
    for (size_t i = 0; i < n->n; i++) {
        const struct hs_ynode *it = n->items[i];
        const char *p = it->type == HS_Y_SCALAR ? it->scalar : NULL;
        size_t k = 0;
        while (p != NULL && k < HS_ARRAY_LEN(served) && strcmp(served[k], p) != 0)
            k++;
        if (p == NULL || k == HS_ARRAY_LEN(served))
            return hs_ynode_error(c->doc, it, HS_EINVAL, err,
                                  "%s.paths[%zu]: \"%s\" is not a path the gateway serves (one of "
                                  "/v1/chat/completions, /v1/completions, /v1/embeddings, "
                                  "/v1/responses, /generate, /generate_stream, /completion)",
                                  what, i, p ? p : "(not a string)");
        paths[i] = served[k];
    }
    r->paths = paths;
    r->npaths = n->n;
    return HS_OK;
}

static int parse_route(struct gw_config *c, const struct hs_ynode *n, size_t idx,
                       const struct gw_route_config *defaults, struct gw_route_config *r,
                       struct hs_err *err)
{
    char what[64];
    snprintf(what, sizeof(what), "gateway.routes[%zu]", idx);
    static const char *const keys[] = {
        "model",   "name",     "upstream_model", "provider",          "upstreams",    "upstream",
        "headers", "timeouts", "max_body_size",  "max_response_size", "inject_usage", "capture",
        "paths",   NULL};
    int rc = expect_map(c->doc, n, what, err);
    if (rc == HS_OK)
        rc = check_keys(c->doc, n, what, keys, err);
    if (rc != HS_OK)
        return rc;
    *r = *defaults;
    r->line = n->line;
    const struct hs_ynode *m = hs_ynode_get(n, "model");
    if (m == NULL || hs_ynode_is_null(m))
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s: model is missing", what);
    rc = get_str(c, n, "model", what, &r->model, err);
    if (rc == HS_OK && r->model[0] == '\0')
        return hs_ynode_error(c->doc, m, HS_EINVAL, err, "%s.model: empty", what);
    if (rc == HS_OK)
        rc = get_str(c, n, "name", what, &r->name, err);
    if (rc == HS_OK)
        rc = get_str(c, n, "upstream_model", what, &r->upstream_model, err);
    if (rc == HS_OK)
        rc = get_str(c, n, "provider", what, &r->provider, err);
    if (rc == HS_OK)
        rc = parse_upstreams(c, n, what, r, err);
    if (rc == HS_OK) {
        char w[80];
        snprintf(w, sizeof(w), "%s.headers", what);
        rc = parse_headers(c, hs_ynode_get(n, "headers"), w, &r->headers, &r->nheaders, err);
    }
    if (rc == HS_OK)
        rc = parse_timeouts(c, n, what, &r->timeouts, err);
    if (rc == HS_OK)
        rc = get_bytes(c, n, "max_body_size", what, &r->max_body_bytes, err);
    if (rc == HS_OK)
        rc = get_bytes(c, n, "max_response_size", what, &r->max_response_bytes, err);
    if (rc == HS_OK)
        rc = get_bool(c, n, "inject_usage", what, &r->inject_usage, err);
    if (rc == HS_OK)
        rc = parse_route_capture(c, n, what, r, err);
    if (rc == HS_OK)
        rc = parse_route_paths(c, n, what, r, err);
    if (rc != HS_OK)
        return rc;
    if (r->name == NULL)
        r->name = r->model;
    r->is_glob = strpbrk(r->model, "*?[") != NULL;
    return HS_OK;
}

static int parse_routes(struct gw_config *c, const struct hs_ynode *gw,
                        const struct gw_route_config *defaults, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(gw, "routes");
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    if (n->type != HS_Y_SEQ)
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "gateway.routes: expected a list");
    if (n->n > MAX_ROUTES)
        return hs_ynode_error(c->doc, n, HS_EINVAL, err, "gateway.routes: more than %d routes",
                              MAX_ROUTES);
    c->routes = hs_arena_calloc(&c->arena, (n->n + 1) * sizeof(*c->routes));
    if (c->routes == NULL)
        return nomem(err);
    for (size_t i = 0; i < n->n; i++) {
        int rc = parse_route(c, n->items[i], i, defaults, &c->routes[i], err);
        if (rc != HS_OK)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->routes[j].model, c->routes[i].model) == 0)
                return hs_ynode_error(c->doc, hs_ynode_get(n->items[i], "model"), HS_EINVAL, err,
                                      "gateway.routes[%zu]: model \"%s\" already routed by "
                                      "routes[%zu] (line %d)",
                                      i, c->routes[i].model, j, c->routes[j].line);
        for (size_t k = 0; k < c->routes[i].npaths; k++) {
            const struct gw_route_config *o = gw_route_for_path(c, c->routes[i].paths[k]);
            if (o != NULL)
                return hs_ynode_error(c->doc, hs_ynode_get(n->items[i], "paths"), HS_EINVAL, err,
                                      "gateway.routes[%zu].paths: %s is already bound to "
                                      "routes[%zu] (line %d)",
                                      i, c->routes[i].paths[k], gw_route_index(c, o), o->line);
        }
        c->nroutes = i + 1;
    }
    return HS_OK;
}

static int parse_health(struct gw_config *c, const struct hs_ynode *gw, struct hs_err *err)
{
    struct gw_health_config *h = &c->health;
    const struct hs_ynode *n = hs_ynode_get(gw, "health_check");
    int64_t v;
    int rc = HS_OK;
    if (n != NULL && !hs_ynode_is_null(n)) {
        static const char *const keys[] = {
            "path", "interval", "timeout", "unhealthy_threshold", "healthy_threshold", NULL};
        const char *w = "gateway.health_check";
        rc = expect_map(c->doc, n, w, err);
        if (rc == HS_OK)
            rc = check_keys(c->doc, n, w, keys, err);
        if (rc == HS_OK)
            rc = get_str(c, n, "path", w, &h->path, err);
        if (rc == HS_OK && h->path && h->path[0] != '\0' && h->path[0] != '/')
            return hs_ynode_error(c->doc, hs_ynode_get(n, "path"), HS_EINVAL, err,
                                  "%s.path: must start with /", w);
        if (rc == HS_OK)
            rc = get_duration(c, n, "interval", w, &h->interval_ms, err);
        if (rc == HS_OK)
            rc = get_duration(c, n, "timeout", w, &h->timeout_ms, err);
        v = h->unhealthy_threshold;
        if (rc == HS_OK && (rc = get_int(c, n, "unhealthy_threshold", w, 1, 1000, &v, err)) == 0)
            h->unhealthy_threshold = (int)v;
        v = h->healthy_threshold;
        if (rc == HS_OK && (rc = get_int(c, n, "healthy_threshold", w, 1, 1000, &v, err)) == 0)
            h->healthy_threshold = (int)v;
        if (rc == HS_OK && h->interval_ms < 100)
            return hs_ynode_error(c->doc, n, HS_EINVAL, err, "%s.interval: at least 100ms", w);
    }
    n = hs_ynode_get(gw, "ejection");
    if (rc == HS_OK && n != NULL && !hs_ynode_is_null(n)) {
        static const char *const keys[] = {"consecutive_failures", "duration", NULL};
        const char *w = "gateway.ejection";
        rc = expect_map(c->doc, n, w, err);
        if (rc == HS_OK)
            rc = check_keys(c->doc, n, w, keys, err);
        v = h->eject_after_failures;
        if (rc == HS_OK && (rc = get_int(c, n, "consecutive_failures", w, 0, 1000, &v, err)) == 0)
            h->eject_after_failures = (int)v;
        if (rc == HS_OK)
            rc = get_duration(c, n, "duration", w, &h->eject_ms, err);
    }
    return rc;
}

static int parse_tracing(struct gw_config *c, const struct hs_ynode *gw, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(gw, "tracing");
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    static const char *const keys[] = {"endpoint", "sample_ratio", NULL};
    const char *w = "gateway.tracing";
    int rc = expect_map(c->doc, n, w, err);
    if (rc == HS_OK)
        rc = check_keys(c->doc, n, w, keys, err);
    if (rc == HS_OK)
        rc = get_str(c, n, "endpoint", w, &c->tracing_endpoint, err);
    if (rc == HS_OK && c->tracing_endpoint != NULL)
        rc = check_url(c, hs_ynode_get(n, "endpoint"), "gateway.tracing.endpoint",
                       c->tracing_endpoint, err);
    const struct hs_ynode *r = hs_ynode_get(n, "sample_ratio");
    if (rc == HS_OK && r != NULL) {
        rc = hs_ynode_f64(c->doc, r, w, &c->tracing_sample_ratio, err);
        if (rc == HS_OK && !(c->tracing_sample_ratio >= 0 && c->tracing_sample_ratio <= 1))
            return hs_ynode_error(c->doc, r, HS_EINVAL, err,
                                  "gateway.tracing.sample_ratio: must be between 0 and 1");
    }
    return rc;
}

static void set_defaults(struct gw_config *c, struct gw_route_config *d)
{
    c->listen = "127.0.0.1:9191";
    c->max_connections = 4096;
    c->store_interval_ms = 5000;
    c->tracing_sample_ratio = 1.0;
    c->access_log = true;
    c->health.interval_ms = 10000;
    c->health.timeout_ms = 2000;
    c->health.unhealthy_threshold = 3;
    c->health.healthy_threshold = 2;
    c->health.eject_after_failures = 5;
    c->health.eject_ms = 30000;
    memset(d, 0, sizeof(*d));
    d->provider = "openai";
    d->timeouts.connect_ms = 5000;
    d->timeouts.first_byte_ms = 60000;
    d->timeouts.idle_ms = 60000;
    d->timeouts.total_ms = 600000;
    d->max_body_bytes = 16 << 20;
    d->max_response_bytes = 64 << 20;
    d->inject_usage = true;
    d->capture_percentage = -1;
}

static int parse_top(struct gw_config *c, const struct hs_ynode *gw, struct gw_route_config *d,
                     struct hs_err *err)
{
    static const char *const keys[] = {
        "listen",       "routes",        "timeouts",        "max_body_size", "max_response_size",
        "inject_usage", "tenant_header", "store_interval",  "access_log",    "health_check",
        "ejection",     "tracing",       "max_connections", "provider",      NULL};
    const char *w = "gateway";
    int rc = check_keys(c->doc, gw, w, keys, err);
    if (rc == HS_OK)
        rc = get_str(c, gw, "listen", w, &c->listen, err);
    if (rc == HS_OK)
        rc = get_str(c, gw, "tenant_header", w, &c->tenant_header, err);
    if (rc == HS_OK)
        rc = get_str(c, gw, "provider", w, &d->provider, err);
    if (rc == HS_OK)
        rc = get_duration(c, gw, "store_interval", w, &c->store_interval_ms, err);
    if (rc == HS_OK && c->store_interval_ms < 100)
        return hs_ynode_error(c->doc, hs_ynode_get(gw, "store_interval"), HS_EINVAL, err,
                              "gateway.store_interval: at least 100ms");
    if (rc == HS_OK)
        rc = get_bool(c, gw, "access_log", w, &c->access_log, err);
    if (rc == HS_OK)
        rc = get_int(c, gw, "max_connections", w, 1, 1000000, &c->max_connections, err);
    if (rc == HS_OK)
        rc = parse_timeouts(c, gw, w, &d->timeouts, err);
    if (rc == HS_OK)
        rc = get_bytes(c, gw, "max_body_size", w, &d->max_body_bytes, err);
    if (rc == HS_OK)
        rc = get_bytes(c, gw, "max_response_size", w, &d->max_response_bytes, err);
    if (rc == HS_OK)
        rc = get_bool(c, gw, "inject_usage", w, &d->inject_usage, err);
    if (rc == HS_OK)
        rc = parse_health(c, gw, err);
    if (rc == HS_OK)
        rc = parse_tracing(c, gw, err);
    return rc;
}

int gw_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *node,
                    const struct hs_ynode *capture, struct gw_config **out, struct hs_err *err)
{
    struct gw_config *c = hs_calloc(1, sizeof(*c));
    if (c == NULL)
        return nomem(err);
    hs_arena_init(&c->arena, 4096, 0);
    c->doc = doc;
    c->capture = capture;
    struct gw_route_config defaults;
    set_defaults(c, &defaults);
    int rc = HS_OK;
    if (node != NULL && !hs_ynode_is_null(node)) {
        rc = expect_map(doc, node, "gateway", err);
        if (rc == HS_OK)
            rc = parse_top(c, node, &defaults, err);
        if (rc == HS_OK)
            rc = parse_routes(c, node, &defaults, err);
    }
    if (rc != HS_OK) {
        gw_config_free(c);
        return rc;
    }
    *out = c;
    return HS_OK;
}

void gw_config_free(struct gw_config *c)
{
    if (c == NULL)
        return;
    hs_arena_cleanup(&c->arena);
    hs_free(c);
}
