/*
 * test_parse_speed.c - parse throughput on the exposition fixtures
 * (the .prom files of shared/fixtures/exposition) and the large textparse corpora.
 * Each file is parsed again and again (at least 20 MB in all, fewer under
 * sanitizers) and the test prints MB/s and ns per sample, in thread CPU time.  The figures are
 * information only: the test asserts that every parse succeeds with the
 * same sample count, never a timing.  Meaningful numbers come from a
 * Release build without sanitizers (see the parser report).
 */
#include "hs_test.h"

#include "scrape/scrape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HS_SANITIZED
#define TARGET_BYTES (2u << 20)
#else
#define TARGET_BYTES (20u << 20)
#endif

/* CPU time of this thread: the machine may be shared, and the goal is
 * stated in CPU seconds per sample. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t parse_once(const char *buf, size_t len, int format)
{
    struct scrape_parser *p = hs_malloc(sizeof(*p));
    assert_non_null(p);
    struct scrape_entry e;
    struct hs_err err;
    size_t samples = 0;
    int rc;
    scrape_parser_init(p, buf, len, format);
    while ((rc = scrape_parser_next(p, &e, &err)) > 0)
        samples += e.kind == SCRAPE_ENTRY_SAMPLE;
    if (rc != 0)
        fail_msg("%s", err.msg);
    scrape_parser_cleanup(p);
    hs_free(p);
    return samples;
}

struct total {
    double bytes, samples, ns;
};

static void bench_file(const char *dir, const char *name, int format, struct total *t)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct hs_err err = {0};
    size_t len;
    char *buf = hs_read_file(path, 0, &len, &err);
    if (buf == NULL)
        fail_msg("%s: %s", path, err.msg);
    size_t per = parse_once(buf, len, format);
    size_t reps = TARGET_BYTES / len + 1;
    int64_t t0 = cpu_ns();
    for (size_t i = 0; i < reps; i++)
        assert_int_equal(parse_once(buf, len, format), per);
    double ns = (double)(cpu_ns() - t0);
    double bytes = (double)len * (double)reps, samples = (double)per * (double)reps;
    printf("%-40s %8zu B %6zu samples  %8.1f MB/s  %6.1f ns/sample\n", name, len, per,
           bytes / (ns / 1e9) / 1e6, ns / samples);
    t->bytes += bytes;
    t->samples += samples;
    t->ns += ns;
    hs_free(buf);
}

static void parser_throughput_is_printed_for_every_fixture(void **state)
{
    (void)state;
    const char *shared = getenv("HS_SHARED_DIR");
    if (shared == NULL || *shared == '\0')
        shared = "../../../shared";
    char fx[1024], tp[1024];
    snprintf(fx, sizeof(fx), "%s/fixtures/exposition", shared);
    snprintf(tp, sizeof(tp), "%s/conformance/textformat/prometheus-textparse", shared);
    const char *files[] = {"vllm.prom",     "sglang.prom", "sglang-current.prom", "tgi.prom",
                           "llamacpp.prom", "triton.prom", "dcgm.prom",           "node.prom"};
    struct total t = {0, 0, 0};
    for (size_t i = 0; i < HS_ARRAY_LEN(files); i++)
        bench_file(fx, files[i], SCRAPE_FORMAT_TEXT, &t);
    printf("%-40s %8.1f MB/s  %6.1f ns/sample  (%.0f samples)\n", "fixtures, all",
           t.bytes / (t.ns / 1e9) / 1e6, t.ns / t.samples, t.samples);
    struct total u = {0, 0, 0};
    bench_file(tp, "alltypes.237mfs.prom.txt", SCRAPE_FORMAT_TEXT, &u);
    bench_file(tp, "alltypes.5mfs.om.txt", SCRAPE_FORMAT_OPENMETRICS, &u);
    bench_file(tp, "1histogram.om.txt", SCRAPE_FORMAT_OPENMETRICS, &u);
    bench_file(tp, "1histogram.om.txt", SCRAPE_FORMAT_OPENMETRICS | SCRAPE_PARSE_STRICT, &u);
    fflush(stdout);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parser_throughput_is_printed_for_every_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
