/*
 * test_load.c - rule file loading and validation: what promtool check
 * rules accepts loads, and every kind of mistake is reported with
 * FILE:LINE:COL and a precise message, all of a file's mistakes at once.
 */
#include "hs_test.h"

#include "hs_test_util.h"
#include "rules/rules.h"

#include <string.h>

struct diags {
    char msgs[16][512];
    int n;
};

static void collect(void *arg, const char *msg)
{
    struct diags *d = arg;
    if (d->n < 16)
        snprintf(d->msgs[d->n++], 512, "%s", msg);
}

static int load(const char *text, struct diags *d, struct rules_set **out)
{
    struct rules_set *s = rules_set_new();
    assert_non_null(s);
    struct hs_err err;
    hs_err_clear(&err);
    memset(d, 0, sizeof *d);
    int rc = rules_set_add_text(s, "r.yml", text, strlen(text), collect, d, &err);
    if (out)
        *out = s;
    else
        rules_set_free(s);
    return rc;
}

static void has(const struct diags *d, const char *want)
{
    for (int i = 0; i < d->n; i++)
        if (strstr(d->msgs[i], want))
            return;
    for (int i = 0; i < d->n; i++)
        print_message("diag: %s\n", d->msgs[i]);
    fail_msg("no diagnostic contains \"%s\"", want);
}

static void valid_file_loads_groups_and_rules(void **state)
{
    (void)state;
    const char *text = "groups:\n"
                       "  - name: llm\n"
                       "    interval: 30s\n"
                       "    limit: 10\n"
                       "    rules:\n"
                       "      - record: job:x:rate5m\n"
                       "        expr: sum by (job) (rate(x_total[5m]))\n"
                       "        labels: {team: infra}\n"
                       "      - alert: XHigh\n"
                       "        expr: job:x:rate5m > 1\n"
                       "        for: 5m\n"
                       "        keep_firing_for: 1m\n"
                       "        labels: {severity: warning, b: '{{ $labels.job }}'}\n"
                       "        annotations:\n"
                       "          summary: 'rate {{ $value | humanize }}'\n"
                       "  - name: other\n"
                       "    query_offset: 1m\n"
                       "    labels: {team: ml, tier: gold}\n"
                       "    rules:\n"
                       "      - record: y\n"
                       "        expr: vector(1)\n"
                       "        labels: {tier: silver}\n";
    struct diags d;
    struct rules_set *s = NULL;
    assert_int_equal(load(text, &d, &s), HS_OK);
    assert_int_equal(d.n, 0);
    assert_int_equal(s->ngroups, 2);
    struct rules_group *g = &s->groups[0];
    assert_string_equal(g->name, "llm");
    assert_string_equal(g->file, "r.yml");
    assert_int_equal(g->interval_ms, 30000);
    assert_int_equal(g->limit, 10);
    assert_int_equal(g->nrules, 2);
    assert_int_equal(g->rules[0].kind, RULES_KIND_RECORD);
    assert_int_equal(g->rules[1].kind, RULES_KIND_ALERT);
    assert_int_equal(g->rules[1].for_ms, 300000);
    assert_int_equal(g->rules[1].keep_firing_for_ms, 60000);
    assert_int_equal(g->rules[1].nlabels, 2);
    assert_string_equal(g->rules[1].labels[0].name, "b"); /* sorted */
    assert_int_equal(g->rules[1].line, 9);
    struct rules_group *g2 = &s->groups[1];
    assert_int_equal(g2->query_offset_ms, 60000);
    assert_int_equal(g2->rules[0].nlabels, 2); /* group labels merged, rule wins */
    assert_string_equal(g2->rules[0].labels[0].name, "team");
    assert_string_equal(g2->rules[0].labels[0].value, "ml");
    assert_string_equal(g2->rules[0].labels[1].value, "silver");
    size_t nr = 0, na = 0;
    rules_set_count(s, &nr, &na);
    assert_int_equal(nr, 2);
    assert_int_equal(na, 1);
    rules_set_free(s);
    /* an empty file is valid and has no groups */
    assert_int_equal(load("", &d, NULL), HS_OK);
}

