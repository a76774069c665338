/*
 * block.h - persisted blocks of the embedded TSDB: the writer that turns a
 * sorted stream of series into a block directory, the mmap reader, the
 * compactor that merges blocks, and the pure planning and retention
 * functions that decide which blocks to merge or delete.
 *
 * A block is an immutable directory <data>/<ULID>/ holding chunks/NNNNNN
 * segment files, an index, meta.json and an optional tombstones file.
 * Chunks are opaque bytes here: their encoding belongs to chunk.c; a block
 * only stores them with their encoding byte, time range and sample count.
 * Byte layouts: docs/formats/block.md.
 *
 * Internal to the tsdb module: included only by src/tsdb/ *.c and tests.
 *
 * Threading: a writer or a compaction runs on one thread.  An open block
 * (struct tsdb__block) is immutable: every lookup may run concurrently from
 * any number of threads; tsdb__block_close must not race with them.
 * Planning and retention functions are pure.
 */
#ifndef HS_TSDB_BLOCK_H
#define HS_TSDB_BLOCK_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TSDB__ULID_LEN                26
#define TSDB__BLOCK_VERSION           1
#define TSDB__BLOCK_SEGMENT_MAX_BYTES (512u * 1024u * 1024u) /* default chunk segment size */
#define TSDB__BLOCK_MAX_LABELS        1024                   /* per series, checked on read */
#define TSDB__BLOCK_MAX_CHUNK_BYTES   (16u * 1024u * 1024u)  /* one chunk's data */
#define TSDB__BLOCK_META_MAX_BYTES    (4u * 1024u * 1024u)   /* meta.json ceiling */
#define TSDB__BLOCK_MAX_SOURCES       100000                 /* meta.json sources ceiling */

/*
 * One chunk of one series.  'data' is opaque (chunk.c owns the encoding).
 * Times are inclusive, in ms.  'ref' locates the chunk in a block:
 * (segment number << 32) | byte offset in that segment; 0 when not stored.
 */
struct tsdb__chunk_meta {
    int64_t mint, maxt;   /* first and last sample time, ms */
    uint32_t num_samples; /* samples in the chunk */
    uint8_t encoding;     /* chunk encoding, opaque here */
    const uint8_t *data;  /* encoded bytes; borrowed (see the function that filled it) */
    uint32_t len;         /* bytes at data */
    uint64_t ref;         /* chunk reference inside a block, 0 = none */
};

/* A time range [mint, maxt], both inclusive. */
struct tsdb__block_interval {
    int64_t mint, maxt;
};

/* Deleted data of one series of a block: samples in [mint, maxt]. */
struct tsdb__block_tombstone {
    uint64_t series_ref; /* series reference in that block */
    int64_t mint, maxt;  /* inclusive, ms */
};

/*
 * What meta.json holds.  Times follow Prometheus: a block covers
 * [min_time, max_time), max_time exclusive.  'sources' is owned by the
 * struct (hs_malloc'd) and released by tsdb__block_meta_cleanup.
 */
struct tsdb__block_meta {
    char ulid[TSDB__ULID_LEN + 1]; /* block name */
    int64_t min_time, max_time;    /* ms, [min, max) */
    uint64_t num_samples;          /* stats */
    uint64_t num_series;
    uint64_t num_chunks;
    uint64_t num_tombstones;
    int level;        /* 1 = cut from the head, +1 per compaction */
    size_t n_sources; /* ULIDs of level-1 blocks merged into this one */
    char (*sources)[TSDB__ULID_LEN + 1];
    int version;         /* TSDB__BLOCK_VERSION */
    uint64_t size_bytes; /* bytes on disk; filled by scan/open, not stored */
};

void tsdb__block_meta_cleanup(struct tsdb__block_meta *m);
/* Deep copy; 'dst' must be cleaned up by the caller.  HS_ENOMEM leaves dst zeroed. */
HS_MUST_CHECK int tsdb__block_meta_copy(struct tsdb__block_meta *dst,
                                        const struct tsdb__block_meta *src);
