/* Tests of src/gateway/capture_*.c: record format, sampling, config, the
 * writer (redaction on disk, rotation, budget, drops) and the query. */
#include "hs_test.h"
#include "hs_test_util.h"

#include "gateway/capture.h"
#include "tsdb/tsdb.h"

#include <jansson.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *fixture_path(void)
{
    const char *shared = getenv("HS_SHARED_DIR");
    static char p[4096];
    snprintf(p, sizeof(p), "%s/fixtures/capture/sagemaker-datacapture.jsonl",
             shared != NULL ? shared : "../../../shared");
    return p;
}

static void capture_record_round_trips_every_fixture_line_byte_for_byte(void **state)
{
    (void)state;
    size_t len = 0;
    struct hs_err err = {0};
    char *text = hs_read_file(fixture_path(), 0, &len, &err);
    assert_non_null(text);
    size_t i = 0, lines = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        struct hs_arena a;
        hs_arena_init(&a, 4096, 0);
        struct capture_record r;
        assert_int_equal(capture_record_parse(text + i, end - i, &a, &r, &err), HS_OK);
        struct hs_buf out;
        hs_buf_init(&out, 0);
        assert_int_equal(capture_record_format(&r, false, &out), HS_OK);
        assert_int_equal(out.len, end - i + 1);
        if (memcmp(out.p, text + i, end - i) != 0)
            fail_msg("line %zu differs:\n%s", lines + 1, out.p);
        assert_int_equal(out.p[out.len - 1], '\n');
        if (lines == 1) {
            /* record 2: BASE64 of a raw SSE stream with usage 36/3 */
            assert_string_equal(r.output_encoding, "BASE64");
            assert_string_equal(r.output_content_type, "text/event-stream");
            char *sse = strndup(r.output, r.output_len);
            assert_non_null(strstr(sse, "\"prompt_tokens\":36"));
            assert_non_null(strstr(sse, "\"completion_tokens\":3"));
            assert_non_null(strstr(sse, "data: [DONE]\n\n"));
            free(sse);
            assert_null(r.inference_id);
        }
        if (lines == 0) {
            assert_string_equal(r.inference_id, "req-0001");
            assert_int_equal(r.t_recv_ms, 1767225601000LL);
        }
        hs_buf_cleanup(&out);
        hs_arena_cleanup(&a);
        lines++;
        i = end + 1;
    }
    assert_int_equal(lines, 4);
    hs_free(text);
}

static void capture_record_keeps_the_extension_block_verbatim(void **state)
{
    (void)state;
    const char *line =
        "{\"captureData\":{\"endpointInput\":{\"observedContentType\":\"application/json\","
        "\"mode\":\"INPUT\",\"data\":\"{}\",\"encoding\":\"JSON\"}},\"eventMetadata\":{"
        "\"eventId\":\"e\",\"inferenceTime\":\"2026-01-01T00:00:01.250Z\",\"customAttributes\":"
        "\"c=1\"},\"eventVersion\":\"0\",\"holoscope\":{\"v\":1,\"ttft_s\":0.183,\"e2e_s\":1.402,"
        "\"output_tokens\":98,\"finish_reasons\":[\"stop\"],\"future\":{\"x\":[1,\"}\"]}}}";
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct capture_record r;
    struct hs_err err = {0};
    assert_int_equal(capture_record_parse(line, strlen(line), &a, &r, &err), HS_OK);
    assert_int_equal(r.t_recv_ms, 1767225601250LL);
    assert_true(fabs(r.ttft_s - 0.183) < 1e-12);
    assert_int_equal(r.output_tokens, 98);
    assert_int_equal(r.nfinish_reasons, 1);
    assert_string_equal(r.finish_reasons[0], "stop");
    assert_false(r.has_output);
    struct hs_buf out;
    hs_buf_init(&out, 0);
    assert_int_equal(capture_record_format(&r, true, &out), HS_OK);
    out.p[--out.len] = '\0';
    assert_string_equal(out.p, line);
    hs_buf_cleanup(&out);
    hs_arena_cleanup(&a);
}

