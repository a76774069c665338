/*
 * fuzz_request.c - libFuzzer harness for the incremental request parser.
 *
 * The first input byte picks the feed size (1..64 bytes per call), the rest
 * is a stream of pipelined requests.  After every DONE the parser is reset
 * and fed the remainder, as a keep-alive connection does.  Checks: consumed
 * counts never pass what was offered, body spans lie inside the input, a
 * finished request has NUL-terminated header strings, and errors carry an
 * answer status.
 */
#include "http/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)(data[0] % 64) + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1, off = 0;
    struct http__parser p;
    http__parser_init(&p, 1024, 4096);
    int requests = 0;
    while (off < len && requests < 64) {
        size_t end = off + step < len ? off + step : len;
        size_t used, blen;
        const char *body;
        struct hs_err err;
        int rc = http__parser_feed(&p, in + off, end - off, &used, &body, &blen, &err);
        check(used <= end - off);
        if (rc == HTTP__EV_BODY)
            check(body >= in + off && body + blen <= in + off + used);
        off += used;
        if (rc == HTTP__EV_HEADERS) {
            for (size_t i = 0; i < p.nhdrs; i++)
                check(strlen(http__parser_hdr_name(&p, i)) == p.hdrs[i].name_len);
            check(p.body_bytes == 0);
        } else if (rc == HTTP__EV_DONE) {
            check(p.body_bytes <= 4096);
            http__parser_reset(&p);
            requests++;
        } else if (rc == HS_EAGAIN) {
            check(off == end);
        } else if (rc != HTTP__EV_BODY) {
            check(p.error_status >= 400 && p.error_status <= 505);
            break;
        }
    }
    http__parser_cleanup(&p);
    return 0;
}
