/*
 * test_mapping.c - the unified mapping on every exposition fixture: each
 * unified series of metrics-mapping.md 2.1 / 2.7 / 2.8 that the source
 * provides is produced, with normalised labels and converted values; older
 * engine names map to the same series and yield to the current ones.
 */
#include "scrape/scrape.h"
#include "scrape/scrape_config.h"

#include "hs_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OUT 4096

/* DCGM_FI_DEV_FB_* of gpu="0" in shared/fixtures/exposition/dcgm.prom, MiB */
#define DCGM_FREE0     6124.0
#define DCGM_USED0     74434.0
#define DCGM_RESERVED0 521.0

/* What one fixture produced. */
struct result {
    struct hs_arena arena;
    struct scrape_detect d;
    size_t n;
    struct {
        const char *name;
        struct hs_labels labels;
        double value;
    } s[MAX_OUT];
};

static struct scrape_mapping *map;

static int setup(void **state)
{
    return scrape_mapping_new(&map, NULL);
}

static int teardown(void **state)
{
    scrape_mapping_free(map);
    return 0;
}

static char *fixture(const char *name)
{
    static char path[4096];
    if (strchr(name, '/'))
        return (char *)name;
    const char *shared = getenv("HS_SHARED_DIR");
    snprintf(path, sizeof(path), "%s/fixtures/exposition/%s", shared ? shared : "../../../shared",
             name);
    return path;
}

/* Two passes like the scrape loop: detection over the families, then every
 * sample through the mapping. */
static void run_text(struct result *r, const char *text, size_t len, const char *model)
{
    struct scrape_parser p;
    struct scrape_entry e;
    struct hs_err err = {0};
    scrape_detect_init(&r->d);
    hs_arena_init(&r->arena, 65536, 0);
    r->n = 0;
    scrape_parser_init(&p, text, len, SCRAPE_FORMAT_TEXT);
    while (scrape_parser_next(&p, &e, &err) == 1)
        if (e.kind == SCRAPE_ENTRY_TYPE)
            assert_int_equal(scrape_detect_add(&r->d, e.name.p, e.name.len, false), HS_OK);
        else if (e.kind == SCRAPE_ENTRY_SAMPLE && e.mtype == SCRAPE_MTYPE_UNKNOWN)
            assert_int_equal(scrape_detect_add(&r->d, e.name.p, e.name.len, true), HS_OK);
    scrape_parser_cleanup(&p);
    scrape_detect_finish(&r->d);

    struct scrape_map_acc acc;
    scrape_mapping_acc_init(&acc, &r->arena);
    scrape_parser_init(&p, text, len, SCRAPE_FORMAT_TEXT);
    int rc;
    while ((rc = scrape_parser_next(&p, &e, &err)) == 1) {
        if (e.kind != SCRAPE_ENTRY_SAMPLE)
            continue;
        struct hs_labels ls = {
            e.nlabels, hs_arena_alloc(&r->arena, (e.nlabels + 1) * sizeof(struct hs_label))};
        for (size_t i = 0; i < e.nlabels; i++) {
            ls.v[i].name = hs_arena_strndup(&r->arena, e.labels[i].name.p, e.labels[i].name.len);
            ls.v[i].value = hs_arena_strndup(&r->arena, e.labels[i].value.p, e.labels[i].value.len);
        }
        hs_labels_sort(&ls);
        struct scrape_unified_sample out[SCRAPE_MAP_MAX_OUT];
        size_t nout;
        assert_int_equal(scrape_mapping_apply(map, &r->d, e.name.p, e.name.len, &ls, e.value, model,
                                              &r->arena, &acc, out, &nout, NULL),
                         HS_OK);
        for (size_t i = 0; i < nout; i++) {
            assert_true(r->n < MAX_OUT);
            assert_true(hs_labels_valid(&out[i].labels));
            assert_true(hs_metric_name_valid(out[i].name, strlen(out[i].name)));
            r->s[r->n].name = out[i].name;
            r->s[r->n].labels = out[i].labels;
            r->s[r->n].value = out[i].value;
            r->n++;
        }
    }
    if (rc != 0)
        fail_msg("parse: %s", err.msg);
    scrape_parser_cleanup(&p);
    struct scrape_unified_sample comb[64];
    size_t ncomb;
    assert_int_equal(scrape_mapping_flush(map, &acc, comb, 64, &ncomb, NULL), HS_OK);
    for (size_t i = 0; i < ncomb; i++) {
        assert_true(r->n < MAX_OUT);
        assert_true(hs_labels_valid(&comb[i].labels));
        r->s[r->n].name = comb[i].name;
        r->s[r->n].labels = comb[i].labels;
        r->s[r->n].value = comb[i].value;
        r->n++;
    }
}

