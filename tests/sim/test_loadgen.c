/*
 * test_loadgen.c - the load generator's pure parts: random numbers,
 * sample sets and quantiles, the report formats, prompts files, request
 * bodies and the per-response measurement fed with the shared SSE
 * fixtures at every split and with chosen arrival times.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "sim/loadgen.h"
#include "sim/loadgen_internal.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers and samples ------------------------------------------------------- */

static void rng_is_deterministic_for_a_seed_and_stays_in_range(void **state)
{
    struct lg_rng a, b;
    lg__rng_seed(&a, 42);
    lg__rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) {
        assert_true(lg__rng_next(&a) == lg__rng_next(&b));
        int64_t x = lg__rng_range(&a, -3, 3);
        assert_true(x >= -3 && x <= 3);
        double u = lg__rng_unit(&b);
        assert_true(u >= 0 && u < 1);
    }
}

static void exponential_gaps_have_the_mean_of_the_rate(void **state)
{
    struct lg_rng r;
    lg__rng_seed(&r, 7);
    double sum = 0;
    int n = 200000;
    for (int i = 0; i < n; i++)
        sum += lg__rng_exp(&r, 4.0);
    /* Mean 0.25 s; the standard error over 200k draws is 0.00056. */
    assert_true(fabs(sum / n - 0.25) < 0.005);
}

static void quantiles_interpolate_linearly_between_ranks(void **state)
{
    double v[] = {1, 2, 3, 4, 10};
    assert_true(lg__quantile_sorted(v, 5, 0.5) == 3);
    assert_true(fabs(lg__quantile_sorted(v, 5, 0.9) - 7.6) < 1e-12); /* 4 + 0.6 * 6 */
    assert_true(lg__quantile_sorted(v, 5, 0.0) == 1);
    assert_true(lg__quantile_sorted(v, 5, 1.0) == 10);
    double one = 5;
    assert_true(lg__quantile_sorted(&one, 1, 0.99) == 5);
    assert_true(lg__quantile_sorted(NULL, 0, 0.5) == 0);
}

static void samples_report_exact_quantiles_below_the_ceiling(void **state)
{
    struct lg_samples s;
    lg__samples_init(&s, 1000, 1);
    for (int i = 100; i >= 1; i--)
        lg__samples_add(&s, i);
    struct loadgen_dist d;
    assert_int_equal(lg__samples_dist(&s, &d), HS_OK);
    assert_int_equal(d.count, 100);
    assert_false(d.is_sampled);
    assert_true(d.min == 1 && d.max == 100);
    assert_true(fabs(d.mean - 50.5) < 1e-12);
    assert_true(fabs(d.p50 - 50.5) < 1e-12);
    assert_true(fabs(d.p90 - 90.1) < 1e-9);
    assert_true(fabs(d.p99 - 99.01) < 1e-9);
    lg__samples_cleanup(&s);
}

static void samples_keep_a_bounded_reservoir_past_the_ceiling(void **state)
{
    struct lg_samples s;
    lg__samples_init(&s, 1000, 3);
    for (int i = 0; i < 100000; i++)
        lg__samples_add(&s, (double)(i % 1000));
    assert_int_equal(s.n, 1000);
    assert_true(s.alloc <= 1000);
    struct loadgen_dist d;
    assert_int_equal(lg__samples_dist(&s, &d), HS_OK);
    assert_true(d.is_sampled);
    assert_int_equal(d.count, 100000);
    assert_true(d.max == 999 && d.min == 0);
    /* A uniform reservoir of 1000 from a uniform 0..999: p50 near 500. */
    assert_true(fabs(d.p50 - 500) < 60);
    lg__samples_cleanup(&s);
}

static void samples_survive_allocation_failure_as_counters(void **state)
{
    struct lg_samples s;
    lg__samples_init(&s, 1000, 3);
    hs_alloc_fail_after(0);
    lg__samples_add(&s, 1.0);
    hs_alloc_fail_after(-1);
    lg__samples_add(&s, 2.0);
    struct loadgen_dist d;
    assert_int_equal(lg__samples_dist(&s, &d), HS_OK);
    assert_int_equal(d.count, 2);
    assert_true(d.min == 1 && d.max == 2);
    lg__samples_cleanup(&s);
}

