/*
 * measure_event.c - reads one SSE data payload (or a whole JSON body) into
 * the measurement: output detection (spec/gateway.md §4.2), per-choice
 * text, tool calls and finish reasons, usage and engine counts (§4.5),
 * error events (§3.7), terminal markers (§3.1.3), for every dialect of
 * §3.2-§3.6.
 *
 * The top level of a payload is scanned once into struct top (slices of
 * the interesting keys); the dialect is then picked from the request's API
 * and the keys present, so an OpenAI-style chunk on a native path (or the
 * other way round) is still read.  Unknown keys and unknown event types
 * are ignored; a payload that is not a JSON object counts as a bad event.
 */
#include "gateway/measure_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The keys of one element of "choices" (the last of each wins). */
struct choice_keys {
    struct gw__jval idx, delta, message, text, fr, sr;
};

/* Choices read during the top-level pass; more (n > 1 requests) fall back
 * to a second walk. */
#define PRE_CHOICES 4

/* The top-level keys any dialect uses. */
struct top {
    struct gw__jval choices, usage, error, object, model, timings, type, delta, response, token,
        generated_text, details, text, meta_info, content, stop, stop_type, tokens_predicted,
        tokens_evaluated, error_type, index, item, output_index, data, status, output,
        incomplete_details, message, code, id;
    const char *p_all; /* the whole payload */
    size_t len_all;
    /* "choices" read in the same pass (scan_choices); npre < 0: not done,
     * read_openai walks t->choices itself */
    int npre;
    struct choice_keys pre[PRE_CHOICES];
};

struct keyslot {
    const char *name;
    size_t len;
    size_t off;
};

#define SLOT(f)                                                                                    \
    {                                                                                              \
#f, sizeof(#f) - 1, offsetof(struct top, f)                                                \
    }
static const struct keyslot slots[] = {
    SLOT(choices),
    SLOT(usage),
    SLOT(error),
    SLOT(object),
    SLOT(model),
    SLOT(timings),
    SLOT(type),
    SLOT(delta),
    SLOT(response),
    SLOT(token),
    SLOT(generated_text),
    SLOT(details),
    SLOT(text),
    SLOT(meta_info),
    SLOT(content),
    SLOT(stop),
    SLOT(stop_type),
    SLOT(tokens_predicted),
    SLOT(tokens_evaluated),
    SLOT(error_type),
    SLOT(index),
    SLOT(item),
    SLOT(output_index),
    SLOT(data),
    SLOT(status),
    SLOT(output),
    SLOT(incomplete_details),
    SLOT(message),
    SLOT(code),
    SLOT(id),
};

_Static_assert(HS_ARRAY_LEN(slots) <= 32, "slots_by_first holds 32 bits");

/* For each first letter, the slots whose name starts with it (bit i =
 * slots[i]), so a key is compared with two or three names at most.  Keep
 * in step with the order of slots[] above. */
static const uint32_t slots_by_first['z' + 1] = {
    ['c'] = (1u << 0) | (1u << 14) | (1u << 28),
    ['d'] = (1u << 7) | (1u << 11) | (1u << 23),
    ['e'] = (1u << 2) | (1u << 19),
    ['g'] = (1u << 10),
    ['i'] = (1u << 20) | (1u << 21) | (1u << 26) | (1u << 29),
    ['m'] = (1u << 4) | (1u << 13) | (1u << 27),
    ['o'] = (1u << 3) | (1u << 22) | (1u << 25),
    ['r'] = (1u << 8),
    ['s'] = (1u << 15) | (1u << 16) | (1u << 24),
    ['t'] = (1u << 5) | (1u << 6) | (1u << 9) | (1u << 12) | (1u << 17) | (1u << 18),
    ['u'] = (1u << 1),
};

/* Stores the value of a key of a choice object in k. */
static void choice_key(struct choice_keys *k, const struct gw__jval *key, const struct gw__jval *v)
{
    if (gw__jval_is(key, "index"))
        k->idx = *v;
    else if (gw__jval_is(key, "delta"))
        k->delta = *v;
    else if (gw__jval_is(key, "message"))
        k->message = *v;
    else if (gw__jval_is(key, "text"))
        k->text = *v;
    else if (gw__jval_is(key, "finish_reason"))
        k->fr = *v;
    else if (gw__jval_is(key, "stop_reason"))
        k->sr = *v;
}

/*
 * Reads a "choices" array at c->p in the top-level pass, keeping the keys
 * of each element, so its bytes are walked once rather than skipped and
 * then walked again.  Anything but an array of at most PRE_CHOICES
 * well-formed objects returns false with *c untouched: the caller skips the
 * value as any other and read_openai takes the general path, so results do
 * not depend on which path ran.
 */
