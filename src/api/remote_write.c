/*
 * remote_write.c - POST /api/v1/write, the Prometheus remote-write 1.0
 * receiver (spec: /work/shared/spec/remote-write.md, contract in api.h).
 *
 * One request: check the headers (415 for what is not remote-write 1.0),
 * the body size (413), decode and validate the whole body with
 * export_rw_decode (400/413, nothing stored when it fails), then add every
 * sample to one tsdb appender and commit it once.  Samples the store
 * refuses (out of order, duplicate, too old, limits) are counted by reason
 * and the rest is still committed; the answer is then 400 with a summary,
 * so the sender drops the batch instead of retrying it forever.  A commit
 * failure is a 500: the sender must retry.
 *
 * Everything runs on the loop thread; the counters are atomics so that
 * the stats and the collector can be read from anywhere.
 */
#include "api/api.h"

#include "export/export.h"
#include "tsdb/tsdb.h"

#include <stdatomic.h>
#include <string.h>
#include <strings.h>

enum { CODE_204, CODE_400, CODE_413, CODE_415, CODE_500, CODE_OTHER, N_CODES };

static const char *const CODE_NAMES[N_CODES] = {"204", "400", "413", "415", "500", "other"};

enum reason { R_OUT_OF_ORDER, R_DUPLICATE, R_TOO_OLD, R_LIMIT, R_OTHER, N_REASONS };

static const char *const REASON_NAMES[N_REASONS] = {"out_of_order", "duplicate", "too_old", "limit",
                                                    "other"};

struct api_remote_write {
    struct tsdb *db; /* borrowed */
    struct api_remote_write_config cfg;
    /* Counters, written on the loop thread, read anywhere. */
    _Atomic uint64_t requests_by_code[N_CODES];
    _Atomic uint64_t bytes_received;
    _Atomic uint64_t bytes_decompressed;
    _Atomic uint64_t samples_received;
    _Atomic uint64_t samples_appended;
    _Atomic uint64_t rejected[N_REASONS];
    _Atomic uint64_t exemplars_dropped;
    _Atomic uint64_t histograms_dropped;
    _Atomic uint64_t metadata_dropped;
};

void api_remote_write_config_defaults(struct api_remote_write_config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_body_bytes = (size_t)16 << 20;
    export_rw_limits_defaults(&c->limits);
}

/* ---- answering -------------------------------------------------------------------- */

static void count_code(struct api_remote_write *rw, int status)
{
    int i = status == 204   ? CODE_204
            : status == 400 ? CODE_400
            : status == 413 ? CODE_413
            : status == 415 ? CODE_415
            : status == 500 ? CODE_500
                            : CODE_OTHER;
    atomic_fetch_add(&rw->requests_by_code[i], 1);
}

/* Answers 'status' with 'msg' as one line of text (no body for 204). */
static void answer(struct api_remote_write *rw, struct http_request *r, int status, const char *msg)
{
    count_code(rw, status);
    HS_IGNORE_RESULT(
        http_response_header(r, "X-Prometheus-Remote-Write-Version", EXPORT_RW_VERSION));
    if (status == 204 || msg == NULL) {
        http_respond(r, status, NULL, NULL, 0);
        return;
    }
    struct hs_arena *a = http_request_arena(r);
    char *line = hs_arena_printf(a, "%s\n", msg);
    if (line == NULL)
        http_respond(r, status, "text/plain; charset=utf-8", msg, strlen(msg));
    else
        http_respond(r, status, "text/plain; charset=utf-8", line, strlen(line));
}

/* ---- header checks ---------------------------------------------------------------- */

/* 'v' trimmed of spaces and tabs: [*b, *e). */
static void trim(const char *v, const char **b, const char **e)
{
    const char *s = v, *t = v + strlen(v);
    while (s < t && (*s == ' ' || *s == '\t'))
        s++;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
    *b = s;
    *e = t;
}

static bool span_ieq(const char *b, const char *e, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(e - b) == n && strncasecmp(b, lit, n) == 0;
}

/* Checks Content-Type: absent, or application/x-protobuf with no proto
 * parameter or proto=prometheus.WriteRequest.  Fills msg on refusal. */
