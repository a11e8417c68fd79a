/* models/train.c — the training loop pieces: config, learning-rate schedule,
 * data for each model kind, the AdamW step, evaluation.
 *
 * Determinism: all randomness is the counter RNG at documented indices
 * (init: "init"; vit batches: lb_batcher's "shuffle"; text windows:
 * "text-window"; bert masks: "mlm-mask" at step, "mlm-eval-mask" with seed 0
 * for evaluation), every reduction in the backends runs in a fixed order,
 * and the loop keeps no other state than (params, AdamW moments, step, data
 * cursor), which is what a checkpoint holds.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/rng.h"
#include "lowbit/datasets.h"
#include "lowbit/train.h"
#include "train_internal.h"

#define TRY(expr)                                                                              \
    do {                                                                                       \
        lb_status st_ = (expr);                                                                \
        if (st_ != LB_OK) return st_;                                                          \
    } while (0)

/* ------------------------------------------------------------------ config */

void lb_train_config_default(lb_model_kind kind, lb_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    lb_model_config_default(kind, &cfg->model);
    snprintf(cfg->data, sizeof cfg->data, "%s", kind == LB_MODEL_VIT ? "fashion-mnist" : "text");
    snprintf(cfg->recipe, sizeof cfg->recipe, "fp32");
    lb_recipe_options_default(&cfg->recipe_opt);
    snprintf(cfg->backend, sizeof cfg->backend, "cpu");
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->weight_decay = 0.05;
    cfg->grad_clip = 1.0;
    cfg->min_lr = 0.0;
    cfg->mlm_prob = 0.15;
    cfg->val_fraction = -1.0;
    cfg->seed = 1;
    switch (kind) {
    case LB_MODEL_VIT:
        // 10 epochs of 468 full batches: 88.6% test accuracy (doc/training.md)
        cfg->batch_size = 128;
        cfg->lr = 3e-3;
        cfg->steps = 4680;
        cfg->warmup_steps = 200;
        cfg->eval_every = 936;
        break;
    case LB_MODEL_GPT:
        cfg->batch_size = 16;
        cfg->lr = 2e-3;
        cfg->steps = 1000;
        cfg->warmup_steps = 50;
        cfg->eval_every = 250;
        cfg->eval_limit = 100;
        break;
    case LB_MODEL_BERT:
        cfg->batch_size = 16;
        cfg->lr = 1e-3;
        cfg->steps = 1000;
        cfg->warmup_steps = 50;
        cfg->eval_every = 250;
        cfg->eval_limit = 100;
        break;
    }
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) return lb_error(ctx, LB_ERR_ARG, __VA_ARGS__);                            \
    } while (0)

/* "fashion-mnist" -> LB_DATA_IMAGES; "text" / "text:SPEC" -> LB_DATA_TEXT with
 * *spec = SPEC or "default". */
lb_status lb_data_parse(lb_ctx *ctx, const char *data, int *is_text, const char **spec)
{
    if (strcmp(data, "fashion-mnist") == 0) {
        *is_text = 0;
        *spec = NULL;
        return LB_OK;
    }
    if (strcmp(data, "text") == 0) {
        *is_text = 1;
        *spec = "default";
        return LB_OK;
    }
    if (strncmp(data, "text:", 5) == 0 && data[5]) {
        *is_text = 1;
        *spec = data + 5;
        return LB_OK;
    }
    return lb_error(ctx, LB_ERR_ARG,
                    "unknown data '%s' (expected fashion-mnist, text or text:SPEC)", data);
}

