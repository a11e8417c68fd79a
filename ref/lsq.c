/* ref/lsq.c — LSQ learned-step-size int4 quantizer: forward codes, the
 * straight-through backward with the step-size gradient, and the first-batch
 * initialisation of the step.
 *
 * Spec: int4_training.md §1.2 (forward, STE masks, dL/ds, g = 1/sqrt(numel·7),
 * init 2·mean|T|/sqrt(7) + 1e-10); Xi et al. 2023 §3.1 (range [-7, 7]) and
 * A.3 (LSQ gradients); the authors' code uses [-8, 7] (named mode).
 *
 * Leaves out: per-row/per-column step sizes (the authors' LsqStepSize offers
 * them; every Xi run uses one step per tensor), the cold-start schedule of
 * A.4 (a caller re-runs lb_lsq_init_step_ref), the optimizer update of s.
 *
 * Shapes: every tensor is a flat array of n elements (per-tensor scale).
 */
#include "config.h"
#include "lowbit/ref/lsq.h"

#include <math.h>

int lb_lsq_qn(lb_lsq_range range) { return range == LB_LSQ_RANGE_CODE ? 8 : 7; }

const char *lb_lsq_range_name(lb_lsq_range range)
{
    switch (range) {
    case LB_LSQ_RANGE_PAPER: return "paper";
    case LB_LSQ_RANGE_CODE: return "code";
    }
    return NULL;
}

static lb_status check_finite(lb_ctx *ctx, const char *what, int64_t n, const float *x)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "lsq: %s[%lld] = %g is not finite", what,
                            (long long)i, (double)x[i]);
    return LB_OK;
}

static lb_status check_mode(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding)
{
    if (!lb_lsq_range_name(range)) return lb_error(ctx, LB_ERR_ARG, "lsq: unknown range mode %d", (int)range);
    if (rounding != LB_ROUND_HALF_EVEN && rounding != LB_ROUND_HALF_AWAY)
        return lb_error(ctx, LB_ERR_ARG, "lsq: rounding must be half-even or half-away");
    return LB_OK;
}

lb_status lb_lsq_init_step_ref(lb_ctx *ctx, int64_t n, const float *t, float *step)
{
    if (n < 0 || !step || (n > 0 && !t)) return lb_error(ctx, LB_ERR_ARG, "lsq init: bad arguments");
    lb_status st = check_finite(ctx, "t", n, t);
    if (st != LB_OK) return st;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += fabs((double)t[i]);
    double mean = n > 0 ? sum / (double)n : 0.0;
    *step = (float)(2.0 * mean / sqrt((double)LB_LSQ_QP) + 1e-10);
    return LB_OK;
}

lb_status lb_lsq_quantize_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t n,
                              const float *x, float step, int8_t *codes, float *quotient)
{
    lb_status st = check_mode(ctx, range, rounding);
    if (st != LB_OK) return st;
    if (n < 0 || (n > 0 && (!x || !codes))) return lb_error(ctx, LB_ERR_ARG, "lsq: bad arguments");
    if (!(isfinite(step) && step > 0.0f))
        return lb_error(ctx, LB_ERR_ARG, "lsq: step %g must be finite and > 0", (double)step);
    st = check_finite(ctx, "x", n, x);
    if (st != LB_OK) return st;
    const float lo = (float)-lb_lsq_qn(range), hi = (float)LB_LSQ_QP;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / step;
        if (quotient) quotient[i] = v;
        float q = lb_round(rounding, v, 0.0f);
        q = q < lo ? lo : (q > hi ? hi : q);
        codes[i] = (int8_t)q;
    }
    return LB_OK;
}

double lb_lsq_grad_sum_ref(int64_t n, const double *a)
{
    double total = 0.0;
    for (int64_t b0 = 0; b0 < n; b0 += LB_LSQ_SUM_BLOCK) {
        const int64_t b1 = n - b0 < LB_LSQ_SUM_BLOCK ? n : b0 + LB_LSQ_SUM_BLOCK;
        double lane[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        for (int64_t i = b0; i < b1; i++) lane[i % 8] += a[i];
        total += ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    }
    return total;
}

lb_status lb_lsq_backward_ref(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t n,
                              const float *quotient, const float *grad_out, float *grad_in,
                              float *grad_step)
{
    lb_status st = check_mode(ctx, range, rounding);
    if (st != LB_OK) return st;
    if (n < 0 || (n > 0 && (!quotient || !grad_out)))
        return lb_error(ctx, LB_ERR_ARG, "lsq backward: bad arguments");
    st = check_finite(ctx, "quotient", n, quotient);
    if (st == LB_OK) st = check_finite(ctx, "grad_out", n, grad_out);
    if (st != LB_OK) return st;
    const float qn = (float)lb_lsq_qn(range), qp = (float)LB_LSQ_QP;
    /* the terms dL/dQ_i · δ_i of one block, summed in the documented order */
    double term[LB_LSQ_SUM_BLOCK];
    double sum = 0.0;
    for (int64_t b0 = 0; b0 < n; b0 += LB_LSQ_SUM_BLOCK) {
        const int64_t m = n - b0 < LB_LSQ_SUM_BLOCK ? n - b0 : LB_LSQ_SUM_BLOCK;
        for (int64_t k = 0; k < m; k++) {
            const int64_t i = b0 + k;
            float v = quotient[i], g = grad_out[i];
            double delta;
            int inside = 0;
            if (v < -qn) {
                delta = -(double)qn;
            } else if (v > qp) {
                delta = (double)qp;
            } else {
                delta = (double)(lb_round(rounding, v, 0.0f) - v); /* exact in float */
                inside = 1;
            }
            term[k] = (double)g * delta;
            if (grad_in) grad_in[i] = inside ? g : 0.0f;
        }
        sum += lb_lsq_grad_sum_ref(m, term); /* one block: 0.0 + its lane tree */
    }
    if (grad_step) {
        double scale = n > 0 ? 1.0 / sqrt((double)n * (double)LB_LSQ_QP) : 0.0;
        *grad_step = (float)(scale * sum);
    }
    return LB_OK;
}
