/* cpu/blas_sgemm.c — fp32 GEMM through OpenBLAS: the float peer of the
 * integer GEMM in `lowbit bench` (and a float building block).
 *
 * C (M, N) = op(A) · op(B), row-major, with lb_gemm_i8_ref's transposition
 * convention (A (M, K) or (K, M); B (K, N) or (N, K)). Not bit-reproducible
 * across CPUs (OpenBLAS picks kernels per core type), so compare it to a
 * reference with tolerances only. OpenBLAS's OpenMP build follows
 * omp_get_max_threads(), which lb_ctx_set_threads sets; call it from serial
 * code (inside an OpenMP region it runs on one thread).
 */
#include "config.h"
#include "lowbit/cpu.h"

#include <limits.h>
#include <string.h>
#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

lb_status lb_sgemm_openblas(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                            const float *A, const float *B, float *C)
{
    if (M < 0 || N < 0 || K < 0)
        return lb_error(ctx, LB_ERR_ARG, "negative GEMM size M=%lld N=%lld K=%lld", (long long)M,
                        (long long)N, (long long)K);
    if (M > 0 && N > 0 && !C) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM output");
    if (M > 0 && N > 0 && K > 0 && (!A || !B))
        return lb_error(ctx, LB_ERR_ARG, "NULL GEMM operand");
#ifdef HAVE_OPENBLAS
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
        return lb_error(ctx, LB_ERR_UNSUPPORTED, "sgemm size exceeds the BLAS integer range");
    if (M == 0 || N == 0) return LB_OK;
    if (K == 0) {
        memset(C, 0, (size_t)M * (size_t)N * sizeof *C);
        return LB_OK;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, 1.0f, A,
                (blasint)(trans_a ? M : K), B, (blasint)(trans_b ? K : N), 0.0f, C, (blasint)N);
    return LB_OK;
#else
    (void)trans_a;
    (void)trans_b;
    return lb_error(ctx, LB_ERR_UNSUPPORTED, "lowbit was built without OpenBLAS");
#endif
}
