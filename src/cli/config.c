/*
 * config.c - holoscope's configuration: one schema, three sources.
 *
 * Each scalar setting is one row of 'schema' below: its YAML path, its type,
 * where it lives in struct cli_config and its help line.  The flag and the
 * environment variable are derived from the path, so the three can never
 * drift apart:
 *     http.max_header_bytes  ->  --http.max_header_bytes (or --http.max-header-bytes)
 *                            ->  HOLOSCOPE_HTTP_MAX_HEADER_BYTES
 * A few rows add a short alias flag (--data for data_dir).
 *
 * Sources apply in order defaults < file < environment < flags.  Unknown
 * keys, wrong types and bad values are errors naming file:line:col, the
 * variable or the flag.  Sections owned by modules not built yet are unknown
 * keys too, so a typo is never silently ignored.
 */
#include "cli/internal.h"

#include "gateway/capture.h"
#include "gateway/gateway.h"
#include "rules/rules.h"
#include "scrape/scrape_config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ftype {
    F_STR,
    F_BOOL,
    F_INT,
    F_DURATION,
    F_BYTES,
    F_LOGLEVEL,
    F_LOGFORMAT,
    F_FSYNC,
    F_STRLIST
};

struct field {
    const char *path;  /* YAML path */
    const char *alias; /* extra flag name without dashes, or NULL */
    int type;          /* enum ftype */
    size_t off;        /* offset in struct cli_config */
    const char *help;
};

#define OFF(m) offsetof(struct cli_config, m)

/* A list setting is a pointer followed by its count. */
_Static_assert(offsetof(struct cli_config, nrule_files) ==
                   offsetof(struct cli_config, rule_files) + sizeof(const char **),
               "rule_files must be followed by its count");

