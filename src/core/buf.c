/*
 * buf.c - growable, NUL-terminated byte buffer with a ceiling.
 *
 * Growth doubles; a buffer never grows past 'max' (when set) and a failed
 * append leaves the contents as they were.
 */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void hs_buf_init(struct hs_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void hs_buf_cleanup(struct hs_buf *b)
{
    hs_free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void hs_buf_reset(struct hs_buf *b)
{
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

int hs_buf_reserve(struct hs_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return HS_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (b->max && need - 1 > b->max)
        return HS_ETOOBIG;
    if (need <= b->cap)
        return HS_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    char *p = hs_realloc(b->p, cap);
    if (p == NULL)
        return HS_ENOMEM;
    b->p = p;
    b->cap = cap;
    return HS_OK;
}

int hs_buf_append(struct hs_buf *b, const void *data, size_t n)
{
    int rc = hs_buf_reserve(b, n);
    if (rc != HS_OK)
        return rc;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return HS_OK;
}

int hs_buf_puts(struct hs_buf *b, const char *s)
{
    return hs_buf_append(b, s, strlen(s));
}

int hs_buf_putc(struct hs_buf *b, char c)
{
    return hs_buf_append(b, &c, 1);
}

int hs_buf_vprintf(struct hs_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return HS_EINVAL;
    if ((size_t)n < sizeof(small))
        return hs_buf_append(b, small, (size_t)n);
    int rc = hs_buf_reserve(b, (size_t)n);
    if (rc != HS_OK)
        return rc;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return HS_OK;
}

int hs_buf_printf(struct hs_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = hs_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int hs_buf_json_str(struct hs_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = b->len;
    int rc = hs_buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = hs_buf_append(b, s + run, i - run);
        run = i + 1;
        if (rc != HS_OK)
            break;
        switch (c) {
        case '"':
            rc = hs_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = hs_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = hs_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = hs_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = hs_buf_append(b, "\\t", 2);
            break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = hs_buf_append(b, e, 6);
        }
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_append(b, s + run, n - run);
    if (rc == HS_OK)
        rc = hs_buf_putc(b, '"');
    if (rc != HS_OK) {
        b->len = start;
        if (b->p)
            b->p[start] = '\0';
    }
    return rc;
}

char *hs_buf_detach(struct hs_buf *b, size_t *len)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    if (p == NULL)
        p = hs_strdup("");
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