static void capture_record_parse_reports_malformed_lines(void **state)
{
    (void)state;
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct capture_record r;
    struct hs_err err = {0};
    assert_int_equal(capture_record_parse("{\"captureData\":", 15, &a, &r, &err), HS_EPARSE);
    const char *no_data = "{\"captureData\":{\"endpointInput\":{\"mode\":\"INPUT\"}},"
                          "\"eventMetadata\":{\"inferenceTime\":\"2026-01-01T00:00:01Z\"}}";
    assert_int_equal(capture_record_parse(no_data, strlen(no_data), &a, &r, &err), HS_EINVAL);
    assert_string_equal(err.msg, "captureData.endpointInput.data: missing");
    const char *bad_b64 = "{\"captureData\":{\"endpointOutput\":{\"data\":\"abc\","
                          "\"encoding\":\"BASE64\"}},\"eventMetadata\":{\"inferenceTime\":"
                          "\"2026-01-01T00:00:01Z\"}}";
    assert_int_equal(capture_record_parse(bad_b64, strlen(bad_b64), &a, &r, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "invalid base64"));
    const char *bad_time =
        "{\"captureData\":{},\"eventMetadata\":{\"inferenceTime\":\"yesterday\"}}";
    assert_int_equal(capture_record_parse(bad_time, strlen(bad_time), &a, &r, &err), HS_EINVAL);
    hs_arena_cleanup(&a);
}

static void capture_record_format_escapes_minimally_and_base64s_invalid_utf8(void **state)
{
    (void)state;
    struct capture_record r;
    capture_record_init(&r);
    r.event_id = "id";
    r.inference_time = "2026-01-01T00:00:01Z";
    r.has_input = true;
    r.input_content_type = "application/vnd.api+json; charset=utf-8";
    r.input = "{\"a\":\"x/y \\u00e9 \xc3\xa9\"}";
    r.input_len = strlen(r.input);
    r.has_output = true;
    r.output_content_type = "application/json";
    r.output = "\xff\xfe";
    r.output_len = 2;
    struct hs_buf out;
    hs_buf_init(&out, 0);
    assert_int_equal(capture_record_format(&r, false, &out), HS_OK);
    assert_non_null(strstr(out.p, "\"data\":\"{\\\"a\\\":\\\"x/y \\\\u00e9 \xc3\xa9\\\"}\","
                                  "\"encoding\":\"JSON\""));
    assert_non_null(strstr(out.p, "\"data\":\"//4=\",\"encoding\":\"BASE64\""));
    json_error_t je;
    json_t *j = json_loads(out.p, 0, &je);
    assert_non_null(j);
    json_decref(j);
    hs_buf_cleanup(&out);
}

static void capture_should_sample_is_deterministic_and_near_the_percentage(void **state)
{
    (void)state;
    int hits = 0;
    char id[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        bool a = capture_should_sample(id, 10);
        assert_true(a == capture_should_sample(id, 10));
        hits += a;
        assert_false(capture_should_sample(id, 0));
        assert_true(capture_should_sample(id, 100));
        /* monotone: sampled at 10 % means sampled at 50 % */
        if (a)
            assert_true(capture_should_sample(id, 50));
    }
    assert_in_range(hits, 1700, 2300);
    assert_false(capture_should_sample(NULL, 50));
}

static struct hs_ydoc *yaml(const char *text)
{
    struct hs_err err = {0};
    struct hs_ydoc *d = hs_ydoc_parse(text, strlen(text), "test.yml", &err);
    if (d == NULL)
        fail_msg("%s", err.msg);
    return d;
}

static void capture_config_parse_reads_every_key(void **state)
{
    (void)state;
    struct hs_ydoc *d = yaml("capture:\n"
                             "  dir: /tmp/caps\n"
                             "  sampling_percentage: 12.5\n"
                             "  sample_by_id: false\n"
                             "  extensions: false\n"
                             "  mode: Input\n"
                             "  stream_output: raw\n"
                             "  always_capture: [http_error, finish_length]\n"
                             "  max_body_bytes: 2MiB\n"
                             "  max_file_bytes: 1MiB\n"
                             "  max_file_age: 90s\n"
                             "  max_disk_bytes: 0\n"
                             "  queue_size: 7\n"
                             "  queue_max_bytes: 1MiB\n"
                             "  score_quality: false\n"
                             "  redaction:\n"
                             "    enabled: true\n"
                             "    disable: [phone, IPV4]\n"
                             "    rules:\n"
                             "      - {name: ORDER, regex: 'ORD-\\d+'}\n");
    struct capture_config c;
    capture_config_defaults(&c);
    struct hs_err err = {0};
    int rc = capture_config_parse(d, hs_ynode_get(d->root, "capture"), &c, &err);
    if (rc != HS_OK)
        fail_msg("%s", err.msg);
    assert_string_equal(c.dir, "/tmp/caps");
    assert_true(c.sampling_percentage == 12.5);
    assert_false(c.sample_by_id);
    assert_false(c.extensions);
    assert_false(c.score_quality);
    assert_int_equal(c.mode, CAPTURE_MODE_INPUT);
    assert_int_equal(c.stream_output, CAPTURE_STREAM_RAW);
    assert_int_equal(c.always_capture, CAPTURE_ALWAYS_HTTP_ERROR | CAPTURE_ALWAYS_FINISH_LENGTH);
    assert_int_equal(c.max_body_bytes, 2u << 20);
    assert_int_equal(c.max_file_age_ms, 90000);
    assert_int_equal(c.max_disk_bytes, 0);
    assert_int_equal(c.queue_size, 7);
    assert_true(c.redaction.is_disabled[REDACT_PHONE]);
    assert_true(c.redaction.is_disabled[REDACT_IPV4]);
    assert_false(c.redaction.is_disabled[REDACT_EMAIL]);
    assert_int_equal(c.redaction.ncustom, 1);
    assert_string_equal(c.redaction.custom[0].name, "ORDER");
    capture_config_free(&c);
    hs_ydoc_free(d);
}