static bool scan_choices(struct gw__jcur *c, struct top *t)
{
    struct gw__jcur a = *c;
    gw__json_ws(&a);
    const char *start = a.p;
    if (!gw__json_arr_begin(&a))
        return false;
    int n = 0, rc;
    while ((rc = gw__json_arr_next(&a)) == 1) {
        if (n == PRE_CHOICES || !gw__json_obj_begin(&a))
            return false;
        struct choice_keys *k = &t->pre[n];
        memset(k, 0, sizeof(*k));
        struct gw__jval key, v;
        int orc;
        while ((orc = gw__json_obj_next(&a, &key)) == 1) {
            if (!gw__json_value(&a, &v))
                return false;
            choice_key(k, &key, &v);
        }
        if (orc != 0)
            return false;
        n++;
    }
    if (rc != 0)
        return false;
    t->choices = (struct gw__jval){start, (size_t)(a.p - start), '[', false};
    t->npre = n;
    *c = a;
    return true;
}

static bool scan_top(struct gw__jcur *c, struct top *t)
{
    memset(t, 0, offsetof(struct top, p_all));
    t->p_all = NULL;
    t->len_all = 0;
    t->npre = -1;
    if (!gw__json_obj_begin(c))
        return false;
    struct gw__jval key;
    int rc;
    while ((rc = gw__json_obj_next(c, &key)) == 1) {
        struct gw__jval *dst = NULL;
        if (!key.is_esc) {
            unsigned char first = key.len ? (unsigned char)key.p[0] : 0;
            uint32_t cand = first <= 'z' ? slots_by_first[first] : 0;
            while (cand != 0) {
                int i = __builtin_ctz(cand);
                cand &= cand - 1;
                if (key.len == slots[i].len && memcmp(key.p, slots[i].name, key.len) == 0) {
                    dst = (struct gw__jval *)((char *)t + slots[i].off);
                    break;
                }
            }
        }
        if (dst == &t->choices && dst->p == NULL && scan_choices(c, t))
            continue;
        struct gw__jval v;
        if (!gw__json_value(c, &v))
            return false;
        if (dst != NULL && dst->p == NULL)
            *dst = v;
    }
    return rc == 0;
}

static void terminal(struct gw_measure *m)
{
    m->r.saw_terminal = true;
    if (m->r.t_upstream_end_ns == 0)
        m->r.t_upstream_end_ns = m->now_ns;
}

static void copy_str(char *dst, size_t n, const struct gw__jval *v)
{
    if (gw__jval_present(v))
        gw__jval_copy(v, dst, n);
}

static void set_finish(struct gw_measure *m, struct gw_choice *c, enum gw_api api,
                       const struct gw__jval *raw)
{
    if (c == NULL || !gw__jval_nonempty_str(raw))
        return;
    if (c->finish == GW_FINISH_NONE)
        m->finished++;
    gw__jval_copy(raw, c->finish_raw, sizeof(c->finish_raw));
    c->finish = gw_finish_normalize(api, c->finish_raw, strlen(c->finish_raw));
}

/* Adds visible text of a choice (its characters always, its bytes bounded). */
static void add_text(struct gw_measure *m, struct gw_choice *c, struct gw__choice *pv,
                     const struct gw__jval *v)
{
    c->visible_chars += gw__jval_chars(v);
    if (m->max_text_bytes == 0)
        return;
    gw__measure_text(m, &pv->text, v, &c->text_truncated);
    c->text = pv->text.p;
    c->text_len = pv->text.len;
}

static void add_reasoning(struct gw_measure *m, struct gw_choice *c, struct gw__choice *pv,
                          const struct gw__jval *v)
{
    bool cut = false;
    if (m->max_text_bytes == 0)
        return;
    gw__measure_text(m, &pv->reasoning, v, &cut);
    c->reasoning = pv->reasoning.p;
    c->reasoning_len = pv->reasoning.len;
}

