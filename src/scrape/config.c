/*
 * config.c - the scrape configuration: `global` and `scrape_configs` in
 * the shape Prometheus reads them, so that users can paste theirs, plus
 * turning a job's discovered target groups into target label sets.
 *
 * Reading is strict: every key is either understood or an error naming
 * FILE:LINE:COL; nothing is silently ignored.  Defaults are Prometheus':
 * scrape_interval 1m, scrape_timeout 10s (never above the interval),
 * metrics_path /metrics, scheme http, honor_timestamps and follow_redirects
 * true.  holoscope adds two job keys from metrics-mapping.md: `model` (the
 * model of engines that expose no model label) and `backend` (pins the
 * engine, skipping detection).
 *
 * Memory: the whole configuration lives in one arena inside struct
 * scrape_config; only the relabel rule sets (which hold compiled regexes)
 * are separate and released by scrape_config_free.  Secrets are kept in
 * struct scrape_secret and never printed: scrape_config_format writes
 * <secret>.
 */
#include "scrape/scrape_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_INTERVAL_MS        60000
#define DEFAULT_TIMEOUT_MS         10000
#define DEFAULT_FILE_SD_REFRESH_MS 300000
#define DEFAULT_HTTP_SD_REFRESH_MS 60000

struct pctx {
    const struct hs_ydoc *doc;
    struct hs_arena *a;
    struct hs_err *err;
};

static int oom(struct pctx *c)
{
    return hs_err_set(c->err, HS_ENOMEM, "out of memory");
}

static int bad(struct pctx *c, const struct hs_ynode *n, const char *fmt, ...) HS_PRINTF(3, 4);

static int bad(struct pctx *c, const struct hs_ynode *n, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return hs_ynode_error(c->doc, n, HS_EINVAL, c->err, "%s", msg);
}

static int unknown_key(struct pctx *c, const struct hs_ynode *k, const char *where)
{
    return hs_ynode_error(c->doc, k, HS_EINVAL, c->err, "%s: unknown key \"%s\"", where, k->scalar);
}

static int want_map(struct pctx *c, const struct hs_ynode *n, const char *what)
{
    if (n == NULL || n->type != HS_Y_MAP)
        return hs_ynode_error(c->doc, n, HS_EINVAL, c->err, "%s: expected a map", what);
    return HS_OK;
}

static int want_seq(struct pctx *c, const struct hs_ynode *n, const char *what)
{
    if (n == NULL || n->type != HS_Y_SEQ)
        return hs_ynode_error(c->doc, n, HS_EINVAL, c->err, "%s: expected a list", what);
    return HS_OK;
}

static int get_str(struct pctx *c, const struct hs_ynode *n, const char *what, const char **out)
{
    const char *s;
    int rc = hs_ynode_str(c->doc, n, what, &s, c->err);
    if (rc != HS_OK)
        return rc;
    *out = hs_arena_strndup(c->a, s, strlen(s));
    return *out ? HS_OK : oom(c);
}

static int get_dur(struct pctx *c, const struct hs_ynode *n, const char *what, int64_t *out)
{
    int rc = hs_ynode_duration(c->doc, n, what, out, c->err);
    if (rc == HS_OK && *out <= 0)
        return hs_ynode_error(c->doc, n, HS_EINVAL, c->err, "%s: must be greater than 0", what);
    return rc;
}

static int get_count(struct pctx *c, const struct hs_ynode *n, const char *what, uint64_t *out)
{
    int64_t v;
    int rc = hs_ynode_i64(c->doc, n, what, &v, c->err);
    if (rc != HS_OK)
        return rc;
    if (v < 0)
        return hs_ynode_error(c->doc, n, HS_EINVAL, c->err, "%s: must not be negative", what);
    *out = (uint64_t)v;
    return HS_OK;
}

/* A list of strings. */
static int get_strs(struct pctx *c, const struct hs_ynode *n, const char *what, size_t max,
                    const char ***out, size_t *nout)
{
    int rc = want_seq(c, n, what);
    if (rc != HS_OK)
        return rc;
    if (n->n > max)
        return hs_ynode_error(c->doc, n, HS_ETOOBIG, c->err, "%s: more than %zu entries", what,
                              max);
    *out = hs_arena_alloc(c->a, (n->n + 1) * sizeof(**out));
    if (*out == NULL)
        return oom(c);
    for (size_t i = 0; i < n->n; i++)
        if ((rc = get_str(c, n->items[i], what, &(*out)[i])) != HS_OK)
            return rc;
    *nout = n->n;
    return HS_OK;
}

/* A map of label names to values, validated and sorted. */
static int get_labels(struct pctx *c, const struct hs_ynode *n, const char *what,
                      struct hs_labels *out)
{
    out->n = 0;
    out->v = NULL;
    if (hs_ynode_is_null(n))
        return HS_OK;
    int rc = want_map(c, n, what);
    if (rc != HS_OK)
        return rc;
    out->v = hs_arena_alloc(c->a, (n->n + 1) * sizeof(out->v[0]));
    if (out->v == NULL)
        return oom(c);
    for (size_t i = 0; i < n->n; i++) {
        const struct hs_ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        if (!hs_label_name_valid(k->scalar, strlen(k->scalar)))
            return bad(c, k, "%s: \"%s\" is not a valid label name", what, k->scalar);
        const char *val;
        if ((rc = get_str(c, v, what, &val)) != HS_OK)
            return rc;
        if (!scrape__utf8_valid(val, strlen(val)))
            return bad(c, v, "%s: value of \"%s\" is not valid UTF-8", what, k->scalar);
        out->v[out->n].value = val;
        if ((out->v[out->n].name = hs_arena_strndup(c->a, k->scalar, strlen(k->scalar))) == NULL)
            return oom(c);
        out->n++;
    }
    hs_labels_sort(out);
    return HS_OK;
}

/* ---- global ------------------------------------------------------------------ */

struct limits_src {
    const struct hs_ynode *sample, *label, *name_len, *value_len, *body;
};

