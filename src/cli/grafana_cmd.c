/*
 * grafana_cmd.c - `holoscope grafana-dashboard`: prints holoscope's model
 * view as a Grafana dashboard (JSON), the same document serve answers at
 * GET /api/v1/grafana-dashboard.  The generator lives in src/ui/grafana.c.
 */
#include "cli/internal.h"

#include "ui/grafana.h"

#include <stdio.h>
#include <string.h>

const char cli_help_grafana[] =
    "NAME\n"
    "       holoscope grafana-dashboard - print the model view as a Grafana dashboard\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope grafana-dashboard [--output FILE]\n"
    "\n"
    "DESCRIPTION\n"
    "       Prints a Grafana dashboard (JSON, schema version 39) with the rows and\n"
    "       panels of holoscope's model view: generation quality on top (TTFT with\n"
    "       tokens/s on a right axis, inter-token latency percentiles, end-to-end\n"
    "       latency of engine and gateway, truncation rate with a 5% threshold,\n"
    "       errors by kind, quality score and drift, quality check failures),\n"
    "       resources below (GPU utilisation and memory, KV-cache usage, running\n"
    "       and waiting requests and replicas, GPU power and temperature, host\n"
    "       CPU), and a fleet table with one row per model.\n"
    "\n"
    "       Queries read the recording rules of the default rule pack (see\n"
    "       holoscope rules default), the gateway's gen_ai_* histograms and the\n"
    "       holoscope_quality_* series.  The data source is the variable\n"
    "       ${datasource} (any Prometheus-compatible source: holoscope itself,\n"
    "       Prometheus, Mimir, Thanos, VictoriaMetrics); the variables model,\n"
    "       instance and gpu filter the panels and default to All.\n"
    "\n"
    "       A running holoscope serves the same dashboard at\n"
    "       GET /api/v1/grafana-dashboard.\n"
    "\n"
    "OPTIONS\n"
    "       --output FILE, -o FILE\n"
    "              Write the dashboard to FILE instead of standard output.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 on success, 1 when the file cannot be written, 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope grafana-dashboard > holoscope.json\n"
    "       curl -s localhost:9090/api/v1/grafana-dashboard | jq .panels[].title\n";

int cli_cmd_grafana(int argc, char **argv, char **envp)
{
    (void)envp;
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_grafana, stdout);
        return CLI_EXIT_OK;
    }
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--output") == 0 || strcmp(argv[i], "-o") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else {
            fprintf(stderr,
                    "holoscope grafana-dashboard: unexpected argument \"%s\" (see holoscope "
                    "grafana-dashboard --help)\n",
                    argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err err;
    hs_err_clear(&err);
    int status = CLI_EXIT_OK;
    if (ui_grafana_dashboard(&b, &err) != HS_OK) {
        fprintf(stderr, "holoscope grafana-dashboard: %s\n", err.msg);
        status = CLI_EXIT_FAILURE;
    } else if (path != NULL) {
        if (hs_write_file_atomic(path, b.p, b.len, &err) != HS_OK) {
            fprintf(stderr, "holoscope grafana-dashboard: %s\n", err.msg);
            status = CLI_EXIT_FAILURE;
        }
    } else if (fwrite(b.p, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
        fprintf(stderr, "holoscope grafana-dashboard: cannot write to standard output\n");
        status = CLI_EXIT_FAILURE;
    }
    hs_buf_cleanup(&b);
    return status;
}
