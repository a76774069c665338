/*
 * test_gw_config.c - the `gateway:` configuration section: defaults, every
 * shape of upstream and header, and errors that name the file position.
 */
#include "gateway/gateway.h"
#include "hs_test.h"

#include <string.h>

static struct hs_ydoc *doc_of(const char *yaml)
{
    struct hs_err err = {0};
    struct hs_ydoc *d = hs_ydoc_parse(yaml, strlen(yaml), "gw.yml", &err);
    assert_non_null(d);
    return d;
}

static int parse(const char *yaml, struct gw_config **out, struct hs_err *err, struct hs_ydoc **d)
{
    *d = doc_of(yaml);
    return gw_config_parse(*d, hs_ynode_get((*d)->root, "gateway"),
                           hs_ynode_get((*d)->root, "capture"), out, err);
}

static void config_without_gateway_section_gives_the_defaults(void **state)
{
    (void)state;
    struct gw_config *c = NULL;
    struct hs_err err = {0};
    struct hs_ydoc *d = doc_of("other: 1\n");
    assert_int_equal(gw_config_parse(d, NULL, NULL, &c, &err), HS_OK);
    assert_string_equal(c->listen, "127.0.0.1:9191");
    assert_int_equal(c->nroutes, 0);
    assert_int_equal(c->store_interval_ms, 5000);
    assert_int_equal(c->health.eject_after_failures, 5);
    gw_config_free(c);
    hs_ydoc_free(d);
}

static void config_reads_routes_upstreams_headers_and_timeouts(void **state)
{
    (void)state;
    struct gw_config *c = NULL;
    struct hs_err err = {0};
    struct hs_ydoc *d = NULL;
    const char *y = "gateway:\n"
                    "  listen: 127.0.0.1:0\n"
                    "  timeouts: {connect: 2s, first_byte: 3s}\n"
                    "  tenant_header: x-tenant\n"
                    "  store_interval: 1s\n"
                    "  routes:\n"
                    "    - model: llama-3-8b\n"
                    "      upstreams: [http://127.0.0.1:8001/, http://127.0.0.1:8002]\n"
                    "      timeouts: {idle: 250ms}\n"
                    "      inject_usage: false\n"
                    "    - model: \"gpt-*\"\n"
                    "      name: openai\n"
                    "      upstreams:\n"
                    "        - url: https://api.example.com\n"
                    "          headers: {authorization: Bearer k}\n"
                    "      headers: {x-route: a}\n"
                    "      capture: {sampling_percentage: 25}\n"
                    "capture:\n"
                    "  dir: ./data/captures\n";
    assert_int_equal(parse(y, &c, &err, &d), HS_OK);
    assert_string_equal(c->listen, "127.0.0.1:0");
    assert_string_equal(c->tenant_header, "x-tenant");
    assert_int_equal(c->store_interval_ms, 1000);
    assert_int_equal(c->nroutes, 2);
    const struct gw_route_config *r = &c->routes[0];
    assert_string_equal(r->name, "llama-3-8b");
    assert_false(r->is_glob);
    assert_int_equal(r->nupstreams, 2);
    assert_string_equal(r->upstreams[0].url, "http://127.0.0.1:8001");
    assert_int_equal(r->timeouts.connect_ms, 2000);
    assert_int_equal(r->timeouts.first_byte_ms, 3000);
    assert_int_equal(r->timeouts.idle_ms, 250);
    assert_false(r->inject_usage);
    r = &c->routes[1];
    assert_true(r->is_glob);
    assert_string_equal(r->name, "openai");
    assert_true(r->inject_usage);
    assert_int_equal(r->upstreams[0].nheaders, 1);
    assert_string_equal(r->upstreams[0].headers[0].name, "authorization");
    assert_string_equal(r->headers[0].value, "a");
    assert_true(r->capture_percentage == 25.0);
    assert_non_null(c->capture);
    gw_config_free(c);
    hs_ydoc_free(d);
}

static void expect_error(const char *yaml, const char *needle)
{
    struct gw_config *c = NULL;
    struct hs_err err = {0};
    struct hs_ydoc *d = NULL;
    assert_int_equal(parse(yaml, &c, &err, &d), HS_EINVAL);
    assert_null(c);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
    hs_ydoc_free(d);
}

static void config_errors_name_the_file_line_and_column(void **state)
{
    (void)state;
    expect_error("gateway:\n  routes:\n    - model: a\n      upstreams: [ftp://x]\n", "gw.yml:4:");
    expect_error("gateway:\n  routes:\n    - model: a\n      upstreams: [ftp://x]\n",
                 "gateway.routes[0].upstreams[0]");
    expect_error("gateway:\n  routes:\n    - upstreams: [http://a]\n", "model is missing");
    expect_error("gateway:\n  routes:\n    - model: a\n", "upstreams is missing");
    expect_error("gateway:\n  routes:\n    - model: a\n      upstreams: []\n", "empty list");
    expect_error("gateway:\n  listne: x\n", "gw.yml:2:3: gateway: unknown key \"listne\"");
    expect_error("gateway:\n  timeouts: {connect: soon}\n", "gw.yml:2:");
    expect_error("gateway:\n  routes:\n    - model: a\n      upstreams: [http://a]\n"
                 "    - model: a\n      upstreams: [http://b]\n",
                 "already routed by routes[0] (line 3)");
    expect_error("gateway:\n  routes:\n    - model: a\n      upstreams: [http://a]\n"
                 "      headers: {\"bad name\": x}\n",
                 "invalid header name");
    expect_error("gateway:\n  routes: {model: a}\n", "expected a list");
    expect_error("gateway:\n  routes:\n    - model: a\n      upstreams: [http://a]\n"
                 "      capture: {sampling_percentage: 150}\n",
                 "between 0 and 100");
    expect_error("gateway:\n  tracing: {endpoint: nope}\n", "gateway.tracing.endpoint");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_without_gateway_section_gives_the_defaults),
        cmocka_unit_test(config_reads_routes_upstreams_headers_and_timeouts),
        cmocka_unit_test(config_errors_name_the_file_line_and_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
