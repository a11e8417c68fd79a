/* models/recipe_hq.c — the "hq" training recipe: Xi, Li, Chen, Zhu,
 * "Training Transformers with 4-bit Integers" (NeurIPS 2023), spec
 * int4_training.md §A. Every quantized linear layer is the oracle layer
 * lowbit/ref/qlinear_hq.h (HQ forward, BS + LSS backward, all three GEMMs on
 * int4 values with int32 accumulation) on the ref backend and its cpu twin
 * lowbit/cpu_qlinear.h (same bits) on the cpu backend; the recipe supplies the integer GEMM
 * (oracle or cpu kernels, same bits), keeps per-layer state, learns the LSQ
 * steps and records statistics.
 *
 * Per layer (X (N, C), W (OC, C); the oracle's D = C, C = OC):
 *   config      lb_hq_config_default (paper: [-7, 7], ties to even) or, with
 *               lsq-range code, [-8, 7] with ties away (the authors' kernels);
 *               bit-split clean|code, lss bernoulli|nonzero|all;
 *               seed = the training seed, layer = the site id (streams
 *               lb_hq_backward_streams(site, step)).
 *   block       searched on the first training batch (A.5) or hq-block — the
 *               largest power of two <= hq-block dividing D (D = 49 of the
 *               vit patch layer only takes 1).
 *   cold start  (XiP A.4, A.5: pre-training from scratch) for the first
 *               lsq-cold-steps steps (default: the warm-up) the block and
 *               both LSQ steps are re-initialised from each training batch
 *               and not learned; afterwards they are fixed / learned.
 *   LSQ steps   learned with the gradients of the oracle's backward by AdamW
 *               without weight decay (the authors' code trains them in the
 *               model's optimizer), lr = lsq-lr × the model's lr (default 1,
 *               as the authors), moments in double, bias corrections for
 *               t = step − cold + 1; the steps are float32 and the forward
 *               uses |s| (the authors' rule).
 *   evaluation  a scratch state with the learned block and steps, so
 *               evaluating never changes what training saved or learned.
 *   backward    ∇X, ∇W, ∇b of the oracle, added to the model's gradients.
 * Ablation bit-split none: ∇Y quantized to one int4 tensor by stochastic
 * rounding (oracle uniform quantizer: 4 bits, [-7, 7], scale max|∇Y|/7,
 * stream xi.bs of the site and step), both backward GEMMs over all rows
 * (int32), then the same LSQ masks, step gradients and inverse Hadamard as
 * the oracle layer (steps 5-7 of lowbit/ref/qlinear_hq.h).
 * Statistics per layer: block (the current one), x_step, w_step, x_clip and w_clip (fraction
 * of quotients outside the LSQ range, i.e. the STE mask's zeros), g_scale
 * (s↓, the fine BS step; the int4 step in the none ablation), lss_kept_w
 * and lss_kept_x (kept fraction of the 2N stacked rows of the ∇W and ∇X
 * GEMMs; 1 for all, ½ for none).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/cpu_qlinear.h"
#include "lowbit/rng.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/lsq.h"
#include "lowbit/ref/uniform_quantizer.h"
#include "recipe_internal.h"
#include "../runtime/clones.h"

enum { S_BLOCK, S_X_STEP, S_W_STEP, S_X_CLIP, S_W_CLIP, S_G_SCALE, S_KEPT_W, S_KEPT_X };
static const char *const hq_stats[RC_MAX_STATS] = {
    "block", "x_step", "w_step", "x_clip", "w_clip", "g_scale", "lss_kept_w", "lss_kept_x", NULL};

/* The largest power of two <= want that divides D (>= 1). */
static int64_t fit_block(int64_t want, int64_t D)
{
    int64_t b = 1;
    while (b * 2 <= want && D % (b * 2) == 0) b *= 2;
    return b;
}

static void hq_config(const rc_recipe *r, rc_site *s, int64_t D, lb_hq_config *cfg)
{
    lb_hq_config_default(cfg);
    if (r->opt.lsq_range == LB_LSQ_RANGE_CODE) {
        cfg->range = LB_LSQ_RANGE_CODE;
        cfg->rounding = LB_ROUND_HALF_AWAY;
    }
    cfg->block = r->opt.hq_block > 0 ? fit_block(r->opt.hq_block, D) : 0;
    cfg->bit_split = r->opt.bit_split == LB_RECIPE_BS_CODE ? LB_BS_CODE : LB_BS_CLEAN;
    cfg->sampling = (lb_lss_mode)r->opt.lss;
    cfg->seed = r->run.seed;
    cfg->layer = s->id;
    cfg->gemm = rc_gemm_hook(s);
}

