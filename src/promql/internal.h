/*
 * internal.h - shared by the promql module's own .c files: the function ids
 * of the table in functions.c, the evaluator's value representation and
 * context.  Nobody outside src/promql/ includes it.
 *
 * Values during evaluation are dense over the evaluation steps: an instant
 * vector is a list of series, each with one value slot (and a presence flag)
 * per step, so grouping, matching and label work happens once per series and
 * not once per step.  Everything lives in the query's arena.
 *
 * Threading: one evaluation context per query, one thread.
 */
#ifndef HS_PROMQL_INTERNAL_H
#define HS_PROMQL_INTERNAL_H

#include "promql/ast.h"
#include "promql/promql.h"

#include <stdbool.h>
#include <stdint.h>

enum promql__func_id {
    PROMQL__F_ABS = 0,
    PROMQL__F_ABSENT,
    PROMQL__F_ABSENT_OVER_TIME,
    PROMQL__F_ACOS,
    PROMQL__F_ACOSH,
    PROMQL__F_ASIN,
    PROMQL__F_ASINH,
    PROMQL__F_ATAN,
    PROMQL__F_ATANH,
    PROMQL__F_AVG_OVER_TIME,
    PROMQL__F_CEIL,
    PROMQL__F_CHANGES,
    PROMQL__F_CLAMP,
    PROMQL__F_CLAMP_MAX,
    PROMQL__F_CLAMP_MIN,
    PROMQL__F_COS,
    PROMQL__F_COSH,
    PROMQL__F_COUNT_OVER_TIME,
    PROMQL__F_DAYS_IN_MONTH,
    PROMQL__F_DAY_OF_MONTH,
    PROMQL__F_DAY_OF_WEEK,
    PROMQL__F_DAY_OF_YEAR,
    PROMQL__F_DEG,
    PROMQL__F_DELTA,
    PROMQL__F_DERIV,
    PROMQL__F_DOUBLE_EXPONENTIAL_SMOOTHING,
    PROMQL__F_END,
    PROMQL__F_EXP,
    PROMQL__F_FIRST_OVER_TIME,
    PROMQL__F_FLOOR,
    PROMQL__F_HISTOGRAM_AVG,
    PROMQL__F_HISTOGRAM_COUNT,
    PROMQL__F_HISTOGRAM_FRACTION,
    PROMQL__F_HISTOGRAM_QUANTILE,
    PROMQL__F_HISTOGRAM_QUANTILES,
    PROMQL__F_HISTOGRAM_STDDEV,
    PROMQL__F_HISTOGRAM_STDVAR,
    PROMQL__F_HISTOGRAM_SUM,
    PROMQL__F_HOUR,
    PROMQL__F_IDELTA,
    PROMQL__F_INCREASE,
    PROMQL__F_INFO,
    PROMQL__F_IRATE,
    PROMQL__F_LABEL_JOIN,
    PROMQL__F_LABEL_REPLACE,
    PROMQL__F_LAST_OVER_TIME,
    PROMQL__F_LN,
    PROMQL__F_LOG10,
    PROMQL__F_LOG2,
    PROMQL__F_MAD_OVER_TIME,
    PROMQL__F_MAX_OVER_TIME,
    PROMQL__F_MAX_OF,
    PROMQL__F_MIN_OF,
    PROMQL__F_MIN_OVER_TIME,
    PROMQL__F_MINUTE,
    PROMQL__F_MONTH,
    PROMQL__F_PI,
    PROMQL__F_PREDICT_LINEAR,
    PROMQL__F_PRESENT_OVER_TIME,
    PROMQL__F_QUANTILE_OVER_TIME,
    PROMQL__F_RAD,
    PROMQL__F_RANGE,
    PROMQL__F_RATE,
    PROMQL__F_RESETS,
    PROMQL__F_ROUND,
    PROMQL__F_SCALAR,
    PROMQL__F_SGN,
    PROMQL__F_SIN,
    PROMQL__F_SINH,
    PROMQL__F_SORT,
    PROMQL__F_SORT_BY_LABEL,
    PROMQL__F_SORT_BY_LABEL_DESC,
    PROMQL__F_SORT_DESC,
    PROMQL__F_SQRT,
    PROMQL__F_START,
    PROMQL__F_START_TIMESTAMP,
    PROMQL__F_STEP,
    PROMQL__F_STDDEV_OVER_TIME,
    PROMQL__F_STDVAR_OVER_TIME,
    PROMQL__F_SUM_OVER_TIME,
    PROMQL__F_TAN,
    PROMQL__F_TANH,
    PROMQL__F_TIME,
    PROMQL__F_TIMESTAMP,
    PROMQL__F_TS_OF_FIRST_OVER_TIME,
    PROMQL__F_TS_OF_LAST_OVER_TIME,
    PROMQL__F_TS_OF_MAX_OVER_TIME,
    PROMQL__F_TS_OF_MIN_OVER_TIME,
    PROMQL__F_VECTOR,
    PROMQL__F_YEAR,
    PROMQL__F_COUNT
};

