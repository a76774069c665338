/*
 * printer.c - a syntax tree back to canonical PromQL text, as Prometheus'
 * Expr.String() writes it (used for rule files and format_query).
 *
 * Canonical forms: one space around binary operators; "sum by (a, b) (x)";
 * label matchers sorted, the metric name in front; numbers in the shortest
 * decimal form that reads back to the same double, never with an exponent
 * (Go's FormatFloat(v, 'f', -1)); strings double-quoted with Go escapes;
 * durations as "1h30m"; "@ 123.000"; "offset -5m".  Printing then parsing
 * gives back an equal tree (matcher order aside).
 */
#include "promql/ast.h"

#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_node(const struct promql_node *n, struct hs_buf *out, int depth);

/* The exponent of a %e rendering ("+02", "-7"). */
static int parse_exp(const char *s)
{
    int sign = 1, v = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return sign * v;
}

/* Go's strconv.FormatFloat(v, 'f', -1, 64). */
static int put_float(struct hs_buf *out, double v)
{
    if (isnan(v))
        return hs_buf_puts(out, "NaN");
    if (isinf(v))
        return hs_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    char e[64];
    /* Shortest %.*e that reads back exactly. */
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is like "-1.2345e+02": split into sign, digits, exponent. */
    char digits[32];
    size_t nd = 0;
    const char *c = e;
    bool neg = false;
    if (*c == '-') {
        neg = true;
        c++;
    }
    for (; *c && *c != 'e'; c++) {
        if (*c >= '0' && *c <= '9' && nd + 1 < sizeof(digits))
            digits[nd++] = *c;
    }
    int exp10 = *c == 'e' ? parse_exp(c + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    /* value = 0.d1d2d3... * 10^(exp10+1) */
    int point = exp10 + 1;
    char buf[400];
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    if (point <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -point; i++)
            buf[o++] = '0';
        for (size_t i = 0; i < nd; i++)
            buf[o++] = digits[i];
    } else {
        for (int i = 0; i < point; i++)
            buf[o++] = (size_t)i < nd ? digits[i] : '0';
        if ((size_t)point < nd) {
            buf[o++] = '.';
            for (size_t i = (size_t)point; i < nd; i++)
                buf[o++] = digits[i];
        }
    }
    return hs_buf_append(out, buf, o);
}

/* Go's strconv.Quote: printable UTF-8 kept, the rest escaped. */
static int put_quoted(struct hs_buf *out, const char *s)
{
    int rc = hs_buf_putc(out, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (rc == HS_OK && *p) {
        unsigned char c = *p;
        char esc[16];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, esc[2] = 0;
        } else if (c >= 0x20 && c < 0x7f) {
            esc[0] = (char)c, esc[1] = 0;
        } else if (c < 0x80) {
            switch (c) {
            case '\a':
                snprintf(esc, sizeof(esc), "\\a");
                break;
            case '\b':
                snprintf(esc, sizeof(esc), "\\b");
                break;
            case '\f':
                snprintf(esc, sizeof(esc), "\\f");
                break;
            case '\n':
                snprintf(esc, sizeof(esc), "\\n");
                break;
            case '\r':
                snprintf(esc, sizeof(esc), "\\r");
                break;
            case '\t':
                snprintf(esc, sizeof(esc), "\\t");
                break;
            case '\v':
                snprintf(esc, sizeof(esc), "\\v");
                break;
            default:
                snprintf(esc, sizeof(esc), "\\x%02x", c);
                break;
            }
        } else {
            /* A multi-byte sequence: copy it when well formed. */
            size_t len = (c & 0xe0) == 0xc0   ? 2
                         : (c & 0xf0) == 0xe0 ? 3
                         : (c & 0xf8) == 0xf0 ? 4
                                              : 0;
            bool ok = len > 0;
            for (size_t i = 1; ok && i < len; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (ok) {
                rc = hs_buf_append(out, p, len);
                p += len;
                continue;
            }
            snprintf(esc, sizeof(esc), "\\x%02x", c);
        }
        rc = hs_buf_puts(out, esc);
        p++;
    }
    return rc == HS_OK ? hs_buf_putc(out, '"') : rc;
}

/* Legacy label-name charset: [a-zA-Z_][a-zA-Z0-9_]*. */
static bool legacy_label(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (s++; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return false;
    }
    return true;
}

static int put_label(struct hs_buf *out, const char *name)
{
    return legacy_label(name) ? hs_buf_puts(out, name) : put_quoted(out, name);
}

static int put_labels(struct hs_buf *out, const char *const *ls, size_t n)
{
    int rc = HS_OK;
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        if (i > 0)
            rc = hs_buf_puts(out, ", ");
        if (rc == HS_OK)
            rc = put_label(out, ls[i]);
    }
    return rc;
}

