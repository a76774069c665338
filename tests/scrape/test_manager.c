/*
 * test_manager.c - the scrape manager on its own thread with a fake
 * fetcher (answers from a table, synchronously): scheduling, health,
 * reload (kept, removed and new targets), file_sd refresh and the
 * /api/v1/targets JSON.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "scrape/scrape_manager.h"
#include "tsdb/tsdb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fake {
    pthread_mutex_t mu;
    int calls;
    int calls_by_port[10];
    char last_accept[256];
    bool is_shut;
    char sd_body[256]; /* what the http SD endpoint (port 9000) answers */
    int sd_status;
    const char *sd_type;
};

/* Port 9000+i answers "m{p="i"} i"; 9009 is refused; 9008 answers 503. */
static int fake_fetch(void *arg, struct event_base *base, const struct scrape_fetch_request *req,
                      scrape_fetch_done_fn *done, void *done_arg)
{
    (void)base;
    struct fake *f = arg;
    const char *p = strstr(req->url, ":90");
    int port = p != NULL ? p[4] - '0' : 0;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    if (port >= 0 && port < 10)
        f->calls_by_port[port]++;
    snprintf(f->last_accept, sizeof(f->last_accept), "%s", req->accept);
    pthread_mutex_unlock(&f->mu);
    char body[256];
    snprintf(body, sizeof(body), "# TYPE m gauge\nm{p=\"%d\"} %d\n", port, port);
    struct scrape_fetch_result r = {0};
    r.code = HS_OK;
    r.status = 200;
    r.content_type = "text/plain; version=0.0.4";
    /* 9005 and 9007: TGI (9007's /info fails); 9006: llama.cpp */
    bool info = strstr(req->url, "/info") != NULL, props = strstr(req->url, "/props") != NULL;
    if ((port == 5 || port == 7) && !info)
        snprintf(body, sizeof(body),
                 "# TYPE tgi_request_count counter\ntgi_request_count 4\n"
                 "# TYPE tgi_queue_size gauge\ntgi_queue_size 2\n");
    else if (port == 5 && info)
        snprintf(body, sizeof(body), "{\"model_id\":\"mistralai/Mistral-7B-Instruct-v0.3\"}");
    else if (port == 7 && info)
        r.status = 500;
    else if (port == 6 && !props)
        snprintf(body, sizeof(body),
                 "# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total 9\n"
                 "# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 1\n");
    else if (port == 6 && props)
        snprintf(body, sizeof(body),
                 "{\"model_alias\":\"\",\"model_path\":"
                 "\"/models/qwen2.5-7b-q4_k_m.gguf\"}");
    r.body = body;
    r.body_len = strlen(body);
    if (port == 0) {
        pthread_mutex_lock(&f->mu);
        snprintf(body, sizeof(body), "%s", f->sd_body);
        r.status = f->sd_status;
        r.content_type = f->sd_type;
        pthread_mutex_unlock(&f->mu);
        r.body_len = strlen(body);
    }
    if (port == 9) {
        r.code = HS_EIO;
        r.error = "connect 127.0.0.1:9009: connection refused";
    } else if (port == 8) {
        r.status = 503;
    }
    done(done_arg, &r);
    return HS_OK;
}

static void fake_shutdown(void *arg)
{
    struct fake *f = arg;
    f->is_shut = true;
}

struct env {
    char *dir;
    struct tsdb *db;
    struct fake fake;
    struct scrape_manager *m;
};

static void env_open(struct env *e)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->fake.mu, NULL);
    e->dir = hs_test_tmpdir("mgr");
    struct tsdb_options o;
    tsdb_options_defaults(&o);
    o.wal_fsync = TSDB_FSYNC_NONE;
    o.maintain_interval_ms = 0;
    struct hs_err err;
    e->db = tsdb_open(e->dir, &o, &err);
    assert_non_null(e->db);
    struct scrape_manager_options mo = {0};
    mo.fetcher.fetch = fake_fetch;
    mo.fetcher.shutdown = fake_shutdown;
    mo.fetcher.arg = &e->fake;
    mo.db = e->db;
    mo.disable_jitter = true;
    assert_int_equal(scrape_manager_new(&mo, &e->m, &err), HS_OK);
}

