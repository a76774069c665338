/*
 * notify.c - delivering alerts: Alertmanager API v2 and webhook v4 bodies,
 * one bounded queue per target, batches, retries with exponential backoff.
 *
 * An enqueued alert is copied once (labels and annotations packed by
 * hs_labels_dup) and shared by every target's queue through a reference
 * count.  A queue is a ring of pointers; when it is full the oldest alert
 * is dropped and counted.  rules_notifier_run sends at most one batch per
 * target per call: the batch stays at the head of the queue until it is
 * delivered or has failed max_retries + 1 times; between attempts the
 * target waits backoff_initial_ms * 2^attempt (capped at backoff_max_ms).
 * Bearer tokens live only in the target and are handed to the send
 * function; no log line or error message contains them.
 */
#include "rules/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct nalert {
    int refs;
    struct hs_labels *labels;
    struct hs_labels *annotations;
    int64_t starts_at_ms, ends_at_ms;
    char *generator_url;
};

struct target {
    char *url;
    int format;
    char *bearer;
    struct nalert **ring;
    size_t head, len; /* ring[head] is the oldest */
    int attempts;     /* failed attempts of the batch at the head */
    int64_t next_try_ms;
};

struct rules_notifier {
    pthread_mutex_t mu;
    struct rules_notifier_opts o;
    char *external_url;
    struct target *targets;
    size_t ntargets;
    struct rules_notifier_stats stats;
};

static void nalert_unref(struct nalert *a)
{
    if (!a || --a->refs > 0)
        return;
    hs_labels_free(a->labels);
    hs_labels_free(a->annotations);
    hs_free(a->generator_url);
    hs_free(a);
}

struct rules_notifier *rules_notifier_new(const struct rules_notifier_opts *o, struct hs_err *err)
{
    if (!o || !o->send || (o->ntargets && !o->targets)) {
        hs_err_set(err, HS_EINVAL, "notifier: a send function is required");
        return NULL;
    }
    for (size_t i = 0; i < o->ntargets; i++) {
        const struct rules_notify_target *t = &o->targets[i];
        if (!t->url || !(hs_has_prefix(t->url, "http://") || hs_has_prefix(t->url, "https://"))) {
            hs_err_set(err, HS_EINVAL,
                       "notifier: target %zu: URL must start with http:// or "
                       "https://",
                       i);
            return NULL;
        }
        if (t->format != RULES_NOTIFY_AM_V2 && t->format != RULES_NOTIFY_WEBHOOK_V4) {
            hs_err_set(err, HS_EINVAL, "notifier: target %zu: unknown format %d", i, t->format);
            return NULL;
        }
    }
    struct rules_notifier *n = hs_calloc(1, sizeof *n);
    if (!n)
        goto nomem;
    n->o = *o;
    n->o.targets = NULL;
    if (!n->o.queue_capacity)
        n->o.queue_capacity = 10000;
    if (!n->o.max_batch)
        n->o.max_batch = 64;
    if (n->o.max_retries <= 0)
        n->o.max_retries = 3;
    if (n->o.backoff_initial_ms <= 0)
        n->o.backoff_initial_ms = 500;
    if (n->o.backoff_max_ms <= 0)
        n->o.backoff_max_ms = 30000;
    pthread_mutex_init(&n->mu, NULL);
    if (o->external_url && !(n->external_url = hs_strdup(o->external_url)))
        goto nomem_free;
    n->o.external_url = NULL;
    n->targets = hs_calloc(o->ntargets + 1, sizeof *n->targets);
    if (!n->targets)
        goto nomem_free;
    n->ntargets = o->ntargets;
    for (size_t i = 0; i < o->ntargets; i++) {
        struct target *t = &n->targets[i];
        t->format = o->targets[i].format;
        t->url = hs_strdup(o->targets[i].url);
        t->bearer = o->targets[i].bearer_token ? hs_strdup(o->targets[i].bearer_token) : NULL;
        t->ring = hs_calloc(n->o.queue_capacity, sizeof *t->ring);
        if (!t->url || !t->ring || (o->targets[i].bearer_token && !t->bearer))
            goto nomem_free;
    }
    return n;
nomem_free:
    rules_notifier_free(n);
nomem:
    hs_err_set(err, HS_ENOMEM, "out of memory");
    return NULL;
}

