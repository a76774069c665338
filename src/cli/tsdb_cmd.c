/*
 * tsdb_cmd.c - `holoscope tsdb`: offline tools on a data directory.
 *   tsdb create-blocks-from openmetrics INPUT [DATA_DIR]   backfill, as promtool
 *   tsdb list [-r] [DATA_DIR]                              the blocks of a directory
 *
 * The backfill reads an OpenMetrics file (every sample with a timestamp,
 * "# EOF" last) through the exposition parser and feeds the samples to
 * the tsdb block builder, which writes one block per aligned window.  The
 * input is mapped, not read into memory, and pages already parsed are
 * handed back to the kernel as the parse goes, so peak memory is the
 * compressed chunks plus the index of one block, whatever the file size.
 */
#include "cli/internal.h"

#include "scrape/scrape.h"
#include "tsdb/tsdb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char cli_help_tsdb[] =
    "NAME\n"
    "       holoscope tsdb - offline tools for a holoscope data directory\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope tsdb create-blocks-from openmetrics [--max-block-duration=DURATION]\n"
    "                      [--quiet] INPUT [DATA_DIR]\n"
    "       holoscope tsdb list [-r|--human-readable] [DATA_DIR]\n"
    "\n"
    "DESCRIPTION\n"
    "       create-blocks-from openmetrics\n"
    "              Backfills historical data: reads INPUT, an OpenMetrics 1.0 text file\n"
    "              in which every sample carries a timestamp and whose last line is\n"
    "              \"# EOF\", and writes its samples as persisted blocks into DATA_DIR\n"
    "              (default \"data/\", created if missing).  Samples may come in any\n"
    "              order; they are grouped by series and cut into blocks covering\n"
    "              aligned windows of the block duration.  The result is what\n"
    "              'holoscope serve --data DATA_DIR' loads at start.  DATA_DIR may be\n"
    "              the directory of an existing store as long as it is not running.\n"
    "              On success a table of the blocks written and a summary (series,\n"
    "              samples, time range) are printed.  A malformed line, a sample\n"
    "              without a timestamp or two samples of one series with the same\n"
    "              timestamp and different values stop the command with the line\n"
    "              named; blocks already written for earlier windows stay.\n"
    "\n"
    "       list   Prints the blocks of DATA_DIR (default \"data/\"): ULID, time\n"
    "              range, duration, samples, chunks, series and size on disk.  The\n"
    "              directory is only read.\n"
    "\n"
    "OPTIONS\n"
    "       --max-block-duration=DURATION\n"
    "              Longest span of one block (default 2h).  As with promtool the\n"
    "              duration used is the largest of 2h, 6h, 18h, 54h, ... (2h times a\n"
    "              power of 3) that does not exceed it; shorter values mean 2h.\n"
    "\n"
    "       --quiet\n"
    "              Print only the summary line, not the table of blocks.\n"
    "\n"
    "       -r, --human-readable\n"
    "              list: print times as RFC 3339 and sizes in units.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 on success, 1 when the input is invalid or cannot be read or a block\n"
    "       cannot be written, 2 on a wrong command line.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope tsdb create-blocks-from openmetrics history.om /var/lib/holoscope\n"
    "       holoscope tsdb create-blocks-from openmetrics --max-block-duration=1d h.om data\n"
    "       holoscope tsdb list -r /var/lib/holoscope\n";

#define DEFAULT_BLOCK_MS (2LL * 3600 * 1000)
/* Parsed pages are released in steps of this many bytes. */
#define RELEASE_STEP (16u << 20)

/* promtool's rule: the largest of 2h * 3^k not above 'max_ms' (at least 2h). */
static int64_t compatible_block_ms(int64_t max_ms)
{
    int64_t d = DEFAULT_BLOCK_MS;
    for (int k = 0; k < 10 && d <= INT64_MAX / 3 && d * 3 <= max_ms; k++)
        d *= 3;
    return d;
}

static void format_time(int64_t ms, bool human, char *out, size_t len)
{
    if (!human) {
        snprintf(out, len, "%lld", (long long)ms);
        return;
    }
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, len, "%lld", (long long)ms);
}

