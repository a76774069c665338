/*
 * main.c - wiring only: hand the command line to the CLI and return its
 * exit status (0 ok, 1 runtime failure, 2 usage or configuration error).
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
