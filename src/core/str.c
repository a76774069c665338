/*
 * str.c - string helpers and whole-string number, duration and size parsers.
 *
 * Parsers never use atoi-style functions: each checks that the whole input
 * was consumed and that the value is in range, and leaves the output
 * untouched on failure.
 */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool hs_str_eq(struct hs_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && memcmp(a.p, b, n) == 0;
}

bool hs_streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

bool hs_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool hs_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int hs_parse_i64(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return HS_EINVAL;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return HS_EINVAL;
    *out = v;
    return HS_OK;
}

int hs_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return HS_EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return HS_EINVAL;
    *out = v;
    return HS_OK;
}

int hs_parse_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return HS_EINVAL;
    const char *p = s;
    int sign = 1;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
        *out = sign * INFINITY;
        return HS_OK;
    }
    if (strcasecmp(p, "nan") == 0) {
        *out = NAN;
        return HS_OK;
    }
    /* Reject hex floats and other strtod extensions Prometheus does not take. */
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        errno = 0;
        char *end;
        double v = strtod(s, &end);
        if (*end != '\0')
            return HS_EINVAL;
        *out = v;
        return HS_OK;
    }
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return HS_EINVAL;
    if (errno == ERANGE && isinf(v))
        return HS_EINVAL; /* overflow; underflow to a subnormal or zero is fine */
    *out = v;
    return HS_OK;
}

/* Units of Prometheus durations, longest spelling first where one is a prefix. */
static const struct {
    const char *name;
    int64_t ms;
} duration_units[] = {
    {"ms", 1},       {"s", 1000},      {"m", 60000},       {"h", 3600000},
    {"d", 86400000}, {"w", 604800000}, {"y", 31536000000},
};

int hs_parse_duration_ms(const char *s, int64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return HS_EINVAL;
    /* A bare number (possibly fractional) means seconds. */
    double secs;
    if (hs_parse_double(s, &secs) == HS_OK) {
        if (!(secs >= 0) || secs > 9.2e15)
            return HS_EINVAL;
        *out_ms = (int64_t)llround(secs * 1000.0);
        return HS_OK;
    }
    const char *p = s;
    int64_t total = 0;
    int last_unit = (int)HS_ARRAY_LEN(duration_units); /* units must strictly decrease */
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return HS_EINVAL;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10)
                return HS_EINVAL;
            n = n * 10 + (*p - '0');
            p++;
        }
        int unit = -1;
        if (p[0] == 'm' && p[1] == 's')
            unit = 0;
        else
            for (size_t i = 1; i < HS_ARRAY_LEN(duration_units); i++)
                if (*p == duration_units[i].name[0])
                    unit = (int)i;
        if (unit < 0 || unit >= last_unit)
            return HS_EINVAL;
        last_unit = unit;
        p += strlen(duration_units[unit].name);
        if (n > INT64_MAX / duration_units[unit].ms ||
            total > INT64_MAX - n * duration_units[unit].ms)
            return HS_EINVAL;
        total += n * duration_units[unit].ms;
    }
    *out_ms = total;
    return HS_OK;
}

void hs_format_duration(int64_t ms, char *out, size_t out_len)
{
    if (ms == 0) {
        snprintf(out, out_len, "0s");
        return;
    }
    size_t off = 0;
    if (ms < 0) {
        off += (size_t)snprintf(out, out_len, "-");
        ms = -ms;
    }
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"y", 31536000000}, {"w", 604800000}, {"d", 86400000}, {"h", 3600000},
                 {"m", 60000},       {"s", 1000},      {"ms", 1}};
    for (size_t i = 0; i < HS_ARRAY_LEN(units) && off < out_len; i++) {
        int64_t n = ms / units[i].ms;
        if (n == 0)
            continue;
        ms -= n * units[i].ms;
        off += (size_t)snprintf(out + off, out_len - off, "%lld%s", (long long)n, units[i].name);
    }
}

