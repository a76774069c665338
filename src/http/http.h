/*
 * http.h - the HTTP/1.1 server every holoscope endpoint sits on: the
 * Prometheus API, the dashboard, the gateway's OpenAI-compatible routes and
 * the remote-write receiver.
 *
 * The server runs on a libevent event_base the caller owns.  It parses
 * requests itself (an incremental state machine, see internal.h), routes them
 * by path and method to handlers, and answers with fixed-length responses
 * (gzip when the client allows it and the body is over 1 KiB) or streams
 * (chunked for HTTP/1.1, close-delimited for HTTP/1.0) whose every write is
 * handed to the socket at once, for SSE.  Keep-alive, pipelining, chunked
 * request bodies and Expect: 100-continue are handled; every limit comes from
 * struct http_server_config and is answered with a clear status code.
 *
 * The process must ignore SIGPIPE (libevent writes to sockets whose peer
 * may have gone; the server's own writes use MSG_NOSIGNAL).
 *
 * Threading: loop thread only.  Every function here, and every callback the
 * server makes, runs on the thread running the server's event_base; nothing
 * is locked.  http_server_config_defaults is the one exception (any thread).
 *
 * Request lifetime (the rule handlers must follow):
 *   - A handler receives a 'struct http_request *'.  The request is "held"
 *     by the handler from that moment until it is finished by exactly one of
 *       http_respond / http_respond_error           (fixed-length answer),
 *       http_stream_end                              (after http_stream_start),
 *       http_request_release                         (give up on it).
 *     After that call the pointer, and everything obtained from it (strings,
 *     the arena), must not be used again.
 *   - A handler may return without finishing: it then answers later
 *     (asynchronously, still on the loop thread, e.g. from a timer or an
 *     upstream bufferevent callback) with the same calls.  Pipelined
 *     requests behind it wait, so answers leave in order.  No timeout
 *     applies while a handler holds a request; the handler owns that.
 *   - If the client goes away while the request is held, the close callback
 *     set with http_stream_on_close fires once (on the loop thread, never
 *     from inside an http_* call the handler made); the request stays valid,
 *     writes return HS_ECLOSED, and the handler must still finish it with
 *     http_stream_end, http_respond or http_request_release.
 *   - http_server_free frees requests that are still held; their owners must
 *     not touch them afterwards.
 *   - A client that half-closes its side (EOF) while its request is held is
 *     treated as gone: the close callback fires.
 *
 * Output: answers and stream chunks are written to the socket as soon as
 * they are queued (when called from inside a handler or callback, as soon
 * as it returns, so pipelined answers share one write); whatever the socket
 * does not take waits in the connection's buffer and is written as the
 * client reads.  http_stream_pending tells how much waits.
 *
 * Connection limit: past max_connections a new connection is accepted,
 * answered 503 with "Connection: close" and closed (after the answer is
 * written and the client's bytes drained for at most 2 s).
 */
#ifndef HS_HTTP_H
#define HS_HTTP_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http_server;
struct http_request;

/* ---- configuration ------------------------------------------------------ */

struct http_server_config {
    const char *listen;            /* "HOST:PORT", "[::1]:0", "localhost:9090" (copied by
                                      http_server_new); port 0 picks a free port */
    int max_connections;           /* open connections; more get 503 and are closed */
    size_t max_header_bytes;       /* request line + headers; beyond: 431 */
    size_t max_body_bytes;         /* decoded request body; beyond: 413 */
    int64_t header_timeout_ms;     /* first byte (or accept) to end of headers; then 408 + close */
    int64_t read_timeout_ms;       /* longest gap between two reads of a body; then 408 + close */
    int64_t idle_timeout_ms;       /* keep-alive connection with no request; then closed silently */
    int64_t write_timeout_ms;      /* longest time without write progress; then closed */
    size_t stream_low_water_bytes; /* drain callback fires when pending output falls to this */
};

/* Fills the defaults: 1024 connections, 16 KiB headers, 16 MiB body, 10 s
 * header, 30 s read, 120 s idle, 60 s write timeouts, 64 KiB low water;
 * listen "127.0.0.1:9090".  Threading: any thread. */
void http_server_config_defaults(struct http_server_config *c);

