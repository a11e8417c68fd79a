/* models/train_internal.h — pieces shared by models/train.c and
 * models/checkpoint.c (not installed). */
#ifndef LOWBIT_MODELS_TRAIN_INTERNAL_H
#define LOWBIT_MODELS_TRAIN_INTERNAL_H

#include "lowbit/datasets.h"
#include "lowbit/train.h"

/* The data of a task: Fashion-MNIST splits or a text corpus. */
typedef struct lb_task_data {
    int is_text;
    lb_image_set *train_images; /* vit; NULL when only evaluating */
    lb_image_set *test_images;  /* vit */
    lb_text_corpus *corpus;     /* gpt, bert */
    double unigram_bits;        /* entropy of the training bytes */
} lb_task_data;

/* Host buffers of one batch. */
typedef struct lb_batch_buffers {
    float *images;     /* vit: (B, H, W) */
    int64_t *indices;  /* vit: (B) */
    int32_t *targets;  /* vit: (B); text: (B, T) */
    int32_t *window;   /* text: (B, T + 1) raw bytes */
    int32_t *inputs;   /* text: (B, T) */
} lb_batch_buffers;

struct lb_trainer {
    lb_train_config cfg;
    const lb_backend *backend;
    lb_recipe *recipe;
    lb_model *model;
    lb_task_data data;
    lb_batcher *batcher;  /* vit */
    lb_batch_buffers bb;
    float *m, *v;         /* AdamW moments, the layout of the parameters */
    int64_t step;         /* optimizer steps taken */
};

lb_status lb_data_parse(lb_ctx *ctx, const char *data, int *is_text, const char **spec);
lb_status lb_data_check_model(lb_ctx *ctx, const char *data, const lb_model_config *m);
lb_status lb_task_data_load(lb_ctx *ctx, const char *data, double val_fraction, int need_train,
                            lb_task_data *d);
void lb_task_data_free(lb_task_data *d);
lb_status lb_task_evaluate(lb_ctx *ctx, lb_model *model, const lb_task_data *d, int64_t limit,
                           lb_eval_result *out);
lb_status lb_batch_buffers_init(lb_ctx *ctx, lb_batch_buffers *bb, const lb_model_config *m,
                                int64_t B);
void lb_batch_buffers_free(lb_batch_buffers *bb);

/* The config metadata of a checkpoint (models/checkpoint.c) for other lowbit
 * files that carry one: writes format (CHECKPOINT's "lowbit-checkpoint" when
 * format is NULL), format_version, model.* and train.*; reads and checks
 * them, requiring metadata "format" == format (NULL: a checkpoint). */
struct lb_safetensors;
struct lb_safetensors_writer;
lb_status lb_checkpoint_write_config(lb_ctx *ctx, struct lb_safetensors_writer *w,
                                     const lb_train_config *cfg, const char *format);
lb_status lb_checkpoint_read_config(lb_ctx *ctx, const struct lb_safetensors *st,
                                    const char *path, const char *format, lb_train_config *cfg);

#endif
