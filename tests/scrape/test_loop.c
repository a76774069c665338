/*
 * test_loop.c - the scrape loop against a real store in a temp dir, fed by
 * hand-made fetch results (no network): detection and labels on the engine
 * fixtures, unified samples, staleness, report series, limits,
 * honor_labels, metric relabelling, the series cache, timestamps and bad
 * responses.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "scrape/scrape_manager.h"
#include "tsdb/tsdb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct fx {
    char *dir;
    struct tsdb *db;
    struct hs_ydoc *doc;
    struct scrape_config *cfg;
    struct scrape_target_list tl;
    struct scrape_mapping *map;
    struct scrape_loop *l;
};

static void fx_open(struct fx *f, const char *yaml)
{
    memset(f, 0, sizeof(*f));
    struct hs_err err;
    f->dir = hs_test_tmpdir("loop");
    assert_non_null(f->dir);
    struct tsdb_options o;
    tsdb_options_defaults(&o);
    o.wal_fsync = TSDB_FSYNC_NONE;
    o.maintain_interval_ms = 0;
    f->db = tsdb_open(f->dir, &o, &err);
    assert_non_null(f->db);
    f->doc = hs_ydoc_parse(yaml, strlen(yaml), "test.yml", &err);
    assert_non_null(f->doc);
    assert_int_equal(scrape_config_parse(f->doc, f->doc->root, &f->cfg, &err), HS_OK);
    scrape_target_list_init(&f->tl);
    assert_int_equal(scrape_targets_build(&f->cfg->jobs[0], NULL, 0, &f->tl, &err), HS_OK);
    assert_true(f->tl.nactive >= 1);
    assert_int_equal(scrape_mapping_new(&f->map, &err), HS_OK);
    assert_int_equal(scrape_loop_new(&f->cfg->jobs[0], &f->tl.v[0], f->map, f->db, &f->l, &err),
                     HS_OK);
}

static void fx_close(struct fx *f)
{
    scrape_loop_free(f->l);
    scrape_mapping_free(f->map);
    scrape_target_list_cleanup(&f->tl);
    scrape_config_free(f->cfg);
    hs_ydoc_free(f->doc);
    tsdb_close(f->db);
    hs_test_rmdir(f->dir);
    free(f->dir);
}

static const char *JOB = "scrape_configs:\n"
                         "  - job_name: llm\n"
                         "    static_configs:\n"
                         "      - targets: ['10.0.0.1:8000']\n";

static int ingest(struct fx *f, int64_t t, const char *body, struct hs_err *err)
{
    struct scrape_fetch_result res = {0};
    res.code = HS_OK;
    res.status = 200;
    res.content_type = "text/plain; version=0.0.4";
    res.body = body;
    res.body_len = strlen(body);
    return scrape_loop_ingest(f->l, t, 0.001, &res, err);
}

static char *fixture(const char *name, size_t *len)
{
    char path[4096];
    const char *sh = getenv("HS_SHARED_DIR");
    snprintf(path, sizeof(path), "%s/fixtures/exposition/%s", sh ? sh : "/work/shared", name);
    char *p = hs_read_file(path, 0, len, NULL);
    assert_non_null(p);
    return p;
}

/* Series matching name and optionally one label equality. */
static const char *extra_name, *extra_value; /* a second label equality, when set */

static struct tsdb_series_set *select_series(struct fx *f, const char *name, const char *lname,
                                             const char *lvalue)
{
    struct tsdb_matcher m[3];
    struct hs_err err;
    size_t n = 1;
    assert_int_equal(tsdb_matcher_init(&m[0], TSDB_MATCH_EQ, "__name__", name, &err), HS_OK);
    if (lname != NULL) {
        assert_int_equal(tsdb_matcher_init(&m[1], TSDB_MATCH_EQ, lname, lvalue, &err), HS_OK);
        n = 2;
    }
    if (extra_name != NULL) {
        assert_int_equal(tsdb_matcher_init(&m[n], TSDB_MATCH_EQ, extra_name, extra_value, &err),
                         HS_OK);
        n++;
    }
    struct tsdb_querier *q = tsdb_querier_new(f->db, INT64_MIN / 2, INT64_MAX / 2);
    assert_non_null(q);
    struct tsdb_series_set *s = NULL;
    assert_int_equal(tsdb_querier_select(q, m, n, 0, &s, &err), HS_OK);
    tsdb_querier_free(q);
    for (size_t i = 0; i < n; i++)
        tsdb_matcher_cleanup(&m[i]);
    return s;
}

