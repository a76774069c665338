/*
 * test_grafana.c - the Grafana dashboard generator (src/ui/grafana.c):
 * valid JSON with a schema version, every panel expression parses with
 * holoscope's PromQL parser once the template variables are substituted,
 * and every recording-rule name a panel reads is defined in the default
 * rule pack (rules/default.yml).
 */
#include "hs_test.h"
#include "promql/promql.h"
#include "ui/grafana.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *dashboard(void)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err err = {0};
    assert_int_equal(ui_grafana_dashboard(&b, &err), HS_OK);
    assert_true(b.len > 0 && b.p[b.len - 1] == '\n');
    json_error_t jerr;
    json_t *d = json_loadb(b.p, b.len, 0, &jerr);
    if (d == NULL)
        fail_msg("dashboard is not JSON: %d:%d: %s", jerr.line, jerr.column, jerr.text);
    hs_buf_cleanup(&b);
    return d;
}

/* Replaces "$model", "$instance" and "$gpu" with ".+" into out. */
static void substitute(const char *in, char *out, size_t n)
{
    size_t o = 0;
    while (*in && o + 3 < n) {
        const char *vars[] = {"$model", "$instance", "$gpu"};
        size_t k;
        for (k = 0; k < 3; k++)
            if (strncmp(in, vars[k], strlen(vars[k])) == 0)
                break;
        if (k < 3) {
            out[o++] = '.';
            out[o++] = '+';
            in += strlen(vars[k]);
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = '\0';
}

static void dashboard_is_json_with_schema_version_and_variables(void **state)
{
    (void)state;
    json_t *d = dashboard();
    assert_int_equal(json_integer_value(json_object_get(d, "schemaVersion")),
                     UI_GRAFANA_SCHEMA_VERSION);
    json_t *list = json_object_get(json_object_get(d, "templating"), "list");
    assert_int_equal(json_array_size(list), 4);
    json_t *ds = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(ds, "type")), "datasource");
    assert_string_equal(json_string_value(json_object_get(ds, "query")), "prometheus");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")),
                        "model");
    json_decref(d);
}

static void every_panel_expression_parses_as_promql(void **state)
{
    (void)state;
    json_t *d = dashboard();
    size_t i, j, count = 0;
    json_t *p, *t;
    json_array_foreach(json_object_get(d, "panels"), i, p)
    {
        json_array_foreach(json_object_get(p, "targets"), j, t)
        {
            const char *expr = json_string_value(json_object_get(t, "expr"));
            assert_non_null(expr);
            char q[1024];
            substitute(expr, q, sizeof(q));
            assert_null(strchr(q, '$'));
            struct hs_buf out;
            hs_buf_init(&out, 0);
            struct hs_err err = {0};
            if (promql_format_query(q, &out, &err) != HS_OK)
                fail_msg("%s: %s", q, err.msg);
            hs_buf_cleanup(&out);
            count++;
        }
    }
    assert_true(count > 30);
    json_decref(d);
}

static void recording_rules_read_by_panels_exist_in_the_default_pack(void **state)
{
    (void)state;
    const char *src = getenv("HS_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/rules/default.yml", src ? src : "../..");
    struct hs_err err = {0};
    size_t len;
    char *rules = hs_read_file(path, 0, &len, &err);
    assert_non_null(rules);
    json_t *d = dashboard();
    size_t i, j, checked = 0;
    json_t *p, *t;
    json_array_foreach(json_object_get(d, "panels"), i, p)
    {
        json_array_foreach(json_object_get(p, "targets"), j, t)
        {
            const char *e = json_string_value(json_object_get(t, "expr"));
            /* Names with a colon are recording rules (level:metric:operation). */
            for (const char *c = strchr(e, ':'); c != NULL; c = strchr(c + 1, ':')) {
                const char *s = c, *end = c;
                while (s > e && (s[-1] == '_' || s[-1] == ':' || (s[-1] >= 'a' && s[-1] <= 'z') ||
                                 (s[-1] >= '0' && s[-1] <= '9')))
                    s--;
                while (*end == '_' || *end == ':' || (*end >= 'a' && *end <= 'z') ||
                       (*end >= '0' && *end <= '9'))
                    end++;
                char want[256];
                snprintf(want, sizeof(want), "record: %.*s\n", (int)(end - s), s);
                if (strstr(rules, want) == NULL)
                    fail_msg("%s: no rule \"%.*s\" in %s", e, (int)(end - s), s, path);
                checked++;
                c = end - 1;
            }
        }
    }
    assert_true(checked >= 20);
    json_decref(d);
    hs_free(rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dashboard_is_json_with_schema_version_and_variables),
        cmocka_unit_test(every_panel_expression_parses_as_promql),
        cmocka_unit_test(recording_rules_read_by_panels_exist_in_the_default_pack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
