/*
 * quality.h - output-quality scoring of sampled generations: cheap, pure
 * scorers (empty output, truncation, repetition, refusal, language
 * mismatch, JSON validity, length anomaly, encoding garbage), a weighted
 * composite score, and per-model drift detection (PSI over fixed bins and
 * the two-sample Kolmogorov-Smirnov statistic, recent window against a
 * reference window) for the composite score and the output length.
 *
 * Pipeline (the capture writer does this for every captured request, the
 * `holoscope capture analyze` command for every record of a file):
 *
 *   struct qual_input in;            qual_input_init(&in);
 *   qual_extract_request(req, ...);  prompt text, model, response_format
 *   qual_extract_response(resp, ...) output text, finish reason, tokens
 *                                    (JSON body, or raw SSE with is_sse)
 *   qual_tracker_observe(t, &in, &scores, err);
 *   qual_scores_json(&scores, &buf); the "quality" object of the capture
 *                                    record's "holoscope" block
 *   qual_tracker_collect(t, cb, arg); metric samples for the store
 *
 * Scores are in [0, 1], 1 = good.  Each check gives a score and a result
 * (pass, fail, or skip when it does not apply: no JSON was asked for, too
 * few letters to tell the script, no running median yet ...).  A check
 * fails when its score is below 0.5.  What each check measures is written
 * above its scorer below.
 *
 * Metric names (labels sorted, __name__ included; see qual_tracker_collect):
 *   holoscope_quality_score_bucket{model,le}   histogram of composite scores
 *   holoscope_quality_score_sum{model}          (cumulative, le = 0.1 .. 1.0,
 *   holoscope_quality_score_count{model}         +Inf); p50 over time is
 *                                                histogram_quantile(0.5, rate(...))
 *   holoscope_quality_score_mean{model}         gauge: mean composite score of
 *                                                the recent window (of every
 *                                                record while the reference
 *                                                window fills)
 *   holoscope_quality_checks_total{model,check,result}
 *                                               counter: check results,
 *                                                result = pass | fail
 *   holoscope_quality_output_tokens_median{model}
 *                                               gauge: running median of
 *                                                output tokens
 *   holoscope_quality_drift_psi{model,signal}   gauge: population stability
 *                                                index, recent vs reference
 *                                                (< 0.1 stable, 0.1-0.25
 *                                                moderate, > 0.25 shifted)
 *   holoscope_quality_drift_ks{model,signal}    gauge: two-sample KS statistic
 *                                                D in [0, 1]
 *   signal = score | output_tokens.  Drift series exist only once the
 *   reference window is full and the recent window holds at least
 *   min_recent observations made after it.  PSI bins: ten of 0.1 for the
 *   score; one per octave (0, 1, 2-3, 4-7, ...) for output tokens.
 *
 * Threading: scorers and extractors are pure functions on caller data, safe
 * from any thread.  A struct qual_tracker takes its own mutex: one thread
 * (the capture writer) calls qual_tracker_observe while another (/metrics,
 * the API) calls qual_tracker_collect / qual_tracker_metrics / _drift.
 */
#ifndef HS_QUALITY_H
#define HS_QUALITY_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of output a text scorer looks at (the first ones; JSON validity
 * reads up to QUAL_MAX_JSON_BYTES).  Longer outputs are scored on this
 * prefix, so the cost per record is bounded. */
#define QUAL_MAX_SCAN_BYTES (64 * 1024)
#define QUAL_MAX_JSON_BYTES (4 * 1024 * 1024)
/* A check fails when its score is below this. */
#define QUAL_FAIL_BELOW 0.5

