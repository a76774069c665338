/*
 * test_measure.c - per-request measurement (spec/gateway.md §4, §13 items
 * 2-7): every SSE fixture fed whole, split at every byte offset and one
 * byte at a time gives the README's values; usage-chunk stripping and
 * byte-exact pass-through; finish-reason normalisation (§4.7, one case per
 * row); outcomes (§4.8); TTFT/ITL/TPOT from the clock values passed in;
 * non-streaming bodies, engine-native dialects, error bodies; the request
 * side (parse, include_usage injection).
 */
#include "gateway/measure.h"
#include "hs_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1000000000LL /* t_send of every test request */

static char *load_fixture(const char *name, size_t *len)
{
    const char *dir = getenv("HS_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/fixtures/sse/%s", dir ? dir : "../../../shared", name);
    struct hs_err err = {0};
    char *p = hs_read_file(path, 0, len, &err);
    if (p == NULL)
        fail_msg("cannot read %s: %s", path, err.msg);
    return p;
}

/* What the fixture README says. */
struct want {
    const char *file;
    enum gw_api api;
    size_t events;
    size_t first_output;
    size_t output_events;
    const char *finishes; /* normalised, comma-joined, by choice index */
    int64_t in, out;
    enum gw_usage_source src;
    const char *text0, *text1;
    enum gw_outcome outcome;
    const char *error_type;
    bool has_usage_event; /* a choices:[] usage-only event to strip */
};

static const struct want wants[] = {
    {"openai-chat-stream.txt", GW_API_CHAT, 13, 2, 9, "stop", 19, 9, GW_USAGE_USAGE,
     "Hello! How can I help you today?", NULL, GW_OK, "", true},
    {"openai-chat-stream-n2.txt", GW_API_CHAT, 10, 3, 4, "stop,stop", 14, 4, GW_USAGE_USAGE, "Yes.",
     "Sure!", GW_OK, "", true},
    {"openai-chat-stream-tool-call.txt", GW_API_CHAT, 0, 1, 11, "tool_calls", -2, 17,
     GW_USAGE_USAGE, "", NULL, GW_OK, "", true},
    {"openai-chat-stream-error-midstream.txt", GW_API_CHAT, 7, 2, 4, "error", -1, 4,
     GW_USAGE_CHUNK_COUNT, "The capital of France", NULL, GW_ERROR_MIDSTREAM, "InternalServerError",
     false},
    {"openai-chat-stream-truncated.txt", GW_API_CHAT, 5, 2, 4, "error", -1, 4, GW_USAGE_CHUNK_COUNT,
     NULL, NULL, GW_STREAM_TRUNCATED, "stream_truncated", false},
    {"openai-completions-stream.txt", GW_API_COMPLETIONS, 10, 1, 8, "length", 6, 8, GW_USAGE_USAGE,
     "\n\nThe quick brown fox jumps over the", NULL, GW_OK, "", true},
    {"openai-responses-stream.txt", GW_API_RESPONSES, 12, 5, 4, "stop", 11, 5, GW_USAGE_USAGE,
     "Hi there! \xf0\x9f\x91\x8b", NULL, GW_OK, "", false},
    {"vllm-chat-stream-continuous-usage.txt", GW_API_CHAT, 0, 2, 7, "stop", 15, 8, GW_USAGE_USAGE,
     NULL, NULL, GW_OK, "", true},
    {"tgi-generate-stream.txt", GW_API_TGI_GENERATE, 8, 1, 8, "stop", 9, 8, GW_USAGE_ENGINE,
     "Hello! How can I help?", NULL, GW_OK, "", false},
    {"llamacpp-chat-stream-timings.txt", GW_API_CHAT, 11, 2, 8, "stop", 25, 9, GW_USAGE_USAGE,
     "Sure, here is a short answer.", NULL, GW_OK, "", false},
};

static void finishes_of(const struct gw_measure_result *r, char *out, size_t n)
{
    out[0] = '\0';
    size_t k = 0;
    for (size_t i = 0; i < r->n_choices; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? "," : "",
                              gw_finish_name(r->choices[i].finish));
}

static void check(const struct want *w, const struct gw_measure_result *r, const char *how)
{
    char fin[128];
    finishes_of(r, fin, sizeof(fin));
    if (w->events && r->events != w->events)
        fail_msg("%s %s: events %zu want %zu", w->file, how, r->events, w->events);
    if (r->first_output_event != w->first_output)
        fail_msg("%s %s: first output #%zu want #%zu", w->file, how, r->first_output_event,
                 w->first_output);
    if (r->output_events != w->output_events)
        fail_msg("%s %s: output events %zu want %zu", w->file, how, r->output_events,
                 w->output_events);
    if (strcmp(fin, w->finishes) != 0)
        fail_msg("%s %s: finishes %s want %s", w->file, how, fin, w->finishes);
    if (r->outcome != w->outcome)
        fail_msg("%s %s: outcome %s want %s", w->file, how, gw_outcome_name(r->outcome),
                 gw_outcome_name(w->outcome));
    if (strcmp(r->error_type, w->error_type) != 0)
        fail_msg("%s %s: error.type '%s' want '%s'", w->file, how, r->error_type, w->error_type);
    if (r->usage_source != w->src || r->output_tokens != w->out ||
        (w->in != -2 && r->input_tokens != w->in))
        fail_msg("%s %s: usage %s %lld/%lld want %s %lld/%lld", w->file, how, r->usage_source_name,
                 (long long)r->input_tokens, (long long)r->output_tokens,
                 gw_usage_source_name(w->src), (long long)w->in, (long long)w->out);
    if (w->text0 != NULL && (r->n_choices < 1 || r->choices[0].text == NULL ||
                             strcmp(r->choices[0].text, w->text0) != 0))
        fail_msg("%s %s: text0 '%s' want '%s'", w->file, how,
                 r->n_choices ? r->choices[0].text : "(none)", w->text0);
    if (w->text1 != NULL &&
        (r->n_choices < 2 || r->choices[1].text == NULL || strcmp(r->choices[1].text, w->text1)))
        fail_msg("%s %s: text1 want '%s'", w->file, how, w->text1);
}

/* The input minus the usage-only event (choices [] with a usage object). */
static size_t strip_usage_event(const char *in, size_t len, char *out, const char *sep)
{
    size_t sl = strlen(sep);
    const char *ev = strstr(in, "\"choices\":[],\"usage\":{");
    if (ev == NULL) {
        memcpy(out, in, len);
        return len;
    }
    while (ev > in && !((size_t)(ev - in) >= sl && memcmp(ev - sl, sep, sl) == 0))
        ev--;
    const char *end = strstr(ev, sep) + sl;
    size_t a = (size_t)(ev - in);
    memcpy(out, in, a);
    memcpy(out + a, end, len - (size_t)(end - in));
    return a + len - (size_t)(end - in);
}

/* End of the event that completes the last choice (all finished from here). */
static size_t last_finish_end(const char *in, const char *sep)
{
    const char *p = in, *last = NULL;
    while ((p = strstr(p, "\"finish_reason\":\"")) != NULL)
        last = p++;
    if (last == NULL)
        return (size_t)-1;
    return (size_t)(strstr(last, sep) + strlen(sep) - in);
}

