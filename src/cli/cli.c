/*
 * cli.c - `holoscope <command> [options]`: the command table, dispatch,
 * `help`, `version` and the man-style top-level help.
 *
 * Every command prints its own man-style help for -h/--help.  Exit codes
 * are the same everywhere: 0 ok, 1 runtime failure, 2 usage or
 * configuration error.
 */
#include "cli/cli.h"

#include "cli/internal.h"

#include "buildinfo.h"

#include <stdio.h>
#include <string.h>

extern char **environ;

static int cmd_version(int argc, char **argv, char **envp);
static int cmd_help(int argc, char **argv, char **envp);

static const char help_version[] =
    "NAME\n"
    "       holoscope version - print version and build information\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope version\n"
    "       holoscope --version\n"
    "\n"
    "DESCRIPTION\n"
    "       Prints the version, the source revision, the compiler and the build type.\n"
    "\n"
    "EXIT STATUS\n"
    "       0.\n";

static const char help_help[] =
    "NAME\n"
    "       holoscope help - show help for holoscope or one of its commands\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope help [COMMAND]\n"
    "\n"
    "EXIT STATUS\n"
    "       0, or 2 when COMMAND is unknown.\n";

static const struct cli_command commands[] = {
    {"demo", "a simulated LLM fleet, observed end to end", cli_help_demo, cli_cmd_demo},
    {"serve", "run the store, API, dashboard and collectors", cli_help_serve, cli_cmd_serve},
    {"check", "validate a configuration file or metrics exposition", cli_help_check, cli_cmd_check},
    {"promql-test", "run PromQL acceptance-test scripts", cli_help_promql_test,
     cli_cmd_promql_test},
    {"tsdb", "offline data-directory tools: backfill blocks, list blocks", cli_help_tsdb,
     cli_cmd_tsdb},
    {"rules", "check rule files or print the default pack", cli_help_rules, cli_cmd_rules},
    {"sim", "run simulated inference engines and GPUs", cli_help_sim, cli_cmd_sim},
    {"bench", "load an OpenAI-compatible endpoint, report latency", cli_help_bench, cli_cmd_bench},
    {"capture", "analyse captured requests: quality scores, drift", cli_help_capture,
     cli_cmd_capture},
    {"grafana-dashboard", "print the model view as a Grafana dashboard", cli_help_grafana,
     cli_cmd_grafana},
    {"version", "print version and build information", help_version, cmd_version},
    {"help", "show help for a command", help_help, cmd_help},
};

static const char top_help[] =
    "NAME\n"
    "       holoscope - observability for LLM inference: generation quality and\n"
    "       infrastructure on one time axis\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope COMMAND [OPTIONS]\n"
    "       holoscope --version\n"
    "       holoscope --help\n"
    "\n"
    "DESCRIPTION\n"
    "       holoscope scrapes inference servers and GPU exporters, stores the samples\n"
    "       in its embedded time-series store, and serves the Prometheus HTTP API,\n"
    "       alerts and a dashboard from one process.\n"
    "\n"
    "COMMANDS\n";

static const char top_help_tail[] =
    "\n"
    "       Run 'holoscope COMMAND --help' for the options of a command.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 on success, 1 on a runtime failure, 2 on a usage or configuration error.\n";

static void print_top_help(FILE *out)
{
    fputs(top_help, out);
    for (size_t i = 0; i < HS_ARRAY_LEN(commands); i++)
        fprintf(out, "       %-18s %s\n", commands[i].name, commands[i].summary);
    fputs(top_help_tail, out);
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < HS_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_version(int argc, char **argv, char **envp)
{
    (void)envp;
    if (cli_wants_help(argc, argv)) {
        fputs(help_version, stdout);
        return CLI_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "holoscope version: unexpected argument \"%s\"\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    printf("holoscope, version %s (revision: %s)\n", HS_VERSION, HS_COMMIT);
    printf("  compiler:   %s\n", HS_COMPILER);
    printf("  build type: %s\n", HS_BUILD_TYPE);
    return CLI_EXIT_OK;
}

static int cmd_help(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc < 2 || cli_wants_help(argc, argv)) {
        if (argc >= 2)
            fputs(help_help, stdout);
        else
            print_top_help(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *c = find_command(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "holoscope help: unknown command \"%s\"\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    char *sub[] = {argv[1], "--help", NULL};
    return c->run(2, sub, environ);
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        print_top_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_top_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0)
        name = "version";
    const struct cli_command *c = find_command(name);
    if (c == NULL) {
        fprintf(stderr, "holoscope: unknown command \"%s\" (see holoscope --help)\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1, environ);
}