/* The checks, in the order of every per-check array. */
enum qual_check {
    QUAL_CHECK_EMPTY = 0,  /* "empty": no visible output (whitespace only counts as empty) */
    QUAL_CHECK_TRUNCATION, /* "truncation": finish_reason length */
    QUAL_CHECK_REPETITION, /* "repetition": looping text */
    QUAL_CHECK_REFUSAL,    /* "refusal": "I can't help with that" family */
    QUAL_CHECK_LANGUAGE,   /* "language": answer script differs from the prompt's */
    QUAL_CHECK_JSON,       /* "json": JSON asked for, output not a JSON object */
    QUAL_CHECK_LENGTH,     /* "length": output tokens far from the model's median */
    QUAL_CHECK_ENCODING,   /* "encoding": invalid UTF-8, control characters, U+FFFD */
    QUAL_CHECK_COUNT
};

enum qual_result { QUAL_SKIP = 0, QUAL_PASS = 1, QUAL_FAIL = 2 };

/* "empty", "truncation", ... for a check; "?" out of range. */
const char *qual_check_name(int check);
/* The check named 'name', or -1. */
int qual_check_from_name(const char *name, size_t len);
/* "skip" / "pass" / "fail". */
const char *qual_result_name(int result);

struct qual_check_result {
    double score; /* [0, 1]; 1 when skipped */
    int result;   /* enum qual_result */
};

/* What a record gives the scorers.  Strings are borrowed. */
struct qual_input {
    const char *model;  /* label value for the tracker; NULL or "" = "unknown" */
    const char *prompt; /* user text of the request (messages joined), or NULL */
    size_t prompt_len;
    const char *output; /* visible output text of choice 0, or NULL (= empty) */
    size_t output_len;
    const char *finish_reason; /* normalised (spec/gateway.md §4.7) or NULL when unknown */
    bool wants_json;           /* response_format json_object / json_schema */
    int64_t output_tokens;     /* authoritative count, or -1: estimated as chars / 4 */
    bool is_scorable;          /* false for embeddings and other non-generations */
    bool has_tool_calls;       /* the answer called tools: no text is then not "empty" */
};

/* NULLs, -1, false, is_scorable = true. */
void qual_input_init(struct qual_input *in);

struct qual_scores {
    struct qual_check_result checks[QUAL_CHECK_COUNT];
    double composite;      /* weighted score, [0, 1] (see qual_config) */
    unsigned failed_mask;  /* bit (1u << check) set for each failed check */
    int64_t output_tokens; /* tokens used by the length check (given or estimated) */
};

/*
 * Configuration.  Each weight w in [0, 1] is the share of the composite a
 * check takes away when it scores 0:
 *   composite = product over the checks that ran of (1 - w * (1 - score))
 * so penalties compound, one bad check is enough to pull a record down,
 * and a weight of 0 keeps a check's counters but leaves it out of the
 * composite.  Default weights: empty 1, truncation 0.6, repetition 0.8,
 * refusal 0.9, language 0.6, json 0.8, length 0.3, encoding 0.7 (a refusal
 * scores 0.1, a truncated answer 0.52, an empty one 0).
 */
struct qual_config {
    double weights[QUAL_CHECK_COUNT]; /* in [0, 1] */
    size_t max_models;                /* models tracked; later ones fold into "other" (64) */
    size_t reference_size;            /* observations frozen as the drift baseline (500) */
    size_t recent_size;               /* sliding recent window (200) */
    size_t min_recent;                /* recent observations before drift is reported (50) */
    size_t median_window;             /* output lengths kept for the running median (201) */
    size_t min_median;                /* observations before the length check runs (20) */
};

void qual_config_defaults(struct qual_config *c);

/*
 * Overrides weights from "check=weight,check=weight" ("refusal=1,length=0").
 * Unknown check names and numbers outside [0, 1] give HS_EINVAL with
 * the position in err->pos; the config is then unchanged.
 */
HS_MUST_CHECK int qual_config_parse_weights(struct qual_config *c, const char *spec,
                                            struct hs_err *err);

