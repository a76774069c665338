/*
 * test_scorers.c - each quality check on clear positives and negatives,
 * multibyte text, empty strings and huge inputs, plus the composite score,
 * the JSON form of the scores and the weight configuration.
 */
#include "hs_test.h"
#include "quality/quality.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) (lit), strlen(lit)

static void assert_fail(struct qual_check_result r)
{
    assert_int_equal(r.result, QUAL_FAIL);
    assert_true(r.score < QUAL_FAIL_BELOW);
}

static void assert_pass(struct qual_check_result r)
{
    assert_int_equal(r.result, QUAL_PASS);
    assert_true(r.score >= QUAL_FAIL_BELOW && r.score <= 1.0);
}

static void assert_skip(struct qual_check_result r)
{
    assert_int_equal(r.result, QUAL_SKIP);
}

/* A long natural-looking answer: words drawn from a list by an LCG. */
static char *natural_text(size_t words, unsigned seed)
{
    static const char *const w[] = {
        "latency", "model",  "server",   "tokens",  "request", "cache",  "memory", "the",
        "a",       "of",     "batch",    "queue",   "answer",  "slowly", "grows",  "when",
        "every",   "signal", "measures", "careful", "users",   "data",   "system", "fast",
        "replica", "node",   "power",    "fleet",   "shows",   "after",  "before", "often",
        "value",   "result", "simple",   "steady",  "first",   "next",   "useful", "metric"};
    char *s = malloc(words * 12 + 1);
    size_t n = 0;
    unsigned x = seed;
    for (size_t i = 0; i < words; i++) {
        x = x * 1103515245u + 12345u;
        const char *p = w[(x >> 16) % (sizeof(w) / sizeof(w[0]))];
        size_t l = strlen(p);
        memcpy(s + n, p, l);
        n += l;
        s[n++] = (i % 11 == 10) ? '.' : ' ';
    }
    s[n] = '\0';
    return s;
}

static void empty_check_fails_on_empty_and_whitespace_output(void **state)
{
    (void)state;
    assert_fail(qual_score_empty(NULL, 0));
    assert_fail(qual_score_empty(S("")));
    assert_fail(qual_score_empty(S(" \n\t \r\n")));
    assert_fail(qual_score_empty(S("\xe3\x80\x80\xc2\xa0"))); /* ideographic space, NBSP */
    assert_pass(qual_score_empty(S("Paris.")));
    assert_pass(qual_score_empty(S("\xe5\xb7\xb4\xe9\xbb\x8e"))); /* 巴黎 */
}

static void truncation_check_fails_on_finish_reason_length(void **state)
{
    (void)state;
    assert_skip(qual_score_truncation(NULL, S("text")));
    assert_pass(qual_score_truncation("stop", S("text")));
    assert_pass(qual_score_truncation("tool_calls", S("")));
    struct qual_check_result r = qual_score_truncation("length", S("Dear customer, we"));
    assert_fail(r);
    assert_true(r.score > 0.0);
    r = qual_score_truncation("length", S(""));
    assert_fail(r);
    assert_true(r.score == 0.0);
}

static void repetition_check_catches_a_word_loop(void **state)
{
    (void)state;
    assert_fail(qual_score_repetition(S("the the the the the the the the")));
    char buf[4096];
    size_t n = 0;
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", " I think the answer is");
    assert_fail(qual_score_repetition(buf, n));
}

static void repetition_check_catches_loops_without_spaces(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    for (int i = 0; i < 100; i++) /* 我觉得, no spaces */
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s",
                              "\xe6\x88\x91\xe8\xa7\x89\xe5\xbe\x97");
    assert_fail(qual_score_repetition(buf, n));
    memset(buf, 'a', 2000);
    buf[2000] = '\0';
    assert_fail(qual_score_repetition(buf, 2000));
}

