/*
 * test_sd_file.c - file-based discovery: JSON and YAML target files, their
 * error messages with file and position, and the mtime-polling refresh
 * (changes applied, broken files keep their previous targets, vanished
 * files are forgotten).
 */
#include "scrape/scrape_config.h"

#include "hs_test.h"
#include "hs_test_util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void parse_file(const char *path, struct hs_arena *a, struct scrape_target_group **g,
                       size_t *n)
{
    struct hs_err err = {0};
    size_t len;
    char *text = hs_read_file(path, 0, &len, &err);
    assert_non_null(text);
    int rc = scrape_sd_file_parse(path, text, len, a, g, n, &err);
    hs_free(text);
    if (rc != HS_OK)
        fail_msg("%s", err.msg);
}

static void a_json_file_gives_groups_with_their_file_path(void **state)
{
    struct hs_arena a;
    hs_arena_init(&a, 1024, 0);
    struct scrape_target_group *g;
    size_t n;
    parse_file("testdata/sd/vllm.json", &a, &g, &n);
    assert_int_equal(n, 2);
    assert_int_equal(g[0].ntargets, 2);
    assert_string_equal(g[0].targets[1], "10.0.0.2:8000");
    assert_int_equal(g[0].labels.n, 3);
    assert_string_equal(hs_labels_get(&g[0].labels, "model"), "meta-llama/Llama-3.1-8B-Instruct");
    assert_string_equal(hs_labels_get(&g[0].labels, "__meta_filepath"), "testdata/sd/vllm.json");
    assert_true(hs_labels_valid(&g[0].labels));
    assert_int_equal(g[1].labels.n, 1);
    assert_string_equal(g[1].source, "testdata/sd/vllm.json");
    hs_arena_cleanup(&a);
}

static void a_yaml_file_gives_the_same_shape(void **state)
{
    struct hs_arena a;
    hs_arena_init(&a, 1024, 0);
    struct scrape_target_group *g;
    size_t n;
    parse_file("testdata/sd/sglang.yml", &a, &g, &n);
    assert_int_equal(n, 2);
    assert_int_equal(g[0].ntargets, 2);
    assert_string_equal(g[1].targets[0], "sglang-2:30000");
    assert_string_equal(hs_labels_get(&g[1].labels, "az"), "eu-2");
    assert_string_equal(hs_labels_get(&g[1].labels, "__meta_filepath"), "testdata/sd/sglang.yml");
    hs_arena_cleanup(&a);
}

static void expect_error(const char *path, const char *text, const char *msg)
{
    struct hs_arena a;
    hs_arena_init(&a, 1024, 0);
    struct scrape_target_group *g;
    size_t n;
    struct hs_err err = {0};
    int rc = scrape_sd_file_parse(path, text, strlen(text), &a, &g, &n, &err);
    assert_int_not_equal(rc, HS_OK);
    assert_string_equal(err.msg, msg);
    hs_arena_cleanup(&a);
}

