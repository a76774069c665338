/*
 * request.c - the request as handlers see it: target splitting, routing,
 * request ids, header lookup and query/form parameter decoding.
 *
 * Strings point into the parser's header buffer (the target is split into
 * path and query in place) or the per-request arena, both kept until the
 * request is finished.  Parameters are decoded lazily on
 * the first http_request_param* call: the query string first, then an
 * application/x-www-form-urlencoded POST body, as the Prometheus API reads
 * them.
 */
#include "http/internal.h"

#include <string.h>
#include <strings.h>

static bool route_path_matches(const struct http__route *rt, const char *path)
{
    if (!rt->is_prefix)
        return strcmp(path, rt->path) == 0;
    return strncmp(path, rt->path, rt->path_len) == 0 &&
           (path[rt->path_len] == '\0' || path[rt->path_len] == '/');
}

static bool route_method_matches(const struct http__route *rt, const char *method)
{
    if (rt->method == NULL || strcmp(rt->method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
}

/* A client's X-Request-Id is kept when it is 1..64 bytes of [A-Za-z0-9._:-]. */
static bool id_is_sane(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' || ch == '-';
        if (!ok || n >= 64)
            return false;
    }
    return n > 0;
}

static void make_id(struct http_server *s, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t seq = ++s->id_seq;
    uint64_t h = hs_hash64(&seq, sizeof(seq), s->id_seed);
    for (int i = 0; i < 16; i++)
        out[i] = hex[(h >> (60 - 4 * i)) & 0xf];
    out[16] = '\0';
}

int http__request_prepare(struct http__conn *c, struct hs_err *err)
{
    struct http_server *s = c->srv;
    struct http_request *r = &c->req;
    struct http__parser *p = &c->parser;
    r->conn = c;
    r->method = p->head.p;
    /* The target is NUL-terminated in the header buffer: split it in place. */
    char *target = p->head.p + p->target_off;
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        char *slash = strchr(strstr(target, "//") + 2, '/');
        target = slash != NULL ? slash : NULL;
    }
    if (target == NULL) {
        r->path = "/";
        r->query = "";
    } else {
        char *q = strchr(target, '?');
        if (q != NULL)
            *q = '\0';
        r->path = target;
        r->query = q != NULL ? q + 1 : "";
    }
    r->is_head = strcmp(r->method, "HEAD") == 0;
    r->body = c->body.p != NULL ? c->body.p : "";
    r->body_len = c->body.len;
    const char *rid = http__parser_header(p, "x-request-id");
    if (rid != NULL && id_is_sane(rid)) {
        r->id = rid;
    } else {
        make_id(s, r->id_buf);
        r->id = r->id_buf;
    }
    r->handler_name = "other";
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct http__route *rt = &s->routes[i];
        if (route_path_matches(rt, r->path) && route_method_matches(rt, r->method)) {
            r->route = rt;
            r->handler_name = rt->name;
            break;
        }
    }
    return HS_OK;
}