/* Prometheus' model.Duration.String(); 'ms' >= 0. */
static int put_duration(struct hs_buf *out, int64_t ms)
{
    static const struct {
        const char *unit;
        int64_t mult;
        bool exact;
    } units[] = {{"y", 365LL * 24 * 3600 * 1000, true},
                 {"w", 7LL * 24 * 3600 * 1000, true},
                 {"d", 24LL * 3600 * 1000, false},
                 {"h", 3600LL * 1000, false},
                 {"m", 60LL * 1000, false},
                 {"s", 1000, false},
                 {"ms", 1, false}};
    if (ms == 0)
        return hs_buf_puts(out, "0s");
    int rc = HS_OK;
    for (size_t i = 0; rc == HS_OK && i < HS_ARRAY_LEN(units); i++) {
        if (units[i].exact && ms % units[i].mult != 0)
            continue;
        int64_t v = ms / units[i].mult;
        if (v > 0) {
            rc = hs_buf_printf(out, "%lld%s", (long long)v, units[i].unit);
            ms -= v * units[i].mult;
        }
    }
    return rc;
}

static int put_at_offset(struct hs_buf *out, int at, int64_t at_ms, int64_t offset_ms,
                         const struct promql_node *offset_expr)
{
    int rc = HS_OK;
    if (at == PROMQL_AT_TIME) {
        rc = hs_buf_printf(out, " @ %s%lld.%03lld", at_ms < 0 ? "-" : "",
                           (long long)(at_ms < 0 ? -(at_ms / 1000) : at_ms / 1000),
                           (long long)(at_ms < 0 ? -(at_ms % 1000) : at_ms % 1000));
    } else if (at == PROMQL_AT_START) {
        rc = hs_buf_puts(out, " @ start()");
    } else if (at == PROMQL_AT_END) {
        rc = hs_buf_puts(out, " @ end()");
    }
    if (rc == HS_OK && offset_expr != NULL) {
        rc = hs_buf_puts(out, " offset ");
        if (rc == HS_OK)
            rc = print_node(offset_expr, out, 1);
    } else if (rc == HS_OK && offset_ms > 0) {
        rc = hs_buf_puts(out, " offset ");
        if (rc == HS_OK)
            rc = put_duration(out, offset_ms);
    } else if (rc == HS_OK && offset_ms < 0) {
        rc = hs_buf_puts(out, " offset -");
        if (rc == HS_OK)
            rc = put_duration(out, offset_ms == INT64_MIN ? INT64_MAX : -offset_ms);
    }
    return rc;
}

static int put_dur_or_expr(struct hs_buf *out, int64_t ms, const struct promql_node *expr,
                           int depth)
{
    return expr != NULL ? print_node(expr, out, depth + 1) : put_duration(out, ms);
}