static void env_close(struct env *e)
{
    scrape_manager_free(e->m);
    assert_true(e->fake.is_shut);
    tsdb_close(e->db);
    hs_test_rmdir(e->dir);
    free(e->dir);
    pthread_mutex_destroy(&e->fake.mu);
}

static struct scrape_config *config(const char *yaml)
{
    struct hs_err err;
    struct hs_ydoc *d = hs_ydoc_parse(yaml, strlen(yaml), "t.yml", &err);
    assert_non_null(d);
    struct scrape_config *c = NULL;
    int rc = scrape_config_parse(d, d->root, &c, &err);
    if (rc != HS_OK)
        fail_msg("%s", err.msg);
    hs_ydoc_free(d);
    return c;
}

static int calls_of(struct env *e, int port)
{
    pthread_mutex_lock(&e->fake.mu);
    int n = e->fake.calls_by_port[port];
    pthread_mutex_unlock(&e->fake.mu);
    return n;
}

/* Waits (up to 5 s) until port has been scraped at least n more times than 'base'. */
static void wait_calls(struct env *e, int port, int n)
{
    int base = calls_of(e, port);
    for (int i = 0; i < 500 && calls_of(e, port) < base + n; i++)
        usleep(10000);
    assert_true(calls_of(e, port) >= base + n);
}

static bool last_value(struct env *e, const char *name, const char *l, const char *v, double *out)
{
    struct tsdb_matcher m[2];
    struct hs_err err;
    assert_int_equal(tsdb_matcher_init(&m[0], TSDB_MATCH_EQ, "__name__", name, &err), HS_OK);
    assert_int_equal(tsdb_matcher_init(&m[1], TSDB_MATCH_EQ, l, v, &err), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(e->db, 0, INT64_MAX / 2);
    struct tsdb_series_set *s = NULL;
    assert_int_equal(tsdb_querier_select(q, m, 2, 0, &s, &err), HS_OK);
    bool found = false;
    if (tsdb_series_set_next(s)) {
        struct tsdb_iter *it = tsdb_series_set_iter(s);
        while (tsdb_iter_next(it)) {
            int64_t t;
            tsdb_iter_at(it, &t, out);
            found = true;
        }
    }
    tsdb_series_set_free(s);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m[0]);
    tsdb_matcher_cleanup(&m[1]);
    return found;
}

static bool is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b == TSDB_STALE_NAN_BITS;
}

static const char *CFG_A = "scrape_configs:\n"
                           "  - job_name: a\n"
                           "    scrape_interval: 50ms\n"
                           "    scrape_timeout: 40ms\n"
                           "    static_configs:\n"
                           "      - targets: ['127.0.0.1:9001', '127.0.0.1:9002', "
                           "'127.0.0.1:9009', '127.0.0.1:9008']\n"
                           "    relabel_configs:\n"
                           "      - source_labels: [__address__]\n"
                           "        regex: '.*:9008'\n"
                           "        action: drop\n";