/*
 * Feeds 'data' in the pieces given by 'cuts' (ascending offsets, ending
 * with len), checks the forwarding rules after each feed and the final
 * bytes, and returns the measurement.
 */
static struct gw_measure *run(const struct want *w, const char *data, size_t len,
                              const size_t *cuts, size_t ncuts, bool inject, const char *sep)
{
    struct gw_measure *m = gw_measure_new(w->api, true, inject, T0, 4096);
    assert_non_null(m);
    gw_measure_response_start(m, 200, "text/event-stream; charset=utf-8", T0 + 10);
    struct hs_buf fwd;
    hs_buf_init(&fwd, 0);
    size_t from = 0, hold_from = inject ? last_finish_end(data, sep) : (size_t)-1;
    for (size_t i = 0; i < ncuts; i++) {
        assert_int_equal(
            gw_measure_feed(m, data + from, cuts[i] - from, T0 + 100 + (int64_t)i, &fwd, NULL),
            HS_OK);
        from = cuts[i];
        if (from <= hold_from && fwd.len != from)
            fail_msg("%s: held back %zu bytes at %zu before all choices finished", w->file,
                     from - fwd.len, from);
    }
    gw_measure_end(m, GW_END_EOF, T0 + 100000, &fwd);
    char *want = malloc(len + 1);
    size_t wlen = inject ? strip_usage_event(data, len, want, sep) : (memcpy(want, data, len), len);
    if (fwd.len != wlen || memcmp(fwd.p, want, wlen) != 0)
        fail_msg("%s: forwarded %zu bytes, want %zu", w->file, fwd.len, wlen);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->stripped_events, inject && w->has_usage_event ? 1 : 0);
    assert_int_equal(r->bytes_in, len);
    free(want);
    hs_buf_cleanup(&fwd);
    return m;
}

/* LF -> CRLF; caller frees. */
static char *to_crlf(const char *s, size_t len, size_t *out_len)
{
    char *o = malloc(2 * len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n')
            o[k++] = '\r';
        o[k++] = s[i];
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

static void run_all_splits(const struct want *w, const char *data, size_t len, bool inject,
                           const char *sep, size_t step)
{
    size_t whole = len;
    struct gw_measure *m = run(w, data, len, &whole, 1, inject, sep);
    check(w, gw_measure_result(m), "whole");
    gw_measure_free(m);
    for (size_t split = 1; split < len; split += step) {
        size_t cuts[2] = {split, len};
        m = run(w, data, len, cuts, 2, inject, sep);
        char how[32];
        snprintf(how, sizeof(how), "split %zu", split);
        check(w, gw_measure_result(m), how);
        gw_measure_free(m);
    }
    size_t *bytes = malloc(len * sizeof(*bytes));
    for (size_t i = 0; i < len; i++)
        bytes[i] = i + 1;
    m = run(w, data, len, bytes, len, inject, sep);
    check(w, gw_measure_result(m), "bytewise");
    gw_measure_free(m);
    free(bytes);
}

static void measure_fixtures_give_the_readme_values_whole_split_and_bytewise(void **state)
{
    (void)state;
    for (size_t f = 0; f < HS_ARRAY_LEN(wants); f++) {
        const struct want *w = &wants[f];
        size_t len, clen;
        char *data = load_fixture(w->file, &len);
        /* every offset with stripping on (the harder path); every 7th without */
        run_all_splits(w, data, len, true, "\n\n", 1);
        run_all_splits(w, data, len, false, "\n\n", 7);
        /* CRLF variants measure the same */
        char *crlf = to_crlf(data, len, &clen);
        run_all_splits(w, crlf, clen, true, "\r\n\r\n", 5);
        run_all_splits(w, crlf, clen, false, "\r\n\r\n", 11);
        free(crlf);
        hs_free(data);
    }
}

static const struct gw_measure_result *feed_all(struct gw_measure *m, const char *file)
{
    size_t len;
    char *data = load_fixture(file, &len);
    assert_int_equal(gw_measure_feed(m, data, len, T0 + 500, NULL, NULL), HS_OK);
    hs_free(data);
    return gw_measure_result(m);
}

static void measure_tool_call_arguments_join_into_valid_json(void **state)
{
    (void)state;
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, false, T0, 4096);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    feed_all(m, "openai-chat-stream-tool-call.txt");
    gw_measure_end(m, GW_END_EOF, T0 + 1000, NULL);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->n_choices, 1);
    assert_int_equal(r->choices[0].n_tool_calls, 1);
    const struct gw_tool_call *tc = &r->choices[0].tool_calls[0];
    assert_string_equal(tc->args, "{\"location\":\"Paris\",\"unit\":\"celsius\"}");
    assert_int_equal(tc->args_len, strlen(tc->args));
    assert_true(tc->name[0] != '\0');
    assert_true(strncmp(tc->id, "call_", 5) == 0);
    assert_int_equal(r->tool_calls, 1);
    assert_int_equal(r->output_events, 11);
    assert_int_equal(r->output_tokens, 17);
    assert_true(r->visible_output_empty);
    gw_measure_free(m);
}

static void measure_error_midstream_reads_the_nested_error(void **state)
{
    (void)state;
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, false, T0, 4096);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    feed_all(m, "openai-chat-stream-error-midstream.txt");
    gw_measure_end(m, GW_END_EOF, T0 + 1000, NULL);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->outcome, GW_ERROR_MIDSTREAM);
    assert_string_equal(gw_outcome_name(r->outcome), "error_midstream");
    assert_string_equal(r->error_type, "InternalServerError");
    assert_string_equal(r->error_code, "500");
    assert_non_null(strstr(r->error_message, "internal error"));
    assert_true(r->saw_done);
    assert_int_equal(r->tpot_ns, -1); /* only for ok */
    gw_measure_free(m);
}

static void measure_truncated_stream_estimates_tokens_from_chunks(void **state)
{
    (void)state;
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, true, T0, 4096);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    feed_all(m, "openai-chat-stream-truncated.txt");
    gw_measure_end(m, GW_END_RESET, T0 + 1000, NULL);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->outcome, GW_STREAM_TRUNCATED);
    assert_string_equal(r->usage_source_name, "chunk_count");
    assert_true(r->usage_estimated);
    assert_int_equal(r->output_tokens, 4);
    assert_int_equal(r->input_tokens, -1);
    assert_false(r->saw_done);
    gw_measure_free(m);
}

