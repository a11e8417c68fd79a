/* lowbit/ref/weight_quant.h — round-to-nearest (RTN) quantization of a linear
 * layer's weight W (C_out, C_in): the baseline of post-training weight
 * quantization and the element quantizer that GPTQ (gptq.h) plugs in. The
 * oracle.
 *
 * Page: doc/algorithms/rtn-weight.md. It is a thin driver over the existing
 * quantizers; nothing here defines a new rounding rule:
 *   - the uniform grid is lb_uniform_* (uniform_quantizer.h) with the range of
 *     each group from lb_range_estimate_ref (range_estimators.h: min-max, MSE
 *     grid or percentile), ties to even;
 *   - the power grid is lb_power_quantize_ref (power_quantizer.h, nupes.md §1):
 *     symmetric, M = max |w| of the group, exponent a.
 *
 * Groups (one (scale, zero point) each), always along rows of W = output
 * channels:
 *   LB_WQ_TENSOR   one group, the whole matrix;        scale shape (1, 1)
 *   LB_WQ_CHANNEL  one group per row;                  scale shape (C_out, 1)
 *   LB_WQ_GROUP    row r, columns [k g, min((k+1) g, C_in)): the k-th group of
 *                  g consecutive input columns (the last one is shorter when g
 *                  does not divide C_in);          scale shape (C_out, ceil(C_in/g))
 * Scales are stored row-major: group (r, k) at scale[r * G + k], G the number
 * of column groups (1 unless LB_WQ_GROUP).
 *
 * What a "scale" holds: the uniform step Δ for the uniform grid (ŵ = Δ (q − z));
 * the group maximum M for the power grid (ŵ = sign(q) M (|q|/N)^(1/a) as
 * lb_power_level computes it; Δ = lb_power_delta(M, b)). Zero points are 0 for
 * symmetric configs and for the power grid.
 *
 * Codes: symmetric uniform and power: [-N, N], N = 2^(b-1) - 1 (int4 [-7, 7]);
 * asymmetric uniform: [0, 2^b - 1]. bits 2..8, so every code fits an int8
 * (symmetric) or a uint8 (asymmetric); the API uses int32.
 *
 * NaN/Inf in W (or X for the error) is LB_ERR_NUMERIC.
 */
#ifndef LOWBIT_REF_WEIGHT_QUANT_H
#define LOWBIT_REF_WEIGHT_QUANT_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/range_estimators.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which weights share one scale (see above). */
typedef enum lb_wq_granularity {
    LB_WQ_TENSOR = 0,
    LB_WQ_CHANNEL = 1, /* per output channel = per row of W */
    LB_WQ_GROUP = 2    /* per row and per g consecutive input columns */
} lb_wq_granularity;

/* The quantization grid. */
typedef enum lb_wq_grid {
    LB_WQ_GRID_UNIFORM = 0, /* uniform_quantizer.h */
    LB_WQ_GRID_POWER = 1    /* power_quantizer.h (NUPES/PowerQuant non-uniform grid) */
} lb_wq_grid;

/* "tensor", "channel", "group" / "uniform", "power"; NULL for an unknown value. */
const char *lb_wq_granularity_name(lb_wq_granularity g);
const char *lb_wq_grid_name(lb_wq_grid g);

typedef struct lb_weight_quant_config {
    int bits;                      /* 2..8 */
    int symmetric;                 /* 1: codes [-N, N], z = 0; 0: [0, 2^b - 1] with an integer
                                      zero point (uniform grid only) */
    lb_wq_granularity granularity;
    int64_t group_size;            /* LB_WQ_GROUP: g >= 1 input columns per group */
    lb_range_options range;        /* uniform grid: how each group's range is estimated */
    lb_wq_grid grid;
    double power_a;                /* power grid: exponent a in [LB_POWER_A_MIN, LB_POWER_A_MAX] */
} lb_weight_quant_config;

/* 4 bits, symmetric, per channel, g = 128, uniform grid, a = 1, range min-max
 * (with the MSE grid's margin set to 0: weights are small, and the absolute
 * 0.5 margin of the W8A8 authors' code would leave most of the 100 candidates
 * outside the data; with margin 0 the MSE range is never worse than min-max). */
lb_weight_quant_config lb_weight_quant_config_default(void);