/* Reads the limit keys shared by global and jobs; 1 when 'key' was one. */
static int limit_key(struct pctx *c, const char *key, const struct hs_ynode *v, uint64_t *sample,
                     uint64_t *label, uint64_t *name_len, uint64_t *value_len, uint64_t *body)
{
    int rc;
    if (strcmp(key, "sample_limit") == 0)
        rc = get_count(c, v, key, sample);
    else if (strcmp(key, "label_limit") == 0)
        rc = get_count(c, v, key, label);
    else if (strcmp(key, "label_name_length_limit") == 0)
        rc = get_count(c, v, key, name_len);
    else if (strcmp(key, "label_value_length_limit") == 0)
        rc = get_count(c, v, key, value_len);
    else if (strcmp(key, "body_size_limit") == 0)
        rc = hs_ynode_bytes(c->doc, v, key, body, c->err);
    else
        return 0;
    return rc == HS_OK ? 1 : rc;
}

static int parse_global(struct pctx *c, const struct hs_ynode *m, struct scrape_global *g)
{
    g->scrape_interval_ms = DEFAULT_INTERVAL_MS;
    g->scrape_timeout_ms = DEFAULT_TIMEOUT_MS;
    g->evaluation_interval_ms = DEFAULT_INTERVAL_MS;
    if (hs_ynode_is_null(m))
        return HS_OK;
    int rc = want_map(c, m, "global");
    if (rc != HS_OK)
        return rc;
    const struct hs_ynode *timeout = NULL;
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        const char *key = k->scalar;
        rc = limit_key(c, key, v, &g->sample_limit, &g->label_limit, &g->label_name_length_limit,
                       &g->label_value_length_limit, &g->body_size_limit);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        if (strcmp(key, "scrape_interval") == 0)
            rc = get_dur(c, v, key, &g->scrape_interval_ms);
        else if (strcmp(key, "scrape_timeout") == 0)
            rc = get_dur(c, v, key, &g->scrape_timeout_ms), timeout = v;
        else if (strcmp(key, "evaluation_interval") == 0)
            rc = get_dur(c, v, key, &g->evaluation_interval_ms);
        else if (strcmp(key, "external_labels") == 0)
            rc = get_labels(c, v, key, &g->external_labels);
        else
            return unknown_key(c, k, "global");
        if (rc != HS_OK)
            return rc;
    }
    if (timeout == NULL && g->scrape_timeout_ms > g->scrape_interval_ms)
        g->scrape_timeout_ms = g->scrape_interval_ms;
    if (g->scrape_timeout_ms > g->scrape_interval_ms)
        return bad(c, timeout, "global scrape timeout greater than scrape interval");
    return HS_OK;
}

/* ---- HTTP client keys ---------------------------------------------------------------- */

static int get_secret_pair(struct pctx *c, const struct hs_ynode *inl, const struct hs_ynode *file,
                           const char *what, struct scrape_secret *s)
{
    int rc;
    if (inl && file)
        return bad(c, file, "at most one of %s & %s_file must be configured", what, what);
    if (inl && (rc = get_str(c, inl, what, &s->value)) != HS_OK)
        return rc;
    if (file && (rc = get_str(c, file, what, &s->file)) != HS_OK)
        return rc;
    return HS_OK;
}

static int parse_basic_auth(struct pctx *c, const struct hs_ynode *m, struct scrape_job *j)
{
    int rc = want_map(c, m, "basic_auth");
    if (rc != HS_OK)
        return rc;
    const struct hs_ynode *pw = NULL, *pwf = NULL;
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        if (strcmp(k->scalar, "username") == 0)
            rc = get_str(c, v, "username", &j->basic_auth_username);
        else if (strcmp(k->scalar, "password") == 0)
            pw = v;
        else if (strcmp(k->scalar, "password_file") == 0)
            pwf = v;
        else
            return unknown_key(c, k, "basic_auth");
        if (rc != HS_OK)
            return rc;
    }
    j->has_basic_auth = true;
    return get_secret_pair(c, pw, pwf, "password", &j->basic_auth_password);
}

static int parse_authorization(struct pctx *c, const struct hs_ynode *m, struct scrape_job *j)
{
    int rc = want_map(c, m, "authorization");
    if (rc != HS_OK)
        return rc;
    const struct hs_ynode *cr = NULL, *crf = NULL;
    j->authorization_type = "Bearer";
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        if (strcmp(k->scalar, "type") == 0) {
            if ((rc = get_str(c, v, "type", &j->authorization_type)) != HS_OK)
                return rc;
            if (strcasecmp(j->authorization_type, "basic") == 0)
                return bad(c, v,
                           "authorization type cannot be set to \"basic\", use \"basic_auth\" "
                           "instead");
        } else if (strcmp(k->scalar, "credentials") == 0) {
            cr = v;
        } else if (strcmp(k->scalar, "credentials_file") == 0) {
            crf = v;
        } else {
            return unknown_key(c, k, "authorization");
        }
    }
    j->has_authorization = true;
    return get_secret_pair(c, cr, crf, "credentials", &j->authorization_credentials);
}

static int parse_tls(struct pctx *c, const struct hs_ynode *m, struct scrape_job *j)
{
    int rc = want_map(c, m, "tls_config");
    if (rc != HS_OK)
        return rc;
    struct scrape_tls_config *t = &j->tls;
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        const char *key = k->scalar;
        if (strcmp(key, "ca_file") == 0)
            rc = get_str(c, v, key, &t->ca_file);
        else if (strcmp(key, "cert_file") == 0)
            rc = get_str(c, v, key, &t->cert_file);
        else if (strcmp(key, "key_file") == 0)
            rc = get_str(c, v, key, &t->key_file);
        else if (strcmp(key, "server_name") == 0)
            rc = get_str(c, v, key, &t->server_name);
        else if (strcmp(key, "insecure_skip_verify") == 0)
            rc = hs_ynode_bool(c->doc, v, key, &t->insecure_skip_verify, c->err);
        else
            return unknown_key(c, k, "tls_config");
        if (rc != HS_OK)
            return rc;
    }
    if (t->cert_file && !t->key_file)
        return bad(c, m, "client cert file \"%s\" specified without client key file", t->cert_file);
    if (t->key_file && !t->cert_file)
        return bad(c, m, "client key file \"%s\" specified without client cert file", t->key_file);
    j->has_tls = true;
    return HS_OK;
}

/* ---- discovery blocks ------------------------------------------------------------------ */

