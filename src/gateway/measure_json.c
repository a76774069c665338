/*
 * measure_json.c - the allocation-free JSON cursor used by the measurement
 * (measure_internal.h).
 *
 * Why not a JSON tree: every SSE event of every proxied stream passes
 * through here, and the measurement needs a handful of keys
 * (choices/delta/content/finish_reason/usage/error).  Walking the text once
 * and keeping slices costs no allocation and touches each byte about once.
 * Skipping a nested value is iterative (a depth counter), so hostile
 * nesting cannot exhaust the stack.  Every read is bounds-checked against
 * c->end; malformed input ends iteration with -1/false, never a crash.
 */
#include "gateway/measure_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void gw__json_ws(struct gw__jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* Byte classes for the scanning loops: 0 = ordinary. */
enum { J_QUOTE = 1, J_BSLASH = 2, J_OPEN = 3, J_CLOSE = 4 };
static const unsigned char jclass[256] = {
    ['"'] = J_QUOTE, ['\\'] = J_BSLASH, ['{'] = J_OPEN,
    ['['] = J_OPEN,  ['}'] = J_CLOSE,   [']'] = J_CLOSE,
};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define GW_SWAR 1
/* Bit 7 of each byte of x that equals b.  A borrow can mark bytes above a
 * real match too, so only the lowest set bit is used (the first match in
 * memory order on a little-endian machine). */
static inline uint64_t bytes_eq(uint64_t x, unsigned char b)
{
    uint64_t y = x ^ (UINT64_C(0x0101010101010101) * b);
    return (y - UINT64_C(0x0101010101010101)) & ~y & UINT64_C(0x8080808080808080);
}
#endif

/* Returns the closing quote of the string whose body starts at p, or NULL;
 * *esc is set when a backslash was stepped over.  Eight bytes at a time
 * while eight remain: string bodies are most of an event's bytes. */
static const char *string_end(const char *p, const char *end, bool *esc)
{
#ifdef GW_SWAR
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, sizeof(x));
        uint64_t hit = bytes_eq(x, '"') | bytes_eq(x, '\\');
        if (hit == 0) {
            p += 8;
            continue;
        }
        p += __builtin_ctzll(hit) >> 3;
        if (*p == '"')
            return p;
        if (end - p < 2)
            return NULL;
        *esc = true;
        p += 2;
    }
#endif
    while (p < end) {
        unsigned char k = jclass[(unsigned char)*p];
        if (k == J_QUOTE)
            return p;
        if (k == J_BSLASH) {
            if (end - p < 2)
                return NULL;
            *esc = true;
            p += 2;
            continue;
        }
        p++;
    }
    return NULL;
}

/* Moves past a string whose opening quote is at c->p. */
static bool scan_string(struct gw__jcur *c, struct gw__jval *v)
{
    bool esc = false;
    const char *q = string_end(c->p + 1, c->end, &esc);
    if (q == NULL)
        return false;
    if (v != NULL) {
        v->p = c->p + 1;
        v->len = (size_t)(q - v->p);
        v->kind = '"';
        v->is_esc = esc;
    }
    c->p = q + 1;
    return true;
}

/* Moves past an object or array starting at c->p (depth counting, one
 * table lookup per byte). */
static bool scan_nested(struct gw__jcur *c, struct gw__jval *v)
{
    const char *start = c->p, *p = c->p, *end = c->end;
    size_t depth = 0;
    while (p < end) {
        unsigned char k = jclass[(unsigned char)*p];
        if (k == 0 || k == J_BSLASH) {
            p++;
            continue;
        }
        if (k == J_QUOTE) {
            bool esc = false;
            const char *q = string_end(p + 1, end, &esc);
            if (q == NULL)
                return false;
            p = q + 1;
            continue;
        }
        if (k == J_OPEN) {
            depth++;
        } else {
            if (depth == 0)
                return false;
            if (--depth == 0) {
                c->p = p + 1;
                if (v != NULL) {
                    v->p = start;
                    v->len = (size_t)(c->p - start);
                    v->kind = *start;
                    v->is_esc = false;
                }
                return true;
            }
        }
        p++;
    }
    return false;
}

static bool is_scalar_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           ch == '-' || ch == '+' || ch == '.';
}

