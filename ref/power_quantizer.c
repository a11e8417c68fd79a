/* ref/power_quantizer.c — the power (PowerQuant / NUPES) quantizer
 * w -> sign(w)|w|^a followed by uniform symmetric quantization, its inverse,
 * and the int8 codebook used for integer-only inference.
 *
 * Spec: shared/specs/nupes.md §1 (quantizer) and §4 (integer-only inference,
 * codebook r_k = round(R g_k)); outlier_free_attention_and_w8a8.md §5.2-5.4
 * (mode A: weight-only codebook lookup, then a normal int8 GEMM). Papers:
 * Yvinec et al., PowerQuant (ICLR 2023) and NUPES (arXiv 2308.05600); neither
 * has public code, so this is lowbit's reading (nupes.md). Exact formulas in
 * include/lowbit/ref/power_quantizer.h.
 *
 * Leaves out: power-quantized activations (activations stay uniform int8),
 * the product-LUT (mode B) and "modified activation" (mode C) inference.
 * Shapes: w (outer, groups, inner) flattened (lb_qgroups), one M per group.
 */
#include "config.h"
#include "lowbit/ref/power_quantizer.h"

#include <math.h>
#include <stdlib.h>

static lb_status check_power_args(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups, const char *what)
{
    if (bits < 2 || bits > 8) return lb_error(ctx, LB_ERR_ARG, "%s: bits %d outside 2..8", what, bits);
    if (!(a >= LB_POWER_A_MIN && a <= LB_POWER_A_MAX))
        return lb_error(ctx, LB_ERR_ARG, "%s: exponent a = %g outside [%g, %g]", what, a, LB_POWER_A_MIN,
                        LB_POWER_A_MAX);
    if (!groups || groups->outer < 0 || groups->groups < 0 || groups->inner < 0)
        return lb_error(ctx, LB_ERR_ARG, "%s: bad group structure", what);
    return LB_OK;
}

float lb_power_delta(float gmax, int bits)
{
    /* Exactly lb_uniform_qparams_ref for a symmetric config with range
     * (-gmax, gmax): M = max(gmax, 1e-8), Δ = max(M / N, 1e-8) in float32. */
    const float n = (float)((1 << (bits - 1)) - 1);
    float m = gmax > LB_UNIFORM_EPS ? gmax : LB_UNIFORM_EPS;
    float d = m / n;
    return d > LB_UNIFORM_EPS ? d : LB_UNIFORM_EPS;
}

float lb_power_transform(float w_abs, float gmax, double a)
{
    if (a == 1.0) return w_abs;
    /* Normalised form: |w|/M <= 1, so no overflow for any a > 0. */
    double u = (double)w_abs / (double)gmax;
    return (float)((double)gmax * pow(u, a));
}

float lb_power_level(int32_t k, float gmax, float delta, double a)
{
    if (k <= 0 || !(gmax > 0.0f)) return 0.0f;
    float yhat = delta * (float)k;
    if (a == 1.0) return yhat;
    double v = (double)yhat / (double)gmax;
    if (v > 1.0) v = 1.0; /* ±N maps back to exactly ±M */
    return (float)((double)gmax * pow(v, 1.0 / a));
}

