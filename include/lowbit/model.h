/* lowbit/model.h — the three transformer models lowbit trains:
 *
 *   vit   image classifier (Fashion-MNIST): non-overlapping P x P patches ->
 *         linear patch embedding, optional CLS token, learned positions,
 *         pre-LN blocks, final LayerNorm, CLS or mean pooling, linear head.
 *   gpt   byte-level decoder-only LM: token + learned position embeddings,
 *         causal pre-LN blocks, final LayerNorm, LM head tied to the token
 *         embedding or separate.
 *   bert  encoder, post-LN as BERT: token + position + token-type
 *         embeddings, embedding LayerNorm, post-LN blocks (LayerNorm after
 *         each residual), GELU MLP, mean pooling over the attended tokens;
 *         trained with a masked-LM head (decoder tied to the token embedding,
 *         plus a bias). Sized so that a MiniLM-class model (6 layers,
 *         hidden 384, 12 heads, FFN 1536, vocab 30522, 512 positions,
 *         2 token types, eps 1e-12) fits the same parameter layout.
 *
 * Every block: multi-head self-attention with softmax, clipped softmax or
 * gated attention (selectable per model, see lowbit/backend.h), GELU (erf)
 * MLP, residuals. Forward and backward are written once (models/model.c)
 * over an lb_backend; every linear layer goes through an lb_recipe
 * (lowbit/model_linear.h).
 *
 * Parameters live in one flat float array (and gradients in another of the
 * same layout), described by a table of named tensors (lb_model_tensor);
 * doc/models.md lists the names and their PyTorch equivalents.
 */
#ifndef LOWBIT_MODEL_H
#define LOWBIT_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/tensor.h"
#include "lowbit/backend.h"
#include "lowbit/model_linear.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_model_kind {
    LB_MODEL_VIT = 0,
    LB_MODEL_GPT = 1,
    LB_MODEL_BERT = 2
} lb_model_kind;

typedef enum lb_attention_kind {
    LB_ATTENTION_SOFTMAX = 0, /* softmax(QK^T / sqrt(hs)) V */
    LB_ATTENTION_CLIPPED = 1, /* clipped softmax with clip_gamma, clip_zeta */
    LB_ATTENTION_GATED = 2    /* per-head Linear(hs -> 1) sigmoid gate */
} lb_attention_kind;

/* Names: "vit", "gpt", "bert" / "softmax", "clipped", "gated". */
const char *lb_model_kind_name(lb_model_kind kind);
lb_status lb_model_kind_from_name(lb_ctx *ctx, const char *name, lb_model_kind *out);
const char *lb_attention_kind_name(lb_attention_kind kind);
lb_status lb_attention_kind_from_name(lb_ctx *ctx, const char *name, lb_attention_kind *out);

typedef struct lb_model_config {
    lb_model_kind kind;
    int n_layer;          /* transformer blocks, >= 1 */
    int d_model;          /* C, a multiple of n_head */
    int n_head;           /* NH */
    int d_ff;             /* MLP hidden width F */
    int max_seq_len;      /* gpt/bert: positions; vit: derived (patches + CLS) */
    int vocab_size;       /* gpt/bert: V (token ids in [0, V)) */
    int type_vocab_size;  /* bert: token types (2), else 0 */
    int n_classes;        /* vit: K */
    int image_size;       /* vit: square input side (28) */
    int patch_size;       /* vit: P, divides image_size */
    int cls_token;        /* vit: 1 = CLS token pooling, 0 = mean pooling */
    int tied_embeddings;  /* gpt: 1 = LM head is the token embedding */
    int embed_ln;         /* LayerNorm after the embeddings (bert: always 1) */
    float ln_eps;         /* LayerNorm epsilon (1e-5; bert 1e-12) */
    lb_attention_kind attention;
    float clip_gamma;     /* clipped softmax gamma <= 0 */
    float clip_zeta;      /* clipped softmax zeta >= 1 */
    float gate_init;      /* gated: initial gate pi_init in (0, 1); bias = logit(pi_init) */
    float init_std;       /* std of the N(0, std) initial weight matrices */
} lb_model_config;

