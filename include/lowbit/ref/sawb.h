/* lowbit/ref/sawb.h — SAWB (statistics-aware weight binning) forward quantizer
 * as used by LUQ (Chmiel et al., ICLR 2023): per-tensor scale from the first
 * two absolute moments, round to nearest (ties to even), clamp to [qn, qp].
 *
 * Spec: shared/specs/int4_training.md §B.2 and §4.6; page doc/algorithms/sawb.md.
 *
 *   clip  = c1 · sqrt(mean(x²)) − c2 · mean(|x|)        (c1, c2) = (12.1, 12.2)
 *   scale = 2 · clip / (qp − qn)
 *   q     = clamp(RTN(x / scale), qn, qp)               x̂ = scale · q
 *
 * Exact arithmetic contract (so a vector or GPU twin reproduces the codes bit
 * for bit):
 *   - Moments in double over 16 lanes: lane l (0..15) sums the elements with
 *     index i ≡ l (mod 16) in increasing i, starting from +0.0 (|x_i| and
 *     (double)x_i · (double)x_i, the latter exact); the lanes are then combined
 *     by the fixed tree lane[l] += lane[l + h] for h = 8, 4, 2, 1 (l < h), the
 *     result is lane[0]. (Two AVX-512 registers of 8 doubles or four AVX2
 *     registers of 4 doubles hold the lanes; the tree is their horizontal sum.)
 *   - clip = c1 · sqrt(S2 / n) − c2 · (S1 / n) in double, in that order;
 *     scale = (float)(2 · clip / (double)(qp − qn)).
 *   - Guards: an all-zero (or empty) tensor gives scale 0 and all codes 0. If
 *     clip ≤ 0 (|x| of near-constant magnitude: sqrt(mean x²)/mean|x| ≤ c2/c1)
 *     or the float scale is not a finite number ≥ FLT_MIN, the scale falls back
 *     to the smallest one that clips nothing on a symmetric grid:
 *     scale = fl32(max|x| / r) with r = qp when qn = 0, else min(qp, −qn).
 *   - v = fl32(x / scale) (IEEE division, not a reciprocal product),
 *     q = clamp(nearbyintf(v), qn, qp), x̂ = fl32(scale · q).
 *   - Any NaN or ±Inf in x: LB_ERR_NUMERIC (nothing is written).
 *
 * Grids (named modes, see lb_sawb_grid): the default is symmetric INT4 [−7, 7]
 * for weights and for activations with a negative entry, unsigned [0, 15] for
 * non-negative activations; LB_SAWB_GRID_CODE reproduces the LUQ supplementary
 * code: weights [−8, 8] (17 levels) and activations [0, 15], [−8, 15] once a
 * negative input has been seen.
 */
#ifndef LOWBIT_REF_SAWB_H
#define LOWBIT_REF_SAWB_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The LUQ reference code's coefficients [LuC]. */
#define LB_SAWB_C1 12.1
#define LB_SAWB_C2 12.2

/* Number of lanes of the moment sums (see above). */
#define LB_SAWB_LANES 16

typedef struct lb_sawb_params {
    double c1, c2; /* clip = c1·rms − c2·mean|x|; finite */
    int qn, qp;    /* integer range: −128 <= qn <= 0 < qp <= 127 */
} lb_sawb_params;

typedef enum lb_sawb_grid {
    LB_SAWB_GRID_INT4 = 0, /* default: W [−7,7]; X [0,15] if X >= 0 else [−7,7] */
    LB_SAWB_GRID_CODE = 1  /* LuC as released: W [−8,8]; X [0,15], [−8,15] after a negative */
} lb_sawb_grid;

/* c1 = 12.1, c2 = 12.2, [qn, qp] = [−7, 7]. */
lb_sawb_params lb_sawb_default_params(void);

/* The weight range of a grid: INT4 [−7, 7], CODE [−8, 8]. */
void lb_sawb_weight_range(lb_sawb_grid grid, int *qn, int *qp);

/* The activation range of a grid, given whether the activation is signed
 * (has a negative entry, or — in a layer that keeps the sticky flag — had one
 * before): INT4 [0, 15] / [−7, 7], CODE [0, 15] / [−8, 15]. */
void lb_sawb_activation_range(lb_sawb_grid grid, int is_signed, int *qn, int *qp);

/* "int4" / "code"; NULL for an unknown grid. */
const char *lb_sawb_grid_name(lb_sawb_grid grid);

/* Moments in the documented order: *sum_abs = Σ|x_i|, *sum_sq = Σ x_i² (double,
 * 16 lanes + tree), *max_abs = max |x_i| (0 for n = 0). LB_ERR_NUMERIC if any
 * x_i is NaN or infinite; LB_ERR_ARG for NULL pointers. */
lb_status lb_sawb_moments_ref(lb_ctx *ctx, const float *x /* (n) */, size_t n, double *sum_abs,
                              double *sum_sq, float *max_abs);

/* The scale of x: *scale as documented above (0 for an all-zero tensor);
 * *clip (may be NULL) receives the raw clip of the formula in double (before
 * any fallback); *fallback (may be NULL) is set to 1 when the max-based
 * fallback was used. LB_ERR_ARG for invalid params, LB_ERR_NUMERIC for
 * non-finite input. */
lb_status lb_sawb_scale_ref(lb_ctx *ctx, const lb_sawb_params *params, const float *x /* (n) */,
                            size_t n, float *scale, double *clip, int *fallback);

/* Quantizes x with its own SAWB scale: codes[i] in [qn, qp], *scale, and the
 * dequantized values (dequant may be NULL). */
lb_status lb_sawb_quantize_ref(lb_ctx *ctx, const lb_sawb_params *params, const float *x /* (n) */,
                               size_t n, int8_t *codes /* (n) */, float *scale,
                               float *dequant /* (n) or NULL */);

/* Quantizes x with a given scale >= 0 (frozen-scale use; scale 0 gives zeros).
 * Same rounding and clamping as above. */
lb_status lb_sawb_quantize_with_scale_ref(lb_ctx *ctx, int qn, int qp, float scale,
                                          const float *x /* (n) */, size_t n,
                                          int8_t *codes /* (n) */, float *dequant /* (n) or NULL */);

#ifdef __cplusplus
}
#endif
#endif
