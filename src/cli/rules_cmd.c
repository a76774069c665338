/*
 * rules_cmd.c - `holoscope rules check FILES...` validates rule files as
 * `promtool check rules` does (every problem as FILE:LINE:COL: message),
 * and `holoscope rules default` prints the embedded default rule pack.
 */
#include "cli/internal.h"

#include "rules/rules.h"

#include <stdio.h>
#include <string.h>

const char cli_help_rules[] =
    "NAME\n"
    "       holoscope rules - check rule files, print the default rule pack\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope rules check FILE...\n"
    "       holoscope rules default\n"
    "\n"
    "DESCRIPTION\n"
    "       Rule files are in Prometheus' format: groups with a name, an optional\n"
    "       interval and limit, and rules that are either recording rules (record,\n"
    "       expr, labels) or alerting rules (alert, expr, for, keep_firing_for,\n"
    "       labels, annotations).  Labels and annotations of alerting rules are\n"
    "       templates: {{ $labels.NAME }}, {{ $value }}, {{ $externalLabels.NAME }},\n"
    "       the functions humanize, humanize1024, humanizeDuration,\n"
    "       humanizePercentage, humanizeTimestamp, printf, toUpper, toLower and\n"
    "       title, and pipelines such as {{ $value | humanize }}.\n"
    "\n"
    "       check FILE...\n"
    "              Validates each FILE as `promtool check rules` does: YAML syntax,\n"
    "              unknown fields, a rule with both or neither of record and alert,\n"
    "              fields a recording rule may not have, metric, label and\n"
    "              annotation names, PromQL expressions (which must give an instant\n"
    "              vector or a scalar), templates, durations and repeated group\n"
    "              names.  Every problem is printed as FILE:LINE:COL: message; a\n"
    "              valid file prints \"FILE: SUCCESS: N rules found\".\n"
    "\n"
    "       default\n"
    "              Prints the default rule pack embedded in the binary: recording\n"
    "              rules for the unified LLM signals (token and request rates, TTFT\n"
    "              and inter-token latency quantiles, truncation and error ratios,\n"
    "              KV-cache use, queue depth, GPU utilisation and memory per model\n"
    "              and GPU, cost per million output tokens) and alerts on latency,\n"
    "              saturation, errors, GPU health, cost and scrape health.  Save it,\n"
    "              edit it, and load the copy instead of the embedded pack.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 when every FILE is valid, 1 when some file has a problem or cannot be\n"
    "       read, 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope rules check /etc/holoscope/rules/*.yml\n"
    "       holoscope rules default > my-rules.yml\n";

static void print_diag(void *arg, const char *msg)
{
    int *count = arg;
    fprintf(stderr, "  %s\n", msg);
    (*count)++;
}

static int rules_check(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "holoscope rules check: missing FILE (see holoscope rules --help)\n");
        return CLI_EXIT_USAGE;
    }
    int status = CLI_EXIT_OK;
    for (int i = 0; i < argc; i++) {
        struct rules_set *s = rules_set_new();
        if (!s) {
            fprintf(stderr, "holoscope rules check: out of memory\n");
            return CLI_EXIT_FAILURE;
        }
        int count = 0;
        struct hs_err err;
        hs_err_clear(&err);
        printf("Checking %s\n", argv[i]);
        fflush(stdout);
        int rc = rules_set_add_file(s, argv[i], print_diag, &count, &err);
        if (rc == HS_OK) {
            size_t nr = 0, na = 0;
            rules_set_count(s, &nr, &na);
            printf("  SUCCESS: %zu rules found\n", nr + na);
        } else {
            if (count == 0)
                fprintf(stderr, "  %s\n", err.msg);
            printf("  FAILED: %d problem%s\n", count ? count : 1, count > 1 ? "s" : "");
            status = CLI_EXIT_FAILURE;
        }
        rules_set_free(s);
    }
    fflush(stdout);
    return status;
}

int cli_cmd_rules(int argc, char **argv, char **envp)
{
    (void)envp;
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_rules, stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        fprintf(stderr, "holoscope rules: missing subcommand 'check' or 'default' "
                        "(see holoscope rules --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "check") == 0)
        return rules_check(argc - 2, argv + 2);
    if (strcmp(argv[1], "default") == 0) {
        if (argc > 2) {
            fprintf(stderr, "holoscope rules default: takes no arguments\n");
            return CLI_EXIT_USAGE;
        }
        size_t len = 0;
        const char *text = rules_default_pack(&len);
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
            fprintf(stderr, "holoscope rules default: write error\n");
            return CLI_EXIT_FAILURE;
        }
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "holoscope rules: unknown subcommand \"%s\" (see holoscope rules --help)\n",
            argv[1]);
    return CLI_EXIT_USAGE;
}
