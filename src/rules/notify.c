/*
 * notify.c - delivering alerts: Alertmanager API v2 and webhook v4 bodies,
 * one bounded queue per target, batches, retries with exponential backoff,
 * and the built-in HTTP sender thread.
 *
 * An enqueued alert is copied once (labels and annotations packed by
 * hs_labels_dup) and shared by every target's queue through a reference
 * count.  A queue is a ring of pointers; when it is full the oldest alert
 * is dropped and counted.  Each target has at most one batch in flight:
 * batch_begin takes references to the alerts at the head of the queue,
 * the body is built and sent, and batch_end removes them (delivered, or
 * failed max_retries + 1 times) or schedules a retry after
 * backoff_initial_ms * 2^attempt (capped at backoff_max_ms).  The batch
 * stays in the queue while in flight, so a queue overflow meanwhile drops
 * the oldest alerts as usual and batch_end removes only what is still
 * there.
 *
 * Two ways to send: a send function (rules_notifier_run calls it
 * synchronously; tests use a fake), or the HTTP sender: a thread running an
 * event loop with one http client per target.  Enqueueing wakes it; a
 * 200 ms tick restarts targets whose backoff has passed.  Each target's
 * request is independent, so a slow receiver holds up only its own queue.
 *
 * Secrets (bearer tokens, basic-auth passwords, header values) live only in
 * the target and in requests; log lines name targets by their receiver
 * name or by the URL stripped of user info and query.
 */
#include "rules/internal.h"

#include <event2/event.h>
#include <event2/thread.h>
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

struct rules_notifier;

struct target {
    struct rules_notifier *n; /* back pointer for the HTTP callbacks */
    char *url;
    char *name; /* receiver name */
    int format;
    char *bearer;
    bool skip_resolved;
    int64_t timeout_ms;
    struct http_client_header *headers; /* HTTP sender: Content-Type, auth, the user's */
    size_t nheaders;
    struct http_client *client; /* HTTP sender only */
    struct nalert **ring;
    size_t head, len; /* ring[head] is the oldest */
    int attempts;     /* failed attempts of the batch at the head */
    int64_t next_try_ms;
    /* the batch in flight (references held) */
    struct nalert **inflight;
    size_t ninflight;
    bool is_in_flight;
    int64_t sent_mono_ns;
    /* counters, under the notifier's lock */
    uint64_t sent, errors, dropped;
    double latency_sum_s;
    uint64_t latency_count;
};

struct rules_notifier {
    pthread_mutex_t mu;
    struct rules_notifier_opts o;
    char *external_url;
    struct target *targets;
    size_t ntargets;
    struct rules_notifier_stats stats;
    /* HTTP sender */
    struct event_base *base;
    struct event *wake, *tick;
    pthread_t thread;
    bool has_thread;
    bool is_stopping;
    bool has_woken;
    /* a rules_notifier_update waiting for the sender thread to apply it */
    pthread_cond_t cv;
    struct target *pending; /* new targets, clients not created yet */
    size_t npending;
    const struct rules_notify_target *pending_in; /* the caller's, for the TLS settings */
    bool has_pending;
    bool is_applied;
    int apply_rc;
    struct hs_err apply_err;
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

static bool is_resolved(const struct nalert *a, int64_t now_ms)
{
    return a->ends_at_ms != 0 && a->ends_at_ms <= now_ms;
}

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

static char *dup_secret(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = hs_strdup(s);
    if (!d)
        *failed = true;
    return d;
}

static void free_secret(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        hs_free(s);
    }
}

/* ---- creation ------------------------------------------------------------------ */

static int check_opts(const struct rules_notifier_opts *o, struct hs_err *err)
{
    if (!o || (o->ntargets && !o->targets))
        return hs_err_set(err, HS_EINVAL, "notifier: no options");
    for (size_t i = 0; i < o->ntargets; i++) {
        const struct rules_notify_target *t = &o->targets[i];
        if (!t->url || !(hs_has_prefix(t->url, "http://") || hs_has_prefix(t->url, "https://")))
            return hs_err_set(err, HS_EINVAL,
                              "notifier: target %zu: URL must start with http:// or https://", i);
        if (t->format != RULES_NOTIFY_AM_V2 && t->format != RULES_NOTIFY_WEBHOOK_V4)
            return hs_err_set(err, HS_EINVAL, "notifier: target %zu: unknown format %d", i,
                              t->format);
        if (t->nheaders && !t->headers)
            return hs_err_set(err, HS_EINVAL, "notifier: target %zu: headers missing", i);
    }
    return HS_OK;
}