lb_status lb_power_quantize_ref(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups,
                                const float *w, // (outer, groups, inner)
                                float *gmax,    // (groups,) out
                                int8_t *codes,  // (outer, groups, inner) out
                                float *what)    // (outer, groups, inner) out, may be NULL
{
    lb_status st = check_power_args(ctx, bits, a, groups, "power quantize");
    if (st != LB_OK) return st;
    const int64_t n = groups->outer * groups->inner;
    if (groups->groups > 0 && (!gmax || (n > 0 && (!w || !codes))))
        return lb_error(ctx, LB_ERR_ARG, "power quantize: NULL argument");
    const float nmax = (float)((1 << (bits - 1)) - 1);
    for (int64_t g = 0; g < groups->groups; g++) {
        /* M = max |w| over the group (exact in float32). */
        float m = 0.0f;
        for (int64_t o = 0; o < groups->outer; o++) {
            const float *row = w + (o * groups->groups + g) * groups->inner;
            for (int64_t i = 0; i < groups->inner; i++) {
                if (!isfinite(row[i]))
                    return lb_error(ctx, LB_ERR_NUMERIC, "power quantize: non-finite weight at index %lld",
                                    (long long)((o * groups->groups + g) * groups->inner + i));
                float v = fabsf(row[i]);
                if (v > m) m = v;
            }
        }
        gmax[g] = m;
        const float delta = lb_power_delta(m, bits);
        for (int64_t o = 0; o < groups->outer; o++) {
            const int64_t base = (o * groups->groups + g) * groups->inner;
            for (int64_t i = 0; i < groups->inner; i++) {
                const float x = w[base + i];
                int32_t q = 0;
                if (m > 0.0f && x != 0.0f) {
                    float y = lb_power_transform(fabsf(x), m, a);
                    float r = lb_round_half_even(y / delta);
                    if (r > nmax) r = nmax;
                    q = x < 0.0f ? -(int32_t)r : (int32_t)r;
                }
                codes[base + i] = (int8_t)q;
                if (what) {
                    float l = lb_power_level(q < 0 ? -q : q, m, delta, a);
                    what[base + i] = q < 0 ? -l : l;
                }
            }
        }
    }
    return LB_OK;
}

lb_status lb_power_dequantize_ref(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups,
                                  const int8_t *codes, const float *gmax, float *what)
{
    lb_status st = check_power_args(ctx, bits, a, groups, "power dequantize");
    if (st != LB_OK) return st;
    const int64_t n = groups->outer * groups->inner;
    if (groups->groups > 0 && (!gmax || (n > 0 && (!codes || !what))))
        return lb_error(ctx, LB_ERR_ARG, "power dequantize: NULL argument");
    const int32_t nmax = (1 << (bits - 1)) - 1;
    for (int64_t g = 0; g < groups->groups; g++) {
        if (!(gmax[g] >= 0.0f) || !isfinite(gmax[g]))
            return lb_error(ctx, LB_ERR_ARG, "power dequantize: group max %g of group %lld is not finite and >= 0",
                            (double)gmax[g], (long long)g);
        const float delta = lb_power_delta(gmax[g], bits);
        for (int64_t o = 0; o < groups->outer; o++) {
            const int64_t base = (o * groups->groups + g) * groups->inner;
            for (int64_t i = 0; i < groups->inner; i++) {
                int32_t q = codes[base + i];
                if (q < -nmax || q > nmax)
                    return lb_error(ctx, LB_ERR_ARG, "power dequantize: code %d at index %lld outside [-%d, %d]",
                                    (int)q, (long long)(base + i), (int)nmax, (int)nmax);
                float l = lb_power_level(q < 0 ? -q : q, gmax[g], delta, a);
                what[base + i] = q < 0 ? -l : l;
            }
        }
    }
    return LB_OK;
}

lb_status lb_power_codebook_ref(lb_ctx *ctx, int bits, double a, int R_request, int8_t *r, int *R_used,
                                int *exact)
{
    lb_qgroups none = {0, 0, 0};
    lb_status st = check_power_args(ctx, bits, a, &none, "power codebook");
    if (st != LB_OK) return st;
    if (!r) return lb_error(ctx, LB_ERR_ARG, "power codebook: NULL r");
    if (R_request < 0 || R_request > 127)
        return lb_error(ctx, LB_ERR_ARG, "power codebook: R = %d outside 1..127 (0 = auto)", R_request);
    const int nmax = (1 << (bits - 1)) - 1;
    double g[128];
    for (int k = 0; k <= nmax; k++) g[k] = k == 0 ? 0.0 : pow((double)k / (double)nmax, 1.0 / a);
    g[nmax] = 1.0;
    int R = R_request, is_exact = 0;
    for (int cand = 1; R_request == 0 && cand <= 127; cand++) {
        int ok = 1;
        for (int k = 0; k <= nmax && ok; k++) {
            double v = (double)cand * g[k];
            if (fabs(v - nearbyint(v)) > 1e-9 * (double)cand) ok = 0;
        }
        if (ok) {
            R = cand;
            break;
        }
    }
    if (R == 0) R = 127;
    is_exact = 1;
    for (int k = 0; k <= nmax; k++) {
        double v = (double)R * g[k];
        double rv = nearbyint(v);
        if (fabs(v - rv) > 1e-9 * (double)R) is_exact = 0;
        r[k] = (int8_t)rv;
    }
    if (R_used) *R_used = R;
    if (exact) *exact = is_exact;
    return LB_OK;
}

