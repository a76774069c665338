/*
 * err.c - error codes and the hs_err detail record.
 *
 * Every fallible function returns HS_OK or a negative enum hs_code and, when
 * given one, fills a struct hs_err with a message (and a position for parse
 * errors).  Messages are truncated to fit; they are never allocated.
 */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *hs_strerror(int code)
{
    switch (code) {
    case HS_OK:
        return "ok";
    case HS_ENOMEM:
        return "out of memory";
    case HS_EINVAL:
        return "invalid argument";
    case HS_EPARSE:
        return "parse error";
    case HS_ETOOBIG:
        return "too big";
    case HS_EIO:
        return "i/o error";
    case HS_ECORRUPT:
        return "corrupt data";
    case HS_EAGAIN:
        return "try again";
    case HS_ETIMEDOUT:
        return "timed out";
    case HS_ECLOSED:
        return "closed";
    case HS_ENOTFOUND:
        return "not found";
    default:
        return "unknown error";
    }
}

static void vset(struct hs_err *err, int code, size_t pos, const char *fmt, va_list ap)
{
    err->code = code;
    err->pos = pos;
    err->line = 0;
    err->col = 0;
    if (fmt == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s", hs_strerror(code));
        return;
    }
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int hs_err_set(struct hs_err *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}

int hs_err_setpos(struct hs_err *err, int code, size_t pos, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, pos, fmt, ap);
    va_end(ap);
    return code;
}

void hs_err_clear(struct hs_err *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
}