/* The data must fit the model: images for vit, bytes for gpt/bert. */
lb_status lb_data_check_model(lb_ctx *ctx, const char *data, const lb_model_config *m)
{
    int is_text;
    const char *spec;
    TRY(lb_data_parse(ctx, data, &is_text, &spec));
    if (m->kind == LB_MODEL_VIT) {
        CHECK(!is_text, "model vit needs image data (fashion-mnist), not '%s'", data);
        CHECK(m->image_size == LB_FASHION_MNIST_ROWS,
              "fashion-mnist images are 28x28 but the model expects %dx%d", m->image_size,
              m->image_size);
        CHECK(m->n_classes >= LB_FASHION_MNIST_CLASSES,
              "fashion-mnist has 10 classes but the model has %d", m->n_classes);
    } else {
        CHECK(is_text, "model %s needs text data (text or text:SPEC), not '%s'",
              lb_model_kind_name(m->kind), data);
        if (m->kind == LB_MODEL_GPT)
            CHECK(m->vocab_size >= LB_TEXT_VOCAB, "byte-level gpt needs vocab_size >= 256, got %d",
                  m->vocab_size);
        else
            CHECK(m->vocab_size > LB_BERT_MASK_ID,
                  "byte-level bert needs vocab_size >= 257 ([MASK] = 256), got %d",
                  m->vocab_size);
    }
    return LB_OK;
}

lb_status lb_train_config_check(lb_ctx *ctx, lb_train_config *cfg)
{
    CHECK(cfg, "train config: NULL");
    TRY(lb_model_config_check(ctx, &cfg->model));
    cfg->data[sizeof cfg->data - 1] = 0;
    cfg->recipe[sizeof cfg->recipe - 1] = 0;
    cfg->backend[sizeof cfg->backend - 1] = 0;
    TRY(lb_data_check_model(ctx, cfg->data, &cfg->model));
    CHECK(cfg->steps >= 1 && cfg->steps <= ((int64_t)1 << 40), "steps must be >= 1");
    CHECK(cfg->batch_size >= 1 && cfg->batch_size <= 65536, "batch size %lld not in 1..65536",
          (long long)cfg->batch_size);
    CHECK(isfinite(cfg->lr) && cfg->lr > 0, "lr must be > 0");
    CHECK(isfinite(cfg->min_lr) && cfg->min_lr >= 0 && cfg->min_lr <= cfg->lr,
          "min_lr must be in [0, lr]");
    CHECK(cfg->warmup_steps >= 0, "warmup steps must be >= 0");
    CHECK(isfinite(cfg->weight_decay) && cfg->weight_decay >= 0, "weight decay must be >= 0");
    CHECK(cfg->beta1 >= 0 && cfg->beta1 < 1 && cfg->beta2 >= 0 && cfg->beta2 < 1,
          "AdamW betas must be in [0, 1)");
    CHECK(isfinite(cfg->eps) && cfg->eps > 0, "AdamW eps must be > 0");
    CHECK(isfinite(cfg->grad_clip) && cfg->grad_clip >= 0, "grad clip must be >= 0");
    CHECK(cfg->eval_every >= 0 && cfg->eval_limit >= 0 && cfg->train_limit >= 0,
          "eval_every, eval_limit and train_limit must be >= 0");
    CHECK(cfg->mlm_prob > 0 && cfg->mlm_prob <= 1, "mlm probability must be in (0, 1]");
    CHECK(cfg->val_fraction < 1, "val fraction must be < 1");
    const lb_backend *be;
    TRY(lb_backend_find(ctx, cfg->backend, &be));
    lb_recipe *r = NULL;
    const lb_recipe_run run = {cfg->seed, cfg->steps, cfg->warmup_steps};
    TRY(lb_recipe_create_ex(ctx, cfg->recipe, &cfg->recipe_opt, &run, &r));
    lb_recipe_free(r);
    return LB_OK;
}

double lb_train_lr(const lb_train_config *cfg, int64_t step)
{
    const int64_t fnt = cfg->recipe_opt.fnt_steps;
    if (fnt > 0 && fnt < cfg->steps && strcmp(cfg->recipe, "luq") == 0) {
        // luq's FNT: the schedule over the low-bit steps, then lb_fnt_lr
        lb_train_config low = *cfg;
        low.steps = cfg->steps - fnt;
        low.recipe_opt.fnt_steps = 0;
        if (step < low.steps) return lb_train_lr(&low, step);
        const double base = cfg->recipe_opt.fnt_lr > 0 ? cfg->recipe_opt.fnt_lr : cfg->lr / 10;
        return lb_fnt_lr(step - low.steps, fnt, lb_train_lr(&low, low.steps), base);
    }
    if (step < cfg->warmup_steps)
        return cfg->lr * (double)(step + 1) / (double)cfg->warmup_steps;
    const int64_t decay = cfg->steps - cfg->warmup_steps;
    double q = (double)(step - cfg->warmup_steps) / (double)(decay > 1 ? decay : 1);
    if (q > 1) q = 1;
    if (q < 0) q = 0;
    return cfg->min_lr + (cfg->lr - cfg->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * q));
}