static void measure_responses_and_tgi_end_ok_without_done(void **state)
{
    (void)state;
    struct gw_measure *m = gw_measure_new(GW_API_RESPONSES, true, false, T0, 4096);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    const struct gw_measure_result *r = feed_all(m, "openai-responses-stream.txt");
    gw_measure_end(m, GW_END_EOF, T0 + 1000, NULL);
    assert_int_equal(r->outcome, GW_OK);
    assert_false(r->saw_done);
    assert_true(r->saw_terminal);
    assert_string_equal(r->response_status, "completed");
    assert_string_equal(r->response_id, "resp_68a1f0c2d4e6f8a0b2c4d6e8f0a2b4c6");
    assert_int_equal(r->t_upstream_end_ns, T0 + 500);
    assert_int_equal(r->cached_tokens, 0);
    assert_int_equal(r->reasoning_tokens, 0);
    assert_int_equal(r->choices[0].visible_chars, 11); /* "Hi there! " + one emoji */
    gw_measure_free(m);

    m = gw_measure_new(gw_api_from_path("/generate_stream"), true, false, T0, 4096);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    r = feed_all(m, "tgi-generate-stream.txt");
    gw_measure_end(m, GW_END_EOF, T0 + 1000, NULL);
    assert_int_equal(r->outcome, GW_OK);
    assert_false(r->saw_done);
    assert_string_equal(r->choices[0].finish_raw, "eos_token");
    assert_string_equal(r->usage_source_name, "engine");
    gw_measure_free(m);
}

static void measure_continuous_usage_takes_the_last_value_never_a_sum(void **state)
{
    (void)state;
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, false, T0, 4096);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    const struct gw_measure_result *r = feed_all(m, "vllm-chat-stream-continuous-usage.txt");
    gw_measure_end(m, GW_END_EOF, T0 + 1000, NULL);
    assert_int_equal(r->input_tokens, 15);
    assert_int_equal(r->output_tokens, 8);
    assert_true(r->choices[0].stop_reason_raw[0] == '\0' ||
                strcmp(r->choices[0].stop_reason_raw, "null") != 0);
    gw_measure_free(m);
}

static void measure_llamacpp_timings_are_kept_beside_usage(void **state)
{
    (void)state;
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, false, T0, 4096);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    const struct gw_measure_result *r = feed_all(m, "llamacpp-chat-stream-timings.txt");
    gw_measure_end(m, GW_END_EOF, T0 + 1000, NULL);
    assert_true(r->engine_timings.present);
    assert_true(r->engine_timings.prompt_ms > 41.2 && r->engine_timings.prompt_ms < 41.3);
    assert_true(r->engine_timings.predicted_ms > 162.9 && r->engine_timings.predicted_ms < 163);
    assert_true(r->engine_timings.predicted_n == 9);
    assert_true(strncmp(r->engine_timings.json, "{\"prompt_n\":25", 14) == 0);
    assert_string_equal(r->usage_source_name, "usage");
    gw_measure_free(m);
}

/* Feeds one event per call at the given times. */
static void feed_events(struct gw_measure *m, const char *const *events, const int64_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(gw_measure_feed(m, events[i], strlen(events[i]), t[i], NULL, NULL), HS_OK);
}

static void measure_ttft_itl_and_tpot_come_from_the_clock_values_passed_in(void **state)
{
    (void)state;
    const char *ev[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\n",
        "data: [DONE]\n\n",
    };
    const int64_t t[] = {T0 + 50, T0 + 200, T0 + 260, T0 + 400, T0 + 410, T0 + 420, T0 + 430};
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, false, T0, 0);
    gw_measure_response_start(m, 200, "text/event-stream", T0 + 40);
    feed_events(m, ev, t, HS_ARRAY_LEN(ev));
    gw_measure_end(m, GW_END_EOF, T0 + 500, NULL);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->t_first_byte_ns, T0 + 50);
    assert_int_equal(r->t_first_event_ns, T0 + 50);
    assert_int_equal(r->t_first_output_ns, T0 + 200);
    assert_int_equal(r->t_last_output_ns, T0 + 400);
    assert_int_equal(r->ttfc_ns, 50);
    assert_int_equal(r->ttfb_ns, 50);
    assert_int_equal(r->ttft_upstream_ns, 200);
    assert_int_equal(r->t_upstream_end_ns, T0 + 430);
    assert_int_equal(r->upstream_ns, 430);
    assert_int_equal(r->n_itl, 2);
    assert_int_equal(r->itl_ns[0], 60);
    assert_int_equal(r->itl_ns[1], 140);
    assert_int_equal(r->itl_count, 2);
    assert_int_equal(r->itl_sum_ns, 200);
    assert_int_equal(r->itl_max_ns, 140);
    /* (400 - 200) / (5 - 1) */
    assert_int_equal(r->tpot_ns, 50);
    assert_null(r->choices[0].text); /* text keeping off */
    assert_int_equal(r->choices[0].visible_chars, 3);
    assert_false(r->visible_output_empty);
    gw_measure_free(m);
}

static void measure_itl_gaps_are_per_choice_and_ttft_is_the_earliest_choice(void **state)
{
    (void)state;
    const char *ev[] = {
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\n\n",
    };
    const int64_t t[] = {T0 + 100, T0 + 150, T0 + 300, T0 + 600};
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, false, T0, 64);
    gw_measure_set_n(m, 2);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    feed_events(m, ev, t, HS_ARRAY_LEN(ev));
    gw_measure_end(m, GW_END_EOF, T0 + 700, NULL);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->t_first_output_ns, T0 + 100);
    assert_int_equal(r->n_itl, 2);
    assert_int_equal(r->itl_ns[0], 200); /* choice 1: 100 -> 300 */
    assert_int_equal(r->itl_ns[1], 450); /* choice 0: 150 -> 600 */
    assert_int_equal(r->n_choices, 2);
    assert_int_equal(r->choices[0].index, 0);
    assert_int_equal(r->choices[0].t_first_output_ns, T0 + 150);
    assert_string_equal(r->choices[1].text, "xx");
    /* no [DONE]: truncated, unfinished choices end with "error" */
    assert_int_equal(r->outcome, GW_STREAM_TRUNCATED);
    assert_int_equal(r->choices[0].finish, GW_FINISH_ERROR);
    assert_int_equal(r->tpot_ns, -1);
    gw_measure_free(m);
}

static void measure_reasoning_is_output_but_not_visible(void **state)
{
    (void)state;
    const char *ev[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\\u00e9\\n\"}}]}\n\n",
    };
    const int64_t t[] = {T0 + 10, T0 + 20, T0 + 30};
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, false, T0, 64);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    feed_events(m, ev, t, HS_ARRAY_LEN(ev));
    gw_measure_end(m, GW_END_CLIENT_CANCEL, T0 + 40, NULL);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->t_first_output_ns, T0 + 10);
    assert_int_equal(r->t_first_visible_ns, T0 + 30);
    assert_int_equal(r->output_events, 2);
    assert_string_equal(r->choices[0].reasoning, "hmm");
    assert_string_equal(r->choices[0].text, "Hi\xc3\xa9\n");
    assert_int_equal(r->choices[0].visible_chars, 4);
    assert_int_equal(r->outcome, GW_CLIENT_CANCELLED);
    assert_int_equal(r->choices[0].finish, GW_FINISH_CANCELLED);
    assert_string_equal(r->error_type, "client_cancelled");
    gw_measure_free(m);
}

