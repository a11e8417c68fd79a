/* cli/cmd_train.c — `lowbit train`: train vit/gpt/bert with a recipe.
 *
 * Prints a table of every setting, a progress line (step, loss, lr,
 * examples/s, ETA; rewritten in place on a terminal, every ~5% of the run
 * otherwise), evaluation lines, and a final summary. With --out DIR it
 * appends JSON lines to DIR/log.jsonl and writes DIR/checkpoint.safetensors
 * (at every evaluation, every --save-every steps and at the end);
 * --resume DIR continues such a run bit-exactly (same backend and threads).
 */
#include "config.h"
#include "cli.h"
#include "lowbit/model.h"
#include "lowbit/train.h"
#include "lowbit/recipe.h"
#include "lowbit/datasets.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, n, "?");
        return;
    }
    const long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

/* JSON string escaping for the few strings we log (paths, names). */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* Prints the settings table, and the same as a JSON "start" event to log. */
static void print_settings(const lb_trainer *tr, int threads, const char *out_dir,
                           const char *resumed, FILE *log)
{
    const lb_train_config *c = lb_trainer_config(tr);
    const lb_model_config *m = &c->model;
    lb_model *model = lb_trainer_model((lb_trainer *)tr);
    const int64_t nparams = lb_model_num_params(model);
    char gamma[32] = "-", gate[32] = "-";
    if (m->attention == LB_ATTENTION_CLIPPED)
        snprintf(gamma, sizeof gamma, "%g / %g", (double)m->clip_gamma, (double)m->clip_zeta);
    if (m->attention == LB_ATTENTION_GATED) snprintf(gate, sizeof gate, "%g", (double)m->gate_init);
    const int blas = strcmp(c->backend, "cpu") == 0 && lb_backend_cpu_has_blas();
    printf("lowbit train\n");
    printf("  %-18s %s\n", "model", lb_model_kind_name(m->kind));
    printf("  %-18s %d layers, d_model %d, %d heads, d_ff %d, %d tokens\n", "shape", m->n_layer,
           m->d_model, m->n_head, m->d_ff, m->max_seq_len);
    if (m->kind == LB_MODEL_VIT)
        printf("  %-18s %dx%d images, %dx%d patches, %s pooling, %d classes%s\n", "vit",
               m->image_size, m->image_size, m->patch_size, m->patch_size,
               m->cls_token ? "CLS" : "mean", m->n_classes, m->embed_ln ? ", embedding LN" : "");
    else
        printf("  %-18s vocab %d%s\n", lb_model_kind_name(m->kind), m->vocab_size,
               m->kind == LB_MODEL_GPT ? (m->tied_embeddings ? ", tied embeddings" : ", untied")
                                       : ", 2 token types, MLM head");
    printf("  %-18s %s\n", "attention", lb_attention_kind_name(m->attention));
    printf("  %-18s %s\n", "clip gamma / zeta", gamma);
    printf("  %-18s %s\n", "gate init", gate);
    printf("  %-18s %lld (%.2f M)\n", "parameters", (long long)nparams, (double)nparams / 1e6);
    printf("  %-18s %s (%lld %s)\n", "data", c->data, (long long)lb_trainer_train_size(tr),
           m->kind == LB_MODEL_VIT ? "training images" : "training bytes");
    if (m->kind != LB_MODEL_VIT)
        printf("  %-18s %.4f bits/byte\n", "unigram baseline", lb_trainer_unigram_bits(tr));
    char recipe_line[400];
    lb_recipe_options_describe(c->recipe, &c->recipe_opt, recipe_line, sizeof recipe_line);
    printf("  %-18s %s\n", "recipe", recipe_line);
    printf("  %-18s %s%s, %d threads\n", "backend", c->backend, blas ? " (OpenBLAS sgemm)" : "",
           threads);
    printf("  %-18s %lld (batch %lld)\n", "steps", (long long)c->steps, (long long)c->batch_size);
    printf("  %-18s %g peak, %g final, %lld warm-up steps, cosine\n", "learning rate", c->lr,
           c->min_lr, (long long)c->warmup_steps);
    printf("  %-18s betas (%g, %g), eps %g, weight decay %g\n", "AdamW", c->beta1, c->beta2,
           c->eps, c->weight_decay);
    printf("  %-18s %g\n", "grad clip", c->grad_clip);
    printf("  %-18s every %lld steps, %s\n", "evaluation", (long long)c->eval_every,
           c->eval_limit ? "limited" : "full set");
    if (c->eval_limit) printf("  %-18s %lld\n", "eval limit", (long long)c->eval_limit);
    if (c->train_limit) printf("  %-18s %lld\n", "train limit", (long long)c->train_limit);
    if (m->kind == LB_MODEL_BERT) printf("  %-18s %g\n", "mlm probability", c->mlm_prob);
    printf("  %-18s %llu\n", "seed", (unsigned long long)c->seed);
    printf("  %-18s %s\n", "output", out_dir ? out_dir : "(none)");
    if (resumed)
        printf("  %-18s %s at step %lld\n", "resumed from", resumed,
               (long long)lb_trainer_step_count(tr));
    fflush(stdout);
    if (log) {
        fprintf(log, "{\"event\":\"start\",\"model\":\"%s\",\"layers\":%d,\"d_model\":%d,"
                     "\"heads\":%d,\"d_ff\":%d,\"seq_len\":%d,\"attention\":\"%s\","
                     "\"params\":%lld,\"data\":",
                lb_model_kind_name(m->kind), m->n_layer, m->d_model, m->n_head, m->d_ff,
                m->max_seq_len, lb_attention_kind_name(m->attention), (long long)nparams);
        json_string(log, c->data);
        fprintf(log, ",\"recipe\":\"%s\",\"backend\":\"%s\",\"threads\":%d,\"steps\":%lld,"
                     "\"batch\":%lld,\"lr\":%.9g,\"min_lr\":%.9g,\"warmup\":%lld,"
                     "\"weight_decay\":%.9g,\"grad_clip\":%.9g,\"seed\":%llu,\"start_step\":%lld}\n",
                c->recipe, c->backend, threads, (long long)c->steps, (long long)c->batch_size,
                c->lr, c->min_lr, (long long)c->warmup_steps, c->weight_decay, c->grad_clip,
                (unsigned long long)c->seed, (long long)lb_trainer_step_count(tr));
        // the recipe's options (lowbit/recipe.h), one event
        fprintf(log, "{\"event\":\"recipe\",\"recipe\":\"%s\",\"options\":{", c->recipe);
        for (size_t i = 0; i < lb_recipe_option_count(); i++) {
            char value[128];
            if (lb_recipe_option_get(NULL, &c->recipe_opt, lb_recipe_option_key(i), value,
                                     sizeof value) != LB_OK)
                value[0] = 0;
            fprintf(log, "%s\"%s\":", i ? "," : "", lb_recipe_option_key(i));
            json_string(log, value);
        }
        fprintf(log, "}}\n");
        fflush(log);
    }
}

