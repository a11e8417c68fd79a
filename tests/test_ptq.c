/* tests/test_ptq.c — post-training quantization (lowbit/ptq.h) on tiny
 * vit / gpt / bert models with synthetic calibration data:
 *   - the integer linear layer: int32 accumulators and outputs bit for bit
 *     equal to the integer formula computed here independently, and close
 *     to the float fake-quant oracle (only float summation differs);
 *   - whole models: the fast integer kernels (lb_gemm_i8_packed) give the
 *     same bits as lb_gemm_i8_ref, for every method (w8a8, rtn, gptq,
 *     powerquant, nupes) and bit width, int4 weights included; integer vs
 *     fake-quant logits agree to float rounding;
 *   - save / load: the loaded model gives bit-identical logits, codes
 *     survive the int4 nibble packing, corrupt files are LB_ERR_FORMAT;
 *   - W8A8 calibration: the first site's range is the momentum-0.9 running
 *     min-max of the per-batch statistics over the attended tokens, its
 *     (Δ, z) those of lb_uniform_qparams_ref;
 *   - GPTQ's layer output error is at most RTN's on the same inputs;
 *     PowerQuant's exponent is lb_power_search_ref's; NUPES' element loops
 *     equal lb_nupes_forward_ref / lb_nupes_backward_ref and its loss does
 *     not increase (strictly decreases on a layer with an outlier input);
 *   - option and argument errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/ref/gptq.h"
#include "lowbit/ref/power_quantizer.h"
#include "lowbit/rng.h"
#include "lowbit/safetensors.h"
#include "ptq_internal.h"
#include "test_util.h"

#define T_TOK 8
#define B_CAL 3

static lb_model_config tiny(lb_model_kind kind, lb_attention_kind att)
{
    lb_model_config c;
    lb_model_config_default(kind, &c);
    c.n_layer = 2;
    c.d_model = 32;
    c.n_head = 2;
    c.d_ff = 64;
    if (kind == LB_MODEL_VIT) {
        c.image_size = 28; // Fashion-MNIST's size: the saved config must pass its data check
        c.patch_size = 7;
        c.n_classes = 10;
    } else {
        c.max_seq_len = T_TOK;
    }
    c.attention = att;
    c.init_std = 0.1f;
    assert_int_equal(lb_model_config_check(NULL, &c), LB_OK);
    return c;
}

static lb_model *make_fp(const lb_model_config *c, uint64_t seed)
{
    lb_model *m = NULL;
    const lb_model_options o = {B_CAL, 0, 0};
    assert_int_equal(lb_model_create_ex(NULL, c, lb_backend_cpu(), NULL, &o, &m), LB_OK);
    assert_int_equal(lb_model_init(NULL, m, seed), LB_OK);
    // a few larger weights and an outlier channel, so that ranges matter
    float *p = lb_model_params(m);
    for (int64_t i = 0; i < lb_model_num_params(m); i += 97) p[i] *= 6.0f;
    return m;
}

/* Synthetic batches: tokens / images from the counter RNG; bert rows padded. */
typedef struct synth {
    lb_model_config cfg;
    int32_t tokens[B_CAL * T_TOK];
    uint8_t mask[B_CAL * T_TOK];
    float images[B_CAL * 784];
    lb_model_batch b;
} synth;

static lb_status synth_batch(void *user, lb_ctx *ctx, int64_t i, lb_model_batch *batch)
{
    (void)ctx;
    synth *s = user;
    const uint64_t stream = lb_rng_stream("test-ptq", (uint64_t)i);
    memset(&s->b, 0, sizeof s->b);
    s->b.B = B_CAL;
    if (s->cfg.kind == LB_MODEL_VIT) {
        for (int k = 0; k < B_CAL * 784; k++)
            s->images[k] = 4 * lb_rng_uniform_f32(7, stream, (uint64_t)k) - 2;
        s->b.images = s->images;
    } else {
        s->b.T = T_TOK;
        for (int k = 0; k < B_CAL * T_TOK; k++) {
            s->tokens[k] = (int32_t)(lb_rng_uniform_f32(7, stream, (uint64_t)k) * 250);
            s->mask[k] = 1;
        }
        s->b.tokens = s->tokens;
        if (s->cfg.kind == LB_MODEL_BERT) {
            for (int t = T_TOK - 3; t < T_TOK; t++) s->mask[1 * T_TOK + t] = 0; // row 1 padded
            s->b.attention_mask = s->mask;
        }
    }
    *batch = s->b;
    return LB_OK;
}

static lb_ptq_model *quantize(const lb_model *fp, const lb_ptq_options *o, synth *s)
{
    lb_ptq_model *q = NULL;
    lb_ctx *ctx = NULL;
    lb_ctx_create(&ctx);
    const lb_model_options mo = {B_CAL, 0, 0};
    lb_status st = lb_ptq_quantize(ctx, fp, NULL, o, synth_batch, s, lb_backend_cpu(), &mo, &q);
    if (st != LB_OK) fail_msg("quantize %s: %s", lb_ptq_method_name(o->method), lb_ctx_error(ctx));
    lb_ctx_free(ctx);
    return q;
}