static void manager_scrapes_targets_on_schedule_and_reports_health(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    struct hs_err err;
    assert_int_equal(scrape_manager_apply(e.m, config(CFG_A), &err), HS_OK);
    assert_int_equal(scrape_manager_ntargets(e.m), 3);
    wait_calls(&e, 1, 3);
    wait_calls(&e, 9, 2);
    assert_int_equal(calls_of(&e, 8), 0);
    pthread_mutex_lock(&e.fake.mu);
    assert_non_null(strstr(e.fake.last_accept, "openmetrics"));
    pthread_mutex_unlock(&e.fake.mu);
    double v;
    assert_true(last_value(&e, "m", "p", "1", &v) && v == 1);
    assert_true(last_value(&e, "up", "instance", "127.0.0.1:9002", &v) && v == 1);
    assert_true(last_value(&e, "up", "instance", "127.0.0.1:9009", &v) && v == 0);
    struct scrape_target_health h;
    assert_int_equal(scrape_manager_target_health(e.m, "a", "127.0.0.1:9009", &h), HS_OK);
    assert_int_equal(h.health, SCRAPE_HEALTH_DOWN);
    assert_string_equal(h.last_error, "connect 127.0.0.1:9009: connection refused");
    assert_int_equal(scrape_manager_target_health(e.m, "a", "127.0.0.1:9001", &h), HS_OK);
    assert_int_equal(h.health, SCRAPE_HEALTH_UP);
    assert_int_equal(scrape_manager_target_health(e.m, "a", "nope:1", &h), HS_ENOTFOUND);
    struct scrape_stats st;
    scrape_manager_get_stats(e.m, &st);
    assert_int_equal(st.targets_up, 2);
    assert_int_equal(st.targets_down, 1);
    assert_true(st.scrapes_failed >= 2);
    assert_true(st.cache_hits >= 2);
    env_close(&e);
}

static void manager_writes_the_targets_api_json(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    struct hs_err err;
    assert_int_equal(scrape_manager_apply(e.m, config(CFG_A), &err), HS_OK);
    wait_calls(&e, 9, 1);
    wait_calls(&e, 1, 1);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(scrape_manager_targets_json(e.m, NULL, &b, &err), HS_OK);
    assert_true(hs_has_prefix(b.p, "{\"activeTargets\":[{\"discoveredLabels\":{"));
    assert_non_null(strstr(b.p, "\"scrapeUrl\":\"http://127.0.0.1:9001/metrics\""));
    assert_non_null(strstr(b.p, "\"labels\":{\"instance\":\"127.0.0.1:9001\",\"job\":\"a\"}"));
    assert_non_null(strstr(b.p, "\"health\":\"up\""));
    assert_non_null(strstr(b.p, "\"health\":\"down\""));
    assert_non_null(strstr(b.p, "\"lastError\":\"connect 127.0.0.1:9009: connection refused\""));
    assert_non_null(strstr(b.p, "\"scrapeInterval\":\"50ms\",\"scrapeTimeout\":\"40ms\""));
    assert_non_null(strstr(b.p, "\"droppedTargets\":[{\"discoveredLabels\":{\"__address__\":"
                                "\"127.0.0.1:9008\""));
    hs_buf_reset(&b);
    assert_int_equal(scrape_manager_targets_json(e.m, "dropped", &b, &err), HS_OK);
    assert_true(hs_has_prefix(b.p, "{\"activeTargets\":[],\"droppedTargets\":[{"));
    hs_buf_reset(&b);
    assert_int_equal(scrape_manager_targets_json(e.m, "active", &b, &err), HS_OK);
    assert_non_null(strstr(b.p, "\"droppedTargets\":[]}"));
    hs_buf_reset(&b);
    assert_int_equal(scrape_manager_targets_json(e.m, "bogus", &b, &err), HS_EINVAL);
    assert_string_equal(err.msg, "invalid state bogus: must be active, dropped or any");
    assert_int_equal(b.len, 0);
    hs_buf_cleanup(&b);
    env_close(&e);
}

