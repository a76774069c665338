/*
 * sse.c - incremental text/event-stream parser (WHATWG "Parsing an event
 * stream", spec/gateway.md §3.1).
 *
 * A feed is scanned for line ends.  A line that lies wholly inside the
 * input is processed in place; only the unfinished tail of a feed is copied
 * into p->line and completed by the next feed.  A CR that ends one feed may
 * be the first half of a CRLF: skip_lf drops a LF that starts the next one.
 * Data lines are copied into p->data (joined with "\n") because the blank
 * line that dispatches the event may arrive in a later read.
 *
 * Invariant: line.len + type.len + data.len <= max_event_bytes at all
 * times; passing it fails the parser for good (HS_ETOOBIG), so a hostile
 * upstream sending one endless line or endless data lines costs at most
 * max_event_bytes.
 */
#include "gateway/sse.h"

#include <string.h>

#define SSE_DEFAULT_MAX (1u << 20)

void gw_sse_init(struct gw_sse *p, size_t max_event_bytes)
{
    memset(p, 0, sizeof(*p));
    p->max_event_bytes = max_event_bytes ? max_event_bytes : SSE_DEFAULT_MAX;
    hs_buf_init(&p->line, 0);
    hs_buf_init(&p->type, 0);
    hs_buf_init(&p->data, 0);
}

void gw_sse_free(struct gw_sse *p)
{
    hs_buf_cleanup(&p->line);
    hs_buf_cleanup(&p->type);
    hs_buf_cleanup(&p->data);
    p->has_data = false;
    p->skip_lf = false;
}

static int fail(struct gw_sse *p, int code, struct hs_err *err)
{
    p->failed = code;
    if (code == HS_ENOMEM)
        return hs_err_set(err, HS_ENOMEM, "sse: out of memory");
    return hs_err_set(err, HS_ETOOBIG, "sse: event larger than %zu bytes", p->max_event_bytes);
}

/* Would adding 'n' bytes to the event pass the ceiling? */
static bool too_big(const struct gw_sse *p, size_t n)
{
    size_t used = p->line.len + p->type.len + p->data.len;
    return n > p->max_event_bytes || used > p->max_event_bytes - n;
}

static int dispatch(struct gw_sse *p, size_t end_offset, gw_sse_event_fn *fn, void *arg)
{
    int rc = 0;
    if (p->has_data) {
        struct gw_sse_event ev = {
            .type = p->type.p ? p->type.p : "",
            .type_len = p->type.len,
            .data = p->data.p ? p->data.p : "",
            .data_len = p->data.len,
            .end_offset = end_offset,
        };
        p->events++;
        if (fn != NULL)
            rc = fn(arg, &ev);
    }
    hs_buf_reset(&p->type);
    hs_buf_reset(&p->data);
    p->has_data = false;
    return rc;
}

/*
 * One complete line (without its terminator).  'line' may point into
 * p->line; p->line is only reset by the caller afterwards.  Returns HS_OK,
 * a failure code (p->failed set), or the callback's non-zero value as a
 * positive number tagged through *stopped.
 */
static int process_line(struct gw_sse *p, const char *line, size_t n, size_t end_offset,
                        gw_sse_event_fn *fn, void *arg, int *stopped, struct hs_err *err)
{
    if (n == 0) {
        *stopped = dispatch(p, end_offset, fn, arg);
        return HS_OK;
    }
    if (line[0] == ':')
        return HS_OK; /* comment (keep-alive) */
    const char *colon = memchr(line, ':', n);
    size_t flen = colon ? (size_t)(colon - line) : n;
    const char *value = colon ? colon + 1 : line + n;
    size_t vlen = (size_t)(line + n - value);
    if (vlen > 0 && value[0] == ' ') {
        value++;
        vlen--;
    }
    /* The value is checked against what is kept once the line is reset. */
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        size_t add = vlen + (p->has_data ? 1 : 0);
        if (add > p->max_event_bytes || p->type.len + p->data.len > p->max_event_bytes - add)
            return fail(p, HS_ETOOBIG, err);
        if (p->has_data && hs_buf_putc(&p->data, '\n') != HS_OK)
            return fail(p, HS_ENOMEM, err);
        if (hs_buf_append(&p->data, value, vlen) != HS_OK)
            return fail(p, HS_ENOMEM, err);
        p->has_data = true;
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        if (vlen > p->max_event_bytes || p->data.len > p->max_event_bytes - vlen)
            return fail(p, HS_ETOOBIG, err);
        hs_buf_reset(&p->type);
        if (hs_buf_append(&p->type, value, vlen) != HS_OK)
            return fail(p, HS_ENOMEM, err);
    }
    /* id, retry and unknown fields are ignored. */
    return HS_OK;
}

