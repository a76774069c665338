/*
 * test_host.c - the host collector against the fixture /proc tree in
 * testdata/proc (values checked exactly), against broken and partial trees,
 * and once against this machine's real /proc.
 */
#include "hs_test.h"
#include "hs_test_util.h"
#include "rec_sink.h"

#include "collect/collect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define T_MS 1795400000123LL

static double hz(void)
{
    long v = sysconf(_SC_CLK_TCK);
    return v > 0 ? (double)v : 100.0;
}

/* A collector over 'proc' (host only) run once into 'r'. */
static struct collect_stats run_host_sys(const char *proc, const char *sys, const char *rootfs,
                                         struct rec *r)
{
    struct collect_config cfg;
    collect_config_defaults(&cfg);
    cfg.gpu_enabled = false;
    cfg.proc_root = proc;
    cfg.sys_root = sys;
    cfg.rootfs = rootfs;
    cfg.hostname = "testhost";
    struct hs_err err;
    struct collect *c = collect_new(&cfg, NULL, &err);
    assert_non_null(c);
    struct collect_sink sink = rec_sink(r);
    assert_int_equal(collect_collect(c, T_MS, &sink, &err), HS_OK);
    struct collect_stats st;
    collect_get_stats(c, &st);
    collect_free(c);
    return st;
}

/* As run_host_sys with no /sys tree. */
static struct collect_stats run_host(const char *proc, const char *rootfs, struct rec *r)
{
    return run_host_sys(proc, "testdata/no-such-sys", rootfs, r);
}

static void fixture(struct rec *r)
{
    run_host_sys("testdata/proc", "testdata/sys", "testdata/mnt", r);
}

static void host_reports_cpu_seconds_per_cpu_and_mode_but_not_the_total_line(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_int_equal(rec_count(&r, "node_cpu_seconds_total", NULL), 4 * 8);
    assert_near(rec_value(&r, "node_cpu_seconds_total", "cpu", "0", "mode", "user", NULL),
                111054 / hz(), 1e-9);
    assert_near(rec_value(&r, "node_cpu_seconds_total", "cpu", "2", "mode", "nice", NULL),
                60 / hz(), 1e-9);
    assert_near(rec_value(&r, "node_cpu_seconds_total", "cpu", "3", "mode", "idle", NULL),
                131912 / hz(), 1e-9);
    assert_near(rec_value(&r, "node_cpu_seconds_total", "cpu", "1", "mode", "steal", NULL),
                962 / hz(), 1e-9);
    assert_near(rec_value(&r, "node_cpu_guest_seconds_total", "cpu", "2", "mode", "user", NULL),
                15 / hz(), 1e-9);
    const struct hs_labels *ls =
        rec_labels(&r, "node_cpu_seconds_total", "cpu", "0", "mode", "user", NULL);
    assert_string_equal(hs_labels_get(ls, "job"), "node");
    assert_string_equal(hs_labels_get(ls, "instance"), "testhost");
    assert_string_equal(hs_labels_get(ls, "backend"), "node");
    assert_int_equal(ls->n, 6);
    rec_clear(&r);
}

static void host_reports_boot_time_and_kernel_counters_from_stat(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_near(rec_value(&r, "node_boot_time_seconds", NULL), 1795325216.0, 0);
    assert_near(rec_value(&r, "node_context_switches_total", NULL), 6856245, 0);
    assert_near(rec_value(&r, "node_intr_total", NULL), 3244362, 0);
    assert_near(rec_value(&r, "node_forks_total", NULL), 81531, 0);
    assert_near(rec_value(&r, "node_procs_running", NULL), 6, 0);
    assert_near(rec_value(&r, "node_procs_blocked", NULL), 1, 0);
    rec_clear(&r);
}

static void host_reports_meminfo_in_bytes_with_node_exporter_names(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_near(rec_value(&r, "node_memory_MemTotal_bytes", NULL), 24684092.0 * 1024, 0);
    assert_near(rec_value(&r, "node_memory_MemAvailable_bytes", NULL), 23672804.0 * 1024, 0);
    assert_near(rec_value(&r, "node_memory_Active_anon_bytes", NULL), 1600.0 * 1024, 0);
    assert_near(rec_value(&r, "node_memory_VmallocTotal_bytes", NULL), 34359738367.0 * 1024, 0);
    /* Lines without a unit are counts, not bytes. */
    assert_near(rec_value(&r, "node_memory_HugePages_Total", NULL), 4, 0);
    assert_int_equal(rec_count(&r, "node_memory_HugePages_Total_bytes", NULL), 0);
    assert_near(rec_value(&r, "node_memory_Hugepagesize_bytes", NULL), 2048.0 * 1024, 0);
    rec_clear(&r);
}