/* The request headers of the HTTP sender: Content-Type, Authorization, the user's. */
static int target_headers(struct target *t, const struct rules_notify_target *in)
{
    t->headers = hs_calloc(in->nheaders + 3, sizeof *t->headers);
    if (!t->headers)
        return HS_ENOMEM;
    t->headers[t->nheaders].name = hs_strdup("Content-Type");
    t->headers[t->nheaders++].value = hs_strdup("application/json");
    struct hs_buf auth;
    hs_buf_init(&auth, 0);
    int rc = HS_OK;
    if (in->bearer_token)
        rc = hs_buf_printf(&auth, "Bearer %s", in->bearer_token);
    else if (in->basic_auth_user)
        rc = http_client_basic_auth_header(
            in->basic_auth_user, in->basic_auth_password ? in->basic_auth_password : "", &auth);
    if (rc == HS_OK && auth.len) {
        t->headers[t->nheaders].name = hs_strdup("Authorization");
        t->headers[t->nheaders++].value = hs_buf_detach(&auth, NULL);
    }
    if (auth.p)
        memset(auth.p, 0, auth.len);
    hs_buf_cleanup(&auth);
    for (size_t i = 0; i < in->nheaders; i++) {
        t->headers[t->nheaders].name = hs_strdup(in->headers[i].name ? in->headers[i].name : "");
        t->headers[t->nheaders++].value =
            hs_strdup(in->headers[i].value ? in->headers[i].value : "");
    }
    for (size_t i = 0; i < t->nheaders; i++)
        if (!t->headers[i].name || !t->headers[i].value)
            rc = HS_ENOMEM;
    return rc;
}

static int target_init(struct rules_notifier *n, struct target *t,
                       const struct rules_notify_target *in)
{
    bool failed = false;
    t->n = n;
    t->format = in->format;
    t->skip_resolved = in->skip_resolved;
    t->timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : 10000;
    t->url = hs_strdup(in->url);
    t->bearer = dup_secret(in->bearer_token, &failed);
    if (in->name && *in->name) {
        t->name = hs_strdup(in->name);
    } else {
        char safe[512];
        redact_url(in->url, safe, sizeof safe);
        t->name = hs_strdup(safe);
    }
    t->ring = hs_calloc(n->o.queue_capacity, sizeof *t->ring);
    t->inflight = hs_calloc(n->o.max_batch, sizeof *t->inflight);
    if (failed || !t->url || !t->name || !t->ring || !t->inflight)
        return HS_ENOMEM;
    return n->o.send ? HS_OK : target_headers(t, in);
}

static void on_wake(evutil_socket_t fd, short what, void *arg);
static void on_tick(evutil_socket_t fd, short what, void *arg);
static void *sender_main(void *arg);

/* The http client of 't' on the sender's loop (TLS files are loaded here). */
static int target_client(struct rules_notifier *n, struct target *t,
                         const struct http_client_tls *tls, struct hs_err *err)
{
    struct http_client_config hc;
    http_client_config_defaults(&hc);
    hc.tls = *tls;
    struct hs_err e = {0};
    t->client = http_client_new(n->base, &hc, &e);
    if (!t->client)
        return hs_err_set(err, e.code ? e.code : HS_ENOMEM, "notifier: receiver %s: %s", t->name,
                          e.msg);
    return HS_OK;
}

/* Event loop, one http client per target, then the thread. */
static int start_sender(struct rules_notifier *n, const struct rules_notifier_opts *o,
                        struct hs_err *err)
{
    if (evthread_use_pthreads() != 0)
        return hs_err_set(err, HS_EIO, "notifier: libevent has no thread support");
    n->base = event_base_new();
    if (!n->base)
        return hs_err_set(err, HS_EIO, "notifier: cannot create an event loop");
    for (size_t i = 0; i < n->ntargets; i++) {
        int rc = target_client(n, &n->targets[i], &o->targets[i].tls, err);
        if (rc != HS_OK)
            return rc;
    }
    n->wake = event_new(n->base, -1, 0, on_wake, n);
    n->tick = event_new(n->base, -1, EV_PERSIST, on_tick, n);
    struct timeval tv = {0, 200 * 1000};
    if (!n->wake || !n->tick || event_add(n->tick, &tv) != 0)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    if (pthread_create(&n->thread, NULL, sender_main, n) != 0)
        return hs_err_set(err, HS_EIO, "notifier: cannot start its thread");
    n->has_thread = true;
    return HS_OK;
}

