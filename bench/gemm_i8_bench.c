/* bench/gemm_i8_bench.c — `lowbit bench gemm-i8`: int8 GEMM throughput of
 * lowbit's cpu kernels (each ISA path, int8 and int4 weights) against
 * oneDNN's u8·s8 matmul (packed weights) and OpenBLAS sgemm, measured in the
 * same run, plus the measured int8 peak of each path's instruction sequence.
 *
 * C (M, N) = X (M, K) · W^T with W (N, K): the nn.Linear layout (sgemm NT).
 * Ops are counted as 2·M·N·K. Procedure per (shape, threads, kernel):
 * weights packed once (not timed), one call checked against lb_gemm_i8_ref
 * (integer kernels bit for bit; sgemm within the fp32 error bound on sampled
 * elements), 2 warm-up calls, then `repeats` samples of back-to-back calls
 * lasting >= min_time each; the median sample is reported. The machine may
 * be shared: run it when quiet and repeat.
 *
 * Data: X uniform in [-128, 127]; W uniform in [-127, 127], or in [-64, 64]
 * when oneDNN's int8 kernels on this CPU lack VNNI (they saturate beyond,
 * see lowbit/cpu.h) so that every kernel is checked on the same data. Timing
 * does not depend on the values.
 */
#include "config.h"
#include "bench.h"
#include "bench_timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lowbit/lowbit.h"
#include "lowbit/cpu.h"
#include "lowbit/ref/int_gemm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static const int64_t default_shapes[][3] = {
    {4096, 256, 256}, {4096, 1024, 256}, {4096, 256, 1024}, {256, 256, 4096}, {1024, 1024, 1024}};

void bench_gemm_i8_defaults(bench_gemm_i8_opts *o)
{
    memset(o, 0, sizeof *o);
    o->nshapes = (int)(sizeof default_shapes / sizeof default_shapes[0]);
    memcpy(o->shapes, default_shapes, sizeof default_shapes);
    o->nthreads = 1;
#ifdef _OPENMP
    o->threads[0] = omp_get_max_threads();
#else
    o->threads[0] = 1;
#endif
    o->repeats = 7;
    o->min_time = 0.1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One timed kernel: a closure over its operands. */
typedef struct runner {
    lb_ctx *ctx;
    int kind; /* 0 ours (packed), 1 oneDNN, 2 sgemm */
    lb_int_format fmt_a;
    int64_t M, N, K;
    const void *A;
    const lb_packed_i8 *packed;
    lb_onednn_gemm_i8 *onednn;
    const float *Af, *Bf;
    float *Cf;
    int32_t *C;
} runner;

static lb_status run_once(runner *r)
{
    switch (r->kind) {
    case 0: return lb_gemm_i8_packed(r->ctx, r->fmt_a, 0, r->M, r->A, r->packed, r->C);
    case 1: return lb_onednn_gemm_i8_run(r->ctx, r->onednn, r->A, r->C);
    default: return lb_sgemm_openblas(r->ctx, 0, 1, r->M, r->N, r->K, r->Af, r->Bf, r->Cf);
    }
}

/* A runner's timing state: calls per sample and the samples taken. */
typedef struct timed {
    runner r;
    int64_t calls;
    double samples[64];
    int nsamples;
} timed;

/* Warms up (2 calls) and sizes a sample to last >= min_time. */
static lb_status timed_prepare(timed *t, double min_time)
{
    for (int i = 0; i < 2; i++) {
        lb_status st = run_once(&t->r);
        if (st != LB_OK) return st;
    }
    double t0 = now_seconds();
    lb_status st = run_once(&t->r);
    const double one = now_seconds() - t0;
    t->calls = one > 0 ? (int64_t)ceil(min_time / one) : 1;
    if (t->calls < 1) t->calls = 1;
    t->nsamples = 0;
    return st;
}

/* One sample: seconds per call over t->calls back-to-back calls. */
static lb_status timed_sample(timed *t)
{
    const double t0 = now_seconds();
    for (int64_t c = 0; c < t->calls; c++) {
        lb_status st = run_once(&t->r);
        if (st != LB_OK) return st;
    }
    if (t->nsamples < 64) t->samples[t->nsamples++] = (now_seconds() - t0) / (double)t->calls;
    return LB_OK;
}

static double median(double *v, int n)
{
    if (n < 1) return 0;
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return v[n / 2];
}

/* First index where got != want, or -1. */
static int64_t first_mismatch(const int32_t *got, const int32_t *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i]) return i;
    return -1;
}