/* -------------------------------------------------------------------- data */

void lb_task_data_free(lb_task_data *d)
{
    lb_image_set_free(d->train_images);
    lb_image_set_free(d->test_images);
    lb_text_corpus_free(d->corpus);
    memset(d, 0, sizeof *d);
}

lb_status lb_task_data_load(lb_ctx *ctx, const char *data, double val_fraction, int need_train,
                            lb_task_data *d)
{
    memset(d, 0, sizeof *d);
    int is_text;
    const char *spec;
    TRY(lb_data_parse(ctx, data, &is_text, &spec));
    d->is_text = is_text;
    lb_status st;
    if (!is_text) {
        if (need_train) {
            st = lb_fashion_mnist_load(ctx, NULL, LB_SPLIT_TRAIN, &d->train_images);
            if (st != LB_OK) return st;
        }
        st = lb_fashion_mnist_load(ctx, NULL, LB_SPLIT_TEST, &d->test_images);
        if (st != LB_OK) lb_task_data_free(d);
        return st;
    }
    st = lb_text_corpus_load(ctx, spec, val_fraction, &d->corpus);
    if (st != LB_OK) return st;
    uint64_t counts[LB_TEXT_VOCAB];
    lb_byte_histogram(d->corpus->train, d->corpus->train_len, counts);
    d->unigram_bits = lb_unigram_entropy_bits(counts);
    return LB_OK;
}

/* BERT-style masking of one window: inputs (T) and targets (T) from the
 * bytes (T); u = uniform(seed, stream, 3 (row T + t) + k), k = 0 select,
 * 1 replace kind, 2 random byte. */
static void mlm_mask(const int32_t *bytes, int64_t T, int64_t row, double prob, uint64_t seed,
                     uint64_t stream, int32_t *inputs, int32_t *targets)
{
    for (int64_t t = 0; t < T; t++) {
        const uint64_t idx = 3 * (uint64_t)(row * T + t);
        inputs[t] = bytes[t];
        targets[t] = -1;
        if (lb_rng_uniform_f64(seed, stream, idx) >= prob) continue;
        targets[t] = bytes[t];
        const double kind = lb_rng_uniform_f64(seed, stream, idx + 1);
        if (kind < 0.8) {
            inputs[t] = LB_BERT_MASK_ID;
        } else if (kind < 0.9) {
            int32_t r = (int32_t)(lb_rng_uniform_f64(seed, stream, idx + 2) * LB_TEXT_VOCAB);
            inputs[t] = r < LB_TEXT_VOCAB ? r : LB_TEXT_VOCAB - 1;
        }
    }
}

/* Batch buffers sized for (B, T + 1). */
lb_status lb_batch_buffers_init(lb_ctx *ctx, lb_batch_buffers *bb, const lb_model_config *m,
                                int64_t B)
{
    memset(bb, 0, sizeof *bb);
    const int64_t T = m->max_seq_len;
    if (m->kind == LB_MODEL_VIT) {
        const int64_t HW = (int64_t)m->image_size * m->image_size;
        bb->images = lb_alloc((size_t)(B * HW) * sizeof(float));
        bb->indices = lb_alloc((size_t)B * sizeof(int64_t));
        bb->targets = lb_alloc((size_t)B * sizeof(int32_t));
        if (!bb->images || !bb->indices || !bb->targets) goto nomem;
    } else {
        bb->window = lb_alloc((size_t)(B * (T + 1)) * sizeof(int32_t));
        bb->inputs = lb_alloc((size_t)(B * T) * sizeof(int32_t));
        bb->targets = lb_alloc((size_t)(B * T) * sizeof(int32_t));
        if (!bb->window || !bb->inputs || !bb->targets) goto nomem;
    }
    return LB_OK;
nomem:
    lb_batch_buffers_free(bb);
    return lb_error(ctx, LB_ERR_NOMEM, "batch buffers: out of memory");
}

