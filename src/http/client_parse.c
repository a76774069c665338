/*
 * client_parse.c - the client's resumable HTTP/1.x response parser.
 *
 * The head (status line and header lines) is gathered line by line into
 * one bounded buffer; header names and values are recorded as offsets and
 * NUL-terminated in place when the head is complete.  Body bytes are handed
 * back as spans of the caller's input, never copied.  Chunk-size lines and
 * trailers go through a small separate line buffer, bounded too.
 *
 * Framing follows RFC 9112 section 6.3: HEAD, 1xx, 204 and 304 have no
 * body; Transfer-Encoding ending in chunked is chunked; any other
 * Transfer-Encoding, or neither header, reads until the peer closes;
 * otherwise Content-Length (repeated only with the same value).  Interim
 * 1xx responses are skipped here; 101 is refused (no protocol switches).
 */
#include "http/internal.h"

#include <string.h>
#include <strings.h>

enum rp_state {
    RP_STATUS = 0, /* reading the status line */
    RP_HEADER,     /* reading header lines */
    RP_CL,         /* Content-Length body, 'remaining' left */
    RP_CHUNK_SIZE, /* chunk-size line */
    RP_CHUNK_DATA, /* chunk data, 'remaining' left */
    RP_CHUNK_CRLF, /* the CRLF after chunk data */
    RP_TRAILER,    /* trailer lines after the last chunk */
    RP_EOF_BODY,   /* body delimited by the connection closing */
    RP_FINISH,     /* complete: the next feed returns DONE */
    RP_DONE        /* DONE returned */
};

void http__rparser_init(struct http__rparser *p, size_t max_header_bytes)
{
    memset(p, 0, sizeof(*p));
    p->max_header_bytes = max_header_bytes;
    hs_buf_init(&p->head, 0);
    hs_buf_init(&p->line, 0);
}

void http__rparser_cleanup(struct http__rparser *p)
{
    hs_buf_cleanup(&p->head);
    hs_buf_cleanup(&p->line);
    hs_free(p->hdrs);
    p->hdrs = NULL;
    p->caphdrs = p->nhdrs = 0;
}

static void reset_head(struct http__rparser *p)
{
    hs_buf_reset(&p->head);
    hs_buf_reset(&p->line);
    p->nhdrs = 0;
    p->line_start = 0;
    p->status = 0;
    p->version_minor = 0;
    p->is_chunked = p->is_close_delimited = p->keep_alive = p->is_gzip = false;
    p->content_length = p->remaining = p->body_bytes = 0;
    p->trailer_bytes = 0;
}

void http__rparser_reset(struct http__rparser *p, bool is_head)
{
    reset_head(p);
    p->state = RP_STATUS;
    p->is_head = is_head;
    p->ninterim = 0;
    p->wire_bytes = 0;
}

const char *http__rparser_hdr_name(const struct http__rparser *p, size_t i)
{
    return p->head.p + p->hdrs[i].name_off;
}

const char *http__rparser_hdr_value(const struct http__rparser *p, size_t i)
{
    return p->head.p + p->hdrs[i].value_off;
}

const char *http__rparser_header(const struct http__rparser *p, const char *name)
{
    for (size_t i = 0; i < p->nhdrs; i++) {
        if (strcasecmp(http__rparser_hdr_name(p, i), name) == 0)
            return http__rparser_hdr_value(p, i);
    }
    return NULL;
}

static int fail_at(struct http__rparser *p, int code, uint64_t pos, struct hs_err *err,
                   const char *what)
{
    p->state = RP_DONE;
    return hs_err_setpos(err, code, (size_t)pos, "%s (at byte %llu of the response)", what,
                         (unsigned long long)pos);
}

static int fail(struct http__rparser *p, int code, struct hs_err *err, const char *what)
{
    return fail_at(p, code, p->wire_bytes, err, what);
}