/* Logits of evaluation batch 100 (copied; rows * cols floats in *n). */
static float *logits_of(lb_ptq_model *q, synth *s, size_t *n)
{
    lb_model_batch b;
    synth_batch(s, NULL, 100, &b);
    lb_ctx *ctx = NULL;
    lb_ctx_create(&ctx);
    lb_status st = lb_model_forward(ctx, lb_ptq_model_get(q), &b, 0, 0, NULL);
    if (st != LB_OK) fail_msg("forward: %s", lb_ctx_error(ctx));
    lb_ctx_free(ctx);
    int64_t rows, cols;
    const float *l = lb_model_logits(lb_ptq_model_get(q), &rows, &cols);
    *n = (size_t)(rows * cols);
    float *c = malloc(*n * sizeof(float));
    memcpy(c, l, *n * sizeof(float));
    return c;
}

static lb_ptq_options opts_of(lb_ptq_method m, int wbits, int abits)
{
    lb_ptq_options o;
    lb_ptq_options_default(m, &o);
    o.wbits = wbits;
    o.abits = abits;
    if (abits > 0 && o.act_sites == LB_PTQ_ACT_NONE) o.act_sites = LB_PTQ_ACT_LINEAR;
    if (abits == 0) o.act_sites = LB_PTQ_ACT_NONE;
    o.calib_batches = 4;
    o.nupes_iters = 15;
    return o;
}

/* ------------------------------------------- the activation quantizer loop */

static void test_act_quantize(void **state)
{
    (void)state;
    enum { n = 4000 };
    static float x[n], want[n], got[n];
    static int32_t codes_ref[n];
    static int8_t codes[n];
    const float scales[3] = {0.0173f, 0.25f, 3.0f};
    const int32_t zeros[3] = {0, 100, 255};
    for (int bits = 4; bits <= 8; bits += 4)
        for (int si = 0; si < 3; si++)
            for (int zi = 0; zi < 3; zi++) {
                const float d = scales[si];
                const int32_t z = zeros[zi] < (1 << bits) ? zeros[zi] : (1 << bits) - 1;
                for (int i = 0; i < n; i++) {
                    const float u = lb_rng_uniform_f32(11, (uint64_t)(si * 3 + zi), (uint64_t)i);
                    x[i] = d * (600 * u - 300);
                    if (i % 7 == 0) x[i] = d * (float)((int)(40 * u) - 20) + 0.5f * d; // ties
                    if (i % 11 == 0) x[i] = -0.0f;
                }
                lb_uniform_config u = lb_uniform_config_default();
                u.bits = bits;
                u.symmetric = 0;
                const lb_qgroups g = {1, 1, n};
                assert_int_equal(lb_uniform_fake_quant_ref(NULL, &u, &g, x, &d, &z, want), LB_OK);
                assert_int_equal(lb_uniform_quantize_ref(NULL, &u, &g, x, &d, &z, codes_ref), LB_OK);
                assert_int_equal(ptq_act_quantize(x, n, d, z, bits, got, codes), 1);
                assert_memory_equal(got, want, sizeof got);
                for (int i = 0; i < n; i++) assert_int_equal(codes[i] + 128, codes_ref[i]);
            }
    x[17] = NAN;
    assert_int_equal(ptq_act_quantize(x, n, 0.1f, 3, 8, got, codes), 0);
}

/* ------------------------------------------------- the integer linear layer */