static void measure_text_is_bounded_per_choice(void **state)
{
    (void)state;
    const char *ev = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"abcdef\"}}]}\n\n";
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, false, T0, 10);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(gw_measure_feed(m, ev, strlen(ev), T0 + i, NULL, NULL), HS_OK);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->choices[0].text_len, 10);
    assert_true(r->choices[0].text_truncated);
    assert_int_equal(r->choices[0].visible_chars, 30);
    gw_measure_free(m);
    /* and the request as a whole, however many choices arrive */
    m = gw_measure_new(GW_API_CHAT, true, false, T0, 10);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    for (int i = 0; i < GW_MEASURE_MAX_CHOICES; i++) {
        char e[128];
        snprintf(e, sizeof(e),
                 "data: {\"choices\":[{\"index\":%d,\"delta\":{\"content\":\"0123456789\"}}]}\n\n",
                 i);
        assert_int_equal(gw_measure_feed(m, e, strlen(e), T0 + i, NULL, NULL), HS_OK);
    }
    r = gw_measure_result(m);
    assert_int_equal(r->n_choices, GW_MEASURE_MAX_CHOICES);
    size_t kept = 0;
    for (size_t i = 0; i < r->n_choices; i++)
        kept += r->choices[i].text_len;
    assert_int_equal(kept, GW_MEASURE_TEXT_BUFFERS * 10);
    gw_measure_free(m);
}

/* Feeds 'chunks' with usage injection; returns what the client got. */
static char *strip_run(const char *const *chunks, size_t n, int choices, size_t *after_each)
{
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, true, T0, 64);
    gw_measure_set_n(m, choices);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    struct hs_buf fwd;
    hs_buf_init(&fwd, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(gw_measure_feed(m, chunks[i], strlen(chunks[i]), T0 + 1, &fwd, NULL),
                         HS_OK);
        after_each[i] = fwd.len;
    }
    gw_measure_end(m, GW_END_EOF, T0 + 2, &fwd);
    gw_measure_free(m);
    size_t len;
    return hs_buf_detach(&fwd, &len);
}

static void measure_stripping_waits_for_every_requested_choice(void **state)
{
    (void)state;
    const char *fin0 =
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    const char *tok1 =
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}\n\ndata: {";
    const char *rest = "\"choices\":[{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n"
                       ": keep-alive\n\n";
    const char *usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,"
                        "\"completion_tokens\":2}}\n\n";
    const char *done = "data: [DONE]\n\n";
    const char *chunks[] = {fin0, tok1, rest, usage, done};
    size_t after[5];
    char *got = strip_run(chunks, 5, 2, after);
    /* choice 1 had not finished: its token and the partial event pass at once */
    assert_int_equal(after[0], strlen(fin0));
    assert_int_equal(after[1], strlen(fin0) + strlen(tok1));
    /* everything up to the last finish passes; the comment waits for its event */
    size_t fin1_end = strlen(fin0) + strlen(tok1) + (size_t)(strstr(rest, ": keep") - rest);
    assert_int_equal(after[2], fin1_end);
    /* the usage event is dropped; the keep-alive in front of it is not */
    assert_int_equal(after[3], fin1_end + strlen(": keep-alive\n\n"));
    char want[1024];
    snprintf(want, sizeof(want), "%s%s%s%s", fin0, tok1, rest, done);
    assert_string_equal(got, want);
    hs_free(got);
}

static void measure_endless_comments_after_the_finish_give_up_stripping(void **state)
{
    (void)state;
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, true, T0, 64);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    struct hs_buf fwd;
    hs_buf_init(&fwd, 0);
    const char *fin =
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    assert_int_equal(gw_measure_feed(m, fin, strlen(fin), T0 + 1, &fwd, NULL), HS_OK);
    static char comments[1 << 16];
    for (size_t i = 0; i < sizeof(comments); i += 2)
        memcpy(comments + i, ":\n", 2);
    size_t total = strlen(fin);
    for (int i = 0; i < 300; i++) { /* 19.6 MB of comments, more than 2 events' worth */
        assert_int_equal(gw_measure_feed(m, comments, sizeof(comments), T0 + 2, &fwd, NULL), HS_OK);
        total += sizeof(comments);
    }
    /* held bytes stay bounded, and once given up everything is forwarded */
    assert_true(total - fwd.len <= 2 * (size_t)GW_MEASURE_MAX_EVENT);
    assert_true(fwd.len > strlen(fin));
    gw_measure_end(m, GW_END_EOF, T0 + 3, &fwd);
    assert_int_equal(fwd.len, total);
    hs_buf_cleanup(&fwd);
    gw_measure_free(m);
}

static enum gw_finish norm(enum gw_api api, const char *s)
{
    return gw_finish_normalize(api, s, strlen(s));
}

static void measure_finish_reasons_normalise_per_the_table(void **state)
{
    (void)state;
    /* OpenAI stop, length, tool_calls, content_filter: same */
    assert_int_equal(norm(GW_API_CHAT, "stop"), GW_FINISH_STOP);
    assert_int_equal(norm(GW_API_CHAT, "length"), GW_FINISH_LENGTH);
    assert_int_equal(norm(GW_API_CHAT, "tool_calls"), GW_FINISH_TOOL_CALLS);
    assert_int_equal(norm(GW_API_CHAT, "content_filter"), GW_FINISH_CONTENT_FILTER);
    /* OpenAI function_call -> tool_calls */
    assert_int_equal(norm(GW_API_CHAT, "function_call"), GW_FINISH_TOOL_CALLS);
    /* TGI eos_token, stop_sequence -> stop; length -> length */
    assert_int_equal(norm(GW_API_TGI_GENERATE, "eos_token"), GW_FINISH_STOP);
    assert_int_equal(norm(GW_API_TGI_GENERATE, "stop_sequence"), GW_FINISH_STOP);
    assert_int_equal(norm(GW_API_TGI_GENERATE, "length"), GW_FINISH_LENGTH);
    /* llama.cpp native eos / word -> stop; limit -> length */
    assert_int_equal(norm(GW_API_LLAMACPP_COMPLETION, "eos"), GW_FINISH_STOP);
    assert_int_equal(norm(GW_API_LLAMACPP_COMPLETION, "word"), GW_FINISH_STOP);
    assert_int_equal(norm(GW_API_LLAMACPP_COMPLETION, "limit"), GW_FINISH_LENGTH);
    /* SGLang native stop / length / abort */
    assert_int_equal(norm(GW_API_SGLANG_GENERATE, "stop"), GW_FINISH_STOP);
    assert_int_equal(norm(GW_API_SGLANG_GENERATE, "length"), GW_FINISH_LENGTH);
    assert_int_equal(norm(GW_API_SGLANG_GENERATE, "abort"), GW_FINISH_ERROR);
    /* Responses incomplete reasons */
    assert_int_equal(norm(GW_API_RESPONSES, "max_output_tokens"), GW_FINISH_LENGTH);
    assert_int_equal(norm(GW_API_RESPONSES, "content_filter"), GW_FINISH_CONTENT_FILTER);
    /* anything else -> unknown; nothing -> none */
    assert_int_equal(norm(GW_API_CHAT, "eos"), GW_FINISH_UNKNOWN);
    assert_int_equal(norm(GW_API_CHAT, "banana"), GW_FINISH_UNKNOWN);
    assert_int_equal(norm(GW_API_CHAT, ""), GW_FINISH_NONE);
    assert_string_equal(gw_finish_name(GW_FINISH_TOOL_CALLS), "tool_calls");
    assert_string_equal(gw_finish_name(GW_FINISH_UNKNOWN), "unknown");
}

