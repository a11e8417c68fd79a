/* lowbit/ref/bit_split.h — bit splitting (BS) of the output gradient ∇Y into
 * two int4 tensors, Xi et al. 2023 Eq. 5 (oracle).
 *
 * Spec: shared/specs/int4_training.md §2 A.4, §4.3, §7.
 *
 * ∇Y ≈ s↑·hi + s↓·lo with hi, lo int4 and s↓ = s↑/14 per tensor, i.e.
 *     ∇Y ≈ s↓ · n,   n = 14·hi + lo,
 * so only the fine step s↓ ("fine_scale") is stored; s↑ = 14·s↓.
 *
 * Modes (spec §7 item 1):
 *
 * LB_BS_CLEAN (default): the paper's description made exactly unbiased.
 *     M   = max|∇Y|  (float32, exact). M = 0: hi = lo = 0, s↓ = 0.
 *     v   = (float)((double)∇Y · 98 / (double)M)        ∈ [-98, 98]
 *           (98·∇Y is exact in double; one division; so ±M map to ±98 exactly)
 *     hi  = RTN((double)v / 14)                          ∈ [-7, 7]
 *     r   = v − 14·hi                                    (float32, exact, |r| <= 7)
 *     lo  = clamp(floor(r + u), −7, 7)                   (r + u in float32, lb_round_stochastic)
 *     s↓  = (float)(M / 98)                              (float32 division)
 *   In exact arithmetic 14·hi + lo = floor(v + u): BS is stochastic rounding
 *   of ∇Y onto the grid s↓·Z ∩ [−98, 98], E[n] = v, Var[n] = f(1−f) <= 1/4
 *   (f = v − floor v); values already on the grid (±M included) are
 *   deterministic. (float32 evaluation of r + u can round across an integer
 *   with probability < 2^-21 per element; the clamp only acts then.)
 *
 * LB_BS_CODE: the authors' kernels (quantize_cuda_kernel / special_quantize),
 *   in their float32 arithmetic:
 *     mn  = (float)min(min ∇Y − 1e-8, 0),  mx = (float)max(max ∇Y + 1e-8, 0)   (guards in double)
 *     sc  = 196 / (2·max(|mn|, |mx|))        (float32; = 98/M')
 *     v   = ∇Y · sc                          (float32)
 *     hi  = clamp(RTN(v / 14), −6, 6)        (v/14 in float32)
 *     lo  = clamp(floor(v − 14·hi + u), −6, 6)
 *     s↓  = 1 / sc                            (float32)
 *   Biased: |∇Y| > (90/98)·max is clipped, residuals in (6, 7] lose up to one
 *   fine step; an all-zero ∇Y gives zeros without NaN (sc = 9.8e9).
 *   (The kernel's round(r + u' − 0.5) with u' ∈ (0, 1] and ties away has the
 *   same distribution as floor(r + u).)
 *
 * RTN tie rule for hi: `rounding` (LB_ROUND_HALF_EVEN default; the authors'
 * CUDA kernel uses LB_ROUND_HALF_AWAY, their Python fallback half-even).
 *
 * Randomness: u_i = uniforms[i] when the caller passes an array (each in
 * [0, 1)), otherwise lb_rng_uniform_f32(seed, stream, i) with i the flat
 * row-major index of the element. The layer uses stream
 * lb_rng_stream("xi.bs", layer·2^32 + step) (lowbit/ref/qlinear_hq.h).
 *
 * Non-finite ∇Y: LB_ERR_NUMERIC (the authors' code would produce NaN scales).
 */
#ifndef LOWBIT_REF_BIT_SPLIT_H
#define LOWBIT_REF_BIT_SPLIT_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/ref/rounding.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_bs_mode {
    LB_BS_CLEAN = 0, /* unbiased, nibbles in [-7, 7] (default) */
    LB_BS_CODE = 1   /* the authors' kernels: nibbles in [-6, 6], ±1e-8 guards */
} lb_bs_mode;

/* Fine steps per coarse step (B = 2^4 − 2 in the authors' code). */
#define LB_BS_RATIO 14

/* "clean" / "code"; NULL for an unknown mode. */
const char *lb_bs_mode_name(lb_bs_mode mode);

/* Bit-splits g (n) into hi (n), lo (n) and *fine_scale = s↓, as documented
 * above. uniforms (n) may be NULL (then the counter RNG at (seed, stream, i)). */
lb_status lb_bit_split_ref(lb_ctx *ctx, lb_bs_mode mode, lb_rounding rounding, int64_t n,
                           const float *g, const float *uniforms, uint64_t seed, uint64_t stream,
                           int8_t *hi, int8_t *lo, float *fine_scale);

/* out (n) = fine_scale · (float)(14·hi + lo): the dequantized estimate of ∇Y. */
lb_status lb_bit_split_dequantize_ref(lb_ctx *ctx, int64_t n, const int8_t *hi, const int8_t *lo,
                                      float fine_scale, float *out);

#ifdef __cplusplus
}
#endif
#endif
