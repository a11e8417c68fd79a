/* models/recipe_int8.c — the "int8" training recipe: the simple low-bit
 * baseline (in the spirit of Banner et al. 2018, the INT8 column of Xi et
 * al. Table 1), every linear layer's three GEMMs on symmetric per-tensor
 * int8 with int32 accumulation.
 *
 * Per layer Y = X W^T + b (X (N, C), W (OC, C), Y (N, OC)):
 *   quantizer   the oracle lb_uniform_*_ref (on the cpu backend the fused
 *               lb_uniform_minmax_quantize_s8_cpu, same bits): 8 bits, symmetric narrow
 *               [-127, 127], one scale per tensor Δ = max(max|t| / 127, 1e-8)
 *               (float32), code = clamp(rint(t / Δ))
 *   forward     X_q, W_q by round to nearest, ties to even;
 *               Z = X_q W_q^T (int32), Y = fl32(fl32(Δ_X Δ_W) · fl32(Z)) + b
 *   backward    G = SR codes of ∇Y (floor(v + u), u = lb_rng_uniform_f32(seed,
 *               lb_rng_stream("int8.grad", site·2^32 + step), flat index));
 *               ∇X += fl32(Δ_G Δ_W) · fl32(G · W_q)      (int32, reduction OC)
 *               ∇W += fl32(Δ_G Δ_X) · fl32(G^T · X_q)    (int32, reduction N)
 *               ∇b += Σ_n ∇Y (float ∇Y, summed in double in increasing n)
 *   The forward codes are reused by the backward (straight-through: no clip
 *   mask, and nothing is clipped because the scale comes from the max).
 * Statistics per layer: x_scale, w_scale, g_scale (Δ of ∇Y) and g_zero (the
 * fraction of the non-zero ∇Y entries whose code is 0).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/rng.h"
#include "lowbit/ref/uniform_quantizer.h"
#include "recipe_internal.h"
#include "../runtime/clones.h"
#include "../cpu/loops.h"

enum { S_X_SCALE, S_W_SCALE, S_G_SCALE, S_G_ZERO };
static const char *const int8_stats[RC_MAX_STATS] = {"x_scale", "w_scale", "g_scale", "g_zero",
                                                     NULL};

/* Symmetric per-tensor int8 of t (n): codes (n) and the scale; `i32` is an
 * (n) int32 work buffer. Non-finite input gives LB_ERR_NUMERIC. `fast`: the
 * fused cpu quantizer (lowbit/cpu_quant.h), bit for bit the same. */
static lb_status quantize_int8(lb_ctx *ctx, int fast, const lb_uniform_config *q, const float *t,
                               int64_t n, int32_t *i32, int8_t *codes, float *scale)
{
    if (fast) return lb_uniform_minmax_quantize_s8_cpu(ctx, q, n, t, codes, scale);
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(t[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "int8 recipe: non-finite value %g at %lld",
                            (double)t[i], (long long)i);
        if (t[i] < lo) lo = t[i];
        if (t[i] > hi) hi = t[i];
    }
    lb_status st = lb_uniform_qparams_ref(ctx, q, 1, &lo, &hi, scale, NULL);
    if (st != LB_OK) return st;
    const lb_qgroups g = {1, 1, n};
    st = lb_uniform_quantize_ref(ctx, q, &g, t, scale, NULL, i32);
    if (st != LB_OK) return st;
    for (int64_t i = 0; i < n; i++) codes[i] = (int8_t)i32[i];
    return LB_OK;
}

/* Elements per task of the loops below. */
#define CHUNK 65536

/* dst[i0..i1) += c · fl32(z). */
LB_ISA_CLONES
static void dequant_add(float *dst, const int32_t *z, float c, int64_t i0, int64_t i1)
{
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) dst[i] += c * (float)z[i];
}

/* Non-zero ∇Y entries in [i0, i1), and those of them whose code is 0. */
LB_ISA_CLONES
static void count_zero_codes(const float *dout, const int8_t *g, int64_t i0, int64_t i1,
                             int64_t *nonzero, int64_t *zeros)
{
    int32_t nz = 0, z = 0; /* int32: i1 − i0 <= CHUNK */
#pragma omp simd reduction(+ : nz, z)
    for (int64_t i = i0; i < i1; i++) {
        nz += dout[i] != 0.0f;
        z += (g[i] == 0) & (dout[i] != 0.0f);
    }
    *nonzero += nz;
    *zeros += z;
}

static void dequant_add_par(float *dst, const int32_t *z, float c, int64_t n)
{
    const int64_t tasks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (tasks > 1)
    for (int64_t t = 0; t < tasks; t++)
        dequant_add(dst, z, c, t * CHUNK, (t + 1) * CHUNK < n ? (t + 1) * CHUNK : n);
}