/* The defaults of a kind:
 *   vit : 4 layers, C 64, 4 heads, F 256, 28x28 images, 7x7 patches (16),
 *         CLS token (T = 17), 10 classes, eps 1e-5;
 *   gpt : 4 layers, C 128, 4 heads, F 512, T 128, vocab 256, tied;
 *   bert: 4 layers, C 128, 4 heads, F 512, T 128, vocab 257 (256 bytes +
 *         [MASK] = 256), 2 token types, eps 1e-12;
 * softmax attention, clip_gamma = -2 / T (alpha = 2), clip_zeta = 1,
 * gate_init = 0.5, init_std = 0.02. */
void lb_model_config_default(lb_model_kind kind, lb_model_config *cfg);

/* The MiniLM-L6 (all-MiniLM-L6-v2) shape: bert, 6 layers, C 384, 12 heads,
 * F 1536, vocab 30522, 512 positions, 2 types, eps 1e-12. */
void lb_model_config_minilm(lb_model_config *cfg);

/* Checks a config (and derives vit's max_seq_len); LB_ERR_ARG with the
 * offending field. */
lb_status lb_model_config_check(lb_ctx *ctx, lb_model_config *cfg);

/* Number of parameters (floats) of a config, without allocating a model. */
lb_status lb_model_config_num_params(lb_ctx *ctx, const lb_model_config *cfg, int64_t *out);

/* Multi-line human-readable summary ("key value" per line) into buf. */
void lb_model_config_describe(const lb_model_config *cfg, char *buf, size_t size);

/* One parameter tensor of the flat parameter array. */
typedef struct lb_param_info {
    char name[64];                /* e.g. "blocks.0.attn.qkv.weight" */
    int ndim;
    int64_t shape[LB_MAX_DIMS];
    int64_t offset;               /* in floats, into lb_model_params */
    int64_t numel;
    int decay;                    /* 1 when AdamW applies weight decay (matrices) */
} lb_param_info;

typedef struct lb_model lb_model;

/* Creates a model for batches of up to max_batch examples (sequences or
 * images) of up to cfg->max_seq_len tokens: allocates parameters, gradients
 * and activations (zeroed; call lb_model_init for random weights). `recipe`
 * may be NULL for fp32; the model does not take ownership of recipe or
 * backend. */
lb_status lb_model_create(lb_ctx *ctx, const lb_model_config *cfg, const lb_backend *backend,
                          lb_recipe *recipe, int64_t max_batch, lb_model **out);
void lb_model_free(lb_model *m);

const lb_model_config *lb_model_get_config(const lb_model *m);
const lb_backend *lb_model_backend(const lb_model *m);
void lb_model_set_backend(lb_model *m, const lb_backend *backend);
int64_t lb_model_max_batch(const lb_model *m);

/* The parameter table. */
size_t lb_model_num_tensors(const lb_model *m);
const lb_param_info *lb_model_tensor(const lb_model *m, size_t i);
/* Index of the tensor called `name`, or -1. */
long lb_model_find_tensor(const lb_model *m, const char *name);
int64_t lb_model_num_params(const lb_model *m);
float *lb_model_params(lb_model *m);
float *lb_model_grads(lb_model *m);

/* Random initialisation, a pure function of (config, seed): matrices and
 * embeddings N(0, init_std^2) (Box-Muller from
 * lb_rng_uniform_f64(seed, lb_rng_stream("init", tensor index), 2i / 2i+1)),
 * biases 0, LayerNorm weights 1, gate weights U(-1/sqrt(hs), 1/sqrt(hs))
 * (PyTorch's nn.Linear default) and gate biases logit(gate_init). */
lb_status lb_model_init(lb_ctx *ctx, lb_model *m, uint64_t seed);

