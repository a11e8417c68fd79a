/* cli/cmd_eval.c — `lowbit eval`: evaluate a checkpoint on a dataset.
 *
 *   lowbit eval --checkpoint FILE [--data fashion-mnist|text[:SPEC]]
 *               [--limit N] [--batch N] [--backend cpu|ref] [--threads N] [--float]
 *
 * The data defaults to the one the checkpoint was trained on. A quantized
 * model file (lowbit ptq) runs its integer path (lowbit/ptq.h); a
 * checkpoint trained with a quantized recipe (int8, hq, luq) runs that
 * recipe's forward with its saved state, as training evaluated it, unless
 * --float asks for float32 linear layers (lb_ptq_model_load_recipe). Prints test
 * loss and accuracy (vit) or validation loss, bits per byte against the
 * unigram baseline and next-byte / masked-byte accuracy (gpt, bert).
 */
#include "config.h"
#include "cli.h"
#include "lowbit/datasets.h"
#include "lowbit/ptq.h"
#include "lowbit/train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int cmd_eval(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("eval");
    const char *checkpoint = NULL, *data = NULL, *backend_name = "cpu";
    int64_t limit = 0, batch = 0, threads = 0;
    int float_layers = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (cli_is_help(o)) {
            printf("%s", cmd->usage);
            return CLI_EXIT_OK;
        } else if (strcmp(o, "--checkpoint") == 0) {
            if (!(checkpoint = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--data") == 0) {
            if (!(data = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--float") == 0) {
            float_layers = 1;
        } else if (strcmp(o, "--backend") == 0) {
            if (!(backend_name = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--limit") == 0 || strcmp(o, "--batch") == 0 ||
                   strcmp(o, "--threads") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
            int64_t *dst = o[2] == 'l' ? &limit : o[2] == 'b' ? &batch : &threads;
            if (!cli_parse_i64(v, o[2] == 'l' ? 0 : 1, 1 << 30, dst))
                return cli_usage_error(cmd, "%s: bad value '%s'", o, v);
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", o);
        }
    }
    if (!checkpoint) return cli_usage_error(cmd, "--checkpoint is required");
    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    lb_model *model = NULL;
    lb_ptq_model *qm = NULL;
    const lb_backend *be = NULL;
    lb_checkpoint_info info;
    lb_status st = lb_backend_find(ctx, backend_name, &be);
    if (st == LB_OK && threads > 0) st = lb_ctx_set_threads(ctx, (int)threads);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, "eval");
        goto done;
    }
    // a checkpoint or a quantized model file (lowbit/ptq.h)
    const lb_model_options mopts = {batch, 0, 0};
    st = float_layers ? lb_ptq_model_load(ctx, checkpoint, be, &mopts, &qm)
                      : lb_ptq_model_load_recipe(ctx, checkpoint, be, &mopts, &qm);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, checkpoint);
        goto done;
    }
    model = lb_ptq_model_get(qm);
    info = *lb_ptq_model_info(qm);
    if (!data) data = info.train.data;
    lb_eval_result r;
    st = lb_evaluate(ctx, model, data, info.train.val_fraction, limit, &r);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, data);
        goto done;
    }
    const lb_model_config *m = lb_model_get_config(model);
    printf("checkpoint  %s (%s, %d layers, d_model %d, %s attention, step %lld)\n", checkpoint,
           lb_model_kind_name(m->kind), m->n_layer, m->d_model,
           lb_attention_kind_name(m->attention), (long long)info.step);
    if (lb_ptq_model_is_quantized(qm)) {
        const lb_ptq_options *po = lb_ptq_model_options(qm);
        printf("quantized   %s, W%d A%d (%s activations), integer GEMMs\n",
               lb_ptq_method_name(po->method), po->wbits, po->abits,
               lb_ptq_act_sites_name(po->act_sites));
    } else if (strcmp(info.train.recipe, "fp32") != 0) {
        char desc[256];
        lb_recipe_options_describe(info.train.recipe, &info.train.recipe_opt, desc, sizeof desc);
        printf("recipe      %s\n", float_layers ? "fp32 linear layers (--float)" : desc);
    }
    printf("data        %s\n", data);
    if (m->kind == LB_MODEL_VIT) {
        printf("examples    %lld test images\n", (long long)r.examples);
        printf("loss        %.4f\n", r.loss);
        printf("accuracy    %.2f%%\n", 100 * r.accuracy);
    } else {
        // the unigram baseline of the training split
        lb_text_corpus *corpus = NULL;
        double unigram = NAN;
        const char *spec = strcmp(data, "text") == 0 ? "default" : data + 5;
        if (lb_text_corpus_load(ctx, spec, info.train.val_fraction, &corpus) == LB_OK) {
            uint64_t counts[LB_TEXT_VOCAB];
            lb_byte_histogram(corpus->train, corpus->train_len, counts);
            unigram = lb_unigram_entropy_bits(counts);
        }
        lb_text_corpus_free(corpus);
        printf("examples    %lld windows of %d bytes, %lld %s\n", (long long)r.examples,
               m->max_seq_len, (long long)r.predictions,
               m->kind == LB_MODEL_GPT ? "predicted bytes" : "masked bytes");
        printf("loss        %.4f nats/byte\n", r.loss);
        printf("bits/byte   %.4f (unigram baseline %.4f)\n", r.bits_per_byte, unigram);
        printf("accuracy    %.2f%% (%s)\n", 100 * r.accuracy,
               m->kind == LB_MODEL_GPT ? "next byte" : "masked byte");
    }
done:
    lb_ptq_model_free(qm);
    lb_ctx_free(ctx);
    return rc;
}