struct rules_notifier *rules_notifier_new(const struct rules_notifier_opts *o, struct hs_err *err)
{
    if (check_opts(o, err) != HS_OK)
        return NULL;
    struct rules_notifier *n = hs_calloc(1, sizeof *n);
    if (!n) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
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
    pthread_cond_init(&n->cv, NULL);
    n->o.external_url = NULL;
    n->targets = hs_calloc(o->ntargets + 1, sizeof *n->targets);
    bool ok = n->targets && (!o->external_url || (n->external_url = hs_strdup(o->external_url)));
    if (ok)
        n->ntargets = o->ntargets;
    for (size_t i = 0; ok && i < o->ntargets; i++)
        ok = target_init(n, &n->targets[i], &o->targets[i]) == HS_OK;
    if (!ok) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        rules_notifier_free(n);
        return NULL;
    }
    if (!o->send && start_sender(n, o, err) != HS_OK) {
        rules_notifier_free(n);
        return NULL;
    }
    return n;
}

static void target_cleanup(struct rules_notifier *n, struct target *t)
{
    http_client_free(t->client); /* cancels a request in flight: no callback */
    for (size_t k = 0; t->ring && k < t->len; k++)
        nalert_unref(t->ring[(t->head + k) % n->o.queue_capacity]);
    for (size_t k = 0; t->inflight && k < t->ninflight; k++)
        nalert_unref(t->inflight[k]);
    hs_free(t->inflight);
    hs_free(t->ring);
    hs_free(t->url);
    hs_free(t->name);
    free_secret(t->bearer);
    for (size_t k = 0; t->headers && k < t->nheaders; k++) {
        hs_free((char *)t->headers[k].name);
        free_secret((char *)t->headers[k].value);
    }
    hs_free(t->headers);
}

void rules_notifier_free(struct rules_notifier *n)
{
    if (!n)
        return;
    if (n->has_thread) {
        pthread_mutex_lock(&n->mu);
        n->is_stopping = true;
        event_active(n->wake, EV_READ, 0);
        pthread_mutex_unlock(&n->mu);
        pthread_join(n->thread, NULL);
    }
    for (size_t i = 0; n->targets && i < n->ntargets; i++)
        target_cleanup(n, &n->targets[i]);
    if (n->wake)
        event_free(n->wake);
    if (n->tick)
        event_free(n->tick);
    if (n->base)
        event_base_free(n->base);
    hs_free(n->targets);
    hs_free(n->external_url);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    hs_free(n);
}

/* ---- queueing ------------------------------------------------------------------ */

static struct nalert *nalert_new(const struct rules_notify_alert *in)
{
    static const struct hs_labels none = {0, NULL};
    struct nalert *a = hs_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->refs = 1;
    a->labels = hs_labels_dup(in->labels ? in->labels : &none);
    a->annotations = hs_labels_dup(in->annotations ? in->annotations : &none);
    a->generator_url = in->generator_url ? hs_strdup(in->generator_url) : NULL;
    a->starts_at_ms = in->starts_at_ms;
    a->ends_at_ms = in->ends_at_ms;
    if (!a->labels || !a->annotations || (in->generator_url && !a->generator_url)) {
        nalert_unref(a);
        return NULL;
    }
    return a;
}

int rules_notifier_enqueue(struct rules_notifier *n, const struct rules_notify_alert *alerts,
                           size_t count, struct hs_err *err)
{
    pthread_mutex_lock(&n->mu);
    bool has_targets = n->ntargets > 0;
    pthread_mutex_unlock(&n->mu);
    if (!has_targets)
        return HS_OK;
    int64_t now = hs_now_ms();
    for (size_t i = 0; i < count; i++) {
        struct nalert *a = nalert_new(&alerts[i]);
        if (!a)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        pthread_mutex_lock(&n->mu);
        a->refs = 0;
        for (size_t k = 0; k < n->ntargets; k++) {
            struct target *t = &n->targets[k];
            size_t cap = n->o.queue_capacity;
            if (t->skip_resolved && is_resolved(a, now))
                continue;
            if (t->len == cap) {
                /* drop the oldest; the batch at the head starts over */
                nalert_unref(t->ring[t->head]);
                t->head = (t->head + 1) % cap;
                t->len--;
                t->dropped++;
                n->stats.dropped++;
            }
            t->ring[(t->head + t->len) % cap] = a;
            t->len++;
            a->refs++;
        }
        if (n->has_thread && !n->has_woken) {
            n->has_woken = true;
            event_active(n->wake, EV_READ, 0);
        }
        bool is_unused = a->refs == 0; /* every target skipped it */
        pthread_mutex_unlock(&n->mu);
        if (is_unused) {
            a->refs = 1;
            nalert_unref(a);
        }
    }
    return HS_OK;
}

