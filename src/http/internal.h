/*
 * internal.h - shared by the http module's own files: the incremental request
 * parser, the connection and request structs, and the server.
 *
 * Threading: loop thread only (as http.h).
 */
#ifndef HS_HTTP_INTERNAL_H
#define HS_HTTP_INTERNAL_H

#include "http/http.h"

#include <event2/event.h>

/* ---- request parser ------------------------------------------------------- */

/* Results of http__parser_feed besides HS_EAGAIN and errors. */
enum http__event {
    HTTP__EV_HEADERS = 1, /* request line and headers complete; fields below are set */
    HTTP__EV_BODY = 2,    /* body bytes in *data, *data_len (borrowed from the input) */
    HTTP__EV_DONE = 3     /* the whole request has been read */
};

#define HTTP__MAX_HEADERS    128  /* header lines per request; more is 431 */
#define HTTP__MAX_CHUNK_LINE 1024 /* chunk-size line with extensions */

struct http__hdr {
    uint32_t name_off; /* offsets into parser.head */
    uint32_t name_len;
    uint32_t value_off;
    uint32_t value_len;
};

/*
 * The parser keeps every byte of the request line and headers in 'head'
 * (bounded by max_header_bytes) and records offsets; at HEADERS it writes a
 * NUL after the method, the target, every name and every value, so the
 * strings can be used in place.  Body bytes are never copied by the parser.
 *
 * States (enum in parser.c):
 *   START -> METHOD -> TARGET -> VERSION -> RL_LF
 *         -> HDR_START -> (HDR_NAME -> HDR_OWS -> HDR_VALUE -> HDR_LF -> HDR_START)*
 *         -> HDRS_LF -> [BODY_CL | CHUNK_SIZE -> CHUNK_EXT -> CHUNK_SIZE_LF
 *                       -> CHUNK_DATA -> CHUNK_DATA_CR -> CHUNK_DATA_LF -> CHUNK_SIZE ...
 *                       -> TRAILER_START -> TRAILER_LINE ...] -> DONE
 */
struct http__parser {
    int state;               /* enum in parser.c */
    size_t max_header_bytes; /* request line + headers (+ trailers) ceiling */
    uint64_t max_body_bytes; /* decoded body ceiling */
    struct hs_buf head;      /* request line and header bytes */
    size_t method_len;       /* method at head.p[0] */
    size_t target_off, target_len;
    size_t version_off;     /* "HTTP/x.y" start */
    int version_minor;      /* 0 or 1 */
    struct http__hdr *hdrs; /* hs_malloc'ed, grown up to HTTP__MAX_HEADERS */
    size_t nhdrs, caphdrs;
    size_t tok_off;   /* start of the header name being read (offset in head) */
    size_t name_len;  /* its length */
    size_t value_off; /* start of its value */
    size_t val_end;   /* offset one past the last non-blank byte of the value */
    /* framing, valid from HEADERS on */
    bool is_chunked;
    bool has_length;
    bool keep_alive;
    bool expect_continue;
    uint64_t content_length;
    uint64_t remaining;   /* bytes left in the body (CL) or the current chunk */
    uint64_t body_bytes;  /* decoded body bytes seen */
    size_t line_len;      /* bytes of the current chunk line or trailer */
    size_t trailer_bytes; /* trailer bytes seen */
    int chunk_digits;     /* hex digits read in the chunk size */
    uint64_t wire_bytes;  /* bytes consumed for this request */
    int error_status;     /* after an error: the status to answer (400, 413, 431, 505) */
};

void http__parser_init(struct http__parser *p, size_t max_header_bytes, uint64_t max_body_bytes);
void http__parser_cleanup(struct http__parser *p);
/* Prepares for the next request; memory is kept. */
void http__parser_reset(struct http__parser *p);
/*
 * Feeds up to 'len' bytes.  Sets *used to the bytes consumed and returns one
 * of enum http__event, HS_EAGAIN when all 'len' bytes were consumed and more
 * are needed, or an error (HS_EPARSE, HS_ETOOBIG, HS_ENOMEM) with err->pos
 * the offset in this request and p->error_status the status to answer.
 * After an error or DONE the parser must be reset before it is fed again.
 */
