/* ref/uniform_quantizer.c — symmetric and asymmetric uniform quantizers with
 * per-tensor, per-channel and per-token scales; round-to-nearest (ties to
 * even by default) or stochastic rounding.
 *
 * Paper: Bondarenko, Nagel, Blankevoort, "Quantizable Transformers" (NeurIPS
 * 2023), eq. 1, as implemented in the authors' quantization library
 * (spec shared/specs/outlier_free_attention_and_w8a8.md §4.1): the range is
 * forced to contain 0, Δ and hi are floored at 1e-8, the zero point is an
 * integer, and x/Δ is a float32 division rounded with torch.round (half to
 * even). The exact formulas are in include/lowbit/ref/uniform_quantizer.h.
 *
 * Leaves out: learnable ranges / LSQ (see the LSQ helper's files), the
 * straight-through backward (identity inside the range), log-domain scales.
 * Shapes: any tensor viewed as (outer, groups, inner), one (Δ, z) per group.
 */
#include "config.h"
#include "lowbit/ref/uniform_quantizer.h"
#include "lowbit/rng.h"

#include <math.h>
#include <stddef.h>

const char *lb_granularity_name(lb_granularity g)
{
    switch (g) {
    case LB_GRAN_TENSOR: return "tensor";
    case LB_GRAN_CHANNEL: return "channel";
    case LB_GRAN_TOKEN: return "token";
    }
    return NULL;
}

lb_status lb_qgroups_make(lb_ctx *ctx, lb_granularity granularity, int ndim, const int64_t *shape,
                          int axis, lb_qgroups *out)
{
    if (!out || (ndim > 0 && !shape)) return lb_error(ctx, LB_ERR_ARG, "qgroups: NULL argument");
    if (ndim < 0 || ndim > 4) return lb_error(ctx, LB_ERR_ARG, "qgroups: ndim %d outside 0..4", ndim);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return lb_error(ctx, LB_ERR_ARG, "qgroups: negative dimension");
        numel *= shape[d];
    }
    out->outer = 1;
    out->groups = 1;
    out->inner = numel;
    if (ndim == 0) return LB_OK;
    switch (granularity) {
    case LB_GRAN_TENSOR: return LB_OK;
    case LB_GRAN_TOKEN: {
        int64_t D = shape[ndim - 1];
        out->inner = D;
        out->groups = D > 0 ? numel / D : 0;
        if (D == 0) {
            out->groups = 1;
            for (int d = 0; d < ndim - 1; d++) out->groups *= shape[d];
        }
        return LB_OK;
    }
    case LB_GRAN_CHANNEL: {
        int a = axis < 0 ? axis + ndim : axis;
        if (a < 0 || a >= ndim)
            return lb_error(ctx, LB_ERR_ARG, "qgroups: axis %d outside a %d-d tensor", axis, ndim);
        out->outer = 1;
        out->inner = 1;
        for (int d = 0; d < a; d++) out->outer *= shape[d];
        for (int d = a + 1; d < ndim; d++) out->inner *= shape[d];
        out->groups = shape[a];
        return LB_OK;
    }
    }
    return lb_error(ctx, LB_ERR_ARG, "qgroups: unknown granularity %d", (int)granularity);
}

lb_uniform_config lb_uniform_config_default(void)
{
    lb_uniform_config c;
    c.bits = 8;
    c.symmetric = 1;
    c.full_range = 0;
    c.rounding = LB_ROUND_HALF_EVEN;
    c.seed = 0;
    c.stream = lb_rng_stream("uniform-quant", 0);
    return c;
}

lb_status lb_uniform_code_range(lb_ctx *ctx, const lb_uniform_config *cfg, int32_t *qmin, int32_t *qmax)
{
    if (!cfg || !qmin || !qmax) return lb_error(ctx, LB_ERR_ARG, "uniform: NULL argument");
    if (cfg->bits < 2 || cfg->bits > 16)
        return lb_error(ctx, LB_ERR_ARG, "uniform: bits %d outside 2..16", cfg->bits);
    if (cfg->rounding != LB_ROUND_HALF_EVEN && cfg->rounding != LB_ROUND_HALF_AWAY &&
        cfg->rounding != LB_ROUND_STOCHASTIC)
        return lb_error(ctx, LB_ERR_ARG, "uniform: unknown rounding mode %d", (int)cfg->rounding);
    if (cfg->symmetric) {
        int32_t n = (int32_t)((1 << (cfg->bits - 1)) - 1);
        *qmax = n;
        *qmin = cfg->full_range ? -n - 1 : -n;
    } else {
        *qmin = 0;
        *qmax = (int32_t)((1 << cfg->bits) - 1);
    }
    return LB_OK;
}

