/* tests/test_model_oracle.c — the models against PyTorch (llm.c's
 * test_gpt2 idea): tests/gen/models_oracle.py built tiny vit, gpt and bert
 * models with softmax, clipped-softmax and gated attention in float64 torch
 * and saved the weights, a batch, the logits, the loss, every parameter
 * gradient and the losses of 5 AdamW steps (tests/data/models/
 * oracle_<model>_<attention>.safetensors). Here lowbit loads the same weights
 * by name (so the parameter layout of doc/models.md is checked too), on the
 * ref and the cpu backend, and must reproduce them in float32:
 *   logits       |a - b| <= 2e-5 + 1e-4 |b|
 *   loss         |a - b| <= 2e-5 |b|
 *   gradients    |a - b| <= 2e-5 max|b| + 1e-3 |b| per tensor
 *   step losses  |a - b| <= 1e-4 |b|  (5 AdamW steps with clipping)
 * float32 against float64 keeps ~1e-6 relative error per op; the bounds
 * leave an order of magnitude of room and still catch any wrong term.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/safetensors.h"
#include "lowbit/train.h"
#include "test_util.h"

static int meta_int(const lb_safetensors *st, const char *key, int dflt)
{
    const char *v = lb_safetensors_metadata(st, key);
    return v ? atoi(v) : dflt;
}

static double meta_double(const lb_safetensors *st, const char *key, double dflt)
{
    const char *v = lb_safetensors_metadata(st, key);
    return v ? strtod(v, NULL) : dflt;
}

/* The config the fixture was generated with. */
static void read_config(const lb_safetensors *st, lb_train_config *tc)
{
    lb_model_kind kind;
    assert_int_equal(lb_model_kind_from_name(NULL, lb_safetensors_metadata(st, "model.kind"), &kind),
                     LB_OK);
    lb_train_config_default(kind, tc);
    lb_model_config *c = &tc->model;
    assert_int_equal(lb_attention_kind_from_name(
                         NULL, lb_safetensors_metadata(st, "model.attention"), &c->attention),
                     LB_OK);
    c->n_layer = meta_int(st, "model.n_layer", 0);
    c->d_model = meta_int(st, "model.d_model", 0);
    c->n_head = meta_int(st, "model.n_head", 0);
    c->d_ff = meta_int(st, "model.d_ff", 0);
    c->max_seq_len = meta_int(st, "model.max_seq_len", 0);
    c->vocab_size = meta_int(st, "model.vocab_size", 0);
    c->type_vocab_size = meta_int(st, "model.type_vocab_size", 0);
    c->n_classes = meta_int(st, "model.n_classes", 0);
    c->image_size = meta_int(st, "model.image_size", 0);
    c->patch_size = meta_int(st, "model.patch_size", 0);
    c->cls_token = meta_int(st, "model.cls_token", 0);
    c->tied_embeddings = meta_int(st, "model.tied_embeddings", 0);
    c->embed_ln = meta_int(st, "model.embed_ln", 0);
    c->ln_eps = (float)meta_double(st, "model.ln_eps", 0);
    c->clip_gamma = (float)meta_double(st, "model.clip_gamma", 0);
    c->clip_zeta = (float)meta_double(st, "model.clip_zeta", 1);
    c->gate_init = (float)meta_double(st, "model.gate_init", 0.5);
    tc->lr = tc->min_lr = meta_double(st, "train.lr", 0); // constant learning rate
    tc->warmup_steps = 0;
    tc->steps = meta_int(st, "train.steps", 0);
    tc->beta1 = meta_double(st, "train.beta1", 0);
    tc->beta2 = meta_double(st, "train.beta2", 0);
    tc->eps = meta_double(st, "train.eps", 0);
    tc->weight_decay = meta_double(st, "train.weight_decay", 0);
    tc->grad_clip = meta_double(st, "train.grad_clip", 0);
}

static lb_tensor *get(const lb_safetensors *st, const char *name)
{
    lb_tensor *t = NULL;
    if (lb_safetensors_get(NULL, st, name, &t) != LB_OK) return NULL;
    return t;
}

/* Worst excess of |a - b| over atol + rtol |b|, with its index. */
static double excess(const float *a, const float *b, int64_t n, double atol, double rtol,
                     int64_t *where)
{
    double worst = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - (double)b[i]) - (atol + rtol * fabs((double)b[i]));
        if (e > worst || isnan(e)) {
            worst = isnan(e) ? INFINITY : e;
            *where = i;
        }
    }
    return worst;
}

