/*
 * parser.c - PromQL text to syntax tree (ast.h), with Prometheus 3's
 * grammar, type rules and error messages.
 *
 * A recursive-descent parser with precedence climbing for binary operators:
 *   or  <  and unless  <  == != > < >= <=  <  + -  <  * / % atan2  <  ^
 * all left-associative except ^ (right).  Unary + and - bind like * (so
 * -2^2 is -(2^2) and -a*b is (-a)*b); a sign directly on a number literal is
 * folded into the literal.  The postfix modifiers [range], [range:step],
 * offset and @ bind tighter than any operator and apply to the expression
 * just before them, which must then be a selector or subquery.
 *
 * Parsing stops at the first syntax error.  A tree without syntax errors is
 * then type-checked in a second pass (check()), in the order Prometheus'
 * checkAST visits nodes, so the first error reported is the one Prometheus
 * reports.  Every message is "LINE:COL: parse error: ...", COL counting bytes
 * from 1.
 *
 * Duration expressions inside [...] and after offset (5m+1m, 2*1m, (1h/2),
 * min_of/max_of) are folded to constants here; step() and range() are
 * rejected with a clear error because the tree has no field for them.
 *
 * Ceilings: PROMQL_MAX_QUERY_BYTES of text and PROMQL_MAX_DEPTH levels of
 * nesting; both fail cleanly (no deep recursion is ever attempted).
 */
#include "promql/ast.h"
#include "promql/lexer.h"

#include "core/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROMQL_MAX_QUERY_BYTES (64 * 1024)
#define PROMQL_MAX_DEPTH       500

/* Operator precedence levels. */
enum { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

struct parser {
    const char *src;
    size_t len;
    struct promql__lexer lx;
    struct promql__token tok; /* the lookahead */
    size_t prev_end;          /* end of the last consumed token */
    struct hs_arena *arena;
    struct hs_err *err;
    bool failed; /* an error was recorded; every caller unwinds */
    int depth;   /* current nesting of expressions */
};

/* A growable array of pointers in the arena. */
struct ptrvec {
    void **v;
    size_t n, cap;
};

/* ---- errors ----------------------------------------------------------- */

static void errorf(struct parser *p, size_t pos, const char *fmt, ...) HS_PRINTF(3, 4);

static void errorf(struct parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = 1;
    size_t last_nl = (size_t)-1;
    if (pos > p->len)
        pos = p->len;
    for (size_t i = 0; i < pos; i++) {
        if (p->src[i] == '\n') {
            line++;
            last_nl = i;
        }
    }
    size_t col = pos - last_nl; /* 1-based: pos - (last_nl + 1) + 1 */
    if (p->err != NULL) {
        hs_err_setpos(p->err, HS_EPARSE, pos, "%d:%zu: parse error: %s", line, col, msg);
        p->err->line = line;
        p->err->col = (int)col;
    }
}

static void oom(struct parser *p)
{
    if (p->failed)
        return;
    p->failed = true;
    hs_err_set(p->err, HS_ENOMEM, "out of memory while parsing the query");
}

/* "unexpected <token>[ in <context>][, expected <what>]" at the lookahead;
 * a lexer error is reported as itself. */
static void unexpected(struct parser *p, const char *context, const char *expected)
{
    if (p->tok.type == PROMQL_T_ERROR) {
        errorf(p, p->tok.pos, "%s", p->lx.err);
        return;
    }
    char desc[200];
    promql__tok_describe(p->src, &p->tok, desc, sizeof(desc));
    errorf(p, p->tok.pos, "unexpected %s%s%s%s%s", desc, context ? " in " : "",
           context ? context : "", expected ? ", expected " : "", expected ? expected : "");
}

/* ---- helpers ------------------------------------------------------------ */

static void advance(struct parser *p)
{
    p->prev_end = p->tok.pos + p->tok.len;
    promql__lexer_next(&p->lx, &p->tok);
}

static void *alloc(struct parser *p, size_t n)
{
    void *m = hs_arena_calloc(p->arena, n);
    if (m == NULL)
        oom(p);
    return m;
}

static struct promql_node *new_node(struct parser *p, int kind, size_t pos)
{
    struct promql_node *n = alloc(p, sizeof(*n));
    if (n != NULL) {
        n->kind = kind;
        n->pos = pos;
        n->end = pos;
    }
    return n;
}

static bool vec_push(struct parser *p, struct ptrvec *v, void *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void **nv = alloc(p, cap * sizeof(void *));
        if (nv == NULL)
            return false;
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof(void *));
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

static char *tok_text(struct parser *p, const struct promql__token *t)
{
    char *s = hs_arena_strndup(p->arena, p->src + t->pos, t->len);
    if (s == NULL)
        oom(p);
    return s;
}

/* Unquotes a string token into the arena; NULL on error (reported). */
static char *tok_string(struct parser *p, const struct promql__token *t)
{
    char *out = hs_arena_alloc(p->arena, t->len + 1);
    size_t n = 0;
    if (out == NULL) {
        oom(p);
        return NULL;
    }
    if (!promql__unquote(p->src + t->pos, t->len, out, &n)) {
        errorf(p, t->pos, "error unquoting string \"%.*s\": invalid syntax",
               (int)HS_MIN(t->len, 80), p->src + t->pos);
        return NULL;
    }
    out[n] = '\0';
    return out;
}

static bool is_binop_tok(int t, int *op, int *prec)
{
    switch (t) {
    case PROMQL_T_LOR:
        *op = PROMQL_OP_OR, *prec = PREC_OR;
        return true;
    case PROMQL_T_LAND:
        *op = PROMQL_OP_AND, *prec = PREC_AND;
        return true;
    case PROMQL_T_LUNLESS:
        *op = PROMQL_OP_UNLESS, *prec = PREC_AND;
        return true;
    case PROMQL_T_EQLC:
        *op = PROMQL_OP_EQL, *prec = PREC_CMP;
        return true;
    case PROMQL_T_NEQ:
        *op = PROMQL_OP_NEQ, *prec = PREC_CMP;
        return true;
    case PROMQL_T_GTR:
        *op = PROMQL_OP_GTR, *prec = PREC_CMP;
        return true;
    case PROMQL_T_LSS:
        *op = PROMQL_OP_LSS, *prec = PREC_CMP;
        return true;
    case PROMQL_T_GTE:
        *op = PROMQL_OP_GTE, *prec = PREC_CMP;
        return true;
    case PROMQL_T_LTE:
        *op = PROMQL_OP_LTE, *prec = PREC_CMP;
        return true;
    case PROMQL_T_ADD:
        *op = PROMQL_OP_ADD, *prec = PREC_ADD;
        return true;
    case PROMQL_T_SUB:
        *op = PROMQL_OP_SUB, *prec = PREC_ADD;
        return true;
    case PROMQL_T_MUL:
        *op = PROMQL_OP_MUL, *prec = PREC_MUL;
        return true;
    case PROMQL_T_DIV:
        *op = PROMQL_OP_DIV, *prec = PREC_MUL;
        return true;
    case PROMQL_T_MOD:
        *op = PROMQL_OP_MOD, *prec = PREC_MUL;
        return true;
    case PROMQL_T_ATAN2:
        *op = PROMQL_OP_ATAN2, *prec = PREC_MUL;
        return true;
    case PROMQL_T_POW:
        *op = PROMQL_OP_POW, *prec = PREC_POW;
        return true;
    default:
        return false;
    }
}

static int agg_of_tok(int t)
{
    switch (t) {
    case PROMQL_T_SUM:
        return PROMQL_AGG_SUM;
    case PROMQL_T_AVG:
        return PROMQL_AGG_AVG;
    case PROMQL_T_COUNT:
        return PROMQL_AGG_COUNT;
    case PROMQL_T_MIN:
        return PROMQL_AGG_MIN;
    case PROMQL_T_MAX:
        return PROMQL_AGG_MAX;
    case PROMQL_T_GROUP:
        return PROMQL_AGG_GROUP;
    case PROMQL_T_STDDEV:
        return PROMQL_AGG_STDDEV;
    case PROMQL_T_STDVAR:
        return PROMQL_AGG_STDVAR;
    case PROMQL_T_TOPK:
        return PROMQL_AGG_TOPK;
    case PROMQL_T_BOTTOMK:
        return PROMQL_AGG_BOTTOMK;
    case PROMQL_T_COUNT_VALUES:
        return PROMQL_AGG_COUNT_VALUES;
    case PROMQL_T_QUANTILE:
        return PROMQL_AGG_QUANTILE;
    case PROMQL_T_LIMITK:
        return PROMQL_AGG_LIMITK;
    case PROMQL_T_LIMIT_RATIO:
        return PROMQL_AGG_LIMIT_RATIO;
    default:
        return 0;
    }
}

static bool agg_has_param(int op)
{
    return op == PROMQL_AGG_TOPK || op == PROMQL_AGG_BOTTOMK || op == PROMQL_AGG_COUNT_VALUES ||
           op == PROMQL_AGG_QUANTILE || op == PROMQL_AGG_LIMITK || op == PROMQL_AGG_LIMIT_RATIO;
}

/* Tokens that may name a metric (Prometheus' metric_identifier). */
static bool is_metric_ident_tok(int t)
{
    switch (t) {
    case PROMQL_T_IDENT:
    case PROMQL_T_METRIC_IDENT:
    case PROMQL_T_BY:
    case PROMQL_T_WITHOUT:
    case PROMQL_T_OFFSET:
    case PROMQL_T_LAND:
    case PROMQL_T_LOR:
    case PROMQL_T_LUNLESS:
    case PROMQL_T_FILL:
    case PROMQL_T_FILL_LEFT:
    case PROMQL_T_FILL_RIGHT:
    case PROMQL_T_START:
    case PROMQL_T_END:
    case PROMQL_T_STEP:
    case PROMQL_T_RANGE:
    case PROMQL_T_ANCHORED:
    case PROMQL_T_SMOOTHED:
    case PROMQL_T_MAX_OF:
    case PROMQL_T_MIN_OF:
        return true;
    default:
        return PROMQL_T_IS_AGG(t);
    }
}

/* Tokens that may be a label name in a grouping list (maybe_label). */
static bool is_label_tok(int t)
{
    if (t == PROMQL_T_IDENT || t == PROMQL_T_METRIC_IDENT || PROMQL_T_IS_AGG(t) ||
        PROMQL_T_IS_KW(t))
        return true;
    switch (t) {
    case PROMQL_T_LAND:
    case PROMQL_T_LOR:
    case PROMQL_T_LUNLESS:
    case PROMQL_T_ATAN2:
    case PROMQL_T_START:
    case PROMQL_T_END:
    case PROMQL_T_STEP:
    case PROMQL_T_RANGE:
    case PROMQL_T_MAX_OF:
    case PROMQL_T_MIN_OF:
        return true;
    default:
        return false;
    }
}

/* ---- numbers and durations --------------------------------------------- */

/* Parses a number literal as Prometheus does: an integer in Go's base-0
 * syntax (0x.., 0o.., 0b.., leading-0 octal) or else a float. */
static bool parse_number_buf(char *buf, size_t n, const char *s, double *out, char *why,
                             size_t why_len);

static bool parse_number(const char *s, size_t n, double *out, char *why, size_t why_len)
{
    char stack[512];
    if (n < sizeof(stack))
        return parse_number_buf(stack, n, s, out, why, why_len);
    /* Long literals (e.g. 1e300 printed in full) need a bigger buffer. */
    char *heap = hs_malloc(n + 1);
    if (heap == NULL) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    bool ok = parse_number_buf(heap, n, s, out, why, why_len);
    hs_free(heap);
    return ok;
}

static bool parse_number_buf(char *buf, size_t n, const char *s, double *out, char *why,
                             size_t why_len)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '_')
            buf[k++] = s[i];
    }
    buf[k] = '\0';
    /* Integers with a base prefix. */
    int base = 10;
    const char *digits = buf;
    if (k > 1 && buf[0] == '0') {
        char b = buf[1];
        if (b == 'x' || b == 'X')
            base = 16, digits = buf + 2;
        else if (b == 'o' || b == 'O')
            base = 8, digits = buf + 2;
        else if (b == 'b' || b == 'B')
            base = 2, digits = buf + 2;
        else
            base = 8, digits = buf + 1;
    }
    if (*digits != '\0') {
        uint64_t v = 0;
        bool ok = true, overflow = false;
        for (const char *c = digits; *c; c++) {
            int d;
            if (*c >= '0' && *c <= '9')
                d = *c - '0';
            else if (*c >= 'a' && *c <= 'f')
                d = *c - 'a' + 10;
            else if (*c >= 'A' && *c <= 'F')
                d = *c - 'A' + 10;
            else {
                ok = false;
                break;
            }
            if (d >= base) {
                ok = false;
                break;
            }
            if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
                overflow = true;
            v = v * (uint64_t)base + (uint64_t)d;
        }
        if (ok && !overflow && v <= (uint64_t)INT64_MAX) {
            *out = (double)v;
            return true;
        }
    }
    if (base == 16 && strpbrk(buf, "pP") == NULL) {
        /* Go's ParseFloat needs a 'p' exponent on hex mantissas. */
        snprintf(why, why_len, "strconv.ParseFloat: parsing \"%s\": invalid syntax", buf);
        return false;
    }
    if (base == 8 || base == 2) {
        if (buf[1] == 'o' || buf[1] == 'O' || buf[1] == 'b' || buf[1] == 'B') {
            snprintf(why, why_len, "strconv.ParseFloat: parsing \"%s\": invalid syntax", buf);
            return false;
        }
    }
    char *end = NULL;
    errno = 0;
    double d = strtod(buf, &end);
    if (end == buf || *end != '\0') {
        snprintf(why, why_len, "strconv.ParseFloat: parsing \"%s\": invalid syntax", buf);
        return false;
    }
    if (errno == ERANGE && isinf(d)) {
        snprintf(why, why_len, "strconv.ParseFloat: parsing \"%.60s\": value out of range", buf);
        return false;
    }
    *out = d;
    return true;
}

