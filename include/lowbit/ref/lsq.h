/* lowbit/ref/lsq.h — LSQ, the learned-step-size per-tensor int4 quantizer
 * used by Xi et al. 2023 for activations and weights (oracle).
 *
 * Spec: shared/specs/int4_training.md §1.2, §4.2; Xi et al. §3.1 and A.3;
 * Esser et al. 2020 (LSQ) for the step-size gradient and its scale.
 *
 * Forward, for a per-tensor step s > 0 and codes in [-Qn, Qp]:
 *     v = x / s                      (float32 division, one rounding)
 *     q = clamp(RTN(v), -Qn, Qp)     (int8 storage of an int4 value)
 *     Q(x) = s · q                   (float32)
 * Backward (straight-through estimator with clipping), given dL/dQ:
 *     dL/dx = dL/dQ · 1[-Qn <= v <= Qp]
 *     dL/ds = g · Σ_i dL/dQ_i · δ_i, δ_i = RTN(v_i) - v_i inside,
 *             -Qn when v_i < -Qn, +Qp when v_i > Qp,
 *     g = 1 / sqrt(numel · 7)        (Qp = 7 in paper and code alike)
 * The sum is accumulated in double in a fixed order that vector lanes and
 * threads reproduce (lb_lsq_grad_sum_ref): blocks of LB_LSQ_SUM_BLOCK
 * consecutive indices; in a block, eight partial sums s_l of the terms with
 * i ≡ l (mod 8), each in increasing i from 0.0, combined as
 * ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)); the block sums added
 * in increasing block order from 0.0. Then multiplied by g (double) and
 * rounded once to float.
 * Initialisation on the first batch (the authors' code, LSQ convention):
 *     s = 2 · mean|t| / sqrt(7) + 1e-10
 * with Σ|t_i| in double in increasing index order, mean = sum / numel,
 * everything in double, rounded once to float. (A fast path may simply call
 * this function: it runs once per tensor.)
 *
 * Integer range modes (spec §7 item 1):
 *   LB_LSQ_RANGE_PAPER  [-7, 7], Qn = Qp = 7: the paper (§3.1) and lowbit's
 *                       numeric contract (symmetric int4). Default.
 *   LB_LSQ_RANGE_CODE   [-8, 7], Qn = 8, Qp = 7: the authors' released
 *                       kernels (forward clamp and backward masks).
 * Tie rule of RTN: an lb_rounding, LB_ROUND_HALF_EVEN (default, PyTorch)
 * or LB_ROUND_HALF_AWAY (the authors' CUDA `round`).
 *
 * Non-finite values: every entry point checks its float inputs and returns
 * LB_ERR_NUMERIC naming the first bad index; a step that is not finite and
 * > 0 is LB_ERR_ARG (the layer takes |s| before calling).
 */
#ifndef LOWBIT_REF_LSQ_H
#define LOWBIT_REF_LSQ_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/rounding.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_lsq_range {
    LB_LSQ_RANGE_PAPER = 0, /* [-7, 7] (default) */
    LB_LSQ_RANGE_CODE = 1   /* [-8, 7] (authors' code) */
} lb_lsq_range;

/* Qp of both modes, also the 7 in the gradient scale and the init rule. */
#define LB_LSQ_QP 7

/* Qn of the mode: 7 (paper) or 8 (code); 7 for an unknown value. */
int lb_lsq_qn(lb_lsq_range range);

/* "paper" / "code"; NULL for an unknown mode. */
const char *lb_lsq_range_name(lb_lsq_range range);

/* *step = 2 · mean|t| / sqrt(7) + 1e-10 over t (n), as documented above
 * (n = 0 gives 1e-10). LB_ERR_NUMERIC on a non-finite entry. */
lb_status lb_lsq_init_step_ref(lb_ctx *ctx, int64_t n, const float *t, float *step);

/* codes (n) = clamp(RTN(x / step), -Qn, Qp); quotient (n) = x / step when
 * not NULL (the V the backward needs). */
lb_status lb_lsq_quantize_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t n,
                              const float *x, float step, int8_t *codes, float *quotient);

/* Indices per block of the step-gradient sum (see above). */
#define LB_LSQ_SUM_BLOCK 1024

/* Σ_i a[i] (n doubles) in the blocked eight-lane order documented above. */
double lb_lsq_grad_sum_ref(int64_t n, const double *a);

/* Straight-through backward from the saved quotients (n) and the upstream
 * gradient dL/dQ (n): grad_in (n) = masked gradient (may alias grad_out),
 * *grad_step = the LSQ step gradient with scale g = 1/sqrt(n·7). Either
 * output may be NULL. */
lb_status lb_lsq_backward_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t n,
                              const float *quotient, const float *grad_out, float *grad_in,
                              float *grad_step);

#ifdef __cplusplus
}
#endif
#endif
