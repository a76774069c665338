/*
 * parser.c - incremental HTTP/1.1 request parser.
 *
 * A resumable state machine: it can be fed any split of the input (one byte
 * at a time included) and keeps all its state in struct http__parser, so the
 * connection feeds it whatever the socket delivered and gets HS_EAGAIN when
 * the bytes run out.  The request line and headers are copied once into
 * p->head (bounded by max_header_bytes: 431 beyond); body bytes are handed
 * back as spans of the caller's input and never copied here.
 *
 * Strictness (each rejection is a 400 unless noted, with the byte offset):
 * tokens per RFC 9110, no whitespace before a header colon, no obsolete line
 * folding, no control bytes in values, CRLF or bare LF line ends, versions
 * HTTP/1.0 and HTTP/1.x (other majors: 505), Content-Length digits only and
 * consistent, Transfer-Encoding only "chunked" (else 501) and never together
 * with Content-Length, chunk sizes of at most 16 hex digits, chunk lines of
 * at most HTTP__MAX_CHUNK_LINE bytes, Expect only "100-continue" (else 417).
 * Bodies beyond max_body_bytes are 413, detected from Content-Length before
 * any body byte is read.  A missing Host header is not an error.
 */
#include "http/internal.h"

#include <string.h>
#include <strings.h>

enum {
    ST_START = 0,      /* before the method; leading empty lines skipped */
    ST_METHOD,         /* method token */
    ST_TARGET,         /* request target */
    ST_VERSION,        /* "HTTP/1.1" up to the line end */
    ST_RL_LF,          /* LF after the request line's CR */
    ST_HDR_START,      /* start of a header line, or the empty line */
    ST_HDR_NAME,       /* header name up to ':' */
    ST_HDR_OWS,        /* blanks before the value */
    ST_HDR_VALUE,      /* value up to the line end */
    ST_HDR_LF,         /* LF after a header line's CR */
    ST_HDRS_LF,        /* LF of the empty line ending the headers */
    ST_BODY_CL,        /* Content-Length body */
    ST_BODY_END,       /* body complete: next feed reports DONE */
    ST_CHUNK_SIZE,     /* hex chunk size */
    ST_CHUNK_EXT,      /* chunk extensions (skipped) up to the line end */
    ST_CHUNK_SIZE_LF,  /* LF after the chunk-size line's CR */
    ST_CHUNK_DATA,     /* chunk payload */
    ST_CHUNK_DATA_CR,  /* CR after the payload */
    ST_CHUNK_DATA_LF,  /* LF after the payload */
    ST_TRAILER_START,  /* start of a trailer line, or the final empty line */
    ST_TRAILER_LINE,   /* trailer field (skipped) */
    ST_TRAILER_LF,     /* LF after a trailer line's CR */
    ST_TRAILER_END_LF, /* LF of the final empty line */
    ST_DONE,           /* request complete */
    ST_ERROR           /* an error was reported */
};

static bool is_tchar(unsigned char ch)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch != 0 && strchr(extra, ch) != NULL;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

void http__parser_init(struct http__parser *p, size_t max_header_bytes, uint64_t max_body_bytes)
{
    memset(p, 0, sizeof(*p));
    p->max_header_bytes = max_header_bytes;
    p->max_body_bytes = max_body_bytes;
    hs_buf_init(&p->head, max_header_bytes + 1);
}

void http__parser_cleanup(struct http__parser *p)
{
    hs_buf_cleanup(&p->head);
    hs_free(p->hdrs);
    p->hdrs = NULL;
    p->caphdrs = 0;
}

void http__parser_reset(struct http__parser *p)
{
    hs_buf_reset(&p->head);
    p->state = ST_START;
    p->method_len = p->target_off = p->target_len = p->version_off = 0;
    p->version_minor = 0;
    p->nhdrs = 0;
    p->tok_off = p->val_end = 0;
    p->is_chunked = p->has_length = p->keep_alive = p->expect_continue = false;
    p->content_length = p->remaining = p->body_bytes = 0;
    p->line_len = p->trailer_bytes = 0;
    p->chunk_digits = 0;
    p->wire_bytes = 0;
    p->error_status = 0;
}

static int fail(struct http__parser *p, int status, int code, size_t pos, struct hs_err *err,
                const char *msg)
{
    p->state = ST_ERROR;
    p->error_status = status;
    return hs_err_setpos(err, code, pos, "%s at byte %zu", msg, pos);
}

const char *http__parser_hdr_name(const struct http__parser *p, size_t i)
{
    return p->head.p + p->hdrs[i].name_off;
}