static void test_integer_linear(void **state)
{
    (void)state;
    const lb_model_config c = tiny(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX);
    lb_model *fp = make_fp(&c, 1);
    synth s = {.cfg = c};
    const lb_ptq_method methods[3] = {LB_PTQ_RTN, LB_PTQ_POWERQUANT, LB_PTQ_W8A8};
    for (int mi = 0; mi < 3; mi++) {
        lb_ptq_options o = opts_of(methods[mi], methods[mi] == LB_PTQ_W8A8 ? 8 : 4, 8);
        lb_ptq_model *q = quantize(fp, &o, &s);
        ptq_runtime *rt = q->rt;
        ptq_linear *L = ptq_linear_at(rt, LB_LINEAR_FC1, 1);
        assert_true(L->quantized && L->wint && L->in && L->in->have);
        const int64_t N = 5, K = L->K, OC = L->OC;
        // inputs on the quantizer's grid, codes spread over [0, 255]
        float *x = malloc((size_t)(N * K) * sizeof(float));
        int32_t *qx = malloc((size_t)(N * K) * sizeof(int32_t));
        for (int64_t i = 0; i < N * K; i++) {
            qx[i] = (int32_t)(lb_rng_uniform_f32(3, 9, (uint64_t)i) * 256) % 256;
            if (i == 0) qx[i] = 0;
            if (i == 1) qx[i] = 255;
            x[i] = L->in->scale * (float)(qx[i] - L->in->zero);
        }
        const float *bias = lb_model_params(q->model) + L->b_offset;
        const float *W = lb_model_params(q->model) + L->w_offset;
        float *y_int = malloc((size_t)(N * OC) * sizeof(float));
        float *y_fake = malloc((size_t)(N * OC) * sizeof(float));
        const lb_linear_site site = {LB_LINEAR_FC1, 1, 0, 0};
        for (int kern = 0; kern < 2; kern++) {
            assert_int_equal(lb_ptq_model_set_exec(NULL, q, LB_PTQ_EXEC_INTEGER,
                                                   kern ? LB_PTQ_KERNEL_REF : LB_PTQ_KERNEL_FAST),
                             LB_OK);
            assert_int_equal(rt->recipe.linear_forward(&rt->recipe, NULL, lb_backend_cpu(), &site,
                                                       y_int, x, W, bias, N, K, OC),
                             LB_OK);
            for (int64_t t = 0; t < N; t++)
                for (int64_t n = 0; n < OC; n++) {
                    int64_t acc = 0;
                    double mag = 0, exact = 0;
                    for (int64_t k = 0; k < K; k++) {
                        acc += (int64_t)L->wint[n * K + k] * (qx[t * K + k] - L->in->zero);
                        mag += fabs((double)W[n * K + k] * x[t * K + k]);
                        exact += (double)W[n * K + k] * (double)x[t * K + k];
                    }
                    const float want =
                        (float)((double)acc * ((double)L->wscale[n] * (double)L->in->scale)) +
                        bias[n];
                    if (memcmp(&want, &y_int[t * OC + n], 4) != 0)
                        fail_msg("%s kernel %d (%lld, %lld): %.9g vs %.9g",
                                 lb_ptq_method_name(o.method), kern, (long long)t, (long long)n,
                                 (double)y_int[t * OC + n], (double)want);
                    // and it is the exact product of the fake-quant operands to float rounding
                    assert_true(fabs((double)y_int[t * OC + n] - (exact + bias[n])) <=
                                1e-6 * mag + 1e-6 * fabs(bias[n]));
                }
        }
        assert_int_equal(lb_ptq_model_set_exec(NULL, q, LB_PTQ_EXEC_FAKE, LB_PTQ_KERNEL_FAST), LB_OK);
        assert_int_equal(rt->recipe.linear_forward(&rt->recipe, NULL, lb_backend_cpu(), &site,
                                                   y_fake, x, W, bias, N, K, OC),
                         LB_OK);
        double worst = 0;
        for (int64_t i = 0; i < N * OC; i++)
            worst = fmax(worst, fabs((double)y_fake[i] - y_int[i]) / (1 + fabs(y_int[i])));
        assert_true(worst < 1e-5); // float32 sums of K = 32 products vs one rounding
        free(x), free(qx), free(y_int), free(y_fake);
        lb_ptq_model_free(q);
    }
    lb_model_free(fp);
}

/* -------------------------------------------------------- whole models */

static void check_model(lb_model_kind kind, lb_attention_kind att, const lb_ptq_options *o)
{
    const lb_model_config c = tiny(kind, att);
    lb_model *fp = make_fp(&c, 5);
    synth s = {.cfg = c};
    lb_ptq_model *q = quantize(fp, o, &s);
    size_t n, n2, n3;
    float *fast = logits_of(q, &s, &n);
    assert_int_equal(lb_ptq_model_set_exec(NULL, q, LB_PTQ_EXEC_INTEGER, LB_PTQ_KERNEL_REF), LB_OK);
    float *ref = logits_of(q, &s, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(fast, ref, n * sizeof(float)); // the kernels agree bit for bit
    assert_int_equal(lb_ptq_model_set_exec(NULL, q, LB_PTQ_EXEC_FAKE, LB_PTQ_KERNEL_FAST), LB_OK);
    float *fake = logits_of(q, &s, &n3);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)fake[i] - fast[i]));
        scale = fmax(scale, fabs((double)fake[i]));
    }
    // float summation differences can move an activation code by one step
    // downstream; the logits stay within a small fraction of their range
    if (worst > 2e-2 * scale + 1e-5)
        fail_msg("%s %s W%dA%d: integer vs fake-quant max |diff| %.3g (logit scale %.3g)",
                 lb_model_kind_name(kind), lb_ptq_method_name(o->method), o->wbits, o->abits,
                 worst, scale);
    // and the quantized model is not the float one (something was quantized) but close
    lb_model_batch b;
    synth_batch(&s, NULL, 100, &b);
    assert_int_equal(lb_model_forward(NULL, fp, &b, 0, 0, NULL), LB_OK);
    const float *fl = lb_model_logits(fp, NULL, NULL);
    double dq = 0;
    for (size_t i = 0; i < n; i++) dq = fmax(dq, fabs((double)fl[i] - fake[i]));
    assert_true(dq > 0);
    // save, load: the same bits
    char path[1024];
    snprintf(path, sizeof path, "%s/ptq_%s_%s.safetensors", lb_test_tmp_dir(),
             lb_model_kind_name(kind), lb_ptq_method_name(o->method));
    lb_ctx *ctx = NULL;
    lb_ctx_create(&ctx);
    if (lb_ptq_save(ctx, q, NULL, path) != LB_OK) fail_msg("save: %s", lb_ctx_error(ctx));
    lb_ptq_model *l = NULL;
    const lb_model_options mo = {B_CAL, 0, 0};
    if (lb_ptq_model_load(ctx, path, lb_backend_cpu(), &mo, &l) != LB_OK)
        fail_msg("load: %s", lb_ctx_error(ctx));
    assert_true(lb_ptq_model_is_quantized(l));
    float *loaded = logits_of(l, &s, &n2);
    assert_memory_equal(loaded, fast, n * sizeof(float));
    for (int i = 0; i < PTQ_N_ROLES * (c.n_layer + 1); i++) {
        const ptq_linear *a = &q->rt->lin[i], *bq = &l->rt->lin[i];
        assert_int_equal(a->quantized, bq->quantized);
        if (!a->quantized) continue;
        assert_memory_equal(a->codes, bq->codes, (size_t)(a->OC * a->K));
        assert_memory_equal(a->scale, bq->scale, (size_t)a->n_scales * sizeof(float));
        assert_true(a->a == bq->a && a->R == bq->R);
    }
    lb_ctx_free(ctx);
    free(fast), free(ref), free(fake), free(loaded);
    lb_ptq_model_free(l);
    lb_ptq_model_free(q);
    lb_model_free(fp);
}