HS_MUST_CHECK int http__parser_feed(struct http__parser *p, const char *data, size_t len,
                                    size_t *used, const char **body, size_t *body_len,
                                    struct hs_err *err);
/* Name/value of header i as NUL-terminated strings (after HEADERS). */
const char *http__parser_hdr_name(const struct http__parser *p, size_t i);
const char *http__parser_hdr_value(const struct http__parser *p, size_t i);
/* Case-insensitive lookup; NULL when absent. */
const char *http__parser_header(const struct http__parser *p, const char *name);
/* True when the comma-separated list 'list' holds token 'tok' (case-insensitive). */
bool http__token_list_has(const char *list, const char *tok);

/* ---- server, connections, requests ------------------------------------------ */

struct http__conn;

struct http__route {
    char *method; /* NULL = any */
    char *path;   /* without the trailing "*" for prefixes */
    size_t path_len;
    bool is_prefix;
    char *name;
    http_handler_fn *fn;
    void *arg;
};

struct http__param {
    const char *name;
    const char *value;
};

struct http__resp_hdr {
    struct http__resp_hdr *next;
    const char *name;
    const char *value;
};

/* Where a request stands. */
enum http__req_phase {
    HTTP__REQ_NONE = 0,  /* no request dispatched */
    HTTP__REQ_HELD,      /* held by the handler, nothing sent */
    HTTP__REQ_STREAMING, /* stream started, not ended */
    HTTP__REQ_FINISHED   /* finished by the handler */
};

struct http_request {
    struct http__conn *conn; /* owner; the request is embedded in it */
    const char *method;      /* in parser.head */
    const char *path;        /* arena copy */
    const char *query;       /* arena copy, "" when none */
    const char *id;          /* arena or static buffer below */
    char id_buf[24];
    const struct http__route *route;
    const char *handler_name; /* route name or "other" */
    const char *body;         /* conn->body.p or "" */
    size_t body_len;
    int phase;    /* enum http__req_phase */
    int status;   /* status sent, 0 before */
    bool is_head; /* HEAD: headers only */
    bool params_done;
    bool drain_armed; /* a write left more than low water pending */
    bool close_fired;
    bool is_observed;           /* the observer has been called for it */
    struct http__param *params; /* arena */
    size_t nparams;
    struct http__resp_hdr *resp_hdrs; /* arena, newest first */
    bool has_content_encoding;
    int64_t start_ns;    /* first byte of the request */
    uint64_t req_bytes;  /* wire bytes of the request */
    uint64_t resp_bytes; /* wire bytes queued for the response */
    http_request_cb *on_drain;
    void *on_drain_arg;
    http_request_cb *on_close;
    void *on_close_arg;
};

/* Connection states. */
enum http__conn_state {
    HTTP__C_IDLE = 0, /* waiting for the first byte of a request */
    HTTP__C_HEAD,     /* reading request line and headers */
    HTTP__C_BODY,     /* reading the body */
    HTTP__C_HANDLING, /* request with the handler; input not parsed */
    HTTP__C_CLOSING,  /* last answer queued; close once it is written */
    HTTP__C_LINGER,   /* error answered and write side shut: discard input, then close */
    HTTP__C_DEAD      /* socket closed, request still held by its handler */
};

struct http__conn {
    struct http_server *srv;
    struct http__conn *prev, *next; /* in srv->conns (or srv->free_conns: next only) */
    struct bufferevent *bev;        /* NULL once closed */
    struct event *timer;            /* header / read / idle / linger deadline */
    struct event *resume;           /* resumes parsing pipelined input */
    int state;                      /* enum http__conn_state */
    bool is_rejected;               /* over max_connections: answered 503 */
    bool in_process;                /* inside conn_process or a request callback: no
                                       re-entry, no free, output flushed on the way out */
    bool flush_pending;             /* output queued while in_process */
    bool write_enabled;             /* libevent owns writing (the socket was full) */
    bool write_failed;              /* a direct write failed: close from the resume event */
    bool keep_alive;                /* current request allows another one */
    bool needs_linger;              /* error answer: shut the write side, drain, close */
    uint64_t nrequests;             /* requests started on this connection */
    uint64_t linger_bytes;          /* discarded while lingering */
    struct http__parser parser;
    struct hs_arena arena;   /* per request */
    struct hs_buf body;      /* decoded request body */
    struct http_request req; /* the current request */
    char remote[64];
};

