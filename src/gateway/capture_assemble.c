/*
 * capture_assemble.c - capture.stream_output: assembled (spec/gateway.md
 * §8.2): turns a captured text/event-stream body into the JSON object a
 * non-streaming call would have returned, so the capture holds one
 * readable answer and redaction sees the joined text (a value split across
 * two events is then detected, §9.3).
 *
 * Chat chunks become a chat.completion (per-choice message content,
 * reasoning, refusal and merged tool calls, finish_reason, usage); legacy
 * completion chunks a text_completion; the Responses API keeps the
 * "response" object of its terminal event.  Anything else (TGI, native
 * engine streams, no JSON events at all) is reported as HS_EINVAL so the
 * writer keeps the raw bytes.  Events are split on blank lines and their
 * "data:" lines joined with '\n', as the SSE specification reads them.
 */
#include "gateway/capture.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

#define MAX_CHOICES    16
#define MAX_TOOL_CALLS 64
#define MAX_EVENTS     (1u << 20)

enum kind { KIND_NONE = 0, KIND_CHAT, KIND_TEXT, KIND_RESPONSES };

struct tcall {
    bool is_used;
    struct hs_buf id, type, name, args;
};

struct choice {
    bool is_used;
    struct hs_buf content, reasoning, refusal;
    bool has_content, has_refusal, has_reasoning;
    char finish[32];
    struct tcall calls[MAX_TOOL_CALLS];
    size_t ncalls; /* highest index + 1 */
};

struct assembler {
    int kind;                                                      /* enum kind */
    json_t *id, *model, *created, *fingerprint, *usage, *response; /* owned references */
    struct choice *ch;                                             /* MAX_CHOICES, allocated */
    size_t nch;                                                    /* highest index + 1 */
    int rc;                                                        /* first allocation error */
};

static void keep(json_t **slot, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    json_incref(v);
    json_decref(*slot);
    *slot = v;
}

static void buf_add(struct assembler *a, struct hs_buf *b, json_t *s)
{
    if (!json_is_string(s) || a->rc != HS_OK)
        return;
    a->rc = hs_buf_append(b, json_string_value(s), json_string_length(s));
}

static struct choice *choice_at(struct assembler *a, json_t *c)
{
    json_t *idx = json_object_get(c, "index");
    json_int_t i = json_is_integer(idx) ? json_integer_value(idx) : 0;
    if (i < 0 || i >= MAX_CHOICES)
        return NULL;
    if ((size_t)i + 1 > a->nch)
        a->nch = (size_t)i + 1;
    a->ch[i].is_used = true;
    return &a->ch[i];
}

static void set_finish(struct choice *ch, json_t *f)
{
    if (!json_is_string(f))
        return;
    size_t n = HS_MIN(json_string_length(f), sizeof(ch->finish) - 1);
    memcpy(ch->finish, json_string_value(f), n);
    ch->finish[n] = '\0';
}

static void add_tool_calls(struct assembler *a, struct choice *ch, json_t *calls)
{
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        json_t *idx = json_object_get(tc, "index");
        json_int_t k = json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)i;
        if (k < 0 || k >= MAX_TOOL_CALLS)
            continue;
        struct tcall *t = &ch->calls[k];
        t->is_used = true;
        if ((size_t)k + 1 > ch->ncalls)
            ch->ncalls = (size_t)k + 1;
        if (t->id.len == 0)
            buf_add(a, &t->id, json_object_get(tc, "id"));
        if (t->type.len == 0)
            buf_add(a, &t->type, json_object_get(tc, "type"));
        json_t *fn = json_object_get(tc, "function");
        buf_add(a, &t->name, json_object_get(fn, "name"));
        buf_add(a, &t->args, json_object_get(fn, "arguments"));
    }
}

