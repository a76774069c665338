/*
 * Tests of src/promql/parser.c and printer.c: precedence and shape of the
 * trees, modifiers, type rules, error messages with positions, limits,
 * allocation failures, canonical printing, and a parse -> print -> parse
 * round trip over every query of the conformance .test files.
 */
#include "hs_test.h"

#include "core/core.h"
#include "promql/ast.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct hs_arena arena;

static int setup(void **state)
{
    (void)state;
    hs_arena_init(&arena, 4096, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hs_arena_cleanup(&arena);
    return 0;
}

static struct promql_node *parse(const char *q, struct hs_err *err)
{
    return promql__parse(q, strlen(q), &arena, err);
}

static struct promql_node *parse_ok(const char *q)
{
    struct hs_err err = {0};
    struct promql_node *n = parse(q, &err);
    if (n == NULL)
        fail_msg("parsing %s failed: %s", q, err.msg);
    return n;
}

/* A fully parenthesised rendering of the tree shape, for precedence tests. */
static void sexpr(const struct promql_node *n, struct hs_buf *b)
{
    int rc = HS_OK;
    switch (n->kind) {
    case PROMQL_NODE_NUMBER:
        rc = hs_buf_printf(b, "%g", n->u.num.value);
        break;
    case PROMQL_NODE_STRING:
        rc = hs_buf_printf(b, "'%s'", n->u.str.value);
        break;
    case PROMQL_NODE_VECTOR:
        rc = hs_buf_puts(b, n->u.sel.name ? n->u.sel.name : "{}");
        if (rc == HS_OK && n->u.sel.offset_ms)
            rc = hs_buf_printf(b, "~%lld", (long long)n->u.sel.offset_ms);
        break;
    case PROMQL_NODE_MATRIX:
        sexpr(n->u.matrix.vector, b);
        rc = hs_buf_printf(b, "[%lld]", (long long)n->u.matrix.range_ms);
        break;
    case PROMQL_NODE_SUBQUERY:
        sexpr(n->u.subquery.expr, b);
        rc = hs_buf_printf(b, "[%lld:%lld]", (long long)n->u.subquery.range_ms,
                           (long long)n->u.subquery.step_ms);
        break;
    case PROMQL_NODE_CALL:
        rc = hs_buf_printf(b, "(%s", n->u.call.func->name);
        for (size_t i = 0; rc == HS_OK && i < n->u.call.nargs; i++) {
            rc = hs_buf_putc(b, ' ');
            sexpr(n->u.call.args[i], b);
        }
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ')');
        break;
    case PROMQL_NODE_AGGREGATE:
        rc = hs_buf_printf(b, "(%s ", promql__aggop_name(n->u.agg.op));
        if (n->u.agg.param) {
            sexpr(n->u.agg.param, b);
            rc = hs_buf_putc(b, ' ');
        }
        sexpr(n->u.agg.expr, b);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ')');
        break;
    case PROMQL_NODE_BINARY:
        rc = hs_buf_printf(b, "(%s ", promql__binop_name(n->u.bin.op));
        sexpr(n->u.bin.lhs, b);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ' ');
        sexpr(n->u.bin.rhs, b);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ')');
        break;
    case PROMQL_NODE_UNARY:
        rc = hs_buf_puts(b, n->u.unary.op == PROMQL_OP_SUB ? "(neg " : "(pos ");
        sexpr(n->u.unary.expr, b);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ')');
        break;
    case PROMQL_NODE_PAREN:
        rc = hs_buf_puts(b, "(paren ");
        sexpr(n->u.paren.expr, b);
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ')');
        break;
    default:
        fail_msg("unknown node kind %d", n->kind);
    }
    assert_int_equal(rc, HS_OK);
}

static void assert_shape(const char *q, const char *want)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    sexpr(parse_ok(q), &b);
    if (strcmp(b.p, want) != 0)
        fail_msg("%s: got %s, want %s", q, b.p, want);
    hs_buf_cleanup(&b);
}

static void assert_prints(const char *q, const char *want)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(promql__print(parse_ok(q), &b), HS_OK);
    if (strcmp(b.p, want) != 0)
        fail_msg("%s: printed %s, want %s", q, b.p, want);
    hs_buf_cleanup(&b);
}

static void assert_error(const char *q, const char *want)
{
    struct hs_err err = {0};
    struct promql_node *n = parse(q, &err);
    if (n != NULL)
        fail_msg("%s: parsed, want error %s", q, want);
    assert_int_equal(err.code, HS_EPARSE);
    if (strcmp(err.msg, want) != 0)
        fail_msg("%s:\n  got  %s\n  want %s", q, err.msg, want);
}

/* ---- precedence and shape ------------------------------------------------ */

static void parser_follows_prometheus_operator_precedence(void **state)
{
    (void)state;
    struct {
        const char *q, *want;
    } cases[] = {
        {"1 + 2 * 3", "(+ 1 (* 2 3))"},
        {"1 * 2 + 3", "(+ (* 1 2) 3)"},
        {"1 - 2 - 3", "(- (- 1 2) 3)"},
        {"2 ^ 3 ^ 2", "(^ 2 (^ 3 2))"},
        {"a / b % c", "(% (/ a b) c)"},
        {"a atan2 b * c", "(* (atan2 a b) c)"},
        {"a + b > bool c - d", "(> (+ a b) (- c d))"},
        {"a or b and c", "(or a (and b c))"},
        {"a or b unless c", "(or a (unless b c))"},
        {"a and b == c", "(and a (== b c))"},
        {"a unless b or c and d", "(or (unless a b) (and c d))"},
        {"(1 + 2) * 3", "(* (paren (+ 1 2)) 3)"},
        {"a < b + c ^ d * e", "(< a (+ b (* (^ c d) e)))"},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++)
        assert_shape(cases[i].q, cases[i].want);
}

