/*
 * gpu.c - the GPU collector: NVML, loaded at run time with dlopen, read
 * once per round and written under dcgm-exporter's names, units and labels
 * (shared/spec/metrics-mapping.md section 2.7), so DCGM dashboards work.
 *
 *   DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_MEM_COPY_UTIL      %   nvmlDeviceGetUtilizationRates
 *   DCGM_FI_DEV_FB_USED / FB_FREE / FB_TOTAL            MiB nvmlDeviceGetMemoryInfo (bytes)
 *   DCGM_FI_DEV_POWER_USAGE                             W   nvmlDeviceGetPowerUsage (mW)
 *   DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION                mJ  nvmlDeviceGetTotalEnergyConsumption
 *   DCGM_FI_DEV_GPU_TEMP                                C   nvmlDeviceGetTemperature
 *   DCGM_FI_DEV_SM_CLOCK, DCGM_FI_DEV_MEM_CLOCK         MHz nvmlDeviceGetClockInfo
 *   DCGM_FI_DEV_CLOCK_THROTTLE_REASONS                  bitmask of nvmlClocksThrottleReason*
 *   DCGM_FI_DEV_ECC_{SBE,DBE}_{VOL,AGG}_TOTAL           count nvmlDeviceGetTotalEccErrors
 *   DCGM_FI_PROF_PCIE_{TX,RX}_BYTES                     B/s nvmlDeviceGetPcieThroughput (KB/s)
 *   DCGM_FI_DEV_ENC_UTIL, DCGM_FI_DEV_DEC_UTIL          %   nvmlDevice{En,De}coderUtilization
 *   DCGM_FI_DEV_PCIE_REPLAY_COUNTER                     count nvmlDeviceGetPcieReplayCounter
 *   DCGM_FI_DEV_{CORRECTABLE,UNCORRECTABLE}_REMAPPED_ROWS, DCGM_FI_DEV_ROW_REMAP_FAILURE
 *                                                       nvmlDeviceGetRemappedRows
 *   DCGM_FI_DEV_XID_ERRORS                              last XID seen (0: none), from events
 *   DCGM_EXP_XID_ERRORS_COUNT{xid}                      XID events counted since start
 *   holoscope_gpu_process_memory_used_bytes{pid}        bytes nvmlDeviceGetComputeRunningProcesses
 *
 * A call that answers NVML_ERROR_NOT_SUPPORTED (ECC off, no energy counter
 * on an old board) skips its metric quietly; any other error skips it for
 * that GPU, counts one error and logs once per GPU and metric.  XID events
 * are drained without blocking at the start of each round.
 *
 * Invariant: 'is_up' is true exactly when the library is loaded, nvmlInit
 * succeeded and at least one device was found; then nvmlShutdown and
 * dlclose run in collect__gpu_free.
 */
#include "collect/internal.h"
#include "collect/nvml.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_XID_KINDS        32 /* distinct XID codes counted per GPU */
#define MAX_EVENTS_PER_ROUND 256

enum metric_bit {
    M_UTIL = 1u << 0,
    M_MEM = 1u << 1,
    M_POWER = 1u << 2,
    M_ENERGY = 1u << 3,
    M_TEMP = 1u << 4,
    M_SM_CLOCK = 1u << 5,
    M_MEM_CLOCK = 1u << 6,
    M_THROTTLE = 1u << 7,
    M_ECC = 1u << 8,
    M_PCIE = 1u << 9,
    M_PROCS = 1u << 10,
    M_CODEC = 1u << 11,
    M_REPLAY = 1u << 12,
    M_REMAP = 1u << 13,
};

