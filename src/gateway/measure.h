/*
 * measure.h - one request's measurement as the client experiences it
 * (spec/gateway.md §4), fed with the upstream response body as it
 * arrives, plus the request-side helpers (parse the client's JSON body,
 * inject stream_options.include_usage, §2.4).
 *
 * The proxy creates a struct gw_measure when it sends the request upstream,
 * calls gw_measure_response_start when the upstream headers are parsed,
 * gw_measure_feed for every body read (it returns the bytes to write to
 * the client), gw_measure_end once, then reads gw_measure_result.  The
 * load generator does the same client-side with forward = NULL.
 *
 * Every clock value is a monotonic time in nanoseconds passed in by the
 * caller (hs_mono_ns() in production, made-up values in tests); nothing
 * here reads a clock.  0 means "never happened".
 *
 * Garbage from upstream (bad JSON, unknown shapes, oversized events) is
 * never an error: it is counted in the result and passed through.
 *
 * Threading: a struct gw_measure belongs to one thread at a time; the
 * free functions hold no global state and are safe from any thread.
 */
#ifndef HS_GATEWAY_MEASURE_H
#define HS_GATEWAY_MEASURE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- API kinds ----------------------------------------------------------------- */

/* Which API (request path) a request used; decides how bodies are read. */
enum gw_api {
    GW_API_CHAT = 0,            /* /v1/chat/completions */
    GW_API_COMPLETIONS,         /* /v1/completions (legacy) */
    GW_API_EMBEDDINGS,          /* /v1/embeddings */
    GW_API_RESPONSES,           /* /v1/responses */
    GW_API_TGI_GENERATE,        /* TGI /generate_stream (and /generate) */
    GW_API_LLAMACPP_COMPLETION, /* llama.cpp native /completion */
    GW_API_SGLANG_GENERATE,     /* SGLang native /generate */
    GW_API_OTHER                /* anything else: read as OpenAI-style chunks */
};

/*
 * Maps a request path to its API.  A query string is ignored and a prefix
 * before the known tail is allowed ("/openai/v1/chat/completions").
 * "/generate" is ambiguous (TGI and SGLang both use it): it maps to
 * GW_API_SGLANG_GENERATE, and both native "generate" kinds recognise either
 * engine's event shape, so the choice does not change the result.
 * NULL or an unknown path gives GW_API_OTHER.
 */
enum gw_api gw_api_from_path(const char *path);

/* gen_ai.operation.name for the API: "chat", "text_completion",
 * "embeddings", "responses", "generate" (native kinds), "other".  Static. */
const char *gw_api_operation_name(enum gw_api api);

/* ---- outcomes and finish reasons --------------------------------------------------- */

/* Exactly one per request (§4.8). */
enum gw_outcome {
    GW_OK = 0,               /* "ok": 2xx and a normal terminal marker for streams */
    GW_ERROR_UPSTREAM,       /* "http_error": upstream status >= 400 (or non-2xx) */
    GW_ERROR_MIDSTREAM,      /* "error_midstream": error event after 2xx */
    GW_STREAM_TRUNCATED,     /* "stream_truncated": EOF/reset before a terminal marker */
    GW_TIMEOUT,              /* "timeout": a configured timeout fired */
    GW_UPSTREAM_UNREACHABLE, /* "upstream_unreachable": connect failure */
    GW_CLIENT_CANCELLED,     /* "client_cancelled": the client left first */
    GW_GATEWAY_ERROR,        /* "gateway_error": the gateway rejected the request */
    GW_OUTCOME_COUNT
};
/* The §4.8 / §5 label value ("ok", "http_error", ...).  Static string;
 * out-of-range values give "unknown". */
const char *gw_outcome_name(enum gw_outcome o);