static void test_models(void **state)
{
    (void)state;
    lb_ptq_options o = opts_of(LB_PTQ_W8A8, 8, 8);
    check_model(LB_MODEL_BERT, LB_ATTENTION_SOFTMAX, &o);
    check_model(LB_MODEL_GPT, LB_ATTENTION_CLIPPED, &o);
    check_model(LB_MODEL_VIT, LB_ATTENTION_GATED, &o);
    o = opts_of(LB_PTQ_RTN, 4, 8);
    check_model(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX, &o);
    o.granularity = LB_WQ_TENSOR;
    o.range.method = LB_RANGE_MSE;
    check_model(LB_MODEL_VIT, LB_ATTENTION_SOFTMAX, &o);
    o = opts_of(LB_PTQ_GPTQ, 3, 8);
    check_model(LB_MODEL_BERT, LB_ATTENTION_SOFTMAX, &o);
    o = opts_of(LB_PTQ_POWERQUANT, 4, 8);
    check_model(LB_MODEL_BERT, LB_ATTENTION_GATED, &o);
    o.per_layer_exponent = 1;
    o.act_sites = LB_PTQ_ACT_ALL;
    o.act_range = LB_RANGE_PERCENTILE;
    o.act_percentile = 99.0;
    check_model(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX, &o);
    o = opts_of(LB_PTQ_NUPES, 3, 8);
    check_model(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX, &o);
    o = opts_of(LB_PTQ_NUPES, 4, 0); // weight-only: float activations, float path
    o.codebook = LB_PTQ_CODEBOOK_FLOAT;
    check_model(LB_MODEL_VIT, LB_ATTENTION_SOFTMAX, &o);
}

/* ------------------------------------------------------- W8A8 calibration */

typedef struct embed_stats {
    float lo[8], hi[8];
    int n;
} embed_stats;

static lb_status embed_minmax(void *user, lb_ctx *ctx, const lb_model_tap *t)
{
    (void)ctx;
    embed_stats *e = user;
    if (t->site != LB_TAP_EMBED) return LB_OK;
    const int64_t rows = t->shape[0] * t->shape[1], W = t->shape[2];
    int any = 0;
    float lo = 0, hi = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (t->mask && !t->mask[r]) continue;
        for (int64_t k = 0; k < W; k++) {
            const float v = t->data[r * W + k];
            if (!any) lo = hi = v, any = 1;
            lo = fminf(lo, v), hi = fmaxf(hi, v);
        }
    }
    e->lo[e->n] = lo, e->hi[e->n] = hi, e->n++;
    return LB_OK;
}

