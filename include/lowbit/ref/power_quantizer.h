/* lowbit/ref/power_quantizer.h — the power (PowerQuant / NUPES) non-uniform
 * quantizer, its int8 codebook for integer-only inference, the data-free
 * exponent search and the data-driven NUPES gradients. The oracle.
 *
 * Spec: shared/specs/nupes.md (lowbit's definition; "our reading of NUPES")
 * and shared/specs/outlier_free_attention_and_w8a8.md §5, §7 "Power
 * quantizer", §9 item 16; doc/algorithms/power-quant.md.
 * Papers: Yvinec et al., "PowerQuant", ICLR 2023 (arXiv 2301.09858); Yvinec
 * et al., "NUPES", arXiv 2308.05600.
 *
 * The quantizer is the uniform symmetric quantizer conjugated by the power
 * automorphism: with M = max |w| of a group (float32), b bits, N = 2^(b-1) - 1,
 * a in [0.01, 8]:
 *   Δ     = lb_power_delta(M, b) = the uniform symmetric min-max scale,
 *           max(fl32(max(M, 1e-8) / N), 1e-8)      (uniform_quantizer.h)
 *   y     = T(|w|) = |w|                                       if a == 1
 *                  = fl32( M * pow(|w| / M, a) )  in double    otherwise
 *   q     = sign(w) * min(rint_even(fl32(y / Δ)), N)           (0 when M == 0)
 *   ŷ     = fl32(Δ * |q|)
 *   ŵ     = sign(q) * ŷ                                         if a == 1
 *         = sign(q) * fl32( M * pow(min(ŷ / M, 1), 1 / a) ) in double otherwise
 * This is nupes.md §1 (q = round(N sign(w) (|w|/M)^a), ŵ = sign(q) M (|q|/N)^(1/a))
 * up to the float32 rounding of Δ; written this way, a = 1 gives bit for bit
 * the codes and the de-quantized values of lb_uniform_* (symmetric, min-max
 * range, ties-to-even), ±M maps to ±N and back to exactly ±M when a != 1,
 * and the map is odd. The normalised ratio |w|/M <= 1 cannot overflow.
 * pow is the C library's double pow; codes can depend on the libm only
 * where fl32(y / Δ) lies within ~1e-16 relative of a half-integer.
 *
 * NaN/Inf in w is LB_ERR_NUMERIC (nupes.md §1: an error, not a silent NaN).
 */
#ifndef LOWBIT_REF_POWER_QUANTIZER_H
#define LOWBIT_REF_POWER_QUANTIZER_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/uniform_quantizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Valid exponents. */
#define LB_POWER_A_MIN 0.01
#define LB_POWER_A_MAX 8.0

/* The uniform symmetric min-max scale of a group with max |w| = gmax (>= 0)
 * at `bits` (2..16); see above. */
float lb_power_delta(float gmax, int bits);

/* y = T(|w|) for one magnitude 0 <= w_abs <= gmax, gmax > 0 (see above). */
float lb_power_transform(float w_abs, float gmax, double a);

/* |ŵ| of code magnitude k >= 0 in a group with max gmax and scale delta =
 * lb_power_delta(gmax, bits) (0 when gmax == 0 or k == 0). */
float lb_power_level(int32_t k, float gmax, float delta, double a);

/* Quantizes w per group. w, codes, what: (outer, groups, inner) flattened
 * (lb_qgroups); gmax: (groups,) out, the M of each group. what may be NULL.
 * bits 2..8 (codes are int8). */
lb_status lb_power_quantize_ref(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups, const float *w,
                                float *gmax, int8_t *codes, float *what);

/* ŵ from codes and the group maxima (inverse of the above). Codes outside
 * [-N, N] or a negative/non-finite gmax are LB_ERR_ARG. */
lb_status lb_power_dequantize_ref(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups,
                                  const int8_t *codes, const float *gmax, float *what);

