/* lowbit/ref/range_estimators.h — range estimators for uniform quantizers:
 * min-max, running (EMA) min-max, percentile and MSE grid search. The oracle.
 *
 * Spec: shared/specs/outlier_free_attention_and_w8a8.md §4.2 and §4.4 (the
 * estimators of the authors' code of "Quantizable Transformers"), §7 "Uniform
 * quantizers"; doc/algorithms/range-estimators.md.
 *
 * Every estimator returns one range (lo, hi) per group of an lb_qgroups
 * structure (see uniform_quantizer.h); lb_uniform_qparams_ref turns ranges into
 * (scale, zero point). All of them reject NaN/Inf data with LB_ERR_NUMERIC.
 *
 * - min-max: lo = min x, hi = max x over the group (exact).
 * - percentile p in [50, 100]: hi = P_p, lo = P_(100-p) with NumPy's default
 *   "linear" rule exactly as np.percentile evaluates it on a float32 array:
 *     sorted v[0..n-1], r = (n - 1) * (p / 100) (double), j = floor(r),
 *     t = r - j; if r >= n - 1: P = v[n-1]; else, with d = v[j+1] - v[j]
 *     rounded to float32 and everything else in double,
 *     P = v[j] + d * t          if t < 0.5
 *       = v[j+1] - d * (1 - t)  if t >= 0.5
 *   then rounded to float32 once. (The authors' current-min-max estimator
 *   takes p = 0.001 for the same pair of tails; lowbit uses p >= 50 only.)
 * - running min-max: per batch statistics (lo_b, hi_b) from one of the above;
 *   the first batch sets the state, each later batch updates, in float32,
 *     r <- (1 - m) * r_b + m * r           with (1 - m) rounded from double,
 *   separately for lo and hi (momentum m = 0.9 in the authors' code).
 * - MSE grid (symmetric config): with lo, hi the group's min and max,
 *   R = max(|lo|, hi) + margin (double; margin 0.5 in the authors' code),
 *   step = R / K (double),
 *   candidates c_k = (float)(step * k), k = 1..K (K = 100). Candidate k is the
 *   range (0, c_k) when the group has no negative value, else (-c_k, c_k); its
 *   loss is the sum over the group, in increasing flat index, of (x - x̂)² in
 *   double, where x̂ is the config's quantizer (round-to-nearest with the
 *   config's tie rule; stochastic configs use ties-to-even here). The smallest
 *   loss wins; on equal losses the smallest k. With margin 0 candidate K is
 *   exactly the min-max range, so the result is never worse than min-max.
 * - MSE grid (asymmetric config, the authors' 2-D grid): pos = hi + margin,
 *   neg = lo - margin, R = max(|pos|, |neg|), step = R / K, S =
 *   2^b / 4 skews; for k = 1..K, s = 0..S-1, r = 0..1 (in that nesting order):
 *   δ = 2·step·k / (2^b - 1), skew = (r ? -s : s)·δ, candidate range
 *   (max(-step·k + skew, neg), min(step·k + skew, pos)), all in double, rounded
 *   to float32. First minimum in that order wins. A group without negative
 *   values uses the 1-D grid (0, c_k) instead (as the authors' code does).
 *   lowbit computes R, neg and pos per group (the authors' code uses the whole
 *   tensor even when per channel; they only use per-tensor ranges).
 */
#ifndef LOWBIT_REF_RANGE_ESTIMATORS_H
#define LOWBIT_REF_RANGE_ESTIMATORS_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/uniform_quantizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_range_method {
    LB_RANGE_MINMAX = 0,
    LB_RANGE_PERCENTILE = 1,
    LB_RANGE_MSE = 2
} lb_range_method;

/* "minmax", "percentile", "mse"; NULL for an unknown value. */
const char *lb_range_method_name(lb_range_method m);

typedef struct lb_range_options {
    lb_range_method method;
    double percentile;     /* LB_RANGE_PERCENTILE: p in [50, 100] (default 99.99) */
    int mse_candidates;    /* LB_RANGE_MSE: K >= 1 (default 100) */
    double mse_margin;     /* LB_RANGE_MSE: absolute margin >= 0 (default 0.5) */
} lb_range_options;

/* method min-max, percentile 99.99, 100 candidates, margin 0.5. */
lb_range_options lb_range_options_default(void);

/* lo, hi (groups,) = min and max of each group of x. An empty group gives
 * (0, 0). */
lb_status lb_range_minmax_ref(lb_ctx *ctx, const lb_qgroups *groups, const float *x, float *lo, float *hi);

/* lo = P_(100-p), hi = P_p of each group (NumPy "linear", see above). Uses a
 * scratch buffer of one group (LB_ERR_NOMEM). LB_ERR_ARG for p outside
 * [50, 100]. */
lb_status lb_range_percentile_ref(lb_ctx *ctx, const lb_qgroups *groups, const float *x, double p,
                                  float *lo, float *hi);

/* NumPy's linear percentile (rule above, in double) of n >= 1 sorted float32
 * values, p in [0, 100]. */
double lb_percentile_linear(const float *sorted, int64_t n, double p);

/* MSE-optimal range of each group over the documented grid for the quantizer
 * `cfg`. candidates >= 1, margin >= 0 and finite. */
lb_status lb_range_mse_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                           const float *x, int candidates, double margin, float *lo, float *hi);

/* The MSE grid's objective: sum over group g of (x - x̂)² in double (increasing
 * flat index) for the range (lo, hi) under `cfg` (round to nearest; stochastic
 * configs are evaluated with ties-to-even). */
lb_status lb_range_group_sse_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                 const float *x, int64_t g, float lo, float hi, double *sse);

/* Dispatches on opts->method (cfg is used by LB_RANGE_MSE only). */
lb_status lb_range_estimate_ref(lb_ctx *ctx, const lb_range_options *opts, const lb_uniform_config *cfg,
                                const lb_qgroups *groups, const float *x, float *lo, float *hi);

/* The running (EMA) estimate of n_groups ranges. */
typedef struct lb_running_range {
    int initialized; /* 0 until the first batch */
    double momentum; /* m in [0, 1] (0.9 in the authors' code); used as (float)m and
                        (float)(1 - m), as PyTorch does with a Python float */
} lb_running_range;

/* One batch: if !state->initialized, run = batch (and initialized = 1); else
 * run_lo = (1-m)*batch_lo + m*run_lo and the same for hi (float32, in that
 * order). All arrays (n_groups,). LB_ERR_NUMERIC for a non-finite batch value. */
lb_status lb_range_running_update_ref(lb_ctx *ctx, lb_running_range *state, int64_t n_groups,
                                      const float *batch_lo, const float *batch_hi, float *run_lo,
                                      float *run_hi);

#ifdef __cplusplus
}
#endif
#endif