/* The tool call with 'index' of a choice, created when new. */
static struct gw_tool_call *tool_call(struct gw_measure *m, struct gw_choice *c,
                                      struct gw__choice *pv, int64_t index)
{
    for (size_t i = 0; i < pv->ncalls; i++)
        if (pv->calls[i].index == index)
            return &pv->calls[i];
    if (pv->ncalls >= GW_MEASURE_MAX_TOOL_CALLS || index < 0 || index > INT32_MAX)
        return NULL;
    if (pv->ncalls == pv->capcalls) {
        size_t cap = pv->capcalls ? pv->capcalls * 2 : 2;
        struct gw_tool_call *calls = hs_reallocarray(pv->calls, cap, sizeof(*calls));
        if (calls == NULL) {
            m->r.bad_events++;
            return NULL;
        }
        pv->calls = calls;
        c->tool_calls = calls;
        struct gw__tool *tools = hs_reallocarray(pv->tools, cap, sizeof(*tools));
        if (tools == NULL) {
            m->r.bad_events++;
            return NULL;
        }
        pv->tools = tools;
        pv->capcalls = cap;
    }
    struct gw_tool_call *tc = &pv->calls[pv->ncalls];
    memset(tc, 0, sizeof(*tc));
    tc->index = (int)index;
    tc->args = "";
    hs_buf_init(&pv->tools[pv->ncalls].args, 0);
    pv->ncalls++;
    c->tool_calls = pv->calls;
    c->n_tool_calls = pv->ncalls;
    return tc;
}

static void tool_args(struct gw_measure *m, struct gw__choice *pv, struct gw_tool_call *tc,
                      const struct gw__jval *frag)
{
    if (m->max_text_bytes == 0 || !gw__jval_nonempty_str(frag))
        return;
    struct gw__tool *t = &pv->tools[tc - pv->calls];
    gw__measure_text(m, &t->args, frag, &tc->args_truncated);
    tc->args = t->args.p ? t->args.p : "";
    tc->args_len = t->args.len;
}

/* One element of delta.tool_calls / message.tool_calls; true when it
 * carries output (a name or an argument fragment). */
static bool read_tool_call(struct gw_measure *m, struct gw_choice *c, struct gw__choice *pv,
                           const struct gw__jval *obj, int64_t pos)
{
    struct gw__jval idx = {0}, id = {0}, fn = {0}, name = {0}, args = {0};
    gw__json_get(obj, "index", &idx);
    gw__json_get(obj, "id", &id);
    if (gw__json_get(obj, "function", &fn)) {
        gw__json_get(&fn, "name", &name);
        gw__json_get(&fn, "arguments", &args);
    }
    int64_t index = pos;
    if (!gw__jval_i64(&idx, &index))
        index = pos;
    struct gw_tool_call *tc = tool_call(m, c, pv, index);
    if (tc != NULL) {
        if (tc->id[0] == '\0')
            copy_str(tc->id, sizeof(tc->id), &id);
        if (tc->name[0] == '\0')
            copy_str(tc->name, sizeof(tc->name), &name);
        tool_args(m, pv, tc, &args);
    }
    return gw__jval_nonempty_str(&name) || gw__jval_nonempty_str(&args);
}

/* delta (stream) or message (body) of a chat choice.  Returns output and
 * sets *visible. */
static bool read_delta(struct gw_measure *m, struct gw_choice *c, struct gw__choice *pv,
                       const struct gw__jval *d, bool *visible)
{
    bool output = false;
    struct gw__jcur cur = gw__json_cur(d);
    if (!gw__json_obj_begin(&cur))
        return false;
    struct gw__jval key, v;
    while (gw__json_obj_next(&cur, &key) == 1) {
        if (!gw__json_value(&cur, &v))
            break;
        if (gw__jval_is(&key, "content") || gw__jval_is(&key, "refusal")) {
            if (gw__jval_nonempty_str(&v)) {
                output = *visible = true;
                add_text(m, c, pv, &v);
            }
        } else if (gw__jval_is(&key, "reasoning_content") || gw__jval_is(&key, "reasoning")) {
            if (gw__jval_nonempty_str(&v)) {
                output = true;
                add_reasoning(m, c, pv, &v);
            }
        } else if (gw__jval_is(&key, "tool_calls") && v.kind == '[') {
            struct gw__jcur a = gw__json_cur(&v);
            if (!gw__json_arr_begin(&a))
                continue;
            int64_t pos = 0;
            struct gw__jval el;
            while (gw__json_arr_next(&a) == 1 && gw__json_value(&a, &el)) {
                if (el.kind == '{' && read_tool_call(m, c, pv, &el, pos))
                    output = true;
                pos++;
            }
        }
    }
    return output;
}

/* One element of "choices", its keys read.  Returns true when it carried
 * output. */
