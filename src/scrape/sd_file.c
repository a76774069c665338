/*
 * sd_file.c - file-based service discovery (Prometheus file_sd_configs).
 *
 * A file holds a list of target groups, in JSON (name ending in .json) or
 * YAML (.yml / .yaml):
 *     [{"targets": ["host:port", ...], "labels": {"name": "value", ...}}, ...]
 * Every group gets __meta_filepath = the file's path.  YAML errors carry
 * FILE:LINE:COL from the YAML tree; JSON syntax errors carry the parser's
 * line and column, and JSON structure errors name the group and key.
 *
 * scrape_sd_http_parse reads the same JSON list as an http_sd_configs
 * endpoint returns it, with __meta_url = the endpoint's URL.
 *
 * Refreshing is an mtime poll (scrape_sd_file_refresh, called by the
 * scheduler at refresh_interval): globs are expanded again, files whose
 * mtime or size changed are re-read, vanished files are forgotten.  As in
 * Prometheus, only well-formed files are applied: a file that fails keeps
 * the groups it had.  Each file's groups live in that file's own arena, so
 * re-reading one file frees exactly its old strings.
 */
#include "scrape/scrape_internal.h"

#include <jansson.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct scrape_sd_file_entry {
    char *path; /* owned */
    struct timespec mtime;
    off_t size;
    bool is_seen;                       /* matched by the last glob expansion */
    bool is_failed;                     /* the last read of this version failed */
    struct hs_arena arena;              /* the groups below */
    struct scrape_target_group *groups; /* last good content */
    size_t ngroups;
};

/* ---- parsing: common -------------------------------------------------------------- */

struct gbuild {
    const char *path;
    const char *meta; /* the label naming the source: __meta_filepath or __meta_url */
    struct hs_arena *a;
    struct scrape_target_group *g;
    size_t n;
    struct hs_err *err;
};

static int add_meta(struct gbuild *b, struct scrape_target_group *g, size_t nlabels)
{
    g->labels.v[nlabels].name = b->meta;
    g->labels.v[nlabels].value = b->path;
    g->labels.n = nlabels + 1;
    hs_labels_sort(&g->labels);
    g->source = b->path;
    return HS_OK;
}

static int start_groups(struct gbuild *b, size_t n)
{
    if (n > SCRAPE_SD_FILE_MAX_GROUPS)
        return hs_err_set(b->err, HS_ETOOBIG, "%s: more than %d target groups", b->path,
                          SCRAPE_SD_FILE_MAX_GROUPS);
    b->g = hs_arena_calloc(b->a, (n + 1) * sizeof(b->g[0]));
    b->n = n;
    return b->g ? HS_OK : hs_err_set(b->err, HS_ENOMEM, "out of memory");
}

/* ---- YAML ----------------------------------------------------------------------------- */

static int yaml_targets(struct gbuild *b, const struct hs_ydoc *d, const struct hs_ynode *n,
                        struct scrape_target_group *g)
{
    if (hs_ynode_is_null(n))
        return HS_OK;
    if (n->type != HS_Y_SEQ)
        return hs_ynode_error(d, n, HS_EINVAL, b->err, "targets: expected a list of strings");
    g->targets = hs_arena_alloc(b->a, (n->n + 1) * sizeof(g->targets[0]));
    if (g->targets == NULL)
        return hs_err_set(b->err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        const char *s;
        int rc = hs_ynode_str(d, n->items[i], "targets", &s, b->err);
        if (rc != HS_OK)
            return rc;
        if (s[0] == '\0')
            return hs_ynode_error(d, n->items[i], HS_EINVAL, b->err, "targets: empty target");
        if ((g->targets[i] = hs_arena_strndup(b->a, s, strlen(s))) == NULL)
            return hs_err_set(b->err, HS_ENOMEM, "out of memory");
    }
    g->ntargets = n->n;
    return HS_OK;
}

static int yaml_labels(struct gbuild *b, const struct hs_ydoc *d, const struct hs_ynode *n,
                       struct scrape_target_group *g)
{
    size_t cnt = (n != NULL && n->type == HS_Y_MAP) ? n->n : 0;
    if (!hs_ynode_is_null(n) && (n == NULL || n->type != HS_Y_MAP))
        return hs_ynode_error(d, n, HS_EINVAL, b->err, "labels: expected a map");
    g->labels.v = hs_arena_alloc(b->a, (cnt + 1) * sizeof(g->labels.v[0]));
    if (g->labels.v == NULL)
        return hs_err_set(b->err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const struct hs_ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        const char *s;
        if (!hs_label_name_valid(k->scalar, strlen(k->scalar)))
            return hs_ynode_error(d, k, HS_EINVAL, b->err,
                                  "labels: \"%s\" is not a valid label name", k->scalar);
        int rc = hs_ynode_str(d, v, "labels", &s, b->err);
        if (rc != HS_OK)
            return rc;
        if (!scrape__utf8_valid(s, strlen(s)))
            return hs_ynode_error(d, v, HS_EINVAL, b->err, "labels: value is not valid UTF-8");
        g->labels.v[i].name = hs_arena_strndup(b->a, k->scalar, strlen(k->scalar));
        g->labels.v[i].value = hs_arena_strndup(b->a, s, strlen(s));
        if (g->labels.v[i].name == NULL || g->labels.v[i].value == NULL)
            return hs_err_set(b->err, HS_ENOMEM, "out of memory");
    }
    return add_meta(b, g, cnt);
}