/* sgemm on integers: checks sampled elements against the exact result with
 * the fp32 summation bound |err| <= gamma_K · sum_k |x_k w_k|,
 * gamma_K = K·u / (1 - K·u), u = 2^-24. Returns the number of violations. */
static int64_t check_sgemm(const float *Cf, const int32_t *want, const int8_t *X, const int8_t *W,
                           int64_t M, int64_t N, int64_t K)
{
    const double u = ldexp(1.0, -24), gamma = (double)K * u / (1.0 - (double)K * u);
    int64_t bad = 0;
    for (int64_t s = 0; s < 997; s++) {
        const int64_t idx = (s * 7919 + 13) % (M * N), m = idx / N, n = idx % N;
        double mag = 0;
        for (int64_t k = 0; k < K; k++) mag += fabs((double)X[m * K + k] * (double)W[n * K + k]);
        if (fabs((double)Cf[idx] - (double)want[idx]) > gamma * mag) bad++;
    }
    return bad;
}

static const lb_isa vector_paths[] = {LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};

#define MAX_TIMED 12

/* The operands of one shape, its reference results and float copies. */
typedef struct shape_data {
    int64_t M, N, K;
    int8_t *X, *W, *W4v; /* W4v: the int4 weights as int8 values */
    uint8_t *W4;         /* packed int4 weights */
    int32_t *C, *ref, *ref4;
    float *Xf, *Wf, *Cf;
} shape_data;

static void shape_free(shape_data *d)
{
    lb_free(d->X);
    lb_free(d->W);
    lb_free(d->W4v);
    lb_free(d->W4);
    lb_free(d->C);
    lb_free(d->ref);
    lb_free(d->ref4);
    lb_free(d->Xf);
    lb_free(d->Wf);
    lb_free(d->Cf);
}

static int shape_make(lb_ctx *ctx, int64_t M, int64_t N, int64_t K, int wmax, shape_data *d)
{
    memset(d, 0, sizeof *d);
    d->M = M, d->N = N, d->K = K;
    d->X = lb_alloc((size_t)(M * K));
    d->W = lb_alloc((size_t)(N * K));
    d->W4v = lb_alloc((size_t)(N * K));
    d->W4 = lb_calloc((size_t)lb_s4_bytes(N * K), 1);
    d->C = lb_alloc((size_t)(M * N) * sizeof(int32_t));
    d->ref = lb_alloc((size_t)(M * N) * sizeof(int32_t));
    d->ref4 = lb_alloc((size_t)(M * N) * sizeof(int32_t));
    d->Xf = lb_alloc((size_t)(M * K) * sizeof(float));
    d->Wf = lb_alloc((size_t)(N * K) * sizeof(float));
    d->Cf = lb_alloc((size_t)(M * N) * sizeof(float));
    if (!d->X || !d->W || !d->W4v || !d->W4 || !d->C || !d->ref || !d->ref4 || !d->Xf || !d->Wf ||
        !d->Cf) {
        fprintf(stderr, "lowbit bench: out of memory for %lldx%lldx%lld\n", (long long)M,
                (long long)N, (long long)K);
        return 1;
    }
    for (int64_t i = 0; i < M * K; i++) {
        d->X[i] = (int8_t)((int)(lb_rng_u32(11, 1, (uint64_t)i) & 255u) - 128);
        d->Xf[i] = d->X[i];
    }
    for (int64_t i = 0; i < N * K; i++) {
        const uint32_t r = lb_rng_u32(11, 2, (uint64_t)i);
        d->W[i] = (int8_t)((int)(r % (uint32_t)(2 * wmax + 1)) - wmax);
        d->Wf[i] = d->W[i];
        d->W4v[i] = (int8_t)((int)(r & 15u) - 8);
        d->W4[i / 2] |= (uint8_t)(((unsigned)d->W4v[i] & 15u) << ((i & 1) ? 4 : 0));
    }
    if (lb_gemm_i8_ref(ctx, 0, 1, M, N, K, d->X, d->W, d->ref) != LB_OK ||
        lb_gemm_i8_ref(ctx, 0, 1, M, N, K, d->X, d->W4v, d->ref4) != LB_OK) {
        fprintf(stderr, "lowbit bench: reference: %s\n", lb_ctx_error(ctx));
        return 1;
    }
    return 0;
}

