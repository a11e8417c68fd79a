/* bench/linear_bench.c — `lowbit bench linear`: one linear layer's training
 * forward + backward (the three GEMMs Y = X·Wᵀ + b, ∇X = ∇Y·W, ∇W = ∇Yᵀ·X
 * and every quantizer around them) per training recipe, on the cpu
 * backend, against the fp32 recipe (OpenBLAS sgemm) measured in the same
 * run.
 *
 * A variant is a recipe with options, "name[:key=value...]" (lowbit/recipe.h
 * keys), e.g. "hq:lss=nonzero". Each is first run on the ref backend and
 * the cpu backend from the same inputs at a reduced row count (check_rows),
 * and must agree: bit for bit for the integer recipes, within a relative
 * 1e-4 of the largest magnitude for fp32 (sgemm sums in another order).
 * Then each is timed as the model runs it: one forward then one backward
 * per call at layer site (fc1, block 0), the step advancing every call so
 * that stochastic quantizers draw fresh streams; hq's block search and LSQ
 * initialisation happen in the warm-up (lsq-cold-steps 1), as after the
 * first step of training.
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
#include "lowbit/backend.h"
#include "lowbit/cpu.h"
#include "lowbit/recipe.h"
#include "lowbit/rng.h"

static const int64_t default_shapes[][3] = {{4096, 256, 256}, {4096, 1024, 256}, {4096, 256, 1024}};
static const char default_variants[] = "fp32,int8,hq,hq:lss=nonzero,luq,luq:smp=2";

void bench_linear_defaults(bench_linear_opts *o)
{
    memset(o, 0, sizeof *o);
    o->nshapes = (int)(sizeof default_shapes / sizeof default_shapes[0]);
    memcpy(o->shapes, default_shapes, sizeof default_shapes);
    o->nthreads = 1;
    o->threads[0] = 0; /* 0: the context's default (all OpenMP threads) */
    o->repeats = 5;
    o->min_time = 0.2;
    o->variants = default_variants;
    o->check_rows = 256;
}

/* The operands and outputs of one layer. */
typedef struct layer_data {
    int64_t N, C, OC;
    float *x, *w, *b, *dy;   /* (N, C), (OC, C), (OC), (N, OC) */
    float *y, *dx, *dw, *db; /* outputs */
} layer_data;

static void layer_free(layer_data *d)
{
    lb_free(d->x), lb_free(d->w), lb_free(d->b), lb_free(d->dy);
    lb_free(d->y), lb_free(d->dx), lb_free(d->dw), lb_free(d->db);
    memset(d, 0, sizeof *d);
}

/* Uniform values in [-scale, scale) from the counter RNG (stream s), with
 * one outlier of 20·scale: activations with an outlier, as the quantizers
 * meet them. */
static void fill(float *v, int64_t n, uint64_t s, float scale)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * (2.0f * lb_rng_uniform_f32(2024, s, (uint64_t)i) - 1.0f);
    if (n > 3) v[3] = 20.0f * scale;
}

static int layer_make(layer_data *d, int64_t N, int64_t C, int64_t OC)
{
    memset(d, 0, sizeof *d);
    d->N = N, d->C = C, d->OC = OC;
    const size_t f = sizeof(float);
    d->x = lb_alloc((size_t)(N * C) * f);
    d->w = lb_alloc((size_t)(OC * C) * f);
    d->b = lb_alloc((size_t)OC * f);
    d->dy = lb_alloc((size_t)(N * OC) * f);
    d->y = lb_alloc((size_t)(N * OC) * f);
    d->dx = lb_calloc((size_t)(N * C), f);
    d->dw = lb_calloc((size_t)(OC * C), f);
    d->db = lb_calloc((size_t)OC, f);
    if (!d->x || !d->w || !d->b || !d->dy || !d->y || !d->dx || !d->dw || !d->db) return 1;
    fill(d->x, N * C, 1, 1.0f);
    fill(d->w, OC * C, 2, 0.05f);
    fill(d->b, OC, 3, 0.1f);
    fill(d->dy, N * OC, 4, 1e-3f);
    return 0;
}

static lb_status make_recipe(lb_ctx *ctx, const char *spec, lb_recipe **out)
{
    char name[32];
    lb_recipe_options o;
    const lb_status st = bench_parse_variant(ctx, spec, name, sizeof name, &o);
    if (st != LB_OK) return st;
    const lb_recipe_run run = {2024, 1000000, 0};
    return lb_recipe_create_ex(ctx, name, &o, &run, out);
}

