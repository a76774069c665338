/*
 * scrape_config.h - what to scrape and how to read it: the scrape
 * configuration (a compatible subset of Prometheus' `global` and
 * `scrape_configs`), target label sets built from static and file-based
 * discovery, the relabelling engine, engine detection and the mapping of
 * engine metrics onto holoscope's unified names (shared/spec/metrics-mapping.md).
 *
 * Memory: a parsed configuration, a target list, a file_sd state and a
 * mapping table each own every byte they point to and are freed by their own
 * _free / _cleanup function.  Per-sample work (relabelling, mapping) allocates
 * only from a caller-provided arena that the caller resets once per scrape.
 *
 * Threading: parsed configurations, relabel sets and the mapping table are
 * immutable after construction and may be read by any number of threads;
 * a struct scrape_relabel_scratch, an arena, a target list, a detection
 * result and a file_sd state are used by one thread at a time.
 */
#ifndef HS_SCRAPE_CONFIG_H
#define HS_SCRAPE_CONFIG_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- relabelling ------------------------------------------------------ */

enum scrape_relabel_action {
    SCRAPE_RELABEL_REPLACE = 0,
    SCRAPE_RELABEL_KEEP,
    SCRAPE_RELABEL_DROP,
    SCRAPE_RELABEL_KEEPEQUAL,
    SCRAPE_RELABEL_DROPEQUAL,
    SCRAPE_RELABEL_HASHMOD,
    SCRAPE_RELABEL_LABELMAP,
    SCRAPE_RELABEL_LABELDROP,
    SCRAPE_RELABEL_LABELKEEP,
    SCRAPE_RELABEL_LOWERCASE,
    SCRAPE_RELABEL_UPPERCASE,
};

/* Ceilings on relabel rules read from a configuration. */
#define SCRAPE_RELABEL_MAX_RULES   1024 /* rules in one relabel_configs list */
#define SCRAPE_RELABEL_MAX_SOURCES 64   /* source_labels of one rule */
#define SCRAPE_RELABEL_MAX_REGEX   4096 /* bytes of one regex */
#define SCRAPE_RELABEL_MAX_LABELS  1024 /* labels a rule set may produce */

/* One compiled rule.  Every string is owned by the rule set. */
struct scrape_relabel_rule {
    int action;                 /* enum scrape_relabel_action */
    const char **source_labels; /* nsource names */
    size_t nsource;
    const char *separator; /* joins source values; default ";" */
    const char *regex;     /* as written; default "(.*)"; matched fully anchored */
    const char *target_label;
    const char *replacement; /* default "$1"; $1, ${1}, $name, ${name}, $$ */
    uint64_t modulus;        /* hashmod only */
    void *re;                /* compiled pattern (pcre2_code), owned */
    bool is_default_regex;   /* regex is "(.*)": every value matches, $1 is the value */
    bool is_jit;             /* 're' was JIT-compiled */
    bool is_target_template; /* target_label holds a '$' */
    int line, col;           /* where the rule was written, 0 when built in code */
};

struct scrape_relabel_set {
    struct scrape_relabel_rule *v;
    size_t n;
};

/* Per-thread working memory for relabelling: match data and a join buffer. */
struct scrape_relabel_scratch {
    void *md;           /* pcre2_match_data, owned */
    struct hs_buf buf;  /* joined source values */
    struct hs_buf buf2; /* expansion of target_label / replacement */
};

/* Fill and release a scratch.  init fails only with HS_ENOMEM. */
HS_MUST_CHECK int scrape_relabel_scratch_init(struct scrape_relabel_scratch *s, struct hs_err *err);
void scrape_relabel_scratch_cleanup(struct scrape_relabel_scratch *s);

