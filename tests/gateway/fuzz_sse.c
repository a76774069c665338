/*
 * fuzz_sse.c - libFuzzer harness for the text/event-stream parser.  Every
 * input is parsed whole and in pieces whose sizes come from the input's
 * hash, under a small event ceiling.  Invariants: no crash or leak; when
 * neither run fails, both give exactly the same events; a failure is
 * HS_ETOOBIG with a message.
 */
#include "gateway/sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int collect(void *arg, const struct gw_sse_event *ev)
{
    struct hs_buf *b = arg;
    if (ev->type[ev->type_len] != '\0' || ev->data[ev->data_len] != '\0')
        abort();
    if (hs_buf_append(b, ev->type, ev->type_len) != HS_OK || hs_buf_putc(b, 0) != HS_OK ||
        hs_buf_append(b, ev->data, ev->data_len) != HS_OK || hs_buf_putc(b, 0) != HS_OK)
        abort();
    return 0;
}

static int run(const char *s, size_t size, uint64_t seed, size_t max, struct hs_buf *out)
{
    struct gw_sse p;
    struct hs_err err = {0};
    gw_sse_init(&p, max);
    int rc = HS_OK;
    size_t i = 0;
    while (i < size && rc == HS_OK) {
        size_t n = seed ? 1 + (size_t)(seed % 17) : size - i;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        n = n > size - i ? size - i : n;
        rc = gw_sse_feed(&p, s + i, n, collect, out, &err);
        i += n;
    }
    if (rc == HS_OK)
        rc = gw_sse_finish(&p, collect, out, &err);
    if (rc != HS_OK && (rc != HS_ETOOBIG || err.msg[0] == '\0'))
        abort();
    if (p.line.len + p.type.len + p.data.len > max)
        abort();
    gw_sse_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    const char *s = (const char *)data;
    uint64_t seed = hs_hash64(data, size, 7) | 1;
    size_t max = 64 + (size_t)(seed >> 40) % 4096;
    struct hs_buf a, b;
    hs_buf_init(&a, 0);
    hs_buf_init(&b, 0);
    int ra = run(s, size, 0, max, &a);
    int rb = run(s, size, seed, max, &b);
    if (ra == HS_OK && rb == HS_OK &&
        (a.len != b.len || (a.len > 0 && memcmp(a.p, b.p, a.len) != 0)))
        abort();
    hs_buf_cleanup(&a);
    hs_buf_cleanup(&b);
    return 0;
}
