/* lowbit/train.h — training, evaluation and checkpoints of the models of
 * lowbit/model.h.
 *
 *   - AdamW with decoupled weight decay (matrices only) and bias correction,
 *     linear warm-up then cosine decay to min_lr, global gradient-norm
 *     clipping;
 *   - data: "fashion-mnist" (vit) or "text[:SPEC]" (gpt, bert; SPEC as
 *     lb_text_corpus_load: "default" Austen, "moby-dick" or file paths);
 *     vit visits shuffled epochs through an lb_batcher; gpt/bert sample
 *     windows as a pure function of (seed, step); bert masks 15% of the
 *     bytes BERT-style (80% [MASK] = id 256, 10% random byte, 10% kept);
 *   - determinism: every random number is a counter-RNG value of
 *     (seed, stream, index); with a fixed thread count a run is
 *     reproducible bit for bit, and a run resumed from a checkpoint gives
 *     the same bits as an uninterrupted one;
 *   - checkpoints: safetensors with weights ("model.<name>"), AdamW moments
 *     ("optim.m.<name>", "optim.v.<name>") and, in __metadata__, the model
 *     config, recipe, every training hyper-parameter, the step, the seed and
 *     the data position (doc/training.md lists the keys); written
 *     atomically.
 */
#ifndef LOWBIT_TRAIN_H
#define LOWBIT_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/model.h"
#include "lowbit/recipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Token id of [MASK] in byte-level bert (vocab_size must exceed it). */
#define LB_BERT_MASK_ID 256

typedef struct lb_train_config {
    lb_model_config model;
    char data[512];        /* "fashion-mnist" | "text" | "text:SPEC" */
    char recipe[32];       /* "fp32" | "int8" | "hq" | "luq" (lowbit/recipe.h) */
    lb_recipe_options recipe_opt; /* the recipe's options (lb_recipe_options_default) */
    char backend[16];      /* "cpu" | "ref" */
    int64_t steps;         /* optimizer steps in all (> 0) */
    int64_t batch_size;    /* examples per step */
    double lr;             /* peak learning rate */
    double min_lr;         /* learning rate at the end of the cosine */
    int64_t warmup_steps;  /* linear warm-up from lr/warmup to lr */
    double weight_decay;   /* decoupled, on matrices (lb_param_info.decay) */
    double beta1, beta2, eps;
    double grad_clip;      /* max global gradient L2 norm; 0 = no clipping */
    int64_t eval_every;    /* evaluate every N steps (0 = only at the end) */
    int64_t eval_limit;    /* examples (vit) / windows (gpt, bert) per evaluation, 0 = all */
    int64_t train_limit;   /* vit: use only the first N training images (0 = all) */
    double mlm_prob;       /* bert: fraction of masked positions (0.15) */
    double val_fraction;   /* text: validation share (< 0: the corpus default) */
    uint64_t seed;
} lb_train_config;

/* Defaults for a model kind: the model defaults of lb_model_config_default,
 * data "fashion-mnist" (vit) or "text" (gpt, bert), recipe fp32, backend
 * cpu, AdamW beta (0.9, 0.999), eps 1e-8, weight decay 0.05, grad clip 1,
 * min_lr 0, and per kind:
 *   vit : batch 128, lr 3e-3, 4680 steps (10 epochs), warm-up 200, eval every 936;
 *   gpt : batch 16, lr 2e-3, 1000 steps, warm-up 50, eval every 250 (100 windows);
 *   bert: batch 16, lr 1e-3, 1000 steps, warm-up 50, eval every 250 (100 windows). */
void lb_train_config_default(lb_model_kind kind, lb_train_config *cfg);

/* Checks a config (model included); LB_ERR_ARG naming the field. */
lb_status lb_train_config_check(lb_ctx *ctx, lb_train_config *cfg);

/* Learning rate at step s (0-based): warm-up lr (s+1)/warmup for
 * s < warmup, then min_lr + (lr - min_lr) (1 + cos(pi q)) / 2 with
 * q = (s - warmup) / max(1, steps - warmup), clamped to [0, 1].
 * With recipe_opt.fnt_steps = T > 0 (luq's FNT) this schedule runs over the
 * first steps - T steps and the last T follow lb_fnt_lr(s - (steps - T), T,
 * the schedule's final rate, recipe_opt.fnt_lr or lr / 10). */
double lb_train_lr(const lb_train_config *cfg, int64_t step);

/* One optimizer update of every parameter of `model` from its gradients,
 * as lb_trainer_step does it: global gradient norm (returned in *grad_norm,
 * may be NULL; LB_ERR_NUMERIC when not finite, parameters unchanged),
 * clipping (grads *= grad_clip / norm when norm > grad_clip > 0), then
 * AdamW with lr = lb_train_lr(cfg, step) and bias corrections for t =
 * step + 1, weight decay on the tensors with lb_param_info.decay. m and v
 * (lb_model_num_params floats each, zero at the start) are the moments. */
lb_status lb_optimizer_step(lb_ctx *ctx, lb_model *model, const lb_train_config *cfg, float *m,
                            float *v, int64_t step, double *grad_norm);

/* Evaluation result. */
typedef struct lb_eval_result {
    double loss;           /* mean cross-entropy (nats) per predicted row */
    double accuracy;       /* top-1 over predicted rows (vit: images; gpt: next bytes;
                              bert: masked bytes) */
    double bits_per_byte;  /* gpt, bert: loss / ln 2; vit: 0 */
    int64_t examples;      /* images or windows evaluated */
    int64_t predictions;   /* rows with a target */
} lb_eval_result;