lb_status lb_power_codebook_lookup_ref(lb_ctx *ctx, int bits, const int8_t *r, int64_t n, const int8_t *codes,
                                       int8_t *out)
{
    if (bits < 2 || bits > 8) return lb_error(ctx, LB_ERR_ARG, "power codebook lookup: bits %d outside 2..8", bits);
    if (n < 0 || (n > 0 && (!r || !codes || !out)))
        return lb_error(ctx, LB_ERR_ARG, "power codebook lookup: bad argument");
    const int32_t nmax = (1 << (bits - 1)) - 1;
    for (int64_t i = 0; i < n; i++) {
        int32_t q = codes[i];
        if (q < -nmax || q > nmax)
            return lb_error(ctx, LB_ERR_ARG, "power codebook lookup: code %d at index %lld outside [-%d, %d]",
                            (int)q, (long long)i, (int)nmax, (int)nmax);
        out[i] = (int8_t)(q < 0 ? -(int32_t)r[-q] : (int32_t)r[q]);
    }
    return LB_OK;
}

lb_status lb_power_codebook_scales_ref(lb_ctx *ctx, int R, int64_t n_groups, const float *gmax, float *scale)
{
    if (R < 1 || R > 127) return lb_error(ctx, LB_ERR_ARG, "power codebook scales: R = %d outside 1..127", R);
    if (n_groups < 0 || (n_groups > 0 && (!gmax || !scale)))
        return lb_error(ctx, LB_ERR_ARG, "power codebook scales: bad argument");
    for (int64_t g = 0; g < n_groups; g++) {
        if (!(gmax[g] >= 0.0f) || !isfinite(gmax[g]))
            return lb_error(ctx, LB_ERR_ARG, "power codebook scales: group max %g is not finite and >= 0",
                            (double)gmax[g]);
        scale[g] = gmax[g] / (float)R;
    }
    return LB_OK;
}

lb_status lb_power_codebook_dequantize_ref(lb_ctx *ctx, int bits, int R, const int8_t *r,
                                           const lb_qgroups *groups, const int8_t *codes, const float *gmax,
                                           float *what)
{
    if (!groups || groups->outer < 0 || groups->groups < 0 || groups->inner < 0)
        return lb_error(ctx, LB_ERR_ARG, "power codebook dequantize: bad group structure");
    if (bits < 2 || bits > 8)
        return lb_error(ctx, LB_ERR_ARG, "power codebook dequantize: bits %d outside 2..8", bits);
    const int64_t n = groups->outer * groups->inner;
    if (groups->groups > 0 && (!gmax || !r || (n > 0 && (!codes || !what))))
        return lb_error(ctx, LB_ERR_ARG, "power codebook dequantize: NULL argument");
    const int32_t nmax = (1 << (bits - 1)) - 1;
    for (int64_t g = 0; g < groups->groups; g++) {
        float s;
        lb_status st = lb_power_codebook_scales_ref(ctx, R, 1, &gmax[g], &s);
        if (st != LB_OK) return st;
        for (int64_t o = 0; o < groups->outer; o++) {
            const int64_t base = (o * groups->groups + g) * groups->inner;
            for (int64_t i = 0; i < groups->inner; i++) {
                int32_t q = codes[base + i];
                if (q < -nmax || q > nmax)
                    return lb_error(ctx, LB_ERR_ARG, "power codebook dequantize: code %d outside [-%d, %d]",
                                    (int)q, (int)nmax, (int)nmax);
                int32_t rv = q < 0 ? -(int32_t)r[-q] : (int32_t)r[q];
                what[base + i] = s * (float)rv;
            }
        }
    }
    return LB_OK;
}