int hs_parse_bytes(const char *s, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return HS_EINVAL;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0)
        return HS_EINVAL;
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KB", 1ull << 10},
                 {"KiB", 1ull << 10},
                 {"MB", 1ull << 20},
                 {"MiB", 1ull << 20},
                 {"GB", 1ull << 30},
                 {"GiB", 1ull << 30},
                 {"TB", 1ull << 40},
                 {"TiB", 1ull << 40},
                 {"PB", 1ull << 50},
                 {"PiB", 1ull << 50}};
    for (size_t i = 0; i < HS_ARRAY_LEN(units); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (n > UINT64_MAX / units[i].mult)
                return HS_EINVAL;
            *out = n * units[i].mult;
            return HS_OK;
        }
    }
    return HS_EINVAL;
}

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

/* hs_shortest_digits (core.h).
 *
 * Any decimal of at most 15 significant digits (DBL_DIG) lies within half a
 * 15-digit step of the double nearest to it, so when some decimal of p <= 15
 * digits reads back to v, rounding v to 15 digits yields that same decimal
 * padded with zeros: the only form of up to 15 digits that reads back is the
 * shortest one, found below with exact double arithmetic; 16 and 17 digits
 * are tried after it with snprintf/strtod. (Subnormals, with fewer bits, are
 * searched from one digit up.) */
void hs_shortest_digits(double v, char *d, size_t dlen, int *dp)
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

size_t hs_format_double(double v, char *out, size_t out_len)
{
    int n;
    if (isnan(v))
        n = snprintf(out, out_len, "NaN");
    else if (isinf(v))
        n = snprintf(out, out_len, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        n = snprintf(out, out_len, signbit(v) ? "-0" : "0");
    else {
        /* Shortest digits that round-trip, laid out as Go's strconv 'g' with
         * precision -1 does (what Prometheus clients write): exponent form
         * when the decimal exponent is below -4 or at least 6. */
        char d[32], t[48];
        int dp;
        size_t o = 0;
        hs_shortest_digits(v, d, sizeof(d), &dp);
        int nd = (int)strlen(d), exp = dp - 1;
        if (v < 0)
            t[o++] = '-';
        if (exp < -4 || exp >= 6) {
            t[o++] = d[0];
            if (nd > 1) {
                t[o++] = '.';
                memcpy(t + o, d + 1, (size_t)nd - 1);
                o += (size_t)nd - 1;
            }
            int ae = exp < 0 ? -exp : exp;
            t[o++] = 'e';
            t[o++] = exp < 0 ? '-' : '+';
            if (ae >= 100)
                t[o++] = (char)('0' + ae / 100);
            t[o++] = (char)('0' + ae / 10 % 10);
            t[o++] = (char)('0' + ae % 10);
        } else if (dp <= 0) {
            t[o++] = '0';
            t[o++] = '.';
            for (int i = 0; i < -dp; i++)
                t[o++] = '0';
            memcpy(t + o, d, (size_t)nd);
            o += (size_t)nd;
        } else {
            for (int i = 0; i < dp; i++)
                t[o++] = i < nd ? d[i] : '0';
            if (nd > dp) {
                t[o++] = '.';
                memcpy(t + o, d + dp, (size_t)(nd - dp));
                o += (size_t)(nd - dp);
            }
        }
        t[o] = '\0';
        n = snprintf(out, out_len, "%s", t);
    }
    return n < 0 ? 0 : (size_t)n;
}

size_t hs_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int hs_base64_decode(const char *s, size_t n, char *out, size_t *out_len, size_t *bad_at)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0, i;
    for (i = 0; i < n && s[i] != '='; i++) {
        int v = base64_value((unsigned char)s[i]);
        if (v < 0) {
            *bad_at = i;
            return HS_EPARSE;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    for (; i < n; i++) {
        if (s[i] != '=') {
            *bad_at = i;
            return HS_EPARSE;
        }
    }
    *out_len = o;
    return HS_OK;
}
