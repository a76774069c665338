/*
 * wal.c - write-ahead log for the head.
 *
 * Every committed batch is appended here (series records for series the
 * WAL has not seen yet, then one samples record) before the commit is
 * acknowledged; with fsync=batch the segment is fsync'd first, with
 * fsync=interval a background thread fsyncs every interval, so a crash
 * loses at most one interval.  Start-up loads the newest checkpoint and
 * replays the segments after it.
 *
 * Files, in <data>/wal/: segments "00000001", "00000002", ... (a new one
 * at every open and whenever one passes wal_segment_bytes) and at most one
 * "checkpoint.NNNNNNNN" holding the head as it was when segments <= N were
 * retired.  Records carry a CRC32C.  Replay stops at the first torn or
 * corrupt record: the segment is truncated there, later segments are
 * deleted, a warning is logged and the corruption counted; everything
 * before it is kept.  Records are idempotent against a checkpoint taken
 * while appends continue (a sample replayed twice is an ignored duplicate).
 * Byte layout: docs/formats/wal.md.
 *
 * Threading: writers hold wal.mu (the commit lock); fsync runs outside it
 * on a dup of the segment's descriptor, serialised by sync_mu so that one
 * fsync covers every commit written before it (group commit).
 */
#include "tsdb/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LABELS_PER_RECORD 4096

/* ---- varints ---------------------------------------------------------------- */

size_t tsdb__put_uvarint(uint8_t *p, uint64_t x)
{
    size_t n = 0;
    while (x >= 0x80) {
        p[n++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    p[n++] = (uint8_t)x;
    return n;
}

bool tsdb__get_uvarint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (int shift = 0; shift < 70 && p < end; shift += 7) {
        uint8_t b = *p++;
        if (shift == 63 && b > 1)
            return false;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *pp = p;
            *out = x;
            return true;
        }
    }
    return false;
}

/* ---- record encoding ----------------------------------------------------------- */

int tsdb__wal_frame(struct hs_buf *b, int type, const void *payload, size_t len)
{
    if (len > TSDB__REC_MAX)
        return HS_ETOOBIG;
    uint8_t h[TSDB__REC_HEADER];
    uint32_t crc = hs_crc32c(0, payload, len);
    h[0] = (uint8_t)type;
    for (int k = 0; k < 4; k++) {
        h[1 + k] = (uint8_t)(len >> (8 * k));
        h[5 + k] = (uint8_t)(crc >> (8 * k));
    }
    if (hs_buf_reserve(b, sizeof(h) + len) != HS_OK)
        return HS_ENOMEM;
    if (hs_buf_append(b, h, sizeof(h)) != HS_OK || hs_buf_append(b, payload, len) != HS_OK)
        return HS_ENOMEM;
    return HS_OK;
}

/* Reserves a header in 'b' and returns its offset; finish with end_record. */
static int begin_record(struct hs_buf *b, size_t *start)
{
    *start = b->len;
    static const uint8_t zero[TSDB__REC_HEADER];
    return hs_buf_append(b, zero, sizeof(zero));
}

static void end_record(struct hs_buf *b, size_t start, int type)
{
    uint8_t *h = (uint8_t *)b->p + start;
    size_t len = b->len - start - TSDB__REC_HEADER;
    uint32_t crc = hs_crc32c(0, h + TSDB__REC_HEADER, len);
    h[0] = (uint8_t)type;
    for (int k = 0; k < 4; k++) {
        h[1 + k] = (uint8_t)(len >> (8 * k));
        h[5 + k] = (uint8_t)(crc >> (8 * k));
    }
}

static int put_uv(struct hs_buf *b, uint64_t x)
{
    uint8_t tmp[10];
    return hs_buf_append(b, tmp, tsdb__put_uvarint(tmp, x));
}

static int put_str(struct hs_buf *b, const char *s)
{
    size_t n = strlen(s);
    int rc = put_uv(b, n);
    return rc != HS_OK ? rc : hs_buf_append(b, s, n);
}

