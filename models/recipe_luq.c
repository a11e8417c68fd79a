/* models/recipe_luq.c — the "luq" training recipe: Chmiel, Banner, Hoffer,
 * Ben-Yaacov, Soudry, "Accurate Neural Training with 4-bit Matrix
 * Multiplications at Standard Formats" (LUQ, ICLR 2023), spec
 * int4_training.md §B. Every quantized linear layer is the oracle layer
 * lowbit/ref/qlinear_luq.h: SAWB int4 forward (RTN), LUQ of ∇Y — one sample,
 * or the SMP average of S — feeding both backward GEMMs, all three GEMMs
 * integer (int8 storage, int32 accumulation; LUQ codes ±2^k split by exponent
 * for L = 8). The recipe supplies the integer GEMM (oracle or cpu kernels,
 * same bits), keeps the forward codes and the sticky signed-activation flag
 * per layer, runs the FNT phase and records statistics.
 *
 * Per layer (X (N, C), W (OC, C); the oracle's D = C, C = OC):
 *   config    lb_qlinear_luq_default_config with grid = sawb-grid, samples =
 *             smp, LUQ levels / underflow / rounding from the options,
 *             luq.seed = the training seed and luq.sample = site·2^48 +
 *             step·2^12 (the SMP samples add j < S), so every layer and
 *             step draws from its own streams.
 *   layers    the oracle layer on the ref backend, its cpu twin
 *             (lowbit/cpu_qlinear.h, same bits) on the cpu backend.
 *   forward   the oracle forward; in training the layer's signed-activation
 *             flag is updated (the authors' sticky rule), in evaluation it is
 *             only read.
 *   backward  the oracle backward (∇b from the quantized δ, as the authors'
 *             code), added to the model's gradients.
 *   FNT       (LuP §5.2, spec B.5) training steps >= steps − fnt-steps, and
 *             evaluations after the first of them: Y = X · Ŵ^T + b in float32
 *             with Ŵ the SAWB-int4 weights (dequantized, lb_sawb_quantize_ref
 *             or, on the cpu backend, lb_sawb_quantize_cpu), and the float32
 *             backward through Ŵ (∇W straight-through); the
 *             learning rate follows lb_fnt_lr (lowbit/train.h's schedule).
 *             "Everything in high precision except the weights".
 * Statistics per layer: x_scale, w_scale (SAWB steps), x_clip and w_clip
 * (fraction of entries beyond the SAWB clip, |t / scale| past the grid by
 * more than ½), alpha (LUQ's α = max|∇Y| / 2^(L−1)), underflow (fraction of
 * the non-zero ∇Y entries with |δ| < α, the ones stochastic underflow sends
 * to 0 or ±α), fnt (1 during FNT).
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/cpu_qlinear.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/ref/qlinear_luq.h"
#include "recipe_internal.h"
#include "../runtime/clones.h"

enum { S_X_SCALE, S_W_SCALE, S_X_CLIP, S_W_CLIP, S_ALPHA, S_UNDERFLOW, S_FNT };
static const char *const luq_stats[RC_MAX_STATS] = {"x_scale", "w_scale", "x_clip", "w_clip",
                                                    "alpha", "underflow", "fnt", NULL};

static lb_qlinear_luq_config luq_config(const rc_recipe *r, rc_site *s, int64_t step)
{
    lb_qlinear_luq_config cfg = lb_qlinear_luq_default_config();
    cfg.grid = (lb_sawb_grid)r->opt.sawb_grid;
    cfg.samples = r->opt.smp > 0 ? r->opt.smp : 1;
    cfg.luq.levels = r->opt.luq_levels > 0 ? r->opt.luq_levels : LB_LUQ_LEVELS_DEFAULT;
    cfg.luq.underflow = (lb_luq_underflow)r->opt.luq_underflow;
    cfg.luq.rounding = (lb_luq_rounding)r->opt.luq_rounding;
    cfg.luq.seed = r->run.seed;
    cfg.luq.sample = ((uint64_t)s->id << 48) + ((uint64_t)step << 12);
    cfg.gemm = rc_gemm_hook(s);
    return cfg;
}

/* Entries of t[i0..i1) with fl32(t / scale) outside [lo, hi]. The vector
 * pass classifies v' = t · fl32(1 / scale), within 2^-22 |v| of fl32(t / scale);
 * the few entries whose v' lies within `margin` (far above that error) of
 * lo or hi are classified again with the division itself, so the count is
 * the division's. */