/* One batch. Unused members are NULL. */
typedef struct lb_model_batch {
    int64_t B;                   /* examples, 1..max_batch */
    int64_t T;                   /* gpt/bert: tokens per example (1..max_seq_len); vit: ignored */
    const float *images;         /* vit: (B, image_size, image_size), normalised */
    const int32_t *tokens;       /* gpt/bert: (B, T) ids in [0, vocab_size) */
    const int32_t *token_types;  /* bert: (B, T) in [0, type_vocab_size), NULL = all 0 */
    const uint8_t *attention_mask; /* bert: (B, T), 0 = padding (not attended, not pooled) */
    const int32_t *targets;      /* vit: (B) labels; gpt: (B, T) next tokens; bert: (B, T)
                                    MLM targets; -1 = no loss at that row; NULL = no loss */
} lb_model_batch;

/* Forward pass. With targets, *loss (may be NULL) receives the mean
 * cross-entropy over the rows with a target (0 if none). The batch's
 * arrays must stay valid until lb_model_backward. `training` marks the
 * linear sites for the recipe, `step` is passed to it. LB_ERR_ARG for a
 * batch that does not fit the model (sizes, ids out of range, NULL data). */
lb_status lb_model_forward(lb_ctx *ctx, lb_model *m, const lb_model_batch *batch, int training,
                           int64_t step, double *loss);

/* Backward pass of the last forward (which must have had targets):
 * ACCUMULATES d(mean loss)/d(params) into lb_model_grads. */
lb_status lb_model_backward(lb_ctx *ctx, lb_model *m);

/* Sets all gradients to zero. */
void lb_model_zero_grad(lb_model *m);

/* Outputs of the last forward: logits (rows, cols) — vit (B, K); gpt and
 * bert (B*T, V) — and, for vit and bert, the pooled features (B, C) (vit:
 * CLS row or mean over tokens after the final LayerNorm; bert: mean of the
 * last hidden states over attended tokens). Valid until the next forward. */
const float *lb_model_logits(const lb_model *m, int64_t *rows, int64_t *cols);
const float *lb_model_pooled(const lb_model *m);
/* Per-row losses (rows) of the last forward (0 where the target was -1). */
const float *lb_model_row_losses(const lb_model *m);

/* ------------------------------------------------------------------------
 * Creation options and activation taps (post-training quantization,
 * outlier statistics, embeddings: lowbit/ptq.h, lowbit/stats.h,
 * lowbit/minilm.h).
 * ------------------------------------------------------------------------ */

typedef struct lb_model_options {
    int64_t max_batch;  /* examples per batch, 1..2^20 */
    int64_t max_tokens; /* gpt/bert: activations for up to this many tokens per
                           example (0, or more than max_seq_len: max_seq_len);
                           vit: ignored */
    int no_head;        /* gpt/bert: 1 = no LM/MLM head. The forward stops at the
                           last hidden states (gpt: after the final LayerNorm;
                           bert: plus the pooled features); no logits, no loss
                           (a batch with targets is LB_ERR_ARG), no backward.
                           Saves the (B*T, V) logits of large vocabularies. */
} lb_model_options;

/* lb_model_create with options (lb_model_create(cfg, be, r, B) is
 * lb_model_create_ex with {B, 0, 0}). */
lb_status lb_model_create_ex(lb_ctx *ctx, const lb_model_config *cfg, const lb_backend *backend,
                             lb_recipe *recipe, const lb_model_options *opts, lb_model **out);

/* Where in the forward pass a tap fires. Every tap fires right after its
 * tensor is computed and before anything reads it. Block-internal sites
 * (layer = block index), in forward order:
 *   pre-LN (vit, gpt):  LN1 QKV ATTN_PROBS [ATTN_GATE] ATTN_OUT PROJ_OUT RES1
 *                       LN2 GELU FC2_OUT RES2
 *   post-LN (bert):     QKV ATTN_PROBS [ATTN_GATE] ATTN_OUT PROJ_OUT RES1 LN1
 *                       GELU FC2_OUT RES2 LN2
 * and outside the blocks (layer -1): EMBED (the embedding sum, before the
 * embedding LayerNorm), EMBED_LN, FINAL_LN (vit, gpt). */