/* Frees an array of metas returned by tsdb__block_scan_dir. */
void tsdb__block_metas_free(struct tsdb__block_meta *m, size_t n);

/*
 * Reads and validates <block_dir>/meta.json into 'm' (cleaned by the
 * caller on HS_OK; zeroed on error).  A malformed file is HS_ECORRUPT with
 * the path in the message; a missing one HS_ENOTFOUND.
 */
HS_MUST_CHECK int tsdb__block_meta_read(const char *block_dir, struct tsdb__block_meta *m,
                                        struct hs_err *err);
/* Writes meta.json crash-safely (temp file, fsync, rename, fsync dir). */
HS_MUST_CHECK int tsdb__block_meta_write(const char *block_dir, const struct tsdb__block_meta *m,
                                         struct hs_err *err);

/* ---- ULIDs ------------------------------------------------------------- */

/*
 * New ULID for wall-clock time 't_ms': 26 Crockford base32 characters of a
 * 48-bit ms timestamp then 80 random bits (getrandom).  'out' gets 27 bytes.
 */
HS_MUST_CHECK int tsdb__block_ulid_new(int64_t t_ms, char out[TSDB__ULID_LEN + 1],
                                       struct hs_err *err);
/* True when 's' (NUL-terminated) is exactly a valid 26-character ULID. */
bool tsdb__block_ulid_valid(const char *s);
/* Millisecond timestamp encoded in a valid ULID. */
int64_t tsdb__block_ulid_time(const char *s);

/* ---- writer ------------------------------------------------------------- */

/*
 * Series source for the writer.  Each call yields the next series:
 * returns 1 and sets '*labels' and '*chunks'/'*n_chunks' (borrowed until the
 * next call; chunks sorted by mint, each with data), 0 at the end, or a
 * negative hs_code (with 'err' filled) to abort the write.  Series must come
 * in strictly increasing hs_labels_cmp order; a series with no chunk is
 * skipped.
 */
typedef int tsdb__block_series_next_fn(void *ctx, const struct hs_labels **labels,
                                       const struct tsdb__chunk_meta **chunks, size_t *n_chunks,
                                       struct hs_err *err);

struct tsdb__block_write_opts {
    uint64_t segment_max_bytes; /* chunk segment size; 0 = TSDB__BLOCK_SEGMENT_MAX_BYTES */
    bool has_range;             /* min_time/max_time given (else taken from the data) */
    int64_t min_time, max_time; /* block range, [min, max) */
    int level;                  /* 0 = 1 */
    const struct tsdb__block_meta *parents; /* their sources become ours; NULL = self */
    size_t n_parents;
    int64_t now_ms; /* time for the ULID; 0 = wall clock */
};

/*
 * Writes a new block under 'data_dir' from the series 'next' yields.
 * The block is built in <data_dir>/<ULID>.tmp, every file fsynced, the
 * directory renamed to <ULID> and 'data_dir' fsynced: after a crash there
 * is either a whole block or a .tmp leftover that tsdb__block_scan_dir
 * removes.  On HS_OK 'meta_out' (if not NULL) receives the block's meta
 * (caller cleans it up).  On error nothing is left behind and 'next' may
 * have been called any number of times.  A block with no series is
 * HS_EINVAL ("empty block").  Index entries and postings are kept in
 * memory while chunk data goes straight to disk.
 * With o->has_range every chunk must lie in [min_time, max_time)
 * (HS_EINVAL otherwise).
 * Threading: caller's thread; 'next' is called on it.
 */
HS_MUST_CHECK int tsdb__block_write(const char *data_dir, const struct tsdb__block_write_opts *o,
                                    tsdb__block_series_next_fn *next, void *ctx,
                                    struct tsdb__block_meta *meta_out, struct hs_err *err);

/*
 * Writes <block_dir>/tombstones (crash-safely) holding 't' and updates
 * num_tombstones in meta.json.  The next open of the block sees them; an
 * already open reader does not.  n = 0 removes the file.
 */
