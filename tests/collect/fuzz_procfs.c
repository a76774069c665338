/*
 * fuzz_procfs.c - feeds arbitrary bytes to the host collector's /proc
 * parsers.  The input is split at NUL bytes into the contents of, in order:
 * stat, meminfo, loadavg, diskstats, mounts, net/dev, pressure/cpu,
 * self/stat; each is written into a scratch proc tree and one round is run
 * into a sink that checks every label set it receives.  Whatever the
 * bytes, the round must finish without a crash, a leak or an invalid
 * series.  Seeds: corpus/procfs/ (the fixture tree, joined with NULs).
 */
#include "collect/collect.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[] = {"stat",   "meminfo", "loadavg",      "diskstats",
                                    "mounts", "net/dev", "pressure/cpu", "self/stat"};
static char root[256];

static void remove_tree(void)
{
    char p[512];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, files[i]);
        unlink(p);
    }
    const char *dirs[] = {"net", "pressure", "self", ""};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
        rmdir(p);
    }
}

static void make_tree(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(root, sizeof(root), "%s/hs-fuzz-procfs-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(root) == NULL)
        abort();
    const char *dirs[] = {"net", "pressure", "self"};
    for (size_t i = 0; i < 3; i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
        mkdir(p, 0700);
    }
    atexit(remove_tree);
}

static int check_add(void *ctx, const struct hs_labels *ls, int64_t t_ms, double v,
                     struct hs_err *err)
{
    if (!hs_labels_valid(ls) || hs_labels_get(ls, "__name__") == NULL)
        abort();
    const char *name = hs_labels_get(ls, "__name__");
    if (!hs_metric_name_valid(name, strlen(name)))
        abort();
    (*(size_t *)ctx)++;
    return HS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (root[0] == '\0') {
        hs_log_setup(HS_LOG_ERROR, HS_LOG_LOGFMT, NULL);
        make_tree();
    }
    size_t off = 0;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const uint8_t *nul = off < size ? memchr(data + off, 0, size - off) : NULL;
        size_t len = nul != NULL ? (size_t)(nul - (data + off)) : size - HS_MIN(off, size);
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, files[i]);
        FILE *f = fopen(p, "wb");
        if (f == NULL)
            abort();
        if (len > 0)
            fwrite(data + off, 1, len, f);
        fclose(f);
        off = nul != NULL ? off + len + 1 : size;
    }
    struct collect_config cfg;
    collect_config_defaults(&cfg);
    cfg.gpu_enabled = false;
    cfg.proc_root = root;
    cfg.sys_root = root; /* no class/ tree: nothing read from the real /sys */
    cfg.rootfs = root;
    cfg.hostname = "fuzz";
    struct collect *c = collect_new(&cfg, NULL, NULL);
    if (c == NULL)
        abort();
    size_t n = 0;
    struct collect_sink sink = {check_add, &n};
    if (collect_collect(c, 1000, &sink, NULL) != HS_OK)
        abort();
    collect_free(c);
    return 0;
}