lb_status lb_uniform_qparams_ref(lb_ctx *ctx, const lb_uniform_config *cfg, int64_t n_groups,
                                 const float *lo, const float *hi, float *scale, int32_t *zero_point)
{
    int32_t qmin, qmax;
    lb_status st = lb_uniform_code_range(ctx, cfg, &qmin, &qmax);
    if (st != LB_OK) return st;
    if (n_groups < 0 || (n_groups > 0 && (!lo || !hi || !scale)) ||
        (n_groups > 0 && !cfg->symmetric && !zero_point))
        return lb_error(ctx, LB_ERR_ARG, "uniform qparams: NULL argument or negative group count");
    for (int64_t g = 0; g < n_groups; g++) {
        if (!isfinite(lo[g]) || !isfinite(hi[g]))
            return lb_error(ctx, LB_ERR_NUMERIC, "uniform qparams: non-finite range of group %lld",
                            (long long)g);
        if (lo[g] > hi[g])
            return lb_error(ctx, LB_ERR_ARG, "uniform qparams: lo %g > hi %g in group %lld", (double)lo[g],
                            (double)hi[g], (long long)g);
        /* The range always contains 0 and hi is at least eps (authors' code). */
        float l = lo[g] < 0.0f ? lo[g] : 0.0f;
        float h = hi[g] > LB_UNIFORM_EPS ? hi[g] : LB_UNIFORM_EPS;
        if (cfg->symmetric) {
            float m = -l > h ? -l : h;
            float d = m / (float)qmax; /* qmax = N */
            scale[g] = d > LB_UNIFORM_EPS ? d : LB_UNIFORM_EPS;
            if (zero_point) zero_point[g] = 0;
        } else {
            float width = h - l;
            float dr = isfinite(width) ? width / (float)qmax
                                       : (float)(((double)h - (double)l) / (double)qmax);
            /* zero_float = -lo/Δ with the unfloored Δ, as in the authors' code. */
            float zf = nearbyintf(-l / dr);
            if (zf < 0.0f) zf = 0.0f;
            if (zf > (float)qmax) zf = (float)qmax;
            scale[g] = dr > LB_UNIFORM_EPS ? dr : LB_UNIFORM_EPS;
            zero_point[g] = (int32_t)zf;
        }
    }
    return LB_OK;
}

int32_t lb_uniform_code(float x, float scale, int32_t z, int32_t qmin, int32_t qmax, lb_rounding mode,
                        float u)
{
    float v = x / scale;
    float r;
    if (mode == LB_ROUND_STOCHASTIC) {
        /* Clamp first so that floor(v + u) is evaluated on in-range values
         * only (the result is the same as clamping afterwards, and v + u
         * stays exact enough); clamp again because v + u may round up to
         * qmax - z + 1 in float32. */
        float vlo = (float)(qmin - z), vhi = (float)(qmax - z);
        if (v < vlo) v = vlo;
        if (v > vhi) v = vhi;
        r = lb_round_stochastic(v, u);
    } else {
        r = lb_round(mode, v, 0.0f);
    }
    /* Integer add of z after rounding, then clamp (as torch: round(x/Δ) + z). */
    float q = r + (float)z;
    if (q < (float)qmin) q = (float)qmin;
    if (q > (float)qmax) q = (float)qmax;
    return (int32_t)q;
}

/* Checks shared by quantize / dequantize. */
static lb_status check_group_args(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                  const float *scale, const int32_t *zero_point, int32_t qmin,
                                  int32_t qmax, const char *what)
{
    if (!groups || groups->outer < 0 || groups->groups < 0 || groups->inner < 0)
        return lb_error(ctx, LB_ERR_ARG, "%s: bad group structure", what);
    if (groups->groups > 0 && !scale) return lb_error(ctx, LB_ERR_ARG, "%s: NULL scale", what);
    for (int64_t g = 0; g < groups->groups; g++) {
        if (!(scale[g] > 0.0f) || !isfinite(scale[g]))
            return lb_error(ctx, LB_ERR_ARG, "%s: scale %g of group %lld is not positive and finite", what,
                            (double)scale[g], (long long)g);
        if (zero_point && (zero_point[g] < qmin || zero_point[g] > qmax || (cfg->symmetric && zero_point[g])))
            return lb_error(ctx, LB_ERR_ARG, "%s: zero point %d of group %lld outside the code range", what,
                            (int)zero_point[g], (long long)g);
    }
    return LB_OK;
}

