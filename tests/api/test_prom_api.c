/*
 * test_prom_api.c - the Prometheus HTTP API over real sockets: an http
 * server on 127.0.0.1:0 with its loop on its own thread, an in-memory
 * storage with a few series, and a blocking client.  Checks the exact JSON
 * of small answers, every bad_data message, POST form bodies, timeouts,
 * the bounded queue, cancellation on disconnect and the admin switch.
 *
 * The storage is wrapped in a "gate": when closed, select() announces that a
 * query reached the storage and waits until the test opens it, which makes
 * "the queue is full" and "the client left mid-query" deterministic without
 * any timing.
 */
#include "api/api.h"

#include "hs_test.h"

#include "http/http_test_client.h"

#include <event2/thread.h>

#include <ctype.h>
#include <stdatomic.h>
#include <time.h>

/* ---- gated storage ------------------------------------------------------------- */

struct gate {
    struct promql_storage inner;
    struct promql_storage_ops ops;
    atomic_bool is_closed;
    sem_t entered; /* posted by select when it waits at the gate */
    sem_t release; /* posted by the test to let one waiting select through */
};

static int gate_select(void *ctx, const struct promql_matcher *ms, size_t nms, int64_t mint_ms,
                       int64_t maxt_ms, void **set, struct hs_err *err)
{
    struct gate *g = ctx;
    if (atomic_load(&g->is_closed)) {
        sem_post(&g->entered);
        while (sem_wait(&g->release) != 0 && errno == EINTR) {
        }
    }
    return g->inner.ops->select(g->inner.ctx, ms, nms, mint_ms, maxt_ms, set, err);
}

static int gate_label_names(void *ctx, const struct promql_matcher *ms, size_t nms, int64_t mint_ms,
                            int64_t maxt_ms, struct hs_arena *arena, const char ***out, size_t *n,
                            struct hs_err *err)
{
    struct gate *g = ctx;
    return g->inner.ops->label_names(g->inner.ctx, ms, nms, mint_ms, maxt_ms, arena, out, n, err);
}

static int gate_label_values(void *ctx, const char *name, const struct promql_matcher *ms,
                             size_t nms, int64_t mint_ms, int64_t maxt_ms, struct hs_arena *arena,
                             const char ***out, size_t *n, struct hs_err *err)
{
    struct gate *g = ctx;
    return g->inner.ops->label_values(g->inner.ctx, name, ms, nms, mint_ms, maxt_ms, arena, out, n,
                                      err);
}

/* ---- fixture ------------------------------------------------------------------------ */

struct deleted {
    int calls;
    char first[128]; /* "name op value" of the first matcher of the first call */
    int64_t mint_ms, maxt_ms;
};

struct fx {
    struct promql_mem *mem;
    struct gate gate;
    struct promql_engine *engine;
    struct api_prom_config cfg;
    struct api_prom *api;
    struct hts hts;
    struct deleted deleted;
};

static int fake_delete(void *arg, const struct promql_matcher *ms, size_t n, int64_t mint_ms,
                       int64_t maxt_ms, struct hs_err *err)
{
    struct deleted *d = arg;
    if (d->calls++ == 0 && n > 0) {
        snprintf(d->first, sizeof(d->first), "%s %d %s", ms[0].name, ms[0].op, ms[0].value);
        d->mint_ms = mint_ms;
        d->maxt_ms = maxt_ms;
    }
    return HS_OK;
}

static void add_series(struct fx *f, const char *name, const char *k1, const char *v1,
                       const char *k2, const char *v2, double step_value, double base)
{
    /* Labels sorted by name: __name__ first, then k1 < k2. */
    struct hs_label l[3] = {{"__name__", name}, {k1, v1}, {k2, v2}};
    struct hs_labels ls = {3, l};
    for (int i = 0; i <= 20; i++) {
        struct hs_err err = {0};
        assert_int_equal(promql_mem_append(f->mem, &ls, i * 15000LL, base + step_value * i, &err),
                         HS_OK);
    }
}

static void setup_routes(struct http_server *srv, void *arg)
{
    struct fx *f = arg;
    struct hs_err err = {0};
    f->api = api_prom_new(f->hts.base, &f->cfg, &err);
    if (f->api == NULL)
        fail_msg("api_prom_new: %s", err.msg);
    assert_int_equal(api_prom_register(f->api, srv), HS_OK);
}