static void format_size(uint64_t b, bool human, char *out, size_t len)
{
    if (!human) {
        snprintf(out, len, "%llu", (unsigned long long)b);
        return;
    }
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    size_t u = 0;
    while (v >= 1024 && u + 1 < HS_ARRAY_LEN(units)) {
        v /= 1024;
        u++;
    }
    snprintf(out, len, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

static void print_blocks(FILE *out, const struct tsdb_block_info *b, size_t n, bool human)
{
    fprintf(out, "%-26s  %-20s  %-20s  %-9s  %11s  %10s  %10s  %12s\n", "BLOCK ULID", "MIN TIME",
            "MAX TIME", "DURATION", "NUM SAMPLES", "NUM CHUNKS", "NUM SERIES", "SIZE");
    for (size_t i = 0; i < n; i++) {
        char mn[48], mx[48], dur[32], sz[32];
        format_time(b[i].min_time_ms, human, mn, sizeof(mn));
        format_time(b[i].max_time_ms, human, mx, sizeof(mx));
        hs_format_duration(b[i].max_time_ms - b[i].min_time_ms, dur, sizeof(dur));
        format_size(b[i].size_bytes, human, sz, sizeof(sz));
        fprintf(out, "%-26s  %-20s  %-20s  %-9s  %11llu  %10llu  %10llu  %12s\n", b[i].ulid, mn, mx,
                dur, (unsigned long long)b[i].num_samples, (unsigned long long)b[i].num_chunks,
                (unsigned long long)b[i].num_series, sz);
    }
}

/* ---- create-blocks-from openmetrics ----------------------------------------- */

/* A label set under construction: NUL-terminated copies of one sample's strings. */
struct lset {
    char *buf;
    size_t cap;
    struct hs_label v[SCRAPE_MAX_LABELS + 1];
    struct hs_labels ls;
};

static int lset_build(struct lset *l, const struct scrape_entry *e)
{
    size_t need = e->name.len + 1 + sizeof("__name__");
    for (size_t i = 0; i < e->nlabels; i++)
        need += e->labels[i].name.len + e->labels[i].value.len + 2;
    if (need > l->cap) {
        size_t cap = need * 2;
        char *nb = hs_realloc(l->buf, cap);
        if (nb == NULL)
            return HS_ENOMEM;
        l->buf = nb;
        l->cap = cap;
    }
    char *p = l->buf;
    size_t n = 0;
    l->v[n].name = "__name__";
    memcpy(p, e->name.p, e->name.len);
    p[e->name.len] = '\0';
    l->v[n++].value = p;
    p += e->name.len + 1;
    for (size_t i = 0; i < e->nlabels && n < HS_ARRAY_LEN(l->v); i++) {
        const struct scrape_label *sl = &e->labels[i];
        memcpy(p, sl->name.p, sl->name.len);
        p[sl->name.len] = '\0';
        l->v[n].name = p;
        p += sl->name.len + 1;
        memcpy(p, sl->value.p, sl->value.len);
        p[sl->value.len] = '\0';
        l->v[n++].value = p;
        p += sl->value.len + 1;
    }
    /* Insertion sort by name: a handful of labels, often nearly sorted. */
    for (size_t i = 1; i < n; i++) {
        struct hs_label x = l->v[i];
        size_t j = i;
        while (j > 0 && strcmp(l->v[j - 1].name, x.name) > 0) {
            l->v[j] = l->v[j - 1];
            j--;
        }
        l->v[j] = x;
    }
    l->ls.v = l->v;
    l->ls.n = n;
    return HS_OK;
}

struct input {
    const char *p;
    size_t len;
    int fd;
};

static int input_open(const char *path, struct input *in, struct hs_err *err)
{
    memset(in, 0, sizeof(*in));
    in->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0)
        return hs_err_set(err, HS_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(in->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(in->fd);
        return hs_err_set(err, HS_EIO, "%s: not a regular file", path);
    }
    in->len = (size_t)sb.st_size;
    if (in->len == 0) {
        in->p = "";
        return HS_OK;
    }
    void *m = mmap(NULL, in->len, PROT_READ, MAP_PRIVATE, in->fd, 0);
    if (m == MAP_FAILED) {
        close(in->fd);
        return hs_err_set(err, HS_EIO, "%s: mmap: %s", path, strerror(errno));
    }
    HS_IGNORE_RESULT(madvise(m, in->len, MADV_SEQUENTIAL));
    in->p = m;
    return HS_OK;
}

static void input_close(struct input *in)
{
    if (in->len > 0)
        munmap((void *)in->p, in->len);
    if (in->fd >= 0)
        close(in->fd);
}

/*
 * Drops the mapped pages before 'upto' from memory.  The mapping is
 * private and never written, so a page touched again is simply read back
 * from the file: strings the parser still points at stay valid.
 */
static void input_release(struct input *in, const char *upto, size_t *released)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t off = (size_t)(upto - in->p);
    if (off < *released + RELEASE_STEP + (1u << 20))
        return;
    size_t end = (off - (1u << 20)) / page * page;
    if (end > *released) {
        HS_IGNORE_RESULT(madvise((char *)in->p + *released, end - *released, MADV_DONTNEED));
        *released = end;
    }
}

static int backfill(const char *input, const char *data_dir, int64_t block_ms, bool quiet)
{
    const char *me = "holoscope tsdb create-blocks-from openmetrics";
    struct hs_err err = {0};
    struct input in;
    if (input_open(input, &in, &err) != HS_OK) {
        fprintf(stderr, "%s: %s\n", me, err.msg);
        return CLI_EXIT_FAILURE;
    }
    struct tsdb_block_builder *b = tsdb_block_builder_new(data_dir, block_ms, &err);
    if (b == NULL) {
        fprintf(stderr, "%s: %s\n", me, err.msg);
        input_close(&in);
        return CLI_EXIT_FAILURE;
    }
    struct scrape_parser p;
    scrape_parser_init(&p, in.p, in.len, SCRAPE_FORMAT_OPENMETRICS);
    struct lset l;
    memset(&l, 0, sizeof(l));
    size_t released = 0;
    bool seen_eof = false;
    int rc = HS_OK, code = CLI_EXIT_OK;
    uint64_t n = 0;
    for (;;) {
        struct scrape_entry e;
        rc = scrape_parser_next(&p, &e, &err);
        if (rc <= 0)
            break;
        if (e.kind == SCRAPE_ENTRY_EOF) {
            seen_eof = true;
            continue;
        }
        if (e.kind != SCRAPE_ENTRY_SAMPLE)
            continue;
        rc = lset_build(&l, &e);
        if (rc != HS_OK) {
            hs_err_set(&err, rc, "out of memory");
            break;
        }
        if (!e.has_ts) {
            struct hs_buf lb;
            hs_buf_init(&lb, 4096);
            rc = hs_labels_format(&l.ls, &lb);
            hs_err_set(&err, HS_EPARSE, "line %d: expected timestamp for series %s, got none",
                       e.line, rc == HS_OK && lb.p ? lb.p : "(too long)");
            hs_buf_cleanup(&lb);
            rc = HS_EPARSE;
            break;
        }
        rc = tsdb_block_builder_add(b, &l.ls, e.t_ms, e.value, &err);
        if (rc != HS_OK) {
            char msg[sizeof(err.msg)];
            snprintf(msg, sizeof(msg), "%s", err.msg);
            hs_err_set(&err, rc, "line %d: %s", e.line, msg);
            break;
        }
        if ((++n & 0x3fff) == 0)
            input_release(&in, e.name.p, &released);
    }
    if (rc == HS_OK && !seen_eof) {
        /* The parser insists on "# EOF" already; this keeps the promise whatever it does. */
        rc = hs_err_set(&err, HS_EPARSE, "unexpected end of input: no \"# EOF\" line");
    }
    scrape_parser_cleanup(&p);
    hs_free(l.buf);
    if (rc != HS_OK) {
        fprintf(stderr, "%s: %s: %s\n", me, input, err.msg);
        code = CLI_EXIT_FAILURE;
        goto out;
    }
    input_close(&in);
    in.len = 0;
    in.fd = -1;
    struct tsdb_backfill_stats st;
    rc = tsdb_block_builder_finish(b, &st, &err);
    if (rc != HS_OK) {
        fprintf(stderr, "%s: writing blocks into %s: %s\n", me, data_dir, err.msg);
        code = CLI_EXIT_FAILURE;
        goto out;
    }
    if (!quiet && st.n_blocks > 0)
        print_blocks(stdout, st.blocks, st.n_blocks, false);
    if (st.n_blocks == 0) {
        printf("no samples in %s: no block written\n", input);
    } else {
        char mn[48], mx[48];
        format_time(st.min_time_ms, true, mn, sizeof(mn));
        format_time(st.max_time_ms, true, mx, sizeof(mx));
        printf("wrote %zu block%s into %s: %llu series, %llu samples, time range %lld .. %lld "
               "(%s .. %s)",
               st.n_blocks, st.n_blocks == 1 ? "" : "s", data_dir, (unsigned long long)st.series,
               (unsigned long long)st.samples, (long long)st.min_time_ms, (long long)st.max_time_ms,
               mn, mx);
        if (st.duplicates_dropped > 0)
            printf(", %llu duplicate samples dropped", (unsigned long long)st.duplicates_dropped);
        printf("\n");
    }
    tsdb_backfill_stats_cleanup(&st);
out:
    tsdb_block_builder_free(b);
    input_close(&in);
    return code;
}

static int cmd_create_blocks(int argc, char **argv)
{
    const char *me = "holoscope tsdb create-blocks-from";
    if (argc < 1) {
        fprintf(stderr, "%s: missing the input format (openmetrics)\n", me);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[0], "openmetrics") != 0) {
        fprintf(stderr, "%s: unknown input format \"%s\" (only openmetrics is supported)\n", me,
                argv[0]);
        return CLI_EXIT_USAGE;
    }
    int64_t max_ms = DEFAULT_BLOCK_MS;
    bool quiet = false;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
        } else if (!only_pos && strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (!only_pos && hs_has_prefix(a, "--max-block-duration")) {
            if (a[20] == '=') {
                val = a + 21;
            } else if (a[20] == '\0' && i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "%s: %s needs a value\n", me, "--max-block-duration");
                return CLI_EXIT_USAGE;
            }
            if (hs_parse_duration_ms(val, &max_ms) != HS_OK || max_ms <= 0) {
                fprintf(stderr, "%s: invalid --max-block-duration \"%s\" (e.g. 2h, 1d)\n", me, val);
                return CLI_EXIT_USAGE;
            }
        } else if (!only_pos && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "%s: unknown option \"%s\" (see holoscope tsdb --help)\n", me, a);
            return CLI_EXIT_USAGE;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", me, a);
            return CLI_EXIT_USAGE;
        }
    }
    if (npos < 1) {
        fprintf(stderr, "%s openmetrics: missing INPUT (see holoscope tsdb --help)\n", me);
        return CLI_EXIT_USAGE;
    }
    return backfill(pos[0], pos[1] ? pos[1] : "data/", compatible_block_ms(max_ms), quiet);
}

