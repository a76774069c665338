/*
 * test_config.c - the scrape configuration: a pasted Prometheus config is
 * read with its defaults, every error names FILE:LINE:COL, secrets never
 * show in a dump, and targets are built with Prometheus' label semantics.
 */
#include "scrape/scrape_config.h"

#include "hs_test.h"

#include <stdio.h>
#include <string.h>

static struct hs_ydoc *doc_of(const char *yaml)
{
    struct hs_err err = {0};
    struct hs_ydoc *d = hs_ydoc_parse(yaml, strlen(yaml), "holoscope.yml", &err);
    if (d == NULL)
        fail_msg("yaml: %s", err.msg);
    return d;
}

static struct scrape_config *parse_ok(const char *yaml)
{
    struct hs_ydoc *d = doc_of(yaml);
    struct scrape_config *cfg = NULL;
    struct hs_err err = {0};
    int rc = scrape_config_parse(d, d->root, &cfg, &err);
    hs_ydoc_free(d);
    if (rc != HS_OK)
        fail_msg("config: %s", err.msg);
    return cfg;
}

static void expect_error(const char *yaml, const char *msg)
{
    struct hs_ydoc *d = doc_of(yaml);
    struct scrape_config *cfg = (struct scrape_config *)1;
    struct hs_err err = {0};
    int rc = scrape_config_parse(d, d->root, &cfg, &err);
    hs_ydoc_free(d);
    assert_int_not_equal(rc, HS_OK);
    assert_null(cfg);
    assert_string_equal(err.msg, msg);
}

static const char *full_config = "global:\n"
                                 "  scrape_interval: 15s\n"
                                 "  evaluation_interval: 30s\n"
                                 "  external_labels:\n"
                                 "    cluster: gpu-east\n"
                                 "rule_files: [rules.yml]\n"
                                 "scrape_configs:\n"
                                 "  - job_name: vllm\n"
                                 "    scrape_interval: 5s\n"
                                 "    metrics_path: /metrics\n"
                                 "    scheme: https\n"
                                 "    params:\n"
                                 "      format: [prometheus, x]\n"
                                 "    honor_labels: true\n"
                                 "    honor_timestamps: false\n"
                                 "    sample_limit: 50000\n"
                                 "    label_limit: 64\n"
                                 "    label_name_length_limit: 128\n"
                                 "    label_value_length_limit: 1024\n"
                                 "    body_size_limit: 16MB\n"
                                 "    basic_auth:\n"
                                 "      username: scraper\n"
                                 "      password: hunter2\n"
                                 "    tls_config:\n"
                                 "      ca_file: /etc/ca.pem\n"
                                 "      server_name: vllm.internal\n"
                                 "      insecure_skip_verify: false\n"
                                 "    follow_redirects: false\n"
                                 "    enable_http2: false\n"
                                 "    model: llama-3-8b\n"
                                 "    static_configs:\n"
                                 "      - targets: ['10.0.0.1:8000', '10.0.0.2:8000']\n"
                                 "        labels:\n"
                                 "          az: eu-1\n"
                                 "    file_sd_configs:\n"
                                 "      - files: ['/etc/holoscope/targets/*.json']\n"
                                 "        refresh_interval: 1m\n"
                                 "    http_sd_configs:\n"
                                 "      - url: http://sd.internal/targets\n"
                                 "    relabel_configs:\n"
                                 "      - source_labels: [az]\n"
                                 "        target_label: zone\n"
                                 "    metric_relabel_configs:\n"
                                 "      - source_labels: [__name__]\n"
                                 "        regex: 'python_.*'\n"
                                 "        action: drop\n"
                                 "  - job_name: dcgm\n"
                                 "    authorization:\n"
                                 "      credentials: s3cr3t-token\n"
                                 "    static_configs:\n"
                                 "      - targets: ['gpu-node:9400']\n";

