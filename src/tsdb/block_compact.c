/*
 * block_compact.c - merging blocks, choosing what to merge, retention, and
 * the data directory's life cycle (scan, delete, quarantine).
 *
 * Compaction streams: one cursor per input block walks its series in label
 * order (refs 0..n-1 are label order), the smallest label set among the
 * cursors is the next output series, and its chunks from every block that
 * holds it are handed to tsdb__block_write.  Chunks are copied as they are
 * unless a tombstone cuts into one or chunks of a series overlap in time;
 * then the caller's merge callback (which knows the chunk encoding)
 * rewrites them.  A tombstone only deletes data of the block it belongs to.
 *
 * Planning and retention are pure functions over metas so they can be
 * tested on crafted inputs.  Deleting and quarantining rename first (one
 * atomic step), so a crash leaves either the block or a leftover that the
 * next scan removes or ignores.
 */
#include "tsdb/block.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- compaction ----------------------------------------------------------- */

struct cursor {
    struct tsdb__block *b;
    uint64_t ref;        /* current series */
    bool done, taken;    /* exhausted / consumed by the last call */
    struct hs_labels ls; /* current series, strings in b's index */
    struct tsdb__chunk_meta *cm;
    size_t n;
    struct hs_arena arena; /* ls.v and cm */
};

struct compaction {
    struct cursor *cur;
    size_t n_cur;
    tsdb__block_merge_fn *merge;
    void *merge_ctx;
    struct hs_arena arena; /* output chunks of the current series */
    struct tsdb__chunk_meta *out;
    size_t n_out, cap_out;
};

static int cursor_load(struct cursor *c, struct hs_err *err)
{
    hs_arena_reset(&c->arena);
    if (c->ref >= tsdb__block_series_count(c->b)) {
        c->done = true;
        return HS_OK;
    }
    return tsdb__block_series(c->b, c->ref, &c->arena, &c->ls, &c->cm, &c->n, err);
}

static int out_push(struct compaction *k, const struct tsdb__chunk_meta *m, struct hs_err *err)
{
    if (k->n_out == k->cap_out) {
        size_t cap = k->cap_out ? k->cap_out * 2 : 16;
        struct tsdb__chunk_meta *n = hs_arena_alloc(&k->arena, cap * sizeof(*n));
        if (n == NULL)
            return hs_err_set(err, HS_ENOMEM, "compaction: out of memory");
        if (k->n_out > 0)
            memcpy(n, k->out, k->n_out * sizeof(*n));
        k->out = n;
        k->cap_out = cap;
    }
    k->out[k->n_out++] = *m;
    return HS_OK;
}

/* Deleted intervals of series 'ref' of block 'b', sorted and merged, in 'a'. */
static int deleted_of(struct tsdb__block *b, uint64_t ref, struct hs_arena *a,
                      struct tsdb__block_interval **out, size_t *n)
{
    size_t nt, lo = 0, hi;
    const struct tsdb__block_tombstone *t = tsdb__block_tombstones(b, &nt);
    *n = 0;
    *out = NULL;
    hi = nt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid].series_ref < ref)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < nt && t[end].series_ref == ref)
        end++;
    if (end == lo)
        return HS_OK;
    struct tsdb__block_interval *v = hs_arena_alloc(a, (end - lo) * sizeof(*v));
    if (v == NULL)
        return HS_ENOMEM;
    for (size_t i = lo; i < end; i++) { /* sorted by mint already */
        if (*n > 0 && t[i].mint <= v[*n - 1].maxt + (v[*n - 1].maxt < INT64_MAX ? 1 : 0))
            v[*n - 1].maxt = HS_MAX(v[*n - 1].maxt, t[i].maxt);
        else
            v[(*n)++] = (struct tsdb__block_interval){t[i].mint, t[i].maxt};
    }
    *out = v;
    return HS_OK;
}

static int call_merge(struct compaction *k, const struct tsdb__chunk_meta *in, size_t n_in,
                      const struct tsdb__block_interval *del, size_t n_del,
                      struct tsdb__chunk_meta **out, size_t *n_out, const struct hs_labels *ls,
                      struct hs_err *err)
{
    if (k->merge == NULL) {
        struct hs_buf b;
        hs_buf_init(&b, 200);
        int rc = hs_labels_format(ls, &b);
        hs_err_set(err, HS_EINVAL, "compaction: series %s needs a chunk merge callback",
                   rc == HS_OK && b.p ? b.p : "?");
        hs_buf_cleanup(&b);
        return HS_EINVAL;
    }
    *out = NULL;
    *n_out = 0;
    int rc = k->merge(k->merge_ctx, in, n_in, del, n_del, &k->arena, out, n_out, err);
    if (rc < 0)
        return rc;
    if (*n_out > 0 && *out == NULL)
        return hs_err_set(err, HS_EINVAL, "compaction: merge callback returned no chunk array");
    return HS_OK;
}

