/*
 * host.c - the host collector: CPU, memory, load, disks, filesystems,
 * network, pressure stall information and holoscope's own process, read
 * from /proc (and statvfs) and written under node_exporter's names and
 * units, so that community node dashboards work unchanged.
 *
 * Sources (all under the configurable proc root):
 *   stat        node_cpu_seconds_total{cpu,mode}, node_cpu_guest_seconds_total,
 *               node_boot_time_seconds, node_context_switches_total,
 *               node_intr_total, node_forks_total, node_procs_running/blocked
 *   meminfo     node_memory_<Field>_bytes ("kB" lines x1024; "(x)" -> "_x";
 *               lines without a unit, e.g. HugePages_Total, without _bytes)
 *   loadavg     node_load1, node_load5, node_load15
 *   diskstats   node_disk_*{device}, partitions and loop/ram devices skipped
 *   mounts      node_filesystem_*{device,fstype,mountpoint} via statvfs of
 *               rootfs + mountpoint; virtual file systems skipped
 *   net/dev     node_network_{receive,transmit}_*_total{device}
 *   pressure/    node_pressure_{cpu,memory,io}_{waiting,stalled}_seconds_total
 *   self/...    process_* of holoscope itself
 * and under the configurable sys root:
 *   class/net/<dev>/{operstate,carrier,mtu,speed,address}  for each device of
 *               net/dev: node_network_up, node_network_carrier,
 *               node_network_mtu_bytes, node_network_speed_bytes,
 *               node_network_info{device,operstate,address}
 *   class/thermal/thermal_zone<N>/{type,temp}  node_thermal_zone_temp{zone,type}
 * Only stat is required: a missing optional file (no PSI on this kernel)
 * writes nothing and is not an error; an unreadable one counts one error.
 * Every parser works on one line at a time with cursor helpers, and a
 * malformed line is skipped, so odd /proc content never stops a round.
 */
#include "collect/internal.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MAX_MOUNTS        256 /* file systems reported per round */
#define MAX_THERMAL_ZONES 64  /* thermal zones reported per round */

struct collect__host {
    char *proc_root; /* owned */
    char *sys_root;  /* owned */
    char *rootfs;    /* owned; "" for none */
    double user_hz;  /* clock ticks per second of /proc/stat */
    long page_size;  /* bytes */
};

struct collect__host *collect__host_new(const struct collect_config *cfg, struct hs_err *err)
{
    struct collect__host *h = hs_calloc(1, sizeof(*h));
    if (h == NULL)
        goto nomem;
    h->proc_root = hs_strdup(cfg->proc_root != NULL ? cfg->proc_root : "/proc");
    h->sys_root = hs_strdup(cfg->sys_root != NULL ? cfg->sys_root : "/sys");
    h->rootfs = hs_strdup(cfg->rootfs != NULL ? cfg->rootfs : "");
    if (h->proc_root == NULL || h->sys_root == NULL || h->rootfs == NULL)
        goto nomem;
    long hz = sysconf(_SC_CLK_TCK);
    h->user_hz = hz > 0 ? (double)hz : 100.0;
    long ps = sysconf(_SC_PAGESIZE);
    h->page_size = ps > 0 ? ps : 4096;
    return h;
nomem:
    collect__host_free(h);
    hs_err_set(err, HS_ENOMEM, "out of memory creating the host collector");
    return NULL;
}

void collect__host_free(struct collect__host *h)
{
    if (h == NULL)
        return;
    hs_free(h->proc_root);
    hs_free(h->sys_root);
    hs_free(h->rootfs);
    hs_free(h);
}

/* Opens an optional file: false (and nothing counted) when it is absent,
 * false and one error when it cannot be read. */
static bool open_optional(struct collect__host *h, struct collect__emit *e,
                          struct collect__lines *lr, const char *rel)
{
    struct hs_err err;
    int rc = collect__lines_open(lr, h->proc_root, rel, &err);
    if (rc == HS_OK)
        return true;
    if (rc != HS_ENOTFOUND) {
        e->errors++;
        hs_log(HS_LOG_DEBUG, "collect: cannot read", HS_LSTR("file", err.msg));
    }
    return false;
}