static const struct field schema[] = {
    {"listen", NULL, F_STR, OFF(listen),
     "HOST:PORT the API, dashboard and /metrics listen on (default 127.0.0.1:9190)"},
    {"allow_remote", NULL, F_BOOL, OFF(allow_remote),
     "allow listening on a non-loopback address (default false)"},
    {"data_dir", "data", F_STR, OFF(data_dir), "storage directory (default ./data)"},
    {"log.level", NULL, F_LOGLEVEL, OFF(log_level), "debug, info, warn or error (default info)"},
    {"log.format", NULL, F_LOGFORMAT, OFF(log_format), "logfmt or json (default logfmt)"},
    {"http.max_connections", NULL, F_INT, OFF(http_max_connections),
     "open connections at most; more get 503 (default 1024)"},
    {"http.max_header_bytes", NULL, F_BYTES, OFF(http_max_header_bytes),
     "request line and headers at most; more get 431 (default 16KiB)"},
    {"http.max_body_bytes", NULL, F_BYTES, OFF(http_max_body_bytes),
     "request body at most; more get 413 (default 16MiB)"},
    {"http.header_timeout", NULL, F_DURATION, OFF(http_header_timeout_ms),
     "time to receive a request's headers; then 408 (default 10s)"},
    {"http.read_timeout", NULL, F_DURATION, OFF(http_read_timeout_ms),
     "time to receive a request body; then 408 (default 30s)"},
    {"http.write_timeout", NULL, F_DURATION, OFF(http_write_timeout_ms),
     "time a response may wait on a client that does not read (default 60s)"},
    {"http.idle_timeout", NULL, F_DURATION, OFF(http_idle_timeout_ms),
     "keep-alive connections idle this long are closed (default 2m)"},
    {"shutdown_timeout", NULL, F_DURATION, OFF(shutdown_timeout_ms),
     "on SIGTERM/SIGINT, time allowed for in-flight requests (default 30s)"},
    {"storage.retention", NULL, F_DURATION, OFF(retention_ms),
     "keep samples this long (default 15d)"},
    {"storage.retention_size", NULL, F_BYTES, OFF(retention_bytes),
     "keep at most this many bytes of blocks; 0 = no limit (default 0)"},
    {"storage.wal.fsync", NULL, F_FSYNC, OFF(wal_fsync),
     "interval (fsync every fsync_interval) or batch (fsync every commit) (default interval)"},
    {"storage.wal.fsync_interval", NULL, F_DURATION, OFF(wal_fsync_interval_ms),
     "WAL fsync period with fsync: interval (default 1s)"},
    {"storage.out_of_order_window", NULL, F_DURATION, OFF(ooo_window_ms),
     "accept samples this much older than a series' newest (default 0s)"},
    {"storage.block_duration", NULL, F_DURATION, OFF(block_duration_ms),
     "span of the head before it is cut into a block (default 2h)"},
    {"query.timeout", NULL, F_DURATION, OFF(query_timeout_ms),
     "longest a query may run (default 2m)"},
    {"query.lookback_delta", NULL, F_DURATION, OFF(query_lookback_ms),
     "how far back an instant selector looks for a sample (default 5m)"},
    {"query.max_samples", NULL, F_INT, OFF(query_max_samples),
     "samples one query may hold in memory (default 50000000)"},
    {"query.max_concurrency", NULL, F_INT, OFF(query_workers),
     "queries run at the same time (default 2)"},
    {"query.max_queued", NULL, F_INT, OFF(query_max_queued),
     "queries waiting beyond the running ones; more get 503 (default 16)"},
    {"api.enable_admin", NULL, F_BOOL, OFF(enable_admin_api),
     "enable /api/v1/admin/tsdb/* (series deletion) (default false)"},
    {"collectors.host", NULL, F_BOOL, OFF(collect_host),
     "collect host metrics (CPU, memory, disks, network) (default true)"},
    {"collectors.gpu", NULL, F_BOOL, OFF(collect_gpu),
     "collect GPU metrics through NVML when a driver is present (default true)"},
    {"collectors.interval", NULL, F_DURATION, OFF(collect_interval_ms),
     "time between two collections (default 15s)"},
    {"collectors.nvml_library", NULL, F_STR, OFF(nvml_library),
     "NVML library to load (default libnvidia-ml.so.1)"},
    {"rule_files", NULL, F_STRLIST, OFF(rule_files),
     "globs of Prometheus-format rule files (a YAML list; comma-separated in a flag or the "
     "environment) (default none)"},
    {"rules.default_pack", NULL, F_BOOL, OFF(rules_default_pack),
     "load the embedded LLM rule pack (holoscope rules default prints it) (default true)"},
    {"rules.evaluation_interval", NULL, F_DURATION, OFF(rules_interval_ms),
     "evaluation interval of rule groups that set none (default 1m)"},
};

void cli_config_init(struct cli_config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen = "127.0.0.1:9190";
    c->data_dir = "./data";
    c->log_level = HS_LOG_INFO;
    c->log_format = HS_LOG_LOGFMT;
    c->http_max_connections = 1024;
    c->http_max_header_bytes = 16 << 10;
    c->http_max_body_bytes = 16 << 20;
    c->http_header_timeout_ms = 10000;
    c->http_read_timeout_ms = 30000;
    c->http_write_timeout_ms = 60000;
    c->http_idle_timeout_ms = 120000;
    c->shutdown_timeout_ms = 30000;
    c->retention_ms = 15 * 86400000LL;
    c->wal_fsync = CLI_WAL_FSYNC_INTERVAL;
    c->wal_fsync_interval_ms = 1000;
    c->block_duration_ms = 2 * 3600000LL;
    c->query_timeout_ms = 120000;
    c->query_lookback_ms = 300000;
    c->query_max_samples = 50000000;
    c->query_workers = 2;
    c->query_max_queued = 16;
    c->collect_host = true;
    c->collect_gpu = true;
    c->collect_interval_ms = 15000;
    c->nvml_library = "libnvidia-ml.so.1";
    c->rules_default_pack = true;
    c->rules_interval_ms = 60000;
    hs_arena_init(&c->strings, 4096, 0);
}