int tsdb__wal_enc_series(struct hs_buf *b, uint32_t ref, const struct hs_labels *ls)
{
    size_t start, keep = b->len;
    int rc = begin_record(b, &start);
    rc = rc ? rc : put_uv(b, 1);
    rc = rc ? rc : put_uv(b, ref);
    rc = rc ? rc : put_uv(b, ls->n);
    for (size_t i = 0; rc == HS_OK && i < ls->n; i++) {
        rc = put_str(b, ls->v[i].name);
        rc = rc ? rc : put_str(b, ls->v[i].value);
    }
    if (rc != HS_OK) {
        b->len = keep;
        return rc;
    }
    end_record(b, start, TSDB__REC_SERIES);
    return HS_OK;
}

/* ---- segment files ----------------------------------------------------------------- */

static char *seg_path(const struct tsdb__wal *w, uint32_t n)
{
    size_t len = strlen(w->dir) + 32;
    char *p = hs_malloc(len);
    if (p != NULL)
        snprintf(p, len, "%s/%08u", w->dir, n);
    return p;
}

static int write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t k = write(fd, c, len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += k;
        len -= (size_t)k;
    }
    return 0;
}

static int seg_create(struct tsdb *db, uint32_t n, struct hs_err *err)
{
    struct tsdb__wal *w = &db->wal;
    char *p = seg_path(w, n);
    if (p == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int e = errno;
    hs_free(p);
    if (fd < 0)
        return hs_err_set(err, HS_EIO, "create WAL segment %u in %s: %s", n, w->dir, strerror(e));
    struct stat st;
    w->seg_bytes = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    w->fd = fd;
    w->seg = n;
    return hs_fsync_dir(w->dir, err);
}

static int timed_fsync(struct tsdb *db, int fd)
{
    int64_t t0 = hs_mono_ns();
    int rc = fdatasync(fd);
    atomic_fetch_add(&db->st.fsync_ns, (uint64_t)(hs_mono_ns() - t0));
    atomic_fetch_add(&db->st.fsyncs, 1);
    if (rc != 0)
        atomic_fetch_add(&db->st.fsync_fail, 1);
    return rc;
}

/* Closes the current segment (fsync'd) and starts the next one; wal.mu held. */
static int seg_cut(struct tsdb *db, struct hs_err *err)
{
    struct tsdb__wal *w = &db->wal;
    if (w->fd >= 0) {
        if (timed_fsync(db, w->fd) != 0) {
            int e = errno;
            return hs_err_set(err, HS_EIO, "fsync WAL segment %u: %s", w->seg, strerror(e));
        }
        close(w->fd);
        w->fd = -1;
        atomic_store(&w->synced, w->written);
    }
    return seg_create(db, w->seg + 1, err);
}

int tsdb__wal_write(struct tsdb *db, const void *p, size_t len, uint64_t *mark, struct hs_err *err)
{
    struct tsdb__wal *w = &db->wal;
    if (db->replaying)
        return HS_OK;
    if (w->fd < 0)
        return hs_err_set(err, HS_ECLOSED, "WAL is closed");
    if (w->seg_bytes > 0 && w->seg_bytes + len > db->opt.wal_segment_bytes) {
        int rc = seg_cut(db, err);
        if (rc != HS_OK)
            return rc;
    }
    if (write_all(w->fd, p, len) != 0) {
        int e = errno;
        /* Drop a partial record so the next one does not follow garbage. */
        if (ftruncate(w->fd, (off_t)w->seg_bytes) != 0)
            hs_log(HS_LOG_ERROR, "WAL truncate after failed write failed", HS_LINT("seg", w->seg));
        return hs_err_set(err, HS_EIO, "write WAL segment %u: %s", w->seg, strerror(e));
    }
    w->seg_bytes += len;
    w->written += len;
    *mark = w->written;
    return HS_OK;
}

int tsdb__wal_sync(struct tsdb *db, uint64_t mark, struct hs_err *err)
{
    struct tsdb__wal *w = &db->wal;
    if (atomic_load(&w->synced) >= mark)
        return HS_OK;
    pthread_mutex_lock(&w->sync_mu);
    int rc = HS_OK;
    if (atomic_load(&w->synced) < mark) {
        pthread_mutex_lock(&w->mu);
        int fd = w->fd >= 0 ? dup(w->fd) : -1;
        uint64_t target = w->written;
        pthread_mutex_unlock(&w->mu);
        if (fd < 0) {
            rc = hs_err_set(err, HS_EIO, "WAL fsync: no segment open");
        } else {
            if (timed_fsync(db, fd) != 0) {
                int e = errno;
                rc = hs_err_set(err, HS_EIO, "fsync WAL: %s", strerror(e));
            } else {
                uint64_t cur = atomic_load(&w->synced);
                while (cur < target && !atomic_compare_exchange_weak(&w->synced, &cur, target))
                    ;
            }
            close(fd);
        }
    }
    pthread_mutex_unlock(&w->sync_mu);
    return rc;
}

/* ---- directory listing ---------------------------------------------------------------- */

static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x > UINT32_MAX)
        return false;
    *out = (uint32_t)x;
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment numbers (sorted) and the newest checkpoint number (0 = none). */
static int list_dir(const char *dir, uint32_t **segs, size_t *nsegs, uint32_t *ckpt,
                    struct hs_err *err)
{
    *segs = NULL;
    *nsegs = 0;
    *ckpt = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        int e = errno;
        return hs_err_set(err, HS_EIO, "open WAL directory %s: %s", dir, strerror(e));
    }
    size_t cap = 0;
    struct dirent *de;
    int rc = HS_OK;
    while ((de = readdir(d)) != NULL) {
        uint32_t n;
        const char *name = de->d_name;
        if (parse_u32(name, strlen(name), &n)) {
            if (*nsegs == cap) {
                cap = cap ? cap * 2 : 16;
                uint32_t *t = hs_reallocarray(*segs, cap, sizeof(*t));
                if (t == NULL) {
                    rc = hs_err_set(err, HS_ENOMEM, "out of memory");
                    break;
                }
                *segs = t;
            }
            (*segs)[(*nsegs)++] = n;
        } else if (hs_has_prefix(name, "checkpoint.") &&
                   parse_u32(name + 11, strlen(name + 11), &n) && n > *ckpt) {
            *ckpt = n;
        }
    }
    closedir(d);
    if (*nsegs > 1)
        qsort(*segs, *nsegs, sizeof(**segs), cmp_u32);
    return rc;
}