/* Appends the recipe's per-layer quantization statistics since the last
 * call (lb_recipe_stats_json) as a "recipe_stats" event. */
static void log_recipe_stats(lb_trainer *tr, int64_t step, FILE *log)
{
    lb_recipe *r = lb_trainer_recipe(tr);
    if (!log || !r->stats_json) return;
    const size_t need = lb_recipe_stats_json(r, NULL, 0) + 1;
    char *buf = malloc(need);
    if (!buf) return;
    lb_recipe_stats_json(r, buf, need);
    fprintf(log, "{\"event\":\"recipe_stats\",\"step\":%lld,\"recipe\":\"%s\",\"layers\":%s}\n",
            (long long)step, r->name, buf);
    fflush(log);
    free(buf);
}

/* --KEY VALUE of a recipe option (lowbit/recipe.h): 1 when handled, 0 when
 * argv[*i] is not a recipe option, -1 after a usage error. */
static int recipe_option(const cli_command *cmd, int argc, char **argv, int *i,
                         lb_recipe_options *o)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) return 0;
    size_t k = 0;
    while (k < lb_recipe_option_count() && strcmp(lb_recipe_option_key(k), arg + 2) != 0) k++;
    if (k == lb_recipe_option_count()) return 0;
    const char *v = cli_option_value(cmd, argc, argv, i);
    if (!v) return -1;
    lb_ctx *ctx = NULL;
    if (lb_ctx_create(&ctx) != LB_OK) return -1;
    const lb_status st = lb_recipe_option_set(ctx, o, arg + 2, v);
    if (st != LB_OK) cli_usage_error(cmd, "%s", lb_ctx_error(ctx));
    lb_ctx_free(ctx);
    return st == LB_OK ? 1 : -1;
}