static void a_pasted_prometheus_config_is_read_with_every_key(void **state)
{
    struct scrape_config *cfg = parse_ok(full_config);
    assert_int_equal(cfg->global.scrape_interval_ms, 15000);
    assert_int_equal(cfg->global.scrape_timeout_ms, 10000);
    assert_int_equal(cfg->global.evaluation_interval_ms, 30000);
    assert_string_equal(hs_labels_get(&cfg->global.external_labels, "cluster"), "gpu-east");
    assert_int_equal(cfg->njobs, 2);
    const struct scrape_job *j = scrape_config_job(cfg, "vllm");
    assert_non_null(j);
    assert_int_equal(j->scrape_interval_ms, 5000);
    assert_int_equal(j->scrape_timeout_ms, 5000); /* capped at the interval */
    assert_string_equal(j->scheme, "https");
    assert_int_equal(j->nparams, 1);
    assert_string_equal(j->params[0].name, "format");
    assert_int_equal(j->params[0].nvalues, 2);
    assert_true(j->honor_labels);
    assert_false(j->honor_timestamps);
    assert_false(j->follow_redirects);
    assert_false(j->enable_http2);
    assert_int_equal(j->sample_limit, 50000);
    assert_int_equal(j->label_limit, 64);
    assert_int_equal(j->label_name_length_limit, 128);
    assert_int_equal(j->label_value_length_limit, 1024);
    assert_int_equal(j->body_size_limit, 16u << 20);
    assert_true(j->has_basic_auth);
    assert_string_equal(j->basic_auth_username, "scraper");
    assert_string_equal(j->basic_auth_password.value, "hunter2");
    assert_true(j->has_tls);
    assert_string_equal(j->tls.ca_file, "/etc/ca.pem");
    assert_string_equal(j->tls.server_name, "vllm.internal");
    assert_string_equal(j->model, "llama-3-8b");
    assert_int_equal(j->nstatic, 1);
    assert_int_equal(j->static_configs[0].ntargets, 2);
    assert_int_equal(j->nfile_sd, 1);
    assert_int_equal(j->file_sd_configs[0].refresh_interval_ms, 60000);
    assert_int_equal(j->nhttp_sd, 1);
    assert_int_equal(j->http_sd_configs[0].refresh_interval_ms, 60000);
    assert_int_equal(j->relabel_configs.n, 1);
    assert_int_equal(j->metric_relabel_configs.n, 1);
    const struct scrape_job *d = scrape_config_job(cfg, "dcgm");
    assert_true(d->has_authorization);
    assert_string_equal(d->authorization_type, "Bearer");
    assert_string_equal(d->authorization_credentials.value, "s3cr3t-token");
    assert_null(scrape_config_job(cfg, "nope"));
    scrape_config_free(cfg);
}

static void defaults_are_those_of_prometheus(void **state)
{
    struct scrape_config *cfg =
        parse_ok("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [h:1]}]\n");
    assert_int_equal(cfg->global.scrape_interval_ms, 60000);
    assert_int_equal(cfg->global.scrape_timeout_ms, 10000);
    const struct scrape_job *j = &cfg->jobs[0];
    assert_int_equal(j->scrape_interval_ms, 60000);
    assert_int_equal(j->scrape_timeout_ms, 10000);
    assert_string_equal(j->metrics_path, "/metrics");
    assert_string_equal(j->scheme, "http");
    assert_false(j->honor_labels);
    assert_true(j->honor_timestamps);
    assert_true(j->follow_redirects);
    assert_null(j->backend);
    scrape_config_free(cfg);
    /* a short global interval pulls the default timeout down with it */
    cfg = parse_ok("global: {scrape_interval: 5s}\n");
    assert_int_equal(cfg->global.scrape_timeout_ms, 5000);
    assert_int_equal(cfg->njobs, 0);
    scrape_config_free(cfg);
}

static void other_top_level_keys_are_left_to_the_caller(void **state)
{
    struct scrape_config *cfg = parse_ok("storage: {path: x}\ngateway: 1\n");
    assert_int_equal(cfg->njobs, 0);
    scrape_config_free(cfg);
}

