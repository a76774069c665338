/*
 * gpu.c - simulated NVIDIA GPUs and their dcgm-exporter /metrics.
 *
 * Utilisation follows the busy fraction of the replica's engine steps (with
 * a 1 s lag, as DCGM's sampling smooths it), memory is weights plus the KV
 * blocks in use, power moves between idle and maximum with utilisation
 * (2 s lag), temperature follows power (20 s lag).  The throttle fault
 * raises the temperature target, lowers the SM clock and sets the thermal
 * and slowdown clocks-event reasons; the idle fault shows an allocated GPU
 * with no work.  The exposition copies dcgm-exporter's layout (label order
 * gpu, UUID, pci_bus_id, device, modelName, Hostname; integers as %d,
 * doubles as %f) from shared/fixtures/exposition/dcgm.prom.
 */
#include "sim/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void sim__gpu_init(struct sim_gpu *g, int index, uint64_t seed, const char *model,
                   double mem_total_gib)
{
    memset(g, 0, sizeof(*g));
    uint64_t a = mix64(seed), b = mix64(a);
    g->index = index;
    snprintf(g->uuid, sizeof(g->uuid), "GPU-%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffffu, (unsigned)a & 0xffffu, (unsigned)(b >> 48),
             (unsigned long long)(b & 0xffffffffffffull));
    static const unsigned bus[] = {0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb};
    snprintf(g->pci_bus_id, sizeof(g->pci_bus_id), "00000000:%02X:00.0",
             bus[(unsigned)index % HS_ARRAY_LEN(bus)]);
    g->model = model;
    g->mem_total_mib = mem_total_gib * 1024.0;
    g->temp_c = 32.0;
    g->power_w = 0;
    g->sm_clock_mhz = 345;
    g->reasons = SIM_CLOCKS_EVENT_GPU_IDLE;
}

static double lag(double cur, double target, double dt, double tau)
{
    if (dt <= 0)
        return cur;
    return target + (cur - target) * exp(-dt / tau);
}

void sim__gpu_update(struct sim_gpu *g, double dt_s, const struct sim_gpu_load *l)
{
    double busy = l->is_idle_fault ? 0 : l->busy;
    if (busy < 0)
        busy = 0;
    if (busy > 1)
        busy = 1;
    if (g->power_w == 0)
        g->power_w = l->power_idle_w;
    g->util = lag(g->util, busy, dt_s, 1.0);
    double p = l->power_idle_w + (l->power_max_w - l->power_idle_w) * g->util;
    if (l->is_throttled)
        p *= 0.85; /* clocks pulled down */
    g->power_w = lag(g->power_w, p, dt_s, 2.0);
    double t = 30.0 + 0.065 * g->power_w + (l->is_throttled ? 24.0 : 0.0);
    g->temp_c = lag(g->temp_c, t, dt_s, 20.0);
    g->energy_mj += g->power_w * dt_s * 1000.0;
    g->fb_used_mib = l->fb_used_mib < g->mem_total_mib ? l->fb_used_mib : g->mem_total_mib;
    g->tensor_active = g->util * 0.55;
    g->dram_active = g->util * 0.7;
    g->reasons = 0;
    if (l->is_throttled) {
        g->sm_clock_mhz = 1410;
        g->reasons |= SIM_CLOCKS_EVENT_SW_THERMAL | SIM_CLOCKS_EVENT_HW_THERMAL |
                      SIM_CLOCKS_EVENT_HW_SLOWDOWN;
    } else if (g->util < 0.01) {
        g->sm_clock_mhz = 345;
        g->reasons |= SIM_CLOCKS_EVENT_GPU_IDLE;
    } else {
        g->sm_clock_mhz = 1980;
    }
}

struct dcgm_field {
    const char *name, *type, *help;
    bool is_int;
};

static double field_value(const struct sim_gpu *g, size_t k)
{
    switch (k) {
    case 0:
        return g->sm_clock_mhz;
    case 1:
        return 2619;
    case 2:
        return floor(g->temp_c - 6.0);
    case 3:
        return floor(g->temp_c);
    case 4:
        return g->power_w;
    case 5:
        return floor(g->energy_mj);
    case 6:
        return 0; /* PCIe replays */
    case 7:
        return floor(g->util * 100.0 + 0.5);
    case 8:
        return floor(g->dram_active * 100.0 + 0.5);
    case 9:
        return 0; /* encoder */
    case 10:
        return 0; /* decoder */
    case 11:
        return 0; /* XID */
    case 12:
        return floor(g->mem_total_mib - g->fb_used_mib - 512);
    case 13:
        return floor(g->fb_used_mib);
    case 14:
        return 512;
    case 15:
        return g->reasons;
    case 16:
        return g->reasons;
    case 17:
        return g->util;
    case 18:
        return g->tensor_active;
    case 19:
        return g->dram_active;
    default:
        return 0;
    }
}

static const struct dcgm_field fields[] = {
    {"DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", true},
    {"DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", true},
    {"DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", true},
    {"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", true},
    {"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", false},
    {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
     "Total energy consumption since boot (in mJ).", true},
    {"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", true},
    {"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", true},
    {"DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", true},
    {"DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", true},
    {"DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", true},
    {"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", true},
    {"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", true},
    {"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", true},
    {"DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).", true},
    {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons.", true},
    {"DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "gauge", "Current clock event reasons.", true},
    {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.",
     false},
    {"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge",
     "Ratio of cycles the tensor (HMMA) pipe is active.", false},
    {"DCGM_FI_PROF_DRAM_ACTIVE", "gauge",
     "Ratio of cycles the device memory interface is active sending or receiving data.", false},
};

int sim__gpu_metrics(const struct sim_gpu *const *gpus, size_t n, const char *hostname,
                     struct hs_buf *out)
{
    int rc = HS_OK;
    for (size_t k = 0; !rc && k < HS_ARRAY_LEN(fields); k++) {
        const struct dcgm_field *f = &fields[k];
        rc = hs_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
        for (size_t i = 0; !rc && i < n; i++) {
            const struct sim_gpu *g = gpus[i];
            double v = field_value(g, k);
            rc = hs_buf_printf(out,
                               "%s{gpu=\"%d\",UUID=\"%s\",pci_bus_id=\"%s\",device=\"nvidia%d\","
                               "modelName=\"%s\",Hostname=\"%s\","
                               "DCGM_FI_DRIVER_VERSION=\"570.133.20\",container=\"%s\","
                               "namespace=\"sim\",pod=\"%s\"} ",
                               f->name, g->index, g->uuid, g->pci_bus_id, g->index, g->model,
                               hostname, g->container ? g->container : "", g->pod);
            if (!rc)
                rc = f->is_int ? hs_buf_printf(out, "%lld\n", (long long)v)
                               : hs_buf_printf(out, "%f\n", v);
        }
        if (!rc)
            rc = hs_buf_putc(out, '\n');
    }
    return rc;
}
