/*
 * fuzz_response.c - libFuzzer harness for the client's response parser.
 *
 * The first input byte picks the feed size (1..64 bytes per call) and, by
 * its top bit, whether the response answers a HEAD; the rest is a stream of
 * responses read on one keep-alive connection.  After each DONE the parser
 * is reset and fed the remainder; at the end of input the peer "closes".
 * Checks: consumed counts never pass what was offered, body spans lie
 * inside the input, header strings are NUL-terminated at their recorded
 * length, status codes are 200..999 at HEADERS, and errors carry a message.
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
    bool is_head = (data[0] & 0x80) != 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1, off = 0;
    struct http__rparser p;
    http__rparser_init(&p, 1024);
    http__rparser_reset(&p, is_head);
    int responses = 0, rc = HS_EAGAIN;
    while (responses < 64) {
        size_t end = off + step < len ? off + step : len;
        size_t used, blen;
        const char *body;
        struct hs_err err;
        err.msg[0] = '\0';
        rc = http__rparser_feed(&p, in + off, end - off, &used, &body, &blen, &err);
        check(used <= end - off);
        if (rc == HTTP__EV_BODY)
            check(body >= in + off && body + blen <= in + off + used && !is_head);
        off += used;
        if (rc == HTTP__EV_HEADERS) {
            check(p.status >= 200 && p.status <= 999);
            for (size_t i = 0; i < p.nhdrs; i++)
                check(strlen(http__rparser_hdr_name(&p, i)) == p.hdrs[i].name_len);
        } else if (rc == HTTP__EV_DONE) {
            http__rparser_reset(&p, is_head);
            responses++;
        } else if (rc == HS_EAGAIN) {
            check(off == end);
            if (off == len)
                break;
        } else if (rc != HTTP__EV_BODY) {
            check(rc < 0 && err.msg[0] != '\0');
            break;
        }
    }
    if (rc == HS_EAGAIN) {
        struct hs_err err;
        int e = http__rparser_eof(&p, &err);
        check(e == HTTP__EV_DONE || e == HS_ECLOSED);
    }
    http__rparser_cleanup(&p);
    return 0;
}
