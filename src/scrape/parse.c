/*
 * parse.c - the exposition-format reader: splits the input into lines and
 * reads the syntax of each (Prometheus text format 0.0.4 and OpenMetrics
 * 1.0), producing scrape_entry values that point into the input.
 *
 * The two formats differ in how strict they are:
 *   text 0.0.4   blanks (space, tab) may surround every token; blank lines
 *                and free comments are allowed; label sets may end in ',';
 *                escapes are \\ \" \n and nothing else; the timestamp is
 *                an integer in ms; every sample line ends in '\n'.
 *   OpenMetrics  exactly one space between tokens, no blank lines, no free
 *                comments, "# EOF" last; unknown escapes are kept as they
 *                are; timestamps are seconds; exemplars after " # ".
 * Rules that span lines (families, grouping, histograms) live in
 * parse_text.c and parse_om.c; this file calls them once per entry.
 *
 * Nothing here allocates unless a string carries an escape (it is then
 * unescaped into the parser's arena) or a rule checker needs its tables.
 */
#include "scrape/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- character classes ------------------------------------------------------ */

enum {
    C_MSTART = 1, /* [a-zA-Z_:] */
    C_MCHAR = 2,  /* [a-zA-Z0-9_:] */
    C_LSTART = 4, /* [a-zA-Z_] */
    C_LCHAR = 8,  /* [a-zA-Z0-9_] */
    C_DIGIT = 16,
};

/* Class bits of every byte (generated from the enum above). */
static const unsigned char cls[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 3,  0,  0,  0,  0,  0,  0,  15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 0,  0,  0,  0,  15,
    0,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
};

static inline bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool label_name_ok(const char *s, size_t n)
{
    if (n == 0 || !(cls[(unsigned char)s[0]] & C_LSTART))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(cls[(unsigned char)s[i]] & C_LCHAR))
            return false;
    return true;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t need;
        unsigned min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(e - p) <= need)
            return false;
        unsigned cp = c & (0x3f >> need);
        for (size_t i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += need + 1;
    }
    return true;
}

/* ---- numbers ------------------------------------------------------------------ */

static const double pow10tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static bool word_eq(const char *p, const char *e, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(e - p) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != w[i])
            return false;
    }
    return true;
}

