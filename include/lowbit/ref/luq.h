/* lowbit/ref/luq.h — LUQ, the logarithmic unbiased quantizer of neural
 * gradients (Chmiel et al., ICLR 2023), and SMP (the average of S samples).
 *
 * Spec: shared/specs/int4_training.md §B.3, §B.4, §4.5, §4.7; pages
 * doc/algorithms/luq.md and doc/algorithms/smp.md.
 *
 * Format: sign + power-of-two magnitude, L magnitudes α·2^k (k = 0..L−1) plus
 * zero, per tensor, α = max|x| / 2^(L−1) so that the max is a level (never
 * clipped). L = 8 (default) is the authors' code (α = max/2^7); L = 7 fits a
 * strict 4-bit code with one exponent reserved for zero; L = 5 is the literal
 * reading of the paper's Eq. 11 (α = max/2^(2^(b−1)), b = 3).
 *
 * Code of an element (int8, "LUQ code"): 0 for zero, ±(k + 1) for ±α·2^k, so
 * |code| <= L. Its integer value is ±2^k (lb_luq_code_to_int); its real value
 * is α·(±2^k) = fl32(α · 2^k) (exact).
 *
 * Exact arithmetic contract, per element x_i of the flattened tensor
 * (m = max|x_i| over the tensor, α = ldexpf(m, 1 − L)):
 *   a = |x_i|; a == 0 gives code 0 (zeros stay zeros, also −0.0).
 *   v = fl32(a / m) · 2^(L−1)     (IEEE division; the product is exact;
 *                                  equals fl32(a / α) whenever α is normal)
 *   v < 1 (underflow region, T_α of Eq. 10):
 *       stochastic: keep iff v >= 1 − u_U   (= floor(v + u_U) in exact
 *                   arithmetic; 1 − u_U is exact for a 24-bit uniform)
 *       nearest   : keep iff v >= 1/2       (deterministic, FP-style underflow)
 *       flush     : never keep               (flush to zero)
 *       kept → k = 0 (±α), else code 0.
 *   v >= 1 (log rounding, Eq. 12): n = floor(log2 v) (frexpf), f = v/2^n − 1
 *       (exact, in [0, 1)); stochastic: up iff f >= 1 − u_R (= floor(f + u_R));
 *       nearest: up iff f >= 1/2 (linear-domain midpoint 1.5·2^n, ties up, the
 *       paper's 2^floor(log2(4/3·y)) rule); k = n + up <= L − 1.
 * With u ~ U[0,1): P(keep) = v and P(up) = f (up to the 2^-24 granularity of
 * u), so E[LUQ(x)] = x; this is exactly the distribution of the paper's
 * noise-plus-4/3 trick (Eqs. 13-14), which rounds up iff u >= 1 − f.
 *
 * RNG streams (lowbit/rng.h), SMP sample s (s = params->sample for a single
 * quantization), element i = flat row-major index of x:
 *   underflow draw u_U = lb_rng_uniform_f32(seed, lb_rng_stream("luq.underflow", s), i)
 *   rounding  draw u_R = lb_rng_uniform_f32(seed, lb_rng_stream("luq.round", s), i)
 * Each element has one draw of each kind; only one of them can matter (u_U
 * when v < 1, u_R when v >= 1).
 *
 * Non-finite input (NaN, ±Inf): LB_ERR_NUMERIC, nothing written. All-zero
 * input: α = 0, all codes 0, all values 0.
 */
#ifndef LOWBIT_REF_LUQ_H
#define LOWBIT_REF_LUQ_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LB_LUQ_LEVELS_DEFAULT 8 /* α = max/2^7, the authors' code [LuC] */
#define LB_LUQ_LEVELS_INT4 7    /* strict 4-bit: sign + 3-bit exponent with a zero code */
#define LB_LUQ_LEVELS_PAPER 5   /* literal Eq. 11: α = max / 2^(2^(b−1)), b = 3 */
#define LB_LUQ_MAX_LEVELS 16    /* integer values ±2^k stay below 2^15 */
#define LB_LUQ_MAX_SAMPLES 4096 /* SMP: S · 2^(L−1) fits int32 */

