/*
 * metrics.c - an engine's /metrics exposition in the real servers' formats:
 * vLLM V1 (vllm/v1/metrics/loggers.py: vllm:* families, labels engine and
 * model_name, prometheus_client number spelling "24.0") and SGLang
 * (metrics_collector.py: sglang:* families, scheduler families with
 * model_name, engine_type, tp_rank, pp_rank, tokenizer families with
 * model_name, engine_type; multiprocess order _sum, buckets, _count).
 * Family names, HELP texts, types and bucket bounds follow
 * shared/fixtures/exposition/{vllm,sglang-current}.prom.
 */
#include "sim/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const double vllm_ttft[] = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                   0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                   20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
static const double vllm_itl[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                  0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
static const double vllm_req[] = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                  5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                  60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
static const double vllm_iter[] = {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
static const double vllm_125[] = {1,     2,      5,      10,     20,      50,      100,
                                  200,   500,    1000,   2000,   5000,    10000,   20000,
                                  50000, 100000, 200000, 500000, 1000000, 2000000, 5000000};
static const double sgl_ttft[] = {0.1, 0.2, 0.4, 0.6, 0.8, 1,  2,   4,   6,
                                  8,   10,  20,  40,  60,  80, 100, 200, 400};
static const double sgl_itl[] = {0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025,
                                 0.030, 0.035, 0.040, 0.060, 0.080, 0.100, 0.200, 0.400,
                                 0.600, 0.800, 1.0,   2.0,   4.0,   6.0,   8.0};
static const double sgl_e2e[] = {0.1, 0.2, 0.4, 0.6, 0.8, 1,   2,   4,   6,    8,    10,
                                 20,  40,  60,  80,  100, 200, 400, 600, 1200, 1800, 2400};
static const double sgl_queue[] = {
    0.0,   0.1,   0.2,   0.5,   1.0,    2.0,    3.0,    4.0,    5.0,    10.0,   15.0,   20.0,
    30.0,  40.0,  50.0,  60.0,  70.0,   80.0,   90.0,   100.0,  200.0,  300.0,  400.0,  500.0,
    600.0, 700.0, 800.0, 900.0, 1000.0, 1200.0, 1400.0, 1600.0, 1800.0, 2000.0, 2500.0, 3000.0};

#define N(a) HS_ARRAY_LEN(a)

const double *sim__hist_bounds(int kind, int id, int max_model_len, size_t *n)
{
    if (kind == SIM_SGLANG) {
        switch (id) {
        case SIM_H_TTFT:
            *n = N(sgl_ttft);
            return sgl_ttft;
        case SIM_H_ITL:
            *n = N(sgl_itl);
            return sgl_itl;
        case SIM_H_E2E:
            *n = N(sgl_e2e);
            return sgl_e2e;
        case SIM_H_QUEUE:
            *n = N(sgl_queue);
            return sgl_queue;
        default:
            break;
        }
    }
    switch (id) {
    case SIM_H_TTFT:
        *n = N(vllm_ttft);
        return vllm_ttft;
    case SIM_H_ITL:
    case SIM_H_TPOT:
        *n = N(vllm_itl);
        return vllm_itl;
    case SIM_H_ITER_TOKENS:
        *n = N(vllm_iter);
        return vllm_iter;
    case SIM_H_PROMPT_TOKENS:
    case SIM_H_GEN_TOKENS:
    case SIM_H_MAX_TOKENS: {
        /* build_1_2_5_buckets(max_model_len) */
        size_t k = 0;
        while (k < N(vllm_125) && vllm_125[k] <= max_model_len)
            k++;
        *n = k;
        return vllm_125;
    }
    default:
        *n = N(vllm_req);
        return vllm_req;
    }
}

/* prometheus_client spelling: integral values as "24.0", others shortest. */
static void fmt_num(double v, char *out, size_t len)
{
    if (isfinite(v) && v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, len, "%.1f", v);
        return;
    }
    hs_format_double(v, out, len);
}

struct fam {
    const char *name, *help, *type;
};

static int header(struct hs_buf *b, const char *name, const char *help, const char *type)
{
    return hs_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int sample(struct hs_buf *b, const char *name, const char *labels, double v)
{
    char num[40];
    fmt_num(v, num, sizeof(num));
    return hs_buf_printf(b, "%s{%s} %s\n", name, labels, num);
}

static int simple(struct hs_buf *b, const char *name, const char *help, const char *type,
                  const char *labels, double v)
{
    int rc = header(b, name, help, type);
    return rc ? rc : sample(b, name, labels, v);
}

/* Histogram; 'sum_first' gives the multiprocess order (_sum, buckets, _count). */
static int hist(struct hs_buf *b, const char *name, const char *help, const char *labels,
                const struct sim_hist *h, bool sum_first)
{
    char num[40], le[40];
    int rc = header(b, name, help, "histogram");
    fmt_num(h->sum, num, sizeof(num));
    if (!rc && sum_first)
        rc = hs_buf_printf(b, "%s_sum{%s} %s\n", name, labels, num);
    uint64_t cum = 0;
    for (size_t i = 0; !rc && i <= h->n; i++) {
        cum += h->counts[i];
        if (i < h->n)
            fmt_num(h->le[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        /* labels sorted as prometheus_client prints them: le comes right
         * after the first label (engine, engine_type) in both formats */
        const char *rest = strchr(labels, ',');
        int first = rest ? (int)(rest - labels) : (int)strlen(labels);
        rc = hs_buf_printf(b, "%s_bucket{%.*s,le=\"%s\"%s} %.1f\n", name, first, labels, le,
                           rest ? rest : "", (double)cum);
    }
    if (!rc)
        rc = hs_buf_printf(b, "%s_count{%s} %.1f\n", name, labels, (double)h->count);
    if (!rc && !sum_first)
        rc = hs_buf_printf(b, "%s_sum{%s} %s\n", name, labels, num);
    return rc;
}

/* Label values are the model name: escape backslash, quote and newline. */
static int escaped(struct hs_buf *b, const char *s)
{
    int rc = HS_OK;
    for (; *s && !rc; s++) {
        if (*s == '\\' || *s == '"')
            rc = hs_buf_putc(b, '\\');
        if (!rc)
            rc = *s == '\n' ? hs_buf_puts(b, "\\n") : hs_buf_putc(b, *s);
    }
    return rc;
}

static int vllm_fams(const struct sim_engine *e, const char *lb, struct hs_buf *b)
{
    struct sim_engine_stats st;
    sim_engine_get_stats(e, &st);
    int rc = simple(b, "vllm:num_requests_running",
                    "Number of requests in model execution batches.", "gauge", lb, st.running);
    if (!rc)
        rc = simple(b, "vllm:num_requests_waiting", "Number of requests waiting to be processed.",
                    "gauge", lb, st.waiting);
    if (!rc)
        rc = simple(b, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                    "gauge", lb,
                    st.kv_blocks_total ? (double)st.kv_blocks_used / st.kv_blocks_total : 0);
    if (!rc)
        rc = simple(b, "vllm:prefix_cache_queries_total",
                    "Prefix cache queries, in terms of number of queried tokens.", "counter", lb,
                    (double)st.prompt_tokens);
    if (!rc)
        rc = simple(b, "vllm:prefix_cache_hits_total",
                    "Prefix cache hits, in terms of number of cached tokens.", "counter", lb, 0);
    if (!rc)
        rc = simple(b, "vllm:num_preemptions_total",
                    "Cumulative number of preemption from the engine.", "counter", lb,
                    (double)st.preemptions);
    if (!rc)
        rc = simple(b, "vllm:prompt_tokens_total", "Number of prefill tokens processed.", "counter",
                    lb, (double)st.prompt_tokens);
    if (!rc)
        rc = simple(b, "vllm:generation_tokens_total", "Number of generation tokens processed.",
                    "counter", lb, (double)st.generation_tokens);
    static const char *reasons[] = {"stop", "length", "abort", "error", "repetition"};
    if (!rc)
        rc = header(b, "vllm:request_success_total", "Count of successfully processed requests.",
                    "counter");
    for (size_t i = 0; !rc && i < N(reasons); i++) {
        /* sorted labels: engine, finished_reason, model_name */
        const char *comma = strchr(lb, ',');
        rc = hs_buf_printf(b, "vllm:request_success_total{%.*s,finished_reason=\"%s\"%s} %.1f\n",
                           (int)(comma - lb), lb, reasons[i], comma,
                           i < 3 ? (double)st.finished[i] : 0.0);
    }
    return rc;
}

int sim__metrics_vllm(const struct sim_engine *e, struct hs_buf *b)
{
    struct hs_buf lb;
    hs_buf_init(&lb, 4096);
    int rc = hs_buf_puts(&lb, "engine=\"0\",model_name=\"");
    if (!rc)
        rc = escaped(&lb, e->cfg.model);
    if (!rc)
        rc = hs_buf_putc(&lb, '"');
    if (!rc)
        rc = vllm_fams(e, lb.p, b);
    static const struct {
        int id;
        const char *name, *help;
    } hs[] = {
        {SIM_H_PROMPT_TOKENS, "vllm:request_prompt_tokens", "Number of prefill tokens processed."},
        {SIM_H_GEN_TOKENS, "vllm:request_generation_tokens",
         "Number of generation tokens processed."},
        {SIM_H_ITER_TOKENS, "vllm:iteration_tokens_total",
         "Histogram of number of tokens per engine_step."},
        {SIM_H_MAX_TOKENS, "vllm:request_params_max_tokens",
         "Histogram of the max_tokens request parameter."},
        {SIM_H_TTFT, "vllm:time_to_first_token_seconds",
         "Histogram of time to first token in seconds."},
        {SIM_H_ITL, "vllm:inter_token_latency_seconds",
         "Histogram of inter-token latency in seconds."},
        {SIM_H_TPOT, "vllm:request_time_per_output_token_seconds",
         "Histogram of time_per_output_token_seconds per request."},
        {SIM_H_E2E, "vllm:e2e_request_latency_seconds",
         "Histogram of e2e request latency in seconds."},
        {SIM_H_QUEUE, "vllm:request_queue_time_seconds",
         "Histogram of time spent in WAITING phase for request."},
        {SIM_H_INFERENCE, "vllm:request_inference_time_seconds",
         "Histogram of time spent in RUNNING phase for request."},
        {SIM_H_PREFILL, "vllm:request_prefill_time_seconds",
         "Histogram of time spent in PREFILL phase for request."},
        {SIM_H_DECODE, "vllm:request_decode_time_seconds",
         "Histogram of time spent in DECODE phase for request."},
    };
    for (size_t i = 0; !rc && i < N(hs); i++)
        rc = hist(b, hs[i].name, hs[i].help, lb.p, &e->h[hs[i].id], false);
    if (!rc)
        rc = header(b, "vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                    "gauge");
    if (!rc)
        rc = hs_buf_printf(b,
                           "vllm:cache_config_info{block_size=\"%d\",cache_dtype=\"auto\","
                           "enable_prefix_caching=\"True\",engine=\"0\","
                           "gpu_memory_utilization=\"0.9\",num_gpu_blocks=\"%d\"} 1.0\n",
                           e->cfg.block_size, e->cfg.kv_blocks);
    hs_buf_cleanup(&lb);
    return rc;
}

int sim__metrics_sglang(const struct sim_engine *e, struct hs_buf *b)
{
    struct sim_engine_stats st;
    sim_engine_get_stats(e, &st);
    struct hs_buf tok, sch;
    hs_buf_init(&tok, 4096);
    hs_buf_init(&sch, 4096);
    int rc = hs_buf_puts(&tok, "engine_type=\"unified\",model_name=\"");
    if (!rc)
        rc = escaped(&tok, e->cfg.model);
    if (!rc)
        rc = hs_buf_putc(&tok, '"');
    if (!rc)
        rc = hs_buf_printf(&sch, "%s,pp_rank=\"0\",tp_rank=\"0\"", tok.p);
    double pool = (double)st.kv_blocks_total * e->cfg.block_size;
    double used_tokens = (double)st.kv_blocks_used * e->cfg.block_size;
    double busy = st.running > 0 ? 1.0 : 0.0;
    if (!rc)
        rc = simple(b, "sglang:num_running_reqs", "The number of running requests.", "gauge", sch.p,
                    st.running);
    if (!rc)
        rc = simple(b, "sglang:num_used_tokens", "The number of used tokens.", "gauge", sch.p,
                    used_tokens);
    if (!rc)
        rc = simple(b, "sglang:token_usage", "The token usage.", "gauge", sch.p,
                    pool > 0 ? used_tokens / pool : 0);
    if (!rc)
        rc = simple(b, "sglang:gen_throughput", "The generation throughput (token/s).", "gauge",
                    sch.p, e->gen_tput);
    if (!rc)
        rc = simple(b, "sglang:num_queue_reqs", "The number of requests in the waiting queue.",
                    "gauge", sch.p, st.waiting);
    if (!rc)
        rc = simple(b, "sglang:cache_hit_rate", "The prefix cache hit rate.", "gauge", sch.p, 0);
    if (!rc)
        rc = simple(b, "sglang:max_total_num_tokens",
                    "Maximum total number of tokens in the KV cache pool.", "gauge", sch.p, pool);
    if (!rc)
        rc = simple(b, "sglang:num_retracted_reqs", "The number of retracted requests.", "gauge",
                    sch.p, (double)e->retracted_now);
    if (!rc)
        rc = simple(b, "sglang:utilization", "The utilization.", "gauge", sch.p, busy);
    if (!rc)
        rc = simple(b, "sglang:prompt_tokens_total", "Number of prefill tokens processed.",
                    "counter", tok.p, (double)st.prompt_tokens);
    if (!rc)
        rc = simple(b, "sglang:generation_tokens_total", "Number of generation tokens processed.",
                    "counter", tok.p, (double)st.generation_tokens);
    if (!rc)
        rc = simple(b, "sglang:num_requests_total", "Number of requests processed.", "counter",
                    tok.p,
                    (double)(st.finished[0] + st.finished[1] + st.finished[SIM_FINISH_ABORT]));
    if (!rc)
        rc = simple(b, "sglang:num_aborted_requests_total", "Number of requests aborted.",
                    "counter", tok.p, (double)st.finished[SIM_FINISH_ABORT]);
    if (!rc)
        rc = simple(b, "sglang:num_retracted_requests_total", "Number of retracted requests.",
                    "counter", sch.p, (double)st.preemptions);
    if (!rc)
        rc = hist(b, "sglang:time_to_first_token_seconds",
                  "Histogram of time to first token in seconds.", tok.p, &e->h[SIM_H_TTFT], true);
    if (!rc)
        rc = hist(b, "sglang:inter_token_latency_seconds",
                  "Histogram of inter-token latency in seconds.", tok.p, &e->h[SIM_H_ITL], true);
    if (!rc)
        rc = hist(b, "sglang:e2e_request_latency_seconds",
                  "Histogram of End-to-end request latency in seconds", tok.p, &e->h[SIM_H_E2E],
                  true);
    if (!rc)
        rc = hist(b, "sglang:queue_time_seconds", "Histogram of queueing time in seconds.", sch.p,
                  &e->h[SIM_H_QUEUE], true);
    hs_buf_cleanup(&tok);
    hs_buf_cleanup(&sch);
    return rc;
}