static int parse_special(const char *p, const char *e, bool neg, double *out)
{
    if (word_eq(p, e, "inf") || word_eq(p, e, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (word_eq(p, e, "nan")) {
        *out = NAN;
        return 0;
    }
    return -1;
}

/* strtod on a NUL-terminated copy; the syntax was checked by the caller. */
static int parse_slow(const char *s, size_t n, double *out)
{
    char tmp[1024];
    if (n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    double v = strtod(tmp, &end);
    if (end != tmp + n)
        return -1;
    *out = v;
    return 0;
}

int scrape__parse_number(const char *s, size_t n, double *out)
{
    const char *p = s, *e = s + n;
    bool neg = false;
    if (p < e && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (p == e)
        return -1;
    if (!(cls[(unsigned char)*p] & C_DIGIT) && *p != '.')
        return parse_special(p, e, neg, out);

    uint64_t mant = 0;
    int sig = 0, e10 = 0;
    bool any = false, dropped = false;
    while (p < e && (cls[(unsigned char)*p] & C_DIGIT)) {
        unsigned d = (unsigned)(*p++ - '0');
        any = true;
        if (mant == 0 && d == 0)
            continue;
        if (sig < 19) {
            mant = mant * 10 + d, sig++;
        } else {
            e10++, dropped = true;
        }
    }
    if (p < e && *p == '.') {
        p++;
        while (p < e && (cls[(unsigned char)*p] & C_DIGIT)) {
            unsigned d = (unsigned)(*p++ - '0');
            any = true;
            if (mant == 0 && d == 0) {
                e10--;
            } else if (sig < 19) {
                mant = mant * 10 + d, sig++, e10--;
            } else {
                dropped = true;
            }
        }
    }
    if (!any)
        return -1;
    long ex = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < e && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p == e || !(cls[(unsigned char)*p] & C_DIGIT))
            return -1;
        while (p < e && (cls[(unsigned char)*p] & C_DIGIT)) {
            if (ex < 100000)
                ex = ex * 10 + (*p - '0');
            p++;
        }
        if (eneg)
            ex = -ex;
    }
    if (p != e)
        return -1;
    if (mant == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    long total = e10 + ex;
    if (!dropped && mant <= (UINT64_C(1) << 53) && total >= -22 && total <= 22) {
        double v = (double)mant;
        v = total < 0 ? v / pow10tab[-total] : v * pow10tab[total];
        *out = neg ? -v : v;
        return 0;
    }
    return parse_slow(s, n, out);
}

int scrape__parse_int_ms(const char *s, size_t n, int64_t *t_ms)
{
    const char *p = s, *e = s + n;
    bool neg = false;
    if (p < e && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (p == e)
        return -1;
    uint64_t v = 0;
    for (; p < e; p++) {
        if (!(cls[(unsigned char)*p] & C_DIGIT))
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_C(1) << 63) / 10)
            return -1;
        v = v * 10 + d;
        if (v > (UINT64_C(1) << 63))
            return -1;
    }
    if (!neg && v > (uint64_t)INT64_MAX)
        return -1;
    *t_ms = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int64_t saturate_ms(double ms)
{
    if (ms >= 9.2e18)
        return INT64_MAX;
    if (ms <= -9.2e18)
        return INT64_MIN;
    return (int64_t)ms;
}

int scrape__parse_om_ts(const char *s, size_t n, double *secs, int64_t *t_ms)
{
    double v;
    if (scrape__parse_number(s, n, &v) < 0 || !isfinite(v))
        return -1;
    *secs = v;
    /* Plain decimals are converted digit by digit so that "1.005" is 1005 ms
     * exactly; exponent forms go through the double. */
    const char *p = s, *e = s + n;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    uint64_t ip = 0;
    bool big = false;
    for (; p < e && (cls[(unsigned char)*p] & C_DIGIT); p++) {
        if (ip > UINT64_C(900000000000000))
            big = true;
        else
            ip = ip * 10 + (unsigned)(*p - '0');
    }
    int frac = 0, nfrac = 0;
    if (p < e && *p == '.') {
        for (p++; p < e && (cls[(unsigned char)*p] & C_DIGIT); p++)
            if (nfrac < 3)
                frac = frac * 10 + (*p - '0'), nfrac++;
    }
    if (p != e || big) {
        *t_ms = saturate_ms(v * 1000.0);
        return 0;
    }
    while (nfrac < 3)
        frac *= 10, nfrac++;
    int64_t ms = (int64_t)ip * 1000 + frac;
    *t_ms = neg ? -ms : ms;
    return 0;
}

/* ---- errors ------------------------------------------------------------------- */

void scrape__got(const char *at, const char *end, char *out, size_t out_len)
{
    if (at >= end) {
        snprintf(out, out_len, "end of line");
        return;
    }
    char tmp[24];
    size_t n = 0;
    for (const char *q = at; q < end && n < 16; q++) {
        unsigned char c = (unsigned char)*q;
        tmp[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    tmp[n] = '\0';
    snprintf(out, out_len, "\"%s%s\"", tmp, (end - at) > 16 ? "..." : "");
}

int scrape__fail(struct scrape_parser *p, struct hs_err *err, int code, const char *at,
                 const char *fmt, ...)
{
    p->is_failed = true;
    p->fail_code = code;
    if (err == NULL)
        return code;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *ls = p->ls ? p->ls : p->buf;
    if (at == NULL)
        at = ls;
    hs_err_setpos(err, code, (size_t)(at - p->buf), "line %d: %s", p->line, msg);
    err->line = p->line;
    err->col = (int)(at - ls) + 1;
    return code;
}

/* ---- strings ----------------------------------------------------------------------- */

/*
 * Unescape [s, e) into the arena.  'strict' (text format): only \\ \" \n;
 * otherwise unknown escapes stay as written (OpenMetrics).
 */
static int unescape(struct scrape_parser *p, const char *s, const char *e, bool strict,
                    const char *what, struct hs_str *out, struct hs_err *err)
{
    char *d = hs_arena_alloc(&p->arena, (size_t)(e - s) + 1);
    if (d == NULL)
        return scrape__fail(p, err, HS_ENOMEM, s, "out of memory unescaping %s", what);
    size_t n = 0;
    for (const char *q = s; q < e; q++) {
        if (*q != '\\') {
            d[n++] = *q;
            continue;
        }
        char c = q + 1 < e ? q[1] : '\0';
        if (c == '\\' || c == '"') {
            d[n++] = c, q++;
        } else if (c == 'n') {
            d[n++] = '\n', q++;
        } else if (strict) {
            if (q + 1 >= e)
                return scrape__fail(p, err, HS_EPARSE, q, "%s ends in a lone backslash", what);
            return scrape__fail(p, err, HS_EPARSE, q, "invalid escape sequence '\\%c' in %s",
                                (c >= 0x20 && c < 0x7f) ? c : '?', what);
        } else {
            d[n++] = '\\';
        }
    }
    d[n] = '\0';
    out->p = d;
    out->len = n;
    return HS_OK;
}

static bool has_high_byte(const char *s, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & UINT64_C(0x8080808080808080)) != 0;
}

/* Reads a quoted string at *qp ('"') within the current line. */
static int read_quoted(struct scrape_parser *p, const char **qp, bool strict, const char *what,
                       struct hs_str *out, struct hs_err *err)
{
    const char *open = *qp, *q = open + 1, *le = p->le;
    bool esc = false, high = false;
    /* Fast path: no backslash before the closing quote. */
    const char *close = memchr(q, '"', (size_t)(le - q));
    if (close != NULL && memchr(q, '\\', (size_t)(close - q)) == NULL) {
        size_t n = (size_t)(close - q);
        if (has_high_byte(q, n) && !utf8_valid(q, n))
            return scrape__fail(p, err, HS_EPARSE, open, "invalid UTF-8 in %s", what);
        out->p = q;
        out->len = n;
        *qp = close + 1;
        return HS_OK;
    }
    for (;;) {
        if (q >= le)
            return scrape__fail(p, err, HS_EPARSE, open, "unterminated %s", what);
        unsigned char c = (unsigned char)*q;
        if (c == '"')
            break;
        if (c == '\\') {
            esc = true;
            if (q + 1 < le && ((unsigned char)q[1] & 0x80))
                high = true;
            q += 2;
            continue;
        }
        if (c & 0x80)
            high = true;
        q++;
    }
    if (high && !utf8_valid(open + 1, (size_t)(q - open - 1)))
        return scrape__fail(p, err, HS_EPARSE, open, "invalid UTF-8 in %s", what);
    if (esc) {
        int rc = unescape(p, open + 1, q, strict, what, out, err);
        if (rc < 0)
            return rc;
    } else {
        out->p = open + 1;
        out->len = (size_t)(q - open - 1);
    }
    *qp = q + 1;
    return HS_OK;
}

static int check_dup(struct scrape_parser *p, const struct scrape_label *ls, size_t n,
                     const char *at, struct hs_err *err)
{
    const struct scrape_label *l = &ls[n];
    for (size_t i = 0; i < n; i++) {
        if (ls[i].name.len == l->name.len && ls[i].name.p[0] == l->name.p[0] &&
            memcmp(ls[i].name.p, l->name.p, l->name.len) == 0)
            return scrape__fail(p, err, HS_EPARSE, at, "duplicate label name \"%.*s\"",
                                (int)HS_MIN(l->name.len, 64), l->name.p);
    }
    return HS_OK;
}

/* ---- text format ---------------------------------------------------------------------- */

static const char *skip_blanks(const char *q, const char *le)
{
    while (q < le && is_blank(*q))
        q++;
    return q;
}

/*
 * Label set of the text format, *qp at '{'.  Blanks may surround tokens, a
 * trailing ',' is allowed, names may be quoted ("label.x"="v"), and a
 * quoted string alone in first place is the metric name ({"my.metric"}).
 */
static int text_labels(struct scrape_parser *p, const char **qp, struct scrape_entry *e,
                       struct hs_err *err)
{
    const char *q = *qp + 1, *le = p->le;
    char got[48];
    size_t n = 0;
    int rc;
    bool first = true;
    for (;;) {
        q = skip_blanks(q, le);
        if (q < le && *q == '}') {
            q++;
            break;
        }
        struct scrape_label *l = &p->labels[n];
        const char *at = q;
        if (q < le && *q == '"') {
            struct hs_str s;
            if ((rc = read_quoted(p, &q, true, "quoted name", &s, err)) < 0)
                return rc;
            const char *after = skip_blanks(q, le);
            if (first && e->name.len == 0 && (after >= le || *after != '=')) {
                if (s.len == 0)
                    return scrape__fail(p, err, HS_EPARSE, at, "empty metric name");
                e->name = s;
                q = after;
                first = false;
                if (q < le && *q == ',') {
                    q++;
                    continue;
                }
                if (q < le && *q == '}') {
                    q++;
                    break;
                }
                scrape__got(q, le, got, sizeof(got));
                return scrape__fail(p, err, HS_EPARSE, q,
                                    "expected ',' or '}' after metric name, got %s", got);
            }
            if (s.len == 0)
                return scrape__fail(p, err, HS_EPARSE, at, "empty label name");
            l->name = s;
        } else {
            while (q < le && (cls[(unsigned char)*q] & C_LCHAR))
                q++;
            if (q == at || !(cls[(unsigned char)*at] & C_LSTART)) {
                scrape__got(at, le, got, sizeof(got));
                return scrape__fail(p, err, HS_EPARSE, at, "expected label name, got %s", got);
            }
            l->name.p = at;
            l->name.len = (size_t)(q - at);
        }
        first = false;
        if (l->name.len == 8 && memcmp(l->name.p, "__name__", 8) == 0)
            return scrape__fail(p, err, HS_EPARSE, at, "label name \"__name__\" is reserved");
        q = skip_blanks(q, le);
        if (q >= le || *q != '=') {
            scrape__got(q, le, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, q, "expected '=' after label name, got %s", got);
        }
        q = skip_blanks(q + 1, le);
        if (q >= le || *q != '"') {
            scrape__got(q, le, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, q, "expected label value, got %s", got);
        }
        if ((rc = read_quoted(p, &q, true, "label value", &l->value, err)) < 0)
            return rc;
        if ((rc = check_dup(p, p->labels, n, at, err)) < 0)
            return rc;
        if (++n >= SCRAPE_MAX_LABELS)
            return scrape__fail(p, err, HS_ETOOBIG, at, "more than %d labels",
                                SCRAPE_MAX_LABELS - 1);
        q = skip_blanks(q, le);
        if (q < le && *q == ',') {
            q++;
            continue;
        }
        if (q < le && *q == '}') {
            q++;
            break;
        }
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q, "expected ',' or '}' after label value, got %s",
                            got);
    }
    e->labels = p->labels;
    e->nlabels = n;
    *qp = q;
    return HS_OK;
}

static int text_sample(struct scrape_parser *p, const char *q, bool has_nl, struct scrape_entry *e,
                       struct hs_err *err)
{
    const char *le = p->le, *at = q;
    char got[48];
    int rc;
    e->kind = SCRAPE_ENTRY_SAMPLE;
    e->name.p = q;
    e->name.len = 0;
    e->labels = p->labels;
    e->nlabels = 0;
    if (cls[(unsigned char)*q] & C_MSTART) {
        while (q < le && (cls[(unsigned char)*q] & C_MCHAR))
            q++;
        e->name.len = (size_t)(q - at);
        q = skip_blanks(q, le);
    } else if (*q != '{') {
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q, "expected metric name, got %s", got);
    }
    if (q < le && *q == '{') {
        if ((rc = text_labels(p, &q, e, err)) < 0)
            return rc;
        q = skip_blanks(q, le);
    }
    if (e->name.len == 0)
        return scrape__fail(p, err, HS_EPARSE, at, "expected metric name, got a label set");
    const char *v = q;
    while (q < le && !is_blank(*q))
        q++;
    if (q == v) {
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q, "expected value, got %s", got);
    }
    if (scrape__parse_number(v, (size_t)(q - v), &e->value) < 0) {
        scrape__got(v, q, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, v, "expected a number as value, got %s", got);
    }
    q = skip_blanks(q, le);
    e->has_ts = false;
    if (q < le) {
        const char *t = q;
        while (q < le && !is_blank(*q))
            q++;
        if (scrape__parse_int_ms(t, (size_t)(q - t), &e->t_ms) < 0) {
            scrape__got(t, q, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, t, "expected an integer timestamp in ms, got %s",
                                got);
        }
        e->has_ts = true;
        q = skip_blanks(q, le);
        if (q < le) {
            scrape__got(q, le, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, q,
                                "expected end of line after timestamp, got %s", got);
        }
    }
    if (!has_nl)
        return scrape__fail(p, err, HS_EPARSE, le,
                            "unexpected end of input: the last line has no newline");
    e->has_exemplar = false;
    return scrape__text_sample(p, e, err);
}

static bool text_type_parse(const char *s, const char *e, int *mtype)
{
    static const struct {
        const char *w;
        int t;
    } types[] = {{"counter", SCRAPE_MTYPE_COUNTER},
                 {"gauge", SCRAPE_MTYPE_GAUGE},
                 {"histogram", SCRAPE_MTYPE_HISTOGRAM},
                 {"summary", SCRAPE_MTYPE_SUMMARY},
                 {"untyped", SCRAPE_MTYPE_UNKNOWN}};
    for (size_t i = 0; i < HS_ARRAY_LEN(types); i++) {
        if (word_eq(s, e, types[i].w)) {
            *mtype = types[i].t;
            return true;
        }
    }
    return false;
}

/* A '#' line of the text format; returns 1 with an entry, 0 for a plain
 * comment, or an error. */
static int text_comment(struct scrape_parser *p, const char *q, struct scrape_entry *e,
                        struct hs_err *err)
{
    const char *le = p->le;
    char got[48];
    int rc;
    q = skip_blanks(q + 1, le);
    const char *kw = q;
    while (q < le && !is_blank(*q))
        q++;
    bool is_help = q - kw == 4 && memcmp(kw, "HELP", 4) == 0;
    bool is_type = q - kw == 4 && memcmp(kw, "TYPE", 4) == 0;
    if (!is_help && !is_type)
        return 0;
    q = skip_blanks(q, le);
    if (q >= le)
        return 0; /* "# HELP" alone is a comment */
    const char *at = q;
    if (*q == '"') {
        if ((rc = read_quoted(p, &q, true, "quoted metric name", &e->name, err)) < 0)
            return rc;
        if (e->name.len == 0)
            return scrape__fail(p, err, HS_EPARSE, at, "empty metric name");
    } else {
        while (q < le && (cls[(unsigned char)*q] & C_MCHAR))
            q++;
        if (q == at || !(cls[(unsigned char)*at] & C_MSTART)) {
            scrape__got(at, le, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, at, "invalid metric name in %s line: %s",
                                is_help ? "HELP" : "TYPE", got);
        }
        e->name.p = at;
        e->name.len = (size_t)(q - at);
    }
    if (q >= le)
        return 0; /* a name and nothing else: still a comment */
    if (!is_blank(*q)) {
        scrape__got(at, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, at, "invalid metric name in %s line: %s",
                            is_help ? "HELP" : "TYPE", got);
    }
    q = skip_blanks(q, le);
    if (is_help) {
        e->kind = SCRAPE_ENTRY_HELP;
        e->mtype = SCRAPE_MTYPE_UNKNOWN;
        if (memchr(q, '\\', (size_t)(le - q)) != NULL) {
            if ((rc = unescape(p, q, le, true, "HELP text", &e->text, err)) < 0)
                return rc;
        } else {
            e->text.p = q;
            e->text.len = (size_t)(le - q);
        }
    } else {
        const char *te = le;
        while (te > q && is_blank(te[-1]))
            te--;
        e->kind = SCRAPE_ENTRY_TYPE;
        e->text.p = q;
        e->text.len = (size_t)(te - q);
        if (!text_type_parse(q, te, &e->mtype)) {
            scrape__got(q, te, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, q, "unknown metric type %s", got);
        }
    }
    if ((rc = scrape__text_meta(p, e, err)) < 0)
        return rc;
    return 1;
}

/* ---- OpenMetrics ------------------------------------------------------------------------ */

/* OpenMetrics label set, *qp at '{', names unquoted, no blanks, no
 * trailing comma.  Fills 'ls' (capacity 'max'), counts code points of names
 * and values into *runes when not NULL. */
static int om_labels(struct scrape_parser *p, const char **qp, struct scrape_label *ls, size_t max,
                     size_t *nout, size_t *runes, struct hs_err *err)
{
    const char *q = *qp + 1, *le = p->le;
    char got[48];
    size_t n = 0;
    int rc;
    if (q < le && *q == '}') {
        *qp = q + 1;
        *nout = 0;
        return HS_OK;
    }
    for (;;) {
        struct scrape_label *l = &ls[n];
        const char *at = q;
        while (q < le && *q != '=')
            q++;
        if (q >= le) {
            scrape__got(at, le, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, at, "expected label name and '=', got %s", got);
        }
        if (!label_name_ok(at, (size_t)(q - at))) {
            scrape__got(at, q, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, at, "invalid label name %s", got);
        }
        l->name.p = at;
        l->name.len = (size_t)(q - at);
        if (runes == NULL && l->name.len == 8 && memcmp(at, "__name__", 8) == 0)
            return scrape__fail(p, err, HS_EPARSE, at, "label name \"__name__\" is reserved");
        q++;
        if (q >= le || *q != '"') {
            scrape__got(q, le, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, q, "expected label value, got %s", got);
        }
        if ((rc = read_quoted(p, &q, false, "label value", &l->value, err)) < 0)
            return rc;
        if ((rc = check_dup(p, ls, n, at, err)) < 0)
            return rc;
        if (runes != NULL) {
            *runes += l->name.len;
            for (size_t i = 0; i < l->value.len; i++)
                *runes += ((unsigned char)l->value.p[i] & 0xc0) != 0x80;
        }
        if (++n >= max)
            return scrape__fail(p, err, HS_ETOOBIG, at, "more than %zu labels", max - 1);
        if (q < le && *q == ',') {
            q++;
            continue;
        }
        if (q < le && *q == '}') {
            q++;
            break;
        }
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q, "expected ',' or '}' after label value, got %s",
                            got);
    }
    *nout = n;
    *qp = q;
    return HS_OK;
}

