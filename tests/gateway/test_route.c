/*
 * test_route.c - model name to route: exact names win over globs, globs
 * match in file order, "*" is the default, requests without a model take
 * the route bound to their path, and the lists for /v1/models and the 404
 * answer.
 */
#include "gateway/gateway.h"
#include "hs_test.h"

#include <string.h>

static struct gw_config *cfg;
static struct hs_ydoc *doc;

static int setup(void **state)
{
    (void)state;
    const char *y = "gateway:\n  routes:\n"
                    "    - {model: \"llama-*\", upstreams: [http://a]}\n"
                    "    - {model: llama-3-8b, upstreams: [http://b]}\n"
                    "    - {model: \"qwen-?b\", upstreams: [http://c]}\n"
                    "    - {model: \"*\", upstreams: [http://d]}\n";
    struct hs_err err = {0};
    doc = hs_ydoc_parse(y, strlen(y), "r.yml", &err);
    if (doc == NULL)
        return -1;
    return gw_config_parse(doc, hs_ynode_get(doc->root, "gateway"), NULL, &cfg, &err);
}

static int teardown(void **state)
{
    (void)state;
    gw_config_free(cfg);
    hs_ydoc_free(doc);
    return 0;
}

static const char *routed(const char *model)
{
    const struct gw_route_config *r = gw_route_match(cfg, model);
    return r ? r->upstreams[0].url : NULL;
}

static void route_prefers_an_exact_name_over_an_earlier_glob(void **state)
{
    (void)state;
    assert_string_equal(routed("llama-3-8b"), "http://b");
    assert_string_equal(routed("llama-3-70b"), "http://a");
}

static void route_matches_globs_in_file_order_then_the_default(void **state)
{
    (void)state;
    assert_string_equal(routed("qwen-7b"), "http://c");
    assert_string_equal(routed("qwen-14b"), "http://d");
    assert_string_equal(routed("anything"), "http://d");
    assert_int_equal(gw_route_index(cfg, gw_route_match(cfg, "qwen-7b")), 2);
}

static void route_without_a_default_answers_null_for_unknown_models(void **state)
{
    (void)state;
    const char *y = "gateway:\n  routes:\n    - {model: m1, upstreams: [http://a]}\n"
                    "    - {model: \"m2*\", upstreams: [http://b]}\n";
    struct hs_err err = {0};
    struct hs_ydoc *d = hs_ydoc_parse(y, strlen(y), "r.yml", &err);
    struct gw_config *c = NULL;
    assert_int_equal(gw_config_parse(d, hs_ynode_get(d->root, "gateway"), NULL, &c, &err), HS_OK);
    assert_null(gw_route_match(c, "m3"));
    assert_null(gw_route_match(c, NULL));
    assert_null(gw_route_match(c, ""));
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(gw_routes_list(c, &b), HS_OK);
    assert_string_equal(b.p, "m1, m2*");
    hs_buf_reset(&b);
    assert_int_equal(gw_routes_models_json(c, &b), HS_OK);
    assert_string_equal(b.p, "{\"object\":\"list\",\"data\":["
                             "{\"id\":\"m1\",\"object\":\"model\",\"created\":0,\"owned_by\":"
                             "\"holoscope\"},{\"id\":\"m2*\",\"object\":\"model\",\"created\":0,"
                             "\"owned_by\":\"holoscope\"}]}");
    hs_buf_cleanup(&b);
    gw_config_free(c);
    hs_ydoc_free(d);
}

static int parse_cfg(const char *y, struct hs_ydoc **d, struct gw_config **c, struct hs_err *err)
{
    *d = hs_ydoc_parse(y, strlen(y), "r.yml", err);
    assert_non_null(*d);
    return gw_config_parse(*d, hs_ynode_get((*d)->root, "gateway"), NULL, c, err);
}

static void a_request_without_a_model_takes_the_route_bound_to_its_path(void **state)
{
    (void)state;
    const char *y = "gateway:\n  routes:\n"
                    "    - {model: tgi-llama, provider: tgi, upstreams: [http://t],\n"
                    "       paths: [/generate, /generate_stream]}\n"
                    "    - {model: llamacpp, upstreams: [http://l], paths: [/completion]}\n"
                    "    - {model: \"*\", upstreams: [http://d]}\n";
    struct hs_err err = {0};
    struct hs_ydoc *d;
    struct gw_config *c = NULL;
    assert_int_equal(parse_cfg(y, &d, &c, &err), HS_OK);
    assert_string_equal(gw_route_for_path(c, "/generate_stream")->model, "tgi-llama");
    assert_string_equal(gw_route_for_path(c, "/generate")->model, "tgi-llama");
    assert_string_equal(gw_route_for_path(c, "/completion")->upstreams[0].url, "http://l");
    assert_null(gw_route_for_path(c, "/v1/chat/completions"));
    assert_null(gw_route_for_path(c, NULL));
    /* a model in the body still routes by model */
    assert_string_equal(gw_route_match(c, "tgi-llama")->upstreams[0].url, "http://t");
    gw_config_free(c);
    hs_ydoc_free(d);
}

static void a_path_the_gateway_does_not_serve_or_bound_twice_is_a_config_error(void **state)
{
    (void)state;
    struct hs_err err = {0};
    struct hs_ydoc *d;
    struct gw_config *c = NULL;
    assert_int_equal(parse_cfg("gateway:\n  routes:\n"
                               "    - {model: a, upstreams: [http://a], paths: [/v2/generate]}\n",
                               &d, &c, &err),
                     HS_EINVAL);
    assert_non_null(strstr(err.msg, "paths[0]: \"/v2/generate\" is not a path the gateway serves"));
    assert_non_null(strstr(err.msg, "r.yml:3"));
    hs_ydoc_free(d);
    memset(&err, 0, sizeof(err));
    assert_int_equal(parse_cfg("gateway:\n  routes:\n"
                               "    - {model: a, upstreams: [http://a], paths: [/generate]}\n"
                               "    - {model: b, upstreams: [http://b], paths: [/completion, "
                               "/generate]}\n",
                               &d, &c, &err),
                     HS_EINVAL);
    assert_non_null(strstr(err.msg, "/generate is already bound to routes[0] (line 3)"));
    hs_ydoc_free(d);
    memset(&err, 0, sizeof(err));
    assert_int_equal(parse_cfg("gateway:\n  routes:\n"
                               "    - {model: a, upstreams: [http://a], paths: /generate}\n",
                               &d, &c, &err),
                     HS_EINVAL);
    assert_non_null(strstr(err.msg, "paths: expected a list of paths"));
    hs_ydoc_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_prefers_an_exact_name_over_an_earlier_glob),
        cmocka_unit_test(route_matches_globs_in_file_order_then_the_default),
        cmocka_unit_test(route_without_a_default_answers_null_for_unknown_models),
        cmocka_unit_test(a_request_without_a_model_takes_the_route_bound_to_its_path),
        cmocka_unit_test(a_path_the_gateway_does_not_serve_or_bound_twice_is_a_config_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
