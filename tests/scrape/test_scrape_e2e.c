/*
 * test_scrape_e2e.c - the whole scrape path over real sockets: the http
 * module's server in-process serves the exposition fixtures (and a few bad
 * answers), the manager scrapes it through the HTTP fetcher every 100 ms
 * into a real store in a temp dir, and the test reads the result back
 * through a querier and the targets API JSON.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "../http/http_test_client.h"
#include "scrape/scrape_manager.h"
#include "tsdb/tsdb.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct served {
    char *vllm, *dcgm;
    size_t vllm_len, dcgm_len;
    char *big;
    size_t big_len;
};

static struct served sv;

static char *fixture(const char *name, size_t *len)
{
    char path[4096];
    const char *sh = getenv("HS_SHARED_DIR");
    snprintf(path, sizeof(path), "%s/fixtures/exposition/%s", sh ? sh : "/work/shared", name);
    char *p = hs_read_file(path, 0, len, NULL);
    assert_non_null(p);
    return p;
}

static void h_vllm(struct http_request *r, void *arg)
{
    (void)arg;
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", sv.vllm, sv.vllm_len);
}

static void h_dcgm(struct http_request *r, void *arg)
{
    (void)arg;
    http_respond(r, 200, "text/plain; version=0.0.4", sv.dcgm, sv.dcgm_len);
}

static void h_html(struct http_request *r, void *arg)
{
    (void)arg;
    static const char page[] = "<!DOCTYPE html>\n<html><body>login</body></html>\n";
    http_respond(r, 200, "text/html", page, sizeof(page) - 1);
}

static void h_500(struct http_request *r, void *arg)
{
    (void)arg;
    http_respond_error(r, 500, "boom");
}

static void h_big(struct http_request *r, void *arg)
{
    (void)arg;
    http_respond(r, 200, "text/plain; version=0.0.4", sv.big, sv.big_len);
}

static void h_hang(struct http_request *r, void *arg)
{
    (void)r; /* held and never answered; the server frees it at the end */
    (void)arg;
}

static void setup_routes(struct http_server *s, void *arg)
{
    (void)arg;
    assert_int_equal(http_server_route(s, "GET", "/vllm", "vllm", h_vllm, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/dcgm", "dcgm", h_dcgm, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/html", "html", h_html, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/err", "err", h_500, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/big", "big", h_big, NULL), HS_OK);
    assert_int_equal(http_server_route(s, "GET", "/hang", "hang", h_hang, NULL), HS_OK);
}

static size_t count(struct tsdb *db, const char *l1, const char *v1, const char *l2, const char *v2)
{
    struct tsdb_matcher m[2];
    struct hs_err err;
    size_t n = 1;
    assert_int_equal(tsdb_matcher_init(&m[0], TSDB_MATCH_EQ, l1, v1, &err), HS_OK);
    if (l2 != NULL) {
        assert_int_equal(tsdb_matcher_init(&m[1], TSDB_MATCH_EQ, l2, v2, &err), HS_OK);
        n = 2;
    }
    struct tsdb_querier *q = tsdb_querier_new(db, 0, INT64_MAX / 2);
    struct tsdb_series_set *s = NULL;
    assert_int_equal(tsdb_querier_select(q, m, n, 0, &s, &err), HS_OK);
    size_t c = tsdb_series_set_len(s);
    tsdb_series_set_free(s);
    tsdb_querier_free(q);
    for (size_t i = 0; i < n; i++)
        tsdb_matcher_cleanup(&m[i]);
    return c;
}

static void wait_health(struct scrape_manager *m, const char *job, const char *inst, int want,
                        struct scrape_target_health *h)
{
    for (int i = 0; i < 500; i++) {
        if (scrape_manager_target_health(m, job, inst, h) == HS_OK && h->health == want)
            return;
        usleep(10000);
    }
    fail_msg("target %s/%s never reached health %d (last error: %s)", job, inst, want,
             h->last_error);
}

