/*
 * prom.c - the query side of the Prometheus HTTP API: /api/v1/query,
 * /query_range, /series, /labels and /label/<name>/values, plus the shared
 * answer writers that prom_meta.c uses.
 *
 * A request is validated on the loop thread in Prometheus' own order (so the
 * first error reported is the one Prometheus would report), copied into a
 * job and handed to the worker pool; the worker runs the query or look-up
 * and writes the whole JSON answer; the loop thread sends it.  A job owns
 * copies of everything it reads, never a request string, so the request may
 * be torn down (client gone) while a worker runs.
 *
 * Job states: submitted -> (worker) answered -> (loop) sent or released.
 * While a job is outstanding it is on p->jobs so api_prom_free can cancel it
 * and http's close callback can flag it; the request pointer is touched only
 * on the loop thread.
 */
#include "api/api.h"

#include "buildinfo.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The matcher sets of a request's match[] parameters (arena memory). */
struct msets {
    struct promql_matcher **sets; /* one array of matchers per match[] */
    size_t *lens;                 /* matchers in each */
    size_t n;                     /* number of match[] */
};

struct job;

struct api_prom {
    struct api_prom_config c; /* copied; defaults filled in */
    struct event_base *base;  /* borrowed */
    struct api_pool *pool;
    struct job *jobs; /* outstanding jobs (loop thread only) */
};

static int register_meta(struct api_prom *p, struct http_server *srv);

/* ---- answers ------------------------------------------------------------------ */

static int status_of(const char *error_type)
{
    if (strcmp(error_type, "bad_data") == 0)
        return 400;
    if (strcmp(error_type, "execution") == 0)
        return 422;
    if (strcmp(error_type, "timeout") == 0 || strcmp(error_type, "canceled") == 0 ||
        strcmp(error_type, "unavailable") == 0)
        return 503;
    if (strcmp(error_type, "not_found") == 0)
        return 404;
    if (strcmp(error_type, "not_acceptable") == 0)
        return 406;
    return 500;
}

static int error_json(struct hs_buf *out, const char *error_type, const char *msg)
{
    int rc = hs_buf_puts(out, "{\"status\":\"error\",\"errorType\":\"");
    if (rc == HS_OK)
        rc = hs_buf_puts(out, error_type);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "\",\"error\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, msg, strlen(msg));
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '}');
    return rc;
}

static void respond_error(struct http_request *r, const char *error_type, const char *fmt, ...)
    HS_PRINTF(3, 4);
static void respond_error(struct http_request *r, const char *error_type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    if (error_json(&b, error_type, msg) != HS_OK) {
        hs_buf_cleanup(&b);
        http_request_release(r);
        return;
    }
    http_respond(r, status_of(error_type), "application/json", b.p, b.len);
    hs_buf_cleanup(&b);
}

/* Annotations of one kind sent at most, as Prometheus' AsStrings(query, 10, 10). */
#define MAX_ANNOTATIONS 10

/*
 * Appends ,"key":[...] with the strings of 'v' and 'extra' (may be NULL),
 * nothing when there are none.  Past MAX_ANNOTATIONS the rest is counted in
 * one last string, "N more warning annotations omitted" ('kind' names them).
 */
static int warnings_json(struct hs_buf *out, const char *key, const char *const *v, size_t n,
                         const char *extra)
{
    size_t total = n + (extra != NULL ? 1 : 0);
    if (total == 0)
        return HS_OK;
    int rc = hs_buf_printf(out, ",\"%s\":[", key);
    for (size_t i = 0; rc == HS_OK && i < total && i < MAX_ANNOTATIONS; i++) {
        const char *s = i < n ? v[i] : extra;
        if (i > 0)
            rc = hs_buf_putc(out, ',');
        if (rc == HS_OK)
            rc = hs_buf_json_str(out, s, strlen(s));
    }
    if (rc == HS_OK && total > MAX_ANNOTATIONS)
        rc = hs_buf_printf(out, ",\"%zu more %s annotations omitted\"", total - MAX_ANNOTATIONS,
                           strcmp(key, "infos") == 0 ? "info" : "warning");
    if (rc == HS_OK)
        rc = hs_buf_putc(out, ']');
    return rc;
}

static void respond_data(struct http_request *r, const char *data, size_t len, const char *warning)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_puts(&b, "{\"status\":\"success\",\"data\":");
    if (rc == HS_OK)
        rc = hs_buf_append(&b, data, len);
    if (rc == HS_OK)
        rc = warnings_json(&b, "warnings", NULL, 0, warning);
    if (rc == HS_OK)
        rc = hs_buf_putc(&b, '}');
    if (rc != HS_OK) {
        hs_buf_cleanup(&b);
        respond_error(r, "internal", "out of memory");
        return;
    }
    http_respond(r, 200, "application/json", b.p, b.len);
    hs_buf_cleanup(&b);
}

static int labels_json(struct hs_buf *out, const struct hs_labels *ls)
{
    int rc = hs_buf_putc(out, '{');
    for (size_t i = 0; rc == HS_OK && i < ls->n; i++) {
        if (i > 0)
            rc = hs_buf_putc(out, ',');
        if (rc == HS_OK)
            rc = hs_buf_json_str(out, ls->v[i].name, strlen(ls->v[i].name));
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ':');
        if (rc == HS_OK)
            rc = hs_buf_json_str(out, ls->v[i].value, strlen(ls->v[i].value));
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '}');
    return rc;
}

/* ---- parameters ---------------------------------------------------------------- */

/* A time parameter with a default for absent or empty values. */
static int time_param(struct http_request *r, const char *name, int64_t def_ms, int64_t *t_ms)
{
    const char *v = http_request_param(r, name);
    if (v == NULL || v[0] == '\0') {
        *t_ms = def_ms;
        return HS_OK;
    }
    struct hs_err err = {0};
    if (api_prom_parse_time(v, t_ms, &err) != HS_OK) {
        respond_error(r, "bad_data", "invalid parameter \"%s\": %s", name, err.msg);
        return HS_EPARSE;
    }
    return HS_OK;
}

/*
 * Parses every match[] of 'r' into matcher sets in 'arena'.  Answers the
 * request with the error and returns it on failure.
 */
