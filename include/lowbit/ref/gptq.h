/* lowbit/ref/gptq.h — GPTQ / OPTQ post-training weight quantization of one
 * linear layer (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate
 * Post-Training Quantization for Generative Pre-trained Transformers", ICLR
 * 2023, Algorithm 1), following the authors' reference `GPTQ.fasterquant`
 * (IST-DASLab/gptq, gptq.py) step for step. The oracle.
 *
 * Page: doc/algorithms/gptq.md. Element quantizers: weight_quant.h (uniform
 * grid of uniform_quantizer.h or the power grid of power_quantizer.h).
 *
 * Given W (C_out, C_in) and calibration inputs X (n, C_in) of the layer
 * y = W x, GPTQ minimises ||X W^T − X Ŵ^T||² column by column:
 *   1. H = 2 X^T X / n (C_in, C_in), accumulated over batches in double.
 *   2. Per-tensor / per-channel parameters from the original W (the reference
 *      calls find_params(W) first).
 *   3. Dead columns (H_jj == 0, an input that is always 0): H_jj = 1 and
 *      W[:, j] = 0, so their quantized weights are exactly 0.
 *   4. Static groups (option): per-group parameters from W after step 3,
 *      groups of g consecutive original columns.
 *   5. act-order (option): columns processed by decreasing H_jj; ties keep
 *      increasing column index (a stable sort; the reference's torch.argsort
 *      leaves ties unspecified). W and H are permuted.
 *   6. λ = percdamp · mean(diag H) (after steps 3 and 5; the mean summed in
 *      processing order), H_jj += λ.
 *   7. U = upper Cholesky factor of H^{-1} (H^{-1} = U^T U), computed as the
 *      reference does: L = chol(H) (lower), H^{-1} = L^{-T} L^{-1},
 *      U = chol(H^{-1})^T. A non-positive (or non-finite) pivot in either
 *      factorisation is LB_ERR_NUMERIC ("increase percdamp").
 *   8. For blocks [i1, i2) of B columns (lazy batch updates, §3 "Step 2"):
 *      a copy W1 of the block's columns; for each column j in the block:
 *        - dynamic groups: when j % g == 0, the group's parameters are computed
 *          from W[:, j : j+g] — the reference's `W`, i.e. the columns as of
 *          the start of the current block (in-block updates live in W1) plus
 *          the updates of earlier blocks — in processing order, so with
 *          act-order a group is g consecutive *permuted* columns;
 *        - q_r = quantize(W1[r, j]) with the parameters of row r's group;
 *        - e_r = (W1[r, j] − ŵ_r) / U_jj;  loss += Σ_r e_r² / 2;
 *        - W1[r, k] −= e_r U_jk for the block's columns k > j;
 *      then W[:, i2:] −= E U[i1:i2, i2:] (E the block's e, sums over the
 *      block's columns in increasing order).
 *   9. Codes and Ŵ are put back in the original column order.
 *
 * Arithmetic: H, its Cholesky factors and inverse, the working copy of W, the
 * errors and the updates are double (the reference uses float32 on a GPU);
 * each weight is rounded to float32 right before the element quantizer, which
 * is the float32 rule of weight_quant.h. The quantizer grid is lowbit's
 * (weight_quant.h): symmetric codes [-N, N] with Δ = max|w|/N, or
 * asymmetric [0, 2^b − 1]; the authors' symmetric grid (zero point 2^(b-1),
 * Δ = 2 max|w| / (2^b − 1)) is not reproduced.
 *
 * Outputs: codes and Ŵ (C_out, C_in) in original column order; scale / zero
 * (rows, cols) as weight_quant.h says, where for LB_WQ_GROUP with dynamic
 * groups column group k is the k-th group *in processing order*; g_idx (C_in,)
 * the group of each original column (c / g without act-order or with static
 * groups); perm (C_in,) the original column processed at step j. Ŵ equals
 * lb_weight_dequantize_ref(codes, scale, zero, g_idx) exactly.
 *
 * NaN/Inf in W, X or H is LB_ERR_NUMERIC.
 */
#ifndef LOWBIT_REF_GPTQ_H
#define LOWBIT_REF_GPTQ_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/weight_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The Hessian H = 2 X^T X / n ------------------------------------------
 * The accumulator keeps S = Σ_t x_t x_t^T (double; each batch adds its rows
 * in increasing t, entry (i, j) for j <= i, mirrored) and n. The reference
 * rescales a running H instead (H *= n/(n+m); H += 2/(n+m) X^T X); the two
 * agree to double rounding. */