static void host_reports_the_three_load_averages(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_near(rec_value(&r, "node_load1", NULL), 4.68, 0);
    assert_near(rec_value(&r, "node_load5", NULL), 5.12, 0);
    assert_near(rec_value(&r, "node_load15", NULL), 3.45, 0);
    rec_clear(&r);
}

static void host_reports_whole_disks_and_skips_partitions_loop_and_ram_devices(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_near(rec_value(&r, "node_disk_read_bytes_total", "device", "vda", NULL), 8778786.0 * 512,
                0);
    assert_near(rec_value(&r, "node_disk_written_bytes_total", "device", "vda", NULL),
                20513920.0 * 512, 0);
    assert_near(rec_value(&r, "node_disk_reads_completed_total", "device", "vda", NULL), 95423, 0);
    assert_near(rec_value(&r, "node_disk_io_time_seconds_total", "device", "vda", NULL), 104.348,
                1e-12);
    assert_near(rec_value(&r, "node_disk_io_time_weighted_seconds_total", "device", "vda", NULL),
                340.159, 1e-12);
    assert_near(rec_value(&r, "node_disk_io_now", "device", "nvme0n1", NULL), 2, 0);
    assert_near(rec_value(&r, "node_disk_read_time_seconds_total", "device", "sda", NULL), 0.007,
                1e-12);
    const char *skipped[] = {"loop0", "vda1", "zram0", "nvme0n1p1"};
    for (size_t i = 0; i < HS_ARRAY_LEN(skipped); i++)
        assert_int_equal(rec_count(&r, "node_disk_read_bytes_total", "device", skipped[i], NULL),
                         0);
    assert_int_equal(rec_count(&r, "node_disk_read_bytes_total", NULL), 3);
    rec_clear(&r);
}

static void host_reports_real_filesystems_once_and_skips_virtual_ones(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_int_equal(rec_count(&r, "node_filesystem_size_bytes", NULL), 2);
    struct statvfs st;
    assert_int_equal(statvfs("testdata/mnt/", &st), 0);
    assert_near(rec_value(&r, "node_filesystem_size_bytes", "mountpoint", "/", "device", "/dev/vda",
                          "fstype", "ext4", NULL),
                (double)st.f_blocks * (double)st.f_frsize, 0);
    assert_near(rec_value(&r, "node_filesystem_files", "mountpoint", "/", NULL), (double)st.f_files,
                0);
    assert_near(rec_value(&r, "node_filesystem_readonly", "mountpoint", "/", NULL), 0, 0);
    /* "\040" in /proc/mounts is a space. */
    assert_near(rec_value(&r, "node_filesystem_readonly", "mountpoint", "/data set", NULL), 1, 0);
    assert_near(rec_value(&r, "node_filesystem_device_error", "mountpoint", "/data set", NULL), 0,
                0);
    assert_int_equal(rec_count(&r, "node_filesystem_avail_bytes", "fstype", "tmpfs", NULL), 0);
    assert_int_equal(rec_count(&r, "node_filesystem_avail_bytes", "fstype", "overlay", NULL), 0);
    assert_int_equal(rec_count(&r, "node_filesystem_avail_bytes", "fstype", "cgroup2", NULL), 0);
    rec_clear(&r);
}

static void host_reports_network_counters_per_interface(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_near(rec_value(&r, "node_network_receive_bytes_total", "device", "eth0", NULL),
                304520198, 0);
    assert_near(rec_value(&r, "node_network_receive_errs_total", "device", "eth0", NULL), 1, 0);
    assert_near(rec_value(&r, "node_network_receive_multicast_total", "device", "eth0", NULL), 6,
                0);
    assert_near(rec_value(&r, "node_network_transmit_bytes_total", "device", "eth0", NULL), 358077,
                0);
    assert_near(rec_value(&r, "node_network_transmit_carrier_total", "device", "eth0", NULL), 11,
                0);
    assert_near(rec_value(&r, "node_network_transmit_compressed_total", "device", "eth0", NULL), 12,
                0);
    assert_near(rec_value(&r, "node_network_receive_bytes_total", "device", "lo", NULL), 2048210730,
                0);
    assert_int_equal(rec_count(&r, "node_network_receive_bytes_total", NULL), 2);
    rec_clear(&r);
}

