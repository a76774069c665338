/*
 * rules.h - Prometheus-format rule files: loading and validation, alert
 * templates, evaluation of recording and alerting rules, the alert state
 * machine, and the JSON of /api/v1/rules and /api/v1/alerts.
 *
 * A rule file holds groups (name, interval, limit, rules); a rule is either
 * 'record' or 'alert' with expr, for, keep_firing_for, labels and
 * annotations, as in Prometheus.  Loading validates like
 * `promtool check rules`: every problem is reported as "FILE:LINE:COL: ...".
 *
 * Evaluation: each group is evaluated every 'interval' at timestamps aligned
 * to a per-group offset (hash of file and group name modulo the interval),
 * so consecutive evaluations are exactly one interval apart.  Recording rule
 * results and the ALERTS / ALERTS_FOR_STATE series are written through a
 * sink (the tsdb appender in production, promql_mem in tests); a series
 * written by the previous evaluation and missing from this one gets a
 * staleness marker.
 *
 * Alerts go inactive -> pending -> firing -> inactive (resolved) as in
 * Prometheus: pending once the expression returns the series, firing after
 * 'for', kept firing 'keep_firing_for' after the series disappears, kept
 * 15 minutes as resolved for notification, then dropped.
 *
 * Notifications (rules_notifier) go to Alertmanagers (API v2) and webhooks
 * (Alertmanager's webhook v4 payload) from a sender thread of their own (or
 * through a send callback in tests), with bounded queues, retries and
 * backoff.
 *
 * Threading: a rules_set is owned by one thread until handed to a manager.
 * A rules_manager locks itself: rules_manager_update, the JSON writers and
 * the eval functions may be called from any thread; the JSON writers never
 * wait for a running query (only for one rule's state step).
 * rules_manager_start runs evaluation on one thread of its own; a notifier
 * with the HTTP sender runs its own thread and is fed through a locked
 * queue.  Templates are pure functions, callable anywhere.
 */
#ifndef HS_RULES_RULES_H
#define HS_RULES_RULES_H

#include "core/core.h"
#include "http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct promql_engine;
struct promql_storage;
struct promql_mem;
struct tsdb;

/* Ceilings on what one rule file may hold. */
#define RULES_MAX_FILE_BYTES      (16u << 20)
#define RULES_MAX_TEMPLATE_BYTES  65536u
#define RULES_MAX_TEMPLATE_OUTPUT 65536u
/* How long a resolved alert is kept for notification (Prometheus' 15m). */
#define RULES_RESOLVED_RETENTION_MS (15 * 60 * 1000)

/* ---- templates ------------------------------------------------------------
 * A subset of Go's text/template as Prometheus uses it in labels and
 * annotations: text with {{ ... }} actions ({{- and -}} trim spaces,
 * {{/ * comment * /}}).  An action is a pipeline of commands separated by
 * '|'; the result of one command is the last argument of the next.
 * Operands: $value, .Value, $labels, $labels.NAME, .Labels.NAME,
 * $externalLabels.NAME, .ExternalLabels.NAME, "string", `raw string`,
 * numbers.  Functions: humanize, humanize1024, humanizeDuration,
 * humanizePercentage, humanizeTimestamp, printf, toUpper, toLower, title,
 * query is not supported.  A missing label expands to "".
 */

/* Checks that 'text' is a valid template; on error returns HS_EPARSE with
 * a message "template: ...". */
HS_MUST_CHECK int rules_template_check(const char *text, struct hs_err *err);

/*
 * Expands 'text' into 'out' (appended).  'labels' and 'ext_labels' are
 * borrowed (either may be NULL); 'value' is $value.  Output is capped at
 * RULES_MAX_TEMPLATE_OUTPUT bytes (HS_ETOOBIG).  On error 'out' may hold a
 * partial expansion.
 */
HS_MUST_CHECK int rules_template_expand(const char *text, const struct hs_labels *labels,
                                        const struct hs_labels *ext_labels, double value,
                                        struct hs_buf *out, struct hs_err *err);