/*
 * Prometheus' model.ParseDuration: "0", or <digits><unit> pairs with units
 * y w d h m s ms in that order, each at most once.  Sets a message in 'why'
 * on failure.
 */
static bool parse_duration_units(const char *s, size_t n, int64_t *out_ms, char *why,
                                 size_t why_len)
{
    static const struct {
        const char *name;
        uint64_t ms;
        int pos;
    } units[] = {{"y", 365ull * 24 * 3600 * 1000, 1},
                 {"w", 7ull * 24 * 3600 * 1000, 2},
                 {"d", 24ull * 3600 * 1000, 3},
                 {"h", 3600ull * 1000, 4},
                 {"m", 60ull * 1000, 5},
                 {"s", 1000, 6},
                 {"ms", 1, 7}};
    if (n == 1 && s[0] == '0') {
        *out_ms = 0;
        return true;
    }
    if (n == 0) {
        snprintf(why, why_len, "empty duration string");
        return false;
    }
    uint64_t total = 0;
    int last = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] < '0' || s[i] > '9')
            goto invalid;
        uint64_t v = 0;
        bool big = false;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (v > (UINT64_MAX - 9) / 10)
                big = true;
            v = v * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
        if (big)
            goto invalid;
        size_t u0 = i;
        while (i < n && (s[i] < '0' || s[i] > '9'))
            i++;
        if (i == u0)
            goto invalid;
        int k = -1;
        for (size_t j = 0; j < HS_ARRAY_LEN(units); j++) {
            if (strlen(units[j].name) == i - u0 && memcmp(units[j].name, s + u0, i - u0) == 0)
                k = (int)j;
        }
        if (k < 0) {
            snprintf(why, why_len, "unknown unit \"%.*s\" in duration \"%.*s\"", (int)(i - u0),
                     s + u0, (int)HS_MIN(n, 64), s);
            return false;
        }
        if (units[k].pos <= last)
            goto invalid;
        last = units[k].pos;
        /* Prometheus keeps nanoseconds in an int64. */
        uint64_t max_ms = (uint64_t)INT64_MAX / 1000000;
        if (v > max_ms / units[k].ms || total + v * units[k].ms > max_ms) {
            snprintf(why, why_len, "duration out of range");
            return false;
        }
        total += v * units[k].ms;
    }
    *out_ms = (int64_t)total;
    return true;
invalid:
    snprintf(why, why_len, "not a valid duration string: \"%.*s\"", (int)HS_MIN(n, 64), s);
    return false;
}

int promql__parse_duration(const char *s, size_t len, int64_t *out_ms)
{
    char why[128];
    double d;
    if (s == NULL || out_ms == NULL)
        return HS_EINVAL;
    if (parse_duration_units(s, len, out_ms, why, sizeof(why)))
        return HS_OK;
    if (len > 0 && (s[0] == '.' || (s[0] >= '0' && s[0] <= '9')) &&
        parse_number(s, len, &d, why, sizeof(why)) && isfinite(d) && d >= 0 &&
        d <= (double)(INT64_MAX / 1000000)) {
        *out_ms = llround(d * 1000.0);
        return HS_OK;
    }
    return HS_EPARSE;
}