static bool apply_choice(struct gw_measure *m, const struct choice_keys *k, int64_t pos,
                         bool is_body)
{
    const struct gw__jval idx = k->idx, delta = k->delta, message = k->message, text = k->text,
                          fr = k->fr, sr = k->sr;
    int64_t index;
    if (!gw__jval_i64(&idx, &index))
        index = pos;
    struct gw__choice *pv;
    struct gw_choice *c = gw__measure_choice(m, index, &pv);
    if (c == NULL)
        return false;
    bool visible = false, output = false;
    if (delta.kind == '{')
        output = read_delta(m, c, pv, &delta, &visible);
    else if (message.kind == '{')
        output = read_delta(m, c, pv, &message, &visible);
    if (gw__jval_nonempty_str(&text)) {
        output = visible = true;
        add_text(m, c, pv, &text);
    }
    set_finish(m, c, m->r.api, &fr);
    if (gw__jval_present(&sr)) {
        /* keep the JSON text: strings with their quotes, numbers as they are */
        size_t n = sr.kind == '"' ? sr.len + 2 : sr.len;
        const char *p = sr.kind == '"' ? sr.p - 1 : sr.p;
        n = HS_MIN(n, sizeof(c->stop_reason_raw) - 1);
        memcpy(c->stop_reason_raw, p, n);
        c->stop_reason_raw[n] = '\0';
    }
    if (output && !is_body)
        gw__measure_output(m, c, visible);
    return output;
}

/* One element of "choices" (general path).  Returns true when it carried
 * output. */
static bool read_choice(struct gw_measure *m, const struct gw__jval *obj, int64_t pos, bool is_body)
{
    struct choice_keys k = {0};
    struct gw__jcur cur = gw__json_cur(obj);
    if (!gw__json_obj_begin(&cur))
        return false;
    struct gw__jval key, v;
    while (gw__json_obj_next(&cur, &key) == 1) {
        if (!gw__json_value(&cur, &v))
            break;
        choice_key(&k, &key, &v);
    }
    return apply_choice(m, &k, pos, is_body);
}

static void get_i64(const struct gw__jval *obj, const char *name, int64_t *out)
{
    struct gw__jval v;
    int64_t x;
    if (gw__json_get(obj, name, &v) && gw__jval_i64(&v, &x))
        *out = x;
}

/* A usage object (chat, completions, embeddings or Responses names), read
 * in one pass: with continuous_usage_stats it comes with every chunk. */
static void read_usage(struct gw_measure *m, const struct gw__jval *u)
{
    if (u->kind != '{')
        return;
    struct gw_measure_result *r = &m->r;
    m->saw_usage = true;
    struct gw__jcur c = gw__json_cur(u);
    if (!gw__json_obj_begin(&c))
        return;
    struct gw__jval key, v;
    int64_t x;
    while (gw__json_obj_next(&c, &key) == 1 && gw__json_value(&c, &v)) {
        if (gw__jval_is(&key, "prompt_tokens") || gw__jval_is(&key, "input_tokens")) {
            if (gw__jval_i64(&v, &x))
                r->input_tokens = x;
        } else if (gw__jval_is(&key, "completion_tokens") || gw__jval_is(&key, "output_tokens")) {
            if (gw__jval_i64(&v, &x))
                r->output_tokens = x;
        } else if (gw__jval_is(&key, "prompt_tokens_details") ||
                   gw__jval_is(&key, "input_tokens_details")) {
            get_i64(&v, "cached_tokens", &r->cached_tokens);
        } else if (gw__jval_is(&key, "completion_tokens_details") ||
                   gw__jval_is(&key, "output_tokens_details")) {
            get_i64(&v, "reasoning_tokens", &r->reasoning_tokens);
        }
    }
}

static bool get_f64(const struct gw__jval *obj, const char *name, double *out)
{
    struct gw__jval v;
    return gw__json_get(obj, name, &v) && gw__jval_f64(&v, out);
}

/* llama.cpp timings (§3.6); the last object seen wins. */
static void read_timings(struct gw_measure *m, const struct gw__jval *t)
{
    if (t->kind != '{')
        return;
    struct gw_engine_timings *e = &m->r.engine_timings;
    memset(e, 0, sizeof(*e));
    e->present = true;
    HS_IGNORE_RESULT(get_f64(t, "prompt_n", &e->prompt_n));
    HS_IGNORE_RESULT(get_f64(t, "prompt_ms", &e->prompt_ms));
    HS_IGNORE_RESULT(get_f64(t, "predicted_n", &e->predicted_n));
    HS_IGNORE_RESULT(get_f64(t, "predicted_ms", &e->predicted_ms));
    HS_IGNORE_RESULT(get_f64(t, "cache_n", &e->cache_n));
    if (t->len < sizeof(e->json)) {
        memcpy(e->json, t->p, t->len);
        e->json[t->len] = '\0';
    }
}

/* Error objects: nested {"error":{...}}, flat {"object":"error",...} and
 * TGI {"error":"...","error_type":"..."} (§3.7.2). */