/* Token up to the next ' ' or the end of the line. */
static const char *om_token(const char *q, const char *le)
{
    const char *s = memchr(q, ' ', (size_t)(le - q));
    return s ? s : le;
}

static int om_exemplar(struct scrape_parser *p, const char *q, struct scrape_entry *e,
                       struct hs_err *err)
{
    const char *le = p->le;
    char got[48];
    int rc;
    /* q is at '#' */
    q++;
    if (q >= le || *q != ' ' || q + 1 >= le || q[1] != '{') {
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q, "expected \" {\" to open an exemplar, got %s",
                            got);
    }
    q++;
    const char *open = q;
    size_t runes = 0;
    struct scrape_exemplar *x = &e->exemplar;
    if ((rc = om_labels(p, &q, p->ex_labels, SCRAPE_MAX_EXEMPLAR_LABELS, &x->nlabels, &runes,
                        err)) < 0)
        return rc;
    x->labels = p->ex_labels;
    if (runes > SCRAPE_EXEMPLAR_MAX_RUNES)
        return scrape__fail(p, err, HS_EPARSE, open,
                            "exemplar labels have %zu code points, more than %d", runes,
                            SCRAPE_EXEMPLAR_MAX_RUNES);
    if (q >= le || *q != ' ') {
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q, "expected ' ' and exemplar value, got %s", got);
    }
    q++;
    const char *v = q, *ve = om_token(q, le);
    if (ve == v || scrape__parse_number(v, (size_t)(ve - v), &x->value) < 0) {
        scrape__got(v, ve, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, v, "expected exemplar value, got %s", got);
    }
    x->has_ts = false;
    if (ve < le) {
        const char *t = ve + 1;
        double secs;
        if (t >= le || scrape__parse_om_ts(t, (size_t)(le - t), &secs, &x->t_ms) < 0) {
            scrape__got(t, le, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, t, "expected exemplar timestamp, got %s", got);
        }
        x->has_ts = true;
    }
    e->has_exemplar = true;
    return HS_OK;
}