static int parse_yaml(struct gbuild *b, const char *text, size_t len)
{
    struct hs_ydoc *d = hs_ydoc_parse(text, len, b->path, b->err);
    if (d == NULL)
        return b->err ? b->err->code : HS_EPARSE;
    int rc = HS_OK;
    const struct hs_ynode *root = d->root;
    if (root != NULL && !hs_ynode_is_null(root) && root->type != HS_Y_SEQ)
        rc = hs_ynode_error(d, root, HS_EINVAL, b->err, "expected a list of target groups");
    size_t n = (root != NULL && root->type == HS_Y_SEQ) ? root->n : 0;
    if (rc == HS_OK)
        rc = start_groups(b, n);
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        const struct hs_ynode *m = root->items[i];
        if (m->type != HS_Y_MAP) {
            rc = hs_ynode_error(d, m, HS_EINVAL, b->err, "a target group must be a map");
            break;
        }
        for (size_t k = 0; rc == HS_OK && k < m->n; k++) {
            const char *key = m->items[2 * k]->scalar;
            if (strcmp(key, "targets") != 0 && strcmp(key, "labels") != 0)
                rc = hs_ynode_error(d, m->items[2 * k], HS_EINVAL, b->err,
                                    "unknown key \"%s\" in a target group", key);
        }
        if (rc == HS_OK)
            rc = yaml_targets(b, d, hs_ynode_get(m, "targets"), &b->g[i]);
        if (rc == HS_OK)
            rc = yaml_labels(b, d, hs_ynode_get(m, "labels"), &b->g[i]);
    }
    hs_ydoc_free(d);
    return rc;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static int json_group(struct gbuild *b, size_t gi, json_t *obj, struct scrape_target_group *g)
{
    const char *key;
    json_t *val;
    if (!json_is_object(obj))
        return hs_err_set(b->err, HS_EINVAL, "%s: group %zu: a target group must be an object",
                          b->path, gi);
    json_object_foreach(obj, key, val)
    {
        if (strcmp(key, "targets") != 0 && strcmp(key, "labels") != 0)
            return hs_err_set(b->err, HS_EINVAL, "%s: group %zu: unknown key \"%s\"", b->path, gi,
                              key);
    }
    json_t *t = json_object_get(obj, "targets"), *l = json_object_get(obj, "labels");
    if (t != NULL && !json_is_null(t)) {
        if (!json_is_array(t))
            return hs_err_set(b->err, HS_EINVAL, "%s: group %zu: targets: expected a list", b->path,
                              gi);
        size_t n = json_array_size(t);
        g->targets = hs_arena_alloc(b->a, (n + 1) * sizeof(g->targets[0]));
        if (g->targets == NULL)
            return hs_err_set(b->err, HS_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(t, i);
            if (!json_is_string(s) || json_string_length(s) == 0)
                return hs_err_set(b->err, HS_EINVAL,
                                  "%s: group %zu: targets[%zu]: expected a non-empty string",
                                  b->path, gi, i);
            g->targets[i] = hs_arena_strndup(b->a, json_string_value(s), json_string_length(s));
            if (g->targets[i] == NULL)
                return hs_err_set(b->err, HS_ENOMEM, "out of memory");
        }
        g->ntargets = n;
    }
    if (l != NULL && !json_is_null(l) && !json_is_object(l))
        return hs_err_set(b->err, HS_EINVAL, "%s: group %zu: labels: expected an object", b->path,
                          gi);
    size_t cnt = json_is_object(l) ? json_object_size(l) : 0, i = 0;
    g->labels.v = hs_arena_alloc(b->a, (cnt + 1) * sizeof(g->labels.v[0]));
    if (g->labels.v == NULL)
        return hs_err_set(b->err, HS_ENOMEM, "out of memory");
    if (cnt > 0) {
        json_object_foreach(l, key, val)
        {
            if (!hs_label_name_valid(key, strlen(key)))
                return hs_err_set(b->err, HS_EINVAL,
                                  "%s: group %zu: labels: \"%s\" is not a valid label name",
                                  b->path, gi, key);
            if (!json_is_string(val))
                return hs_err_set(b->err, HS_EINVAL,
                                  "%s: group %zu: labels: value of \"%s\" must be a string",
                                  b->path, gi, key);
            g->labels.v[i].name = hs_arena_strndup(b->a, key, strlen(key));
            g->labels.v[i].value =
                hs_arena_strndup(b->a, json_string_value(val), json_string_length(val));
            if (g->labels.v[i].name == NULL || g->labels.v[i].value == NULL)
                return hs_err_set(b->err, HS_ENOMEM, "out of memory");
            i++;
        }
    }
    return add_meta(b, g, cnt);
}

