/*
 * fake_nvml.c - a stand-in for libnvidia-ml.so.1, built as a shared library
 * (tests/collect/CMakeLists.fragment.cmake) so that the GPU collector's
 * dlopen path runs in tests on machines without a GPU.
 *
 * It exports the NVML symbols src/collect/gpu.c loads, with NVML's
 * signatures (src/collect/nvml.h).  nvmlInit_v2 reads the file named by the
 * environment variable HS_FAKE_NVML_DATA; each line is "key value...":
 *   init_error CODE            nvmlInit_v2 returns CODE
 *   count N                    number of GPUs (at most 8)
 *   driver TEXT                nvmlSystemGetDriverVersion
 *   gpuI.name TEXT             (TEXT runs to the end of the line)
 *   gpuI.uuid TEXT / gpuI.pci TEXT
 *   gpuI.util_gpu N / util_mem N / mem_total N / mem_used N / mem_free N
 *   gpuI.power_mw N / energy_mj N / temp N / sm_clock N / mem_clock N
 *   gpuI.throttle N / ecc_sbe_vol N / ecc_dbe_vol N / ecc_sbe_agg N / ecc_dbe_agg N
 *   gpuI.pcie_tx_kbs N / pcie_rx_kbs N / enc_util N / dec_util N / pcie_replay N
 *   gpuI.remap_corr N / remap_unc N / remap_failed N
 *   gpuI.proc PID BYTES        one running compute process (repeatable)
 *   gpuI.xid CODE              one pending XID event (repeatable, FIFO)
 *   gpuI.fail CALL CODE        CALL returns CODE for this GPU; CALL is one of
 *                              util memory power energy temp clock throttle ecc
 *                              pcie procs codec replay remap events
 * Unknown keys are ignored.  nvmlShutdown forgets everything.
 */
#include "collect/nvml.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_MAX_GPUS   8
#define FAKE_MAX_PROCS  8
#define FAKE_MAX_EVENTS 32
#define FAKE_MAX_FAILS  16

struct nvmlDevice_st {
    int index;
    char name[96], uuid[96], pci[32];
    unsigned long long v_util_gpu, v_util_mem, v_mem_total, v_mem_used, v_mem_free;
    unsigned long long v_power_mw, v_energy_mj, v_temp, v_sm_clock, v_mem_clock, v_throttle;
    unsigned long long v_ecc[2][2]; /* [type][counter] */
    unsigned long long v_pcie_tx, v_pcie_rx;
    unsigned long long v_enc, v_dec, v_replay, v_remap_corr, v_remap_unc, v_remap_failed;
    unsigned n_procs;
    unsigned int proc_pid[FAKE_MAX_PROCS];
    unsigned long long proc_bytes[FAKE_MAX_PROCS];
    int n_fails;
    char fail_call[FAKE_MAX_FAILS][16];
    int fail_code[FAKE_MAX_FAILS];
    int is_registered;
};

struct nvmlEventSet_st {
    int unused;
};

static struct {
    int is_init;
    int init_error;
    unsigned count;
    char driver[80];
    struct nvmlDevice_st gpu[FAKE_MAX_GPUS];
    int ev_gpu[FAKE_MAX_EVENTS];
    unsigned long long ev_xid[FAKE_MAX_EVENTS];
    int n_ev, ev_head;
    struct nvmlEventSet_st set;
} S;

/* Exported symbols need prototypes for -Wmissing-prototypes. */
#define EXPORT __attribute__((visibility("default")))
EXPORT nvmlReturn_t nvmlInit_v2(void);
EXPORT nvmlReturn_t nvmlShutdown(void);
EXPORT const char *nvmlErrorString(nvmlReturn_t r);
EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n);
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d);
EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *out, unsigned int len);
EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *out, unsigned int len);
EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *out, unsigned int len);
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci);
EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u);
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m);
EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw);
EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj);
EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t);
EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *mhz);
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d,
                                                              unsigned long long *r);
EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter,
                                                unsigned long long *n);
EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, int counter, unsigned int *kbs);
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *n,
                                                            nvmlProcessInfo_t *info);
EXPORT nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned int *u,
                                                    unsigned int *period_us);
EXPORT nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned int *u,
                                                    unsigned int *period_us);
EXPORT nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t d, unsigned int *v);
EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int *corr, unsigned int *unc,
                                              unsigned int *pending, unsigned int *failed);
EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set);
EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set);
EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types,
                                             nvmlEventSet_t set);
EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data,
                                        unsigned int timeout_ms);

static unsigned long long num(const char *s)
{
    return strtoull(s, NULL, 0);
}

static void copy_text(char *out, size_t cap, const char *s)
{
    snprintf(out, cap, "%s", s);
}

static void set_gpu_key(struct nvmlDevice_st *g, const char *key, char *val)
{
    static const struct {
        const char *key;
        size_t off;
    } nums[] = {
#define F(k, f) {k, offsetof(struct nvmlDevice_st, f)}
        F("util_gpu", v_util_gpu),
        F("util_mem", v_util_mem),
        F("mem_total", v_mem_total),
        F("mem_used", v_mem_used),
        F("mem_free", v_mem_free),
        F("power_mw", v_power_mw),
        F("energy_mj", v_energy_mj),
        F("temp", v_temp),
        F("sm_clock", v_sm_clock),
        F("mem_clock", v_mem_clock),
        F("throttle", v_throttle),
        F("ecc_sbe_vol", v_ecc[0][0]),
        F("ecc_dbe_vol", v_ecc[1][0]),
        F("ecc_sbe_agg", v_ecc[0][1]),
        F("ecc_dbe_agg", v_ecc[1][1]),
        F("pcie_tx_kbs", v_pcie_tx),
        F("pcie_rx_kbs", v_pcie_rx),
        F("enc_util", v_enc),
        F("dec_util", v_dec),
        F("pcie_replay", v_replay),
        F("remap_corr", v_remap_corr),
        F("remap_unc", v_remap_unc),
        F("remap_failed", v_remap_failed),
#undef F
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (strcmp(key, nums[i].key) == 0) {
            unsigned long long v = num(val);
            memcpy((char *)g + nums[i].off, &v, sizeof(v));
            return;
        }
    }
    if (strcmp(key, "name") == 0)
        copy_text(g->name, sizeof(g->name), val);
    else if (strcmp(key, "uuid") == 0)
        copy_text(g->uuid, sizeof(g->uuid), val);
    else if (strcmp(key, "pci") == 0)
        copy_text(g->pci, sizeof(g->pci), val);
    else if (strcmp(key, "proc") == 0 && g->n_procs < FAKE_MAX_PROCS) {
        char *sp = strchr(val, ' ');
        g->proc_pid[g->n_procs] = (unsigned)num(val);
        g->proc_bytes[g->n_procs] = sp != NULL ? num(sp + 1) : 0;
        g->n_procs++;
    } else if (strcmp(key, "xid") == 0 && S.n_ev < FAKE_MAX_EVENTS) {
        S.ev_gpu[S.n_ev] = g->index;
        S.ev_xid[S.n_ev] = num(val);
        S.n_ev++;
    } else if (strcmp(key, "fail") == 0 && g->n_fails < FAKE_MAX_FAILS) {
        char *sp = strchr(val, ' ');
        if (sp == NULL)
            return;
        *sp = '\0';
        copy_text(g->fail_call[g->n_fails], sizeof(g->fail_call[0]), val);
        g->fail_code[g->n_fails] = (int)num(sp + 1);
        g->n_fails++;
    }
}

