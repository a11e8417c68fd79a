/* models/ptq_nupes.c — the NUPES optimisation of one linear layer (our
 * reading, shared/specs/nupes.md §3; lowbit/ptq.h):
 *
 *   a = a_min + (1 - a_min) sigmoid(θ), a latent code V per weight
 *   (the codes of GPTQ on the power grid of the layer's PowerQuant exponent —
 *   lb_power_search_ref on [a_min, 1], 41 grid points and 15 golden-section
 *   steps —, or lb_nupes_init_ref's round-to-nearest codes there), forward
 *   q = clamp(round(V), -N, N), Ŵ = sign(q) M (Δ|q|/M)^(1/a) per group
 *   (exactly lb_nupes_forward_ref), loss
 *       L = Σ_r (w_r - ŵ_r)^T H (w_r - ŵ_r) / Σ_r w_r^T H w_r
 *   with H = 2 X^T X / n of the layer's calibration inputs (the relative
 *   output reconstruction error ||XW^T - XŴ^T||² / ||XW^T||²), gradient
 *   dL/dŴ = 2 (Ŵ - W) H / ref, then dL/dV and dL/dθ by the formulas of
 *   lb_nupes_backward_ref, and Adam (β = 0.9, 0.999, ε = 1e-8) on V (lr_v)
 *   and θ (lr_θ) for `iters` steps. The iterate with the lowest loss (the
 *   initialisation included) is returned.
 *
 * The element loops are the reference formulas evaluated per row with the
 * per-group levels computed once per step (OpenMP over rows); the forward
 * gives lb_nupes_forward_ref's bits and dL/dV lb_nupes_backward_ref's; dL/dθ
 * sums per-row partials in row order (equal to the reference's flat-order
 * sum up to double rounding). (W - Ŵ) H is a float32 GEMM through the cpu
 * backend's linear op (OpenBLAS when built with it).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/ref/gptq.h"
#include "lowbit/ref/power_quantizer.h"
#include "lowbit/ref/rounding.h"
#include "ptq_internal.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

/* Per-group levels |ŵ| of codes 0..N and their a-derivatives. */
static void group_levels(int bits, double a, float gmax, float *level, double *dlevel)
{
    const int N = (1 << (bits - 1)) - 1;
    const float delta = lb_power_delta(gmax, bits);
    const double m = (double)gmax;
    for (int k = 0; k <= N; k++) {
        level[k] = lb_power_level(k, gmax, delta, a);
        dlevel[k] = 0;
        if (k > 0 && m > 0.0) {
            double v = (double)(delta * (float)k) / m;
            if (v > 1.0) v = 1.0;
            dlevel[k] = -m * pow(v, 1.0 / a) * log(v) / (a * a);
        }
    }
}

static inline int32_t code_of(float v, int N)
{
    float r = lb_round_half_even(v);
    if (r > (float)N) r = (float)N;
    if (r < -(float)N) r = -(float)N;
    return (int32_t)r;
}

/* Ŵ and codes from V (rows of K, group of row r = r when per channel). */
void ptq_nupes_forward(int bits, double a, int64_t OC, int64_t K, int64_t n_scales,
                       const float *V, const float *gmax, int8_t *codes, float *what)
{
    const int N = (1 << (bits - 1)) - 1;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < OC; r++) {
        float level[129];
        double dlevel[129];
        group_levels(bits, a, gmax[n_scales == 1 ? 0 : r], level, dlevel);
        for (int64_t k = 0; k < K; k++) {
            const int32_t q = code_of(V[r * K + k], N);
            if (codes) codes[r * K + k] = (int8_t)q;
            const float l = level[q < 0 ? -q : q];
            what[r * K + k] = q < 0 ? -l : l;
        }
    }
}