static void parser_binds_unary_minus_weaker_than_power(void **state)
{
    (void)state;
    assert_shape("-2 ^ 2", "(neg (^ 2 2))");
    assert_shape("-a * b", "(* (neg a) b)");
    assert_shape("-a + b", "(+ (neg a) b)");
    assert_shape("2 ^ -1", "(^ 2 -1)");
    assert_shape("a * -b ^ c", "(* a (neg (^ b c)))");
    assert_shape("- - a", "(neg (neg a))");
}

static void parser_folds_a_sign_into_a_number_literal(void **state)
{
    (void)state;
    struct promql_node *n = parse_ok("-5");
    assert_int_equal(n->kind, PROMQL_NODE_NUMBER);
    assert_true(n->u.num.value == -5);
    assert_int_equal(n->pos, 0);
    n = parse_ok("+-+1.5");
    assert_int_equal(n->kind, PROMQL_NODE_NUMBER);
    assert_true(n->u.num.value == -1.5);
    n = parse_ok("-(1)");
    assert_int_equal(n->kind, PROMQL_NODE_UNARY);
    assert_shape("- - 1", "1");
}

static void parser_reads_number_literal_forms(void **state)
{
    (void)state;
    struct {
        const char *q;
        double v;
    } cases[] = {{"0x1f", 31}, {"1e3", 1000}, {"1_000", 1000}, {".5", 0.5},
                 {"017", 15},  {"5m", 300},   {"1h30m", 5400}, {"250ms", 0.25}};
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++) {
        struct promql_node *n = parse_ok(cases[i].q);
        assert_int_equal(n->kind, PROMQL_NODE_NUMBER);
        if (n->u.num.value != cases[i].v)
            fail_msg("%s: got %g want %g", cases[i].q, n->u.num.value, cases[i].v);
    }
    assert_true(isinf(parse_ok("Inf")->u.num.value));
    assert_true(parse_ok("-inf")->u.num.value < 0);
    assert_true(isnan(parse_ok("nAn")->u.num.value));
}

static void parser_reads_selectors_with_every_matcher(void **state)
{
    (void)state;
    struct promql_node *n = parse_ok("http_requests{job=\"api\", code!=\"500\", path=~'/a.*', "
                                     "method!~`GET|PUT`,}");
    assert_int_equal(n->kind, PROMQL_NODE_VECTOR);
    assert_int_equal(n->type, PROMQL_TYPE_VECTOR);
    assert_string_equal(n->u.sel.name, "http_requests");
    assert_int_equal(n->u.sel.nmatchers, 5);
    assert_int_equal(n->u.sel.matchers[0].op, PROMQL_MATCH_EQ);
    assert_int_equal(n->u.sel.matchers[1].op, PROMQL_MATCH_NEQ);
    assert_int_equal(n->u.sel.matchers[2].op, PROMQL_MATCH_RE);
    assert_string_equal(n->u.sel.matchers[2].value, "/a.*");
    assert_int_equal(n->u.sel.matchers[3].op, PROMQL_MATCH_NRE);
    assert_string_equal(n->u.sel.matchers[4].name, "__name__");
    assert_string_equal(n->u.sel.matchers[4].value, "http_requests");
}

static void parser_reads_quoted_utf8_metric_and_label_names(void **state)
{
    (void)state;
    struct promql_node *n = parse_ok("{\"my.metric\", \"aws.region\"=\"eu\"}");
    assert_null(n->u.sel.name);
    assert_int_equal(n->u.sel.nmatchers, 2);
    assert_string_equal(n->u.sel.matchers[0].name, "__name__");
    assert_string_equal(n->u.sel.matchers[0].value, "my.metric");
    assert_string_equal(n->u.sel.matchers[1].name, "aws.region");
    n = parse_ok("sum by (\"k8s.pod\") (x)");
    assert_string_equal(n->u.agg.grouping[0], "k8s.pod");
}

static void parser_allows_keywords_and_aggregators_as_metric_names(void **state)
{
    (void)state;
    assert_shape("sum + by", "(+ sum by)");
    assert_shape("rate(avg[5m])", "(rate avg[300000])");
    assert_shape("offset offset 1m", "offset~60000");
}

static void parser_applies_offset_and_at_to_the_selector_just_before_them(void **state)
{
    (void)state;
    assert_shape("a + b offset 5m", "(+ a b~300000)");
    assert_shape("-a offset -1m", "(neg a~-60000)");
    struct promql_node *n = parse_ok("foo @ 100 offset 5m");
    assert_int_equal(n->u.sel.at, PROMQL_AT_TIME);
    assert_int_equal(n->u.sel.at_ms, 100000);
    assert_int_equal(n->u.sel.offset_ms, 300000);
    n = parse_ok("foo offset 5m @ 100.5");
    assert_int_equal(n->u.sel.at_ms, 100500);
    assert_int_equal(n->u.sel.offset_ms, 300000);
    n = parse_ok("foo[1m] @ start() offset 1s");
    assert_int_equal(n->kind, PROMQL_NODE_MATRIX);
    assert_int_equal(n->u.matrix.vector->u.sel.at, PROMQL_AT_START);
    assert_int_equal(n->u.matrix.vector->u.sel.offset_ms, 1000);
    n = parse_ok("foo @ end()");
    assert_int_equal(n->u.sel.at, PROMQL_AT_END);
    n = parse_ok("foo @ -10");
    assert_int_equal(n->u.sel.at_ms, -10000);
}

