/*
 * demo_cmd.c - `holoscope demo`: the whole product alive on any machine.
 *
 * One process runs a simulated fleet (src/sim: a vLLM-like model with two
 * replicas and an SGLang-like model with one, on simulated GPUs with
 * dcgm-exporter endpoints), writes a configuration that scrapes it and puts
 * the gateway in front of it with capture on, then runs `serve` with that
 * configuration on the main thread.  A load generator (src/sim/loadgen)
 * sends streaming requests through the gateway with a daily-shaped rate
 * compressed into --period, and faults are scheduled on the fleet so that
 * alerts fire within minutes.  SIGINT/SIGTERM stop serve; then the load and
 * the fleet stop and a temporary data directory is removed.
 *
 * Threading: the main thread runs serve's event loop; the fleet and the load
 * generator run their own threads; a small starter thread waits for the
 * gateway port and then starts the load.
 */
#include "cli/internal.h"

#include "sim/loadgen.h"
#include "sim/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char cli_help_demo[] =
    "NAME\n"
    "       holoscope demo - a simulated LLM fleet, observed end to end\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope demo [--listen HOST:PORT] [--gateway-listen HOST:PORT]\n"
    "                      [--data DIR] [--rate R] [--period DURATION]\n"
    "                      [--first-fault DURATION] [--no-faults] [--no-load]\n"
    "                      [--speed X] [--seed N] [SERVE OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "       Starts, in one process: simulated inference servers (a vLLM-like\n"
    "       model with two replicas and an SGLang-like model with one, each on\n"
    "       a simulated GPU with a dcgm-exporter endpoint), holoscope serve\n"
    "       with the dashboard, the API and the default rules, scraping the\n"
    "       fleet every 5 s, the gateway in front of the fleet with request\n"
    "       capture on, and background load through the gateway whose rate\n"
    "       follows a daily shape compressed into --period.  Faults are\n"
    "       scheduled on the fleet so that alerts fire within minutes: an error\n"
    "       burst, thermal throttling, a truncation spike, quality degradation,\n"
    "       KV-cache shrink and a replica going down, repeating every period.\n"
    "\n"
    "       The dashboard URL is printed at start.  Ctrl-C stops everything.\n"
    "       Data goes to a temporary directory, removed at exit, unless --data\n"
    "       is given.\n"
    "\n"
    "OPTIONS\n"
    "       --listen HOST:PORT\n"
    "              Dashboard, API and /metrics (default 127.0.0.1:9190).\n"
    "\n"
    "       --gateway-listen HOST:PORT\n"
    "              The gateway (default 127.0.0.1:9191); port 0 picks a free one.\n"
    "\n"
    "       --data DIR\n"
    "              Keep the store, the configuration and the captures in DIR.\n"
    "\n"
    "       --rate R\n"
    "              Mean request rate of the background load, requests/s\n"
    "              (default 3).\n"
    "\n"
    "       --period DURATION\n"
    "              Length of one simulated day and of the fault cycle\n"
    "              (default 10m).\n"
    "\n"
    "       --first-fault DURATION\n"
    "              When the first fault (an error burst) starts (default 20s).\n"
    "\n"
    "       --no-faults, --no-load\n"
    "              Schedule no faults; send no background load.\n"
    "\n"
    "       --speed X\n"
    "              Simulated engine speed factor (default 1).\n"
    "\n"
    "       --seed N\n"
    "              Seed of every random choice (default 1).\n"
    "\n"
    "       Any other option is passed to serve (see holoscope serve --help),\n"
    "       for example --log.format json.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 after Ctrl-C, 1 when something cannot start, 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope demo\n"
    "       holoscope demo --listen 127.0.0.1:9300 --data ./demo-data\n"
    "       holoscope demo --period 30m --rate 8\n";

#define DEMO_MAX_FAULTS     240
#define DEMO_MAX_SERVE_ARGS 64

struct demo {
    const char *listen;
    const char *gateway_listen;
    const char *data_dir; /* NULL: temporary */
    double rate;
    int64_t period_ms;
    int64_t first_fault_ms;
    bool faults;
    bool load;
    double speed;
    uint64_t seed;
    char tmp_dir[64];
    char gateway_host[128];
    int gateway_port;
    struct sim_fleet *fleet;
    struct loadgen *load_gen;
    pthread_mutex_t lock;
    bool is_stopping;
    pthread_t starter;
    bool has_starter;
    char *serve_argv[DEMO_MAX_SERVE_ARGS];
    int serve_argc;
};

/* Rate of the compressed day: low at night, a morning ramp, a midday peak
 * and an evening shoulder, t_s seconds into the run. */
static double demo_rate(void *arg, double t_s)
{
    const struct demo *d = arg;
    double period_s = (double)d->period_ms / 1000.0;
    double x = fmod(t_s, period_s) / period_s; /* 0..1: one day */
    double day = 0.55 - 0.45 * cos(2.0 * M_PI * x);
    double bump = 0.25 * exp(-pow((x - 0.7) / 0.06, 2.0)); /* evening shoulder */
    double r = d->rate * (0.35 + day + bump);
    return r < 0.2 ? 0.2 : r;
}

static int parse_duration_arg(const char *flag, const char *v, int64_t *out, struct hs_err *err)
{
    if (v == NULL)
        return hs_err_set(err, HS_EINVAL, "%s: missing value", flag);
    if (hs_parse_duration_ms(v, out) != HS_OK || *out <= 0)
        return hs_err_set(err, HS_EINVAL, "%s: \"%s\" is not a duration such as 20s or 10m", flag,
                          v);
    return HS_OK;
}

static int parse_double_arg(const char *flag, const char *v, double lo, double hi, double *out,
                            struct hs_err *err)
{
    if (v == NULL)
        return hs_err_set(err, HS_EINVAL, "%s: missing value", flag);
    if (hs_parse_double(v, out) != HS_OK || !(*out >= lo && *out <= hi))
        return hs_err_set(err, HS_EINVAL, "%s: \"%s\" is not a number in [%g, %g]", flag, v, lo,
                          hi);
    return HS_OK;
}

/* Splits --name=value / --name value; returns the value or NULL. */
static const char *flag_value(int argc, char **argv, int *i, const char *arg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static bool is_flag(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static int parse_args(struct demo *d, int argc, char **argv, struct hs_err *err)
{
    d->serve_argv[d->serve_argc++] = "serve";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        int rc = HS_OK;
        if (is_flag(a, "--listen")) {
            if ((v = flag_value(argc, argv, &i, a, "--listen")) == NULL)
                return hs_err_set(err, HS_EINVAL, "--listen: missing value");
            d->listen = v;
        } else if (is_flag(a, "--gateway-listen")) {
            if ((v = flag_value(argc, argv, &i, a, "--gateway-listen")) == NULL)
                return hs_err_set(err, HS_EINVAL, "--gateway-listen: missing value");
            d->gateway_listen = v;
        } else if (is_flag(a, "--data")) {
            if ((v = flag_value(argc, argv, &i, a, "--data")) == NULL || *v == '\0')
                return hs_err_set(err, HS_EINVAL, "--data: missing value");
            d->data_dir = v;
        } else if (is_flag(a, "--rate")) {
            rc = parse_double_arg("--rate", flag_value(argc, argv, &i, a, "--rate"), 0.01, 10000,
                                  &d->rate, err);
        } else if (is_flag(a, "--speed")) {
            rc = parse_double_arg("--speed", flag_value(argc, argv, &i, a, "--speed"), 0.01, 1000,
                                  &d->speed, err);
        } else if (is_flag(a, "--seed")) {
            double s = 0;
            rc = parse_double_arg("--seed", flag_value(argc, argv, &i, a, "--seed"), 0, 1e15, &s,
                                  err);
            d->seed = (uint64_t)s;
        } else if (is_flag(a, "--period")) {
            rc = parse_duration_arg("--period", flag_value(argc, argv, &i, a, "--period"),
                                    &d->period_ms, err);
            if (rc == HS_OK && d->period_ms < 60000)
                rc = hs_err_set(err, HS_EINVAL, "--period: must be at least 1m");
        } else if (is_flag(a, "--first-fault")) {
            rc = parse_duration_arg("--first-fault", flag_value(argc, argv, &i, a, "--first-fault"),
                                    &d->first_fault_ms, err);
        } else if (strcmp(a, "--no-faults") == 0) {
            d->faults = false;
        } else if (strcmp(a, "--no-load") == 0) {
            d->load = false;
        } else if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0) {
            return hs_err_set(err, HS_EINVAL,
                              "--config: the demo writes its own configuration; run "
                              "holoscope serve --config FILE for yours");
        } else if (a[0] == '-' && a[1] == '-') {
            /* a serve option: passed through with its value if it has one */
            if (d->serve_argc + 2 >= DEMO_MAX_SERVE_ARGS - 8)
                return hs_err_set(err, HS_ETOOBIG, "too many options");
            d->serve_argv[d->serve_argc++] = argv[i];
            if (strchr(a, '=') == NULL && i + 1 < argc && argv[i + 1][0] != '-')
                d->serve_argv[d->serve_argc++] = argv[++i];
        } else {
            return hs_err_set(err, HS_EINVAL,
                              "unexpected argument \"%s\" (see holoscope demo --help)", a);
        }
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

/* A free TCP port on 'host' (IPv4), for a gateway asked to listen on port 0:
 * the configuration needs a concrete port so the load knows where to go. */
static int free_port(const char *host)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static bool port_accepts(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- the fleet ---- */

static const char *const MODEL_LLAMA = "meta-llama/Llama-3.1-8B-Instruct";
static const char *const MODEL_QWEN = "Qwen/Qwen2.5-7B-Instruct";

static void add_fault(struct sim_fault *f, size_t *n, const char *kind, const char *target,
                      double magnitude, int64_t start_ms, int64_t duration_ms)
{
    if (*n >= DEMO_MAX_FAULTS)
        return;
    f[(*n)++] = (struct sim_fault){.kind = kind,
                                   .target = target,
                                   .magnitude = magnitude,
                                   .start_ms = start_ms,
                                   .duration_ms = duration_ms};
}

/* The fault cycle, repeated every period for a simulated week or until the
 * fault table is full.  Offsets are fractions of the period so that a
 * longer period spreads them out. */
static size_t demo_faults(const struct demo *d, struct sim_fault *f)
{
    size_t n = 0;
    int64_t p = d->period_ms;
    for (int cycle = 0; n + 6 <= DEMO_MAX_FAULTS; cycle++) {
        int64_t t0 = (int64_t)cycle * p;
        int64_t first = cycle == 0 ? d->first_fault_ms : p / 30;
        /* error burst on the SGLang model: LLMErrorRateHigh */
        add_fault(f, &n, "errors", "qwen", 0.25, t0 + first, p / 5);
        /* a throttling GPU behind one llama replica: GPUThermalThrottling, TTFT up */
        add_fault(f, &n, "throttle", "llama/1", 2.5, t0 + p * 15 / 100, p * 35 / 100);
        /* truncation spike: LLMTruncationRateHigh */
        add_fault(f, &n, "truncation", "llama", 0.3, t0 + p * 35 / 100, p / 4);
        /* degraded outputs: quality score and drift drop */
        add_fault(f, &n, "quality", "qwen", 0.6, t0 + p * 50 / 100, p / 5);
        /* KV-cache shrink: preemptions, TTFT up, LLMKVCacheFull */
        add_fault(f, &n, "kv_shrink", "llama/0", 0.3, t0 + p * 65 / 100, p / 5);
        /* a replica going down: ScrapeTargetDown, the gateway ejects it */
        add_fault(f, &n, "replica_down", "llama/1", 1, t0 + p * 85 / 100, p / 10);
    }
    return n;
}

static int start_fleet(struct demo *d, struct hs_err *err)
{
    struct sim_engine_config engines[2];
    sim_engine_config_defaults(&engines[0]);
    engines[0].name = "llama";
    engines[0].model = MODEL_LLAMA;
    engines[0].kind = SIM_VLLM;
    engines[0].replicas = 2;
    engines[0].output_len_sigma = 0.6;
    engines[0].kv_blocks = 160; /* a small KV pool: its use shows on the charts */
    sim_engine_config_defaults(&engines[1]);
    engines[1].name = "qwen";
    engines[1].model = MODEL_QWEN;
    engines[1].kind = SIM_SGLANG;
    engines[1].replicas = 1;
    engines[1].output_len_sigma = 0.6;
    engines[1].kv_blocks = 128;
    struct sim_fault *faults = hs_calloc(DEMO_MAX_FAULTS, sizeof(*faults));
    if (faults == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    struct sim_config c;
    sim_config_defaults(&c);
    c.host = "127.0.0.1";
    c.base_port = 0;
    c.engines = engines;
    c.n_engines = HS_ARRAY_LEN(engines);
    c.faults = faults;
    c.n_faults = d->faults ? demo_faults(d, faults) : 0;
    c.seed = d->seed;
    c.speed = d->speed;
    d->fleet = sim_fleet_start(&c, err);
    hs_free(faults);
    return d->fleet == NULL ? HS_EINVAL : HS_OK;
}

/* ---- the configuration serve runs with ---- */

static int write_config(struct demo *d, const char *dir, const char *path, struct hs_err *err)
{
    struct hs_buf b;
    hs_buf_init(&b, 1 << 20);
    int rc =
        hs_buf_printf(&b, "# Written by holoscope demo: the simulated fleet, scraped and "
                          "behind the gateway.\n"
                          "rules:\n  evaluation_interval: 5s\n"
                          "collectors:\n  gpu: false\n"
                          "pricing:\n  gpu_hour_dollars:\n    \"NVIDIA H100 80GB HBM3\": 2.49\n"
                          "  daily_budget_dollars: 150\n"
                          "scrape_configs:\n");
    size_t n = sim_fleet_endpoint_count(d->fleet);
    for (size_t i = 0; i < n && rc == HS_OK; i++) {
        struct sim_endpoint e;
        if (sim_fleet_endpoint(d->fleet, i, &e) != HS_OK)
            continue;
        const char *hostport = strstr(e.base_url, "://");
        hostport = hostport ? hostport + 3 : e.base_url;
        if (e.kind == SIM_ENDPOINT_REPLICA)
            rc = hs_buf_printf(&b,
                               "  - job_name: %s-%d\n    scrape_interval: 5s\n"
                               "    metrics_path: %s\n    static_configs:\n"
                               "      - targets: [\"%s\"]\n"
                               "        labels: {pod: \"%s-%d\", namespace: sim, "
                               "component: \"%s\"}\n",
                               e.engine, e.replica, e.metrics_path, hostport, e.engine, e.replica,
                               e.engine);
        else
            rc = hs_buf_printf(&b,
                               "  - job_name: dcgm-%s-node-%d\n    scrape_interval: 5s\n"
                               "    metrics_path: %s\n    static_configs:\n"
                               "      - targets: [\"%s\"]\n",
                               e.engine, e.replica, e.metrics_path, hostport);
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(&b, "gateway:\n  listen: \"%s:%d\"\n  access_log: false\n  routes:\n",
                           d->gateway_host, d->gateway_port);
    const char *models[] = {MODEL_LLAMA, MODEL_QWEN};
    for (size_t m = 0; m < HS_ARRAY_LEN(models) && rc == HS_OK; m++) {
        rc = hs_buf_printf(&b, "    - model: ");
        if (rc == HS_OK)
            rc = hs_buf_json_str(&b, models[m], strlen(models[m]));
        if (rc == HS_OK)
            rc = hs_buf_printf(&b, "\n      upstreams:\n");
        for (size_t i = 0; i < n && rc == HS_OK; i++) {
            struct sim_endpoint e;
            if (sim_fleet_endpoint(d->fleet, i, &e) != HS_OK || e.kind != SIM_ENDPOINT_REPLICA ||
                strcmp(e.model, models[m]) != 0)
                continue;
            rc = hs_buf_printf(&b, "        - %s\n", e.base_url);
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(&b, "capture:\n  dir: ");
    if (rc == HS_OK) {
        char cap[4096];
        snprintf(cap, sizeof(cap), "%s/captures", dir);
        rc = hs_buf_json_str(&b, cap, strlen(cap));
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(&b, "\n  sampling_percentage: 100\n");
    if (rc == HS_OK)
        rc = hs_write_file_atomic(path, b.p, b.len, err);
    else
        hs_err_set(err, rc, "out of memory");
    hs_buf_cleanup(&b);
    return rc;
}

/* ---- the load ---- */

static void *starter_main(void *arg)
{
    struct demo *d = arg;
    /* wait for the gateway (serve starts it once the store is open) */
    for (int i = 0; i < 600; i++) {
        pthread_mutex_lock(&d->lock);
        bool stop = d->is_stopping;
        pthread_mutex_unlock(&d->lock);
        if (stop)
            return NULL;
        if (port_accepts(d->gateway_host, d->gateway_port))
            break;
        usleep(100 * 1000);
    }
    char url[256];
    snprintf(url, sizeof(url), "http://%s:%d", d->gateway_host, d->gateway_port);
    const char *models[] = {MODEL_LLAMA, MODEL_QWEN};
    const double weights[] = {2, 1};
    struct loadgen_config c;
    loadgen_config_defaults(&c);
    c.url = url;
    c.api = "chat";
    c.models = models;
    c.weights = weights;
    c.n_models = HS_ARRAY_LEN(models);
    c.stream = true;
    c.rate = d->rate;
    c.rate_fn = demo_rate;
    c.rate_arg = d;
    c.concurrency = 256;
    c.duration_ms = 0;
    c.num_requests = INT64_MAX / 2;
    c.input_len_mean = 200;
    c.input_len_spread = 150;
    c.output_len_mean = 800;   /* max_tokens: well above the natural lengths, so that */
    c.output_len_spread = 100; /* only the truncation fault makes truncation common */
    c.seed = d->seed;
    c.timeout_ms = 120000;
    c.connect_timeout_ms = 5000;
    struct hs_err err = {0};
    struct loadgen *g = loadgen_start(&c, &err);
    if (g == NULL) {
        hs_log(HS_LOG_ERROR, "demo: cannot start the load", HS_LSTR("err", err.msg));
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    if (d->is_stopping) {
        pthread_mutex_unlock(&d->lock);
        loadgen_stop(g);
        loadgen_free(g);
        return NULL;
    }
    d->load_gen = g;
    pthread_mutex_unlock(&d->lock);
    hs_log(HS_LOG_INFO, "demo: load started", HS_LSTR("gateway", url),
           HS_LF64("mean_rate", d->rate));
    return NULL;
}

static void print_banner(const struct demo *d, const char *dir)
{
    char host[128] = "127.0.0.1";
    int port = 9190;
    if (cli_split_hostport(d->listen, host, sizeof(host), &port) != HS_OK)
        port = -1;
    printf("holoscope demo\n");
    if (port > 0)
        printf("  dashboard   http://%s:%d/\n", host, port);
    else
        printf("  dashboard   see the \"listening\" log line for the port\n");
    printf("  gateway     http://%s:%d/v1  (models: %s, %s)\n", d->gateway_host, d->gateway_port,
           MODEL_LLAMA, MODEL_QWEN);
    printf("  data        %s%s\n", dir, d->data_dir ? "" : " (removed at exit)");
    size_t n = sim_fleet_endpoint_count(d->fleet);
    for (size_t i = 0; i < n; i++) {
        struct sim_endpoint e;
        if (sim_fleet_endpoint(d->fleet, i, &e) != HS_OK)
            continue;
        if (e.kind == SIM_ENDPOINT_REPLICA)
            printf("  simulated   %-8s %s replica %d  %s\n", e.backend, e.engine, e.replica,
                   e.base_url);
        else
            printf("  simulated   dcgm     %s node %d  %s%s\n", e.engine, e.replica, e.base_url,
                   e.metrics_path);
    }
    if (d->load)
        printf("  load        %.3g requests/s on average, daily shape every %llds\n", d->rate,
               (long long)(d->period_ms / 1000));
    if (d->faults)
        printf("  faults      first at %llds (error burst), then throttling, truncation, "
               "quality,\n              KV-cache shrink and a replica down, every %llds\n",
               (long long)(d->first_fault_ms / 1000), (long long)(d->period_ms / 1000));
    printf("  Ctrl-C stops everything.\n");
    fflush(stdout);
}

int cli_cmd_demo(int argc, char **argv, char **envp)
{
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_demo, stdout);
        return CLI_EXIT_OK;
    }
    struct demo d = {.listen = "127.0.0.1:9190",
                     .gateway_listen = "127.0.0.1:9191",
                     .rate = 3,
                     .period_ms = 600000,
                     .first_fault_ms = 20000,
                     .faults = true,
                     .load = true,
                     .speed = 1,
                     .seed = 1};
    struct hs_err err = {0};
    if (parse_args(&d, argc, argv, &err) != HS_OK ||
        cli_split_hostport(d.gateway_listen, d.gateway_host, sizeof(d.gateway_host),
                           &d.gateway_port) != HS_OK) {
        if (err.msg[0] == '\0')
            hs_err_set(&err, HS_EINVAL, "--gateway-listen: \"%s\" is not HOST:PORT",
                       d.gateway_listen);
        fprintf(stderr, "holoscope demo: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    if (d.gateway_port == 0 && (d.gateway_port = free_port(d.gateway_host)) <= 0) {
        fprintf(stderr, "holoscope demo: cannot find a free port for the gateway on %s\n",
                d.gateway_host);
        return CLI_EXIT_FAILURE;
    }
    const char *dir = d.data_dir;
    if (dir == NULL) {
        const char *t = getenv("TMPDIR");
        snprintf(d.tmp_dir, sizeof(d.tmp_dir), "%s/holoscope-demo-XXXXXX",
                 t != NULL && *t != '\0' && strlen(t) < 30 ? t : "/tmp");
        if (mkdtemp(d.tmp_dir) == NULL) {
            fprintf(stderr, "holoscope demo: cannot create a temporary directory: %s\n",
                    strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        dir = d.tmp_dir;
    } else if (hs_mkdir_p(dir, &err) != HS_OK) {
        fprintf(stderr, "holoscope demo: %s\n", err.msg);
        return CLI_EXIT_FAILURE;
    }
    int code = CLI_EXIT_FAILURE;
    pthread_mutex_init(&d.lock, NULL);
    char config_path[4096], store_dir[4096];
    snprintf(config_path, sizeof(config_path), "%s/demo.yml", dir);
    snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
    if (start_fleet(&d, &err) != HS_OK) {
        fprintf(stderr, "holoscope demo: cannot start the simulated fleet: %s\n", err.msg);
        goto out;
    }
    if (write_config(&d, dir, config_path, &err) != HS_OK) {
        fprintf(stderr, "holoscope demo: cannot write %s: %s\n", config_path, err.msg);
        goto out;
    }
    print_banner(&d, dir);
    if (d.load && pthread_create(&d.starter, NULL, starter_main, &d) == 0)
        d.has_starter = true;
    char *sargv[DEMO_MAX_SERVE_ARGS];
    int sargc = 0;
    for (int i = 0; i < d.serve_argc; i++)
        sargv[sargc++] = d.serve_argv[i];
    sargv[sargc++] = "--config";
    sargv[sargc++] = config_path;
    sargv[sargc++] = "--data";
    sargv[sargc++] = store_dir;
    sargv[sargc++] = "--listen";
    sargv[sargc++] = (char *)d.listen;
    sargv[sargc] = NULL;
    code = cli_cmd_serve(sargc, sargv, envp);
out:
    pthread_mutex_lock(&d.lock);
    d.is_stopping = true;
    pthread_mutex_unlock(&d.lock);
    if (d.has_starter)
        pthread_join(d.starter, NULL);
    if (d.load_gen != NULL) {
        loadgen_stop(d.load_gen);
        loadgen_free(d.load_gen);
    }
    sim_fleet_stop(d.fleet);
    pthread_mutex_destroy(&d.lock);
    if (d.data_dir == NULL && d.tmp_dir[0] != '\0')
        nftw(d.tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return code;
}