const char *http__parser_hdr_value(const struct http__parser *p, size_t i)
{
    return p->head.p + p->hdrs[i].value_off;
}

const char *http__parser_header(const struct http__parser *p, const char *name)
{
    for (size_t i = 0; i < p->nhdrs; i++) {
        if (strcasecmp(http__parser_hdr_name(p, i), name) == 0)
            return http__parser_hdr_value(p, i);
    }
    return NULL;
}

bool http__token_list_has(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    const char *s = list;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        const char *b = s;
        while (*s != '\0' && *s != ',')
            s++;
        const char *e = s;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - b) == tl && strncasecmp(b, tok, tl) == 0)
            return true;
    }
    return false;
}

static int add_header(struct http__parser *p, size_t pos, struct hs_err *err)
{
    if (p->nhdrs == HTTP__MAX_HEADERS)
        return fail(p, 431, HS_ETOOBIG, pos, err, "too many header fields");
    if (p->nhdrs == p->caphdrs) {
        size_t ncap = p->caphdrs ? p->caphdrs * 2 : 16;
        struct http__hdr *n = hs_reallocarray(p->hdrs, ncap, sizeof(*n));
        if (n == NULL)
            return fail(p, 500, HS_ENOMEM, pos, err, "out of memory");
        p->hdrs = n;
        p->caphdrs = ncap;
    }
    struct http__hdr *h = &p->hdrs[p->nhdrs++];
    h->name_off = (uint32_t)p->tok_off;
    h->name_len = (uint32_t)p->name_len;
    h->value_off = (uint32_t)p->value_off;
    h->value_len = (uint32_t)(p->val_end - p->value_off);
    return HS_OK;
}

/* Checks the version text "HTTP/D.D" ('n' bytes at 'v'). */
static int check_version(struct http__parser *p, const char *v, size_t n, size_t pos,
                         struct hs_err *err)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return fail(p, 400, HS_EPARSE, pos, err, "malformed HTTP version in request line");
    if (v[5] != '1')
        return fail(p, 505, HS_EPARSE, pos, err, "unsupported HTTP version");
    p->version_minor = v[7] == '0' ? 0 : 1;
    return HS_OK;
}

/* Interprets the framing headers once they are all in. */
static int finish_headers(struct http__parser *p, size_t pos, struct hs_err *err)
{
    char *h = p->head.p;
    if (p->target_len == 0 || (h[p->target_off] != '/' && h[p->target_off] != '*' &&
                               strncasecmp(h + p->target_off, "http", 4) != 0))
        return fail(p, 400, HS_EPARSE, pos, err, "malformed request target");
    h[p->method_len] = '\0';
    h[p->target_off + p->target_len] = '\0';
    for (size_t i = 0; i < p->nhdrs; i++) {
        h[p->hdrs[i].name_off + p->hdrs[i].name_len] = '\0';
        h[p->hdrs[i].value_off + p->hdrs[i].value_len] = '\0';
    }
    const char *te = NULL;
    for (size_t i = 0; i < p->nhdrs; i++) {
        const char *name = http__parser_hdr_name(p, i);
        const char *val = http__parser_hdr_value(p, i);
        if (strcasecmp(name, "content-length") == 0) {
            uint64_t n;
            if (val[0] < '0' || val[0] > '9' || hs_parse_u64(val, &n) != HS_OK)
                return fail(p, 400, HS_EPARSE, pos, err, "invalid Content-Length");
            if (p->has_length && n != p->content_length)
                return fail(p, 400, HS_EPARSE, pos, err, "conflicting Content-Length headers");
            p->has_length = true;
            p->content_length = n;
        } else if (strcasecmp(name, "transfer-encoding") == 0) {
            if (te != NULL)
                return fail(p, 501, HS_EPARSE, pos, err, "repeated Transfer-Encoding");
            te = val;
        }
    }
    if (te != NULL) {
        if (strcasecmp(te, "chunked") != 0)
            return fail(p, 501, HS_EPARSE, pos, err, "unsupported Transfer-Encoding");
        if (p->has_length)
            return fail(p, 400, HS_EPARSE, pos, err,
                        "both Transfer-Encoding and Content-Length present");
        p->is_chunked = true;
    }
    if (p->has_length && p->content_length > p->max_body_bytes)
        return fail(p, 413, HS_ETOOBIG, pos, err, "request body over the size limit");
    const char *conn = http__parser_header(p, "connection");
    if (p->version_minor >= 1)
        p->keep_alive = conn == NULL || !http__token_list_has(conn, "close");
    else
        p->keep_alive = conn != NULL && http__token_list_has(conn, "keep-alive");
    const char *expect = http__parser_header(p, "expect");
    if (expect != NULL && p->version_minor >= 1) {
        if (strcasecmp(expect, "100-continue") != 0)
            return fail(p, 417, HS_EPARSE, pos, err, "unsupported expectation");
        p->expect_continue = true;
    }
    p->line_len = 0;
    if (p->is_chunked) {
        p->state = ST_CHUNK_SIZE;
    } else if (p->has_length && p->content_length > 0) {
        p->remaining = p->content_length;
        p->state = ST_BODY_CL;
    } else {
        p->state = ST_BODY_END;
    }
    return HS_OK;
}

