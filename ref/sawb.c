/* ref/sawb.c — SAWB forward quantizer of LUQ: per-tensor clip from the first
 * two absolute moments, INT4 codes by round-to-nearest (ties to even).
 *
 * Paper: Chmiel et al., "Accurate Neural Training with 4-bit Matrix
 * Multiplications at Standard Formats", ICLR 2023, §6 (SAWB for weights and
 * activations, RTN); spec shared/specs/int4_training.md §B.2, §4.6, §4.7.
 * The clip is clip = c1·sqrt(mean x²) − c2·mean|x| with (c1, c2) = (12.1,
 * 12.2) from the authors' supplementary code (UniformQuantizeSawb); scale =
 * 2·clip/(qp − qn); q = clamp(RTN(x/scale), qn, qp). Backward is a pure
 * straight-through estimator (no clip mask), applied by the caller.
 *
 * Leaves out: the offline regression that produced (c1, c2); per-channel
 * scales; the code's missing guards (we define the zero / clip <= 0 /
 * non-finite cases, see lowbit/ref/sawb.h).
 *
 * Shapes: x is any tensor flattened to (n); codes and dequant are (n).
 */
#include "config.h"
#include "lowbit/ref/sawb.h"
#include "lowbit/ref/rounding.h"

#include <float.h>
#include <math.h>

lb_sawb_params lb_sawb_default_params(void)
{
    lb_sawb_params p = {LB_SAWB_C1, LB_SAWB_C2, -7, 7};
    return p;
}

void lb_sawb_weight_range(lb_sawb_grid grid, int *qn, int *qp)
{
    if (grid == LB_SAWB_GRID_CODE) {
        *qn = -8; /* QnW = -8, QpW = 8 in the supplementary code: 17 levels */
        *qp = 8;
    } else {
        *qn = -7;
        *qp = 7;
    }
}

void lb_sawb_activation_range(lb_sawb_grid grid, int is_signed, int *qn, int *qp)
{
    /* Both grids use unsigned [0, 15] for non-negative activations (QnA = 0,
     * QpA = 15). Signed: INT4 symmetric, or the code's [-8, 15] (24 levels). */
    *qp = is_signed && grid != LB_SAWB_GRID_CODE ? 7 : 15;
    *qn = !is_signed ? 0 : (grid == LB_SAWB_GRID_CODE ? -8 : -7);
}

const char *lb_sawb_grid_name(lb_sawb_grid grid)
{
    switch (grid) {
    case LB_SAWB_GRID_INT4: return "int4";
    case LB_SAWB_GRID_CODE: return "code";
    }
    return NULL;
}

static lb_status check_params(lb_ctx *ctx, const lb_sawb_params *p)
{
    if (!p) return lb_error(ctx, LB_ERR_ARG, "sawb: NULL params");
    if (!isfinite(p->c1) || !isfinite(p->c2))
        return lb_error(ctx, LB_ERR_ARG, "sawb: coefficients must be finite (c1=%g, c2=%g)", p->c1, p->c2);
    if (p->qn > 0 || p->qn < -128 || p->qp <= 0 || p->qp > 127)
        return lb_error(ctx, LB_ERR_ARG, "sawb: need -128 <= qn <= 0 < qp <= 127, got [%d, %d]", p->qn,
                        p->qp);
    return LB_OK;
}

lb_status lb_sawb_moments_ref(lb_ctx *ctx, const float *x, size_t n, double *sum_abs, double *sum_sq,
                              float *max_abs)
{
    if ((n > 0 && !x) || !sum_abs || !sum_sq || !max_abs)
        return lb_error(ctx, LB_ERR_ARG, "sawb: NULL pointer");
    double lane_abs[LB_SAWB_LANES] = {0}, lane_sq[LB_SAWB_LANES] = {0};
    float mx = 0.0f;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "sawb: non-finite input %g at index %zu", (double)x[i], i);
        double d = (double)x[i];
        lane_abs[i % LB_SAWB_LANES] += fabs(d);
        lane_sq[i % LB_SAWB_LANES] += d * d; /* exact: 24-bit mantissas, 48-bit product */
        float a = fabsf(x[i]);
        if (a > mx) mx = a;
    }
    for (int h = LB_SAWB_LANES / 2; h >= 1; h /= 2) {
        for (int l = 0; l < h; l++) {
            lane_abs[l] += lane_abs[l + h];
            lane_sq[l] += lane_sq[l + h];
        }
    }
    *sum_abs = lane_abs[0];
    *sum_sq = lane_sq[0];
    *max_abs = mx;
    return LB_OK;
}

