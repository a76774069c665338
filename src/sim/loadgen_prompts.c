/*
 * loadgen_prompts.c - what the load generator sends: prompts from a JSONL
 * file or synthetic ones of a chosen length, and the JSON request bodies
 * of the chat and legacy completions APIs.
 *
 * A prompts file has one JSON object per line:
 *   {"prompt": "Tell me about Paris", "max_tokens": 64}
 *   {"messages": [{"role": "user", "content": "Hi"}], "output_len": 32}
 * "prompt" is sent as the user message (chat) or the prompt (completions);
 * "messages" is sent as is to the chat API and flattened to its text
 * contents for completions.  "max_tokens" (or "output_len") is optional.
 * Synthetic prompts are N words drawn from a small vocabulary of common
 * English words, each about one token for the usual tokenizers.
 */
#include "sim/loadgen.h"

#include "sim/loadgen_internal.h"

#include <jansson.h>

#include <string.h>

static const char *const vocabulary[] = {
    "the",   "of",    "and", "to",    "in",    "is",    "that",  "for",   "it",    "as",    "was",
    "with",  "be",    "by",  "on",    "not",   "he",    "this",  "are",   "or",    "his",   "from",
    "at",    "which", "but", "have",  "an",    "had",   "they",  "you",   "were",  "their", "one",
    "all",   "we",    "can", "her",   "has",   "there", "been",  "if",    "more",  "when",  "will",
    "would", "who",   "so",  "no",    "time",  "water", "light", "city",  "river", "model", "token",
    "house", "world", "day", "night", "story", "tree",  "stone", "cloud", "road",
};

void lg__prompts_free(struct lg_prompts *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        hs_free(p->v[i].text);
        hs_free(p->v[i].messages);
    }
    hs_free(p->v);
    p->v = NULL;
    p->n = 0;
}

/* Compact JSON text of 'j' in an hs_malloc'd string; NULL on ENOMEM. */
static char *dump_compact(const json_t *j)
{
    size_t need = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (need == 0)
        return NULL;
    char *s = hs_malloc(need + 1);
    if (!s)
        return NULL;
    json_dumpb(j, s, need, JSON_COMPACT);
    s[need] = '\0';
    return s;
}

static int parse_max_tokens(const json_t *obj, int *out, const char *path, size_t line,
                            struct hs_err *err)
{
    const char *keys[] = {"max_tokens", "output_len"};
    for (size_t i = 0; i < HS_ARRAY_LEN(keys); i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10000000)
            return hs_err_set(err, HS_EPARSE, "%s:%zu: \"%s\" must be an integer in 1..10000000",
                              path, line, keys[i]);
        *out = (int)json_integer_value(v);
        return HS_OK;
    }
    return HS_OK;
}

static int parse_line(const char *text, size_t len, const char *path, size_t line,
                      struct lg_prompt *p, struct hs_err *err)
{
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, 0, &jerr);
    if (!obj)
        return hs_err_set(err, HS_EPARSE, "%s:%zu:%d: %s", path, line, jerr.column, jerr.text);
    int rc = HS_OK;
    memset(p, 0, sizeof *p);
    json_t *prompt = json_object_get(obj, "prompt");
    json_t *messages = json_object_get(obj, "messages");
    if (!json_is_object(obj)) {
        rc = hs_err_set(err, HS_EPARSE, "%s:%zu: expected a JSON object", path, line);
    } else if (prompt && json_is_string(prompt)) {
        p->text = hs_strndup(json_string_value(prompt), json_string_length(prompt));
        if (!p->text)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    } else if (messages && json_is_array(messages) && json_array_size(messages) > 0) {
        p->messages = dump_compact(messages);
        if (!p->messages)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    } else {
        rc = hs_err_set(err, HS_EPARSE,
                        "%s:%zu: expected \"prompt\" (a string) or \"messages\" (a non-empty "
                        "array)",
                        path, line);
    }
    if (rc == HS_OK)
        rc = parse_max_tokens(obj, &p->max_tokens, path, line, err);
    json_decref(obj);
    if (rc != HS_OK) {
        hs_free(p->text);
        hs_free(p->messages);
        memset(p, 0, sizeof *p);
    }
    return rc;
}

static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static int prompts_push(struct lg_prompts *out, size_t *alloc, const struct lg_prompt *p)
{
    if (out->n == *alloc) {
        size_t want = *alloc ? *alloc * 2 : 64;
        struct lg_prompt *nv = hs_reallocarray(out->v, want, sizeof *nv);
        if (!nv)
            return HS_ENOMEM;
        out->v = nv;
        *alloc = want;
    }
    out->v[out->n++] = *p;
    return HS_OK;
}

