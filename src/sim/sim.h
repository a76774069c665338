/*
 * sim.h - simulated inference engines and GPUs: the fleet behind
 * `holoscope sim` and `holoscope demo`, and the upstream of the gateway's
 * end-to-end tests.
 *
 * Two layers:
 *   - The engine model (sim_engine_*): a discrete-event model of one
 *     replica doing continuous batching, driven by a clock the caller
 *     passes in (microseconds, any origin).  No sockets, no wall time:
 *     tests run hours of virtual traffic in milliseconds, deterministically
 *     from the seed.  Each step admits waiting requests while sequences and
 *     KV blocks allow (prompt blocks reserved at admission), prefills them
 *     (their first token comes at the end of that step) and decodes one
 *     token for every other running request.  The step time grows with the
 *     batch, the context held and the prefill tokens.  A decode that needs a
 *     KV block when none is free preempts the newest running request
 *     (recompute: its blocks are freed and it goes back to the head of the
 *     queue).  A request ends at its natural length ("stop") or at
 *     max_tokens ("length").
 *   - The fleet (sim_fleet_*): engines served over real HTTP on 127.0.0.1,
 *     one port per replica (OpenAI API, /metrics in vLLM V1 or SGLang
 *     format, /sim/faults control) and one DCGM-exporter /metrics port per
 *     simulated node, all on one thread with its own event_base.  The
 *     engine clock is the monotonic clock there; step times are divided by
 *     the config's speed.
 *
 * Faults (struct sim_fault, kind and magnitude):
 *   throttle      step times x magnitude (default 1.8); GPUs hotter, SM clock
 *                 lower, clocks-event reasons SW+HW thermal and HW slowdown
 *   kv_shrink     magnitude = share of KV blocks taken away (default 0.75):
 *                 preemptions and TTFT go up
 *   errors        magnitude = share of requests answered 500 (default 0.5)
 *   truncation    magnitude = share of requests that run into max_tokens
 *                 (finish_reason "length", default 0.6)
 *   quality       magnitude = share of answers degraded (default 1.0): a third
 *                 each repetitive, empty, or the refusal
 *                 "I'm sorry, but I can't help with that."
 *   replica_down  the replica's port is closed (connections refused, as a
 *                 crashed pod); in-flight requests are cut off
 *   idle_gpu      the replica's GPUs hold the weights but show no work
 *                 (utilisation 0, clocks-event reason GPU idle) and the
 *                 replica answers 503 "no capacity assigned": a GPU idling
 *                 behind too many replicas
 * A fault's target is an engine name (every replica) or "engine/replica".
 *
 * Control endpoint of every replica: POST /sim/faults with a JSON body
 * {"kind", "magnitude"?, "duration_s"?, "start_s"?, "target"?} (target
 * defaults to this replica) starts a fault; GET /sim/faults lists the
 * faults reaching this replica; DELETE /sim/faults[?target=T|all] clears
 * the faults set on this replica (or on T, or all).  Each answers the list
 * as {"faults":[{"kind","target","magnitude","active","remaining_s"}]};
 * errors are OpenAI-style JSON with status 400.
 *
 * Threading: sim_engine_* objects are not locked (one thread at a time).
 * sim_config_* run on any thread on distinct objects.  sim_fleet_start and
 * sim_fleet_stop are called by the owner thread; sim_fleet_endpoint* (data
 * fixed at start), sim_fleet_inject and sim_fleet_clear_faults (they take
 * the fleet's lock) may be called from any thread; everything else runs on
 * the fleet's own thread.
 */
#ifndef HS_SIM_H
#define HS_SIM_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- configuration --------------------------------------------------------- */

enum sim_kind { SIM_VLLM = 0, SIM_SGLANG = 1 };

/* One engine: 'replicas' identical replicas of one model.  Every field has
 * a default (sim_engine_config_defaults); strings are borrowed. */
