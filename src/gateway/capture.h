/*
 * capture.h - the capture log (spec/gateway.md §8): sampled request /
 * response pairs written as JSON Lines in the Amazon SageMaker Data Capture
 * format (captureData.endpointInput / endpointOutput, eventMetadata,
 * eventVersion) plus an optional "holoscope" block with the measurements
 * (§8.6), PII-redacted (§9, redact.h) before anything touches disk.
 *
 * Parts: capture_config.c (the `capture:` section, sampling), capture_record.c
 * (canonical serialisation and parsing of one line), capture_writer.c (the
 * queue and writer thread: redaction, quality scores, files, rotation, disk
 * budget, metrics), capture_assemble.c (a stream stored as one JSON answer,
 * §8.2), capture_query.c (reading the files back for the API).
 *
 * Files: <dir>/<endpoint>/<variant>/YYYY/MM/DD/HH/<mm>-<ss>-<mmm>-<uuid>.jsonl
 * (endpoint = record model, variant = upstream, both reduced to
 * [A-Za-z0-9._-]; the hour is the UTC hour of inferenceTime).  A file is
 * written as ".<name>.part" beside its final name and renamed when closed:
 * two minutes after its hour ends (late requests that started in it), when
 * it reaches max_file_bytes, when it is older than max_file_age_ms, and
 * when the writer stops.  After a close the files under
 * <dir> are counted and the oldest complete ones removed until the total is
 * within max_disk_bytes.  Record layout: spec/gateway.md §8.1.
 *
 * Threading: capture_writer_submit, capture_writer_get_stats,
 * capture_writer_flush and capture_writer_metrics may be called from any
 * thread; capture_writer_new and capture_writer_free from one owning
 * thread.  The writer runs one thread of its own.  The config, record,
 * sampling, assembly and query functions are plain functions on
 * caller-owned data, safe on distinct objects.
 */
#ifndef HS_GATEWAY_CAPTURE_H
#define HS_GATEWAY_CAPTURE_H

#include "core/core.h"
#include "gateway/redact.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tsdb;
struct qual_config;
struct qual_tracker;

/* ---- configuration ------------------------------------------------------------ */

enum capture_mode {
    CAPTURE_MODE_INPUT_AND_OUTPUT = 0, /* SageMaker InputAndOutput (default) */
    CAPTURE_MODE_INPUT = 1,            /* endpointInput only */
    CAPTURE_MODE_OUTPUT = 2            /* endpointOutput only */
};

enum capture_stream_output {
    CAPTURE_STREAM_ASSEMBLED = 0, /* a non-streaming-shaped JSON built from the stream */
    CAPTURE_STREAM_RAW = 1        /* the upstream text/event-stream bytes, BASE64 */
};

/* capture.always_capture bits (§8.4). */
enum {
    CAPTURE_ALWAYS_HTTP_ERROR = 1u << 0,
    CAPTURE_ALWAYS_ERROR_MIDSTREAM = 1u << 1,
    CAPTURE_ALWAYS_STREAM_TRUNCATED = 1u << 2,
    CAPTURE_ALWAYS_FINISH_LENGTH = 1u << 3
};

/*
 * The `capture:` section.  YAML keys are the field names below
 * (`dir`, `sampling_percentage`, `sample_by_id`, `extensions`, `mode`
 * (InputAndOutput|Input|Output), `stream_output` (assembled|raw),
 * `always_capture` (list), `max_body_bytes`, `max_file_bytes`,
 * `max_file_age`, `max_disk_bytes`, `queue_size`, `queue_max_bytes`,
 * `redaction: {enabled, disable: [email, ...], rules: [{name, regex}]}`).
 * Strings point into 'arena' or at static text.
 */