static void add_chat_choice(struct assembler *a, json_t *c)
{
    struct choice *ch = choice_at(a, c);
    if (ch == NULL)
        return;
    json_t *d = json_object_get(c, "delta");
    json_t *content = json_object_get(d, "content");
    if (json_is_string(content)) {
        ch->has_content = true;
        buf_add(a, &ch->content, content);
    }
    json_t *refusal = json_object_get(d, "refusal");
    if (json_is_string(refusal)) {
        ch->has_refusal = true;
        buf_add(a, &ch->refusal, refusal);
    }
    json_t *reasoning = json_object_get(d, "reasoning_content");
    if (!json_is_string(reasoning))
        reasoning = json_object_get(d, "reasoning");
    if (json_is_string(reasoning)) {
        ch->has_reasoning = true;
        buf_add(a, &ch->reasoning, reasoning);
    }
    if (json_is_array(json_object_get(d, "tool_calls")))
        add_tool_calls(a, ch, json_object_get(d, "tool_calls"));
    set_finish(ch, json_object_get(c, "finish_reason"));
}

static void add_text_choice(struct assembler *a, json_t *c)
{
    struct choice *ch = choice_at(a, c);
    if (ch == NULL)
        return;
    json_t *text = json_object_get(c, "text");
    if (json_is_string(text)) {
        ch->has_content = true;
        buf_add(a, &ch->content, text);
    }
    set_finish(ch, json_object_get(c, "finish_reason"));
}

static void add_event(struct assembler *a, json_t *ev)
{
    if (!json_is_object(ev))
        return;
    const char *object = json_string_value(json_object_get(ev, "object"));
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (type != NULL && hs_has_prefix(type, "response.") &&
        json_is_object(json_object_get(ev, "response"))) {
        a->kind = KIND_RESPONSES;
        keep(&a->response, json_object_get(ev, "response"));
        return;
    }
    int k = object == NULL                                 ? KIND_NONE
            : strcmp(object, "chat.completion.chunk") == 0 ? KIND_CHAT
            : strcmp(object, "text_completion") == 0       ? KIND_TEXT
                                                           : KIND_NONE;
    if (k == KIND_NONE && json_is_array(json_object_get(ev, "choices"))) {
        json_t *c0 = json_array_get(json_object_get(ev, "choices"), 0);
        k = json_object_get(c0, "delta") != NULL  ? KIND_CHAT
            : json_object_get(c0, "text") != NULL ? KIND_TEXT
                                                  : a->kind;
    }
    if (k == KIND_NONE || a->kind == KIND_RESPONSES)
        return;
    a->kind = k;
    if (a->id == NULL)
        keep(&a->id, json_object_get(ev, "id"));
    if (a->model == NULL)
        keep(&a->model, json_object_get(ev, "model"));
    if (a->created == NULL)
        keep(&a->created, json_object_get(ev, "created"));
    if (a->fingerprint == NULL)
        keep(&a->fingerprint, json_object_get(ev, "system_fingerprint"));
    keep(&a->usage, json_object_get(ev, "usage")); /* the last one wins (cumulative) */
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(ev, "choices"), i, c)
    {
        if (k == KIND_CHAT)
            add_chat_choice(a, c);
        else
            add_text_choice(a, c);
    }
}

