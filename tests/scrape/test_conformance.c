/*
 * test_conformance.c - runs the exposition parser over the conformance
 * suites in the shared folder and checks each verdict:
 *   conformance/openmetrics/parsers/<case>/{metrics,test.json}  (OpenMetrics 1.0,
 *     "shouldParse" says whether the whole input must be accepted)
 *   conformance/textformat/...  (text 0.0.4 corpora of expfmt, textparse and
 *     promtool; verdicts from that folder's SOURCE.md)
 * Prints one line per case and "N passed, N failed"; any failure fails.
 * The shared folder is found through HS_SHARED_DIR, HS_SOURCE_DIR/../shared
 * or ../../../shared relative to this test's directory.
 */
#include "hs_test.h"

#include "scrape/scrape.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tally {
    int passed, failed;
};

static char *shared_dir(void)
{
    const char *d = getenv("HS_SHARED_DIR");
    char buf[4096];
    if (d != NULL && *d != '\0')
        return hs_strdup(d);
    d = getenv("HS_SOURCE_DIR");
    if (d != NULL && *d != '\0') {
        snprintf(buf, sizeof(buf), "%s/../shared", d);
        return hs_strdup(buf);
    }
    return hs_strdup("../../../shared");
}

/* Parses all of buf; HS_OK or the error. */
static int parse_all(const char *buf, size_t len, int format, struct hs_err *err)
{
    struct scrape_parser *p = hs_malloc(sizeof(*p));
    if (p == NULL)
        return HS_ENOMEM;
    struct scrape_entry e;
    int rc;
    scrape_parser_init(p, buf, len, format);
    while ((rc = scrape_parser_next(p, &e, err)) > 0)
        ;
    scrape_parser_cleanup(p);
    hs_free(p);
    return rc;
}

static void verdict(struct tally *t, const char *name, bool want_ok, int rc,
                    const struct hs_err *err)
{
    bool ok = (rc == HS_OK) == want_ok;
    if (ok)
        t->passed++;
    else
        t->failed++;
    printf("%s %s (expected %s, got %s%s%s)\n", ok ? "PASS" : "FAIL", name,
           want_ok ? "valid" : "invalid", rc == HS_OK ? "valid" : "invalid",
           rc == HS_OK ? "" : ": ", rc == HS_OK ? "" : err->msg);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entry names of a directory (no dot files); caller frees. */
static char **list_dir(const char *path, size_t *n)
{
    DIR *d = opendir(path);
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    if (d == NULL)
        return NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            v = hs_reallocarray(v, cap, sizeof(*v));
            assert_non_null(v);
        }
        v[(*n)++] = hs_strdup(de->d_name);
    }
    closedir(d);
    qsort(v, *n, sizeof(*v), name_cmp);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hs_free(v[i]);
    hs_free(v);
}

static void run_file(struct tally *t, const char *dir, const char *rel, int format, bool want_ok)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    struct hs_err err = {0};
    size_t len;
    char *buf = hs_read_file(path, 0, &len, &err);
    if (buf == NULL) {
        t->failed++;
        printf("FAIL %s (cannot read: %s)\n", rel, err.msg);
        return;
    }
    int rc = parse_all(buf, len, format, &err);
    verdict(t, rel, want_ok, rc, &err);
    hs_free(buf);
}

static void openmetrics_suite(struct tally *t, const char *shared)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/conformance/openmetrics/parsers", shared);
    size_t n;
    char **cases = list_dir(dir, &n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        char path[4600];
        struct hs_err err = {0};
        size_t len;
        snprintf(path, sizeof(path), "%s/%s/test.json", dir, cases[i]);
        char *json = hs_read_file(path, 1 << 20, &len, &err);
        assert_non_null(json);
        const char *sp = strstr(json, "\"shouldParse\"");
        assert_non_null(sp);
        sp = strchr(sp, ':');
        assert_non_null(sp);
        sp++;
        while (*sp == ' ')
            sp++;
        bool want_ok = strncmp(sp, "true", 4) == 0;
        hs_free(json);
        char rel[4200];
        snprintf(rel, sizeof(rel), "%s/metrics", cases[i]);
        run_file(t, dir, rel, SCRAPE_FORMAT_OPENMETRICS | SCRAPE_PARSE_STRICT, want_ok);
    }
    free_list(cases, n);
}

static void textformat_suite(struct tally *t, const char *shared)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/conformance/textformat", shared);
    run_file(t, dir, "common-expfmt/testdata/text", SCRAPE_FORMAT_TEXT, true);
    run_file(t, dir, "prometheus-promtool/metrics-test.prom", SCRAPE_FORMAT_TEXT, true);
    run_file(t, dir, "prometheus-textparse/alltypes.237mfs.prom.txt", SCRAPE_FORMAT_TEXT, true);
    run_file(t, dir, "prometheus-textparse/alltypes.237mfs.nometa.prom.txt", SCRAPE_FORMAT_TEXT,
             true);
    run_file(t, dir, "prometheus-textparse/alltypes.5mfs.om.txt", SCRAPE_FORMAT_OPENMETRICS, true);
    run_file(t, dir, "prometheus-textparse/1histogram.om.txt", SCRAPE_FORMAT_OPENMETRICS, true);

    /* The gzip body must inflate to exactly the plain file, then parse. */
    char path[4200];
    struct hs_err err = {0};
    size_t zlen, plen, glen;
    snprintf(path, sizeof(path), "%s/common-expfmt/testdata/text.gz", dir);
    char *z = hs_read_file(path, 0, &zlen, &err);
    snprintf(path, sizeof(path), "%s/common-expfmt/testdata/text", dir);
    char *plain = hs_read_file(path, 0, &plen, &err);
    assert_non_null(z);
    assert_non_null(plain);
    struct hs_buf gz;
    hs_buf_init(&gz, 0);
    int rc = scrape_body_gunzip(z, zlen, 16u << 20, &gz, &err);
    assert_int_equal(rc, HS_OK);
    char *g = hs_buf_detach(&gz, &glen);
    rc = parse_all(g, glen, SCRAPE_FORMAT_TEXT, &err);
    if (glen != plen || memcmp(g, plain, plen) != 0) {
        rc = HS_ECORRUPT;
        snprintf(err.msg, sizeof(err.msg), "inflated bytes differ from testdata/text");
    }
    verdict(t, "common-expfmt/testdata/text.gz", true, rc, &err);
    hs_free(g);
    hs_free(z);
    hs_free(plain);

    snprintf(path, sizeof(path), "%s/common-expfmt/fuzz-corpus", dir);
    size_t n;
    char **files = list_dir(path, &n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        char rel[4200];
        snprintf(rel, sizeof(rel), "common-expfmt/fuzz-corpus/%s", files[i]);
        bool want_ok = strstr(files[i], "error") == NULL;
        run_file(t, dir, rel, SCRAPE_FORMAT_TEXT, want_ok);
    }
    free_list(files, n);
}

static void conformance_suites_give_every_expected_verdict(void **state)
{
    (void)state;
    char *shared = shared_dir();
    struct tally t = {0, 0};
    openmetrics_suite(&t, shared);
    textformat_suite(&t, shared);
    printf("%d passed, %d failed\n", t.passed, t.failed);
    fflush(stdout);
    hs_free(shared);
    assert_int_equal(t.failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conformance_suites_give_every_expected_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