/* Adds the chunks of cursor c's series, with its block's tombstones applied. */
static int gather(struct compaction *k, struct cursor *c, struct hs_err *err)
{
    struct tsdb__block_interval *del;
    size_t n_del;
    if (deleted_of(c->b, c->ref, &k->arena, &del, &n_del) != HS_OK)
        return hs_err_set(err, HS_ENOMEM, "compaction: out of memory");
    for (size_t i = 0; i < c->n; i++) {
        struct tsdb__chunk_meta m = c->cm[i];
        bool whole = false, part = false;
        for (size_t j = 0; j < n_del; j++) {
            if (del[j].mint <= m.mint && m.maxt <= del[j].maxt)
                whole = true;
            else if (del[j].mint <= m.maxt && m.mint <= del[j].maxt)
                part = true;
        }
        if (whole)
            continue;
        int rc = tsdb__block_chunk(c->b, &m, err);
        if (rc != HS_OK)
            return rc;
        if (!part) {
            rc = out_push(k, &m, err);
        } else {
            struct tsdb__chunk_meta *o;
            size_t no;
            rc = call_merge(k, &m, 1, del, n_del, &o, &no, &c->ls, err);
            for (size_t j = 0; rc == HS_OK && j < no; j++)
                rc = out_push(k, &o[j], err);
        }
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

static int cmp_chunk(const void *x, const void *y)
{
    const struct tsdb__chunk_meta *a = x, *b = y;
    if (a->mint != b->mint)
        return a->mint < b->mint ? -1 : 1;
    return (a->maxt > b->maxt) - (a->maxt < b->maxt);
}

static int compaction_next(void *ctx, const struct hs_labels **labels,
                           const struct tsdb__chunk_meta **chunks, size_t *n_chunks,
                           struct hs_err *err)
{
    struct compaction *k = ctx;
    for (;;) {
        for (size_t i = 0; i < k->n_cur; i++) {
            struct cursor *c = &k->cur[i];
            if (c->taken && !c->done) {
                c->ref++;
                c->taken = false;
                int rc = cursor_load(c, err);
                if (rc != HS_OK)
                    return rc;
            }
        }
        hs_arena_reset(&k->arena);
        k->out = NULL;
        k->n_out = k->cap_out = 0;
        struct cursor *min = NULL;
        for (size_t i = 0; i < k->n_cur; i++)
            if (!k->cur[i].done && (min == NULL || hs_labels_cmp(&k->cur[i].ls, &min->ls) < 0))
                min = &k->cur[i];
        if (min == NULL)
            return 0;
        for (size_t i = 0; i < k->n_cur; i++) {
            struct cursor *c = &k->cur[i];
            if (c->done || (c != min && hs_labels_cmp(&c->ls, &min->ls) != 0))
                continue;
            c->taken = true;
            int rc = gather(k, c, err);
            if (rc != HS_OK)
                return rc;
        }
        if (k->n_out > 1)
            qsort(k->out, k->n_out, sizeof(*k->out), cmp_chunk);
        bool overlap = false;
        for (size_t i = 1; i < k->n_out; i++)
            overlap |= k->out[i].mint <= k->out[i - 1].maxt;
        const struct tsdb__chunk_meta *res = k->out;
        size_t n_res = k->n_out;
        if (overlap) {
            struct tsdb__chunk_meta *o;
            int rc = call_merge(k, k->out, k->n_out, NULL, 0, &o, &n_res, &min->ls, err);
            if (rc != HS_OK)
                return rc;
            res = o;
        }
        if (n_res == 0)
            continue; /* everything deleted: the series is gone */
        *labels = &min->ls;
        *chunks = res;
        *n_chunks = n_res;
        return 1;
    }
}

int tsdb__block_compact(const char *data_dir, struct tsdb__block *const *blocks, size_t n,
                        tsdb__block_merge_fn *merge, void *ctx,
                        const struct tsdb__block_write_opts *o, struct tsdb__block_meta *meta_out,
                        struct hs_err *err)
{
    if (n == 0 || blocks == NULL)
        return hs_err_set(err, HS_EINVAL, "compaction: no blocks");
    struct compaction k = {.n_cur = n, .merge = merge, .merge_ctx = ctx};
    struct tsdb__block_write_opts wo = {0};
    if (o != NULL)
        wo = *o;
    struct tsdb__block_meta *parents = hs_calloc(n, sizeof(*parents));
    k.cur = hs_calloc(n, sizeof(*k.cur));
    int rc = HS_OK;
    if (parents == NULL || k.cur == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "compaction: out of memory");
        goto out;
    }
    hs_arena_init(&k.arena, 64 * 1024, 0);
    wo.has_range = true;
    wo.min_time = INT64_MAX;
    wo.max_time = INT64_MIN;
    wo.level = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tsdb__block_meta *m = tsdb__block_meta_of(blocks[i]);
        parents[i] = *m; /* shallow: sources stay owned by the block */
        wo.min_time = HS_MIN(wo.min_time, m->min_time);
        wo.max_time = HS_MAX(wo.max_time, m->max_time);
        wo.level = HS_MAX(wo.level, m->level + 1);
        k.cur[i].b = blocks[i];
        hs_arena_init(&k.cur[i].arena, 16 * 1024, 0);
    }
    wo.parents = parents;
    wo.n_parents = n;
    for (size_t i = 0; rc == HS_OK && i < n; i++)
        rc = cursor_load(&k.cur[i], err);
    if (rc == HS_OK)
        rc = tsdb__block_write(data_dir, &wo, compaction_next, &k, meta_out, err);
    for (size_t i = 0; i < n; i++)
        hs_arena_cleanup(&k.cur[i].arena);
    hs_arena_cleanup(&k.arena);
out:
    hs_free(k.cur);
    hs_free(parents);
    return rc;
}

