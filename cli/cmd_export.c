/* cli/cmd_export.c — `lowbit export`: weights of a checkpoint as a
 * safetensors file with PyTorch-style names (doc/models.md: timm ViT,
 * nanoGPT, HF BertModel), without optimizer state.
 *
 *   lowbit export --checkpoint FILE --out FILE.safetensors
 */
#include "config.h"
#include "cli.h"
#include "lowbit/train.h"

#include <stdio.h>
#include <string.h>

int cmd_export(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("export");
    const char *checkpoint = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (cli_is_help(o)) {
            printf("%s", cmd->usage);
            return CLI_EXIT_OK;
        } else if (strcmp(o, "--checkpoint") == 0) {
            if (!(checkpoint = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--out") == 0) {
            if (!(out = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", o);
        }
    }
    if (!checkpoint || !out) return cli_usage_error(cmd, "--checkpoint and --out are required");
    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    lb_model *model = NULL;
    lb_status st = lb_checkpoint_load_model(ctx, checkpoint, lb_backend_ref(), 1, &model, NULL);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, checkpoint);
        goto done;
    }
    st = lb_model_export(ctx, model, out);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, out);
        goto done;
    }
    printf("exported %lld parameters (%s) to %s\n", (long long)lb_model_num_params(model),
           lb_model_kind_name(lb_model_get_config(model)->kind), out);
done:
    lb_model_free(model);
    lb_ctx_free(ctx);
    return rc;
}