/* ---- report formats ------------------------------------------------------------------- */

static void fill_report(struct loadgen_report *r)
{
    memset(r, 0, sizeof *r);
    r->is_done = true;
    r->is_stream = true;
    r->elapsed_s = 2;
    r->sent = r->finished = 5;
    r->outcomes[LOADGEN_OK] = 4;
    r->outcomes[LOADGEN_HTTP_5XX] = 1;
    r->errors = 1;
    r->good = 3;
    r->output_tokens = 40;
    r->request_throughput = 2;
    r->slo_ttft_s = 0.5;
    r->ttft = (struct loadgen_dist){4, 0.1, 0.05, 0.2, 0.1, 0.15, 0.18, 0.2, false};
    snprintf(r->last_error, sizeof r->last_error, "http_5xx: HTTP 500 \"boom\"");
}

static void report_json_is_valid_json_with_every_quantity(void **state)
{
    struct loadgen_report r;
    fill_report(&r);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(loadgen_report_json(&r, &b), HS_OK);
    json_error_t je;
    json_t *j = json_loads(b.p, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "outcomes"), "ok")), 4);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "outcomes"), "http_5xx")), 1);
    json_t *ttft = json_object_get(j, "ttft");
    assert_true(fabs(json_real_value(json_object_get(ttft, "p90")) - 0.15) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(ttft, "count")), 4);
    assert_true(json_is_false(json_object_get(ttft, "sampled")));
    assert_non_null(json_object_get(j, "itl"));
    assert_non_null(json_object_get(j, "tpot"));
    assert_non_null(json_object_get(j, "e2e"));
    assert_string_equal(json_string_value(json_object_get(j, "last_error")),
                        "http_5xx: HTTP 500 \"boom\"");
    json_decref(j);
    hs_buf_cleanup(&b);
}

static void report_text_names_errors_by_kind_and_goodput(void **state)
{
    struct loadgen_report r;
    fill_report(&r);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(loadgen_report_text(&r, &b), HS_OK);
    assert_non_null(strstr(b.p, "http_5xx=1"));
    assert_non_null(strstr(b.p, "ttft<=500ms"));
    assert_non_null(strstr(b.p, "TTFT"));
    hs_buf_reset(&b);
    assert_int_equal(loadgen_report_progress(&r, &b), HS_OK);
    assert_null(strchr(b.p, '\n'));
    assert_non_null(strstr(b.p, "sent 5"));
    hs_buf_cleanup(&b);
}

static void outcome_names_match_the_gateway_where_they_overlap(void **state)
{
    assert_string_equal(loadgen_outcome_name(LOADGEN_OK), "ok");
    assert_string_equal(loadgen_outcome_name(LOADGEN_TIMEOUT), "timeout");
    assert_string_equal(loadgen_outcome_name(LOADGEN_ERROR_MIDSTREAM), "error_midstream");
    assert_string_equal(loadgen_outcome_name(LOADGEN_STREAM_TRUNCATED), "stream_truncated");
    assert_string_equal(loadgen_outcome_name(99), "unknown");
}

/* ---- prompts and bodies ---------------------------------------------------------------- */