/* ---- planning ----------------------------------------------------------------- */

size_t tsdb__block_ranges(int64_t base_ms, int64_t retention_ms, int64_t *out, size_t cap)
{
    if (base_ms <= 0 || cap == 0)
        return 0;
    int64_t limit = retention_ms > 0 ? HS_MAX(retention_ms / 10, base_ms) : INT64_MAX;
    size_t n = 0;
    int64_t r = base_ms;
    while (n < cap && r <= limit) {
        out[n++] = r;
        if (r > INT64_MAX / 3)
            break;
        r *= 3;
    }
    return n;
}

/* Sorts indices of metas by (min_time, max_time); insertion sort, n is small. */
static void sort_by_time(const struct tsdb__block_meta *m, size_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && (m[idx[j - 1]].min_time > m[v].min_time ||
                         (m[idx[j - 1]].min_time == m[v].min_time &&
                          m[idx[j - 1]].max_time > m[v].max_time))) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static size_t plan_overlapping(const struct tsdb__block_meta *m, const size_t *idx, size_t n,
                               size_t *out)
{
    size_t start = 0;
    int64_t maxt = n ? m[idx[0]].max_time : 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && m[idx[i]].min_time < maxt) {
            maxt = HS_MAX(maxt, m[idx[i]].max_time);
            continue;
        }
        if (i - start > 1) {
            for (size_t j = start; j < i; j++)
                out[j - start] = idx[j];
            return i - start;
        }
        if (i < n) {
            start = i;
            maxt = m[idx[i]].max_time;
        }
    }
    return 0;
}

static size_t plan_leveled(const struct tsdb__block_meta *m, const size_t *idx, size_t n,
                           const int64_t *ranges, size_t n_ranges, size_t *out)
{
    if (n < 2)
        return 0;
    int64_t newest_min = m[idx[n - 1]].min_time;
    size_t cand = n - 1; /* the newest block is left out */
    for (size_t r = 1; r < n_ranges; r++) {
        int64_t span = ranges[r];
        for (size_t i = 0; i < cand;) {
            int64_t lo = floor_div(m[idx[i]].min_time, span) * span, hi = lo + span;
            size_t j = i;
            while (j < cand && m[idx[j]].min_time >= lo && m[idx[j]].max_time <= hi)
                j++;
            if (j == i) { /* larger than the window: not part of any group here */
                i++;
                continue;
            }
            bool complete = m[idx[j - 1]].max_time - m[idx[i]].min_time == span;
            bool newer = newest_min >= hi;
            if (j - i > 1 && (complete || newer)) {
                for (size_t k = i; k < j; k++)
                    out[k - i] = idx[k];
                return j - i;
            }
            i = j;
        }
    }
    return 0;
}