/* One byte of the request line or headers; 'pos' is its offset in head and
 * 'at' returns the byte at a head offset (stored or about to be). */
static int head_byte(struct http__parser *p, unsigned char ch, size_t pos,
                     const unsigned char *data, size_t base, struct hs_err *err)
{
    switch (p->state) {
    case ST_START:
        if (!is_tchar(ch))
            return fail(p, 400, HS_EPARSE, pos, err, "invalid character in method");
        p->state = ST_METHOD;
        return HS_EAGAIN;
    case ST_METHOD:
        if (ch == ' ') {
            p->method_len = pos;
            p->target_off = pos + 1;
            p->state = ST_TARGET;
        } else if (!is_tchar(ch)) {
            return fail(p, 400, HS_EPARSE, pos, err, "invalid character in method");
        }
        return HS_EAGAIN;
    case ST_TARGET:
        if (ch == ' ') {
            p->target_len = pos - p->target_off;
            if (p->target_len == 0)
                return fail(p, 400, HS_EPARSE, pos, err, "empty request target");
            p->version_off = pos + 1;
            p->state = ST_VERSION;
        } else if (ch <= 0x20 || ch >= 0x7f) {
            return fail(p, 400, HS_EPARSE, pos, err, "invalid character in request target");
        }
        return HS_EAGAIN;
    case ST_VERSION:
        if (ch == '\r' || ch == '\n') {
            size_t vlen = pos - p->version_off;
            char v[8] = {0};
            for (size_t k = 0; k < vlen && k < 8; k++) {
                size_t off = p->version_off + k; /* may straddle stored and new bytes */
                v[k] = off < p->head.len ? p->head.p[off] : (char)data[off - base];
            }
            int rc = check_version(p, v, vlen, pos, err);
            if (rc != HS_OK)
                return rc;
            p->state = ch == '\r' ? ST_RL_LF : ST_HDR_START;
        } else if (pos - p->version_off >= 8) {
            return fail(p, 400, HS_EPARSE, pos, err, "malformed HTTP version in request line");
        }
        return HS_EAGAIN;
    case ST_RL_LF:
    case ST_HDR_LF:
        if (ch != '\n')
            return fail(p, 400, HS_EPARSE, pos, err, "expected LF after CR");
        p->state = ST_HDR_START;
        return HS_EAGAIN;
    case ST_HDR_START:
        if (ch == '\r') {
            p->state = ST_HDRS_LF;
            return HS_EAGAIN;
        }
        if (ch == '\n')
            return HTTP__EV_HEADERS;
        if (ch == ' ' || ch == '\t')
            return fail(p, 400, HS_EPARSE, pos, err, "obsolete header line folding");
        if (!is_tchar(ch))
            return fail(p, 400, HS_EPARSE, pos, err, "invalid character in header name");
        p->tok_off = pos;
        p->state = ST_HDR_NAME;
        return HS_EAGAIN;
    case ST_HDR_NAME:
        if (ch == ':') {
            p->name_len = pos - p->tok_off;
            p->value_off = p->val_end = pos + 1;
            p->state = ST_HDR_OWS;
        } else if (!is_tchar(ch)) {
            return fail(p, 400, HS_EPARSE, pos, err, "invalid character in header name");
        }
        return HS_EAGAIN;
    case ST_HDR_OWS:
    case ST_HDR_VALUE:
        if (ch == '\r' || ch == '\n') {
            if (p->state == ST_HDR_OWS)
                p->value_off = p->val_end = pos;
            int rc = add_header(p, pos, err);
            if (rc != HS_OK)
                return rc;
            p->state = ch == '\r' ? ST_HDR_LF : ST_HDR_START;
        } else if (ch == ' ' || ch == '\t') {
            /* blanks: leading ones skipped, trailing ones trimmed by val_end */
        } else if (ch < 0x20 || ch == 0x7f) {
            return fail(p, 400, HS_EPARSE, pos, err, "control character in header value");
        } else {
            if (p->state == ST_HDR_OWS) {
                p->value_off = pos;
                p->state = ST_HDR_VALUE;
            }
            p->val_end = pos + 1;
        }
        return HS_EAGAIN;
    case ST_HDRS_LF:
        if (ch != '\n')
            return fail(p, 400, HS_EPARSE, pos, err, "expected LF after CR");
        return HTTP__EV_HEADERS;
    default:
        return fail(p, 500, HS_EINVAL, pos, err, "parser in a bad state");
    }
}