static void remove_file(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = hs_malloc(len);
    if (p == NULL)
        return;
    snprintf(p, len, "%s/%s", dir, name);
    if (unlink(p) != 0 && errno != ENOENT)
        hs_log(HS_LOG_WARN, "cannot remove WAL file", HS_LSTR("path", p),
               HS_LSTR("error", strerror(errno)));
    hs_free(p);
}

uint64_t tsdb__wal_size(struct tsdb *db, uint64_t *segments)
{
    uint64_t total = 0, n = 0;
    DIR *d = opendir(db->wal.dir);
    if (d != NULL) {
        struct dirent *de;
        struct stat st;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode)) {
                total += (uint64_t)st.st_size;
                uint32_t x;
                n += parse_u32(de->d_name, strlen(de->d_name), &x);
            }
        }
        closedir(d);
    }
    if (segments != NULL)
        *segments = n;
    return total;
}

/* ---- replay ------------------------------------------------------------------------ */

struct rd {
    const uint8_t *p, *end;
};

static bool rd_uv(struct rd *r, uint64_t *x)
{
    return tsdb__get_uvarint(&r->p, r->end, x);
}

/* Moves the series to a new ref: at run time it was dropped and created
 * again under a new ref, which the later records use. */
static int rekey(struct tsdb *db, struct tsdb__series *s, uint32_t ref)
{
    struct tsdb__head *h = &db->head;
    if (tsdb__head_by_ref(h, ref) != NULL || (ref > h->next_ref && ref - h->next_ref > (1u << 26)))
        return HS_ECORRUPT;
    if (ref >= h->cap_ref) {
        size_t cap = h->cap_ref ? h->cap_ref : 1024;
        while (cap <= ref)
            cap *= 2;
        struct tsdb__series **t = hs_reallocarray(h->by_ref, cap, sizeof(*t));
        if (t == NULL)
            return HS_ENOMEM;
        memset(t + h->cap_ref, 0, (cap - h->cap_ref) * sizeof(*t));
        h->by_ref = t;
        h->cap_ref = cap;
    }
    tsdb__index_remove(&h->index, s);
    h->by_ref[s->ref] = NULL;
    s->ref = ref;
    h->by_ref[ref] = s;
    if (ref >= h->next_ref)
        h->next_ref = ref + 1;
    return tsdb__index_add(&h->index, s);
}