/*
 * Parse a relabel_configs list ('seq', a YAML sequence of maps, or a null
 * node for none) into 'out', compiling each regex (with JIT where available).
 * Prometheus' validation applies: unknown keys, a missing target_label for
 * replace/hashmod/lowercase/uppercase/keepequal/dropequal, modulus 0 for
 * hashmod, fields not allowed for labeldrop/labelkeep/keepequal/dropequal, a
 * regex that does not compile: HS_EINVAL with "FILE:LINE:COL: ..." in err.
 * 'what' names the list in messages ("relabel_configs").  On error *out is
 * empty.  Free with scrape_relabel_set_cleanup.
 */
HS_MUST_CHECK int scrape_relabel_set_parse(const struct hs_ydoc *doc, const struct hs_ynode *seq,
                                           const char *what, struct scrape_relabel_set *out,
                                           struct hs_err *err);
void scrape_relabel_set_cleanup(struct scrape_relabel_set *rs);

/* Action name ("replace", ...), or NULL for an unknown value; and back. */
const char *scrape_relabel_action_name(int action);
int scrape_relabel_action_parse(const char *s); /* -1 when unknown */

/*
 * Apply 'rs' to the label set 'in' (sorted, as from hs_labels_sort).
 * Returns 1 when the set is kept, with the result in *out (sorted; the
 * array and any new string come from 'arena', unchanged strings are borrowed
 * from 'in'), 0 when a rule dropped it or no label is left, or a negative
 * hs_code (HS_ENOMEM when the arena is exhausted, HS_ETOOBIG past
 * SCRAPE_RELABEL_MAX_LABELS).  With no rules *out is 'in' itself (no copy).
 * Semantics are Prometheus': source values joined with the separator, the
 * regex anchored at both ends, an empty result of replace deletes the
 * target label, an invalid target name leaves the set unchanged.
 */
HS_MUST_CHECK int scrape_relabel_apply(const struct scrape_relabel_set *rs,
                                       const struct hs_labels *in, struct hs_arena *arena,
                                       struct scrape_relabel_scratch *scratch,
                                       struct hs_labels *out, struct hs_err *err);

/* ---- configuration ----------------------------------------------------- */

/* Ceilings on configuration input. */
#define SCRAPE_CONFIG_MAX_JOBS    10000
#define SCRAPE_CONFIG_MAX_TARGETS 100000 /* targets in one static_configs entry */

/* A target group: addresses plus labels shared by them (static_configs entry
 * or one group of a file_sd file). */
struct scrape_target_group {
    const char **targets; /* "host:port" */
    size_t ntargets;
    struct hs_labels labels; /* sorted, valid names */
    const char *source;      /* "static_configs[0]" or the file path */
};

struct scrape_param {
    const char *name;
    const char **values;
    size_t nvalues;
};

struct scrape_file_sd_config {
    const char **files; /* glob patterns; only the last path element may hold a glob */
    size_t nfiles;
    int64_t refresh_interval_ms; /* default 5m */
};

struct scrape_http_sd_config {
    const char *url;             /* http:// or https:// */
    int64_t refresh_interval_ms; /* default 60s */
};

/* Where a credential is; dumps print <secret> for 'value'. */
struct scrape_secret {
    const char *value; /* inline secret or NULL */
    const char *file;  /* file holding it, or NULL */
};

struct scrape_tls_config {
    const char *ca_file, *cert_file, *key_file, *server_name; /* NULL when absent */
    bool insecure_skip_verify;
};

