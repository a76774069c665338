/*
 * bench_remote_write.c - decode throughput of a realistic remote-write
 * request (2,000 series x 1 sample, 10 labels each, as Prometheus sends by
 * default), split into its steps, and the cost of storing it the way the
 * receiver does (one appender, add per sample, one commit).
 *
 * Not a test (no pass/fail); built by hand, see the lead's report:
 *   cmake -S . -B build/remotewrite-rel -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release
 *   cmake --build build/remotewrite-rel -j2 --target hs_export
 *   clang -O2 -Isrc -Ibuild/remotewrite-rel/gen tests/export/bench_remote_write.c \
 *     build/remotewrite-rel/libhs_export.a build/remotewrite-rel/libhs_tsdb.a \
 *     build/remotewrite-rel/libhs_core.a -lsnappy -lprotobuf-c -lpcre2-8 -lyaml -lzstd -lz \
 *     -lpthread -lm -o /tmp/bench_rw && /tmp/bench_rw
 */
#include "export/export.h"
#include "tsdb/tsdb.h"

#include "remote.pb-c.h"

#include <snappy-c.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NSERIES = 2000, NLABELS = 10, ITER = 300 };

static double now_s(void)
{
    return (double)hs_mono_ns() / 1e9;
}

int main(void)
{
    static struct hs_label lab[NSERIES][NLABELS];
    static char strs[NSERIES][NLABELS][2][48];
    static struct export_rw_sample smp[NSERIES];
    static struct export_rw_series ser[NSERIES];
    const char *names[NLABELS] = {"__name__", "cluster", "container",  "endpoint",  "gpu",
                                  "instance", "job",     "model_name", "namespace", "pod"};
    for (int i = 0; i < NSERIES; i++) {
        for (int k = 0; k < NLABELS; k++) {
            snprintf(strs[i][k][0], 48, "%s", names[k]);
            if (k == 0)
                snprintf(strs[i][k][1], 48, "vllm:metric_family_%d_total", i % 50);
            else
                snprintf(strs[i][k][1], 48, "%s-value-%d", names[k], (i * 7 + k) % 97 + i / 50);
            lab[i][k].name = strs[i][k][0];
            lab[i][k].value = strs[i][k][1];
        }
        smp[i].t_ms = 1700000000000LL;
        smp[i].v = i * 1.5;
        ser[i] = (struct export_rw_series){
            .labels = {NLABELS, lab[i]}, .n_samples = 1, .samples = &smp[i]};
    }
    struct hs_buf body;
    hs_buf_init(&body, 0);
    struct hs_err err;
    if (export_rw_encode(ser, NSERIES, &body, &err) != HS_OK)
        return 1;
    size_t raw_len = 0;
    snappy_uncompressed_length(body.p, body.len, &raw_len);
    printf("request: %d series x 1 sample, %d labels; %zu bytes snappy, %zu bytes protobuf\n",
           NSERIES, NLABELS, body.len, raw_len);

    /* whole decode */
    double t0 = now_s();
    for (int it = 0; it < ITER; it++) {
        struct export_rw_request req;
        if (export_rw_decode(body.p, body.len, NULL, &req, &err) != HS_OK)
            return 1;
        export_rw_request_cleanup(&req);
    }
    double dec = (now_s() - t0) / ITER;
    /* snappy alone */
    char *raw = malloc(raw_len);
    t0 = now_s();
    for (int it = 0; it < ITER; it++) {
        size_t n = raw_len;
        snappy_uncompress(body.p, body.len, raw, &n);
    }
    double sn = (now_s() - t0) / ITER;
    /* protobuf-c unpack alone (malloc allocator) */
    t0 = now_s();
    for (int it = 0; it < ITER; it++) {
        Prometheus__WriteRequest *wr =
            prometheus__write_request__unpack(NULL, raw_len, (const uint8_t *)raw);
        prometheus__write_request__free_unpacked(wr, NULL);
    }
    double pb = (now_s() - t0) / ITER;
    printf("decode (snappy + wire reader + validate + flatten): %.1f us/request, "
           "%.2f M samples/s, %.0f MB/s protobuf (%.0f MB/s compressed)\n",
           dec * 1e6, NSERIES / dec / 1e6, raw_len / dec / 1e6, body.len / dec / 1e6);
    printf("  of which snappy alone: %.1f us; protobuf-c unpack+free alone (malloc): %.1f us\n",
           sn * 1e6, pb * 1e6);

    /* the receiver's store step */
    char dir[] = "/tmp/hs-bench-rw-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    struct tsdb_options o;
    tsdb_options_defaults(&o);
    o.wal_fsync = TSDB_FSYNC_NONE;
    hs_log_setup(HS_LOG_WARN, HS_LOG_LOGFMT, NULL);
    struct tsdb *db = tsdb_open(dir, &o, &err);
    if (db == NULL)
        return 1;
    double tot = 0;
    for (int it = 0; it < ITER; it++) {
        for (int i = 0; i < NSERIES; i++)
            smp[i].t_ms += 15000;
        hs_buf_reset(&body);
        if (export_rw_encode(ser, NSERIES, &body, &err) != HS_OK)
            return 1;
        t0 = now_s();
        struct export_rw_request req;
        if (export_rw_decode(body.p, body.len, NULL, &req, &err) != HS_OK)
            return 1;
        struct tsdb_appender *a = tsdb_appender_new(db);
        for (size_t i = 0; i < req.n_series; i++)
            if (tsdb_appender_add(a, &req.series[i].labels, req.series[i].samples[0].t_ms,
                                  req.series[i].samples[0].v, NULL, &err) != HS_OK)
                return 1;
        if (tsdb_appender_commit(a, &err) != HS_OK)
            return 1;
        export_rw_request_cleanup(&req);
        if (it > 0) /* the first request creates the series */
            tot += now_s() - t0;
    }
    double st = tot / (ITER - 1);
    printf("decode + append + commit (fsync none), series existing: %.1f us/request, "
           "%.2f M samples/s\n",
           st * 1e6, NSERIES / st / 1e6);
    tsdb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    free(raw);
    hs_buf_cleanup(&body);
    return 0;
}
