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
 *   forward   the oracle forward; in training the layer's signed-activation
 *             flag is updated (the authors' sticky rule), in evaluation it is
 *             only read.
 *   backward  the oracle backward (∇b from the quantized δ, as the authors'
 *             code), added to the model's gradients.
 *   FNT       (LuP §5.2, spec B.5) training steps >= steps − fnt-steps, and
 *             evaluations after the first of them: Y = X · Ŵ^T + b in float32
 *             with Ŵ the SAWB-int4 weights (dequantized, lb_sawb_quantize_ref),
 *             and the float32 backward through Ŵ (∇W straight-through); the
 *             learning rate follows lb_fnt_lr (lowbit/train.h's schedule).
 *             "Everything in high precision except the weights".
 * Statistics per layer: x_scale, w_scale (SAWB steps), x_clip and w_clip
 * (fraction of entries beyond the SAWB clip, |t / scale| past the grid by
 * more than ½), alpha (LUQ's α = max|∇Y| / 2^(L−1)), underflow (fraction of
 * the non-zero ∇Y entries with |δ| < α, the ones stochastic underflow sends
 * to 0 or ±α), fnt (1 during FNT).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/ref/qlinear_luq.h"
#include "recipe_internal.h"

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
    if (s->fast) cfg.quant = rc_luq_cpu_quant();
    return cfg;
}

/* Fraction of t (n) clipped by the grid [qn, qp] at this scale. */
static double clip_fraction(const float *t, int64_t n, float scale, int qn, int qp)
{
    if (!(scale > 0.0f) || n == 0) return 0.0;
    const float lo = (float)qn - 0.5f, hi = (float)qp + 0.5f;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        const float v = t[i] / scale;
        k += v < lo || v > hi;
    }
    return (double)k / (double)n;
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
        st = lb_sawb_quantize_ref(ctx, &pw, weight, (size_t)(OC * C), s->w_codes, &s->w_scale,
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
            st = lb_sawb_quantize_ref(ctx, &pw, weight, (size_t)(OC * C), wc, &sw, wd);
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
        return lb_qlinear_luq_forward_ref(ctx, &cfg, N, C, OC, inp, weight, bias, &is_signed, xc,
                                          &sx, wc, &sw, NULL, out);
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
        st = lb_qlinear_luq_forward_ref(ctx, &cfg, N, C, OC, inp, weight, bias, &is_signed,
                                        s->x_codes, &s->x_scale, s->w_codes, &s->w_scale, NULL,
                                        out);
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
    st = lb_qlinear_luq_backward_ref(ctx, &cfg, N, C, OC, dout, s->x_codes, s->x_scale,
                                     s->w_codes, s->w_scale, gx, gw, dbias ? gb : NULL, &alpha);
    if (st != LB_OK) return st;
    if (dinp) rc_accumulate(dinp, gx, N * C);
    rc_accumulate(dweight, gw, OC * C);
    if (dbias) rc_accumulate(dbias, gb, OC);
    int64_t under = 0, nonzero = 0;
    for (int64_t i = 0; i < N * OC; i++) {
        const float a = fabsf(dout[i]);
        under += a > 0.0f && a < alpha;
        nonzero += a > 0.0f;
    }
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
