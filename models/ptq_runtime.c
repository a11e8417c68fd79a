/* models/ptq_runtime.c — the runtime of a quantized model: activation
 * quantizers at the model's taps (calibration and fake-quant in place), the
 * quantized linear layers behind the recipe seam (float fake-quant oracle or
 * integer GEMMs), see lowbit/ptq.h for the arithmetic. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/ref/int_gemm.h"
#include "lowbit/ref/power_quantizer.h"
#include "ptq_internal.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

ptq_act *ptq_act_at(ptq_runtime *rt, int site, int layer)
{
    if (site < 0 || site >= PTQ_N_SITES || layer < -1 || layer >= rt->cfg.n_layer) return NULL;
    return &rt->acts[site * (rt->cfg.n_layer + 1) + layer + 1];
}

ptq_linear *ptq_linear_at(ptq_runtime *rt, lb_linear_role role, int layer)
{
    if ((int)role < 0 || (int)role >= PTQ_N_ROLES || layer < -1 || layer >= rt->cfg.n_layer)
        return NULL;
    return &rt->lin[(int)role * (rt->cfg.n_layer + 1) + layer + 1];
}

void ptq_input_site(const lb_model_config *cfg, lb_linear_role role, int layer, int *site,
                    int *site_layer)
{
    const int post_ln = cfg->kind == LB_MODEL_BERT;
    *site_layer = layer;
    switch (role) {
    case LB_LINEAR_PATCH: *site = PTQ_SITE_PATCH_IN, *site_layer = -1; break;
    case LB_LINEAR_QKV:
        if (!post_ln) {
            *site = LB_TAP_LN1;
        } else if (layer > 0) {
            *site = LB_TAP_LN2, *site_layer = layer - 1;
        } else {
            *site = cfg->embed_ln ? LB_TAP_EMBED_LN : LB_TAP_EMBED, *site_layer = -1;
        }
        break;
    case LB_LINEAR_PROJ: *site = LB_TAP_ATTN_OUT; break;
    case LB_LINEAR_FC1: *site = post_ln ? LB_TAP_LN1 : LB_TAP_LN2; break;
    case LB_LINEAR_FC2: *site = LB_TAP_GELU; break;
    default: *site = -1, *site_layer = -1; break; // heads: float input
    }
}

/* ------------------------------------------------------------ the recipe */

static lb_status grow(lb_ctx *ctx, void **p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap) return LB_OK;
    lb_free(*p);
    *p = lb_alloc(bytes);
    *cap = *p ? bytes : 0;
    if (!*p) return lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    return LB_OK;
}

static lb_uniform_config act_config(const ptq_runtime *rt)
{
    lb_uniform_config u = lb_uniform_config_default();
    u.bits = rt->opts.abits;
    u.symmetric = 0;
    return u;
}

/* Running-range update of one quantizer from the rows of x (rows, cols)
 * whose mask entry is non-zero (mask NULL: all rows), then its qparams. */
static lb_status calibrate(lb_ctx *ctx, ptq_runtime *rt, ptq_act *q, const float *x,
                           int64_t rows, int64_t cols, const uint8_t *mask)
{
    float blo = 0, bhi = 0;
    if (rt->opts.act_range == LB_RANGE_PERCENTILE) {
        // gather the valid rows, then NumPy's linear percentile over them
        int64_t n = 0;
        TRY(grow(ctx, (void **)&rt->xf, &rt->xf_cap, (size_t)(rows * cols) * sizeof(float)));
        for (int64_t r = 0; r < rows; r++)
            if (!mask || mask[r]) {
                memcpy(rt->xf + n * cols, x + r * cols, (size_t)cols * sizeof(float));
                n++;
            }
        if (n == 0) return LB_OK;
        const lb_qgroups g = {1, 1, n * cols};
        TRY(lb_range_percentile_ref(ctx, &g, rt->xf, rt->opts.act_percentile, &blo, &bhi));
    } else {
        int any = 0;
        for (int64_t r = 0; r < rows; r++) {
            if (mask && !mask[r]) continue;
            const float *v = x + r * cols;
            for (int64_t c = 0; c < cols; c++) {
                if (!isfinite(v[c]))
                    return lb_error(ctx, LB_ERR_NUMERIC, "ptq calibration: non-finite activation");
                if (!any) blo = bhi = v[c], any = 1;
                if (v[c] < blo) blo = v[c];
                if (v[c] > bhi) bhi = v[c];
            }
        }
        if (!any) return LB_OK;
    }
    TRY(lb_range_running_update_ref(ctx, &q->rr, 1, &blo, &bhi, &q->lo, &q->hi));
    const lb_uniform_config u = act_config(rt);
    TRY(lb_uniform_qparams_ref(ctx, &u, 1, &q->lo, &q->hi, &q->scale, &q->zero));
    q->have = 1;
    return LB_OK;
}