static void parser_reads_subqueries_with_and_without_step(void **state)
{
    (void)state;
    struct promql_node *n = parse_ok("rate(x[5m])[1h:1m] offset 10m @ 50");
    assert_int_equal(n->kind, PROMQL_NODE_SUBQUERY);
    assert_int_equal(n->type, PROMQL_TYPE_MATRIX);
    assert_int_equal(n->u.subquery.range_ms, 3600000);
    assert_int_equal(n->u.subquery.step_ms, 60000);
    assert_int_equal(n->u.subquery.offset_ms, 600000);
    assert_int_equal(n->u.subquery.at_ms, 50000);
    n = parse_ok("x[5m:]");
    assert_int_equal(n->u.subquery.step_ms, 0);
    assert_shape("max_over_time((a + b)[10m:30s])",
                 "(max_over_time (paren (+ a b))[600000:30000])");
}

static void parser_folds_constant_duration_expressions(void **state)
{
    (void)state;
    assert_shape("x[5m+1m]", "x[360000]");
    assert_shape("x[2m*(10+5)]", "x[1800000]");
    assert_shape("x[1h30m % 1h]", "x[1800000]");
    assert_shape("x[1800]", "x[1800000]");
    assert_shape("x[min_of(1m, 2m)]", "x[60000]");
    assert_shape("x[29s+1s:20*500ms]", "x[30000:10000]");
    assert_shape("x offset (2 * 2)", "x~4000");
    /* The offset takes only a signed operand: the rest is arithmetic on the result. */
    assert_shape("x offset -2 ^ 2", "(^ x~-2000 2)");
    assert_shape("x offset 100 + 2", "(+ x~100000 2)");
}

static void parser_keeps_duration_expressions_using_step_or_range_as_trees(void **state)
{
    (void)state;
    struct promql_node *n = parse_ok("count_over_time(x[step() + 1ms])");
    struct promql_node *m = n->u.call.args[0];
    assert_int_equal(m->kind, PROMQL_NODE_MATRIX);
    assert_int_equal(m->u.matrix.range_ms, 0);
    assert_non_null(m->u.matrix.range_expr);
    assert_shape("count_over_time(x[step() + 1ms])", "(count_over_time x[0])");
    struct hs_buf b;
    hs_buf_init(&b, 0);
    sexpr(m->u.matrix.range_expr, &b);
    assert_string_equal(b.p, "(+ (step) 0.001)");
    hs_buf_reset(&b);
    n = parse_ok("x offset -min_of(step(), 1s) + 8000");
    assert_int_equal(n->kind, PROMQL_NODE_BINARY);
    assert_non_null(n->u.bin.lhs->u.sel.offset_expr);
    sexpr(n->u.bin.lhs->u.sel.offset_expr, &b);
    assert_string_equal(b.p, "(neg (min_of (step) 1))");
    hs_buf_reset(&b);
    n = parse_ok("x[range() + 1m:step()]");
    sexpr(n->u.subquery.range_expr, &b);
    sexpr(n->u.subquery.step_expr, &b);
    assert_string_equal(b.p, "(+ (range) 60)(step)");
    hs_buf_cleanup(&b);
    /* Constant expressions are still folded. */
    n = parse_ok("x offset (min_of(2s, 3s) * 2)");
    assert_null(n->u.sel.offset_expr);
    assert_int_equal(n->u.sel.offset_ms, 4000);
    assert_prints("x[step() + 1ms] offset (STEP() / 10)", "x[step() + 0.001] offset (step() / 10)");
    assert_prints("x[5m:range()]", "x[5m:range()]");
}

static void parser_reads_fill_modifiers(void **state)
{
    (void)state;
    struct promql_node *n = parse_ok("a + on(x) group_left fill(0) b");
    assert_true(n->u.bin.fill_left_set && n->u.bin.fill_right_set);
    assert_true(n->u.bin.fill_left == 0 && n->u.bin.fill_right == 0);
    assert_int_equal(n->u.bin.card, PROMQL_CARD_MANY_TO_ONE);
    n = parse_ok("a - fill_right(-1.5) fill_left(2) b");
    assert_true(n->u.bin.fill_left == 2 && n->u.bin.fill_right == -1.5);
    n = parse_ok("a * fill_left(3) b");
    assert_true(n->u.bin.fill_left_set && !n->u.bin.fill_right_set);
    assert_shape("fill + fill_left", "(+ fill fill_left)");
    assert_prints("a+fill(1)b", "a + fill (1) b");
    assert_prints("a+fill_left(1)fill_right(2)b", "a + fill_left (1) fill_right (2) b");
    assert_prints("a > bool on(x) fill_right(-Inf) b", "a > bool on (x) fill_right (-Inf) b");
}

static void parser_reads_aggregations_with_grouping_before_or_after(void **state)
{
    (void)state;
    struct promql_node *a = parse_ok("sum by (job, le) (x)");
    struct promql_node *b = parse_ok("sum(x) by (job, le)");
    assert_int_equal(a->u.agg.ngrouping, 2);
    assert_int_equal(b->u.agg.ngrouping, 2);
    assert_string_equal(b->u.agg.grouping[1], "le");
    assert_true(a->u.agg.has_grouping && !a->u.agg.without);
    struct promql_node *c = parse_ok("count without () (x)");
    assert_true(c->u.agg.without && c->u.agg.has_grouping);
    assert_int_equal(c->u.agg.ngrouping, 0);
    assert_shape("topk(3, x)", "(topk 3 x)");
    assert_shape("quantile(0.9, x)", "(quantile 0.9 x)");
    assert_shape("count_values(\"v\", x)", "(count_values 'v' x)");
    assert_shape("limit_ratio(0.5, x)", "(limit_ratio 0.5 x)");
    assert_shape("limitk(2, x)", "(limitk 2 x)");
    struct promql_node *d = parse_ok("sum by (on, by, group_left) (x)");
    assert_string_equal(d->u.agg.grouping[0], "on");
}

