/* cli/cmd_ptq.c — `lowbit ptq`: post-training quantization of a checkpoint
 * into a quantized model file (lowbit/ptq.h), optionally evaluated against
 * the float model.
 *
 *   lowbit ptq --checkpoint FILE --method w8a8|rtn|gptq|powerquant|nupes
 *              [--wbits B] [--abits B] [--granularity tensor|channel]
 *              [--range minmax|mse|percentile] [--act-range minmax|percentile]
 *              [--act-sites linear|all] [--calib N] [--batch N] [--data SPEC]
 *              [--seed S] [--per-layer-exponent] [--codebook auto|float|R]
 *              [--iters N] [--nupes-init gptq|rtn] [--act-order] [--percdamp X]
 *              [--max-len N]
 *              [--backend cpu|ref] [--threads N] --out FILE
 *              [--eval] [--eval-limit N] [--json FILE]
 */
#include "config.h"
#include "cli.h"
#include "lowbit/alloc.h"
#include "lowbit/minilm.h"
#include "lowbit/ptq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cmd_ptq(int argc, char **argv);

const char cmd_ptq_usage[] =
    "usage: lowbit ptq --checkpoint FILE --method w8a8|rtn|gptq|powerquant|nupes --out FILE\n"
    "                  [options]\n"
    "Post-training quantization of a float checkpoint (doc/ptq.md). The output stores\n"
    "integer codes, scales, exponents and codebooks; `lowbit eval` / `lowbit embed` run it\n"
    "with integer GEMMs.\n"
    "  --method M          w8a8 (Bondarenko et al.: 8-bit per-tensor weights and every\n"
    "                      activation), rtn, gptq, powerquant (data-free exponent), nupes\n"
    "  --wbits B           weight bits 2..8 (default 8 for w8a8, else 4)\n"
    "  --abits B           activation bits, 0 = float (default 8 for w8a8, else 0)\n"
    "  --granularity G     weight scales per tensor or channel (default tensor for w8a8)\n"
    "  --range R           weight range minmax | mse | percentile (uniform grid; minmax)\n"
    "  --act-range R       activation range minmax | percentile (running, momentum 0.9)\n"
    "  --act-percentile P  percentile of --act-range percentile (99.999)\n"
    "  --act-sites S       linear (the linear layers' inputs) or all (default all for w8a8)\n"
    "  --calib N           calibration batches (default 16)\n"
    "  --batch N           examples per calibration batch (default 16)\n"
    "  --data SPEC         calibration data: fashion-mnist | text[:SPEC] | sentences[:SPEC]\n"
    "                      | lines:FILE (default: the training data; sentences when imported)\n"
    "  --seed S            calibration sample seed (default 0)\n"
    "  --per-layer-exponent  powerquant: one exponent per layer instead of one for all\n"
    "  --codebook C        power grid: auto (int8 codebook, exact when possible), float (no\n"
    "                      integer path for the weights) or R in 1..127\n"
    "  --iters N           nupes: Adam iterations per layer (default 500)\n"
    "  --nupes-init I      nupes: start from the GPTQ codes on the power grid (gptq, default)\n"
    "                      or from round-to-nearest codes (rtn, nupes.md section 3)\n"
    "  --act-order         gptq: columns by decreasing Hessian diagonal\n"
    "  --percdamp X        gptq: dampening (default 0.01)\n"
    "  --max-len N         tokens per sentence (default: the model's embed.max_len)\n"
    "  --backend B         cpu (default) or ref;  --threads N  OpenMP threads\n"
    "  --out FILE          the quantized model\n"
    "  --eval              then evaluate the float and the quantized model (integer and\n"
    "                      fake-quant paths): loss / accuracy on the evaluation split, or\n"
    "                      for sentence encoders the cosine of the embeddings to the float's\n"
    "  --eval-limit N      evaluation examples (default 200 windows / all images / 1000 lines)\n"
    "  --json FILE         append the settings and results as one JSON line\n";

static const cli_command ptq_command = {"ptq", "post-training quantization of a checkpoint",
                                        cmd_ptq_usage, cmd_ptq};

typedef struct calib_state {
    lb_ptq_data *d;
    int64_t B;
} calib_state;

