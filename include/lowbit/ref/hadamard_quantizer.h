/* lowbit/ref/hadamard_quantizer.h — HQ, the Hadamard quantizer of Xi et al.
 * 2023, and its block-size search (oracle).
 *
 * Spec: shared/specs/int4_training.md §2 A.2, §4.1; Xi et al. §3.3, A.5.
 *
 * HQ of a row-major tensor X (rows, D) with Hadamard block b (a power of two
 * dividing D) and per-tensor LSQ step s:
 *     T = X · BlockDiag(H_b)          (lb_hadamard_ref: double butterfly, float result)
 *     codes = LSQ(T; s)               (lb_lsq_quantize_ref: v = T/s in float, RTN, clamp)
 * Block 1 is the identity, so HQ with b = 1 is plain LSQ. Dequantisation in
 * the Hadamard domain is s·codes; back in the original basis it is
 * (s·codes) · BlockDiag(H_b) (H is its own inverse).
 *
 * Block-size search (the authors' "dynamic" mode, the default of their
 * scripts; spec A.2): the candidates are b = 2^k, k = 0..10 (1..1024), that
 * divide D and are <= max_block. For each candidate, in increasing b:
 *     s' = lb_lsq_init_step_ref(T)          (2·mean|T|/sqrt(7) + 1e-10)
 *     X̄ = (s'·clamp(RTN(T/s'))) · H_b       (float32, transform as above)
 *     e_X = sqrt(Σ (X̄ - X)^2)               (double, row-major order)
 * and the same for W (when given) with its own step; the error is
 * E = e_X · e_W (or e_X alone without W). The chosen block is the first
 * candidate with the strictly smallest E (ties keep the smaller block),
 * exactly the authors' loop (`if Q_error < min_error`). The paper's "product
 * of the two MSEs" has the same argmin. Layers search once, on the first
 * training batch, and keep the block afterwards.
 */
#ifndef LOWBIT_REF_HADAMARD_QUANTIZER_H
#define LOWBIT_REF_HADAMARD_QUANTIZER_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/rounding.h"
#include "lowbit/ref/lsq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest candidate of the block search, and the number of candidates 2^0..2^10. */
#define LB_HQ_MAX_BLOCK 1024
#define LB_HQ_NUM_BLOCKS 11

/* HQ forward of x (rows, D): transformed (rows, D) = x·H_b when not NULL,
 * codes (rows, D) = LSQ codes of x·H_b with step `step` (> 0, finite),
 * quotient (rows, D) = (x·H_b)/step when not NULL. LB_ERR_NUMERIC on a
 * non-finite input, LB_ERR_ARG on a bad block or step. */
lb_status lb_hq_quantize_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t rows,
                             int64_t D, int64_t block, const float *x, float step, int8_t *codes,
                             float *quotient, float *transformed);

/* The LSQ initial step of x·H_b: 2·mean|x·H_b|/sqrt(7) + 1e-10 (see lsq.h). */
lb_status lb_hq_init_step_ref(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *x,
                              float *step);

/* e = ‖(s'·clamp(RTN(x·H_b/s')))·H_b − x‖_F with s' the init step of x·H_b:
 * the per-tensor error term of the block search (double). */
lb_status lb_hq_block_error_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t rows,
                                int64_t D, int64_t block, const float *x, double *error);

/* Block-size search over x (rows_x, D) and optionally w (rows_w, D) (w may
 * be NULL: then E = e_X). *best_block = the argmin (>= 1). errors, when not
 * NULL, receives LB_HQ_NUM_BLOCKS values: E for block 2^k at index k, or -1
 * for a block that is not a candidate. max_block <= 0 means LB_HQ_MAX_BLOCK. */
lb_status lb_hq_search_block_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t D,
                                 int64_t rows_x, const float *x, int64_t rows_w, const float *w,
                                 int64_t max_block, int64_t *best_block, double *errors);

#ifdef __cplusplus
}
#endif
#endif
