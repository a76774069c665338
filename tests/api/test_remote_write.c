/*
 * test_remote_write.c - POST /api/v1/write end to end: an http server on
 * 127.0.0.1:0 with its loop on its own thread, a real tsdb in a temp dir,
 * bodies built with export_rw_encode and sent over a socket; what was
 * stored is read back through the tsdb querier.  Covers the status codes
 * of the spec (204, 400, 413, 415, 405), header leniency, partial
 * ingestion with rejected samples, the counters and the collector.
 */
#include "api/api.h"

#include "hs_test.h"
#include "hs_test_util.h"

#include "http/http_test_client.h"

#include <math.h>

#define STALE 0x7ff0000000000002ULL

struct fx {
    char *dir;
    struct tsdb *db;
    struct hts hts;
    struct api_remote_write_config cfg;
    struct api_remote_write *rw;
};

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void setup_routes(struct http_server *srv, void *arg)
{
    struct fx *f = arg;
    struct hs_err err = {0};
    f->rw = api_remote_write_register(srv, f->db, &f->cfg, &err);
    if (f->rw == NULL)
        fprintf(stderr, "register: %s\n", err.msg);
}

static int fx_setup_limits(void **state, size_t max_samples)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->dir = hs_test_tmpdir("rw");
    struct tsdb_options o;
    tsdb_options_defaults(&o);
    o.wal_fsync = TSDB_FSYNC_NONE;
    o.retention_ms = 0;
    struct hs_err err = {0};
    f->db = tsdb_open(f->dir, &o, &err);
    assert_non_null(f->db);
    api_remote_write_config_defaults(&f->cfg);
    f->cfg.max_body_bytes = 4096;
    f->cfg.limits.max_samples = max_samples;
    struct http_server_config hc;
    http_server_config_defaults(&hc);
    assert_int_equal(hts_start(&f->hts, &hc, setup_routes, f), 0);
    assert_non_null(f->rw);
    *state = f;
    return 0;
}

static int fx_setup(void **state)
{
    return fx_setup_limits(state, 0);
}