static void manager_reload_keeps_unchanged_targets_and_stales_removed_ones(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    struct hs_err err;
    assert_int_equal(scrape_manager_apply(e.m, config(CFG_A), &err), HS_OK);
    wait_calls(&e, 1, 2);
    wait_calls(&e, 2, 2);
    /* same job settings; 9002 removed, 9003 added */
    assert_int_equal(scrape_manager_apply(e.m,
                                          config("scrape_configs:\n"
                                                 "  - job_name: a\n"
                                                 "    scrape_interval: 50ms\n"
                                                 "    scrape_timeout: 40ms\n"
                                                 "    static_configs:\n"
                                                 "      - targets: ['127.0.0.1:9001', "
                                                 "'127.0.0.1:9003', '127.0.0.1:9009', "
                                                 "'127.0.0.1:9008']\n"
                                                 "    relabel_configs:\n"
                                                 "      - source_labels: [__address__]\n"
                                                 "        regex: '.*:9008'\n"
                                                 "        action: drop\n"),
                                          &err),
                     HS_OK);
    assert_int_equal(scrape_manager_ntargets(e.m), 3);
    /* kept loops still know their health; the new one has not scraped yet */
    struct scrape_target_health h;
    assert_int_equal(scrape_manager_target_health(e.m, "a", "127.0.0.1:9001", &h), HS_OK);
    assert_int_equal(h.health, SCRAPE_HEALTH_UP);
    assert_int_equal(scrape_manager_target_health(e.m, "a", "127.0.0.1:9009", &h), HS_OK);
    assert_int_equal(h.health, SCRAPE_HEALTH_DOWN);
    double v;
    assert_true(last_value(&e, "m", "p", "2", &v) && is_stale(v));
    assert_true(last_value(&e, "up", "instance", "127.0.0.1:9002", &v) && is_stale(v));
    wait_calls(&e, 3, 2);
    wait_calls(&e, 1, 2);
    /* the kept loop kept its cache: no series added after the reload */
    assert_true(last_value(&e, "scrape_series_added", "instance", "127.0.0.1:9001", &v) && v == 0);
    assert_true(last_value(&e, "m", "p", "3", &v) && v == 3);
    /* a changed job setting restarts its targets */
    assert_int_equal(scrape_manager_apply(e.m,
                                          config("scrape_configs:\n"
                                                 "  - job_name: a\n"
                                                 "    scrape_interval: 60ms\n"
                                                 "    scrape_timeout: 40ms\n"
                                                 "    static_configs:\n"
                                                 "      - targets: ['127.0.0.1:9001']\n"),
                                          &err),
                     HS_OK);
    assert_int_equal(scrape_manager_ntargets(e.m), 1);
    wait_calls(&e, 1, 2);
    assert_true(last_value(&e, "m", "p", "3", &v) && is_stale(v));
    /* an empty configuration stops everything */
    assert_int_equal(scrape_manager_apply(e.m, config("scrape_configs: []\n"), &err), HS_OK);
    assert_int_equal(scrape_manager_ntargets(e.m), 0);
    assert_true(last_value(&e, "m", "p", "1", &v) && is_stale(v));
    env_close(&e);
}

static void manager_follows_file_sd_changes(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    char path[4096], yaml[8192];
    snprintf(path, sizeof(path), "%s/sd.json", e.dir);
    struct hs_err err;
    const char *one = "[{\"targets\":[\"127.0.0.1:9004\"],\"labels\":{\"zone\":\"z1\"}}]";
    assert_int_equal(hs_write_file_atomic(path, one, strlen(one), &err), HS_OK);
    snprintf(yaml, sizeof(yaml),
             "scrape_configs:\n"
             "  - job_name: sd\n"
             "    scrape_interval: 50ms\n"
             "    scrape_timeout: 40ms\n"
             "    file_sd_configs:\n"
             "      - files: ['%s']\n"
             "        refresh_interval: 50ms\n",
             path);
    assert_int_equal(scrape_manager_apply(e.m, config(yaml), &err), HS_OK);
    assert_int_equal(scrape_manager_ntargets(e.m), 1);
    wait_calls(&e, 4, 2);
    double v;
    assert_true(last_value(&e, "m", "zone", "z1", &v) && v == 4);
    usleep(20000); /* a different mtime */
    const char *two = "[{\"targets\":[\"127.0.0.1:9005\",\"127.0.0.1:9006\"],"
                      "\"labels\":{\"zone\":\"z2\"}}]";
    assert_int_equal(hs_write_file_atomic(path, two, strlen(two), &err), HS_OK);
    for (int i = 0; i < 500 && scrape_manager_ntargets(e.m) != 2; i++)
        usleep(10000);
    assert_int_equal(scrape_manager_ntargets(e.m), 2);
    wait_calls(&e, 5, 1);
    wait_calls(&e, 6, 1);
    assert_true(last_value(&e, "m", "p", "4", &v) && is_stale(v));
    env_close(&e);
}