static void free_capture(struct cli_config *c)
{
    if (c->capture != NULL)
        capture_config_free(c->capture);
    hs_free(c->capture);
    c->capture = NULL;
}

void cli_config_cleanup(struct cli_config *c)
{
    scrape_config_free(c->scrape);
    c->scrape = NULL;
    gw_config_free(c->gateway);
    c->gateway = NULL;
    rules_alerting_config_free(c->alerting);
    c->alerting = NULL;
    cli_pricing_free(c->pricing);
    c->pricing = NULL;
    free_capture(c);
    hs_ydoc_free(c->doc);
    c->doc = NULL;
    hs_arena_cleanup(&c->strings);
}

/* ---- typed assignment from text (env and flags) ---- */

static int set_from_text(struct cli_config *c, const struct field *f, const char *text,
                         const char *where, struct hs_err *err)
{
    char *base = (char *)c + f->off;
    switch (f->type) {
    case F_STR: {
        if (*text == '\0')
            return hs_err_set(err, HS_EINVAL, "%s: must not be empty", where);
        char *copy = hs_arena_strndup(&c->strings, text, strlen(text));
        if (copy == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        *(const char **)base = copy;
        return HS_OK;
    }
    case F_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1"))
            *(bool *)base = true;
        else if (!strcmp(text, "false") || !strcmp(text, "0"))
            *(bool *)base = false;
        else
            return hs_err_set(err, HS_EINVAL, "%s: expected true or false, got \"%s\"", where,
                              text);
        return HS_OK;
    case F_INT:
        if (hs_parse_i64(text, (int64_t *)base) != HS_OK || *(int64_t *)base < 0)
            return hs_err_set(err, HS_EINVAL, "%s: expected a non-negative integer, got \"%s\"",
                              where, text);
        return HS_OK;
    case F_DURATION:
        if (hs_parse_duration_ms(text, (int64_t *)base) != HS_OK)
            return hs_err_set(err, HS_EINVAL,
                              "%s: expected a duration like 30s, 5m or 1h30m, got \"%s\"", where,
                              text);
        return HS_OK;
    case F_BYTES:
        if (hs_parse_bytes(text, (uint64_t *)base) != HS_OK)
            return hs_err_set(err, HS_EINVAL, "%s: expected a size like 512MB or 4GiB, got \"%s\"",
                              where, text);
        return HS_OK;
    case F_LOGLEVEL:
        if (hs_log_level_parse(text, (int *)base) != HS_OK)
            return hs_err_set(err, HS_EINVAL, "%s: expected debug, info, warn or error, got \"%s\"",
                              where, text);
        return HS_OK;
    case F_LOGFORMAT:
        if (hs_log_format_parse(text, (int *)base) != HS_OK)
            return hs_err_set(err, HS_EINVAL, "%s: expected logfmt or json, got \"%s\"", where,
                              text);
        return HS_OK;
    case F_STRLIST: {
        /* Comma-separated in flags and the environment. */
        size_t n = 1;
        for (const char *p = text; *p; p++)
            n += *p == ',';
        const char **list = hs_arena_alloc(&c->strings, n * sizeof(*list));
        if (list == NULL)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        size_t k = 0;
        for (const char *p = text; k < n;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len == 0)
                return hs_err_set(err, HS_EINVAL, "%s: empty item in \"%s\"", where, text);
            list[k] = hs_arena_strndup(&c->strings, p, len);
            if (list[k++] == NULL)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            p = comma ? comma + 1 : p + len;
        }
        *(const char ***)base = list;
        *(size_t *)(base + sizeof(const char **)) = n;
        return HS_OK;
    }
    case F_FSYNC:
        if (!strcmp(text, "interval"))
            *(int *)base = CLI_WAL_FSYNC_INTERVAL;
        else if (!strcmp(text, "batch"))
            *(int *)base = CLI_WAL_FSYNC_BATCH;
        else
            return hs_err_set(err, HS_EINVAL, "%s: expected interval or batch, got \"%s\"", where,
                              text);
        return HS_OK;
    }
    return hs_err_set(err, HS_EINVAL, "%s: unsupported setting type", where);
}