int http__request_allow(struct http__conn *c, struct hs_buf *out)
{
    struct http_server *s = c->srv;
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct http__route *rt = &s->routes[i];
        if (rt->method == NULL || !route_path_matches(rt, c->req.path))
            continue;
        int rc = out->len > 0 ? hs_buf_puts(out, ", ") : HS_OK;
        if (rc == HS_OK)
            rc = hs_buf_puts(out, rt->method);
        if (rc == HS_OK && strcmp(rt->method, "GET") == 0)
            rc = hs_buf_puts(out, ", HEAD");
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

const char *http_request_method(const struct http_request *r)
{
    return r->method;
}

const char *http_request_path(const struct http_request *r)
{
    return r->path;
}

const char *http_request_query(const struct http_request *r)
{
    return r->query;
}

int http_request_version_minor(const struct http_request *r)
{
    return r->conn->parser.version_minor;
}

const char *http_request_handler_name(const struct http_request *r)
{
    return r->handler_name;
}

const char *http_request_header(const struct http_request *r, const char *name)
{
    return http__parser_header(&r->conn->parser, name);
}

size_t http_request_header_count(const struct http_request *r)
{
    return r->conn->parser.nhdrs;
}

void http_request_header_at(const struct http_request *r, size_t i, const char **name,
                            const char **value)
{
    const struct http__parser *p = &r->conn->parser;
    if (i >= p->nhdrs) {
        *name = NULL;
        *value = NULL;
        return;
    }
    *name = http__parser_hdr_name(p, i);
    *value = http__parser_hdr_value(p, i);
}

const char *http_request_body(const struct http_request *r, size_t *len)
{
    if (len != NULL)
        *len = r->body_len;
    return r->body;
}

const char *http_request_id(const struct http_request *r)
{
    return r->id;
}

const char *http_request_remote_addr(const struct http_request *r)
{
    return r->conn->remote;
}

struct hs_arena *http_request_arena(struct http_request *r)
{
    return &r->conn->arena;
}

bool http_request_is_closed(const struct http_request *r)
{
    return r->conn->bev == NULL;
}

/* ---- parameters ------------------------------------------------------------ */

static int hexdig(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' of s[0..n) into a fresh arena string.  A '%' not
 * followed by two hex digits is kept as it is. */
static char *url_decode(struct hs_arena *a, const char *s, size_t n)
{
    char *out = hs_arena_alloc(a, n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexdig(s[i + 1]) >= 0 && hexdig(s[i + 2]) >= 0) {
            out[o++] = (char)(hexdig(s[i + 1]) * 16 + hexdig(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Appends the pairs of one urlencoded string s[0..n). */
static int parse_pairs(struct http_request *r, const char *s, size_t n, size_t cap)
{
    struct hs_arena *a = &r->conn->arena;
    size_t i = 0;
    while (i < n) {
        size_t b = i;
        while (i < n && s[i] != '&')
            i++;
        size_t e = i++;
        if (e == b)
            continue;
        const char *eq = memchr(s + b, '=', e - b);
        size_t nl = eq != NULL ? (size_t)(eq - (s + b)) : e - b;
        if (r->nparams == cap)
            return HS_ETOOBIG; /* cannot happen: cap counts every '&' */
        struct http__param *pp = &r->params[r->nparams];
        pp->name = url_decode(a, s + b, nl);
        pp->value = eq != NULL ? url_decode(a, eq + 1, (size_t)(s + e - (eq + 1))) : "";
        if (pp->name == NULL || pp->value == NULL)
            return HS_ENOMEM;
        r->nparams++;
    }
    return HS_OK;
}

static size_t count_pairs(const char *s, size_t n)
{
    size_t k = 1;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '&';
    return k;
}

static bool body_is_form(const struct http_request *r)
{
    if (strcmp(r->method, "POST") != 0 || r->body_len == 0)
        return false;
    const char *ct = http_request_header(r, "content-type");
    if (ct == NULL)
        return false;
    size_t n = strlen("application/x-www-form-urlencoded");
    return strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int parse_params(struct http_request *r)
{
    if (r->params_done)
        return r->params != NULL ? HS_OK : HS_ENOMEM; /* cap >= 1: NULL only on failure */
    r->params_done = true;
    size_t ql = strlen(r->query);
    bool form = body_is_form(r);
    size_t cap = count_pairs(r->query, ql) + (form ? count_pairs(r->body, r->body_len) : 0);
    r->params = hs_arena_alloc(&r->conn->arena, cap * sizeof(*r->params));
    if (r->params == NULL)
        return HS_ENOMEM;
    int rc = parse_pairs(r, r->query, ql, cap);
    if (rc == HS_OK && form)
        rc = parse_pairs(r, r->body, r->body_len, cap);
    if (rc != HS_OK) {
        r->params = NULL;
        r->nparams = 0;
    }
    return rc;
}

const char *http_request_param(struct http_request *r, const char *name)
{
    if (parse_params(r) != HS_OK)
        return NULL;
    for (size_t i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    }
    return NULL;
}

size_t http_request_param_all(struct http_request *r, const char *name, const char **out,
                              size_t max)
{
    if (parse_params(r) != HS_OK)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, name) == 0) {
            if (n < max)
                out[n] = r->params[i].value;
            n++;
        }
    }
    return n;
}

size_t http_request_param_count(struct http_request *r)
{
    return parse_params(r) == HS_OK ? r->nparams : 0;
}

int http_request_param_at(struct http_request *r, size_t i, const char **name, const char **value)
{
    int rc = parse_params(r);
    if (rc != HS_OK)
        return rc;
    if (i >= r->nparams)
        return HS_ENOTFOUND;
    *name = r->params[i].name;
    *value = r->params[i].value;
    return HS_OK;
}