static struct result *run_file(const char *name, const char *model)
{
    struct result *r = calloc(1, sizeof(*r));
    struct hs_err err = {0};
    size_t len;
    char *text = hs_read_file(fixture(name), 0, &len, &err);
    if (text == NULL)
        fail_msg("%s", err.msg);
    run_text(r, text, len, model);
    hs_free(text);
    return r;
}

static void done(struct result *r)
{
    hs_arena_cleanup(&r->arena);
    scrape_detect_cleanup(&r->d);
    free(r);
}

/* First sample named 'name' whose labels include every "k=v" of 'sel'
 * (comma-separated; may be ""); NULL if none. */
static int find(const struct result *r, const char *name, const char *sel)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->s[i].name, name) != 0)
            continue;
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", sel);
        bool ok = true;
        char *save = NULL;
        for (char *kv = strtok_r(buf, ",", &save); kv && ok; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            *eq = '\0';
            const char *v = hs_labels_get(&r->s[i].labels, kv);
            ok = v != NULL && strcmp(v, eq + 1) == 0;
        }
        if (ok)
            return (int)i;
    }
    return -1;
}

static void expect_names(const struct result *r, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (find(r, names[i], "") < 0)
            fail_msg("unified series %s not produced", names[i]);
}

static void check_value(const struct result *r, const char *name, const char *sel, double want)
{
    int i = find(r, name, sel);
    if (i < 0)
        fail_msg("%s{%s} not produced", name, sel);
    if (fabs(r->s[i].value - want) > 1e-9 * fmax(1.0, fabs(want)))
        fail_msg("%s{%s} = %.17g, want %.17g", name, sel, r->s[i].value, want);
}

static void vllm_samples_appear_under_every_unified_name(void **state)
{
    struct result *r = run_file("vllm.prom", NULL);
    static const char *const names[] = {"llm_server_requests_running",
                                        "llm_server_requests_waiting",
                                        "llm_server_kv_cache_usage_ratio",
                                        "llm_server_kv_cache_capacity_tokens",
                                        "llm_server_preemptions_total",
                                        "llm_server_prefix_cache_queries_tokens_total",
                                        "llm_server_prefix_cache_hits_tokens_total",
                                        "llm_server_prompt_tokens_total",
                                        "llm_server_generation_tokens_total",
                                        "llm_server_requests_finished_total",
                                        "llm_server_requests_failed_total",
                                        "llm_server_time_to_first_token_seconds_bucket",
                                        "llm_server_time_per_output_token_seconds_sum",
                                        "llm_server_inter_token_latency_seconds_count",
                                        "llm_server_request_duration_seconds_bucket",
                                        "llm_server_request_queue_time_seconds_sum",
                                        "llm_server_request_prefill_time_seconds_sum",
                                        "llm_server_request_decode_time_seconds_sum",
                                        "llm_server_request_prompt_tokens_bucket",
                                        "llm_server_request_generation_tokens_bucket",
                                        NULL};
    expect_names(r, names);
    const char *m = "model=meta-llama/Llama-3.1-8B-Instruct,backend=vllm,dp_rank=0";
    check_value(r, "llm_server_kv_cache_usage_ratio", m, 0.4219);
    check_value(r, "llm_server_requests_running", m, 24);
    check_value(r, "llm_server_kv_cache_capacity_tokens", "backend=vllm,dp_rank=0", 27865.0 * 16);
    int i = find(r, "llm_server_requests_finished_total", "finish_reason=length");
    assert_true(i >= 0);
    assert_null(hs_labels_get(&r->s[i].labels, "finished_reason"));
    assert_null(hs_labels_get(&r->s[i].labels, "model_name"));
    assert_null(hs_labels_get(&r->s[i].labels, "engine"));
    /* the capacity sample keeps identity labels only */
    i = find(r, "llm_server_kv_cache_capacity_tokens", "");
    assert_null(hs_labels_get(&r->s[i].labels, "cache_dtype"));
    /* the failed series: error finish reasons and HTTP 5xx */
    assert_true(find(r, "llm_server_requests_failed_total", "error_type=http_5xx") >= 0 ||
                find(r, "llm_server_requests_failed_total", "error_type=error") >= 0);
    done(r);
}