/* One training forward + backward of recipe r at step `step`. */
static lb_status layer_step(lb_recipe *r, lb_ctx *ctx, const lb_backend *be, layer_data *d,
                            int64_t step)
{
    const lb_linear_site site = {LB_LINEAR_FC1, 0, step, 1};
    lb_status st = r->linear_forward(r, ctx, be, &site, d->y, d->x, d->w, d->b, d->N, d->C, d->OC);
    if (st == LB_OK)
        st = r->linear_backward(r, ctx, be, &site, d->dx, d->dw, d->db, d->dy, d->x, d->w, d->N,
                                d->C, d->OC);
    return st;
}

/* max |a - b| / max |b| over n values (inf when a value differs in kind). */
static double rel_diff(const float *a, const float *b, int64_t n, int *exact)
{
    double dmax = 0, bmax = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!(a[i] == b[i])) *exact = 0;
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= dmax)) dmax = d; /* NaN propagates */
        if (fabs((double)b[i]) > bmax) bmax = fabs((double)b[i]);
    }
    return bmax > 0 ? dmax / bmax : dmax;
}

/* Runs variant `spec` on ref and cpu from the same inputs (N rows); 0 when
 * they agree (see the file comment). */
static int check_variant(lb_ctx *ctx, const char *spec, int64_t N, int64_t C, int64_t OC,
                         const char **verdict)
{
    layer_data d[2];
    lb_recipe *r[2] = {NULL, NULL};
    const lb_backend *be[2] = {lb_backend_ref(), lb_backend_cpu()};
    int bad = 0;
    for (int k = 0; k < 2 && !bad; k++) {
        bad = layer_make(&d[k], N, C, OC) || make_recipe(ctx, spec, &r[k]) != LB_OK;
        for (int64_t s = 0; s < 2 && !bad; s++) bad = layer_step(r[k], ctx, be[k], &d[k], s) != LB_OK;
    }
    if (!bad) {
        int exact = 1;
        double rel = rel_diff(d[1].y, d[0].y, N * OC, &exact);
        rel = fmax(rel, rel_diff(d[1].dx, d[0].dx, N * C, &exact));
        rel = fmax(rel, rel_diff(d[1].dw, d[0].dw, OC * C, &exact));
        rel = fmax(rel, rel_diff(d[1].db, d[0].db, OC, &exact));
        const int is_fp32 = strncmp(spec, "fp32", 4) == 0;
        if (exact) *verdict = "bit-exact";
        else if (is_fp32 && rel <= 1e-4) *verdict = "within 1e-4";
        else {
            fprintf(stderr, "lowbit bench: %s: cpu differs from ref (max relative %.3g)\n", spec,
                    rel);
            bad = 1;
        }
    } else {
        fprintf(stderr, "lowbit bench: %s: %s\n", spec, lb_ctx_error(ctx));
    }
    for (int k = 0; k < 2; k++) {
        layer_free(&d[k]);
        lb_recipe_free(r[k]);
    }
    return bad;
}

/* A timed variant: the closure bench_timed calls. */
typedef struct variant_run {
    lb_ctx *ctx;
    lb_recipe *recipe;
    layer_data *d;
    int64_t step;
} variant_run;

static lb_status run_variant(void *arg)
{
    variant_run *v = arg;
    return layer_step(v->recipe, v->ctx, lb_backend_cpu(), v->d, v->step++);
}