/* Position of f in the table (enum promql__func_id), -1 if not from it. */
int promql__func_id(const struct promql_func *f);

/* The value bits Prometheus uses to mark a series stale. */
#define PROMQL__STALE_BITS 0x7ff0000000000002ULL
bool promql__is_stale(double v);
double promql__stale_nan(void);

/* An instant vector series over the steps of the evaluation. */
struct promql__series {
    struct hs_labels labels; /* sorted; arena memory */
    double *v;               /* one value per step */
    uint8_t *ok;             /* 1 where the series has a value at that step */
    bool drop_name;          /* __name__ is removed at the end of the query */
};

/* A range-vector series: raw samples in time order. */
struct promql__mseries {
    struct hs_labels labels;
    int64_t *t;
    double *v;
    int64_t *st; /* start timestamps aligned with t, or NULL when there are none */
    size_t n;
    bool drop_name;
};

/* Extended range selectors: the samples loaded reach one lookback delta
 * before the window (and after it when smoothed). */
#define PROMQL__EXT_ANCHORED 1
#define PROMQL__EXT_SMOOTHED 2

/* An evaluated expression. */
struct promql__val {
    int type;                 /* enum promql_type */
    double *scalar;           /* SCALAR: one per step */
    const char *str;          /* STRING */
    struct promql__series *s; /* VECTOR */
    size_t ns;
    struct promql__mseries *m; /* MATRIX */
    size_t nm;
    int64_t range_ms; /* MATRIX: window length */
    int64_t *wend;    /* MATRIX: window end (inclusive) per step */
    int ext;          /* MATRIX: 0, or PROMQL__EXT_ANCHORED / PROMQL__EXT_SMOOTHED */
};

/* Evaluation context of one query. */
struct promql__ctx {
    struct hs_arena *arena;
    const struct promql_storage *st;
    const struct promql_engine_opts *opts;
    const struct promql_query_opts *qo;
    const char *query;        /* text, for annotation positions */
    int64_t start_ms, end_ms; /* of the whole query (for @ start()/end()) */
    int64_t step_ms;          /* of a range query; 0 for an instant query */
    int64_t deadline_ns;      /* monotonic; 0 = none */
    int64_t samples;          /* samples loaded so far */
    int64_t max_samples;
    struct hs_buf warn; /* warnings, NUL separated */
    struct hs_buf info; /* infos, NUL separated */
    size_t nwarn, ninfo;
    bool range_query;
    bool over_budget;                 /* an allocation failed on the memory ceiling */
    struct promql__overlap *overlaps; /* start-time overlap findings, counted per metric */
    size_t noverlaps;
    struct hs_err *err;
};

/* A "sample has start time that overlaps" warning, merged per metric name. */
struct promql__overlap {
    const char *metric;
    size_t pos;
    int64_t count;
};

/* A grid of evaluation times. */
struct promql__grid {
    int64_t *t;
    size_t n;
};

/* eval.c */
HS_MUST_CHECK int promql__eval(struct promql__ctx *c, const struct promql_node *n,
                               const struct promql__grid *g, struct promql__val *out);
HS_MUST_CHECK int promql__check(struct promql__ctx *c);
void *promql__alloc(struct promql__ctx *c, size_t n);
HS_MUST_CHECK int promql__oom(struct promql__ctx *c);
/* Adds an annotation "PromQL warning: <msg> (line:col)" for node position pos. */
void promql__warn(struct promql__ctx *c, size_t pos, const char *fmt, ...) HS_PRINTF(3, 4);
void promql__info(struct promql__ctx *c, size_t pos, const char *fmt, ...) HS_PRINTF(3, 4);
struct promql__series *promql__series_new(struct promql__ctx *c, size_t nsteps);
/* Label helpers over arena memory. */
HS_MUST_CHECK int promql__labels_copy(struct promql__ctx *c, const struct hs_labels *src,
                                      struct hs_labels *dst);