/* ---- callbacks ------------------------------------------------------------ */

/* A route handler.  'r' is held by the handler until it finishes it (see the
 * lifetime rule at the top); 'arg' is the pointer given to http_server_route. */
typedef void http_handler_fn(struct http_request *r, void *arg);

/* Called once per completed request: answered, failed, or dropped by the
 * client.  'handler' is the route's handler name, or "other" for 404s, 405s
 * and protocol errors; 'method' is "" when the request line was not read;
 * 'status' is the status sent (499 when the client left before any answer);
 * 'duration_s' runs from the request's first byte to its last answer byte
 * being queued (or the client leaving); byte counts are wire bytes of this
 * request and of its response.  Strings
 * are borrowed for the call.  Connections refused with 503 at
 * max_connections carry no request: they only count in the stats. */
typedef void http_observer_fn(void *arg, const char *handler, const char *method, int status,
                              double duration_s, uint64_t request_bytes, uint64_t response_bytes);

/* Formats an error body for 'status' and the message 'msg' into 'out' and
 * sets *content_type (a static string).  Returns HS_OK, or an error to fall
 * back to the default plain-text body. */
typedef int http_error_formatter_fn(void *arg, int status, const char *msg, struct hs_buf *out,
                                    const char **content_type);

/* Request callbacks: drain (pending output fell to the low-water mark) and
 * close (the client went away before the request was finished). */
typedef void http_request_cb(struct http_request *r, void *arg);

/* Called exactly once when a shutdown has finished. */
typedef void http_done_fn(void *arg);

/* ---- server --------------------------------------------------------------- */

struct http_server_stats {
    uint64_t connections_open;     /* currently open */
    uint64_t connections_accepted; /* total accepted (rejected ones included) */
    uint64_t connections_rejected; /* answered 503 because of max_connections */
    uint64_t requests_in_flight;   /* dispatched to a handler, not yet finished */
    uint64_t requests_total;       /* completed requests (observer calls) */
    uint64_t bytes_in;             /* bytes read from clients */
    uint64_t bytes_out;            /* bytes queued to clients */
    uint64_t protocol_errors;      /* 400, 408, 413, 417, 431, 501, 505 answers */
};

/*
 * Creates a server on 'base' (borrowed; it must outlive the server).  The
 * config is copied (the listen string too).  Nothing is bound yet.
 * Returns NULL with err set on a bad config or out of memory.
 */
struct http_server *http_server_new(struct event_base *base, const struct http_server_config *c,
                                    struct hs_err *err);

/*
 * Resolves the listen address, binds (SO_REUSEADDR) and listens on every
 * address it resolves to (at least one must work).  Returns HS_OK, HS_EINVAL
 * for an unparsable address, HS_EIO when nothing could be bound.
 */
HS_MUST_CHECK int http_server_start(struct http_server *s, struct hs_err *err);

/* The port the first listener is bound to (useful with port 0); 0 before
 * http_server_start succeeded. */
int http_server_port(const struct http_server *s);

/*
 * Adds a route.  'method' ("GET", "POST", ...) or NULL for any method; a GET
 * route also answers HEAD.  'path' is matched exactly, or as a prefix when it
 * ends with a slash and a star: "/ui/" followed by "*" matches "/ui",
 * "/ui/" and "/ui/app.js".
 * 'handler_name' names the route in the observer ("/api/v1/query").  All
 * strings are copied.  Routes are tried in the order they were added.
 * Returns HS_OK, HS_EINVAL (path not starting with '/', empty name, NULL
 * fn) or HS_ENOMEM.
 */
HS_MUST_CHECK int http_server_route(struct http_server *s, const char *method, const char *path,
                                    const char *handler_name, http_handler_fn *fn, void *arg);

/* Installs the per-request observer (NULL to remove). */
void http_server_set_observer(struct http_server *s, http_observer_fn *fn, void *arg);

/* Installs the error-body formatter used by http_respond_error and by the
 * server's own error answers (NULL restores plain text). */
void http_server_set_error_formatter(struct http_server *s, http_error_formatter_fn *fn, void *arg);