static void capture_config_parse_names_the_position_of_bad_values(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"capture:\n  colour: red\n", "test.yml:2:3: capture: unknown key \"colour\""},
        {"capture:\n  sampling_percentage: 101\n", "must be between 0 and 100"},
        {"capture:\n  mode: Both\n", "capture.mode: unknown value \"Both\""},
        {"capture:\n  redaction:\n    disable: [postcode]\n", "unknown detector \"postcode\""},
        {"capture:\n  redaction:\n    rules:\n      - {name: X, regex: 'a(b'}\n",
         "test.yml:4:26: capture.redaction.rules[0]: redaction rule X:"},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++) {
        struct hs_ydoc *d = yaml(cases[i][0]);
        struct capture_config c;
        capture_config_defaults(&c);
        struct hs_err err = {0};
        assert_int_equal(capture_config_parse(d, hs_ynode_get(d->root, "capture"), &c, &err),
                         HS_EINVAL);
        if (strstr(err.msg, cases[i][1]) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i][1]);
        capture_config_free(&c);
        hs_ydoc_free(d);
    }
}

/* ---- writer --------------------------------------------------------------------- */

struct tree {
    char **paths;
    size_t n;
    size_t parts;
    uint64_t bytes;
};

static void tree_walk(const char *dir, struct tree *t)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            tree_walk(p, t);
            continue;
        }
        t->paths = realloc(t->paths, (t->n + 1) * sizeof(char *));
        t->paths[t->n++] = strdup(p);
        t->bytes += (uint64_t)st.st_size;
        if (strstr(e->d_name, ".part") != NULL)
            t->parts++;
    }
    closedir(d);
}

static void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->paths[i]);
    free(t->paths);
}

/* Every file's bytes concatenated. */
static char *tree_cat(const struct tree *t, size_t *len)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    for (size_t i = 0; i < t->n; i++) {
        size_t n = 0;
        struct hs_err err;
        char *s = hs_read_file(t->paths[i], 0, &n, &err);
        assert_non_null(s);
        assert_int_equal(hs_buf_append(&b, s, n), HS_OK);
        hs_free(s);
    }
    return hs_buf_detach(&b, len);
}

static void base_config(struct capture_config *c, const char *dir)
{
    capture_config_defaults(c);
    c->dir = dir;
    c->sampling_percentage = 100;
}

static void fill_record(struct capture_record *r, int i, const char *prompt, const char *answer)
{
    capture_record_init(r);
    r->t_recv_ms = 1767225600000LL + i * 1000;
    r->inference_id = "req";
    r->request_id = "req";
    r->model = "llama-3.1-8b-instruct";
    r->route = "llama";
    r->upstream = "vllm-a";
    r->operation = "chat";
    r->has_input = true;
    r->input_content_type = "application/json";
    r->input = prompt;
    r->input_len = strlen(prompt);
    r->has_output = true;
    r->output_content_type = "application/json";
    r->output = answer;
    r->output_len = strlen(answer);
    r->http_status = 200;
    r->outcome = "ok";
    r->e2e_s = 0.5;
}

static const char *const planted[] = {
    "jane.doe@example.com", "4111 1111 1111 1111",
    "+14155550132",         "sk-abcdefghijklmnopqrstuvwxyz0123",
    "192.168.10.77",        "123-45-6789",
    "ORD-424242",
};