struct capture_config {
    const char *dir;            /* capture root; NULL = capture off */
    double sampling_percentage; /* 0..100, default for routes without their own (default 0) */
    bool sample_by_id;          /* decide from a hash of the inference id (default true) */
    bool extensions;            /* write the "holoscope" block (default true) */
    int mode;                   /* enum capture_mode */
    int stream_output;          /* enum capture_stream_output (default assembled) */
    unsigned always_capture;    /* CAPTURE_ALWAYS_* bits (default none) */
    uint64_t max_body_bytes;    /* per direction; larger records are dropped (1 MiB) */
    uint64_t max_file_bytes;    /* size rotation (64 MiB) */
    int64_t max_file_age_ms;    /* time rotation (10 min); the hour change always rotates */
    uint64_t max_disk_bytes;    /* budget for all files under dir; 0 = none (1 GiB) */
    size_t queue_size;          /* records waiting for the writer (1024) */
    uint64_t queue_max_bytes;   /* bytes waiting for the writer (64 MiB) */
    bool redact;                /* PII redaction before disk (default true) */
    bool score_quality;         /* run the quality scorers on every record (default true) */
    const struct qual_config *quality; /* scorer settings, NULL = defaults; borrowed, copied
                                          by capture_writer_new */
    struct redact_config redaction;    /* detectors; custom rules point into 'arena' */
    struct hs_arena arena;             /* owns the strings above */
};

/* Fills 'c' with the defaults above.  Pair with capture_config_free. */
void capture_config_defaults(struct capture_config *c);

/*
 * Parses the YAML `capture:` map 'node' of 'doc' (borrowed; every string
 * is copied into out->arena) over the defaults already in *out (call
 * capture_config_defaults first).  Unknown keys, bad values and user
 * regexes that do not compile give HS_EINVAL with "FILE:LINE:COL:
 * capture.KEY: ...".  On error *out keeps what was parsed so far; free it
 * with capture_config_free either way.
 */
HS_MUST_CHECK int capture_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *node,
                                       struct capture_config *out, struct hs_err *err);
void capture_config_free(struct capture_config *c);

/*
 * Deterministic sampling: true when the hash of 'request_id' falls below
 * 'percentage' (0..100; <= 0 never, >= 100 always).  The same id always
 * gives the same answer, across runs and hosts.  NULL id: false unless 100.
 */
bool capture_should_sample(const char *request_id, double percentage);

/* ---- one record ------------------------------------------------------------------ */

/* Absent measurement values are NAN (doubles) or -1 (counts). */
struct capture_record {
    const char *event_id;          /* eventMetadata.eventId; NULL: the writer makes a UUID v4 */
    const char *inference_id;      /* eventMetadata.inferenceId (<= 64 chars); NULL: omitted */
    const char *custom_attributes; /* eventMetadata.customAttributes; NULL: omitted */
    const char *inference_time;    /* RFC 3339 text to write verbatim; NULL: from t_recv_ms */
    int64_t t_recv_ms;             /* wall clock at t_recv (ms since the epoch) */
    const char *request_id;        /* holoscope request id (extension block) */
    const char *trace_id;          /* 32 lowercase hex, or NULL */
    const char *model;             /* route model: the <endpoint> directory */
    const char *route;             /* route name */
    const char *upstream;          /* upstream name: the <variant> directory */
    const char *operation;         /* chat | text_completion | embeddings | responses | generate */

    bool has_input;                 /* write endpointInput */
    const char *input_content_type; /* observedContentType, verbatim */
    const char *input_encoding;     /* "JSON" / "CSV" / "BASE64"; NULL: from the content type */
    const char *input;              /* the raw request body bytes */
    size_t input_len;
    bool has_output;
    const char *output_content_type;
    const char *output_encoding;
    const char *output; /* response body, assembled JSON or raw SSE bytes */
    size_t output_len;

    bool stream;            /* the response was streamed */
    int stream_output;      /* enum capture_stream_output used for 'output' */
    int n;                  /* choices requested; 0 = unknown */
    int http_status;        /* 0 = none */
    const char *outcome;    /* §4.8, or NULL */
    const char *error_type; /* or NULL */
    double ttft_s, ttft_visible_s, tpot_s, e2e_s;
    int64_t input_tokens, output_tokens;
    const char *usage_source;          /* §4.5, or NULL */
    const char *const *finish_reasons; /* per choice, normalised (§4.7) */
    size_t nfinish_reasons;
    const char *output_text; /* visible output of choice 0 for quality scoring, or NULL */
    size_t output_text_len;
    double sampling_percentage;  /* the route's percentage (extension block); NAN = absent */
    const char *extension_json;  /* parsed records: the "holoscope" object's text, kept
                                    verbatim on rewrite; NULL otherwise */
    const char *extension_extra; /* more members for a built block ("k":v,...), or NULL */
};