/* LB_OK for a usable config; LB_ERR_ARG for bits outside 2..8, g < 1, an
 * unknown enum or a bad exponent; LB_ERR_UNSUPPORTED for the power grid with
 * an asymmetric config or a range method other than min-max (its M is max |w|
 * by definition, nupes.md §1). */
lb_status lb_weight_quant_check(lb_ctx *ctx, const lb_weight_quant_config *cfg);

/* The scale / zero-point array of W (C_out, C_in) is (*rows, *cols) (see above). */
lb_status lb_weight_scale_shape(lb_ctx *ctx, const lb_weight_quant_config *cfg, int64_t C_out, int64_t C_in,
                                int64_t *rows, int64_t *cols);

/* The code range [qmin, qmax] of a config. */
lb_status lb_weight_code_range(lb_ctx *ctx, const lb_weight_quant_config *cfg, int32_t *qmin, int32_t *qmax);

/* Quantization parameters of a (rows, cols) matrix taken as `rows` groups of
 * `cols` values each (ignores cfg->granularity): uniform grid: range of each
 * row by cfg->range, then lb_uniform_qparams_ref; power grid: scale = M =
 * max |x| of the row, zero = 0.
 * x (rows, cols) row-major; scale (rows,) out; zero (rows,) out, may be NULL
 * for symmetric configs and the power grid. */
lb_status lb_weight_qparams_ref(lb_ctx *ctx, const lb_weight_quant_config *cfg, int64_t rows, int64_t cols,
                                const float *x, float *scale, int32_t *zero);

/* One weight: its code under (scale, zero) of cfg's grid (no argument checks;
 * values beyond the group's range clamp to the end codes), and *what its
 * de-quantized value (may be NULL). Exactly the element rule of
 * lb_uniform_quantize_ref / lb_uniform_dequantize_ref (ties to even) or of
 * lb_power_quantize_ref with M = scale (|x| is first clamped to M). */
int32_t lb_weight_code(const lb_weight_quant_config *cfg, float x, float scale, int32_t zero, float *what);

/* RTN: every group's parameters from W itself (lb_weight_qparams_ref on the
 * group's values, gathered row-major), then each weight rounded to nearest.
 * W, codes, what: (C_out, C_in) row-major; scale, zero: (rows, cols) of
 * lb_weight_scale_shape; zero may be NULL for symmetric configs and the power
 * grid; what may be NULL. */
lb_status lb_weight_rtn_ref(lb_ctx *ctx, const lb_weight_quant_config *cfg, int64_t C_out, int64_t C_in,
                            const float *W, int32_t *codes, float *scale, int32_t *zero, float *what);

/* ŵ from codes and parameters. g_idx (C_in,) gives the column group of each
 * input column for LB_WQ_GROUP (GPTQ with act-order writes one); NULL means
 * column c is in group c / g. Ignored for the other granularities. Codes
 * outside the code range, a g_idx outside [0, G), a scale that is not
 * positive and finite (uniform) or not >= 0 and finite (power) are LB_ERR_ARG.
 * codes, what (C_out, C_in); scale, zero (rows, cols); zero may be NULL. */
lb_status lb_weight_dequantize_ref(lb_ctx *ctx, const lb_weight_quant_config *cfg, int64_t C_out, int64_t C_in,
                                   const int32_t *codes, const float *scale, const int32_t *zero,
                                   const int32_t *g_idx, float *what);

/* The layer's output reconstruction error on inputs X:
 *   *err_sq = sum_(t,o) ( sum_k X[t,k] (W[o,k] - Ŵ[o,k]) )²   = ||X W^T - X Ŵ^T||²
 *   *ref_sq = sum_(t,o) ( sum_k X[t,k] W[o,k] )²              = ||X W^T||²
 * in double, inner sums over k increasing, outer over t then o. Sum both over
 * calibration batches and divide for the relative error ||XW^T - XŴ^T||² /
 * ||XW^T||² (lb_weight_relative_error). X (n, C_in); W, What (C_out, C_in). */
lb_status lb_weight_recon_error_ref(lb_ctx *ctx, int64_t n, int64_t C_out, int64_t C_in, const float *X,
                                    const float *W, const float *What, double *err_sq, double *ref_sq);

/* err_sq / ref_sq, with 0 when both are 0 and +inf when only ref_sq is 0. */
double lb_weight_relative_error(double err_sq, double ref_sq);

#ifdef __cplusplus
}
#endif
#endif