/* ---- rule files ------------------------------------------------------------ */

enum rules_kind { RULES_KIND_RECORD = 1, RULES_KIND_ALERT = 2 };

/* A name/value pair of a rule's labels or annotations (value may be a template). */
struct rules_kv {
    char *name;
    char *value;
};

/* One rule as loaded; strings owned by the rule set. */
/* Group 'labels' are merged into each rule's labels at load time (the
 * rule's own value wins). */
struct rules_rule {
    int kind;       /* enum rules_kind */
    char *name;     /* record: metric name; alert: alert name */
    char *expr;     /* PromQL text as written */
    int64_t for_ms; /* alert only */
    int64_t keep_firing_for_ms;
    struct rules_kv *labels; /* sorted by name */
    size_t nlabels;
    struct rules_kv *annotations; /* sorted by name */
    size_t nannotations;
    int line;                       /* position of the rule in its file */
    struct rules_rule_state *state; /* evaluation state; NULL until handed to a manager */
};

struct rules_group {
    char *name;
    char *file;
    int64_t interval_ms;     /* 0 in the file: the manager's default */
    int64_t limit;           /* 0 = none: series per rule (Prometheus' 'limit') */
    int64_t query_offset_ms; /* rules query (and write) at t - query_offset */
    struct rules_rule *rules;
    size_t nrules;
    struct rules_group_state *state;
};

/* Groups from any number of files. */
struct rules_set {
    struct rules_group *groups;
    size_t ngroups;
    struct hs_arena arena; /* owns every string and array above */
};

/* An empty set; NULL on ENOMEM.  Free with rules_set_free. */
struct rules_set *rules_set_new(void);
void rules_set_free(struct rules_set *s);

/* Called once per problem found, with "FILE:LINE:COL: message". */
typedef void rules_diag_fn(void *arg, const char *msg);

/*
 * Parses and validates one rule file's text ('path' names it in messages)
 * and appends its groups to 's'.  Every problem found is passed to 'diag'
 * (may be NULL); 'err' gets the first.  Returns HS_OK, or HS_EPARSE when
 * anything was wrong (then nothing of this file is added), HS_ETOOBIG over
 * RULES_MAX_FILE_BYTES, HS_ENOMEM.  Group names must be unique per file.
 */
HS_MUST_CHECK int rules_set_add_text(struct rules_set *s, const char *path, const char *text,
                                     size_t len, rules_diag_fn *diag, void *arg,
                                     struct hs_err *err);
/* As rules_set_add_text with the contents of the file 'path'. */
HS_MUST_CHECK int rules_set_add_file(struct rules_set *s, const char *path, rules_diag_fn *diag,
                                     void *arg, struct hs_err *err);

/*
 * Adds every file matching the glob 'pattern' (sorted, as glob(3)); a
 * pattern without wildcards must name an existing file, one with
 * wildcards may match nothing.  Stops at the first file with problems
 * (all of its problems reported through 'diag').
 */
HS_MUST_CHECK int rules_set_add_glob(struct rules_set *s, const char *pattern, rules_diag_fn *diag,
                                     void *arg, struct hs_err *err);

/* Counts of a set's rules. */
void rules_set_count(const struct rules_set *s, size_t *nrecord, size_t *nalert);

/* The default rule pack embedded in the binary (rules/default.yml):
 * borrowed, NUL-terminated. */
const char *rules_default_pack(size_t *len);
/* Adds the default pack to 's' under the name "<embedded>/default.yml". */
HS_MUST_CHECK int rules_set_add_default(struct rules_set *s, struct hs_err *err);

/* ---- sinks: where evaluation writes its samples -------------------------- */

