/*
 * value.c - number and time formatting as Prometheus writes them, the JSON
 * form of query results, and compiled label matchers.
 *
 * Floats use the shortest decimal digits that read back to the same double
 * (as Go's strconv does), laid out either without exponent ('f', used by the
 * HTTP API and count_values) or in Go's %g style (used in annotations).
 */
#include "promql/internal.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

void promql__fmt_float(double v, char *out, size_t len)
{
    char d[32];
    int dp;
    size_t o = 0;
    if (len == 0)
        return;
    if (isnan(v)) {
        snprintf(out, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(out, len, signbit(v) ? "-0" : "0");
        return;
    }
    hs_shortest_digits(v, d, sizeof d, &dp);
    int nd = (int)strlen(d);
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 < len)                                                                           \
            out[o++] = (ch);                                                                       \
    } while (0)
    if (v < 0)
        PUT('-');
    if (dp <= 0) {
        PUT('0');
        PUT('.');
        for (int i = 0; i < -dp; i++)
            PUT('0');
        for (int i = 0; i < nd; i++)
            PUT(d[i]);
    } else {
        for (int i = 0; i < dp; i++)
            PUT(i < nd ? d[i] : '0');
        if (nd > dp) {
            PUT('.');
            for (int i = dp; i < nd; i++)
                PUT(d[i]);
        }
    }
    out[o] = '\0';
}

void promql__fmt_float_g(double v, char *out, size_t len)
{
    char d[32];
    int dp;
    size_t o = 0;
    if (len == 0)
        return;
    if (isnan(v) || isinf(v) || v == 0) {
        promql__fmt_float(v, out, len);
        return;
    }
    hs_shortest_digits(v, d, sizeof d, &dp);
    int nd = (int)strlen(d), exp = dp - 1;
    if (exp < -4 || exp >= 6) { /* strconv 'g' with shortest digits: precision 6 */
        if (v < 0)
            PUT('-');
        PUT(d[0]);
        if (nd > 1) {
            PUT('.');
            for (int i = 1; i < nd; i++)
                PUT(d[i]);
        }
        out[o] = '\0';
        char eb[16];
        snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        for (const char *p = eb; *p; p++)
            PUT(*p);
        out[o] = '\0';
        return;
    }
    promql__fmt_float(v, out, len);
#undef PUT
}

int promql_format_value(double v, struct hs_buf *out)
{
    char b[400];
    promql__fmt_float(v, b, sizeof b);
    return hs_buf_puts(out, b);
}

/* Writes t_ms as seconds ("-12", "1.5", "3.025") into out (>= 32 bytes);
 * returns the length. */
static size_t fmt_time(int64_t t_ms, char *out)
{
    char tmp[24];
    size_t o = 0, n = 0;
    /* Magnitudes as unsigned, so that INT64_MIN has one too. */
    uint64_t mag = t_ms < 0 ? (uint64_t)0 - (uint64_t)t_ms : (uint64_t)t_ms;
    uint64_t s = mag / 1000, ms = mag % 1000;
    if (t_ms < 0)
        out[o++] = '-';
    do {
        tmp[n++] = (char)('0' + s % 10);
        s /= 10;
    } while (s > 0);
    while (n > 0)
        out[o++] = tmp[--n];
    if (ms != 0) {
        out[o++] = '.';
        out[o++] = (char)('0' + ms / 100);
        if (ms % 100 != 0) {
            out[o++] = (char)('0' + ms / 10 % 10);
            if (ms % 10 != 0)
                out[o++] = (char)('0' + ms % 10);
        }
    }
    out[o] = '\0';
    return o;
}

int promql_format_time(int64_t t_ms, struct hs_buf *out)
{
    char b[32];
    size_t n = fmt_time(t_ms, b);
    return hs_buf_append(out, b, n);
}

static int json_labels(const struct hs_labels *ls, struct hs_buf *b)
{
    int rc = hs_buf_putc(b, '{');
    for (size_t i = 0; i < ls->n && rc == HS_OK; i++) {
        if (i > 0)
            rc = hs_buf_putc(b, ',');
        if (rc == HS_OK)
            rc = hs_buf_json_str(b, ls->v[i].name, strlen(ls->v[i].name));
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ':');
        if (rc == HS_OK)
            rc = hs_buf_json_str(b, ls->v[i].value, strlen(ls->v[i].value));
    }
    return rc == HS_OK ? hs_buf_putc(b, '}') : rc;
}