size_t tsdb__block_plan(const struct tsdb__block_meta *metas, size_t n, const int64_t *ranges,
                        size_t n_ranges, size_t *out_idx)
{
    if (n == 0)
        return 0;
    size_t *idx = hs_reallocarray(NULL, n, sizeof(*idx));
    if (idx == NULL)
        return 0; /* nothing planned this round; the next round retries */
    sort_by_time(metas, idx, n);
    size_t k = plan_overlapping(metas, idx, n, out_idx);
    if (k == 0)
        k = plan_leveled(metas, idx, n, ranges, n_ranges, out_idx);
    for (size_t i = 0; k == 0 && i + 1 < n; i++) {
        const struct tsdb__block_meta *b = &metas[idx[i]];
        if (b->num_series > 0 && b->num_tombstones * 20 > b->num_series) {
            out_idx[0] = idx[i];
            k = 1;
        }
    }
    hs_free(idx);
    return k;
}

/* ---- retention ------------------------------------------------------------------ */

size_t tsdb__block_retention(const struct tsdb__block_meta *metas, size_t n, int64_t retention_ms,
                             uint64_t retention_bytes, uint64_t other_bytes, bool *del)
{
    size_t marked = 0;
    int64_t newest = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        del[i] = false;
        newest = HS_MAX(newest, metas[i].max_time);
    }
    if (retention_ms > 0) {
        for (size_t i = 0; i < n; i++) {
            if (newest - metas[i].max_time >= retention_ms) {
                del[i] = true;
                marked++;
            }
        }
    }
    if (retention_bytes == 0)
        return marked;
    /* Newest first, by max_time then min_time; quadratic selection, n is small. */
    bool *seen = hs_calloc(n ? n : 1, sizeof(*seen));
    uint64_t sum = other_bytes;
    bool over = sum > retention_bytes;
    for (size_t step = 0; step < n; step++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++) {
            if (seen != NULL && seen[i])
                continue;
            if (best == n || metas[i].max_time > metas[best].max_time ||
                (metas[i].max_time == metas[best].max_time &&
                 metas[i].min_time > metas[best].min_time))
                best = i;
        }
        if (seen == NULL) /* out of memory: keep every block rather than guess */
            break;
        seen[best] = true;
        sum += metas[best].size_bytes;
        over = over || sum > retention_bytes;
        if (over && !del[best]) {
            del[best] = true;
            marked++;
        }
    }
    hs_free(seen);
    return marked;
}

/* ---- data directory ----------------------------------------------------------------- */

static int rename_block(const char *data_dir, const char *ulid, const char *suffix, char *dst,
                        size_t dst_len, struct hs_err *err)
{
    char src[PATH_MAX];
    if (!tsdb__block_ulid_valid(ulid))
        return hs_err_set(err, HS_EINVAL, "%s: not a block name", ulid ? ulid : "(null)");
    if (snprintf(src, sizeof(src), "%s/%s", data_dir, ulid) >= (int)sizeof(src) ||
        snprintf(dst, dst_len, "%s/%s%s", data_dir, ulid, suffix) >= (int)dst_len)
        return hs_err_set(err, HS_EINVAL, "%s: path too long", data_dir);
    if (rename(src, dst) != 0)
        return hs_err_set(err, errno == ENOENT ? HS_ENOTFOUND : HS_EIO, "rename %s to %s: %s", src,
                          dst, strerror(errno));
    return hs_fsync_dir(data_dir, err);
}

int tsdb__block_delete(const char *data_dir, const char *ulid, struct hs_err *err)
{
    char dst[PATH_MAX];
    int rc = rename_block(data_dir, ulid, ".deleted", dst, sizeof(dst), err);
    if (rc == HS_OK)
        rc = tsdb__block_remove_all(dst, err);
    return rc;
}

int tsdb__block_quarantine(const char *data_dir, const char *ulid, struct hs_err *err)
{
    char dst[PATH_MAX];
    int rc = rename_block(data_dir, ulid, ".corrupt", dst, sizeof(dst), err);
    if (rc == HS_OK)
        hs_log(HS_LOG_WARN, "block quarantined", HS_LSTR("block", ulid), HS_LSTR("path", dst));
    return rc;
}

int tsdb__block_open_or_quarantine(const char *data_dir, const char *ulid, struct tsdb__block **out,
                                   struct hs_err *err)
{
    char dir[PATH_MAX];
    *out = NULL;
    if (!tsdb__block_ulid_valid(ulid))
        return hs_err_set(err, HS_EINVAL, "%s: not a block name", ulid ? ulid : "(null)");
    if (snprintf(dir, sizeof(dir), "%s/%s", data_dir, ulid) >= (int)sizeof(dir))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", data_dir);
    int rc = tsdb__block_open(dir, out, err);
    if (rc != HS_ECORRUPT)
        return rc;
    struct hs_err e2 = {0};
    if (tsdb__block_quarantine(data_dir, ulid, &e2) != HS_OK)
        hs_log(HS_LOG_ERROR, "cannot quarantine damaged block", HS_LSTR("error", e2.msg));
    return rc;
}