/* One batch per group evaluation: begin, any number of add, then commit. */
struct rules_sink_ops {
    HS_MUST_CHECK int (*begin)(void *ctx, void **batch, struct hs_err *err);
    /* 'ls' is borrowed for the call. */
    HS_MUST_CHECK int (*add)(void *batch, const struct hs_labels *ls, int64_t t_ms, double v,
                             struct hs_err *err);
    /* Ends the batch (also after an add failed); frees it. */
    HS_MUST_CHECK int (*commit)(void *batch, struct hs_err *err);
};
struct rules_sink {
    const struct rules_sink_ops *ops;
    void *ctx;
};
/* A sink appending to 'db' through tsdb appenders (db borrowed). */
void rules_tsdb_sink(struct tsdb *db, struct rules_sink *out);
/* A sink appending to 'm' (borrowed; single-threaded use only). */
void rules_mem_sink(struct promql_mem *m, struct rules_sink *out);

/* ---- the manager: evaluation, state, API ---------------------------------- */

struct rules_notifier;

struct rules_manager_opts {
    struct promql_engine *engine;         /* borrowed */
    const struct promql_storage *storage; /* borrowed; what expressions read */
    struct rules_sink sink;               /* where results go */
    int64_t default_interval_ms;          /* groups without interval; default 60000 */
    int64_t outage_tolerance_ms;          /* for-state restore window; default 3600000 */
    struct hs_labels external_labels;     /* copied; may be empty */
    struct rules_notifier *notifier;      /* borrowed; NULL: no notifications */
    int64_t resend_delay_ms;              /* firing alerts re-sent this often; default 60000 */
    const char *generator_url;            /* copied; base of generatorURL; may be NULL */
};

/* A pending or firing alert (or resolved, within retention). */
enum rules_alert_state { RULES_INACTIVE = 0, RULES_PENDING = 1, RULES_FIRING = 2 };

struct rules_manager;
/* NULL on ENOMEM (err set).  'o' is copied. */
struct rules_manager *rules_manager_new(const struct rules_manager_opts *o, struct hs_err *err);
/* Stops the loop if running and frees everything, including the set. */
void rules_manager_free(struct rules_manager *m);

/*
 * Replaces the rules with 's' (takes ownership, also on error).  State of a
 * rule whose group (file and name), kind, name, expr, for, keep_firing_for and
 * labels are unchanged is carried over: active alerts keep their activeAt.
 */
HS_MUST_CHECK int rules_manager_update(struct rules_manager *m, struct rules_set *s,
                                       struct hs_err *err);

/* The aligned evaluation time of group 'gi' at or before 'now_ms'. */
int64_t rules_manager_group_eval_time(struct rules_manager *m, size_t gi, int64_t now_ms);

/*
 * Evaluates every rule of group 'gi' at exactly t_ms, in order, and writes
 * the results through the sink.  Rule failures are recorded in the rule's
 * health and counted, not returned; the return is an error only for a bad
 * index or a sink failure.  The first evaluation of a group after
 * rules_manager_update with for-state restore enabled restores activeAt of
 * pending alerts from ALERTS_FOR_STATE.
 */
HS_MUST_CHECK int rules_manager_eval_group(struct rules_manager *m, size_t gi, int64_t t_ms,
                                           struct hs_err *err);
/* Evaluates every group at its aligned time at or before now_ms. */
HS_MUST_CHECK int rules_manager_eval_all(struct rules_manager *m, int64_t now_ms,
                                         struct hs_err *err);

/* Starts / stops the evaluation thread (groups at their own intervals). */
HS_MUST_CHECK int rules_manager_start(struct rules_manager *m, struct hs_err *err);
void rules_manager_stop(struct rules_manager *m);

/* Number of groups currently loaded. */
size_t rules_manager_group_count(struct rules_manager *m);

/* A copy of one alert for inspection (tests, notifier). */
struct rules_alert_info {
    int state; /* enum rules_alert_state */
    int64_t active_at_ms;
    int64_t fired_at_ms;    /* 0 when never fired */
    int64_t resolved_at_ms; /* 0 while active */
    double value;
};
/*
 * Looks up the alert of rule 'alertname' whose labels (alert labels, i.e.
 * with alertname and rule labels) hash equal to 'labels'.  HS_ENOTFOUND
 * when there is none.
 */
