/*
 * test_extract.c - building a struct qual_input from request and response
 * bodies: chat, legacy completions, Responses API, embeddings and TGI, as
 * JSON bodies and as raw SSE streams (split lines, CRLF, comments,
 * truncated streams), and malformed bodies.
 */
#include "hs_test.h"
#include "quality/quality.h"

#include <string.h>

#define S(lit) (lit), strlen(lit)

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

static void chat_request_gives_user_text_model_and_json_mode(void **state)
{
    (void)state;
    struct qual_input in;
    qual_input_init(&in);
    const char *req =
        "{\"model\":\"llama\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Какая столица?\"},{\"role\":\"assistant\","
        "\"content\":\"?\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Франции\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}],"
        "\"response_format\":{\"type\":\"json_object\"}}";
    assert_int_equal(qual_extract_request(S(req), &arena, &in, NULL), HS_OK);
    assert_string_equal(in.model, "llama");
    assert_string_equal(in.prompt, "Какая столица?\nФранции");
    assert_int_equal(in.prompt_len, strlen(in.prompt));
    assert_true(in.wants_json);
    assert_true(in.is_scorable);

    qual_input_init(&in);
    in.model = "routed";
    assert_int_equal(
        qual_extract_request(S("{\"model\":\"raw\",\"prompt\":\"Once upon\"}"), &arena, &in, NULL),
        HS_OK);
    assert_string_equal(in.model, "routed"); /* a routed name wins */
    assert_string_equal(in.prompt, "Once upon");
    assert_false(in.wants_json);
}

static void responses_and_embeddings_requests_are_told_apart(void **state)
{
    (void)state;
    struct qual_input in;
    qual_input_init(&in);
    assert_int_equal(qual_extract_request(S("{\"model\":\"gpt\",\"input\":\"Tell me a joke\","
                                            "\"text\":{\"format\":{\"type\":\"json_schema\"}}}"),
                                          &arena, &in, NULL),
                     HS_OK);
    assert_string_equal(in.prompt, "Tell me a joke");
    assert_true(in.wants_json);
    assert_true(in.is_scorable);

    qual_input_init(&in);
    assert_int_equal(
        qual_extract_request(S("{\"model\":\"bge\",\"input\":[\"holoscope\"]}"), &arena, &in, NULL),
        HS_OK);
    assert_false(in.is_scorable);
}

static void malformed_requests_are_errors_and_leave_the_input_alone(void **state)
{
    (void)state;
    struct qual_input in;
    qual_input_init(&in);
    struct hs_err err = {0};
    assert_int_equal(qual_extract_request(S("{\"model\":\"x\",}"), &arena, &in, &err), HS_EPARSE);
    assert_int_equal(err.pos, 13);
    assert_null(in.model);
    assert_int_equal(qual_extract_request(S("[1,2]"), &arena, &in, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "expected a JSON object"));
    assert_int_equal(qual_extract_request(S(""), &arena, &in, &err), HS_EPARSE);
}

static void chat_completion_body_gives_text_finish_reason_and_tokens(void **state)
{
    (void)state;
    struct qual_input in;
    qual_input_init(&in);
    const char *body =
        "{\"object\":\"chat.completion\",\"choices\":[{\"index\":1,\"message\":{\"content\":"
        "\"other\"},\"finish_reason\":\"stop\"},{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"Dear Customer,\\n\\nWe\"},\"finish_reason\":\"length\"}],"
        "\"usage\":{\"prompt_tokens\":51,\"completion_tokens\":16}}";
    assert_int_equal(qual_extract_response(S(body), false, &arena, &in, NULL), HS_OK);
    assert_string_equal(in.output, "Dear Customer,\n\nWe");
    assert_string_equal(in.finish_reason, "length");
    assert_int_equal(in.output_tokens, 16);

    qual_input_init(&in);
    assert_int_equal(
        qual_extract_response(S("{\"object\":\"list\",\"data\":[{\"object\":\"embedding\"}]}"),
                              false, &arena, &in, NULL),
        HS_OK);
    assert_false(in.is_scorable);

    qual_input_init(&in);
    assert_int_equal(qual_extract_response(S("{\"error\":{\"message\":\"overloaded\"}}"), false,
                                           &arena, &in, NULL),
                     HS_OK);
    assert_false(in.is_scorable);
}

