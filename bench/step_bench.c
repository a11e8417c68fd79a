/* bench/step_bench.c — `lowbit bench step`: one full training step (batch,
 * forward, backward, gradient clipping, AdamW) of the default vit and gpt
 * per training recipe on the cpu backend, with ratios to the fp32 recipe
 * measured in the same run and, when given the output of
 * bench/torch_step.py, to PyTorch's fp32 and bf16-autocast steps of the
 * same models at the same batch and thread count.
 *
 * Before timing, every variant trains two steps on the ref backend and on
 * the cpu backend from the same seed at a small batch; their losses must
 * agree within a relative 1e-3 (the float parts of the model — sgemm,
 * LayerNorm, attention — sum in another order on cpu, and a quantizer may
 * round one value differently as a result, so the step is not bit-exact;
 * the layers themselves are, see `lowbit bench linear` and `lowbit check`).
 */
#include "config.h"
#include "bench.h"
#include "bench_timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/lowbit.h"
#include "lowbit/alloc.h"
#include "../datasets/internal.h"
#include "lowbit/cpu.h"
#include "lowbit/train.h"
#ifdef HAVE_CJSON
#include <cJSON.h>
#endif

static const char default_variants[] = "fp32,int8,hq,hq:lss=nonzero,luq";

void bench_step_defaults(bench_step_opts *o)
{
    memset(o, 0, sizeof *o);
    o->models = "vit,gpt";
    o->variants = default_variants;
    o->nthreads = 1;
    o->threads[0] = 0;
    o->repeats = 5;
    o->min_time = 0.5;
    o->check_batch = 4;
}

/* The default training config of `model` with recipe variant `spec` on
 * `backend` (batch 0: the default). */
static lb_status step_config(lb_ctx *ctx, const char *model, const char *spec,
                             const char *backend, int64_t batch, lb_train_config *c)
{
    lb_model_kind kind;
    if (strcmp(model, "vit") == 0) kind = LB_MODEL_VIT;
    else if (strcmp(model, "gpt") == 0) kind = LB_MODEL_GPT;
    else if (strcmp(model, "bert") == 0) kind = LB_MODEL_BERT;
    else return lb_error(ctx, LB_ERR_ARG, "unknown model '%s' (vit, gpt, bert)", model);
    lb_train_config_default(kind, c);
    lb_status st = bench_parse_variant(ctx, spec, c->recipe, sizeof c->recipe, &c->recipe_opt);
    if (st != LB_OK) return st;
    snprintf(c->backend, sizeof c->backend, "%s", backend);
    if (batch > 0) c->batch_size = batch;
    c->eval_every = 0;
    return LB_OK;
}

/* Two steps of `spec` on ref and on cpu agree (see the file comment). */
static int check_variant(lb_ctx *ctx, const char *model, const char *spec, int64_t batch,
                         double *rel)
{
    double loss[2][2] = {{0, 0}, {0, 0}};
    const char *backends[2] = {"ref", "cpu"};
    for (int k = 0; k < 2; k++) {
        lb_train_config c;
        lb_trainer *tr = NULL;
        lb_status st = step_config(ctx, model, spec, backends[k], batch, &c);
        if (st == LB_OK) st = lb_trainer_create(ctx, &c, &tr);
        for (int s = 0; s < 2 && st == LB_OK; s++) {
            lb_step_info info;
            st = lb_trainer_step(ctx, tr, &info);
            loss[k][s] = info.loss;
        }
        lb_trainer_free(tr);
        if (st != LB_OK) {
            fprintf(stderr, "lowbit bench: %s %s (%s): %s\n", model, spec, backends[k],
                    lb_ctx_error(ctx));
            return 1;
        }
    }
    *rel = 0;
    for (int s = 0; s < 2; s++)
        *rel = fmax(*rel, fabs(loss[1][s] - loss[0][s]) / fabs(loss[0][s]));
    if (!(*rel <= 1e-3)) {
        fprintf(stderr, "lowbit bench: %s %s: cpu losses %.6f %.6f, ref %.6f %.6f\n", model,
                spec, loss[1][0], loss[1][1], loss[0][0], loss[0][1]);
        return 1;
    }
    return 0;
}