static int om_sample(struct scrape_parser *p, struct scrape_entry *e, struct hs_err *err)
{
    const char *q = p->ls, *le = p->le, *at = q;
    char got[48];
    int rc;
    e->kind = SCRAPE_ENTRY_SAMPLE;
    while (q < le && (cls[(unsigned char)*q] & C_MCHAR))
        q++;
    if (q == at || !(cls[(unsigned char)*at] & C_MSTART) || (q < le && *q != ' ' && *q != '{')) {
        const char *ne = q;
        while (ne < le && *ne != ' ' && *ne != '{')
            ne++;
        scrape__got(at, ne, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, at, "invalid metric name %s", got);
    }
    e->name.p = at;
    e->name.len = (size_t)(q - at);
    e->labels = p->labels;
    e->nlabels = 0;
    if (q < le && *q == '{') {
        if ((rc = om_labels(p, &q, p->labels, SCRAPE_MAX_LABELS, &e->nlabels, NULL, err)) < 0)
            return rc;
    }
    if (q >= le || *q != ' ') {
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q, "expected ' ' and a value, got %s", got);
    }
    q++;
    const char *v = q, *ve = om_token(q, le);
    if (ve == v || scrape__parse_number(v, (size_t)(ve - v), &e->value) < 0) {
        scrape__got(v, ve, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, v, "expected a number as value, got %s", got);
    }
    q = ve;
    e->has_ts = false;
    e->has_exemplar = false;
    if (q < le) {
        q++;
        if (q >= le)
            return scrape__fail(p, err, HS_EPARSE, q - 1, "trailing space after value");
        if (*q != '#') {
            const char *t = q, *te = om_token(q, le);
            if (scrape__parse_om_ts(t, (size_t)(te - t), &p->ts_secs, &e->t_ms) < 0) {
                scrape__got(t, te, got, sizeof(got));
                return scrape__fail(p, err, HS_EPARSE, t, "expected a timestamp, got %s", got);
            }
            e->has_ts = true;
            q = te;
            if (q < le) {
                q++;
                if (q >= le || *q != '#') {
                    scrape__got(q, le, got, sizeof(got));
                    return scrape__fail(p, err, HS_EPARSE, q,
                                        "expected \"# \" and an exemplar after timestamp, got %s",
                                        got);
                }
            }
        }
        if (q < le && (rc = om_exemplar(p, q, e, err)) < 0)
            return rc;
    }
    return scrape__om_sample(p, e, err);
}