void rules_notifier_free(struct rules_notifier *n)
{
    if (!n)
        return;
    for (size_t i = 0; n->targets && i < n->ntargets; i++) {
        struct target *t = &n->targets[i];
        for (size_t k = 0; t->ring && k < t->len; k++)
            nalert_unref(t->ring[(t->head + k) % n->o.queue_capacity]);
        hs_free(t->ring);
        hs_free(t->url);
        if (t->bearer) {
            memset(t->bearer, 0, strlen(t->bearer));
            hs_free(t->bearer);
        }
    }
    hs_free(n->targets);
    hs_free(n->external_url);
    pthread_mutex_destroy(&n->mu);
    hs_free(n);
}

int rules_notifier_enqueue(struct rules_notifier *n, const struct rules_notify_alert *alerts,
                           size_t count, struct hs_err *err)
{
    static const struct hs_labels none = {0, NULL};
    if (n->ntargets == 0)
        return HS_OK;
    for (size_t i = 0; i < count; i++) {
        const struct rules_notify_alert *in = &alerts[i];
        struct nalert *a = hs_calloc(1, sizeof *a);
        if (!a)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        a->labels = hs_labels_dup(in->labels ? in->labels : &none);
        a->annotations = hs_labels_dup(in->annotations ? in->annotations : &none);
        a->generator_url = in->generator_url ? hs_strdup(in->generator_url) : NULL;
        a->starts_at_ms = in->starts_at_ms;
        a->ends_at_ms = in->ends_at_ms;
        a->refs = 1;
        if (!a->labels || !a->annotations || (in->generator_url && !a->generator_url)) {
            nalert_unref(a);
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        }
        pthread_mutex_lock(&n->mu);
        a->refs = 0;
        for (size_t k = 0; k < n->ntargets; k++) {
            struct target *t = &n->targets[k];
            size_t cap = n->o.queue_capacity;
            if (t->len == cap) {
                /* drop the oldest; the batch at the head starts over */
                nalert_unref(t->ring[t->head]);
                t->head = (t->head + 1) % cap;
                t->len--;
                n->stats.dropped++;
            }
            t->ring[(t->head + t->len) % cap] = a;
            t->len++;
            a->refs++;
        }
        pthread_mutex_unlock(&n->mu);
    }
    return HS_OK;
}

/* ---- bodies ------------------------------------------------------------------ */

static int alert_json(struct hs_buf *b, const struct rules_notify_alert *a, bool webhook)
{
    int rc = HS_OK;
    if (webhook) {
        bool resolved = a->ends_at_ms != 0 && a->ends_at_ms <= hs_now_ms();
        rc = hs_buf_printf(b, "{\"status\":\"%s\",", resolved ? "resolved" : "firing");
    } else {
        rc = hs_buf_putc(b, '{');
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(b, "\"labels\":");
    if (rc == HS_OK)
        rc = rules__json_labels(b, a->labels);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"annotations\":");
    if (rc == HS_OK)
        rc = rules__json_labels(b, a->annotations);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"startsAt\":");
    if (rc == HS_OK)
        rc = rules__json_time(b, a->starts_at_ms, a->starts_at_ms != 0);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"endsAt\":");
    if (rc == HS_OK)
        rc = rules__json_time(b, a->ends_at_ms, a->ends_at_ms != 0);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"generatorURL\":");
    if (rc == HS_OK) {
        const char *g = a->generator_url ? a->generator_url : "";
        rc = hs_buf_json_str(b, g, strlen(g));
    }
    if (rc == HS_OK && webhook)
        rc = hs_buf_printf(b, ",\"fingerprint\":\"%016llx\"",
                           (unsigned long long)hs_labels_hash(a->labels));
    return rc == HS_OK ? hs_buf_putc(b, '}') : rc;
}