void lb_batch_buffers_free(lb_batch_buffers *bb)
{
    lb_free(bb->images);
    lb_free(bb->indices);
    lb_free(bb->targets);
    lb_free(bb->window);
    lb_free(bb->inputs);
    memset(bb, 0, sizeof *bb);
}

/* Turns the windows bb->window (n, T + 1) into a batch: gpt shifts by one,
 * bert masks (seed, stream). */
static void text_batch(const lb_model_config *m, lb_batch_buffers *bb, int64_t n, double mlm_prob,
                       uint64_t seed, uint64_t stream, uint64_t row0, lb_model_batch *batch)
{
    const int64_t T = m->max_seq_len;
    for (int64_t b = 0; b < n; b++) {
        const int32_t *w = bb->window + b * (T + 1);
        if (m->kind == LB_MODEL_GPT) {
            memcpy(bb->inputs + b * T, w, (size_t)T * sizeof(int32_t));
            memcpy(bb->targets + b * T, w + 1, (size_t)T * sizeof(int32_t));
        } else {
            mlm_mask(w, T, (int64_t)row0 + b, mlm_prob, seed, stream, bb->inputs + b * T,
                     bb->targets + b * T);
        }
    }
    memset(batch, 0, sizeof *batch);
    batch->B = n;
    batch->T = T;
    batch->tokens = bb->inputs;
    batch->targets = bb->targets;
}

/* Evaluation over the test set / validation split. */
lb_status lb_task_evaluate(lb_ctx *ctx, lb_model *model, const lb_task_data *d, int64_t limit,
                           lb_eval_result *out)
{
    const lb_model_config *m = lb_model_get_config(model);
    const int64_t B = lb_model_max_batch(model);
    lb_batch_buffers bb;
    TRY(lb_batch_buffers_init(ctx, &bb, m, B));
    double loss_sum = 0;
    int64_t correct = 0, predictions = 0, examples = 0;
    lb_status st = LB_OK;
    if (!d->is_text) {
        const lb_image_set *set = d->test_images;
        int64_t n = set->count;
        if (limit > 0 && limit < n) n = limit;
        for (int64_t first = 0; first < n && st == LB_OK; first += B) {
            const int64_t nb = first + B <= n ? B : n - first;
            for (int64_t i = 0; i < nb; i++) bb.indices[i] = first + i;
            st = lb_image_set_batch_f32(ctx, set, bb.indices, (size_t)nb, LB_FASHION_MNIST_MEAN,
                                        LB_FASHION_MNIST_STD, bb.images, bb.targets);
            if (st != LB_OK) break;
            lb_model_batch batch = {.B = nb, .images = bb.images, .targets = bb.targets};
            st = lb_model_forward(ctx, model, &batch, 0, 0, NULL);
            if (st != LB_OK) break;
            int64_t rows, cols;
            const float *logits = lb_model_logits(model, &rows, &cols);
            const float *losses = lb_model_row_losses(model);
            for (int64_t r = 0; r < rows; r++) {
                int64_t best = 0;
                for (int64_t c = 1; c < cols; c++)
                    if (logits[r * cols + c] > logits[r * cols + best]) best = c;
                correct += best == bb.targets[r];
                loss_sum += (double)losses[r];
                predictions++;
            }
            examples += nb;
        }
    } else {
        const int64_t T = m->max_seq_len;
        const uint8_t *val = d->corpus->val;
        const size_t len = d->corpus->val_len;
        int64_t n = (int64_t)lb_text_num_eval_windows(len, (size_t)T);
        if (n == 0) {
            lb_batch_buffers_free(&bb);
            return lb_error(ctx, LB_ERR_ARG,
                            "validation split of %zu bytes is shorter than one window of %lld",
                            len, (long long)(T + 1));
        }
        if (limit > 0 && limit < n) n = limit;
        const uint64_t stream = lb_rng_stream("mlm-eval-mask", 0);
        for (int64_t first = 0; first < n && st == LB_OK; first += B) {
            const int64_t want = first + B <= n ? B : n - first;
            size_t taken = 0;
            st = lb_text_eval_windows(ctx, val, len, (size_t)T, (size_t)first, (size_t)want,
                                      bb.window, &taken);
            if (st != LB_OK || taken == 0) break;
            lb_model_batch batch;
            text_batch(m, &bb, (int64_t)taken, 0.15, 0, stream, (uint64_t)first, &batch);
            st = lb_model_forward(ctx, model, &batch, 0, 0, NULL);
            if (st != LB_OK) break;
            int64_t rows, cols;
            const float *logits = lb_model_logits(model, &rows, &cols);
            const float *losses = lb_model_row_losses(model);
            for (int64_t r = 0; r < rows; r++) {
                if (bb.targets[r] < 0) continue;
                int64_t best = 0;
                for (int64_t c = 1; c < cols; c++)
                    if (logits[r * cols + c] > logits[r * cols + best]) best = c;
                correct += best == bb.targets[r];
                loss_sum += (double)losses[r];
                predictions++;
            }
            examples += (int64_t)taken;
        }
    }
    lb_batch_buffers_free(&bb);
    if (st != LB_OK) return st;
    memset(out, 0, sizeof *out);
    out->examples = examples;
    out->predictions = predictions;
    out->loss = predictions ? loss_sum / (double)predictions : 0;
    out->accuracy = predictions ? (double)correct / (double)predictions : 0;
    out->bits_per_byte = d->is_text ? out->loss / log(2.0) : 0;
    return LB_OK;
}

