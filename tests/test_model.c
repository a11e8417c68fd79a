/* tests/test_model.c — whole models: gradient check of tiny vit/gpt/bert with
 * every attention variant, cpu-vs-ref agreement, input validation, the
 * parameter layout (MiniLM-L6 size) and generation.
 *
 * The gradient check works on the float model (the layers themselves are
 * checked in double in test_layers.c): for each parameter tensor a random
 * direction d with +-1 on (up to) 8 random elements and 0 elsewhere, and the
 * fourth-order central difference
 *   D = [8 (L(p + h d) - L(p - h d)) - (L(p + 2h d) - L(p - 2h d))] / (12 h)
 * (truncation O(h^4)) with h = 1e-2; the loss sums in double. Float rounding
 * of a loss of ~2 is ~1e-7 relative, which gives ~2e-5 of noise in D. The
 * clipped softmax is only piecewise smooth (an entry may cross the clip
 * threshold within +-2h), so it uses h = 2e-3. |D - g.d| <= 5e-4 + 5e-3 |g.d| still detects any
 * wrong gradient term (those are O(|g.d|)); the data and seeds are fixed, so
 * the check is deterministic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/model.h"
#include "lowbit/safetensors.h"
#include "lowbit/train.h"
#include "test_util.h"

/* A tiny config of each kind. */
static void tiny_config(lb_model_kind kind, lb_attention_kind att, lb_model_config *c)
{
    lb_model_config_default(kind, c);
    c->n_layer = 2;
    c->d_model = 8;
    c->n_head = 2;
    c->d_ff = 12;
    c->init_std = 0.4f; // large enough for non-trivial attention patterns
    c->attention = att;
    c->gate_init = 0.3f;
    if (kind == LB_MODEL_VIT) {
        c->image_size = 8;
        c->patch_size = 4;
        c->n_classes = 3;
    } else {
        c->max_seq_len = 6;
        c->vocab_size = kind == LB_MODEL_GPT ? 11 : 13;
    }
    c->clip_gamma = -0.12f; // -alpha/T with alpha ~ 0.7: some entries clip
    c->clip_zeta = 1.05f;
}

/* A fixed batch for a model of config c (B = 3); arrays are static. */
static void tiny_batch(const lb_model_config *c, lb_model_batch *b)
{
    static float images[3 * 64];
    static int32_t tokens[3 * 6], targets[3 * 6], types[3 * 6], labels[3];
    static uint8_t mask[3 * 6];
    memset(b, 0, sizeof *b);
    b->B = 3;
    if (c->kind == LB_MODEL_VIT) {
        for (int i = 0; i < 3 * 64; i++) images[i] = (float)(lb_rng_uniform_f64(1, 2, (uint64_t)i) * 2 - 1);
        labels[0] = 2, labels[1] = 0, labels[2] = 1;
        b->images = images;
        b->targets = labels;
        return;
    }
    b->T = 6;
    for (int i = 0; i < 18; i++) {
        tokens[i] = (int32_t)((i * 7 + 3) % c->vocab_size);
        targets[i] = (int32_t)((i * 5 + 1) % c->vocab_size);
        types[i] = i % 6 >= 3;
        mask[i] = 1;
    }
    b->tokens = tokens;
    b->targets = targets;
    if (c->kind == LB_MODEL_BERT) {
        // padding at the end of row 1, unpredicted positions
        mask[6 + 4] = mask[6 + 5] = 0;
        targets[6 + 4] = targets[6 + 5] = -1;
        targets[0] = targets[2] = targets[13] = -1;
        b->token_types = types;
        b->attention_mask = mask;
    } else {
        targets[4] = -1;
    }
}

static double loss_at(lb_model *m, const lb_model_batch *b)
{
    double loss = 0;
    assert_int_equal(lb_model_forward(NULL, m, b, 1, 0, &loss), LB_OK);
    return loss;
}

