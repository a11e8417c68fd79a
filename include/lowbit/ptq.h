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
#include "lowbit/tokenizer.h"

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

/* Sets the observer of the model's activation taps (lowbit/model.h). For a
 * quantized model it sees every tap after the activation quantizer of that
 * site has run (i.e. the quantized activations); NULL clears it. */
lb_status lb_ptq_model_set_observer(lb_ptq_model *qm, lb_model_observer_fn fn, void *user);

/* NULL is a no-op. */
void lb_ptq_model_free(lb_ptq_model *qm);

/* ------------------------------------------------------------------ data
 * Batches for calibration (split LB_PTQ_CALIB) and measurement (split
 * LB_PTQ_EVAL) of one model, by data spec:
 *   "fashion-mnist"   vit; calib: training images in the order
 *                     lb_shuffle_permutation(seed, 0); eval: test images in order.
 *   "text[:SPEC]"     gpt/bert byte-level (lb_text_corpus_load(SPEC), default
 *                     val fraction); windows of the model's max_seq_len bytes.
 *                     calib: the examples [first, first + B) are
 *                     lb_text_sample_windows(train split, seed, step = first, B);
 *                     eval: lb_text_eval_windows of the validation split in
 *                     order, as lb_evaluate. bert inputs are MLM-masked as in
 *                     training (15%, 80/10/10): eval with seed 0 and stream
 *                     "mlm-eval-mask" (the masks of lb_evaluate), calib with
 *                     (seed, lb_rng_stream("ptq-calib-mask", 0)).
 *   "sentences[:SPEC]" a bert with a WordPiece tokenizer: the non-empty lines
 *                     of the corpus's split (calib: training split in the
 *                     order lb_shuffle_permutation(seed, 0); eval: validation
 *                     split in order), each encoded as lb_tokenizer_encode
 *                     with max_len, a batch padded to its longest.
 *   "lines:FILE"      the same with the lines of FILE in order (both splits).
 * Targets (vit labels, gpt next bytes, bert MLM targets) are produced for
 * byte-level data; sentences have none. */
typedef struct lb_ptq_data lb_ptq_data;

typedef enum lb_ptq_split {
    LB_PTQ_CALIB = 0,
    LB_PTQ_EVAL = 1
} lb_ptq_split;

/* tok and max_len are for "sentences" / "lines" (tok NULL otherwise). */
lb_status lb_ptq_data_open(lb_ctx *ctx, const char *spec, const lb_model_config *model,
                           const lb_tokenizer *tok, size_t max_len, lb_ptq_split split,
                           uint64_t seed, lb_ptq_data **out);

/* Examples available (images, windows or lines); INT64_MAX for random
 * calibration windows. */
int64_t lb_ptq_data_size(const lb_ptq_data *d);

/* The batch of examples [first, first + B) (fewer at the end: *taken; 0
 * past the end). with_targets 0 leaves batch->targets NULL. The batch's
 * arrays belong to d and stay valid until the next call. B <= the B_max of
 * lb_ptq_data_open's buffers: they grow as needed. */
lb_status lb_ptq_data_batch(lb_ctx *ctx, lb_ptq_data *d, int64_t first, int64_t B,
                            int with_targets, lb_model_batch *batch, int64_t *taken);

void lb_ptq_data_free(lb_ptq_data *d);

#ifdef __cplusplus
}
#endif
#endif