static void every_config_error_names_file_line_and_column(void **state)
{
    expect_error("global:\n  scrape_intervl: 1m\n",
                 "holoscope.yml:2:3: global: unknown key \"scrape_intervl\"");
    expect_error("global:\n  scrape_interval: 5s\n  scrape_timeout: 10s\n",
                 "holoscope.yml:3:19: global scrape timeout greater than scrape interval");
    expect_error(
        "global:\n  scrape_interval: soon\n",
        "holoscope.yml:2:20: scrape_interval: expected a duration like 30s, 5m or 1h30m, got "
        "\"soon\"");
    expect_error("global:\n  external_labels: {'bad-name': x}\n",
                 "holoscope.yml:2:21: external_labels: \"bad-name\" is not a valid label name");
    expect_error("scrape_configs:\n  - job_name: a\n    oauth2: {}\n",
                 "holoscope.yml:3:5: scrape_configs: unknown key \"oauth2\"");
    expect_error("scrape_configs:\n  - job_name: a\n  - job_name: a\n",
                 "holoscope.yml:3:15: found multiple scrape configs with job name \"a\"");
    expect_error("scrape_configs:\n  - scrape_interval: 1m\n",
                 "holoscope.yml:2:5: job_name is empty");
    expect_error("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n"
                 "    scrape_timeout: 6s\n",
                 "holoscope.yml:4:21: scrape timeout greater than scrape interval for scrape "
                 "config with job name \"a\"");
    expect_error("scrape_configs:\n  - job_name: a\n    scheme: ftp\n",
                 "holoscope.yml:3:13: scheme: must be \"http\" or \"https\", got \"ftp\"");
    expect_error("scrape_configs:\n  - job_name: a\n    metrics_path: metrics\n",
                 "holoscope.yml:3:19: metrics_path: \"metrics\" must start with \"/\"");
    expect_error("scrape_configs:\n  - job_name: a\n    static_configs:\n"
                 "      - targets: ['http://h:1']\n",
                 "holoscope.yml:4:19: \"http://h:1\" is not a valid hostname");
    expect_error("scrape_configs:\n  - job_name: a\n    static_configs:\n"
                 "      - targets: [h:1]\n        lables: {}\n",
                 "holoscope.yml:5:9: static_configs: unknown key \"lables\"");
    expect_error("scrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n"
                 "      password: p\n      password_file: /f\n",
                 "holoscope.yml:6:22: at most one of password & password_file must be "
                 "configured");
    expect_error("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n"
                 "    bearer_token: t\n",
                 "holoscope.yml:3:17: at most one of basic_auth, authorization, bearer_token & "
                 "bearer_token_file must be configured");
    expect_error("scrape_configs:\n  - job_name: a\n    authorization: {type: Basic}\n",
                 "holoscope.yml:3:27: authorization type cannot be set to \"basic\", use "
                 "\"basic_auth\" instead");
    expect_error("scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: c.pem}\n",
                 "holoscope.yml:3:17: client cert file \"c.pem\" specified without client key "
                 "file");
    expect_error("scrape_configs:\n  - job_name: a\n    tls_config: {ca: inline}\n",
                 "holoscope.yml:3:18: tls_config: unknown key \"ca\"");
    expect_error("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n"
                 "      - files: ['/etc/*/x.json']\n",
                 "holoscope.yml:4:17: path name \"/etc/*/x.json\" is not valid for file "
                 "discovery");
    expect_error("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n"
                 "      - refresh_interval: 1m\n",
                 "holoscope.yml:4:9: file service discovery config must contain at least one "
                 "path name");
    expect_error("scrape_configs:\n  - job_name: a\n    http_sd_configs:\n"
                 "      - url: ftp://x/\n",
                 "holoscope.yml:4:14: URL scheme must be 'http' or 'https' in \"ftp://x/\"");
    expect_error("scrape_configs:\n  - job_name: a\n    sample_limit: -5\n",
                 "holoscope.yml:3:19: sample_limit: must not be negative");
    expect_error("scrape_configs:\n  - job_name: a\n    honor_labels: yes please\n",
                 "holoscope.yml:3:19: honor_labels: expected true or false, got \"yes please\"");
    expect_error("scrape_configs:\n  - job_name: a\n    backend: ollama\n",
                 "holoscope.yml:3:14: backend: unknown backend \"ollama\" (vllm, sglang, tgi, "
                 "llamacpp, triton, trtllm, dcgm, node, nvml, litellm)");
    expect_error("scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
                 "      - action: hashmod\n        target_label: s\n",
                 "holoscope.yml:4:17: relabel configuration for hashmod requires non-zero "
                 "modulus");
    expect_error("scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n"
                 "      - source_labels: [a]\n        target_label: b\n        regex: '(('\n",
                 "holoscope.yml:6:16: regex \"((\": missing closing parenthesis at offset 2");
    expect_error("scrape_configs: {job_name: a}\n",
                 "holoscope.yml:1:17: scrape_configs: expected a list");
    expect_error("global: [1]\n", "holoscope.yml:1:9: global: expected a map");
}

static void the_legacy_bearer_token_becomes_an_authorization(void **state)
{
    struct scrape_config *cfg =
        parse_ok("scrape_configs:\n  - job_name: a\n    bearer_token_file: /run/token\n");
    assert_true(cfg->jobs[0].has_authorization);
    assert_string_equal(cfg->jobs[0].authorization_type, "Bearer");
    assert_string_equal(cfg->jobs[0].authorization_credentials.file, "/run/token");
    scrape_config_free(cfg);
}

