/*
 * internal.h - shared by the collect module's own files: the emitter that
 * turns (name, labels, value) into sink calls, the /proc line reader and
 * the cursor helpers, and the two collector back-ends (host.c, gpu.c).
 * Nobody outside src/collect/ includes it.
 */
#ifndef HS_COLLECT_INTERNAL_H
#define HS_COLLECT_INTERNAL_H

#include "collect/collect.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Labels per sample, __name__ included (ceiling; more is a bug here). */
#define COLLECT__MAX_LABELS 16
/* Bytes of one line kept by the line reader; the rest of a longer line is
 * dropped (only /proc/stat's intr line gets that long, and only its head
 * is read). */
#define COLLECT__LINE_MAX 4096

/* ---- emitting samples ----------------------------------------------------- */

/* Where a collector writes in one round: the sink, the common labels and
 * counters of what happened. */
struct collect__emit {
    const struct collect_sink *sink;
    int64_t t_ms;
    const struct hs_label *common; /* job, instance, backend ...; borrowed */
    size_t n_common;
    uint64_t samples; /* written */
    uint64_t errors;  /* rejected by the sink or failed reads */
};

/*
 * Writes one sample named 'name' with the common labels plus 'n' pairs
 * given as name, value, name, value ... in 'kv' (a NULL or empty value
 * drops the label).  A sink error is counted in e->errors.
 */
void collect__put(struct collect__emit *e, const char *name, double v, size_t n,
                  const char *const *kv);
/* collect__put with no extra labels, and with one. */
void collect__put0(struct collect__emit *e, const char *name, double v);
void collect__put1(struct collect__emit *e, const char *name, double v, const char *k1,
                   const char *v1);

/* ---- reading /proc and /sys ------------------------------------------------ */

/* Reads a file line by line with read(2) into the struct's own buffer. */
struct collect__lines {
    int fd;
    bool is_eof;
    bool is_truncated; /* the line just returned was longer than LINE_MAX */
    bool is_skipping;  /* the rest of a cut line is still to be skipped */
    size_t start, end; /* unread bytes are buf[start, end) */
    char buf[COLLECT__LINE_MAX * 2];
};

/* Opens root/rel ('rel' may be NULL: 'root' is the whole path).  HS_ENOTFOUND
 * when absent, HS_EIO otherwise. */
HS_MUST_CHECK int collect__lines_open(struct collect__lines *lr, const char *root, const char *rel,
                                      struct hs_err *err);
/* Next line without its '\n', NUL-terminated in place; false at the end or
 * on a read error.  The line is valid until the next call. */
bool collect__lines_next(struct collect__lines *lr, char **line, size_t *len);
void collect__lines_close(struct collect__lines *lr);

/* Reads a whole small file (at most cap-1 bytes, NUL-terminated) into 'buf'.
 * HS_ENOTFOUND when absent, HS_ETOOBIG when longer, HS_EIO otherwise. */
HS_MUST_CHECK int collect__read_small(const char *root, const char *rel, char *buf, size_t cap,
                                      size_t *len, struct hs_err *err);

/* Joins root and rel into out ("root/rel"); HS_ETOOBIG when it does not fit. */
HS_MUST_CHECK int collect__path(char *out, size_t cap, const char *root, const char *rel);

/* ---- cursor parsing ------------------------------------------------------------
 * On a line 'p' (NUL-terminated), each helper skips leading blanks, consumes
 * one token and advances *p; on failure *p is unchanged.
 */
void collect__skip_blanks(const char **p);
/* A run of non-blank characters into out (NUL-terminated, truncated to cap). */
bool collect__word(const char **p, char *out, size_t cap);
bool collect__u64(const char **p, uint64_t *out);
bool collect__f64(const char **p, double *out);
/* Consumes 'lit' exactly (after blanks). */
bool collect__lit(const char **p, const char *lit);

/* ---- back-ends ------------------------------------------------------------------- */

struct collect__host;
struct collect__gpu;

struct collect__host *collect__host_new(const struct collect_config *cfg, struct hs_err *err);
void collect__host_free(struct collect__host *h);
/* One round; returns false when a required file (stat) could not be read. */
bool collect__host_collect(struct collect__host *h, struct collect__emit *e);

struct collect__gpu *collect__gpu_new(const struct collect_config *cfg, struct hs_err *err);
void collect__gpu_free(struct collect__gpu *g);
/* Whether NVML is loaded and initialised. */
bool collect__gpu_is_up(const struct collect__gpu *g);
unsigned collect__gpu_count(const struct collect__gpu *g);
/* One round; returns collect__gpu_is_up. */
bool collect__gpu_collect(struct collect__gpu *g, struct collect__emit *e);
/* Copies processes of the last round (see collect_gpu_processes). */
size_t collect__gpu_processes(struct collect__gpu *g, struct collect_gpu_process *out, size_t max);

/* ---- GPU <-> model (gpumap.c) ---------------------------------------------- */

/* Listener pids found on earlier rounds, by port. */
struct collect__gpumap {
    int port[64];
    uint32_t pid[64]; /* 0: no listener found; looked for again after retry_ms[k] */
    int64_t retry_ms[64];
    size_t n;
};

/* The pid listening on TCP 'port' (any local address) per <proc_root>'s
 * net/tcp, net/tcp6 and fd links; false when none is found. */
bool collect__listen_pid(const char *proc_root, int port, uint32_t *pid);
/* Whether 'pid' is 'ancestor' or one of its descendants (ppid chain). */
bool collect__descends(const char *proc_root, uint32_t pid, uint32_t ancestor);
/* Writes holoscope_gpu_model_info for each GPU process of 'gpu' that is (a
 * child of) the process behind a local engine target of 'db' (gpumap.c).
 * 'e' must not carry an instance label of its own. */
struct tsdb;
void collect__gpu_models(struct collect__gpumap *gm, struct collect__gpu *gpu, struct tsdb *db,
                         const char *proc_root, const char *hostname, struct collect__emit *e);

#endif
