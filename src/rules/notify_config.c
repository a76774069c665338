/*
 * notify_config.c - the `alerting:` section of holoscope.yml: Alertmanagers
 * (a url, or Prometheus-style static_configs with scheme and path_prefix),
 * webhooks, resend delay, external labels and URL, queue sizes.  The result
 * feeds rules_notifier_new (the HTTP sender) and rules_manager_opts.
 *
 * Every string of the result lives in its arena.  Unknown keys are errors,
 * so a misspelt "bearer_tokn" never silently sends alerts unauthenticated.
 */
#include "rules/internal.h"

#include <string.h>
#include <strings.h>

/* Receivers at most (alertmanagers + webhooks) and headers per receiver. */
#define MAX_TARGETS 64
#define MAX_HEADERS 32

struct pctx {
    const struct hs_ydoc *d;
    struct rules_alerting_config *c;
    struct hs_err *err;
};

static int nomem(struct pctx *p)
{
    return hs_err_set(p->err, HS_ENOMEM, "out of memory");
}

static int expect_map(struct pctx *p, const struct hs_ynode *n, const char *what)
{
    if (n->type != HS_Y_MAP)
        return hs_ynode_error(p->d, n, HS_EINVAL, p->err, "%s: expected a map", what);
    return HS_OK;
}

/* Checks that every key of map 'n' is one of 'known' (NULL-terminated). */
static int check_keys(struct pctx *p, const struct hs_ynode *n, const char *what,
                      const char *const *known)
{
    for (size_t i = 0; i < n->n; i++) {
        const struct hs_ynode *k = n->items[2 * i];
        bool ok = false;
        for (size_t j = 0; known[j] && !ok; j++)
            ok = k->scalar && strcmp(k->scalar, known[j]) == 0;
        if (!ok)
            return hs_ynode_error(p->d, k, HS_EINVAL, p->err, "%s: unknown key \"%s\"", what,
                                  k->scalar ? k->scalar : "?");
    }
    return HS_OK;
}

/* A string setting copied into the arena; absent or null leaves *out as is. */
static int get_str(struct pctx *p, const struct hs_ynode *map, const char *key, const char *what,
                   const char **out)
{
    const struct hs_ynode *v = hs_ynode_get(map, key);
    if (!v || hs_ynode_is_null(v))
        return HS_OK;
    const char *s;
    int rc = hs_ynode_str(p->d, v, what, &s, p->err);
    if (rc != HS_OK)
        return rc;
    *out = hs_arena_strndup(&p->c->arena, s, strlen(s));
    return *out ? HS_OK : nomem(p);
}

static int get_url(struct pctx *p, const struct hs_ynode *map, const char *what, const char **out)
{
    int rc = get_str(p, map, "url", what, out);
    if (rc != HS_OK || !*out)
        return rc;
    if (!hs_has_prefix(*out, "http://") && !hs_has_prefix(*out, "https://"))
        return hs_ynode_error(p->d, hs_ynode_get(map, "url"), HS_EINVAL, p->err,
                              "%s: url must start with http:// or https://", what);
    return HS_OK;
}

static int parse_tls(struct pctx *p, const struct hs_ynode *n, struct http_client_tls *tls)
{
    static const char *const known[] = {
        "ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify", NULL};
    int rc = expect_map(p, n, "tls_config");
    if (rc == HS_OK)
        rc = check_keys(p, n, "tls_config", known);
    if (rc == HS_OK)
        rc = get_str(p, n, "ca_file", "tls_config.ca_file", &tls->ca_file);
    if (rc == HS_OK)
        rc = get_str(p, n, "cert_file", "tls_config.cert_file", &tls->cert_file);
    if (rc == HS_OK)
        rc = get_str(p, n, "key_file", "tls_config.key_file", &tls->key_file);
    if (rc == HS_OK)
        rc = get_str(p, n, "server_name", "tls_config.server_name", &tls->server_name);
    const struct hs_ynode *v = hs_ynode_get(n, "insecure_skip_verify");
    if (rc == HS_OK && v && !hs_ynode_is_null(v))
        rc = hs_ynode_bool(p->d, v, "tls_config.insecure_skip_verify", &tls->insecure_skip_verify,
                           p->err);
    return rc;
}