static int parse_static(struct pctx *c, const struct hs_ynode *seq, struct scrape_job *j)
{
    int rc = want_seq(c, seq, "static_configs");
    if (rc != HS_OK)
        return rc;
    j->static_configs = hs_arena_calloc(c->a, (seq->n + 1) * sizeof(j->static_configs[0]));
    if (j->static_configs == NULL)
        return oom(c);
    for (size_t i = 0; i < seq->n; i++) {
        const struct hs_ynode *m = seq->items[i];
        struct scrape_target_group *g = &j->static_configs[i];
        if ((rc = want_map(c, m, "static_configs")) != HS_OK)
            return rc;
        for (size_t p = 0; p < m->n; p++) {
            const struct hs_ynode *k = m->items[2 * p], *v = m->items[2 * p + 1];
            if (strcmp(k->scalar, "targets") == 0) {
                if (hs_ynode_is_null(v))
                    continue;
                rc =
                    get_strs(c, v, "targets", SCRAPE_CONFIG_MAX_TARGETS, &g->targets, &g->ntargets);
                for (size_t t = 0; rc == HS_OK && t < g->ntargets; t++)
                    if (g->targets[t][0] == '\0' || strchr(g->targets[t], '/') ||
                        strchr(g->targets[t], ' '))
                        rc = bad(c, v->items[t], "\"%s\" is not a valid hostname", g->targets[t]);
            } else if (strcmp(k->scalar, "labels") == 0) {
                rc = get_labels(c, v, "labels", &g->labels);
            } else {
                return unknown_key(c, k, "static_configs");
            }
            if (rc != HS_OK)
                return rc;
        }
        g->source = hs_arena_printf(c->a, "static_configs[%zu]", i);
        if (g->source == NULL)
            return oom(c);
    }
    j->nstatic = seq->n;
    return HS_OK;
}

/* Prometheus' rule for file_sd patterns: a glob only in the last element,
 * and a .json, .yml or .yaml extension. */
static bool file_pattern_ok(const char *p)
{
    const char *star = strchr(p, '*');
    if (star && strchr(star, '/'))
        return false;
    if (star && strchr(star + 1, '*'))
        return false;
    const char *dot = strrchr(p, '.');
    if (dot == NULL || (star && dot < star))
        return false;
    return strcasecmp(dot, ".json") == 0 || strcasecmp(dot, ".yml") == 0 ||
           strcasecmp(dot, ".yaml") == 0;
}

static int parse_file_sd(struct pctx *c, const struct hs_ynode *seq, struct scrape_job *j)
{
    int rc = want_seq(c, seq, "file_sd_configs");
    if (rc != HS_OK)
        return rc;
    j->file_sd_configs = hs_arena_calloc(c->a, (seq->n + 1) * sizeof(j->file_sd_configs[0]));
    if (j->file_sd_configs == NULL)
        return oom(c);
    for (size_t i = 0; i < seq->n; i++) {
        const struct hs_ynode *m = seq->items[i], *files = NULL;
        struct scrape_file_sd_config *f = &j->file_sd_configs[i];
        f->refresh_interval_ms = DEFAULT_FILE_SD_REFRESH_MS;
        if ((rc = want_map(c, m, "file_sd_configs")) != HS_OK)
            return rc;
        for (size_t p = 0; p < m->n; p++) {
            const struct hs_ynode *k = m->items[2 * p], *v = m->items[2 * p + 1];
            if (strcmp(k->scalar, "files") == 0)
                rc = get_strs(c, v, "files", SCRAPE_SD_FILE_MAX_FILES, &f->files, &f->nfiles),
                files = v;
            else if (strcmp(k->scalar, "refresh_interval") == 0)
                rc = get_dur(c, v, "refresh_interval", &f->refresh_interval_ms);
            else
                return unknown_key(c, k, "file_sd_configs");
            if (rc != HS_OK)
                return rc;
        }
        if (f->nfiles == 0)
            return bad(c, m,
                       "file service discovery config must contain at least one path "
                       "name");
        for (size_t t = 0; t < f->nfiles; t++)
            if (!file_pattern_ok(f->files[t]))
                return bad(c, files->items[t],
                           "path name \"%s\" is not valid for file "
                           "discovery",
                           f->files[t]);
    }
    j->nfile_sd = seq->n;
    return HS_OK;
}

static int parse_http_sd(struct pctx *c, const struct hs_ynode *seq, struct scrape_job *j)
{
    int rc = want_seq(c, seq, "http_sd_configs");
    if (rc != HS_OK)
        return rc;
    j->http_sd_configs = hs_arena_calloc(c->a, (seq->n + 1) * sizeof(j->http_sd_configs[0]));
    if (j->http_sd_configs == NULL)
        return oom(c);
    for (size_t i = 0; i < seq->n; i++) {
        const struct hs_ynode *m = seq->items[i];
        struct scrape_http_sd_config *h = &j->http_sd_configs[i];
        h->refresh_interval_ms = DEFAULT_HTTP_SD_REFRESH_MS;
        if ((rc = want_map(c, m, "http_sd_configs")) != HS_OK)
            return rc;
        const struct hs_ynode *url = NULL;
        for (size_t p = 0; p < m->n; p++) {
            const struct hs_ynode *k = m->items[2 * p], *v = m->items[2 * p + 1];
            if (strcmp(k->scalar, "url") == 0)
                rc = get_str(c, v, "url", &h->url), url = v;
            else if (strcmp(k->scalar, "refresh_interval") == 0)
                rc = get_dur(c, v, "refresh_interval", &h->refresh_interval_ms);
            else
                return unknown_key(c, k, "http_sd_configs");
            if (rc != HS_OK)
                return rc;
        }
        if (h->url == NULL)
            return bad(c, m, "http_sd_configs: url is missing");
        if (!hs_has_prefix(h->url, "http://") && !hs_has_prefix(h->url, "https://"))
            return bad(c, url, "URL scheme must be 'http' or 'https' in \"%s\"", h->url);
    }
    j->nhttp_sd = seq->n;
    return HS_OK;
}