/* Normalised finish reasons (§4.7). */
enum gw_finish {
    GW_FINISH_NONE = 0,       /* the choice has not finished (absent) */
    GW_FINISH_STOP,           /* "stop" */
    GW_FINISH_LENGTH,         /* "length" */
    GW_FINISH_TOOL_CALLS,     /* "tool_calls" */
    GW_FINISH_CONTENT_FILTER, /* "content_filter" */
    GW_FINISH_ERROR,          /* "error" */
    GW_FINISH_CANCELLED,      /* "cancelled" */
    GW_FINISH_UNKNOWN,        /* "unknown": any other raw value */
    GW_FINISH_COUNT
};
/* "stop", "length", ...; GW_FINISH_NONE gives "" .  Static string. */
const char *gw_finish_name(enum gw_finish f);

/*
 * Normalises one raw upstream value per the §4.7 table for 'api':
 * OpenAI values as they are, function_call -> tool_calls; TGI eos_token /
 * stop_sequence -> stop; llama.cpp native stop_type eos / word -> stop and
 * limit -> length; SGLang native type stop / length / abort -> stop /
 * length / error; Responses incomplete reason max_output_tokens / content_filter
 * -> length / content_filter.  Anything else is GW_FINISH_UNKNOWN; an
 * empty value is GW_FINISH_NONE.  'raw' need not be NUL-terminated.
 */
enum gw_finish gw_finish_normalize(enum gw_api api, const char *raw, size_t len);

/* Where the token counts came from (§4.5), best first. */
enum gw_usage_source {
    GW_USAGE_NONE = 0,     /* "": no count at all */
    GW_USAGE_USAGE,        /* "usage": the usage object */
    GW_USAGE_ENGINE,       /* "engine": engine-native counts */
    GW_USAGE_EXACT_STREAM, /* "exact_stream": TGI token events */
    GW_USAGE_CHUNK_COUNT   /* "chunk_count": output events, a lower bound */
};
/* "usage", "engine", "exact_stream", "chunk_count"; NONE gives "". Static. */
const char *gw_usage_source_name(enum gw_usage_source s);

/* How the upstream exchange ended, as the proxy saw it. */
enum gw_end {
    GW_END_EOF = 0,       /* the body ended by HTTP framing (length, last chunk, close) */
    GW_END_RESET,         /* connection reset or read error in the middle of the body */
    GW_END_TIMEOUT,       /* a configured timeout fired */
    GW_END_CLIENT_CANCEL, /* the client disconnected; the upstream was closed */
    GW_END_UNREACHABLE,   /* no connection to the upstream (no response at all) */
    GW_END_GATEWAY_ERROR  /* the gateway refused or failed the request itself */
};

/* ---- the result ------------------------------------------------------------------- */

/* Ceilings on what one request keeps. */
#define GW_MEASURE_MAX_CHOICES    64   /* choice indexes >= this are counted, not kept */
#define GW_MEASURE_MAX_TOOL_CALLS 32   /* per choice */
#define GW_MEASURE_MAX_GAPS       4096 /* ITL gaps kept in the array (§4.9) */
#define GW_MEASURE_TEXT_BUFFERS   8    /* text kept per request: this many times max_text_bytes */
#define GW_MEASURE_MAX_BODY       (16u << 20) /* JSON bodies parsed at the end */
#define GW_MEASURE_MAX_EVENT      (4u << 20)  /* one SSE event */

/* One tool call of one choice; fragments joined per (choice, index). */
struct gw_tool_call {
    int index;        /* tool_calls[j].index (or the order seen) */
    char id[64];      /* call id, truncated; "" when none */
    char name[128];   /* function name, truncated */
    const char *args; /* joined arguments (NUL-terminated, bounded by max_text_bytes) */
    size_t args_len;
    bool args_truncated; /* fragments were dropped at the ceiling */
};

