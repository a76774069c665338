/*
 * fuzz_remote_write.c - libFuzzer harness for export_rw_decode.
 *
 * The first input byte picks the mode: even, the rest is the body as it
 * came off the wire (exercises the snappy decoder); odd, the rest is
 * compressed into a valid snappy block first (exercises protobuf parsing
 * and label validation).  Whatever decodes is encoded again and decoded
 * once more, and must come back identical (labels and sample bits).  The
 * decoder is also checked against protobuf-c's generated reader: when that
 * reader accepts the message, ours must not call it malformed, and when both
 * accept it they must agree on every label and sample.
 */
#include "export/export.h"

#include "remote.pb-c.h"

#include <snappy-c.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_same(const struct export_rw_request *a, const struct export_rw_request *b)
{
    if (a->n_series != b->n_series || a->n_samples != b->n_samples)
        __builtin_trap();
    for (size_t i = 0; i < a->n_series; i++) {
        const struct export_rw_series *x = &a->series[i], *y = &b->series[i];
        if (hs_labels_cmp(&x->labels, &y->labels) != 0 || x->n_samples != y->n_samples)
            __builtin_trap();
        for (size_t k = 0; k < x->n_samples; k++) {
            if (x->samples[k].t_ms != y->samples[k].t_ms ||
                memcmp(&x->samples[k].v, &y->samples[k].v, sizeof(double)) != 0)
                __builtin_trap();
        }
    }
}

static void round_trip(const struct export_rw_request *req, const struct export_rw_limits *lim)
{
    struct hs_buf body;
    hs_buf_init(&body, 0);
    struct hs_err err;
    if (export_rw_encode(req->series, req->n_series, &body, &err) != HS_OK)
        __builtin_trap();
    struct export_rw_request again;
    if (export_rw_decode(body.p, body.len, lim, &again, &err) != HS_OK)
        __builtin_trap();
    check_same(req, &again);
    export_rw_request_cleanup(&again);
    hs_buf_cleanup(&body);
}

/* Compares our decode of 'raw' (the decompressed message) with protobuf-c's. */
static void differential(const uint8_t *raw, size_t n, int rc, const struct export_rw_request *req,
                         const char *msg)
{
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, n, raw);
    if (wr == NULL)
        return;
    /* protobuf-c reads what we called malformed; we are stricter only on
     * field numbers past 2^29 - 1, which protobuf-c truncates. */
    if (rc == HS_EPARSE && strstr(msg, "invalid field number") == NULL)
        __builtin_trap();
    if (rc == HS_OK) {
        if (wr->n_timeseries != req->n_series)
            __builtin_trap();
        for (size_t i = 0; i < req->n_series; i++) {
            const Prometheus__TimeSeries *ts = wr->timeseries[i];
            const struct export_rw_series *s = &req->series[i];
            if (ts->n_samples != s->n_samples)
                __builtin_trap();
            for (size_t k = 0; k < s->n_samples; k++) {
                if (ts->samples[k]->timestamp != s->samples[k].t_ms ||
                    memcmp(&ts->samples[k]->value, &s->samples[k].v, sizeof(double)) != 0)
                    __builtin_trap();
            }
            size_t kept = 0;
            for (size_t k = 0; k < ts->n_labels; k++) {
                const Prometheus__Label *l = ts->labels[k];
                if (l->value.len == 0)
                    continue;
                if (kept >= s->labels.n || strlen(s->labels.v[kept].name) != l->name.len ||
                    memcmp(s->labels.v[kept].name, l->name.data, l->name.len) != 0 ||
                    strlen(s->labels.v[kept].value) != l->value.len ||
                    memcmp(s->labels.v[kept].value, l->value.data, l->value.len) != 0)
                    __builtin_trap();
                kept++;
            }
            if (kept != s->labels.n)
                __builtin_trap();
        }
    }
    prometheus__write_request__free_unpacked(wr, NULL);
}

/* Decompresses 'body' again for the differential check (it was valid snappy). */
static void check_against_protobuf_c(const char *body, size_t len, int rc,
                                     const struct export_rw_request *req, const char *msg)
{
    size_t n = 0;
    if (snappy_uncompressed_length(body, len, &n) != SNAPPY_OK || n > (1u << 20))
        return;
    char *raw = malloc(n ? n : 1);
    if (raw != NULL && snappy_uncompress(body, len, raw, &n) == SNAPPY_OK)
        differential((const uint8_t *)raw, n, rc, req, msg);
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct export_rw_limits lim;
    export_rw_limits_defaults(&lim);
    lim.max_decompressed_bytes = 1 << 20;
    lim.max_decode_bytes = 64 << 20;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *packed = NULL;
    if (data[0] & 1) {
        size_t cap = snappy_max_compressed_length(len);
        packed = malloc(cap ? cap : 1);
        if (packed == NULL || snappy_compress(body, len, packed, &cap) != SNAPPY_OK) {
            free(packed);
            return 0;
        }
        body = packed;
        len = cap;
    }
    struct export_rw_request req;
    struct hs_err err;
    int rc = export_rw_decode(body, len, &lim, &req, &err);
    if (rc != HS_OK && err.msg[0] == '\0')
        __builtin_trap(); /* every failure explains itself */
    if (rc != HS_ECORRUPT && rc != HS_ETOOBIG)
        check_against_protobuf_c(body, len, rc, &req, err.msg);
    if (rc == HS_OK) {
        round_trip(&req, &lim);
        export_rw_request_cleanup(&req);
    }
    free(packed);
    return 0;
}