static int om_type_parse(const char *s, const char *e, int *mtype)
{
    static const struct {
        const char *w;
        int t;
    } types[] = {
        {"counter", SCRAPE_MTYPE_COUNTER},     {"gauge", SCRAPE_MTYPE_GAUGE},
        {"histogram", SCRAPE_MTYPE_HISTOGRAM}, {"gaugehistogram", SCRAPE_MTYPE_GAUGEHISTOGRAM},
        {"summary", SCRAPE_MTYPE_SUMMARY},     {"info", SCRAPE_MTYPE_INFO},
        {"stateset", SCRAPE_MTYPE_STATESET},   {"unknown", SCRAPE_MTYPE_UNKNOWN}};
    size_t n = (size_t)(e - s);
    for (size_t i = 0; i < HS_ARRAY_LEN(types); i++) {
        if (strlen(types[i].w) == n && memcmp(s, types[i].w, n) == 0) {
            *mtype = types[i].t;
            return true;
        }
    }
    return false;
}

/* A '#' line of OpenMetrics: "# EOF", or "# HELP|TYPE|UNIT name text". */
static int om_comment(struct scrape_parser *p, struct scrape_entry *e, struct hs_err *err)
{
    const char *q = p->ls, *le = p->le;
    char got[48];
    int rc;
    if (le - q == 5 && memcmp(q, "# EOF", 5) == 0) {
        if ((rc = scrape__om_eof(p, err)) < 0)
            return rc;
        e->kind = SCRAPE_ENTRY_EOF;
        return HS_OK;
    }
    if (le - q < 2 || q[1] != ' ') {
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q,
                            "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\", got %s",
                            got);
    }
    const char *kw = q + 2, *kwe = om_token(kw, le);
    size_t kn = (size_t)(kwe - kw);
    if (kn == 4 && memcmp(kw, "HELP", 4) == 0)
        e->kind = SCRAPE_ENTRY_HELP;
    else if (kn == 4 && memcmp(kw, "TYPE", 4) == 0)
        e->kind = SCRAPE_ENTRY_TYPE;
    else if (kn == 4 && memcmp(kw, "UNIT", 4) == 0)
        e->kind = SCRAPE_ENTRY_UNIT;
    else {
        scrape__got(q, le, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, q,
                            "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\", got %s",
                            got);
    }
    if (kwe >= le)
        return scrape__fail(p, err, HS_EPARSE, kwe, "expected metric name after %.4s", kw);
    const char *nm = kwe + 1, *nme = om_token(nm, le);
    if (nme >= le)
        return scrape__fail(p, err, HS_EPARSE, nme, "expected ' ' and text after the name in %.4s",
                            kw);
    if (!hs_metric_name_valid(nm, (size_t)(nme - nm))) {
        scrape__got(nm, nme, got, sizeof(got));
        return scrape__fail(p, err, HS_EPARSE, nm, "invalid metric name %s", got);
    }
    e->name.p = nm;
    e->name.len = (size_t)(nme - nm);
    const char *t = nme + 1;
    e->mtype = SCRAPE_MTYPE_UNKNOWN;
    e->text.p = t;
    e->text.len = (size_t)(le - t);
    bool high = false;
    for (const char *c = t; c < le; c++)
        high |= ((unsigned char)*c & 0x80) != 0;
    if (high && !utf8_valid(t, (size_t)(le - t)))
        return scrape__fail(p, err, HS_EPARSE, t, "invalid UTF-8 in %.4s text", kw);
    if (e->kind == SCRAPE_ENTRY_TYPE) {
        if (!om_type_parse(t, le, &e->mtype)) {
            scrape__got(t, le, got, sizeof(got));
            return scrape__fail(p, err, HS_EPARSE, t, "invalid metric type %s", got);
        }
    } else if (e->kind == SCRAPE_ENTRY_HELP && memchr(t, '\\', (size_t)(le - t)) != NULL) {
        if ((rc = unescape(p, t, le, false, "HELP text", &e->text, err)) < 0)
            return rc;
    }
    return scrape__om_meta(p, e, err);
}