/* The value in seconds of a NUMBER or DURATION token; reports errors. */
static bool tok_seconds(struct parser *p, const struct promql__token *t, double *out)
{
    char why[160];
    if (t->type == PROMQL_T_DURATION) {
        int64_t ms;
        if (!parse_duration_units(p->src + t->pos, t->len, &ms, why, sizeof(why))) {
            errorf(p, t->pos, "%s", why);
            return false;
        }
        *out = (double)ms / 1000.0;
        return true;
    }
    if (!parse_number(p->src + t->pos, t->len, out, why, sizeof(why))) {
        errorf(p, t->pos, "error parsing number: %s", why);
        return false;
    }
    return true;
}

static bool duration_out_of_range(double secs)
{
    return !(secs <= 9223372036.854775807 && secs >= -9223372036.854775808);
}

static int64_t secs_to_ms(double secs)
{
    return (int64_t)llround(secs * 1000.0);
}

/* ---- duration expressions ------------------------------------------------
 * Values are seconds.  A constant expression is folded (secs); one that
 * uses step() or range() is also kept as a scalar expression tree (node) for
 * the evaluator, made of NUMBER (seconds), BINARY, UNARY minus, PAREN and
 * CALL of step/range/min_of/max_of.  'literal' tells whether the value is a
 * plain number literal (Prometheus checks those at parse time). */

struct dval {
    double secs;              /* the value when constant */
    bool literal;             /* a (signed) number or duration literal */
    bool constant;            /* no step()/range() inside */
    size_t pos;               /* where it starts */
    struct promql_node *node; /* the tree (always built) */
};

static bool dexpr(struct parser *p, int min_prec, struct dval *out);

static struct promql_node *dnum(struct parser *p, size_t pos, double secs)
{
    struct promql_node *n = new_node(p, PROMQL_NODE_NUMBER, pos);
    if (n != NULL) {
        n->u.num.value = secs;
        n->type = PROMQL_TYPE_SCALAR;
    }
    return n;
}

/* A call of a duration function (step, range, min_of, max_of). */
static struct promql_node *dcall(struct parser *p, const struct promql__token *t,
                                 struct promql_node **args, size_t nargs)
{
    char name[16];
    snprintf(name, sizeof(name), "%.*s", (int)HS_MIN(t->len, 15), p->src + t->pos);
    for (char *c = name; *c; c++)
        *c = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c;
    const struct promql_func *f = promql__func_lookup(name);
    if (f == NULL) {
        errorf(p, t->pos, "unknown function with name \"%s\"", name);
        return NULL;
    }
    struct promql_node *n = new_node(p, PROMQL_NODE_CALL, t->pos);
    struct promql_node **a = nargs ? alloc(p, nargs * sizeof(*a)) : NULL;
    if (n == NULL || (nargs && a == NULL))
        return NULL;
    for (size_t i = 0; i < nargs; i++)
        a[i] = args[i];
    n->u.call.func = f;
    n->u.call.args = a;
    n->u.call.nargs = nargs;
    n->type = PROMQL_TYPE_SCALAR;
    n->end = p->prev_end;
    return n;
}

static bool expect_tok(struct parser *p, int type, const char *expected)
{
    if (p->tok.type != type) {
        unexpected(p, "duration expression", expected);
        return false;
    }
    advance(p);
    return true;
}

static bool dprimary(struct parser *p, struct dval *out)
{
    struct promql__token t = p->tok;
    memset(out, 0, sizeof(*out));
    out->pos = t.pos;
    out->constant = true;
    switch (t.type) {
    case PROMQL_T_NUMBER:
    case PROMQL_T_DURATION:
        advance(p);
        if (!tok_seconds(p, &t, &out->secs))
            return false;
        if (duration_out_of_range(out->secs)) {
            errorf(p, t.pos, "duration out of range");
            return false;
        }
        out->literal = true;
        out->node = dnum(p, t.pos, out->secs);
        return out->node != NULL;
    case PROMQL_T_ADD:
    case PROMQL_T_SUB: {
        advance(p);
        struct dval v;
        if (!dexpr(p, PREC_POW, &v))
            return false;
        bool neg = t.type == PROMQL_T_SUB;
        *out = v;
        out->pos = t.pos;
        out->secs = neg ? -v.secs : v.secs;
        if (v.literal && duration_out_of_range(out->secs)) {
            errorf(p, t.pos, "duration out of range");
            return false;
        }
        if (!neg)
            return true;
        if (v.node->kind == PROMQL_NODE_NUMBER) {
            v.node->u.num.value = -v.node->u.num.value;
            v.node->pos = t.pos;
            return true;
        }
        out->node = new_node(p, PROMQL_NODE_UNARY, t.pos);
        if (out->node == NULL)
            return false;
        out->node->u.unary.op = PROMQL_OP_SUB;
        out->node->u.unary.expr = v.node;
        out->node->type = PROMQL_TYPE_SCALAR;
        out->node->end = v.node->end;
        return true;
    }
    case PROMQL_T_LPAREN: {
        advance(p);
        struct dval v;
        if (!dexpr(p, 0, &v) || !expect_tok(p, PROMQL_T_RPAREN, "\")\""))
            return false;
        *out = v;
        out->pos = t.pos;
        out->literal = false;
        out->node = new_node(p, PROMQL_NODE_PAREN, t.pos);
        if (out->node == NULL)
            return false;
        out->node->u.paren.expr = v.node;
        out->node->type = PROMQL_TYPE_SCALAR;
        out->node->end = p->prev_end;
        return true;
    }
    case PROMQL_T_MIN_OF:
    case PROMQL_T_MAX_OF: {
        advance(p);
        struct dval a, b;
        if (!expect_tok(p, PROMQL_T_LPAREN, "\"(\"") || !dexpr(p, 0, &a) ||
            !expect_tok(p, PROMQL_T_COMMA, "\",\"") || !dexpr(p, 0, &b) ||
            !expect_tok(p, PROMQL_T_RPAREN, "\")\""))
            return false;
        out->secs = t.type == PROMQL_T_MIN_OF ? fmin(a.secs, b.secs) : fmax(a.secs, b.secs);
        out->constant = a.constant && b.constant;
        struct promql_node *args[2] = {a.node, b.node};
        out->node = dcall(p, &t, args, 2);
        return out->node != NULL;
    }
    case PROMQL_T_STEP:
    case PROMQL_T_RANGE:
        advance(p);
        if (p->tok.type != PROMQL_T_LPAREN)
            return false;
        advance(p);
        if (!expect_tok(p, PROMQL_T_RPAREN, "\")\""))
            return false;
        out->constant = false;
        out->node = dcall(p, &t, NULL, 0);
        return out->node != NULL;
    default:
        return false;
    }
}

static bool dexpr(struct parser *p, int min_prec, struct dval *out)
{
    if (++p->depth > PROMQL_MAX_DEPTH) {
        errorf(p, p->tok.pos, "expression nesting is deeper than %d levels", PROMQL_MAX_DEPTH);
        return false;
    }
    bool ok = dprimary(p, out);
    while (ok) {
        int op, prec;
        struct promql__token t = p->tok;
        if (!is_binop_tok(t.type, &op, &prec) || prec < PREC_ADD || prec < min_prec)
            break;
        advance(p);
        struct dval rhs;
        if (!dexpr(p, op == PROMQL_OP_POW ? prec : prec + 1, &rhs)) {
            ok = false;
            break;
        }
        double a = out->secs, b = rhs.secs;
        switch (op) {
        case PROMQL_OP_ADD:
            a += b;
            break;
        case PROMQL_OP_SUB:
            a -= b;
            break;
        case PROMQL_OP_MUL:
            a *= b;
            break;
        case PROMQL_OP_DIV:
            if (rhs.literal && b == 0) {
                errorf(p, t.pos, "division by zero");
                ok = false;
            }
            a /= b;
            break;
        case PROMQL_OP_MOD:
            if (rhs.literal && b == 0) {
                errorf(p, t.pos, "modulo by zero");
                ok = false;
            }
            a = fmod(a, b);
            break;
        case PROMQL_OP_POW:
            a = pow(a, b);
            break;
        default:
            errorf(p, t.pos, "unexpected %s in duration expression", promql__binop_name(op));
            ok = false;
        }
        struct promql_node *n = ok ? new_node(p, PROMQL_NODE_BINARY, out->node->pos) : NULL;
        if (n == NULL) {
            ok = false;
            break;
        }
        n->u.bin.op = op;
        n->u.bin.lhs = out->node;
        n->u.bin.rhs = rhs.node;
        n->type = PROMQL_TYPE_SCALAR;
        n->end = rhs.node->end;
        out->node = n;
        out->secs = a;
        out->literal = false;
        out->constant = out->constant && rhs.constant;
    }
    p->depth--;
    return ok;
}

