/* cli/cmd_check.c — `lowbit check` (being written). */
#include "config.h"
#include "cli.h"
#include <stdio.h>

int cmd_check(int argc, char **argv);
int cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "lowbit check: not yet implemented\n");
    return CLI_EXIT_USAGE;
}