static void print_eval(const lb_trainer *tr, int64_t step, const lb_eval_result *r, FILE *log)
{
    const lb_model_kind kind = lb_trainer_config(tr)->model.kind;
    if (kind == LB_MODEL_VIT)
        printf("eval  step %lld | test loss %.4f | test accuracy %.2f%% (%lld images)\n",
               (long long)step, r->loss, 100 * r->accuracy, (long long)r->examples);
    else
        printf("eval  step %lld | val loss %.4f | %.4f bits/byte (unigram %.4f) | %s accuracy "
               "%.2f%% (%lld %s)\n",
               (long long)step, r->loss, r->bits_per_byte, lb_trainer_unigram_bits(tr),
               kind == LB_MODEL_GPT ? "next-byte" : "masked-byte", 100 * r->accuracy,
               (long long)r->predictions, kind == LB_MODEL_GPT ? "bytes" : "masked bytes");
    fflush(stdout);
    if (log) {
        fprintf(log, "{\"event\":\"eval\",\"step\":%lld,\"loss\":%.9g,\"accuracy\":%.9g,"
                     "\"bits_per_byte\":%.9g,\"examples\":%lld,\"predictions\":%lld}\n",
                (long long)step, r->loss, r->accuracy, r->bits_per_byte, (long long)r->examples,
                (long long)r->predictions);
        fflush(log);
    }
}

/* Creates DIR if needed (one level). */
static int make_dir(const char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "lowbit train: cannot create %s: %s\n", dir, strerror(errno));
    return -1;
}

typedef struct train_args {
    lb_train_config cfg;
    int64_t epochs;         /* vit: steps = epochs * batches per epoch */
    int64_t steps;          /* 0: default / from checkpoint */
    int threads;
    const char *out_dir;
    const char *resume;
    int64_t save_every;
    int quiet;
} train_args;

/* Parses an integer option value into *out (min..max). */
static int opt_i64(const cli_command *cmd, int argc, char **argv, int *i, int64_t min,
                   int64_t max, int64_t *out)
{
    const char *v = cli_option_value(cmd, argc, argv, i);
    if (!v) return -1;
    if (!cli_parse_i64(v, min, max, out)) {
        cli_usage_error(cmd, "%s: bad value '%s'", argv[*i - 1], v);
        return -1;
    }
    return 0;
}

static int opt_double(const cli_command *cmd, int argc, char **argv, int *i, double *out)
{
    const char *v = cli_option_value(cmd, argc, argv, i);
    if (!v) return -1;
    if (!cli_parse_double(v, out)) {
        cli_usage_error(cmd, "%s: bad value '%s'", argv[*i - 1], v);
        return -1;
    }
    return 0;
}

static int opt_int(const cli_command *cmd, int argc, char **argv, int *i, int min, int max,
                   int *out)
{
    int64_t v;
    if (opt_i64(cmd, argc, argv, i, min, max, &v)) return -1;
    *out = (int)v;
    return 0;
}

/* Two passes: the first finds --model (defaults depend on it), the second
 * applies every option on top of the defaults. */
