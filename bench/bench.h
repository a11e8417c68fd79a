/* bench/bench.h — benchmark programs behind `lowbit bench`.
 *
 * Benchmarks are programs, not tests: each checks its kernels against ref/
 * before timing, warms up, reports the median of repeated samples (each at
 * least min_time seconds long) and the ratio to peers measured in the same
 * run, with the ISA and thread count.
 */
#ifndef LOWBIT_BENCH_BENCH_H
#define LOWBIT_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/context.h"
#include "lowbit/recipe.h"

#define BENCH_MAX_SHAPES 32
#define BENCH_MAX_THREADS 16
#define BENCH_MAX_VARIANTS 12

typedef struct bench_gemm_i8_opts {
    int nshapes;
    int64_t shapes[BENCH_MAX_SHAPES][3]; /* (M, N, K) */
    int nthreads;
    int threads[BENCH_MAX_THREADS]; /* thread counts to run, in order */
    int repeats;                    /* samples per figure (median reported) */
    double min_time;                /* seconds per sample */
    unsigned isa_mask;              /* bit (1 << lb_isa) per cpu path to time; 0 = all */
    const char *csv_path;           /* NULL: no CSV */
} bench_gemm_i8_opts;

/* Default shapes, threads (all), repeats 7, min_time 0.1 s. */
void bench_gemm_i8_defaults(bench_gemm_i8_opts *o);

/* Runs the int8 GEMM benchmark; prints a table to stdout. Returns 0, or 1
 * when a kernel disagrees with the reference (or on an error). */
int bench_gemm_i8(const bench_gemm_i8_opts *o);

/* A recipe variant "name[:key=value...]" (lowbit/recipe.h option keys),
 * e.g. "hq:lss=nonzero": the name and its options. hq gets lsq-cold-steps 1
 * (steady state from the second step) unless the spec sets it. LB_ERR_ARG
 * with a message for a bad spec. */
lb_status bench_parse_variant(lb_ctx *ctx, const char *spec, char *name, size_t name_size,
                              lb_recipe_options *o);

typedef struct bench_linear_opts {
    int nshapes;
    int64_t shapes[BENCH_MAX_SHAPES][3]; /* (tokens, out, in) */
    int nthreads;
    int threads[BENCH_MAX_THREADS]; /* thread counts (0: the default) */
    int repeats;                    /* samples per figure (median reported) */
    double min_time;                /* seconds per sample */
    const char *variants;           /* comma-separated recipe variants */
    int64_t check_rows;             /* rows of the cpu-vs-ref check (0: all; < 0: none) */
    const char *csv_path;           /* NULL: no CSV */
} bench_linear_opts;

/* The three 4096-token shapes, variants fp32,int8,hq,hq:lss=nonzero,luq,
 * luq:smp=2, default threads, 5 repeats of >= 0.2 s, check at 256 rows. */
void bench_linear_defaults(bench_linear_opts *o);

/* One linear layer's training forward + backward per recipe variant, after
 * a cpu-vs-ref check of each; prints a table. 0, or 1 on a mismatch/error. */
int bench_linear(const bench_linear_opts *o);

typedef struct bench_step_opts {
    const char *models;     /* comma-separated: vit, gpt, bert */
    const char *variants;   /* comma-separated recipe variants */
    int nthreads;
    int threads[BENCH_MAX_THREADS]; /* thread counts (0: the default) */
    int repeats;
    double min_time;
    int64_t check_batch;    /* batch of the cpu-vs-ref check (< 0: none) */
    const char *torch_json; /* bench/torch_step.py --json output, or NULL */
    const char *csv_path;
} bench_step_opts;

/* vit and gpt at their default configs, variants fp32,int8,hq,
 * hq:lss=nonzero,luq, default threads, 5 repeats of >= 0.5 s, check batch 4. */
void bench_step_defaults(bench_step_opts *o);

/* A full training step (batch, forward, backward, clipping, AdamW) of each
 * model per recipe variant on the cpu backend; ratios to fp32 and to the
 * PyTorch steps of torch_json. 0, or 1 on an error. */
int bench_step(const bench_step_opts *o);

#endif
