/*
 * test_sim_fleet.c - the fleet API the demo builds on: start on ephemeral
 * ports, list endpoints, serve /metrics, /health and /v1/models, inject and
 * clear faults from another thread, refuse bad configs, stop cleanly.
 */
#include "hs_test.h"

#include "http/http.h"
#include "sim/sim.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static struct sim_engine_config engines[2];

static struct sim_fleet *start_fleet(void)
{
    struct sim_config c;
    sim_config_defaults(&c);
    sim_engine_config_defaults(&engines[0]);
    engines[0].name = "llama";
    engines[0].replicas = 2;
    engines[0].gpus_per_replica = 2;
    sim_engine_config_defaults(&engines[1]);
    engines[1].name = "qwen";
    engines[1].model = "Qwen/Qwen3-8B";
    engines[1].kind = SIM_SGLANG;
    c.engines = engines;
    c.n_engines = 2;
    c.gpus_per_node = 2;
    struct hs_err err;
    struct sim_fleet *f = sim_fleet_start(&c, &err);
    if (!f)
        fail_msg("sim_fleet_start: %s", err.msg);
    return f;
}

static char *fetch(const char *base, const char *path, int *status)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", base, path);
    char *body = NULL;
    size_t len;
    struct hs_err err;
    if (http_client_fetch_sync(url, 5000, 0, status, &body, &len, &err) != HS_OK) {
        *status = 0;
        return NULL;
    }
    return body;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void fleet_lists_replicas_then_nodes(void **state)
{
    struct sim_fleet *f = start_fleet();
    /* 3 replicas; llama's 4 GPUs on 2 nodes of 2, qwen's 1 GPU on 1 node */
    assert_int_equal(sim_fleet_endpoint_count(f), 6);
    struct sim_endpoint ep;
    const char *backends[] = {"vllm", "vllm", "sglang", "dcgm", "dcgm", "dcgm"};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(sim_fleet_endpoint(f, i, &ep), HS_OK);
        assert_string_equal(ep.backend, backends[i]);
        assert_int_equal(ep.kind, i < 3 ? SIM_ENDPOINT_REPLICA : SIM_ENDPOINT_NODE);
        assert_true(hs_has_prefix(ep.base_url, "http://127.0.0.1:"));
        assert_true(ep.port > 0);
        assert_string_equal(ep.metrics_path, "/metrics");
    }
    assert_int_equal(sim_fleet_endpoint(f, 1, &ep), HS_OK);
    assert_string_equal(ep.engine, "llama");
    assert_int_equal(ep.replica, 1);
    assert_int_equal(sim_fleet_endpoint(f, 6, &ep), HS_ENOTFOUND);
    sim_fleet_stop(f);
}

static void fleet_serves_engine_and_dcgm_metrics(void **state)
{
    struct sim_fleet *f = start_fleet();
    struct sim_endpoint rep, sgl, node;
    assert_int_equal(sim_fleet_endpoint(f, 0, &rep), HS_OK);
    assert_int_equal(sim_fleet_endpoint(f, 2, &sgl), HS_OK);
    assert_int_equal(sim_fleet_endpoint(f, 3, &node), HS_OK);
    int status;
    char *body = fetch(rep.base_url, "/metrics", &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "# TYPE vllm:num_requests_running gauge"));
    assert_non_null(strstr(body, "model_name=\"meta-llama/Llama-3.1-8B-Instruct\""));
    hs_free(body);
    body = fetch(sgl.base_url, "/metrics", &status);
    assert_non_null(strstr(body, "# TYPE sglang:token_usage gauge"));
    hs_free(body);
    body = fetch(node.base_url, "/metrics", &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "# TYPE DCGM_FI_DEV_GPU_UTIL gauge"));
    assert_non_null(
        strstr(body, "modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"sim-llama-node-0\""));
    assert_non_null(strstr(body, "DCGM_FI_DEV_GPU_UTIL{gpu=\"1\""));
    assert_null(strstr(body, "DCGM_FI_DEV_GPU_UTIL{gpu=\"2\""));
    hs_free(body);
    body = fetch(rep.base_url, "/v1/models", &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "\"id\":\"meta-llama/Llama-3.1-8B-Instruct\""));
    hs_free(body);
    body = fetch(rep.base_url, "/health", &status);
    assert_int_equal(status, 200);
    hs_free(body);
    sim_fleet_stop(f);
}

static void fleet_inject_takes_a_replica_down_until_cleared(void **state)
{
    struct sim_fleet *f = start_fleet();
    struct sim_endpoint rep, other;
    assert_int_equal(sim_fleet_endpoint(f, 1, &rep), HS_OK);
    assert_int_equal(sim_fleet_endpoint(f, 0, &other), HS_OK);
    struct sim_fault fault = {"replica_down", "llama/1", 0, 0, 0};
    struct hs_err err;
    assert_int_equal(sim_fleet_inject(f, &fault, &err), HS_OK);
    int status = 200;
    char *body = NULL;
    for (int i = 0; i < 100 && status != 0; i++) {
        hs_free(body);
        sleep_ms(20);
        body = fetch(rep.base_url, "/health", &status);
    }
    assert_int_equal(status, 0); /* refused */
    hs_free(fetch(other.base_url, "/health", &status));
    assert_int_equal(status, 200);
    sim_fleet_clear_faults(f, "llama");
    for (int i = 0; i < 100 && status != 200; i++) {
        sleep_ms(20);
        hs_free(fetch(rep.base_url, "/health", &status));
    }
    hs_free(fetch(rep.base_url, "/health", &status));
    assert_int_equal(status, 200);
    sim_fleet_stop(f);
}

static void fleet_inject_refuses_unknown_kinds_and_targets(void **state)
{
    struct sim_fleet *f = start_fleet();
    struct hs_err err;
    struct sim_fault fault = {"meltdown", "llama", 0, 0, 0};
    assert_int_equal(sim_fleet_inject(f, &fault, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "meltdown"));
    fault.kind = "throttle";
    fault.target = "llama/7";
    assert_int_equal(sim_fleet_inject(f, &fault, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "llama/7"));
    fault.target = "qwen/0";
    assert_int_equal(sim_fleet_inject(f, &fault, &err), HS_OK);
    sim_fleet_clear_faults(f, NULL);
    sim_fleet_stop(f);
}

static void fleet_start_refuses_a_config_without_engines(void **state)
{
    struct sim_config c;
    sim_config_defaults(&c);
    struct hs_err err;
    assert_null(sim_fleet_start(&c, &err));
    assert_non_null(strstr(err.msg, "no engines"));
    sim_fleet_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fleet_lists_replicas_then_nodes),
        cmocka_unit_test(fleet_serves_engine_and_dcgm_metrics),
        cmocka_unit_test(fleet_inject_takes_a_replica_down_until_cleared),
        cmocka_unit_test(fleet_inject_refuses_unknown_kinds_and_targets),
        cmocka_unit_test(fleet_start_refuses_a_config_without_engines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
