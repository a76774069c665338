/*
 * fuzz_parse.c - libFuzzer harness for the exposition-format parser.  The
 * first input byte picks the mode (bit 0: OpenMetrics, bit 1: strict); the
 * rest is the exposition.  Every entry is walked and sanity-checked, then the
 * same bytes go through scrape_check_metrics.  Any crash, sanitizer report
 * or broken invariant is a finding.
 */
#include "scrape/scrape.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch(struct hs_str s)
{
    volatile char sink = 0;
    for (size_t i = 0; i < s.len; i++)
        sink ^= s.p[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int format = (data[0] & 1) ? SCRAPE_FORMAT_OPENMETRICS : SCRAPE_FORMAT_TEXT;
    if (data[0] & 2)
        format |= SCRAPE_PARSE_STRICT;
    /* A private copy, so reads past the end are caught. */
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, len);

    struct scrape_parser *p = malloc(sizeof(*p));
    if (p == NULL) {
        free(buf);
        return 0;
    }
    struct scrape_entry e;
    struct hs_err err;
    int rc;
    bool saw_eof = false;
    scrape_parser_init(p, buf, len, format);
    while ((rc = scrape_parser_next(p, &e, &err)) > 0) {
        if (saw_eof)
            abort(); /* nothing may follow "# EOF" */
        saw_eof = e.kind == SCRAPE_ENTRY_EOF;
        touch(e.name);
        if (e.kind == SCRAPE_ENTRY_SAMPLE) {
            if (e.name.len == 0 || e.nlabels >= SCRAPE_MAX_LABELS)
                abort();
            touch(e.family);
            for (size_t i = 0; i < e.nlabels; i++) {
                touch(e.labels[i].name);
                touch(e.labels[i].value);
            }
            for (size_t i = 0; e.has_exemplar && i < e.exemplar.nlabels; i++)
                touch(e.exemplar.labels[i].value);
        } else {
            touch(e.text);
        }
    }
    if (rc < 0 && (err.line <= 0 || err.msg[0] != 'l'))
        abort(); /* every failure names its line */
    if ((format & 0xff) == SCRAPE_FORMAT_OPENMETRICS && rc == 0 && !saw_eof)
        abort();
    scrape_parser_cleanup(p);
    free(p);

    struct hs_buf report;
    hs_buf_init(&report, 1 << 20);
    rc = scrape_check_metrics(buf, len, format & 0xff, &report, &err);
    (void)rc;
    hs_buf_cleanup(&report);
    free(buf);
    return 0;
}