struct sim_engine_config {
    const char *name;            /* engine name, unique in the fleet ("llama-vllm") */
    const char *model;           /* served model name ("meta-llama/Llama-3.1-8B-Instruct") */
    enum sim_kind kind;          /* metrics format and dialect */
    int replicas;                /* >= 1 */
    int gpus_per_replica;        /* tensor-parallel GPUs per replica, >= 1 */
    const char *gpu_model;       /* DCGM modelName, "NVIDIA H100 80GB HBM3" */
    int kv_blocks;               /* KV-cache blocks per replica (vLLM num_gpu_blocks) */
    int block_size;              /* tokens per KV block */
    int max_num_seqs;            /* running-batch ceiling */
    int max_model_len;           /* prompt + output ceiling, tokens */
    int default_max_tokens;      /* max_tokens when a request gives none */
    double step_base_ms;         /* fixed cost of one engine step */
    double step_per_seq_ms;      /* added per running sequence */
    double step_per_kv_ktok_ms;  /* added per 1000 tokens of context held */
    double prefill_per_token_ms; /* added per prompt token prefilled in the step */
    double prompt_len_median;    /* lognormal prompt length (tokens) when unknown */
    double prompt_len_sigma;     /* lognormal sigma of the prompt length */
    double output_len_median;    /* lognormal natural output length (tokens) */
    double output_len_sigma;     /* lognormal sigma of the output length */
    double weights_gib;          /* model weights, split over the replica's GPUs */
    double gpu_memory_gib;       /* framebuffer per GPU */
    double kv_cache_gib;         /* KV pool per replica, split over its GPUs */
    double gpu_power_idle_w;     /* power at utilisation 0 */
    double gpu_power_max_w;      /* power at utilisation 1 */
};

/*
 * A fault.  Strings are borrowed by sim_fleet_inject (copied there).
 * magnitude <= 0 takes the kind's default (see the top of this file).
 * duration_ms <= 0 lasts until cleared.  In a sim_config, start_ms counts
 * from fleet start; given to sim_fleet_inject, from the moment of the call.
 */
struct sim_fault {
    const char *kind;   /* "throttle", "kv_shrink", "errors", "truncation", "quality",
                           "replica_down", "idle_gpu" */
    const char *target; /* engine name, or "engine/replica" (replica index from 0) */
    double magnitude;   /* kind-specific, see above */
    int64_t start_ms;   /* delay before it starts */
    int64_t duration_ms;
};

struct sim_config {
    const char *host; /* listen address, "127.0.0.1" */
    int base_port;    /* first port, following ones counted up; 0 = ephemeral ports */
    struct sim_engine_config *engines;
    size_t n_engines;
    struct sim_fault *faults;
    size_t n_faults;
    uint64_t seed;     /* every random choice derives from it */
    double speed;      /* step times are divided by it; 1.0 = real time */
    int gpus_per_node; /* GPUs per simulated node (DCGM port), default 8 */
    void *owned;       /* set by sim_config_parse: storage freed by sim_config_free */
};

/* Fills 'c' with the defaults of a vLLM engine serving Llama 3.1 8B on one H100. */
void sim_engine_config_defaults(struct sim_engine_config *c);

/* Fills 'c': host 127.0.0.1, base_port 0, no engines, no faults, seed 1,
 * speed 1.0, 8 GPUs per node. */
void sim_config_defaults(struct sim_config *c);

/*
 * Reads the `sim:` section (or a whole file of that shape) from 'node':
 *   host, base_port, seed, speed, gpus_per_node,
 *   engines: [{name, model, kind: vllm|sglang, replicas, gpus_per_replica,
 *              gpu_model, kv_blocks, block_size, max_num_seqs, max_model_len,
 *              default_max_tokens, step_base_ms, step_per_seq_ms,
 *              step_per_kv_ktok_ms, prefill_per_token_ms, prompt_len_median,
 *              prompt_len_sigma, output_len_median, output_len_sigma,
 *              weights_gib, gpu_memory_gib, kv_cache_gib, gpu_power_idle_w,
 *              gpu_power_max_w}],
 *   faults: [{kind, target, magnitude, start (duration), duration (duration)}]
 * Unset fields keep their defaults.  'out' is filled from defaults first;
 * strings point into 'doc' or into storage owned by 'out' (so 'doc' must
 * outlive 'out').  Errors name FILE:LINE:COL (unknown keys, bad kinds,
 * values out of range).  On error 'out' holds nothing to free beyond
 * sim_config_free, which is always safe to call.
 */