/* Quotients of v[i0..i1) outside [lo, hi]. */
LB_ISA_CLONES
static int64_t count_outside(const float *v, int64_t i0, int64_t i1, float lo, float hi)
{
    int32_t k = 0; /* int32: i1 − i0 <= 65536 (the caller's tasks) */
#pragma omp simd reduction(+ : k)
    for (int64_t i = i0; i < i1; i++) k += (v[i] < lo) | (v[i] > hi);
    return k;
}

/* Fraction of quotients outside [-Qn, Qp] (where the STE passes nothing); a
 * count, the same on any thread count. */
static double clip_fraction(lb_lsq_range range, const float *v, int64_t n)
{
    const float lo = -(float)lb_lsq_qn(range), hi = (float)LB_LSQ_QP;
    int64_t k = 0;
    const int64_t tasks = (n + 65535) / 65536;
#pragma omp parallel for schedule(static) reduction(+ : k) if (tasks > 1)
    for (int64_t t = 0; t < tasks; t++)
        k += count_outside(v, t * 65536, (t + 1) * 65536 < n ? (t + 1) * 65536 : n, lo, hi);
    return n ? (double)k / (double)n : 0.0;
}

static lb_status hq_forward(rc_recipe *r, lb_ctx *ctx, const lb_backend *be,
                            const lb_linear_site *where, rc_site *s, float *out, const float *inp,
                            const float *weight, const float *bias, int64_t N, int64_t C,
                            int64_t OC)
{
    (void)be;
    lb_hq_config cfg;
    hq_config(r, s, C, &cfg);
    if (!where->training) {
        /* evaluation: the learned block and steps in a scratch state */
        lb_hq_state *e = s->hq_eval;
        e->block = s->hq->block;
        e->initialized = s->hq->initialized;
        e->step_x = s->hq->step_x;
        e->step_w = s->hq->step_w;
        return (s->fast ? lb_qlinear_hq_forward_cpu : lb_qlinear_hq_forward_ref)(
            ctx, &cfg, e, N, C, OC, inp, weight, bias, out, NULL);
    }
    lb_hq_state *st = s->hq;
    if (where->step < r->cold_steps) {
        /* cold start: re-initialise the steps (and the searched block) from this batch */
        st->initialized = 0;
        if (cfg.block == 0) st->block = 0;
    }
    s->has_grad = 0;
    lb_status status = (s->fast ? lb_qlinear_hq_forward_cpu : lb_qlinear_hq_forward_ref)(
        ctx, &cfg, st, N, C, OC, inp, weight, bias, out, NULL);
    if (status != LB_OK) return status;
    rc_stat_last(s, S_BLOCK, (double)st->block);
    rc_stat(s, S_X_STEP, st->used_step_x);
    rc_stat(s, S_W_STEP, st->used_step_w);
    rc_stat(s, S_X_CLIP, clip_fraction(cfg.range, st->x_quotient, N * C));
    rc_stat(s, S_W_CLIP, clip_fraction(cfg.range, st->w_quotient, OC * C));
    return LB_OK;
}

/* In place: g (n) = the LSQ-masked g, *grad_step = ∂L/∂s, as the oracle
 * layer's step 5 (lb_lsq_backward_cpu on the cpu backend: same bits, and it
 * hands what it does not take to the reference itself). */
static lb_status lsq_backward(const rc_site *s, const lb_hq_config *cfg, lb_ctx *ctx, int64_t n,
                              const float *quotient, float *g, float *grad_step)
{
    if (s->fast) return lb_lsq_backward_cpu(ctx, cfg->range, cfg->rounding, n, quotient, g, g, grad_step);
    return lb_lsq_backward_ref(ctx, cfg->range, cfg->rounding, n, quotient, g, g, grad_step);
}

/* In place: g (rows, D) = g·H_block, as the oracle layer's step 6
 * (lb_hadamard_cpu on the cpu backend, same bits). g is finite here: the
 * LSQ backward before it rejects NaN and ±Inf, so the cpu transform does
 * not stop halfway through an in-place pass; the reference takes whatever
 * else it refuses (a bad block). */
