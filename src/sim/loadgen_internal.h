/*
 * loadgen_internal.h - shared by the load generator's own files
 * (loadgen.c, loadgen_stats.c, loadgen_prompts.c), nobody else.
 *
 * Threading: the sample sets and the prompt set are plain data; the
 * generator guards its sample sets with its own lock.
 */
#ifndef HS_SIM_LOADGEN_INTERNAL_H
#define HS_SIM_LOADGEN_INTERNAL_H

#include "sim/loadgen.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- random numbers (xoshiro256** seeded by splitmix64) ---- */
struct lg_rng {
    uint64_t s[4];
};
void lg__rng_seed(struct lg_rng *r, uint64_t seed);
uint64_t lg__rng_next(struct lg_rng *r);
/* Uniform in [0, 1). */
double lg__rng_unit(struct lg_rng *r);
/* Uniform integer in [lo, hi] (lo <= hi). */
int64_t lg__rng_range(struct lg_rng *r, int64_t lo, int64_t hi);
/* Exponential with the given rate (> 0): the gap between Poisson arrivals. */
double lg__rng_exp(struct lg_rng *r, double rate);

/* ---- sample sets: exact up to 'cap' observations, a uniform reservoir beyond ---- */
struct lg_samples {
    double *v;      /* kept observations (hs_malloc'd, grows up to cap) */
    size_t n;       /* kept */
    size_t alloc;   /* allocated slots */
    size_t cap;     /* ceiling on kept observations (>= 1) */
    uint64_t count; /* all observations seen */
    double sum, min, max;
    struct lg_rng rng; /* reservoir replacement choices */
};
void lg__samples_init(struct lg_samples *s, size_t cap, uint64_t seed);
void lg__samples_cleanup(struct lg_samples *s);
/* Records one observation.  Out of memory while growing: the observation
 * still counts (sum, min, max) and replaces a kept one at random, as past
 * the ceiling, so quantiles become estimates rather than failing. */
void lg__samples_add(struct lg_samples *s, double x);
/* Fills 'd' from 's' (sorts a copy).  HS_ENOMEM leaves the quantiles 0. */
HS_MUST_CHECK int lg__samples_dist(const struct lg_samples *s, struct loadgen_dist *d);
/* Linear-interpolation quantile of sorted v[0..n-1], q in [0, 1]. */
double lg__quantile_sorted(const double *v, size_t n, double q);

/* ---- prompts and request bodies ---- */
struct lg_prompt {
    char *text;     /* "prompt" string, or NULL */
    char *messages; /* "messages" array as compact JSON, or NULL */
    int max_tokens; /* from the file; 0 = none */
};
struct lg_prompts {
    struct lg_prompt *v;
    size_t n;
};
/* Loads a JSONL prompts file (see loadgen_config.prompts_file).  Blank
 * lines are skipped; a bad line fails with "FILE:LINE: ..." (HS_EPARSE).
 * More than LOADGEN_MAX_PROMPTS lines or a file past
 * LOADGEN_MAX_PROMPTS_BYTES is HS_ETOOBIG.  An empty file is HS_EINVAL. */
HS_MUST_CHECK int lg__prompts_load(const char *path, struct lg_prompts *out, struct hs_err *err);
void lg__prompts_free(struct lg_prompts *p);

/* What one request asks for. */
struct lg_body_spec {
    bool is_chat;                   /* chat (messages) or legacy completions (prompt) */
    bool stream;                    /* stream + stream_options.include_usage */
    bool ignore_eos;                /* "ignore_eos": true */
    const char *model;              /* borrowed */
    const struct lg_prompt *prompt; /* from the file, or NULL for synthetic */
    int input_words;                /* synthetic prompt length */
    int max_tokens;                 /* > 0: sent as max_tokens */
    uint64_t word_seed;             /* picks the synthetic words */
};
/* Appends the JSON request body for 's' to 'out'. */
HS_MUST_CHECK int lg__body_build(const struct lg_body_spec *s, struct hs_buf *out);

/* ---- measurement of one response (loadgen_measure.c, over gateway/measure.h) ---- */
struct lg_meas;
/* How the response ended, as the HTTP client reported it. */
enum lg_end {
    LG_END_DONE = 0,  /* the body ended normally */
    LG_END_RESET,     /* the peer closed or reset before the body ended */
    LG_END_TIMEOUT,   /* a timeout fired */
    LG_END_CONNECT,   /* no connection (refused, DNS, TLS) */
    LG_END_MALFORMED, /* broken HTTP, a ceiling passed, out of memory */
    LG_END_CANCELLED  /* loadgen_stop */
};
/* What the generator records for one finished request. */
struct lg_meas_result {
    int outcome;              /* enum loadgen_outcome */
    double ttft_s;            /* < 0: absent */
    double tpot_s;            /* < 0: absent */
    int64_t input_tokens;     /* < 0: unknown */
    int64_t output_tokens;    /* < 0: unknown */
    bool is_output_estimated; /* output_tokens counted from output events, not reported */
    char error[200];          /* "" when ok */
};
/* Called once per inter-chunk gap (seconds), in arrival order. */
typedef void lg_gap_fn(void *arg, double gap_s);
/* Starts measuring a request sent at t_send_ns (monotonic).  NULL on ENOMEM. */
struct lg_meas *lg__meas_new(bool is_chat, bool stream, int64_t t_send_ns);
/* Response headers arrived. 'content_type' may be NULL. */
void lg__meas_headers(struct lg_meas *m, int status, const char *content_type, int64_t now_ns);
/* Body bytes arrived at now_ns. */
void lg__meas_body(struct lg_meas *m, const char *data, size_t len, int64_t now_ns);
/* The response ended; fills 'out' and reports every ITL gap to 'gap'.
 * 'msg' is the HTTP client's message for failures (may be NULL). */
void lg__meas_end(struct lg_meas *m, int cause, const char *msg, int64_t now_ns,
                  struct lg_meas_result *out, lg_gap_fn *gap, void *arg);
void lg__meas_free(struct lg_meas *m);

#endif