static size_t count_series(struct fx *f, const char *name, const char *lname, const char *lvalue)
{
    struct tsdb_series_set *s = select_series(f, name, lname, lvalue);
    size_t n = tsdb_series_set_len(s);
    tsdb_series_set_free(s);
    return n;
}

/* Value of the first matching series at exactly 't'; false when absent. */
static bool value_at(struct fx *f, const char *name, const char *lname, const char *lvalue,
                     int64_t t, double *v)
{
    struct tsdb_series_set *s = select_series(f, name, lname, lvalue);
    bool found = false;
    if (tsdb_series_set_next(s)) {
        struct tsdb_iter *it = tsdb_series_set_iter(s);
        while (tsdb_iter_next(it)) {
            int64_t ts;
            double x;
            tsdb_iter_at(it, &ts, &x);
            if (ts == t) {
                *v = x;
                found = true;
            }
        }
    }
    tsdb_series_set_free(s);
    return found;
}

static const char *first_label(struct fx *f, const char *name, const char *label, char *buf,
                               size_t n)
{
    struct tsdb_series_set *s = select_series(f, name, NULL, NULL);
    const char *out = NULL;
    if (tsdb_series_set_next(s)) {
        const char *v = hs_labels_get(tsdb_series_set_labels(s), label);
        if (v != NULL) {
            snprintf(buf, n, "%s", v);
            out = buf;
        }
    }
    tsdb_series_set_free(s);
    return out;
}

static bool is_stale(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits == TSDB_STALE_NAN_BITS;
}

static void loop_labels_vllm_samples_with_backend_model_and_target_labels(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    size_t len;
    char *body = fixture("vllm.prom", &len);
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, body, &err), HS_OK);
    char buf[256];
    assert_string_equal(first_label(&f, "vllm:num_requests_running", "backend", buf, sizeof(buf)),
                        "vllm");
    assert_string_equal(first_label(&f, "vllm:num_requests_running", "model", buf, sizeof(buf)),
                        "meta-llama/Llama-3.1-8B-Instruct");
    assert_string_equal(first_label(&f, "vllm:num_requests_running", "job", buf, sizeof(buf)),
                        "llm");
    assert_string_equal(first_label(&f, "vllm:num_requests_running", "instance", buf, sizeof(buf)),
                        "10.0.0.1:8000");
    double v;
    assert_true(value_at(&f, "vllm:num_requests_running", NULL, NULL, 1000, &v));
    assert_true(v == 24.0);
    /* the pass before detection left nothing behind */
    assert_int_equal(count_series(&f, "vllm:num_requests_running", NULL, NULL), 1);
    /* the unified sample beside the original, same timestamp */
    assert_true(value_at(&f, "llm_server_requests_running", "backend", "vllm", 1000, &v));
    assert_true(v == 24.0);
    assert_string_equal(first_label(&f, "llm_server_requests_running", "model", buf, sizeof(buf)),
                        "meta-llama/Llama-3.1-8B-Instruct");
    assert_true(count_series(&f, "llm_server_time_to_first_token_seconds_bucket", NULL, NULL) > 10);
    struct scrape_target_health h;
    scrape_loop_health(f.l, &h);
    assert_int_equal(h.health, SCRAPE_HEALTH_UP);
    assert_int_equal(h.backend, SCRAPE_BACKEND_VLLM);
    /* steady state: the second scrape is served from the cache */
    struct scrape_stats st0, st1;
    scrape_loop_get_stats(f.l, &st0);
    assert_int_equal(ingest(&f, 2000, body, &err), HS_OK);
    scrape_loop_get_stats(f.l, &st1);
    assert_int_equal(st1.cache_misses, st0.cache_misses);
    assert_true(st1.cache_hits - st0.cache_hits > 200);
    assert_true(value_at(&f, "llm_server_requests_running", "backend", "vllm", 2000, &v));
    assert_true(v == 24.0);
    assert_true(value_at(&f, "scrape_series_added", NULL, NULL, 2000, &v));
    assert_true(v == 0);
    hs_free(body);
    fx_close(&f);
}

