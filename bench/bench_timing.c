/* bench/bench_timing.c — warm-up, sized samples, interleaved rounds,
 * medians (bench_timing.h). */
#include "config.h"
#include "bench_timing.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    if (n < 1) return 0;
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return v[n / 2];
}

lb_status bench_timed_prepare(bench_timed *t, int warmup, double min_time)
{
    for (int i = 0; i < warmup; i++) {
        const lb_status st = t->run(t->arg);
        if (st != LB_OK) return st;
    }
    const double t0 = bench_now();
    const lb_status st = t->run(t->arg);
    const double one = bench_now() - t0;
    t->calls = one > 0 ? (int64_t)ceil(min_time / one) : 1;
    if (t->calls < 1) t->calls = 1;
    t->nsamples = 0;
    return st;
}

lb_status bench_timed_sample(bench_timed *t)
{
    const double t0 = bench_now();
    for (int64_t c = 0; c < t->calls; c++) {
        const lb_status st = t->run(t->arg);
        if (st != LB_OK) return st;
    }
    if (t->nsamples < BENCH_MAX_SAMPLES)
        t->samples[t->nsamples++] = (bench_now() - t0) / (double)t->calls;
    return LB_OK;
}

lb_status bench_time_interleaved(bench_timed *t, int n, int warmup, int repeats, double min_time,
                                 double *sec)
{
    for (int i = 0; i < n; i++) {
        const lb_status st = bench_timed_prepare(&t[i], warmup, min_time);
        if (st != LB_OK) return st;
    }
    for (int r = 0; r < repeats; r++)
        for (int i = 0; i < n; i++) {
            const lb_status st = bench_timed_sample(&t[i]);
            if (st != LB_OK) return st;
        }
    for (int i = 0; i < n; i++) sec[i] = bench_median(t[i].samples, t[i].nsamples);
    return LB_OK;
}

int bench_csv_open(const char *path, const char *header, FILE **out)
{
    *out = NULL;
    if (!path) return 0;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "lowbit bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fputs(header, f);
    *out = f;
    return 0;
}