static int parse_headers(struct pctx *p, const struct hs_ynode *n, struct rules_notify_target *t)
{
    int rc = expect_map(p, n, "headers");
    if (rc != HS_OK)
        return rc;
    if (n->n > MAX_HEADERS)
        return hs_ynode_error(p->d, n, HS_EINVAL, p->err, "headers: more than %d", MAX_HEADERS);
    struct rules_notify_header *h = hs_arena_calloc(&p->c->arena, (n->n + 1) * sizeof *h);
    if (!h)
        return nomem(p);
    for (size_t i = 0; i < n->n; i++) {
        const struct hs_ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        const char *name = k->scalar ? k->scalar : "";
        bool ok = *name != '\0';
        for (const char *c = name; *c && ok; c++)
            ok = *c > 32 && *c < 127 && *c != ':';
        if (!ok)
            return hs_ynode_error(p->d, k, HS_EINVAL, p->err, "headers: invalid name \"%s\"", name);
        if (strcasecmp(name, "Content-Type") == 0 || strcasecmp(name, "Content-Length") == 0 ||
            strcasecmp(name, "Authorization") == 0)
            return hs_ynode_error(p->d, k, HS_EINVAL, p->err,
                                  "headers: \"%s\" is set by holoscope (use bearer_token or "
                                  "basic_auth for Authorization)",
                                  name);
        const char *value;
        rc = hs_ynode_str(p->d, v, "headers", &value, p->err);
        if (rc != HS_OK)
            return rc;
        if (strpbrk(value, "\r\n"))
            return hs_ynode_error(p->d, v, HS_EINVAL, p->err,
                                  "headers: value of \"%s\" holds a line break", name);
        h[i].name = hs_arena_strndup(&p->c->arena, name, strlen(name));
        h[i].value = hs_arena_strndup(&p->c->arena, value, strlen(value));
        if (!h[i].name || !h[i].value)
            return nomem(p);
    }
    t->headers = h;
    t->nheaders = n->n;
    return HS_OK;
}

/* Settings alertmanagers and webhooks share: name, timeout, auth, headers, TLS. */
static int parse_common(struct pctx *p, const struct hs_ynode *n, const char *what,
                        struct rules_notify_target *t)
{
    int rc = get_str(p, n, "name", what, &t->name);
    if (rc == HS_OK)
        rc = get_str(p, n, "bearer_token", what, &t->bearer_token);
    const struct hs_ynode *v = hs_ynode_get(n, "timeout");
    if (rc == HS_OK && v && !hs_ynode_is_null(v)) {
        rc = hs_ynode_duration(p->d, v, "timeout", &t->timeout_ms, p->err);
        if (rc == HS_OK && t->timeout_ms <= 0)
            rc = hs_ynode_error(p->d, v, HS_EINVAL, p->err, "timeout: must be > 0");
    }
    v = hs_ynode_get(n, "basic_auth");
    if (rc == HS_OK && v && !hs_ynode_is_null(v)) {
        static const char *const known[] = {"username", "password", NULL};
        rc = expect_map(p, v, "basic_auth");
        if (rc == HS_OK)
            rc = check_keys(p, v, "basic_auth", known);
        if (rc == HS_OK)
            rc = get_str(p, v, "username", "basic_auth.username", &t->basic_auth_user);
        if (rc == HS_OK)
            rc = get_str(p, v, "password", "basic_auth.password", &t->basic_auth_password);
        if (rc == HS_OK && !t->basic_auth_user)
            rc = hs_ynode_error(p->d, v, HS_EINVAL, p->err, "basic_auth: username is required");
        if (rc == HS_OK && t->bearer_token)
            rc = hs_ynode_error(p->d, v, HS_EINVAL, p->err,
                                "%s: basic_auth and bearer_token are mutually exclusive", what);
    }
    v = hs_ynode_get(n, "headers");
    if (rc == HS_OK && v && !hs_ynode_is_null(v))
        rc = parse_headers(p, v, t);
    v = hs_ynode_get(n, "tls_config");
    if (rc == HS_OK && v && !hs_ynode_is_null(v))
        rc = parse_tls(p, v, &t->tls);
    return rc;
}

