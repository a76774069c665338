/*
 * measure_internal.h - shared by measure.c, measure_event.c,
 * measure_json.c and measure_request.c; nobody else includes it.
 *
 * Holds the allocation-free JSON cursor the measurement uses on the proxy
 * hot path (one pass over a payload, slices into the input, no tree) and
 * the private state of struct gw_measure.
 *
 * Threading: as measure.h (one thread per object; no globals).
 */
#ifndef HS_GATEWAY_MEASURE_INTERNAL_H
#define HS_GATEWAY_MEASURE_INTERNAL_H

#include "gateway/measure.h"
#include "gateway/sse.h"

/* ---- JSON cursor (measure_json.c) ----------------------------------------------------
 * A lenient scanner: it finds values and their extents without building a
 * tree and never reads outside [p, end).  It accepts some malformed input
 * (a stray comma, mismatched brackets inside a skipped value); callers that
 * must reject malformed JSON validate first.
 */
struct gw__jcur {
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
};

/* A raw JSON value: for strings the bytes between the quotes (escapes left
 * as they are, is_esc set when there is a backslash), otherwise the token
 * or the whole bracketed text.  len 0 and p NULL: absent. */
struct gw__jval {
    const char *p;
    size_t len;
    char kind;   /* '"' string, '{' object, '[' array, 'n' null, 't'/'f' bool, '0' number */
    bool is_esc; /* string with escapes */
};

void gw__json_ws(struct gw__jcur *c);
/* Reads the next value into *v (may be NULL) and moves past it; false on
 * malformed input or end of input. */
bool gw__json_value(struct gw__jcur *c, struct gw__jval *v);
/* Object iteration: begin expects '{' (after whitespace).  next returns 1
 * with the key in *key and the cursor at the value (which the caller must
 * read with gw__json_value), 0 at '}', -1 on malformed input. */
bool gw__json_obj_begin(struct gw__jcur *c);
int gw__json_obj_next(struct gw__jcur *c, struct gw__jval *key);
/* Array iteration: begin expects '['; next returns 1 when a value follows,
 * 0 at ']', -1 on malformed input. */
bool gw__json_arr_begin(struct gw__jcur *c);
int gw__json_arr_next(struct gw__jcur *c);
/* A cursor over a value's text (object or array). */
struct gw__jcur gw__json_cur(const struct gw__jval *v);

bool gw__jval_present(const struct gw__jval *v); /* present and not null */
/* A string equal to 'lit' (escaped strings are compared decoded).  Inline:
 * the measurement compares keys with literals on every event, and with the
 * literal's length known at compile time this is a length test and a
 * fixed-size compare. */
bool gw__jval_is_esc(const struct gw__jval *v, const char *lit, size_t n);
static inline bool gw__jval_is(const struct gw__jval *v, const char *lit)
{
    size_t n = __builtin_strlen(lit);
    if (v->p == NULL || v->kind != '"')
        return false;
    if (!v->is_esc)
        return v->len == n && __builtin_memcmp(v->p, lit, n) == 0;
    return gw__jval_is_esc(v, lit, n);
}
/* A non-empty string (escapes count: "\n" is not empty). */
bool gw__jval_nonempty_str(const struct gw__jval *v);
/* Number as int64 (a fraction is cut off); false when not a number. */
bool gw__jval_i64(const struct gw__jval *v, int64_t *out);
bool gw__jval_f64(const struct gw__jval *v, double *out);
/* Unescapes a string value and appends at most 'room' bytes to 'out'
 * (never splitting a UTF-8 character); *cut is set when bytes were left
 * out.  Returns HS_OK or HS_ENOMEM. */
int gw__jval_unescape(const struct gw__jval *v, struct hs_buf *out, size_t room, bool *cut);
/* Unescapes into a fixed array (NUL-terminated, truncated); non-strings
 * are copied as their raw text. */
void gw__jval_copy(const struct gw__jval *v, char *out, size_t out_len);
/* Number of Unicode code points the string value decodes to. */
size_t gw__jval_chars(const struct gw__jval *v);
/* Looks up key 'name' in object value 'obj' (first match). */
bool gw__json_get(const struct gw__jval *obj, const char *name, struct gw__jval *out);

/* ---- measure private state (measure.c, measure_event.c) --------------------------------- */

struct gw__tool {
    struct hs_buf args; /* joined argument fragments, bounded by max_text_bytes */
};

struct gw__choice {
    struct hs_buf text;      /* visible text, bounded */
    struct hs_buf reasoning; /* reasoning text, bounded */
    struct gw_tool_call *calls;
    struct gw__tool *tools; /* parallel to calls */
    size_t ncalls, capcalls;
    size_t sglang_len; /* SGLang native: bytes of cumulative text seen */
};

struct gw_measure {
    struct gw_measure_result r;
    size_t max_text_bytes;
    size_t text_bytes; /* text kept over all choices, reasoning and tool calls */
    int n_requested;
    /* choices, sorted by index; pub and priv are parallel */
    struct gw_choice *pub;
    struct gw__choice *priv;
    size_t cap_choices;
    size_t finished; /* choices with a finish reason */
    /* ITL gaps */
    int64_t *gaps;
    size_t cap_gaps;
    /* SSE and usage stripping */
    struct gw_sse sse;
    bool holding;       /* §2.4: every choice finished; events are held until complete */
    bool strip_off;     /* held bytes passed the ceiling: stripping given up */
    bool last_dropped;  /* the last complete event in HOLD was the usage-only one */
    struct hs_buf held; /* bytes held back (part of the next event) */
    /* per feed (valid inside gw_measure_feed) */
    const char *feed_data;
    size_t seg_start;
    struct hs_buf *forward;
    int fwd_rc;
    int64_t now_ns;
    bool event_usage_only; /* the event just read is a usage-only chunk */
    /* JSON body (non-streaming or error answers) */
    struct hs_buf body;
    struct hs_buf scratch; /* SGLang native: the cumulative text of the current event */
    bool body_wanted;
    /* engine-native counts */
    int64_t eng_in, eng_out;
    size_t token_events; /* TGI token events */
    bool saw_usage;
    bool saw_error;
    bool saw_function_call_item; /* Responses: an output item of type function_call */
    char responses_reason[48];   /* Responses: incomplete_details.reason */
};

/* measure_event.c: reads one SSE event's data (or a whole JSON body when
 * is_body) into the measurement. */
void gw__measure_payload(struct gw_measure *m, const char *type, size_t type_len, const char *data,
                         size_t len, bool is_body);
/* measure_event.c: reads an error body of a non-2xx answer. */
void gw__measure_error_body(struct gw_measure *m, const char *data, size_t len);
/* measure.c: the choice with 'index' (created when new); NULL past the
 * ceiling or on ENOMEM (counted). */
struct gw_choice *gw__measure_choice(struct gw_measure *m, int64_t index, struct gw__choice **priv);
/* measure.c: one output event for choice 'c' (may be NULL: request-level
 * times only) at m->now_ns; the caller counts r.output_events once per
 * event. */
void gw__measure_output(struct gw_measure *m, struct gw_choice *c, bool visible);
/* measure.c: appends bounded text to a choice buffer and refreshes the
 * public pointer. */
void gw__measure_text(struct gw_measure *m, struct hs_buf *buf, const struct gw__jval *v,
                      bool *cut);

#endif
