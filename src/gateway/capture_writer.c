/*
 * capture_writer.c - the asynchronous capture writer (spec/gateway.md §8.3,
 * §8.4, §9): a bounded queue filled by the proxy threads and drained by one
 * writer thread that redacts, scores, serialises and appends records to
 * rotating files under a disk budget.
 *
 * The proxy side (capture_writer_submit) copies the record into one
 * allocation and pushes it under a mutex; it never waits for the writer,
 * and a full queue (by count or bytes) drops the record and counts it.
 * Everything slow happens on the writer thread: PII redaction of both
 * payloads (JSON-aware, so the stored JSON stays valid), the quality
 * scorers on the unredacted text (kept in memory only), formatting, the
 * write(2) of one whole line, rotation and the disk budget.  Each line is
 * written with one write call on an O_APPEND descriptor, so a reader of a
 * ".part" file sees whole lines except possibly a torn last one.
 *
 * Open files are keyed by their hour directory; a late record of an
 * earlier hour (a long stream finishing after the hour changed) goes to a
 * file of its own hour.  Files close when the hour has been over for
 * HOUR_GRACE_MS, at max_file_age_ms, at max_file_bytes, and at shutdown,
 * and are then renamed from ".<name>.part" to "<name>".
 */
#include "gateway/capture.h"
#include "quality/quality.h"
#include "tsdb/tsdb.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPEN_FILES     64
#define HOUR_GRACE_MS      (2 * 60 * 1000)
#define TICK_MS            1000
#define QUALITY_STORE_MS   5000
#define DRAIN_TIMEOUT_MS   5000
#define MAX_WALK_DEPTH     10
#define MAX_FINISH_REASONS 128
#define MAX_INFERENCE_ID   64
#define PATH_MAX_LEN       4096

struct qitem {
    struct qitem *next;
    size_t size; /* bytes of this allocation (queue accounting) */
    struct capture_record r;
    /* finish reason pointers, then strings and payloads follow */
};

struct ofile {
    char *dir;        /* hour directory (the key) */
    char *part_path;  /* where it is written */
    char *final_path; /* its name once closed */
    int fd;
    uint64_t bytes;
    int64_t opened_mono_ms;
    int64_t hour_end_ms; /* wall clock: end of its hour */
};

struct capture_writer {
    struct capture_config cfg; /* copy; dir points at 'dir' below, no custom rules kept */
    char *dir;
    struct redactor *red;      /* NULL when redaction is off */
    struct qual_tracker *qual; /* NULL when scoring is off */
    struct tsdb *db;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work for the writer */
    pthread_cond_t done_cv; /* a record was finished */
    struct qitem *head, *tail;
    size_t qlen;       /* under mu */
    uint64_t qbytes;   /* under mu */
    uint64_t seq_in;   /* records queued, under mu */
    uint64_t seq_done; /* records finished, under mu */
    bool stopping;     /* under mu */

    /* writer thread only */
    struct ofile files[MAX_OPEN_FILES];
    size_t nfiles;
    struct hs_buf line, in_buf, out_buf, extra, asm_buf, id_buf, attr_buf;
    struct hs_arena scratch;
    uint64_t bytes_since_budget;
    int64_t last_quality_store_ms;
    bool quality_dirty;

    /* counters: written by the named side, read by anyone */
    _Atomic uint64_t submitted, written, dropped_queue_full, dropped_too_large, write_errors;
    _Atomic uint64_t bytes_written, files_closed, files_removed, disk_bytes, quality_scored;
    _Atomic uint64_t queue_length;
    _Atomic uint64_t redactions[REDACT_MAX_TYPES];
};

/* ---- submit (any thread) ----------------------------------------------------- */