typedef struct lb_gptq_hessian {
    int64_t c_in;      /* C_in */
    int64_t n_samples; /* rows seen so far */
    double *xtx;       /* (C_in, C_in) S, symmetric */
} lb_gptq_hessian;

/* A zeroed accumulator for C_in >= 1 inputs (LB_ERR_NOMEM). */
lb_status lb_gptq_hessian_create(lb_ctx *ctx, int64_t c_in, lb_gptq_hessian **out);
/* NULL is a no-op. */
void lb_gptq_hessian_free(lb_gptq_hessian *h);

/* Adds n >= 0 rows of X (n, C_in) (a batch (B, T, C_in) is n = B·T rows).
 * Non-finite X is LB_ERR_NUMERIC and leaves the accumulator unchanged. */
lb_status lb_gptq_hessian_add_batch_ref(lb_ctx *ctx, lb_gptq_hessian *h, int64_t n, const float *X);

/* H (C_in, C_in) out = 2 S / n, evaluated as (2 S_ij) / n. LB_ERR_ARG when no
 * row has been added. */
lb_status lb_gptq_hessian_get(lb_ctx *ctx, const lb_gptq_hessian *h, double *H);

/* ---- GPTQ ------------------------------------------------------------------ */

typedef struct lb_gptq_config {
    lb_weight_quant_config quant; /* grid, bits, granularity, group size, range */
    double percdamp;              /* >= 0, λ = percdamp · mean(diag H) (default 0.01) */
    int64_t block_size;           /* B >= 1 (default 128); the result does not depend on B
                                     except through rounding and, for dynamic groups,
                                     the block-start rule of step 8 */
    int act_order;                /* 1: process columns by decreasing H_jj (default 0) */
    int static_groups;            /* LB_WQ_GROUP: 1 computes every group's parameters
                                     before the loop from the original column groups
                                     (default 0: when the group starts, as the reference) */
} lb_gptq_config;

/* lb_weight_quant_config_default (4 bits, symmetric, per channel, uniform,
 * min-max), percdamp 0.01, B = 128, no act-order, dynamic groups. */
lb_gptq_config lb_gptq_config_default(void);

typedef struct lb_gptq_info {
    double damp;          /* λ added to the diagonal */
    double loss;          /* ½ Σ_j Σ_r e_rj² (e of step 8): the reference's "error". Since
                             W − Ŵ = U^T E row by row, it equals ½ Σ_r d_r^T (H + λI) d_r with
                             d_r = W'[r,:] − Ŵ[r,:] (W' = W after step 3) in exact arithmetic */
    int64_t dead_columns; /* columns with H_jj == 0 */
} lb_gptq_info;

/* Quantizes W (C_out, C_in) with the Hessian H (C_in, C_in) (from
 * lb_gptq_hessian_get or any symmetric matrix; read in full, not modified).
 * codes (C_out, C_in) out; scale, zero (rows, cols) out as
 * lb_weight_scale_shape (zero may be NULL for symmetric configs / the power
 * grid); what (C_out, C_in) out, may be NULL; g_idx (C_in,) out, may be NULL;
 * perm (C_in,) out, may be NULL; info out, may be NULL.
 * Errors: LB_ERR_ARG (bad config, percdamp < 0 or non-finite, B < 1, NULL),
 * LB_ERR_NUMERIC (non-finite W or H, Cholesky failure), LB_ERR_NOMEM. */
lb_status lb_gptq_quantize_ref(lb_ctx *ctx, const lb_gptq_config *cfg, int64_t C_out, int64_t C_in,
                               const float *W, const double *H, int32_t *codes, float *scale, int32_t *zero,
                               float *what, int32_t *g_idx, int32_t *perm, lb_gptq_info *info);

/* The layer error from the Hessian alone (no inputs kept):
 *   *err_sq = Σ_r d_r^T H d_r, d_r = W[r,:] − Ŵ[r,:];  *ref_sq = Σ_r w_r^T H w_r
 * (double). With H = 2 X^T X / n these are (2/n) times the sums of
 * lb_weight_recon_error_ref, so their ratio is the same relative error.
 * H (C_in, C_in); W, What (C_out, C_in). */
lb_status lb_gptq_hessian_error_ref(lb_ctx *ctx, int64_t C_out, int64_t C_in, const double *H, const float *W,
                                    const float *What, double *err_sq, double *ref_sq);

#ifdef __cplusplus
}
#endif
#endif
