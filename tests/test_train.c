/* tests/test_train.c — the training loop and checkpoints:
 *   - the learning-rate schedule (warm-up, cosine, end points);
 *   - training lowers the loss; the same seed gives the same bits;
 *   - resume: N steps straight == N/2 steps, save, load, N/2 steps, bit for
 *     bit (parameters, AdamW moments, losses), for gpt and bert on a small
 *     text file and for vit on Fashion-MNIST (when installed) across an
 *     epoch boundary;
 *   - malformed and wrong-model checkpoints give LB_ERR_FORMAT / LB_ERR_ARG
 *     with a clear detail, never a crash;
 *   - a diverging run stops with LB_ERR_NUMERIC.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <unistd.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/datasets.h"
#include "lowbit/safetensors.h"
#include "lowbit/train.h"
#include "test_util.h"

static char g_text_path[400];

/* A deterministic ~24 KB English-like text in the scratch directory. */
static const char *text_file(void)
{
    if (g_text_path[0]) return g_text_path;
    lb_test_path(g_text_path, sizeof g_text_path, lb_test_tmp_dir(), "train_text.txt");
    static const char *const words[] = {"the", "quick", "brown", "fox", "jumps", "over", "a",
                                        "lazy", "dog", "and", "runs", "far", "away", "from",
                                        "home", "while", "birds", "sing"};
    char *buf = malloc(24000);
    size_t n = 0;
    for (uint64_t i = 0; n < 23900; i++) {
        const char *w = words[lb_rng_u32(99, 1, i) % 18];
        n += (size_t)snprintf(buf + n, 24000 - n, "%s%s", w, i % 11 == 10 ? ".\n" : " ");
    }
    assert_int_equal(lb_test_write_file(g_text_path, buf, n), 0);
    free(buf);
    return g_text_path;
}

static void tiny_text_config(lb_model_kind kind, lb_train_config *c)
{
    lb_train_config_default(kind, c);
    c->model.n_layer = 2;
    c->model.d_model = 32;
    c->model.n_head = 2;
    c->model.d_ff = 64;
    c->model.max_seq_len = 16;
    c->model.attention = kind == LB_MODEL_GPT ? LB_ATTENTION_GATED : LB_ATTENTION_CLIPPED;
    c->model.clip_gamma = -2.0f / 16;
    snprintf(c->data, sizeof c->data, "text:%s", text_file());
    c->batch_size = 4;
    c->steps = 8;
    c->warmup_steps = 2;
    c->lr = 3e-3;
    c->eval_limit = 8;
    c->seed = 1234;
}

static void test_schedule(void **state)
{
    (void)state;
    lb_train_config c;
    lb_train_config_default(LB_MODEL_GPT, &c);
    c.lr = 1e-3, c.min_lr = 1e-4, c.steps = 110, c.warmup_steps = 10;
    assert_true(fabs(lb_train_lr(&c, 0) - 1e-4) < 1e-15);     // (0 + 1) / 10 of peak
    assert_true(fabs(lb_train_lr(&c, 9) - 1e-3) < 1e-15);     // end of warm-up
    assert_true(fabs(lb_train_lr(&c, 10) - 1e-3) < 1e-15);    // cosine starts at peak
    assert_true(fabs(lb_train_lr(&c, 60) - 5.5e-4) < 1e-12);  // half way: (peak + min) / 2
    assert_true(fabs(lb_train_lr(&c, 110) - 1e-4) < 1e-15);   // the end: min_lr
    assert_true(fabs(lb_train_lr(&c, 500) - 1e-4) < 1e-15);   // clamped after
    for (int64_t s = 10; s < 110; s++) assert_true(lb_train_lr(&c, s + 1) <= lb_train_lr(&c, s));
    c.warmup_steps = 0;
    assert_true(fabs(lb_train_lr(&c, 0) - 1e-3) < 1e-15);
}

/* Runs n steps, recording the losses. */
static void run_steps(lb_trainer *tr, int n, double *losses)
{
    for (int i = 0; i < n; i++) {
        lb_step_info info;
        assert_int_equal(lb_trainer_step(NULL, tr, &info), LB_OK);
        if (losses) losses[i] = info.loss;
    }
}

