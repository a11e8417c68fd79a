/* ref/clipped_softmax.c — softmax and the clipped softmax of Bondarenko et al.
 * 2023 ("Quantizable Transformers", eq. 4; spec
 * outlier_free_attention_and_w8a8.md §1.1-§1.4), forward and backward, one row
 * of attention logits at a time.
 *
 *   y = clip((zeta - gamma) · softmax(x) + gamma, 0, 1)
 *
 * The backward is the closed form of spec §1.3 (the paper only says clipped
 * entries pass no gradient), with PyTorch's closed-interval clamp rule.
 * Leaves out: attention dropout, the mask (callers add it to x first) and the
 * score scaling; the length-normalised variant of Liao & Monz 2024 (per-row
 * gamma) is a different function and not implemented.
 *
 * Shapes: x, y, dy, dx (rows, cols) row-major; each row is independent.
 * The arithmetic order is the contract written in the header.
 *
 * Both precisions share one code path: a row is read through a view that
 * holds either a float or a double pointer and widens floats to double, and
 * written through a view that rounds once to float when the target is float.
 */
#include "config.h"
#include "lowbit/ref/clipped_softmax.h"

#include <math.h>
#include <stddef.h>

/* Read-only row of float or double values (exactly one pointer non-NULL). */
typedef struct in_row {
    const float *f32;
    const double *f64;
} in_row;

/* Writable row of float or double values. */
typedef struct out_row {
    float *f32;
    double *f64;
} out_row;

static inline double in_at(in_row r, int64_t i) { return r.f32 ? (double)r.f32[i] : r.f64[i]; }

static inline void out_set(out_row r, int64_t i, double v)
{
    if (r.f32)
        r.f32[i] = (float)v;
    else
        r.f64[i] = v;
}

static inline in_row in_offset(in_row r, int64_t off)
{
    in_row o = {r.f32 ? r.f32 + off : NULL, r.f64 ? r.f64 + off : NULL};
    return o;
}

static inline out_row out_offset(out_row r, int64_t off)
{
    out_row o = {r.f32 ? r.f32 + off : NULL, r.f64 ? r.f64 + off : NULL};
    return o;
}

/* clip(s, 0, 1) by comparisons: NaN passes through (torch.clip parity). */
static inline double clip01(double s) { return s < 0.0 ? 0.0 : (s > 1.0 ? 1.0 : s); }

/* Steps 1-2 of the header: the row max m and S = sum_j exp(x_j - m). */
static void row_max_and_sum(in_row x, int64_t cols, double *m_out, double *s_out)
{
    double m = in_at(x, 0);
    for (int64_t j = 1; j < cols; j++) {
        double v = in_at(x, j);
        if (v > m) m = v;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < cols; j++) sum += exp(in_at(x, j) - m);
    *m_out = m;
    *s_out = sum;
}

lb_status lb_clipped_softmax_check(lb_ctx *ctx, double gamma, double zeta)
{
    if (!isfinite(gamma) || !isfinite(zeta))
        return lb_error(ctx, LB_ERR_ARG, "clipped softmax: gamma=%g and zeta=%g must be finite",
                        gamma, zeta);
    if (gamma > 0.0)
        return lb_error(ctx, LB_ERR_ARG, "clipped softmax: gamma=%g must be <= 0", gamma);
    if (zeta < 1.0)
        return lb_error(ctx, LB_ERR_ARG, "clipped softmax: zeta=%g must be >= 1", zeta);
    return LB_OK;
}

lb_status lb_clipped_softmax_gamma_from_alpha(lb_ctx *ctx, double alpha, double T, double *gamma)
{
    if (!gamma) return lb_error(ctx, LB_ERR_ARG, "clipped softmax: NULL gamma");
    if (!isfinite(alpha) || alpha < 0.0)
        return lb_error(ctx, LB_ERR_ARG, "clipped softmax: alpha=%g must be finite and >= 0", alpha);
    if (!isfinite(T) || T < 1.0)
        return lb_error(ctx, LB_ERR_ARG, "clipped softmax: T=%g must be finite and >= 1", T);
    *gamma = -alpha / T;
    return LB_OK;
}

static lb_status check_sizes(lb_ctx *ctx, const char *what, int64_t rows, int64_t cols, int n_ptr,
                             const void *a, const void *b, const void *c)
{
    if (rows < 0 || cols < 0)
        return lb_error(ctx, LB_ERR_ARG, "%s: negative size rows=%lld cols=%lld", what,
                        (long long)rows, (long long)cols);
    if (rows > 0 && cols > 0 && (!a || !b || (n_ptr > 2 && !c)))
        return lb_error(ctx, LB_ERR_ARG, "%s: NULL array", what);
    return LB_OK;
}