static void every_mistake_is_reported_with_file_line_and_column(void **state)
{
    (void)state;
    const char *text = "groups:\n"                                  /* 1 */
                       "  - name: a\n"                              /* 2 */
                       "    rules:\n"                               /* 3 */
                       "      - record: 'bad name'\n"               /* 4 */
                       "        expr: up\n"                         /* 5 */
                       "      - alert: A\n"                         /* 6 */
                       "        expr: 'sum(up'\n"                   /* 7 */
                       "      - record: r\n"                        /* 8 */
                       "        alert: r\n"                         /* 9 */
                       "        expr: up\n"                         /* 10 */
                       "      - expr: up\n"                         /* 11 */
                       "      - record: r2\n"                       /* 12 */
                       "        expr: up\n"                         /* 13 */
                       "        for: 5m\n"                          /* 14 */
                       "        annotations: {a: b}\n"              /* 15 */
                       "      - alert: B\n"                         /* 16 */
                       "        expr: up\n"                         /* 17 */
                       "        labels: {'0bad': x}\n"              /* 18 */
                       "        annotations: {s: '{{ nofunc }}'}\n" /* 19 */
                       "        bogus: 1\n"                         /* 20 */
                       "      - alert: C\n"                         /* 21 */
                       "        expr: up[5m]\n"                     /* 22 */
                       "      - alert: D\n"                         /* 23 */
                       "        for: 5x\n"                          /* 24 */
                       "        expr: up\n"                         /* 25 */
                       "  - name: a\n"                              /* 26 */
                       "    interval: 0s\n";                        /* 27 */
    struct diags d;
    struct rules_set *s = NULL;
    assert_int_equal(load(text, &d, &s), HS_EPARSE);
    assert_int_equal(s->ngroups, 0); /* nothing of a bad file is added */
    rules_set_free(s);
    has(&d, "r.yml:4:");
    has(&d, "invalid recording rule name: bad name");
    has(&d, "r.yml:7:15: could not parse expression:");
    has(&d, "r.yml:8:9: only one of 'record' and 'alert' must be set");
    has(&d, "r.yml:11:9: one of 'record' or 'alert' must be set");
    has(&d, "r.yml:14:14: invalid field 'for' in recording rule");
    has(&d, "r.yml:15:22: invalid field 'annotations' in recording rule");
    has(&d, "r.yml:18:18: invalid label name: 0bad");
    has(&d, "r.yml:19:");
    has(&d, "function \"nofunc\" not defined");
    has(&d, "r.yml:20:9: field bogus not found in type rulefmt.Rule");
    has(&d, "r.yml:22:15: invalid expression type \"range vector\"");
    has(&d, "r.yml:24:");
    has(&d, "r.yml:26:11: groupname: \"a\" is repeated in the same file");
    has(&d, "r.yml:27:15: interval: must be greater than zero");
}

static void structural_errors_name_their_place(void **state)
{
    (void)state;
    struct diags d;
    assert_int_equal(load("groups: [\n", &d, NULL), HS_EPARSE);
    has(&d, "r.yml:");
    assert_int_equal(load("- a\n- b\n", &d, NULL), HS_EPARSE);
    has(&d, "r.yml:1:1: expected a map with a 'groups' list");
    assert_int_equal(load("groups:\n  - rules: []\n", &d, NULL), HS_EPARSE);
    has(&d, "Groupname must not be empty");
    assert_int_equal(load("grops: []\n", &d, NULL), HS_EPARSE);
    has(&d, "r.yml:1:1: field grops not found in type rulefmt.RuleGroups");
    assert_int_equal(load("groups:\n  - name: x\n    rules:\n      - record: r\n", &d, NULL),
                     HS_EPARSE);
    has(&d, "field 'expr' must be set in rule");
    assert_int_equal(load("groups:\n  - name: x\n    rules: {a: b}\n", &d, NULL), HS_EPARSE);
    has(&d, "r.yml:3:12: rules: expected a list of rules");
}

static void missing_file_is_an_io_error(void **state)
{
    (void)state;
    struct rules_set *s = rules_set_new();
    struct hs_err err;
    hs_err_clear(&err);
    int rc = rules_set_add_file(s, "/nonexistent/rules.yml", NULL, NULL, &err);
    assert_true(rc < 0);
    assert_non_null(strstr(err.msg, "/nonexistent/rules.yml"));
    rules_set_free(s);
}

static void glob_patterns_load_every_matching_file_in_order(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("rules-glob");
    char path[4096];
    struct hs_err err;
    const char *a =
        "groups:\n  - name: a\n    rules:\n      - record: a\n        expr: vector(1)\n";
    const char *b =
        "groups:\n  - name: b\n    rules:\n      - record: b\n        expr: vector(2)\n";
    snprintf(path, sizeof path, "%s/2.yml", dir);
    assert_int_equal(hs_write_file_atomic(path, b, strlen(b), &err), HS_OK);
    snprintf(path, sizeof path, "%s/1.yml", dir);
    assert_int_equal(hs_write_file_atomic(path, a, strlen(a), &err), HS_OK);
    struct rules_set *s = rules_set_new();
    snprintf(path, sizeof path, "%s/*.yml", dir);
    assert_int_equal(rules_set_add_glob(s, path, NULL, NULL, &err), HS_OK);
    assert_int_equal(s->ngroups, 2);
    assert_string_equal(s->groups[0].name, "a");
    assert_string_equal(s->groups[1].name, "b");
    snprintf(path, sizeof path, "%s/*.none", dir);
    assert_int_equal(rules_set_add_glob(s, path, NULL, NULL, &err), HS_OK);
    snprintf(path, sizeof path, "%s/missing.yml", dir);
    assert_true(rules_set_add_glob(s, path, NULL, NULL, &err) < 0);
    rules_set_free(s);
    hs_test_rmdir(dir);
    free(dir);
}

static void loading_survives_every_allocation_failure(void **state)
{
    (void)state;
    const char *text = "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up > 1\n"
                       "        labels: {x: '{{ $value }}'}\n";
    for (long n = 0; n < 400; n++) {
        struct rules_set *s = rules_set_new();
        if (!s)
            continue;
        struct hs_err err;
        hs_alloc_fail_after(n);
        int rc = rules_set_add_text(s, "r.yml", text, strlen(text), NULL, NULL, &err);
        hs_alloc_fail_after(-1);
        assert_true(rc == HS_OK || rc == HS_ENOMEM || rc == HS_EPARSE);
        rules_set_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_file_loads_groups_and_rules),
        cmocka_unit_test(every_mistake_is_reported_with_file_line_and_column),
        cmocka_unit_test(structural_errors_name_their_place),
        cmocka_unit_test(missing_file_is_an_io_error),
        cmocka_unit_test(glob_patterns_load_every_matching_file_in_order),
        cmocka_unit_test(loading_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
