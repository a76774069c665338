/*
 * tsdb.h - holoscope's embedded time-series store: an in-memory head of
 * Gorilla-compressed chunks with a label index, made durable by a
 * write-ahead log, read through a querier.
 *
 * Data model: a series is a label set (sorted, names unique, empty values
 * dropped: a label with an empty value is the same as no label); a sample
 * is (t_ms, float64).  Every float64 bit pattern round-trips exactly,
 * including NaN payloads and the stale marker TSDB_STALE_NAN_BITS.
 *
 * Writers append through an appender (one batch, committed or rolled back
 * as a whole); readers go through a querier, which reads the head and the
 * persisted blocks (block*.c) alike.  Housekeeping (tsdb_maintain) cuts
 * the head's oldest two hours into a block, applies retention and
 * checkpoints the WAL.  Formats: docs/formats/chunks.md,
 * docs/formats/wal.md, docs/formats/block.md.
 *
 * Threading: any thread.  struct tsdb is shared and locks itself; an
 * appender, a querier, a series set and an iterator each belong to one
 * thread at a time.  Readers see a sample only once the batch holding it
 * has been applied, never half of one sample.
 */
#ifndef HS_TSDB_H
#define HS_TSDB_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The bit pattern Prometheus uses to mark a series stale. */
#define TSDB_STALE_NAN_BITS 0x7ff0000000000002ULL

/* Encodings of a chunk's bytes (the first byte a block stores with it). */
#define TSDB_CHUNK_ENC_XOR 1
/* A chunk is cut after this many samples (or at a block_duration boundary). */
#define TSDB_CHUNK_MAX_SAMPLES 120

enum tsdb_fsync_policy {
    TSDB_FSYNC_BATCH = 0,    /* fsync on every commit before it returns */
    TSDB_FSYNC_INTERVAL = 1, /* fsync every wal_fsync_interval_ms from a background thread */
    TSDB_FSYNC_NONE = 2      /* leave it to the kernel (tests, benchmarks) */
};

struct tsdb_options {
    int64_t retention_ms;          /* head data older than newest - this is dropped; 0 = keep */
    uint64_t retention_bytes;      /* blocks + WAL beyond this are dropped, oldest block first; 0 =
                                      unlimited */
    int wal_fsync;                 /* enum tsdb_fsync_policy */
    int64_t wal_fsync_interval_ms; /* for TSDB_FSYNC_INTERVAL */
    uint64_t wal_segment_bytes;    /* a segment is cut past this size */
    int64_t ooo_window_ms;         /* accept samples this much older than a series' newest */
    size_t max_series;             /* 0 = unlimited */
    size_t max_label_name_len;     /* bytes; 0 = unlimited */
    size_t max_label_value_len;    /* bytes; 0 = unlimited */
    size_t max_labels;             /* labels per series; 0 = unlimited */
    int64_t block_duration_ms;     /* chunks never straddle a multiple of this */
    unsigned checkpoint_segments;  /* checkpoint once this many full segments pile up */
    int64_t maintain_interval_ms;  /* tsdb_maintain from a background thread; 0 = caller's job */
};

/* Defaults: 15 d retention, no size limit, fsync interval 1 s, 128 MiB
 * segments, no out-of-order window, no limits, 2 h blocks, checkpoint
 * every 3 segments, housekeeping every minute. */
void tsdb_options_defaults(struct tsdb_options *o);

/* Self-metrics.  Counters are totals since open (replay excluded unless
 * named so). */