static lb_status calib_batch(void *user, lb_ctx *ctx, int64_t i, lb_model_batch *batch)
{
    calib_state *c = user;
    int64_t taken = 0;
    const int64_t n = lb_ptq_data_size(c->d), first = (i * c->B) % (n > 0 ? n : 1);
    lb_status st = lb_ptq_data_batch(ctx, c->d, first, c->B, 0, batch, &taken);
    if (st == LB_OK && taken == 0) st = lb_error(ctx, LB_ERR_ARG, "no calibration data left");
    return st;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Mean and min cosine of row pairs of a, b (n, C). */
static void cosines(const float *a, const float *b, size_t n, int64_t C, double *mean, double *min)
{
    double s = 0, lo = INFINITY;
    for (size_t i = 0; i < n; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (int64_t k = 0; k < C; k++) {
            ab += (double)a[i * C + k] * b[i * C + k];
            aa += (double)a[i * C + k] * a[i * C + k];
            bb += (double)b[i * C + k] * b[i * C + k];
        }
        const double c = ab / fmax(sqrt(aa * bb), 1e-300);
        s += c;
        lo = fmin(lo, c);
    }
    *mean = n ? s / (double)n : 0;
    *min = lo;
}

typedef struct eval_out {
    double fp, q_int, q_fake;      /* loss (byte models, vit) or mean cosine (sentences) */
    double fp_acc, q_acc, q_fake_acc; /* accuracy, or min cosine */
    int sentences;
    int64_t examples;
} eval_out;

static lb_status eval_sentences(lb_ctx *ctx, const char *ckpt, const char *qfile,
                                const lb_backend *be, int64_t batch, int64_t max_len,
                                int64_t limit, eval_out *r)
{
    lb_tokenizer *tok = NULL;
    lb_ptq_model *fp = NULL, *q = NULL;
    lb_ptq_data *d = NULL;
    float *ef = NULL, *eq = NULL;
    const char **texts = NULL;
    size_t *lens = NULL;
    lb_status st = lb_checkpoint_load_tokenizer(ctx, ckpt, &tok);
    const lb_model_options o = {batch, max_len, 1};
    if (st == LB_OK) st = lb_ptq_model_load(ctx, ckpt, be, &o, &fp);
    if (st == LB_OK) st = lb_ptq_model_load(ctx, qfile, be, &o, &q);
    const lb_model_config *mc = st == LB_OK ? lb_model_get_config(lb_ptq_model_get(fp)) : NULL;
    if (st == LB_OK) st = lb_ptq_data_open(ctx, "sentences", mc, tok, (size_t)max_len, LB_PTQ_EVAL, 0, &d);
    size_t n = 0;
    if (st == LB_OK) {
        n = (size_t)lb_ptq_data_size(d);
        if (limit > 0 && (size_t)limit < n) n = (size_t)limit;
        // the lines themselves: re-read them through the data (a batch of 1 each would
        // re-tokenize); simpler: embed the decoded lines from the corpus split
        texts = lb_alloc((n ? n : 1) * sizeof *texts);
        lens = lb_alloc((n ? n : 1) * sizeof *lens);
        ef = lb_alloc((n ? n : 1) * (size_t)mc->d_model * sizeof(float));
        eq = lb_alloc((n ? n : 1) * (size_t)mc->d_model * sizeof(float));
        if (!texts || !lens || !ef || !eq) st = lb_error(ctx, LB_ERR_NOMEM, "eval: out of memory");
    }
    if (st == LB_OK) st = lb_ptq_data_lines(d, n, texts, lens);
    if (st == LB_OK)
        st = lb_sentence_embed(ctx, lb_ptq_model_get(fp), tok, n, texts, lens, (size_t)max_len, 1, ef);
    for (int pass = 0; pass < 2 && st == LB_OK; pass++) {
        st = lb_ptq_model_set_exec(ctx, q, pass ? LB_PTQ_EXEC_FAKE : LB_PTQ_EXEC_INTEGER,
                                   LB_PTQ_KERNEL_FAST);
        if (st == LB_OK)
            st = lb_sentence_embed(ctx, lb_ptq_model_get(q), tok, n, texts, lens, (size_t)max_len,
                                   1, eq);
        if (st == LB_OK) {
            if (pass == 0) cosines(ef, eq, n, mc->d_model, &r->q_int, &r->q_acc);
            else cosines(ef, eq, n, mc->d_model, &r->q_fake, &r->q_fake_acc);
        }
    }
    r->fp = 1;
    r->fp_acc = 1;
    r->sentences = 1;
    r->examples = (int64_t)n;
    lb_free(texts), lb_free(lens), lb_free(ef), lb_free(eq);
    lb_ptq_data_free(d);
    lb_ptq_model_free(fp);
    lb_ptq_model_free(q);
    lb_tokenizer_free(tok);
    return st;
}

static lb_status eval_task(lb_ctx *ctx, const char *ckpt, const char *qfile, const lb_backend *be,
                           int64_t batch, int64_t limit, eval_out *r)
{
    lb_ptq_model *fp = NULL, *q = NULL;
    const lb_model_options o = {batch, 0, 0};
    lb_status st = lb_ptq_model_load(ctx, ckpt, be, &o, &fp);
    if (st == LB_OK) st = lb_ptq_model_load(ctx, qfile, be, &o, &q);
    const lb_checkpoint_info *info = st == LB_OK ? lb_ptq_model_info(fp) : NULL;
    lb_eval_result e;
    if (st == LB_OK)
        st = lb_evaluate(ctx, lb_ptq_model_get(fp), info->train.data, info->train.val_fraction,
                         limit, &e);
    if (st == LB_OK) r->fp = e.loss, r->fp_acc = e.accuracy, r->examples = e.examples;
    for (int pass = 0; pass < 2 && st == LB_OK; pass++) {
        st = lb_ptq_model_set_exec(ctx, q, pass ? LB_PTQ_EXEC_FAKE : LB_PTQ_EXEC_INTEGER,
                                   LB_PTQ_KERNEL_FAST);
        if (st == LB_OK)
            st = lb_evaluate(ctx, lb_ptq_model_get(q), info->train.data,
                             info->train.val_fraction, limit, &e);
        if (st == LB_OK && pass == 0) r->q_int = e.loss, r->q_acc = e.accuracy;
        if (st == LB_OK && pass == 1) r->q_fake = e.loss, r->q_fake_acc = e.accuracy;
    }
    lb_ptq_model_free(fp);
    lb_ptq_model_free(q);
    return st;
}

int cmd_ptq(int argc, char **argv)
{
    const cli_command *cmd = &ptq_command;
    const char *checkpoint = NULL, *out = NULL, *data = NULL, *json = NULL, *backend_name = "cpu";
    const char *method_name = NULL, *gran = NULL, *range = NULL, *act_range = NULL;
    const char *act_sites = NULL, *codebook = NULL, *nupes_init = NULL;
    int64_t wbits = -1, abits = -1, calib = -1, batch = 16, iters = -1, max_len = 0, threads = 0;
    int64_t eval_limit = -1;
    uint64_t seed = 0;
    double percdamp = -1, act_pct = -1;
    int per_layer = 0, act_order = 0, do_eval = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = NULL;
        if (cli_is_help(o)) {
            fputs(cmd->usage, stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(o, "--per-layer-exponent") == 0) {
            per_layer = 1;
            continue;
        }
        if (strcmp(o, "--act-order") == 0) {
            act_order = 1;
            continue;
        }
        if (strcmp(o, "--eval") == 0) {
            do_eval = 1;
            continue;
        }
        if (strncmp(o, "--", 2) != 0) return cli_usage_error(cmd, "unexpected argument '%s'", o);
        if (!(v = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        int64_t *i64 = NULL, lo = 0, hi = 1 << 30;
        if (strcmp(o, "--checkpoint") == 0) checkpoint = v;
        else if (strcmp(o, "--out") == 0) out = v;
        else if (strcmp(o, "--data") == 0) data = v;
        else if (strcmp(o, "--json") == 0) json = v;
        else if (strcmp(o, "--backend") == 0) backend_name = v;
        else if (strcmp(o, "--method") == 0) method_name = v;
        else if (strcmp(o, "--granularity") == 0) gran = v;
        else if (strcmp(o, "--range") == 0) range = v;
        else if (strcmp(o, "--act-range") == 0) act_range = v;
        else if (strcmp(o, "--act-sites") == 0) act_sites = v;
        else if (strcmp(o, "--codebook") == 0) codebook = v;
        else if (strcmp(o, "--nupes-init") == 0) nupes_init = v;
        else if (strcmp(o, "--wbits") == 0) i64 = &wbits, lo = 2, hi = 8;
        else if (strcmp(o, "--abits") == 0) i64 = &abits, lo = 0, hi = 8;
        else if (strcmp(o, "--calib") == 0) i64 = &calib, lo = 1;
        else if (strcmp(o, "--batch") == 0) i64 = &batch, lo = 1;
        else if (strcmp(o, "--iters") == 0) i64 = &iters;
        else if (strcmp(o, "--max-len") == 0) i64 = &max_len, lo = 2;
        else if (strcmp(o, "--threads") == 0) i64 = &threads, lo = 1;
        else if (strcmp(o, "--eval-limit") == 0) i64 = &eval_limit;
        else if (strcmp(o, "--seed") == 0) {
            if (!cli_parse_u64(v, &seed)) return cli_usage_error(cmd, "--seed: bad value '%s'", v);
        } else if (strcmp(o, "--percdamp") == 0 || strcmp(o, "--act-percentile") == 0) {
            double *d = o[2] == 'p' ? &percdamp : &act_pct;
            if (!cli_parse_double(v, d) || *d < 0) return cli_usage_error(cmd, "%s: bad value '%s'", o, v);
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", o);
        }
        if (i64 && !cli_parse_i64(v, lo, hi, i64))
            return cli_usage_error(cmd, "%s: bad value '%s'", o, v);
    }
    if (!checkpoint || !out || !method_name)
        return cli_usage_error(cmd, "--checkpoint, --method and --out are required");
    lb_ptq_method method;
    if (lb_ptq_method_from_name(NULL, method_name, &method) != LB_OK)
        return cli_usage_error(cmd, "unknown method '%s'", method_name);
    lb_ptq_options po;
    lb_ptq_options_default(method, &po);
    if (wbits > 0) po.wbits = (int)wbits;
    if (abits >= 0) {
        po.abits = (int)abits;
        if (abits == 0) po.act_sites = LB_PTQ_ACT_NONE;
        else if (po.act_sites == LB_PTQ_ACT_NONE) po.act_sites = LB_PTQ_ACT_LINEAR;
    }
    if (gran) {
        if (strcmp(gran, "tensor") == 0) po.granularity = LB_WQ_TENSOR;
        else if (strcmp(gran, "channel") == 0) po.granularity = LB_WQ_CHANNEL;
        else return cli_usage_error(cmd, "--granularity: tensor or channel, not '%s'", gran);
    }
    if (range) {
        if (strcmp(range, "minmax") == 0) po.range.method = LB_RANGE_MINMAX;
        else if (strcmp(range, "mse") == 0) po.range.method = LB_RANGE_MSE;
        else if (strcmp(range, "percentile") == 0) po.range.method = LB_RANGE_PERCENTILE;
        else return cli_usage_error(cmd, "--range: minmax, mse or percentile, not '%s'", range);
    }
    if (act_range) {
        if (strcmp(act_range, "minmax") == 0) po.act_range = LB_RANGE_MINMAX;
        else if (strcmp(act_range, "percentile") == 0) po.act_range = LB_RANGE_PERCENTILE;
        else return cli_usage_error(cmd, "--act-range: minmax or percentile, not '%s'", act_range);
    }
    if (act_pct >= 0) po.act_percentile = act_pct;
    if (act_sites) {
        if (strcmp(act_sites, "linear") == 0) po.act_sites = LB_PTQ_ACT_LINEAR;
        else if (strcmp(act_sites, "all") == 0) po.act_sites = LB_PTQ_ACT_ALL;
        else return cli_usage_error(cmd, "--act-sites: linear or all, not '%s'", act_sites);
        if (po.abits == 0) return cli_usage_error(cmd, "--act-sites needs --abits > 0");
    }
    if (codebook) {
        int64_t R;
        if (strcmp(codebook, "auto") == 0) po.codebook = LB_PTQ_CODEBOOK_AUTO;
        else if (strcmp(codebook, "float") == 0) po.codebook = LB_PTQ_CODEBOOK_FLOAT;
        else if (cli_parse_i64(codebook, 1, 127, &R)) po.codebook = (int)R;
        else return cli_usage_error(cmd, "--codebook: auto, float or 1..127, not '%s'", codebook);
    }
    if (nupes_init) {
        if (strcmp(nupes_init, "gptq") == 0) po.nupes_init = LB_PTQ_NUPES_INIT_GPTQ;
        else if (strcmp(nupes_init, "rtn") == 0) po.nupes_init = LB_PTQ_NUPES_INIT_RTN;
        else return cli_usage_error(cmd, "--nupes-init: gptq or rtn, not '%s'", nupes_init);
    }
    if (calib > 0) po.calib_batches = calib;
    if (iters >= 0) po.nupes_iters = (int)iters;
    if (percdamp >= 0) po.percdamp = percdamp;
    po.act_order = act_order;
    po.per_layer_exponent = per_layer;

    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    lb_ptq_model *fp = NULL, *q = NULL;
    lb_tokenizer *tok = NULL;
    lb_ptq_data *d = NULL;
    const lb_backend *be = NULL;
    lb_status st = lb_backend_find(ctx, backend_name, &be);
    if (st == LB_OK && threads > 0) st = lb_ctx_set_threads(ctx, (int)threads);
    if (st == LB_OK) st = lb_ptq_options_check(ctx, &po);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, "ptq");
        goto done;
    }
    const int wordpiece = lb_checkpoint_load_tokenizer(NULL, checkpoint, &tok) == LB_OK;
    if (!max_len) max_len = lb_checkpoint_embed_max_len(checkpoint, 256);
    const lb_model_options mo = {batch, wordpiece ? max_len : 0, 1};
    if ((st = lb_ptq_model_load(ctx, checkpoint, be, &mo, &fp)) != LB_OK) {
        rc = cli_report(ctx, st, checkpoint);
        goto done;
    }
    if (lb_ptq_model_is_quantized(fp)) {
        fprintf(stderr, "lowbit ptq: %s is already quantized\n", checkpoint);
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    const lb_checkpoint_info *info = lb_ptq_model_info(fp);
    // a copy: fp is freed before the evaluation
    const lb_model_config mcfg = *lb_model_get_config(lb_ptq_model_get(fp));
    const lb_model_config *mc = &mcfg;
    if (!data) data = wordpiece ? "sentences" : info->train.data;
    const int needs_data = po.abits > 0 || method == LB_PTQ_GPTQ || method == LB_PTQ_NUPES;
    if (needs_data &&
        (st = lb_ptq_data_open(ctx, data, mc, tok, (size_t)max_len, LB_PTQ_CALIB, seed, &d)) != LB_OK) {
        rc = cli_report(ctx, st, data);
        goto done;
    }
    calib_state cs = {d, batch};
    printf("lowbit ptq\n");
    printf("  %-18s %s (%s, %d layers, d_model %d, %s attention)\n", "checkpoint", checkpoint,
           lb_model_kind_name(mc->kind), mc->n_layer, mc->d_model,
           lb_attention_kind_name(mc->attention));
    printf("  %-18s %s\n", "method", lb_ptq_method_name(method));
    printf("  %-18s W%d (%s, %s range%s), A%d (%s%s%s)\n", "bits", po.wbits,
           lb_wq_granularity_name(po.granularity), lb_range_method_name(po.range.method),
           method == LB_PTQ_POWERQUANT || method == LB_PTQ_NUPES ? ", power grid" : "", po.abits,
           lb_ptq_act_sites_name(po.act_sites), po.abits ? ", " : "",
           po.abits ? lb_range_method_name(po.act_range) : "");
    if (needs_data)
        printf("  %-18s %s, %lld batches of %lld, seed %llu\n", "calibration", data,
               (long long)po.calib_batches, (long long)batch, (unsigned long long)seed);
    fflush(stdout);
    const double t0 = now();
    st = lb_ptq_quantize(ctx, lb_ptq_model_get(fp), info, &po, needs_data ? calib_batch : NULL,
                         &cs, be, &mo, &q);
    if (st == LB_OK) st = lb_ptq_save(ctx, q, wordpiece ? checkpoint : NULL, out);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, "ptq");
        goto done;
    }
    const double tq = now() - t0;
    // mean power exponent over the quantized layers (0 on the uniform grid)
    double a_sum = 0;
    int a_n = 0;
    for (int l = -1; l < mc->n_layer; l++)
        for (int role = LB_LINEAR_PATCH; role <= LB_LINEAR_FC2; role++) {
            const double a = lb_ptq_model_exponent(q, (lb_linear_role)role, l);
            if (a > 0) a_sum += a, a_n++;
        }
    const double a_mean = a_n ? a_sum / a_n : 0;
    printf("  %-18s %.1f s\n", "quantized in", tq);
    lb_ptq_model_report(q, stdout);
    printf("  %-18s %s\n", "written", out);
    eval_out ev;
    memset(&ev, 0, sizeof ev);
    if (do_eval) {
        lb_ptq_model_free(fp);
        fp = NULL;
        lb_ptq_model_free(q);
        q = NULL;
        st = wordpiece ? eval_sentences(ctx, checkpoint, out, be, batch, max_len,
                                        eval_limit < 0 ? 1000 : eval_limit, &ev)
                       : eval_task(ctx, checkpoint, out, be, batch,
                                   eval_limit < 0 ? (mc->kind == LB_MODEL_VIT ? 0 : 200)
                                                  : eval_limit,
                                   &ev);
        if (st != LB_OK) {
            rc = cli_report(ctx, st, "evaluation");
            goto done;
        }
        if (ev.sentences) {
            printf("  %-18s %lld sentences: cosine to float embeddings mean %.6f min %.6f "
                   "(fake-quant: mean %.6f min %.6f)\n",
                   "evaluation", (long long)ev.examples, ev.q_int, ev.q_acc, ev.q_fake,
                   ev.q_fake_acc);
        } else {
            printf("  %-18s %lld examples\n", "evaluation", (long long)ev.examples);
            printf("  %-18s loss %.4f accuracy %.2f%%\n", "float", ev.fp, 100 * ev.fp_acc);
            printf("  %-18s loss %.4f accuracy %.2f%%\n", "quantized (int)", ev.q_int,
                   100 * ev.q_acc);
            printf("  %-18s loss %.4f accuracy %.2f%%\n", "quantized (fake)", ev.q_fake,
                   100 * ev.q_fake_acc);
        }
    }
    if (json) {
        FILE *f = fopen(json, "a");
        if (!f) {
            fprintf(stderr, "lowbit ptq: cannot append to %s\n", json);
            rc = CLI_EXIT_FAIL;
            goto done;
        }
        fprintf(f, "{\"checkpoint\":\"%s\",\"out\":\"%s\",\"model\":\"%s\",\"attention\":\"%s\","
                   "\"method\":\"%s\",\"wbits\":%d,\"abits\":%d,\"granularity\":\"%s\","
                   "\"range\":\"%s\",\"act_range\":\"%s\",\"act_sites\":\"%s\",\"calib\":%lld,"
                   "\"batch\":%lld,\"seed\":%llu,\"codebook\":%d,\"per_layer_exponent\":%d,"
                   "\"iters\":%d,\"nupes_init\":\"%s\",\"exponent_mean\":%.6g,"
                   "\"seconds\":%.3f",
                checkpoint, out, lb_model_kind_name(mc->kind), lb_attention_kind_name(mc->attention),
                lb_ptq_method_name(method), po.wbits, po.abits,
                lb_wq_granularity_name(po.granularity), lb_range_method_name(po.range.method),
                lb_range_method_name(po.act_range), lb_ptq_act_sites_name(po.act_sites),
                (long long)po.calib_batches, (long long)batch, (unsigned long long)seed,
                po.codebook, po.per_layer_exponent, po.nupes_iters,
                po.nupes_init == LB_PTQ_NUPES_INIT_RTN ? "rtn" : "gptq", a_mean, tq);
        if (do_eval && ev.sentences)
            fprintf(f, ",\"examples\":%lld,\"cos_mean\":%.9g,\"cos_min\":%.9g,"
                       "\"cos_mean_fake\":%.9g,\"cos_min_fake\":%.9g",
                    (long long)ev.examples, ev.q_int, ev.q_acc, ev.q_fake, ev.q_fake_acc);
        else if (do_eval)
            fprintf(f, ",\"examples\":%lld,\"fp_loss\":%.9g,\"fp_acc\":%.9g,\"q_loss\":%.9g,"
                       "\"q_acc\":%.9g,\"q_loss_fake\":%.9g,\"q_acc_fake\":%.9g",
                    (long long)ev.examples, ev.fp, ev.fp_acc, ev.q_int, ev.q_acc, ev.q_fake,
                    ev.q_fake_acc);
        fprintf(f, "}\n");
        fclose(f);
    }
done:
    lb_ptq_data_free(d);
    lb_tokenizer_free(tok);
    lb_ptq_model_free(fp);
    lb_ptq_model_free(q);
    lb_ctx_free(ctx);
    return rc;
}