static size_t str_size(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static size_t record_size(const struct capture_record *r, size_t nfr)
{
    size_t n = sizeof(struct qitem) + nfr * sizeof(char *);
    n += str_size(r->event_id) + str_size(r->inference_id) + str_size(r->custom_attributes);
    n += str_size(r->inference_time) + str_size(r->request_id) + str_size(r->trace_id);
    n += str_size(r->model) + str_size(r->route) + str_size(r->upstream) + str_size(r->operation);
    n += str_size(r->input_content_type) + str_size(r->input_encoding) + r->input_len + 1;
    n += str_size(r->output_content_type) + str_size(r->output_encoding) + r->output_len + 1;
    n += str_size(r->outcome) + str_size(r->error_type) + str_size(r->usage_source);
    n += str_size(r->extension_json) + str_size(r->extension_extra) + r->output_text_len + 1;
    for (size_t i = 0; i < nfr; i++)
        n += str_size(r->finish_reasons[i]);
    return n;
}

static const char *put_bytes(char **cur, const char *s, size_t len)
{
    char *d = *cur;
    if (len > 0)
        memcpy(d, s, len);
    d[len] = '\0';
    *cur += len + 1;
    return d;
}

static const char *put_s(char **cur, const char *s)
{
    return s != NULL ? put_bytes(cur, s, strlen(s)) : NULL;
}

static struct qitem *record_copy(const struct capture_record *src)
{
    size_t nfr = HS_MIN(src->nfinish_reasons, (size_t)MAX_FINISH_REASONS);
    if (src->finish_reasons == NULL)
        nfr = 0;
    size_t size = record_size(src, nfr);
    struct qitem *q = hs_malloc(size);
    if (q == NULL)
        return NULL;
    q->next = NULL;
    q->size = size;
    q->r = *src;
    struct capture_record *r = &q->r;
    const char **frs = (const char **)(q + 1);
    char *cur = (char *)(frs + nfr);
    r->event_id = put_s(&cur, src->event_id);
    r->inference_id = put_s(&cur, src->inference_id);
    r->custom_attributes = put_s(&cur, src->custom_attributes);
    r->inference_time = put_s(&cur, src->inference_time);
    r->request_id = put_s(&cur, src->request_id);
    r->trace_id = put_s(&cur, src->trace_id);
    r->model = put_s(&cur, src->model);
    r->route = put_s(&cur, src->route);
    r->upstream = put_s(&cur, src->upstream);
    r->operation = put_s(&cur, src->operation);
    r->input_content_type = put_s(&cur, src->input_content_type);
    r->input_encoding = put_s(&cur, src->input_encoding);
    r->input = put_bytes(&cur, src->input, src->input != NULL ? src->input_len : 0);
    r->input_len = src->input != NULL ? src->input_len : 0;
    r->output_content_type = put_s(&cur, src->output_content_type);
    r->output_encoding = put_s(&cur, src->output_encoding);
    r->output = put_bytes(&cur, src->output, src->output != NULL ? src->output_len : 0);
    r->output_len = src->output != NULL ? src->output_len : 0;
    r->outcome = put_s(&cur, src->outcome);
    r->error_type = put_s(&cur, src->error_type);
    r->usage_source = put_s(&cur, src->usage_source);
    r->extension_json = put_s(&cur, src->extension_json);
    r->extension_extra = put_s(&cur, src->extension_extra);
    r->output_text = NULL;
    r->output_text_len = 0;
    if (src->output_text != NULL) {
        r->output_text = put_bytes(&cur, src->output_text, src->output_text_len);
        r->output_text_len = src->output_text_len;
    }
    for (size_t i = 0; i < nfr; i++)
        frs[i] = put_s(&cur, src->finish_reasons[i]);
    r->finish_reasons = nfr > 0 ? frs : NULL;
    r->nfinish_reasons = nfr;
    return q;
}

bool capture_writer_submit(struct capture_writer *w, const struct capture_record *r)
{
    atomic_fetch_add(&w->submitted, 1);
    uint64_t max = w->cfg.max_body_bytes;
    if ((r->has_input && r->input_len > max) || (r->has_output && r->output_len > max)) {
        atomic_fetch_add(&w->dropped_too_large, 1);
        return false;
    }
    struct qitem *q = record_copy(r);
    if (q == NULL) {
        atomic_fetch_add(&w->dropped_queue_full, 1);
        return false;
    }
    pthread_mutex_lock(&w->mu);
    if (w->stopping || w->qlen >= w->cfg.queue_size ||
        w->qbytes + q->size > w->cfg.queue_max_bytes) {
        pthread_mutex_unlock(&w->mu);
        hs_free(q);
        atomic_fetch_add(&w->dropped_queue_full, 1);
        return false;
    }
    if (w->tail != NULL)
        w->tail->next = q;
    else
        w->head = q;
    w->tail = q;
    w->qlen++;
    w->qbytes += q->size;
    w->seq_in++;
    atomic_store(&w->queue_length, w->qlen);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return true;
}

/* ---- files (writer thread) ------------------------------------------------------- */

struct fentry {
    char *path;
    uint64_t size;
    int64_t mtime_ns;
    bool is_part;
};
struct flist {
    struct fentry *v;
    size_t n, cap;
    uint64_t total;
};

static void flist_free(struct flist *l)
{
    for (size_t i = 0; i < l->n; i++)
        hs_free(l->v[i].path);
    hs_free(l->v);
    memset(l, 0, sizeof(*l));
}

static int flist_add(struct flist *l, const char *path, const struct stat *st, bool is_part)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap != 0 ? l->cap * 2 : 64;
        struct fentry *nv = hs_reallocarray(l->v, ncap, sizeof(*nv));
        if (nv == NULL)
            return HS_ENOMEM;
        l->v = nv;
        l->cap = ncap;
    }
    char *p = hs_strdup(path);
    if (p == NULL)
        return HS_ENOMEM;
    l->v[l->n++] =
        (struct fentry){p, (uint64_t)st->st_size,
                        (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec, is_part};
    l->total += (uint64_t)st->st_size;
    return HS_OK;
}