/*
 * Reads a YAML `quality:` map over the values already in *c:
 *   quality:
 *     weights: {refusal: 1, length: 0}
 *     max_models: 64
 *     drift: {reference: 500, recent: 200, min_recent: 50}
 *     length: {window: 201, min_observations: 20}
 * Unknown keys and bad values: HS_EINVAL "FILE:LINE:COL: quality.KEY: ...";
 * the config is then unchanged.
 */
HS_MUST_CHECK int qual_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *node,
                                    struct qual_config *c, struct hs_err *err);

/* ---- scorers (pure; each reads at most QUAL_MAX_SCAN_BYTES) ---------------- */

/* 0 when the output is empty or whitespace only, else 1. */
struct qual_check_result qual_score_empty(const char *out, size_t len);

/* Skip when finish_reason is NULL; 0 for "length" with empty output, 0.2
 * for "length", 1 otherwise. */
struct qual_check_result qual_score_truncation(const char *finish_reason, const char *out,
                                               size_t len);

/*
 * Looping text.  Measures the share of repeated word trigrams (words split
 * on whitespace and punctuation; every CJK character is a word), the share
 * of repeated 16-byte shingles (loops without spaces), and the longest run
 * of one word repeated back to back; the worst of the three decides.
 * Skip below 4 words and 32 bytes.  A repeated share <= 0.25 scores 1,
 * >= 0.65 scores 0; a run of 5 identical words or more scores 0 (16 for
 * one-character words such as the zeros of "0, 0, 0" or a CJK character).
 * Answers that start with '{' or '[' are judged by their words only.  On
 * allocation failure the check is skipped.
 */
struct qual_check_result qual_score_repetition(const char *out, size_t len);

/*
 * Refusals: the common forms in English, Spanish, French, German, Italian,
 * Portuguese, Dutch, Russian, Chinese, Japanese, Korean and Arabic,
 * matched case-insensitively (ASCII, Latin-1 and Cyrillic letters fold;
 * U+2019 counts as an apostrophe).  A form within the first 400 bytes
 * scores 0; later in the first 4 KiB 0.6 (a passing but lowered score:
 * answers that decline one part of a request).  Forms are matched where a
 * word starts (CJK forms anywhere).  Skip for empty output.
 */
struct qual_check_result qual_score_refusal(const char *out, size_t len);

/* Writing systems the language check tells apart. */
enum qual_script {
    QUAL_SCRIPT_NONE = 0,
    QUAL_SCRIPT_LATIN,
    QUAL_SCRIPT_CYRILLIC,
    QUAL_SCRIPT_GREEK,
    QUAL_SCRIPT_ARABIC,
    QUAL_SCRIPT_HEBREW,
    QUAL_SCRIPT_DEVANAGARI,
    QUAL_SCRIPT_THAI,
    QUAL_SCRIPT_CJK, /* Han, Hiragana, Katakana */
    QUAL_SCRIPT_HANGUL,
    QUAL_SCRIPT_COUNT
};

/* The script most letters of 'text' are in, or QUAL_SCRIPT_NONE when it
 * holds fewer than 'min_letters' letters. */
int qual_dominant_script(const char *text, size_t len, size_t min_letters);
/* "latin", "cyrillic", ... */
const char *qual_script_name(int script);

/*
 * Language mismatch by script: the share f of the answer's letters written
 * in the prompt's dominant script; score = min(1, 2f), so an answer with at
 * least a quarter of its letters in the prompt's script passes (code and
 * names in Latin inside a Russian answer are fine).  Skip when the prompt
 * or the answer has fewer than 8 letters.  Reads the first 16 KiB of each.
 */
struct qual_check_result qual_score_language(const char *prompt, size_t prompt_len, const char *out,
                                             size_t out_len);

/*
 * JSON asked for: skip when !wants_json; 1 when the output (surrounding
 * whitespace allowed) is one JSON object or array; 0.3 when it is valid
 * JSON only inside a ``` fence; 0 otherwise.  Outputs above
 * QUAL_MAX_JSON_BYTES score 0.
 */
struct qual_check_result qual_score_json(bool wants_json, const char *out, size_t len);