static void repetition_check_passes_natural_text(void **state)
{
    (void)state;
    char *t = natural_text(800, 7);
    assert_pass(qual_score_repetition(t, strlen(t)));
    free(t);
    assert_pass(qual_score_repetition(
        S("The capital of France is Paris. It has been the capital since the tenth century, "
          "and it is also the largest city in the country.")));
    /* Chinese prose: each character is a word. */
    assert_pass(qual_score_repetition(S("巴黎是法国的首都，也是法国最大的城市。它位于塞纳河畔，"
                                        "有着悠久的历史和丰富的文化遗产。")));
    /* A short run of one-character words is data, not a loop. */
    assert_pass(qual_score_repetition(
        S("Set the bias vector to 0 0 0 0 0 0 before training the first layer of the network "
          "again, then compare the loss curves of both runs side by side.")));
    /* A JSON array repeats its keys by nature. */
    assert_pass(qual_score_repetition(
        S("[{\"name\": \"alpha\", \"value\": 1}, {\"name\": \"beta\", \"value\": 2}, "
          "{\"name\": \"gamma\", \"value\": 3}, {\"name\": \"delta\", \"value\": 4}]")));
}

static void repetition_check_skips_short_answers(void **state)
{
    (void)state;
    assert_skip(qual_score_repetition(S("Yes.")));
    assert_skip(qual_score_repetition(S("")));
    assert_skip(qual_score_repetition(NULL, 0));
    assert_pass(qual_score_repetition(S("no no no, the answer is four")));
}

static void refusal_check_catches_common_forms_in_several_languages(void **state)
{
    (void)state;
    assert_fail(qual_score_refusal(S("I'm sorry, but I can't help with that.")));
    assert_fail(
        qual_score_refusal(S("I\xe2\x80\x99m sorry, but I CAN\xe2\x80\x99T help with that.")));
    assert_fail(qual_score_refusal(S("As an AI language model, I cannot do this.")));
    assert_fail(qual_score_refusal(S("Lo siento, pero no puedo ayudarte con eso.")));
    assert_fail(qual_score_refusal(S("DÉSOLÉ, MAIS JE NE PEUX PAS répondre à cette question.")));
    assert_fail(qual_score_refusal(S("Es tut mir leid, aber ich kann dabei nicht helfen.")));
    assert_fail(qual_score_refusal(S("Извините, но я не могу помочь с этим.")));
    assert_fail(qual_score_refusal(S("ИЗВИНИТЕ, НО Я НЕ МОГУ ПОМОЧЬ.")));
    assert_fail(qual_score_refusal(S("抱歉，我无法帮助你完成这个请求。")));
    assert_fail(qual_score_refusal(S("申し訳ありませんが、お手伝いできません。")));
    assert_fail(qual_score_refusal(S("죄송하지만 도와드릴 수 없습니다.")));
    assert_fail(qual_score_refusal(S("عذراً، لا أستطيع المساعدة في ذلك.")));
    assert_fail(qual_score_refusal(S("Desculpe, mas não posso ajudar com isso.")));
}

static void refusal_check_passes_helpful_answers(void **state)
{
    (void)state;
    assert_pass(qual_score_refusal(S("The capital of France is Paris.")));
    assert_pass(qual_score_refusal(S("I'm sorry, but I can help with part of that: here it is.")));
    assert_pass(qual_score_refusal(S("Я могу помочь: столица Франции - Париж.")));
    assert_skip(qual_score_refusal(S("")));
    /* A refusal of one part, late in a long answer, lowers but passes. */
    char *t = natural_text(200, 3);
    size_t n = strlen(t);
    char *u = malloc(n + 64);
    memcpy(u, t, n);
    memcpy(u + n, " I can't help with the last part.", 34);
    struct qual_check_result r = qual_score_refusal(u, n + 33);
    assert_pass(r);
    assert_true(r.score < 1.0);
    free(u);
    free(t);
}