/* A receiver that takes at most 2 samples per request. */
static int fx_setup_two_samples(void **state)
{
    return fx_setup_limits(state, 2);
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    hts_stop(&f->hts);
    api_remote_write_free(f->rw);
    tsdb_close(f->db);
    hs_test_rmdir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* POSTs 'body' with the extra header lines 'headers' ("" for none). */
static int post(struct fx *f, const char *path, const char *headers, const void *body, size_t len,
                struct htc_resp *resp)
{
    struct htc c;
    if (htc_open(&c, f->hts.port) != 0)
        return -1;
    char head[2048];
    snprintf(head, sizeof(head),
             "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
             path, headers, len);
    int rc = htc_send_str(&c, head) == 0 && htc_send(&c, body, len) == 0 ? htc_read(&c, resp, false)
                                                                         : -1;
    htc_close(&c);
    return rc == 0 ? resp->status : -1;
}

#define RW_HEADERS                                                                                 \
    "Content-Encoding: snappy\r\nContent-Type: application/x-protobuf\r\n"                         \
    "X-Prometheus-Remote-Write-Version: 0.1.0\r\nUser-Agent: test/1\r\n"

/* Encodes and posts series with the standard headers. */
static int write_series(struct fx *f, const struct export_rw_series *s, size_t n,
                        struct htc_resp *resp)
{
    struct hs_buf body;
    hs_buf_init(&body, 0);
    struct hs_err err = {0};
    assert_int_equal(export_rw_encode(s, n, &body, &err), HS_OK);
    int st = post(f, "/api/v1/write", RW_HEADERS, body.p, body.len, resp);
    hs_buf_cleanup(&body);
    return st;
}

/* Reads every sample of metric 'name' (one series expected) into t/v. */
static size_t read_back(struct fx *f, const char *name, struct hs_labels *labels_out, char *lbuf,
                        size_t lcap, int64_t *t, double *v, size_t cap)
{
    struct tsdb_matcher m;
    struct hs_err err = {0};
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", name, &err), HS_OK);
    struct tsdb_querier *q = tsdb_querier_new(f->db, INT64_MIN, INT64_MAX);
    struct tsdb_series_set *set = NULL;
    assert_int_equal(tsdb_querier_select(q, &m, 1, 0, &set, &err), HS_OK);
    size_t n = 0;
    if (tsdb_series_set_next(set)) {
        if (labels_out != NULL) {
            struct hs_buf b;
            hs_buf_init(&b, 0);
            assert_int_equal(hs_labels_format(tsdb_series_set_labels(set), &b), HS_OK);
            snprintf(lbuf, lcap, "%s", b.p);
            hs_buf_cleanup(&b);
        }
        struct tsdb_iter *it = tsdb_series_set_iter(set);
        while (n < cap && tsdb_iter_next(it)) {
            tsdb_iter_at(it, &t[n], &v[n]);
            n++;
        }
        assert_false(tsdb_series_set_next(set));
    }
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
    return n;
}

static void has_version_header(const struct htc_resp *r)
{
    char v[64];
    assert_non_null(htc_header(r, "X-Prometheus-Remote-Write-Version", v, sizeof(v)));
    assert_string_equal(v, "0.1.0");
}

/* ---- tests ------------------------------------------------------------------------------ */

static void remote_write_stores_samples_that_read_back_bit_for_bit(void **state)
{
    struct fx *f = *state;
    struct hs_label l1[] = {{"__name__", "rw_up"}, {"instance", "a:1"}, {"job", "j"}};
    struct hs_label l2[] = {{"__name__", "rw_temp"}, {"gpu", "0"}};
    struct export_rw_sample s1[] = {{1000, 1}, {2000, -0.0}, {3000, from_bits(STALE)}};
    struct export_rw_sample s2[] = {{1000, NAN}, {1500, INFINITY}};
    struct export_rw_series in[] = {{.labels = {3, l1}, .n_samples = 3, .samples = s1},
                                    {.labels = {2, l2}, .n_samples = 2, .samples = s2}};
    struct htc_resp r;
    assert_int_equal(write_series(f, in, 2, &r), 204);
    assert_int_equal(r.body_len, 0);
    has_version_header(&r);
    htc_resp_free(&r);

    int64_t t[8];
    double v[8];
    char lb[256];
    struct hs_labels dummy;
    assert_int_equal(read_back(f, "rw_up", &dummy, lb, sizeof(lb), t, v, 8), 3);
    assert_string_equal(lb, "rw_up{instance=\"a:1\", job=\"j\"}");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i], s1[i].t_ms);
        assert_int_equal(bits_of(v[i]), bits_of(s1[i].v));
    }
    assert_int_equal(read_back(f, "rw_temp", NULL, NULL, 0, t, v, 8), 2);
    assert_true(isnan(v[0]) && bits_of(v[0]) != STALE);
    assert_true(isinf(v[1]));

    struct api_remote_write_stats st;
    api_remote_write_get_stats(f->rw, &st);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.requests_by_code[0], 1);
    assert_int_equal(st.samples_received, 5);
    assert_int_equal(st.samples_appended, 5);
}

static void remote_write_accepts_a_request_without_the_optional_headers(void **state)
{
    struct fx *f = *state;
    struct hs_label l[] = {{"__name__", "rw_bare"}};
    struct export_rw_sample s = {42, 4.2};
    struct export_rw_series in = {.labels = {1, l}, .n_samples = 1, .samples = &s};
    struct hs_buf body;
    hs_buf_init(&body, 0);
    struct hs_err err = {0};
    assert_int_equal(export_rw_encode(&in, 1, &body, &err), HS_OK);
    struct htc_resp r;
    assert_int_equal(post(f, "/api/v1/write", "", body.p, body.len, &r), 204);
    htc_resp_free(&r);
    /* parameters and the 1.0 proto name are fine too */
    assert_int_equal(post(f, "/api/v1/write",
                          "Content-Type: application/x-protobuf;proto=prometheus.WriteRequest\r\n"
                          "Content-Encoding: SNAPPY\r\nX-Prometheus-Remote-Write-Version: 1.0\r\n",
                          body.p, body.len, &r),
                     204);
    htc_resp_free(&r);
    hs_buf_cleanup(&body);
    int64_t t[2];
    double v[2];
    assert_int_equal(read_back(f, "rw_bare", NULL, NULL, 0, t, v, 2), 1);
}