lb_status lb_evaluate(lb_ctx *ctx, lb_model *model, const char *data, double val_fraction,
                      int64_t limit, lb_eval_result *out)
{
    if (!model || !data || !out) return lb_error(ctx, LB_ERR_ARG, "evaluate: NULL argument");
    TRY(lb_data_check_model(ctx, data, lb_model_get_config(model)));
    lb_task_data d;
    TRY(lb_task_data_load(ctx, data, val_fraction, 0, &d));
    lb_status st = lb_task_evaluate(ctx, model, &d, limit, out);
    lb_task_data_free(&d);
    return st;
}

/* ----------------------------------------------------------------- trainer */

lb_status lb_trainer_create(lb_ctx *ctx, const lb_train_config *cfg_in, lb_trainer **out)
{
    if (!cfg_in || !out) return lb_error(ctx, LB_ERR_ARG, "trainer: NULL argument");
    *out = NULL;
    lb_train_config cfg = *cfg_in;
    TRY(lb_train_config_check(ctx, &cfg));
    lb_trainer *tr = lb_calloc(1, sizeof *tr);
    if (!tr) return lb_error(ctx, LB_ERR_NOMEM, "trainer: out of memory");
    tr->cfg = cfg;
    lb_status st = lb_backend_find(ctx, cfg.backend, &tr->backend);
    const lb_recipe_run run = {cfg.seed, cfg.steps, cfg.warmup_steps};
    if (st == LB_OK) st = lb_recipe_create_ex(ctx, cfg.recipe, &cfg.recipe_opt, &run, &tr->recipe);
    if (st == LB_OK) st = lb_task_data_load(ctx, cfg.data, cfg.val_fraction, 1, &tr->data);
    if (st == LB_OK)
        st = lb_model_create(ctx, &cfg.model, tr->backend, tr->recipe, cfg.batch_size, &tr->model);
    if (st == LB_OK) st = lb_model_init(ctx, tr->model, cfg.seed);
    if (st == LB_OK) st = lb_batch_buffers_init(ctx, &tr->bb, &tr->cfg.model, cfg.batch_size);
    if (st != LB_OK) {
        lb_trainer_free(tr);
        return st;
    }
    tr->cfg.model = *lb_model_get_config(tr->model); // derived fields filled in
    const int64_t n = lb_model_num_params(tr->model);
    tr->m = lb_calloc((size_t)n, sizeof(float));
    tr->v = lb_calloc((size_t)n, sizeof(float));
    if (!tr->m || !tr->v) {
        lb_trainer_free(tr);
        return lb_error(ctx, LB_ERR_NOMEM, "trainer: out of memory for the AdamW moments");
    }
    if (!tr->data.is_text) {
        int64_t count = tr->data.train_images->count;
        if (cfg.train_limit > 0 && cfg.train_limit < count) count = cfg.train_limit;
        if (count < cfg.batch_size) {
            lb_trainer_free(tr);
            return lb_error(ctx, LB_ERR_ARG, "batch size %lld exceeds the %lld training images",
                            (long long)cfg.batch_size, (long long)count);
        }
        lb_batcher_config bc = {(size_t)count, (size_t)cfg.batch_size, cfg.seed, true, true};
        st = lb_batcher_create(ctx, &bc, &tr->batcher);
    } else if (tr->data.corpus->train_len < (size_t)tr->cfg.model.max_seq_len + 2) {
        st = lb_error(ctx, LB_ERR_ARG, "training text of %zu bytes is shorter than a window",
                      tr->data.corpus->train_len);
    }
    if (st != LB_OK) {
        lb_trainer_free(tr);
        return st;
    }
    *out = tr;
    return LB_OK;
}