struct nvml_fns {
    nvmlReturn_t (*init)(void);
    nvmlReturn_t (*shutdown)(void);
    const char *(*error_string)(nvmlReturn_t);
    nvmlReturn_t (*get_count)(unsigned int *);
    nvmlReturn_t (*get_handle)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*driver_version)(char *, unsigned int);
    nvmlReturn_t (*get_name)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*get_uuid)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*get_pci)(nvmlDevice_t, nvmlPciInfo_t *);
    nvmlReturn_t (*util)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*power)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*energy)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*temp)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*clock)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*throttle)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*ecc)(nvmlDevice_t, int, int, unsigned long long *);
    nvmlReturn_t (*pcie)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*enc_util)(nvmlDevice_t, unsigned int *, unsigned int *);
    nvmlReturn_t (*dec_util)(nvmlDevice_t, unsigned int *, unsigned int *);
    nvmlReturn_t (*replay)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*remapped)(nvmlDevice_t, unsigned int *, unsigned int *, unsigned int *,
                             unsigned int *);
    nvmlReturn_t (*procs_v3)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *);
    nvmlReturn_t (*procs_v1)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_v1_t *);
    nvmlReturn_t (*evset_create)(nvmlEventSet_t *);
    nvmlReturn_t (*evset_free)(nvmlEventSet_t);
    nvmlReturn_t (*register_events)(nvmlDevice_t, unsigned long long, nvmlEventSet_t);
    nvmlReturn_t (*evset_wait)(nvmlEventSet_t, nvmlEventData_t *, unsigned int);
};

struct xid_count {
    unsigned long long xid;
    uint64_t count;
};

struct gpu_dev {
    nvmlDevice_t h;
    char index[12];  /* "0" */
    char device[24]; /* "nvidia0" */
    char name[NVML_DEVICE_NAME_BUFFER_SIZE];
    char uuid[NVML_DEVICE_UUID_BUFFER_SIZE];
    char pci[32];
    unsigned long long last_xid; /* 0: none seen */
    struct xid_count xids[MAX_XID_KINDS];
    size_t n_xids;
    unsigned warned; /* metric_bit set once its failure was logged */
};

struct collect__gpu {
    void *lib; /* dlopen handle or NULL */
    struct nvml_fns f;
    bool is_up;
    bool is_initialised;  /* nvmlInit succeeded: shutdown owed */
    unsigned n;           /* devices */
    struct gpu_dev *devs; /* n of them, owned */
    nvmlEventSet_t evset; /* NULL when events are unavailable */
    char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
    char *hostname; /* owned; Hostname label */

    pthread_mutex_t proc_mu;           /* guards procs / n_procs */
    struct collect_gpu_process *procs; /* owned; cap COLLECT_MAX_GPUS * COLLECT_MAX_GPU_PROCESSES */
    size_t n_procs;
};

static const char *errstr(struct collect__gpu *g, nvmlReturn_t r)
{
    const char *s = g->f.error_string != NULL ? g->f.error_string(r) : NULL;
    return s != NULL ? s : "unknown NVML error";
}

/* True when r is NVML_SUCCESS.  NOT_SUPPORTED is quiet; other errors are
 * counted and logged once per device and metric. */
static bool check(struct collect__gpu *g, struct gpu_dev *d, struct collect__emit *e,
                  nvmlReturn_t r, unsigned bit, const char *what)
{
    if (r == NVML_SUCCESS)
        return true;
    if (r == NVML_ERROR_NOT_SUPPORTED)
        return false;
    e->errors++;
    if (!(d->warned & bit)) {
        d->warned |= bit;
        hs_log(HS_LOG_WARN, "collect: NVML call failed; metric skipped for this GPU",
               HS_LSTR("call", what), HS_LSTR("gpu", d->index), HS_LSTR("error", errstr(g, r)),
               HS_LINT("code", r));
    }
    return false;
}

static void *sym(void *lib, const char *name)
{
    return dlsym(lib, name);
}

#define LOAD(field, name) memcpy(&g->f.field, &(void *){sym(g->lib, name)}, sizeof(void *))