static void load(void)
{
    memset(&S, 0, sizeof(S));
    for (int i = 0; i < FAKE_MAX_GPUS; i++)
        S.gpu[i].index = i;
    const char *path = getenv("HS_FAKE_NVML_DATA");
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *sp = strchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = '\0';
        char *val = sp + 1;
        if (strcmp(line, "count") == 0)
            S.count = (unsigned)num(val) > FAKE_MAX_GPUS ? FAKE_MAX_GPUS : (unsigned)num(val);
        else if (strcmp(line, "init_error") == 0)
            S.init_error = (int)num(val);
        else if (strcmp(line, "driver") == 0)
            copy_text(S.driver, sizeof(S.driver), val);
        else if (strncmp(line, "gpu", 3) == 0 && line[3] >= '0' && line[3] < '0' + FAKE_MAX_GPUS &&
                 line[4] == '.')
            set_gpu_key(&S.gpu[line[3] - '0'], line + 5, val);
    }
    fclose(f);
}

/* Returns the configured failure of 'call' for this GPU, or NVML_SUCCESS. */
static nvmlReturn_t failure(nvmlDevice_t d, const char *call)
{
    if (!S.is_init)
        return NVML_ERROR_UNINITIALIZED;
    if (d == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < d->n_fails; i++)
        if (strcmp(d->fail_call[i], call) == 0)
            return d->fail_code[i];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void)
{
    load();
    if (S.init_error != 0)
        return S.init_error;
    S.is_init = 1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    if (!S.is_init)
        return NVML_ERROR_UNINITIALIZED;
    memset(&S, 0, sizeof(S));
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS:
        return "Success";
    case NVML_ERROR_NOT_SUPPORTED:
        return "Not Supported";
    case NVML_ERROR_GPU_IS_LOST:
        return "GPU is lost";
    case NVML_ERROR_TIMEOUT:
        return "Timeout";
    default:
        return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n)
{
    if (!S.is_init)
        return NVML_ERROR_UNINITIALIZED;
    *n = S.count;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d)
{
    if (!S.is_init)
        return NVML_ERROR_UNINITIALIZED;
    if (i >= S.count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *d = &S.gpu[i];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *out, unsigned int len)
{
    if (!S.is_init)
        return NVML_ERROR_UNINITIALIZED;
    snprintf(out, len, "%s", S.driver);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *out, unsigned int len)
{
    nvmlReturn_t r = failure(d, "name");
    if (r == NVML_SUCCESS)
        snprintf(out, len, "%s", d->name);
    return r;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *out, unsigned int len)
{
    nvmlReturn_t r = failure(d, "uuid");
    if (r == NVML_SUCCESS)
        snprintf(out, len, "%s", d->uuid);
    return r;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
    nvmlReturn_t r = failure(d, "pci");
    if (r == NVML_SUCCESS) {
        memset(pci, 0, sizeof(*pci));
        snprintf(pci->busId, sizeof(pci->busId), "%s", d->pci);
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    nvmlReturn_t r = failure(d, "util");
    if (r == NVML_SUCCESS) {
        u->gpu = (unsigned)d->v_util_gpu;
        u->memory = (unsigned)d->v_util_mem;
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    nvmlReturn_t r = failure(d, "memory");
    if (r == NVML_SUCCESS) {
        m->total = d->v_mem_total;
        m->used = d->v_mem_used;
        m->free = d->v_mem_free;
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw)
{
    nvmlReturn_t r = failure(d, "power");
    if (r == NVML_SUCCESS)
        *mw = (unsigned)d->v_power_mw;
    return r;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj)
{
    nvmlReturn_t r = failure(d, "energy");
    if (r == NVML_SUCCESS)
        *mj = d->v_energy_mj;
    return r;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t)
{
    nvmlReturn_t r = failure(d, "temp");
    if (r == NVML_SUCCESS && sensor != NVML_TEMPERATURE_GPU)
        r = NVML_ERROR_INVALID_ARGUMENT;
    if (r == NVML_SUCCESS)
        *t = (unsigned)d->v_temp;
    return r;
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *mhz)
{
    nvmlReturn_t r = failure(d, "clock");
    if (r != NVML_SUCCESS)
        return r;
    if (type == NVML_CLOCK_SM)
        *mhz = (unsigned)d->v_sm_clock;
    else if (type == NVML_CLOCK_MEM)
        *mhz = (unsigned)d->v_mem_clock;
    else
        return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long *out)
{
    nvmlReturn_t r = failure(d, "throttle");
    if (r == NVML_SUCCESS)
        *out = d->v_throttle;
    return r;
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter,
                                         unsigned long long *n)
{
    nvmlReturn_t r = failure(d, "ecc");
    if (r == NVML_SUCCESS && (type < 0 || type > 1 || counter < 0 || counter > 1))
        r = NVML_ERROR_INVALID_ARGUMENT;
    if (r == NVML_SUCCESS)
        *n = d->v_ecc[type][counter];
    return r;
}

nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, int counter, unsigned int *kbs)
{
    nvmlReturn_t r = failure(d, "pcie");
    if (r != NVML_SUCCESS)
        return r;
    if (counter == NVML_PCIE_UTIL_TX_BYTES)
        *kbs = (unsigned)d->v_pcie_tx;
    else if (counter == NVML_PCIE_UTIL_RX_BYTES)
        *kbs = (unsigned)d->v_pcie_rx;
    else
        return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *n,
                                                     nvmlProcessInfo_t *info)
{
    nvmlReturn_t r = failure(d, "procs");
    if (r != NVML_SUCCESS)
        return r;
    if (*n < d->n_procs) {
        *n = d->n_procs;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned i = 0; i < d->n_procs; i++) {
        memset(&info[i], 0, sizeof(info[i]));
        info[i].pid = d->proc_pid[i];
        info[i].usedGpuMemory = d->proc_bytes[i];
    }
    *n = d->n_procs;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned int *u,
                                             unsigned int *period_us)
{
    nvmlReturn_t r = failure(d, "codec");
    if (r == NVML_SUCCESS) {
        *u = (unsigned)d->v_enc;
        *period_us = 167000;
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned int *u,
                                             unsigned int *period_us)
{
    nvmlReturn_t r = failure(d, "codec");
    if (r == NVML_SUCCESS) {
        *u = (unsigned)d->v_dec;
        *period_us = 167000;
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t d, unsigned int *v)
{
    nvmlReturn_t r = failure(d, "replay");
    if (r == NVML_SUCCESS)
        *v = (unsigned)d->v_replay;
    return r;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int *corr, unsigned int *unc,
                                       unsigned int *pending, unsigned int *failed)
{
    nvmlReturn_t r = failure(d, "remap");
    if (r == NVML_SUCCESS) {
        *corr = (unsigned)d->v_remap_corr;
        *unc = (unsigned)d->v_remap_unc;
        *pending = 0;
        *failed = (unsigned)d->v_remap_failed;
    }
    return r;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    if (!S.is_init)
        return NVML_ERROR_UNINITIALIZED;
    *set = &S.set;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    return set == &S.set ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set)
{
    nvmlReturn_t r = failure(d, "events");
    if (r != NVML_SUCCESS)
        return r;
    if (set != &S.set || !(types & NVML_EVENT_TYPE_XID_CRITICAL_ERROR))
        return NVML_ERROR_INVALID_ARGUMENT;
    d->is_registered = 1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
    (void)timeout_ms;
    if (!S.is_init)
        return NVML_ERROR_UNINITIALIZED;
    if (set != &S.set)
        return NVML_ERROR_INVALID_ARGUMENT;
    while (S.ev_head < S.n_ev) {
        int i = S.ev_head++;
        struct nvmlDevice_st *d = &S.gpu[S.ev_gpu[i]];
        if (!d->is_registered)
            continue;
        memset(data, 0, sizeof(*data));
        data->device = d;
        data->eventType = NVML_EVENT_TYPE_XID_CRITICAL_ERROR;
        data->eventData = S.ev_xid[i];
        return NVML_SUCCESS;
    }
    return NVML_ERROR_TIMEOUT;
}
