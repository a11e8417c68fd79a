/* ref/power_search.c — choosing the exponent a of the power quantizer:
 * the data-free search (PowerQuant; grid + golden-section refinement of the
 * weight reconstruction error) and the data-driven NUPES gradients
 * (exponent a = a_min + (1 - a_min) sigmoid(θ) and a latent code V per weight
 * that may move to any code in -N..N, straight-through rounding).
 *
 * Spec: shared/specs/nupes.md §2 (objective E(a) = Σ ||W - Ŵ(a)||², a in
 * [0.2, 1], grid + refinement accepted) and §3 (parameterisation, latent V,
 * output reconstruction loss); outlier_free_attention_and_w8a8.md §5.5-5.7
 * (the a-gradient, masking k = 0, normalised form). Papers: Yvinec et al.,
 * PowerQuant (ICLR 2023, "locally convex" reconstruction error), NUPES (arXiv
 * 2308.05600). Neither has public code: this is lowbit's reading.
 *
 * Leaves out: the optimiser loop itself (Adam, 500 iterations, learning rates
 * of nupes.md §3 live with the caller: the model-level PTQ driver), gradient
 * clipping, the layer-by-layer sequential calibration.
 * Shapes: weights (outer, groups, inner) flattened (lb_qgroups); X (T, K),
 * W (Nout, K) for the reconstruction loss.
 */
#include "config.h"
#include "lowbit/ref/power_quantizer.h"
#include "lowbit/alloc.h"

#include <math.h>

lb_status lb_power_error_ref(lb_ctx *ctx, int bits, double a, int n_layers, const lb_power_layer *layers,
                             double *error)
{
    if (n_layers < 0 || (n_layers > 0 && !layers) || !error)
        return lb_error(ctx, LB_ERR_ARG, "power error: bad argument");
    double e = 0.0;
    for (int l = 0; l < n_layers; l++) {
        const lb_qgroups *gr = &layers[l].groups;
        if (gr->outer < 0 || gr->groups < 0 || gr->inner < 0)
            return lb_error(ctx, LB_ERR_ARG, "power error: bad group structure of layer %d", l);
        const int64_t n = lb_qgroups_numel(gr);
        if (n == 0) continue;
        size_t nb_f, nb_c, nb_g;
        if (!lb_mul_size((size_t)n, sizeof(float), &nb_f) || !lb_mul_size((size_t)n, 1, &nb_c) ||
            !lb_mul_size((size_t)gr->groups, sizeof(float), &nb_g))
            return lb_error(ctx, LB_ERR_NOMEM, "power error: size overflow");
        float *what = lb_alloc(nb_f), *gmax = lb_alloc(nb_g);
        int8_t *codes = lb_alloc(nb_c);
        lb_status st = (what && gmax && codes) ? LB_OK : lb_error(ctx, LB_ERR_NOMEM, "power error: out of memory");
        if (st == LB_OK) st = lb_power_quantize_ref(ctx, bits, a, gr, layers[l].w, gmax, codes, what);
        if (st == LB_OK) {
            for (int64_t i = 0; i < n; i++) {
                double d = (double)layers[l].w[i] - (double)what[i];
                e += d * d;
            }
        }
        lb_free(what);
        lb_free(gmax);
        lb_free(codes);
        if (st != LB_OK) return st;
    }
    *error = e;
    return LB_OK;
}

lb_power_search_options lb_power_search_options_default(void)
{
    lb_power_search_options o;
    o.bits = 4;
    o.a_lo = 0.2;
    o.a_hi = 1.0;
    o.grid_points = 81;
    o.refine_iters = 20;
    return o;
}

/* Keeps the smallest-a minimiser over every evaluated point. */
static void consider(double a, double e, double *best_a, double *best_e)
{
    if (e < *best_e || (e == *best_e && a < *best_a)) {
        *best_a = a;
        *best_e = e;
    }
}

