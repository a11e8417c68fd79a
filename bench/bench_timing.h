/* bench/bench_timing.h — how the benchmarks behind `lowbit bench` time a
 * piece of work: a warm-up, samples of at least min_time seconds each
 * (enough back-to-back calls to fill it), taken in interleaved rounds so
 * that a change in machine load hits every variant alike, and the median
 * sample reported.
 */
#ifndef LOWBIT_BENCH_TIMING_H
#define LOWBIT_BENCH_TIMING_H

#include <stdint.h>
#include <stdio.h>

#include "lowbit/status.h"

#define BENCH_MAX_SAMPLES 64

/* Monotonic wall clock in seconds. */
double bench_now(void);

/* The median of v[0..n) (sorts v); 0 when n < 1. */
double bench_median(double *v, int n);

/* One timed piece of work: run(arg) does it once. */
typedef struct bench_timed {
    lb_status (*run)(void *arg);
    void *arg;
    int64_t calls;                     /* calls per sample (bench_timed_prepare) */
    double samples[BENCH_MAX_SAMPLES]; /* seconds per call */
    int nsamples;
} bench_timed;

/* Warms up (`warmup` calls) and sizes a sample to last >= min_time
 * seconds (at least one call). Clears the samples. */
lb_status bench_timed_prepare(bench_timed *t, int warmup, double min_time);

/* Takes one sample: seconds per call over t->calls back-to-back calls. */
lb_status bench_timed_sample(bench_timed *t);

/* Times n variants: prepares each, then `repeats` rounds of one sample of
 * every variant; sec[i] = the median seconds per call of variant i. Stops at
 * the first error. */
lb_status bench_time_interleaved(bench_timed *t, int n, int warmup, int repeats, double min_time,
                                 double *sec);

/* *out = `path` opened for writing with the CSV `header` line written, or
 * NULL when path is NULL. Returns 0, or 1 after printing "lowbit bench:
 * cannot write PATH: REASON" to stderr. */
int bench_csv_open(const char *path, const char *header, FILE **out);

#endif