/* ---- the file ---- */

/* A YAML list of strings into a F_STRLIST field (pointer, then count). */
static int set_list_from_node(struct cli_config *c, const struct field *f, const struct hs_ynode *n,
                              struct hs_err *err)
{
    const struct hs_ydoc *d = c->doc;
    char *base = (char *)c + f->off;
    if (hs_ynode_is_null(n)) {
        *(const char ***)base = NULL;
        *(size_t *)(base + sizeof(const char **)) = 0;
        return HS_OK;
    }
    if (n->type != HS_Y_SEQ)
        return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected a list of strings", f->path);
    const char **list = hs_arena_alloc(&c->strings, (n->n + 1) * sizeof(*list));
    if (list == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        int rc = hs_ynode_str(d, n->items[i], f->path, &list[i], err);
        if (rc != HS_OK)
            return rc;
        if (list[i][0] == '\0')
            return hs_ynode_error(d, n->items[i], HS_EINVAL, err, "%s: empty item", f->path);
    }
    *(const char ***)base = list;
    *(size_t *)(base + sizeof(const char **)) = n->n;
    return HS_OK;
}

static int set_from_node(struct cli_config *c, const struct field *f, const struct hs_ynode *n,
                         struct hs_err *err)
{
    const struct hs_ydoc *d = c->doc;
    if (f->type == F_STRLIST)
        return set_list_from_node(c, f, n, err);
    if (n == NULL || n->type != HS_Y_SCALAR)
        return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected a single value, got a %s",
                              f->path, n && n->type == HS_Y_MAP ? "map" : "list");
    if (f->type == F_INT && n->is_quoted)
        return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected an integer, got a string",
                              f->path);
    if (f->type == F_BOOL) {
        bool b;
        int rc = hs_ynode_bool(d, n, f->path, &b, err);
        if (rc == HS_OK)
            *(bool *)((char *)c + f->off) = b;
        return rc;
    }
    struct hs_err e2 = {0};
    int rc = set_from_text(c, f, n->scalar, f->path, &e2);
    if (rc != HS_OK)
        return hs_ynode_error(d, n, rc, err, "%s", e2.msg);
    return HS_OK;
}

static const struct field *find_field(const char *path)
{
    for (size_t i = 0; i < HS_ARRAY_LEN(schema); i++)
        if (strcmp(schema[i].path, path) == 0)
            return &schema[i];
    return NULL;
}

static bool is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < HS_ARRAY_LEN(schema); i++)
        if (strncmp(schema[i].path, prefix, n) == 0 && schema[i].path[n] == '.')
            return true;
    return false;
}

static int walk(struct cli_config *c, const struct hs_ynode *map, const char *prefix,
                struct hs_err *err)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct hs_ynode *k = map->items[2 * i], *v = map->items[2 * i + 1];
        char path[256];
        if (snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k->scalar) >=
            (int)sizeof(path))
            return hs_ynode_error(c->doc, k, HS_EINVAL, err, "key too long");
        const struct field *f = find_field(path);
        if (f != NULL) {
            int rc = set_from_node(c, f, v, err);
            if (rc != HS_OK)
                return rc;
            continue;
        }
        if (*prefix == '\0' && (strcmp(path, "global") == 0 || strcmp(path, "scrape_configs") == 0))
            continue; /* parsed by scrape_config_parse in load_file */
        if (*prefix == '\0' && (strcmp(path, "gateway") == 0 || strcmp(path, "capture") == 0))
            continue; /* parsed by gw_config_parse (and the capture parser) in load_file */
        if (*prefix == '\0' && (strcmp(path, "alerting") == 0 || strcmp(path, "pricing") == 0))
            continue; /* parsed by load_alerting_pricing in load_file */
        if (is_section(path)) {
            if (hs_ynode_is_null(v))
                continue;
            if (v->type != HS_Y_MAP)
                return hs_ynode_error(c->doc, v, HS_EINVAL, err, "%s: expected a map", path);
            int rc = walk(c, v, path, err);
            if (rc != HS_OK)
                return rc;
            continue;
        }
        return hs_ynode_error(c->doc, k, HS_EINVAL, err, "unknown key \"%s\"", path);
    }
    return HS_OK;
}

