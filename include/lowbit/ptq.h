/* lowbit/ptq.h — post-training quantization (PTQ) of lowbit models and its
 * integer inference path. doc/ptq.md describes every choice; the algorithms
 * are the oracles of lowbit/ref/ (uniform_quantizer.h, range_estimators.h,
 * weight_quant.h, gptq.h, power_quantizer.h).
 *
 * Methods (lb_ptq_method):
 *   w8a8        Bondarenko et al. 2023 ("Quantizable Transformers") §4 as the
 *               authors' code does it (spec outlier_free_attention_and_w8a8.md
 *               §4): weights symmetric per tensor, min-max, RTN; every
 *               activation site asymmetric per tensor with running min-max
 *               (momentum 0.9), calibrated sequentially in fake-quant on the
 *               calibration batches; the final head stays float.
 *   rtn         round-to-nearest weights (uniform grid, lowbit/ref/weight_quant.h).
 *   gptq        GPTQ/OPTQ (lowbit/ref/gptq.h), layer by layer in forward order,
 *               each layer's Hessian from the inputs the already-quantized
 *               model gives it.
 *   powerquant  the power grid (nupes.md §1) with the exponent found data-free
 *               (nupes.md §2, PowerQuant): one exponent for all layers, or
 *               one per layer (per_layer_exponent).
 *   nupes       our reading of NUPES (nupes.md §3): per layer, sequentially,
 *               the exponent and a latent code per weight (any code of the
 *               grid) learned with Adam and straight-through rounding against
 *               the layer's output reconstruction error on the calibration
 *               inputs, starting from the per-layer PowerQuant exponent and
 *               the GPTQ codes on that power grid (or, nupes_init RTN, the
 *               round-to-nearest codes as nupes.md §3 says); the best iterate
 *               (lowest loss, initialisation included) is kept.
 * Quantized linear layers: every linear layer except the classifier / LM
 * head (patch embedding, qkv, attention projection, fc1, fc2).
 *
 * Activations (abits > 0): asymmetric uniform quantizers (per tensor,
 * uniform_quantizer.h), ranges by a running estimator over the calibration
 * batches (min-max or percentile, momentum 0.9; the statistics skip padded
 * tokens), sequential fake-quant calibration (spec §4.4), then frozen. Sites
 * (lb_ptq_act_sites): ALL = every activation tap of lowbit/model.h except the
 * attention probabilities (which the backend computes and consumes inside
 * attention): embedding sum and LayerNorm, each LayerNorm output, q/k/v,
 * attention output, projection output, residual sums, GELU output, fc2
 * output, final LayerNorm (spec §4.3 but for the attention scores and
 * probabilities); LINEAR = only the inputs of the quantized linear layers
 * (the producing taps: LayerNorm outputs, attention output, GELU output) and
 * the vit patches. A linear layer's input quantizer is its producer's, so
 * its input is already on that grid.
 *
 * Integer inference (LB_PTQ_EXEC_INTEGER): a quantized linear layer with
 * quantized input computes, with input codes q_x in [0, 2^abits - 1], zero
 * point z, step Δx, integer weights w_int (uniform: the codes; power grid:
 * the int8 codebook value sign(q) r_|q|, nupes.md §4) and per-row scale s_w
 * (uniform Δ; power M/R):
 *   acc[t, n] = Σ_k w_int[n, k] (q_x[t, k] − 128) − (z − 128) Σ_k w_int[n, k]   (int32)
 *   y[t, n]   = fl32( (double) acc[t, n] · ((double) s_w[n] · (double) Δx) ) + b[n]
 * with the int8 x int8 GEMM of lowbit/cpu.h (lb_gemm_i8_packed; weights packed
 * once, int4 weights as nibbles) or lb_gemm_i8_ref (LB_PTQ_KERNEL_REF): the
 * two give the same bits. LB_PTQ_EXEC_FAKE is the float fake-quant oracle:
 * y = x̂ · ŵ^T + b in float32 through the backend (x̂ = Δx (q_x − z),
 * ŵ = s_w w_int), equal to the integer path up to float rounding.
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
#include "lowbit/ref/range_estimators.h"
#include "lowbit/ref/weight_quant.h"
#include <stdio.h>

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

/* "sentences" / "lines" data: the texts of examples 0..n-1 (in the data's
 * order; pointers into d, not NUL-terminated: lens gives the bytes).
 * LB_ERR_ARG for other data or n > lb_ptq_data_size. */
