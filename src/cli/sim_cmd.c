/*
 * sim_cmd.c - `holoscope sim`: runs a fleet of simulated inference engines
 * (vLLM- and SGLang-like OpenAI servers on simulated GPUs, with DCGM
 * exporters) on 127.0.0.1, prints every endpoint, and runs until SIGINT or
 * SIGTERM.  The fleet lives on its own thread; the main thread only waits
 * for the signal (blocked everywhere and taken with sigwait).
 */
#include "cli/internal.h"

#include "sim/sim.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

const char cli_help_sim[] =
    "NAME\n"
    "       holoscope sim - simulated inference engines and GPUs\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope sim [--config FILE] [--engine NAME:KIND:MODEL:REPLICAS]...\n"
    "                     [--fault KIND:TARGET[:MAGNITUDE[:DURATION]]]...\n"
    "                     [--port N] [--speed X] [--seed N]\n"
    "\n"
    "DESCRIPTION\n"
    "       Starts simulated OpenAI-compatible inference servers on 127.0.0.1.\n"
    "       Each replica is a discrete-event model of continuous batching: a\n"
    "       queue, prefill and decode steps whose time grows with the batch and\n"
    "       the context, KV-cache blocks with preemption when they run out, and\n"
    "       max_tokens truncation.  Every replica has its own port serving\n"
    "       POST /v1/chat/completions and /v1/completions (streamed as SSE or\n"
    "       answered as JSON, stream_options.include_usage honoured), GET\n"
    "       /v1/models, /health, /metrics in vLLM's (V1) or SGLang's format, and\n"
    "       the fault control endpoint /sim/faults (POST {\"kind\",\"magnitude\",\n"
    "       \"duration_s\"}, GET, DELETE).  Every simulated node of up to 8 GPUs\n"
    "       has a dcgm-exporter /metrics port whose utilisation, memory, power,\n"
    "       temperature and clock-event reasons follow the load.\n"
    "\n"
    "       Every endpoint is printed on standard output, one a line:\n"
    "         replica engine=NAME backend=vllm model=MODEL replica=0 url=URL metrics=/metrics\n"
    "         node engine=NAME backend=dcgm node=0 url=URL metrics=/metrics\n"
    "       followed by the line \"ready\".\n"
    "\n"
    "       Without --config and --engine the fleet is a vLLM engine with two\n"
    "       replicas (llama-vllm) and an SGLang engine with one (qwen-sglang).\n"
    "\n"
    "OPTIONS\n"
    "       --config FILE\n"
    "              YAML file with the fleet: host, base_port, seed, speed,\n"
    "              gpus_per_node, engines (name, model, kind, replicas,\n"
    "              gpus_per_replica, gpu_model, kv_blocks, block_size,\n"
    "              max_num_seqs, max_model_len, default_max_tokens, step_base_ms,\n"
    "              step_per_seq_ms, step_per_kv_ktok_ms, prefill_per_token_ms,\n"
    "              prompt_len_median, prompt_len_sigma, output_len_median,\n"
    "              output_len_sigma, weights_gib, gpu_memory_gib, kv_cache_gib,\n"
    "              gpu_power_idle_w, gpu_power_max_w) and faults (kind, target,\n"
    "              magnitude, start, duration), at the top level or under sim:.\n"
    "\n"
    "       --engine NAME:KIND:MODEL:REPLICAS\n"
    "              Adds an engine (KIND vllm or sglang) with default settings;\n"
    "              replaces the engines of --config.  May be repeated.\n"
    "\n"
    "       --fault KIND:TARGET[:MAGNITUDE[:DURATION]]\n"
    "              Starts a fault at once: throttle, kv_shrink, errors,\n"
    "              truncation, quality, replica_down or idle_gpu, on an engine\n"
    "              NAME or one replica NAME/INDEX; DURATION like 30s or 5m.\n"
    "\n"
    "       --port N\n"
    "              First port; the following ones are counted up from it.\n"
    "              Default 0: the system picks free ports.\n"
    "\n"
    "       --speed X\n"
    "              Divides every engine step time by X (default 1: real time).\n"
    "\n"
    "       --seed N\n"
    "              Seed of every random choice (default 1).\n"
    "\n"
    "EXIT STATUS\n"
    "       0 after a clean stop on SIGINT or SIGTERM, 1 when the fleet cannot\n"
    "       start, 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope sim\n"
    "       holoscope sim --engine llama:vllm:meta-llama/Llama-3.1-8B-Instruct:3 --port 8100\n"
    "       holoscope sim --fault throttle:llama-vllm/0:2:5m\n"
    "       curl -XPOST localhost:8100/sim/faults -d "
    "'{\"kind\":\"kv_shrink\",\"duration_s\":60}'\n";

