/* ref/luq.c — LUQ: logarithmic unbiased quantization of neural gradients.
 *
 * Paper: Chmiel et al., "Accurate Neural Training with 4-bit Matrix
 * Multiplications at Standard Formats" (ICLR 2023; earlier title
 * "Logarithmic Unbiased Quantization"), §4: radix-2 format [sign, exponent,
 * mantissa] = [1, 3, 0]; underflow threshold α from the max (Eq. 11);
 * stochastic underflow T_α (Eq. 10); stochastic rounding between adjacent
 * powers of two (Eq. 12, implemented in the paper by the noise + 4/3 trick of
 * Eqs. 13-14); LUQ = Q_α(T_α(x)) is unbiased (Eqs. 15-16). Spec:
 * shared/specs/int4_training.md §B.3, §4.5, §4.7, §7.1.
 *
 * Choices (see lowbit/ref/luq.h and doc/algorithms/luq.md):
 *   - the number of magnitudes L is a parameter, α = max|x| / 2^(L−1);
 *     default L = 8 as in the authors' code (the paper's printed exponent is
 *     inconsistent with 3 exponent bits);
 *   - max|x|, never the code's max(x) (a bug: negative-dominated tensors get
 *     codes above the max level, all-negative tensors NaN);
 *   - SR as floor(v + u) evaluated exactly (comparison v >= 1 − u), the
 *     project-wide rule, which coincides draw for draw with the paper's
 *     noise-plus-round trick; the code's underflow test |x| < α·U has the same
 *     distribution but pairs uniforms with outcomes differently.
 *
 * Leaves out: the "in-hindsight" running max and a power-of-two α (§B.6);
 * FNT (a training-schedule matter, doc/algorithms/luq.md); SMP is ref/smp.c.
 *
 * Shapes: x is any tensor flattened row-major to (n); codes, values (n).
 */
#include "config.h"
#include "lowbit/ref/luq.h"
#include "lowbit/rng.h"

#include <assert.h>
#include <math.h>

lb_luq_params lb_luq_default_params(void)
{
    lb_luq_params p = {LB_LUQ_LEVELS_DEFAULT, LB_LUQ_UNDERFLOW_STOCHASTIC, LB_LUQ_ROUND_STOCHASTIC, 0, 0};
    return p;
}

uint64_t lb_luq_stream_underflow(uint64_t sample) { return lb_rng_stream("luq.underflow", sample); }

uint64_t lb_luq_stream_round(uint64_t sample) { return lb_rng_stream("luq.round", sample); }

const char *lb_luq_underflow_name(lb_luq_underflow mode)
{
    switch (mode) {
    case LB_LUQ_UNDERFLOW_STOCHASTIC: return "stochastic";
    case LB_LUQ_UNDERFLOW_NEAREST: return "nearest";
    case LB_LUQ_UNDERFLOW_FLUSH: return "flush";
    }
    return NULL;
}

const char *lb_luq_rounding_name(lb_luq_rounding mode)
{
    switch (mode) {
    case LB_LUQ_ROUND_STOCHASTIC: return "stochastic";
    case LB_LUQ_ROUND_NEAREST: return "nearest";
    }
    return NULL;
}

static lb_status check_params(lb_ctx *ctx, const lb_luq_params *p)
{
    if (!p) return lb_error(ctx, LB_ERR_ARG, "luq: NULL params");
    if (p->levels < 1 || p->levels > LB_LUQ_MAX_LEVELS)
        return lb_error(ctx, LB_ERR_ARG, "luq: levels must be in [1, %d], got %d", LB_LUQ_MAX_LEVELS,
                        p->levels);
    if (!lb_luq_underflow_name(p->underflow))
        return lb_error(ctx, LB_ERR_ARG, "luq: unknown underflow mode %d", (int)p->underflow);
    if (!lb_luq_rounding_name(p->rounding))
        return lb_error(ctx, LB_ERR_ARG, "luq: unknown rounding mode %d", (int)p->rounding);
    return LB_OK;
}

lb_status lb_luq_alpha_ref(lb_ctx *ctx, int levels, const float *x, size_t n, float *alpha,
                           float *max_abs)
{
    if (levels < 1 || levels > LB_LUQ_MAX_LEVELS)
        return lb_error(ctx, LB_ERR_ARG, "luq: levels must be in [1, %d], got %d", LB_LUQ_MAX_LEVELS,
                        levels);
    if (n > 0 && !x) return lb_error(ctx, LB_ERR_ARG, "luq: NULL input");
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "luq: non-finite input %g at index %zu", (double)x[i], i);
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    if (max_abs) *max_abs = m;
    if (alpha) *alpha = ldexpf(m, 1 - levels); /* exact unless subnormal */
    return LB_OK;
}

