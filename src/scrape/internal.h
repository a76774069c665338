/*
 * internal.h - declarations shared by the scrape module's own .c files:
 * the exposition parser's number readers, its name table and the
 * per-format rule checkers that parse.c drives.  Nobody outside
 * src/scrape/ includes this.
 *
 * Threading: as scrape.h; everything here works on one parser at a time.
 */
#ifndef HS_SCRAPE_INTERNAL_H
#define HS_SCRAPE_INTERNAL_H

#include "scrape/scrape.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- numbers ------------------------------------------------------------- */

/*
 * Sample value: [sign] digits [. digits] [e [sign] digits], or "." digits
 * ..., or [sign] Inf / Infinity / NaN in any case.  Exactly rounded.  No
 * whitespace, hex or digit separators.  Returns 0 or -1.
 */
int scrape__parse_number(const char *s, size_t n, double *out);
/* Text-format timestamp: [sign] digits, int64 milliseconds.  0 or -1. */
int scrape__parse_int_ms(const char *s, size_t n, int64_t *t_ms);
/* OpenMetrics timestamp: a finite number of seconds.  Fills both the value
 * in seconds and the time in ms (truncated, saturated).  0 or -1. */
int scrape__parse_om_ts(const char *s, size_t n, double *secs, int64_t *t_ms);

/* ---- name table ----------------------------------------------------------
 * Open-addressing map from a name (bytes not owned) to a record index.
 * Records live in a growable array so indices stay valid across growth.
 */
struct scrape__rec {
    const char *name; /* borrowed (input buffer or parser arena) */
    size_t len;
    uint64_t hash;
    int mtype; /* enum scrape_metric_type */
    bool has_type;
    bool has_help;
    bool has_samples;
};
struct scrape__names {
    struct scrape__rec *recs;
    size_t n, cap;   /* records */
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t nslots;   /* power of two */
};
void scrape__names_cleanup(struct scrape__names *t);
/* Index of 'name' or -1. */
long scrape__names_find(const struct scrape__names *t, const char *name, size_t len);
/* Index of 'name', adding a zeroed record when absent (*is_new says so).
 * The bytes are borrowed.  Negative hs_code on ENOMEM. */
HS_MUST_CHECK long scrape__names_add(struct scrape__names *t, const char *name, size_t len,
                                     bool *is_new);

/* ---- rule-checking state -------------------------------------------------
 * Allocated on the first entry that needs it, freed by scrape_parser_cleanup.
 */
struct scrape__u64set {
    uint64_t *v; /* 0 = empty slot; key 0 is stored as 1 */
    size_t cap, n;
};

/* OpenMetrics: the family being read, its grouping and histogram state. */
struct scrape__om {
    bool has_fam;       /* a family is open */
    struct hs_str name; /* its name */
    int mtype;          /* declared type, SCRAPE_MTYPE_UNKNOWN when none */
    bool has_type, has_help, has_unit;
    struct hs_str unit;
    size_t nsamples;
    /* label groups: every sample's labels minus le / quantile / the stateset
     * label, hashed order-free; one group's samples must be contiguous */
    bool has_group;
    uint64_t group;
    bool group_has_ts;
    double group_ts;                   /* seconds */
    struct scrape__u64set seen_groups; /* groups of this family */
    struct scrape__u64set run_series;  /* series of the current group run */
    /* histogram consistency of the current (group, timestamp) run */
    bool hist_open;
    uint64_t hist_group;
    bool hist_has_ts;
    double hist_ts;
    bool has_bucket, has_count, neg_buckets, has_sum, has_gsum, neg_gsum;
    double bucket, bvalue, count;
    struct scrape__u64set seen_names; /* every name a finished family claimed */
};

struct scrape__check {
    /* text format: every family by name (families need not be contiguous) */
    struct scrape__names fams;
    const char *last_name; /* the previous sample's name, for the lookup cache */
    size_t last_len;
    long last_fam;
    int last_role;
    struct scrape__om om;
};

/* ---- errors ----------------------------------------------------------------- */

/*
 * Fail the parser: fills 'err' with "line N: <message>", pos/line/col of
 * 'at' (NULL: the start of the current line), marks the parser failed and
 * returns 'code'.
 */
int scrape__fail(struct scrape_parser *p, struct hs_err *err, int code, const char *at,
                 const char *fmt, ...) HS_PRINTF(5, 6);
/* Writes a short quoted excerpt of [at, end) ("end of line" when empty)
 * into out (>= 48 bytes). */
void scrape__got(const char *at, const char *end, char *out, size_t out_len);

/* ---- per-format rule checking --------------------------------------------------
 * parse.c reads the syntax of a line into a scrape_entry and hands it to the
 * checker of its format, which keeps the cross-line state, fills in
 * 'family', 'mtype' and 'role' for samples, and fails the parser when a rule
 * is broken.  All return HS_OK or a negative code (parser failed).
 */
HS_MUST_CHECK int scrape__text_meta(struct scrape_parser *p, struct scrape_entry *e,
                                    struct hs_err *err);
HS_MUST_CHECK int scrape__text_sample(struct scrape_parser *p, struct scrape_entry *e,
                                      struct hs_err *err);
HS_MUST_CHECK int scrape__om_meta(struct scrape_parser *p, struct scrape_entry *e,
                                  struct hs_err *err);
HS_MUST_CHECK int scrape__om_sample(struct scrape_parser *p, struct scrape_entry *e,
                                    struct hs_err *err);
/* The "# EOF" line: closes the last family. */
HS_MUST_CHECK int scrape__om_eof(struct scrape_parser *p, struct hs_err *err);
/* p->chk, allocated on first use; NULL after failing the parser (ENOMEM). */
struct scrape__check *scrape__check_get(struct scrape_parser *p, struct hs_err *err);
/* Frees p->chk. */
void scrape__check_free(struct scrape_parser *p);

#endif
