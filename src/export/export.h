/*
 * export.h - holoscope's side of the Prometheus remote-write 1.0 protocol
 * (/work/shared/spec/remote-write.md): the codec that turns a request body,
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
 * Threading: any thread; a decoded request and its arena belong to one
 * thread at a time.
 */
#ifndef HS_EXPORT_H
#define HS_EXPORT_H

#include "core/core.h"

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

#endif
