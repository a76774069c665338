/*
 * engine.c - the discrete-event model of one replica doing continuous
 * batching (sim.h describes the model; this file is its scheduler).
 *
 * Step cycle, all on the caller's clock:
 *   start (at now):  1. every running request that decodes this step gets
 *                       room for one more token; when no KV block is free
 *                       the newest running request is preempted (blocks
 *                       freed, back to the head of the queue, to be
 *                       recomputed: prompt + tokens so far are prefilled
 *                       again);
 *                    2. unless step 1 preempted, waiting requests whose
 *                       arrival has come are admitted head first while the
 *                       batch, the KV pool and the step's token budget
 *                       allow (FCFS: a head that does not fit blocks the
 *                       rest);
 *                    3. the step time is computed from the batch.
 *   end (now + step time): every request in the batch gets one token
 *                    (the first one for those just prefilled), finished
 *                    requests release their blocks.
 * Events fire at the end of the step.  Aborts from inside an event are
 * deferred until the step's events have all fired.
 * Invariant: kv_used is the sum of the running requests' blocks and never
 * exceeds the usable total except after a kv_shrink (then no admission
 * happens until enough is freed, and decodes preempt).
 */
#include "sim/internal.h"

#include <math.h>
#include <string.h>

/* Prefill tokens one step may process (vLLM max_num_batched_tokens); a
 * single longer prompt is still admitted alone. */
#define SIM_STEP_TOKEN_BUDGET 8192
/* Waiting-queue ceiling: submits beyond it are refused. */
#define SIM_MAX_WAITING 100000

struct sim_req {
    uint64_t id;
    int prompt;     /* prompt tokens */
    int max_tokens; /* output ceiling */
    int natural;    /* output length the model "wants" */
    int generated;  /* output tokens so far */
    int blocks;     /* KV blocks held */
    int preemptions;
    bool needs_prefill; /* admitted this step: prefill prompt + generated */
    bool abort_pending;
    int64_t arrival_us, scheduled_us, first_token_us, last_token_us;
    sim_event_fn *fn;
    void *arg;
};

/* ---- random numbers ---- */

void sim__rng_seed(struct sim_rng *r, uint64_t seed)
{
    r->s = seed ^ 0x6a09e667f3bcc909ull;
}