lb_status lb_power_search_ref(lb_ctx *ctx, const lb_power_search_options *opts, int n_layers,
                              const lb_power_layer *layers, lb_power_search_result *result)
{
    if (!opts || !result) return lb_error(ctx, LB_ERR_ARG, "power search: NULL argument");
    if (!(opts->a_lo >= LB_POWER_A_MIN && opts->a_hi <= LB_POWER_A_MAX && opts->a_lo < opts->a_hi))
        return lb_error(ctx, LB_ERR_ARG, "power search: interval [%g, %g] not inside [%g, %g] or empty",
                        opts->a_lo, opts->a_hi, LB_POWER_A_MIN, LB_POWER_A_MAX);
    if (opts->grid_points < 2 || opts->refine_iters < 0)
        return lb_error(ctx, LB_ERR_ARG, "power search: grid_points %d < 2 or refine_iters %d < 0",
                        opts->grid_points, opts->refine_iters);
    const int P = opts->grid_points;
    const double span = opts->a_hi - opts->a_lo;
    double best_a = INFINITY, best_e = INFINITY;
    int best_j = 0, evals = 0;
    lb_status st;
    for (int j = 0; j < P; j++) {
        double a = j == P - 1 ? opts->a_hi : opts->a_lo + span * (double)j / (double)(P - 1);
        double e;
        st = lb_power_error_ref(ctx, opts->bits, a, n_layers, layers, &e);
        if (st != LB_OK) return st;
        evals++;
        if (e < best_e) { /* strict: the first (smallest a) grid minimum */
            best_e = e;
            best_a = a;
            best_j = j;
        }
    }
    if (opts->refine_iters > 0) {
        const double invphi = (sqrt(5.0) - 1.0) / 2.0; /* 1/φ */
        int jl = best_j > 0 ? best_j - 1 : 0, jh = best_j < P - 1 ? best_j + 1 : P - 1;
        double l = jl == P - 1 ? opts->a_hi : opts->a_lo + span * (double)jl / (double)(P - 1);
        double b = jh == P - 1 ? opts->a_hi : opts->a_lo + span * (double)jh / (double)(P - 1);
        double c = b - (b - l) * invphi, d = l + (b - l) * invphi, ec, ed;
        st = lb_power_error_ref(ctx, opts->bits, c, n_layers, layers, &ec);
        if (st == LB_OK) st = lb_power_error_ref(ctx, opts->bits, d, n_layers, layers, &ed);
        if (st != LB_OK) return st;
        evals += 2;
        consider(c, ec, &best_a, &best_e);
        consider(d, ed, &best_a, &best_e);
        for (int it = 1; it < opts->refine_iters; it++) {
            if (ec <= ed) { /* minimum in [l, d] */
                b = d;
                d = c;
                ed = ec;
                c = b - (b - l) * invphi;
                st = lb_power_error_ref(ctx, opts->bits, c, n_layers, layers, &ec);
                if (st != LB_OK) return st;
                consider(c, ec, &best_a, &best_e);
            } else { /* minimum in [c, b] */
                l = c;
                c = d;
                ec = ed;
                d = l + (b - l) * invphi;
                st = lb_power_error_ref(ctx, opts->bits, d, n_layers, layers, &ed);
                if (st != LB_OK) return st;
                consider(d, ed, &best_a, &best_e);
            }
            evals++;
        }
    }
    double e1;
    st = lb_power_error_ref(ctx, opts->bits, 1.0, n_layers, layers, &e1);
    if (st != LB_OK) return st;
    result->a = best_a;
    result->error = best_e;
    result->error_a1 = e1;
    result->evaluations = evals;
    return LB_OK;
}

/* ---- NUPES ------------------------------------------------------------- */

double lb_nupes_exponent(double theta, double a_min) { return a_min + (1.0 - a_min) / (1.0 + exp(-theta)); }

static lb_status check_nupes(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups, const void *p1,
                             const float *gmax, const char *what)
{
    if (bits < 2 || bits > 8) return lb_error(ctx, LB_ERR_ARG, "%s: bits %d outside 2..8", what, bits);
    if (!(a >= LB_POWER_A_MIN && a <= LB_POWER_A_MAX))
        return lb_error(ctx, LB_ERR_ARG, "%s: exponent a = %g outside [%g, %g]", what, a, LB_POWER_A_MIN,
                        LB_POWER_A_MAX);
    if (!groups || groups->outer < 0 || groups->groups < 0 || groups->inner < 0)
        return lb_error(ctx, LB_ERR_ARG, "%s: bad group structure", what);
    if (groups->groups > 0 && (!gmax || (lb_qgroups_numel(groups) > 0 && !p1)))
        return lb_error(ctx, LB_ERR_ARG, "%s: NULL argument", what);
    return LB_OK;
}