#define MAX_CLI_ENGINES 64
#define MAX_CLI_FAULTS  64

struct sim_args {
    const char *config_file;
    struct sim_engine_config engines[MAX_CLI_ENGINES];
    size_t n_engines;
    struct sim_fault faults[MAX_CLI_FAULTS];
    size_t n_faults;
    char *specs[MAX_CLI_ENGINES + MAX_CLI_FAULTS]; /* split copies of the option values */
    size_t n_specs;
    int port;
    bool has_port;
    double speed;
    uint64_t seed;
    bool has_seed;
};

static char *keep_spec(struct sim_args *a, const char *s)
{
    if (a->n_specs >= HS_ARRAY_LEN(a->specs))
        return NULL;
    char *copy = hs_strdup(s);
    if (copy)
        a->specs[a->n_specs++] = copy;
    return copy;
}

/* NAME:KIND:MODEL:REPLICAS; MODEL may itself hold colons. */
static int parse_engine_spec(struct sim_args *a, const char *s)
{
    if (a->n_engines >= MAX_CLI_ENGINES)
        return -1;
    char *copy = keep_spec(a, s);
    if (!copy)
        return -1;
    char *c1 = strchr(copy, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char *c3 = strrchr(copy, ':');
    if (!c1 || !c2 || c3 == c2 || c1 == copy)
        return -1;
    *c1 = *c2 = *c3 = '\0';
    struct sim_engine_config *e = &a->engines[a->n_engines];
    sim_engine_config_defaults(e);
    e->name = copy;
    if (strcmp(c1 + 1, "vllm") == 0)
        e->kind = SIM_VLLM;
    else if (strcmp(c1 + 1, "sglang") == 0)
        e->kind = SIM_SGLANG;
    else
        return -1;
    e->model = c2 + 1;
    int64_t n;
    if (!*e->model || hs_parse_i64(c3 + 1, &n) != HS_OK || n < 1 || n > 64)
        return -1;
    e->replicas = (int)n;
    a->n_engines++;
    return 0;
}

/* KIND:TARGET[:MAGNITUDE[:DURATION]]; TARGET may be NAME/INDEX. */
static int parse_fault_spec(struct sim_args *a, const char *s)
{
    if (a->n_faults >= MAX_CLI_FAULTS)
        return -1;
    char *copy = keep_spec(a, s);
    if (!copy)
        return -1;
    char *parts[4] = {copy, NULL, NULL, NULL};
    int n = 1;
    for (char *p = copy; *p && n < 4; p++)
        if (*p == ':') {
            *p = '\0';
            parts[n++] = p + 1;
        }
    if (n < 2 || !*parts[1])
        return -1;
    struct sim_fault *f = &a->faults[a->n_faults];
    memset(f, 0, sizeof(*f));
    f->kind = parts[0];
    f->target = parts[1];
    if (parts[2] && *parts[2] &&
        (hs_parse_double(parts[2], &f->magnitude) != HS_OK || !(f->magnitude >= 0)))
        return -1;
    if (parts[3] && hs_parse_duration_ms(parts[3], &f->duration_ms) != HS_OK)
        return -1;
    a->n_faults++;
    return 0;
}

static int parse_args(int argc, char **argv, struct sim_args *a)
{
    for (int i = 1; i < argc; i += 2) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(o, "--config") == 0 && v) {
            a->config_file = v;
        } else if (strcmp(o, "--engine") == 0 && v) {
            bad = parse_engine_spec(a, v);
        } else if (strcmp(o, "--fault") == 0 && v) {
            bad = parse_fault_spec(a, v);
        } else if (strcmp(o, "--port") == 0 && v) {
            int64_t p;
            bad = hs_parse_i64(v, &p) != HS_OK || p < 0 || p > 65535;
            a->port = (int)p;
            a->has_port = true;
        } else if (strcmp(o, "--speed") == 0 && v) {
            bad = hs_parse_double(v, &a->speed) != HS_OK || !(a->speed > 0);
        } else if (strcmp(o, "--seed") == 0 && v) {
            bad = hs_parse_u64(v, &a->seed) != HS_OK;
            a->has_seed = true;
        } else {
            fprintf(stderr, "holoscope sim: unknown option or missing value: %s\n", o);
            return -1;
        }
        if (bad) {
            const char *want = strcmp(o, "--engine") == 0
                                   ? " (expected NAME:KIND:MODEL:REPLICAS, KIND vllm or sglang, "
                                     "REPLICAS 1..64)"
                               : strcmp(o, "--fault") == 0
                                   ? " (expected KIND:TARGET[:MAGNITUDE[:DURATION]])"
                                   : "";
            fprintf(stderr, "holoscope sim: bad value for %s: %s%s\n", o, v, want);
            return -1;
        }
    }
    return 0;
}