/* ---- Integer-only inference: the int8 codebook (nupes.md §4) -------------
 * g_k = (k/N)^(1/a) (double), k = 0..N. Codebook r_k = rint_even(R * g_k) with
 * R <= 127, so a code q stands for the integer sign(q) * r_|q| and the weight
 * (M/R) * sign(q) * r_|q|. R = 0 asks for the default: the smallest R in
 * 1..127 for which every R * g_k is an integer (|R g_k - rint(R g_k)| <= 1e-9 R;
 * "exact"; e.g. R = N at a = 1, R = 49 = N^2 at a = 1/2, N = 7, r_k = k^2),
 * else R = 127. With an exact codebook, (M/R) r_q equals the float ŵ above to
 * within a few float32 ulps of M (the only difference is float rounding:
 * Δ = fl32(M/N) and pow vs the exact integer); with R = 127 rounding, within
 * M / (2R) plus that. The codebook (r, R) is part of the stored model, so the
 * integer path (codes -> r lookup -> int8 GEMM -> int32 -> one fp32 scale per
 * output) reproduces lb_power_codebook_dequantize_ref exactly. */

/* r: (N+1,) int8 out, r[0] = 0, r[N] = R; *R_used: the R in use; *exact: 1 if
 * every R g_k is an integer. R_request 0 (auto) or 1..127. */
lb_status lb_power_codebook_ref(lb_ctx *ctx, int bits, double a, int R_request, int8_t *r, int *R_used,
                                int *exact);

/* out[i] = sign(codes[i]) * r[|codes[i]|] for i < n (the int8 weights of the
 * integer GEMM). LB_ERR_ARG for a code outside [-N, N]. */
lb_status lb_power_codebook_lookup_ref(lb_ctx *ctx, int bits, const int8_t *r, int64_t n, const int8_t *codes,
                                       int8_t *out);

/* scale[g] = fl32(gmax[g] / R): the per-group float scale of the integer path. */
lb_status lb_power_codebook_scales_ref(lb_ctx *ctx, int R, int64_t n_groups, const float *gmax, float *scale);

/* ŵ_cb = fl32(scale[g] * sign(q) * r_|q|) with scale from
 * lb_power_codebook_scales_ref. Shapes as lb_power_dequantize_ref. */
lb_status lb_power_codebook_dequantize_ref(lb_ctx *ctx, int bits, int R, const int8_t *r,
                                           const lb_qgroups *groups, const int8_t *codes, const float *gmax,
                                           float *what);

/* ---- Data-free exponent search (nupes.md §2, PowerQuant) ----------------- */

/* One weight tensor and its group structure (per output channel by default). */
typedef struct lb_power_layer {
    const float *w;     /* (outer, groups, inner) flattened */
    lb_qgroups groups;
} lb_power_layer;

/* E(a) = sum over layers, in order, of sum over elements (increasing flat
 * index) of (w - ŵ(a))², accumulated in double. */
lb_status lb_power_error_ref(lb_ctx *ctx, int bits, double a, int n_layers, const lb_power_layer *layers,
                             double *error);

typedef struct lb_power_search_options {
    int bits;          /* 2..8 (default 4) */
    double a_lo, a_hi; /* search interval, default [0.2, 1] (nupes.md §2) */
    int grid_points;   /* >= 2; grid a_j = a_lo + (a_hi - a_lo) * j / (P - 1), default 81 (step 0.01) */
    int refine_iters;  /* golden-section iterations around the best grid point, default 20; 0 = grid only */
} lb_power_search_options;

lb_power_search_options lb_power_search_options_default(void);

typedef struct lb_power_search_result {
    double a;        /* the chosen exponent */
    double error;    /* E(a) */
    double error_a1; /* E(1), the uniform quantizer's error */
    int evaluations; /* number of E evaluations (grid + refinement, E(1) not counted) */
} lb_power_search_result;

