/* lowbit/ref/gated_attention.h — the attention gate of gated attention
 * (oracle): gate values per token and head, their application to the
 * attention context, and the backward passes of both.
 *
 * Bondarenko, Nagel, Blankevoort 2023, "Quantizable Transformers", eq. 5-7
 * (spec outlier_free_attention_and_w8a8.md §2):
 *
 *   Gated_attention(x) = sigmoid(G(x)) ⊙ softmax(Q K^T / sqrt(d_head)) V
 *
 * Per token t and head h, with x_t the attention-layer input (the tensor that
 * feeds Q, K and V; for pre-LN models the LayerNorm output) and x_{t,h} its
 * contiguous slice of features [h·d_head, (h+1)·d_head):
 *
 *   logit_{t,h} = G_h(x_{t,h})           (per-head kinds)
 *   logit_{t,h} = G(x_t)_h               (LB_GATE_ALL_HEADS)
 *   gate_{t,h}  = scale · sigmoid(logit_{t,h})
 *   out_{t,h,:} = gate_{t,h} · context_{t,h,:}
 *
 * Kinds (G; parameter shapes with H = n_heads, dh = d_head, n = n_hidden):
 *   LB_GATE_LINEAR        G_h(v) = weight_h · v + bias_h
 *                         weight (H, dh), bias (H)              [paper; OPT, ViT]
 *   LB_GATE_MLP           G_h(v) = weight2_h · relu(weight_h v + bias_h) + bias2_h
 *                         weight (H, n, dh), bias (H, n), weight2 (H, n), bias2 (H)
 *                         [paper "MLP"; BERT-base. The authors' --attn_gate_mlp has
 *                          n = dh/4, --attn_gate_mlp2 n = dh; the paper says n_hid = 4]
 *   LB_GATE_ALL_HEADS     G(x_t) = weight x_t + bias, one Linear(d_model -> H)
 *                         shared by all heads: weight (H, H·dh), bias (H)  [OPT-1.3B]
 *   LB_GATE_UNCONDITIONAL logit_{t,h} = bias_h, independent of x: bias (H)
 *                         [authors' code only, "unconditional per head"]
 * Pooling (authors' code only, "conditional per head"): with
 * LB_GATE_PER_SEQUENCE the per-token logits of each sequence of seq_len
 * consecutive tokens are averaged (padding included, in increasing t, then
 * divided by seq_len) before the sigmoid, giving one gate per (sequence, head),
 * written to every token of the sequence. It applies to LINEAR, MLP and
 * ALL_HEADS (the authors use it with per-head G only) and is a no-op for
 * UNCONDITIONAL.
 *
 * scale is 1, or 1/pi_init when gates are added to a trained model for
 * fine-tuning (spec §2.5; the authors apply it to conditional gates only and
 * their quantized models drop it).
 *
 * Arithmetic (double, no FMA contraction; the unsuffixed float entry points
 * widen every input to double, run the double algorithm and round each
 * output once to float):
 *   - dot products summed from 0.0 in increasing feature index, then the
 *     bias added: logit = (((0 + w_0 v_0) + w_1 v_1) + ...) + bias; MLP
 *     hidden units and the second MLP layer likewise;
 *   - sigmoid(z) = 1/(1+exp(-z)) for z >= 0, exp(z)/(1+exp(z)) for z < 0;
 *     it is exactly 0 below about z = -745 and exactly 1 above about 37;
 *   - relu'(0) = 0 (PyTorch);
 *   - the backward: dlogit = scale · sig·(1 - sig) · dgate (per sequence:
 *     dgate summed over the sequence's tokens in increasing t first, then each
 *     token's logit receives dlogit / seq_len); parameter gradients are
 *     summed over tokens in increasing t (within a token, heads in increasing
 *     h) in double, then added once to the caller's arrays; dx_t is computed
 *     in double (ALL_HEADS: heads summed in increasing h) and added once.
 *   - apply: out = gate · context; its backward dcontext = gate · dout,
 *     dgate_{t,h} = sum_k dout_{t,h,k} context_{t,h,k} (increasing k).
 *
 * NaN/Inf are propagated, not rejected (as PyTorch would).
 *
 * Shapes: x (tokens, H·dh); gate, dgate (tokens, H); context, out, dout,
 * dcontext (tokens, H·dh) with head h in columns [h·dh, (h+1)·dh) — the
 * layout of the concatenated heads before the output projection. tokens >= 0;
 * with PER_SEQUENCE tokens is a multiple of seq_len and token t belongs to
 * sequence t / seq_len.
 */