static int match_param(struct api_prom *p, struct http_request *r, struct hs_arena *arena,
                       struct msets *out)
{
    memset(out, 0, sizeof(*out));
    size_t max = p->c.max_matchers;
    size_t total = http_request_param_all(r, "match[]", NULL, 0);
    if (total == 0)
        return HS_OK;
    if (total > max) {
        respond_error(r, "bad_data",
                      "invalid parameter \"match[]\": at most %zu match[] "
                      "parameters are accepted, got %zu",
                      max, total);
        return HS_ETOOBIG;
    }
    const char **vals = hs_arena_alloc(arena, total * sizeof(*vals));
    out->sets = hs_arena_alloc(arena, total * sizeof(*out->sets));
    out->lens = hs_arena_alloc(arena, total * sizeof(*out->lens));
    if (vals == NULL || out->sets == NULL || out->lens == NULL) {
        respond_error(r, "internal", "out of memory");
        return HS_ENOMEM;
    }
    http_request_param_all(r, "match[]", vals, total);
    for (size_t i = 0; i < total; i++) {
        struct hs_err err = {0};
        int rc = api_prom_parse_selector(vals[i], arena, &out->sets[i], &out->lens[i], &err);
        if (rc != HS_OK) {
            respond_error(r, rc == HS_ENOMEM ? "internal" : "bad_data",
                          "invalid parameter \"match[]\": %s", err.msg);
            return rc;
        }
    }
    out->n = total;
    return HS_OK;
}

/* ---- jobs ------------------------------------------------------------------------ */

enum job_kind { JOB_QUERY = 0, JOB_RANGE, JOB_SERIES, JOB_LABELS, JOB_LABEL_VALUES };

struct job {
    struct api_pool_job pj; /* first: the pool's view */
    struct api_prom *p;
    struct http_request *r;  /* NULL once the request is gone from us */
    struct job *prev, *next; /* p->jobs */
    int kind;                /* enum job_kind */
    atomic_bool cancel;      /* set by the loop thread: client gone or shutting down */
    bool is_client_gone;
    char *query; /* copies, from 'arena' */
    char *req_id;
    const char *label_name;
    int64_t t_ms, start_ms, end_ms, step_ms;
    int64_t lookback_ms; /* 0: the engine's */
    int64_t limit;       /* 0: none */
    int64_t deadline_ns; /* hs_mono_ns() clock */
    int64_t submit_ns;
    bool want_stats;
    struct msets msets;
    struct hs_arena arena; /* owns the job's inputs and look-up results */
    int status;            /* HTTP status of 'out' */
    struct hs_buf out;     /* the whole answer */
};

static struct job *job_new(struct api_prom *p, struct http_request *r, int kind)
{
    struct job *j = hs_calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->p = p;
    j->r = r;
    j->kind = kind;
    atomic_init(&j->cancel, false);
    hs_arena_init(&j->arena, 4096, 0);
    hs_buf_init(&j->out, p->c.max_response_bytes);
    j->submit_ns = hs_mono_ns();
    j->deadline_ns = j->submit_ns + p->c.timeout_ms * 1000000;
    const char *id = http_request_id(r);
    j->req_id = hs_arena_strndup(&j->arena, id ? id : "", id ? strlen(id) : 0);
    if (j->req_id == NULL) {
        hs_arena_cleanup(&j->arena);
        hs_free(j);
        return NULL;
    }
    return j;
}

static void job_free(struct job *j)
{
    hs_buf_cleanup(&j->out);
    hs_arena_cleanup(&j->arena);
    hs_free(j);
}

