/*
 * bench_cmd.c - `holoscope bench URL`: load an OpenAI-compatible endpoint
 * with the load generator (sim/loadgen.h) and report client-side TTFT,
 * ITL, TPOT and E2E percentiles, throughput, goodput and errors by kind,
 * as text or JSON.
 *
 * SIGINT and SIGTERM are blocked in every thread and taken with
 * sigtimedwait on the main thread: the first one stops the run (requests
 * in flight are cancelled) and the report of what finished is printed.
 */
#include "cli/internal.h"

#include "http/http.h"
#include "sim/loadgen.h"

#include <jansson.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cli_help_bench[] =
    "NAME\n"
    "       holoscope bench - load an OpenAI-compatible endpoint and measure it as a\n"
    "       client sees it\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope bench URL [--model M]... [--rate R | --concurrency C]\n"
    "                       [--duration 60s | --requests N] [--prompts FILE.jsonl]\n"
    "                       [--input-len N] [--output-len N] [--no-stream]\n"
    "                       [--api chat|completions] [--slo-ttft 2s] [--slo-tpot 100ms]\n"
    "                       [--json] [--header 'K: V']... [--seed N]\n"
    "\n"
    "DESCRIPTION\n"
    "       Sends chat or legacy completion requests to URL (a base such as\n"
    "       http://127.0.0.1:8000, or the full /v1/chat/completions path) either open\n"
    "       loop, with Poisson arrivals at --rate requests per second, or closed loop,\n"
    "       keeping --concurrency requests in flight.  Each streamed answer is measured\n"
    "       with the gateway's own SSE parser and definitions, so bench and the\n"
    "       gateway agree: TTFT is the time from sending to the first event carrying\n"
    "       output (role-only and usage-only chunks do not count), ITL the gap\n"
    "       between two output events of one choice, TPOT (last - first output) /\n"
    "       (output tokens - 1) using the token count the server reports, and E2E\n"
    "       the time to the last byte.  Percentiles are exact (linear interpolation\n"
    "       between ranks) up to a million observations per quantity, and estimated\n"
    "       from a uniform reservoir beyond.\n"
    "\n"
    "       Errors are counted by kind: connect, timeout, http_4xx, http_5xx,\n"
    "       error_midstream (an error event after 200), stream_truncated (the stream\n"
    "       ended before [DONE]) and malformed.  Goodput counts the requests that\n"
    "       succeeded within every SLO given.  On a terminal, a progress line is\n"
    "       shown on standard error while the run lasts.  SIGINT stops the run and\n"
    "       prints the report of what finished.\n"
    "\n"
    "OPTIONS\n"
    "       --model M\n"
    "              Model to request; repeat to spread requests evenly over several.\n"
    "              Default: the first model listed by URL/v1/models.\n"
    "       --rate R\n"
    "              Open loop: mean arrivals per second (Poisson).  With --concurrency\n"
    "              as well, at most C requests are in flight; later arrivals wait.\n"
    "       --concurrency C\n"
    "              Closed loop: C requests in flight (default 1 without --rate).\n"
    "       --duration D\n"
    "              Stop sending after D (\"60s\", \"5m\"); requests in flight finish.\n"
    "       --requests N\n"
    "              Stop after N requests.  Without --duration and --requests: 100.\n"
    "       --prompts FILE\n"
    "              JSONL, one object per line with \"prompt\" (a string) or \"messages\"\n"
    "              (a chat array), and optionally \"max_tokens\" or \"output_len\".\n"
    "       --input-len N, --input-spread S\n"
    "              Synthetic prompts of N +- S words (default 128 +- 0).\n"
    "       --output-len N, --output-spread S\n"
    "              max_tokens of each request, N +- S (default 128 +- 0).\n"
    "       --ignore-eos\n"
    "              Send \"ignore_eos\": true (vLLM, SGLang) so outputs reach max_tokens.\n"
    "       --no-stream\n"
    "              Ask for whole JSON answers: only E2E is measured.\n"
    "       --api chat|completions\n"
    "              /v1/chat/completions (default) or /v1/completions.\n"
    "       --slo-ttft D, --slo-tpot D, --slo-e2e D\n"
    "              Goodput thresholds (\"2s\", \"100ms\").\n"
    "       --header 'K: V'\n"
    "              Extra request header, e.g. 'Authorization: Bearer KEY'; repeatable.\n"
    "       --timeout D\n"
    "              Per-request timeout (default 10m).\n"
    "       --seed N\n"
    "              Seed of every random choice (default 1).\n"
    "       --json\n"
    "              Print the report as one JSON object instead of text.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 when the run completed (whatever the errors), 1 when it could not run\n"
    "       (no model found, prompts file unreadable), 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope bench http://127.0.0.1:9191 --model llama-3.1-8b --rate 5 --duration 60s\n"
    "       holoscope bench http://127.0.0.1:8000 --concurrency 16 --requests 500 \\\n"
    "               --slo-ttft 2s --slo-tpot 100ms --json\n";

