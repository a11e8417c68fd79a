/* ref/weight_rtn.c — round-to-nearest (RTN) weight quantization of a linear
 * layer W (C_out, C_in): per-tensor, per-output-channel or per-group (g input
 * columns) scales, uniform (symmetric / asymmetric, min-max or MSE range) or
 * power (NUPES) grid; de-quantization with a group index; the layer's output
 * reconstruction error ||XW^T - XŴ^T||².
 *
 * RTN is the baseline that GPTQ (Frantar et al., ICLR 2023, §3 "the
 * round-to-nearest baseline") improves on. The element rules are those of
 * ref/uniform_quantizer.c (spec outlier_free_attention_and_w8a8.md §4.1) and
 * ref/power_quantizer.c (nupes.md §1); this file only forms the groups and
 * calls them. Formulas and layouts: include/lowbit/ref/weight_quant.h.
 *
 * Leaves out: stochastic rounding (weights use ties to even), the authors'
 * GPTQ quantizer grid (zero point 2^(b-1) for symmetric, see gptq.h), packing
 * of codes into nibbles (the integer kernels' business).
 * Shapes: W (C_out, C_in) row-major; scales (C_out or 1, G).
 */
#include "config.h"
#include "lowbit/ref/weight_quant.h"
#include "lowbit/ref/uniform_quantizer.h"
#include "lowbit/ref/power_quantizer.h"
#include "lowbit/alloc.h"

#include <math.h>
#include <string.h>

const char *lb_wq_granularity_name(lb_wq_granularity g)
{
    switch (g) {
    case LB_WQ_TENSOR: return "tensor";
    case LB_WQ_CHANNEL: return "channel";
    case LB_WQ_GROUP: return "group";
    }
    return NULL;
}

const char *lb_wq_grid_name(lb_wq_grid g)
{
    switch (g) {
    case LB_WQ_GRID_UNIFORM: return "uniform";
    case LB_WQ_GRID_POWER: return "power";
    }
    return NULL;
}

lb_weight_quant_config lb_weight_quant_config_default(void)
{
    lb_weight_quant_config c;
    c.bits = 4;
    c.symmetric = 1;
    c.granularity = LB_WQ_CHANNEL;
    c.group_size = 128;
    c.range = lb_range_options_default();
    c.range.mse_margin = 0.0;
    c.grid = LB_WQ_GRID_UNIFORM;
    c.power_a = 1.0;
    return c;
}

lb_status lb_weight_quant_check(lb_ctx *ctx, const lb_weight_quant_config *cfg)
{
    if (!cfg) return lb_error(ctx, LB_ERR_ARG, "weight quant: NULL config");
    if (cfg->bits < 2 || cfg->bits > 8)
        return lb_error(ctx, LB_ERR_ARG, "weight quant: bits %d outside 2..8", cfg->bits);
    if (!lb_wq_granularity_name(cfg->granularity))
        return lb_error(ctx, LB_ERR_ARG, "weight quant: unknown granularity %d", (int)cfg->granularity);
    if (cfg->granularity == LB_WQ_GROUP && cfg->group_size < 1)
        return lb_error(ctx, LB_ERR_ARG, "weight quant: group size %lld < 1", (long long)cfg->group_size);
    if (!lb_wq_grid_name(cfg->grid))
        return lb_error(ctx, LB_ERR_ARG, "weight quant: unknown grid %d", (int)cfg->grid);
    if (cfg->grid == LB_WQ_GRID_POWER) {
        if (!(cfg->power_a >= LB_POWER_A_MIN && cfg->power_a <= LB_POWER_A_MAX))
            return lb_error(ctx, LB_ERR_ARG, "weight quant: exponent a = %g outside [%g, %g]", cfg->power_a,
                            LB_POWER_A_MIN, LB_POWER_A_MAX);
        if (!cfg->symmetric)
            return lb_error(ctx, LB_ERR_UNSUPPORTED, "weight quant: the power grid is symmetric only");
        if (cfg->range.method != LB_RANGE_MINMAX)
            return lb_error(ctx, LB_ERR_UNSUPPORTED,
                            "weight quant: the power grid takes M = max |w| (range=minmax), not %s",
                            lb_range_method_name(cfg->range.method) ? lb_range_method_name(cfg->range.method)
                                                                    : "?");
    } else if (!lb_range_method_name(cfg->range.method)) {
        return lb_error(ctx, LB_ERR_ARG, "weight quant: unknown range method %d", (int)cfg->range.method);
    }
    return LB_OK;
}

