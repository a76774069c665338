/*
 * client_url.c - the client's URL parsing, request serialisation and the
 * Basic authorization helper.
 *
 * Only absolute http:// and https:// URLs are accepted.  The authority is a
 * host name, a dotted IPv4 address or a bracketed IPv6 address, with an
 * optional port; user info is refused (credentials belong in a header) and
 * so are spaces and control characters anywhere.  A fragment is dropped.
 */
#include "http/internal.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

void http__url_cleanup(struct http__url *u)
{
    hs_free(u->host);
    hs_free(u->host_header);
    hs_free(u->target);
    hs_free(u->origin);
    memset(u, 0, sizeof(*u));
}

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static int parse_port(const char *s, size_t n, int *port, struct hs_err *err)
{
    int v = 0;
    if (n == 0 || n > 5)
        return hs_err_set(err, HS_EINVAL, "URL has a bad port");
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return hs_err_set(err, HS_EINVAL, "URL has a bad port");
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return hs_err_set(err, HS_EINVAL, "URL port %d is out of range 1-65535", v);
    *port = v;
    return HS_OK;
}

/* Splits the authority [a, a+n) into host and port. */
static int parse_authority(const char *a, size_t n, struct http__url *u, struct hs_err *err)
{
    const char *host, *port = NULL;
    size_t hlen, plen = 0;
    if (memchr(a, '@', n) != NULL)
        return hs_err_set(err, HS_EINVAL,
                          "user info in a URL is not supported (use an Authorization header)");
    if (n > 0 && a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (rb == NULL)
            return hs_err_set(err, HS_EINVAL, "URL has an unclosed '[' in the host");
        host = a + 1;
        hlen = (size_t)(rb - host);
        const char *rest = rb + 1;
        size_t rn = n - (size_t)(rest - a);
        if (rn > 0 && rest[0] != ':')
            return hs_err_set(err, HS_EINVAL, "URL has text after the IPv6 address");
        if (rn > 0) {
            port = rest + 1;
            plen = rn - 1;
        }
        char tmp[64];
        unsigned char bin[16];
        if (hlen == 0 || hlen >= sizeof(tmp))
            return hs_err_set(err, HS_EINVAL, "URL has a bad IPv6 address");
        memcpy(tmp, host, hlen);
        tmp[hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, bin) != 1)
            return hs_err_set(err, HS_EINVAL, "URL has a bad IPv6 address \"%s\"", tmp);
        u->is_ipv6 = true;
    } else {
        const char *colon = memchr(a, ':', n);
        host = a;
        hlen = colon ? (size_t)(colon - a) : n;
        if (colon != NULL) {
            port = colon + 1;
            plen = n - hlen - 1;
        }
        for (size_t i = 0; i < hlen; i++) {
            if (!host_char_ok(host[i]))
                return hs_err_set(err, HS_EINVAL, "URL host has a bad character '%c'", host[i]);
        }
    }
    if (hlen == 0)
        return hs_err_set(err, HS_EINVAL, "URL has no host");
    if (hlen > 253)
        return hs_err_set(err, HS_EINVAL, "URL host is longer than 253 bytes");
    u->port = u->is_tls ? 443 : 80;
    if (port != NULL && parse_port(port, plen, &u->port, err) != HS_OK)
        return HS_EINVAL;
    u->host = hs_strndup(host, hlen);
    if (u->host == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (char *c = u->host; *c; c++) {
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    }
    return HS_OK;
}

static char *dup_printf(const char *fmt, ...) HS_PRINTF(1, 2);
static char *dup_printf(const char *fmt, ...)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    va_list ap;
    va_start(ap, fmt);
    int rc = hs_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc != HS_OK) {
        hs_buf_cleanup(&b);
        return NULL;
    }
    return hs_buf_detach(&b, NULL);
}