static void read_error(struct gw_measure *m, const struct top *t)
{
    struct gw_measure_result *r = &m->r;
    struct gw__jval type = {0}, code = {0}, msg = {0};
    if (t->error.kind == '{') {
        gw__json_get(&t->error, "type", &type);
        gw__json_get(&t->error, "code", &code);
        gw__json_get(&t->error, "message", &msg);
        if (!gw__jval_present(&code))
            gw__json_get(&t->error, "http_status_code", &code);
    } else if (t->error.kind == '"') {
        msg = t->error;
        type = t->error_type;
    } else {
        type = t->type;
        code = t->code;
        msg = t->message;
    }
    if (r->error_type[0] == '\0')
        copy_str(r->error_type, sizeof(r->error_type), &type);
    if (r->error_code[0] == '\0')
        copy_str(r->error_code, sizeof(r->error_code), &code);
    if (r->error_message[0] == '\0')
        copy_str(r->error_message, sizeof(r->error_message), &msg);
}

static void read_openai(struct gw_measure *m, const struct top *t, bool is_body)
{
    bool output = false;
    if (t->npre >= 0) {
        for (int i = 0; i < t->npre; i++)
            if (apply_choice(m, &t->pre[i], i, is_body))
                output = true;
        if (t->npre == 0 && t->usage.kind == '{')
            m->event_usage_only = true;
    } else if (t->choices.kind == '[') {
        struct gw__jcur a = gw__json_cur(&t->choices);
        if (gw__json_arr_begin(&a)) {
            int64_t pos = 0;
            struct gw__jval el;
            int rc;
            while ((rc = gw__json_arr_next(&a)) == 1 && gw__json_value(&a, &el)) {
                if (el.kind == '{' && read_choice(m, &el, pos, is_body))
                    output = true;
                pos++;
            }
            if (rc == 0 && pos == 0 && t->usage.kind == '{')
                m->event_usage_only = true;
        }
    }
    if (output && !is_body)
        m->r.output_events++;
    if (t->usage.kind == '{')
        read_usage(m, &t->usage);
    if (t->timings.kind == '{')
        read_timings(m, &t->timings);
}

/* ---- Responses API ----------------------------------------------------------------- */

static struct gw_choice *choice0(struct gw_measure *m, struct gw__choice **pv)
{
    return gw__measure_choice(m, 0, pv);
}

/* One item of a Responses output[]: function calls are counted (and, in a
 * body, recorded); message text is taken from a body only (a stream sent
 * it as deltas already). */
static void read_response_item(struct gw_measure *m, struct gw_choice *c, struct gw__choice *pv,
                               const struct gw__jval *item, int64_t pos, bool is_body)
{
    struct gw__jval type = {0};
    gw__json_get(item, "type", &type);
    if (gw__jval_is(&type, "function_call")) {
        m->saw_function_call_item = true;
        if (!is_body || c == NULL)
            return;
        struct gw__jval name = {0}, id = {0}, args = {0};
        gw__json_get(item, "name", &name);
        gw__json_get(item, "call_id", &id);
        gw__json_get(item, "arguments", &args);
        struct gw_tool_call *tc = tool_call(m, c, pv, pos);
        if (tc != NULL) {
            copy_str(tc->name, sizeof(tc->name), &name);
            copy_str(tc->id, sizeof(tc->id), &id);
            tool_args(m, pv, tc, &args);
        }
    } else if (is_body && c != NULL && gw__jval_is(&type, "message")) {
        struct gw__jval content = {0}, part;
        gw__json_get(item, "content", &content);
        struct gw__jcur pc = gw__json_cur(&content);
        if (content.kind != '[' || !gw__json_arr_begin(&pc))
            return;
        while (gw__json_arr_next(&pc) == 1 && gw__json_value(&pc, &part)) {
            struct gw__jval text = {0};
            gw__json_get(&part, "text", &text);
            if (gw__jval_nonempty_str(&text))
                add_text(m, c, pv, &text);
        }
    }
}

static void read_response_output(struct gw_measure *m, struct gw_choice *c, struct gw__choice *pv,
                                 const struct gw__jval *output, bool is_body)
{
    struct gw__jcur a = gw__json_cur(output);
    if (output->kind != '[' || !gw__json_arr_begin(&a))
        return;
    int64_t pos = 0;
    struct gw__jval item;
    while (gw__json_arr_next(&a) == 1 && gw__json_value(&a, &item))
        read_response_item(m, c, pv, &item, pos++, is_body);
}