/* Fills the default config; the caller may change it before fx_start. */
static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    f->mem = promql_mem_new();
    assert_non_null(f->mem);
    add_series(f, "up", "instance", "a", "job", "api", 0, 1);
    add_series(f, "up", "instance", "b", "job", "api", 0, 0);
    add_series(f, "http_requests_total", "code", "200", "job", "api", 1, 0);
    add_series(f, "http_requests_total", "code", "500", "job", "api", 2, 0);
    promql_mem_storage(f->mem, &f->gate.inner);
    f->gate.ops = *f->gate.inner.ops;
    f->gate.ops.select = gate_select;
    f->gate.ops.label_names = gate_label_names;
    f->gate.ops.label_values = gate_label_values;
    atomic_init(&f->gate.is_closed, false);
    sem_init(&f->gate.entered, 0, 0);
    sem_init(&f->gate.release, 0, 0);
    f->engine = promql_engine_new(NULL);
    assert_non_null(f->engine);
    f->cfg.engine = f->engine;
    f->cfg.storage = (struct promql_storage){&f->gate.ops, &f->gate};
    f->cfg.config_yaml = "global:\n  scrape_interval: 15s\n";
    static const char *const flags[] = {"storage.tsdb.retention.time", "15d", NULL};
    f->cfg.flags = flags;
    f->cfg.delete_series = fake_delete;
    f->cfg.admin_arg = &f->deleted;
}

static void fx_start(struct fx *f)
{
    struct http_server_config hc;
    http_server_config_defaults(&hc);
    assert_int_equal(hts_start(&f->hts, &hc, setup_routes, f), 0);
}

static void free_api(void *arg)
{
    struct fx *f = arg;
    api_prom_free(f->api);
    f->api = NULL;
}

static void fx_stop(struct fx *f)
{
    hts_call(&f->hts, free_api, f);
    hts_stop(&f->hts);
    promql_engine_free(f->engine);
    promql_mem_free(f->mem);
    sem_destroy(&f->gate.entered);
    sem_destroy(&f->gate.release);
}

static int group_setup(void **state)
{
    static struct fx f;
    fx_init(&f);
    fx_start(&f);
    *state = &f;
    return 0;
}

static int group_teardown(void **state)
{
    fx_stop(*state);
    return 0;
}

/* ---- requests ------------------------------------------------------------------------- */

/* Appends NAME=VALUE pairs (NULL-terminated list), percent-encoded. */
static void form(char *out, size_t cap, const char *const *kv)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; kv[i] != NULL && kv[i + 1] != NULL; i += 2) {
        if (i > 0)
            o += (size_t)snprintf(out + o, cap - o, "&");
        for (int part = 0; part < 2; part++) {
            for (const unsigned char *p = (const unsigned char *)kv[i + (size_t)part]; *p; p++) {
                if (isalnum(*p) || strchr("-_.~", *p) != NULL)
                    o += (size_t)snprintf(out + o, cap - o, "%c", *p);
                else
                    o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
            }
            if (part == 0)
                o += (size_t)snprintf(out + o, cap - o, "=");
        }
    }
}

static int do_get(struct fx *f, const char *path, const char *const *kv, struct htc_resp *r)
{
    char q[4096], req[8192];
    form(q, sizeof(q), kv);
    snprintf(req, sizeof(req), "GET %s%s%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path,
             q[0] ? "?" : "", q);
    return htc_exchange(f->hts.port, req, r);
}

static int do_post(struct fx *f, const char *path, const char *const *kv, struct htc_resp *r)
{
    char body[4096], req[8192];
    form(body, sizeof(body), kv);
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
             "Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             path, strlen(body), body);
    return htc_exchange(f->hts.port, req, r);
}

/* GET and compare status and the whole body. */
static void expect_get(struct fx *f, const char *path, const char *const *kv, int status,
                       const char *body)
{
    struct htc_resp r;
    int got = do_get(f, path, kv, &r);
    if (got != status || strcmp(r.body, body) != 0)
        fail_msg("GET %s: got %d %s\nwant %d %s", path, got, r.body, status, body);
    htc_resp_free(&r);
}

/* GET and compare status and the start of the body. */
static void expect_get_prefix(struct fx *f, const char *path, const char *const *kv, int status,
                              const char *prefix)
{
    struct htc_resp r;
    int got = do_get(f, path, kv, &r);
    if (getenv("HS_TEST_VERBOSE") != NULL)
        fprintf(stderr, "GET %s -> %d %s\n", path, got, r.body);
    if (got != status || strncmp(r.body, prefix, strlen(prefix)) != 0)
        fail_msg("GET %s: got %d %s\nwant %d %s...", path, got, r.body, status, prefix);
    htc_resp_free(&r);
}