int ptq_act_quantize(const float *x, int64_t n, float scale, int32_t zero, int bits,
                     float *xhat, int8_t *codes)
{
    // lb_uniform_code's rule (ties to even, then + z, clamped to [0, 2^b - 1])
    // written as clamp(x / Δ, -z, L - z), round, + z: the same codes (the
    // bounds are integers), and the rounding of |v| < 2^22 by adding and
    // subtracting 1.5 * 2^23 is nearbyintf's in the default rounding mode
    const float lo = (float)-zero, hi = (float)((1 << bits) - 1 - zero), magic = 12582912.0f;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        finite &= isfinite(x[i]) != 0;
        float v = x[i] / scale;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        const float r = (v + magic) - magic; // q - z
        if (xhat) xhat[i] = scale * r;
        /* r is NaN for a NaN x (reported by the return value); converting it
         * to an integer would be undefined, so it becomes 0 here */
        if (codes) codes[i] = (int8_t)((int32_t)(r == r ? r : 0.0f) + zero - 128);
    }
    return finite;
}

/* Fake quantization of n values (x may alias src). */
static lb_status fake_quant(lb_ctx *ctx, const ptq_runtime *rt, const ptq_act *q, float *x,
                            const float *src, int64_t n)
{
    if (!ptq_act_quantize(src, n, q->scale, q->zero, rt->opts.abits, x, NULL))
        return lb_error(ctx, LB_ERR_NUMERIC, "ptq: non-finite activation");
    return LB_OK;
}

lb_status ptq_observe(void *user, lb_ctx *ctx, const lb_model_tap *tap)
{
    ptq_runtime *rt = user;
    if (tap->site != LB_TAP_ATTN_PROBS && tap->site != LB_TAP_ATTN_GATE) {
        ptq_act *q = ptq_act_at(rt, tap->site, tap->layer);
        if (q && q->enabled) {
            const int64_t rows = tap->shape[0] * tap->shape[1], cols = tap->shape[2];
            if (q->calibrating) TRY(calibrate(ctx, rt, q, tap->data, rows, cols, tap->mask));
            if (q->have) TRY(fake_quant(ctx, rt, q, tap->data, tap->data, rows * cols));
        }
    }
    if (rt->user_fn) return rt->user_fn(rt->user_arg, ctx, tap);
    return LB_OK;
}

/* The integer linear layer (lowbit/ptq.h). */
static lb_status integer_linear(lb_ctx *ctx, ptq_runtime *rt, const ptq_linear *L, float *out,
                                const float *inp, const float *bias, int64_t N)
{
    const int64_t K = L->K, OC = L->OC;
    TRY(grow(ctx, (void **)&rt->xq, &rt->xq_cap, (size_t)(N * K)));
    TRY(grow(ctx, (void **)&rt->acc, &rt->acc_cap, (size_t)(N * OC) * sizeof(int32_t)));
    if (!ptq_act_quantize(inp, N * K, L->in->scale, L->in->zero, rt->opts.abits, NULL, rt->xq))
        return lb_error(ctx, LB_ERR_NUMERIC, "ptq: non-finite input of a linear layer");
    if (rt->kernel == LB_PTQ_KERNEL_FAST && L->packed)
        TRY(lb_gemm_i8_packed(ctx, LB_INT_S8, 0, N, rt->xq, L->packed, rt->acc));
    else
        TRY(lb_gemm_i8_ref(ctx, 0, 1, N, OC, K, rt->xq, L->wint, rt->acc));
    const int32_t zc = L->in->zero - 128;
    const double sx = (double)L->in->scale;
    for (int64_t n = 0; n < OC; n++) {
        const double s = (double)L->wscale[n] * sx;
        const int32_t corr = zc * L->rowsum[n];
        const float b = bias ? bias[n] : 0.0f;
        for (int64_t t = 0; t < N; t++) {
            const int32_t a = rt->acc[t * OC + n] - corr;
            out[t * OC + n] = (float)((double)a * s) + b;
        }
    }
    return LB_OK;
}

