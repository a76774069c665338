/*
 * test_gpu.c - the GPU collector through the fake NVML library (path in
 * HS_FAKE_NVML, set by CMakeLists.fragment.cmake): every metric and label
 * of two GPUs, throttle reasons, XID events, failing calls, and what
 * happens without a library or without GPUs.
 */
#include "hs_test.h"
#include "hs_test_util.h"
#include "rec_sink.h"

#include "collect/collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_MS 1795400000000LL

static const char two_gpus[] = "count 2\n"
                               "driver 570.133.20\n"
                               "gpu0.name NVIDIA H100 80GB HBM3\n"
                               "gpu0.uuid GPU-7a1c0f52-3d9e-6b4a-8e21-c5f0d4a9b3e7\n"
                               "gpu0.pci 00000000:18:00.0\n"
                               "gpu0.util_gpu 97\n"
                               "gpu0.util_mem 61\n"
                               "gpu0.mem_total 85520809984\n"
                               "gpu0.mem_used 78050000000\n"
                               "gpu0.mem_free 6421430272\n"
                               "gpu0.power_mw 512377\n"
                               "gpu0.energy_mj 1830418562212\n"
                               "gpu0.temp 58\n"
                               "gpu0.sm_clock 1980\n"
                               "gpu0.mem_clock 2619\n"
                               "gpu0.throttle 0x0000000000000044\n"
                               "gpu0.ecc_sbe_vol 3\n"
                               "gpu0.ecc_dbe_vol 1\n"
                               "gpu0.ecc_sbe_agg 30\n"
                               "gpu0.ecc_dbe_agg 2\n"
                               "gpu0.pcie_tx_kbs 1500\n"
                               "gpu0.pcie_rx_kbs 250000\n"
                               "gpu0.enc_util 5\n"
                               "gpu0.dec_util 7\n"
                               "gpu0.pcie_replay 11\n"
                               "gpu0.remap_corr 2\n"
                               "gpu0.remap_unc 1\n"
                               "gpu0.remap_failed 1\n"
                               "gpu0.proc 4242 73014444032\n"
                               "gpu0.proc 4300 1048576\n"
                               "gpu0.xid 13\n"
                               "gpu1.name NVIDIA H100 80GB HBM3\n"
                               "gpu1.uuid GPU-2f8d6c41-9a0b-5e73-b6c2-0d1e8f7a4c95\n"
                               "gpu1.pci 00000000:2A:00.0\n"
                               "gpu1.util_gpu 88\n"
                               "gpu1.util_mem 54\n"
                               "gpu1.mem_total 85520809984\n"
                               "gpu1.mem_used 1048576\n"
                               "gpu1.mem_free 85519761408\n"
                               "gpu1.power_mw 431902\n"
                               "gpu1.energy_mj 1612201933870\n"
                               "gpu1.temp 52\n"
                               "gpu1.sm_clock 1755\n"
                               "gpu1.mem_clock 2619\n"
                               "gpu1.throttle 0\n"
                               "gpu1.pcie_tx_kbs 0\n"
                               "gpu1.pcie_rx_kbs 8\n"
                               "gpu1.proc 5151 2097152\n"
                               "gpu1.xid 79\n"
                               "gpu1.xid 79\n"
                               "gpu1.fail ecc 3\n"
                               "gpu1.fail remap 3\n";

struct fixture {
    char *dir;
    char data[4096];
};

static const char *fake_path(void)
{
    const char *p = getenv("HS_FAKE_NVML");
    if (p == NULL || p[0] == '\0') {
        print_error("HS_FAKE_NVML is not set: run through ctest "
                    "(tests/collect/CMakeLists.fragment.cmake sets it)\n");
        fail();
    }
    return p;
}