LB_ISA_CLONES
static int64_t count_clipped(const float *t, int64_t i0, int64_t i1, float scale, float lo,
                             float hi)
{
    const float r = 1.0f / scale;
    const float margin = 1e-5f * (fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi)) + 1e-30f;
    int64_t k = 0;
    int32_t clear_out = 0, near = 0; /* int32: i1 − i0 <= 65536 (the callers' tasks) */
    if (!(r <= FLT_MAX)) { /* a subnormal scale: no usable reciprocal */
        for (int64_t i = i0; i < i1; i++) {
            const float q = t[i] / scale;
            k += q < lo || q > hi;
        }
        return k;
    }
#pragma omp simd reduction(+ : clear_out, near)
    for (int64_t i = i0; i < i1; i++) {
        const float v = t[i] * r;
        const int32_t edge = (fabsf(v - lo) <= margin) | (fabsf(v - hi) <= margin);
        clear_out += ((v < lo) | (v > hi)) & !edge; /* bitwise: the loop vectorises */
        near += edge;
    }
    k = clear_out;
    if (near)
        for (int64_t i = i0; i < i1; i++) {
            const float v = t[i] * r;
            if (!(fabsf(v - lo) <= margin || fabsf(v - hi) <= margin)) continue;
            const float q = t[i] / scale;
            k += q < lo || q > hi;
        }
    return k;
}

/* Fraction of t (n) clipped by the grid [qn, qp] at this scale (a count:
 * the same on any thread count). */
static double clip_fraction(const float *t, int64_t n, float scale, int qn, int qp)
{
    if (!(scale > 0.0f) || n == 0) return 0.0;
    const float lo = (float)qn - 0.5f, hi = (float)qp + 0.5f;
    int64_t k = 0;
    const int64_t tasks = (n + 65535) / 65536;
#pragma omp parallel for schedule(static) reduction(+ : k) if (tasks > 1)
    for (int64_t task = 0; task < tasks; task++)
        k += count_clipped(t, task * 65536, (task + 1) * 65536 < n ? (task + 1) * 65536 : n, scale,
                           lo, hi);
    return (double)k / (double)n;
}

/* Entries of d[i0..i1) with 0 < |d| < alpha (under) and != 0 (nonzero). */
LB_ISA_CLONES
static void count_underflow(const float *d, int64_t i0, int64_t i1, float alpha, int64_t *under,
                            int64_t *nonzero)
{
    int32_t u = 0, z = 0; /* int32: i1 − i0 <= 65536 (the caller's tasks) */
#pragma omp simd reduction(+ : u, z)
    for (int64_t i = i0; i < i1; i++) {
        const float a = fabsf(d[i]);
        u += (a > 0.0f) & (a < alpha);
        z += a > 0.0f;
    }
    *under += u;
    *nonzero += z;
}

/* SAWB codes, scale and dequantized values of the weights (FNT): the cpu
 * quantizer on the cpu backend (same bits; the reference on any error). */
static lb_status sawb_weights(const rc_site *s, lb_ctx *ctx, const lb_sawb_params *pw,
                              const float *weight, size_t n, int8_t *codes, float *scale,
                              float *deq)
{
    if (s->fast && lb_sawb_quantize_cpu(ctx, pw, weight, n, codes, scale, deq) == LB_OK)
        return LB_OK;
    return lb_sawb_quantize_ref(ctx, pw, weight, n, codes, scale, deq);
}