/* The result of a duration expression: folded into *ms when constant,
 * else the tree in *expr (and *ms = 0). */
static bool dresult(struct parser *p, const struct dval *v, bool positive, int64_t *ms,
                    struct promql_node **expr)
{
    *expr = NULL;
    *ms = 0;
    if (!v->constant) {
        *expr = v->node;
        return true;
    }
    if (duration_out_of_range(v->secs)) {
        errorf(p, v->pos, "duration out of range");
        return false;
    }
    if (positive && (!(v->secs > 0) || secs_to_ms(v->secs) <= 0)) {
        errorf(p, v->pos, "duration must be greater than 0");
        return false;
    }
    *ms = secs_to_ms(v->secs);
    return true;
}

/* A duration inside [...]: must be > 0.  On a missing operand, reports the
 * lookahead with 'context'/'expected'. */
static bool bracket_duration(struct parser *p, const char *context, const char *expected,
                             int64_t *ms, struct promql_node **expr)
{
    struct dval v;
    if (!dexpr(p, 0, &v)) {
        if (!p->failed)
            unexpected(p, context, expected);
        return false;
    }
    return dresult(p, &v, true, ms, expr);
}

/* ---- expressions ---------------------------------------------------------- */

static struct promql_node *parse_expr(struct parser *p, int min_prec);

/* Where a node's offset, @ and range live, for the postfix modifiers. */
static struct promql_node *selector_of(struct promql_node *n)
{
    if (n->kind == PROMQL_NODE_VECTOR)
        return n;
    if (n->kind == PROMQL_NODE_MATRIX)
        return n->u.matrix.vector;
    return NULL;
}

static bool parse_offset(struct parser *p, struct promql_node *n)
{
    advance(p); /* offset */
    struct dval v;
    bool ok;
    switch (p->tok.type) {
    case PROMQL_T_NUMBER:
    case PROMQL_T_DURATION:
    case PROMQL_T_LPAREN:
    case PROMQL_T_MIN_OF:
    case PROMQL_T_MAX_OF:
    case PROMQL_T_STEP:
    case PROMQL_T_RANGE:
    case PROMQL_T_ADD:
    case PROMQL_T_SUB:
        /* Only a signed operand: "foo offset -2^2" is "(foo offset -2)^2";
         * dprimary's sign handling would take the ^, so do it here. */
        if (p->tok.type == PROMQL_T_ADD || p->tok.type == PROMQL_T_SUB) {
            struct promql__token sign = p->tok;
            advance(p);
            ok = dprimary(p, &v);
            if (ok && sign.type == PROMQL_T_SUB) {
                v.secs = -v.secs;
                if (v.node->kind == PROMQL_NODE_NUMBER) {
                    v.node->u.num.value = -v.node->u.num.value;
                } else {
                    struct promql_node *u = new_node(p, PROMQL_NODE_UNARY, sign.pos);
                    if (u == NULL)
                        return false;
                    u->u.unary.op = PROMQL_OP_SUB;
                    u->u.unary.expr = v.node;
                    u->type = PROMQL_TYPE_SCALAR;
                    u->end = v.node->end;
                    v.node = u;
                }
            }
            v.pos = sign.pos;
        } else {
            ok = dprimary(p, &v);
        }
        break;
    default:
        ok = false;
    }
    if (!ok) {
        if (!p->failed)
            unexpected(p, "offset", "number, duration, step(), or range()");
        return false;
    }
    int64_t ms;
    struct promql_node *expr;
    if (!dresult(p, &v, false, &ms, &expr))
        return false;
    struct promql_node *sel = selector_of(n);
    int64_t *slot;
    struct promql_node **eslot;
    if (sel != NULL) {
        slot = &sel->u.sel.offset_ms;
        eslot = &sel->u.sel.offset_expr;
    } else if (n->kind == PROMQL_NODE_SUBQUERY) {
        slot = &n->u.subquery.offset_ms;
        eslot = &n->u.subquery.offset_expr;
    } else {
        errorf(p, n->pos,
               "offset modifier must be preceded by an instant vector selector or "
               "range vector selector or a subquery");
        return false;
    }
    if (*slot != 0 || *eslot != NULL) {
        errorf(p, n->pos, "offset may not be set multiple times");
        return false;
    }
    *slot = ms;
    *eslot = expr;
    return true;
}

static bool parse_at(struct parser *p, struct promql_node *n)
{
    advance(p); /* @ */
    struct promql__token t = p->tok;
    int at = PROMQL_AT_TIME;
    double ts = 0;
    if (t.type == PROMQL_T_START || t.type == PROMQL_T_END) {
        advance(p);
        if (p->tok.type != PROMQL_T_LPAREN) {
            unexpected(p, "@", "timestamp");
            return false;
        }
        advance(p);
        if (p->tok.type != PROMQL_T_RPAREN) {
            unexpected(p, "@", "timestamp");
            return false;
        }
        advance(p);
        at = t.type == PROMQL_T_START ? PROMQL_AT_START : PROMQL_AT_END;
    } else {
        bool neg = false;
        if (t.type == PROMQL_T_ADD || t.type == PROMQL_T_SUB) {
            neg = t.type == PROMQL_T_SUB;
            advance(p);
        }
        struct promql__token num = p->tok;
        if (num.type != PROMQL_T_NUMBER && num.type != PROMQL_T_DURATION) {
            unexpected(p, "@", "timestamp");
            return false;
        }
        advance(p);
        if (!tok_seconds(p, &num, &ts))
            return false;
        if (neg)
            ts = -ts;
        if (isnan(ts) || isinf(ts) || ts >= 9223372036854775807.0 || ts <= -9223372036854775808.0) {
            if (isnan(ts))
                errorf(p, n->pos, "timestamp out of bounds for @ modifier: NaN");
            else if (isinf(ts))
                errorf(p, n->pos, "timestamp out of bounds for @ modifier: %sInf",
                       ts > 0 ? "+" : "-");
            else
                errorf(p, n->pos, "timestamp out of bounds for @ modifier: %f", ts);
            return false;
        }
    }
    struct promql_node *sel = selector_of(n);
    int *slot;
    int64_t *ms;
    if (sel != NULL) {
        slot = &sel->u.sel.at;
        ms = &sel->u.sel.at_ms;
    } else if (n->kind == PROMQL_NODE_SUBQUERY) {
        slot = &n->u.subquery.at;
        ms = &n->u.subquery.at_ms;
    } else {
        errorf(p, n->pos,
               "@ modifier must be preceded by an instant vector selector or range "
               "vector selector or a subquery");
        return false;
    }
    if (*slot != PROMQL_AT_NONE) {
        errorf(p, n->pos, "@ <timestamp> may not be set multiple times");
        return false;
    }
    *slot = at;
    if (at == PROMQL_AT_TIME) {
        double v = ts * 1000.0;
        if (v >= 9223372036854775807.0 || v <= -9223372036854775808.0) {
            errorf(p, n->pos, "timestamp out of bounds for @ modifier: %f", ts);
            return false;
        }
        *ms = (int64_t)llround(v);
    }
    return true;
}

/* expr [ range ] or expr [ range : step? ] */
static struct promql_node *parse_range(struct parser *p, struct promql_node *n)
{
    size_t lb = p->tok.pos;
    advance(p); /* [ */
    int64_t range_ms = 0, step_ms = 0;
    struct promql_node *range_expr = NULL, *step_expr = NULL;
    if (!bracket_duration(p, "subquery or range selector", "number, duration, step(), or range()",
                          &range_ms, &range_expr))
        return NULL;
    if (p->tok.type == PROMQL_T_RBRACKET) {
        size_t end = p->tok.pos + 1;
        advance(p);
        if (n->kind != PROMQL_NODE_VECTOR) {
            errorf(p, lb, "ranges only allowed for vector selectors");
            return NULL;
        }
        if (n->u.sel.offset_ms != 0 || n->u.sel.offset_expr != NULL) {
            errorf(p, lb, "no offset modifiers allowed before range");
            return NULL;
        }
        if (n->u.sel.at != PROMQL_AT_NONE) {
            errorf(p, lb, "no @ modifiers allowed before range");
            return NULL;
        }
        struct promql_node *m = new_node(p, PROMQL_NODE_MATRIX, n->pos);
        if (m == NULL)
            return NULL;
        m->u.matrix.vector = n;
        m->u.matrix.range_ms = range_ms;
        m->u.matrix.range_expr = range_expr;
        m->type = PROMQL_TYPE_MATRIX;
        m->end = end;
        return m;
    }
    if (p->tok.type != PROMQL_T_COLON) {
        unexpected(p, "subquery or range", "\":\" or \"]\"");
        return NULL;
    }
    advance(p);
    if (p->tok.type != PROMQL_T_RBRACKET) {
        if (!bracket_duration(p, "subquery selector", "number, duration, step(), range(), or \"]\"",
                              &step_ms, &step_expr))
            return NULL;
        if (p->tok.type != PROMQL_T_RBRACKET) {
            unexpected(p, "subquery selector", "\"]\"");
            return NULL;
        }
    }
    size_t end = p->tok.pos + 1;
    advance(p);
    struct promql_node *s = new_node(p, PROMQL_NODE_SUBQUERY, n->pos);
    if (s == NULL)
        return NULL;
    s->u.subquery.expr = n;
    s->u.subquery.range_ms = range_ms;
    s->u.subquery.step_ms = step_ms;
    s->u.subquery.range_expr = range_expr;
    s->u.subquery.step_expr = step_expr;
    s->type = PROMQL_TYPE_MATRIX;
    s->end = end;
    return s;
}