#ifndef LOWBIT_REF_GATED_ATTENTION_H
#define LOWBIT_REF_GATED_ATTENTION_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_gate_kind {
    LB_GATE_LINEAR = 0,
    LB_GATE_MLP = 1,
    LB_GATE_ALL_HEADS = 2,
    LB_GATE_UNCONDITIONAL = 3
} lb_gate_kind;

typedef enum lb_gate_pool {
    LB_GATE_PER_TOKEN = 0,   /* one gate per (token, head): the paper */
    LB_GATE_PER_SEQUENCE = 1 /* logits averaged over each sequence (code only) */
} lb_gate_pool;

typedef struct lb_gate_config {
    lb_gate_kind kind;
    lb_gate_pool pool;
    int64_t n_heads;  /* H >= 1 */
    int64_t d_head;   /* dh >= 1; the input has d_model = H·dh features */
    int64_t n_hidden; /* MLP hidden width n >= 1 (ignored by other kinds) */
    int64_t seq_len;  /* tokens per sequence, PER_SEQUENCE only */
    double scale;     /* finite and > 0: 1 normally (a zeroed config is rejected) */
} lb_gate_config;

/* A config with pool = per token, n_hidden = max(1, d_head / 4) (the authors'
 * --attn_gate_mlp), seq_len = 0 and scale = 1. */
lb_gate_config lb_gate_config_default(lb_gate_kind kind, int64_t n_heads, int64_t d_head);

/* Validates a config (LB_ERR_ARG with the reason). */
lb_status lb_gate_config_check(lb_ctx *ctx, const lb_gate_config *cfg);

/* Number of elements of weight, bias, weight2, bias2 (0 where unused):
 * counts[4] as in the table above. */
lb_status lb_gate_param_counts(lb_ctx *ctx, const lb_gate_config *cfg, int64_t counts[4]);

/* Initial bias for a target gate value pi_init (spec §2.3):
 * b = -log(1/p - 1) with p = pi_init clipped to [1e-16, 1 - 1e-16] (the
 * authors' logit()); 0 for pi_init = 0.5, -1.0986123 for 0.25. The authors
 * apply it to LB_GATE_LINEAR biases only; NaN for a NaN pi_init. */
double lb_gate_bias_init(double pi_init);

/* The gate parameters (pointers to the caller's arrays; unused ones may be
 * NULL). weight2/bias2 are MLP only; UNCONDITIONAL uses bias only. */
typedef struct lb_gate_weights {
    const float *weight;  /* LINEAR (H, dh); MLP (H, n, dh); ALL_HEADS (H, H·dh) */
    const float *bias;    /* LINEAR, ALL_HEADS, UNCONDITIONAL (H); MLP (H, n) */
    const float *weight2; /* MLP (H, n) */
    const float *bias2;   /* MLP (H) */
} lb_gate_weights;

typedef struct lb_gate_weights_f64 {
    const double *weight, *bias, *weight2, *bias2; /* as lb_gate_weights */
} lb_gate_weights_f64;

/* Parameter gradients, same shapes; the backward ADDS to them (zero them for
 * a plain gradient). A NULL member skips that gradient. */
typedef struct lb_gate_grads {
    float *weight, *bias, *weight2, *bias2;
} lb_gate_grads;