static int parse_params(struct pctx *c, const struct hs_ynode *m, struct scrape_job *j)
{
    int rc = want_map(c, m, "params");
    if (rc != HS_OK)
        return rc;
    j->params = hs_arena_calloc(c->a, (m->n + 1) * sizeof(j->params[0]));
    if (j->params == NULL)
        return oom(c);
    for (size_t i = 0; i < m->n; i++) {
        struct scrape_param *p = &j->params[i];
        p->name = hs_arena_strndup(c->a, m->items[2 * i]->scalar, strlen(m->items[2 * i]->scalar));
        if (p->name == NULL)
            return oom(c);
        rc = get_strs(c, m->items[2 * i + 1], "params", 1024, &p->values, &p->nvalues);
        if (rc != HS_OK)
            return rc;
    }
    j->nparams = m->n;
    return HS_OK;
}

/* ---- jobs ----------------------------------------------------------------------------- */

struct job_src {
    const struct hs_ynode *interval, *timeout, *basic_auth, *authorization, *bearer, *bearer_file,
        *relabel, *metric_relabel, *scheme, *path, *backend;
};

static int job_key(struct pctx *c, const struct hs_ynode *k, const struct hs_ynode *v,
                   struct scrape_job *j, struct job_src *s)
{
    const char *key = k->scalar;
    int rc = limit_key(c, key, v, &j->sample_limit, &j->label_limit, &j->label_name_length_limit,
                       &j->label_value_length_limit, &j->body_size_limit);
    if (rc != 0)
        return rc < 0 ? rc : HS_OK;
    if (strcmp(key, "job_name") == 0)
        return get_str(c, v, key, &j->job_name);
    if (strcmp(key, "scrape_interval") == 0)
        return s->interval = v, get_dur(c, v, key, &j->scrape_interval_ms);
    if (strcmp(key, "scrape_timeout") == 0)
        return s->timeout = v, get_dur(c, v, key, &j->scrape_timeout_ms);
    if (strcmp(key, "metrics_path") == 0)
        return s->path = v, get_str(c, v, key, &j->metrics_path);
    if (strcmp(key, "scheme") == 0)
        return s->scheme = v, get_str(c, v, key, &j->scheme);
    if (strcmp(key, "params") == 0)
        return parse_params(c, v, j);
    if (strcmp(key, "honor_labels") == 0)
        return hs_ynode_bool(c->doc, v, key, &j->honor_labels, c->err);
    if (strcmp(key, "honor_timestamps") == 0)
        return hs_ynode_bool(c->doc, v, key, &j->honor_timestamps, c->err);
    if (strcmp(key, "follow_redirects") == 0)
        return hs_ynode_bool(c->doc, v, key, &j->follow_redirects, c->err);
    if (strcmp(key, "enable_http2") == 0)
        return hs_ynode_bool(c->doc, v, key, &j->enable_http2, c->err);
    if (strcmp(key, "static_configs") == 0)
        return parse_static(c, v, j);
    if (strcmp(key, "file_sd_configs") == 0)
        return parse_file_sd(c, v, j);
    if (strcmp(key, "http_sd_configs") == 0)
        return parse_http_sd(c, v, j);
    if (strcmp(key, "basic_auth") == 0)
        return s->basic_auth = v, parse_basic_auth(c, v, j);
    if (strcmp(key, "authorization") == 0)
        return s->authorization = v, parse_authorization(c, v, j);
    if (strcmp(key, "bearer_token") == 0)
        return s->bearer = v, get_str(c, v, key, &j->authorization_credentials.value);
    if (strcmp(key, "bearer_token_file") == 0)
        return s->bearer_file = v, get_str(c, v, key, &j->authorization_credentials.file);
    if (strcmp(key, "tls_config") == 0)
        return parse_tls(c, v, j);
    if (strcmp(key, "relabel_configs") == 0)
        return s->relabel = v, HS_OK;
    if (strcmp(key, "metric_relabel_configs") == 0)
        return s->metric_relabel = v, HS_OK;
    if (strcmp(key, "model") == 0)
        return get_str(c, v, key, &j->model);
    if (strcmp(key, "backend") == 0)
        return s->backend = v, get_str(c, v, key, &j->backend);
    return unknown_key(c, k, "scrape_configs");
}

static int check_job(struct pctx *c, const struct hs_ynode *m, const struct scrape_global *g,
                     struct scrape_job *j, const struct job_src *s)
{
    if (j->job_name == NULL || j->job_name[0] == '\0')
        return bad(c, m, "job_name is empty");
    if (strcmp(j->scheme, "http") != 0 && strcmp(j->scheme, "https") != 0)
        return bad(c, s->scheme, "scheme: must be \"http\" or \"https\", got \"%s\"", j->scheme);
    if (j->metrics_path[0] != '/')
        return bad(c, s->path, "metrics_path: \"%s\" must start with \"/\"", j->metrics_path);
    if (s->interval == NULL)
        j->scrape_interval_ms = g->scrape_interval_ms;
    if (s->timeout == NULL)
        j->scrape_timeout_ms = HS_MIN(g->scrape_timeout_ms, j->scrape_interval_ms);
    if (j->scrape_timeout_ms > j->scrape_interval_ms)
        return bad(c, s->timeout ? s->timeout : m,
                   "scrape timeout greater than scrape interval for scrape config with job name "
                   "\"%s\"",
                   j->job_name);
    if ((s->bearer || s->bearer_file) && s->authorization)
        return bad(c, s->bearer ? s->bearer : s->bearer_file,
                   "at most one of authorization, bearer_token & bearer_token_file must be "
                   "configured");
    if (s->bearer && s->bearer_file)
        return bad(c, s->bearer_file,
                   "at most one of bearer_token & bearer_token_file must be "
                   "configured");
    if (s->bearer || s->bearer_file) {
        j->has_authorization = true;
        j->authorization_type = "Bearer";
    }
    if (j->has_basic_auth && j->has_authorization)
        return bad(c, s->basic_auth,
                   "at most one of basic_auth, authorization, bearer_token & bearer_token_file "
                   "must be configured");
    if (s->backend && scrape_backend_parse(j->backend) == SCRAPE_BACKEND_NONE)
        return bad(c, s->backend,
                   "backend: unknown backend \"%s\" (vllm, sglang, tgi, llamacpp, triton, trtllm, "
                   "dcgm, node, nvml, litellm)",
                   j->backend);
    return HS_OK;
}