/* ---- list -------------------------------------------------------------------- */

static int cmd_list(int argc, char **argv)
{
    const char *me = "holoscope tsdb list";
    bool human = false;
    const char *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0 || strcmp(argv[i], "--human-readable") == 0) {
            human = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "%s: unknown option \"%s\"\n", me, argv[i]);
            return CLI_EXIT_USAGE;
        } else if (dir == NULL) {
            dir = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", me, argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (dir == NULL)
        dir = "data/";
    struct tsdb_block_info *b = NULL;
    size_t n = 0;
    struct hs_err err = {0};
    if (tsdb_blocks_list(dir, &b, &n, &err) != HS_OK) {
        fprintf(stderr, "%s: %s\n", me, err.msg);
        return CLI_EXIT_FAILURE;
    }
    print_blocks(stdout, b, n, human);
    hs_free(b);
    return CLI_EXIT_OK;
}

int cli_cmd_tsdb(int argc, char **argv, char **envp)
{
    (void)envp;
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_tsdb, stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        fprintf(stderr, "holoscope tsdb: missing a subcommand (create-blocks-from, list; see "
                        "holoscope tsdb --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "create-blocks-from") == 0)
        return cmd_create_blocks(argc - 2, argv + 2);
    if (strcmp(argv[1], "list") == 0)
        return cmd_list(argc - 2, argv + 2);
    fprintf(stderr, "holoscope tsdb: unknown subcommand \"%s\" (see holoscope tsdb --help)\n",
            argv[1]);
    return CLI_EXIT_USAGE;
}