static void load_symbols(struct collect__gpu *g)
{
    LOAD(init, "nvmlInit_v2");
    LOAD(shutdown, "nvmlShutdown");
    LOAD(error_string, "nvmlErrorString");
    LOAD(get_count, "nvmlDeviceGetCount_v2");
    LOAD(get_handle, "nvmlDeviceGetHandleByIndex_v2");
    LOAD(driver_version, "nvmlSystemGetDriverVersion");
    LOAD(get_name, "nvmlDeviceGetName");
    LOAD(get_uuid, "nvmlDeviceGetUUID");
    LOAD(get_pci, "nvmlDeviceGetPciInfo_v3");
    LOAD(util, "nvmlDeviceGetUtilizationRates");
    LOAD(memory, "nvmlDeviceGetMemoryInfo");
    LOAD(power, "nvmlDeviceGetPowerUsage");
    LOAD(energy, "nvmlDeviceGetTotalEnergyConsumption");
    LOAD(temp, "nvmlDeviceGetTemperature");
    LOAD(clock, "nvmlDeviceGetClockInfo");
    LOAD(throttle, "nvmlDeviceGetCurrentClocksThrottleReasons");
    LOAD(ecc, "nvmlDeviceGetTotalEccErrors");
    LOAD(pcie, "nvmlDeviceGetPcieThroughput");
    LOAD(enc_util, "nvmlDeviceGetEncoderUtilization");
    LOAD(dec_util, "nvmlDeviceGetDecoderUtilization");
    LOAD(replay, "nvmlDeviceGetPcieReplayCounter");
    LOAD(remapped, "nvmlDeviceGetRemappedRows");
    LOAD(procs_v3, "nvmlDeviceGetComputeRunningProcesses_v3");
    LOAD(procs_v1, "nvmlDeviceGetComputeRunningProcesses");
    LOAD(evset_create, "nvmlEventSetCreate");
    LOAD(evset_free, "nvmlEventSetFree");
    LOAD(register_events, "nvmlDeviceRegisterEvents");
    LOAD(evset_wait, "nvmlEventSetWait_v2");
    if (g->f.evset_wait == NULL)
        LOAD(evset_wait, "nvmlEventSetWait");
}

/* Loads the library and finds the devices; false (with one log line) when
 * there is no usable GPU. */
static bool start_nvml(struct collect__gpu *g, const char *path)
{
    g->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (g->lib == NULL) {
        const char *why = dlerror();
        hs_log(HS_LOG_INFO, "collect: NVML library not loaded; GPU collector off",
               HS_LSTR("library", path), HS_LSTR("error", why != NULL ? why : "?"));
        return false;
    }
    load_symbols(g);
    if (g->f.init == NULL || g->f.shutdown == NULL || g->f.get_count == NULL ||
        g->f.get_handle == NULL) {
        hs_log(HS_LOG_WARN,
               "collect: NVML library lacks nvmlInit_v2 or device queries; "
               "GPU collector off",
               HS_LSTR("library", path));
        return false;
    }
    nvmlReturn_t r = g->f.init();
    if (r != NVML_SUCCESS) {
        hs_log(HS_LOG_INFO, "collect: nvmlInit failed; GPU collector off",
               HS_LSTR("error", errstr(g, r)), HS_LINT("code", r));
        return false;
    }
    g->is_initialised = true;
    unsigned count = 0;
    r = g->f.get_count(&count);
    if (r != NVML_SUCCESS || count == 0) {
        hs_log(HS_LOG_INFO, "collect: no GPU found; GPU collector off",
               HS_LSTR("error", r == NVML_SUCCESS ? "0 devices" : errstr(g, r)));
        return false;
    }
    if (count > COLLECT_MAX_GPUS) {
        hs_log(HS_LOG_WARN, "collect: more GPUs than supported; the rest are ignored",
               HS_LINT("count", count), HS_LINT("max", COLLECT_MAX_GPUS));
        count = COLLECT_MAX_GPUS;
    }
    return true;
}

