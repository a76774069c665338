/*
 * ast.h - the PromQL syntax tree shared by the parser (lexer.c, parser.c,
 * printer.c) and the evaluator (eval*.c, functions.c) of the promql module.
 * Internal to src/promql/; other modules use promql.h.
 *
 * Every node and string of a tree lives in the arena given to promql_parse;
 * a tree is freed by resetting or cleaning up that arena.  Positions are
 * byte offsets into the query text, so errors can say "1:14: ...".
 *
 * Threading: a tree is immutable after parsing and may be read by any
 * number of threads.
 */
/*
 * CHANGE by promql-eval (comment only, no field changed): struct promql_func
 * follows Prometheus' convention for optional arguments.  With variadic == 0
 * a call takes exactly nargs arguments.  With variadic != 0 the LAST entry of
 * arg_types is the optional/repeated one: a call takes at least nargs - 1
 * arguments and at most nargs - 1 + variadic (no maximum when variadic is
 * -1); argument i has type arg_types[min(i, nargs - 1)].  Examples:
 * round {V,S} variadic 1 takes 1..2; days_in_month {V} variadic 1 takes
 * 0..1; label_join {V,STR,STR,STR} variadic -1 takes 3 or more.
 *
 * CHANGE by promql-eval (fields ADDED, nothing renamed or removed; all are
 * zero/NULL when unused, which the parser's calloc'd nodes already give):
 *  - sel.offset_expr, matrix.range_expr, subquery.range_expr/step_expr/
 *    offset_expr: a duration expression that cannot be folded at parse time
 *    because it uses step() or range() (experimental duration expressions).
 *    It is a scalar expression tree in SECONDS: numbers and duration literals
 *    as PROMQL_NODE_NUMBER (seconds), + - * / % ^, unary minus, parentheses,
 *    and PROMQL_NODE_CALL of the table's "step", "range", "min_of", "max_of".
 *    The evaluator computes it once per query (step() = the range query's
 *    step, 0 for instant queries; range() = end - start) and uses it instead
 *    of the matching *_ms field.
 *  - bin.fill_left_set/fill_left and bin.fill_right_set/fill_right: the
 *    experimental fill(v) / fill_left(v) / fill_right(v) modifiers: the value
 *    used for a missing LEFT / RIGHT operand (fill(v) sets both), stored as
 *    written.  (With group_right Prometheus swaps the operands but not the
 *    fill values; the evaluator reproduces that.)
 *  - sel.anchored / sel.smoothed: the experimental extended range selector
 *    modifiers ("x[5m] anchored", "x[5m] smoothed", "x smoothed"), set on
 *    the VECTOR node (for a range selector: on its inner vector node).
 *  Please also print these in printer.c: the promqltest runner re-parses
 *  printed trees for its @-modifier checks.
 */
#ifndef HS_PROMQL_AST_H
#define HS_PROMQL_AST_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

/* The types of PromQL expressions. */
enum promql_type {
    PROMQL_TYPE_NONE = 0,
    PROMQL_TYPE_SCALAR,
    PROMQL_TYPE_VECTOR, /* instant vector */
    PROMQL_TYPE_MATRIX, /* range vector */
    PROMQL_TYPE_STRING
};

enum promql_node_kind {
    PROMQL_NODE_NUMBER = 1, /* 1, 1.5e3, 0x1f, Inf, NaN, and durations used as numbers */
    PROMQL_NODE_STRING,     /* "text", 'text', `raw` */
    PROMQL_NODE_VECTOR,     /* metric{a="b"} [offset] [@ t] */
    PROMQL_NODE_MATRIX,     /* vector selector [range] */
    PROMQL_NODE_SUBQUERY,   /* expr[range:step] [offset] [@ t] */
    PROMQL_NODE_CALL,       /* func(args...) */
    PROMQL_NODE_AGGREGATE,  /* sum by (a) (expr), topk(k, expr), ... */
    PROMQL_NODE_BINARY,     /* lhs op [bool] [on|ignoring(...)] [group_left|group_right(...)] rhs */
    PROMQL_NODE_UNARY,      /* -expr, +expr */
    PROMQL_NODE_PAREN       /* (expr) */
};