static void loop_maps_dcgm_with_unit_conversion_and_keeps_gpu_consumer_labels(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    size_t len;
    char *body = fixture("dcgm.prom", &len);
    struct hs_err err;
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ingest(&f, 1000 * i, body, &err), HS_OK);
    char buf[256];
    assert_string_equal(first_label(&f, "DCGM_FI_DEV_GPU_UTIL", "backend", buf, sizeof(buf)),
                        "dcgm");
    /* raw series: the scraped pod is kept (target has no pod label) */
    double v;
    extra_name = "hw_gpu_task";
    extra_value = "general";
    assert_true(value_at(&f, "hw_gpu_utilization_ratio", "gpu_uuid",
                         "GPU-7a1c0f52-3d9e-6b4a-8e21-c5f0d4a9b3e7", 3000, &v));
    extra_name = extra_value = NULL;
    assert_true(fabs(v - 0.97) < 1e-12);
    assert_true(count_series(&f, "hw_gpu_utilization_ratio", "hw_gpu_task", "general") >= 2);
    assert_true(value_at(&f, "DCGM_FI_DEV_GPU_UTIL", "gpu", "0", 3000, &v) && v == 97);
    assert_true(value_at(&f, "hw_gpu_utilization_ratio", "pod", "llama31-8b-vllm-6d5f9c7b8-q2x7k",
                         3000, &v));
    /* the combined memory limit series is produced every scrape */
    assert_true(count_series(&f, "hw_gpu_memory_limit_bytes", NULL, NULL) >= 1);
    assert_true(value_at(&f, "hw_gpu_memory_limit_bytes", "gpu", "0", 3000, &v));
    assert_true(v > 1e9);
    /* model is never taken from modelName */
    assert_null(first_label(&f, "DCGM_FI_DEV_GPU_UTIL", "model", buf, sizeof(buf)));
    hs_free(body);
    fx_close(&f);
}

static void loop_detects_sglang_fixture(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    size_t len;
    char *body = fixture("sglang-current.prom", &len);
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, body, &err), HS_OK);
    struct scrape_target_health h;
    scrape_loop_health(f.l, &h);
    assert_int_equal(h.backend, SCRAPE_BACKEND_SGLANG);
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "backend", "sglang", &err), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(f.db, 0, 10000);
    struct tsdb_series_set *s = NULL;
    assert_int_equal(tsdb_querier_select(q, &m, 1, 0, &s, &err), HS_OK);
    assert_true(tsdb_series_set_len(s) > 50);
    tsdb_series_set_free(s);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
    hs_free(body);
    fx_close(&f);
}

static void loop_puts_the_configured_model_on_engines_without_one(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "scrape_configs:\n"
                "  - job_name: tgi\n"
                "    model: bigscience/bloom-560m\n"
                "    static_configs:\n"
                "      - targets: ['10.0.0.2:80']\n");
    size_t len;
    char *body = fixture("tgi.prom", &len);
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, body, &err), HS_OK);
    assert_int_equal(ingest(&f, 2000, body, &err), HS_OK);
    char buf[256];
    assert_string_equal(first_label(&f, "tgi_queue_size", "backend", buf, sizeof(buf)), "tgi");
    assert_string_equal(first_label(&f, "tgi_queue_size", "model", buf, sizeof(buf)),
                        "bigscience/bloom-560m");
    double v;
    assert_true(
        value_at(&f, "llm_server_requests_waiting", "model", "bigscience/bloom-560m", 2000, &v));
    assert_true(v == 1);
    hs_free(body);
    fx_close(&f);
}