HS_MUST_CHECK int sim_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *node,
                                   struct sim_config *out, struct hs_err *err);

/*
 * Checks a config: at least one engine, unique names, every number in its
 * range, faults of known kinds naming existing targets.  sim_fleet_start
 * calls it.
 */
HS_MUST_CHECK int sim_config_validate(const struct sim_config *c, struct hs_err *err);

/* Frees what sim_config_parse allocated; the config is reset to defaults. */
void sim_config_free(struct sim_config *c);

/* ---- the engine model (virtual clock) --------------------------------------- */

struct sim_engine;

enum sim_finish { SIM_FINISH_STOP = 0, SIM_FINISH_LENGTH = 1, SIM_FINISH_ABORT = 2 };

/* What the engine tells the owner of a request. */
enum sim_event {
    SIM_EVENT_TOKEN = 1,  /* one output token was generated */
    SIM_EVENT_FINISH = 2, /* the request ended (after its last token, or aborted) */
};

struct sim_request_info {
    uint64_t id;
    int prompt_tokens;
    int max_tokens;
    int output_tokens;      /* generated so far */
    int finish_reason;      /* enum sim_finish, valid on SIM_EVENT_FINISH */
    int preemptions;        /* times this request was preempted */
    int64_t arrival_us;     /* submit time */
    int64_t scheduled_us;   /* first admission to the batch, -1 before */
    int64_t first_token_us; /* -1 before */
    int64_t now_us;         /* time of this event */
};

/* Called from sim_engine_run_until (and sim_engine_abort for SIM_EVENT_FINISH);
 * 'info' is borrowed for the call.  The callback may submit or abort other
 * requests but not free the engine. */
typedef void sim_event_fn(void *arg, int event, const struct sim_request_info *info);

struct sim_request_params {
    int prompt_tokens; /* <= 0: drawn from the prompt-length distribution */
    int max_tokens;    /* <= 0: the engine's default_max_tokens */
    int output_tokens; /* natural length; <= 0: drawn from the output distribution */
};

/* Engine-level fault knobs (the fleet derives them from active faults). */
struct sim_engine_faults {
    double step_time_factor; /* step times multiplied by it; 1 = none */
    double kv_fraction;      /* share of KV blocks usable, (0, 1]; 1 = all */
    double truncation_ratio; /* share of new requests made to run into max_tokens */
};

/* Cumulative counters and current state. */
struct sim_engine_stats {
    int running;            /* requests in the batch */
    int waiting;            /* requests queued */
    int kv_blocks_total;    /* usable now (after kv_shrink) */
    int kv_blocks_used;     /* held by running requests */
    uint64_t preemptions;   /* since start */
    uint64_t prompt_tokens; /* prefilled (recomputes included) */
    uint64_t generation_tokens;
    uint64_t finished[3]; /* by enum sim_finish */
    uint64_t steps;       /* engine steps run */
    int64_t busy_us;      /* total time spent in steps */
    int64_t now_us;       /* the engine clock */
};

/*
 * Creates an engine.  'c' is copied (its strings are not: they must outlive
 * the engine).  'seed' makes every draw deterministic; 'speed' > 0 divides
 * step times.  NULL with err set on a bad config or out of memory.
 */
struct sim_engine *sim_engine_new(const struct sim_engine_config *c, uint64_t seed, double speed,
                                  struct hs_err *err);
void sim_engine_free(struct sim_engine *e);

/*
 * Queues a request arriving at 'now_us' (not before the previous submit).
 * 'fn' gets its events; *id_out (may be NULL) its id.  A prompt longer than
 * max_model_len - 1 is HS_EINVAL ("prompt of N tokens exceeds ..."); the
 * request's max_tokens is clamped so prompt + output fit max_model_len.
 * Returns HS_OK (then 'fn' fires SIM_EVENT_FINISH exactly once, later),
 * HS_EINVAL or HS_ENOMEM.
 */
HS_MUST_CHECK int sim_engine_submit(struct sim_engine *e, const struct sim_request_params *p,
                                    int64_t now_us, sim_event_fn *fn, void *arg, uint64_t *id_out,
                                    struct hs_err *err);

