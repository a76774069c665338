/*
 * promql.h - the PromQL engine: queries over a storage interface, results as
 * values or Prometheus API JSON, and the promqltest script runner.
 *
 * Semantics are those of Prometheus 3 for float samples: lookback with
 * staleness markers, left-open range selectors (t-range, t], offset and @,
 * subqueries aligned to absolute multiples of their step, vector matching,
 * every aggregation and float function.  Native histograms are not
 * supported.
 *
 * Errors: query functions return a negative enum hs_code with detail in
 * 'err'; promql_error_type() maps it to the API's errorType (bad_data for
 * parse errors, execution for runtime errors, timeout, canceled).
 *
 * Threading: an engine is immutable after promql_engine_new and may be used
 * by any number of threads at once; a result belongs to one thread.  The
 * storage must allow concurrent select calls when queries run concurrently.
 */
#ifndef HS_PROMQL_PROMQL_H
#define HS_PROMQL_PROMQL_H

#include "core/core.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- label matchers ------------------------------------------------------ */

enum promql_matcher_op {
    PROMQL_M_EQ = 0, /* =  */
    PROMQL_M_NEQ,    /* != */
    PROMQL_M_RE,     /* =~ fully anchored, '.' matches newline (as Prometheus 3) */
    PROMQL_M_NRE     /* !~ */
};

/* A compiled label matcher handed to the storage; the storage calls
 * promql_matcher_matches() for regex matchers. */
struct promql_matcher {
    int op;            /* enum promql_matcher_op */
    const char *name;  /* label name; borrowed */
    const char *value; /* value or regex source; borrowed */
    void *re;          /* compiled regex (pcre2_code *) for RE/NRE, else NULL */
    void *md;          /* match data for 're' */
};

/* True when 'value' (NUL-terminated; a missing label is "") satisfies m. */
bool promql_matcher_matches(const struct promql_matcher *m, const char *value);

/*
 * Compiles m->re for a RE/NRE matcher whose op, name and value are set
 * (anchored as ^(?s:value)$).  Fails with HS_EPARSE and a message like
 * Prometheus' on an invalid regex.  Free with promql_matcher_cleanup.
 */
HS_MUST_CHECK int promql_matcher_compile(struct promql_matcher *m, struct hs_err *err);
void promql_matcher_cleanup(struct promql_matcher *m);

/* ---- storage interface --------------------------------------------------- */

/*
 * What the engine reads from.  select opens a set of the series matching
 * every matcher that have samples in [mint_ms, maxt_ms], sorted by labels;
 * the engine walks it with next and reads each series' samples with seek,
 * iter_next and at; close releases it.  Staleness markers are ordinary
 * samples with the value bits 0x7ff0000000000002.
 *
 * Labels returned by next are borrowed until the following next or close.
 */
struct promql_storage_ops {
    HS_MUST_CHECK int (*select)(void *ctx, const struct promql_matcher *ms, size_t nms,
                                int64_t mint_ms, int64_t maxt_ms, void **set, struct hs_err *err);
    /* 1: moved to the next series (labels set), 0: no more, <0: error. */
    int (*next)(void *set, const struct hs_labels **labels, struct hs_err *err);
    /* Positions the current series' iterator at its first sample with t >= t_ms:
     * 1 found, 0 none, <0 error. */
    int (*seek)(void *set, int64_t t_ms, struct hs_err *err);
    /* Advances the iterator: 1 found, 0 none, <0 error. */
    int (*iter_next)(void *set, struct hs_err *err);
    /* The sample under the iterator (valid after seek/iter_next returned 1). */
    void (*at)(void *set, int64_t *t_ms, double *v);
    /* Optional (may be NULL): the start timestamp ("created" time of a counter)
     * of the sample under the iterator; 0 when it has none. */
    int64_t (*at_st)(void *set);
    /*
     * Optional (may be NULL): all samples of the current series with
     * mint < t <= maxt, appended to the growable arrays *t and *v (hs_realloc'd
     * by the callee; *n entries used of *cap), in one call instead of one
     * seek/at/iter_next call per sample.  Only for storages without start
     * timestamps.  HS_OK, or an error with err set.
     */
    HS_MUST_CHECK int (*samples)(void *set, int64_t mint, int64_t maxt, int64_t **t, double **v,
                                 size_t *n, size_t *cap, struct hs_err *err);
    void (*close)(void *set);
    /*
     * Sorted unique label names (label_names) or values of 'name'
     * (label_values) of the series matching ms (nms may be 0: all series)
     * in [mint_ms, maxt_ms]; strings and array come from 'arena'.
     */
    HS_MUST_CHECK int (*label_names)(void *ctx, const struct promql_matcher *ms, size_t nms,
                                     int64_t mint_ms, int64_t maxt_ms, struct hs_arena *arena,
                                     const char ***out, size_t *n, struct hs_err *err);
    HS_MUST_CHECK int (*label_values)(void *ctx, const char *name, const struct promql_matcher *ms,
                                      size_t nms, int64_t mint_ms, int64_t maxt_ms,
                                      struct hs_arena *arena, const char ***out, size_t *n,
                                      struct hs_err *err);
};

