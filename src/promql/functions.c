/*
 * functions.c - the PromQL function table.  The parser checks arity and
 * argument types against it (see the CHANGE note in ast.h for optional
 * arguments); the evaluator (eval_funcs.c) dispatches on an entry's position
 * in the table, enum promql__func_id in internal.h.
 *
 * The order of entries MUST match enum promql__func_id; entries marked
 * experimental are refused when the engine runs without experimental
 * features.
 */
#include "promql/internal.h"

#include <string.h>

#define V   PROMQL_TYPE_VECTOR
#define M   PROMQL_TYPE_MATRIX
#define S   PROMQL_TYPE_SCALAR
#define STR PROMQL_TYPE_STRING

/* name, argument types, nargs, variadic, return type, experimental */
static const struct promql_func funcs[PROMQL__F_COUNT] = {
    [PROMQL__F_ABS] = {"abs", {V}, 1, 0, V, false},
    [PROMQL__F_ABSENT] = {"absent", {V}, 1, 0, V, false},
    [PROMQL__F_ABSENT_OVER_TIME] = {"absent_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_ACOS] = {"acos", {V}, 1, 0, V, false},
    [PROMQL__F_ACOSH] = {"acosh", {V}, 1, 0, V, false},
    [PROMQL__F_ASIN] = {"asin", {V}, 1, 0, V, false},
    [PROMQL__F_ASINH] = {"asinh", {V}, 1, 0, V, false},
    [PROMQL__F_ATAN] = {"atan", {V}, 1, 0, V, false},
    [PROMQL__F_ATANH] = {"atanh", {V}, 1, 0, V, false},
    [PROMQL__F_AVG_OVER_TIME] = {"avg_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_CEIL] = {"ceil", {V}, 1, 0, V, false},
    [PROMQL__F_CHANGES] = {"changes", {M}, 1, 0, V, false},
    [PROMQL__F_CLAMP] = {"clamp", {V, S, S}, 3, 0, V, false},
    [PROMQL__F_CLAMP_MAX] = {"clamp_max", {V, S}, 2, 0, V, false},
    [PROMQL__F_CLAMP_MIN] = {"clamp_min", {V, S}, 2, 0, V, false},
    [PROMQL__F_COS] = {"cos", {V}, 1, 0, V, false},
    [PROMQL__F_COSH] = {"cosh", {V}, 1, 0, V, false},
    [PROMQL__F_COUNT_OVER_TIME] = {"count_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_DAYS_IN_MONTH] = {"days_in_month", {V}, 1, 1, V, false},
    [PROMQL__F_DAY_OF_MONTH] = {"day_of_month", {V}, 1, 1, V, false},
    [PROMQL__F_DAY_OF_WEEK] = {"day_of_week", {V}, 1, 1, V, false},
    [PROMQL__F_DAY_OF_YEAR] = {"day_of_year", {V}, 1, 1, V, false},
    [PROMQL__F_DEG] = {"deg", {V}, 1, 0, V, false},
    [PROMQL__F_DELTA] = {"delta", {M}, 1, 0, V, false},
    [PROMQL__F_DERIV] = {"deriv", {M}, 1, 0, V, false},
    [PROMQL__F_DOUBLE_EXPONENTIAL_SMOOTHING] =
        {"double_exponential_smoothing", {M, S, S}, 3, 0, V, true},
    [PROMQL__F_END] = {"end", {0}, 0, 0, S, true},
    [PROMQL__F_EXP] = {"exp", {V}, 1, 0, V, false},
    [PROMQL__F_FIRST_OVER_TIME] = {"first_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_FLOOR] = {"floor", {V}, 1, 0, V, false},
    [PROMQL__F_HISTOGRAM_AVG] = {"histogram_avg", {V}, 1, 0, V, false},
    [PROMQL__F_HISTOGRAM_COUNT] = {"histogram_count", {V}, 1, 0, V, false},
    [PROMQL__F_HISTOGRAM_FRACTION] = {"histogram_fraction", {S, S, V}, 3, 0, V, false},
    [PROMQL__F_HISTOGRAM_QUANTILE] = {"histogram_quantile", {S, V}, 2, 0, V, false},
    [PROMQL__F_HISTOGRAM_QUANTILES] = {"histogram_quantiles", {V, STR, S, S}, 4, 9, V, true},
    [PROMQL__F_HISTOGRAM_STDDEV] = {"histogram_stddev", {V}, 1, 0, V, false},
    [PROMQL__F_HISTOGRAM_STDVAR] = {"histogram_stdvar", {V}, 1, 0, V, false},
    [PROMQL__F_HISTOGRAM_SUM] = {"histogram_sum", {V}, 1, 0, V, false},
    [PROMQL__F_HOUR] = {"hour", {V}, 1, 1, V, false},
    [PROMQL__F_IDELTA] = {"idelta", {M}, 1, 0, V, false},
    [PROMQL__F_INCREASE] = {"increase", {M}, 1, 0, V, false},
    [PROMQL__F_INFO] = {"info", {V, V}, 2, 1, V, true},
    [PROMQL__F_IRATE] = {"irate", {M}, 1, 0, V, false},
    [PROMQL__F_LABEL_JOIN] = {"label_join", {V, STR, STR, STR}, 4, -1, V, false},
    [PROMQL__F_LABEL_REPLACE] = {"label_replace", {V, STR, STR, STR, STR}, 5, 0, V, false},
    [PROMQL__F_LAST_OVER_TIME] = {"last_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_LN] = {"ln", {V}, 1, 0, V, false},
    [PROMQL__F_LOG10] = {"log10", {V}, 1, 0, V, false},
    [PROMQL__F_LOG2] = {"log2", {V}, 1, 0, V, false},
    [PROMQL__F_MAD_OVER_TIME] = {"mad_over_time", {M}, 1, 0, V, true},
    [PROMQL__F_MAX_OVER_TIME] = {"max_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_MAX_OF] = {"max_of", {S, S}, 2, 0, S, true},
    [PROMQL__F_MIN_OF] = {"min_of", {S, S}, 2, 0, S, true},
    [PROMQL__F_MIN_OVER_TIME] = {"min_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_MINUTE] = {"minute", {V}, 1, 1, V, false},
    [PROMQL__F_MONTH] = {"month", {V}, 1, 1, V, false},
    [PROMQL__F_PI] = {"pi", {0}, 0, 0, S, false},
    [PROMQL__F_PREDICT_LINEAR] = {"predict_linear", {M, S}, 2, 0, V, false},
    [PROMQL__F_PRESENT_OVER_TIME] = {"present_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_QUANTILE_OVER_TIME] = {"quantile_over_time", {S, M}, 2, 0, V, false},
    [PROMQL__F_RAD] = {"rad", {V}, 1, 0, V, false},
    [PROMQL__F_RANGE] = {"range", {0}, 0, 0, S, true},
    [PROMQL__F_RATE] = {"rate", {M}, 1, 0, V, false},
    [PROMQL__F_RESETS] = {"resets", {M}, 1, 0, V, false},
    [PROMQL__F_ROUND] = {"round", {V, S}, 2, 1, V, false},
    [PROMQL__F_SCALAR] = {"scalar", {V}, 1, 0, S, false},
    [PROMQL__F_SGN] = {"sgn", {V}, 1, 0, V, false},
    [PROMQL__F_SIN] = {"sin", {V}, 1, 0, V, false},
    [PROMQL__F_SINH] = {"sinh", {V}, 1, 0, V, false},
    [PROMQL__F_SORT] = {"sort", {V}, 1, 0, V, false},
    [PROMQL__F_SORT_BY_LABEL] = {"sort_by_label", {V, STR}, 2, -1, V, true},
    [PROMQL__F_SORT_BY_LABEL_DESC] = {"sort_by_label_desc", {V, STR}, 2, -1, V, true},
    [PROMQL__F_SORT_DESC] = {"sort_desc", {V}, 1, 0, V, false},
    [PROMQL__F_SQRT] = {"sqrt", {V}, 1, 0, V, false},
    [PROMQL__F_START] = {"start", {0}, 0, 0, S, true},
    [PROMQL__F_START_TIMESTAMP] = {"start_timestamp", {V}, 1, 0, V, true},
    [PROMQL__F_STEP] = {"step", {0}, 0, 0, S, true},
    [PROMQL__F_STDDEV_OVER_TIME] = {"stddev_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_STDVAR_OVER_TIME] = {"stdvar_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_SUM_OVER_TIME] = {"sum_over_time", {M}, 1, 0, V, false},
    [PROMQL__F_TAN] = {"tan", {V}, 1, 0, V, false},
    [PROMQL__F_TANH] = {"tanh", {V}, 1, 0, V, false},
    [PROMQL__F_TIME] = {"time", {0}, 0, 0, S, false},
    [PROMQL__F_TIMESTAMP] = {"timestamp", {V}, 1, 0, V, false},
    [PROMQL__F_TS_OF_FIRST_OVER_TIME] = {"ts_of_first_over_time", {M}, 1, 0, V, true},
    [PROMQL__F_TS_OF_LAST_OVER_TIME] = {"ts_of_last_over_time", {M}, 1, 0, V, true},
    [PROMQL__F_TS_OF_MAX_OVER_TIME] = {"ts_of_max_over_time", {M}, 1, 0, V, true},
    [PROMQL__F_TS_OF_MIN_OVER_TIME] = {"ts_of_min_over_time", {M}, 1, 0, V, true},
    [PROMQL__F_VECTOR] = {"vector", {S}, 1, 0, V, false},
    [PROMQL__F_YEAR] = {"year", {V}, 1, 1, V, false},
};

const struct promql_func *promql__func_lookup(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < HS_ARRAY_LEN(funcs); i++) {
        if (funcs[i].name != NULL && strcmp(funcs[i].name, name) == 0)
            return &funcs[i];
    }
    return NULL;
}

int promql__func_id(const struct promql_func *f)
{
    if (f < funcs || f >= funcs + HS_ARRAY_LEN(funcs))
        return -1;
    return (int)(f - funcs);
}