static int replay_series(struct tsdb *db, struct rd *r, struct hs_buf *scratch)
{
    uint64_t count;
    if (!rd_uv(r, &count))
        return HS_ECORRUPT;
    struct hs_label lv[64];
    for (uint64_t k = 0; k < count; k++) {
        uint64_t ref, n;
        if (!rd_uv(r, &ref) || !rd_uv(r, &n) || ref == 0 || ref >= UINT32_MAX || n == 0 ||
            n > MAX_LABELS_PER_RECORD)
            return HS_ECORRUPT;
        hs_buf_reset(scratch);
        size_t offs[2 * MAX_LABELS_PER_RECORD];
        for (uint64_t i = 0; i < 2 * n; i++) {
            uint64_t len;
            if (!rd_uv(r, &len) || len > (uint64_t)(r->end - r->p) || memchr(r->p, 0, len) != NULL)
                return HS_ECORRUPT;
            offs[i] = scratch->len;
            if (hs_buf_append(scratch, r->p, len) != HS_OK || hs_buf_putc(scratch, '\0') != HS_OK)
                return HS_ENOMEM;
            r->p += len;
        }
        struct hs_label *v = n <= HS_ARRAY_LEN(lv) ? lv : hs_calloc(n, sizeof(*v));
        if (v == NULL)
            return HS_ENOMEM;
        for (uint64_t i = 0; i < n; i++) {
            v[i].name = scratch->p + offs[2 * i];
            v[i].value = scratch->p + offs[2 * i + 1];
        }
        struct hs_labels ls = {n, v};
        struct tsdb__series *s;
        bool created;
        int rc = tsdb__head_get_or_create(db, &ls, (uint32_t)ref, false, &s, &created, NULL);
        if (v != lv)
            hs_free(v);
        if (rc == HS_ETOOBIG)
            continue; /* options shrank since: the series' samples are dropped */
        if (rc != HS_OK)
            return rc == HS_ENOMEM ? rc : HS_ECORRUPT;
        if (s->ref != ref) {
            rc = rekey(db, s, (uint32_t)ref);
            if (rc != HS_OK)
                return rc;
        }
        s->is_logged = true;
    }
    return r->p == r->end ? HS_OK : HS_ECORRUPT;
}

/* Samples are decoded in small batches whose series are prefetched before
 * they are appended: with many series each append would otherwise wait on
 * a cache miss.  Replay is single-threaded: no head.lock, no stripe locks. */
#define REPLAY_BATCH 64

