/*
 * test_detect.c - engine detection on every exposition fixture of
 * shared/fixtures/exposition (each is classified to exactly the backend in
 * its name), the older vLLM generation, version hints, suspected prefixes
 * and pinning.  The fixtures are read with the module's own parser.
 */
#include "scrape/scrape.h"
#include "scrape/scrape_config.h"

#include "hs_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feeds the families of one exposition file into 'd' as a scraper would:
 * names from # TYPE lines, sample names only for families without one. */
static void detect_text(struct scrape_detect *d, const char *text, size_t len)
{
    struct scrape_parser p;
    struct scrape_entry e;
    struct hs_err err = {0};
    scrape_parser_init(&p, text, len, SCRAPE_FORMAT_TEXT);
    int rc;
    while ((rc = scrape_parser_next(&p, &e, &err)) == 1) {
        if (e.kind == SCRAPE_ENTRY_TYPE)
            assert_int_equal(scrape_detect_add(d, e.name.p, e.name.len, false), HS_OK);
        else if (e.kind == SCRAPE_ENTRY_SAMPLE && e.mtype == SCRAPE_MTYPE_UNKNOWN)
            assert_int_equal(scrape_detect_add(d, e.name.p, e.name.len, true), HS_OK);
    }
    if (rc != 0)
        fail_msg("parse: %s", err.msg);
    scrape_parser_cleanup(&p);
    scrape_detect_finish(d);
}

static void detect_file(struct scrape_detect *d, const char *path)
{
    struct hs_err err = {0};
    size_t len;
    char *text = hs_read_file(path, 0, &len, &err);
    if (text == NULL)
        fail_msg("%s", err.msg);
    detect_text(d, text, len);
    hs_free(text);
}

static char *fixture(const char *name)
{
    static char path[4096];
    const char *shared = getenv("HS_SHARED_DIR");
    snprintf(path, sizeof(path), "%s/fixtures/exposition/%s", shared ? shared : "../../../shared",
             name);
    return path;
}

static void expect_only(const char *path, int backend)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    detect_file(&d, path);
    if (d.detected != (1u << backend))
        fail_msg("%s: detected mask %#x, want only %s", path, d.detected,
                 scrape_backend_name(backend));
    assert_int_equal(d.primary, backend);
    assert_int_equal(d.suspected, 0);
    scrape_detect_cleanup(&d);
}

static void every_fixture_is_classified_to_exactly_its_backend(void **state)
{
    expect_only(fixture("vllm.prom"), SCRAPE_BACKEND_VLLM);
    expect_only(fixture("sglang.prom"), SCRAPE_BACKEND_SGLANG);
    expect_only(fixture("sglang-current.prom"), SCRAPE_BACKEND_SGLANG);
    expect_only(fixture("tgi.prom"), SCRAPE_BACKEND_TGI);
    expect_only(fixture("llamacpp.prom"), SCRAPE_BACKEND_LLAMACPP);
    expect_only(fixture("triton.prom"), SCRAPE_BACKEND_TRITON);
    expect_only(fixture("dcgm.prom"), SCRAPE_BACKEND_DCGM);
    expect_only(fixture("node.prom"), SCRAPE_BACKEND_NODE);
    expect_only("testdata/vllm-v0.prom", SCRAPE_BACKEND_VLLM);
}

static void version_hints_tell_engine_generations_apart(void **state)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    detect_file(&d, fixture("vllm.prom"));
    assert_true(d.hints & SCRAPE_HINT_VLLM_V1_CURRENT);
    assert_true(d.hints & SCRAPE_HINT_VLLM_ITL);
    assert_false(d.hints & SCRAPE_HINT_VLLM_LEGACY_KV);
    scrape_detect_reset(&d);
    detect_file(&d, "testdata/vllm-v0.prom");
    assert_false(d.hints & SCRAPE_HINT_VLLM_V1_CURRENT);
    assert_true(d.hints & SCRAPE_HINT_VLLM_LEGACY_KV);
    assert_true(d.hints & SCRAPE_HINT_VLLM_V0);
    scrape_detect_reset(&d);
    detect_file(&d, fixture("sglang.prom"));
    assert_true(d.hints & SCRAPE_HINT_SGLANG_OLDER);
    assert_false(d.hints & SCRAPE_HINT_SGLANG_CURRENT);
    scrape_detect_reset(&d);
    detect_file(&d, fixture("sglang-current.prom"));
    assert_true(d.hints & SCRAPE_HINT_SGLANG_CURRENT);
    scrape_detect_reset(&d);
    detect_file(&d, fixture("triton.prom"));
    assert_true(d.hints & SCRAPE_HINT_TRTLLM_BACKEND);
    scrape_detect_cleanup(&d);
}

static void one_prefixed_family_is_only_suspected(void **state)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    const char *text = "# TYPE vllm:something_new gauge\nvllm:something_new 1\n"
                       "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3\n";
    detect_text(&d, text, strlen(text));
    assert_int_equal(d.detected, 0);
    assert_int_equal(d.suspected, 1u << SCRAPE_BACKEND_VLLM);
    assert_int_equal(d.primary, SCRAPE_BACKEND_NONE);
    scrape_detect_cleanup(&d);
}

