/* ref/bit_split.c — bit splitting (BS): the output gradient ∇Y as a coarse
 * int4 part plus an int4 stochastically rounded residual, ∇Y ≈ s↑·hi + s↓·lo,
 * s↓ = s↑/14 (an int8 value 14·hi + lo in two nibbles).
 *
 * Spec: int4_training.md §2 A.4 (paper Eq. 5 and what the authors' kernels
 * compute), §4.3 (properties), §7 items 1, 2, 6. Xi et al. 2023 §4.1.
 * Two named modes: LB_BS_CLEAN (default; exactly stochastic rounding onto
 * s↓·Z ∩ [−98, 98], unbiased) and LB_BS_CODE (the released kernels: ±6 clamps,
 * ±1e-8 guards, biased at the top end); see lowbit/ref/bit_split.h.
 *
 * Leaves out: leverage score sampling of the rows (ref/leverage_sampling.c),
 * nibble packing (a cpu/ concern), the authors' per-row min/max kernel that
 * ignores row tails that are not a multiple of 32 (a bug, not reproduced).
 *
 * Shapes: g, hi, lo, uniforms, out are flat arrays of n elements (the N×C
 * gradient in row-major order; the scale is per tensor).
 */
#include "config.h"
#include "lowbit/ref/bit_split.h"
#include "lowbit/rng.h"

#include <math.h>

const char *lb_bs_mode_name(lb_bs_mode mode)
{
    switch (mode) {
    case LB_BS_CLEAN: return "clean";
    case LB_BS_CODE: return "code";
    }
    return NULL;
}

static double rtn_double(lb_rounding rounding, double v)
{
    return rounding == LB_ROUND_HALF_AWAY ? round(v) : nearbyint(v);
}

static float uniform_at(const float *uniforms, uint64_t seed, uint64_t stream, int64_t i)
{
    return uniforms ? uniforms[i] : lb_rng_uniform_f32(seed, stream, (uint64_t)i);
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

lb_status lb_bit_split_ref(lb_ctx *ctx, lb_bs_mode mode, lb_rounding rounding, int64_t n,
                           const float *g, const float *uniforms, uint64_t seed, uint64_t stream,
                           int8_t *hi, int8_t *lo, float *fine_scale)
{
    if (!lb_bs_mode_name(mode)) return lb_error(ctx, LB_ERR_ARG, "bit split: unknown mode %d", (int)mode);
    if (rounding != LB_ROUND_HALF_EVEN && rounding != LB_ROUND_HALF_AWAY)
        return lb_error(ctx, LB_ERR_ARG, "bit split: rounding must be half-even or half-away");
    if (n < 0 || !fine_scale || (n > 0 && (!g || !hi || !lo)))
        return lb_error(ctx, LB_ERR_ARG, "bit split: bad arguments");
    float gmin = 0.0f, gmax = 0.0f, amax = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(g[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "bit split: g[%lld] = %g is not finite", (long long)i,
                            (double)g[i]);
        if (uniforms && !(uniforms[i] >= 0.0f && uniforms[i] < 1.0f))
            return lb_error(ctx, LB_ERR_ARG, "bit split: uniforms[%lld] = %g is not in [0, 1)",
                            (long long)i, (double)uniforms[i]);
        float a = fabsf(g[i]);
        if (i == 0 || g[i] < gmin) gmin = g[i];
        if (i == 0 || g[i] > gmax) gmax = g[i];
        if (a > amax) amax = a;
    }

    if (mode == LB_BS_CLEAN) {
        if (amax == 0.0f) {
            for (int64_t i = 0; i < n; i++) hi[i] = lo[i] = 0;
            *fine_scale = 0.0f;
            return LB_OK;
        }
        const double m = (double)amax;
        for (int64_t i = 0; i < n; i++) {
            float v = (float)((double)g[i] * 98.0 / m);              /* in [-98, 98] */
            float h = (float)rtn_double(rounding, (double)v / 14.0); /* in [-7, 7] */
            float r = v - 14.0f * h;                                 /* exact, |r| <= 7 */
            float l = clampf(lb_round_stochastic(r, uniform_at(uniforms, seed, stream, i)), -7.0f, 7.0f);
            hi[i] = (int8_t)h;
            lo[i] = (int8_t)l;
        }
        *fine_scale = amax / 98.0f;
        return LB_OK;
    }

    /* LB_BS_CODE: the authors' float32 arithmetic. With n == 0 the guards give
     * M' = 1e-8 as for an all-zero tensor. */
    float mn = (float)fmin((double)gmin - 1e-8, 0.0);
    float mx = (float)fmax((double)gmax + 1e-8, 0.0);
    float m = fmaxf(fabsf(mn), fabsf(mx));
    float sc = 196.0f / (2.0f * m);
    for (int64_t i = 0; i < n; i++) {
        float v = g[i] * sc;
        float h = clampf(lb_round(rounding, v / 14.0f, 0.0f), -6.0f, 6.0f);
        float r = v - 14.0f * h; /* exact */
        float l = clampf(lb_round_stochastic(r, uniform_at(uniforms, seed, stream, i)), -6.0f, 6.0f);
        hi[i] = (int8_t)h;
        lo[i] = (int8_t)l;
    }
    *fine_scale = 1.0f / sc;
    return LB_OK;
}

lb_status lb_bit_split_dequantize_ref(lb_ctx *ctx, int64_t n, const int8_t *hi, const int8_t *lo,
                                      float fine_scale, float *out)
{
    if (n < 0 || (n > 0 && (!hi || !lo || !out)))
        return lb_error(ctx, LB_ERR_ARG, "bit split dequantize: bad arguments");
    for (int64_t i = 0; i < n; i++)
        out[i] = fine_scale * (float)(LB_BS_RATIO * (int)hi[i] + (int)lo[i]);
    return LB_OK;
}
