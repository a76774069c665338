/*
 * gpumap.c - which local GPUs serve which model (metrics-mapping.md 4.3):
 * no engine says so, so each round joins NVML's per-process GPU memory with
 * the engine processes behind this machine's scrape targets.
 *
 * For every engine target whose host is this machine (loopback, localhost
 * or the hostname) and whose unified series name a model, the pid
 * listening on its port is found through <proc>/net/tcp and tcp6 (LISTEN
 * sockets) and the socket links in <proc>/<pid>/fd; a GPU process serves
 * that model when it is the listener or descends from it (engines run
 * their engine core and tensor-parallel workers as children).  Each link
 * is written as holoscope_gpu_model_info{gpu, UUID, Hostname, model,
 * instance} 1, instance being the engine target, so that DCGM_FI_* series
 * join on (gpu, Hostname) or UUID.  A link that goes away is simply not
 * written again (the series ends after the lookback, 5 min).
 *
 * Listener pids are cached per port and looked for again when the process
 * is gone; a port with no visible listener (another pid namespace, say) is
 * retried every 5 minutes, not every round; the fd scan is bounded by
 * MAX_SCAN entries.
 */
#include "collect/internal.h"

#include "tsdb/tsdb.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ENGINES          64      /* local engine targets joined per round */
#define MAX_MODELS           4       /* models per engine target */
#define MAX_DEPTH            16      /* ppid steps from a GPU process to its listener */
#define MAX_SCAN             1000000 /* /proc fd entries looked at to find one socket */
#define SERIES_PROBE         "llm_server_requests_running"
#define NO_LISTENER_RETRY_MS (5 * 60 * 1000) /* a port without a visible listener */