static int replay_samples(struct tsdb *db, struct rd *r)
{
    uint64_t n;
    if (!rd_uv(r, &n) || n > (uint64_t)(r->end - r->p))
        return HS_ECORRUPT;
    int64_t ref = 0, t = 0;
    struct tsdb__head *h = &db->head;
    struct {
        struct tsdb__series *s;
        int64_t t;
        uint64_t v;
    } b[REPLAY_BATCH];
    for (uint64_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < REPLAY_BATCH && i < n; i++, k++) {
            uint64_t dr, dt;
            if (!rd_uv(r, &dr) || !rd_uv(r, &dt) || r->end - r->p < 8)
                return HS_ECORRUPT;
            ref = (int64_t)((uint64_t)ref + (uint64_t)tsdb__unzigzag(dr));
            t = (int64_t)((uint64_t)t + (uint64_t)tsdb__unzigzag(dt));
            uint64_t v = 0;
            for (int j = 0; j < 8; j++)
                v |= (uint64_t)r->p[j] << (8 * j);
            r->p += 8;
            b[k].s = ref > 0 ? tsdb__head_by_ref(h, (uint64_t)ref) : NULL;
            b[k].t = t;
            b[k].v = v;
            if (b[k].s != NULL) {
                __builtin_prefetch(b[k].s, 1);
                __builtin_prefetch((const char *)b[k].s + 64, 1);
            }
        }
        for (size_t j = 0; j < k; j++)
            if (b[j].s != NULL && b[j].s->enc.buf != NULL)
                __builtin_prefetch(b[j].s->enc.buf + (b[j].s->enc.nbits >> 3), 1);
        for (size_t j = 0; j < k; j++) {
            if (b[j].s == NULL)
                continue; /* series dropped (limits) or deleted */
            int rc = tsdb__series_append(db, b[j].s, b[j].t, b[j].v, NULL);
            if (rc == HS_ENOMEM)
                return rc;
            db->st.replay_samples += rc == HS_OK;
        }
    }
    return r->p == r->end ? HS_OK : HS_ECORRUPT;
}

static int replay_tombstones(struct tsdb *db, struct rd *r)
{
    uint64_t n;
    if (!rd_uv(r, &n) || n > (uint64_t)(r->end - r->p))
        return HS_ECORRUPT;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ref, a, b;
        if (!rd_uv(r, &ref) || !rd_uv(r, &a) || !rd_uv(r, &b))
            return HS_ECORRUPT;
        struct tsdb__series *s = tsdb__head_by_ref(&db->head, ref);
        if (s == NULL)
            continue;
        if (tsdb__series_delete_range(db, s, tsdb__unzigzag(a), tsdb__unzigzag(b)) != HS_OK)
            return HS_ENOMEM;
    }
    return r->p == r->end ? HS_OK : HS_ECORRUPT;
}

static int replay_chunk(struct tsdb *db, struct rd *r)
{
    uint64_t ref, len;
    if (!rd_uv(r, &ref) || !rd_uv(r, &len) || len != (uint64_t)(r->end - r->p) || len < 2)
        return HS_ECORRUPT;
    struct tsdb__series *s = tsdb__head_by_ref(&db->head, ref);
    if (s == NULL)
        return HS_OK;
    uint8_t *data = hs_malloc(len);
    if (data == NULL)
        return HS_ENOMEM;
    memcpy(data, r->p, len);
    r->p += len;
    unsigned n = tsdb_chunk_num_samples(data, len);
    int rc = tsdb__series_add_chunk(db, s, data, len);
    if (rc == HS_OK)
        db->st.replay_samples += n;
    /* A chunk overlapping what is there (a replayed duplicate) is skipped. */
    return rc == HS_ENOMEM ? rc : HS_OK;
}