static void loop_marks_a_vanished_series_stale_and_only_once(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, "a 1\nb 2\n", &err), HS_OK);
    assert_int_equal(ingest(&f, 2000, "a 1\n", &err), HS_OK);
    assert_int_equal(ingest(&f, 3000, "a 1\n", &err), HS_OK);
    double v;
    assert_true(value_at(&f, "b", NULL, NULL, 2000, &v));
    assert_true(is_stale(v));
    assert_false(value_at(&f, "b", NULL, NULL, 3000, &v));
    assert_true(value_at(&f, "a", NULL, NULL, 2000, &v) && v == 1);
    /* it comes back: a plain sample again */
    assert_int_equal(ingest(&f, 4000, "a 1\nb 5\n", &err), HS_OK);
    assert_true(value_at(&f, "b", NULL, NULL, 4000, &v) && v == 5);
    fx_close(&f);
}

static void loop_marks_every_series_stale_when_the_target_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, "a 1\nb 2\n", &err), HS_OK);
    struct scrape_fetch_result res = {0};
    res.code = HS_EIO;
    res.error = "connection refused";
    assert_int_equal(scrape_loop_ingest(f.l, 2000, 0.0, &res, &err), HS_EIO);
    assert_string_equal(err.msg, "connection refused");
    double v;
    assert_true(value_at(&f, "a", NULL, NULL, 2000, &v) && is_stale(v));
    assert_true(value_at(&f, "b", NULL, NULL, 2000, &v) && is_stale(v));
    assert_true(value_at(&f, "up", NULL, NULL, 2000, &v) && v == 0);
    struct scrape_target_health h;
    scrape_loop_health(f.l, &h);
    assert_int_equal(h.health, SCRAPE_HEALTH_DOWN);
    assert_string_equal(h.last_error, "connection refused");
    /* a second failure writes no second marker */
    assert_int_equal(scrape_loop_ingest(f.l, 3000, 0.0, &res, &err), HS_EIO);
    assert_false(value_at(&f, "a", NULL, NULL, 3000, &v));
    /* recovery */
    assert_int_equal(ingest(&f, 4000, "a 7\n", &err), HS_OK);
    assert_true(value_at(&f, "a", NULL, NULL, 4000, &v) && v == 7);
    assert_true(value_at(&f, "up", NULL, NULL, 4000, &v) && v == 1);
    fx_close(&f);
}

static void loop_writes_report_series_with_target_labels(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "scrape_configs:\n"
                "  - job_name: llm\n"
                "    metric_relabel_configs:\n"
                "      - source_labels: [__name__]\n"
                "        regex: drop_me\n"
                "        action: drop\n"
                "    static_configs:\n"
                "      - targets: ['10.0.0.1:8000']\n");
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, "a 1\nb 2\ndrop_me 3\n", &err), HS_OK);
    double v;
    assert_true(value_at(&f, "up", "instance", "10.0.0.1:8000", 1000, &v) && v == 1);
    assert_true(value_at(&f, "scrape_samples_scraped", "job", "llm", 1000, &v) && v == 3);
    assert_true(value_at(&f, "scrape_samples_post_metric_relabeling", NULL, NULL, 1000, &v) &&
                v == 2);
    assert_true(value_at(&f, "scrape_series_added", NULL, NULL, 1000, &v) && v == 2);
    assert_true(value_at(&f, "scrape_duration_seconds", NULL, NULL, 1000, &v) && v > 0);
    assert_int_equal(count_series(&f, "drop_me", NULL, NULL), 0);
    /* dropped series stay dropped on the cached path */
    assert_int_equal(ingest(&f, 2000, "a 1\nb 2\ndrop_me 3\n", &err), HS_OK);
    assert_int_equal(count_series(&f, "drop_me", NULL, NULL), 0);
    assert_true(value_at(&f, "scrape_samples_post_metric_relabeling", NULL, NULL, 2000, &v) &&
                v == 2);
    /* removal: stale markers for series and report series */
    assert_int_equal(scrape_loop_stale_all(f.l, 2500, &err), HS_OK);
    assert_true(value_at(&f, "a", NULL, NULL, 2500, &v) && is_stale(v));
    assert_true(value_at(&f, "up", NULL, NULL, 2500, &v) && is_stale(v));
    fx_close(&f);
}

