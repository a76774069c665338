/*
 * extract.c - turns request and response bodies into a struct qual_input:
 * the user's prompt text, whether JSON was asked for, the visible output of
 * choice 0, its finish reason and token count.
 *
 * Handles the OpenAI shapes (chat, legacy completions, Responses API,
 * embeddings), TGI's /generate, and raw text/event-stream bodies of all of
 * them (spec/gateway.md §3.1: lines end with LF, CR or CRLF; "data:" lines
 * of one event are joined with "\n"; comments skipped; "[DONE]" ends the
 * stream).  Joined text stops growing at QUAL_MAX_JSON_BYTES, so a huge
 * body costs bounded memory.  Unknown fields are ignored everywhere.
 */
#include "quality/quality.h"

#include <jansson.h>

#include <string.h>

/* ---- small JSON helpers ------------------------------------------------------ */

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* err->pos is the offset of the last byte the parser read (the offending one). */
static int load(const char *body, size_t len, const char *what, json_t **out, struct hs_err *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        return hs_err_setpos(err, HS_EPARSE, (size_t)(jerr.position > 0 ? jerr.position - 1 : 0),
                             "%s: %d:%d: %s", what, jerr.line, jerr.column, jerr.text);
    *out = j;
    return HS_OK;
}

/* Appends to 'b' and ignores its ceiling: text past QUAL_MAX_JSON_BYTES is
 * dropped.  Only HS_ENOMEM is reported. */
static int add(struct hs_buf *b, const char *s, size_t n)
{
    int rc = hs_buf_append(b, s, n);
    return rc == HS_ETOOBIG ? HS_OK : rc;
}

static int add_sep(struct hs_buf *b, const char *s)
{
    int rc = HS_OK;
    if (b->len > 0)
        rc = add(b, "\n", 1);
    if (rc == HS_OK)
        rc = add(b, s, strlen(s));
    return rc;
}

/* Text of a message content: a string, or an array of parts whose "text"
 * (text / input_text / output_text parts) is joined. */
static int add_content(struct hs_buf *b, const json_t *content)
{
    if (json_is_string(content))
        return add_sep(b, json_string_value(content));
    if (!json_is_array(content))
        return HS_OK;
    size_t i;
    const json_t *part;
    int rc = HS_OK;
    json_array_foreach(content, i, part)
    {
        const char *t = jstr(part, "text");
        if (t != NULL && rc == HS_OK)
            rc = add_sep(b, t);
    }
    return rc;
}

static const char *normalise_finish(const char *raw)
{
    static const char *const same[] = {"stop",           "length", "tool_calls",
                                       "content_filter", "error",  "cancelled"};
    if (raw == NULL)
        return NULL;
    for (size_t i = 0; i < HS_ARRAY_LEN(same); i++)
        if (strcmp(raw, same[i]) == 0)
            return same[i];
    if (strcmp(raw, "function_call") == 0)
        return "tool_calls";
    if (strcmp(raw, "eos_token") == 0 || strcmp(raw, "stop_sequence") == 0 ||
        strcmp(raw, "eos") == 0 || strcmp(raw, "completed") == 0)
        return "stop";
    if (strcmp(raw, "max_output_tokens") == 0 || strcmp(raw, "max_tokens") == 0 ||
        strcmp(raw, "limit") == 0)
        return "length";
    if (strcmp(raw, "abort") == 0 || strcmp(raw, "failed") == 0)
        return "error";
    return "unknown";
}

static bool format_is_json(const json_t *fmt)
{
    const char *t = jstr(fmt, "type");
    return t != NULL && (strcmp(t, "json_object") == 0 || strcmp(t, "json_schema") == 0 ||
                         strcmp(t, "json") == 0);
}

/* ---- request ------------------------------------------------------------------- */

/* Embeddings: "input" of strings or token ids, or embedding-only keys. */
static bool is_embeddings_request(const json_t *req)
{
    if (json_object_get(req, "encoding_format") || json_object_get(req, "dimensions"))
        return true;
    const json_t *input = json_object_get(req, "input");
    if (!json_is_array(input) || json_array_size(input) == 0)
        return false;
    const json_t *first = json_array_get(input, 0);
    return json_is_string(first) || json_is_integer(first) || json_is_array(first);
}