static void default_fleet(struct sim_args *a)
{
    struct sim_engine_config *e = &a->engines[0];
    sim_engine_config_defaults(e);
    e->replicas = 2;
    e = &a->engines[1];
    sim_engine_config_defaults(e);
    e->name = "qwen-sglang";
    e->model = "Qwen/Qwen3-8B";
    e->kind = SIM_SGLANG;
    a->n_engines = 2;
}

static void print_endpoints(const struct sim_fleet *f)
{
    for (size_t i = 0; i < sim_fleet_endpoint_count(f); i++) {
        struct sim_endpoint ep;
        if (sim_fleet_endpoint(f, i, &ep) != HS_OK)
            continue;
        if (ep.kind == SIM_ENDPOINT_REPLICA)
            printf("replica engine=%s backend=%s model=%s replica=%d url=%s metrics=%s\n",
                   ep.engine, ep.backend, ep.model, ep.replica, ep.base_url, ep.metrics_path);
        else
            printf("node engine=%s backend=%s node=%d url=%s metrics=%s\n", ep.engine, ep.backend,
                   ep.replica, ep.base_url, ep.metrics_path);
    }
    printf("ready\n");
    fflush(stdout);
}

static int run_fleet(struct sim_config *c)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* blocked before the fleet thread starts, so only sigwait takes them */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct hs_err err;
    hs_err_clear(&err);
    struct sim_fleet *f = sim_fleet_start(c, &err);
    if (!f) {
        fprintf(stderr, "holoscope sim: %s\n", err.msg);
        return CLI_EXIT_FAILURE;
    }
    print_endpoints(f);
    int sig = 0;
    sigwait(&set, &sig);
    hs_log(HS_LOG_INFO, "sim stopping", HS_LSTR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    sim_fleet_stop(f);
    return CLI_EXIT_OK;
}

int cli_cmd_sim(int argc, char **argv, char **envp)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(cli_help_sim, stdout);
            return CLI_EXIT_OK;
        }
    static struct sim_args a; /* large; main thread only */
    memset(&a, 0, sizeof(a));
    a.speed = 0;
    int code = CLI_EXIT_USAGE;
    struct hs_ydoc *doc = NULL;
    struct sim_config c;
    sim_config_defaults(&c);
    if (parse_args(argc, argv, &a) != 0)
        goto out;
    code = CLI_EXIT_FAILURE;
    if (a.config_file) {
        struct hs_err err;
        doc = hs_ydoc_load(a.config_file, &err);
        if (!doc || sim_config_parse(doc, doc->root, &c, &err) != HS_OK) {
            fprintf(stderr, "holoscope sim: %s\n", err.msg);
            goto out;
        }
    }
    if (a.n_engines > 0 || c.n_engines == 0) {
        if (a.n_engines == 0)
            default_fleet(&a);
        c.engines = a.engines;
        c.n_engines = a.n_engines;
    }
    if (a.n_faults > 0) {
        c.faults = a.faults;
        c.n_faults = a.n_faults;
    }
    if (a.has_port)
        c.base_port = a.port;
    if (a.speed > 0)
        c.speed = a.speed;
    if (a.has_seed)
        c.seed = a.seed;
    code = run_fleet(&c);
out:
    sim_config_free(&c);
    hs_ydoc_free(doc);
    for (size_t i = 0; i < a.n_specs; i++)
        hs_free(a.specs[i]);
    return code;
}
