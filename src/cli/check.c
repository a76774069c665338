/*
 * check.c - `holoscope check`: validates inputs without starting anything.
 *   check config FILE...            configuration files, naming file:line:col
 *   check metrics [--openmetrics]   an exposition read from stdin, as promtool
 */
#include "cli/internal.h"

#include "scrape/scrape.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char cli_help_check[] =
    "NAME\n"
    "       holoscope check - validate configuration and input files\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope check config FILE...\n"
    "       holoscope check metrics [--openmetrics] < FILE\n"
    "\n"
    "DESCRIPTION\n"
    "       check config  parses each FILE as a holoscope configuration and checks\n"
    "                     every key, type and value as serve would, without starting\n"
    "                     anything. Problems are reported as FILE:LINE:COL: message.\n"
    "\n"
    "       check metrics reads a metrics exposition from standard input and checks it\n"
    "                     against the Prometheus text format 0.0.4, or with\n"
    "                     --openmetrics against every rule of OpenMetrics 1.0. The first\n"
    "                     error is printed with its line. Lint findings in promtool's\n"
    "                     style (missing help, counters without _total, ...) are\n"
    "                     printed as warnings and do not fail the check.\n"
    "\n"
    "EXIT STATUS\n"
    "       check config: 0 when every file is valid; 2 when a file is invalid or the\n"
    "       command line is wrong; 1 when a file cannot be read.\n"
    "       check metrics: 0 for valid input, 1 for invalid input (as promtool), 2 for a\n"
    "       wrong command line.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope check config holoscope.yml\n"
    "       curl -s http://127.0.0.1:8000/metrics | holoscope check metrics\n";

/* Standard input is read up to this size. */
#define MAX_METRICS_BYTES (256u << 20)

static int check_config(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "holoscope check config: missing FILE (see holoscope check --help)\n");
        return CLI_EXIT_USAGE;
    }
    int worst = CLI_EXIT_OK;
    for (int i = 0; i < argc; i++) {
        struct cli_config c;
        cli_config_init(&c);
        struct hs_err err = {0};
        char *args[] = {"--config", argv[i]};
        int rest[2], nrest = 0;
        /* The environment is deliberately ignored: the file alone is checked. */
        char *noenv[] = {NULL};
        int rc = cli_config_load(&c, 2, args, noenv, rest, &nrest, &err);
        if (rc == HS_OK)
            rc = cli_config_validate(&c, &err);
        if (rc == HS_OK) {
            printf("%s: valid\n", argv[i]);
        } else {
            /* Messages from the file already start with the path. */
            if (strncmp(err.msg, argv[i], strlen(argv[i])) == 0)
                fprintf(stderr, "%s\n", err.msg);
            else
                fprintf(stderr, "%s: %s\n", argv[i], err.msg);
            int code = rc == HS_ENOTFOUND || rc == HS_EIO ? CLI_EXIT_FAILURE : CLI_EXIT_USAGE;
            if (code > worst || worst == CLI_EXIT_OK)
                worst = code;
        }
        cli_config_cleanup(&c);
    }
    return worst;
}

static int check_metrics(int argc, char **argv)
{
    int format = SCRAPE_FORMAT_TEXT;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--openmetrics") == 0) {
            format = SCRAPE_FORMAT_OPENMETRICS;
        } else {
            fprintf(stderr,
                    "holoscope check metrics: unexpected argument \"%s\" (the input is "
                    "read from standard input)\n",
                    argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    struct hs_buf in;
    hs_buf_init(&in, MAX_METRICS_BYTES);
    char chunk[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n == 0)
            break;
        if (n < 0) {
            perror("holoscope check metrics: reading standard input");
            hs_buf_cleanup(&in);
            return CLI_EXIT_FAILURE;
        }
        if (hs_buf_append(&in, chunk, (size_t)n) != HS_OK) {
            fprintf(stderr, "holoscope check metrics: input larger than %u MiB\n",
                    MAX_METRICS_BYTES >> 20);
            hs_buf_cleanup(&in);
            return CLI_EXIT_FAILURE;
        }
    }
    struct hs_buf report;
    hs_buf_init(&report, 0);
    struct hs_err err = {0};
    int rc = scrape_check_metrics(in.p ? in.p : "", in.len, format, &report, &err);
    if (report.len > 0) {
        /* promtool prints lint problems one per line; so do we, as warnings. */
        fputs(report.p, stderr);
    }
    if (rc != HS_OK)
        fprintf(stderr, "error while linting: %s\n", err.msg);
    hs_buf_cleanup(&report);
    hs_buf_cleanup(&in);
    return rc == HS_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cli_cmd_check(int argc, char **argv, char **envp)
{
    (void)envp;
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_check, stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        fprintf(stderr, "holoscope check: missing what to check (see holoscope check --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "config") == 0)
        return check_config(argc - 2, argv + 2);
    if (strcmp(argv[1], "metrics") == 0)
        return check_metrics(argc - 2, argv + 2);
    fprintf(stderr, "holoscope check: unknown check \"%s\" (see holoscope check --help)\n",
            argv[1]);
    return CLI_EXIT_USAGE;
}
