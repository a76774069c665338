/*
 * trace.c - W3C Trace Context (spec/gateway.md §7): parse an incoming
 * traceparent strictly (lowercase hex, non-zero ids, version 00 exactly 55
 * characters, version ff invalid, higher versions parsed by their first
 * four fields) and format the one sent upstream.
 */
#include "gateway/gw_internal.h"

#include <string.h>

void gw__hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        int v[2];
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            if (c >= '0' && c <= '9')
                v[k] = c - '0';
            else if (c >= 'a' && c <= 'f')
                v[k] = c - 'a' + 10;
            else
                return HS_EINVAL;
        }
        out[i] = (uint8_t)(v[0] << 4 | v[1]);
        any |= out[i] != 0;
    }
    return any ? HS_OK : HS_ENOTFOUND;
}

int gw_traceparent_parse(const char *s, struct gw_trace *out)
{
    size_t len = strlen(s);
    uint8_t ver;
    if (len < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return HS_EINVAL;
    if (unhex(s, 1, &ver) == HS_EINVAL || ver == 0xff)
        return HS_EINVAL;
    if (ver == 0 && len != 55)
        return HS_EINVAL;
    if (ver != 0 && len > 55 && s[55] != '-')
        return HS_EINVAL;
    struct gw_trace t = {0};
    uint8_t flags = 0;
    if (unhex(s + 3, 16, t.trace_id) != HS_OK || unhex(s + 36, 8, t.parent_id) != HS_OK ||
        unhex(s + 53, 1, &flags) == HS_EINVAL)
        return HS_EINVAL;
    t.flags = flags;
    t.has_parent = true;
    *out = t;
    return HS_OK;
}

void gw_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char out[56])
{
    memcpy(out, "00-", 3);
    gw__hex(trace_id, 16, out + 3);
    out[35] = '-';
    gw__hex(span_id, 8, out + 36);
    out[52] = '-';
    gw__hex(&flags, 1, out + 53);
}