struct scrape_job {
    const char *job_name;
    int line, col; /* where the job is written */
    int64_t scrape_interval_ms;
    int64_t scrape_timeout_ms; /* <= scrape_interval_ms */
    const char *metrics_path;  /* default "/metrics" */
    const char *scheme;        /* "http" or "https" */
    struct scrape_param *params;
    size_t nparams;
    bool honor_labels;     /* default false */
    bool honor_timestamps; /* default true */
    bool follow_redirects; /* default true */
    bool enable_http2;     /* accepted for compatibility; HTTP/1.1 is used */
    uint64_t sample_limit; /* 0 = none, for every limit below */
    uint64_t label_limit;
    uint64_t label_name_length_limit;
    uint64_t label_value_length_limit;
    uint64_t body_size_limit; /* bytes */
    bool has_basic_auth;
    const char *basic_auth_username;
    struct scrape_secret basic_auth_password;
    bool has_authorization;         /* also set by the legacy bearer_token(_file) */
    const char *authorization_type; /* default "Bearer" */
    struct scrape_secret authorization_credentials;
    bool has_tls;
    struct scrape_tls_config tls;
    struct scrape_relabel_set relabel_configs;
    struct scrape_relabel_set metric_relabel_configs;
    struct scrape_target_group *static_configs;
    size_t nstatic;
    struct scrape_file_sd_config *file_sd_configs;
    size_t nfile_sd;
    struct scrape_http_sd_config *http_sd_configs;
    size_t nhttp_sd;
    /* holoscope keys (metrics-mapping.md 3 and 4.2) */
    const char *model;   /* model of every target of the job, for engines with no model label */
    const char *backend; /* pins the backend, skipping detection; NULL = detect */
};

struct scrape_global {
    int64_t scrape_interval_ms;     /* default 1m */
    int64_t scrape_timeout_ms;      /* default 10s */
    int64_t evaluation_interval_ms; /* default 1m; read by the rule engine */
    struct hs_labels external_labels;
    uint64_t sample_limit, label_limit, label_name_length_limit, label_value_length_limit,
        body_size_limit; /* defaults for every job */
};

struct scrape_config {
    struct scrape_global global;
    struct scrape_job *jobs;
    size_t njobs;
    struct hs_arena arena; /* owns every string and array above */
};

/*
 * Read `global` and `scrape_configs` from 'root_map' (the top-level map of
 * 'doc'; other keys are the caller's and are not looked at).  Unknown keys
 * and invalid values are HS_EINVAL with "FILE:LINE:COL: ..." in err (line
 * and col also in err->line/col).  On success *out is a new configuration,
 * freed with scrape_config_free; on error *out is NULL.  'doc' is borrowed;
 * nothing in *out points into it.
 */
HS_MUST_CHECK int scrape_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *root_map,
                                      struct scrape_config **out, struct hs_err *err);
void scrape_config_free(struct scrape_config *cfg);

/* Find a job by name; NULL when absent. */
const struct scrape_job *scrape_config_job(const struct scrape_config *cfg, const char *name);

/*
 * Append a YAML rendering of 'cfg' to 'out', with every secret (passwords,
 * credentials, bearer tokens) printed as <secret>.  File paths are shown.
 */
HS_MUST_CHECK int scrape_config_format(const struct scrape_config *cfg, struct hs_buf *out);

/* ---- targets ----------------------------------------------------------- */

struct scrape_target {
    struct hs_labels labels;     /* final labels: no "__" names, instance set; sorted */
    struct hs_labels discovered; /* labels before relabelling; sorted */
    const char *address;         /* __address__ after relabelling */
    const char *scheme;          /* __scheme__ */
    const char *metrics_path;    /* __metrics_path__ */
    struct hs_labels params;     /* __param_<name> labels, name without the prefix; sorted */
    int64_t interval_ms;         /* __scrape_interval__ */
    int64_t timeout_ms;          /* __scrape_timeout__ */
    bool is_dropped;             /* dropped by relabelling or invalid */
    const char *error;           /* why an invalid target was dropped, else NULL */
};

struct scrape_target_list {
    struct scrape_target *v; /* active targets first, then dropped ones */
    size_t n;
    size_t nactive;
    struct hs_arena arena; /* owns everything above */
};

void scrape_target_list_init(struct scrape_target_list *tl);
void scrape_target_list_cleanup(struct scrape_target_list *tl);

/*
 * Build the targets of 'job' from its static_configs followed by 'groups'
 * (file_sd or other discovery results; may be NULL with ngroups 0), with
 * Prometheus' semantics: __address__, __scheme__, __metrics_path__,
 * __scrape_interval__, __scrape_timeout__, job, __param_<name> (first value)
 * and the job's `model`/`backend` keys as labels unless the group sets them,
 * then relabel_configs, then the "__" labels are removed and `instance`
 * defaults to __address__.  Targets a rule drops, or whose result is invalid
 * (no address, bad interval), are kept with is_dropped set.  Duplicate
 * targets (same final labels) appear once.  'tl' is reset first.
 * Returns HS_OK, HS_ENOMEM or HS_ETOOBIG.
 */