static void loop_fails_the_whole_scrape_past_sample_limit(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "scrape_configs:\n"
                "  - job_name: llm\n"
                "    sample_limit: 2\n"
                "    static_configs:\n"
                "      - targets: ['10.0.0.1:8000']\n");
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, "a 1\nb 2\n", &err), HS_OK);
    assert_int_equal(ingest(&f, 2000, "a 1\nb 2\nc 3\n", &err), HS_ETOOBIG);
    assert_string_equal(err.msg, "sample limit exceeded (limit: 2)");
    double v;
    assert_true(value_at(&f, "up", NULL, NULL, 2000, &v) && v == 0);
    assert_int_equal(count_series(&f, "c", NULL, NULL), 0);
    assert_true(value_at(&f, "a", NULL, NULL, 2000, &v) && is_stale(v));
    struct scrape_stats st;
    scrape_loop_get_stats(f.l, &st);
    assert_int_equal(st.exceeded_sample_limit, 1);
    fx_close(&f);
}

static void loop_fails_the_scrape_past_label_limits(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "scrape_configs:\n"
                "  - job_name: llm\n"
                "    label_limit: 4\n"
                "    label_value_length_limit: 16\n"
                "    static_configs:\n"
                "      - targets: ['10.0.0.1:8000']\n");
    struct hs_err err;
    /* __name__, instance, job + 1 = 4 */
    int rc = ingest(&f, 1000, "a{x=\"1\"} 1\n", &err);
    if (rc != HS_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(ingest(&f, 2000, "a{x=\"1\",y=\"2\"} 1\n", &err), HS_ETOOBIG);
    assert_non_null(strstr(err.msg, "label_limit exceeded"));
    assert_int_equal(ingest(&f, 3000, "a{x=\"12345678901234567\"} 1\n", &err), HS_ETOOBIG);
    assert_non_null(strstr(err.msg, "label_value_length_limit exceeded"));
    double v;
    assert_true(value_at(&f, "up", NULL, NULL, 3000, &v) && v == 0);
    fx_close(&f);
}

static void loop_renames_conflicting_labels_unless_honor_labels(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, "a{job=\"other\",instance=\"x\"} 1\n", &err), HS_OK);
    char buf[256];
    assert_string_equal(first_label(&f, "a", "job", buf, sizeof(buf)), "llm");
    assert_string_equal(first_label(&f, "a", "exported_job", buf, sizeof(buf)), "other");
    assert_string_equal(first_label(&f, "a", "exported_instance", buf, sizeof(buf)), "x");
    fx_close(&f);

    fx_open(&f, "scrape_configs:\n"
                "  - job_name: llm\n"
                "    honor_labels: true\n"
                "    static_configs:\n"
                "      - targets: ['10.0.0.1:8000']\n");
    assert_int_equal(ingest(&f, 1000, "a{job=\"other\"} 1\n", &err), HS_OK);
    assert_string_equal(first_label(&f, "a", "job", buf, sizeof(buf)), "other");
    assert_null(first_label(&f, "a", "exported_job", buf, sizeof(buf)));
    assert_string_equal(first_label(&f, "a", "instance", buf, sizeof(buf)), "10.0.0.1:8000");
    fx_close(&f);
}