/* ---- bodies ------------------------------------------------------------------ */

static int alert_json(struct hs_buf *b, const struct rules_notify_alert *a, bool webhook,
                      int64_t now_ms)
{
    int rc = HS_OK;
    bool resolved = a->ends_at_ms != 0 && a->ends_at_ms <= now_ms;
    if (webhook)
        rc = hs_buf_printf(b, "{\"status\":\"%s\",", resolved ? "resolved" : "firing");
    else
        rc = hs_buf_putc(b, '{');
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
    /* Alertmanager clears the end of firing alerts before notifying webhooks */
    if (rc == HS_OK)
        rc = rules__json_time(b, a->ends_at_ms, a->ends_at_ms != 0 && (!webhook || resolved));
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
    int64_t now = hs_now_ms();
    int rc = hs_buf_putc(out, '[');
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        if (i)
            rc = hs_buf_putc(out, ',');
        if (rc == HS_OK)
            rc = alert_json(out, &alerts[i], false, now);
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

/* "version" through "externalURL" of a webhook message. */
static int webhook_head(struct hs_buf *out, const struct hs_labels *cls,
                        const struct hs_labels *cas, bool firing, const char *external_url,
                        const char *receiver)
{
    const char *an = hs_labels_get(cls, "alertname");
    int rc = hs_buf_puts(out, "{\"version\":\"4\",\"groupKey\":");
    if (rc == HS_OK) {
        char key[600];
        snprintf(key, sizeof key, "{}:{alertname=\"%s\"}", an ? an : "");
        rc = hs_buf_json_str(out, key, strlen(key));
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(out, ",\"truncatedAlerts\":0,\"status\":\"%s\",\"receiver\":",
                           firing ? "firing" : "resolved");
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, receiver, strlen(receiver));
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"groupLabels\":");
    if (rc == HS_OK) {
        struct hs_label g[1] = {{"alertname", an ? an : ""}};
        struct hs_labels gl = {an ? 1u : 0u, g};
        rc = rules__json_labels(out, &gl);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"commonLabels\":");
    if (rc == HS_OK)
        rc = rules__json_labels(out, cls);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"commonAnnotations\":");
    if (rc == HS_OK)
        rc = rules__json_labels(out, cas);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"externalURL\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, external_url ? external_url : "",
                             external_url ? strlen(external_url) : 0);
    return rc;
}

int rules_notify_webhook_v4_json_for(const struct rules_notify_alert *alerts, size_t n,
                                     const char *external_url, const char *receiver,
                                     struct hs_buf *out)
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
    rc = webhook_head(out, &cls, &cas, firing, external_url, receiver ? receiver : "holoscope");
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"alerts\":[");
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        if (i)
            rc = hs_buf_putc(out, ',');
        if (rc == HS_OK)
            rc = alert_json(out, &alerts[i], true, now);
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

int rules_notify_webhook_v4_json(const struct rules_notify_alert *alerts, size_t n,
                                 const char *external_url, struct hs_buf *out)
{
    return rules_notify_webhook_v4_json_for(alerts, n, external_url, NULL, out);
}

/* ---- sending ------------------------------------------------------------------ */