HS_MUST_CHECK int rules_manager_alert_get(struct rules_manager *m, const char *alertname,
                                          const struct hs_labels *labels,
                                          struct rules_alert_info *out, struct hs_err *err);
/* Number of alerts of rule 'alertname' in 'state'. */
size_t rules_manager_alert_count(struct rules_manager *m, const char *alertname, int state);
/* Evaluation failures so far, summed over every rule. */
uint64_t rules_manager_failures(struct rules_manager *m);

/* Filters of /api/v1/rules: type "alert", "record" or NULL for both. */
struct rules_api_filter {
    const char *type;
    bool exclude_alerts;
};
/* Appends the "data" object of /api/v1/rules: {"groups":[...]} as Prometheus. */
HS_MUST_CHECK int rules_manager_rules_json(struct rules_manager *m,
                                           const struct rules_api_filter *f, struct hs_buf *out);
/* Appends the "data" object of /api/v1/alerts: {"alerts":[...]}. */
HS_MUST_CHECK int rules_manager_alerts_json(struct rules_manager *m, struct hs_buf *out);

/* ---- notifications: Alertmanager API v2 and webhook v4 ----------------------
 * The manager hands every alert that needs sending (firing: at most once per
 * resend_delay; resolved: once more when it resolves, then per resend_delay
 * during retention) to the notifier after each group evaluation.  Each
 * target has its own bounded queue; a full queue drops its oldest alerts
 * (counted).  A batch is sent either through a caller-supplied function
 * (a fake in tests) or, when no function is given, by the built-in HTTP
 * sender: a thread of the notifier's own with an event loop and one http
 * client per target, so a slow receiver never delays rule evaluation nor
 * the other receivers.  A failed batch is retried with exponential backoff
 * and dropped (counted) after max_retries.  Webhook batches hold the alerts
 * of one alertname (one group per payload, Alertmanager's group_by
 * [alertname]).  Bearer tokens, passwords and header values are sent only,
 * never logged or printed.
 */

enum rules_notify_format {
    RULES_NOTIFY_AM_V2 = 1,     /* POST <url>/api/v2/alerts, a JSON array of alerts */
    RULES_NOTIFY_WEBHOOK_V4 = 2 /* POST <url>, Alertmanager's webhook v4 message */
};

/* An extra request header (HTTP sender); strings borrowed until
 * rules_notifier_new returns. */
struct rules_notify_header {
    const char *name;
    const char *value; /* may be a secret: never logged */
};

struct rules_notify_target {
    const char *url;          /* copied; for AM_V2 the Alertmanager base URL */
    int format;               /* enum rules_notify_format */
    const char *bearer_token; /* copied; secret; may be NULL */
    const char *name;         /* receiver name in metrics and in the webhook "receiver" field;
                                 copied; NULL = the URL without credentials and query */
    const struct rules_notify_header *headers; /* copied; HTTP sender only */
    size_t nheaders;
    const char *basic_auth_user;     /* copied; HTTP sender only; NULL = none */
    const char *basic_auth_password; /* copied; secret */
    int64_t timeout_ms;              /* whole request (HTTP sender); 0 = 10 s */
    bool skip_resolved;              /* never send resolved alerts (send_resolved: false) */
    struct http_client_tls tls;      /* https targets (HTTP sender); strings borrowed */
};

/*
 * Sends one request body (JSON) to 'url' with an optional bearer token.
 * Returns HS_OK when the receiver answered 2xx, an error otherwise.
 * Called from the thread that runs rules_notifier_run (one at a time).
 */
typedef int rules_send_fn(void *arg, const char *url, const char *bearer_token, const char *body,
                          size_t len, struct hs_err *err);

struct rules_notifier_opts {
    const struct rules_notify_target *targets; /* copied */
    size_t ntargets;
    size_t queue_capacity;      /* alerts per target; default 10000 */
    size_t max_batch;           /* alerts per request; default 64 */
    int max_retries;            /* default 3 */
    int64_t backoff_initial_ms; /* default 500, doubled per retry */
    int64_t backoff_max_ms;     /* default 30000 */
    const char *external_url;   /* copied; webhook externalURL; may be NULL */
    rules_send_fn *send;        /* NULL: the built-in HTTP sender on its own thread */
    void *send_arg;
};