size_t tsdb__wal_replay_buf(struct tsdb *db, const uint8_t *p, size_t len, bool *corrupt,
                            int *fatal)
{
    size_t off = 0;
    struct hs_buf scratch;
    hs_buf_init(&scratch, 0);
    *corrupt = false;
    *fatal = HS_OK;
    while (off < len) {
        if (len - off < TSDB__REC_HEADER) {
            *corrupt = true;
            break;
        }
        const uint8_t *h = p + off;
        uint32_t rlen = 0, crc = 0;
        for (int k = 0; k < 4; k++) {
            rlen |= (uint32_t)h[1 + k] << (8 * k);
            crc |= (uint32_t)h[5 + k] << (8 * k);
        }
        if (rlen > TSDB__REC_MAX || rlen > len - off - TSDB__REC_HEADER ||
            hs_crc32c(0, h + TSDB__REC_HEADER, rlen) != crc) {
            *corrupt = true;
            break;
        }
        struct rd r = {h + TSDB__REC_HEADER, h + TSDB__REC_HEADER + rlen};
        int rc;
        switch (h[0]) {
        case TSDB__REC_SERIES:
            rc = replay_series(db, &r, &scratch);
            break;
        case TSDB__REC_SAMPLES:
            rc = replay_samples(db, &r);
            break;
        case TSDB__REC_TOMBSTONES:
            rc = replay_tombstones(db, &r);
            break;
        case TSDB__REC_CHUNK:
            rc = replay_chunk(db, &r);
            break;
        default:
            rc = HS_ECORRUPT;
        }
        if (rc == HS_ENOMEM) {
            /* Not the log's fault: stop without judging the rest. */
            *fatal = rc;
            break;
        }
        if (rc != HS_OK) {
            *corrupt = true;
            break;
        }
        off += TSDB__REC_HEADER + rlen;
    }
    hs_buf_cleanup(&scratch);
    return off;
}

/* Replays one file; on corruption cuts it at the last good record when
 * 'cut' (segments) and returns 1. */
static int replay_file(struct tsdb *db, const char *name, bool cut, struct hs_err *err)
{
    size_t plen = strlen(db->wal.dir) + strlen(name) + 2;
    char *path = hs_malloc(plen);
    if (path == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    snprintf(path, plen, "%s/%s", db->wal.dir, name);
    size_t len = 0;
    struct hs_err e2;
    char *data = hs_read_file(path, 0, &len, &e2);
    if (data == NULL) {
        int rc = hs_err_set(err, e2.code, "read WAL file %s: %s", path, e2.msg);
        hs_free(path);
        return rc;
    }
    bool corrupt;
    int fatal;
    size_t good = tsdb__wal_replay_buf(db, (const uint8_t *)data, len, &corrupt, &fatal);
    hs_free(data);
    int rc = HS_OK;
    if (fatal != HS_OK) {
        rc = hs_err_set(err, fatal, "replay of %s stopped at offset %zu: %s", path, good,
                        hs_strerror(fatal));
    } else if (corrupt) {
        atomic_fetch_add(&db->st.corruptions, 1);
        hs_log(HS_LOG_WARN, "WAL corrupt or torn: cutting it at the last good record",
               HS_LSTR("file", path), HS_LINT("offset", good), HS_LINT("size", len));
        if (cut && truncate(path, (off_t)good) != 0) {
            int e = errno;
            rc = hs_err_set(err, HS_EIO, "truncate %s: %s", path, strerror(e));
        } else {
            rc = 1;
        }
    }
    hs_free(path);
    return rc;
}

int tsdb__wal_replay(struct tsdb *db, struct hs_err *err)
{
    struct tsdb__wal *w = &db->wal;
    uint32_t *segs, ckpt;
    size_t nsegs;
    int rc = list_dir(w->dir, &segs, &nsegs, &ckpt, err);
    if (rc != HS_OK)
        return rc;
    int64_t t0 = hs_mono_ns();
    char name[32];
    if (ckpt > 0) {
        snprintf(name, sizeof(name), "checkpoint.%08u", ckpt);
        rc = replay_file(db, name, false, err);
        if (rc < 0)
            goto out;
        rc = HS_OK;
    }
    uint32_t last = ckpt;
    bool cut = false;
    w->first_seg = 0;
    for (size_t i = 0; i < nsegs; i++) {
        snprintf(name, sizeof(name), "%08u", segs[i]);
        if (segs[i] <= ckpt || cut) {
            if (cut)
                hs_log(HS_LOG_WARN, "WAL segment after a corruption removed",
                       HS_LSTR("segment", name));
            remove_file(w->dir, name);
            continue;
        }
        if (w->first_seg == 0)
            w->first_seg = segs[i];
        rc = replay_file(db, name, true, err);
        if (rc < 0)
            goto out;
        cut = rc == 1;
        rc = HS_OK;
        last = segs[i];
    }
    /* Drop series that ended up with no samples (deleted before the crash). */
    tsdb__head_gc(db, NULL, 0);
    db->st.replay_ns = (uint64_t)(hs_mono_ns() - t0);
    db->replaying = false;
    w->fd = -1;
    rc = seg_create(db, last + 1, err);
    if (rc == HS_OK && w->first_seg == 0)
        w->first_seg = last + 1;
out:
    hs_free(segs);
    return rc;
}

int tsdb__wal_open(struct tsdb *db, struct hs_err *err)
{
    struct tsdb__wal *w = &db->wal;
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->sync_mu, NULL);
    hs_buf_init(&w->rec, 0);
    size_t len = strlen(db->dir) + 8;
    w->dir = hs_malloc(len);
    if (w->dir == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    snprintf(w->dir, len, "%s/wal", db->dir);
    return hs_mkdir_p(w->dir, err);
}

void tsdb__wal_close(struct tsdb *db)
{
    struct tsdb__wal *w = &db->wal;
    if (w->fd >= 0) {
        if (timed_fsync(db, w->fd) != 0)
            hs_log(HS_LOG_ERROR, "fsync WAL at close failed", HS_LSTR("error", strerror(errno)));
        close(w->fd);
        w->fd = -1;
    }
    hs_buf_cleanup(&w->rec);
    hs_free(w->dir);
    w->dir = NULL;
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->sync_mu);
}