static int request_prompt(const json_t *req, struct hs_buf *b)
{
    int rc = HS_OK;
    const json_t *msgs = json_object_get(req, "messages");
    if (json_is_array(msgs)) {
        size_t i;
        const json_t *m;
        json_array_foreach(msgs, i, m)
        {
            const char *role = jstr(m, "role");
            if (rc == HS_OK && role != NULL && strcmp(role, "user") == 0)
                rc = add_content(b, json_object_get(m, "content"));
        }
        return rc;
    }
    const json_t *prompt = json_object_get(req, "prompt");
    if (prompt == NULL)
        prompt = json_object_get(req, "inputs"); /* TGI */
    if (prompt != NULL)
        return add_content(b, prompt);
    const json_t *input = json_object_get(req, "input"); /* Responses API */
    if (json_is_string(input))
        return add_sep(b, json_string_value(input));
    if (json_is_array(input)) {
        size_t i;
        const json_t *item;
        json_array_foreach(input, i, item)
        {
            const char *role = jstr(item, "role");
            if (rc == HS_OK && (role == NULL || strcmp(role, "user") == 0))
                rc = add_content(b, json_object_get(item, "content"));
        }
    }
    return rc;
}

int qual_extract_request(const char *body, size_t len, struct hs_arena *a, struct qual_input *in,
                         struct hs_err *err)
{
    json_t *req = NULL;
    int rc = load(body, len, "request body", &req, err);
    if (rc != HS_OK)
        return rc;
    struct hs_buf b;
    hs_buf_init(&b, QUAL_MAX_JSON_BYTES);
    struct qual_input t = *in;
    if (!json_is_object(req)) {
        rc = hs_err_set(err, HS_EINVAL, "request body: expected a JSON object");
        goto out;
    }
    if (t.model == NULL && jstr(req, "model") != NULL) {
        t.model = hs_arena_strndup(a, jstr(req, "model"), strlen(jstr(req, "model")));
        if (t.model == NULL) {
            rc = hs_err_set(err, HS_ENOMEM, "request body: out of memory");
            goto out;
        }
    }
    if (is_embeddings_request(req)) {
        t.is_scorable = false;
        *in = t;
        goto out;
    }
    const json_t *text = json_object_get(req, "text");
    const json_t *params = json_object_get(req, "parameters");
    t.wants_json = format_is_json(json_object_get(req, "response_format")) ||
                   format_is_json(json_object_get(text, "format")) ||
                   format_is_json(json_object_get(params, "grammar"));
    rc = request_prompt(req, &b);
    if (rc != HS_OK) {
        rc = hs_err_set(err, HS_ENOMEM, "request body: out of memory");
        goto out;
    }
    if (b.len > 0) {
        t.prompt = hs_arena_strndup(a, b.p, b.len);
        t.prompt_len = b.len;
        if (t.prompt == NULL) {
            rc = hs_err_set(err, HS_ENOMEM, "request body: out of memory");
            goto out;
        }
    }
    *in = t;
out:
    hs_buf_cleanup(&b);
    json_decref(req);
    return rc;
}

/* ---- response -------------------------------------------------------------------- */

struct resp_state {
    struct hs_buf text; /* visible output of choice 0 */
    const char *finish; /* normalised, static */
    int64_t tokens;     /* -1 unknown */
    bool is_terminal;   /* a terminal marker was seen */
    bool is_embeddings;
    bool is_error;
    bool has_tool_calls;
};

static void take_usage(struct resp_state *s, const json_t *usage)
{
    const json_t *v = json_object_get(usage, "completion_tokens");
    if (v == NULL)
        v = json_object_get(usage, "output_tokens");
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        s->tokens = json_integer_value(v);
}

/* Choice 0 of a chat / completion body or chunk. */
static int take_choice0(struct resp_state *s, const json_t *choices)
{
    size_t i;
    const json_t *c;
    int rc = HS_OK;
    json_array_foreach(choices, i, c)
    {
        const json_t *idx = json_object_get(c, "index");
        if (idx != NULL && json_integer_value(idx) != 0)
            continue;
        const json_t *msg = json_object_get(c, "message");
        if (msg == NULL)
            msg = json_object_get(c, "delta");
        if (json_array_size(json_object_get(msg, "tool_calls")) > 0 ||
            json_is_object(json_object_get(msg, "function_call")))
            s->has_tool_calls = true;
        const char *parts[] = {jstr(msg, "content"), jstr(msg, "refusal"), jstr(c, "text")};
        for (size_t k = 0; rc == HS_OK && k < HS_ARRAY_LEN(parts); k++)
            if (parts[k] != NULL)
                rc = add(&s->text, parts[k], strlen(parts[k]));
        const char *fr = jstr(c, "finish_reason");
        if (fr != NULL)
            s->finish = normalise_finish(fr);
        break;
    }
    return rc;
}

