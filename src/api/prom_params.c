/*
 * prom_params.c - the parameter parsers of the Prometheus HTTP API: times,
 * durations, limits, match[] series selectors and Prometheus 3's "U__" name
 * escaping.
 *
 * Every parser takes untrusted text from the network: it never reads past the
 * terminating NUL, never overflows an integer (ranges are checked before any
 * multiplication) and answers bad input with HS_EPARSE and a message worded
 * as Prometheus words it, so clients that match on error text keep working.
 * The selector parser is a small recursive-descent parser over
 * `name{label op "value", ...}`; it is independent of the PromQL parser so
 * that match[] never pulls a whole expression in.
 */
#include "api/api.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

/* Longest text quoted back in a message, so a huge parameter cannot flood a
 * log line or an error body. */
#define QUOTE_MAX 120

/* Length of the valid UTF-8 sequence at s (0 when invalid). */
static size_t utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80             ? 1
            : (s[0] & 0xE0) == 0xC0 ? 2
            : (s[0] & 0xF0) == 0xE0 ? 3
            : (s[0] & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || (n == 2 && s[0] < 0xC2))
        return 0;
    uint32_t cp = n == 1 ? s[0] : (uint32_t)(s[0] & (0x7F >> n));
    for (int k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return (size_t)n;
}

/* Writes 's' (at most QUOTE_MAX bytes) quoted as Go's %q does: control
 * characters and invalid UTF-8 escaped, valid UTF-8 kept. */
static void quote(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    static const char ctl_in[] = "\a\b\f\n\r\t\v";
    static const char ctl_out[] = "abfnrtv";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; u[i] != '\0' && o + 8 < cap;) {
        unsigned char c = u[i];
        const char *k = c != 0 ? strchr(ctl_in, c) : NULL;
        size_t n = utf8_len(u + i);
        if (i >= QUOTE_MAX) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
            i++;
        } else if (k != NULL) {
            out[o++] = '\\';
            out[o++] = ctl_out[k - ctl_in];
            i++;
        } else if (n == 0 || c < 0x20 || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
            i++;
        } else {
            memcpy(out + o, u + i, n);
            o += n;
            i += n;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* ---- numbers ------------------------------------------------------------------ */

/* Parses a Go-style float (no leading space, no hex, no trailing bytes). */
static bool parse_float(const char *s, double *out)
{
    if (s[0] == '\0')
        return false;
    size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (!isdigit((unsigned char)s[i]) && s[i] != '.' && s[i] != 'i' && s[i] != 'I' && s[i] != 'n' &&
        s[i] != 'N')
        return false;
    if (s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X'))
        return false;
    double v;
    if (hs_parse_double(s, &v) != HS_OK)
        return false;
    *out = v;
    return true;
}

/* ---- times ------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly 'n' digits at *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/* RFC 3339 with optional fraction (1-9 digits) and Z or +hh:mm / -hh:mm. */
static bool parse_rfc3339(const char *s, int64_t *t_ms)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, sec, frac_ms = 0;
    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
        !digits(&p, 2, &d) || !expect(&p, 'T') || !digits(&p, 2, &h) || !expect(&p, ':') ||
        !digits(&p, 2, &mi) || !expect(&p, ':') || !digits(&p, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return false;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y) ? 1 : 0))
        return false;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return false;
        for (int k = nd; k < 3; k++)
            frac_ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
        off_s = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off_s;
    *t_ms = secs * 1000 + frac_ms;
    return true;
}

int api_prom_parse_time(const char *s, int64_t *t_ms, struct hs_err *err)
{
    double f;
    if (parse_float(s, &f)) {
        /* Seconds as a float, the fraction rounded to the millisecond. */
        if (isfinite(f) && fabs(f) < 9.2e15) {
            double ip = trunc(f);
            *t_ms = (int64_t)ip * 1000 + (int64_t)llround((f - ip) * 1000.0);
            return HS_OK;
        }
    } else if (parse_rfc3339(s, t_ms)) {
        return HS_OK;
    } else if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) {
        *t_ms = API_PROM_MIN_TIME_MS;
        return HS_OK;
    } else if (strcmp(s, "292277026596-12-04T15:30:07.999999999Z") == 0) {
        *t_ms = API_PROM_MAX_TIME_MS;
        return HS_OK;
    }
    char q[QUOTE_MAX * 4 + 16];
    quote(s, q, sizeof(q));
    return hs_err_set(err, HS_EPARSE, "cannot parse %s to a valid timestamp", q);
}

