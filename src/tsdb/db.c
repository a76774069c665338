/*
 * db.c - the store's lifecycle: open (lock, replay), close, options,
 * stats, housekeeping (retention, series garbage collection, checkpoints)
 * and deletion by matchers.
 *
 * The data directory holds "lock" (flock'd for as long as the store is
 * open, with the owner's pid inside), "wal/" (wal.c) and persisted blocks
 * "<ULID>/" (block*.c), which are opened here and read by the querier.
 * Retention deletes whole blocks by time and by size.  A background
 * thread exists only under TSDB_FSYNC_INTERVAL: it fsyncs the WAL every
 * interval when something was written since the last fsync.
 */
#include "tsdb/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

void tsdb_options_defaults(struct tsdb_options *o)
{
    memset(o, 0, sizeof(*o));
    o->retention_ms = 15LL * 24 * 3600 * 1000;
    o->wal_fsync = TSDB_FSYNC_INTERVAL;
    o->wal_fsync_interval_ms = 1000;
    o->wal_segment_bytes = 128u << 20;
    o->block_duration_ms = 2LL * 3600 * 1000;
    o->checkpoint_segments = 3;
    o->maintain_interval_ms = 60000;
}

static int check_options(const struct tsdb_options *o, struct hs_err *err)
{
    if (o->wal_fsync < TSDB_FSYNC_BATCH || o->wal_fsync > TSDB_FSYNC_NONE)
        return hs_err_set(err, HS_EINVAL, "unknown WAL fsync policy %d", o->wal_fsync);
    if (o->wal_fsync == TSDB_FSYNC_INTERVAL && o->wal_fsync_interval_ms <= 0)
        return hs_err_set(err, HS_EINVAL, "WAL fsync interval must be positive");
    if (o->wal_segment_bytes < 4096)
        return hs_err_set(err, HS_EINVAL, "WAL segment size must be at least 4096 bytes");
    if (o->block_duration_ms <= 0)
        return hs_err_set(err, HS_EINVAL, "block duration must be positive");
    if (o->maintain_interval_ms < 0)
        return hs_err_set(err, HS_EINVAL, "maintenance interval must be >= 0");
    if (o->retention_ms < 0 || o->ooo_window_ms < 0)
        return hs_err_set(err, HS_EINVAL, "retention and out-of-order window must be >= 0");
    return HS_OK;
}