#define KV(...)  ((const char *const[]){__VA_ARGS__, NULL, NULL})
#define BAD(msg) "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"" msg "\"}"

/* ---- queries ---------------------------------------------------------------------------- */

static void query_answers_a_vector_in_prometheus_json(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/query", KV("query", "up{instance=\"a\"}", "time", "60"), 200,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
               "{\"metric\":{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
               "\"value\":[60,\"1\"]}]}}");
    expect_get(f, "/api/v1/query",
               KV("query", "up{instance=\"b\"}", "time", "1970-01-01T00:01:00.500Z"), 200,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
               "{\"metric\":{\"__name__\":\"up\",\"instance\":\"b\",\"job\":\"api\"},"
               "\"value\":[60.5,\"0\"]}]}}");
}

static void query_answers_a_scalar(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/query", KV("query", "1+1", "time", "10.5"), 200,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
               "[10.5,\"2\"]}}");
}

static void query_reads_a_post_form_body(void **state)
{
    struct fx *f = *state;
    struct htc_resp r;
    assert_int_equal(
        do_post(f, "/api/v1/query", KV("query", "sum(http_requests_total)", "time", "30"), &r),
        200);
    assert_string_equal(r.body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                                "\"result\":[{\"metric\":{},\"value\":[30,\"6\"]}]}}");
    htc_resp_free(&r);
}

static void query_range_answers_a_matrix_with_float_or_duration_steps(void **state)
{
    struct fx *f = *state;
    const char *want = "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                       "{\"metric\":{\"__name__\":\"http_requests_total\",\"code\":\"200\","
                       "\"job\":\"api\"},\"values\":[[0,\"0\"],[30,\"2\"],[60,\"4\"]]}]}}";
    expect_get(
        f, "/api/v1/query_range",
        KV("query", "http_requests_total{code=\"200\"}", "start", "0", "end", "60", "step", "30"),
        200, want);
    expect_get(f, "/api/v1/query_range",
               KV("query", "http_requests_total{code=\"200\"}", "start", "1970-01-01T00:00:00Z",
                  "end", "60", "step", "30s"),
               200, want);
    struct htc_resp r;
    assert_int_equal(do_post(f, "/api/v1/query_range",
                             KV("query", "http_requests_total{code=\"200\"}", "start", "0", "end",
                                "60", "step", "30"),
                             &r),
                     200);
    assert_string_equal(r.body, want);
    htc_resp_free(&r);
}

static void query_errors_use_prometheus_messages(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/query", KV("query", "up", "time", "abc"), 400,
               BAD("invalid parameter \\\"time\\\": cannot parse \\\"abc\\\" to a valid "
                   "timestamp"));
    expect_get(f, "/api/v1/query", KV("query", "up", "timeout", "soon"), 400,
               BAD("invalid parameter \\\"timeout\\\": cannot parse \\\"soon\\\" to a valid "
                   "duration"));
    expect_get(f, "/api/v1/query", KV("query", "up", "limit", "-1"), 400,
               BAD("invalid parameter \\\"limit\\\": limit must be non-negative"));
    expect_get(f, "/api/v1/query", KV("query", "up", "lookback_delta", "x"), 400,
               BAD("error parsing lookback delta duration: cannot parse \\\"x\\\" to a valid "
                   "duration"));
    expect_get_prefix(f, "/api/v1/query", KV("time", "1"), 400,
                      "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid "
                      "parameter \\\"query\\\": ");
    expect_get_prefix(f, "/api/v1/query", KV("query", "sum(up", "time", "1"), 400,
                      "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid "
                      "parameter \\\"query\\\": 1:");
}