/* Compares two trainers' parameters and moments bit for bit (via saved files). */
static void assert_same_state(lb_trainer *a, lb_trainer *b)
{
    lb_model *ma = lb_trainer_model(a), *mb = lb_trainer_model(b);
    assert_int_equal(lb_model_num_params(ma), lb_model_num_params(mb));
    assert_memory_equal(lb_model_params(ma), lb_model_params(mb),
                        (size_t)lb_model_num_params(ma) * sizeof(float));
    char pa[512], pb[512];
    lb_test_path(pa, sizeof pa, lb_test_tmp_dir(), "state_a.safetensors");
    lb_test_path(pb, sizeof pb, lb_test_tmp_dir(), "state_b.safetensors");
    assert_int_equal(lb_trainer_save(NULL, a, pa), LB_OK);
    assert_int_equal(lb_trainer_save(NULL, b, pb), LB_OK);
    FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    int ca, cb;
    long pos = 0;
    do {
        ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) {
            fprintf(stderr, "checkpoints differ at byte %ld\n", pos);
            fail();
        }
        pos++;
    } while (ca != EOF);
    fclose(fa), fclose(fb);
}

/* N straight vs N/2 + save + resume + N/2. */
static void resume_case(const lb_train_config *cfg, int n)
{
    char path[512];
    lb_test_path(path, sizeof path, lb_test_tmp_dir(), "resume.safetensors");
    lb_trainer *straight = NULL, *first = NULL, *second = NULL;
    double l_straight[64], l_split[64];
    assert_int_equal(lb_trainer_create(NULL, cfg, &straight), LB_OK);
    run_steps(straight, n, l_straight);
    assert_int_equal(lb_trainer_create(NULL, cfg, &first), LB_OK);
    run_steps(first, n / 2, l_split);
    assert_int_equal(lb_trainer_save(NULL, first, path), LB_OK);
    lb_trainer_free(first);
    assert_int_equal(lb_trainer_resume(NULL, path, 0, &second), LB_OK);
    assert_int_equal(lb_trainer_step_count(second), n / 2);
    run_steps(second, n - n / 2, l_split + n / 2);
    for (int i = 0; i < n; i++) assert_true(l_straight[i] == l_split[i]);
    assert_same_state(straight, second);
    lb_trainer_free(straight);
    lb_trainer_free(second);
}

static void test_resume_gpt(void **state)
{
    (void)state;
    lb_train_config c;
    tiny_text_config(LB_MODEL_GPT, &c);
    resume_case(&c, 8);
}

static void test_resume_bert(void **state)
{
    (void)state;
    lb_train_config c;
    tiny_text_config(LB_MODEL_BERT, &c);
    resume_case(&c, 8);
}

static int have_fashion_mnist(void)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", lb_fashion_mnist_dir(NULL));
    return access(p, R_OK) == 0;
}

static void tiny_vit_config(lb_train_config *c)
{
    lb_train_config_default(LB_MODEL_VIT, c);
    c->model.n_layer = 1;
    c->model.d_model = 16;
    c->model.n_head = 2;
    c->model.d_ff = 32;
    c->train_limit = 96; // 3 batches per epoch: 7 steps cross two epoch boundaries
    c->batch_size = 32;
    c->steps = 7;
    c->warmup_steps = 1;
    c->eval_limit = 64;
}

static void test_resume_vit(void **state)
{
    (void)state;
    if (!have_fashion_mnist()) skip();
    lb_train_config c;
    tiny_vit_config(&c);
    resume_case(&c, 7);
}

/* Training lowers the loss and a fresh trainer with the same seed repeats
 * it exactly; evaluation reports bits per byte against the unigram
 * baseline. */