/* ---- durations --------------------------------------------------------------- */

/* model.ParseDuration: units y w d h m s ms, each at most once, in that order. */
static bool parse_prom_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return true;
    }
    if (s[0] == '\0')
        return false;
    const char *p = s;
    size_t next_unit = 0;
    int64_t total = 0;
    while (*p != '\0') {
        if (!isdigit((unsigned char)*p))
            return false;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10)
                return false;
            n = n * 10 + (*p - '0');
            p++;
        }
        size_t ulen = 0;
        while (isalpha((unsigned char)p[ulen]))
            ulen++;
        size_t u = next_unit;
        while (u < HS_ARRAY_LEN(units) &&
               !(strlen(units[u].unit) == ulen && memcmp(units[u].unit, p, ulen) == 0))
            u++;
        if (u == HS_ARRAY_LEN(units))
            return false;
        if (n > INT64_MAX / units[u].ms || total > INT64_MAX - n * units[u].ms)
            return false;
        total += n * units[u].ms;
        next_unit = u + 1;
        p += ulen;
    }
    *ms = total;
    return true;
}

int api_prom_parse_duration(const char *s, int64_t *ms, struct hs_err *err)
{
    char q[QUOTE_MAX * 4 + 16];
    double f;
    if (parse_float(s, &f) && !isnan(f)) {
        double ns = f * 1e9;
        if (ns >= 9223372036854775807.0 || ns < -9223372036854775807.0) {
            quote(s, q, sizeof(q));
            return hs_err_set(err, HS_EPARSE,
                              "cannot parse %s to a valid duration. It overflows int64", q);
        }
        *ms = (int64_t)ns / 1000000;
        return HS_OK;
    }
    if (parse_prom_duration(s, ms))
        return HS_OK;
    quote(s, q, sizeof(q));
    return hs_err_set(err, HS_EPARSE, "cannot parse %s to a valid duration", q);
}

int api_prom_parse_limit(const char *s, int64_t *limit, struct hs_err *err)
{
    *limit = 0;
    if (s == NULL || s[0] == '\0')
        return HS_OK;
    char q[QUOTE_MAX * 4 + 16];
    quote(s, q, sizeof(q));
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (*p == '\0')
        return hs_err_set(err, HS_EPARSE, "strconv.Atoi: parsing %s: invalid syntax", q);
    int64_t v = 0;
    for (; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            return hs_err_set(err, HS_EPARSE, "strconv.Atoi: parsing %s: invalid syntax", q);
        if (v > (INT64_MAX - 9) / 10)
            return hs_err_set(err, HS_EPARSE, "strconv.Atoi: parsing %s: value out of range", q);
        v = v * 10 + (*p - '0');
    }
    if (neg && v != 0)
        return hs_err_set(err, HS_EPARSE, "limit must be non-negative");
    *limit = v;
    return HS_OK;
}

/* ---- name unescaping ----------------------------------------------------------- */

static bool valid_rune(uint32_t cp)
{
    return cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int api_prom_unescape_name(const char *s, struct hs_arena *arena, const char **out)
{
    *out = s;
    if (!hs_has_prefix(s, "U__"))
        return HS_OK;
    const char *e = s + 3;
    size_t n = strlen(e);
    /* Each escape of up to 8 bytes yields at most 4 bytes: n bytes suffice. */
    char *res = hs_arena_alloc(arena, n + 1);
    if (res == NULL)
        return HS_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i] != '_') {
            res[o++] = e[i];
            continue;
        }
        if (++i >= n)
            return HS_OK;
        if (e[i] == '_') {
            res[o++] = '_';
            continue;
        }
        uint32_t cp = 0;
        int j = 0;
        for (;; j++, i++) {
            if (i >= n || j >= 6)
                return HS_OK; /* unterminated or too long: keep the name as sent */
            if (e[i] == '_')
                break;
            int hv = hexval(e[i]);
            if (hv < 0)
                return HS_OK;
            cp = cp * 16 + (uint32_t)hv;
        }
        if (j == 0 || !valid_rune(cp))
            return HS_OK;
        o += hs_utf8_encode(cp, res + o);
    }
    res[o] = '\0';
    *out = res;
    return HS_OK;
}

