/* Tests of src/promql/lexer.c: tokens, their positions and lexical errors. */
#include "hs_test.h"

#include "promql/lexer.h"

#include <stdio.h>
#include <string.h>

/* Lexes 'q' and renders the tokens as "TYPE:text TYPE:text ..." (or
 * "ERROR@pos:message" for an error). */
static const char *lex_all(const char *q)
{
    static char out[2048];
    struct promql__lexer lx;
    struct promql__token t;
    size_t o = 0;
    promql__lexer_init(&lx, q, strlen(q));
    out[0] = '\0';
    for (int i = 0; i < 100; i++) {
        promql__lexer_next(&lx, &t);
        if (t.type == PROMQL_T_EOF)
            break;
        if (t.type == PROMQL_T_ERROR) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%sERROR@%zu:%s", o ? " " : "", t.pos,
                                  lx.err);
            break;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%d:%.*s", o ? " " : "", t.type,
                              (int)t.len, q + t.pos);
    }
    return out;
}

/* The type of the only token of 'q'. */
static int single_type(const char *q)
{
    struct promql__lexer lx;
    struct promql__token t, t2;
    promql__lexer_init(&lx, q, strlen(q));
    promql__lexer_next(&lx, &t);
    promql__lexer_next(&lx, &t2);
    assert_int_equal(t2.type, PROMQL_T_EOF);
    return t.type;
}

static void lexer_reads_decimal_hex_exponent_and_special_numbers(void **state)
{
    (void)state;
    const char *nums[] = {"1",     "1.5", ".5",  "1e3", "1.5E-3", "0x1f", "0X1F",
                          "1_000", "Inf", "inf", "INF", "NaN",    "nan",  "017"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (single_type(nums[i]) != PROMQL_T_NUMBER)
            fail_msg("%s is not a number token", nums[i]);
    }
}

static void lexer_reads_simple_and_compound_durations(void **state)
{
    (void)state;
    const char *durs[] = {"5m", "1h30m", "250ms", "1y", "2w", "3d", "1m30s500ms", "10s"};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        if (single_type(durs[i]) != PROMQL_T_DURATION)
            fail_msg("%s is not a duration token", durs[i]);
    }
}

static void lexer_reports_bad_numbers_with_the_text_read(void **state)
{
    (void)state;
    /* Some expectations below spell token types as numbers. */
    assert_int_equal(PROMQL_T_IDENT, 2);
    assert_int_equal(PROMQL_T_NUMBER, 4);
    assert_int_equal(PROMQL_T_DURATION, 5);
    assert_int_equal(PROMQL_T_LPAREN, 7);
    assert_int_equal(PROMQL_T_RPAREN, 8);
    assert_int_equal(PROMQL_T_LBRACE, 9);
    assert_int_equal(PROMQL_T_LBRACKET, 11);
    assert_int_equal(PROMQL_T_ADD, 17);
    assert_string_equal(lex_all("2.5."), "ERROR@0:bad number or duration syntax: \"2.5.\"");
    assert_string_equal(lex_all("0deadbeef"), "ERROR@0:bad number or duration syntax: \"0de\"");
    assert_string_equal(lex_all("x + 5mm"),
                        "2:x 17:+ ERROR@4:bad number or duration syntax: \"5mm\"");
}

static void lexer_reads_keywords_in_any_case(void **state)
{
    (void)state;
    assert_int_equal(single_type("sum"), PROMQL_T_SUM);
    assert_int_equal(single_type("SUM"), PROMQL_T_SUM);
    assert_int_equal(single_type("Without"), PROMQL_T_WITHOUT);
    assert_int_equal(single_type("group_left"), PROMQL_T_GROUP_LEFT);
    assert_int_equal(single_type("atan2"), PROMQL_T_ATAN2);
    assert_int_equal(single_type("bool"), PROMQL_T_BOOL);
    assert_int_equal(single_type("offset"), PROMQL_T_OFFSET);
    assert_int_equal(single_type("unless"), PROMQL_T_LUNLESS);
}

static void lexer_treats_fill_as_a_keyword_only_before_a_parenthesis(void **state)
{
    (void)state;
    assert_int_equal(single_type("fill"), PROMQL_T_IDENT);
    char buf[64];
    snprintf(buf, sizeof(buf), "%d:fill_left %d:( %d:0 %d:)", PROMQL_T_FILL_LEFT, PROMQL_T_LPAREN,
             PROMQL_T_NUMBER, PROMQL_T_RPAREN);
    assert_string_equal(lex_all("fill_left (0)"), buf);
}