/*
 * Scans request-line and header bytes; the scanned range is appended to
 * p->head.  Returns HS_EAGAIN (all consumed), HTTP__EV_HEADERS or an error;
 * *ip is the number of bytes of 'data' consumed.
 */
static int scan_head(struct http__parser *p, const unsigned char *data, size_t len, size_t *ip,
                     struct hs_err *err)
{
    size_t i = 0;
    while (i < len && p->state == ST_START && p->head.len == 0 &&
           (data[i] == '\r' || data[i] == '\n')) {
        if (++p->line_len > 8)
            return fail(p, 400, HS_EPARSE, p->wire_bytes + i, err,
                        "too many empty lines before the request line");
        i++;
    }
    size_t skipped = i;
    size_t base = p->head.len - skipped; /* data[k] lands at head offset base + k */
    size_t room = p->max_header_bytes > p->head.len ? p->max_header_bytes - p->head.len : 0;
    size_t end = len - skipped > room ? skipped + room : len;
    int rc = HS_EAGAIN;
    while (i < end) {
        rc = head_byte(p, data[i], base + i, data, base, err);
        if (rc != HS_EAGAIN)
            break;
        i++;
    }
    if (rc < 0 && rc != HS_EAGAIN)
        return rc;
    if (rc == HTTP__EV_HEADERS)
        i++; /* the final LF */
    if (rc == HS_EAGAIN && i < len)
        return fail(p, 431, HS_ETOOBIG, base + i, err, "request header fields too large");
    if (hs_buf_append(&p->head, data + skipped, i - skipped) != HS_OK)
        return fail(p, 500, HS_ENOMEM, base + i, err, "out of memory");
    *ip = i;
    if (rc == HTTP__EV_HEADERS) {
        rc = finish_headers(p, base + i, err);
        if (rc != HS_OK)
            return rc;
        return HTTP__EV_HEADERS;
    }
    return HS_EAGAIN;
}

/* Hands out up to p->remaining body bytes. */
static size_t take_body(struct http__parser *p, const char *data, size_t len, const char **body,
                        size_t *body_len)
{
    size_t n = p->remaining < len ? (size_t)p->remaining : len;
    *body = data;
    *body_len = n;
    p->remaining -= n;
    p->body_bytes += n;
    return n;
}

/* One byte of chunk framing or trailers.  Returns HS_EAGAIN to go on,
 * HTTP__EV_DONE, or an error. */