enum promql_match_op {
    PROMQL_MATCH_EQ = 0, /* =  */
    PROMQL_MATCH_NEQ,    /* != */
    PROMQL_MATCH_RE,     /* =~ */
    PROMQL_MATCH_NRE     /* !~ */
};

struct promql_label_matcher {
    int op;            /* enum promql_match_op */
    const char *name;  /* label name, unescaped */
    const char *value; /* value, unescaped */
};

/* Binary operators, in increasing precedence groups:
 * or < and,unless < comparisons < +,- < *,/,%,atan2 < ^ (right-assoc). */
enum promql_binop {
    PROMQL_OP_ADD = 1,
    PROMQL_OP_SUB,
    PROMQL_OP_MUL,
    PROMQL_OP_DIV,
    PROMQL_OP_MOD,
    PROMQL_OP_POW,
    PROMQL_OP_ATAN2,
    PROMQL_OP_EQL, /* == */
    PROMQL_OP_NEQ, /* != */
    PROMQL_OP_GTR, /* >  */
    PROMQL_OP_LSS, /* <  */
    PROMQL_OP_GTE, /* >= */
    PROMQL_OP_LTE, /* <= */
    PROMQL_OP_AND,
    PROMQL_OP_OR,
    PROMQL_OP_UNLESS
};

enum promql_aggop {
    PROMQL_AGG_SUM = 1,
    PROMQL_AGG_AVG,
    PROMQL_AGG_COUNT,
    PROMQL_AGG_MIN,
    PROMQL_AGG_MAX,
    PROMQL_AGG_GROUP,
    PROMQL_AGG_STDDEV,
    PROMQL_AGG_STDVAR,
    PROMQL_AGG_TOPK,
    PROMQL_AGG_BOTTOMK,
    PROMQL_AGG_COUNT_VALUES,
    PROMQL_AGG_QUANTILE,
    PROMQL_AGG_LIMITK,
    PROMQL_AGG_LIMIT_RATIO
};

/* Vector matching of a binary operation between two vectors. */
enum promql_card {
    PROMQL_CARD_ONE_TO_ONE = 0,
    PROMQL_CARD_MANY_TO_ONE, /* group_left */
    PROMQL_CARD_ONE_TO_MANY, /* group_right */
    PROMQL_CARD_MANY_TO_MANY /* set operators and, or, unless */
};

/* `@` modifier forms. */
enum promql_at {
    PROMQL_AT_NONE = 0,
    PROMQL_AT_TIME,  /* @ <timestamp>: at_ms holds it */
    PROMQL_AT_START, /* @ start() */
    PROMQL_AT_END    /* @ end() */
};

struct promql_node;

/* A function known to the engine; the table lives in functions.c (the
 * evaluator's side) and is consulted by the parser for arity and types. */
struct promql_func {
    const char *name;
    int arg_types[8];  /* enum promql_type of each argument */
    int nargs;         /* number of entries in arg_types */
    int variadic;      /* 0: exactly nargs; else see the CHANGE note at the top:
                          nargs-1 .. nargs-1+variadic args (-1: no maximum) */
    int ret_type;      /* enum promql_type */
    bool experimental; /* needs --enable-feature=promql-experimental-functions in Prometheus */
};
/* Looks a function up by name; NULL when unknown. Defined in functions.c. */
const struct promql_func *promql__func_lookup(const char *name);