static void check_fixture(const char *file, const lb_backend *be)
{
    char path[1024];
    lb_test_path(path, sizeof path, lb_test_data_dir(), file);
    lb_safetensors *st = NULL;
    assert_int_equal(lb_safetensors_read(NULL, path, &st), LB_OK);
    lb_train_config tc;
    read_config(st, &tc);
    lb_model *m = NULL;
    assert_int_equal(lb_model_create(NULL, &tc.model, be, NULL, 3, &m), LB_OK);

    // weights by name; the fixture holds exactly the model's tensors
    size_t n_param = 0;
    for (size_t i = 0; i < lb_safetensors_count(st); i++)
        n_param += strncmp(lb_safetensors_name(st, i), "param.", 6) == 0;
    assert_int_equal(n_param, lb_model_num_tensors(m));
    for (size_t k = 0; k < lb_model_num_tensors(m); k++) {
        const lb_param_info *p = lb_model_tensor(m, k);
        char name[96];
        snprintf(name, sizeof name, "param.%s", p->name);
        lb_ctx *ctx;
        lb_ctx_create(&ctx);
        lb_status s = lb_safetensors_get_into(ctx, st, name, LB_F32, p->ndim, p->shape,
                                              lb_model_params(m) + p->offset);
        if (s != LB_OK) fprintf(stderr, "%s: %s\n", file, lb_ctx_error(ctx));
        lb_ctx_free(ctx);
        assert_int_equal(s, LB_OK);
    }

    // the batch
    lb_tensor *images = get(st, "input.images"), *tokens = get(st, "input.tokens");
    lb_tensor *types = get(st, "input.token_types"), *mask = get(st, "input.mask");
    lb_tensor *targets = get(st, "input.targets");
    assert_non_null(targets);
    lb_model_batch b = {.B = 3};
    if (images) b.images = lb_tensor_f32(images);
    if (tokens) {
        b.T = tokens->shape[1];
        b.tokens = lb_tensor_s32(tokens);
    }
    if (types) b.token_types = lb_tensor_s32(types);
    if (mask) b.attention_mask = lb_tensor_u8(mask);
    b.targets = lb_tensor_s32(targets);

    // forward: logits and loss
    double loss = 0;
    lb_model_zero_grad(m);
    assert_int_equal(lb_model_forward(NULL, m, &b, 1, 0, &loss), LB_OK);
    lb_tensor *want_logits = get(st, "out.logits"), *want_loss = get(st, "out.loss");
    int64_t rows, cols, at = 0;
    const float *logits = lb_model_logits(m, &rows, &cols);
    assert_int_equal((size_t)(rows * cols), want_logits->numel);
    double e = excess(logits, lb_tensor_f32(want_logits), rows * cols, 2e-5, 1e-4, &at);
    if (e > 0) {
        fprintf(stderr, "%s (%s): logit %lld: %.8g vs torch %.8g\n", file, be->name,
                (long long)at, (double)logits[at], (double)lb_tensor_f32(want_logits)[at]);
        fail();
    }
    const double wl = (double)lb_tensor_f32(want_loss)[0];
    if (fabs(loss - wl) > 2e-5 * fabs(wl)) {
        fprintf(stderr, "%s (%s): loss %.8g vs torch %.8g\n", file, be->name, loss, wl);
        fail();
    }

    // backward: every parameter gradient
    assert_int_equal(lb_model_backward(NULL, m), LB_OK);
    for (size_t k = 0; k < lb_model_num_tensors(m); k++) {
        const lb_param_info *p = lb_model_tensor(m, k);
        char name[96];
        snprintf(name, sizeof name, "grad.%s", p->name);
        lb_tensor *g = get(st, name);
        assert_non_null(g);
        assert_int_equal(g->numel, (size_t)p->numel);
        double gmax = 0;
        for (size_t i = 0; i < g->numel; i++) gmax = fmax(gmax, fabs(lb_tensor_f32(g)[i]));
        const float *mine = lb_model_grads(m) + p->offset;
        e = excess(mine, lb_tensor_f32(g), p->numel, 2e-5 * gmax, 1e-3, &at);
        if (e > 0) {
            fprintf(stderr, "%s (%s): %s[%lld]: %.8g vs torch %.8g (max |g| %.3g)\n", file,
                    be->name, p->name, (long long)at, (double)mine[at],
                    (double)lb_tensor_f32(g)[at], gmax);
            fail();
        }
        lb_tensor_free(g);
    }

    // five AdamW steps on the same batch
    lb_tensor *want_steps = get(st, "out.step_losses");
    const int64_t n = lb_model_num_params(m);
    float *mo = lb_calloc((size_t)n, sizeof(float)), *vo = lb_calloc((size_t)n, sizeof(float));
    for (int64_t s = 0; s < tc.steps; s++) {
        lb_model_zero_grad(m);
        assert_int_equal(lb_model_forward(NULL, m, &b, 1, s, &loss), LB_OK);
        const double w = (double)lb_tensor_f32(want_steps)[s];
        if (fabs(loss - w) > 1e-4 * fabs(w)) {
            fprintf(stderr, "%s (%s): AdamW step %lld loss %.8g vs torch %.8g\n", file, be->name,
                    (long long)s, loss, w);
            fail();
        }
        assert_int_equal(lb_model_backward(NULL, m), LB_OK);
        assert_int_equal(lb_optimizer_step(NULL, m, &tc, mo, vo, s, NULL), LB_OK);
    }
    lb_free(mo), lb_free(vo);
    lb_tensor_free(images), lb_tensor_free(tokens), lb_tensor_free(types), lb_tensor_free(mask);
    lb_tensor_free(targets), lb_tensor_free(want_logits), lb_tensor_free(want_loss);
    lb_tensor_free(want_steps);
    lb_model_free(m);
    lb_safetensors_free(st);
}

static void run_kind(const char *kind)
{
    static const char *const attention[3] = {"softmax", "clipped", "gated"};
    for (int a = 0; a < 3; a++) {
        char file[96];
        snprintf(file, sizeof file, "models/oracle_%s_%s.safetensors", kind, attention[a]);
        check_fixture(file, lb_backend_ref());
        check_fixture(file, lb_backend_cpu());
    }
}

static void test_oracle_vit(void **state)
{
    (void)state;
    run_kind("vit");
}

static void test_oracle_gpt(void **state)
{
    (void)state;
    run_kind("gpt");
}

static void test_oracle_bert(void **state)
{
    (void)state;
    run_kind("bert");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle_vit),
        cmocka_unit_test(test_oracle_gpt),
        cmocka_unit_test(test_oracle_bert),
    };
    return LB_RUN_TESTS(tests);
}