static void responses_and_tgi_bodies_are_read(void **state)
{
    (void)state;
    struct qual_input in;
    qual_input_init(&in);
    const char *body = "{\"object\":\"response\",\"status\":\"incomplete\",\"incomplete_details\":"
                       "{\"reason\":\"max_output_tokens\"},\"output\":[{\"type\":\"reasoning\"},"
                       "{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":"
                       "\"Hello \"},{\"type\":\"output_text\",\"text\":\"world\"}]}],"
                       "\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}";
    assert_int_equal(qual_extract_response(S(body), false, &arena, &in, NULL), HS_OK);
    assert_string_equal(in.output, "Hello world");
    assert_string_equal(in.finish_reason, "length");
    assert_int_equal(in.output_tokens, 2);

    qual_input_init(&in);
    assert_int_equal(qual_extract_response(S("[{\"generated_text\":\"Paris\",\"details\":{"
                                             "\"finish_reason\":\"eos_token\","
                                             "\"generated_tokens\":2}}]"),
                                           false, &arena, &in, NULL),
                     HS_OK);
    assert_string_equal(in.output, "Paris");
    assert_string_equal(in.finish_reason, "stop");
    assert_int_equal(in.output_tokens, 2);
}

static void chat_stream_joins_deltas_of_choice_zero(void **state)
{
    (void)state;
    const char *sse =
        ": keep-alive\r\n\r\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}"
        "\r\n\r\n"
        "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"XX\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" th\xc3\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ere!\"},"
        "\"finish_reason\":\"stop\"}]}\r\r"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":36,\"completion_tokens\":3}}\n\n"
        "data: [DONE]\n\n";
    struct qual_input in;
    qual_input_init(&in);
    assert_int_equal(qual_extract_response(S(sse), true, &arena, &in, NULL), HS_OK);
    /* The event with the raw byte 0xC3 is not valid JSON text and is skipped. */
    assert_string_equal(in.output, "Hiere!");
    assert_string_equal(in.finish_reason, "stop");
    assert_int_equal(in.output_tokens, 3);
}

static void truncated_stream_finishes_with_error(void **state)
{
    (void)state;
    const char *sse = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The ans\"}}]}\n\n"
                      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"wer is";
    struct qual_input in;
    qual_input_init(&in);
    assert_int_equal(qual_extract_response(S(sse), true, &arena, &in, NULL), HS_OK);
    assert_string_equal(in.output, "The ans");
    assert_string_equal(in.finish_reason, "error");
    assert_int_equal(in.output_tokens, -1);
}

static void responses_and_tgi_streams_are_read(void **state)
{
    (void)state;
    const char *sse =
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{}}\n\n"
        "event: response.output_text.delta\n"
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"Bon\"}\n\n"
        "event: response.output_text.delta\ndata: {\"delta\":\"jour\"}\n\n"
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{"
        "\"status\":\"completed\",\"output\":[],\"usage\":{\"output_tokens\":2}}}\n\n";
    struct qual_input in;
    qual_input_init(&in);
    assert_int_equal(qual_extract_response(S(sse), true, &arena, &in, NULL), HS_OK);
    assert_string_equal(in.output, "Bonjour");
    assert_string_equal(in.finish_reason, "stop");
    assert_int_equal(in.output_tokens, 2);

    const char *tgi = "data:{\"token\":{\"text\":\"Par\",\"special\":false},\"generated_text\":"
                      "null,\"details\":null}\n\n"
                      "data:{\"token\":{\"text\":\"is\",\"special\":false},\"generated_text\":null,"
                      "\"details\":null}\n\n"
                      "data:{\"token\":{\"text\":\"</s>\",\"special\":true},\"generated_text\":"
                      "\"Paris\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":3}}"
                      "\n\n";
    qual_input_init(&in);
    assert_int_equal(qual_extract_response(S(tgi), true, &arena, &in, NULL), HS_OK);
    assert_string_equal(in.output, "Paris");
    assert_string_equal(in.finish_reason, "length");
    assert_int_equal(in.output_tokens, 3);
}