static lb_status int8_forward(rc_recipe *r, lb_ctx *ctx, const lb_backend *be,
                              const lb_linear_site *where, rc_site *s, float *out, const float *inp,
                              const float *weight, const float *bias, int64_t N, int64_t C,
                              int64_t OC)
{
    (void)be;
    lb_status st = LB_OK;
    const lb_uniform_config q = lb_uniform_config_default(); /* 8 bits, narrow, ties to even */
    const size_t big = (size_t)(N * C > OC * C ? N * C : OC * C);
    int32_t *i32 = rc_scratch(r, ctx, 0, big * sizeof(int32_t), &st);
    if (!i32) return st;
    /* training saves the codes for the backward; evaluation uses scratch */
    int8_t *xq, *wq;
    float sx, sw;
    if (where->training) {
        s->has_forward = 0;
        if ((st = rc_reserve_i8(ctx, &s->x_codes, &s->x_cap, (size_t)(N * C))) != LB_OK) return st;
        if ((st = rc_reserve_i8(ctx, &s->w_codes, &s->w_cap, (size_t)(OC * C))) != LB_OK) return st;
        xq = s->x_codes, wq = s->w_codes;
    } else {
        xq = rc_scratch(r, ctx, 3, (size_t)(N * C), &st);
        wq = rc_scratch(r, ctx, 4, (size_t)(OC * C), &st);
        if (!xq || !wq) return st;
    }
    if ((st = quantize_int8(ctx, s->fast, &q, inp, N * C, i32, xq, &sx)) != LB_OK) return st;
    if ((st = quantize_int8(ctx, s->fast, &q, weight, OC * C, i32, wq, &sw)) != LB_OK) return st;
    /* out = fl32(s_x s_w) · fl32(Z) + b, Z (N, OC) = X_q (N, C) · W_q (OC, C)^T
     * (not kept: the epilogue runs on each tile of Z) */
    const lb_gemm_i8_hook h = rc_gemm_hook(s);
    const lb_gemm_i8_dequant dq = {out, sx * sw, bias};
    st = lb_gemm_i8_hooked_dequant(&h, ctx, 0, 1, N, OC, C, xq, wq, NULL, &dq);
    if (st != LB_OK) return st;
    if (!where->training) return LB_OK;
    s->x_scale = sx, s->w_scale = sw;
    s->n = N, s->d = C, s->c = OC;
    s->has_forward = 1;
    rc_stat(s, S_X_SCALE, sx);
    rc_stat(s, S_W_SCALE, sw);
    return LB_OK;
}

static lb_status int8_backward(rc_recipe *r, lb_ctx *ctx, const lb_backend *be,
                               const lb_linear_site *where, rc_site *s, float *dinp,
                               float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, int64_t N, int64_t C, int64_t OC)
{
    (void)be, (void)inp, (void)weight;
    if (!s->has_forward || s->n != N || s->d != C || s->c != OC)
        return lb_error(ctx, LB_ERR_ARG, "int8 recipe: backward without a matching forward");
    lb_status st = LB_OK;
    lb_uniform_config q = lb_uniform_config_default();
    q.rounding = LB_ROUND_STOCHASTIC;
    q.seed = r->run.seed;
    q.stream = lb_rng_stream("int8.grad", rc_site_step(s, where->step));
    const int64_t NO = N * OC;
    int32_t *i32 = rc_scratch(r, ctx, 0, (size_t)NO * sizeof(int32_t), &st);
    int8_t *g = rc_scratch(r, ctx, 2, (size_t)NO, &st);
    int32_t *z = rc_scratch(r, ctx, 1, (size_t)(N * C > OC * C ? N * C : OC * C) * sizeof(int32_t),
                            &st);
    if (!i32 || !g || !z) return st;
    float g_scale;
    if ((st = quantize_int8(ctx, s->fast, &q, dout, NO, i32, g, &g_scale)) != LB_OK) return st;
    int64_t zeros = 0, nonzero = 0;
    {
        const int64_t tasks = (NO + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) reduction(+ : zeros, nonzero) if (tasks > 1)
        for (int64_t t = 0; t < tasks; t++)
            count_zero_codes(dout, g, t * CHUNK, (t + 1) * CHUNK < NO ? (t + 1) * CHUNK : NO,
                             &nonzero, &zeros);
    }
    const lb_gemm_i8_hook h = rc_gemm_hook(s);
    if (dinp) {
        /* ∇X (N, C) = G (N, OC) · W_q (OC, C) */
        if ((st = lb_gemm_i8_hooked(&h, ctx, 0, 0, N, C, OC, g, s->w_codes, z)) != LB_OK) return st;
        dequant_add_par(dinp, z, g_scale * s->w_scale, N * C);
    }
    /* ∇W (OC, C) = G^T (OC, N) · X_q (N, C) */
    if ((st = lb_gemm_i8_hooked(&h, ctx, 1, 0, OC, C, N, g, s->x_codes, z)) != LB_OK) return st;
    dequant_add_par(dweight, z, g_scale * s->x_scale, OC * C);
    if (dbias) rc_bias_grad(dbias, dout, N, OC);
    rc_stat(s, S_G_SCALE, g_scale);
    rc_stat(s, S_G_ZERO, nonzero > 0 ? (double)zeros / (double)nonzero : 0.0);
    return LB_OK;
}

const rc_ops rc_int8_ops = {
    .kind = RC_INT8,
    .name = "int8",
    .stat_names = int8_stats,
    .default_fp_mask = 0,
    .forward = int8_forward,
    .backward = int8_backward,
    .optimizer_step = NULL,
};
