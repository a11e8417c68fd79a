/* lowbit/model_linear.h — the one "linear layer" seam a training recipe
 * replaces.
 *
 * Every matmul of a linear layer in the models (patch embedding, QKV,
 * attention output projection, MLP fc1/fc2, classifier head, LM/MLM head)
 * goes through an lb_recipe's linear_forward / linear_backward. The "fp32"
 * recipe calls the backend's float32 linear ops; quantized recipes (int8,
 * Xi et al. HQ + bit-split + leverage-score sampling, LUQ; lowbit/recipe.h)
 * plug in here without touching the model code. Everything else (LayerNorm, GELU,
 * attention, embeddings, loss, optimizer) stays in the backend table.
 *
 * Shapes (row-major float32), as lb_backend.linear_forward/backward:
 *   out (N, OC) = inp (N, C) . weight (OC, C)^T + bias (OC)   (bias may be NULL)
 *   backward ACCUMULATES dinp (N, C) (may be NULL), dweight (OC, C) and
 *   dbias (OC) (may be NULL) from dout (N, OC).
 * A backward call always follows the forward call of the same site within
 * one training step (same inp and weight pointers), so a recipe may keep
 * per-site state from the forward (e.g. quantized operands) in its own
 * storage, keyed by the site.
 */
#ifndef LOWBIT_MODEL_LINEAR_H
#define LOWBIT_MODEL_LINEAR_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/backend.h"
#include "lowbit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which linear layer of the model a call is for. */
typedef enum lb_linear_role {
    LB_LINEAR_PATCH = 0, /* vit patch embedding: (B*patches, P*P) -> C */
    LB_LINEAR_QKV = 1,   /* C -> 3C */
    LB_LINEAR_PROJ = 2,  /* attention output projection C -> C */
    LB_LINEAR_FC1 = 3,   /* MLP C -> F */
    LB_LINEAR_FC2 = 4,   /* MLP F -> C */
    LB_LINEAR_HEAD = 5,  /* vit classifier C -> classes */
    LB_LINEAR_LM = 6     /* gpt LM head / bert MLM decoder C -> vocab */
} lb_linear_role;

/* "patch", "qkv", "proj", "fc1", "fc2", "head", "lm"; "?" otherwise. */
const char *lb_linear_role_name(lb_linear_role role);

/* One call site: identifies the layer (for per-layer state and for random
 * streams such as lb_rng_stream("<recipe>", site id)) and the step. */
typedef struct lb_linear_site {
    lb_linear_role role;
    int layer;      /* transformer block index, -1 outside the blocks */
    int64_t step;   /* optimizer step being computed (0-based) */
    int training;   /* 1 in a training forward (a backward follows), 0 in eval */
} lb_linear_site;

typedef struct lb_recipe lb_recipe;

/* What the trainer tells a recipe after the model's AdamW update of one step
 * (see lb_recipe.optimizer_step). */
typedef struct lb_recipe_update {
    int64_t step;      /* the optimizer step just taken (0-based) */
    double lr;         /* its learning rate */
    double beta1, beta2, eps; /* the model's AdamW settings */
    double grad_scale; /* clipping factor applied to the model's gradients (1: none) */
} lb_recipe_update;

struct lb_recipe {
    const char *name; /* "fp32", ... (recorded in checkpoints) */
    lb_status (*linear_forward)(lb_recipe *self, lb_ctx *ctx, const lb_backend *be,
                                const lb_linear_site *site, float *out, const float *inp,
                                const float *weight, const float *bias, int64_t N, int64_t C,
                                int64_t OC);
    lb_status (*linear_backward)(lb_recipe *self, lb_ctx *ctx, const lb_backend *be,
                                 const lb_linear_site *site, float *dinp, float *dweight,
                                 float *dbias, const float *dout, const float *inp,
                                 const float *weight, int64_t N, int64_t C, int64_t OC);
    /* Frees the recipe (self included); may be NULL for a static recipe. */
    void (*free)(lb_recipe *self);
    void *state; /* recipe-owned */
    /* Optional hooks of the quantized recipes (NULL in fp32; callers go
     * through the wrappers of lowbit/recipe.h): update the recipe's own
     * learned parameters after an optimizer step, export/import the state a
     * checkpoint must hold (an F64 tensor, NULL when none), and per-layer
     * quantization statistics as JSON (snprintf-like). */
    lb_status (*optimizer_step)(lb_recipe *self, lb_ctx *ctx, const lb_recipe_update *u);
    lb_status (*get_state)(lb_recipe *self, lb_ctx *ctx, lb_tensor **out);
    lb_status (*set_state)(lb_recipe *self, lb_ctx *ctx, const lb_tensor *state);
    size_t (*stats_json)(lb_recipe *self, char *buf, size_t size);
};

/* Creates a recipe by name with default options: "fp32", "int8", "hq" or
 * "luq" (lowbit/recipe.h; lb_recipe_create_ex takes options and the run);
 * LB_ERR_ARG for another name. */
lb_status lb_recipe_create(lb_ctx *ctx, const char *name, lb_recipe **out);

/* Calls self->free when set. NULL is a no-op. */
void lb_recipe_free(lb_recipe *recipe);

#ifdef __cplusplus
}
#endif
#endif