/*
 * Graceful shutdown: stops accepting at once, closes idle keep-alive
 * connections (and connections that have not sent a byte yet), lets in-flight requests (streams
 * included) finish until 'timeout_ms' has passed, then closes the rest (close callbacks fire), and
 * then calls 'done(arg)' exactly once on the loop thread, never from inside
 * this call.  Responses finished meanwhile carry "Connection: close".  A
 * second call while one is under way is ignored ('done' of the second call
 * never fires).
 */
void http_server_shutdown(struct http_server *s, int64_t timeout_ms, http_done_fn *done, void *arg);

/* Closes everything at once and frees the server, held requests included
 * (no callbacks fire).  Must not be called from inside one of this server's
 * callbacks.  NULL is a no-op. */
void http_server_free(struct http_server *s);

/* Copies the counters into 'out'. */
void http_server_get_stats(const struct http_server *s, struct http_server_stats *out);

/* ---- request side ------------------------------------------------------------
 * Every string returned is NUL-terminated, owned by the request and valid
 * until the request is finished.
 */
const char *http_request_method(const struct http_request *r);
/* The path as sent, without the query (no %-decoding). */
const char *http_request_path(const struct http_request *r);
/* The raw query string after '?', "" when none. */
const char *http_request_query(const struct http_request *r);
/* 0 for HTTP/1.0, 1 for HTTP/1.1. */
int http_request_version_minor(const struct http_request *r);
/* Name of the route that matched. */
const char *http_request_handler_name(const struct http_request *r);

/*
 * First value of parameter 'name' from the query string and, for POST bodies
 * of type application/x-www-form-urlencoded, from the body (query first).
 * %XX and '+' are decoded.  NULL when absent, or when the parameters could
 * not be decoded (out of memory); an empty value is "".
 */
const char *http_request_param(struct http_request *r, const char *name);
/* Every value of 'name' (e.g. match[]), in order: stores up to 'max' in
 * 'out' and returns how many there are in total. */
size_t http_request_param_all(struct http_request *r, const char *name, const char **out,
                              size_t max);
/* Number of decoded parameters, and the i-th one (for iteration). */
size_t http_request_param_count(struct http_request *r);
HS_MUST_CHECK int http_request_param_at(struct http_request *r, size_t i, const char **name,
                                        const char **value);

/* First header called 'name' (case-insensitive), value trimmed; NULL when absent. */
const char *http_request_header(const struct http_request *r, const char *name);
/* Number of request headers and the i-th one. */
size_t http_request_header_count(const struct http_request *r);
void http_request_header_at(const struct http_request *r, size_t i, const char **name,
                            const char **value);

/* The decoded body (de-chunked) and its length; "" with length 0 when none.
 * The body is NUL-terminated for convenience (the NUL is not counted). */
const char *http_request_body(const struct http_request *r, size_t *len);
/* The request id sent back as X-Request-Id (the client's when sane). */
const char *http_request_id(const struct http_request *r);
/* "IP:PORT" of the client ("[v6]:port" for IPv6). */
const char *http_request_remote_addr(const struct http_request *r);
/* Per-request arena, reset when the request is finished. */
struct hs_arena *http_request_arena(struct http_request *r);
/* True once the client has gone away (writes return HS_ECLOSED). */
bool http_request_is_closed(const struct http_request *r);

/* ---- response side ----------------------------------------------------------- */

/*
 * Adds a response header (both strings copied).  Must come before
 * http_respond or http_stream_start.  Content-Length, Transfer-Encoding,
 * Connection and X-Request-Id are the server's and are refused, as are
 * names or values with CR, LF or NUL.  Returns HS_OK, HS_EINVAL or HS_ENOMEM.
 */
HS_MUST_CHECK int http_response_header(struct http_request *r, const char *name, const char *value);

/*
 * Answers with a fixed-length body ('body' is copied; may be NULL when len
 * is 0) and finishes the request.  'content_type' may be NULL (no header).
 * The body is gzipped when the client accepts gzip, it is over 1 KiB and no
 * Content-Encoding was set.  On a closed connection it only finishes the
 * request.
 */
void http_respond(struct http_request *r, int status, const char *content_type, const void *body,
                  size_t len);

/* Answers 'status' with 'msg' formatted by the error formatter (plain text
 * "msg\n" by default) and finishes the request. */
