/*
 * test_client_tls.c - the client's https: verification against a
 * configured CA, host name checks, the system store refusing a self-signed
 * certificate, insecure_skip_verify, a client certificate, and bad TLS
 * files.  Certificates are generated at test time with OpenSSL's API; the
 * TLS server is a blocking OpenSSL loop on its own thread that answers
 * keep-alive requests.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "http/http.h"

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *g_dir;
static char g_good_crt[512], g_good_key[512];   /* SAN: IP:127.0.0.1, DNS:localhost */
static char g_wrong_crt[512], g_wrong_key[512]; /* SAN: DNS:wrong.example */
static char g_cli_crt[512], g_cli_key[512];     /* client certificate */

static int write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return ok == 1 ? 0 : -1;
}

static int gen_cert(const char *tag, const char *san, char *crt, char *key)
{
    static long serial = 1;
    snprintf(crt, 512, "%s/%s.crt", g_dir, tag);
    snprintf(key, 512, "%s/%s.key", g_dir, tag);
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (pk == NULL || x == NULL)
        return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)tag, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", san}, {"basicConstraints", "critical,CA:TRUE"}};
    for (int i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        if (e == NULL)
            return -1;
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    int rc = X509_sign(x, pk, EVP_sha256()) > 0 && write_pem(crt, x, NULL) == 0 &&
                     write_pem(key, NULL, pk) == 0
                 ? 0
                 : -1;
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

static int setup_all(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    g_dir = hs_test_tmpdir("tls");
    if (g_dir == NULL)
        return -1;
    if (gen_cert("good", "IP:127.0.0.1,DNS:localhost", g_good_crt, g_good_key) != 0 ||
        gen_cert("wrong", "DNS:wrong.example", g_wrong_crt, g_wrong_key) != 0 ||
        gen_cert("client", "DNS:client.example", g_cli_crt, g_cli_key) != 0)
        return -1;
    return 0;
}

static int teardown_all(void **state)
{
    hs_test_rmdir(g_dir);
    free(g_dir);
    return 0;
}

/* ---- TLS server ------------------------------------------------------------------ */

struct tls_srv {
    int lfd, port;
    pthread_t th;
    SSL_CTX *ctx;
    volatile int stop;
    volatile int handshakes_failed;
    volatile int saw_client_cert;
    volatile int nconns;
};

static void serve_conn(struct tls_srv *s, int fd)
{
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
        s->handshakes_failed++;
        SSL_free(ssl);
        return;
    }
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (peer != NULL) {
        s->saw_client_cert = 1;
        X509_free(peer);
    }
    char buf[4096];
    size_t n = 0;
    for (;;) {
        int r = SSL_read(ssl, buf + n, (int)(sizeof(buf) - 1 - n));
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure";
        SSL_write(ssl, resp, (int)strlen(resp));
        size_t rest = n - (size_t)(end + 4 - buf);
        memmove(buf, end + 4, rest);
        n = rest;
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
}

static void *tls_main(void *arg)
{
    struct tls_srv *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        s->nconns++;
        serve_conn(s, fd);
        close(fd);
    }
    return NULL;
}

static void tls_start(struct tls_srv *s, const char *crt, const char *key, bool want_client_cert)
{
    memset(s, 0, sizeof(*s));
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate_file(s->ctx, crt, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM), 1);
    if (want_client_cert) {
        assert_int_equal(SSL_CTX_load_verify_locations(s->ctx, g_cli_crt, NULL), 1);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t sl = sizeof(sa);
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, tls_main, s), 0);
}

static void tls_stop(struct tls_srv *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
}

/* ---- client side ----------------------------------------------------------------- */

struct res {
    int ndone;
    struct http_client_result r;
    char body[256];
};

static void on_done(void *arg, const struct http_client_result *res)
{
    struct res *r = arg;
    r->ndone++;
    r->r = *res;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)res->body_len, res->body ? res->body : "");
}

static struct event_base *g_base;
static struct http_client *g_client;

static void client_up(const struct http_client_tls *tls)
{
    struct http_client_config cfg;
    http_client_config_defaults(&cfg);
    cfg.tls = *tls;
    g_base = event_base_new();
    struct hs_err err;
    g_client = http_client_new(g_base, &cfg, &err);
    if (g_client == NULL)
        fprintf(stderr, "client: %s\n", err.msg);
    assert_non_null(g_client);
}

static void client_down(void)
{
    http_client_free(g_client);
    event_base_free(g_base);
}

static void get(const char *host, int port, struct res *r)
{
    char url[128];
    snprintf(url, sizeof(url), "https://%s:%d/metrics", host, port);
    struct http_client_req req = {.url = url, .total_timeout_ms = 8000};
    struct http_client_callbacks cb = {.on_done = on_done};
    assert_int_equal(http_client_request(g_client, &req, &cb, r, NULL, NULL), HS_OK);
    while (r->ndone == 0)
        event_base_loop(g_base, EVLOOP_ONCE);
    assert_int_equal(r->ndone, 1);
}