static int parse_json(struct gbuild *b, const char *text, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        /* jansson names its own flag for \u0000; say what is wrong instead */
        const char *why =
            strstr(je.text, "JSON_ALLOW_NUL") ? "NUL character (\\u0000) in a string" : je.text;
        int rc = hs_err_set(b->err, HS_EPARSE, "%s:%d:%d: %s", b->path, je.line, je.column, why);
        if (b->err) {
            b->err->line = je.line;
            b->err->col = je.column;
            b->err->pos = je.position > 0 ? (size_t)je.position : 0;
        }
        return rc;
    }
    int rc = HS_OK;
    if (!json_is_array(root))
        rc = hs_err_set(b->err, HS_EINVAL, "%s: expected a list of target groups", b->path);
    if (rc == HS_OK)
        rc = start_groups(b, json_array_size(root));
    for (size_t i = 0; rc == HS_OK && i < b->n; i++)
        rc = json_group(b, i, json_array_get(root, i), &b->g[i]);
    json_decref(root);
    return rc;
}

int scrape_sd_file_parse(const char *path, const char *text, size_t len, struct hs_arena *arena,
                         struct scrape_target_group **out, size_t *nout, struct hs_err *err)
{
    *out = NULL;
    *nout = 0;
    struct gbuild b = {path, "__meta_filepath", arena, NULL, 0, err};
    size_t pl = strlen(path);
    bool is_json = pl >= 5 && strcasecmp(path + pl - 5, ".json") == 0;
    int rc = is_json ? parse_json(&b, text, len) : parse_yaml(&b, text, len);
    if (rc != HS_OK)
        return rc;
    *out = b.g;
    *nout = b.n;
    return HS_OK;
}

int scrape_sd_http_parse(const char *url, const char *text, size_t len, struct hs_arena *arena,
                         struct scrape_target_group **out, size_t *nout, struct hs_err *err)
{
    *out = NULL;
    *nout = 0;
    struct gbuild b = {url, "__meta_url", arena, NULL, 0, err};
    int rc = parse_json(&b, text, len);
    if (rc != HS_OK)
        return rc;
    *out = b.g;
    *nout = b.n;
    return HS_OK;
}

/* ---- refresh -------------------------------------------------------------------------- */

void scrape_sd_file_init(struct scrape_sd_file *sd)
{
    memset(sd, 0, sizeof(*sd));
}

static void entry_cleanup(struct scrape_sd_file_entry *e)
{
    hs_free(e->path);
    hs_arena_cleanup(&e->arena);
}

void scrape_sd_file_cleanup(struct scrape_sd_file *sd)
{
    for (size_t i = 0; i < sd->nfiles; i++)
        entry_cleanup(&sd->files[i]);
    hs_free(sd->files);
    hs_free(sd->groups);
    memset(sd, 0, sizeof(*sd));
}

static struct scrape_sd_file_entry *find_or_add(struct scrape_sd_file *sd, const char *path,
                                                size_t *cap, int *rc)
{
    for (size_t i = 0; i < sd->nfiles; i++)
        if (strcmp(sd->files[i].path, path) == 0)
            return &sd->files[i];
    if (sd->nfiles >= SCRAPE_SD_FILE_MAX_FILES) {
        *rc = HS_ETOOBIG;
        return NULL;
    }
    if (sd->nfiles == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct scrape_sd_file_entry *v = hs_reallocarray(sd->files, ncap, sizeof(v[0]));
        if (v == NULL) {
            *rc = HS_ENOMEM;
            return NULL;
        }
        sd->files = v;
        *cap = ncap;
    }
    struct scrape_sd_file_entry *e = &sd->files[sd->nfiles];
    memset(e, 0, sizeof(*e));
    e->path = hs_strdup(path);
    if (e->path == NULL) {
        *rc = HS_ENOMEM;
        return NULL;
    }
    hs_arena_init(&e->arena, 4096, 0);
    e->mtime.tv_sec = -1;
    sd->nfiles++;
    return e;
}