static void test_w8a8_calibration(void **state)
{
    (void)state;
    const lb_model_config c = tiny(LB_MODEL_BERT, LB_ATTENTION_SOFTMAX);
    lb_model *fp = make_fp(&c, 9);
    synth s = {.cfg = c};
    lb_ptq_options o = opts_of(LB_PTQ_W8A8, 8, 8);
    o.calib_batches = 3;
    lb_ptq_model *q = quantize(fp, &o, &s);
    embed_stats e = {.n = 0};
    lb_model_set_observer(fp, embed_minmax, &e);
    for (int i = 0; i < 3; i++) {
        lb_model_batch b;
        synth_batch(&s, NULL, i, &b);
        assert_int_equal(lb_model_forward(NULL, fp, &b, 0, 0, NULL), LB_OK);
    }
    // running min-max, momentum 0.9, float32 as lb_range_running_update_ref
    float lo = e.lo[0], hi = e.hi[0];
    const float m = 0.9f, om = (float)(1.0 - 0.9);
    for (int i = 1; i < 3; i++) lo = om * e.lo[i] + m * lo, hi = om * e.hi[i] + m * hi;
    const ptq_act *a = ptq_act_at(q->rt, LB_TAP_EMBED, -1);
    assert_true(a->enabled && a->have && !a->calibrating);
    assert_true(a->lo == lo && a->hi == hi);
    lb_uniform_config u = lb_uniform_config_default();
    u.bits = 8;
    u.symmetric = 0;
    float scale;
    int32_t zero;
    assert_int_equal(lb_uniform_qparams_ref(NULL, &u, 1, &lo, &hi, &scale, &zero), LB_OK);
    assert_true(a->scale == scale && a->zero == zero);
    // every site of ALL but the attention probabilities is calibrated
    static const int sites[] = {LB_TAP_EMBED_LN, LB_TAP_QKV, LB_TAP_ATTN_OUT, LB_TAP_PROJ_OUT,
                                LB_TAP_RES1, LB_TAP_LN1, LB_TAP_GELU, LB_TAP_FC2_OUT,
                                LB_TAP_RES2, LB_TAP_LN2};
    for (size_t i = 0; i < sizeof sites / sizeof *sites; i++) {
        const ptq_act *x = ptq_act_at(q->rt, sites[i], sites[i] == LB_TAP_EMBED_LN ? -1 : 1);
        assert_true(x->enabled && x->have);
    }
    assert_false(ptq_act_at(q->rt, LB_TAP_ATTN_PROBS, 0)->enabled);
    // the weights: per tensor, min-max, 8 bits: the codes of lb_weight_rtn_ref
    const ptq_linear *L = ptq_linear_at(q->rt, LB_LINEAR_QKV, 0);
    assert_int_equal(L->n_scales, 1);
    int8_t mx = 0;
    for (int64_t i = 0; i < L->OC * L->K; i++) mx = (int8_t)(abs(L->codes[i]) > mx ? abs(L->codes[i]) : mx);
    assert_int_equal(mx, 127);
    lb_ptq_model_free(q);
    lb_model_free(fp);
}

/* --------------------------------------------------------------- methods */

typedef struct hess_tap {
    lb_gptq_hessian *h;
} hess_tap;

static lb_status ln1_capture(void *user, lb_ctx *ctx, const lb_model_tap *t)
{
    hess_tap *ht = user;
    if (t->site != LB_TAP_LN1 || t->layer != 0) return LB_OK;
    return lb_gptq_hessian_add_batch_ref(ctx, ht->h, t->shape[0] * t->shape[1], t->data);
}

static void test_gptq_vs_rtn(void **state)
{
    (void)state;
    const lb_model_config c = tiny(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX);
    lb_model *fp = make_fp(&c, 13);
    synth s = {.cfg = c};
    lb_ptq_options og = opts_of(LB_PTQ_GPTQ, 3, 0), orr = opts_of(LB_PTQ_RTN, 3, 0);
    lb_ptq_model *g = quantize(fp, &og, &s), *r = quantize(fp, &orr, &s);
    // H of qkv 0's input (the first LayerNorm, untouched by quantization)
    hess_tap ht;
    assert_int_equal(lb_gptq_hessian_create(NULL, c.d_model, &ht.h), LB_OK);
    lb_model_set_observer(fp, ln1_capture, &ht);
    for (int i = 0; i < og.calib_batches; i++) {
        lb_model_batch b;
        synth_batch(&s, NULL, i, &b);
        assert_int_equal(lb_model_forward(NULL, fp, &b, 0, 0, NULL), LB_OK);
    }
    double *H = malloc((size_t)(c.d_model * c.d_model) * sizeof(double));
    assert_int_equal(lb_gptq_hessian_get(NULL, ht.h, H), LB_OK);
    const ptq_linear *Lg = ptq_linear_at(g->rt, LB_LINEAR_QKV, 0);
    const float *W = lb_model_params(fp) + Lg->w_offset;
    double eg, er, ref;
    assert_int_equal(lb_gptq_hessian_error_ref(NULL, Lg->OC, Lg->K, H, W,
                                               lb_model_params(g->model) + Lg->w_offset, &eg, &ref),
                     LB_OK);
    assert_int_equal(lb_gptq_hessian_error_ref(NULL, Lg->OC, Lg->K, H, W,
                                               lb_model_params(r->model) + Lg->w_offset, &er, &ref),
                     LB_OK);
    printf("# qkv 0 at 3 bits: output error GPTQ %.4g, RTN %.4g\n", eg / ref, er / ref);
    assert_true(eg < er);
    assert_true(fabs(Lg->relerr - eg / ref) <= 1e-9 * eg / ref); // the reported error
    lb_gptq_hessian_free(ht.h);
    free(H);
    lb_ptq_model_free(g);
    lb_ptq_model_free(r);
    lb_model_free(fp);
}

