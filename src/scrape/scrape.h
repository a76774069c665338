/*
 * scrape.h - the scrape module's public face: pulling metrics from targets,
 * parsing what they answer, handing samples to the store.
 *
 * This first section is the exposition-format parser: Prometheus text format
 * 0.0.4 and OpenMetrics 1.0 text, pull-style and zero-copy.  A parser walks a
 * caller-owned buffer; every entry it returns points into that buffer, except
 * label values, HELP texts and names that carried an escape sequence, which
 * are unescaped into the parser's arena.
 *
 * Threading: a parser is used by one thread at a time; distinct parsers may
 * run on any threads concurrently.  The free functions are thread-safe.
 */
#ifndef HS_SCRAPE_H
#define HS_SCRAPE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- exposition-format parser ------------------------------------------ */

enum scrape_format {
    SCRAPE_FORMAT_TEXT = 0,        /* text/plain; version=0.0.4 */
    SCRAPE_FORMAT_OPENMETRICS = 1, /* application/openmetrics-text; version=1.0.0 */
};

/*
 * Flag OR-ed into the format of scrape_parser_init.  Without it OpenMetrics
 * is read the way a Prometheus server scrapes it: full syntax, metadata and
 * "# EOF" rules, but none of the semantic rules that span samples (family
 * clashes and interleaving, label-group contiguity, timestamp order,
 * histogram consistency, value ranges of counters, info, stateset and
 * quantiles, exemplar placement).  With it every rule of OpenMetrics 1.0
 * applies, as `holoscope check metrics --openmetrics` and the conformance
 * suite expect.  The text format has one rule set and ignores the flag.
 */
#define SCRAPE_PARSE_STRICT 0x100

/* What scrape_parser_next returned. */
enum scrape_entry_kind {
    SCRAPE_ENTRY_TYPE = 1, /* # TYPE: name, mtype */
    SCRAPE_ENTRY_HELP,     /* # HELP: name, text (unescaped) */
    SCRAPE_ENTRY_UNIT,     /* # UNIT (OpenMetrics): name, text */
    SCRAPE_ENTRY_SAMPLE,   /* one sample line */
    SCRAPE_ENTRY_EOF,      /* OpenMetrics "# EOF"; always the last entry */
};

/* Metric family types of both formats ("untyped" of the text format and
 * "unknown" of OpenMetrics are the same thing). */
enum scrape_metric_type {
    SCRAPE_MTYPE_UNKNOWN = 0,
    SCRAPE_MTYPE_COUNTER,
    SCRAPE_MTYPE_GAUGE,
    SCRAPE_MTYPE_HISTOGRAM,
    SCRAPE_MTYPE_GAUGEHISTOGRAM,
    SCRAPE_MTYPE_SUMMARY,
    SCRAPE_MTYPE_INFO,
    SCRAPE_MTYPE_STATESET,
};

/* Which part of its family a sample is, from its name's suffix and the
 * family's declared type. */
enum scrape_sample_role {
    SCRAPE_ROLE_VALUE = 0, /* the family's own name (gauge, unknown, quantile, stateset) */
    SCRAPE_ROLE_TOTAL,     /* counter _total */
    SCRAPE_ROLE_CREATED,   /* _created: value is a creation time in seconds */
    SCRAPE_ROLE_BUCKET,    /* histogram _bucket (carries le) */
    SCRAPE_ROLE_COUNT,     /* _count */
    SCRAPE_ROLE_SUM,       /* _sum */
    SCRAPE_ROLE_GCOUNT,    /* gaugehistogram _gcount */
    SCRAPE_ROLE_GSUM,      /* gaugehistogram _gsum */
    SCRAPE_ROLE_INFO,      /* info _info */
};

/* Ceilings on one line; going past one is HS_ETOOBIG. */
#define SCRAPE_MAX_LABELS          128 /* label pairs on one sample */
#define SCRAPE_MAX_EXEMPLAR_LABELS 64  /* label pairs on one exemplar */
#define SCRAPE_EXEMPLAR_MAX_RUNES  128 /* OpenMetrics: code points in an exemplar's labels */

struct scrape_label {
    struct hs_str name;  /* borrowed from the input, or the parser's arena if escaped */
    struct hs_str value; /* unescaped; borrowed as above */
};

struct scrape_exemplar {
    const struct scrape_label *labels; /* parser-owned array, valid until the next call */
    size_t nlabels;
    double value;
    bool has_ts;
    int64_t t_ms; /* exemplar timestamp, ms since the epoch */
};

/*
 * One entry.  Fields that do not apply to its kind are empty or zero.
 * Strings are borrowed: they point into the input buffer (or the
 * parser's arena when unescaping was needed) and stay valid until
 * scrape_parser_cleanup, as long as the input buffer lives.  'labels' and
 * the exemplar's label array belong to the parser and are overwritten by
 * the next call to scrape_parser_next.
 */