int http__url_parse(const char *url, struct http__url *u, struct hs_err *err)
{
    memset(u, 0, sizeof(*u));
    if (url == NULL)
        return hs_err_set(err, HS_EINVAL, "no URL");
    size_t len = strlen(url);
    if (len > HTTP__URL_MAX)
        return hs_err_set(err, HS_EINVAL, "URL is longer than %d bytes", HTTP__URL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return hs_err_setpos(err, HS_EINVAL, i,
                                 "URL has a space or control character at byte %zu", i);
    }
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        u->is_tls = true;
        rest = url + 8;
    } else {
        return hs_err_set(err, HS_EINVAL, "unsupported URL \"%.64s\": want http:// or https://",
                          url);
    }
    size_t alen = strcspn(rest, "/?#");
    int rc = parse_authority(rest, alen, u, err);
    if (rc != HS_OK) {
        http__url_cleanup(u);
        return rc;
    }
    const char *t = rest + alen;
    size_t tlen = strcspn(t, "#");
    bool is_default = u->port == (u->is_tls ? 443 : 80);
    const char *lb = u->is_ipv6 ? "[" : "", *rb = u->is_ipv6 ? "]" : "";
    u->target = dup_printf("%s%.*s", (tlen == 0 || t[0] == '?') ? "/" : "", (int)tlen, t);
    u->host_header = is_default ? dup_printf("%s%s%s", lb, u->host, rb)
                                : dup_printf("%s%s%s:%d", lb, u->host, rb, u->port);
    u->origin =
        dup_printf("%s://%s%s%s:%d", u->is_tls ? "https" : "http", lb, u->host, rb, u->port);
    if (u->target == NULL || u->host_header == NULL || u->origin == NULL) {
        http__url_cleanup(u);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    return HS_OK;
}

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("!#$%&'*+-.^_`|~", c) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

static bool has_header(const struct http_client_req *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0)
            return true;
    }
    return false;
}

int http__request_serialize(const struct http_client_req *req, const struct http__url *u,
                            struct hs_buf *out, struct hs_err *err)
{
    const char *method = req->method ? req->method : "GET";
    if (!is_token(method) || strlen(method) > 32)
        return hs_err_set(err, HS_EINVAL, "bad request method \"%.32s\"", method);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_client_header *h = &req->headers[i];
        if (h->name == NULL || h->value == NULL || !is_token(h->name))
            return hs_err_set(err, HS_EINVAL, "request header %zu has a bad name", i);
        if (strpbrk(h->value, "\r\n") != NULL)
            return hs_err_set(err, HS_EINVAL, "request header \"%s\" has CR or LF in its value",
                              h->name);
        if (strcasecmp(h->name, "Content-Length") == 0 ||
            strcasecmp(h->name, "Transfer-Encoding") == 0 || strcasecmp(h->name, "Connection") == 0)
            return hs_err_set(err, HS_EINVAL, "request header \"%s\" is set by the client",
                              h->name);
    }
    if (req->body_len > 0 && req->body == NULL)
        return hs_err_set(err, HS_EINVAL, "request body_len without a body");
    int rc = hs_buf_printf(out, "%s %s HTTP/1.1\r\n", method, u->target);
    if (rc == HS_OK && !has_header(req, "Host"))
        rc = hs_buf_printf(out, "Host: %s\r\n", u->host_header);
    if (rc == HS_OK && !has_header(req, "User-Agent"))
        rc = hs_buf_puts(out, "User-Agent: holoscope\r\n");
    if (rc == HS_OK && req->decompress_gzip && !has_header(req, "Accept-Encoding"))
        rc = hs_buf_puts(out, "Accept-Encoding: gzip\r\n");
    for (size_t i = 0; rc == HS_OK && i < req->nheaders; i++)
        rc = hs_buf_printf(out, "%s: %s\r\n", req->headers[i].name, req->headers[i].value);
    bool wants_length = req->body_len > 0 || strcmp(method, "POST") == 0 ||
                        strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    if (rc == HS_OK && wants_length)
        rc = hs_buf_printf(out, "Content-Length: %zu\r\n", req->body_len);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "\r\n");
    if (rc == HS_OK && req->body_len > 0)
        rc = hs_buf_append(out, req->body, req->body_len);
    if (rc != HS_OK)
        return hs_err_set(err, rc, "cannot build the request: %s", hs_strerror(rc));
    return HS_OK;
}

int http_client_basic_auth_header(const char *user, const char *pass, struct hs_buf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t ul = strlen(user), pl = strlen(pass), n = ul + 1 + pl;
    int rc = hs_buf_reserve(out, 6 + (n + 2) / 3 * 4 + 1);
    if (rc != HS_OK)
        return rc;
    rc = hs_buf_puts(out, "Basic ");
    unsigned char in[3];
    size_t k = 0;
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        in[k++] = (unsigned char)(i < ul ? user[i] : i == ul ? ':' : pass[i - ul - 1]);
        if (k < 3 && i + 1 < n)
            continue;
        char q[4];
        q[0] = tab[in[0] >> 2];
        q[1] = tab[((in[0] & 3) << 4) | (k > 1 ? in[1] >> 4 : 0)];
        q[2] = k > 1 ? tab[((in[1] & 15) << 2) | (k > 2 ? in[2] >> 6 : 0)] : '=';
        q[3] = k > 2 ? tab[in[2] & 63] : '=';
        rc = hs_buf_append(out, q, 4);
        k = 0;
    }
    return rc;
}