static void test_powerquant_exponent(void **state)
{
    (void)state;
    const lb_model_config c = tiny(LB_MODEL_BERT, LB_ATTENTION_SOFTMAX);
    lb_model *fp = make_fp(&c, 17);
    synth s = {.cfg = c};
    lb_ptq_options o = opts_of(LB_PTQ_POWERQUANT, 4, 0);
    lb_ptq_model *q = quantize(fp, &o, &s);
    lb_power_layer layers[8];
    int n = 0;
    for (int l = 0; l < 2; l++)
        for (int role = LB_LINEAR_QKV; role <= LB_LINEAR_FC2; role++) {
            const ptq_linear *L = ptq_linear_at(q->rt, (lb_linear_role)role, l);
            layers[n].w = lb_model_params(fp) + L->w_offset;
            layers[n++].groups = (lb_qgroups){1, L->OC, L->K};
        }
    lb_power_search_options so = lb_power_search_options_default();
    lb_power_search_result r;
    assert_int_equal(lb_power_search_ref(NULL, &so, n, layers, &r), LB_OK);
    printf("# powerquant exponent %.4f (error %.3g of uniform's)\n", r.a, r.error / r.error_a1);
    for (int l = 0; l < 2; l++)
        for (int role = LB_LINEAR_QKV; role <= LB_LINEAR_FC2; role++)
            assert_true(lb_ptq_model_exponent(q, (lb_linear_role)role, l) == r.a);
    assert_true(r.a < 1.0); // bell-shaped weights: a < 1
    assert_true(lb_ptq_model_exponent(q, LB_LINEAR_LM, -1) == 0);
    lb_ptq_model_free(q);
    lb_model_free(fp);
}

static void test_nupes_loops(void **state)
{
    (void)state;
    const int64_t OC = 6, K = 13, n = OC * K;
    float W[6 * 13], V[6 * 13], G[6 * 13], gmax[6], what_ref[6 * 13], what[6 * 13];
    float gv_ref[6 * 13], gv[6 * 13];
    int8_t codes_ref[6 * 13], codes[6 * 13];
    double row_da[6];
    for (int64_t i = 0; i < n; i++) {
        W[i] = 2 * lb_rng_uniform_f32(1, 2, (uint64_t)i) - 1;
        G[i] = 2 * lb_rng_uniform_f32(1, 3, (uint64_t)i) - 1;
    }
    W[5] = 9; // an outlier
    W[20] = 0;
    for (int bits = 3; bits <= 4; bits++)
        for (int per_tensor = 0; per_tensor < 2; per_tensor++) {
            const int64_t ns = per_tensor ? 1 : OC;
            const lb_qgroups g = {1, ns, n / ns};
            const double theta = 0.3, a = lb_nupes_exponent(theta, 0.2);
            assert_int_equal(lb_nupes_init_ref(NULL, bits, a, &g, W, gmax, V), LB_OK);
            for (int64_t i = 0; i < n; i++) V[i] += 0.7f * (lb_rng_uniform_f32(1, 4, (uint64_t)i) - 0.5f);
            V[7] = 100; // clamped code, no straight-through gradient
            assert_int_equal(lb_nupes_forward_ref(NULL, bits, a, &g, V, gmax, codes_ref, what_ref),
                             LB_OK);
            ptq_nupes_forward(bits, a, OC, K, ns, V, gmax, codes, what);
            assert_memory_equal(codes, codes_ref, (size_t)n);
            assert_memory_equal(what, what_ref, (size_t)n * sizeof(float));
            double gt_ref, gt;
            assert_int_equal(lb_nupes_backward_ref(NULL, bits, theta, 0.2, &g, V, gmax, G, gv_ref,
                                                   &gt_ref),
                             LB_OK);
            ptq_nupes_backward(bits, theta, 0.2, OC, K, ns, V, gmax, G, gv, row_da, &gt);
            assert_memory_equal(gv, gv_ref, (size_t)n * sizeof(float));
            assert_true(fabs(gt - gt_ref) <= 1e-12 * fabs(gt_ref) + 1e-300);
        }
}

static void test_nupes_layer(void **state)
{
    (void)state;
    const int64_t OC = 16, K = 24, T = 200;
    float *W = malloc((size_t)(OC * K) * sizeof(float)), *X = malloc((size_t)(T * K) * sizeof(float));
    for (int64_t i = 0; i < OC * K; i++) {
        // Laplace-like weights (a < 1 territory)
        const double u = lb_rng_uniform_f64(5, 1, (uint64_t)i) - 0.5;
        W[i] = (float)(-0.1 * (u < 0 ? -1 : 1) * log(1 - 2 * fabs(u) + 1e-12));
    }
    for (int64_t i = 0; i < T * K; i++) {
        X[i] = 2 * lb_rng_uniform_f32(5, 2, (uint64_t)i) - 1;
        if (i % K == 3) X[i] *= 20; // an outlier input channel
    }
    lb_gptq_hessian *h = NULL;
    assert_int_equal(lb_gptq_hessian_create(NULL, K, &h), LB_OK);
    assert_int_equal(lb_gptq_hessian_add_batch_ref(NULL, h, T, X), LB_OK);
    double *H = malloc((size_t)(K * K) * sizeof(double));
    assert_int_equal(lb_gptq_hessian_get(NULL, h, H), LB_OK);
    lb_ptq_options o;
    lb_ptq_options_default(LB_PTQ_NUPES, &o);
    o.wbits = 3;
    o.nupes_iters = 300;
    int8_t *codes = malloc((size_t)(OC * K));
    float gmax[16];
    float *what = malloc((size_t)(OC * K) * sizeof(float));
    const lb_qgroups g = {1, OC, K};
    // GPTQ on the uniform grid, for comparison
    lb_gptq_config gc = lb_gptq_config_default();
    gc.quant.bits = 3;
    int32_t *c32 = malloc((size_t)(OC * K) * sizeof(int32_t));
    float scale[16];
    double err, ref;
    assert_int_equal(lb_gptq_quantize_ref(NULL, &gc, OC, K, W, H, c32, scale, NULL, what, NULL,
                                          NULL, NULL),
                     LB_OK);
    assert_int_equal(lb_gptq_hessian_error_ref(NULL, OC, K, H, W, what, &err, &ref), LB_OK);
    const double e_gptq = err / ref;
    for (int init = 0; init < 2; init++) {
        o.nupes_init = init ? LB_PTQ_NUPES_INIT_RTN : LB_PTQ_NUPES_INIT_GPTQ;
        double a, l0, l1;
        assert_int_equal(ptq_nupes_layer(NULL, &o, OC, K, W, H, OC, codes, gmax, &a, &l0, &l1),
                         LB_OK);
        printf("# nupes 3-bit layer from %s codes: exponent %.4f, relative output error %.4g -> "
               "%.4g (GPTQ uniform %.4g)\n",
               init ? "RTN" : "GPTQ", a, l0, l1, e_gptq);
        assert_true(l1 < (init ? 0.98 : 1.0) * l0);
        if (!init) assert_true(l1 < e_gptq);
        assert_true(a > 0.2 && a < 1.0);
        // the returned codes are the ones of the best loss: recompute it from them
        assert_int_equal(lb_power_dequantize_ref(NULL, 3, a, &g, codes, gmax, what), LB_OK);
        assert_int_equal(lb_gptq_hessian_error_ref(NULL, OC, K, H, W, what, &err, &ref), LB_OK);
        assert_true(fabs(err / ref - l1) <= 1e-4 * l1); // float32 GEMM inside the loop
    }
    free(c32);
    lb_gptq_hessian_free(h);
    free(W), free(X), free(H), free(codes), free(what);
}