int rules_notify_am_v2_json(const struct rules_notify_alert *alerts, size_t n, struct hs_buf *out)
{
    int rc = hs_buf_putc(out, '[');
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        if (i)
            rc = hs_buf_putc(out, ',');
        if (rc == HS_OK)
            rc = alert_json(out, &alerts[i], false);
    }
    return rc == HS_OK ? hs_buf_putc(out, ']') : rc;
}

/* Pairs present with the same value in every set; 'v' has room for sets[0]->n. */
static struct hs_labels common(const struct hs_labels *const *sets, size_t n, struct hs_label *v)
{
    struct hs_labels r = {0, v};
    if (n == 0)
        return r;
    for (size_t i = 0; i < sets[0]->n; i++) {
        bool all = true;
        for (size_t k = 1; k < n && all; k++) {
            const char *x = hs_labels_get(sets[k], sets[0]->v[i].name);
            all = x && strcmp(x, sets[0]->v[i].value) == 0;
        }
        if (all)
            v[r.n++] = sets[0]->v[i];
    }
    return r;
}

int rules_notify_webhook_v4_json(const struct rules_notify_alert *alerts, size_t n,
                                 const char *external_url, struct hs_buf *out)
{
    static const struct hs_labels none = {0, NULL};
    const struct hs_labels **ls = hs_calloc(n + 1, sizeof *ls);
    const struct hs_labels **as = hs_calloc(n + 1, sizeof *as);
    struct hs_label *cl = NULL, *ca = NULL;
    int rc = HS_OK;
    if (!ls || !as) {
        rc = HS_ENOMEM;
        goto out;
    }
    bool firing = false;
    int64_t now = hs_now_ms();
    for (size_t i = 0; i < n; i++) {
        ls[i] = alerts[i].labels ? alerts[i].labels : &none;
        as[i] = alerts[i].annotations ? alerts[i].annotations : &none;
        if (alerts[i].ends_at_ms == 0 || alerts[i].ends_at_ms > now)
            firing = true;
    }
    cl = hs_calloc((n ? ls[0]->n : 0) + 1, sizeof *cl);
    ca = hs_calloc((n ? as[0]->n : 0) + 1, sizeof *ca);
    if (!cl || !ca) {
        rc = HS_ENOMEM;
        goto out;
    }
    struct hs_labels cls = common(ls, n, cl), cas = common(as, n, ca);
    const char *an = hs_labels_get(&cls, "alertname");
    rc = hs_buf_printf(out, "{\"version\":\"4\",\"groupKey\":");
    if (rc == HS_OK) {
        char key[600];
        snprintf(key, sizeof key, "{}:{alertname=\"%s\"}", an ? an : "");
        rc = hs_buf_json_str(out, key, strlen(key));
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(out,
                           ",\"truncatedAlerts\":0,\"status\":\"%s\",\"receiver\":"
                           "\"holoscope\",\"groupLabels\":",
                           firing ? "firing" : "resolved");
    if (rc == HS_OK) {
        struct hs_label g[1] = {{"alertname", an ? an : ""}};
        struct hs_labels gl = {an ? 1u : 0u, g};
        rc = rules__json_labels(out, &gl);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"commonLabels\":");
    if (rc == HS_OK)
        rc = rules__json_labels(out, &cls);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"commonAnnotations\":");
    if (rc == HS_OK)
        rc = rules__json_labels(out, &cas);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"externalURL\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, external_url ? external_url : "",
                             external_url ? strlen(external_url) : 0);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"alerts\":[");
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        if (i)
            rc = hs_buf_putc(out, ',');
        if (rc == HS_OK)
            rc = alert_json(out, &alerts[i], true);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "]}");
out:
    hs_free(ls);
    hs_free(as);
    hs_free(cl);
    hs_free(ca);
    return rc;
}

/* ---- sending ------------------------------------------------------------------ */

/* The URL without user info or query (which may hold credentials), for logs. */
static void redact_url(const char *url, char *out, size_t n)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        host = at + 1;
    size_t scheme = (size_t)(strstr(url, "://") ? strstr(url, "://") + 3 - url : 0);
    size_t hl = strcspn(host, "?#");
    snprintf(out, n, "%.*s%.*s", (int)scheme, url, (int)hl, host);
}