typedef enum lb_model_tap_site {
    LB_TAP_EMBED = 0,      /* (B, T, C) embedding sum (vit: patches + CLS + positions) */
    LB_TAP_EMBED_LN = 1,   /* (B, T, C) embedding LayerNorm output (embed_ln only) */
    LB_TAP_LN1 = 2,        /* (B, T, C) first LayerNorm of the block (pre-LN: the
                              attention input; post-LN: LN(x + attention)) */
    LB_TAP_QKV = 3,        /* (B, T, 3C) q, k, v linear outputs */
    LB_TAP_ATTN_PROBS = 4, /* (B, NH, T, T) softmax probabilities p (before the clip
                              of clipped softmax); read only */
    LB_TAP_ATTN_GATE = 5,  /* (B, NH, T) gate values (gated attention only); read only */
    LB_TAP_ATTN_OUT = 6,   /* (B, T, C) attention output (gated) = the out-projection input */
    LB_TAP_PROJ_OUT = 7,   /* (B, T, C) out-projection output (before the residual add) */
    LB_TAP_RES1 = 8,       /* (B, T, C) residual sum x + attention */
    LB_TAP_LN2 = 9,        /* (B, T, C) second LayerNorm (pre-LN: the MLP input;
                              post-LN: the block output) */
    LB_TAP_GELU = 10,      /* (B, T, F) GELU output = the fc2 input */
    LB_TAP_FC2_OUT = 11,   /* (B, T, C) fc2 output (the "FFN output") */
    LB_TAP_RES2 = 12,      /* (B, T, C) residual sum (pre-LN: the block output;
                              post-LN: the input of LN2) */
    LB_TAP_FINAL_LN = 13,  /* (B, T, C) final LayerNorm output (vit, gpt) */
    LB_TAP_COUNT = 14
} lb_model_tap_site;

/* "embed", "embed_ln", "ln1", "qkv", "attn_probs", "attn_gate", "attn_out",
 * "proj_out", "res1", "ln2", "gelu", "fc2_out", "res2", "final_ln"; "?". */
const char *lb_model_tap_name(lb_model_tap_site site);

/* One tap. data is the model's own activation buffer: an observer may read
 * it and (except ATTN_PROBS / ATTN_GATE) overwrite it in place, e.g. with
 * its fake-quantized values; everything downstream, including a following
 * backward, then uses the new values. */
typedef struct lb_model_tap {
    lb_model_tap_site site;
    int layer;                   /* block index; -1 outside the blocks */
    float *data;                 /* shape[0..ndim) row-major */
    int ndim;                    /* 3, or 4 for ATTN_PROBS */
    int64_t shape[4];
    const uint8_t *mask;         /* (B, T) attention mask of the batch (bert), or NULL */
    int training;                /* the forward's flag */
} lb_model_tap;

/* An observer: called at every tap of every forward while set. A status
 * other than LB_OK aborts the forward with that status. */
typedef lb_status (*lb_model_observer_fn)(void *user, lb_ctx *ctx, const lb_model_tap *tap);

/* Sets (fn non-NULL) or clears (fn NULL) the model's observer. Without one
 * the forward does no tap work. */
void lb_model_set_observer(lb_model *m, lb_model_observer_fn fn, void *user);

/* Byte-level sampling from a gpt model: continues prompt (n_prompt >= 1
 * ids) by n_new tokens written to out (n_new). The context is the last
 * max_seq_len tokens. temperature > 0 samples from softmax(logits / temp)
 * restricted to the top_k most likely tokens (top_k <= 0: all), with
 * u = lb_rng_uniform_f64(seed, lb_rng_stream("generate", 0), i) for token i;
 * temperature == 0 takes the argmax. Needs max_batch >= 1. */
lb_status lb_model_generate(lb_ctx *ctx, lb_model *m, const int32_t *prompt, int64_t n_prompt,
                            int64_t n_new, float temperature, int top_k, uint64_t seed,
                            int32_t *out);

#ifdef __cplusplus
}
#endif
#endif