/* Ends a request at once (finish "abort"; its FINISH event fires from this
 * call).  Unknown or finished ids are ignored. */
void sim_engine_abort(struct sim_engine *e, uint64_t id, int64_t now_us);

/* Runs every step that ends at or before 't_us', firing events; the clock
 * then stands at 't_us' unless a step is under way. */
void sim_engine_run_until(struct sim_engine *e, int64_t t_us);

/* End time of the step under way, or -1 when none is (the engine is idle or
 * waits for run_until to start the next one). */
int64_t sim_engine_next_event_us(const struct sim_engine *e);

void sim_engine_set_faults(struct sim_engine *e, const struct sim_engine_faults *f);
void sim_engine_get_stats(const struct sim_engine *e, struct sim_engine_stats *out);

/*
 * Appends the engine's /metrics exposition (Prometheus text 0.0.4) in the
 * format of its kind: vLLM V1 (vllm:* families, labels engine and
 * model_name) or SGLang (sglang:* families, labels model_name, engine_type,
 * tp_rank, pp_rank), names, HELP, TYPE and buckets as the real servers.
 */
HS_MUST_CHECK int sim_engine_metrics(const struct sim_engine *e, struct hs_buf *out);

/* ---- generated text ----------------------------------------------------------- */

enum sim_quality { SIM_TEXT_GOOD = 0, SIM_TEXT_REPETITIVE, SIM_TEXT_EMPTY, SIM_TEXT_REFUSAL };

/*
 * The i-th token (a word with its leading space, or punctuation) of the
 * answer to request 'req_seed' written into 'out' (NUL-terminated; 32 bytes
 * are enough).  Deterministic.  SIM_TEXT_EMPTY gives "" for every token;
 * SIM_TEXT_REFUSAL spells the refusal sentence and then "".  Returns the
 * length written.
 */
size_t sim_text_token(uint64_t req_seed, int quality, int i, char *out, size_t out_len);

/* ---- the fleet ------------------------------------------------------------------ */

struct sim_fleet;

enum sim_endpoint_kind { SIM_ENDPOINT_REPLICA = 0, SIM_ENDPOINT_NODE = 1 };

/* One listening endpoint; strings borrowed from the fleet, valid until
 * sim_fleet_stop. */
struct sim_endpoint {
    int kind;                 /* enum sim_endpoint_kind */
    const char *engine;       /* engine name; for a node the engine whose GPUs it holds */
    const char *model;        /* served model name */
    const char *backend;      /* "vllm", "sglang" (replica) or "dcgm" (node) */
    int replica;              /* replica index, or node index for a node */
    const char *base_url;     /* "http://127.0.0.1:PORT" */
    const char *metrics_path; /* "/metrics" */
    int port;
};

/*
 * Validates 'c', builds every engine, binds every port and starts the
 * fleet's thread; returns once all endpoints listen.  'c' is copied (strings
 * too).  NULL with err set on a bad config, a port that cannot be bound, or
 * out of memory.
 */
struct sim_fleet *sim_fleet_start(const struct sim_config *c, struct hs_err *err);

/* Replicas first (engine by engine), then nodes. */
size_t sim_fleet_endpoint_count(const struct sim_fleet *f);
HS_MUST_CHECK int sim_fleet_endpoint(const struct sim_fleet *f, size_t i, struct sim_endpoint *out);

/* Starts a fault (copied) 'start_ms' from now; the fleet applies it within
 * 100 ms.  HS_EINVAL for an unknown kind or target, HS_ETOOBIG past 256
 * faults. */
HS_MUST_CHECK int sim_fleet_inject(struct sim_fleet *f, const struct sim_fault *fault,
                                   struct hs_err *err);

/* Ends the faults on 'target' (NULL: every fault) within 100 ms.  An
 * engine name clears that engine's faults, engine-wide and per replica;
 * "engine/replica" clears the ones set on that replica only. */
void sim_fleet_clear_faults(struct sim_fleet *f, const char *target);

/* Closes every port, joins the thread, frees everything.  NULL is a no-op. */
void sim_fleet_stop(struct sim_fleet *f);

#endif