/* ------------------------------------------------------------------- data */

static void test_data_lines(void **state)
{
    (void)state;
    const char *vocab[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat",
                           "sat", "on", "mat", "a", "##s", "."};
    lb_tokenizer *tok = NULL;
    assert_int_equal(lb_tokenizer_create(NULL, vocab, sizeof vocab / sizeof *vocab, NULL, &tok),
                     LB_OK);
    char path[1024];
    snprintf(path, sizeof path, "%s/ptq_lines.txt", lb_test_tmp_dir());
    const char *text = "the cat sat\n\n   \non the mat.\r\ncats\nthe cat sat on a mat the cat";
    assert_int_equal(lb_test_write_file(path, text, strlen(text)), 0);
    lb_model_config c;
    lb_model_config_default(LB_MODEL_BERT, &c);
    char spec[1100];
    snprintf(spec, sizeof spec, "lines:%s", path);
    lb_ptq_data *d = NULL;
    assert_int_equal(lb_ptq_data_open(NULL, spec, &c, tok, 8, LB_PTQ_CALIB, 0, &d), LB_OK);
    assert_int_equal(lb_ptq_data_size(d), 4); // blank lines are skipped
    const char *texts[4];
    size_t lens[4];
    assert_int_equal(lb_ptq_data_lines(d, 4, texts, lens), LB_OK);
    assert_int_equal(lens[1], strlen("on the mat.")); // CR LF stripped
    assert_memory_equal(texts[2], "cats", 4);
    lb_model_batch b;
    int64_t taken;
    assert_int_equal(lb_ptq_data_batch(NULL, d, 1, 3, 1, &b, &taken), LB_OK);
    assert_int_equal(taken, 3);
    assert_null(b.targets); // sentences have no targets
    // [CLS] on the mat . [SEP] = 6 tokens; "cats" = 4; the last one truncated to 8
    assert_int_equal(b.T, 8);
    const int32_t want0[8] = {2, 8, 5, 9, 12, 3, 0, 0};
    assert_memory_equal(b.tokens, want0, sizeof want0);
    const uint8_t mask0[8] = {1, 1, 1, 1, 1, 1, 0, 0};
    assert_memory_equal(b.attention_mask, mask0, 8);
    const int32_t want1[4] = {2, 6, 11, 3};
    assert_memory_equal(b.tokens + 8, want1, sizeof want1);
    assert_int_equal(b.tokens[2 * 8 + 7], 3); // [SEP] after truncation
    assert_int_equal(lb_ptq_data_batch(NULL, d, 4, 2, 0, &b, &taken), LB_OK);
    assert_int_equal(taken, 0);
    lb_ptq_data_free(d);
    // a byte-level model cannot take lines, a missing file is an error
    lb_model_config g;
    lb_model_config_default(LB_MODEL_GPT, &g);
    assert_int_equal(lb_ptq_data_open(NULL, spec, &g, tok, 8, LB_PTQ_EVAL, 0, &d), LB_ERR_ARG);
    assert_int_equal(lb_ptq_data_open(NULL, "lines:/nonexistent", &c, tok, 8, LB_PTQ_EVAL, 0, &d),
                     LB_ERR_NOT_FOUND);
    assert_int_equal(lb_ptq_data_open(NULL, "images", &c, tok, 8, LB_PTQ_EVAL, 0, &d), LB_ERR_ARG);
    lb_tokenizer_free(tok);
}

