/* cpu/loops.c — the shared threaded loops of cpu/loops.h. */
#include "config.h"
#include "loops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lowbit/alloc.h"
#include "../runtime/clones.h"

/* Output elements per task of the row loops. */
#define CHUNK 16384
/* Rows ahead that the column sums prefetch. */
#define PREFETCH_ROWS 8
/* Columns per pass of the column sums (double partial sums in L1). */
#define COLUMN_BLOCK 1024

int lb_cpu_threads(const lb_ctx *ctx)
{
#ifdef _OPENMP
    return ctx ? lb_ctx_threads(ctx) : omp_get_max_threads();
#else
    (void)ctx;
    return 1;
#endif
}

LB_ISA_CLONES
void lb_cpu_dequant_block(const lb_gemm_i8_dequant *d, const int32_t *z, int64_t ldz, int64_t N,
                          int64_t m0, int64_t mc, int64_t n0, int64_t n1)
{
    const float c = d->scale;
    for (int64_t r = 0; r < mc; r++) {
        const int32_t *zr = z + r * ldz - n0;
        float *o = d->out + (m0 + r) * N;
        if (d->bias) {
            const float *b = d->bias;
#pragma omp simd
            for (int64_t j = n0; j < n1; j++) o[j] = c * (float)zr[j] + b[j];
        } else {
#pragma omp simd
            for (int64_t j = n0; j < n1; j++) o[j] = c * (float)zr[j];
        }
    }
}

void lb_cpu_dequant_rows(float *out, const int32_t *z, const float *bias, float c, int64_t N,
                         int64_t C, int nt)
{
    const lb_gemm_i8_dequant d = {out, c, bias};
    const int64_t rows = CHUNK / (C > 0 ? C : 1) + 1, tasks = (N + rows - 1) / rows;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && tasks > 1)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t n0 = t * rows, n1 = (t + 1) * rows < N ? (t + 1) * rows : N;
        lb_cpu_dequant_block(&d, z + n0 * C, C, C, n0, n1 - n0, 0, C);
    }
}

lb_status lb_cpu_gemm_i8_dequant(const lb_gemm_i8_hook *hook, lb_ctx *ctx, int trans_a,
                                 int trans_b, int64_t M, int64_t N, int64_t K, const int8_t *A,
                                 const int8_t *B, int32_t *C, const lb_gemm_i8_dequant *d, int nt)
{
    if (hook && hook->fn_dequant)
        return lb_gemm_i8_hooked_dequant(hook, ctx, trans_a, trans_b, M, N, K, A, B, C, d);
    if (!d || (M > 0 && N > 0 && !d->out))
        return lb_error(ctx, LB_ERR_ARG, "GEMM dequantize: NULL output");
    int32_t *z = C;
    if (!z && M > 0 && N > 0 && !(z = lb_alloc((size_t)(M * N) * sizeof *z)))
        return lb_error(ctx, LB_ERR_NOMEM, "GEMM dequantize: cannot allocate C (%lld x %lld)",
                        (long long)M, (long long)N);
    lb_status st = lb_gemm_i8_hooked(hook, ctx, trans_a, trans_b, M, N, K, A, B, z);
    if (st == LB_OK) lb_cpu_dequant_rows(d->out, z, d->bias, d->scale, M, N, nt);
    if (z != C) lb_free(z);
    return st;
}

/* Columns [j0, j1) (j1 − j0 <= COLUMN_BLOCK) of lb_cpu_column_sums: the rows
 * in increasing n, read along each row (the partial sums stay in L1). */
LB_ISA_CLONES
static void column_range(float *out, const float *g, int64_t N, int64_t C, int64_t j0, int64_t j1,
                         int accumulate)
{
    double acc[COLUMN_BLOCK];
    const int64_t m = j1 - j0;
    for (int64_t k = 0; k < m; k++) acc[k] = 0.0;
    for (int64_t n = 0; n < N; n++) {
        const float *row = g + n * C + j0;
        /* a thread reads only its columns of each row, a stride the
         * hardware prefetchers follow poorly: ask for a row ahead */
        if (n + PREFETCH_ROWS < N)
            for (int64_t k = 0; k < m; k += 16) __builtin_prefetch(row + PREFETCH_ROWS * C + k);
#pragma omp simd
        for (int64_t k = 0; k < m; k++) acc[k] += (double)row[k];
    }
    for (int64_t k = 0; k < m; k++) out[j0 + k] = accumulate ? out[j0 + k] + (float)acc[k] : (float)acc[k];
}

void lb_cpu_column_share(int64_t C, int64_t group, int nt, int t, int64_t *c0, int64_t *c1)
{
    const int64_t groups = (C + group - 1) / group;
    const int64_t e = groups * (t + 1) / nt * group;
    *c0 = groups * t / nt * group;
    *c1 = e < C ? e : C;
}

void lb_cpu_column_sums(float *out, const float *g, int64_t N, int64_t C, int accumulate, int nt)
{
    if (!(N * C >= 65536) || nt < 1) nt = 1;
    if (nt > (C + 15) / 16) nt = (int)((C + 15) / 16);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int64_t c0, c1;
        lb_cpu_column_share(C, 16, nt, t, &c0, &c1);
        for (int64_t j = c0; j < c1; j += COLUMN_BLOCK)
            column_range(out, g, N, C, j, c1 - j < COLUMN_BLOCK ? c1 : j + COLUMN_BLOCK, accumulate);
    }
}
