/*
 * fuzz_gw_config.c - libFuzzer harness for the `gateway:` section: any
 * YAML document is parsed and, when it has a gateway map, read by
 * gw_config_parse.  Never crashes or leaks; an error always has a message;
 * a config that parses routes every exact model name it lists to that
 * route.
 */
#include "gateway/gateway.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    struct hs_err err = {0};
    struct hs_ydoc *d = hs_ydoc_parse((const char *)data, size, "fuzz.yml", &err);
    if (d == NULL)
        return 0;
    const struct hs_ynode *gw = d->root ? hs_ynode_get(d->root, "gateway") : NULL;
    struct gw_config *c = NULL;
    int rc = gw_config_parse(d, gw, NULL, &c, &err);
    if (rc != HS_OK && err.msg[0] == '\0')
        abort();
    if (rc == HS_OK) {
        for (size_t i = 0; i < c->nroutes; i++) {
            const struct gw_route_config *r = gw_route_match(c, c->routes[i].model);
            if (!c->routes[i].is_glob && r != &c->routes[i])
                abort();
            if (c->routes[i].nupstreams == 0)
                abort();
        }
        struct hs_buf b;
        hs_buf_init(&b, 0);
        if (gw_routes_models_json(c, &b) != HS_OK || gw_routes_list(c, &b) != HS_OK)
            abort();
        hs_buf_cleanup(&b);
        gw_config_free(c);
    }
    hs_ydoc_free(d);
    return 0;
}