HS_MUST_CHECK int tsdb__block_tombstones_write(const char *block_dir,
                                               const struct tsdb__block_tombstone *t, size_t n,
                                               struct hs_err *err);

/* ---- reader ------------------------------------------------------------- */

struct tsdb__block;

/*
 * Opens the block in 'block_dir': reads meta.json, mmaps index and every
 * chunk segment read-only, verifies the CRC32C of every index section and
 * of the tombstones, parses the whole index and checks every chunk
 * reference lands inside its segment.  Any damage is HS_ECORRUPT with a
 * message "PATH: what at offset N" (err->pos = N); the caller logs it,
 * may quarantine the block (tsdb__block_quarantine) and keeps serving the
 * rest.  Caller closes '*out' with tsdb__block_close.
 */
HS_MUST_CHECK int tsdb__block_open(const char *block_dir, struct tsdb__block **out,
                                   struct hs_err *err);
void tsdb__block_close(struct tsdb__block *b);

/* Borrowed, valid until close. */
const struct tsdb__block_meta *tsdb__block_meta_of(const struct tsdb__block *b);
const char *tsdb__block_dir(const struct tsdb__block *b);
/* Series references run 0 .. count-1 in label order. */
size_t tsdb__block_series_count(const struct tsdb__block *b);

/*
 * All label names, sorted.  The array is allocated in 'a', the strings
 * point into the mapped index (valid until close).
 */
HS_MUST_CHECK int tsdb__block_label_names(const struct tsdb__block *b, struct hs_arena *a,
                                          const char ***names, size_t *n, struct hs_err *err);
/* Values of label 'name', sorted; none (n = 0) for an unknown name. Same ownership. */
HS_MUST_CHECK int tsdb__block_label_values(const struct tsdb__block *b, const char *name,
                                           struct hs_arena *a, const char ***values, size_t *n,
                                           struct hs_err *err);

/* A sorted list of unique series references; the array is owned (hs_free'd by cleanup). */
struct tsdb__block_postings {
    uint64_t *refs;
    size_t n;
};
void tsdb__block_postings_cleanup(struct tsdb__block_postings *p);

/* Series with name=value (sorted); empty for an unknown pair.  'out' is
 * overwritten (not freed first); caller cleans it up on HS_OK. */
HS_MUST_CHECK int tsdb__block_postings_get(const struct tsdb__block *b, const char *name,
                                           const char *value, struct tsdb__block_postings *out,
                                           struct hs_err *err);
/* Every series of the block. */
HS_MUST_CHECK int tsdb__block_postings_all(const struct tsdb__block *b,
                                           struct tsdb__block_postings *out, struct hs_err *err);

/* Predicate over one label value; returns true to accept it. */
typedef bool tsdb__block_value_pred(void *ctx, const char *value);
/*
 * Union of the postings of every value of label 'name' that 'pred'
 * accepts (so =, !=, =~, !~ plug in; a matcher that accepts the empty
 * value must also add series without the label: subtract
 * tsdb__block_postings_matching(name, accept-all) from all).
 * 'pred' is called once per distinct value, on the caller's thread.
 */
HS_MUST_CHECK int tsdb__block_postings_matching(const struct tsdb__block *b, const char *name,
                                                tsdb__block_value_pred *pred, void *ctx,
                                                struct tsdb__block_postings *out,
                                                struct hs_err *err);

/* Set operations on sorted postings; 'out' is new (caller cleans up). */
HS_MUST_CHECK int tsdb__block_postings_intersect(const struct tsdb__block_postings *a,
                                                 const struct tsdb__block_postings *b,
                                                 struct tsdb__block_postings *out);
HS_MUST_CHECK int tsdb__block_postings_union(const struct tsdb__block_postings *a,
                                             const struct tsdb__block_postings *b,
                                             struct tsdb__block_postings *out);