/* The value of label 'want' on the newest series named 'name' with l=v. */
static bool label_of(struct env *e, const char *name, const char *l, const char *v,
                     const char *want, char *out, size_t n)
{
    struct tsdb_matcher m[2];
    struct hs_err err;
    assert_int_equal(tsdb_matcher_init(&m[0], TSDB_MATCH_EQ, "__name__", name, &err), HS_OK);
    assert_int_equal(tsdb_matcher_init(&m[1], TSDB_MATCH_EQ, l, v, &err), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(e->db, 0, INT64_MAX / 2);
    struct tsdb_series_set *s = NULL;
    assert_int_equal(tsdb_querier_select(q, m, 2, 0, &s, &err), HS_OK);
    bool found = false;
    while (tsdb_series_set_next(s)) {
        const char *x = hs_labels_get(tsdb_series_set_labels(s), want);
        if (x != NULL) {
            snprintf(out, n, "%s", x);
            found = true;
        }
    }
    tsdb_series_set_free(s);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m[0]);
    tsdb_matcher_cleanup(&m[1]);
    return found;
}

static void engines_without_model_labels_get_it_from_their_info_endpoint(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    struct hs_err err;
    assert_int_equal(scrape_manager_apply(e.m,
                                          config("scrape_configs:\n"
                                                 "  - job_name: eng\n"
                                                 "    scrape_interval: 50ms\n"
                                                 "    scrape_timeout: 40ms\n"
                                                 "    static_configs:\n"
                                                 "      - targets: ['127.0.0.1:9005', "
                                                 "'127.0.0.1:9006', '127.0.0.1:9007']\n"),
                                          &err),
                     HS_OK);
    char model[256] = "";
    bool tgi = false, llama = false;
    for (int i = 0; i < 300 && !(tgi && llama); i++) {
        usleep(10000);
        tgi = label_of(&e, "tgi_request_count", "instance", "127.0.0.1:9005", "model", model,
                       sizeof(model)) &&
              strcmp(model, "mistralai/Mistral-7B-Instruct-v0.3") == 0;
        llama = label_of(&e, "llamacpp:prompt_tokens_total", "instance", "127.0.0.1:9006", "model",
                         model, sizeof(model)) &&
                strcmp(model, "/models/qwen2.5-7b-q4_k_m.gguf") == 0;
    }
    assert_true(tgi);
    assert_true(llama);
    /* the unified series carry it too; the series from before have ended */
    assert_true(label_of(&e, "llm_server_requests_running", "instance", "127.0.0.1:9006", "model",
                         model, sizeof(model)));
    assert_string_equal(model, "/models/qwen2.5-7b-q4_k_m.gguf");
    /* /info failing leaves the series without a model, and the target up */
    wait_calls(&e, 7, 3);
    assert_false(label_of(&e, "tgi_request_count", "instance", "127.0.0.1:9007", "model", model,
                          sizeof(model)));
    double v;
    assert_true(last_value(&e, "up", "instance", "127.0.0.1:9007", &v) && v == 1);
    env_close(&e);
}

static void sd_answer(struct env *e, int status, const char *type, const char *body)
{
    pthread_mutex_lock(&e->fake.mu);
    e->fake.sd_status = status;
    e->fake.sd_type = type;
    snprintf(e->fake.sd_body, sizeof(e->fake.sd_body), "%s", body);
    pthread_mutex_unlock(&e->fake.mu);
}