static void capture_writer_never_writes_planted_pii_to_disk(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("capture-pii");
    struct capture_config c;
    base_config(&c, dir);
    struct redact_rule rules[] = {{"ORDER", "ORD-[0-9]{6}"}};
    c.stream_output = CAPTURE_STREAM_RAW; /* per-event redaction of the raw bytes */
    c.redaction.custom = rules;
    c.redaction.ncustom = 1;
    struct hs_err err = {0};
    struct capture_writer *w = capture_writer_new(&c, NULL, &err);
    assert_non_null(w);
    char prompt[1024], answer[1024];
    snprintf(prompt, sizeof(prompt),
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"I am %s, card "
             "%s, phone %s, key %s, from %s, ssn %s, order %s\"}]}",
             planted[0], planted[1], planted[2], planted[3], planted[4], planted[5], planted[6]);
    snprintf(answer, sizeof(answer),
             "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
             "\"assistant\",\"content\":\"Noted %s and %s\"},\"finish_reason\":\"stop\"}]}",
             planted[0], planted[6]);
    struct capture_record r;
    fill_record(&r, 0, prompt, answer);
    r.inference_id = "from jane.doe@example.com";
    r.custom_attributes = "caller=+14155550132";
    assert_true(capture_writer_submit(w, &r));
    /* a raw SSE stream: stored as BASE64, redacted before encoding */
    char sse[1024];
    snprintf(sse, sizeof(sse),
             "data: {\"choices\":[{\"delta\":{\"content\":\"mail %s\"}}]}\n\n"
             "data: {\"choices\":[{\"delta\":{\"content\":\" or %s\"}}]}\n\ndata: [DONE]\n\n",
             planted[0], planted[4]);
    fill_record(&r, 1, prompt, sse);
    r.output_content_type = "text/event-stream";
    r.stream = true;
    r.stream_output = CAPTURE_STREAM_RAW;
    assert_true(capture_writer_submit(w, &r));
    /* CSV and unknown content types are redacted as text */
    fill_record(&r, 2, "name,email\nJane,jane.doe@example.com\n", "ok 192.168.10.77");
    r.input_content_type = "text/csv";
    r.output_content_type = "text/plain";
    assert_true(capture_writer_submit(w, &r));
    assert_int_equal(capture_writer_flush(w, 10000), HS_OK);
    struct capture_stats st;
    capture_writer_get_stats(w, &st);
    assert_int_equal(st.written, 3);
    assert_true(st.redactions[REDACT_EMAIL] >= 4);
    assert_int_equal(st.redactions[REDACT_CREDIT_CARD], 2);
    assert_int_equal(st.redactions[REDACT_NBUILTIN], 3);
    capture_writer_free(w);

    struct tree t = {0};
    tree_walk(dir, &t);
    assert_int_equal(t.parts, 0);
    assert_true(t.n >= 1);
    size_t len = 0;
    char *all = tree_cat(&t, &len);
    /* the query decodes BASE64 payloads: check the decoded text too */
    struct hs_buf q;
    hs_buf_init(&q, 0);
    struct capture_query cq = {.start_ms = INT64_MIN, .end_ms = INT64_MAX};
    assert_int_equal(capture_query(dir, &cq, &q, &err), HS_OK);
    for (size_t i = 0; i < HS_ARRAY_LEN(planted); i++) {
        if (memmem(all, len, planted[i], strlen(planted[i])) != NULL)
            fail_msg("planted \"%s\" found on disk", planted[i]);
        if (strstr(q.p, planted[i]) != NULL)
            fail_msg("planted \"%s\" found in the decoded captures", planted[i]);
    }
    assert_non_null(strstr(q.p, "[REDACTED:EMAIL]"));
    assert_non_null(strstr(q.p, "data: {\\\"choices\\\""));
    assert_non_null(strstr(all, "\"redactions\":{"));
    /* every line is valid JSON */
    char *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(all, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *j = json_loads(l, 0, &je);
        if (j == NULL)
            fail_msg("line %d is not JSON: %s", lines, je.text);
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, 3);
    hs_buf_cleanup(&q);
    free(all);
    tree_free(&t);
    hs_test_rmdir(dir);
    free(dir);
}

static char *read_fixture(const char *name, size_t *len)
{
    const char *shared = getenv("HS_SHARED_DIR");
    char p[4096];
    snprintf(p, sizeof(p), "%s/fixtures/sse/%s", shared != NULL ? shared : "../../../shared", name);
    struct hs_err err = {0};
    char *t = hs_read_file(p, 0, len, &err);
    if (t == NULL)
        fail_msg("%s", err.msg);
    return t;
}

static json_t *assemble(const char *sse, size_t len)
{
    struct hs_buf out;
    hs_buf_init(&out, 0);
    struct hs_err err = {0};
    int rc = capture_assemble_sse(sse, len, &out, &err);
    if (rc != HS_OK)
        fail_msg("assemble: %s", err.msg);
    json_error_t je;
    json_t *j = json_loadb(out.p, out.len, 0, &je);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", je.text, out.p);
    hs_buf_cleanup(&out);
    return j;
}

