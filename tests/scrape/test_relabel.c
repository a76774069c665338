/*
 * test_relabel.c - the relabelling engine: every action with Prometheus'
 * semantics (examples from the Prometheus configuration documentation and
 * model/relabel tests), rule validation messages with their positions, and
 * allocation failures.
 */
#include "scrape/scrape_config.h"

#include "hs_test.h"

#include <stdio.h>
#include <string.h>

struct fx {
    struct hs_ydoc *doc;
    struct scrape_relabel_set rs;
    struct scrape_relabel_scratch sc;
    struct hs_arena arena;
    struct hs_labels out;
};

static void load(struct fx *f, const char *yaml)
{
    struct hs_err err = {0};
    memset(f, 0, sizeof(*f));
    f->doc = hs_ydoc_parse(yaml, strlen(yaml), "rules.yml", &err);
    assert_non_null(f->doc);
    int rc = scrape_relabel_set_parse(f->doc, f->doc->root, "relabel_configs", &f->rs, &err);
    if (rc != HS_OK)
        fail_msg("parse: %s", err.msg);
    assert_int_equal(scrape_relabel_scratch_init(&f->sc, &err), HS_OK);
    hs_arena_init(&f->arena, 4096, 0);
}

static void done(struct fx *f)
{
    scrape_relabel_set_cleanup(&f->rs);
    scrape_relabel_scratch_cleanup(&f->sc);
    hs_arena_cleanup(&f->arena);
    hs_ydoc_free(f->doc);
}

/* Parses "a=1,b=2" into a sorted label set (arena memory). */
static struct hs_labels mk(struct hs_arena *a, const char *spec)
{
    struct hs_labels ls = {0, hs_arena_alloc(a, 64 * sizeof(struct hs_label))};
    char *s = hs_arena_strndup(a, spec, strlen(spec));
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        *eq = '\0';
        ls.v[ls.n].name = tok;
        ls.v[ls.n].value = eq + 1;
        ls.n++;
    }
    hs_labels_sort(&ls);
    return ls;
}

static const char *fmt(struct hs_labels *ls)
{
    static char out[1024];
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ls->n; i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s=%s", i ? "," : "", ls->v[i].name,
                              ls->v[i].value);
    return out;
}

/* Applies the rules; returns the result text or "DROPPED". */
static const char *run(struct fx *f, const char *in)
{
    struct hs_err err = {0};
    struct hs_labels ls = mk(&f->arena, in);
    int rc = scrape_relabel_apply(&f->rs, &ls, &f->arena, &f->sc, &f->out, &err);
    assert_true(rc >= 0);
    return rc == 0 ? "DROPPED" : fmt(&f->out);
}

static void replace_copies_a_joined_capture_group_to_the_target(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a, b]\n"
             "  separator: '-'\n"
             "  regex: 'f(.*)-(.*)'\n"
             "  target_label: c\n"
             "  replacement: '${1}x$2'\n");
    assert_string_equal(run(&f, "a=foo,b=bar"), "a=foo,b=bar,c=ooxbar");
    /* no match leaves the set alone */
    assert_string_equal(run(&f, "a=zoo,b=bar"), "a=zoo,b=bar");
    done(&f);
}

static void replace_defaults_copy_the_value_with_a_semicolon_separator(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a, b]\n  target_label: c\n");
    assert_string_equal(run(&f, "a=1,b=2"), "a=1,b=2,c=1;2");
    done(&f);
}

static void absent_source_labels_join_as_empty_strings(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a, b, c]\n  target_label: d\n");
    assert_string_equal(run(&f, "b=x"), "b=x,d=;x;");
    done(&f);
}

static void group_numbers_above_nine_and_prefixed_labelmap_replacements_expand(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  regex: '(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)'\n"
             "  target_label: b\n  replacement: '${10}$11'\n"
             "- regex: 'k_(.+)'\n  replacement: 'copy_${1}'\n  action: labelmap\n");
    assert_string_equal(run(&f, "a=0123456789X,k_x=1"), "a=0123456789X,b=9X,copy_x=1,k_x=1");
    done(&f);
}

static void replace_with_an_empty_result_deletes_the_target(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  regex: 'x(.*)'\n  target_label: b\n");
    assert_string_equal(run(&f, "a=x,b=old"), "a=x");
    done(&f);
}

static void replace_regex_is_anchored_at_both_ends(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  regex: 'o+'\n  target_label: b\n  replacement: hit\n");
    assert_string_equal(run(&f, "a=foo"), "a=foo");
    assert_string_equal(run(&f, "a=ooo"), "a=ooo,b=hit");
    done(&f);
}