/*
 * Length anomaly: r = tokens / median.  |log2 r| <= 1 scores 1, >= 3
 * scores 0, linear between (so a 4x longer or shorter answer fails).  Skip
 * when median <= 0 or tokens < 0.
 */
struct qual_check_result qual_score_length(int64_t tokens, double median);

/*
 * Garbage: invalid UTF-8 (overlong forms, surrogates, truncated sequences)
 * caps the score at 0.4; otherwise score = 1 - 10 * f where f is the share
 * of characters that are C0/C1 controls (tab, LF, CR allowed), DEL or
 * U+FFFD.  Skip for empty output.
 */
struct qual_check_result qual_score_encoding(const char *out, size_t len);

/*
 * Runs every check on 'in' with the length check against 'median_tokens'
 * (<= 0: skipped) and fills 'out' (composite, failed_mask).  Pure.
 * Inputs with !is_scorable get every check skipped and composite 1.  An
 * answer without text that called tools (has_tool_calls, or finish_reason
 * "tool_calls") skips the empty and JSON checks instead of failing them.
 */
void qual_score_all(const struct qual_config *c, const struct qual_input *in, double median_tokens,
                    struct qual_scores *out);

/*
 * Appends the scores as one compact JSON object for the capture record's
 * "holoscope" block (key "quality"):
 *   {"score":0.912,"failed":["repetition"],
 *    "checks":{"empty":1,"truncation":1,"repetition":0.3,...}}
 * Skipped checks are left out of "checks".  HS_ENOMEM / HS_ETOOBIG.
 */
HS_MUST_CHECK int qual_scores_json(const struct qual_scores *s, struct hs_buf *out);

/* ---- extracting the input from request and response bodies ------------------ */

/*
 * Reads an OpenAI-style request body (chat messages, legacy prompt,
 * Responses API input, TGI inputs): in->model from "model" when in->model
 * is NULL, in->prompt = the text of the user messages joined by "\n"
 * (allocated from 'a'), in->wants_json from response_format.type
 * json_object / json_schema (Responses: text.format.type).  Requests with
 * "input" but no "messages" or "prompt" and no Responses-API shape
 * (embeddings) set is_scorable = false.
 * HS_EPARSE with err->pos for malformed JSON, HS_EINVAL when the body is
 * not a JSON object.  On error 'in' is unchanged.
 */
HS_MUST_CHECK int qual_extract_request(const char *body, size_t len, struct hs_arena *a,
                                       struct qual_input *in, struct hs_err *err);

/*
 * Reads the response body: a JSON chat.completion / text_completion /
 * Responses object / embeddings list (is_sse false), or a raw
 * text/event-stream body (is_sse true: the data events are parsed and the
 * content deltas of choice 0 joined).  Fills in->output (allocated from
 * 'a'), in->finish_reason (normalised: stop, length, tool_calls,
 * content_filter, error; "error" for a stream without a terminal marker),
 * in->has_tool_calls when choice 0 (or a Responses output item) called a tool,
 * in->output_tokens from usage when present, and sets is_scorable = false
 * for embeddings.  Errors as qual_extract_request; SSE events whose data
 * is not JSON are skipped.
 */
HS_MUST_CHECK int qual_extract_response(const char *body, size_t len, bool is_sse,
                                        struct hs_arena *a, struct qual_input *in,
                                        struct hs_err *err);

/* ---- tracker: per-model running state, drift, metrics --------------------- */

enum qual_signal { QUAL_SIGNAL_SCORE = 0, QUAL_SIGNAL_OUTPUT_TOKENS, QUAL_SIGNAL_COUNT };
/* "score" / "output_tokens". */
const char *qual_signal_name(int signal);

struct qual_tracker;

/*
 * Creates a tracker with a copy of 'c' (NULL: defaults).  Memory is bounded:
 * per model about 8 * (reference_size + recent_size + median_window) * 2
 * bytes plus counters, for at most max_models models (+ "other").
 * NULL with err set: HS_EINVAL for sizes of 0 or recent_size <
 * min_recent, HS_ENOMEM.
 */