lb_status lb_weight_scale_shape(lb_ctx *ctx, const lb_weight_quant_config *cfg, int64_t C_out, int64_t C_in,
                                int64_t *rows, int64_t *cols)
{
    lb_status st = lb_weight_quant_check(ctx, cfg);
    if (st != LB_OK) return st;
    if (C_out < 0 || C_in < 0 || !rows || !cols)
        return lb_error(ctx, LB_ERR_ARG, "weight quant: bad shape (%lld, %lld)", (long long)C_out, (long long)C_in);
    switch (cfg->granularity) {
    case LB_WQ_TENSOR: *rows = 1; *cols = 1; break;
    case LB_WQ_CHANNEL: *rows = C_out; *cols = 1; break;
    case LB_WQ_GROUP:
        *rows = C_out;
        *cols = (C_in + cfg->group_size - 1) / cfg->group_size;
        break;
    }
    return LB_OK;
}

/* The uniform config behind a weight config: narrow symmetric or asymmetric,
 * ties to even. */
static lb_uniform_config uniform_of(const lb_weight_quant_config *cfg)
{
    lb_uniform_config u = lb_uniform_config_default();
    u.bits = cfg->bits;
    u.symmetric = cfg->symmetric;
    u.full_range = 0;
    u.rounding = LB_ROUND_HALF_EVEN;
    return u;
}

lb_status lb_weight_code_range(lb_ctx *ctx, const lb_weight_quant_config *cfg, int32_t *qmin, int32_t *qmax)
{
    lb_status st = lb_weight_quant_check(ctx, cfg);
    if (st != LB_OK) return st;
    lb_uniform_config u = uniform_of(cfg);
    return lb_uniform_code_range(ctx, &u, qmin, qmax);
}

lb_status lb_weight_qparams_ref(lb_ctx *ctx, const lb_weight_quant_config *cfg, int64_t rows, int64_t cols,
                                const float *x, // (rows, cols)
                                float *scale,   // (rows,) out
                                int32_t *zero)  // (rows,) out or NULL
{
    lb_status st = lb_weight_quant_check(ctx, cfg);
    if (st != LB_OK) return st;
    if (rows < 0 || cols < 0 || (rows > 0 && !scale) || (rows > 0 && cols > 0 && !x))
        return lb_error(ctx, LB_ERR_ARG, "weight qparams: bad argument");
    if (rows > 0 && !zero && !cfg->symmetric)
        return lb_error(ctx, LB_ERR_ARG, "weight qparams: an asymmetric config needs zero points");
    if (rows == 0) return LB_OK;
    const lb_qgroups gr = {1, rows, cols}; /* one group per row */
    if (cfg->grid == LB_WQ_GRID_POWER) {
        /* M = max |x| of each row, exactly what lb_power_quantize_ref computes. */
        for (int64_t r = 0; r < rows; r++) {
            float m = 0.0f;
            for (int64_t c = 0; c < cols; c++) {
                float v = x[r * cols + c];
                if (!isfinite(v))
                    return lb_error(ctx, LB_ERR_NUMERIC, "weight qparams: non-finite weight at (%lld, %lld)",
                                    (long long)r, (long long)c);
                v = fabsf(v);
                if (v > m) m = v;
            }
            scale[r] = m;
            if (zero) zero[r] = 0;
        }
        return LB_OK;
    }
    lb_uniform_config u = uniform_of(cfg);
    float *lo = lb_alloc(2 * (size_t)rows * sizeof(float));
    if (!lo) return lb_error(ctx, LB_ERR_NOMEM, "weight qparams: out of memory");
    float *hi = lo + rows;
    st = lb_range_estimate_ref(ctx, &cfg->range, &u, &gr, x, lo, hi);
    if (st == LB_OK) st = lb_uniform_qparams_ref(ctx, &u, rows, lo, hi, scale, zero);
    lb_free(lo);
    return st;
}

int32_t lb_weight_code(const lb_weight_quant_config *cfg, float x, float scale, int32_t zero, float *what)
{
    const int32_t n = (1 << (cfg->bits - 1)) - 1;
    if (cfg->grid == LB_WQ_GRID_POWER) {
        /* lb_power_quantize_ref's element rule with M = scale; |x| > M (GPTQ's
         * updated weights may leave the group's range) clamps to M, i.e. to ±N. */
        const float m = scale;
        int32_t q = 0;
        if (m > 0.0f && x != 0.0f) {
            const float delta = lb_power_delta(m, cfg->bits);
            float ax = fabsf(x);
            if (ax > m) ax = m;
            float r = lb_round_half_even(lb_power_transform(ax, m, cfg->power_a) / delta);
            if (r > (float)n) r = (float)n;
            q = x < 0.0f ? -(int32_t)r : (int32_t)r;
            if (what) {
                float l = lb_power_level(q < 0 ? -q : q, m, delta, cfg->power_a);
                *what = q < 0 ? -l : l;
            }
        } else if (what) {
            *what = 0.0f;
        }
        return q;
    }
    const int32_t qmin = cfg->symmetric ? -n : 0;
    const int32_t qmax = cfg->symmetric ? n : (1 << cfg->bits) - 1;
    int32_t q = lb_uniform_code(x, scale, zero, qmin, qmax, LB_ROUND_HALF_EVEN, 0.0f);
    if (what) *what = scale * (float)(q - zero); /* as lb_uniform_dequantize_ref */
    return q;
}