/* a minus b */
HS_MUST_CHECK int tsdb__block_postings_subtract(const struct tsdb__block_postings *a,
                                                const struct tsdb__block_postings *b,
                                                struct tsdb__block_postings *out);

/*
 * Labels and chunk metas of series 'ref'.  The label array and the metas
 * are allocated in 'a'; label strings point into the mapped index.  Metas
 * carry mint/maxt/num_samples/encoding/ref but data = NULL, len = 0: read
 * the bytes with tsdb__block_chunk.  Either out pointer may be NULL.
 * An unknown ref is HS_ENOTFOUND.
 */
HS_MUST_CHECK int tsdb__block_series(const struct tsdb__block *b, uint64_t ref, struct hs_arena *a,
                                     struct hs_labels *labels, struct tsdb__chunk_meta **chunks,
                                     size_t *n_chunks, struct hs_err *err);

/*
 * Fills m->data, m->len and m->encoding for chunk m->ref after checking
 * its CRC32C (HS_ECORRUPT naming the segment file and offset on mismatch).
 * data points into the mapped segment: borrowed, valid until close.
 */
HS_MUST_CHECK int tsdb__block_chunk(const struct tsdb__block *b, struct tsdb__chunk_meta *m,
                                    struct hs_err *err);

/* Tombstones loaded at open, sorted by series ref then mint.  Borrowed. */
const struct tsdb__block_tombstone *tsdb__block_tombstones(const struct tsdb__block *b, size_t *n);

/* ---- compaction ----------------------------------------------------------- */

/*
 * Rewrites the chunks of one series: called by compaction when chunks of
 * that series overlap in time (they came from overlapping blocks) or when
 * a tombstone cuts into a chunk.  'in' (sorted by mint, data loaded) and
 * 'deleted' (sorted, merged intervals whose samples must be dropped) are
 * borrowed for the call.  The callee returns non-overlapping chunks sorted
 * by mint in '*out'/'*n_out', allocated in 'a' (valid until the next
 * series); n_out = 0 drops the series.  Samples with equal timestamps in
 * several inputs are the callee's to deduplicate.  A negative hs_code
 * aborts the compaction.
 */
typedef int tsdb__block_merge_fn(void *ctx, const struct tsdb__chunk_meta *in, size_t n_in,
                                 const struct tsdb__block_interval *deleted, size_t n_deleted,
                                 struct hs_arena *a, struct tsdb__chunk_meta **out, size_t *n_out,
                                 struct hs_err *err);

/*
 * Merges 'n' open blocks into one new block under 'data_dir' (the inputs
 * are left alone; the caller deletes them with tsdb__block_delete after
 * switching over).  Series are the union, sorted by labels; chunks that
 * neither overlap nor touch a tombstone are copied byte for byte; chunks
 * wholly inside a tombstone are dropped; the rest go through 'merge'
 * (HS_EINVAL when it is needed and NULL).  The result has level
 * max(levels) + 1 and the union of the sources.  'o' may be NULL; its
 * parents/level fields are ignored.  'meta_out' as for tsdb__block_write.
 */
HS_MUST_CHECK int tsdb__block_compact(const char *data_dir, struct tsdb__block *const *blocks,
                                      size_t n, tsdb__block_merge_fn *merge, void *ctx,
                                      const struct tsdb__block_write_opts *o,
                                      struct tsdb__block_meta *meta_out, struct hs_err *err);

/*
 * Compaction ranges: base, base*3, base*9, ... while <= max(retention/10,
 * base) (retention_ms = 0: up to 'max' entries).  Returns the count
 * written to out[0..cap).
 */
size_t tsdb__block_ranges(int64_t base_ms, int64_t retention_ms, int64_t *out, size_t cap);