/* Calls add_event for every event whose joined data parses as JSON. */
static void read_events(struct assembler *a, const char *s, size_t len)
{
    struct hs_buf data;
    hs_buf_init(&data, 0);
    size_t i = 0, events = 0;
    bool has_data = false;
    while (i <= len && events < MAX_EVENTS && a->rc == HS_OK) {
        size_t eol = i;
        while (eol < len && s[eol] != '\n' && s[eol] != '\r')
            eol++;
        size_t n = eol - i;
        if (n == 0) { /* blank line (or the end): dispatch */
            if (has_data) {
                json_t *ev = json_loadb(data.p, data.len, 0, NULL);
                if (ev != NULL) {
                    add_event(a, ev);
                    json_decref(ev);
                }
                events++;
            }
            hs_buf_reset(&data);
            has_data = false;
        } else if (n >= 5 && memcmp(s + i, "data", 4) == 0 && (s[i + 4] == ':')) {
            size_t v = i + 5;
            if (v < eol && s[v] == ' ')
                v++;
            if (has_data)
                a->rc = hs_buf_putc(&data, '\n');
            if (a->rc == HS_OK)
                a->rc = hs_buf_append(&data, s + v, eol - v);
            has_data = true;
        }
        if (eol >= len)
            break;
        i = eol + ((s[eol] == '\r' && eol + 1 < len && s[eol + 1] == '\n') ? 2 : 1);
    }
    if (has_data && a->rc == HS_OK) { /* a last event without its blank line */
        json_t *ev = json_loadb(data.p, data.len, 0, NULL);
        if (ev != NULL) {
            add_event(a, ev);
            json_decref(ev);
        }
    }
    hs_buf_cleanup(&data);
}

/* ---- output ------------------------------------------------------------------------ */

static int put_json(struct hs_buf *b, const char *key, json_t *v)
{
    if (v == NULL)
        return HS_OK;
    char *t = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (t == NULL)
        return HS_ENOMEM;
    int rc = hs_buf_printf(b, ",\"%s\":%s", key, t);
    free(t);
    return rc;
}

static int put_text(struct hs_buf *b, const char *key, const struct hs_buf *v)
{
    int rc = hs_buf_printf(b, "\"%s\":\"", key);
    if (rc == HS_OK)
        rc = redact_json_escape(v->p != NULL ? v->p : "", v->len, b);
    return rc == HS_OK ? hs_buf_putc(b, '"') : rc;
}

static int put_tool_calls(struct hs_buf *b, const struct choice *ch)
{
    int rc = hs_buf_puts(b, ",\"tool_calls\":[");
    bool first = true;
    for (size_t k = 0; k < ch->ncalls && rc == HS_OK; k++) {
        const struct tcall *t = &ch->calls[k];
        if (!t->is_used)
            continue;
        rc = hs_buf_puts(b, first ? "{" : ",{");
        first = false;
        if (rc == HS_OK)
            rc = put_text(b, "id", &t->id);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ',');
        if (rc == HS_OK)
            rc = t->type.len > 0 ? put_text(b, "type", &t->type)
                                 : hs_buf_puts(b, "\"type\":\"function\"");
        if (rc == HS_OK)
            rc = hs_buf_puts(b, ",\"function\":{");
        if (rc == HS_OK)
            rc = put_text(b, "name", &t->name);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ',');
        if (rc == HS_OK)
            rc = put_text(b, "arguments", &t->args);
        if (rc == HS_OK)
            rc = hs_buf_puts(b, "}}");
    }
    return rc == HS_OK ? hs_buf_putc(b, ']') : rc;
}

static int put_choice(struct hs_buf *b, const struct assembler *a, size_t i, bool is_first)
{
    const struct choice *ch = &a->ch[i];
    int rc = hs_buf_printf(b, "%s{\"index\":%zu,", is_first ? "" : ",", i);
    if (rc == HS_OK && a->kind == KIND_TEXT) {
        rc = put_text(b, "text", &ch->content);
    } else if (rc == HS_OK) {
        rc = hs_buf_puts(b, "\"message\":{\"role\":\"assistant\",");
        if (rc == HS_OK)
            rc = ch->has_content || ch->ncalls == 0 ? put_text(b, "content", &ch->content)
                                                    : hs_buf_puts(b, "\"content\":null");
        if (rc == HS_OK && ch->has_refusal)
            rc = hs_buf_putc(b, ',');
        if (rc == HS_OK && ch->has_refusal)
            rc = put_text(b, "refusal", &ch->refusal);
        if (rc == HS_OK && ch->has_reasoning)
            rc = hs_buf_putc(b, ',');
        if (rc == HS_OK && ch->has_reasoning)
            rc = put_text(b, "reasoning_content", &ch->reasoning);
        if (rc == HS_OK && ch->ncalls > 0)
            rc = put_tool_calls(b, ch);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, '}');
    }
    if (rc == HS_OK && ch->finish[0] != '\0') {
        rc = hs_buf_puts(b, ",\"finish_reason\":\"");
        if (rc == HS_OK)
            rc = redact_json_escape(ch->finish, strlen(ch->finish), b);
        if (rc == HS_OK)
            rc = hs_buf_puts(b, "\"}");
    } else if (rc == HS_OK) {
        rc = hs_buf_puts(b, ",\"finish_reason\":null}");
    }
    return rc;
}