static void job_unlink(struct job *j)
{
    if (j->prev != NULL)
        j->prev->next = j->next;
    else if (j->p->jobs == j)
        j->p->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

/* Replaces whatever the worker wrote with an error answer. */
static void job_error(struct job *j, const char *error_type, const char *fmt, ...) HS_PRINTF(3, 4);
static void job_error(struct job *j, const char *error_type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hs_buf_reset(&j->out);
    j->status = status_of(error_type);
    size_t max = j->out.max;
    j->out.max = 0; /* an error answer always fits */
    if (error_json(&j->out, error_type, msg) != HS_OK)
        j->status = -1;
    j->out.max = max;
}

static void on_client_close(struct http_request *r, void *arg)
{
    struct job *j = arg;
    j->is_client_gone = true;
    atomic_store(&j->cancel, true);
}

static void job_done(struct api_pool_job *pj, int status)
{
    struct job *j = (struct job *)pj;
    job_unlink(j);
    if (status != HS_OK)
        job_error(j, "unavailable", "query was not run: the server is shutting down");
    if (j->r != NULL) {
        if (j->is_client_gone || j->status < 0)
            http_request_release(j->r);
        else
            http_respond(j->r, j->status, "application/json", j->out.p, j->out.len);
        j->r = NULL;
    }
    job_free(j);
}

/* ---- query work (worker thread) ------------------------------------------------------- */

static int stats_json(struct job *j, const struct promql_result *res, int64_t start_ns,
                      int64_t end_ns)
{
    /* Insert before the closing brace of the data object. */
    if (j->out.len == 0 || j->out.p[j->out.len - 1] != '}')
        return HS_OK;
    j->out.len--;
    double queue_s = (double)(start_ns - j->submit_ns) / 1e9;
    double eval_s = (double)(end_ns - start_ns) / 1e9;
    return hs_buf_printf(&j->out,
                         ",\"stats\":{\"timings\":{\"evalTotalTime\":%.9g,\"resultSortTime\":0,"
                         "\"queryPreparationTime\":0,\"innerEvalTime\":%.9g,"
                         "\"execQueueTime\":%.9g,\"execTotalTime\":%.9g},"
                         "\"samples\":{\"totalQueryableSamples\":%lld,\"peakSamples\":%lld}}}",
                         eval_s, eval_s, queue_s, queue_s + eval_s, (long long)res->samples_total,
                         (long long)res->samples_total);
}

static void write_query_answer(struct job *j, struct promql_result *res, int64_t start_ns)
{
    const char *truncated = NULL;
    if (j->limit > 0 && (res->type == PROMQL_RESULT_VECTOR || res->type == PROMQL_RESULT_MATRIX) &&
        res->nseries > (size_t)j->limit) {
        res->nseries = (size_t)j->limit; /* the arena still owns the rest */
        truncated = "results truncated due to limit";
    }
    int64_t end_ns = hs_mono_ns();
    int rc = hs_buf_puts(&j->out, "{\"status\":\"success\",\"data\":");
    if (rc == HS_OK)
        rc = promql_result_json(res, &j->out);
    /* stats_json works on the buffer's tail, which is the data object. */
    if (rc == HS_OK && j->want_stats)
        rc = stats_json(j, res, start_ns, end_ns);
    if (rc == HS_OK)
        rc = warnings_json(&j->out, "warnings", res->warnings, res->nwarnings, truncated);
    if (rc == HS_OK)
        rc = warnings_json(&j->out, "infos", res->infos, res->ninfos, NULL);
    if (rc == HS_OK)
        rc = hs_buf_putc(&j->out, '}');
    if (rc == HS_ETOOBIG)
        job_error(j, "execution", "the answer exceeds the limit of %zu bytes", j->out.max);
    else if (rc != HS_OK)
        job_error(j, "internal", "out of memory");
    else
        j->status = 200;
}

static void work_query(struct api_pool_job *pj)
{
    struct job *j = (struct job *)pj;
    struct api_prom *p = j->p;
    int64_t start_ns = hs_mono_ns();
    int64_t left_ms = (j->deadline_ns - start_ns) / 1000000;
    if (left_ms <= 0) {
        job_error(j, "timeout", "query timed out in query queue");
        return;
    }
    if (atomic_load(&j->cancel)) {
        job_error(j, "canceled", "query was canceled in query queue");
        return;
    }
    struct promql_engine *engine = p->c.engine, *own = NULL;
    if (j->lookback_ms > 0) {
        struct promql_engine_opts o;
        if (p->c.engine_opts != NULL)
            o = *p->c.engine_opts;
        else
            promql_engine_opts_default(&o);
        o.lookback_ms = j->lookback_ms;
        engine = own = promql_engine_new(&o);
        if (engine == NULL) {
            job_error(j, "internal", "out of memory");
            return;
        }
    }
    struct promql_query_opts qo = {.cancel = &j->cancel, .timeout_ms = left_ms};
    struct promql_result *res = NULL;
    struct hs_err err = {0};
    int rc;
    if (j->kind == JOB_QUERY)
        rc = promql_query_instant(engine, &p->c.storage, j->query, j->t_ms, &qo, &res, &err);
    else
        rc = promql_query_range(engine, &p->c.storage, j->query, j->start_ms, j->end_ms, j->step_ms,
                                &qo, &res, &err);
    if (rc == HS_OK) {
        write_query_answer(j, res, start_ns);
        promql_result_free(res);
    } else {
        const char *type = promql_error_type(rc);
        if (strcmp(type, "bad_data") == 0)
            job_error(j, type, "invalid parameter \"query\": %s", err.msg);
        else
            job_error(j, type, "%s", err.msg[0] ? err.msg : hs_strerror(rc));
    }
    promql_engine_free(own);
    if (hs_log_enabled(HS_LOG_DEBUG))
        hs_log(HS_LOG_DEBUG, "query", HS_LSTR("request_id", j->req_id), HS_LSTR("query", j->query),
               HS_LBOOL("range", j->kind == JOB_RANGE), HS_LINT("status", j->status),
               HS_LF64("duration_s", (double)(hs_mono_ns() - start_ns) / 1e9),
               HS_LF64("queue_s", (double)(start_ns - j->submit_ns) / 1e9));
}

/* ---- look-up work (worker thread) ---------------------------------------------------- */

static int cmp_labels_ptr(const void *a, const void *b)
{
    return hs_labels_cmp(*(const struct hs_labels *const *)a, *(const struct hs_labels *const *)b);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A growable array of pointers in the job's arena. */
struct ptrs {
    void **v;
    size_t n, cap;
};

static int ptrs_push(struct hs_arena *a, struct ptrs *l, void *x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void **v = hs_arena_alloc(a, cap * sizeof(*v));
        if (v == NULL)
            return HS_ENOMEM;
        if (l->n > 0)
            memcpy(v, l->v, l->n * sizeof(*v));
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return HS_OK;
}

static void free_labels_cb(void *arg)
{
    hs_labels_free(arg);
}

/* Reads the series of one matcher set into 'out' (copies owned by the arena). */
static int collect_series(struct job *j, const struct promql_matcher *ms, size_t n,
                          struct ptrs *out, struct hs_err *err)
{
    const struct promql_storage *st = &j->p->c.storage;
    void *set = NULL;
    int rc = st->ops->select(st->ctx, ms, n, j->start_ms, j->end_ms, &set, err);
    if (rc != HS_OK)
        return rc;
    const struct hs_labels *ls;
    while ((rc = st->ops->next(set, &ls, err)) == 1) {
        if (atomic_load(&j->cancel)) {
            rc = hs_err_set(err, HS_ECLOSED, "query was canceled");
            break;
        }
        struct hs_labels *copy = hs_labels_dup(ls);
        if (copy == NULL || hs_arena_on_cleanup(&j->arena, free_labels_cb, copy) != HS_OK) {
            hs_labels_free(copy);
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
            break;
        }
        if (ptrs_push(&j->arena, out, copy) != HS_OK) {
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
            break;
        }
    }
    st->ops->close(set);
    return rc < 0 ? rc : HS_OK;
}

/*
 * Writes the answer {"status":"success","data":[...]} of a look-up from
 * 'all' (sorted): adjacent duplicates (cmp == 0) are written once, at most
 * j->limit items (then the "results truncated" warning).
 */
static int write_unique(struct job *j, const struct ptrs *all,
                        int (*cmp)(const void *, const void *),
                        int (*write)(struct hs_buf *, const void *))
{
    const char *truncated = NULL;
    int rc = hs_buf_puts(&j->out, "{\"status\":\"success\",\"data\":[");
    size_t written = 0;
    for (size_t i = 0; rc == HS_OK && i < all->n; i++) {
        if (i > 0 && cmp(&all->v[i - 1], &all->v[i]) == 0)
            continue;
        if (j->limit > 0 && written == (size_t)j->limit) {
            truncated = "results truncated due to limit";
            break;
        }
        if (written++ > 0)
            rc = hs_buf_putc(&j->out, ',');
        if (rc == HS_OK)
            rc = write(&j->out, all->v[i]);
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(&j->out, ']');
    if (rc == HS_OK)
        rc = warnings_json(&j->out, "warnings", NULL, 0, truncated);
    if (rc == HS_OK)
        rc = hs_buf_putc(&j->out, '}');
    return rc;
}

static int write_labels_ptr(struct hs_buf *out, const void *v)
{
    return labels_json(out, v);
}

static int write_str_ptr(struct hs_buf *out, const void *v)
{
    return hs_buf_json_str(out, v, strlen(v));
}

static int series_answer(struct job *j, struct hs_err *err)
{
    struct ptrs all = {0};
    for (size_t i = 0; i < j->msets.n; i++) {
        int rc = collect_series(j, j->msets.sets[i], j->msets.lens[i], &all, err);
        if (rc != HS_OK)
            return rc;
    }
    if (all.n > 1)
        qsort(all.v, all.n, sizeof(void *), cmp_labels_ptr);
    return write_unique(j, &all, cmp_labels_ptr, write_labels_ptr);
}

static int names_answer(struct job *j, struct hs_err *err)
{
    const struct promql_storage *st = &j->p->c.storage;
    struct ptrs all = {0};
    size_t nsets = j->msets.n > 0 ? j->msets.n : 1;
    for (size_t i = 0; i < nsets; i++) {
        const struct promql_matcher *ms = j->msets.n > 0 ? j->msets.sets[i] : NULL;
        size_t nms = j->msets.n > 0 ? j->msets.lens[i] : 0;
        const char **v = NULL;
        size_t n = 0;
        int rc;
        if (j->kind == JOB_LABELS)
            rc = st->ops->label_names(st->ctx, ms, nms, j->start_ms, j->end_ms, &j->arena, &v, &n,
                                      err);
        else
            rc = st->ops->label_values(st->ctx, j->label_name, ms, nms, j->start_ms, j->end_ms,
                                       &j->arena, &v, &n, err);
        if (rc != HS_OK)
            return rc;
        for (size_t k = 0; k < n; k++) {
            if (ptrs_push(&j->arena, &all, (void *)v[k]) != HS_OK)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
        }
    }
    if (nsets > 1 && all.n > 1)
        qsort(all.v, all.n, sizeof(void *), cmp_str_ptr);
    return write_unique(j, &all, cmp_str_ptr, write_str_ptr);
}

static void work_lookup(struct api_pool_job *pj)
{
    struct job *j = (struct job *)pj;
    if (atomic_load(&j->cancel)) {
        job_error(j, "canceled", "query was canceled in query queue");
        return;
    }
    struct hs_err err = {0};
    int rc = j->kind == JOB_SERIES ? series_answer(j, &err) : names_answer(j, &err);
    if (rc == HS_OK) {
        j->status = 200;
    } else if (rc == HS_ETOOBIG && err.msg[0] == '\0') {
        job_error(j, "execution", "the answer exceeds the limit of %zu bytes", j->out.max);
    } else if (rc == HS_ECLOSED) {
        job_error(j, "canceled", "%s", err.msg);
    } else if (rc == HS_ENOMEM && err.msg[0] == '\0') {
        job_error(j, "internal", "out of memory");
    } else {
        job_error(j, "internal", "%s", err.msg[0] ? err.msg : hs_strerror(rc));
    }
}

/* ---- submission (loop thread) ---------------------------------------------------------- */

static void job_submit(struct job *j, api_pool_work_fn *work)
{
    struct api_prom *p = j->p;
    struct http_request *r = j->r;
    int rc = api_pool_submit(p->pool, &j->pj, work, job_done);
    if (rc != HS_OK) {
        job_free(j);
        if (rc == HS_EAGAIN)
            respond_error(r, "unavailable",
                          "too many queries: %d running or waiting, try again later",
                          api_pool_load(p->pool));
        else
            respond_error(r, "unavailable", "the server is shutting down");
        return;
    }
    j->next = p->jobs;
    if (p->jobs != NULL)
        p->jobs->prev = j;
    p->jobs = j;
    http_stream_on_close(r, on_client_close, j);
}

/* Reads the timeout parameter: the job's deadline is the smaller of it and
 * the configured one.  Answers and returns an error on a bad value. */
static int timeout_param(struct job *j)
{
    const char *v = http_request_param(j->r, "timeout");
    if (v == NULL || v[0] == '\0')
        return HS_OK;
    int64_t ms;
    struct hs_err err = {0};
    if (api_prom_parse_duration(v, &ms, &err) != HS_OK) {
        respond_error(j->r, "bad_data", "invalid parameter \"timeout\": %s", err.msg);
        return HS_EPARSE;
    }
    if (ms < j->p->c.timeout_ms)
        j->deadline_ns = j->submit_ns + (ms > 0 ? ms : 0) * 1000000;
    return HS_OK;
}

/* lookback_delta, stats and limit, shared by both query endpoints. */
static int query_opts(struct job *j)
{
    struct hs_err err = {0};
    const char *v = http_request_param(j->r, "lookback_delta");
    if (v != NULL && v[0] != '\0') {
        if (api_prom_parse_duration(v, &j->lookback_ms, &err) != HS_OK) {
            respond_error(j->r, "bad_data", "error parsing lookback delta duration: %s", err.msg);
            return HS_EPARSE;
        }
        if (j->lookback_ms < 0)
            j->lookback_ms = 0;
    }
    v = http_request_param(j->r, "stats");
    j->want_stats = v != NULL && v[0] != '\0';
    return HS_OK;
}

static int limit_param(struct http_request *r, int64_t *limit)
{
    struct hs_err err = {0};
    if (api_prom_parse_limit(http_request_param(r, "limit"), limit, &err) != HS_OK) {
        respond_error(r, "bad_data", "invalid parameter \"limit\": %s", err.msg);
        return HS_EPARSE;
    }
    return HS_OK;
}

static int copy_query(struct job *j)
{
    const char *q = http_request_param(j->r, "query");
    if (q == NULL)
        q = "";
    j->query = hs_arena_strndup(&j->arena, q, strlen(q));
    if (j->query == NULL) {
        respond_error(j->r, "internal", "out of memory");
        return HS_ENOMEM;
    }
    return HS_OK;
}

static struct job *start_job(struct api_prom *p, struct http_request *r, int kind)
{
    struct job *j = job_new(p, r, kind);
    if (j == NULL)
        respond_error(r, "internal", "out of memory");
    return j;
}

static void handle_query(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    struct job *j = start_job(p, r, JOB_QUERY);
    if (j == NULL)
        return;
    if (limit_param(r, &j->limit) != HS_OK ||
        time_param(r, "time", hs_now_ms(), &j->t_ms) != HS_OK || timeout_param(j) != HS_OK ||
        query_opts(j) != HS_OK || copy_query(j) != HS_OK) {
        job_free(j);
        return;
    }
    job_submit(j, work_query);
}

static void handle_query_range(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    struct job *j = start_job(p, r, JOB_RANGE);
    if (j == NULL)
        return;
    if (limit_param(r, &j->limit) != HS_OK)
        goto fail;
    struct hs_err err = {0};
    const char *v = http_request_param(r, "start");
    if (api_prom_parse_time(v ? v : "", &j->start_ms, &err) != HS_OK) {
        respond_error(r, "bad_data", "invalid parameter \"start\": %s", err.msg);
        goto fail;
    }
    v = http_request_param(r, "end");
    if (api_prom_parse_time(v ? v : "", &j->end_ms, &err) != HS_OK) {
        respond_error(r, "bad_data", "invalid parameter \"end\": %s", err.msg);
        goto fail;
    }
    if (j->end_ms < j->start_ms) {
        respond_error(r, "bad_data", "end timestamp must not be before start time");
        goto fail;
    }
    v = http_request_param(r, "step");
    if (api_prom_parse_duration(v ? v : "", &j->step_ms, &err) != HS_OK) {
        respond_error(r, "bad_data", "invalid parameter \"step\": %s", err.msg);
        goto fail;
    }
    if (j->step_ms <= 0) {
        respond_error(r, "bad_data",
                      "zero or negative query resolution step widths are not "
                      "accepted. Try a positive integer");
        goto fail;
    }
    /* end - start cannot overflow: both come from the bounded parser. */
    if ((j->end_ms - j->start_ms) / j->step_ms > 11000) {
        respond_error(r, "bad_data",
                      "exceeded maximum resolution of 11,000 points per timeseries. "
                      "Try decreasing the query resolution (?step=XX)");
        goto fail;
    }
    if (timeout_param(j) != HS_OK || query_opts(j) != HS_OK || copy_query(j) != HS_OK)
        goto fail;
    job_submit(j, work_query);
    return;
fail:
    job_free(j);
}

static void handle_series(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    struct job *j = start_job(p, r, JOB_SERIES);
    if (j == NULL)
        return;
    if (limit_param(r, &j->limit) != HS_OK)
        goto fail;
    if (http_request_param_all(r, "match[]", NULL, 0) == 0) {
        respond_error(r, "bad_data", "no match[] parameter provided");
        goto fail;
    }
    if (time_param(r, "start", API_PROM_MIN_TIME_MS, &j->start_ms) != HS_OK ||
        time_param(r, "end", API_PROM_MAX_TIME_MS, &j->end_ms) != HS_OK ||
        match_param(p, r, &j->arena, &j->msets) != HS_OK)
        goto fail;
    job_submit(j, work_lookup);
    return;
fail:
    job_free(j);
}

static void handle_labels(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    struct job *j = start_job(p, r, JOB_LABELS);
    if (j == NULL)
        return;
    if (limit_param(r, &j->limit) != HS_OK ||
        time_param(r, "start", API_PROM_MIN_TIME_MS, &j->start_ms) != HS_OK ||
        time_param(r, "end", API_PROM_MAX_TIME_MS, &j->end_ms) != HS_OK ||
        match_param(p, r, &j->arena, &j->msets) != HS_OK) {
        job_free(j);
        return;
    }
    job_submit(j, work_lookup);
}

static int hexdig(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX in the first n bytes of a path segment into arena memory;
 * NULL on a bad escape or out of memory. */
static char *path_unescape(struct hs_arena *a, const char *s, size_t n)
{
    char *out = hs_arena_alloc(a, n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return NULL;
        int hi = hexdig(s[i + 1]), lo = hexdig(s[i + 2]);
        if (hi < 0 || lo < 0)
            return NULL;
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        int n = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *p < 0xC2))
            return false;
        uint32_t cp = n == 0 ? *p : *p & (0x3F >> n);
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += n + 1;
    }
    return true;
}

static void handle_label_values(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    const char *path = http_request_path(r);
    const char *prefix = "/api/v1/label/";
    size_t plen = strlen(prefix), len = strlen(path);
    if (!hs_has_prefix(path, prefix) || !hs_has_suffix(path, "/values") ||
        len < plen + strlen("/values") + 1) {
        respond_error(r, "not_found", "not found: %s", path);
        return;
    }
    struct job *j = start_job(p, r, JOB_LABEL_VALUES);
    if (j == NULL)
        return;
    size_t nlen = len - plen - strlen("/values");
    const char *raw = path + plen;
    char *name = path_unescape(&j->arena, raw, nlen);
    const char *unescaped = NULL;
    if (name == NULL || memchr(raw, '/', nlen) != NULL) {
        respond_error(r, "not_found", "not found: %s", path);
        goto fail;
    }
    if (api_prom_unescape_name(name, &j->arena, &unescaped) != HS_OK) {
        respond_error(r, "internal", "out of memory");
        goto fail;
    }
    if (unescaped[0] == '\0' || !utf8_valid(unescaped)) {
        char q[300];
        size_t o = 0;
        q[o++] = '"';
        for (size_t i = 0; unescaped[i] != '\0' && o < sizeof(q) - 6; i++) {
            unsigned char c = (unsigned char)unescaped[i];
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                q[o++] = (char)c;
            } else {
                o += (size_t)snprintf(q + o, sizeof(q) - o, "\\x%02x", c);
            }
        }
        q[o++] = '"';
        q[o] = '\0';
        respond_error(r, "bad_data", "invalid label name: %s", q);
        goto fail;
    }
    j->label_name = unescaped;
    if (limit_param(r, &j->limit) != HS_OK ||
        time_param(r, "start", API_PROM_MIN_TIME_MS, &j->start_ms) != HS_OK ||
        time_param(r, "end", API_PROM_MAX_TIME_MS, &j->end_ms) != HS_OK ||
        match_param(p, r, &j->arena, &j->msets) != HS_OK)
        goto fail;
    job_submit(j, work_lookup);
    return;
fail:
    job_free(j);
}

/* ---- lifetime ------------------------------------------------------------------------ */

struct api_prom *api_prom_new(struct event_base *base, const struct api_prom_config *c,
                              struct hs_err *err)
{
    if (base == NULL || c == NULL || c->engine == NULL || c->storage.ops == NULL) {
        hs_err_set(err, HS_EINVAL, "prometheus api: an engine and a storage are required");
        return NULL;
    }
    struct api_prom *p = hs_calloc(1, sizeof(*p));
    if (p == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    p->c = *c;
    p->base = base;
    if (p->c.workers <= 0)
        p->c.workers = 2;
    if (p->c.max_queued <= 0)
        p->c.max_queued = 16;
    if (p->c.timeout_ms <= 0 && p->c.engine_opts != NULL && p->c.engine_opts->timeout_ms > 0)
        p->c.timeout_ms = p->c.engine_opts->timeout_ms;
    if (p->c.timeout_ms <= 0)
        p->c.timeout_ms = 120000;
    if (p->c.max_response_bytes == 0)
        p->c.max_response_bytes = (size_t)256 << 20;
    if (p->c.max_matchers == 0)
        p->c.max_matchers = 64;
    if (p->c.start_time_s <= 0)
        p->c.start_time_s = hs_now_seconds();
    p->pool = api_pool_new(base, p->c.workers, p->c.max_queued, err);
    if (p->pool == NULL) {
        hs_free(p);
        return NULL;
    }
    return p;
}

int api_prom_queries_in_flight(struct api_prom *p)
{
    return api_pool_load(p->pool);
}

void api_prom_free(struct api_prom *p)
{
    if (p == NULL)
        return;
    for (struct job *j = p->jobs; j != NULL; j = j->next)
        atomic_store(&j->cancel, true);
    /* Every outstanding job comes back through job_done, which answers or
     * releases its request and unlinks it. */
    api_pool_free(p->pool);
    hs_free(p);
}

int api_prom_register(struct api_prom *p, struct http_server *srv)
{
    static const struct {
        const char *method;
        const char *path;
        http_handler_fn *fn;
    } routes[] = {
        {"GET", "/api/v1/query", handle_query},
        {"POST", "/api/v1/query", handle_query},
        {"GET", "/api/v1/query_range", handle_query_range},
        {"POST", "/api/v1/query_range", handle_query_range},
        {"GET", "/api/v1/series", handle_series},
        {"POST", "/api/v1/series", handle_series},
        {"GET", "/api/v1/labels", handle_labels},
        {"POST", "/api/v1/labels", handle_labels},
        {"GET", "/api/v1/label/*", handle_label_values},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(routes); i++) {
        const char *name = routes[i].path;
        if (strcmp(name, "/api/v1/label/*") == 0)
            name = "/api/v1/label/:name/values";
        int rc = http_server_route(srv, routes[i].method, routes[i].path, name, routes[i].fn, p);
        if (rc != HS_OK)
            return rc;
    }
    return register_meta(p, srv);
}

/* ---- metadata, status and admin endpoints (loop thread) ------------------------------ */

/* Answers with the data a callback appends, or 'fallback' without one. */
static void answer_from(struct http_request *r, api_prom_data_fn *fn, void *arg,
                        const char *fallback)
{
    if (fn == NULL) {
        respond_data(r, fallback, strlen(fallback), NULL);
        return;
    }
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err err = {0};
    int rc = fn(arg, r, &b, &err);
    if (rc == HS_OK)
        respond_data(r, b.p != NULL ? b.p : fallback, b.p != NULL ? b.len : strlen(fallback), NULL);
    else if (rc == HS_EINVAL || rc == HS_EPARSE)
        respond_error(r, "bad_data", "%s", err.msg[0] ? err.msg : hs_strerror(rc));
    else
        respond_error(r, "internal", "%s", err.msg[0] ? err.msg : hs_strerror(rc));
    hs_buf_cleanup(&b);
}

static void handle_targets(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    answer_from(r, p->c.targets, p->c.targets_arg, "{\"activeTargets\":[],\"droppedTargets\":[]}");
}

static void handle_targets_metadata(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    answer_from(r, p->c.targets_metadata, p->c.targets_metadata_arg, "[]");
}

static void handle_metadata(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    int64_t limit;
    struct hs_err err = {0};
    if (api_prom_parse_limit(http_request_param(r, "limit"), &limit, &err) != HS_OK) {
        respond_error(r, "bad_data", "invalid parameter \"limit\": %s", err.msg);
        return;
    }
    answer_from(r, p->c.metadata, p->c.metadata_arg, "{}");
}

static void handle_rules(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    const char *type = http_request_param(r, "type");
    if (type != NULL && type[0] != '\0' && strcmp(type, "alert") != 0 &&
        strcmp(type, "record") != 0) {
        respond_error(r, "bad_data", "invalid parameter \"type\": not supported value \"%.100s\"",
                      type);
        return;
    }
    answer_from(r, p->c.rules, p->c.rules_arg, "{\"groups\":[]}");
}

static void handle_alerts(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    answer_from(r, p->c.alerts, p->c.alerts_arg, "{\"alerts\":[]}");
}

static void handle_alertmanagers(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    answer_from(r, p->c.alertmanagers, p->c.alertmanagers_arg,
                "{\"activeAlertmanagers\":[],\"droppedAlertmanagers\":[]}");
}

static void handle_walreplay(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    answer_from(r, p->c.walreplay, p->c.walreplay_arg, "{\"min\":0,\"max\":0,\"current\":0}");
}

static void handle_exemplars(struct http_request *r, void *arg)
{
    int64_t start, end;
    if (time_param(r, "start", API_PROM_MIN_TIME_MS, &start) != HS_OK ||
        time_param(r, "end", API_PROM_MAX_TIME_MS, &end) != HS_OK)
        return;
    if (end < start) {
        respond_error(r, "bad_data", "end timestamp must not be before start time");
        return;
    }
    /* holoscope stores no exemplars: every query has none. */
    respond_data(r, "[]", 2, NULL);
}

/*
 * Grafana reads data.version to pick the features it uses against a
 * Prometheus data source (match[] on the label endpoints from 2.24, newer
 * label and metadata look-ups for the 2.x and 3.x versions it knows), and
 * takes an "application" or "features" field as the sign of Mimir or Thanos
 * (their build info carries them; Prometheus' does not).  The API speaks
 * Prometheus 3.0's dialect, so "version" says 3.0.0, no such field is sent,
 * and holoscope's own version sits in "holoscopeVersion" (its commit in
 * "revision"), which Grafana ignores.
 */
static void handle_buildinfo(struct http_request *r, void *arg)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_printf(&b,
                           "{\"version\":\"3.0.0\",\"revision\":\"%s\",\"branch\":\"holoscope\","
                           "\"buildUser\":\"holoscope\",\"buildDate\":\"\",\"goVersion\":\"%s\","
                           "\"holoscopeVersion\":\"%s\"}",
                           HS_COMMIT, HS_COMPILER, HS_VERSION);
    if (rc == HS_OK)
        respond_data(r, b.p, b.len, NULL);
    else
        respond_error(r, "internal", "out of memory");
    hs_buf_cleanup(&b);
}

/* RFC 3339 with milliseconds and Z, as a JSON string. */
static int time_json(struct hs_buf *b, double t_s)
{
    time_t secs = (time_t)t_s;
    struct tm tm;
    gmtime_r(&secs, &tm);
    int ms = (int)((t_s - (double)secs) * 1000.0);
    return hs_buf_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

static void handle_runtimeinfo(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    char cwd[1024];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        cwd[0] = '\0';
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const char *ret = p->c.storage_retention ? p->c.storage_retention : "";
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_puts(&b, "{\"startTime\":");
    if (rc == HS_OK)
        rc = time_json(&b, p->c.start_time_s);
    if (rc == HS_OK)
        rc = hs_buf_puts(&b, ",\"CWD\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(&b, cwd, strlen(cwd));
    if (rc == HS_OK)
        rc = hs_buf_puts(&b, ",\"reloadConfigSuccess\":true,\"lastConfigTime\":");
    if (rc == HS_OK)
        rc = time_json(&b, p->c.start_time_s);
    if (rc == HS_OK)
        rc = hs_buf_printf(&b,
                           ",\"corruptionCount\":0,\"goroutineCount\":%d,\"GOMAXPROCS\":%ld,"
                           "\"GOMEMLIMIT\":0,\"GOGC\":\"\",\"GODEBUG\":\"\",\"storageRetention\":",
                           p->c.workers + 1, ncpu > 0 ? ncpu : 1);
    if (rc == HS_OK)
        rc = hs_buf_json_str(&b, ret, strlen(ret));
    if (rc == HS_OK)
        rc = hs_buf_putc(&b, '}');
    if (rc == HS_OK)
        respond_data(r, b.p, b.len, NULL);
    else
        respond_error(r, "internal", "out of memory");
    hs_buf_cleanup(&b);
}

static void handle_flags(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_putc(&b, '{');
    for (size_t i = 0;
         rc == HS_OK && p->c.flags != NULL && p->c.flags[i] != NULL && p->c.flags[i + 1] != NULL;
         i += 2) {
        if (i > 0)
            rc = hs_buf_putc(&b, ',');
        if (rc == HS_OK)
            rc = hs_buf_json_str(&b, p->c.flags[i], strlen(p->c.flags[i]));
        if (rc == HS_OK)
            rc = hs_buf_putc(&b, ':');
        if (rc == HS_OK)
            rc = hs_buf_json_str(&b, p->c.flags[i + 1], strlen(p->c.flags[i + 1]));
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(&b, '}');
    if (rc == HS_OK)
        respond_data(r, b.p, b.len, NULL);
    else
        respond_error(r, "internal", "out of memory");
    hs_buf_cleanup(&b);
}

static void handle_config(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    const char *y = p->c.config_yaml ? p->c.config_yaml : "";
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_puts(&b, "{\"yaml\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(&b, y, strlen(y));
    if (rc == HS_OK)
        rc = hs_buf_putc(&b, '}');
    if (rc == HS_OK)
        respond_data(r, b.p, b.len, NULL);
    else
        respond_error(r, "internal", "out of memory");
    hs_buf_cleanup(&b);
}

static int stat_list_json(struct hs_buf *b, const char *key, const struct tsdb_stat_entry *v,
                          size_t n)
{
    int rc = hs_buf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        rc = hs_buf_puts(b, i > 0 ? ",{\"name\":" : "{\"name\":");
        if (rc == HS_OK)
            rc = hs_buf_json_str(b, v[i].name, strlen(v[i].name));
        if (rc == HS_OK)
            rc = hs_buf_printf(b, ",\"value\":%llu}", (unsigned long long)v[i].value);
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(b, ']');
    return rc;
}

static void handle_tsdb_status(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    int64_t limit = 10;
    const char *v = http_request_param(r, "limit");
    if (v != NULL && v[0] != '\0') {
        if (hs_parse_i64(v, &limit) != HS_OK || limit < 1 || limit > 10000) {
            respond_error(r, "bad_data", "limit must be a positive number");
            return;
        }
    }
    struct tsdb_status st;
    memset(&st, 0, sizeof(st));
    st.min_time_ms = INT64_MAX;
    st.max_time_ms = INT64_MIN;
    struct hs_err err = {0};
    if (p->c.tsdb_status != NULL &&
        p->c.tsdb_status(p->c.tsdb_status_arg, (size_t)limit, &st, &err) != HS_OK) {
        respond_error(r, "internal", "error getting head stats: %s", err.msg);
        return;
    }
    /* An empty head reports 0 for both times, as a fresh Prometheus does. */
    int64_t mint = st.num_series > 0 && st.min_time_ms != INT64_MAX ? st.min_time_ms : 0;
    int64_t maxt = st.num_series > 0 && st.max_time_ms != INT64_MIN ? st.max_time_ms : 0;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc =
        hs_buf_printf(&b,
                      "{\"headStats\":{\"numSeries\":%llu,\"numLabelPairs\":%llu,"
                      "\"chunkCount\":%llu,\"minTime\":%lld,\"maxTime\":%lld}",
                      (unsigned long long)st.num_series, (unsigned long long)st.num_label_pairs,
                      (unsigned long long)st.chunk_count, (long long)mint, (long long)maxt);
    if (rc == HS_OK)
        rc = stat_list_json(&b, "seriesCountByMetricName", st.series_count_by_metric_name,
                            st.n_by_metric);
    if (rc == HS_OK)
        rc = stat_list_json(&b, "labelValueCountByLabelName", st.label_value_count_by_name,
                            st.n_by_label_name);
    if (rc == HS_OK)
        rc = stat_list_json(&b, "memoryInBytesByLabelName", st.memory_in_bytes_by_label_name,
                            st.n_by_memory);
    if (rc == HS_OK)
        rc = stat_list_json(&b, "seriesCountByLabelValuePair", st.series_count_by_label_pair,
                            st.n_by_pair);
    if (rc == HS_OK)
        rc = hs_buf_putc(&b, '}');
    if (p->c.tsdb_status != NULL && p->c.tsdb_status_release != NULL)
        p->c.tsdb_status_release(p->c.tsdb_status_arg, &st);
    if (rc == HS_OK)
        respond_data(r, b.p, b.len, NULL);
    else
        respond_error(r, "internal", "out of memory");
    hs_buf_cleanup(&b);
}

static bool admin_allowed(struct api_prom *p, struct http_request *r)
{
    if (p->c.enable_admin)
        return true;
    respond_error(r, "unavailable", "admin APIs disabled");
    return false;
}

static void handle_delete_series(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    if (!admin_allowed(p, r))
        return;
    if (p->c.delete_series == NULL) {
        respond_error(r, "internal", "deleting series is not supported by this storage");
        return;
    }
    if (http_request_param_all(r, "match[]", NULL, 0) == 0) {
        respond_error(r, "bad_data", "no match[] parameter provided");
        return;
    }
    int64_t start, end;
    struct msets ms;
    struct hs_arena *arena = http_request_arena(r);
    if (time_param(r, "start", API_PROM_MIN_TIME_MS, &start) != HS_OK ||
        time_param(r, "end", API_PROM_MAX_TIME_MS, &end) != HS_OK ||
        match_param(p, r, arena, &ms) != HS_OK)
        return;
    for (size_t i = 0; i < ms.n; i++) {
        struct hs_err err = {0};
        if (p->c.delete_series(p->c.admin_arg, ms.sets[i], ms.lens[i], start, end, &err) != HS_OK) {
            respond_error(r, "internal", "%s", err.msg);
            return;
        }
    }
    http_respond(r, 204, NULL, NULL, 0);
}

static void handle_clean_tombstones(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    if (!admin_allowed(p, r))
        return;
    struct hs_err err = {0};
    if (p->c.clean_tombstones != NULL && p->c.clean_tombstones(p->c.admin_arg, &err) != HS_OK) {
        respond_error(r, "internal", "%s", err.msg);
        return;
    }
    http_respond(r, 204, NULL, NULL, 0);
}

static void handle_snapshot(struct http_request *r, void *arg)
{
    struct api_prom *p = arg;
    if (!admin_allowed(p, r))
        return;
    respond_error(r, "internal", "snapshots are not supported");
}

/* /api/v1/format_query: the query's canonical text, as Prometheus prints it. */
static void handle_format_query(struct http_request *r, void *arg)
{
    (void)arg;
    const char *q = http_request_param(r, "query");
    if (q == NULL) {
        respond_error(r, "bad_data",
                      "invalid parameter \"query\": unknown position: parse "
                      "error: no expression found in input");
        return;
    }
    struct hs_buf text, data;
    hs_buf_init(&text, 0);
    hs_buf_init(&data, 0);
    struct hs_err err = {0};
    int rc = promql_format_query(q, &text, &err);
    if (rc == HS_EPARSE || rc == HS_ETOOBIG)
        respond_error(r, "bad_data", "invalid parameter \"query\": %s", err.msg);
    else if (rc != HS_OK || hs_buf_json_str(&data, text.p ? text.p : "", text.len) != HS_OK)
        respond_error(r, "internal", "%s", err.msg[0] ? err.msg : hs_strerror(rc));
    else
        respond_data(r, data.p, data.len, NULL);
    hs_buf_cleanup(&text);
    hs_buf_cleanup(&data);
}

static int register_meta(struct api_prom *p, struct http_server *srv)
{
    static const struct {
        const char *method;
        const char *path;
        http_handler_fn *fn;
    } routes[] = {
        {"GET", "/api/v1/query_exemplars", handle_exemplars},
        {"POST", "/api/v1/query_exemplars", handle_exemplars},
        {"GET", "/api/v1/metadata", handle_metadata},
        {"GET", "/api/v1/targets", handle_targets},
        {"GET", "/api/v1/targets/metadata", handle_targets_metadata},
        {"GET", "/api/v1/rules", handle_rules},
        {"GET", "/api/v1/alerts", handle_alerts},
        {"GET", "/api/v1/alertmanagers", handle_alertmanagers},
        {"GET", "/api/v1/format_query", handle_format_query},
        {"POST", "/api/v1/format_query", handle_format_query},
        {"GET", "/api/v1/status/buildinfo", handle_buildinfo},
        {"GET", "/api/v1/status/runtimeinfo", handle_runtimeinfo},
        {"GET", "/api/v1/status/flags", handle_flags},
        {"GET", "/api/v1/status/config", handle_config},
        {"GET", "/api/v1/status/tsdb", handle_tsdb_status},
        {"GET", "/api/v1/status/walreplay", handle_walreplay},
        {"POST", "/api/v1/admin/tsdb/delete_series", handle_delete_series},
        {"PUT", "/api/v1/admin/tsdb/delete_series", handle_delete_series},
        {"POST", "/api/v1/admin/tsdb/clean_tombstones", handle_clean_tombstones},
        {"PUT", "/api/v1/admin/tsdb/clean_tombstones", handle_clean_tombstones},
        {"POST", "/api/v1/admin/tsdb/snapshot", handle_snapshot},
        {"PUT", "/api/v1/admin/tsdb/snapshot", handle_snapshot},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(routes); i++) {
        int rc = http_server_route(srv, routes[i].method, routes[i].path, routes[i].path,
                                   routes[i].fn, p);
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}