/* Copy of src without the label 'name'. */
HS_MUST_CHECK int promql__labels_without(struct promql__ctx *c, const struct hs_labels *src,
                                         const char *name, struct hs_labels *dst);
/* Copy of src with name=value set (value "" removes it). */
HS_MUST_CHECK int promql__labels_set(struct promql__ctx *c, const struct hs_labels *src,
                                     const char *name, const char *value, struct hs_labels *dst);
void promql__format_labels(const struct hs_labels *ls, struct hs_buf *b);

/* A string -> int map in arena memory (eval_binop.c). */
struct promql__map {
    size_t cap, n;
    uint64_t *hash;
    const char **key; /* arena copies */
    size_t *klen;
    int *val;
};
/* Looks key up; when absent inserts it with value 'val'.  *out gets the stored value. */
HS_MUST_CHECK int promql__map_put(struct promql__ctx *c, struct promql__map *m, const char *key,
                                  size_t len, int val, int *out, bool *added);
/* Pointer to the value slot of key (inserted with 'val' when absent); valid
 * until the next insertion.  NULL on ENOMEM. */
int *promql__map_ref(struct promql__ctx *c, struct promql__map *m, const char *key, size_t len,
                     int val);
/* Appends the signature of ls for on(names)/ignoring(names) matching to b
 * (ignoring always leaves out __name__). */
HS_MUST_CHECK int promql__signature(const struct hs_labels *ls, bool on, const char **names,
                                    size_t nnames, struct hs_buf *b);
/* Appends a canonical encoding of a whole label set. */
HS_MUST_CHECK int promql__labels_key(const struct hs_labels *ls, struct hs_buf *b);

/* Merges vector series with equal label sets (error when two have a value at
 * one step: "vector cannot contain metrics with the same labelset") and drops
 * series without any value; keeps order. */
HS_MUST_CHECK int promql__merge_same(struct promql__ctx *c, struct promql__val *v, size_t nsteps);
/* timestamp(selector) (want 1) or start_timestamp(selector) (want 2): the
 * samples' own times or their start timestamps, in seconds; with @ the
 * selector's offset is ignored, as Prometheus does for these two functions.
 * want 3: sample times with offset and @ applied normally (info()). */
HS_MUST_CHECK int promql__eval_timestamp_sel(struct promql__ctx *c, const struct promql_node *n,
                                             const struct promql__grid *g, int want,
                                             struct promql__val *out);
/* Prometheus' interpolate(): the value at t on the line (t1,y1)-(t2,y2). */
double promql__interpolate(int64_t t1, double y1, int64_t t2, double y2, int64_t t, bool counter);
/* Prometheus' quantile() over v (sorted in place). */
double promql__quantile(double q, double *v, size_t n);

/* Counts one "start time overlaps" finding for the warning of 'metric'. */
HS_MUST_CHECK int promql__count_overlap(struct promql__ctx *c, const char *metric, size_t pos);

/* eval_agg.c */
HS_MUST_CHECK int promql__eval_aggregate(struct promql__ctx *c, const struct promql_node *n,
                                         const struct promql__grid *g, struct promql__val *out);

/* XXH64 with seed 0 (the hash behind Prometheus' labels.Hash()). */
uint64_t promql__xxh64(const void *data, size_t len);

/* eval_funcs.c */
/* Labels absent() gives for a selector: its equality matchers but __name__. */
HS_MUST_CHECK int promql__absent_labels(struct promql__ctx *c, const struct promql_node *sel,
                                        struct hs_labels *out);
HS_MUST_CHECK int promql__eval_call(struct promql__ctx *c, const struct promql_node *n,
                                    const struct promql__grid *g, struct promql__val *out);

/* eval_info.c: info(v [, selector]). */
HS_MUST_CHECK int promql__eval_info(struct promql__ctx *c, const struct promql_node *n,
                                    const struct promql__grid *g, struct promql__val *out);

/* eval_binop.c */
HS_MUST_CHECK int promql__eval_binary(struct promql__ctx *c, const struct promql_node *n,
                                      const struct promql__grid *g, struct promql__val *out);

/* value.c: Go's strconv.FormatFloat(v, 'f', -1, 64) / ('g') spellings. */
void promql__fmt_float(double v, char *out, size_t len);
/* Go's %g (strconv 'g', -1): "1.1", "1e+06", "NaN", "+Inf". */
void promql__fmt_float_g(double v, char *out, size_t len);

#endif