static void gradcheck(lb_model_kind kind, lb_attention_kind att, int variant)
{
    lb_model_config c;
    tiny_config(kind, att, &c);
    if (variant && kind == LB_MODEL_VIT) c.cls_token = 0, c.embed_ln = 1; // mean pooling
    if (variant && kind == LB_MODEL_GPT) c.tied_embeddings = 0;
    lb_model *m = NULL;
    assert_int_equal(lb_model_create(NULL, &c, lb_backend_ref(), NULL, 3, &m), LB_OK);
    assert_int_equal(lb_model_init(NULL, m, 42), LB_OK);
    lb_model_batch b;
    tiny_batch(lb_model_get_config(m), &b);
    lb_model_zero_grad(m);
    const double l0 = loss_at(m, &b);
    assert_true(isfinite(l0) && l0 > 0);
    assert_int_equal(lb_model_backward(NULL, m), LB_OK);
    float *p = lb_model_params(m);
    const float *g = lb_model_grads(m);
    const double h = att == LB_ATTENTION_CLIPPED ? 2e-3 : 1e-2;
    for (size_t k = 0; k < lb_model_num_tensors(m); k++) {
        const lb_param_info *t = lb_model_tensor(m, k);
        float *saved = lb_alloc((size_t)t->numel * sizeof(float));
        memcpy(saved, p + t->offset, (size_t)t->numel * sizeof(float));
        // direction: +-1 on up to 8 random elements
        double *dir = lb_calloc((size_t)t->numel, sizeof(double));
        for (int j = 0; j < 8; j++) {
            const uint64_t r = lb_rng_u32(3, k, (uint64_t)j);
            dir[(r >> 1) % (uint64_t)t->numel] = r & 1 ? 1.0 : -1.0;
        }
        double gd = 0;
        for (int64_t i = 0; i < t->numel; i++) gd += dir[i] * (double)g[t->offset + i];
        double f[4];
        const double steps[4] = {h, -h, 2 * h, -2 * h};
        for (int s = 0; s < 4; s++) {
            for (int64_t i = 0; i < t->numel; i++)
                p[t->offset + i] = (float)((double)saved[i] + steps[s] * dir[i]);
            f[s] = loss_at(m, &b);
        }
        lb_free(dir);
        memcpy(p + t->offset, saved, (size_t)t->numel * sizeof(float));
        lb_free(saved);
        const double num = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h);
        if (fabs(num - gd) > 5e-4 + 5e-3 * fabs(gd)) {
            fprintf(stderr, "%s/%s variant %d: tensor %s: analytic %.8g numeric %.8g\n",
                    lb_model_kind_name(kind), lb_attention_kind_name(att), variant, t->name, gd,
                    num);
            fail();
        }
    }
    lb_model_free(m);
}

static void test_gradcheck_vit(void **state)
{
    (void)state;
    for (int a = 0; a < 3; a++) gradcheck(LB_MODEL_VIT, (lb_attention_kind)a, 0);
    gradcheck(LB_MODEL_VIT, LB_ATTENTION_SOFTMAX, 1);
}

static void test_gradcheck_gpt(void **state)
{
    (void)state;
    for (int a = 0; a < 3; a++) gradcheck(LB_MODEL_GPT, (lb_attention_kind)a, 0);
    gradcheck(LB_MODEL_GPT, LB_ATTENTION_GATED, 1);
}

static void test_gradcheck_bert(void **state)
{
    (void)state;
    for (int a = 0; a < 3; a++) gradcheck(LB_MODEL_BERT, (lb_attention_kind)a, 0);
}

/* The cpu backend gives the same loss and gradients as ref within float
 * rounding of the sgemm sums (bit-identical apart from those). */