/* dL/dV (grad_V) and dL/dθ from G = dL/dŴ; row_da (OC) scratch. */
void ptq_nupes_backward(int bits, double theta, double a_min, int64_t OC, int64_t K,
                        int64_t n_scales, const float *V, const float *gmax, const float *G,
                        float *grad_V, double *row_da, double *grad_theta)
{
    const int N = (1 << (bits - 1)) - 1;
    const double a = lb_nupes_exponent(theta, a_min);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < OC; r++) {
        float level[129];
        double dlevel[129];
        const float gm = gmax[n_scales == 1 ? 0 : r];
        group_levels(bits, a, gm, level, dlevel);
        const double m = (double)gm;
        const float delta = lb_power_delta(gm, bits);
        double da = 0.0;
        for (int64_t k = 0; k < K; k++) {
            const double gw = (double)G[r * K + k];
            const float vl = V[r * K + k];
            const int32_t q = code_of(vl, N);
            if (q != 0 && m > 0.0) da += gw * (q < 0 ? -dlevel[-q] : dlevel[q]);
            double gv = 0.0;
            const double av = fabs((double)vl);
            if (m > 0.0 && av <= (double)N) {
                const double t = (double)delta * av / m;
                gv = ((double)delta / a) * (a == 1.0 ? 1.0 : pow(t, 1.0 / a - 1.0));
            }
            grad_V[r * K + k] = (float)(gw * gv);
        }
        row_da[r] = da;
    }
    double da = 0.0;
    for (int64_t r = 0; r < OC; r++) da += row_da[r];
    const double s = 1.0 / (1.0 + exp(-theta));
    *grad_theta = da * (1.0 - a_min) * s * (1.0 - s);
}

/* out (OC, K) = D (OC, K) · H (K, K) (H symmetric) in float32. */
static void times_h(const float *D, const float *Hf, float *out, int64_t OC, int64_t K)
{
    lb_backend_cpu()->linear_forward(out, D, Hf, NULL, OC, K, K);
}