HS_MUST_CHECK int scrape_targets_build(const struct scrape_job *job,
                                       const struct scrape_target_group *groups, size_t ngroups,
                                       struct scrape_target_list *tl, struct hs_err *err);

/* ---- file-based discovery ------------------------------------------------ */

#define SCRAPE_SD_FILE_MAX_BYTES  (16u << 20) /* one file_sd file */
#define SCRAPE_SD_FILE_MAX_FILES  10000       /* files matched by a job's globs */
#define SCRAPE_SD_FILE_MAX_GROUPS 100000      /* groups in one file */

/*
 * Parse one file_sd file: a JSON (".json") or YAML (any other name) list of
 * {targets: [...], labels: {...}}.  Each group gets the label
 * __meta_filepath = 'path'.  Errors name the file and a position:
 * "PATH:LINE:COL: ...".  Groups and strings come from 'arena'.
 */
HS_MUST_CHECK int scrape_sd_file_parse(const char *path, const char *text, size_t len,
                                       struct hs_arena *arena, struct scrape_target_group **out,
                                       size_t *nout, struct hs_err *err);

/*
 * Parse the body of an http_sd_configs endpoint: a JSON list of
 * {targets, labels} as file_sd's JSON; each group gets __meta_url = 'url'.
 * Errors as scrape_sd_file_parse, naming the URL.
 */
HS_MUST_CHECK int scrape_sd_http_parse(const char *url, const char *text, size_t len,
                                       struct hs_arena *arena, struct scrape_target_group **out,
                                       size_t *nout, struct hs_err *err);

struct scrape_sd_file_entry;
/* The discovered state of one job's file_sd_configs. */
struct scrape_sd_file {
    struct scrape_sd_file_entry *files; /* one per matched file */
    size_t nfiles;
    struct scrape_target_group *groups; /* all groups of all files, rebuilt on change */
    size_t ngroups;
    size_t nerrors;         /* files that failed in the last refresh */
    struct hs_err last_err; /* the last such failure */
};

void scrape_sd_file_init(struct scrape_sd_file *sd);
void scrape_sd_file_cleanup(struct scrape_sd_file *sd);

/*
 * Re-expand the globs of 'cfgs' (nfile_sd entries of a job), re-read files
 * whose mtime or size changed, forget files that vanished.  A file that
 * fails to read or parse keeps its previous groups (none if it is new), is
 * counted in sd->nerrors and logged once per change.  *is_changed says
 * whether sd->groups changed.  Returns HS_OK, or HS_ENOMEM / HS_ETOOBIG.
 * Called by the scheduler at each refresh_interval (an mtime poll).
 */
HS_MUST_CHECK int scrape_sd_file_refresh(struct scrape_sd_file *sd,
                                         const struct scrape_file_sd_config *cfgs, size_t ncfgs,
                                         bool *is_changed, struct hs_err *err);

/* ---- engine detection ------------------------------------------------------ */

enum scrape_backend {
    SCRAPE_BACKEND_NONE = 0,
    SCRAPE_BACKEND_VLLM,
    SCRAPE_BACKEND_SGLANG,
    SCRAPE_BACKEND_TGI,
    SCRAPE_BACKEND_LLAMACPP,
    SCRAPE_BACKEND_TRITON,
    SCRAPE_BACKEND_TRTLLM,
    SCRAPE_BACKEND_DCGM,
    SCRAPE_BACKEND_NODE,
    SCRAPE_BACKEND_NVML,
    SCRAPE_BACKEND_LITELLM,
    SCRAPE_BACKEND_COUNT
};

