/*
 * collect.h - holoscope's built-in collectors: the host (/proc and /sys,
 * node_exporter names) and the GPUs (NVML loaded at run time, dcgm-exporter
 * names), sampled every 'interval_ms' by a thread of their own and appended
 * to the TSDB in one appender batch per round.
 *
 * Series and labels.  Each collector writes the names the community
 * dashboards query, with the target labels a Prometheus server would have
 * added had it scraped the equivalent exporter on this machine:
 *   host:  node_* names of node_exporter;  job="node", instance=<hostname>,
 *          backend="node".  holoscope's own process: process_* names with
 *          job="holoscope", instance=<hostname>.
 *   gpu:   DCGM_FI_* names and units of dcgm-exporter (MiB, W, mJ, MHz,
 *          %, bytes/s) with its labels gpu, UUID, pci_bus_id, device
 *          ("nvidiaN"), modelName, Hostname, DCGM_FI_DRIVER_VERSION, plus
 *          job="dcgm", instance=<hostname>, backend="nvml".
 *   link:  holoscope_gpu_model_info{gpu, UUID, Hostname, model, instance} 1,
 *          job="holoscope": a GPU process that is (a child of) the process
 *          listening on a local engine target's port serves that target's
 *          model (instance = the engine target; gpumap.c).
 *   self:  holoscope_collector_up, holoscope_collector_duration_seconds,
 *          holoscope_collector_errors_total, each {collector="host"|"gpu"},
 *          job="holoscope", instance=<hostname>.
 * 'instance' is the hostname rather than host:port because no port is
 * scraped; it equals dcgm-exporter's Hostname label, so host and GPU
 * series of one machine join on it.
 *
 * An absent NVML library or a machine without GPUs is not an error: one
 * log line, holoscope_collector_up{collector="gpu"} 0, the rest runs.
 *
 * Threading: collect_new/collect_free on one thread; collect_start and
 * collect_stop from that same thread; collect_run_once, collect_collect,
 * collect_get_stats and collect_gpu_processes from any thread (rounds are
 * serialised by an internal lock).
 */
#ifndef HS_COLLECT_H
#define HS_COLLECT_H

#include "core/core.h"
#include "tsdb/tsdb.h"

#include <stdbool.h>
#include <stdint.h>

#define COLLECT_DEFAULT_INTERVAL_MS 15000
#define COLLECT_MAX_GPUS            64 /* devices beyond this are ignored */
#define COLLECT_MAX_GPU_PROCESSES   64 /* processes read per GPU per round */

struct collect_config {
    bool host_enabled;     /* default true */
    bool gpu_enabled;      /* default true */
    int64_t interval_ms;   /* between rounds of the thread; <= 0: default 15 s */
    const char *proc_root; /* default "/proc" */
    const char *sys_root;  /* default "/sys" */
    const char *rootfs;    /* prefix for statvfs of mount points; default "" (none) */
    const char *nvml_path; /* default "libnvidia-ml.so.1" */
    const char *hostname;  /* NULL: gethostname() */
};

/* Fills 'cfg' with the defaults above (strings are static literals). */
void collect_config_defaults(struct collect_config *cfg);

/*
 * The place samples go.  'add' receives one sample: 'ls' (sorted, with
 * __name__) is borrowed for the call only.  Returning an error counts one
 * error for the collector and skips the sample; the round goes on.
 */
typedef int collect_sink_fn(void *ctx, const struct hs_labels *ls, int64_t t_ms, double v,
                            struct hs_err *err);
struct collect_sink {
    collect_sink_fn *add;
    void *ctx;
};

/* Numbers about one collector, for the API's self-metrics. */
struct collect_collector_stats {
    bool is_enabled;         /* configured on */
    bool is_up;              /* last round succeeded (gpu: NVML loaded and initialised) */
    uint64_t rounds_total;   /* rounds run */
    uint64_t errors_total;   /* failed reads and rejected samples, since start */
    uint64_t samples_last;   /* samples written by the last round */
    double duration_seconds; /* duration of the last round */
    int64_t last_t_ms;       /* timestamp of the last round; 0 before the first */
};

struct collect_stats {
    struct collect_collector_stats host;
    struct collect_collector_stats gpu;
    unsigned gpu_count; /* devices NVML reports (0 when it is not loaded) */
};

/* One process's use of one GPU's memory, from the last round. */
struct collect_gpu_process {
    uint32_t pid;
    unsigned gpu;        /* NVML index */
    char uuid[96];       /* the GPU's UUID */
    uint64_t used_bytes; /* GPU memory used by the process */
};

struct collect;

/*
 * Builds the collectors.  'cfg' and its strings are copied.  'db' is
 * borrowed and must outlive the collector; it may be NULL when only
 * collect_collect is used.  The GPU collector dlopens cfg->nvml_path and
 * initialises NVML here; failure to do so is logged once and leaves the
 * GPU collector down, not an error.  Returns NULL with err set on out of
 * memory or an invalid configuration.
 */
struct collect *collect_new(const struct collect_config *cfg, struct tsdb *db, struct hs_err *err);

/* Stops the thread if running, shuts NVML down, frees everything.  NULL is
 * a no-op. */
void collect_free(struct collect *c);

/* Starts the thread: a round at once, then every interval_ms.  HS_EINVAL
 * when already started or when there is no tsdb. */
HS_MUST_CHECK int collect_start(struct collect *c, struct hs_err *err);

/* Wakes the thread and joins it; returns promptly (no sleeping out the
 * interval).  A no-op when not started. */
void collect_stop(struct collect *c);

/*
 * Runs one round of every enabled collector at timestamp 't_ms' into the
 * tsdb, as one appender batch, and commits it.  Per-sample failures are
 * counted in the stats, not returned; the return is an error only when the
 * batch itself could not be made or committed.
 */
HS_MUST_CHECK int collect_run_once(struct collect *c, int64_t t_ms, struct hs_err *err);

/* As collect_run_once, into 'sink' instead of the tsdb (tests, exporters). */
HS_MUST_CHECK int collect_collect(struct collect *c, int64_t t_ms, const struct collect_sink *sink,
                                  struct hs_err *err);

/* Copies the current stats. */
void collect_get_stats(struct collect *c, struct collect_stats *out);

/*
 * Copies up to 'max' entries of the GPU processes seen by the last round
 * into 'out' and returns how many there were in all (which may exceed
 * 'max'), so that a caller can join listening port -> pid -> GPU.
 */
size_t collect_gpu_processes(struct collect *c, struct collect_gpu_process *out, size_t max);

#endif