static void language_check_detects_a_script_mismatch(void **state)
{
    (void)state;
    assert_int_equal(qual_dominant_script(S("Какая столица Франции?"), 8), QUAL_SCRIPT_CYRILLIC);
    assert_int_equal(qual_dominant_script(S("法国的首都是哪里？"), 8), QUAL_SCRIPT_CJK);
    assert_int_equal(qual_dominant_script(S("ما هي عاصمة فرنسا؟"), 8), QUAL_SCRIPT_ARABIC);
    assert_int_equal(qual_dominant_script(S("Hi"), 8), QUAL_SCRIPT_NONE);
    assert_fail(qual_score_language(S("Какая столица Франции? Ответь кратко."),
                                    S("The capital of France is Paris.")));
    assert_fail(qual_score_language(S("What is the capital of France?"),
                                    S("法国的首都是巴黎，也是法国最大的城市。")));
    assert_fail(
        qual_score_language(S("ما هي عاصمة فرنسا؟"), S("La capitale de la France est Paris.")));
}

static void language_check_passes_matching_scripts_and_code(void **state)
{
    (void)state;
    assert_pass(qual_score_language(S("Какая столица Франции? Ответь кратко."),
                                    S("Столица Франции - Париж.")));
    assert_pass(qual_score_language(S("What is the capital of France?"), S("Paris, of course.")));
    assert_pass(qual_score_language(S("Quelle est la capitale de la France ?"),
                                    S("La capitale de la France est Paris.")));
    /* Russian answer with Latin code inside. */
    assert_pass(qual_score_language(S("Как отсортировать список в Python?"),
                                    S("Используйте функцию sorted(items, key=len) или метод "
                                      "list.sort(); оба работают.")));
    /* Chinese answer with an English library name. */
    assert_pass(qual_score_language(S("如何在Python中读取CSV文件？"),
                                    S("使用 pandas 库的 read_csv 函数读取文件。")));
    assert_skip(qual_score_language(S("Hi"), S("Hello there, how are you?")));
    assert_skip(qual_score_language(NULL, 0, S("Hello there")));
}

static void json_check_needs_a_json_document_when_asked(void **state)
{
    (void)state;
    assert_skip(qual_score_json(false, S("not json")));
    assert_pass(qual_score_json(true, S("{\"city\":\"Paris\"}")));
    assert_pass(qual_score_json(true, S("  \n[1, 2, 3]\n")));
    assert_fail(qual_score_json(true, S("{\"city\":\"Paris\"")));
    assert_fail(qual_score_json(true, S("Sure! {\"city\":\"Paris\"}")));
    assert_fail(qual_score_json(true, S("")));
    struct qual_check_result r =
        qual_score_json(true, S("Here you go:\n```json\n{\"city\":\"Paris\"}\n```\n"));
    assert_fail(r);
    assert_true(r.score > 0.2 && r.score < 0.4);
}

static void length_check_fails_far_from_the_median(void **state)
{
    (void)state;
    assert_skip(qual_score_length(100, 0));
    assert_skip(qual_score_length(-1, 100));
    assert_pass(qual_score_length(100, 100));
    assert_pass(qual_score_length(190, 100));
    assert_pass(qual_score_length(55, 100));
    assert_fail(qual_score_length(500, 100));
    assert_fail(qual_score_length(20, 100));
    assert_true(qual_score_length(4000, 100).score == 0.0);
}

static void encoding_check_catches_invalid_utf8_and_control_garbage(void **state)
{
    (void)state;
    assert_pass(qual_score_encoding(S("Plain text with\ttabs and\nnewlines.")));
    assert_pass(qual_score_encoding(S("Émile a mangé 寿司 🍣.")));
    assert_fail(qual_score_encoding(S("bad \xc0\xaf overlong")));
    assert_fail(qual_score_encoding(S("surrogate \xed\xa0\x80 here")));
    assert_fail(qual_score_encoding(S("cut \xe5\xb7")));
    assert_fail(qual_score_encoding(S("\x01\x02\x03\x04garbage\x1b[0m\x7f\x7f")));
    assert_fail(qual_score_encoding(S("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd??")));
    assert_skip(qual_score_encoding(S("")));
    /* One stray control character in a long text lowers but passes. */
    char *t = natural_text(100, 5);
    t[50] = '\x07';
    assert_pass(qual_score_encoding(t, strlen(t)));
    free(t);
}

