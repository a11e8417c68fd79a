/* lowbit/ref/qlinear_luq.h — one LUQ-quantized linear layer Y = X W^T (+ b)
 * (Chmiel et al., ICLR 2023), forward and backward, with integer GEMMs.
 *
 * Spec: shared/specs/int4_training.md §B.1, §B.7; page doc/algorithms/qlinear-luq.md.
 *
 * | GEMM         | left                  | right            | reduction | dequantization        |
 * | forward Y    | SAWB-INT4(X) codes    | SAWB-INT4(W)     | D         | c = fl32(s_X·s_W)     |
 * | ∇X = δ_q W_q | LUQ(∇Y) codes         | saved W codes    | C         | c = fl32(fl32(α·s_W)/S) |
 * | ∇W = δ_q^T X_q | LUQ(∇Y), same sample | saved X codes    | N         | c = fl32(fl32(α·s_X)/S) |
 * | ∇b = Σ_n δ_q | LUQ(∇Y)               | —                | N         | c = fl32(α/S)         |
 * Every result is out = fl32(c · fl32(Z)) with Z the exact integer product
 * (int32 from lb_gemm_i8_ref for the forward; an exact int64 combination of
 * int32 GEMMs for the backward, see lb_luq_gemm_ref); the forward then adds
 * the bias in float32: Y = fl32(fl32(c·fl32(Z)) + b).
 *
 * The backward GEMMs are exact: LUQ codes stand for ±2^k (k <= L−1), which
 * for L <= 7 fit int8 (|·| <= 64) and form one int8 GEMM (spec B.6); for
 * L = 8 (the default, ±128) and beyond they are split by exponent into
 * ⌈L/7⌉ int8 operands and recombined by shifts (lb_luq_gemm_ref). SMP sums
 * the S samples' integer products exactly before the single scaling by α/S,
 * so averaging the codes first (the authors' code) or the GEMM outputs (a
 * 4-bit pipeline) gives the same bits. One LUQ sample feeds both ∇X and ∇W;
 * the forward codes X_q, W_q (RTN) are reused (STE through SAWB, no clip
 * mask). Bias gradient uses the quantized δ as in the authors' code.
 *
 * RNG: sample s (s = cfg->luq.sample + j, j = 0..S−1) of LUQ(∇Y) uses the
 * streams of lowbit/ref/luq.h with key cfg->luq.seed at element index
 * n·C + c of ∇Y (N, C). A training loop gives each layer and step its own
 * seed (or sample base) so that no two quantizations share uniforms.
 *
 * Errors: LB_ERR_ARG (bad sizes/config/NULL), LB_ERR_NUMERIC (NaN/Inf in X,
 * W, b or ∇Y; outputs are then unspecified), LB_ERR_NOMEM, and the int GEMM's
 * LB_ERR_ARG when a reduction exceeds LB_GEMM_I8_MAX_K.
 */
#ifndef LOWBIT_REF_QLINEAR_LUQ_H
#define LOWBIT_REF_QLINEAR_LUQ_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/sawb.h"
#include "lowbit/ref/luq.h"
#include "lowbit/ref/int_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_qlinear_luq_config {
    lb_sawb_grid grid;  /* forward grids (default LB_SAWB_GRID_INT4) */
    double c1, c2;      /* SAWB coefficients (12.1, 12.2) */
    lb_luq_params luq;  /* gradient quantizer (default L = 8, stochastic, seed 0) */
    int samples;        /* SMP samples S in [1, LB_LUQ_MAX_SAMPLES] (default 1) */
    lb_gemm_i8_hook gemm; /* the integer GEMMs (zeroed: lb_gemm_i8_ref); same bits either way */
} lb_qlinear_luq_config;

/* INT4 grids, (12.1, 12.2), lb_luq_default_params(), S = 1, the reference GEMM. */
lb_qlinear_luq_config lb_qlinear_luq_default_config(void);

/* C (M, N) += op(A) · op(B), exactly, where A holds LUQ codes with at most
 * `levels` magnitudes (value ±2^(|code|−1)) and B int8 values; storage and
 * op() as in lb_gemm_i8_ref. Method: A = Σ_j 2^(7j) A_j with
 * A_j = ±2^(k−7j) where 7j <= k < 7j + 7, else 0 (|A_j| <= 64, int8);
 * C += Σ_j 2^(7j) · lb_gemm_i8_ref(op(A_j), op(B)), the sum in int64.
 * levels <= 7: one int8 GEMM of ±2^k directly. */
lb_status lb_luq_gemm_ref(lb_ctx *ctx, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                          int levels, const int8_t *A_codes, const int8_t *B, int64_t *C /* (M, N) */);

/* Forward. X is quantized on the activation grid (signed when X has a
 * negative entry or *act_signed is non-zero on entry; *act_signed, if not
 * NULL, is then set to the signedness used — the authors' sticky rule), W on
 * the weight grid. Writes the codes and scales that the backward needs, the
 * exact int32 product Z = X_q W_q^T (Z may be NULL) and Y. bias may be NULL. */
lb_status lb_qlinear_luq_forward_ref(lb_ctx *ctx, const lb_qlinear_luq_config *cfg, int64_t N,
                                     int64_t D, int64_t C, const float *X /* (N, D) */,
                                     const float *W /* (C, D) */, const float *bias /* (C) or NULL */,
                                     int *act_signed, int8_t *X_codes /* (N, D) */, float *x_scale,
                                     int8_t *W_codes /* (C, D) */, float *w_scale,
                                     int32_t *Z /* (N, C) or NULL */, float *Y /* (N, C) */);

/* Backward from the saved forward codes: S LUQ samples of dY, the two exact
 * integer GEMMs per sample, averaged. db and alpha (α of dY) may be NULL. */
lb_status lb_qlinear_luq_backward_ref(lb_ctx *ctx, const lb_qlinear_luq_config *cfg, int64_t N,
                                      int64_t D, int64_t C, const float *dY /* (N, C) */,
                                      const int8_t *X_codes /* (N, D) */, float x_scale,
                                      const int8_t *W_codes /* (C, D) */, float w_scale,
                                      float *dX /* (N, D) */, float *dW /* (C, D) */,
                                      float *db /* (C) or NULL */, float *alpha);

#ifdef __cplusplus
}
#endif
#endif