static void parser_reads_vector_matching_modifiers(void **state)
{
    (void)state;
    struct promql_node *n = parse_ok("a * on(x, y) group_left(z) b");
    assert_true(n->u.bin.on && n->u.bin.has_matching);
    assert_int_equal(n->u.bin.nmatch_labels, 2);
    assert_int_equal(n->u.bin.card, PROMQL_CARD_MANY_TO_ONE);
    assert_int_equal(n->u.bin.ninclude, 1);
    assert_string_equal(n->u.bin.include[0], "z");
    n = parse_ok("a / ignoring(x) group_right b");
    assert_false(n->u.bin.on);
    assert_int_equal(n->u.bin.card, PROMQL_CARD_ONE_TO_MANY);
    n = parse_ok("a and on() b");
    assert_int_equal(n->u.bin.card, PROMQL_CARD_MANY_TO_MANY);
    n = parse_ok("a > bool 1");
    assert_true(n->u.bin.return_bool);
    assert_int_equal(n->type, PROMQL_TYPE_VECTOR);
    n = parse_ok("1 == bool 2");
    assert_int_equal(n->type, PROMQL_TYPE_SCALAR);
}

static void parser_types_calls_and_checks_their_arguments(void **state)
{
    (void)state;
    struct promql_node *n = parse_ok("round(x, 0.5)");
    assert_int_equal(n->u.call.nargs, 2);
    n = parse_ok("label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")");
    assert_int_equal(n->u.call.nargs, 6);
    n = parse_ok("scalar(x)");
    assert_int_equal(n->type, PROMQL_TYPE_SCALAR);
    n = parse_ok("time() - 5m");
    assert_int_equal(n->type, PROMQL_TYPE_SCALAR);
    n = parse_ok("info(x, {k8s_cluster=~\".*\"})");
    assert_int_equal(n->u.call.nargs, 2);
}

/* ---- errors ---------------------------------------------------------------- */