static void test_learns_and_repeats(void **state)
{
    (void)state;
    lb_train_config c;
    tiny_text_config(LB_MODEL_GPT, &c);
    c.model.attention = LB_ATTENTION_SOFTMAX;
    c.steps = 120;
    c.batch_size = 8;
    c.lr = 1e-2;
    // one thread: 240 tiny steps would mostly measure fork/join costs on a
    // busy machine (the resume tests run with the harness's thread count)
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    const int threads = lb_ctx_threads(ctx);
    assert_int_equal(lb_ctx_set_threads(ctx, 1), LB_OK);
    lb_trainer *a = NULL, *b = NULL;
    assert_int_equal(lb_trainer_create(NULL, &c, &a), LB_OK);
    assert_int_equal(lb_trainer_create(NULL, &c, &b), LB_OK);
    lb_eval_result before, after;
    assert_int_equal(lb_trainer_evaluate(NULL, a, &before), LB_OK);
    run_steps(a, 120, NULL);
    run_steps(b, 120, NULL);
    assert_memory_equal(lb_model_params(lb_trainer_model(a)), lb_model_params(lb_trainer_model(b)),
                        (size_t)lb_model_num_params(lb_trainer_model(a)) * sizeof(float));
    assert_int_equal(lb_trainer_evaluate(NULL, a, &after), LB_OK);
    assert_int_equal(after.examples, 8);
    assert_int_equal(after.predictions, 8 * 16);
    // an untrained model is near log2(256) = 8 bits; the words are easy to learn
    assert_true(before.bits_per_byte > 7.0);
    assert_true(after.bits_per_byte < lb_trainer_unigram_bits(a) - 0.25); // uses context
    assert_true(fabs(after.bits_per_byte - after.loss / log(2.0)) < 1e-12);
    lb_trainer_free(a);
    lb_trainer_free(b);
    assert_int_equal(lb_ctx_set_threads(ctx, threads), LB_OK);
    lb_ctx_free(ctx);
}

static void test_diverging_run(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    lb_train_config c;
    tiny_text_config(LB_MODEL_GPT, &c);
    c.lr = 1e30; // the first update makes the weights overflow
    c.grad_clip = 0;
    c.warmup_steps = 0;
    lb_trainer *tr = NULL;
    assert_int_equal(lb_trainer_create(ctx, &c, &tr), LB_OK);
    lb_status st = LB_OK;
    for (int i = 0; i < 5 && st == LB_OK; i++) st = lb_trainer_step(ctx, tr, NULL);
    assert_int_equal(st, LB_ERR_NUMERIC);
    assert_non_null(strstr(lb_ctx_error(ctx), "non-finite"));
    lb_trainer_free(tr);
    lb_ctx_free(ctx);
}

/* Rewrites checkpoint `src` to `dst`, replacing metadata `key` by `value`
 * (NULL: drop the key) and dropping tensors whose name starts with `drop`. */
static void rewrite(const char *src, const char *dst, const char *key, const char *value,
                    const char *drop)
{
    lb_safetensors *st = NULL;
    assert_int_equal(lb_safetensors_read(NULL, src, &st), LB_OK);
    lb_safetensors_writer *w = NULL;
    assert_int_equal(lb_safetensors_writer_create(NULL, &w), LB_OK);
    for (size_t i = 0; i < lb_safetensors_metadata_count(st); i++) {
        const char *k = lb_safetensors_metadata_key(st, i);
        if (key && strcmp(k, key) == 0) continue;
        assert_int_equal(
            lb_safetensors_writer_set_metadata(NULL, w, k, lb_safetensors_metadata(st, k)), LB_OK);
    }
    if (key && value) assert_int_equal(lb_safetensors_writer_set_metadata(NULL, w, key, value), LB_OK);
    for (size_t i = 0; i < lb_safetensors_count(st); i++) {
        const char *name = lb_safetensors_name(st, i);
        if (drop && strncmp(name, drop, strlen(drop)) == 0) continue;
        lb_tensor *t = NULL;
        assert_int_equal(lb_safetensors_get(NULL, st, name, &t), LB_OK);
        assert_int_equal(lb_safetensors_writer_add(NULL, w, name, t), LB_OK);
        lb_tensor_free(t);
    }
    assert_int_equal(lb_safetensors_writer_save(NULL, w, dst), LB_OK);
    lb_safetensors_writer_free(w);
    lb_safetensors_free(st);
}