static char *write_tmp(const char *dir, const char *name, const char *text)
{
    char *path = NULL;
    size_t n = strlen(dir) + strlen(name) + 2;
    path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void prompts_file_loads_prompts_messages_and_lengths(void **state)
{
    char *dir = hs_test_tmpdir("loadgen");
    char *p = write_tmp(dir, "p.jsonl",
                        "{\"prompt\": \"Tell me about Paris\", \"max_tokens\": 16}\n"
                        "\n"
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                        "\"output_len\": 8}\n");
    struct lg_prompts ps;
    struct hs_err err;
    assert_int_equal(lg__prompts_load(p, &ps, &err), HS_OK);
    assert_int_equal(ps.n, 2);
    assert_string_equal(ps.v[0].text, "Tell me about Paris");
    assert_int_equal(ps.v[0].max_tokens, 16);
    assert_string_equal(ps.v[1].messages, "[{\"role\":\"user\",\"content\":\"Hi\"}]");
    assert_int_equal(ps.v[1].max_tokens, 8);
    lg__prompts_free(&ps);
    free(p);
    hs_test_rmdir(dir);
    free(dir);
}

static void prompts_file_errors_name_the_line(void **state)
{
    char *dir = hs_test_tmpdir("loadgen");
    char *p = write_tmp(dir, "bad.jsonl", "{\"prompt\": \"ok\"}\n{\"prompt\": 3}\n");
    struct lg_prompts ps;
    struct hs_err err;
    assert_int_equal(lg__prompts_load(p, &ps, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "bad.jsonl:2: expected \"prompt\""));
    free(p);
    p = write_tmp(dir, "broken.jsonl", "{\"prompt\": \"ok\"}\n\n{\"prompt\": \n");
    assert_int_equal(lg__prompts_load(p, &ps, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "broken.jsonl:3:"));
    free(p);
    p = write_tmp(dir, "len.jsonl", "{\"prompt\": \"x\", \"max_tokens\": 0}\n");
    assert_int_equal(lg__prompts_load(p, &ps, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "len.jsonl:1: \"max_tokens\" must be"));
    free(p);
    p = write_tmp(dir, "empty.jsonl", "\n\n");
    assert_int_equal(lg__prompts_load(p, &ps, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "no prompts"));
    free(p);
    assert_true(lg__prompts_load("/nonexistent/x.jsonl", &ps, &err) < 0);
    hs_test_rmdir(dir);
    free(dir);
}

static void synthetic_chat_body_has_the_asked_words_and_stream_options(void **state)
{
    struct lg_body_spec s = {.is_chat = true,
                             .stream = true,
                             .ignore_eos = true,
                             .model = "m\"1",
                             .input_words = 37,
                             .max_tokens = 12,
                             .word_seed = 9};
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(lg__body_build(&s, &b), HS_OK);
    json_t *j = json_loads(b.p, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "m\"1");
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 12);
    assert_true(json_is_true(json_object_get(j, "stream")));
    assert_true(json_is_true(json_object_get(j, "ignore_eos")));
    assert_true(
        json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
    const char *content = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "messages"), 0), "content"));
    int words = 1;
    for (const char *c = content; *c; c++)
        words += *c == ' ';
    assert_int_equal(words, 37);
    json_decref(j);
    hs_buf_cleanup(&b);
}

static void completions_body_flattens_messages_into_a_prompt(void **state)
{
    struct lg_prompt p = {.messages = "[{\"role\":\"system\",\"content\":\"Be brief\"},"
                                      "{\"role\":\"user\",\"content\":\"Hi\"}]"};
    struct lg_body_spec s = {.is_chat = false, .model = "m", .prompt = &p};
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(lg__body_build(&s, &b), HS_OK);
    json_t *j = json_loads(b.p, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "prompt")), "Be brief\nHi");
    assert_true(json_is_false(json_object_get(j, "stream")));
    assert_null(json_object_get(j, "max_tokens"));
    json_decref(j);
    hs_buf_cleanup(&b);
}

/* ---- measurement ------------------------------------------------------------------------ */

static char *read_fixture(const char *name, size_t *len)
{
    const char *shared = getenv("HS_SHARED_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/fixtures/sse/%s", shared ? shared : "../../../shared", name);
    struct hs_err err;
    char *s = hs_read_file(path, 0, len, &err);
    if (!s)
        fail_msg("cannot read %s: %s", path, err.msg);
    return s;
}

struct gaps {
    int n;
    double sum;
};

static void count_gap(void *arg, double g)
{
    struct gaps *gp = arg;
    gp->n++;
    gp->sum += g;
}

/* Feeds 'body' split at 'cut' (and byte by byte when cut == SIZE_MAX),
 * each piece 1 ms after the previous, and ends the response. */