struct tsdb_stats {
    uint64_t samples_appended;      /* accepted and committed */
    uint64_t head_series;           /* series in the head now */
    uint64_t head_series_created;   /* total */
    uint64_t head_series_removed;   /* total (deletion, retention) */
    uint64_t head_chunks;           /* chunks in the head now, open ones included */
    uint64_t rejected_out_of_order; /* older than newest - ooo window */
    uint64_t rejected_duplicate;    /* same timestamp, different value */
    uint64_t rejected_too_old;      /* older than the retention horizon */
    uint64_t rejected_limit;        /* a series/label limit was exceeded */
    uint64_t duplicates_ignored;    /* same timestamp, same value */
    uint64_t ooo_samples_appended;  /* accepted inside the out-of-order window */
    uint64_t wal_fsyncs;            /* total */
    uint64_t wal_fsync_ns_total;    /* time spent in fsync */
    uint64_t wal_fsync_failures;
    uint64_t wal_corruptions;    /* corrupt or torn WAL tails cut at open */
    uint64_t wal_bytes;          /* bytes in WAL segments + checkpoint now */
    uint64_t wal_segments;       /* segment files now */
    uint64_t wal_checkpoints;    /* total written */
    uint64_t wal_replay_samples; /* samples replayed at open */
    uint64_t wal_replay_ns;      /* duration of the replay at open */
    uint64_t blocks_loaded;      /* persisted blocks being queried */
    uint64_t blocks_quarantined; /* damaged blocks set aside at open */
    uint64_t blocks_deleted;     /* by retention, total */
    uint64_t blocks_cut;         /* written from the head, total */
    uint64_t blocks_compacted;   /* compactions done, total */
    uint64_t head_cuts_failed;   /* head cuts that failed (the head keeps the data), total */
    uint64_t head_cut_ns;        /* time spent writing head blocks, total */
    uint64_t compactions_failed; /* compactions that failed (inputs kept), total */
    uint64_t compaction_ns;      /* time spent compacting, total */
    int64_t head_min_t_ms;       /* INT64_MAX when the head is empty */
    int64_t head_max_t_ms;       /* INT64_MIN when the head is empty */
};

struct tsdb;
struct tsdb_appender;
struct tsdb_querier;
struct tsdb_series_set;
struct tsdb_iter;

/* ---- lifecycle ------------------------------------------------------------ */

/*
 * Opens (creating if needed) the store in 'dir' and replays its WAL.  A
 * torn or corrupt WAL tail is cut with a logged warning; what precedes it is
 * kept.  A second open of the same directory, from this or another process,
 * fails with HS_EAGAIN ("data directory ... is locked").  'o' is copied;
 * NULL means defaults.  Returns NULL with err set on failure.
 */
struct tsdb *tsdb_open(const char *dir, const struct tsdb_options *o, struct hs_err *err);

/* Flushes and fsyncs the WAL, stops the background thread, releases the
 * lock and frees everything.  Every appender, querier and series set must be
 * gone first.  NULL is a no-op. */
void tsdb_close(struct tsdb *db);

/* Copies the counters into 'out'.  Threading: any thread. */
void tsdb_get_stats(struct tsdb *db, struct tsdb_stats *out);

/*
 * Housekeeping: cuts the oldest block_duration of the head into a
 * persisted block once the head spans 1.5 of them (dropping it from the
 * head and the WAL), compacts blocks (overlapping ones, then complete
 * windows of 3x, 9x ... block_duration), drops head data and blocks past
 * the retention horizon
 * (time relative to the newest sample; size over blocks + WAL), removes
 * series left with no samples, and writes a WAL checkpoint when enough
 * segments have piled up (or always when 'force_checkpoint').  Safe while
 * appends and queries run; runs by itself every maintain_interval_ms.
 */
HS_MUST_CHECK int tsdb_maintain(struct tsdb *db, bool force_checkpoint, struct hs_err *err);

/* ---- appending ------------------------------------------------------------ */

/* A new empty batch.  NULL on out of memory.  Caller ends it with exactly
 * one of tsdb_appender_commit / tsdb_appender_rollback. */
struct tsdb_appender *tsdb_appender_new(struct tsdb *db);

/*
 * Adds one sample for the series 'ls' (borrowed; copied when the series is
 * new; must be sorted with unique names; empty values are dropped).  On
 * success *ref_out (if not NULL) receives the series ref for later
 * tsdb_appender_add_ref calls; refs stay valid across restarts until the
 * series is deleted or dropped by retention.  Errors, each counted in the
 * stats and leaving the batch as it was:
 *   HS_EINVAL  "out of order sample", "duplicate sample for timestamp",
 *              "too old sample", invalid label set;
 *   HS_ETOOBIG a limit (series, labels, name/value length) was exceeded.
 * Same timestamp and same value (bit for bit) as the newest sample is an
 * ignored duplicate and returns HS_OK.
 */