struct bench_opts {
    struct loadgen_config cfg;
    const char *models[LOADGEN_MAX_MODELS];
    struct loadgen_header headers[LOADGEN_MAX_HEADERS];
    char *header_copies[LOADGEN_MAX_HEADERS];
    bool is_json;
    bool has_rate, has_concurrency;
    char first_model[256];
};

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "holoscope bench: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (see holoscope bench --help)\n");
    return CLI_EXIT_USAGE;
}

static int parse_int(const char *flag, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (hs_parse_i64(v, out) != HS_OK || *out < lo || *out > hi) {
        char range[64];
        snprintf(range, sizeof range, "an integer in %lld..%lld", (long long)lo, (long long)hi);
        return usage_error("%s needs %s", flag, range);
    }
    return CLI_EXIT_OK;
}

static int parse_seconds(const char *flag, const char *v, double *out)
{
    int64_t ms;
    if (hs_parse_duration_ms(v, &ms) != HS_OK)
        return usage_error("%s: bad duration \"%s\"", flag, v);
    *out = (double)ms / 1e3;
    return CLI_EXIT_OK;
}

static int parse_header(struct bench_opts *o, const char *v)
{
    if (o->cfg.n_headers >= LOADGEN_MAX_HEADERS)
        return usage_error("%s: at most 32 headers%s", "--header", "");
    const char *colon = strchr(v, ':');
    if (!colon || colon == v)
        return usage_error("--header needs 'NAME: VALUE', not \"%s\"%s", v, "");
    size_t i = o->cfg.n_headers;
    o->header_copies[i] = hs_strndup(v, (size_t)(colon - v));
    if (!o->header_copies[i]) {
        fprintf(stderr, "holoscope bench: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    const char *val = colon + 1;
    while (*val == ' ' || *val == '\t')
        val++;
    o->headers[i] = (struct loadgen_header){o->header_copies[i], val};
    o->cfg.n_headers++;
    return CLI_EXIT_OK;
}

/* Options taking a value; returns CLI_EXIT_OK, or an exit status. */
static int take_value_opt(struct bench_opts *o, const char *f, const char *v)
{
    struct loadgen_config *c = &o->cfg;
    int64_t n = 0;
    int rc = CLI_EXIT_OK;
    if (strcmp(f, "--model") == 0) {
        if (c->n_models >= LOADGEN_MAX_MODELS)
            return usage_error("%s: at most 64 models%s", f, "");
        if (!v[0])
            return usage_error("%s needs a name%s", f, "");
        o->models[c->n_models++] = v;
    } else if (strcmp(f, "--rate") == 0) {
        if (hs_parse_double(v, &c->rate) != HS_OK || !(c->rate > 0) || c->rate > 1e6)
            return usage_error("--rate needs a number of requests per second > 0, not \"%s\"%s", v,
                               "");
        o->has_rate = true;
    } else if (strcmp(f, "--concurrency") == 0) {
        rc = parse_int(f, v, 1, LOADGEN_MAX_CONCURRENCY, &n);
        c->concurrency = (int)n;
        o->has_concurrency = true;
    } else if (strcmp(f, "--duration") == 0) {
        if (hs_parse_duration_ms(v, &c->duration_ms) != HS_OK || c->duration_ms <= 0)
            return usage_error("--duration: bad duration \"%s\"%s", v, "");
    } else if (strcmp(f, "--requests") == 0) {
        rc = parse_int(f, v, 1, INT64_MAX / 2, &c->num_requests);
    } else if (strcmp(f, "--prompts") == 0) {
        c->prompts_file = v;
    } else if (strcmp(f, "--input-len") == 0) {
        rc = parse_int(f, v, 1, LOADGEN_MAX_INPUT_LEN, &n);
        c->input_len_mean = (int)n;
    } else if (strcmp(f, "--input-spread") == 0) {
        rc = parse_int(f, v, 0, LOADGEN_MAX_INPUT_LEN, &n);
        c->input_len_spread = (int)n;
    } else if (strcmp(f, "--output-len") == 0) {
        rc = parse_int(f, v, 1, 10000000, &n);
        c->output_len_mean = (int)n;
    } else if (strcmp(f, "--output-spread") == 0) {
        rc = parse_int(f, v, 0, 10000000, &n);
        c->output_len_spread = (int)n;
    } else if (strcmp(f, "--api") == 0) {
        if (strcmp(v, "chat") != 0 && strcmp(v, "completions") != 0)
            return usage_error("--api must be chat or completions, not \"%s\"%s", v, "");
        c->api = v;
    } else if (strcmp(f, "--slo-ttft") == 0) {
        rc = parse_seconds(f, v, &c->slo_ttft_s);
    } else if (strcmp(f, "--slo-tpot") == 0) {
        rc = parse_seconds(f, v, &c->slo_tpot_s);
    } else if (strcmp(f, "--slo-e2e") == 0) {
        rc = parse_seconds(f, v, &c->slo_e2e_s);
    } else if (strcmp(f, "--header") == 0) {
        rc = parse_header(o, v);
    } else if (strcmp(f, "--timeout") == 0) {
        if (hs_parse_duration_ms(v, &c->timeout_ms) != HS_OK || c->timeout_ms <= 0)
            return usage_error("--timeout: bad duration \"%s\"%s", v, "");
    } else if (strcmp(f, "--seed") == 0) {
        if (hs_parse_u64(v, &c->seed) != HS_OK)
            return usage_error("--seed needs an unsigned integer, not \"%s\"%s", v, "");
    } else {
        return usage_error("unknown option \"%s\"%s", f, "");
    }
    return rc;
}

static bool is_value_opt(const char *f)
{
    static const char *const names[] = {
        "--model",   "--rate",      "--concurrency",  "--duration",   "--requests",
        "--prompts", "--input-len", "--input-spread", "--output-len", "--output-spread",
        "--api",     "--slo-ttft",  "--slo-tpot",     "--slo-e2e",    "--header",
        "--timeout", "--seed"};
    for (size_t i = 0; i < HS_ARRAY_LEN(names); i++)
        if (strcmp(f, names[i]) == 0)
            return true;
    return false;
}

static int parse_args(struct bench_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (o->cfg.url)
                return usage_error("only one URL may be given (\"%s\", \"%s\")", o->cfg.url, a);
            o->cfg.url = a;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            o->is_json = true;
        } else if (strcmp(a, "--no-stream") == 0) {
            o->cfg.stream = false;
        } else if (strcmp(a, "--ignore-eos") == 0) {
            o->cfg.ignore_eos = true;
        } else {
            char flag[64];
            const char *eq = strchr(a, '=');
            const char *v = NULL;
            size_t fl = eq ? (size_t)(eq - a) : strlen(a);
            if (fl >= sizeof flag)
                return usage_error("unknown option \"%s\"%s", a, "");
            memcpy(flag, a, fl);
            flag[fl] = '\0';
            if (!is_value_opt(flag))
                return usage_error("unknown option \"%s\"%s", flag, "");
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return usage_error("%s needs a value%s", flag, "");
            int rc = take_value_opt(o, flag, v);
            if (rc != CLI_EXIT_OK)
                return rc;
        }
    }
    return CLI_EXIT_OK;
}