static int frame_byte(struct http__parser *p, unsigned char ch, size_t pos, struct hs_err *err)
{
    switch (p->state) {
    case ST_CHUNK_SIZE: {
        int d = hexval(ch);
        if (d >= 0) {
            if (++p->chunk_digits > 16)
                return fail(p, 400, HS_EPARSE, pos, err, "chunk size too long");
            p->remaining = p->remaining * 16 + (uint64_t)d;
            return HS_EAGAIN;
        }
        if (p->chunk_digits == 0)
            return fail(p, 400, HS_EPARSE, pos, err, "invalid chunk size");
        if (ch == ';' || ch == ' ' || ch == '\t') {
            p->state = ST_CHUNK_EXT;
            return HS_EAGAIN;
        }
        if (ch == '\r') {
            p->state = ST_CHUNK_SIZE_LF;
            return HS_EAGAIN;
        }
        if (ch == '\n')
            break; /* size line complete, below */
        return fail(p, 400, HS_EPARSE, pos, err, "invalid chunk size");
    }
    case ST_CHUNK_EXT:
        if (++p->line_len > HTTP__MAX_CHUNK_LINE)
            return fail(p, 400, HS_EPARSE, pos, err, "chunk extension too long");
        if (ch == '\r') {
            p->state = ST_CHUNK_SIZE_LF;
            return HS_EAGAIN;
        }
        if (ch == '\n')
            break;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(p, 400, HS_EPARSE, pos, err, "control character in chunk extension");
        return HS_EAGAIN;
    case ST_CHUNK_SIZE_LF:
        if (ch != '\n')
            return fail(p, 400, HS_EPARSE, pos, err, "expected LF after chunk size");
        break;
    case ST_CHUNK_DATA_CR:
        if (ch == '\r') {
            p->state = ST_CHUNK_DATA_LF;
            return HS_EAGAIN;
        }
        if (ch != '\n')
            return fail(p, 400, HS_EPARSE, pos, err, "expected CRLF after chunk data");
        /* fall through */
    case ST_CHUNK_DATA_LF:
        if (ch != '\n')
            return fail(p, 400, HS_EPARSE, pos, err, "expected LF after chunk data");
        p->state = ST_CHUNK_SIZE;
        p->chunk_digits = 0;
        p->line_len = 0;
        p->remaining = 0;
        return HS_EAGAIN;
    case ST_TRAILER_START:
    case ST_TRAILER_LINE:
        if (++p->trailer_bytes > p->max_header_bytes)
            return fail(p, 431, HS_ETOOBIG, pos, err, "trailer fields too large");
        if (ch == '\r') {
            p->state = p->state == ST_TRAILER_START ? ST_TRAILER_END_LF : ST_TRAILER_LF;
            return HS_EAGAIN;
        }
        if (ch == '\n') {
            if (p->state == ST_TRAILER_START)
                return HTTP__EV_DONE;
            p->state = ST_TRAILER_START;
            return HS_EAGAIN;
        }
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(p, 400, HS_EPARSE, pos, err, "control character in trailer");
        p->state = ST_TRAILER_LINE;
        return HS_EAGAIN;
    case ST_TRAILER_LF:
    case ST_TRAILER_END_LF:
        if (ch != '\n')
            return fail(p, 400, HS_EPARSE, pos, err, "expected LF after CR in trailer");
        if (p->state == ST_TRAILER_END_LF)
            return HTTP__EV_DONE;
        p->state = ST_TRAILER_START;
        return HS_EAGAIN;
    default:
        return fail(p, 500, HS_EINVAL, pos, err, "parser in a bad state");
    }
    /* A chunk-size line is complete. */
    if (p->remaining == 0) {
        p->state = ST_TRAILER_START;
        return HS_EAGAIN;
    }
    if (p->remaining > p->max_body_bytes - p->body_bytes)
        return fail(p, 413, HS_ETOOBIG, pos, err, "request body over the size limit");
    p->state = ST_CHUNK_DATA;
    return HS_EAGAIN;
}

int http__parser_feed(struct http__parser *p, const char *data, size_t len, size_t *used,
                      const char **body, size_t *body_len, struct hs_err *err)
{
    const unsigned char *u = (const unsigned char *)data;
    size_t i = 0;
    int rc = HS_EAGAIN;
    *used = 0;
    *body = NULL;
    *body_len = 0;
    if (p->state <= ST_HDRS_LF) {
        rc = scan_head(p, u, len, &i, err);
        goto out;
    }
    while (rc == HS_EAGAIN) {
        switch (p->state) {
        case ST_BODY_CL:
            if (i == len)
                goto out;
            i += take_body(p, data + i, len - i, body, body_len);
            if (p->remaining == 0)
                p->state = ST_BODY_END;
            rc = HTTP__EV_BODY;
            break;
        case ST_CHUNK_DATA:
            if (i == len)
                goto out;
            i += take_body(p, data + i, len - i, body, body_len);
            if (p->remaining == 0)
                p->state = ST_CHUNK_DATA_CR;
            rc = HTTP__EV_BODY;
            break;
        case ST_BODY_END:
            p->state = ST_DONE;
            rc = HTTP__EV_DONE;
            break;
        case ST_DONE:
            rc = HTTP__EV_DONE;
            break;
        case ST_ERROR:
            rc = hs_err_set(err, HS_EINVAL, "parser fed after an error");
            break;
        default:
            if (i == len)
                goto out;
            rc = frame_byte(p, u[i], (size_t)p->wire_bytes + i, err);
            if (rc >= 0 || rc == HS_EAGAIN)
                i++;
            if (rc == HTTP__EV_DONE)
                p->state = ST_DONE;
            break;
        }
    }
out:
    if (rc >= 0 || rc == HS_EAGAIN) {
        *used = i;
        p->wire_bytes += i;
    }
    return rc;
}