static void capture_assemble_sse_builds_the_non_streaming_answer(void **state)
{
    (void)state;
    size_t len;
    char *t = read_fixture("openai-chat-stream-tool-call.txt", &len);
    json_t *j = assemble(t, len);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "tool_calls");
    json_t *fn = json_object_get(
        json_array_get(json_object_get(json_object_get(c0, "message"), "tool_calls"), 0),
        "function");
    assert_string_equal(json_string_value(json_object_get(fn, "arguments")),
                        "{\"location\":\"Paris\",\"unit\":\"celsius\"}");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 17);
    json_decref(j);
    hs_free(t);

    t = read_fixture("openai-chat-stream-n2.txt", &len);
    j = assemble(t, len);
    assert_int_equal(json_array_size(json_object_get(j, "choices")), 2);
    json_decref(j);
    hs_free(t);

    t = read_fixture("openai-completions-stream.txt", &len);
    j = assemble(t, len);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "text_completion");
    json_decref(j);
    hs_free(t);

    t = read_fixture("openai-responses-stream.txt", &len);
    j = assemble(t, len);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "response");
    json_decref(j);
    hs_free(t);

    struct hs_buf out;
    hs_buf_init(&out, 0);
    struct hs_err err = {0};
    t = read_fixture("tgi-generate-stream.txt", &len);
    assert_int_equal(capture_assemble_sse(t, len, &out, &err), HS_EINVAL);
    assert_int_equal(capture_assemble_sse("data: [DONE]\n\n", 14, &out, &err), HS_EINVAL);
    assert_int_equal(out.len, 0);
    hs_buf_cleanup(&out);
    hs_free(t);
}

static void capture_writer_redacts_pii_split_across_stream_events_when_assembled(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("capture-asm");
    struct capture_config c;
    base_config(&c, dir);
    struct hs_err err = {0};
    struct capture_writer *w = capture_writer_new(&c, NULL, &err);
    assert_non_null(w);
    const char *sse =
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
        "\"write to jane.doe@exa\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"mple.com today\"},"
        "\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
        "\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}\n\n"
        "data: [DONE]\n\n";
    struct capture_record r;
    fill_record(&r, 0, "{\"model\":\"m\",\"stream\":true}", sse);
    r.output_content_type = "text/event-stream";
    r.output_encoding = "BASE64";
    r.stream = true;
    r.stream_output = CAPTURE_STREAM_RAW;
    assert_true(capture_writer_submit(w, &r));
    assert_int_equal(capture_writer_flush(w, 10000), HS_OK);
    capture_writer_free(w);
    struct hs_buf q;
    hs_buf_init(&q, 0);
    struct capture_query cq = {.start_ms = INT64_MIN, .end_ms = INT64_MAX};
    assert_int_equal(capture_query(dir, &cq, &q, &err), HS_OK);
    json_error_t je;
    json_t *j = json_loads(q.p, 0, &je);
    assert_non_null(j);
    json_t *rec = json_array_get(j, 0);
    json_t *out = json_object_get(rec, "output");
    assert_string_equal(json_string_value(json_object_get(out, "encoding")), "JSON");
    json_t *ans = json_loads(json_string_value(json_object_get(out, "data")), 0, &je);
    assert_non_null(ans);
    json_t *msg = json_object_get(json_array_get(json_object_get(ans, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")),
                        "write to [REDACTED:EMAIL] today");
    json_t *h = json_object_get(rec, "holoscope");
    assert_string_equal(json_string_value(json_object_get(h, "stream_output")), "assembled");
    json_decref(ans);
    json_decref(j);
    hs_buf_cleanup(&q);
    hs_test_rmdir(dir);
    free(dir);
}

static void capture_writer_rotates_by_size_and_renames_closed_files(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("capture-rot");
    struct capture_config c;
    base_config(&c, dir);
    c.max_file_bytes = 2000;
    c.score_quality = false;
    struct hs_err err = {0};
    struct capture_writer *w = capture_writer_new(&c, NULL, &err);
    assert_non_null(w);
    const char *in = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
    const char *out = "{\"choices\":[{\"message\":{\"content\":\"hi there\"}}]}";
    for (int i = 0; i < 40; i++) {
        struct capture_record r;
        fill_record(&r, i, in, out);
        assert_true(capture_writer_submit(w, &r));
    }
    assert_int_equal(capture_writer_flush(w, 10000), HS_OK);
    struct capture_stats st;
    capture_writer_get_stats(w, &st);
    assert_int_equal(st.written, 40);
    assert_true(st.files_closed >= 5);
    capture_writer_free(w);
    struct tree t = {0};
    tree_walk(dir, &t);
    assert_int_equal(t.parts, 0);
    assert_true(t.n >= 6);
    for (size_t i = 0; i < t.n; i++) {
        struct stat sb;
        assert_int_equal(stat(t.paths[i], &sb), 0);
        assert_true(sb.st_size <= 2000);
        /* <dir>/<endpoint>/<variant>/2026/01/01/00/<mm>-<ss>-<mmm>-<uuid>.jsonl */
        assert_non_null(strstr(t.paths[i], "/llama-3.1-8b-instruct/vllm-a/2026/01/01/00/00-"));
        assert_true(hs_has_suffix(t.paths[i], ".jsonl"));
    }
    /* the query returns all 40 newest first, and honours limit and range */
    struct hs_buf q;
    hs_buf_init(&q, 0);
    struct capture_query cq = {.start_ms = INT64_MIN, .end_ms = INT64_MAX, .limit = 1000};
    assert_int_equal(capture_query(dir, &cq, &q, &err), HS_OK);
    json_error_t je;
    json_t *j = json_loads(q.p, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 40);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "inferenceTime")),
                        "2026-01-01T00:00:39Z");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(j, 0), "input"), "data")),
        in);
    json_decref(j);
    hs_buf_reset(&q);
    cq.limit = 3;
    cq.start_ms = 1767225600000LL + 10000;
    cq.end_ms = 1767225600000LL + 20000;
    assert_int_equal(capture_query(dir, &cq, &q, &err), HS_OK);
    j = json_loads(q.p, 0, &je);
    assert_int_equal(json_array_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 2), "inferenceTime")),
                        "2026-01-01T00:00:18Z");
    json_decref(j);
    hs_buf_reset(&q);
    cq = (struct capture_query){.model = "other", .start_ms = INT64_MIN, .end_ms = INT64_MAX};
    assert_int_equal(capture_query(dir, &cq, &q, &err), HS_OK);
    assert_string_equal(q.p, "[]");
    hs_buf_cleanup(&q);
    tree_free(&t);
    hs_test_rmdir(dir);
    free(dir);
}