struct rules_notifier_stats {
    uint64_t sent;    /* alerts delivered */
    uint64_t dropped; /* alerts dropped from a full queue */
    uint64_t failed;  /* alerts dropped after max_retries */
    uint64_t errors;  /* failed send attempts */
    size_t queued;    /* alerts waiting now, over all targets */
};

/*
 * Creates the notifier; with opts->send NULL it also creates the http
 * clients (a bad TLS file is HS_EINVAL) and starts the sender thread.
 * NULL with err set on a bad option, ENOMEM, or a thread that cannot start.
 */
struct rules_notifier *rules_notifier_new(const struct rules_notifier_opts *o, struct hs_err *err);
/* Stops the sender thread (requests in flight are cancelled; their alerts
 * are not sent) and frees everything.  NULL is a no-op.  Must be called
 * after the manager that uses the notifier is freed. */
void rules_notifier_free(struct rules_notifier *n);

/* One alert as handed to the notifier; everything borrowed for the call. */
struct rules_notify_alert {
    const struct hs_labels *labels;
    const struct hs_labels *annotations;
    int64_t starts_at_ms;
    int64_t ends_at_ms;
    const char *generator_url; /* may be NULL */
};
/* Copies the alerts into every target's queue (resolved alerts skip
 * targets with skip_resolved) and wakes the sender thread.
 * Threading: any thread. */
HS_MUST_CHECK int rules_notifier_enqueue(struct rules_notifier *n,
                                         const struct rules_notify_alert *alerts, size_t count,
                                         struct hs_err *err);
/*
 * With a send function: sends what is due at now_ms: for each target whose
 * backoff has passed, one batch of up to max_batch alerts.  Returns the
 * number of requests attempted.  With the HTTP sender the thread does this
 * by itself and the call returns 0.  Threading: one caller at a time.
 */
int rules_notifier_run(struct rules_notifier *n, int64_t now_ms);

/*
 * Replaces the targets with o->targets (HTTP sender only; the other options
 * keep their values).  Alerts queued for an old target whose URL and format
 * a new one shares move to it (with its counters); a request in flight to
 * a replaced target is cancelled and its alerts are sent again by the new
 * one.  Waits until the sender thread has applied it.  On error (a bad
 * option or TLS file: HS_EINVAL; HS_ENOMEM) the targets are unchanged.
 * Threading: any thread but the sender's, never with rules_notifier_free.
 */
HS_MUST_CHECK int rules_notifier_update(struct rules_notifier *n,
                                        const struct rules_notifier_opts *o, struct hs_err *err);
void rules_notifier_get_stats(struct rules_notifier *n, struct rules_notifier_stats *out);

/* Counters of one target (receiver). */
struct rules_notifier_target_stats {
    const char *name;       /* receiver name; valid until the next update or free */
    int format;             /* enum rules_notify_format */
    uint64_t sent;          /* alerts delivered */
    uint64_t errors;        /* failed send attempts */
    uint64_t dropped;       /* alerts dropped: full queue, or given up after retries */
    size_t queued;          /* alerts waiting now */
    double latency_sum_s;   /* summed duration of send attempts */
    uint64_t latency_count; /* send attempts timed */
};
size_t rules_notifier_target_count(struct rules_notifier *n);
/* Copies the counters of target 'i' (< rules_notifier_target_count). Any thread. */
void rules_notifier_get_target_stats(struct rules_notifier *n, size_t i,
                                     struct rules_notifier_target_stats *out);
/*
 * An api_collector_fn for /metrics ('n' is the struct rules_notifier *):
 * holoscope_notifications_{sent,errors,dropped}_total{receiver,type},
 * holoscope_notifications_queue_length{receiver,type},
 * holoscope_notifications_queue_capacity,
 * holoscope_notifications_alertmanagers_discovered and
 * holoscope_notifications_latency_seconds{receiver,type} (summary sum and
 * count), after Prometheus' prometheus_notifications_*.  Any thread.
 */