static void host_reports_interface_state_from_sys_class_net(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_near(rec_value(&r, "node_network_up", "device", "eth0", NULL), 1, 0);
    assert_near(rec_value(&r, "node_network_up", "device", "lo", NULL), 0, 0);
    assert_near(rec_value(&r, "node_network_mtu_bytes", "device", "eth0", NULL), 1500, 0);
    assert_near(rec_value(&r, "node_network_mtu_bytes", "device", "lo", NULL), 65536, 0);
    assert_near(rec_value(&r, "node_network_carrier", "device", "eth0", NULL), 1, 0);
    /* 10000 Mbit/s in bytes per second; lo has no speed. */
    assert_near(rec_value(&r, "node_network_speed_bytes", "device", "eth0", NULL), 1.25e9, 0);
    assert_int_equal(rec_count(&r, "node_network_speed_bytes", "device", "lo", NULL), 0);
    assert_near(rec_value(&r, "node_network_info", "device", "eth0", "operstate", "up", "address",
                          "02:fc:00:00:00:01", NULL),
                1, 0);
    rec_clear(&r);
}

static void host_reports_thermal_zones_in_celsius(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_near(rec_value(&r, "node_thermal_zone_temp", "zone", "0", "type", "x86_pkg_temp", NULL),
                47, 0);
    assert_near(rec_value(&r, "node_thermal_zone_temp", "zone", "1", "type", "acpitz", NULL), 27.8,
                1e-12);
    assert_int_equal(rec_count(&r, "node_thermal_zone_temp", NULL), 2);
    rec_clear(&r);
}

static void host_reports_pressure_stall_totals_in_seconds(void **state)
{
    struct rec r = {0};
    fixture(&r);
    assert_near(rec_value(&r, "node_pressure_cpu_waiting_seconds_total", NULL), 979.638719, 1e-9);
    assert_near(rec_value(&r, "node_pressure_cpu_stalled_seconds_total", NULL), 0, 0);
    assert_near(rec_value(&r, "node_pressure_memory_waiting_seconds_total", NULL), 56.784409, 1e-9);
    assert_near(rec_value(&r, "node_pressure_memory_stalled_seconds_total", NULL), 35.207192, 1e-9);
    assert_near(rec_value(&r, "node_pressure_io_waiting_seconds_total", NULL), 1.5, 0);
    assert_near(rec_value(&r, "node_pressure_io_stalled_seconds_total", NULL), 0.5, 0);
    rec_clear(&r);
}

static void host_reports_its_own_process_under_job_holoscope(void **state)
{
    struct rec r = {0};
    fixture(&r);
    /* The fixture's command name holds ") S": fields are read after the last ')'. */
    assert_near(rec_value(&r, "process_cpu_seconds_total", NULL), 300 / hz(), 1e-9);
    assert_near(rec_value(&r, "process_threads", NULL), 7, 0);
    assert_near(rec_value(&r, "process_virtual_memory_bytes", NULL), 3133440, 0);
    assert_near(rec_value(&r, "process_resident_memory_bytes", NULL),
                413.0 * (double)sysconf(_SC_PAGESIZE), 0);
    assert_near(rec_value(&r, "process_start_time_seconds", NULL), 1795325216.0 + 282194 / hz(),
                1e-6);
    assert_near(rec_value(&r, "process_open_fds", NULL), 3, 0);
    const struct hs_labels *ls = rec_labels(&r, "process_threads", NULL);
    assert_string_equal(hs_labels_get(ls, "job"), "holoscope");
    assert_string_equal(hs_labels_get(ls, "instance"), "testhost");
    assert_null(hs_labels_get(ls, "backend"));
    rec_clear(&r);
}