uint64_t sim__rng_next(struct sim_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double sim__rng_unit(struct sim_rng *r)
{
    return (double)(sim__rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double sim__rng_lognormal(struct sim_rng *r, double median, double sigma)
{
    double u1 = sim__rng_unit(r), u2 = sim__rng_unit(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    return median * exp(sigma * z);
}

double sim__rng_exp(struct sim_rng *r, double mean)
{
    double u = sim__rng_unit(r);
    return -mean * log1p(-u);
}

/* ---- histograms ---- */

void sim__hist_init(struct sim_hist *h, const double *le, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->le = le;
    h->n = n > SIM_HIST_MAX_BOUNDS ? SIM_HIST_MAX_BOUNDS : n;
}

void sim__hist_observe(struct sim_hist *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->le[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

/* ---- configuration ---- */

void sim_engine_config_defaults(struct sim_engine_config *c)
{
    memset(c, 0, sizeof(*c));
    c->name = "llama-vllm";
    c->model = "meta-llama/Llama-3.1-8B-Instruct";
    c->kind = SIM_VLLM;
    c->replicas = 1;
    c->gpus_per_replica = 1;
    c->gpu_model = "NVIDIA H100 80GB HBM3";
    c->kv_blocks = 16384;
    c->block_size = 16;
    c->max_num_seqs = 256;
    c->max_model_len = 8192;
    c->default_max_tokens = 1024;
    c->step_base_ms = 7.0;
    c->step_per_seq_ms = 0.06;
    c->step_per_kv_ktok_ms = 0.04;
    c->prefill_per_token_ms = 0.06;
    c->prompt_len_median = 400;
    c->prompt_len_sigma = 0.9;
    c->output_len_median = 160;
    c->output_len_sigma = 0.8;
    c->weights_gib = 15.0;
    c->gpu_memory_gib = 80.0;
    c->kv_cache_gib = 56.0;
    c->gpu_power_idle_w = 70.0;
    c->gpu_power_max_w = 690.0;
}

static int check_config(const struct sim_engine_config *c, struct hs_err *err)
{
    if (c->replicas < 1 || c->replicas > 64)
        return hs_err_set(err, HS_EINVAL, "engine %s: replicas must be 1..64", c->name);
    if (c->gpus_per_replica < 1 || c->gpus_per_replica > 16)
        return hs_err_set(err, HS_EINVAL, "engine %s: gpus_per_replica must be 1..16", c->name);
    if (c->block_size < 1 || c->block_size > 1024 || c->kv_blocks < 1 || c->kv_blocks > 10000000)
        return hs_err_set(err, HS_EINVAL, "engine %s: kv_blocks or block_size out of range",
                          c->name);
    if (c->max_num_seqs < 1 || c->max_num_seqs > 4096)
        return hs_err_set(err, HS_EINVAL, "engine %s: max_num_seqs must be 1..4096", c->name);
    if (c->max_model_len < 2 || c->max_model_len > 1048576)
        return hs_err_set(err, HS_EINVAL, "engine %s: max_model_len must be 2..1048576", c->name);
    if (c->default_max_tokens < 1)
        return hs_err_set(err, HS_EINVAL, "engine %s: default_max_tokens must be >= 1", c->name);
    if (!(c->step_base_ms > 0) || c->step_per_seq_ms < 0 || c->step_per_kv_ktok_ms < 0 ||
        c->prefill_per_token_ms < 0 || c->step_base_ms > 60000)
        return hs_err_set(err, HS_EINVAL, "engine %s: step-time coefficients out of range",
                          c->name);
    if (!(c->prompt_len_median >= 1) || !(c->output_len_median >= 1) ||
        !(c->prompt_len_sigma >= 0) || !(c->output_len_sigma >= 0) || c->prompt_len_sigma > 5 ||
        c->output_len_sigma > 5)
        return hs_err_set(err, HS_EINVAL, "engine %s: length distribution out of range", c->name);
    if (!(c->gpu_memory_gib > 0) || c->weights_gib < 0 || c->kv_cache_gib < 0 ||
        c->gpu_power_idle_w < 0 || c->gpu_power_max_w < c->gpu_power_idle_w)
        return hs_err_set(err, HS_EINVAL, "engine %s: GPU memory or power out of range", c->name);
    return HS_OK;
}

struct sim_engine *sim_engine_new(const struct sim_engine_config *c, uint64_t seed, double speed,
                                  struct hs_err *err)
{
    if (check_config(c, err) != HS_OK)
        return NULL;
    if (!(speed > 0) || speed > 1e6) {
        hs_err_set(err, HS_EINVAL, "speed must be > 0");
        return NULL;
    }
    struct sim_engine *e = hs_calloc(1, sizeof(*e));
    if (!e) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    e->running = hs_calloc((size_t)c->max_num_seqs, sizeof(*e->running));
    if (!e->running) {
        hs_free(e);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    e->cfg = *c;
    e->speed = speed;
    sim__rng_seed(&e->rng, seed);
    e->step_end_us = -1;
    e->next_id = 1;
    e->faults.step_time_factor = 1.0;
    e->faults.kv_fraction = 1.0;
    e->faults.truncation_ratio = 0.0;
    for (int i = 0; i < SIM_H_COUNT; i++) {
        size_t n = 0;
        const double *le = sim__hist_bounds(c->kind, i, c->max_model_len, &n);
        sim__hist_init(&e->h[i], le, n);
    }
    return e;
}

void sim_engine_free(struct sim_engine *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n_running; i++)
        hs_free(e->running[i]);
    for (int i = 0; i < e->n_waiting; i++)
        hs_free(e->waiting[i]);
    hs_free(e->running);
    hs_free(e->waiting);
    hs_free(e);
}

int sim__engine_kv_total(const struct sim_engine *e)
{
    double f = e->faults.kv_fraction;
    if (!(f > 0) || f > 1)
        f = 1;
    int n = (int)((double)e->cfg.kv_blocks * f);
    return n < 1 ? 1 : n;
}

void sim_engine_set_faults(struct sim_engine *e, const struct sim_engine_faults *f)
{
    e->faults = *f;
    if (!(e->faults.step_time_factor > 0))
        e->faults.step_time_factor = 1.0;
    if (!(e->faults.kv_fraction > 0) || e->faults.kv_fraction > 1)
        e->faults.kv_fraction = 1.0;
}

static int blocks_for(const struct sim_engine *e, int tokens)
{
    return (tokens + e->cfg.block_size - 1) / e->cfg.block_size;
}

static int clamp_len(double v, int lo, int hi)
{
    if (!(v >= lo))
        return lo;
    if (v > hi)
        return hi;
    return (int)v;
}

int sim_engine_submit(struct sim_engine *e, const struct sim_request_params *p, int64_t now_us,
                      sim_event_fn *fn, void *arg, uint64_t *id_out, struct hs_err *err)
{
    if (!fn)
        return hs_err_set(err, HS_EINVAL, "no event callback");
    if (e->n_waiting >= SIM_MAX_WAITING)
        return hs_err_set(err, HS_ETOOBIG, "waiting queue full (%d requests)", SIM_MAX_WAITING);
    int limit = e->cfg.max_model_len;
    int prompt = p->prompt_tokens;
    if (prompt <= 0)
        prompt = clamp_len(
            sim__rng_lognormal(&e->rng, e->cfg.prompt_len_median, e->cfg.prompt_len_sigma), 1,
            limit / 2);
    if (prompt > limit - 1)
        return hs_err_set(err, HS_EINVAL,
                          "prompt of %d tokens exceeds the maximum context length of %d tokens",
                          prompt, limit);
    if (blocks_for(e, prompt + 1) > e->cfg.kv_blocks)
        return hs_err_set(err, HS_EINVAL, "prompt of %d tokens does not fit the KV cache", prompt);
    int max_tokens = p->max_tokens > 0 ? p->max_tokens : e->cfg.default_max_tokens;
    if (max_tokens > limit - prompt)
        max_tokens = limit - prompt;
    int natural = p->output_tokens;
    if (natural <= 0)
        natural = clamp_len(
            sim__rng_lognormal(&e->rng, e->cfg.output_len_median, e->cfg.output_len_sigma), 1,
            limit);
    if (e->faults.truncation_ratio > 0 && sim__rng_unit(&e->rng) < e->faults.truncation_ratio)
        natural = max_tokens + 1;
    if (e->n_waiting == e->cap_waiting) {
        int cap = e->cap_waiting ? e->cap_waiting * 2 : 64;
        void *nw = hs_reallocarray(e->waiting, (size_t)cap, sizeof(*e->waiting));
        if (!nw)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        e->waiting = nw;
        e->cap_waiting = cap;
    }
    struct sim_req *r = hs_calloc(1, sizeof(*r));
    if (!r)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    r->id = e->next_id++;
    r->prompt = prompt;
    r->max_tokens = max_tokens;
    r->natural = natural;
    r->arrival_us = now_us;
    r->scheduled_us = -1;
    r->first_token_us = -1;
    r->fn = fn;
    r->arg = arg;
    e->waiting[e->n_waiting++] = r;
    sim__hist_observe(&e->h[SIM_H_MAX_TOKENS], max_tokens);
    if (id_out)
        *id_out = r->id;
    return HS_OK;
}

static void fill_info(const struct sim_req *r, int64_t now, int reason,
                      struct sim_request_info *info)
{
    info->id = r->id;
    info->prompt_tokens = r->prompt;
    info->max_tokens = r->max_tokens;
    info->output_tokens = r->generated;
    info->finish_reason = reason;
    info->preemptions = r->preemptions;
    info->arrival_us = r->arrival_us;
    info->scheduled_us = r->scheduled_us;
    info->first_token_us = r->first_token_us;
    info->now_us = now;
}

static void observe_finish(struct sim_engine *e, const struct sim_req *r, int64_t now)
{
    double s = 1e-6;
    sim__hist_observe(&e->h[SIM_H_E2E], (double)(now - r->arrival_us) * s);
    sim__hist_observe(&e->h[SIM_H_PROMPT_TOKENS], r->prompt);
    sim__hist_observe(&e->h[SIM_H_GEN_TOKENS], r->generated);
    if (r->scheduled_us >= 0) {
        sim__hist_observe(&e->h[SIM_H_QUEUE], (double)(r->scheduled_us - r->arrival_us) * s);
        sim__hist_observe(&e->h[SIM_H_INFERENCE], (double)(now - r->scheduled_us) * s);
    }
    if (r->first_token_us >= 0 && r->scheduled_us >= 0) {
        sim__hist_observe(&e->h[SIM_H_PREFILL], (double)(r->first_token_us - r->scheduled_us) * s);
        sim__hist_observe(&e->h[SIM_H_DECODE], (double)(now - r->first_token_us) * s);
        if (r->generated > 1)
            sim__hist_observe(&e->h[SIM_H_TPOT],
                              (double)(now - r->first_token_us) * s / (double)(r->generated - 1));
    }
}

/* Removes running[i], keeping admission order. */
static void running_remove(struct sim_engine *e, int i)
{
    e->kv_used -= e->running[i]->blocks;
    e->running[i]->blocks = 0;
    memmove(&e->running[i], &e->running[i + 1], (size_t)(e->n_running - i - 1) * sizeof(void *));
    e->n_running--;
}

static void finish_req(struct sim_engine *e, struct sim_req *r, int reason, int64_t now)
{
    struct sim_request_info info;
    e->st.finished[reason]++;
    if (reason != SIM_FINISH_ABORT)
        observe_finish(e, r, now);
    fill_info(r, now, reason, &info);
    e->in_callback++;
    r->fn(r->arg, SIM_EVENT_FINISH, &info);
    e->in_callback--;
    hs_free(r);
}

void sim_engine_abort(struct sim_engine *e, uint64_t id, int64_t now_us)
{
    for (int i = 0; i < e->n_running; i++) {
        struct sim_req *r = e->running[i];
        if (r->id != id)
            continue;
        if (e->in_callback || e->step_end_us >= 0) {
            /* in the step under way: ends when the step does */
            r->abort_pending = true;
            e->abort_deferred = true;
            return;
        }
        running_remove(e, i);
        finish_req(e, r, SIM_FINISH_ABORT, now_us);
        return;
    }
    for (int i = 0; i < e->n_waiting; i++) {
        struct sim_req *r = e->waiting[i];
        if (r->id != id)
            continue;
        memmove(&e->waiting[i], &e->waiting[i + 1],
                (size_t)(e->n_waiting - i - 1) * sizeof(void *));
        e->n_waiting--;
        if (r->preemptions > 0 && e->retracted_now > 0)
            e->retracted_now--;
        finish_req(e, r, SIM_FINISH_ABORT, now_us);
        return;
    }
}

/* Preempts the newest running request: blocks freed, back to the queue head. */
static void preempt_newest(struct sim_engine *e)
{
    int i = e->n_running - 1;
    struct sim_req *r = e->running[i];
    running_remove(e, i);
    r->preemptions++;
    r->needs_prefill = false;
    e->st.preemptions++;
    e->retracted_now++;
    if (e->n_waiting == e->cap_waiting) {
        void *nw = hs_reallocarray(e->waiting, (size_t)(e->cap_waiting + 16), sizeof(void *));
        if (!nw) {
            /* cannot requeue: end it rather than lose it */
            finish_req(e, r, SIM_FINISH_ABORT, e->now_us);
            return;
        }
        e->waiting = nw;
        e->cap_waiting += 16;
    }
    memmove(&e->waiting[1], &e->waiting[0], (size_t)e->n_waiting * sizeof(void *));
    e->waiting[0] = r;
    e->n_waiting++;
}

/* Step start, phase 1: room for one more token for every decoding request. */
static bool reserve_decode(struct sim_engine *e)
{
    bool preempted = false;
    int total = sim__engine_kv_total(e);
    for (int i = 0; i < e->n_running; i++) {
        struct sim_req *r = e->running[i];
        int need = blocks_for(e, r->prompt + r->generated + 1) - r->blocks;
        while (need > 0 && e->kv_used + need > total) {
            preempt_newest(e);
            preempted = true;
            if (i >= e->n_running)
                return preempted; /* r itself was the newest */
        }
        if (need > 0) {
            r->blocks += need;
            e->kv_used += need;
        }
    }
    return preempted;
}

/* Step start, phase 2: admit waiting requests. Returns prefill tokens. */
static int admit(struct sim_engine *e)
{
    int total = sim__engine_kv_total(e), tokens = 0;
    while (e->n_waiting > 0 && e->n_running < e->cfg.max_num_seqs) {
        struct sim_req *r = e->waiting[0];
        if (r->arrival_us > e->now_us)
            break;
        int ctx = r->prompt + r->generated;
        int need = blocks_for(e, ctx + 1);
        if (e->kv_used + need > total)
            break;
        if (tokens > 0 && tokens + ctx > SIM_STEP_TOKEN_BUDGET)
            break;
        memmove(&e->waiting[0], &e->waiting[1], (size_t)(e->n_waiting - 1) * sizeof(void *));
        e->n_waiting--;
        if (r->preemptions > 0 && e->retracted_now > 0)
            e->retracted_now--;
        r->blocks = need;
        e->kv_used += need;
        r->needs_prefill = true;
        if (r->scheduled_us < 0)
            r->scheduled_us = e->now_us;
        e->running[e->n_running++] = r;
        tokens += ctx;
    }
    return tokens;
}

static void start_step(struct sim_engine *e)
{
    bool preempted = reserve_decode(e);
    int prefill = preempted ? 0 : admit(e);
    if (e->n_running == 0)
        return;
    double ctx = 0;
    for (int i = 0; i < e->n_running; i++)
        ctx += e->running[i]->prompt + e->running[i]->generated;
    const struct sim_engine_config *c = &e->cfg;
    double ms = c->step_base_ms + c->step_per_seq_ms * e->n_running +
                c->step_per_kv_ktok_ms * ctx / 1000.0 + c->prefill_per_token_ms * prefill;
    ms *= e->faults.step_time_factor / e->speed;
    int64_t us = (int64_t)(ms * 1000.0);
    if (us < 1)
        us = 1;
    int decodes = 0;
    for (int i = 0; i < e->n_running; i++)
        decodes += e->running[i]->needs_prefill ? 0 : 1;
    e->step_tokens = prefill + decodes;
    e->step_start_us = e->now_us;
    e->step_end_us = e->now_us + us;
}

static void finish_step(struct sim_engine *e)
{
    int64_t now = e->step_end_us;
    int64_t dur = now - e->step_start_us;
    e->now_us = now;
    e->step_end_us = -1;
    e->st.steps++;
    e->st.busy_us += dur;
    sim__hist_observe(&e->h[SIM_H_ITER_TOKENS], e->step_tokens);
    int produced = 0;
    e->in_callback++;
    for (int i = 0; i < e->n_running; i++) {
        struct sim_req *r = e->running[i];
        if (r->abort_pending)
            continue;
        if (r->needs_prefill) {
            r->needs_prefill = false;
            e->st.prompt_tokens += (uint64_t)(r->prompt + r->generated);
        }
        r->generated++;
        produced++;
        e->st.generation_tokens++;
        if (r->first_token_us < 0) {
            r->first_token_us = now;
            sim__hist_observe(&e->h[SIM_H_TTFT], (double)(now - r->arrival_us) * 1e-6);
        } else {
            sim__hist_observe(&e->h[SIM_H_ITL], (double)(now - r->last_token_us) * 1e-6);
        }
        r->last_token_us = now;
        struct sim_request_info info;
        fill_info(r, now, SIM_FINISH_STOP, &info);
        r->fn(r->arg, SIM_EVENT_TOKEN, &info);
    }
    e->in_callback--;
    /* smoothed generation throughput (tau 5 s) */
    double dt = (double)dur * 1e-6, a = 1.0 - exp(-dt / 5.0);
    if (dt > 0)
        e->gen_tput += a * ((double)produced / dt - e->gen_tput);
    for (int i = 0; i < e->n_running;) {
        struct sim_req *r = e->running[i];
        int target = r->natural < r->max_tokens ? r->natural : r->max_tokens;
        int reason = -1;
        if (r->abort_pending)
            reason = SIM_FINISH_ABORT;
        else if (r->generated >= target)
            reason = r->natural <= r->max_tokens ? SIM_FINISH_STOP : SIM_FINISH_LENGTH;
        if (reason < 0) {
            i++;
            continue;
        }
        running_remove(e, i);
        finish_req(e, r, reason, now);
    }
    e->abort_deferred = false;
}

void sim_engine_run_until(struct sim_engine *e, int64_t t_us)
{
    for (;;) {
        if (e->step_end_us >= 0) {
            if (e->step_end_us > t_us)
                return;
            finish_step(e);
            continue;
        }
        if (e->now_us > t_us)
            return;
        if (e->n_running == 0) {
            /* idle: jump to the next arrival, if it comes by t_us */
            if (e->n_waiting == 0 || e->waiting[0]->arrival_us > t_us) {
                e->now_us = t_us;
                return;
            }
            if (e->waiting[0]->arrival_us > e->now_us)
                e->now_us = e->waiting[0]->arrival_us;
        }
        start_step(e);
        if (e->step_end_us < 0) {
            if (e->n_running == 0 && e->n_waiting > 0 && e->waiting[0]->arrival_us <= e->now_us) {
                /* everything was preempted (admission comes next round), or the
                 * head cannot fit even an empty cache (KV shrunk): abort it */
                struct sim_req *r = e->waiting[0];
                if (blocks_for(e, r->prompt + r->generated + 1) > sim__engine_kv_total(e)) {
                    e->n_waiting--;
                    memmove(&e->waiting[0], &e->waiting[1], (size_t)e->n_waiting * sizeof(void *));
                    if (r->preemptions > 0 && e->retracted_now > 0)
                        e->retracted_now--;
                    finish_req(e, r, SIM_FINISH_ABORT, e->now_us);
                }
                continue;
            }
            e->now_us = t_us;
            return;
        }
    }
}

int64_t sim_engine_next_event_us(const struct sim_engine *e)
{
    return e->step_end_us;
}

void sim_engine_get_stats(const struct sim_engine *e, struct sim_engine_stats *out)
{
    *out = e->st;
    out->running = e->n_running;
    out->waiting = e->n_waiting;
    out->kv_blocks_total = sim__engine_kv_total(e);
    out->kv_blocks_used = e->kv_used;
    out->now_us = e->now_us;
}

int sim_engine_metrics(const struct sim_engine *e, struct hs_buf *out)
{
    if (e->cfg.kind == SIM_SGLANG)
        return sim__metrics_sglang(e, out);
    return sim__metrics_vllm(e, out);
}
