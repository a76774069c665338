/*
 * test_remote_codec.c - the remote-write codec (src/export/remote_codec.c):
 * round trips with special floats and the stale marker, every validation
 * error with its message, the snappy and protobuf failure modes, the
 * ceilings, and allocation failure at every step.
 *
 * Hand-made protobuf bytes (for malformed and unusual messages) are built
 * with the small writer below and compressed with libsnappy.
 */
#include "export/export.h"

#include "hs_test.h"

#include "remote.pb-c.h"

#include <snappy-c.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* Raw protobuf writer. */
struct pbw {
    uint8_t b[4096];
    size_t n;
};

static void pb_varint(struct pbw *w, uint64_t v)
{
    while (v >= 0x80) {
        w->b[w->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    w->b[w->n++] = (uint8_t)v;
}

static void pb_bytes(struct pbw *w, unsigned field, const void *p, size_t len)
{
    pb_varint(w, (uint64_t)field << 3 | 2);
    pb_varint(w, len);
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

static void pb_msg(struct pbw *w, unsigned field, const struct pbw *m)
{
    pb_bytes(w, field, m->b, m->n);
}

static void pb_label(struct pbw *ts, const char *name, size_t nl, const char *value, size_t vl)
{
    struct pbw l = {.n = 0};
    pb_bytes(&l, 1, name, nl);
    pb_bytes(&l, 2, value, vl);
    pb_msg(ts, 1, &l);
}

static void pb_sample(struct pbw *ts, double v, int64_t t)
{
    struct pbw s = {.n = 0};
    uint64_t u = bits_of(v);
    pb_varint(&s, 1 << 3 | 1);
    for (int i = 0; i < 8; i++)
        s.b[s.n++] = (uint8_t)(u >> (8 * i));
    pb_varint(&s, 2 << 3 | 0);
    pb_varint(&s, (uint64_t)t);
    pb_msg(ts, 2, &s);
}

/* snappy-compresses raw bytes into a malloc'ed body. */
static char *snap(const void *raw, size_t n, size_t *out_len)
{
    size_t cap = snappy_max_compressed_length(n);
    char *o = malloc(cap);
    assert_non_null(o);
    *out_len = cap;
    assert_int_equal(snappy_compress(raw, n, o, out_len), SNAPPY_OK);
    return o;
}

/* Decodes hand-made protobuf bytes (after snappy) with 'lim'. */
static int decode_raw(const struct pbw *w, const struct export_rw_limits *lim,
                      struct export_rw_request *out, struct hs_err *err)
{
    size_t n;
    char *body = snap(w->b, w->n, &n);
    int rc = export_rw_decode(body, n, lim, out, err);
    free(body);
    return rc;
}

/* One series with a metric name and the given extra pairs; decode must
 * fail with 'code' and a message containing 'want'. */
static void expect_series_error(const char *const *pairs, size_t npairs, int code, const char *want)
{
    struct pbw w = {.n = 0}, ts = {.n = 0};
    for (size_t i = 0; i + 1 < npairs; i += 2)
        pb_label(&ts, pairs[i], strlen(pairs[i]), pairs[i + 1], strlen(pairs[i + 1]));
    pb_sample(&ts, 1, 1000);
    pb_msg(&w, 1, &ts);
    struct export_rw_request req;
    struct hs_err err = {0};
    int rc = decode_raw(&w, NULL, &req, &err);
    if (rc != code || strstr(err.msg, want) == NULL)
        fail_msg("rc %d (want %d), message \"%s\" (want \"%s\")", rc, code, err.msg, want);
    export_rw_request_cleanup(&req);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void codec_round_trip_keeps_labels_timestamps_and_every_float_bit_pattern(void **state)
{
    (void)state;
    struct hs_label l1[] = {{"__name__", "up"}, {"instance", "a:9090"}, {"job", "node"}};
    struct hs_label l2[] = {
        {"__name__", "http_requests_total"}, {"code", "200"}, {"path", "/api/\xc3\xa9t\xc3\xa9"}};
    uint64_t specials[] = {bits_of(0.0),          bits_of(-0.0),         bits_of(INFINITY),
                           bits_of(-INFINITY),    bits_of(NAN),          0x7ff0000000000002ULL,
                           0x7ff8000000000001ULL, 0x0000000000000001ULL, bits_of(1e308),
                           bits_of(-3.25)};
    enum { NS = sizeof(specials) / sizeof(specials[0]) };
    struct export_rw_sample s1[NS], s2[] = {{INT64_MIN, 1}, {-1, 2}, {0, 3}, {INT64_MAX, 4}};
    for (size_t i = 0; i < NS; i++) {
        s1[i].t_ms = 1700000000000LL + (int64_t)i * 15000;
        s1[i].v = from_bits(specials[i]);
    }
    struct export_rw_series in[2] = {
        {.labels = {3, l1}, .n_samples = NS, .samples = s1},
        {.labels = {3, l2}, .n_samples = 4, .samples = s2},
    };
    struct hs_buf body;
    hs_buf_init(&body, 0);
    struct hs_err err = {0};
    assert_int_equal(export_rw_encode(in, 2, &body, &err), HS_OK);

    struct export_rw_request req;
    assert_int_equal(export_rw_decode(body.p, body.len, NULL, &req, &err), HS_OK);
    assert_int_equal(req.n_series, 2);
    assert_int_equal(req.n_samples, NS + 4);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(hs_labels_cmp(&req.series[i].labels, &in[i].labels), 0);
        assert_int_equal(req.series[i].n_samples, in[i].n_samples);
        for (size_t k = 0; k < in[i].n_samples; k++) {
            assert_int_equal(req.series[i].samples[k].t_ms, in[i].samples[k].t_ms);
            assert_int_equal(bits_of(req.series[i].samples[k].v), bits_of(in[i].samples[k].v));
        }
    }
    /* the stale marker is not confused with an ordinary NaN */
    assert_int_equal(bits_of(req.series[0].samples[5].v), 0x7ff0000000000002ULL);
    assert_true(bits_of(req.series[0].samples[4].v) != 0x7ff0000000000002ULL);
    export_rw_request_cleanup(&req);
    hs_buf_cleanup(&body);
}

static void codec_decodes_an_empty_request_as_no_series(void **state)
{
    (void)state;
    struct hs_buf body;
    hs_buf_init(&body, 0);
    struct hs_err err = {0};
    assert_int_equal(export_rw_encode(NULL, 0, &body, &err), HS_OK);
    struct export_rw_request req;
    assert_int_equal(export_rw_decode(body.p, body.len, NULL, &req, &err), HS_OK);
    assert_int_equal(req.n_series, 0);
    assert_int_equal(req.n_samples, 0);
    export_rw_request_cleanup(&req);
    hs_buf_cleanup(&body);
}

static void codec_drops_labels_with_an_empty_value(void **state)
{
    (void)state;
    struct pbw w = {.n = 0}, ts = {.n = 0};
    pb_label(&ts, "__name__", 8, "m", 1);
    pb_label(&ts, "a", 1, "", 0);
    pb_label(&ts, "b", 1, "x", 1);
    pb_sample(&ts, 2, 5);
    pb_msg(&w, 1, &ts);
    struct export_rw_request req;
    struct hs_err err = {0};
    assert_int_equal(decode_raw(&w, NULL, &req, &err), HS_OK);
    assert_int_equal(req.series[0].labels.n, 2);
    assert_string_equal(req.series[0].labels.v[1].name, "b");
    assert_true(hs_labels_valid(&req.series[0].labels));
    export_rw_request_cleanup(&req);
}

static void codec_skips_unknown_fields_and_counts_exemplars_histograms_and_metadata(void **state)
{
    (void)state;
    struct pbw w = {.n = 0}, ts = {.n = 0}, ex = {.n = 0}, hist = {.n = 0}, md = {.n = 0};
    pb_label(&ts, "__name__", 8, "m", 1);
    pb_varint(&ts, 99 << 3 | 0); /* unknown varint field */
    pb_varint(&ts, 12345);
    pb_sample(&ts, 1.5, 10);
    pb_label(&ex, "trace_id", 8, "abc", 3);
    pb_msg(&ts, 3, &ex);
    pb_varint(&hist, 1 << 3 | 0); /* count_int */
    pb_varint(&hist, 7);
    /* positive_deltas, packed, then once more unpacked */
    uint8_t packed[] = {0x02, 0x04};
    pb_bytes(&hist, 12, packed, sizeof(packed));
    pb_varint(&hist, 12 << 3 | 0);
    pb_varint(&hist, 3);
    pb_msg(&ts, 4, &hist);
    pb_msg(&w, 1, &ts);
    pb_bytes(&md, 2, "m", 1);
    pb_msg(&w, 3, &md);
    pb_bytes(&w, 77, "future", 6); /* unknown length-delimited field */

    struct export_rw_request req;
    struct hs_err err = {0};
    assert_int_equal(decode_raw(&w, NULL, &req, &err), HS_OK);
    assert_int_equal(req.n_series, 1);
    assert_int_equal(req.n_samples, 1);
    assert_int_equal(req.n_exemplars, 1);
    assert_int_equal(req.n_histograms, 1);
    assert_int_equal(req.n_metadata, 1);
    assert_int_equal(req.series[0].samples[0].t_ms, 10);
    export_rw_request_cleanup(&req);
}

static void codec_accepts_utf8_names_only_when_allowed(void **state)
{
    (void)state;
    struct pbw w = {.n = 0}, ts = {.n = 0};
    pb_label(&ts, "__name__", 8, "my.metric", 9);
    pb_label(&ts, "k\xc3\xa9y", 4, "v", 1);
    pb_sample(&ts, 1, 1);
    pb_msg(&w, 1, &ts);
    struct export_rw_limits lim;
    export_rw_limits_defaults(&lim);
    struct export_rw_request req;
    struct hs_err err = {0};
    assert_int_equal(decode_raw(&w, &lim, &req, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "invalid metric name \"my.metric\""));
    lim.is_utf8_names_allowed = true;
    assert_int_equal(decode_raw(&w, &lim, &req, &err), HS_OK);
    assert_string_equal(req.series[0].labels.v[0].value, "my.metric");
    export_rw_request_cleanup(&req);
}

/* ---- label validation ------------------------------------------------------------------ */

static void codec_rejects_a_series_without_labels(void **state)
{
    (void)state;
    expect_series_error(NULL, 0, HS_EINVAL, "timeseries[0]: series without labels");
}

static void codec_rejects_an_empty_label_name(void **state)
{
    (void)state;
    const char *p[] = {"", "x", "__name__", "m"};
    expect_series_error(p, 4, HS_EINVAL, "timeseries[0]: label with an empty name");
}

static void codec_rejects_an_invalid_label_name(void **state)
{
    (void)state;
    const char *p[] = {"1abc", "x", "__name__", "m"};
    expect_series_error(p, 4, HS_EINVAL, "timeseries[0]: invalid label name \"1abc\"");
}

static void codec_rejects_labels_not_sorted_by_name(void **state)
{
    (void)state;
    const char *p[] = {"__name__", "m", "zone", "a", "job", "b"};
    expect_series_error(p, 6, HS_EINVAL, "labels not sorted by name: \"job\" after \"zone\"");
}

static void codec_rejects_a_duplicate_label_name(void **state)
{
    (void)state;
    const char *p[] = {"__name__", "m", "job", "a", "job", "b"};
    expect_series_error(p, 6, HS_EINVAL, "timeseries[0]: duplicate label name \"job\"");
}

static void codec_rejects_a_series_without_a_metric_name(void **state)
{
    (void)state;
    const char *p[] = {"job", "a"};
    expect_series_error(p, 2, HS_EINVAL, "timeseries[0]: series without a __name__ label");
    const char *q[] = {"__name__", "", "job", "a"};
    expect_series_error(q, 4, HS_EINVAL, "series without a __name__ label");
}

static void codec_rejects_an_invalid_metric_name(void **state)
{
    (void)state;
    const char *p[] = {"__name__", "9lives"};
    expect_series_error(p, 2, HS_EINVAL, "timeseries[0]: invalid metric name \"9lives\"");
}

static void codec_rejects_label_values_that_are_not_utf8(void **state)
{
    (void)state;
    const char *p[] = {"__name__", "m", "a", "ok\xff"};
    expect_series_error(p, 4, HS_EINVAL,
                        "value of label \"a\" is not valid UTF-8 (byte 2): "
                        "\"ok\\xff\"");
    const char *q[] = {"__name__", "m", "a", "\xed\xa0\x80"}; /* a surrogate */
    expect_series_error(q, 4, HS_EINVAL, "is not valid UTF-8 (byte 0)");
}

static void codec_rejects_a_nul_byte_inside_a_label_value(void **state)
{
    (void)state;
    struct pbw w = {.n = 0}, ts = {.n = 0};
    pb_label(&ts, "__name__", 8, "m", 1);
    pb_label(&ts, "a", 1, "x\0y", 3);
    pb_msg(&w, 1, &ts);
    struct export_rw_request req;
    struct hs_err err = {0};
    assert_int_equal(decode_raw(&w, NULL, &req, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "\"x\\x00y\""));
}

static void codec_rejects_series_past_the_label_limits(void **state)
{
    (void)state;
    struct export_rw_limits lim;
    export_rw_limits_defaults(&lim);
    lim.max_labels = 2;
    lim.max_label_name_bytes = 4;
    lim.max_label_value_bytes = 5;
    struct export_rw_request req;
    struct hs_err err = {0};

    struct pbw w = {.n = 0}, ts = {.n = 0};
    pb_label(&ts, "__name__", 8, "m", 1);
    pb_msg(&w, 1, &ts);
    assert_int_equal(decode_raw(&w, &lim, &req, &err), HS_EINVAL);
    assert_string_equal(err.msg, "timeseries[0]: label name \"__name__\" of 8 bytes, limit is 4");

    lim.max_label_name_bytes = 0;
    struct pbw w2 = {.n = 0}, ts2 = {.n = 0};
    pb_label(&ts2, "__name__", 8, "m", 1);
    pb_label(&ts2, "a", 1, "123456", 6);
    pb_msg(&w2, 1, &ts2);
    assert_int_equal(decode_raw(&w2, &lim, &req, &err), HS_EINVAL);
    assert_string_equal(err.msg, "timeseries[0]: value of label \"a\" is 6 bytes, limit is 5");

    struct pbw w3 = {.n = 0}, ts3 = {.n = 0};
    pb_label(&ts3, "__name__", 8, "m", 1);
    pb_label(&ts3, "a", 1, "1", 1);
    pb_label(&ts3, "b", 1, "1", 1);
    pb_msg(&w3, 1, &ts3);
    assert_int_equal(decode_raw(&w3, &lim, &req, &err), HS_EINVAL);
    assert_string_equal(err.msg, "timeseries[0]: 3 labels, limit is 2");
}

static void codec_names_the_index_of_the_first_bad_series(void **state)
{
    (void)state;
    struct pbw w = {.n = 0}, good = {.n = 0}, bad = {.n = 0};
    pb_label(&good, "__name__", 8, "m", 1);
    pb_label(&bad, "__name__", 8, "m", 1);
    pb_label(&bad, "bad-name", 8, "v", 1);
    pb_msg(&w, 1, &good);
    pb_msg(&w, 1, &good);
    pb_msg(&w, 1, &bad);
    struct export_rw_request req;
    struct hs_err err = {0};
    assert_int_equal(decode_raw(&w, NULL, &req, &err), HS_EINVAL);
    assert_string_equal(err.msg, "timeseries[2]: invalid label name \"bad-name\"");
    assert_int_equal(req.n_series, 0); /* nothing is handed out on failure */
}

/* ---- snappy, protobuf and ceilings ----------------------------------------------------- */

static void codec_rejects_an_empty_body_and_garbage_as_corrupt_snappy(void **state)
{
    (void)state;
    struct export_rw_request req;
    struct hs_err err = {0};
    assert_int_equal(export_rw_decode("", 0, NULL, &req, &err), HS_ECORRUPT);
    assert_non_null(strstr(err.msg, "empty body"));
    /* preamble says 5 bytes, then a copy before any output */
    const uint8_t bad[] = {0x05, 0x01, 0x01};
    assert_int_equal(export_rw_decode(bad, sizeof(bad), NULL, &req, &err), HS_ECORRUPT);
    assert_non_null(strstr(err.msg, "corrupt snappy block"));
    /* an unterminated preamble */
    const uint8_t pre[] = {0xff, 0xff};
    assert_int_equal(export_rw_decode(pre, sizeof(pre), NULL, &req, &err), HS_ECORRUPT);
    assert_non_null(strstr(err.msg, "bad length preamble"));
}

static void codec_rejects_truncated_snappy_and_output_shorter_than_the_preamble(void **state)
{
    (void)state;
    struct hs_label l[] = {{"__name__", "up"}, {"job", "x"}};
    struct export_rw_sample s = {1, 1};
    struct export_rw_series in = {.labels = {2, l}, .n_samples = 1, .samples = &s};
    struct hs_buf body;
    hs_buf_init(&body, 0);
    struct hs_err err = {0};
    assert_int_equal(export_rw_encode(&in, 1, &body, &err), HS_OK);
    struct export_rw_request req;
    for (size_t cut = 1; cut < body.len; cut++) {
        int rc = export_rw_decode(body.p, cut, NULL, &req, &err);
        assert_int_equal(rc, HS_ECORRUPT);
    }
    /* a literal-only block whose preamble announces one byte more */
    uint8_t lit[] = {0x03, 0x04, 0x0a, 0x00};
    assert_int_equal(export_rw_decode(lit, sizeof(lit), NULL, &req, &err), HS_ECORRUPT);
    hs_buf_cleanup(&body);
}

static void codec_rejects_the_framed_snappy_format_by_name(void **state)
{
    (void)state;
    const uint8_t framed[] = {0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59, 0x01};
    struct export_rw_request req;
    struct hs_err err = {0};
    assert_int_equal(export_rw_decode(framed, sizeof(framed), NULL, &req, &err), HS_ECORRUPT);
    assert_non_null(strstr(err.msg, "framed (stream) format is not supported"));
}

static void codec_refuses_a_preamble_past_the_size_limit_before_allocating(void **state)
{
    (void)state;
    /* announces 2^32 - 1 bytes, holds nothing */
    const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    struct export_rw_request req;
    struct hs_err err = {0};
    unsigned long before = hs_alloc_calls();
    assert_int_equal(export_rw_decode(big, sizeof(big), NULL, &req, &err), HS_ETOOBIG);
    assert_string_equal(err.msg, "decompressed request of 4294967295 bytes exceeds the limit of "
                                 "33554432 bytes");
    assert_int_equal(hs_alloc_calls(), before);
}

static void codec_rejects_malformed_protobuf(void **state)
{
    (void)state;
    struct export_rw_request req;
    struct hs_err err = {0};
    struct pbw w = {.n = 0};
    pb_varint(&w, 5 << 3 | 3); /* start group: not allowed */
    pb_varint(&w, 5 << 3 | 4);
    assert_int_equal(decode_raw(&w, NULL, &req, &err), HS_EPARSE);
    assert_string_equal(
        err.msg, "malformed protobuf at byte 1: groups (wire types 3 and 4) are not supported");
    assert_int_equal(err.pos, 1);

    struct pbw t = {.n = 0};
    pb_varint(&t, 1 << 3 | 2);
    pb_varint(&t, 50); /* a timeseries claiming 50 bytes, holding 1 */
    t.b[t.n++] = 0x0a;
    assert_int_equal(decode_raw(&t, NULL, &req, &err), HS_EPARSE);
    assert_string_equal(err.msg, "malformed protobuf at byte 2: length-delimited field runs past "
                                 "the end of its message");

    struct pbw s = {.n = 0}, ts = {.n = 0}, smp = {.n = 0};
    pb_varint(&smp, 1 << 3 | 0); /* value sent as a varint: wrong wire type */
    pb_varint(&smp, 1);
    pb_label(&ts, "__name__", 8, "m", 1);
    pb_msg(&ts, 2, &smp);
    pb_msg(&s, 1, &ts);
    assert_int_equal(decode_raw(&s, NULL, &req, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "Sample.value has a wire type other than 1 (fixed64)"));

    struct pbw v = {.n = 0};
    for (int i = 0; i < 11; i++) /* an 11-byte varint tag */
        v.b[v.n++] = 0x80;
    v.b[v.n++] = 0x01;
    assert_int_equal(decode_raw(&v, NULL, &req, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "varint longer than 10 bytes"));

    struct pbw z = {.n = 0};
    pb_varint(&z, 0 << 3 | 0); /* field number 0 */
    pb_varint(&z, 1);
    assert_int_equal(decode_raw(&z, NULL, &req, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "invalid field number"));

    struct pbw l = {.n = 0}, tl = {.n = 0};
    pb_varint(&tl, 1 << 3 | 0); /* labels as a varint */
    pb_varint(&tl, 3);
    pb_msg(&l, 1, &tl);
    assert_int_equal(decode_raw(&l, NULL, &req, &err), HS_EPARSE);
    assert_non_null(strstr(err.msg, "TimeSeries.labels has wire type 0, expected 2"));
}

static void codec_rejects_requests_past_the_series_and_sample_limits(void **state)
{
    (void)state;
    struct hs_label l[] = {{"__name__", "m"}};
    struct export_rw_sample s[3] = {{1, 1}, {2, 2}, {3, 3}};
    struct export_rw_series in[2] = {{.labels = {1, l}, .n_samples = 3, .samples = s},
                                     {.labels = {1, l}, .n_samples = 3, .samples = s}};
    struct hs_buf body;
    hs_buf_init(&body, 0);
    struct hs_err err = {0};
    assert_int_equal(export_rw_encode(in, 2, &body, &err), HS_OK);
    struct export_rw_limits lim;
    export_rw_limits_defaults(&lim);
    struct export_rw_request req;
    lim.max_series = 1;
    assert_int_equal(export_rw_decode(body.p, body.len, &lim, &req, &err), HS_ETOOBIG);
    assert_string_equal(err.msg, "request holds 2 series, limit is 1");
    lim.max_series = 0;
    lim.max_samples = 5;
    assert_int_equal(export_rw_decode(body.p, body.len, &lim, &req, &err), HS_ETOOBIG);
    assert_string_equal(err.msg, "request holds more than 5 samples, the limit");
    lim.max_samples = 0;
    lim.max_decompressed_bytes = 10;
    assert_int_equal(export_rw_decode(body.p, body.len, &lim, &req, &err), HS_ETOOBIG);
    lim.max_decompressed_bytes = 0;
    lim.max_decode_bytes = 64;
    assert_int_equal(export_rw_decode(body.p, body.len, &lim, &req, &err), HS_ETOOBIG);
    assert_non_null(strstr(err.msg, "bytes of memory"));
    hs_buf_cleanup(&body);
}

/* ---- allocation failure ------------------------------------------------------------------ */

static void codec_fails_cleanly_when_any_allocation_fails(void **state)
{
    (void)state;
    struct hs_label l[] = {{"__name__", "m"}, {"a", "b"}};
    struct export_rw_sample s[2] = {{1, 1}, {2, 2}};
    struct export_rw_series in[3];
    for (int i = 0; i < 3; i++)
        in[i] = (struct export_rw_series){.labels = {2, l}, .n_samples = 2, .samples = s};
    struct hs_buf ref;
    hs_buf_init(&ref, 0);
    struct hs_err err = {0};
    assert_int_equal(export_rw_encode(in, 3, &ref, &err), HS_OK);

    bool is_done = false;
    for (long n = 0; !is_done && n < 1000; n++) {
        struct hs_buf body;
        hs_buf_init(&body, 0);
        hs_alloc_fail_after(n);
        int rc = export_rw_encode(in, 3, &body, &err);
        hs_alloc_fail_after(-1);
        if (rc == HS_OK) {
            assert_memory_equal(body.p, ref.p, ref.len);
            is_done = true;
        } else {
            assert_int_equal(rc, HS_ENOMEM);
        }
        hs_buf_cleanup(&body);
    }
    assert_true(is_done);

    is_done = false;
    for (long n = 0; !is_done && n < 1000; n++) {
        struct export_rw_request req;
        hs_alloc_fail_after(n);
        int rc = export_rw_decode(ref.p, ref.len, NULL, &req, &err);
        hs_alloc_fail_after(-1);
        if (rc == HS_OK) {
            assert_int_equal(req.n_samples, 6);
            is_done = true;
        } else {
            assert_int_equal(rc, HS_ENOMEM);
        }
        export_rw_request_cleanup(&req);
    }
    assert_true(is_done);
    hs_buf_cleanup(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codec_round_trip_keeps_labels_timestamps_and_every_float_bit_pattern),
        cmocka_unit_test(codec_decodes_an_empty_request_as_no_series),
        cmocka_unit_test(codec_drops_labels_with_an_empty_value),
        cmocka_unit_test(codec_skips_unknown_fields_and_counts_exemplars_histograms_and_metadata),
        cmocka_unit_test(codec_accepts_utf8_names_only_when_allowed),
        cmocka_unit_test(codec_rejects_a_series_without_labels),
        cmocka_unit_test(codec_rejects_an_empty_label_name),
        cmocka_unit_test(codec_rejects_an_invalid_label_name),
        cmocka_unit_test(codec_rejects_labels_not_sorted_by_name),
        cmocka_unit_test(codec_rejects_a_duplicate_label_name),
        cmocka_unit_test(codec_rejects_a_series_without_a_metric_name),
        cmocka_unit_test(codec_rejects_an_invalid_metric_name),
        cmocka_unit_test(codec_rejects_label_values_that_are_not_utf8),
        cmocka_unit_test(codec_rejects_a_nul_byte_inside_a_label_value),
        cmocka_unit_test(codec_rejects_series_past_the_label_limits),
        cmocka_unit_test(codec_names_the_index_of_the_first_bad_series),
        cmocka_unit_test(codec_rejects_an_empty_body_and_garbage_as_corrupt_snappy),
        cmocka_unit_test(codec_rejects_truncated_snappy_and_output_shorter_than_the_preamble),
        cmocka_unit_test(codec_rejects_the_framed_snappy_format_by_name),
        cmocka_unit_test(codec_refuses_a_preamble_past_the_size_limit_before_allocating),
        cmocka_unit_test(codec_rejects_malformed_protobuf),
        cmocka_unit_test(codec_rejects_requests_past_the_series_and_sample_limits),
        cmocka_unit_test(codec_fails_cleanly_when_any_allocation_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
