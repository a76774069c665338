/*
 * check.c - `holoscope check config FILE...`: validates configuration
 * files without starting anything, naming file, line and column of the
 * first problem in each.
 */
#include "cli/internal.h"

#include <stdio.h>
#include <string.h>

const char cli_help_check[] =
    "NAME\n"
    "       holoscope check - validate configuration and input files\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope check config FILE...\n"
    "\n"
    "DESCRIPTION\n"
    "       check config  parses each FILE as a holoscope configuration and checks\n"
    "                     every key, type and value as serve would, without starting\n"
    "                     anything. Problems are reported as FILE:LINE:COL: message.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 when every file is valid; 2 when a file is invalid or the command line\n"
    "       is wrong; 1 when a file cannot be read.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope check config holoscope.yml\n";

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
    fprintf(stderr, "holoscope check: unknown check \"%s\" (see holoscope check --help)\n",
            argv[1]);
    return CLI_EXIT_USAGE;
}