/* One choice (§4.4).  Times are monotonic ns, 0 = never. */
struct gw_choice {
    int index;                  /* choices[i].index */
    enum gw_finish finish;      /* normalised; NONE when it never finished */
    char finish_raw[48];        /* raw upstream value, "" when none (truncated) */
    char stop_reason_raw[128];  /* vLLM stop_reason as JSON text ("\"###\"", "128001");
                                   "" when absent or null */
    int64_t t_first_output_ns;  /* first output event of this choice */
    int64_t t_last_output_ns;   /* last output event of this choice */
    int64_t t_first_visible_ns; /* first visible output (content/refusal/text) */
    size_t output_events;       /* output events of this choice */
    size_t visible_chars;       /* visible output in code points (whole stream, unbounded) */
    const char *text;           /* visible text received (content, text, output_text);
                                   NUL-terminated; NULL when text keeping is off */
    size_t text_len;            /* bytes in text (at most max_text_bytes) */
    bool text_truncated;        /* text went past max_text_bytes and was cut */
    const char *reasoning;      /* reasoning text (reasoning_content/reasoning), bounded
                                   like text; NULL when none or off */
    size_t reasoning_len;
    const struct gw_tool_call *tool_calls; /* in order of first appearance */
    size_t n_tool_calls;
};

/* Engine-side timings reported by llama.cpp (§3.6); engine_timings_json
 * holds the raw object for captures and spans. */
struct gw_engine_timings {
    bool present;        /* a timings object was seen (the last one is kept) */
    double prompt_n;     /* prompt tokens processed (excludes cache_n) */
    double prompt_ms;    /* prefill time */
    double predicted_n;  /* generated tokens */
    double predicted_ms; /* decode time */
    double cache_n;      /* prompt tokens reused from the cache; 0 when absent */
    char json[1024];     /* the raw timings JSON object; "" when too large or absent */
};

struct gw_measure_result {
    /* request and response */
    enum gw_api api;         /* as passed to gw_measure_new */
    bool stream_requested;   /* the request asked for a stream */
    bool is_stream;          /* the upstream answered text/event-stream (§2.3) */
    bool usage_injected;     /* the gateway added include_usage (§2.4) */
    int status;              /* upstream HTTP status; 0 when none arrived */
    enum gw_outcome outcome; /* settled by gw_measure_end */
    bool ended;              /* gw_measure_end was called */
    /* error (outcome != ok): type for the error_type label (§3.7.2, §4.8) */
    char error_type[64];     /* "" when none; truncated.  Settled per §4.8 for every
                                outcome except gateway_error, whose code the caller knows */
    char error_code[64];     /* error code as text ("500", "model_not_found"), "" when none */
    char error_message[256]; /* upstream message, truncated; "" when none */
    /* clock points (monotonic ns; 0 = never) */
    int64_t t_send_ns;          /* first byte of the request written upstream */
    int64_t t_resp_hdr_ns;      /* response headers parsed */
    int64_t t_first_byte_ns;    /* first body byte read */
    int64_t t_first_event_ns;   /* first complete SSE event */
    int64_t t_first_output_ns;  /* first output event, any choice (§4.2) */
    int64_t t_first_visible_ns; /* first visible output event, any choice */
    int64_t t_last_output_ns;   /* last output event, any choice */
    int64_t t_upstream_end_ns;  /* terminal marker parsed, or the end passed to gw_measure_end */
    /* derived durations in ns; -1 = absent (§4.1: never zero for "unknown").
     * TTFT (t_first_output - t_recv) and E2E (t_client_end - t_recv) are the
     * caller's: this object never sees t_recv or the client socket. */
    int64_t ttft_upstream_ns; /* t_first_output - t_send (streams with output) */
    int64_t ttfc_ns;          /* t_first_event - t_send (streams) */
    int64_t ttfb_ns;          /* t_first_byte - t_send */
    int64_t upstream_ns;      /* t_upstream_end - t_send */
    int64_t tpot_ns;          /* §4.3 TPOT; only with outcome ok and an authoritative
                                 output count, output_tokens - n >= 1 */
    /* events */
    size_t events;             /* SSE events dispatched */
    size_t first_output_event; /* 1-based index of the first output event; 0 = none */
    size_t output_events;      /* output events, all choices */
    bool saw_done;             /* data: [DONE] arrived */
    bool saw_terminal;         /* a normal terminal marker of the dialect arrived (§3.1.3) */
    /* inter-chunk gaps (§4.3), same choice index, in arrival order */
    const int64_t *itl_ns; /* the first GW_MEASURE_MAX_GAPS gaps */
    size_t n_itl;          /* entries in itl_ns */
    size_t itl_count;      /* all gaps, kept or not */
    int64_t itl_sum_ns;    /* sum of all gaps */
    int64_t itl_max_ns;    /* largest gap; 0 when none */
    /* tokens (§4.5); -1 = unknown */
    int64_t input_tokens;     /* prompt_tokens / input_tokens / engine count */
    int64_t output_tokens;    /* completion_tokens / output_tokens / engine / estimate */
    int64_t cached_tokens;    /* prompt_tokens_details.cached_tokens etc. */
    int64_t reasoning_tokens; /* completion_tokens_details.reasoning_tokens etc. */
    enum gw_usage_source usage_source;
    bool usage_estimated;          /* usage_source is chunk_count: feed the estimated counter */
    const char *usage_source_name; /* gw_usage_source_name(usage_source) */
    /* choices, ordered by index */
    const struct gw_choice *choices;
    size_t n_choices;
    size_t dropped_choices;    /* events for choice indexes past GW_MEASURE_MAX_CHOICES */
    bool truncated;            /* any finish reason is length */
    bool visible_output_empty; /* no visible output arrived at all */
    size_t tool_calls;         /* tool calls over all choices */
    size_t embeddings;         /* embeddings: number of data items */
    char model[128];           /* the response's "model" (model_upstream), "" when none */
    char response_id[128];     /* the response's "id" (first seen; Responses API: the
                                  response object's), truncated; "" when none */
    char response_status[32];  /* Responses API status ("completed", ...), "" otherwise */
    struct gw_engine_timings engine_timings;
    /* bytes and garbage */
    uint64_t bytes_in;        /* body bytes fed */
    uint64_t bytes_forwarded; /* bytes appended to forward */
    size_t stripped_events;   /* usage-only events removed (§2.4), 0 or 1 normally */
    size_t bad_events;        /* data payloads that were not the JSON expected */
    bool sse_failed;          /* the SSE parser hit its ceiling; later events unread */
    bool body_too_large;      /* a JSON body past GW_MEASURE_MAX_BODY was not parsed */
};