struct promql_storage {
    const struct promql_storage_ops *ops;
    void *ctx;
};

/* In-memory storage (storage_mem.c): for tests, the promqltest runner and
 * small embedded uses.  Not locked: one writer, no concurrent readers. */
struct promql_mem;
struct promql_mem *promql_mem_new(void);
void promql_mem_free(struct promql_mem *m);
/* Removes every series. */
void promql_mem_clear(struct promql_mem *m);
/*
 * Appends one sample to the series 'labels' (copied; must be sorted and
 * valid).  Samples of a series are kept in time order; a sample at a time
 * already present replaces the old value.
 */
HS_MUST_CHECK int promql_mem_append(struct promql_mem *m, const struct hs_labels *labels,
                                    int64_t t_ms, double v, struct hs_err *err);
/* As promql_mem_append, with the sample's start timestamp (0: none). */
HS_MUST_CHECK int promql_mem_append_st(struct promql_mem *m, const struct hs_labels *labels,
                                       int64_t t_ms, double v, int64_t st_ms, struct hs_err *err);
/* A storage view of 'm' (borrowed: valid while m lives). */
void promql_mem_storage(struct promql_mem *m, struct promql_storage *out);

/* A storage view of holoscope's tsdb (storage_tsdb.c); 'db' is borrowed and
 * must outlive every query that uses the view.  Threading: any thread, as
 * the tsdb locks itself. */
struct tsdb;
void promql_tsdb_storage(struct tsdb *db, struct promql_storage *out);

/* ---- engine -------------------------------------------------------------- */

struct promql_engine_opts {
    int64_t lookback_ms;              /* instant selector lookback; default 300000 (5m) */
    int64_t max_samples;              /* samples in memory per query; default 50000000 */
    int64_t timeout_ms;               /* per query; default 120000; 0 = none */
    int64_t default_subquery_step_ms; /* expr[5m:]; default 60000 */
    size_t max_query_len;             /* bytes of query text; default 65536 */
    int64_t max_points_per_series;    /* range query steps ceiling; default 11000 */
    bool enable_experimental;         /* experimental functions/aggregators (default true) */
    size_t max_query_bytes;           /* working memory of one query; default 1 GiB; 0 = none */
};
/* Fills 'o' with the defaults above. */
void promql_engine_opts_default(struct promql_engine_opts *o);

struct promql_engine;
/* opts may be NULL for defaults; copied.  NULL on ENOMEM. */
struct promql_engine *promql_engine_new(const struct promql_engine_opts *opts);
void promql_engine_free(struct promql_engine *e);

/* ---- results ------------------------------------------------------------- */

enum promql_result_type {
    PROMQL_RESULT_SCALAR = 1,
    PROMQL_RESULT_STRING,
    PROMQL_RESULT_VECTOR,
    PROMQL_RESULT_MATRIX
};

struct promql_point {
    int64_t t_ms;
    double v;
};

/* One series of a vector (npoints == 1) or matrix result. */
struct promql_rseries {
    struct hs_labels labels;     /* sorted */
    struct promql_point *points; /* in time order */
    size_t npoints;
};

/* A query result; everything inside is owned by it (freed by promql_result_free). */
struct promql_result {
    int type;                      /* enum promql_result_type */
    double scalar;                 /* PROMQL_RESULT_SCALAR */
    int64_t t_ms;                  /* time of a scalar/string/vector result (instant query) */
    const char *str;               /* PROMQL_RESULT_STRING */
    struct promql_rseries *series; /* vector / matrix; matrix sorted by labels */
    size_t nseries;
    const char **warnings; /* "PromQL warning: ... (1:8)" */
    size_t nwarnings;
    const char **infos; /* "PromQL info: ... (1:8)" */
    size_t ninfos;
    int64_t samples_total; /* samples read from storage */
    struct hs_arena arena; /* owns everything above */
};
void promql_result_free(struct promql_result *r);