/* Sets every field to its absent value (NULLs, NAN, -1, false). */
void capture_record_init(struct capture_record *r);

/*
 * Appends one canonical line (§8.1, with its '\n') for 'r' to 'out'.
 * 'extensions' adds the "holoscope" block (r->extension_json verbatim when
 * set, else one built from the measurement fields).  JSON and CSV payloads
 * are written as text (bytes that are not valid UTF-8 make the payload
 * BASE64 instead); BASE64 payloads are encoded with padding.  r->event_id
 * and r->inference_time must be set.  HS_ENOMEM / HS_ETOOBIG (out's ceiling).
 */
HS_MUST_CHECK int capture_record_format(const struct capture_record *r, bool extensions,
                                        struct hs_buf *out);

/*
 * Parses one line (without its '\n') into 'out'; every string and payload
 * is allocated from 'a' (payloads decoded: JSON/CSV data as text, BASE64
 * data as the raw bytes).  Unknown keys are ignored at every level.
 * HS_EPARSE with err->pos for malformed JSON, HS_EINVAL for a wrong shape
 * ("captureData.endpointInput.data: expected a string").
 */
HS_MUST_CHECK int capture_record_parse(const char *line, size_t len, struct hs_arena *a,
                                       struct capture_record *out, struct hs_err *err);

/* Formats t_ms as RFC 3339 UTC, second precision ("2026-01-01T00:00:01Z"). */
int capture_format_time(int64_t t_ms, char out[32]);
/* Parses RFC 3339 ("...Z", fractional seconds, or a +hh:mm offset) into ms
 * since the epoch.  HS_OK or HS_EINVAL. */
HS_MUST_CHECK int capture_parse_time(const char *s, int64_t *t_ms);

/* "JSON" for application/json and types ending in "+json", "CSV" for text/csv, else
 * "BASE64" (§8.1; parameters after ';' ignored, case-insensitive).  Static. */
const char *capture_encoding_for(const char *content_type);

/* True when s[0..len) is valid UTF-8 (no overlongs, surrogates or values
 * past U+10FFFF). */
bool capture_utf8_valid(const char *s, size_t len);
/* Appends standard base64 (RFC 4648, padded) of s[0..len). */
HS_MUST_CHECK int capture_base64_encode(const char *s, size_t len, struct hs_buf *out);

/*
 * capture.stream_output: assembled (§8.2).  Appends to 'out' the JSON a
 * non-streaming call would have returned for the SSE body sse[0..len):
 * chat.completion (per-choice content, refusal, reasoning_content, merged
 * tool_calls, finish_reason; id, created, model, usage of the stream),
 * text_completion, or the Responses API's final "response" object.
 * HS_EINVAL when the stream has none of those (keep it raw), HS_ENOMEM.
 */
HS_MUST_CHECK int capture_assemble_sse(const char *sse, size_t len, struct hs_buf *out,
                                       struct hs_err *err);

/* Writes a random UUID v4 (lowercase, 36 chars + NUL) into out. */
void capture_uuid4(char out[37]);

/* ---- the writer ------------------------------------------------------------------ */

struct capture_stats {
    uint64_t submitted;                    /* capture_writer_submit calls */
    uint64_t written;                      /* records written to disk */
    uint64_t dropped_queue_full;           /* queue full (count or bytes) */
    uint64_t dropped_too_large;            /* a payload above max_body_bytes */
    uint64_t write_errors;                 /* records lost to I/O errors */
    uint64_t bytes_written;                /* bytes of JSONL written */
    uint64_t files_closed;                 /* files completed (renamed) */
    uint64_t files_removed;                /* files deleted by the disk budget */
    uint64_t queue_length;                 /* records waiting now */
    uint64_t disk_bytes;                   /* bytes under dir after the last budget check */
    uint64_t quality_scored;               /* records given quality scores */
    uint64_t redactions[REDACT_MAX_TYPES]; /* by redactor type index */
};