typedef struct lb_gate_grads_f64 {
    double *weight, *bias, *weight2, *bias2;
} lb_gate_grads_f64;

/* gate (tokens, H) = scale · sigmoid(G(x)) from x (tokens, H·dh). x may be
 * NULL for UNCONDITIONAL. */
lb_status lb_gate_forward_ref(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens,
                              const float *x, /* (tokens, H*dh) */
                              const lb_gate_weights *w,
                              float *gate);   /* (tokens, H) */
lb_status lb_gate_forward_ref_f64(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens,
                                  const double *x, /* (tokens, H*dh) */
                                  const lb_gate_weights_f64 *w,
                                  double *gate);   /* (tokens, H) */

/* Backward of lb_gate_forward_ref: from x (tokens, H·dh) and dgate
 * (tokens, H) = dL/dgate, ADDS dL/dx into dx (tokens, H·dh) (x also feeds
 * Q, K and V, so this is one term of the layer's input gradient; dx may be
 * NULL) and the parameter gradients into *grads (may be NULL). Recomputes the
 * forward from x. */
lb_status lb_gate_backward_ref(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens,
                               const float *x,     /* (tokens, H*dh) */
                               const lb_gate_weights *w,
                               const float *dgate, /* (tokens, H) */
                               float *dx,          /* (tokens, H*dh), += */
                               const lb_gate_grads *grads);
lb_status lb_gate_backward_ref_f64(lb_ctx *ctx, const lb_gate_config *cfg, int64_t tokens,
                                   const double *x,     /* (tokens, H*dh) */
                                   const lb_gate_weights_f64 *w,
                                   const double *dgate, /* (tokens, H) */
                                   double *dx,          /* (tokens, H*dh), += */
                                   const lb_gate_grads_f64 *grads);

/* out (tokens, H·dh) = gate (tokens, H) broadcast over each head's d_head
 * features, times context (tokens, H·dh). out may equal context. */
lb_status lb_gate_apply_ref(lb_ctx *ctx, int64_t tokens, int64_t n_heads, int64_t d_head,
                            const float *gate,    /* (tokens, H) */
                            const float *context, /* (tokens, H*dh) */
                            float *out);          /* (tokens, H*dh) */
lb_status lb_gate_apply_ref_f64(lb_ctx *ctx, int64_t tokens, int64_t n_heads, int64_t d_head,
                                const double *gate,    /* (tokens, H) */
                                const double *context, /* (tokens, H*dh) */
                                double *out);          /* (tokens, H*dh) */

/* Backward of the apply step: dcontext (tokens, H·dh) = gate · dout and
 * dgate (tokens, H) = <dout, context> per head; both overwritten, either may
 * be NULL. dcontext may equal dout. */
lb_status lb_gate_apply_backward_ref(lb_ctx *ctx, int64_t tokens, int64_t n_heads,
                                     int64_t d_head,
                                     const float *gate,    /* (tokens, H) */
                                     const float *context, /* (tokens, H*dh) */
                                     const float *dout,    /* (tokens, H*dh) */
                                     float *dcontext,      /* (tokens, H*dh) or NULL */
                                     float *dgate);        /* (tokens, H) or NULL */
lb_status lb_gate_apply_backward_ref_f64(lb_ctx *ctx, int64_t tokens, int64_t n_heads,
                                         int64_t d_head,
                                         const double *gate,    /* (tokens, H) */
                                         const double *context, /* (tokens, H*dh) */
                                         const double *dout,    /* (tokens, H*dh) */
                                         double *dcontext,      /* (tokens, H*dh) or NULL */
                                         double *dgate);        /* (tokens, H) or NULL */

/* "linear", "mlp", "all-heads", "unconditional"; NULL for an unknown kind. */
const char *lb_gate_kind_name(lb_gate_kind kind);

#ifdef __cplusplus
}
#endif
#endif