/* ---- stat ---------------------------------------------------------------------- */

static const char *const cpu_modes[] = {"user",   "nice", "system",  "idle",
                                        "iowait", "irq",  "softirq", "steal"};

static void stat_cpu_line(struct collect__host *h, struct collect__emit *e, const char *line)
{
    const char *p = line + 3;
    if (*p < '0' || *p > '9')
        return; /* the "cpu " total line: node_exporter reports per CPU only */
    char cpu[16];
    if (!collect__word(&p, cpu, sizeof(cpu)))
        return;
    uint64_t v[10] = {0};
    size_t n = 0;
    while (n < HS_ARRAY_LEN(v) && collect__u64(&p, &v[n]))
        n++;
    if (n < 4)
        return;
    for (size_t i = 0; i < HS_ARRAY_LEN(cpu_modes) && i < n; i++) {
        const char *kv[4] = {"cpu", cpu, "mode", cpu_modes[i]};
        collect__put(e, "node_cpu_seconds_total", (double)v[i] / h->user_hz, 2, kv);
    }
    if (n >= 10) {
        const char *ku[4] = {"cpu", cpu, "mode", "user"};
        collect__put(e, "node_cpu_guest_seconds_total", (double)v[8] / h->user_hz, 2, ku);
        const char *kn[4] = {"cpu", cpu, "mode", "nice"};
        collect__put(e, "node_cpu_guest_seconds_total", (double)v[9] / h->user_hz, 2, kn);
    }
}

static bool collect_stat(struct collect__host *h, struct collect__emit *e)
{
    static const struct {
        const char *key;
        const char *metric;
    } singles[] = {
        {"btime", "node_boot_time_seconds"},
        {"ctxt", "node_context_switches_total"},
        {"intr", "node_intr_total"},
        {"processes", "node_forks_total"},
        {"procs_running", "node_procs_running"},
        {"procs_blocked", "node_procs_blocked"},
    };
    struct collect__lines lr;
    struct hs_err err;
    if (collect__lines_open(&lr, h->proc_root, "stat", &err) != HS_OK) {
        e->errors++;
        hs_log(HS_LOG_DEBUG, "collect: cannot read", HS_LSTR("file", err.msg));
        return false;
    }
    bool any = false;
    char *line;
    size_t len;
    while (collect__lines_next(&lr, &line, &len)) {
        if (hs_has_prefix(line, "cpu")) {
            stat_cpu_line(h, e, line);
            any = true;
            continue;
        }
        for (size_t i = 0; i < HS_ARRAY_LEN(singles); i++) {
            size_t kl = strlen(singles[i].key);
            if (strncmp(line, singles[i].key, kl) != 0 || line[kl] != ' ')
                continue;
            const char *p = line + kl;
            uint64_t v;
            if (collect__u64(&p, &v))
                collect__put0(e, singles[i].metric, (double)v);
            break;
        }
    }
    collect__lines_close(&lr);
    if (!any)
        e->errors++;
    return any;
}

/* ---- meminfo -------------------------------------------------------------------- */