static int parse_job(struct pctx *c, const struct hs_ynode *m, const struct scrape_global *g,
                     struct scrape_job *j)
{
    int rc = want_map(c, m, "scrape_configs");
    if (rc != HS_OK)
        return rc;
    struct job_src s;
    memset(&s, 0, sizeof(s));
    j->line = m->line;
    j->col = m->col;
    j->metrics_path = "/metrics";
    j->scheme = "http";
    j->honor_timestamps = true;
    j->follow_redirects = true;
    j->enable_http2 = true;
    j->sample_limit = g->sample_limit;
    j->label_limit = g->label_limit;
    j->label_name_length_limit = g->label_name_length_limit;
    j->label_value_length_limit = g->label_value_length_limit;
    j->body_size_limit = g->body_size_limit;
    for (size_t i = 0; i < m->n; i++)
        if ((rc = job_key(c, m->items[2 * i], m->items[2 * i + 1], j, &s)) != HS_OK)
            return rc;
    if ((rc = check_job(c, m, g, j, &s)) != HS_OK)
        return rc;
    rc =
        scrape_relabel_set_parse(c->doc, s.relabel, "relabel_configs", &j->relabel_configs, c->err);
    if (rc != HS_OK)
        return rc;
    return scrape_relabel_set_parse(c->doc, s.metric_relabel, "metric_relabel_configs",
                                    &j->metric_relabel_configs, c->err);
}

void scrape_config_free(struct scrape_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->njobs; i++) {
        scrape_relabel_set_cleanup(&cfg->jobs[i].relabel_configs);
        scrape_relabel_set_cleanup(&cfg->jobs[i].metric_relabel_configs);
    }
    hs_arena_cleanup(&cfg->arena);
    hs_free(cfg);
}

static int parse_jobs(struct pctx *c, const struct hs_ynode *seq, struct scrape_config *cfg)
{
    if (hs_ynode_is_null(seq))
        return HS_OK;
    int rc = want_seq(c, seq, "scrape_configs");
    if (rc != HS_OK)
        return rc;
    if (seq->n > SCRAPE_CONFIG_MAX_JOBS)
        return hs_ynode_error(c->doc, seq, HS_ETOOBIG, c->err, "scrape_configs: more than %d jobs",
                              SCRAPE_CONFIG_MAX_JOBS);
    cfg->jobs = hs_arena_calloc(c->a, (seq->n + 1) * sizeof(cfg->jobs[0]));
    if (cfg->jobs == NULL)
        return oom(c);
    for (size_t i = 0; i < seq->n; i++) {
        cfg->njobs = i + 1; /* so that a failure frees this job's rule sets too */
        if ((rc = parse_job(c, seq->items[i], &cfg->global, &cfg->jobs[i])) != HS_OK)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(cfg->jobs[k].job_name, cfg->jobs[i].job_name) == 0)
                return bad(c, hs_ynode_get(seq->items[i], "job_name"),
                           "found multiple scrape configs with job name \"%s\"",
                           cfg->jobs[i].job_name);
    }
    return HS_OK;
}

int scrape_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *root_map,
                        struct scrape_config **out, struct hs_err *err)
{
    *out = NULL;
    struct scrape_config *cfg = hs_calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    hs_arena_init(&cfg->arena, 4096, 0);
    struct pctx c = {doc, &cfg->arena, err};
    int rc = HS_OK;
    if (root_map != NULL && root_map->type != HS_Y_MAP)
        rc = want_map(&c, root_map, "configuration");
    if (rc == HS_OK)
        rc = parse_global(&c, hs_ynode_get(root_map, "global"), &cfg->global);
    if (rc == HS_OK)
        rc = parse_jobs(&c, hs_ynode_get(root_map, "scrape_configs"), cfg);
    if (rc != HS_OK) {
        scrape_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return HS_OK;
}

const struct scrape_job *scrape_config_job(const struct scrape_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->njobs; i++)
        if (strcmp(cfg->jobs[i].job_name, name) == 0)
            return &cfg->jobs[i];
    return NULL;
}

/* ---- dump ------------------------------------------------------------------------------- */

static int put_q(struct hs_buf *b, const char *key, const char *v, int indent)
{
    if (v == NULL)
        return HS_OK;
    int rc = hs_buf_printf(b, "%*s%s: ", indent, "", key);
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, v, strlen(v));
    return rc == HS_OK ? hs_buf_putc(b, '\n') : rc;
}

static int put_secret(struct hs_buf *b, const char *key, const struct scrape_secret *s, int ind)
{
    int rc = HS_OK;
    if (s->value)
        rc = hs_buf_printf(b, "%*s%s: <secret>\n", ind, "", key);
    if (rc == HS_OK && s->file) {
        char k[64];
        snprintf(k, sizeof(k), "%s_file", key);
        rc = put_q(b, k, s->file, ind);
    }
    return rc;
}

static int put_dur(struct hs_buf *b, const char *key, int64_t ms, int indent)
{
    char d[48];
    hs_format_duration(ms, d, sizeof(d));
    return hs_buf_printf(b, "%*s%s: %s\n", indent, "", key, d);
}

static int put_labels(struct hs_buf *b, const char *key, const struct hs_labels *ls, int indent)
{
    if (ls->n == 0)
        return HS_OK;
    int rc = hs_buf_printf(b, "%*s%s:\n", indent, "", key);
    for (size_t i = 0; rc == HS_OK && i < ls->n; i++)
        rc = put_q(b, ls->v[i].name, ls->v[i].value, indent + 2);
    return rc;
}

static int put_rules(struct hs_buf *b, const char *key, const struct scrape_relabel_set *rs)
{
    if (rs->n == 0)
        return HS_OK;
    int rc = hs_buf_printf(b, "    %s:\n", key);
    for (size_t i = 0; rc == HS_OK && i < rs->n; i++) {
        const struct scrape_relabel_rule *r = &rs->v[i];
        rc = hs_buf_printf(b, "      - action: %s\n", scrape_relabel_action_name(r->action));
        if (rc == HS_OK && r->nsource) {
            rc = hs_buf_puts(b, "        source_labels: [");
            for (size_t k = 0; rc == HS_OK && k < r->nsource; k++)
                rc = hs_buf_printf(b, "%s%s", k ? ", " : "", r->source_labels[k]);
            if (rc == HS_OK)
                rc = hs_buf_puts(b, "]\n");
        }
        if (rc == HS_OK)
            rc = put_q(b, "separator", r->separator, 8);
        if (rc == HS_OK)
            rc = put_q(b, "regex", r->regex, 8);
        if (rc == HS_OK)
            rc = put_q(b, "target_label", r->target_label, 8);
        if (rc == HS_OK)
            rc = put_q(b, "replacement", r->replacement, 8);
        if (rc == HS_OK && r->action == SCRAPE_RELABEL_HASHMOD)
            rc = hs_buf_printf(b, "        modulus: %llu\n", (unsigned long long)r->modulus);
    }
    return rc;
}