static void capture_writer_removes_the_oldest_files_beyond_the_disk_budget(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("capture-budget");
    struct capture_config c;
    base_config(&c, dir);
    c.max_file_bytes = 1000;
    c.max_disk_bytes = 4000;
    c.score_quality = false;
    struct hs_err err = {0};
    struct capture_writer *w = capture_writer_new(&c, NULL, &err);
    assert_non_null(w);
    const char *in = "{\"messages\":[{\"role\":\"user\",\"content\":\"a question\"}]}";
    const char *out = "{\"choices\":[{\"message\":{\"content\":\"an answer\"}}]}";
    for (int i = 0; i < 60; i++) {
        struct capture_record r;
        fill_record(&r, i * 120, in, out); /* two-minute steps: several hours */
        assert_true(capture_writer_submit(w, &r));
    }
    assert_int_equal(capture_writer_flush(w, 10000), HS_OK);
    capture_writer_free(w);
    struct tree t = {0};
    tree_walk(dir, &t);
    assert_true(t.bytes <= 4000);
    assert_true(t.n >= 2);
    /* the newest record survived, the oldest did not */
    struct hs_buf q;
    hs_buf_init(&q, 0);
    struct capture_query cq = {.start_ms = INT64_MIN, .end_ms = INT64_MAX, .limit = 1000};
    assert_int_equal(capture_query(dir, &cq, &q, &err), HS_OK);
    assert_non_null(strstr(q.p, "\"inferenceTime\":\"2026-01-01T01:58:00Z\""));
    assert_null(strstr(q.p, "\"inferenceTime\":\"2026-01-01T00:00:00Z\""));
    hs_buf_cleanup(&q);
    tree_free(&t);
    hs_test_rmdir(dir);
    free(dir);
}