static int check_args(struct bench_opts *o)
{
    struct loadgen_config *c = &o->cfg;
    if (!c->url)
        return usage_error("missing URL%s%s", "", "");
    if (!hs_has_prefix(c->url, "http://") && !hs_has_prefix(c->url, "https://"))
        return usage_error("URL must start with http:// or https://, not \"%s\"%s", c->url, "");
    if (!o->has_rate && !o->has_concurrency)
        c->concurrency = 1;
    if (o->has_rate && !o->has_concurrency)
        c->concurrency = 0;
    if (c->duration_ms == 0 && c->num_requests == 0)
        c->num_requests = 100;
    if (c->input_len_spread >= c->input_len_mean)
        return usage_error("--input-spread must be below --input-len%s%s", "", "");
    if (c->output_len_spread >= c->output_len_mean)
        return usage_error("--output-spread must be below --output-len%s%s", "", "");
    c->models = o->models;
    c->headers = o->headers;
    return CLI_EXIT_OK;
}

/* GET <base>/v1/models and take the first id. */
static int discover_model(struct bench_opts *o)
{
    struct hs_buf url;
    hs_buf_init(&url, 4096);
    size_t n = strlen(o->cfg.url);
    const char *u = o->cfg.url;
    const char *v1 = strstr(u, "/v1");
    size_t base_len = v1 ? (size_t)(v1 - u) : n;
    while (base_len > 0 && u[base_len - 1] == '/')
        base_len--;
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    struct hs_err err;
    hs_err_clear(&err);
    int rc = hs_buf_append(&url, u, base_len);
    if (rc == HS_OK)
        rc = hs_buf_puts(&url, "/v1/models");
    if (rc == HS_OK)
        rc = http_client_fetch_sync(url.p, 10000, 1 << 20, &status, &body, &len, &err);
    if (rc != HS_OK || status != 200) {
        fprintf(stderr, "holoscope bench: no --model given and %s answered %s%s (give --model)\n",
                url.p ? url.p : "/v1/models", rc != HS_OK ? "nothing: " : "",
                rc != HS_OK ? err.msg : "with an error");
        hs_free(body);
        hs_buf_cleanup(&url);
        return CLI_EXIT_FAILURE;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *id =
        json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id"));
    if (id)
        snprintf(o->first_model, sizeof o->first_model, "%s", id);
    json_decref(j);
    hs_free(body);
    if (!id || !o->first_model[0]) {
        fprintf(stderr, "holoscope bench: %s lists no model (give --model)\n", url.p);
        hs_buf_cleanup(&url);
        return CLI_EXIT_FAILURE;
    }
    hs_buf_cleanup(&url);
    o->models[0] = o->first_model;
    o->cfg.n_models = 1;
    return CLI_EXIT_OK;
}

static void show_progress(struct loadgen *g, bool *shown)
{
    struct loadgen_report r;
    struct hs_buf line;
    hs_buf_init(&line, 4096);
    if (loadgen_report(g, &r) == HS_OK && loadgen_report_progress(&r, &line) == HS_OK) {
        fprintf(stderr, "\r\033[K%s", line.p);
        fflush(stderr);
        *shown = true;
    }
    hs_buf_cleanup(&line);
}

/* Waits for the end of the run, or for SIGINT/SIGTERM (then stops it). */
static void wait_run(struct loadgen *g, const sigset_t *sigs)
{
    bool is_tty = isatty(STDERR_FILENO) == 1, shown = false;
    int64_t last_ms = 0;
    while (!loadgen_is_done(g)) {
        struct timespec ts = {0, 100 * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            loadgen_stop(g);
            break;
        }
        if (is_tty && hs_now_ms() - last_ms >= 1000) {
            last_ms = hs_now_ms();
            show_progress(g, &shown);
        }
    }
    loadgen_wait(g);
    if (shown)
        fputs("\r\033[K", stderr);
}

static int print_report(struct loadgen *g, bool is_json)
{
    struct loadgen_report r;
    struct hs_buf out;
    hs_buf_init(&out, 0);
    int rc = loadgen_report(g, &r);
    if (rc == HS_OK)
        rc = is_json ? loadgen_report_json(&r, &out) : loadgen_report_text(&r, &out);
    if (rc == HS_OK)
        rc = hs_buf_putc(&out, '\n');
    if (rc != HS_OK) {
        fprintf(stderr, "holoscope bench: out of memory\n");
        hs_buf_cleanup(&out);
        return CLI_EXIT_FAILURE;
    }
    fwrite(out.p, 1, out.len, stdout);
    fflush(stdout);
    hs_buf_cleanup(&out);
    return CLI_EXIT_OK;
}

static int run_bench(struct bench_opts *o)
{
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &sigs, &old); /* the generator's thread inherits the mask */
    struct hs_err err;
    hs_err_clear(&err);
    struct loadgen *g = loadgen_start(&o->cfg, &err);
    if (!g) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "holoscope bench: %s\n", err.msg);
        return err.code == HS_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    wait_run(g, &sigs);
    int rc = print_report(g, o->is_json);
    loadgen_free(g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int cli_cmd_bench(int argc, char **argv, char **envp)
{
    (void)envp;
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_bench, stdout);
        return CLI_EXIT_OK;
    }
    struct bench_opts *o = hs_calloc(1, sizeof *o);
    if (!o) {
        fprintf(stderr, "holoscope bench: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    loadgen_config_defaults(&o->cfg);
    int rc = parse_args(o, argc, argv);
    if (rc == CLI_EXIT_OK)
        rc = check_args(o);
    if (rc == CLI_EXIT_OK && o->cfg.n_models == 0)
        rc = discover_model(o);
    if (rc == CLI_EXIT_OK)
        rc = run_bench(o);
    for (size_t i = 0; i < o->cfg.n_headers; i++)
        hs_free(o->header_copies[i]);
    hs_free(o);
    return rc;
}