/* The pid whose process has the socket with 'inode' open, or 0. */
static uint32_t socket_owner(const char *proc_root, unsigned long inode)
{
    char want[64];
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    DIR *d = opendir(proc_root);
    if (d == NULL)
        return 0;
    uint32_t found = 0;
    size_t looked = 0;
    struct dirent *de;
    while (found == 0 && looked < MAX_SCAN && (de = readdir(d)) != NULL) {
        char *end;
        unsigned long pid = strtoul(de->d_name, &end, 10);
        if (*end != '\0' || pid == 0 || pid > UINT32_MAX)
            continue;
        char fdp[4096];
        if (snprintf(fdp, sizeof(fdp), "%s/%lu/fd", proc_root, pid) >= (int)sizeof(fdp))
            continue;
        DIR *fd = opendir(fdp);
        if (fd == NULL)
            continue;
        struct dirent *fe;
        while (found == 0 && looked < MAX_SCAN && (fe = readdir(fd)) != NULL) {
            looked++;
            if (fe->d_name[0] == '.')
                continue;
            char lp[4352], target[128];
            if (snprintf(lp, sizeof(lp), "%s/%s", fdp, fe->d_name) >= (int)sizeof(lp))
                continue;
            ssize_t n = readlink(lp, target, sizeof(target) - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (strcmp(target, want) == 0)
                found = (uint32_t)pid;
        }
        closedir(fd);
    }
    closedir(d);
    return found;
}

bool collect__listen_pid(const char *proc_root, int port, uint32_t *pid)
{
    static const char *const files[] = {"net/tcp", "net/tcp6"};
    for (size_t f = 0; f < HS_ARRAY_LEN(files); f++) {
        struct collect__lines lr;
        struct hs_err err;
        if (collect__lines_open(&lr, proc_root, files[f], &err) != HS_OK)
            continue;
        char *line;
        size_t len;
        unsigned long inode = 0;
        while (inode == 0 && collect__lines_next(&lr, &line, &len)) {
            /* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
            char local[64], st[8];
            unsigned long ino;
            if (sscanf(line, " %*s %63s %*s %7s %*s %*s %*s %*s %*s %lu", local, st, &ino) != 3)
                continue;
            const char *colon = strrchr(local, ':');
            if (colon == NULL || strcmp(st, "0A") != 0) /* TCP_LISTEN */
                continue;
            if (strtol(colon + 1, NULL, 16) == port && ino != 0)
                inode = ino;
        }
        collect__lines_close(&lr);
        if (inode != 0) {
            *pid = socket_owner(proc_root, inode);
            if (*pid != 0)
                return true;
        }
    }
    return false;
}

/* The parent of 'pid' from <proc>/<pid>/stat ("pid (comm) state ppid ..."),
 * or 0. */
static uint32_t parent_of(const char *proc_root, uint32_t pid)
{
    char rel[32], buf[1024];
    size_t len;
    struct hs_err err;
    snprintf(rel, sizeof(rel), "%u/stat", pid);
    if (collect__read_small(proc_root, rel, buf, sizeof(buf), &len, &err) != HS_OK)
        return 0;
    const char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    char state;
    unsigned long ppid;
    if (p == NULL || sscanf(p + 1, " %c %lu", &state, &ppid) != 2 || ppid > UINT32_MAX)
        return 0;
    return (uint32_t)ppid;
}

bool collect__descends(const char *proc_root, uint32_t pid, uint32_t ancestor)
{
    for (int depth = 0; pid > 1 && depth <= MAX_DEPTH; depth++) {
        if (pid == ancestor)
            return true;
        pid = parent_of(proc_root, pid);
    }
    return false;
}

/* The port of "host:port" when host is this machine, else 0. */
static int local_port(const char *instance, const char *hostname)
{
    const char *colon = strrchr(instance, ':');
    if (colon == NULL || colon == instance)
        return 0;
    size_t hl = (size_t)(colon - instance);
    char host[256];
    if (hl >= sizeof(host))
        return 0;
    memcpy(host, instance, hl);
    host[hl] = '\0';
    bool local = strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 ||
                 strcmp(host, "[::1]") == 0 || strcmp(host, "0.0.0.0") == 0 ||
                 (hostname != NULL && strcmp(host, hostname) == 0);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return local && *end == '\0' && port > 0 && port < 65536 ? (int)port : 0;
}

struct engine {
    char instance[256];
    int port;
    char models[MAX_MODELS][256];
    size_t nmodels;
    uint32_t pid;
};

/* The local engine targets of the last minutes, from their unified series. */
static size_t local_engines(struct tsdb *db, const char *hostname, int64_t now_ms,
                            struct engine *out, size_t max)
{
    struct tsdb_matcher m;
    struct hs_err err;
    size_t n = 0;
    if (tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", SERIES_PROBE, &err) != HS_OK)
        return 0;
    struct tsdb_querier *q = tsdb_querier_new(db, now_ms - 5 * 60 * 1000, now_ms);
    struct tsdb_series_set *set = NULL;
    if (q != NULL && tsdb_querier_select(q, &m, 1, 0, &set, &err) == HS_OK) {
        while (tsdb_series_set_next(set)) {
            const struct hs_labels *ls = tsdb_series_set_labels(set);
            const char *inst = hs_labels_get(ls, "instance");
            const char *model = hs_labels_get(ls, "model");
            int port = inst != NULL ? local_port(inst, hostname) : 0;
            if (port == 0 || model == NULL || model[0] == '\0' || strlen(inst) >= 256 ||
                strlen(model) >= 256)
                continue;
            size_t i = 0;
            while (i < n && strcmp(out[i].instance, inst) != 0)
                i++;
            if (i == n) {
                if (n == max)
                    continue;
                memset(&out[n], 0, sizeof(out[n]));
                memcpy(out[n].instance, inst, strlen(inst) + 1);
                out[n].port = port;
                n++;
            }
            struct engine *e = &out[i];
            bool have = false;
            for (size_t k = 0; k < e->nmodels && !have; k++)
                have = strcmp(e->models[k], model) == 0;
            if (!have && e->nmodels < MAX_MODELS)
                memcpy(e->models[e->nmodels++], model, strlen(model) + 1);
        }
    }
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
    return n;
}

void collect__gpu_models(struct collect__gpumap *gm, struct collect__gpu *gpu, struct tsdb *db,
                         const char *proc_root, const char *hostname, struct collect__emit *e)
{
    struct collect_gpu_process procs[COLLECT_MAX_GPUS];
    size_t np = collect__gpu_processes(gpu, procs, HS_ARRAY_LEN(procs));
    if (np == 0 || db == NULL)
        return;
    np = HS_MIN(np, HS_ARRAY_LEN(procs));
    struct engine *eng = hs_calloc(MAX_ENGINES, sizeof(*eng));
    if (eng == NULL)
        return;
    size_t ne = local_engines(db, hostname, e->t_ms, eng, MAX_ENGINES);
    for (size_t i = 0; i < ne; i++) {
        /* the cached listener, unless its process is gone; a port whose
         * listener was not found is looked for again only after a while (the
         * search reads every process's fd table) */
        size_t k = 0;
        while (k < gm->n && gm->port[k] != eng[i].port)
            k++;
        uint32_t pid = k < gm->n ? gm->pid[k] : 0;
        if (k < gm->n && pid == 0 && e->t_ms < gm->retry_ms[k])
            continue;
        char rel[32], path[4096];
        snprintf(rel, sizeof(rel), "%u/stat", pid);
        if (pid == 0 || collect__path(path, sizeof(path), proc_root, rel) != HS_OK ||
            access(path, F_OK) != 0) {
            pid = 0;
            bool found = collect__listen_pid(proc_root, eng[i].port, &pid);
            if (k == gm->n && gm->n < HS_ARRAY_LEN(gm->port))
                gm->n++;
            if (k < gm->n) {
                gm->port[k] = eng[i].port;
                gm->pid[k] = found ? pid : 0;
                gm->retry_ms[k] = e->t_ms + NO_LISTENER_RETRY_MS;
            }
            if (!found)
                continue;
        }
        eng[i].pid = pid;
    }
    for (size_t p = 0; p < np; p++) {
        char gpu_idx[16];
        snprintf(gpu_idx, sizeof(gpu_idx), "%u", procs[p].gpu);
        for (size_t i = 0; i < ne; i++) {
            if (eng[i].pid == 0 || !collect__descends(proc_root, procs[p].pid, eng[i].pid))
                continue;
            for (size_t k = 0; k < eng[i].nmodels; k++) {
                const char *kv[] = {"gpu",      gpu_idx,        "UUID",  procs[p].uuid,
                                    "Hostname", hostname,       "model", eng[i].models[k],
                                    "instance", eng[i].instance};
                collect__put(e, "holoscope_gpu_model_info", 1, HS_ARRAY_LEN(kv) / 2, kv);
            }
        }
    }
    hs_free(eng);
}
