/*
 * tsdb_metrics.c - the store's counters as self-metrics (holoscope_tsdb_*).
 *
 * A collector for api_metrics: it copies struct tsdb_stats (tsdb_get_stats
 * may be called from any thread) and writes one family per counter, so the
 * scrape benchmark and users read samples appended, head series, rejections
 * by reason, WAL fsyncs, size and replay figures from /metrics.
 */
#include "api/api.h"

#include "tsdb/tsdb.h"

#include <stdint.h>

struct fam {
    const char *name;
    const char *type;
    const char *help;
    double value;
};

static int write_fams(struct hs_buf *out, const struct fam *f, size_t n)
{
    int rc = HS_OK;
    for (size_t i = 0; i < n && rc == HS_OK; i++) {
        rc = api_expo_family(out, f[i].name, f[i].type, f[i].help);
        if (rc == HS_OK)
            rc = api_expo_sample(out, f[i].name, NULL, f[i].value);
    }
    return rc;
}

int api_tsdb_collector(void *arg, struct hs_buf *out)
{
    struct tsdb_stats st;
    tsdb_get_stats(arg, &st);
    const struct fam fams[] = {
        {"holoscope_tsdb_samples_appended_total", "counter",
         "Samples accepted and committed to the head.", (double)st.samples_appended},
        {"holoscope_tsdb_head_series", "gauge", "Series in the head block.",
         (double)st.head_series},
        {"holoscope_tsdb_head_series_created_total", "counter", "Series created in the head.",
         (double)st.head_series_created},
        {"holoscope_tsdb_head_series_removed_total", "counter",
         "Series removed from the head by deletion or retention.", (double)st.head_series_removed},
        {"holoscope_tsdb_head_chunks", "gauge", "Chunks in the head, open ones included.",
         (double)st.head_chunks},
        {"holoscope_tsdb_duplicate_samples_ignored_total", "counter",
         "Samples ignored because the series already had the same timestamp and value.",
         (double)st.duplicates_ignored},
        {"holoscope_tsdb_out_of_order_samples_appended_total", "counter",
         "Samples accepted inside the out-of-order window.", (double)st.ooo_samples_appended},
        {"holoscope_tsdb_wal_fsyncs_total", "counter", "WAL fsync calls.", (double)st.wal_fsyncs},
        {"holoscope_tsdb_wal_fsync_duration_seconds_total", "counter",
         "Time spent in WAL fsync calls.", (double)st.wal_fsync_ns_total / 1e9},
        {"holoscope_tsdb_wal_fsync_failures_total", "counter", "WAL fsync calls that failed.",
         (double)st.wal_fsync_failures},
        {"holoscope_tsdb_wal_corruptions_total", "counter",
         "Corrupt or torn WAL tails cut when the store was opened.", (double)st.wal_corruptions},
        {"holoscope_tsdb_wal_size_bytes", "gauge", "Bytes in WAL segments and checkpoint.",
         (double)st.wal_bytes},
        {"holoscope_tsdb_wal_segments", "gauge", "WAL segment files.", (double)st.wal_segments},
        {"holoscope_tsdb_wal_checkpoints_total", "counter", "WAL checkpoints written.",
         (double)st.wal_checkpoints},
        {"holoscope_tsdb_wal_replay_samples", "gauge",
         "Samples replayed from the WAL when the store was opened.", (double)st.wal_replay_samples},
        {"holoscope_tsdb_wal_replay_duration_seconds", "gauge",
         "Duration of the WAL replay when the store was opened.", (double)st.wal_replay_ns / 1e9},
        {"holoscope_tsdb_blocks_loaded", "gauge", "Persisted blocks being queried.",
         (double)st.blocks_loaded},
        {"holoscope_tsdb_blocks_quarantined_total", "counter",
         "Damaged blocks set aside when the store was opened.", (double)st.blocks_quarantined},
        {"holoscope_tsdb_head_cuts_total", "counter", "Blocks written from the head.",
         (double)st.blocks_cut},
        {"holoscope_tsdb_head_cuts_failed_total", "counter",
         "Head cuts that failed (the head kept its samples).", (double)st.head_cuts_failed},
        {"holoscope_tsdb_head_cut_duration_seconds_total", "counter",
         "Time spent cutting the head into blocks.", (double)st.head_cut_ns / 1e9},
        {"holoscope_tsdb_compactions_total", "counter", "Block compactions done.",
         (double)st.blocks_compacted},
        {"holoscope_tsdb_compactions_failed_total", "counter",
         "Block compactions that failed (their inputs kept).", (double)st.compactions_failed},
        {"holoscope_tsdb_compaction_duration_seconds_total", "counter",
         "Time spent compacting blocks.", (double)st.compaction_ns / 1e9},
        {"holoscope_tsdb_retention_blocks_deleted_total", "counter",
         "Blocks deleted by time or size retention.", (double)st.blocks_deleted},
    };
    int rc = write_fams(out, fams, HS_ARRAY_LEN(fams));
    if (rc == HS_OK)
        rc = api_expo_family(out, "holoscope_tsdb_samples_rejected_total", "counter",
                             "Samples rejected, by reason.");
    const struct {
        const char *reason;
        uint64_t n;
    } rej[] = {{"out_of_order", st.rejected_out_of_order},
               {"duplicate", st.rejected_duplicate},
               {"too_old", st.rejected_too_old},
               {"limit", st.rejected_limit}};
    for (size_t i = 0; i < HS_ARRAY_LEN(rej) && rc == HS_OK; i++) {
        const char *ls[] = {"reason", rej[i].reason, NULL};
        rc = api_expo_sample(out, "holoscope_tsdb_samples_rejected_total", ls, (double)rej[i].n);
    }
    bool empty = st.head_min_t_ms > st.head_max_t_ms;
    const struct fam times[] = {
        {"holoscope_tsdb_head_min_time_seconds", "gauge",
         "Oldest sample time in the head (0 when empty).",
         empty ? 0 : (double)st.head_min_t_ms / 1e3},
        {"holoscope_tsdb_head_max_time_seconds", "gauge",
         "Newest sample time in the head (0 when empty).",
         empty ? 0 : (double)st.head_max_t_ms / 1e3},
    };
    if (rc == HS_OK)
        rc = write_fams(out, times, HS_ARRAY_LEN(times));
    return rc;
}