static void host_reports_time_uname_and_its_own_up_and_error_count(void **state)
{
    struct rec r = {0};
    struct collect_stats st = run_host("testdata/proc", "testdata/mnt", &r);
    assert_near(rec_value(&r, "node_time_seconds", NULL), T_MS / 1000.0, 0);
    assert_near(rec_value(&r, "node_uname_info", NULL), 1, 0);
    assert_near(
        rec_value(&r, "holoscope_collector_up", "collector", "host", "job", "holoscope", NULL), 1,
        0);
    assert_near(rec_value(&r, "holoscope_collector_errors_total", "collector", "host", NULL), 0, 0);
    assert_int_equal(
        rec_count(&r, "holoscope_collector_duration_seconds", "collector", "host", NULL), 1);
    assert_int_equal(rec_count(&r, "holoscope_collector_up", "collector", "gpu", NULL), 0);
    assert_true(st.host.is_up);
    assert_int_equal(st.host.errors_total, 0);
    assert_int_equal(st.host.rounds_total, 1);
    assert_true(st.host.samples_last > 100);
    for (size_t i = 0; i < r.n; i++)
        assert_int_equal(r.v[i].t_ms, T_MS);
    rec_clear(&r);
}

static void host_writes_every_node_exporter_family_of_the_shared_fixture(void **state)
{
    const char *shared = getenv("HS_SHARED_DIR");
    assert_non_null(shared);
    char path[4096];
    snprintf(path, sizeof(path), "%s/fixtures/exposition/node.prom", shared);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct rec r = {0};
    fixture(&r);
    char line[4096];
    size_t checked = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "# TYPE ", 7) != 0)
            continue;
        char name[256];
        size_t n = strcspn(line + 7, " \n");
        snprintf(name, sizeof(name), "%.*s", (int)n, line + 7);
        /* Not host state: the exporter's own build, and hwmon (not read). */
        if (strcmp(name, "node_exporter_build_info") == 0 ||
            strcmp(name, "node_hwmon_temp_celsius") == 0)
            continue;
        if (rec_count(&r, name, NULL) == 0) {
            print_error("%s (in node.prom) is not written\n", name);
            fail();
        }
        checked++;
    }
    fclose(f);
    assert_true(checked >= 20);
    rec_clear(&r);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void host_without_optional_files_reports_what_exists_without_errors(void **state)
{
    char *dir = hs_test_tmpdir("collect-host");
    assert_non_null(dir);
    write_text(dir, "stat", "cpu0 1 2 3 4\nbtime 100\n");
    struct rec r = {0};
    struct collect_stats st = run_host(dir, "", &r);
    assert_true(st.host.is_up);
    assert_int_equal(st.host.errors_total, 0);
    assert_int_equal(rec_count(&r, "node_cpu_seconds_total", NULL), 4);
    assert_int_equal(rec_count(&r, "node_load1", NULL), 0);
    assert_int_equal(rec_count(&r, "node_pressure_cpu_waiting_seconds_total", NULL), 0);
    rec_clear(&r);
    hs_test_rmdir(dir);
    free(dir);
}

static void host_with_no_proc_tree_is_down_and_counts_an_error(void **state)
{
    struct rec r = {0};
    struct collect_stats st = run_host("testdata/no-such-proc", "", &r);
    assert_false(st.host.is_up);
    assert_true(st.host.errors_total >= 1);
    assert_near(rec_value(&r, "holoscope_collector_up", "collector", "host", NULL), 0, 0);
    rec_clear(&r);
}

