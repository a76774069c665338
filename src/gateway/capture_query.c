/*
 * capture_query.c - reads capture files back (spec/gateway.md §8.5) for
 * GET /api/v1/captures and the CLI.
 *
 * The layout <dir>/<endpoint>/<variant>/YYYY/MM/DD/HH/ lets a query skip
 * whole hours outside its range and stop early: hour directories are
 * visited newest first, the records of one hour (across endpoints and
 * variants) are sorted newest first, and the walk ends once 'limit'
 * records are out.  The writer's open ".part" files are read too (their
 * whole lines only), so the newest requests are visible before rotation.
 * Lines that do not parse are skipped: the files may come from elsewhere.
 */
#include "gateway/capture.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_MAX_BYTES (64u << 20)
#define MAX_FILE_READ     (1u << 30)
#define PATH_LEN          4096
#define HOUR_MS           3600000

struct hour_dir {
    char *path;
    char *endpoint;
    char *variant;
    int64_t start_ms;
};

struct hours {
    struct hour_dir *v;
    size_t n, cap;
};

struct hit {
    int64_t t_ms;
    const char *json;
    size_t len;
};

struct hits {
    struct hit *v;
    size_t n, cap;
};

/* Walk state: the path components below the root, level by level. */
struct walk {
    const struct capture_query *q;
    const char *model; /* reduced endpoint filter or NULL */
    struct hours *out;
    const char *comp[6]; /* endpoint, variant, YYYY, MM, DD, HH */
};

static void hours_free(struct hours *h)
{
    for (size_t i = 0; i < h->n; i++) {
        hs_free(h->v[i].path);
        hs_free(h->v[i].endpoint);
        hs_free(h->v[i].variant);
    }
    hs_free(h->v);
}

static bool all_digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int add_hour(struct walk *w, const char *path)
{
    int64_t y, mo, d, h;
    if (hs_parse_i64(w->comp[2], &y) != HS_OK || hs_parse_i64(w->comp[3], &mo) != HS_OK ||
        hs_parse_i64(w->comp[4], &d) != HS_OK || hs_parse_i64(w->comp[5], &h) != HS_OK)
        return HS_OK;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23)
        return HS_OK;
    struct tm tm = {
        .tm_year = (int)y - 1900, .tm_mon = (int)mo - 1, .tm_mday = (int)d, .tm_hour = (int)h};
    int64_t start = (int64_t)timegm(&tm) * 1000;
    if (start + HOUR_MS - 1 < w->q->start_ms || start > w->q->end_ms)
        return HS_OK;
    struct hours *hs = w->out;
    if (hs->n == hs->cap) {
        size_t ncap = hs->cap != 0 ? hs->cap * 2 : 32;
        struct hour_dir *nv = hs_reallocarray(hs->v, ncap, sizeof(*nv));
        if (nv == NULL)
            return HS_ENOMEM;
        hs->v = nv;
        hs->cap = ncap;
    }
    struct hour_dir hd = {hs_strdup(path), hs_strdup(w->comp[0]), hs_strdup(w->comp[1]), start};
    if (hd.path == NULL || hd.endpoint == NULL || hd.variant == NULL) {
        hs_free(hd.path);
        hs_free(hd.endpoint);
        hs_free(hd.variant);
        return HS_ENOMEM;
    }
    hs->v[hs->n++] = hd;
    return HS_OK;
}

static bool level_name_ok(int level, const char *name)
{
    if (name[0] == '.')
        return false;
    switch (level) {
    case 2:
        return all_digits(name, 4);
    case 3:
    case 4:
    case 5:
        return all_digits(name, 2);
    default:
        return true;
    }
}

static int walk_level(struct walk *w, const char *dir, int level)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return HS_OK;
    int rc = HS_OK;
    struct dirent *e;
    char path[PATH_LEN];
    while (rc == HS_OK && (e = readdir(d)) != NULL) {
        if (!level_name_ok(level, e->d_name))
            continue;
        if (level == 0 && w->model != NULL && strcmp(e->d_name, w->model) != 0)
            continue;
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path) || !is_dir(path))
            continue;
        w->comp[level] = e->d_name;
        rc = level == 5 ? add_hour(w, path) : walk_level(w, path, level + 1);
    }
    closedir(d);
    return rc;
}

static int hour_cmp_desc(const void *a, const void *b)
{
    const struct hour_dir *x = a, *y = b;
    if (x->start_ms != y->start_ms)
        return x->start_ms > y->start_ms ? -1 : 1;
    return strcmp(x->path, y->path);
}

static int hit_cmp_desc(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->t_ms != y->t_ms)
        return x->t_ms > y->t_ms ? -1 : 1;
    return 0;
}