/* Offset in the response of a byte of the head buffer. */
static uint64_t head_pos(const struct http__rparser *p, const char *at)
{
    return p->wire_bytes - p->head.len + (uint64_t)(at - p->head.p);
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Strips the line ending of [b, *e): "\r\n" or "\n".  False on a CR
 * anywhere else in the line. */
static bool strip_eol(const char *b, size_t *len)
{
    size_t n = *len;
    if (n > 0 && b[n - 1] == '\n')
        n--;
    if (n > 0 && b[n - 1] == '\r')
        n--;
    if (memchr(b, '\r', n) != NULL || memchr(b, '\0', n) != NULL)
        return false;
    *len = n;
    return true;
}

static int parse_status(struct http__rparser *p, const char *s, size_t n, struct hs_err *err)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return fail(p, HS_EPARSE, err, "malformed status line: expected \"HTTP/1.x NNN\"");
    if (s[9] < '1' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9')
        return fail_at(p, HS_EPARSE, head_pos(p, s + 9), err,
                       "malformed status line: bad status code");
    if (n > 12 && s[12] != ' ')
        return fail(p, HS_EPARSE, err, "malformed status line: status code is not 3 digits");
    p->version_minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    return HS_OK;
}

static int add_header(struct http__rparser *p, const char *s, size_t n, struct hs_err *err)
{
    if (s[0] == ' ' || s[0] == '\t')
        return fail_at(p, HS_EPARSE, head_pos(p, s), err, "obsolete header line folding");
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s)
        return fail_at(p, HS_EPARSE, head_pos(p, s), err,
                       "malformed header line: no name or no colon");
    for (const char *c = s; c < colon; c++) {
        if (!is_tchar((unsigned char)*c))
            return fail_at(p, HS_EPARSE, head_pos(p, c), err,
                           "malformed header line: bad character in the name");
    }
    const char *v = colon + 1, *e = s + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (p->nhdrs == HTTP__RESP_MAX_HEADERS)
        return fail(p, HS_ETOOBIG, err, "too many response header fields");
    if (p->nhdrs == p->caphdrs) {
        size_t ncap = p->caphdrs ? p->caphdrs * 2 : 16;
        struct http__hdr *h = hs_reallocarray(p->hdrs, ncap, sizeof(*h));
        if (h == NULL)
            return fail(p, HS_ENOMEM, err, "out of memory");
        p->hdrs = h;
        p->caphdrs = ncap;
    }
    struct http__hdr *h = &p->hdrs[p->nhdrs++];
    h->name_off = (uint32_t)(s - p->head.p);
    h->name_len = (uint32_t)(colon - s);
    h->value_off = (uint32_t)(v - p->head.p);
    h->value_len = (uint32_t)(e - v);
    return HS_OK;
}