/*
 * Which blocks to compact next (pure).  'metas' in any order; writes the
 * chosen indices into 'out_idx' (room for n) sorted by min_time and
 * returns how many (0 = nothing to do).  In order of preference:
 *  1. the first run of blocks overlapping in time (vertical compaction);
 *  2. leaving the newest block out, for each range r in ranges[1..]: blocks
 *     falling inside one r-aligned window, at least two of them, when the
 *     window is complete (the blocks span all of it) or newer blocks exist
 *     beyond it;
 *  3. a single block whose tombstones cover more than 5% of its series.
 */
size_t tsdb__block_plan(const struct tsdb__block_meta *metas, size_t n, const int64_t *ranges,
                        size_t n_ranges, size_t *out_idx);

/*
 * Which blocks retention deletes (pure).  Sets del[i] for metas[i]:
 *  - by time: max_time <= newest max_time - retention_ms (retention_ms > 0);
 *  - by size: walking from newest to oldest and adding size_bytes to
 *    'other_bytes' (head, WAL), every block from the one that makes the sum
 *    exceed retention_bytes onwards (retention_bytes > 0).
 * Returns the number of blocks marked.
 */
size_t tsdb__block_retention(const struct tsdb__block_meta *metas, size_t n, int64_t retention_ms,
                             uint64_t retention_bytes, uint64_t other_bytes, bool *del);

/* ---- data directory --------------------------------------------------------- */

/*
 * Lists the blocks of 'data_dir': every <ULID> directory whose meta.json
 * reads back, sorted by min_time, with size_bytes filled.  Leftovers of
 * interrupted work (<ULID>.tmp, <ULID>.deleted) are removed; a block whose
 * meta.json is damaged is quarantined (renamed <ULID>.corrupt) with a
 * warning logged.  '*n_quarantined' (may be NULL) counts those.
 * Caller frees '*metas' with tsdb__block_metas_free.
 */
HS_MUST_CHECK int tsdb__block_scan_dir(const char *data_dir, struct tsdb__block_meta **metas,
                                       size_t *n, size_t *n_quarantined, struct hs_err *err);

/* Deletes <data_dir>/<ulid> crash-safely: rename to <ulid>.deleted, fsync, remove. */
HS_MUST_CHECK int tsdb__block_delete(const char *data_dir, const char *ulid, struct hs_err *err);

/* Renames <data_dir>/<ulid> to <ulid>.corrupt (kept for inspection, ignored by scans). */
HS_MUST_CHECK int tsdb__block_quarantine(const char *data_dir, const char *ulid,
                                         struct hs_err *err);

/*
 * Opens block <data_dir>/<ulid>; when it is damaged (HS_ECORRUPT) it is
 * quarantined and HS_ECORRUPT returned with the damage in 'err' (the caller
 * logs it and serves the other blocks).  Other errors leave it in place.
 */
HS_MUST_CHECK int tsdb__block_open_or_quarantine(const char *data_dir, const char *ulid,
                                                 struct tsdb__block **out, struct hs_err *err);

/* ---- helpers shared by the block files ------------------------------------- */

size_t tsdb__block_put_uvarint(uint8_t *p, uint64_t v); /* p needs 10 bytes */
size_t tsdb__block_put_varint(uint8_t *p, int64_t v);   /* zigzag */
/* Reads a varint at p[*off..end); HS_OK and advances *off, or HS_ECORRUPT. */
int tsdb__block_get_uvarint(const uint8_t *p, size_t end, size_t *off, uint64_t *v);
int tsdb__block_get_varint(const uint8_t *p, size_t end, size_t *off, int64_t *v);
void tsdb__block_put_be32(uint8_t *p, uint32_t v);
uint32_t tsdb__block_get_be32(const uint8_t *p);
void tsdb__block_put_be64(uint8_t *p, uint64_t v);
uint64_t tsdb__block_get_be64(const uint8_t *p);
/* rm -r of a path (file or directory); HS_OK when it does not exist. */
HS_MUST_CHECK int tsdb__block_remove_all(const char *path, struct hs_err *err);
/* Total bytes of the regular files under 'path'. */
uint64_t tsdb__block_dir_size(const char *path);

#endif