static void scorers_stay_bounded_on_huge_inputs(void **state)
{
    (void)state;
    size_t n = 32u << 20; /* 32 MiB */
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = "abcdefgh ijklmnop"[i % 17];
    struct qual_input in;
    qual_input_init(&in);
    in.output = big;
    in.output_len = n;
    in.prompt = big;
    in.prompt_len = n;
    in.wants_json = true;
    in.finish_reason = "stop";
    struct qual_config c;
    qual_config_defaults(&c);
    struct qual_scores s;
    qual_score_all(&c, &in, 1000, &s);
    assert_int_equal(s.checks[QUAL_CHECK_REPETITION].result, QUAL_FAIL);
    assert_int_equal(s.checks[QUAL_CHECK_JSON].result, QUAL_FAIL);
    assert_int_equal(s.output_tokens, (int64_t)(n / 4));
    free(big);
}

static void composite_weights_the_checks_that_ran(void **state)
{
    (void)state;
    struct qual_config c;
    qual_config_defaults(&c);
    struct qual_input in;
    qual_input_init(&in);
    in.prompt = "What is the capital of France?";
    in.prompt_len = strlen(in.prompt);
    in.output = "The capital of France is Paris.";
    in.output_len = strlen(in.output);
    in.finish_reason = "stop";
    struct qual_scores s;
    qual_score_all(&c, &in, 0, &s);
    assert_true(s.composite == 1.0);
    assert_int_equal(s.failed_mask, 0);
    assert_int_equal(s.checks[QUAL_CHECK_JSON].result, QUAL_SKIP);
    assert_int_equal(s.checks[QUAL_CHECK_LENGTH].result, QUAL_SKIP);

    /* A refusal: the refusal check scores 0 and takes its weight away. */
    in.output = "I'm sorry, but I can't help with that request at all.";
    in.output_len = strlen(in.output);
    qual_score_all(&c, &in, 0, &s);
    assert_int_equal(s.failed_mask, 1u << QUAL_CHECK_REFUSAL);
    assert_true(fabs(s.composite - (1.0 - c.weights[QUAL_CHECK_REFUSAL])) < 1e-9);

    /* Penalties compound: a truncated refusal. */
    in.finish_reason = "length";
    qual_score_all(&c, &in, 0, &s);
    assert_true(fabs(s.composite - (1.0 - c.weights[QUAL_CHECK_REFUSAL]) *
                                       (1.0 - c.weights[QUAL_CHECK_TRUNCATION] * 0.8)) < 1e-9);

    /* A weight of 0 leaves a check out of the composite but still flags it. */
    c.weights[QUAL_CHECK_REFUSAL] = 0;
    in.finish_reason = "stop";
    qual_score_all(&c, &in, 0, &s);
    assert_true(s.composite == 1.0);
    assert_int_equal(s.failed_mask, 1u << QUAL_CHECK_REFUSAL);
    qual_config_defaults(&c);

    /* Empty output scores 0 whatever the rest. */
    in.output = "";
    in.output_len = 0;
    qual_score_all(&c, &in, 0, &s);
    assert_true(s.composite == 0.0);
    assert_true(s.failed_mask & (1u << QUAL_CHECK_EMPTY));

    /* Not a generation: nothing is scored. */
    in.is_scorable = false;
    qual_score_all(&c, &in, 0, &s);
    assert_true(s.composite == 1.0);
    assert_int_equal(s.failed_mask, 0);
}

static void weights_parse_and_reject_unknown_checks(void **state)
{
    (void)state;
    struct qual_config c;
    qual_config_defaults(&c);
    struct hs_err err = {0};
    assert_int_equal(qual_config_parse_weights(&c, "refusal=0.5,length=0", &err), HS_OK);
    assert_true(c.weights[QUAL_CHECK_REFUSAL] == 0.5);
    assert_true(c.weights[QUAL_CHECK_LENGTH] == 0.0);
    assert_int_equal(qual_config_parse_weights(&c, "refusal=1,tone=2", &err), HS_EINVAL);
    assert_int_equal(err.pos, 10);
    assert_non_null(strstr(err.msg, "unknown check \"tone\""));
    assert_true(c.weights[QUAL_CHECK_REFUSAL] == 0.5); /* unchanged */
    assert_int_equal(qual_config_parse_weights(&c, "json=-1", &err), HS_EINVAL);
    assert_int_equal(qual_config_parse_weights(&c, "json=2", &err), HS_EINVAL);
    assert_int_equal(qual_config_parse_weights(&c, "json", &err), HS_EINVAL);
    assert_int_equal(qual_config_parse_weights(&c, "json=", &err), HS_EINVAL);
}

