/*
 * internal.h - shared by the tsdb module's own files (chunk.c, matcher.c,
 * index.c, head.c, wal.c, querier.c, db.c); nobody else includes it.
 *
 * Locking (see head.c for the full story):
 *   db->head.lock   rwlock: read to look series up (by ref, by labels) and
 *                   to walk the index; write to add or remove series.
 *   stripe lock     mutex per series (db->head.stripes[ref % N]): guards a
 *                   series' samples (chunks, open chunk, out-of-order buffer).
 *   db->wal.mu      the commit lock: a commit applies its samples to the head
 *                   and writes its WAL records under it, so WAL order is head
 *                   order.  fsync happens outside it.
 * Order: wal.mu -> head.lock -> stripe.  Never the other way.
 */
#ifndef HS_TSDB_INTERNAL_H
#define HS_TSDB_INTERNAL_H

#include "tsdb/tsdb.h"

#include "tsdb/block.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- chunk encoder (chunk.c) ---------------------------------------------- */

struct tsdb__chunk_enc {
    uint8_t *buf;    /* bit stream, owned (hs_malloc) */
    uint32_t cap;    /* bytes allocated */
    uint32_t nbits;  /* bits written */
    uint16_t n;      /* samples */
    uint8_t leading; /* XOR window of the last value */
    uint8_t trailing;
    int64_t t;     /* last timestamp */
    int64_t delta; /* last delta */
    uint64_t v;    /* last value bits */
};

/* Appends a sample; t must be > the last one (HS_EINVAL otherwise).
 * HS_ENOMEM leaves the chunk as it was. */
int tsdb__chunk_append(struct tsdb__chunk_enc *e, int64_t t, uint64_t v);
/* Bytes of the chunk so far (the stream rounded up to whole bytes). */
static inline size_t tsdb__chunk_len(const struct tsdb__chunk_enc *e)
{
    return (e->nbits + 7) / 8;
}
/* Frees the buffer and zeroes the encoder. */
void tsdb__chunk_enc_cleanup(struct tsdb__chunk_enc *e);
/* Shrinks the buffer to its length and hands it over: caller owns *out. */
uint8_t *tsdb__chunk_enc_detach(struct tsdb__chunk_enc *e, size_t *len);

static inline uint64_t tsdb__f2u(double d)
{
    uint64_t u;
    __builtin_memcpy(&u, &d, 8);
    return u;
}
static inline double tsdb__u2f(uint64_t u)
{
    double d;
    __builtin_memcpy(&d, &u, 8);
    return d;
}

/* ---- varints (wal.c, shared) ----------------------------------------------- */