static struct promql_node *parse_postfix(struct parser *p, struct promql_node *n)
{
    int extra = 0; /* subqueries stacked here count as nesting */
    while (n != NULL && !p->failed) {
        switch (p->tok.type) {
        case PROMQL_T_LBRACKET:
            if (++p->depth > PROMQL_MAX_DEPTH) {
                errorf(p, p->tok.pos, "expression nesting is deeper than %d levels",
                       PROMQL_MAX_DEPTH);
                n = NULL;
                break;
            }
            extra++;
            n = parse_range(p, n);
            break;
        case PROMQL_T_OFFSET:
            if (!parse_offset(p, n))
                return NULL;
            break;
        case PROMQL_T_AT:
            if (!parse_at(p, n))
                return NULL;
            break;
        case PROMQL_T_ANCHORED:
        case PROMQL_T_SMOOTHED:
            errorf(p, p->tok.pos, "the %.*s modifier is not supported", (int)p->tok.len,
                   p->src + p->tok.pos);
            return NULL;
        default:
            p->depth -= extra;
            return n;
        }
        if (n != NULL)
            n->end = p->prev_end;
    }
    p->depth -= extra;
    return p->failed ? NULL : n;
}

/* ( label, label, ... ) of by/without/on/ignoring/group_x. */
static bool parse_grouping(struct parser *p, const char ***labels, size_t *n)
{
    struct ptrvec v = {0};
    if (p->tok.type != PROMQL_T_LPAREN) {
        unexpected(p, "grouping opts", "\"(\"");
        return false;
    }
    advance(p);
    for (;;) {
        if (p->tok.type == PROMQL_T_RPAREN)
            break;
        struct promql__token t = p->tok;
        char *name;
        if (t.type == PROMQL_T_STRING) {
            name = tok_string(p, &t);
            if (name == NULL)
                return false;
            if (name[0] == '\0' || !promql__utf8_valid(name, strlen(name))) {
                errorf(p, t.pos, "invalid label name for grouping: \"%s\"", name);
                return false;
            }
        } else if (is_label_tok(t.type)) {
            name = tok_text(p, &t);
        } else {
            unexpected(p, "grouping opts", "label");
            return false;
        }
        if (name == NULL || !vec_push(p, &v, name))
            return false;
        advance(p);
        if (p->tok.type == PROMQL_T_COMMA) {
            advance(p);
            if (p->tok.type == PROMQL_T_RPAREN)
                break;
            continue;
        }
        if (p->tok.type != PROMQL_T_RPAREN) {
            unexpected(p, "grouping opts", "\",\" or \")\"");
            return false;
        }
    }
    advance(p); /* ) */
    *labels = (const char **)v.v;
    *n = v.n;
    if (*labels == NULL) {
        *labels = alloc(p, sizeof(char *));
        if (*labels == NULL)
            return false;
    }
    return true;
}

/* ( expr, expr, ... ) of calls and aggregations. */
static bool parse_args(struct parser *p, struct ptrvec *args)
{
    advance(p); /* ( */
    if (p->tok.type == PROMQL_T_RPAREN) {
        advance(p);
        return true;
    }
    for (;;) {
        struct promql_node *a = parse_expr(p, 0);
        if (a == NULL || !vec_push(p, args, a))
            return false;
        if (p->tok.type == PROMQL_T_COMMA) {
            size_t comma = p->tok.pos;
            advance(p);
            if (p->tok.type == PROMQL_T_RPAREN) {
                errorf(p, comma, "trailing commas not allowed in function call args");
                return false;
            }
            continue;
        }
        if (p->tok.type == PROMQL_T_RPAREN) {
            advance(p);
            return true;
        }
        unexpected(p, NULL, NULL);
        return false;
    }
}

static struct promql_node *parse_aggregate(struct parser *p, struct promql__token op_tok)
{
    struct promql_node *n = new_node(p, PROMQL_NODE_AGGREGATE, op_tok.pos);
    if (n == NULL)
        return NULL;
    n->u.agg.op = agg_of_tok(op_tok.type);
    if (p->tok.type == PROMQL_T_BY || p->tok.type == PROMQL_T_WITHOUT) {
        n->u.agg.without = p->tok.type == PROMQL_T_WITHOUT;
        n->u.agg.has_grouping = true;
        advance(p);
        if (!parse_grouping(p, &n->u.agg.grouping, &n->u.agg.ngrouping))
            return NULL;
    }
    if (p->tok.type != PROMQL_T_LPAREN) {
        unexpected(p, "aggregation", NULL);
        return NULL;
    }
    struct ptrvec args = {0};
    if (!parse_args(p, &args))
        return NULL;
    n->end = p->prev_end;
    if (!n->u.agg.has_grouping && (p->tok.type == PROMQL_T_BY || p->tok.type == PROMQL_T_WITHOUT)) {
        n->u.agg.without = p->tok.type == PROMQL_T_WITHOUT;
        n->u.agg.has_grouping = true;
        advance(p);
        if (!parse_grouping(p, &n->u.agg.grouping, &n->u.agg.ngrouping))
            return NULL;
        n->end = p->prev_end;
    }
    if (args.n == 0) {
        errorf(p, n->pos, "no arguments for aggregate expression provided");
        return NULL;
    }
    size_t want = agg_has_param(n->u.agg.op) ? 2 : 1;
    if (args.n != want) {
        errorf(p, n->pos,
               "wrong number of arguments for aggregate expression provided, expected %zu, got %zu",
               want, args.n);
        return NULL;
    }
    if (want == 2)
        n->u.agg.param = args.v[0];
    n->u.agg.expr = args.v[want - 1];
    n->type = PROMQL_TYPE_VECTOR;
    return n;
}

static struct promql_node *parse_call(struct parser *p, struct promql__token name_tok)
{
    char *name = tok_text(p, &name_tok);
    if (name == NULL)
        return NULL;
    const struct promql_func *f = promql__func_lookup(name);
    if (f == NULL) {
        errorf(p, name_tok.pos, "unknown function with name \"%s\"", name);
        return NULL;
    }
    struct promql_node *n = new_node(p, PROMQL_NODE_CALL, name_tok.pos);
    if (n == NULL)
        return NULL;
    struct ptrvec args = {0};
    if (!parse_args(p, &args))
        return NULL;
    n->u.call.func = f;
    n->u.call.args = (struct promql_node **)args.v;
    n->u.call.nargs = args.n;
    n->type = f->ret_type;
    n->end = p->prev_end;
    return n;
}

static bool parse_matchers(struct parser *p, struct ptrvec *ms)
{
    advance(p); /* { */
    for (;;) {
        if (p->tok.type == PROMQL_T_RBRACE)
            break;
        struct promql__token t = p->tok;
        char *name;
        if (t.type == PROMQL_T_IDENT) {
            name = tok_text(p, &t);
        } else if (t.type == PROMQL_T_STRING) {
            name = tok_string(p, &t);
        } else {
            unexpected(p, "label matching", "identifier or \"}\"");
            return false;
        }
        if (name == NULL)
            return false;
        advance(p);
        struct promql_label_matcher *m = alloc(p, sizeof(*m));
        if (m == NULL)
            return false;
        int op = -1;
        switch (p->tok.type) {
        case PROMQL_T_ASSIGN:
            op = PROMQL_MATCH_EQ;
            break;
        case PROMQL_T_NEQ:
            op = PROMQL_MATCH_NEQ;
            break;
        case PROMQL_T_EQL_REGEX:
            op = PROMQL_MATCH_RE;
            break;
        case PROMQL_T_NEQ_REGEX:
            op = PROMQL_MATCH_NRE;
            break;
        default:
            break;
        }
        if (op < 0 && t.type == PROMQL_T_IDENT) {
            unexpected(p, "label matching", "label matching operator");
            return false;
        }
        if (op < 0) {
            /* {"metric.name"}: a quoted metric name. */
            m->op = PROMQL_MATCH_EQ;
            m->name = "__name__";
            m->value = name;
        } else {
            advance(p);
            struct promql__token v = p->tok;
            if (v.type != PROMQL_T_STRING) {
                unexpected(p, "label matching", "string");
                return false;
            }
            m->op = op;
            m->name = name;
            m->value = tok_string(p, &v);
            if (m->value == NULL)
                return false;
            advance(p);
        }
        if (!vec_push(p, ms, m))
            return false;
        if (p->tok.type == PROMQL_T_COMMA) {
            advance(p);
            continue;
        }
        if (p->tok.type != PROMQL_T_RBRACE) {
            unexpected(p, "label matching", "\",\" or \"}\"");
            return false;
        }
    }
    advance(p); /* } */
    return true;
}