/* ---- rendering one record ------------------------------------------------------------ */

static int put_jstr(struct hs_buf *b, const char *s, size_t n)
{
    if (s == NULL)
        return hs_buf_puts(b, "null");
    int rc = hs_buf_putc(b, '"');
    if (rc == HS_OK)
        rc = redact_json_escape(s, n, b);
    return rc == HS_OK ? hs_buf_putc(b, '"') : rc;
}

static int put_payload(struct hs_buf *b, bool has, const char *ctype, const char *enc,
                       const char *data, size_t len)
{
    if (!has)
        return hs_buf_puts(b, "null");
    int rc = hs_buf_puts(b, "{\"contentType\":");
    if (rc == HS_OK)
        rc = put_jstr(b, ctype, ctype != NULL ? strlen(ctype) : 0);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"encoding\":\"%s\",\"data\":", enc);
    bool is_text = capture_utf8_valid(data, len);
    if (rc == HS_OK && is_text)
        rc = put_jstr(b, data != NULL ? data : "", len);
    if (rc == HS_OK && !is_text) {
        rc = hs_buf_putc(b, '"');
        if (rc == HS_OK)
            rc = capture_base64_encode(data, len, b);
        if (rc == HS_OK)
            rc = hs_buf_puts(b, "\",\"isBase64\":true");
    }
    return rc == HS_OK ? hs_buf_putc(b, '}') : rc;
}

static int render(struct hs_buf *b, const struct capture_record *r, const struct hour_dir *hd)
{
    int rc = hs_buf_puts(b, "{\"eventId\":");
    if (rc == HS_OK)
        rc = put_jstr(b, r->event_id, r->event_id != NULL ? strlen(r->event_id) : 0);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"inferenceId\":");
    if (rc == HS_OK)
        rc = put_jstr(b, r->inference_id, r->inference_id != NULL ? strlen(r->inference_id) : 0);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"inferenceTime\":");
    if (rc == HS_OK)
        rc = put_jstr(b, r->inference_time, strlen(r->inference_time));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"model\":");
    if (rc == HS_OK)
        rc = put_jstr(b, hd->endpoint, strlen(hd->endpoint));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"variant\":");
    if (rc == HS_OK)
        rc = put_jstr(b, hd->variant, strlen(hd->variant));
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"input\":");
    if (rc == HS_OK)
        rc = put_payload(b, r->has_input, r->input_content_type,
                         r->input_encoding != NULL ? r->input_encoding
                                                   : capture_encoding_for(r->input_content_type),
                         r->input, r->input_len);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"output\":");
    if (rc == HS_OK)
        rc = put_payload(b, r->has_output, r->output_content_type,
                         r->output_encoding != NULL ? r->output_encoding
                                                    : capture_encoding_for(r->output_content_type),
                         r->output, r->output_len);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"holoscope\":%s}",
                           r->extension_json != NULL ? r->extension_json : "null");
    return rc;
}

/* ---- reading one hour ------------------------------------------------------------------ */

struct qstate {
    const struct capture_query *q;
    struct hs_arena arena; /* per hour group: parsed records and rendered JSON */
    struct hits hits;
    struct hs_buf tmp;
};

static int add_hit(struct qstate *s, int64_t t_ms, const char *json, size_t len)
{
    if (s->hits.n == s->hits.cap) {
        size_t ncap = s->hits.cap != 0 ? s->hits.cap * 2 : 64;
        struct hit *nv = hs_reallocarray(s->hits.v, ncap, sizeof(*nv));
        if (nv == NULL)
            return HS_ENOMEM;
        s->hits.v = nv;
        s->hits.cap = ncap;
    }
    const char *copy = hs_arena_strndup(&s->arena, json, len);
    if (copy == NULL)
        return HS_ENOMEM;
    s->hits.v[s->hits.n++] = (struct hit){t_ms, copy, len};
    return HS_OK;
}

static int read_lines(struct qstate *s, const struct hour_dir *hd, const char *text, size_t len,
                      bool is_part)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        if (nl == NULL && is_part)
            break; /* torn last line of a file still being written */
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        if (end > i) {
            struct capture_record r;
            struct hs_err e;
            if (capture_record_parse(text + i, end - i, &s->arena, &r, &e) == HS_OK &&
                r.t_recv_ms >= s->q->start_ms && r.t_recv_ms <= s->q->end_ms) {
                hs_buf_reset(&s->tmp);
                int rc = render(&s->tmp, &r, hd);
                if (rc == HS_OK)
                    rc = add_hit(s, r.t_recv_ms, s->tmp.p, s->tmp.len);
                if (rc != HS_OK)
                    return rc;
            }
        }
        i = end + 1;
    }
    return HS_OK;
}