static lb_status hadamard(const rc_site *s, lb_ctx *ctx, int64_t rows, int64_t D, int64_t block,
                          float *g)
{
    if (s->fast && lb_hadamard_cpu(ctx, rows, D, block, g, g) == LB_OK) return LB_OK;
    return lb_hadamard_ref(ctx, rows, D, block, g, g);
}

/* The ablation without bit splitting: ∇Y as one SR int4 tensor (see top). */
static lb_status backward_no_split(rc_recipe *r, lb_ctx *ctx, const lb_hq_config *cfg,
                                   rc_site *s, int64_t step, const float *dout, float *gx,
                                   float *gw, float *gsx, float *gsw, float *g_scale)
{
    const lb_hq_state *hs = s->hq;
    const int64_t N = hs->n, D = hs->d, C = hs->c;
    lb_status st = LB_OK;
    int32_t *i32 = rc_scratch(r, ctx, 3, (size_t)(N * C > 1 ? N * C : 1) * sizeof(int32_t), &st);
    int8_t *g = rc_scratch(r, ctx, 4, (size_t)(N * C), &st);
    int32_t *z = rc_scratch(r, ctx, 5, (size_t)(N * D > C * D ? N * D : C * D) * sizeof(int32_t),
                            &st);
    if (!i32 || !g || !z) return st;
    lb_uniform_config q = lb_uniform_config_default();
    q.bits = 4;
    q.rounding = LB_ROUND_STOCHASTIC;
    q.seed = r->run.seed;
    q.stream = lb_hq_backward_streams(s->id, (uint64_t)step).bit_split;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < N * C; i++) {
        if (!isfinite(dout[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "hq recipe: non-finite gradient at %lld",
                            (long long)i);
        if (dout[i] < lo) lo = dout[i];
        if (dout[i] > hi) hi = dout[i];
    }
    float scale;
    if ((st = lb_uniform_qparams_ref(ctx, &q, 1, &lo, &hi, &scale, NULL)) != LB_OK) return st;
    const lb_qgroups grp = {1, 1, N * C};
    if ((st = lb_uniform_quantize_ref(ctx, &q, &grp, dout, &scale, NULL, i32)) != LB_OK) return st;
    for (int64_t i = 0; i < N * C; i++) g[i] = (int8_t)i32[i];
    *g_scale = scale;
    /* G_X (N, D) = s_W Δ (G Ŵ), G_W (C, D) = s_X Δ (G^T X̂) in the Hadamard domain */
    if ((st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 0, 0, N, D, C, g, hs->w_codes, z)) != LB_OK)
        return st;
    const double cx = (double)hs->used_step_w * (double)scale;
    for (int64_t k = 0; k < N * D; k++) gx[k] = (float)(cx * (double)z[k]);
    if ((st = lb_gemm_i8_hooked(&cfg->gemm, ctx, 1, 0, C, D, N, g, hs->x_codes, z)) != LB_OK)
        return st;
    const double cw = (double)hs->used_step_x * (double)scale;
    for (int64_t k = 0; k < C * D; k++) gw[k] = (float)(cw * (double)z[k]);
    /* LSQ masks and step gradients, then back from the Hadamard domain */
    st = lsq_backward(s, cfg, ctx, N * D, hs->x_quotient, gx, gsx);
    if (st == LB_OK) st = lsq_backward(s, cfg, ctx, C * D, hs->w_quotient, gw, gsw);
    if (st == LB_OK) st = hadamard(s, ctx, N, D, hs->block, gx);
    if (st == LB_OK) st = hadamard(s, ctx, C, D, hs->block, gw);
    return st;
}