/* metric_name, metric_name{...} or {...}; 'name_tok' is NULL for the last. */
static struct promql_node *parse_selector(struct parser *p, const struct promql__token *name_tok)
{
    size_t pos = name_tok ? name_tok->pos : p->tok.pos;
    struct promql_node *n = new_node(p, PROMQL_NODE_VECTOR, pos);
    if (n == NULL)
        return NULL;
    struct ptrvec ms = {0};
    if (p->tok.type == PROMQL_T_LBRACE && !parse_matchers(p, &ms))
        return NULL;
    if (name_tok != NULL) {
        struct promql_label_matcher *m = alloc(p, sizeof(*m));
        char *name = tok_text(p, name_tok);
        if (m == NULL || name == NULL || !vec_push(p, &ms, m))
            return NULL;
        m->op = PROMQL_MATCH_EQ;
        m->name = "__name__";
        m->value = name;
        n->u.sel.name = name;
    }
    struct promql_label_matcher *arr = alloc(p, (ms.n ? ms.n : 1) * sizeof(*arr));
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < ms.n; i++)
        arr[i] = *(struct promql_label_matcher *)ms.v[i];
    n->u.sel.matchers = arr;
    n->u.sel.nmatchers = ms.n;
    n->type = PROMQL_TYPE_VECTOR;
    n->end = p->prev_end;
    return n;
}

static struct promql_node *parse_primary(struct parser *p)
{
    struct promql__token t = p->tok;
    struct promql_node *n = NULL;
    switch (t.type) {
    case PROMQL_T_NUMBER:
    case PROMQL_T_DURATION:
        advance(p);
        n = new_node(p, PROMQL_NODE_NUMBER, t.pos);
        if (n == NULL || !tok_seconds(p, &t, &n->u.num.value))
            return NULL;
        n->type = PROMQL_TYPE_SCALAR;
        n->end = t.pos + t.len;
        break;
    case PROMQL_T_STRING:
        advance(p);
        n = new_node(p, PROMQL_NODE_STRING, t.pos);
        if (n == NULL || (n->u.str.value = tok_string(p, &t)) == NULL)
            return NULL;
        n->type = PROMQL_TYPE_STRING;
        n->end = t.pos + t.len;
        break;
    case PROMQL_T_LPAREN: {
        advance(p);
        struct promql_node *e = parse_expr(p, 0);
        if (e == NULL)
            return NULL;
        if (p->tok.type != PROMQL_T_RPAREN) {
            unexpected(p, NULL, NULL);
            return NULL;
        }
        advance(p);
        n = new_node(p, PROMQL_NODE_PAREN, t.pos);
        if (n == NULL)
            return NULL;
        n->u.paren.expr = e;
        n->type = e->type;
        n->end = p->prev_end;
        break;
    }
    case PROMQL_T_LBRACE:
        n = parse_selector(p, NULL);
        break;
    case PROMQL_T_EOF:
        unexpected(p, NULL, NULL);
        return NULL;
    default:
        advance(p);
        if (PROMQL_T_IS_AGG(t.type) &&
            (p->tok.type == PROMQL_T_LPAREN || p->tok.type == PROMQL_T_BY ||
             p->tok.type == PROMQL_T_WITHOUT)) {
            n = parse_aggregate(p, t);
        } else if ((t.type == PROMQL_T_IDENT || t.type == PROMQL_T_START ||
                    t.type == PROMQL_T_END || t.type == PROMQL_T_STEP || t.type == PROMQL_T_RANGE ||
                    t.type == PROMQL_T_MAX_OF || t.type == PROMQL_T_MIN_OF) &&
                   p->tok.type == PROMQL_T_LPAREN) {
            n = parse_call(p, t);
        } else if (is_metric_ident_tok(t.type)) {
            n = parse_selector(p, &t);
        } else {
            /* Report the token itself, not its successor. */
            p->tok = t;
            unexpected(p, NULL, NULL);
            return NULL;
        }
        break;
    }
    return parse_postfix(p, n);
}

static struct promql_node *parse_unary(struct parser *p)
{
    struct promql__token t = p->tok;
    if (t.type != PROMQL_T_ADD && t.type != PROMQL_T_SUB)
        return parse_primary(p);
    advance(p);
    struct promql_node *e = parse_expr(p, PREC_POW);
    if (e == NULL)
        return NULL;
    if (e->kind == PROMQL_NODE_NUMBER) {
        if (t.type == PROMQL_T_SUB)
            e->u.num.value = -e->u.num.value;
        e->pos = t.pos;
        return e;
    }
    struct promql_node *n = new_node(p, PROMQL_NODE_UNARY, t.pos);
    if (n == NULL)
        return NULL;
    n->u.unary.op = t.type == PROMQL_T_SUB ? PROMQL_OP_SUB : PROMQL_OP_ADD;
    n->u.unary.expr = e;
    n->type = e->type;
    n->end = e->end;
    return n;
}

/* ( [+-] number ) after fill, fill_left or fill_right. */
static bool parse_fill_value(struct parser *p, double *v)
{
    if (p->tok.type != PROMQL_T_LPAREN) {
        unexpected(p, "fill modifier", "\"(\"");
        return false;
    }
    advance(p);
    bool neg = false;
    if (p->tok.type == PROMQL_T_ADD || p->tok.type == PROMQL_T_SUB) {
        neg = p->tok.type == PROMQL_T_SUB;
        advance(p);
    }
    struct promql__token t = p->tok;
    if (t.type != PROMQL_T_NUMBER && t.type != PROMQL_T_DURATION) {
        unexpected(p, "fill modifier", "number");
        return false;
    }
    advance(p);
    if (!tok_seconds(p, &t, v))
        return false;
    if (neg)
        *v = -*v;
    if (p->tok.type != PROMQL_T_RPAREN) {
        unexpected(p, "fill modifier", "\")\"");
        return false;
    }
    advance(p);
    return true;
}

/* bool, on/ignoring (...), group_left/group_right [(...)] after an operator. */
/* ... and fill(v), fill_left(v), fill_right(v). */
static bool parse_bin_modifiers(struct parser *p, struct promql_node *n)
{
    if (p->tok.type == PROMQL_T_BOOL) {
        n->u.bin.return_bool = true;
        advance(p);
    }
    if (p->tok.type == PROMQL_T_ON || p->tok.type == PROMQL_T_IGNORING) {
        n->u.bin.on = p->tok.type == PROMQL_T_ON;
        n->u.bin.has_matching = true;
        advance(p);
        if (!parse_grouping(p, &n->u.bin.match_labels, &n->u.bin.nmatch_labels))
            return false;
        if (p->tok.type == PROMQL_T_GROUP_LEFT || p->tok.type == PROMQL_T_GROUP_RIGHT) {
            n->u.bin.card = p->tok.type == PROMQL_T_GROUP_LEFT ? PROMQL_CARD_MANY_TO_ONE
                                                               : PROMQL_CARD_ONE_TO_MANY;
            advance(p);
            if (p->tok.type == PROMQL_T_LPAREN &&
                !parse_grouping(p, &n->u.bin.include, &n->u.bin.ninclude))
                return false;
        }
    }
    /* fill(v) | fill_left(v) [fill_right(v)] | fill_right(v) [fill_left(v)] */
    int first = p->tok.type;
    if (first == PROMQL_T_FILL) {
        double v;
        advance(p);
        if (!parse_fill_value(p, &v))
            return false;
        n->u.bin.fill_left_set = n->u.bin.fill_right_set = true;
        n->u.bin.fill_left = n->u.bin.fill_right = v;
        return true;
    }
    for (int i = 0; i < 2; i++) {
        int t = p->tok.type;
        bool left = t == PROMQL_T_FILL_LEFT;
        if ((t != PROMQL_T_FILL_LEFT && t != PROMQL_T_FILL_RIGHT) || (i == 1 && t == first))
            break;
        advance(p);
        double v;
        if (!parse_fill_value(p, &v))
            return false;
        if (left) {
            n->u.bin.fill_left_set = true;
            n->u.bin.fill_left = v;
        } else {
            n->u.bin.fill_right_set = true;
            n->u.bin.fill_right = v;
        }
    }
    return true;
}

