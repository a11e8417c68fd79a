/* ref/range_estimators.c — range estimators for the uniform quantizers:
 * current min-max, percentile (NumPy "linear"), running (EMA) min-max and the
 * MSE grid search (1-D for symmetric, the authors' 2-D grid for asymmetric).
 *
 * Paper: Bondarenko et al., "Quantizable Transformers" (NeurIPS 2023), §5 and
 * App. C as coded in the authors' quantization library (range_estimators.py);
 * spec shared/specs/outlier_free_attention_and_w8a8.md §4.2 (table), §4.4
 * (momentum 0.9), §9 items 9-10. Exact rules: include/lowbit/ref/range_estimators.h.
 *
 * Leaves out: the bounded scalar ("golden section") MSE optimiser of the
 * authors' code, loss accumulation over several batches in the MSE estimator
 * (call it on the concatenated calibration tensor instead; the authors fix the
 * search range on the first batch), and learnable ranges.
 * Shapes: x viewed as (outer, groups, inner) (lb_qgroups); one range per group.
 */
#include "config.h"
#include "lowbit/ref/range_estimators.h"
#include "lowbit/alloc.h"

#include <math.h>
#include <stdlib.h>

const char *lb_range_method_name(lb_range_method m)
{
    switch (m) {
    case LB_RANGE_MINMAX: return "minmax";
    case LB_RANGE_PERCENTILE: return "percentile";
    case LB_RANGE_MSE: return "mse";
    }
    return NULL;
}

lb_range_options lb_range_options_default(void)
{
    lb_range_options o;
    o.method = LB_RANGE_MINMAX;
    o.percentile = 99.99;
    o.mse_candidates = 100;
    o.mse_margin = 0.5;
    return o;
}

static lb_status check_groups(lb_ctx *ctx, const lb_qgroups *groups, const void *x, const float *lo,
                              const float *hi, const char *what)
{
    if (!groups || groups->outer < 0 || groups->groups < 0 || groups->inner < 0)
        return lb_error(ctx, LB_ERR_ARG, "%s: bad group structure", what);
    if (groups->groups > 0 && (!lo || !hi)) return lb_error(ctx, LB_ERR_ARG, "%s: NULL lo/hi", what);
    if (lb_qgroups_numel(groups) > 0 && !x) return lb_error(ctx, LB_ERR_ARG, "%s: NULL x", what);
    return LB_OK;
}

/* Element j (0 <= j < outer * inner) of group g. */
static inline int64_t group_index(const lb_qgroups *groups, int64_t g, int64_t j)
{
    int64_t o = j / groups->inner, i = j % groups->inner;
    return (o * groups->groups + g) * groups->inner + i;
}

/* Min and max of group g; LB_ERR_NUMERIC on NaN/Inf. */
static lb_status group_minmax(lb_ctx *ctx, const lb_qgroups *groups, const float *x, int64_t g, float *lo,
                              float *hi, const char *what)
{
    const int64_t n = groups->outer * groups->inner;
    float mn = 0.0f, mx = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        int64_t idx = group_index(groups, g, j);
        float v = x[idx];
        if (!isfinite(v))
            return lb_error(ctx, LB_ERR_NUMERIC, "%s: non-finite value at index %lld", what, (long long)idx);
        if (j == 0 || v < mn) mn = v;
        if (j == 0 || v > mx) mx = v;
    }
    *lo = mn;
    *hi = mx;
    return LB_OK;
}

lb_status lb_range_minmax_ref(lb_ctx *ctx, const lb_qgroups *groups, const float *x, float *lo, float *hi)
{
    lb_status st = check_groups(ctx, groups, x, lo, hi, "range minmax");
    if (st != LB_OK) return st;
    for (int64_t g = 0; g < groups->groups; g++) {
        st = group_minmax(ctx, groups, x, g, &lo[g], &hi[g], "range minmax");
        if (st != LB_OK) return st;
    }
    return LB_OK;
}

double lb_percentile_linear(const float *sorted, int64_t n, double p)
{
    if (n <= 0) return 0.0;
    double r = (double)(n - 1) * (p / 100.0);
    if (r >= (double)(n - 1)) return (double)sorted[n - 1];
    if (r < 0.0) return (double)sorted[0];
    double jf = floor(r);
    int64_t j = (int64_t)jf;
    double t = r - jf;
    /* NumPy subtracts in the array's dtype (float32) and interpolates in double. */
    double d = (double)(sorted[j + 1] - sorted[j]);
    double a = (double)sorted[j], b = (double)sorted[j + 1];
    return t < 0.5 ? a + d * t : b - d * (1.0 - t);
}