static int parse_lines(const char *data, size_t len, const char *path, struct lg_prompts *out,
                       struct hs_err *err)
{
    size_t alloc = 0, line = 0, pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        line++;
        if (!is_blank(data + pos, end - pos)) {
            if (out->n >= LOADGEN_MAX_PROMPTS)
                return hs_err_set(err, HS_ETOOBIG, "%s:%zu: more than %d prompts", path, line,
                                  LOADGEN_MAX_PROMPTS);
            struct lg_prompt p;
            int rc = parse_line(data + pos, end - pos, path, line, &p, err);
            if (rc != HS_OK)
                return rc;
            if (prompts_push(out, &alloc, &p) != HS_OK) {
                hs_free(p.text);
                hs_free(p.messages);
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            }
        }
        pos = end + 1;
    }
    if (out->n == 0)
        return hs_err_set(err, HS_EINVAL, "%s: no prompts in the file", path);
    return HS_OK;
}

int lg__prompts_load(const char *path, struct lg_prompts *out, struct hs_err *err)
{
    memset(out, 0, sizeof *out);
    size_t len = 0;
    char *data = hs_read_file(path, LOADGEN_MAX_PROMPTS_BYTES, &len, err);
    if (!data)
        return err && err->code ? err->code : HS_EIO;
    int rc = parse_lines(data, len, path, out, err);
    hs_free(data);
    if (rc != HS_OK)
        lg__prompts_free(out);
    return rc;
}

/* ---- request bodies -------------------------------------------------------------- */

static int put_synthetic(struct hs_buf *out, int words, uint64_t seed)
{
    struct lg_rng rng;
    lg__rng_seed(&rng, seed);
    int rc = hs_buf_putc(out, '"');
    for (int i = 0; rc == HS_OK && i < words; i++) {
        const char *w = vocabulary[lg__rng_next(&rng) % HS_ARRAY_LEN(vocabulary)];
        if (i > 0)
            rc = hs_buf_putc(out, ' ');
        if (rc == HS_OK)
            rc = hs_buf_puts(out, w);
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '"');
    return rc;
}

/* The prompt as a JSON string value. */
static int put_prompt_string(const struct lg_body_spec *s, struct hs_buf *out)
{
    const struct lg_prompt *p = s->prompt;
    if (!p)
        return put_synthetic(out, s->input_words, s->word_seed);
    if (p->text)
        return hs_buf_json_str(out, p->text, strlen(p->text));
    /* Completions from a messages array: join the text contents. */
    json_t *arr = json_loads(p->messages, 0, NULL);
    struct hs_buf joined;
    hs_buf_init(&joined, 0);
    int rc = arr ? HS_OK : HS_ENOMEM;
    for (size_t i = 0; rc == HS_OK && i < json_array_size(arr); i++) {
        json_t *c = json_object_get(json_array_get(arr, i), "content");
        if (!json_is_string(c))
            continue;
        if (joined.len)
            rc = hs_buf_putc(&joined, '\n');
        if (rc == HS_OK)
            rc = hs_buf_append(&joined, json_string_value(c), json_string_length(c));
    }
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, joined.p ? joined.p : "", joined.len);
    hs_buf_cleanup(&joined);
    json_decref(arr);
    return rc;
}

static int put_input(const struct lg_body_spec *s, struct hs_buf *out)
{
    if (!s->is_chat) {
        int rc = hs_buf_puts(out, ",\"prompt\":");
        return rc == HS_OK ? put_prompt_string(s, out) : rc;
    }
    if (s->prompt && s->prompt->messages)
        return hs_buf_printf(out, ",\"messages\":%s", s->prompt->messages);
    int rc = hs_buf_puts(out, ",\"messages\":[{\"role\":\"user\",\"content\":");
    if (rc == HS_OK)
        rc = put_prompt_string(s, out);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "}]");
    return rc;
}

int lg__body_build(const struct lg_body_spec *s, struct hs_buf *out)
{
    int rc = hs_buf_puts(out, "{\"model\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, s->model, strlen(s->model));
    if (rc == HS_OK)
        rc = put_input(s, out);
    if (rc == HS_OK && s->max_tokens > 0)
        rc = hs_buf_printf(out, ",\"max_tokens\":%d", s->max_tokens);
    if (rc == HS_OK && s->ignore_eos)
        rc = hs_buf_puts(out, ",\"ignore_eos\":true");
    if (rc == HS_OK && s->stream)
        rc = hs_buf_puts(out, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    if (rc == HS_OK && !s->stream)
        rc = hs_buf_puts(out, ",\"stream\":false");
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '}');
    return rc;
}