/* "Active(anon)" -> "node_memory_Active_anon" (+ "_bytes" when in kB). */
static bool meminfo_name(const char *field, size_t n, bool is_kb, char *out, size_t cap)
{
    int w = snprintf(out, cap, "node_memory_");
    if (w < 0 || (size_t)w >= cap)
        return false;
    size_t o = (size_t)w;
    for (size_t i = 0; i < n; i++) {
        char c = field[i];
        if (c == ')')
            continue;
        if (c == '(')
            c = '_';
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok || o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    const char *suffix = is_kb ? "_bytes" : "";
    size_t sl = strlen(suffix);
    if (o + sl + 1 > cap)
        return false;
    memcpy(out + o, suffix, sl + 1);
    return true;
}

static void collect_meminfo(struct collect__host *h, struct collect__emit *e)
{
    struct collect__lines lr;
    if (!open_optional(h, e, &lr, "meminfo"))
        return;
    char *line;
    size_t len;
    while (collect__lines_next(&lr, &line, &len)) {
        char *colon = strchr(line, ':');
        if (colon == NULL || colon == line)
            continue;
        const char *p = colon + 1;
        uint64_t v;
        if (!collect__u64(&p, &v))
            continue;
        bool is_kb = collect__lit(&p, "kB");
        collect__skip_blanks(&p);
        if (*p != '\0')
            continue;
        char name[128];
        if (!meminfo_name(line, (size_t)(colon - line), is_kb, name, sizeof(name)))
            continue;
        collect__put0(e, name, is_kb ? (double)v * 1024.0 : (double)v);
    }
    collect__lines_close(&lr);
}

/* ---- loadavg ---------------------------------------------------------------------- */

static void collect_loadavg(struct collect__host *h, struct collect__emit *e)
{
    char buf[256];
    struct hs_err err;
    int rc = collect__read_small(h->proc_root, "loadavg", buf, sizeof(buf), NULL, &err);
    if (rc != HS_OK) {
        if (rc != HS_ENOTFOUND)
            e->errors++;
        return;
    }
    const char *p = buf;
    double l1, l5, l15;
    if (!collect__f64(&p, &l1) || !collect__f64(&p, &l5) || !collect__f64(&p, &l15)) {
        e->errors++;
        return;
    }
    collect__put0(e, "node_load1", l1);
    collect__put0(e, "node_load5", l5);
    collect__put0(e, "node_load15", l15);
}

/* ---- diskstats -------------------------------------------------------------------- */

/* Whether s is a non-empty run of digits. */
static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* node_exporter's default device exclusion:
 * ^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$ */
static bool disk_is_ignored(const char *d)
{
    static const char *const pre[] = {"ram", "zram", "loop", "fd"};
    for (size_t i = 0; i < HS_ARRAY_LEN(pre); i++)
        if (hs_has_prefix(d, pre[i]) && all_digits(d + strlen(pre[i])))
            return true;
    const char *p = d;
    if (hs_has_prefix(p, "xvd"))
        p += 3;
    else if ((p[0] == 'h' || p[0] == 's' || p[0] == 'v') && p[1] == 'd')
        p += 2;
    else
        p = NULL;
    if (p != NULL && *p >= 'a' && *p <= 'z') {
        while (*p >= 'a' && *p <= 'z')
            p++; /* sdaa1 is a partition of sdaa */
        if (all_digits(p))
            return true;
    }
    if (hs_has_prefix(d, "nvme")) {
        p = d + 4;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == d + 4 || *p != 'n')
            return false;
        const char *q = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == q || *p != 'p')
            return false;
        return all_digits(p + 1);
    }
    return false;
}

static void collect_diskstats(struct collect__host *h, struct collect__emit *e)
{
    /* Field i (after major, minor, name) -> metric and scale. */
    static const struct {
        const char *metric;
        double scale;
    } f[11] = {
        {"node_disk_reads_completed_total", 1},
        {"node_disk_reads_merged_total", 1},
        {"node_disk_read_bytes_total", 512},
        {"node_disk_read_time_seconds_total", 0.001},
        {"node_disk_writes_completed_total", 1},
        {"node_disk_writes_merged_total", 1},
        {"node_disk_written_bytes_total", 512},
        {"node_disk_write_time_seconds_total", 0.001},
        {"node_disk_io_now", 1},
        {"node_disk_io_time_seconds_total", 0.001},
        {"node_disk_io_time_weighted_seconds_total", 0.001},
    };
    struct collect__lines lr;
    if (!open_optional(h, e, &lr, "diskstats"))
        return;
    char *line;
    size_t len;
    while (collect__lines_next(&lr, &line, &len)) {
        const char *p = line;
        uint64_t major, minor;
        char dev[64];
        if (!collect__u64(&p, &major) || !collect__u64(&p, &minor) ||
            !collect__word(&p, dev, sizeof(dev)))
            continue;
        if (disk_is_ignored(dev))
            continue;
        uint64_t v[11];
        size_t n = 0;
        while (n < 11 && collect__u64(&p, &v[n]))
            n++;
        if (n < 11)
            continue;
        for (size_t i = 0; i < 11; i++)
            collect__put1(e, f[i].metric, (double)v[i] * f[i].scale, "device", dev);
    }
    collect__lines_close(&lr);
}

