/*
 * test_default_pack_loads.c - the embedded default pack is the file in
 * rules/, passes holoscope's own validation, and evaluates without errors
 * on a store fed with a little of every unified series it reads.
 */
#include "hs_test.h"

#include "promql/promql.h"
#include "rules/rules.h"

#include <stdlib.h>
#include <string.h>

static void embedded_pack_matches_the_source_file(void **state)
{
    (void)state;
    const char *src = getenv("HS_SOURCE_DIR");
    assert_non_null(src);
    char path[4096];
    snprintf(path, sizeof path, "%s/rules/default.yml", src);
    size_t flen = 0, elen = 0;
    struct hs_err err;
    char *file = hs_read_file(path, 0, &flen, &err);
    assert_non_null(file);
    const char *emb = rules_default_pack(&elen);
    assert_int_equal(flen, elen);
    assert_memory_equal(file, emb, flen);
    hs_free(file);
}

static void default_pack_passes_validation(void **state)
{
    (void)state;
    struct rules_set *s = rules_set_new();
    struct hs_err err;
    hs_err_clear(&err);
    int rc = rules_set_add_default(s, &err);
    if (rc != HS_OK)
        fail_msg("%s", err.msg);
    size_t nr = 0, na = 0;
    rules_set_count(s, &nr, &na);
    assert_true(nr >= 20);
    assert_true(na >= 18);
    rules_set_free(s);
}

static void put(struct promql_mem *m, const char *name, const char *l1, const char *v1,
                const char *l2, const char *v2, int64_t t, double v)
{
    struct hs_label l[3] = {{"__name__", name}, {l1, v1}, {l2, v2}};
    struct hs_labels ls = {3, l};
    hs_labels_sort(&ls);
    struct hs_err err;
    assert_int_equal(promql_mem_append(m, &ls, t, v, &err), HS_OK);
}

static void default_pack_evaluates_without_failures(void **state)
{
    (void)state;
    struct promql_mem *mem = promql_mem_new();
    struct promql_storage st;
    promql_mem_storage(mem, &st);
    struct promql_engine *e = promql_engine_new(NULL);
    int64_t t0 = 1700000000000LL;
    for (int i = 0; i < 60; i++) {
        int64_t t = t0 + i * 30000LL;
        put(mem, "llm_server_generation_tokens_total", "model", "m", "instance", "a", t,
            i * 3000.0);
        put(mem, "llm_server_requests_finished_total", "model", "m", "finish_reason", "length", t,
            i * 1.0);
        put(mem, "llm_server_requests_finished_total", "model", "m", "finish_reason", "stop", t,
            i * 10.0);
        put(mem, "llm_server_time_to_first_token_seconds_bucket", "model", "m", "le", "2.5", t,
            i * 9.0);
        put(mem, "llm_server_time_to_first_token_seconds_bucket", "model", "m", "le", "+Inf", t,
            i * 10.0);
        put(mem, "llm_server_time_to_first_token_seconds_count", "model", "m", "backend", "vllm", t,
            i * 10.0);
        put(mem, "hw_gpu_utilization_ratio", "gpu_uuid", "G1", "hw_gpu_task", "general", t, 0.95);
        put(mem, "hw_gpu_memory_limit_bytes", "gpu_uuid", "G1", "gpu_model", "H100", t, 8e10);
        put(mem, "hw_gpu_memory_usage_bytes", "gpu_uuid", "G1", "gpu_model", "H100", t, 7e10);
        put(mem, "llm_server_gpu_info", "gpu_uuid", "G1", "model", "m", t, 1);
        put(mem, "holoscope_pricing_gpu_hour_dollars", "gpu_model", "H100", "x", "y", t, 2.5);
        put(mem, "up", "instance", "a", "job", "vllm", t, 0);
    }
    struct rules_manager_opts o = {0};
    o.engine = e;
    o.storage = &st;
    rules_mem_sink(mem, &o.sink);
    struct hs_err err;
    struct rules_manager *m = rules_manager_new(&o, &err);
    assert_non_null(m);
    struct rules_set *s = rules_set_new();
    assert_int_equal(rules_set_add_default(s, &err), HS_OK);
    assert_int_equal(rules_manager_update(m, s, &err), HS_OK);
    for (int i = 0; i < 20; i++)
        assert_int_equal(rules_manager_eval_all(m, t0 + (40 + i) * 30000LL, &err), HS_OK);
    if (rules_manager_failures(m) != 0) {
        struct hs_buf b;
        hs_buf_init(&b, 0);
        HS_IGNORE_RESULT(rules_manager_rules_json(m, NULL, &b));
        fail_msg("failures: %s", b.p);
    }
    assert_int_equal(rules_manager_alert_count(m, "ScrapeTargetDown", RULES_FIRING), 1);
    assert_int_equal(rules_manager_alert_count(m, "LLMTruncationRateHigh", RULES_FIRING), 1);
    rules_manager_free(m);
    promql_engine_free(e);
    promql_mem_free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(embedded_pack_matches_the_source_file),
        cmocka_unit_test(default_pack_passes_validation),
        cmocka_unit_test(default_pack_evaluates_without_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
