/*
 * fuzz_measure.c - libFuzzer harness for the per-request measurement and
 * the request-side JSON helpers.  The input's hash picks the API, the
 * status, the content type, usage injection and the read sizes; the input
 * is the upstream body.  Invariants: no crash or leak; without injection
 * the forwarded bytes equal the input; with it they are never more than
 * the input; the result is settled with a valid outcome; a body that
 * include_usage injection accepts parses afterwards with include_usage on.
 */
#include "gateway/measure.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const char *s, size_t size)
{
    struct gw_request_info info;
    struct hs_err err = {0};
    int rc = gw_request_parse(s, size, &info, &err);
    if (rc != HS_OK && err.msg[0] == '\0')
        abort();
    struct hs_buf out;
    hs_buf_init(&out, 0);
    if (gw_request_inject_usage(s, size, &out, &err) == HS_OK) {
        /* parse may refuse a body for its model; only valid ones must read back */
        if (rc == HS_OK &&
            (gw_request_parse(out.p, out.len, &info, &err) != HS_OK || !info.include_usage))
            abort();
    } else if (rc == HS_OK) {
        abort(); /* parse accepted what injection refused */
    }
    hs_buf_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    const char *s = (const char *)data;
    uint64_t seed = hs_hash64(data, size, 11);
    enum gw_api api = (enum gw_api)(seed % 8);
    bool inject = (seed >> 3) & 1;
    static const int statuses[] = {200, 200, 200, 400, 500, 0};
    int status = statuses[(seed >> 4) % 6];
    const char *ct = (seed >> 8) & 3 ? "text/event-stream" : "application/json";
    enum gw_end cause = (enum gw_end)((seed >> 10) % 6);
    struct gw_measure *m = gw_measure_new(api, true, inject, 1000, (seed >> 13) & 1 ? 64 : 0);
    if (m == NULL)
        abort();
    gw_measure_set_n(m, 1 + (int)((seed >> 14) % 3));
    if (status)
        gw_measure_response_start(m, status, ct, 1001);
    struct hs_buf fwd;
    hs_buf_init(&fwd, 0);
    uint64_t r = seed | 1;
    size_t i = 0;
    int64_t now = 1002;
    while (i < size) {
        size_t n = 1 + (size_t)(r % 97);
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        n = n > size - i ? size - i : n;
        if (gw_measure_feed(m, s + i, n, now++, &fwd, NULL) != HS_OK)
            abort();
        i += n;
    }
    gw_measure_end(m, cause, now, &fwd);
    const struct gw_measure_result *res = gw_measure_result(m);
    if (!inject && (fwd.len != size || (size && memcmp(fwd.p, s, size) != 0)))
        abort();
    if (fwd.len > size || res->outcome >= GW_OUTCOME_COUNT || !res->ended)
        abort();
    for (size_t c = 0; c < res->n_choices; c++)
        if (res->choices[c].text && strlen(res->choices[c].text) != res->choices[c].text_len)
            if (memchr(res->choices[c].text, 0, res->choices[c].text_len) == NULL)
                abort();
    gw_measure_free(m);
    hs_buf_cleanup(&fwd);
    check_request(s, size);
    return 0;
}