static void tls_client_fetches_over_https_with_a_configured_ca(void **state)
{
    struct tls_srv s;
    tls_start(&s, g_good_crt, g_good_key, false);
    struct http_client_tls tls = {.ca_file = g_good_crt};
    client_up(&tls);
    struct res r1 = {0}, r2 = {0}, r3 = {0};
    get("127.0.0.1", s.port, &r1);
    assert_int_equal(r1.r.code, HS_OK);
    assert_int_equal(r1.r.status, 200);
    assert_string_equal(r1.body, "secure");
    get("127.0.0.1", s.port, &r2);
    assert_int_equal(r2.r.code, HS_OK);
    struct http_client_stats st;
    http_client_get_stats(g_client, &st);
    assert_int_equal(st.connections_reused, 1); /* the second request kept the TLS session */
    client_down(); /* the server serves one connection at a time: close the pooled one */
    client_up(&tls);
    get("localhost", s.port, &r3);
    if (r3.r.code != HS_OK)
        fprintf(stderr, "localhost: %s\n", r3.r.msg);
    assert_int_equal(r3.r.code, HS_OK);
    client_down();
    tls_stop(&s);
}

static void tls_client_refuses_a_certificate_for_another_host(void **state)
{
    struct tls_srv s;
    tls_start(&s, g_wrong_crt, g_wrong_key, false);
    struct http_client_tls tls = {.ca_file = g_wrong_crt};
    client_up(&tls);
    struct res r = {0};
    get("127.0.0.1", s.port, &r);
    assert_int_equal(r.r.kind, HTTP_CLIENT_FAIL_TLS);
    assert_int_equal(r.r.code, HS_EIO);
    assert_non_null(strstr(r.r.msg, "mismatch"));
    client_down();
    /* naming the expected server explicitly makes the same certificate valid */
    struct http_client_tls named = {.ca_file = g_wrong_crt, .server_name = "wrong.example"};
    client_up(&named);
    struct res r2 = {0};
    get("127.0.0.1", s.port, &r2);
    assert_int_equal(r2.r.code, HS_OK);
    client_down();
    tls_stop(&s);
}

static void tls_client_refuses_a_self_signed_certificate_by_default(void **state)
{
    struct tls_srv s;
    tls_start(&s, g_good_crt, g_good_key, false);
    struct http_client_tls tls = {0};
    client_up(&tls);
    struct res r = {0};
    get("127.0.0.1", s.port, &r);
    assert_int_equal(r.r.kind, HTTP_CLIENT_FAIL_TLS);
    assert_non_null(strstr(r.r.msg, "verification failed"));
    client_down();
    tls_stop(&s);
}

static void tls_insecure_skip_verify_accepts_any_certificate(void **state)
{
    struct tls_srv s;
    tls_start(&s, g_wrong_crt, g_wrong_key, false);
    struct http_client_tls tls = {.insecure_skip_verify = true};
    client_up(&tls);
    struct res r = {0};
    get("127.0.0.1", s.port, &r);
    assert_int_equal(r.r.code, HS_OK);
    assert_string_equal(r.body, "secure");
    client_down();
    tls_stop(&s);
}

static void tls_client_presents_its_certificate_when_configured(void **state)
{
    struct tls_srv s;
    tls_start(&s, g_good_crt, g_good_key, true);
    struct http_client_tls tls = {.ca_file = g_good_crt};
    client_up(&tls);
    struct res r = {0};
    get("127.0.0.1", s.port, &r);
    assert_int_not_equal(r.r.code, HS_OK); /* the server insists on a certificate */
    client_down();
    struct http_client_tls with = {
        .ca_file = g_good_crt, .cert_file = g_cli_crt, .key_file = g_cli_key};
    client_up(&with);
    struct res r2 = {0};
    get("127.0.0.1", s.port, &r2);
    assert_int_equal(r2.r.code, HS_OK);
    assert_int_equal(s.saw_client_cert, 1);
    client_down();
    tls_stop(&s);
}

static void tls_client_new_reports_unreadable_tls_files(void **state)
{
    struct event_base *b = event_base_new();
    struct http_client_config cfg;
    http_client_config_defaults(&cfg);
    struct hs_err err;
    cfg.tls.ca_file = "/nonexistent/ca.pem";
    assert_null(http_client_new(b, &cfg, &err));
    assert_int_equal(err.code, HS_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/ca.pem"));
    cfg.tls.ca_file = NULL;
    cfg.tls.cert_file = g_cli_crt;
    assert_null(http_client_new(b, &cfg, &err));
    assert_non_null(strstr(err.msg, "together"));
    cfg.tls.key_file = g_good_key; /* not the certificate's key */
    assert_null(http_client_new(b, &cfg, &err));
    assert_non_null(strstr(err.msg, "key_file")); /* OpenSSL: "key values mismatch" */
    event_base_free(b);
}

int main(void)
{
    alarm(120);
    hs_log_setup(HS_LOG_WARN, HS_LOG_LOGFMT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_client_fetches_over_https_with_a_configured_ca),
        cmocka_unit_test(tls_client_refuses_a_certificate_for_another_host),
        cmocka_unit_test(tls_client_refuses_a_self_signed_certificate_by_default),
        cmocka_unit_test(tls_insecure_skip_verify_accepts_any_certificate),
        cmocka_unit_test(tls_client_presents_its_certificate_when_configured),
        cmocka_unit_test(tls_client_new_reports_unreadable_tls_files),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