/* ---- checkpoint -------------------------------------------------------------------- */

static int flush_buf(int fd, struct hs_buf *b)
{
    if (b->len == 0)
        return 0;
    int rc = write_all(fd, b->p, b->len);
    hs_buf_reset(b);
    return rc;
}

/* Encodes one series: series record, its chunks, its out-of-order samples. */
static int ckpt_series(struct tsdb *db, struct tsdb__series *s, struct hs_buf *b)
{
    int rc = tsdb__wal_enc_series(b, s->ref, &s->ls);
    for (uint32_t i = 0; rc == HS_OK && i <= s->nchunks; i++) {
        const uint8_t *p = i < s->nchunks ? s->chunks[i].data : s->enc.buf;
        size_t len = i < s->nchunks ? s->chunks[i].len : tsdb__chunk_len(&s->enc);
        if (i == s->nchunks && s->enc.n == 0)
            break;
        size_t start;
        rc = begin_record(b, &start);
        rc = rc ? rc : put_uv(b, s->ref);
        rc = rc ? rc : put_uv(b, len);
        rc = rc ? rc : hs_buf_append(b, p, len);
        if (rc == HS_OK)
            end_record(b, start, TSDB__REC_CHUNK);
    }
    if (rc == HS_OK && s->nooo > 0) {
        size_t start;
        rc = begin_record(b, &start);
        rc = rc ? rc : put_uv(b, s->nooo);
        int64_t pt = 0;
        for (uint32_t i = 0; rc == HS_OK && i < s->nooo; i++) {
            uint8_t v[8];
            for (int k = 0; k < 8; k++)
                v[k] = (uint8_t)(s->ooo[i].v >> (8 * k));
            rc = put_uv(b, tsdb__zigzag(i == 0 ? (int64_t)s->ref : 0));
            rc = rc ? rc : put_uv(b, tsdb__zigzag((int64_t)((uint64_t)s->ooo[i].t - (uint64_t)pt)));
            rc = rc ? rc : hs_buf_append(b, v, 8);
            pt = s->ooo[i].t;
        }
        if (rc == HS_OK)
            end_record(b, start, TSDB__REC_SAMPLES);
    }
    return rc;
}