/* Version hints (metrics-mapping.md 3), bits of scrape_detect.hints. */
enum scrape_detect_hint {
    SCRAPE_HINT_VLLM_V1_CURRENT = 1u << 0, /* vllm:kv_cache_usage_perc */
    SCRAPE_HINT_VLLM_LEGACY_KV = 1u << 1,  /* gpu_cache_usage_perc without the current name */
    SCRAPE_HINT_VLLM_V0 = 1u << 2,         /* num_requests_swapped / cpu_cache_usage_perc */
    SCRAPE_HINT_VLLM_ITL = 1u << 3,        /* inter_token_latency_seconds: >= 0.11 */
    SCRAPE_HINT_SGLANG_CURRENT = 1u << 4,  /* sglang:inter_token_latency_seconds */
    SCRAPE_HINT_SGLANG_OLDER = 1u << 5,    /* sglang:time_per_output_token_seconds */
    SCRAPE_HINT_LLAMACPP_OLDER = 1u << 6,  /* llamacpp:kv_cache_usage_ratio */
    SCRAPE_HINT_TRTLLM_BACKEND = 1u << 7,  /* nv_trt_llm_* on a Triton target */
    SCRAPE_HINT_TRTLLM_V1 = 1u << 8,       /* nv_trt_llm_v1_metrics */
};

#define SCRAPE_DETECT_MAX_FAMILIES 65536

/*
 * Detection state for one target.  Feed every family name of one scrape with
 * scrape_detect_add, then call scrape_detect_finish.  The family set is kept
 * (as hashes) so that the mapping can prefer current names over older ones.
 * A scrape loop that maps samples while it parses keeps two of these: the
 * previous scrape's result, used by the mapping, and a fresh one being fed;
 * it swaps them when a scrape succeeds (fam_sig says whether the family set
 * changed) and keeps the old one when a scrape fails (spec section 3, step 4).
 */
struct scrape_detect {
    uint32_t detected;  /* bit (1 << backend) per detected backend */
    uint32_t suspected; /* one prefix-only family: reported, not mapped */
    int primary;        /* the engine if one was detected, else the first detected backend */
    uint32_t hints;     /* enum scrape_detect_hint bits */
    uint32_t prefix_count[SCRAPE_BACKEND_COUNT];
    bool hallmark[SCRAPE_BACKEND_COUNT];
    uint64_t *fam; /* open-addressing set of family-name hashes (0 = empty) */
    size_t fam_cap, fam_n;
    uint64_t fam_sig; /* order-independent digest of the family set */
};

void scrape_detect_init(struct scrape_detect *d);
void scrape_detect_cleanup(struct scrape_detect *d);
/* Forget the families of the previous scrape (memory kept). */
void scrape_detect_reset(struct scrape_detect *d);
/* Add one family name (from a # TYPE line, or a sample name: the suffixes
 * _bucket, _sum, _count, _total, _created are stripped here when 'is_sample').
 * Repeated names are counted once.  HS_ENOMEM, or HS_ETOOBIG past
 * SCRAPE_DETECT_MAX_FAMILIES. */
HS_MUST_CHECK int scrape_detect_add(struct scrape_detect *d, const char *name, size_t len,
                                    bool is_sample);
/* Decide detected / suspected / primary from what was added. */
void scrape_detect_finish(struct scrape_detect *d);
/* Pin the backend from configuration: detection result is that one backend. */
void scrape_detect_pin(struct scrape_detect *d, int backend);
/* Whether the family 'name' was added since the last reset. */
bool scrape_detect_has_family(const struct scrape_detect *d, const char *name);

/* "vllm", "sglang", ... ("" for NONE); parse returns SCRAPE_BACKEND_NONE for unknown. */
const char *scrape_backend_name(int backend);
int scrape_backend_parse(const char *s);

/* ---- unified mapping ---------------------------------------------------------- */

/* Unified samples one scraped sample can yield (a few rules may fire). */
#define SCRAPE_MAP_MAX_OUT 4