static void loop_honors_timestamps_only_when_configured(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    struct hs_err err;
    assert_int_equal(ingest(&f, 5000, "a 1 4000\n", &err), HS_OK);
    double v;
    assert_true(value_at(&f, "a", NULL, NULL, 4000, &v) && v == 1);
    assert_false(value_at(&f, "a", NULL, NULL, 5000, &v));
    /* explicit timestamps: no staleness when it disappears */
    assert_int_equal(ingest(&f, 6000, "b 1\n", &err), HS_OK);
    assert_false(value_at(&f, "a", NULL, NULL, 6000, &v));
    fx_close(&f);

    fx_open(&f, "scrape_configs:\n"
                "  - job_name: llm\n"
                "    honor_timestamps: false\n"
                "    static_configs:\n"
                "      - targets: ['10.0.0.1:8000']\n");
    assert_int_equal(ingest(&f, 5000, "a 1 4000\n", &err), HS_OK);
    assert_true(value_at(&f, "a", NULL, NULL, 5000, &v) && v == 1);
    fx_close(&f);
}

static void loop_cache_follows_a_changing_series_set(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, "a{k=\"1\"} 1\na{k=\"2\"} 2\n", &err), HS_OK);
    assert_int_equal(ingest(&f, 2000, "a{k=\"2\"} 20\na{k=\"3\"} 30\n", &err), HS_OK);
    assert_int_equal(ingest(&f, 3000, "a{k=\"3\"} 31\na{k=\"1\"} 11\n", &err), HS_OK);
    double v;
    assert_true(value_at(&f, "a", "k", "1", 3000, &v) && v == 11);
    assert_true(value_at(&f, "a", "k", "1", 2000, &v) && is_stale(v));
    assert_true(value_at(&f, "a", "k", "2", 2000, &v) && v == 20);
    assert_true(value_at(&f, "a", "k", "2", 3000, &v) && is_stale(v));
    assert_true(value_at(&f, "a", "k", "3", 3000, &v) && v == 31);
    /* many scrapes with churn: the cache compacts and stays right */
    char body[256];
    for (int i = 0; i < 200; i++) {
        snprintf(body, sizeof(body), "c{i=\"%d\"} %d\nkeep 1\n", i, i);
        assert_int_equal(ingest(&f, 4000 + i * 1000, body, &err), HS_OK);
    }
    assert_true(value_at(&f, "keep", NULL, NULL, 4000 + 199 * 1000, &v) && v == 1);
    assert_true(value_at(&f, "c", "i", "198", 4000 + 199 * 1000, &v) && is_stale(v));
    assert_true(value_at(&f, "c", "i", "199", 4000 + 199 * 1000, &v) && v == 199);
    struct scrape_target_health h;
    scrape_loop_health(f.l, &h);
    assert_true(h.last_series < 100);
    fx_close(&f);
}

static void loop_counts_duplicate_series_in_one_scrape(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    struct hs_err err;
    assert_int_equal(ingest(&f, 1000, "a 1\na 2\n", &err), HS_OK);
    double v;
    assert_true(value_at(&f, "a", NULL, NULL, 1000, &v) && v == 1);
    struct scrape_stats st;
    scrape_loop_get_stats(f.l, &st);
    assert_int_equal(st.samples_duplicate, 1);
    fx_close(&f);
}

static void loop_reports_bad_responses_with_precise_errors(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "scrape_configs:\n"
                "  - job_name: llm\n"
                "    body_size_limit: 100\n"
                "    static_configs:\n"
                "      - targets: ['10.0.0.1:8000']\n");
    struct hs_err err;
    struct scrape_fetch_result res = {0};
    res.code = HS_OK;
    res.status = 500;
    res.body = "oops";
    res.body_len = 4;
    assert_int_equal(scrape_loop_ingest(f.l, 1000, 0, &res, &err), HS_EIO);
    assert_string_equal(err.msg, "server returned HTTP status 500 Internal Server Error");
    assert_int_equal(ingest(&f, 2000, "<html><body>hi</body></html>\n", &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "line 1"));
    char big[200];
    memset(big, '#', sizeof(big) - 2);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ingest(&f, 3000, big, &err), HS_ETOOBIG);
    assert_string_equal(err.msg, "body size limit exceeded (limit: 100 bytes)");
    assert_int_equal(ingest(&f, 4000, "a{x=\"\xff\xfe\"} 1\n", &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "UTF-8"));
    res.code = HS_ETIMEDOUT;
    res.error = NULL;
    assert_int_equal(scrape_loop_ingest(f.l, 5000, 0, &res, &err), HS_ETIMEDOUT);
    double v;
    for (int64_t t = 1000; t <= 5000; t += 1000)
        assert_true(value_at(&f, "up", NULL, NULL, t, &v) && v == 0);
    assert_int_equal(ingest(&f, 6000, "a 1\n", &err), HS_OK);
    struct scrape_stats st;
    scrape_loop_get_stats(f.l, &st);
    assert_int_equal(st.scrapes_total, 6);
    assert_int_equal(st.scrapes_failed, 5);
    assert_int_equal(st.exceeded_body_size, 1);
    fx_close(&f);
}