/* ---- selectors ------------------------------------------------------------------ */

struct sel {
    const char *src;
    size_t pos;
    struct hs_arena *arena;
    struct hs_err *err;
};

static int sel_fail(struct sel *p, size_t pos, const char *fmt, const char *arg)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && p->src[i] != '\0'; i++) {
        if (p->src[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[sizeof(((struct hs_err *)0)->msg) + 64];
    snprintf(msg, sizeof(msg), fmt, arg);
    return hs_err_setpos(p->err, HS_EPARSE, pos, "%zu:%zu: parse error: %s", line, col, msg);
}

static void sel_ws(struct sel *p)
{
    while (p->src[p->pos] == ' ' || p->src[p->pos] == '\t' || p->src[p->pos] == '\n' ||
           p->src[p->pos] == '\r')
        p->pos++;
}

static bool name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool name_char(char c, bool metric)
{
    return isalnum((unsigned char)c) || c == '_' || (metric && c == ':');
}

/* Reads an identifier; returns its length (0 when none). */
static size_t sel_ident(struct sel *p, bool metric)
{
    size_t i = p->pos;
    if (!(name_start(p->src[i]) || (metric && p->src[i] == ':')))
        return 0;
    while (name_char(p->src[i], metric))
        i++;
    return i - p->pos;
}

/* Decodes one escape after a backslash at p->src[*i]; appends to out. */
static int sel_escape(struct sel *p, size_t *i, char quote_ch, char *out, size_t *o)
{
    size_t at = *i - 1;
    char c = p->src[*i];
    static const char simple_in[] = "abfnrtv\\'\"";
    static const char simple_out[] = "\a\b\f\n\r\t\v\\'\"";
    const char *k = c != '\0' ? strchr(simple_in, c) : NULL;
    if (k != NULL) {
        out[(*o)++] = simple_out[k - simple_in];
        (*i)++;
        return HS_OK;
    }
    int ndig = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : (c >= '0' && c <= '7') ? 3 : 0;
    if (ndig == 0)
        return sel_fail(p, at, "unknown escape sequence%s", "");
    uint32_t v = 0;
    size_t start = (c >= '0' && c <= '7') ? *i : *i + 1;
    for (int d = 0; d < ndig; d++) {
        int hv = hexval(p->src[start + (size_t)d]);
        if (hv < 0 || (c >= '0' && c <= '7' && hv > 7))
            return sel_fail(p, at, "invalid escape sequence in string%s", "");
        v = (c >= '0' && c <= '7') ? v * 8 + (uint32_t)hv : v * 16 + (uint32_t)hv;
    }
    *i = start + (size_t)ndig;
    if (c == 'x' || (c >= '0' && c <= '7')) {
        if (v > 255)
            return sel_fail(p, at, "octal escape value > 255%s", "");
        out[(*o)++] = (char)v;
        return HS_OK;
    }
    if (!valid_rune(v))
        return sel_fail(p, at, "escape sequence is invalid Unicode code point%s", "");
    (void)quote_ch;
    *o += hs_utf8_encode(v, out + *o);
    return HS_OK;
}

/* Reads a string literal at p->pos into arena memory. */
static int sel_string(struct sel *p, const char **out)
{
    size_t start = p->pos;
    char q = p->src[start];
    if (q != '"' && q != '\'' && q != '`')
        return sel_fail(p, start, "unexpected %s, expected string", "character");
    size_t i = start + 1;
    size_t end = i;
    /* First pass: find the end to size the output. */
    while (p->src[end] != '\0' && p->src[end] != q) {
        if (q != '`' && p->src[end] == '\\' && p->src[end + 1] != '\0')
            end++;
        else if (q != '`' && p->src[end] == '\n')
            return sel_fail(p, start, "unterminated quoted string%s", "");
        end++;
    }
    if (p->src[end] != q)
        return sel_fail(p, start, "unterminated quoted string%s", "");
    char *res = hs_arena_alloc(p->arena, end - i + 1);
    if (res == NULL)
        return hs_err_set(p->err, HS_ENOMEM, "out of memory");
    size_t o = 0;
    while (i < end) {
        if (q != '`' && p->src[i] == '\\') {
            i++;
            int rc = sel_escape(p, &i, q, res, &o);
            if (rc != HS_OK)
                return rc;
            if (i > end)
                return sel_fail(p, start, "invalid escape sequence in string%s", "");
        } else {
            res[o++] = p->src[i++];
        }
    }
    res[o] = '\0';
    p->pos = end + 1;
    *out = res;
    return HS_OK;
}

/* Reads a label name: identifier or quoted string. */
static int sel_label_name(struct sel *p, const char **out, bool *quoted)
{
    size_t n = sel_ident(p, false);
    *quoted = false;
    if (n > 0) {
        *out = hs_arena_strndup(p->arena, p->src + p->pos, n);
        if (*out == NULL)
            return hs_err_set(p->err, HS_ENOMEM, "out of memory");
        p->pos += n;
        return HS_OK;
    }
    char c = p->src[p->pos];
    if (c == '"' || c == '\'' || c == '`') {
        *quoted = true;
        return sel_string(p, out);
    }
    if (c == '\0')
        return sel_fail(p, p->pos, "unexpected end of input inside braces%s", "");
    char what[8] = {c, '\0'};
    return sel_fail(p, p->pos, "unexpected character inside braces: '%s'", what);
}

static int sel_op(struct sel *p, int *op)
{
    const char *s = p->src + p->pos;
    if (s[0] == '=' && s[1] == '~') {
        *op = PROMQL_M_RE;
        p->pos += 2;
    } else if (s[0] == '!' && s[1] == '~') {
        *op = PROMQL_M_NRE;
        p->pos += 2;
    } else if (s[0] == '!' && s[1] == '=') {
        *op = PROMQL_M_NEQ;
        p->pos += 2;
    } else if (s[0] == '=') {
        *op = PROMQL_M_EQ;
        p->pos += 1;
    } else {
        return sel_fail(p, p->pos,
                        "unexpected %s in label matching, expected label matching "
                        "operator",
                        s[0] == '\0' ? "end of input" : "character");
    }
    return HS_OK;
}

struct sel_list {
    struct promql_matcher *v;
    size_t n, cap;
};

static int sel_push(struct sel *p, struct sel_list *l, int op, const char *name, const char *value)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct promql_matcher *v = hs_arena_alloc(p->arena, cap * sizeof(*v));
        if (v == NULL)
            return hs_err_set(p->err, HS_ENOMEM, "out of memory");
        if (l->n > 0)
            memcpy(v, l->v, l->n * sizeof(*v));
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct promql_matcher){.op = op, .name = name, .value = value};
    return HS_OK;
}