static int put_job_http(struct hs_buf *b, const struct scrape_job *j)
{
    int rc = HS_OK;
    if (j->has_basic_auth) {
        rc = hs_buf_puts(b, "    basic_auth:\n");
        if (rc == HS_OK)
            rc = put_q(b, "username", j->basic_auth_username, 6);
        if (rc == HS_OK)
            rc = put_secret(b, "password", &j->basic_auth_password, 6);
    }
    if (rc == HS_OK && j->has_authorization) {
        rc = hs_buf_puts(b, "    authorization:\n");
        if (rc == HS_OK)
            rc = put_q(b, "type", j->authorization_type, 6);
        if (rc == HS_OK)
            rc = put_secret(b, "credentials", &j->authorization_credentials, 6);
    }
    if (rc == HS_OK && j->has_tls) {
        rc = hs_buf_puts(b, "    tls_config:\n");
        if (rc == HS_OK)
            rc = put_q(b, "ca_file", j->tls.ca_file, 6);
        if (rc == HS_OK)
            rc = put_q(b, "cert_file", j->tls.cert_file, 6);
        if (rc == HS_OK)
            rc = put_q(b, "key_file", j->tls.key_file, 6);
        if (rc == HS_OK)
            rc = put_q(b, "server_name", j->tls.server_name, 6);
        if (rc == HS_OK)
            rc = hs_buf_printf(b, "      insecure_skip_verify: %s\n",
                               j->tls.insecure_skip_verify ? "true" : "false");
    }
    return rc;
}

static int put_job_sd(struct hs_buf *b, const struct scrape_job *j)
{
    int rc = HS_OK;
    if (j->nstatic)
        rc = hs_buf_puts(b, "    static_configs:\n");
    for (size_t i = 0; rc == HS_OK && i < j->nstatic; i++) {
        rc = hs_buf_puts(b, "      - targets: [");
        for (size_t t = 0; rc == HS_OK && t < j->static_configs[i].ntargets; t++) {
            const char *s = j->static_configs[i].targets[t];
            rc = t ? hs_buf_puts(b, ", ") : HS_OK;
            if (rc == HS_OK)
                rc = hs_buf_json_str(b, s, strlen(s));
        }
        if (rc == HS_OK)
            rc = hs_buf_puts(b, "]\n");
        if (rc == HS_OK)
            rc = put_labels(b, "labels", &j->static_configs[i].labels, 8);
    }
    if (rc == HS_OK && j->nfile_sd)
        rc = hs_buf_puts(b, "    file_sd_configs:\n");
    for (size_t i = 0; rc == HS_OK && i < j->nfile_sd; i++) {
        rc = hs_buf_puts(b, "      - files:\n");
        for (size_t t = 0; rc == HS_OK && t < j->file_sd_configs[i].nfiles; t++)
            rc = hs_buf_printf(b, "          - %s\n", j->file_sd_configs[i].files[t]);
        if (rc == HS_OK)
            rc = put_dur(b, "refresh_interval", j->file_sd_configs[i].refresh_interval_ms, 8);
    }
    if (rc == HS_OK && j->nhttp_sd)
        rc = hs_buf_puts(b, "    http_sd_configs:\n");
    for (size_t i = 0; rc == HS_OK && i < j->nhttp_sd; i++) {
        rc = hs_buf_puts(b, "      -\n");
        if (rc == HS_OK)
            rc = put_q(b, "url", j->http_sd_configs[i].url, 8);
        if (rc == HS_OK)
            rc = put_dur(b, "refresh_interval", j->http_sd_configs[i].refresh_interval_ms, 8);
    }
    return rc;
}