static void query_range_errors_use_prometheus_messages(void **state)
{
    struct fx *f = *state;
    const char *path = "/api/v1/query_range";
    expect_get(f, path, KV("query", "up", "end", "10", "step", "1"), 400,
               BAD("invalid parameter \\\"start\\\": cannot parse \\\"\\\" to a valid "
                   "timestamp"));
    expect_get(f, path, KV("query", "up", "start", "0", "end", "x", "step", "1"), 400,
               BAD("invalid parameter \\\"end\\\": cannot parse \\\"x\\\" to a valid timestamp"));
    expect_get(f, path, KV("query", "up", "start", "10", "end", "5", "step", "1"), 400,
               BAD("end timestamp must not be before start time"));
    expect_get(f, path, KV("query", "up", "start", "0", "end", "10", "step", "1x"), 400,
               BAD("invalid parameter \\\"step\\\": cannot parse \\\"1x\\\" to a valid "
                   "duration"));
    expect_get(f, path, KV("query", "up", "start", "0", "end", "10", "step", "0"), 400,
               BAD("zero or negative query resolution step widths are not accepted. Try a "
                   "positive integer"));
    expect_get(f, path, KV("query", "up", "start", "0", "end", "10", "step", "-5"), 400,
               BAD("zero or negative query resolution step widths are not accepted. Try a "
                   "positive integer"));
    expect_get(f, path, KV("query", "up", "start", "0", "end", "11001", "step", "1"), 400,
               BAD("exceeded maximum resolution of 11,000 points per timeseries. Try "
                   "decreasing the query resolution (?step=XX)"));
    /* Prometheus itself accepts (end - start) / step == 11000; the engine's own
     * ceiling counts points, so stay one below it. */
    expect_get_prefix(f, path, KV("query", "up", "start", "0", "end", "10999", "step", "1"), 200,
                      "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\"");
    expect_get_prefix(f, path, KV("query", "up[5m]", "start", "0", "end", "10", "step", "1"), 400,
                      "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid "
                      "parameter \\\"query\\\": ");
}

static void query_with_zero_timeout_times_out_with_503(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/query", KV("query", "up", "time", "1", "timeout", "0"), 503,
               "{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":\"query timed out in "
               "query queue\"}");
}

static void query_limit_truncates_series_with_a_warning(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/query", KV("query", "up", "time", "60", "limit", "1"), 200,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
               "{\"metric\":{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
               "\"value\":[60,\"1\"]}]},\"warnings\":[\"results truncated due to limit\"]}");
}

static void query_lookback_delta_changes_how_far_back_samples_count(void **state)
{
    struct fx *f = *state;
    /* The last samples are at 300 s: at 400 s they count with the default
     * 5 m lookback and not with a 1 m one. */
    expect_get(f, "/api/v1/query", KV("query", "count(up)", "time", "400", "lookback_delta", "1m"),
               200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
    expect_get(f, "/api/v1/query", KV("query", "count(up)", "time", "400"), 200,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
               "{\"metric\":{},\"value\":[400,\"2\"]}]}}");
}

static void query_stats_adds_a_stats_object(void **state)
{
    struct fx *f = *state;
    struct htc_resp r;
    assert_int_equal(
        do_get(f, "/api/v1/query", KV("query", "up", "time", "60", "stats", "all"), &r), 200);
    assert_non_null(strstr(r.body, ",\"stats\":{\"timings\":{\"evalTotalTime\":"));
    assert_non_null(strstr(r.body, "\"samples\":{\"totalQueryableSamples\":"));
    htc_resp_free(&r);
}

static void query_reports_engine_annotations_as_infos(void **state)
{
    struct fx *f = *state;
    struct htc_resp r;
    assert_int_equal(do_get(f, "/api/v1/query", KV("query", "rate(up[1m])", "time", "60"), &r),
                     200);
    assert_non_null(strstr(r.body, ",\"infos\":[\"PromQL info: "));
    htc_resp_free(&r);
}

/* ---- series and labels ---------------------------------------------------------------------- */

static void series_lists_matching_label_sets_once(void **state)
{
    struct fx *f = *state;
    const char *want = "{\"status\":\"success\",\"data\":["
                       "{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
                       "{\"__name__\":\"up\",\"instance\":\"b\",\"job\":\"api\"}]}";
    expect_get(f, "/api/v1/series", KV("match[]", "up"), 200, want);
    expect_get(f, "/api/v1/series",
               KV("match[]", "up", "match[]", "{instance=\"a\"}", "start", "0", "end", "300"), 200,
               want);
    struct htc_resp r;
    assert_int_equal(do_post(f, "/api/v1/series", KV("match[]", "up{instance=~\"a|b\"}"), &r), 200);
    assert_string_equal(r.body, want);
    htc_resp_free(&r);
    expect_get(f, "/api/v1/series", KV("match[]", "up", "limit", "1"), 200,
               "{\"status\":\"success\",\"data\":["
               "{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"}],"
               "\"warnings\":[\"results truncated due to limit\"]}");
    expect_get(f, "/api/v1/series", KV("match[]", "nothing_here"), 200,
               "{\"status\":\"success\",\"data\":[]}");
}

