/*
 * metrics.c - holoscope's self-metrics registry and /metrics rendering.
 *
 * Families written here: holoscope_build_info, the standard process_*
 * metrics read from /proc/self (CPU seconds, resident and virtual memory,
 * open and max file descriptors, start time), and the HTTP metrics fed by
 * the server's observer: holoscope_http_requests_total{handler,code} and
 * holoscope_http_request_duration_seconds{handler} (histogram).  Every
 * registered collector then appends its own families.
 *
 * The HTTP series are kept in small arrays searched linearly: there are a
 * few dozen handlers and a handful of codes, and the observer runs once per
 * request on the loop thread.
 */
#include "api/api.h"

#include "buildinfo.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Prometheus client libraries' default buckets. */
static const double duration_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS     HS_ARRAY_LEN(duration_buckets)
#define MAX_HANDLERS 128
#define MAX_CODES    2048

struct handler_stats {
    char *name;
    uint64_t buckets[NBUCKETS]; /* non-cumulative counts per bucket; rendered cumulative */
    uint64_t count;
    double sum;
};

struct code_stats {
    int handler; /* index into handlers */
    int code;
    uint64_t count;
};

struct collector {
    api_collector_fn *fn;
    void *arg;
};

struct api_metrics {
    double start_time_s;
    struct handler_stats handlers[MAX_HANDLERS];
    size_t nhandlers;
    struct code_stats codes[MAX_CODES];
    size_t ncodes;
    struct collector *collectors;
    size_t ncollectors;
};

struct api_metrics *api_metrics_new(double start_time_s)
{
    struct api_metrics *m = hs_calloc(1, sizeof(*m));
    if (m != NULL)
        m->start_time_s = start_time_s;
    return m;
}

void api_metrics_free(struct api_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nhandlers; i++)
        hs_free(m->handlers[i].name);
    hs_free(m->collectors);
    hs_free(m);
}

int api_metrics_add_collector(struct api_metrics *m, api_collector_fn *fn, void *arg)
{
    struct collector *c = hs_reallocarray(m->collectors, m->ncollectors + 1, sizeof(*c));
    if (c == NULL)
        return HS_ENOMEM;
    m->collectors = c;
    c[m->ncollectors].fn = fn;
    c[m->ncollectors].arg = arg;
    m->ncollectors++;
    return HS_OK;
}

static int handler_index(struct api_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->nhandlers; i++)
        if (strcmp(m->handlers[i].name, name) == 0)
            return (int)i;
    if (m->nhandlers == MAX_HANDLERS)
        return -1;
    char *copy = hs_strdup(name);
    if (copy == NULL)
        return -1;
    memset(&m->handlers[m->nhandlers], 0, sizeof(m->handlers[0]));
    m->handlers[m->nhandlers].name = copy;
    return (int)m->nhandlers++;
}

void api_metrics_observe_http(void *arg, const char *handler, const char *method, int status,
                              double duration_s, uint64_t request_bytes, uint64_t response_bytes)
{
    (void)method;
    (void)request_bytes;
    (void)response_bytes;
    struct api_metrics *m = arg;
    int h = handler_index(m, handler ? handler : "other");
    if (h < 0)
        return;
    struct handler_stats *hs = &m->handlers[h];
    size_t b = 0;
    while (b < NBUCKETS && duration_s > duration_buckets[b])
        b++;
    if (b < NBUCKETS)
        hs->buckets[b]++;
    hs->count++;
    hs->sum += duration_s;
    for (size_t i = 0; i < m->ncodes; i++) {
        if (m->codes[i].handler == h && m->codes[i].code == status) {
            m->codes[i].count++;
            return;
        }
    }
    if (m->ncodes < MAX_CODES)
        m->codes[m->ncodes++] = (struct code_stats){h, status, 1};
}

/* ---- exposition writer ---- */

int api_expo_family(struct hs_buf *out, const char *name, const char *type, const char *help)
{
    int rc = hs_buf_printf(out, "# HELP %s ", name);
    for (const char *p = help; *p && rc == HS_OK; p++) {
        if (*p == '\\')
            rc = hs_buf_puts(out, "\\\\");
        else if (*p == '\n')
            rc = hs_buf_puts(out, "\\n");
        else
            rc = hs_buf_putc(out, *p);
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "\n# TYPE %s %s\n", name, type);
    return rc;
}

int api_expo_sample(struct hs_buf *out, const char *name, const char *const *labels, double value)
{
    int rc = hs_buf_puts(out, name);
    if (rc == HS_OK && labels != NULL && labels[0] != NULL) {
        rc = hs_buf_putc(out, '{');
        for (size_t i = 0; rc == HS_OK && labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
            rc = hs_buf_printf(out, "%s%s=\"", i ? "," : "", labels[i]);
            for (const char *p = labels[i + 1]; *p && rc == HS_OK; p++) {
                if (*p == '\\' || *p == '"')
                    rc = hs_buf_printf(out, "\\%c", *p);
                else if (*p == '\n')
                    rc = hs_buf_puts(out, "\\n");
                else
                    rc = hs_buf_putc(out, *p);
            }
            if (rc == HS_OK)
                rc = hs_buf_putc(out, '"');
        }
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '}');
    }
    char num[32];
    hs_format_double(value, num, sizeof(num));
    if (rc == HS_OK)
        rc = hs_buf_printf(out, " %s\n", num);
    return rc;
}