lb_status lb_ptq_data_lines(const lb_ptq_data *d, size_t n, const char **texts, size_t *lens);

void lb_ptq_data_free(lb_ptq_data *d);

/* ------------------------------------------------------------- quantizing */

typedef enum lb_ptq_method {
    LB_PTQ_W8A8 = 0,
    LB_PTQ_RTN = 1,
    LB_PTQ_GPTQ = 2,
    LB_PTQ_POWERQUANT = 3,
    LB_PTQ_NUPES = 4
} lb_ptq_method;

typedef enum lb_ptq_act_sites {
    LB_PTQ_ACT_NONE = 0,   /* float activations (weight-only quantization) */
    LB_PTQ_ACT_LINEAR = 1, /* the inputs of the quantized linear layers */
    LB_PTQ_ACT_ALL = 2     /* every activation tap but the attention probabilities */
} lb_ptq_act_sites;

typedef enum lb_ptq_exec {
    LB_PTQ_EXEC_INTEGER = 0, /* integer GEMMs where weights and inputs are quantized */
    LB_PTQ_EXEC_FAKE = 1     /* float fake-quant oracle */
} lb_ptq_exec;

typedef enum lb_ptq_kernel {
    LB_PTQ_KERNEL_FAST = 0, /* lb_gemm_i8_packed (run-time ISA dispatch) */
    LB_PTQ_KERNEL_REF = 1   /* lb_gemm_i8_ref */
} lb_ptq_kernel;

/* "w8a8", "rtn", "gptq", "powerquant", "nupes" / "none", "linear", "all";
 * NULL for an unknown value. */
const char *lb_ptq_method_name(lb_ptq_method m);
lb_status lb_ptq_method_from_name(lb_ctx *ctx, const char *name, lb_ptq_method *out);
const char *lb_ptq_act_sites_name(lb_ptq_act_sites s);

/* Where NUPES starts (both at the layer's PowerQuant exponent): the codes of
 * GPTQ on the power grid (default), or round-to-nearest on it (nupes.md §3
 * literally). */
#define LB_PTQ_NUPES_INIT_GPTQ 0
#define LB_PTQ_NUPES_INIT_RTN 1

/* Power grid codebook choice (powerquant, nupes). */
#define LB_PTQ_CODEBOOK_AUTO 0   /* lb_power_codebook_ref's default R (exact when possible, else 127) */
#define LB_PTQ_CODEBOOK_FLOAT -1 /* float levels M (|q|/N)^(1/a): no integer path for the weights */

typedef struct lb_ptq_options {
    lb_ptq_method method;
    int wbits;                     /* 2..8 */
    int abits;                     /* 0 (float activations) or 2..8 */
    lb_wq_granularity granularity; /* LB_WQ_TENSOR or LB_WQ_CHANNEL */
    lb_range_options range;        /* weights (uniform grid) */
    lb_range_method act_range;     /* LB_RANGE_MINMAX or LB_RANGE_PERCENTILE */
    double act_percentile;         /* p of the percentile estimator (default 99.999) */
    double act_momentum;           /* running-range momentum (0.9) */
    lb_ptq_act_sites act_sites;
    int64_t calib_batches;         /* calibration batches (>= 1 when needed) */
    /* gptq */
    double percdamp;               /* 0.01 */
    int act_order;                 /* 0 */
    /* powerquant / nupes */
    int per_layer_exponent;        /* powerquant: 1 = one exponent per layer (nupes always) */
    int codebook;                  /* LB_PTQ_CODEBOOK_AUTO, _FLOAT, or R in 1..127 */
    int nupes_iters;               /* 500 */
    double nupes_lr_v, nupes_lr_theta; /* 1e-3, 1e-3 */
    double nupes_a_min;            /* 0.2 */
    int nupes_init;                /* LB_PTQ_NUPES_INIT_GPTQ (default) or _RTN */
} lb_ptq_options;

