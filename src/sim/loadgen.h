/*
 * loadgen.h - the load generator behind `holoscope bench` and the
 * background traffic of `holoscope demo`: it sends OpenAI-compatible
 * requests (chat or legacy completions, streamed or not) to any endpoint,
 * either open loop (Poisson arrivals at a fixed or time-varying rate) or
 * closed loop (a fixed number of requests in flight), and measures each
 * one as the client sees it.
 *
 * Measurement is the gateway's own (gateway/measure.h fed through
 * gateway/sse.h): every response chunk is handed over with its arrival
 * time, so TTFT, inter-chunk latency (ITL), TPOT, E2E, token counts,
 * finish reasons and outcomes are defined exactly as in spec/gateway.md §4
 * and `holoscope bench` agrees with the gateway by construction.  The
 * clock starts when the request is handed to the HTTP client (the
 * gateway's t_recv seen from the other side).
 *
 * Percentiles are exact: every observation is kept up to
 * loadgen_config.max_samples per quantity; beyond that a uniform
 * reservoir of max_samples observations is kept (Algorithm R, seeded from
 * the config's seed) and the report says so (is_sampled).  Quantiles use
 * linear interpolation between closest ranks (numpy's default "linear"
 * method): q-quantile of sorted x[0..n-1] is x[h] + (h - floor h) *
 * (x[floor h + 1] - x[floor h]) with h = q * (n - 1).
 *
 * Threading: a struct loadgen runs its own thread with its own event_base
 * and HTTP client (one loop; no thread per request).  loadgen_start,
 * loadgen_stop, loadgen_wait and loadgen_free are called from one owning
 * thread; loadgen_is_done and loadgen_report from any thread (they take
 * the generator's lock); loadgen_config_defaults, loadgen_report_json,
 * loadgen_report_text and loadgen_outcome_name from any thread on
 * distinct objects.  rate_fn is called on the generator's thread.
 */
#ifndef HS_SIM_LOADGEN_H
#define HS_SIM_LOADGEN_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ceilings on what comes from outside (the CLI, a prompts file). */
#define LOADGEN_MAX_MODELS        64
#define LOADGEN_MAX_HEADERS       32
#define LOADGEN_MAX_PROMPTS       100000
#define LOADGEN_MAX_PROMPTS_BYTES (256u << 20) /* prompts file size */
#define LOADGEN_MAX_INPUT_LEN     1000000      /* synthetic prompt words */
#define LOADGEN_MAX_CONCURRENCY   100000
#define LOADGEN_MAX_BACKLOG       1000000 /* open-loop arrivals waiting for a slot */

/* A request header ("Authorization: Bearer ..."). Strings are copied by loadgen_start. */
struct loadgen_header {
    const char *name;
    const char *value;
};