static void replace_expands_named_groups_and_templated_target_labels(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n"
             "  regex: '(?P<key>[a-z]+)=(?P<val>.*)'\n"
             "  target_label: 'x_${key}'\n"
             "  replacement: '$val$$'\n");
    assert_string_equal(run(&f, "a=zone=eu"), "a=zone=eu,x_zone=eu$");
    done(&f);
}

static void replace_treats_dollar_1x_as_an_unknown_group_like_go(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  regex: '(.*)'\n  target_label: b\n"
             "  replacement: '$1x-${1}x'\n");
    assert_string_equal(run(&f, "a=v"), "a=v,b=-vx");
    done(&f);
}

static void replace_to_an_invalid_target_name_changes_nothing(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  regex: '(.*)'\n  target_label: '${1}'\n");
    assert_string_equal(run(&f, "a=1abc"), "a=1abc");
    done(&f);
}

static void keep_drops_sets_whose_value_does_not_match(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [job]\n  regex: 'vllm|sglang'\n  action: keep\n");
    assert_string_equal(run(&f, "job=vllm"), "job=vllm");
    assert_string_equal(run(&f, "job=vllm2"), "DROPPED");
    done(&f);
}

static void drop_drops_sets_whose_value_matches(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [__name__]\n  regex: 'go_.*'\n  action: drop\n");
    assert_string_equal(run(&f, "__name__=go_gc"), "DROPPED");
    assert_string_equal(run(&f, "__name__=vllm:x"), "__name__=vllm:x");
    /* an absent source label joins as "" and is matched as such */
    assert_string_equal(run(&f, "a=1"), "a=1");
    done(&f);
}

static void keepequal_and_dropequal_compare_with_the_target_label(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  target_label: b\n  action: keepequal\n");
    assert_string_equal(run(&f, "a=1,b=1"), "a=1,b=1");
    assert_string_equal(run(&f, "a=1,b=2"), "DROPPED");
    done(&f);
    load(&f, "- source_labels: [a]\n  target_label: b\n  action: dropequal\n");
    assert_string_equal(run(&f, "a=1,b=1"), "DROPPED");
    assert_string_equal(run(&f, "a=1,b=2"), "a=1,b=2");
    done(&f);
}

static void hashmod_matches_prometheus_shard_numbers(void **state)
{
    struct fx f;
    /* md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; Prometheus takes bytes
     * 8..15 big-endian: 0xedef654fccc4a4d8 % 1000 = 696. */
    load(&f, "- source_labels: [a]\n  target_label: shard\n  modulus: 1000\n  action: hashmod\n");
    assert_string_equal(run(&f, "a=foo"), "a=foo,shard=696");
    done(&f);
}

static void labelmap_copies_matching_names_with_the_replacement(void **state)
{
    struct fx f;
    load(&f, "- regex: '__meta_kubernetes_pod_label_(.+)'\n  action: labelmap\n");
    assert_string_equal(run(&f, "__meta_kubernetes_pod_label_app=web,x=1"),
                        "__meta_kubernetes_pod_label_app=web,app=web,x=1");
    done(&f);
}

static void labeldrop_and_labelkeep_filter_names_by_regex(void **state)
{
    struct fx f;
    load(&f, "- regex: 'tmp_.*'\n  action: labeldrop\n");
    assert_string_equal(run(&f, "tmp_a=1,tmp_b=2,keep=3"), "keep=3");
    done(&f);
    load(&f, "- regex: '__name__|job'\n  action: labelkeep\n");
    assert_string_equal(run(&f, "__name__=up,job=j,pod=p"), "__name__=up,job=j");
    done(&f);
}

static void lowercase_and_uppercase_write_the_joined_value(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  target_label: lo\n  action: lowercase\n"
             "- source_labels: [a]\n  target_label: up\n  action: Uppercase\n");
    assert_string_equal(run(&f, "a=MiXed"), "a=MiXed,lo=mixed,up=MIXED");
    done(&f);
}

static void a_chain_of_rules_sees_the_previous_results(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [__address__]\n  regex: '(.*):\\d+'\n  target_label: host\n"
             "- source_labels: [host]\n  regex: 'gpu-.*'\n  action: keep\n");
    assert_string_equal(run(&f, "__address__=gpu-1:8000"), "__address__=gpu-1:8000,host=gpu-1");
    assert_string_equal(run(&f, "__address__=cpu-1:8000"), "DROPPED");
    done(&f);
}