static void parser_reports_errors_with_line_column_and_prometheus_text(void **state)
{
    (void)state;
    struct {
        const char *q, *want;
    } cases[] = {
        {"", "1:1: parse error: no expression found in input"},
        {"# only a comment\n", "1:1: parse error: no expression found in input"},
        {"1 +", "1:4: parse error: unexpected end of input"},
        {"*1", "1:1: parse error: unexpected <op:*>"},
        {"-=", "1:2: parse error: unexpected \"=\""},
        {"(1))", "1:5: parse error: unexpected right parenthesis ')'"},
        {"sum(", "1:5: parse error: unclosed left parenthesis"},
        {"foo bar", "1:5: parse error: unexpected identifier \"bar\""},
        {"foo\n  + }", "2:5: parse error: unexpected character: '}'"},
        {"1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
        {"1 and 1",
         "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"},
        {"foo + bool bar",
         "1:5: parse error: bool modifier can only be used on comparison operators"},
        {"foo == on(bar) 10",
         "1:1: parse error: vector matching only allowed between instant vectors"},
        {"foo and on(bar) group_left(baz) bar",
         "1:1: parse error: no grouping allowed for \"and\" operation"},
        {"a + on(x) group_left(x) b",
         "1:3: parse error: label \"x\" must not occur in ON and GROUP clause at once"},
        {"a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"},
        {"foo + group_left(baz) bar", "1:7: parse error: unexpected <group_left>"},
        {"-\"s\"",
         "1:1: parse error: unary expression only allowed on expressions of type scalar or "
         "instant vector, got \"string\""},
        {"-x[5m]",
         "1:1: parse error: unary expression only allowed on expressions of type scalar or "
         "instant vector, got \"range vector\""},
        {"{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
        {"{x=~\".*\"}",
         "1:1: parse error: vector selector must contain at least one non-empty matcher"},
        {"{x!=\"a\"}",
         "1:1: parse error: vector selector must contain at least one non-empty matcher"},
        {"foo{__name__=\"bar\"}",
         "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""},
        {"foo{a=b}",
         "1:7: parse error: unexpected identifier \"b\" in label matching, expected string"},
        {"foo{gibberish}",
         "1:14: parse error: unexpected \"}\" in label matching, expected label matching operator"},
        {"foo{,}",
         "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""},
        {"foo{a=\"b\" c}", "1:11: parse error: unexpected identifier \"c\" in label matching, "
                           "expected \",\" or \"}\""},
        {"foo{", "1:5: parse error: unexpected end of input inside braces"},
        {"foo[5mm]", "1:5: parse error: bad number or duration syntax: \"5mm\""},
        {"foo[5m1h]", "1:5: parse error: not a valid duration string: \"5m1h\""},
        {"foo[5y1hs]", "1:5: parse error: unknown unit \"hs\" in duration \"5y1hs\""},
        {"foo[0m]", "1:5: parse error: duration must be greater than 0"},
        {"foo[-1]", "1:5: parse error: duration must be greater than 0"},
        {"foo[]",
         "1:5: parse error: unexpected \"]\" in subquery or range selector, expected number, "
         "duration, step(), or range()"},
        {"foo[5s/0]", "1:7: parse error: division by zero"},
        {"foo offset (4d%0)", "1:15: parse error: modulo by zero"},
        {"foo[9.5e10]", "1:5: parse error: duration out of range"},
        {"foo offset", "1:11: parse error: unexpected end of input in offset, expected number, "
                       "duration, step(), or range()"},
        {"foo @", "1:6: parse error: unexpected end of input in @, expected timestamp"},
        {"foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN"},
        {"foo @ -Inf", "1:1: parse error: timestamp out of bounds for @ modifier: -Inf"},
        {"1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector "
                        "selector or range vector selector or a subquery"},
        {"foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"},
        {"foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"},
        {"rate(x[1m]) @ 5", "1:1: parse error: @ modifier must be preceded by an instant vector "
                            "selector or range vector selector or a subquery"},
        {"foo offset 1m[5m]", "1:14: parse error: no offset modifiers allowed before range"},
        {"foo @ 1 [5m]", "1:9: parse error: no @ modifiers allowed before range"},
        {"(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"},
        {"foo[5m][10m:1m]",
         "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"},
        {"foo[5m:1m", "1:10: parse error: unclosed left bracket"},
        {"sum without(==)(x)",
         "1:13: parse error: unexpected <op:==> in grouping opts, expected label"},
        {"sum (x) by test",
         "1:12: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\""},
        {"sum by (a b) (x)", "1:11: parse error: unexpected identifier \"b\" in grouping opts, "
                             "expected \",\" or \")\""},
        {"sum by (\"\") (x)", "1:9: parse error: invalid label name for grouping: \"\""},
        {"sum (x) without (a) by (b)", "1:21: parse error: unexpected <by>"},
        {"sum()", "1:1: parse error: no arguments for aggregate expression provided"},
        {"topk(x)", "1:1: parse error: wrong number of arguments for aggregate expression "
                    "provided, expected 2, got 1"},
        {"topk(x,)", "1:7: parse error: trailing commas not allowed in function call args"},
        {"topk(x, y)", "1:6: parse error: expected type scalar in aggregation parameter, got "
                       "instant vector"},
        {"count_values(5, x)", "1:14: parse error: expected type string in aggregation parameter, "
                               "got scalar"},
        {"sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation expression, "
                       "got range vector"},
        {"floor()", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0"},
        {"floor(1)", "1:7: parse error: expected type instant vector in call to function "
                     "\"floor\", got scalar"},
        {"hour(x, x, x)",
         "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 3"},
        {"label_join(x, \"a\")",
         "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2"},
        {"rate(x)", "1:6: parse error: expected type range vector in call to function \"rate\", "
                    "got instant vector"},
        {"no_such_fn(x)", "1:1: parse error: unknown function with name \"no_such_fn\""},
        {"a > b()", "1:5: parse error: unknown function with name \"b\""},
        {"\"\\c\"", "1:1: parse error: unknown escape sequence U+0063 'c'"},
        {"x{a=\"\xff\"}", "1:5: parse error: invalid UTF-8 rune"},
        {"info(x, target_info{a=\"b\"})",
         "1:9: parse error: expected label selectors only, got vector selector instead"},
        {"x + fill(0) 1", "1:1: parse error: filling in missing series only allowed between "
                          "instant vectors"},
        {"x and fill(0) y", "1:1: parse error: filling in missing series not allowed for set "
                            "operators"},
        {"x + fill(y) z", "1:10: parse error: unexpected identifier \"y\" in fill modifier, "
                          "expected number"},
        {"foo[step():1m]", "1:12: parse error: unexpected colon before duration in duration "
                           "expression"},
        {"foo[step]", "1:9: parse error: unexpected \"]\" in subquery or range selector, "
                      "expected number, duration, step(), or range()"},
        {"foo x[5m] anchored", "1:5: parse error: unexpected identifier \"x\""},
        {"foo[5m] smoothed", "1:9: parse error: the smoothed modifier is not supported"},
        {"foo[5s x 5s]", "1:8: parse error: unexpected character: 'x', expected ':'"},
        {"foo{a=~\"(\"}",
         "1:1: parse error: error parsing regexp: missing closing parenthesis: `(`"},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++)
        assert_error(cases[i].q, cases[i].want);
}

static void parser_sets_the_byte_offset_of_an_error(void **state)
{
    (void)state;
    struct hs_err err = {0};
    assert_null(parse("sum(x) by (a) + \n  foo{a=b}", &err));
    assert_int_equal(err.pos, 25);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 9);
    assert_string_equal(
        err.msg,
        "2:9: parse error: unexpected identifier \"b\" in label matching, expected string");
}

static void parser_rejects_queries_longer_than_the_limit(void **state)
{
    (void)state;
    size_t n = 64 * 1024 + 1;
    char *q = hs_malloc(n + 1);
    assert_non_null(q);
    memset(q, ' ', n);
    q[0] = '1';
    q[n] = '\0';
    struct hs_err err = {0};
    assert_null(promql__parse(q, n, &arena, &err));
    assert_int_equal(err.code, HS_ETOOBIG);
    hs_free(q);
}

static void parser_rejects_deep_nesting_without_exhausting_the_stack(void **state)
{
    (void)state;
    const char *units[] = {"(", "-", "abs(", "x[1m:]"};
    for (size_t u = 0; u < HS_ARRAY_LEN(units); u++) {
        struct hs_buf b;
        hs_buf_init(&b, 0);
        if (u == 3) {
            assert_int_equal(hs_buf_puts(&b, "x"), HS_OK);
            for (int i = 0; i < 2000; i++)
                assert_int_equal(hs_buf_puts(&b, "[1m:]"), HS_OK);
        } else {
            for (int i = 0; i < 10000; i++)
                assert_int_equal(hs_buf_puts(&b, units[u]), HS_OK);
            assert_int_equal(hs_buf_puts(&b, "x"), HS_OK);
        }
        struct hs_err err = {0};
        assert_null(promql__parse(b.p, b.len, &arena, &err));
        assert_int_equal(err.code, HS_EPARSE);
        assert_non_null(strstr(err.msg, "nesting is deeper than 500 levels"));
        hs_buf_cleanup(&b);
    }
    /* 400 levels are fine. */
    struct hs_buf b;
    hs_buf_init(&b, 0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(hs_buf_puts(&b, "("), HS_OK);
    assert_int_equal(hs_buf_puts(&b, "1"), HS_OK);
    for (int i = 0; i < 400; i++)
        assert_int_equal(hs_buf_puts(&b, ")"), HS_OK);
    struct hs_err err = {0};
    assert_non_null(promql__parse(b.p, b.len, &arena, &err));
    hs_buf_cleanup(&b);
}

static void parser_fails_cleanly_when_any_allocation_fails(void **state)
{
    (void)state;
    const char *q = "sum by (job) (rate(http_requests_total{job=~\"api|web\",code!=\"500\"}[5m] "
                    "offset 1m)) / on(job) group_left(team) max(team_info) > bool 0.5";
    int successes = 0;
    for (long i = 0; i < 200; i++) {
        struct hs_arena a;
        hs_arena_init(&a, 256, 0);
        struct hs_err err = {0};
        hs_alloc_fail_after(i);
        struct promql_node *n = promql__parse(q, strlen(q), &a, &err);
        struct hs_buf b;
        hs_buf_init(&b, 0);
        int prc = n ? promql__print(n, &b) : HS_OK;
        hs_alloc_fail_after(-1);
        if (n == NULL)
            assert_int_equal(err.code, HS_ENOMEM);
        else if (prc == HS_OK)
            successes++;
        else
            assert_int_equal(prc, HS_ENOMEM);
        hs_buf_cleanup(&b);
        hs_arena_cleanup(&a);
    }
    assert_true(successes > 0);
}

/* ---- printing ------------------------------------------------------------- */

static void printer_writes_canonical_prometheus_text(void **state)
{
    (void)state;
    struct {
        const char *q, *want;
    } cases[] = {
        {"sum(foo) by (a,b)", "sum by (a, b) (foo)"},
        {"sum without(a)(foo)", "sum without (a) (foo)"},
        {"sum by () (foo)", "sum(foo)"},
        {"topk(5,foo)", "topk(5, foo)"},
        {"foo{b=\"2\",a=\"1\"}", "foo{a=\"1\",b=\"2\"}"},
        {"{__name__=\"foo\",a=\"1\"}", "{__name__=\"foo\",a=\"1\"}"},
        {"{\"my.metric\"}", "{__name__=\"my.metric\"}"},
        {"x{\"a.b\"=~'c'}", "x{\"a.b\"=~\"c\"}"},
        {"sum by (\"a.b\", c) (x)", "sum by (\"a.b\", c) (x)"},
        {"foo offset 5m @ 10", "foo @ 10.000 offset 5m"},
        {"foo offset -90s", "foo offset -1m30s"},
        {"foo[90s] @ start()", "foo[1m30s] @ start()"},
        {"foo[1h:]", "foo[1h:]"},
        {"rate(foo[5m])[30m:1m] offset 1w", "rate(foo[5m])[30m:1m] offset 1w"},
        {"foo[8d]", "foo[8d]"},
        {"foo[14d]", "foo[2w]"},
        {"foo[365d]", "foo[1y]"},
        {"a+on(x)group_left(y)b", "a + on (x) group_left (y) b"},
        {"a+ignoring(x)b", "a + ignoring (x) b"},
        {"a+on()b", "a + on () b"},
        {"a and b", "a and b"},
        {"a > bool 1", "a > bool 1"},
        {"1e3", "1000"},
        {"0x10", "16"},
        {"1e-7", "0.0000001"},
        {"1.5", "1.5"},
        {"-Inf", "-Inf"},
        {"NaN", "NaN"},
        {"0.1", "0.1"},
        {"-(1)", "-(1)"},
        {"-2^2", "-2 ^ 2"},
        {"'a\\tb\"c'", "\"a\\tb\\\"c\""},
        {"`a\\b`", "\"a\\\\b\""},
        {"count_values('v', x)", "count_values(\"v\", x)"},
        {"label_replace(x, 'a', '$1', 'b', '(.*)')",
         "label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")"},
        {"x @ 1.5", "x @ 1.500"},
        {"x @ -1.5", "x @ -1.500"},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++)
        assert_prints(cases[i].q, cases[i].want);
}

/* ---- round trip over the conformance files --------------------------------- */

static bool strs_equal(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return false;
    }
    return true;
}

static bool matcher_in(const struct promql_label_matcher *m, const struct promql_node *s)
{
    for (size_t i = 0; i < s->u.sel.nmatchers; i++) {
        const struct promql_label_matcher *o = &s->u.sel.matchers[i];
        if (o->op == m->op && strcmp(o->name, m->name) == 0 && strcmp(o->value, m->value) == 0)
            return true;
    }
    return false;
}

static bool num_equal(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static bool tree_equal(const struct promql_node *a, const struct promql_node *b);

static bool opt_equal(const struct promql_node *a, const struct promql_node *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return tree_equal(a, b);
}

/* Structural equality; matchers compare as sets (the printer sorts them). */
static bool tree_equal(const struct promql_node *a, const struct promql_node *b)
{
    if (a->kind != b->kind || a->type != b->type)
        return false;
    switch (a->kind) {
    case PROMQL_NODE_NUMBER:
        return num_equal(a->u.num.value, b->u.num.value);
    case PROMQL_NODE_STRING:
        return strcmp(a->u.str.value, b->u.str.value) == 0;
    case PROMQL_NODE_VECTOR:
        if (!opt_equal(a->u.sel.offset_expr, b->u.sel.offset_expr))
            return false;
        if (a->u.sel.nmatchers != b->u.sel.nmatchers || a->u.sel.offset_ms != b->u.sel.offset_ms ||
            a->u.sel.at != b->u.sel.at || a->u.sel.at_ms != b->u.sel.at_ms)
            return false;
        if ((a->u.sel.name == NULL) != (b->u.sel.name == NULL) ||
            (a->u.sel.name && strcmp(a->u.sel.name, b->u.sel.name) != 0))
            return false;
        for (size_t i = 0; i < a->u.sel.nmatchers; i++) {
            if (!matcher_in(&a->u.sel.matchers[i], b))
                return false;
        }
        return true;
    case PROMQL_NODE_MATRIX:
        return a->u.matrix.range_ms == b->u.matrix.range_ms &&
               opt_equal(a->u.matrix.range_expr, b->u.matrix.range_expr) &&
               tree_equal(a->u.matrix.vector, b->u.matrix.vector);
    case PROMQL_NODE_SUBQUERY:
        return a->u.subquery.range_ms == b->u.subquery.range_ms &&
               opt_equal(a->u.subquery.range_expr, b->u.subquery.range_expr) &&
               opt_equal(a->u.subquery.step_expr, b->u.subquery.step_expr) &&
               opt_equal(a->u.subquery.offset_expr, b->u.subquery.offset_expr) &&
               a->u.subquery.step_ms == b->u.subquery.step_ms &&
               a->u.subquery.offset_ms == b->u.subquery.offset_ms &&
               a->u.subquery.at == b->u.subquery.at && a->u.subquery.at_ms == b->u.subquery.at_ms &&
               tree_equal(a->u.subquery.expr, b->u.subquery.expr);
    case PROMQL_NODE_CALL:
        if (a->u.call.func != b->u.call.func || a->u.call.nargs != b->u.call.nargs)
            return false;
        for (size_t i = 0; i < a->u.call.nargs; i++) {
            if (!tree_equal(a->u.call.args[i], b->u.call.args[i]))
                return false;
        }
        return true;
    case PROMQL_NODE_AGGREGATE:
        if (a->u.agg.op != b->u.agg.op || a->u.agg.without != b->u.agg.without ||
            !strs_equal(a->u.agg.grouping, a->u.agg.ngrouping, b->u.agg.grouping,
                        b->u.agg.ngrouping))
            return false;
        if ((a->u.agg.param == NULL) != (b->u.agg.param == NULL) ||
            (a->u.agg.param && !tree_equal(a->u.agg.param, b->u.agg.param)))
            return false;
        return tree_equal(a->u.agg.expr, b->u.agg.expr);
    case PROMQL_NODE_BINARY:
        return a->u.bin.op == b->u.bin.op && a->u.bin.return_bool == b->u.bin.return_bool &&
               a->u.bin.fill_left_set == b->u.bin.fill_left_set &&
               a->u.bin.fill_right_set == b->u.bin.fill_right_set &&
               (!a->u.bin.fill_left_set || num_equal(a->u.bin.fill_left, b->u.bin.fill_left)) &&
               (!a->u.bin.fill_right_set || num_equal(a->u.bin.fill_right, b->u.bin.fill_right)) &&
               a->u.bin.card == b->u.bin.card && a->u.bin.on == b->u.bin.on &&
               strs_equal(a->u.bin.match_labels, a->u.bin.nmatch_labels, b->u.bin.match_labels,
                          b->u.bin.nmatch_labels) &&
               strs_equal(a->u.bin.include, a->u.bin.ninclude, b->u.bin.include,
                          b->u.bin.ninclude) &&
               tree_equal(a->u.bin.lhs, b->u.bin.lhs) && tree_equal(a->u.bin.rhs, b->u.bin.rhs);
    case PROMQL_NODE_UNARY:
        return a->u.unary.op == b->u.unary.op && tree_equal(a->u.unary.expr, b->u.unary.expr);
    case PROMQL_NODE_PAREN:
        return tree_equal(a->u.paren.expr, b->u.paren.expr);
    default:
        return false;
    }
}

/* The PromQL text of an eval line, or NULL for any other line. */
static const char *eval_query(char *line, bool *is_fail)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (strncmp(line, "eval", 4) != 0)
        return NULL;
    *is_fail = strncmp(line, "eval_fail", 9) == 0;
    char *p = line;
    /* Skip the command word, then "instant at T" or "range from A to B step S". */
    int words = 0;
    char *cmd_end = strpbrk(p, " \t");
    if (cmd_end == NULL)
        return NULL;
    p = cmd_end;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "instant", 7) == 0)
        words = 3;
    else if (strncmp(p, "range", 5) == 0)
        words = 7;
    else
        return NULL;
    for (int i = 0; i < words; i++) {
        p = strpbrk(p, " \t");
        if (p == NULL)
            return NULL;
        while (*p == ' ' || *p == '\t')
            p++;
    }
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
        p[--n] = '\0';
    return p;
}

/* Experimental syntax the tree cannot hold yet; queries using it may fail. */
static bool uses_unsupported_syntax(const char *q)
{
    const char *words[] = {"smoothed", "anchored"};
    for (size_t i = 0; i < HS_ARRAY_LEN(words); i++) {
        if (strstr(q, words[i]) != NULL)
            return true;
    }
    return false;
}

static void parser_round_trips_every_query_of_the_conformance_files(void **state)
{
    (void)state;
    const char *shared = getenv("HS_SHARED_DIR");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/conformance/promql/testdata",
             shared ? shared : "../../../shared");
    DIR *d = opendir(dir);
    if (d == NULL)
        fail_msg("cannot open %s", dir);
    struct dirent *de;
    int queries = 0, parsed = 0, unsupported = 0;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 5, ".test") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char line[8192];
        int lineno = 0;
        while (fgets(line, sizeof(line), f) != NULL) {
            lineno++;
            bool is_fail = false;
            const char *q = eval_query(line, &is_fail);
            if (q == NULL)
                continue;
            queries++;
            struct hs_err err = {0};
            struct promql_node *t1 = promql__parse(q, strlen(q), &arena, &err);
            if (t1 == NULL) {
                if (uses_unsupported_syntax(q) || is_fail) {
                    unsupported++;
                    continue;
                }
                fail_msg("%s:%d: %s: %s", de->d_name, lineno, q, err.msg);
            }
            parsed++;
            struct hs_buf b;
            hs_buf_init(&b, 0);
            assert_int_equal(promql__print(t1, &b), HS_OK);
            struct promql_node *t2 = promql__parse(b.p, b.len, &arena, &err);
            if (t2 == NULL)
                fail_msg("%s:%d: %s printed as %s does not parse: %s", de->d_name, lineno, q, b.p,
                         err.msg);
            if (!tree_equal(t1, t2))
                fail_msg("%s:%d: %s printed as %s parses to another tree", de->d_name, lineno, q,
                         b.p);
            hs_buf_cleanup(&b);
            hs_arena_reset(&arena);
        }
        fclose(f);
    }
    closedir(d);
    printf("conformance queries: %d, round-tripped: %d, experimental syntax not supported: %d\n",
           queries, parsed, unsupported);
    assert_true(queries > 1000);
    assert_int_equal(parsed + unsupported, queries);
}