struct scrape_entry {
    int kind;                          /* enum scrape_entry_kind */
    struct hs_str name;                /* metadata: family name; sample: the sample's metric name */
    struct hs_str text;                /* HELP text (unescaped) or UNIT */
    int mtype;                         /* TYPE: the declared type; SAMPLE: its family's type */
    struct hs_str family;              /* SAMPLE: the family the sample belongs to */
    int role;                          /* SAMPLE: enum scrape_sample_role */
    const struct scrape_label *labels; /* SAMPLE: in input order, names unique */
    size_t nlabels;
    double value;
    bool has_ts;
    int64_t t_ms; /* sample timestamp, ms since the epoch (OpenMetrics: seconds
                     converted, truncated to ms, saturated at the int64 range) */
    bool has_exemplar;
    struct scrape_exemplar exemplar;
    int line; /* 1-based line of this entry */
};

/*
 * Parser state, in caller-provided storage.  Fields are private; the
 * struct is public only so that it can live on the stack.
 */
struct scrape__check;
struct scrape_parser {
    const char *buf;     /* input start (borrowed) */
    const char *end;     /* input end */
    const char *cur;     /* start of the next line */
    const char *ls, *le; /* the line being read: start, end (before '\n') */
    int format;          /* enum scrape_format */
    bool is_strict;      /* SCRAPE_PARSE_STRICT was given */
    int line;            /* number of the line at 'ls' */
    bool is_done;        /* end of input reached or EOF returned */
    bool is_failed;      /* an error was returned; next calls repeat it */
    int fail_code;
    double ts_secs;            /* OpenMetrics: the current sample's timestamp in seconds */
    struct hs_arena arena;     /* unescaped strings, family bookkeeping */
    struct scrape__check *chk; /* format rules state, allocated on first use */
    struct scrape_label labels[SCRAPE_MAX_LABELS];
    struct scrape_label ex_labels[SCRAPE_MAX_EXEMPLAR_LABELS];
};

/*
 * Start parsing 'len' bytes of 'buf' in 'format' (an enum scrape_format,
 * optionally | SCRAPE_PARSE_STRICT).  'buf' is borrowed and must
 * stay unchanged until scrape_parser_cleanup; it need not be NUL-terminated.
 * Allocates nothing; later calls allocate from the parser's arena.
 */
void scrape_parser_init(struct scrape_parser *p, const char *buf, size_t len, int format);

/*
 * Read the next entry into '*e'.  Returns 1 when an entry was produced, 0 at
 * the end of a valid input, or a negative enum hs_code: HS_EPARSE for
 * malformed input (err->line/col/pos say where; the message starts with
 * "line N: "), HS_ETOOBIG past a ceiling, HS_ENOMEM.  The whole input is
 * checked against every rule of its format, including the ones that span
 * lines (OpenMetrics grouping, histogram consistency, "# EOF" last); an
 * error may therefore come after entries of the bad family were returned,
 * and the caller should drop everything from an input that fails.  After
 * an error every further call returns the same code.
 */
HS_MUST_CHECK int scrape_parser_next(struct scrape_parser *p, struct scrape_entry *e,
                                     struct hs_err *err);

/* Release the parser's memory; every string it returned becomes invalid. */
void scrape_parser_cleanup(struct scrape_parser *p);

/*
 * Format of a response from its Content-Type header value (NULL or empty:
 * the text format).  "application/openmetrics-text" with any version gives
 * SCRAPE_FORMAT_OPENMETRICS; everything else the text format, which is what
 * Prometheus falls back to.
 */
int scrape_format_from_content_type(const char *content_type);

/*
 * Inflate a gzip body (Content-Encoding: gzip), appending to 'out'.  At
 * most 'max_bytes' (0 = no limit) are produced: past that HS_ETOOBIG.  A
 * corrupt or truncated stream, or bytes after its end, is HS_EPARSE.  On
 * error 'out' is left as it was.
 */
HS_MUST_CHECK int scrape_body_gunzip(const char *in, size_t len, size_t max_bytes,
                                     struct hs_buf *out, struct hs_err *err);

/* The Accept header a scraper sends: OpenMetrics 1.0 preferred, text 0.0.4
 * accepted.  A static string. */
const char *scrape_accept_header(void);

/* "counter", "gauge", ... ("unknown" for SCRAPE_MTYPE_UNKNOWN). */
const char *scrape_mtype_name(int mtype);

/*
 * `holoscope check metrics` as a library function: parse the whole of 'buf'
 * in 'format' (OpenMetrics is always read strictly).  Returns HS_OK for
 * valid input, else the first problem (with line and message in 'err').
 * Lint findings in the style of promtool ("counter metrics should have
 * \"_total\" suffix", "no help text") are appended to 'report' (may be
 * NULL), one per line as "NAME message", sorted by name, and never make
 * the result an error.
 */
HS_MUST_CHECK int scrape_check_metrics(const char *buf, size_t len, int format,
                                       struct hs_buf *report, struct hs_err *err);

#endif