/* Parses the brace list after '{' up to and including '}'. */
static int sel_braces(struct sel *p, struct sel_list *l, const char **quoted_metric)
{
    for (;;) {
        sel_ws(p);
        if (p->src[p->pos] == '}') {
            p->pos++;
            return HS_OK;
        }
        size_t item_pos = p->pos;
        const char *name;
        bool quoted;
        int rc = sel_label_name(p, &name, &quoted);
        if (rc != HS_OK)
            return rc;
        sel_ws(p);
        char c = p->src[p->pos];
        if (quoted && (c == ',' || c == '}')) {
            /* {"metric.name", ...}: a quoted metric name. */
            if (*quoted_metric != NULL)
                return sel_fail(p, item_pos, "metric name must not be set twice: %s", name);
            *quoted_metric = name;
        } else {
            int op = PROMQL_M_EQ;
            if ((rc = sel_op(p, &op)) != HS_OK)
                return rc;
            sel_ws(p);
            const char *value;
            if ((rc = sel_string(p, &value)) != HS_OK)
                return rc;
            if ((rc = sel_push(p, l, op, name, value)) != HS_OK)
                return rc;
        }
        sel_ws(p);
        c = p->src[p->pos];
        if (c == ',') {
            p->pos++;
            continue;
        }
        if (c == '}')
            continue;
        if (c == '\0')
            return sel_fail(p, p->pos, "unexpected end of input inside braces%s", "");
        char what[8] = {c, '\0'};
        return sel_fail(p, p->pos, "unexpected character inside braces: '%s'", what);
    }
}