static int lock_dir(struct tsdb *db, struct hs_err *err)
{
    size_t len = strlen(db->dir) + 8;
    char *p = hs_malloc(len);
    if (p == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    snprintf(p, len, "%s/lock", db->dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int e = errno;
    hs_free(p);
    if (fd < 0)
        return hs_err_set(err, HS_EIO, "open lock file in %s: %s", db->dir, strerror(e));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        char pid[32] = "";
        ssize_t k = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[k > 0 ? k : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return hs_err_set(err, HS_EAGAIN,
                              "data directory %s is locked by another holoscope (pid %s)", db->dir,
                              pid[0] ? pid : "unknown");
        return hs_err_set(err, HS_EIO, "lock %s: %s", db->dir, strerror(e));
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        hs_log(HS_LOG_WARN, "cannot write pid to lock file", HS_LSTR("dir", db->dir));
    db->lock_fd = fd;
    return HS_OK;
}

/* Opens every block of the data directory; a damaged one is quarantined
 * and logged, the rest are served. */
static int open_blocks(struct tsdb *db, struct hs_err *err)
{
    struct tsdb__block_meta *metas = NULL;
    size_t n = 0, nq = 0;
    int rc = tsdb__block_scan_dir(db->dir, &metas, &n, &nq, err);
    if (rc != HS_OK)
        return rc;
    atomic_fetch_add(&db->st.blocks_quarantined, nq);
    db->blocks = hs_calloc(n ? n : 1, sizeof(*db->blocks));
    if (db->blocks == NULL) {
        tsdb__block_metas_free(metas, n);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        struct hs_err e2;
        struct tsdb__block *b;
        int brc = tsdb__block_open_or_quarantine(db->dir, metas[i].ulid, &b, &e2);
        if (brc == HS_OK) {
            db->blocks[db->nblocks++] = b;
            continue;
        }
        if (brc == HS_ECORRUPT)
            atomic_fetch_add(&db->st.blocks_quarantined, 1);
        hs_log(HS_LOG_ERROR, "block not loaded", HS_LSTR("block", metas[i].ulid),
               HS_LSTR("error", e2.msg));
    }
    tsdb__block_metas_free(metas, n);
    return HS_OK;
}

static void close_blocks(struct tsdb *db)
{
    for (size_t i = 0; i < db->nblocks; i++)
        tsdb__block_close(db->blocks[i]);
    hs_free(db->blocks);
    db->blocks = NULL;
    db->nblocks = 0;
}

/* Deletes the blocks retention no longer keeps (by time and by size). */
static int block_retention(struct tsdb *db, struct hs_err *err)
{
    pthread_rwlock_wrlock(&db->blocks_lock);
    size_t n = db->nblocks;
    struct tsdb__block_meta *metas = hs_calloc(n + 1, sizeof(*metas));
    bool *del = hs_calloc(n + 1, sizeof(*del));
    int rc = HS_OK;
    if (metas == NULL || del == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        metas[i] = *tsdb__block_meta_of(db->blocks[i]); /* shallow: read only */
    /* The head takes part as the newest "block" so that time is measured
     * from the newest sample anywhere; it is never marked itself. */
    size_t nm = n;
    int64_t hmax = atomic_load(&db->head.max_t);
    if (hmax != INT64_MIN && hmax < INT64_MAX) {
        metas[nm].min_time = HS_MIN(atomic_load(&db->head.min_t), hmax);
        metas[nm].max_time = hmax + 1;
        nm++;
    }
    size_t k = tsdb__block_retention(metas, nm, db->opt.retention_ms, db->opt.retention_bytes,
                                     tsdb__wal_size(db, NULL), del);
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        struct tsdb__block *b = db->blocks[i];
        if (k == 0 || !del[i]) {
            db->blocks[keep++] = b;
            continue;
        }
        char ulid[TSDB__ULID_LEN + 1];
        memcpy(ulid, tsdb__block_meta_of(b)->ulid, sizeof(ulid));
        tsdb__block_close(b);
        struct hs_err e2;
        if (tsdb__block_delete(db->dir, ulid, &e2) != HS_OK)
            hs_log(HS_LOG_ERROR, "block deletion failed", HS_LSTR("block", ulid),
                   HS_LSTR("error", e2.msg));
        else
            hs_log(HS_LOG_INFO, "block deleted by retention", HS_LSTR("block", ulid));
        atomic_fetch_add(&db->st.blocks_deleted, 1);
    }
    db->nblocks = keep;
out:
    pthread_rwlock_unlock(&db->blocks_lock);
    hs_free(metas);
    hs_free(del);
    return rc;
}

/* Milliseconds to the next job of the background thread. */
static int64_t bg_wait_ms(const struct tsdb *db)
{
    int64_t ms = INT64_MAX;
    if (db->opt.wal_fsync == TSDB_FSYNC_INTERVAL)
        ms = db->opt.wal_fsync_interval_ms;
    if (db->opt.maintain_interval_ms > 0)
        ms = HS_MIN(ms, db->opt.maintain_interval_ms);
    return ms;
}

static void *bg_main(void *arg)
{
    struct tsdb *db = arg;
    int64_t wait = bg_wait_ms(db), next_maintain = hs_mono_ns() / 1000000;
    if (db->opt.maintain_interval_ms > 0)
        next_maintain += db->opt.maintain_interval_ms;
    pthread_mutex_lock(&db->bg_mu);
    while (!db->bg_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + wait % 1000 * 1000000;
        ts.tv_sec += (time_t)(wait / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&db->bg_cond, &db->bg_mu, &ts);
        if (db->bg_stop)
            break;
        pthread_mutex_unlock(&db->bg_mu);
        struct hs_err err;
        if (db->opt.wal_fsync == TSDB_FSYNC_INTERVAL) {
            pthread_mutex_lock(&db->wal.mu);
            uint64_t mark = db->wal.written;
            pthread_mutex_unlock(&db->wal.mu);
            if (mark > atomic_load(&db->wal.synced) && tsdb__wal_sync(db, mark, &err) != HS_OK)
                hs_log(HS_LOG_ERROR, "WAL fsync failed", HS_LSTR("error", err.msg));
        }
        int64_t now = hs_mono_ns() / 1000000;
        if (db->opt.maintain_interval_ms > 0 && now >= next_maintain) {
            if (tsdb_maintain(db, false, &err) != HS_OK)
                hs_log(HS_LOG_ERROR, "tsdb housekeeping failed", HS_LSTR("error", err.msg));
            next_maintain = now + db->opt.maintain_interval_ms;
        }
        pthread_mutex_lock(&db->bg_mu);
    }
    pthread_mutex_unlock(&db->bg_mu);
    return NULL;
}

static int start_bg(struct tsdb *db, struct hs_err *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->bg_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&db->bg_mu, NULL);
    if (bg_wait_ms(db) == INT64_MAX)
        return HS_OK;
    if (pthread_create(&db->bg, NULL, bg_main, db) != 0)
        return hs_err_set(err, HS_ENOMEM, "cannot start the tsdb background thread");
    db->has_bg = true;
    return HS_OK;
}

/* After replay: the head keeps nothing below the end of the newest block
 * (a crash between cutting a block and the checkpoint replays it). */
static void apply_floor(struct tsdb *db)
{
    int64_t floor = INT64_MIN;
    for (size_t i = 0; i < db->nblocks; i++)
        floor = HS_MAX(floor, tsdb__block_meta_of(db->blocks[i])->max_time);
    atomic_store(&db->head_floor, floor);
    if (floor == INT64_MIN)
        return;
    struct tsdb__head *h = &db->head;
    for (size_t r = 0; r < h->cap_ref; r++)
        if (h->by_ref[r] != NULL && h->by_ref[r]->mint < floor)
            tsdb__series_truncate(db, h->by_ref[r], floor);
    tsdb__head_gc(db, NULL, 0);
}

struct tsdb *tsdb_open(const char *dir, const struct tsdb_options *o, struct hs_err *err)
{
    struct tsdb_options def;
    if (o == NULL) {
        tsdb_options_defaults(&def);
        o = &def;
    }
    if (dir == NULL || dir[0] == '\0') {
        hs_err_set(err, HS_EINVAL, "no data directory");
        return NULL;
    }
    if (check_options(o, err) != HS_OK)
        return NULL;
    struct tsdb *db = hs_calloc(1, sizeof(*db));
    if (db == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    db->opt = *o;
    db->lock_fd = -1;
    db->wal.fd = -1;
    db->dir = hs_strdup(dir);
    if (db->dir == NULL) {
        hs_free(db);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    bool head_ok = false, wal_ok = false;
    pthread_rwlock_init(&db->blocks_lock, NULL);
    pthread_mutex_init(&db->maint_mu, NULL);
    atomic_store(&db->head_floor, INT64_MIN);
    if (hs_mkdir_p(dir, err) != HS_OK || lock_dir(db, err) != HS_OK)
        goto fail;
    if (tsdb__head_init(&db->head) != HS_OK) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        goto fail;
    }
    head_ok = true;
    wal_ok = true;
    if (tsdb__wal_open(db, err) != HS_OK)
        goto fail;
    db->replaying = true;
    if (tsdb__wal_replay(db, err) != HS_OK)
        goto fail;
    db->replaying = false;
    if (open_blocks(db, err) != HS_OK)
        goto fail;
    apply_floor(db);
    if (start_bg(db, err) != HS_OK)
        goto fail;
    hs_log(HS_LOG_INFO, "tsdb opened", HS_LSTR("dir", dir), HS_LINT("series", db->head.nseries),
           HS_LINT("replayed_samples", db->st.replay_samples),
           HS_LF64("replay_seconds", (double)db->st.replay_ns / 1e9));
    return db;
fail:
    close_blocks(db);
    pthread_rwlock_destroy(&db->blocks_lock);
    pthread_mutex_destroy(&db->maint_mu);
    if (wal_ok)
        tsdb__wal_close(db);
    if (head_ok)
        tsdb__head_cleanup(db);
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    hs_free(db->dir);
    hs_free(db);
    return NULL;
}

void tsdb_close(struct tsdb *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&db->bg_mu);
    db->bg_stop = true;
    pthread_cond_broadcast(&db->bg_cond);
    pthread_mutex_unlock(&db->bg_mu);
    if (db->has_bg)
        pthread_join(db->bg, NULL);
    pthread_cond_destroy(&db->bg_cond);
    pthread_mutex_destroy(&db->bg_mu);
    tsdb__wal_close(db);
    tsdb__head_cleanup(db);
    close_blocks(db);
    pthread_rwlock_destroy(&db->blocks_lock);
    pthread_mutex_destroy(&db->maint_mu);
    if (db->lock_fd >= 0)
        close(db->lock_fd); /* releases the flock */
    hs_free(db->dir);
    hs_free(db);
}

void tsdb_get_stats(struct tsdb *db, struct tsdb_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->samples_appended = atomic_load(&db->st.samples_appended);
    pthread_rwlock_rdlock(&db->head.lock);
    out->head_series = db->head.nseries;
    pthread_rwlock_unlock(&db->head.lock);
    out->head_series_created = atomic_load(&db->st.series_created);
    out->head_series_removed = atomic_load(&db->st.series_removed);
    out->head_chunks = atomic_load(&db->st.chunks);
    out->rejected_out_of_order = atomic_load(&db->st.ooo);
    out->rejected_duplicate = atomic_load(&db->st.dup);
    out->rejected_too_old = atomic_load(&db->st.too_old);
    out->rejected_limit = atomic_load(&db->st.limit);
    out->duplicates_ignored = atomic_load(&db->st.dup_ignored);
    out->ooo_samples_appended = atomic_load(&db->st.ooo_appended);
    out->wal_fsyncs = atomic_load(&db->st.fsyncs);
    out->wal_fsync_ns_total = atomic_load(&db->st.fsync_ns);
    out->wal_fsync_failures = atomic_load(&db->st.fsync_fail);
    out->wal_corruptions = atomic_load(&db->st.corruptions);
    out->wal_checkpoints = atomic_load(&db->st.checkpoints);
    out->wal_bytes = tsdb__wal_size(db, &out->wal_segments);
    out->wal_replay_samples = db->st.replay_samples;
    out->wal_replay_ns = db->st.replay_ns;
    pthread_rwlock_rdlock(&db->blocks_lock);
    out->blocks_loaded = db->nblocks;
    pthread_rwlock_unlock(&db->blocks_lock);
    out->blocks_quarantined = atomic_load(&db->st.blocks_quarantined);
    out->blocks_deleted = atomic_load(&db->st.blocks_deleted);
    out->blocks_cut = atomic_load(&db->st.blocks_cut);
    out->blocks_compacted = atomic_load(&db->st.blocks_compacted);
    out->head_cuts_failed = atomic_load(&db->st.cuts_failed);
    out->head_cut_ns = atomic_load(&db->st.cut_ns);
    out->compactions_failed = atomic_load(&db->st.compactions_failed);
    out->compaction_ns = atomic_load(&db->st.compaction_ns);
    out->head_min_t_ms = atomic_load(&db->head.min_t);
    out->head_max_t_ms = atomic_load(&db->head.max_t);
}

static int maintain_locked(struct tsdb *db, bool force_checkpoint, struct hs_err *err)
{
    struct tsdb__head *h = &db->head;
    int rc = tsdb__head_cut(db, err);
    if (rc == HS_OK)
        rc = tsdb__blocks_compact(db, err);
    if (rc != HS_OK)
        return rc;
    int64_t max = atomic_load(&h->max_t);
    if (db->opt.retention_ms > 0 && max != INT64_MIN && max > INT64_MIN + db->opt.retention_ms) {
        int64_t horizon = max - db->opt.retention_ms;
        pthread_rwlock_rdlock(&h->lock);
        for (size_t r = 0; r < h->cap_ref; r++) {
            struct tsdb__series *s = h->by_ref[r];
            if (s == NULL)
                continue;
            pthread_mutex_t *mu = tsdb__stripe(h, s->ref);
            pthread_mutex_lock(mu);
            if (s->mint < horizon)
                tsdb__series_truncate(db, s, horizon);
            pthread_mutex_unlock(mu);
        }
        pthread_rwlock_unlock(&h->lock);
    }
    tsdb__head_gc(db, NULL, 0);
    rc = block_retention(db, err);
    if (rc != HS_OK)
        return rc;
    return tsdb__wal_checkpoint(db, force_checkpoint, err);
}

int tsdb_maintain(struct tsdb *db, bool force_checkpoint, struct hs_err *err)
{
    pthread_mutex_lock(&db->maint_mu);
    int rc = maintain_locked(db, force_checkpoint, err);
    pthread_mutex_unlock(&db->maint_mu);
    return rc;
}

static int cmp_tomb(const void *a, const void *b)
{
    const struct tsdb__block_tombstone *x = a, *y = b;
    if (x->series_ref != y->series_ref)
        return x->series_ref < y->series_ref ? -1 : 1;
    return x->mint < y->mint ? -1 : x->mint > y->mint;
}

/* Adds tombstones for the matching series of one block and reopens it so
 * that queries see them (blocks_lock held for writing). */
static int delete_in_block(struct tsdb *db, size_t bi, const struct tsdb_matcher *ms, size_t n,
                           int64_t mint, int64_t maxt, size_t *touched, struct hs_err *err)
{
    struct tsdb__block *b = db->blocks[bi];
    struct tsdb__block_postings p;
    int rc = tsdb__block_match(b, ms, n, &p, err);
    if (rc != HS_OK || p.n == 0) {
        if (rc == HS_OK)
            tsdb__block_postings_cleanup(&p);
        return rc;
    }
    size_t ne;
    const struct tsdb__block_tombstone *old = tsdb__block_tombstones(b, &ne);
    struct tsdb__block_tombstone *t = hs_calloc(ne + p.n, sizeof(*t));
    size_t dlen = strlen(tsdb__block_dir(b)) + 1;
    char *dir = hs_malloc(dlen);
    if (t == NULL || dir == NULL) {
        hs_free(t);
        hs_free(dir);
        tsdb__block_postings_cleanup(&p);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    memcpy(dir, tsdb__block_dir(b), dlen);
    if (ne > 0)
        memcpy(t, old, ne * sizeof(*t));
    for (size_t i = 0; i < p.n; i++)
        t[ne + i] = (struct tsdb__block_tombstone){p.refs[i], mint, maxt};
    qsort(t, ne + p.n, sizeof(*t), cmp_tomb);
    rc = tsdb__block_tombstones_write(dir, t, ne + p.n, err);
    if (rc == HS_OK) {
        *touched += p.n;
        struct tsdb__block *nb;
        tsdb__block_close(b);
        if (tsdb__block_open(dir, &nb, err) == HS_OK) {
            db->blocks[bi] = nb;
        } else {
            hs_log(HS_LOG_ERROR, "block unreadable after deletion", HS_LSTR("block", dir),
                   HS_LSTR("error", err ? err->msg : ""));
            memmove(db->blocks + bi, db->blocks + bi + 1,
                    (db->nblocks - bi - 1) * sizeof(*db->blocks));
            db->nblocks--;
            rc = HS_EIO;
        }
    }
    hs_free(t);
    hs_free(dir);
    tsdb__block_postings_cleanup(&p);
    return rc;
}

static int delete_in_blocks(struct tsdb *db, const struct tsdb_matcher *ms, size_t n, int64_t mint,
                            int64_t maxt, size_t *touched, struct hs_err *err)
{
    int rc = HS_OK;
    pthread_rwlock_wrlock(&db->blocks_lock);
    for (size_t bi = 0; rc == HS_OK && bi < db->nblocks; bi++) {
        const struct tsdb__block_meta *m = tsdb__block_meta_of(db->blocks[bi]);
        if (m->max_time <= mint || m->min_time > maxt)
            continue;
        rc = delete_in_block(db, bi, ms, n, mint, maxt, touched, err);
    }
    pthread_rwlock_unlock(&db->blocks_lock);
    return rc;
}

int tsdb_delete_series(struct tsdb *db, const struct tsdb_matcher *ms, size_t n, int64_t mint_ms,
                       int64_t maxt_ms, size_t *deleted, struct hs_err *err)
{
    if (deleted != NULL)
        *deleted = 0;
    if (n == 0)
        return hs_err_set(err, HS_EINVAL, "delete needs at least one matcher");
    int rc = tsdb__matchers_check(ms, n, err);
    if (rc != HS_OK)
        return rc;
    if (mint_ms > maxt_ms)
        return HS_OK;
    struct tsdb__head *h = &db->head;
    struct tsdb__wal *w = &db->wal;
    uint32_t *refs = NULL;
    size_t nrefs = 0, touched = 0;
    uint64_t mark = 0;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    /* Commit lock first: the tombstone takes its place in WAL order. */
    pthread_mutex_lock(&w->mu);
    pthread_rwlock_rdlock(&h->lock);
    rc = tsdb__head_select_refs(h, ms, n, &refs, &nrefs, err);
    uint8_t tmp[32];
    rc = rc ? rc : hs_buf_append(&b, tmp, TSDB__REC_HEADER);
    for (size_t i = 0; rc == HS_OK && i < nrefs; i++) {
        struct tsdb__series *s = tsdb__head_by_ref(h, refs[i]);
        pthread_mutex_t *mu = tsdb__stripe(h, s->ref);
        pthread_mutex_lock(mu);
        bool hit = s->maxt != INT64_MIN && s->maxt >= mint_ms && s->mint <= maxt_ms;
        if (hit) {
            size_t k = tsdb__put_uvarint(tmp, s->ref);
            k += tsdb__put_uvarint(tmp + k, tsdb__zigzag(mint_ms));
            k += tsdb__put_uvarint(tmp + k, tsdb__zigzag(maxt_ms));
            rc = hs_buf_append(&b, tmp, k);
            if (rc == HS_OK)
                rc = tsdb__series_delete_range(db, s, mint_ms, maxt_ms);
            if (rc == HS_OK)
                refs[touched++] = s->ref;
        }
        pthread_mutex_unlock(mu);
    }
    pthread_rwlock_unlock(&h->lock);
    if (rc == HS_OK && touched > 0) {
        /* Frame: type, length, crc over "count" + entries. */
        struct hs_buf rec;
        hs_buf_init(&rec, 0);
        size_t k = tsdb__put_uvarint(tmp, touched);
        if (hs_buf_append(&rec, tmp, k) != HS_OK ||
            hs_buf_append(&rec, b.p + TSDB__REC_HEADER, b.len - TSDB__REC_HEADER) != HS_OK)
            rc = HS_ENOMEM;
        hs_buf_reset(&b);
        if (rc == HS_OK)
            rc = tsdb__wal_frame(&b, TSDB__REC_TOMBSTONES, rec.p, rec.len);
        hs_buf_cleanup(&rec);
        if (rc == HS_OK)
            rc = tsdb__wal_write(db, b.p, b.len, &mark, err);
        else
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    } else if (rc != HS_OK && rc != HS_ENOMEM) {
        /* err already set */
    } else if (rc == HS_ENOMEM) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&w->mu);
    hs_buf_cleanup(&b);
    if (rc == HS_OK && mark > 0)
        rc = tsdb__wal_sync(db, mark, err);
    if (rc == HS_OK && touched > 0)
        tsdb__head_gc(db, refs, touched);
    hs_free(refs);
    if (rc == HS_OK) {
        /* Not while a compaction reads the blocks it would replace. */
        pthread_mutex_lock(&db->maint_mu);
        rc = delete_in_blocks(db, ms, n, mint_ms, maxt_ms, &touched, err);
        pthread_mutex_unlock(&db->maint_mu);
    }
    if (rc == HS_OK && deleted != NULL)
        *deleted = touched;
    return rc;
}