/* Rows of the capture: the valid tokens (mask) or all. */
static lb_status capture(lb_ctx *ctx, ptq_runtime *rt, const float *inp, int64_t N, int64_t C)
{
    if (!rt->mask || rt->mask_rows != N) return rt->cap_fn(rt->cap_user, ctx, N, C, inp);
    TRY(grow(ctx, (void **)&rt->xf, &rt->xf_cap, (size_t)(N * C) * sizeof(float)));
    int64_t n = 0;
    for (int64_t r = 0; r < N; r++)
        if (rt->mask[r]) memcpy(rt->xf + (n++) * C, inp + r * C, (size_t)C * sizeof(float));
    return rt->cap_fn(rt->cap_user, ctx, n, C, rt->xf);
}

static lb_status ptq_linear_forward(lb_recipe *self, lb_ctx *ctx, const lb_backend *be,
                                    const lb_linear_site *site, float *out, const float *inp,
                                    const float *weight, const float *bias, int64_t N, int64_t C,
                                    int64_t OC)
{
    ptq_runtime *rt = self->state;
    if (rt->cap_fn && (int)site->role == rt->cap_role && site->layer == rt->cap_layer) {
        TRY(capture(ctx, rt, inp, N, C));
        if (rt->cap_stop) {
            rt->stopped = 1;
            return PTQ_STOP;
        }
    }
    const ptq_linear *L = ptq_linear_at(rt, site->role, site->layer);
    if (!L || !L->quantized || L->K != C || L->OC != OC) {
        be->linear_forward(out, inp, weight, bias, N, C, OC);
        return LB_OK;
    }
    ptq_act *q = L->in && L->in->enabled ? L->in : NULL;
    // the raw vit patches have no tap: their quantizer is calibrated here
    if (q && site->role == LB_LINEAR_PATCH && q->calibrating)
        TRY(calibrate(ctx, rt, q, inp, N, C, NULL));
    if (rt->exec == LB_PTQ_EXEC_INTEGER && L->wint && q && q->have && !q->calibrating)
        return integer_linear(ctx, rt, L, out, inp, bias, N);
    const float *x = inp;
    if (q && q->have && site->role == LB_LINEAR_PATCH) {
        TRY(grow(ctx, (void **)&rt->xf, &rt->xf_cap, (size_t)(N * C) * sizeof(float)));
        TRY(fake_quant(ctx, rt, q, rt->xf, inp, N * C));
        x = rt->xf;
    }
    // other inputs were fake-quantized in place by their producer's tap
    be->linear_forward(out, x, weight, bias, N, C, OC);
    return LB_OK;
}

static lb_status ptq_linear_backward(lb_recipe *self, lb_ctx *ctx, const lb_backend *be,
                                     const lb_linear_site *site, float *dinp, float *dweight,
                                     float *dbias, const float *dout, const float *inp,
                                     const float *weight, int64_t N, int64_t C, int64_t OC)
{
    (void)self, (void)be, (void)site, (void)dinp, (void)dweight, (void)dbias, (void)dout;
    (void)inp, (void)weight, (void)N, (void)C, (void)OC;
    return lb_error(ctx, LB_ERR_UNSUPPORTED, "a post-training quantized model cannot be trained");
}

/* ----------------------------------------------------------- the runtime */

lb_status ptq_runtime_create(lb_ctx *ctx, const lb_model_config *cfg, const lb_ptq_options *o,
                             ptq_runtime **out)
{
    *out = NULL;
    ptq_runtime *rt = lb_calloc(1, sizeof *rt);
    if (!rt) return lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    rt->cfg = *cfg;
    rt->opts = *o;
    rt->cap_role = rt->cap_layer = -1;
    const int L1 = cfg->n_layer + 1;
    rt->acts = lb_calloc((size_t)(PTQ_N_SITES * L1), sizeof *rt->acts);
    rt->lin = lb_calloc((size_t)(PTQ_N_ROLES * L1), sizeof *rt->lin);
    if (!rt->acts || !rt->lin) {
        ptq_runtime_free(rt);
        return lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    }
    for (int i = 0; i < PTQ_N_SITES * L1; i++) rt->acts[i].rr.momentum = o->act_momentum;
    rt->recipe.name = "ptq";
    rt->recipe.linear_forward = ptq_linear_forward;
    rt->recipe.linear_backward = ptq_linear_backward;
    rt->recipe.free = NULL; // owned by the lb_ptq_model
    rt->recipe.state = rt;
    *out = rt;
    return LB_OK;
}