static int add_target(struct pctx *p, const struct hs_ynode *at,
                      const struct rules_notify_target *t)
{
    if (p->c->ntargets >= MAX_TARGETS)
        return hs_ynode_error(p->d, at, HS_EINVAL, p->err, "alerting: more than %d receivers",
                              MAX_TARGETS);
    /* the name labels the receiver's metrics: it must be unique */
    const char *key = t->name ? t->name : t->url;
    for (size_t i = 0; i < p->c->ntargets; i++) {
        const struct rules_notify_target *o = &p->c->targets[i];
        if (strcmp(o->name ? o->name : o->url, key) == 0)
            return hs_ynode_error(p->d, at, HS_EINVAL, p->err,
                                  "alerting: receiver \"%s\" is configured twice (give each a "
                                  "distinct name)",
                                  t->name ? t->name : "with this url");
    }
    p->c->targets[p->c->ntargets++] = *t;
    return HS_OK;
}

/* static_configs: [{targets: [host:port, ...]}] expands to one target each. */
static int parse_static(struct pctx *p, const struct hs_ynode *sc, const char *scheme,
                        const char *prefix, const struct rules_notify_target *proto)
{
    if (sc->type != HS_Y_SEQ)
        return hs_ynode_error(p->d, sc, HS_EINVAL, p->err, "static_configs: expected a list");
    for (size_t i = 0; i < sc->n; i++) {
        static const char *const known[] = {"targets", "labels", NULL};
        const struct hs_ynode *e = sc->items[i];
        int rc = expect_map(p, e, "static_configs");
        if (rc == HS_OK)
            rc = check_keys(p, e, "static_configs", known);
        if (rc != HS_OK)
            return rc;
        const struct hs_ynode *ts = hs_ynode_get(e, "targets");
        if (!ts || ts->type != HS_Y_SEQ)
            return hs_ynode_error(p->d, ts ? ts : e, HS_EINVAL, p->err,
                                  "static_configs: targets: expected a list of host:port");
        for (size_t k = 0; k < ts->n; k++) {
            const char *hp;
            rc = hs_ynode_str(p->d, ts->items[k], "targets", &hp, p->err);
            if (rc != HS_OK)
                return rc;
            if (*hp == '\0' || strpbrk(hp, "/?#@ "))
                return hs_ynode_error(p->d, ts->items[k], HS_EINVAL, p->err,
                                      "targets: \"%s\" is not host:port", hp);
            struct rules_notify_target t = *proto;
            const char *pre = prefix;
            while (*pre == '/')
                pre++;
            size_t pl = strlen(pre);
            while (pl && pre[pl - 1] == '/')
                pl--;
            t.url = hs_arena_printf(&p->c->arena, "%s://%s%s%.*s", scheme, hp, pl ? "/" : "",
                                    (int)pl, pre);
            /* a named static_configs entry names each Alertmanager NAME/HOST:PORT */
            if (proto->name)
                t.name = hs_arena_printf(&p->c->arena, "%s/%s", proto->name, hp);
            if (!t.url || (proto->name && !t.name))
                return nomem(p);
            rc = add_target(p, ts->items[k], &t);
            if (rc != HS_OK)
                return rc;
        }
    }
    return HS_OK;
}