static void cleanup_matcher(void *arg)
{
    promql_matcher_cleanup(arg);
}

/* Compiles regex matchers (cleanup on the arena) and checks the selector
 * selects something. */
static int sel_finish(struct sel *p, struct sel_list *l)
{
    bool any_non_empty = false;
    for (size_t i = 0; i < l->n; i++) {
        struct promql_matcher *m = &l->v[i];
        if (m->op == PROMQL_M_RE || m->op == PROMQL_M_NRE) {
            struct hs_err cerr = {0};
            int rc = promql_matcher_compile(m, &cerr);
            if (rc == HS_ENOMEM)
                return hs_err_set(p->err, HS_ENOMEM, "out of memory");
            if (rc != HS_OK)
                return sel_fail(p, 0, "%s", cerr.msg);
            if (hs_arena_on_cleanup(p->arena, cleanup_matcher, m) != HS_OK) {
                promql_matcher_cleanup(m);
                return hs_err_set(p->err, HS_ENOMEM, "out of memory");
            }
        }
        if (!promql_matcher_matches(m, ""))
            any_non_empty = true;
    }
    if (!any_non_empty)
        return sel_fail(p, 0, "vector selector must contain at least one non-empty matcher%s", "");
    return HS_OK;
}

int api_prom_parse_selector(const char *s, struct hs_arena *arena, struct promql_matcher **out,
                            size_t *n, struct hs_err *err)
{
    struct sel p = {.src = s, .pos = 0, .arena = arena, .err = err};
    struct sel_list l = {0};
    const char *metric = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    sel_ws(&p);
    size_t name_len = sel_ident(&p, true);
    if (name_len > 0) {
        metric = hs_arena_strndup(arena, s + p.pos, name_len);
        if (metric == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        p.pos += name_len;
        sel_ws(&p);
    }
    if (s[p.pos] == '{') {
        p.pos++;
        const char *quoted = NULL;
        if ((rc = sel_braces(&p, &l, &quoted)) != HS_OK)
            return rc;
        if (quoted != NULL && metric != NULL)
            return sel_fail(&p, 0, "metric name must not be set twice: %s", quoted);
        if (quoted != NULL)
            metric = quoted;
        sel_ws(&p);
    } else if (metric == NULL) {
        if (s[p.pos] == '\0')
            return sel_fail(&p, p.pos, "unexpected end of input%s", "");
        char what[8] = {s[p.pos], '\0'};
        return sel_fail(&p, p.pos, "unexpected character: '%s'", what);
    }
    if (s[p.pos] != '\0') {
        char what[8] = {s[p.pos], '\0'};
        return sel_fail(&p, p.pos, "unexpected character after selector: '%s'", what);
    }
    if (metric != NULL) {
        for (size_t i = 0; i < l.n; i++) {
            if (strcmp(l.v[i].name, "__name__") == 0)
                return sel_fail(&p, 0, "metric name must not be set twice: %s", metric);
        }
        if ((rc = sel_push(&p, &l, PROMQL_M_EQ, "__name__", metric)) != HS_OK)
            return rc;
    }
    if ((rc = sel_finish(&p, &l)) != HS_OK)
        return rc;
    *out = l.v;
    *n = l.n;
    return HS_OK;
}