/* Forward over all rows (header steps 1-5). */
static lb_status forward(lb_ctx *ctx, int64_t rows, int64_t cols, double gamma, double zeta,
                         in_row x, out_row y)
{
    lb_status st = lb_clipped_softmax_check(ctx, gamma, zeta);
    if (st != LB_OK) return st;
    const double stretch = zeta - gamma;
    for (int64_t r = 0; r < rows && cols > 0; r++) {
        in_row xr = in_offset(x, r * cols);
        out_row yr = out_offset(y, r * cols);
        double m, sum;
        row_max_and_sum(xr, cols, &m, &sum);
        for (int64_t i = 0; i < cols; i++) {
            double p = exp(in_at(xr, i) - m) / sum;
            out_set(yr, i, clip01(stretch * p + gamma));
        }
    }
    return LB_OK;
}

/* Backward over all rows (header formulas). */
static lb_status backward(lb_ctx *ctx, int64_t rows, int64_t cols, double gamma, double zeta,
                          in_row x, in_row dy, out_row dx)
{
    lb_status st = lb_clipped_softmax_check(ctx, gamma, zeta);
    if (st != LB_OK) return st;
    const double stretch = zeta - gamma;
    for (int64_t r = 0; r < rows && cols > 0; r++) {
        in_row xr = in_offset(x, r * cols);
        in_row gr = in_offset(dy, r * cols);
        out_row dxr = out_offset(dx, r * cols);
        double m, sum;
        row_max_and_sum(xr, cols, &m, &sum);
        /* dot = sum_i u_i p_i, u_i = m_i · stretch · g_i; the mask is the
         * closed interval 0 <= s_i <= 1 (false for NaN, and then u_i = 0
         * but p_i = NaN still poisons dot). */
        double dot = 0.0;
        for (int64_t i = 0; i < cols; i++) {
            double p = exp(in_at(xr, i) - m) / sum;
            double s = stretch * p + gamma;
            double u = (s >= 0.0 && s <= 1.0) ? stretch * in_at(gr, i) : 0.0;
            dot += u * p;
        }
        /* dx_j = p_j (u_j - dot); reading g_j before writing dx_j keeps
         * dx == dy valid. */
        for (int64_t j = 0; j < cols; j++) {
            double p = exp(in_at(xr, j) - m) / sum;
            double s = stretch * p + gamma;
            double u = (s >= 0.0 && s <= 1.0) ? stretch * in_at(gr, j) : 0.0;
            out_set(dxr, j, p * (u - dot));
        }
    }
    return LB_OK;
}

lb_status lb_softmax_ref(lb_ctx *ctx, int64_t rows, int64_t cols, const float *x, float *y)
{
    return lb_clipped_softmax_ref(ctx, rows, cols, 0.0, 1.0, x, y);
}

lb_status lb_softmax_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols, const double *x, double *y)
{
    return lb_clipped_softmax_ref_f64(ctx, rows, cols, 0.0, 1.0, x, y);
}

lb_status lb_clipped_softmax_ref(lb_ctx *ctx, int64_t rows, int64_t cols, double gamma,
                                 double zeta, const float *x, float *y)
{
    lb_status st = check_sizes(ctx, "clipped softmax", rows, cols, 2, x, y, NULL);
    if (st != LB_OK) return st;
    in_row xi = {x, NULL};
    out_row yo = {y, NULL};
    return forward(ctx, rows, cols, gamma, zeta, xi, yo);
}

lb_status lb_clipped_softmax_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols, double gamma,
                                     double zeta, const double *x, double *y)
{
    lb_status st = check_sizes(ctx, "clipped softmax", rows, cols, 2, x, y, NULL);
    if (st != LB_OK) return st;
    in_row xi = {NULL, x};
    out_row yo = {NULL, y};
    return forward(ctx, rows, cols, gamma, zeta, xi, yo);
}

lb_status lb_clipped_softmax_backward_ref(lb_ctx *ctx, int64_t rows, int64_t cols, double gamma,
                                          double zeta, const float *x, const float *dy,
                                          float *dx)
{
    lb_status st = check_sizes(ctx, "clipped softmax backward", rows, cols, 3, x, dy, dx);
    if (st != LB_OK) return st;
    in_row xi = {x, NULL}, gi = {dy, NULL};
    out_row dxo = {dx, NULL};
    return backward(ctx, rows, cols, gamma, zeta, xi, gi, dxo);
}

lb_status lb_clipped_softmax_backward_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols,
                                              double gamma, double zeta, const double *x,
                                              const double *dy, double *dx)
{
    lb_status st = check_sizes(ctx, "clipped softmax backward", rows, cols, 3, x, dy, dx);
    if (st != LB_OK) return st;
    in_row xi = {NULL, x}, gi = {NULL, dy};
    out_row dxo = {NULL, dx};
    return backward(ctx, rows, cols, gamma, zeta, xi, gi, dxo);
}
