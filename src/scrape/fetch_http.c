/*
 * fetch_http.c - the scrape fetcher backed by the http module's client
 * (struct scrape_fetcher over http_client_request).
 *
 * One client per fetcher, created lazily on the first fetch because the
 * client lives on the manager's event_base, which the fetcher only learns
 * then; the manager's shutdown hook frees it on the loop thread, which
 * cancels calls in flight (no completion fires after that).  The response
 * Content-Type is taken from the headers callback; gzip is inflated by the
 * client, so the loop sees a plain body.
 */
#include "scrape/scrape_manager.h"

#include "http/http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define USER_AGENT "holoscope-scraper"

struct hcall;

/* A client for one job's tls_config. */
struct hclient {
    struct hclient *next;
    char *key; /* the TLS settings, newline-joined */
    struct http_client *client;
};

struct hfetch {
    struct http_client_config cfg;
    struct http_client *client; /* the default one */
    struct hclient *tls_clients;
    struct event_base *base;
    struct hcall *calls; /* in flight: freed here when the client cancels them */
};

struct hcall {
    struct hfetch *f;
    struct hcall *prev, *next;
    scrape_fetch_done_fn *done;
    void *done_arg;
    uint64_t max_body;
    char content_type[256];
};

static void on_headers(void *arg, int status, const struct http_client_header *h, size_t n)
{
    (void)status;
    struct hcall *c = arg;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "Content-Type") == 0) {
            snprintf(c->content_type, sizeof(c->content_type), "%s", h[i].value);
            break;
        }
    }
}

static void call_unlink(struct hcall *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->f->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
}

static void on_done(void *arg, const struct http_client_result *res)
{
    struct hcall *c = arg;
    call_unlink(c);
    struct scrape_fetch_result r = {0};
    char msg[300], ctype[256];
    memcpy(ctype, c->content_type, sizeof(ctype));
    r.code = res->code;
    r.status = res->status;
    r.body = res->body;
    r.body_len = res->body_len;
    r.content_type = ctype[0] ? ctype : NULL;
    if (res->code != HS_OK) {
        if (res->kind == HTTP_CLIENT_FAIL_TOO_BIG && c->max_body > 0)
            snprintf(msg, sizeof(msg), "body size limit exceeded (limit: %llu bytes)",
                     (unsigned long long)c->max_body);
        else
            snprintf(msg, sizeof(msg), "%s", res->msg[0] ? res->msg : hs_strerror(res->code));
        r.error = msg;
    }
    scrape_fetch_done_fn *done = c->done;
    void *done_arg = c->done_arg;
    hs_free(c);
    done(done_arg, &r);
}

static void tls_clients_free(struct hfetch *f)
{
    while (f->tls_clients != NULL) {
        struct hclient *h = f->tls_clients;
        f->tls_clients = h->next;
        http_client_free(h->client);
        hs_free(h->key);
        hs_free(h);
    }
}