/* The magnitude code (0, or k + 1 for α·2^k) of a = |x| > 0 given m = max|x|.
 * u_under / u_round are read only in their stochastic modes. */
static int luq_magnitude_code(float a, float m, int levels, lb_luq_underflow underflow,
                              lb_luq_rounding rounding, float u_under, float u_round)
{
    const float v = (a / m) * ldexpf(1.0f, levels - 1); /* in (0, 2^(L-1)] */
    if (v < 1.0f) {
        int keep = 0;
        switch (underflow) {
        case LB_LUQ_UNDERFLOW_STOCHASTIC: keep = v >= 1.0f - u_under; break;
        case LB_LUQ_UNDERFLOW_NEAREST: keep = v >= 0.5f; break;
        case LB_LUQ_UNDERFLOW_FLUSH: keep = 0; break;
        }
        return keep ? 1 : 0;
    }
    int e;
    const float mant = frexpf(v, &e); /* v = mant·2^e, mant in [0.5, 1) */
    const int n = e - 1;
    const float f = mant * 2.0f - 1.0f; /* exact, in [0, 1) */
    int up = rounding == LB_LUQ_ROUND_STOCHASTIC ? f >= 1.0f - u_round : f >= 0.5f;
    assert(n + up <= levels - 1); /* v <= 2^(L-1), and f = 0 at the top level */
    return n + up + 1;
}

/* Shared body: uniforms from the arrays (uniform mode) or from the streams. */
static lb_status luq_quantize(lb_ctx *ctx, const lb_luq_params *p, const float *x, size_t n,
                              const float *u_under, const float *u_round, int use_rng, int8_t *codes,
                              float *values, float *alpha_out)
{
    lb_status st = check_params(ctx, p);
    if (st != LB_OK) return st;
    if (!use_rng) {
        if (p->underflow == LB_LUQ_UNDERFLOW_STOCHASTIC && n > 0 && !u_under)
            return lb_error(ctx, LB_ERR_ARG, "luq: stochastic underflow needs u_underflow");
        if (p->rounding == LB_LUQ_ROUND_STOCHASTIC && n > 0 && !u_round)
            return lb_error(ctx, LB_ERR_ARG, "luq: stochastic rounding needs u_round");
    }
    float m, alpha;
    st = lb_luq_alpha_ref(ctx, p->levels, x, n, &alpha, &m);
    if (st != LB_OK) return st;
    const uint64_t s_under = lb_luq_stream_underflow(p->sample);
    const uint64_t s_round = lb_luq_stream_round(p->sample);
    for (size_t i = 0; i < n; i++) {
        int mag = 0;
        const float a = fabsf(x[i]);
        if (a > 0.0f) {
            float uu = 0.0f, ur = 0.0f;
            if (p->underflow == LB_LUQ_UNDERFLOW_STOCHASTIC)
                uu = use_rng ? lb_rng_uniform_f32(p->seed, s_under, i) : u_under[i];
            if (p->rounding == LB_LUQ_ROUND_STOCHASTIC)
                ur = use_rng ? lb_rng_uniform_f32(p->seed, s_round, i) : u_round[i];
            mag = luq_magnitude_code(a, m, p->levels, p->underflow, p->rounding, uu, ur);
        }
        const int8_t code = (int8_t)(x[i] < 0.0f ? -mag : mag);
        if (codes) codes[i] = code;
        if (values) values[i] = alpha * (float)lb_luq_code_to_int(code); /* exact */
    }
    if (alpha_out) *alpha_out = alpha;
    return LB_OK;
}

lb_status lb_luq_quantize_uniforms_ref(lb_ctx *ctx, const lb_luq_params *params, const float *x,
                                       size_t n, const float *u_underflow, const float *u_round,
                                       int8_t *codes, float *values, float *alpha)
{
    return luq_quantize(ctx, params, x, n, u_underflow, u_round, 0, codes, values, alpha);
}

lb_status lb_luq_quantize_ref(lb_ctx *ctx, const lb_luq_params *params, const float *x, size_t n,
                              int8_t *codes, float *values, float *alpha)
{
    return luq_quantize(ctx, params, x, n, NULL, NULL, 1, codes, values, alpha);
}