/* ---- process metrics from /proc/self ---- */

struct proc_stats {
    double cpu_s;
    double rss_bytes;
    double vsize_bytes;
    double open_fds;
    double max_fds;
};

static void read_proc(struct proc_stats *ps)
{
    memset(ps, 0, sizeof(*ps));
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the parenthesised command name, which may hold spaces:
         * the token after ')' is field 3 (state) of proc(5), so field k is
         * token k - 3: utime 14, stime 15, vsize 23, rss 24. */
        char *p = strrchr(buf, ')');
        unsigned long long field[22] = {0};
        size_t nf = 0;
        while (p != NULL && *p && nf < HS_ARRAY_LEN(field)) {
            while (*p == ' ' || *p == ')')
                p++;
            char *end;
            field[nf++] = strtoull(p, &end, 10);
            p = end == p ? strchr(p, ' ') : end;
        }
        if (nf == HS_ARRAY_LEN(field)) {
            long tick = sysconf(_SC_CLK_TCK);
            ps->cpu_s = (double)(field[11] + field[12]) / (double)(tick > 0 ? tick : 100);
            ps->vsize_bytes = (double)field[20];
            ps->rss_bytes = (double)field[21] * (double)sysconf(_SC_PAGESIZE);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                ps->open_fds++;
        closedir(d);
        ps->open_fds--; /* the directory stream's own descriptor */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        ps->max_fds = (double)rl.rlim_cur;
}

static int render_process(struct api_metrics *m, struct hs_buf *out)
{
    struct proc_stats ps;
    read_proc(&ps);
    const char *build[] = {"version",  HS_VERSION,  "revision", HS_COMMIT,
                           "compiler", HS_COMPILER, NULL};
    int rc = api_expo_family(out, "holoscope_build_info", "gauge",
                             "A metric with a constant '1' value labeled by version, revision "
                             "and compiler from which holoscope was built.");
    if (rc == HS_OK)
        rc = api_expo_sample(out, "holoscope_build_info", build, 1);
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds."},
        {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes."},
        {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."},
        {"process_open_fds", "gauge", "Number of open file descriptors."},
        {"process_max_fds", "gauge", "Maximum number of open file descriptors."},
        {"process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds."},
    };
    double vals[] = {ps.cpu_s,    ps.rss_bytes, ps.vsize_bytes,
                     ps.open_fds, ps.max_fds,   m->start_time_s};
    for (size_t i = 0; i < HS_ARRAY_LEN(fams) && rc == HS_OK; i++) {
        rc = api_expo_family(out, fams[i].name, fams[i].type, fams[i].help);
        if (rc == HS_OK)
            rc = api_expo_sample(out, fams[i].name, NULL, vals[i]);
    }
    return rc;
}

static int render_http(struct api_metrics *m, struct hs_buf *out)
{
    int rc = api_expo_family(out, "holoscope_http_requests_total", "counter",
                             "HTTP requests answered, by handler and status code.");
    for (size_t i = 0; i < m->ncodes && rc == HS_OK; i++) {
        char code[16];
        snprintf(code, sizeof(code), "%d", m->codes[i].code);
        const char *ls[] = {"code", code, "handler", m->handlers[m->codes[i].handler].name, NULL};
        rc = api_expo_sample(out, "holoscope_http_requests_total", ls, (double)m->codes[i].count);
    }
    if (rc == HS_OK)
        rc = api_expo_family(out, "holoscope_http_request_duration_seconds", "histogram",
                             "Time from the first byte of a request to the last byte of its "
                             "response, by handler.");
    for (size_t h = 0; h < m->nhandlers && rc == HS_OK; h++) {
        const struct handler_stats *hs = &m->handlers[h];
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS && rc == HS_OK; b++) {
            char le[32];
            if (b < NBUCKETS) {
                cum += hs->buckets[b];
                hs_format_double(duration_buckets[b], le, sizeof(le));
            } else {
                cum = hs->count;
                snprintf(le, sizeof(le), "+Inf");
            }
            const char *ls[] = {"handler", hs->name, "le", le, NULL};
            rc = api_expo_sample(out, "holoscope_http_request_duration_seconds_bucket", ls,
                                 (double)cum);
        }
        const char *ls[] = {"handler", hs->name, NULL};
        if (rc == HS_OK)
            rc = api_expo_sample(out, "holoscope_http_request_duration_seconds_sum", ls, hs->sum);
        if (rc == HS_OK)
            rc = api_expo_sample(out, "holoscope_http_request_duration_seconds_count", ls,
                                 (double)hs->count);
    }
    return rc;
}

int api_metrics_render(struct api_metrics *m, struct hs_buf *out)
{
    int rc = render_process(m, out);
    if (rc == HS_OK)
        rc = render_http(m, out);
    for (size_t i = 0; i < m->ncollectors && rc == HS_OK; i++) {
        size_t mark = out->len;
        rc = m->collectors[i].fn(m->collectors[i].arg, out);
        if (rc != HS_OK) {
            out->len = mark;
            if (out->p)
                out->p[mark] = '\0';
            hs_log(HS_LOG_WARN, "self-metrics collector failed", HS_LINT("collector", (int64_t)i),
                   HS_LSTR("err", hs_strerror(rc)));
            rc = HS_OK;
        }
    }
    return rc;
}