static void series_errors_use_prometheus_messages(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/series", KV("start", "0"), 400, BAD("no match[] parameter provided"));
    expect_get(f, "/api/v1/series", KV("match[]", "up{"), 400,
               BAD("invalid parameter \\\"match[]\\\": 1:4: parse error: unexpected end of input "
                   "inside braces"));
    expect_get(f, "/api/v1/series", KV("match[]", "up", "start", "yesterday"), 400,
               BAD("invalid parameter \\\"start\\\": cannot parse \\\"yesterday\\\" to a valid "
                   "timestamp"));
    expect_get(f, "/api/v1/series", KV("match[]", "{job=~\".*\"}"), 400,
               BAD("invalid parameter \\\"match[]\\\": 1:1: parse error: vector selector must "
                   "contain at least one non-empty matcher"));
    expect_get(f, "/api/v1/series", KV("match[]", "up", "limit", "many"), 400,
               BAD("invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"many\\\": invalid "
                   "syntax"));
}

static void labels_lists_names_with_and_without_matchers(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/labels", KV("start", "0"), 200,
               "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"instance\",\"job\"]}");
    expect_get(f, "/api/v1/labels", KV("match[]", "http_requests_total"), 200,
               "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"job\"]}");
    expect_get(f, "/api/v1/labels", KV("match[]", "http_requests_total", "match[]", "up"), 200,
               "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"instance\",\"job\"]}");
    expect_get(f, "/api/v1/labels", KV("limit", "2"), 200,
               "{\"status\":\"success\",\"data\":[\"__name__\",\"code\"],"
               "\"warnings\":[\"results truncated due to limit\"]}");
}

static void label_values_lists_values_and_unescapes_names(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/label/job/values", KV("start", "0"), 200,
               "{\"status\":\"success\",\"data\":[\"api\"]}");
    expect_get(f, "/api/v1/label/__name__/values", KV("start", "0"), 200,
               "{\"status\":\"success\",\"data\":[\"http_requests_total\",\"up\"]}");
    expect_get(f, "/api/v1/label/code/values", KV("match[]", "http_requests_total{code!=\"500\"}"),
               200, "{\"status\":\"success\",\"data\":[\"200\"]}");
    expect_get(f, "/api/v1/label/U__inst_61_nce/values", KV("start", "0"), 200,
               "{\"status\":\"success\",\"data\":[\"a\",\"b\"]}");
    expect_get(f, "/api/v1/label/no_such/values", KV("start", "0"), 200,
               "{\"status\":\"success\",\"data\":[]}");
}

static void label_values_rejects_invalid_names(void **state)
{
    struct fx *f = *state;
    expect_get(f, "/api/v1/label/%FF/values", KV("start", "0"), 400,
               BAD("invalid label name: \\\"\\\\xff\\\""));
    expect_get(f, "/api/v1/label/job/values", KV("end", "never"), 400,
               BAD("invalid parameter \\\"end\\\": cannot parse \\\"never\\\" to a valid "
                   "timestamp"));
    expect_get_prefix(f, "/api/v1/label/job/other", KV("start", "0"), 404,
                      "{\"status\":\"error\",\"errorType\":\"not_found\"");
}

/* ---- metadata and status -------------------------------------------------------------------- */

static void empty_sources_answer_what_prometheus_answers(void **state)
{
    struct fx *f = *state;
    const char *const *none = KV(NULL);
    expect_get(f, "/api/v1/targets", none, 200,
               "{\"status\":\"success\",\"data\":{\"activeTargets\":[],\"droppedTargets\":[]}}");
    expect_get(f, "/api/v1/targets/metadata", none, 200, "{\"status\":\"success\",\"data\":[]}");
    expect_get(f, "/api/v1/metadata", none, 200, "{\"status\":\"success\",\"data\":{}}");
    expect_get(f, "/api/v1/rules", none, 200, "{\"status\":\"success\",\"data\":{\"groups\":[]}}");
    expect_get(f, "/api/v1/rules", KV("type", "bogus"), 400,
               BAD("invalid parameter \\\"type\\\": not supported value \\\"bogus\\\""));
    expect_get(f, "/api/v1/alerts", none, 200, "{\"status\":\"success\",\"data\":{\"alerts\":[]}}");
    expect_get(f, "/api/v1/alertmanagers", none, 200,
               "{\"status\":\"success\",\"data\":{\"activeAlertmanagers\":[],"
               "\"droppedAlertmanagers\":[]}}");
    expect_get(f, "/api/v1/query_exemplars", KV("query", "up", "start", "0", "end", "10"), 200,
               "{\"status\":\"success\",\"data\":[]}");
    expect_get(f, "/api/v1/query_exemplars", KV("query", "up", "start", "10", "end", "0"), 400,
               BAD("end timestamp must not be before start time"));
    expect_get(f, "/api/v1/status/walreplay", none, 200,
               "{\"status\":\"success\",\"data\":{\"min\":0,\"max\":0,\"current\":0}}");
}

