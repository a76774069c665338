/*
 * route.c - from a request's model name to its route (spec/gateway.md
 * §2.2): exact names first, then globs in file order (so "*" placed last
 * is the default route); requests without a model by the route bound to
 * their path; and the lists `GET /v1/models` and the 404 answer show.  Pure functions of the
 * configuration.
 */
#include "gateway/gateway.h"

#include <fnmatch.h>
#include <string.h>

const struct gw_route_config *gw_route_match(const struct gw_config *c, const char *model)
{
    if (model == NULL)
        return NULL;
    for (size_t i = 0; i < c->nroutes; i++)
        if (!c->routes[i].is_glob && strcmp(c->routes[i].model, model) == 0)
            return &c->routes[i];
    for (size_t i = 0; i < c->nroutes; i++)
        if (c->routes[i].is_glob && fnmatch(c->routes[i].model, model, 0) == 0)
            return &c->routes[i];
    return NULL;
}

const struct gw_route_config *gw_route_for_path(const struct gw_config *c, const char *path)
{
    if (path == NULL)
        return NULL;
    for (size_t i = 0; i < c->nroutes; i++)
        for (size_t j = 0; j < c->routes[i].npaths; j++)
            if (strcmp(c->routes[i].paths[j], path) == 0)
                return &c->routes[i];
    return NULL;
}

size_t gw_route_index(const struct gw_config *c, const struct gw_route_config *r)
{
    return (size_t)(r - c->routes);
}

int gw_routes_models_json(const struct gw_config *c, struct hs_buf *out)
{
    int rc = hs_buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < c->nroutes && rc == HS_OK; i++) {
        const char *id = c->routes[i].model;
        rc = hs_buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
        if (rc == HS_OK)
            rc = hs_buf_json_str(out, id, strlen(id));
        if (rc == HS_OK)
            rc =
                hs_buf_puts(out, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"holoscope\"}");
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "]}");
    return rc;
}

int gw_routes_list(const struct gw_config *c, struct hs_buf *out)
{
    int rc = HS_OK;
    for (size_t i = 0; i < c->nroutes && rc == HS_OK; i++) {
        if (i > 0)
            rc = hs_buf_puts(out, ", ");
        if (rc == HS_OK)
            rc = hs_buf_puts(out, c->routes[i].model);
    }
    return rc;
}