HS_MUST_CHECK int tsdb_appender_add(struct tsdb_appender *a, const struct hs_labels *ls,
                                    int64_t t_ms, double v, uint64_t *ref_out, struct hs_err *err);

/* As tsdb_appender_add for a series known by ref, without hashing labels.
 * HS_ENOTFOUND when the ref is unknown (deleted series): add by labels. */
HS_MUST_CHECK int tsdb_appender_add_ref(struct tsdb_appender *a, uint64_t ref, int64_t t_ms,
                                        double v, struct hs_err *err);

/*
 * Applies the batch to the head and the WAL (fsync'd before returning under
 * TSDB_FSYNC_BATCH), then frees the appender.  A sample made out of order by
 * another batch committed in between is dropped and counted, not an error.
 * On an error (WAL write failed) the batch's samples are not acknowledged.
 */
HS_MUST_CHECK int tsdb_appender_commit(struct tsdb_appender *a, struct hs_err *err);

/* Drops the batch and frees the appender.  Series created by it remain
 * (with no samples; retention removes them). */
void tsdb_appender_rollback(struct tsdb_appender *a);

/* ---- matchers ----------------------------------------------------------------- */

enum tsdb_match_type { TSDB_MATCH_EQ = 0, TSDB_MATCH_NEQ, TSDB_MATCH_RE, TSDB_MATCH_NRE };

struct tsdb_matcher {
    int type;           /* enum tsdb_match_type */
    char *name;         /* owned copy */
    char *value;        /* owned copy */
    void *re;           /* compiled pattern (pcre2_code) for RE / NRE */
    void *md;           /* match data for the pattern */
    bool matches_empty; /* does "" match: then series without the label match too */
};

/*
 * Prepares a matcher: 'name' and 'value' are copied.  Regexes are fully
 * anchored (Prometheus semantics) and JIT-compiled; an invalid pattern is
 * HS_EPARSE with the position in err->pos.  Clean up with
 * tsdb_matcher_cleanup even after a failure.
 */
HS_MUST_CHECK int tsdb_matcher_init(struct tsdb_matcher *m, int type, const char *name,
                                    const char *value, struct hs_err *err);
void tsdb_matcher_cleanup(struct tsdb_matcher *m);
/* Whether 'value' ("" for an absent label) satisfies the matcher.
 * Threading: a matcher is used by one thread at a time (shared match data). */
bool tsdb_matcher_matches(const struct tsdb_matcher *m, const char *value);

/* ---- querying ----------------------------------------------------------------- */

/* A querier over [mint_ms, maxt_ms] (inclusive).  NULL on out of memory. */
struct tsdb_querier *tsdb_querier_new(struct tsdb *db, int64_t mint_ms, int64_t maxt_ms);
void tsdb_querier_free(struct tsdb_querier *q);

/*
 * Series matching all 'n' matchers (n >= 1; at least one matcher must not
 * match the empty string, else HS_EINVAL) that have samples in the range,
 * sorted by labels.  The set is a snapshot: later appends do not show, and
 * it stays valid after the querier is freed.  Caller frees *out with
 * tsdb_series_set_free.  'max_series' (0 = none) caps the result:
 * HS_ETOOBIG past it.
 */
HS_MUST_CHECK int tsdb_querier_select(struct tsdb_querier *q, const struct tsdb_matcher *ms,
                                      size_t n, size_t max_series, struct tsdb_series_set **out,
                                      struct hs_err *err);

/* Moves to the next series (first call: the first one). */
bool tsdb_series_set_next(struct tsdb_series_set *s);
/* Number of series in the set. */
size_t tsdb_series_set_len(const struct tsdb_series_set *s);
/* Labels of the current series; borrowed, valid until the set is freed. */
const struct hs_labels *tsdb_series_set_labels(const struct tsdb_series_set *s);
/* An iterator over the current series' samples inside the querier's range;
 * owned by the set and reset by each call (one live iterator per set). */
struct tsdb_iter *tsdb_series_set_iter(struct tsdb_series_set *s);
void tsdb_series_set_free(struct tsdb_series_set *s);

/* Advances to the next sample. */
bool tsdb_iter_next(struct tsdb_iter *it);
/* Advances to the first sample with t >= t_ms (never goes back); false when
 * there is none. */