/* Copies columns [c0, c1) of W (C_out, C_in) into buf (C_out, c1 - c0). */
static void gather_columns(int64_t C_out, int64_t C_in, const float *W, int64_t c0, int64_t c1, float *buf)
{
    const int64_t len = c1 - c0;
    for (int64_t r = 0; r < C_out; r++) memcpy(buf + r * len, W + r * C_in + c0, (size_t)len * sizeof(float));
}

lb_status lb_weight_rtn_ref(lb_ctx *ctx, const lb_weight_quant_config *cfg, int64_t C_out, int64_t C_in,
                            const float *W,  // (C_out, C_in)
                            int32_t *codes,  // (C_out, C_in) out
                            float *scale,    // (rows, cols) out
                            int32_t *zero,   // (rows, cols) out or NULL
                            float *what)     // (C_out, C_in) out or NULL
{
    int64_t srows, scols;
    lb_status st = lb_weight_scale_shape(ctx, cfg, C_out, C_in, &srows, &scols);
    if (st != LB_OK) return st;
    const int64_t numel = C_out * C_in;
    if (numel > 0 && (!W || !codes || !scale))
        return lb_error(ctx, LB_ERR_ARG, "weight rtn: NULL argument");
    if (numel > 0 && !zero && !cfg->symmetric)
        return lb_error(ctx, LB_ERR_ARG, "weight rtn: an asymmetric config needs zero points");
    if (numel == 0) return LB_OK;
    for (int64_t i = 0; i < numel; i++)
        if (!isfinite(W[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "weight rtn: non-finite weight at (%lld, %lld)",
                            (long long)(i / C_in), (long long)(i % C_in));

    /* Column groups [c0, c1): one of width C_in, or ceil(C_in / g) of width g.
     * Per tensor is the single group of all C_out * C_in values. */
    const int64_t width = cfg->granularity == LB_WQ_GROUP ? cfg->group_size : C_in;
    const int64_t buf_cols = width < C_in ? width : C_in;
    float *buf = lb_alloc((size_t)(C_out * buf_cols) * sizeof(float));
    float *pscale = lb_alloc((size_t)C_out * sizeof(float));
    int32_t *pzero = lb_alloc((size_t)C_out * sizeof(int32_t));
    if (!buf || !pscale || !pzero) {
        st = lb_error(ctx, LB_ERR_NOMEM, "weight rtn: out of memory");
        goto done;
    }
    for (int64_t k = 0, c0 = 0; c0 < C_in; k++, c0 += width) {
        const int64_t c1 = c0 + width < C_in ? c0 + width : C_in, len = c1 - c0;
        gather_columns(C_out, C_in, W, c0, c1, buf);
        if (cfg->granularity == LB_WQ_TENSOR) {
            st = lb_weight_qparams_ref(ctx, cfg, 1, C_out * len, buf, pscale, pzero);
            for (int64_t r = 1; r < C_out && st == LB_OK; r++) {
                pscale[r] = pscale[0];
                pzero[r] = pzero[0];
            }
        } else {
            st = lb_weight_qparams_ref(ctx, cfg, C_out, len, buf, pscale, pzero);
        }
        if (st != LB_OK) goto done;
        for (int64_t r = 0; r < C_out; r++) {
            for (int64_t c = c0; c < c1; c++) {
                float wh;
                codes[r * C_in + c] = lb_weight_code(cfg, W[r * C_in + c], pscale[r], pzero[r], &wh);
                if (what) what[r * C_in + c] = wh;
            }
            if (cfg->granularity != LB_WQ_TENSOR || r == 0) {
                const int64_t s = cfg->granularity == LB_WQ_TENSOR ? 0 : r * scols + k;
                scale[s] = pscale[r];
                if (zero) zero[s] = pzero[r];
            }
        }
    }
done:
    lb_free(buf);
    lb_free(pscale);
    lb_free(pzero);
    return st;
}

lb_status lb_weight_dequantize_ref(lb_ctx *ctx, const lb_weight_quant_config *cfg, int64_t C_out, int64_t C_in,
                                   const int32_t *codes, // (C_out, C_in)
                                   const float *scale,   // (rows, cols)
                                   const int32_t *zero,  // (rows, cols) or NULL
                                   const int32_t *g_idx, // (C_in,) or NULL
                                   float *what)          // (C_out, C_in) out
{
    int64_t srows, scols;
    int32_t qmin, qmax;
    lb_status st = lb_weight_scale_shape(ctx, cfg, C_out, C_in, &srows, &scols);
    if (st != LB_OK) return st;
    if ((st = lb_weight_code_range(ctx, cfg, &qmin, &qmax)) != LB_OK) return st;
    if (C_out * C_in == 0) return LB_OK;
    if (!codes || !scale || !what) return lb_error(ctx, LB_ERR_ARG, "weight dequantize: NULL argument");
    for (int64_t i = 0; i < srows * scols; i++) {
        const int ok = cfg->grid == LB_WQ_GRID_POWER ? scale[i] >= 0.0f : scale[i] > 0.0f;
        if (!ok || !isfinite(scale[i]))
            return lb_error(ctx, LB_ERR_ARG, "weight dequantize: bad scale %g at %lld", (double)scale[i],
                            (long long)i);
        const int32_t z = zero ? zero[i] : 0;
        if (z < qmin || z > qmax || ((cfg->symmetric || cfg->grid == LB_WQ_GRID_POWER) && z != 0))
            return lb_error(ctx, LB_ERR_ARG, "weight dequantize: zero point %d at %lld outside the code range",
                            (int)z, (long long)i);
    }
    for (int64_t r = 0; r < C_out; r++) {
        for (int64_t c = 0; c < C_in; c++) {
            int64_t s = 0;
            if (cfg->granularity == LB_WQ_CHANNEL) {
                s = r;
            } else if (cfg->granularity == LB_WQ_GROUP) {
                int64_t k = g_idx ? g_idx[c] : c / cfg->group_size;
                if (k < 0 || k >= scols)
                    return lb_error(ctx, LB_ERR_ARG, "weight dequantize: g_idx[%lld] = %lld outside [0, %lld)",
                                    (long long)c, (long long)k, (long long)scols);
                s = r * scols + k;
            }
            const int32_t q = codes[r * C_in + c];
            if (q < qmin || q > qmax)
                return lb_error(ctx, LB_ERR_ARG, "weight dequantize: code %d at (%lld, %lld) outside [%d, %d]",
                                (int)q, (long long)r, (long long)c, (int)qmin, (int)qmax);
            if (cfg->grid == LB_WQ_GRID_POWER) {
                const float m = scale[s];
                const float l = lb_power_level(q < 0 ? -q : q, m, lb_power_delta(m, cfg->bits), cfg->power_a);
                what[r * C_in + c] = q < 0 ? -l : l;
            } else {
                what[r * C_in + c] = scale[s] * (float)(q - (zero ? zero[s] : 0));
            }
        }
    }
    return LB_OK;
}

lb_status lb_weight_recon_error_ref(lb_ctx *ctx, int64_t n, int64_t C_out, int64_t C_in,
                                    const float *X,    // (n, C_in)
                                    const float *W,    // (C_out, C_in)
                                    const float *What, // (C_out, C_in)
                                    double *err_sq, double *ref_sq)
{
    if (n < 0 || C_out < 0 || C_in < 0 || !err_sq || !ref_sq)
        return lb_error(ctx, LB_ERR_ARG, "weight recon error: bad argument");
    if ((n * C_in > 0 && !X) || (C_out * C_in > 0 && (!W || !What)))
        return lb_error(ctx, LB_ERR_ARG, "weight recon error: NULL argument");
    for (int64_t i = 0; i < n * C_in; i++)
        if (!isfinite(X[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "weight recon error: non-finite input at (%lld, %lld)",
                            (long long)(i / C_in), (long long)(i % C_in));
    for (int64_t i = 0; i < C_out * C_in; i++)
        if (!isfinite(W[i]) || !isfinite(What[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "weight recon error: non-finite weight at (%lld, %lld)",
                            (long long)(i / C_in), (long long)(i % C_in));
    double e2 = 0.0, y2 = 0.0;
    for (int64_t t = 0; t < n; t++) {
        const float *x = X + t * C_in;
        for (int64_t o = 0; o < C_out; o++) {
            const float *w = W + o * C_in, *wh = What + o * C_in;
            double e = 0.0, y = 0.0;
            for (int64_t k = 0; k < C_in; k++) {
                e += (double)x[k] * ((double)w[k] - (double)wh[k]);
                y += (double)x[k] * (double)w[k];
            }
            e2 += e * e;
            y2 += y * y;
        }
    }
    *err_sq = e2;
    *ref_sq = y2;
    return LB_OK;
}

double lb_weight_relative_error(double err_sq, double ref_sq)
{
    if (ref_sq > 0.0) return err_sq / ref_sq;
    return err_sq > 0.0 ? INFINITY : 0.0;
}
