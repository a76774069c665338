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

/* Digits of the decimal in buf ("D.DDDDe[+-]XX", as %e writes it) into d without
 * trailing zeros; the decimal point after *dp digits. */
static void split_e(const char *buf, char *d, size_t dlen, int *dp)
{
    size_t n = 0;
    const char *p = buf;
    for (; *p != 'e' && *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9' && n + 1 < dlen)
            d[n++] = *p;
    }
    d[n] = '\0';
    int e = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    while (n > 1 && d[n - 1] == '0')
        d[--n] = '\0';
    *dp = e + 1;
}

/* Digits of iv > 0 into d without trailing zeros; *dp = the number of digits. */
static void int_digits(int64_t iv, char *d, size_t dlen, int *dp)
{
    char tmp[24];
    size_t n = 0, k = 0;
    while (iv > 0 && n < sizeof tmp) {
        tmp[n++] = (char)('0' + iv % 10);
        iv /= 10;
    }
    *dp = (int)n;
    while (n > 0 && k + 1 < dlen)
        d[k++] = tmp[--n];
    while (k > 1 && d[k - 1] == '0')
        k--;
    d[k] = '\0';
}

/* Correctly rounded 16- and 17-digit forms of a normal double a in [1e-7, 1e15)
 * with exact 128-bit integers: a = mant * 2^e2, a * 10^s = mant * 5^s / 2^k
 * with k = -(e2 + s) > 0 (5^s < 2^54, so every product fits). Fills d and *dp
 * as shortest() does; false when the range does not suit. */
static bool wide_digits(double a, char *d, size_t dlen, int *dp)
{
    typedef unsigned __int128 u128;
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    int bexp = (int)((bits >> 52) & 0x7ff);
    if (bexp == 0 || bexp == 0x7ff)
        return false;
    uint64_t mant = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    int e2 = bexp - 1075;
    int e10 = (int)floor(log10(a));
    for (int nd = 16; nd <= 17; nd++) {
        uint64_t lo = 1, hi;
        for (int i = 1; i < nd; i++)
            lo *= 10;
        hi = lo * 10;
        u128 m = 0, x = 0, p5 = 0;
        int sc = 0, k = 0;
        for (int tries = 0; tries < 3; tries++) {
            sc = nd - 1 - e10;
            if (sc < 0 || sc > 23)
                return false;
            k = -(e2 + sc);
            if (k <= 0 || k > 60)
                return false;
            p5 = 1;
            for (int i = 0; i < sc; i++)
                p5 *= 5;
            x = (u128)mant * p5;
            m = x >> k;
            if (m >= hi)
                e10++;
            else if (m < lo)
                e10--;
            else
                break;
        }
        if (m < lo || m >= hi)
            return false;
        u128 r = x - (m << k), half = (u128)1 << (k - 1);
        if (r > half || (r == half && (m & 1) != 0))
            m++;
        bool back = nd == 17;
        if (!back) {
            u128 lhs = m << (k + 1), rhs = x << 1, lim = p5;
            bool below = lhs < rhs;
            if (below && mant == (UINT64_C(1) << 52)) {
                lhs <<= 1;
                rhs <<= 1;
            }
            u128 diff = below ? rhs - lhs : lhs - rhs;
            back = diff < lim || (diff == lim && (mant & 1) == 0);
        }
        if (back) {
            int_digits((int64_t)m, d, dlen, dp);
            *dp -= sc;
            return true;
        }
    }
    return false;
}

/* Shortest digits of |v| (v finite, != 0): digits in d (NUL-terminated), the
 * decimal point after 'dp' digits (value = 0.d * 10^dp).
 *
 * Any decimal of at most 15 significant digits (DBL_DIG) lies within half a
 * 15-digit step of the double nearest to it, so when some decimal of p <= 15
 * digits reads back to v, rounding v to 15 digits yields that same decimal
 * padded with zeros: the only form of up to 15 digits that reads back is the
 * shortest one, found below with exact double arithmetic; 16 and 17 digits
 * are tried after it with snprintf/strtod. (Subnormals, with fewer bits, are
 * searched from one digit up.) */
static void shortest(double v, char *d, size_t dlen, int *dp)
{
    char buf[64];
    double a = fabs(v);
    int first = a < DBL_MIN ? 1 : 15;
    if (a >= 1e-7 && a < 1e15) {
        /* The smallest s for which a * 10^s rounds to an integer m below 10^15
         * whose quotient m / 10^s (exact operands, so correctly rounded) is a
         * again: m's digits are the shortest form. Past 10^15 every form of
         * up to 15 digits has been tried. */
        static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        for (int sc = 0; sc < (int)(sizeof p10 / sizeof p10[0]); sc++) {
            double m = nearbyint(a * p10[sc]);
            if (m >= 1e15)
                break;
            if (m > 0 && m / p10[sc] == a) {
                int_digits((int64_t)m, d, dlen, dp);
                *dp -= sc;
                return;
            }
        }
        if (wide_digits(a, d, dlen, dp))
            return;
        first = 16;
    }
    for (int prec = first; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, a);
        if (prec == 17 || strtod(buf, NULL) == a)
            break;
    }
    split_e(buf, d, dlen, dp);
}

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
    shortest(v, d, sizeof d, &dp);
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
    shortest(v, d, sizeof d, &dp);
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
