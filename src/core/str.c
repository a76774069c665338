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
#include <math.h>
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
        /* Shortest digits that round-trip, printed as Go's strconv 'g' with
         * precision -1 does (what Prometheus clients write): exponent form
         * when the decimal exponent is below -4 or at least 6. */
        char e[40];
        int prec = 1;
        for (; prec <= 17; prec++) {
            snprintf(e, sizeof(e), "%.*e", prec - 1, v);
            if (strtod(e, NULL) == v)
                break;
        }
        const char *epos = strchr(e, 'e');
        int exp = epos ? (int)strtol(epos + 1, NULL, 10) : 0;
        if (exp < -4 || exp >= 6)
            n = snprintf(out, out_len, "%s", e);
        else
            n = snprintf(out, out_len, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, v);
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