static void status_endpoints_describe_the_server(void **state)
{
    struct fx *f = *state;
    const char *const *none = KV(NULL);
    expect_get_prefix(f, "/api/v1/status/buildinfo", none, 200,
                      "{\"status\":\"success\",\"data\":{\"version\":\"3.0.0\",\"revision\":");
    expect_get(f, "/api/v1/status/flags", none, 200,
               "{\"status\":\"success\",\"data\":{\"storage.tsdb.retention.time\":\"15d\"}}");
    expect_get(f, "/api/v1/status/config", none, 200,
               "{\"status\":\"success\",\"data\":{\"yaml\":\"global:\\n  scrape_interval: "
               "15s\\n\"}}");
    expect_get(f, "/api/v1/status/tsdb", none, 200,
               "{\"status\":\"success\",\"data\":{\"headStats\":{\"numSeries\":0,"
               "\"numLabelPairs\":0,\"chunkCount\":0,\"minTime\":0,\"maxTime\":0},"
               "\"seriesCountByMetricName\":[],\"labelValueCountByLabelName\":[],"
               "\"memoryInBytesByLabelName\":[],\"seriesCountByLabelValuePair\":[]}}");
    expect_get(f, "/api/v1/status/tsdb", KV("limit", "0"), 400,
               BAD("limit must be a positive number"));
    expect_get_prefix(f, "/api/v1/status/runtimeinfo", none, 200,
                      "{\"status\":\"success\",\"data\":{\"startTime\":\"");
}

static int fake_tsdb_status(void *arg, size_t top_n, struct tsdb_status *out, struct hs_err *err)
{
    static struct tsdb_stat_entry metric[] = {{"up", 2}, {"http_requests_total", 2}};
    out->num_series = 4;
    out->num_label_pairs = 7;
    out->chunk_count = 4;
    out->min_time_ms = 0;
    out->max_time_ms = 300000;
    out->series_count_by_metric_name = metric;
    out->n_by_metric = top_n < 2 ? top_n : 2;
    *(int *)arg += 1;
    return HS_OK;
}

static void fake_tsdb_release(void *arg, struct tsdb_status *st)
{
    *(int *)arg += 10;
}

static void tsdb_status_comes_from_the_callback(void **state)
{
    struct fx f;
    fx_init(&f);
    int calls = 0;
    f.cfg.tsdb_status = fake_tsdb_status;
    f.cfg.tsdb_status_release = fake_tsdb_release;
    f.cfg.tsdb_status_arg = &calls;
    fx_start(&f);
    expect_get(&f, "/api/v1/status/tsdb", KV("limit", "1"), 200,
               "{\"status\":\"success\",\"data\":{\"headStats\":{\"numSeries\":4,"
               "\"numLabelPairs\":7,\"chunkCount\":4,\"minTime\":0,\"maxTime\":300000},"
               "\"seriesCountByMetricName\":[{\"name\":\"up\",\"value\":2}],"
               "\"labelValueCountByLabelName\":[],"
               "\"memoryInBytesByLabelName\":[],\"seriesCountByLabelValuePair\":[]}}");
    assert_int_equal(calls, 11);
    fx_stop(&f);
}

/* ---- admin -------------------------------------------------------------------------------- */

static void admin_endpoints_are_disabled_by_default(void **state)
{
    struct fx *f = *state;
    const char *want = "{\"status\":\"error\",\"errorType\":\"unavailable\",\"error\":\"admin APIs "
                       "disabled\"}";
    struct htc_resp r;
    assert_int_equal(do_post(f, "/api/v1/admin/tsdb/delete_series", KV("match[]", "up"), &r), 503);
    assert_string_equal(r.body, want);
    htc_resp_free(&r);
    assert_int_equal(do_post(f, "/api/v1/admin/tsdb/clean_tombstones", KV(NULL), &r), 503);
    assert_string_equal(r.body, want);
    htc_resp_free(&r);
    assert_int_equal(f->deleted.calls, 0);
}