static void linear_clear(ptq_linear *L)
{
    lb_free(L->codes);
    lb_free(L->scale);
    lb_free(L->wint);
    lb_free(L->wscale);
    lb_free(L->rowsum);
    lb_packed_i8_free(L->packed);
    L->codes = L->wint = NULL;
    L->scale = L->wscale = NULL;
    L->rowsum = NULL;
    L->packed = NULL;
}

void ptq_runtime_free(ptq_runtime *rt)
{
    if (!rt) return;
    if (rt->lin)
        for (int i = 0; i < PTQ_N_ROLES * (rt->cfg.n_layer + 1); i++) linear_clear(&rt->lin[i]);
    lb_free(rt->lin);
    lb_free(rt->acts);
    lb_free(rt->xq);
    lb_free(rt->acc);
    lb_free(rt->xf);
    lb_free(rt);
}

lb_status ptq_runtime_bind(lb_ctx *ctx, ptq_runtime *rt, const lb_model *model)
{
    const lb_model_config *c = &rt->cfg;
    static const char *const names[PTQ_N_ROLES] = {"patch", "attn.qkv", "attn.proj", "mlp.fc1",
                                                   "mlp.fc2", "head", "lm_head"};
    for (int role = 0; role < PTQ_N_ROLES; role++)
        for (int l = -1; l < c->n_layer; l++) {
            ptq_linear *L = ptq_linear_at(rt, (lb_linear_role)role, l);
            L->role = (lb_linear_role)role;
            L->layer = l;
            L->w_offset = L->b_offset = -1;
            const int in_block = role >= LB_LINEAR_QKV && role <= LB_LINEAR_FC2;
            if (in_block != (l >= 0) || role >= LB_LINEAR_HEAD) continue;
            char w[96], b[96];
            if (in_block) {
                snprintf(w, sizeof w, "blocks.%d.%s.weight", l, names[role]);
                snprintf(b, sizeof b, "blocks.%d.%s.bias", l, names[role]);
            } else {
                snprintf(w, sizeof w, "%s.weight", names[role]);
                snprintf(b, sizeof b, "%s.bias", names[role]);
            }
            const long wi = lb_model_find_tensor(model, w), bi = lb_model_find_tensor(model, b);
            if (wi < 0) continue; // no patch embedding in gpt/bert
            const lb_param_info *p = lb_model_tensor(model, (size_t)wi);
            if (p->ndim != 2) return lb_error(ctx, LB_ERR_INTERNAL, "ptq: %s is not a matrix", w);
            L->w_offset = p->offset;
            L->OC = p->shape[0];
            L->K = p->shape[1];
            L->b_offset = bi >= 0 ? lb_model_tensor(model, (size_t)bi)->offset : -1;
        }
    return LB_OK;
}

void ptq_enable_acts(ptq_runtime *rt)
{
    const lb_model_config *c = &rt->cfg;
    if (rt->opts.abits <= 0 || rt->opts.act_sites == LB_PTQ_ACT_NONE) return;
    if (rt->opts.act_sites == LB_PTQ_ACT_ALL) {
        static const int sites[] = {LB_TAP_EMBED, LB_TAP_EMBED_LN, LB_TAP_FINAL_LN};
        for (size_t i = 0; i < sizeof sites / sizeof *sites; i++) {
            if (sites[i] == LB_TAP_EMBED_LN && !c->embed_ln) continue;
            if (sites[i] == LB_TAP_FINAL_LN && c->kind == LB_MODEL_BERT) continue;
            ptq_act_at(rt, sites[i], -1)->enabled = 1;
        }
        static const int block[] = {LB_TAP_LN1, LB_TAP_QKV, LB_TAP_ATTN_OUT, LB_TAP_PROJ_OUT,
                                    LB_TAP_RES1, LB_TAP_LN2, LB_TAP_GELU, LB_TAP_FC2_OUT,
                                    LB_TAP_RES2};
        for (int l = 0; l < c->n_layer; l++)
            for (size_t i = 0; i < sizeof block / sizeof *block; i++)
                ptq_act_at(rt, block[i], l)->enabled = 1;
    }
    for (int role = 0; role < PTQ_N_ROLES; role++)
        for (int l = -1; l < c->n_layer; l++) {
            ptq_linear *L = ptq_linear_at(rt, (lb_linear_role)role, l);
            if (!L->quantized) continue;
            int site, sl;
            ptq_input_site(c, (lb_linear_role)role, l, &site, &sl);
            if (site < 0) continue;
            L->in = ptq_act_at(rt, site, sl);
            L->in->enabled = 1;
        }
}