void http_respond_error(struct http_request *r, int status, const char *msg);

/*
 * Starts a streamed answer: status line and headers are sent at once; the
 * body follows with http_stream_write and ends with http_stream_end.
 * Returns HS_OK, HS_EINVAL (an answer was already started) or HS_ECLOSED.
 * On error the request is still held.
 */
HS_MUST_CHECK int http_stream_start(struct http_request *r, int status, const char *content_type);

/*
 * As http_stream_start, but the status line and headers wait on the
 * connection: they leave with the first http_stream_write, http_stream_flush
 * or http_stream_end (one send for the head and the first bytes).  The
 * caller must write, flush or end soon, in the same loop round.
 */
HS_MUST_CHECK int http_stream_start_lazy(struct http_request *r, int status,
                                         const char *content_type);

/*
 * Queues 'len' bytes ('data' copied) as one chunk and hands it to the socket
 * at once (see Output above).  Always accepts the data on an open connection,
 * whatever is already pending (check http_stream_pending to apply
 * backpressure).  Returns HS_OK, HS_ECLOSED (client gone), HS_EINVAL (no
 * stream started) or HS_ENOMEM.  A zero-length write does nothing.
 */
HS_MUST_CHECK int http_stream_write(struct http_request *r, const void *data, size_t len);

/*
 * As http_stream_write, but the chunk waits on the connection: it leaves
 * with the next http_stream_write, http_stream_flush or http_stream_end (the
 * last bytes and the final chunk in one send).  Same returns.
 */
HS_MUST_CHECK int http_stream_queue(struct http_request *r, const void *data, size_t len);

/* Hands what waits on the connection (a lazy head, queued chunks) to the
 * socket now.  Does nothing without a started stream or once closed. */
void http_stream_flush(struct http_request *r);

/* Bytes queued on the connection and not yet written to the socket. */
size_t http_stream_pending(const struct http_request *r);

/* Sets the drain callback: after a write left more than the low-water mark
 * pending, fn fires once when the pending bytes fall to the mark or below. */
void http_stream_on_drain(struct http_request *r, http_request_cb *fn, void *arg);

/* Sets the close callback: fires once if the client goes away (or the
 * server closes the connection at a shutdown deadline or a write timeout)
 * before the request is finished.  Works for any held request, streamed or
 * not. */
void http_stream_on_close(struct http_request *r, http_request_cb *fn, void *arg);

/* Ends the stream (the final chunk for HTTP/1.1; closes the connection for
 * HTTP/1.0) and finishes the request.  On a request with no stream started
 * it acts as http_request_release. */
void http_stream_end(struct http_request *r);

/*
 * Finishes a held request without a complete answer: with nothing sent yet
 * the client gets 500; with a stream started the connection is closed (the
 * client sees a truncated body); on a closed connection it only frees.
 */
void http_request_release(struct http_request *r);

/* Reason phrase of a status code ("Not Found"); "Unknown" when unknown. */
const char *http_status_text(int status);

/* ---- client ---- */
/*
 * The HTTP/1.1 client the scraper, the gateway, the notifier and the
 * remote-write sender use.  Asynchronous, on the caller's event_base.
 *
 * Connections are pooled per origin (scheme, host, port) and kept alive;
 * a pooled connection closes after idle_timeout_ms or when the peer closes
 * it.  Responses are read by the client's own resumable parser (status
 * line, headers, Content-Length / chunked / close-delimited bodies, 1xx
 * interim answers skipped, HEAD/204/304 without a body).  https uses
 * OpenSSL: the peer is verified against the system CA store (or ca_file),
 * with SNI and host name checks, unless insecure_skip_verify.
 *
 * Host names are resolved with the system resolver (getaddrinfo) on a
 * short-lived helper thread per lookup, so a slow DNS server never blocks
 * the loop; numeric addresses need no lookup and names under ".invalid"
 * fail at once, as RFC 6761 asks.  The lookup counts against the connect
 * timeout.  There is no DNS cache: every new connection looks the name up.
 *
 * Threading: loop thread only.  Every function and callback of the client
 * runs on the thread running its event_base, except
 * http_client_config_defaults, http_client_basic_auth_header and
 * http_client_fetch_sync (any thread).
 *
 * Callback contract: if http_client_request returns an error no callback
 * fires.  If it returns HS_OK, on_done fires exactly once (never from inside
 * http_client_request), unless the call is cancelled first: after
 * http_client_cancel no callback fires at all.  on_headers and
 * on_body_chunk fire only before on_done.  The call handle is valid until
 * on_done returns or http_client_cancel is called, whichever is first.
 */

