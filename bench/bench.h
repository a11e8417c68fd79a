/* bench/bench.h — benchmark programs behind `lowbit bench`.
 *
 * Benchmarks are programs, not tests: each checks its kernels against ref/
 * before timing, warms up, reports the median of repeated samples (each at
 * least min_time seconds long) and the ratio to peers measured in the same
 * run, with the ISA and thread count.
 */
#ifndef LOWBIT_BENCH_BENCH_H
#define LOWBIT_BENCH_BENCH_H

#include <stdint.h>
#include "lowbit/context.h"

#define BENCH_MAX_SHAPES 32
#define BENCH_MAX_THREADS 16

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

#endif