/* One streamed request with 'body' and 'cause'; returns its result in m. */
static struct gw_measure *stream(enum gw_api api, int status, const char *ct, const char *body,
                                 enum gw_end cause)
{
    struct gw_measure *m = gw_measure_new(api, true, false, T0, 256);
    assert_non_null(m);
    if (status > 0)
        gw_measure_response_start(m, status, ct, T0 + 1);
    if (body != NULL)
        assert_int_equal(gw_measure_feed(m, body, strlen(body), T0 + 2, NULL, NULL), HS_OK);
    gw_measure_end(m, cause, T0 + 3, NULL);
    return m;
}

static void expect_finish_of_response(const char *body, enum gw_finish want)
{
    struct gw_measure *m = stream(GW_API_RESPONSES, 200, "text/event-stream", body, GW_END_EOF);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->n_choices, 1);
    assert_int_equal(r->choices[0].finish, want);
    gw_measure_free(m);
}

static void measure_responses_status_maps_to_finish_reasons(void **state)
{
    (void)state;
    /* completed -> stop, or tool_calls with a function_call item */
    expect_finish_of_response("event: response.completed\ndata: {\"type\":\"response.completed\","
                              "\"response\":{\"status\":\"completed\",\"output\":[]}}\n\n",
                              GW_FINISH_STOP);
    expect_finish_of_response(
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":"
        "{\"status\":\"completed\",\"output\":[{\"type\":\"function_call\",\"name\":\"f\"}]}}\n\n",
        GW_FINISH_TOOL_CALLS);
    /* incomplete with max_output_tokens / content_filter */
    expect_finish_of_response(
        "data: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\","
        "\"incomplete_details\":{\"reason\":\"max_output_tokens\"}}}\n\n",
        GW_FINISH_LENGTH);
    expect_finish_of_response(
        "data: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\","
        "\"incomplete_details\":{\"reason\":\"content_filter\"}}}\n\n",
        GW_FINISH_CONTENT_FILTER);
}

static void measure_outcomes_follow_the_classification(void **state)
{
    (void)state;
    struct gw_measure *m;
    const char *done = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},"
                       "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    m = stream(GW_API_CHAT, 200, "text/event-stream", done, GW_END_EOF);
    assert_int_equal(gw_measure_result(m)->outcome, GW_OK);
    assert_string_equal(gw_measure_result(m)->error_type, "");
    gw_measure_free(m);
    /* http_error: type, else error_type, else the status */
    m = stream(GW_API_CHAT, 400, "application/json",
               "{\"error\":{\"message\":\"bad\",\"type\":\"BadRequestError\",\"param\":null,"
               "\"code\":400}}",
               GW_END_EOF);
    assert_int_equal(gw_measure_result(m)->outcome, GW_ERROR_UPSTREAM);
    assert_string_equal(gw_outcome_name(GW_ERROR_UPSTREAM), "http_error");
    assert_string_equal(gw_measure_result(m)->error_type, "BadRequestError");
    assert_string_equal(gw_measure_result(m)->error_code, "400");
    assert_int_equal(gw_measure_result(m)->n_choices, 0);
    gw_measure_free(m);
    m = stream(GW_API_CHAT, 400, "application/json",
               "{\"object\":\"error\",\"message\":\"m\",\"type\":\"invalid_request_error\","
               "\"param\":null,\"code\":400}",
               GW_END_EOF);
    assert_string_equal(gw_measure_result(m)->error_type, "invalid_request_error");
    gw_measure_free(m);
    m = stream(GW_API_TGI_GENERATE, 422, "application/json",
               "{\"error\":\"Input validation error\",\"error_type\":\"validation\"}", GW_END_EOF);
    assert_string_equal(gw_measure_result(m)->error_type, "validation");
    gw_measure_free(m);
    m = stream(GW_API_CHAT, 503, "text/html", "<html>busy</html>", GW_END_EOF);
    assert_string_equal(gw_measure_result(m)->error_type, "503");
    gw_measure_free(m);
    /* flat mid-stream error and the TGI native error event */
    m = stream(GW_API_CHAT, 200, "text/event-stream",
               "data: {\"object\":\"error\",\"message\":\"x\",\"type\":\"BadRequestError\","
               "\"code\":400}\n\ndata: [DONE]\n\n",
               GW_END_EOF);
    assert_int_equal(gw_measure_result(m)->outcome, GW_ERROR_MIDSTREAM);
    assert_string_equal(gw_measure_result(m)->error_type, "BadRequestError");
    gw_measure_free(m);
    m = stream(GW_API_TGI_GENERATE, 200, "text/event-stream",
               "data:{\"error\":\"overloaded\",\"error_type\":\"generation\"}\n\n", GW_END_EOF);
    assert_int_equal(gw_measure_result(m)->outcome, GW_ERROR_MIDSTREAM);
    assert_string_equal(gw_measure_result(m)->error_type, "generation");
    gw_measure_free(m);
    /* TGI OpenAI route: only http_status_code */
    m = stream(GW_API_CHAT, 200, "text/event-stream",
               "data: {\"error\":{\"message\":\"m\",\"http_status_code\":422}}\n\n", GW_END_EOF);
    assert_string_equal(gw_measure_result(m)->error_type, "422");
    gw_measure_free(m);
    /* Responses error event */
    m = stream(GW_API_RESPONSES, 200, "text/event-stream",
               "event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\","
               "\"message\":\"slow down\",\"param\":null,\"sequence_number\":1}\n\n",
               GW_END_EOF);
    assert_int_equal(gw_measure_result(m)->outcome, GW_ERROR_MIDSTREAM);
    assert_string_equal(gw_measure_result(m)->error_type, "rate_limit_exceeded");
    gw_measure_free(m);
    /* timeout, cancel, unreachable, gateway error */
    m = stream(GW_API_CHAT, 200, "text/event-stream", "data: {\"choices\":[]}\n\n", GW_END_TIMEOUT);
    assert_int_equal(gw_measure_result(m)->outcome, GW_TIMEOUT);
    assert_string_equal(gw_measure_result(m)->error_type, "timeout");
    assert_int_equal(gw_measure_result(m)->choices[0].finish, GW_FINISH_ERROR);
    gw_measure_free(m);
    m = stream(GW_API_CHAT, 0, NULL, NULL, GW_END_TIMEOUT);
    assert_int_equal(gw_measure_result(m)->outcome, GW_TIMEOUT);
    gw_measure_free(m);
    m = stream(GW_API_CHAT, 0, NULL, NULL, GW_END_UNREACHABLE);
    assert_int_equal(gw_measure_result(m)->outcome, GW_UPSTREAM_UNREACHABLE);
    assert_string_equal(gw_measure_result(m)->error_type, "upstream_unreachable");
    gw_measure_free(m);
    m = stream(GW_API_CHAT, 0, NULL, NULL, GW_END_CLIENT_CANCEL);
    assert_int_equal(gw_measure_result(m)->outcome, GW_CLIENT_CANCELLED);
    gw_measure_free(m);
    m = stream(GW_API_CHAT, 0, NULL, NULL, GW_END_GATEWAY_ERROR);
    assert_int_equal(gw_measure_result(m)->outcome, GW_GATEWAY_ERROR);
    assert_string_equal(gw_outcome_name(GW_GATEWAY_ERROR), "gateway_error");
    gw_measure_free(m);
}