static void capture_writer_drops_and_counts_what_it_cannot_queue(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("capture-drop");
    struct capture_config c;
    base_config(&c, dir);
    c.max_body_bytes = 64;
    c.queue_max_bytes = 1; /* smaller than any record: every submit finds the queue full */
    c.score_quality = false;
    struct hs_err err = {0};
    struct capture_writer *w = capture_writer_new(&c, NULL, &err);
    assert_non_null(w);
    struct capture_record r;
    fill_record(&r, 0, "{}", "{}");
    assert_false(capture_writer_submit(w, &r));
    char big[100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fill_record(&r, 0, big, "{}");
    assert_false(capture_writer_submit(w, &r));
    struct capture_stats st;
    capture_writer_get_stats(w, &st);
    assert_int_equal(st.submitted, 2);
    assert_int_equal(st.dropped_queue_full, 1);
    assert_int_equal(st.dropped_too_large, 1);
    assert_int_equal(st.written, 0);
    struct hs_buf m;
    hs_buf_init(&m, 0);
    assert_int_equal(capture_writer_metrics(w, &m), HS_OK);
    assert_non_null(strstr(m.p, "holoscope_capture_dropped_total{reason=\"queue_full\"} 1\n"));
    assert_non_null(strstr(m.p, "holoscope_capture_dropped_total{reason=\"too_large\"} 1\n"));
    assert_non_null(strstr(m.p, "holoscope_capture_redactions_total{type=\"EMAIL\"} 0\n"));
    hs_buf_cleanup(&m);
    capture_writer_free(w);
    hs_test_rmdir(dir);
    free(dir);
}

static void capture_writer_adds_quality_scores_and_measurements(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("capture-quality");
    struct capture_config c;
    base_config(&c, dir);
    struct hs_err err = {0};
    struct capture_writer *w = capture_writer_new(&c, NULL, &err);
    assert_non_null(w);
    assert_non_null(capture_writer_quality(w));
    struct capture_record r;
    fill_record(&r, 0,
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}]}",
                "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"Hi! How can I help you today?\"},\"finish_reason\":"
                "\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9}}");
    const char *fr[] = {"stop"};
    r.finish_reasons = fr;
    r.nfinish_reasons = 1;
    r.ttft_s = 0.125;
    r.output_tokens = 9;
    r.sampling_percentage = 5;
    assert_true(capture_writer_submit(w, &r));
    assert_int_equal(capture_writer_flush(w, 10000), HS_OK);
    struct capture_stats st;
    capture_writer_get_stats(w, &st);
    assert_int_equal(st.quality_scored, 1);
    struct hs_buf q;
    hs_buf_init(&q, 0);
    struct capture_query cq = {.start_ms = INT64_MIN, .end_ms = INT64_MAX};
    assert_int_equal(capture_query(dir, &cq, &q, &err), HS_OK);
    json_error_t je;
    json_t *j = json_loads(q.p, 0, &je);
    assert_non_null(j);
    json_t *h = json_object_get(json_array_get(j, 0), "holoscope");
    assert_non_null(h);
    assert_true(json_real_value(json_object_get(h, "ttft_s")) == 0.125);
    assert_int_equal(json_integer_value(json_object_get(h, "output_tokens")), 9);
    assert_string_equal(json_string_value(json_array_get(json_object_get(h, "finish_reasons"), 0)),
                        "stop");
    json_t *qual = json_object_get(h, "quality");
    assert_non_null(qual);
    assert_true(json_number_value(json_object_get(qual, "score")) > 0.5);
    json_decref(j);
    hs_buf_cleanup(&q);
    capture_writer_free(w);
    hs_test_rmdir(dir);
    free(dir);
}

static size_t count_series(struct tsdb *db, const char *metric)
{
    struct tsdb_matcher m;
    struct hs_err err = {0};
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", metric, &err), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, 0, INT64_MAX);
    assert_non_null(q);
    struct tsdb_series_set *set = NULL;
    assert_int_equal(tsdb_querier_select(q, &m, 1, 0, &set, &err), HS_OK);
    size_t n = tsdb_series_set_len(set);
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
    return n;
}

static void capture_writer_appends_quality_series_to_the_store(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("capture-store");
    char caps[4096], data[4096];
    snprintf(caps, sizeof(caps), "%s/captures", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    struct hs_err err = {0};
    struct tsdb *db = tsdb_open(data, NULL, &err);
    assert_non_null(db);
    struct capture_config c;
    base_config(&c, caps);
    struct capture_writer *w = capture_writer_new(&c, db, &err);
    assert_non_null(w);
    for (int i = 0; i < 3; i++) {
        struct capture_record r;
        fill_record(&r, i,
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                    "{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{"
                    "\"role\":\"assistant\",\"content\":\"Hello there, how are you?\"},"
                    "\"finish_reason\":\"stop\"}]}");
        r.t_recv_ms = hs_now_ms();
        assert_true(capture_writer_submit(w, &r));
    }
    assert_int_equal(capture_writer_flush(w, 10000), HS_OK);
    capture_writer_free(w); /* stores the quality series one last time */
    assert_int_equal(count_series(db, "holoscope_quality_score_count"), 1);
    assert_true(count_series(db, "holoscope_quality_checks_total") >= 1);
    tsdb_close(db);
    hs_test_rmdir(dir);
    free(dir);
}

static void capture_writer_closes_files_after_max_file_age(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("capture-age");
    struct capture_config c;
    base_config(&c, dir);
    c.max_file_age_ms = 200;
    c.score_quality = false;
    struct hs_err err = {0};
    struct capture_writer *w = capture_writer_new(&c, NULL, &err);
    assert_non_null(w);
    struct capture_record r;
    fill_record(&r, 0, "{}", "{}");
    r.t_recv_ms = hs_now_ms(); /* this hour: only the age can close the file */
    assert_true(capture_writer_submit(w, &r));
    assert_int_equal(capture_writer_flush(w, 10000), HS_OK);
    /* bounded wait for the writer's tick, not a timing assertion */
    struct capture_stats st = {0};
    for (int i = 0; i < 200 && st.files_closed == 0; i++) {
        usleep(50 * 1000);
        capture_writer_get_stats(w, &st);
    }
    assert_int_equal(st.files_closed, 1);
    struct tree t = {0};
    tree_walk(dir, &t);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.parts, 0);
    tree_free(&t);
    capture_writer_free(w);
    hs_test_rmdir(dir);
    free(dir);
}