static bool content_type_ok(const char *ct, char *msg, size_t cap)
{
    if (ct == NULL)
        return true;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    char media[128];
    if (n >= sizeof(media))
        n = sizeof(media) - 1;
    memcpy(media, ct, n);
    media[n] = '\0';
    const char *b, *e;
    trim(media, &b, &e);
    if (!span_ieq(b, e, "application/x-protobuf")) {
        snprintf(msg, cap,
                 "unsupported Content-Type \"%.100s\": remote-write 1.0 expects "
                 "application/x-protobuf",
                 ct);
        return false;
    }
    for (const char *p = semi; p != NULL; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncasecmp(q, "proto=", 6) != 0)
            continue;
        const char *vb = q + 6, *ve = vb + strcspn(vb, "; \t");
        if (!span_ieq(vb, ve, "prometheus.WriteRequest")) {
            snprintf(msg, cap,
                     "unsupported Content-Type \"%.100s\": only remote-write 1.0 "
                     "(prometheus.WriteRequest) is supported",
                     ct);
            return false;
        }
    }
    return true;
}

/* Checks the headers; returns 0 when acceptable, else 415 with msg set. */
static int check_headers(struct http_request *r, char *msg, size_t cap)
{
    const char *enc = http_request_header(r, "Content-Encoding");
    if (enc != NULL) {
        const char *b, *e;
        trim(enc, &b, &e);
        if (!span_ieq(b, e, "snappy")) {
            snprintf(msg, cap, "unsupported Content-Encoding \"%.100s\": only snappy is supported",
                     enc);
            return 415;
        }
    }
    if (!content_type_ok(http_request_header(r, "Content-Type"), msg, cap))
        return 415;
    const char *ver = http_request_header(r, "X-Prometheus-Remote-Write-Version");
    if (ver != NULL && !(hs_has_prefix(ver, "0.") || hs_has_prefix(ver, "1.") ||
                         hs_streq(ver, "0") || hs_streq(ver, "1"))) {
        snprintf(msg, cap,
                 "unsupported X-Prometheus-Remote-Write-Version \"%.100s\": this receiver "
                 "speaks 0.1.0 (remote-write 1.x)",
                 ver);
        return 415;
    }
    return 0;
}

/* ---- appending ------------------------------------------------------------------- */

struct append_result {
    uint64_t appended;
    uint64_t rejected[N_REASONS];
    uint64_t n_rejected;
    char first[512]; /* the first refusal, for the 400 body */
};

static enum reason classify(int rc, const char *msg)
{
    if (rc == HS_ETOOBIG)
        return R_LIMIT;
    if (strstr(msg, "out of order") != NULL)
        return R_OUT_OF_ORDER;
    if (strstr(msg, "duplicate sample") != NULL)
        return R_DUPLICATE;
    if (strstr(msg, "too old") != NULL)
        return R_TOO_OLD;
    return R_OTHER;
}

static void note_rejection(struct append_result *res, const struct export_rw_series *s,
                           int64_t t_ms, int rc, const struct hs_err *e)
{
    res->rejected[classify(rc, e->msg)]++;
    if (res->n_rejected++ > 0)
        return;
    struct hs_buf lb;
    hs_buf_init(&lb, 300);
    if (hs_labels_format(&s->labels, &lb) != HS_OK)
        hs_buf_reset(&lb);
    snprintf(res->first, sizeof(res->first), "%.200s for series %.250s at timestamp %lld", e->msg,
             lb.p ? lb.p : "{...}", (long long)t_ms);
    hs_buf_cleanup(&lb);
}

/* Adds every sample; returns HS_OK or HS_ENOMEM (batch to be rolled back). */
static int append_all(struct tsdb_appender *app, const struct export_rw_request *req,
                      struct append_result *res, struct hs_err *err)
{
    for (size_t i = 0; i < req->n_series; i++) {
        const struct export_rw_series *s = &req->series[i];
        uint64_t ref = 0;
        bool has_ref = false;
        for (size_t k = 0; k < s->n_samples; k++) {
            struct hs_err e = {0};
            int rc;
            if (has_ref) {
                rc = tsdb_appender_add_ref(app, ref, s->samples[k].t_ms, s->samples[k].v, &e);
                if (rc == HS_ENOTFOUND)
                    rc = tsdb_appender_add(app, &s->labels, s->samples[k].t_ms, s->samples[k].v,
                                           &ref, &e);
            } else {
                rc = tsdb_appender_add(app, &s->labels, s->samples[k].t_ms, s->samples[k].v, &ref,
                                       &e);
                has_ref = rc == HS_OK;
            }
            if (rc == HS_OK) {
                res->appended++;
            } else if (rc == HS_ENOMEM) {
                return hs_err_set(err, HS_ENOMEM, "out of memory appending samples");
            } else {
                note_rejection(res, s, s->samples[k].t_ms, rc, &e);
            }
        }
    }
    return HS_OK;
}

