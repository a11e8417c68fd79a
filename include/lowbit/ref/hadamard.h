/* lowbit/ref/hadamard.h — block-diagonal Walsh–Hadamard transform (oracle).
 *
 * Spec: shared/specs/int4_training.md §1.3 and §4.1; Xi et al. 2023 §3.3.
 *
 * H_0 = [1], H_k = (1/√2) [[H_{k-1}, H_{k-1}], [H_{k-1}, -H_{k-1}]]
 * (Sylvester order), of size b = 2^k; closed form
 *     H_k[i][j] = 2^{-k/2} · (-1)^{popcount(i AND j)}     (0-based).
 * H_k is symmetric and orthonormal, so H_k = H_k^T = H_k^{-1}: the same call
 * is the forward and the inverse transform.
 *
 * A "block-b transform" of a row-major matrix (rows, D) cuts every row into
 * D/b consecutive blocks of b entries and multiplies each block (a row
 * vector) by H_k: out = in · BlockDiag(H_k, ..., H_k). Block 1 is the
 * identity. b must be a power of two that divides D.
 *
 * Arithmetic (so that a vector or GPU twin can reproduce it bit for bit):
 * each block is converted to double, transformed by the unnormalised
 * butterfly in this order
 *     for (h = 1; h < b; h *= 2)
 *         for (i = 0; i < b; i += 2h)
 *             for (j = i; j < i + h; j++) { a = x[j]; c = x[j+h]; x[j] = a + c; x[j+h] = a - c; }
 * then every entry is multiplied by the double 2^{-k/2}
 *     = ldexp(k odd ? 0.70710678118654752440 : 1.0, -(k/2))
 * (the correctly rounded value) and, for the float32 entry point, rounded
 * once to float. Each butterfly stage is element-wise independent, so SIMD
 * lanes over j give the same bits.
 */
#ifndef LOWBIT_REF_HADAMARD_H
#define LOWBIT_REF_HADAMARD_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when `block` is a power of two (>= 1) that divides D (D >= 1), else 0. */
int lb_hadamard_block_valid(int64_t D, int64_t block);

/* log2(block) for a power of two block >= 1; -1 otherwise. */
int lb_hadamard_log2(int64_t block);

/* The closed-form entry H_k[i][j] = 2^{-k/2} (-1)^{popcount(i & j)} of the
 * block-size-`block` Hadamard matrix, in double (0 <= i, j < block). */
double lb_hadamard_entry(int64_t block, int64_t i, int64_t j);

/* out (rows, D) = in (rows, D) · BlockDiag(H, ..., H), H of size `block`,
 * float32 in and out, computed in double as documented above. `out` may
 * equal `in` (in place). LB_ERR_ARG for NULL pointers, negative sizes or a
 * block that is not a power of two dividing D; LB_ERR_NOMEM. Non-finite
 * inputs propagate (NaN/Inf spread over their block); callers that need a
 * clean error check their inputs first. */
lb_status lb_hadamard_ref(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *in,
                          float *out);

/* The same transform in double throughout (no final rounding to float):
 * used by tests and gradient checks. */
lb_status lb_hadamard_f64_ref(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const double *in,
                              double *out);

#ifdef __cplusplus
}
#endif
#endif