bool tsdb_iter_seek(struct tsdb_iter *it, int64_t t_ms);
/* The current sample. */
void tsdb_iter_at(const struct tsdb_iter *it, int64_t *t_ms, double *v);

/* A sorted list of unique strings; free with tsdb_strings_free. */
struct tsdb_strings {
    size_t n;
    char **v;
};
void tsdb_strings_free(struct tsdb_strings *s);

/* Label names of the series that match 'ms' (n may be 0: all series) and
 * have samples in the querier's range. */
HS_MUST_CHECK int tsdb_querier_label_names(struct tsdb_querier *q, const struct tsdb_matcher *ms,
                                           size_t n, struct tsdb_strings *out, struct hs_err *err);
/* Values of label 'name' over the same selection. */
HS_MUST_CHECK int tsdb_querier_label_values(struct tsdb_querier *q, const char *name,
                                            const struct tsdb_matcher *ms, size_t n,
                                            struct tsdb_strings *out, struct hs_err *err);

/* ---- deletion ----------------------------------------------------------------- */

/*
 * Deletes the samples in [mint_ms, maxt_ms] of every series matching 'ms'
 * (the admin API); series left empty are removed.  Durable: in the head a
 * tombstone is written (and fsync'd) to the WAL, in each block a
 * tombstones file is rewritten crash-safely, before it returns.  *deleted
 * (may be NULL) receives the number of series touched (once per head and
 * per block holding them).
 */
HS_MUST_CHECK int tsdb_delete_series(struct tsdb *db, const struct tsdb_matcher *ms, size_t n,
                                     int64_t mint_ms, int64_t maxt_ms, size_t *deleted,
                                     struct hs_err *err);

/* ---- status (for /api/v1/status/tsdb) ---------------------------------------- */

struct tsdb_stat_entry {
    char *name; /* owned by the status */
    uint64_t value;
};

struct tsdb_status {
    uint64_t num_series;
    uint64_t num_label_pairs;
    uint64_t chunk_count;
    int64_t min_time_ms; /* INT64_MAX when empty */
    int64_t max_time_ms; /* INT64_MIN when empty */
    uint64_t wal_bytes;
    size_t n_by_metric, n_by_label_name, n_by_memory, n_by_pair;
    struct tsdb_stat_entry *series_count_by_metric_name;   /* top series counts */
    struct tsdb_stat_entry *label_value_count_by_name;     /* top distinct-value counts */
    struct tsdb_stat_entry *memory_in_bytes_by_label_name; /* top bytes of values */
    struct tsdb_stat_entry *series_count_by_label_pair;    /* "name=value" */
};

/* Fills 'out' with the head's numbers and the top 'top_n' of each list,
 * sorted by value descending then name.  Free with tsdb_status_cleanup. */
HS_MUST_CHECK int tsdb_status_get(struct tsdb *db, size_t top_n, struct tsdb_status *out,
                                  struct hs_err *err);
void tsdb_status_cleanup(struct tsdb_status *st);

/* ---- chunks (exposed for blocks, tools and tests) ----------------------------- */

/* Decoding iterator over one XOR chunk's bytes (borrowed).  Corrupt bytes
 * end the iteration with 'err' set; it never reads out of bounds. */
struct tsdb_chunk_iter {
    const uint8_t *p; /* chunk bytes */
    size_t nbits;     /* length in bits */
    size_t pos;       /* next bit to read */
    uint16_t n;       /* samples in the chunk */
    uint16_t i;       /* samples read so far */
    int64_t t;        /* current sample */
    int64_t delta;    /* t - previous t */
    uint64_t v;       /* current value bits */
    uint8_t leading;  /* XOR window of the last value */
    uint8_t trailing;
    int err; /* HS_OK or HS_ECORRUPT */
};

/* Starts iterating 'len' bytes; corrupt headers show as err at first next. */
void tsdb_chunk_iter_init(struct tsdb_chunk_iter *it, const uint8_t *p, size_t len);
bool tsdb_chunk_iter_next(struct tsdb_chunk_iter *it);
/* Number of samples the chunk header announces (0 if too short). */
unsigned tsdb_chunk_num_samples(const uint8_t *p, size_t len);