static int put_value(struct hs_buf *b, json_t *v)
{
    if (v == NULL)
        return hs_buf_puts(b, "null");
    char *t = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (t == NULL)
        return HS_ENOMEM;
    int rc = hs_buf_puts(b, t);
    free(t);
    return rc;
}

static int put_result(struct hs_buf *b, const struct assembler *a)
{
    if (a->kind == KIND_RESPONSES)
        return put_value(b, a->response);
    int rc = hs_buf_puts(b, "{\"id\":");
    if (rc == HS_OK)
        rc = put_value(b, a->id);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"object\":\"%s\"",
                           a->kind == KIND_CHAT ? "chat.completion" : "text_completion");
    if (rc == HS_OK)
        rc = put_json(b, "created", a->created);
    if (rc == HS_OK)
        rc = put_json(b, "model", a->model);
    if (rc == HS_OK)
        rc = put_json(b, "system_fingerprint", a->fingerprint);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"choices\":[");
    bool is_first = true;
    for (size_t i = 0; i < a->nch && rc == HS_OK; i++) {
        if (!a->ch[i].is_used)
            continue;
        rc = put_choice(b, a, i, is_first);
        is_first = false;
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(b, ']');
    if (rc == HS_OK)
        rc = put_json(b, "usage", a->usage);
    return rc == HS_OK ? hs_buf_putc(b, '}') : rc;
}

static void assembler_free(struct assembler *a)
{
    json_decref(a->id);
    json_decref(a->model);
    json_decref(a->created);
    json_decref(a->fingerprint);
    json_decref(a->usage);
    json_decref(a->response);
    for (size_t i = 0; a->ch != NULL && i < MAX_CHOICES; i++) {
        struct choice *ch = &a->ch[i];
        hs_buf_cleanup(&ch->content);
        hs_buf_cleanup(&ch->reasoning);
        hs_buf_cleanup(&ch->refusal);
        for (size_t k = 0; k < MAX_TOOL_CALLS; k++) {
            hs_buf_cleanup(&ch->calls[k].id);
            hs_buf_cleanup(&ch->calls[k].type);
            hs_buf_cleanup(&ch->calls[k].name);
            hs_buf_cleanup(&ch->calls[k].args);
        }
    }
    hs_free(a->ch);
}

int capture_assemble_sse(const char *sse, size_t len, struct hs_buf *out, struct hs_err *err)
{
    struct assembler a = {0};
    a.ch = hs_calloc(MAX_CHOICES, sizeof(*a.ch));
    if (a.ch == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory assembling a stream");
    read_events(&a, sse, len);
    int rc = a.rc;
    if (rc == HS_OK && a.kind == KIND_NONE)
        rc = hs_err_set(err, HS_EINVAL, "stream holds no chat, completion or responses events");
    size_t mark = out->len;
    if (rc == HS_OK) {
        rc = put_result(out, &a);
        if (rc != HS_OK) {
            out->len = mark;
            if (out->p != NULL)
                out->p[mark] = '\0';
            hs_err_set(err, rc, "assembling a stream: %s", hs_strerror(rc));
        }
    } else if (rc == HS_ENOMEM) {
        hs_err_set(err, rc, "out of memory assembling a stream");
    }
    assembler_free(&a);
    return rc;
}
