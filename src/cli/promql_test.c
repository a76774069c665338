/*
 * promql_test.c - `holoscope promql-test FILES...`: runs promqltest
 * scripts (Prometheus' PromQL acceptance-test format) against holoscope's
 * own PromQL engine and prints per-file results and "N passed, N failed".
 */
#include "cli/internal.h"

#include "promql/promql.h"

#include <stdio.h>
#include <string.h>

const char cli_help_promql_test[] =
    "NAME\n"
    "       holoscope promql-test - run PromQL acceptance-test scripts\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope promql-test FILE...\n"
    "\n"
    "DESCRIPTION\n"
    "       Each FILE is a script in the promqltest format of Prometheus' PromQL\n"
    "       acceptance suite: 'load' blocks put samples into an empty in-memory store,\n"
    "       'eval' commands run queries on holoscope's PromQL engine and compare the\n"
    "       results with the expected ones, 'clear' empties the store. Every failing\n"
    "       case is printed as FILE:LINE with what was expected and what came back;\n"
    "       each file gets a summary line and the run ends with\n"
    "       'N passed, N failed' (', N skipped' for native-histogram cases, which\n"
    "       holoscope does not evaluate).\n"
    "\n"
    "EXIT STATUS\n"
    "       0 when no case failed, 1 when some case failed, 2 when a file could not\n"
    "       be read or parsed, or no FILE was given.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope promql-test ../shared/conformance/promql/testdata/*.test\n";

int cli_cmd_promql_test(int argc, char **argv, char **envp)
{
    (void)envp;
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_promql_test, stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        fprintf(stderr, "holoscope promql-test: missing FILE (see holoscope promql-test --help)\n");
        return CLI_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0) {
            fprintf(stderr, "holoscope promql-test: unknown option \"%s\"\n", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    struct promql_test_totals totals = {0};
    int rc = promql_test_run_files(argv + 1, argc - 1, stdout, &totals);
    fflush(stdout);
    return rc == 0 ? CLI_EXIT_OK : rc == 1 ? CLI_EXIT_FAILURE : CLI_EXIT_USAGE;
}