/* Shared loop of quantize and fake-quant: codes and/or xhat may be NULL. */
static lb_status quantize_loop(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                               const float *x,              // (outer, groups, inner)
                               const float *scale,          // (groups,)
                               const int32_t *zero_point,   // (groups,) or NULL
                               int32_t *codes, float *xhat, // (outer, groups, inner), either may be NULL
                               const char *what)
{
    int32_t qmin, qmax;
    lb_status st = lb_uniform_code_range(ctx, cfg, &qmin, &qmax);
    if (st != LB_OK) return st;
    st = check_group_args(ctx, cfg, groups, scale, zero_point, qmin, qmax, what);
    if (st != LB_OK) return st;
    if (lb_qgroups_numel(groups) > 0 && !x) return lb_error(ctx, LB_ERR_ARG, "%s: NULL x", what);
    for (int64_t o = 0; o < groups->outer; o++) {
        for (int64_t g = 0; g < groups->groups; g++) {
            const int64_t base = (o * groups->groups + g) * groups->inner;
            const float d = scale[g];
            const int32_t z = zero_point ? zero_point[g] : 0;
            for (int64_t i = 0; i < groups->inner; i++) {
                const int64_t idx = base + i; /* flat row-major index = RNG index */
                const float xv = x[idx];
                if (!isfinite(xv))
                    return lb_error(ctx, LB_ERR_NUMERIC, "%s: non-finite input at index %lld", what,
                                    (long long)idx);
                float u = 0.0f;
                if (cfg->rounding == LB_ROUND_STOCHASTIC)
                    u = lb_rng_uniform_f32(cfg->seed, cfg->stream, (uint64_t)idx);
                int32_t q = lb_uniform_code(xv, d, z, qmin, qmax, cfg->rounding, u);
                if (codes) codes[idx] = q;
                if (xhat) xhat[idx] = d * (float)(q - z);
            }
        }
    }
    return LB_OK;
}

lb_status lb_uniform_quantize_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                  const float *x, const float *scale, const int32_t *zero_point,
                                  int32_t *codes)
{
    if (!codes && groups && lb_qgroups_numel(groups) > 0)
        return lb_error(ctx, LB_ERR_ARG, "uniform quantize: NULL codes");
    return quantize_loop(ctx, cfg, groups, x, scale, zero_point, codes, NULL, "uniform quantize");
}

lb_status lb_uniform_fake_quant_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                    const float *x, const float *scale, const int32_t *zero_point,
                                    float *xhat)
{
    if (!xhat && groups && lb_qgroups_numel(groups) > 0)
        return lb_error(ctx, LB_ERR_ARG, "uniform fake-quant: NULL xhat");
    return quantize_loop(ctx, cfg, groups, x, scale, zero_point, NULL, xhat, "uniform fake-quant");
}

lb_status lb_uniform_dequantize_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                    const int32_t *codes, const float *scale, const int32_t *zero_point,
                                    float *xhat)
{
    int32_t qmin, qmax;
    lb_status st = lb_uniform_code_range(ctx, cfg, &qmin, &qmax);
    if (st != LB_OK) return st;
    st = check_group_args(ctx, cfg, groups, scale, zero_point, qmin, qmax, "uniform dequantize");
    if (st != LB_OK) return st;
    if (lb_qgroups_numel(groups) > 0 && (!codes || !xhat))
        return lb_error(ctx, LB_ERR_ARG, "uniform dequantize: NULL argument");
    for (int64_t o = 0; o < groups->outer; o++) {
        for (int64_t g = 0; g < groups->groups; g++) {
            const int64_t base = (o * groups->groups + g) * groups->inner;
            const int32_t z = zero_point ? zero_point[g] : 0;
            for (int64_t i = 0; i < groups->inner; i++) {
                const int32_t q = codes[base + i];
                if (q < qmin || q > qmax)
                    return lb_error(ctx, LB_ERR_ARG, "uniform dequantize: code %d at index %lld outside [%d, %d]",
                                    (int)q, (long long)(base + i), (int)qmin, (int)qmax);
                xhat[base + i] = scale[g] * (float)(q - z);
            }
        }
    }
    return LB_OK;
}
