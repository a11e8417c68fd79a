/* lowbit/ref/int_gemm.h — the reference integer GEMM: int8 operands (which
 * also carry int4 values in [-8, 7]), int32 accumulation, exact.
 *
 * C (M, N) = op(A) (M, K) · op(B) (K, N), all row-major and contiguous:
 *   A is stored (M, K) when trans_a == 0, (K, M) when trans_a != 0;
 *   B is stored (K, N) when trans_b == 0, (N, K) when trans_b != 0
 *   (so C = X · W^T for an nn.Linear weight W (N, K) is trans_b = 1).
 * Each C[m][n] is the int32 sum over k = 0..K-1 in increasing k. Integer
 * addition is associative, so any fast path that does not overflow gives the
 * same bits. No overflow is possible when K <= LB_GEMM_I8_MAX_K
 * (K · 128 · 128 <= 2^31 - 1 fails only beyond it); larger K is rejected.
 */
#ifndef LOWBIT_REF_INT_GEMM_H
#define LOWBIT_REF_INT_GEMM_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* floor((2^31 - 1) / (128 * 128)): the largest K whose int32 sum cannot overflow. */
#define LB_GEMM_I8_MAX_K 131071

/* C = op(A) · op(B) in int32 (see above). LB_ERR_ARG on NULL pointers,
 * negative sizes or K > LB_GEMM_I8_MAX_K. */
lb_status lb_gemm_i8_ref(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                         const int8_t *A, const int8_t *B, int32_t *C);

/* The dequantize epilogue of an integer GEMM: out (M, N) row-major,
 * out[m, n] = scale · fl32(C[m, n]) (+ bias[n] when bias is not NULL), in
 * float32, the product rounded before the addition. */
typedef struct lb_gemm_i8_dequant {
    float *out;        /* (M, N) */
    float scale;
    const float *bias; /* (N) or NULL */
} lb_gemm_i8_dequant;

/* out from C (M, N) as lb_gemm_i8_dequant says, in row order. */
void lb_gemm_i8_dequant_ref(const lb_gemm_i8_dequant *d, const int32_t *C, int64_t M, int64_t N);

/* A replaceable integer GEMM with lb_gemm_i8_ref's arguments and result, plus
 * a user pointer. Layers built on the oracle (lowbit/ref/qlinear_hq.h,
 * lowbit/ref/qlinear_luq.h) take one in their config so that a caller can run
 * the fast exact kernels of lowbit/cpu.h without changing the layer's math:
 * every integer GEMM gives the same bits, so the layer's results do not
 * depend on the hook. fn == NULL (a zeroed hook) means lb_gemm_i8_ref.
 * Initialise a hook whole (`= {0}` or a compound literal), never member by
 * member on an uninitialised struct, so that optional members are NULL. */
typedef struct lb_gemm_i8_hook {
    lb_status (*fn)(void *user, lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N,
                    int64_t K, const int8_t *A, const int8_t *B, int32_t *C);
    void *user;
    /* Optional: the GEMM and its dequantize epilogue d in one call, so that a
     * fast path can convert each block of C while it is in cache. C may be
     * NULL (not kept). Same results as fn followed by
     * lb_gemm_i8_dequant_ref. NULL: lb_gemm_i8_hooked_dequant does that. */
    lb_status (*fn_dequant)(void *user, lb_ctx *ctx, int trans_a, int trans_b, int64_t M,
                            int64_t N, int64_t K, const int8_t *A, const int8_t *B, int32_t *C,
                            const lb_gemm_i8_dequant *d);
} lb_gemm_i8_hook;

/* C = op(A) · op(B) through the hook (NULL or fn NULL: lb_gemm_i8_ref). */
static inline lb_status lb_gemm_i8_hooked(const lb_gemm_i8_hook *hook, lb_ctx *ctx, int trans_a,
                                          int trans_b, int64_t M, int64_t N, int64_t K,
                                          const int8_t *A, const int8_t *B, int32_t *C)
{
    if (hook && hook->fn) return hook->fn(hook->user, ctx, trans_a, trans_b, M, N, K, A, B, C);
    return lb_gemm_i8_ref(ctx, trans_a, trans_b, M, N, K, A, B, C);
}

/* C = op(A) · op(B) and d->out from it (lb_gemm_i8_dequant), through the
 * hook's fn_dequant when it has one, else the hook's GEMM (or the reference)
 * then lb_gemm_i8_dequant_ref. C may be NULL: a temporary then holds the
 * products (LB_ERR_NOMEM when it cannot be allocated). */
lb_status lb_gemm_i8_hooked_dequant(const lb_gemm_i8_hook *hook, lb_ctx *ctx, int trans_a,
                                    int trans_b, int64_t M, int64_t N, int64_t K,
                                    const int8_t *A, const int8_t *B, int32_t *C,
                                    const lb_gemm_i8_dequant *d);

#ifdef __cplusplus
}
#endif
#endif