static void test_cpu_matches_ref(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        lb_model_config c;
        tiny_config((lb_model_kind)kind, LB_ATTENTION_GATED, &c);
        c.d_model = 32, c.n_head = 4, c.d_ff = 64;
        lb_model *mr = NULL, *mc = NULL;
        assert_int_equal(lb_model_create(NULL, &c, lb_backend_ref(), NULL, 3, &mr), LB_OK);
        assert_int_equal(lb_model_create(NULL, &c, lb_backend_cpu(), NULL, 3, &mc), LB_OK);
        lb_model_init(NULL, mr, 5);
        lb_model_init(NULL, mc, 5);
        assert_memory_equal(lb_model_params(mr), lb_model_params(mc),
                            (size_t)lb_model_num_params(mr) * sizeof(float));
        lb_model_batch b;
        tiny_batch(lb_model_get_config(mr), &b);
        double lr, lc;
        lb_model_zero_grad(mr);
        lb_model_zero_grad(mc);
        assert_int_equal(lb_model_forward(NULL, mr, &b, 1, 0, &lr), LB_OK);
        assert_int_equal(lb_model_forward(NULL, mc, &b, 1, 0, &lc), LB_OK);
        assert_true(fabs(lr - lc) <= 1e-5 * fabs(lr));
        assert_int_equal(lb_model_backward(NULL, mr), LB_OK);
        assert_int_equal(lb_model_backward(NULL, mc), LB_OK);
        const float *gr = lb_model_grads(mr), *gc = lb_model_grads(mc);
        double gmax = 0;
        for (int64_t i = 0; i < lb_model_num_params(mr); i++) gmax = fmax(gmax, fabs(gr[i]));
        for (int64_t i = 0; i < lb_model_num_params(mr); i++)
            if (fabs((double)gr[i] - (double)gc[i]) > 1e-5 * gmax + 1e-4 * fabs(gr[i])) {
                fprintf(stderr, "kind %d param %lld: ref %g cpu %g\n", kind, (long long)i,
                        (double)gr[i], (double)gc[i]);
                fail();
            }
        lb_model_free(mr);
        lb_model_free(mc);
    }
}

static void test_bad_batches(void **state)
{
    (void)state;
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_model_config c;
    tiny_config(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX, &c);
    lb_model *m = NULL;
    assert_int_equal(lb_model_create(ctx, &c, lb_backend_ref(), NULL, 3, &m), LB_OK);
    lb_model_batch b;
    tiny_batch(lb_model_get_config(m), &b);
    int32_t bad[18];
    memcpy(bad, b.tokens, sizeof bad);
    bad[7] = 11; // vocab is 11
    lb_model_batch bb = b;
    bb.tokens = bad;
    assert_int_equal(lb_model_forward(ctx, m, &bb, 1, 0, NULL), LB_ERR_ARG);
    assert_non_null(strstr(lb_ctx_error(ctx), "token 11"));
    bb = b;
    bb.B = 4; // max batch 3
    assert_int_equal(lb_model_forward(ctx, m, &bb, 1, 0, NULL), LB_ERR_ARG);
    bb = b;
    bb.T = 7; // max_seq_len 6
    assert_int_equal(lb_model_forward(ctx, m, &bb, 1, 0, NULL), LB_ERR_ARG);
    // backward without a forward with targets
    bb = b;
    bb.targets = NULL;
    assert_int_equal(lb_model_forward(ctx, m, &bb, 0, 0, NULL), LB_OK);
    assert_int_equal(lb_model_backward(ctx, m), LB_ERR_ARG);
    lb_model_free(m);
    // config errors
    tiny_config(LB_MODEL_VIT, LB_ATTENTION_SOFTMAX, &c);
    c.patch_size = 3; // does not divide 8
    assert_int_equal(lb_model_create(ctx, &c, lb_backend_ref(), NULL, 3, &m), LB_ERR_ARG);
    tiny_config(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX, &c);
    c.n_head = 3; // 8 % 3 != 0
    assert_int_equal(lb_model_create(ctx, &c, lb_backend_ref(), NULL, 3, &m), LB_ERR_ARG);
    c.n_head = 2;
    c.clip_gamma = 0.1f;
    assert_int_equal(lb_model_create(ctx, &c, lb_backend_ref(), NULL, 3, &m), LB_ERR_ARG);
    lb_ctx_free(ctx);
}