static void parse_duration_reads_units_and_plain_seconds(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_int_equal(promql__parse_duration("1h30m", 5, &ms), HS_OK);
    assert_int_equal(ms, 5400000);
    assert_int_equal(promql__parse_duration("250ms", 5, &ms), HS_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(promql__parse_duration("0", 1, &ms), HS_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(promql__parse_duration("1.5", 3, &ms), HS_OK);
    assert_int_equal(ms, 1500);
    assert_int_equal(promql__parse_duration("1y2w", 4, &ms), HS_OK);
    assert_int_equal(ms, (365LL + 14) * 86400000);
    assert_int_equal(promql__parse_duration("5m1h", 4, &ms), HS_EPARSE);
    assert_int_equal(promql__parse_duration("5x", 2, &ms), HS_EPARSE);
    assert_int_equal(promql__parse_duration("", 0, &ms), HS_EPARSE);
    assert_int_equal(promql__parse_duration("-1s", 3, &ms), HS_EPARSE);
    assert_int_equal(promql__parse_duration("99999999999y", 12, &ms), HS_EPARSE);
}

static void binop_helpers_classify_and_name_operators(void **state)
{
    (void)state;
    assert_true(promql__binop_is_comparison(PROMQL_OP_GTE));
    assert_false(promql__binop_is_comparison(PROMQL_OP_ADD));
    assert_true(promql__binop_is_set(PROMQL_OP_UNLESS));
    assert_false(promql__binop_is_set(PROMQL_OP_EQL));
    assert_string_equal(promql__binop_name(PROMQL_OP_ATAN2), "atan2");
    assert_string_equal(promql__binop_name(PROMQL_OP_NEQ), "!=");
    assert_string_equal(promql__aggop_name(PROMQL_AGG_LIMIT_RATIO), "limit_ratio");
    assert_string_equal(promql__aggop_name(PROMQL_AGG_COUNT_VALUES), "count_values");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parser_follows_prometheus_operator_precedence),
        cmocka_unit_test(parser_binds_unary_minus_weaker_than_power),
        cmocka_unit_test(parser_folds_a_sign_into_a_number_literal),
        cmocka_unit_test(parser_reads_number_literal_forms),
        cmocka_unit_test(parser_reads_selectors_with_every_matcher),
        cmocka_unit_test(parser_reads_quoted_utf8_metric_and_label_names),
        cmocka_unit_test(parser_allows_keywords_and_aggregators_as_metric_names),
        cmocka_unit_test(parser_applies_offset_and_at_to_the_selector_just_before_them),
        cmocka_unit_test(parser_reads_subqueries_with_and_without_step),
        cmocka_unit_test(parser_folds_constant_duration_expressions),
        cmocka_unit_test(parser_keeps_duration_expressions_using_step_or_range_as_trees),
        cmocka_unit_test(parser_reads_fill_modifiers),
        cmocka_unit_test(parser_reads_aggregations_with_grouping_before_or_after),
        cmocka_unit_test(parser_reads_vector_matching_modifiers),
        cmocka_unit_test(parser_types_calls_and_checks_their_arguments),
        cmocka_unit_test(parser_reports_errors_with_line_column_and_prometheus_text),
        cmocka_unit_test(parser_sets_the_byte_offset_of_an_error),
        cmocka_unit_test(parser_rejects_queries_longer_than_the_limit),
        cmocka_unit_test(parser_rejects_deep_nesting_without_exhausting_the_stack),
        cmocka_unit_test(parser_fails_cleanly_when_any_allocation_fails),
        cmocka_unit_test(printer_writes_canonical_prometheus_text),
        cmocka_unit_test(parser_round_trips_every_query_of_the_conformance_files),
        cmocka_unit_test(parse_duration_reads_units_and_plain_seconds),
        cmocka_unit_test(binop_helpers_classify_and_name_operators),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