lb_status lb_sawb_scale_ref(lb_ctx *ctx, const lb_sawb_params *params, const float *x, size_t n,
                            float *scale, double *clip, int *fallback)
{
    lb_status st = check_params(ctx, params);
    if (st != LB_OK) return st;
    if (!scale) return lb_error(ctx, LB_ERR_ARG, "sawb: NULL scale");
    double s1, s2;
    float mx;
    st = lb_sawb_moments_ref(ctx, x, n, &s1, &s2, &mx);
    if (st != LB_OK) return st;
    if (fallback) *fallback = 0;
    if (mx == 0.0f) { /* all zero (or empty): 0/0 in the code; we return scale 0, codes 0 */
        if (clip) *clip = 0.0;
        *scale = 0.0f;
        return LB_OK;
    }
    const double nd = (double)n;
    const double c = params->c1 * sqrt(s2 / nd) - params->c2 * (s1 / nd);
    if (clip) *clip = c;
    float s = (float)(2.0 * c / (double)(params->qp - params->qn));
    if (!(c > 0.0) || !isfinite(s) || !(s >= FLT_MIN)) {
        /* clip <= 0 happens for near-constant |x| (e.g. ±c); the smallest
         * scale that clips nothing keeps such tensors exact. */
        int r = params->qn == 0 ? params->qp : (params->qp < -params->qn ? params->qp : -params->qn);
        s = mx / (float)r;
        if (fallback) *fallback = 1;
    }
    *scale = s;
    return LB_OK;
}

lb_status lb_sawb_quantize_with_scale_ref(lb_ctx *ctx, int qn, int qp, float scale, const float *x,
                                          size_t n, int8_t *codes, float *dequant)
{
    if (qn > 0 || qn < -128 || qp <= 0 || qp > 127)
        return lb_error(ctx, LB_ERR_ARG, "sawb: need -128 <= qn <= 0 < qp <= 127, got [%d, %d]", qn, qp);
    if (!isfinite(scale) || scale < 0.0f)
        return lb_error(ctx, LB_ERR_ARG, "sawb: scale must be finite and >= 0, got %g", (double)scale);
    if (n > 0 && (!x || !codes)) return lb_error(ctx, LB_ERR_ARG, "sawb: NULL pointer");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "sawb: non-finite input %g at index %zu", (double)x[i], i);
    }
    for (size_t i = 0; i < n; i++) {
        float q = 0.0f;
        if (scale > 0.0f) {
            q = lb_round_half_even(x[i] / scale);
            if (q < (float)qn) q = (float)qn;
            if (q > (float)qp) q = (float)qp;
        }
        codes[i] = (int8_t)q;
        if (dequant) dequant[i] = scale * (float)codes[i]; /* from the code: no -0.0 */
    }
    return LB_OK;
}

lb_status lb_sawb_quantize_ref(lb_ctx *ctx, const lb_sawb_params *params, const float *x, size_t n,
                               int8_t *codes, float *scale, float *dequant)
{
    float s;
    lb_status st = lb_sawb_scale_ref(ctx, params, x, n, &s, NULL, NULL);
    if (st != LB_OK) return st;
    st = lb_sawb_quantize_with_scale_ref(ctx, params->qn, params->qp, s, x, n, codes, dequant);
    if (st != LB_OK) return st;
    if (scale) *scale = s;
    return LB_OK;
}