size_t tsdb__put_uvarint(uint8_t *p, uint64_t x);
static inline uint64_t tsdb__zigzag(int64_t x)
{
    return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
}
static inline int64_t tsdb__unzigzag(uint64_t x)
{
    return (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
}
/* Reads a varint from [*p, end); false when truncated or longer than 10 bytes. */
bool tsdb__get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* ---- symbols and index (index.c) ------------------------------------------ */

/* An interned string: one copy per distinct string in the head. */
struct tsdb__sym {
    uint32_t refs; /* label slots pointing here */
    uint32_t len;
    uint64_t hash;
    char s[]; /* NUL-terminated */
};

/* The symbol whose text is 's' (a string of a head series' label set). */
static inline struct tsdb__sym *tsdb__sym_of(const char *s)
{
    return (struct tsdb__sym *)(void *)(s - offsetof(struct tsdb__sym, s));
}

struct tsdb__symtab {
    struct tsdb__sym **slots; /* open addressing, NULL = empty, TOMB = deleted */
    size_t cap, n, used;      /* slots, live, live + tombstones */
};

struct tsdb__postings {
    uint32_t *refs; /* sorted ascending */
    uint32_t n, cap;
};

/* value -> postings for one label name */
struct tsdb__lvalue {
    struct tsdb__sym *value;
    struct tsdb__postings p;
};
struct tsdb__lname {
    struct tsdb__sym *name;
    struct tsdb__lvalue *vals; /* open addressing by value pointer; value NULL = empty */
    size_t cap, n;
    uint64_t value_bytes; /* sum of value lengths (status) */
    uint64_t nseries;     /* series having this name */
};

struct tsdb__index {
    struct tsdb__lname **names; /* open addressing by name pointer */
    size_t cap, n;
};

struct tsdb__series;

struct tsdb__sym *tsdb__sym_intern(struct tsdb__symtab *t, const char *s, size_t len);
void tsdb__sym_release(struct tsdb__symtab *t, struct tsdb__sym *s);
/* Lookup only (no reference taken); NULL when absent. */
struct tsdb__sym *tsdb__sym_find(const struct tsdb__symtab *t, const char *s, size_t len);
void tsdb__symtab_cleanup(struct tsdb__symtab *t);

int tsdb__index_add(struct tsdb__index *ix, const struct tsdb__series *s);
void tsdb__index_remove(struct tsdb__index *ix, const struct tsdb__series *s);
struct tsdb__lname *tsdb__index_name(const struct tsdb__index *ix, const struct tsdb__sym *name);
const struct tsdb__postings *tsdb__lname_postings(const struct tsdb__lname *ln,
                                                  const struct tsdb__sym *value);
void tsdb__index_cleanup(struct tsdb__index *ix);

/* ---- head (head.c) ----------------------------------------------------------- */

struct tsdb__chunk {
    int64_t mint, maxt;
    uint8_t *data; /* owned, immutable */
    uint32_t len;  /* bytes */
    uint16_t n;    /* samples */
};

struct tsdb__sample {
    int64_t t;
    uint64_t v;
};

struct tsdb__series {
    /* Hot fields first: an append touches only the first cache line or two. */
    struct tsdb__chunk_enc enc; /* open chunk (stripe lock) */
    int64_t maxt;               /* newest sample; INT64_MIN when none (stripe lock) */
    int64_t enc_end;            /* open chunk must be cut at this t (stripe lock) */
    uint64_t last_v;            /* value bits of the sample at maxt (stripe lock) */
    int64_t mint;               /* oldest sample held (stripe lock) */
    uint32_t ref;
    _Atomic uint32_t pending;   /* samples queued in open appenders: not removable */
    bool is_logged;             /* its series record is in the WAL (under wal.mu) */
    int64_t enc_mint;           /* first t of the open chunk (stripe lock) */
    struct tsdb__chunk *chunks; /* closed chunks, by time (stripe lock) */
    uint32_t nchunks, capchunks;
    struct tsdb__sample *ooo; /* out-of-order samples, sorted (stripe lock) */
    uint32_t nooo, capooo;
    uint64_t hash;                  /* hs_labels_hash of the labels */
    struct hs_labels ls;            /* strings are interned symbols */
    struct tsdb__series *next_hash; /* chain in the label hash table */
};

#define TSDB__STRIPES 4096

struct tsdb__head {
    pthread_rwlock_t lock;
    struct tsdb__series **by_ref; /* index = ref; NULL for none */
    size_t cap_ref;
    uint32_t next_ref;
    struct tsdb__series **by_hash; /* chained buckets */
    size_t cap_hash;
    size_t nseries;
    struct tsdb__symtab syms;
    struct tsdb__index index;
    pthread_mutex_t stripes[TSDB__STRIPES];
    _Atomic int64_t min_t; /* approximate bounds for stats */
    _Atomic int64_t max_t;
};

static inline pthread_mutex_t *tsdb__stripe(struct tsdb__head *h, uint32_t ref)
{
    return &h->stripes[ref % TSDB__STRIPES];
}

/* ---- WAL (wal.c) ------------------------------------------------------------ */

enum tsdb__rec_type {
    TSDB__REC_SERIES = 1,
    TSDB__REC_SAMPLES = 2,
    TSDB__REC_TOMBSTONES = 3,
    TSDB__REC_CHUNK = 4,
};
#define TSDB__REC_HEADER 9           /* type u8, length u32le, crc32c u32le */
#define TSDB__REC_MAX    (64u << 20) /* a record's payload never exceeds this */

struct tsdb__wal {
    pthread_mutex_t mu;      /* the commit lock */
    char *dir;               /* <data>/wal */
    int fd;                  /* current segment, -1 when closed */
    uint32_t seg;            /* its number */
    uint32_t first_seg;      /* oldest segment on disk */
    uint64_t seg_bytes;      /* bytes in it */
    uint64_t written;        /* bytes written since open (monotonic) */
    _Atomic uint64_t synced; /* 'written' value covered by the last fsync */
    pthread_mutex_t sync_mu; /* serialises fsync calls */
    uint64_t other_bytes;    /* older segments + checkpoint */
    struct hs_buf rec;       /* scratch for encoding records (under mu) */
};

/* ---- the store (db.c) ----------------------------------------------------------- */

struct tsdb {
    char *dir;
    struct tsdb_options opt;
    int lock_fd;
    struct tsdb__head head;
    struct tsdb__wal wal;
    bool replaying;               /* during open: no WAL writes, lenient duplicates */
    pthread_rwlock_t blocks_lock; /* read: a query uses the blocks; write: the list changes */
    struct tsdb__block **blocks;  /* persisted blocks, by min_time */
    size_t nblocks;
    _Atomic int64_t head_floor; /* data below is in blocks; the head rejects it */
    pthread_mutex_t maint_mu;   /* one tsdb_maintain at a time */
    pthread_t bg;               /* interval fsync thread */
    bool has_bg;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cond;
    bool bg_stop;
    struct {
        _Atomic uint64_t samples_appended, series_created, series_removed, chunks;
        _Atomic uint64_t ooo, dup, too_old, limit, dup_ignored, ooo_appended;
        _Atomic uint64_t fsyncs, fsync_ns, fsync_fail, corruptions, checkpoints;
        uint64_t replay_samples, replay_ns;
        _Atomic uint64_t blocks_quarantined, blocks_deleted, blocks_cut, blocks_compacted;
        _Atomic uint64_t cuts_failed, cut_ns, compactions_failed, compaction_ns;
    } st;
};

/* head.c */
int tsdb__head_init(struct tsdb__head *h);
void tsdb__head_cleanup(struct tsdb *db);
/* Looks up or creates the series (head.lock taken inside).  ref_hint != 0
 * forces that ref (WAL replay).  *created tells whether it is new. */
int tsdb__head_get_or_create(struct tsdb *db, const struct hs_labels *ls, uint32_t ref_hint,
                             bool pin, struct tsdb__series **out, bool *created,
                             struct hs_err *err);
/* Caller holds head.lock (read). */
struct tsdb__series *tsdb__head_by_ref(struct tsdb__head *h, uint64_t ref);
/* Appends one sample to a series; caller holds its stripe lock.  Returns
 * HS_OK, 1 for an ignored duplicate, or a negative code (counted unless
 * replaying). */
int tsdb__series_append(struct tsdb *db, struct tsdb__series *s, int64_t t, uint64_t v,
                        struct hs_err *err);
/* Checks appendability without changing anything (stripe lock held):
 * HS_OK (in order), 1 (ignored duplicate), 2 (out-of-order window) or a
 * negative code, counted when 'count'. */
int tsdb__series_check(struct tsdb *db, const struct tsdb__series *s, int64_t t, uint64_t v,
                       bool count, struct hs_err *err);
/* Adds a whole chunk (checkpoint replay); stripe lock held; takes 'data'. */
int tsdb__series_add_chunk(struct tsdb *db, struct tsdb__series *s, uint8_t *data, size_t len);
/* Drops samples in [mint, maxt]; stripe lock held. */
int tsdb__series_delete_range(struct tsdb *db, struct tsdb__series *s, int64_t mint, int64_t maxt);
/* Removes series with no samples left; head.lock (write) taken inside.
 * 'only' != NULL restricts to those refs. */
void tsdb__head_gc(struct tsdb *db, const uint32_t *only, size_t n_only);
void tsdb__series_free_data(struct tsdb__series *s);
/* Drops samples older than 'horizon' (retention): whole chunks only, plus
 * the out-of-order buffer.  Stripe lock held. */
void tsdb__series_truncate(struct tsdb *db, struct tsdb__series *s, int64_t horizon);
/* Folds the out-of-order buffer into the chunks (stripe lock held). */
int tsdb__series_fold_ooo(struct tsdb *db, struct tsdb__series *s);
/* Moves the open chunk to the closed ones (stripe lock held). */
int tsdb__series_close_open_chunk(struct tsdb__series *s);

/* head_cut.c: writes the oldest block_duration of the head into a block
 * when the head spans more than 1.5 of them, then drops it from the head
 * (no-op otherwise).  Called by tsdb_maintain. */
int tsdb__head_cut(struct tsdb *db, struct hs_err *err);
/* db_compact.c: merges the blocks tsdb__block_plan picks, if any (under
 * maint_mu). */
int tsdb__blocks_compact(struct tsdb *db, struct hs_err *err);

/* Series refs matching the matchers, sorted ascending (head.lock held by
 * caller, read).  *out is hs_malloc'd. */
int tsdb__head_select_refs(struct tsdb__head *h, const struct tsdb_matcher *ms, size_t n,
                           uint32_t **out, size_t *nout, struct hs_err *err);

/* wal.c */
int tsdb__wal_open(struct tsdb *db, struct hs_err *err);
void tsdb__wal_close(struct tsdb *db);
/* Writes 'len' bytes of encoded records; caller holds wal.mu.  Returns the
 * 'written' mark to pass to tsdb__wal_sync. */
int tsdb__wal_write(struct tsdb *db, const void *p, size_t len, uint64_t *mark, struct hs_err *err);
/* fsyncs unless 'mark' is already covered. */
int tsdb__wal_sync(struct tsdb *db, uint64_t mark, struct hs_err *err);
/* Appends a record framing (header + payload) to b. */
int tsdb__wal_frame(struct hs_buf *b, int type, const void *payload, size_t len);
/* Encodes a series record of one series into b (framed). */
int tsdb__wal_enc_series(struct hs_buf *b, uint32_t ref, const struct hs_labels *ls);
/* Replays the WAL into the head (called by tsdb_open). */
int tsdb__wal_replay(struct tsdb *db, struct hs_err *err);
/* Replays one segment image: used by replay and by the fuzz harness.
 * Returns bytes of valid records consumed; *corrupt tells if it stopped on
 * bad bytes, *fatal is HS_ENOMEM if it stopped for want of memory (the
 * file must then be left alone). */
size_t tsdb__wal_replay_buf(struct tsdb *db, const uint8_t *p, size_t len, bool *corrupt,
                            int *fatal);
int tsdb__wal_checkpoint(struct tsdb *db, bool force, struct hs_err *err);
uint64_t tsdb__wal_size(struct tsdb *db, uint64_t *segments);

/* querier.c helpers */
/* Series of block b matching all matchers (label checks included). */
int tsdb__block_match(const struct tsdb__block *b, const struct tsdb_matcher *ms, size_t n,
                      struct tsdb__block_postings *out, struct hs_err *err);
int tsdb__matchers_check(const struct tsdb_matcher *ms, size_t n, struct hs_err *err);

#endif