/* Appends and commits a decoded request, then answers. */
static void store(struct api_remote_write *rw, struct http_request *r,
                  const struct export_rw_request *req)
{
    struct append_result res;
    memset(&res, 0, sizeof(res));
    struct hs_err err = {0};
    struct tsdb_appender *app = tsdb_appender_new(rw->db);
    if (app == NULL) {
        answer(rw, r, 500, "out of memory: could not start a batch");
        return;
    }
    int rc = append_all(app, req, &res, &err);
    if (rc != HS_OK) {
        tsdb_appender_rollback(app);
        answer(rw, r, 500, err.msg);
        return;
    }
    rc = tsdb_appender_commit(app, &err);
    for (int i = 0; i < N_REASONS; i++)
        atomic_fetch_add(&rw->rejected[i], res.rejected[i]);
    if (rc != HS_OK) {
        char msg[sizeof(err.msg) + 64];
        snprintf(msg, sizeof(msg), "storage error, retry later: %s", err.msg);
        answer(rw, r, 500, msg);
        return;
    }
    atomic_fetch_add(&rw->samples_appended, res.appended);
    if (res.n_rejected == 0) {
        answer(rw, r, 204, NULL);
        return;
    }
    char *msg = hs_arena_printf(
        http_request_arena(r),
        "%llu of %zu samples rejected (out of order: %llu, duplicate: %llu, too old: %llu, "
        "limits: %llu, other: %llu); the others were stored; first: %s",
        (unsigned long long)res.n_rejected, req->n_samples,
        (unsigned long long)res.rejected[R_OUT_OF_ORDER],
        (unsigned long long)res.rejected[R_DUPLICATE], (unsigned long long)res.rejected[R_TOO_OLD],
        (unsigned long long)res.rejected[R_LIMIT], (unsigned long long)res.rejected[R_OTHER],
        res.first);
    answer(rw, r, 400, msg != NULL ? msg : "samples rejected");
}

/* ---- the handler ------------------------------------------------------------------ */

static int decode_status(int code)
{
    switch (code) {
    case HS_ETOOBIG:
        return 413;
    case HS_ENOMEM:
        return 500;
    default:
        return 400;
    }
}

static void handle_write(struct http_request *r, void *arg)
{
    struct api_remote_write *rw = arg;
    char msg[300];
    int status = check_headers(r, msg, sizeof(msg));
    if (status != 0) {
        answer(rw, r, status, msg);
        return;
    }
    size_t len = 0;
    const char *body = http_request_body(r, &len);
    atomic_fetch_add(&rw->bytes_received, len);
    if (len > rw->cfg.max_body_bytes) {
        snprintf(msg, sizeof(msg), "request body of %zu bytes exceeds the limit of %zu bytes", len,
                 rw->cfg.max_body_bytes);
        answer(rw, r, 413, msg);
        return;
    }
    struct export_rw_request req;
    struct hs_err err = {0};
    int rc = export_rw_decode(body, len, &rw->cfg.limits, &req, &err);
    if (rc != HS_OK) {
        answer(rw, r, decode_status(rc), err.msg);
        return;
    }
    atomic_fetch_add(&rw->bytes_decompressed, req.decompressed_bytes);
    atomic_fetch_add(&rw->samples_received, req.n_samples);
    atomic_fetch_add(&rw->exemplars_dropped, req.n_exemplars);
    atomic_fetch_add(&rw->histograms_dropped, req.n_histograms);
    atomic_fetch_add(&rw->metadata_dropped, req.n_metadata);
    store(rw, r, &req);
    export_rw_request_cleanup(&req);
}

/* ---- public ----------------------------------------------------------------------- */

struct api_remote_write *api_remote_write_register(struct http_server *srv, struct tsdb *db,
                                                   const struct api_remote_write_config *cfg,
                                                   struct hs_err *err)
{
    if (srv == NULL || db == NULL) {
        hs_err_set(err, HS_EINVAL, "remote-write receiver needs a server and a store");
        return NULL;
    }
    struct api_remote_write *rw = hs_calloc(1, sizeof(*rw));
    if (rw == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory for the remote-write receiver");
        return NULL;
    }
    rw->db = db;
    if (cfg != NULL)
        rw->cfg = *cfg;
    else
        api_remote_write_config_defaults(&rw->cfg);
    if (rw->cfg.max_body_bytes == 0)
        rw->cfg.max_body_bytes = (size_t)16 << 20;
    int rc = http_server_route(srv, "POST", "/api/v1/write", "/api/v1/write", handle_write, rw);
    if (rc != HS_OK) {
        hs_err_set(err, rc, "cannot route /api/v1/write: %s", hs_strerror(rc));
        hs_free(rw);
        return NULL;
    }
    return rw;
}