struct promql_node {
    int kind;   /* enum promql_node_kind */
    int type;   /* enum promql_type of the expression's value */
    size_t pos; /* byte offset of the node's first character */
    size_t end; /* byte offset just past the node */
    union {
        struct { /* PROMQL_NODE_NUMBER */
            double value;
        } num;
        struct {               /* PROMQL_NODE_STRING */
            const char *value; /* unescaped */
        } str;
        struct { /* PROMQL_NODE_VECTOR, also the inner selector of PROMQL_NODE_MATRIX */
            const char *name; /* metric name or NULL; also present as a __name__ matcher */
            struct promql_label_matcher *matchers;
            size_t nmatchers;
            int64_t offset_ms;               /* offset modifier, may be negative */
            int at;                          /* enum promql_at */
            int64_t at_ms;                   /* for PROMQL_AT_TIME */
            struct promql_node *offset_expr; /* non-NULL: offset from step()/range() (seconds) */
            bool anchored;                   /* "anchored" modifier (range selectors) */
            bool smoothed;                   /* "smoothed" modifier */
        } sel;
        struct {                        /* PROMQL_NODE_MATRIX */
            struct promql_node *vector; /* a PROMQL_NODE_VECTOR holding matchers/offset/@ */
            int64_t range_ms;
            struct promql_node *range_expr; /* non-NULL: range from step()/range() (seconds) */
        } matrix;
        struct { /* PROMQL_NODE_SUBQUERY */
            struct promql_node *expr;
            int64_t range_ms;
            int64_t step_ms; /* 0: use the default evaluation interval */
            int64_t offset_ms;
            int at;
            int64_t at_ms;
            struct promql_node *range_expr;  /* non-NULL: from step()/range() (seconds) */
            struct promql_node *step_expr;   /* idem for the step */
            struct promql_node *offset_expr; /* idem for the offset */
        } subquery;
        struct { /* PROMQL_NODE_CALL */
            const struct promql_func *func;
            struct promql_node **args;
            size_t nargs;
        } call;
        struct {                       /* PROMQL_NODE_AGGREGATE */
            int op;                    /* enum promql_aggop */
            struct promql_node *expr;  /* the vector aggregated */
            struct promql_node *param; /* k, quantile, count_values label, limit ratio; or NULL */
            const char **grouping;     /* label names of by/without */
            size_t ngrouping;
            bool without;      /* true: without(...); false: by(...) or none */
            bool has_grouping; /* a by/without clause was written (even empty) */
        } agg;
        struct {    /* PROMQL_NODE_BINARY */
            int op; /* enum promql_binop */
            struct promql_node *lhs;
            struct promql_node *rhs;
            bool return_bool;          /* comparison with the bool modifier */
            int card;                  /* enum promql_card (vector/vector only) */
            const char **match_labels; /* on(...) / ignoring(...) labels */
            size_t nmatch_labels;
            bool on;              /* true: on(...); false: ignoring(...) or nothing */
            bool has_matching;    /* on/ignoring was written */
            const char **include; /* group_left/group_right(...) extra labels */
            size_t ninclude;
            bool fill_left_set; /* fill(v)/fill_left(v): a missing left operand is v */
            double fill_left;
            bool fill_right_set; /* fill(v)/fill_right(v): a missing right operand is v */
            double fill_right;
        } bin;
        struct {    /* PROMQL_NODE_UNARY */
            int op; /* PROMQL_OP_ADD or PROMQL_OP_SUB */
            struct promql_node *expr;
        } unary;
        struct { /* PROMQL_NODE_PAREN */
            struct promql_node *expr;
        } paren;
    } u;
};

/*
 * Parses 'text' (length 'len') into a tree allocated from 'arena'.
 * On error returns NULL and fills err with code HS_EPARSE, err->pos the byte
 * offset, and a message in Prometheus' style, e.g.
 * "1:14: parse error: unexpected \"}\"".  Type checking (function argument
 * types, operand types of binary operators, range vectors where an instant
 * vector is expected, ...) is part of parsing, as in Prometheus.
 */
struct promql_node *promql__parse(const char *text, size_t len, struct hs_arena *arena,
                                  struct hs_err *err);

/* Parses a duration literal as PromQL does ("5m", "1h30m", "1.5" seconds where allowed). */
int promql__parse_duration(const char *s, size_t len, int64_t *out_ms);

/* Prints a tree back to canonical PromQL text (as Prometheus' String()). */
HS_MUST_CHECK int promql__print(const struct promql_node *n, struct hs_buf *out);

/* Binary-operator helpers shared by parser and evaluator. */
bool promql__binop_is_comparison(int op);
bool promql__binop_is_set(int op);
const char *promql__binop_name(int op);
const char *promql__aggop_name(int op);

#endif