static bool has_target(struct env *e, const char *job, const char *inst)
{
    struct scrape_target_health h;
    return scrape_manager_target_health(e->m, job, inst, &h) == HS_OK;
}

static void http_sd_targets_follow_the_endpoint_and_survive_its_failures(void **state)
{
    (void)state;
    struct env e;
    env_open(&e);
    struct hs_err err;
    sd_answer(&e, 200, "application/json",
              "[{\"targets\":[\"127.0.0.1:9001\"],\"labels\":{\"zone\":\"a\"}}]");
    assert_int_equal(scrape_manager_apply(e.m,
                                          config("scrape_configs:\n"
                                                 "  - job_name: h\n"
                                                 "    scrape_interval: 50ms\n"
                                                 "    scrape_timeout: 40ms\n"
                                                 "    http_sd_configs:\n"
                                                 "      - url: http://127.0.0.1:9000/sd\n"
                                                 "        refresh_interval: 100ms\n"),
                                          &err),
                     HS_OK);
    for (int i = 0; i < 300 && !has_target(&e, "h", "127.0.0.1:9001"); i++)
        usleep(10000);
    assert_true(has_target(&e, "h", "127.0.0.1:9001"));
    wait_calls(&e, 1, 2);
    double v;
    assert_true(last_value(&e, "m", "zone", "a", &v) && v == 1);
    /* the list changes: the new target comes, the old one goes */
    sd_answer(&e, 200, "application/json; charset=utf-8",
              "[{\"targets\":[\"127.0.0.1:9002\"],\"labels\":{\"zone\":\"b\"}}]");
    for (int i = 0; i < 300 && has_target(&e, "h", "127.0.0.1:9001"); i++)
        usleep(10000);
    assert_false(has_target(&e, "h", "127.0.0.1:9001"));
    assert_true(has_target(&e, "h", "127.0.0.1:9002"));
    /* failures keep the last good targets and are counted */
    struct scrape_stats st;
    scrape_manager_get_stats(e.m, &st);
    uint64_t failed = st.sd_http_failures;
    assert_int_equal(failed, 0);
    sd_answer(&e, 500, "text/plain", "boom");
    wait_calls(&e, 0, 2);
    sd_answer(&e, 200, "text/html", "<html>");
    wait_calls(&e, 0, 2);
    sd_answer(&e, 200, "application/json", "[{\"targets\": 7}]");
    wait_calls(&e, 0, 2);
    scrape_manager_get_stats(e.m, &st);
    assert_true(st.sd_http_failures >= 6);
    assert_true(st.sd_http_refreshes >= st.sd_http_failures + 2);
    assert_true(has_target(&e, "h", "127.0.0.1:9002"));
    wait_calls(&e, 2, 2);
    /* a reload that keeps the URL keeps the targets; dropping it removes them */
    assert_int_equal(scrape_manager_apply(e.m,
                                          config("scrape_configs:\n"
                                                 "  - job_name: h\n"
                                                 "    scrape_interval: 50ms\n"
                                                 "    static_configs:\n"
                                                 "      - targets: ['127.0.0.1:9003']\n"),
                                          &err),
                     HS_OK);
    assert_false(has_target(&e, "h", "127.0.0.1:9002"));
    assert_true(has_target(&e, "h", "127.0.0.1:9003"));
    env_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(manager_scrapes_targets_on_schedule_and_reports_health),
        cmocka_unit_test(manager_writes_the_targets_api_json),
        cmocka_unit_test(manager_reload_keeps_unchanged_targets_and_stales_removed_ones),
        cmocka_unit_test(manager_follows_file_sd_changes),
        cmocka_unit_test(engines_without_model_labels_get_it_from_their_info_endpoint),
        cmocka_unit_test(http_sd_targets_follow_the_endpoint_and_survive_its_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