/* Digits only, no sign, no overflow. */
static bool parse_length(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* The last coding of a Transfer-Encoding list is "chunked". */
static bool ends_chunked(const char *te)
{
    const char *last = strrchr(te, ',');
    last = last ? last + 1 : te;
    while (*last == ' ' || *last == '\t')
        last++;
    size_t n = strlen(last);
    while (n > 0 && (last[n - 1] == ' ' || last[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(last, "chunked", 7) == 0;
}

/* The head is complete: terminate the strings and decide the framing.
 * Returns HS_OK (state set), 1 to skip an interim response, or an error. */
static int finish_head(struct http__rparser *p, struct hs_err *err)
{
    for (size_t i = 0; i < p->nhdrs; i++) {
        p->head.p[p->hdrs[i].name_off + p->hdrs[i].name_len] = '\0';
        p->head.p[p->hdrs[i].value_off + p->hdrs[i].value_len] = '\0';
    }
    if (p->status == 101)
        return fail(p, HS_EPARSE, err, "101 Switching Protocols is not supported");
    if (p->status < 200) {
        if (++p->ninterim > HTTP__RESP_MAX_INTERIM)
            return fail(p, HS_EPARSE, err, "too many interim 1xx responses");
        reset_head(p);
        p->state = RP_STATUS;
        return 1;
    }
    bool has_cl = false;
    for (size_t i = 0; i < p->nhdrs; i++) {
        if (strcasecmp(http__rparser_hdr_name(p, i), "Content-Length") != 0)
            continue;
        uint64_t v;
        if (!parse_length(http__rparser_hdr_value(p, i), &v))
            return fail(p, HS_EPARSE, err, "malformed Content-Length");
        if (has_cl && v != p->content_length)
            return fail(p, HS_EPARSE, err, "conflicting Content-Length headers");
        has_cl = true;
        p->content_length = v;
    }
    const char *conn = http__rparser_header(p, "Connection");
    if (p->version_minor >= 1)
        p->keep_alive = conn == NULL || !http__token_list_has(conn, "close");
    else
        p->keep_alive = conn != NULL && http__token_list_has(conn, "keep-alive");
    const char *ce = http__rparser_header(p, "Content-Encoding");
    p->is_gzip = ce != NULL && (strcasecmp(ce, "gzip") == 0 || strcasecmp(ce, "x-gzip") == 0);
    const char *te = http__rparser_header(p, "Transfer-Encoding");
    if (p->is_head || p->status == 204 || p->status == 304) {
        p->state = RP_FINISH;
    } else if (te != NULL) {
        p->is_chunked = ends_chunked(te);
        p->is_close_delimited = !p->is_chunked;
        if (has_cl)
            p->keep_alive = false; /* both headers: never reuse (request smuggling guard) */
        p->state = p->is_chunked ? RP_CHUNK_SIZE : RP_EOF_BODY;
    } else if (has_cl) {
        p->remaining = p->content_length;
        p->state = p->content_length == 0 ? RP_FINISH : RP_CL;
    } else {
        p->is_close_delimited = true;
        p->state = RP_EOF_BODY;
    }
    if (p->is_close_delimited)
        p->keep_alive = false;
    return HS_OK;
}

/* Collects bytes up to and including LF into 'b' (at most 'max' bytes in
 * 'b').  Returns 1 when a line is complete, 0 when more is needed, or an
 * error.  *n is set to the bytes taken from 'data'. */
static int collect(struct http__rparser *p, struct hs_buf *b, size_t max, const char *data,
                   size_t len, size_t *n, const char *what, struct hs_err *err)
{
    const char *lf = memchr(data, '\n', len);
    *n = lf ? (size_t)(lf - data) + 1 : len;
    if (b->len + *n > max) {
        char m[96];
        snprintf(m, sizeof(m), "%s longer than %zu bytes", what, max);
        return fail(p, HS_ETOOBIG, err, m);
    }
    if (hs_buf_append(b, data, *n) != HS_OK)
        return fail(p, HS_ENOMEM, err, "out of memory");
    p->wire_bytes += *n;
    return lf != NULL;
}

/* A complete head line sits at head[line_start..len). */
static int head_line(struct http__rparser *p, struct hs_err *err)
{
    const char *s = p->head.p + p->line_start;
    size_t n = p->head.len - p->line_start;
    if (!strip_eol(s, &n))
        return fail(p, HS_EPARSE, err, "stray CR or NUL in the response head");
    int rc = HS_OK;
    if (p->state == RP_STATUS) {
        rc = parse_status(p, s, n, err);
        if (rc == HS_OK)
            p->state = RP_HEADER;
    } else if (n == 0) {
        rc = finish_head(p, err);
        if (rc == HS_OK)
            return HTTP__EV_HEADERS;
        if (rc == 1)
            return HS_OK;
    } else {
        rc = add_header(p, s, n, err);
    }
    p->line_start = p->head.len;
    return rc;
}

static int chunk_size_line(struct http__rparser *p, struct hs_err *err)
{
    size_t n = p->line.len;
    if (!strip_eol(p->line.p, &n))
        return fail(p, HS_EPARSE, err, "stray CR in a chunk-size line");
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n; i++) {
        char c = p->line.p[i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0)
            break;
        if (i >= 15)
            return fail(p, HS_EPARSE, err, "chunk size too large");
        v = v * 16 + (uint64_t)d;
    }
    if (i == 0)
        return fail(p, HS_EPARSE, err, "malformed chunk size");
    while (i < n && (p->line.p[i] == ' ' || p->line.p[i] == '\t'))
        i++;
    if (i < n && p->line.p[i] != ';')
        return fail(p, HS_EPARSE, err, "malformed chunk size");
    hs_buf_reset(&p->line);
    p->remaining = v;
    p->state = v == 0 ? RP_TRAILER : RP_CHUNK_DATA;
    return HS_OK;
}

/* Body bytes for CL and chunk data. */
static int body_span(struct http__rparser *p, const char *data, size_t len, size_t *n,
                     const char **body, size_t *body_len)
{
    *n = (size_t)HS_MIN((uint64_t)len, p->remaining);
    *body = data;
    *body_len = *n;
    p->remaining -= *n;
    p->body_bytes += *n;
    p->wire_bytes += *n;
    if (p->remaining == 0)
        p->state = p->state == RP_CL ? RP_FINISH : RP_CHUNK_CRLF;
    return HTTP__EV_BODY;
}

int http__rparser_feed(struct http__rparser *p, const char *data, size_t len, size_t *used,
                       const char **body, size_t *body_len, struct hs_err *err)
{
    size_t i = 0, n = 0;
    int rc;
    *used = 0;
    *body = NULL;
    *body_len = 0;
    if (p->state == RP_FINISH) {
        p->state = RP_DONE;
        return HTTP__EV_DONE;
    }
    if (p->state == RP_DONE)
        return hs_err_set(err, HS_EINVAL, "response parser fed after the response ended");
    while (i < len) {
        switch (p->state) {
        case RP_STATUS:
        case RP_HEADER:
            rc = collect(p, &p->head, p->max_header_bytes, data + i, len - i, &n, "response head",
                         err);
            i += n;
            if (rc == 1)
                rc = head_line(p, err);
            if (rc != HS_OK && rc != 0) {
                *used = i;
                return rc;
            }
            break;
        case RP_CL:
        case RP_CHUNK_DATA:
            rc = body_span(p, data + i, len - i, &n, body, body_len);
            *used = i + n;
            return rc;
        case RP_EOF_BODY:
            *body = data + i;
            *body_len = len - i;
            p->body_bytes += len - i;
            p->wire_bytes += len - i;
            *used = len;
            return HTTP__EV_BODY;
        case RP_CHUNK_SIZE:
        case RP_CHUNK_CRLF:
            rc = collect(p, &p->line, HTTP__MAX_CHUNK_LINE, data + i, len - i, &n,
                         "chunk-size line", err);
            i += n;
            if (rc == 1 && p->state == RP_CHUNK_SIZE) {
                rc = chunk_size_line(p, err);
            } else if (rc == 1) {
                size_t ln = p->line.len;
                if (!strip_eol(p->line.p, &ln) || ln != 0)
                    rc = fail(p, HS_EPARSE, err, "chunk data not followed by CRLF");
                else
                    rc = HS_OK;
                hs_buf_reset(&p->line);
                p->state = rc == HS_OK ? RP_CHUNK_SIZE : RP_DONE;
            }
            if (rc < 0) {
                *used = i;
                return rc;
            }
            break;
        case RP_TRAILER:
            rc = collect(p, &p->line,
                         p->max_header_bytes - HS_MIN(p->max_header_bytes, p->trailer_bytes),
                         data + i, len - i, &n, "trailer section", err);
            i += n;
            if (rc < 0) {
                *used = i;
                return rc;
            }
            if (rc == 1) {
                size_t ln = p->line.len;
                p->trailer_bytes += ln;
                if (!strip_eol(p->line.p, &ln)) {
                    *used = i;
                    return fail(p, HS_EPARSE, err, "stray CR in a trailer");
                }
                hs_buf_reset(&p->line);
                if (ln == 0) {
                    p->state = RP_DONE;
                    *used = i;
                    return HTTP__EV_DONE;
                }
            }
            break;
        case RP_FINISH:
            *used = i;
            p->state = RP_DONE;
            return HTTP__EV_DONE;
        default:
            *used = i;
            return hs_err_set(err, HS_EINVAL, "response parser fed after the response ended");
        }
    }
    *used = i;
    if (p->state == RP_FINISH) {
        p->state = RP_DONE;
        return HTTP__EV_DONE;
    }
    return HS_EAGAIN;
}

int http__rparser_eof(struct http__rparser *p, struct hs_err *err)
{
    switch (p->state) {
    case RP_EOF_BODY:
    case RP_FINISH:
        p->state = RP_DONE;
        return HTTP__EV_DONE;
    case RP_STATUS:
        if (p->wire_bytes == 0)
            return hs_err_set(err, HS_ECLOSED, "connection closed before any response byte");
        return hs_err_set(err, HS_ECLOSED, "connection closed in the status line");
    case RP_HEADER:
        return hs_err_set(err, HS_ECLOSED, "connection closed in the response headers");
    case RP_CL:
        return hs_err_set(err, HS_ECLOSED, "connection closed after %llu of %llu body bytes",
                          (unsigned long long)p->body_bytes, (unsigned long long)p->content_length);
    case RP_DONE:
        return hs_err_set(err, HS_EINVAL, "response already complete");
    default:
        return hs_err_set(err, HS_ECLOSED, "connection closed in the chunked body after %llu bytes",
                          (unsigned long long)p->body_bytes);
    }
}
