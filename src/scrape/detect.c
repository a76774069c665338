/*
 * detect.c - which inference engine or exporter a target is, from the
 * metric family names it exposes (shared/spec/metrics-mapping.md, section 3).
 *
 * Every rule names family prefixes and hallmark families.  A backend is
 * detected when one hallmark is present or at least two families carry its
 * prefix; a single prefixed family makes it only "suspected" (reported, not
 * mapped).  A target may match several rules (a Dynamo worker exposes
 * dynamo_* and sglang:*), so the result is a set plus a primary backend:
 * the first detected engine in rule order, else the first exporter.
 *
 * Family names are compared with a trailing "_total" removed, so that text
 * format ("# TYPE x_total counter") and OpenMetrics ("# TYPE x counter")
 * agree.  The family set is kept as 64-bit hashes so that the mapping can
 * ask whether the current spelling of a renamed metric is present.
 */
#include "scrape/scrape_internal.h"

#include <string.h>

static const char *const backend_names[SCRAPE_BACKEND_COUNT] = {
    [SCRAPE_BACKEND_NONE] = "",
    [SCRAPE_BACKEND_VLLM] = "vllm",
    [SCRAPE_BACKEND_SGLANG] = "sglang",
    [SCRAPE_BACKEND_TGI] = "tgi",
    [SCRAPE_BACKEND_LLAMACPP] = "llamacpp",
    [SCRAPE_BACKEND_TRITON] = "triton",
    [SCRAPE_BACKEND_TRTLLM] = "trtllm",
    [SCRAPE_BACKEND_DCGM] = "dcgm",
    [SCRAPE_BACKEND_NODE] = "node",
    [SCRAPE_BACKEND_NVML] = "nvml",
    [SCRAPE_BACKEND_LITELLM] = "litellm",
};

const char *scrape_backend_name(int backend)
{
    if (backend < 0 || backend >= SCRAPE_BACKEND_COUNT)
        return "";
    return backend_names[backend];
}

int scrape_backend_parse(const char *s)
{
    for (int i = 1; i < SCRAPE_BACKEND_COUNT; i++)
        if (strcmp(s, backend_names[i]) == 0)
            return i;
    return SCRAPE_BACKEND_NONE;
}

/* ---- rules (metrics-mapping.md, section 3), in match order ------------------- */

struct drule {
    int backend;
    const char *prefixes[5];
    const char *hallmarks[4]; /* without a trailing _total */
};