/* ----------------------------------------------------------------- errors */

static void test_errors(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    lb_ctx_create(&ctx);
    lb_ptq_options o = opts_of(LB_PTQ_RTN, 9, 0);
    assert_int_equal(lb_ptq_options_check(ctx, &o), LB_ERR_ARG);
    o = opts_of(LB_PTQ_RTN, 4, 8);
    o.act_sites = LB_PTQ_ACT_NONE;
    assert_int_equal(lb_ptq_options_check(ctx, &o), LB_ERR_ARG);
    o = opts_of(LB_PTQ_POWERQUANT, 4, 0);
    o.range.method = LB_RANGE_MSE;
    assert_int_equal(lb_ptq_options_check(ctx, &o), LB_ERR_ARG);
    lb_ptq_method m;
    assert_int_equal(lb_ptq_method_from_name(ctx, "awq", &m), LB_ERR_ARG);
    assert_int_equal(lb_ptq_method_from_name(ctx, "nupes", &m), LB_OK);
    assert_int_equal(m, LB_PTQ_NUPES);
    // data-dependent methods need calibration batches
    const lb_model_config c = tiny(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX);
    lb_model *fp = make_fp(&c, 21);
    o = opts_of(LB_PTQ_GPTQ, 4, 0);
    lb_ptq_model *q = NULL;
    const lb_model_options mo = {B_CAL, 0, 0};
    assert_int_equal(lb_ptq_quantize(ctx, fp, NULL, &o, NULL, NULL, lb_backend_cpu(), &mo, &q),
                     LB_ERR_ARG);
    // rtn without activations is data-free
    o = opts_of(LB_PTQ_RTN, 4, 0);
    assert_int_equal(lb_ptq_quantize(ctx, fp, NULL, &o, NULL, NULL, lb_backend_cpu(), &mo, &q),
                     LB_OK);
    // a quantized model cannot be trained
    synth s = {.cfg = c};
    lb_model_batch b;
    synth_batch(&s, NULL, 0, &b);
    int32_t targets[B_CAL * T_TOK];
    for (int i = 0; i < B_CAL * T_TOK; i++) targets[i] = 3;
    b.targets = targets;
    assert_int_equal(lb_model_forward(ctx, lb_ptq_model_get(q), &b, 1, 0, NULL), LB_OK);
    assert_int_equal(lb_model_backward(ctx, lb_ptq_model_get(q)), LB_ERR_UNSUPPORTED);
    // corrupt files: a code outside [-7, 7], a codebook that is not its exponent's
    char path[1024], bad[1024];
    snprintf(path, sizeof path, "%s/ptq_err.safetensors", lb_test_tmp_dir());
    snprintf(bad, sizeof bad, "%s/ptq_err_bad.safetensors", lb_test_tmp_dir());
    assert_int_equal(lb_ptq_save(ctx, q, NULL, path), LB_OK);
    lb_ptq_model_free(q);
    lb_safetensors *st = NULL;
    assert_int_equal(lb_safetensors_read(ctx, path, &st), LB_OK);
    lb_safetensors_writer *w = NULL;
    assert_int_equal(lb_safetensors_writer_create(ctx, &w), LB_OK);
    for (size_t i = 0; i < lb_safetensors_metadata_count(st); i++) {
        const char *k = lb_safetensors_metadata_key(st, i);
        lb_safetensors_writer_set_metadata(ctx, w, k, lb_safetensors_metadata(st, k));
    }
    for (size_t i = 0; i < lb_safetensors_count(st); i++) {
        lb_tensor *t = NULL;
        const char *name = lb_safetensors_name(st, i);
        assert_int_equal(lb_safetensors_get(ctx, st, name, &t), LB_OK);
        if (strcmp(name, "q.blocks.0.mlp.fc1.weight.codes") == 0)
            ((uint8_t *)t->data)[3] = 0x88; // -8 in both nibbles
        assert_int_equal(lb_safetensors_writer_add(ctx, w, name, t), LB_OK);
        lb_tensor_free(t);
    }
    assert_int_equal(lb_safetensors_writer_save(ctx, w, bad), LB_OK);
    lb_safetensors_writer_free(w);
    lb_safetensors_free(st);
    assert_int_equal(lb_ptq_model_load(ctx, bad, lb_backend_cpu(), &mo, &q), LB_ERR_FORMAT);
    assert_non_null(strstr(lb_ctx_error(ctx), "code out of range"));
    // a float checkpoint path that does not exist
    assert_int_equal(lb_ptq_model_load(ctx, "/nonexistent.safetensors", lb_backend_cpu(), &mo, &q),
                     LB_ERR_IO);
    lb_model_free(fp);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_quantize),
        cmocka_unit_test(test_integer_linear),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_w8a8_calibration),
        cmocka_unit_test(test_gptq_vs_rtn),
        cmocka_unit_test(test_powerquant_exponent),
        cmocka_unit_test(test_nupes_loops),
        cmocka_unit_test(test_nupes_layer),
        cmocka_unit_test(test_data_lines),
        cmocka_unit_test(test_errors),
    };
    return LB_RUN_TESTS(tests);
}