/* Reads each device's identity and registers it for XID events. */
static bool open_devices(struct collect__gpu *g, unsigned count)
{
    g->devs = hs_calloc(count, sizeof(*g->devs));
    if (g->devs == NULL)
        return false;
    if (g->f.driver_version != NULL &&
        g->f.driver_version(g->driver, sizeof(g->driver)) != NVML_SUCCESS)
        g->driver[0] = '\0';
    g->driver[sizeof(g->driver) - 1] = '\0';
    if (g->f.evset_create != NULL && g->f.register_events != NULL && g->f.evset_wait != NULL &&
        g->f.evset_create(&g->evset) != NVML_SUCCESS)
        g->evset = NULL;
    for (unsigned i = 0; i < count; i++) {
        struct gpu_dev *d = &g->devs[g->n];
        nvmlReturn_t r = g->f.get_handle(i, &d->h);
        if (r != NVML_SUCCESS) {
            hs_log(HS_LOG_WARN, "collect: GPU skipped: no handle", HS_LINT("index", i),
                   HS_LSTR("error", errstr(g, r)));
            continue;
        }
        snprintf(d->index, sizeof(d->index), "%u", i);
        snprintf(d->device, sizeof(d->device), "nvidia%u", i);
        if (g->f.get_name == NULL || g->f.get_name(d->h, d->name, sizeof(d->name)) != NVML_SUCCESS)
            d->name[0] = '\0';
        if (g->f.get_uuid == NULL || g->f.get_uuid(d->h, d->uuid, sizeof(d->uuid)) != NVML_SUCCESS)
            d->uuid[0] = '\0';
        d->name[sizeof(d->name) - 1] = '\0';
        d->uuid[sizeof(d->uuid) - 1] = '\0';
        nvmlPciInfo_t pci;
        memset(&pci, 0, sizeof(pci));
        if (g->f.get_pci != NULL && g->f.get_pci(d->h, &pci) == NVML_SUCCESS) {
            pci.busId[sizeof(pci.busId) - 1] = '\0';
            snprintf(d->pci, sizeof(d->pci), "%s", pci.busId);
        }
        if (g->evset != NULL)
            HS_IGNORE_RESULT(g->f.register_events(d->h, NVML_EVENT_TYPE_XID_CRITICAL_ERROR,
                                                  g->evset) != NVML_SUCCESS);
        g->n++;
    }
    return true;
}

struct collect__gpu *collect__gpu_new(const struct collect_config *cfg, struct hs_err *err)
{
    struct collect__gpu *g = hs_calloc(1, sizeof(*g));
    if (g == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory creating the GPU collector");
        return NULL;
    }
    pthread_mutex_init(&g->proc_mu, NULL);
    g->hostname = hs_strdup(cfg->hostname != NULL ? cfg->hostname : "");
    g->procs = hs_calloc((size_t)COLLECT_MAX_GPUS * COLLECT_MAX_GPU_PROCESSES, sizeof(*g->procs));
    if (g->hostname == NULL || g->procs == NULL)
        goto nomem;
    const char *path = cfg->nvml_path != NULL ? cfg->nvml_path : "libnvidia-ml.so.1";
    if (start_nvml(g, path)) {
        unsigned count = 0;
        HS_IGNORE_RESULT(g->f.get_count(&count) != NVML_SUCCESS);
        if (!open_devices(g, HS_MIN(count, (unsigned)COLLECT_MAX_GPUS)))
            goto nomem;
        g->is_up = g->n > 0;
    }
    return g;
nomem:
    collect__gpu_free(g);
    hs_err_set(err, HS_ENOMEM, "out of memory creating the GPU collector");
    return NULL;
}

void collect__gpu_free(struct collect__gpu *g)
{
    if (g == NULL)
        return;
    if (g->evset != NULL && g->f.evset_free != NULL)
        HS_IGNORE_RESULT(g->f.evset_free(g->evset) != NVML_SUCCESS);
    if (g->is_initialised)
        HS_IGNORE_RESULT(g->f.shutdown() != NVML_SUCCESS);
    if (g->lib != NULL)
        dlclose(g->lib);
    pthread_mutex_destroy(&g->proc_mu);
    hs_free(g->devs);
    hs_free(g->procs);
    hs_free(g->hostname);
    hs_free(g);
}

bool collect__gpu_is_up(const struct collect__gpu *g)
{
    return g != NULL && g->is_up;
}

unsigned collect__gpu_count(const struct collect__gpu *g)
{
    return g != NULL && g->is_up ? g->n : 0;
}

/* ---- one round ---------------------------------------------------------------------- */

