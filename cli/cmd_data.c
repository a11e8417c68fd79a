/* cli/cmd_data.c — `lowbit data`: load and summarise a dataset. (placeholder until datasets/ lands) */
#include "config.h"
#include "cli.h"
#include <stdio.h>

int cmd_data(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("data");
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("%s", cmd->usage);
        return CLI_EXIT_OK;
    }
    return cli_usage_error(cmd, "datasets not built yet");
}