static void write_data(struct fixture *f, const char *text)
{
    f->dir = hs_test_tmpdir("collect-gpu");
    assert_non_null(f->dir);
    snprintf(f->data, sizeof(f->data), "%s/nvml.txt", f->dir);
    FILE *fp = fopen(f->data, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    setenv("HS_FAKE_NVML_DATA", f->data, 1);
}

static void fixture_done(struct fixture *f)
{
    unsetenv("HS_FAKE_NVML_DATA");
    hs_test_rmdir(f->dir);
    free(f->dir);
}

static struct collect *gpu_collector(const char *lib)
{
    struct collect_config cfg;
    collect_config_defaults(&cfg);
    cfg.host_enabled = false;
    cfg.nvml_path = lib;
    cfg.hostname = "gpu-node-07";
    struct hs_err err;
    struct collect *c = collect_new(&cfg, NULL, &err);
    assert_non_null(c);
    return c;
}

static void round_into(struct collect *c, struct rec *r, int64_t t_ms)
{
    struct collect_sink sink = rec_sink(r);
    struct hs_err err;
    assert_int_equal(collect_collect(c, t_ms, &sink, &err), HS_OK);
}

#define G0 "gpu", "0"
#define G1 "gpu", "1"

static void gpu_reports_every_metric_of_two_gpus_in_dcgm_units(void **state)
{
    struct fixture f;
    write_data(&f, two_gpus);
    struct collect *c = gpu_collector(fake_path());
    struct rec r = {0};
    round_into(c, &r, T_MS);

    assert_near(rec_value(&r, "DCGM_FI_DEV_GPU_UTIL", G0, NULL), 97, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_GPU_UTIL", G1, NULL), 88, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_MEM_COPY_UTIL", G0, NULL), 61, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_MEM_COPY_UTIL", G1, NULL), 54, 0);
    /* Memory in MiB, rounded down like DCGM's integer fields. */
    assert_near(rec_value(&r, "DCGM_FI_DEV_FB_USED", G0, NULL), 74434, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_FB_FREE", G0, NULL), 6123, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_FB_TOTAL", G0, NULL), 81559, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_FB_USED", G1, NULL), 1, 0);
    /* Power in W from mW; energy stays mJ. */
    assert_near(rec_value(&r, "DCGM_FI_DEV_POWER_USAGE", G0, NULL), 512.377, 1e-9);
    assert_near(rec_value(&r, "DCGM_FI_DEV_POWER_USAGE", G1, NULL), 431.902, 1e-9);
    assert_near(rec_value(&r, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", G0, NULL), 1830418562212.0,
                0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_GPU_TEMP", G0, NULL), 58, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_GPU_TEMP", G1, NULL), 52, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_SM_CLOCK", G0, NULL), 1980, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_SM_CLOCK", G1, NULL), 1755, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_MEM_CLOCK", G1, NULL), 2619, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", G0, NULL), 3, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", G0, NULL), 1, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", G0, NULL), 30, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", G0, NULL), 2, 0);
    /* PCIe throughput in bytes/s from KB/s. */
    assert_near(rec_value(&r, "DCGM_FI_PROF_PCIE_TX_BYTES", G0, NULL), 1500.0 * 1024, 0);
    assert_near(rec_value(&r, "DCGM_FI_PROF_PCIE_RX_BYTES", G0, NULL), 250000.0 * 1024, 0);
    assert_near(rec_value(&r, "DCGM_FI_PROF_PCIE_RX_BYTES", G1, NULL), 8192, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_ENC_UTIL", G0, NULL), 5, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_DEC_UTIL", G0, NULL), 7, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_DEC_UTIL", G1, NULL), 0, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", G0, NULL), 11, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", G0, NULL), 2, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", G0, NULL), 1, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_ROW_REMAP_FAILURE", G0, NULL), 1, 0);
    /* Row remapping unsupported on GPU 1: no series, no error. */
    assert_int_equal(rec_count(&r, "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", G1, NULL), 0);
    assert_int_equal(rec_count(&r, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", G1, NULL), 0);
    struct collect_stats st;
    collect_get_stats(c, &st);
    assert_int_equal(st.gpu.errors_total, 0);
    assert_int_equal(st.gpu_count, 2);
    assert_near(rec_value(&r, "holoscope_gpu_process_memory_used_bytes", G0, "pid", "4242", NULL),
                73014444032.0, 0);
    assert_near(rec_value(&r, "holoscope_collector_up", "collector", "gpu", NULL), 1, 0);
    collect_free(c);
    rec_clear(&r);
    fixture_done(&f);
}

static void gpu_labels_match_dcgm_exporter_plus_backend_nvml(void **state)
{
    struct fixture f;
    write_data(&f, two_gpus);
    struct collect *c = gpu_collector(fake_path());
    struct rec r = {0};
    round_into(c, &r, T_MS);
    const struct hs_labels *ls = rec_labels(&r, "DCGM_FI_DEV_GPU_TEMP", G1, NULL);
    struct {
        const char *k, *v;
    } want[] = {
        {"__name__", "DCGM_FI_DEV_GPU_TEMP"},
        {"gpu", "1"},
        {"UUID", "GPU-2f8d6c41-9a0b-5e73-b6c2-0d1e8f7a4c95"},
        {"pci_bus_id", "00000000:2A:00.0"},
        {"device", "nvidia1"},
        {"modelName", "NVIDIA H100 80GB HBM3"},
        {"Hostname", "gpu-node-07"},
        {"DCGM_FI_DRIVER_VERSION", "570.133.20"},
        {"backend", "nvml"},
        {"job", "dcgm"},
        {"instance", "gpu-node-07"},
    };
    assert_int_equal(ls->n, HS_ARRAY_LEN(want));
    for (size_t i = 0; i < HS_ARRAY_LEN(want); i++) {
        const char *have = hs_labels_get(ls, want[i].k);
        if (have == NULL || strcmp(have, want[i].v) != 0) {
            print_error("label %s = %s, expected %s\n", want[i].k, have ? have : "(absent)",
                        want[i].v);
            fail();
        }
    }
    /* Every GPU series carries the identity labels. */
    for (size_t i = 0; i < r.n; i++) {
        const char *name = hs_labels_get(r.v[i].ls, "__name__");
        if (strncmp(name, "holoscope_collector_", 20) == 0)
            continue;
        assert_non_null(hs_labels_get(r.v[i].ls, "UUID"));
        assert_non_null(hs_labels_get(r.v[i].ls, "modelName"));
        assert_string_equal(hs_labels_get(r.v[i].ls, "backend"), "nvml");
    }
    collect_free(c);
    rec_clear(&r);
    fixture_done(&f);
}

static void gpu_reports_the_throttle_reason_bitmask_as_nvml_gives_it(void **state)
{
    struct fixture f;
    write_data(&f, two_gpus);
    struct collect *c = gpu_collector(fake_path());
    struct rec r = {0};
    round_into(c, &r, T_MS);
    /* 0x44 = nvmlClocksThrottleReasonSwPowerCap (0x4) |
     * nvmlClocksThrottleReasonHwThermalSlowdown (0x40), passed through as
     * DCGM does. */
    assert_near(rec_value(&r, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", G0, NULL), 0x44, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", G1, NULL), 0, 0);
    collect_free(c);
    rec_clear(&r);
    fixture_done(&f);
}

static void gpu_delivers_xid_events_as_last_code_and_counts_per_code(void **state)
{
    struct fixture f;
    write_data(&f, two_gpus);
    struct collect *c = gpu_collector(fake_path());
    struct rec r = {0};
    round_into(c, &r, T_MS);
    assert_near(rec_value(&r, "DCGM_FI_DEV_XID_ERRORS", G0, NULL), 13, 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_XID_ERRORS", G1, NULL), 79, 0);
    assert_near(rec_value(&r, "DCGM_EXP_XID_ERRORS_COUNT", G1, "xid", "79", NULL), 2, 0);
    assert_near(rec_value(&r, "DCGM_EXP_XID_ERRORS_COUNT", G0, "xid", "13", NULL), 1, 0);
    assert_int_equal(rec_count(&r, "DCGM_EXP_XID_ERRORS_COUNT", NULL), 2);
    rec_clear(&r);
    /* The events were consumed: the next round keeps the last code and the
     * counts without counting them again. */
    round_into(c, &r, T_MS + 15000);
    assert_near(rec_value(&r, "DCGM_FI_DEV_XID_ERRORS", G1, NULL), 79, 0);
    assert_near(rec_value(&r, "DCGM_EXP_XID_ERRORS_COUNT", G1, "xid", "79", NULL), 2, 0);
    collect_free(c);
    rec_clear(&r);
    fixture_done(&f);
}

static void gpu_skips_a_failing_call_for_one_gpu_and_counts_the_error(void **state)
{
    struct fixture f;
    char text[8192];
    /* GPU 1: ECC off (NOT_SUPPORTED, code 3, already in two_gpus: quiet),
     * power fails with GPU_IS_LOST (15), temperature with UNKNOWN. */
    snprintf(text, sizeof(text), "%sgpu1.fail power 15\ngpu1.fail temp 999\n", two_gpus);
    write_data(&f, text);
    struct collect *c = gpu_collector(fake_path());
    struct rec r = {0};
    round_into(c, &r, T_MS);
    assert_int_equal(rec_count(&r, "DCGM_FI_DEV_POWER_USAGE", G1, NULL), 0);
    assert_int_equal(rec_count(&r, "DCGM_FI_DEV_GPU_TEMP", G1, NULL), 0);
    assert_int_equal(rec_count(&r, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", G1, NULL), 0);
    assert_near(rec_value(&r, "DCGM_FI_DEV_POWER_USAGE", G0, NULL), 512.377, 1e-9);
    assert_near(rec_value(&r, "DCGM_FI_DEV_SM_CLOCK", G1, NULL), 1755, 0);
    struct collect_stats st;
    collect_get_stats(c, &st);
    assert_true(st.gpu.is_up);
    assert_int_equal(st.gpu.errors_total, 2);
    assert_near(rec_value(&r, "holoscope_collector_errors_total", "collector", "gpu", NULL), 2, 0);
    rec_clear(&r);
    round_into(c, &r, T_MS + 15000);
    collect_get_stats(c, &st);
    assert_int_equal(st.gpu.errors_total, 4);
    collect_free(c);
    rec_clear(&r);
    fixture_done(&f);
}

static void gpu_processes_are_exported_for_the_pid_join(void **state)
{
    struct fixture f;
    write_data(&f, two_gpus);
    struct collect *c = gpu_collector(fake_path());
    assert_int_equal(collect_gpu_processes(c, NULL, 0), 0);
    struct rec r = {0};
    round_into(c, &r, T_MS);
    struct collect_gpu_process p[8];
    assert_int_equal(collect_gpu_processes(c, p, 8), 3);
    assert_int_equal(p[0].pid, 4242);
    assert_int_equal(p[0].gpu, 0);
    assert_string_equal(p[0].uuid, "GPU-7a1c0f52-3d9e-6b4a-8e21-c5f0d4a9b3e7");
    assert_int_equal(p[0].used_bytes, 73014444032ULL);
    assert_int_equal(p[1].pid, 4300);
    assert_int_equal(p[2].pid, 5151);
    assert_int_equal(p[2].gpu, 1);
    assert_int_equal(p[2].used_bytes, 2097152);
    /* A short array gets what fits, the total is still reported. */
    struct collect_gpu_process one;
    assert_int_equal(collect_gpu_processes(c, &one, 1), 3);
    assert_int_equal(one.pid, 4242);
    collect_free(c);
    rec_clear(&r);
    fixture_done(&f);
}

static void gpu_without_a_library_is_down_and_the_host_still_runs(void **state)
{
    struct collect_config cfg;
    collect_config_defaults(&cfg);
    cfg.proc_root = "testdata/proc";
    cfg.sys_root = "testdata/sys";
    cfg.rootfs = "testdata/mnt";
    cfg.nvml_path = "testdata/no-such-libnvidia-ml.so.1";
    cfg.hostname = "h";
    struct hs_err err;
    struct collect *c = collect_new(&cfg, NULL, &err);
    assert_non_null(c);
    struct rec r = {0};
    round_into(c, &r, T_MS);
    assert_near(rec_value(&r, "holoscope_collector_up", "collector", "gpu", NULL), 0, 0);
    assert_near(rec_value(&r, "holoscope_collector_up", "collector", "host", NULL), 1, 0);
    assert_near(rec_value(&r, "node_load1", NULL), 4.68, 0);
    assert_int_equal(rec_count(&r, "DCGM_FI_DEV_GPU_UTIL", NULL), 0);
    struct collect_stats st;
    collect_get_stats(c, &st);
    assert_false(st.gpu.is_up);
    assert_true(st.gpu.is_enabled);
    assert_int_equal(st.gpu.errors_total, 0);
    assert_int_equal(st.gpu_count, 0);
    assert_int_equal(collect_gpu_processes(c, NULL, 0), 0);
    collect_free(c);
    rec_clear(&r);
}

static void gpu_is_down_when_nvml_init_fails_or_finds_no_gpu(void **state)
{
    const char *cases[] = {"init_error 9\ncount 2\n", "count 0\n"};
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++) {
        struct fixture f;
        write_data(&f, cases[i]);
        struct collect *c = gpu_collector(fake_path());
        struct rec r = {0};
        round_into(c, &r, T_MS);
        assert_near(rec_value(&r, "holoscope_collector_up", "collector", "gpu", NULL), 0, 0);
        assert_int_equal(rec_count(&r, "DCGM_FI_DEV_GPU_UTIL", NULL), 0);
        collect_free(c);
        rec_clear(&r);
        fixture_done(&f);
    }
}

/* Names of the "# TYPE" lines of shared/fixtures/exposition/dcgm.prom, one
 * buffer with each name followed by '\n'. */
static char *dcgm_fixture(void)
{
    const char *shared = getenv("HS_SHARED_DIR");
    assert_non_null(shared);
    char path[4096];
    snprintf(path, sizeof(path), "%s/fixtures/exposition/dcgm.prom", shared);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static void gpu_names_and_labels_are_spelled_as_dcgm_exporter_writes_them(void **state)
{
    struct fixture f;
    write_data(&f, two_gpus);
    struct collect *c = gpu_collector(fake_path());
    struct rec r = {0};
    round_into(c, &r, T_MS);
    const char *text = dcgm_fixture();
    /* Every name written that dcgm-exporter's default set also has. */
    const char *names[] = {"DCGM_FI_DEV_SM_CLOCK",
                           "DCGM_FI_DEV_MEM_CLOCK",
                           "DCGM_FI_DEV_GPU_TEMP",
                           "DCGM_FI_DEV_POWER_USAGE",
                           "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
                           "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
                           "DCGM_FI_DEV_GPU_UTIL",
                           "DCGM_FI_DEV_MEM_COPY_UTIL",
                           "DCGM_FI_DEV_ENC_UTIL",
                           "DCGM_FI_DEV_DEC_UTIL",
                           "DCGM_FI_DEV_XID_ERRORS",
                           "DCGM_FI_DEV_FB_FREE",
                           "DCGM_FI_DEV_FB_USED",
                           "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
                           "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
                           "DCGM_FI_DEV_ROW_REMAP_FAILURE",
                           "DCGM_FI_PROF_PCIE_TX_BYTES",
                           "DCGM_FI_PROF_PCIE_RX_BYTES"};
    for (size_t i = 0; i < HS_ARRAY_LEN(names); i++) {
        char type_line[128];
        snprintf(type_line, sizeof(type_line), "# TYPE %s ", names[i]);
        if (strstr(text, type_line) == NULL) {
            print_error("%s is not in dcgm.prom\n", names[i]);
            fail();
        }
        assert_int_equal(rec_count(&r, names[i], G0, NULL), 1);
    }
    /* The fixture's identity labels (before the pod attribution) are ours. */
    const char *sample = strstr(text, "\nDCGM_FI_DEV_GPU_TEMP{");
    assert_non_null(sample);
    const struct hs_labels *ls = rec_labels(&r, "DCGM_FI_DEV_GPU_TEMP", G0, NULL);
    const char *p = sample + strlen("\nDCGM_FI_DEV_GPU_TEMP{");
    size_t checked = 0;
    while (*p != '}' && *p != '\0') {
        const char *eq = strchr(p, '=');
        assert_non_null(eq);
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - p), p);
        if (strcmp(key, "container") == 0)
            break; /* Kubernetes attribution: not known to NVML */
        if (hs_labels_get(ls, key) == NULL) {
            print_error("label %s of dcgm.prom is missing\n", key);
            fail();
        }
        checked++;
        p = strchr(eq + 2, '"') + 1; /* past the closing quote */
        if (*p == ',')
            p++;
    }
    assert_int_equal(checked, 7);
    collect_free(c);
    rec_clear(&r);
    fixture_done(&f);
}

static int count_add(void *ctx, const struct hs_labels *ls, int64_t t_ms, double v,
                     struct hs_err *err)
{
    (*(size_t *)ctx)++;
    return HS_OK;
}

static void gpu_collector_survives_failing_allocations(void **state)
{
    struct fixture f;
    write_data(&f, two_gpus);
    struct collect_config cfg;
    collect_config_defaults(&cfg);
    cfg.host_enabled = false;
    cfg.nvml_path = fake_path();
    cfg.hostname = "h";
    for (long n = 0;; n++) {
        struct hs_err err;
        hs_err_clear(&err);
        hs_alloc_fail_after(n);
        struct collect *c = collect_new(&cfg, NULL, &err);
        if (c == NULL) {
            hs_alloc_fail_after(-1);
            assert_int_equal(err.code, HS_ENOMEM);
            continue;
        }
        /* A round with allocations failing counts errors and does not crash. */
        size_t samples = 0;
        hs_alloc_fail_after(0);
        struct collect_sink sink = {count_add, &samples};
        int rc = collect_collect(c, T_MS, &sink, &err);
        hs_alloc_fail_after(-1);
        assert_int_equal(rc, HS_OK);
        assert_true(samples > 20);
        struct collect_stats st;
        collect_get_stats(c, &st);
        assert_true(st.gpu.errors_total >= 1); /* the process table */
        collect_free(c);
        break;
    }
    fixture_done(&f);
}

int main(void)
{
    hs_log_setup(HS_LOG_ERROR, HS_LOG_LOGFMT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpu_reports_every_metric_of_two_gpus_in_dcgm_units),
        cmocka_unit_test(gpu_labels_match_dcgm_exporter_plus_backend_nvml),
        cmocka_unit_test(gpu_names_and_labels_are_spelled_as_dcgm_exporter_writes_them),
        cmocka_unit_test(gpu_reports_the_throttle_reason_bitmask_as_nvml_gives_it),
        cmocka_unit_test(gpu_delivers_xid_events_as_last_code_and_counts_per_code),
        cmocka_unit_test(gpu_skips_a_failing_call_for_one_gpu_and_counts_the_error),
        cmocka_unit_test(gpu_processes_are_exported_for_the_pid_join),
        cmocka_unit_test(gpu_without_a_library_is_down_and_the_host_still_runs),
        cmocka_unit_test(gpu_is_down_when_nvml_init_fails_or_finds_no_gpu),
        cmocka_unit_test(gpu_collector_survives_failing_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