#ifdef HAVE_CJSON
/* PyTorch's ms per step for (model, threads, dtype) from the parsed JSON
 * list of bench/torch_step.py; 0 when absent. */
static double torch_ms(const cJSON *root, const char *model, int threads, const char *dtype)
{
    double ms = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, root)
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(rec, "model");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "threads");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(rec, "dtype");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "ms_per_step");
        if (cJSON_IsString(m) && cJSON_IsNumber(t) && cJSON_IsString(d) && cJSON_IsNumber(v) &&
            strcmp(m->valuestring, model) == 0 && t->valueint == threads &&
            strcmp(d->valuestring, dtype) == 0)
            ms = v->valuedouble;
    }
    return ms;
}

/* The --torch file parsed (NULL, with a message naming the file, when it
 * cannot be read or is not a JSON list). */
static cJSON *load_torch(lb_ctx *ctx, const char *path)
{
    uint8_t *text = NULL;
    size_t len = 0;
    if (lb_text_read_file(ctx, path, &text, &len) != LB_OK) {
        fprintf(stderr, "lowbit bench: %s\n", lb_ctx_error(ctx));
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)text, len);
    lb_free(text);
    if (!cJSON_IsArray(root)) {
        fprintf(stderr, "lowbit bench: %s: not the JSON list of bench/torch_step.py --json\n",
                path);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
#else
typedef struct cJSON cJSON;
static double torch_ms(const cJSON *root, const char *model, int threads, const char *dtype)
{
    (void)root, (void)model, (void)threads, (void)dtype;
    return 0;
}
static void cJSON_Delete(cJSON *root) { (void)root; }
#endif

typedef struct step_run {
    lb_ctx *ctx;
    lb_trainer *tr;
} step_run;

static lb_status run_step(void *arg)
{
    step_run *r = arg;
    lb_step_info info;
    return lb_trainer_step(r->ctx, r->tr, &info);
}

static void print_ratio(double ours, double theirs)
{
    if (theirs > 0) printf(" %8.2fx", theirs / ours);
    else printf(" %9s", "-");
}

int bench_step(const bench_step_opts *o)
{
    lb_ctx *ctx = NULL;
    if (lb_ctx_create(&ctx) != LB_OK) lb_ctx_clear_error(ctx);
    if (!ctx) return 1;
    char specs[BENCH_MAX_VARIANTS][64], models[4][8];
    int nv = 0, nm = 0, status = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", o->variants);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && !status;
         tok = strtok_r(NULL, ",", &save)) {
        status = nv >= BENCH_MAX_VARIANTS || strlen(tok) >= sizeof specs[0];
        if (!status) snprintf(specs[nv++], sizeof specs[0], "%s", tok);
    }
    snprintf(buf, sizeof buf, "%s", o->models);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && !status;
         tok = strtok_r(NULL, ",", &save)) {
        status = nm >= 4 || strlen(tok) >= sizeof models[0];
        if (!status) snprintf(models[nm++], sizeof models[0], "%s", tok);
    }
    if (status) {
        fprintf(stderr, "lowbit bench: too many or too long models/variants\n");
        lb_ctx_free(ctx);
        return 1;
    }
    cJSON *torch = NULL;
    if (o->torch_json) {
#ifdef HAVE_CJSON
        torch = load_torch(ctx, o->torch_json);
#else
        fprintf(stderr, "lowbit bench: --torch needs a build with cJSON\n");
#endif
        if (!torch) {
            lb_ctx_free(ctx);
            return 1;
        }
    }
    FILE *csv;
    if (bench_csv_open(o->csv_path,
                       "model,threads,variant,ms,vs_fp32,vs_torch_fp32,vs_torch_bf16\n", &csv)) {
        cJSON_Delete(torch);
        lb_ctx_free(ctx);
        return 1;
    }
    printf("lowbit %s training-step benchmark: default models, cpu backend (best ISA %s); one "
           "step =\nbatch + forward + backward + clipping + AdamW; %d interleaved rounds of one "
           "sample >= %.2f s per variant; medians;\nratios are speed-ups (their time / ours)%s\n",
           lb_version(), lb_isa_name(lb_cpu_best_isa()), o->repeats, o->min_time,
           torch ? "; PyTorch times from the --torch file" : "");
    for (int mi = 0; mi < nm && status == 0; mi++) {
        const char *model = models[mi];
        double rel[BENCH_MAX_VARIANTS];
        for (int v = 0; v < nv; v++) rel[v] = -1;
        for (int v = 0; v < nv && status == 0 && o->check_batch >= 0; v++)
            status = check_variant(ctx, model, specs[v], o->check_batch, &rel[v]);
        for (int ti = 0; ti < o->nthreads && status == 0; ti++) {
            if (o->threads[ti] > 0 && lb_ctx_set_threads(ctx, o->threads[ti]) != LB_OK) {
                fprintf(stderr, "lowbit bench: %s\n", lb_ctx_error(ctx));
                status = 1;
                break;
            }
            const int threads = lb_ctx_threads(ctx);
            step_run runs[BENCH_MAX_VARIANTS];
            bench_timed t[BENCH_MAX_VARIANTS];
            memset(runs, 0, sizeof runs);
            memset(t, 0, sizeof t);
            int64_t batch = 0;
            for (int v = 0; v < nv && status == 0; v++) {
                lb_train_config c;
                runs[v].ctx = ctx;
                lb_status st = step_config(ctx, model, specs[v], "cpu", 0, &c);
                if (st == LB_OK) st = lb_trainer_create(ctx, &c, &runs[v].tr);
                if (st != LB_OK) {
                    fprintf(stderr, "lowbit bench: %s %s: %s\n", model, specs[v],
                            lb_ctx_error(ctx));
                    status = 1;
                }
                batch = c.batch_size;
                t[v].run = run_step;
                t[v].arg = &runs[v];
            }
            double sec[BENCH_MAX_VARIANTS];
            if (status == 0 &&
                bench_time_interleaved(t, nv, 2, o->repeats, o->min_time, sec) != LB_OK) {
                fprintf(stderr, "lowbit bench: %s: %s\n", model, lb_ctx_error(ctx));
                status = 1;
            }
            if (status == 0) {
                double fp32 = 0;
                for (int v = 0; v < nv; v++)
                    if (strcmp(specs[v], "fp32") == 0) fp32 = sec[v];
                const double tf = torch_ms(torch, model, threads, "fp32") / 1e3;
                const double tb = torch_ms(torch, model, threads, "bf16") / 1e3;
                printf("\n%s, batch %lld, %d thread%s\n", model, (long long)batch, threads,
                       threads == 1 ? "" : "s");
                printf("  %-18s %9s %9s %9s %9s  %s\n", "variant", "ms/step", "vs fp32",
                       "vs torch", "vs bf16", "cpu vs ref (2 steps)");
                if (torch && (tf > 0 || tb > 0))
                    printf("  %-18s %9.2f %9s %9s %9s\n  %-18s %9.2f\n", "torch fp32", 1e3 * tf,
                           "", "", "", "torch bf16", 1e3 * tb);
                for (int v = 0; v < nv; v++) {
                    printf("  %-18s %9.2f", specs[v], 1e3 * sec[v]);
                    print_ratio(sec[v], fp32);
                    print_ratio(sec[v], tf);
                    print_ratio(sec[v], tb);
                    if (rel[v] >= 0) printf("  losses within %.1e\n", rel[v]);
                    else printf("  not checked\n");
                    if (csv)
                        fprintf(csv, "%s,%d,%s,%.3f,%.3f,%.3f,%.3f\n", model, threads, specs[v],
                                1e3 * sec[v], fp32 > 0 ? fp32 / sec[v] : 0,
                                tf > 0 ? tf / sec[v] : 0, tb > 0 ? tb / sec[v] : 0);
                }
            }
            for (int v = 0; v < nv; v++) lb_trainer_free(runs[v].tr);
        }
    }
    if (csv) fclose(csv);
    cJSON_Delete(torch);
    lb_ctx_free(ctx);
    return status;
}