static int cmp_float(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a > b) - (a < b);
}

lb_status lb_range_percentile_ref(lb_ctx *ctx, const lb_qgroups *groups, const float *x, double p, float *lo,
                                  float *hi)
{
    lb_status st = check_groups(ctx, groups, x, lo, hi, "range percentile");
    if (st != LB_OK) return st;
    if (!(p >= 50.0 && p <= 100.0))
        return lb_error(ctx, LB_ERR_ARG, "range percentile: p = %g outside [50, 100]", p);
    const int64_t n = groups->outer * groups->inner;
    float *buf = NULL;
    if (n > 0) {
        size_t bytes;
        if (!lb_mul_size((size_t)n, sizeof(float), &bytes)) return lb_error(ctx, LB_ERR_NOMEM, "range percentile: size overflow");
        buf = lb_alloc(bytes);
        if (!buf) return lb_error(ctx, LB_ERR_NOMEM, "range percentile: out of memory");
    }
    for (int64_t g = 0; g < groups->groups; g++) {
        for (int64_t j = 0; j < n; j++) {
            int64_t idx = group_index(groups, g, j);
            buf[j] = x[idx];
            if (!isfinite(buf[j])) {
                lb_free(buf);
                return lb_error(ctx, LB_ERR_NUMERIC, "range percentile: non-finite value at index %lld",
                                (long long)idx);
            }
        }
        if (n > 0) qsort(buf, (size_t)n, sizeof(float), cmp_float);
        lo[g] = (float)lb_percentile_linear(buf, n, 100.0 - p);
        hi[g] = (float)lb_percentile_linear(buf, n, p);
    }
    lb_free(buf);
    return LB_OK;
}

lb_status lb_range_group_sse_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                                 const float *x, int64_t g, float lo, float hi, double *sse)
{
    if (!cfg || !groups || !sse || g < 0 || g >= groups->groups)
        return lb_error(ctx, LB_ERR_ARG, "range sse: bad argument");
    lb_uniform_config c = *cfg;
    if (c.rounding == LB_ROUND_STOCHASTIC) c.rounding = LB_ROUND_HALF_EVEN;
    int32_t qmin, qmax, z = 0;
    float scale;
    lb_status st = lb_uniform_code_range(ctx, &c, &qmin, &qmax);
    if (st != LB_OK) return st;
    st = lb_uniform_qparams_ref(ctx, &c, 1, &lo, &hi, &scale, &z);
    if (st != LB_OK) return st;
    const int64_t n = groups->outer * groups->inner;
    double s = 0.0;
    for (int64_t j = 0; j < n; j++) {
        float v = x[group_index(groups, g, j)];
        int32_t q = lb_uniform_code(v, scale, z, qmin, qmax, c.rounding, 0.0f);
        float xh = scale * (float)(q - z);
        double e = (double)v - (double)xh;
        s += e * e;
    }
    *sse = s;
    return LB_OK;
}