/* all-MiniLM-L6-v2's BertModel has 22,713,216 parameters, 147,840 of them in
 * the pooler (which lowbit does not have); lowbit adds the MLM bias (V). */
static void test_minilm_size(void **state)
{
    (void)state;
    lb_model_config c;
    lb_model_config_minilm(&c);
    int64_t n = 0;
    assert_int_equal(lb_model_config_num_params(NULL, &c, &n), LB_OK);
    assert_int_equal(n, 22713216 - 147840 + 30522);
}

/* Greedy generation is deterministic and continues the prompt; sampling
 * depends only on the seed. */
static void test_generate(void **state)
{
    (void)state;
    lb_model_config c;
    tiny_config(LB_MODEL_GPT, LB_ATTENTION_SOFTMAX, &c);
    lb_model *m = NULL;
    assert_int_equal(lb_model_create(NULL, &c, lb_backend_cpu(), NULL, 1, &m), LB_OK);
    lb_model_init(NULL, m, 9);
    const int32_t prompt[3] = {1, 2, 3};
    int32_t a[10], b[10], d[10];
    assert_int_equal(lb_model_generate(NULL, m, prompt, 3, 10, 0.0f, 0, 1, a), LB_OK);
    assert_int_equal(lb_model_generate(NULL, m, prompt, 3, 10, 0.0f, 0, 2, b), LB_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(lb_model_generate(NULL, m, prompt, 3, 10, 1.0f, 5, 7, b), LB_OK);
    assert_int_equal(lb_model_generate(NULL, m, prompt, 3, 10, 1.0f, 5, 7, d), LB_OK);
    assert_memory_equal(b, d, sizeof b);
    for (int i = 0; i < 10; i++) assert_true(b[i] >= 0 && b[i] < 11);
    lb_model_free(m);
}

/* Export: PyTorch names and shapes; the bert qkv split and the tied LM head
 * copy hold the right values; the lowbit-only gate keeps its name. */
static void expect_tensor(const lb_safetensors *st, const char *name, int ndim,
                          const int64_t *shape, const float *values, size_t n)
{
    lb_tensor *t = NULL;
    if (lb_safetensors_get(NULL, st, name, &t) != LB_OK) {
        fprintf(stderr, "export: tensor %s missing\n", name);
        fail();
    }
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(t->shape[i], shape[i]);
    if (values) assert_memory_equal(lb_tensor_f32(t), values, n * sizeof(float));
    lb_tensor_free(t);
}

static void test_export(void **state)
{
    (void)state;
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "export.safetensors");
    for (int kind = 0; kind < 3; kind++) {
        lb_model_config c;
        tiny_config((lb_model_kind)kind, LB_ATTENTION_GATED, &c);
        lb_model *m = NULL;
        assert_int_equal(lb_model_create(NULL, &c, lb_backend_ref(), NULL, 1, &m), LB_OK);
        lb_model_init(NULL, m, 3);
        assert_int_equal(lb_model_export(NULL, m, path), LB_OK);
        lb_safetensors *st = NULL;
        assert_int_equal(lb_safetensors_read(NULL, path, &st), LB_OK);
        const float *p = lb_model_params(m);
        const lb_param_info *qkv_w = lb_model_tensor(m, (size_t)lb_model_find_tensor(m, "blocks.1.attn.qkv.weight"));
        const lb_param_info *qkv_b = lb_model_tensor(m, (size_t)lb_model_find_tensor(m, "blocks.1.attn.qkv.bias"));
        const int64_t C = 8;
        if (kind == LB_MODEL_VIT) {
            assert_string_equal(lb_safetensors_metadata(st, "names"), "timm");
            const lb_param_info *pw = lb_model_tensor(m, (size_t)lb_model_find_tensor(m, "patch.weight"));
            expect_tensor(st, "patch_embed.proj.weight", 4, (int64_t[]){C, 1, 4, 4}, p + pw->offset, 128);
            expect_tensor(st, "cls_token", 3, (int64_t[]){1, 1, C}, NULL, 0);
            expect_tensor(st, "pos_embed", 3, (int64_t[]){1, 5, C}, NULL, 0);
            expect_tensor(st, "blocks.1.attn.qkv.weight", 2, (int64_t[]){3 * C, C}, p + qkv_w->offset, 3 * 64);
            expect_tensor(st, "blocks.0.norm2.bias", 1, (int64_t[]){C}, NULL, 0);
            expect_tensor(st, "blocks.0.attn.gate.weight", 2, (int64_t[]){2, 4}, NULL, 0);
            expect_tensor(st, "norm.weight", 1, (int64_t[]){C}, NULL, 0);
            expect_tensor(st, "head.weight", 2, (int64_t[]){3, C}, NULL, 0);
            assert_int_equal(lb_safetensors_count(st), lb_model_num_tensors(m));
        } else if (kind == LB_MODEL_GPT) {
            assert_string_equal(lb_safetensors_metadata(st, "names"), "nanogpt");
            const lb_param_info *wte = lb_model_tensor(m, (size_t)lb_model_find_tensor(m, "wte"));
            expect_tensor(st, "transformer.wte.weight", 2, (int64_t[]){11, C}, p + wte->offset, 88);
            expect_tensor(st, "lm_head.weight", 2, (int64_t[]){11, C}, p + wte->offset, 88);
            expect_tensor(st, "transformer.h.1.attn.c_attn.weight", 2, (int64_t[]){3 * C, C}, p + qkv_w->offset, 3 * 64);
            expect_tensor(st, "transformer.h.0.mlp.c_proj.weight", 2, (int64_t[]){C, 12}, NULL, 0);
            expect_tensor(st, "transformer.ln_f.bias", 1, (int64_t[]){C}, NULL, 0);
            assert_int_equal(lb_safetensors_count(st), lb_model_num_tensors(m) + 1);
        } else {
            assert_string_equal(lb_safetensors_metadata(st, "names"), "hf-bert");
            static const char *const part[3] = {"query", "key", "value"};
            for (int j = 0; j < 3; j++) {
                char name[128];
                snprintf(name, sizeof name, "encoder.layer.1.attention.self.%s.weight", part[j]);
                expect_tensor(st, name, 2, (int64_t[]){C, C}, p + qkv_w->offset + j * 64, 64);
                snprintf(name, sizeof name, "encoder.layer.1.attention.self.%s.bias", part[j]);
                expect_tensor(st, name, 1, (int64_t[]){C}, p + qkv_b->offset + j * C, (size_t)C);
            }
            expect_tensor(st, "embeddings.token_type_embeddings.weight", 2, (int64_t[]){2, C}, NULL, 0);
            expect_tensor(st, "embeddings.LayerNorm.weight", 1, (int64_t[]){C}, NULL, 0);
            expect_tensor(st, "encoder.layer.0.attention.output.LayerNorm.bias", 1, (int64_t[]){C}, NULL, 0);
            expect_tensor(st, "encoder.layer.0.intermediate.dense.weight", 2, (int64_t[]){12, C}, NULL, 0);
            expect_tensor(st, "encoder.layer.0.output.dense.weight", 2, (int64_t[]){C, 12}, NULL, 0);
            expect_tensor(st, "encoder.layer.0.output.LayerNorm.weight", 1, (int64_t[]){C}, NULL, 0);
            // qkv weight and bias become 3 tensors each
            assert_int_equal(lb_safetensors_count(st), lb_model_num_tensors(m) + 2 * 2 * 2);
        }
        lb_safetensors_free(st);
        lb_model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_vit),
        cmocka_unit_test(test_gradcheck_gpt),
        cmocka_unit_test(test_gradcheck_bert),
        cmocka_unit_test(test_cpu_matches_ref),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_minilm_size),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_export),
    };
    return LB_RUN_TESTS(tests);
}
