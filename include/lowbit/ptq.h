/* lowbit/ptq.h — post-training quantization of lowbit models: the W8A8
 * setup of Bondarenko et al. 2023 ("Quantizable Transformers"), RTN and
 * GPTQ weight quantization, PowerQuant's data-free exponent search and NUPES
 * (our reading, shared/specs/nupes.md), quantized model files and their
 * integer inference path. doc/ptq.md describes every choice.
 */
#ifndef LOWBIT_PTQ_H
#define LOWBIT_PTQ_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/model.h"
#include "lowbit/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- model files */

/* Loads a checkpoint's config and weights (as lb_checkpoint_load_model)
 * into a model created with lb_model_create_ex(opts) (opts->max_batch 0:
 * the training batch size). info may be NULL. */
lb_status lb_checkpoint_load_model_ex(lb_ctx *ctx, const char *path, const lb_backend *backend,
                                      const lb_model_options *opts, lb_model **model,
                                      lb_checkpoint_info *info);

/* A model ready for inference from a checkpoint or a quantized model file
 * (format "lowbit-quantized", written by lb_ptq_save). For a quantized file
 * it owns the quantized linear layers (the model's recipe) and the
 * activation quantizers (the model's observer). */
typedef struct lb_ptq_model lb_ptq_model;

/* Loads `path`: a checkpoint (the float model) or a quantized model file,
 * evaluated with the integer path (lb_ptq_model_load_ex with
 * LB_PTQ_EXEC_INTEGER). opts as lb_checkpoint_load_model_ex. */
lb_status lb_ptq_model_load(lb_ctx *ctx, const char *path, const lb_backend *backend,
                            const lb_model_options *opts, lb_ptq_model **out);

/* The model (owned by the lb_ptq_model). */
lb_model *lb_ptq_model_get(lb_ptq_model *qm);

/* 1 when the file was a quantized model. */
int lb_ptq_model_is_quantized(const lb_ptq_model *qm);

/* NULL is a no-op. */
void lb_ptq_model_free(lb_ptq_model *qm);

#ifdef __cplusplus
}
#endif
#endif