static void error_event_mid_stream_sets_finish_error(void **state)
{
    (void)state;
    const char *sse =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Par\"}}]}\n\n"
        "data: {\"error\":{\"message\":\"boom\",\"type\":\"InternalServerError\"}}\n\n"
        "data: [DONE]\n\n";
    struct qual_input in;
    qual_input_init(&in);
    assert_int_equal(qual_extract_response(S(sse), true, &arena, &in, NULL), HS_OK);
    assert_string_equal(in.output, "Par");
    assert_string_equal(in.finish_reason, "error");
}

static void tool_call_answers_are_marked_and_not_empty(void **state)
{
    (void)state;
    struct qual_input in;
    qual_input_init(&in);
    const char *body = "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{"
                       "\"content\":null,\"tool_calls\":[{\"type\":\"function\",\"function\":{"
                       "\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},\"finish_reason\":"
                       "\"tool_calls\"}]}";
    assert_int_equal(qual_extract_response(S(body), false, &arena, &in, NULL), HS_OK);
    assert_true(in.has_tool_calls);
    assert_string_equal(in.output, "");
    struct qual_config c;
    qual_config_defaults(&c);
    struct qual_scores s;
    qual_score_all(&c, &in, 0, &s);
    assert_int_equal(s.checks[QUAL_CHECK_EMPTY].result, QUAL_SKIP);
    assert_int_equal(s.failed_mask, 0);
    assert_true(s.composite == 1.0);
}

static void extraction_survives_every_allocation_failure(void **state)
{
    (void)state;
    const char *sse = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n"
                      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},"
                      "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
    bool saw_ok = false;
    for (long n = 0; n < 200 && !saw_ok; n++) {
        struct hs_arena a;
        hs_arena_init(&a, 64, 0);
        struct qual_input in;
        qual_input_init(&in);
        hs_alloc_fail_after(n);
        int rc1 = qual_extract_request(S(req), &a, &in, NULL);
        int rc2 = qual_extract_response(S(sse), true, &a, &in, NULL);
        hs_alloc_fail_after(-1);
        assert_true(rc1 == HS_OK || rc1 == HS_ENOMEM);
        assert_true(rc2 == HS_OK || rc2 == HS_ENOMEM);
        if (rc2 == HS_OK)
            assert_string_equal(in.output, "Hello world");
        saw_ok = rc1 == HS_OK && rc2 == HS_OK;
        hs_arena_cleanup(&a);
    }
    assert_true(saw_ok);
}

static void malformed_response_bodies_are_errors(void **state)
{
    (void)state;
    struct qual_input in;
    qual_input_init(&in);
    struct hs_err err = {0};
    assert_int_equal(qual_extract_response(S("{\"choices\":[}"), false, &arena, &in, &err),
                     HS_EPARSE);
    assert_null(in.output);
    assert_int_equal(qual_extract_response(S("\"text\""), false, &arena, &in, &err), HS_EINVAL);
    /* SSE never fails on content: nothing usable gives empty text. */
    assert_int_equal(qual_extract_response(S("garbage\n\n\x01\x02"), true, &arena, &in, &err),
                     HS_OK);
    assert_string_equal(in.output, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_request_gives_user_text_model_and_json_mode),
        cmocka_unit_test(responses_and_embeddings_requests_are_told_apart),
        cmocka_unit_test(malformed_requests_are_errors_and_leave_the_input_alone),
        cmocka_unit_test(chat_completion_body_gives_text_finish_reason_and_tokens),
        cmocka_unit_test(responses_and_tgi_bodies_are_read),
        cmocka_unit_test(chat_stream_joins_deltas_of_choice_zero),
        cmocka_unit_test(truncated_stream_finishes_with_error),
        cmocka_unit_test(responses_and_tgi_streams_are_read),
        cmocka_unit_test(error_event_mid_stream_sets_finish_error),
        cmocka_unit_test(tool_call_answers_are_marked_and_not_empty),
        cmocka_unit_test(extraction_survives_every_allocation_failure),
        cmocka_unit_test(malformed_response_bodies_are_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