static bool is_leftover(const char *name)
{
    char head[TSDB__ULID_LEN + 1];
    size_t len = strlen(name);
    if (len < TSDB__ULID_LEN)
        return false;
    memcpy(head, name, TSDB__ULID_LEN);
    head[TSDB__ULID_LEN] = '\0';
    const char *tail = name + TSDB__ULID_LEN;
    return tsdb__block_ulid_valid(head) &&
           (strcmp(tail, ".tmp") == 0 || strcmp(tail, ".deleted") == 0);
}

static int cmp_meta(const void *x, const void *y)
{
    const struct tsdb__block_meta *a = x, *b = y;
    if (a->min_time != b->min_time)
        return a->min_time < b->min_time ? -1 : 1;
    return strcmp(a->ulid, b->ulid);
}

/* Reads one block's meta; a damaged one is quarantined (HS_OK, *ok false). */
static int scan_one(const char *data_dir, const char *name, struct tsdb__block_meta *m, bool *ok,
                    size_t *n_quarantined, struct hs_err *err)
{
    char dir[PATH_MAX];
    *ok = false;
    if (snprintf(dir, sizeof(dir), "%s/%s", data_dir, name) >= (int)sizeof(dir))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", data_dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return HS_OK;
    struct hs_err e2 = {0};
    int rc = tsdb__block_meta_read(dir, m, &e2);
    if (rc == HS_OK && strcmp(m->ulid, name) != 0) {
        rc = hs_err_set(&e2, HS_ECORRUPT, "%s/meta.json: ulid %s does not match", dir, m->ulid);
        tsdb__block_meta_cleanup(m);
    }
    if (rc == HS_OK) {
        m->size_bytes = tsdb__block_dir_size(dir);
        *ok = true;
        return HS_OK;
    }
    if (rc != HS_ECORRUPT && rc != HS_ENOTFOUND)
        return hs_err_set(err, rc, "%s", e2.msg);
    hs_log(HS_LOG_WARN, "damaged block", HS_LSTR("error", e2.msg));
    rc = tsdb__block_quarantine(data_dir, name, err);
    if (rc == HS_OK && n_quarantined != NULL)
        (*n_quarantined)++;
    return rc;
}

int tsdb__block_scan_dir(const char *data_dir, struct tsdb__block_meta **metas, size_t *n,
                         size_t *n_quarantined, struct hs_err *err)
{
    *metas = NULL;
    *n = 0;
    if (n_quarantined != NULL)
        *n_quarantined = 0;
    DIR *d = opendir(data_dir);
    if (d == NULL)
        return hs_err_set(err, errno == ENOENT ? HS_ENOTFOUND : HS_EIO, "opendir %s: %s", data_dir,
                          strerror(errno));
    struct tsdb__block_meta *v = NULL;
    size_t nv = 0, cap = 0;
    int rc = HS_OK;
    struct dirent *e;
    while (rc == HS_OK && (e = readdir(d)) != NULL) {
        if (is_leftover(e->d_name)) {
            char p[PATH_MAX];
            if (snprintf(p, sizeof(p), "%s/%s", data_dir, e->d_name) < (int)sizeof(p)) {
                hs_log(HS_LOG_INFO, "removing leftover block directory", HS_LSTR("path", p));
                rc = tsdb__block_remove_all(p, err);
            }
            continue;
        }
        if (!tsdb__block_ulid_valid(e->d_name))
            continue;
        if (nv == cap) {
            cap = cap ? cap * 2 : 16;
            struct tsdb__block_meta *nn = hs_reallocarray(v, cap, sizeof(*nn));
            if (nn == NULL) {
                rc = hs_err_set(err, HS_ENOMEM, "%s: out of memory", data_dir);
                break;
            }
            v = nn;
        }
        bool ok;
        rc = scan_one(data_dir, e->d_name, &v[nv], &ok, n_quarantined, err);
        if (rc == HS_OK && ok)
            nv++;
    }
    closedir(d);
    if (rc != HS_OK) {
        tsdb__block_metas_free(v, nv);
        return rc;
    }
    if (nv > 1)
        qsort(v, nv, sizeof(*v), cmp_meta);
    *metas = v;
    *n = nv;
    return HS_OK;
}