static int parse_args(const cli_command *cmd, int argc, char **argv, train_args *a)
{
    memset(a, 0, sizeof *a);
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model = argv[i + 1];
        if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc) a->resume = argv[i + 1];
    }
    lb_model_kind kind = LB_MODEL_VIT;
    if (!model && !a->resume) {
        cli_usage_error(cmd, "--model is required (vit, gpt or bert)");
        return -1;
    }
    if (model && lb_model_kind_from_name(NULL, model, &kind) != LB_OK) {
        cli_usage_error(cmd, "unknown model '%s' (expected vit, gpt or bert)", model);
        return -1;
    }
    lb_train_config_default(kind, &a->cfg);
    lb_train_config *c = &a->cfg;
    lb_model_config *m = &c->model;
    double clip_alpha = -1, clip_gamma = 1;
    int handled;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v;
        double d;
        if (strcmp(o, "--model") == 0 || strcmp(o, "--resume") == 0) {
            i++;
        } else if (strcmp(o, "--data") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return -1;
            snprintf(c->data, sizeof c->data, "%s", v);
        } else if (strcmp(o, "--recipe") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return -1;
            snprintf(c->recipe, sizeof c->recipe, "%s", v);
        } else if (strcmp(o, "--backend") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return -1;
            snprintf(c->backend, sizeof c->backend, "%s", v);
        } else if (strcmp(o, "--attention") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return -1;
            if (lb_attention_kind_from_name(NULL, v, &m->attention) != LB_OK) {
                cli_usage_error(cmd, "unknown attention '%s' (softmax, clipped or gated)", v);
                return -1;
            }
        } else if (strcmp(o, "--clip-alpha") == 0) {
            if (opt_double(cmd, argc, argv, &i, &clip_alpha)) return -1;
        } else if (strcmp(o, "--clip-gamma") == 0) {
            if (opt_double(cmd, argc, argv, &i, &clip_gamma)) return -1;
        } else if (strcmp(o, "--clip-zeta") == 0) {
            if (opt_double(cmd, argc, argv, &i, &d)) return -1;
            m->clip_zeta = (float)d;
        } else if (strcmp(o, "--gate-init") == 0) {
            if (opt_double(cmd, argc, argv, &i, &d)) return -1;
            m->gate_init = (float)d;
        } else if (strcmp(o, "--layers") == 0) {
            if (opt_int(cmd, argc, argv, &i, 1, 256, &m->n_layer)) return -1;
        } else if (strcmp(o, "--d-model") == 0) {
            if (opt_int(cmd, argc, argv, &i, 1, 16384, &m->d_model)) return -1;
        } else if (strcmp(o, "--heads") == 0) {
            if (opt_int(cmd, argc, argv, &i, 1, 1024, &m->n_head)) return -1;
        } else if (strcmp(o, "--d-ff") == 0) {
            if (opt_int(cmd, argc, argv, &i, 1, 65536, &m->d_ff)) return -1;
        } else if (strcmp(o, "--seq-len") == 0) {
            if (opt_int(cmd, argc, argv, &i, 1, 65536, &m->max_seq_len)) return -1;
        } else if (strcmp(o, "--patch") == 0) {
            if (opt_int(cmd, argc, argv, &i, 1, 28, &m->patch_size)) return -1;
        } else if (strcmp(o, "--pool") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return -1;
            if (strcmp(v, "cls") == 0) m->cls_token = 1;
            else if (strcmp(v, "mean") == 0) m->cls_token = 0;
            else {
                cli_usage_error(cmd, "--pool: expected cls or mean, not '%s'", v);
                return -1;
            }
        } else if (strcmp(o, "--embed-ln") == 0) {
            m->embed_ln = 1;
        } else if (strcmp(o, "--untied") == 0) {
            m->tied_embeddings = 0;
        } else if (strcmp(o, "--steps") == 0) {
            if (opt_i64(cmd, argc, argv, &i, 1, (int64_t)1 << 40, &a->steps)) return -1;
        } else if (strcmp(o, "--epochs") == 0) {
            if (opt_i64(cmd, argc, argv, &i, 1, 1000000, &a->epochs)) return -1;
        } else if (strcmp(o, "--batch") == 0) {
            if (opt_i64(cmd, argc, argv, &i, 1, 65536, &c->batch_size)) return -1;
        } else if (strcmp(o, "--lr") == 0) {
            if (opt_double(cmd, argc, argv, &i, &c->lr)) return -1;
        } else if (strcmp(o, "--min-lr") == 0) {
            if (opt_double(cmd, argc, argv, &i, &c->min_lr)) return -1;
        } else if (strcmp(o, "--warmup") == 0) {
            if (opt_i64(cmd, argc, argv, &i, 0, (int64_t)1 << 40, &c->warmup_steps)) return -1;
        } else if (strcmp(o, "--weight-decay") == 0) {
            if (opt_double(cmd, argc, argv, &i, &c->weight_decay)) return -1;
        } else if (strcmp(o, "--grad-clip") == 0) {
            if (opt_double(cmd, argc, argv, &i, &c->grad_clip)) return -1;
        } else if (strcmp(o, "--seed") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return -1;
            if (!cli_parse_u64(v, &c->seed)) {
                cli_usage_error(cmd, "--seed: bad value '%s'", v);
                return -1;
            }
        } else if (strcmp(o, "--threads") == 0) {
            if (opt_int(cmd, argc, argv, &i, 1, 1024, &a->threads)) return -1;
        } else if (strcmp(o, "--eval-every") == 0) {
            if (opt_i64(cmd, argc, argv, &i, 0, (int64_t)1 << 40, &c->eval_every)) return -1;
        } else if (strcmp(o, "--eval-limit") == 0) {
            if (opt_i64(cmd, argc, argv, &i, 0, (int64_t)1 << 40, &c->eval_limit)) return -1;
        } else if (strcmp(o, "--train-limit") == 0) {
            if (opt_i64(cmd, argc, argv, &i, 0, (int64_t)1 << 40, &c->train_limit)) return -1;
        } else if (strcmp(o, "--mlm-prob") == 0) {
            if (opt_double(cmd, argc, argv, &i, &c->mlm_prob)) return -1;
        } else if (strcmp(o, "--val-fraction") == 0) {
            if (opt_double(cmd, argc, argv, &i, &c->val_fraction)) return -1;
        } else if (strcmp(o, "--out") == 0) {
            if (!(a->out_dir = cli_option_value(cmd, argc, argv, &i))) return -1;
        } else if (strcmp(o, "--save-every") == 0) {
            if (opt_i64(cmd, argc, argv, &i, 0, (int64_t)1 << 40, &a->save_every)) return -1;
        } else if (strcmp(o, "--quiet") == 0) {
            a->quiet = 1;
        } else if ((handled = recipe_option(cmd, argc, argv, &i, &c->recipe_opt)) != 0) {
            if (handled < 0) return -1;
        } else {
            cli_usage_error(cmd, "unknown option '%s'", o);
            return -1;
        }
    }
    if (a->steps && a->epochs) {
        cli_usage_error(cmd, "give --steps or --epochs, not both");
        return -1;
    }
    if (clip_alpha >= 0 && clip_gamma <= 0) {
        cli_usage_error(cmd, "give --clip-alpha or --clip-gamma, not both");
        return -1;
    }
    // gamma = -alpha / T (T = the configured sequence length, spec §1.2)
    int T = m->max_seq_len;
    if (m->kind == LB_MODEL_VIT && m->patch_size > 0 && m->image_size % m->patch_size == 0)
        T = (m->image_size / m->patch_size) * (m->image_size / m->patch_size) + m->cls_token;
    if (clip_alpha >= 0) m->clip_gamma = (float)(-clip_alpha / T);
    else if (clip_gamma <= 0) m->clip_gamma = (float)clip_gamma;
    else m->clip_gamma = (float)(-2.0 / T);
    if (a->epochs) {
        if (m->kind != LB_MODEL_VIT) {
            cli_usage_error(cmd, "--epochs is for vit; use --steps for text models");
            return -1;
        }
        const int64_t count = c->train_limit > 0 && c->train_limit < LB_FASHION_MNIST_TRAIN_COUNT
                                  ? c->train_limit
                                  : LB_FASHION_MNIST_TRAIN_COUNT;
        a->steps = a->epochs * (count / c->batch_size);
        if (a->steps < 1) a->steps = 1;
    }
    if (a->steps && !a->resume) c->steps = a->steps;
    if (c->warmup_steps > c->steps) c->warmup_steps = c->steps / 10;
    return 0;
}