static void measure_split(const char *body, size_t len, size_t cut, bool chat,
                          struct lg_meas_result *r, struct gaps *gp)
{
    struct lg_meas *m = lg__meas_new(chat, true, 0);
    assert_non_null(m);
    lg__meas_headers(m, 200, "text/event-stream; charset=utf-8", 1000);
    if (cut == SIZE_MAX) {
        for (size_t i = 0; i < len; i++)
            lg__meas_body(m, body + i, 1, 1000000 + (int64_t)i);
    } else {
        lg__meas_body(m, body, cut, 1000000);
        lg__meas_body(m, body + cut, len - cut, 2000000);
    }
    memset(gp, 0, sizeof *gp);
    lg__meas_end(m, LG_END_DONE, NULL, 3000000, r, count_gap, gp);
    lg__meas_free(m);
}

static void chat_fixture_gives_the_same_result_at_every_split(void **state)
{
    size_t len;
    char *body = read_fixture("openai-chat-stream.txt", &len);
    for (size_t cut = 0; cut <= len; cut++) {
        struct lg_meas_result r;
        struct gaps gp;
        measure_split(body, len, cut, true, &r, &gp);
        assert_int_equal(r.outcome, LOADGEN_OK);
        assert_int_equal(r.input_tokens, 19);
        assert_int_equal(r.output_tokens, 9);
        assert_false(r.is_output_estimated);
        assert_true(r.ttft_s >= 0);
    }
    struct lg_meas_result r;
    struct gaps gp;
    measure_split(body, len, SIZE_MAX, true, &r, &gp);
    assert_int_equal(r.outcome, LOADGEN_OK);
    assert_int_equal(gp.n, 8); /* 9 output events, one choice */
    hs_free(body);
}

static void crlf_and_cr_line_ends_parse_like_lf(void **state)
{
    size_t len;
    char *body = read_fixture("openai-chat-stream.txt", &len);
    const char *ends[] = {"\r\n", "\r"};
    for (size_t e = 0; e < 2; e++) {
        struct hs_buf b;
        hs_buf_init(&b, 0);
        for (size_t i = 0; i < len; i++)
            assert_int_equal(body[i] == '\n' ? hs_buf_puts(&b, ends[e]) : hs_buf_putc(&b, body[i]),
                             HS_OK);
        for (size_t cut = 0; cut <= b.len; cut += 7) {
            struct lg_meas_result r;
            struct gaps gp;
            measure_split(b.p, b.len, cut, true, &r, &gp);
            assert_int_equal(r.outcome, LOADGEN_OK);
            assert_int_equal(r.output_tokens, 9);
        }
        struct lg_meas_result r;
        struct gaps gp;
        measure_split(b.p, b.len, SIZE_MAX, true, &r, &gp);
        assert_int_equal(gp.n, 8);
        hs_buf_cleanup(&b);
    }
    hs_free(body);
}

static void ttft_itl_and_tpot_follow_the_arrival_times(void **state)
{
    /* Role chunk at 5 ms, tokens at 100, 120, 140 ms, finish + usage, [DONE]. */
    const char *ev[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}"
        "\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"finish_reason\":null}]}"
        "\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"},\"finish_reason\":null}]}"
        "\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5}}\n\n"
        "data: [DONE]\n\n"};
    const int64_t at_ms[] = {5, 100, 120, 140, 150};
    struct lg_meas *m = lg__meas_new(true, true, 0);
    lg__meas_headers(m, 200, "text/event-stream", 1000000);
    for (size_t i = 0; i < HS_ARRAY_LEN(ev); i++)
        lg__meas_body(m, ev[i], strlen(ev[i]), at_ms[i] * 1000000);
    struct lg_meas_result r;
    struct gaps gp = {0, 0};
    lg__meas_end(m, LG_END_DONE, NULL, 160 * 1000000LL, &r, count_gap, &gp);
    lg__meas_free(m);
    assert_int_equal(r.outcome, LOADGEN_OK);
    assert_true(fabs(r.ttft_s - 0.100) < 1e-9);
    assert_int_equal(gp.n, 2);
    assert_true(fabs(gp.sum - 0.040) < 1e-9);
    /* (140 - 100) ms over (5 - 1) tokens: usage counts, not chunks. */
    assert_true(fabs(r.tpot_s - 0.010) < 1e-9);
    assert_int_equal(r.output_tokens, 5);
}