bool gw__json_value(struct gw__jcur *c, struct gw__jval *v)
{
    gw__json_ws(c);
    if (c->p >= c->end)
        return false;
    char ch = *c->p;
    if (ch == '"')
        return scan_string(c, v);
    if (ch == '{' || ch == '[')
        return scan_nested(c, v);
    const char *start = c->p;
    while (c->p < c->end && is_scalar_char(*c->p))
        c->p++;
    if (c->p == start)
        return false;
    if (v != NULL) {
        v->p = start;
        v->len = (size_t)(c->p - start);
        v->kind = (ch == 'n' || ch == 't' || ch == 'f') ? ch : '0';
        v->is_esc = false;
    }
    return true;
}

bool gw__json_obj_begin(struct gw__jcur *c)
{
    gw__json_ws(c);
    if (c->p >= c->end || *c->p != '{')
        return false;
    c->p++;
    return true;
}

int gw__json_obj_next(struct gw__jcur *c, struct gw__jval *key)
{
    gw__json_ws(c);
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        gw__json_ws(c);
    }
    if (c->p >= c->end)
        return -1;
    if (*c->p == '}') {
        c->p++;
        return 0;
    }
    if (*c->p != '"' || !scan_string(c, key))
        return -1;
    gw__json_ws(c);
    if (c->p >= c->end || *c->p != ':')
        return -1;
    c->p++;
    return 1;
}

bool gw__json_arr_begin(struct gw__jcur *c)
{
    gw__json_ws(c);
    if (c->p >= c->end || *c->p != '[')
        return false;
    c->p++;
    return true;
}

int gw__json_arr_next(struct gw__jcur *c)
{
    gw__json_ws(c);
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        gw__json_ws(c);
    }
    if (c->p >= c->end)
        return -1;
    if (*c->p == ']') {
        c->p++;
        return 0;
    }
    return 1;
}

struct gw__jcur gw__json_cur(const struct gw__jval *v)
{
    struct gw__jcur c = {v->p, v->p ? v->p + v->len : NULL};
    return c;
}

bool gw__jval_present(const struct gw__jval *v)
{
    return v->p != NULL && v->kind != 'n';
}

/* The rare case of gw__jval_is: compare the decoded text ("stream\u005foptions"). */
bool gw__jval_is_esc(const struct gw__jval *v, const char *lit, size_t n)
{
    char tmp[128];
    if (n >= sizeof(tmp) - 4)
        return false;
    gw__jval_copy(v, tmp, sizeof(tmp));
    return strlen(tmp) == n && memcmp(tmp, lit, n) == 0;
}

bool gw__jval_nonempty_str(const struct gw__jval *v)
{
    return v->p != NULL && v->kind == '"' && v->len > 0;
}

bool gw__jval_i64(const struct gw__jval *v, int64_t *out)
{
    if (v->p == NULL || v->kind != '0')
        return false;
    size_t i = 0;
    bool neg = false;
    if (i < v->len && v->p[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= v->len || v->p[i] < '0' || v->p[i] > '9')
        return false;
    int64_t x = 0;
    for (; i < v->len && v->p[i] >= '0' && v->p[i] <= '9'; i++) {
        if (x > (INT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (v->p[i] - '0');
    }
    *out = neg ? -x : x;
    return true;
}

bool gw__jval_f64(const struct gw__jval *v, double *out)
{
    if (v->p == NULL || v->kind != '0' || v->len >= 64)
        return false;
    char tmp[64];
    memcpy(tmp, v->p, v->len);
    tmp[v->len] = '\0';
    char *end = NULL;
    double d = strtod(tmp, &end);
    if (end == tmp || *end != '\0')
        return false;
    *out = d;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static bool hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return false;
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return false;
        x = x * 16 + (unsigned)h;
    }
    *out = x;
    return true;
}

/*
 * Decodes the escape at *pp (pointing at the backslash) into out; returns
 * the byte count and moves *pp past it.  Broken escapes decode as U+FFFD.
 */
static size_t decode_escape(const char **pp, const char *end, char out[4])
{
    const char *p = *pp + 1;
    if (p >= end) {
        *pp = end;
        return 0;
    }
    char e = *p++;
    size_t n = 1;
    switch (e) {
    case 'n':
        out[0] = '\n';
        break;
    case 't':
        out[0] = '\t';
        break;
    case 'r':
        out[0] = '\r';
        break;
    case 'b':
        out[0] = '\b';
        break;
    case 'f':
        out[0] = '\f';
        break;
    case 'u': {
        unsigned cp;
        if (!hex4(p, end, &cp)) {
            n = hs_utf8_encode(0xFFFD, out);
            break;
        }
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, end, &lo) &&
                lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else {
                cp = 0xFFFD;
            }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = 0xFFFD;
        }
        n = hs_utf8_encode(cp, out);
        break;
    }
    default: /* '"', '\\', '/' and anything else: the character itself */
        out[0] = e;
        break;
    }
    *pp = p;
    return n;
}

