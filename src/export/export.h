/*
 * export.h - what holoscope sends to other systems: the Prometheus
 * remote-write 1.0 codec, and the OTLP/HTTP JSON span exporter (see its
 * section below).
 *
 * Remote write (/work/shared/spec/remote-write.md): the codec that turns a request body,
 * snappy_block(protobuf(WriteRequest)), into validated series and samples,
 * and builds such a body from series.  The receiver endpoint
 * (api/remote_write.c) decodes with it; the future remote-write sender will
 * encode with it.
 *
 * Decoding uses a hand-written protobuf reader (2.6x faster than protobuf-c
 * on a realistic request, see remote_codec.c); encoding uses protobuf-c's
 * generated code (remote.proto).  Snappy is the block format of libsnappy
 * (the framed/stream format is refused).
 *
 * Validation on decode, each failure a precise message (it becomes the 400
 * body the sender logs): snappy that is corrupt, framed, or announces more
 * than the size limit; protobuf that is malformed; a series with no labels,
 * empty or invalid label names, names out of order or repeated, no
 * __name__ or an invalid metric name, a label value that is not UTF-8 or
 * holds a NUL byte, too many labels or names/values too long; too many
 * series or samples in the request.  Labels with an empty value are dropped
 * (the spec says such a label means "absent").  Sample values keep their
 * exact bit pattern: the stale marker 0x7ff0000000000002 stays distinct
 * from an ordinary NaN.  Exemplars, native histograms and metadata are
 * counted (their framing checked), not parsed or kept.
 *
 * Threading: the codec runs on any thread; a decoded request and its arena
 * belong to one thread at a time.  The OTLP exporter runs its own thread;
 * its section says which function may be called from where.
 */
#ifndef HS_EXPORT_H
#define HS_EXPORT_H

#include "core/core.h"
#include "http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The version this codec speaks, for X-Prometheus-Remote-Write-Version. */
#define EXPORT_RW_VERSION "0.1.0"

/* Ceilings applied by export_rw_decode; 0 in a field means "no limit". */
struct export_rw_limits {
    size_t max_decompressed_bytes; /* snappy preamble length; beyond: HS_ETOOBIG */
    size_t max_decode_bytes;       /* memory the decoded request may take; beyond: HS_ETOOBIG */
    size_t max_series;             /* TimeSeries per request; beyond: HS_ETOOBIG */
    size_t max_samples;            /* samples per request (all series); beyond: HS_ETOOBIG */
    size_t max_labels;             /* labels per series; beyond: HS_EINVAL */
    size_t max_label_name_bytes;   /* beyond: HS_EINVAL */
    size_t max_label_value_bytes;  /* beyond: HS_EINVAL */
    bool is_utf8_names_allowed;    /* accept any UTF-8 label/metric name (Prometheus 3);
                                      false: the legacy [a-zA-Z_:][a-zA-Z0-9_:]* rules */
};

/* Defaults: 32 MiB decompressed, 512 MiB of decode memory, 100,000 series,
 * 1,000,000 samples, 128 labels, 1 KiB names, 64 KiB values, legacy names. */
void export_rw_limits_defaults(struct export_rw_limits *l);

struct export_rw_sample {
    int64_t t_ms; /* ms since the epoch */
    double v;     /* bit pattern as received (stale NaN included) */
};

struct export_rw_series {
    struct hs_labels labels;          /* sorted, names unique, no empty values */
    size_t n_samples;                 /* in the order received */
    struct export_rw_sample *samples; /* n_samples entries */
    size_t n_exemplars;               /* received and ignored */
    size_t n_histograms;              /* native histogram samples, received and ignored */
};

/* A decoded WriteRequest.  Everything it points to lives in 'arena'. */
struct export_rw_request {
    size_t n_series;
    struct export_rw_series *series;
    size_t n_samples;          /* sum of the series' n_samples */
    size_t n_exemplars;        /* sum over the series */
    size_t n_histograms;       /* sum over the series */
    size_t n_metadata;         /* MetricMetadata entries, ignored */
    size_t decompressed_bytes; /* size of the protobuf message */
    struct hs_arena arena;     /* owns the series, samples and label strings */
};

/*
 * Decodes a remote-write body ('body', 'len' bytes, borrowed; only read
 * during the call) into 'out', which the call initialises.  On success the
 * caller releases 'out' with export_rw_request_cleanup.  On failure 'out'
 * holds nothing to release (cleanup is still allowed) and err says why:
 *   HS_ECORRUPT  snappy data that is corrupt or in the framed format;
 *   HS_EPARSE    malformed protobuf (err->pos: byte offset in the
 *                decompressed message);
 *   HS_EINVAL    invalid labels (the message names the series index and
 *                the label);
 *   HS_ETOOBIG   a size, series, sample or memory ceiling of 'lim';
 *   HS_ENOMEM    out of memory.
 * 'lim' NULL means export_rw_limits_defaults.
 */