/* ---- driver -------------------------------------------------------------------------------- */

void scrape_parser_init(struct scrape_parser *p, const char *buf, size_t len, int format)
{
    p->buf = buf;
    p->end = buf + len;
    p->cur = buf;
    p->ls = p->le = buf;
    p->format = format & 0xff;
    p->is_strict = (format & SCRAPE_PARSE_STRICT) != 0;
    p->line = 0;
    p->is_done = false;
    p->is_failed = false;
    p->fail_code = 0;
    /* Unescaped strings never outgrow the input; the rest is bookkeeping. */
    hs_arena_init(&p->arena, 4096, len * 2 + (1u << 20));
    p->chk = NULL;
}

void scrape_parser_cleanup(struct scrape_parser *p)
{
    scrape__check_free(p);
    hs_arena_cleanup(&p->arena);
}

int scrape_parser_next(struct scrape_parser *p, struct scrape_entry *e, struct hs_err *err)
{
    bool om = p->format == SCRAPE_FORMAT_OPENMETRICS;
    int rc;
    if (p->is_failed)
        return hs_err_set(err, p->fail_code, "parser already failed");
    for (;;) {
        if (p->is_done)
            return 0;
        if (p->cur >= p->end) {
            p->ls = p->le = p->end;
            if (p->end == p->buf || p->end[-1] == '\n')
                p->line++; /* errors here point at the empty line after the last */
            if (om)
                return scrape__fail(p, err, HS_EPARSE, NULL, "missing \"# EOF\" at the end");
            p->is_done = true;
            return 0;
        }
        const char *ls = p->cur;
        const char *nl = memchr(ls, '\n', (size_t)(p->end - ls));
        const char *le = nl ? nl : p->end;
        p->ls = ls;
        p->le = le;
        p->line++;
        p->cur = nl ? nl + 1 : p->end;
        e->line = p->line;
        e->has_exemplar = false;
        e->has_ts = false;
        e->name = e->text = e->family = (struct hs_str){"", 0};
        e->mtype = SCRAPE_MTYPE_UNKNOWN;
        e->role = SCRAPE_ROLE_VALUE;
        e->labels = p->labels;
        e->nlabels = 0;
        e->value = 0;
        if (om) {
            if (ls == le)
                return scrape__fail(p, err, HS_EPARSE, ls, "blank line");
            if (*ls == '#') {
                if ((rc = om_comment(p, e, err)) < 0)
                    return rc;
                if (e->kind == SCRAPE_ENTRY_EOF) {
                    p->is_done = true;
                    if (p->cur < p->end) {
                        p->line++;
                        p->ls = p->cur;
                        return scrape__fail(p, err, HS_EPARSE, p->cur, "text after \"# EOF\"");
                    }
                }
                return 1;
            }
            if ((rc = om_sample(p, e, err)) < 0)
                return rc;
            return 1;
        }
        const char *q = skip_blanks(ls, le);
        if (q >= le)
            continue;
        if (*q == '#') {
            if ((rc = text_comment(p, q, e, err)) < 0)
                return rc;
            if (rc == 0)
                continue;
            return 1;
        }
        if ((rc = text_sample(p, q, nl != NULL, e, err)) < 0)
            return rc;
        return 1;
    }
}