/* A Responses API `response` object: its message texts, status, usage. */
static int take_response_obj(struct resp_state *s, const json_t *r)
{
    int rc = HS_OK;
    size_t i, j;
    const json_t *item, *part;
    bool has_call = false;
    bool want_text = s->text.len == 0; /* a stream's deltas already gave it */
    json_array_foreach(json_object_get(r, "output"), i, item)
    {
        const char *type = jstr(item, "type");
        if (type != NULL && strcmp(type, "function_call") == 0)
            has_call = true;
        json_array_foreach(json_object_get(item, "content"), j, part)
        {
            const char *t = jstr(part, "text");
            if (t == NULL)
                t = jstr(part, "refusal");
            if (want_text && t != NULL && rc == HS_OK)
                rc = add(&s->text, t, strlen(t));
        }
    }
    const char *status = jstr(r, "status");
    if (has_call)
        s->has_tool_calls = true;
    if (status != NULL && strcmp(status, "completed") == 0)
        s->finish = has_call ? "tool_calls" : "stop";
    else if (status != NULL && strcmp(status, "incomplete") == 0)
        s->finish = normalise_finish(jstr(json_object_get(r, "incomplete_details"), "reason"));
    else if (status != NULL && strcmp(status, "failed") == 0)
        s->finish = "error";
    take_usage(s, json_object_get(r, "usage"));
    return rc;
}

/* TGI /generate and /generate_stream objects. */
static int take_tgi(struct resp_state *s, const json_t *o, bool is_stream)
{
    int rc = HS_OK;
    const json_t *details = json_object_get(o, "details");
    const json_t *tok = json_object_get(o, "token");
    if (is_stream && tok != NULL && !json_is_true(json_object_get(tok, "special"))) {
        const char *t = jstr(tok, "text");
        if (t != NULL)
            rc = add(&s->text, t, strlen(t));
    }
    const char *gen = jstr(o, "generated_text");
    if (!is_stream && gen != NULL)
        rc = add(&s->text, gen, strlen(gen));
    if (gen != NULL || json_is_object(details))
        s->is_terminal = true;
    if (json_is_object(details)) {
        s->finish = normalise_finish(jstr(details, "finish_reason"));
        const json_t *g = json_object_get(details, "generated_tokens");
        if (json_is_integer(g))
            s->tokens = json_integer_value(g);
    }
    return rc;
}

/* One JSON document: a whole response body or one SSE event's data. */
static int take_doc(struct resp_state *s, const json_t *o, const char *event, bool is_stream)
{
    if (json_is_array(o)) /* TGI /generate may answer with an array */
        o = json_array_get(o, 0);
    if (!json_is_object(o))
        return HS_OK;
    const char *type = jstr(o, "type");
    if (type == NULL)
        type = event;
    const char *object = jstr(o, "object");
    if (object != NULL && strcmp(object, "list") == 0) {
        s->is_embeddings = true;
        return HS_OK;
    }
    if (json_object_get(o, "error") != NULL && json_object_get(o, "choices") == NULL) {
        s->is_error = true;
        s->finish = "error";
        s->is_terminal = true;
        return HS_OK;
    }
    if (json_object_get(o, "choices") != NULL) {
        take_usage(s, json_object_get(o, "usage"));
        return take_choice0(s, json_object_get(o, "choices"));
    }
    if (json_object_get(o, "usage") != NULL && json_object_get(o, "output") == NULL && type == NULL)
        take_usage(s, json_object_get(o, "usage"));
    if (type != NULL && hs_has_prefix(type, "response.")) {
        if (strcmp(type, "response.output_text.delta") == 0 ||
            strcmp(type, "response.refusal.delta") == 0) {
            const char *d = jstr(o, "delta");
            return d ? add(&s->text, d, strlen(d)) : HS_OK;
        }
        if (strcmp(type, "response.completed") == 0 || strcmp(type, "response.incomplete") == 0 ||
            strcmp(type, "response.failed") == 0) {
            s->is_terminal = true;
            return take_response_obj(s, json_object_get(o, "response"));
        }
        return HS_OK;
    }
    if (object != NULL && strcmp(object, "response") == 0)
        return take_response_obj(s, o);
    if (json_object_get(o, "token") != NULL || json_object_get(o, "generated_text") != NULL)
        return take_tgi(s, o, is_stream);
    return HS_OK;
}