int rules_notifier_metrics(void *n, struct hs_buf *out);

/* ---- alerting configuration (the `alerting:` section of holoscope.yml) ----
 *   alerting:
 *     resend_delay: 1m            # firing alerts re-sent this often
 *     external_url: http://holoscope.example:9190   # generatorURL, webhook externalURL
 *     external_labels: {cluster: eu-1}
 *     queue_capacity: 10000       # alerts per receiver
 *     max_batch: 64               # alerts per request
 *     max_retries: 3
 *     alertmanagers:
 *       - url: http://127.0.0.1:9093        # or: static_configs: [{targets: [host:port]}]
 *         scheme: http                      # with static_configs
 *         path_prefix: /                    # with static_configs
 *         name: am-1, timeout: 10s, bearer_token: ..., basic_auth: {username, password},
 *         headers: {X-Scope-OrgID: team}, tls_config: {ca_file, cert_file, key_file,
 *         server_name, insecure_skip_verify}
 *     webhooks:
 *       - url: https://hooks.example/x
 *         send_resolved: true                # default true
 *         (name, timeout, bearer_token, basic_auth, headers, tls_config as above)
 * Receiver names (name, else the URL) must be unique; a named
 * static_configs entry names each Alertmanager NAME/HOST:PORT.  Unknown
 * keys and bad values are errors naming FILE:LINE:COL.
 */
struct rules_alerting_config {
    struct rules_notify_target *targets; /* alertmanagers first, then webhooks */
    size_t ntargets;
    int64_t resend_delay_ms;          /* default 60000 */
    const char *external_url;         /* NULL when not set */
    struct hs_labels external_labels; /* sorted */
    size_t queue_capacity;            /* 0 = the notifier's default */
    size_t max_batch;
    int max_retries;
    struct hs_arena arena; /* owns every string and array above */
};

/*
 * Parses the `alerting:` map 'node' of document 'd' (NULL or null: no
 * alerting, an empty config).  On success *out is set (free with
 * rules_alerting_config_free); on error nothing is allocated and err names
 * FILE:LINE:COL.  Returns HS_OK, HS_EINVAL or HS_ENOMEM.
 */
HS_MUST_CHECK int rules_alerting_config_parse(const struct hs_ydoc *d, const struct hs_ynode *node,
                                              struct rules_alerting_config **out,
                                              struct hs_err *err);
void rules_alerting_config_free(struct rules_alerting_config *c);
/* True when 'a' and 'b' (either may be NULL: no section) configure the same
 * receivers and settings; the same receivers (targets, in order); the same
 * settings (everything but the receivers). */
bool rules_alerting_config_equal(const struct rules_alerting_config *a,
                                 const struct rules_alerting_config *b);
bool rules_alerting_receivers_equal(const struct rules_alerting_config *a,
                                    const struct rules_alerting_config *b);
bool rules_alerting_settings_equal(const struct rules_alerting_config *a,
                                   const struct rules_alerting_config *b);
/* Fills notifier options from 'c' (borrowed; must outlive the call of
 * rules_notifier_new) with the HTTP sender. */
void rules_alerting_notifier_opts(const struct rules_alerting_config *c,
                                  struct rules_notifier_opts *out);

/* Appends the JSON bodies (exposed for tests and for the API). */
HS_MUST_CHECK int rules_notify_am_v2_json(const struct rules_notify_alert *alerts, size_t n,
                                          struct hs_buf *out);
HS_MUST_CHECK int rules_notify_webhook_v4_json(const struct rules_notify_alert *alerts, size_t n,
                                               const char *external_url, struct hs_buf *out);
/* As rules_notify_webhook_v4_json with the "receiver" field set to
 * 'receiver' (NULL: "holoscope"). */
HS_MUST_CHECK int rules_notify_webhook_v4_json_for(const struct rules_notify_alert *alerts,
                                                   size_t n, const char *external_url,
                                                   const char *receiver, struct hs_buf *out);

#endif