static void measure_non_streaming_bodies_are_measured(void **state)
{
    (void)state;
    struct gw_measure *m;
    /* chat: stream requested but JSON answered (§2.3), in two reads */
    const char *chat =
        "{\"id\":\"c\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\",\"choices\":["
        "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Paris.\",\"tool_calls\":"
        "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
        "\"{}\"}}]},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":14,"
        "\"completion_tokens\":3,\"total_tokens\":17,\"prompt_tokens_details\":{\"cached_tokens\":"
        "2}}}";
    m = gw_measure_new(GW_API_CHAT, true, true, T0, 256);
    gw_measure_response_start(m, 200, "application/json", T0 + 1);
    struct hs_buf fwd;
    hs_buf_init(&fwd, 0);
    assert_int_equal(gw_measure_feed(m, chat, 20, T0 + 2, &fwd, NULL), HS_OK);
    assert_int_equal(gw_measure_feed(m, chat + 20, strlen(chat) - 20, T0 + 3, &fwd, NULL), HS_OK);
    gw_measure_end(m, GW_END_EOF, T0 + 4, &fwd);
    assert_string_equal(fwd.p, chat);
    hs_buf_cleanup(&fwd);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_false(r->is_stream);
    assert_int_equal(r->outcome, GW_OK);
    assert_int_equal(r->input_tokens, 14);
    assert_int_equal(r->output_tokens, 3);
    assert_int_equal(r->cached_tokens, 2);
    assert_string_equal(r->choices[0].text, "Paris.");
    assert_int_equal(r->choices[0].finish, GW_FINISH_LENGTH);
    assert_true(r->truncated);
    assert_int_equal(r->tool_calls, 1);
    assert_string_equal(r->model, "gpt-4o-mini");
    assert_string_equal(r->response_id, "c");
    assert_int_equal(r->ttft_upstream_ns, -1);
    assert_int_equal(r->ttfc_ns, -1);
    assert_int_equal(r->tpot_ns, -1);
    assert_int_equal(r->output_events, 0);
    gw_measure_free(m);
    /* embeddings: data count and input tokens */
    m = stream(GW_API_EMBEDDINGS, 200, "application/json",
               "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":"
               "[0.1,-0.2]},{\"object\":\"embedding\",\"index\":1,\"embedding\":\"AAAA\"}],"
               "\"model\":\"e\",\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}",
               GW_END_EOF);
    r = gw_measure_result(m);
    assert_int_equal(r->embeddings, 2);
    assert_int_equal(r->input_tokens, 8);
    assert_int_equal(r->output_tokens, -1);
    assert_int_equal(r->n_choices, 0);
    gw_measure_free(m);
    /* Responses body, incomplete */
    m = stream(GW_API_RESPONSES, 200, "application/json",
               "{\"object\":\"response\",\"status\":\"incomplete\",\"incomplete_details\":{"
               "\"reason\":\"max_output_tokens\"},\"output\":[{\"type\":\"message\",\"content\":"
               "[{\"type\":\"output_text\",\"text\":\"Hel\"}]}],\"usage\":{\"input_tokens\":4,"
               "\"output_tokens\":16}}",
               GW_END_EOF);
    r = gw_measure_result(m);
    assert_int_equal(r->choices[0].finish, GW_FINISH_LENGTH);
    assert_string_equal(r->choices[0].text, "Hel");
    assert_string_equal(r->response_status, "incomplete");
    assert_int_equal(r->output_tokens, 16);
    gw_measure_free(m);
    /* TGI /generate body, engine counts from headers */
    m = gw_measure_new(GW_API_SGLANG_GENERATE, false, false, T0, 256);
    gw_measure_response_start(m, 200, "application/json", T0 + 1);
    gw_measure_header_tokens(m, 7, 12);
    const char *tgi = "{\"generated_text\":\"hi\"}";
    assert_int_equal(gw_measure_feed(m, tgi, strlen(tgi), T0 + 2, NULL, NULL), HS_OK);
    gw_measure_end(m, GW_END_EOF, T0 + 3, NULL);
    r = gw_measure_result(m);
    assert_string_equal(r->usage_source_name, "engine");
    assert_int_equal(r->input_tokens, 7);
    assert_int_equal(r->output_tokens, 12);
    assert_string_equal(r->choices[0].text, "hi");
    gw_measure_free(m);
    /* a body cut by a reset is truncated */
    m = stream(GW_API_CHAT, 200, "application/json", "{\"choices\":[", GW_END_RESET);
    assert_int_equal(gw_measure_result(m)->outcome, GW_STREAM_TRUNCATED);
    gw_measure_free(m);
}

static void measure_engine_native_streams_are_read(void **state)
{
    (void)state;
    /* SGLang native: cumulative text, deltas by comparison */
    const char *sg[] = {
        "data: {\"text\":\"Hel\",\"meta_info\":{\"prompt_tokens\":5,\"completion_tokens\":1,"
        "\"finish_reason\":null}}\n\n",
        "data: {\"text\":\"Hel\",\"meta_info\":{\"completion_tokens\":1}}\n\n",
        "data: {\"text\":\"Hello\",\"meta_info\":{\"prompt_tokens\":5,\"completion_tokens\":2,"
        "\"cached_tokens\":3,\"finish_reason\":{\"type\":\"length\",\"length\":2}}}\n\n",
        "data: [DONE]\n\n",
    };
    const int64_t t[] = {T0 + 10, T0 + 20, T0 + 30, T0 + 40};
    struct gw_measure *m = gw_measure_new(gw_api_from_path("/generate"), true, false, T0, 64);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    feed_events(m, sg, t, HS_ARRAY_LEN(sg));
    gw_measure_end(m, GW_END_EOF, T0 + 50, NULL);
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_int_equal(r->outcome, GW_OK);
    assert_int_equal(r->output_events, 2);
    assert_string_equal(r->choices[0].text, "Hello");
    assert_int_equal(r->choices[0].finish, GW_FINISH_LENGTH);
    assert_string_equal(r->usage_source_name, "engine");
    assert_int_equal(r->output_tokens, 2);
    assert_int_equal(r->cached_tokens, 3);
    assert_int_equal(r->itl_ns[0], 20);
    gw_measure_free(m);
    /* llama.cpp OpenAI route without usage: counts from timings */
    m = stream(GW_API_CHAT, 200, "text/event-stream",
               "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
               "\"timings\":{\"prompt_n\":5,\"cache_n\":20,\"predicted_n\":9}}\n\ndata: [DONE]\n\n",
               GW_END_EOF);
    r = gw_measure_result(m);
    assert_string_equal(r->usage_source_name, "engine");
    assert_int_equal(r->input_tokens, 25);
    assert_int_equal(r->output_tokens, 9);
    gw_measure_free(m);
    /* llama.cpp native /completion */
    const char *ll[] = {
        "data: {\"content\":\"Hi\",\"stop\":false}\n\n",
        "data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"limit\",\"tokens_predicted\":"
        "4,\"tokens_evaluated\":6,\"timings\":{\"prompt_n\":6,\"prompt_ms\":1.5,"
        "\"predicted_n\":4,\"predicted_ms\":9.0}}\n\n",
    };
    m = gw_measure_new(gw_api_from_path("/completion"), true, false, T0, 64);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    feed_events(m, ll, t, HS_ARRAY_LEN(ll));
    gw_measure_end(m, GW_END_EOF, T0 + 50, NULL);
    r = gw_measure_result(m);
    assert_int_equal(r->outcome, GW_OK);
    assert_int_equal(r->output_events, 1);
    assert_int_equal(r->choices[0].finish, GW_FINISH_LENGTH);
    assert_true(r->truncated);
    assert_int_equal(r->output_tokens, 4);
    assert_int_equal(r->input_tokens, 6);
    assert_true(r->engine_timings.present);
    gw_measure_free(m);
}