struct scrape_unified_sample {
    const char *name;        /* unified metric name, with _bucket/_sum/_count for histograms */
    struct hs_labels labels; /* sorted; from the arena or borrowed from the input */
    double value;            /* converted to base units */
};

struct scrape_mapping;

/*
 * Per-scrape accumulator for the few unified series computed from several
 * samples of one scrape (dcgm-exporter memory limit = FB_FREE + FB_USED +
 * FB_RESERVED; Triton TensorRT-LLM KV usage = used / max and capacity =
 * max x tokens_per).  Parts are collected by scrape_mapping_apply and the
 * results emitted by scrape_mapping_flush at the end of the scrape.
 * Memory comes from the arena given to init (the per-scrape arena).
 */
#define SCRAPE_MAP_MAX_PENDING 4096 /* distinct combined series in one scrape */
struct scrape_map_pending;
struct scrape_map_acc {
    struct scrape_map_pending *v;
    size_t n, cap;
    struct hs_arena *arena;
};
void scrape_mapping_acc_init(struct scrape_map_acc *acc, struct hs_arena *arena);

/* Build the lookup over the built-in table.  Free with scrape_mapping_free. */
HS_MUST_CHECK int scrape_mapping_new(struct scrape_mapping **out, struct hs_err *err);
void scrape_mapping_free(struct scrape_mapping *m);
/* Number of rules in the table (for tests and `holoscope check`). */
size_t scrape_mapping_size(const struct scrape_mapping *m);

/*
 * The unified samples for one scraped sample: 'name' ('name_len' bytes, not
 * necessarily NUL-terminated; the sample's own name "x_bucket", "x_total",
 * ...), 'labels' (the sample's labels, sorted, without target labels) and
 * 'value'.  Rules fire only for backends detected in 'd' (NULL: every
 * backend), and a rule for an older metric name is skipped when 'd' saw its
 * current name.  Output labels: the sample's labels with the source's
 * identity labels normalised (model_name -> model, engine -> dp_rank,
 * finished_reason -> finish_reason, UUID -> gpu_uuid, modelName ->
 * gpu_model, ...), plus `backend`; `model` is 'model' (the target's
 * configured model, may be NULL) when given, else the source's model label.
 * Histogram `le` is converted with the value.  Strings and arrays come from
 * 'arena'.  Writes up to SCRAPE_MAP_MAX_OUT samples to 'out' and their count
 * to *nout.  Samples that are parts of a combined series are recorded in
 * 'acc' (may be NULL: combined series are then not produced).  Returns
 * HS_OK, HS_ENOMEM, or HS_ETOOBIG past SCRAPE_MAP_MAX_PENDING.  O(1) in the
 * table size.
 */
HS_MUST_CHECK int scrape_mapping_apply(const struct scrape_mapping *m,
                                       const struct scrape_detect *d, const char *name,
                                       size_t name_len, const struct hs_labels *labels,
                                       double value, const char *model, struct hs_arena *arena,
                                       struct scrape_map_acc *acc,
                                       struct scrape_unified_sample *out, size_t *nout,
                                       struct hs_err *err);

/*
 * The model of a sample by the precedence of metrics-mapping.md 4.2: the
 * target's configured model ('configured', may be NULL), else the first
 * non-empty of the labels model_name, model, gen_ai_request_model.  NULL
 * when there is none.  Borrowed from the arguments.  For the `model` label
 * a scrape loop puts on raw samples.
 */
const char *scrape_model_of(const struct hs_labels *labels, const char *configured);

/*
 * Emit the combined series whose required parts were all seen: up to
 * 'max_out' samples into 'out', their count in *nout, then empty 'acc'.
 * Labels are those of the parts (normalised as above).  Returns HS_OK, or
 * HS_ETOOBIG when 'max_out' was too small (the first max_out are written).
 */
HS_MUST_CHECK int scrape_mapping_flush(const struct scrape_mapping *m, struct scrape_map_acc *acc,
                                       struct scrape_unified_sample *out, size_t max_out,
                                       size_t *nout, struct hs_err *err);

#endif