struct http__listener {
    struct evconnlistener *l;
    int port;
};

struct http_server {
    struct event_base *base;
    struct http_server_config cfg;
    char *listen; /* copy of cfg.listen */
    struct http__listener *listeners;
    size_t nlisteners;
    struct http__route *routes;
    size_t nroutes;
    http_observer_fn *observer;
    void *observer_arg;
    http_error_formatter_fn *err_fmt;
    void *err_fmt_arg;
    struct http__conn *conns;      /* open and dead-but-held connections */
    struct http__conn *free_conns; /* reusable */
    size_t nfree;
    size_t nlinger_rejected; /* rejected connections being answered */
    struct http_server_stats stats;
    uint64_t id_seq; /* request id counter */
    uint64_t id_seed;
    bool is_shutting_down;
    struct event *shutdown_timer; /* deadline */
    struct event *done_ev;        /* fires done_cb */
    http_done_fn *done_cb;
    void *done_arg;
    bool done_fired;
    time_t date_sec; /* cached Date header */
    char date[40];
};

#define HTTP__OUT_HIGH      (1u << 20) /* pending output that pauses pipelined parsing */
#define HTTP__LINGER_MS     2000       /* discard input this long after an error answer */
#define HTTP__LINGER_MAX    (1u << 20)
#define HTTP__MAX_REJECTING 64 /* rejected connections being answered 503 at once */

/* server.c: called by response.c when a request has been finished. */
void http__conn_request_finished(struct http__conn *c);
/* server.c: after an error answer: close once it is written (lingering). */
void http__conn_closing(struct http__conn *c);
/* server.c: closes the connection now (request callbacks as documented). */
void http__conn_close(struct http__conn *c);
/* server.c: hands queued output to the socket now (or when the current
 * callback returns); what the socket does not take is left to libevent. */
void http__conn_flush(struct http__conn *c);
/* server.c: the current Date header value. */
const char *http__server_date(struct http_server *s);
/* response.c: answers a protocol error (or the 503 of a rejected
 * connection) and leaves the connection closing. */
void http__respond_protocol_error(struct http__conn *c, int status, const char *msg);
/* server.c: reports a finished request to the observer and the counters. */
void http__request_observe(struct http__conn *c);
/* request.c: the methods of the routes matching the request's path,
 * comma-separated, for a 405's Allow header ("" when the path is unknown). */
HS_MUST_CHECK int http__request_allow(struct http__conn *c, struct hs_buf *out);
/* request.c: request setup after the parser's DONE. */
HS_MUST_CHECK int http__request_prepare(struct http__conn *c, struct hs_err *err);

/* ---- client: response parser (client_parse.c) ------------------------------- */

/*
 * Resumable HTTP/1.x response parser.  Lines of the head (status line,
 * headers) and of chunked framing are collected in 'head' / 'line' (bounded),
 * body bytes are never copied.  Interim 1xx responses are skipped inside
 * the parser.  Events are those of enum http__event.
 *
 * States (enum in client_parse.c):
 *   STATUS -> HEADER* -> [CL | CHUNK_SIZE -> CHUNK_DATA -> CHUNK_CRLF ... -> TRAILER* | EOF] ->
 * DONE
 */
#define HTTP__RESP_MAX_HEADERS 256
#define HTTP__RESP_MAX_INTERIM 16 /* 1xx responses before the final one */