struct capture_writer;

/*
 * Creates the directory c->dir, compiles the redactor and starts the writer
 * thread.  'c' is copied (strings included).  'db' (borrowed, may be NULL,
 * must outlive the writer) receives the quality series of scored records.
 * Returns NULL with err set (HS_EINVAL: no dir or a bad regex; HS_EIO:
 * the directory cannot be made; HS_ENOMEM).
 */
struct capture_writer *capture_writer_new(const struct capture_config *c, struct tsdb *db,
                                          struct hs_err *err);

/*
 * Hands one finished request to the writer: copies every string and
 * payload of 'r' (borrowed for the call only) into one allocation and
 * pushes it on the queue.  Never blocks on disk.  False when the record was
 * dropped (counted): queue full, a payload larger than max_body_bytes, or
 * out of memory.  Threading: any thread.
 */
bool capture_writer_submit(struct capture_writer *w, const struct capture_record *r);

/* The writer's quality tracker (NULL when score_quality is off); borrowed,
 * valid until capture_writer_free.  For the API and qual_tracker_metrics. */
struct qual_tracker *capture_writer_quality(struct capture_writer *w);

/* The writer's copy of its configuration (for always_capture,
 * max_body_bytes, stream_output, ...); borrowed, valid until
 * capture_writer_free.  Its redaction.custom rules are not kept (NULL). */
const struct capture_config *capture_writer_config(const struct capture_writer *w);

/* The default sampling percentage of the configuration. */
double capture_writer_sampling_percentage(const struct capture_writer *w);

/* Waits until every record submitted so far has been written (or dropped)
 * and the open files are flushed (not closed), at most timeout_ms.  HS_OK
 * or HS_ETIMEDOUT.  For tests and the CLI. */
HS_MUST_CHECK int capture_writer_flush(struct capture_writer *w, int64_t timeout_ms);

/* A consistent-enough snapshot of the counters (atomics).  Any thread. */
void capture_writer_get_stats(const struct capture_writer *w, struct capture_stats *out);

/* An api_collector_fn for 'w' (a struct capture_writer *): appends
 * holoscope_capture_* families.  Any thread. */
int capture_writer_metrics(void *w, struct hs_buf *out);

/* Stops taking records, writes what is queued for at most 5 s (the rest is
 * counted as dropped), closes and renames the open files, joins the thread
 * and frees everything.  NULL is a no-op. */
void capture_writer_free(struct capture_writer *w);

/* ---- reading back ---------------------------------------------------------------- */

#define CAPTURE_QUERY_DEFAULT_LIMIT 100
#define CAPTURE_QUERY_MAX_LIMIT     1000

struct capture_query {
    const char *model;  /* endpoint directory (reduced like the writer does); NULL = all */
    int64_t start_ms;   /* inclusive; INT64_MIN = open */
    int64_t end_ms;     /* inclusive; INT64_MAX = open */
    size_t limit;       /* 0 = CAPTURE_QUERY_DEFAULT_LIMIT; capped at the max */
    uint64_t max_bytes; /* ceiling on the JSON appended; 0 = 64 MiB */
};

/*
 * Reads the capture files under 'dir' (complete files and the writer's
 * open ".part" files, without a torn last line) and appends a JSON array
 * of the matching records, newest first:
 *   [{"eventId":..,"inferenceId":..,"inferenceTime":..,"model":..,
 *     "variant":..,"input":{"contentType":..,"encoding":..,"data":..},
 *     "output":{..},"holoscope":{..}|null}, ...]
 * "data" is the decoded payload text (SSE for raw streams) when it is valid
 * UTF-8, else the stored base64.  Lines that do not parse are skipped.
 * A missing dir gives "[]".
 * HS_ETOOBIG past max_bytes, HS_EIO on read errors.
 */
HS_MUST_CHECK int capture_query(const char *dir, const struct capture_query *q,
                                struct hs_buf *json_out, struct hs_err *err);

/* Reduces 's' to [A-Za-z0-9._-] (others become '_'; "" and "." / ".."
 * become "_") into out (at most out_len-1 bytes kept). */
void capture_path_component(const char *s, char *out, size_t out_len);

#endif
