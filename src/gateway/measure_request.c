/*
 * measure_request.c - the request side of the measurement: reads the
 * client's JSON body once (model, stream, n, max_tokens, stream_options)
 * and builds the upstream body with stream_options.include_usage injected
 * (spec/gateway.md §2.4).
 *
 * A strict allocation-free validator accepts the bodies jansson's decoder
 * accepts (flags 0, an object at the top); the fields are then read with
 * the JSON cursor, the last of duplicate keys winning as in jansson.
 * Whatever the validator is not sure of (invalid JSON, nesting deeper than
 * FAST_MAX_DEPTH, integers of more than 18 digits, large exponents, an
 * escaped model name) goes to jansson, whose messages carry the error
 * position for the OpenAI error answer.  The injection itself edits the
 * original bytes at positions found with the JSON cursor, so every other
 * byte, key order, number spelling and escape of the client's body is kept.
 */
#include "gateway/measure.h"

#include "gateway/measure_internal.h"

#include <jansson.h>

#include <limits.h>
#include <string.h>

/* ---- the fast path: strict validation, then the cursor ---- */

#define FAST_MAX_DEPTH 64 /* deeper bodies go to jansson (its limit is 2048) */
#define FAST_UNSURE    1  /* fast_parse: leave this body to jansson */

static const char *fv_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static bool fv_digit(const char *p, const char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

static bool fv_hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Length of the well-formed UTF-8 sequence at p (no overlong forms, no
 * surrogates, nothing past U+10FFFF), 0 when it is not one. */
static size_t fv_utf8(const unsigned char *p, const unsigned char *end)
{
    unsigned b = p[0];
    size_t n;
    unsigned cp, min;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2, cp = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3, cp = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4, cp = b & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* p just past the opening quote; returns the byte after the closing quote
 * or NULL. */
static const char *fv_string(const char *p, const char *end)
{
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"')
            return p + 1;
        if (ch < 0x20)
            return NULL;
        if (ch >= 0x80) {
            size_t n = fv_utf8((const unsigned char *)p, (const unsigned char *)end);
            if (n == 0)
                return NULL;
            p += n;
            continue;
        }
        if (ch != '\\') {
            p++;
            continue;
        }
        if (end - p < 2)
            return NULL;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p += 2;
            continue;
        case 'u':
            break;
        default:
            return NULL;
        }
        unsigned cp, lo;
        if (!fv_hex4(p + 2, end, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
            return NULL; /* jansson refuses \u0000 and a lone low surrogate */
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !fv_hex4(p + 2, end, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                return NULL;
            p += 6;
        }
    }
    return NULL;
}

/* A number jansson reads without overflow; NULL when invalid or unsure. */
static const char *fv_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    const char *d = p;
    if (p < end && *p == '0')
        p++;
    else if (fv_digit(p, end))
        while (fv_digit(p, end))
            p++;
    else
        return NULL;
    size_t int_digits = (size_t)(p - d);
    bool is_real = false;
    if (p < end && *p == '.') {
        p++;
        if (!fv_digit(p, end))
            return NULL;
        while (fv_digit(p, end))
            p++;
        is_real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *e = p;
        if (!fv_digit(p, end))
            return NULL;
        while (fv_digit(p, end))
            p++;
        if (p - e > 2)
            return NULL; /* |exponent| > 99: leave overflow to jansson */
        is_real = true;
    }
    if (is_real ? int_digits > 200 : int_digits > 18)
        return NULL; /* possibly out of range */
    return p;
}

static const char *fv_scalar(const char *p, const char *end)
{
    static const char *const lits[] = {"true", "false", "null"};
    if (*p == '"')
        return fv_string(p + 1, end);
    for (size_t i = 0; i < HS_ARRAY_LEN(lits); i++) {
        size_t n = strlen(lits[i]);
        if (*p == lits[i][0])
            return (size_t)(end - p) >= n && memcmp(p, lits[i], n) == 0 ? p + n : NULL;
    }
    return fv_number(p, end);
}

/* True when body[0, len) is certainly a JSON object jansson accepts. */
static bool fast_valid(const char *body, size_t len)
{
    enum { S_OPEN, S_ELEM, S_VALUE, S_AFTER };
    const char *p = body, *end = body + len;
    char stack[FAST_MAX_DEPTH];
    int depth = 0, st = S_OPEN;
    p = fv_ws(p, end);
    if (p >= end || *p != '{')
        return false;
    stack[depth++] = '}';
    p++;
    for (;;) {
        p = fv_ws(p, end);
        switch (st) {
        case S_OPEN: /* just inside '{' or '[' */
            if (p < end && *p == stack[depth - 1]) {
                p++;
                depth--;
                st = S_AFTER;
            } else {
                st = S_ELEM;
            }
            break;
        case S_ELEM: /* a member "key": or an element */
            st = S_VALUE;
            if (stack[depth - 1] == ']')
                break;
            if (p >= end || *p != '"' || (p = fv_string(p + 1, end)) == NULL)
                return false;
            p = fv_ws(p, end);
            if (p >= end || *p != ':')
                return false;
            p++;
            break;
        case S_VALUE:
            if (p >= end)
                return false;
            if (*p == '{' || *p == '[') {
                if (depth == FAST_MAX_DEPTH)
                    return false;
                stack[depth++] = *p == '{' ? '}' : ']';
                p++;
                st = S_OPEN;
                break;
            }
            if ((p = fv_scalar(p, end)) == NULL)
                return false;
            st = S_AFTER;
            break;
        default: /* S_AFTER: after a value */
            if (depth == 0)
                return p == end;
            if (p < end && *p == ',') {
                p++;
                st = S_ELEM;
            } else if (p < end && *p == stack[depth - 1]) {
                p++;
                depth--;
            } else {
                return false;
            }
            break;
        }
    }
}

/* The value of the last member 'name' of object 'obj' (validated text). */
static bool get_last(const struct gw__jval *obj, const char *name, struct gw__jval *out)
{
    struct gw__jcur c = gw__json_cur(obj);
    struct gw__jval key, v;
    bool found = false;
    if (!gw__json_obj_begin(&c))
        return false;
    while (gw__json_obj_next(&c, &key) == 1 && gw__json_value(&c, &v)) {
        if (gw__jval_is(&key, name)) {
            *out = v;
            found = true;
        }
    }
    return found;
}

/* An integer token (no fraction, no exponent) as json_is_integer sees it. */
static bool fast_count(const struct gw__jval *v, int64_t *out)
{
    if (v->p == NULL || v->kind != '0' || memchr(v->p, '.', v->len) != NULL ||
        memchr(v->p, 'e', v->len) != NULL || memchr(v->p, 'E', v->len) != NULL)
        return false;
    return gw__jval_i64(v, out);
}

static bool fast_true(const struct gw__jval *v)
{
    return v->p != NULL && v->kind == 't';
}

enum fast_key {
    FK_MODEL,
    FK_STREAM,
    FK_N,
    FK_MAX_TOKENS,
    FK_MAX_COMPLETION_TOKENS,
    FK_MAX_OUTPUT_TOKENS,
    FK_N_PREDICT,
    FK_MAX_NEW_TOKENS,
    FK_PARAMETERS,
    FK_STREAM_OPTIONS,
    FK_COUNT
};

/* The top-level members gw_request_parse reads, last occurrence each. */
static void fast_members(const char *body, size_t len, struct gw__jval vals[FK_COUNT])
{
    static const char *const names[FK_COUNT] = {"model",
                                                "stream",
                                                "n",
                                                "max_tokens",
                                                "max_completion_tokens",
                                                "max_output_tokens",
                                                "n_predict",
                                                "max_new_tokens",
                                                "parameters",
                                                "stream_options"};
    memset(vals, 0, FK_COUNT * sizeof(vals[0]));
    struct gw__jcur c = {body, body + len};
    struct gw__jval key, v;
    if (!gw__json_obj_begin(&c))
        return;
    while (gw__json_obj_next(&c, &key) == 1 && gw__json_value(&c, &v)) {
        if (key.kind != '"')
            continue;
        for (size_t i = 0; i < FK_COUNT; i++) {
            if (gw__jval_is(&key, names[i])) {
                vals[i] = v;
                break;
            }
        }
    }
}

/* gw_request_parse on a validated body; FAST_UNSURE for an escaped model. */
static int fast_parse(const char *body, size_t len, struct gw_request_info *out, struct hs_err *err)
{
    struct gw__jval f[FK_COUNT], v;
    fast_members(body, len, f);
    struct gw_request_info info;
    memset(&info, 0, sizeof(info));
    if (f[FK_MODEL].p != NULL) {
        if (f[FK_MODEL].kind != '"')
            return hs_err_set(err, HS_EINVAL, "'model' must be a string");
        if (f[FK_MODEL].is_esc)
            return FAST_UNSURE;
        size_t n = f[FK_MODEL].len;
        if (n >= sizeof(info.model))
            return hs_err_set(err, HS_EINVAL, "'model' is longer than %zu bytes",
                              sizeof(info.model) - 1);
        memcpy(info.model, f[FK_MODEL].p, n);
        info.model[n] = '\0';
        info.has_model = true;
    }
    info.stream = fast_true(&f[FK_STREAM]);
    int64_t n = 1;
    info.n = fast_count(&f[FK_N], &n) && n >= 1 && n <= INT_MAX ? (int)n : 1;
    info.max_tokens = -1;
    for (int k = FK_MAX_TOKENS; k <= FK_MAX_NEW_TOKENS && info.max_tokens < 0; k++)
        if (!fast_count(&f[k], &info.max_tokens))
            info.max_tokens = -1;
    if (info.max_tokens < 0 && f[FK_PARAMETERS].kind == '{' &&
        !(get_last(&f[FK_PARAMETERS], "max_new_tokens", &v) && fast_count(&v, &info.max_tokens)))
        info.max_tokens = -1;
    if (f[FK_STREAM_OPTIONS].kind == '{') {
        info.has_stream_options = true;
        info.include_usage = get_last(&f[FK_STREAM_OPTIONS], "include_usage", &v) && fast_true(&v);
        info.continuous_usage_stats =
            get_last(&f[FK_STREAM_OPTIONS], "continuous_usage_stats", &v) && fast_true(&v);
    }
    *out = info;
    return HS_OK;
}

static json_t *load(const char *body, size_t len, int *rc, struct hs_err *err)
{
    const char *nul = memchr(body, '\0', len);
    if (nul != NULL) {
        /* jansson and the byte-level editor below must see the same text */
        size_t pos = (size_t)(nul - body);
        *rc = hs_err_setpos(err, HS_EPARSE, pos, "invalid JSON at byte %zu: NUL byte", pos);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (root == NULL) {
        size_t pos = je.position > 0 ? (size_t)je.position : 0;
        *rc = hs_err_setpos(err, HS_EPARSE, pos, "invalid JSON at byte %zu: %s", pos, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *rc = hs_err_set(err, HS_EINVAL, "request body must be a JSON object");
        return NULL;
    }
    *rc = HS_OK;
    return root;
}

static bool get_count(json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

int gw_request_parse(const char *body, size_t len, struct gw_request_info *out, struct hs_err *err)
{
    int rc;
    if (fast_valid(body, len) && (rc = fast_parse(body, len, out, err)) != FAST_UNSURE)
        return rc;
    json_t *root = load(body, len, &rc, err);
    if (root == NULL)
        return rc;
    struct gw_request_info info;
    memset(&info, 0, sizeof(info));
    json_t *model = json_object_get(root, "model");
    if (model != NULL) {
        if (!json_is_string(model)) {
            rc = hs_err_set(err, HS_EINVAL, "'model' must be a string");
            goto out;
        }
        size_t n = json_string_length(model);
        if (n >= sizeof(info.model)) {
            rc = hs_err_set(err, HS_EINVAL, "'model' is longer than %zu bytes",
                            sizeof(info.model) - 1);
            goto out;
        }
        memcpy(info.model, json_string_value(model), n);
        info.model[n] = '\0';
        info.has_model = true;
    }
    info.stream = json_is_true(json_object_get(root, "stream"));
    int64_t n = 1;
    info.n = get_count(root, "n", &n) && n >= 1 && n <= INT_MAX ? (int)n : 1;
    info.max_tokens = -1;
    static const char *const max_keys[] = {"max_tokens", "max_completion_tokens",
                                           "max_output_tokens", "n_predict", "max_new_tokens"};
    for (size_t i = 0; i < HS_ARRAY_LEN(max_keys) && info.max_tokens < 0; i++)
        if (!get_count(root, max_keys[i], &info.max_tokens))
            info.max_tokens = -1;
    json_t *params = json_object_get(root, "parameters"); /* TGI native */
    if (info.max_tokens < 0 && json_is_object(params) &&
        !get_count(params, "max_new_tokens", &info.max_tokens))
        info.max_tokens = -1;
    json_t *so = json_object_get(root, "stream_options");
    if (json_is_object(so)) {
        info.has_stream_options = true;
        info.include_usage = json_is_true(json_object_get(so, "include_usage"));
        info.continuous_usage_stats = json_is_true(json_object_get(so, "continuous_usage_stats"));
    }
    *out = info;
out:
    json_decref(root);
    return rc;
}

/* Where the edit goes: replace body[at, at + cut) with 'ins'. */
struct edit {
    size_t at;
    size_t cut;
    const char *ins;
};

/* Finds the edit inside an existing stream_options object 'so'. */
static void edit_inside(const char *body, const struct gw__jval *so, struct edit *e)
{
    struct gw__jcur c = gw__json_cur(so);
    HS_IGNORE_RESULT(gw__json_obj_begin(&c));
    struct gw__jval key, v, last = {0};
    bool any = false;
    while (gw__json_obj_next(&c, &key) == 1 && gw__json_value(&c, &v)) {
        any = true;
        if (gw__jval_is(&key, "include_usage"))
            last = v; /* the last one counts, as in jansson */
    }
    if (last.p != NULL) {
        bool str = last.kind == '"';
        e->at = (size_t)((str ? last.p - 1 : last.p) - body);
        e->cut = str ? last.len + 2 : last.len;
        e->ins = "true";
        return;
    }
    e->at = (size_t)(so->p - body) + 1;
    e->cut = 0;
    e->ins = any ? "\"include_usage\":true," : "\"include_usage\":true";
}

int gw_request_inject_usage(const char *body, size_t len, struct hs_buf *out, struct hs_err *err)
{
    int rc;
    bool already;
    if (fast_valid(body, len)) {
        struct gw__jval f[FK_COUNT], v;
        fast_members(body, len, f);
        already = f[FK_STREAM_OPTIONS].kind == '{' &&
                  get_last(&f[FK_STREAM_OPTIONS], "include_usage", &v) && fast_true(&v);
    } else {
        json_t *root = load(body, len, &rc, err);
        if (root == NULL)
            return rc;
        json_t *so_j = json_object_get(root, "stream_options");
        already = json_is_object(so_j) && json_is_true(json_object_get(so_j, "include_usage"));
        json_decref(root);
    }
    size_t old_len = out->len;
    if (already) {
        rc = hs_buf_append(out, body, len);
        return rc == HS_OK ? HS_OK : hs_err_set(err, rc, "request body too large");
    }
    /* find the top-level stream_options (the last one, as jansson keeps)
     * and the end of the last top-level value */
    struct gw__jcur c = {body, body + len};
    HS_IGNORE_RESULT(gw__json_obj_begin(&c));
    struct gw__jval key, v, so = {0};
    const char *last_end = NULL;
    int r;
    while ((r = gw__json_obj_next(&c, &key)) == 1 && gw__json_value(&c, &v)) {
        if (gw__jval_is(&key, "stream_options"))
            so = v;
        last_end = v.kind == '"' ? v.p + v.len + 1 : v.p + v.len;
    }
    if (r != 0)
        return hs_err_setpos(err, HS_EPARSE, (size_t)(c.p - body),
                             "invalid JSON at byte %zu: cannot place stream_options",
                             (size_t)(c.p - body));
    struct edit e;
    if (so.p != NULL && so.kind == '{') {
        edit_inside(body, &so, &e);
    } else if (so.p != NULL) {
        /* null or another non-object value: replace it */
        e.at = (size_t)((so.kind == '"' ? so.p - 1 : so.p) - body);
        e.cut = so.kind == '"' ? so.len + 2 : so.len;
        e.ins = "{\"include_usage\":true}";
    } else if (last_end != NULL) {
        e.at = (size_t)(last_end - body);
        e.cut = 0;
        e.ins = ",\"stream_options\":{\"include_usage\":true}";
    } else {
        /* empty object: insert before its closing brace */
        const char *close = c.p > body ? c.p - 1 : body;
        e.at = (size_t)(close - body);
        e.cut = 0;
        e.ins = "\"stream_options\":{\"include_usage\":true}";
    }
    rc = hs_buf_append(out, body, e.at);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, e.ins);
    if (rc == HS_OK)
        rc = hs_buf_append(out, body + e.at + e.cut, len - e.at - e.cut);
    if (rc != HS_OK) {
        out->len = old_len;
        if (out->p != NULL)
            out->p[old_len] = '\0';
        return hs_err_set(err, rc, "request body too large after adding stream_options");
    }
    return HS_OK;
}