lb_status ptq_nupes_layer(lb_ctx *ctx, const lb_ptq_options *o, int64_t OC, int64_t K,
                          const float *W, const double *H, int64_t n_scales, int8_t *codes,
                          float *gmax, double *a_out, double *loss_init, double *loss_best)
{
    const int bits = o->wbits;
    const int64_t n = OC * K;
    const lb_qgroups groups = {1, n_scales, n / n_scales};
    // the layer's PowerQuant exponent
    // a coarser search than PowerQuant's (step 0.02, 15 refinements): the
    // exponent is learned afterwards anyway
    lb_power_search_options so = lb_power_search_options_default();
    so.bits = bits;
    so.a_lo = o->nupes_a_min;
    so.grid_points = 41;
    so.refine_iters = 15;
    const lb_power_layer layer = {W, groups};
    lb_power_search_result sr;
    TRY(lb_power_search_ref(ctx, &so, 1, &layer, &sr));
    const double a_min = o->nupes_a_min, eps = 1e-3;
    double a0 = sr.a;
    if (a0 < a_min + eps) a0 = a_min + eps;
    if (a0 > 1.0 - eps) a0 = 1.0 - eps;
    const double u0 = (a0 - a_min) / (1.0 - a_min);
    double theta = log(u0 / (1.0 - u0));

    float *V = lb_alloc((size_t)n * sizeof(float)), *bestV = lb_alloc((size_t)n * sizeof(float));
    float *what = lb_alloc((size_t)n * sizeof(float)), *D = lb_alloc((size_t)n * sizeof(float));
    float *DH = lb_alloc((size_t)n * sizeof(float)), *gV = lb_alloc((size_t)n * sizeof(float));
    float *m1 = lb_calloc((size_t)n, sizeof(float)), *m2 = lb_calloc((size_t)n, sizeof(float));
    float *Hf = lb_alloc((size_t)(K * K) * sizeof(float));
    double *row_da = lb_alloc((size_t)OC * sizeof(double));
    lb_status st = LB_OK;
    if (!V || !bestV || !what || !D || !DH || !gV || !m1 || !m2 || !Hf || !row_da) {
        st = lb_error(ctx, LB_ERR_NOMEM, "nupes: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < K * K; i++) Hf[i] = (float)H[i];
    st = lb_nupes_init_ref(ctx, bits, lb_nupes_exponent(theta, a_min), &groups, W, gmax, V);
    if (st != LB_OK) goto done;
    if (o->nupes_init == LB_PTQ_NUPES_INIT_GPTQ) {
        // start from GPTQ's codes on the power grid of the same exponent
        lb_gptq_config gc = lb_gptq_config_default();
        gc.quant.bits = bits;
        gc.quant.granularity = n_scales == 1 ? LB_WQ_TENSOR : LB_WQ_CHANNEL;
        gc.quant.grid = LB_WQ_GRID_POWER;
        gc.quant.power_a = lb_nupes_exponent(theta, a_min);
        gc.percdamp = o->percdamp;
        gc.act_order = o->act_order;
        int32_t *c32 = lb_alloc((size_t)n * sizeof(int32_t));
        st = c32 ? lb_gptq_quantize_ref(ctx, &gc, OC, K, W, H, c32, gmax, NULL, NULL, NULL, NULL,
                                        NULL)
                 : lb_error(ctx, LB_ERR_NOMEM, "nupes: out of memory");
        for (int64_t i = 0; st == LB_OK && i < n; i++) V[i] = (float)c32[i];
        lb_free(c32);
        if (st != LB_OK) goto done;
    }
    // ref = Σ_r w_r^T H w_r
    times_h(W, Hf, DH, OC, K);
    double ref = 0;
    for (int64_t i = 0; i < n; i++) ref += (double)W[i] * (double)DH[i];
    if (!(ref > 0)) ref = 1;
    double best = INFINITY, best_theta = theta, mt = 0, vt = 0;
    const double b1 = 0.9, b2 = 0.999, aeps = 1e-8;
    for (int it = 0; it <= o->nupes_iters; it++) {
        const double a = lb_nupes_exponent(theta, a_min);
        ptq_nupes_forward(bits, a, OC, K, n_scales, V, gmax, NULL, what);
        for (int64_t i = 0; i < n; i++) D[i] = what[i] - W[i];
        times_h(D, Hf, DH, OC, K);
        double loss = 0;
        for (int64_t i = 0; i < n; i++) loss += (double)D[i] * (double)DH[i];
        loss /= ref;
        if (!isfinite(loss)) {
            st = lb_error(ctx, LB_ERR_NUMERIC, "nupes: non-finite loss at iteration %d", it);
            goto done;
        }
        if (it == 0) *loss_init = loss;
        if (loss < best) {
            best = loss;
            best_theta = theta;
            memcpy(bestV, V, (size_t)n * sizeof(float));
        }
        if (it == o->nupes_iters) break;
        // dL/dŴ = 2 (Ŵ - W) H / ref
        for (int64_t i = 0; i < n; i++) DH[i] = (float)(2.0 * (double)DH[i] / ref);
        double g_theta = 0;
        ptq_nupes_backward(bits, theta, a_min, OC, K, n_scales, V, gmax, DH, gV, row_da,
                           &g_theta);
        const double t = it + 1, c1 = 1 - pow(b1, t), c2 = 1 - pow(b2, t);
        for (int64_t i = 0; i < n; i++) {
            const double g = gV[i];
            m1[i] = (float)(b1 * m1[i] + (1 - b1) * g);
            m2[i] = (float)(b2 * m2[i] + (1 - b2) * g * g);
            V[i] = (float)(V[i] - o->nupes_lr_v * (m1[i] / c1) / (sqrt(m2[i] / c2) + aeps));
        }
        mt = b1 * mt + (1 - b1) * g_theta;
        vt = b2 * vt + (1 - b2) * g_theta * g_theta;
        theta -= o->nupes_lr_theta * (mt / c1) / (sqrt(vt / c2) + aeps);
    }
    *loss_best = best;
    *a_out = lb_nupes_exponent(best_theta, a_min);
    ptq_nupes_forward(bits, *a_out, OC, K, n_scales, bestV, gmax, codes, what);
done:
    lb_free(V), lb_free(bestV), lb_free(what), lb_free(D), lb_free(DH), lb_free(gV);
    lb_free(m1), lb_free(m2), lb_free(Hf), lb_free(row_da);
    return st;
}
