/*
 * fuzz_scorers.c - libFuzzer harness for the quality scorers and the body
 * extractors.
 *
 * The first byte picks the mode; the rest is split at the first NUL into a
 * "prompt" and an "output".  Every scorer runs on the bytes as given (no
 * NUL terminator is added, so reads past the end are caught), the output
 * is read as a response body (JSON and SSE) and the prompt as a request
 * body, and a tracker observes the result.  Nothing may crash, leak or
 * return a score outside [0, 1].
 */
#include "core/core.h"
#include "quality/quality.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_range(const struct qual_scores *s)
{
    if (!(s->composite >= 0.0 && s->composite <= 1.0))
        __builtin_trap();
    for (int k = 0; k < QUAL_CHECK_COUNT; k++)
        if (!(s->checks[k].score >= 0.0 && s->checks[k].score <= 1.0))
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1;
    /* Exact-size copies so that any over-read is an ASan error. */
    uint8_t *all = malloc(n ? n : 1);
    if (all == NULL)
        return 0;
    memcpy(all, data + 1, n);
    const uint8_t *nul = memchr(all, 0, n);
    size_t plen = nul ? (size_t)(nul - all) : 0;
    const char *prompt = (const char *)all;
    const char *out = nul ? (const char *)nul + 1 : (const char *)all;
    size_t olen = nul ? n - plen - 1 : n;

    struct qual_config c;
    qual_config_defaults(&c);
    c.reference_size = 4;
    c.recent_size = 4;
    c.min_recent = 2;
    c.min_median = 1;
    struct qual_tracker *t = qual_tracker_new(&c, NULL);

    struct qual_input in;
    qual_input_init(&in);
    in.model = "fuzz";
    in.prompt = nul ? prompt : NULL;
    in.prompt_len = plen;
    in.output = out;
    in.output_len = olen;
    in.wants_json = mode & 1;
    in.finish_reason = (mode & 2) ? "length" : "stop";
    in.output_tokens = (mode & 4) ? (int64_t)olen : -1;
    struct qual_scores s;
    qual_score_all(&c, &in, (double)(mode >> 3), &s);
    check_range(&s);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    HS_IGNORE_RESULT(qual_scores_json(&s, &b));
    hs_buf_cleanup(&b);
    if (t != NULL) {
        HS_IGNORE_RESULT(qual_tracker_observe(t, &in, &s, NULL));
        check_range(&s);
    }

    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct qual_input x;
    qual_input_init(&x);
    if (nul)
        HS_IGNORE_RESULT(qual_extract_request(prompt, plen, &a, &x, NULL));
    HS_IGNORE_RESULT(qual_extract_response(out, olen, (mode & 8) != 0, &a, &x, NULL));
    qual_score_all(&c, &x, 10, &s);
    check_range(&s);
    if (t != NULL) {
        HS_IGNORE_RESULT(qual_tracker_observe(t, &x, &s, NULL));
        hs_buf_init(&b, 0);
        HS_IGNORE_RESULT(qual_tracker_metrics(t, &b));
        hs_buf_cleanup(&b);
        qual_tracker_free(t);
    }
    hs_arena_cleanup(&a);
    free(all);
    return 0;
}