static struct promql_node *parse_expr(struct parser *p, int min_prec)
{
    if (++p->depth > PROMQL_MAX_DEPTH) {
        errorf(p, p->tok.pos, "expression nesting is deeper than %d levels", PROMQL_MAX_DEPTH);
        return NULL;
    }
    struct promql_node *lhs = parse_unary(p);
    while (lhs != NULL) {
        int op, prec;
        struct promql__token t = p->tok;
        if (!is_binop_tok(t.type, &op, &prec) || prec < min_prec)
            break;
        advance(p);
        struct promql_node *n = new_node(p, PROMQL_NODE_BINARY, lhs->pos);
        if (n == NULL || !parse_bin_modifiers(p, n)) {
            lhs = NULL;
            break;
        }
        struct promql_node *rhs = parse_expr(p, op == PROMQL_OP_POW ? prec : prec + 1);
        if (rhs == NULL) {
            lhs = NULL;
            break;
        }
        n->u.bin.op = op;
        n->u.bin.lhs = lhs;
        n->u.bin.rhs = rhs;
        n->end = rhs->end;
        n->type = (lhs->type == PROMQL_TYPE_SCALAR && rhs->type == PROMQL_TYPE_SCALAR)
                      ? PROMQL_TYPE_SCALAR
                      : PROMQL_TYPE_VECTOR;
        lhs = n;
    }
    p->depth--;
    return lhs;
}

/* ---- type checking ------------------------------------------------------- */

static const char *doc_type(int t)
{
    switch (t) {
    case PROMQL_TYPE_SCALAR:
        return "scalar";
    case PROMQL_TYPE_VECTOR:
        return "instant vector";
    case PROMQL_TYPE_MATRIX:
        return "range vector";
    case PROMQL_TYPE_STRING:
        return "string";
    default:
        return "none";
    }
}

static const char *value_type(int t)
{
    switch (t) {
    case PROMQL_TYPE_SCALAR:
        return "scalar";
    case PROMQL_TYPE_VECTOR:
        return "vector";
    case PROMQL_TYPE_MATRIX:
        return "matrix";
    case PROMQL_TYPE_STRING:
        return "string";
    default:
        return "none";
    }
}

/* Does the regex (anchored, '.' matching newline) match ""?  Reports an
 * invalid regex.  Returns -1 on error, 0/1 otherwise. */