static void broken_files_are_reported_with_file_and_position(void **state)
{
    expect_error("t.json", "[{\"targets\": [\"a:1\",]}]", "t.json:1:21: unexpected token near ']'");
    expect_error("t.json", "[{\"targets\": [1]}]",
                 "t.json: group 0: targets[0]: expected a non-empty string");
    expect_error("t.json", "[{}, {\"labels\": {\"a-b\": \"x\"}}]",
                 "t.json: group 1: labels: \"a-b\" is not a valid label name");
    expect_error("t.json", "[{\"labels\": {\"a\": 1}}]",
                 "t.json: group 0: labels: value of \"a\" must be a string");
    expect_error("t.json", "[{\"target\": []}]", "t.json: group 0: unknown key \"target\"");
    expect_error("t.json", "{\"targets\": []}", "t.json: expected a list of target groups");
    expect_error("t.json", "[{\"targets\": [\"a\\u0000b\"]}]",
                 "t.json:1:24: NUL character (\\u0000) in a string");
    expect_error("t.json", "[{\"labels\": {\"a\": \"1\", \"a\": \"2\"}}]",
                 "t.json:1:26: duplicate object key near '\"a\"'");
    expect_error("t.yml", "- targets: [a:1]\n  labels:\n    'bad name': x\n",
                 "t.yml:3:5: labels: \"bad name\" is not a valid label name");
    expect_error("t.yml", "- targets: a:1\n", "t.yml:1:12: targets: expected a list of strings");
    expect_error("t.yml", "- targets: [a:1]\n  lables: {}\n",
                 "t.yml:2:3: unknown key \"lables\" in a target group");
    expect_error("t.yml", "targets: [a:1]\n", "t.yml:1:1: expected a list of target groups");
    expect_error("t.yml", "- targets: ['']\n", "t.yml:1:13: targets: empty target");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static size_t total_targets(const struct scrape_sd_file *sd)
{
    size_t n = 0;
    for (size_t i = 0; i < sd->ngroups; i++)
        n += sd->groups[i].ntargets;
    return n;
}

static void refresh_applies_changes_keeps_broken_files_and_forgets_vanished_ones(void **state)
{
    char *dir = hs_test_tmpdir("sdfile");
    assert_non_null(dir);
    char pa[4096], pb[4096], pattern[4096];
    snprintf(pa, sizeof(pa), "%s/a.json", dir);
    snprintf(pb, sizeof(pb), "%s/b.yml", dir);
    snprintf(pattern, sizeof(pattern), "%s/*.json", dir);
    const char *files[] = {pattern, pb};
    struct scrape_file_sd_config cfg = {files, 2, 300000};
    struct scrape_sd_file sd;
    scrape_sd_file_init(&sd);
    bool changed;

    assert_int_equal(scrape_sd_file_refresh(&sd, &cfg, 1, &changed, NULL), HS_OK);
    assert_false(changed);
    assert_int_equal(sd.ngroups, 0);

    write_file(pa, "[{\"targets\": [\"a:1\"]}]");
    write_file(pb, "- targets: [b:1, b:2]\n");
    assert_int_equal(scrape_sd_file_refresh(&sd, &cfg, 1, &changed, NULL), HS_OK);
    assert_true(changed);
    assert_int_equal(sd.nfiles, 2);
    assert_int_equal(total_targets(&sd), 3);

    /* nothing changed: nothing is re-read */
    assert_int_equal(scrape_sd_file_refresh(&sd, &cfg, 1, &changed, NULL), HS_OK);
    assert_false(changed);

    /* a broken edit keeps the previous targets and is counted */
    write_file(pa, "[{\"targets\": [\"a:1\", ]}]");
    assert_int_equal(scrape_sd_file_refresh(&sd, &cfg, 1, &changed, NULL), HS_OK);
    assert_false(changed);
    assert_int_equal(sd.nerrors, 1);
    assert_non_null(strstr(sd.last_err.msg, "a.json:1:"));
    assert_int_equal(total_targets(&sd), 3);

    /* a good edit is applied */
    write_file(pa, "[{\"targets\": [\"a:1\", \"a:2\", \"a:3\"]}]");
    assert_int_equal(scrape_sd_file_refresh(&sd, &cfg, 1, &changed, NULL), HS_OK);
    assert_true(changed);
    assert_int_equal(sd.nerrors, 0);
    assert_int_equal(total_targets(&sd), 5);

    /* a vanished file is forgotten */
    assert_int_equal(remove(pb), 0);
    assert_int_equal(scrape_sd_file_refresh(&sd, &cfg, 1, &changed, NULL), HS_OK);
    assert_true(changed);
    assert_int_equal(sd.nfiles, 1);
    assert_int_equal(total_targets(&sd), 3);
    assert_string_equal(hs_labels_get(&sd.groups[0].labels, "__meta_filepath"), pa);

    scrape_sd_file_cleanup(&sd);
    hs_test_rmdir(dir);
    free(dir);
}

static void refresh_survives_allocation_failures(void **state)
{
    char *dir = hs_test_tmpdir("sdfail");
    char pa[4096], pattern[4096];
    snprintf(pa, sizeof(pa), "%s/a.yml", dir);
    snprintf(pattern, sizeof(pattern), "%s/*.yml", dir);
    write_file(pa, "- targets: [a:1, a:2]\n  labels: {x: y}\n");
    const char *files[] = {pattern};
    struct scrape_file_sd_config cfg = {files, 1, 300000};
    for (long n = 0; n < 400; n++) {
        struct scrape_sd_file sd;
        scrape_sd_file_init(&sd);
        bool changed;
        hs_alloc_fail_after(n);
        int rc = scrape_sd_file_refresh(&sd, &cfg, 1, &changed, NULL);
        hs_alloc_fail_after(-1);
        bool ok = rc == HS_OK && total_targets(&sd) == 2;
        if (rc == HS_OK && !ok) {
            /* the file's parse failed for lack of memory: counted as broken */
            assert_int_equal(sd.nerrors, 1);
        }
        scrape_sd_file_cleanup(&sd);
        if (ok)
            break;
    }
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_json_file_gives_groups_with_their_file_path),
        cmocka_unit_test(a_yaml_file_gives_the_same_shape),
        cmocka_unit_test(broken_files_are_reported_with_file_and_position),
        cmocka_unit_test(refresh_applies_changes_keeps_broken_files_and_forgets_vanished_ones),
        cmocka_unit_test(refresh_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
