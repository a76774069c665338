/*
 * tls.c - OpenSSL setup for the client's https connections.
 *
 * One SSL_CTX per client holds the trust store (the system default paths or
 * a configured CA file), the optional client certificate and the
 * verification mode; every connection gets its own SSL with SNI and the
 * expected host name (or IP address) set, so OpenSSL checks the peer's name
 * during the handshake.  TLS 1.2 is the oldest version offered.
 */
#include "http/internal.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <string.h>

/* Appends the newest OpenSSL error reason to a message. */
static int ossl_fail(struct hs_err *err, const char *what, const char *file)
{
    char reason[160] = "unknown reason";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    return hs_err_set(err, HS_EINVAL, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
                      reason);
}

struct ssl_ctx_st *http__tls_ctx_new(const struct http_client_tls *tls, struct hs_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ossl_fail(err, "cannot create the TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (tls->insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (tls->ca_file != NULL) {
            if (SSL_CTX_load_verify_locations(ctx, tls->ca_file, NULL) != 1) {
                ossl_fail(err, "cannot load ca_file", tls->ca_file);
                goto fail;
            }
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            ossl_fail(err, "cannot load the system CA store", NULL);
            goto fail;
        }
    }
    if ((tls->cert_file == NULL) != (tls->key_file == NULL)) {
        hs_err_set(err, HS_EINVAL, "cert_file and key_file must be given together");
        goto fail;
    }
    if (tls->cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file) != 1) {
            ossl_fail(err, "cannot load cert_file", tls->cert_file);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, tls->key_file, SSL_FILETYPE_PEM) != 1) {
            ossl_fail(err, "cannot load key_file", tls->key_file);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ossl_fail(err, "key_file does not match cert_file", tls->key_file);
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void http__tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

struct ssl_st *http__tls_ssl_new(struct ssl_ctx_st *ctx, const char *host, bool insecure,
                                 struct hs_err *err)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        ossl_fail(err, "cannot create a TLS session", NULL);
        return NULL;
    }
    bool is_ip = is_ip_literal(host);
    /* SNI carries DNS names only (RFC 6066 section 3). */
    if (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1) {
        ossl_fail(err, "cannot set the TLS server name", host);
        SSL_free(ssl);
        return NULL;
    }
    if (!insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                       : X509_VERIFY_PARAM_set1_host(vp, host, 0);
        if (ok != 1) {
            ossl_fail(err, "cannot set the name to verify", host);
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

void http__tls_describe_failure(struct ssl_st *ssl, unsigned long ossl_err, char *out,
                                size_t out_len)
{
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        snprintf(out, out_len, "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    } else if (ossl_err != 0) {
        char reason[160];
        ERR_error_string_n(ossl_err, reason, sizeof(reason));
        snprintf(out, out_len, "TLS handshake failed: %s", reason);
    } else {
        snprintf(out, out_len, "TLS handshake failed: connection closed by the peer");
    }
    ERR_clear_error();
}