static int parse_alertmanager(struct pctx *p, const struct hs_ynode *n)
{
    static const char *const known[] = {"url",     "static_configs", "scheme",       "path_prefix",
                                        "name",    "timeout",        "bearer_token", "basic_auth",
                                        "headers", "tls_config",     "api_version",  NULL};
    int rc = expect_map(p, n, "alertmanagers");
    if (rc == HS_OK)
        rc = check_keys(p, n, "alertmanagers", known);
    struct rules_notify_target t = {0};
    t.format = RULES_NOTIFY_AM_V2;
    if (rc == HS_OK)
        rc = get_url(p, n, "alertmanagers", &t.url);
    if (rc == HS_OK)
        rc = parse_common(p, n, "alertmanagers", &t);
    const char *api = "v2", *scheme = "http", *prefix = "/";
    if (rc == HS_OK)
        rc = get_str(p, n, "api_version", "api_version", &api);
    if (rc == HS_OK && strcmp(api, "v2") != 0)
        rc = hs_ynode_error(p->d, hs_ynode_get(n, "api_version"), HS_EINVAL, p->err,
                            "api_version: only v2 is supported");
    if (rc == HS_OK)
        rc = get_str(p, n, "scheme", "scheme", &scheme);
    if (rc == HS_OK && strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        rc = hs_ynode_error(p->d, hs_ynode_get(n, "scheme"), HS_EINVAL, p->err,
                            "scheme: expected http or https");
    if (rc == HS_OK)
        rc = get_str(p, n, "path_prefix", "path_prefix", &prefix);
    if (rc != HS_OK)
        return rc;
    const struct hs_ynode *sc = hs_ynode_get(n, "static_configs");
    if ((t.url != NULL) == (sc != NULL && !hs_ynode_is_null(sc)))
        return hs_ynode_error(p->d, n, HS_EINVAL, p->err,
                              "alertmanagers: give either url or static_configs");
    if (t.url)
        return add_target(p, n, &t);
    return parse_static(p, sc, scheme, prefix, &t);
}

static int parse_webhook(struct pctx *p, const struct hs_ynode *n)
{
    static const char *const known[] = {"url",     "send_resolved", "name",
                                        "timeout", "bearer_token",  "basic_auth",
                                        "headers", "tls_config",    NULL};
    int rc = expect_map(p, n, "webhooks");
    if (rc == HS_OK)
        rc = check_keys(p, n, "webhooks", known);
    struct rules_notify_target t = {0};
    t.format = RULES_NOTIFY_WEBHOOK_V4;
    if (rc == HS_OK)
        rc = get_url(p, n, "webhooks", &t.url);
    if (rc == HS_OK && !t.url)
        rc = hs_ynode_error(p->d, n, HS_EINVAL, p->err, "webhooks: url is required");
    if (rc == HS_OK)
        rc = parse_common(p, n, "webhooks", &t);
    const struct hs_ynode *v = hs_ynode_get(n, "send_resolved");
    if (rc == HS_OK && v && !hs_ynode_is_null(v)) {
        bool send_resolved = true;
        rc = hs_ynode_bool(p->d, v, "send_resolved", &send_resolved, p->err);
        t.skip_resolved = !send_resolved;
    }
    return rc == HS_OK ? add_target(p, n, &t) : rc;
}

static int parse_list(struct pctx *p, const struct hs_ynode *n, const char *what,
                      int (*one)(struct pctx *, const struct hs_ynode *))
{
    if (!n || hs_ynode_is_null(n))
        return HS_OK;
    if (n->type != HS_Y_SEQ)
        return hs_ynode_error(p->d, n, HS_EINVAL, p->err, "%s: expected a list", what);
    int rc = HS_OK;
    for (size_t i = 0; i < n->n && rc == HS_OK; i++)
        rc = one(p, n->items[i]);
    return rc;
}

static int parse_external_labels(struct pctx *p, const struct hs_ynode *n)
{
    if (!n || hs_ynode_is_null(n))
        return HS_OK;
    int rc = expect_map(p, n, "external_labels");
    if (rc != HS_OK)
        return rc;
    struct hs_label *v = hs_arena_calloc(&p->c->arena, (n->n + 1) * sizeof *v);
    if (!v)
        return nomem(p);
    for (size_t i = 0; i < n->n; i++) {
        const struct hs_ynode *k = n->items[2 * i];
        const char *name = k->scalar ? k->scalar : "", *value;
        if (!hs_label_name_valid(name, strlen(name)) || hs_has_prefix(name, "__"))
            return hs_ynode_error(p->d, k, HS_EINVAL, p->err,
                                  "external_labels: invalid label name \"%s\"", name);
        rc = hs_ynode_str(p->d, n->items[2 * i + 1], "external_labels", &value, p->err);
        if (rc != HS_OK)
            return rc;
        v[i].name = hs_arena_strndup(&p->c->arena, name, strlen(name));
        v[i].value = hs_arena_strndup(&p->c->arena, value, strlen(value));
        if (!v[i].name || !v[i].value)
            return nomem(p);
    }
    p->c->external_labels = (struct hs_labels){n->n, v};
    hs_labels_sort(&p->c->external_labels);
    if (!hs_labels_valid(&p->c->external_labels))
        return hs_ynode_error(p->d, n, HS_EINVAL, p->err, "external_labels: repeated name");
    return HS_OK;
}

static int get_count(struct pctx *p, const struct hs_ynode *map, const char *key, int64_t max,
                     int64_t *out)
{
    const struct hs_ynode *v = hs_ynode_get(map, key);
    if (!v || hs_ynode_is_null(v))
        return HS_OK;
    int rc = hs_ynode_i64(p->d, v, key, out, p->err);
    if (rc == HS_OK && (*out < 0 || *out > max))
        rc = hs_ynode_error(p->d, v, HS_EINVAL, p->err, "%s: must be between 0 and %lld", key,
                            (long long)max);
    return rc;
}

static int parse_top(struct pctx *p, const struct hs_ynode *n)
{
    static const char *const known[] = {"alertmanagers", "webhooks",        "resend_delay",
                                        "external_url",  "external_labels", "queue_capacity",
                                        "max_batch",     "max_retries",     NULL};
    int rc = expect_map(p, n, "alerting");
    if (rc == HS_OK)
        rc = check_keys(p, n, "alerting", known);
    const struct hs_ynode *v = hs_ynode_get(n, "resend_delay");
    if (rc == HS_OK && v && !hs_ynode_is_null(v)) {
        rc = hs_ynode_duration(p->d, v, "resend_delay", &p->c->resend_delay_ms, p->err);
        if (rc == HS_OK && p->c->resend_delay_ms <= 0)
            rc = hs_ynode_error(p->d, v, HS_EINVAL, p->err, "resend_delay: must be > 0");
    }
    if (rc == HS_OK)
        rc = get_str(p, n, "external_url", "external_url", &p->c->external_url);
    if (rc == HS_OK)
        rc = parse_external_labels(p, hs_ynode_get(n, "external_labels"));
    int64_t qc = 0, mb = 0, mr = 0;
    if (rc == HS_OK)
        rc = get_count(p, n, "queue_capacity", 10000000, &qc);
    if (rc == HS_OK)
        rc = get_count(p, n, "max_batch", 100000, &mb);
    if (rc == HS_OK)
        rc = get_count(p, n, "max_retries", 100, &mr);
    p->c->queue_capacity = (size_t)qc;
    p->c->max_batch = (size_t)mb;
    p->c->max_retries = (int)mr;
    if (rc == HS_OK)
        rc = parse_list(p, hs_ynode_get(n, "alertmanagers"), "alertmanagers", parse_alertmanager);
    if (rc == HS_OK)
        rc = parse_list(p, hs_ynode_get(n, "webhooks"), "webhooks", parse_webhook);
    return rc;
}

int rules_alerting_config_parse(const struct hs_ydoc *d, const struct hs_ynode *node,
                                struct rules_alerting_config **out, struct hs_err *err)
{
    *out = NULL;
    struct rules_alerting_config *c = hs_calloc(1, sizeof *c);
    if (!c)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    hs_arena_init(&c->arena, 4096, 0);
    c->resend_delay_ms = 60000;
    c->targets = hs_arena_calloc(&c->arena, MAX_TARGETS * sizeof *c->targets);
    if (!c->targets) {
        rules_alerting_config_free(c);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    struct pctx p = {d, c, err};
    int rc = node && !hs_ynode_is_null(node) ? parse_top(&p, node) : HS_OK;
    if (rc != HS_OK) {
        rules_alerting_config_free(c);
        return rc;
    }
    *out = c;
    return HS_OK;
}

void rules_alerting_config_free(struct rules_alerting_config *c)
{
    if (!c)
        return;
    hs_arena_cleanup(&c->arena);
    hs_free(c);
}

void rules_alerting_notifier_opts(const struct rules_alerting_config *c,
                                  struct rules_notifier_opts *out)
{
    memset(out, 0, sizeof *out);
    out->targets = c->targets;
    out->ntargets = c->ntargets;
    out->queue_capacity = c->queue_capacity;
    out->max_batch = c->max_batch;
    out->max_retries = c->max_retries;
    out->external_url = c->external_url;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool target_eq(const struct rules_notify_target *a, const struct rules_notify_target *b)
{
    bool eq =
        str_eq(a->url, b->url) && a->format == b->format &&
        str_eq(a->bearer_token, b->bearer_token) && str_eq(a->name, b->name) &&
        str_eq(a->basic_auth_user, b->basic_auth_user) &&
        str_eq(a->basic_auth_password, b->basic_auth_password) && a->timeout_ms == b->timeout_ms &&
        a->skip_resolved == b->skip_resolved && str_eq(a->tls.ca_file, b->tls.ca_file) &&
        str_eq(a->tls.cert_file, b->tls.cert_file) && str_eq(a->tls.key_file, b->tls.key_file) &&
        str_eq(a->tls.server_name, b->tls.server_name) &&
        a->tls.insecure_skip_verify == b->tls.insecure_skip_verify && a->nheaders == b->nheaders;
    for (size_t i = 0; eq && i < a->nheaders; i++)
        eq = str_eq(a->headers[i].name, b->headers[i].name) &&
             str_eq(a->headers[i].value, b->headers[i].value);
    return eq;
}

static const struct rules_alerting_config no_alerting = {.resend_delay_ms = 60000};

bool rules_alerting_receivers_equal(const struct rules_alerting_config *a,
                                    const struct rules_alerting_config *b)
{
    a = a ? a : &no_alerting;
    b = b ? b : &no_alerting;
    bool eq = a->ntargets == b->ntargets;
    for (size_t i = 0; eq && i < a->ntargets; i++)
        eq = target_eq(&a->targets[i], &b->targets[i]);
    return eq;
}

bool rules_alerting_settings_equal(const struct rules_alerting_config *a,
                                   const struct rules_alerting_config *b)
{
    a = a ? a : &no_alerting;
    b = b ? b : &no_alerting;
    return a->resend_delay_ms == b->resend_delay_ms && str_eq(a->external_url, b->external_url) &&
           hs_labels_cmp(&a->external_labels, &b->external_labels) == 0 &&
           a->queue_capacity == b->queue_capacity && a->max_batch == b->max_batch &&
           a->max_retries == b->max_retries;
}

bool rules_alerting_config_equal(const struct rules_alerting_config *a,
                                 const struct rules_alerting_config *b)
{
    return rules_alerting_settings_equal(a, b) && rules_alerting_receivers_equal(a, b);
}