lb_status lb_nupes_init_ref(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups, const float *w,
                            float *gmax, float *V)
{
    lb_status st = check_nupes(ctx, bits, a, groups, w, gmax, "nupes init");
    if (st != LB_OK) return st;
    if (lb_qgroups_numel(groups) > 0 && !V) return lb_error(ctx, LB_ERR_ARG, "nupes init: NULL V");
    for (int64_t g = 0; g < groups->groups; g++) {
        float m = 0.0f;
        for (int64_t o = 0; o < groups->outer; o++)
            for (int64_t i = 0; i < groups->inner; i++) {
                float v = w[(o * groups->groups + g) * groups->inner + i];
                if (!isfinite(v)) return lb_error(ctx, LB_ERR_NUMERIC, "nupes init: non-finite weight");
                if (fabsf(v) > m) m = fabsf(v);
            }
        gmax[g] = m;
        const float delta = lb_power_delta(m, bits);
        for (int64_t o = 0; o < groups->outer; o++)
            for (int64_t i = 0; i < groups->inner; i++) {
                int64_t idx = (o * groups->groups + g) * groups->inner + i;
                float x = w[idx], v = 0.0f;
                if (m > 0.0f && x != 0.0f) {
                    v = lb_power_transform(fabsf(x), m, a) / delta;
                    if (x < 0.0f) v = -v;
                }
                V[idx] = v;
            }
    }
    return LB_OK;
}

lb_status lb_nupes_forward_ref(lb_ctx *ctx, int bits, double a, const lb_qgroups *groups, const float *V,
                               const float *gmax, int8_t *codes, float *what)
{
    lb_status st = check_nupes(ctx, bits, a, groups, V, gmax, "nupes forward");
    if (st != LB_OK) return st;
    if (lb_qgroups_numel(groups) > 0 && !what) return lb_error(ctx, LB_ERR_ARG, "nupes forward: NULL what");
    const float nmax = (float)((1 << (bits - 1)) - 1);
    for (int64_t g = 0; g < groups->groups; g++) {
        if (!(gmax[g] >= 0.0f) || !isfinite(gmax[g]))
            return lb_error(ctx, LB_ERR_ARG, "nupes forward: bad group max");
        const float delta = lb_power_delta(gmax[g], bits);
        for (int64_t o = 0; o < groups->outer; o++)
            for (int64_t i = 0; i < groups->inner; i++) {
                int64_t idx = (o * groups->groups + g) * groups->inner + i;
                if (!isfinite(V[idx])) return lb_error(ctx, LB_ERR_NUMERIC, "nupes forward: non-finite latent");
                float r = lb_round_half_even(V[idx]);
                if (r > nmax) r = nmax;
                if (r < -nmax) r = -nmax;
                int32_t q = (int32_t)r;
                if (codes) codes[idx] = (int8_t)q;
                float l = lb_power_level(q < 0 ? -q : q, gmax[g], delta, a);
                what[idx] = q < 0 ? -l : l;
            }
    }
    return LB_OK;
}