void lb_trainer_free(lb_trainer *tr)
{
    if (!tr) return;
    lb_model_free(tr->model);
    lb_recipe_free(tr->recipe);
    lb_batcher_free(tr->batcher);
    lb_task_data_free(&tr->data);
    lb_batch_buffers_free(&tr->bb);
    lb_free(tr->m);
    lb_free(tr->v);
    lb_free(tr);
}

const lb_train_config *lb_trainer_config(const lb_trainer *tr) { return &tr->cfg; }
lb_model *lb_trainer_model(lb_trainer *tr) { return tr->model; }
lb_recipe *lb_trainer_recipe(lb_trainer *tr) { return tr->recipe; }
int64_t lb_trainer_step_count(const lb_trainer *tr) { return tr->step; }
double lb_trainer_unigram_bits(const lb_trainer *tr) { return tr->data.unigram_bits; }

int64_t lb_trainer_train_size(const lb_trainer *tr)
{
    if (tr->data.is_text) return (int64_t)tr->data.corpus->train_len;
    const int64_t count = tr->data.train_images->count;
    return tr->cfg.train_limit > 0 && tr->cfg.train_limit < count ? tr->cfg.train_limit : count;
}

void lb_trainer_data_position(const lb_trainer *tr, uint64_t *epoch, uint64_t *position)
{
    if (tr->batcher) {
        const lb_data_cursor c = lb_batcher_cursor(tr->batcher);
        *epoch = c.epoch;
        *position = c.position;
    } else {
        *epoch = 0;
        *position = (uint64_t)tr->step;
    }
}

/* The training batch of step tr->step. */
static lb_status next_batch(lb_ctx *ctx, lb_trainer *tr, lb_model_batch *batch)
{
    const lb_model_config *m = &tr->cfg.model;
    const int64_t B = tr->cfg.batch_size;
    lb_batch_buffers *bb = &tr->bb;
    if (!tr->data.is_text) {
        size_t taken = 0;
        TRY(lb_batcher_next(ctx, tr->batcher, bb->indices, &taken, NULL));
        TRY(lb_image_set_batch_f32(ctx, tr->data.train_images, bb->indices, taken,
                                   LB_FASHION_MNIST_MEAN, LB_FASHION_MNIST_STD, bb->images,
                                   bb->targets));
        memset(batch, 0, sizeof *batch);
        batch->B = (int64_t)taken;
        batch->images = bb->images;
        batch->targets = bb->targets;
        return LB_OK;
    }
    const lb_text_corpus *c = tr->data.corpus;
    TRY(lb_text_sample_windows(ctx, c->train, c->train_len, (size_t)m->max_seq_len, tr->cfg.seed,
                               (uint64_t)tr->step, (size_t)B, bb->window, NULL));
    text_batch(m, bb, B, tr->cfg.mlm_prob, tr->cfg.seed,
               lb_rng_stream("mlm-mask", (uint64_t)tr->step), 0, batch);
    return LB_OK;
}

