/*
 * test_template.c - the Go-template subset of alert labels and annotations:
 * label and value references, the humanize family as Prometheus prints it,
 * printf, pipelines, trimming, and errors reported at check time.
 */
#include "hs_test.h"

#include "rules/rules.h"

#include <math.h>
#include <string.h>

static struct hs_label lv[] = {{"instance", "gpu-node-1:8000"}, {"job", "vllm"}};
static struct hs_labels labels = {2, lv};
static struct hs_label ev[] = {{"cluster", "eu-1"}};
static struct hs_labels ext = {1, ev};

static void expect(const char *tpl, double value, const char *want)
{
    struct hs_buf b;
    struct hs_err err;
    hs_err_clear(&err);
    hs_buf_init(&b, 0);
    int rc = rules_template_expand(tpl, &labels, &ext, value, &b, &err);
    if (rc != HS_OK)
        fail_msg("%s: %s", tpl, err.msg);
    if (strcmp(b.p ? b.p : "", want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", tpl, b.p ? b.p : "", want);
    hs_buf_cleanup(&b);
}

static void expect_error(const char *tpl, const char *fragment)
{
    struct hs_err err;
    hs_err_clear(&err);
    int rc = rules_template_check(tpl, &err);
    if (rc == HS_OK)
        fail_msg("%s: accepted", tpl);
    if (!strstr(err.msg, fragment))
        fail_msg("%s: message \"%s\" lacks \"%s\"", tpl, err.msg, fragment);
}

static void template_expands_labels_value_and_external_labels(void **state)
{
    (void)state;
    expect("plain text", 1, "plain text");
    expect("{{ $labels.instance }} of {{$labels.job}}", 1, "gpu-node-1:8000 of vllm");
    expect("{{ .Labels.job }}/{{ $externalLabels.cluster }}", 1, "vllm/eu-1");
    expect("v={{ $value }}", 0.25, "v=0.25");
    expect("v={{ .Value }}", 3, "v=3");
    expect("missing=[{{ $labels.nope }}]", 1, "missing=[]");
    expect("{{ \"quoted\" }} {{ `raw` }}", 1, "quoted raw");
}

static void template_humanize_family_prints_as_prometheus(void **state)
{
    (void)state;
    expect("{{ humanize 1234567 }}", 0, "1.235M");
    expect("{{ $value | humanize }}", 0.0012, "1.2m");
    expect("{{ $value | humanize }}", 0, "0");
    expect("{{ $value | humanize }}", NAN, "NaN");
    expect("{{ $value | humanize }}", INFINITY, "+Inf");
    expect("{{ humanize1024 1048576 }}", 0, "1Mi");
    expect("{{ humanizeDuration 3661 }}", 0, "1h 1m 1s");
    expect("{{ humanizeDuration 90061 }}", 0, "1d 1h 1m 1s");
    expect("{{ humanizeDuration 1.5 }}", 0, "1.5s");
    expect("{{ humanizeDuration 0.25 }}", 0, "250ms");
    expect("{{ humanizeDuration 0 }}", 0, "0s");
    expect("{{ $value | humanizePercentage }}", 0.0512, "5.12%");
    expect("{{ humanizeTimestamp 1435065584.128 }}", 0, "2015-06-23 13:19:44.128 +0000 UTC");
    expect("{{ humanize \"2048\" }}", 0, "2.048k");
}

static void template_printf_and_pipelines_and_case(void **state)
{
    (void)state;
    expect("{{ printf \"%.2f\" $value }}", 1.23456, "1.23");
    expect("{{ printf \"%s is %d%%\" $labels.job 5 }}", 0, "vllm is 5%");
    expect("{{ printf \"%.1f\" $value | printf \"[%s]\" }}", 2, "[2.0]");
    expect("{{ $labels.job | toUpper }} {{ toLower \"ABC\" }} {{ title \"gpu down\" }}", 0,
           "VLLM abc Gpu Down");
    expect("{{ printf \"%s\" (humanize $value) }}", 1500, "1.5k");
    expect("{{ printf \"%d\" }}", 0, "%!d(MISSING)");
    expect("{{ printf \"%-6s|\" $labels.job }}", 0, "vllm  |");
}

static void template_trim_markers_and_comments(void **state)
{
    (void)state;
    expect("a  {{- $labels.job -}}  b", 0, "avllmb");
    expect("a {{/* note */}}b", 0, "a b");
    expect("x{{ 5 }}", 0, "x5");
}

static void template_errors_are_found_at_check_time(void **state)
{
    (void)state;
    expect_error("{{ $labels.job", "unclosed action");
    expect_error("{{ nosuchfunc $value }}", "function \"nosuchfunc\" not defined");
    expect_error("{{ $nope }}", "undefined variable");
    expect_error("{{ if $value }}x{{ end }}", "not supported");
    expect_error("{{ humanize }}", "wrong number of args");
    expect_error("{{ humanize \"abc\" }}", "cannot convert");
    expect_error("{{ \"unterminated }}", "unclosed");
    expect_error("{{ }}", "missing value");
    expect_error("{{ $value $value }}", "unexpected argument");
    char deep[200];
    memset(deep, '(', sizeof deep);
    memcpy(deep, "{{ ", 3);
    memcpy(deep + 63, " }}", 4); /* 60 open parentheses, NUL included */
    expect_error(deep, "nested deeper");
    struct hs_err err;
    assert_int_equal(rules_template_check("{{ $labels.x }} {{ $value | humanize }}", &err), HS_OK);
}

static void template_output_is_capped(void **state)
{
    (void)state;
    char big[1001];
    memset(big, 'x', 1000);
    big[1000] = '\0';
    struct hs_label bl[] = {{"big", big}};
    struct hs_labels bls = {1, bl};
    struct hs_buf tpl;
    hs_buf_init(&tpl, 0);
    for (size_t i = 0; i < RULES_MAX_TEMPLATE_OUTPUT / 1000 + 2; i++)
        assert_int_equal(hs_buf_puts(&tpl, "{{ $labels.big }}"), HS_OK);
    struct hs_buf out;
    hs_buf_init(&out, 0);
    struct hs_err err;
    hs_err_clear(&err);
    int rc = rules_template_expand(tpl.p, &bls, NULL, 0, &out, &err);
    assert_int_equal(rc, HS_ETOOBIG);
    assert_non_null(strstr(err.msg, "output longer"));
    hs_buf_cleanup(&out);
    hs_buf_cleanup(&tpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(template_expands_labels_value_and_external_labels),
        cmocka_unit_test(template_humanize_family_prints_as_prometheus),
        cmocka_unit_test(template_printf_and_pipelines_and_case),
        cmocka_unit_test(template_trim_markers_and_comments),
        cmocka_unit_test(template_errors_are_found_at_check_time),
        cmocka_unit_test(template_output_is_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