static void lexer_keeps_colons_in_metric_names_but_not_in_label_names(void **state)
{
    (void)state;
    assert_int_equal(single_type("job:rate5m:sum"), PROMQL_T_METRIC_IDENT);
    assert_string_equal(lex_all("{a:b=\"1\"}"),
                        "9:{ 2:a ERROR@2:unexpected character inside braces: ':'");
}

static void lexer_reads_keywords_inside_braces_as_label_names(void **state)
{
    (void)state;
    char want[128];
    snprintf(want, sizeof(want), "%d:{ %d:by %d:= %d:\"x\" %d:}", PROMQL_T_LBRACE, PROMQL_T_IDENT,
             PROMQL_T_ASSIGN, PROMQL_T_STRING, PROMQL_T_RBRACE);
    assert_string_equal(lex_all("{by=\"x\"}"), want);
}

static void lexer_reads_all_matcher_and_comparison_operators(void **state)
{
    (void)state;
    char want[256];
    snprintf(want, sizeof(want),
             "%d:{ %d:a %d:=~ %d:\"x\" %d:, %d:b %d:!~ %d:'y' %d:, %d:c %d:!= %d:`z` %d:}",
             PROMQL_T_LBRACE, PROMQL_T_IDENT, PROMQL_T_EQL_REGEX, PROMQL_T_STRING, PROMQL_T_COMMA,
             PROMQL_T_IDENT, PROMQL_T_NEQ_REGEX, PROMQL_T_STRING, PROMQL_T_COMMA, PROMQL_T_IDENT,
             PROMQL_T_NEQ, PROMQL_T_STRING, PROMQL_T_RBRACE);
    assert_string_equal(lex_all("{a=~\"x\", b!~'y', c!=`z`}"), want);
    snprintf(want, sizeof(want), "%d:== %d:!= %d:<= %d:>= %d:< %d:> %d:^ %d:%% %d:@", PROMQL_T_EQLC,
             PROMQL_T_NEQ, PROMQL_T_LTE, PROMQL_T_GTE, PROMQL_T_LSS, PROMQL_T_GTR, PROMQL_T_POW,
             PROMQL_T_MOD, PROMQL_T_AT);
    assert_string_equal(lex_all("== != <= >= < > ^ % @"), want);
}

static void lexer_skips_comments_to_the_end_of_the_line(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof(want), "%d:foo %d:+ %d:bar", PROMQL_T_IDENT, PROMQL_T_ADD,
             PROMQL_T_IDENT);
    assert_string_equal(lex_all("foo # a comment\n+ bar # another"), want);
}

static void lexer_switches_to_duration_tokens_inside_brackets(void **state)
{
    (void)state;
    char want[160];
    snprintf(want, sizeof(want), "%d:x %d:[ %d:5m %d:+ %d:step %d:( %d:) %d:: %d:1m %d:]",
             PROMQL_T_IDENT, PROMQL_T_LBRACKET, PROMQL_T_DURATION, PROMQL_T_ADD, PROMQL_T_STEP,
             PROMQL_T_LPAREN, PROMQL_T_RPAREN, PROMQL_T_COLON, PROMQL_T_DURATION,
             PROMQL_T_RBRACKET);
    assert_string_equal(lex_all("x[5m + step():1m]"), want);
    assert_string_equal(lex_all("x[5s x 5s]"),
                        "2:x 11:[ 5:5s ERROR@5:unexpected character: 'x', expected ':'");
    assert_string_equal(lex_all("x[foo]"),
                        "2:x 11:[ ERROR@2:unexpected character in duration expression: 'f'");
}

static void lexer_validates_string_escapes(void **state)
{
    (void)state;
    assert_string_equal(lex_all("\"\\c\""), "ERROR@0:unknown escape sequence U+0063 'c'");
    assert_string_equal(lex_all("\"\\x.\""),
                        "ERROR@0:illegal character U+002E '.' in escape sequence");
    assert_string_equal(lex_all("\"\\"), "ERROR@0:escape sequence not terminated");
    assert_string_equal(lex_all("\"\\uD800\""),
                        "ERROR@0:escape sequence is an invalid Unicode code point");
    assert_string_equal(lex_all("'abc"), "ERROR@0:unterminated quoted string");
    assert_string_equal(lex_all("`abc"), "ERROR@0:unterminated raw string");
    assert_string_equal(lex_all("\"a\xffz\""), "ERROR@0:invalid UTF-8 rune");
    assert_int_equal(single_type("\"\\u00e9\\U0001F600\\x41\\101\\n\\\"\""), PROMQL_T_STRING);
    assert_int_equal(single_type("'it\\'s'"), PROMQL_T_STRING);
}

