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

/* Median seconds per call; 0 on error. */
static double time_median(runner *r, int repeats, double min_time)
{
    for (int i = 0; i < 2; i++)
        if (run_once(r) != LB_OK) return 0;
    double t0 = now_seconds();
    if (run_once(r) != LB_OK) return 0;
    double one = now_seconds() - t0;
    int64_t calls = one > 0 ? (int64_t)ceil(min_time / one) : 1;
    if (calls < 1) calls = 1;
    double samples[64];
    if (repeats > 64) repeats = 64;
    for (int s = 0; s < repeats; s++) {
        t0 = now_seconds();
        for (int64_t c = 0; c < calls; c++)
            if (run_once(r) != LB_OK) return 0;
        samples[s] = (now_seconds() - t0) / (double)calls;
    }
    qsort(samples, (size_t)repeats, sizeof samples[0], cmp_double);
    return samples[repeats / 2];
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

typedef struct result_row {
    char kernel[64];
    const char *isa;
    double gops, peak;
} result_row;

static void print_row(FILE *csv, int threads, const int64_t *shape, const result_row *row,
                      double onednn_gops, double sgemm_gops, int first)
{
    char shape_s[64];
    snprintf(shape_s, sizeof shape_s, "%lldx%lldx%lld", (long long)shape[0], (long long)shape[1],
             (long long)shape[2]);
    char peak_s[16] = "-", vd_s[16] = "-", vs_s[16] = "-";
    if (row->peak > 0) snprintf(peak_s, sizeof peak_s, "%.1f%%", 100.0 * row->gops / row->peak);
    if (onednn_gops > 0) snprintf(vd_s, sizeof vd_s, "%.2fx", row->gops / onednn_gops);
    if (sgemm_gops > 0) snprintf(vs_s, sizeof vs_s, "%.2fx", row->gops / sgemm_gops);
    printf("%-18s %3d  %-34s %-11s %8.1f %8s %9s %9s\n", first ? shape_s : "", threads,
           row->kernel, row->isa, row->gops, peak_s, vd_s, vs_s);
    if (csv)
        fprintf(csv, "%lld,%lld,%lld,%d,%s,%s,%.3f,%.3f,%.4f,%.4f,%.4f\n", (long long)shape[0],
                (long long)shape[1], (long long)shape[2], threads, row->kernel, row->isa,
                row->gops, row->peak, row->peak > 0 ? row->gops / row->peak : 0.0,
                onednn_gops > 0 ? row->gops / onednn_gops : 0.0,
                sgemm_gops > 0 ? row->gops / sgemm_gops : 0.0);
}

static const lb_isa vector_paths[] = {LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};

int bench_gemm_i8(const bench_gemm_i8_opts *o)
{
    lb_ctx *ctx = NULL;
    if (lb_ctx_create(&ctx) != LB_OK) {
        fprintf(stderr, "lowbit bench: %s\n", lb_ctx_error(ctx));
        lb_ctx_free(ctx);
        return 1;
    }
    lb_ctx_set_isa(ctx, LB_ISA_AUTO); /* each path is forced explicitly below */
    FILE *csv = NULL;
    if (o->csv_path) {
        csv = fopen(o->csv_path, "w");
        if (!csv) {
            fprintf(stderr, "lowbit bench: cannot write %s\n", o->csv_path);
            lb_ctx_free(ctx);
            return 1;
        }
        fprintf(csv, "M,N,K,threads,kernel,isa,gops,peak_gops,frac_peak,vs_onednn,vs_sgemm\n");
    }
    /* Which cpu paths to time. */
    lb_isa paths[5];
    int npaths = 0;
    const lb_isa all[] = {LB_ISA_SCALAR, LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const int wanted = o->isa_mask ? (int)((o->isa_mask >> all[i]) & 1u)
                                       : (all[i] != LB_ISA_SCALAR ||
                                          lb_cpu_best_isa() == LB_ISA_SCALAR);
        if (!wanted) continue;
        if (!lb_cpu_isa_available(all[i])) {
            if (o->isa_mask)
                printf("note: the %s path is not available on this CPU/build; skipped\n",
                       lb_isa_name(all[i]));
            continue;
        }
        paths[npaths++] = all[i];
    }
    const lb_isa best = lb_cpu_best_isa();
    const int onednn = lb_onednn_available(), onednn_exact = lb_onednn_int8_exact();
    const int wmax = (onednn && !onednn_exact) ? 64 : 127;
    printf("lowbit %s int8 GEMM benchmark: C = X (M,K) · W^T, W (N,K); GOP/s = 2·M·N·K / time\n",
           lb_version());
    printf("cpu paths: best %s; timed:", lb_isa_name(best));
    for (int i = 0; i < npaths; i++)
        printf(" %s (%s)", lb_isa_name(paths[i]), lb_gemm_i8_kernel_name(paths[i]));
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
    printf("data: X in [-128, 127], W in [-%d, %d]; median of %d samples of >= %.2f s\n", wmax,
           wmax, o->repeats, o->min_time);

    int status = 0;
    for (int ti = 0; ti < o->nthreads; ti++) {
        /* Peaks per thread count. */
        double peak[5] = {0};
        if (lb_ctx_set_threads(ctx, o->threads[ti]) != LB_OK) {
            fprintf(stderr, "lowbit bench: %s\n", lb_ctx_error(ctx));
            status = 1;
            goto out;
        }
        printf("\nthreads %d: measured int8 peaks (GOP/s, median of %d):", o->threads[ti], o->repeats);
        for (size_t p = 0; p < sizeof vector_paths / sizeof vector_paths[0]; p++) {
            const lb_isa isa = vector_paths[p];
            if (!lb_cpu_isa_available(isa)) {
                printf(" %s n/a (%s)", lb_isa_name(isa),
                       lb_gemm_i8_kernel_name(isa)[0] ? "CPU lacks it" : "not built");
                continue;
            }
            double s[64];
            int n = o->repeats > 64 ? 64 : o->repeats;
            for (int r = 0; r < n; r++)
                if (lb_cpu_int8_peak(ctx, isa, o->min_time, &s[r]) != LB_OK) s[r] = 0;
            qsort(s, (size_t)n, sizeof s[0], cmp_double);
            peak[isa] = s[n / 2];
            printf(" %s %.1f", lb_isa_name(isa), peak[isa]);
        }
        printf("\n");
        if (csv)
            for (size_t p = 0; p < sizeof vector_paths / sizeof vector_paths[0]; p++)
                if (peak[vector_paths[p]] > 0)
                    fprintf(csv, "0,0,0,%d,peak,%s,%.3f,%.3f,1,0,0\n", o->threads[ti],
                            lb_isa_name(vector_paths[p]), peak[vector_paths[p]],
                            peak[vector_paths[p]]);
        peak[LB_ISA_AUTO] = peak[best];
        printf("%-18s %3s  %-34s %-11s %8s %8s %9s %9s\n", "shape MxNxK", "thr", "kernel", "isa",
               "GOP/s", "%peak", "vs oneDNN", "vs sgemm");

        for (int si = 0; si < o->nshapes; si++) {
            const int64_t M = o->shapes[si][0], N = o->shapes[si][1], K = o->shapes[si][2];
            const double ops = 2.0 * (double)M * (double)N * (double)K;
            int8_t *X = lb_alloc((size_t)(M * K)), *W = lb_alloc((size_t)(N * K));
            uint8_t *W4 = lb_calloc((size_t)lb_s4_bytes(N * K), 1);
            int8_t *W4v = lb_alloc((size_t)(N * K));
            int32_t *C = lb_alloc((size_t)(M * N) * sizeof(int32_t));
            int32_t *ref = lb_alloc((size_t)(M * N) * sizeof(int32_t));
            int32_t *ref4 = lb_alloc((size_t)(M * N) * sizeof(int32_t));
            float *Xf = lb_alloc((size_t)(M * K) * sizeof(float));
            float *Wf = lb_alloc((size_t)(N * K) * sizeof(float));
            float *Cf = lb_alloc((size_t)(M * N) * sizeof(float));
            if (!X || !W || !W4 || !W4v || !C || !ref || !ref4 || !Xf || !Wf || !Cf) {
                fprintf(stderr, "lowbit bench: out of memory for %lldx%lldx%lld\n", (long long)M,
                        (long long)N, (long long)K);
                status = 1;
            }
            result_row rows[16];
            int nrows = 0;
            double onednn_gops = 0, sgemm_gops = 0;
            for (int64_t i = 0; status == 0 && i < M * K; i++) {
                X[i] = (int8_t)((int)(lb_rng_u32(11, 1, (uint64_t)i) & 255u) - 128);
                Xf[i] = X[i];
            }
            for (int64_t i = 0; status == 0 && i < N * K; i++) {
                const uint32_t r = lb_rng_u32(11, 2, (uint64_t)i);
                W[i] = (int8_t)((int)(r % (uint32_t)(2 * wmax + 1)) - wmax);
                Wf[i] = W[i];
                W4v[i] = (int8_t)((int)(r & 15u) - 8);
                W4[i / 2] |= (uint8_t)(((unsigned)W4v[i] & 15u) << ((i & 1) ? 4 : 0));
            }
            if (status == 0) {
                lb_gemm_i8_ref(ctx, 0, 1, M, N, K, X, W, ref);
                lb_gemm_i8_ref(ctx, 0, 1, M, N, K, X, W4v, ref4);
            }
            /* Our kernels: every timed path with int8 weights; int4 weights on the best. */
            for (int p = 0; status == 0 && p < npaths; p++) {
                for (int w4 = 0; w4 <= (paths[p] == best ? 1 : 0); w4++) {
                    lb_ctx_set_isa(ctx, paths[p]);
                    lb_packed_i8 *packed = NULL;
                    lb_status st = lb_gemm_i8_pack_b(ctx, w4 ? LB_INT_S4 : LB_INT_S8, 1, K, N,
                                                     w4 ? (const void *)W4 : (const void *)W,
                                                     &packed);
                    runner r = {ctx, 0, LB_INT_S8, M, N, K, X, packed, NULL, NULL, NULL, NULL, C};
                    if (st == LB_OK) st = run_once(&r);
                    if (st != LB_OK) {
                        fprintf(stderr, "lowbit bench: %s: %s\n", lb_status_str(st),
                                lb_ctx_error(ctx));
                        status = 1;
                    } else {
                        int64_t bad = first_mismatch(C, w4 ? ref4 : ref, M * N);
                        if (bad >= 0) {
                            fprintf(stderr,
                                    "lowbit bench: %s path%s differs from the reference at "
                                    "C[%lld][%lld] (%d vs %d)\n",
                                    lb_isa_name(paths[p]), w4 ? " (int4 W)" : "",
                                    (long long)(bad / N), (long long)(bad % N), C[bad],
                                    (w4 ? ref4 : ref)[bad]);
                            status = 1;
                        } else {
                            double t = time_median(&r, o->repeats, o->min_time);
                            result_row *row = &rows[nrows++];
                            snprintf(row->kernel, sizeof row->kernel, "lowbit %s%s",
                                     lb_gemm_i8_kernel_name(paths[p]), w4 ? " int4-W" : "");
                            row->isa = lb_isa_name(paths[p]);
                            row->gops = t > 0 ? ops / t / 1e9 : 0;
                            row->peak = peak[paths[p]];
                        }
                    }
                    lb_packed_i8_free(packed);
                    lb_ctx_set_isa(ctx, LB_ISA_AUTO);
                }
            }
            /* oneDNN u8·s8 with weights reordered once. */
            if (status == 0 && onednn) {
                lb_onednn_gemm_i8 *g = NULL;
                lb_status st = lb_onednn_gemm_i8_create(ctx, 0, 1, M, N, K, W, &g);
                runner r = {ctx, 1, LB_INT_S8, M, N, K, X, NULL, g, NULL, NULL, NULL, C};
                if (st == LB_OK) st = run_once(&r);
                if (st != LB_OK) {
                    printf("note: oneDNN: %s: %s\n", lb_status_str(st), lb_ctx_error(ctx));
                } else if (first_mismatch(C, ref, M * N) >= 0) {
                    fprintf(stderr, "lowbit bench: oneDNN differs from the reference\n");
                    status = 1;
                } else {
                    double t = time_median(&r, o->repeats, o->min_time);
                    result_row *row = &rows[nrows++];
                    snprintf(row->kernel, sizeof row->kernel, "oneDNN u8s8 %s",
                             lb_onednn_gemm_i8_impl(g));
                    row->isa = "(oneDNN)";
                    row->gops = onednn_gops = t > 0 ? ops / t / 1e9 : 0;
                    row->peak = peak[best];
                }
                lb_onednn_gemm_i8_free(g);
            }
            /* OpenBLAS sgemm NT on the same integers. */
            if (status == 0) {
                runner r = {ctx, 2, LB_INT_S8, M, N, K, NULL, NULL, NULL, Xf, Wf, Cf, NULL};
                lb_status st = run_once(&r);
                if (st != LB_OK) {
                    printf("note: sgemm: %s: %s\n", lb_status_str(st), lb_ctx_error(ctx));
                } else if (check_sgemm(Cf, ref, X, W, M, N, K) > 0) {
                    fprintf(stderr, "lowbit bench: sgemm exceeds the fp32 error bound\n");
                    status = 1;
                } else {
                    double t = time_median(&r, o->repeats, o->min_time);
                    result_row *row = &rows[nrows++];
                    snprintf(row->kernel, sizeof row->kernel, "OpenBLAS sgemm NT (fp32)");
                    row->isa = "(OpenBLAS)";
                    row->gops = sgemm_gops = t > 0 ? ops / t / 1e9 : 0;
                    row->peak = 0;
                }
            }
            for (int i = 0; i < nrows; i++)
                print_row(csv, o->threads[ti], o->shapes[si], &rows[i], onednn_gops, sgemm_gops,
                          i == 0);
            fflush(stdout);
            lb_free(X);
            lb_free(W);
            lb_free(W4);
            lb_free(W4v);
            lb_free(C);
            lb_free(ref);
            lb_free(ref4);
            lb_free(Xf);
            lb_free(Wf);
            lb_free(Cf);
            if (status) goto out;
        }
    }
    printf("\n%%peak: of the measured peak of the kernel's own instruction sequence (oneDNN: of the "
           "best path's);\nvs oneDNN / vs sgemm: throughput ratio to the peer in the same run.\n");
out:
    if (csv) fclose(csv);
    lb_ctx_free(ctx);
    return status;
}