static void capture_record_parse_and_format_fail_cleanly_when_allocations_fail(void **state)
{
    (void)state;
    size_t len = 0;
    struct hs_err err = {0};
    char *text = hs_read_file(fixture_path(), 0, &len, &err);
    assert_non_null(text);
    const char *nl = memchr(text, '\n', len);
    size_t n = (size_t)(nl - text);
    for (long k = 0;; k++) {
        struct hs_arena a;
        hs_arena_init(&a, 256, 0);
        struct capture_record r;
        struct hs_buf out;
        hs_buf_init(&out, 0);
        hs_alloc_fail_after(k);
        int rc = capture_record_parse(text, n, &a, &r, &err);
        if (rc == HS_OK)
            rc = capture_record_format(&r, true, &out);
        hs_alloc_fail_after(-1);
        hs_buf_cleanup(&out);
        hs_arena_cleanup(&a);
        if (rc == HS_OK)
            break;
        assert_int_equal(rc, HS_ENOMEM);
    }
    hs_free(text);
}

static void capture_writer_new_rejects_a_missing_dir(void **state)
{
    (void)state;
    struct capture_config c;
    capture_config_defaults(&c);
    struct hs_err err = {0};
    assert_null(capture_writer_new(&c, NULL, &err));
    assert_int_equal(err.code, HS_EINVAL);
    c.dir = "/proc/holoscope-cannot-create-this";
    assert_null(capture_writer_new(&c, NULL, &err));
    assert_int_equal(err.code, HS_EIO);
}

static void capture_query_of_a_missing_dir_is_empty(void **state)
{
    (void)state;
    struct hs_buf q;
    hs_buf_init(&q, 0);
    struct hs_err err = {0};
    struct capture_query cq = {.start_ms = INT64_MIN, .end_ms = INT64_MAX};
    assert_int_equal(capture_query("/nonexistent/holoscope/captures", &cq, &q, &err), HS_OK);
    assert_string_equal(q.p, "[]");
    hs_buf_cleanup(&q);
}

static void capture_path_component_keeps_only_safe_characters(void **state)
{
    (void)state;
    char out[16];
    capture_path_component("meta-llama/Llama 3.1", out, sizeof(out));
    assert_string_equal(out, "meta-llama_Llam");
    capture_path_component("..", out, sizeof(out));
    assert_string_equal(out, "_");
    capture_path_component("", out, sizeof(out));
    assert_string_equal(out, "_");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(capture_record_round_trips_every_fixture_line_byte_for_byte),
        cmocka_unit_test(capture_record_keeps_the_extension_block_verbatim),
        cmocka_unit_test(capture_record_parse_reports_malformed_lines),
        cmocka_unit_test(capture_record_format_escapes_minimally_and_base64s_invalid_utf8),
        cmocka_unit_test(capture_should_sample_is_deterministic_and_near_the_percentage),
        cmocka_unit_test(capture_config_parse_reads_every_key),
        cmocka_unit_test(capture_config_parse_names_the_position_of_bad_values),
        cmocka_unit_test(capture_writer_never_writes_planted_pii_to_disk),
        cmocka_unit_test(capture_assemble_sse_builds_the_non_streaming_answer),
        cmocka_unit_test(capture_writer_redacts_pii_split_across_stream_events_when_assembled),
        cmocka_unit_test(capture_writer_rotates_by_size_and_renames_closed_files),
        cmocka_unit_test(capture_writer_removes_the_oldest_files_beyond_the_disk_budget),
        cmocka_unit_test(capture_writer_drops_and_counts_what_it_cannot_queue),
        cmocka_unit_test(capture_writer_adds_quality_scores_and_measurements),
        cmocka_unit_test(capture_writer_appends_quality_series_to_the_store),
        cmocka_unit_test(capture_writer_closes_files_after_max_file_age),
        cmocka_unit_test(capture_record_parse_and_format_fail_cleanly_when_allocations_fail),
        cmocka_unit_test(capture_writer_new_rejects_a_missing_dir),
        cmocka_unit_test(capture_query_of_a_missing_dir_is_empty),
        cmocka_unit_test(capture_path_component_keeps_only_safe_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