/* FNT forward: Y = X Ŵ^T + b with Ŵ = SAWB-int4(W) dequantized (kept in s->w_deq). */
static lb_status fnt_forward(const rc_recipe *r, lb_ctx *ctx, const lb_backend *be, rc_site *s,
                             int training, float *out, const float *inp, const float *weight,
                             const float *bias, int64_t N, int64_t C, int64_t OC)
{
    lb_sawb_params pw = {LB_SAWB_C1, LB_SAWB_C2, 0, 1};
    lb_sawb_weight_range((lb_sawb_grid)r->opt.sawb_grid, &pw.qn, &pw.qp);
    lb_status st = rc_reserve_i8(ctx, &s->w_codes, &s->w_cap, (size_t)(OC * C));
    if (st == LB_OK) st = rc_reserve_f32(ctx, &s->w_deq, &s->w_deq_cap, (size_t)(OC * C));
    if (st == LB_OK)
        st = sawb_weights(s, ctx, &pw, weight, (size_t)(OC * C), s->w_codes, &s->w_scale,
                          s->w_deq);
    if (st != LB_OK) return st;
    be->linear_forward(out, inp, s->w_deq, bias, N, C, OC);
    if (training) {
        rc_stat(s, S_W_SCALE, s->w_scale);
        rc_stat(s, S_W_CLIP, clip_fraction(weight, OC * C, s->w_scale, pw.qn, pw.qp));
        rc_stat(s, S_FNT, 1.0);
    }
    return LB_OK;
}

static lb_status luq_forward(rc_recipe *r, lb_ctx *ctx, const lb_backend *be,
                             const lb_linear_site *where, rc_site *s, float *out, const float *inp,
                             const float *weight, const float *bias, int64_t N, int64_t C,
                             int64_t OC)
{
    const int fnt = where->training ? where->step >= r->fnt_start : r->steps_done > r->fnt_start;
    if (!where->training) {
        /* evaluation: scratch codes, the sticky flag only read */
        if (fnt) {
            lb_status st = LB_OK;
            float *wd = rc_scratch(r, ctx, 3, (size_t)(OC * C) * sizeof(float), &st);
            int8_t *wc = rc_scratch(r, ctx, 4, (size_t)(OC * C), &st);
            if (!wd || !wc) return st;
            lb_sawb_params pw = {LB_SAWB_C1, LB_SAWB_C2, 0, 1};
            lb_sawb_weight_range((lb_sawb_grid)r->opt.sawb_grid, &pw.qn, &pw.qp);
            float sw;
            st = sawb_weights(s, ctx, &pw, weight, (size_t)(OC * C), wc, &sw, wd);
            if (st != LB_OK) return st;
            be->linear_forward(out, inp, wd, bias, N, C, OC);
            return LB_OK;
        }
        const lb_qlinear_luq_config cfg = luq_config(r, s, where->step);
        lb_status st = LB_OK;
        int8_t *xc = rc_scratch(r, ctx, 4, (size_t)(N * C), &st);
        int8_t *wc = rc_scratch(r, ctx, 5, (size_t)(OC * C), &st);
        if (!xc || !wc) return st;
        int is_signed = s->act_signed;
        float sx, sw;
        return (s->fast ? lb_qlinear_luq_forward_cpu : lb_qlinear_luq_forward_ref)(
            ctx, &cfg, N, C, OC, inp, weight, bias, &is_signed, xc, &sx, wc, &sw, NULL, out);
    }
    s->has_forward = 0;
    if (fnt) {
        lb_status st = fnt_forward(r, ctx, be, s, 1, out, inp, weight, bias, N, C, OC);
        if (st != LB_OK) return st;
    } else {
        const lb_qlinear_luq_config cfg = luq_config(r, s, where->step);
        lb_status st = rc_reserve_i8(ctx, &s->x_codes, &s->x_cap, (size_t)(N * C));
        if (st == LB_OK) st = rc_reserve_i8(ctx, &s->w_codes, &s->w_cap, (size_t)(OC * C));
        if (st != LB_OK) return st;
        int is_signed = s->act_signed;
        st = (s->fast ? lb_qlinear_luq_forward_cpu : lb_qlinear_luq_forward_ref)(
            ctx, &cfg, N, C, OC, inp, weight, bias, &is_signed, s->x_codes, &s->x_scale,
            s->w_codes, &s->w_scale, NULL, out);
        if (st != LB_OK) return st;
        s->act_signed = is_signed;
        int qn, qp;
        lb_sawb_activation_range(cfg.grid, is_signed, &qn, &qp);
        rc_stat(s, S_X_SCALE, s->x_scale);
        rc_stat(s, S_X_CLIP, clip_fraction(inp, N * C, s->x_scale, qn, qp));
        lb_sawb_weight_range(cfg.grid, &qn, &qp);
        rc_stat(s, S_W_SCALE, s->w_scale);
        rc_stat(s, S_W_CLIP, clip_fraction(weight, OC * C, s->w_scale, qn, qp));
        rc_stat(s, S_FNT, 0.0);
    }
    s->fnt_forward = fnt;
    s->n = N, s->d = C, s->c = OC;
    s->has_forward = 1;
    return LB_OK;
}