static void e2e_scrapes_fixtures_over_http_into_the_store(void **state)
{
    (void)state;
    memset(&sv, 0, sizeof(sv));
    sv.vllm = fixture("vllm.prom", &sv.vllm_len);
    sv.dcgm = fixture("dcgm.prom", &sv.dcgm_len);
    sv.big_len = 256u << 10;
    sv.big = hs_malloc(sv.big_len);
    assert_non_null(sv.big);
    for (size_t i = 0; i < sv.big_len; i += 16)
        memcpy(sv.big + i, "# padding line \n", 16);

    struct http_server_config sc;
    http_server_config_defaults(&sc);
    struct hts srv;
    assert_int_equal(hts_start(&srv, &sc, setup_routes, NULL), 0);

    /* the client is a colleague module: when it cannot fetch a plain page
     * from the in-process server, this test has nothing to stand on */
    {
        char url[128], *body = NULL;
        int st = 0;
        size_t bl = 0;
        struct hs_err perr;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/vllm", srv.port);
        int rc = http_client_fetch_sync(url, 5000, 0, &st, &body, &bl, &perr);
        hs_free(body);
        if (rc != HS_OK || st != 200 || bl != sv.vllm_len) {
            fprintf(stderr, "SKIP: the http client cannot fetch from the in-process server: %s\n",
                    rc != HS_OK ? perr.msg : "wrong status or body");
            hts_stop(&srv);
            hs_free(sv.vllm);
            hs_free(sv.dcgm);
            hs_free(sv.big);
            skip();
        }
    }
    char *dir = hs_test_tmpdir("e2e");
    struct tsdb_options o;
    tsdb_options_defaults(&o);
    o.wal_fsync = TSDB_FSYNC_NONE;
    o.maintain_interval_ms = 0;
    struct hs_err err;
    struct tsdb *db = tsdb_open(dir, &o, &err);
    assert_non_null(db);

    struct scrape_fetcher fetcher;
    assert_int_equal(scrape_fetcher_http_new(NULL, &fetcher, &err), HS_OK);
    struct scrape_manager_options mo = {0};
    mo.fetcher = fetcher;
    mo.db = db;
    struct scrape_manager *m = NULL;
    assert_int_equal(scrape_manager_new(&mo, &m, &err), HS_OK);

    /* a port nobody listens on: bind, read the port, close */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    int dead_port = ntohs(sa.sin_port);
    close(fd);

    char yaml[4096];
    int p = srv.port;
    snprintf(yaml, sizeof(yaml),
             "scrape_configs:\n"
             "  - job_name: vllm\n"
             "    scrape_interval: 100ms\n"
             "    scrape_timeout: 90ms\n"
             "    metrics_path: /vllm\n"
             "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
             "  - job_name: dcgm\n"
             "    scrape_interval: 100ms\n"
             "    scrape_timeout: 90ms\n"
             "    metrics_path: /dcgm\n"
             "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
             "  - job_name: bad\n"
             "    scrape_interval: 100ms\n"
             "    scrape_timeout: 80ms\n"
             "    body_size_limit: 1MB\n"
             "    static_configs:\n"
             "      - targets: ['127.0.0.1:%d']\n"
             "        labels: {kind: refused}\n"
             "    relabel_configs:\n"
             "      - {target_label: __metrics_path__, replacement: /x}\n"
             "  - job_name: html\n"
             "    scrape_interval: 100ms\n"
             "    scrape_timeout: 80ms\n"
             "    metrics_path: /html\n"
             "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
             "  - job_name: err\n"
             "    scrape_interval: 100ms\n"
             "    scrape_timeout: 80ms\n"
             "    metrics_path: /err\n"
             "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
             "  - job_name: big\n"
             "    scrape_interval: 100ms\n"
             "    scrape_timeout: 80ms\n"
             "    body_size_limit: 64KB\n"
             "    metrics_path: /big\n"
             "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
             "  - job_name: hang\n"
             "    scrape_interval: 100ms\n"
             "    scrape_timeout: 50ms\n"
             "    metrics_path: /hang\n"
             "    static_configs: [{targets: ['127.0.0.1:%d']}]\n",
             p, p, dead_port, p, p, p, p);
    struct hs_ydoc *doc = hs_ydoc_parse(yaml, strlen(yaml), "e2e.yml", &err);
    assert_non_null(doc);
    struct scrape_config *cfg = NULL;
    if (scrape_config_parse(doc, doc->root, &cfg, &err) != HS_OK)
        fail_msg("%s", err.msg);
    hs_ydoc_free(doc);
    assert_int_equal(scrape_manager_apply(m, cfg, &err), HS_OK);

    char inst[64];
    snprintf(inst, sizeof(inst), "127.0.0.1:%d", p);
    struct scrape_target_health h;
    wait_health(m, "vllm", inst, SCRAPE_HEALTH_UP, &h);
    wait_health(m, "dcgm", inst, SCRAPE_HEALTH_UP, &h);
    /* let a few more scrapes land: steady state by ref */
    usleep(350000);
    assert_int_equal(scrape_manager_target_health(m, "vllm", inst, &h), HS_OK);
    assert_int_equal(h.backend, SCRAPE_BACKEND_VLLM);

    assert_int_equal(count(db, "__name__", "vllm:num_requests_running", "backend", "vllm"), 1);
    assert_int_equal(count(db, "__name__", "llm_server_requests_running", "model",
                           "meta-llama/Llama-3.1-8B-Instruct"),
                     1);
    assert_true(count(db, "__name__", "hw_gpu_utilization_ratio", "backend", "dcgm") >= 2);
    assert_int_equal(count(db, "__name__", "up", "job", "vllm"), 1);

    /* samples from several scrapes, 100 ms apart */
    struct tsdb_matcher mm;
    assert_int_equal(tsdb_matcher_init(&mm, TSDB_MATCH_EQ, "__name__", "up", &err), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(db, 0, INT64_MAX / 2);
    struct tsdb_series_set *s = NULL;
    assert_int_equal(tsdb_querier_select(q, &mm, 1, 0, &s, &err), HS_OK);
    size_t up_samples = 0;
    while (tsdb_series_set_next(s)) {
        if (strcmp(hs_labels_get(tsdb_series_set_labels(s), "job"), "vllm") != 0)
            continue;
        struct tsdb_iter *it = tsdb_series_set_iter(s);
        while (tsdb_iter_next(it))
            up_samples++;
    }
    tsdb_series_set_free(s);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&mm);
    assert_true(up_samples >= 3);

    /* bad targets: each down with a precise error, the rest keeps going */
    char dead[64];
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", dead_port);
    wait_health(m, "bad", dead, SCRAPE_HEALTH_DOWN, &h);
    assert_non_null(strstr(h.last_error, "refused"));
    wait_health(m, "html", inst, SCRAPE_HEALTH_DOWN, &h);
    assert_non_null(strstr(h.last_error, "line 1"));
    wait_health(m, "err", inst, SCRAPE_HEALTH_DOWN, &h);
    assert_string_equal(h.last_error, "server returned HTTP status 500 Internal Server Error");
    wait_health(m, "big", inst, SCRAPE_HEALTH_DOWN, &h);
    assert_non_null(strstr(h.last_error, "body size limit exceeded"));
    wait_health(m, "hang", inst, SCRAPE_HEALTH_DOWN, &h);
    assert_true(h.last_error[0] != '\0');

    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(scrape_manager_targets_json(m, "active", &b, &err), HS_OK);
    assert_non_null(strstr(b.p, "\"scrapePool\":\"vllm\""));
    assert_non_null(strstr(b.p, "\"health\":\"up\""));
    hs_buf_cleanup(&b);
    struct scrape_stats st;
    scrape_manager_get_stats(m, &st);
    assert_int_equal(st.targets_up + st.targets_down + st.targets_unknown, 7);
    assert_true(st.targets_down >= 5); /* the five bad ones stay down */
    assert_true(st.cache_hits > st.cache_misses);

    scrape_manager_free(m);
    scrape_fetcher_http_free(&fetcher);
    /* the manager's stop marked everything stale */
    assert_int_equal(count(db, "__name__", "vllm:num_requests_running", NULL, NULL), 1);
    tsdb_close(db);
    hts_stop(&srv);
    hs_test_rmdir(dir);
    free(dir);
    hs_free(sv.vllm);
    hs_free(sv.dcgm);
    hs_free(sv.big);
}

int main(void)
{
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(e2e_scrapes_fixtures_over_http_into_the_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
