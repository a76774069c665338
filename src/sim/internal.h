/*
 * internal.h - shared by the simulator's own files (engine, metrics, text,
 * gpu, server, config): the engine's state, the random-number generator and
 * the histogram used for the engines' latency families.
 *
 * Threading: as sim.h; nothing here is locked.
 */
#ifndef HS_SIM_INTERNAL_H
#define HS_SIM_INTERNAL_H

#include "sim/sim.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- random numbers (splitmix64; deterministic from the seed) ---- */
struct sim_rng {
    uint64_t s;
};
void sim__rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim__rng_next(struct sim_rng *r);
/* Uniform in [0, 1). */
double sim__rng_unit(struct sim_rng *r);
/* Lognormal with the given median and sigma. */
double sim__rng_lognormal(struct sim_rng *r, double median, double sigma);
/* Exponential with the given mean. */
double sim__rng_exp(struct sim_rng *r, double mean);

/* ---- histograms with fixed bounds ---- */
#define SIM_HIST_MAX_BOUNDS 40
struct sim_hist {
    const double *le;                         /* upper bounds, ascending, static */
    size_t n;                                 /* number of bounds (+Inf not counted) */
    uint64_t counts[SIM_HIST_MAX_BOUNDS + 1]; /* non-cumulative; last = above every bound */
    double sum;
    uint64_t count;
};
void sim__hist_init(struct sim_hist *h, const double *le, size_t n);
void sim__hist_observe(struct sim_hist *h, double v);

enum sim_hist_id {
    SIM_H_TTFT = 0,
    SIM_H_ITL,
    SIM_H_E2E,
    SIM_H_QUEUE,
    SIM_H_INFERENCE,
    SIM_H_PREFILL,
    SIM_H_DECODE,
    SIM_H_TPOT,
    SIM_H_PROMPT_TOKENS,
    SIM_H_GEN_TOKENS,
    SIM_H_MAX_TOKENS,
    SIM_H_ITER_TOKENS,
    SIM_H_COUNT
};

struct sim_req;

struct sim_engine {
    struct sim_engine_config cfg; /* copy; strings borrowed */
    struct sim_engine_faults faults;
    struct sim_rng rng;
    double speed;
    int64_t now_us;
    int64_t step_end_us;   /* -1: no step under way */
    int64_t step_start_us; /* start of the step under way */
    int step_tokens;       /* tokens processed by the step under way */
    uint64_t next_id;
    struct sim_req **running; /* admission order: oldest first */
    int n_running;
    struct sim_req **waiting; /* head first */
    int n_waiting, cap_waiting;
    int kv_used;
    int in_callback;     /* > 0 while events fire: aborts are deferred */
    bool abort_deferred; /* some request carries abort_pending */
    struct sim_engine_stats st;
    uint64_t retracted_now; /* SGLang num_retracted_reqs: waiting after a preemption */
    double gen_tput;        /* tokens/s, exponentially smoothed over ~5 s */
    struct sim_hist h[SIM_H_COUNT];
};

/* Number of KV blocks usable now. */
int sim__engine_kv_total(const struct sim_engine *e);

/* Bucket bounds of histogram 'id' for an engine of 'kind' (metrics.c). */
const double *sim__hist_bounds(int kind, int id, int max_model_len, size_t *n);
/* Metrics writers (metrics.c). */
HS_MUST_CHECK int sim__metrics_vllm(const struct sim_engine *e, struct hs_buf *out);
HS_MUST_CHECK int sim__metrics_sglang(const struct sim_engine *e, struct hs_buf *out);

/* ---- configuration helpers (config.c) ---- */

enum sim_fault_kind {
    SIM_FAULT_THROTTLE = 0,
    SIM_FAULT_KV_SHRINK,
    SIM_FAULT_ERRORS,
    SIM_FAULT_TRUNCATION,
    SIM_FAULT_QUALITY,
    SIM_FAULT_REPLICA_DOWN,
    SIM_FAULT_IDLE_GPU,
    SIM_FAULT_KINDS
};
/* enum sim_fault_kind of a kind name, -1 when unknown. */
int sim__fault_kind(const char *kind);
/* Resolves "engine" (replica -1) or "engine/replica"; HS_EINVAL when unknown. */
int sim__fault_target(const struct sim_config *c, const char *target, int *engine, int *replica);

/* ---- simulated GPUs (gpu.c) ---- */

/* nvmlClocksEventReasons bits, as DCGM exposes them. */
#define SIM_CLOCKS_EVENT_GPU_IDLE    0x1u
#define SIM_CLOCKS_EVENT_SW_POWERCAP 0x4u
#define SIM_CLOCKS_EVENT_HW_SLOWDOWN 0x8u
#define SIM_CLOCKS_EVENT_SW_THERMAL  0x20u
#define SIM_CLOCKS_EVENT_HW_THERMAL  0x40u

struct sim_gpu {
    int index;     /* gpu label: index on its node */
    char uuid[48]; /* UUID label */
    char pci_bus_id[24];
    const char *model;     /* modelName (borrowed from the engine config) */
    char pod[96];          /* Kubernetes attributes of the consumer, as dcgm-exporter */
    const char *container; /* adds them: pod "<engine>-<replica>", namespace "sim" */
    double mem_total_mib;
    double util;      /* 0..1, lagged busy fraction */
    double power_w;   /* lagged */
    double temp_c;    /* lagged */
    double energy_mj; /* since start */
    double fb_used_mib;
    double sm_clock_mhz;
    unsigned reasons;     /* clocks-event reasons bitmask */
    double tensor_active; /* 0..1 */
    double dram_active;   /* 0..1 */
};

/* What drives a GPU over one interval. */
struct sim_gpu_load {
    double busy;        /* busy fraction of the interval, 0..1 */
    double fb_used_mib; /* weights + KV in use on this GPU */
    double power_idle_w, power_max_w;
    bool is_throttled;  /* thermal throttle fault */
    bool is_idle_fault; /* idle_gpu fault: allocated, no work */
};

void sim__gpu_init(struct sim_gpu *g, int index, uint64_t seed, const char *model,
                   double mem_total_gib);
/* Advances the GPU by dt_s seconds under 'load' (first-order lags). */
void sim__gpu_update(struct sim_gpu *g, double dt_s, const struct sim_gpu_load *load);
/* Appends a dcgm-exporter exposition for 'n' GPUs of host 'hostname'. */
HS_MUST_CHECK int sim__gpu_metrics(const struct sim_gpu *const *gpus, size_t n,
                                   const char *hostname, struct hs_buf *out);

#endif