static void expect_resume_error(lb_ctx *ctx, const char *path, lb_status want, const char *text)
{
    lb_trainer *tr = (lb_trainer *)0x1;
    lb_status st = lb_trainer_resume(ctx, path, 0, &tr);
    if (st != want || !strstr(lb_ctx_error(ctx), text)) {
        fprintf(stderr, "resume %s: got %s '%s', want %s containing '%s'\n", path,
                lb_status_str(st), lb_ctx_error(ctx), lb_status_str(want), text);
        fail();
    }
    assert_null(tr);
}

static void test_bad_checkpoints(void **state)
{
    (void)state;
    lb_ctx *ctx;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    const char *tmp = lb_test_tmp_dir();
    char good[512], bad[512];
    lb_test_path(good, sizeof good, tmp, "good.safetensors");
    lb_test_path(bad, sizeof bad, tmp, "bad.safetensors");
    lb_train_config c;
    tiny_text_config(LB_MODEL_GPT, &c);
    lb_trainer *tr = NULL;
    assert_int_equal(lb_trainer_create(ctx, &c, &tr), LB_OK);
    run_steps(tr, 2, NULL);
    assert_int_equal(lb_trainer_save(ctx, tr, good), LB_OK);
    lb_trainer_free(tr);

    // missing file
    lb_test_path(bad, sizeof bad, tmp, "does-not-exist.safetensors");
    tr = NULL;
    assert_int_not_equal(lb_trainer_resume(ctx, bad, 0, &tr), LB_OK);
    assert_null(tr);
    lb_test_path(bad, sizeof bad, tmp, "bad.safetensors");
    // not a safetensors file at all / truncated
    assert_int_equal(lb_test_write_file(bad, "hello", 5), 0);
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "bad.safetensors");
    {
        FILE *f = fopen(good, "rb");
        char *buf = malloc(4096);
        const size_t n = fread(buf, 1, 4096, f);
        fclose(f);
        assert_int_equal(lb_test_write_file(bad, buf, n / 2), 0);
        free(buf);
        expect_resume_error(ctx, bad, LB_ERR_FORMAT, "bad.safetensors");
    }
    // a safetensors file that is not a lowbit checkpoint
    rewrite(good, bad, "format", NULL, NULL);
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "not a lowbit checkpoint");
    // a config key missing or garbled
    rewrite(good, bad, "model.n_layer", NULL, NULL);
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "'model.n_layer' is missing");
    rewrite(good, bad, "model.n_layer", "two", NULL);
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "bad value 'two'");
    rewrite(good, bad, "model.kind", "resnet", NULL);
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "unknown model.kind 'resnet'");
    rewrite(good, bad, "model.n_head", "3", NULL); // 32 % 3 != 0
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "invalid config");
    // the metadata describe another model than the tensors hold
    rewrite(good, bad, "model.d_model", "48", NULL);
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "model.wte");
    rewrite(good, bad, "model.n_layer", "3", NULL);
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "tensor 'model.blocks.2.ln1.weight' is missing");
    rewrite(good, bad, "model.kind", "bert", NULL);
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "type_vocab_size");
    // weights without optimizer state: loadable for evaluation, not resumable
    rewrite(good, bad, NULL, NULL, "optim.");
    expect_resume_error(ctx, bad, LB_ERR_FORMAT, "no optimizer state");
    lb_model *m = NULL;
    lb_checkpoint_info info;
    assert_int_equal(lb_checkpoint_load_model(ctx, bad, lb_backend_ref(), 2, &m, &info), LB_OK);
    assert_int_equal(info.has_optimizer, 0);
    assert_int_equal(info.step, 2);
    // the model does not fit the data
    lb_eval_result r;
    assert_int_equal(lb_evaluate(ctx, m, "fashion-mnist", -1, 0, &r), LB_ERR_ARG);
    assert_non_null(strstr(lb_ctx_error(ctx), "needs text data"));
    lb_model_free(m);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_resume_gpt),
        cmocka_unit_test(test_resume_bert),
        cmocka_unit_test(test_resume_vit),
        cmocka_unit_test(test_learns_and_repeats),
        cmocka_unit_test(test_diverging_run),
        cmocka_unit_test(test_bad_checkpoints),
    };
    return LB_RUN_TESTS(tests);
}