static int put_job(struct hs_buf *b, const struct scrape_job *j)
{
    int rc = hs_buf_puts(b, "  - ");
    if (rc == HS_OK)
        rc = put_q(b, "job_name", j->job_name, 0);
    if (rc == HS_OK)
        rc = put_dur(b, "scrape_interval", j->scrape_interval_ms, 4);
    if (rc == HS_OK)
        rc = put_dur(b, "scrape_timeout", j->scrape_timeout_ms, 4);
    if (rc == HS_OK)
        rc = put_q(b, "metrics_path", j->metrics_path, 4);
    if (rc == HS_OK)
        rc = put_q(b, "scheme", j->scheme, 4);
    if (rc == HS_OK)
        rc = hs_buf_printf(
            b,
            "    honor_labels: %s\n    honor_timestamps: %s\n"
            "    follow_redirects: %s\n    enable_http2: %s\n",
            j->honor_labels ? "true" : "false", j->honor_timestamps ? "true" : "false",
            j->follow_redirects ? "true" : "false", j->enable_http2 ? "true" : "false");
    if (rc == HS_OK && j->nparams) {
        rc = hs_buf_puts(b, "    params:\n");
        for (size_t i = 0; rc == HS_OK && i < j->nparams; i++) {
            const char *pn = j->params[i].name;
            rc = hs_buf_puts(b, "      ");
            if (rc == HS_OK)
                rc = hs_buf_json_str(b, pn, strlen(pn));
            if (rc == HS_OK)
                rc = hs_buf_puts(b, ": [");
            for (size_t k = 0; rc == HS_OK && k < j->params[i].nvalues; k++) {
                const char *v = j->params[i].values[k];
                rc = k ? hs_buf_puts(b, ", ") : HS_OK;
                if (rc == HS_OK)
                    rc = hs_buf_json_str(b, v, strlen(v));
            }
            if (rc == HS_OK)
                rc = hs_buf_puts(b, "]\n");
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(b,
                           "    sample_limit: %llu\n    label_limit: %llu\n"
                           "    label_name_length_limit: %llu\n"
                           "    label_value_length_limit: %llu\n    body_size_limit: %llu\n",
                           (unsigned long long)j->sample_limit, (unsigned long long)j->label_limit,
                           (unsigned long long)j->label_name_length_limit,
                           (unsigned long long)j->label_value_length_limit,
                           (unsigned long long)j->body_size_limit);
    if (rc == HS_OK)
        rc = put_q(b, "model", j->model, 4);
    if (rc == HS_OK)
        rc = put_q(b, "backend", j->backend, 4);
    if (rc == HS_OK)
        rc = put_job_http(b, j);
    if (rc == HS_OK)
        rc = put_job_sd(b, j);
    if (rc == HS_OK)
        rc = put_rules(b, "relabel_configs", &j->relabel_configs);
    if (rc == HS_OK)
        rc = put_rules(b, "metric_relabel_configs", &j->metric_relabel_configs);
    return rc;
}

int scrape_config_format(const struct scrape_config *cfg, struct hs_buf *out)
{
    const struct scrape_global *g = &cfg->global;
    int rc = hs_buf_puts(out, "global:\n");
    if (rc == HS_OK)
        rc = put_dur(out, "scrape_interval", g->scrape_interval_ms, 2);
    if (rc == HS_OK)
        rc = put_dur(out, "scrape_timeout", g->scrape_timeout_ms, 2);
    if (rc == HS_OK)
        rc = put_dur(out, "evaluation_interval", g->evaluation_interval_ms, 2);
    if (rc == HS_OK)
        rc = put_labels(out, "external_labels", &g->external_labels, 2);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, cfg->njobs ? "scrape_configs:\n" : "scrape_configs: []\n");
    for (size_t i = 0; rc == HS_OK && i < cfg->njobs; i++)
        rc = put_job(out, &cfg->jobs[i]);
    return rc;
}

/* ---- targets ------------------------------------------------------------------------------ */

void scrape_target_list_init(struct scrape_target_list *tl)
{
    memset(tl, 0, sizeof(*tl));
    hs_arena_init(&tl->arena, 16384, 0);
}

void scrape_target_list_cleanup(struct scrape_target_list *tl)
{
    hs_arena_cleanup(&tl->arena);
    tl->v = NULL;
    tl->n = tl->nactive = 0;
}

struct tbuild {
    const struct scrape_job *job;
    struct scrape_target_list *tl;
    struct scrape_relabel_scratch sc;
    struct scrape_target *v;
    size_t n, cap;
    const char *interval, *timeout;
    uint32_t *slots; /* open addressing over active targets' label hashes: index + 1 */
    size_t nslots;   /* power of two, more than twice the number of targets */
    struct hs_err *err;
};

/* Seeds the builder with the discovered labels of one target. */
static int seed_labels(struct tbuild *b, const struct scrape_target_group *g, const char *addr,
                       struct scrape__lb *lb)
{
    struct hs_arena *a = &b->tl->arena;
    const struct scrape_job *j = b->job;
    int rc = scrape__lb_init(lb, a, &g->labels);
    if (rc == HS_OK)
        rc = scrape__lb_set(lb, "__address__", addr);
    const char *fixed[][2] = {
        {"job", j->job_name},
        {"__scrape_interval__", b->interval},
        {"__scrape_timeout__", b->timeout},
        {"__metrics_path__", j->metrics_path},
        {"__scheme__", j->scheme},
        {"model", j->model},
        {"backend", j->backend},
    };
    for (size_t i = 0; rc == HS_OK && i < HS_ARRAY_LEN(fixed); i++)
        if (fixed[i][1] && scrape__lb_get(lb, fixed[i][0])[0] == '\0')
            rc = scrape__lb_set(lb, fixed[i][0], fixed[i][1]);
    for (size_t i = 0; rc == HS_OK && i < j->nparams; i++) {
        if (j->params[i].nvalues == 0)
            continue;
        char *name = hs_arena_printf(a, "__param_%s", j->params[i].name);
        if (name == NULL)
            return HS_ENOMEM;
        if (scrape__lb_get(lb, name)[0] == '\0')
            rc = scrape__lb_set(lb, name, j->params[i].values[0]);
    }
    return rc;
}

static struct scrape_target *new_target(struct tbuild *b)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct scrape_target *v = hs_arena_alloc(&b->tl->arena, cap * sizeof(v[0]));
        if (v == NULL)
            return NULL;
        if (b->n)
            memcpy(v, b->v, b->n * sizeof(v[0]));
        b->v = v;
        b->cap = cap;
    }
    struct scrape_target *t = &b->v[b->n++];
    memset(t, 0, sizeof(*t));
    return t;
}

/* Checks the relabelled set and fills the target's scrape fields; returns
 * an error text for an invalid target, NULL when it is good. */
static const char *finish_target(struct tbuild *b, struct scrape__lb *lb, struct scrape_target *t)
{
    t->address = scrape__lb_get(lb, "__address__");
    t->scheme = scrape__lb_get(lb, "__scheme__");
    t->metrics_path = scrape__lb_get(lb, "__metrics_path__");
    if (t->address[0] == '\0')
        return "no address";
    if (strchr(t->address, '/'))
        return "invalid address: contains \"/\"";
    if (strcmp(t->scheme, "http") != 0 && strcmp(t->scheme, "https") != 0)
        return "invalid scheme";
    if (hs_parse_duration_ms(scrape__lb_get(lb, "__scrape_interval__"), &t->interval_ms) != HS_OK ||
        t->interval_ms <= 0)
        return "invalid or zero __scrape_interval__";
    if (hs_parse_duration_ms(scrape__lb_get(lb, "__scrape_timeout__"), &t->timeout_ms) != HS_OK ||
        t->timeout_ms <= 0)
        return "invalid or zero __scrape_timeout__";
    if (t->timeout_ms > t->interval_ms)
        return "__scrape_timeout__ greater than __scrape_interval__";
    for (size_t i = 0; i < lb->n; i++)
        if (!scrape__utf8_valid(lb->v[i].value, strlen(lb->v[i].value)))
            return "invalid label value (not UTF-8)";
    return NULL;
}