static void older_vllm_names_map_to_the_same_unified_series(void **state)
{
    struct result *r = run_file("testdata/vllm-v0.prom", NULL);
    const char *m = "model=mistralai/Mistral-7B-Instruct-v0.2,backend=vllm";
    check_value(r, "llm_server_kv_cache_usage_ratio", m, 0.61);
    check_value(r, "llm_server_prefix_cache_hit_ratio", m, 0.25);
    check_value(r, "llm_server_generation_throughput_tokens_per_second", m, 312.5);
    check_value(r, "llm_server_inter_token_latency_seconds_bucket", "le=0.025", 39000);
    check_value(r, "llm_server_inter_token_latency_seconds_sum", m, 806.42);
    check_value(r, "llm_server_requests_finished_total", "finish_reason=stop", 301);
    done(r);
}

static void a_current_name_wins_over_its_older_spelling(void **state)
{
    const char *text = "# TYPE vllm:num_requests_running gauge\n"
                       "vllm:num_requests_running 1\n"
                       "# TYPE vllm:kv_cache_usage_perc gauge\n"
                       "vllm:kv_cache_usage_perc 0.5\n"
                       "# TYPE vllm:gpu_cache_usage_perc gauge\n"
                       "vllm:gpu_cache_usage_perc 0.5\n";
    struct result *r = calloc(1, sizeof(*r));
    run_text(r, text, strlen(text), NULL);
    size_t count = 0;
    for (size_t i = 0; i < r->n; i++)
        count += strcmp(r->s[i].name, "llm_server_kv_cache_usage_ratio") == 0;
    assert_int_equal(count, 1);
    done(r);
}

static void sglang_current_and_older_releases_are_mapped(void **state)
{
    struct result *r = run_file("sglang-current.prom", NULL);
    static const char *const cur[] = {"llm_server_requests_running",
                                      "llm_server_requests_waiting",
                                      "llm_server_kv_cache_usage_ratio",
                                      "llm_server_kv_cache_capacity_tokens",
                                      "llm_server_prefix_cache_hits_tokens_total",
                                      "llm_server_prefix_cache_hit_ratio",
                                      "llm_server_prompt_tokens_total",
                                      "llm_server_generation_tokens_total",
                                      "llm_server_requests_finished_total",
                                      "llm_server_requests_failed_total",
                                      "llm_server_time_to_first_token_seconds_bucket",
                                      "llm_server_inter_token_latency_seconds_bucket",
                                      "llm_server_request_duration_seconds_sum",
                                      "llm_server_request_queue_time_seconds_count",
                                      "llm_server_generation_throughput_tokens_per_second",
                                      NULL};
    expect_names(r, cur);
    int i = find(r, "llm_server_requests_running", "backend=sglang");
    assert_true(i >= 0);
    assert_non_null(hs_labels_get(&r->s[i].labels, "model"));
    assert_non_null(hs_labels_get(&r->s[i].labels, "tp_rank"));
    assert_true(find(r, "llm_server_requests_failed_total", "error_type=abort") >= 0);
    done(r);
    r = run_file("sglang.prom", NULL);
    static const char *const old[] = {"llm_server_requests_running",
                                      "llm_server_requests_waiting",
                                      "llm_server_kv_cache_usage_ratio",
                                      "llm_server_prefix_cache_hit_ratio",
                                      "llm_server_prompt_tokens_total",
                                      "llm_server_generation_tokens_total",
                                      "llm_server_time_to_first_token_seconds_bucket",
                                      "llm_server_inter_token_latency_seconds_bucket",
                                      "llm_server_request_duration_seconds_sum",
                                      "llm_server_generation_throughput_tokens_per_second",
                                      NULL};
    expect_names(r, old);
    done(r);
}