/* The `capture:` section (gateway/capture.h). */
static int load_capture(struct cli_config *c, struct hs_err *err)
{
    const struct hs_ynode *n = hs_ynode_get(c->doc->root, "capture");
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    c->capture = hs_malloc(sizeof(*c->capture));
    if (c->capture == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    capture_config_defaults(c->capture);
    return capture_config_parse(c->doc, n, c->capture, err);
}

/* The `gateway:` section (gateway.h); the `capture:` node is passed along. */
static int load_gateway(struct cli_config *c, struct hs_err *err)
{
    const struct hs_ynode *gw = hs_ynode_get(c->doc->root, "gateway");
    if (hs_ynode_is_null(gw))
        return HS_OK;
    return gw_config_parse(c->doc, gw, hs_ynode_get(c->doc->root, "capture"), &c->gateway, err);
}

/* The `alerting:` (rules.h) and `pricing:` (pricing.c) sections. */
static int load_alerting_pricing(struct cli_config *c, struct hs_err *err)
{
    const struct hs_ynode *al = hs_ynode_get(c->doc->root, "alerting");
    int rc = HS_OK;
    if (al != NULL && !hs_ynode_is_null(al))
        rc = rules_alerting_config_parse(c->doc, al, &c->alerting, err);
    if (rc == HS_OK)
        rc = cli_pricing_parse(c->doc, hs_ynode_get(c->doc->root, "pricing"), &c->pricing, err);
    return rc;
}

static int load_file(struct cli_config *c, const char *path, struct hs_err *err)
{
    c->doc = hs_ydoc_load(path, err);
    if (c->doc == NULL)
        return err ? err->code : HS_EPARSE;
    if (c->doc->root == NULL)
        return HS_OK; /* an empty file means all defaults */
    if (c->doc->root->type != HS_Y_MAP)
        return hs_ynode_error(c->doc, c->doc->root, HS_EINVAL, err,
                              "the configuration must be a map of settings");
    int rc = walk(c, c->doc->root, "", err);
    if (rc == HS_OK && (hs_ynode_get(c->doc->root, "scrape_configs") != NULL ||
                        hs_ynode_get(c->doc->root, "global") != NULL))
        rc = scrape_config_parse(c->doc, c->doc->root, &c->scrape, err);
    if (rc == HS_OK && hs_ynode_get(c->doc->root, "gateway") != NULL)
        rc = load_gateway(c, err);
    if (rc == HS_OK)
        rc = load_alerting_pricing(c, err);
    if (rc == HS_OK)
        rc = load_capture(c, err);
    return rc;
}

/* ---- environment ---- */

static void env_name(const char *path, char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "HOLOSCOPE_");
    for (const char *p = path; *p && o + 1 < len; p++)
        out[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[o] = '\0';
}

static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static int load_env(struct cli_config *c, char **envp, struct hs_err *err)
{
    for (size_t i = 0; i < HS_ARRAY_LEN(schema); i++) {
        char name[128];
        env_name(schema[i].path, name, sizeof(name));
        const char *v = env_get(envp, name);
        if (v == NULL)
            continue;
        int rc = set_from_text(c, &schema[i], v, name, err);
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

/* ---- flags ---- */

/* Compares a flag name with a schema name, treating '-' and '_' alike. */
static bool flag_is(const char *flag, size_t n, const char *name)
{
    if (name == NULL || strlen(name) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = flag[i] == '-' ? '_' : flag[i], b = name[i] == '-' ? '_' : name[i];
        if (a != b)
            return false;
    }
    return true;
}

static const struct field *find_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < HS_ARRAY_LEN(schema); i++)
        if (flag_is(name, n, schema[i].path) || flag_is(name, n, schema[i].alias))
            return &schema[i];
    return NULL;
}

/* First pass: only --config, so the file loads before env and other flags. */
static int find_config_flag(int argc, char **argv, const char **path, struct hs_err *err)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return hs_err_set(err, HS_EINVAL, "--config: missing value");
            *path = argv[i + 1];
            i++;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *path = argv[i] + 9;
        }
    }
    if (*path != NULL && **path == '\0')
        return hs_err_set(err, HS_EINVAL, "--config: missing value");
    return HS_OK;
}