static void admin_delete_series_calls_back_and_answers_204(void **state)
{
    struct fx f;
    fx_init(&f);
    f.cfg.enable_admin = true;
    fx_start(&f);
    struct htc_resp r;
    assert_int_equal(do_post(&f, "/api/v1/admin/tsdb/delete_series",
                             KV("match[]", "up{job=\"api\"}", "match[]", "x", "start", "10"), &r),
                     204);
    htc_resp_free(&r);
    assert_int_equal(f.deleted.calls, 2);
    assert_string_equal(f.deleted.first, "job 0 api");
    assert_int_equal(f.deleted.mint_ms, 10000);
    assert_int_equal(f.deleted.maxt_ms, API_PROM_MAX_TIME_MS);
    assert_int_equal(do_post(&f, "/api/v1/admin/tsdb/delete_series", KV("start", "1"), &r), 400);
    assert_string_equal(r.body, BAD("no match[] parameter provided"));
    htc_resp_free(&r);
    assert_int_equal(do_post(&f, "/api/v1/admin/tsdb/clean_tombstones", KV(NULL), &r), 204);
    htc_resp_free(&r);
    fx_stop(&f);
}

/* ---- pool: queue bound and cancellation ---------------------------------------------------- */

static void wait_entered(struct fx *f)
{
    while (sem_wait(&f->gate.entered) != 0 && errno == EINTR) {
    }
}

struct load_probe {
    struct fx *f;
    int load;
};

static void load_cb(void *arg)
{
    struct load_probe *lp = arg;
    lp->load = api_prom_queries_in_flight(lp->f->api);
}

/* Waits (through loop round trips, bounded by alarm()) until 'n' queries
 * are running or queued. */
static void wait_load(struct fx *f, int n)
{
    struct load_probe lp = {f, -1};
    do {
        hts_call(&f->hts, load_cb, &lp);
    } while (lp.load != n);
}

static void send_query(struct fx *f, struct htc *c)
{
    char q[1024], req[2048];
    form(q, sizeof(q), KV("query", "up", "time", "60"));
    snprintf(req, sizeof(req), "GET /api/v1/query?%s HTTP/1.1\r\nHost: t\r\n\r\n", q);
    assert_int_equal(htc_open(c, f->hts.port), 0);
    assert_int_equal(htc_send_str(c, req), 0);
}

static void full_queue_answers_503_too_many_queries(void **state)
{
    struct fx f;
    fx_init(&f);
    f.cfg.workers = 1;
    f.cfg.max_queued = 1;
    fx_start(&f);
    atomic_store(&f.gate.is_closed, true);
    struct htc a, b;
    send_query(&f, &a);
    wait_entered(&f); /* a runs, blocked in the storage */
    send_query(&f, &b);
    wait_load(&f, 2); /* b is queued: a third query finds no room */
    struct htc_resp r;
    assert_int_equal(do_get(&f, "/api/v1/query", KV("query", "up", "time", "60"), &r), 503);
    assert_string_equal(r.body, "{\"status\":\"error\",\"errorType\":\"unavailable\",\"error\":"
                                "\"too many queries: 2 running or waiting, try again later\"}");
    htc_resp_free(&r);
    atomic_store(&f.gate.is_closed, false);
    sem_post(&f.gate.release); /* let a through; b then runs with the gate open */
    struct htc_resp ra, rb;
    assert_int_equal(htc_read(&a, &ra, false), 0);
    assert_int_equal(htc_read(&b, &rb, false), 0);
    assert_int_equal(ra.status, 200);
    assert_int_equal(rb.status, 200);
    assert_string_equal(ra.body, rb.body);
    htc_resp_free(&ra);
    htc_resp_free(&rb);
    htc_close(&a);
    htc_close(&b);
    fx_stop(&f);
}

/* Blocks until the monotonic clock has moved by at least 'ms' (so a deadline
 * is known to have passed; the outcome does not depend on how long). */