int cmd_train(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("train");
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            printf("%s", cmd->usage);
            return CLI_EXIT_OK;
        }
    train_args a;
    if (parse_args(cmd, argc, argv, &a)) return CLI_EXIT_USAGE;

    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    lb_trainer *tr = NULL;
    FILE *log = NULL;
    lb_status st;
    if (a.threads > 0 && (st = lb_ctx_set_threads(ctx, a.threads)) != LB_OK) {
        rc = cli_report(ctx, st, "--threads");
        goto done;
    }
    const int threads = lb_ctx_threads(ctx);

    // resume: DIR (its checkpoint.safetensors) or a checkpoint file
    char ckpt_in[4096] = "";
    if (a.resume) {
        struct stat sb;
        if (stat(a.resume, &sb) == 0 && S_ISDIR(sb.st_mode))
            snprintf(ckpt_in, sizeof ckpt_in, "%s/checkpoint.safetensors", a.resume);
        else
            snprintf(ckpt_in, sizeof ckpt_in, "%s", a.resume);
        if (!a.out_dir && S_ISDIR(sb.st_mode)) a.out_dir = a.resume;
        st = lb_trainer_resume(ctx, ckpt_in, a.steps, &tr);
        if (st != LB_OK) {
            rc = cli_report(ctx, st, ckpt_in);
            goto done;
        }
    } else {
        st = lb_trainer_create(ctx, &a.cfg, &tr);
        if (st != LB_OK) {
            rc = cli_report(ctx, st, "train");
            goto done;
        }
    }
    char ckpt_out[4096] = "", log_path[4096] = "";
    if (a.out_dir) {
        if (make_dir(a.out_dir)) {
            rc = CLI_EXIT_FAIL;
            goto done;
        }
        snprintf(ckpt_out, sizeof ckpt_out, "%s/checkpoint.safetensors", a.out_dir);
        snprintf(log_path, sizeof log_path, "%s/log.jsonl", a.out_dir);
        log = fopen(log_path, "a");
        if (!log) {
            fprintf(stderr, "lowbit train: cannot open %s: %s\n", log_path, strerror(errno));
            rc = CLI_EXIT_FAIL;
            goto done;
        }
    }
    print_settings(tr, threads, a.out_dir, a.resume ? ckpt_in : NULL, log);

    const lb_train_config *cfg = lb_trainer_config(tr);
    const int64_t total = cfg->steps;
    const int64_t first = lb_trainer_step_count(tr);
    const int tty = isatty(fileno(stderr)) && !a.quiet;
    const int64_t print_every = total / 20 > 0 ? total / 20 : 1;
    const char *unit = cfg->model.kind == LB_MODEL_VIT ? "img/s" : "seq/s";
    double train_time = 0, eval_time = 0, loss_ema = NAN, last_loss = NAN;
    int64_t examples = 0;
    lb_eval_result ev = {0};
    int have_eval = 0;
    const double t_start = now_seconds();
    for (int64_t s = first; s < total; s++) {
        const double t0 = now_seconds();
        lb_step_info info;
        st = lb_trainer_step(ctx, tr, &info);
        if (st != LB_OK) {
            if (tty) fputc('\n', stderr);
            rc = cli_report(ctx, st, "training step");
            goto done;
        }
        const double dt = now_seconds() - t0;
        train_time += dt;
        examples += info.examples;
        last_loss = info.loss;
        loss_ema = isnan(loss_ema) ? info.loss : 0.9 * loss_ema + 0.1 * info.loss;
        const double rate = (double)examples / train_time;
        char eta[32];
        format_duration(train_time / (double)(info.step - first) * (double)(total - info.step),
                        eta, sizeof eta);
        if (log)
            fprintf(log, "{\"event\":\"step\",\"step\":%lld,\"loss\":%.9g,\"lr\":%.9g,"
                         "\"grad_norm\":%.9g,\"examples\":%lld,\"seconds\":%.6f}\n",
                    (long long)info.step, info.loss, info.lr, info.grad_norm,
                    (long long)info.examples, dt);
        if (tty) {
            fprintf(stderr, "\rstep %lld/%lld | loss %.4f | lr %.2e | %.0f %s | eta %s\033[K",
                    (long long)info.step, (long long)total, loss_ema, info.lr, rate, unit, eta);
            fflush(stderr);
        } else if (!a.quiet && (info.step % print_every == 0 || info.step == total)) {
            printf("step %lld/%lld | loss %.4f | lr %.2e | %.0f %s | eta %s\n",
                   (long long)info.step, (long long)total, loss_ema, info.lr, rate, unit, eta);
            fflush(stdout);
        }
        const int eval_now = (cfg->eval_every > 0 && info.step % cfg->eval_every == 0) ||
                             info.step == total;
        if (eval_now) {
            if (tty) fputc('\n', stderr);
            const double e0 = now_seconds();
            st = lb_trainer_evaluate(ctx, tr, &ev);
            if (st != LB_OK) {
                rc = cli_report(ctx, st, "evaluation");
                goto done;
            }
            eval_time += now_seconds() - e0;
            have_eval = 1;
            print_eval(tr, info.step, &ev, log);
            log_recipe_stats(tr, info.step, log);
        }
        const int save_now = a.save_every > 0 && info.step % a.save_every == 0;
        if (ckpt_out[0] && (eval_now || save_now)) {
            st = lb_trainer_save(ctx, tr, ckpt_out);
            if (st != LB_OK) {
                rc = cli_report(ctx, st, ckpt_out);
                goto done;
            }
        }
    }
    if (first >= total) {
        // nothing left to train: evaluate what the checkpoint holds
        st = lb_trainer_evaluate(ctx, tr, &ev);
        if (st != LB_OK) {
            rc = cli_report(ctx, st, "evaluation");
            goto done;
        }
        have_eval = 1;
        print_eval(tr, first, &ev, log);
    }
    {
        const double wall = now_seconds() - t_start;
        char wall_s[32];
        format_duration(wall, wall_s, sizeof wall_s);
        printf("summary\n");
        printf("  %-18s %lld (%lld this run)\n", "steps", (long long)lb_trainer_step_count(tr),
               (long long)(lb_trainer_step_count(tr) - first));
        printf("  %-18s %s (train %.1f s, eval %.1f s)\n", "time", wall_s, train_time, eval_time);
        if (train_time > 0)
            printf("  %-18s %.0f %s\n", "throughput", (double)examples / train_time, unit);
        if (!isnan(last_loss)) printf("  %-18s %.4f (last batch %.4f)\n", "train loss", loss_ema, last_loss);
        if (have_eval) {
            if (cfg->model.kind == LB_MODEL_VIT)
                printf("  %-18s %.2f%%\n", "test accuracy", 100 * ev.accuracy);
            else
                printf("  %-18s %.4f bits/byte (unigram %.4f)\n", "validation",
                       ev.bits_per_byte, lb_trainer_unigram_bits(tr));
        }
        if (ckpt_out[0]) printf("  %-18s %s\n", "checkpoint", ckpt_out);
        if (log) {
            fprintf(log, "{\"event\":\"summary\",\"steps\":%lld,\"seconds\":%.3f,"
                         "\"train_seconds\":%.3f,\"eval_seconds\":%.3f,\"throughput\":%.3f,"
                         "\"eval_loss\":%.9g,\"accuracy\":%.9g,\"bits_per_byte\":%.9g}\n",
                    (long long)lb_trainer_step_count(tr), wall, train_time, eval_time,
                    train_time > 0 ? (double)examples / train_time : 0.0, ev.loss, ev.accuracy,
                    ev.bits_per_byte);
        }
    }
done:
    if (log) fclose(log);
    lb_trainer_free(tr);
    lb_ctx_free(ctx);
    return rc;
}
