/*
 * log.c - structured logging, one event per line, logfmt or JSON.
 *
 * Each event is formatted into a local buffer and written with one fwrite
 * under a mutex, so lines from different threads never interleave.  The
 * sink (level, format, stream) is one of the few process globals listed in
 * docs/ARCHITECTURE.md; it is set once at start-up by the CLI.
 */
#include "core/core.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static struct {
    pthread_mutex_t lock;
    int level;
    int format;
    FILE *out;
} sink = {PTHREAD_MUTEX_INITIALIZER, HS_LOG_INFO, HS_LOG_LOGFMT, NULL};

static const char *level_names[] = {"debug", "info", "warn", "error"};

void hs_log_setup(int level, int format, FILE *out)
{
    pthread_mutex_lock(&sink.lock);
    sink.level = level;
    sink.format = format;
    sink.out = out;
    pthread_mutex_unlock(&sink.lock);
}

bool hs_log_enabled(int level)
{
    return level >= __atomic_load_n(&sink.level, __ATOMIC_RELAXED);
}

int hs_log_level_parse(const char *s, int *level)
{
    for (int i = 0; i < (int)HS_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *level = i;
            return HS_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *level = HS_LOG_WARN;
        return HS_OK;
    }
    return HS_EINVAL;
}

int hs_log_format_parse(const char *s, int *format)
{
    if (strcmp(s, "logfmt") == 0)
        *format = HS_LOG_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *format = HS_LOG_JSON;
    else
        return HS_EINVAL;
    return HS_OK;
}

static bool logfmt_needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == '\\')
            return true;
    return false;
}

static void put_logfmt_value(struct hs_buf *b, const char *s)
{
    if (!logfmt_needs_quotes(s)) {
        HS_IGNORE_RESULT(hs_buf_puts(b, s));
        return;
    }
    HS_IGNORE_RESULT(hs_buf_json_str(b, s, strlen(s)));
}

static void put_field(struct hs_buf *b, int format, const struct hs_log_field *f)
{
    char num[40];
    const char *text = NULL;
    switch (f->type) {
    case HS_LF_STR:
        text = f->s ? f->s : "";
        break;
    case HS_LF_INT: {
        /* digits by hand: the access log writes several per request */
        char tmp[24];
        size_t n = 0, o = 0;
        uint64_t mag = f->i < 0 ? (uint64_t)0 - (uint64_t)f->i : (uint64_t)f->i;
        do {
            tmp[n++] = (char)('0' + mag % 10);
            mag /= 10;
        } while (mag > 0);
        if (f->i < 0)
            num[o++] = '-';
        while (n > 0)
            num[o++] = tmp[--n];
        num[o] = '\0';
        break;
    }
    case HS_LF_F64:
        hs_format_double(f->d, num, sizeof(num));
        break;
    case HS_LF_BOOL:
        snprintf(num, sizeof(num), "%s", f->i ? "true" : "false");
        break;
    default:
        return;
    }
    if (format == HS_LOG_JSON) {
        HS_IGNORE_RESULT(hs_buf_putc(b, ','));
        HS_IGNORE_RESULT(hs_buf_json_str(b, f->key, strlen(f->key)));
        HS_IGNORE_RESULT(hs_buf_putc(b, ':'));
        if (text != NULL)
            HS_IGNORE_RESULT(hs_buf_json_str(b, text, strlen(text)));
        else if (f->type == HS_LF_F64 && !isfinite(f->d))
            HS_IGNORE_RESULT(hs_buf_json_str(b, num, strlen(num)));
        else
            HS_IGNORE_RESULT(hs_buf_puts(b, num));
    } else {
        HS_IGNORE_RESULT(hs_buf_putc(b, ' '));
        HS_IGNORE_RESULT(hs_buf_puts(b, f->key));
        HS_IGNORE_RESULT(hs_buf_putc(b, '='));
        put_logfmt_value(b, text ? text : num);
    }
}

void hs_log_emit(int level, const char *msg, ...)
{
    if (!hs_log_enabled(level))
        return;
    if (level < HS_LOG_DEBUG || level > HS_LOG_ERROR)
        level = HS_LOG_ERROR;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* The date and time to the second are formatted once per second per
     * thread; the milliseconds are put in by hand. */
    static _Thread_local time_t when_sec = -1;
    static _Thread_local char when[80];
    if (ts.tv_sec != when_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.000Z", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        when_sec = ts.tv_sec;
    }
    size_t wl = strlen(when);
    if (wl >= 5) {
        long ms = ts.tv_nsec / 1000000;
        when[wl - 4] = (char)('0' + ms / 100);
        when[wl - 3] = (char)('0' + ms / 10 % 10);
        when[wl - 2] = (char)('0' + ms % 10);
    }

    struct hs_buf b;
    hs_buf_init(&b, 0);
    int format = __atomic_load_n(&sink.format, __ATOMIC_RELAXED);
    if (format == HS_LOG_JSON) {
        HS_IGNORE_RESULT(hs_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when,
                                       level_names[level]));
        HS_IGNORE_RESULT(hs_buf_json_str(&b, msg, strlen(msg)));
    } else {
        HS_IGNORE_RESULT(hs_buf_puts(&b, "ts="));
        HS_IGNORE_RESULT(hs_buf_puts(&b, when));
        HS_IGNORE_RESULT(hs_buf_puts(&b, " level="));
        HS_IGNORE_RESULT(hs_buf_puts(&b, level_names[level]));
        HS_IGNORE_RESULT(hs_buf_puts(&b, " msg="));
        put_logfmt_value(&b, msg);
    }
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        struct hs_log_field f = va_arg(ap, struct hs_log_field);
        if (f.type == HS_LF_END || f.key == NULL)
            break;
        put_field(&b, format, &f);
    }
    va_end(ap);
    HS_IGNORE_RESULT(hs_buf_puts(&b, format == HS_LOG_JSON ? "}\n" : "\n"));

    pthread_mutex_lock(&sink.lock);
    FILE *out = sink.out ? sink.out : stderr;
    if (b.p != NULL) {
        fwrite(b.p, 1, b.len, out);
        fflush(out);
    }
    pthread_mutex_unlock(&sink.lock);
    hs_buf_cleanup(&b);
}