static void measure_api_from_path_knows_every_route(void **state)
{
    (void)state;
    assert_int_equal(gw_api_from_path("/v1/chat/completions"), GW_API_CHAT);
    assert_int_equal(gw_api_from_path("/v1/chat/completions?x=1"), GW_API_CHAT);
    assert_int_equal(gw_api_from_path("/openai/v1/chat/completions/"), GW_API_CHAT);
    assert_int_equal(gw_api_from_path("/v1/completions"), GW_API_COMPLETIONS);
    assert_int_equal(gw_api_from_path("/v1/embeddings"), GW_API_EMBEDDINGS);
    assert_int_equal(gw_api_from_path("/v1/responses"), GW_API_RESPONSES);
    assert_int_equal(gw_api_from_path("/generate_stream"), GW_API_TGI_GENERATE);
    assert_int_equal(gw_api_from_path("/generate"), GW_API_SGLANG_GENERATE);
    assert_int_equal(gw_api_from_path("/completion"), GW_API_LLAMACPP_COMPLETION);
    assert_int_equal(gw_api_from_path("/v1/models"), GW_API_OTHER);
    assert_int_equal(gw_api_from_path(NULL), GW_API_OTHER);
    assert_string_equal(gw_api_operation_name(GW_API_COMPLETIONS), "text_completion");
    assert_string_equal(gw_api_operation_name(GW_API_TGI_GENERATE), "generate");
}

static void measure_hostile_streams_pass_through_in_bounded_memory(void **state)
{
    (void)state;
    /* an endless data line: the parser gives up, the bytes still flow */
    struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, true, T0, 64);
    gw_measure_response_start(m, 200, "text/event-stream", T0);
    struct hs_buf fwd;
    hs_buf_init(&fwd, 0);
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    memcpy(chunk, "data: ", 6);
    size_t total = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(gw_measure_feed(m, chunk, sizeof(chunk), T0 + i, &fwd, NULL), HS_OK);
        total += sizeof(chunk);
        assert_int_equal(fwd.len, total);
        hs_buf_reset(&fwd);
        total = 0;
    }
    const struct gw_measure_result *r = gw_measure_result(m);
    assert_true(r->sse_failed);
    gw_measure_end(m, GW_END_EOF, T0 + 1000, &fwd);
    assert_int_equal(r->outcome, GW_STREAM_TRUNCATED);
    gw_measure_free(m);
    /* garbage payloads are counted, not errors */
    m = stream(GW_API_CHAT, 200, "text/event-stream",
               "data: {not json\n\ndata: [1,2]\n\ndata: \"s\"\n\ndata: {\"choices\":[{\"delta\":"
               "\n\ndata: [DONE]\n\n",
               GW_END_EOF);
    r = gw_measure_result(m);
    assert_int_equal(r->bad_events, 4);
    assert_int_equal(r->outcome, GW_OK);
    gw_measure_free(m);
    /* choice indexes past the ceiling are counted, not kept */
    m = stream(GW_API_CHAT, 200, "text/event-stream",
               "data: {\"choices\":[{\"index\":100000,\"delta\":{\"content\":\"a\"}}]}\n\n",
               GW_END_EOF);
    assert_int_equal(gw_measure_result(m)->dropped_choices, 1);
    gw_measure_free(m);
    hs_buf_cleanup(&fwd);
}

static void measure_allocation_failures_never_crash_or_leak(void **state)
{
    (void)state;
    size_t len;
    char *data = load_fixture("openai-chat-stream-n2.txt", &len);
    for (long n = 0; n < 200; n++) {
        hs_alloc_fail_after(n);
        struct gw_measure *m = gw_measure_new(GW_API_CHAT, true, true, T0, 64);
        if (m == NULL) {
            hs_alloc_fail_after(-1);
            continue;
        }
        gw_measure_set_n(m, 2);
        gw_measure_response_start(m, 200, "text/event-stream", T0);
        struct hs_buf fwd;
        hs_buf_init(&fwd, 0);
        int rc = gw_measure_feed(m, data, len / 2, T0 + 1, &fwd, NULL);
        assert_true(rc == HS_OK || rc == HS_ENOMEM);
        rc = gw_measure_feed(m, data + len / 2, len - len / 2, T0 + 2, &fwd, NULL);
        assert_true(rc == HS_OK || rc == HS_ENOMEM);
        gw_measure_end(m, GW_END_EOF, T0 + 3, &fwd);
        hs_alloc_fail_after(-1);
        gw_measure_free(m);
        hs_buf_cleanup(&fwd);
    }
    hs_free(data);
}

/* Not asserted (timings never decide pass/fail): prints MB/s of
 * gw_measure_feed over the fixtures, one event per read as a proxy sees
 * them, with stripping and a forward buffer. */
static void measure_prints_its_feed_throughput(void **state)
{
    (void)state;
    char *data[HS_ARRAY_LEN(wants)];
    size_t len[HS_ARRAY_LEN(wants)], total = 0, events = 0;
    for (size_t f = 0; f < HS_ARRAY_LEN(wants); f++)
        data[f] = load_fixture(wants[f].file, &len[f]);
    struct hs_buf fwd;
    hs_buf_init(&fwd, 0);
    int64_t t0 = hs_mono_ns(), t1 = t0;
    int rounds = 0;
    while (t1 - t0 < 300000000LL) {
        for (size_t f = 0; f < HS_ARRAY_LEN(wants); f++) {
            struct gw_measure *m = gw_measure_new(wants[f].api, true, true, T0, 4096);
            gw_measure_response_start(m, 200, "text/event-stream", T0);
            const char *p = data[f], *end = data[f] + len[f];
            while (p < end) {
                const char *e = strstr(p, "\n\n");
                size_t n = e ? (size_t)(e + 2 - p) : (size_t)(end - p);
                assert_int_equal(gw_measure_feed(m, p, n, T0 + 1, &fwd, NULL), HS_OK);
                p += n;
                events++;
            }
            gw_measure_end(m, GW_END_EOF, T0 + 2, &fwd);
            gw_measure_free(m);
            hs_buf_reset(&fwd);
            total += len[f];
        }
        rounds++;
        t1 = hs_mono_ns();
    }
    double s = (double)(t1 - t0) / 1e9;
    print_message("gw_measure_feed: %.1f MB/s, %.0f ns per event (%d rounds, %zu events)\n",
                  (double)total / s / 1e6, s * 1e9 / (double)events, rounds, events);
    hs_buf_cleanup(&fwd);
    for (size_t f = 0; f < HS_ARRAY_LEN(wants); f++)
        hs_free(data[f]);
}