HS_MUST_CHECK int export_rw_decode(const void *body, size_t len, const struct export_rw_limits *lim,
                                   struct export_rw_request *out, struct hs_err *err);

/* Frees everything a decoded request holds; the struct may be decoded into
 * again afterwards.  Safe on a request a failed decode left behind. */
void export_rw_request_cleanup(struct export_rw_request *req);

/*
 * Encodes 'n' series (borrowed) as a remote-write body: protobuf
 * WriteRequest compressed as one snappy block, appended to 'out'.  Labels
 * are written as given (the caller sends them sorted, without empty
 * values); samples in the order given; exemplar and histogram counts are
 * not encoded.  Returns HS_OK, HS_ETOOBIG (the message would exceed 4 GiB
 * or out's ceiling) or HS_ENOMEM; 'out' is unchanged on error.
 */
HS_MUST_CHECK int export_rw_encode(const struct export_rw_series *series, size_t n,
                                   struct hs_buf *out, struct hs_err *err);

/* ---- OTLP/HTTP span export ----------------------------------------------------
 * Spans (the gateway's server and upstream spans, gateway.md §6.1) are sent
 * to an OpenTelemetry collector (or Jaeger, Tempo) as OTLP/HTTP JSON:
 * POST <endpoint> with an ExportTraceServiceRequest, one resourceSpans per
 * request carrying service.name, one scopeSpans ("holoscope"), ids as
 * lowercase hex, times as decimal strings of nanoseconds, attributes as
 * AnyValue (intValue as a decimal string, as the OTLP JSON mapping asks).
 *
 * export_otlp_submit copies a span into a bounded queue and returns at once;
 * a thread of the exporter's own (event loop + http client) sends batches
 * of up to batch_size spans when a batch is full or flush_interval_ms has
 * passed.  A batch answered 429, 502, 503 or 504, or lost to a connection
 * failure or timeout, is retried with exponential backoff (honouring
 * Retry-After) up to max_retries times, then dropped and counted; any other
 * 4xx/5xx drops it at once (counted).  Spans a 2xx answer reports as
 * rejected (partialSuccess.rejectedSpans) count as failed.  A full queue
 * refuses the new span (counted as dropped).
 *
 * Threading: export_otlp_submit, export_otlp_get_stats and
 * export_otlp_metrics may be called from any thread at the same time;
 * export_otlp_new and export_otlp_free from one owning thread.
 */

enum export_attr_type {
    EXPORT_ATTR_STRING,
    EXPORT_ATTR_INT,
    EXPORT_ATTR_DOUBLE,
    EXPORT_ATTR_BOOL,
    EXPORT_ATTR_STRINGS /* a string array, elements separated by EXPORT_ATTR_SEP in v.s */
};

/* Separates the elements of an EXPORT_ATTR_STRINGS value (ASCII unit
 * separator: it never occurs in the finish reasons and stop sequences sent
 * as arrays; an element containing it is split there). */
#define EXPORT_ATTR_SEP '\x1f'

/* One span attribute; the key and a string value are borrowed for the call
 * of export_otlp_submit (copied there). */
struct export_otlp_attr {
    const char *key;
    enum export_attr_type type;
    union {
        const char *s; /* EXPORT_ATTR_STRING(S); NULL is sent as "" (an empty array) */
        int64_t i;     /* EXPORT_ATTR_INT */
        double d;      /* EXPORT_ATTR_DOUBLE; NaN and infinities are sent as strings */
        bool b;        /* EXPORT_ATTR_BOOL */
    } v;
};

/* OTLP SpanKind values. */
#define EXPORT_SPAN_KIND_INTERNAL 1
#define EXPORT_SPAN_KIND_SERVER   2
#define EXPORT_SPAN_KIND_CLIENT   3
/* OTLP Status codes. */
#define EXPORT_SPAN_STATUS_UNSET 0
#define EXPORT_SPAN_STATUS_OK    1
#define EXPORT_SPAN_STATUS_ERROR 2

