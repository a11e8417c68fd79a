/* lowbit/ref/leverage_sampling.h — leverage score sampling (LSS) of the
 * bit-split gradient rows, Xi et al. 2023 §4.2, Eq. 6–8, Prop. 4.1, A.2 (oracle).
 *
 * Spec: shared/specs/int4_training.md §2 A.5, §4.4, §7.
 *
 * The bit-split gradient is stacked as L = 2N rows ∇↕ = [s↑·hi ; s↓·lo]
 * (rows 0..N−1 the high nibbles, N..2N−1 the low nibbles of token i − N).
 * Each row i gets a score c_i >= 0, a keep probability p_i ∈ [0, 1], an
 * independent Bernoulli mask m_i and the weight m_i / p_i, so that
 * Σ_i (m_i/p_i)·(row i product) is an unbiased estimate of the full sum.
 *
 * Scores used by the layer (lb_lss_bs_scores_ref), from integer codes only:
 *   ∇W GEMM (x_codes given):  c_i     = 14 · sqrt(‖hi_i‖² · ‖X̂_i‖²)
 *                             c_{N+i} =      sqrt(‖lo_i‖² · ‖X̂_i‖²)
 *   ∇X GEMM (x_codes NULL):   c_i = 14 · sqrt(‖hi_i‖²), c_{N+i} = sqrt(‖lo_i‖²)
 * i.e. the paper's ‖∇↕_i‖·‖X̂↕_i‖ and ‖∇↕_i‖ in units of s↓·s_X and s↓ (a
 * common factor cancels in p). The squared norms are exact int64 sums, the
 * product is exact in double below 2^53, then one sqrt and one multiply by 14.
 *
 * Probabilities (lb_lss_probabilities_ref), mode by mode:
 *   LB_LSS_BERNOULLI (default; the paper's algorithm, A.2 and the authors'
 *     disabled branch), with budget B (the layer uses B = N = L/2):
 *         p_i = c_i · B / Σc;  cnt = 0
 *         while max p > 1 and cnt < B:
 *             S = {i : p_i < 1};  cnt = L − |S|;  p = clamp(p, 0, 1)
 *             if max_{i∈S} p_i == 0: break
 *             p_S = p_S · (B − cnt) / Σ_{i∈S} p_i
 *       All arithmetic in double; every Σ in increasing index order; the
 *       products are evaluated as (p_i · (B − cnt)) / Σ_S. Σc = 0 gives p = 0
 *       everywhere (the authors' code divides by zero). Result: 0 <= p <= 1,
 *       Σp = B when at least B scores are positive (up to rounding), else
 *       every positive row has p = 1; p_i ∝ c_i among unclamped rows; c_i = 0
 *       gives p_i = 0.
 *   LB_LSS_NONZERO: p_i = 1[c_i > 0] — what the released CUDA kernels do
 *     (the iterative branch is disabled there; paper A.6 reports it works as
 *     well). No randomness, no rescaling: the estimate equals the BS product.
 *   LB_LSS_ALL: p_i = 1 (sampling off; for tests and ablations).
 *
 * Masks (lb_lss_sample_ref): m_i = 1[u_i < p_i] with
 *   u_i = lb_rng_uniform_f64(seed, stream, i) (53-bit uniform in [0, 1)),
 * so p = 1 always keeps and p = 0 never does; weight_i = m_i / p_i (0 when
 * dropped). The layer's streams: lb_rng_stream("xi.lss.weight", sub) for the
 * ∇W masks and lb_rng_stream("xi.lss.input", sub) for the ∇X masks, sub =
 * layer·2^32 + step (separate draws, as in the paper).
 *
 * Non-finite or negative scores: LB_ERR_NUMERIC / LB_ERR_ARG.
 */
#ifndef LOWBIT_REF_LEVERAGE_SAMPLING_H
#define LOWBIT_REF_LEVERAGE_SAMPLING_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_lss_mode {
    LB_LSS_BERNOULLI = 0, /* paper: iterative probabilities, Bernoulli masks, 1/p (default) */
    LB_LSS_NONZERO = 1,   /* authors' kernels: keep every row with a positive score */
    LB_LSS_ALL = 2        /* keep every row (no sampling) */
} lb_lss_mode;

/* "bernoulli" / "nonzero" / "all"; NULL for an unknown mode. */
const char *lb_lss_mode_name(lb_lss_mode mode);

/* p (L) from scores (L) and the budget (0 < budget <= L; used by
 * LB_LSS_BERNOULLI only), as documented above. *iterations (may be NULL)
 * receives the number of rescaling rounds. */
lb_status lb_lss_probabilities_ref(lb_ctx *ctx, lb_lss_mode mode, int64_t L, const double *scores,
                                   double budget, double *p, int *iterations);

/* mask (L) = 1[u_i < p_i], u_i = lb_rng_uniform_f64(seed, stream, i);
 * weight (L, may be NULL) = mask_i / p_i. p must lie in [0, 1]. */
lb_status lb_lss_sample_ref(lb_ctx *ctx, int64_t L, const double *p, uint64_t seed, uint64_t stream,
                            uint8_t *mask, double *weight);

/* Scores (2N) of the stacked bit-split rows hi (N, C), lo (N, C); with
 * x_codes (N, D) the ∇W scores, with x_codes NULL (D ignored) the ∇X scores. */
lb_status lb_lss_bs_scores_ref(lb_ctx *ctx, int64_t N, int64_t C, const int8_t *hi, const int8_t *lo,
                               int64_t D, const int8_t *x_codes, double *scores);

#ifdef __cplusplus
}
#endif
#endif
