/*
 * test_sim_gpu.c - the simulated GPU: utilisation, power and temperature
 * follow the load with their lags, memory follows what the replica holds,
 * the throttle and idle faults show in clocks and clocks-event reasons, and
 * the DCGM exposition has dcgm-exporter's layout.
 */
#include "hs_test.h"

#include "sim/internal.h"

#include <string.h>

static void run(struct sim_gpu *g, double seconds, const struct sim_gpu_load *l)
{
    for (int i = 0; i < (int)(seconds * 10); i++)
        sim__gpu_update(g, 0.1, l);
}

static void gpu_follows_the_load_with_lag(void **state)
{
    struct sim_gpu g;
    sim__gpu_init(&g, 0, 1, "NVIDIA H100 80GB HBM3", 80);
    struct sim_gpu_load idle = {
        .busy = 0, .fb_used_mib = 16000, .power_idle_w = 70, .power_max_w = 700};
    run(&g, 60, &idle);
    assert_true(g.util < 0.01);
    assert_true(g.power_w > 69 && g.power_w < 71);
    assert_true(g.reasons & SIM_CLOCKS_EVENT_GPU_IDLE);
    double cool = g.temp_c;
    struct sim_gpu_load busy = idle;
    busy.busy = 0.9;
    busy.fb_used_mib = 50000;
    sim__gpu_update(&g, 0.1, &busy);
    assert_true(g.util > 0 && g.util < 0.9); /* lagged */
    run(&g, 120, &busy);
    assert_true(g.util > 0.89);
    assert_true(g.power_w > 600);
    assert_true(g.temp_c > cool + 20);
    assert_true(g.fb_used_mib == 50000);
    assert_int_equal(g.reasons, 0);
    assert_true(g.sm_clock_mhz > 1900);
    double e0 = g.energy_mj;
    sim__gpu_update(&g, 1.0, &busy);
    assert_true(g.energy_mj - e0 > 600000); /* > 600 W for 1 s, in mJ */
}

static void throttle_and_idle_faults_show_in_clocks_and_reasons(void **state)
{
    struct sim_gpu g;
    sim__gpu_init(&g, 3, 9, "NVIDIA H100 80GB HBM3", 80);
    struct sim_gpu_load l = {
        .busy = 0.8, .fb_used_mib = 30000, .power_idle_w = 70, .power_max_w = 700};
    run(&g, 120, &l);
    double normal = g.temp_c;
    l.is_throttled = true;
    run(&g, 120, &l);
    assert_true(g.temp_c > normal + 10);
    assert_int_equal(g.sm_clock_mhz, 1410);
    assert_true(g.reasons & SIM_CLOCKS_EVENT_SW_THERMAL);
    assert_true(g.reasons & SIM_CLOCKS_EVENT_HW_THERMAL);
    l.is_throttled = false;
    l.is_idle_fault = true;
    run(&g, 30, &l);
    assert_true(g.util < 0.01);
    assert_true(g.fb_used_mib == 30000); /* weights still held */
    assert_true(g.reasons & SIM_CLOCKS_EVENT_GPU_IDLE);
}

static void dcgm_exposition_has_the_exporter_layout(void **state)
{
    struct sim_gpu a, b;
    sim__gpu_init(&a, 0, 1, "NVIDIA H100 80GB HBM3", 80);
    sim__gpu_init(&b, 1, 2, "NVIDIA H100 80GB HBM3", 80);
    assert_string_not_equal(a.uuid, b.uuid);
    assert_true(hs_has_prefix(a.uuid, "GPU-"));
    const struct sim_gpu *gs[] = {&a, &b};
    struct hs_buf out;
    hs_buf_init(&out, 0);
    assert_int_equal(sim__gpu_metrics(gs, 2, "node-a", &out), HS_OK);
    assert_non_null(strstr(out.p, "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n"
                                  "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
                                  "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\""));
    assert_non_null(strstr(out.p, "\",pci_bus_id=\"00000000:2A:00.0\",device=\"nvidia1\","
                                  "modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-a\","));
    assert_non_null(strstr(out.p, "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
    assert_non_null(strstr(out.p, "# TYPE DCGM_FI_DEV_CLOCK_THROTTLE_REASONS gauge\n"));
    assert_non_null(strstr(out.p, "# TYPE DCGM_FI_DEV_CLOCKS_EVENT_REASONS gauge\n"));
    assert_non_null(strstr(out.p, "DCGM_FI_DEV_POWER_USAGE{gpu=\"1\""));
    hs_buf_cleanup(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpu_follows_the_load_with_lag),
        cmocka_unit_test(throttle_and_idle_faults_show_in_clocks_and_reasons),
        cmocka_unit_test(dcgm_exposition_has_the_exporter_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