static int regex_matches_empty(struct parser *p, const struct promql_node *sel,
                               const struct promql_label_matcher *m)
{
    size_t n = strlen(m->value);
    char *pat = hs_arena_alloc(p->arena, n + 16);
    if (pat == NULL) {
        oom(p);
        return -1;
    }
    memcpy(pat, "^(?s:", 5);
    memcpy(pat + 5, m->value, n);
    memcpy(pat + 5 + n, ")$", 3);
    int ec;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, n + 7, PCRE2_UTF, &ec, &eoff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR buf[160];
        pcre2_get_error_message(ec, buf, sizeof(buf));
        errorf(p, sel->pos, "error parsing regexp: %s: `%s`", (const char *)buf, m->value);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? pcre2_match(re, (PCRE2_SPTR) "", 0, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (md == NULL) {
        oom(p);
        return -1;
    }
    return rc >= 0;
}

static int check(struct parser *p, struct promql_node *n);

static void expect_type(struct parser *p, struct promql_node *n, int want, const char *context)
{
    int t = check(p, n);
    if (t != want)
        errorf(p, n->pos, "expected type %s in %s, got %s", doc_type(want), context, doc_type(t));
}

/* The position of a binary node's operator: first non-space after the lhs. */
static size_t op_pos(struct parser *p, const struct promql_node *n)
{
    size_t i = n->u.bin.lhs->end;
    while (i < p->len &&
           (p->src[i] == ' ' || p->src[i] == '\t' || p->src[i] == '\n' || p->src[i] == '\r'))
        i++;
    return i;
}

static void check_selector(struct parser *p, struct promql_node *n, bool bypass_empty)
{
    const struct promql_label_matcher *ms = n->u.sel.matchers;
    size_t nm = n->u.sel.nmatchers;
    /* Invalid regexes first: Prometheus rejects them while building. */
    bool not_empty = false;
    for (size_t i = 0; i < nm; i++) {
        int empty;
        switch (ms[i].op) {
        case PROMQL_MATCH_EQ:
            empty = ms[i].value[0] == '\0';
            break;
        case PROMQL_MATCH_NEQ:
            empty = ms[i].value[0] != '\0';
            break;
        default:
            empty = regex_matches_empty(p, n, &ms[i]);
            if (empty < 0)
                return;
            if (ms[i].op == PROMQL_MATCH_NRE)
                empty = !empty;
        }
        not_empty |= !empty;
    }
    if (n->u.sel.name != NULL) {
        for (size_t i = 0; i + 1 < nm; i++) {
            if (strcmp(ms[i].name, "__name__") == 0) {
                errorf(p, n->pos, "metric name must not be set twice: \"%s\" or \"%s\"",
                       n->u.sel.name, ms[i].value);
                return;
            }
        }
        return;
    }
    if (!bypass_empty && !not_empty)
        errorf(p, n->pos, "vector selector must contain at least one non-empty matcher");
}

static void check_binary(struct parser *p, struct promql_node *n)
{
    int lt = check(p, n->u.bin.lhs);
    int rt = check(p, n->u.bin.rhs);
    int op = n->u.bin.op;
    if (n->u.bin.return_bool && !promql__binop_is_comparison(op))
        errorf(p, op_pos(p, n), "bool modifier can only be used on comparison operators");
    if (promql__binop_is_comparison(op) && !n->u.bin.return_bool &&
        n->u.bin.rhs->type == PROMQL_TYPE_SCALAR && n->u.bin.lhs->type == PROMQL_TYPE_SCALAR)
        errorf(p, op_pos(p, n), "comparisons between scalars must use BOOL modifier");
    if (promql__binop_is_set(op) && n->u.bin.card == PROMQL_CARD_ONE_TO_ONE)
        n->u.bin.card = PROMQL_CARD_MANY_TO_MANY;
    if (n->u.bin.on) {
        for (size_t i = 0; i < n->u.bin.nmatch_labels; i++) {
            for (size_t j = 0; j < n->u.bin.ninclude; j++) {
                if (strcmp(n->u.bin.match_labels[i], n->u.bin.include[j]) == 0)
                    errorf(p, op_pos(p, n),
                           "label \"%s\" must not occur in ON and GROUP clause at once",
                           n->u.bin.match_labels[i]);
            }
        }
    }
    if (lt != PROMQL_TYPE_SCALAR && lt != PROMQL_TYPE_VECTOR)
        errorf(p, n->u.bin.lhs->pos,
               "binary expression must contain only scalar and instant vector types");
    if (rt != PROMQL_TYPE_SCALAR && rt != PROMQL_TYPE_VECTOR)
        errorf(p, n->u.bin.rhs->pos,
               "binary expression must contain only scalar and instant vector types");
    bool fill = n->u.bin.fill_left_set || n->u.bin.fill_right_set;
    if (lt != PROMQL_TYPE_VECTOR || rt != PROMQL_TYPE_VECTOR) {
        if (n->u.bin.nmatch_labels > 0)
            errorf(p, n->pos, "vector matching only allowed between instant vectors");
        if (fill)
            errorf(p, n->pos, "filling in missing series only allowed between instant vectors");
        n->u.bin.fill_left_set = n->u.bin.fill_right_set = false;
        /* No vector matching between scalars: drop what was written. */
        n->u.bin.card = PROMQL_CARD_ONE_TO_ONE;
        n->u.bin.has_matching = false;
        n->u.bin.on = false;
        n->u.bin.nmatch_labels = 0;
        n->u.bin.ninclude = 0;
    } else if (promql__binop_is_set(op)) {
        if (n->u.bin.card == PROMQL_CARD_ONE_TO_MANY || n->u.bin.card == PROMQL_CARD_MANY_TO_ONE)
            errorf(p, n->pos, "no grouping allowed for \"%s\" operation", promql__binop_name(op));
        if (n->u.bin.card != PROMQL_CARD_MANY_TO_MANY)
            errorf(p, n->pos, "set operations must always be many-to-many");
        if (fill)
            errorf(p, n->pos, "filling in missing series not allowed for set operators");
    }
    if ((lt == PROMQL_TYPE_SCALAR || rt == PROMQL_TYPE_SCALAR) && promql__binop_is_set(op))
        errorf(p, n->pos, "set operator \"%s\" not allowed in binary scalar expression",
               promql__binop_name(op));
}

static void check_call(struct parser *p, struct promql_node *n)
{
    const struct promql_func *f = n->u.call.func;
    size_t got = n->u.call.nargs;
    size_t nargs = (size_t)f->nargs;
    if (f->variadic == 0) {
        if (nargs != got)
            errorf(p, n->pos, "expected %zu argument(s) in call to \"%s\", got %zu", nargs, f->name,
                   got);
    } else {
        size_t na = nargs - 1;
        if (na > got)
            errorf(p, n->pos, "expected at least %zu argument(s) in call to \"%s\", got %zu", na,
                   f->name, got);
        else if (f->variadic > 0 && na + (size_t)f->variadic < got)
            errorf(p, n->pos, "expected at most %zu argument(s) in call to \"%s\", got %zu",
                   na + (size_t)f->variadic, f->name, got);
    }
    if (strcmp(f->name, "info") == 0 && got > 1) {
        struct promql_node *a = n->u.call.args[1];
        if (a->type != PROMQL_TYPE_VECTOR)
            errorf(p, n->pos, "expected type instant vector in call to function \"info\", got %s",
                   doc_type(a->type));
        if (a->kind == PROMQL_NODE_VECTOR && a->u.sel.name != NULL)
            errorf(p, a->pos, "expected label selectors only, got vector selector instead");
        else if (a->kind != PROMQL_NODE_VECTOR)
            errorf(p, a->pos, "expected label selectors only");
    }
    for (size_t i = 0; i < got; i++) {
        size_t k = i;
        if (k >= nargs) {
            if (f->variadic == 0)
                break;
            k = nargs - 1;
        }
        struct promql_node *a = n->u.call.args[i];
        int t;
        if (strcmp(f->name, "info") == 0 && i == 1 && a->kind == PROMQL_NODE_VECTOR) {
            /* info()'s label selector may match the empty string. */
            check_selector(p, a, true);
            t = a->type;
        } else {
            t = check(p, a);
        }
        if (t != f->arg_types[k])
            errorf(p, a->pos, "expected type %s in call to function \"%s\", got %s",
                   doc_type(f->arg_types[k]), f->name, doc_type(t));
    }
}

/* Type-checks n and its children; returns n's type.  Errors are recorded
 * in p (the first one wins). */
static int check(struct parser *p, struct promql_node *n)
{
    switch (n->kind) {
    case PROMQL_NODE_NUMBER:
    case PROMQL_NODE_STRING:
        break;
    case PROMQL_NODE_VECTOR:
        check_selector(p, n, false);
        break;
    case PROMQL_NODE_MATRIX:
        check_selector(p, n->u.matrix.vector, false);
        n->type = PROMQL_TYPE_MATRIX;
        break;
    case PROMQL_NODE_SUBQUERY: {
        int t = check(p, n->u.subquery.expr);
        if (t != PROMQL_TYPE_VECTOR)
            errorf(p, n->pos, "subquery is only allowed on instant vector, got %s instead",
                   value_type(t));
        n->type = PROMQL_TYPE_MATRIX;
        break;
    }
    case PROMQL_NODE_CALL:
        check_call(p, n);
        break;
    case PROMQL_NODE_AGGREGATE: {
        int op = n->u.agg.op;
        expect_type(p, n->u.agg.expr, PROMQL_TYPE_VECTOR, "aggregation expression");
        if (op == PROMQL_AGG_TOPK || op == PROMQL_AGG_BOTTOMK || op == PROMQL_AGG_QUANTILE ||
            op == PROMQL_AGG_LIMITK || op == PROMQL_AGG_LIMIT_RATIO)
            expect_type(p, n->u.agg.param, PROMQL_TYPE_SCALAR, "aggregation parameter");
        if (op == PROMQL_AGG_COUNT_VALUES)
            expect_type(p, n->u.agg.param, PROMQL_TYPE_STRING, "aggregation parameter");
        break;
    }
    case PROMQL_NODE_BINARY:
        check_binary(p, n);
        break;
    case PROMQL_NODE_UNARY: {
        int t = check(p, n->u.unary.expr);
        if (t != PROMQL_TYPE_SCALAR && t != PROMQL_TYPE_VECTOR)
            errorf(p, n->pos,
                   "unary expression only allowed on expressions of type scalar or instant "
                   "vector, got \"%s\"",
                   doc_type(t));
        break;
    }
    case PROMQL_NODE_PAREN:
        check(p, n->u.paren.expr);
        break;
    default:
        break;
    }
    return n->type;
}

/* ---- entry points ------------------------------------------------------------ */

struct promql_node *promql__parse(const char *text, size_t len, struct hs_arena *arena,
                                  struct hs_err *err)
{
    if (text == NULL || arena == NULL) {
        hs_err_set(err, HS_EINVAL, "no query text or arena");
        return NULL;
    }
    if (len > PROMQL_MAX_QUERY_BYTES) {
        hs_err_set(err, HS_ETOOBIG, "query is %zu bytes long, more than the limit of %d bytes", len,
                   PROMQL_MAX_QUERY_BYTES);
        return NULL;
    }
    struct parser p = {.src = text, .len = len, .arena = arena, .err = err};
    promql__lexer_init(&p.lx, text, len);
    advance(&p);
    struct promql_node *root = NULL;
    if (p.tok.type == PROMQL_T_EOF) {
        errorf(&p, 0, "no expression found in input");
        return NULL;
    }
    root = parse_expr(&p, 0);
    if (root != NULL && p.tok.type != PROMQL_T_EOF)
        unexpected(&p, NULL, NULL);
    if (p.failed)
        return NULL;
    check(&p, root);
    if (p.failed)
        return NULL;
    hs_err_clear(err);
    return root;
}

bool promql__binop_is_comparison(int op)
{
    return op == PROMQL_OP_EQL || op == PROMQL_OP_NEQ || op == PROMQL_OP_GTR ||
           op == PROMQL_OP_LSS || op == PROMQL_OP_GTE || op == PROMQL_OP_LTE;
}

bool promql__binop_is_set(int op)
{
    return op == PROMQL_OP_AND || op == PROMQL_OP_OR || op == PROMQL_OP_UNLESS;
}

const char *promql__binop_name(int op)
{
    switch (op) {
    case PROMQL_OP_ADD:
        return "+";
    case PROMQL_OP_SUB:
        return "-";
    case PROMQL_OP_MUL:
        return "*";
    case PROMQL_OP_DIV:
        return "/";
    case PROMQL_OP_MOD:
        return "%";
    case PROMQL_OP_POW:
        return "^";
    case PROMQL_OP_ATAN2:
        return "atan2";
    case PROMQL_OP_EQL:
        return "==";
    case PROMQL_OP_NEQ:
        return "!=";
    case PROMQL_OP_GTR:
        return ">";
    case PROMQL_OP_LSS:
        return "<";
    case PROMQL_OP_GTE:
        return ">=";
    case PROMQL_OP_LTE:
        return "<=";
    case PROMQL_OP_AND:
        return "and";
    case PROMQL_OP_OR:
        return "or";
    case PROMQL_OP_UNLESS:
        return "unless";
    default:
        return "?";
    }
}

const char *promql__aggop_name(int op)
{
    switch (op) {
    case PROMQL_AGG_SUM:
        return "sum";
    case PROMQL_AGG_AVG:
        return "avg";
    case PROMQL_AGG_COUNT:
        return "count";
    case PROMQL_AGG_MIN:
        return "min";
    case PROMQL_AGG_MAX:
        return "max";
    case PROMQL_AGG_GROUP:
        return "group";
    case PROMQL_AGG_STDDEV:
        return "stddev";
    case PROMQL_AGG_STDVAR:
        return "stdvar";
    case PROMQL_AGG_TOPK:
        return "topk";
    case PROMQL_AGG_BOTTOMK:
        return "bottomk";
    case PROMQL_AGG_COUNT_VALUES:
        return "count_values";
    case PROMQL_AGG_QUANTILE:
        return "quantile";
    case PROMQL_AGG_LIMITK:
        return "limitk";
    case PROMQL_AGG_LIMIT_RATIO:
        return "limit_ratio";
    default:
        return "?";
    }
}