/* Emits one sample with the GPU's identity labels plus an optional pair. */
static void put_dev(struct collect__gpu *g, struct gpu_dev *d, struct collect__emit *e,
                    const char *name, double v, const char *k, const char *kval)
{
    const char *kv[16] = {"gpu",
                          d->index,
                          "UUID",
                          d->uuid,
                          "pci_bus_id",
                          d->pci,
                          "device",
                          d->device,
                          "modelName",
                          d->name,
                          "Hostname",
                          g->hostname,
                          "DCGM_FI_DRIVER_VERSION",
                          g->driver,
                          k,
                          kval};
    collect__put(e, name, v, k != NULL ? 8 : 7, kv);
}

static struct gpu_dev *dev_by_handle(struct collect__gpu *g, nvmlDevice_t h)
{
    for (unsigned i = 0; i < g->n; i++)
        if (g->devs[i].h == h)
            return &g->devs[i];
    return NULL;
}

static void count_xid(struct gpu_dev *d, unsigned long long xid)
{
    d->last_xid = xid;
    for (size_t i = 0; i < d->n_xids; i++) {
        if (d->xids[i].xid == xid) {
            d->xids[i].count++;
            return;
        }
    }
    if (d->n_xids < MAX_XID_KINDS)
        d->xids[d->n_xids++] = (struct xid_count){xid, 1};
}

static void drain_events(struct collect__gpu *g, struct collect__emit *e)
{
    if (g->evset == NULL)
        return;
    for (int i = 0; i < MAX_EVENTS_PER_ROUND; i++) {
        nvmlEventData_t ev;
        memset(&ev, 0, sizeof(ev));
        nvmlReturn_t r = g->f.evset_wait(g->evset, &ev, 0);
        if (r == NVML_ERROR_TIMEOUT)
            return;
        if (r != NVML_SUCCESS) {
            e->errors++;
            hs_log(HS_LOG_DEBUG, "collect: nvmlEventSetWait failed",
                   HS_LSTR("error", errstr(g, r)));
            return;
        }
        if (!(ev.eventType & NVML_EVENT_TYPE_XID_CRITICAL_ERROR))
            continue;
        struct gpu_dev *d = dev_by_handle(g, ev.device);
        if (d == NULL)
            continue;
        count_xid(d, ev.eventData);
        hs_log(HS_LOG_WARN, "collect: GPU XID error", HS_LSTR("gpu", d->index),
               HS_LSTR("uuid", d->uuid), HS_LINT("xid", (int64_t)ev.eventData));
    }
}

static double mib(unsigned long long bytes)
{
    return (double)(bytes / (1024ULL * 1024ULL));
}