static const char *match_op_str(int op)
{
    switch (op) {
    case PROMQL_MATCH_NEQ:
        return "!=";
    case PROMQL_MATCH_RE:
        return "=~";
    case PROMQL_MATCH_NRE:
        return "!~";
    default:
        return "=";
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* name{sorted matchers}, without @ and offset. */
static int put_selector(struct hs_buf *out, const struct promql_node *n)
{
    const char *name = n->u.sel.name;
    size_t cnt = 0;
    int rc = HS_OK;
    char **strs = hs_calloc(n->u.sel.nmatchers + 1, sizeof(char *));
    if (strs == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < n->u.sel.nmatchers && rc == HS_OK; i++) {
        const struct promql_label_matcher *m = &n->u.sel.matchers[i];
        if (name != NULL && m->op == PROMQL_MATCH_EQ && strcmp(m->name, "__name__") == 0 &&
            strcmp(m->value, name) == 0 && name[0] != '\0')
            continue;
        struct hs_buf b;
        hs_buf_init(&b, 0);
        rc = put_label(&b, m->name);
        if (rc == HS_OK)
            rc = hs_buf_puts(&b, match_op_str(m->op));
        if (rc == HS_OK)
            rc = put_quoted(&b, m->value);
        if (rc == HS_OK)
            strs[cnt++] = hs_buf_detach(&b, NULL);
        hs_buf_cleanup(&b);
    }
    if (rc == HS_OK && name != NULL)
        rc = hs_buf_puts(out, name);
    if (rc == HS_OK && cnt > 0) {
        qsort(strs, cnt, sizeof(char *), cmp_str);
        rc = hs_buf_putc(out, '{');
        for (size_t i = 0; rc == HS_OK && i < cnt; i++) {
            if (i > 0)
                rc = hs_buf_putc(out, ',');
            if (rc == HS_OK)
                rc = hs_buf_puts(out, strs[i]);
        }
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '}');
    }
    for (size_t i = 0; i < cnt; i++)
        hs_free(strs[i]);
    hs_free(strs);
    return rc;
}

static int print_aggregate(const struct promql_node *n, struct hs_buf *out, int depth)
{
    int rc = hs_buf_puts(out, promql__aggop_name(n->u.agg.op));
    if (rc == HS_OK && (n->u.agg.without || n->u.agg.ngrouping > 0)) {
        rc = hs_buf_puts(out, n->u.agg.without ? " without (" : " by (");
        if (rc == HS_OK)
            rc = put_labels(out, n->u.agg.grouping, n->u.agg.ngrouping);
        if (rc == HS_OK)
            rc = hs_buf_puts(out, ") ");
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '(');
    if (rc == HS_OK && n->u.agg.param != NULL) {
        rc = print_node(n->u.agg.param, out, depth + 1);
        if (rc == HS_OK)
            rc = hs_buf_puts(out, ", ");
    }
    if (rc == HS_OK)
        rc = print_node(n->u.agg.expr, out, depth + 1);
    return rc == HS_OK ? hs_buf_putc(out, ')') : rc;
}

static int put_fill(struct hs_buf *out, const char *word, double v)
{
    int rc = hs_buf_puts(out, word);
    if (rc == HS_OK)
        rc = put_float(out, v);
    return rc == HS_OK ? hs_buf_putc(out, ')') : rc;
}

static int print_binary(const struct promql_node *n, struct hs_buf *out, int depth)
{
    int rc;
    const struct promql_node *l = n->u.bin.lhs;
    /* "+Inf ^ x" would read back as +(Inf ^ x): write the unsigned form. */
    if (n->u.bin.op == PROMQL_OP_POW && l->kind == PROMQL_NODE_NUMBER && isinf(l->u.num.value) &&
        l->u.num.value > 0)
        rc = hs_buf_puts(out, "Inf");
    else
        rc = print_node(l, out, depth + 1);
    if (rc == HS_OK)
        rc = hs_buf_printf(out, " %s%s", promql__binop_name(n->u.bin.op),
                           n->u.bin.return_bool ? " bool" : "");
    bool vv = n->u.bin.lhs->type == PROMQL_TYPE_VECTOR && n->u.bin.rhs->type == PROMQL_TYPE_VECTOR;
    bool group =
        n->u.bin.card == PROMQL_CARD_MANY_TO_ONE || n->u.bin.card == PROMQL_CARD_ONE_TO_MANY;
    if (rc == HS_OK && vv && (n->u.bin.nmatch_labels > 0 || n->u.bin.on || group)) {
        rc = hs_buf_puts(out, n->u.bin.on ? " on (" : " ignoring (");
        if (rc == HS_OK)
            rc = put_labels(out, n->u.bin.match_labels, n->u.bin.nmatch_labels);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ')');
    }
    if (rc == HS_OK && vv && group) {
        rc = hs_buf_puts(out, n->u.bin.card == PROMQL_CARD_MANY_TO_ONE ? " group_left ("
                                                                       : " group_right (");
        if (rc == HS_OK)
            rc = put_labels(out, n->u.bin.include, n->u.bin.ninclude);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ')');
    }
    if (rc == HS_OK && vv && (n->u.bin.fill_left_set || n->u.bin.fill_right_set)) {
        if (n->u.bin.fill_left_set && n->u.bin.fill_right_set &&
            n->u.bin.fill_left == n->u.bin.fill_right) {
            rc = put_fill(out, " fill (", n->u.bin.fill_left);
        } else {
            if (n->u.bin.fill_left_set)
                rc = put_fill(out, " fill_left (", n->u.bin.fill_left);
            if (rc == HS_OK && n->u.bin.fill_right_set)
                rc = put_fill(out, " fill_right (", n->u.bin.fill_right);
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(out, ' ');
    return rc == HS_OK ? print_node(n->u.bin.rhs, out, depth + 1) : rc;
}

static int print_node(const struct promql_node *n, struct hs_buf *out, int depth)
{
    int rc = HS_OK;
    if (n == NULL || depth > 10000)
        return HS_EINVAL;
    switch (n->kind) {
    case PROMQL_NODE_NUMBER:
        return put_float(out, n->u.num.value);
    case PROMQL_NODE_STRING:
        return put_quoted(out, n->u.str.value);
    case PROMQL_NODE_VECTOR:
        rc = put_selector(out, n);
        return rc == HS_OK ? put_at_offset(out, n->u.sel.at, n->u.sel.at_ms, n->u.sel.offset_ms,
                                           n->u.sel.offset_expr)
                           : rc;
    case PROMQL_NODE_MATRIX: {
        const struct promql_node *v = n->u.matrix.vector;
        rc = put_selector(out, v);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '[');
        if (rc == HS_OK)
            rc = put_dur_or_expr(out, n->u.matrix.range_ms, n->u.matrix.range_expr, depth);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ']');
        return rc == HS_OK ? put_at_offset(out, v->u.sel.at, v->u.sel.at_ms, v->u.sel.offset_ms,
                                           v->u.sel.offset_expr)
                           : rc;
    }
    case PROMQL_NODE_SUBQUERY:
        rc = print_node(n->u.subquery.expr, out, depth + 1);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '[');
        if (rc == HS_OK)
            rc = put_dur_or_expr(out, n->u.subquery.range_ms, n->u.subquery.range_expr, depth);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ':');
        if (rc == HS_OK && (n->u.subquery.step_ms != 0 || n->u.subquery.step_expr != NULL))
            rc = put_dur_or_expr(out, n->u.subquery.step_ms, n->u.subquery.step_expr, depth);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ']');
        return rc == HS_OK ? put_at_offset(out, n->u.subquery.at, n->u.subquery.at_ms,
                                           n->u.subquery.offset_ms, n->u.subquery.offset_expr)
                           : rc;
    case PROMQL_NODE_CALL:
        rc = hs_buf_puts(out, n->u.call.func->name);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '(');
        for (size_t i = 0; rc == HS_OK && i < n->u.call.nargs; i++) {
            if (i > 0)
                rc = hs_buf_puts(out, ", ");
            if (rc == HS_OK)
                rc = print_node(n->u.call.args[i], out, depth + 1);
        }
        return rc == HS_OK ? hs_buf_putc(out, ')') : rc;
    case PROMQL_NODE_AGGREGATE:
        return print_aggregate(n, out, depth);
    case PROMQL_NODE_BINARY:
        return print_binary(n, out, depth);
    case PROMQL_NODE_UNARY:
        rc = hs_buf_puts(out, n->u.unary.op == PROMQL_OP_SUB ? "-" : "+");
        return rc == HS_OK ? print_node(n->u.unary.expr, out, depth + 1) : rc;
    case PROMQL_NODE_PAREN:
        rc = hs_buf_putc(out, '(');
        if (rc == HS_OK)
            rc = print_node(n->u.paren.expr, out, depth + 1);
        return rc == HS_OK ? hs_buf_putc(out, ')') : rc;
    default:
        return HS_EINVAL;
    }
}

int promql__print(const struct promql_node *n, struct hs_buf *out)
{
    size_t len0 = out->len;
    int rc = print_node(n, out, 0);
    if (rc != HS_OK && out->p != NULL) {
        out->len = len0; /* leave the buffer as it was */
        out->p[len0] = '\0';
    }
    return rc;
}