static int load_flags(struct cli_config *c, int argc, char **argv, int *rest, int *nrest,
                      struct hs_err *err)
{
    *nrest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (; i < argc; i++)
                rest[(*nrest)++] = i;
            break;
        }
        if (strncmp(a, "--", 2) != 0) {
            rest[(*nrest)++] = i;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        if (flag_is(name, n, "config")) {
            if (eq == NULL)
                i++;
            continue;
        }
        const struct field *f = find_flag(name, n);
        if (f == NULL) {
            rest[(*nrest)++] = i;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL && f->type == F_BOOL)
            value = "true";
        if (value == NULL) {
            if (i + 1 >= argc)
                return hs_err_set(err, HS_EINVAL, "--%.*s: missing value", (int)n, name);
            value = argv[++i];
        }
        char where[160];
        snprintf(where, sizeof(where), "--%.*s", (int)n, name);
        int rc = set_from_text(c, f, value, where, err);
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

int cli_config_load(struct cli_config *c, int argc, char **argv, char **envp, int *rest, int *nrest,
                    struct hs_err *err)
{
    const char *path = NULL;
    int rc = find_config_flag(argc, argv, &path, err);
    if (rc != HS_OK)
        return rc;
    if (path != NULL) {
        c->config_file = path;
        rc = load_file(c, path, err);
        if (rc != HS_OK)
            return rc;
    }
    rc = load_env(c, envp, err);
    if (rc != HS_OK)
        return rc;
    return load_flags(c, argc, argv, rest, nrest, err);
}

int cli_split_hostport(const char *s, char *host, size_t host_len, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hn;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return HS_EINVAL;
        h = s + 1;
        hn = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return HS_EINVAL;
        hn = (size_t)(colon - s);
        if (memchr(s, ':', hn) != NULL)
            return HS_EINVAL; /* bare IPv6 needs brackets */
    }
    if (hn == 0 || hn >= host_len)
        return HS_EINVAL;
    int64_t p;
    if (hs_parse_i64(colon + 1, &p) != HS_OK || p < 0 || p > 65535)
        return HS_EINVAL;
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = (int)p;
    return HS_OK;
}

static bool is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

/* gateway.listen: HOST:PORT, loopback unless allow_remote. */
static int validate_gateway(const struct cli_config *c, struct hs_err *err)
{
    char host[256];
    int port;
    const char *l = c->gateway->listen;
    if (cli_split_hostport(l, host, sizeof(host), &port) != HS_OK)
        return hs_err_set(err, HS_EINVAL,
                          "gateway.listen: expected HOST:PORT (e.g. 127.0.0.1:9191), got \"%s\"",
                          l);
    if (!is_loopback(host) && !c->allow_remote)
        return hs_err_set(err, HS_EINVAL,
                          "gateway.listen: %s is not a loopback address; set allow_remote: true "
                          "(or --allow_remote) to listen beyond this machine",
                          l);
    return HS_OK;
}