static void tgi_counters_histogram_sums_and_the_configured_model_are_used(void **state)
{
    struct result *r = run_file("tgi.prom", "bigscience/bloom-560m");
    static const char *const names[] = {"llm_server_requests_running",
                                        "llm_server_requests_waiting",
                                        "llm_server_kv_cache_capacity_tokens",
                                        "llm_server_prompt_tokens_total",
                                        "llm_server_generation_tokens_total",
                                        "llm_server_requests_total",
                                        "llm_server_requests_finished_total",
                                        "llm_server_requests_failed_total",
                                        "llm_server_time_per_output_token_seconds_bucket",
                                        "llm_server_request_duration_seconds_bucket",
                                        "llm_server_request_queue_time_seconds_sum",
                                        "llm_server_request_prompt_tokens_bucket",
                                        "llm_server_request_generation_tokens_count",
                                        NULL};
    expect_names(r, names);
    int i = find(r, "llm_server_time_per_output_token_seconds_sum",
                 "approximation=includes_prefill,backend=tgi,model=bigscience/bloom-560m");
    assert_true(i >= 0);
    i = find(r, "llm_server_requests_failed_total", "backend=tgi");
    assert_non_null(hs_labels_get(&r->s[i].labels, "error_type"));
    assert_null(hs_labels_get(&r->s[i].labels, "err"));
    /* the prompt-token counter is the histogram's _sum */
    int s = find(r, "llm_server_request_prompt_tokens_sum", "");
    i = find(r, "llm_server_prompt_tokens_total", "");
    assert_true(s >= 0 && i >= 0);
    assert_true(r->s[s].value == r->s[i].value);
    done(r);
}

static void llamacpp_samples_without_labels_get_backend_and_model(void **state)
{
    struct result *r = run_file("llamacpp.prom", "qwen2.5-7b");
    static const char *const names[] = {"llm_server_requests_running",
                                        "llm_server_requests_waiting",
                                        "llm_server_kv_cache_capacity_tokens",
                                        "llm_server_prompt_tokens_total",
                                        "llm_server_generation_tokens_total",
                                        "llm_server_generation_throughput_tokens_per_second",
                                        NULL};
    expect_names(r, names);
    int i = find(r, "llm_server_generation_tokens_total", "backend=llamacpp,model=qwen2.5-7b");
    assert_true(i >= 0);
    assert_int_equal(r->s[i].labels.n, 2);
    done(r);
}

static void triton_request_types_select_running_and_waiting(void **state)
{
    struct result *r = run_file("triton.prom", NULL);
    check_value(r, "llm_server_requests_running", "model=tensorrt_llm,backend=triton", 0);
    check_value(r, "llm_server_requests_waiting", "model=tensorrt_llm,version=1", 1);
    int i = find(r, "llm_server_requests_running", "");
    assert_null(hs_labels_get(&r->s[i].labels, "request_type"));
    static const char *const names[] = {"llm_server_requests_finished_total",
                                        "llm_server_requests_failed_total", NULL};
    expect_names(r, names);
    done(r);
}

static void triton_millisecond_histograms_are_converted_to_seconds(void **state)
{
    const char *text =
        "# TYPE nv_inference_request_success counter\n"
        "nv_inference_request_success{model=\"m\",version=\"1\"} 3\n"
        "# TYPE nv_inference_first_response_histogram_ms histogram\n"
        "nv_inference_first_response_histogram_ms_bucket{model=\"m\",version=\"1\",le=\"250\"} 2\n"
        "nv_inference_first_response_histogram_ms_bucket{model=\"m\",version=\"1\",le=\"+Inf\"} 3\n"
        "nv_inference_first_response_histogram_ms_sum{model=\"m\",version=\"1\"} 1500\n"
        "nv_inference_first_response_histogram_ms_count{model=\"m\",version=\"1\"} 3\n";
    struct result *r = calloc(1, sizeof(*r));
    run_text(r, text, strlen(text), NULL);
    check_value(r, "llm_server_time_to_first_token_seconds_bucket", "le=0.25,model=m", 2);
    check_value(r, "llm_server_time_to_first_token_seconds_bucket", "le=+Inf", 3);
    check_value(r, "llm_server_time_to_first_token_seconds_sum", "model=m", 1.5);
    check_value(r, "llm_server_time_to_first_token_seconds_count", "model=m", 3);
    done(r);
}