/* ---- filesystems ------------------------------------------------------------------ */

static bool fstype_is_virtual(const char *t)
{
    static const char *const v[] = {
        "autofs",     "binfmt_misc", "bpf",       "cgroup",     "cgroup2",        "configfs",
        "debugfs",    "devpts",      "devtmpfs",  "fusectl",    "hugetlbfs",      "iso9660",
        "mqueue",     "nsfs",        "overlay",   "proc",       "procfs",         "pstore",
        "rpc_pipefs", "securityfs",  "selinuxfs", "squashfs",   "erofs",          "sysfs",
        "tracefs",    "ramfs",       "efivarfs",  "fuse.lxcfs", "fuse.gvfsd-fuse"};
    for (size_t i = 0; i < HS_ARRAY_LEN(v); i++)
        if (strcmp(t, v[i]) == 0)
            return true;
    return false;
}

/* node_exporter's default mount-point exclusion:
 * ^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/) */
static bool mountpoint_is_ignored(const char *m)
{
    static const char *const whole[] = {"/dev", "/proc", "/sys"};
    for (size_t i = 0; i < HS_ARRAY_LEN(whole); i++) {
        size_t n = strlen(whole[i]);
        if (strncmp(m, whole[i], n) == 0 && (m[n] == '\0' || m[n] == '/'))
            return true;
    }
    static const char *const below[] = {"/run/credentials/", "/var/lib/docker/",
                                        "/var/lib/containers/storage/"};
    for (size_t i = 0; i < HS_ARRAY_LEN(below); i++)
        if (hs_has_prefix(m, below[i]) && m[strlen(below[i])] != '\0')
            return true;
    return false;
}

/* Undoes the octal escapes of /proc/mounts (\040 for a space) in place. */
static void unescape_octal(char *s)
{
    char *o = s;
    for (char *p = s; *p != '\0';) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
}

static void put_fs(struct collect__emit *e, const char *name, double v, const char *dev,
                   const char *type, const char *mnt)
{
    const char *kv[6] = {"device", dev, "fstype", type, "mountpoint", mnt};
    collect__put(e, name, v, 3, kv);
}

static void filesystem_one(struct collect__host *h, struct collect__emit *e, const char *dev,
                           const char *type, const char *mnt, const char *opts)
{
    char path[4096];
    int w = snprintf(path, sizeof(path), "%s%s", h->rootfs, mnt);
    if (w < 0 || (size_t)w >= sizeof(path))
        return;
    struct statvfs st;
    if (statvfs(path, &st) != 0) {
        put_fs(e, "node_filesystem_device_error", 1, dev, type, mnt);
        return;
    }
    double bs = (double)st.f_frsize;
    bool is_ro = hs_has_prefix(opts, "ro,") || strcmp(opts, "ro") == 0;
    put_fs(e, "node_filesystem_device_error", 0, dev, type, mnt);
    put_fs(e, "node_filesystem_size_bytes", (double)st.f_blocks * bs, dev, type, mnt);
    put_fs(e, "node_filesystem_free_bytes", (double)st.f_bfree * bs, dev, type, mnt);
    put_fs(e, "node_filesystem_avail_bytes", (double)st.f_bavail * bs, dev, type, mnt);
    put_fs(e, "node_filesystem_files", (double)st.f_files, dev, type, mnt);
    put_fs(e, "node_filesystem_files_free", (double)st.f_ffree, dev, type, mnt);
    put_fs(e, "node_filesystem_readonly", is_ro ? 1 : 0, dev, type, mnt);
}