/* ---- one request's measurement ------------------------------------------------------ */

struct gw_measure;

/*
 * Starts measuring a request sent upstream at t_send_ns.  usage_injected:
 * the gateway added include_usage (then the usage-only event is stripped
 * from what gw_measure_feed forwards, §2.4).  max_text_bytes bounds the
 * text kept per choice (and the reasoning text, and each tool call's
 * arguments), and GW_MEASURE_TEXT_BUFFERS * max_text_bytes the text kept
 * over the whole request; 0 turns text keeping off (visible_chars and tool-call
 * counting still work).  NULL on ENOMEM.  Caller frees with gw_measure_free.
 */
struct gw_measure *gw_measure_new(enum gw_api api, bool stream_requested, bool usage_injected,
                                  int64_t t_send_ns, size_t max_text_bytes);

/* The request's n (number of choices, default 1): usage stripping waits
 * until this many choices have finished, and TPOT divides by
 * output_tokens - n.  Call before the first feed.  Values < 1 mean 1. */
void gw_measure_set_n(struct gw_measure *m, int n);

/*
 * The upstream status line and headers were parsed at now_ns.  The
 * content type decides streaming (§2.3): "text/event-stream" (parameters
 * and case ignored) is a stream, anything else a JSON body.  NULL
 * content_type is read as JSON.
 */
void gw_measure_response_start(struct gw_measure *m, int status, const char *content_type,
                               int64_t now_ns);

/*
 * Engine-native counts from response headers of TGI /generate
 * (x-prompt-tokens, x-generated-tokens); pass -1 for an absent one.  Used
 * when the body carries no usage (usage_source "engine").
 */