static void dcgm_values_are_converted_and_gpu_labels_normalised(void **state)
{
    struct result *r = run_file("dcgm.prom", NULL);
    static const char *const names[] = {"hw_gpu_utilization_ratio",
                                        "gpu_memory_copy_utilization_ratio",
                                        "hw_gpu_memory_usage_bytes",
                                        "hw_power_watts",
                                        "hw_energy_joules_total",
                                        "hw_temperature_celsius",
                                        "gpu_sm_clock_hertz",
                                        "gpu_memory_clock_hertz",
                                        "gpu_xid_last_code",
                                        "gpu_graphics_engine_active_ratio",
                                        "gpu_tensor_pipe_active_ratio",
                                        "gpu_dram_active_ratio",
                                        "gpu_pcie_throughput_bytes_per_second",
                                        "gpu_pcie_replay_total",
                                        "gpu_remapped_rows_total",
                                        NULL};
    expect_names(r, names);
    check_value(r, "gpu_sm_clock_hertz", "gpu=0", 1980e6);
    int i = find(r, "gpu_sm_clock_hertz", "gpu=0");
    const struct hs_labels *ls = &r->s[i].labels;
    assert_string_equal(hs_labels_get(ls, "gpu_uuid"), "GPU-7a1c0f52-3d9e-6b4a-8e21-c5f0d4a9b3e7");
    assert_string_equal(hs_labels_get(ls, "gpu_model"), "NVIDIA H100 80GB HBM3");
    assert_string_equal(hs_labels_get(ls, "host"), "gpu-node-07");
    assert_string_equal(hs_labels_get(ls, "pod"), "llama31-8b-vllm-6d5f9c7b8-q2x7k");
    assert_string_equal(hs_labels_get(ls, "backend"), "dcgm");
    assert_null(hs_labels_get(ls, "model"));
    assert_null(hs_labels_get(ls, "modelName"));
    assert_null(hs_labels_get(ls, "pci_bus_id"));
    assert_null(hs_labels_get(ls, "DCGM_FI_DRIVER_VERSION"));
    assert_true(find(r, "hw_gpu_utilization_ratio", "hw_gpu_task=general") >= 0);
    assert_true(find(r, "hw_gpu_utilization_ratio", "hw_gpu_task=decoder") >= 0);
    assert_true(find(r, "hw_temperature_celsius", "sensor=memory") >= 0);
    assert_true(find(r, "gpu_remapped_rows_total", "kind=uncorrectable") >= 0);
    done(r);
}

static void dcgm_units_follow_the_spec(void **state)
{
    const char *text = "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
                       "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"U\"} 87\n"
                       "# TYPE DCGM_FI_DEV_FB_USED gauge\n"
                       "DCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"U\"} 1024\n"
                       "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"
                       "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\",UUID=\"U\"} 5000\n"
                       "# TYPE DCGM_FI_DEV_MEM_CLOCK gauge\n"
                       "DCGM_FI_DEV_MEM_CLOCK{gpu=\"0\",UUID=\"U\"} 9223372036854775794\n";
    struct result *r = calloc(1, sizeof(*r));
    run_text(r, text, strlen(text), NULL);
    check_value(r, "hw_gpu_utilization_ratio", "gpu_uuid=U", 0.87);
    check_value(r, "hw_gpu_memory_usage_bytes", "gpu=0", 1024.0 * 1048576.0);
    check_value(r, "hw_energy_joules_total", "hw_type=gpu", 5.0);
    assert_int_equal(find(r, "gpu_memory_clock_hertz", ""), -1); /* blank sentinel skipped */
    done(r);
}

