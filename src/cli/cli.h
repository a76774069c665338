/*
 * cli.h - the `holoscope` command line: subcommand dispatch, option
 * parsing, man-style help.
 *
 * Threading: main thread only.
 */
#ifndef HS_CLI_H
#define HS_CLI_H

/* Exit codes of every subcommand. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

/* Runs `holoscope argv[1] ...` and returns the process exit code. */
int cli_main(int argc, char **argv);

#endif
