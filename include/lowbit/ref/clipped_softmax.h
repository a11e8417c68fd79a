/* lowbit/ref/clipped_softmax.h — softmax and clipped softmax (oracle), row-wise
 * over a (rows, cols) array of attention logits, forward and backward.
 *
 * Bondarenko, Nagel, Blankevoort 2023, "Quantizable Transformers: Removing
 * Outliers by Helping Attention Heads Do Nothing", eq. 4 (spec
 * outlier_free_attention_and_w8a8.md §1). For one row x (one batch, head and
 * query over the key axis, after the 1/sqrt(d_head) scaling and the additive
 * mask):
 *
 *   p_i = exp(x_i - max x) / sum_j exp(x_j - max x)          (softmax)
 *   s_i = stretch * p_i + gamma,  stretch = zeta - gamma       (stretch)
 *   y_i = clip(s_i, 0, 1)                                      (clip)
 *
 * with zeta >= 1 and gamma <= 0 (the paper's range; others are rejected).
 * gamma = 0, zeta = 1 is plain softmax, bitwise: stretch = 1 exactly and
 * 1·p + 0 = p in IEEE arithmetic, and p is already in [0, 1].
 *
 * Arithmetic (what a fast path must reproduce, or state its tolerance
 * against): everything in double, with no FMA contraction.
 *   1. m = max_j x_j, scanned j = 0..cols-1 (m = x_0, then m = x_j if x_j > m);
 *   2. S = sum_j exp(x_j - m), added in increasing j starting from 0.0;
 *   3. p_i = exp(x_i - m) / S (a division, not a multiply by 1/S);
 *   4. s_i = stretch * p_i + gamma with stretch = zeta - gamma rounded once;
 *   5. y_i = 0 if s_i < 0, 1 if s_i > 1, else s_i (comparisons, so NaN passes
 *      through; C's fmin/fmax would drop it).
 * The _f32 entry points (the unsuffixed names) widen the float inputs to
 * double, run exactly the double algorithm and round each result once to
 * float: lb_clipped_softmax_ref(x) == (float)lb_clipped_softmax_ref_f64(x).
 * Where the clip is active the output is exactly 0.0 or 1.0.
 *
 * Special values (torch parity, spec §1.4): a row with a NaN logit, a +inf
 * logit (inf - inf = NaN after max subtraction) or only -inf logits (every
 * exp is exp(NaN)) is all-NaN in the forward and the backward. A -inf or
 * very negative finite (masked, e.g. -FLT_MAX) logit in an otherwise finite
 * row gives p = 0 and y = 0 exactly. Rows are independent.
 *
 * Backward (spec §1.3), given g = dL/dy for the same row:
 *   m_i  = 1 if 0 <= s_i <= 1 else 0   (closed interval: PyTorch's clamp
 *          backward passes the gradient at the bounds; it also makes
 *          gamma = 0, zeta = 1 exactly the softmax backward)
 *   u_i  = m_i * stretch * g_i
 *   dot  = sum_i u_i * p_i             (increasing i, from 0.0)
 *   dx_j = p_j * (u_j - dot)
 * A clipped entry i has a zero Jacobian row: g_i never reaches dx. A clipped
 * entry j still receives dx_j = -p_j·dot through the normaliser when another
 * entry of the row survives; a fully clipped row has dx = 0.
 * The backward recomputes p from the logits x (the forward saves nothing).
 *
 * Shapes: x, y, dy, dx are (rows, cols), row-major, contiguous. rows, cols
 * >= 0; rows·cols = 0 is a no-op. The forward may run in place (y == x); the
 * backward may write dx over dy (dx == dy) but not over x.
 *
 * Errors: LB_ERR_ARG for NULL pointers (when rows·cols > 0), negative sizes,
 * non-finite gamma/zeta, gamma > 0 or zeta < 1. Non-finite logits are not an
 * error (documented propagation above).
 */
#ifndef LOWBIT_REF_CLIPPED_SOFTMAX_H
#define LOWBIT_REF_CLIPPED_SOFTMAX_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The code's BERT-base preset "clipped(-.025:1)" (spec §1.2). */
#define LB_CLIPPED_SOFTMAX_BERT_GAMMA (-0.025)

/* gamma = -alpha / T (spec §1.2), with T the configured maximum (padded)
 * sequence length, the same for every row, causal rows included; zeta = 1
 * goes with it. LB_ERR_ARG unless alpha >= 0 and T >= 1 are finite. */
lb_status lb_clipped_softmax_gamma_from_alpha(lb_ctx *ctx, double alpha, double T, double *gamma);

/* Checks gamma and zeta as every function below does (LB_ERR_ARG if bad). */
lb_status lb_clipped_softmax_check(lb_ctx *ctx, double gamma, double zeta);

/* Plain softmax, the arithmetic of steps 1-3: y (rows, cols) from x (rows, cols).
 * Identical bits to lb_clipped_softmax_ref(ctx, rows, cols, 0.0, 1.0, x, y). */
lb_status lb_softmax_ref(lb_ctx *ctx, int64_t rows, int64_t cols,
                         const float *x, /* (rows, cols) */
                         float *y);      /* (rows, cols) */
lb_status lb_softmax_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols,
                             const double *x, /* (rows, cols) */
                             double *y);      /* (rows, cols) */

/* Clipped softmax forward: y (rows, cols) from logits x (rows, cols). */
lb_status lb_clipped_softmax_ref(lb_ctx *ctx, int64_t rows, int64_t cols, double gamma,
                                 double zeta,
                                 const float *x, /* (rows, cols) logits */
                                 float *y);      /* (rows, cols) */
lb_status lb_clipped_softmax_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols, double gamma,
                                     double zeta,
                                     const double *x, /* (rows, cols) logits */
                                     double *y);      /* (rows, cols) */

/* Clipped softmax backward: dx (rows, cols) = dL/dx from the logits x
 * (rows, cols) and dy (rows, cols) = dL/dy; overwrites dx. With gamma = 0,
 * zeta = 1 it is the plain softmax backward. */
lb_status lb_clipped_softmax_backward_ref(lb_ctx *ctx, int64_t rows, int64_t cols, double gamma,
                                          double zeta,
                                          const float *x,  /* (rows, cols) logits */
                                          const float *dy, /* (rows, cols) dL/dy */
                                          float *dx);      /* (rows, cols) dL/dx */
lb_status lb_clipped_softmax_backward_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols,
                                              double gamma, double zeta,
                                              const double *x,  /* (rows, cols) logits */
                                              const double *dy, /* (rows, cols) dL/dy */
                                              double *dx);      /* (rows, cols) dL/dx */

#ifdef __cplusplus
}
#endif
#endif