static void dcgm_memory_limit_is_the_sum_of_free_used_and_reserved(void **state)
{
    struct result *r = run_file("dcgm.prom", NULL);
    check_value(r, "hw_gpu_memory_limit_bytes", "gpu=0,backend=dcgm",
                (DCGM_FREE0 + DCGM_USED0 + DCGM_RESERVED0) * 1048576.0);
    int i = find(r, "hw_gpu_memory_limit_bytes", "gpu=1");
    assert_true(i >= 0);
    assert_non_null(hs_labels_get(&r->s[i].labels, "gpu_uuid"));
    done(r);
}

static void triton_kv_usage_and_capacity_combine_block_metrics(void **state)
{
    const char *text =
        "# TYPE nv_trt_llm_request_metrics gauge\n"
        "nv_trt_llm_request_metrics{model=\"m\",request_type=\"active\",version=\"1\"} 2\n"
        "# TYPE nv_trt_llm_kv_cache_block_metrics gauge\n"
        "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"fraction\",model=\"m\","
        "version=\"1\"} 0.4875\n"
        "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"tokens_per\",model=\"m\","
        "version=\"1\"} 64\n"
        "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"used\",model=\"m\","
        "version=\"1\"} 1560\n"
        "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"max\",model=\"m\","
        "version=\"1\"} 6240\n";
    struct result *r = calloc(1, sizeof(*r));
    run_text(r, text, strlen(text), NULL);
    check_value(r, "llm_server_kv_cache_usage_ratio", "model=m,backend=triton,version=1", 0.25);
    check_value(r, "llm_server_kv_cache_capacity_tokens", "model=m", 6240.0 * 64);
    int i = find(r, "llm_server_kv_cache_usage_ratio", "");
    assert_null(hs_labels_get(&r->s[i].labels, "kv_cache_block_type"));
    done(r);
    /* the fixture: used 1 of max 6239 blocks, although "fraction" says 0.4875 */
    r = run_file("triton.prom", NULL);
    check_value(r, "llm_server_kv_cache_usage_ratio", "model=tensorrt_llm", 1.0 / 6239.0);
    check_value(r, "llm_server_kv_cache_capacity_tokens", "model=tensorrt_llm", 6239.0 * 64);
    done(r);
}

static void flush_reports_a_too_small_output_array(void **state)
{
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct scrape_map_acc acc;
    scrape_mapping_acc_init(&acc, &a);
    struct scrape_unified_sample out[SCRAPE_MAP_MAX_OUT];
    size_t n;
    const char *names[] = {"DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED"};
    char gpu[2][4] = {"0", "1"};
    for (int g = 0; g < 2; g++)
        for (int k = 0; k < 2; k++) {
            struct hs_label l[] = {{"gpu", gpu[g]}};
            struct hs_labels ls = {1, l};
            assert_int_equal(scrape_mapping_apply(map, NULL, names[k], strlen(names[k]), &ls, 10,
                                                  NULL, &a, &acc, out, &n, NULL),
                             HS_OK);
            assert_int_equal(n, k == 1 ? 1 : 0); /* FB_USED is also memory usage */
        }
    struct scrape_unified_sample comb[1];
    assert_int_equal(scrape_mapping_flush(map, &acc, comb, 1, &n, NULL), HS_ETOOBIG);
    assert_int_equal(n, 1);
    assert_true(comb[0].value == 20 * 1048576.0);
    assert_int_equal(acc.n, 0);
    hs_arena_cleanup(&a);
}

static void node_exporter_memory_and_load_are_mapped(void **state)
{
    struct result *r = run_file("node.prom", NULL);
    static const char *const names[] = {"host_memory_total_bytes", "host_load1", NULL};
    expect_names(r, names);
    done(r);
}

static void rules_fire_only_for_detected_backends(void **state)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    scrape_detect_pin(&d, SCRAPE_BACKEND_SGLANG);
    struct hs_labels none = {0, NULL};
    struct hs_arena a;
    hs_arena_init(&a, 1024, 0);
    struct scrape_unified_sample out[SCRAPE_MAP_MAX_OUT];
    size_t n = 9;
    const char *name = "vllm:num_requests_running";
    assert_int_equal(
        scrape_mapping_apply(map, &d, name, strlen(name), &none, 1, NULL, &a, NULL, out, &n, NULL),
        HS_OK);
    assert_int_equal(n, 0);
    name = "http_requests_total";
    struct hs_label l5[] = {{"status", "5xx"}};
    struct hs_labels ls = {1, l5};
    assert_int_equal(
        scrape_mapping_apply(map, &d, name, strlen(name), &ls, 4, NULL, &a, NULL, out, &n, NULL),
        HS_OK);
    assert_int_equal(n, 0);
    /* unknown names cost one lookup and yield nothing */
    name = "python_gc_objects_collected_total";
    assert_int_equal(scrape_mapping_apply(map, NULL, name, strlen(name), &none, 1, NULL, &a, NULL,
                                          out, &n, NULL),
                     HS_OK);
    assert_int_equal(n, 0);
    assert_true(scrape_mapping_size(map) > 80);
    hs_arena_cleanup(&a);
    scrape_detect_cleanup(&d);
}

