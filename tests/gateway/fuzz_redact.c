/*
 * fuzz_redact.c - libFuzzer harness for src/gateway/redact.c: arbitrary
 * bytes through redact_text, redact_json and redact_sse, the stream
 * assembler and the capture line parser.  Invariants: no crash; JSON that
 * jansson accepts stays JSON after redaction; an assembled stream is JSON;
 * a parsed capture line formats.
 */
#include "gateway/capture.h"
#include "gateway/redact.h"

#include <jansson.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct redactor *redactor(void)
{
    static struct redactor *r;
    if (r == NULL) {
        struct redact_config c;
        redact_config_defaults(&c);
        static const struct redact_rule rules[] = {{"WORD", "(?i)s[e3]cr[e3]t\\w*"}};
        c.custom = rules;
        c.ncustom = 1;
        r = redactor_new(&c, NULL);
        if (r == NULL)
            abort();
    }
    return r;
}

static void check_json(const char *in, size_t len, const struct hs_buf *out)
{
    json_error_t je;
    json_t *a = json_loadb(in, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (a == NULL)
        return;
    json_decref(a);
    json_t *b =
        json_loadb(out->p != NULL ? out->p : "", out->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (b == NULL)
        abort(); /* redaction broke valid JSON */
    json_decref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct redactor *r = redactor();
    struct hs_buf out;
    hs_buf_init(&out, 0);
    struct hs_err err;
    bool is_json = false;
    HS_IGNORE_RESULT(redact_text(r, in, size, &out, NULL, &err));
    hs_buf_reset(&out);
    if (redact_json(r, in, size, &out, NULL, &is_json, &err) == HS_OK && is_json)
        check_json(in, size, &out);
    hs_buf_reset(&out);
    HS_IGNORE_RESULT(redact_sse(r, in, size, &out, NULL, &err));
    hs_buf_reset(&out);
    if (capture_assemble_sse(in, size, &out, &err) == HS_OK) {
        json_error_t je;
        json_t *j = json_loadb(out.p, out.len, 0, &je);
        if (j == NULL)
            abort(); /* an assembled answer is always JSON */
        json_decref(j);
    }
    hs_buf_cleanup(&out);
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct capture_record rec;
    if (capture_record_parse(in, size, &a, &rec, &err) == HS_OK) {
        struct hs_buf line;
        hs_buf_init(&line, 0);
        if (rec.event_id != NULL && capture_record_format(&rec, true, &line) != HS_OK)
            abort();
        hs_buf_cleanup(&line);
    }
    hs_arena_cleanup(&a);
    return 0;
}
