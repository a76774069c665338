/*
 * util.c - what both collectors share: building a sample's label set and
 * handing it to the sink, reading /proc and /sys files with read(2) into
 * fixed buffers, and cursor helpers for the whitespace-separated text those
 * files hold.
 *
 * Nothing here allocates: label sets live on the stack, lines in the
 * reader's own buffer.  A line longer than COLLECT__LINE_MAX is cut (its
 * head is returned, the rest skipped), so no file can make a reader grow.
 */
#include "collect/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- emitting ------------------------------------------------------------- */

void collect__put(struct collect__emit *e, const char *name, double v, size_t n,
                  const char *const *kv)
{
    struct hs_label arr[COLLECT__MAX_LABELS];
    struct hs_labels ls = {0, arr};
    if (1 + e->n_common + n > COLLECT__MAX_LABELS) {
        e->errors++;
        return;
    }
    arr[ls.n++] = (struct hs_label){"__name__", name};
    for (size_t i = 0; i < e->n_common; i++)
        if (e->common[i].value != NULL && e->common[i].value[0] != '\0')
            arr[ls.n++] = e->common[i];
    for (size_t i = 0; i < n; i++)
        if (kv[2 * i + 1] != NULL && kv[2 * i + 1][0] != '\0')
            arr[ls.n++] = (struct hs_label){kv[2 * i], kv[2 * i + 1]};
    hs_labels_sort(&ls);
    struct hs_err err;
    hs_err_clear(&err);
    if (e->sink->add(e->sink->ctx, &ls, e->t_ms, v, &err) != HS_OK) {
        e->errors++;
        hs_log(HS_LOG_DEBUG, "collect: sample rejected", HS_LSTR("metric", name),
               HS_LSTR("error", err.msg));
        return;
    }
    e->samples++;
}

void collect__put0(struct collect__emit *e, const char *name, double v)
{
    collect__put(e, name, v, 0, NULL);
}

void collect__put1(struct collect__emit *e, const char *name, double v, const char *k1,
                   const char *v1)
{
    const char *kv[2] = {k1, v1};
    collect__put(e, name, v, 1, kv);
}

/* ---- files -------------------------------------------------------------------- */

int collect__path(char *out, size_t cap, const char *root, const char *rel)
{
    size_t rl = strlen(root);
    size_t ll = rel != NULL ? strlen(rel) : 0;
    if (rl + 1 + ll + 1 > cap)
        return HS_ETOOBIG;
    memcpy(out, root, rl);
    size_t n = rl;
    if (rel != NULL) {
        if (n == 0 || out[n - 1] != '/')
            out[n++] = '/';
        memcpy(out + n, rel, ll);
        n += ll;
    }
    out[n] = '\0';
    return HS_OK;
}

static int open_at(const char *root, const char *rel, struct hs_err *err, int *fd_out)
{
    char path[4096];
    if (collect__path(path, sizeof(path), root, rel) != HS_OK)
        return hs_err_set(err, HS_ETOOBIG, "path too long: %s/%s", root, rel ? rel : "");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int code = errno == ENOENT || errno == ENOTDIR ? HS_ENOTFOUND : HS_EIO;
        return hs_err_set(err, code, "%s: %s", path, strerror(errno));
    }
    *fd_out = fd;
    return HS_OK;
}

int collect__lines_open(struct collect__lines *lr, const char *root, const char *rel,
                        struct hs_err *err)
{
    lr->fd = -1;
    lr->is_eof = false;
    lr->is_truncated = false;
    lr->is_skipping = false;
    lr->start = lr->end = 0;
    return open_at(root, rel, err, &lr->fd);
}

void collect__lines_close(struct collect__lines *lr)
{
    if (lr->fd >= 0)
        close(lr->fd);
    lr->fd = -1;
}

/* Reads more bytes after compacting; false at end of file or on error. */
static bool fill(struct collect__lines *lr)
{
    if (lr->is_eof || lr->fd < 0)
        return false;
    if (lr->start > 0) {
        memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
        lr->end -= lr->start;
        lr->start = 0;
    }
    size_t room = sizeof(lr->buf) - 1 - lr->end;
    if (room == 0)
        return false;
    ssize_t r;
    do {
        r = read(lr->fd, lr->buf + lr->end, room);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        lr->is_eof = true;
        return false;
    }
    lr->end += (size_t)r;
    return true;
}