/* A response object (non-stream body or the terminal event's "response"). */
static void read_response_obj(struct gw_measure *m, const struct gw__jval *resp, bool is_body)
{
    struct gw__jval status = {0}, inc = {0}, usage = {0}, output = {0}, error = {0}, model = {0};
    gw__json_get(resp, "status", &status);
    gw__json_get(resp, "incomplete_details", &inc);
    gw__json_get(resp, "usage", &usage);
    gw__json_get(resp, "output", &output);
    gw__json_get(resp, "error", &error);
    gw__json_get(resp, "model", &model);
    if (m->r.model[0] == '\0')
        copy_str(m->r.model, sizeof(m->r.model), &model);
    if (m->r.response_id[0] == '\0' && gw__json_get(resp, "id", &model))
        copy_str(m->r.response_id, sizeof(m->r.response_id), &model);
    copy_str(m->r.response_status, sizeof(m->r.response_status), &status);
    if (usage.kind == '{')
        read_usage(m, &usage);
    struct gw__choice *pv;
    struct gw_choice *c = choice0(m, &pv);
    read_response_output(m, c, pv, &output, is_body);
    if (c == NULL)
        return;
    struct gw__jval reason = {0};
    if (inc.kind == '{')
        gw__json_get(&inc, "reason", &reason);
    if (gw__jval_is(&status, "completed")) {
        struct gw__jval v = {m->saw_function_call_item ? "tool_calls" : "stop", 0, '"', false};
        v.len = strlen(v.p);
        set_finish(m, c, GW_API_CHAT, &v);
    } else if (gw__jval_is(&status, "incomplete")) {
        set_finish(m, c, GW_API_RESPONSES, &reason);
        if (c->finish == GW_FINISH_NONE) {
            struct gw__jval v = {"incomplete", 10, '"', false};
            set_finish(m, c, GW_API_RESPONSES, &v);
        }
    } else if (gw__jval_is(&status, "failed")) {
        m->saw_error = true;
        if (c->finish == GW_FINISH_NONE)
            m->finished++;
        c->finish = GW_FINISH_ERROR;
        gw__jval_copy(&status, c->finish_raw, sizeof(c->finish_raw));
        if (error.kind == '{') {
            struct top t = {0};
            gw__json_get(&error, "code", &t.code);
            gw__json_get(&error, "message", &t.message);
            t.type = t.code; /* §4.8: the error type, else its code */
            read_error(m, &t);
        }
    } else if (gw__jval_nonempty_str(&status) && !gw__jval_is(&status, "in_progress") &&
               !gw__jval_is(&status, "queued")) {
        set_finish(m, c, GW_API_RESPONSES, &status);
    }
}

static bool type_is(const char *type, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(type, lit, n) == 0;
}

static void read_responses_event(struct gw_measure *m, const char *type, size_t tl,
                                 const struct top *t)
{
    struct gw__choice *pv;
    if (type_is(type, tl, "response.output_text.delta") ||
        type_is(type, tl, "response.refusal.delta")) {
        if (!gw__jval_nonempty_str(&t->delta))
            return;
        struct gw_choice *c = choice0(m, &pv);
        if (c != NULL)
            add_text(m, c, pv, &t->delta);
        gw__measure_output(m, c, true);
        m->r.output_events++;
    } else if (type_is(type, tl, "response.function_call_arguments.delta") ||
               type_is(type, tl, "response.reasoning_summary_text.delta") ||
               type_is(type, tl, "response.reasoning_text.delta")) {
        if (!gw__jval_nonempty_str(&t->delta))
            return;
        struct gw_choice *c = choice0(m, &pv);
        if (c != NULL) {
            if (type[9] == 'f') {
                int64_t oi = 0;
                HS_IGNORE_RESULT(gw__jval_i64(&t->output_index, &oi));
                struct gw_tool_call *tc = tool_call(m, c, pv, oi);
                if (tc != NULL)
                    tool_args(m, pv, tc, &t->delta);
            } else {
                add_reasoning(m, c, pv, &t->delta);
            }
        }
        gw__measure_output(m, c, false);
        m->r.output_events++;
    } else if (type_is(type, tl, "response.output_item.added")) {
        struct gw__jval itype = {0}, name = {0}, id = {0};
        gw__json_get(&t->item, "type", &itype);
        if (!gw__jval_is(&itype, "function_call"))
            return;
        m->saw_function_call_item = true;
        gw__json_get(&t->item, "name", &name);
        gw__json_get(&t->item, "call_id", &id);
        struct gw_choice *c = choice0(m, &pv);
        int64_t oi = 0;
        HS_IGNORE_RESULT(gw__jval_i64(&t->output_index, &oi));
        struct gw_tool_call *tc = c ? tool_call(m, c, pv, oi) : NULL;
        if (tc != NULL) {
            copy_str(tc->name, sizeof(tc->name), &name);
            copy_str(tc->id, sizeof(tc->id), &id);
        }
    } else if (type_is(type, tl, "response.completed") ||
               type_is(type, tl, "response.incomplete") || type_is(type, tl, "response.failed")) {
        if (t->response.kind == '{')
            read_response_obj(m, &t->response, false);
        if (type_is(type, tl, "response.failed"))
            m->saw_error = true;
        terminal(m);
    } else if (type_is(type, tl, "error")) {
        m->saw_error = true;
        struct top e = *t;
        memset(&e.error, 0, sizeof(e.error));
        e.type = gw__jval_present(&t->code) ? t->code : t->type;
        read_error(m, &e);
    } else if (type_is(type, tl, "response.created") || type_is(type, tl, "response.in_progress")) {
        struct gw__jval model = {0};
        if (m->r.model[0] == '\0' && gw__json_get(&t->response, "model", &model))
            copy_str(m->r.model, sizeof(m->r.model), &model);
        if (m->r.response_id[0] == '\0' && gw__json_get(&t->response, "id", &model))
            copy_str(m->r.response_id, sizeof(m->r.response_id), &model);
    }
    /* every other response.* type is lifecycle or tool progress: ignored */
}