/* Collects the *.jsonl files (and .part files) under 'dir'. */
static int walk_files(const char *dir, int depth, struct flist *l)
{
    if (depth > MAX_WALK_DEPTH)
        return HS_OK;
    DIR *d = opendir(dir);
    if (d == NULL)
        return HS_OK; /* vanished or unreadable: nothing to count */
    int rc = HS_OK;
    struct dirent *e;
    char path[PATH_MAX_LEN];
    while (rc == HS_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = walk_files(path, depth + 1, l);
        else if (S_ISREG(st.st_mode) && hs_has_suffix(e->d_name, ".jsonl"))
            rc = flist_add(l, path, &st, false);
        else if (S_ISREG(st.st_mode) && hs_has_suffix(e->d_name, ".jsonl.part"))
            rc = flist_add(l, path, &st, true);
    }
    closedir(d);
    return rc;
}

static int fentry_cmp(const void *a, const void *b)
{
    const struct fentry *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* Removes empty directories from 'path''s parent up to (not including) root. */
static void prune_dirs(const char *root, const char *path)
{
    char p[PATH_MAX_LEN];
    size_t rl = strlen(root);
    size_t n = strlen(path);
    if (n >= sizeof(p))
        return;
    memcpy(p, path, n + 1);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (slash == NULL || (size_t)(slash - p) <= rl)
            return;
        *slash = '\0';
        if (rmdir(p) != 0)
            return;
    }
}

/* Deletes the oldest complete files until the tree fits the budget. */
static void enforce_budget(struct capture_writer *w)
{
    w->bytes_since_budget = 0;
    struct flist l = {0};
    if (walk_files(w->dir, 0, &l) != HS_OK) {
        flist_free(&l);
        return;
    }
    uint64_t total = l.total;
    size_t removed = 0;
    if (w->cfg.max_disk_bytes > 0 && total > w->cfg.max_disk_bytes) {
        qsort(l.v, l.n, sizeof(*l.v), fentry_cmp);
        for (size_t i = 0; i < l.n && total > w->cfg.max_disk_bytes; i++) {
            if (l.v[i].is_part)
                continue; /* open: the writer still appends to it */
            if (unlink(l.v[i].path) != 0)
                continue;
            total -= l.v[i].size;
            atomic_fetch_add(&w->files_removed, 1);
            prune_dirs(w->dir, l.v[i].path);
            removed++;
            hs_log(HS_LOG_DEBUG, "capture file removed by the disk budget",
                   HS_LSTR("path", l.v[i].path));
        }
        if (removed > 0)
            hs_log(HS_LOG_INFO, "capture files removed by the disk budget",
                   HS_LINT("files", (int64_t)removed), HS_LINT("disk_bytes", (int64_t)total));
    }
    atomic_store(&w->disk_bytes, total);
    flist_free(&l);
}

static void file_close(struct capture_writer *w, size_t i)
{
    struct ofile *f = &w->files[i];
    if (f->fd >= 0) {
        if (fsync(f->fd) != 0)
            hs_log(HS_LOG_WARN, "capture fsync failed", HS_LSTR("path", f->part_path),
                   HS_LSTR("error", strerror(errno)));
        close(f->fd);
    }
    if (f->bytes == 0) {
        unlink(f->part_path);
    } else if (rename(f->part_path, f->final_path) != 0) {
        hs_log(HS_LOG_WARN, "capture rename failed", HS_LSTR("path", f->part_path),
               HS_LSTR("error", strerror(errno)));
    } else {
        struct hs_err e;
        HS_IGNORE_RESULT(hs_fsync_dir(f->dir, &e));
        atomic_fetch_add(&w->files_closed, 1);
    }
    hs_free(f->dir);
    hs_free(f->part_path);
    hs_free(f->final_path);
    w->files[i] = w->files[--w->nfiles];
}

static void close_all(struct capture_writer *w)
{
    while (w->nfiles > 0)
        file_close(w, w->nfiles - 1);
}

static char *path_printf(const char *fmt, ...) HS_PRINTF(1, 2);
static char *path_printf(const char *fmt, ...)
{
    struct hs_buf b;
    hs_buf_init(&b, PATH_MAX_LEN);
    va_list ap;
    va_start(ap, fmt);
    int rc = hs_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc != HS_OK) {
        hs_buf_cleanup(&b);
        return NULL;
    }
    return hs_buf_detach(&b, NULL);
}