/* The address rewrite of Prometheus' Kubernetes example configuration. */
static void the_kubernetes_example_rewrites_the_address_port(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]\n"
             "  action: keep\n"
             "  regex: true\n"
             "- source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]\n"
             "  action: replace\n"
             "  regex: '([^:]+)(?::\\d+)?;(\\d+)'\n"
             "  replacement: $1:$2\n"
             "  target_label: __address__\n"
             "- action: labelmap\n"
             "  regex: __meta_kubernetes_pod_label_(.+)\n");
    assert_string_equal(run(&f, "__address__=10.1.2.3:80,"
                                "__meta_kubernetes_pod_annotation_prometheus_io_port=8000,"
                                "__meta_kubernetes_pod_annotation_prometheus_io_scrape=true,"
                                "__meta_kubernetes_pod_label_app=vllm"),
                        "__address__=10.1.2.3:8000,"
                        "__meta_kubernetes_pod_annotation_prometheus_io_port=8000,"
                        "__meta_kubernetes_pod_annotation_prometheus_io_scrape=true,"
                        "__meta_kubernetes_pod_label_app=vllm,app=vllm");
    assert_string_equal(run(&f, "__address__=10.1.2.3,"
                                "__meta_kubernetes_pod_annotation_prometheus_io_port=9400,"
                                "__meta_kubernetes_pod_annotation_prometheus_io_scrape=true"),
                        "__address__=10.1.2.3:9400,"
                        "__meta_kubernetes_pod_annotation_prometheus_io_port=9400,"
                        "__meta_kubernetes_pod_annotation_prometheus_io_scrape=true");
    assert_string_equal(run(&f, "__address__=10.1.2.3:80,"
                                "__meta_kubernetes_pod_annotation_prometheus_io_scrape=false"),
                        "DROPPED");
    done(&f);
}

static void removing_every_label_drops_the_set(void **state)
{
    struct fx f;
    load(&f, "- regex: '.*'\n  action: labeldrop\n");
    assert_string_equal(run(&f, "a=1"), "DROPPED");
    done(&f);
}

static void dot_matches_newlines_in_values(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  regex: 'x.y'\n  action: keep\n");
    assert_string_equal(run(&f, "a=x\ny"), "a=x\ny");
    done(&f);
}

/* ---- validation ---------------------------------------------------------- */

static void expect_error(const char *yaml, const char *msg)
{
    struct hs_err err = {0};
    struct hs_ydoc *doc = hs_ydoc_parse(yaml, strlen(yaml), "rules.yml", &err);
    assert_non_null(doc);
    struct scrape_relabel_set rs;
    int rc = scrape_relabel_set_parse(doc, doc->root, "relabel_configs", &rs, &err);
    assert_int_not_equal(rc, HS_OK);
    assert_null(rs.v);
    assert_string_equal(err.msg, msg);
    hs_ydoc_free(doc);
}

static void invalid_rules_are_reported_with_file_line_and_column(void **state)
{
    expect_error("- action: hashmod\n  target_label: x\n",
                 "rules.yml:1:11: relabel configuration for hashmod requires non-zero modulus");
    expect_error("- source_labels: [a]\n",
                 "rules.yml:1:3: relabel configuration for replace action requires "
                 "'target_label' value");
    expect_error("- action: explode\n", "rules.yml:1:11: unknown relabel action \"explode\"");
    expect_error("- regex: 'a('\n  action: drop\n",
                 "rules.yml:1:10: regex \"a(\": missing closing parenthesis at offset 2");
    expect_error("- source_labels: [a]\n  target_label: b\n  colour: red\n",
                 "rules.yml:3:3: relabel_configs: unknown key \"colour\"");
    expect_error("- regex: x\n  target_label: y\n  action: labeldrop\n",
                 "rules.yml:3:11: labeldrop action requires only 'regex', and no other fields");
    expect_error("- source_labels: [a]\n  target_label: b\n  regex: x\n  action: keepequal\n",
                 "rules.yml:4:11: keepequal action requires only 'source_labels' and "
                 "'target_label', and no other fields");
    expect_error("- source_labels: [a]\n  target_label: 'a-b'\n",
                 "rules.yml:2:17: \"a-b\" is invalid 'target_label' for replace action");
    expect_error("- source_labels: ['a b']\n  target_label: b\n",
                 "rules.yml:1:19: source_labels: \"a b\" is not a valid label name");
    expect_error("- source_labels: [a]\n  target_label: b\n  modulus: -1\n  action: hashmod\n",
                 "rules.yml:3:12: modulus: must not be negative");
    expect_error("- source_labels: [a]\n  target_label: b\n  action: lowercase\n"
                 "  replacement: x\n",
                 "rules.yml:4:16: 'replacement' can not be set for lowercase action");
    expect_error("relabel: 1\n", "rules.yml:1:1: relabel_configs: expected a list of rules");
}

