/*
 * internal.h - shared by the files of src/cli: the holoscope configuration
 * (what `serve` and the other serving commands run with) and the
 * subcommand table.
 *
 * Threading: main thread only.
 */
#ifndef HS_CLI_INTERNAL_H
#define HS_CLI_INTERNAL_H

#include "cli/cli.h"
#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The whole configuration.  Every scalar setting has one entry in the schema
 * of config.c, which gives its YAML path ("http.max_header_bytes"), its flag
 * (--http.max_header_bytes, dashes and underscores interchangeable) and its
 * environment variable (HOLOSCOPE_HTTP_MAX_HEADER_BYTES).  Precedence:
 * defaults < file < environment < flags.  Strings point into 'strings'
 * (owned by the config) or at static defaults.
 */
struct scrape_config;
struct gw_config;
struct rules_alerting_config;
struct cli_pricing;
struct capture_config;

struct cli_config {
    const char *config_file; /* path given with --config, or NULL */
    const char *listen;      /* HOST:PORT of the API, UI and /metrics */
    bool allow_remote;       /* listen on a non-loopback address */
    const char *data_dir;    /* storage directory */
    int log_level;           /* enum hs_log_level */
    int log_format;          /* enum hs_log_format */
    int64_t http_max_connections;
    uint64_t http_max_header_bytes;
    uint64_t http_max_body_bytes;
    int64_t http_header_timeout_ms;
    int64_t http_read_timeout_ms;
    int64_t http_write_timeout_ms;
    int64_t http_idle_timeout_ms;
    int64_t shutdown_timeout_ms; /* graceful-shutdown budget */
    int64_t retention_ms;        /* storage.retention */
    uint64_t retention_bytes;    /* storage.retention_size; 0 = no size limit */
    int wal_fsync;               /* 0 = interval, 1 = batch */
    int64_t wal_fsync_interval_ms;
    int64_t ooo_window_ms;       /* storage.out_of_order_window */
    int64_t block_duration_ms;   /* storage.block_duration */
    int64_t query_timeout_ms;    /* query.timeout */
    int64_t query_lookback_ms;   /* query.lookback_delta */
    int64_t query_max_samples;   /* query.max_samples */
    int64_t query_workers;       /* query.max_concurrency */
    int64_t query_max_queued;    /* query.max_queued */
    bool enable_admin_api;       /* api.enable_admin */
    bool collect_host;           /* collectors.host */
    bool collect_gpu;            /* collectors.gpu */
    int64_t collect_interval_ms; /* collectors.interval */
    const char *nvml_library;    /* collectors.nvml_library */
    const char **rule_files;     /* rule_files: globs of Prometheus-format rule files */
    size_t nrule_files;
    bool rules_default_pack;        /* rules.default_pack: load the embedded LLM rule pack */
    int64_t rules_interval_ms;      /* rules.evaluation_interval: groups without their own */
    struct hs_ydoc *doc;            /* the parsed file, kept for module sections; may be NULL */
    struct scrape_config *scrape;   /* global + scrape_configs of the file (owned; NULL: none) */
    struct gw_config *gateway;      /* the gateway: section (owned; NULL: no gateway) */
    struct capture_config *capture; /* capture: (owned; NULL: no section) */
    struct hs_arena strings;        /* copies of strings from env and flags */

    /* module sections parsed at load (owned; NULL: the section is absent) */
    struct rules_alerting_config *alerting; /* alerting: receivers, external labels/URL */
    struct cli_pricing *pricing;            /* pricing: GPU-hour prices, daily budget */
};

enum { CLI_WAL_FSYNC_INTERVAL = 0, CLI_WAL_FSYNC_BATCH = 1 };

/* Fills 'c' with the defaults. Pair with cli_config_cleanup. */
void cli_config_init(struct cli_config *c);
void cli_config_cleanup(struct cli_config *c);

/*
 * Loads the file named by --config (if any), then HOLOSCOPE_* variables from
 * 'envp', then the flags in argv[0..argc) that are config flags.  Flags that
 * are not config flags are left for the caller: their indexes are written to
 * 'rest' (at most argc entries) and their count to *nrest.  On error 'err'
 * names the file:line:col, variable or flag, and the function returns
 * HS_EINVAL (or HS_EPARSE / HS_ENOTFOUND for the file).
 */
HS_MUST_CHECK int cli_config_load(struct cli_config *c, int argc, char **argv, char **envp,
                                  int *rest, int *nrest, struct hs_err *err);

