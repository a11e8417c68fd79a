/* ref/leverage_sampling.c — leverage score sampling (LSS) of the rows of the
 * bit-split gradient: scores from integer row norms, the budgeted keep
 * probabilities (iterative clamp-and-rescale), Bernoulli masks with 1/p
 * weights.
 *
 * Spec: int4_training.md §2 A.5 (Xi et al. 2023 Eq. 6–8, Prop. 4.1: p ∝ c
 * minimises Σ(1/p_i − 1)c_i² under Σp = budget; the A.2 loop as written in the
 * authors' sample_index_from_bernouli and their disabled kernel branch) and
 * §4.4; A.6 for the "keep non-zero rows" rule the released kernels use.
 *
 * Leaves out: the GEMMs over the kept rows (ref/qlinear_hq.c), the CUDA
 * code's padding of the kept-row count to a multiple of 32, sampling with
 * replacement (the paper samples each row independently).
 *
 * Shapes: scores, p, mask, weight (L) with L = 2N; hi, lo (N, C);
 * x_codes (N, D).
 */
#include "config.h"
#include "lowbit/ref/leverage_sampling.h"
#include "lowbit/rng.h"

#include <math.h>

const char *lb_lss_mode_name(lb_lss_mode mode)
{
    switch (mode) {
    case LB_LSS_BERNOULLI: return "bernoulli";
    case LB_LSS_NONZERO: return "nonzero";
    case LB_LSS_ALL: return "all";
    }
    return NULL;
}

lb_status lb_lss_probabilities_ref(lb_ctx *ctx, lb_lss_mode mode, int64_t L, const double *scores,
                                   double budget, double *p, int *iterations)
{
    if (!lb_lss_mode_name(mode)) return lb_error(ctx, LB_ERR_ARG, "lss: unknown mode %d", (int)mode);
    if (L < 0 || (L > 0 && (!scores || !p))) return lb_error(ctx, LB_ERR_ARG, "lss: bad arguments");
    if (iterations) *iterations = 0;
    for (int64_t i = 0; i < L; i++) {
        if (!isfinite(scores[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "lss: score[%lld] = %g is not finite", (long long)i,
                            scores[i]);
        if (scores[i] < 0.0)
            return lb_error(ctx, LB_ERR_ARG, "lss: score[%lld] = %g is negative", (long long)i, scores[i]);
    }
    if (mode == LB_LSS_ALL) {
        for (int64_t i = 0; i < L; i++) p[i] = 1.0;
        return LB_OK;
    }
    if (mode == LB_LSS_NONZERO) {
        for (int64_t i = 0; i < L; i++) p[i] = scores[i] > 0.0 ? 1.0 : 0.0;
        return LB_OK;
    }
    if (!(isfinite(budget) && budget > 0.0 && budget <= (double)L) && L > 0)
        return lb_error(ctx, LB_ERR_ARG, "lss: budget %g must be in (0, L=%lld]", budget, (long long)L);

    double total = 0.0;
    for (int64_t i = 0; i < L; i++) total += scores[i];
    if (total == 0.0) {
        /* No row carries anything: the gradient is exactly zero, keep nothing. */
        for (int64_t i = 0; i < L; i++) p[i] = 0.0;
        return LB_OK;
    }
    double pmax = 0.0;
    for (int64_t i = 0; i < L; i++) {
        p[i] = scores[i] * budget / total;
        if (p[i] > pmax) pmax = p[i];
    }
    int64_t cnt = 0;
    int rounds = 0;
    while (pmax > 1.0 && (double)cnt < budget) {
        /* S = {p < 1}, taken before clamping; the rest are clamped to 1. */
        int64_t small = 0;
        double small_max = 0.0, small_sum = 0.0;
        for (int64_t i = 0; i < L; i++) {
            if (p[i] < 1.0) {
                small++;
                if (p[i] > small_max) small_max = p[i];
                small_sum += p[i];
            } else {
                p[i] = 1.0;
            }
        }
        cnt = L - small;
        if (small_max == 0.0) break;
        double left = budget - (double)cnt;
        pmax = 0.0;
        for (int64_t i = 0; i < L; i++) {
            if (p[i] < 1.0) p[i] = p[i] * left / small_sum;
            if (p[i] > pmax) pmax = p[i];
        }
        rounds++;
    }
    /* The loop can stop on cnt >= budget with an entry still above 1 (only
     * through rounding); the spec clamps at the start of each round, so clamp
     * once more to honour 0 <= p <= 1. */
    for (int64_t i = 0; i < L; i++)
        if (p[i] > 1.0) p[i] = 1.0;
    if (iterations) *iterations = rounds;
    return LB_OK;
}

lb_status lb_lss_sample_ref(lb_ctx *ctx, int64_t L, const double *p, uint64_t seed, uint64_t stream,
                            uint8_t *mask, double *weight)
{
    if (L < 0 || (L > 0 && (!p || !mask))) return lb_error(ctx, LB_ERR_ARG, "lss sample: bad arguments");
    for (int64_t i = 0; i < L; i++)
        if (!(p[i] >= 0.0 && p[i] <= 1.0))
            return lb_error(ctx, LB_ERR_ARG, "lss sample: p[%lld] = %g is not in [0, 1]", (long long)i, p[i]);
    for (int64_t i = 0; i < L; i++) {
        double u = lb_rng_uniform_f64(seed, stream, (uint64_t)i);
        mask[i] = u < p[i] ? 1 : 0;
        if (weight) weight[i] = mask[i] ? 1.0 / p[i] : 0.0;
    }
    return LB_OK;
}

lb_status lb_lss_bs_scores_ref(lb_ctx *ctx, int64_t N, int64_t C, const int8_t *hi, const int8_t *lo,
                               int64_t D, const int8_t *x_codes, double *scores)
{
    if (N < 0 || C < 0 || (x_codes && D < 0) || (N > 0 && (!scores || (C > 0 && (!hi || !lo)))))
        return lb_error(ctx, LB_ERR_ARG, "lss scores: bad arguments");
    for (int64_t i = 0; i < N; i++) {
        int64_t h2 = 0, l2 = 0, x2 = 1;
        for (int64_t c = 0; c < C; c++) {
            h2 += (int64_t)hi[i * C + c] * hi[i * C + c];
            l2 += (int64_t)lo[i * C + c] * lo[i * C + c];
        }
        if (x_codes) {
            x2 = 0;
            for (int64_t d = 0; d < D; d++) x2 += (int64_t)x_codes[i * D + d] * x_codes[i * D + d];
        }
        scores[i] = 14.0 * sqrt((double)h2 * (double)x2);
        scores[N + i] = sqrt((double)l2 * (double)x2);
    }
    return LB_OK;
}