struct loadgen_config {
    const char *url;          /* base URL, e.g. "http://127.0.0.1:9191" (no path needed;
                                 "/v1/chat/completions" or "/v1/completions" is appended
                                 unless the URL already ends in one of them) */
    const char *api;          /* "chat" | "completions" */
    const char **models;      /* model names; each request picks one by weight */
    const double *weights;    /* n_models weights >= 0, sum > 0; NULL = equal */
    size_t n_models;          /* 1 .. LOADGEN_MAX_MODELS */
    bool stream;              /* "stream": true (and stream_options.include_usage) */
    double rate;              /* open loop: mean requests/s (Poisson); 0 = closed loop */
    int concurrency;          /* closed loop: requests in flight; open loop: cap on in-flight
                                 requests, arrivals beyond it wait in a backlog (0 = only the
                                 ceiling LOADGEN_MAX_CONCURRENCY) */
    int64_t duration_ms;      /* stop issuing after this long; 0 = no limit */
    int64_t num_requests;     /* stop issuing after this many; 0 = no limit (one of the two
                                 limits is required) */
    const char *prompts_file; /* JSONL, one object per line with "prompt" (string) or
                                 "messages" (chat array, sent as is), optional "max_tokens"
                                 / "output_len"; NULL = synthetic prompts */
    int input_len_mean;       /* synthetic prompt length in words (about one token each) */
    int input_len_spread;     /* uniform +- spread around the mean, >= 0 */
    int output_len_mean;      /* max_tokens of each request (mean) */
    int output_len_spread;    /* uniform +- spread around the mean, >= 0 */
    int max_tokens;           /* > 0: fixed max_tokens, overrides output_len_* and the file */
    bool ignore_eos;          /* send "ignore_eos": true (vLLM, SGLang) so outputs reach
                                 max_tokens; off for APIs that reject unknown fields */
    double (*rate_fn)(void *arg, double t_s); /* optional: requests/s at t_s seconds after the
                                                 start (the demo's daily shape); overrides rate;
                                                 called on the generator's thread */
    void *rate_arg;
    double slo_ttft_s; /* goodput SLOs: a request is "good" when ok and every set threshold */
    double slo_tpot_s; /* holds (TTFT <= slo_ttft_s, TPOT <= slo_tpot_s, E2E <= slo_e2e_s); */
    double slo_e2e_s;  /* 0 = that threshold is not used */
    const struct loadgen_header *headers; /* extra request headers (API key); copied */
    size_t n_headers;                     /* 0 .. LOADGEN_MAX_HEADERS */
    uint64_t seed;                        /* all randomness (arrivals, lengths, models, prompts) */
    int64_t timeout_ms;                   /* per-request total timeout; 0 = none */
    int64_t connect_timeout_ms;           /* per-request connect timeout; 0 = none */
    size_t max_samples;                   /* observations kept per quantity (reservoir beyond) */
};

/* Fills the defaults: url NULL, api "chat", no models (the caller sets
 * them), stream on, rate 0, concurrency 1, no limits, synthetic prompts of
 * 128 +- 0 words, outputs of 128 +- 0 tokens, ignore_eos off, no SLOs,
 * seed 1, timeout 10 min, connect timeout 10 s, max_samples 1,000,000.
 * Threading: any thread. */
void loadgen_config_defaults(struct loadgen_config *c);

/* ---- outcomes ------------------------------------------------------------
 * One per finished request.  Names follow the gateway's outcome names
 * (spec/gateway.md §4.8) where they overlap; the gateway's http_error is
 * split by status class and upstream_unreachable is "connect". */
enum loadgen_outcome {
    LOADGEN_OK = 0,           /* "ok": 2xx and a normal end of stream */
    LOADGEN_CONNECT,          /* "connect": refused, unreachable, DNS or TLS failure */
    LOADGEN_TIMEOUT,          /* "timeout": connect or total timeout */
    LOADGEN_HTTP_4XX,         /* "http_4xx": status 400..499 */
    LOADGEN_HTTP_5XX,         /* "http_5xx": status >= 500 (or another non-2xx status) */
    LOADGEN_ERROR_MIDSTREAM,  /* "error_midstream": an error event after 2xx */
    LOADGEN_STREAM_TRUNCATED, /* "stream_truncated": EOF or reset before the end marker */
    LOADGEN_MALFORMED,        /* "malformed": broken HTTP, or a body that is not the API's */
    LOADGEN_CANCELLED,        /* "cancelled": in flight when loadgen_stop was called */
    LOADGEN_OUTCOME_COUNT
};

/* "ok", "connect", ...; "unknown" out of range. */
const char *loadgen_outcome_name(int outcome);

/* ---- report --------------------------------------------------------------- */

/* One latency quantity, in seconds.  All zero when count is 0. */
struct loadgen_dist {
    uint64_t count; /* observations (all of them, also beyond the reservoir) */
    double mean;    /* over all observations */
    double min, max;
    double p50, p90, p95, p99; /* exact, or over the reservoir when is_sampled */
    bool is_sampled;           /* more than max_samples observations: quantiles are estimates */
};