typedef enum lb_luq_underflow {
    LB_LUQ_UNDERFLOW_STOCHASTIC = 0, /* default: Eq. 10, P(±α) = |x|/α */
    LB_LUQ_UNDERFLOW_NEAREST = 1,    /* ablation "no SU": ±α iff |x| >= α/2 (biased) */
    LB_LUQ_UNDERFLOW_FLUSH = 2       /* ablation: |x| < α → 0 (biased toward 0) */
} lb_luq_underflow;

typedef enum lb_luq_rounding {
    LB_LUQ_ROUND_STOCHASTIC = 0, /* default: unbiased SR between powers of two (Eq. 12) */
    LB_LUQ_ROUND_NEAREST = 1     /* ablation: nearest power of two (FP4 RTN; biased) */
} lb_luq_rounding;

typedef struct lb_luq_params {
    int levels;                 /* L in [1, LB_LUQ_MAX_LEVELS] */
    lb_luq_underflow underflow;
    lb_luq_rounding rounding;
    uint64_t seed;              /* Philox key */
    uint64_t sample;            /* SMP sample index s: selects the two streams */
} lb_luq_params;

/* L = 8, stochastic underflow, stochastic rounding, seed 0, sample 0. */
lb_luq_params lb_luq_default_params(void);

/* lb_rng_stream("luq.underflow", sample) and lb_rng_stream("luq.round", sample). */
uint64_t lb_luq_stream_underflow(uint64_t sample);
uint64_t lb_luq_stream_round(uint64_t sample);

/* "stochastic" / "nearest" / "flush" and "stochastic" / "nearest"; NULL if unknown. */
const char *lb_luq_underflow_name(lb_luq_underflow mode);
const char *lb_luq_rounding_name(lb_luq_rounding mode);

/* ±2^(|code|−1) (0 for code 0): the exact integer operand of the int GEMMs. */
static inline int32_t lb_luq_code_to_int(int8_t code)
{
    return code == 0 ? 0 : (code > 0 ? (int32_t)1 << (code - 1) : -((int32_t)1 << (-code - 1)));
}

/* *max_abs = max|x_i| and *alpha = ldexpf(max_abs, 1 − levels) (0 for an
 * all-zero or empty tensor). LB_ERR_NUMERIC on NaN/Inf, LB_ERR_ARG on a bad
 * level count or NULL pointers. Either output may be NULL. */
lb_status lb_luq_alpha_ref(lb_ctx *ctx, int levels, const float *x /* (n) */, size_t n,
                           float *alpha, float *max_abs);

/* LUQ of x with caller-supplied uniforms (for tests and for checking other
 * backends): u_underflow[i] and u_round[i] in [0, 1) play the roles of u_U and
 * u_R above (params->seed/sample are ignored). Each array may be NULL when its
 * mode is not stochastic. codes, values (fl32(α·2^k) with sign) and alpha may
 * each be NULL. */
lb_status lb_luq_quantize_uniforms_ref(lb_ctx *ctx, const lb_luq_params *params,
                                       const float *x /* (n) */, size_t n,
                                       const float *u_underflow /* (n) or NULL */,
                                       const float *u_round /* (n) or NULL */,
                                       int8_t *codes /* (n) or NULL */,
                                       float *values /* (n) or NULL */, float *alpha);

/* LUQ of x with the uniforms of the documented streams (params->seed,
 * params->sample, element index i). Outputs as above. */
lb_status lb_luq_quantize_ref(lb_ctx *ctx, const lb_luq_params *params, const float *x /* (n) */,
                              size_t n, int8_t *codes /* (n) or NULL */,
                              float *values /* (n) or NULL */, float *alpha);

/* SMP [LuP §5.1, spec B.4]: S independent LUQ samples of x — sample j is
 * exactly lb_luq_quantize_ref with sample = params->sample + j, j = 0..S−1 —
 * averaged. Exact integer sum: code_sum[i] = Σ_j lb_luq_code_to_int(code_j[i])
 * (int32, |·| <= S·2^(L−1)); mean[i] = fl32(c · fl32(code_sum[i])) with
 * c = fl32(α / S) (for S = 1 this is the LUQ value itself). S in
 * [1, LB_LUQ_MAX_SAMPLES]. mean, code_sum and alpha may each be NULL. */
lb_status lb_luq_smp_ref(lb_ctx *ctx, const lb_luq_params *params, int samples,
                         const float *x /* (n) */, size_t n, float *mean /* (n) or NULL */,
                         int32_t *code_sum /* (n) or NULL */, float *alpha);

#ifdef __cplusplus
}
#endif
#endif