static void collect_filesystems(struct collect__host *h, struct collect__emit *e)
{
    struct collect__lines lr;
    if (!open_optional(h, e, &lr, "mounts"))
        return;
    uint64_t seen[MAX_MOUNTS]; /* hashes of mount points reported this round */
    size_t n_seen = 0;
    char *line;
    size_t len;
    while (collect__lines_next(&lr, &line, &len) && n_seen < MAX_MOUNTS) {
        const char *p = line;
        char dev[512], mnt[1024], type[64], opts[512];
        if (!collect__word(&p, dev, sizeof(dev)) || !collect__word(&p, mnt, sizeof(mnt)) ||
            !collect__word(&p, type, sizeof(type)) || !collect__word(&p, opts, sizeof(opts)))
            continue;
        unescape_octal(dev);
        unescape_octal(mnt);
        if (fstype_is_virtual(type) || mountpoint_is_ignored(mnt))
            continue;
        /* A mount point mounted over keeps its last entry's view in statvfs;
         * report it once. */
        uint64_t hm = hs_hash64(mnt, strlen(mnt), 0);
        bool dup = false;
        for (size_t i = 0; i < n_seen && !dup; i++)
            dup = seen[i] == hm;
        if (dup)
            continue;
        seen[n_seen++] = hm;
        filesystem_one(h, e, dev, type, mnt, opts);
    }
    collect__lines_close(&lr);
}

/* ---- network ------------------------------------------------------------------------ */

/* Reads sys_root/rel into buf without the trailing newline; false when it
 * cannot be read (virtual interfaces refuse 'speed' with EINVAL). */
static bool read_sys(struct collect__host *h, const char *rel, char *buf, size_t cap)
{
    size_t n;
    struct hs_err err;
    if (collect__read_small(h->sys_root, rel, buf, cap, &n, &err) != HS_OK)
        return false;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return true;
}

static bool read_sys_i64(struct collect__host *h, const char *rel, int64_t *out)
{
    char buf[64];
    return read_sys(h, rel, buf, sizeof(buf)) && hs_parse_i64(buf, out) == HS_OK;
}

/* node_exporter's netclass series for one interface. */
static void netclass_one(struct collect__host *h, struct collect__emit *e, const char *dev)
{
    if (strchr(dev, '/') != NULL || strcmp(dev, ".") == 0 || strcmp(dev, "..") == 0)
        return;
    char rel[160], state[32], addr[64];
    snprintf(rel, sizeof(rel), "class/net/%s/operstate", dev);
    if (!read_sys(h, rel, state, sizeof(state)))
        return; /* no sysfs view of this interface */
    snprintf(rel, sizeof(rel), "class/net/%s/address", dev);
    if (!read_sys(h, rel, addr, sizeof(addr)))
        addr[0] = '\0';
    const char *kv[6] = {"device", dev, "operstate", state, "address", addr};
    collect__put(e, "node_network_info", 1, 3, kv);
    collect__put1(e, "node_network_up", strcmp(state, "up") == 0 ? 1 : 0, "device", dev);
    int64_t v;
    snprintf(rel, sizeof(rel), "class/net/%s/carrier", dev);
    if (read_sys_i64(h, rel, &v))
        collect__put1(e, "node_network_carrier", (double)v, "device", dev);
    snprintf(rel, sizeof(rel), "class/net/%s/mtu", dev);
    if (read_sys_i64(h, rel, &v))
        collect__put1(e, "node_network_mtu_bytes", (double)v, "device", dev);
    snprintf(rel, sizeof(rel), "class/net/%s/speed", dev);
    if (read_sys_i64(h, rel, &v) && v >= 0) /* Mbit/s; -1 when unknown */
        collect__put1(e, "node_network_speed_bytes", (double)v * 125000.0, "device", dev);
}