static void yaml_section_sets_weights_and_windows(void **state)
{
    (void)state;
    const char *y = "quality:\n  weights: {refusal: 0.25}\n  drift: {reference: 100, recent: 50, "
                    "min_recent: 10}\n  length: {window: 51}\n";
    struct hs_err err = {0};
    struct hs_ydoc *d = hs_ydoc_parse(y, strlen(y), "q.yml", &err);
    assert_non_null(d);
    struct qual_config c;
    qual_config_defaults(&c);
    assert_int_equal(qual_config_parse(d, hs_ynode_get(d->root, "quality"), &c, &err), HS_OK);
    assert_true(c.weights[QUAL_CHECK_REFUSAL] == 0.25);
    assert_int_equal(c.reference_size, 100);
    assert_int_equal(c.recent_size, 50);
    assert_int_equal(c.min_recent, 10);
    assert_int_equal(c.median_window, 51);
    hs_ydoc_free(d);

    y = "quality:\n  drift: {recent: 10, min_recent: 20}\n";
    d = hs_ydoc_parse(y, strlen(y), "q.yml", &err);
    assert_int_equal(qual_config_parse(d, hs_ynode_get(d->root, "quality"), &c, &err), HS_EINVAL);
    assert_int_equal(c.recent_size, 50); /* unchanged */
    hs_ydoc_free(d);

    y = "quality:\n  weights: {tone: 1}\n";
    d = hs_ydoc_parse(y, strlen(y), "q.yml", &err);
    assert_int_equal(qual_config_parse(d, hs_ynode_get(d->root, "quality"), &c, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "q.yml:2:"));
    hs_ydoc_free(d);
}

static void scores_render_as_a_json_object(void **state)
{
    (void)state;
    struct qual_config c;
    qual_config_defaults(&c);
    struct qual_input in;
    qual_input_init(&in);
    in.output = "Dear customer, we are";
    in.output_len = strlen(in.output);
    in.finish_reason = "length";
    struct qual_scores s;
    qual_score_all(&c, &in, 0, &s);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(qual_scores_json(&s, &b), HS_OK);
    assert_non_null(strstr(b.p, "\"failed\":[\"truncation\"]"));
    assert_non_null(strstr(b.p, "\"truncation\":0.2"));
    assert_null(strstr(b.p, "\"json\""));
    assert_true(b.p[0] == '{' && b.p[b.len - 1] == '}');
    hs_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_check_fails_on_empty_and_whitespace_output),
        cmocka_unit_test(truncation_check_fails_on_finish_reason_length),
        cmocka_unit_test(repetition_check_catches_a_word_loop),
        cmocka_unit_test(repetition_check_catches_loops_without_spaces),
        cmocka_unit_test(repetition_check_passes_natural_text),
        cmocka_unit_test(repetition_check_skips_short_answers),
        cmocka_unit_test(refusal_check_catches_common_forms_in_several_languages),
        cmocka_unit_test(refusal_check_passes_helpful_answers),
        cmocka_unit_test(language_check_detects_a_script_mismatch),
        cmocka_unit_test(language_check_passes_matching_scripts_and_code),
        cmocka_unit_test(json_check_needs_a_json_document_when_asked),
        cmocka_unit_test(length_check_fails_far_from_the_median),
        cmocka_unit_test(encoding_check_catches_invalid_utf8_and_control_garbage),
        cmocka_unit_test(scorers_stay_bounded_on_huge_inputs),
        cmocka_unit_test(composite_weights_the_checks_that_ran),
        cmocka_unit_test(weights_parse_and_reject_unknown_checks),
        cmocka_unit_test(yaml_section_sets_weights_and_windows),
        cmocka_unit_test(scores_render_as_a_json_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