int bench_linear(const bench_linear_opts *o)
{
    lb_ctx *ctx = NULL;
    if (lb_ctx_create(&ctx) != LB_OK) lb_ctx_clear_error(ctx);
    if (!ctx) return 1;
    char specs[BENCH_MAX_VARIANTS][64];
    int nv = 0;
    {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", o->variants);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            lb_recipe *r = NULL;
            if (nv >= BENCH_MAX_VARIANTS || strlen(tok) >= sizeof specs[0] ||
                make_recipe(ctx, tok, &r) != LB_OK) {
                fprintf(stderr, "lowbit bench: %s\n",
                        nv >= BENCH_MAX_VARIANTS ? "too many variants" : lb_ctx_error(ctx));
                lb_ctx_free(ctx);
                return 1;
            }
            lb_recipe_free(r);
            snprintf(specs[nv++], sizeof specs[0], "%s", tok);
        }
    }
    FILE *csv;
    if (bench_csv_open(o->csv_path, "tokens,out,in,threads,variant,ms,gops,speedup_vs_fp32\n",
                       &csv)) {
        lb_ctx_free(ctx);
        return 1;
    }
    printf("lowbit %s linear-layer benchmark: training forward + backward of one layer "
           "(N tokens, in -> out),\nthree GEMMs and all quantization work; GOP/s = 3·2·N·in·out / "
           "time; speed-up = fp32 time / variant time\n",
           lb_version());
    printf("cpu backend, best ISA %s; %d interleaved rounds of one sample >= %.2f s per variant; "
           "medians\n",
           lb_isa_name(lb_cpu_best_isa()), o->repeats, o->min_time);
    int status = 0;
    for (int si = 0; si < o->nshapes && status == 0; si++) {
        const int64_t N = o->shapes[si][0], OC = o->shapes[si][1], C = o->shapes[si][2];
        const int64_t rows = o->check_rows > 0 && o->check_rows < N ? o->check_rows : N;
        const char *verdict[BENCH_MAX_VARIANTS];
        for (int v = 0; v < nv; v++) verdict[v] = "not checked";
        for (int v = 0; v < nv && status == 0 && o->check_rows >= 0; v++)
            status = check_variant(ctx, specs[v], rows, C, OC, &verdict[v]);
        for (int ti = 0; ti < o->nthreads && status == 0; ti++) {
            if (o->threads[ti] > 0 && lb_ctx_set_threads(ctx, o->threads[ti]) != LB_OK) {
                fprintf(stderr, "lowbit bench: %s\n", lb_ctx_error(ctx));
                status = 1;
                break;
            }
            layer_data d[BENCH_MAX_VARIANTS];
            variant_run vr[BENCH_MAX_VARIANTS];
            bench_timed t[BENCH_MAX_VARIANTS];
            memset(d, 0, sizeof d);
            memset(vr, 0, sizeof vr);
            memset(t, 0, sizeof t);
            for (int v = 0; v < nv && status == 0; v++) {
                vr[v].ctx = ctx;
                vr[v].d = &d[v];
                status = layer_make(&d[v], N, C, OC) || make_recipe(ctx, specs[v], &vr[v].recipe);
                t[v].run = run_variant;
                t[v].arg = &vr[v];
            }
            double sec[BENCH_MAX_VARIANTS];
            if (status == 0 &&
                bench_time_interleaved(t, nv, 2, o->repeats, o->min_time, sec) != LB_OK) {
                fprintf(stderr, "lowbit bench: %s\n", lb_ctx_error(ctx));
                status = 1;
            }
            if (status == 0) {
                double fp32 = 0;
                for (int v = 0; v < nv; v++)
                    if (strcmp(specs[v], "fp32") == 0) fp32 = sec[v];
                printf("\n(tokens, out, in) = (%lld, %lld, %lld), %d thread%s; checked against ref "
                       "at %lld rows\n",
                       (long long)N, (long long)OC, (long long)C, lb_ctx_threads(ctx),
                       lb_ctx_threads(ctx) == 1 ? "" : "s", (long long)rows);
                printf("  %-22s %10s %8s %9s  %s\n", "variant", "ms", "GOP/s", "vs fp32",
                       "cpu vs ref");
                const double ops = 6.0 * (double)N * (double)C * (double)OC;
                for (int v = 0; v < nv; v++) {
                    const double speed = fp32 > 0 ? fp32 / sec[v] : 0;
                    printf("  %-22s %10.3f %8.1f %8.2fx  %s\n", specs[v], 1e3 * sec[v],
                           ops / sec[v] / 1e9, speed, verdict[v]);
                    if (csv)
                        fprintf(csv, "%lld,%lld,%lld,%d,%s,%.4f,%.2f,%.3f\n", (long long)N,
                                (long long)OC, (long long)C, lb_ctx_threads(ctx), specs[v],
                                1e3 * sec[v], ops / sec[v] / 1e9, speed);
                }
            }
            for (int v = 0; v < nv; v++) {
                layer_free(&d[v]);
                lb_recipe_free(vr[v].recipe);
            }
        }
    }
    if (csv) fclose(csv);
    lb_ctx_free(ctx);
    return status;
}