static void no_rules_pass_the_input_through_without_copying(void **state)
{
    struct scrape_relabel_set rs = {0};
    struct hs_label v[] = {{"a", "1"}};
    struct hs_labels in = {1, v}, out;
    struct hs_arena a;
    hs_arena_init(&a, 256, 0);
    assert_int_equal(scrape_relabel_apply(&rs, &in, &a, NULL, &out, NULL), 1);
    assert_ptr_equal(out.v, in.v);
    hs_arena_cleanup(&a);
}

static void allocation_failures_while_parsing_leave_nothing_behind(void **state)
{
    const char *yaml = "- source_labels: [a, b]\n  regex: '(.+)-(.+)'\n  target_label: c\n"
                       "- regex: 'x_(.*)'\n  action: labelmap\n";
    struct hs_err err;
    struct hs_ydoc *doc = hs_ydoc_parse(yaml, strlen(yaml), "r.yml", &err);
    assert_non_null(doc);
    for (long n = 0; n < 200; n++) {
        struct scrape_relabel_set rs;
        hs_alloc_fail_after(n);
        int rc = scrape_relabel_set_parse(doc, doc->root, "relabel_configs", &rs, &err);
        hs_alloc_fail_after(-1);
        if (rc == HS_OK) {
            scrape_relabel_set_cleanup(&rs);
            break;
        }
        assert_int_equal(rc, HS_ENOMEM);
    }
    hs_ydoc_free(doc);
}

static void an_exhausted_arena_is_an_error_not_a_crash(void **state)
{
    struct fx f;
    load(&f, "- source_labels: [a]\n  target_label: b\n  replacement: 'long-long-value-$1'\n");
    struct hs_arena small;
    hs_arena_init(&small, 64, 64);
    struct hs_labels ls = mk(&f.arena, "a=1");
    struct hs_labels out;
    int rc = HS_OK;
    for (int i = 0; i < 100 && rc >= 0; i++)
        rc = scrape_relabel_apply(&f.rs, &ls, &small, &f.sc, &out, NULL);
    assert_int_equal(rc, HS_ENOMEM);
    hs_arena_cleanup(&small);
    done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replace_copies_a_joined_capture_group_to_the_target),
        cmocka_unit_test(replace_defaults_copy_the_value_with_a_semicolon_separator),
        cmocka_unit_test(absent_source_labels_join_as_empty_strings),
        cmocka_unit_test(group_numbers_above_nine_and_prefixed_labelmap_replacements_expand),
        cmocka_unit_test(replace_with_an_empty_result_deletes_the_target),
        cmocka_unit_test(replace_regex_is_anchored_at_both_ends),
        cmocka_unit_test(replace_expands_named_groups_and_templated_target_labels),
        cmocka_unit_test(replace_treats_dollar_1x_as_an_unknown_group_like_go),
        cmocka_unit_test(replace_to_an_invalid_target_name_changes_nothing),
        cmocka_unit_test(keep_drops_sets_whose_value_does_not_match),
        cmocka_unit_test(drop_drops_sets_whose_value_matches),
        cmocka_unit_test(keepequal_and_dropequal_compare_with_the_target_label),
        cmocka_unit_test(hashmod_matches_prometheus_shard_numbers),
        cmocka_unit_test(labelmap_copies_matching_names_with_the_replacement),
        cmocka_unit_test(labeldrop_and_labelkeep_filter_names_by_regex),
        cmocka_unit_test(lowercase_and_uppercase_write_the_joined_value),
        cmocka_unit_test(a_chain_of_rules_sees_the_previous_results),
        cmocka_unit_test(the_kubernetes_example_rewrites_the_address_port),
        cmocka_unit_test(removing_every_label_drops_the_set),
        cmocka_unit_test(dot_matches_newlines_in_values),
        cmocka_unit_test(invalid_rules_are_reported_with_file_line_and_column),
        cmocka_unit_test(no_rules_pass_the_input_through_without_copying),
        cmocka_unit_test(allocation_failures_while_parsing_leave_nothing_behind),
        cmocka_unit_test(an_exhausted_arena_is_an_error_not_a_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