static void remote_write_answers_415_to_other_encodings_types_and_versions(void **state)
{
    struct fx *f = *state;
    struct {
        const char *headers;
        const char *want;
    } cases[] = {
        {"Content-Encoding: zstd\r\n", "unsupported Content-Encoding \"zstd\": only snappy"},
        {"Content-Type: application/json\r\n", "unsupported Content-Type \"application/json\""},
        {"Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request\r\n",
         "only remote-write 1.0 (prometheus.WriteRequest) is supported"},
        {"X-Prometheus-Remote-Write-Version: 2.0.0\r\n",
         "unsupported X-Prometheus-Remote-Write-Version \"2.0.0\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct htc_resp r;
        assert_int_equal(post(f, "/api/v1/write", cases[i].headers, "x", 1, &r), 415);
        if (strstr(r.body, cases[i].want) == NULL)
            fail_msg("case %zu: body \"%s\" lacks \"%s\"", i, r.body, cases[i].want);
        has_version_header(&r);
        htc_resp_free(&r);
    }
    struct api_remote_write_stats st;
    api_remote_write_get_stats(f->rw, &st);
    assert_int_equal(st.requests_by_code[3], 4);
}

static void remote_write_answers_400_with_the_reason_and_stores_nothing(void **state)
{
    struct fx *f = *state;
    struct htc_resp r;
    const uint8_t junk[] = {0x05, 0x01, 0x01};
    assert_int_equal(post(f, "/api/v1/write", RW_HEADERS, junk, sizeof(junk), &r), 400);
    assert_non_null(strstr(r.body, "corrupt snappy block"));
    htc_resp_free(&r);

    struct hs_label good[] = {{"__name__", "rw_half"}};
    struct hs_label bad[] = {{"__name__", "rw_half"}, {"b", "1"}, {"a", "2"}};
    struct export_rw_sample s = {1, 1};
    struct export_rw_series in[] = {{.labels = {1, good}, .n_samples = 1, .samples = &s},
                                    {.labels = {3, bad}, .n_samples = 1, .samples = &s}};
    assert_int_equal(write_series(f, in, 2, &r), 400);
    assert_string_equal(r.body, "timeseries[1]: labels not sorted by name: \"a\" after \"b\"\n");
    htc_resp_free(&r);
    int64_t t[2];
    double v[2];
    assert_int_equal(read_back(f, "rw_half", NULL, NULL, 0, t, v, 2), 0);
}

static void remote_write_answers_413_past_the_body_limit(void **state)
{
    struct fx *f = *state;
    static char big[5000];
    memset(big, 'a', sizeof(big));
    struct htc_resp r;
    assert_int_equal(post(f, "/api/v1/write", RW_HEADERS, big, sizeof(big), &r), 413);
    assert_non_null(strstr(r.body, "request body of 5000 bytes exceeds the limit of 4096 bytes"));
    htc_resp_free(&r);
}

static void remote_write_answers_413_when_the_decoded_request_is_past_a_ceiling(void **state)
{
    struct fx *f = *state;
    struct hs_label l[] = {{"__name__", "rw_many"}};
    struct export_rw_sample s[3] = {{1, 1}, {2, 2}, {3, 3}};
    struct export_rw_series in = {.labels = {1, l}, .n_samples = 3, .samples = s};
    struct htc_resp r;
    assert_int_equal(write_series(f, &in, 1, &r), 413);
    assert_string_equal(r.body, "request holds more than 2 samples, the limit\n");
    htc_resp_free(&r);
    int64_t t[4];
    double v[4];
    assert_int_equal(read_back(f, "rw_many", NULL, NULL, 0, t, v, 4), 0);
}

static void remote_write_reports_rejected_samples_as_400_and_keeps_the_others(void **state)
{
    struct fx *f = *state;
    struct hs_label la[] = {{"__name__", "rw_ooo"}};
    struct hs_label lb[] = {{"__name__", "rw_ok"}};
    struct export_rw_sample first = {5000, 1};
    struct export_rw_series s1 = {.labels = {1, la}, .n_samples = 1, .samples = &first};
    struct htc_resp r;
    assert_int_equal(write_series(f, &s1, 1, &r), 204);
    htc_resp_free(&r);

    struct export_rw_sample old[] = {{4000, 2}, {5000, 3}, {6000, 4}}; /* ooo, dup, ok */
    struct export_rw_sample fresh = {4000, 9};
    struct export_rw_series s2[] = {{.labels = {1, la}, .n_samples = 3, .samples = old},
                                    {.labels = {1, lb}, .n_samples = 1, .samples = &fresh}};
    assert_int_equal(write_series(f, s2, 2, &r), 400);
    const char *want = "2 of 4 samples rejected (out of order: 1, duplicate: 1, too old: 0, "
                       "limits: 0, other: 0); the others were stored; first: out of order "
                       "sample for series rw_ooo{} at timestamp 4000";
    if (strstr(r.body, want) == NULL)
        fprintf(stderr, "status %d body \"%s\"\n", r.status, r.body), fail();
    htc_resp_free(&r);

    int64_t t[4];
    double v[4];
    assert_int_equal(read_back(f, "rw_ooo", NULL, NULL, 0, t, v, 4), 2);
    assert_int_equal(t[1], 6000);
    assert_int_equal(read_back(f, "rw_ok", NULL, NULL, 0, t, v, 4), 1);

    struct api_remote_write_stats st;
    api_remote_write_get_stats(f->rw, &st);
    assert_int_equal(st.rejected_out_of_order, 1);
    assert_int_equal(st.rejected_duplicate, 1);
    assert_int_equal(st.samples_appended, 3);
    assert_int_equal(st.samples_received, 5);
}

static void remote_write_answers_405_to_get(void **state)
{
    struct fx *f = *state;
    struct htc_resp r;
    assert_int_equal(htc_exchange(f->hts.port, "GET /api/v1/write HTTP/1.1\r\nHost: x\r\n\r\n", &r),
                     405);
    htc_resp_free(&r);
}

static void remote_write_collector_writes_every_counter_family(void **state)
{
    struct fx *f = *state;
    struct htc_resp r;
    assert_int_equal(post(f, "/api/v1/write", "Content-Encoding: gzip\r\n", "x", 1, &r), 415);
    htc_resp_free(&r);
    struct hs_buf out;
    hs_buf_init(&out, 0);
    api_collector_fn *fn = api_remote_write_collector; /* registrable as a collector */
    assert_int_equal(fn(f->rw, &out), HS_OK);
    const char *want[] = {
        "# TYPE holoscope_remote_write_requests_total counter\n",
        "holoscope_remote_write_requests_total{code=\"415\"} 1\n",
        "holoscope_remote_write_samples_rejected_total{reason=\"out_of_order\"} 0\n",
        "holoscope_remote_write_samples_received_total 0\n",
        "holoscope_remote_write_samples_appended_total 0\n",
        "holoscope_remote_write_received_bytes_total 0\n",
        "holoscope_remote_write_histograms_dropped_total 0\n",
        "holoscope_remote_write_metadata_dropped_total 0\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(out.p, want[i]) == NULL)
            fail_msg("collector output lacks \"%s\":\n%s", want[i], out.p);
    }
    hs_buf_cleanup(&out);
}

int main(void)
{
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(remote_write_stores_samples_that_read_back_bit_for_bit,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(remote_write_accepts_a_request_without_the_optional_headers,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            remote_write_answers_415_to_other_encodings_types_and_versions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(remote_write_answers_400_with_the_reason_and_stores_nothing,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(remote_write_answers_413_past_the_body_limit, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(
            remote_write_answers_413_when_the_decoded_request_is_past_a_ceiling,
            fx_setup_two_samples, fx_teardown),
        cmocka_unit_test_setup_teardown(
            remote_write_reports_rejected_samples_as_400_and_keeps_the_others, fx_setup,
            fx_teardown),
        cmocka_unit_test_setup_teardown(remote_write_answers_405_to_get, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(remote_write_collector_writes_every_counter_family,
                                        fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