/* Checks cross-field rules (listen address allowed, sizes sane). */
HS_MUST_CHECK int cli_config_validate(const struct cli_config *c, struct hs_err *err);

/* Appends the effective settings as YAML (for /api/v1/status/config). */
HS_MUST_CHECK int cli_config_render_yaml(const struct cli_config *c, struct hs_buf *out);

/* The effective settings as name/value pairs (for /api/v1/status/flags): a
 * NULL-terminated array of strings allocated from 'arena'.  NULL on ENOMEM. */
const char **cli_config_flag_pairs(const struct cli_config *c, struct hs_arena *arena);

/* Prints the OPTIONS section of a serving command's help from the schema. */
void cli_config_print_help(FILE *out);

/* Splits "HOST:PORT" / "[V6]:PORT"; host and port buffers are filled. */
HS_MUST_CHECK int cli_split_hostport(const char *s, char *host, size_t host_len, int *port);

/* One subcommand. */
struct cli_command {
    const char *name;                               /* "serve", "check config", ... */
    const char *summary;                            /* one line for the command list */
    const char *help;                               /* man-style text for --help */
    int (*run)(int argc, char **argv, char **envp); /* argv[0] is the command name */
};

int cli_cmd_serve(int argc, char **argv, char **envp);
int cli_cmd_demo(int argc, char **argv, char **envp);
extern const char cli_help_demo[];
int cli_cmd_check(int argc, char **argv, char **envp);
int cli_cmd_promql_test(int argc, char **argv, char **envp);
int cli_cmd_rules(int argc, char **argv, char **envp);
int cli_cmd_tsdb(int argc, char **argv, char **envp);
int cli_cmd_sim(int argc, char **argv, char **envp);
int cli_cmd_bench(int argc, char **argv, char **envp);
extern const char cli_help_bench[];
extern const char cli_help_sim[];
/* capture_cmd.c: `holoscope capture analyze` */
int cli_cmd_capture(int argc, char **argv, char **envp);
extern const char cli_help_capture[];
/* grafana_cmd.c: `holoscope grafana-dashboard` */
int cli_cmd_grafana(int argc, char **argv, char **envp);
extern const char cli_help_grafana[];
extern const char cli_help_serve[];
extern const char cli_help_check[];
extern const char cli_help_promql_test[];
extern const char cli_help_rules[];
extern const char cli_help_tsdb[];

/* ---- query.c: the store as seen by the Prometheus HTTP API ---- */
struct cli_lazy_storage;
struct promql_storage;
struct promql_matcher;
struct tsdb;
struct tsdb_status;
/* A PromQL storage that answers "still opening" until cli_lazy_storage_open. */
struct cli_lazy_storage *cli_lazy_storage_new(void);
void cli_lazy_storage_view(struct cli_lazy_storage *l, struct promql_storage *out);
void cli_lazy_storage_open(struct cli_lazy_storage *l, struct tsdb *db);
void cli_lazy_storage_free(struct cli_lazy_storage *l);
/* API callbacks; 'arg' is a struct tsdb ** (NULL while the store opens). */
int cli_tsdb_status(void *arg, size_t top_n, struct tsdb_status *out, struct hs_err *err);
void cli_tsdb_status_release(void *arg, struct tsdb_status *st);
int cli_tsdb_delete(void *arg, const struct promql_matcher *ms, size_t n, int64_t mint_ms,
                    int64_t maxt_ms, struct hs_err *err);
int cli_tsdb_clean_tombstones(void *arg, struct hs_err *err);

/* ---- pricing.c: the `pricing:` section and the series it becomes ---- */
/* Parses `pricing:` (gpu_hour_dollars: {MODEL: dollars}, daily_budget_dollars);
 * NULL or null 'node' gives *out NULL.  Errors name FILE:LINE:COL. */
HS_MUST_CHECK int cli_pricing_parse(const struct hs_ydoc *d, const struct hs_ynode *node,
                                    struct cli_pricing **out, struct hs_err *err);
void cli_pricing_free(struct cli_pricing *p);
/* Number of series cli_pricing_write writes (0 for NULL). */
size_t cli_pricing_series(const struct cli_pricing *p);
/* Appends holoscope_pricing_gpu_hour_dollars{gpu_model} and
 * holoscope_pricing_daily_budget_dollars at t_ms to 'db' in one batch.
 * Threading: any thread. */
HS_MUST_CHECK int cli_pricing_write(const struct cli_pricing *p, struct tsdb *db, int64_t t_ms,
                                    struct hs_err *err);

/* True when argv has -h or --help before a "--". */
bool cli_wants_help(int argc, char **argv);

#endif