/* ---- engine-native dialects -------------------------------------------------------- */

static void read_tgi(struct gw_measure *m, const struct top *t, bool is_body)
{
    struct gw__choice *pv;
    struct gw_choice *c = choice0(m, &pv);
    if (t->token.kind == '{' && !is_body) {
        struct gw__jval text = {0}, special = {0};
        gw__json_get(&t->token, "text", &text);
        gw__json_get(&t->token, "special", &special);
        bool visible = special.kind != 't' && gw__jval_nonempty_str(&text);
        m->token_events++;
        if (visible && c != NULL)
            add_text(m, c, pv, &text);
        gw__measure_output(m, c, visible);
        m->r.output_events++;
    }
    if (is_body && c != NULL && gw__jval_nonempty_str(&t->generated_text))
        add_text(m, c, pv, &t->generated_text);
    if (t->details.kind == '{') {
        struct gw__jval fr = {0};
        gw__json_get(&t->details, "finish_reason", &fr);
        set_finish(m, c, GW_API_TGI_GENERATE, &fr);
        get_i64(&t->details, "generated_tokens", &m->eng_out);
        get_i64(&t->details, "input_length", &m->eng_in);
    }
    if (!is_body && (gw__jval_present(&t->generated_text) || gw__jval_present(&t->details)))
        terminal(m);
}

static void read_sglang(struct gw_measure *m, const struct top *t, bool is_body)
{
    int64_t index = 0;
    if (!gw__jval_i64(&t->index, &index))
        index = 0;
    struct gw__choice *pv;
    struct gw_choice *c = gw__measure_choice(m, index, &pv);
    if (c == NULL)
        return;
    if (t->text.kind == '"') {
        hs_buf_reset(&m->scratch);
        bool cut = false;
        if (gw__jval_unescape(&t->text, &m->scratch, GW_MEASURE_MAX_EVENT, &cut) != HS_OK) {
            m->r.bad_events++;
            return;
        }
        size_t n = m->scratch.len;
        if (n > pv->sglang_len || (is_body && n > 0)) {
            size_t from = is_body ? 0 : pv->sglang_len;
            struct gw__jval d = {m->scratch.p + from, n - from, '"', false};
            add_text(m, c, pv, &d);
            pv->sglang_len = n;
            if (!is_body) {
                gw__measure_output(m, c, true);
                m->r.output_events++;
            }
        }
    }
    if (t->meta_info.kind == '{') {
        get_i64(&t->meta_info, "prompt_tokens", &m->eng_in);
        get_i64(&t->meta_info, "completion_tokens", &m->eng_out);
        get_i64(&t->meta_info, "cached_tokens", &m->r.cached_tokens);
        struct gw__jval fr = {0}, ft = {0};
        if (gw__json_get(&t->meta_info, "finish_reason", &fr)) {
            if (fr.kind == '{')
                gw__json_get(&fr, "type", &ft);
            else
                ft = fr;
            set_finish(m, c, GW_API_SGLANG_GENERATE, &ft);
        }
    }
}