struct http_client;
struct http_client_call;

/* TLS settings (the scrape config's tls_config). Strings are copied. */
struct http_client_tls {
    const char *ca_file;       /* PEM CA bundle; NULL = the system store */
    const char *cert_file;     /* PEM client certificate (chain); NULL = none */
    const char *key_file;      /* PEM private key of cert_file */
    const char *server_name;   /* SNI and name to verify; NULL = the URL's host */
    bool insecure_skip_verify; /* accept any certificate and name */
};

struct http_client_config {
    size_t max_idle_per_host;   /* idle keep-alive connections kept per origin */
    int64_t idle_timeout_ms;    /* a pooled connection unused this long is closed */
    size_t max_header_bytes;    /* status line + headers (and trailers) of a response */
    struct http_client_tls tls; /* for https origins */
};

/* Fills the defaults: 4 idle per host, 90 s idle timeout, 64 KiB headers,
 * verification on with the system store.  Threading: any thread. */
void http_client_config_defaults(struct http_client_config *c);

/* A request or response header; strings borrowed. */
struct http_client_header {
    const char *name;
    const char *value;
};

struct http_client_req {
    const char *method;                       /* NULL = "GET" */
    const char *url;                          /* http:// or https://, IPv6 in brackets */
    const struct http_client_header *headers; /* extra headers; copied */
    size_t nheaders;
    const void *body; /* request body, copied by http_client_request; may be NULL */
    size_t body_len;
    int64_t connect_timeout_ms;    /* TCP connect + TLS handshake; 0 = none */
    int64_t first_byte_timeout_ms; /* request sent to response headers read; 0 = none */
    int64_t read_timeout_ms;       /* longest gap between body reads; 0 = none */
    int64_t total_timeout_ms;      /* whole request; 0 = none */
    uint64_t max_response_bytes;   /* decoded body ceiling; 0 = 64 MiB */
    bool decompress_gzip;          /* send Accept-Encoding: gzip, inflate Content-Encoding: gzip */
    bool is_streaming;             /* deliver the body through on_body_chunk, not in the result */
};

/* Why a request failed (the result's 'kind'). */
enum http_client_fail {
    HTTP_CLIENT_OK = 0,
    HTTP_CLIENT_FAIL_CONNECT, /* connection refused or unreachable */
    HTTP_CLIENT_FAIL_DNS,     /* the host name did not resolve */
    HTTP_CLIENT_FAIL_TLS,     /* handshake or verification failed */
    HTTP_CLIENT_FAIL_TIMEOUT_CONNECT,
    HTTP_CLIENT_FAIL_TIMEOUT_FIRST_BYTE,
    HTTP_CLIENT_FAIL_TIMEOUT_READ,
    HTTP_CLIENT_FAIL_TIMEOUT_TOTAL,
    HTTP_CLIENT_FAIL_RESET,     /* the peer closed or reset before the response ended */
    HTTP_CLIENT_FAIL_MALFORMED, /* the response broke HTTP/1.1 (or its gzip was bad) */
    HTTP_CLIENT_FAIL_TOO_BIG,   /* headers or body past their ceiling */
    HTTP_CLIENT_FAIL_NOMEM,
    HTTP_CLIENT_FAIL_COUNT
};

/* What on_done gets; borrowed for the duration of the callback. */
struct http_client_result {
    int code;         /* HS_OK or a negative enum hs_code (HS_ETIMEDOUT, HS_ETOOBIG, ...) */
    int kind;         /* enum http_client_fail */
    char msg[256];    /* "" on success, else what went wrong */
    int status;       /* HTTP status, 0 when no response headers were read */
    const char *body; /* whole body when not streaming (NUL-terminated), else NULL */
    size_t body_len;
};