static void host_skips_malformed_lines_and_reads_past_an_overlong_one(void **state)
{
    char *dir = hs_test_tmpdir("collect-host");
    assert_non_null(dir);
    /* An intr line far longer than the reader's line buffer, then more. */
    size_t big = 20000;
    char *stat = malloc(big + 256);
    assert_non_null(stat);
    size_t n = 0;
    n += (size_t)snprintf(stat + n, 64, "cpu0 10 x 30 40\ncpu1 1 2 3 4 5 6 7 8\nintr 777");
    while (n < big)
        stat[n++] = ' ', stat[n++] = '1';
    snprintf(stat + n, 200, "\nctxt 42\nbtime junk\nprocs_running 18446744073709551616\n");
    write_text(dir, "stat", stat);
    free(stat);
    write_text(dir, "meminfo",
               "MemTotal: lots kB\nBad(name: 5 kB\n: 7 kB\nMemFree:  10 kB x\n"
               "Cached: 3 kB\n");
    write_text(dir, "loadavg", "1.0 nope 3\n");
    write_text(dir, "diskstats", "8 0 sda 1 2 3\n\n   \n8 0\n");
    write_text(dir, "mounts", "onlyonefield\n\n");
    struct rec r = {0};
    struct collect_stats st = run_host(dir, "", &r);
    assert_true(st.host.is_up);
    /* cpu0's line is malformed after its first field: it is skipped. */
    assert_int_equal(rec_count(&r, "node_cpu_seconds_total", "cpu", "0", NULL), 0);
    assert_int_equal(rec_count(&r, "node_cpu_seconds_total", "cpu", "1", NULL), 8);
    assert_near(rec_value(&r, "node_intr_total", NULL), 777, 0);
    assert_near(rec_value(&r, "node_context_switches_total", NULL), 42, 0);
    assert_int_equal(rec_count(&r, "node_boot_time_seconds", NULL), 0);
    assert_int_equal(rec_count(&r, "node_procs_running", NULL), 0);
    assert_int_equal(rec_count(&r, "node_memory_MemTotal_bytes", NULL), 0);
    assert_int_equal(rec_count(&r, "node_memory_MemFree_bytes", NULL), 0);
    assert_near(rec_value(&r, "node_memory_Cached_bytes", NULL), 3072, 0);
    assert_int_equal(rec_count(&r, "node_load1", NULL), 0);
    assert_int_equal(rec_count(&r, "node_disk_read_bytes_total", NULL), 0);
    assert_int_equal(st.host.errors_total, 1); /* the broken loadavg */
    rec_clear(&r);
    hs_test_rmdir(dir);
    free(dir);
}

static void host_counts_samples_the_sink_refuses_and_goes_on(void **state)
{
    struct rec r = {0};
    r.fail_every = 10;
    struct collect_stats st = run_host("testdata/proc", "testdata/mnt", &r);
    assert_true(st.host.errors_total >= 10);
    assert_true(r.n > 100);
    assert_int_equal(r.n + st.host.errors_total, r.calls);
    rec_clear(&r);
}

static void host_reads_this_machines_real_proc(void **state)
{
    struct rec r = {0};
    struct collect_stats st = run_host_sys("/proc", "/sys", "", &r);
    assert_true(st.host.is_up);
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(hs_labels_get(r.v[i].ls, "__name__"), "node_cpu_seconds_total") == 0) {
            sum += r.v[i].v;
            n++;
        }
    }
    assert_true(n >= 8);
    assert_true(sum > 0);
    assert_true(rec_value(&r, "node_memory_MemTotal_bytes", NULL) > 0);
    assert_true(rec_value(&r, "node_boot_time_seconds", NULL) > 1e9);
    assert_true(rec_value(&r, "process_resident_memory_bytes", NULL) > 0);
    assert_true(rec_value(&r, "process_open_fds", NULL) >= 3);
    rec_clear(&r);
}

int main(void)
{
    hs_log_setup(HS_LOG_ERROR, HS_LOG_LOGFMT, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(host_reports_cpu_seconds_per_cpu_and_mode_but_not_the_total_line),
        cmocka_unit_test(host_reports_boot_time_and_kernel_counters_from_stat),
        cmocka_unit_test(host_reports_meminfo_in_bytes_with_node_exporter_names),
        cmocka_unit_test(host_reports_the_three_load_averages),
        cmocka_unit_test(host_reports_whole_disks_and_skips_partitions_loop_and_ram_devices),
        cmocka_unit_test(host_reports_real_filesystems_once_and_skips_virtual_ones),
        cmocka_unit_test(host_reports_network_counters_per_interface),
        cmocka_unit_test(host_reports_interface_state_from_sys_class_net),
        cmocka_unit_test(host_reports_thermal_zones_in_celsius),
        cmocka_unit_test(host_reports_pressure_stall_totals_in_seconds),
        cmocka_unit_test(host_reports_its_own_process_under_job_holoscope),
        cmocka_unit_test(host_reports_time_uname_and_its_own_up_and_error_count),
        cmocka_unit_test(host_writes_every_node_exporter_family_of_the_shared_fixture),
        cmocka_unit_test(host_without_optional_files_reports_what_exists_without_errors),
        cmocka_unit_test(host_with_no_proc_tree_is_down_and_counts_an_error),
        cmocka_unit_test(host_skips_malformed_lines_and_reads_past_an_overlong_one),
        cmocka_unit_test(host_counts_samples_the_sink_refuses_and_goes_on),
        cmocka_unit_test(host_reads_this_machines_real_proc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