lb_status ptq_linear_set(lb_ctx *ctx, ptq_linear *L, float *params, int bits, lb_wq_grid grid,
                         double a, int R_request, const int8_t *codes, int64_t n_scales,
                         const float *scale)
{
    const int64_t OC = L->OC, K = L->K, n = OC * K;
    linear_clear(L);
    L->bits = bits;
    L->grid = grid;
    L->a = grid == LB_WQ_GRID_POWER ? a : 1.0;
    L->n_scales = n_scales;
    L->R = 0;
    L->codes = lb_alloc((size_t)n);
    L->scale = lb_alloc((size_t)n_scales * sizeof(float));
    const int integer = grid == LB_WQ_GRID_UNIFORM || R_request != LB_PTQ_CODEBOOK_FLOAT;
    if (integer) {
        L->wint = lb_alloc((size_t)n);
        L->wscale = lb_alloc((size_t)OC * sizeof(float));
        L->rowsum = lb_alloc((size_t)OC * sizeof(int32_t));
    }
    if (!L->codes || !L->scale || (integer && (!L->wint || !L->wscale || !L->rowsum))) {
        linear_clear(L);
        return lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
    }
    memcpy(L->codes, codes, (size_t)n);
    memcpy(L->scale, scale, (size_t)n_scales * sizeof(float));
    float *W = params + L->w_offset; // (OC, K) receives Ŵ
    const lb_qgroups groups = {1, n_scales, n / n_scales};
    if (grid == LB_WQ_GRID_UNIFORM) {
        memcpy(L->wint, codes, (size_t)n);
        for (int64_t r = 0; r < OC; r++) L->wscale[r] = scale[n_scales == 1 ? 0 : r];
    } else if (integer) {
        int exact = 0;
        TRY(lb_power_codebook_ref(ctx, bits, a, R_request, L->codebook, &L->R, &exact));
        TRY(lb_power_codebook_lookup_ref(ctx, bits, L->codebook, n, codes, L->wint));
        float *gs = lb_alloc((size_t)n_scales * sizeof(float));
        if (!gs) return lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
        lb_status st = lb_power_codebook_scales_ref(ctx, L->R, n_scales, scale, gs);
        for (int64_t r = 0; st == LB_OK && r < OC; r++) L->wscale[r] = gs[n_scales == 1 ? 0 : r];
        lb_free(gs);
        TRY(st);
    } else {
        TRY(lb_power_dequantize_ref(ctx, bits, a, &groups, codes, scale, W));
    }
    if (integer) {
        // Ŵ = fl32(s_row · w_int): exactly the dequantizers of weight_quant.h (uniform)
        // and lb_power_codebook_dequantize_ref (power)
        for (int64_t r = 0; r < OC; r++) {
            int32_t sum = 0;
            for (int64_t k = 0; k < K; k++) {
                sum += L->wint[r * K + k];
                W[r * K + k] = L->wscale[r] * (float)L->wint[r * K + k];
            }
            L->rowsum[r] = sum;
        }
    }
    L->quantized = 1;
    return LB_OK;
}

lb_status ptq_runtime_pack(lb_ctx *ctx, ptq_runtime *rt)
{
    for (int i = 0; i < PTQ_N_ROLES * (rt->cfg.n_layer + 1); i++) {
        ptq_linear *L = &rt->lin[i];
        lb_packed_i8_free(L->packed);
        L->packed = NULL;
        if (!L->quantized || !L->wint) continue;
        const int64_t n = L->OC * L->K;
        const int s4 = L->grid == LB_WQ_GRID_UNIFORM && L->bits <= 4;
        if (!s4) {
            TRY(lb_gemm_i8_pack_b(ctx, LB_INT_S8, 1, L->K, L->OC, L->wint, &L->packed));
            continue;
        }
        // int4 weights as nibbles (lowbit/cpu.h storage: element e in byte e/2, low nibble first)
        uint8_t *nib = lb_calloc((size_t)lb_s4_bytes(n), 1);
        if (!nib) return lb_error(ctx, LB_ERR_NOMEM, "ptq: out of memory");
        for (int64_t e = 0; e < n; e++)
            nib[e / 2] |= (uint8_t)(((uint8_t)L->wint[e] & 0x0F) << (4 * (e & 1)));
        lb_status st = lb_gemm_i8_pack_b(ctx, LB_INT_S4, 1, L->K, L->OC, nib, &L->packed);
        lb_free(nib);
        TRY(st);
    }
    return LB_OK;
}