/* The open file for record time t_ms of endpoint/variant, opening one. */
static struct ofile *file_for(struct capture_writer *w, const char *model, const char *upstream,
                              int64_t t_ms, struct hs_err *err)
{
    char ep[256], var[256];
    capture_path_component(model != NULL ? model : "unknown", ep, sizeof(ep));
    capture_path_component(upstream != NULL ? upstream : "default", var, sizeof(var));
    time_t secs = (time_t)(t_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char *dir = path_printf("%s/%s/%s/%04d/%02d/%02d/%02d", w->dir, ep, var, tm.tm_year + 1900,
                            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
    if (dir == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < w->nfiles; i++) {
        if (strcmp(w->files[i].dir, dir) == 0) {
            hs_free(dir);
            return &w->files[i];
        }
    }
    if (w->nfiles == MAX_OPEN_FILES)
        file_close(w, 0);
    if (hs_mkdir_p(dir, err) != HS_OK) {
        hs_free(dir);
        return NULL;
    }
    char uuid[37];
    capture_uuid4(uuid);
    int mmm = (int)(t_ms % 1000);
    struct ofile *f = &w->files[w->nfiles];
    memset(f, 0, sizeof(*f));
    f->dir = dir;
    f->fd = -1;
    f->final_path = path_printf("%s/%02d-%02d-%03d-%s.jsonl", dir, tm.tm_min, tm.tm_sec, mmm, uuid);
    f->part_path =
        path_printf("%s/.%02d-%02d-%03d-%s.jsonl.part", dir, tm.tm_min, tm.tm_sec, mmm, uuid);
    if (f->final_path == NULL || f->part_path == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        goto fail;
    }
    f->fd = open(f->part_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        hs_err_set(err, HS_EIO, "%s: %s", f->part_path, strerror(errno));
        goto fail;
    }
    f->opened_mono_ms = hs_mono_ns() / 1000000;
    f->hour_end_ms = (t_ms - t_ms % 3600000) + 3600000;
    w->nfiles++;
    return f;
fail:
    hs_free(f->dir);
    hs_free(f->final_path);
    hs_free(f->part_path);
    return NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void rotate_by_time(struct capture_writer *w)
{
    int64_t now = hs_now_ms(), mono = hs_mono_ns() / 1000000;
    for (size_t i = w->nfiles; i > 0; i--) {
        struct ofile *f = &w->files[i - 1];
        if (now >= f->hour_end_ms + HOUR_GRACE_MS ||
            mono - f->opened_mono_ms >= w->cfg.max_file_age_ms) {
            file_close(w, i - 1);
            w->bytes_since_budget = UINT64_MAX / 2; /* check the budget below */
        }
    }
}

/* ---- processing one record (writer thread) ----------------------------------------- */

static bool is_event_stream(const char *ctype)
{
    return ctype != NULL && strncasecmp(ctype, "text/event-stream", 17) == 0;
}

static int redact_payload(struct capture_writer *w, const char *ctype, const char *enc,
                          const char *data, size_t len, struct hs_buf *out,
                          struct redact_counts *counts, struct hs_err *err)
{
    hs_buf_reset(out);
    const char *e = enc != NULL ? enc : capture_encoding_for(ctype);
    if (strcmp(e, "JSON") == 0)
        return redact_json(w->red, data, len, out, counts, NULL, err);
    if (is_event_stream(ctype))
        return redact_sse(w->red, data, len, out, counts, err);
    /* CSV, text and anything else: redacted as text so nothing escapes. */
    return redact_text(w->red, data, len, out, counts, err);
}

static int score_record(struct capture_writer *w, const struct capture_record *r,
                        struct hs_buf *extra)
{
    struct qual_input in;
    qual_input_init(&in);
    in.model = r->model;
    hs_arena_reset(&w->scratch);
    struct hs_err e;
    if (r->has_input && r->input_len > 0 &&
        qual_extract_request(r->input, r->input_len, &w->scratch, &in, &e) != HS_OK)
        in.prompt = NULL;
    if (r->has_output && r->output_len > 0) {
        bool sse = is_event_stream(r->output_content_type);
        if (qual_extract_response(r->output, r->output_len, sse, &w->scratch, &in, &e) != HS_OK)
            in.output = NULL;
    }
    if (r->output_text != NULL) {
        in.output = r->output_text;
        in.output_len = r->output_text_len;
    }
    if (in.finish_reason == NULL && r->nfinish_reasons > 0)
        in.finish_reason = r->finish_reasons[0];
    if (r->output_tokens >= 0)
        in.output_tokens = r->output_tokens;
    if (!r->has_output || (r->outcome != NULL && strcmp(r->outcome, "ok") != 0 &&
                           strcmp(r->outcome, "stream_truncated") != 0))
        return HS_OK; /* no generation to judge */
    struct qual_scores s;
    if (qual_tracker_observe(w->qual, &in, &s, &e) != HS_OK)
        return HS_OK;
    if (!in.is_scorable)
        return HS_OK;
    atomic_fetch_add(&w->quality_scored, 1);
    w->quality_dirty = true;
    int rc = hs_buf_puts(extra, extra->len > 0 ? ",\"quality\":" : "\"quality\":");
    return rc == HS_OK ? qual_scores_json(&s, extra) : rc;
}

/* Client-supplied metadata is stored too: the ids and SageMaker custom
 * attributes come from request headers. */
static int redact_metadata(struct capture_writer *w, struct capture_record *r,
                           struct redact_counts *counts, struct hs_err *err)
{
    int rc = HS_OK;
    if (r->inference_id != NULL) {
        hs_buf_reset(&w->id_buf);
        rc = redact_text(w->red, r->inference_id, strlen(r->inference_id), &w->id_buf, counts, err);
        if (rc == HS_OK && w->id_buf.p != NULL && strcmp(w->id_buf.p, r->inference_id) != 0) {
            if (r->request_id != NULL && strcmp(r->request_id, r->inference_id) == 0)
                r->request_id = w->id_buf.p;
            r->inference_id = w->id_buf.p;
        }
    }
    if (rc == HS_OK && r->custom_attributes != NULL) {
        hs_buf_reset(&w->attr_buf);
        rc = redact_text(w->red, r->custom_attributes, strlen(r->custom_attributes), &w->attr_buf,
                         counts, err);
        if (rc == HS_OK && w->attr_buf.p != NULL)
            r->custom_attributes = w->attr_buf.p;
    }
    return rc;
}

static int put_redactions(struct capture_writer *w, const struct redact_counts *c,
                          struct hs_buf *extra)
{
    bool any = false;
    int rc = HS_OK;
    for (size_t i = 0; i < redactor_ntypes(w->red) && rc == HS_OK; i++) {
        if (c->n[i] == 0)
            continue;
        atomic_fetch_add(&w->redactions[i], c->n[i]);
        rc = hs_buf_printf(extra, "%s\"%s\":%llu", any ? "," : "\"redactions\":{",
                           redactor_type_name(w->red, i), (unsigned long long)c->n[i]);
        any = true;
    }
    if (rc == HS_OK && any)
        rc = hs_buf_putc(extra, '}');
    return rc;
}

/* capture.stream_output: a stream is stored assembled (one JSON answer)
 * unless configured raw or not assemblable (then its bytes, BASE64). */
static void assemble_stream(struct capture_writer *w, struct capture_record *r)
{
    if (!r->has_output || !is_event_stream(r->output_content_type))
        return;
    r->stream = true;
    r->stream_output = CAPTURE_STREAM_RAW;
    if (w->cfg.stream_output != CAPTURE_STREAM_ASSEMBLED)
        return;
    hs_buf_reset(&w->asm_buf);
    struct hs_err e;
    if (capture_assemble_sse(r->output, r->output_len, &w->asm_buf, &e) != HS_OK)
        return;
    r->output = w->asm_buf.p;
    r->output_len = w->asm_buf.len;
    r->output_content_type = "application/json";
    r->output_encoding = NULL;
    r->stream_output = CAPTURE_STREAM_ASSEMBLED;
}

static int process(struct capture_writer *w, struct capture_record *r, struct hs_err *err)
{
    char eid[37], itime[32];
    if (r->event_id == NULL) {
        capture_uuid4(eid);
        r->event_id = eid;
    }
    if (r->t_recv_ms <= 0 && r->inference_time != NULL &&
        capture_parse_time(r->inference_time, &r->t_recv_ms) != HS_OK)
        r->t_recv_ms = 0;
    if (r->t_recv_ms <= 0)
        r->t_recv_ms = hs_now_ms();
    if (r->inference_time == NULL) {
        HS_IGNORE_RESULT(capture_format_time(r->t_recv_ms, itime));
        r->inference_time = itime;
    }
    if (r->inference_id != NULL && strlen(r->inference_id) > MAX_INFERENCE_ID) {
        /* SageMaker's InferenceId is 1-64 characters: cut at a character boundary */
        char *id = (char *)r->inference_id; /* points into this record's own copy */
        size_t n = MAX_INFERENCE_ID;
        while (n > 0 && ((unsigned char)id[n] & 0xC0) == 0x80)
            n--;
        id[n] = '\0';
    }
    if (w->cfg.mode == CAPTURE_MODE_INPUT)
        r->has_output = false;
    else if (w->cfg.mode == CAPTURE_MODE_OUTPUT)
        r->has_input = false;
    assemble_stream(w, r);
    hs_buf_reset(&w->extra);
    int rc = HS_OK;
    if (w->qual != NULL)
        rc = score_record(w, r, &w->extra);
    struct redact_counts counts = {{0}};
    if (rc == HS_OK && w->red != NULL && r->has_input) {
        rc = redact_payload(w, r->input_content_type, r->input_encoding, r->input, r->input_len,
                            &w->in_buf, &counts, err);
        r->input = w->in_buf.p != NULL ? w->in_buf.p : "";
        r->input_len = w->in_buf.len;
    }
    if (rc == HS_OK && w->red != NULL && r->has_output) {
        rc = redact_payload(w, r->output_content_type, r->output_encoding, r->output, r->output_len,
                            &w->out_buf, &counts, err);
        r->output = w->out_buf.p != NULL ? w->out_buf.p : "";
        r->output_len = w->out_buf.len;
    }
    if (rc == HS_OK && w->red != NULL)
        rc = redact_metadata(w, r, &counts, err);
    if (rc != HS_OK)
        return rc;
    if (w->red != NULL) {
        size_t mark = w->extra.len;
        struct hs_buf red;
        hs_buf_init(&red, 0);
        rc = put_redactions(w, &counts, &red);
        if (rc == HS_OK && red.len > 0) {
            rc = mark > 0 ? hs_buf_putc(&w->extra, ',') : HS_OK;
            if (rc == HS_OK)
                rc = hs_buf_append(&w->extra, red.p, red.len);
        }
        hs_buf_cleanup(&red);
    }
    r->output_text = NULL; /* never stored: it is unredacted */
    r->extension_extra = w->extra.len > 0 ? w->extra.p : NULL;
    hs_buf_reset(&w->line);
    if (rc == HS_OK)
        rc = capture_record_format(r, w->cfg.extensions, &w->line);
    if (rc != HS_OK)
        return hs_err_set(err, rc, "formatting the capture record: %s", hs_strerror(rc));
    struct ofile *f = file_for(w, r->model, r->upstream, r->t_recv_ms, err);
    if (f != NULL && f->bytes > 0 && f->bytes + w->line.len > w->cfg.max_file_bytes) {
        file_close(w, (size_t)(f - w->files));
        f = file_for(w, r->model, r->upstream, r->t_recv_ms, err);
        w->bytes_since_budget = UINT64_MAX / 2;
    }
    if (f == NULL)
        return err != NULL && err->code != 0 ? err->code : HS_EIO;
    if (write_all(f->fd, w->line.p, w->line.len) != 0) {
        rc = hs_err_set(err, HS_EIO, "%s: %s", f->part_path, strerror(errno));
        file_close(w, (size_t)(f - w->files));
        return rc;
    }
    f->bytes += w->line.len;
    w->bytes_since_budget += w->line.len;
    atomic_fetch_add(&w->bytes_written, w->line.len);
    atomic_fetch_add(&w->written, 1);
    return HS_OK;
}

/* ---- quality series into the store ---------------------------------------------------- */

struct store_ctx {
    struct tsdb_appender *a;
    int64_t t_ms;
};

static int store_sample(void *arg, const char *name, const struct hs_labels *labels, double value)
{
    struct store_ctx *c = arg;
    (void)name;
    struct hs_err e;
    HS_IGNORE_RESULT(tsdb_appender_add(c->a, labels, c->t_ms, value, NULL, &e));
    return 0;
}

static void store_quality(struct capture_writer *w)
{
    w->last_quality_store_ms = hs_mono_ns() / 1000000;
    if (w->db == NULL || w->qual == NULL || !w->quality_dirty)
        return;
    struct tsdb_appender *a = tsdb_appender_new(w->db);
    if (a == NULL)
        return;
    struct store_ctx c = {a, hs_now_ms()};
    if (qual_tracker_collect(w->qual, store_sample, &c) != HS_OK) {
        tsdb_appender_rollback(a);
        return;
    }
    struct hs_err e;
    if (tsdb_appender_commit(a, &e) != HS_OK)
        hs_log(HS_LOG_WARN, "capture: storing quality series failed", HS_LSTR("error", e.msg));
    w->quality_dirty = false;
}

/* ---- the thread -------------------------------------------------------------------------- */

static void housekeeping(struct capture_writer *w)
{
    rotate_by_time(w);
    uint64_t step = w->cfg.max_disk_bytes / 16;
    if (step < (1u << 20))
        step = 1u << 20;
    if (w->bytes_since_budget >= step)
        enforce_budget(w);
    if (hs_mono_ns() / 1000000 - w->last_quality_store_ms >= QUALITY_STORE_MS)
        store_quality(w);
}

static void finish_one(struct capture_writer *w, struct qitem *q)
{
    struct hs_err e = {0};
    if (process(w, &q->r, &e) != HS_OK) {
        atomic_fetch_add(&w->write_errors, 1);
        hs_log(HS_LOG_WARN, "capture record lost", HS_LSTR("error", e.msg));
    }
    hs_free(q);
}

static struct qitem *pop_locked(struct capture_writer *w)
{
    struct qitem *q = w->head;
    if (q == NULL)
        return NULL;
    w->head = q->next;
    if (w->head == NULL)
        w->tail = NULL;
    w->qlen--;
    w->qbytes -= q->size;
    atomic_store(&w->queue_length, w->qlen);
    return q;
}

static void *writer_main(void *arg)
{
    struct capture_writer *w = arg;
    int64_t drain_deadline = 0;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->head == NULL && !w->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += TICK_MS / 1000;
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
        if (w->stopping && drain_deadline == 0)
            drain_deadline = hs_mono_ns() / 1000000 + DRAIN_TIMEOUT_MS;
        struct qitem *q = pop_locked(w);
        if (q == NULL && w->stopping)
            break;
        if (q != NULL && w->stopping && hs_mono_ns() / 1000000 > drain_deadline) {
            /* Out of time: the rest is dropped and counted. */
            atomic_fetch_add(&w->dropped_queue_full, 1);
            hs_free(q);
            w->seq_done++;
            pthread_cond_broadcast(&w->done_cv);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        if (q != NULL)
            finish_one(w, q);
        housekeeping(w);
        pthread_mutex_lock(&w->mu);
        if (q != NULL) {
            w->seq_done++;
            pthread_cond_broadcast(&w->done_cv);
        }
    }
    pthread_mutex_unlock(&w->mu);
    close_all(w);
    enforce_budget(w);
    w->quality_dirty = w->quality_dirty && w->db != NULL;
    store_quality(w);
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

struct capture_writer *capture_writer_new(const struct capture_config *c, struct tsdb *db,
                                          struct hs_err *err)
{
    if (c == NULL || c->dir == NULL || c->dir[0] == '\0') {
        hs_err_set(err, HS_EINVAL, "capture: no directory configured (capture.dir)");
        return NULL;
    }
    struct capture_writer *w = hs_calloc(1, sizeof(*w));
    if (w == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    w->cfg = *c;
    memset(&w->cfg.arena, 0, sizeof(w->cfg.arena));
    w->cfg.redaction.custom = NULL;
    w->cfg.redaction.ncustom = 0;
    w->cfg.quality = NULL;
    if (w->cfg.queue_size == 0)
        w->cfg.queue_size = 1;
    w->db = db;
    hs_buf_init(&w->line, 0);
    hs_buf_init(&w->in_buf, 0);
    hs_buf_init(&w->out_buf, 0);
    hs_buf_init(&w->extra, 0);
    hs_buf_init(&w->asm_buf, 0);
    hs_buf_init(&w->id_buf, 0);
    hs_buf_init(&w->attr_buf, 0);
    hs_arena_init(&w->scratch, 64 * 1024, 0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_cond_init(&w->done_cv, NULL);
    w->dir = hs_strdup(c->dir);
    if (w->dir == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        goto fail;
    }
    size_t dl = strlen(w->dir);
    while (dl > 1 && w->dir[dl - 1] == '/')
        w->dir[--dl] = '\0';
    w->cfg.dir = w->dir;
    if (hs_mkdir_p(w->dir, err) != HS_OK)
        goto fail;
    if (c->redact) {
        w->red = redactor_new(&c->redaction, err);
        if (w->red == NULL)
            goto fail;
    }
    if (c->score_quality) {
        w->qual = qual_tracker_new(c->quality, err);
        if (w->qual == NULL)
            goto fail;
    }
    w->last_quality_store_ms = hs_mono_ns() / 1000000;
    enforce_budget(w);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        hs_err_set(err, HS_ENOMEM, "capture: cannot start the writer thread");
        goto fail;
    }
    w->thread_started = true;
    return w;
fail:
    capture_writer_free(w);
    return NULL;
}

void capture_writer_free(struct capture_writer *w)
{
    if (w == NULL)
        return;
    if (w->thread_started) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    struct qitem *q;
    while ((q = pop_locked(w)) != NULL)
        hs_free(q);
    close_all(w);
    redactor_free(w->red);
    qual_tracker_free(w->qual);
    hs_buf_cleanup(&w->line);
    hs_buf_cleanup(&w->in_buf);
    hs_buf_cleanup(&w->out_buf);
    hs_buf_cleanup(&w->extra);
    hs_buf_cleanup(&w->asm_buf);
    hs_buf_cleanup(&w->id_buf);
    hs_buf_cleanup(&w->attr_buf);
    hs_arena_cleanup(&w->scratch);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->mu);
    hs_free(w->dir);
    hs_free(w);
}

int capture_writer_flush(struct capture_writer *w, int64_t timeout_ms)
{
    int64_t deadline = hs_mono_ns() / 1000000 + timeout_ms;
    pthread_mutex_lock(&w->mu);
    uint64_t target = w->seq_in;
    int rc = HS_OK;
    while (w->seq_done < target) {
        int64_t left = deadline - hs_mono_ns() / 1000000;
        if (left <= 0) {
            rc = HS_ETIMEDOUT;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t step = HS_MIN(left, 100);
        ts.tv_nsec += (long)(step * 1000000);
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->done_cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

const struct capture_config *capture_writer_config(const struct capture_writer *w)
{
    return &w->cfg;
}

double capture_writer_sampling_percentage(const struct capture_writer *w)
{
    return w->cfg.sampling_percentage;
}

struct qual_tracker *capture_writer_quality(struct capture_writer *w)
{
    return w->qual;
}

void capture_writer_get_stats(const struct capture_writer *w, struct capture_stats *out)
{
    struct capture_writer *m = (struct capture_writer *)w; /* atomics are read-only here */
    memset(out, 0, sizeof(*out));
    out->submitted = atomic_load(&m->submitted);
    out->written = atomic_load(&m->written);
    out->dropped_queue_full = atomic_load(&m->dropped_queue_full);
    out->dropped_too_large = atomic_load(&m->dropped_too_large);
    out->write_errors = atomic_load(&m->write_errors);
    out->bytes_written = atomic_load(&m->bytes_written);
    out->files_closed = atomic_load(&m->files_closed);
    out->files_removed = atomic_load(&m->files_removed);
    out->queue_length = atomic_load(&m->queue_length);
    out->disk_bytes = atomic_load(&m->disk_bytes);
    out->quality_scored = atomic_load(&m->quality_scored);
    for (size_t i = 0; i < REDACT_MAX_TYPES; i++)
        out->redactions[i] = atomic_load(&m->redactions[i]);
}

/* ---- /metrics ------------------------------------------------------------------------------ */

static int family(struct hs_buf *b, const char *name, const char *type, const char *help)
{
    return hs_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int capture_writer_metrics(void *arg, struct hs_buf *out)
{
    struct capture_writer *w = arg;
    struct capture_stats s;
    capture_writer_get_stats(w, &s);
    int rc = family(out, "holoscope_capture_records_total", "counter",
                    "Capture records written to disk.");
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "holoscope_capture_records_total %llu\n",
                           (unsigned long long)s.written);
    if (rc == HS_OK)
        rc = family(out, "holoscope_capture_dropped_total", "counter",
                    "Capture records not written, by reason.");
    if (rc == HS_OK)
        rc = hs_buf_printf(out,
                           "holoscope_capture_dropped_total{reason=\"queue_full\"} %llu\n"
                           "holoscope_capture_dropped_total{reason=\"too_large\"} %llu\n"
                           "holoscope_capture_dropped_total{reason=\"error\"} %llu\n",
                           (unsigned long long)s.dropped_queue_full,
                           (unsigned long long)s.dropped_too_large,
                           (unsigned long long)s.write_errors);
    if (rc == HS_OK)
        rc = family(out, "holoscope_capture_bytes_written_total", "counter",
                    "Bytes of JSON Lines written to capture files.");
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "holoscope_capture_bytes_written_total %llu\n",
                           (unsigned long long)s.bytes_written);
    if (rc == HS_OK)
        rc = family(out, "holoscope_capture_files_closed_total", "counter",
                    "Capture files completed and renamed.");
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "holoscope_capture_files_closed_total %llu\n",
                           (unsigned long long)s.files_closed);
    if (rc == HS_OK)
        rc = family(out, "holoscope_capture_files_removed_total", "counter",
                    "Capture files deleted to stay within the disk budget.");
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "holoscope_capture_files_removed_total %llu\n",
                           (unsigned long long)s.files_removed);
    if (rc == HS_OK)
        rc = family(out, "holoscope_capture_queue_length", "gauge",
                    "Capture records waiting for the writer.");
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "holoscope_capture_queue_length %llu\n",
                           (unsigned long long)s.queue_length);
    if (rc == HS_OK)
        rc = family(out, "holoscope_capture_disk_bytes", "gauge",
                    "Bytes of capture files on disk at the last budget check.");
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "holoscope_capture_disk_bytes %llu\n",
                           (unsigned long long)s.disk_bytes);
    if (rc == HS_OK && w->red != NULL) {
        rc = family(out, "holoscope_capture_redactions_total", "counter",
                    "PII replacements made in captured payloads, by detector type.");
        for (size_t i = 0; i < redactor_ntypes(w->red) && rc == HS_OK; i++)
            rc = hs_buf_printf(out, "holoscope_capture_redactions_total{type=\"%s\"} %llu\n",
                               redactor_type_name(w->red, i), (unsigned long long)s.redactions[i]);
    }
    return rc;
}