static int read_hour(struct qstate *s, const struct hour_dir *hd, struct hs_err *err)
{
    DIR *d = opendir(hd->path);
    if (d == NULL)
        return HS_OK; /* removed by the disk budget meanwhile */
    int rc = HS_OK;
    struct dirent *e;
    char path[PATH_LEN];
    while (rc == HS_OK && (e = readdir(d)) != NULL) {
        bool is_part = e->d_name[0] == '.' && hs_has_suffix(e->d_name, ".jsonl.part");
        if (!is_part && (e->d_name[0] == '.' || !hs_has_suffix(e->d_name, ".jsonl")))
            continue;
        int n = snprintf(path, sizeof(path), "%s/%s", hd->path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path))
            continue;
        size_t len = 0;
        struct hs_err fe;
        char *text = hs_read_file(path, MAX_FILE_READ, &len, &fe);
        if (text == NULL) {
            if (fe.code == HS_ENOMEM)
                rc = hs_err_set(err, HS_ENOMEM, "out of memory reading %s", path);
            continue; /* renamed or removed meanwhile */
        }
        rc = read_lines(s, hd, text, len, is_part);
        hs_free(text);
        if (rc != HS_OK)
            rc = hs_err_set(err, rc, "out of memory reading captures");
    }
    closedir(d);
    return rc;
}

/* ---- the query ---------------------------------------------------------------------------- */

static int emit(struct qstate *s, struct hs_buf *out, size_t start_len, uint64_t max_bytes,
                size_t *emitted, size_t limit, struct hs_err *err)
{
    if (s->hits.n > 1)
        qsort(s->hits.v, s->hits.n, sizeof(*s->hits.v), hit_cmp_desc);
    for (size_t i = 0; i < s->hits.n && *emitted < limit; i++) {
        int rc = *emitted > 0 ? hs_buf_putc(out, ',') : HS_OK;
        if (rc == HS_OK)
            rc = hs_buf_append(out, s->hits.v[i].json, s->hits.v[i].len);
        if (rc == HS_OK && out->len - start_len > max_bytes)
            rc = HS_ETOOBIG;
        if (rc == HS_ETOOBIG)
            return hs_err_set(err, rc, "captures: answer larger than %llu bytes; lower limit",
                              (unsigned long long)max_bytes);
        if (rc != HS_OK)
            return hs_err_set(err, rc, "out of memory");
        (*emitted)++;
    }
    return HS_OK;
}

int capture_query(const char *dir, const struct capture_query *q, struct hs_buf *json_out,
                  struct hs_err *err)
{
    size_t limit = q->limit == 0 ? CAPTURE_QUERY_DEFAULT_LIMIT : q->limit;
    if (limit > CAPTURE_QUERY_MAX_LIMIT)
        limit = CAPTURE_QUERY_MAX_LIMIT;
    uint64_t max_bytes = q->max_bytes != 0 ? q->max_bytes : DEFAULT_MAX_BYTES;
    char model[256];
    struct hours hours = {0};
    struct walk w = {.q = q, .out = &hours};
    if (q->model != NULL && q->model[0] != '\0') {
        capture_path_component(q->model, model, sizeof(model));
        w.model = model;
    }
    size_t start_len = json_out->len;
    int rc = walk_level(&w, dir, 0);
    if (rc != HS_OK) {
        hours_free(&hours);
        return hs_err_set(err, rc, "out of memory listing captures");
    }
    if (hours.n > 1)
        qsort(hours.v, hours.n, sizeof(*hours.v), hour_cmp_desc);
    struct qstate s = {.q = q};
    hs_arena_init(&s.arena, 64 * 1024, 0);
    hs_buf_init(&s.tmp, 0);
    size_t emitted = 0;
    rc = hs_buf_putc(json_out, '[');
    for (size_t i = 0; i < hours.n && rc == HS_OK && emitted < limit;) {
        size_t j = i;
        hs_arena_reset(&s.arena);
        s.hits.n = 0;
        while (rc == HS_OK && j < hours.n && hours.v[j].start_ms == hours.v[i].start_ms)
            rc = read_hour(&s, &hours.v[j++], err);
        if (rc == HS_OK)
            rc = emit(&s, json_out, start_len, max_bytes, &emitted, limit, err);
        i = j;
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(json_out, ']');
    if (rc != HS_OK) {
        if (err != NULL && err->code == 0)
            hs_err_set(err, rc, "captures: %s", hs_strerror(rc));
        json_out->len = start_len;
        if (json_out->p != NULL)
            json_out->p[start_len] = '\0';
    }
    hs_free(s.hits.v);
    hs_buf_cleanup(&s.tmp);
    hs_arena_cleanup(&s.arena);
    hours_free(&hours);
    return rc;
}
