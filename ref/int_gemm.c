/* ref/int_gemm.c — exact int8 x int8 -> int32 GEMM, the oracle for every
 * integer GEMM (cpu micro-kernels, oneDNN, CUDA).
 *
 * Computes C = op(A) · op(B) with sums in increasing k (see
 * lowbit/ref/int_gemm.h). The quantized linear layers of Xi et al. (spec
 * int4_training.md A.6, the three GEMMs) and LUQ (B.7) call it with int4
 * values stored in int8. Leaves out: saturation of non-VNNI instruction
 * sequences (fast paths must be exact instead), scales (applied by callers).
 */
#include "config.h"
#include "lowbit/ref/int_gemm.h"

#include <stdint.h>

#include "lowbit/alloc.h"

lb_status lb_gemm_i8_ref(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                         const int8_t *A, const int8_t *B, int32_t *C)
{
    if (M < 0 || N < 0 || K < 0)
        return lb_error(ctx, LB_ERR_ARG, "negative GEMM size M=%lld N=%lld K=%lld", (long long)M,
                        (long long)N, (long long)K);
    if (K > LB_GEMM_I8_MAX_K)
        return lb_error(ctx, LB_ERR_ARG, "GEMM K=%lld exceeds %d: int32 accumulation could overflow",
                        (long long)K, LB_GEMM_I8_MAX_K);
    if ((M * N > 0) && !C) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM output");
    if (M * N * K > 0 && (!A || !B)) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM operand");
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            int32_t acc = 0;
            for (int64_t k = 0; k < K; k++) {
                int32_t a = trans_a ? A[k * M + m] : A[m * K + k];
                int32_t b = trans_b ? B[n * K + k] : B[k * N + n];
                acc += a * b;
            }
            C[m * N + n] = acc;
        }
    }
    return LB_OK;
}

void lb_gemm_i8_dequant_ref(const lb_gemm_i8_dequant *d, const int32_t *C, int64_t M, int64_t N)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float y = d->scale * (float)C[m * N + n];
            if (d->bias) y += d->bias[n];
            d->out[m * N + n] = y;
        }
}

lb_status lb_gemm_i8_hooked_dequant(const lb_gemm_i8_hook *hook, lb_ctx *ctx, int trans_a,
                                    int trans_b, int64_t M, int64_t N, int64_t K,
                                    const int8_t *A, const int8_t *B, int32_t *C,
                                    const lb_gemm_i8_dequant *d)
{
    if (!d || (M > 0 && N > 0 && !d->out))
        return lb_error(ctx, LB_ERR_ARG, "GEMM dequantize: NULL output");
    if (hook && hook->fn_dequant)
        return hook->fn_dequant(hook->user, ctx, trans_a, trans_b, M, N, K, A, B, C, d);
    int32_t *z = C;
    if (!z && M > 0 && N > 0) {
        if (M > INT64_MAX / N || (uint64_t)(M * N) > SIZE_MAX / sizeof *z ||
            !(z = lb_alloc((size_t)(M * N) * sizeof *z)))
            return lb_error(ctx, LB_ERR_NOMEM, "GEMM dequantize: cannot allocate C (%lld x %lld)",
                            (long long)M, (long long)N);
    }
    lb_status st = lb_gemm_i8_hooked(hook, ctx, trans_a, trans_b, M, N, K, A, B, z);
    if (st == LB_OK) lb_gemm_i8_dequant_ref(d, z, M, N);
    if (z != C) lb_free(z);
    return st;
}