int cli_config_validate(const struct cli_config *c, struct hs_err *err)
{
    char host[256];
    int port;
    if (cli_split_hostport(c->listen, host, sizeof(host), &port) != HS_OK)
        return hs_err_set(err, HS_EINVAL,
                          "listen: expected HOST:PORT (e.g. 127.0.0.1:9190 or [::1]:9190), "
                          "got \"%s\"",
                          c->listen);
    if (!is_loopback(host) && !c->allow_remote)
        return hs_err_set(err, HS_EINVAL,
                          "listen: %s is not a loopback address; set allow_remote: true "
                          "(or --allow_remote) to listen beyond this machine",
                          c->listen);
    if (c->http_max_connections < 1)
        return hs_err_set(err, HS_EINVAL, "http.max_connections: must be at least 1");
    if (c->http_max_header_bytes < 1024)
        return hs_err_set(err, HS_EINVAL, "http.max_header_bytes: must be at least 1KiB");
    if (c->http_header_timeout_ms <= 0 || c->http_read_timeout_ms <= 0 ||
        c->http_write_timeout_ms <= 0 || c->http_idle_timeout_ms <= 0)
        return hs_err_set(err, HS_EINVAL, "http timeouts must be greater than 0s");
    if (c->wal_fsync_interval_ms <= 0)
        return hs_err_set(err, HS_EINVAL, "storage.wal.fsync_interval: must be greater than 0s");
    if (c->retention_ms <= 0)
        return hs_err_set(err, HS_EINVAL, "storage.retention: must be greater than 0s");
    if (c->block_duration_ms < 60000)
        return hs_err_set(err, HS_EINVAL, "storage.block_duration: must be at least 1m");
    if (c->query_timeout_ms <= 0 || c->query_lookback_ms <= 0)
        return hs_err_set(err, HS_EINVAL,
                          "query.timeout and query.lookback_delta must be greater than 0s");
    if (c->query_workers < 1 || c->query_workers > 256)
        return hs_err_set(err, HS_EINVAL, "query.max_concurrency: must be between 1 and 256");
    if (c->rules_interval_ms < 1000)
        return hs_err_set(err, HS_EINVAL, "rules.evaluation_interval: must be at least 1s");
    if (c->collect_interval_ms < 100)
        return hs_err_set(err, HS_EINVAL, "collectors.interval: must be at least 100ms");
    if (c->query_max_samples < 1)
        return hs_err_set(err, HS_EINVAL, "query.max_samples: must be at least 1");
    if (c->gateway != NULL) {
        int rc = validate_gateway(c, err);
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

/* The text of one setting's effective value, in the form the file takes. */
static void value_text(const struct cli_config *c, const struct field *f, char *out, size_t len)
{
    const char *base = (const char *)c + f->off;
    switch (f->type) {
    case F_STR:
        snprintf(out, len, "%s", *(const char *const *)base);
        break;
    case F_BOOL:
        snprintf(out, len, "%s", *(const bool *)base ? "true" : "false");
        break;
    case F_INT:
        snprintf(out, len, "%lld", (long long)*(const int64_t *)base);
        break;
    case F_DURATION:
        hs_format_duration(*(const int64_t *)base, out, len);
        break;
    case F_BYTES:
        snprintf(out, len, "%llu", (unsigned long long)*(const uint64_t *)base);
        break;
    case F_LOGLEVEL: {
        static const char *names[] = {"debug", "info", "warn", "error"};
        int l = *(const int *)base;
        snprintf(out, len, "%s", l >= 0 && l < 4 ? names[l] : "info");
        break;
    }
    case F_LOGFORMAT:
        snprintf(out, len, "%s", *(const int *)base ? "json" : "logfmt");
        break;
    case F_FSYNC:
        snprintf(out, len, "%s", *(const int *)base ? "batch" : "interval");
        break;
    case F_STRLIST: {
        const char *const *list = *(const char *const *const *)base;
        size_t n = *(const size_t *)(base + sizeof(const char **)), off = 0;
        out[0] = '\0';
        for (size_t i = 0; i < n && off < len; i++)
            off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "," : "", list[i]);
        break;
    }
    default:
        snprintf(out, len, "?");
    }
}

int cli_config_render_yaml(const struct cli_config *c, struct hs_buf *out)
{
    /* The schema is ordered so that keys of one section are adjacent. */
    char prev[256] = "";
    int rc = HS_OK;
    for (size_t i = 0; i < HS_ARRAY_LEN(schema) && rc == HS_OK; i++) {
        const char *path = schema[i].path;
        /* Open every section level that differs from the previous key's. */
        int depth = 0;
        const char *p = path, *q = prev;
        bool same = true;
        for (;;) {
            const char *dot = strchr(p, '.');
            if (dot == NULL)
                break;
            size_t n = (size_t)(dot - p);
            same = same && strncmp(p, q, n) == 0 && q[n] == '.';
            if (!same)
                rc = rc == HS_OK ? hs_buf_printf(out, "%*s%.*s:\n", 2 * depth, "", (int)n, p) : rc;
            depth++;
            p = dot + 1;
            if (same)
                q += n + 1;
        }
        char v[256];
        value_text(c, &schema[i], v, sizeof(v));
        if (rc == HS_OK)
            rc = hs_buf_printf(out, "%*s%s: ", 2 * depth, "", p);
        if (rc == HS_OK && schema[i].type == F_STRLIST) {
            const char *base = (const char *)c + schema[i].off;
            const char *const *list = *(const char *const *const *)base;
            size_t n = *(const size_t *)(base + sizeof(const char **));
            rc = hs_buf_putc(out, '[');
            for (size_t k = 0; k < n && rc == HS_OK; k++) {
                if (k)
                    rc = hs_buf_puts(out, ", ");
                if (rc == HS_OK)
                    rc = hs_buf_json_str(out, list[k], strlen(list[k]));
            }
            if (rc == HS_OK)
                rc = hs_buf_putc(out, ']');
        } else if (rc == HS_OK)
            rc = schema[i].type == F_STR ? hs_buf_json_str(out, v, strlen(v)) : hs_buf_puts(out, v);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '\n');
        snprintf(prev, sizeof(prev), "%s", path);
    }
    return rc;
}