/* Response headers: status and the headers (final response only; 1xx are
 * skipped).  Arrays and strings borrowed for the call. */
typedef void http_client_headers_fn(void *arg, int status, const struct http_client_header *h,
                                    size_t n);
/* Body bytes (decoded), handed over as soon as they are read.  Borrowed. */
typedef void http_client_chunk_fn(void *arg, const char *data, size_t len);
typedef void http_client_done_fn(void *arg, const struct http_client_result *res);

struct http_client_callbacks {
    http_client_headers_fn *on_headers;  /* optional */
    http_client_chunk_fn *on_body_chunk; /* required when is_streaming */
    http_client_done_fn *on_done;        /* required */
};

struct http_client_stats {
    uint64_t requests;                       /* accepted by http_client_request */
    uint64_t requests_ok;                    /* finished with HS_OK */
    uint64_t requests_cancelled;             /* ended by http_client_cancel */
    uint64_t errors[HTTP_CLIENT_FAIL_COUNT]; /* failures by enum http_client_fail */
    uint64_t connections_opened;
    uint64_t connections_reused;
    uint64_t connections_idle; /* in the pool now */
};

/* Creates a client on 'base' (borrowed; must outlive the client).  'cfg' is
 * copied (NULL = defaults).  TLS files are loaded here: a bad ca_file,
 * cert_file or key_file is HS_EINVAL with the OpenSSL reason.  NULL on error. */
struct http_client *http_client_new(struct event_base *base, const struct http_client_config *cfg,
                                    struct hs_err *err);

/* Frees the client: calls in flight are cancelled (no callback fires) and
 * every connection is closed.  NULL is allowed.  Must not be called from
 * inside one of the client's own callbacks. */
void http_client_free(struct http_client *c);

/*
 * Starts a request.  'req' and everything it points to are copied (the URL,
 * headers and body need not outlive the call).  The URL is checked here:
 * bad scheme, host, port or characters are HS_EINVAL with a message, as are
 * bad header names or values (CR, LF, NUL) and a missing on_done.
 * '*out' (may be NULL) receives the handle for cancel/pause/resume.
 * Returns HS_OK (on_done will fire exactly once, see the contract above),
 * HS_EINVAL or HS_ENOMEM (no callback fires).
 */
HS_MUST_CHECK int http_client_request(struct http_client *c, const struct http_client_req *req,
                                      const struct http_client_callbacks *cb, void *arg,
                                      struct http_client_call **out, struct hs_err *err);

/* Cancels a call that has not finished: its connection is closed (never
 * reused) and no callback fires after this, on_done included.  May be called
 * from inside the call's own callbacks (not after on_done returned). */
void http_client_cancel(struct http_client_call *call);

/* Stops reading the response (backpressure): no on_body_chunk fires until
 * http_client_resume, and the socket is not read, so the peer slows down.
 * The read timeout does not run while paused; the total timeout does. */
void http_client_pause(struct http_client_call *call);
/* Resumes reading; bytes already buffered are delivered from the loop (not
 * from inside this call). */
void http_client_resume(struct http_client_call *call);

void http_client_get_stats(const struct http_client *c, struct http_client_stats *out);

/* Appends "Basic base64(user:pass)" to 'out' (the value of an Authorization
 * header).  Returns HS_OK or HS_ENOMEM / HS_ETOOBIG from the buffer. */
HS_MUST_CHECK int http_client_basic_auth_header(const char *user, const char *pass,
                                                struct hs_buf *out);

/*
 * Fetches 'url' with GET on a temporary event_base and waits: for CLI tools
 * and tests.  'timeout_ms' is the total timeout (0 = none), 'max_bytes' the
 * body ceiling (0 = 64 MiB); gzip is accepted and inflated.  On HS_OK
 * *status is set and *body (NUL-terminated, caller frees with hs_free) and
 * *len hold the body, whatever the status.  On error nothing is allocated.
 * Threading: any thread (blocks it).
 */
HS_MUST_CHECK int http_client_fetch_sync(const char *url, int64_t timeout_ms, size_t max_bytes,
                                         int *status, char **body, size_t *len, struct hs_err *err);
/* ---- end of client ---- */

#endif