static const struct drule rules[] = {
    {SCRAPE_BACKEND_VLLM, {"vllm:"}, {"vllm:num_requests_running", "vllm:num_requests_waiting"}},
    {SCRAPE_BACKEND_SGLANG, {"sglang:"}, {"sglang:num_running_reqs", "sglang:token_usage"}},
    {SCRAPE_BACKEND_TGI,
     {"tgi_"},
     {"tgi_request_count", "tgi_queue_size", "tgi_batch_current_size"}},
    {SCRAPE_BACKEND_LLAMACPP,
     {"llamacpp:"},
     {"llamacpp:prompt_tokens", "llamacpp:requests_processing"}},
    /* The TensorRT-LLM backend of Triton is Triton: its families come with
     * nv_inference_* from the same server. */
    {SCRAPE_BACKEND_TRITON,
     {"nv_inference_", "nv_gpu_", "nv_cpu_", "nv_energy_", "nv_trt_llm_"},
     {"nv_inference_request_success", "nv_trt_llm_request_metrics"}},
    {SCRAPE_BACKEND_TRTLLM, {"trtllm_"}, {"trtllm_time_to_first_token_seconds"}},
    {SCRAPE_BACKEND_LITELLM,
     {"litellm_"},
     {"litellm_proxy_total_requests_metric", "litellm_spend_metric"}},
    {SCRAPE_BACKEND_DCGM,
     {"DCGM_FI_", "DCGM_EXP_"},
     {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP"}},
    {SCRAPE_BACKEND_NODE, {"node_"}, {"node_cpu_seconds", "node_exporter_build_info"}},
};

struct dhint {
    const char *family; /* without a trailing _total */
    uint32_t bit;
};

static const struct dhint hints[] = {
    {"vllm:kv_cache_usage_perc", SCRAPE_HINT_VLLM_V1_CURRENT},
    {"vllm:num_requests_swapped", SCRAPE_HINT_VLLM_V0},
    {"vllm:cpu_cache_usage_perc", SCRAPE_HINT_VLLM_V0},
    {"vllm:inter_token_latency_seconds", SCRAPE_HINT_VLLM_ITL},
    {"sglang:inter_token_latency_seconds", SCRAPE_HINT_SGLANG_CURRENT},
    {"sglang:time_per_output_token_seconds", SCRAPE_HINT_SGLANG_OLDER},
    {"llamacpp:kv_cache_usage_ratio", SCRAPE_HINT_LLAMACPP_OLDER},
    {"nv_trt_llm_request_metrics", SCRAPE_HINT_TRTLLM_BACKEND},
    {"nv_trt_llm_v1_metrics", SCRAPE_HINT_TRTLLM_V1},
};

/* ---- family set ---------------------------------------------------------------- */

void scrape_detect_init(struct scrape_detect *d)
{
    memset(d, 0, sizeof(*d));
}

void scrape_detect_cleanup(struct scrape_detect *d)
{
    hs_free(d->fam);
    memset(d, 0, sizeof(*d));
}

void scrape_detect_reset(struct scrape_detect *d)
{
    uint64_t *fam = d->fam;
    size_t cap = d->fam_cap;
    if (fam != NULL)
        memset(fam, 0, cap * sizeof(fam[0]));
    memset(d, 0, sizeof(*d));
    d->fam = fam;
    d->fam_cap = cap;
}

static size_t strip_suffix(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    if (n > k && memcmp(s + n - k, suf, k) == 0)
        return n - k;
    return n;
}

static uint64_t fam_hash(const char *s, size_t n)
{
    uint64_t h = hs_hash64(s, n, 0x6a09e667f3bcc908ull);
    return h ? h : 1;
}

static bool set_has(const struct scrape_detect *d, uint64_t h)
{
    if (d->fam_cap == 0)
        return false;
    size_t mask = d->fam_cap - 1;
    for (size_t i = (size_t)h & mask; d->fam[i] != 0; i = (i + 1) & mask)
        if (d->fam[i] == h)
            return true;
    return false;
}

static void set_put(uint64_t *tab, size_t cap, uint64_t h)
{
    size_t mask = cap - 1, i = (size_t)h & mask;
    while (tab[i] != 0 && tab[i] != h)
        i = (i + 1) & mask;
    tab[i] = h;
}

static int set_grow(struct scrape_detect *d)
{
    size_t cap = d->fam_cap ? d->fam_cap * 2 : 256;
    uint64_t *tab = hs_calloc(cap, sizeof(tab[0]));
    if (tab == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < d->fam_cap; i++)
        if (d->fam[i] != 0)
            set_put(tab, cap, d->fam[i]);
    hs_free(d->fam);
    d->fam = tab;
    d->fam_cap = cap;
    return HS_OK;
}

static bool name_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static void classify(struct scrape_detect *d, const char *s, size_t n)
{
    for (size_t r = 0; r < HS_ARRAY_LEN(rules); r++) {
        const struct drule *ru = &rules[r];
        bool hit = false;
        for (size_t p = 0; p < HS_ARRAY_LEN(ru->prefixes) && ru->prefixes[p]; p++) {
            size_t k = strlen(ru->prefixes[p]);
            if (n >= k && memcmp(s, ru->prefixes[p], k) == 0)
                hit = true;
        }
        if (!hit)
            continue;
        d->prefix_count[ru->backend]++;
        for (size_t h = 0; h < HS_ARRAY_LEN(ru->hallmarks) && ru->hallmarks[h]; h++)
            if (name_eq(s, n, ru->hallmarks[h]))
                d->hallmark[ru->backend] = true;
        break;
    }
    for (size_t i = 0; i < HS_ARRAY_LEN(hints); i++)
        if (name_eq(s, n, hints[i].family))
            d->hints |= hints[i].bit;
}

int scrape_detect_add(struct scrape_detect *d, const char *name, size_t len, bool is_sample)
{
    static const char *const sample_suffixes[] = {"_bucket", "_sum", "_count", "_created"};
    size_t n = len;
    if (is_sample)
        for (size_t i = 0; i < HS_ARRAY_LEN(sample_suffixes) && n == len; i++)
            n = strip_suffix(name, len, sample_suffixes[i]);
    n = strip_suffix(name, n, "_total");
    uint64_t h = fam_hash(name, n);
    if (set_has(d, h))
        return HS_OK;
    if (d->fam_n >= SCRAPE_DETECT_MAX_FAMILIES)
        return HS_ETOOBIG;
    if ((d->fam_n + 1) * 2 > d->fam_cap && set_grow(d) != HS_OK)
        return HS_ENOMEM;
    set_put(d->fam, d->fam_cap, h);
    d->fam_n++;
    d->fam_sig += h * 0x9e3779b97f4a7c15ull;
    classify(d, name, n);
    return HS_OK;
}

bool scrape_detect_has_family(const struct scrape_detect *d, const char *name)
{
    size_t n = strip_suffix(name, strlen(name), "_total");
    return set_has(d, fam_hash(name, n));
}

void scrape_detect_finish(struct scrape_detect *d)
{
    d->detected = d->suspected = 0;
    d->primary = SCRAPE_BACKEND_NONE;
    for (size_t r = 0; r < HS_ARRAY_LEN(rules); r++) {
        int b = rules[r].backend;
        if (d->hallmark[b] || d->prefix_count[b] >= 2) {
            d->detected |= 1u << b;
            if (d->primary == SCRAPE_BACKEND_NONE)
                d->primary = b;
        } else if (d->prefix_count[b] == 1) {
            d->suspected |= 1u << b;
        }
    }
    if ((d->detected & (1u << SCRAPE_BACKEND_VLLM)) && !(d->hints & SCRAPE_HINT_VLLM_V1_CURRENT) &&
        scrape_detect_has_family(d, "vllm:gpu_cache_usage_perc"))
        d->hints |= SCRAPE_HINT_VLLM_LEGACY_KV;
}

void scrape_detect_pin(struct scrape_detect *d, int backend)
{
    if (backend <= SCRAPE_BACKEND_NONE || backend >= SCRAPE_BACKEND_COUNT)
        return;
    d->detected = 1u << backend;
    d->suspected = 0;
    d->primary = backend;
}