/* Skips input up to and including the next '\n'. */
static void skip_rest_of_line(struct collect__lines *lr)
{
    for (;;) {
        char *nl = memchr(lr->buf + lr->start, '\n', lr->end - lr->start);
        if (nl != NULL) {
            lr->start = (size_t)(nl - lr->buf) + 1;
            return;
        }
        lr->start = lr->end;
        if (!fill(lr))
            return;
    }
}

bool collect__lines_next(struct collect__lines *lr, char **line, size_t *len)
{
    lr->is_truncated = false;
    if (lr->is_skipping) {
        lr->is_skipping = false;
        skip_rest_of_line(lr);
    }
    for (;;) {
        char *s = lr->buf + lr->start;
        size_t avail = lr->end - lr->start;
        char *nl = memchr(s, '\n', HS_MIN(avail, (size_t)COLLECT__LINE_MAX));
        if (nl != NULL) {
            *nl = '\0';
            *line = s;
            *len = (size_t)(nl - s);
            lr->start += *len + 1;
            return true;
        }
        if (avail >= COLLECT__LINE_MAX) {
            /* Too long: return its head now, drop the rest at the next call
             * (the head stays valid until then). */
            s[COLLECT__LINE_MAX - 1] = '\0';
            *line = s;
            *len = COLLECT__LINE_MAX - 1;
            lr->start += COLLECT__LINE_MAX;
            lr->is_truncated = true;
            lr->is_skipping = true;
            return true;
        }
        if (!fill(lr)) {
            if (avail == 0)
                return false;
            /* Last line without '\n'. */
            s = lr->buf + lr->start;
            s[avail] = '\0';
            *line = s;
            *len = avail;
            lr->start = lr->end;
            return true;
        }
    }
}

int collect__read_small(const char *root, const char *rel, char *buf, size_t cap, size_t *len,
                        struct hs_err *err)
{
    int fd = -1;
    int rc = open_at(root, rel, err, &fd);
    if (rc != HS_OK)
        return rc;
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            char extra;
            ssize_t r = read(fd, &extra, 1);
            close(fd);
            if (r > 0)
                return hs_err_set(err, HS_ETOOBIG, "%s: longer than %zu bytes", rel ? rel : root,
                                  cap - 1);
            break;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return hs_err_set(err, HS_EIO, "%s: %s", rel ? rel : root, strerror(e));
        }
        if (r == 0) {
            close(fd);
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return HS_OK;
}

/* ---- cursors --------------------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void collect__skip_blanks(const char **p)
{
    while (is_blank(**p))
        (*p)++;
}

bool collect__word(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    while (is_blank(*s))
        s++;
    const char *b = s;
    while (*s != '\0' && !is_blank(*s))
        s++;
    if (s == b || cap == 0)
        return false;
    size_t n = HS_MIN((size_t)(s - b), cap - 1);
    memcpy(out, b, n);
    out[n] = '\0';
    *p = s;
    return true;
}

bool collect__u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    while (is_blank(*s))
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        s++;
    }
    if (*s != '\0' && !is_blank(*s))
        return false;
    *out = v;
    *p = s;
    return true;
}

bool collect__f64(const char **p, double *out)
{
    const char *s = *p;
    while (is_blank(*s))
        s++;
    char tok[64];
    size_t n = 0;
    while (s[n] != '\0' && !is_blank(s[n]) && n < sizeof(tok) - 1) {
        tok[n] = s[n];
        n++;
    }
    if (n == 0 || (s[n] != '\0' && !is_blank(s[n])))
        return false;
    tok[n] = '\0';
    double v;
    if (hs_parse_double(tok, &v) != HS_OK || !isfinite(v))
        return false;
    *out = v;
    *p = s + n;
    return true;
}

bool collect__lit(const char **p, const char *lit)
{
    const char *s = *p;
    while (is_blank(*s))
        s++;
    size_t n = strlen(lit);
    if (strncmp(s, lit, n) != 0)
        return false;
    *p = s + n;
    return true;
}