/* One [t,"v"] pair, assembled on the stack and appended at once. */
static int json_point(int64_t t, double v, struct hs_buf *b)
{
    char p[480];
    size_t o = 0;
    p[o++] = '[';
    o += fmt_time(t, p + o);
    p[o++] = ',';
    p[o++] = '"';
    promql__fmt_float(v, p + o, 400);
    o += strlen(p + o);
    p[o++] = '"';
    p[o++] = ']';
    return hs_buf_append(b, p, o);
}

int promql_result_json(const struct promql_result *r, struct hs_buf *out)
{
    static const char *names[] = {"", "scalar", "string", "vector", "matrix"};
    int rc;
    if (r->type < PROMQL_RESULT_SCALAR || r->type > PROMQL_RESULT_MATRIX)
        return HS_EINVAL;
    rc = hs_buf_printf(out, "{\"resultType\":\"%s\",\"result\":", names[r->type]);
    if (rc != HS_OK)
        return rc;
    switch (r->type) {
    case PROMQL_RESULT_SCALAR:
        rc = json_point(r->t_ms, r->scalar, out);
        break;
    case PROMQL_RESULT_STRING:
        rc = hs_buf_putc(out, '[');
        if (rc == HS_OK)
            rc = promql_format_time(r->t_ms, out);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ',');
        if (rc == HS_OK)
            rc = hs_buf_json_str(out, r->str, strlen(r->str));
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ']');
        break;
    default:
        rc = hs_buf_putc(out, '[');
        for (size_t k = 0; k < r->nseries && rc == HS_OK; k++) {
            const struct promql_rseries *s = &r->series[k];
            if (k > 0)
                rc = hs_buf_putc(out, ',');
            if (rc == HS_OK)
                rc = hs_buf_puts(out, "{\"metric\":");
            if (rc == HS_OK)
                rc = json_labels(&s->labels, out);
            if (rc != HS_OK)
                break;
            if (r->type == PROMQL_RESULT_VECTOR) {
                rc = hs_buf_puts(out, ",\"value\":");
                if (rc == HS_OK && s->npoints > 0)
                    rc = json_point(s->points[0].t_ms, s->points[0].v, out);
            } else {
                rc = hs_buf_puts(out, ",\"values\":[");
                for (size_t i = 0; i < s->npoints && rc == HS_OK; i++) {
                    if (i > 0)
                        rc = hs_buf_putc(out, ',');
                    if (rc == HS_OK)
                        rc = json_point(s->points[i].t_ms, s->points[i].v, out);
                }
                if (rc == HS_OK)
                    rc = hs_buf_putc(out, ']');
            }
            if (rc == HS_OK)
                rc = hs_buf_putc(out, '}');
        }
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ']');
        break;
    }
    return rc == HS_OK ? hs_buf_putc(out, '}') : rc;
}

/* ---- matchers ---------------------------------------------------------------------- */

int promql_matcher_compile(struct promql_matcher *m, struct hs_err *err)
{
    struct hs_buf pat;
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re;
    m->re = NULL;
    m->md = NULL;
    if (m->op != PROMQL_M_RE && m->op != PROMQL_M_NRE)
        return HS_OK;
    hs_buf_init(&pat, 0);
    if (hs_buf_printf(&pat, "^(?s:%s)$", m->value) != HS_OK) {
        hs_buf_cleanup(&pat);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    re = pcre2_compile((PCRE2_SPTR)pat.p, pat.len, PCRE2_UTF, &errcode, &erroff, NULL);
    hs_buf_cleanup(&pat);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return hs_err_set(err, HS_EPARSE, "error parsing regexp: %s: `%s`", (const char *)msg,
                          m->value);
    }
    m->md = pcre2_match_data_create_from_pattern(re, NULL);
    if (m->md == NULL) {
        pcre2_code_free(re);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    m->re = re;
    return HS_OK;
}

void promql_matcher_cleanup(struct promql_matcher *m)
{
    if (m->md != NULL)
        pcre2_match_data_free(m->md);
    if (m->re != NULL)
        pcre2_code_free(m->re);
    m->md = NULL;
    m->re = NULL;
}

bool promql_matcher_matches(const struct promql_matcher *m, const char *value)
{
    bool r;
    if (value == NULL)
        value = "";
    switch (m->op) {
    case PROMQL_M_EQ:
        return strcmp(value, m->value) == 0;
    case PROMQL_M_NEQ:
        return strcmp(value, m->value) != 0;
    default:
        if (m->re == NULL)
            return false;
        r = pcre2_match(m->re, (PCRE2_SPTR)value, strlen(value), 0, 0, m->md, NULL) >= 0;
        return m->op == PROMQL_M_RE ? r : !r;
    }
}