/* One row of the table. */
typedef struct bench_row {
    char kernel[64];
    const char *isa;
    lb_isa peak_isa; /* whose peak the %peak column uses (LB_ISA_AUTO: none) */
    int is_onednn, is_sgemm;
    timed t;
    lb_packed_i8 *packed;
    lb_onednn_gemm_i8 *onednn;
} bench_row;

int bench_gemm_i8(const bench_gemm_i8_opts *o)
{
    lb_ctx *ctx = NULL;
    if (lb_ctx_create(&ctx) != LB_OK) lb_ctx_clear_error(ctx); /* LOWBIT_ISA is ignored here */
    if (!ctx) return 1;
    lb_ctx_set_isa(ctx, LB_ISA_AUTO); /* each path is forced explicitly below */
    FILE *csv;
    if (bench_csv_open(o->csv_path,
                       "M,N,K,threads,kernel,isa,gops,peak_isa,peak_gops,frac_peak,vs_onednn,"
                       "vs_sgemm\n",
                       &csv)) {
        lb_ctx_free(ctx);
        return 1;
    }
    /* Which cpu paths to time (default: the vector paths; scalar only when it is all). */
    const lb_isa best = lb_cpu_best_isa();
    lb_isa paths[4];
    int npaths = 0;
    const lb_isa all[] = {LB_ISA_SCALAR, LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const int wanted = o->isa_mask ? (int)((o->isa_mask >> all[i]) & 1u)
                                       : (all[i] != LB_ISA_SCALAR || best == LB_ISA_SCALAR);
        if (!wanted) continue;
        if (!lb_cpu_isa_available(all[i])) {
            if (o->isa_mask)
                printf("note: the %s path is not available on this CPU/build; skipped\n",
                       lb_isa_name(all[i]));
            continue;
        }
        paths[npaths++] = all[i];
    }
    lb_isa peaks[3];
    int npeaks = 0;
    for (size_t p = 0; p < sizeof vector_paths / sizeof vector_paths[0]; p++)
        if (lb_cpu_isa_available(vector_paths[p])) peaks[npeaks++] = vector_paths[p];
    const int onednn = lb_onednn_available(), onednn_exact = lb_onednn_int8_exact();
    const int wmax = (onednn && !onednn_exact) ? 64 : 127;

    printf("lowbit %s int8 GEMM benchmark: C = X (M,K) · W^T, W (N,K); GOP/s = 2·M·N·K / time\n",
           lb_version());
    printf("cpu paths: best %s; timed:", lb_isa_name(best));
    for (int i = 0; i < npaths; i++)
        printf(" %s (%s)", lb_isa_name(paths[i]), lb_gemm_i8_kernel_name(paths[i]));
    printf("\nint8 peak probes:");
    for (size_t p = 0; p < sizeof vector_paths / sizeof vector_paths[0]; p++)
        printf(" %s %s", lb_isa_name(vector_paths[p]),
               lb_cpu_isa_available(vector_paths[p]) ? "yes"
               : lb_gemm_i8_kernel_name(vector_paths[p])[0] ? "n/a (CPU lacks it)"
                                                            : "n/a (not built)");
    printf("\noneDNN: %s; OpenBLAS sgemm: %s\n",
           onednn ? (onednn_exact ? "yes (VNNI: exact for all int8)"
                                  : "yes (no VNNI: exact only for |W| <= 64)")
                  : "not built",
#ifdef HAVE_OPENBLAS
           "yes"
#else
           "not built"
#endif
    );
    printf("data: X in [-128, 127], W in [-%d, %d]; %d interleaved rounds, one sample of >= %.2f s "
           "per kernel and peak probe per round; medians\n",
           wmax, wmax, o->repeats, o->min_time);
    printf("\n%-16s %3s  %-34s %-10s %8s %7s %9s %8s\n", "shape MxNxK", "thr", "kernel", "isa",
           "GOP/s", "%peak", "vs oneDNN", "vs sgemm");

    int status = 0;
    for (int si = 0; si < o->nshapes && status == 0; si++) {
        shape_data d;
        if (shape_make(ctx, o->shapes[si][0], o->shapes[si][1], o->shapes[si][2], wmax, &d)) {
            shape_free(&d);
            status = 1;
            break;
        }
        const int64_t M = d.M, N = d.N, K = d.K;
        const double ops = 2.0 * (double)M * (double)N * (double)K;
        char shape_s[64];
        snprintf(shape_s, sizeof shape_s, "%lldx%lldx%lld", (long long)M, (long long)N,
                 (long long)K);
        for (int ti = 0; ti < o->nthreads && status == 0; ti++) {
            const int threads = o->threads[ti];
            if (lb_ctx_set_threads(ctx, threads) != LB_OK) {
                fprintf(stderr, "lowbit bench: %s\n", lb_ctx_error(ctx));
                status = 1;
                break;
            }
            bench_row rows[MAX_TIMED];
            int nrows = 0;
            memset(rows, 0, sizeof rows);
            /* lowbit: every timed path with int8 weights; int4 weights on the best. */
            for (int p = 0; p < npaths && status == 0; p++) {
                for (int w4 = 0; w4 <= (paths[p] == best ? 1 : 0) && status == 0; w4++) {
                    bench_row *row = &rows[nrows++];
                    snprintf(row->kernel, sizeof row->kernel, "lowbit %s%s",
                             lb_gemm_i8_kernel_name(paths[p]), w4 ? " int4-W" : "");
                    row->isa = lb_isa_name(paths[p]);
                    row->peak_isa = paths[p] == LB_ISA_SCALAR ? LB_ISA_AUTO : paths[p];
                    lb_ctx_set_isa(ctx, paths[p]);
                    lb_status st = lb_gemm_i8_pack_b(ctx, w4 ? LB_INT_S4 : LB_INT_S8, 1, K, N,
                                                     w4 ? (const void *)d.W4 : (const void *)d.W,
                                                     &row->packed);
                    lb_ctx_set_isa(ctx, LB_ISA_AUTO);
                    runner r = {ctx, 0, LB_INT_S8, M, N, K, d.X, row->packed, NULL, NULL, NULL,
                                NULL, d.C};
                    row->t.r = r;
                    if (st == LB_OK) st = timed_prepare(&row->t, o->min_time);
                    const int32_t *want = w4 ? d.ref4 : d.ref;
                    const int64_t bad = st == LB_OK ? first_mismatch(d.C, want, M * N) : -1;
                    if (st != LB_OK) {
                        fprintf(stderr, "lowbit bench: %s: %s\n", lb_status_str(st),
                                lb_ctx_error(ctx));
                        status = 1;
                    } else if (bad >= 0) {
                        fprintf(stderr,
                                "lowbit bench: %s differs from the reference at C[%lld][%lld] "
                                "(%d vs %d)\n",
                                row->kernel, (long long)(bad / N), (long long)(bad % N), d.C[bad],
                                want[bad]);
                        status = 1;
                    }
                }
            }
            /* oneDNN u8·s8 with weights reordered once (not timed). */
            if (status == 0 && onednn) {
                bench_row *row = &rows[nrows];
                lb_status st = lb_onednn_gemm_i8_create(ctx, 0, 1, M, N, K, d.W, &row->onednn);
                runner r = {ctx, 1, LB_INT_S8, M, N, K, d.X, NULL, row->onednn, NULL, NULL, NULL,
                            d.C};
                row->t.r = r;
                if (st == LB_OK) st = timed_prepare(&row->t, o->min_time);
                if (st != LB_OK) {
                    printf("note: oneDNN: %s: %s\n", lb_status_str(st), lb_ctx_error(ctx));
                    lb_onednn_gemm_i8_free(row->onednn);
                    row->onednn = NULL;
                } else if (first_mismatch(d.C, d.ref, M * N) >= 0) {
                    fprintf(stderr, "lowbit bench: oneDNN differs from the reference\n");
                    status = 1;
                    nrows++;
                } else {
                    snprintf(row->kernel, sizeof row->kernel, "oneDNN u8s8 %s",
                             lb_onednn_gemm_i8_impl(row->onednn));
                    row->isa = "-";
                    row->peak_isa = best == LB_ISA_SCALAR ? LB_ISA_AUTO : best;
                    row->is_onednn = 1;
                    nrows++;
                }
            }
            /* OpenBLAS sgemm NT on the same integers. */
            if (status == 0) {
                bench_row *row = &rows[nrows];
                runner r = {ctx, 2, LB_INT_S8, M, N, K, NULL, NULL, NULL, d.Xf, d.Wf, d.Cf, NULL};
                row->t.r = r;
                lb_status st = timed_prepare(&row->t, o->min_time);
                if (st != LB_OK) {
                    printf("note: sgemm: %s: %s\n", lb_status_str(st), lb_ctx_error(ctx));
                } else if (check_sgemm(d.Cf, d.ref, d.X, d.W, M, N, K) > 0) {
                    fprintf(stderr, "lowbit bench: sgemm exceeds the fp32 error bound\n");
                    status = 1;
                } else {
                    snprintf(row->kernel, sizeof row->kernel, "OpenBLAS sgemm NT (fp32)");
                    row->isa = "-";
                    row->peak_isa = LB_ISA_AUTO;
                    row->is_sgemm = 1;
                    nrows++;
                }
            }
            /* Interleaved rounds: every kernel and peak probe once per round, so a
             * change in machine load hits all of them alike. */
            double peak_samples[3][64];
            for (int round = 0; round < o->repeats && status == 0; round++) {
                for (int i = 0; i < nrows && status == 0; i++) {
                    lb_status st = timed_sample(&rows[i].t);
                    if (st != LB_OK) {
                        fprintf(stderr, "lowbit bench: %s: %s\n", rows[i].kernel,
                                lb_ctx_error(ctx));
                        status = 1;
                    }
                }
                for (int p = 0; p < npeaks && status == 0; p++)
                    if (lb_cpu_int8_peak(ctx, peaks[p], o->min_time, &peak_samples[p][round]) !=
                        LB_OK)
                        peak_samples[p][round] = 0;
            }
            if (status == 0) {
                double peak_of[5] = {0};
                for (int p = 0; p < npeaks; p++)
                    peak_of[peaks[p]] = median(peak_samples[p], o->repeats);
                double onednn_gops = 0, sgemm_gops = 0;
                double gops[MAX_TIMED];
                for (int i = 0; i < nrows; i++) {
                    const double sec = median(rows[i].t.samples, rows[i].t.nsamples);
                    gops[i] = sec > 0 ? ops / sec / 1e9 : 0;
                    if (rows[i].is_onednn) onednn_gops = gops[i];
                    if (rows[i].is_sgemm) sgemm_gops = gops[i];
                }
                for (int i = 0; i < nrows; i++) {
                    const double pk = peak_of[rows[i].peak_isa];
                    char peak_s[16] = "-", vd_s[16] = "-", vs_s[16] = "-";
                    if (pk > 0) snprintf(peak_s, sizeof peak_s, "%.1f%%", 100.0 * gops[i] / pk);
                    if (onednn_gops > 0)
                        snprintf(vd_s, sizeof vd_s, "%.2fx", gops[i] / onednn_gops);
                    if (sgemm_gops > 0) snprintf(vs_s, sizeof vs_s, "%.2fx", gops[i] / sgemm_gops);
                    printf("%-16s %3d  %-34s %-10s %8.1f %7s %9s %8s\n",
                           (ti == 0 && i == 0) ? shape_s : "", threads, rows[i].kernel,
                           rows[i].isa, gops[i], peak_s, vd_s, vs_s);
                    if (csv)
                        fprintf(csv, "%lld,%lld,%lld,%d,%s,%s,%.3f,%s,%.3f,%.4f,%.4f,%.4f\n",
                                (long long)M, (long long)N, (long long)K, threads, rows[i].kernel,
                                rows[i].isa, gops[i],
                                rows[i].peak_isa == LB_ISA_AUTO ? "-"
                                                                : lb_isa_name(rows[i].peak_isa),
                                pk, pk > 0 ? gops[i] / pk : 0.0,
                                onednn_gops > 0 ? gops[i] / onednn_gops : 0.0,
                                sgemm_gops > 0 ? gops[i] / sgemm_gops : 0.0);
                }
                for (int p = 0; p < npeaks; p++) {
                    printf("%-16s %3d  %-34s %-10s %8.1f\n", "", threads, "int8 peak probe",
                           lb_isa_name(peaks[p]), peak_of[peaks[p]]);
                    if (csv)
                        fprintf(csv, "%lld,%lld,%lld,%d,peak probe,%s,%.3f,%s,%.3f,1,0,0\n",
                                (long long)M, (long long)N, (long long)K, threads,
                                lb_isa_name(peaks[p]), peak_of[peaks[p]], lb_isa_name(peaks[p]),
                                peak_of[peaks[p]]);
                }
                fflush(stdout);
            }
            for (int i = 0; i < MAX_TIMED; i++) {
                lb_packed_i8_free(rows[i].packed);
                lb_onednn_gemm_i8_free(rows[i].onednn);
            }
        }
        shape_free(&d);
    }
    if (status == 0)
        printf("\n%%peak: of the int8 peak probe of the kernel's own instruction sequence measured "
               "in the same rounds\n(oneDNN: of the best path's); vs oneDNN / vs sgemm: "
               "throughput ratio to the peer in the same run.\n");
    if (csv) fclose(csv);
    lb_ctx_free(ctx);
    return status;
}