/* Re-reads one file when it changed; sets *is_changed when its groups did. */
static int reload(struct scrape_sd_file *sd, struct scrape_sd_file_entry *e, bool *is_changed)
{
    struct stat st;
    if (stat(e->path, &st) != 0)
        return HS_OK; /* vanished between glob and stat: the next poll forgets it */
    if (st.st_mtim.tv_sec == e->mtime.tv_sec && st.st_mtim.tv_nsec == e->mtime.tv_nsec &&
        st.st_size == e->size)
        return HS_OK;
    e->mtime = st.st_mtim;
    e->size = st.st_size;
    struct hs_err err = {0};
    size_t len = 0;
    struct hs_arena fresh;
    hs_arena_init(&fresh, 4096, 0);
    struct scrape_target_group *g = NULL;
    size_t ng = 0;
    char *text = hs_read_file(e->path, SCRAPE_SD_FILE_MAX_BYTES, &len, &err);
    int rc = text ? scrape_sd_file_parse(e->path, text, len, &fresh, &g, &ng, &err) : err.code;
    hs_free(text);
    if (rc == HS_ENOMEM) {
        hs_arena_cleanup(&fresh);
        e->mtime.tv_sec = -1; /* try again next time */
        return rc;
    }
    if (rc != HS_OK) {
        hs_arena_cleanup(&fresh);
        e->is_failed = true;
        sd->last_err = err;
        hs_log(HS_LOG_WARN, "file_sd: keeping the previous targets of a broken file",
               HS_LSTR("file", e->path), HS_LSTR("err", err.msg));
        return HS_OK;
    }
    hs_arena_cleanup(&e->arena);
    e->arena = fresh;
    e->groups = g;
    e->ngroups = ng;
    e->is_failed = false;
    *is_changed = true;
    return HS_OK;
}

static int expand(struct scrape_sd_file *sd, const char *pattern, size_t *cap, bool *is_changed)
{
    glob_t gl;
    memset(&gl, 0, sizeof(gl));
    int g = glob(pattern, 0, NULL, &gl);
    if (g == GLOB_NOMATCH) {
        globfree(&gl);
        return HS_OK;
    }
    if (g != 0) {
        globfree(&gl);
        return g == GLOB_NOSPACE ? HS_ENOMEM : HS_OK;
    }
    int rc = HS_OK;
    for (size_t i = 0; rc == HS_OK && i < gl.gl_pathc; i++) {
        struct scrape_sd_file_entry *e = find_or_add(sd, gl.gl_pathv[i], cap, &rc);
        if (e == NULL)
            break;
        e->is_seen = true;
        rc = reload(sd, e, is_changed);
    }
    globfree(&gl);
    return rc;
}

static int rebuild_groups(struct scrape_sd_file *sd)
{
    size_t total = 0;
    for (size_t i = 0; i < sd->nfiles; i++)
        total += sd->files[i].ngroups;
    struct scrape_target_group *v = hs_calloc(total + 1, sizeof(v[0]));
    if (v == NULL)
        return HS_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < sd->nfiles; i++)
        for (size_t j = 0; j < sd->files[i].ngroups; j++)
            v[k++] = sd->files[i].groups[j];
    hs_free(sd->groups);
    sd->groups = v;
    sd->ngroups = k;
    return HS_OK;
}

int scrape_sd_file_refresh(struct scrape_sd_file *sd, const struct scrape_file_sd_config *cfgs,
                           size_t ncfgs, bool *is_changed, struct hs_err *err)
{
    *is_changed = false;
    size_t cap = sd->nfiles;
    for (size_t i = 0; i < sd->nfiles; i++)
        sd->files[i].is_seen = false;
    int rc = HS_OK;
    for (size_t c = 0; rc == HS_OK && c < ncfgs; c++)
        for (size_t f = 0; rc == HS_OK && f < cfgs[c].nfiles; f++)
            rc = expand(sd, cfgs[c].files[f], &cap, is_changed);
    if (rc != HS_OK)
        return hs_err_set(err, rc, "file_sd: %s",
                          rc == HS_ETOOBIG ? "too many files" : "out of memory");
    size_t k = 0;
    sd->nerrors = 0;
    for (size_t i = 0; i < sd->nfiles; i++) {
        if (!sd->files[i].is_seen) {
            *is_changed |= sd->files[i].ngroups > 0;
            entry_cleanup(&sd->files[i]);
            continue;
        }
        sd->nerrors += sd->files[i].is_failed;
        sd->files[k++] = sd->files[i];
    }
    sd->nfiles = k;
    if (*is_changed || sd->groups == NULL) {
        if (rebuild_groups(sd) != HS_OK) {
            /* the old array may point into freed file arenas: drop it */
            hs_free(sd->groups);
            sd->groups = NULL;
            sd->ngroups = 0;
            return hs_err_set(err, HS_ENOMEM, "file_sd: out of memory");
        }
    }
    return HS_OK;
}
