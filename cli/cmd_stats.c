/* cli/cmd_stats.c — `lowbit stats`: outlier statistics of a model's
 * activations (per-layer infinity norm and kurtosis as Bondarenko et al.
 * 2023 define them) and its attention no-op behaviour, on evaluation data.
 *
 *   lowbit stats --checkpoint FILE [--data SPEC] [--limit N] [--batch N]
 *                [--max-len N] [--kurtosis-batches N] [--json FILE]
 *                [--backend cpu|ref] [--threads N]
 *
 * lowbit/stats.h defines every number; lowbit/ptq.h the data specs.
 */
#include "config.h"
#include "cli.h"
#include "lowbit/minilm.h"
#include "lowbit/ptq.h"
#include "lowbit/stats.h"

#include <stdio.h>
#include <string.h>

int cmd_stats(int argc, char **argv);

const char cmd_stats_usage[] =
    "usage: lowbit stats --checkpoint FILE [--data SPEC] [--limit N] [--batch N] [--max-len N]\n"
    "                    [--kurtosis-batches N] [--json FILE] [--backend cpu|ref] [--threads N]\n"
    "Outlier statistics on evaluation data (Bondarenko et al. 2023, section 3): per layer\n"
    "and monitored tensor the mean over sequences of the infinity norm and of the kurtosis\n"
    "mu4/(s^4+1e-6) of the sequence's activations, the paper's summary numbers, and the\n"
    "attention mass each head puts on the first token (the 'no-op' sink).\n"
    "  --checkpoint FILE   a checkpoint (lowbit train / import) or a quantized model (lowbit ptq)\n"
    "  --data SPEC         fashion-mnist | text[:SPEC] | sentences[:SPEC] | lines:FILE\n"
    "                      (default: the training data; sentences for imported models)\n"
    "  --limit N           examples (images, windows, lines) to use (default 256; 0 = all)\n"
    "  --batch N           examples per forward pass (default 16)\n"
    "  --max-len N         tokens per sentence for sentences/lines (default: embed.max_len)\n"
    "  --kurtosis-batches N  average the kurtosis over the first N batches (default: 257\n"
    "                      bert, 101 otherwise, as the authors' scripts)\n"
    "  --json FILE         also write everything as JSON\n"
    "  --backend B         cpu (default) or ref\n"
    "  --threads N         OpenMP threads\n";

static const cli_command stats_command = {"stats", "outlier statistics of a model on data",
                                          cmd_stats_usage, cmd_stats};

int cmd_stats(int argc, char **argv)
{
    const cli_command *cmd = &stats_command;
    const char *checkpoint = NULL, *data = NULL, *json = NULL, *backend_name = "cpu";
    int64_t limit = 256, batch = 16, max_len = 0, kbatches = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (cli_is_help(o)) {
            fputs(cmd->usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(o, "--checkpoint") == 0) {
            if (!(checkpoint = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--data") == 0) {
            if (!(data = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--json") == 0) {
            if (!(json = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--backend") == 0) {
            if (!(backend_name = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--limit") == 0 || strcmp(o, "--batch") == 0 ||
                   strcmp(o, "--max-len") == 0 || strcmp(o, "--kurtosis-batches") == 0 ||
                   strcmp(o, "--threads") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
            int64_t *dst = strcmp(o, "--limit") == 0     ? &limit
                           : strcmp(o, "--batch") == 0   ? &batch
                           : strcmp(o, "--max-len") == 0 ? &max_len
                           : strcmp(o, "--threads") == 0 ? &threads
                                                         : &kbatches;
            const int64_t lo = dst == &limit ? 0 : dst == &max_len ? 2 : 1;
            if (!cli_parse_i64(v, lo, 1 << 30, dst))
                return cli_usage_error(cmd, "%s: bad value '%s'", o, v);
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", o);
        }
    }
    if (!checkpoint) return cli_usage_error(cmd, "--checkpoint is required");
    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    lb_ptq_model *qm = NULL;
    lb_tokenizer *tok = NULL;
    lb_ptq_data *d = NULL;
    lb_outlier_stats *stats = NULL;
    const lb_backend *be = NULL;
    lb_status st = lb_backend_find(ctx, backend_name, &be);
    if (st == LB_OK && threads > 0) st = lb_ctx_set_threads(ctx, (int)threads);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, "stats");
        goto done;
    }
    // a WordPiece model (imported) or a byte-level / image one
    const int wordpiece = lb_checkpoint_load_tokenizer(NULL, checkpoint, &tok) == LB_OK;
    if (!max_len) max_len = lb_checkpoint_embed_max_len(checkpoint, 256);
    const lb_model_options opts = {batch, wordpiece ? max_len : 0, 1};
    if ((st = lb_ptq_model_load(ctx, checkpoint, be, &opts, &qm)) != LB_OK) {
        rc = cli_report(ctx, st, checkpoint);
        goto done;
    }
    lb_model *model = lb_ptq_model_get(qm);
    const lb_model_config *mc = lb_model_get_config(model);
    char default_data[600];
    if (!data) {
        if (wordpiece) {
            data = "sentences";
        } else {
            snprintf(default_data, sizeof default_data, "%s",
                     lb_ptq_model_info(qm)->train.data);
            data = default_data;
        }
    }
    if ((st = lb_ptq_data_open(ctx, data, mc, tok, (size_t)max_len, LB_PTQ_EVAL, 0, &d)) != LB_OK ||
        (st = lb_outlier_stats_create(ctx, mc, (int)kbatches, &stats)) != LB_OK) {
        rc = cli_report(ctx, st, data);
        goto done;
    }
    int64_t n = lb_ptq_data_size(d);
    if (limit > 0 && limit < n) n = limit;
    if ((st = lb_ptq_model_set_observer(qm, lb_outlier_stats_observe, stats)) != LB_OK) {
        rc = cli_report(ctx, st, "stats");
        goto done;
    }
    for (int64_t first = 0; first < n && st == LB_OK;) {
        lb_model_batch b;
        int64_t taken = 0;
        st = lb_ptq_data_batch(ctx, d, first, n - first < batch ? n - first : batch, 0, &b, &taken);
        if (st != LB_OK || taken == 0) break;
        st = lb_model_forward(ctx, model, &b, 0, 0, NULL);
        first += taken;
    }
    if (st != LB_OK) {
        rc = cli_report(ctx, st, "stats");
        goto done;
    }
    printf("checkpoint  %s (%s, %d layers, d_model %d, %s attention%s)\n", checkpoint,
           lb_model_kind_name(mc->kind), mc->n_layer, mc->d_model,
           lb_attention_kind_name(mc->attention),
           lb_ptq_model_is_quantized(qm) ? ", quantized" : "");
    printf("data        %s (evaluation split, %lld examples)\n", data, (long long)n);
    lb_outlier_stats_print(stats, stdout);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "lowbit stats: cannot write %s\n", json);
            rc = CLI_EXIT_FAIL;
            goto done;
        }
        lb_outlier_stats_json(stats, f);
        if (fclose(f) != 0) {
            fprintf(stderr, "lowbit stats: write error on %s\n", json);
            rc = CLI_EXIT_FAIL;
        }
    }
done:
    lb_outlier_stats_free(stats);
    lb_ptq_data_free(d);
    lb_tokenizer_free(tok);
    lb_ptq_model_free(qm);
    lb_ctx_free(ctx);
    return rc;
}