static void a_dump_shows_secrets_as_placeholders_only(void **state)
{
    struct scrape_config *cfg = parse_ok(full_config);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(scrape_config_format(cfg, &b), HS_OK);
    assert_null(strstr(b.p, "hunter2"));
    assert_null(strstr(b.p, "s3cr3t-token"));
    assert_non_null(strstr(b.p, "password: <secret>"));
    assert_non_null(strstr(b.p, "credentials: <secret>"));
    assert_non_null(strstr(b.p, "job_name: \"vllm\""));
    assert_non_null(strstr(b.p, "scrape_interval: 5s"));
    /* the dump is itself a configuration that reads back the same */
    struct scrape_config *again = parse_ok(b.p);
    assert_int_equal(again->njobs, 2);
    assert_int_equal(again->jobs[0].scrape_interval_ms, 5000);
    assert_int_equal(again->jobs[0].relabel_configs.n, 1);
    scrape_config_free(again);
    hs_buf_cleanup(&b);
    scrape_config_free(cfg);
}

static void allocation_failures_while_parsing_are_clean_errors(void **state)
{
    struct hs_ydoc *d = doc_of(full_config);
    for (long n = 0; n < 5000; n++) {
        struct scrape_config *cfg = NULL;
        struct hs_err err;
        hs_alloc_fail_after(n);
        int rc = scrape_config_parse(d, d->root, &cfg, &err);
        hs_alloc_fail_after(-1);
        if (rc == HS_OK) {
            scrape_config_free(cfg);
            break;
        }
        assert_int_equal(rc, HS_ENOMEM);
        assert_null(cfg);
    }
    hs_ydoc_free(d);
}

/* ---- targets ---------------------------------------------------------------- */

static const char *lbl(const struct hs_labels *ls)
{
    static char out[2048];
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ls->n; i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s=%s", i ? "," : "", ls->v[i].name,
                              ls->v[i].value);
    return out;
}

static void targets_get_prometheus_labels_and_instance_defaults_to_the_address(void **state)
{
    struct scrape_config *cfg =
        parse_ok("scrape_configs:\n"
                 "  - job_name: vllm\n"
                 "    scrape_interval: 15s\n"
                 "    params: {module: [http_2xx]}\n"
                 "    static_configs:\n"
                 "      - targets: ['a:8000', 'b:8000']\n"
                 "        labels: {az: eu-1}\n"
                 "    relabel_configs:\n"
                 "      - source_labels: [__address__]\n"
                 "        regex: 'b:.*'\n"
                 "        action: drop\n"
                 "      - source_labels: [__scheme__, __metrics_path__, __scrape_interval__]\n"
                 "        separator: '|'\n"
                 "        target_label: how\n");
    struct scrape_target_list tl;
    scrape_target_list_init(&tl);
    assert_int_equal(scrape_targets_build(&cfg->jobs[0], NULL, 0, &tl, NULL), HS_OK);
    assert_int_equal(tl.n, 2);
    assert_int_equal(tl.nactive, 1);
    const struct scrape_target *t = &tl.v[0];
    assert_false(t->is_dropped);
    assert_string_equal(lbl(&t->labels), "az=eu-1,how=http|/metrics|15s,instance=a:8000,job=vllm");
    assert_string_equal(t->address, "a:8000");
    assert_string_equal(t->scheme, "http");
    assert_string_equal(t->metrics_path, "/metrics");
    assert_int_equal(t->interval_ms, 15000);
    assert_int_equal(t->timeout_ms, 10000);
    assert_string_equal(lbl(&t->params), "module=http_2xx");
    const struct scrape_target *d = &tl.v[1];
    assert_true(d->is_dropped);
    assert_null(d->error);
    assert_string_equal(lbl(&d->discovered),
                        "__address__=b:8000,__metrics_path__=/metrics,__param_module=http_2xx,"
                        "__scheme__=http,__scrape_interval__=15s,__scrape_timeout__=10s,az=eu-1,"
                        "job=vllm");
    scrape_target_list_cleanup(&tl);
    scrape_config_free(cfg);
}

static void relabelling_can_rewrite_address_path_and_interval(void **state)
{
    struct scrape_config *cfg =
        parse_ok("scrape_configs:\n"
                 "  - job_name: j\n"
                 "    model: llama\n"
                 "    static_configs: [{targets: ['h:1']}]\n"
                 "    relabel_configs:\n"
                 "      - {target_label: __address__, replacement: 'proxy:9000'}\n"
                 "      - {target_label: __metrics_path__, replacement: '/probe'}\n"
                 "      - {target_label: __scrape_interval__, replacement: 30s}\n"
                 "      - {target_label: instance, replacement: 'h'}\n");
    struct scrape_target_list tl;
    scrape_target_list_init(&tl);
    assert_int_equal(scrape_targets_build(&cfg->jobs[0], NULL, 0, &tl, NULL), HS_OK);
    assert_int_equal(tl.nactive, 1);
    assert_string_equal(tl.v[0].address, "proxy:9000");
    assert_string_equal(tl.v[0].metrics_path, "/probe");
    assert_int_equal(tl.v[0].interval_ms, 30000);
    assert_string_equal(lbl(&tl.v[0].labels), "instance=h,job=j,model=llama");
    scrape_target_list_cleanup(&tl);
    scrape_config_free(cfg);
}