/* ---- SSE ---------------------------------------------------------------------------- */

static int dispatch(struct resp_state *s, struct hs_buf *data, const char *event)
{
    if (data->len == 0)
        return HS_OK;
    if (strcmp(data->p, "[DONE]") == 0) {
        s->is_terminal = true;
        return HS_OK;
    }
    json_error_t jerr;
    json_t *o = json_loadb(data->p, data->len, 0, &jerr);
    if (o == NULL)
        return HS_OK; /* not JSON: skipped */
    int rc = take_doc(s, o, event, true);
    json_decref(o);
    return rc;
}

static int parse_sse(struct resp_state *s, const char *body, size_t len)
{
    struct hs_buf data;
    hs_buf_init(&data, QUAL_MAX_JSON_BYTES);
    char event[64] = "";
    int rc = HS_OK;
    size_t i = 0;
    while (rc == HS_OK && i <= len) {
        size_t e = i;
        while (e < len && body[e] != '\n' && body[e] != '\r')
            e++;
        const char *line = body + i;
        size_t n = e - i;
        if (e < len && body[e] == '\r' && e + 1 < len && body[e + 1] == '\n')
            e++;
        i = e + 1;
        if (n == 0) {
            rc = dispatch(s, &data, event[0] ? event : NULL);
            hs_buf_reset(&data);
            event[0] = '\0';
            continue;
        }
        if (line[0] == ':')
            continue;
        const char *colon = memchr(line, ':', n);
        size_t fl = colon ? (size_t)(colon - line) : n;
        const char *v = colon ? colon + 1 : line + n;
        size_t vl = (size_t)(line + n - v);
        if (vl > 0 && v[0] == ' ') {
            v++;
            vl--;
        }
        if (fl == 4 && memcmp(line, "data", 4) == 0) {
            if (data.len > 0)
                rc = add(&data, "\n", 1);
            if (rc == HS_OK)
                rc = add(&data, v, vl);
        } else if (fl == 5 && memcmp(line, "event", 5) == 0) {
            size_t k = HS_MIN(vl, sizeof(event) - 1);
            memcpy(event, v, k);
            event[k] = '\0';
        }
    }
    hs_buf_cleanup(&data);
    return rc;
}

int qual_extract_response(const char *body, size_t len, bool is_sse, struct hs_arena *a,
                          struct qual_input *in, struct hs_err *err)
{
    struct resp_state s = {.tokens = -1};
    hs_buf_init(&s.text, QUAL_MAX_JSON_BYTES);
    int rc = HS_OK;
    if (is_sse) {
        rc = parse_sse(&s, body, len);
        if (rc == HS_OK && !s.is_terminal && s.finish == NULL)
            s.finish = "error";
    } else {
        json_t *o = NULL;
        rc = load(body, len, "response body", &o, err);
        if (rc != HS_OK)
            goto out;
        if (!json_is_object(o) && !json_is_array(o)) {
            json_decref(o);
            rc = hs_err_set(err, HS_EINVAL, "response body: expected a JSON object");
            goto out;
        }
        rc = take_doc(&s, o, NULL, false);
        json_decref(o);
    }
    if (rc != HS_OK) {
        rc = hs_err_set(err, HS_ENOMEM, "response body: out of memory");
        goto out;
    }
    struct qual_input t = *in;
    t.output = hs_arena_strndup(a, s.text.p ? s.text.p : "", s.text.len);
    if (t.output == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "response body: out of memory");
        goto out;
    }
    t.output_len = s.text.len;
    t.finish_reason = s.finish;
    if (s.tokens >= 0)
        t.output_tokens = s.tokens;
    if (s.is_embeddings || s.is_error)
        t.is_scorable = false;
    if (s.has_tool_calls)
        t.has_tool_calls = true;
    *in = t;
out:
    hs_buf_cleanup(&s.text);
    return rc;
}