static bool same_group(const struct nalert *a, const struct nalert *b)
{
    const char *x = hs_labels_get(a->labels, "alertname");
    const char *y = hs_labels_get(b->labels, "alertname");
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

/*
 * Takes references to the batch at the head of 't' when one is due and
 * none is in flight; a webhook batch stops where the alertname changes.
 * Returns its size (0: nothing to send).  Lock held.
 */
static size_t batch_take(struct rules_notifier *n, struct target *t, int64_t now_ms)
{
    if (t->is_in_flight || t->len == 0 || t->next_try_ms > now_ms)
        return 0;
    size_t cap = n->o.queue_capacity;
    size_t nb = HS_MIN(t->len, n->o.max_batch);
    struct nalert *first = t->ring[t->head];
    size_t k = 0;
    for (; k < nb; k++) {
        struct nalert *a = t->ring[(t->head + k) % cap];
        if (t->format == RULES_NOTIFY_WEBHOOK_V4 && !same_group(first, a))
            break;
        a->refs++;
        t->inflight[k] = a;
    }
    t->ninflight = k;
    t->is_in_flight = true;
    return k;
}

/* URL and body of the batch in flight.  No lock: queued alerts never change. */
static int batch_body(struct rules_notifier *n, struct target *t, struct hs_buf *body, char *url,
                      size_t url_len)
{
    struct rules_notify_alert *view = hs_calloc(t->ninflight + 1, sizeof *view);
    if (!view)
        return HS_ENOMEM;
    for (size_t k = 0; k < t->ninflight; k++) {
        view[k].labels = t->inflight[k]->labels;
        view[k].annotations = t->inflight[k]->annotations;
        view[k].starts_at_ms = t->inflight[k]->starts_at_ms;
        view[k].ends_at_ms = t->inflight[k]->ends_at_ms;
        view[k].generator_url = t->inflight[k]->generator_url;
    }
    int rc;
    if (t->format == RULES_NOTIFY_AM_V2) {
        size_t ul = strlen(t->url);
        snprintf(url, url_len, "%s%s", t->url,
                 ul && t->url[ul - 1] == '/' ? "api/v2/alerts" : "/api/v2/alerts");
        rc = rules_notify_am_v2_json(view, t->ninflight, body);
    } else {
        snprintf(url, url_len, "%s", t->url);
        rc = rules_notify_webhook_v4_json_for(view, t->ninflight, n->external_url, t->name, body);
    }
    hs_free(view);
    return rc;
}

/*
 * Records the outcome of the batch in flight: delivered alerts leave the
 * queue; a failure schedules a retry with backoff, or drops the batch after
 * max_retries.  'why' is logged (never holds secrets).  Takes the lock.
 */
static void batch_end(struct rules_notifier *n, struct target *t, bool ok, const char *why,
                      double latency_s, int64_t now_ms)
{
    size_t cap = n->o.queue_capacity;
    pthread_mutex_lock(&n->mu);
    if (latency_s >= 0) {
        t->latency_sum_s += latency_s;
        t->latency_count++;
    }
    /* the batch is still at the head unless the queue overflowed meanwhile */
    size_t still = 0;
    while (still < t->ninflight && still < t->len &&
           t->ring[(t->head + still) % cap] == t->inflight[still])
        still++;
    bool done = ok;
    if (!ok) {
        n->stats.errors++;
        t->errors++;
        t->attempts++;
        if (t->attempts > n->o.max_retries) {
            n->stats.failed += still;
            t->dropped += still;
            done = true;
            hs_log(HS_LOG_WARN, "rules: notification dropped after retries",
                   HS_LSTR("receiver", t->name), HS_LINT("alerts", still), HS_LSTR("err", why));
        } else {
            int64_t d = n->o.backoff_initial_ms;
            for (int k = 1; k < t->attempts && d < n->o.backoff_max_ms; k++)
                d *= 2;
            t->next_try_ms = now_ms + HS_MIN(d, n->o.backoff_max_ms);
            hs_log(HS_LOG_DEBUG, "rules: notification failed, will retry",
                   HS_LSTR("receiver", t->name), HS_LINT("attempt", t->attempts),
                   HS_LSTR("err", why));
        }
    } else {
        n->stats.sent += still;
        t->sent += still;
    }
    if (done) {
        for (size_t k = 0; k < still; k++)
            nalert_unref(t->ring[(t->head + k) % cap]);
        t->head = (t->head + still) % cap;
        t->len -= still;
        t->attempts = 0;
        t->next_try_ms = 0;
    }
    for (size_t k = 0; k < t->ninflight; k++)
        nalert_unref(t->inflight[k]);
    t->ninflight = 0;
    t->is_in_flight = false;
    pthread_mutex_unlock(&n->mu);
}

int rules_notifier_run(struct rules_notifier *n, int64_t now_ms)
{
    if (!n->o.send)
        return 0; /* the HTTP sender's thread does this */
    int attempts = 0;
    for (size_t ti = 0; ti < n->ntargets; ti++) {
        struct target *t = &n->targets[ti];
        pthread_mutex_lock(&n->mu);
        size_t nb = batch_take(n, t, now_ms);
        pthread_mutex_unlock(&n->mu);
        if (nb == 0)
            continue;
        struct hs_buf body;
        hs_buf_init(&body, 0);
        char url[2048];
        struct hs_err e;
        hs_err_clear(&e);
        int rc = batch_body(n, t, &body, url, sizeof url);
        double latency = -1;
        if (rc == HS_OK) {
            attempts++;
            int64_t t0 = hs_mono_ns();
            rc = n->o.send(n->o.send_arg, url, t->bearer, body.p, body.len, &e);
            latency = (double)(hs_mono_ns() - t0) / 1e9;
        } else {
            hs_err_set(&e, rc, "cannot build the body: %s", hs_strerror(rc));
        }
        hs_buf_cleanup(&body);
        batch_end(n, t, rc == HS_OK, e.msg, latency, now_ms);
    }
    return attempts;
}

/* ---- the HTTP sender thread ------------------------------------------------------ */

static void http_pump(struct rules_notifier *n, struct target *t);

static void http_done(void *arg, const struct http_client_result *res)
{
    struct target *t = arg;
    bool ok = res->code == HS_OK && res->status >= 200 && res->status < 300;
    char why[300];
    if (res->code != HS_OK)
        snprintf(why, sizeof why, "%s", res->msg);
    else
        snprintf(why, sizeof why, "HTTP %d", res->status);
    double latency = (double)(hs_mono_ns() - t->sent_mono_ns) / 1e9;
    batch_end(t->n, t, ok, why, latency, hs_now_ms());
    http_pump(t->n, t);
}

/* Starts the next request of 't' if one is due.  Sender thread only. */
static void http_pump(struct rules_notifier *n, struct target *t)
{
    pthread_mutex_lock(&n->mu);
    size_t nb = n->is_stopping ? 0 : batch_take(n, t, hs_now_ms());
    pthread_mutex_unlock(&n->mu);
    if (nb == 0)
        return;
    struct hs_buf body;
    hs_buf_init(&body, 0);
    char url[2048];
    struct hs_err e;
    hs_err_clear(&e);
    int rc = batch_body(n, t, &body, url, sizeof url);
    if (rc == HS_OK) {
        struct http_client_req req = {0};
        req.method = "POST";
        req.url = url;
        req.headers = t->headers;
        req.nheaders = t->nheaders;
        req.body = body.p;
        req.body_len = body.len;
        req.connect_timeout_ms = t->timeout_ms;
        req.total_timeout_ms = t->timeout_ms;
        req.max_response_bytes = 1u << 20;
        struct http_client_callbacks cb = {NULL, NULL, http_done};
        t->sent_mono_ns = hs_mono_ns();
        rc = http_client_request(t->client, &req, &cb, t, NULL, &e);
    } else {
        hs_err_set(&e, rc, "cannot build the body: %s", hs_strerror(rc));
    }
    hs_buf_cleanup(&body);
    if (rc != HS_OK) /* no callback will fire */
        batch_end(n, t, false, e.msg, -1, hs_now_ms());
}

/*
 * Moves the queues (and counters) of old targets to the new targets with
 * the same URL and format; 'taken' has room for nold flags.  Lock held.
 */
static void carry_over(struct rules_notifier *n, struct target *nt, size_t nn, struct target *old,
                       size_t nold, bool *taken)
{
    size_t cap = n->o.queue_capacity;
    for (size_t k = 0; k < nn; k++) {
        struct target *t = &nt[k];
        for (size_t j = 0; j < nold; j++) {
            struct target *o = &old[j];
            if (taken[j] || o->format != t->format || strcmp(o->url, t->url) != 0)
                continue;
            taken[j] = true;
            for (size_t q = 0; q < o->len; q++)
                t->ring[(t->head + t->len++) % cap] = o->ring[(o->head + q) % cap];
            o->len = 0;
            t->sent = o->sent;
            t->errors = o->errors;
            t->dropped = o->dropped;
            t->latency_sum_s = o->latency_sum_s;
            t->latency_count = o->latency_count;
            break;
        }
    }
}

/* Applies a pending rules_notifier_update.  Sender thread only. */
static void apply_update(struct rules_notifier *n)
{
    pthread_mutex_lock(&n->mu);
    struct target *nt = n->pending;
    size_t nn = n->npending;
    const struct rules_notify_target *in = n->pending_in;
    pthread_mutex_unlock(&n->mu);
    struct hs_err err = {0};
    int rc = HS_OK;
    for (size_t i = 0; i < nn && rc == HS_OK; i++)
        rc = target_client(n, &nt[i], &in[i].tls, &err);
    bool *taken = rc == HS_OK ? hs_calloc(n->ntargets + 1, sizeof *taken) : NULL;
    if (rc == HS_OK && !taken)
        rc = hs_err_set(&err, HS_ENOMEM, "out of memory");
    struct target *gone = nt;
    size_t ngone = nn;
    pthread_mutex_lock(&n->mu);
    if (rc == HS_OK) {
        carry_over(n, nt, nn, n->targets, n->ntargets, taken);
        gone = n->targets;
        ngone = n->ntargets;
        n->targets = nt;
        n->ntargets = nn;
    }
    pthread_mutex_unlock(&n->mu);
    /* requests in flight to the old targets are cancelled: no callback fires */
    for (size_t i = 0; i < ngone; i++)
        target_cleanup(n, &gone[i]);
    hs_free(gone);
    hs_free(taken);
    pthread_mutex_lock(&n->mu);
    n->pending = NULL;
    n->is_applied = true;
    n->apply_rc = rc;
    n->apply_err = err;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

int rules_notifier_update(struct rules_notifier *n, const struct rules_notifier_opts *o,
                          struct hs_err *err)
{
    int rc = check_opts(o, err);
    if (rc != HS_OK)
        return rc;
    if (!n->has_thread)
        return hs_err_set(err, HS_EINVAL, "notifier: only the HTTP sender can be updated");
    struct target *nt = hs_calloc(o->ntargets + 1, sizeof *nt);
    rc = nt ? HS_OK : HS_ENOMEM;
    for (size_t i = 0; i < o->ntargets && rc == HS_OK; i++)
        rc = target_init(n, &nt[i], &o->targets[i]);
    if (rc != HS_OK) {
        for (size_t i = 0; nt && i < o->ntargets; i++)
            target_cleanup(n, &nt[i]);
        hs_free(nt);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&n->mu);
    while (n->has_pending) /* another caller's update goes first */
        pthread_cond_wait(&n->cv, &n->mu);
    n->pending = nt;
    n->npending = o->ntargets;
    n->pending_in = o->targets;
    n->has_pending = true;
    n->is_applied = false;
    event_active(n->wake, EV_READ, 0);
    while (!n->is_applied)
        pthread_cond_wait(&n->cv, &n->mu);
    rc = n->apply_rc;
    if (rc != HS_OK && err)
        *err = n->apply_err;
    n->has_pending = false;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    return rc;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rules_notifier *n = arg;
    pthread_mutex_lock(&n->mu);
    n->has_woken = false;
    bool stopping = n->is_stopping;
    bool pending = n->has_pending && !n->is_applied;
    pthread_mutex_unlock(&n->mu);
    if (stopping) {
        event_base_loopbreak(n->base);
        return;
    }
    if (pending)
        apply_update(n);
    for (size_t i = 0; i < n->ntargets; i++)
        http_pump(n, &n->targets[i]);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    on_wake(fd, what, arg);
}

static void *sender_main(void *arg)
{
    struct rules_notifier *n = arg;
    event_base_loop(n->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- statistics ------------------------------------------------------------------ */

void rules_notifier_get_stats(struct rules_notifier *n, struct rules_notifier_stats *out)
{
    pthread_mutex_lock(&n->mu);
    *out = n->stats;
    out->queued = 0;
    for (size_t i = 0; i < n->ntargets; i++)
        out->queued += n->targets[i].len;
    pthread_mutex_unlock(&n->mu);
}

size_t rules_notifier_target_count(struct rules_notifier *n)
{
    pthread_mutex_lock(&n->mu);
    size_t nt = n->ntargets;
    pthread_mutex_unlock(&n->mu);
    return nt;
}

/* Copies the counters of target 'i'; lock held. */
static void target_stats_locked(struct rules_notifier *n, size_t i,
                                struct rules_notifier_target_stats *out)
{
    memset(out, 0, sizeof *out);
    if (i >= n->ntargets)
        return;
    const struct target *t = &n->targets[i];
    out->name = t->name;
    out->format = t->format;
    out->sent = t->sent;
    out->errors = t->errors;
    out->dropped = t->dropped;
    out->queued = t->len;
    out->latency_sum_s = t->latency_sum_s;
    out->latency_count = t->latency_count;
}

void rules_notifier_get_target_stats(struct rules_notifier *n, size_t i,
                                     struct rules_notifier_target_stats *out)
{
    pthread_mutex_lock(&n->mu);
    target_stats_locked(n, i, out);
    pthread_mutex_unlock(&n->mu);
}

/* Appends 'v' as a label value of the text format (\\, \" and \n escaped). */
static int put_label_value(struct hs_buf *b, const char *v)
{
    int rc = HS_OK;
    for (const char *p = v; rc == HS_OK && *p; p++) {
        if (*p == '\\' || *p == '"')
            rc = hs_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            rc = hs_buf_puts(b, "\\n");
        else
            rc = hs_buf_putc(b, *p);
    }
    return rc;
}

static int put_target_sample(struct hs_buf *b, const char *name,
                             const struct rules_notifier_target_stats *st, double v)
{
    int rc = hs_buf_printf(b, "%s{receiver=\"", name);
    if (rc == HS_OK)
        rc = put_label_value(b, st->name);
    if (rc == HS_OK) {
        char num[32];
        hs_format_double(v, num, sizeof num);
        rc = hs_buf_printf(b, "\",type=\"%s\"} %s\n",
                           st->format == RULES_NOTIFY_AM_V2 ? "alertmanager" : "webhook", num);
    }
    return rc;
}

int rules_notifier_metrics(void *arg, struct hs_buf *out)
{
    struct rules_notifier *n = arg;
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"holoscope_notifications_sent_total", "counter", "Alerts delivered to a receiver."},
        {"holoscope_notifications_errors_total", "counter",
         "Notification requests that failed (each retry counts)."},
        {"holoscope_notifications_dropped_total", "counter",
         "Alerts dropped: queue full, or given up after the last retry."},
        {"holoscope_notifications_queue_length", "gauge", "Alerts waiting for a receiver."},
        {"holoscope_notifications_latency_seconds", "summary",
         "Duration of notification requests."},
    };
    /* under the lock throughout: an update may replace the targets (and names) */
    pthread_mutex_lock(&n->mu);
    size_t nt = n->ntargets;
    struct rules_notifier_target_stats *st = hs_calloc(nt + 1, sizeof *st);
    if (!st) {
        pthread_mutex_unlock(&n->mu);
        return HS_ENOMEM;
    }
    for (size_t i = 0; i < nt; i++)
        target_stats_locked(n, i, &st[i]);
    int rc = HS_OK;
    for (size_t f = 0; f < HS_ARRAY_LEN(fams) && rc == HS_OK; f++) {
        rc = hs_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fams[f].name, fams[f].help,
                           fams[f].name, fams[f].type);
        for (size_t i = 0; i < nt && rc == HS_OK; i++) {
            if (f == 0)
                rc = put_target_sample(out, fams[f].name, &st[i], (double)st[i].sent);
            else if (f == 1)
                rc = put_target_sample(out, fams[f].name, &st[i], (double)st[i].errors);
            else if (f == 2)
                rc = put_target_sample(out, fams[f].name, &st[i], (double)st[i].dropped);
            else if (f == 3)
                rc = put_target_sample(out, fams[f].name, &st[i], (double)st[i].queued);
            else {
                rc = put_target_sample(out, "holoscope_notifications_latency_seconds_sum", &st[i],
                                       st[i].latency_sum_s);
                if (rc == HS_OK)
                    rc = put_target_sample(out, "holoscope_notifications_latency_seconds_count",
                                           &st[i], (double)st[i].latency_count);
            }
        }
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(out,
                           "# HELP holoscope_notifications_queue_capacity Alerts a receiver's "
                           "queue holds at most.\n# TYPE holoscope_notifications_queue_capacity "
                           "gauge\nholoscope_notifications_queue_capacity %zu\n",
                           n->o.queue_capacity);
    size_t nam = 0;
    for (size_t i = 0; i < nt; i++)
        nam += st[i].format == RULES_NOTIFY_AM_V2;
    if (rc == HS_OK)
        rc = hs_buf_printf(out,
                           "# HELP holoscope_notifications_alertmanagers_discovered Alertmanagers "
                           "configured.\n# TYPE holoscope_notifications_alertmanagers_discovered "
                           "gauge\nholoscope_notifications_alertmanagers_discovered %zu\n",
                           nam);
    pthread_mutex_unlock(&n->mu);
    hs_free(st);
    return rc;
}