static void let_time_pass(int64_t ms)
{
    int64_t end = hs_mono_ns() + ms * 1000000;
    while (hs_mono_ns() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void query_past_its_deadline_in_the_engine_answers_503_timeout(void **state)
{
    struct fx f;
    fx_init(&f);
    f.cfg.workers = 1;
    fx_start(&f);
    atomic_store(&f.gate.is_closed, true);
    struct htc a;
    char q[1024], req[2048];
    form(q, sizeof(q),
         KV("query", "sum(rate(http_requests_total[5m]))", "time", "300", "timeout", "50ms"));
    snprintf(req, sizeof(req), "GET /api/v1/query?%s HTTP/1.1\r\nHost: t\r\n\r\n", q);
    assert_int_equal(htc_open(&a, f.hts.port), 0);
    assert_int_equal(htc_send_str(&a, req), 0);
    wait_entered(&f); /* the engine is inside the storage; its deadline is 50 ms away */
    let_time_pass(100);
    atomic_store(&f.gate.is_closed, false);
    sem_post(&f.gate.release);
    struct htc_resp r;
    assert_int_equal(htc_read(&a, &r, false), 0);
    if (r.status != 503 ||
        strncmp(r.body, "{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":\"", 46) != 0)
        fail_msg("got %d %s", r.status, r.body);
    htc_resp_free(&r);
    htc_close(&a);
    fx_stop(&f);
}

static void finished_requests_cb(void *arg)
{
    struct fx *f = arg;
    struct http_server_stats st;
    http_server_get_stats(f->hts.srv, &st);
    f->deleted.calls = (int)st.requests_in_flight; /* reused as a scratch slot */
}

static void client_leaving_mid_query_is_released_and_the_pool_keeps_serving(void **state)
{
    struct fx f;
    fx_init(&f);
    f.cfg.workers = 1;
    fx_start(&f);
    atomic_store(&f.gate.is_closed, true);
    struct htc a;
    send_query(&f, &a);
    wait_entered(&f);
    htc_close(&a); /* the client leaves while its query runs */
    atomic_store(&f.gate.is_closed, false);
    sem_post(&f.gate.release);
    /* The single worker is free again: a new query is answered. */
    expect_get(&f, "/api/v1/query", KV("query", "up{instance=\"a\"}", "time", "60"), 200,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
               "{\"metric\":{\"__name__\":\"up\",\"instance\":\"a\",\"job\":\"api\"},"
               "\"value\":[60,\"1\"]}]}}");
    hts_call(&f.hts, finished_requests_cb, &f);
    assert_int_equal(f.deleted.calls, 0);
    fx_stop(&f);
}

static void freeing_the_api_answers_queued_queries_503(void **state)
{
    struct fx f;
    fx_init(&f);
    f.cfg.workers = 1;
    f.cfg.max_queued = 4;
    fx_start(&f);
    atomic_store(&f.gate.is_closed, true);
    struct htc a, b;
    send_query(&f, &a);
    wait_entered(&f);
    send_query(&f, &b);
    wait_load(&f, 2);
    atomic_store(&f.gate.is_closed, false);
    sem_post(&f.gate.release); /* a finishes (its cancel flag may already be set) */
    hts_call(&f.hts, free_api, &f);
    struct htc_resp ra, rb;
    assert_int_equal(htc_read(&a, &ra, false), 0);
    assert_int_equal(htc_read(&b, &rb, false), 0);
    assert_true(ra.status == 200 || ra.status == 503);
    assert_true(rb.status == 200 || rb.status == 503);
    htc_resp_free(&ra);
    htc_resp_free(&rb);
    htc_close(&a);
    htc_close(&b);
    fx_stop(&f);
}

int main(void)
{
    evthread_use_pthreads();
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(query_answers_a_vector_in_prometheus_json),
        cmocka_unit_test(query_answers_a_scalar),
        cmocka_unit_test(query_reads_a_post_form_body),
        cmocka_unit_test(query_range_answers_a_matrix_with_float_or_duration_steps),
        cmocka_unit_test(query_errors_use_prometheus_messages),
        cmocka_unit_test(query_range_errors_use_prometheus_messages),
        cmocka_unit_test(query_with_zero_timeout_times_out_with_503),
        cmocka_unit_test(query_limit_truncates_series_with_a_warning),
        cmocka_unit_test(query_lookback_delta_changes_how_far_back_samples_count),
        cmocka_unit_test(query_stats_adds_a_stats_object),
        cmocka_unit_test(query_reports_engine_annotations_as_infos),
        cmocka_unit_test(series_lists_matching_label_sets_once),
        cmocka_unit_test(series_errors_use_prometheus_messages),
        cmocka_unit_test(labels_lists_names_with_and_without_matchers),
        cmocka_unit_test(label_values_lists_values_and_unescapes_names),
        cmocka_unit_test(label_values_rejects_invalid_names),
        cmocka_unit_test(empty_sources_answer_what_prometheus_answers),
        cmocka_unit_test(status_endpoints_describe_the_server),
        cmocka_unit_test(admin_endpoints_are_disabled_by_default),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(tsdb_status_comes_from_the_callback),
        cmocka_unit_test(admin_delete_series_calls_back_and_answers_204),
        cmocka_unit_test(full_queue_answers_503_too_many_queries),
        cmocka_unit_test(client_leaving_mid_query_is_released_and_the_pool_keeps_serving),
        cmocka_unit_test(freeing_the_api_answers_queued_queries_503),
        cmocka_unit_test(query_past_its_deadline_in_the_engine_answers_503_timeout),
    };
    int failed = cmocka_run_group_tests_name("shared server", tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("own server", own, NULL, NULL);
    return failed;
}