static void two_prefixed_families_or_one_hallmark_detect_a_backend(void **state)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    const char *two = "tgi_a 1\ntgi_b 2\n";
    detect_text(&d, two, strlen(two));
    assert_int_equal(d.detected, 1u << SCRAPE_BACKEND_TGI);
    scrape_detect_reset(&d);
    /* untyped samples: suffixes are stripped, so one histogram is one family */
    const char *hist = "llamacpp:x_bucket{le=\"1\"} 1\nllamacpp:x_sum 1\nllamacpp:x_count 1\n";
    detect_text(&d, hist, strlen(hist));
    assert_int_equal(d.detected, 0);
    assert_int_equal(d.suspected, 1u << SCRAPE_BACKEND_LLAMACPP);
    scrape_detect_reset(&d);
    const char *hall = "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 5\n";
    detect_text(&d, hall, strlen(hall));
    assert_int_equal(d.detected, 1u << SCRAPE_BACKEND_DCGM);
    scrape_detect_cleanup(&d);
}

static void a_target_can_hold_several_backends_with_the_engine_primary(void **state)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    const char *text = "# TYPE node_load1 gauge\nnode_load1 1\n"
                       "# TYPE node_cpu_seconds_total counter\nnode_cpu_seconds_total 1\n"
                       "# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs 2\n";
    detect_text(&d, text, strlen(text));
    assert_int_equal(d.detected, (1u << SCRAPE_BACKEND_NODE) | (1u << SCRAPE_BACKEND_SGLANG));
    assert_int_equal(d.primary, SCRAPE_BACKEND_SGLANG);
    scrape_detect_cleanup(&d);
}

static void text_and_openmetrics_counter_spellings_agree(void **state)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    assert_int_equal(scrape_detect_add(&d, "vllm:prompt_tokens_total", 24, false), HS_OK);
    assert_int_equal(scrape_detect_add(&d, "vllm:prompt_tokens", 18, false), HS_OK);
    assert_int_equal(d.fam_n, 1);
    assert_true(scrape_detect_has_family(&d, "vllm:prompt_tokens"));
    assert_true(scrape_detect_has_family(&d, "vllm:prompt_tokens_total"));
    assert_false(scrape_detect_has_family(&d, "vllm:generation_tokens_total"));
    scrape_detect_cleanup(&d);
}

static void the_family_digest_changes_when_the_family_set_does(void **state)
{
    struct scrape_detect a, b;
    scrape_detect_init(&a);
    scrape_detect_init(&b);
    detect_file(&a, fixture("vllm.prom"));
    detect_file(&b, "testdata/vllm-v0.prom");
    assert_int_not_equal(a.fam_sig, b.fam_sig);
    uint64_t sig = a.fam_sig;
    scrape_detect_reset(&a);
    detect_file(&a, fixture("vllm.prom"));
    assert_int_equal(a.fam_sig, sig);
    scrape_detect_cleanup(&a);
    scrape_detect_cleanup(&b);
}

static void a_pinned_backend_replaces_detection(void **state)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    detect_file(&d, fixture("tgi.prom"));
    scrape_detect_pin(&d, scrape_backend_parse("vllm"));
    assert_int_equal(d.detected, 1u << SCRAPE_BACKEND_VLLM);
    assert_int_equal(d.primary, SCRAPE_BACKEND_VLLM);
    assert_string_equal(scrape_backend_name(d.primary), "vllm");
    assert_int_equal(scrape_backend_parse("ollama"), SCRAPE_BACKEND_NONE);
    scrape_detect_cleanup(&d);
}

static void the_family_set_has_a_ceiling(void **state)
{
    struct scrape_detect d;
    scrape_detect_init(&d);
    char name[32];
    int rc = HS_OK;
    for (int i = 0; i <= SCRAPE_DETECT_MAX_FAMILIES && rc == HS_OK; i++) {
        int n = snprintf(name, sizeof(name), "m%d", i);
        rc = scrape_detect_add(&d, name, (size_t)n, false);
    }
    assert_int_equal(rc, HS_ETOOBIG);
    scrape_detect_cleanup(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_fixture_is_classified_to_exactly_its_backend),
        cmocka_unit_test(version_hints_tell_engine_generations_apart),
        cmocka_unit_test(one_prefixed_family_is_only_suspected),
        cmocka_unit_test(two_prefixed_families_or_one_hallmark_detect_a_backend),
        cmocka_unit_test(a_target_can_hold_several_backends_with_the_engine_primary),
        cmocka_unit_test(text_and_openmetrics_counter_spellings_agree),
        cmocka_unit_test(the_family_digest_changes_when_the_family_set_does),
        cmocka_unit_test(a_pinned_backend_replaces_detection),
        cmocka_unit_test(the_family_set_has_a_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