lb_status lb_nupes_backward_ref(lb_ctx *ctx, int bits, double theta, double a_min, const lb_qgroups *groups,
                                const float *V, const float *gmax, const float *grad_what, float *grad_V,
                                double *grad_theta)
{
    if (!(a_min >= LB_POWER_A_MIN && a_min < 1.0) || !isfinite(theta))
        return lb_error(ctx, LB_ERR_ARG, "nupes backward: a_min %g outside [%g, 1) or non-finite theta", a_min,
                        LB_POWER_A_MIN);
    const double a = lb_nupes_exponent(theta, a_min);
    lb_status st = check_nupes(ctx, bits, a, groups, V, gmax, "nupes backward");
    if (st != LB_OK) return st;
    if (lb_qgroups_numel(groups) > 0 && !grad_what)
        return lb_error(ctx, LB_ERR_ARG, "nupes backward: NULL grad_what");
    const int32_t nmax = (1 << (bits - 1)) - 1;
    double da = 0.0;
    for (int64_t g = 0; g < groups->groups; g++) {
        const double m = (double)gmax[g];
        const float delta = lb_power_delta(gmax[g], bits);
        for (int64_t o = 0; o < groups->outer; o++)
            for (int64_t i = 0; i < groups->inner; i++) {
                int64_t idx = (o * groups->groups + g) * groups->inner + i;
                const double gw = (double)grad_what[idx];
                const float vl = V[idx];
                if (!isfinite(vl) || !isfinite(grad_what[idx]))
                    return lb_error(ctx, LB_ERR_NUMERIC, "nupes backward: non-finite input at %lld", (long long)idx);
                float r = lb_round_half_even(vl);
                if (r > (float)nmax) r = (float)nmax;
                if (r < -(float)nmax) r = -(float)nmax;
                const int32_t q = (int32_t)r;
                if (q != 0 && m > 0.0) {
                    /* dŵ/da for fixed codes: ŵ = ± M v^(1/a), v = ŷ/M. */
                    const int32_t k = q < 0 ? -q : q;
                    double v = (double)(delta * (float)k) / m;
                    if (v > 1.0) v = 1.0;
                    const double dw = -m * pow(v, 1.0 / a) * log(v) / (a * a);
                    da += gw * (q < 0 ? -dw : dw);
                }
                if (grad_V) {
                    /* Straight-through surrogate s(V) = sign(V) M (Δ|V|/M)^(1/a). */
                    double gv = 0.0;
                    const double av = fabs((double)vl);
                    if (m > 0.0 && av <= (double)nmax) {
                        const double t = (double)delta * av / m;
                        gv = ((double)delta / a) * (a == 1.0 ? 1.0 : pow(t, 1.0 / a - 1.0));
                    }
                    grad_V[idx] = (float)(gw * gv);
                }
            }
    }
    if (grad_theta) {
        const double s = 1.0 / (1.0 + exp(-theta));
        *grad_theta = da * (1.0 - a_min) * s * (1.0 - s);
    }
    return LB_OK;
}

lb_status lb_nupes_recon_loss_ref(lb_ctx *ctx, int64_t T, int64_t Nout, int64_t K, const float *X,
                                  const float *W, const float *what, double *loss, float *grad_what)
{
    if (T < 0 || Nout < 0 || K < 0 || !loss || (T * K > 0 && !X) || (Nout * K > 0 && (!W || !what)))
        return lb_error(ctx, LB_ERR_ARG, "nupes recon loss: bad argument");
    size_t nb;
    double *E = NULL;
    if (T * Nout > 0) {
        if (!lb_mul_size((size_t)(T * Nout), sizeof(double), &nb))
            return lb_error(ctx, LB_ERR_NOMEM, "nupes recon loss: size overflow");
        E = lb_alloc(nb);
        if (!E) return lb_error(ctx, LB_ERR_NOMEM, "nupes recon loss: out of memory");
    }
    double l = 0.0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < Nout; n++) {
            double e = 0.0; /* (X Ŵ^T - X W^T)[t, n] = Σ_k X[t,k] (Ŵ[n,k] - W[n,k]) */
            for (int64_t k = 0; k < K; k++)
                e += (double)X[t * K + k] * ((double)what[n * K + k] - (double)W[n * K + k]);
            E[t * Nout + n] = e;
            l += e * e;
        }
    *loss = l;
    if (grad_what) {
        for (int64_t n = 0; n < Nout; n++)
            for (int64_t k = 0; k < K; k++) {
                double gsum = 0.0;
                for (int64_t t = 0; t < T; t++) gsum += E[t * Nout + n] * (double)X[t * K + k];
                grad_what[n * K + k] = (float)(2.0 * gsum);
            }
    }
    lb_free(E);
    return LB_OK;
}