/* Index of the first CR or LF in data[i..len), or len.  LF is the common
 * line end: find it with memchr, then look for a CR before it. */
static size_t find_eol(const char *data, size_t i, size_t len)
{
    const char *lf = memchr(data + i, '\n', len - i);
    size_t stop = lf ? (size_t)(lf - data) : len;
    const char *cr = memchr(data + i, '\r', stop - i);
    return cr ? (size_t)(cr - data) : stop;
}

int gw_sse_feed(struct gw_sse *p, const char *data, size_t len, gw_sse_event_fn *fn, void *arg,
                struct hs_err *err)
{
    if (p->failed != 0)
        return hs_err_set(err, p->failed,
                          "sse: parser failed earlier (event larger than %zu "
                          "bytes or out of memory)",
                          p->max_event_bytes);
    size_t i = 0;
    /* WHATWG: one U+FEFF (EF BB BF) at the very start of the stream is
     * dropped; reads may split it too */
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    while (p->bom_seen < 3 && i < len) {
        if ((unsigned char)data[i] == bom[p->bom_seen]) {
            p->bom_seen++;
            i++;
            continue;
        }
        /* not a BOM: the bytes taken so far start the first line */
        if (p->bom_seen > 0 && hs_buf_append(&p->line, bom, p->bom_seen) != HS_OK)
            return fail(p, HS_ENOMEM, err);
        p->bom_seen = 3;
    }
    if (p->skip_lf && i < len) {
        if (data[i] == '\n')
            i++;
        p->skip_lf = false;
    }
    while (i < len) {
        size_t j = find_eol(data, i, len);
        if (j == len) {
            if (too_big(p, len - i))
                return fail(p, HS_ETOOBIG, err);
            if (hs_buf_append(&p->line, data + i, len - i) != HS_OK)
                return fail(p, HS_ENOMEM, err);
            break;
        }
        size_t end = j + 1;
        if (data[j] == '\r') {
            if (end < len && data[end] == '\n')
                end++;
            else if (end == len)
                p->skip_lf = true;
        }
        const char *line = data + i;
        size_t n = j - i;
        if (p->line.len > 0) {
            if (too_big(p, n))
                return fail(p, HS_ETOOBIG, err);
            if (hs_buf_append(&p->line, data + i, n) != HS_OK)
                return fail(p, HS_ENOMEM, err);
            line = p->line.p;
            n = p->line.len;
        } else if (n > p->max_event_bytes) {
            return fail(p, HS_ETOOBIG, err);
        }
        int stopped = 0;
        int rc = process_line(p, line, n, end, fn, arg, &stopped, err);
        hs_buf_reset(&p->line);
        if (rc != HS_OK)
            return rc;
        if (stopped != 0)
            return stopped;
        i = end;
    }
    return HS_OK;
}

int gw_sse_finish(struct gw_sse *p, gw_sse_event_fn *fn, void *arg, struct hs_err *err)
{
    (void)fn;
    (void)arg;
    if (p->failed != 0)
        return hs_err_set(err, p->failed, "sse: parser failed earlier");
    /* WHATWG: an incomplete event at end of stream is discarded. */
    hs_buf_reset(&p->line);
    hs_buf_reset(&p->type);
    hs_buf_reset(&p->data);
    p->has_data = false;
    p->skip_lf = false;
    return HS_OK;
}
