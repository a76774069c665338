/*
 * sse.h - incremental parser for WHATWG text/event-stream bodies
 * (spec/gateway.md §3.1).  Reads may split anywhere: inside a line, inside
 * a CRLF pair, inside a multi-byte UTF-8 character; partial lines are kept
 * across gw_sse_feed calls.  Lines end with LF, CRLF or CR; a blank line
 * dispatches the event; "data:" lines are joined with "\n"; "event:" sets
 * the type; "id:" and "retry:" are parsed and ignored; lines starting with
 * ':' are comments and never events.  One space after the colon is removed
 * ("data: x" and "data:x" give the same value).  A UTF-8 byte order mark at
 * the start of the stream is skipped.
 *
 * Memory: nothing is allocated until the first feed; one event (its type,
 * data and the line being read) never holds more than max_event_bytes.
 *
 * Threading: a struct gw_sse belongs to one thread at a time; no globals.
 */
#ifndef HS_GATEWAY_SSE_H
#define HS_GATEWAY_SSE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>

/* One dispatched event.  The strings are borrowed from the parser and valid
 * only during the callback; they are NUL-terminated for convenience. */
struct gw_sse_event {
    const char *type; /* the "event:" value; "" when the event had no event: line */
    size_t type_len;
    const char *data; /* the data lines joined with "\n" (no trailing "\n") */
    size_t data_len;
    size_t end_offset; /* bytes of the current gw_sse_feed input consumed up to and
                          including the blank line that dispatched this event (and
                          the LF of a CRLF when it is in the same input); 0 for
                          events dispatched by gw_sse_finish */
};

/* Called once per event; a non-zero return stops the feed (see gw_sse_feed). */
typedef int gw_sse_event_fn(void *arg, const struct gw_sse_event *ev);

/* Parser state; embed it anywhere.  Fields are private to the gateway
 * module (measure.c reads skip_lf to place the LF of a split CRLF). */
struct gw_sse {
    size_t max_event_bytes; /* ceiling on line + type + data of one event */
    struct hs_buf line;     /* the unfinished line carried over from the last feed */
    struct hs_buf type;     /* event type of the event being built */
    struct hs_buf data;     /* data buffer of the event being built ("\n"-joined) */
    bool has_data;          /* at least one data line seen in this event */
    bool skip_lf;           /* the last feed ended with CR: drop a leading LF */
    unsigned char bom_seen; /* bytes of a leading BOM matched; 3 = past the start */
    int failed;             /* 0, or the code of a failure every later feed repeats */
    size_t events;          /* events dispatched so far */
};

/* Prepares 'p' (no allocation).  max_event_bytes 0 means 1 MiB. */
void gw_sse_init(struct gw_sse *p, size_t max_event_bytes);

/*
 * Parses 'len' bytes, calling 'fn' once per event completed by them.
 * Returns HS_OK when all bytes were consumed.  A line or event longer than
 * max_event_bytes fails with HS_ETOOBIG and a message naming the ceiling;
 * out of memory is HS_ENOMEM; after a failure the parser stays failed
 * (every later feed returns the same code) until gw_sse_free + init.
 * If 'fn' returns non-zero, parsing stops right after that event, the rest
 * of 'data' is dropped and that value is returned.
 */
HS_MUST_CHECK int gw_sse_feed(struct gw_sse *p, const char *data, size_t len, gw_sse_event_fn *fn,
                              void *arg, struct hs_err *err);

/*
 * End of stream.  As WHATWG says, an event that lacks its final blank line
 * is discarded (a cut-off "data: [DONE]" is not a normal end), and so is an
 * unterminated last line; no callback fires.  Returns HS_OK, or the code of
 * an earlier failure.  The arguments 'fn' and 'arg' are accepted for
 * symmetry with gw_sse_feed.
 */
HS_MUST_CHECK int gw_sse_finish(struct gw_sse *p, gw_sse_event_fn *fn, void *arg,
                                struct hs_err *err);

/* Releases the buffers; 'p' may be gw_sse_init'ed again.  Idempotent. */
void gw_sse_free(struct gw_sse *p);

#endif