static void collect_netdev(struct collect__host *h, struct collect__emit *e)
{
    static const char *const names[16] = {
        "node_network_receive_bytes_total",      "node_network_receive_packets_total",
        "node_network_receive_errs_total",       "node_network_receive_drop_total",
        "node_network_receive_fifo_total",       "node_network_receive_frame_total",
        "node_network_receive_compressed_total", "node_network_receive_multicast_total",
        "node_network_transmit_bytes_total",     "node_network_transmit_packets_total",
        "node_network_transmit_errs_total",      "node_network_transmit_drop_total",
        "node_network_transmit_fifo_total",      "node_network_transmit_colls_total",
        "node_network_transmit_carrier_total",   "node_network_transmit_compressed_total"};
    struct collect__lines lr;
    if (!open_optional(h, e, &lr, "net/dev"))
        return;
    char *line;
    size_t len;
    while (collect__lines_next(&lr, &line, &len)) {
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue; /* the two header lines have '|' but no ':' */
        *colon = '\0';
        const char *p = line;
        char dev[64];
        if (!collect__word(&p, dev, sizeof(dev)))
            continue;
        collect__skip_blanks(&p);
        if (*p != '\0')
            continue;
        p = colon + 1;
        uint64_t v[16];
        size_t n = 0;
        while (n < 16 && collect__u64(&p, &v[n]))
            n++;
        if (n < 16)
            continue;
        for (size_t i = 0; i < 16; i++)
            collect__put1(e, names[i], (double)v[i], "device", dev);
        netclass_one(h, e, dev);
    }
    collect__lines_close(&lr);
}

/* ---- thermal zones ---------------------------------------------------------------------- */

static void collect_thermal(struct collect__host *h, struct collect__emit *e)
{
    char path[4096];
    if (collect__path(path, sizeof(path), h->sys_root, "class/thermal") != HS_OK)
        return;
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL && n < MAX_THERMAL_ZONES) {
        const char *zone = de->d_name + strlen("thermal_zone");
        if (!hs_has_prefix(de->d_name, "thermal_zone") || !all_digits(zone) ||
            strlen(de->d_name) > 64)
            continue;
        char rel[320], type[64];
        int64_t milli;
        snprintf(rel, sizeof(rel), "class/thermal/%s/type", de->d_name);
        if (!read_sys(h, rel, type, sizeof(type)))
            continue;
        snprintf(rel, sizeof(rel), "class/thermal/%s/temp", de->d_name);
        if (!read_sys_i64(h, rel, &milli))
            continue;
        const char *kv[4] = {"zone", zone, "type", type};
        collect__put(e, "node_thermal_zone_temp", (double)milli / 1000.0, 2, kv);
        n++;
    }
    closedir(d);
}

/* ---- pressure ------------------------------------------------------------------------- */

static void collect_pressure_one(struct collect__host *h, struct collect__emit *e,
                                 const char *resource)
{
    char rel[64], waiting[96], stalled[96];
    snprintf(rel, sizeof(rel), "pressure/%s", resource);
    snprintf(waiting, sizeof(waiting), "node_pressure_%s_waiting_seconds_total", resource);
    snprintf(stalled, sizeof(stalled), "node_pressure_%s_stalled_seconds_total", resource);
    struct collect__lines lr;
    if (!open_optional(h, e, &lr, rel))
        return;
    char *line;
    size_t len;
    while (collect__lines_next(&lr, &line, &len)) {
        const char *p = line;
        char kind[8];
        if (!collect__word(&p, kind, sizeof(kind)))
            continue;
        const char *tot = strstr(p, "total=");
        if (tot == NULL)
            continue;
        p = tot + 6;
        uint64_t us;
        if (!collect__u64(&p, &us))
            continue;
        /* The kernel prints a "full" cpu line of zeros since 5.13; node_exporter
         * reports it as stalled like the others. */
        if (strcmp(kind, "some") == 0)
            collect__put0(e, waiting, (double)us / 1e6);
        else if (strcmp(kind, "full") == 0)
            collect__put0(e, stalled, (double)us / 1e6);
    }
    collect__lines_close(&lr);
}

/* ---- own process ----------------------------------------------------------------------- */

/* Labels of holoscope's own process: job="holoscope" replaces the host's job. */
static void put_self(struct collect__emit *e, const char *name, double v)
{
    struct hs_label common[COLLECT__MAX_LABELS];
    size_t n = 0;
    for (size_t i = 0; i < e->n_common && n < COLLECT__MAX_LABELS; i++) {
        if (strcmp(e->common[i].name, "backend") == 0)
            continue;
        common[n] = e->common[i];
        if (strcmp(common[n].name, "job") == 0)
            common[n].value = "holoscope";
        n++;
    }
    struct collect__emit self = *e;
    self.common = common;
    self.n_common = n;
    collect__put0(&self, name, v);
    e->samples += self.samples - e->samples;
    e->errors += self.errors - e->errors;
}