struct qual_tracker *qual_tracker_new(const struct qual_config *c, struct hs_err *err);
void qual_tracker_free(struct qual_tracker *t);

/*
 * Scores 'in' (qual_score_all against the model's running median of output
 * tokens), then records the result: check counters, score histogram,
 * median window, drift windows.  'out' (may be NULL) receives the scores.
 * Unscorable inputs are neither scored nor counted (out gets composite 1,
 * every check skipped).  HS_ENOMEM (a new model could not be added; 'out'
 * is still filled, nothing is counted).  Threading: any thread; takes the
 * tracker's lock.
 */
HS_MUST_CHECK int qual_tracker_observe(struct qual_tracker *t, const struct qual_input *in,
                                       struct qual_scores *out, struct hs_err *err);

/* Drift of one model's signal.  psi / ks are NAN until the reference window
 * is full and the recent one holds min_recent observations. */
struct qual_drift {
    double psi;
    double ks;
    size_t n_reference; /* observations in the reference window */
    size_t n_recent;    /* observations in the recent window */
};

/* HS_ENOTFOUND for a model never observed, HS_EINVAL for a NULL model or
 * a bad signal.  Any thread. */
HS_MUST_CHECK int qual_tracker_drift(struct qual_tracker *t, const char *model, int signal,
                                     struct qual_drift *out);

/* Drops a model's reference window so the next reference_size
 * observations become the new baseline (after a deliberate model change).
 * HS_ENOTFOUND for an unknown model.  Any thread. */
HS_MUST_CHECK int qual_tracker_rebase(struct qual_tracker *t, const char *model);

/* Per-model summary (for the CLI and the API). */
struct qual_model_summary {
    const char *model;                 /* borrowed from the tracker; valid until free */
    uint64_t count;                    /* scored records */
    double score_mean;                 /* mean composite over all records (NAN: none) */
    double score_p10;                  /* 10th percentile of the recent window (NAN) */
    double median_tokens;              /* running median of output tokens (NAN) */
    uint64_t fails[QUAL_CHECK_COUNT];  /* failed results per check */
    uint64_t passes[QUAL_CHECK_COUNT]; /* passed results per check */
    struct qual_drift drift[QUAL_SIGNAL_COUNT];
};

/* Number of models tracked. */
size_t qual_tracker_models(struct qual_tracker *t);
/* Summary of the i-th model (order of first observation).  HS_ENOTFOUND
 * past the end. */
HS_MUST_CHECK int qual_tracker_summary(struct qual_tracker *t, size_t i,
                                       struct qual_model_summary *out);

/*
 * Called once per sample by qual_tracker_collect.  'name' is the metric
 * name; 'labels' holds __name__ plus the sample's labels, sorted by name
 * (ready for tsdb_appender_add); both borrowed for the call.  A non-zero
 * return stops the walk and is returned by qual_tracker_collect.
 */
typedef int qual_sample_fn(void *arg, const char *name, const struct hs_labels *labels,
                           double value);

/*
 * Emits the current value of every series listed at the top of this file,
 * model by model, through 'fn'.  The lock is held during the walk: 'fn'
 * must not call back into the tracker.  Returns HS_OK or fn's first
 * non-zero return.  Any thread.
 */
HS_MUST_CHECK int qual_tracker_collect(struct qual_tracker *t, qual_sample_fn *fn, void *arg);

/*
 * The same series as Prometheus text exposition (0.0.4) with HELP and
 * TYPE lines, appended to 'out'.  'tracker' is a struct qual_tracker *; the
 * signature is api_collector_fn's, so it can be registered with
 * api_metrics_add_collector.  HS_ENOMEM / HS_ETOOBIG.  Any thread.
 */
int qual_tracker_metrics(void *tracker, struct hs_buf *out);

#endif