/* A finished span; everything borrowed for the call of export_otlp_submit. */
struct export_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8]; /* meaningful only when has_parent */
    bool has_parent;
    const char *name;           /* "chat llama-3.1-8b-instruct" */
    int kind;                   /* EXPORT_SPAN_KIND_* (OTLP SpanKind: 2 server, 3 client) */
    int64_t start_unix_ns;      /* ns since the epoch */
    int64_t end_unix_ns;        /* ns since the epoch, >= start */
    int status_code;            /* EXPORT_SPAN_STATUS_*: 0 unset, 1 ok, 2 error */
    const char *status_message; /* may be NULL */
    const struct export_otlp_attr *attrs;
    size_t n_attrs;
};

/* An extra request header sent with every export (e.g. an API key). */
struct export_otlp_header {
    const char *name;
    const char *value;
};

struct export_otlp_config {
    const char *endpoint;     /* full URL, "http://127.0.0.1:4318/v1/traces" (copied) */
    const char *service_name; /* resource attribute service.name (copied); NULL = "holoscope" */
    const struct export_otlp_header *headers; /* copied; may be NULL */
    size_t n_headers;
    size_t queue_size;          /* spans waiting at most; beyond: dropped */
    size_t batch_size;          /* spans per request at most */
    int64_t flush_interval_ms;  /* a partial batch leaves after this long */
    int64_t timeout_ms;         /* per request; also the flush deadline of export_otlp_free */
    int max_retries;            /* retries of a batch on 429/502/503/504 or network errors */
    int64_t backoff_initial_ms; /* first retry delay, doubled each retry */
    int64_t backoff_max_ms;     /* ceiling of the retry delay */
    size_t max_attrs;           /* attributes kept per span (0 = 128); the rest are dropped */
    size_t max_value_bytes;     /* longer strings are cut at a UTF-8 boundary (0 = 4096) */
    struct http_client_tls tls; /* for https endpoints (strings copied) */
};

/* Defaults: endpoint "http://127.0.0.1:4318/v1/traces", service "holoscope",
 * queue 8192 spans, batch 512, flush every 5 s, timeout 10 s, 5 retries,
 * backoff 500 ms .. 30 s, 128 attributes, 4 KiB values, TLS verified
 * against the system store.  Threading: any thread. */
void export_otlp_config_defaults(struct export_otlp_config *c);

struct export_otlp;

/*
 * Creates the exporter and starts its thread.  'c' is copied (strings too).
 * Returns NULL with err set: HS_EINVAL for a bad endpoint URL (not http or
 * https, no host) or a zero size, HS_ENOMEM, HS_EIO when the thread could
 * not start.
 */
struct export_otlp *export_otlp_new(const struct export_otlp_config *c, struct hs_err *err);

/*
 * Queues a copy of 's' for export.  Never blocks on the network (takes a
 * short lock).  Returns true when queued, false when dropped: queue full,
 * exporter shutting down, out of memory, or an invalid span (all-zero
 * trace or span id, NULL name); every drop is counted.
 */
bool export_otlp_submit(struct export_otlp *x, const struct export_span *s);

struct export_otlp_stats {
    uint64_t spans_submitted; /* accepted into the queue */
    uint64_t spans_dropped;   /* refused by export_otlp_submit (full, invalid, closing) */
    uint64_t spans_exported;  /* acknowledged by the receiver (2xx) */
    uint64_t spans_failed;    /* in batches given up after retries or a non-retryable answer */
    uint64_t requests;        /* POSTs attempted (retries included) */
    uint64_t request_errors;  /* POSTs that failed (network or non-2xx) */
    uint64_t retries;         /* POSTs that were retries */
    uint64_t attrs_dropped;   /* attributes beyond max_attrs */
    uint64_t queue_length;    /* spans waiting now (in the queue and the batch in flight) */
    double last_latency_s;    /* duration of the last POST */
};

/* Copies the counters (atomics; any thread). */
void export_otlp_get_stats(const struct export_otlp *x, struct export_otlp_stats *out);

/* An api_collector_fn: appends holoscope_otlp_* families (text format
 * 0.0.4) for the struct export_otlp * 'x'.  Returns HS_OK or a buffer error. */
int export_otlp_metrics(void *x, struct hs_buf *out);

/* Stops accepting spans, sends what is queued within timeout_ms (spans
 * still unsent then are counted as failed), stops the thread and frees
 * everything.  NULL is a no-op. */
void export_otlp_free(struct export_otlp *x);

/*
 * Appends the OTLP JSON ExportTraceServiceRequest for 'n' spans (borrowed)
 * to 'out': what the exporter sends, exposed for tests and tools.
 * Returns HS_OK, or HS_ENOMEM / HS_ETOOBIG from the buffer.
 */
HS_MUST_CHECK int export_otlp_encode_json(const char *service_name, const struct export_span *spans,
                                          size_t n, struct hs_buf *out);

#endif