static void read_llamacpp(struct gw_measure *m, const struct top *t, bool is_body)
{
    struct gw__choice *pv;
    struct gw_choice *c = choice0(m, &pv);
    if (gw__jval_nonempty_str(&t->content)) {
        if (c != NULL)
            add_text(m, c, pv, &t->content);
        if (!is_body) {
            gw__measure_output(m, c, true);
            m->r.output_events++;
        }
    }
    if (t->stop.kind == 't') /* stop_type is "none" while generating */
        set_finish(m, c, GW_API_LLAMACPP_COMPLETION, &t->stop_type);
    int64_t x;
    if (gw__jval_i64(&t->tokens_predicted, &x))
        m->eng_out = x;
    if (gw__jval_i64(&t->tokens_evaluated, &x))
        m->eng_in = x;
    if (t->timings.kind == '{')
        read_timings(m, &t->timings);
    if (!is_body && t->stop.kind == 't')
        terminal(m);
}

static void read_embeddings(struct gw_measure *m, const struct top *t)
{
    struct gw__jcur a = gw__json_cur(&t->data);
    if (!gw__json_arr_begin(&a))
        return;
    size_t n = 0;
    while (gw__json_arr_next(&a) == 1 && gw__json_value(&a, NULL))
        n++;
    m->r.embeddings = n;
    if (t->usage.kind == '{')
        read_usage(m, &t->usage);
}

/* ---- dispatch ------------------------------------------------------------------------ */

static void read_object(struct gw_measure *m, const char *type, size_t tl, const struct top *t,
                        bool is_body)
{
    enum gw_api api = m->r.api;
    if (m->r.model[0] == '\0' && t->model.kind == '"')
        gw__jval_copy(&t->model, m->r.model, sizeof(m->r.model));
    if (m->r.response_id[0] == '\0' && t->id.kind == '"')
        gw__jval_copy(&t->id, m->r.response_id, sizeof(m->r.response_id));
    /* Responses events: by the event: line or the data's "type" */
    if (tl == 0 && t->type.kind == '"' && !t->type.is_esc) {
        type = t->type.p;
        tl = t->type.len;
    }
    if (is_body && gw__jval_is(&t->object, "response")) {
        read_response_obj(m, &(struct gw__jval){t->p_all, t->len_all, '{', false}, true);
        return;
    }
    if (gw__jval_present(&t->error) || gw__jval_is(&t->object, "error")) {
        m->saw_error = true;
        read_error(m, t);
        return;
    }
    if (!is_body && (api == GW_API_RESPONSES || (tl > 9 && memcmp(type, "response.", 9) == 0))) {
        read_responses_event(m, type, tl, t);
        return;
    }
    if (t->choices.kind == '[' || (t->usage.kind == '{' && t->data.kind != '[')) {
        read_openai(m, t, is_body);
    } else if (t->token.kind == '{' || gw__jval_present(&t->generated_text) ||
               t->details.kind == '{') {
        read_tgi(m, t, is_body);
    } else if (t->meta_info.kind == '{' || (api == GW_API_SGLANG_GENERATE && t->text.kind == '"')) {
        read_sglang(m, t, is_body);
    } else if (t->content.kind == '"' || t->stop.kind == 't' || t->stop.kind == 'f' ||
               api == GW_API_LLAMACPP_COMPLETION) {
        read_llamacpp(m, t, is_body);
    } else if (t->data.kind == '[') {
        read_embeddings(m, t);
    } else if (t->timings.kind == '{') {
        read_timings(m, &t->timings);
    }
}

void gw__measure_payload(struct gw_measure *m, const char *type, size_t type_len, const char *data,
                         size_t len, bool is_body)
{
    if (!is_body && len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        m->r.saw_done = true;
        terminal(m);
        return;
    }
    struct gw__jcur c = {data, data + len};
    gw__json_ws(&c);
    if (is_body && c.p < c.end && *c.p == '[') {
        /* TGI /generate may answer with an array of results */
        struct gw__jval el;
        if (!gw__json_arr_begin(&c))
            return;
        while (gw__json_arr_next(&c) == 1 && gw__json_value(&c, &el)) {
            struct gw__jcur ec = gw__json_cur(&el);
            struct top t;
            if (el.kind == '{' && scan_top(&ec, &t))
                read_object(m, "", 0, &t, true);
        }
        return;
    }
    struct top t;
    if (!scan_top(&c, &t)) {
        m->r.bad_events++;
        return;
    }
    t.p_all = data;
    t.len_all = len;
    read_object(m, type, type_len, &t, is_body);
}

void gw__measure_error_body(struct gw_measure *m, const char *data, size_t len)
{
    struct gw__jcur c = {data, data + len};
    struct top t;
    if (!scan_top(&c, &t)) {
        m->r.bad_events++;
        return;
    }
    read_error(m, &t);
}