const char **cli_config_flag_pairs(const struct cli_config *c, struct hs_arena *arena)
{
    size_t n = HS_ARRAY_LEN(schema);
    const char **pairs = hs_arena_alloc(arena, (2 * n + 1) * sizeof(*pairs));
    if (pairs == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char v[256];
        value_text(c, &schema[i], v, sizeof(v));
        pairs[2 * i] = schema[i].path;
        pairs[2 * i + 1] = hs_arena_strndup(arena, v, strlen(v));
        if (pairs[2 * i + 1] == NULL)
            return NULL;
    }
    pairs[2 * n] = NULL;
    return pairs;
}

void cli_config_print_help(FILE *out)
{
    fprintf(out, "       --config FILE\n              YAML configuration file (see README.md, "
                 "Configuration)\n");
    for (size_t i = 0; i < HS_ARRAY_LEN(schema); i++) {
        const struct field *f = &schema[i];
        char env[128];
        env_name(f->path, env, sizeof(env));
        const char *arg = f->type == F_BOOL ? "" : " VALUE";
        if (f->alias)
            fprintf(out, "       --%s%s, --%s%s\n", f->alias, arg, f->path, arg);
        else
            fprintf(out, "       --%s%s\n", f->path, arg);
        fprintf(out, "              %s; env %s\n", f->help, env);
    }
}