lb_status lb_optimizer_step(lb_ctx *ctx, lb_model *model, const lb_train_config *cfg, float *m,
                            float *v, int64_t step, double *grad_norm)
{
    if (!model || !cfg || !m || !v) return lb_error(ctx, LB_ERR_ARG, "optimizer: NULL argument");
    const lb_backend *be = lb_model_backend(model);
    float *params = lb_model_params(model), *grads = lb_model_grads(model);
    const int64_t n = lb_model_num_params(model);
    // global gradient norm (fixed-order reduction) and clipping
    const double norm = sqrt(be->sum_squares(grads, n));
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return lb_error(ctx, LB_ERR_NUMERIC,
                        "step %lld: non-finite gradient norm (%g); lower the learning rate",
                        (long long)step + 1, norm);
    if (cfg->grad_clip > 0 && norm > cfg->grad_clip)
        be->scale(grads, n, (float)(cfg->grad_clip / norm));
    // AdamW, tensor by tensor (weight decay on matrices only)
    const double lr = lb_train_lr(cfg, step);
    const int64_t t = step + 1;
    const float bc1 = (float)(1.0 - pow(cfg->beta1, (double)t));
    const float bc2 = (float)(1.0 - pow(cfg->beta2, (double)t));
    for (size_t k = 0; k < lb_model_num_tensors(model); k++) {
        const lb_param_info *p = lb_model_tensor(model, k);
        be->adamw_update(params + p->offset, grads + p->offset, m + p->offset, v + p->offset,
                         p->numel, (float)lr, (float)cfg->beta1, (float)cfg->beta2, bc1, bc2,
                         (float)cfg->eps, p->decay ? (float)cfg->weight_decay : 0.0f);
    }
    return LB_OK;
}

lb_status lb_trainer_step(lb_ctx *ctx, lb_trainer *tr, lb_step_info *info)
{
    if (!tr) return lb_error(ctx, LB_ERR_ARG, "trainer step: NULL trainer");
    const lb_train_config *cfg = &tr->cfg;
    lb_model *model = tr->model;
    lb_model_batch batch;
    TRY(next_batch(ctx, tr, &batch));

    // forward + backward
    double loss = 0;
    lb_model_zero_grad(model);
    TRY(lb_model_forward(ctx, model, &batch, 1, tr->step, &loss));
    TRY(lb_model_backward(ctx, model));

    double norm = 0;
    if (!isfinite(loss))
        return lb_error(ctx, LB_ERR_NUMERIC,
                        "step %lld: non-finite loss (%g); lower the learning rate",
                        (long long)tr->step + 1, loss);
    TRY(lb_optimizer_step(ctx, model, cfg, tr->m, tr->v, tr->step, &norm));
    // the recipe's own learned parameters (hq: LSQ steps), same lr and clipping
    const lb_recipe_update ru = {tr->step, lb_train_lr(cfg, tr->step), cfg->beta1, cfg->beta2,
                                 cfg->eps,
                                 cfg->grad_clip > 0 && norm > cfg->grad_clip ? cfg->grad_clip / norm
                                                                             : 1.0};
    TRY(lb_recipe_optimizer_step(tr->recipe, ctx, &ru));
    const double lr = lb_train_lr(cfg, tr->step);
    tr->step++;
    if (info) {
        memset(info, 0, sizeof *info);
        info->step = tr->step;
        info->loss = loss;
        info->lr = lr;
        info->grad_norm = norm;
        info->examples = batch.B;
        int64_t predicted = 0;
        const int64_t rows = cfg->model.kind == LB_MODEL_VIT ? batch.B : batch.B * batch.T;
        for (int64_t r = 0; r < rows; r++) predicted += batch.targets[r] >= 0;
        info->tokens = predicted;
    }
    return LB_OK;
}

lb_status lb_trainer_evaluate(lb_ctx *ctx, lb_trainer *tr, lb_eval_result *out)
{
    if (!tr || !out) return lb_error(ctx, LB_ERR_ARG, "evaluate: NULL argument");
    return lb_task_evaluate(ctx, tr->model, &tr->data, tr->cfg.eval_limit, out);
}