/* Length of the UTF-8 sequence that starts with byte b (1 for stray bytes). */
static size_t utf8_len(unsigned char b)
{
    if (b >= 0xF0 && b < 0xF8)
        return 4;
    if (b >= 0xE0)
        return b < 0xF0 ? 3 : 1;
    if (b >= 0xC0)
        return 2;
    return 1;
}

int gw__jval_unescape(const struct gw__jval *v, struct hs_buf *out, size_t room, bool *cut)
{
    if (v->p == NULL || v->kind != '"')
        return HS_OK;
    if (!v->is_esc) {
        size_t n = v->len;
        if (n > room) {
            n = room;
            /* back off to a character boundary */
            while (n > 0 && ((unsigned char)v->p[n] & 0xC0) == 0x80)
                n--;
            *cut = true;
        }
        return n ? hs_buf_append(out, v->p, n) : HS_OK;
    }
    const char *p = v->p, *end = v->p + v->len;
    size_t used = 0;
    while (p < end) {
        const char *run = p;
        while (p < end && *p != '\\')
            p++;
        size_t n = (size_t)(p - run);
        if (n > 0) {
            size_t take = n;
            if (take > room - used) {
                take = room - used;
                while (take > 0 && ((unsigned char)run[take] & 0xC0) == 0x80)
                    take--;
                *cut = true;
            }
            if (take > 0 && hs_buf_append(out, run, take) != HS_OK)
                return HS_ENOMEM;
            used += take;
            if (take < n)
                return HS_OK;
        }
        if (p >= end)
            break;
        char tmp[4];
        size_t k = decode_escape(&p, end, tmp);
        if (k > room - used) {
            *cut = true;
            return HS_OK;
        }
        if (k > 0 && hs_buf_append(out, tmp, k) != HS_OK)
            return HS_ENOMEM;
        used += k;
    }
    return HS_OK;
}

void gw__jval_copy(const struct gw__jval *v, char *out, size_t out_len)
{
    if (out_len == 0)
        return;
    out[0] = '\0';
    if (v->p == NULL)
        return;
    if (v->kind != '"') {
        size_t n = HS_MIN(v->len, out_len - 1);
        memcpy(out, v->p, n);
        out[n] = '\0';
        return;
    }
    size_t used = 0;
    const char *p = v->p, *end = v->p + v->len;
    while (p < end) {
        char tmp[4];
        size_t k;
        if (*p == '\\') {
            k = decode_escape(&p, end, tmp);
        } else {
            k = utf8_len((unsigned char)*p);
            if (k > (size_t)(end - p))
                k = (size_t)(end - p);
            memcpy(tmp, p, k);
            p += k;
        }
        if (k >= out_len - used)
            break;
        memcpy(out + used, tmp, k);
        used += k;
    }
    out[used] = '\0';
}

size_t gw__jval_chars(const struct gw__jval *v)
{
    if (v->p == NULL || v->kind != '"')
        return 0;
    size_t n = 0;
    const char *p = v->p, *end = v->p + v->len;
    while (p < end) {
        if (*p == '\\') {
            char tmp[4];
            if (decode_escape(&p, end, tmp) > 0)
                n++;
            continue;
        }
        if (((unsigned char)*p & 0xC0) != 0x80)
            n++;
        p++;
    }
    return n;
}

bool gw__json_get(const struct gw__jval *obj, const char *name, struct gw__jval *out)
{
    if (obj->p == NULL || obj->kind != '{')
        return false;
    struct gw__jcur c = gw__json_cur(obj);
    if (!gw__json_obj_begin(&c))
        return false;
    struct gw__jval key;
    while (gw__json_obj_next(&c, &key) == 1) {
        if (gw__jval_is(&key, name))
            return gw__json_value(&c, out);
        if (!gw__json_value(&c, NULL))
            return false;
    }
    return false;
}