static void n2_fixture_measures_gaps_per_choice(void **state)
{
    size_t len;
    char *body = read_fixture("openai-chat-stream-n2.txt", &len);
    struct lg_meas_result r;
    struct gaps gp;
    measure_split(body, len, SIZE_MAX, true, &r, &gp);
    assert_int_equal(r.outcome, LOADGEN_OK);
    assert_int_equal(gp.n, 2); /* 2 output events per choice: one gap each */
    assert_int_equal(r.output_tokens, 4);
    hs_free(body);
}

static void truncated_and_error_fixtures_get_their_outcomes(void **state)
{
    size_t len;
    char *body = read_fixture("openai-chat-stream-truncated.txt", &len);
    struct lg_meas_result r;
    struct gaps gp;
    measure_split(body, len, len / 2, true, &r, &gp);
    assert_int_equal(r.outcome, LOADGEN_STREAM_TRUNCATED);
    assert_int_equal(r.output_tokens, 4);
    assert_true(r.is_output_estimated);
    assert_true(r.tpot_s < 0);
    assert_true(r.ttft_s >= 0);
    hs_free(body);

    body = read_fixture("openai-chat-stream-error-midstream.txt", &len);
    measure_split(body, len, 3, true, &r, &gp);
    assert_int_equal(r.outcome, LOADGEN_ERROR_MIDSTREAM);
    assert_non_null(strstr(r.error, "InternalServerError"));
    hs_free(body);

    body = read_fixture("openai-completions-stream.txt", &len);
    measure_split(body, len, 11, false, &r, &gp);
    assert_int_equal(r.outcome, LOADGEN_OK);
    assert_int_equal(r.input_tokens, 6);
    assert_int_equal(r.output_tokens, 8);
    hs_free(body);

    body = read_fixture("vllm-chat-stream-continuous-usage.txt", &len);
    measure_split(body, len, 100, true, &r, &gp);
    assert_int_equal(r.outcome, LOADGEN_OK);
    assert_int_equal(r.input_tokens, 15);
    assert_int_equal(r.output_tokens, 8); /* the last cumulative value, never a sum */
    hs_free(body);
}

static void http_errors_and_transport_failures_are_classified(void **state)
{
    struct lg_meas_result r;
    struct lg_meas *m = lg__meas_new(true, true, 0);
    lg__meas_headers(m, 503, "application/json", 10);
    const char *e = "{\"error\":{\"message\":\"no capacity\",\"type\":\"ServiceUnavailable\"}}";
    lg__meas_body(m, e, strlen(e), 20);
    lg__meas_end(m, LG_END_DONE, NULL, 30, &r, NULL, NULL);
    assert_int_equal(r.outcome, LOADGEN_HTTP_5XX);
    assert_non_null(strstr(r.error, "HTTP 503"));
    assert_non_null(strstr(r.error, "no capacity"));
    assert_true(r.ttft_s < 0);
    lg__meas_free(m);

    m = lg__meas_new(true, true, 0);
    lg__meas_headers(m, 404, "text/plain", 10);
    lg__meas_end(m, LG_END_DONE, NULL, 30, &r, NULL, NULL);
    assert_int_equal(r.outcome, LOADGEN_HTTP_4XX);
    lg__meas_free(m);

    m = lg__meas_new(true, true, 0);
    lg__meas_end(m, LG_END_CONNECT, "connection refused", 30, &r, NULL, NULL);
    assert_int_equal(r.outcome, LOADGEN_CONNECT);
    assert_string_equal(r.error, "connection refused");
    lg__meas_free(m);

    m = lg__meas_new(true, true, 0);
    lg__meas_headers(m, 200, "text/event-stream", 10);
    lg__meas_end(m, LG_END_TIMEOUT, "total timeout", 30, &r, NULL, NULL);
    assert_int_equal(r.outcome, LOADGEN_TIMEOUT);
    lg__meas_free(m);

    m = lg__meas_new(true, false, 0);
    lg__meas_headers(m, 200, "application/json", 10);
    lg__meas_body(m, "not json", 8, 20);
    lg__meas_end(m, LG_END_DONE, NULL, 30, &r, NULL, NULL);
    assert_int_equal(r.outcome, LOADGEN_MALFORMED);
    lg__meas_free(m);
}