void api_remote_write_free(struct api_remote_write *rw)
{
    hs_free(rw);
}

void api_remote_write_get_stats(const struct api_remote_write *rw,
                                struct api_remote_write_stats *out)
{
    struct api_remote_write *m = (struct api_remote_write *)(uintptr_t)rw;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < N_CODES; i++) {
        out->requests_by_code[i] = atomic_load(&m->requests_by_code[i]);
        out->requests += out->requests_by_code[i];
    }
    out->bytes_received = atomic_load(&m->bytes_received);
    out->bytes_decompressed = atomic_load(&m->bytes_decompressed);
    out->samples_received = atomic_load(&m->samples_received);
    out->samples_appended = atomic_load(&m->samples_appended);
    out->rejected_out_of_order = atomic_load(&m->rejected[R_OUT_OF_ORDER]);
    out->rejected_duplicate = atomic_load(&m->rejected[R_DUPLICATE]);
    out->rejected_too_old = atomic_load(&m->rejected[R_TOO_OLD]);
    out->rejected_limit = atomic_load(&m->rejected[R_LIMIT]);
    out->rejected_other = atomic_load(&m->rejected[R_OTHER]);
    out->exemplars_dropped = atomic_load(&m->exemplars_dropped);
    out->histograms_dropped = atomic_load(&m->histograms_dropped);
    out->metadata_dropped = atomic_load(&m->metadata_dropped);
}

/* One counter family with a single unlabelled sample. */
static int counter(struct hs_buf *out, const char *name, const char *help, uint64_t v)
{
    int rc = api_expo_family(out, name, "counter", help);
    return rc == HS_OK ? api_expo_sample(out, name, NULL, (double)v) : rc;
}

int api_remote_write_collector(void *arg, struct hs_buf *out)
{
    struct api_remote_write_stats st;
    api_remote_write_get_stats(arg, &st);
    const char *req = "holoscope_remote_write_requests_total";
    int rc = api_expo_family(out, req, "counter", "Remote-write requests answered, by status.");
    for (int i = 0; rc == HS_OK && i < N_CODES; i++) {
        const char *labels[] = {"code", CODE_NAMES[i], NULL};
        rc = api_expo_sample(out, req, labels, (double)st.requests_by_code[i]);
    }
    const char *rej = "holoscope_remote_write_samples_rejected_total";
    if (rc == HS_OK)
        rc = api_expo_family(out, rej, "counter", "Received samples the store refused, by reason.");
    uint64_t by[N_REASONS] = {st.rejected_out_of_order, st.rejected_duplicate, st.rejected_too_old,
                              st.rejected_limit, st.rejected_other};
    for (int i = 0; rc == HS_OK && i < N_REASONS; i++) {
        const char *labels[] = {"reason", REASON_NAMES[i], NULL};
        rc = api_expo_sample(out, rej, labels, (double)by[i]);
    }
    if (rc == HS_OK)
        rc = counter(out, "holoscope_remote_write_samples_received_total",
                     "Samples in decoded remote-write requests.", st.samples_received);
    if (rc == HS_OK)
        rc = counter(out, "holoscope_remote_write_samples_appended_total",
                     "Remote-write samples stored.", st.samples_appended);
    if (rc == HS_OK)
        rc = counter(out, "holoscope_remote_write_received_bytes_total",
                     "Compressed remote-write body bytes received.", st.bytes_received);
    if (rc == HS_OK)
        rc = counter(out, "holoscope_remote_write_decompressed_bytes_total",
                     "Protobuf bytes of decoded remote-write requests.", st.bytes_decompressed);
    if (rc == HS_OK)
        rc = counter(out, "holoscope_remote_write_exemplars_dropped_total",
                     "Exemplars received and not stored.", st.exemplars_dropped);
    if (rc == HS_OK)
        rc = counter(out, "holoscope_remote_write_histograms_dropped_total",
                     "Native histogram samples received and not stored.", st.histograms_dropped);
    if (rc == HS_OK)
        rc = counter(out, "holoscope_remote_write_metadata_dropped_total",
                     "Metric metadata entries received and not stored.", st.metadata_dropped);
    return rc;
}