static lb_status luq_backward(rc_recipe *r, lb_ctx *ctx, const lb_backend *be,
                              const lb_linear_site *where, rc_site *s, float *dinp,
                              float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, int64_t N, int64_t C, int64_t OC)
{
    (void)weight;
    if (!s->has_forward || s->n != N || s->d != C || s->c != OC)
        return lb_error(ctx, LB_ERR_ARG, "luq recipe: backward without a matching forward");
    if (s->fnt_forward) {
        be->linear_backward(dinp, dweight, dbias, dout, inp, s->w_deq, N, C, OC);
        return LB_OK;
    }
    lb_status st = LB_OK;
    float *gx = rc_scratch(r, ctx, 0, (size_t)(N * C) * sizeof(float), &st);
    float *gw = rc_scratch(r, ctx, 1, (size_t)(OC * C) * sizeof(float), &st);
    float *gb = rc_scratch(r, ctx, 2, (size_t)(OC > 0 ? OC : 1) * sizeof(float), &st);
    if (!gx || !gw || !gb) return st;
    const lb_qlinear_luq_config cfg = luq_config(r, s, where->step);
    float alpha = 0.0f;
    st = (s->fast ? lb_qlinear_luq_backward_cpu : lb_qlinear_luq_backward_ref)(
        ctx, &cfg, N, C, OC, dout, s->x_codes, s->x_scale, s->w_codes, s->w_scale, gx, gw,
        dbias ? gb : NULL, &alpha);
    if (st != LB_OK) return st;
    if (dinp) rc_accumulate(dinp, gx, N * C);
    rc_accumulate(dweight, gw, OC * C);
    if (dbias) rc_accumulate(dbias, gb, OC);
    int64_t under = 0, nonzero = 0;
    const int64_t n = N * OC, tasks = (n + 65535) / 65536;
#pragma omp parallel for schedule(static) reduction(+ : under, nonzero) if (tasks > 1)
    for (int64_t t = 0; t < tasks; t++)
        count_underflow(dout, t * 65536, (t + 1) * 65536 < n ? (t + 1) * 65536 : n, alpha, &under,
                        &nonzero);
    rc_stat(s, S_ALPHA, alpha);
    rc_stat(s, S_UNDERFLOW, nonzero > 0 ? (double)under / (double)nonzero : 0.0);
    return LB_OK;
}

const rc_ops rc_luq_ops = {
    .kind = RC_LUQ,
    .name = "luq",
    .stat_names = luq_stats,
    .default_fp_mask = (1u << LB_LINEAR_HEAD) | (1u << LB_LINEAR_LM),
    .forward = luq_forward,
    .backward = luq_backward,
    .optimizer_step = NULL,
};