static void read_basic(struct collect__gpu *g, struct gpu_dev *d, struct collect__emit *e)
{
    nvmlUtilization_t u;
    if (g->f.util != NULL && check(g, d, e, g->f.util(d->h, &u), M_UTIL, "utilization")) {
        put_dev(g, d, e, "DCGM_FI_DEV_GPU_UTIL", u.gpu, NULL, NULL);
        put_dev(g, d, e, "DCGM_FI_DEV_MEM_COPY_UTIL", u.memory, NULL, NULL);
    }
    nvmlMemory_t m;
    if (g->f.memory != NULL && check(g, d, e, g->f.memory(d->h, &m), M_MEM, "memory")) {
        put_dev(g, d, e, "DCGM_FI_DEV_FB_USED", mib(m.used), NULL, NULL);
        put_dev(g, d, e, "DCGM_FI_DEV_FB_FREE", mib(m.free), NULL, NULL);
        put_dev(g, d, e, "DCGM_FI_DEV_FB_TOTAL", mib(m.total), NULL, NULL);
    }
    unsigned int mw;
    if (g->f.power != NULL && check(g, d, e, g->f.power(d->h, &mw), M_POWER, "power"))
        put_dev(g, d, e, "DCGM_FI_DEV_POWER_USAGE", (double)mw / 1000.0, NULL, NULL);
    unsigned long long mj;
    if (g->f.energy != NULL && check(g, d, e, g->f.energy(d->h, &mj), M_ENERGY, "energy"))
        put_dev(g, d, e, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", (double)mj, NULL, NULL);
    unsigned int t;
    if (g->f.temp != NULL &&
        check(g, d, e, g->f.temp(d->h, NVML_TEMPERATURE_GPU, &t), M_TEMP, "temperature"))
        put_dev(g, d, e, "DCGM_FI_DEV_GPU_TEMP", t, NULL, NULL);
    unsigned int mhz;
    if (g->f.clock != NULL &&
        check(g, d, e, g->f.clock(d->h, NVML_CLOCK_SM, &mhz), M_SM_CLOCK, "sm clock"))
        put_dev(g, d, e, "DCGM_FI_DEV_SM_CLOCK", mhz, NULL, NULL);
    if (g->f.clock != NULL &&
        check(g, d, e, g->f.clock(d->h, NVML_CLOCK_MEM, &mhz), M_MEM_CLOCK, "memory clock"))
        put_dev(g, d, e, "DCGM_FI_DEV_MEM_CLOCK", mhz, NULL, NULL);
    unsigned long long reasons;
    if (g->f.throttle != NULL &&
        check(g, d, e, g->f.throttle(d->h, &reasons), M_THROTTLE, "throttle reasons"))
        put_dev(g, d, e, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", (double)reasons, NULL, NULL);
}

static void read_ecc_pcie(struct collect__gpu *g, struct gpu_dev *d, struct collect__emit *e)
{
    static const struct {
        int type, counter;
        const char *name;
    } ecc[] = {
        {NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"},
        {NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"},
        {NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC, "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL"},
        {NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC, "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL"},
    };
    for (size_t i = 0; g->f.ecc != NULL && i < HS_ARRAY_LEN(ecc); i++) {
        unsigned long long n;
        if (check(g, d, e, g->f.ecc(d->h, ecc[i].type, ecc[i].counter, &n), M_ECC, "ecc"))
            put_dev(g, d, e, ecc[i].name, (double)n, NULL, NULL);
    }
    unsigned int kbs;
    if (g->f.pcie != NULL &&
        check(g, d, e, g->f.pcie(d->h, NVML_PCIE_UTIL_TX_BYTES, &kbs), M_PCIE, "pcie tx"))
        put_dev(g, d, e, "DCGM_FI_PROF_PCIE_TX_BYTES", (double)kbs * 1024.0, NULL, NULL);
    if (g->f.pcie != NULL &&
        check(g, d, e, g->f.pcie(d->h, NVML_PCIE_UTIL_RX_BYTES, &kbs), M_PCIE, "pcie rx"))
        put_dev(g, d, e, "DCGM_FI_PROF_PCIE_RX_BYTES", (double)kbs * 1024.0, NULL, NULL);
    unsigned int v, period_us;
    if (g->f.enc_util != NULL &&
        check(g, d, e, g->f.enc_util(d->h, &v, &period_us), M_CODEC, "encoder utilization"))
        put_dev(g, d, e, "DCGM_FI_DEV_ENC_UTIL", v, NULL, NULL);
    if (g->f.dec_util != NULL &&
        check(g, d, e, g->f.dec_util(d->h, &v, &period_us), M_CODEC, "decoder utilization"))
        put_dev(g, d, e, "DCGM_FI_DEV_DEC_UTIL", v, NULL, NULL);
    if (g->f.replay != NULL && check(g, d, e, g->f.replay(d->h, &v), M_REPLAY, "pcie replays"))
        put_dev(g, d, e, "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", v, NULL, NULL);
    unsigned int corr, unc, pending, failed;
    if (g->f.remapped != NULL && check(g, d, e, g->f.remapped(d->h, &corr, &unc, &pending, &failed),
                                       M_REMAP, "remapped rows")) {
        put_dev(g, d, e, "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", corr, NULL, NULL);
        put_dev(g, d, e, "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", unc, NULL, NULL);
        put_dev(g, d, e, "DCGM_FI_DEV_ROW_REMAP_FAILURE", failed ? 1 : 0, NULL, NULL);
    }
    put_dev(g, d, e, "DCGM_FI_DEV_XID_ERRORS", (double)d->last_xid, NULL, NULL);
    for (size_t i = 0; i < d->n_xids; i++) {
        char xid[24];
        snprintf(xid, sizeof(xid), "%llu", d->xids[i].xid);
        put_dev(g, d, e, "DCGM_EXP_XID_ERRORS_COUNT", (double)d->xids[i].count, "xid", xid);
    }
}

/* Reads the device's compute processes into out[0, max); returns how many
 * were read, or -1 on an error (counted). */
static long read_procs(struct collect__gpu *g, struct gpu_dev *d, struct collect__emit *e,
                       struct collect_gpu_process *out, size_t max)
{
    unsigned int n = COLLECT_MAX_GPU_PROCESSES;
    nvmlReturn_t r;
    if (g->f.procs_v3 != NULL) {
        nvmlProcessInfo_t info[COLLECT_MAX_GPU_PROCESSES];
        r = g->f.procs_v3(d->h, &n, info);
        if (!check(g, d, e, r, M_PROCS, "compute processes"))
            return -1;
        n = HS_MIN(n, (unsigned)HS_MIN(max, (size_t)COLLECT_MAX_GPU_PROCESSES));
        for (unsigned i = 0; i < n; i++)
            out[i] = (struct collect_gpu_process){info[i].pid, 0, "", info[i].usedGpuMemory};
    } else if (g->f.procs_v1 != NULL) {
        nvmlProcessInfo_v1_t info[COLLECT_MAX_GPU_PROCESSES];
        r = g->f.procs_v1(d->h, &n, info);
        if (!check(g, d, e, r, M_PROCS, "compute processes"))
            return -1;
        n = HS_MIN(n, (unsigned)HS_MIN(max, (size_t)COLLECT_MAX_GPU_PROCESSES));
        for (unsigned i = 0; i < n; i++)
            out[i] = (struct collect_gpu_process){info[i].pid, 0, "", info[i].usedGpuMemory};
    } else {
        return -1;
    }
    return (long)n;
}

static void read_processes(struct collect__gpu *g, struct collect__emit *e)
{
    size_t cap = (size_t)g->n * COLLECT_MAX_GPU_PROCESSES;
    struct collect_gpu_process *tmp = hs_calloc(cap, sizeof(*tmp));
    if (tmp == NULL) {
        e->errors++;
        return;
    }
    size_t total = 0;
    for (unsigned i = 0; i < g->n; i++) {
        struct gpu_dev *d = &g->devs[i];
        long n = read_procs(g, d, e, tmp + total, cap - total);
        for (long k = 0; k < n; k++) {
            struct collect_gpu_process *p = &tmp[total + (size_t)k];
            p->gpu = i;
            snprintf(p->uuid, sizeof(p->uuid), "%s", d->uuid);
            char pid[16];
            snprintf(pid, sizeof(pid), "%u", p->pid);
            /* NVML reports no value (all ones) without enough privileges. */
            if (p->used_bytes != ~0ULL)
                put_dev(g, d, e, "holoscope_gpu_process_memory_used_bytes", (double)p->used_bytes,
                        "pid", pid);
        }
        if (n > 0)
            total += (size_t)n;
    }
    pthread_mutex_lock(&g->proc_mu);
    memcpy(g->procs, tmp, total * sizeof(*tmp));
    g->n_procs = total;
    pthread_mutex_unlock(&g->proc_mu);
    hs_free(tmp);
}

bool collect__gpu_collect(struct collect__gpu *g, struct collect__emit *e)
{
    if (!g->is_up)
        return false;
    drain_events(g, e);
    for (unsigned i = 0; i < g->n; i++) {
        read_basic(g, &g->devs[i], e);
        read_ecc_pcie(g, &g->devs[i], e);
    }
    read_processes(g, e);
    return true;
}

size_t collect__gpu_processes(struct collect__gpu *g, struct collect_gpu_process *out, size_t max)
{
    if (g == NULL)
        return 0;
    pthread_mutex_lock(&g->proc_mu);
    size_t n = g->n_procs;
    if (out != NULL)
        memcpy(out, g->procs, HS_MIN(n, max) * sizeof(*out));
    pthread_mutex_unlock(&g->proc_mu);
    return n;
}