static void non_streamed_json_reports_usage_without_ttft(void **state)
{
    const char *b = "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
                    "{\"role\":\"assistant\",\"content\":\"Paris.\"},\"finish_reason\":\"stop\"}],"
                    "\"usage\":{\"prompt_tokens\":14,\"completion_tokens\":3}}";
    struct lg_meas *m = lg__meas_new(true, false, 0);
    lg__meas_headers(m, 200, "application/json", 10);
    lg__meas_body(m, b, 20, 20);
    lg__meas_body(m, b + 20, strlen(b) - 20, 30);
    struct lg_meas_result r;
    lg__meas_end(m, LG_END_DONE, NULL, 40, &r, NULL, NULL);
    lg__meas_free(m);
    assert_int_equal(r.outcome, LOADGEN_OK);
    assert_int_equal(r.input_tokens, 14);
    assert_int_equal(r.output_tokens, 3);
    assert_true(r.ttft_s < 0 && r.tpot_s < 0);
}

static void garbage_streams_never_crash_and_stay_bounded(void **state)
{
    struct lg_rng rng;
    lg__rng_seed(&rng, 5);
    char buf[4096];
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)lg__rng_range(&rng, 0, sizeof buf);
        for (size_t i = 0; i < n; i++) {
            const char alphabet[] = "data: {}[]\"\n\r:choices,delta";
            buf[i] =
                (char)(round % 2 ? lg__rng_next(&rng)
                                 : (uint64_t)alphabet[lg__rng_next(&rng) % (sizeof alphabet - 1)]);
        }
        struct lg_meas *m = lg__meas_new(true, true, 0);
        lg__meas_headers(m, 200, "text/event-stream", 1);
        lg__meas_body(m, buf, n, 2);
        struct lg_meas_result r;
        lg__meas_end(m, LG_END_DONE, NULL, 3, &r, NULL, NULL);
        assert_true(r.outcome >= 0 && r.outcome < LOADGEN_OUTCOME_COUNT);
        lg__meas_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rng_is_deterministic_for_a_seed_and_stays_in_range),
        cmocka_unit_test(exponential_gaps_have_the_mean_of_the_rate),
        cmocka_unit_test(quantiles_interpolate_linearly_between_ranks),
        cmocka_unit_test(samples_report_exact_quantiles_below_the_ceiling),
        cmocka_unit_test(samples_keep_a_bounded_reservoir_past_the_ceiling),
        cmocka_unit_test(samples_survive_allocation_failure_as_counters),
        cmocka_unit_test(report_json_is_valid_json_with_every_quantity),
        cmocka_unit_test(report_text_names_errors_by_kind_and_goodput),
        cmocka_unit_test(outcome_names_match_the_gateway_where_they_overlap),
        cmocka_unit_test(prompts_file_loads_prompts_messages_and_lengths),
        cmocka_unit_test(prompts_file_errors_name_the_line),
        cmocka_unit_test(synthetic_chat_body_has_the_asked_words_and_stream_options),
        cmocka_unit_test(completions_body_flattens_messages_into_a_prompt),
        cmocka_unit_test(chat_fixture_gives_the_same_result_at_every_split),
        cmocka_unit_test(crlf_and_cr_line_ends_parse_like_lf),
        cmocka_unit_test(ttft_itl_and_tpot_follow_the_arrival_times),
        cmocka_unit_test(n2_fixture_measures_gaps_per_choice),
        cmocka_unit_test(truncated_and_error_fixtures_get_their_outcomes),
        cmocka_unit_test(http_errors_and_transport_failures_are_classified),
        cmocka_unit_test(non_streamed_json_reports_usage_without_ttft),
        cmocka_unit_test(garbage_streams_never_crash_and_stay_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