static lb_status hq_backward(rc_recipe *r, lb_ctx *ctx, const lb_backend *be,
                             const lb_linear_site *where, rc_site *s, float *dinp, float *dweight,
                             float *dbias, const float *dout, const float *inp,
                             const float *weight, int64_t N, int64_t C, int64_t OC)
{
    (void)be, (void)inp, (void)weight;
    const lb_hq_state *hs = s->hq;
    if (!hs->has_forward || hs->n != N || hs->d != C || hs->c != OC)
        return lb_error(ctx, LB_ERR_ARG, "hq recipe: backward without a matching forward");
    lb_hq_config cfg;
    hq_config(r, s, C, &cfg);
    lb_status st = LB_OK;
    float *gx = rc_scratch(r, ctx, 0, (size_t)(N * C) * sizeof(float), &st);
    float *gw = rc_scratch(r, ctx, 1, (size_t)(OC * C) * sizeof(float), &st);
    uint8_t *masks = rc_scratch(r, ctx, 2, (size_t)(4 * N), &st);
    if (!gx || !gw || !masks) return st;
    float gsx = 0.0f, gsw = 0.0f, g_scale = 0.0f;
    double kept_w = 0.5, kept_x = 0.5;
    if (r->opt.bit_split == LB_RECIPE_BS_NONE) {
        st = backward_no_split(r, ctx, &cfg, s, where->step, dout, gx, gw, &gsx, &gsw, &g_scale);
        if (st != LB_OK) return st;
        if (dbias) rc_bias_grad(dbias, dout, N, OC);
    } else {
        float *gb = rc_scratch(r, ctx, 3, (size_t)(OC > 0 ? OC : 1) * sizeof(float), &st);
        if (!gb) return st;
        lb_hq_backward_trace trace;
        memset(&trace, 0, sizeof trace);
        trace.mask_weight = masks;
        trace.mask_input = masks + 2 * N;
        /* the cpu backend sums ∇b itself on threads (the oracle's order) */
        const int own_bias = dbias && s->fast;
        st = (s->fast ? lb_qlinear_hq_backward_cpu : lb_qlinear_hq_backward_ref)(
            ctx, &cfg, hs, (uint64_t)where->step, dout, gx, gw, dbias && !own_bias ? gb : NULL,
            &gsx, &gsw, &trace);
        if (st != LB_OK) return st;
        if (own_bias)
            rc_bias_grad(dbias, dout, N, OC);
        else if (dbias)
            rc_accumulate(dbias, gb, OC);
        g_scale = trace.fine_scale;
        int64_t kw = 0, kx = 0;
        for (int64_t i = 0; i < 2 * N; i++) kw += masks[i], kx += masks[2 * N + i];
        kept_w = N ? (double)kw / (double)(2 * N) : 0.0;
        kept_x = N ? (double)kx / (double)(2 * N) : 0.0;
    }
    if (dinp) rc_accumulate(dinp, gx, N * C);
    rc_accumulate(dweight, gw, OC * C);
    s->grad_step_x = gsx;
    s->grad_step_w = gsw;
    s->has_grad = 1;
    rc_stat(s, S_G_SCALE, g_scale);
    rc_stat(s, S_KEPT_W, kept_w);
    rc_stat(s, S_KEPT_X, kept_x);
    return LB_OK;
}

/* One AdamW step (no weight decay) of a learned step size. */
static float adam_step(float s, double g, double *m, double *v, const lb_recipe_update *u,
                       double lr, int64_t t)
{
    *m = u->beta1 * *m + (1.0 - u->beta1) * g;
    *v = u->beta2 * *v + (1.0 - u->beta2) * g * g;
    const double bc1 = 1.0 - pow(u->beta1, (double)t), bc2 = 1.0 - pow(u->beta2, (double)t);
    return (float)((double)s - lr * (*m / bc1) / (sqrt(*v / bc2) + u->eps));
}

static lb_status hq_optimizer_step(rc_recipe *r, lb_ctx *ctx, const lb_recipe_update *u)
{
    (void)ctx;
    const double lr = u->lr * (r->opt.lsq_lr > 0 ? r->opt.lsq_lr : 1.0);
    for (size_t i = 0; i < r->n_sites; i++) {
        rc_site *s = r->sites[i];
        if (!s->hq || !s->has_grad) continue;
        s->has_grad = 0;
        if (u->step < r->cold_steps) continue; /* re-initialised from the data, not learned */
        const int64_t t = u->step - r->cold_steps + 1;
        const double gx = (double)s->grad_step_x * u->grad_scale;
        const double gw = (double)s->grad_step_w * u->grad_scale;
        s->hq->step_x = adam_step(s->hq->step_x, gx, &s->adam_mx, &s->adam_vx, u, lr, t);
        s->hq->step_w = adam_step(s->hq->step_w, gw, &s->adam_mw, &s->adam_vw, u, lr, t);
    }
    return LB_OK;
}

const rc_ops rc_hq_ops = {
    .kind = RC_HQ,
    .name = "hq",
    .stat_names = hq_stats,
    .default_fp_mask = (1u << LB_LINEAR_HEAD) | (1u << LB_LINEAR_LM),
    .forward = hq_forward,
    .backward = hq_backward,
    .optimizer_step = hq_optimizer_step,
};