struct loadgen_report {
    bool is_done;       /* the run is over (limits reached or stopped) */
    bool is_stream;     /* copied from the config */
    double rate;        /* copied from the config (0 = closed loop) */
    bool is_open_loop;  /* Poisson arrivals (rate or rate_fn), else closed loop */
    int concurrency;    /* copied from the config */
    double elapsed_s;   /* start to now, or to the end of the run */
    uint64_t sent;      /* requests handed to the HTTP client */
    uint64_t finished;  /* requests with an outcome (every outcome) */
    uint64_t in_flight; /* sent - finished */
    uint64_t backlog;   /* open-loop arrivals waiting for a slot (concurrency cap) */
    uint64_t dropped;   /* open-loop arrivals dropped beyond LOADGEN_MAX_BACKLOG */
    uint64_t outcomes[LOADGEN_OUTCOME_COUNT]; /* by enum loadgen_outcome */
    uint64_t errors;                          /* finished - ok - cancelled */
    uint64_t good;                    /* ok requests meeting every SLO (goodput numerator) */
    uint64_t input_tokens;            /* prompt tokens reported by usage (authoritative only) */
    uint64_t output_tokens;           /* completion tokens: usage, else counted output events */
    uint64_t output_tokens_estimated; /* the part of output_tokens that was counted, not
                                         reported (streams without usage) */
    double request_throughput;        /* ok requests / elapsed_s */
    double output_token_throughput;   /* output_tokens / elapsed_s */
    double total_token_throughput;    /* (input + output tokens) / elapsed_s */
    double goodput;                   /* good requests / elapsed_s */
    double slo_ttft_s, slo_tpot_s, slo_e2e_s; /* copied from the config */
    struct loadgen_dist ttft;                 /* time to first output event (streams with output) */
    struct loadgen_dist itl;  /* gaps between output events of one choice (streams): the
                                 first 4096 (GW_MEASURE_MAX_GAPS) of each request */
    struct loadgen_dist tpot; /* (last - first output) / (output tokens - 1), ok streams */
    struct loadgen_dist e2e;  /* send to last byte, every finished request but cancelled */
    char last_error[256];     /* message of the most recent failed request, "" when none */
};

struct loadgen;

/*
 * Checks the config, loads the prompts file, copies everything it needs
 * (the config may be freed after the call) and starts the generator on its
 * own thread.  Errors (HS_EINVAL with a message naming the field, the
 * prompts file with "FILE:LINE: ...", HS_ENOMEM, HS_EIO) return NULL with
 * 'err' set and start nothing.  Caller frees with loadgen_free.
 */
struct loadgen *loadgen_start(const struct loadgen_config *c, struct hs_err *err);

/* Stops issuing requests, cancels those in flight (outcome "cancelled")
 * and joins the thread.  Idempotent; a finished run is left as it is. */
void loadgen_stop(struct loadgen *g);

/* True once the limits were reached and every request finished (or after
 * loadgen_stop).  Threading: any thread. */
bool loadgen_is_done(const struct loadgen *g);

/* Blocks until the run is done, then joins the thread. */
void loadgen_wait(struct loadgen *g);

/* Snapshot of the counters and distributions so far (any time, any
 * thread).  Sorts a copy of the samples: O(n log n) in the samples kept.
 * Returns HS_OK or HS_ENOMEM (then 'out' holds counters but zero
 * quantiles). */
HS_MUST_CHECK int loadgen_report(const struct loadgen *g, struct loadgen_report *out);

/* Appends the report as one JSON object (durations in seconds, keys as in
 * the struct, distributions as {"count","mean","min","max","p50","p90",
 * "p95","p99","sampled"}, outcomes as {"ok":N,...}).  HS_OK or the
 * buffer's error. */
HS_MUST_CHECK int loadgen_report_json(const struct loadgen_report *r, struct hs_buf *out);

/* Appends the report as aligned text for a terminal (durations in ms). */
HS_MUST_CHECK int loadgen_report_text(const struct loadgen_report *r, struct hs_buf *out);

/* Appends a one-line progress summary (no newline) for a live status line. */
HS_MUST_CHECK int loadgen_report_progress(const struct loadgen_report *r, struct hs_buf *out);

/* Stops the generator if it runs and frees it.  NULL is a no-op. */
void loadgen_free(struct loadgen *g);

#endif