/* The defaults of a method: w8a8: 8/8 bits, per tensor, min-max, all sites,
 * 16 calibration batches; rtn, gptq, powerquant, nupes: 4 bits, per
 * channel, min-max, abits 0, 16 batches (gptq, nupes); percdamp 0.01,
 * codebook auto, 500 NUPES iterations at lr 1e-3 (V) and 1e-3 (θ), a_min 0.2,
 * NUPES from GPTQ codes,
 * act range min-max (p 99.999, momentum 0.9). With abits > 0 the default
 * sites are ALL for w8a8 and LINEAR otherwise. */
void lb_ptq_options_default(lb_ptq_method method, lb_ptq_options *o);

/* LB_ERR_ARG naming the bad option. */
lb_status lb_ptq_options_check(lb_ctx *ctx, const lb_ptq_options *o);

/* Calibration batch i (0 <= i < opts->calib_batches): fills *batch (its
 * arrays stay valid until the next call). */
typedef lb_status (*lb_ptq_batch_fn)(void *user, lb_ctx *ctx, int64_t i, lb_model_batch *batch);

/* Quantizes a float model: a new model of the same config on `backend`
 * (created with opts_model; the source's weights are copied, the source is
 * not changed) with the quantized weights, the activation quantizers
 * calibrated on calib(0..calib_batches-1) (NULL is allowed for data-free
 * configurations: rtn / powerquant with abits 0), exec INTEGER. `info`
 * (may be NULL) is recorded for saving (the source's training config).
 * Progress goes to the context's log. */
lb_status lb_ptq_quantize(lb_ctx *ctx, const lb_model *source, const lb_checkpoint_info *info,
                          const lb_ptq_options *opts, lb_ptq_batch_fn calib, void *user,
                          const lb_backend *backend, const lb_model_options *opts_model,
                          lb_ptq_model **out);

/* Writes a quantized model file (format "lowbit-quantized"): the config,
 * the float tensors that stay float, per quantized weight its codes (int8,
 * or int4 nibbles for <= 4 bits), scales, exponent and codebook, every
 * activation quantizer (scale, zero point), and ptq.* metadata; extra
 * tensors/metadata of `copy_from` (a tokenizer, embed.*) when non-NULL.
 * Atomic. */
lb_status lb_ptq_save(lb_ctx *ctx, lb_ptq_model *qm, const char *copy_from, const char *path);

/* lb_ptq_model_load, but a checkpoint trained with a quantized recipe
 * (int8, hq, luq: lowbit/recipe.h) runs that recipe's forward: the recipe is
 * created with the options recorded in the file and its saved state
 * (recipe.state: the Hadamard blocks, learned LSQ steps, LUQ's signed flags,
 * FNT progress), so evaluation gives what training's own evaluations gave.
 * fp32 checkpoints and quantized model files load as lb_ptq_model_load.
 * LB_ERR_FORMAT for a recipe checkpoint without recipe.state. */
lb_status lb_ptq_model_load_recipe(lb_ctx *ctx, const char *path, const lb_backend *backend,
                                   const lb_model_options *opts, lb_ptq_model **out);

/* lb_ptq_model_load with an execution mode and an integer kernel. */
lb_status lb_ptq_model_load_ex(lb_ctx *ctx, const char *path, const lb_backend *backend,
                               const lb_model_options *opts, lb_ptq_exec exec,
                               lb_ptq_kernel kernel, lb_ptq_model **out);

/* Switches how a quantized model runs (no-op for a float model). */
lb_status lb_ptq_model_set_exec(lb_ctx *ctx, lb_ptq_model *qm, lb_ptq_exec exec,
                                lb_ptq_kernel kernel);

/* The options it was quantized with (NULL for a float model) and the
 * recorded checkpoint info. */
const lb_ptq_options *lb_ptq_model_options(const lb_ptq_model *qm);
const lb_checkpoint_info *lb_ptq_model_info(const lb_ptq_model *qm);

/* The exponent of a power-grid layer (role, layer), 0 when the layer is not
 * quantized on the power grid. */
double lb_ptq_model_exponent(const lb_ptq_model *qm, lb_linear_role role, int layer);

/* Per-layer quantization report: for every quantized linear layer one line
 * "role layer bits grid exponent relerr" into f (relerr: the weight error
 * ||W - Ŵ||² / ||W||² measured at quantization; or the calibration output
 * error ||XW^T - XŴ^T||² / ||XW^T||² for gptq and nupes). */
void lb_ptq_model_report(const lb_ptq_model *qm, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