/* One exponent shared by all layers (call once per layer for per-layer a):
 * 1. E at every grid point; j* = the first (smallest a) minimum;
 * 2. golden-section search on [a_(j*-1), a_(j*+1)] (clipped to the grid) for
 *    refine_iters iterations (interior points c = b - (b - l)/φ, d = l + (b - l)/φ,
 *    keep [l, d] when E(c) <= E(d), else [c, b]);
 * 3. the result is the smallest-a minimiser of E over every point evaluated,
 *    so E(result) <= E(a_j) for every grid point a_j. */
lb_status lb_power_search_ref(lb_ctx *ctx, const lb_power_search_options *opts, int n_layers,
                              const lb_power_layer *layers, lb_power_search_result *result);

/* ---- Data-driven NUPES (nupes.md §3, lowbit's reading) -------------------
 * Per layer: a = a_min + (1 - a_min) * sigmoid(θ) (a_min = 0.2) and a latent
 * V (same shape as W) in code units of the power domain, initialised at
 * V = N sign(w) (|w|/M)^a (computed as T(|w|)/Δ, so round(V) are the codes
 * of lb_power_quantize_ref). Forward: q = clamp(rint_even(V), -N, N),
 * ŵ = sign(q) lb_power_level(|q|, M, Δ, a) (exactly lb_power_dequantize_ref of
 * those codes). M stays fixed.
 * Backward, given G = dL/dŴ:
 *   dL/dθ = sum_i G_i dŵ_i/da * (1 - a_min) σ(θ)(1 - σ(θ)), with, for q_i != 0
 *           and v_i = ŷ_i / M (ŷ_i = fl32(Δ |q_i|), clamped to <= 1),
 *           dŵ_i/da = -sign(q_i) M v_i^(1/a) ln(v_i) / a²  (0 where q_i = 0:
 *           the masked 0·∞ of outlier_free... §5.6); exact for fixed codes.
 *   dL/dV_i = G_i s'(V_i) with the straight-through surrogate
 *           s(V) = sign(V) M (Δ|V|/M)^(1/a) (rounding skipped), i.e.
 *           s'(V) = (Δ / a) (Δ|V|/M)^(1/a - 1) for |V| <= N, 0 outside
 *           (clamped codes pass no gradient); 0 at V = 0 when a < 1.
 * All in double; the gradients are written as float (dV) and double (dθ). */

/* a(θ) = a_min + (1 - a_min) / (1 + exp(-θ)). */
double lb_nupes_exponent(double theta, double a_min);

/* gmax (groups,) out; V (as w) out. bits 2..8. */
lb_status lb_nupes_init_ref(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups, const float *w,
                            float *gmax, float *V);

/* codes (may be NULL), what from V and gmax. */
lb_status lb_nupes_forward_ref(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups, const float *V,
                               const float *gmax, int8_t *codes, float *what);

/* grad_V (as V, may be NULL) and *grad_theta (may be NULL) from grad_what. */
lb_status lb_nupes_backward_ref(lb_ctx *ctx, int bits, double theta, double a_min, const lb_qgroups *groups,
                                const float *V, const float *gmax, const float *grad_what, float *grad_V,
                                double *grad_theta);

/* Output reconstruction loss of one linear layer on calibration inputs:
 * L = sum_(t,n) ((X W^T)_(t,n) - (X Ŵ^T)_(t,n))², and G = dL/dŴ = 2 E^T X with
 * E = X Ŵ^T - X W^T, evaluated as E[t,n] = sum_k X[t,k] (Ŵ[n,k] - W[n,k]); all
 * in double, sums in increasing index.
 * X (T, K), W and Ŵ (Nout, K), grad_what (Nout, K) out (may be NULL). */
lb_status lb_nupes_recon_loss_ref(lb_ctx *ctx, int64_t T, int64_t Nout, int64_t K, const float *X,
                                  const float *W, const float *what, double *loss, float *grad_what);

#ifdef __cplusplus
}
#endif
#endif
