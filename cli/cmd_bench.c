/* cli/cmd_bench.c — `lowbit bench` (being written). */
#include "config.h"
#include "cli.h"
#include <stdio.h>

int cmd_bench(int argc, char **argv);
int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "lowbit bench: not yet implemented\n");
    return CLI_EXIT_USAGE;
}