/* What one training step did. */
typedef struct lb_step_info {
    int64_t step;          /* the step just taken (1-based count after it) */
    double loss;           /* training loss of its batch (before the update) */
    double lr;             /* learning rate used */
    double grad_norm;      /* global gradient norm before clipping */
    int64_t examples;      /* images or sequences in the batch */
    int64_t tokens;        /* predicted rows (vit: images; gpt: bytes; bert: masked bytes) */
} lb_step_info;

typedef struct lb_trainer lb_trainer;

/* Loads the data, builds the model (random init from cfg->seed) and the
 * optimizer state. LB_ERR_ARG for a bad config or a model/data mismatch,
 * LB_ERR_NOT_FOUND for missing data (with how to install it). */
lb_status lb_trainer_create(lb_ctx *ctx, const lb_train_config *cfg, lb_trainer **out);

/* Resumes from a checkpoint written by lb_trainer_save: the config,
 * weights, AdamW moments, step and data position come from the file. When
 * steps > 0 it replaces the total step count (the cosine schedule then
 * follows the new total). Errors: LB_ERR_IO, LB_ERR_FORMAT (not a lowbit
 * checkpoint, missing or malformed metadata, a tensor missing or of the
 * wrong shape, no optimizer state), plus those of lb_trainer_create. */
lb_status lb_trainer_resume(lb_ctx *ctx, const char *path, int64_t steps, lb_trainer **out);

void lb_trainer_free(lb_trainer *tr);

const lb_train_config *lb_trainer_config(const lb_trainer *tr);
lb_model *lb_trainer_model(lb_trainer *tr);
/* The trainer's recipe (statistics: lb_recipe_stats_json). */
lb_recipe *lb_trainer_recipe(lb_trainer *tr);
/* Steps taken so far (0 for a new trainer). */
int64_t lb_trainer_step_count(const lb_trainer *tr);
/* vit: epoch and position of the next batch; text: epoch 0, position = step. */
void lb_trainer_data_position(const lb_trainer *tr, uint64_t *epoch, uint64_t *position);
/* Examples in the training set (vit) or bytes in the training split (text). */
int64_t lb_trainer_train_size(const lb_trainer *tr);
/* text: entropy of the training bytes, the bits per byte of a unigram
 * model (lb_unigram_entropy_bits); vit: 0. */
double lb_trainer_unigram_bits(const lb_trainer *tr);

/* One optimizer step: batch, forward, backward, clip, AdamW. A non-finite
 * loss or gradient norm gives LB_ERR_NUMERIC (parameters unchanged). */
lb_status lb_trainer_step(lb_ctx *ctx, lb_trainer *tr, lb_step_info *info);

/* Evaluates on the test set (vit) or the validation split (text), the first
 * eval_limit examples/windows (all when 0). bert uses fixed masks
 * (stream "mlm-eval-mask"), so evaluations are comparable. */
lb_status lb_trainer_evaluate(lb_ctx *ctx, lb_trainer *tr, lb_eval_result *out);

/* Writes a checkpoint (atomically). */
lb_status lb_trainer_save(lb_ctx *ctx, lb_trainer *tr, const char *path);

/* ---------------------------------------------------------------- checkpoints */

/* A model loaded from a checkpoint for evaluation, generation or export. */
typedef struct lb_checkpoint_info {
    lb_train_config train;   /* the config recorded in the file */
    int64_t step;            /* steps taken when it was written */
    int has_optimizer;       /* 1 when the AdamW moments are present */
} lb_checkpoint_info;

/* Reads the config and weights of a checkpoint into a new model on
 * `backend` for batches of up to max_batch (0: the training batch size).
 * info may be NULL. Errors as lb_trainer_resume (the moments are not
 * required). */
lb_status lb_checkpoint_load_model(lb_ctx *ctx, const char *path, const lb_backend *backend,
                                   int64_t max_batch, lb_model **model, lb_checkpoint_info *info);

/* Evaluates `model` on `data` ("fashion-mnist", "text[:SPEC]") as
 * lb_trainer_evaluate does (limit = examples/windows, 0 = all;
 * val_fraction as in lb_train_config). LB_ERR_ARG when the data does not
 * fit the model (e.g. gpt on fashion-mnist). */
lb_status lb_evaluate(lb_ctx *ctx, lb_model *model, const char *data, double val_fraction,
                      int64_t limit, lb_eval_result *out);

/* Writes the weights of `model` to a safetensors file with PyTorch-style
 * names (doc/models.md has the mapping: timm ViT, nanoGPT, HF BertModel
 * with the fused qkv split into query/key/value), the config in
 * __metadata__; no optimizer state. Atomic. */
lb_status lb_model_export(lb_ctx *ctx, lb_model *model, const char *path);

/* Writes the weights of `model` as a checkpoint without optimizer state
 * (lb_checkpoint_load_model reads it; it cannot be resumed): cfg is the
 * training config recorded (its model part is replaced by the model's
 * config), step the step count; meta holds n_meta extra metadata (key,
 * value) pairs, meta[2i] and meta[2i+1] (e.g. where imported weights came
 * from). Atomic. */
lb_status lb_checkpoint_save_model(lb_ctx *ctx, lb_model *model, const lb_train_config *cfg,
                                   int64_t step, size_t n_meta, const char *const *meta,
                                   const char *path);

#ifdef __cplusplus
}
#endif
#endif