/* The client for a job's tls_config, created on first use. */
static struct http_client *tls_client(struct hfetch *f, const struct scrape_tls_config *t,
                                      struct hs_err *err)
{
    char key[8192];
    int n = snprintf(key, sizeof(key), "%s\n%s\n%s\n%s\n%d", t->ca_file ? t->ca_file : "",
                     t->cert_file ? t->cert_file : "", t->key_file ? t->key_file : "",
                     t->server_name ? t->server_name : "", t->insecure_skip_verify ? 1 : 0);
    if (n < 0 || (size_t)n >= sizeof(key)) {
        hs_err_set(err, HS_EINVAL, "file names too long");
        return NULL;
    }
    for (struct hclient *h = f->tls_clients; h != NULL; h = h->next)
        if (strcmp(h->key, key) == 0)
            return h->client;
    struct http_client_config cfg = f->cfg;
    cfg.tls.ca_file = t->ca_file;
    cfg.tls.cert_file = t->cert_file;
    cfg.tls.key_file = t->key_file;
    cfg.tls.server_name = t->server_name;
    cfg.tls.insecure_skip_verify = t->insecure_skip_verify;
    struct hclient *h = hs_calloc(1, sizeof(*h));
    if (h == NULL || (h->key = hs_strdup(key)) == NULL) {
        hs_free(h);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    h->client = http_client_new(f->base, &cfg, err);
    if (h->client == NULL) {
        hs_free(h->key);
        hs_free(h);
        return NULL;
    }
    h->next = f->tls_clients;
    f->tls_clients = h;
    return h->client;
}

static int hfetch_fetch(void *arg, struct event_base *base, const struct scrape_fetch_request *req,
                        scrape_fetch_done_fn *done, void *done_arg)
{
    struct hfetch *f = arg;
    struct hs_err err;
    if (f->client == NULL || f->base != base) {
        http_client_free(f->client);
        tls_clients_free(f);
        f->base = base;
        f->client = http_client_new(base, &f->cfg, &err);
        if (f->client == NULL) {
            hs_log(HS_LOG_ERROR, "scrape: cannot create the http client", HS_LSTR("err", err.msg));
            return err.code ? err.code : HS_ENOMEM;
        }
    }
    struct http_client *client = f->client;
    if (req->tls != NULL && (client = tls_client(f, req->tls, &err)) == NULL) {
        /* a bad tls_config fails the scrape with the reason, as a failed connection does */
        char msg[600];
        snprintf(msg, sizeof(msg), "tls_config: %s", err.msg);
        struct scrape_fetch_result r = {0};
        r.code = err.code ? err.code : HS_EINVAL;
        r.error = msg;
        done(done_arg, &r);
        return HS_OK;
    }
    struct hcall *c = hs_calloc(1, sizeof(*c));
    if (c == NULL)
        return HS_ENOMEM;
    c->f = f;
    c->done = done;
    c->done_arg = done_arg;
    c->max_body = req->max_body_bytes;
    char tmo[32];
    snprintf(tmo, sizeof(tmo), "%g", (double)req->timeout_ms / 1000.0);
    struct http_client_header h[4];
    size_t nh = 0;
    h[nh++] = (struct http_client_header){"Accept", req->accept};
    h[nh++] = (struct http_client_header){"User-Agent", USER_AGENT};
    h[nh++] = (struct http_client_header){"X-Prometheus-Scrape-Timeout-Seconds", tmo};
    if (req->authorization != NULL)
        h[nh++] = (struct http_client_header){"Authorization", req->authorization};
    struct http_client_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = req->url;
    rq.headers = h;
    rq.nheaders = nh;
    rq.total_timeout_ms = req->timeout_ms;
    rq.max_response_bytes = req->max_body_bytes;
    rq.decompress_gzip = req->accept_gzip;
    struct http_client_callbacks cb = {on_headers, NULL, on_done};
    int rc = http_client_request(client, &rq, &cb, c, NULL, &err);
    if (rc == HS_OK) {
        c->next = f->calls;
        if (f->calls != NULL)
            f->calls->prev = c;
        f->calls = c;
    } else {
        hs_free(c);
        hs_log(HS_LOG_WARN, "scrape: request not started", HS_LSTR("url", req->url),
               HS_LSTR("err", err.msg));
    }
    return rc;
}

static void hfetch_shutdown(void *arg)
{
    struct hfetch *f = arg;
    http_client_free(f->client); /* cancels: no on_done fires */
    f->client = NULL;
    tls_clients_free(f);
    f->base = NULL;
    while (f->calls != NULL) {
        struct hcall *c = f->calls;
        f->calls = c->next;
        hs_free(c);
    }
}

int scrape_fetcher_http_new(const struct http_client_config *cfg, struct scrape_fetcher *out,
                            struct hs_err *err)
{
    memset(out, 0, sizeof(*out));
    struct hfetch *f = hs_calloc(1, sizeof(*f));
    if (f == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    if (cfg != NULL)
        f->cfg = *cfg;
    else
        http_client_config_defaults(&f->cfg);
    out->fetch = hfetch_fetch;
    out->shutdown = hfetch_shutdown;
    out->arg = f;
    return HS_OK;
}

void scrape_fetcher_http_free(struct scrape_fetcher *f)
{
    if (f == NULL || f->arg == NULL)
        return;
    struct hfetch *h = f->arg;
    hfetch_shutdown(h);
    hs_free(h);
    f->arg = NULL;
}