/*
 * Cancels a running query from another thread: pass a flag the query polls
 * (may be NULL).  Set it to true to cancel; the query fails with HS_ECLOSED
 * ("query was canceled").
 */
struct promql_query_opts {
    const atomic_bool *cancel; /* borrowed; polled between steps */
    int64_t timeout_ms;        /* overrides the engine's when > 0 */
};

/*
 * Runs 'query' at t_ms.  On success *out is a new result (caller frees with
 * promql_result_free) of any type; a range selector at top level gives a
 * matrix.  On error returns a negative code (HS_EPARSE for bad queries,
 * HS_EINVAL for runtime errors, HS_ETOOBIG over the sample limit,
 * HS_ETIMEDOUT, HS_ECLOSED when canceled, HS_ENOMEM) with err->msg as
 * Prometheus words it.  'qo' may be NULL.
 */
HS_MUST_CHECK int promql_query_instant(struct promql_engine *e, const struct promql_storage *st,
                                       const char *query, int64_t t_ms,
                                       const struct promql_query_opts *qo,
                                       struct promql_result **out, struct hs_err *err);

/*
 * Runs 'query' at start_ms, start_ms+step_ms, ... <= end_ms; the result is a
 * matrix sorted by labels (scalars become one series with no labels).  The
 * query must give a scalar or instant vector ("invalid expression type
 * \"range vector\" for range query, must be Scalar or instant Vector").
 */
HS_MUST_CHECK int promql_query_range(struct promql_engine *e, const struct promql_storage *st,
                                     const char *query, int64_t start_ms, int64_t end_ms,
                                     int64_t step_ms, const struct promql_query_opts *qo,
                                     struct promql_result **out, struct hs_err *err);

/* The Prometheus API errorType of a query error code: "bad_data",
 * "execution", "timeout", "canceled" or "internal". */
const char *promql_error_type(int code);

/*
 * Appends the "data" object of a Prometheus API query answer, e.g.
 * {"resultType":"matrix","result":[{"metric":{...},"values":[[1435781430.781,"1"]]}]}
 * Values as Go's strconv.FormatFloat(v,'f',-1,64) with "NaN", "+Inf", "-Inf".
 */
HS_MUST_CHECK int promql_result_json(const struct promql_result *r, struct hs_buf *out);

/* Appends the canonical text of query 'text' (Prometheus' format_query):
 * HS_OK, or HS_EPARSE / HS_ETOOBIG with "1:5: parse error: ..." in err. */
HS_MUST_CHECK int promql_format_query(const char *text, struct hs_buf *out, struct hs_err *err);

/* Appends a float as Prometheus' API writes sample values ("1", "0.1", "1e+21"
 * is written as "1000000000000000000000"; "NaN", "+Inf", "-Inf"). */
HS_MUST_CHECK int promql_format_value(double v, struct hs_buf *out);
/* Appends a timestamp in seconds with up to 3 decimals (1435781430.781). */
HS_MUST_CHECK int promql_format_time(int64_t t_ms, struct hs_buf *out);

/* ---- promqltest runner ---------------------------------------------------- */

struct promql_test_totals {
    int passed;
    int failed;
    int skipped; /* native-histogram cases */
};

/*
 * Runs promqltest script files (the .test format of Prometheus' acceptance
 * suite, see shared/conformance/promql/FORMAT.md).  Prints each file's counts,
 * every failing case as "FILE:LINE: ..." with expected and got, and a final
 * line "N passed, N failed" (", N skipped" when some were).  'totals' (may be
 * NULL) receives the sums.  Returns 0 when no case failed, 1 otherwise, 2 when
 * a file could not be read or parsed.
 */
int promql_test_run_files(char **paths, int n, FILE *out, struct promql_test_totals *totals);

/* One case's outcome, for callers that need per-case detail (the conformance test). */
enum promql_test_outcome { PROMQL_TEST_PASS = 0, PROMQL_TEST_FAIL, PROMQL_TEST_SKIP };
/* Called for every eval case of a file; 'msg' is NULL for passes. */
typedef void promql_test_case_cb(void *arg, const char *file, int line, int outcome,
                                 const char *msg);
/*
 * Runs one file, calling cb (may be NULL) for each case, printing failures
 * to 'out' (may be NULL) and adding to 'totals'.  Returns HS_OK, or an error
 * when the file cannot be read or has a syntax error (err says where).
 */
HS_MUST_CHECK int promql_test_run_file(const char *path, FILE *out,
                                       struct promql_test_totals *totals, promql_test_case_cb *cb,
                                       void *arg, struct hs_err *err);

#endif
