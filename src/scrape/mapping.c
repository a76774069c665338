/*
 * mapping.c - the unified metric model: each engine's metrics appended
 * again under holoscope's unified names (llm_server_*, hw_gpu_*, hw_*,
 * gpu_*, host_*), 1:1 with unit conversion and label normalisation, as the
 * tables of shared/spec/metrics-mapping.md (sections 2 and 4) define.
 *
 * The table below is data: one row per (backend, source name, selector)
 * transcribed from the spec.  Rows are found through a hash of the source
 * name built once by scrape_mapping_new, so the per-sample cost does not
 * grow with the table.  A sample is looked up twice: by its full name
 * (gauges, counters, the _sum of a histogram used as a counter) and, when
 * its name ends in _bucket/_sum/_count, by its family name (histograms).
 *
 * A few unified series need several samples of one scrape (dcgm-exporter
 * memory limit = FREE + USED + RESERVED; Triton KV usage = used / max and
 * capacity = max x tokens_per): their rows are "parts" of a combination,
 * collected in a per-scrape accumulator and emitted by scrape_mapping_flush.
 * Means over a window from cumulative counters (Triton, llama.cpp), host
 * memory used and CPU utilisation are rates: they belong to recording rules.
 */
#include "scrape/scrape_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum map_kind {
    MK_VALUE = 0, /* gauge or counter: the exact sample name */
    MK_HIST,      /* histogram family: _bucket (le scaled), _sum (scaled), _count */
    MK_SUM,       /* the exact "<histogram>_sum" sample, as a counter */
    MK_LABELPROD, /* value = product of two label values (vLLM cache_config_info) */
    MK_PART,      /* one operand of a combination (see 'combos') */
};

enum combo_op {
    OP_SUM = 0, /* parts 0 and 1 required, 2 optional */
    OP_RATIO,   /* part 0 / part 1 */
    OP_PRODUCT, /* part 0 x part 1 */
};

struct combo {
    int backend;
    const char *dst;
    int op;       /* enum combo_op */
    double scale; /* applied to the result */
};

static const struct combo combos[] = {
    {SCRAPE_BACKEND_DCGM, "hw_gpu_memory_limit_bytes", OP_SUM, 1048576.0},
    {SCRAPE_BACKEND_TRITON, "llm_server_kv_cache_usage_ratio", OP_RATIO, 1.0},
    {SCRAPE_BACKEND_TRITON, "llm_server_kv_cache_capacity_tokens", OP_PRODUCT, 1.0},
};

struct map_rule {
    int backend;
    const char *src;    /* sample name (MK_VALUE, MK_SUM, MK_LABELPROD) or family name */
    int kind;           /* enum map_kind */
    const char *dst;    /* unified name (family name for MK_HIST) */
    double scale;       /* value multiplier; 0 means 1 */
    const char *sel[2]; /* only samples with label sel[0] == sel[1]; the label is dropped */
    const char *add[2]; /* label added to the output */
    const char *newer;  /* older name: skipped when this family is present */
    int combo, part;    /* MK_PART: index into 'combos' and operand number */
};

#define V(b, s, d)                                                                                 \
    {                                                                                              \
        SCRAPE_BACKEND_##b, s, MK_VALUE, d, 0, {0}, {0}, NULL, 0, 0                                \
    }
#define H(b, s, d)                                                                                 \
    {                                                                                              \
        SCRAPE_BACKEND_##b, s, MK_HIST, d, 0, {0}, {0}, NULL, 0, 0                                 \
    }
#define PART(b, s, selname, selval, c, p)                                                          \
    {                                                                                              \
        SCRAPE_BACKEND_##b, s, MK_PART, NULL, 0, {selname, selval}, {0}, NULL, c, p                \
    }