/* ---- backfill ---- */

/*
 * Building blocks straight from samples, without a running store (the
 * `holoscope tsdb create-blocks-from` commands).  Samples may come in any
 * order; they are grouped by series, sorted by time and cut into blocks
 * aligned to multiples of block_duration_ms, chunks of at most
 * TSDB_CHUNK_MAX_SAMPLES samples that never straddle a block window.
 * Memory holds compressed chunks: a series whose samples come in time
 * order is encoded as they arrive; samples older than their series' newest
 * are buffered raw and merged in at finish.
 */
struct tsdb_block_builder;

/* One block written by a builder, or found by tsdb_blocks_list. */
struct tsdb_block_info {
    char ulid[27];       /* block name (directory under the data dir) */
    int64_t min_time_ms; /* first sample */
    int64_t max_time_ms; /* last sample + 1 (exclusive, as Prometheus) */
    uint64_t num_series;
    uint64_t num_samples;
    uint64_t num_chunks;
    uint64_t size_bytes; /* bytes on disk */
    int level;           /* 1 = written from samples, +1 per compaction */
};

/* What a builder did. */
struct tsdb_backfill_stats {
    uint64_t series;                /* distinct series with samples */
    uint64_t samples;               /* samples written */
    uint64_t duplicates_dropped;    /* same series, timestamp and value (bit for bit) */
    uint64_t out_of_order;          /* samples that came older than their series' newest */
    int64_t min_time_ms;            /* INT64_MAX when nothing was written */
    int64_t max_time_ms;            /* INT64_MIN when nothing was written */
    size_t n_blocks;                /* blocks written, by time */
    struct tsdb_block_info *blocks; /* owned; freed by tsdb_backfill_stats_cleanup */
};

/* Frees st->blocks and zeroes the counts.  NULL is a no-op. */
void tsdb_backfill_stats_cleanup(struct tsdb_backfill_stats *st);

/*
 * A builder writing into 'data_dir' (created at finish if missing; may be
 * an existing store's directory while that store is not running) blocks
 * covering block_duration_ms-aligned windows (> 0).  'data_dir' is copied.
 * Returns NULL with err set on bad arguments or out of memory.
 * Threading: one thread at a time.
 */
struct tsdb_block_builder *tsdb_block_builder_new(const char *data_dir, int64_t block_duration_ms,
                                                  struct hs_err *err);

/*
 * Adds one sample of series 'ls' (borrowed; copied when the series is new;
 * names must be valid, sorted and unique, at most 1024 labels; empty values
 * are dropped).  The same timestamp twice with the same value (bit for
 * bit) is dropped and counted; with another value it is HS_EINVAL
 * ("duplicate sample for timestamp"), reported here when the two come in
 * order, at finish otherwise.  Any float64 is stored exactly.  On error
 * the builder is unchanged and may go on.
 */
HS_MUST_CHECK int tsdb_block_builder_add(struct tsdb_block_builder *b, const struct hs_labels *ls,
                                         int64_t t_ms, double v, struct hs_err *err);

/*
 * Sorts out-of-order samples in, writes one block per window holding data
 * (each crash-safely, see the block writer), and fills 'st' (may be NULL;
 * clean it up with tsdb_backfill_stats_cleanup on HS_OK).  With no sample
 * at all nothing is written and HS_OK is returned.  On error blocks
 * already written stay (each whole); 'st' is left empty.  The builder can
 * only be freed afterwards.
 */
HS_MUST_CHECK int tsdb_block_builder_finish(struct tsdb_block_builder *b,
                                            struct tsdb_backfill_stats *st, struct hs_err *err);

/* Frees the builder and every sample it holds.  NULL is a no-op. */
void tsdb_block_builder_free(struct tsdb_block_builder *b);

/*
 * The blocks of 'data_dir', sorted by min time, read-only (leftovers are
 * not touched; a block whose meta.json does not read is skipped).  Caller
 * frees '*out' with hs_free.  HS_ENOTFOUND when the directory is missing.
 */
HS_MUST_CHECK int tsdb_blocks_list(const char *data_dir, struct tsdb_block_info **out, size_t *n,
                                   struct hs_err *err);

/* ---- end of backfill ---- */

#endif