static void unquote_applies_go_escapes_and_keeps_raw_strings_verbatim(void **state)
{
    (void)state;
    char out[64];
    size_t n;
    const char *q1 = "\"a\\tb\\u00e9\\x41\\101\\\\\"";
    assert_true(promql__unquote(q1, strlen(q1), out, &n));
    assert_int_equal(n, 8);
    assert_memory_equal(out,
                        "a\tb\xc3\xa9"
                        "AA\\",
                        8);
    const char *q2 = "`a\\nb`";
    assert_true(promql__unquote(q2, strlen(q2), out, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(out, "a\\nb", 4);
    const char *q3 = "'x\\'y'";
    assert_true(promql__unquote(q3, strlen(q3), out, &n));
    assert_memory_equal(out, "x'y", 3);
    const char *bad = "\"\\q\"";
    assert_false(promql__unquote(bad, strlen(bad), out, &n));
}

static void lexer_reports_unbalanced_parentheses_and_brackets(void **state)
{
    (void)state;
    assert_string_equal(lex_all("(1))"), "7:( 4:1 8:) ERROR@4:unexpected right parenthesis ')'");
    assert_string_equal(lex_all("(1"), "7:( 4:1 ERROR@2:unclosed left parenthesis");
    assert_string_equal(lex_all("x[5m"), "2:x 11:[ 5:5m ERROR@4:unclosed left bracket");
    assert_string_equal(lex_all("]"), "ERROR@0:unexpected right bracket ']'");
    assert_string_equal(lex_all("}"), "ERROR@0:unexpected character: '}'");
    assert_string_equal(lex_all("{"), "9:{ ERROR@1:unexpected end of input inside braces");
}

static void tok_describe_names_tokens_as_prometheus_messages_do(void **state)
{
    (void)state;
    struct {
        const char *q;
        const char *want;
    } cases[] = {
        {"foo", "identifier \"foo\""},
        {"a:b", "metric identifier \"a:b\""},
        {"12", "number \"12\""},
        {"5m", "duration \"5m\""},
        {"\"abc\"", "string \"\\\"abc\\\"\""},
        {"\"abcdefghijkl\"", "string \"\\\"abcdefghi\"..."},
        {"(", "\"(\""},
        {"+", "<op:+>"},
        {"and", "<op:and>"},
        {"sum", "<aggr:sum>"},
        {"by", "<by>"},
        {"start", "\"start\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct promql__lexer lx;
        struct promql__token t;
        char out[128];
        promql__lexer_init(&lx, cases[i].q, strlen(cases[i].q));
        promql__lexer_next(&lx, &t);
        promql__tok_describe(cases[i].q, &t, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
    struct promql__token eof = {PROMQL_T_EOF, 0, 0};
    char out[32];
    promql__tok_describe("", &eof, out, sizeof(out));
    assert_string_equal(out, "end of input");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lexer_reads_decimal_hex_exponent_and_special_numbers),
        cmocka_unit_test(lexer_reads_simple_and_compound_durations),
        cmocka_unit_test(lexer_reports_bad_numbers_with_the_text_read),
        cmocka_unit_test(lexer_reads_keywords_in_any_case),
        cmocka_unit_test(lexer_treats_fill_as_a_keyword_only_before_a_parenthesis),
        cmocka_unit_test(lexer_keeps_colons_in_metric_names_but_not_in_label_names),
        cmocka_unit_test(lexer_reads_keywords_inside_braces_as_label_names),
        cmocka_unit_test(lexer_reads_all_matcher_and_comparison_operators),
        cmocka_unit_test(lexer_skips_comments_to_the_end_of_the_line),
        cmocka_unit_test(lexer_switches_to_duration_tokens_inside_brackets),
        cmocka_unit_test(lexer_validates_string_escapes),
        cmocka_unit_test(unquote_applies_go_escapes_and_keeps_raw_strings_verbatim),
        cmocka_unit_test(lexer_reports_unbalanced_parentheses_and_brackets),
        cmocka_unit_test(tok_describe_names_tokens_as_prometheus_messages_do),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