/* ---- content negotiation -------------------------------------------------------------------- */

int scrape_format_from_content_type(const char *ct)
{
    if (ct == NULL)
        return SCRAPE_FORMAT_TEXT;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    static const char om[] = "application/openmetrics-text";
    size_t n = sizeof(om) - 1;
    if (strncasecmp(ct, om, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
        return SCRAPE_FORMAT_OPENMETRICS;
    return SCRAPE_FORMAT_TEXT;
}

const char *scrape_accept_header(void)
{
    return "application/openmetrics-text;version=1.0.0;q=0.5,"
           "text/plain;version=0.0.4;q=0.4,*/*;q=0.1";
}

const char *scrape_mtype_name(int mtype)
{
    switch (mtype) {
    case SCRAPE_MTYPE_COUNTER:
        return "counter";
    case SCRAPE_MTYPE_GAUGE:
        return "gauge";
    case SCRAPE_MTYPE_HISTOGRAM:
        return "histogram";
    case SCRAPE_MTYPE_GAUGEHISTOGRAM:
        return "gaugehistogram";
    case SCRAPE_MTYPE_SUMMARY:
        return "summary";
    case SCRAPE_MTYPE_INFO:
        return "info";
    case SCRAPE_MTYPE_STATESET:
        return "stateset";
    default:
        return "unknown";
    }
}