struct http__rparser {
    int state;               /* enum in client_parse.c */
    size_t max_header_bytes; /* status line + headers; trailers have their own budget */
    bool is_head;            /* the request was HEAD: no body whatever the headers say */
    struct hs_buf head;      /* status line and header bytes, one line after the other */
    struct hs_buf line;      /* current chunk-size or trailer line */
    struct http__hdr *hdrs;  /* offsets into head */
    size_t nhdrs, caphdrs;
    size_t line_start; /* offset in head of the line being read */
    int status;        /* after HEADERS */
    int version_minor; /* 0 or 1 */
    int ninterim;      /* 1xx responses skipped */
    bool is_chunked;
    bool is_close_delimited;
    bool keep_alive;         /* the response lets the connection be reused */
    bool is_gzip;            /* Content-Encoding: gzip */
    uint64_t content_length; /* when framed by Content-Length */
    uint64_t remaining;      /* of the body (CL) or current chunk */
    uint64_t body_bytes;     /* framed body bytes seen */
    size_t trailer_bytes;
    uint64_t wire_bytes; /* bytes consumed for this response */
};

void http__rparser_init(struct http__rparser *p, size_t max_header_bytes);
void http__rparser_cleanup(struct http__rparser *p);
/* Prepares for the next response ('is_head': it answers a HEAD). */
void http__rparser_reset(struct http__rparser *p, bool is_head);
/*
 * Feeds up to 'len' bytes; as http__parser_feed: sets *used, returns
 * HTTP__EV_HEADERS / HTTP__EV_BODY (*body, *body_len borrowed from 'data') /
 * HTTP__EV_DONE, HS_EAGAIN (all consumed, need more) or HS_EPARSE /
 * HS_ETOOBIG / HS_ENOMEM with err->pos the offset in the response.
 */
HS_MUST_CHECK int http__rparser_feed(struct http__rparser *p, const char *data, size_t len,
                                     size_t *used, const char **body, size_t *body_len,
                                     struct hs_err *err);
/* The peer closed: HTTP__EV_DONE when that ends a close-delimited body,
 * else HS_ECLOSED with a message saying where the response was cut. */
HS_MUST_CHECK int http__rparser_eof(struct http__rparser *p, struct hs_err *err);
/* After HEADERS: header i, and a case-insensitive lookup (NULL if absent). */
const char *http__rparser_hdr_name(const struct http__rparser *p, size_t i);
const char *http__rparser_hdr_value(const struct http__rparser *p, size_t i);
const char *http__rparser_header(const struct http__rparser *p, const char *name);

/* ---- client: TLS (tls.c) ------------------------------------------------------ */

struct ssl_ctx_st;
struct ssl_st;
/* Builds the client SSL_CTX from 'tls' (files loaded now).  NULL on error. */
struct ssl_ctx_st *http__tls_ctx_new(const struct http_client_tls *tls, struct hs_err *err);
void http__tls_ctx_free(struct ssl_ctx_st *ctx);
/* One SSL for a connection to 'host' with SNI and name checks set up
 * (unless 'insecure').  NULL on error. */
struct ssl_st *http__tls_ssl_new(struct ssl_ctx_st *ctx, const char *host, bool insecure,
                                 struct hs_err *err);
/* Describes why the handshake on 'ssl' failed (verification result or the
 * OpenSSL error queue, 'ossl_err' from bufferevent_get_openssl_error). */
void http__tls_describe_failure(struct ssl_st *ssl, unsigned long ossl_err, char *out,
                                size_t out_len);

/* ---- client: URLs and request bytes (client_url.c) ------------------------------ */

#define HTTP__URL_MAX 8192

struct http__url {
    bool is_tls;       /* https */
    bool is_ipv6;      /* host is an IPv6 literal (kept without brackets) */
    char *host;        /* lower-cased; hs_malloc'ed like the strings below */
    int port;          /* explicit or the scheme's default */
    char *target;      /* path and query, "/" at least */
    char *host_header; /* value of the Host header */
    char *origin;      /* "scheme://host:port": the pool key */
};

/* Parses an absolute http(s) URL; HS_EINVAL with a message on bad input. */
HS_MUST_CHECK int http__url_parse(const char *url, struct http__url *u, struct hs_err *err);
void http__url_cleanup(struct http__url *u);
/* Appends the request line, headers and body of 'req' to 'out'. */
HS_MUST_CHECK int http__request_serialize(const struct http_client_req *req,
                                          const struct http__url *u, struct hs_buf *out,
                                          struct hs_err *err);

#endif