static void loop_reads_gzip_and_openmetrics(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, JOB);
    /* "a_total 3\n# EOF\n" as OpenMetrics, gzip-compressed */
    static const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
                                       0x03, 0x4b, 0x8c, 0x2f, 0xc9, 0x2f, 0x49, 0xcc, 0x51,
                                       0x30, 0xe6, 0x52, 0x56, 0x70, 0xf5, 0x77, 0xe3, 0x02,
                                       0x00, 0xd4, 0xe6, 0xce, 0xfa, 0x10, 0x00, 0x00, 0x00};
    struct scrape_fetch_result res = {0};
    res.code = HS_OK;
    res.status = 200;
    res.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    res.content_encoding = "gzip";
    res.body = (const char *)gz;
    res.body_len = sizeof(gz);
    struct hs_err err;
    int rc = scrape_loop_ingest(f.l, 1000, 0, &res, &err);
    if (rc != HS_OK)
        fail_msg("%s", err.msg);
    double v;
    assert_true(value_at(&f, "a_total", NULL, NULL, 1000, &v) && v == 3);
    fx_close(&f);
}

static void loop_request_prefers_openmetrics_and_spreads_offsets(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "scrape_configs:\n"
                "  - job_name: llm\n"
                "    scrape_interval: 15s\n"
                "    scrape_timeout: 5s\n"
                "    params: {format: [prometheus]}\n"
                "    basic_auth: {username: u, password: p}\n"
                "    static_configs:\n"
                "      - targets: ['10.0.0.1:8000']\n");
    struct scrape_fetch_request rq;
    scrape_loop_request(f.l, &rq);
    assert_string_equal(rq.url, "http://10.0.0.1:8000/metrics?format=prometheus");
    assert_non_null(strstr(rq.accept, "application/openmetrics-text"));
    assert_string_equal(rq.authorization, "Basic dTpw");
    assert_int_equal(rq.timeout_ms, 5000);
    assert_true(scrape_loop_offset_ms(f.l) >= 0 && scrape_loop_offset_ms(f.l) < 15000);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loop_labels_vllm_samples_with_backend_model_and_target_labels),
        cmocka_unit_test(loop_maps_dcgm_with_unit_conversion_and_keeps_gpu_consumer_labels),
        cmocka_unit_test(loop_detects_sglang_fixture),
        cmocka_unit_test(loop_puts_the_configured_model_on_engines_without_one),
        cmocka_unit_test(loop_marks_a_vanished_series_stale_and_only_once),
        cmocka_unit_test(loop_marks_every_series_stale_when_the_target_fails),
        cmocka_unit_test(loop_writes_report_series_with_target_labels),
        cmocka_unit_test(loop_fails_the_whole_scrape_past_sample_limit),
        cmocka_unit_test(loop_fails_the_scrape_past_label_limits),
        cmocka_unit_test(loop_renames_conflicting_labels_unless_honor_labels),
        cmocka_unit_test(loop_honors_timestamps_only_when_configured),
        cmocka_unit_test(loop_cache_follows_a_changing_series_set),
        cmocka_unit_test(loop_counts_duplicate_series_in_one_scrape),
        cmocka_unit_test(loop_reports_bad_responses_with_precise_errors),
        cmocka_unit_test(loop_reads_gzip_and_openmetrics),
        cmocka_unit_test(loop_request_prefers_openmetrics_and_spreads_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