int tsdb__wal_checkpoint(struct tsdb *db, bool force, struct hs_err *err)
{
    struct tsdb__wal *w = &db->wal;
    pthread_mutex_lock(&w->mu);
    if (!force && w->seg - w->first_seg < db->opt.checkpoint_segments) {
        pthread_mutex_unlock(&w->mu);
        return HS_OK;
    }
    int rc = seg_cut(db, err);
    uint32_t upto = w->seg - 1;
    pthread_mutex_unlock(&w->mu);
    if (rc != HS_OK)
        return rc;

    char name[40], tmp[48];
    snprintf(name, sizeof(name), "checkpoint.%08u", upto);
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    size_t plen = strlen(w->dir) + sizeof(tmp) + 2;
    char *path = hs_malloc(plen);
    if (path == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    snprintf(path, plen, "%s/%s", w->dir, tmp);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        rc = hs_err_set(err, HS_EIO, "create %s: %s", path, strerror(e));
        hs_free(path);
        return rc;
    }
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct tsdb__head *h = &db->head;
    /* The read lock keeps series alive; appends to existing series go on. */
    pthread_rwlock_rdlock(&h->lock);
    for (size_t r = 0; r < h->cap_ref && rc == HS_OK; r++) {
        struct tsdb__series *s = h->by_ref[r];
        if (s == NULL)
            continue;
        pthread_mutex_t *mu = tsdb__stripe(h, s->ref);
        pthread_mutex_lock(mu);
        if (ckpt_series(db, s, &b) != HS_OK)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        pthread_mutex_unlock(mu);
        if (rc == HS_OK && b.len > (1u << 20) && flush_buf(fd, &b) != 0)
            rc = hs_err_set(err, HS_EIO, "write checkpoint: %s", strerror(errno));
    }
    pthread_rwlock_unlock(&h->lock);
    if (rc == HS_OK && flush_buf(fd, &b) != 0)
        rc = hs_err_set(err, HS_EIO, "write checkpoint: %s", strerror(errno));
    if (rc == HS_OK && fsync(fd) != 0)
        rc = hs_err_set(err, HS_EIO, "fsync checkpoint: %s", strerror(errno));
    close(fd);
    hs_buf_cleanup(&b);
    if (rc == HS_OK) {
        size_t flen = strlen(w->dir) + sizeof(name) + 2;
        char *final = hs_malloc(flen);
        if (final == NULL)
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        else {
            snprintf(final, flen, "%s/%s", w->dir, name);
            if (rename(path, final) != 0)
                rc = hs_err_set(err, HS_EIO, "rename checkpoint: %s", strerror(errno));
            hs_free(final);
        }
    }
    if (rc != HS_OK) {
        unlink(path);
        hs_free(path);
        return rc;
    }
    hs_free(path);
    rc = hs_fsync_dir(w->dir, err);
    if (rc != HS_OK)
        return rc;
    /* Retire what the checkpoint now covers. */
    uint32_t *segs, ckpt;
    size_t nsegs;
    if (list_dir(w->dir, &segs, &nsegs, &ckpt, NULL) == HS_OK) {
        char nm[32];
        for (size_t i = 0; i < nsegs; i++) {
            if (segs[i] > upto)
                continue;
            snprintf(nm, sizeof(nm), "%08u", segs[i]);
            remove_file(w->dir, nm);
        }
        hs_free(segs);
    }
    DIR *d = opendir(w->dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            uint32_t n;
            if (hs_has_prefix(de->d_name, "checkpoint.") &&
                parse_u32(de->d_name + 11, strlen(de->d_name + 11), &n) && n < upto)
                remove_file(w->dir, de->d_name);
        }
        closedir(d);
    }
    pthread_mutex_lock(&w->mu);
    w->first_seg = upto + 1;
    pthread_mutex_unlock(&w->mu);
    atomic_fetch_add(&db->st.checkpoints, 1);
    return HS_OK;
}