static void an_exhausted_arena_is_reported(void **state)
{
    struct hs_arena a;
    hs_arena_init(&a, 64, 64);
    struct hs_label l[] = {{"model_name", "m"}};
    struct hs_labels ls = {1, l};
    struct scrape_unified_sample out[SCRAPE_MAP_MAX_OUT];
    size_t n;
    const char *name = "vllm:num_requests_running";
    int rc = HS_OK;
    for (int i = 0; i < 50 && rc == HS_OK; i++)
        rc = scrape_mapping_apply(map, NULL, name, strlen(name), &ls, 1, NULL, &a, NULL, out, &n,
                                  NULL);
    assert_int_equal(rc, HS_ENOMEM);
    hs_arena_cleanup(&a);
}

static void building_the_table_survives_allocation_failures(void **state)
{
    for (long n = 0; n < 100; n++) {
        struct scrape_mapping *m = NULL;
        hs_alloc_fail_after(n);
        int rc = scrape_mapping_new(&m, NULL);
        hs_alloc_fail_after(-1);
        if (rc == HS_OK) {
            assert_int_equal(scrape_mapping_size(m), scrape_mapping_size(map));
            scrape_mapping_free(m);
            return;
        }
        assert_int_equal(rc, HS_ENOMEM);
    }
    fail_msg("never succeeded");
}

static void the_model_follows_the_precedence_of_the_spec(void **state)
{
    struct hs_label l[] = {
        {"gen_ai_request_model", "g"}, {"model", "triton-m"}, {"model_name", "vllm-m"}};
    struct hs_labels ls = {3, l};
    assert_string_equal(scrape_model_of(&ls, "cfg"), "cfg");
    assert_string_equal(scrape_model_of(&ls, ""), "vllm-m");
    ls.n = 2;
    assert_string_equal(scrape_model_of(&ls, NULL), "triton-m");
    ls.n = 1;
    assert_string_equal(scrape_model_of(&ls, NULL), "g");
    ls.n = 0;
    assert_null(scrape_model_of(&ls, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vllm_samples_appear_under_every_unified_name),
        cmocka_unit_test(older_vllm_names_map_to_the_same_unified_series),
        cmocka_unit_test(a_current_name_wins_over_its_older_spelling),
        cmocka_unit_test(sglang_current_and_older_releases_are_mapped),
        cmocka_unit_test(tgi_counters_histogram_sums_and_the_configured_model_are_used),
        cmocka_unit_test(llamacpp_samples_without_labels_get_backend_and_model),
        cmocka_unit_test(triton_request_types_select_running_and_waiting),
        cmocka_unit_test(triton_millisecond_histograms_are_converted_to_seconds),
        cmocka_unit_test(dcgm_values_are_converted_and_gpu_labels_normalised),
        cmocka_unit_test(dcgm_units_follow_the_spec),
        cmocka_unit_test(dcgm_memory_limit_is_the_sum_of_free_used_and_reserved),
        cmocka_unit_test(triton_kv_usage_and_capacity_combine_block_metrics),
        cmocka_unit_test(flush_reports_a_too_small_output_array),
        cmocka_unit_test(node_exporter_memory_and_load_are_mapped),
        cmocka_unit_test(rules_fire_only_for_detected_backends),
        cmocka_unit_test(an_exhausted_arena_is_reported),
        cmocka_unit_test(building_the_table_survives_allocation_failures),
        cmocka_unit_test(the_model_follows_the_precedence_of_the_spec),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