lb_status lb_range_mse_ref(lb_ctx *ctx, const lb_uniform_config *cfg, const lb_qgroups *groups,
                           const float *x, int candidates, double margin, float *lo, float *hi)
{
    lb_status st = check_groups(ctx, groups, x, lo, hi, "range mse");
    if (st != LB_OK) return st;
    int32_t qmin, qmax;
    if (!cfg) return lb_error(ctx, LB_ERR_ARG, "range mse: NULL config");
    st = lb_uniform_code_range(ctx, cfg, &qmin, &qmax);
    if (st != LB_OK) return st;
    if (candidates < 1) return lb_error(ctx, LB_ERR_ARG, "range mse: %d candidates", candidates);
    if (!(margin >= 0.0) || !isfinite(margin))
        return lb_error(ctx, LB_ERR_ARG, "range mse: margin %g is not a finite number >= 0", margin);
    const int64_t n = groups->outer * groups->inner;
    for (int64_t g = 0; g < groups->groups; g++) {
        float mn, mx;
        st = group_minmax(ctx, groups, x, g, &mn, &mx, "range mse");
        if (st != LB_OK) return st;
        if (n == 0) {
            lo[g] = hi[g] = 0.0f;
            continue;
        }
        const int one_sided = mn >= 0.0f;
        double best = INFINITY;
        float best_lo = 0.0f, best_hi = 0.0f;
        if (cfg->symmetric || one_sided) {
            /* 1-D grid of clipping thresholds c_k = step * k. */
            double amax = fabs((double)mn) > (double)mx ? fabs((double)mn) : (double)mx;
            double range = amax + margin, step = range / (double)candidates;
            for (int k = 1; k <= candidates; k++) {
                float c = (float)(step * (double)k);
                float l = one_sided ? 0.0f : -c;
                double sse;
                st = lb_range_group_sse_ref(ctx, cfg, groups, x, g, l, c, &sse);
                if (st != LB_OK) return st;
                if (sse < best) { /* strict: the smallest k wins ties */
                    best = sse;
                    best_lo = l;
                    best_hi = c;
                }
            }
        } else {
            /* The authors' 2-D grid: symmetric width step*k, integer skews. */
            double pos = (double)mx + margin, neg = (double)mn - margin;
            double range = fabs(pos) > fabs(neg) ? fabs(pos) : fabs(neg);
            double step = range / (double)candidates;
            const int skews = (1 << cfg->bits) / 4;
            const double levels = (double)((1 << cfg->bits) - 1);
            for (int k = 1; k <= candidates; k++) {
                double start = -step * (double)k, finish = step * (double)k;
                double delta = (finish - start) / levels;
                for (int s = 0; s < skews; s++) {
                    for (int r = 0; r < 2; r++) {
                        double skew = (r ? -(double)s : (double)s) * delta;
                        double nl = start + skew > neg ? start + skew : neg;
                        double ph = finish + skew < pos ? finish + skew : pos;
                        float l = (float)nl, h = (float)ph;
                        if (l > h) continue; /* cannot happen for finite data; keep the ref total */
                        double sse;
                        st = lb_range_group_sse_ref(ctx, cfg, groups, x, g, l, h, &sse);
                        if (st != LB_OK) return st;
                        if (sse < best) {
                            best = sse;
                            best_lo = l;
                            best_hi = h;
                        }
                    }
                }
            }
        }
        lo[g] = best_lo;
        hi[g] = best_hi;
    }
    return LB_OK;
}

lb_status lb_range_estimate_ref(lb_ctx *ctx, const lb_range_options *opts, const lb_uniform_config *cfg,
                                const lb_qgroups *groups, const float *x, float *lo, float *hi)
{
    if (!opts) return lb_error(ctx, LB_ERR_ARG, "range: NULL options");
    switch (opts->method) {
    case LB_RANGE_MINMAX: return lb_range_minmax_ref(ctx, groups, x, lo, hi);
    case LB_RANGE_PERCENTILE: return lb_range_percentile_ref(ctx, groups, x, opts->percentile, lo, hi);
    case LB_RANGE_MSE:
        return lb_range_mse_ref(ctx, cfg, groups, x, opts->mse_candidates, opts->mse_margin, lo, hi);
    }
    return lb_error(ctx, LB_ERR_ARG, "range: unknown method %d", (int)opts->method);
}

lb_status lb_range_running_update_ref(lb_ctx *ctx, lb_running_range *state, int64_t n_groups,
                                      const float *batch_lo, const float *batch_hi, float *run_lo,
                                      float *run_hi)
{
    if (!state || n_groups < 0 || (n_groups > 0 && (!batch_lo || !batch_hi || !run_lo || !run_hi)))
        return lb_error(ctx, LB_ERR_ARG, "running range: bad argument");
    if (!(state->momentum >= 0.0 && state->momentum <= 1.0))
        return lb_error(ctx, LB_ERR_ARG, "running range: momentum %g outside [0, 1]", state->momentum);
    for (int64_t g = 0; g < n_groups; g++)
        if (!isfinite(batch_lo[g]) || !isfinite(batch_hi[g]))
            return lb_error(ctx, LB_ERR_NUMERIC, "running range: non-finite batch range in group %lld",
                            (long long)g);
    /* PyTorch: (1 - momentum) is computed in Python (double), then both
     * scalars are cast to float32 when they multiply a float32 tensor. */
    const float m = (float)state->momentum;
    const float one_minus = (float)(1.0 - state->momentum);
    for (int64_t g = 0; g < n_groups; g++) {
        if (!state->initialized) {
            run_lo[g] = batch_lo[g];
            run_hi[g] = batch_hi[g];
        } else {
            float a = one_minus * batch_lo[g], b = m * run_lo[g];
            run_lo[g] = a + b;
            a = one_minus * batch_hi[g];
            b = m * run_hi[g];
            run_hi[g] = a + b;
        }
    }
    state->initialized = 1;
    return LB_OK;
}