static void collect_self(struct collect__host *h, struct collect__emit *e, double boot_s)
{
    char buf[1024];
    struct hs_err err;
    if (collect__read_small(h->proc_root, "self/stat", buf, sizeof(buf), NULL, &err) != HS_OK)
        return;
    /* The command name may hold blanks and parentheses: fields start after
     * the last ')'. Field 3 (state) is the first after it. */
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return;
    p++;
    uint64_t f[22] = {0}; /* f[i] is field i+3 of proc(5) up to rss; state reads as 0 */
    char state[8];
    if (!collect__word(&p, state, sizeof(state)))
        return;
    for (size_t i = 1; i < HS_ARRAY_LEN(f); i++) {
        int64_t sv;
        char tok[32];
        if (!collect__word(&p, tok, sizeof(tok)))
            return;
        if (hs_parse_i64(tok, &sv) != HS_OK)
            return;
        f[i] = sv < 0 ? 0 : (uint64_t)sv;
    }
    double utime = (double)f[14 - 3], stime = (double)f[15 - 3];
    put_self(e, "process_cpu_seconds_total", (utime + stime) / h->user_hz);
    put_self(e, "process_threads", (double)f[20 - 3]);
    if (boot_s > 0)
        put_self(e, "process_start_time_seconds", boot_s + (double)f[22 - 3] / h->user_hz);
    put_self(e, "process_virtual_memory_bytes", (double)f[23 - 3]);
    put_self(e, "process_resident_memory_bytes", (double)f[24 - 3] * (double)h->page_size);

    char path[4096];
    if (collect__path(path, sizeof(path), h->proc_root, "self/fd") == HS_OK) {
        DIR *d = opendir(path);
        if (d != NULL) {
            char own[16]; /* the descriptor opendir itself holds is not counted */
            snprintf(own, sizeof(own), "%d", dirfd(d));
            double n = 0;
            struct dirent *de;
            while ((de = readdir(d)) != NULL)
                if (de->d_name[0] != '.' && strcmp(de->d_name, own) != 0)
                    n++;
            closedir(d);
            put_self(e, "process_open_fds", n);
        }
    }
}

/* btime from stat, for the process start time. */
static double boot_time(struct collect__host *h)
{
    struct collect__lines lr;
    struct hs_err err;
    if (collect__lines_open(&lr, h->proc_root, "stat", &err) != HS_OK)
        return 0;
    double bt = 0;
    char *line;
    size_t len;
    while (collect__lines_next(&lr, &line, &len)) {
        if (hs_has_prefix(line, "btime ")) {
            const char *p = line + 5;
            uint64_t v;
            if (collect__u64(&p, &v))
                bt = (double)v;
            break;
        }
    }
    collect__lines_close(&lr);
    return bt;
}

static void collect_uname(struct collect__emit *e)
{
    struct utsname u;
    if (uname(&u) != 0)
        return;
    const char *kv[12] = {"sysname",   u.sysname, "release",  u.release,  "version",    u.version,
                          "machine",   u.machine, "nodename", u.nodename, "domainname",
#ifdef _GNU_SOURCE
                          u.domainname
#else
                          "(none)"
#endif
    };
    collect__put(e, "node_uname_info", 1, 6, kv);
}

bool collect__host_collect(struct collect__host *h, struct collect__emit *e)
{
    bool ok = collect_stat(h, e);
    collect_meminfo(h, e);
    collect_loadavg(h, e);
    collect_diskstats(h, e);
    collect_filesystems(h, e);
    collect_netdev(h, e);
    collect_thermal(h, e);
    collect_pressure_one(h, e, "cpu");
    collect_pressure_one(h, e, "memory");
    collect_pressure_one(h, e, "io");
    collect_uname(e);
    collect__put0(e, "node_time_seconds", (double)e->t_ms / 1000.0);
    collect_self(h, e, boot_time(h));
    return ok;
}