int rules_notifier_run(struct rules_notifier *n, int64_t now_ms)
{
    int attempts = 0;
    for (size_t ti = 0; ti < n->ntargets; ti++) {
        struct target *t = &n->targets[ti];
        size_t cap = n->o.queue_capacity;
        /* take a reference to the batch under the lock, send without it */
        pthread_mutex_lock(&n->mu);
        if (t->len == 0 || t->next_try_ms > now_ms) {
            pthread_mutex_unlock(&n->mu);
            continue;
        }
        size_t nb = HS_MIN(t->len, n->o.max_batch);
        struct nalert **batch = hs_calloc(nb, sizeof *batch);
        struct rules_notify_alert *view = hs_calloc(nb, sizeof *view);
        if (!batch || !view) {
            pthread_mutex_unlock(&n->mu);
            hs_free(batch);
            hs_free(view);
            continue; /* try again on the next run */
        }
        for (size_t k = 0; k < nb; k++) {
            batch[k] = t->ring[(t->head + k) % cap];
            batch[k]->refs++;
            view[k].labels = batch[k]->labels;
            view[k].annotations = batch[k]->annotations;
            view[k].starts_at_ms = batch[k]->starts_at_ms;
            view[k].ends_at_ms = batch[k]->ends_at_ms;
            view[k].generator_url = batch[k]->generator_url;
        }
        pthread_mutex_unlock(&n->mu);

        struct hs_buf body;
        hs_buf_init(&body, 0);
        char url[2048];
        int rc;
        if (t->format == RULES_NOTIFY_AM_V2) {
            size_t ul = strlen(t->url);
            snprintf(url, sizeof url, "%s%s", t->url,
                     ul && t->url[ul - 1] == '/' ? "api/v2/alerts" : "/api/v2/alerts");
            rc = rules_notify_am_v2_json(view, nb, &body);
        } else {
            snprintf(url, sizeof url, "%s", t->url);
            rc = rules_notify_webhook_v4_json(view, nb, n->external_url, &body);
        }
        struct hs_err e;
        hs_err_clear(&e);
        if (rc == HS_OK) {
            attempts++;
            rc = n->o.send(n->o.send_arg, url, t->bearer, body.p, body.len, &e);
        }
        hs_buf_cleanup(&body);

        pthread_mutex_lock(&n->mu);
        /* the batch is still at the head unless the queue overflowed meanwhile */
        size_t still = 0;
        while (still < nb && still < t->len && t->ring[(t->head + still) % cap] == batch[still])
            still++;
        bool done = rc == HS_OK;
        if (!done) {
            n->stats.errors++;
            t->attempts++;
            if (t->attempts > n->o.max_retries) {
                n->stats.failed += still;
                done = true;
                char safe[512];
                redact_url(t->url, safe, sizeof safe);
                hs_log(HS_LOG_WARN, "rules: notification dropped after retries",
                       HS_LSTR("url", safe), HS_LINT("alerts", still), HS_LSTR("err", e.msg));
            } else {
                int64_t d = n->o.backoff_initial_ms;
                for (int k = 1; k < t->attempts && d < n->o.backoff_max_ms; k++)
                    d *= 2;
                t->next_try_ms = now_ms + HS_MIN(d, n->o.backoff_max_ms);
            }
        } else {
            n->stats.sent += still;
        }
        if (done) {
            for (size_t k = 0; k < still; k++)
                nalert_unref(t->ring[(t->head + k) % cap]);
            t->head = (t->head + still) % cap;
            t->len -= still;
            t->attempts = 0;
            t->next_try_ms = 0;
        }
        for (size_t k = 0; k < nb; k++)
            nalert_unref(batch[k]);
        pthread_mutex_unlock(&n->mu);
        hs_free(batch);
        hs_free(view);
    }
    return attempts;
}

void rules_notifier_get_stats(struct rules_notifier *n, struct rules_notifier_stats *out)
{
    pthread_mutex_lock(&n->mu);
    *out = n->stats;
    out->queued = 0;
    for (size_t i = 0; i < n->ntargets; i++)
        out->queued += n->targets[i].len;
    pthread_mutex_unlock(&n->mu);
}