/* Splits the relabelled builder into params, public labels and instance. */
static int split_labels(struct tbuild *b, struct scrape__lb *lb, struct scrape_target *t)
{
    struct hs_arena *a = &b->tl->arena;
    t->params.v = hs_arena_alloc(a, (lb->n + 1) * sizeof(t->params.v[0]));
    t->labels.v = hs_arena_alloc(a, (lb->n + 2) * sizeof(t->labels.v[0]));
    if (t->params.v == NULL || t->labels.v == NULL)
        return HS_ENOMEM;
    bool has_instance = false;
    for (size_t i = 0; i < lb->n; i++) {
        const struct hs_label *l = &lb->v[i];
        if (hs_has_prefix(l->name, "__param_")) {
            t->params.v[t->params.n].name = l->name + 8;
            t->params.v[t->params.n++].value = l->value;
        } else if (!hs_has_prefix(l->name, "__")) {
            has_instance |= strcmp(l->name, "instance") == 0;
            t->labels.v[t->labels.n++] = *l;
        }
    }
    if (!has_instance) {
        t->labels.v[t->labels.n].name = "instance";
        t->labels.v[t->labels.n++].value = t->address;
    }
    hs_labels_sort(&t->params);
    hs_labels_sort(&t->labels);
    return HS_OK;
}

/* Whether an earlier active target has the same labels; records 't' if not. */
static bool is_duplicate(struct tbuild *b, const struct scrape_target *t)
{
    size_t mask = b->nslots - 1, i = (size_t)hs_labels_hash(&t->labels) & mask;
    for (; b->slots[i] != 0; i = (i + 1) & mask)
        if (hs_labels_cmp(&b->v[b->slots[i] - 1].labels, &t->labels) == 0)
            return true;
    b->slots[i] = (uint32_t)b->n; /* t is b->v[b->n - 1] */
    return false;
}

static int make_slots(struct tbuild *b, const struct scrape_target_group *g, size_t ng)
{
    size_t total = 0;
    for (size_t i = 0; i < b->job->nstatic; i++)
        total += b->job->static_configs[i].ntargets;
    for (size_t i = 0; i < ng; i++)
        total += g[i].ntargets;
    if (total > UINT32_MAX / 4)
        return HS_ETOOBIG;
    b->nslots = 16;
    while (b->nslots < 2 * total + 1)
        b->nslots *= 2;
    b->slots = hs_arena_calloc(&b->tl->arena, b->nslots * sizeof(b->slots[0]));
    return b->slots ? HS_OK : HS_ENOMEM;
}

static int build_one(struct tbuild *b, const struct scrape_target_group *g, const char *addr)
{
    struct scrape__lb lb;
    int rc = seed_labels(b, g, addr, &lb);
    if (rc != HS_OK)
        return rc;
    struct scrape_target *t = new_target(b);
    if (t == NULL)
        return HS_ENOMEM;
    struct hs_labels cur;
    scrape__lb_labels(&lb, &cur);
    if ((rc = scrape__labels_copy(&b->tl->arena, &cur, &t->discovered)) != HS_OK)
        return rc;
    rc = scrape__relabel_process(&b->job->relabel_configs, &lb, &b->sc, NULL);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        t->is_dropped = true;
        return HS_OK;
    }
    t->error = finish_target(b, &lb, t);
    if (t->error != NULL) {
        t->is_dropped = true;
        return HS_OK;
    }
    if ((rc = split_labels(b, &lb, t)) != HS_OK)
        return rc;
    if (is_duplicate(b, t))
        b->n--;
    return HS_OK;
}

static int build_groups(struct tbuild *b, const struct scrape_target_group *g, size_t ng)
{
    for (size_t i = 0; i < ng; i++)
        for (size_t k = 0; k < g[i].ntargets; k++) {
            int rc = build_one(b, &g[i], g[i].targets[k]);
            if (rc != HS_OK)
                return rc;
        }
    return HS_OK;
}

/* Orders active targets before dropped ones, keeping their order. */
static int partition(struct tbuild *b)
{
    struct scrape_target_list *tl = b->tl;
    tl->v = hs_arena_alloc(&tl->arena, (b->n + 1) * sizeof(tl->v[0]));
    if (tl->v == NULL)
        return HS_ENOMEM;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < b->n; i++)
            if (b->v[i].is_dropped == (pass == 1))
                tl->v[tl->n++] = b->v[i];
    for (size_t i = 0; i < tl->n; i++)
        tl->nactive += !tl->v[i].is_dropped;
    return HS_OK;
}

int scrape_targets_build(const struct scrape_job *job, const struct scrape_target_group *groups,
                         size_t ngroups, struct scrape_target_list *tl, struct hs_err *err)
{
    hs_arena_reset(&tl->arena);
    tl->v = NULL;
    tl->n = tl->nactive = 0;
    struct tbuild b;
    memset(&b, 0, sizeof(b));
    b.job = job;
    b.tl = tl;
    b.err = err;
    int rc = scrape_relabel_scratch_init(&b.sc, err);
    if (rc != HS_OK)
        return rc;
    char iv[48], to[48];
    hs_format_duration(job->scrape_interval_ms, iv, sizeof(iv));
    hs_format_duration(job->scrape_timeout_ms, to, sizeof(to));
    b.interval = hs_arena_strndup(&tl->arena, iv, strlen(iv));
    b.timeout = hs_arena_strndup(&tl->arena, to, strlen(to));
    if (b.interval == NULL || b.timeout == NULL)
        rc = HS_ENOMEM;
    if (rc == HS_OK)
        rc = make_slots(&b, groups, ngroups);
    if (rc == HS_OK)
        rc = build_groups(&b, job->static_configs, job->nstatic);
    if (rc == HS_OK)
        rc = build_groups(&b, groups, ngroups);
    if (rc == HS_OK)
        rc = partition(&b);
    scrape_relabel_scratch_cleanup(&b.sc);
    if (rc != HS_OK) {
        hs_arena_reset(&tl->arena);
        tl->v = NULL;
        tl->n = tl->nactive = 0;
        return hs_err_set(err, rc, "building targets of job \"%s\": %s", job->job_name,
                          rc == HS_ETOOBIG ? "too many labels" : "out of memory");
    }
    return HS_OK;
}