static const struct map_rule table[] = {
    /* ---- vLLM (2.1, 2.2) ---- */
    V(VLLM, "vllm:num_requests_running", "llm_server_requests_running"),
    V(VLLM, "vllm:num_requests_waiting", "llm_server_requests_waiting"),
    V(VLLM, "vllm:kv_cache_usage_perc", "llm_server_kv_cache_usage_ratio"),
    {SCRAPE_BACKEND_VLLM,
     "vllm:cache_config_info",
     MK_LABELPROD,
     "llm_server_kv_cache_capacity_tokens",
     0,
     {"num_gpu_blocks", "block_size"},
     {0},
     NULL,
     0,
     0},
    V(VLLM, "vllm:num_preemptions_total", "llm_server_preemptions_total"),
    V(VLLM, "vllm:prefix_cache_queries_total", "llm_server_prefix_cache_queries_tokens_total"),
    V(VLLM, "vllm:prefix_cache_hits_total", "llm_server_prefix_cache_hits_tokens_total"),
    V(VLLM, "vllm:prompt_tokens_total", "llm_server_prompt_tokens_total"),
    V(VLLM, "vllm:generation_tokens_total", "llm_server_generation_tokens_total"),
    V(VLLM, "vllm:request_success_total", "llm_server_requests_finished_total"),
    {SCRAPE_BACKEND_VLLM,
     "vllm:request_success_total",
     MK_VALUE,
     "llm_server_requests_failed_total",
     0,
     {"finished_reason", "error"},
     {"error_type", "error"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_VLLM,
     "http_requests_total",
     MK_VALUE,
     "llm_server_requests_failed_total",
     0,
     {"status", "5xx"},
     {"error_type", "http_5xx"},
     NULL,
     0,
     0},
    H(VLLM, "vllm:time_to_first_token_seconds", "llm_server_time_to_first_token_seconds"),
    H(VLLM, "vllm:request_time_per_output_token_seconds",
      "llm_server_time_per_output_token_seconds"),
    H(VLLM, "vllm:inter_token_latency_seconds", "llm_server_inter_token_latency_seconds"),
    H(VLLM, "vllm:e2e_request_latency_seconds", "llm_server_request_duration_seconds"),
    H(VLLM, "vllm:request_queue_time_seconds", "llm_server_request_queue_time_seconds"),
    H(VLLM, "vllm:request_prefill_time_seconds", "llm_server_request_prefill_time_seconds"),
    H(VLLM, "vllm:request_decode_time_seconds", "llm_server_request_decode_time_seconds"),
    H(VLLM, "vllm:request_prompt_tokens", "llm_server_request_prompt_tokens"),
    H(VLLM, "vllm:request_generation_tokens", "llm_server_request_generation_tokens"),
    /* older vLLM names (2.2, "Older names"); the current name wins when both appear.
     * gpu_prefix_cache_* count blocks, not tokens, and are not mapped. */
    {SCRAPE_BACKEND_VLLM,
     "vllm:gpu_cache_usage_perc",
     MK_VALUE,
     "llm_server_kv_cache_usage_ratio",
     0,
     {0},
     {0},
     "vllm:kv_cache_usage_perc",
     0,
     0},
    {SCRAPE_BACKEND_VLLM,
     "vllm:gpu_prefix_cache_hit_rate",
     MK_VALUE,
     "llm_server_prefix_cache_hit_ratio",
     0,
     {0},
     {0},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_VLLM,
     "vllm:time_per_output_token_seconds",
     MK_HIST,
     "llm_server_inter_token_latency_seconds",
     0,
     {0},
     {0},
     "vllm:inter_token_latency_seconds",
     0,
     0},
    V(VLLM, "vllm:avg_generation_throughput_toks_per_s",
      "llm_server_generation_throughput_tokens_per_second"),

    /* ---- SGLang (2.1, 2.3) ---- */
    V(SGLANG, "sglang:num_running_reqs", "llm_server_requests_running"),
    V(SGLANG, "sglang:num_queue_reqs", "llm_server_requests_waiting"),
    V(SGLANG, "sglang:token_usage", "llm_server_kv_cache_usage_ratio"),
    V(SGLANG, "sglang:max_total_num_tokens", "llm_server_kv_cache_capacity_tokens"),
    V(SGLANG, "sglang:num_retracted_requests_total", "llm_server_preemptions_total"),
    V(SGLANG, "sglang:cached_tokens_total", "llm_server_prefix_cache_hits_tokens_total"),
    V(SGLANG, "sglang:cache_hit_rate", "llm_server_prefix_cache_hit_ratio"),
    V(SGLANG, "sglang:prompt_tokens_total", "llm_server_prompt_tokens_total"),
    V(SGLANG, "sglang:generation_tokens_total", "llm_server_generation_tokens_total"),
    V(SGLANG, "sglang:num_requests_total", "llm_server_requests_finished_total"),
    {SCRAPE_BACKEND_SGLANG,
     "sglang:num_aborted_requests_total",
     MK_VALUE,
     "llm_server_requests_failed_total",
     0,
     {0},
     {"error_type", "abort"},
     NULL,
     0,
     0},
    H(SGLANG, "sglang:time_to_first_token_seconds", "llm_server_time_to_first_token_seconds"),
    H(SGLANG, "sglang:inter_token_latency_seconds", "llm_server_inter_token_latency_seconds"),
    {SCRAPE_BACKEND_SGLANG,
     "sglang:time_per_output_token_seconds",
     MK_HIST,
     "llm_server_inter_token_latency_seconds",
     0,
     {0},
     {0},
     "sglang:inter_token_latency_seconds",
     0,
     0},
    H(SGLANG, "sglang:e2e_request_latency_seconds", "llm_server_request_duration_seconds"),
    H(SGLANG, "sglang:queue_time_seconds", "llm_server_request_queue_time_seconds"),
    H(SGLANG, "sglang:prompt_tokens_histogram", "llm_server_request_prompt_tokens"),
    H(SGLANG, "sglang:generation_tokens_histogram", "llm_server_request_generation_tokens"),
    V(SGLANG, "sglang:gen_throughput", "llm_server_generation_throughput_tokens_per_second"),

    /* ---- TGI (2.1, 2.4): counters carry no _total ---- */
    V(TGI, "tgi_batch_current_size", "llm_server_requests_running"),
    V(TGI, "tgi_queue_size", "llm_server_requests_waiting"),
    V(TGI, "tgi_batch_max_total_tokens", "llm_server_kv_cache_capacity_tokens"),
    {SCRAPE_BACKEND_TGI,
     "tgi_request_input_length_sum",
     MK_SUM,
     "llm_server_prompt_tokens_total",
     0,
     {0},
     {0},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_TGI,
     "tgi_request_generated_tokens_sum",
     MK_SUM,
     "llm_server_generation_tokens_total",
     0,
     {0},
     {0},
     NULL,
     0,
     0},
    V(TGI, "tgi_request_count", "llm_server_requests_total"),
    V(TGI, "tgi_request_success", "llm_server_requests_finished_total"),
    V(TGI, "tgi_request_failure", "llm_server_requests_failed_total"),
    {SCRAPE_BACKEND_TGI,
     "tgi_request_mean_time_per_token_duration",
     MK_HIST,
     "llm_server_time_per_output_token_seconds",
     0,
     {0},
     {"approximation", "includes_prefill"},
     NULL,
     0,
     0},
    H(TGI, "tgi_request_duration", "llm_server_request_duration_seconds"),
    H(TGI, "tgi_request_queue_duration", "llm_server_request_queue_time_seconds"),
    H(TGI, "tgi_request_input_length", "llm_server_request_prompt_tokens"),
    H(TGI, "tgi_request_generated_tokens", "llm_server_request_generation_tokens"),

    /* ---- llama.cpp (2.1, 2.5) ---- */
    V(LLAMACPP, "llamacpp:requests_processing", "llm_server_requests_running"),
    V(LLAMACPP, "llamacpp:requests_deferred", "llm_server_requests_waiting"),
    V(LLAMACPP, "llamacpp:kv_cache_usage_ratio", "llm_server_kv_cache_usage_ratio"),
    V(LLAMACPP, "llamacpp:n_tokens_max", "llm_server_kv_cache_capacity_tokens"),
    V(LLAMACPP, "llamacpp:prompt_tokens_cached_total", "llm_server_prefix_cache_hits_tokens_total"),
    V(LLAMACPP, "llamacpp:prompt_tokens_total", "llm_server_prompt_tokens_total"),
    V(LLAMACPP, "llamacpp:tokens_predicted_total", "llm_server_generation_tokens_total"),
    V(LLAMACPP, "llamacpp:predicted_tokens_seconds",
      "llm_server_generation_throughput_tokens_per_second"),

    /* ---- Triton and its TensorRT-LLM backend (2.1, 2.6, 2.7) ---- */
    {SCRAPE_BACKEND_TRITON,
     "nv_trt_llm_request_metrics",
     MK_VALUE,
     "llm_server_requests_running",
     0,
     {"request_type", "active"},
     {0},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_TRITON,
     "nv_trt_llm_request_metrics",
     MK_VALUE,
     "llm_server_requests_waiting",
     0,
     {"request_type", "waiting"},
     {0},
     NULL,
     0,
     0},
    V(TRITON, "nv_inference_pending_request_count", "llm_server_requests_waiting"),
    /* KV usage = used / max; do not use "fraction" (2.6) */
    PART(TRITON, "nv_trt_llm_kv_cache_block_metrics", "kv_cache_block_type", "used", 1, 0),
    PART(TRITON, "nv_trt_llm_kv_cache_block_metrics", "kv_cache_block_type", "max", 1, 1),
    PART(TRITON, "nv_trt_llm_kv_cache_block_metrics", "kv_cache_block_type", "max", 2, 0),
    PART(TRITON, "nv_trt_llm_kv_cache_block_metrics", "kv_cache_block_type", "tokens_per", 2, 1),
    V(TRITON, "nv_inference_request_success", "llm_server_requests_finished_total"),
    V(TRITON, "nv_inference_request_failure", "llm_server_requests_failed_total"),
    {SCRAPE_BACKEND_TRITON,
     "nv_inference_first_response_histogram_ms",
     MK_HIST,
     "llm_server_time_to_first_token_seconds",
     0.001,
     {0},
     {0},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_TRITON,
     "nv_gpu_utilization",
     MK_VALUE,
     "hw_gpu_utilization_ratio",
     0,
     {0},
     {"hw_gpu_task", "general"},
     NULL,
     0,
     0},
    V(TRITON, "nv_gpu_memory_used_bytes", "hw_gpu_memory_usage_bytes"),
    V(TRITON, "nv_gpu_memory_total_bytes", "hw_gpu_memory_limit_bytes"),
    {SCRAPE_BACKEND_TRITON,
     "nv_gpu_power_usage",
     MK_VALUE,
     "hw_power_watts",
     0,
     {0},
     {"hw_type", "gpu"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_TRITON,
     "nv_energy_consumption",
     MK_VALUE,
     "hw_energy_joules_total",
     0,
     {0},
     {"hw_type", "gpu"},
     NULL,
     0,
     0},

    /* ---- TensorRT-LLM serve / Dynamo (2.6, unverified names) ---- */
    H(TRTLLM, "trtllm_time_to_first_token_seconds", "llm_server_time_to_first_token_seconds"),
    H(TRTLLM, "trtllm_time_per_output_token_seconds", "llm_server_time_per_output_token_seconds"),
    V(TRTLLM, "trtllm_request_success_total", "llm_server_requests_finished_total"),
    V(TRTLLM, "trtllm_kv_cache_utilization", "llm_server_kv_cache_usage_ratio"),

    /* ---- dcgm-exporter (2.7) ---- */
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_GPU_UTIL",
     MK_VALUE,
     "hw_gpu_utilization_ratio",
     0.01,
     {0},
     {"hw_gpu_task", "general"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_ENC_UTIL",
     MK_VALUE,
     "hw_gpu_utilization_ratio",
     0.01,
     {0},
     {"hw_gpu_task", "encoder"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_DEC_UTIL",
     MK_VALUE,
     "hw_gpu_utilization_ratio",
     0.01,
     {0},
     {"hw_gpu_task", "decoder"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_MEM_COPY_UTIL",
     MK_VALUE,
     "gpu_memory_copy_utilization_ratio",
     0.01,
     {0},
     {0},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_FB_USED",
     MK_VALUE,
     "hw_gpu_memory_usage_bytes",
     1048576.0,
     {0},
     {0},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_POWER_USAGE",
     MK_VALUE,
     "hw_power_watts",
     0,
     {0},
     {"hw_type", "gpu"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
     MK_VALUE,
     "hw_energy_joules_total",
     0.001,
     {0},
     {"hw_type", "gpu"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_GPU_TEMP",
     MK_VALUE,
     "hw_temperature_celsius",
     0,
     {0},
     {"hw_type", "gpu"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_MEMORY_TEMP",
     MK_VALUE,
     "hw_temperature_celsius",
     0,
     {0},
     {"sensor", "memory"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_SM_CLOCK",
     MK_VALUE,
     "gpu_sm_clock_hertz",
     1e6,
     {0},
     {0},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_MEM_CLOCK",
     MK_VALUE,
     "gpu_memory_clock_hertz",
     1e6,
     {0},
     {0},
     NULL,
     0,
     0},
    /* no total field in the default counters: FREE + USED + RESERVED, MiB */
    PART(DCGM, "DCGM_FI_DEV_FB_FREE", NULL, NULL, 0, 0),
    PART(DCGM, "DCGM_FI_DEV_FB_USED", NULL, NULL, 0, 1),
    PART(DCGM, "DCGM_FI_DEV_FB_RESERVED", NULL, NULL, 0, 2),
    V(DCGM, "DCGM_FI_DEV_XID_ERRORS", "gpu_xid_last_code"),
    V(DCGM, "DCGM_EXP_XID_ERRORS_COUNT", "gpu_xid_errors_total"),
    V(DCGM, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gpu_graphics_engine_active_ratio"),
    V(DCGM, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gpu_tensor_pipe_active_ratio"),
    V(DCGM, "DCGM_FI_PROF_DRAM_ACTIVE", "gpu_dram_active_ratio"),
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_PROF_PCIE_TX_BYTES",
     MK_VALUE,
     "gpu_pcie_throughput_bytes_per_second",
     0,
     {0},
     {"direction", "transmit"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_PROF_PCIE_RX_BYTES",
     MK_VALUE,
     "gpu_pcie_throughput_bytes_per_second",
     0,
     {0},
     {"direction", "receive"},
     NULL,
     0,
     0},
    V(DCGM, "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "gpu_pcie_replay_total"),
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
     MK_VALUE,
     "gpu_remapped_rows_total",
     0,
     {0},
     {"kind", "correctable"},
     NULL,
     0,
     0},
    {SCRAPE_BACKEND_DCGM,
     "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
     MK_VALUE,
     "gpu_remapped_rows_total",
     0,
     {0},
     {"kind", "uncorrectable"},
     NULL,
     0,
     0},

    /* ---- node_exporter (2.8): the 1:1 part ---- */
    V(NODE, "node_memory_MemTotal_bytes", "host_memory_total_bytes"),
    V(NODE, "node_load1", "host_load1"),
};

#undef V
#undef H
#undef PART

/* ---- label normalisation per backend (4.1, 4.2) ------------------------------------ */

struct rename {
    const char *from, *to;
};

struct backend_labels {
    const struct rename *renames; /* NULL-terminated */
    bool is_only_renamed;         /* drop every label not in 'renames' */
};

static const struct rename vllm_renames[] = {{"model_name", "model"},
                                             {"engine", "dp_rank"},
                                             {"finished_reason", "finish_reason"},
                                             {NULL, NULL}};
static const struct rename sglang_renames[] = {{"model_name", "model"}, {NULL, NULL}};
static const struct rename tgi_renames[] = {{"err", "error_type"}, {NULL, NULL}};
static const struct rename trtllm_renames[] = {
    {"model_name", "model"}, {"finished_reason", "finish_reason"}, {NULL, NULL}};
static const struct rename dcgm_renames[] = {{"gpu", "gpu"},
                                             {"UUID", "gpu_uuid"},
                                             {"modelName", "gpu_model"},
                                             {"GPU_I_PROFILE", "mig_profile"},
                                             {"GPU_I_ID", "mig_instance"},
                                             {"Hostname", "host"},
                                             {"hostname", "host"},
                                             {"pod", "pod"},
                                             {"namespace", "namespace"},
                                             {"container", "container"},
                                             {"xid", "xid"},
                                             {NULL, NULL}};
static const struct rename no_renames[] = {{NULL, NULL}};

static const struct backend_labels backend_labels[SCRAPE_BACKEND_COUNT] = {
    [SCRAPE_BACKEND_NONE] = {no_renames, false},
    [SCRAPE_BACKEND_VLLM] = {vllm_renames, false},
    [SCRAPE_BACKEND_SGLANG] = {sglang_renames, false},
    [SCRAPE_BACKEND_TGI] = {tgi_renames, false},
    [SCRAPE_BACKEND_LLAMACPP] = {no_renames, false},
    [SCRAPE_BACKEND_TRITON] = {no_renames, false},
    [SCRAPE_BACKEND_TRTLLM] = {trtllm_renames, false},
    [SCRAPE_BACKEND_DCGM] = {dcgm_renames, true},
    [SCRAPE_BACKEND_NODE] = {no_renames, false},
    [SCRAPE_BACKEND_NVML] = {no_renames, false},
    [SCRAPE_BACKEND_LITELLM] = {no_renames, false},
};

/* ---- the lookup ---------------------------------------------------------------------- */

struct scrape_mapping {
    uint32_t *slots;        /* index + 1 of the first rule of a name; 0 = empty */
    uint64_t *hashes;       /* hash of each slot's name */
    size_t nslots;          /* power of two */
    int32_t *next;          /* per rule: next rule with the same source name, or -1 */
    const char *(*hist)[3]; /* per MK_HIST rule: dst + _bucket, _sum, _count */
    struct hs_arena arena;  /* the strings of 'hist' */
};

static const char *const hist_sufs[3] = {"_bucket", "_sum", "_count"};

static uint64_t name_hash(const char *s, size_t n)
{
    return hs_hash64(s, n, 0x243f6a8885a308d3ull);
}

int scrape_mapping_new(struct scrape_mapping **out, struct hs_err *err)
{
    size_t n = HS_ARRAY_LEN(table);
    struct scrape_mapping *m = hs_calloc(1, sizeof(*m));
    if (m == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    m->nslots = 64;
    while (m->nslots < 2 * n)
        m->nslots *= 2;
    m->slots = hs_calloc(m->nslots, sizeof(m->slots[0]));
    m->hashes = hs_calloc(m->nslots, sizeof(m->hashes[0]));
    m->next = hs_calloc(n, sizeof(m->next[0]));
    m->hist = hs_calloc(n, sizeof(m->hist[0]));
    hs_arena_init(&m->arena, 4096, 0);
    bool ok = m->slots && m->hashes && m->next && m->hist;
    for (size_t r = 0; ok && r < n; r++)
        for (int k = 0; ok && k < 3 && table[r].kind == MK_HIST; k++)
            ok = (m->hist[r][k] = hs_arena_printf(&m->arena, "%s%s", table[r].dst, hist_sufs[k])) !=
                 NULL;
    if (!ok) {
        scrape_mapping_free(m);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    size_t mask = m->nslots - 1;
    /* Insert in reverse so that each chain lists rules in table order. */
    for (size_t r = n; r-- > 0;) {
        uint64_t h = name_hash(table[r].src, strlen(table[r].src));
        size_t i = (size_t)h & mask;
        while (m->slots[i] != 0 && strcmp(table[m->slots[i] - 1].src, table[r].src) != 0)
            i = (i + 1) & mask;
        m->next[r] = m->slots[i] ? (int32_t)(m->slots[i] - 1) : -1;
        m->slots[i] = (uint32_t)r + 1;
        m->hashes[i] = h;
    }
    *out = m;
    return HS_OK;
}

void scrape_mapping_free(struct scrape_mapping *m)
{
    if (m == NULL)
        return;
    hs_free(m->slots);
    hs_free(m->hashes);
    hs_free(m->next);
    hs_free(m->hist);
    hs_arena_cleanup(&m->arena);
    hs_free(m);
}

size_t scrape_mapping_size(const struct scrape_mapping *m)
{
    (void)m;
    return HS_ARRAY_LEN(table);
}

static long find(const struct scrape_mapping *m, const char *s, size_t n)
{
    uint64_t h = name_hash(s, n);
    size_t mask = m->nslots - 1;
    for (size_t i = (size_t)h & mask; m->slots[i] != 0; i = (i + 1) & mask) {
        const char *src = table[m->slots[i] - 1].src;
        if (m->hashes[i] == h && strlen(src) == n && memcmp(src, s, n) == 0)
            return (long)m->slots[i] - 1;
    }
    return -1;
}

/* ---- producing samples ------------------------------------------------------------------ */

struct job {
    const struct scrape_detect *d;
    const struct hs_labels *in;
    double value;
    const char *model;
    struct hs_arena *a;
    struct scrape_unified_sample *out;
    size_t *nout;
    struct scrape_map_acc *acc;
};

static const char *rename_of(const struct backend_labels *bl, const char *name)
{
    for (const struct rename *r = bl->renames; r->from; r++)
        if (strcmp(r->from, name) == 0)
            return r->to;
    return bl->is_only_renamed ? NULL : name;
}

static bool fires(const struct job *j, const struct map_rule *r)
{
    if (j->d != NULL && !(j->d->detected & (1u << r->backend)))
        return false;
    if (r->newer != NULL && j->d != NULL && scrape_detect_has_family(j->d, r->newer))
        return false;
    if (r->sel[0] != NULL && r->kind != MK_LABELPROD) {
        const char *v = hs_labels_get(j->in, r->sel[0]);
        if (v == NULL || strcmp(v, r->sel[1]) != 0)
            return false;
    }
    return true;
}

/* Scales the le label text; "+Inf" stays. */
static const char *scale_le(struct hs_arena *a, const char *le, double scale)
{
    double v;
    if (scale == 0 || scale == 1 || hs_parse_double(le, &v) != HS_OK || isinf(v))
        return le;
    char buf[32];
    hs_format_double(v * scale, buf, sizeof(buf));
    return hs_arena_strndup(a, buf, strlen(buf));
}

static int put_label(struct hs_labels *ls, const char *name, const char *value)
{
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->v[i].name, name) == 0) {
            ls->v[i].value = value;
            return HS_OK;
        }
    ls->v[ls->n].name = name;
    ls->v[ls->n].value = value;
    ls->n++;
    return HS_OK;
}

static int build_labels(struct job *j, const struct map_rule *r, double scale, bool is_bucket,
                        struct hs_labels *ls)
{
    const struct backend_labels *bl = &backend_labels[r->backend];
    ls->n = 0;
    ls->v = hs_arena_alloc(j->a, (j->in->n + 4) * sizeof(ls->v[0]));
    if (ls->v == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < j->in->n; i++) {
        const struct hs_label *l = &j->in->v[i];
        if (r->sel[0] != NULL && strcmp(l->name, r->sel[0]) == 0)
            continue;
        if (r->kind == MK_LABELPROD && strcmp(l->name, "engine") != 0 &&
            strcmp(l->name, "model_name") != 0)
            continue; /* cache_config_info: the configuration labels are not identity */
        const char *name = strcmp(l->name, "le") == 0 && is_bucket ? "le" : rename_of(bl, l->name);
        if (name == NULL || l->value[0] == '\0')
            continue;
        const char *value = l->value;
        if (is_bucket && strcmp(l->name, "le") == 0) {
            if ((value = scale_le(j->a, value, scale)) == NULL)
                return HS_ENOMEM;
        }
        put_label(ls, name, value);
    }
    if (r->add[0] != NULL)
        put_label(ls, r->add[0], r->add[1]);
    put_label(ls, "backend", scrape_backend_name(r->backend));
    if (j->model != NULL && j->model[0] != '\0')
        put_label(ls, "model", j->model);
    hs_labels_sort(ls);
    return HS_OK;
}

static int emit(struct job *j, const struct map_rule *r, const char *name, double value,
                double scale, bool is_bucket)
{
    if (*j->nout >= SCRAPE_MAP_MAX_OUT)
        return HS_OK;
    struct scrape_unified_sample *s = &j->out[*j->nout];
    s->name = name;
    int rc = build_labels(j, r, scale, is_bucket, &s->labels);
    if (rc != HS_OK)
        return rc;
    s->value = value;
    (*j->nout)++;
    return HS_OK;
}

/* ---- combinations ------------------------------------------------------------------ */

struct scrape_map_pending {
    int combo;
    uint64_t key;            /* hash of 'labels' */
    struct hs_labels labels; /* normalised output labels, arena memory */
    double v[3];
    unsigned have; /* bit per part seen */
};

void scrape_mapping_acc_init(struct scrape_map_acc *acc, struct hs_arena *arena)
{
    acc->v = NULL;
    acc->n = acc->cap = 0;
    acc->arena = arena;
}

static int record_part(struct job *j, const struct map_rule *r)
{
    struct scrape_map_acc *acc = j->acc;
    struct hs_labels ls;
    int rc = build_labels(j, r, 1.0, false, &ls);
    if (rc != HS_OK)
        return rc;
    uint64_t key = hs_labels_hash(&ls) ^ (uint64_t)r->combo;
    for (size_t i = 0; i < acc->n; i++) {
        struct scrape_map_pending *p = &acc->v[i];
        if (p->combo == r->combo && p->key == key && hs_labels_cmp(&p->labels, &ls) == 0) {
            p->v[r->part] = j->value;
            p->have |= 1u << r->part;
            return HS_OK;
        }
    }
    if (acc->n == acc->cap) {
        if (acc->cap >= SCRAPE_MAP_MAX_PENDING)
            return HS_ETOOBIG;
        size_t cap = acc->cap ? acc->cap * 2 : 16;
        struct scrape_map_pending *v = hs_arena_alloc(acc->arena, cap * sizeof(v[0]));
        if (v == NULL)
            return HS_ENOMEM;
        if (acc->n)
            memcpy(v, acc->v, acc->n * sizeof(v[0]));
        acc->v = v;
        acc->cap = cap;
    }
    struct scrape_map_pending *p = &acc->v[acc->n++];
    memset(p, 0, sizeof(*p));
    p->combo = r->combo;
    p->key = key;
    p->labels = ls;
    p->v[r->part] = j->value;
    p->have = 1u << r->part;
    return HS_OK;
}

/* The value of a complete combination, or NaN. */
static double combine(const struct scrape_map_pending *p)
{
    const struct combo *c = &combos[p->combo];
    if ((p->have & 3u) != 3u)
        return NAN;
    switch (c->op) {
    case OP_SUM:
        return (p->v[0] + p->v[1] + ((p->have & 4u) ? p->v[2] : 0)) * c->scale;
    case OP_RATIO:
        return p->v[1] > 0 ? p->v[0] / p->v[1] * c->scale : NAN;
    case OP_PRODUCT:
        return p->v[0] * p->v[1] * c->scale;
    default:
        return NAN;
    }
}

int scrape_mapping_flush(const struct scrape_mapping *m, struct scrape_map_acc *acc,
                         struct scrape_unified_sample *out, size_t max_out, size_t *nout,
                         struct hs_err *err)
{
    (void)m;
    *nout = 0;
    int rc = HS_OK;
    for (size_t i = 0; i < acc->n; i++) {
        double v = combine(&acc->v[i]);
        if (!isfinite(v))
            continue;
        if (*nout == max_out) {
            rc = hs_err_set(err, HS_ETOOBIG, "mapping: more than %zu combined series", max_out);
            break;
        }
        out[*nout].name = combos[acc->v[i].combo].dst;
        out[*nout].labels = acc->v[i].labels;
        out[*nout].value = v;
        (*nout)++;
    }
    acc->v = NULL;
    acc->n = acc->cap = 0;
    return rc;
}

static double label_num(const struct hs_labels *ls, const char *name)
{
    const char *v = hs_labels_get(ls, name);
    double d;
    if (v == NULL || hs_parse_double(v, &d) != HS_OK)
        return NAN;
    return d;
}

static int fire_exact(struct job *j, const struct map_rule *r)
{
    double scale = r->scale != 0 ? r->scale : 1.0;
    switch (r->kind) {
    case MK_VALUE:
    case MK_SUM:
        return emit(j, r, r->dst, j->value * scale, scale, false);
    case MK_PART:
        return j->acc != NULL ? record_part(j, r) : HS_OK;
    case MK_LABELPROD: {
        struct map_rule plain = *r;
        double v = label_num(j->in, r->sel[0]) * label_num(j->in, r->sel[1]);
        if (!isfinite(v))
            return HS_OK;
        plain.sel[0] = plain.sel[1] = NULL;
        return emit(j, &plain, r->dst, v, 1.0, false);
    }
    default:
        return HS_OK;
    }
}

/* 'which': 0 bucket, 1 sum, 2 count. */
static int fire_hist(struct job *j, const struct scrape_mapping *m, long r, int which)
{
    const struct map_rule *ru = &table[r];
    double scale = ru->scale != 0 ? ru->scale : 1.0;
    return emit(j, ru, m->hist[r][which], which == 1 ? j->value * scale : j->value, scale,
                which == 0);
}

/* Which histogram suffix 'name' has (0 bucket, 1 sum, 2 count), or -1. */
static int hist_suffix(const char *name, size_t n, size_t *base)
{
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(hist_sufs[i]);
        if (n > k && memcmp(name + n - k, hist_sufs[i], k) == 0) {
            *base = n - k;
            return i;
        }
    }
    return -1;
}

int scrape_mapping_apply(const struct scrape_mapping *m, const struct scrape_detect *d,
                         const char *name, size_t name_len, const struct hs_labels *labels,
                         double value, const char *model, struct hs_arena *arena,
                         struct scrape_map_acc *acc, struct scrape_unified_sample *out,
                         size_t *nout, struct hs_err *err)
{
    *nout = 0;
    struct job j = {d, labels, value, model, arena, out, nout, acc};
    int rc = HS_OK;
    long r = find(m, name, name_len);
    for (; rc == HS_OK && r >= 0; r = m->next[r]) {
        const struct map_rule *ru = &table[r];
        if (ru->kind != MK_HIST && fires(&j, ru)) {
            /* dcgm-exporter's blank sentinels (>= 9.2e18) mean "no value" */
            if (ru->backend == SCRAPE_BACKEND_DCGM && value >= 9.2e18)
                continue;
            rc = fire_exact(&j, ru);
        }
    }
    size_t base;
    int which = hist_suffix(name, name_len, &base);
    if (which >= 0) {
        for (r = find(m, name, base); rc == HS_OK && r >= 0; r = m->next[r])
            if (table[r].kind == MK_HIST && fires(&j, &table[r]))
                rc = fire_hist(&j, m, r, which);
    }
    if (rc != HS_OK)
        return hs_err_set(err, rc, "mapping: %s",
                          rc == HS_ETOOBIG ? "too many combined series" : "out of memory");
    return HS_OK;
}

const char *scrape_model_of(const struct hs_labels *labels, const char *configured)
{
    static const char *const names[] = {"model_name", "model", "gen_ai_request_model"};
    if (configured != NULL && configured[0] != '\0')
        return configured;
    for (size_t i = 0; i < HS_ARRAY_LEN(names); i++) {
        const char *v = hs_labels_get(labels, names[i]);
        if (v != NULL && v[0] != '\0')
            return v;
    }
    return NULL;
}