/* ---- request side ------------------------------------------------------------------- */

static void request_parse_reads_model_stream_n_and_stream_options(void **state)
{
    (void)state;
    struct gw_request_info info;
    struct hs_err err = {0};
    const char *b = "{\"model\":\"llama\\u002d3\",\"stream\":true,\"n\":2,\"max_tokens\":64,"
                    "\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}";
    assert_int_equal(gw_request_parse(b, strlen(b), &info, &err), HS_OK);
    assert_true(info.has_model);
    assert_string_equal(info.model, "llama-3");
    assert_true(info.stream);
    assert_int_equal(info.n, 2);
    assert_int_equal(info.max_tokens, 64);
    assert_true(info.has_stream_options);
    assert_true(info.include_usage);
    assert_true(info.continuous_usage_stats);
    b = "{\"inputs\":\"x\",\"parameters\":{\"max_new_tokens\":9}}";
    assert_int_equal(gw_request_parse(b, strlen(b), &info, &err), HS_OK);
    assert_false(info.has_model);
    assert_false(info.stream);
    assert_int_equal(info.n, 1);
    assert_int_equal(info.max_tokens, 9);
}

static void request_parse_rejects_bad_bodies_with_positions(void **state)
{
    (void)state;
    struct gw_request_info info;
    struct hs_err err = {0};
    const char *b = "{\"model\":\"x\",}";
    assert_int_equal(gw_request_parse(b, strlen(b), &info, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "invalid JSON at byte"));
    assert_true(err.pos > 0 && err.pos <= strlen(b));
    assert_int_equal(gw_request_parse("[1]", 3, &info, &err), HS_EINVAL);
    assert_string_equal(err.msg, "request body must be a JSON object");
    assert_int_equal(gw_request_parse("{\"model\":5}", 11, &info, &err), HS_EINVAL);
    assert_string_equal(err.msg, "'model' must be a string");
    assert_int_equal(gw_request_parse("", 0, &info, &err), HS_EPARSE);
    /* a NUL byte is refused: jansson and the injection must read the same text */
    assert_int_equal(gw_request_parse("{\"a\":1}\0", 8, &info, &err), HS_EPARSE);
    assert_int_equal(err.pos, 7);
}

static void expect_injected(const char *in, const char *want)
{
    struct hs_buf out;
    struct hs_err err = {0};
    hs_buf_init(&out, 0);
    assert_int_equal(gw_request_inject_usage(in, strlen(in), &out, &err), HS_OK);
    assert_string_equal(out.p, want);
    struct gw_request_info info;
    assert_int_equal(gw_request_parse(out.p, out.len, &info, &err), HS_OK);
    assert_true(info.include_usage);
    hs_buf_cleanup(&out);
}

static void request_inject_usage_keeps_every_other_byte(void **state)
{
    (void)state;
    expect_injected("{\"model\": \"m\", \"stream\": true, \"temperature\": 1.50}\n",
                    "{\"model\": \"m\", \"stream\": true, \"temperature\": 1.50,\"stream_options\":"
                    "{\"include_usage\":true}}\n");
    expect_injected("{\"stream_options\":{\"continuous_usage_stats\":true},\"model\":\"m\"}",
                    "{\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true},"
                    "\"model\":\"m\"}");
    expect_injected("{\"model\":\"m\",\"stream_options\":{ \"include_usage\" : false }}",
                    "{\"model\":\"m\",\"stream_options\":{ \"include_usage\" : true }}");
    expect_injected("{\"model\":\"m\",\"stream_options\":null}",
                    "{\"model\":\"m\",\"stream_options\":{\"include_usage\":true}}");
    expect_injected("{\"model\":\"m\",\"stream_options\":{}}",
                    "{\"model\":\"m\",\"stream_options\":{\"include_usage\":true}}");
    expect_injected("{\"model\":\"m\",\"s\":\"}\"}",
                    "{\"model\":\"m\",\"s\":\"}\",\"stream_options\":{\"include_usage\":true}}");
    expect_injected("{ }", "{ \"stream_options\":{\"include_usage\":true}}");
    /* already on: unchanged */
    expect_injected("{\"model\":\"m\",\"stream_options\":{\"include_usage\":true}}",
                    "{\"model\":\"m\",\"stream_options\":{\"include_usage\":true}}");
    struct hs_buf out;
    hs_buf_init(&out, 0);
    struct hs_err err = {0};
    assert_int_equal(gw_request_inject_usage("{\"a\":", 5, &out, &err), HS_EPARSE);
    assert_int_equal(out.len, 0);
    hs_buf_cleanup(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(measure_fixtures_give_the_readme_values_whole_split_and_bytewise),
        cmocka_unit_test(measure_tool_call_arguments_join_into_valid_json),
        cmocka_unit_test(measure_error_midstream_reads_the_nested_error),
        cmocka_unit_test(measure_truncated_stream_estimates_tokens_from_chunks),
        cmocka_unit_test(measure_responses_and_tgi_end_ok_without_done),
        cmocka_unit_test(measure_continuous_usage_takes_the_last_value_never_a_sum),
        cmocka_unit_test(measure_llamacpp_timings_are_kept_beside_usage),
        cmocka_unit_test(measure_ttft_itl_and_tpot_come_from_the_clock_values_passed_in),
        cmocka_unit_test(measure_itl_gaps_are_per_choice_and_ttft_is_the_earliest_choice),
        cmocka_unit_test(measure_reasoning_is_output_but_not_visible),
        cmocka_unit_test(measure_text_is_bounded_per_choice),
        cmocka_unit_test(measure_stripping_waits_for_every_requested_choice),
        cmocka_unit_test(measure_endless_comments_after_the_finish_give_up_stripping),
        cmocka_unit_test(measure_finish_reasons_normalise_per_the_table),
        cmocka_unit_test(measure_responses_status_maps_to_finish_reasons),
        cmocka_unit_test(measure_outcomes_follow_the_classification),
        cmocka_unit_test(measure_non_streaming_bodies_are_measured),
        cmocka_unit_test(measure_engine_native_streams_are_read),
        cmocka_unit_test(measure_api_from_path_knows_every_route),
        cmocka_unit_test(measure_hostile_streams_pass_through_in_bounded_memory),
        cmocka_unit_test(measure_allocation_failures_never_crash_or_leak),
        cmocka_unit_test(measure_prints_its_feed_throughput),
        cmocka_unit_test(request_parse_reads_model_stream_n_and_stream_options),
        cmocka_unit_test(request_parse_rejects_bad_bodies_with_positions),
        cmocka_unit_test(request_inject_usage_keeps_every_other_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
