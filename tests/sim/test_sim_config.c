/*
 * test_sim_config.c - the `holoscope sim --config` reader and validation:
 * every field lands where it should, defaults fill the rest, and every
 * mistake is reported with its file position.
 */
#include "hs_test.h"

#include "sim/sim.h"

#include <string.h>

static struct hs_ydoc *doc_of(const char *yaml)
{
    struct hs_err err;
    struct hs_ydoc *d = hs_ydoc_parse(yaml, strlen(yaml), "sim.yml", &err);
    if (!d)
        fail_msg("yaml: %s", err.msg);
    return d;
}

static void config_reads_engines_and_faults_and_keeps_defaults(void **state)
{
    const char *yaml = "sim:\n"
                       "  base_port: 18100\n"
                       "  seed: 42\n"
                       "  speed: 2.5\n"
                       "  engines:\n"
                       "    - name: llama\n"
                       "      model: meta-llama/Llama-3.1-70B-Instruct\n"
                       "      kind: vllm\n"
                       "      replicas: 3\n"
                       "      gpus_per_replica: 4\n"
                       "      kv_blocks: 9000\n"
                       "      step_base_ms: 12.5\n"
                       "    - name: qwen\n"
                       "      model: Qwen/Qwen3-8B\n"
                       "      kind: sglang\n"
                       "  faults:\n"
                       "    - kind: throttle\n"
                       "      target: llama/1\n"
                       "      magnitude: 2\n"
                       "      start: 30s\n"
                       "      duration: 5m\n";
    struct hs_ydoc *d = doc_of(yaml);
    struct sim_config c;
    struct hs_err err;
    assert_int_equal(sim_config_parse(d, d->root, &c, &err), HS_OK);
    assert_int_equal(c.base_port, 18100);
    assert_int_equal(c.seed, 42);
    assert_true(c.speed == 2.5);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.n_engines, 2);
    assert_string_equal(c.engines[0].name, "llama");
    assert_int_equal(c.engines[0].replicas, 3);
    assert_int_equal(c.engines[0].gpus_per_replica, 4);
    assert_int_equal(c.engines[0].kv_blocks, 9000);
    assert_true(c.engines[0].step_base_ms == 12.5);
    assert_int_equal(c.engines[0].block_size, 16); /* default */
    assert_int_equal(c.engines[1].kind, SIM_SGLANG);
    assert_int_equal(c.engines[1].replicas, 1);
    assert_int_equal(c.n_faults, 1);
    assert_string_equal(c.faults[0].kind, "throttle");
    assert_string_equal(c.faults[0].target, "llama/1");
    assert_true(c.faults[0].magnitude == 2);
    assert_int_equal(c.faults[0].start_ms, 30000);
    assert_int_equal(c.faults[0].duration_ms, 300000);
    assert_int_equal(sim_config_validate(&c, &err), HS_OK);
    sim_config_free(&c);
    assert_null(c.engines);
    hs_ydoc_free(d);
}

static void expect_error(const char *yaml, const char *needle)
{
    struct hs_ydoc *d = doc_of(yaml);
    struct sim_config c;
    struct hs_err err;
    hs_err_clear(&err);
    int rc = sim_config_parse(d, d->root, &c, &err);
    if (rc == HS_OK)
        rc = sim_config_validate(&c, &err);
    assert_int_not_equal(rc, HS_OK);
    if (!strstr(err.msg, needle))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, needle);
    sim_config_free(&c);
    hs_ydoc_free(d);
}

static void config_errors_name_the_position_and_the_problem(void **state)
{
    expect_error("engines:\n  - name: a\n    colour: red\n", "sim.yml:3:5");
    expect_error("engines:\n  - name: a\n    colour: red\n", "unknown field \"colour\"");
    expect_error("engines:\n  - name: a\n    kind: tgi\n", "expected vllm or sglang");
    expect_error("engines:\n  - model: m\n", "name is required");
    expect_error("engines:\n  - name: a\nfaults:\n  - kind: melt\n    target: a\n",
                 "unknown fault kind \"melt\"");
    expect_error("engines:\n  - name: a\nfaults:\n  - kind: errors\n    target: b\n",
                 "unknown target \"b\"");
    expect_error("engines:\n  - name: a\nfaults:\n  - kind: errors\n    target: a/1\n",
                 "unknown target \"a/1\"");
    expect_error("engines:\n  - name: a\n    replicas: 0\n", "replicas must be 1..64");
    expect_error("engines:\n  - name: a\n  - name: a\n", "used twice");
    expect_error("engines: {}\n", "expected a list");
    expect_error("speed: 0\nengines:\n  - name: a\n", "speed");
    expect_error("seed: 1\n", "no engines");
    expect_error("engines:\n  - name: a\n    model: \"x\\\"y\"\n", "bad model");
}

static void config_validate_accepts_defaults_with_one_engine(void **state)
{
    struct sim_config c;
    struct sim_engine_config e;
    sim_config_defaults(&c);
    sim_engine_config_defaults(&e);
    c.engines = &e;
    c.n_engines = 1;
    assert_int_equal(sim_config_validate(&c, NULL), HS_OK);
    struct sim_fault f = {"idle_gpu", "llama-vllm/0", 0, 0, 0};
    c.faults = &f;
    c.n_faults = 1;
    assert_int_equal(sim_config_validate(&c, NULL), HS_OK);
    f.target = "llama-vllm/1";
    assert_int_equal(sim_config_validate(&c, NULL), HS_EINVAL);
}

static void config_parse_survives_every_allocation_failure(void **state)
{
    const char *yaml = "engines:\n  - name: a\n  - name: b\n    kind: sglang\n"
                       "faults:\n  - kind: errors\n    target: b\n";
    struct hs_ydoc *d = doc_of(yaml);
    for (long n = 0; n < 20; n++) {
        struct sim_config c;
        struct hs_err err;
        hs_alloc_fail_after(n);
        int rc = sim_config_parse(d, d->root, &c, &err);
        hs_alloc_fail_after(-1);
        assert_true(rc == HS_OK || rc == HS_ENOMEM);
        if (rc == HS_OK)
            assert_int_equal(c.n_engines, 2);
        sim_config_free(&c);
    }
    hs_ydoc_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_reads_engines_and_faults_and_keeps_defaults),
        cmocka_unit_test(config_errors_name_the_position_and_the_problem),
        cmocka_unit_test(config_validate_accepts_defaults_with_one_engine),
        cmocka_unit_test(config_parse_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