void gw_measure_header_tokens(struct gw_measure *m, int64_t prompt_tokens,
                              int64_t generated_tokens);

/*
 * Body bytes read at now_ns.  Appends to 'forward' exactly the bytes the
 * client must get now: all of 'data', unchanged (§2.1), except that with
 * usage_injected, once every choice has finished, bytes are held until
 * their event is complete and the usage-only event (choices [] and a usage
 * object) is dropped (§2.4).  'forward' may be NULL (nothing is appended;
 * measurement is the same).  Upstream garbage is never an error.  Returns
 * HS_OK, or HS_ENOMEM / HS_ETOOBIG when 'forward' could not take the bytes
 * (the measurement itself is still updated; the caller should abort the
 * exchange).  Calls after gw_measure_end are ignored.
 */
HS_MUST_CHECK int gw_measure_feed(struct gw_measure *m, const char *data, size_t len,
                                  int64_t now_ns, struct hs_buf *forward, struct hs_err *err);

/*
 * The upstream exchange ended at now_ns for 'cause'.  Appends to 'forward'
 * (may be NULL) any bytes still held back, parses a JSON body, and settles
 * the outcome, finish reasons, usage source and derived durations (§4.8:
 * a status >= 400 or non-2xx wins over the cause; after 2xx an error event
 * wins, then a normal terminal marker (ok); without response headers
 * GW_END_EOF/RESET count as upstream_unreachable).  Call
 * once; later calls are ignored.  Failure to append (out of memory) loses
 * the held bytes only; the result is still settled.
 */
void gw_measure_end(struct gw_measure *m, enum gw_end cause, int64_t now_ns,
                    struct hs_buf *forward);

/* The measurement so far (final after gw_measure_end).  Borrowed: valid
 * until the next feed/end call or gw_measure_free. */
const struct gw_measure_result *gw_measure_result(const struct gw_measure *m);

/* NULL is a no-op. */
void gw_measure_free(struct gw_measure *m);

/* ---- request side --------------------------------------------------------------- */

/* What the gateway needs from the client's JSON body. */
struct gw_request_info {
    bool has_model;              /* a "model" string was present */
    char model[256];             /* unescaped UTF-8; "" when absent */
    bool stream;                 /* "stream": true */
    int n;                       /* "n" (1 when absent or not a positive integer) */
    int64_t max_tokens;          /* max_tokens / max_completion_tokens / max_output_tokens /
                                    max_new_tokens / n_predict; -1 when absent */
    bool has_stream_options;     /* "stream_options" is an object */
    bool include_usage;          /* stream_options.include_usage is true */
    bool continuous_usage_stats; /* stream_options.continuous_usage_stats is true */
};

/*
 * Reads the client's body once.  Malformed JSON is HS_EPARSE with err->pos
 * and a message such as "invalid JSON at byte 17: expected ':'"; a body that
 * is not an object is HS_EINVAL "request body must be a JSON object"; a
 * model that is not a string or is longer than 255 bytes is HS_EINVAL.  A
 * missing model is NOT an error (engine-native endpoints have none): the
 * caller checks has_model and answers per §2.2.  *out is filled on HS_OK.
 */
HS_MUST_CHECK int gw_request_parse(const char *body, size_t len, struct gw_request_info *out,
                                   struct hs_err *err);

/*
 * Appends to 'out' the body with "stream_options":{"include_usage":true}
 * (§2.4), keeping every other byte: the key is added before the closing
 * brace of the top level, an existing stream_options object gets
 * "include_usage":true added (or a false/null value replaced), a null
 * stream_options is replaced.  Returns HS_OK with the body unchanged when
 * include_usage is already true.  Errors as gw_request_parse, plus
 * HS_ENOMEM / HS_ETOOBIG from 'out' (then 'out' is unchanged).
 */
HS_MUST_CHECK int gw_request_inject_usage(const char *body, size_t len, struct hs_buf *out,
                                          struct hs_err *err);

#endif
