/* ref/outlier_metrics.c — infinity norm and kurtosis of activation rows, the
 * outlier metrics of Bondarenko et al. 2023 ("Quantizable Transformers",
 * §5 and Tables 2-7; definitions from the authors' code, spec
 * outlier_free_attention_and_w8a8.md §3.2).
 *
 * Leaves out: hooking the monitored tensors, the per-tensor averages over
 * sequences and the max/mean across tensors (the caller's; order in the
 * header), the 6-sigma outlier counts of the paper's analysis figures.
 *
 * Shapes: x (rows, cols), one row per sequence flattened over (T, d);
 * out (rows).
 */
#include "config.h"
#include "lowbit/ref/outlier_metrics.h"

#include <math.h>
#include <stddef.h>

/* Element i of a float or double array, as double. */
static inline double at(const float *xf, const double *xd, int64_t i)
{
    return xf ? (double)xf[i] : xd[i];
}

const char *lb_kurtosis_mode_name(lb_kurtosis_mode mode)
{
    switch (mode) {
    case LB_KURTOSIS_CODE: return "code";
    case LB_KURTOSIS_PEARSON: return "pearson";
    case LB_KURTOSIS_FISHER: return "fisher";
    }
    return NULL;
}

static lb_status inf_norm(lb_ctx *ctx, int64_t rows, int64_t cols, const float *xf,
                          const double *xd, double *out)
{
    if (rows < 0 || cols < 1)
        return lb_error(ctx, LB_ERR_ARG, "inf norm: need rows >= 0 and cols >= 1, got %lld x %lld",
                        (long long)rows, (long long)cols);
    if (rows > 0 && ((!xf && !xd) || !out)) return lb_error(ctx, LB_ERR_ARG, "inf norm: NULL array");
    for (int64_t r = 0; r < rows; r++) {
        /* max by comparisons, with NaN made sticky (torch.amax propagates) */
        double m = 0.0;
        for (int64_t i = 0; i < cols; i++) {
            double a = fabs(at(xf, xd, r * cols + i));
            if (isnan(a)) {
                m = a;
                break;
            }
            if (a > m) m = a;
        }
        out[r] = m;
    }
    return LB_OK;
}

lb_status lb_inf_norm_ref(lb_ctx *ctx, int64_t rows, int64_t cols, const float *x, double *out)
{
    return inf_norm(ctx, rows, cols, x, NULL, out);
}

lb_status lb_inf_norm_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols, const double *x,
                              double *out)
{
    return inf_norm(ctx, rows, cols, NULL, x, out);
}

static lb_status kurtosis(lb_ctx *ctx, int64_t rows, int64_t cols, lb_kurtosis_mode mode,
                          double eps, const float *xf, const double *xd, double *out)
{
    if (!lb_kurtosis_mode_name(mode))
        return lb_error(ctx, LB_ERR_ARG, "kurtosis: unknown mode %d", (int)mode);
    if (rows < 0 || cols < 2)
        return lb_error(ctx, LB_ERR_ARG,
                        "kurtosis: need rows >= 0 and at least 2 values per row, got %lld x %lld",
                        (long long)rows, (long long)cols);
    if (!isfinite(eps) || eps < 0.0)
        return lb_error(ctx, LB_ERR_ARG, "kurtosis: eps=%g must be finite and >= 0", eps);
    if (rows > 0 && ((!xf && !xd) || !out)) return lb_error(ctx, LB_ERR_ARG, "kurtosis: NULL array");
    const double N = (double)cols;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t base = r * cols;
        double sum = 0.0;
        for (int64_t i = 0; i < cols; i++) sum += at(xf, xd, base + i);
        const double mu = sum / N;
        double s2 = 0.0, s4 = 0.0;
        for (int64_t i = 0; i < cols; i++) {
            const double d = at(xf, xd, base + i) - mu;
            const double d2 = d * d;
            s2 += d2;
            s4 += d2 * d2;
        }
        const double mu4 = s4 / N;
        if (mode == LB_KURTOSIS_CODE) {
            const double var = s2 / (N - 1.0);
            if (var == 0.0 && eps == 0.0)
                return lb_error(ctx, LB_ERR_NUMERIC,
                                "kurtosis (code, eps=0): row %lld has zero variance", (long long)r);
            out[r] = mu4 / (var * var + eps);
            continue;
        }
        const double m2 = s2 / N;
        if (m2 == 0.0)
            return lb_error(ctx, LB_ERR_NUMERIC,
                            "kurtosis (%s): row %lld has zero variance, the kurtosis is undefined "
                            "(mode=code gives 0)",
                            lb_kurtosis_mode_name(mode), (long long)r);
        const double k = mu4 / (m2 * m2);
        out[r] = mode == LB_KURTOSIS_FISHER ? k - 3.0 : k;
    }
    return LB_OK;
}

lb_status lb_kurtosis_ref(lb_ctx *ctx, int64_t rows, int64_t cols, lb_kurtosis_mode mode,
                          double eps, const float *x, double *out)
{
    return kurtosis(ctx, rows, cols, mode, eps, x, NULL, out);
}

lb_status lb_kurtosis_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols, lb_kurtosis_mode mode,
                              double eps, const double *x, double *out)
{
    return kurtosis(ctx, rows, cols, mode, eps, NULL, x, out);
}