static void invalid_targets_are_dropped_with_a_reason(void **state)
{
    struct scrape_config *cfg = parse_ok(
        "scrape_configs:\n"
        "  - job_name: j\n"
        "    scrape_interval: 10s\n"
        "    static_configs: [{targets: ['h:1', 'h:2']}]\n"
        "    relabel_configs:\n"
        "      - {source_labels: [__address__], regex: 'h:1', target_label: __address__,"
        " replacement: ''}\n"
        "      - {source_labels: [__address__], regex: 'h:2', target_label: __scrape_timeout__,"
        " replacement: 1m}\n");
    struct scrape_target_list tl;
    scrape_target_list_init(&tl);
    assert_int_equal(scrape_targets_build(&cfg->jobs[0], NULL, 0, &tl, NULL), HS_OK);
    assert_int_equal(tl.nactive, 0);
    assert_int_equal(tl.n, 2);
    assert_string_equal(tl.v[0].error, "no address");
    assert_string_equal(tl.v[1].error, "__scrape_timeout__ greater than __scrape_interval__");
    scrape_target_list_cleanup(&tl);
    scrape_config_free(cfg);
}

static void duplicate_targets_appear_once_and_discovered_groups_follow_static_ones(void **state)
{
    struct scrape_config *cfg = parse_ok(
        "scrape_configs:\n  - job_name: j\n    static_configs: [{targets: ['h:1', 'h:1']}]\n");
    const char *tg[] = {"sd:1"};
    struct hs_label gl[] = {{"__meta_filepath", "/x.json"}, {"team", "ml"}};
    struct scrape_target_group g = {tg, 1, {2, gl}, "/x.json"};
    struct scrape_target_list tl;
    scrape_target_list_init(&tl);
    assert_int_equal(scrape_targets_build(&cfg->jobs[0], &g, 1, &tl, NULL), HS_OK);
    assert_int_equal(tl.nactive, 2);
    assert_string_equal(lbl(&tl.v[0].labels), "instance=h:1,job=j");
    assert_string_equal(lbl(&tl.v[1].labels), "instance=sd:1,job=j,team=ml");
    /* building again replaces the previous result */
    assert_int_equal(scrape_targets_build(&cfg->jobs[0], NULL, 0, &tl, NULL), HS_OK);
    assert_int_equal(tl.n, 1);
    scrape_target_list_cleanup(&tl);
    scrape_config_free(cfg);
}

static void building_targets_survives_allocation_failures(void **state)
{
    struct scrape_config *cfg = parse_ok(full_config);
    for (long n = 0; n < 2000; n++) {
        struct scrape_target_list tl;
        scrape_target_list_init(&tl);
        hs_alloc_fail_after(n);
        int rc = scrape_targets_build(&cfg->jobs[0], NULL, 0, &tl, NULL);
        hs_alloc_fail_after(-1);
        if (rc == HS_OK) {
            assert_int_equal(tl.nactive, 2);
            scrape_target_list_cleanup(&tl);
            break;
        }
        assert_int_equal(rc, HS_ENOMEM);
        assert_int_equal(tl.n, 0);
        scrape_target_list_cleanup(&tl);
    }
    scrape_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_pasted_prometheus_config_is_read_with_every_key),
        cmocka_unit_test(defaults_are_those_of_prometheus),
        cmocka_unit_test(other_top_level_keys_are_left_to_the_caller),
        cmocka_unit_test(every_config_error_names_file_line_and_column),
        cmocka_unit_test(the_legacy_bearer_token_becomes_an_authorization),
        cmocka_unit_test(a_dump_shows_secrets_as_placeholders_only),
        cmocka_unit_test(allocation_failures_while_parsing_are_clean_errors),
        cmocka_unit_test(targets_get_prometheus_labels_and_instance_defaults_to_the_address),
        cmocka_unit_test(relabelling_can_rewrite_address_path_and_interval),
        cmocka_unit_test(invalid_targets_are_dropped_with_a_reason),
        cmocka_unit_test(duplicate_targets_appear_once_and_discovered_groups_follow_static_ones),
        cmocka_unit_test(building_targets_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
